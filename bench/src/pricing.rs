//! What the measured operations would cost on AWS, per million, beside API Gateway's own fee for
//! the same messages and AWS AppSync Events' price for the same work; and what an idle connection
//! costs, per million connection-minutes.
//!
//! Our cost is Lambda (requests, and duration at 256 MB on arm64: the durations measured here, on
//! this machine's unthrottled x86_64 cores, each rounded up to the millisecond as Lambda bills
//! them; a 256 MB function gets about a seventh of a core, so on AWS the CPU-bound part runs
//! longer: these are a floor) and DynamoDB (the units the counting relay measured). API Gateway's
//! fee is not ours to cut, but it is what the service's messages cost whatever the backend.
//!
//! Prices: us-east-1 list prices, read on 2026-12-05. AWS's pricing pages draw their rate tables
//! with a script, and the text the tools of this repository could read of them does not show the
//! figures; where a figure comes from elsewhere, its comment says so (BENCHMARKS.md, "Prices").

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cost::Cost;

/// API Gateway WebSocket API, per million messages (the first billion a month), sent or
/// received. <https://aws.amazon.com/api-gateway/pricing/>, read 2026-12-05; the figure as the
/// review cites it from re:Post ("how to interpret websocket api connection minutes pricing",
/// <https://www.repost.aws/pt/questions/QU7IqgooGeQmqudOsmzTw5YQ/>) and as third-party summaries
/// of that page give it; not read in AWS's page text itself.
pub const API_GATEWAY_PER_MILLION_MESSAGES: f64 = 1.00;
/// API Gateway meters a message in units of 32 KB: a 33 KB message is billed as two. Same
/// sources.
pub const API_GATEWAY_MESSAGE_UNIT_BYTES: usize = 32 * 1024;
/// API Gateway WebSocket API, per million connection-minutes. Same sources.
pub const API_GATEWAY_PER_MILLION_CONNECTION_MINUTES: f64 = 0.25;
/// Lambda, per million requests (arm64 and x86_64 alike). <https://aws.amazon.com/lambda/pricing/>,
/// read 2026-12-05; the page's own figure in third-party breakdowns of it (cloudchipr.com).
pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
/// Lambda on arm64, per GB-second (the first 7.5 billion GB-seconds a month). Same sources.
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// The functions' memory (`MemorySize: 256` in template.yaml), in GB as Lambda bills it.
pub const LAMBDA_MEMORY_GB: f64 = 256.0 / 1024.0;
/// DynamoDB on-demand, per million write request units, since AWS halved on-demand prices on
/// 2024-11-01. <https://aws.amazon.com/dynamodb/pricing/on-demand/>, read 2026-12-05; the figure
/// from third-party accounts of the cut (airbyte.com, jusdb.com), not read in AWS's page text.
pub const DYNAMODB_PER_MILLION_WRU: f64 = 0.625;
/// DynamoDB on-demand, per million read request units. Same sources.
pub const DYNAMODB_PER_MILLION_RRU: f64 = 0.125;
/// AWS AppSync Events, per million Event API operations: each message published, each message
/// delivered to a subscriber, each connection, subscription request and ping. The price: the AWS
/// Price List's AppSync offer ("$1 per million Event API operations", seen for eu-west-1 in a
/// public mirror of it), read 2026-12-05; what counts as an operation: the text of
/// <https://aws.amazon.com/appsync/pricing/> as quoted by third parties. A delivery is metered
/// per 5 KB (a secondary source only): the messages here are smaller.
pub const APPSYNC_EVENTS_PER_MILLION_OPERATIONS: f64 = 1.00;
/// AWS AppSync Events, per million connection-minutes: **not confirmed**. The part of
/// <https://aws.amazon.com/appsync/pricing/> that could be read (2026-12-05) gives $0.08 for
/// AppSync GraphQL's real-time connections; for Events, $0.08 comes from third-party quotations
/// of the page only.
pub const APPSYNC_EVENTS_PER_MILLION_CONNECTION_MINUTES: f64 = 0.08;

