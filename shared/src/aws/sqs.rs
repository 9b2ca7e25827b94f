//! `SendMessage` to one SQS queue, signed by hand over the pooled client ([`super::signed_client`])
//! in SQS's JSON protocol: the only SQS call the service makes (Lambda's event source mapping
//! receives and deletes), not worth the SDK crate's minutes of build.

use std::time::Duration;

use aws_config::SdkConfig;
use bytes::Bytes;
use serde_json::json;
use thiserror::Error;

use crate::aws::signed_client::{Answer, SignedClient, Unsent};
use crate::aws::sigv4::Signer;

/// Why a message could not be queued.
#[derive(Debug, Error)]
pub enum SqsError {
    /// `SQS_ENDPOINT` is not a URL.
    #[error("{0:?} is not a URL: set SQS_ENDPOINT to http(s)://host[:port], or leave it unset to call AWS")]
    BadEndpoint(String),
    /// No credentials to sign with.
    #[error("no AWS credentials to send to the fan-out queue with: {0}")]
    NoCredentials(String),
    /// SQS refused in a way a retry would not mend.
    #[error("the fan-out queue {queue} refused the job (HTTP {status}, {code}): on AccessDenied, the function's role needs sqs:SendMessage on it (template.yaml gives it); on QueueDoesNotExist, check FAN_OUT_QUEUE_URL")]
    Refused {
        /// The queue's URL.
        queue: String,
        /// The HTTP status.
        status: u16,
        /// SQS's error type (`__type`, or `x-amzn-errortype`).
        code: String,
    },
    /// Throttled, failed in SQS or unanswered, every attempt.
    #[error("the fan-out queue {queue} took no job in {attempts} attempts (the last: {last})")]
    Unavailable {
        /// The queue's URL.
        queue: String,
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt met.
        last: String,
    },
}

/// A client of one queue.
pub struct Sqs {
    client: SignedClient,
    queue_url: String,
}

impl std::fmt::Debug for Sqs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqs")
            .field("endpoint", &self.client.endpoint())
            .field("queue_url", &self.queue_url)
            .finish_non_exhaustive()
    }
}

/// Attempts per message: a throttled or failed `SendMessage` is tried again twice.
const ATTEMPTS: u32 = 3;

impl Sqs {
    /// Sends to `queue_url` in `sdk`'s region with its credentials, through `endpoint` (a local
    /// SQS) or SQS's regional endpoint.
    pub fn from_sdk(sdk: &SdkConfig, endpoint: Option<&str>, queue_url: &str) -> Self {
        let region = sdk.region().map_or("us-east-1", |r| r.as_ref());
        let endpoint = match endpoint {
            Some(endpoint) => endpoint.to_owned(),
            None if region.starts_with("cn-") => format!("https://sqs.{region}.amazonaws.com.cn"),
            None => format!("https://sqs.{region}.amazonaws.com"),
        };
        Sqs {
            client: SignedClient::new(
                endpoint,
                sdk.credentials_provider(),
                Signer::for_service(region, "sqs"),
                Duration::from_secs(1),
            ),
            queue_url: queue_url.to_owned(),
        }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Queues one message, retried while the failure may pass.
    pub async fn send(&self, body: &str) -> Result<(), SqsError> {
        let (uri, host) = self.client.target("/").map_err(SqsError::BadEndpoint)?;
        let request = json!({ "QueueUrl": self.queue_url, "MessageBody": body });
        let request = Bytes::from(request.to_string());
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "AmazonSQS.SendMessage"),
        ];
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(crate::jitter::pause(attempt + 1)).await;
            }
            let answer = self
                .client
                .attempt(&uri, &host, &headers, &request, Duration::from_secs(2))
                .await;
            match answer {
                Ok(Answer::Status(status, _, _)) if status.is_success() => return Ok(()),
                Ok(Answer::Status(status, code, body))
                    if status == http::StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error()
                        || error_type(code.as_deref(), &body).contains("RequestThrottled") =>
                {
                    last = format!(
                        "HTTP {} {}",
                        status.as_u16(),
                        error_type(code.as_deref(), &body)
                    );
                }
                Ok(Answer::Status(status, code, body)) => {
                    return Err(SqsError::Refused {
                        queue: self.queue_url.clone(),
                        status: status.as_u16(),
                        code: error_type(code.as_deref(), &body),
                    })
                }
                Ok(Answer::Lost(why)) => last = why,
                Err(Unsent::Credentials(why)) => return Err(SqsError::NoCredentials(why)),
                Err(Unsent::Request(why)) => last = why,
            }
        }
        Err(SqsError::Unavailable {
            queue: self.queue_url.clone(),
            attempts: ATTEMPTS,
            last,
        })
    }
}

/// SQS's name for an error: the header, else the JSON body's `__type` (`com.amazonaws.sqs#X`).
fn error_type(header: Option<&str>, body: &[u8]) -> String {
    if let Some(code) = header {
        return code.to_owned();
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["__type"].as_str().map(str::to_owned))
        .map(|t| t.rsplit('#').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::error_type;

    #[test]
    fn an_error_is_named_by_its_header_or_its_bodys_type() {
        assert_eq!(error_type(Some("AccessDenied"), b"{}"), "AccessDenied");
        assert_eq!(
            error_type(
                None,
                br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"x"}"#
            ),
            "QueueDoesNotExist"
        );
        assert_eq!(error_type(None, b"not json"), "");
    }
}
