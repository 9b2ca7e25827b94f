//! The wire contract with clients: what a frame means, and the frames the service sends back.
//!
//! Parsing is pure and total: every text frame becomes a plain message, a [`Command`], or a
//! [`Rejection`] that names the error code the protocol gives it. Client `data` is kept as the raw
//! JSON text the client sent, so it travels to recipients unchanged (no float rounding, no key
//! reordering).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::names::{is_valid_connection_id, is_valid_name};

/// The most names a list target or an `exclude` may hold.
pub const MAX_LIST_NAMES: usize = 100;
/// The longest client-chosen `id` of a `send`, in bytes.
pub const MAX_SEND_ID_BYTES: usize = 128;

/// What a client frame asks for.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// Not a JSON object with a string `action`: echoed back to the sender.
    Plain,
    Command(Command),
}

/// A command a client can send, one variant per `action`.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// `sendmessage`: the AWS sample chat's broadcast; `text` is what every connection receives.
    SendMessage {
        text: String,
    },
    Ping,
    Whoami,
    Join {
        group: String,
        /// `"presence":true`: list the members now, and tell of each join and leave from now on.
        presence: bool,
    },
    Leave {
        group: String,
    },
    Send(Send),
    /// `history`: a group's messages after a position (protocol: "Recovery").
    History {
        group: String,
        /// Where the client's copy ends; `None` for everything kept.
        since: Option<Position>,
    },
    /// `presence`, of one group or (without `group`) of every connection.
    Presence {
        group: Option<String>,
    },
}

impl Command {
    /// The `action` that named this command, for logs and error frames.
    pub fn action(&self) -> &'static str {
        match self {
            Command::SendMessage { .. } => "sendmessage",
            Command::Ping => "ping",
            Command::Whoami => "whoami",
            Command::Join { .. } => "join",
            Command::Leave { .. } => "leave",
            Command::Send(_) => "send",
            Command::Presence { .. } => "presence",
            Command::History { .. } => "history",
        }
    }
}

/// A place in a group's stream: its epoch, and the offset of a message in it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

/// A `send` command, checked.
#[derive(Debug)]
pub struct Send {
    pub target: Target,
    /// The target exactly as the client wrote it, repeated to recipients as `to`.
    pub to: Box<RawValue>,
    /// The payload exactly as the client wrote it.
    pub data: Box<RawValue>,
    pub exclude: Vec<String>,
    pub exclude_self: bool,
    /// When present, the sender gets an `ack` carrying it.
    pub id: Option<String>,
}

impl PartialEq for Send {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
            && self.to.get() == other.to.get()
            && self.data.get() == other.data.get()
            && self.exclude == other.exclude
            && self.exclude_self == other.exclude_self
            && self.id == other.id
    }
}

/// Who a `send` (or a server-side send) is for: GatewayWorker's sendToClient, sendToUid,
/// sendToGroup and sendToAll, each taking one name or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Connections(Vec<String>),
    Uids(Vec<String>),
    Groups(Vec<String>),
    All,
}

pub use crate::rejection::{ErrorCode, Rejection};

