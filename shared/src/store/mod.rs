//! Connection facts: what the service knows about each connection, and the sets it belongs to.
//!
//! The [`Store`] trait is the seam between the handlers and DynamoDB ([`dynamodb::DynamoStore`]).
//! The table is a single-table design (see `docs/table-design.md`): a connection's own item holds
//! its record, and one small item per set it belongs to (its uid, each group, a shard of "all")
//! lives under that set's partition key, so every send reads only the partitions it targets.

pub mod dynamodb;
mod error;

pub use error::StoreError;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::BoxStream;

/// A place in a group's stream: its epoch, and the offset of a message in it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Position {
    /// The stream's epoch: a new one when its head was lost and started again.
    pub epoch: String,
    /// The message's offset in the epoch, from 1.
    pub offset: u64,
}

/// How many partitions the set of all connections is spread over. Each `$connect` and
/// `$disconnect` writes to one of them, and a broadcast reads all of them at once.
///
/// Two, by DynamoDB's limits and by measurement: one partition key takes about 1,000 write units
/// a second, and API Gateway's default of 500 new connections a second, plus as many
/// disconnects, then uses half of each shard's; a broadcast reads both in one round trip, and
/// each shard more is one Query more per broadcast, billed and (on moto) slower: a broadcast to
/// 1,000 clients took 655 ms with 4 shards and 509 ms with 2 (BENCHMARKS.md). Changing it
/// strands the "all" items of live connections until their TTL: change it only while no one is
/// connected.
pub const ALL_SHARDS: u32 = 2;

/// What the service records about one connection, from `$connect` to `$disconnect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// API Gateway's id of the connection.
    pub connection_id: String,
    /// Epoch milliseconds, as API Gateway gives it.
    pub connected_at: i64,
    /// The client's address at its handshake.
    pub source_ip: Option<String>,
    /// The handshake's `User-Agent`.
    pub user_agent: Option<String>,
    /// The uid bound at `$connect`, for the connection's whole life.
    pub uid: Option<String>,
    /// The groups it is in.
    pub groups: BTreeSet<String>,
    /// Epoch seconds after which DynamoDB may delete every item of this connection.
    pub expires_at: i64,
    /// Server-side session data (GatewayWorker's `$_SESSION`), as JSON text; it lives and dies
    /// with the connection's own item.
    pub session: Option<String>,
}

/// One member of a set of connections: enough to push to it and to count its uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's connection.
    pub connection_id: String,
    /// Its uid, when it has one.
    pub uid: Option<String>,
    /// It joined this group with `"presence":true`: it is told of joins and leaves.
    pub presence: bool,
}

/// A set of connections that can be read without touching any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Members<'a> {
    /// The connections of a uid.
    Uid(&'a str),
    /// The members of a group.
    Group(&'a str),
    /// Every connection.
    All,
}

/// A place in a group's stream, as history reads it: the message kept there (the frame as it was
/// delivered), or `None` for an offset whose send failed before keeping it — delivered to nobody,
/// skipped by history. An expired message is read too (`expired`), to tell one that aged out
/// (lost) from one not kept yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Its offset in the stream.
    pub offset: u64,
    /// The frame as delivered; `None` for a skipped offset.
    pub frame: Option<String>,
    /// When it was kept (epoch milliseconds).
    pub kept_at: i64,
    /// Past its TTL: aged out of the window (DynamoDB deletes it days later), no longer had.
    pub expired: bool,
}

/// A group stream's head: where it is, and when its last offset was taken (epoch milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The stream's epoch and its last offset.
    pub position: Position,
    /// When the last offset was taken (epoch milliseconds).
    pub taken_at: i64,
}

/// What came of a join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joining {
    /// It is a member now (or was already).
    Joined,
    /// The connection is in as many groups as it may be.
    Full,
    /// The connection no longer exists, or its end is under way.
    Gone,
}

