//! What a fan-out worker does with one job: claim it, push its frame to each of its connections
//! (pruning the gone ones, as every send does), keep pushing the throttled ones until the job's
//! deadline, and mark it done.
//!
//! A 429 from `@connections` is backpressure, not failure: the account's 10,000 requests a
//! second are shared by every worker (and every API of the account), and a 429 also answers a
//! push to a client whose buffer is full. The throttled recipients are pushed again after a
//! pause that grows, for as long as the job is worth anything (its deadline).

use std::time::Duration;

use futures_util::stream;
use thiserror::Error;

use crate::gateway::{Gateway, Pushed, Report};
use crate::push::Push;
use crate::spread::{Job, Set};
use crate::store::{now_millis, Claim, Members, Store, StoreError};

/// What a job came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    /// The pushes: delivered, gone (pruned), failed after retries.
    pub pushes: Report,
    /// Recipients still throttled when the job ran out of time: given up.
    pub late: usize,
    /// The job was not run: why (`expired`, `done before`).
    pub skipped: Option<&'static str>,
}

/// Why a job must be delivered again (the batch item fails; SQS redelivers it after the
/// visibility timeout, and moves it to the dead-letter queue after `maxReceiveCount` receives).
#[derive(Debug, Error)]
pub enum JobError {
    /// The message is not a job.
    #[error("the message is not a fan-out job: {0}")]
    Malformed(String),
    /// Another delivery of the job holds it: this one comes back after the visibility timeout,
    /// to find it done, or its lease run out (its worker died).
    #[error("job {0} is being pushed by another worker")]
    Running(String),
    /// The push loop stopped on a store error. A job's recipients come with it, so no read of
    /// them can fail; the variant keeps the loop's error typed rather than assumed away.
    #[error("job {job} stopped: {message}")]
    Push {
        /// The job.
        job: String,
        /// What stopped it.
        message: String,
    },
    /// The claim could not be written: nothing was pushed.
    #[error("job {job} could not be claimed: {source}")]
    Store {
        /// The job.
        job: String,
        /// What the store said.
        source: StoreError,
    },
}

/// Pauses between rounds of throttled pushes: 100 ms doubling to 2 s.
fn backoff(round: u32) -> Duration {
    Duration::from_millis((100u64 << round.min(5)).min(2_000))
}

/// How long the table keeps a job's claim and done mark past its deadline: longer than SQS
/// keeps the message (`MessageRetentionPeriod`), so no delivery outlives them.
const MARK_SECONDS: i64 = 3_600;

impl<S: Store, P: Push> Gateway<S, P> {
    /// Runs `job`, holding its claim until `lease_until` (epoch milliseconds: the invocation's
    /// deadline, after which no one is running it). Throttled recipients are pushed again until
    /// the job's deadline, or until a push started then could still end within the lease,
    /// whichever comes first.
    pub async fn run_job(&self, job: &Job, lease_until: i64) -> Result<JobReport, JobError> {
        if now_millis() > job.deadline {
            return Ok(JobReport {
                skipped: Some("expired"),
                ..JobReport::default()
            });
        }
        let expires_at = job.deadline / 1000 + MARK_SECONDS;
        let claim = self
            .store
            .claim_job(&job.id, lease_until, expires_at)
            .await
            .map_err(|source| JobError::Store {
                job: job.id.clone(),
                source,
            })?;
        match claim {
            Claim::Claimed => {}
            Claim::Done => {
                return Ok(JobReport {
                    skipped: Some("done before"),
                    ..JobReport::default()
                })
            }
            Claim::Running => return Err(JobError::Running(job.id.clone())),
        }
        // A push may take PUSH_TIMEOUT_MS: none starts after it could outlive the invocation.
        let push_budget = self.config.push_timeout.as_millis() as i64 + 1_000;
        let stop_by = job.deadline.min(lease_until - push_budget);
        let sets: Vec<Members<'_>> = job.sets.iter().map(Set::members).collect();
        let mut report = JobReport::default();
        let mut pending = job.to.clone();
        let mut round = 0;
        while !pending.is_empty() {
            let recipients = stream::iter(pending.into_iter().map(Ok));
            let Pushed {
                report: pushed,
                retry,
            } = self
                .push_all(&job.endpoint, &sets, &job.frame, recipients, Some(stop_by))
                .await
                .map_err(|e| JobError::Push {
                    job: job.id.clone(),
                    message: e.to_string(),
                })?;
            report.pushes.delivered += pushed.delivered;
            report.pushes.gone += pushed.gone;
            report.pushes.failed += pushed.failed;
            let pause = backoff(round);
            if !retry.is_empty() && now_millis() + pause.as_millis() as i64 > stop_by {
                report.late = retry.len();
                tracing::warn!(
                    job = %job.id,
                    late = report.late,
                    "still throttled when the job's time ran out: these recipients get nothing",
                );
                break;
            }
            if !retry.is_empty() {
                tokio::time::sleep(pause).await;
            }
            pending = retry;
            round += 1;
        }
        // Pushed: a failed mark only risks a second delivery pushing again.
        if let Err(e) = self.store.finish_job(&job.id, expires_at).await {
            tracing::warn!(job = %job.id, error = %e, "the job's done mark could not be written: a second delivery would push it again");
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn throttled_rounds_pause_longer_each_time_up_to_two_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(1_600));
        assert_eq!(backoff(5), Duration::from_secs(2));
        assert_eq!(backoff(40), Duration::from_secs(2));
    }
}
