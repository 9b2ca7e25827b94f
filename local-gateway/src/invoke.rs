//! Invoking functions through the Lambda Invoke API
//! (`POST {base}/2015-03-31/functions/{name}/invocations`), which `cargo lambda watch` and
//! `sam local start-lambda` both serve.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InvokeError {
    #[error(
        "could not reach the invoke endpoint {url}: {message} (is `cargo lambda watch` running?)"
    )]
    Unreachable { url: String, message: String },
    #[error("function {function} failed: {message}")]
    Function { function: String, message: String },
}

/// A client of one invoke endpoint.
#[derive(Clone, Debug)]
pub struct Invoker {
    base: String,
    http: reqwest::Client,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Invoker {
    pub fn new(base: &str, timeout: Duration, max_in_flight: usize) -> Invoker {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Invoker {
            base: base.trim_end_matches('/').to_owned(),
            http,
            in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
        }
    }

    /// Invokes `function` with `event`; the function's response (for WebSocket routes, an object
    /// with `statusCode`).
    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Value, InvokeError> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        // The semaphore is never closed, so acquiring can only wait.
        let _permit = self.in_flight.acquire().await;
        let started = Instant::now();
        let response = self.http.post(&url).json(event).send().await.map_err(|e| {
            InvokeError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            }
        })?;
        let status = response.status();
        let function_error = response.headers().get("x-amz-function-error").is_some();
        let body = response.text().await.unwrap_or_default();
        let took = started.elapsed();
        // A route's event names its route; an event source's batch, its source (`aws:sqs`).
        let route = event["requestContext"]["routeKey"]
            .as_str()
            .or_else(|| event["Records"][0]["eventSource"].as_str())
            .unwrap_or("?");
        let connection = event["requestContext"]["connectionId"]
            .as_str()
            .unwrap_or("?");
        if !status.is_success() || function_error {
            tracing::warn!(
                function,
                route,
                connection,
                status = status.as_u16(),
                duration_ms = took.as_secs_f64() * 1e3,
                "invocation failed"
            );
            return Err(InvokeError::Function {
                function: function.to_owned(),
                message: body,
            });
        }
        tracing::info!(
            function,
            route,
            connection,
            duration_ms = took.as_secs_f64() * 1e3,
            "invoked"
        );
        Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

/// The status a WebSocket route's response asks for (200 when it names none).
pub fn status_of(response: &Value) -> u16 {
    response
        .get("statusCode")
        .and_then(Value::as_u64)
        .map_or(200, |s| s as u16)
}
