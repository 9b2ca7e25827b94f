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
//! protocol is one such application (the `protocol` crate); `docs/porting.md` puts an
//! `Events.php` beside its port.

use std::future::Future;

use super::{Client, Closing, Connecting};
use crate::app::AppError;
use crate::app::Rejection;

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
    /// connection then costs one more Lambda invocation (see [`crate::lambda::on_open`]), which an
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
    /// Let the connection in: its record is written, with what `on_connect` set.
    Accept,
    /// Refuse the handshake with this HTTP status, 400 to 599 (401, 403, 429, …); nothing is
    /// written. Any other status is a mistake: the handshake is refused with 500 and logged.
    Refuse(u16),
}
