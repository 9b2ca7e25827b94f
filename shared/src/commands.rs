//! What each client command does, given who sent it.
//!
//! Each function carries out one [`Command`] and returns the frames its sender gets back; frames
//! for other connections are pushed on the way.

use std::collections::HashSet;

use crate::error::Error;
use crate::events::Client;
use crate::presence_events::Subject;
use crate::protocol::{self, Command, Outgoing, Target};
use serde_json::value::RawValue;

use crate::store::{Members, Position, Store, StoreError};

/// Carries out `command`; returns the frames for the sender.
pub async fn run(sender: &Client<'_>, command: Command) -> Result<Vec<String>, Error> {
    let gateway = sender.gateway();
    match command {
        Command::Ping => Ok(vec![Outgoing::Pong.to_json()]),
        Command::SendMessage { text } => {
            let report = gateway
                .send(sender.endpoint(), &Target::All, &HashSet::new(), &text)
                .await?;
            report.error().map_or(Ok(Vec::new()), Err)
        }
        Command::Whoami => {
            let record = gateway.store.connection(sender.connection_id()).await?;
            let (uid, groups) = record.map(|r| (r.uid, r.groups)).unwrap_or_default();
            Ok(vec![Outgoing::Whoami {
                connection_id: sender.connection_id(),
                uid: uid.as_deref(),
                groups: groups.iter().map(String::as_str).collect(),
            }
            .to_json()])
        }
        Command::Join { group, presence } => join(sender, &group, presence).await,
        Command::Leave { group } => {
            // The count beside the uid's read (a connection without a proven uid reads its record).
            let (admitted, uid) = futures_util::join!(crate::rate_limit::admitted(), sender.uid());
            admitted?;
            let uid = uid?;
            gateway
                .leave_at(
                    Some(sender.endpoint()),
                    sender.connection_id(),
                    uid.as_deref(),
                    &group,
                )
                .await?;
            Ok(vec![Outgoing::Left { group: &group }.to_json()])
        }
        Command::History { group, since } => {
            let recovery = gateway.recover(&group, since.as_ref()).await?;
            let messages = recovery
                .messages
                .iter()
                .filter_map(|kept| kept.frame.as_deref())
                .map(serde_json::from_str::<&RawValue>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Malformed(format!("a kept message is not JSON: {e}")))?;
            Ok(vec![Outgoing::History {
                group: &group,
                epoch: &recovery.top.epoch,
                offset: recovery.top.offset,
                recovered: recovery.recovered,
                messages,
                skipped: &recovery.skipped,
                more: recovery.more,
            }
            .to_json()])
        }
        Command::Presence { group } => {
            let of = group.as_deref().map_or(Members::All, Members::Group);
            crate::rate_limit::admitted().await?;
            let presence = gateway.census(of).await?;
            Ok(vec![Outgoing::Presence {
                group: group.as_deref(),
                connections: presence.connections,
                uids: presence.uids.iter().map(String::as_str).collect(),
            }
            .to_json()])
        }
        Command::Send(send) => send_message(sender, send).await,
    }
}

/// `join`: the group's followers are told; the joiner learns where the group's stream is and,
/// with `presence`, who is in it. Both are read after the membership is written: every message
/// after the position is pushed to the joiner or kept for it, and every presence event after the
/// list's version tells of a change the list does not hold.
async fn join(sender: &Client<'_>, group: &str, presence: bool) -> Result<Vec<String>, Error> {
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
            .map(|m| protocol::From {
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

async fn send_message(sender: &Client<'_>, send: protocol::Send) -> Result<Vec<String>, Error> {
    // The count begins beside the uid's read (a connection without a proven uid reads its
    // record) and is waited for by the first costly request: the stream offset, or the fan-out.
    crate::rate_limit::begin();
    let uid = sender.uid().await?;
    let message = |group: Option<&str>, position: Option<&Position>| {
        Outgoing::Message {
            from: protocol::From {
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
