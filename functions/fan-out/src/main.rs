//! The fan-out function: Lambda's SQS event source hands it the jobs of sends too large for one
//! invocation, and it pushes them (see `shared::spread`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::fan_out().await
}
