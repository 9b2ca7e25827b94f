//! A TCP proxy in front of the DynamoDB-compatible server that injects the faults a network
//! causes, without losing the server's data, so that a test can check what was and was not
//! written:
//! - an outage: open connections reset, new ones refused ([`FaultProxy::cut`]);
//! - lost answers: a request reaches the server and is carried out, but its answer never comes
//!   back, as when a connection drops after DynamoDB commits ([`FaultProxy::lose_answers_to`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    down: bool,
    /// Requests whose bytes contain this (an `X-Amz-Target` operation name, say) lose their answer.
    lose_answers_to: Option<String>,
    live: Vec<AbortHandle>,
}

/// The proxy; dropped, it stops accepting.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultProxy {
    /// Proxies a free loopback port to `upstream` (an `http://host:port` endpoint).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State::default()));
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut guard = lock(&accept_state);
                if guard.down {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(relay(client, upstream.clone(), accept_state.clone()));
                guard.live.push(task.abort_handle());
            }
        })
        .abort_handle();
        FaultProxy {
            addr,
            state,
            accept,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The outage begins: open connections are reset and new ones closed at once.
    pub fn cut(&self) {
        let mut state = lock(&self.state);
        state.down = true;
        for task in state.live.drain(..) {
            task.abort();
        }
    }

    /// The outage ends.
    pub fn restore(&self) {
        lock(&self.state).down = false;
    }

    /// From now on, a request whose bytes contain `marker` is carried out by the server, but the
    /// connection is closed instead of answering it; `None` answers everything again.
    pub fn lose_answers_to(&self, marker: Option<&str>) {
        lock(&self.state).lose_answers_to = marker.map(str::to_owned);
    }
}

/// Carries one client connection, one request and its answer at a time (the SDK never pipelines).
async fn relay(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let lose_next_answer = std::sync::atomic::AtomicBool::new(false);
    let upstream_leg = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from_client.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buffer[..n];
            if let Some(marker) = &lock(&state).lose_answers_to {
                if chunk.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                    lose_next_answer.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            if to_server.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let downstream_leg = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if lose_next_answer.load(std::sync::atomic::Ordering::SeqCst) {
                return; // the server has carried the request out; the client never hears of it
            }
            if to_client.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream_leg => {}
        () = downstream_leg => {}
    }
}
