//! The `$connect` function (also the `$connect` route's authorizer), running the built-in protocol.
//! To run your own application, hand it here instead of `protocol::BuiltIn` (docs/porting.md).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::connect(protocol::BuiltIn).await
}
