//! The open connections, by id: how to reach each client, and what `GET @connections` reports.
//!
//! A connection is registered when its handshake begins but is not reachable until the handshake
//! has completed: API Gateway answers 410 to a push that reaches a connection before then ("A
//! message was posted … before the connection was established"), and so does the management API
//! here.

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
    /// Whether its handshake has completed, so that pushes reach it.
    established: bool,
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

    /// Registers a connection whose handshake has begun; pushes to it are answered 410 until
    /// [`Connections::established`].
    pub fn open(&self, client: Client) -> mpsc::UnboundedReceiver<Outbound> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let last_active = client.connected_at;
        self.entries().insert(
            client.connection_id.clone(),
            Entry {
                client,
                last_active,
                sender,
                established: false,
            },
        );
        receiver
    }

    /// The handshake has completed: pushes reach the connection from now on.
    pub fn established(&self, connection_id: &str) {
        if let Some(entry) = self.entries().get_mut(connection_id) {
            entry.established = true;
        }
    }

    pub fn remove(&self, connection_id: &str) {
        self.entries().remove(connection_id);
    }

    pub fn touch(&self, connection_id: &str, now: i64) {
        if let Some(entry) = self.entries().get_mut(connection_id) {
            entry.last_active = now;
        }
    }

    /// Queues `outbound` for the client; `false` when there is no such connection, or not yet.
    pub fn send(&self, connection_id: &str, outbound: Outbound) -> bool {
        self.entries()
            .get(connection_id)
            .is_some_and(|entry| entry.established && entry.sender.send(outbound).is_ok())
    }

    /// Queues a frame from the gateway itself (an error frame for the client's own message).
    pub fn answer(&self, connection_id: &str, text: String) {
        if let Some(entry) = self.entries().get(connection_id) {
            let _ = entry.sender.send(Outbound::Text(text));
        }
    }

    pub fn info(&self, connection_id: &str) -> Option<Info> {
        self.entries()
            .get(connection_id)
            .filter(|e| e.established)
            .map(|e| Info {
                client: e.client.clone(),
                last_active: e.last_active,
            })
    }
}
