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
//! benchmarks count what an operation costs; with [`FaultProxy::count_capacity`], also the capacity
//! units each request consumed, as DynamoDB reports them (and as AWS bills a refused write, which it
//! reports nothing for: [`refused_write_units`]).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
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
    /// Every request naming this operation is refused for throughput, not carried out.
    throttled: Option<String>,
    /// How long each answer waits before it is passed on (see [`FaultProxy::answer_after`]).
    latency: std::time::Duration,
    /// Requests whose bytes contain this wait before reaching the server, until released.
    hold: Option<String>,
    /// Requests held so far.
    held: usize,
    /// Markers looked for in the requests carried, and how many requests held each.
    seen: Vec<(String, usize)>,
    /// The IAM actions of the requests carried so far.
    actions: BTreeSet<String>,
    /// Every request carried, in the order they began.
    requests: Vec<Request>,
    /// Whether data requests ask for their `ConsumedCapacity` (see [`FaultProxy::count_capacity`]).
    count_capacity: bool,
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
    /// The capacity units it consumed — write units for a write, read units for a read — when the
    /// proxy counts them ([`FaultProxy::count_capacity`]): the `ConsumedCapacity` DynamoDB
    /// answered with (summed over tables), or for a write refused by its condition, which DynamoDB
    /// answers without one, what AWS bills for it ([`refused_write_units`]). `None`: not counted,
    /// or the server reported none (moto, for some operations) and the request was not refused.
    pub capacity_units: Option<f64>,
    /// The error DynamoDB answered with, by its short name (`ConditionalCheckFailedException`,
    /// `TransactionCanceledException`, `ValidationException`, …), when the proxy counts capacity.
    pub error: Option<String>,
}

impl Request {
    /// Whether DynamoDB refused it for a condition (a `ConditionalCheckFailedException`, or a
    /// cancelled transaction): not carried out, billed all the same.
    pub fn refused(&self) -> bool {
        matches!(
            self.error.as_deref(),
            Some("ConditionalCheckFailedException" | "TransactionCanceledException")
        )
    }
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

    /// From now on, every request for `operation` is refused as DynamoDB refuses a request past
    /// a partition's throughput (`ProvisionedThroughputExceededException`), which the SDK retries
    /// before giving up; `None` serves them again.
    pub fn throttle(&self, operation: Option<&str>) {
        lock(&self.state).throttled = operation.map(str::to_owned);
    }

