//! The frames the library pushes by itself, in `docs/protocol.md`'s shapes: a presence event to a
//! group's followers, the notice that a group grew past the presence limit, and the error frame
//! an application sends unless it frames its errors its own way
//! ([`crate::app::Events::error_frame`]). The frames that answer commands are the built-in
//! protocol's own (the `protocol` crate).

use serde::Serialize;

use crate::app::ErrorCode;

/// Who sent a message, or whom a presence event is about, as clients see them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender<'a> {
    /// The connection's id.
    pub connection_id: &'a str,
    /// Its uid, when it has one.
    pub uid: Option<&'a str>,
}

/// What a presence event tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceChange {
    /// The connection joined the group.
    Join,
    /// The connection left the group, or ended.
    Leave,
}

/// A frame the library pushes.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Frame<'a> {
    /// A member joined or left a group the receiver follows (`"presence":true`): as of
    /// `version`, it is in the group (`join`) or not (`leave`). A follower keeps, per connection,
    /// the event of the highest version.
    #[serde(rename = "presence", rename_all = "camelCase")]
    PresenceEvent {
        /// Joined or left.
        event: PresenceChange,
        /// The group.
        group: &'a str,
        /// The member.
        connection_id: &'a str,
        /// The member's uid, when it has one.
        uid: Option<&'a str>,
        /// The group's presence version after this change.
        version: u64,
    },
    /// A group the receiver follows grew past the presence limit: no more events for it. Made
    /// by [`Frame::presence_overflow`].
    #[serde(rename = "presence")]
    PresenceOverflow {
        /// Always `"overflow"`.
        event: &'static str,
        /// The group.
        group: &'a str,
    },
    /// A frame refused or failed.
    Error {
        /// What kind of refusal.
        code: ErrorCode,
        /// Words for the client.
        message: &'a str,
        /// The action refused, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'a str>,
        /// The refused `send`'s own `id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
}

impl<'a> Frame<'a> {
    /// `{"type":"presence","event":"overflow","group":…}`.
    pub fn presence_overflow(group: &'a str) -> Self {
        Frame::PresenceOverflow {
            event: "overflow",
            group,
        }
    }

    /// The frame's text.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every key is a string and every value is plain data.
        serde_json::to_string(self)
            .unwrap_or_else(|_| String::from(r#"{"type":"error","code":"internal"}"#))
    }
}