/// A group's presence clock, as a tick left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceClock {
    /// The group's presence version after the tick.
    pub version: u64,
    /// Its followers were told it outgrew the presence limit.
    pub overflowed: bool,
}

/// What came of trying to end a connection ([`Store::end_connection`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// This call ended it: its record as it was, to remove, announce and close.
    Ended(ConnectionRecord),
    /// Recorded too recently to end: its `$connect` may still be running.
    TooRecent,
    /// Another call ended it (or it was never recorded); `left` while its record is still there,
    /// marked ended, as that call removes it (or failed to).
    EndedElsewhere {
        /// The record, while it is still there.
        left: Option<Left>,
    },
}

/// What came of claiming a fan-out job ([`Store::claim_job`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This call runs it.
    Claimed,
    /// Another call holds it (its lease has not run out): it may still finish it.
    Running,
    /// It was done: a second delivery, to drop.
    Done,
}

/// A record another call ended and has not removed (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Left {
    /// The record, marked ended.
    pub record: ConnectionRecord,
    /// When it was ended (epoch milliseconds).
    pub ended_at: i64,
}

/// The connection facts, as the handlers need them.
pub trait Store: Send + Sync {
    /// Records a new connection and its uid binding. On an error, any part of it may have
    /// landed: the caller takes it back with [`Store::forget`].
    fn put_connection(
        &self,
        record: &ConnectionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The connection's record, read consistently, or `None` once it is gone.
    fn connection(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<Option<ConnectionRecord>, StoreError>> + Send;

    /// Deletes every item `record` names, without reading anything: what a failed
    /// [`Store::put_connection`] may have left, whichever of its items landed. Safe to repeat.
    fn forget(
        &self,
        record: &ConnectionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the item that puts the connection in `of`, if it is still there: the member as it
    /// was when this call deleted it, `None` when another call did (only the deleter announces).
    fn remove_stray(
        &self,
        of: Members<'_>,
        connection_id: &str,
    ) -> impl Future<Output = Result<Option<Member>, StoreError>> + Send;

    /// Ends the connection, once however many calls try at once: a conditional write on its
    /// record decides which one ends it ([`Ending::Ended`]; the caller then removes its items
    /// with [`Store::remove_ended`]). `recorded_before` (epoch milliseconds): end it only if it
    /// was recorded before then.
    fn end_connection(
        &self,
        connection_id: &str,
        recorded_before: Option<i64>,
    ) -> impl Future<Output = Result<Ending, StoreError>> + Send;

    /// Deletes the items of an ended record: its member items, then the record. Safe to repeat.
    fn remove_ended(
        &self,
        record: &ConnectionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds the connection to `group`, following its joins and leaves when `presence`, unless it
    /// is already in `max_groups` others.
    fn join(
        &self,
        record: &ConnectionRecord,
        group: &str,
        presence: bool,
        max_groups: usize,
    ) -> impl Future<Output = Result<Joining, StoreError>> + Send;

    /// Takes the connection out of `group`; whether it was in it (leaving a group one is not in
    /// is not an error, but nobody is told of it).
    fn leave(
        &self,
        connection_id: &str,
        group: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Remembers a server API request's signature until `expires_at` (epoch seconds): `true` the
    /// first time, `false` when it was seen before (a replay).
    fn remember_signature(
        &self,
        signature: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks the connection opened (its `on_open` run); `true` for the one call that marks it,
    /// `false` when it was marked before, has ended, or is not (or no longer) recorded. An
    /// asynchronous invocation may be delivered twice: the mark keeps `on_open` to once.
    fn mark_opened(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Claims fan-out job `job` until `lease_until` (epoch milliseconds): unless it is done, or
    /// another call's lease on it has not run out. One conditional write; the item expires at
    /// `expires_at` (epoch seconds).
    fn claim_job(
        &self,
        job: &str,
        lease_until: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks fan-out job `job` done, so that a second delivery of it is dropped.
    fn finish_job(
        &self,
        job: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the connection's session; `false` when the connection no longer exists.
    fn set_session(
        &self,
        connection_id: &str,
        session: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces the connection's session only if it is still `expected` (`None`: it has none);
    /// `false` when it changed meanwhile or the connection is gone. The write that makes
    /// read-merge-write sessions safe when two frames or backends change one at once.
    fn swap_session(
        &self,
        connection_id: &str,
        expected: Option<&str>,
        session: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Binds `uid` to a connection that has none; `false` when the connection no longer exists
    /// or already has a uid.
    fn bind_uid(
        &self,
        record: &ConnectionRecord,
        uid: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the connection's uid binding; `false` when it had none (or is gone).
    fn unbind_uid(
        &self,
        record: &ConnectionRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one frame of the connection in the rate-limit window starting at `window` (epoch
    /// seconds): the window's count with this frame. One unconditional write of a small item
    /// that expires at `expires_at`.
    fn count_frame(
        &self,
        connection_id: &str,
        window: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Takes the next offset of `group`'s stream, starting the stream with `epoch` when it has
    /// none: one atomic write, so that concurrent senders never share or skip an offset.
    fn advance(
        &self,
        group: &str,
        epoch: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// Keeps a message of `group`'s stream at `at`, as delivered, until `expires_at`; `None`
    /// marks the offset skipped (its send failed before keeping it).
    fn keep(
        &self,
        group: &str,
        at: &Position,
        frame: Option<&str>,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Where `group`'s stream is, if it has one.
    fn position(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Option<Head>, StoreError>> + Send;

    /// The places of `head`'s epoch after `after` and up to the head, oldest first, their frames
    /// adding up to at most `max_bytes` (at least one, if any); whether more follow.
    fn history(
        &self,
        group: &str,
        head: &Position,
        after: u64,
        max_bytes: usize,
    ) -> impl Future<Output = Result<(Vec<Kept>, bool), StoreError>> + Send;

    /// Takes the next version of `group`'s presence events (protocol: "Presence events").
    fn tick_presence(
        &self,
        group: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<PresenceClock, StoreError>> + Send;

    /// Forgets that `group`'s followers were told it overflowed (it is within the limit again).
    fn clear_overflow(&self, group: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that `group`'s followers are being told it overflowed; `false` when another call
    /// already did (they are told once).
    fn claim_overflow(
        &self,
        group: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The connection's membership of `group`, read consistently, unless it has expired.
    fn group_member(
        &self,
        group: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<Option<Member>, StoreError>> + Send;

    /// The members of a set, read page by page as the stream is polled, so that memory stays flat
    /// however large the set is.
    fn members<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>>;

    /// [`Store::members`] for a count (`presence`): eventually consistent, so half the read
    /// units, and a change of the last second may be missing from it.
    fn census<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>>;

    /// The first `limit` live members of a set (all when it has fewer), reading no more than
    /// that: presence events need only know whether a group is within its limit, the authorizer
    /// whether a uid is at its cap, and a Query without a limit would read (and bill) a whole
    /// page of a large set.
    fn members_up_to(
        &self,
        of: Members<'_>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;
}

/// Which "all" partition a connection belongs to: a stable FNV-1a hash of its id, so that
/// `$disconnect` finds the item `$connect` wrote without reading anything.
pub fn all_shard(connection_id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in connection_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % ALL_SHARDS
}

/// Epoch seconds at which an item written now should expire.
pub fn expiry_from_now(ttl: Duration) -> i64 {
    now_secs() + ttl.as_secs() as i64
}

/// Epoch seconds now: what `expiresAt` is compared with.
pub fn now_secs() -> i64 {
    now_millis() / 1000
}

/// Epoch milliseconds now, as API Gateway gives `connectedAt`.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// A record with a uid and two groups, for the store's unit tests.
#[cfg(test)]
pub(crate) fn sample_record() -> ConnectionRecord {
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

#[cfg(test)]
mod tests;