    /// From now on, each answer reaches the client `latency` after the server gave it, as an
    /// answer from DynamoDB in a region takes milliseconds where the local one takes a fraction
    /// of one: requests a caller sends at once then overlap as they would on AWS, and
    /// [`round_trips`] sees which ones wait for which.
    pub fn answer_after(&self, latency: std::time::Duration) {
        lock(&self.state).latency = latency;
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

    /// From now on, every data request carried asks DynamoDB what it consumed: the proxy adds
    /// `"ReturnConsumedCapacity":"TOTAL"` to a request that lacks it, and to a conditional
    /// PutItem, UpdateItem or DeleteItem that lacks it `"ReturnValuesOnConditionCheckFailure":
    /// "ALL_OLD"` (a refusal then carries the item it met, which AWS bills by; the service reads
    /// a refused item only where it asks for it itself), then reads the answer's
    /// `ConsumedCapacity` into [`Request::capacity_units`]. For that it gathers each request and
    /// each answer whole before passing it on.
    pub fn count_capacity(&self) {
        lock(&self.state).count_capacity = true;
    }

    /// From now on, a request whose bytes contain `marker` (`ExclusiveStartKey`: a Query for a
    /// page after the first) waits before reaching the server until [`FaultProxy::release`].
    pub fn hold(&self, marker: &str) {
        self.released.send_replace(false);
        lock(&self.state).hold = Some(marker.to_owned());
    }

    /// From now on, counts the requests whose bytes contain `marker` (`"ConsistentRead":true`).
    pub fn look_for(&self, marker: &str) {
        lock(&self.state).seen.push((marker.to_owned(), 0));
    }

    /// How many requests carried so far contained `marker`, since [`FaultProxy::look_for`].
    pub fn seen(&self, marker: &str) -> usize {
        lock(&self.state)
            .seen
            .iter()
            .find(|(m, _)| m == marker)
            .map_or(0, |(_, count)| *count)
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

/// DynamoDB's answer to a request past its partition's throughput.
fn throttled_answer() -> Vec<u8> {
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;
    http_400(body)
}

/// DynamoDB's answer to a write refused for a conflict, by operation.
fn conflict_answer(operation: &str) -> Vec<u8> {
    let body = if operation == "TransactWriteItems" {
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}"#
    } else {
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#
    };
    http_400(body)
}

/// A DynamoDB error answer carrying `body`.
fn http_400(body: &str) -> Vec<u8> {
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
    // With capacity counted, the body of the request in flight, as passed on.
    let in_flight_body: Mutex<Option<Value>> = Mutex::new(None);
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
            let mut chunk = buffer[..n].to_vec();
            if swallow > 0 {
                swallow = swallow.saturating_sub(n);
                continue;
            }
            // With capacity counted, a request is gathered whole and asks for its capacity.
            let mut asked = None;
            let counting = lock(&state).count_capacity;
            if counting && chunk.starts_with(b"POST ") {
                if !gather(&mut from_client, &mut chunk).await {
                    return;
                }
                if let Some((request, body)) =
                    operation(&chunk).and_then(|op| ask_capacity(&op, &chunk))
                {
                    chunk = request;
                    asked = Some(body);
                }
            }
            let chunk = chunk.as_slice();
            if let Some(op) = operation(chunk) {
                current = op;
                let refusal = {
                    let mut state = lock(&state);
                    if state.conflict_once.as_deref() == Some(current.as_str()) {
                        state.conflict_once = None;
                        state.conflicts += 1;
                        Some(conflict_answer(&current))
                    } else if state.throttled.as_deref() == Some(current.as_str()) {
                        Some(throttled_answer())
                    } else {
                        None
                    }
                };
                if let Some(answer) = refusal {
                    if let Some((length, start)) = body_extent(chunk) {
                        swallow = length.saturating_sub(chunk.len() - start);
                    }
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
                    capacity_units: None,
                    error: None,
                });
                *lock(&in_flight) = Some(state.requests.len() - 1);
                *lock(&in_flight_body) = asked;
            }
            if let Some(marker) = &lock(&state).lose_answers_to {
                if chunk.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                    lose_next_answer.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let hold = {
                let mut state = lock(&state);
                for (marker, count) in &mut state.seen {
                    *count += usize::from(find(chunk, marker.as_bytes()).is_some());
                }
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
        // With capacity counted: the answer read so far, and the request it answers.
        let mut answer = Vec::new();
        let mut answering = None;
        loop {
            let n = match from_server.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if lose_next_answer.load(std::sync::atomic::Ordering::SeqCst) {
                return; // the server has carried the request out; the client never hears of it
            }
            let index = *lock(&in_flight);
            if let Some(index) = index {
                let (first, latency) = {
                    let state = lock(&state);
                    let first = state
                        .requests
                        .get(index)
                        .is_some_and(|r| r.answered.is_none());
                    (first, state.latency)
                };
                if first && !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                if let Some(request) = lock(&state).requests.get_mut(index) {
                    request.answered.get_or_insert_with(Instant::now);
                    request.answer_bytes += n;
                }
            }
            // Read before the client has it, so before the next request can begin.
            let counting = lock(&state).count_capacity;
            if let (Some(index), true) = (index, counting) {
                if answering != Some(index) {
                    answer.clear();
                    answering = Some(index);
                }
                answer.extend_from_slice(&buffer[..n]);
                if let Some(body) = answer_body(&answer) {
                    let request = lock(&in_flight_body).take();
                    account(&state, index, request.as_ref(), &body);
                    answer.clear();
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

/// Reads from `from` until `request` (which begins a request) holds it whole: its headers, and
/// the body its `Content-Length` announces. `false`: the connection ended first.
async fn gather(from: &mut (impl AsyncRead + Unpin), request: &mut Vec<u8>) -> bool {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if find(request, b"\r\n\r\n").is_some() {
            match body_extent(request) {
                Some((length, start)) if request.len() < start + length => {}
                _ => return true,
            }
        }
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
}

/// The operations whose answers can carry a `ConsumedCapacity`.
const DATA_OPERATIONS: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// `request` (a whole HTTP request for `operation`) asking for its `ConsumedCapacity`, and a
/// conditional single-item write also for the item a refusal meets (see
/// [`FaultProxy::count_capacity`]), with its `Content-Length` set to match; and the body as
/// passed on. `None`: not a data operation, or not a JSON object (passed on unchanged).
fn ask_capacity(operation: &str, request: &[u8]) -> Option<(Vec<u8>, Value)> {
    if !DATA_OPERATIONS.contains(&operation) {
        return None;
    }
    let (length, start) = body_extent(request)?;
    let mut body: Value = serde_json::from_slice(request.get(start..start + length)?).ok()?;
    let object = body.as_object_mut()?;
    let mut changed = false;
    if !object.contains_key("ReturnConsumedCapacity") {
        object.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        changed = true;
    }
    if matches!(operation, "PutItem" | "UpdateItem" | "DeleteItem")
        && object.contains_key("ConditionExpression")
        && !object.contains_key("ReturnValuesOnConditionCheckFailure")
    {
        object.insert(
            "ReturnValuesOnConditionCheckFailure".into(),
            "ALL_OLD".into(),
        );
        changed = true;
    }
    if !changed {
        return Some((request.to_vec(), body));
    }
    let bytes = serde_json::to_vec(&body).ok()?;
    let head = String::from_utf8_lossy(&request[..start]);
    let mut rewritten: Vec<u8> = head
        .split("\r\n")
        .map(|line| {
            if line.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", bytes.len())
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes();
    rewritten.extend_from_slice(&bytes);
    Some((rewritten, body))
}

/// The body of `answer` once it holds a whole HTTP response (by its `Content-Length`, or
/// chunked); `None` until then.
fn answer_body(answer: &[u8]) -> Option<Vec<u8>> {
    let end = find(answer, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let body = &answer[end..];
    if let Some(length) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.get(..length).map(<[u8]>::to_vec);
    }
    if head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"))
    {
        return dechunk(body);
    }
    None
}

/// A chunked body, whole; `None` until its last chunk has come.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut whole = Vec::new();
    loop {
        let line = find(body, b"\r\n")?;
        let size = String::from_utf8_lossy(&body[..line]);
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        body = &body[line + 2..];
        if size == 0 {
            return Some(whole);
        }
        whole.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Notes on the `index`-th request what its answer `body` says it consumed, and the error it
/// answered with, if any.
fn account(state: &Mutex<State>, index: usize, request: Option<&Value>, body: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let mut state = lock(state);
    let Some(carried) = state.requests.get_mut(index) else {
        return;
    };
    carried.error = answer
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
    carried.capacity_units = consumed_units(&answer).or_else(|| {
        carried
            .refused()
            .then(|| refused_write_units(&carried.operation, request, &answer))
    });
}

/// The capacity units an answer's `ConsumedCapacity` reports: one table's, or (a batch, a
/// transaction) the sum over the tables it lists.
fn consumed_units(answer: &Value) -> Option<f64> {
    match answer.get("ConsumedCapacity")? {
        Value::Array(tables) => Some(
            tables
                .iter()
                .filter_map(|t| t.get("CapacityUnits")?.as_f64())
                .sum(),
        ),
        table => table.get("CapacityUnits")?.as_f64(),
    }
}

/// The write units AWS bills for a write DynamoDB refused, which it answers without a
/// `ConsumedCapacity` (dynoxide answers the same: its errors carry none).
///
/// The rule, from AWS's "DynamoDB read and write operations" (a conditional write whose
/// condition is false still consumes write units, by the size of the item: the one in the table
/// or the one the request would have written, the larger;
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>)
/// and "Amazon DynamoDB Transactions: How it works" (two underlying writes per item, consumed
/// even when the transaction is cancelled;
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html>):
/// - a PutItem, UpdateItem or DeleteItem refused by its condition: 1 write unit per KB, rounded
///   up and at least 1, of the larger of the item it would have put (a PutItem's `Item`) and the
///   item it met (the refusal's `Item`, which the proxy asks for);
/// - a cancelled TransactWriteItems: 2 write units per KB, rounded up and at least 1, of each of
///   its items, sized the same way (the item its cancellation reason carries when the request
///   asked for it, and a Put's own item).
///
/// An UpdateItem's would-be item (the item met, updated) is not computed: it counts by the item
/// it met, which is less only when the update would have crossed a KB.
pub fn refused_write_units(operation: &str, request: Option<&Value>, answer: &Value) -> f64 {
    let kb = |bytes: usize| (bytes as f64 / 1024.0).ceil().max(1.0);
    let size = |item: Option<&Value>| item.and_then(Value::as_object).map_or(0, item_size);
    if operation == "TransactWriteItems" {
        let actions = request
            .and_then(|r| r.get("TransactItems"))
            .and_then(Value::as_array);
        let reasons = answer.get("CancellationReasons").and_then(Value::as_array);
        let items = actions
            .map_or(0, Vec::len)
            .max(reasons.map_or(0, Vec::len))
            .max(1);
        (0..items)
            .map(|i| {
                let put = actions
                    .and_then(|a| a.get(i))
                    .and_then(|a| a.get("Put"))
                    .and_then(|p| p.get("Item"));
                let met = reasons.and_then(|r| r.get(i)).and_then(|r| r.get("Item"));
                2.0 * kb(size(put).max(size(met)))
            })
            .sum()
    } else {
        let put = request.and_then(|r| r.get("Item"));
        kb(size(put).max(size(answer.get("Item"))))
    }
}

/// An item's size as DynamoDB counts it: each attribute's name and value, in bytes.
fn item_size(item: &serde_json::Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + attribute_size(value))
        .sum()
}

/// An attribute value's size (`{"S":"…"}`, `{"N":"…"}`, …), by AWS's rules for item sizes:
/// strings and binaries by their bytes, a number by about one byte per two significant digits
/// plus one, a list or a map 3 bytes plus 1 per element, and its elements.
fn attribute_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let strings = |list: &Vec<Value>, size: fn(&str) -> usize| -> usize {
        list.iter().filter_map(Value::as_str).map(size).sum()
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => number_size(n),
        ("B", Value::String(b)) => base64_len(b),
        ("BOOL" | "NULL", _) => 1,
        ("SS", Value::Array(list)) => strings(list, str::len),
        ("NS", Value::Array(list)) => strings(list, number_size),
        ("BS", Value::Array(list)) => strings(list, base64_len),
        ("L", Value::Array(list)) => {
            3 + list.len() + list.iter().map(attribute_size).sum::<usize>()
        }
        ("M", Value::Object(map)) => {
            3 + map
                .iter()
                .map(|(name, v)| name.len() + 1 + attribute_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// A number's size: one byte per two significant digits, one more, and one for a minus sign.
fn number_size(number: &str) -> usize {
    let number = number.trim();
    let digits: String = number
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1 + usize::from(number.starts_with('-') && significant > 0)
}

/// The bytes a base64 string decodes to.
fn base64_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|b| *b == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
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
            capacity_units: None,
            error: None,
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

    fn http(body: &str) -> Vec<u8> {
        format!(
            "POST / HTTP/1.1\r\nx-amz-target: DynamoDB_20120810.UpdateItem\r\ncontent-length: {}\r\nhost: x\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn a_data_request_asks_for_its_capacity_and_a_conditional_write_for_the_item_it_meets() {
        let (request, body) = ask_capacity(
            "UpdateItem",
            &http(r#"{"TableName":"t","ConditionExpression":"attribute_exists(pk)"}"#),
        )
        .unwrap();
        assert_eq!(body["ReturnConsumedCapacity"], "TOTAL");
        assert_eq!(body["ReturnValuesOnConditionCheckFailure"], "ALL_OLD");
        let (length, start) = body_extent(&request).unwrap();
        assert_eq!(
            request.len(),
            start + length,
            "Content-Length follows the body"
        );
        let sent: Value = serde_json::from_slice(&request[start..]).unwrap();
        assert_eq!(sent, body);
        // What the request asked for itself stays; a read is not given a refusal's item.
        let (_, body) = ask_capacity(
            "Query",
            &http(r#"{"TableName":"t","ReturnConsumedCapacity":"NONE"}"#),
        )
        .unwrap();
        assert_eq!(body["ReturnConsumedCapacity"], "NONE");
        assert!(body.get("ReturnValuesOnConditionCheckFailure").is_none());
        assert!(ask_capacity("DescribeTable", &http("{}")).is_none());
    }

    #[test]
    fn answers_are_read_whole_by_length_or_chunks() {
        let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(answer_body(whole).as_deref(), Some(&b"{}"[..]));
        assert_eq!(answer_body(&whole[..whole.len() - 1]), None);
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(answer_body(chunked).as_deref(), Some(&b"{}"[..]));
        assert_eq!(answer_body(&chunked[..chunked.len() - 7]), None);
    }

    #[test]
    fn consumed_capacity_is_one_table_or_the_sum_of_a_list() {
        let one = serde_json::json!({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}});
        assert_eq!(consumed_units(&one), Some(1.0));
        let list = serde_json::json!({"ConsumedCapacity": [
            {"TableName": "t", "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0},
            {"TableName": "u", "CapacityUnits": 2.0}
        ]});
        assert_eq!(consumed_units(&list), Some(6.0));
        assert_eq!(consumed_units(&serde_json::json!({})), None);
    }

    #[test]
    fn a_refused_write_is_billed_by_the_larger_item_and_a_cancelled_transaction_twice_per_item() {
        let big = "x".repeat(1500);
        let small = serde_json::json!({"pk": {"S": "a"}, "n": {"N": "12"}});
        // An UpdateItem that met a small item: 1 unit; one that met a 1.5 KB item: 2.
        let refusal = serde_json::json!({"__type": "x#ConditionalCheckFailedException"});
        assert_eq!(refused_write_units("UpdateItem", None, &refusal), 1.0);
        let met_big = serde_json::json!({"Item": {"pk": {"S": big}}});
        assert_eq!(refused_write_units("UpdateItem", None, &met_big), 2.0);
        // A PutItem of a 1.5 KB item that met a small one: by the item it would have put.
        let put = serde_json::json!({"Item": {"pk": {"S": big}}});
        let met_small = serde_json::json!({ "Item": small });
        assert_eq!(refused_write_units("PutItem", Some(&put), &met_small), 2.0);
        // A cancelled transaction of an Update and a Put: 2 units per item (1 KB each).
        let transaction = serde_json::json!({"TransactItems": [
            {"Update": {"Key": {"pk": {"S": "a"}}}},
            {"Put": {"Item": small}}
        ]});
        let cancelled = serde_json::json!({"CancellationReasons": [
            {"Code": "ConditionalCheckFailed"}, {"Code": "None"}
        ]});
        assert_eq!(
            refused_write_units("TransactWriteItems", Some(&transaction), &cancelled),
            4.0
        );
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(number_size("12"), 2);
        assert_eq!(number_size("-12"), 3);
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("1200"), 2);
        assert_eq!(base64_len("AAAA"), 3);
        assert_eq!(base64_len("AA=="), 1);
        let item = serde_json::json!({
            "pk": {"S": "abc"}, "set": {"SS": ["a", "bc"]}, "flag": {"BOOL": true},
            "list": {"L": [{"S": "ab"}]}, "map": {"M": {"k": {"S": "v"}}}
        });
        // pk 2+3, set 3+3, flag 4+1, list 4+(3+1+2), map 3+(3+1+1+1)
        assert_eq!(item_size(item.as_object().unwrap()), 5 + 6 + 5 + 10 + 9);
    }
}
