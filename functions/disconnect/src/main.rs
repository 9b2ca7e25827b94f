//! The `$disconnect` function, running the built-in protocol.
//! To run your own application, hand it here instead of `protocol::BuiltIn` (docs/porting.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::disconnect(protocol::BuiltIn).await
}
