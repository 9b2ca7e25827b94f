//! Why the store could not answer, by what a caller can do about it.

use thiserror::Error;

/// Why the store could not answer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A refusal of another kind (a validation error, a transaction cancelled for a reason the
    /// caller did not expect), after the SDK's retries.
    #[error("DynamoDB {operation} failed: {message}")]
    Request {
        /// The DynamoDB operation.
        operation: &'static str,
        /// AWS's words.
        message: String,
    },
    /// The credentials or the role's policy refused it: a deployment to fix, not a moment to wait.
    #[error(
        "DynamoDB {operation} was denied (check the function's role and credentials): {message}"
    )]
    Denied {
        /// The DynamoDB operation.
        operation: &'static str,
        /// AWS's words.
        message: String,
    },
    /// The table does not exist (`TABLE_NAME`, or the region).
    #[error("DynamoDB {operation}: no such table (check TABLE_NAME and the region): {message}")]
    NoTable {
        /// The DynamoDB operation.
        operation: &'static str,
        /// AWS's words.
        message: String,
    },
    /// No answer within `DYNAMODB_TIMEOUT_MS`, or none at all (the connection failed), after the
    /// retries.
    #[error("DynamoDB {operation} got no answer: {message}")]
    TimedOut {
        /// The DynamoDB operation.
        operation: &'static str,
        /// What the transport said.
        message: String,
    },
    /// DynamoDB refused for throughput after the SDK's retries: a hot key or the table's cap.
    #[error("DynamoDB {operation} was throttled after retries: {message}")]
    Throttled {
        /// The DynamoDB operation.
        operation: &'static str,
        /// AWS's words.
        message: String,
    },
    /// An item, or a request built from one, is not what this service writes.
    #[error("an item in the table is not of this service's shape: {0}")]
    Malformed(String),
}
