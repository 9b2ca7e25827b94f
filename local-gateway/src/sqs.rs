//! SQS's JSON protocol, for the local stack's SQS-compatible server (moto): the event source's
//! receives and deletes, and the tests' queues.

use std::time::Duration;

use serde_json::Value;

/// Unsigned: the local server checks no signature, and needs only the service named in the
/// credential scope to route the request.
#[derive(Clone, Debug)]
pub struct Sqs {
    endpoint: String,
    http: reqwest::Client,
}

impl Sqs {
    /// A client of the server at `endpoint`.
    pub fn new(endpoint: &str) -> Sqs {
        Sqs {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// One call (`action` as the `X-Amz-Target` names it): its answer, or the error's text.
    pub async fn call(&self, action: &str, body: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{action}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{action}: {e}"))
    }
}
