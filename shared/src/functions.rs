//! The three Lambda functions' `main`: build the clients once per environment (init), then serve
//! events with the application. Each function's `main.rs` is one call:
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     shared::functions::message(shared::BuiltIn).await
//! }
//! ```

use lambda_runtime::{run, service_fn, tracing, Error};

use crate::aws;
use crate::events::Events;
use crate::handlers;

/// The `$connect` function, which is also the `$connect` route's authorizer. Refuses to start
/// without `AUTH_SECRET` unless `ALLOW_ANONYMOUS=true` says this is development.
pub async fn connect(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = aws::connect_gateway_from_env().await?;
    run(service_fn(|event| {
        handlers::connect_function(&gateway, &app, event)
    }))
    .await
}

/// The function of every message route.
pub async fn message(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = aws::gateway_from_env().await?;
    // Boxed: the SDK's futures nest past the compiler's type-layout depth limit in `main`.
    run(service_fn(|event| {
        Box::pin(handlers::message(&gateway, &app, event))
    }))
    .await
}

/// The `$disconnect` function.
pub async fn disconnect(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = aws::gateway_from_env().await?;
    run(service_fn(|event| {
        Box::pin(handlers::disconnect(&gateway, &app, event))
    }))
    .await
}
