//! What a hook returns when it does not carry a frame out: a refusal the client is told of
//! (`bad_request`, `forbidden`, …), or a failure — the library's or the application's own (its
//! database, its HTTP client) — that the client hears of as `internal` and the log line names.
//!
//! Any `std::error::Error` converts with `?`, as with `anyhow`; for that, `AppError` itself is
//! not a `std::error::Error`. A boxed error (`anyhow::Error`) goes through [`AppError::boxed`].

use std::fmt;

use crate::app::{ErrorCode, Rejection};
use crate::error::Error;

/// A hook's error. Build refusals with [`AppError::bad_request`], [`AppError::forbidden`] or
/// [`AppError::refuse`]; everything else arrives by `?`.
pub struct AppError(Kind);

enum Kind {
    Refused(Rejection),
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// A refusal with this code and message, for the client to read.
    pub fn refuse(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError(Kind::Refused(Rejection::new(code, message, None)))
    }

    /// The frame was not understood (`bad_request`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::refuse(ErrorCode::BadRequest, message)
    }

    /// The connection may not do this (`forbidden`).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::refuse(ErrorCode::Forbidden, message)
    }

    /// A failure with only a message (`anyhow!`'s use): the client hears `internal`.
    pub fn msg(message: impl Into<String>) -> Self {
        AppError(Kind::Failed(message.into().into()))
    }

    /// The rejection the client is told of: the refusal as it was made, the library's own
    /// refusal inside a failure (a rate limit, a full group list), or else `internal` naming the
    /// request, so that an operator can find its log line. `action` names the frame's action for
    /// the library's refusals.
    pub fn rejection(&self, action: Option<&str>, request_id: &str) -> Rejection {
        match &self.0 {
            Kind::Refused(rejection) => {
                let mut rejection = rejection.clone();
                if rejection.action.is_none() {
                    rejection.action = action.map(str::to_owned);
                }
                rejection
            }
            Kind::Failed(error) => match library_error(error.as_ref()) {
                Some(error) => error.rejection(action, request_id),
                None => Rejection::new(
                    ErrorCode::Internal,
                    format!("the application failed (request {request_id})"),
                    action,
                ),
            },
        }
    }

    /// Whether this is a refusal (the client's doing, told as made) rather than a failure (the
    /// service's, logged as an error).
    pub fn is_refusal(&self) -> bool {
        match &self.0 {
            Kind::Refused(_) => true,
            Kind::Failed(error) => library_error(error.as_ref())
                .is_some_and(|error| error.rejection(None, "").code != ErrorCode::Internal),
        }
    }

    /// A failure from a boxed error, which `?` cannot convert (`Box<dyn Error>` is not itself a
    /// `std::error::Error`): `anyhow::Error`'s `.into()`, say.
    pub fn boxed(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        AppError(Kind::Failed(error))
    }

    /// The library's error inside, when this is one (or wraps one, as a source).
    pub fn library_error(&self) -> Option<&Error> {
        match &self.0 {
            Kind::Failed(error) => library_error(error.as_ref()),
            Kind::Refused(_) => None,
        }
    }
}

/// The library's error in `error`'s chain of sources: an application that wraps a Gateway call's
/// error in its own keeps the library's refusals (a rate limit stays `rate_limited`).
fn library_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(library) = error.downcast_ref::<Error>() {
            return Some(library);
        }
        next = error.source();
    }
    None
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for AppError {
    fn from(error: E) -> Self {
        AppError(Kind::Failed(Box::new(error)))
    }
}

impl From<Rejection> for AppError {
    fn from(rejection: Rejection) -> Self {
        AppError(Kind::Refused(rejection))
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Refused(rejection) => {
                write!(f, "refused ({:?}): {}", rejection.code, rejection.message)
            }
            Kind::Failed(error) => error.fmt(f),
        }
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Refused(rejection) => f.debug_tuple("Refused").field(rejection).finish(),
            Kind::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails_with_io() -> Result<(), AppError> {
        Err(std::io::Error::other("the app's database is down"))?;
        Ok(())
    }

    #[test]
    fn an_applications_own_error_converts_with_question_mark_and_is_internal() {
        let error = fails_with_io().unwrap_err();
        assert!(!error.is_refusal());
        let told = error.rejection(Some("say"), "req-1");
        assert_eq!(told.code, ErrorCode::Internal);
        assert!(told.message.contains("req-1"), "{}", told.message);
        assert!(!told.message.contains("database"), "{}", told.message);
    }

    #[test]
    fn a_refusal_is_told_as_it_was_made() {
        let error = AppError::bad_request("log in first");
        assert!(error.is_refusal());
        let told = error.rejection(Some("say"), "req-1");
        assert_eq!(
            (told.code, told.message.as_str(), told.action.as_deref()),
            (ErrorCode::BadRequest, "log in first", Some("say")),
            "the action the frame named"
        );
    }

    #[test]
    fn the_librarys_refusals_stay_refusals_through_question_mark() {
        let full: AppError = Error::TooManyGroups(90).into();
        let told = full.rejection(Some("join"), "r");
        assert_eq!(
            (told.code, told.action.as_deref()),
            (ErrorCode::BadRequest, Some("join"))
        );
        let limited: AppError =
            Error::Rejected(Rejection::new(ErrorCode::RateLimited, "slow down", None)).into();
        assert_eq!(limited.rejection(None, "r").code, ErrorCode::RateLimited);
        let unreachable: AppError = Error::NoEndpoint.into();
        assert!(!unreachable.is_refusal());
    }

    /// An application's own error type that wraps the library's.
    #[derive(Debug, thiserror::Error)]
    #[error("the lobby could not be joined")]
    struct Lobby(#[source] Error);

    #[test]
    fn a_library_refusal_wrapped_in_an_applications_error_stays_a_refusal() {
        let limited = Error::Rejected(Rejection::new(ErrorCode::RateLimited, "slow down", None));
        let wrapped: AppError = Lobby(limited).into();
        assert!(wrapped.is_refusal());
        assert_eq!(wrapped.rejection(None, "r").code, ErrorCode::RateLimited);
        let boxed: Box<dyn std::error::Error + Send + Sync> = "a boxed failure".into();
        assert!(!AppError::boxed(boxed).is_refusal());
    }
}
