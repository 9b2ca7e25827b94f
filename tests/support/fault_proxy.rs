//! A TCP proxy in front of the DynamoDB-compatible server that injects the faults a network
//! causes, without losing the server's data, so that a test can check what was and was not
//! written:
//! - an outage: open connections reset, new ones refused ([`FaultProxy::cut`]);
//! - lost answers: a request reaches the server and is carried out, but its answer never comes
//!   back, as when a connection drops after DynamoDB commits ([`FaultProxy::lose_answers_to`]);
//! - a conflict: DynamoDB refuses a write because another write to the same item is under way,
//!   which the server here never does ([`FaultProxy::conflict_once`]);
//! - a slow request: one held back until the test lets it go, so that something else happens
//!   in between ([`FaultProxy::hold`]).
//!
//! It also records which IAM actions the requests it carried need ([`FaultProxy::take_actions`]),
//! and each request's operation and timing ([`FaultProxy::take_requests`]), from which the
//! benchmarks count what an operation costs.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    down: bool,
    /// Requests whose bytes contain this (an `X-Amz-Target` operation name, say) lose their answer.
    lose_answers_to: Option<String>,
    /// The next request naming this operation is refused for a conflict, not carried out.
    conflict_once: Option<String>,
    /// Requests refused for a conflict so far.
    conflicts: usize,
    /// Requests whose bytes contain this wait before reaching the server, until released.
    hold: Option<String>,
    /// Requests held so far.
    held: usize,
    /// The IAM actions of the requests carried so far.
    actions: BTreeSet<String>,
    /// Every request carried, in the order they began.
    requests: Vec<Request>,
    live: Vec<AbortHandle>,
}

/// One request the proxy carried to the server.
#[derive(Clone, Debug)]
pub struct Request {
    /// `Query`, `BatchWriteItem`, …
    pub operation: String,
    pub started: Instant,
    /// When the first byte of its answer came back (`None`: never).
    pub answered: Option<Instant>,
    /// Writes it asked for: 1, or the requests of a BatchWriteItem or TransactWriteItems.
    pub writes: usize,
    /// The bytes of its answer (for a read, roughly the data it read, in DynamoDB's JSON).
    pub answer_bytes: usize,
}

/// How many requests of `requests` ran one after another at most: the round trips on the
/// longest chain in which each request began only after the one before it was answered.
pub fn round_trips(requests: &[Request]) -> usize {
    let mut chain: Vec<usize> = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        let before = requests[..i]
            .iter()
            .zip(&chain)
            .filter(|(q, _)| q.answered.is_some_and(|a| a <= request.started))
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        chain.push(before + 1);
    }
    chain.into_iter().max().unwrap_or(0)
}

/// The proxy; dropped, it stops accepting.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// `true` once held requests may go on.
    released: tokio::sync::watch::Sender<bool>,
    accept: AbortHandle,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

fn lock<T>(state: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
        let (released, _) = tokio::sync::watch::channel(false);
        let accept_state = state.clone();
        let accept_released = released.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut guard = lock(&accept_state);
                if guard.down {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(relay(
                    client,
                    upstream.clone(),
                    accept_state.clone(),
                    accept_released.subscribe(),
                ));
                guard.live.push(task.abort_handle());
            }
        })
        .abort_handle();
        FaultProxy {
            addr,
            state,
            released,
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

    /// The next request for `operation` (`"TransactWriteItems"`, `"UpdateItem"`) is not carried
    /// out: it is answered as DynamoDB answers a write that met another one on the same item.
    pub fn conflict_once(&self, operation: &str) {
        lock(&self.state).conflict_once = Some(operation.to_owned());
    }

    /// How many requests were refused for a conflict so far.
    pub fn conflicts(&self) -> usize {
        lock(&self.state).conflicts
    }

    /// The IAM actions the requests carried so far need (a TransactWriteItems needs those of
    /// the writes inside it), and forgets them.
    pub fn take_actions(&self) -> BTreeSet<String> {
        std::mem::take(&mut lock(&self.state).actions)
    }

    /// The requests carried since the last look, in the order they began.
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut lock(&self.state).requests)
    }

    /// From now on, a request whose bytes contain `marker` (`ExclusiveStartKey`: a Query for a
    /// page after the first) waits before reaching the server until [`FaultProxy::release`].
    pub fn hold(&self, marker: &str) {
        self.released.send_replace(false);
        lock(&self.state).hold = Some(marker.to_owned());
    }

    /// How many requests were held so far.
    pub fn held(&self) -> usize {
        lock(&self.state).held
    }

    /// Held requests go on, and no more are held.
    pub fn release(&self) {
        lock(&self.state).hold = None;
        self.released.send_replace(true);
    }

    /// From now on, a request whose bytes contain `marker` is carried out by the server, but the
    /// connection is closed instead of answering it; `None` answers everything again.
    pub fn lose_answers_to(&self, marker: Option<&str>) {
        lock(&self.state).lose_answers_to = marker.map(str::to_owned);
    }
}

/// DynamoDB's answer to a write refused for a conflict, by operation.
fn conflict_answer(operation: &str) -> Vec<u8> {
    let body = if operation == "TransactWriteItems" {
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}"#
    } else {
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#
    };
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The operation a request's headers name (`X-Amz-Target: DynamoDB_20120810.Query`).
fn operation(chunk: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(chunk);
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-amz-target:"))?;
    Some(line.rsplit('.').next()?.trim().to_owned())
}

