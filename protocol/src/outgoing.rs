//! The frames the built-in protocol answers commands with, and the message frame its `send`
//! delivers (`docs/protocol.md`, "Server → client").

use serde::Serialize;
use serde_json::value::RawValue;
use shared::gateway::frames::Sender;
use shared::store::Position;

/// Every frame that answers a command, or carries a message (the frames the library pushes by
/// itself — presence events, errors — are `shared::gateway::frames`).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Outgoing<'a> {
    /// The answer to `ping`.
    Pong,
    /// The answer to `whoami`: the connection as its record has it.
    #[serde(rename_all = "camelCase")]
    Whoami {
        /// The connection's id.
        connection_id: &'a str,
        /// Its uid, or `null` when it has none.
        uid: Option<&'a str>,
        /// The groups it is in, sorted.
        groups: Vec<&'a str>,
    },
    /// The answer to `join` (idempotent).
    #[serde(rename_all = "camelCase")]
    Joined {
        /// The group joined.
        group: &'a str,
        /// Where the group's stream is (when it keeps history and has one): recover from here.
        #[serde(flatten)]
        position: Option<&'a Position>,
        /// The members, for a `join` with `"presence":true` in a group within the size limit.
        #[serde(skip_serializing_if = "Option::is_none")]
        members: Option<Vec<Sender<'a>>>,
        /// For a `join` with `"presence":true` in a group over the limit: no list, no events.
        #[serde(skip_serializing_if = "Option::is_none")]
        presence_limit: Option<usize>,
        /// For a `join` with `"presence":true`: the presence version the list is as of; events
        /// not above it are already in it.
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
    },
    /// The answer to `leave` (idempotent).
    Left {
        /// The group left.
        group: &'a str,
    },
    /// A message from a `send`, as each recipient gets it.
    Message {
        /// Who sent it.
        from: Sender<'a>,
        /// The target exactly as the sender wrote it.
        to: &'a RawValue,
        /// The payload exactly as the sender wrote it.
        data: &'a RawValue,
        /// For a message to one group that keeps history: the group and the message's place.
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        /// The message's place in that group's stream: its `epoch` and `offset`.
        #[serde(flatten)]
        position: Option<&'a Position>,
    },
    /// The answer to `history`: a group's kept messages after `since` (or all), oldest first.
    History {
        /// The group asked about.
        group: &'a str,
        /// The stream's current epoch (`""` when the group has no stream).
        epoch: &'a str,
        /// The group's last offset.
        offset: u64,
        /// `false` when something delivered to someone after `since` can no longer be had.
        recovered: bool,
        /// Each message exactly as it was delivered.
        messages: Vec<&'a RawValue>,
        /// Offsets in the span answered whose sends failed before keeping them (delivered to
        /// nobody): a client counts them as seen, not as missing.
        #[serde(skip_serializing_if = "<[u64]>::is_empty")]
        skipped: &'a [u64],
        /// More kept messages follow the last one: ask again from its offset.
        more: bool,
    },
    /// The answer to a `send` that gave an `id`, after its pushes.
    Ack {
        /// The `send`'s own `id`.
        id: &'a str,
        /// The connections the message reached.
        delivered: usize,
        /// A large send's recipients handed to the fan-out workers, who push them after this
        /// ack (at least once each); absent for a send pushed whole before it.
        #[serde(skip_serializing_if = "Option::is_none")]
        queued: Option<usize>,
        /// For a message kept in a group's stream: the group and its place, which the sender
        /// may not otherwise see (`excludeSelf`).
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        /// The message's place in that group's stream: its `epoch` and `offset`.
        #[serde(flatten)]
        position: Option<&'a Position>,
    },
    /// The answer to `presence`: who is connected to a group, or to the stage, from an
    /// eventually consistent read.
    Presence {
        /// The group asked about, when one was.
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        /// The connections counted.
        connections: usize,
        /// Their distinct uids, sorted.
        uids: Vec<&'a str>,
    },
}

impl Outgoing<'_> {
    /// The frame's text.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every key is a string and every value is plain data.
        serde_json::to_string(self)
            .unwrap_or_else(|_| String::from(r#"{"type":"error","code":"internal"}"#))
    }
}

/// The reply to a frame that is not a command.
pub fn echo(body: &str) -> String {
    format!("Hello, you sent: {body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::gateway::frames::{Frame, PresenceChange};
    use shared::prelude::{ErrorCode, Rejection};

    #[test]
    fn outgoing_frames_have_the_protocols_shape() {
        assert_eq!(Outgoing::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            Outgoing::Whoami {
                connection_id: "c",
                uid: None,
                groups: vec!["a", "b"]
            }
            .to_json(),
            r#"{"type":"whoami","connectionId":"c","uid":null,"groups":["a","b"]}"#
        );
        assert_eq!(
            Outgoing::Ack {
                id: "m",
                delivered: 2,
                queued: None,
                group: None,
                position: None,
            }
            .to_json(),
            r#"{"type":"ack","id":"m","delivered":2}"#
        );
        assert_eq!(
            Outgoing::Ack {
                id: "m",
                delivered: 0,
                queued: Some(9_000),
                group: Some("g"),
                position: Some(&Position {
                    epoch: "e".into(),
                    offset: 4
                }),
            }
            .to_json(),
            r#"{"type":"ack","id":"m","delivered":0,"queued":9000,"group":"g","epoch":"e","offset":4}"#
        );
        assert_eq!(
            Outgoing::Presence {
                group: None,
                connections: 3,
                uids: vec!["a"]
            }
            .to_json(),
            r#"{"type":"presence","connections":3,"uids":["a"]}"#
        );
        let to = RawValue::from_string(r#"{"uid":"bob"}"#.into()).unwrap();
        let data = RawValue::from_string("[1, 2]".into()).unwrap();
        assert_eq!(
            Outgoing::Message {
                from: Sender {
                    connection_id: "c",
                    uid: Some("al")
                },
                to: &to,
                data: &data,
                group: None,
                position: None,
            }
            .to_json(),
            r#"{"type":"message","from":{"connectionId":"c","uid":"al"},"to":{"uid":"bob"},"data":[1, 2]}"#
        );
        let position = Position {
            epoch: "e1".into(),
            offset: 7,
        };
        assert_eq!(
            Outgoing::Message {
                from: Sender {
                    connection_id: "c",
                    uid: None
                },
                to: &to,
                data: &data,
                group: Some("g"),
                position: Some(&position),
            }
            .to_json(),
            r#"{"type":"message","from":{"connectionId":"c","uid":null},"to":{"uid":"bob"},"data":[1, 2],"group":"g","epoch":"e1","offset":7}"#
        );
        assert_eq!(
            Frame::PresenceEvent {
                event: PresenceChange::Leave,
                group: "g",
                connection_id: "c",
                uid: None,
                version: 7,
            }
            .to_json(),
            r#"{"type":"presence","event":"leave","group":"g","connectionId":"c","uid":null,"version":7}"#
        );
        assert_eq!(
            Frame::presence_overflow("g").to_json(),
            r#"{"type":"presence","event":"overflow","group":"g"}"#
        );
        assert_eq!(
            Rejection::new(ErrorCode::TooLarge, "big", None).frame(),
            r#"{"type":"error","code":"too_large","message":"big"}"#
        );
    }
}
