//! Pushes to connected clients through the API Gateway Management API (`@connections`).
//!
//! [`Push`] is the seam; [`ManagementApi`] is the one implementation. A 410 Gone is an answer, not
//! a failure: the client has left, and the caller removes its records. Everything else that can
//! pass (429, 5xx, a dropped connection, a timeout) is retried with backoff inside explicit
//! timeouts (a push must never hang a fan-out), then reported.
//!
//! `PostToConnection`, the call a fan-out makes thousands of times, is sent by hand: signed with
//! [`crate::aws::sigv4`] over one pooled HTTP/1.1 client. Through the SDK it cost 4.5× the bare HTTP
//! floor on this machine, most of it signing and the SDK's per-request machinery (BENCHMARKS.md).
//! `DeleteConnection`, rare, goes through `aws-sdk-apigatewaymanagement` and its typed
//! `GoneException`.

mod management_api;

pub use management_api::ManagementApi;
pub(crate) use management_api::{exchange, http_client, Http};

use std::future::Future;
use std::time::Duration;

use thiserror::Error;

/// What became of a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// API Gateway took it (for a close: the connection is closing).
    Delivered,
    /// API Gateway answered 410: the connection no longer exists.
    Gone,
}

/// A push, probe or close that failed after its retries.
#[derive(Debug, Error)]
#[error("push to {connection_id} failed ({failure}): {message}")]
pub struct PushError {
    /// The connection it was for.
    pub connection_id: String,
    /// What kind of failure, for callers to match.
    pub failure: PushFailure,
    /// AWS's words (or the transport's), for the log.
    pub message: String,
}

/// Why a push failed: what a caller (or an operator reading the log) can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PushFailure {
    /// 429 after the retries: the account's or the API's `@connections` rate.
    #[error("throttled")]
    Throttled,
    /// 5xx, or no answer at all, after the retries.
    #[error("unavailable")]
    Unavailable,
    /// The push's whole budget (`PUSH_TIMEOUT_MS`) ran out.
    #[error("timed out")]
    TimedOut,
    /// 403: the signature, the credentials, or the role's `execute-api:ManageConnections`.
    #[error("denied")]
    Denied,
    /// 413: the frame is over 128 KiB.
    #[error("too large")]
    TooLarge,
    /// Another 4xx.
    #[error("refused")]
    Refused,
    /// The endpoint is not a URL, or there are no credentials to sign with.
    #[error("misconfigured")]
    Misconfigured,
}

impl PushFailure {
    /// The failure an HTTP status that is not success, 410, 429 or 5xx stands for.
    pub fn of_status(status: http::StatusCode) -> PushFailure {
        match status {
            http::StatusCode::FORBIDDEN => PushFailure::Denied,
            http::StatusCode::PAYLOAD_TOO_LARGE => PushFailure::TooLarge,
            http::StatusCode::TOO_MANY_REQUESTS => PushFailure::Throttled,
            status if status.is_server_error() => PushFailure::Unavailable,
            _ => PushFailure::Refused,
        }
    }
}

/// Sends to and closes connections at a management endpoint.
pub trait Push: Send + Sync {
    /// Sends `data` as one text frame to the connection.
    fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &str,
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;

    /// Closes the connection (API Gateway then sends `$disconnect`).
    fn close(
        &self,
        endpoint: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;

    /// Asks whether the connection is open (GetConnection): `Delivered` once its handshake has
    /// completed, `Gone` before that and after it closed — API Gateway does not tell them apart.
    fn probe(
        &self,
        endpoint: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;
}

/// Timeouts and retries of every push.
#[derive(Clone, Copy, Debug)]
pub struct PushLimits {
    /// The longest a new TCP/TLS connection may take.
    pub connect_timeout: Duration,
    /// The longest one attempt may take.
    pub attempt_timeout: Duration,
    /// The whole budget of one push, retries included.
    pub operation_timeout: Duration,
    /// Attempts, the first included.
    pub max_attempts: u32,
    /// The first retry's backoff ceiling (the SDK's default, 1 s, is long for a fan-out).
    pub initial_backoff: Duration,
}

impl PushLimits {
    /// The limits of pushes whose whole budget is `operation_timeout` (`PUSH_TIMEOUT_MS`).
    pub fn new(operation_timeout: Duration) -> Self {
        PushLimits {
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: operation_timeout.min(Duration::from_secs(2)),
            operation_timeout,
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
        }
    }
}
