//! Items read per send, counted under the handler, in a large table
//! (`BENCH_TABLE_CONNECTIONS`, 100,000 by default): a group send to 10, and a broadcast to all.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::Config;

use crate::counting::CountingStore;
use crate::harness::{env_list, ms, record, Bench};

pub async fn run(
    bench: &mut Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) {
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
}
