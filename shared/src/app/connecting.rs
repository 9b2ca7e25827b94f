//! [`Connecting`]: a connection during its `$connect` (GatewayWorker's `onConnect`).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

use crate::error::Error;
use crate::gateway::session::Session;
use crate::gateway::Gateway;
use crate::names;
use crate::store::ConnectionRecord;

/// A connection during its `$connect`: what it asked with, and the record about to be written.
pub struct Connecting<'a> {
    gateway: &'a Gateway,
    request: &'a ApiGatewayWebsocketProxyRequest,
    record: ConnectionRecord,
    session: Session,
}

impl<'a> Connecting<'a> {
    pub(crate) fn new(
        gateway: &'a Gateway,
        request: &'a ApiGatewayWebsocketProxyRequest,
        record: ConnectionRecord,
    ) -> Self {
        Connecting {
            gateway,
            request,
            record,
            session: Session::new(),
        }
    }

    /// The GatewayWorker calls, for anyone but this connection (it cannot be pushed to yet).
    pub fn gateway(&self) -> &'a Gateway {
        self.gateway
    }

    /// The connection's id (GatewayWorker's `$client_id`).
    pub fn connection_id(&self) -> &str {
        &self.record.connection_id
    }

    /// The uid its token proved (or `?uid=` named, without a secret), or one bound here.
    pub fn uid(&self) -> Option<&str> {
        self.record.uid.as_deref()
    }

    /// The client's IP address (`$_SERVER['REMOTE_ADDR']`), kept on its record.
    pub fn source_ip(&self) -> Option<&str> {
        self.record.source_ip.as_deref()
    }

    /// The handshake's `User-Agent`, kept on its record.
    pub fn user_agent(&self) -> Option<&str> {
        self.record.user_agent.as_deref()
    }

    /// A query string parameter of the handshake.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.request.query_string_parameters.first(name)
    }

    /// A header of the handshake (`Origin`, `User-Agent`, …).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers.get(name)?.to_str().ok()
    }

    /// bindUid, for a connection that has none; `false` when it already has one (a uid from a
    /// token is never replaced).
    pub fn bind_uid(&mut self, uid: &str) -> Result<bool, Error> {
        if !names::is_valid_name(uid) {
            return Err(Error::InvalidName(uid.to_owned()));
        }
        if self.record.uid.is_some() {
            return Ok(false);
        }
        self.record.uid = Some(uid.to_owned());
        Ok(true)
    }

    /// joinGroup, written with the record.
    pub fn join_group(&mut self, group: &str) -> Result<(), Error> {
        if !names::is_valid_name(group) {
            return Err(Error::InvalidName(group.to_owned()));
        }
        self.record.groups.insert(group.to_owned());
        Ok(())
    }

    /// The session the connection starts with (`$_SESSION`).
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The record to write: the connection, its uid, groups and session.
    pub(crate) fn into_record(self) -> ConnectionRecord {
        let mut record = self.record;
        if !self.session.is_empty() {
            record.session = Some(serde_json::Value::Object(self.session).to_string());
        }
        record
    }
}
