//! Group streams (protocol: "Recovery of missed group messages"): a head item per group holding
//! its epoch and last offset, and one item per message kept, under the group's stream partition.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | the head | `stream#{group}` | `head` | epoch, offset, takenAt, expiresAt |
//! | a message | `stream#{group}` | `msg#{offset, 20 digits}` | epoch, frame (none: skipped), keptAt, expiresAt |
//!
//! History reads `msg#` keys between the one asked from and the head's, of the head's epoch only:
//! a restarted stream reuses offsets, and TTL deletes the old epoch's messages days late.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::items::{self, Item, TTL_ATTRIBUTE};
use super::write::request_error;
use super::DynamoStore;
use crate::store::{now_millis, now_secs, Head, Kept, Position, StoreError};

/// What a skipped offset adds to a history answer, at most (20 digits and a comma).
const SKIPPED_BYTES: usize = 21;

/// Messages one history Query reads at most.
const HISTORY_PAGE_ITEMS: i32 = 100;

use super::keys::stream_partition as partition;

fn message_sort_key(offset: u64) -> String {
    format!("msg#{offset:020}")
}

fn head_key(group: &str) -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S(partition(group))),
        ("sk".to_owned(), AttributeValue::S("head".to_owned())),
    ])
}

fn position(item: &Item) -> Result<Position, StoreError> {
    let epoch = items::string(item, "epoch")
        .ok_or_else(|| StoreError::Malformed("a stream head has no epoch".into()))?;
    let offset = items::number(item, "offset")?;
    Ok(Position {
        epoch,
        offset: u64::try_from(offset)
            .map_err(|_| StoreError::Malformed(format!("a stream offset of {offset}")))?,
    })
}

fn head(item: &Item) -> Result<Head, StoreError> {
    Ok(Head {
        position: position(item)?,
        // A head written before `takenAt` was: as if taken long ago.
        taken_at: items::number(item, "takenAt").unwrap_or(0),
    })
}

impl DynamoStore {
    pub(super) async fn advance_stream(
        &self,
        group: &str,
        epoch: &str,
        expires_at: i64,
    ) -> Result<Position, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(head_key(group)))
            .update_expression(
                "SET #epoch = if_not_exists(#epoch, :epoch), #expires = :expires, takenAt = :now ADD #offset :one",
            )
            .expression_attribute_names("#epoch", "epoch")
            .expression_attribute_names("#offset", "offset")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":epoch", AttributeValue::S(epoch.to_owned()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", AttributeValue::N(now_millis().to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| request_error("UpdateItem", e))?;
        let attributes = output
            .attributes()
            .ok_or_else(|| StoreError::Malformed("UpdateItem returned no stream head".into()))?;
        position(attributes)
    }

    pub(super) async fn keep_message(
        &self,
        group: &str,
        at: &Position,
        frame: Option<&str>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(partition(group)))
            .item("sk", AttributeValue::S(message_sort_key(at.offset)))
            .item("epoch", AttributeValue::S(at.epoch.clone()))
            .item("keptAt", AttributeValue::N(now_millis().to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()));
        if let Some(frame) = frame {
            put = put.item("frame", AttributeValue::S(frame.to_owned()));
        }
        put.send().await.map_err(|e| request_error("PutItem", e))?;
        Ok(())
    }

    pub(super) async fn stream_position(&self, group: &str) -> Result<Option<Head>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(head_key(group)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| request_error("GetItem", e))?;
        output.item().map(head).transpose()
    }

    pub(super) async fn kept_after(
        &self,
        group: &str,
        top: &Position,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Kept>, bool), StoreError> {
        let mut kept = Vec::new();
        let mut bytes = 0;
        let mut start = None;
        if after >= top.offset {
            return Ok((kept, false));
        }
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                .filter_expression("#epoch = :epoch")
                .expression_attribute_names("#epoch", "epoch")
                .expression_attribute_values(":pk", AttributeValue::S(partition(group)))
                .expression_attribute_values(
                    ":first",
                    AttributeValue::S(message_sort_key(after + 1)),
                )
                .expression_attribute_values(
                    ":last",
                    AttributeValue::S(message_sort_key(top.offset)),
                )
                .expression_attribute_values(":epoch", AttributeValue::S(top.epoch.clone()))
                .consistent_read(true)
                // A page of at most 100 messages: reading on to 1 MB would bill what the byte
                // budget throws away.
                .limit(HISTORY_PAGE_ITEMS)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| request_error("Query", e))?;
            let now = now_secs();
            for item in output.items() {
                // Expired messages are read too (they are few: the range is the window), to
                // tell an aged-out message from one not kept yet.
                let expired = items::number(item, TTL_ATTRIBUTE).map_or(true, |at| at <= now);
                let frame = items::string(item, "frame");
                // What the answer will carry: a live frame, or a skipped offset's few digits.
                let size = match &frame {
                    Some(frame) if !expired => frame.len(),
                    Some(_) => 0,
                    None => SKIPPED_BYTES,
                };
                if !kept.is_empty() && bytes + size > max_bytes {
                    return Ok((kept, true));
                }
                let sort_key = items::string(item, "sk").unwrap_or_default();
                let offset = sort_key
                    .strip_prefix("msg#")
                    .and_then(|digits| digits.parse().ok())
                    .ok_or_else(|| {
                        StoreError::Malformed(format!("a kept message at {sort_key:?}"))
                    })?;
                bytes += size;
                kept.push(Kept {
                    offset,
                    frame,
                    kept_at: items::number(item, "keptAt").unwrap_or(0),
                    expired,
                });
            }
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok((kept, false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_by_offset_and_after_the_head() {
        assert!(message_sort_key(9) < message_sort_key(10));
        assert!(message_sort_key(99_999) < message_sort_key(100_000));
        assert!("head" < message_sort_key(0).as_str());
    }
}
