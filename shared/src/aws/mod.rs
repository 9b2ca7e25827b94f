//! Talking to AWS without an SDK crate where one call does not pay for minutes of build: SigV4
//! signing ([`sigv4`]), one signed POST ([`signed_client`]: the `on_open` invocation), and the
//! Secrets Manager reader of the token keys ([`secrets_manager`]).

pub mod secrets_manager;
pub(crate) mod signed_client;
pub mod sigv4;
pub mod sqs;
