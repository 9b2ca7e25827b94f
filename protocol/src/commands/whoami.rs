//! `whoami`: the connection's id, uid and groups, from its record (one read).

use shared::prelude::Client;
use shared::Error;

use crate::outgoing::Outgoing;

/// Reads the sender's record.
pub(crate) async fn run(sender: &Client<'_>) -> Result<Vec<String>, Error> {
    let record = sender.gateway().connection(sender.connection_id()).await?;
    let (uid, groups) = record.map(|r| (r.uid, r.groups)).unwrap_or_default();
    Ok(vec![Outgoing::Whoami {
        connection_id: sender.connection_id(),
        uid: uid.as_deref(),
        groups: groups.iter().map(String::as_str).collect(),
    }
    .to_json()])
}
