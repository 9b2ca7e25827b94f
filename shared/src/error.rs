//! The library's one error type, and the one place it becomes what a client sees.

use thiserror::Error;

use crate::app::{ErrorCode, Rejection};
use crate::auth::token_keys::KeysError;
use crate::config::ConfigError;
use crate::push::{PushError, PushFailure};
use crate::store::StoreError;

/// The library's errors: a misconfiguration, a failed store or push, or a request it refuses. What
/// a client is told of each is [`Error::rejection`].
#[derive(Debug, Error)]
pub enum Error {
    /// A setting is missing or wrong (at init).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token keys could not be read from Secrets Manager (at `$connect`'s init).
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// DynamoDB failed after the retries.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A push, probe or close failed after the retries.
    #[error(transparent)]
    Push(#[from] PushError),
    /// Some pushes of a fan-out failed after their retries (the others went out).
    #[error("{failed} of {attempted} pushes failed after retries")]
    Undelivered {
        /// Pushes that failed.
        failed: usize,
        /// Pushes attempted.
        attempted: usize,
    },
    /// The connection has no record: it ended, or its `$connect` never stored it.
    #[error("connection {0} has no record: it was removed or never stored; reconnect")]
    UnknownConnection(String),
    #[error(
        "no management endpoint: set MANAGEMENT_ENDPOINT, or send events with domainName and stage"
    )]
    /// Nowhere to push: neither `MANAGEMENT_ENDPOINT` nor the event names the API.
    NoEndpoint,
    /// A uid, group or connection id outside the naming rules.
    #[error("{0:?} is not a valid name: use 1–128 characters of A-Z a-z 0-9 _ . : @ - (connection ids: base64)")]
    InvalidName(String),
    /// The authorizer's refusal. Its text is API Gateway's contract: an authorizer that fails
    /// with exactly `Unauthorized` turns the handshake into a 401 (any other failure is a 500).
    #[error("Unauthorized")]
    Unauthorized,
    /// A join past `MAX_GROUPS`: a client's error (`bad_request`), not the service's.
    #[error(
        "the connection is in {0} groups, the most it may be in; leave one before joining another"
    )]
    TooManyGroups(usize),
    /// A [`crate::app::Json`] value with no JSON form: the application's mistake.
    #[error("the frame could not be serialized as JSON: {0}")]
    Unserializable(String),
    /// The function was invoked with an event it does not handle.
    #[error("the event is not one this function handles (its route's, or for $connect the authorizer's; for the message function an on_open request): {0}")]
    UnexpectedEvent(String),
    /// A frame the application will not carry out: the client gets this rejection's error frame
    /// (`bad_request`, `forbidden`, …) rather than `internal`.
    #[error("refused ({code:?}): {message}", code = .0.code, message = .0.message)]
    Rejected(Rejection),
}

impl From<Rejection> for Error {
    fn from(rejection: Rejection) -> Self {
        Error::Rejected(rejection)
    }
}

impl Error {
    /// The error frame a client gets for this error: the application's own rejection, or else
    /// `internal` with the request id so that an operator can find the log line.
    pub fn rejection(&self, action: Option<&str>, request_id: &str) -> Rejection {
        let what = match self {
            Error::Rejected(rejection) => return rejection.clone(),
            Error::TooManyGroups(_) | Error::InvalidName(_) => {
                return Rejection::new(ErrorCode::BadRequest, self.to_string(), action)
            }
            Error::Undelivered { failed, attempted } => {
                format!("the message could not be pushed to {failed} of {attempted} recipients")
            }
            Error::UnknownConnection(_) => "this connection has no record; reconnect".to_owned(),
            Error::Store(StoreError::Denied { .. } | StoreError::NoTable { .. })
            | Error::Push(PushError {
                failure: PushFailure::Denied | PushFailure::Misconfigured,
                ..
            }) => "the service is misconfigured".to_owned(),
            Error::Store(_) => "the connection store failed after retries".to_owned(),
            Error::Push(_) => "the push API failed after retries".to_owned(),
            Error::Config(_) | Error::Keys(_) | Error::NoEndpoint => {
                "the service is misconfigured".to_owned()
            }
            Error::Unserializable(_) => "a reply could not be serialized".to_owned(),
            Error::Unauthorized | Error::UnexpectedEvent(_) => "the request was refused".to_owned(),
        };
        Rejection::new(
            ErrorCode::Internal,
            format!("{what} (request {request_id})"),
            action,
        )
    }
}

/// How a failed invocation is reported to Lambda (and so to CloudWatch).
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        let error_type = match &error {
            Error::Config(_) => "Config",
            Error::Keys(_) => "Keys",
            Error::Store(StoreError::Throttled { .. }) => "StoreThrottled",
            Error::Store(StoreError::Denied { .. }) => "StoreDenied",
            Error::Store(StoreError::NoTable { .. }) => "StoreNoTable",
            Error::Store(StoreError::TimedOut { .. }) => "StoreTimedOut",
            Error::Store(_) => "Store",
            Error::Push(PushError { failure, .. }) => match failure {
                PushFailure::Throttled => "PushThrottled",
                PushFailure::Denied => "PushDenied",
                PushFailure::TimedOut => "PushTimedOut",
                _ => "Push",
            },
            Error::Undelivered { .. } => "Push",
            Error::UnknownConnection(_) => "UnknownConnection",
            Error::NoEndpoint => "NoEndpoint",
            Error::InvalidName(_) => "InvalidName",
            Error::TooManyGroups(_) => "TooManyGroups",
            Error::Unauthorized => "Unauthorized",
            Error::UnexpectedEvent(_) => "UnexpectedEvent",
            Error::Unserializable(_) => "Unserializable",
            Error::Rejected(_) => "Rejected",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
