//! The Lambda entry and routing: each function's `main` ([`connect`], [`message`],
//! [`disconnect`]) builds the clients once per environment (init), then hands each event to its
//! handler with the application. Each handler is a plain async function over a [`Gateway`] and the
//! application, so tests drive it with an event and a real store; each logs one line per request
//! with the connection id, the request id, what was asked, the outcome and the time taken; never
//! a token or a message body.
//!
//! Each function's `main.rs` is one call:
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     shared::lambda::message(protocol::BuiltIn).await
//! }
//! ```

pub mod api;
pub mod connect;
pub mod disconnect;
pub mod fan_out;
pub mod init;
pub mod message;
mod on_close;
pub mod on_open;
mod request;

pub use request::response;

use lambda_runtime::{run, service_fn, tracing, Error, LambdaEvent};
use serde_json::Value;

use crate::app::Events;
use crate::lambda::init as aws;
use crate::lambda::{
    connect as connect_event, disconnect as disconnect_event, message as message_event,
};
use on_open::OpenEvent;

/// The `$connect` function, which is also the `$connect` route's authorizer. Reads the token
/// keys from the secret `AUTH_SECRET_ARN` names at init; refuses to start without one unless
/// `ALLOW_ANONYMOUS=true` says this is development.
pub async fn connect<A: Events>(app: A) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let connect = aws::connect_gateway_from_env(A::ON_OPEN).await?;
    let (connect, app) = (&connect, &app);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A token naming a key not read yet (a rotation) has the keys read again first.
        connect.refresh_keys_for(&event.payload).await;
        Box::pin(connect_event::connect_function(
            &connect.gateway,
            app,
            event,
        ))
        .await
    }))
    .await
}

/// The function of every message route, which also runs `on_open` when `$connect` asks for it
/// (see [`crate::lambda::on_open`]).
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
        let response = Box::pin(message_event::handle(
            gateway,
            app,
            LambdaEvent::new(request, context),
        ))
        .await?;
        serde_json::to_value(response).map_err(|e| crate::Error::UnexpectedEvent(e.to_string()))
    }))
    .await
}

/// The fan-out function: the workers of spread sends, fed by the fan-out queue (see
/// [`crate::spread`]). It takes the application for its `on_close`, which runs for the
/// recipients a job finds gone.
pub async fn fan_out(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let mut gateway = aws::gateway_from_env().await?;
    // It never feeds the queue it drains (as its role may not): an `on_close` it runs pushes its
    // sends itself, here as on AWS, whatever FAN_OUT_QUEUE_URL the local stack hands every
    // function.
    gateway.spreader = None;
    let (gateway, app) = (&gateway, &app);
    run(service_fn(move |event| async move {
        Ok::<_, Error>(Box::pin(fan_out::handle(gateway, app, event)).await)
    }))
    .await
}

/// The `$disconnect` function.
pub async fn disconnect(app: impl Events) -> Result<(), Error> {
    tracing::init_default_subscriber();
    let gateway = aws::gateway_from_env().await?;
    run(service_fn(|event| {
        Box::pin(disconnect_event::handle(&gateway, &app, event))
    }))
    .await
}
