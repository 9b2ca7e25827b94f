//! The `$connect` function: build the clients once, then serve events.

use lambda_runtime::{run, service_fn, tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = shared::aws::connect_gateway_from_env().await?;
    run(service_fn(|event| {
        shared::handlers::connect(&gateway, event)
    }))
    .await
}
