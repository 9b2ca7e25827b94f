//! Per-message overhead: echo, ping, a send to a group of 5 (with an id: the sender's ack is a
//! sixth push; history on, as by default), and joins and leaves, timed inside the Runtime API:
//! the durations the cost table bills.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{message_event, ms, percentile, record, Bench};
use crate::pricing;

/// The p50 of each operation, by its name in `pricing`.
pub async fn run(
    bench: &mut Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) -> HashMap<&'static str, Duration> {
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
    p50s
}
