//! The open connections, by id: how to reach each client, and what `GET @connections` reports.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::events::Client;

/// What can be sent down one client's socket.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    /// Close the connection (the management API's DELETE).
    Close,
}

struct Entry {
    client: Client,
    last_active: i64,
    sender: mpsc::UnboundedSender<Outbound>,
}

/// The registry of open connections.
#[derive(Default)]
pub struct Connections {
    entries: Mutex<HashMap<String, Entry>>,
}

/// What `GET @connections/{id}` answers.
#[derive(Debug)]
pub struct Info {
    pub client: Client,
    pub last_active: i64,
}

impl Connections {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection; frames pushed before its socket is ready wait in the channel.
    pub fn open(&self, client: Client) -> mpsc::UnboundedReceiver<Outbound> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let last_active = client.connected_at;
        self.entries().insert(
            client.connection_id.clone(),
            Entry {
                client,
                last_active,
                sender,
            },
        );
        receiver
    }

    pub fn remove(&self, connection_id: &str) {
        self.entries().remove(connection_id);
    }

    pub fn touch(&self, connection_id: &str, now: i64) {
        if let Some(entry) = self.entries().get_mut(connection_id) {
            entry.last_active = now;
        }
    }

    /// Queues `outbound` for the client; `false` when there is no such connection.
    pub fn send(&self, connection_id: &str, outbound: Outbound) -> bool {
        self.entries()
            .get(connection_id)
            .is_some_and(|entry| entry.sender.send(outbound).is_ok())
    }

    pub fn info(&self, connection_id: &str) -> Option<Info> {
        self.entries().get(connection_id).map(|e| Info {
            client: e.client.clone(),
            last_active: e.last_active,
        })
    }
}
