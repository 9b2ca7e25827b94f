//! The library behind the three Lambda functions: configuration, connection records in DynamoDB,
//! pushes through the API Gateway Management API, the Events API an application implements
//! ([`app`]), and the handlers. The built-in wire protocol is an application of its own (the
//! `protocol` crate), written on this crate's public surface like any other.

pub mod app;
pub mod auth;
pub mod aws;
pub mod civil;
pub mod config;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod jitter;
pub mod lambda;
pub mod names;
pub mod push;
pub mod server_api;
pub mod spread;
pub mod store;
pub mod unique;

pub use app::AppError;
pub use config::Config;
pub use error::Error;
pub use gateway::Gateway;

/// What an application's one file needs: `use shared::prelude::*;`.
pub mod prelude {
    pub use crate::app::AppError;
    pub use crate::app::Json;
    pub use crate::app::{Client, Closing, Connecting, Events, Verdict};
    pub use crate::app::{ErrorCode, Rejection};
    pub use crate::gateway::session::Session;
    pub use crate::gateway::target::Target;
    pub use crate::gateway::Gateway;
}

/// The porting guide's Rust example, compiled by `cargo test` so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/porting.md")]
pub struct PortingGuide;
