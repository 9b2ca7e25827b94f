//! A [`Store`] that counts the items it reads, to show what a send costs in DynamoDB reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::stream::{BoxStream, StreamExt};
use shared::store::{
    Claim, ConnectionRecord, Ending, Head, Joining, Kept, Member, Members, Position, PresenceClock,
    Store, StoreError,
};

pub struct CountingStore<S> {
    pub inner: S,
    pub items_read: Arc<AtomicUsize>,
}

impl<S> CountingStore<S> {
    pub fn take(&self) -> usize {
        self.items_read.swap(0, Ordering::SeqCst)
    }
}

impl<S: Store> Store for CountingStore<S> {
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.inner.put_connection(record).await
    }

    async fn connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let record = self.inner.connection(connection_id).await?;
        self.items_read
            .fetch_add(usize::from(record.is_some()), Ordering::SeqCst);
        Ok(record)
    }

    async fn remember_signature(
        &self,
        signature: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner.remember_signature(signature, expires_at).await
    }

    async fn claim_job(
        &self,
        job: &str,
        lease_until: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        self.inner.claim_job(job, lease_until, expires_at).await
    }

    async fn finish_job(&self, job: &str, expires_at: i64) -> Result<(), StoreError> {
        self.inner.finish_job(job, expires_at).await
    }

    async fn mark_opened(&self, connection_id: &str) -> Result<bool, StoreError> {
        self.inner.mark_opened(connection_id).await
    }

    async fn forget(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.inner.forget(record).await
    }

    async fn remove_stray(
        &self,
        of: Members<'_>,
        connection_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.inner.remove_stray(of, connection_id).await
    }

    async fn end_connection(
        &self,
        connection_id: &str,
        recorded_before: Option<i64>,
    ) -> Result<Ending, StoreError> {
        self.inner
            .end_connection(connection_id, recorded_before)
            .await
    }

    async fn remove_ended(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.inner.remove_ended(record).await
    }

    async fn join(
        &self,
        record: &ConnectionRecord,
        group: &str,
        presence: bool,
        max_groups: usize,
    ) -> Result<Joining, StoreError> {
        self.inner.join(record, group, presence, max_groups).await
    }

    async fn advance(
        &self,
        group: &str,
        epoch: &str,
        expires_at: i64,
    ) -> Result<Position, StoreError> {
        self.inner.advance(group, epoch, expires_at).await
    }

    async fn keep(
        &self,
        group: &str,
        at: &Position,
        frame: Option<&str>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.inner.keep(group, at, frame, expires_at).await
    }

    async fn position(&self, group: &str) -> Result<Option<Head>, StoreError> {
        let head = self.inner.position(group).await?;
        self.items_read
            .fetch_add(usize::from(head.is_some()), Ordering::SeqCst);
        Ok(head)
    }

    async fn history(
        &self,
        group: &str,
        head: &Position,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Kept>, bool), StoreError> {
        let (kept, more) = self.inner.history(group, head, after, max_bytes).await?;
        self.items_read.fetch_add(kept.len(), Ordering::SeqCst);
        Ok((kept, more))
    }

    async fn tick_presence(
        &self,
        group: &str,
        expires_at: i64,
    ) -> Result<PresenceClock, StoreError> {
        self.inner.tick_presence(group, expires_at).await
    }

    async fn clear_overflow(&self, group: &str) -> Result<(), StoreError> {
        self.inner.clear_overflow(group).await
    }

    async fn claim_overflow(&self, group: &str, expires_at: i64) -> Result<bool, StoreError> {
        self.inner.claim_overflow(group, expires_at).await
    }

    async fn group_member(
        &self,
        group: &str,
        connection_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        let member = self.inner.group_member(group, connection_id).await?;
        self.items_read
            .fetch_add(usize::from(member.is_some()), Ordering::SeqCst);
        Ok(member)
    }

    async fn leave(&self, connection_id: &str, group: &str) -> Result<bool, StoreError> {
        self.inner.leave(connection_id, group).await
    }

    async fn set_session(&self, connection_id: &str, session: &str) -> Result<bool, StoreError> {
        self.inner.set_session(connection_id, session).await
    }

    async fn swap_session(
        &self,
        connection_id: &str,
        expected: Option<&str>,
        session: &str,
    ) -> Result<bool, StoreError> {
        self.inner
            .swap_session(connection_id, expected, session)
            .await
    }

    async fn bind_uid(&self, record: &ConnectionRecord, uid: &str) -> Result<bool, StoreError> {
        self.inner.bind_uid(record, uid).await
    }

    async fn unbind_uid(&self, record: &ConnectionRecord) -> Result<bool, StoreError> {
        self.inner.unbind_uid(record).await
    }

    async fn count_frame(
        &self,
        connection_id: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<u64, StoreError> {
        self.inner
            .count_frame(connection_id, window, expires_at)
            .await
    }

    async fn members_up_to(
        &self,
        of: Members<'_>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let members = self.inner.members_up_to(of, limit).await?;
        self.items_read.fetch_add(members.len(), Ordering::SeqCst);
        Ok(members)
    }

    fn members<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>> {
        let counter = self.items_read.clone();
        self.inner
            .members(of)
            .inspect(move |item| {
                if item.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
            .boxed()
    }

    fn census<'a>(&'a self, of: Members<'a>) -> BoxStream<'a, Result<Member, StoreError>> {
        let counter = self.items_read.clone();
        self.inner
            .census(of)
            .inspect(move |item| {
                if item.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
            .boxed()
    }
}
