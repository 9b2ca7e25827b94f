//! Group streams (protocol: "Recovery of missed group messages"): a head item per group holding
//! its epoch and last offset, and one item per message kept, under the group's stream partition.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | the head | `stream#{group}` | `head` | epoch, offset, expiresAt |
//! | a message | `stream#{group}` | `msg#{offset, 20 digits}` | frame, expiresAt |
//!
//! `head` sorts before every `msg#`, so a Query for the messages after one never meets it.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::items::{self, Item, TTL_ATTRIBUTE};
use super::write::request_error;
use super::DynamoStore;
use crate::store::{now_secs, Kept, Position, StoreError};

/// Messages one history Query reads at most.
const HISTORY_PAGE_ITEMS: i32 = 100;

fn partition(group: &str) -> String {
    format!("stream#{group}")
}

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
                "SET #epoch = if_not_exists(#epoch, :epoch), #expires = :expires ADD #offset :one",
            )
            .expression_attribute_names("#epoch", "epoch")
            .expression_attribute_names("#offset", "offset")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":epoch", AttributeValue::S(epoch.to_owned()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
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
        offset: u64,
        frame: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(partition(group)))
            .item("sk", AttributeValue::S(message_sort_key(offset)))
            .item("frame", AttributeValue::S(frame.to_owned()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|e| request_error("PutItem", e))?;
        Ok(())
    }

    pub(super) async fn stream_position(
        &self,
        group: &str,
    ) -> Result<Option<Position>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(head_key(group)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| request_error("GetItem", e))?;
        output.item().map(position).transpose()
    }

    pub(super) async fn kept_after(
        &self,
        group: &str,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Kept>, bool), StoreError> {
        let mut kept = Vec::new();
        let mut bytes = 0;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk > :after")
                .filter_expression("#expires > :now")
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_values(":pk", AttributeValue::S(partition(group)))
                .expression_attribute_values(":after", AttributeValue::S(message_sort_key(after)))
                .expression_attribute_values(":now", AttributeValue::N(now_secs().to_string()))
                .consistent_read(true)
                // A page of at most 100 messages: reading on to 1 MB would bill what the byte
                // budget throws away.
                .limit(HISTORY_PAGE_ITEMS)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| request_error("Query", e))?;
            for item in output.items() {
                let frame = items::string(item, "frame")
                    .ok_or_else(|| StoreError::Malformed("a kept message has no frame".into()))?;
                if !kept.is_empty() && bytes + frame.len() > max_bytes {
                    return Ok((kept, true));
                }
                let sort_key = items::string(item, "sk").unwrap_or_default();
                let offset = sort_key
                    .strip_prefix("msg#")
                    .and_then(|digits| digits.parse().ok())
                    .ok_or_else(|| {
                        StoreError::Malformed(format!("a kept message at {sort_key:?}"))
                    })?;
                bytes += frame.len();
                kept.push(Kept { offset, frame });
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
