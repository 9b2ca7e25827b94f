//! The library behind the three Lambda functions: configuration, connection records in DynamoDB,
//! pushes through the API Gateway Management API, the wire protocol, and the handlers.

pub mod auth;
pub mod authorizer;
pub mod aws;
pub mod civil;
pub mod commands;
pub mod config;
pub mod error;
pub mod gateway;
pub mod handlers;
pub mod jitter;
pub mod names;
pub mod permissions;
pub mod protocol;
pub mod push;
pub mod rate_limit;
pub mod sigv4;
pub mod store;

pub use config::Config;
pub use error::Error;
pub use gateway::Gateway;
