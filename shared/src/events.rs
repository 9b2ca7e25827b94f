//! The Events API: what an application implements to run on the three functions, as a
//! GatewayWorker developer writes `Events.php`.
//!
//! An application is a value implementing [`Events`]; each function's `main.rs` hands it to
//! [`crate::lambda`], and the same value serves `$connect` ([`Events::on_connect`]), every
//! frame ([`Events::on_message`]) and `$disconnect` ([`Events::on_close`]). Each hook gets a
//! context: the connection it is about and the [`Gateway`], which answers every GatewayWorker call
//! (`send_to_group`, `join_group`, `client_sessions_by_group`, `close_client`, …) from DynamoDB.
//!
//! Nothing lives between invocations but the table: an application keeps no state of its own in
//! memory (Lambda runs many copies of it, and drops any of them at any time). The built-in wire
//! protocol is one such application ([`crate::built_in::BuiltIn`]); `docs/porting.md` puts an
//! `Events.php` beside its port.

use std::future::Future;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

use crate::app_error::AppError;
use crate::auth::authorizer::Proven;
use crate::auth::permissions::Permissions;
use crate::error::Error;
use crate::gateway::ended::Cause;
use crate::gateway::session::{self, Change, Session};
use crate::gateway::Gateway;
use crate::names;
use crate::payload::Payload;
use crate::push::Delivery;
use crate::rejection::Rejection;
use crate::store::{ConnectionRecord, Store};

/// An application. Only `on_message` is required; the others default to accepting every
/// connection and doing nothing on close.
///
/// An implementation writes each hook as a plain `async fn` with the signature below.
pub trait Events: Send + Sync {
    /// `$connect` (GatewayWorker's `onConnect`): may refuse the handshake, bind a uid, join
    /// groups and fill the session, all written with the connection's record in one request.
    /// Nothing can be pushed to the connecting client yet: API Gateway answers 410 until its
    /// handshake completes.
    fn on_connect(
        &self,
        client: &mut Connecting<'_>,
    ) -> impl Future<Output = Result<Verdict, AppError>> + Send {
        let _ = client;
        async { Ok(Verdict::Accept) }
    }

    /// Whether [`Events::on_open`] runs. Set it `true` when implementing `on_open`: each
    /// connection then costs one more Lambda invocation (see [`crate::on_open`]), which an
    /// application without the hook should not pay.
    const ON_OPEN: bool = false;

    /// The client's handshake has completed: the first moment it can be pushed to (a greeting,
    /// the room's state), with the same [`Client`] as `on_message` (no frame, no rate limit).
    /// Runs once per connection, shortly after `$connect` — typically within tens of
    /// milliseconds — in the message function, only when [`Events::ON_OPEN`] is `true` and the
    /// stack sets `ON_OPEN_FUNCTION`. A client that sends at once may have frames handled
    /// before, or while, it runs. An `Err` is logged; the client is told nothing.
    fn on_open(
        &self,
        client: &mut Client<'_>,
    ) -> impl Future<Output = Result<(), AppError>> + Send {
        let _ = client;
        async { Ok(()) }
    }

    /// A frame from a client (`onMessage`), as the client sent it. Its session is read when first
    /// asked for ([`Client::session`]) and its changes saved after this returns `Ok`. An `Err`
    /// is logged and gets the client the error frame [`Events::error_frame`] makes of it.
    fn on_message(
        &self,
        client: &mut Client<'_>,
        frame: &str,
    ) -> impl Future<Output = Result<(), AppError>> + Send;

    /// A connection ended (`onClose`), after its items are deleted, with its uid, groups and
    /// session as they were: at most once per connection, whichever of its `$disconnect`, a push
    /// that found it gone (410) or a kick from a function ended it ([`Closing::cause`]; see
    /// [`crate::gateway::ended`]). It runs after the event that found the end is handled; if that
    /// invocation dies first (its timeout), it does not run. A connection ended by a backend
    /// outside the functions, or only by its TTL (its `$disconnect` lost and nothing pushed to
    /// it), is not seen here.
    fn on_close(&self, client: &Closing<'_>) -> impl Future<Output = Result<(), AppError>> + Send {
        let _ = client;
        async { Ok(()) }
    }

    /// The frame a client gets when one of its frames is refused or fails — by the application
    /// (an `Err` from `on_message`) or by the library (too large, over the rate limit) — or
    /// `None` to send nothing, as a GatewayWorker application that never answers errors does.
    /// By default, `docs/protocol.md`'s error frame.
    fn error_frame(&self, rejection: &Rejection) -> Option<String> {
        Some(rejection.frame())
    }
}

/// What `on_connect` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refuse the handshake with this HTTP status, 400 to 599 (401, 403, 429, …); nothing is
    /// written. Any other status is a mistake: the handshake is refused with 500 and logged.
    Refuse(u16),
}

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

/// The sender of a frame, during `on_message`.
pub struct Client<'a> {
    gateway: &'a Gateway,
    connection_id: &'a str,
    request_id: &'a str,
    endpoint: &'a str,
    proven: Proven,
    permissions: Permissions,
    /// The session as read, and as the application has left it so far.
    session: Option<(Session, Session)>,
    action: Option<String>,
    replies: usize,
    undelivered: usize,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

