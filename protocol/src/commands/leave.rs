//! `leave`: the connection stops being a member of a group; its followers are told.

use shared::prelude::{Client, Rejection};
use shared::Error;

use super::Command;
use crate::fields::Fields;
use crate::outgoing::Outgoing;

pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    Ok(Command::Leave {
        group: fields.name("group")?,
    })
}

/// Leaves, and answers `left`.
pub(crate) async fn run(sender: &Client<'_>, group: &str) -> Result<Vec<String>, Error> {
    // The count beside the uid's read (a connection without a proven uid reads its record).
    let (admitted, uid) =
        futures_util::join!(shared::gateway::rate_limit::admitted(), sender.uid());
    admitted?;
    let uid = uid?;
    sender
        .gateway()
        .leave_at(
            Some(sender.endpoint()),
            sender.connection_id(),
            uid.as_deref(),
            group,
        )
        .await?;
    Ok(vec![Outgoing::Left { group }.to_json()])
}
