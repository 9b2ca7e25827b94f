//! A connection's end, decided once: one conditional write on its own item is the arbiter among
//! everything that may end it at once (its `$disconnect`, 410 prunes by several senders, a kick),
//! and only the call whose write lands goes on to remove its items and announce it.
//!
//! The write sets `endedAt` (and `endedBy`, the call's own token: an attempt whose answer was lost
//! and that the SDK retries is refused by its own first write, and must still know it won) on the
//! record; from then on every read takes the connection for gone and no `join`, `leave`, uid or
//! session write lands on it. The member items go next, the record last, in a request of its own
//! ([`DynamoStore::remove_ended`]): a failure half-way leaves a record that still names what is
//! left, marked ended, so a later prune that meets it (once the end is stale) or the TTL finishes
//! the work, and nobody announces it twice.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::items::{self, Item};
use super::keys::Key;
use super::write::{request_error, retry_conflicts};
use super::DynamoStore;

use crate::store::{now_millis, ConnectionRecord, Ending, Left, Member, Members, StoreError};

/// The attribute that marks a record ended (epoch milliseconds).
pub(super) const ENDED_AT: &str = "endedAt";

/// The attribute that names the call that ended a record.
const ENDED_BY: &str = "endedBy";

/// A token no other call of this process or any other shares.
pub(super) fn token() -> String {
    crate::unique::id()
}

impl DynamoStore {
    pub(super) async fn end(
        &self,
        connection_id: &str,
        recorded_before: Option<i64>,
    ) -> Result<Ending, StoreError> {
        let mut condition = format!("attribute_exists(pk) AND attribute_not_exists({ENDED_AT})");
        if recorded_before.is_some() {
            condition.push_str(" AND connectedAt < :before");
        }
        let token = token();
        let outcome = retry_conflicts("UpdateItem", || {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Key::connection(connection_id).item()))
                .update_expression(format!("SET {ENDED_AT} = :now, {ENDED_BY} = :token"))
                .condition_expression(&condition)
                .expression_attribute_values(":now", AttributeValue::N(now_millis().to_string()))
                .expression_attribute_values(":token", AttributeValue::S(token.clone()))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let Some(before) = recorded_before {
                update = update
                    .expression_attribute_values(":before", AttributeValue::N(before.to_string()));
            }
            update.send()
        })
        .await;
        let (won, item) = match outcome {
            Ok(output) => (true, output.attributes().cloned()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    (false, refused.item().cloned())
                }
                _ => return Err(request_error("UpdateItem", e)),
            },
        };
        decide(won, item.as_ref(), &token)
    }

    /// Deletes what an ended record names: its member items, then the record itself. Not its
    /// rate counts: frames of its last burst may still be counted, and a count started afresh
    /// would let them through (the counts expire a minute after their window).
    pub(super) async fn remove_ended(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let mut keys = Key::all_of(record);
        let own = keys.pop();
        self.delete_keys(keys).await?;
        self.delete_keys(own.into_iter().collect()).await
    }

    pub(super) async fn remove_stray(
        &self,
        of: Members<'_>,
        connection_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        let key = match of {
            Members::Uid(uid) => Key::uid_member(uid, connection_id),
            Members::Group(group) => Key::group_member(group, connection_id),
            Members::All => Key::all_member(connection_id),
        };
        let outcome = retry_conflicts("DeleteItem", || {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key.item()))
                .condition_expression("attribute_exists(pk)")
                .return_values(ReturnValue::AllOld)
                .send()
        })
        .await;
        match outcome {
            Ok(output) => output.attributes().map(items::member).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(None)
            }
            Err(e) => Err(request_error("DeleteItem", e)),
        }
    }
}

/// What the arbiter's write says: `won` when its condition held, with the item it returned (as
/// it is now when won, as it was when refused). A refusal by this very call's token (its first
/// attempt landed, its answer was lost, the SDK tried again) is a win.
fn decide(won: bool, item: Option<&Item>, token: &str) -> Result<Ending, StoreError> {
    let ended_by = item.and_then(|item| items::string(item, ENDED_BY));
    match (won, item) {
        (true, Some(item)) => Ok(Ending::Ended(items::record(item)?)),
        (true, None) => Err(StoreError::Malformed(
            "ending a connection returned no record".into(),
        )),
        (false, Some(item)) if ended_by.as_deref() == Some(token) => {
            Ok(Ending::Ended(items::record(item)?))
        }
        // Refused, by a record not yet ended: recorded too recently to end on a 410.
        (false, Some(item)) if !item.contains_key(ENDED_AT) => Ok(Ending::TooRecent),
        (false, Some(item)) => Ok(Ending::EndedElsewhere {
            left: Some(Left {
                record: items::record(item)?,
                ended_at: items::number(item, ENDED_AT)?,
            }),
        }),
        (false, None) => Ok(Ending::EndedElsewhere { left: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sample_record;

    const MINE: &str = "mine";

    fn item(ended_by: Option<&str>) -> Item {
        let mut item = items::connection_item(&sample_record());
        if let Some(by) = ended_by {
            item.insert(ENDED_AT.into(), AttributeValue::N("7".into()));
            item.insert(ENDED_BY.into(), AttributeValue::S(by.into()));
        }
        item
    }

    #[test]
    fn the_write_that_lands_ends_the_connection_with_its_record_as_it_was() {
        assert_eq!(
            decide(true, Some(&item(Some(MINE))), MINE).unwrap(),
            Ending::Ended(sample_record())
        );
    }

    #[test]
    fn a_retry_refused_by_its_own_first_attempt_still_ends_the_connection() {
        assert_eq!(
            decide(false, Some(&item(Some(MINE))), MINE).unwrap(),
            Ending::Ended(sample_record())
        );
    }

    #[test]
    fn a_record_marked_by_another_call_was_ended_there() {
        assert_eq!(
            decide(false, Some(&item(Some("theirs"))), MINE).unwrap(),
            Ending::EndedElsewhere {
                left: Some(Left {
                    record: sample_record(),
                    ended_at: 7
                })
            }
        );
    }

    #[test]
    fn no_record_at_all_was_ended_by_another_call_and_removed() {
        assert_eq!(
            decide(false, None, MINE).unwrap(),
            Ending::EndedElsewhere { left: None }
        );
    }

    #[test]
    fn a_live_record_that_refused_the_write_is_too_recent_to_end() {
        assert_eq!(
            decide(false, Some(&item(None)), MINE).unwrap(),
            Ending::TooRecent
        );
    }

    #[test]
    fn a_landed_write_that_returns_nothing_is_an_error_not_an_end() {
        assert!(decide(true, None, MINE).is_err());
    }

    #[test]
    fn tokens_differ_from_call_to_call() {
        assert_ne!(token(), token());
    }
}
