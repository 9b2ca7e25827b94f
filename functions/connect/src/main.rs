//! The `$connect` function, which is also the `$connect` route's authorizer: build the clients
//! once, then serve events.

use lambda_runtime::{run, service_fn, tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = shared::aws::connect_gateway_from_env().await?;
    run(service_fn(|event| {
        shared::handlers::connect_function(&gateway, event)
    }))
    .await
}
