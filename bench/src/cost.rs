//! What an operation cost in DynamoDB, from the requests the counting relay logged.
//!
//! The relay asks DynamoDB for each request's consumed capacity (`ReturnConsumedCapacity`), so the
//! units here are the ones DynamoDB reports — on dynoxide, computed by AWS's rules from the items'
//! sizes. A write refused by its condition is answered without them and billed all the same: the
//! relay counts it by AWS's rule (`support::fault_proxy::refused_write_units`). Only a request the
//! server reported nothing for (moto does not for every operation) is estimated, as this bench did
//! before: 1 write unit per item written (2 in a transaction), 1 read unit per GetItem, and a
//! Query's by its JSON answer's size.

use std::time::{Duration, Instant};

use support::fault_proxy::{round_trips, Request};

use crate::harness::ms;

/// What one operation cost in DynamoDB.
#[derive(Clone, Debug, Default)]
pub struct Cost {
    /// Sequential round trips before the client heard back (for `$disconnect`, in all).
    pub critical_round_trips: usize,
    pub requests_before_outcome: usize,
    pub requests: usize,
    /// The requests DynamoDB carried out, by operation, in the order each was first seen.
    pub by_operation: Vec<(String, usize)>,
    /// The writes DynamoDB refused for their condition (and cancelled transactions), by
    /// operation: billed all the same.
    pub refused: Vec<(String, usize)>,
    /// The requests that failed for another reason (not billed), by operation and error.
    pub failed: Vec<(String, usize)>,
    /// Write request units, refused writes included.
    pub write_units: f64,
    /// Read request units.
    pub read_units: f64,
    /// Requests whose units are estimated: the server reported none.
    pub estimated: usize,
    /// The time DynamoDB took to answer the requests on the critical path, summed.
    pub critical_dynamodb: Duration,
}

/// Whether `operation` writes (its units are write units).
fn writes(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
    )
}

/// Adds one to `key`'s count in `counts`, kept in the order keys are first seen.
fn tally(counts: &mut Vec<(String, usize)>, key: String) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

/// `UpdateItem×2, Query×1` (`none` for none).
fn listed(counts: &[(String, usize)]) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(what, n)| format!("{what}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counted(counts: &[(String, usize)]) -> serde_json::Value {
    counts
        .iter()
        .map(|(what, n)| (what.clone(), serde_json::json!(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Rounds to 2 decimals, for the report.
fn hundredths(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Cost {
    /// The cost of `requests`, of which those begun before `outcome` were on the critical path.
    pub fn of(requests: &[Request], outcome: Option<Instant>) -> Cost {
        // A DescribeTable is an environment's init warming its connection, not the operation's.
        let requests: Vec<Request> = requests
            .iter()
            .filter(|r| r.operation != "DescribeTable")
            .cloned()
            .collect();
        let requests = requests.as_slice();
        let before: Vec<Request> = match outcome {
            Some(at) => requests
                .iter()
                .filter(|r| r.started < at)
                .cloned()
                .collect(),
            None => requests.to_vec(),
        };
        let mut cost = Cost {
            critical_round_trips: round_trips(&before),
            requests_before_outcome: before.len(),
            requests: requests.len(),
            critical_dynamodb: before
                .iter()
                .filter_map(|r| Some(r.answered? - r.started))
                .sum(),
            ..Cost::default()
        };
        for request in requests {
            let units = match (request.capacity_units, &request.error) {
                (Some(units), _) => units,
                // Failed for another reason than a condition: not carried out, not billed.
                (None, Some(_)) => 0.0,
                (None, None) => {
                    cost.estimated += 1;
                    estimate(request)
                }
            };
            if writes(&request.operation) {
                cost.write_units += units;
            } else {
                cost.read_units += units;
            }
            let operation = request.operation.clone();
            match &request.error {
                None => tally(&mut cost.by_operation, operation),
                Some(_) if request.refused() => tally(&mut cost.refused, operation),
                Some(error) => tally(&mut cost.failed, format!("{operation} ({error})")),
            }
        }
        cost
    }

    /// The costs of two operations together (`$connect` and `$disconnect`); the round trips are
    /// the first's.
    pub fn and(&self, other: &Cost) -> Cost {
        let mut sum = self.clone();
        sum.requests += other.requests;
        for (what, n) in &other.by_operation {
            for _ in 0..*n {
                tally(&mut sum.by_operation, what.clone());
            }
        }
        for (what, n) in &other.refused {
            for _ in 0..*n {
                tally(&mut sum.refused, what.clone());
            }
        }
        for (what, n) in &other.failed {
            for _ in 0..*n {
                tally(&mut sum.failed, what.clone());
            }
        }
        sum.write_units += other.write_units;
        sum.read_units += other.read_units;
        sum.estimated += other.estimated;
        sum
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "critical_round_trips": self.critical_round_trips,
            "requests_before_outcome": self.requests_before_outcome,
            "requests": self.requests,
            "by_operation": counted(&self.by_operation),
            "refused_by_condition": counted(&self.refused),
            "failed": counted(&self.failed),
            "write_units": hundredths(self.write_units),
            "read_units": hundredths(self.read_units),
            "estimated_requests": self.estimated,
            "critical_dynamodb_ms": ms(self.critical_dynamodb),
        })
    }

    /// The requests in all, by operation: `UpdateItem×2, Query×1; refused by their condition
    /// (billed): UpdateItem×1`.
    pub fn operations(&self) -> String {
        let mut text = listed(&self.by_operation);
        if !self.refused.is_empty() {
            text += &format!(
                "; refused by their condition (billed): {}",
                listed(&self.refused)
            );
        }
        if !self.failed.is_empty() {
            text += &format!("; failed (not billed): {}", listed(&self.failed));
        }
        text
    }

    pub fn row(&self) -> String {
        let estimated = match self.estimated {
            0 => String::new(),
            n => format!(" ({n} request(s) estimated: the server reported no ConsumedCapacity)"),
        };
        format!(
            "{} round trip(s) before the client hears back ({} request(s), {} ms in DynamoDB); {} request(s) in all: {}; {} WRU, {} RRU{estimated}",
            self.critical_round_trips,
            self.requests_before_outcome,
            ms(self.critical_dynamodb),
            self.requests,
            self.operations(),
            hundredths(self.write_units),
            hundredths(self.read_units),
        )
    }
}

/// A request's units when the server reported none: 1 write unit per item written (twice in a
/// transaction), 1 read unit per GetItem, a Query's by its answer's size (which overstates it:
/// items are smaller stored than in JSON).
fn estimate(request: &Request) -> f64 {
    match request.operation.as_str() {
        "TransactWriteItems" => 2.0 * request.writes as f64,
        "GetItem" => 1.0,
        "Query" => (request.answer_bytes as f64 / 4096.0).ceil().max(1.0),
        _ => request.writes as f64,
    }
}
