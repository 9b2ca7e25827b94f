//! One broadcast to many connections (100,000 by default), pushed by one invocation and spread
//! over the fan-out function, against an `@connections` that answers each push after an
//! AWS-like delay and throttles at the account's rate (429 beyond it, as API Gateway does).
//!
//! The message function and the fan-out workers are the release bootstraps under this crate's
//! runtime API; the queue is moto's SQS; the local gateway's event source hands jobs to the
//! workers as Lambda's SQS event source mapping does, with the template's `MaximumConcurrency`.
//! The floor is what the throttle allows: N ÷ rate.
//!
//! `BENCH_SPREAD_CONNECTIONS` (100000), `BENCH_PUSH_DELAY_MS` (20), `BENCH_PUSH_RATE` (10000 a
//! second, burst half of it, as API Gateway's account quota), `BENCH_WORKERS` (5, the
//! template's `FanOutMaxConcurrency`) size it.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use local_gateway::event_source::{self, EventSource, Invoke};
use serde_json::{json, Value};
use support::sqs::{self, QueueSettings};
use tokio::sync::mpsc;

use crate::harness::{env_list, lambda_process, message_event, ms, record, Bench};
use crate::runtime_api::RuntimeApi;

/// The fan-out function's timeout in the template.
const WORKER_TIMEOUT: Duration = Duration::from_secs(20);

struct SinkState {
    delay: Duration,
    rate: f64,
    burst: f64,
    bucket: Mutex<(f64, Instant)>,
    seen: Mutex<HashSet<String>>,
    pushes: AtomicUsize,
    throttled: AtomicUsize,
    expected: AtomicUsize,
    done: Mutex<Option<Instant>>,
}

/// `@connections` as API Gateway answers it under load: after a delay, and 429 past a rate.
#[derive(Clone)]
struct SlowSink {
    state: Arc<SinkState>,
    endpoint: String,
}

