//! The fan-out function: Lambda's SQS event source hands it the jobs of sends too large for one
//! invocation, and it pushes them (see `shared::spread`). It runs the application's `on_close`
//! for the recipients it finds gone: hand it your application as the other functions are.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::fan_out(protocol::BuiltIn).await
}
