//! Cold start: a message bootstrap's process start to its first poll (its config read and SDK
//! clients built), then its first event (a ping: the rate-limit write and one push), ten times.

use serde_json::{json, Value};

use crate::harness::{message_event, ms, percentile, record, Bench};

pub async fn run(
    bench: &mut Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) {
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
}
