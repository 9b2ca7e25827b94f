//! Joining and leaving a group: the connection's record names the group exactly when its member
//! item exists (docs/table-design.md, "Writes, all or nothing"), also when a `join` and a `leave`
//! of one group run at once.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::ending::ENDED_AT;
use super::items::{following_group_item, group_item};
use super::keys::Key;
use super::write::{condition_failed, malformed, put, request_error};
use super::DynamoStore;
use crate::store::{ConnectionRecord, Joining, StoreError};

impl DynamoStore {
    /// One transaction: the record names the group and the member item exists, or neither. Two
    /// plain writes in any order would let a `join` and a `leave` of the same group that run at
    /// once (API Gateway runs one connection's frames at once; a server's `ungroup`) end with a
    /// member item that no record names: the connection would go on receiving the group's
    /// messages after it left, and its `$disconnect` would not delete the item.
    ///
    /// The record's own condition caps its groups at `max_groups` (a group it is already in
    /// joins again): the write decides, so concurrent joins cannot pass the cap together.
    pub(super) async fn join_group(
        &self,
        record: &ConnectionRecord,
        group: &str,
        presence: bool,
        max_groups: usize,
    ) -> Result<Joining, StoreError> {
        let connection = Key::connection(&record.connection_id);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(connection.item()))
            .update_expression("ADD #groups :group")
            // Not onto a connection whose end is under way: its items are being removed.
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(#ended) \
                 AND (attribute_not_exists(#groups) OR size(#groups) < :max OR contains(#groups, :name))",
            )
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_names("#ended", ENDED_AT)
            .expression_attribute_values(":group", AttributeValue::Ss(vec![group.to_owned()]))
            .expression_attribute_values(":name", AttributeValue::S(group.to_owned()))
            .expression_attribute_values(":max", AttributeValue::N(max_groups.to_string()))
            // Which part of the condition failed: the item as it was, from the refusal itself.
            .return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .build()
            .map_err(malformed)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            put(
                &self.table,
                if presence {
                    following_group_item(group, record)
                } else {
                    group_item(group, record)
                },
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Joining::Joined),
            Err(e) if condition_failed(&e) => Ok(match refused_item(&e, 0) {
                Some(item) if live_and_not_ending(item) => Joining::Full,
                _ => Joining::Gone,
            }),
            Err(e) => Err(request_error("TransactWriteItems", e)),
        }
    }

    /// One transaction, for the same reason as [`DynamoStore::join_group`].
    pub(super) async fn leave_group(
        &self,
        connection_id: &str,
        group: &str,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Key::connection(connection_id).item()))
            .update_expression("DELETE #groups :group")
            // Only a member leaves: a leave of a group one is not in changes nothing, and its
            // followers are not told of it.
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(#ended) AND contains(#groups, :name)",
            )
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_names("#ended", ENDED_AT)
            .expression_attribute_values(":group", AttributeValue::Ss(vec![group.to_owned()]))
            .expression_attribute_values(":name", AttributeValue::S(group.to_owned()))
            .build()
            .map_err(malformed)?;
        let delete = self.delete_member(group, connection_id)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(delete).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            // Not a member, or the connection is gone: only a stray member item can be left, and
            // it goes too — but only while the record still does not name the group, checked in
            // the same transaction, or a `join` landing meanwhile would lose its member item.
            Err(e) if condition_failed(&e) => {
                self.remove_unnamed_member(connection_id, group).await?;
                Ok(false)
            }
            Err(e) => Err(request_error("TransactWriteItems", e)),
        }
    }

    /// A transaction's delete of the connection's member item of `group`.
    fn delete_member(&self, group: &str, connection_id: &str) -> Result<Delete, StoreError> {
        Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Key::group_member(group, connection_id).item()))
            .build()
            .map_err(malformed)
    }

    /// Deletes the connection's member item of `group` if its record does not name the group
    /// (or is gone), in one transaction. A `join` that commits first keeps its item.
    async fn remove_unnamed_member(
        &self,
        connection_id: &str,
        group: &str,
    ) -> Result<(), StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Key::connection(connection_id).item()))
            .condition_expression("attribute_not_exists(pk) OR NOT contains(#groups, :name)")
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_values(":name", AttributeValue::S(group.to_owned()))
            .build()
            .map_err(malformed)?;
        let delete = self.delete_member(group, connection_id)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().delete(delete).build(),
        ];
        match self.transact(items).await {
            // Deleted, or the record names the group again: a join won, and its item stays.
            Ok(()) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(request_error("TransactWriteItems", e)),
        }
    }
}

/// The item the `index`-th write of a cancelled transaction found, when it asked for it.
fn refused_item(
    error: &SdkError<TransactWriteItemsError>,
    index: usize,
) -> Option<&HashMap<String, AttributeValue>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().get(index)?.item()
        }
        _ => None,
    }
}

/// A connection item that exists and whose end is not under way: a join it refused was refused
/// for the group cap.
fn live_and_not_ending(item: &HashMap<String, AttributeValue>) -> bool {
    item.contains_key("pk") && !item.contains_key(ENDED_AT)
}