/// Reads one client frame. `body` is the frame's text as API Gateway passed it.
pub fn parse(body: &str) -> Result<Incoming, Rejection> {
    let Ok(fields) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(body) else {
        return Ok(Incoming::Plain);
    };
    let Some(action) = fields.get("action").and_then(|raw| as_string(raw)) else {
        return Ok(Incoming::Plain);
    };
    let fields = Fields {
        action: &action,
        map: &fields,
    };
    let command = match action.as_str() {
        "sendmessage" => {
            let data = fields.required("data", "the text to broadcast")?;
            let text = match serde_json::from_str::<String>(data.get()) {
                Ok(text) => text,
                Err(_) => compact(data),
            };
            Command::SendMessage { text }
        }
        "ping" => Command::Ping,
        "whoami" => Command::Whoami,
        "join" => Command::Join {
            group: fields.name("group")?,
            presence: fields.flag("presence")?,
        },
        "history" => Command::History {
            group: fields.name("group")?,
            since: match fields.map.get("since") {
                None => None,
                Some(raw) => Some(serde_json::from_str(raw.get()).map_err(|_| {
                    Rejection::bad(
                        "history",
                        "since must be {\"epoch\":\"…\",\"offset\":N}, as a message or joined frame gave them",
                    )
                })?),
            },
        },
        "leave" => Command::Leave { group: fields.name("group")? },
        "presence" => Command::Presence {
            group: match fields.map.get("group") {
                None => None,
                Some(_) => Some(fields.name("group")?),
            },
        },
        "send" => Command::Send(parse_send(&fields)?),
        other => {
            return Err(Rejection::new(
                ErrorCode::UnknownAction,
                format!(
                    "unknown action {other:?}; known actions are sendmessage, ping, whoami, join, leave, send, presence and history"
                ),
                Some(other),
            ))
        }
    };
    Ok(Incoming::Command(command))
}

struct Fields<'a> {
    action: &'a str,
    map: &'a BTreeMap<String, Box<RawValue>>,
}

impl Fields<'_> {
    fn required(&self, key: &str, what: &str) -> Result<&RawValue, Rejection> {
        self.map.get(key).map(|raw| raw.as_ref()).ok_or_else(|| {
            Rejection::bad(
                self.action,
                format!("{} needs {key:?}: {what}", self.action),
            )
        })
    }

    /// An optional `true`/`false`, false when absent.
    fn flag(&self, key: &str) -> Result<bool, Rejection> {
        match self.map.get(key) {
            None => Ok(false),
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|_| Rejection::bad(self.action, format!("{key} must be true or false"))),
        }
    }

    /// A required uid or group name, checked against the naming rules.
    fn name(&self, key: &str) -> Result<String, Rejection> {
        let raw = self.required(key, "a name of 1–128 characters of A-Z a-z 0-9 _ . : @ -")?;
        checked_name(self.action, key, raw)
    }
}

fn checked_name(action: &str, key: &str, raw: &RawValue) -> Result<String, Rejection> {
    match as_string(raw) {
        Some(name) if is_valid_name(&name) => Ok(name),
        Some(name) => Err(Rejection::bad(
            action,
            format!(
                "{key} {name:?} is not a valid name: use 1–128 characters of A-Z a-z 0-9 _ . : @ -"
            ),
        )),
        None => Err(Rejection::bad(action, format!("{key} must be a string"))),
    }
}

fn checked_connection_id(action: &str, key: &str, raw: &RawValue) -> Result<String, Rejection> {
    match as_string(raw) {
        Some(id) if is_valid_connection_id(&id) => Ok(id),
        Some(id) => Err(Rejection::bad(
            action,
            format!("{key} {id:?} is not a connection id"),
        )),
        None => Err(Rejection::bad(action, format!("{key} must be a string"))),
    }
}

/// A list of 1–100 names, each checked by `check`.
fn checked_list(
    action: &str,
    key: &str,
    raw: &RawValue,
    check: fn(&str, &str, &RawValue) -> Result<String, Rejection>,
    allow_empty: bool,
) -> Result<Vec<String>, Rejection> {
    let items: Vec<Box<RawValue>> = serde_json::from_str(raw.get())
        .map_err(|_| Rejection::bad(action, format!("{key} must be a list of strings")))?;
    let min = usize::from(!allow_empty);
    if items.len() < min || items.len() > MAX_LIST_NAMES {
        return Err(Rejection::bad(
            action,
            format!(
                "{key} must hold {min}–{MAX_LIST_NAMES} names, not {}",
                items.len()
            ),
        ));
    }
    items.iter().map(|item| check(action, key, item)).collect()
}

const TARGET_KEYS: &str = "connectionId, connectionIds, uid, uids, group, groups or all";

