//! Why the environment could not be read into a configuration.

use thiserror::Error;

/// Why the environment could not be turned into a [`super::Config`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable (`TABLE_NAME`) is unset or blank.
    #[error("{0} is not set: give it the DynamoDB table that holds the connections")]
    Missing(&'static str),
    /// Neither `AUTH_SECRET_ARN` nor `AUTH_SECRET` is set, and `ALLOW_ANONYMOUS` is not `true`
    /// ([`super::Config::require_secret`]).
    #[error("AUTH_SECRET_ARN is not set: give the ARN of the Secrets Manager secret that holds the token keys (the template sets it; AUTH_SECRET, a bare key, is for local runs only), or set ALLOW_ANONYMOUS=true for local development")]
    NoSecret,
    /// `AUTH_SECRET` is nothing but white space (an empty one counts as unset).
    #[error("AUTH_SECRET is blank: give the HS256 secret that signs ?token=")]
    BlankSecret,
    /// `AUTH_SECRET` and `AUTH_SECRET_ARN` are both set.
    #[error("AUTH_SECRET and AUTH_SECRET_ARN are both set: give one (AUTH_SECRET_ARN in AWS; AUTH_SECRET for local runs only)")]
    TwoSecrets,
    /// A variable's value is not one the setting accepts.
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What its value must be, in words.
        expected: &'static str,
        /// The value it had.
        value: String,
    },
}
