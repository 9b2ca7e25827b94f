//! What each client command does, given who sent it.
//!
//! Each function carries out one [`Command`] and returns the frames its sender gets back; frames
//! for other connections are pushed on the way.

use std::collections::HashSet;

use crate::error::Error;
use crate::events::Client;
use crate::protocol::{self, Command, Outgoing, Target};
use crate::push::Push;
use crate::store::{Members, Store};

/// Carries out `command`; returns the frames for the sender.
pub async fn run<S: Store, P: Push>(
    sender: &Client<'_, S, P>,
    command: Command,
) -> Result<Vec<String>, Error> {
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
        Command::Join { group } => {
            if !gateway.join_group(sender.connection_id(), &group).await? {
                return Err(Error::UnknownConnection(sender.connection_id().to_owned()));
            }
            Ok(vec![Outgoing::Joined { group: &group }.to_json()])
        }
        Command::Leave { group } => {
            gateway.leave_group(sender.connection_id(), &group).await?;
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
        Command::Send(send) => send_message(sender, send).await,
    }
}

async fn send_message<S: Store, P: Push>(
    sender: &Client<'_, S, P>,
    send: protocol::Send,
) -> Result<Vec<String>, Error> {
    let uid = sender.uid().await?;
    let frame = Outgoing::Message {
        from: protocol::From {
            connection_id: sender.connection_id(),
            uid: uid.as_deref(),
        },
        to: &send.to,
        data: &send.data,
    }
    .to_json();
    let mut exclude: HashSet<&str> = send.exclude.iter().map(String::as_str).collect();
    if send.exclude_self {
        exclude.insert(sender.connection_id());
    }
    let report = sender
        .gateway()
        .send(sender.endpoint(), &send.target, &exclude, &frame)
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
        replies.push(error.rejection(Some("send"), sender.request_id()).frame());
    }
    Ok(replies)
}
