//! Writing: transactions, batched deletes, and what to do when DynamoDB refuses a write because
//! another one to the same item was under way.
//!
//! API Gateway invokes the message function for one connection's frames at once, so a `join`,
//! a `leave` and a session write can meet on the connection's item. DynamoDB
//! then cancels the transaction (`TransactionCanceledException`, reason `TransactionConflict`)
//! or refuses the single write (`TransactionConflictException`). Neither is retried by the SDK
//! (aws-runtime's classifier retries only `TransactionInProgressException`), so every write here
//! goes through [`retry_conflicts`]: a refused write changed nothing, and trying it again shortly
//! after is what AWS's documentation advises.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};

use super::items::Item;
use super::keys::Key;
use super::DynamoStore;
use crate::store::{ConnectionRecord, StoreError};

/// BatchWriteItem takes at most this many requests.
const BATCH_LIMIT: usize = 25;
/// Rounds of retrying the items a BatchWriteItem left unprocessed (throttling) before giving up.
const UNPROCESSED_RETRIES: u32 = 6;
/// The most items one transaction may write (DynamoDB's limit).
pub(super) const TRANSACTION_LIMIT: usize = 100;
/// Attempts at a write refused for a conflict. Conflicting writes last milliseconds; five
/// attempts over about 150 ms outlast a burst of a connection's own frames.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Whether DynamoDB refused a write only because another write to one of its items was under way.
pub(super) trait Conflict {
    fn is_conflict(&self) -> bool;
}

impl Conflict for TransactWriteItemsError {
    fn is_conflict(&self) -> bool {
        let Self::TransactionCanceledException(e) = self else {
            return false;
        };
        let reasons = e.cancellation_reasons();
        reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
            && reasons
                .iter()
                .all(|r| matches!(r.code(), None | Some("None" | "TransactionConflict")))
    }
}

impl Conflict for UpdateItemError {
    fn is_conflict(&self) -> bool {
        self.is_transaction_conflict_exception()
    }
}

impl Conflict for DeleteItemError {
    fn is_conflict(&self) -> bool {
        self.is_transaction_conflict_exception()
    }
}

/// Runs `call` again, after a short random pause, while DynamoDB refuses it for a conflict.
pub(super) async fn retry_conflicts<T, E, Fut>(
    operation: &'static str,
    mut call: impl FnMut() -> Fut,
) -> Result<T, SdkError<E>>
where
    E: Conflict,
    Fut: Future<Output = Result<T, SdkError<E>>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e)
                if attempt < CONFLICT_ATTEMPTS
                    && e.as_service_error().is_some_and(Conflict::is_conflict) =>
            {
                tracing::info!(
                    operation,
                    attempt,
                    "write refused for a conflict with another write to the same item; trying again"
                );
                tokio::time::sleep(crate::jitter::pause(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An UpdateItem, again while a conflict refuses it: its output, or `None` when its condition
/// did not hold.
pub(super) async fn conditional_update<Fut>(
    call: impl FnMut() -> Fut,
) -> Result<Option<UpdateItemOutput>, StoreError>
where
    Fut: Future<Output = Result<UpdateItemOutput, SdkError<UpdateItemError>>>,
{
    match retry_conflicts("UpdateItem", call).await {
        Ok(output) => Ok(Some(output)),
        Err(e)
            if e.as_service_error()
                .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
        {
            Ok(None)
        }
        Err(e) => Err(request_error("UpdateItem", e)),
    }
}

pub(super) fn request_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(&error).to_string();
    let timed_out = match &error {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    };
    if timed_out {
        return StoreError::TimedOut { operation, message };
    }
    match error.code() {
        Some(code) if THROTTLING_CODES.contains(&code) => {
            StoreError::Throttled { operation, message }
        }
        Some(code) if DENIED_CODES.contains(&code) => StoreError::Denied { operation, message },
        Some("ResourceNotFoundException") => StoreError::NoTable { operation, message },
        _ => StoreError::Request { operation, message },
    }
}

/// The error codes of a request AWS would not let through: credentials or policy.
const DENIED_CODES: [&str; 5] = [
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
];

/// The error codes DynamoDB answers when a partition or the table is past its throughput
/// (the SDK has already retried them).
const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

pub(super) fn malformed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(error.to_string())
}

pub(super) fn put(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(malformed)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// An update of one item's key, as one step of a transaction.
pub(super) fn update(
    table: &str,
    key: &Key,
    expression: &str,
    condition: &str,
    values: Option<HashMap<String, AttributeValue>>,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key.item()))
        .update_expression(expression)
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(malformed)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Whether a transaction was cancelled because a condition did not hold.
pub(super) fn condition_failed(error: &SdkError<TransactWriteItemsError>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

impl DynamoStore {
    /// Writes `items` all or nothing, again while a conflict refuses them.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        retry_conflicts("TransactWriteItems", || {
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
        })
        .await
        .map(drop)
    }

    /// Changes a connection's uid in one transaction: `own` (its item and its uid binding), then
    /// `expression` on its place in "all" and in each group, which carry the uid for presence.
    pub(super) async fn change_uid(
        &self,
        record: &ConnectionRecord,
        mut own: Vec<TransactWriteItem>,
        expression: &str,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<bool, StoreError> {
        let id = &record.connection_id;
        let sets = std::iter::once(Key::all_member(id))
            .chain(record.groups.iter().map(|g| Key::group_member(g, id)));
        for key in sets {
            own.push(update(
                &self.table,
                &key,
                expression,
                "attribute_exists(pk)",
                values.clone(),
            )?);
        }
        if own.len() > TRANSACTION_LIMIT {
            return Err(StoreError::Request {
                operation: "TransactWriteItems",
                message: format!(
                    "a connection in {} groups cannot change its uid in one transaction",
                    record.groups.len()
                ),
            });
        }
        match self.transact(own).await {
            Ok(()) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(request_error("TransactWriteItems", e)),
        }
    }

    /// Deletes items by key, 25 at a time, retrying what DynamoDB leaves unprocessed.
    pub(super) async fn delete_keys(&self, keys: Vec<Key>) -> Result<(), StoreError> {
        let requests = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.item()))
                    .build()
                    .map_err(malformed)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch_write(requests).await
    }

    /// Writes whole items, 25 at a time, retrying what DynamoDB leaves unprocessed: plain writes,
    /// half the write units of a transaction's, for items whose partial landing the caller can
    /// take back.
    pub(super) async fn put_items(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(malformed)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_LIMIT) {
            let mut requests = chunk.to_vec();
            let mut round = 0;
            while !requests.is_empty() {
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Request {
                        operation: "BatchWriteItem",
                        message: format!(
                            "{} writes still unprocessed after {round} rounds",
                            requests.len()
                        ),
                    });
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| request_error("BatchWriteItem", e))?;
                requests = output
                    .unprocessed_items()
                    .and_then(|items| items.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                round += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;

    fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
        let reasons = codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect();
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons))
                .build(),
        )
    }

    #[test]
    fn a_transaction_cancelled_only_for_a_conflict_is_a_conflict() {
        assert!(cancelled(&["None", "TransactionConflict"]).is_conflict());
        assert!(cancelled(&["TransactionConflict"]).is_conflict());
    }

    #[test]
    fn a_transaction_cancelled_by_a_condition_is_not_a_conflict() {
        assert!(!cancelled(&["ConditionalCheckFailed", "TransactionConflict"]).is_conflict());
        assert!(!cancelled(&["ConditionalCheckFailed", "None"]).is_conflict());
    }
}
