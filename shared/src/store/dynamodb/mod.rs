//! The [`Store`] over DynamoDB (or any DynamoDB-compatible server).
//!
//! Items, all in one table keyed by `pk` (partition) and `sk` (sort):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | the connection | `conn#{id}` | `conn` | connectedAt, sourceIp, userAgent, uid, groups, expiresAt |
//! | its uid binding | `uid#{uid}` | `conn#{id}` | connectionId, expiresAt |
//! | each group it joined | `group#{group}` | `conn#{id}` | connectionId, uid, expiresAt |
//! | its place in "all" | `all#{shard}` | `conn#{id}` | connectionId, uid, expiresAt |
//!
//! Every item carries `expiresAt`, the table's TTL attribute.

mod ending;
mod group_stream;
mod items;
mod jobs;
mod keys;
mod membership;
mod presence;
mod rate_limit;
mod read;
mod seen;
mod table;
use read::Read;
mod write;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, BoxStream, StreamExt};

pub use items::{group_item, new_connection_items, Item, TTL_ATTRIBUTE};
pub use keys::Key;

use super::{
    now_secs, Claim, ConnectionRecord, Ending, Head, Joining, Kept, Member, Members, Position,
    PresenceClock, Store, StoreError, ALL_SHARDS,
};
use items::member_item;
use keys::{all_partition, group_partition, uid_partition};
use write::{malformed, put, request_error, update};

/// The connection store over one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    shards_at_once: usize,
    /// The most members one Query page of a fan-out reads (`None`: DynamoDB's 1 MB pages).
    page_items: Option<i32>,
}

impl DynamoStore {
    /// A store over `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            // All of them, so that a broadcast's reads take one round trip.
            shards_at_once: ALL_SHARDS as usize,
            page_items: None,
        }
    }

    /// Reads the members of a set at most `items` per Query page, not DynamoDB's 1 MB: smaller
    /// pages start a fan-out's pushes sooner, and let a test span pages with a few members.
    pub fn with_page_items(mut self, items: i32) -> Self {
        self.page_items = Some(items.max(1));
        self
    }

    /// How many "all" shards a broadcast reads at once (all of them by default; fewer for a slow
    /// DynamoDB-compatible server, whose Queries would otherwise time out behind each other).
    pub fn with_read_concurrency(mut self, shards_at_once: usize) -> Self {
        self.shards_at_once = shards_at_once.max(1);
        self
    }

    /// The DynamoDB client (for tools and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads the table's description: at init this checks the table exists and opens the
    /// HTTPS connection, so the first event does not pay for the handshake.
    pub async fn check_table(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(drop)
            .map_err(|e| request_error("DescribeTable", e))
    }
}

impl DynamoStore {
    /// Sets the connection's session when `condition` holds (it names the session `#session`;
    /// `values` are its other placeholders); `false` when it did not.
    async fn write_session(
        &self,
        connection_id: &str,
        session: &str,
        condition: &str,
        mut values: HashMap<String, AttributeValue>,
    ) -> Result<bool, StoreError> {
        values.insert(":session".to_owned(), AttributeValue::S(session.to_owned()));
        let updated = write::conditional_update(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Key::connection(connection_id).item()))
                .update_expression("SET #session = :session")
                .condition_expression(condition)
                .expression_attribute_names("#session", "session")
                .set_expression_attribute_values(Some(values.clone()))
                .send()
        })
        .await?;
        Ok(updated.is_some())
    }
}

