//! The per-connection rate limit's count: one small item per connection and window
//! (`pk=conn#{id}`, `sk=rate#{window}`, `frames`, `expiresAt`).
//!
//! A frame costs one unconditional UpdateItem of about 60 bytes: one write unit, whatever the
//! connection's session or groups weigh, and never refused for a conflict (no transaction
//! touches it). Each window starts a new item, so nothing resets a count and nothing reads before
//! writing; the count the write returns decides. Nothing ever reads these items: they expire a
//! minute after their window ends, and `$disconnect` leaves them to that (deleting an item that
//! may not exist is billed as a write).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::items;
use super::keys::Key;
use super::write::request_error;
use super::DynamoStore;
use crate::store::StoreError;

impl DynamoStore {
    pub(super) async fn count_frame_in(
        &self,
        connection_id: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<u64, StoreError> {
        let values = HashMap::from([
            (":one".to_owned(), AttributeValue::N("1".into())),
            (
                ":expires".to_owned(),
                AttributeValue::N(expires_at.to_string()),
            ),
        ]);
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::rate(connection_id, window).item()))
            .update_expression("ADD frames :one SET expiresAt = :expires")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| request_error("UpdateItem", e))?;
        let frames = items::number(&output.attributes().cloned().unwrap_or_default(), "frames")?;
        u64::try_from(frames)
            .map_err(|_| StoreError::Malformed(format!("a frame count of {frames}")))
    }
}