/// The client library's heartbeat on an idle connection, in minutes: its `DEFAULT_HEARTBEAT_MS`
/// (8 minutes, clients/js/src/options.ts) checked every 30 s, so a ping leaves within 8½ minutes of
/// silence (about 9 in a hidden browser tab), under API Gateway's 10-minute idle limit.
pub const HEARTBEAT_MINUTES: f64 = 8.5;
/// How often the client library renews a connection: 5 minutes before API Gateway's 2 hours.
pub const RENEWAL_MINUTES: f64 = 115.0;

/// The operations the bench measures, by the names both its parts use.
pub const ECHO: &str = "echo";
pub const PING: &str = "ping";
pub const JOIN: &str = "join";
pub const LEAVE: &str = "leave";
pub const GROUP_SEND: &str = "send to a group of 5 (ack, history)";
/// The members of the group a [`GROUP_SEND`] goes to, its sender among them.
pub const GROUP_MEMBERS: usize = 5;
pub const CONNECT: &str = "$connect";
pub const DISCONNECT: &str = "$disconnect";

pub fn broadcast(n: usize) -> String {
    format!("a broadcast to {n}")
}

/// API Gateway messages of `frames` (each in and out counts): 32 KB units each, at least one.
pub fn messages<S: AsRef<str>>(frames: &[S]) -> u64 {
    frames
        .iter()
        .map(|f| {
            f.as_ref()
                .len()
                .div_ceil(API_GATEWAY_MESSAGE_UNIT_BYTES)
                .max(1) as u64
        })
        .sum()
}

/// One operation as the bench measured it through the local gateway.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub what: String,
    /// What it cost in DynamoDB.
    pub cost: Cost,
    /// The function time of each Lambda invocation it caused (the `$connect` authorizer's too).
    pub invocations: Vec<Duration>,
    /// The API Gateway messages it made: its frames in and out, in 32 KB units.
    pub messages: u64,
}

/// Lambda's billed duration of one invocation: rounded up to the millisecond.
fn billed_ms(took: Duration) -> f64 {
    (took.as_secs_f64() * 1000.0).ceil().max(1.0)
}

/// One row of the cost table: one operation, per million.
#[derive(Clone)]
struct Line {
    what: String,
    invocations: usize,
    /// All its invocations' billed milliseconds.
    billed_ms: f64,
    /// Where the durations come from.
    durations: String,
    write_units: f64,
    read_units: f64,
    messages: f64,
    /// AppSync Events operations for the same work (`None`: it cannot do it), and what they are.
    appsync: Option<f64>,
    appsync_note: &'static str,
    note: String,
}

impl Line {
    fn lambda(&self) -> f64 {
        self.invocations as f64 * LAMBDA_PER_MILLION_REQUESTS
            + self.billed_ms / 1000.0 * LAMBDA_MEMORY_GB * LAMBDA_ARM64_PER_GB_SECOND * 1e6
    }

    fn dynamodb(&self) -> f64 {
        self.write_units * DYNAMODB_PER_MILLION_WRU + self.read_units * DYNAMODB_PER_MILLION_RRU
    }

    fn ours(&self) -> f64 {
        self.lambda() + self.dynamodb()
    }

    fn api_gateway(&self) -> f64 {
        self.messages * API_GATEWAY_PER_MILLION_MESSAGES
    }

    fn appsync(&self) -> Option<f64> {
        self.appsync
            .map(|ops| ops * APPSYNC_EVENTS_PER_MILLION_OPERATIONS)
    }

    fn share(&self) -> Option<f64> {
        (self.api_gateway() > 0.0).then(|| self.ours() / self.api_gateway())
    }

    fn json(&self) -> Value {
        json!({
            "what": self.what,
            "lambda_invocations": self.invocations,
            "lambda_billed_ms": self.billed_ms,
            "lambda_durations": self.durations,
            "write_units": round(self.write_units, 2),
            "read_units": round(self.read_units, 2),
            "api_gateway_messages": self.messages,
            "lambda_usd": round(self.lambda(), 4),
            "dynamodb_usd": round(self.dynamodb(), 4),
            "ours_usd": round(self.ours(), 4),
            "api_gateway_usd": round(self.api_gateway(), 4),
            "ours_share_of_api_gateway": self.share().map(|s| round(s, 4)),
            "appsync_events_operations": self.appsync,
            "appsync_events_usd": self.appsync().map(|x| round(x, 4)),
            "appsync_events_note": self.appsync_note,
            "note": self.note,
        })
    }

