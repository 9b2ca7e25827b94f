//! `make bench`: the figures behind BENCHMARKS.md, measured on this machine in one run.
//!
//! The functions run as the deployable bootstraps (what `target/lambda/*/bootstrap.zip` holds, built by
//! `make build ARCH=x86_64`) under a minimal Lambda Runtime API on loopback, against the local
//! DynamoDB (dynoxide, or moto with `DYNAMODB=moto`) and a
//! counting `@connections` endpoint. Prints a table and writes `target/bench/report.json`, with
//! what each operation costs per million on AWS at list prices (`pricing.rs`), computed from what
//! the run measured.
//! `BENCH_FANOUT` (default `100,1000,10000`) and `BENCH_TABLE_CONNECTIONS` (default 100000) size it.
//! `bench pushes [N]` measures only the push path against the floor (no DynamoDB), for profiling;
//! `bench gateway` only the measurements through the local gateway (`BENCH_GATEWAY_CLIENTS`,
//! default `1,100,1000`); `bench spread` only the broadcast spread over the fan-out function
//! (`spread.rs`).

mod cost;
mod counting;
mod floor;
mod pricing;
mod runtime_api;
mod sink;
mod spread;
mod through_gateway;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use shared::gateway::target::Target;
use shared::store::dynamodb::{new_connection_items, DynamoStore};
use shared::store::{expiry_from_now, ConnectionRecord};
use shared::Config;

use counting::CountingStore;
use runtime_api::RuntimeApi;
use sink::Sink;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary `make build ARCH=x86_64` zips as `target/lambda/{function}/bootstrap.zip`.
fn bootstrap(function: &str) -> PathBuf {
    let path = root()
        .join("target/x86_64-unknown-linux-gnu/release")
        .join(function);
    assert!(
        path.exists(),
        "{} is missing: run `make build ARCH=x86_64` (make bench does)",
        path.display()
    );
    path
}