/// The body length a request's headers announce, and where its body starts in `chunk`.
fn body_extent(chunk: &[u8]) -> Option<(usize, usize)> {
    let end = find(chunk, b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&chunk[..end]).to_ascii_lowercase();
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    Some((length, end))
}

/// Carries one client connection, one request and its answer at a time (the SDK never pipelines).
async fn relay(
    client: TcpStream,
    upstream: String,
    state: Arc<Mutex<State>>,
    mut released: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, to_client) = client.into_split();
    let to_client = tokio::sync::Mutex::new(to_client);
    let (mut from_server, mut to_server) = server.split();
    let lose_next_answer = std::sync::atomic::AtomicBool::new(false);
    // The request in flight on this connection (the SDK sends one at a time), by its index in
    // the state's log.
    let in_flight: Mutex<Option<usize>> = Mutex::new(None);
    let upstream_leg = async {
        let mut buffer = vec![0u8; 64 * 1024];
        // The operation of the request being read, and the bytes of a refused one still to come.
        let mut current = String::new();
        let mut swallow = 0usize;
        loop {
            let n = match from_client.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buffer[..n];
            if swallow > 0 {
                swallow = swallow.saturating_sub(n);
                continue;
            }
            if let Some(op) = operation(chunk) {
                current = op;
                let refuse = {
                    let mut state = lock(&state);
                    let refuse = state.conflict_once.as_deref() == Some(current.as_str());
                    if refuse {
                        state.conflict_once = None;
                        state.conflicts += 1;
                    }
                    refuse
                };
                if refuse {
                    if let Some((length, start)) = body_extent(chunk) {
                        swallow = length.saturating_sub(n - start);
                    }
                    let answer = conflict_answer(&current);
                    if to_client.lock().await.write_all(&answer).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
            record(&state, &current, chunk);
            if operation(chunk).is_none() {
                // The rest of a request's body: a batch's or a transaction's writes may be here.
                if let Some(index) = *lock(&in_flight) {
                    if let Some(request) = lock(&state).requests.get_mut(index) {
                        request.writes += continued_writes(&request.operation, chunk);
                    }
                }
            } else {
                let mut state = lock(&state);
                state.requests.push(Request {
                    operation: current.clone(),
                    started: Instant::now(),
                    answered: None,
                    writes: writes(&current, chunk),
                    answer_bytes: 0,
                });
                *lock(&in_flight) = Some(state.requests.len() - 1);
            }
            if let Some(marker) = &lock(&state).lose_answers_to {
                if chunk.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                    lose_next_answer.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let hold = {
                let mut state = lock(&state);
                let hold = state
                    .hold
                    .as_ref()
                    .is_some_and(|marker| find(chunk, marker.as_bytes()).is_some());
                state.held += usize::from(hold);
                hold
            };
            if hold && released.wait_for(|released| *released).await.is_err() {
                return;
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
            if let Some(index) = *lock(&in_flight) {
                if let Some(request) = lock(&state).requests.get_mut(index) {
                    request.answered.get_or_insert_with(Instant::now);
                    request.answer_bytes += n;
                }
            }
            if to_client
                .lock()
                .await
                .write_all(&buffer[..n])
                .await
                .is_err()
            {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream_leg => {}
        () = downstream_leg => {}
    }
}

/// The writes the first chunk of a request asks for: one for a single-item write, the items
/// this chunk names for a batch or a transaction, none for a read.
fn writes(operation: &str, chunk: &[u8]) -> usize {
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" => 1,
        _ => continued_writes(operation, chunk),
    }
}

/// The writes a chunk of a batch's or a transaction's body names.
fn continued_writes(operation: &str, chunk: &[u8]) -> usize {
    let count = |key: &[u8]| chunk.windows(key.len()).filter(|w| *w == key).count();
    match operation {
        "BatchWriteItem" => count(b"\"PutRequest\"") + count(b"\"DeleteRequest\""),
        "TransactWriteItems" => {
            count(b"\"Put\":{") + count(b"\"Update\":{") + count(b"\"Delete\":{")
        }
        _ => 0,
    }
}

/// Notes the IAM actions a chunk of a request for `operation` needs.
fn record(state: &Mutex<State>, operation: &str, chunk: &[u8]) {
    if operation.is_empty() {
        return;
    }
    let mut state = lock(state);
    if operation == "TransactWriteItems" {
        for (key, action) in [
            (&b"\"Put\":{"[..], "PutItem"),
            (b"\"Update\":{", "UpdateItem"),
            (b"\"Delete\":{", "DeleteItem"),
            (b"\"ConditionCheck\":{", "ConditionCheckItem"),
        ] {
            if find(chunk, key).is_some() {
                state.actions.insert(format!("dynamodb:{action}"));
            }
        }
    } else {
        state.actions.insert(format!("dynamodb:{operation}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(started: Instant, took_ms: u64) -> Request {
        Request {
            operation: "Query".into(),
            started,
            answered: Some(started + Duration::from_millis(took_ms)),
            writes: 0,
            answer_bytes: 0,
        }
    }

    #[test]
    fn concurrent_requests_are_one_round_trip_and_a_request_after_an_answer_is_another() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let concurrent = [
            request(t, 10),
            request(t + ms(1), 10),
            request(t + ms(2), 10),
        ];
        assert_eq!(round_trips(&concurrent), 1);
        let mut chained = concurrent.to_vec();
        chained.push(request(t + ms(20), 5));
        assert_eq!(round_trips(&chained), 2);
        assert_eq!(round_trips(&[]), 0);
    }
}
