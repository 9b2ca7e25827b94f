//! What each client command does, given who sent it.
//!
//! Each function carries out one [`Command`] and returns the frames its sender gets back; frames
//! for other connections are pushed on the way.

use std::collections::HashSet;

use crate::authorizer::Proven;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::permissions::Permissions;
use crate::protocol::{self, Command, Outgoing, Target};
use crate::push::Push;
use crate::store::{Members, Store};

/// The sender of a frame, and where pushes go.
pub struct Sender<'a> {
    pub connection_id: &'a str,
    pub request_id: &'a str,
    pub endpoint: &'a str,
    /// Who the `$connect` authorizer proved the sender to be, as the event carries it.
    pub proven: Proven,
    /// What its token allows, as the event carries it.
    pub permissions: Permissions,
}

/// Carries out `command`; returns the frames for the sender.
pub async fn run<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    sender: &Sender<'_>,
    command: Command,
) -> Result<Vec<String>, Error> {
    match command {
        Command::Ping => Ok(vec![Outgoing::Pong.to_json()]),
        Command::SendMessage { text } => {
            let report = gateway
                .send(sender.endpoint, &Target::All, &HashSet::new(), &text)
                .await?;
            report.error().map_or(Ok(Vec::new()), Err)
        }
        Command::Whoami => {
            let record = gateway.store.connection(sender.connection_id).await?;
            let (uid, groups) = record.map(|r| (r.uid, r.groups)).unwrap_or_default();
            Ok(vec![Outgoing::Whoami {
                connection_id: sender.connection_id,
                uid: uid.as_deref(),
                groups: groups.iter().map(String::as_str).collect(),
            }
            .to_json()])
        }
        Command::Join { group } => {
            if !gateway.join_group(sender.connection_id, &group).await? {
                return Err(Error::UnknownConnection(sender.connection_id.to_owned()));
            }
            Ok(vec![Outgoing::Joined { group: &group }.to_json()])
        }
        Command::Leave { group } => {
            gateway.leave_group(sender.connection_id, &group).await?;
            Ok(vec![Outgoing::Left { group: &group }.to_json()])
        }
        Command::Presence { group } => {
            let of = group.as_deref().map_or(Members::All, Members::Group);
            let presence = gateway.presence(of).await?;
            Ok(vec![Outgoing::Presence {
                group: group.as_deref(),
                connections: presence.connections,
                uids: presence.uids.iter().map(String::as_str).collect(),
            }
            .to_json()])
        }
        Command::Send(send) => send_message(gateway, sender, send).await,
    }
}

/// The sender's uid: the one the authorizer proved, carried by the event, or else (no authorizer,
/// or an anonymous connection that a server may have bound a uid to since) its record's.
async fn sender_uid<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    sender: &Sender<'_>,
) -> Result<Option<String>, Error> {
    if let Proven::Uid(uid) = &sender.proven {
        return Ok(Some(uid.clone()));
    }
    let record = gateway
        .store
        .connection(sender.connection_id)
        .await?
        .ok_or_else(|| Error::UnknownConnection(sender.connection_id.to_owned()))?;
    Ok(record.uid)
}

async fn send_message<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    sender: &Sender<'_>,
    send: protocol::Send,
) -> Result<Vec<String>, Error> {
    let uid = sender_uid(gateway, sender).await?;
    let frame = Outgoing::Message {
        from: protocol::From {
            connection_id: sender.connection_id,
            uid: uid.as_deref(),
        },
        to: &send.to,
        data: &send.data,
    }
    .to_json();
    let mut exclude: HashSet<&str> = send.exclude.iter().map(String::as_str).collect();
    if send.exclude_self {
        exclude.insert(sender.connection_id);
    }
    let report = gateway
        .send(sender.endpoint, &send.target, &exclude, &frame)
        .await?;
    let mut replies = Vec::new();
    if let Some(id) = &send.id {
        replies.push(
            Outgoing::Ack {
                id,
                delivered: report.delivered,
            }
            .to_json(),
        );
    }
    if let Some(error) = report.error() {
        tracing::error!(error = %error, "send reached only part of its recipients");
        replies.push(error.rejection(Some("send"), sender.request_id).frame());
    }
    Ok(replies)
}
