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

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, KeySchemaElement,
    KeyType, Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::{
    all_shard, Admission, ConnectionRecord, Member, Members, Store, StoreError, ALL_SHARDS,
};

/// An item's attributes, as the SDK gives them.
pub type Item = HashMap<String, AttributeValue>;

/// The TTL attribute of every item (`ttl` itself is a DynamoDB reserved word).
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// Members read ahead of the reader, per partition (about one page).
const PAGE_AHEAD: usize = 1024;
/// How many "all" shards a broadcast reads at once, by default.
const SHARDS_AT_ONCE: usize = 4;
/// BatchWriteItem takes at most this many requests.
const BATCH_LIMIT: usize = 25;
/// Rounds of retrying the items a BatchWriteItem left unprocessed (throttling) before giving up.
const UNPROCESSED_RETRIES: u32 = 6;

/// The connection store over one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    shards_at_once: usize,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            shards_at_once: SHARDS_AT_ONCE,
        }
    }

    /// How many "all" shards a broadcast reads at once (4 by default; fewer for a slow
    /// DynamoDB-compatible server, whose Queries would otherwise time out behind each other).
    pub fn with_read_concurrency(mut self, shards_at_once: usize) -> Self {
        self.shards_at_once = shards_at_once.max(1);
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

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

    /// Creates the table (on-demand, TTL on `expiresAt`) unless it exists. For local runs and
    /// tests; in AWS the template creates it.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        if self.check_table().await.is_ok() {
            return Ok(());
        }
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::Malformed(e.to_string()))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(|e| request_error("CreateTable", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Malformed(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| request_error("UpdateTimeToLive", e))?;
        Ok(())
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(drop)
    }

    /// Changes a connection's uid in one transaction: `own` (its item and its uid binding), then
    /// `expression` on its place in "all" and in each group, which carry the uid for presence.
    async fn change_uid(
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
    async fn delete_keys(&self, keys: Vec<Key>) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_LIMIT) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| -> Result<WriteRequest, StoreError> {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key.item()))
                        .build()
                        .map_err(|e| StoreError::Malformed(e.to_string()))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, _>>()?;
            let mut round = 0;
            while !requests.is_empty() {
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Request {
                        operation: "BatchWriteItem",
                        message: format!(
                            "{} deletes still unprocessed after {round} rounds",
                            requests.len()
                        ),
                    });
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

    async fn query_page(
        &self,
        pk: String,
        after: Option<Item>,
    ) -> Result<(Vec<Member>, Option<Item>), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .projection_expression("connectionId, uid")
            .consistent_read(true)
            .set_exclusive_start_key(after)
            .send()
            .await
            .map_err(|e| request_error("Query", e))?;
        let members = output
            .items()
            .iter()
            .map(member)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((members, output.last_evaluated_key().cloned()))
    }

    /// Every member of one partition, page by page.
    ///
    /// The pages are read by a task of their own, one page ahead of the reader: a Query in
    /// flight is always driven to its end, however slowly the stream is consumed (a fan-out
    /// pushing to 10,000 connections consumes slowly; an unpolled Query would time out).
    fn partition(&self, pk: String) -> BoxStream<'static, Result<Member, StoreError>> {
        let (ahead, mut behind) = tokio::sync::mpsc::channel(PAGE_AHEAD);
        let store = self.clone();
        tokio::spawn(async move {
            let mut after = None;
            loop {
                match store.query_page(pk.clone(), after.take()).await {
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

/// The key of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn connection(connection_id: &str) -> Key {
        Key {
            pk: format!("conn#{connection_id}"),
            sk: "conn".into(),
        }
    }

    pub fn uid_member(uid: &str, connection_id: &str) -> Key {
        Key {
            pk: uid_partition(uid),
            sk: member_sort_key(connection_id),
        }
    }

    pub fn group_member(group: &str, connection_id: &str) -> Key {
        Key {
            pk: group_partition(group),
            sk: member_sort_key(connection_id),
        }
    }

    pub fn all_member(connection_id: &str) -> Key {
        Key {
            pk: all_partition(all_shard(connection_id)),
            sk: member_sort_key(connection_id),
        }
    }

    /// Every key a connection's record accounts for: itself and each set it belongs to.
    pub fn all_of(record: &ConnectionRecord) -> Vec<Key> {
        let id = &record.connection_id;
        let mut keys = vec![Key::all_member(id)];
        keys.extend(record.uid.iter().map(|uid| Key::uid_member(uid, id)));
        keys.extend(
            record
                .groups
                .iter()
                .map(|group| Key::group_member(group, id)),
        );
        keys.push(Key::connection(id));
        keys
    }

    fn item(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

fn uid_partition(uid: &str) -> String {
    format!("uid#{uid}")
}

fn group_partition(group: &str) -> String {
    format!("group#{group}")
}

fn all_partition(shard: u32) -> String {
    format!("all#{shard}")
}

fn member_sort_key(connection_id: &str) -> String {
    format!("conn#{connection_id}")
}

/// The item that puts a connection in a set.
fn member_item(key: Key, record: &ConnectionRecord) -> HashMap<String, AttributeValue> {
    let mut item = key.item();
    item.insert(
        "connectionId".into(),
        AttributeValue::S(record.connection_id.clone()),
    );
    if let Some(uid) = &record.uid {
        item.insert("uid".into(), AttributeValue::S(uid.clone()));
    }
    item.insert(
        TTL_ATTRIBUTE.into(),
        AttributeValue::N(record.expires_at.to_string()),
    );
    item
}

/// The items `$connect` writes for a new connection (its own, its place in "all", its uid
/// binding). Public so that tools can seed a table in bulk (the benchmarks load 100,000).
pub fn new_connection_items(record: &ConnectionRecord) -> Vec<Item> {
    let id = &record.connection_id;
    let mut items = vec![
        connection_item(record),
        member_item(Key::all_member(id), record),
    ];
    if let Some(uid) = &record.uid {
        items.push(member_item(Key::uid_member(uid, id), record));
    }
    items
}

/// The item that puts a connection in a group (what `join` writes beside updating `groups`).
pub fn group_item(group: &str, record: &ConnectionRecord) -> Item {
    member_item(Key::group_member(group, &record.connection_id), record)
}

fn connection_item(record: &ConnectionRecord) -> HashMap<String, AttributeValue> {
    let mut item = member_item(Key::connection(&record.connection_id), record);
    item.insert(
        "connectedAt".into(),
        AttributeValue::N(record.connected_at.to_string()),
    );
    if let Some(ip) = &record.source_ip {
        item.insert("sourceIp".into(), AttributeValue::S(ip.clone()));
    }
    if let Some(agent) = &record.user_agent {
        item.insert("userAgent".into(), AttributeValue::S(agent.clone()));
    }
    if let Some(session) = &record.session {
        item.insert("session".into(), AttributeValue::S(session.clone()));
    }
    if !record.groups.is_empty() {
        item.insert(
            "groups".into(),
            AttributeValue::Ss(record.groups.iter().cloned().collect()),
        );
    }
    item
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Malformed(format!("{name} is missing or not a number")))
}

fn record(item: &HashMap<String, AttributeValue>) -> Result<ConnectionRecord, StoreError> {
    Ok(ConnectionRecord {
        connection_id: string(item, "connectionId")
            .ok_or_else(|| StoreError::Malformed("a connection item has no connectionId".into()))?,
        connected_at: number(item, "connectedAt")?,
        source_ip: string(item, "sourceIp"),
        user_agent: string(item, "userAgent"),
        uid: string(item, "uid"),
        groups: item
            .get("groups")
            .and_then(|v| v.as_ss().ok())
            .map(|groups| groups.iter().cloned().collect())
            .unwrap_or_default(),
        expires_at: number(item, TTL_ATTRIBUTE)?,
        session: string(item, "session"),
    })
}

fn member(item: &HashMap<String, AttributeValue>) -> Result<Member, StoreError> {
    Ok(Member {
        connection_id: string(item, "connectionId")
            .ok_or_else(|| StoreError::Malformed("a member item has no connectionId".into()))?,
        uid: string(item, "uid"),
    })
}

fn request_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Request {
        operation,
        message: DisplayErrorContext(&error).to_string(),
    }
}

fn malformed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(error.to_string())
}

fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(malformed)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// An update of one item's key, as one step of a transaction.
fn update(
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

/// The most items one transaction may write (DynamoDB's limit).
const TRANSACTION_LIMIT: usize = 100;

/// Whether a transaction was cancelled only because a condition did not hold.
fn condition_failed(error: &SdkError<TransactWriteItemsError>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

impl Store for DynamoStore {
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let items = new_connection_items(record)
            .into_iter()
            .map(|item| put(&self.table, item))
            .collect::<Result<_, _>>()?;
        self.transact(items)
            .await
            .map_err(|e| request_error("TransactWriteItems", e))
    }

    async fn connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Key::connection(connection_id).item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| request_error("GetItem", e))?;
        output.item().map(record).transpose()
    }

    async fn remove_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let Some(record) = self.connection(connection_id).await? else {
            return Ok(None);
        };
        // The connection's own item goes last, so that a failure half-way leaves a record that
        // still names the rest, for the next attempt (a 410, or the TTL) to finish.
        self.delete_keys(Key::all_of(&record)).await?;
        Ok(Some(record))
    }

    async fn join(&self, record: &ConnectionRecord, group: &str) -> Result<bool, StoreError> {
        let connection = Key::connection(&record.connection_id);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(connection.item()))
            .update_expression("ADD #groups :group")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_values(":group", AttributeValue::Ss(vec![group.to_owned()]))
            .build()
            .map_err(malformed)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            put(&self.table, group_item(group, record))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(request_error("TransactWriteItems", e)),
        }
    }

    async fn leave(&self, connection_id: &str, group: &str) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Key::connection(connection_id).item()))
            .update_expression("DELETE #groups :group")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_values(":group", AttributeValue::Ss(vec![group.to_owned()]))
            .build()
            .map_err(malformed)?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Key::group_member(group, connection_id).item()))
            .build()
            .map_err(malformed)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(delete).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // The connection is gone: only a stray member item can be left, and it goes too.
            Err(e) if condition_failed(&e) => {
                self.delete_keys(vec![Key::group_member(group, connection_id)])
                    .await
            }
            Err(e) => Err(request_error("TransactWriteItems", e)),
        }
    }

    async fn set_session(&self, connection_id: &str, session: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Key::connection(connection_id).item()))
            .update_expression("SET #session = :session")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#session", "session")
            .expression_attribute_values(":session", AttributeValue::S(session.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(request_error("UpdateItem", e)),
        }
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
                "attribute_exists(pk) AND attribute_not_exists(uid)",
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

    async fn admit(
        &self,
        connection_id: &str,
        window: i64,
        limit: u32,
    ) -> Result<Admission, StoreError> {
        let key = Some(Key::connection(connection_id).item());
        let values = |pairs: &[(&str, String)]| -> Option<HashMap<String, AttributeValue>> {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), AttributeValue::N(v.clone())))
                    .collect(),
            )
        };
        let conditional = |e: &aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        >| {
            e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception())
        };
        // Within the current window and under the limit: count the frame.
        let count = || {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(key.clone())
                .update_expression("SET rateCount = rateCount + :one")
                .condition_expression("rateWindow = :window AND rateCount < :limit")
                .set_expression_attribute_values(values(&[
                    (":one", "1".into()),
                    (":window", window.to_string()),
                    (":limit", limit.to_string()),
                ]))
                .send()
        };
        match count().await {
            Ok(_) => return Ok(Admission::Allowed),
            Err(e) if conditional(&e) => {}
            Err(e) => return Err(request_error("UpdateItem", e)),
        }
        // A new window (or the first frame): start counting again.
        let restarted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(key.clone())
            .update_expression("SET rateWindow = :window, rateCount = :one")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(rateWindow) OR rateWindow < :window)")
            .set_expression_attribute_values(values(&[(":one", "1".into()), (":window", window.to_string())]))
            .send()
            .await;
        match restarted {
            Ok(_) => return Ok(Admission::Allowed),
            Err(e) if conditional(&e) => {}
            Err(e) => return Err(request_error("UpdateItem", e)),
        }
        // The window was started meanwhile: by a concurrent frame, or by this very restart when
        // its answer was lost and the SDK retried it (the retry then fails its own condition).
        // Count against that window once more; only a full window is a limit.
        match count().await {
            Ok(_) => Ok(Admission::Allowed),
            Err(e) if conditional(&e) => match self.connection(connection_id).await? {
                Some(_) => Ok(Admission::Limited),
                None => Ok(Admission::Unknown),
            },
            Err(e) => Err(request_error("UpdateItem", e)),
        }
    }

    fn members<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>> {
        match of {
            Members::Uid(uid) => self.partition(uid_partition(uid)),
            Members::Group(group) => self.partition(group_partition(group)),
            // A few shards at a time, so that a slow server answers each Query well within its
            // timeout; each shard reads ahead on its own, so the pushes stay fed.
            Members::All => stream::iter(0..ALL_SHARDS)
                .map(|shard| self.partition(all_partition(shard)))
                .flatten_unordered(self.shards_at_once)
                .boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConnectionRecord {
        ConnectionRecord {
            connection_id: "c1=".into(),
            connected_at: 1,
            source_ip: None,
            user_agent: None,
            uid: Some("alice".into()),
            groups: ["g1".to_owned(), "g2".to_owned()].into(),
            expires_at: 99,
            session: None,
        }
    }

    #[test]
    fn keys_name_their_set_in_the_partition_and_the_connection_in_the_sort_key() {
        assert_eq!(
            Key::connection("c1="),
            Key {
                pk: "conn#c1=".into(),
                sk: "conn".into()
            }
        );
        assert_eq!(
            Key::uid_member("alice", "c1="),
            Key {
                pk: "uid#alice".into(),
                sk: "conn#c1=".into()
            }
        );
        assert_eq!(
            Key::group_member("g", "c1="),
            Key {
                pk: "group#g".into(),
                sk: "conn#c1=".into()
            }
        );
        assert_eq!(
            Key::all_member("c1=").pk,
            format!("all#{}", all_shard("c1="))
        );
    }

    #[test]
    fn a_record_accounts_for_all_its_items_with_its_own_last() {
        let keys = Key::all_of(&record());
        assert_eq!(keys.len(), 5);
        assert_eq!(keys.last(), Some(&Key::connection("c1=")));
        assert!(keys.contains(&Key::group_member("g2", "c1=")));
        assert!(keys.contains(&Key::uid_member("alice", "c1=")));
    }

    #[test]
    fn a_connection_item_reads_back_as_the_record_it_was_written_from() {
        let mut original = record();
        original.source_ip = Some("192.0.2.1".into());
        original.user_agent = Some("wscat".into());
        original.session = Some(r#"{"cart":3}"#.into());
        assert_eq!(
            super::record(&connection_item(&original)).unwrap(),
            original
        );
    }

    #[test]
    fn every_item_carries_the_ttl() {
        let r = record();
        assert_eq!(
            connection_item(&r).get(TTL_ATTRIBUTE),
            Some(&AttributeValue::N("99".into()))
        );
        assert_eq!(
            member_item(Key::all_member("c1="), &r).get(TTL_ATTRIBUTE),
            Some(&AttributeValue::N("99".into()))
        );
    }
}