fn parse_send(fields: &Fields<'_>) -> Result<Send, Rejection> {
    let action = fields.action;
    let to = fields.required("to", &format!("a target object with one of {TARGET_KEYS}"))?;
    let target = parse_target(action, to)?;
    let data = fields.required("data", "any JSON value, null included")?;
    let exclude = match fields.map.get("exclude") {
        None => Vec::new(),
        Some(raw) => checked_list(action, "exclude", raw, checked_connection_id, true)?,
    };
    let exclude_self = fields.flag("excludeSelf")?;
    let id = match fields.map.get("id") {
        None => None,
        Some(raw) => match as_string(raw) {
            Some(id) if !id.is_empty() && id.len() <= MAX_SEND_ID_BYTES => Some(id),
            _ => {
                return Err(Rejection::bad(
                    action,
                    format!("id must be a string of 1–{MAX_SEND_ID_BYTES} bytes"),
                ))
            }
        },
    };
    Ok(Send {
        target,
        to: to.to_owned(),
        data: data.to_owned(),
        exclude,
        exclude_self,
        id,
    })
}

/// Reads a TARGET object: exactly one of its seven keys.
pub fn parse_target(action: &str, raw: &RawValue) -> Result<Target, Rejection> {
    let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw.get()).map_err(|_| {
        Rejection::bad(
            action,
            format!("to must be an object with one of {TARGET_KEYS}"),
        )
    })?;
    let mut entries = map.iter();
    let (key, value) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => {
            return Err(Rejection::bad(
                action,
                format!("to is empty: give one of {TARGET_KEYS}"),
            ))
        }
        (Some(_), Some(_)) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(Rejection::bad(
                action,
                format!(
                    "to has {} keys ({}); give exactly one target",
                    keys.len(),
                    keys.join(", ")
                ),
            ));
        }
    };
    let one = |check: fn(&str, &str, &RawValue) -> Result<String, Rejection>| {
        check(action, key, value).map(|name| vec![name])
    };
    let list = |check| checked_list(action, key, value, check, false);
    Ok(match key.as_str() {
        "connectionId" => Target::Connections(one(checked_connection_id)?),
        "connectionIds" => Target::Connections(list(checked_connection_id)?),
        "uid" => Target::Uids(one(checked_name)?),
        "uids" => Target::Uids(list(checked_name)?),
        "group" => Target::Groups(one(checked_name)?),
        "groups" => Target::Groups(list(checked_name)?),
        "all" => match serde_json::from_str::<bool>(value.get()) {
            Ok(true) => Target::All,
            _ => return Err(Rejection::bad(action, "all must be true")),
        },
        other => {
            return Err(Rejection::bad(
                action,
                format!("unknown target {other:?}; use one of {TARGET_KEYS}"),
            ))
        }
    })
}

fn as_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// The compact JSON text of a raw value (the client may have sent it with spaces).
fn compact(raw: &RawValue) -> String {
    serde_json::from_str::<serde_json::Value>(raw.get())
        .map(|value| value.to_string())
        .unwrap_or_else(|_| raw.get().to_owned())
}

/// The reply to a frame that is not a command.
pub fn echo(body: &str) -> String {
    format!("Hello, you sent: {body}")
}

/// Who sent a `send`, as recipients see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct From<'a> {
    pub connection_id: &'a str,
    pub uid: Option<&'a str>,
}

/// What a presence event tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceChange {
    Join,
    Leave,
}

