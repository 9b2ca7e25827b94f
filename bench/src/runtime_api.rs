//! A minimal Lambda Runtime API on loopback: enough to run a real bootstrap as Lambda runs it
//! (`GET .../invocation/next`, `POST .../invocation/{id}/response`), and to time it.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    /// When each request was handed to the function, and who waits for its response.
    pending: HashMap<String, (Instant, oneshot::Sender<Invocation>)>,
    /// The function time of each invocation answered since the last look, in order.
    completed: Vec<Duration>,
    first_poll: Option<Instant>,
    counter: u64,
}

/// One invocation, as the runtime API saw it.
pub struct Invocation {
    /// When the event was handed to the function.
    pub served: Instant,
    /// From then to the function's response.
    pub took: Duration,
    /// What the function answered: its response, or its error (`errorType`, `errorMessage`).
    pub body: Bytes,
    /// Whether it answered with an error.
    pub failed: bool,
}

#[derive(Clone)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
    /// The function's timeout: each invocation's deadline is this far after it is handed out.
    timeout: Arc<Mutex<Duration>>,
}

impl Default for RuntimeApi {
    fn default() -> Self {
        RuntimeApi {
            inner: Arc::default(),
            arrived: Arc::default(),
            timeout: Arc::new(Mutex::new(Duration::from_secs(30))),
        }
    }
}

impl RuntimeApi {
    /// Serves the API on a free loopback port; the address to give `AWS_LAMBDA_RUNTIME_API`.
    pub async fn start() -> (RuntimeApi, SocketAddr) {
        let api = RuntimeApi::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (api, addr)
    }

    /// Sets the function's timeout (the template's), which each invocation's deadline reflects.
    pub fn set_timeout(&self, timeout: Duration) {
        *self.timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the function first asked for an event (its init was done), since `since`.
    pub async fn await_first_poll(&self, since: Instant) -> Duration {
        loop {
            if let Some(at) = self.inner().first_poll {
                return at.saturating_duration_since(since);
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Waits until no invocation is queued or running (one function's work has all finished).
    pub async fn idle(&self) {
        while !self.inner().pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The function times of the invocations answered since the last look: what Lambda would
    /// bill, before its rounding up to the millisecond. Noted with the answer, so an invocation
    /// that [`RuntimeApi::idle`] saw finish is in.
    pub fn take_completed(&self) -> Vec<Duration> {
        std::mem::take(&mut self.inner().completed)
    }

    /// Invokes the function with `event` and waits for its response.
    pub async fn invoke(&self, event: Value) -> Invocation {
        let (sender, receiver) = oneshot::channel();
        {
            let mut inner = self.inner();
            inner.counter += 1;
            let id = format!("bench-{}", inner.counter);
            inner.queue.push_back((id.clone(), event));
            inner.pending.insert(id, (Instant::now(), sender));
        }
        self.arrived.notify_one();
        receiver.await.expect("the function answered")
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    loop {
        let notified = api.arrived.notified();
        {
            let mut inner = api.inner();
            inner.first_poll.get_or_insert_with(Instant::now);
            if let Some((id, event)) = inner.queue.pop_front() {
                if let Some((served, _)) = inner.pending.get_mut(&id) {
                    *served = Instant::now();
                }
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    + api
                        .timeout
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_millis();
                let mut headers = HeaderMap::new();
                let header =
                    |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""));
                headers.insert("lambda-runtime-aws-request-id", header(&id));
                headers.insert("lambda-runtime-deadline-ms", header(&deadline.to_string()));
                headers.insert(
                    "lambda-runtime-invoked-function-arn",
                    header("arn:aws:lambda:us-east-1:000000000000:function:bench"),
                );
                headers.insert(
                    "lambda-runtime-trace-id",
                    header("Root=1-00000000-000000000000000000000000"),
                );
                return (headers, event.to_string()).into_response();
            }
        }
        notified.await;
    }
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&api, &id, body, false)
}

fn answer(api: &RuntimeApi, id: &str, body: Bytes, failed: bool) -> StatusCode {
    let done = Instant::now();
    if failed {
        eprintln!("invocation {id} failed: {}", String::from_utf8_lossy(&body));
    }
    let mut inner = api.inner();
    if let Some((served, sender)) = inner.pending.remove(id) {
        inner.completed.push(done - served);
        let _ = sender.send(Invocation {
            served,
            took: done - served,
            body,
            failed,
        });
    }
    StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&api, &id, body, true)
}

async fn init_error(body: Bytes) -> StatusCode {
    eprintln!(
        "the function failed at init: {}",
        String::from_utf8_lossy(&body)
    );
    StatusCode::ACCEPTED
}
