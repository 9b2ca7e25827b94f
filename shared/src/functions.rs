//! The three Lambda functions' `main`: build the clients once per environment (init), then serve
//! events with the application. Each function's `main.rs` is one call:
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     shared::functions::message(protocol::BuiltIn).await
//! }
//! ```

use lambda_runtime::{run, service_fn, tracing, Error, LambdaEvent};
use serde_json::Value;

use crate::aws;
use crate::events::Events;
use crate::handlers;
use crate::on_open::{self, OpenEvent};

/// The `$connect` function, which is also the `$connect` route's authorizer. Reads the token
/// keys from the secret `AUTH_SECRET_ARN` names at init; refuses to start without one unless
/// `ALLOW_ANONYMOUS=true` says this is development.
pub async fn connect(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let connect = aws::connect_gateway_from_env().await?;
    let (connect, app) = (&connect, &app);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A token naming a key not read yet (a rotation) has the keys read again first.
        connect.refresh_keys_for(&event.payload).await;
        Box::pin(handlers::connect_function(&connect.gateway, app, event)).await
    }))
    .await
}

/// The function of every message route, which also runs `on_open` when `$connect` asks for it
/// (see [`crate::on_open`]).
pub async fn message(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = aws::gateway_from_env().await?;
    let (gateway, app) = (&gateway, &app);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (payload, context) = event.into_parts();
        if OpenEvent::is_one(&payload) {
            let open: OpenEvent = serde_json::from_value(payload)
                .map_err(|e| crate::Error::UnexpectedEvent(e.to_string()))?;
            Box::pin(on_open::open(gateway, app, open, &context.request_id)).await;
            return Ok(Value::Null);
        }
        let request = serde_json::from_value(payload)
            .map_err(|e| crate::Error::UnexpectedEvent(e.to_string()))?;
        // Boxed: the SDK's futures nest past the compiler's type-layout depth limit in `main`.
        let response = Box::pin(handlers::message(
            gateway,
            app,
            LambdaEvent::new(request, context),
        ))
        .await?;
        serde_json::to_value(response).map_err(|e| crate::Error::UnexpectedEvent(e.to_string()))
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