/// Every JSON frame the service sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Outgoing<'a> {
    Pong,
    #[serde(rename_all = "camelCase")]
    Whoami {
        connection_id: &'a str,
        uid: Option<&'a str>,
        groups: Vec<&'a str>,
    },
    #[serde(rename_all = "camelCase")]
    Joined {
        group: &'a str,
        /// Where the group's stream is (when it keeps history and has one): recover from here.
        #[serde(flatten)]
        position: Option<&'a Position>,
        /// The members, for a `join` with `"presence":true` in a group within the size limit.
        #[serde(skip_serializing_if = "Option::is_none")]
        members: Option<Vec<From<'a>>>,
        /// For a `join` with `"presence":true` in a group over the limit: no list, no events.
        #[serde(skip_serializing_if = "Option::is_none")]
        presence_limit: Option<usize>,
        /// For a `join` with `"presence":true`: the presence version the list is as of; events
        /// not above it are already in it.
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
    },
    Left {
        group: &'a str,
    },
    Message {
        from: From<'a>,
        to: &'a RawValue,
        data: &'a RawValue,
        /// For a message to one group that keeps history: the group and the message's place.
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        #[serde(flatten)]
        position: Option<&'a Position>,
    },
    History {
        group: &'a str,
        epoch: &'a str,
        /// The group's last offset.
        offset: u64,
        recovered: bool,
        /// Each message exactly as it was delivered.
        messages: Vec<&'a RawValue>,
        /// Offsets in the span answered whose sends failed before keeping them (delivered to
        /// nobody): a client counts them as seen, not as missing.
        #[serde(skip_serializing_if = "<[u64]>::is_empty")]
        skipped: &'a [u64],
        more: bool,
    },
    /// A member joined or left a group the receiver follows (`"presence":true`): as of
    /// `version`, it is in the group (`join`) or not (`leave`). A follower keeps, per connection,
    /// the event of the highest version.
    #[serde(rename = "presence", rename_all = "camelCase")]
    PresenceEvent {
        event: PresenceChange,
        group: &'a str,
        connection_id: &'a str,
        uid: Option<&'a str>,
        version: u64,
    },
    /// A group the receiver follows grew past the presence limit: no more events for it. Made
    /// by [`Outgoing::presence_overflow`].
    #[serde(rename = "presence")]
    PresenceOverflow {
        event: &'static str,
        group: &'a str,
    },
    Ack {
        id: &'a str,
        delivered: usize,
        /// For a message kept in a group's stream: the group and its place, which the sender
        /// may not otherwise see (`excludeSelf`).
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        #[serde(flatten)]
        position: Option<&'a Position>,
    },
    Presence {
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'a str>,
        connections: usize,
        uids: Vec<&'a str>,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'a str>,
        /// The refused `send`'s own `id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
}

