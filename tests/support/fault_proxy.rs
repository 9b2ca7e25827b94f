//! A TCP proxy in front of the DynamoDB-compatible server that can be cut and restored: the
//! server's outage as the SDK sees it (connections reset, new ones refused), without losing the
//! server's data, so that a test can check what was and was not written across the outage.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    down: bool,
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
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = accept_state.lock().unwrap_or_else(|p| p.into_inner());
                if state.down {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                state.live.push(task.abort_handle());
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outage begins: open connections are reset and new ones closed at once.
    pub fn cut(&self) {
        let mut state = self.state();
        state.down = true;
        for task in state.live.drain(..) {
            task.abort();
        }
    }

    /// The outage ends.
    pub fn restore(&self) {
        self.state().down = false;
    }
}
