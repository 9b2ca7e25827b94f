//! The local SQS: the moto server the local Secrets Manager runs on (moto serves every service
//! on one port), spoken to in SQS's JSON protocol.

use std::time::{Duration, Instant};

use local_gateway::sqs::Sqs;
use serde_json::{json, Value};

use crate::secrets;

/// The server's endpoint, started on first use.
pub fn endpoint() -> &'static str {
    secrets::endpoint()
}

/// One SQS call; its answer, or the error's text.
pub async fn call(action: &str, body: Value) -> Result<Value, String> {
    Sqs::new(endpoint()).call(action, body).await
}

/// The fan-out queue and its dead-letter queue, as the template makes them.
#[derive(Clone, Debug)]
pub struct FanOutQueues {
    pub queue_url: String,
    pub dead_letter_url: String,
}

/// How a test's fan-out queue is made.
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// Seconds a received job stays invisible (AWS: at least the function's timeout).
    pub visibility_timeout: u32,
    /// Receives before a job moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// The event source mapping's MaximumConcurrency.
    pub max_concurrency: usize,
    /// The fan-out function's timeout, in seconds (at most the visibility timeout).
    pub function_timeout: u32,
}

/// Makes the queues `{name}` and `{name}-dlq`, the first redriven to the second.
pub async fn create(name: &str, settings: QueueSettings) -> FanOutQueues {
    let dead_letter_url = call("CreateQueue", json!({"QueueName": format!("{name}-dlq")}))
        .await
        .expect("create the dead-letter queue")["QueueUrl"]
        .as_str()
        .expect("a queue URL")
        .to_owned();
    let arn = call(
        "GetQueueAttributes",
        json!({"QueueUrl": dead_letter_url, "AttributeNames": ["QueueArn"]}),
    )
    .await
    .expect("the dead-letter queue's ARN")["Attributes"]["QueueArn"]
        .as_str()
        .expect("an ARN")
        .to_owned();
    let redrive =
        json!({"deadLetterTargetArn": arn, "maxReceiveCount": settings.max_receive_count});
    let queue_url = call(
        "CreateQueue",
        json!({
            "QueueName": name,
            "Attributes": {
                "VisibilityTimeout": settings.visibility_timeout.to_string(),
                "RedrivePolicy": redrive.to_string(),
            },
        }),
    )
    .await
    .expect("create the fan-out queue")["QueueUrl"]
        .as_str()
        .expect("a queue URL")
        .to_owned();
    FanOutQueues {
        queue_url,
        dead_letter_url,
    }
}

/// Sends `body` to the queue at `url`.
pub async fn send(url: &str, body: &str) {
    call("SendMessage", json!({"QueueUrl": url, "MessageBody": body}))
        .await
        .expect("send to the queue");
}

/// Waits up to `patience` for a message on the queue at `url`; its body.
pub async fn await_message(url: &str, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        let answer = call(
            "ReceiveMessage",
            json!({"QueueUrl": url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 1}),
        )
        .await
        .expect("receive from the queue");
        if let Some(body) = answer["Messages"][0]["Body"].as_str() {
            return body.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no message reached {url} within {patience:?}"
        );
    }
}