    fn markdown(&self) -> String {
        let share = self
            .share()
            .map_or("—".to_owned(), |s| format!("{:.0} %", s * 100.0));
        let appsync = match self.appsync() {
            Some(usd) => format!("{} ({})", usd_text(usd), self.appsync_note),
            None => format!("n/a ({})", self.appsync_note),
        };
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", self.note)
        };
        format!(
            "| {}{note} | {} ({} × {}) | {} ({} WRU, {} RRU) | **{}** | {} ({} messages) | {share} | {appsync} |",
            self.what,
            usd_text(self.lambda()),
            self.invocations,
            ms_text(self.billed_ms, self.invocations),
            usd_text(self.dynamodb()),
            round(self.write_units, 2),
            round(self.read_units, 2),
            usd_text(self.ours()),
            usd_text(self.api_gateway()),
            self.messages,
        )
    }
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn usd_text(usd: f64) -> String {
    if usd >= 100.0 {
        format!("${usd:.0}")
    } else if usd >= 1.0 || usd == 0.0 {
        format!("${usd:.2}")
    } else {
        format!("${usd:.3}")
    }
}

/// `2 ms`, or for several invocations their mean: `2.5 ms each`.
fn ms_text(billed_ms: f64, invocations: usize) -> String {
    match invocations {
        0 => "0 ms".to_owned(),
        1 => format!("{billed_ms} ms"),
        n => format!("{:.1} ms each", billed_ms / n as f64),
    }
}

/// The billed milliseconds of `invocations` invocations: at `p50` each when the per-message bench
/// measured one, else as the counted run measured them.
fn durations(measured: &Measured, p50: Option<Duration>) -> (usize, f64, String) {
    let invocations = measured.invocations.len();
    match p50 {
        Some(p50) if invocations > 0 => (
            invocations,
            invocations as f64 * billed_ms(p50),
            format!(
                "the per-message bench's p50, {} ms, on this machine's cores: a floor",
                crate::harness::ms(p50)
            ),
        ),
        _ => (
            invocations,
            measured.invocations.iter().copied().map(billed_ms).sum(),
            "measured once, through the gateway, on this machine's cores: a floor".to_owned(),
        ),
    }
}

fn line(
    measured: &Measured,
    p50: Option<Duration>,
    appsync: Option<f64>,
    appsync_note: &'static str,
    note: String,
) -> Line {
    let (invocations, billed_ms, durations) = durations(measured, p50);
    Line {
        what: measured.what.clone(),
        invocations,
        billed_ms,
        durations,
        write_units: measured.cost.write_units,
        read_units: measured.cost.read_units,
        messages: measured.messages as f64,
        appsync,
        appsync_note,
        note,
    }
}

