//! [`Closing`]: a connection that has ended, in `on_close`.

use crate::gateway::ended::Cause;
use crate::gateway::session::{self, Session};
use crate::gateway::Gateway;
use crate::store::ConnectionRecord;

/// A connection that has closed, during `on_close`: what its record said.
pub struct Closing<'a> {
    gateway: &'a Gateway,
    record: ConnectionRecord,
    session: Session,
    cause: Cause,
}

impl<'a> Closing<'a> {
    pub(crate) fn new(gateway: &'a Gateway, record: ConnectionRecord, cause: Cause) -> Self {
        let session = session::parse(record.session.as_deref()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the closing connection's session could not be read");
            Session::new()
        });
        Closing {
            gateway,
            record,
            session,
            cause,
        }
    }

    /// The GatewayWorker calls; the closed connection is no longer among any set's members.
    pub fn gateway(&self) -> &'a Gateway {
        self.gateway
    }

    /// The connection's id (GatewayWorker's `$client_id`).
    pub fn connection_id(&self) -> &str {
        &self.record.connection_id
    }

    /// Its uid, when it had one.
    pub fn uid(&self) -> Option<&str> {
        self.record.uid.as_deref()
    }

    /// The client's IP address at its handshake.
    pub fn source_ip(&self) -> Option<&str> {
        self.record.source_ip.as_deref()
    }

    /// The handshake's `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.record.user_agent.as_deref()
    }

    /// The groups it was in.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.record.groups.iter().map(String::as_str)
    }

    /// Its session as it last was.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The WebSocket close code, when API Gateway gave one (with its `$disconnect`).
    pub fn close_code(&self) -> Option<i64> {
        match self.cause {
            Cause::Disconnect { close_code } => close_code,
            Cause::Gone | Cause::Kicked => None,
        }
    }

    /// What ended it: its `$disconnect`, a push that found it gone, or a kick.
    pub fn cause(&self) -> Cause {
        self.cause
    }
}
