//! `history`: a group's kept messages after a position, to recover what a client missed
//! (protocol: "Recovery of missed group messages").

use serde_json::value::RawValue;
use shared::auth::permissions::Permissions;
use shared::prelude::{Client, Rejection};
use shared::store::{Position, StoreError};
use shared::Error;

use super::Command;
use crate::fields::{bad, Fields};
use crate::outgoing::Outgoing;

pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    Ok(Command::History {
        group: fields.name("group")?,
        since: match fields.map.get("since") {
            None => None,
            Some(raw) => Some(serde_json::from_str(raw.get()).map_err(|_| {
                bad(
                    "history",
                    "since must be {\"epoch\":\"…\",\"offset\":N}, as a message or joined frame gave them",
                )
            })?),
        },
    })
}

/// Reading a group's history needs the `groups` claim, as joining it does.
pub(crate) fn refused(permissions: &Permissions, group: &str) -> Option<String> {
    (!permissions.may_join(group)).then(|| format!("read the history of group {group:?}"))
}

/// Reads what was kept after `since`, and answers `history`.
pub(crate) async fn run(
    sender: &Client<'_>,
    group: &str,
    since: Option<&Position>,
) -> Result<Vec<String>, Error> {
    let recovery = sender.gateway().recover(group, since).await?;
    let messages = recovery
        .messages
        .iter()
        .filter_map(|kept| kept.frame.as_deref())
        .map(serde_json::from_str::<&RawValue>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Malformed(format!("a kept message is not JSON: {e}")))?;
    Ok(vec![Outgoing::History {
        group,
        epoch: &recovery.top.epoch,
        offset: recovery.top.offset,
        recovered: recovery.recovered,
        messages,
        skipped: &recovery.skipped,
        more: recovery.more,
    }
    .to_json()])
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{command, rejection};
    use crate::commands::Command;
    use shared::prelude::ErrorCode;
    use shared::store::Position;

    #[test]
    fn history_needs_a_group_and_takes_a_position_as_frames_give_it() {
        assert_eq!(
            command(r#"{"action":"history","group":"g"}"#),
            Command::History {
                group: "g".into(),
                since: None
            }
        );
        assert_eq!(
            command(r#"{"action":"history","group":"g","since":{"epoch":"e","offset":3}}"#),
            Command::History {
                group: "g".into(),
                since: Some(Position {
                    epoch: "e".into(),
                    offset: 3
                })
            }
        );
        for bad in [
            r#"{"action":"history"}"#,
            r#"{"action":"history","group":"g","since":3}"#,
            r#"{"action":"history","group":"g","since":{"offset":3}}"#,
        ] {
            let r = rejection(bad);
            assert_eq!(
                (r.code, r.action.as_deref()),
                (ErrorCode::BadRequest, Some("history")),
                "{bad}"
            );
        }
    }
}
