//! The server API: the Gateway's calls as JSON, for backends in any language — what
//! GatewayWorker's `GatewayClient` is to a PHP web backend. A request carries one or more calls;
//! the answer carries each call's result, in order:
//!
//! ```text
//! {"calls": [{"call": "send", "to": {"uid": "alice"}, "data": {"type": "notice"}},
//!            {"call": "presence", "group": "room-1"}]}
//! → {"results": [{"delivered": 1, "gone": 0},
//!                {"group": "room-1", "connections": 2, "uids": ["alice", "bob"]}]}
//! ```
//!
//! Two doors, one format: Lambda's Invoke API (authorised by IAM, for backends on AWS), and a
//! function URL whose requests are signed with HMAC-SHA256 over the body and a timestamp
//! ([`signature`]), for backends anywhere. `gateway-client` runs the same [`Call`]s.
//!
//! A request that is not of this shape — an unknown call or field, a target with two kinds, an
//! invalid uid, group or connection id, more than [`MAX_CALLS`] calls — is refused whole and
//! changes nothing. A call that fails while it runs (the store, a push) is answered
//! `{"error": {"code": …, "message": …}}` in its place, and the calls after it still run.

pub mod call;
pub mod signature;

use serde::Deserialize;
use serde_json::{json, Value};
use thiserror::Error;

use crate::gateway::Gateway;
use crate::push::Push;
use crate::store::Store;

pub use call::Call;

/// The most calls one request may carry: each may fan out, and the request runs them in turn.
pub const MAX_CALLS: usize = 25;

/// A request: its calls, run in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Any text unique to this request (a random one): two requests with the same calls signed in
    /// the same second would otherwise carry the same signature, and the second be refused as a
    /// replay of the first. Not read otherwise.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The calls.
    pub calls: Vec<Call>,
}

/// Why a request was refused whole (nothing ran).
#[derive(Debug, Error)]
pub enum Refusal {
    /// Not a request of this API's shape.
    #[error("not a request of the server API: {0} (expected {{\"calls\": [{{\"call\": …}}, …]}})")]
    Malformed(String),
    /// No calls, or too many.
    #[error("a request carries 1 to {MAX_CALLS} calls, not {0}")]
    Count(usize),
    /// A call names something no connection, uid or group can be called.
    #[error("call {index} ({call}): {problem}")]
    Invalid {
        /// The call's place in the request, from 0.
        index: usize,
        /// The call's name.
        call: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl Refusal {
    /// The answer's body: `{"error": {"code": "bad_request", "message": …}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"code": "bad_request", "message": self.to_string()}})
    }
}

/// Reads and checks a request's body; nothing runs until every call is known good.
pub fn parse(body: &[u8]) -> Result<Request, Refusal> {
    let request: Request =
        serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    if request.calls.is_empty() || request.calls.len() > MAX_CALLS {
        return Err(Refusal::Count(request.calls.len()));
    }
    for (index, call) in request.calls.iter().enumerate() {
        call.check().map_err(|problem| Refusal::Invalid {
            index,
            call: call.name(),
            problem,
        })?;
    }
    Ok(request)
}

/// Runs every call of `request` in turn: `{"results": [...]}`, one result (or error) per call.
pub async fn run<S: Store, P: Push>(gateway: &Gateway<S, P>, request: Request) -> Value {
    let mut results = Vec::with_capacity(request.calls.len());
    for call in request.calls {
        let name = call.name();
        results.push(match Box::pin(call.run(gateway)).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(call = name, error = %error, "a server API call failed");
                json!({"error": {"code": "internal", "message": error.to_string()}})
            }
        });
    }
    json!({ "results": results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_its_calls_each_checked_before_any_runs() {
        let request = parse(
            br#"{"calls":[{"call":"send","to":{"uid":"alice"},"data":"hi"},{"call":"presence"}]}"#,
        )
        .expect("a good request");
        assert_eq!(request.calls.len(), 2);
        for (body, says) in [
            (&br#"{"calls":[]}"#[..], "1 to 25 calls"),
            (br#"{"calls":[{"call":"dance"}]}"#, "unknown variant"),
            (br#"{"calls":[{"call":"presence","grup":"g"}]}"#, "unknown field"),
            (br#"{"calls":[{"call":"send","to":{"uid":"a","group":"g"},"data":1}]}"#, "not a request"),
            (br#"{"calls":[{"call":"presence"},{"call":"join","client":"c=","group":"no spaces"}]}"#, "call 1 (join)"),
            (br#"[1]"#, "not a request"),
        ] {
            let refusal = parse(body).expect_err(std::str::from_utf8(body).unwrap_or("?"));
            assert!(refusal.to_string().contains(says), "{refusal}");
            assert_eq!(refusal.body()["error"]["code"], "bad_request");
        }
    }
}
