//! The per-connection rate limit: a fixed window counted on the connection's own item
//! (`rateWindow`, `rateCount`), so that it dies with the connection and needs no item of its own.
//!
//! A frame costs one UpdateItem while its window is current. The first frame of a window starts
//! it (a second write). When two frames straddle a boundary, the later window wins, and a frame
//! of the window gone by is let through rather than refused: the count it belonged to is over.
//! Writes refused for a conflict with a `join` or `leave` on the same item are tried again
//! ([`conditional_update`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::items;
use super::keys::Key;
use super::write::conditional_update;
use super::DynamoStore;
use crate::store::{Admission, StoreError};

fn numbers(pairs: &[(&str, i64)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), AttributeValue::N(value.to_string())))
        .collect()
}

impl DynamoStore {
    /// One conditional UpdateItem of the connection's rate-limit attributes.
    async fn update_rate(
        &self,
        connection_id: &str,
        window: i64,
        update: &str,
        condition: &str,
    ) -> Result<Option<UpdateItemOutput>, StoreError> {
        let key = Key::connection(connection_id).item();
        conditional_update(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(numbers(&[(":one", 1), (":window", window)])))
                .return_values(ReturnValue::UpdatedNew)
                .send()
        })
        .await
    }

    /// Counts one frame in `window`; the count so far, or `None` when the stored window is
    /// another one (or the connection is gone).
    async fn count(&self, connection_id: &str, window: i64) -> Result<Option<i64>, StoreError> {
        let updated = self
            .update_rate(
                connection_id,
                window,
                "ADD rateCount :one",
                "rateWindow = :window",
            )
            .await?;
        updated
            .map(|output| {
                items::number(
                    &output.attributes().cloned().unwrap_or_default(),
                    "rateCount",
                )
            })
            .transpose()
    }

    /// Starts `window` with this frame; `false` when the stored window is not older (started
    /// meanwhile by another frame, or by this very write whose answer was lost and retried) or
    /// the connection is gone.
    async fn start(&self, connection_id: &str, window: i64) -> Result<bool, StoreError> {
        let updated = self
            .update_rate(
                connection_id,
                window,
                "SET rateWindow = :window, rateCount = :one",
                "attribute_exists(pk) AND (attribute_not_exists(rateWindow) OR rateWindow < :window)",
            )
            .await?;
        Ok(updated.is_some())
    }

    pub(super) async fn admit_frame(
        &self,
        connection_id: &str,
        window: i64,
        limit: u32,
    ) -> Result<Admission, StoreError> {
        let verdict = |count: i64| {
            if count <= i64::from(limit) {
                Admission::Allowed
            } else {
                Admission::Limited
            }
        };
        if let Some(count) = self.count(connection_id, window).await? {
            return Ok(verdict(count));
        }
        if self.start(connection_id, window).await? {
            return Ok(Admission::Allowed);
        }
        // Started meanwhile: count in it.
        if let Some(count) = self.count(connection_id, window).await? {
            return Ok(verdict(count));
        }
        // The stored window is newer than this frame's, or there is no connection.
        Ok(match self.live_record(connection_id).await? {
            Some(_) => Admission::Allowed,
            None => Admission::Unknown,
        })
    }
}
