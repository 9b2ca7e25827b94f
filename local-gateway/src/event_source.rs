//! Lambda's SQS event source mapping, for the fan-out queue: pollers receive batches from an
//! SQS-compatible server (moto) and invoke the function with them through the same Invoke API
//! the routes use, as Lambda's own pollers do.
//!
//! What it keeps of AWS's behaviour:
//! - a batch's messages stay invisible for the queue's visibility timeout while the function
//!   runs; a message the function does not finish comes back after it;
//! - the function's answer names the messages that failed (`batchItemFailures`, with
//!   `ReportBatchItemFailures`): the others are deleted; a failed invocation (an error, a
//!   crash) deletes none;
//! - the queue's redrive policy (`maxReceiveCount`) moves a message received that many times to
//!   the dead-letter queue — moto applies it on receive, as SQS does;
//! - concurrency starts at 5 and grows by 5 a second (300 a minute) while batches keep coming,
//!   up to `MaximumConcurrency`, then falls back to 5 once the queue has been empty for a minute.
//!
//! - an invocation not answered within the function's timeout has failed; a mapping whose
//!   queue's visibility timeout is shorter than the function's timeout does not start;
//! - an answer that is not an object, or a failure naming no message of the batch, fails the
//!   whole batch.
//!
//! What it does not: Lambda polls with 20 s long polls from many hosts; these poll 1 s at a
//! time, which only shortens how long a new message waits when the queue was idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::invoke::Invoker;
use crate::sqs::Sqs;

/// How a batch reaches the function: its answer, or why it failed (an error, a crash, a
/// timeout). The local gateway invokes through the Invoke API; the benchmark through its own
/// runtime API.
pub type Invoke =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync>;

