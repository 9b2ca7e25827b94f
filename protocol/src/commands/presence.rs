//! `presence`: how many connections a group (or, without `group`, the stage) has, and their
//! uids; read eventually consistent, at half the read units.

use shared::auth::permissions::Permissions;
use shared::prelude::{Client, Rejection};
use shared::store::Members;
use shared::Error;

use super::Command;
use crate::fields::Fields;
use crate::outgoing::Outgoing;

pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    Ok(Command::Presence {
        group: match fields.map.get("group") {
            None => None,
            Some(_) => Some(fields.name("group")?),
        },
    })
}

/// A group's presence needs the `groups` claim; everyone's, the `all` claim.
pub(crate) fn refused(permissions: &Permissions, group: Option<&str>) -> Option<String> {
    match group {
        Some(group) => {
            (!permissions.may_join(group)).then(|| format!("see the presence of group {group:?}"))
        }
        None => {
            (!permissions.may_reach_everyone()).then(|| "see the presence of everyone".to_owned())
        }
    }
}

/// Counts, and answers `presence`.
pub(crate) async fn run(sender: &Client<'_>, group: Option<&str>) -> Result<Vec<String>, Error> {
    let of = group.map_or(Members::All, Members::Group);
    shared::gateway::rate_limit::admitted().await?;
    let presence = sender.gateway().census(of).await?;
    Ok(vec![Outgoing::Presence {
        group,
        connections: presence.connections,
        uids: presence.uids.iter().map(String::as_str).collect(),
    }
    .to_json()])
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{command, rejection};
    use crate::commands::Command;
    use shared::prelude::ErrorCode;

    #[test]
    fn presence_takes_an_optional_group() {
        assert_eq!(
            command(r#"{"action":"presence"}"#),
            Command::Presence { group: None }
        );
        assert_eq!(
            command(r#"{"action":"presence","group":"g"}"#),
            Command::Presence {
                group: Some("g".into())
            }
        );
        assert_eq!(
            rejection(r#"{"action":"presence","group":null}"#).code,
            ErrorCode::BadRequest
        );
    }
}