/// The cost table, per million of each operation measured, and per million idle
/// connection-minutes: pushed to `rows`, and into `report` as `cost_per_million` (with the prices
/// and their sources, and the table as Markdown for BENCHMARKS.md).
///
/// `measured`: the operations counted through the gateway; `p50`: the per-message function times
/// (500 events each), used for the operations that have one, by name.
pub fn report(
    measured: &[Measured],
    p50: &HashMap<&str, Duration>,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) {
    let find = |what: &str| measured.iter().find(|m| m.what == what);
    let mut lines = Vec::new();

    if let Some(echo) = find(ECHO) {
        // Echo and a ping through Lambda cost the same requests; the slower of their times.
        let time = [p50.get(ECHO), p50.get(PING)]
            .into_iter()
            .flatten()
            .max()
            .copied();
        let mut row = line(
            echo,
            time,
            None,
            "no server code answers one client",
            String::new(),
        );
        row.what = "echo, or `ping` through Lambda".to_owned();
        lines.push(row);
    }
    let ping = find(PING).map(|ping| {
        let mock = ping.invocations.is_empty() && ping.cost.requests == 0;
        let note = if mock {
            "measured: no invocation, no DynamoDB request".to_owned()
        } else {
            "the local gateway invoked Lambda for it: the mock route is not in place here, and \
             the row shows what ran"
                .to_owned()
        };
        let mut row = line(
            ping,
            None,
            None,
            "its keep-alive is its own `ka` frame",
            note,
        );
        row.what = "`ping` answered by the API's mock route".to_owned();
        row
    });
    lines.extend(ping.clone());
    if let Some(send) = find(GROUP_SEND) {
        lines.push(line(
            send,
            p50.get(GROUP_SEND).copied(),
            Some(1.0 + GROUP_MEMBERS as f64),
            "a publish and 5 deliveries; it keeps no history",
            String::new(),
        ));
    }
    if let Some(join) = find(JOIN) {
        lines.push(line(
            join,
            p50.get(JOIN).copied(),
            Some(1.0),
            "a subscribe; no membership list, presence or stream position",
            String::new(),
        ));
    }
    for m in measured
        .iter()
        .filter(|m| m.what.starts_with("a broadcast to "))
    {
        let n: f64 = m
            .what
            .trim_start_matches("a broadcast to ")
            .parse()
            .unwrap_or(0.0);
        lines.push(line(
            m,
            None,
            Some(1.0 + n),
            "a publish and a delivery to each",
            String::new(),
        ));
    }
    let connection = match (find(CONNECT), find(DISCONNECT)) {
        (Some(connect), Some(disconnect)) => {
            let both = Measured {
                what: "`$connect` + `$disconnect`".to_owned(),
                cost: connect.cost.and(&disconnect.cost),
                invocations: [connect.invocations.clone(), disconnect.invocations.clone()].concat(),
                messages: connect.messages + disconnect.messages,
            };
            Some(line(
                &both,
                None,
                Some(1.0),
                "its connect; no record of the connection",
                "the authorizer's invocation included".to_owned(),
            ))
        }
        _ => None,
    };
    lines.extend(connection.clone());

    for l in &lines {
        rows.push((
            format!("cost per million: {}", l.what),
            format!(
                "ours {} (Lambda {}: {} invocation(s), {} billed, {}; DynamoDB {}: {} WRU, {} RRU) · API Gateway {} ({} messages) · AppSync Events {}",
                usd_text(l.ours()),
                usd_text(l.lambda()),
                l.invocations,
                ms_text(l.billed_ms, l.invocations),
                l.durations,
                usd_text(l.dynamodb()),
                round(l.write_units, 2),
                round(l.read_units, 2),
                usd_text(l.api_gateway()),
                l.messages,
                l.appsync().map_or("n/a".to_owned(), usd_text),
            ),
        ));
    }
    let share = lines
        .iter()
        .find(|l| l.what == GROUP_SEND)
        .and_then(Line::share);
    if let Some(share) = share {
        rows.push((
            format!("{GROUP_SEND}: ours ÷ API Gateway's fee"),
            format!("{:.1} % (the issue's aim: ≤ 25 %)", share * 100.0),
        ));
    }

    // An idle connection: the heartbeat's pings (answered by the mock route) and a renewal every
    // RENEWAL_MINUTES ($connect and $disconnect; a renewal also rejoins the client's groups and
    // asks their history, one join and one history each, not counted here: none).
    let per_ping = ping
        .as_ref()
        .map_or(2.0 * API_GATEWAY_PER_MILLION_MESSAGES, |p| {
            p.ours() + p.api_gateway()
        });
    let per_renewal = connection.as_ref().map(|c| c.ours() + c.api_gateway());
    let pings = per_ping / HEARTBEAT_MINUTES;
    let renewals = per_renewal.map(|r| r / RENEWAL_MINUTES);
    let keep_alive = pings + renewals.unwrap_or(0.0);
    rows.push((
        "per million idle connection-minutes".into(),
        format!(
            "API Gateway's connection fee {} · our keep-alive {} (pings every {HEARTBEAT_MINUTES} min through the mock route {}, renewals every {RENEWAL_MINUTES} min {}) · AppSync Events {} (connection-minutes; price not confirmed)",
            usd_text(API_GATEWAY_PER_MILLION_CONNECTION_MINUTES),
            usd_text(keep_alive),
            usd_text(pings),
            renewals.map_or("(not measured)".to_owned(), usd_text),
            usd_text(APPSYNC_EVENTS_PER_MILLION_CONNECTION_MINUTES),
        ),
    ));

    let mut markdown = vec![
        "| per million | Lambda (requests × billed ms) | DynamoDB (measured units) | ours | API Gateway's fee | ours ÷ API Gateway | AppSync Events |".to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    markdown.extend(lines.iter().map(Line::markdown));
    markdown.push(String::new());
    markdown.push("| per million idle connection-minutes | API Gateway's connection fee | our keep-alive | of which pings | of which renewals | AppSync Events |".to_owned());
    markdown.push("|---|---|---|---|---|---|".to_owned());
    markdown.push(format!(
        "| heartbeat every {HEARTBEAT_MINUTES} min, renewal every {RENEWAL_MINUTES} min | {} | **{}** | {} | {} | {} (not confirmed) |",
        usd_text(API_GATEWAY_PER_MILLION_CONNECTION_MINUTES),
        usd_text(keep_alive),
        usd_text(pings),
        renewals.map_or("not measured".to_owned(), usd_text),
        usd_text(APPSYNC_EVENTS_PER_MILLION_CONNECTION_MINUTES),
    ));

    report.insert(
        "cost_per_million".into(),
        json!({
            "prices": prices(),
            "operations": lines.iter().map(Line::json).collect::<Vec<_>>(),
            "group_send_share_of_api_gateway": share.map(|s| round(s, 4)),
            "idle_connection_minutes": {
                "api_gateway_connection_fee_usd": API_GATEWAY_PER_MILLION_CONNECTION_MINUTES,
                "keep_alive_usd": round(keep_alive, 4),
                "pings_usd": round(pings, 4),
                "renewals_usd": renewals.map(|r| round(r, 4)),
                "heartbeat_minutes": HEARTBEAT_MINUTES,
                "renewal_minutes": RENEWAL_MINUTES,
                "appsync_events_usd": APPSYNC_EVENTS_PER_MILLION_CONNECTION_MINUTES,
            },
            "markdown": markdown.join("\n"),
        }),
    );
}

/// The prices used, with where and when they were read.
fn prices() -> Value {
    let read = "2026-12-05";
    json!({
        "region": "us-east-1",
        "read": read,
        "api_gateway_per_million_messages": {"usd": API_GATEWAY_PER_MILLION_MESSAGES, "message_unit_bytes": API_GATEWAY_MESSAGE_UNIT_BYTES, "source": "https://aws.amazon.com/api-gateway/pricing/", "confirmed_on_aws_page": false},
        "api_gateway_per_million_connection_minutes": {"usd": API_GATEWAY_PER_MILLION_CONNECTION_MINUTES, "source": "https://aws.amazon.com/api-gateway/pricing/", "confirmed_on_aws_page": false},
        "lambda_per_million_requests": {"usd": LAMBDA_PER_MILLION_REQUESTS, "source": "https://aws.amazon.com/lambda/pricing/", "confirmed_on_aws_page": false},
        "lambda_arm64_per_gb_second": {"usd": LAMBDA_ARM64_PER_GB_SECOND, "memory_gb": LAMBDA_MEMORY_GB, "source": "https://aws.amazon.com/lambda/pricing/", "confirmed_on_aws_page": false},
        "dynamodb_on_demand_per_million_wru": {"usd": DYNAMODB_PER_MILLION_WRU, "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "confirmed_on_aws_page": false},
        "dynamodb_on_demand_per_million_rru": {"usd": DYNAMODB_PER_MILLION_RRU, "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/", "confirmed_on_aws_page": false},
        "appsync_events_per_million_operations": {"usd": APPSYNC_EVENTS_PER_MILLION_OPERATIONS, "source": "AWS Price List, AWSAppSync offer (\"$1 per million Event API operations\"); https://aws.amazon.com/appsync/pricing/", "confirmed_on_aws_page": false},
        "appsync_events_per_million_connection_minutes": {"usd": APPSYNC_EVENTS_PER_MILLION_CONNECTION_MINUTES, "source": "https://aws.amazon.com/appsync/pricing/ (third-party quotations only)", "confirmed_on_aws_page": false},
    })
}
