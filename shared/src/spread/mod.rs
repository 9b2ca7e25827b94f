//! Sends too large for one invocation, spread over parallel workers through SQS.
//!
//! A broadcast or a group send with more than `SPREAD_ABOVE` recipients is not pushed by the
//! invocation that makes it. That invocation reads the recipients (reading is a hundred times
//! faster than pushing: a Query page holds thousands of members), drops duplicates and
//! exclusions, and queues them as jobs of `FAN_OUT_JOB_SIZE` connection ids with the frame, one
//! SQS message each. Lambda's event source mapping hands each job to the fan-out function
//! ([`crate::lambda::fan_out`]), which pushes it ([`worker`]). The sender's ack says how many
//! recipients were queued (`"queued":N`), not how many were reached: it never waits for them.
//!
//! Why SQS rather than asynchronous invocation (docs/fan-out.md has the whole comparison): a job
//! whose worker dies comes back after the queue's visibility timeout (seconds, ours to choose)
//! rather than Lambda's fixed one-to-two-minute retry delays; a job that keeps failing lands in
//! a dead-letter queue after `maxReceiveCount` receives, with its body, to read or redrive; and
//! the event source mapping's `MaximumConcurrency` caps the workers, and so the push rate, to the
//! account's `@connections` quota.
//!
//! Delivery is at least once. A job runs once however often SQS delivers it (a claim and a done
//! mark in the table: [`crate::store::Store::claim_job`]), but a job whose worker died part-way
//! is pushed again whole, so its first recipients may get the frame twice (protocol: "Large
//! sends"). Jobs run in no order: two spread sends may reach one client in either order. A job
//! older than `FAN_OUT_MAX_AGE_SECONDS` is dropped unpushed.

pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::SdkConfig;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::sqs::{Sqs, SqsError};
use crate::config::Config;
use crate::error::Error;
use crate::store::now_millis;

/// One slice of a spread send: what a worker pushes, and to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique per job: what its claim and done mark are keyed by.
    pub id: String,
    /// The `@connections` endpoint to push through.
    pub endpoint: String,
    /// The frame, exactly as every recipient gets it.
    pub frame: String,
    /// The connections to push it to.
    pub to: Vec<String>,
    /// Epoch milliseconds after which the job is given up (`FAN_OUT_MAX_AGE_SECONDS` after the
    /// send).
    pub deadline: i64,
}

/// The largest job message: SQS takes 1 MiB (1,048,576 bytes); the rest is headroom for the
/// request's own JSON.
const MAX_JOB_BYTES: usize = 1_000_000;

/// `SendMessage` requests in flight at once while a send's jobs are queued.
const QUEUE_CONCURRENCY: usize = 16;

/// Queues spread sends' jobs.
#[derive(Debug)]
pub struct Spreader {
    queue: Sqs,
    job_size: usize,
    max_age_ms: i64,
}

impl Spreader {
    /// The spreader `config` asks for (`FAN_OUT_QUEUE_URL`), sending with `sdk`'s credentials;
    /// `None` without a queue.
    pub fn from_config(config: &Config, sdk: &SdkConfig) -> Option<Spreader> {
        let queue_url = config.fan_out_queue_url.as_deref()?;
        Some(Spreader {
            queue: Sqs::from_sdk(sdk, config.sqs_endpoint.as_deref(), queue_url),
            job_size: config.job_size.max(1),
            max_age_ms: config.job_max_age.as_millis() as i64,
        })
    }

    /// Queues `frame` for `to` as jobs: how many jobs. A failure to queue one does not stop the
    /// others (their recipients still get the frame); it is returned once all were tried.
    pub async fn enqueue(
        &self,
        endpoint: &str,
        frame: &str,
        to: Vec<String>,
    ) -> Result<usize, Error> {
        let deadline = now_millis() + self.max_age_ms;
        let jobs = slices(to, frame.len(), self.job_size)
            .into_iter()
            .map(|to| Job {
                id: job_id(),
                endpoint: endpoint.to_owned(),
                frame: frame.to_owned(),
                to,
                deadline,
            })
            .collect::<Vec<_>>();
        let count = jobs.len();
        let results = stream::iter(jobs)
            .map(|job| async move {
                let body = serde_json::to_string(&job).map_err(|e| SqsError::Unavailable {
                    queue: self.queue.queue_url().to_owned(),
                    attempts: 0,
                    last: e.to_string(),
                })?;
                self.queue.send(&body).await
            })
            .buffer_unordered(QUEUE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let queued = results.iter().filter(|r| r.is_ok()).count();
        match results.into_iter().find_map(Result::err) {
            None => Ok(count),
            Some(source) => Err(Error::Queue {
                queued,
                jobs: count,
                source,
            }),
        }
    }
}

/// `to` cut into slices of at most `size` ids, each small enough to travel with a frame of
/// `frame_bytes` in one SQS message (a frame's JSON escaping at most doubles it, but for control
/// characters, which a text frame rarely holds).
fn slices(to: Vec<String>, frame_bytes: usize, size: usize) -> Vec<Vec<String>> {
    let budget = MAX_JOB_BYTES.saturating_sub(2 * frame_bytes + 512);
    let mut slices = Vec::new();
    let mut slice: Vec<String> = Vec::new();
    let mut bytes = 0;
    for id in to {
        let cost = id.len() + 3;
        if !slice.is_empty() && (slice.len() == size || bytes + cost > budget) {
            slices.push(std::mem::take(&mut slice));
            bytes = 0;
        }
        bytes += cost;
        slice.push(id);
    }
    if !slice.is_empty() {
        slices.push(slice);
    }
    slices
}

/// A job id unique across environments: the time, this process, and a counter.
fn job_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("conn{i:012}=")).collect()
    }

    #[test]
    fn recipients_are_cut_into_slices_of_the_job_size() {
        let slices = slices(ids(2_500), 100, 1_000);
        assert_eq!(
            slices.iter().map(Vec::len).collect::<Vec<_>>(),
            [1_000, 1_000, 500]
        );
        assert_eq!(slices.concat(), ids(2_500));
    }

    #[test]
    fn a_large_frame_makes_slices_smaller_so_that_each_fits_one_message() {
        let frame_bytes = 128 * 1024;
        let slices = slices(ids(50_000), frame_bytes, 50_000);
        assert!(slices.len() > 1);
        for slice in &slices {
            let bytes: usize = slice.iter().map(|id| id.len() + 3).sum();
            assert!(bytes + 2 * frame_bytes + 512 <= MAX_JOB_BYTES);
        }
        assert_eq!(slices.concat(), ids(50_000));
    }

    #[test]
    fn no_recipients_make_no_jobs() {
        assert!(slices(Vec::new(), 10, 1_000).is_empty());
    }

    #[test]
    fn job_ids_differ() {
        assert_ne!(job_id(), job_id());
    }
}