impl<'a> Client<'a> {
    pub(crate) fn new(
        gateway: &'a Gateway,
        connection_id: &'a str,
        request_id: &'a str,
        endpoint: &'a str,
        proven: Proven,
        permissions: Permissions,
    ) -> Self {
        Client {
            gateway,
            connection_id,
            request_id,
            endpoint,
            proven,
            permissions,
            session: None,
            action: None,
            replies: 0,
            undelivered: 0,
            source_ip: None,
            user_agent: None,
        }
    }

    /// The client's address and user agent, as the event's `identity` gives them.
    pub(crate) fn seen_at(mut self, source_ip: Option<&str>, user_agent: Option<&str>) -> Self {
        self.source_ip = source_ip.filter(|ip| !ip.is_empty()).map(str::to_owned);
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    /// The client's IP address (`$_SERVER['REMOTE_ADDR']`), which API Gateway gives with every
    /// frame. A client behind a proxy shows the proxy's.
    pub fn source_ip(&self) -> Option<&str> {
        self.source_ip.as_deref()
    }

    /// The client's `User-Agent`, when API Gateway gives it with the frame (it does at
    /// `$connect`; [`Gateway::connection`]'s record keeps that one).
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// closeCurrentClient: closes the sender's connection; it ends at once, and `on_close` runs
    /// once this frame is handled.
    pub async fn close_current_client(&self) -> Result<(), Error> {
        self.gateway
            .close_at(self.endpoint, self.connection_id)
            .await
    }

    /// The GatewayWorker calls (`Gateway::` in PHP).
    pub fn gateway(&self) -> &'a Gateway {
        self.gateway
    }

    /// The sender's connection id (GatewayWorker's `$client_id`).
    pub fn connection_id(&self) -> &'a str {
        self.connection_id
    }

    /// API Gateway's id of this frame, which the error frames and the log lines carry.
    pub fn request_id(&self) -> &'a str {
        self.request_id
    }

    /// Where this event says pushes go.
    pub fn endpoint(&self) -> &'a str {
        self.endpoint
    }

    /// What the connection's token allows (everything without a secret).
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// The sender's uid: the one proven at `$connect`, carried by the event without a read, or
    /// else its record's (an anonymous connection a server may have bound a uid to since).
    pub async fn uid(&self) -> Result<Option<String>, Error> {
        if let Proven::Uid(uid) = &self.proven {
            return Ok(Some(uid.clone()));
        }
        let record = self
            .gateway
            .store
            .connection(self.connection_id)
            .await?
            .ok_or_else(|| Error::UnknownConnection(self.connection_id.to_owned()))?;
        Ok(record.uid)
    }

    /// sendToCurrentClient: pushes `data` (text, or a JSON value) to the sender now; whether it
    /// arrived. A failed push is logged and counted on the frame's log line, not returned: there
    /// is no one else to tell. Fails only for a value that has no JSON form.
    pub async fn send_to_current_client(&mut self, data: impl Payload) -> Result<bool, Error> {
        let data = data.into_text()?;
        Ok(self.push_to_sender(&data).await)
    }

    /// Pushes a frame the library made (an error frame) to the sender.
    pub(crate) async fn push_to_sender(&mut self, data: &str) -> bool {
        self.replies += 1;
        let pushed = Box::pin(
            self.gateway
                .push_to(self.endpoint, self.connection_id, data),
        )
        .await;
        match pushed {
            Ok(Delivery::Delivered) => true,
            Ok(Delivery::Gone) => {
                self.undelivered += 1;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "a frame to the sender could not be pushed");
                self.undelivered += 1;
                false
            }
        }
    }

    /// The sender's session (`$_SESSION`), read on first use in this frame; what the application
    /// changes is saved when `on_message` returns `Ok` (see [`crate::gateway::session`]).
    pub async fn session(&mut self) -> Result<&mut Session, Error> {
        let loaded = match self.session.take() {
            Some(loaded) => loaded,
            None => {
                let record = self
                    .gateway
                    .store
                    .connection(self.connection_id)
                    .await?
                    .ok_or_else(|| Error::UnknownConnection(self.connection_id.to_owned()))?;
                let stored = session::parse(record.session.as_deref())?;
                (stored.clone(), stored)
            }
        };
        Ok(&mut self.session.insert(loaded).1)
    }

    /// Names what the frame asked for, for its log line (bounded to 64 characters).
    pub fn set_action(&mut self, action: &str) {
        self.action = Some(action.chars().take(64).collect());
    }

    pub(crate) fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// Frames pushed to the sender, and how many of them did not arrive.
    pub(crate) fn replies(&self) -> (usize, usize) {
        (self.replies, self.undelivered)
    }

    /// Saves what the frame changed in the session, merged into the session as it is now.
    pub(crate) async fn save_session(&mut self) -> Result<(), Error> {
        let Some((before, after)) = self.session.take() else {
            return Ok(());
        };
        let change = Change::between(&before, &after);
        if change.is_empty() {
            return Ok(());
        }
        if !Box::pin(self.gateway.change_session(self.connection_id, &change)).await? {
            tracing::info!("the session was not saved: the connection is gone");
        }
        Ok(())
    }
}

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

    pub fn connection_id(&self) -> &str {
        &self.record.connection_id
    }

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
