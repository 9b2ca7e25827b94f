//! Fan-out jobs' claims and done marks (`pk=job#{id}`, `sk=job`): SQS delivers a job at least
//! once, and a second delivery must not push it again (see [`crate::spread`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::write::{self, request_error};
use super::{ending, DynamoStore, Key, TTL_ATTRIBUTE};
use crate::store::{now_millis, Claim, StoreError};

impl DynamoStore {
    pub(super) async fn claim_job_in(
        &self,
        job: &str,
        lease_until: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        // The call's own token: an SDK retry of a claim whose answer was lost still finds it
        // its own, where another delivery of the job meets the lease.
        let values = HashMap::from([
            (
                ":until".to_owned(),
                AttributeValue::N(lease_until.to_string()),
            ),
            (
                ":now".to_owned(),
                AttributeValue::N(now_millis().to_string()),
            ),
            (":by".to_owned(), AttributeValue::S(ending::token())),
            (
                ":expires".to_owned(),
                AttributeValue::N(expires_at.to_string()),
            ),
        ]);
        let claimed = write::conditional_update(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Key::job(job).item()))
                .update_expression("SET leaseUntil = :until, claimedBy = :by, #expires = :expires")
                .condition_expression(
                    "attribute_not_exists(pk) OR (attribute_not_exists(doneAt) \
                     AND (leaseUntil < :now OR claimedBy = :by))",
                )
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .set_expression_attribute_values(Some(values.clone()))
                .send()
        })
        .await?;
        if claimed.is_some() {
            return Ok(Claim::Claimed);
        }
        // Refused: done, or another call's lease. Read which (rare: a second delivery).
        Ok(match self.live_item(&Key::job(job)).await? {
            Some(item) if item.contains_key("doneAt") => Claim::Done,
            _ => Claim::Running,
        })
    }

    pub(super) async fn finish_job_in(&self, job: &str, expires_at: i64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::job(job).item()))
            .update_expression("SET doneAt = :now, #expires = :expires")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", AttributeValue::N(now_millis().to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|e| request_error("UpdateItem", e))?;
        Ok(())
    }
}