impl SlowSink {
    async fn start(delay: Duration, rate: u32) -> SlowSink {
        let rate = f64::from(rate.max(1));
        let state = Arc::new(SinkState {
            delay,
            rate,
            burst: rate / 2.0,
            bucket: Mutex::new((rate / 2.0, Instant::now())),
            seen: Mutex::default(),
            pushes: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
            expected: AtomicUsize::new(usize::MAX),
            done: Mutex::new(None),
        });
        let app = Router::new()
            .route("/{stage}/@connections/{id}", any(push))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the sink");
        let endpoint = format!(
            "http://{}/bench",
            listener.local_addr().expect("its address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        SlowSink { state, endpoint }
    }

    /// Starts counting afresh towards `expected` distinct recipients.
    fn expect(&self, expected: usize) {
        self.state
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.state.pushes.store(0, Ordering::SeqCst);
        self.state.throttled.store(0, Ordering::SeqCst);
        self.state.expected.store(expected, Ordering::SeqCst);
        *self.state.done.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn reached(&self) -> usize {
        self.state
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Waits until every expected recipient has had a push, or `patience` passes: when the
    /// last one arrived.
    async fn done(&self, patience: Duration) -> Option<Instant> {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Some(at) = *self.state.done.lock().unwrap_or_else(|p| p.into_inner()) {
                return Some(at);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

async fn push(
    State(state): State<Arc<SinkState>>,
    method: Method,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    if method != Method::POST {
        // The workers' warm-up (GET): a connection that is not there.
        return StatusCode::GONE.into_response();
    }
    let admitted = {
        let mut bucket = state.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, filled) = &mut *bucket;
        let now = Instant::now();
        *tokens =
            (*tokens + now.duration_since(*filled).as_secs_f64() * state.rate).min(state.burst);
        *filled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    };
    if !admitted {
        state.throttled.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-errortype", "LimitExceededException")],
            r#"{"message":"Rate exceeded"}"#,
        )
            .into_response();
    }
    tokio::time::sleep(state.delay).await;
    state.pushes.fetch_add(1, Ordering::Relaxed);
    let mut seen = state.seen.lock().unwrap_or_else(|p| p.into_inner());
    if seen.insert(id) && seen.len() == state.expected.load(Ordering::SeqCst) {
        *state.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
    StatusCode::OK.into_response()
}

/// One fan-out environment: a bootstrap polling its own runtime API.
struct Worker {
    api: RuntimeApi,
    addr: SocketAddr,
    child: Option<Child>,
}

/// The fan-out function's environments, handed out one per invocation; one that does not
/// answer within the function's timeout is replaced, as Lambda replaces an environment that
/// crashed or timed out.
struct Workers {
    workers: Vec<Mutex<Worker>>,
    idle: tokio::sync::Mutex<mpsc::Receiver<usize>>,
    returns: mpsc::Sender<usize>,
    busy: Mutex<HashSet<usize>>,
    start: Box<dyn Fn(SocketAddr) -> Child + Send + Sync>,
}

impl Workers {
    async fn start(
        count: usize,
        start: Box<dyn Fn(SocketAddr) -> Child + Send + Sync>,
    ) -> Arc<Workers> {
        let (returns, idle) = mpsc::channel(count);
        let mut workers = Vec::new();
        for index in 0..count {
            let (api, addr) = RuntimeApi::start().await;
            api.set_timeout(WORKER_TIMEOUT);
            let child = start(addr);
            api.await_first_poll(Instant::now()).await;
            workers.push(Mutex::new(Worker {
                api,
                addr,
                child: Some(child),
            }));
            returns.send(index).await.expect("the pool");
        }
        Arc::new(Workers {
            workers,
            idle: tokio::sync::Mutex::new(idle),
            returns,
            busy: Mutex::default(),
            start,
        })
    }

    fn invoke(self: &Arc<Self>) -> Invoke {
        let workers = self.clone();
        Arc::new(move |event: Value| {
            let workers = workers.clone();
            Box::pin(async move {
                let index = workers.idle.lock().await.recv().await.expect("a worker");
                workers
                    .busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(index);
                let api = workers.workers[index]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .api
                    .clone();
                let answer = tokio::time::timeout(WORKER_TIMEOUT, api.invoke(event)).await;
                workers
                    .busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&index);
                let result = match answer {
                    Ok(invocation) if !invocation.failed => {
                        serde_json::from_slice(&invocation.body).map_err(|e| e.to_string())
                    }
                    Ok(invocation) => Err(String::from_utf8_lossy(&invocation.body).into_owned()),
                    Err(_) => {
                        // Timed out (or died): a new environment takes its place.
                        let mut worker = workers.workers[index]
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        if let Some(mut child) = worker.child.take() {
                            let _ = child.kill();
                            let _ = child.wait();
                        }
                        worker.child = Some((workers.start)(worker.addr));
                        Err("the invocation timed out".to_owned())
                    }
                };
                let _ = workers.returns.send(index).await;
                result
            })
        })
    }

    /// The function times of every environment's invocations since the last look.
    fn take_completed(&self) -> Vec<Duration> {
        self.workers
            .iter()
            .flat_map(|worker| {
                let api = worker.lock().unwrap_or_else(|p| p.into_inner()).api.clone();
                api.take_completed()
            })
            .collect()
    }

    /// Ends every environment. The event source's pollers hold the pool until the process ends:
    /// without this, its bootstraps would poll until the bench's exit cut their Runtime APIs off
    /// (each then printing a failed request).
    fn stop(&self) {
        for worker in &self.workers {
            let mut worker = worker.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(mut child) = worker.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Kills an environment in the middle of an invocation; whether one was busy.
    fn kill_a_busy_one(&self) -> bool {
        let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let Some(&index) = busy.iter().next() else {
            return false;
        };
        let mut worker = self.workers[index]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        worker
            .child
            .as_mut()
            .is_some_and(|child| child.kill().is_ok())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// For each size, the better of two runs of `send(size)` through `api`, to the sink's last
/// new recipient (twice: the first may wake environments up after idle time).
async fn best_of_two(
    sink: &SlowSink,
    api: &RuntimeApi,
    sizes: &[usize],
    send: impl Fn(usize) -> Value,
) -> Vec<Option<Duration>> {
    let mut best = Vec::new();
    for &size in sizes {
        let mut runs = Vec::new();
        for _ in 0..2 {
            sink.expect(size);
            let started = Instant::now();
            api.invoke(send(size)).await;
            runs.extend(
                sink.done(Duration::from_secs(60))
                    .await
                    .map(|at| at - started),
            );
        }
        best.push(runs.into_iter().min());
    }
    best
}

/// Seeds the table, then measures the single invocation, the spread broadcast, and the spread
/// broadcast with a worker killed part-way.
pub async fn run(
    bench: &mut Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) {
    let n = env_list("BENCH_SPREAD_CONNECTIONS", "100000")[0];
    let delay = Duration::from_millis(env_list("BENCH_PUSH_DELAY_MS", "20")[0] as u64);
    let rate = env_list("BENCH_PUSH_RATE", "10000")[0] as u32;
    let worker_count = env_list("BENCH_WORKERS", "5")[0];
    let floor = Duration::from_secs_f64(n as f64 / f64::from(rate));
    let sink = SlowSink::start(delay, rate).await;
    let table = bench.table("spread").await;
    // Groups of the sizes the threshold is chosen among: g1000 holds the first 1,000, and so on.
    let sizes: Vec<usize> = env_list("BENCH_SPREAD_SIZES", "1000,2000,5000,10000")
        .into_iter()
        .filter(|size| *size <= n)
        .collect();
    let names: Vec<String> = sizes.iter().map(|size| format!("g{size}")).collect();
    let records: Vec<_> = (0..n)
        .map(|i| {
            let groups: Vec<&str> = sizes
                .iter()
                .zip(&names)
                .filter(|(size, _)| i < **size)
                .map(|(_, name)| name.as_str())
                .collect();
            record(format!("s{i:07}="), None, &groups)
        })
        .collect();
    bench.seed(&table, &records).await;
    let broadcast = message_event(
        "s0000000=",
        r#"{"action":"send","to":{"all":true},"data":"x","id":"b"}"#,
    );
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
    ];

    // One invocation pushes all of it. On AWS it would be stopped at its 29 s timeout.
    let single = bench
        .function(
            "message",
            table.table(),
            &[
                ("MANAGEMENT_ENDPOINT", sink.endpoint.as_str()),
                ("RATE_LIMIT", "0"),
            ],
        )
        .await;
    let group_send = |size: usize| {
        message_event(
            "s0000000=",
            &format!(r#"{{"action":"send","to":{{"group":"g{size}"}},"data":"x","id":"g"}}"#),
        )
    };
    // Group sends of each size pushed by the invocation itself.
    let small_single = best_of_two(&sink, &single.api, &sizes, group_send).await;
    sink.expect(n);
    let started = Instant::now();
    let counted = {
        let sink = sink.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(29)).await;
            sink.reached()
        })
    };
    let invocation = single.api.invoke(broadcast.clone()).await;
    let single_took = sink
        .done(Duration::from_secs(300))
        .await
        .map(|at| at - started);
    let by_29s = counted.await.unwrap_or(0);
    let single_throttled = sink.state.throttled.load(Ordering::SeqCst);
    drop(single);
    println!(
        "single invocation: {single_took:?} (invocation {:?}), {by_29s} by 29 s",
        invocation.took
    );

    // Spread: the message function queues jobs; the fan-out function's environments push them.
    let queues = sqs::create(
        &format!("bench-spread-{}", std::process::id()),
        QueueSettings {
            visibility_timeout: 25,
            max_receive_count: 3,
            max_concurrency: worker_count,
            function_timeout: WORKER_TIMEOUT.as_secs() as u32,
        },
    )
    .await;
    let message = bench
        .function(
            "message",
            table.table(),
            &[
                ("MANAGEMENT_ENDPOINT", sink.endpoint.as_str()),
                ("RATE_LIMIT", "0"),
                ("FAN_OUT_QUEUE_URL", queues.queue_url.as_str()),
                ("SQS_ENDPOINT", sqs::endpoint()),
            ],
        )
        .await;
    let (dynamodb, table_name, management) = (
        bench.dynamodb.clone(),
        table.table().to_owned(),
        sink.endpoint.clone(),
    );
    let logs = crate::harness::root().join("target/bench");
    let workers = Workers::start(
        worker_count,
        Box::new(move |addr| {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join("fan-out.log"))
                .expect("a log file");
            lambda_process("fan-out", addr, &table_name, &dynamodb, &management)
                .envs(credentials)
                .stdout(log)
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a fan-out bootstrap")
        }),
    )
    .await;
    event_source::spawn(
        EventSource {
            sqs_endpoint: sqs::endpoint().to_owned(),
            queue_url: queues.queue_url.clone(),
            function: "fan-out".into(),
            batch_size: 1,
            max_concurrency: worker_count,
            function_timeout: WORKER_TIMEOUT,
        },
        workers.invoke(),
    );
    // The same group sends spread (a message function that spreads everything).
    let spreading = bench
        .function(
            "message",
            table.table(),
            &[
                ("MANAGEMENT_ENDPOINT", sink.endpoint.as_str()),
                ("RATE_LIMIT", "0"),
                ("FAN_OUT_QUEUE_URL", queues.queue_url.as_str()),
                ("SQS_ENDPOINT", sqs::endpoint()),
                ("SPREAD_ABOVE", "1"),
            ],
        )
        .await;
    let small_spread = best_of_two(&sink, &spreading.api, &sizes, group_send).await;
    drop(spreading);
    let mut spread = Vec::new();
    let mut acks = Vec::new();
    workers.take_completed();
    for _ in 0..2 {
        sink.expect(n);
        let started = Instant::now();
        let ack = message.api.invoke(broadcast.clone()).await;
        acks.push(ack.took);
        let took = sink
            .done(Duration::from_secs(120))
            .await
            .map(|at| at - started);
        println!(
            "spread: {took:?} (ack after {:?}), throttled {}",
            ack.took,
            sink.state.throttled.load(Ordering::SeqCst)
        );
        spread.push((
            took,
            sink.state.throttled.load(Ordering::SeqCst),
            sink.state.pushes.load(Ordering::SeqCst),
        ));
    }

    // What Lambda bills the fan-out function for one spread broadcast: its invocations' time.
    let worker_times = workers.take_completed();
    let worker_seconds = worker_times.iter().map(Duration::as_secs_f64).sum::<f64>() / 2.0;
    let worker_invocations = worker_times.len() / 2;
    // A worker killed part-way: its job comes back after the visibility timeout (25 s).
    sink.expect(n);
    let started = Instant::now();
    message.api.invoke(broadcast.clone()).await;
    while sink.reached() < n / 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = workers.kill_a_busy_one();
    let killed_took = sink
        .done(Duration::from_secs(120))
        .await
        .map(|at| at - started);
    let duplicates = sink
        .state
        .pushes
        .load(Ordering::SeqCst)
        .saturating_sub(sink.reached());
    println!(
        "killed: {killed}, {killed_took:?}, {} of {n} reached, {duplicates} twice",
        sink.reached()
    );
    workers.stop();

    // The faster of the two runs, and that run's own ack.
    let best_run = (0..spread.len())
        .filter(|&i| spread[i].0.is_some())
        .min_by_key(|&i| spread[i].0);
    let best = best_run.and_then(|i| spread[i].0);
    let best_ack = best_run.map_or(Duration::ZERO, |i| acks[i]);
    let show = |took: Option<Duration>| {
        took.map_or("not all reached".to_owned(), |t| format!("{} ms", ms(t)))
    };
    rows.push((
        format!(
            "broadcast to {n}, one invocation ({} ms a push, {rate}/s throttle)",
            delay.as_millis()
        ),
        format!(
            "{} = {:.2}× the floor ({} ms); {by_29s} reached by 29 s",
            show(single_took),
            single_took.map_or(f64::NAN, |t| t.as_secs_f64() / floor.as_secs_f64()),
            ms(floor)
        ),
    ));
    rows.push((
        format!("broadcast to {n}, spread over {worker_count} fan-out environments"),
        format!(
            "{} = {:.2}× the floor; ack after {} ms",
            show(best),
            best.map_or(f64::NAN, |t| t.as_secs_f64() / floor.as_secs_f64()),
            ms(best_ack)
        ),
    ));
    rows.push((
        format!("fan-out function time for one spread broadcast to {n}"),
        format!("{worker_seconds:.2} s over {worker_invocations} invocations (Lambda bills this, at 256 MB)"),
    ));
    rows.push((
        format!("broadcast to {n}, spread, a worker killed at a quarter"),
        format!(
            "{}; killed: {killed}; {duplicates} recipients pushed twice",
            show(killed_took)
        ),
    ));
    for ((size, single), spread) in sizes.iter().zip(&small_single).zip(&small_spread) {
        rows.push((
            format!("group send to {size}: one invocation / spread"),
            format!("{} / {}", show(*single), show(*spread)),
        ));
    }
    report.insert(
        "spread_by_size".into(),
        json!(sizes
            .iter()
            .zip(&small_single)
            .zip(&small_spread)
            .map(|((size, single), spread)| json!({
                "size": size, "single_ms": single.map(ms), "spread_ms": spread.map(ms),
            }))
            .collect::<Vec<_>>()),
    );
    report.insert(
        "spread".into(),
        json!({
            "connections": n, "push_delay_ms": delay.as_millis() as u64, "push_rate": rate,
            "floor_ms": ms(floor), "workers": worker_count,
            "single_ms": single_took.map(ms), "single_reached_by_29s": by_29s, "single_throttled": single_throttled,
            "spread_runs_ms": spread.iter().map(|(t, _, _)| t.map(ms)).collect::<Vec<_>>(),
            "spread_throttled": spread.iter().map(|(_, t, _)| *t).collect::<Vec<_>>(),
            "ack_ms": acks.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "killed": killed, "killed_run_ms": killed_took.map(ms), "pushed_twice": duplicates,
            "worker_seconds_per_broadcast": worker_seconds, "worker_invocations_per_broadcast": worker_invocations,
        }),
    );
}
