//! The fan-out function: Lambda's SQS event source mapping hands it jobs of spread sends
//! ([`crate::spread`]), and it pushes them ([`Gateway::run_job`]). A job that must come back
//! (not a job at all, or not claimable) is named in the batch response's `batchItemFailures`
//! (the template sets `ReportBatchItemFailures`): SQS delivers it again after the visibility
//! timeout, and after `maxReceiveCount` receives moves it to the dead-letter queue.
//!
//! It runs the application's `on_close` for the recipients it finds gone (410), as every
//! function does for the connections it ends: each application ships its own fan-out function.

use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;

use crate::app::Events;
use crate::gateway::Gateway;
use crate::lambda::on_close::then_close;
use crate::lambda::request::millis;
use crate::spread::worker::JobError;
use crate::spread::Job;
use crate::store::now_millis;

/// Jobs of one batch run at once (each pushes `PUSH_CONCURRENCY` at a time).
const JOBS_AT_ONCE: usize = 4;

/// Runs a batch of jobs, then the application's `on_close` for the recipients found gone; the
/// jobs to deliver again.
pub async fn handle<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: LambdaEvent<SqsEvent>,
) -> SqsBatchResponse {
    let request_id = &event.context.request_id;
    // The invocation cannot run past its deadline: a job's claim lasts that long. A runtime
    // that gives none (cargo lambda watch) has the claim last FAN_OUT_LEASE_SECONDS.
    let now = now_millis();
    let lease_until = match i64::try_from(event.context.deadline) {
        Ok(deadline) if deadline > now => deadline,
        _ => now + gateway.config.job_lease.as_millis() as i64,
    };
    let jobs = stream::iter(event.payload.records)
        .map(|message| async move {
            let failed = run(gateway, &message, request_id, lease_until).await;
            failed.then(|| message.message_id.unwrap_or_default())
        })
        .buffer_unordered(JOBS_AT_ONCE)
        .filter_map(|failed| async move { failed })
        .collect::<Vec<_>>();
    let failures = then_close(gateway, app, jobs).await;
    let mut response = SqsBatchResponse::default();
    for id in failures {
        response.add_failure(id);
    }
    response
}

/// Runs one job and logs what came of it; whether it must be delivered again.
async fn run(gateway: &Gateway, message: &SqsMessage, request_id: &str, lease_until: i64) -> bool {
    let started = Instant::now();
    let message_id = message.message_id.as_deref().unwrap_or_default();
    let receives = message
        .attributes
        .get("ApproximateReceiveCount")
        .map_or("?", String::as_str);
    let job = serde_json::from_str::<Job>(message.body.as_deref().unwrap_or_default());
    let outcome = match &job {
        Ok(job) => gateway.run_job(job, lease_until).await,
        // Where and what, not serde's words, which quote the body.
        Err(e) => Err(JobError::Malformed(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))),
    };
    let job_id = job.as_ref().map_or("?", |job| job.id.as_str());
    let duration_ms = millis(started.elapsed());
    match outcome {
        Ok(report) if report.skipped == Some("expired") => {
            tracing::warn!(
                request_id,
                message_id,
                job = job_id,
                receives,
                recipients = job.as_ref().map_or(0, |job| job.to.len()),
                "fan-out job dropped: expired (FAN_OUT_MAX_AGE_SECONDS passed before a worker got it); its recipients get nothing",
            );
            false
        }
        Ok(report) => {
            tracing::info!(
                request_id,
                message_id,
                job = job_id,
                receives,
                recipients = job.as_ref().map_or(0, |job| job.to.len()),
                delivered = report.pushes.delivered,
                gone = report.pushes.gone,
                failed = report.pushes.failed,
                late = report.late,
                skipped = report.skipped.unwrap_or(""),
                duration_ms,
                "fan-out job done",
            );
            false
        }
        Err(e @ JobError::Running(_)) => {
            tracing::info!(
                request_id,
                message_id,
                job = job_id,
                receives,
                error = %e,
                duration_ms,
                "fan-out job delivered again while another worker pushes it: it comes back after the visibility timeout, to be found done",
            );
            true
        }
        Err(e) => {
            tracing::error!(
                request_id,
                message_id,
                job = job_id,
                receives,
                error = %e,
                duration_ms,
                "fan-out job failed: SQS delivers it again after the visibility timeout, and moves it to the dead-letter queue after maxReceiveCount receives",
            );
            true
        }
    }
}
