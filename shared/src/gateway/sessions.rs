//! GatewayWorker's session calls on the [`Gateway`], another connection's `$_SESSION`.

use std::collections::BTreeMap;
use std::future::ready;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::error::Error;
use crate::gateway::rate_limit::{self};
use crate::gateway::session::{self, Session};
use crate::push::Push;
use crate::store::{Store, StoreError};

use super::*;

/// Read-merge-write rounds of one session update before giving up to others changing it.
const SESSION_ATTEMPTS: u32 = 16;

/// GatewayWorker's session calls (`getSession`, `setSession`, `updateSession`, …).
impl<S: Store, P: Push> Gateway<S, P> {
    /// getSession: the connection's session, `None` when it has none or is gone.
    pub async fn session(&self, connection_id: &str) -> Result<Option<serde_json::Value>, Error> {
        let Some(record) = self.store.connection(connection_id).await? else {
            return Ok(None);
        };
        record
            .session
            .map(|text| {
                serde_json::from_str(&text)
                    .map_err(|e| Error::Store(StoreError::Malformed(e.to_string())))
            })
            .transpose()
    }

    /// setSession: replaces the session; `false` when the connection is gone.
    pub async fn set_session(
        &self,
        connection_id: &str,
        session: &serde_json::Value,
    ) -> Result<bool, Error> {
        rate_limit::admitted().await?;
        Ok(self
            .store
            .set_session(connection_id, &session.to_string())
            .await?)
    }

    /// updateSession: merges `changes` into the session as PHP does (`array_replace_recursive`:
    /// objects key by key, lists index by index); `false` when the connection is gone.
    pub async fn update_session(
        &self,
        connection_id: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<bool, Error> {
        self.change_session(connection_id, &session::Change::merge(changes.clone()))
            .await
    }

    /// Applies `change` to the session as it is now; `false` when the connection is gone. Read,
    /// apply, and write only if the session is still what was read, again while others change it
    /// meanwhile: two concurrent changes lose neither's keys (optimistic concurrency, rather than a
    /// write per key, because a session is one JSON value that `setSession` replaces whole).
    pub async fn change_session(
        &self,
        connection_id: &str,
        change: &session::Change,
    ) -> Result<bool, Error> {
        rate_limit::admitted().await?;
        for attempt in 1..=SESSION_ATTEMPTS {
            let Some(record) = self.store.connection(connection_id).await? else {
                return Ok(false);
            };
            let mut session = session::parse(record.session.as_deref())?;
            change.apply(&mut session);
            let merged = serde_json::Value::Object(session).to_string();
            if self
                .store
                .swap_session(connection_id, record.session.as_deref(), &merged)
                .await?
            {
                return Ok(true);
            }
            // Another change won this round: wait a random while, so that the losers of a burst
            // spread out instead of meeting again.
            tokio::time::sleep(crate::jitter::pause(attempt)).await;
        }
        Err(Error::Store(StoreError::Request {
            operation: "UpdateItem",
            message: format!(
                "the session of {connection_id} changed under {SESSION_ATTEMPTS} updates in a row"
            ),
        }))
    }

    /// getClientSessionsByGroup: each member's session by connection id (empty when it has none).
    /// One consistent read per member, a few at a time; a member gone meanwhile is left out.
    pub async fn client_sessions_by_group(
        &self,
        group: &str,
    ) -> Result<BTreeMap<String, Session>, Error> {
        rate_limit::admitted().await?;
        let members = self.client_ids_by_group(group).await?;
        stream::iter(members)
            .map(|connection_id| async move {
                let record = self.store.connection(&connection_id).await?;
                record
                    .map(|r| Ok((connection_id, session::parse(r.session.as_deref())?)))
                    .transpose()
            })
            .buffer_unordered(self.config.push_concurrency.max(1))
            .try_filter_map(|member| ready(Ok(member)))
            .try_collect()
            .await
    }
}