impl<'a> Outgoing<'a> {
    /// `{"type":"presence","event":"overflow","group":…}`.
    pub fn presence_overflow(group: &'a str) -> Self {
        Outgoing::PresenceOverflow {
            event: "overflow",
            group,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every key is a string and every value is plain data.
        serde_json::to_string(self)
            .unwrap_or_else(|_| String::from(r#"{"type":"error","code":"internal"}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(body: &str) -> Command {
        match parse(body) {
            Ok(Incoming::Command(command)) => command,
            other => panic!("{body} parsed as {other:?}"),
        }
    }

    fn rejection(body: &str) -> Rejection {
        match parse(body) {
            Err(rejection) => rejection,
            other => panic!("{body} parsed as {other:?}"),
        }
    }

    #[test]
    fn frames_that_are_not_commands_are_plain() {
        for body in [
            "hello",
            "",
            "42",
            "[1,2]",
            "{\"data\":1}",
            "{\"action\":7}",
            "{\"action\":null}",
            "{not json",
            "\"action\"",
        ] {
            assert_eq!(parse(body), Ok(Incoming::Plain), "{body}");
        }
    }

    #[test]
    fn echo_repeats_the_frame_byte_for_byte() {
        assert_eq!(echo("  {héllo} "), "Hello, you sent:   {héllo} ");
    }

    /// API Gateway bills what it carries in 32 KB units: a push of 32,769 bytes costs two
    /// messages. At the default `MAX_MESSAGE_BYTES`, every copy of the largest `send` costs one.
    #[test]
    fn the_envelope_of_a_largest_send_at_the_default_limit_fits_one_32_kib_message() {
        let limit = crate::Config::DEFAULT_MAX_MESSAGE_BYTES;
        // The worst case: names of 128 characters (the group, the sender's uid, its connection
        // id), the longest epoch `fresh_epoch` can make (32 hex digits of milliseconds and 5 of
        // noise), the largest offset, and a frame of nothing but `to` and `data`, all of it
        // repeated to each recipient.
        let group = "g".repeat(128);
        let head = format!(r#"{{"action":"send","to":{{"group":"{group}"}},"data":""#);
        let tail = r#""}"#;
        let frame = format!(
            "{head}{}{tail}",
            "x".repeat(limit - head.len() - tail.len())
        );
        assert_eq!(frame.len(), limit);
        let Command::Send(send) = command(&frame) else {
            panic!("not a send");
        };
        let (connection_id, uid) = ("C".repeat(128), "u".repeat(128));
        let position = Position {
            epoch: "f".repeat(37),
            offset: u64::MAX,
        };
        let envelope = Outgoing::Message {
            from: From {
                connection_id: &connection_id,
                uid: Some(&uid),
            },
            to: &send.to,
            data: &send.data,
            group: Some(&group),
            position: Some(&position),
        }
        .to_json();
        assert!(
            envelope.len() <= 32 * 1024,
            "a largest send's envelope is {} bytes",
            envelope.len()
        );
        assert!(
            echo(&frame).len() <= 32 * 1024,
            "the echo of a largest frame"
        );
    }

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

    #[test]
    fn an_unknown_action_is_named_in_the_error() {
        let r = rejection(r#"{"action":"dance"}"#);
        assert_eq!(r.code, ErrorCode::UnknownAction);
        assert_eq!(r.action.as_deref(), Some("dance"));
        assert!(r.message.contains("dance"));
    }

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

    #[test]
    fn every_target_form_is_read() {
        let target = |to: &str| match command(&format!(r#"{{"action":"send","to":{to},"data":1}}"#))
        {
            Command::Send(send) => send.target,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            target(r#"{"connectionId":"abc="}"#),
            Target::Connections(vec!["abc=".into()])
        );
        assert_eq!(
            target(r#"{"connectionIds":["a","b"]}"#),
            Target::Connections(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            target(r#"{"uid":"alice"}"#),
            Target::Uids(vec!["alice".into()])
        );
        assert_eq!(
            target(r#"{"uids":["alice","bob"]}"#),
            Target::Uids(vec!["alice".into(), "bob".into()])
        );
        assert_eq!(target(r#"{"group":"g"}"#), Target::Groups(vec!["g".into()]));
        assert_eq!(
            target(r#"{"groups":["g","h"]}"#),
            Target::Groups(vec!["g".into(), "h".into()])
        );
        assert_eq!(target(r#"{"all":true}"#), Target::All);
    }

    #[test]
    fn ill_formed_targets_are_bad_requests() {
        let too_many = format!(r#"{{"uids":[{}]}}"#, vec!["\"u\""; 101].join(","));
        for to in [
            r#"{}"#,
            r#"{"uid":"a","group":"b"}"#,
            r#"{"all":false}"#,
            r#"{"all":"yes"}"#,
            r#"{"uids":[]}"#,
            r#"{"uid":"not ok"}"#,
            r#"{"groups":"g"}"#,
            r#"{"planet":"mars"}"#,
            r#""alice""#,
            too_many.as_str(),
        ] {
            let r = rejection(&format!(r#"{{"action":"send","to":{to},"data":1}}"#));
            assert_eq!(r.code, ErrorCode::BadRequest, "{to}");
            assert_eq!(r.action.as_deref(), Some("send"));
        }
    }

    #[test]
    fn send_needs_a_target_and_data_but_data_may_be_null() {
        assert_eq!(
            rejection(r#"{"action":"send","data":1}"#).code,
            ErrorCode::BadRequest
        );
        assert_eq!(
            rejection(r#"{"action":"send","to":{"all":true}}"#).code,
            ErrorCode::BadRequest
        );
        assert!(matches!(
            command(r#"{"action":"send","to":{"all":true},"data":null}"#),
            Command::Send(_)
        ));
    }

    #[test]
    fn send_keeps_data_and_target_as_written_and_reads_the_options() {
        let Command::Send(send) = command(
            r#"{"action":"send","to":{"group":"g"},"data":{"n":1.10},"exclude":["x"],"excludeSelf":true,"id":"m1"}"#,
        ) else {
            panic!("not a send")
        };
        assert_eq!(send.data.get(), r#"{"n":1.10}"#);
        assert_eq!(send.to.get(), r#"{"group":"g"}"#);
        assert_eq!(send.exclude, vec!["x".to_owned()]);
        assert!(send.exclude_self);
        assert_eq!(send.id.as_deref(), Some("m1"));
    }

    #[test]
    fn ill_formed_send_options_are_bad_requests() {
        for extra in [
            r#""excludeSelf":"yes""#,
            r#""exclude":"x""#,
            r#""id":5"#,
            r#""id":"""#,
        ] {
            let body = format!(r#"{{"action":"send","to":{{"all":true}},"data":1,{extra}}}"#);
            assert_eq!(rejection(&body).code, ErrorCode::BadRequest, "{extra}");
        }
    }

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
                group: Some("g"),
                position: Some(&Position {
                    epoch: "e".into(),
                    offset: 4
                }),
            }
            .to_json(),
            r#"{"type":"ack","id":"m","delivered":0,"group":"g","epoch":"e","offset":4}"#
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
                from: From {
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
                from: From {
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
            Outgoing::PresenceEvent {
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
            Outgoing::presence_overflow("g").to_json(),
            r#"{"type":"presence","event":"overflow","group":"g"}"#
        );
        assert_eq!(
            Rejection::new(ErrorCode::TooLarge, "big", None).frame(),
            r#"{"type":"error","code":"too_large","message":"big"}"#
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_never_panics_and_non_objects_are_plain(body in any::<String>()) {
            let result = parse(&body);
            let is_object_with_string_action = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("action").map(|a| a.is_string()))
                .unwrap_or(false);
            if !is_object_with_string_action {
                prop_assert_eq!(result, Ok(Incoming::Plain));
            }
        }

        #[test]
        fn join_takes_exactly_the_valid_names(group in "\\PC{0,140}") {
            let body = serde_json::json!({"action": "join", "group": group}).to_string();
            match parse(&body) {
                Ok(Incoming::Command(Command::Join { group: parsed, .. })) => {
                    prop_assert!(crate::names::is_valid_name(&group));
                    prop_assert_eq!(parsed, group);
                }
                Err(rejection) => {
                    prop_assert!(!crate::names::is_valid_name(&group));
                    prop_assert_eq!(rejection.code, ErrorCode::BadRequest);
                    prop_assert_eq!(rejection.action.as_deref(), Some("join"));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn send_data_is_kept_byte_for_byte(data in "[ -~]{0,40}") {
            let data_json = serde_json::to_string(&data).unwrap();
            let body = format!(r#"{{"action":"send","to":{{"all":true}},"data":{data_json}}}"#);
            match parse(&body) {
                Ok(Incoming::Command(Command::Send(send))) => prop_assert_eq!(send.data.get(), data_json.as_str()),
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn an_unknown_action_is_named_back(action in "[a-z]{1,12}") {
            prop_assume!(!["sendmessage", "ping", "whoami", "join", "leave", "send", "presence"].contains(&action.as_str()));
            let body = serde_json::json!({"action": action}).to_string();
            let rejection = parse(&body).unwrap_err();
            prop_assert_eq!(rejection.code, ErrorCode::UnknownAction);
            prop_assert_eq!(rejection.action, Some(action));
        }
    }
}
