//! The library behind the three Lambda functions: configuration, connection records in DynamoDB,
//! pushes through the API Gateway Management API, the wire protocol, and the handlers.

pub mod auth;
pub mod config;
pub mod names;
pub mod protocol;
pub mod push;
pub mod store;
