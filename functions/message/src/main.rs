//! The function of every message route, running the built-in protocol.
//! To run your own application, hand it here instead of `protocol::BuiltIn` (docs/porting.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::message(protocol::BuiltIn).await
}