impl Store for DynamoStore {
    /// One BatchWriteItem of plain puts, not a transaction: at half the write units, and a
    /// `$connect` that fails takes back whatever landed (the handler does), so all-or-nothing
    /// holds without one. The items are new, so nothing can conflict with them.
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.put_items(new_connection_items(record)).await
    }

    async fn connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        self.live_record(connection_id).await
    }

    async fn forget(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.delete_keys(Key::all_of(record)).await
    }

    async fn remove_stray(
        &self,
        of: Members<'_>,
        connection_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.remove_stray(of, connection_id).await
    }

    async fn end_connection(
        &self,
        connection_id: &str,
        recorded_before: Option<i64>,
    ) -> Result<Ending, StoreError> {
        self.end(connection_id, recorded_before).await
    }

    async fn remove_ended(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.remove_ended(record).await
    }

    async fn join(
        &self,
        record: &ConnectionRecord,
        group: &str,
        presence: bool,
        max_groups: usize,
    ) -> Result<Joining, StoreError> {
        self.join_group(record, group, presence, max_groups).await
    }

    async fn leave(&self, connection_id: &str, group: &str) -> Result<bool, StoreError> {
        self.leave_group(connection_id, group).await
    }

    async fn set_session(&self, connection_id: &str, session: &str) -> Result<bool, StoreError> {
        self.write_session(
            connection_id,
            session,
            "attribute_exists(pk) AND attribute_not_exists(endedAt)",
            HashMap::new(),
        )
        .await
    }

    async fn claim_job(
        &self,
        job: &str,
        lease_until: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        self.claim_job_in(job, lease_until, expires_at).await
    }

    async fn finish_job(&self, job: &str, expires_at: i64) -> Result<(), StoreError> {
        self.finish_job_in(job, expires_at).await
    }

    async fn mark_opened(&self, connection_id: &str) -> Result<bool, StoreError> {
        // The call's own token: an SDK retry of a write whose answer was lost still finds it
        // won, where a second delivery of the same event (another call) is refused.
        let values = HashMap::from([
            (":now".to_owned(), AttributeValue::N(now_secs().to_string())),
            (":by".to_owned(), AttributeValue::S(ending::token())),
        ]);
        let marked = write::conditional_update(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Key::connection(connection_id).item()))
                .update_expression("SET openedAt = :now, openedBy = :by")
                .condition_expression(
                    "attribute_exists(pk) AND attribute_not_exists(endedAt) \
                     AND (attribute_not_exists(openedAt) OR openedBy = :by) AND #expires > :now",
                )
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .set_expression_attribute_values(Some(values.clone()))
                .send()
        })
        .await?;
        Ok(marked.is_some())
    }

    async fn swap_session(
        &self,
        connection_id: &str,
        expected: Option<&str>,
        session: &str,
    ) -> Result<bool, StoreError> {
        let mut values = HashMap::new();
        let condition = match expected {
            Some(old) => {
                values.insert(":expected".to_owned(), AttributeValue::S(old.to_owned()));
                "attribute_exists(pk) AND attribute_not_exists(endedAt) AND #session = :expected"
            }
            None => "attribute_exists(pk) AND attribute_not_exists(endedAt) AND attribute_not_exists(#session)",
        };
        self.write_session(connection_id, session, condition, values)
            .await
    }

    async fn bind_uid(&self, record: &ConnectionRecord, uid: &str) -> Result<bool, StoreError> {
        let id = &record.connection_id;
        let value = Some(HashMap::from([(
            ":uid".to_owned(),
            AttributeValue::S(uid.to_owned()),
        )]));
        let mut bound = record.clone();
        bound.uid = Some(uid.to_owned());
        let own = vec![
            update(
                &self.table,
                &Key::connection(id),
                "SET uid = :uid",
                "attribute_exists(pk) AND attribute_not_exists(endedAt) AND attribute_not_exists(uid)",
                value.clone(),
            )?,
            put(&self.table, member_item(Key::uid_member(uid, id), &bound))?,
        ];
        self.change_uid(record, own, "SET uid = :uid", value).await
    }

    async fn unbind_uid(&self, record: &ConnectionRecord) -> Result<bool, StoreError> {
        let Some(uid) = &record.uid else {
            return Ok(false);
        };
        let id = &record.connection_id;
        let value = Some(HashMap::from([(
            ":uid".to_owned(),
            AttributeValue::S(uid.clone()),
        )]));
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Key::uid_member(uid, id).item()))
            .build()
            .map_err(malformed)?;
        let own = vec![
            update(
                &self.table,
                &Key::connection(id),
                "REMOVE uid",
                "uid = :uid",
                value,
            )?,
            TransactWriteItem::builder().delete(delete).build(),
        ];
        self.change_uid(record, own, "REMOVE uid", None).await
    }

    async fn remember_signature(
        &self,
        signature: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.remember_signature_in(signature, expires_at).await
    }

    async fn count_frame(
        &self,
        connection_id: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<u64, StoreError> {
        self.count_frame_in(connection_id, window, expires_at).await
    }

    async fn advance(
        &self,
        group: &str,
        epoch: &str,
        expires_at: i64,
    ) -> Result<Position, StoreError> {
        self.advance_stream(group, epoch, expires_at).await
    }

    async fn keep(
        &self,
        group: &str,
        at: &Position,
        frame: Option<&str>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.keep_message(group, at, frame, expires_at).await
    }

    async fn position(&self, group: &str) -> Result<Option<Head>, StoreError> {
        self.stream_position(group).await
    }

    async fn history(
        &self,
        group: &str,
        head: &Position,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Kept>, bool), StoreError> {
        self.kept_after(group, head, after, max_bytes).await
    }

    async fn tick_presence(
        &self,
        group: &str,
        expires_at: i64,
    ) -> Result<PresenceClock, StoreError> {
        self.tick_presence(group, expires_at).await
    }

    async fn clear_overflow(&self, group: &str) -> Result<(), StoreError> {
        self.clear_overflow(group).await
    }

    async fn claim_overflow(&self, group: &str, expires_at: i64) -> Result<bool, StoreError> {
        self.claim_overflow(group, expires_at).await
    }

    async fn group_member(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.group_member(group, connection_id).await
    }

    async fn members_up_to(
        &self,
        of: Members<'_>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let partition = match of {
            Members::Group(group) => group_partition(group),
            Members::Uid(uid) => uid_partition(uid),
            // Spread over shards: read them in turn until enough.
            Members::All => {
                return futures_util::TryStreamExt::try_collect(self.members(of).take(limit)).await
            }
        };
        let mut members = Vec::new();
        let mut after = None;
        // Pages of `limit` items, not of what is still missing: expired items are filtered out
        // after the limit applies, and asking for the few missing ones would take a round trip
        // per expired item (they linger for days of TTL lag).
        let page = i32::try_from(limit).unwrap_or(i32::MAX);
        while members.len() < limit {
            let (found, next) = self
                .query_page(partition.clone(), after, Some(page), Read::Consistent)
                .await?;
            members.extend(found);
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        members.truncate(limit);
        Ok(members)
    }

    fn members<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>> {
        self.members_read(of, Read::Consistent)
    }

    fn census<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>> {
        self.members_read(of, Read::Eventual)
    }
}

impl DynamoStore {
    fn members_read<'a>(
        &'a self,
        of: Members<'a>,
        read: Read,
    ) -> BoxStream<'a, Result<Member, StoreError>> {
        match of {
            Members::Uid(uid) => self.partition(uid_partition(uid), read),
            Members::Group(group) => self.partition(group_partition(group), read),
            // Every shard at once (unless told fewer, for a slow server): one round trip for any
            // audience a page per shard holds; each shard reads ahead on its own, so the pushes
            // stay fed.
            Members::All => stream::iter(0..ALL_SHARDS)
                .map(move |shard| self.partition(all_partition(shard), read))
                .flatten_unordered(self.shards_at_once)
                .boxed(),
        }
    }
}
