//! A local stand-in for an API Gateway WebSocket API.
//!
//! Real WebSocket clients connect to it; for each connect, message and close it builds the event
//! API Gateway would send and invokes the function the template routes it to through the Lambda
//! Invoke API. The `@connections` management API is served on the same port, as in AWS, so the
//! same function binaries push replies here that push to API Gateway in AWS.

pub mod authorize;
pub mod client_library;
pub mod connections;
pub mod event_source;
pub mod events;
pub mod function_url;
pub mod invoke;
pub mod lambda_api;
pub mod management;
pub mod routes;
pub mod sigv4;
pub mod socket;
pub mod sqs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::{any, get, post};
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

/// Where API Gateway is harsher than a plain emulator would be, and the local gateway with it.
/// The defaults are AWS's behaviour; each switch away from it is for debugging.
#[derive(Clone, Debug)]
pub struct AwsBehaviour {
    /// How long after `$connect` returns the handshake completes; pushes to the new connection
    /// get 410 until then. API Gateway answers 410 until the connection is established, which
    /// takes it a moment after `$connect` returns; 50 ms by default, long enough for a test to
    /// meet the race.
    pub connect_settle: Duration,
    /// Invoke one connection's frames one at a time. API Gateway does not: it invokes them
    /// concurrently, in no promised order.
    pub serialize_frames: bool,
    /// `@connections` requests must be signed (SigV4, service `execute-api`) with these
    /// credentials; `None` accepts any request, signed or not.
    pub signing: Option<sigv4::Expected>,
    /// `@connections` requests per second before 429 `LimitExceededException` (API Gateway's
    /// account-wide throttle); `None` for no limit.
    pub push_rate_limit: Option<u32>,
    /// The share of `$disconnect` events, in percent, never sent: API Gateway sends them
    /// best-effort.
    pub drop_disconnects_percent: u8,
    /// The functions run without a secret (`ALLOW_ANONYMOUS=true`: `make dev` without
    /// `AUTH_SECRET`), so a handshake without the authorizer's identity sources (`?token=`) is
    /// handed to the authorizer anyway, which lets it in anonymously. API Gateway answers such a
    /// handshake 401 without invoking anything, and so does this gateway by default.
    pub allow_anonymous: bool,
}

impl AwsBehaviour {
    pub const DEFAULT_CONNECT_SETTLE: Duration = Duration::from_millis(50);

    /// AWS's behaviour, pushes signed with `signing`.
    pub fn new(signing: Option<sigv4::Expected>) -> Self {
        AwsBehaviour {
            connect_settle: Self::DEFAULT_CONNECT_SETTLE,
            serialize_frames: false,
            signing,
            push_rate_limit: None,
            drop_disconnects_percent: 0,
            allow_anonymous: false,
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
    pub aws: AwsBehaviour,
    /// The client library's built files (`clients/js/dist`), served under `/client/` for the
    /// chat page; `None` serves none.
    pub client_library: Option<PathBuf>,
    /// The server API's function, served at `POST /api` as its function URL.
    pub api_function: String,
    /// SQS queues whose batches are handed to a function, as Lambda's event source mappings do
    /// (the fan-out queue).
    pub event_sources: Vec<event_source::EventSource>,
}

/// State shared by every request.
pub struct Gateway {
    pub settings: Settings,
    pub invoker: Invoker,
    pub connections: Connections,
    /// The `@connections` throttle's bucket: tokens left, and when it was last filled.
    pub push_tokens: Mutex<(f64, Instant)>,
}

impl Gateway {
    /// Takes one `@connections` request from the throttle's bucket; `false` when it is empty.
    pub fn take_push_token(&self) -> bool {
        let Some(rate) = self.settings.aws.push_rate_limit else {
            return true;
        };
        let rate = f64::from(rate.max(1));
        let mut bucket = self.push_tokens.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, filled) = &mut *bucket;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*filled).as_secs_f64() * rate).min(rate);
        *filled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The gateway's router: the WebSocket endpoint and chat page on `/` and `/{stage}`, and the
/// management API under `/{stage}/@connections` (without the stage it answers 403, as AWS does).
pub fn router(settings: Settings) -> Router {
    let invoker = Invoker::new(
        &settings.invoke_url,
        settings.invoke_timeout,
        settings.max_invocations,
    );
    // Event sources invoke through an invoker of their own: Lambda counts another function's
    // concurrency apart from the routes'.
    let sources = Invoker::new(
        &settings.invoke_url,
        settings.invoke_timeout,
        settings.max_invocations,
    );
    for source in &settings.event_sources {
        let invoke = event_source::through(sources.clone(), source.function.clone());
        event_source::spawn(source.clone(), invoke);
    }
    let burst = f64::from(settings.aws.push_rate_limit.unwrap_or(0));
    let gateway = Arc::new(Gateway {
        settings,
        invoker,
        connections: Connections::default(),
        push_tokens: Mutex::new((burst, Instant::now())),
    });
    Router::new()
        .route("/", get(socket::handshake))
        .route("/{stage}", get(socket::staged_handshake))
        .route("/client/{file}", get(client_library::file))
        .route("/api", post(function_url::api))
        .route(
            "/2015-03-31/functions/{function}/invocations",
            post(lambda_api::invocations),
        )
        .route("/@connections/{id}", any(management::unstaged_connection))
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