/// A bootstrap of `function` as Lambda starts it: the runtime API's address and the variables
/// Lambda sets, and the service's own (anonymous, on `table`, pushing to `management`).
fn lambda_process(
    function: &str,
    runtime_api: std::net::SocketAddr,
    table: &str,
    dynamodb: &str,
    management: &str,
) -> Command {
    let mut command = Command::new(bootstrap(function));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("TABLE_NAME", table)
        .env("ALLOW_ANONYMOUS", "true")
        .env("DYNAMODB_ENDPOINT", dynamodb)
        .env("MANAGEMENT_ENDPOINT", management);
    command
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Bench {
    sdk: aws_config::SdkConfig,
    dynamodb: String,
    sink: Sink,
    tables: usize,
}

/// One running bootstrap under the runtime API.
struct Function {
    api: RuntimeApi,
    child: Child,
    init: Duration,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

fn message_event(connection_id: &str, body: &str) -> Value {
    json!({
        "requestContext": {
            "routeKey": "$default", "eventType": "MESSAGE", "messageId": "bench=", "stage": "bench",
            "connectedAt": 1, "requestTimeEpoch": 1, "identity": {"sourceIp": "127.0.0.1"},
            "requestId": "bench-request=", "domainName": "127.0.0.1", "connectionId": connection_id, "apiId": "bench",
            // What the $connect authorizer's context adds to every event in AWS.
            "authorizer": {"principalId": "bench", "uid": "bench"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn record(id: String, uid: Option<String>, groups: &[&str]) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: id,
        connected_at: 1,
        source_ip: Some("127.0.0.1".into()),
        user_agent: None,
        uid,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        expires_at: expiry_from_now(Duration::from_secs(3 * 3600)),
        session: None,
    }
}

impl Bench {
    fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.sdk)
                .endpoint_url(&self.dynamodb)
                .build(),
        )
    }

    async fn table(&mut self, what: &str) -> DynamoStore {
        self.tables += 1;
        let store = DynamoStore::new(
            self.client(),
            format!("bench-{what}-{}-{}", std::process::id(), self.tables),
        );
        store.ensure_table().await.expect("create a bench table");
        store
    }

    /// Writes connections (with their group items) in batches of 25, 8 batches at a time.
    async fn seed(&self, store: &DynamoStore, records: &[ConnectionRecord]) {
        let items: Vec<_> = records
            .iter()
            // A record's items include its group items (what `$connect` writes).
            .flat_map(new_connection_items)
            .collect();
        let client = self.client();
        stream::iter(items.chunks(25))
            .map(|chunk| {
                let requests: Vec<WriteRequest> = chunk
                    .iter()
                    .map(|item| {
                        let put = PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .expect("an item");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect();
                let client = client.clone();
                let table = store.table().to_owned();
                async move {
                    let mut requests = requests;
                    while !requests.is_empty() {
                        let out = client
                            .batch_write_item()
                            .request_items(&table, requests)
                            .send()
                            .await?;
                        requests = out
                            .unprocessed_items()
                            .and_then(|u| u.get(&table))
                            .cloned()
                            .unwrap_or_default();
                    }
                    Ok::<_, aws_sdk_dynamodb::Error>(())
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await
            .expect("seed the table");
    }

    /// Starts a bootstrap on `table`, timing its init (process start to its first poll).
    async fn function(&self, name: &str, table: &str, env: &[(&str, &str)]) -> Function {
        let (api, addr) = RuntimeApi::start().await;
        let logs = root().join("target/bench");
        std::fs::create_dir_all(&logs).expect("target/bench");
        let log = std::fs::File::create(logs.join(format!("{table}.log"))).expect("a log file");
        let started = Instant::now();
        let child = lambda_process(name, addr, table, &self.dynamodb, &self.sink.endpoint)
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .envs(env.iter().copied())
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the bootstrap");
        let init = api.await_first_poll(started).await;
        Function { api, child, init }
    }
}

#[tokio::main]
async fn main() {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .load()
        .await;
    let mut args = std::env::args().skip(1);
    let only = args.next();
    if only.as_deref() == Some("pushes") {
        let n = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
        return pushes_only(&sdk, n).await;
    }
    let mut bench = Bench {
        sdk,
        dynamodb: support::dynamodb::endpoint().to_owned(),
        sink: Sink::start().await,
        tables: 0,
    };
    let mut report = serde_json::Map::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    if only.as_deref() == Some("burst") {
        through_gateway::burst(&bench, &mut rows, &mut report).await;
        return print_report(rows, report);
    }
    if only.as_deref() == Some("spread") {
        spread::run(&mut bench, &mut rows, &mut report).await;
        return print_report(rows, report);
    }
    if only.as_deref() == Some("gateway") {
        let measured = through_gateway::run(&bench, &mut rows, &mut report).await;
        pricing::report(&measured, &HashMap::new(), &mut rows, &mut report);
        return print_report(rows, report);
    }

    // 3. Cold start: process start to the first poll, with config read and SDK clients built;
    // then the first event (a ping: rate-limit write, push).
    let table = bench.table("cold").await;
    bench
        .seed(&table, &[record("pinger=".into(), None, &[])])
        .await;
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..10 {
        let function = bench.function("message", table.table(), &[]).await;
        inits.push(function.init);
        bench.sink.expect(1);
        firsts.push(
            function
                .api
                .invoke(message_event("pinger=", r#"{"action":"ping"}"#))
                .await
                .took,
        );
    }
    inits.sort();
    firsts.sort();
    report.insert("cold_start".into(), json!({
        "runs": 10,
        "init_ms_median": ms(percentile(&inits, 0.5)), "init_ms_max": ms(*inits.last().unwrap()),
        "first_event_ms_median": ms(percentile(&firsts, 0.5)), "first_event_ms_max": ms(*firsts.last().unwrap()),
    }));
    rows.push((
        "init (process start → ready), median of 10".into(),
        format!("{} ms", ms(percentile(&inits, 0.5))),
    ));
    rows.push((
        "first event (ping) after init, median".into(),
        format!("{} ms", ms(percentile(&firsts, 0.5))),
    ));

    // 1, 2, 6. Fan-out to N through the message bootstrap, against the floor.
    let floor_client = floor::FloorThread::start(&bench.sdk);
    let gateway = {
        let mut config = Config::new("not-read");
        config.dynamodb_endpoint = Some(bench.dynamodb.clone());
        config.management_endpoint = Some(bench.sink.endpoint.clone());
        shared::lambda::init::gateway(config, &bench.sdk)
    };
    let mut fanouts = Vec::new();
    for n in env_list("BENCH_FANOUT", "100,1000,10000") {
        let table = bench.table(&format!("fanout{n}")).await;
        let records: Vec<_> = (0..n)
            .map(|i| record(format!("c{i:06}="), Some(format!("u{i}")), &[]))
            .collect();
        bench.seed(&table, &records).await;
        // moto answers one Query at a time, slower as the table grows (0.7 s for a 625-item
        // shard in a 30,000-item table, seen here): one shard at a time keeps each in its timeout.
        // dynoxide reads both shards at once, as DynamoDB does and as the service is configured.
        let shards_at_once = match support::dynamodb::Kind::from_env() {
            support::dynamodb::Kind::Moto => "1",
            support::dynamodb::Kind::Dynoxide => "2",
        };
        let env = [
            ("RATE_LIMIT", "0"),
            ("DYNAMODB_READ_CONCURRENCY", shards_at_once),
        ];
        let function = bench.function("message", table.table(), &env).await;
        bench.sink.expect(1);
        function
            .api
            .invoke(message_event("c000000=", r#"{"action":"ping"}"#))
            .await;
        bench.sink.expect(n);
        let invocation = function
            .api
            .invoke(message_event(
                "c000000=",
                r#"{"action":"sendmessage","data":"fan-out"}"#,
            ))
            .await;
        assert_eq!(bench.sink.received(), n, "every connection got the message");
        // Until the last recipient has it (the function answers a little after its last push).
        let ours = bench
            .sink
            .completed_at()
            .map_or(invocation.took, |last| last - invocation.served);
        let rss = function.peak_rss_kib();
        drop(function);

        let floor_ids: Arc<Vec<String>> =
            Arc::new(records.iter().map(|r| r.connection_id.clone()).collect());
        let floor = sink_floor(&floor_client, &bench.sink, &floor_ids).await;
        let ratio = ours.as_secs_f64() / floor.time.as_secs_f64();
        rows.push((
            format!(
                "fan-out to {n}, end to end: ours / floor (signed pushes, best at {} at once)",
                floor.concurrency
            ),
            format!("{} ms / {} ms = {ratio:.2}×", ms(ours), ms(floor.time)),
        ));

        // The push path alone: the same pushes with the recipients known (no reads), in-process,
        // over a client that, like the floor's, has pushed before.
        let ids = Target::Connections(records.iter().map(|r| r.connection_id.clone()).collect());
        bench.sink.expect(n);
        let started = Instant::now();
        let report = gateway
            .send_to(&ids, "fan-out", &[])
            .await
            .expect("the pushes");
        let pushes = started.elapsed();
        assert_eq!(report.delivered, n);
        let push_ratio = pushes.as_secs_f64() / floor.time.as_secs_f64();
        rows.push((
            format!("fan-out to {n}, pushes only (recipients known): ours / floor"),
            format!(
                "{} ms / {} ms = {push_ratio:.2}×",
                ms(pushes),
                ms(floor.time)
            ),
        ));
        if let Some(kib) = rss {
            rows.push((
                format!("peak RSS of the message function, fan-out to {n}"),
                format!("{:.1} MiB", kib as f64 / 1024.0),
            ));
        }
        fanouts.push(json!({"connections": n, "ours_ms": ms(ours), "floor_ms": ms(floor.time), "floor_concurrency": floor.concurrency, "ratio": (ratio * 100.0).round() / 100.0, "pushes_only_ms": ms(pushes), "pushes_only_ratio": (push_ratio * 100.0).round() / 100.0, "peak_rss_kib": rss}));
    }
    report.insert("fan_out".into(), Value::from(fanouts));

    // The push concurrency, by measurement: the push path alone to 10,000 at several settings.
    let table = bench.table("concurrency").await;
    let ids = Target::Connections((0..10_000).map(|i| format!("k{i:05}=")).collect());
    let mut sweep = serde_json::Map::new();
    let mut line = Vec::new();
    for concurrency in [8, 16, 32, 64, 128, 256] {
        let mut config = Config::new(table.table());
        config.management_endpoint = Some(bench.sink.endpoint.clone());
        config.push_concurrency = concurrency;
        let gateway = shared::lambda::init::gateway(config, &bench.sdk);
        bench.sink.expect(10_000);
        let started = Instant::now();
        gateway.send_to(&ids, "x", &[]).await.expect("the pushes");
        let took = started.elapsed();
        sweep.insert(concurrency.to_string(), json!(ms(took)));
        line.push(format!("{concurrency}: {:.0} ms", ms(took)));
    }
    rows.push((
        "10,000 pushes only, by PUSH_CONCURRENCY".into(),
        line.join(", "),
    ));
    report.insert("push_concurrency_10000_ms".into(), Value::Object(sweep));

    // 7, 8. Through the local gateway with real clients and release bootstraps: what each
    // operation costs in DynamoDB, and broadcasts beside the floor.
    let measured = through_gateway::run(&bench, &mut rows, &mut report).await;
    through_gateway::burst(&bench, &mut rows, &mut report).await;

    // 4. Per-message overhead: echo, ping, a send to a group of 5 (with an id: the sender's ack
    // is a sixth push; history on, as by default), and joins and leaves, timed inside the runtime
    // API: the durations the cost table bills.
    let table = bench.table("permessage").await;
    let members: Vec<_> = (0..5)
        .map(|i| record(format!("m{i}="), Some(format!("m{i}")), &["five"]))
        .collect();
    bench.seed(&table, &members).await;
    // A limit no run reaches: each frame is counted, none refused (500 frames from 5 connections
    // would pass the default of 100 per 10 s and time refusals instead).
    let function = bench
        .function("message", table.table(), &[("RATE_LIMIT", "1000000")])
        .await;
    let mut per_message = serde_json::Map::new();
    let mut p50s = HashMap::new();
    // Each case's frames are sent in turn, 500 events in all, from the five members in turn; a
    // case of two frames (join, then leave the same group) times each.
    let cases: [(&[&str], &[&str], usize); 4] = [
        (&[pricing::ECHO], &["hello"], 1),
        (&[pricing::PING], &[r#"{"action":"ping"}"#], 1),
        (
            &[pricing::GROUP_SEND],
            &[r#"{"action":"send","to":{"group":"five"},"data":"hi","id":"m"}"#],
            pricing::GROUP_MEMBERS + 1,
        ),
        (
            &[pricing::JOIN, pricing::LEAVE],
            &[
                r#"{"action":"join","group":"other"}"#,
                r#"{"action":"leave","group":"other"}"#,
            ],
            1,
        ),
    ];
    for (names, bodies, pushes) in cases {
        let mut times = vec![Vec::new(); bodies.len()];
        for i in 0..500 {
            let which = i % bodies.len();
            let member = (i / bodies.len()) % 5;
            bench.sink.expect(pushes);
            times[which].push(
                function
                    .api
                    .invoke(message_event(&format!("m{member}="), bodies[which]))
                    .await
                    .took,
            );
        }
        for (what, mut times) in names.iter().zip(times) {
            times.sort();
            let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
            rows.push((
                format!("{what}: function time p50 / p99 ({} events)", times.len()),
                format!("{} ms / {} ms", ms(p50), ms(p99)),
            ));
            per_message.insert(
                (*what).into(),
                json!({"p50_ms": ms(p50), "p99_ms": ms(p99), "events": times.len()}),
            );
            p50s.insert(*what, p50);
        }
    }
    drop(function);
    report.insert("per_message".into(), Value::Object(per_message));

    // What each operation costs per million on AWS, from the counted operations and these times.
    pricing::report(&measured, &p50s, &mut rows, &mut report);

    // 5. Items read per send, counted under the handler, in a large table.
    let size = env_list("BENCH_TABLE_CONNECTIONS", "100000")
        .first()
        .copied()
        .unwrap_or(100_000);
    let table = bench.table("reads").await;
    let mut records: Vec<_> = (0..size)
        .map(|i| record(format!("r{i:07}="), None, &[]))
        .collect();
    for record in records.iter_mut().take(10) {
        record.groups.insert("ten".into());
    }
    let seeding = Instant::now();
    bench.seed(&table, &records).await;
    println!(
        "(seeded {size} connections in {:.0} s)",
        seeding.elapsed().as_secs_f64()
    );
    let counter = Arc::new(AtomicUsize::new(0));
    let store = CountingStore {
        inner: table.clone(),
        items_read: counter.clone(),
    };
    let mut config = Config::new(table.table());
    config.management_endpoint = Some(bench.sink.endpoint.clone());
    config.rate_limit = 0;
    let gateway = shared::Gateway::new(
        config,
        store,
        shared::push::ManagementApi::new(
            &bench.sdk,
            shared::push::PushLimits::new(Duration::from_secs(5)),
        ),
    );
    // The fan-out the built-in's `send` runs (the handler adds no read of its own: the sender is
    // named by the authorizer's context).
    bench.sink.expect(10);
    gateway
        .send_to_group("ten", "x", &[])
        .await
        .expect("a group send");
    let group_reads = gateway.store.take();
    bench.sink.expect(size);
    let started = Instant::now();
    gateway.send_to_all("x", &[]).await.expect("a broadcast");
    let broadcast_took = started.elapsed();
    let broadcast_reads = gateway.store.take();
    rows.push((
        format!("items read by a group send to 10, table of {size}"),
        format!("{group_reads} (the fan-out's own reads; the built-in's send adds none when the token names the sender)"),
    ));
    rows.push((
        format!("items read by a broadcast to {size}"),
        format!("{broadcast_reads} (in-process: {} ms)", ms(broadcast_took)),
    ));
    report.insert("reads_per_send".into(), json!({
        "table_connections": size, "group_send_to_10": group_reads, "broadcast": broadcast_reads,
    }));

    // Issue 24: a broadcast to 100,000, one invocation against spread over the fan-out function.
    spread::run(&mut bench, &mut rows, &mut report).await;

    // 6. Zipped bootstraps.
    let mut sizes = serde_json::Map::new();
    for function in ["connect", "message", "disconnect", "api", "fan-out"] {
        let zip = root()
            .join("target/lambda")
            .join(function)
            .join("bootstrap.zip");
        if let Ok(meta) = std::fs::metadata(&zip) {
            rows.push((
                format!("zipped bootstrap: {function} (x86_64)"),
                format!("{:.2} MB", meta.len() as f64 / 1e6),
            ));
            sizes.insert(function.into(), json!(meta.len()));
        }
    }
    report.insert("zip_bytes".into(), Value::Object(sizes));

    print_report(rows, report);
}

/// Prints the table and writes `target/bench/report.json`, naming the local DynamoDB it ran on.
fn print_report(rows: Vec<(String, String)>, mut report: serde_json::Map<String, Value>) {
    let dynamodb = format!("{:?}", support::dynamodb::Kind::from_env()).to_lowercase();
    println!("\nlocal DynamoDB: {dynamodb}");
    report.insert("dynamodb".into(), Value::from(dynamodb));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!();
    for (what, figure) in &rows {
        println!("{what:<width$}  {figure}");
    }
    if let Some(table) = report
        .get("cost_per_million")
        .and_then(|c| c.get("markdown"))
        .and_then(Value::as_str)
    {
        println!("\ncost per million, at us-east-1 list prices (for BENCHMARKS.md):\n\n{table}");
    }
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let path: &Path = &out.join("report.json");
    std::fs::write(
        path,
        serde_json::to_string_pretty(&Value::Object(report)).unwrap(),
    )
    .expect("write the report");
    println!("\nreport: {}", path.display());
}

/// `bench pushes [N]`: only the push path against the floor, N pushes (10,000 by default),
/// best of three; no DynamoDB and no bootstraps, so that it can run under a profiler.
async fn pushes_only(sdk: &aws_config::SdkConfig, n: usize) {
    let sink = Sink::start().await;
    let floor_client = floor::FloorThread::start(sdk);
    let concurrency = Config::DEFAULT_PUSH_CONCURRENCY;
    let mut config = Config::new("not-read");
    config.management_endpoint = Some(sink.endpoint.clone());
    let gateway = shared::lambda::init::gateway(config, sdk);
    let names: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("c{i:06}=")).collect());
    let best_floor = sink_floor(&floor_client, &sink, &names).await;
    let ids = Target::Connections(names.to_vec());
    let mut ours = Duration::MAX;
    for _ in 0..3 {
        sink.expect(n);
        let started = Instant::now();
        let report = gateway
            .send_to(&ids, "fan-out", &[])
            .await
            .expect("the pushes");
        assert_eq!(report.delivered, n);
        ours = ours.min(started.elapsed());
    }
    println!(
        "{n} pushes, {concurrency} at once, best of 3: ours {} ms, floor {} ms ({} at once) = {:.2}×",
        ms(ours),
        ms(best_floor.time),
        best_floor.concurrency,
        ours.as_secs_f64() / best_floor.time.as_secs_f64()
    );
}

/// The floor of pushes to the sink: `ids` pushed as the service's client pushes, with nothing
/// else to do, at the fastest concurrency (median of 3 at each).
async fn sink_floor(
    client: &floor::FloorThread,
    sink: &Sink,
    ids: &Arc<Vec<String>>,
) -> floor::Floor {
    floor::Floor::measure(3, |concurrency| async move {
        sink.expect(ids.len());
        let started = Instant::now();
        client
            .push_all(&sink.endpoint, ids, "fan-out", concurrency)
            .await
            - started
    })
    .await
}
