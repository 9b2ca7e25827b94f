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

use aws_config::SdkConfig;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::aws::sqs::{Sqs, SqsError};
use crate::config::Config;
use crate::error::Error;
use crate::gateway::Recipient;
use crate::store::{now_millis, Members};

/// One slice of a spread send: what a worker pushes, and to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique per job: what its claim and done mark are keyed by.
    pub id: String,
    /// The `@connections` endpoint to push through.
    pub endpoint: String,
    /// The frame, exactly as every recipient gets it.
    pub frame: String,
    /// The sets the send named: a recipient found gone is pruned from the one that named it.
    pub sets: Vec<Set>,
    /// The connections to push it to, each with the index in `sets` of the set that named it.
    pub to: Vec<Recipient>,
    /// Epoch milliseconds after which the job is given up (`FAN_OUT_MAX_AGE_SECONDS` after the
    /// send).
    pub deadline: i64,
}

/// A set of connections, as a job names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Set {
    /// Every connection.
    All,
    /// The connections of a uid.
    Uid(String),
    /// The members of a group.
    Group(String),
}

impl Set {
    fn of(members: Members<'_>) -> Set {
        match members {
            Members::All => Set::All,
            Members::Uid(uid) => Set::Uid(uid.to_owned()),
            Members::Group(group) => Set::Group(group.to_owned()),
        }
    }

    /// The set, as the store reads it.
    pub fn members(&self) -> Members<'_> {
        match self {
            Set::All => Members::All,
            Set::Uid(uid) => Members::Uid(uid),
            Set::Group(group) => Members::Group(group),
        }
    }
}

/// What queuing a spread send came to.
#[derive(Debug)]
pub struct Queued {
    /// Recipients in jobs SQS took.
    pub recipients: usize,
    /// Jobs SQS took.
    pub jobs: usize,
    /// Recipients in jobs SQS would not take (after its retries): they get nothing.
    pub unqueued: usize,
    /// Why, for the first job refused.
    pub error: Option<SqsError>,
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

    /// Queues `frame` for `to` (named by `sets`) as jobs. A job SQS will not take does not stop
    /// the others: their recipients still get the frame.
    pub async fn enqueue(
        &self,
        endpoint: &str,
        frame: &str,
        sets: &[Members<'_>],
        to: Vec<Recipient>,
    ) -> Result<Queued, Error> {
        let deadline = now_millis() + self.max_age_ms;
        let sets: Vec<Set> = sets.iter().copied().map(Set::of).collect();
        let bodies = slices(to, frame.len(), self.job_size)
            .into_iter()
            .map(|to| {
                let job = Job {
                    id: crate::unique::id(),
                    endpoint: endpoint.to_owned(),
                    frame: frame.to_owned(),
                    sets: sets.clone(),
                    to,
                    deadline,
                };
                let body = serde_json::to_string(&job)
                    .map_err(|e| Error::Unserializable(e.to_string()))?;
                Ok((job.to.len(), sqs_safe(body)))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let results = stream::iter(bodies)
            .map(|(recipients, body)| async move { (recipients, self.queue.send(&body).await) })
            .buffer_unordered(QUEUE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut queued = Queued {
            recipients: 0,
            jobs: 0,
            unqueued: 0,
            error: None,
        };
        for (recipients, result) in results {
            match result {
                Ok(()) => {
                    queued.recipients += recipients;
                    queued.jobs += 1;
                }
                Err(e) => {
                    queued.unqueued += recipients;
                    queued.error.get_or_insert(e);
                }
            }
        }
        Ok(queued)
    }
}

/// `to` cut into slices of at most `size` recipients, each small enough to travel with a frame
/// of `frame_bytes` in one SQS message (a frame's JSON escaping at most doubles it, but for
/// control characters, which a text frame rarely holds).
fn slices(to: Vec<Recipient>, frame_bytes: usize, size: usize) -> Vec<Vec<Recipient>> {
    let budget = MAX_JOB_BYTES.saturating_sub(2 * frame_bytes + 512);
    let mut slices = Vec::new();
    let mut slice: Vec<Recipient> = Vec::new();
    let mut bytes = 0;
    for recipient in to {
        // `["id",index],`
        let cost = recipient.0.len() + 12;
        if !slice.is_empty() && (slice.len() == size || bytes + cost > budget) {
            slices.push(std::mem::take(&mut slice));
            bytes = 0;
        }
        bytes += cost;
        slice.push(recipient);
    }
    if !slice.is_empty() {
        slices.push(slice);
    }
    slices
}

/// A job's JSON as SQS takes it: SQS refuses a message holding U+FFFE or U+FFFF (outside the XML
/// character ranges it allows), which a client's `data`, passed on as written, may hold. JSON's
/// structure is ASCII, so they can only be inside strings, where their escapes mean the same.
fn sqs_safe(json: String) -> String {
    if !json.contains(['\u{FFFE}', '\u{FFFF}']) {
        return json;
    }
    json.replace('\u{FFFE}', "\\ufffe")
        .replace('\u{FFFF}', "\\uffff")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients(n: usize) -> Vec<Recipient> {
        (0..n).map(|i| (format!("conn{i:012}="), Some(0))).collect()
    }

    #[test]
    fn recipients_are_cut_into_slices_of_the_job_size() {
        let slices = slices(recipients(2_500), 100, 1_000);
        assert_eq!(
            slices.iter().map(Vec::len).collect::<Vec<_>>(),
            [1_000, 1_000, 500]
        );
        assert_eq!(slices.concat(), recipients(2_500));
    }

    #[test]
    fn a_large_frame_makes_slices_smaller_so_that_each_job_fits_one_message() {
        let frame = "x".repeat(128 * 1024);
        for slice in slices(recipients(50_000), frame.len(), 50_000) {
            let job = Job {
                id: crate::unique::id(),
                endpoint: "https://example.com/prod".into(),
                frame: frame.clone(),
                sets: vec![Set::Group("g".repeat(128))],
                to: slice,
                deadline: i64::MAX,
            };
            let body = serde_json::to_string(&job).expect("a job serializes");
            assert!(body.len() <= MAX_JOB_BYTES, "{} bytes", body.len());
        }
    }

    #[test]
    fn no_recipients_make_no_jobs() {
        assert!(slices(Vec::new(), 10, 1_000).is_empty());
    }

    #[test]
    fn characters_sqs_refuses_are_escaped_and_read_back_the_same() {
        let frame = "a\u{FFFF}b\u{FFFE}c";
        let job = Job {
            id: "j".into(),
            endpoint: "e".into(),
            frame: frame.into(),
            sets: vec![Set::All],
            to: vec![("A=".into(), Some(0))],
            deadline: 1,
        };
        let body = sqs_safe(serde_json::to_string(&job).expect("a job serializes"));
        assert!(!body.contains(['\u{FFFE}', '\u{FFFF}']), "{body}");
        let read: Job = serde_json::from_str(&body).expect("the body reads back");
        assert_eq!(read, job);
    }

    #[test]
    fn a_job_names_its_sets_as_the_store_reads_them() {
        for members in [Members::All, Members::Uid("u"), Members::Group("g")] {
            assert_eq!(Set::of(members).members(), members);
        }
    }
}
