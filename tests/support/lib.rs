//! What the black-box tests run on: a real DynamoDB-compatible server (dynoxide, or moto) on 127.0.0.1, a
//! stand-in for the API Gateway Management API that records every push, and events shaped like
//! API Gateway's; and the whole local stack (the functions under `cargo lambda watch` behind the
//! local gateway) for end-to-end tests with real WebSocket clients.

pub mod dynamodb;
pub mod events;
pub mod fault_proxy;
pub mod frames;
pub mod local_stack;
pub mod processes;
pub mod push_sink;
pub mod secrets;
pub mod sqs;
pub mod stack;
pub mod tokens;
pub mod ws;
