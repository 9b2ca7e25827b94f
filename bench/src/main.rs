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

mod cold_start;
mod cost;
mod counting;
mod floor;
mod harness;
mod in_process;
mod per_message;
mod pricing;
mod reads;
mod runtime_api;
mod sink;
mod spread;
mod through_gateway;

use std::collections::HashMap;
use std::path::Path;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use serde_json::{json, Value};

use harness::{root, Bench};

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
        return in_process::pushes_only(&sdk, n).await;
    }
    let mut bench = Bench::new(sdk).await;
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

    // The numbers name the measurements of the issue that asked for them.
    // 3. Cold start.
    cold_start::run(&mut bench, &mut rows, &mut report).await;
    // 1, 2, 6. Fan-out to N through the message bootstrap, against the floor.
    in_process::run(&mut bench, &mut rows, &mut report).await;
    // 7, 8. Through the local gateway with real clients and release bootstraps: what each
    // operation costs in DynamoDB, and broadcasts beside the floor.
    let measured = through_gateway::run(&bench, &mut rows, &mut report).await;
    through_gateway::burst(&bench, &mut rows, &mut report).await;

    // 4. Per-message overhead, timed inside the Runtime API.
    let p50s = per_message::run(&mut bench, &mut rows, &mut report).await;
    // What each operation costs per million on AWS, from the counted operations and these times.
    pricing::report(&measured, &p50s, &mut rows, &mut report);

    // 5. Items read per send.
    reads::run(&mut bench, &mut rows, &mut report).await;

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
