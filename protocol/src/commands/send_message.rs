//! `sendmessage`: the AWS sample chat's broadcast. `data` goes to every connection: a string as
//! it is, any other value as compact JSON.

use std::collections::HashSet;

use shared::auth::permissions::Permissions;
use shared::prelude::{Client, Rejection, Target};
use shared::Error;

use super::Command;
use crate::fields::{compact, Fields};

pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    let data = fields.required("data", "the text to broadcast")?;
    let text = match serde_json::from_str::<String>(data.get()) {
        Ok(text) => text,
        Err(_) => compact(data),
    };
    Ok(Command::SendMessage { text })
}

/// Needs the `all` claim.
pub(crate) fn refused(permissions: &Permissions) -> Option<String> {
    (!permissions.may_reach_everyone()).then(|| "send to everyone".to_owned())
}

/// Pushes the text to every connection; nothing for the sender unless a push failed.
pub(crate) async fn run(sender: &Client<'_>, text: &str) -> Result<Vec<String>, Error> {
    let report = sender
        .gateway()
        .send(sender.endpoint(), &Target::All, &HashSet::new(), text)
        .await?;
    report.error().map_or(Ok(Vec::new()), Err)
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{command, rejection};
    use crate::commands::Command;
    use shared::prelude::ErrorCode;

    #[test]
    fn sendmessage_sends_string_data_as_is_and_other_data_as_compact_json() {
        assert_eq!(
            command(r#"{"action":"sendmessage","data":"hi"}"#),
            Command::SendMessage { text: "hi".into() }
        );
        assert_eq!(
            command(r#"{"action":"sendmessage","data": { "a" : [1, 2] } }"#),
            Command::SendMessage {
                text: r#"{"a":[1,2]}"#.into()
            }
        );
    }

    #[test]
    fn sendmessage_without_data_is_a_bad_request() {
        let r = rejection(r#"{"action":"sendmessage"}"#);
        assert_eq!(r.code, ErrorCode::BadRequest);
        assert_eq!(r.action.as_deref(), Some("sendmessage"));
    }
}
