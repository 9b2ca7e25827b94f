//! A frame the service or an application will not carry out: its code and the words that tell
//! the client why. The library's own refusals (size, rate, permission) and an application's
//! ([`crate::app::AppError::refuse`]) are both one of these; how a client hears of it is
//! the application's choice ([`crate::app::Events::error_frame`]).

use serde::Serialize;

/// The error codes of `docs/protocol.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A string `action` the service does not know.
    UnknownAction,
    /// A missing or ill-formed field.
    BadRequest,
    /// A message over `MAX_MESSAGE_BYTES`.
    TooLarge,
    /// More than `RATE_LIMIT` frames from the connection in the current window.
    RateLimited,
    /// The connection's token does not allow the command (protocol: "Authorization").
    Forbidden,
    /// A failure of the service (the store, the push API, after retries) or of the application.
    Internal,
}

/// A frame the service will not carry out, with the words that tell the client why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What kind of refusal it is: the frame's `code`.
    pub code: ErrorCode,
    /// The words that tell the client why: the frame's `message`.
    pub message: String,
    /// The `action` of the frame refused, when known.
    pub action: Option<String>,
    /// The `id` of the `send` refused, so that a client with several in flight knows which.
    pub id: Option<String>,
}

impl Rejection {
    /// A rejection that names no `id` ([`Rejection::for_command`] adds one).
    pub fn new(code: ErrorCode, message: impl Into<String>, action: Option<&str>) -> Self {
        Rejection {
            code,
            message: message.into(),
            action: action.map(str::to_owned),
            id: None,
        }
    }

    /// The same rejection, naming the `id` the refused command carried (when it carried one).
    pub fn for_command(mut self, id: Option<&str>) -> Self {
        self.id = id.map(str::to_owned);
        self
    }

    /// The error frame `docs/protocol.md` gives this rejection:
    /// `{"type":"error","code":…,"message":…,"action"?:…,"id"?:…}`; what [`crate::app::Events::error_frame`]
    /// sends unless an application frames its errors its own way.
    pub fn frame(&self) -> String {
        crate::gateway::frames::Frame::Error {
            code: self.code,
            message: &self.message,
            action: self.action.as_deref(),
            id: self.id.as_deref(),
        }
        .to_json()
    }
}
