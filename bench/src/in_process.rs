//! Fan-out through the message bootstrap to N recipients, end to end and the push path alone,
//! against the floor (the same pushes with nothing else to do); the push concurrency swept; and
//! `bench pushes`, the push path alone for profiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::gateway::target::Target;
use shared::Config;

use crate::floor;
use crate::harness::{env_list, message_event, ms, record, Bench};
use crate::sink::Sink;

/// Fan-out to each of `BENCH_FANOUT`'s sizes, then 10,000 pushes at several `PUSH_CONCURRENCY`s.
pub async fn run(
    bench: &mut Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) {
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
        let sent = gateway
            .send_to(&ids, "fan-out", &[])
            .await
            .expect("the pushes");
        let pushes = started.elapsed();
        assert_eq!(sent.delivered, n);
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
}

/// `bench pushes [N]`: only the push path against the floor, N pushes (10,000 by default),
/// best of three; no DynamoDB and no bootstraps, so that it can run under a profiler.
pub async fn pushes_only(sdk: &aws_config::SdkConfig, n: usize) {
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
