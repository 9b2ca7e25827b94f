//! Reading: a connection's own item, and the members of a set page by page.
//!
//! DynamoDB deletes expired items lazily (within days of `expiresAt`), so every read here skips
//! what has expired: a connection whose `$disconnect` never came stops counting in presence,
//! stops being pushed to, and reads as gone from the moment its TTL passes.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::ending::ENDED_AT;
use super::items::{self, Item, TTL_ATTRIBUTE};
use super::keys::Key;
use super::write::request_error;
use super::DynamoStore;
use crate::store::{now_secs, ConnectionRecord, Member, StoreError};

/// Members read ahead of the reader, per partition (about one page).
const PAGE_AHEAD: usize = 1024;

/// How a set's members are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Every write that succeeded before: what a fan-out and presence events need.
    Consistent,
    /// Half the read units, and a write of the last second may be missing: what a count needs.
    Eventual,
}

impl DynamoStore {
    /// The item at `key`, read consistently, unless it has expired (DynamoDB deletes it days
    /// late).
    pub(super) async fn live_item(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| request_error("GetItem", e))?;
        let now = now_secs();
        Ok(output
            .item
            .filter(|item| items::number(item, TTL_ATTRIBUTE).is_ok_and(|at| at > now)))
    }

    /// The connection's record, unless it has expired or ended (an end under way: its items are
    /// being removed).
    pub(super) async fn live_record(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        self.live_item(&Key::connection(connection_id))
            .await?
            .filter(|item| !item.contains_key(ENDED_AT))
            .as_ref()
            .map(items::record)
            .transpose()
    }

    pub(super) async fn query_page(
        &self,
        pk: String,
        after: Option<Item>,
        limit: Option<i32>,
        read: Read,
    ) -> Result<(Vec<Member>, Option<Item>), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .filter_expression("#expires > :now")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":now", AttributeValue::N(now_secs().to_string()))
            .projection_expression("connectionId, uid, presence")
            .consistent_read(read == Read::Consistent)
            .set_limit(limit)
            .set_exclusive_start_key(after)
            .send()
            .await
            .map_err(|e| request_error("Query", e))?;
        let members = output
            .items()
            .iter()
            .map(items::member)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((members, output.last_evaluated_key().cloned()))
    }

    /// Every live member of one partition, page by page.
    ///
    /// The pages are read by a task of their own, one page ahead of the reader: a Query in
    /// flight is always driven to its end, however slowly the stream is consumed (a fan-out
    /// pushing to 10,000 connections consumes slowly; an unpolled Query would time out).
    pub(super) fn partition(
        &self,
        pk: String,
        read: Read,
    ) -> BoxStream<'static, Result<Member, StoreError>> {
        let (ahead, mut behind) = tokio::sync::mpsc::channel(PAGE_AHEAD);
        let store = self.clone();
        tokio::spawn(async move {
            let mut after = None;
            loop {
                match store
                    .query_page(pk.clone(), after.take(), store.page_items, read)
                    .await
                {
                    Ok((members, next)) => {
                        for member in members {
                            if ahead.send(Ok(member)).await.is_err() {
                                return;
                            }
                        }
                        match next {
                            Some(key) => after = Some(key),
                            None => return,
                        }
                    }
                    Err(e) => {
                        let _ = ahead.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        stream::poll_fn(move |cx| behind.poll_recv(cx)).boxed()
    }
}
