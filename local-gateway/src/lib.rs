//! A local stand-in for an API Gateway WebSocket API.
//!
//! Real WebSocket clients connect to it; for each connect, message and close it builds the event
//! API Gateway would send and invokes the function the template routes it to through the Lambda
//! Invoke API. The `@connections` management API is served on the same port, as in AWS, so the
//! same function binaries push replies here that push to API Gateway in AWS.

pub mod connections;
pub mod events;
pub mod invoke;
pub mod management;
pub mod routes;
pub mod socket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use tokio::net::TcpListener;

use crate::connections::Connections;
use crate::invoke::Invoker;
use crate::routes::Routes;

/// API Gateway's limits, which the local gateway enforces the same way.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest message (all its frames), 128 KiB in AWS.
    pub max_message_bytes: usize,
    /// The largest frame, 32 KiB in AWS.
    pub max_frame_bytes: usize,
    /// A connection with no traffic this long is closed (10 minutes in AWS).
    pub idle_timeout: Duration,
    /// No connection lives longer (2 hours in AWS).
    pub max_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 128 * 1024,
            max_frame_bytes: 32 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_lifetime: Duration::from_secs(2 * 3600),
        }
    }
}

/// Everything the gateway needs to run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub routes: Routes,
    pub invoke_url: String,
    pub stage: String,
    pub api_id: String,
    pub limits: Limits,
    pub invoke_timeout: Duration,
    /// Invocations in flight at once; more wait here, in arrival order. `cargo lambda watch`
    /// stops handing out invocations when a few hundred queue up at once (seen with 300), which
    /// AWS never does; a bound keeps a burst of clients from stalling the local stack.
    pub max_invocations: usize,
}

/// State shared by every request.
pub struct Gateway {
    pub settings: Settings,
    pub invoker: Invoker,
    pub connections: Connections,
}

/// The gateway's router: the WebSocket endpoint and chat page on `/` and `/{stage}`, and the
/// management API under `/@connections` and `/{stage}/@connections`.
pub fn router(settings: Settings) -> Router {
    let invoker = Invoker::new(
        &settings.invoke_url,
        settings.invoke_timeout,
        settings.max_invocations,
    );
    let gateway = Arc::new(Gateway {
        settings,
        invoker,
        connections: Connections::default(),
    });
    Router::new()
        .route("/", get(socket::handshake))
        .route("/{stage}", get(socket::handshake))
        .route("/@connections/{id}", any(management::connection))
        .route(
            "/{stage}/@connections/{id}",
            any(management::staged_connection),
        )
        .with_state(gateway)
}

/// Serves the gateway on `listener` until the process ends.
pub async fn serve(listener: TcpListener, settings: Settings) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(settings).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
