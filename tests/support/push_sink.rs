//! A stand-in for the API Gateway Management API that records what was pushed.
//!
//! It answers `POST /{stage}/@connections/{id}` with 200 and keeps the body, `DELETE` (a kick) with
//! 204, and both with 410 and a `GoneException`, as API Gateway does, for the ids it is told are
//! gone (a closed connection is gone from then on). It notes the HTTP methods used, which IAM
//! grants one by one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

#[derive(Default)]
struct Recorded {
    frames: HashMap<String, Vec<String>>,
    gone: HashSet<String>,
    /// Statuses to answer instead of a delivery, consumed one per push (fault injection).
    faults: HashMap<String, Vec<u16>>,
    posts: usize,
    /// The methods of the requests received, for the policy check.
    methods: BTreeSet<String>,
}

/// The running stand-in.
#[derive(Clone)]
pub struct PushSink {
    endpoint: String,
    recorded: Arc<Mutex<Recorded>>,
}

impl PushSink {
    /// Starts the stand-in on a free loopback port; its endpoint ends in the stage, `/dev`.
    pub async fn start() -> PushSink {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let app = Router::new()
            .route("/{stage}/@connections/{id}", post(push).delete(close))
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the push stand-in");
        let addr = listener.local_addr().expect("push stand-in address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        PushSink {
            endpoint: format!("http://{addr}/dev"),
            recorded,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, pushes to `connection_id` are answered 410 Gone.
    pub fn mark_gone(&self, connection_id: &str) {
        self.recorded().gone.insert(connection_id.to_owned());
    }

    /// The next pushes to `connection_id` are answered with these statuses, in order.
    pub fn fail_next(&self, connection_id: &str, statuses: &[u16]) {
        self.recorded()
            .faults
            .insert(connection_id.to_owned(), statuses.to_vec());
    }

    /// The frames delivered to `connection_id` since the last call, in arrival order.
    pub fn take(&self, connection_id: &str) -> Vec<String> {
        self.recorded()
            .frames
            .remove(connection_id)
            .unwrap_or_default()
    }

    /// Every POST received, delivered or not.
    pub fn posts(&self) -> usize {
        self.recorded().posts
    }

    /// The HTTP methods used so far (`POST`, `DELETE`), and forgets them.
    pub fn take_methods(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.recorded().methods)
    }
}

async fn close(
    State(recorded): State<Arc<Mutex<Recorded>>>,
    Path((_stage, id)): Path<(String, String)>,
) -> Response {
    let mut recorded = recorded.lock().unwrap_or_else(|p| p.into_inner());
    recorded.methods.insert("DELETE".into());
    if !recorded.gone.insert(id.clone()) {
        return gone(&id);
    }
    StatusCode::NO_CONTENT.into_response()
}

fn gone(id: &str) -> Response {
    let body = format!(r#"{{"message":"connection {id} is gone"}}"#);
    (
        StatusCode::GONE,
        [
            ("x-amzn-errortype", "GoneException"),
            ("content-type", "application/json"),
        ],
        body,
    )
        .into_response()
}

async fn push(
    State(recorded): State<Arc<Mutex<Recorded>>>,
    Path((_stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut recorded = recorded.lock().unwrap_or_else(|p| p.into_inner());
    recorded.posts += 1;
    recorded.methods.insert("POST".into());
    if let Some(status) = recorded
        .faults
        .get_mut(&id)
        .and_then(|f| (!f.is_empty()).then(|| f.remove(0)))
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // As API Gateway answers: 429 is a LimitExceededException, the SDK's throttling error.
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            "LimitExceededException"
        } else {
            "InternalServerError"
        };
        let headers = [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ];
        return (status, headers, r#"{"message":"injected fault"}"#).into_response();
    }
    if recorded.gone.contains(&id) {
        return gone(&id);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    recorded.frames.entry(id).or_default().push(text);
    StatusCode::OK.into_response()
}
