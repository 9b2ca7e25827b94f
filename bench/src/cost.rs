//! What an operation cost in DynamoDB, from the requests the counting relay logged.

use std::time::{Duration, Instant};

use support::fault_proxy::{round_trips, Request};

use crate::ms;

/// What one operation cost in DynamoDB.
#[derive(Debug)]
pub struct Cost {
    /// Sequential round trips before the client heard back (for `$disconnect`, in all).
    pub critical_round_trips: usize,
    pub requests_before_outcome: usize,
    pub requests: usize,
    /// Writes of items under 1 KB: one write unit each.
    pub write_units: usize,
    /// Strongly consistent reads, as the store makes them: 1 unit per GetItem, 1 per 4 KB a
    /// Query returns (counted on the JSON answer, which is larger than the stored items).
    pub read_units: f64,
    /// The time DynamoDB took to answer the requests on the critical path, summed.
    pub critical_dynamodb: Duration,
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
        Cost {
            critical_round_trips: round_trips(&before),
            requests_before_outcome: before.len(),
            requests: requests.len(),
            // A transaction's writes cost twice a plain write's.
            write_units: requests
                .iter()
                .map(|r| match r.operation.as_str() {
                    "TransactWriteItems" => 2 * r.writes,
                    _ => r.writes,
                })
                .sum(),
            read_units: requests
                .iter()
                .map(|r| match r.operation.as_str() {
                    "GetItem" => 1.0,
                    "Query" => (r.answer_bytes as f64 / 4096.0).ceil().max(1.0),
                    _ => 0.0,
                })
                .sum(),
            critical_dynamodb: before
                .iter()
                .filter_map(|r| Some(r.answered? - r.started))
                .sum(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "critical_round_trips": self.critical_round_trips,
            "requests_before_outcome": self.requests_before_outcome,
            "requests": self.requests,
            "write_units": self.write_units,
            "read_units": self.read_units,
            "critical_dynamodb_ms": ms(self.critical_dynamodb),
        })
    }

    pub fn row(&self) -> String {
        format!(
            "{} round trip(s) before the client hears back ({} request(s), {} ms in DynamoDB); {} request(s) in all; {} WCU, {} RCU",
            self.critical_round_trips,
            self.requests_before_outcome,
            ms(self.critical_dynamodb),
            self.requests,
            self.write_units,
            self.read_units
        )
    }
}
