//! A counting `@connections` endpoint: answers every push 200 and notes when the expected
//! number has arrived.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

#[derive(Default)]
struct Counts {
    received: AtomicUsize,
    expected: AtomicUsize,
    last: Mutex<Option<Instant>>,
}

#[derive(Clone, Default)]
pub struct Sink {
    counts: Arc<Counts>,
    pub endpoint: String,
}

impl Sink {
    pub async fn start() -> Sink {
        let mut sink = Sink::default();
        let app = Router::new()
            .route("/{stage}/@connections/{id}", post(push))
            .with_state(sink.counts.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        sink.endpoint = format!("http://{}/bench", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        sink
    }

    /// Starts counting afresh towards `expected` pushes.
    pub fn expect(&self, expected: usize) {
        self.counts.received.store(0, Ordering::SeqCst);
        self.counts.expected.store(expected, Ordering::SeqCst);
        *self.counts.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn received(&self) -> usize {
        self.counts.received.load(Ordering::SeqCst)
    }

    /// When the expected push arrived, if it has.
    pub fn completed_at(&self) -> Option<Instant> {
        *self.counts.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn push(State(counts): State<Arc<Counts>>) -> StatusCode {
    let received = counts.received.fetch_add(1, Ordering::SeqCst) + 1;
    if received == counts.expected.load(Ordering::SeqCst) {
        *counts.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
    StatusCode::OK
}