/// [`Invoke`] through `invoker`, for the function `function`.
pub fn through(invoker: Invoker, function: String) -> Invoke {
    Arc::new(move |event| {
        let (invoker, function) = (invoker.clone(), function.clone());
        Box::pin(async move {
            invoker
                .invoke(&function, &event)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// One mapping: a queue, and the function its batches go to.
#[derive(Clone, Debug)]
pub struct EventSource {
    /// Where the SQS-compatible server listens.
    pub sqs_endpoint: String,
    /// The queue's URL.
    pub queue_url: String,
    /// The function batches are handed to.
    pub function: String,
    /// Messages per batch (the mapping's `BatchSize`).
    pub batch_size: usize,
    /// Invocations at once at most (the mapping's `ScalingConfig.MaximumConcurrency`).
    pub max_concurrency: usize,
    /// The function's timeout: an invocation not answered by then has failed (Lambda stops
    /// it), and the queue's visibility timeout must be at least this long.
    pub function_timeout: Duration,
}

/// Pollers at first, and added each second while batches keep coming.
const SCALE_STEP: usize = 5;

/// Starts the mapping's pollers, handing batches to `invoke`; they run until the process ends.
pub fn spawn(source: EventSource, invoke: Invoke) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let source = Arc::new(source);
        let sqs = Sqs::new(&source.sqs_endpoint);
        if let Err(e) = check_visibility(&source, &sqs).await {
            tracing::error!(queue = %source.queue_url, function = %source.function, error = %e, "the event source does not start, as Lambda refuses to create the mapping");
            return;
        }
        let active = Arc::new(AtomicUsize::new(SCALE_STEP.min(source.max_concurrency)));
        let busy = Arc::new(AtomicUsize::new(0));
        for index in 0..source.max_concurrency.max(1) {
            let (source, sqs, invoke) = (source.clone(), sqs.clone(), invoke.clone());
            let (active, busy) = (active.clone(), busy.clone());
            tokio::spawn(async move {
                loop {
                    if index >= active.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    if poll_once(&source, &sqs, &invoke).await {
                        busy.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Scaling: +5 a second while batches come, back to 5 after a minute without any.
        let mut idle_since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now_active = active.load(Ordering::Relaxed);
            if busy.swap(0, Ordering::Relaxed) > 0 {
                idle_since = Instant::now();
                let next = (now_active + SCALE_STEP).min(source.max_concurrency);
                if next != now_active {
                    tracing::info!(function = %source.function, concurrency = next, "event source scaling up");
                    active.store(next, Ordering::Relaxed);
                }
            } else if idle_since.elapsed() > Duration::from_secs(60) && now_active > SCALE_STEP {
                active.store(SCALE_STEP, Ordering::Relaxed);
            }
        }
    })
}

/// One receive, and the invocation of its batch; whether there was one.
async fn poll_once(source: &EventSource, sqs: &Sqs, invoke: &Invoke) -> bool {
    let received = sqs
        .call(
            "ReceiveMessage",
            json!({
                "QueueUrl": source.queue_url,
                "MaxNumberOfMessages": source.batch_size.clamp(1, 10),
                "WaitTimeSeconds": 1,
                "MessageSystemAttributeNames": ["All"],
            }),
        )
        .await;
    let messages = match received {
        Ok(answer) => answer["Messages"].as_array().cloned().unwrap_or_default(),
        Err(e) => {
            tracing::warn!(queue = %source.queue_url, error = %e, "event source could not receive");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return false;
        }
    };
    if messages.is_empty() {
        return false;
    }
    let event = sqs_event(&source.queue_url, &messages);
    let handles: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m["MessageId"].as_str().unwrap_or_default().to_owned(),
                m["ReceiptHandle"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let ids: Vec<&str> = handles.iter().map(|(id, _)| id.as_str()).collect();
    let answer = match tokio::time::timeout(source.function_timeout, invoke(event)).await {
        Ok(Ok(answer)) => failures(&answer, &ids),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "no answer within the function's timeout ({:?})",
            source.function_timeout
        )),
    };
    let failed = match answer {
        Ok(failed) => failed,
        Err(e) => {
            tracing::warn!(function = %source.function, messages = handles.len(), error = %e, "event source batch failed: its messages come back after the visibility timeout");
            return true;
        }
    };
    let done: Vec<Value> = handles
        .iter()
        .filter(|(id, _)| !failed.contains(id))
        .enumerate()
        .map(|(n, (_, handle))| json!({"Id": n.to_string(), "ReceiptHandle": handle}))
        .collect();
    if !failed.is_empty() {
        tracing::warn!(function = %source.function, failed = failed.len(), "batch items failed: they come back after the visibility timeout");
    }
    if !done.is_empty() {
        let deleted = sqs
            .call(
                "DeleteMessageBatch",
                json!({"QueueUrl": source.queue_url, "Entries": done}),
            )
            .await;
        let refused = match &deleted {
            Ok(answer) => answer["Failed"].as_array().map_or(0, Vec::len),
            Err(_) => done.len(),
        };
        if refused > 0 {
            tracing::warn!(queue = %source.queue_url, refused, error = ?deleted.err(), "event source could not delete finished messages: they will be delivered again");
        }
    }
    true
}

/// The ids of the messages a function's answer says failed, read as Lambda reads it with
/// `ReportBatchItemFailures`: no answer, an empty one or an empty list is complete success; an
/// answer that is not an object, or a failure without a valid `itemIdentifier` of the batch,
/// fails the whole batch.
fn failures(answer: &Value, batch: &[&str]) -> Result<Vec<String>, String> {
    let list = match answer {
        Value::Null => return Ok(Vec::new()),
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
        },
        other => return Err(format!("the answer is not an object: {other}")),
    };
    list.iter()
        .map(|failure| match failure["itemIdentifier"].as_str() {
            Some(id) if batch.contains(&id) => Ok(id.to_owned()),
            _ => Err(format!(
                "a failure names no message of the batch: {failure}"
            )),
        })
        .collect()
}

/// Lambda refuses a mapping whose queue's visibility timeout is shorter than the function's
/// timeout: a message would come back while its first invocation still runs.
async fn check_visibility(source: &EventSource, sqs: &Sqs) -> Result<(), String> {
    let answer = sqs
        .call(
            "GetQueueAttributes",
            json!({"QueueUrl": source.queue_url, "AttributeNames": ["VisibilityTimeout"]}),
        )
        .await?;
    let visibility = answer["Attributes"]["VisibilityTimeout"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| format!("the queue has no VisibilityTimeout: {answer}"))?;
    if Duration::from_secs(visibility) < source.function_timeout {
        return Err(format!(
            "the queue's visibility timeout ({visibility} s) is shorter than the function's timeout ({:?})",
            source.function_timeout
        ));
    }
    Ok(())
}

/// The event Lambda hands a function for a batch of `messages` from `queue_url`.
fn sqs_event(queue_url: &str, messages: &[Value]) -> Value {
    let name = queue_url.rsplit('/').next().unwrap_or_default();
    let account = queue_url.rsplit('/').nth(1).unwrap_or("123456789012");
    let arn = format!("arn:aws:sqs:us-east-1:{account}:{name}");
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_as_lambda_reads_batch_item_failures() {
        let batch = ["m1", "m2"];
        for success in [
            json!(null),
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
        ] {
            assert_eq!(failures(&success, &batch), Ok(Vec::new()), "{success}");
        }
        assert_eq!(
            failures(
                &json!({"batchItemFailures": [{"itemIdentifier": "m2"}]}),
                &batch
            ),
            Ok(vec!["m2".to_owned()])
        );
        for whole_batch in [
            json!("text"),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"id": "m1"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "m9"}]}),
        ] {
            assert!(failures(&whole_batch, &batch).is_err(), "{whole_batch}");
        }
    }

    #[test]
    fn a_batch_is_handed_over_as_lambdas_sqs_event() {
        let messages = vec![json!({
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": "{}",
            "MD5OfBody": "x",
            "Attributes": {"ApproximateReceiveCount": "2"},
        })];
        let event = sqs_event("http://127.0.0.1:5000/123456789012/fan-out", &messages);
        let record = &event["Records"][0];
        assert_eq!(record["messageId"], "m1");
        assert_eq!(record["body"], "{}");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(
            record["eventSourceARN"],
            "arn:aws:sqs:us-east-1:123456789012:fan-out"
        );
    }
}
