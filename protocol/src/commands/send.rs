//! `send`: a message to connections, uids, groups or everyone. A message to one group takes its
//! place in the group's stream (to be recovered), is kept, and only then pushed; the sender gets
//! an `ack` when it gave an `id`.

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;
use shared::auth::permissions::Permissions;
use shared::gateway::frames::Sender;
use shared::prelude::{Client, Rejection, Target};
use shared::store::{Position, StoreError};
use shared::Error;

use super::Command;
use crate::fields::{as_string, bad, checked_connection_id, checked_list, checked_name, Fields};
use crate::outgoing::Outgoing;

/// The longest client-chosen `id` of a `send`, in bytes.
pub const MAX_SEND_ID_BYTES: usize = 128;

/// A `send` command, checked.
#[derive(Debug)]
pub struct Send {
    /// Whom the message goes to.
    pub target: Target,
    /// The target exactly as the client wrote it, repeated to recipients as `to`.
    pub to: Box<RawValue>,
    /// The payload exactly as the client wrote it.
    pub data: Box<RawValue>,
    /// `exclude`: connection ids that do not get the message.
    pub exclude: Vec<String>,
    /// `excludeSelf`: the sender does not get the message, even when the target includes it.
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

pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    parse_send(fields).map(Command::Send)
}

/// Needs the `send` claim for every name of the target (one refused refuses all).
pub(crate) fn refused(permissions: &Permissions, send: &Send) -> Option<String> {
    (!permissions.may_send_to(&send.target)).then(|| "send to every target named".to_owned())
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
                return Err(bad(
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
        bad(
            action,
            format!("to must be an object with one of {TARGET_KEYS}"),
        )
    })?;
    let mut entries = map.iter();
    let (key, value) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => {
            return Err(bad(
                action,
                format!("to is empty: give one of {TARGET_KEYS}"),
            ))
        }
        (Some(_), Some(_)) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(bad(
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
            _ => return Err(bad(action, "all must be true")),
        },
        other => {
            return Err(bad(
                action,
                format!("unknown target {other:?}; use one of {TARGET_KEYS}"),
            ))
        }
    })
}

pub(crate) async fn run(sender: &Client<'_>, send: Send) -> Result<Vec<String>, Error> {
    // The count begins beside the uid's read (a connection without a proven uid reads its
    // record) and is waited for by the first costly request: the stream offset, or the fan-out.
    shared::gateway::rate_limit::begin();
    let uid = sender.uid().await?;
    let message = |group: Option<&str>, position: Option<&Position>| {
        Outgoing::Message {
            from: Sender {
                connection_id: sender.connection_id(),
                uid: uid.as_deref(),
            },
            to: &send.to,
            data: &send.data,
            group,
            position,
        }
        .to_json()
    };
    // A message to one group takes its place in the group's stream, to be recovered. Not one
    // that excludes others: history would show it to the very members it was kept from.
    let excludes_others = send.exclude.iter().any(|id| id != sender.connection_id());
    let (kept, frame) = match &send.target {
        Target::Groups(groups)
            if groups.len() == 1 && sender.gateway().keeps_history() && !excludes_others =>
        {
            let group = groups[0].as_str();
            match sender
                .gateway()
                .take_place(group, |position| message(Some(group), Some(position)))
                .await
            {
                Ok((position, frame)) => (Some((group, position)), frame),
                // A stream head too hot to update still lets the message through, without a
                // place in the stream: delivered now, not recoverable later.
                Err(Error::Store(e @ StoreError::Throttled { .. })) => {
                    tracing::warn!(group, error = %e, "the group's stream is throttled: the message is sent without an offset");
                    (None, message(None, None))
                }
                Err(e) => return Err(e),
            }
        }
        _ => (None, message(None, None)),
    };
    let mut exclude: HashSet<&str> = send.exclude.iter().map(String::as_str).collect();
    if send.exclude_self {
        exclude.insert(sender.connection_id());
    }
    // A kept message is pushed only once kept; its members are read meanwhile.
    let gateway = sender.gateway();
    let keep = async {
        match &kept {
            Some((group, position)) => gateway.keep_place(group, position, &frame).await,
            None => Ok(()),
        }
    };
    let report = gateway
        .send_after(sender.endpoint(), &send.target, &exclude, &frame, keep)
        .await?;
    let mut replies = Vec::new();
    if let Some(id) = &send.id {
        replies.push(
            Outgoing::Ack {
                id,
                delivered: report.delivered,
                queued: (report.queued > 0).then_some(report.queued),
                group: kept.as_ref().map(|(group, _)| *group),
                position: kept.as_ref().map(|(_, position)| position),
            }
            .to_json(),
        );
    }
    if let Some(error) = report.error() {
        tracing::error!(error = %error, "send reached only part of its recipients");
        replies.push(
            error
                .rejection(Some("send"), sender.request_id())
                .for_command(send.id.as_deref())
                .frame(),
        );
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{command, rejection};
    use crate::echo;
    use shared::prelude::ErrorCode;

    #[test]
    fn the_envelope_of_a_largest_send_at_the_default_limit_fits_one_32_kib_message() {
        let limit = shared::Config::DEFAULT_MAX_MESSAGE_BYTES;
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
            from: Sender {
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
}
