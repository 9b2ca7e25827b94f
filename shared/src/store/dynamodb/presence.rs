//! The presence clock of a group: one small item beside its stream head that numbers the
//! presence events (`version`) and remembers whether its followers were told it overflowed.
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | the clock | `stream#{group}` | `followers` | version, overflowed, expiresAt |
//!
//! `followers` sorts before `head` and every `msg#`, so no history Query meets it.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::items::{self, Item, TTL_ATTRIBUTE};
use super::keys::{stream_partition, Key};
use super::write::{conditional_update, request_error};
use super::DynamoStore;
use crate::store::{Member, PresenceClock, StoreError};

fn clock_key(group: &str) -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S(stream_partition(group))),
        ("sk".to_owned(), AttributeValue::S("followers".to_owned())),
    ])
}

impl DynamoStore {
    pub(super) async fn tick_presence(
        &self,
        group: &str,
        expires_at: i64,
    ) -> Result<PresenceClock, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(clock_key(group)))
            .update_expression("SET #expires = :expires ADD #version :one")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| request_error("UpdateItem", e))?;
        let item = output
            .attributes()
            .ok_or_else(|| StoreError::Malformed("UpdateItem returned no presence clock".into()))?;
        let version = items::number(item, "version")?;
        Ok(PresenceClock {
            version: u64::try_from(version)
                .map_err(|_| StoreError::Malformed(format!("a presence version of {version}")))?,
            overflowed: matches!(item.get("overflowed"), Some(AttributeValue::Bool(true))),
        })
    }

    pub(super) async fn clear_overflow(&self, group: &str) -> Result<(), StoreError> {
        // Never a new item without a TTL: only a clock that is still there is changed.
        conditional_update(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(clock_key(group)))
                .update_expression("REMOVE overflowed")
                .condition_expression("attribute_exists(pk)")
                .send()
        })
        .await?;
        Ok(())
    }

    pub(super) async fn claim_overflow(
        &self,
        group: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let landed = conditional_update(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(clock_key(group)))
                .update_expression("SET overflowed = :yes, #expires = :expires")
                .condition_expression("attribute_not_exists(overflowed)")
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
                .send()
        })
        .await?;
        Ok(landed.is_some())
    }

    pub(super) async fn group_member(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.live_item(&Key::group_member(group, connection_id))
            .await?
            .as_ref()
            .map(items::member)
            .transpose()
    }
}
