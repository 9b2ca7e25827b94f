//! A [`Store`] that counts the items it reads, to show what a send costs in DynamoDB reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::stream::{BoxStream, StreamExt};
use shared::store::{
    Admission, ConnectionRecord, Kept, Member, Members, Position, Store, StoreError,
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

    async fn forget(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.inner.forget(record).await
    }

    async fn remove_member(&self, of: Members<'_>, connection_id: &str) -> Result<(), StoreError> {
        self.inner.remove_member(of, connection_id).await
    }

    async fn remove_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        self.inner.remove_connection(connection_id).await
    }

    async fn join(
        &self,
        record: &ConnectionRecord,
        group: &str,
        presence: bool,
    ) -> Result<bool, StoreError> {
        self.inner.join(record, group, presence).await
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
        offset: u64,
        frame: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.inner.keep(group, offset, frame, expires_at).await
    }

    async fn position(&self, group: &str) -> Result<Option<Position>, StoreError> {
        let position = self.inner.position(group).await?;
        self.items_read
            .fetch_add(usize::from(position.is_some()), Ordering::SeqCst);
        Ok(position)
    }

    async fn history(
        &self,
        group: &str,
        after: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Kept>, bool), StoreError> {
        let (kept, more) = self.inner.history(group, after, max_bytes).await?;
        self.items_read.fetch_add(kept.len(), Ordering::SeqCst);
        Ok((kept, more))
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

    async fn admit(
        &self,
        connection_id: &str,
        window: i64,
        limit: u32,
    ) -> Result<Admission, StoreError> {
        self.inner.admit(connection_id, window, limit).await
    }

    async fn group_members_up_to(
        &self,
        group: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let members = self.inner.group_members_up_to(group, limit).await?;
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
}
