//! `join`: the connection becomes a member of a group; its followers are told, and the joiner
//! learns where the group's stream is and, with `"presence":true`, who is in it.

use shared::auth::permissions::Permissions;
use shared::gateway::frames::Sender;
use shared::gateway::presence::Subject;
use shared::prelude::{Client, Rejection};
use shared::Error;

use super::Command;
use crate::fields::Fields;
use crate::outgoing::Outgoing;

pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    Ok(Command::Join {
        group: fields.name("group")?,
        presence: fields.flag("presence")?,
    })
}

/// Joining needs the `groups` claim.
pub(crate) fn refused(permissions: &Permissions, group: &str) -> Option<String> {
    (!permissions.may_join(group)).then(|| format!("join group {group:?}"))
}

/// `join`: the group's followers are told; the joiner learns where the group's stream is and,
/// with `presence`, who is in it. Both are read after the membership is written: every message
/// after the position is pushed to the joiner or kept for it, and every presence event after the
/// list's version tells of a change the list does not hold.
pub(crate) async fn run(
    sender: &Client<'_>,
    group: &str,
    presence: bool,
) -> Result<Vec<String>, Error> {
    let gateway = sender.gateway();
    let id = sender.connection_id();
    let gone = || Error::UnknownConnection(id.to_owned());
    // The stream's position is read after the membership is written; with `presence`, the list
    // and its announcement are one version and one read.
    let (position, list) = if presence {
        let record = gateway
            .join_record(id, group, true)
            .await?
            .ok_or_else(gone)?;
        let subject = Subject {
            connection_id: id,
            uid: record.uid.as_deref(),
        };
        // Both run to their end, so that a failing read of the position cannot cut the
        // announcement short.
        let (list, position) = futures_util::join!(
            gateway.list_and_announce_join(Some(sender.endpoint()), group, subject),
            gateway.stream_position(group)
        );
        (position?, Some(list?))
    } else {
        if !gateway
            .join_at(Some(sender.endpoint()), id, group, false)
            .await?
        {
            return Err(gone());
        }
        (gateway.stream_position(group).await?, None)
    };
    let members = list.as_ref().and_then(|list| list.members.as_ref());
    let listed = members.map(|members| {
        members
            .iter()
            .map(|m| Sender {
                connection_id: &m.connection_id,
                uid: m.uid.as_deref(),
            })
            .collect()
    });
    Ok(vec![Outgoing::Joined {
        group,
        position: position.as_ref(),
        members: listed,
        presence_limit: (presence && members.is_none()).then_some(gateway.config.presence_limit),
        version: list.as_ref().map(|list| list.version),
    }
    .to_json()])
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{command, rejection};
    use crate::commands::Command;
    use shared::prelude::ErrorCode;

    #[test]
    fn join_and_leave_need_a_valid_group() {
        assert_eq!(
            command(r#"{"action":"join","group":"room-1"}"#),
            Command::Join {
                group: "room-1".into(),
                presence: false,
            }
        );
        assert_eq!(
            command(r#"{"action":"join","group":"room-1","presence":true}"#),
            Command::Join {
                group: "room-1".into(),
                presence: true,
            }
        );
        assert_eq!(
            rejection(r#"{"action":"join","group":"room-1","presence":"yes"}"#).code,
            ErrorCode::BadRequest
        );
        assert_eq!(
            command(r#"{"action":"leave","group":"room-1"}"#),
            Command::Leave {
                group: "room-1".into()
            }
        );
        for body in [
            r#"{"action":"join"}"#,
            r#"{"action":"join","group":""}"#,
            r#"{"action":"join","group":"a b"}"#,
            r#"{"action":"join","group":5}"#,
        ] {
            assert_eq!(rejection(body).code, ErrorCode::BadRequest, "{body}");
        }
    }
}
