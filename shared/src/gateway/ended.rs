//! A connection's end, decided once (protocol: "State and lifetime", "Presence events").
//!
//! Its `$disconnect`, a 410 that any push meets, and a kick may each end a connection, and
//! several may at once: two senders pushing to the same vanished member, a prune racing the
//! `$disconnect`. All go through [`Gateway::end`]. The store's conditional write picks the one
//! call that ends it; only that call announces its leaves and has the application's `on_close`
//! run — once per connection, with its uid, groups and session as they were.
//!
//! `on_close` runs in the functions, which hold the application: an end found while a hook or a
//! command runs (a prune during a fan-out, a kick) is collected here, per invocation, and the
//! handler closes each one once the event is handled ([`closing`]). A backend (the library
//! without the functions, `gateway-client`) has no application to close with: a 410 it meets
//! still ends the connection and announces it, but runs no `on_close` (logged), and its kicks
//! only ask API Gateway to close the connection, leaving the end to the `$disconnect` that
//! follows — or, if that never comes, to the next function that pushes to it and meets its 410,
//! or to the TTL.

use std::cell::RefCell;
use std::future::Future;

use futures_util::stream::{self, StreamExt};

use crate::gateway::frames::PresenceChange;
use crate::gateway::presence::Subject;
use crate::gateway::Gateway;
use crate::push::Push;
use crate::store::{now_millis, ConnectionRecord, Ending, Members, Store};

/// What ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Its `$disconnect`, with the close code API Gateway gave.
    Disconnect {
        /// The WebSocket close code, when API Gateway gave one.
        close_code: Option<i64>,
    },
    /// A push was answered 410: API Gateway no longer has it.
    Gone,
    /// The server closed it (`close_client`, `kick_uid`).
    Kicked,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Disconnect { .. } => "disconnect",
            Cause::Gone => "gone",
            Cause::Kicked => "kicked",
        }
    }
}

/// A connection this invocation ended, for the application's `on_close`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// Its record as it was when it ended.
    pub record: ConnectionRecord,
    /// What ended it.
    pub cause: Cause,
}

/// How long after an end its record may still stand before a call that meets it finishes the
/// removal: the ending call removes its items within milliseconds, or at the latest within its
/// function's timeout (29 s).
const STALE_END_MS: i64 = 60_000;

tokio::task_local! {
    /// The connections ended during this invocation, waiting for `on_close`.
    static ENDED: RefCell<Vec<Closed>>;
}

/// Runs `work` as a function runs an event: the connections it ends are collected, returned
/// beside its output for the application to close. Outside such a scope (a backend), ends are
/// announced but nobody closes them.
pub async fn closing<F: Future>(work: F) -> (F::Output, Vec<Closed>) {
    ENDED
        .scope(RefCell::new(Vec::new()), async move {
            let output = work.await;
            let ended = ENDED.with(|ended| ended.take());
            (output, ended)
        })
        .await
}

/// Whether this invocation ended `connection_id` (a push to it met 410, a kick).
pub fn ended_here(connection_id: &str) -> bool {
    ENDED
        .try_with(|ended| {
            ended
                .borrow()
                .iter()
                .any(|closed| closed.record.connection_id == connection_id)
        })
        .unwrap_or(false)
}

/// Whether this code runs inside a function's [`closing`] scope.
pub fn can_close() -> bool {
    ENDED.try_with(|_| ()).is_ok()
}

impl<S: Store, P: Push> Gateway<S, P> {
    /// Ends the connection unless another call already did: removes its items, tells the
    /// followers of its groups (through `endpoint`, when there is one) and queues it for
    /// `on_close`. A 410 (`Cause::Gone`) spares a connection recorded within the connect grace:
    /// API Gateway answers 410 to pushes that reach a connection before its handshake completes.
    /// Returns what came of it ([`Ending::Ended`] with the record when this call ended it), or
    /// `None` when the store failed (logged; the TTL removes the records).
    pub async fn end(
        &self,
        endpoint: Option<&str>,
        connection_id: &str,
        cause: Cause,
    ) -> Option<Ending> {
        let recorded_before = (cause == Cause::Gone)
            .then(|| now_millis() - self.config.connect_grace.as_millis() as i64);
        let record = match self
            .store
            .end_connection(connection_id, recorded_before)
            .await
        {
            Ok(Ending::Ended(record)) => record,
            Ok(Ending::TooRecent) => {
                tracing::info!(
                    gone = connection_id,
                    "410 for a connection whose $connect may still be running: its records stay"
                );
                return Some(Ending::TooRecent);
            }
            Ok(Ending::EndedElsewhere { left: Some(left) })
                if now_millis() - left.ended_at > STALE_END_MS =>
            {
                // The call that ended it did not finish removing it (its store failed, or its
                // function timed out): finish the removal, announcing nothing (it was announced).
                tracing::info!(
                    connection = connection_id,
                    cause = cause.as_str(),
                    "an end left unfinished: removing what its record names"
                );
                if let Err(e) = self.store.remove_ended(&left.record).await {
                    tracing::warn!(
                        connection = connection_id,
                        error = %e,
                        "the unfinished end could not be finished; the TTL will",
                    );
                }
                return Some(Ending::EndedElsewhere { left: Some(left) });
            }
            Ok(ending) => {
                tracing::debug!(
                    connection = connection_id,
                    cause = cause.as_str(),
                    "already ended by another call"
                );
                return Some(ending);
            }
            Err(e) => {
                tracing::error!(
                    connection = connection_id,
                    cause = cause.as_str(),
                    error = %e,
                    "the connection could not be ended; the TTL will remove its records",
                );
                return None;
            }
        };
        // Won: whatever befalls the removal, the end is this call's to announce and to close.
        match self.store.remove_ended(&record).await {
            Ok(()) => tracing::info!(
                connection = connection_id,
                cause = cause.as_str(),
                groups = record.groups.len(),
                "connection ended: its records were removed"
            ),
            Err(e) => tracing::error!(
                connection = connection_id,
                cause = cause.as_str(),
                error = %e,
                "connection ended, but its records could not all be removed; a later prune or the TTL will"
            ),
        }
        if let Some(endpoint) = endpoint {
            Box::pin(self.announce_record(endpoint, &record, PresenceChange::Leave)).await;
        }
        let queued = ENDED.try_with(|ended| {
            ended.borrow_mut().push(Closed {
                record: record.clone(),
                cause,
            })
        });
        if queued.is_err() {
            tracing::warn!(
                connection = connection_id,
                cause = cause.as_str(),
                "connection ended outside the functions: the application's on_close does not run for it"
            );
        }
        Some(Ending::Ended(record))
    }

    /// A push to `connection_id`, which the set `via` named, was answered 410: ends it, and
    /// removes the member item of `via` if no record accounts for it any more (a record gone
    /// before this item was: the deleter of the item announces it, with the uid it carried).
    pub(crate) async fn prune_via(
        &self,
        endpoint: &str,
        connection_id: &str,
        via: Option<Members<'_>>,
    ) {
        let ending = self.end(Some(endpoint), connection_id, Cause::Gone).await;
        // Only with no record left at all can a member item be a stray: a record still there
        // (too recent, or its end under way elsewhere) accounts for its items itself, and an end
        // removes the member items before the record.
        let (Some(Ending::EndedElsewhere { left: None }), Some(set)) = (ending, via) else {
            return;
        };
        match self.store.remove_stray(set, connection_id).await {
            Ok(Some(member)) => {
                tracing::info!(
                    gone = connection_id,
                    ?set,
                    "connection gone (410): a member item no record named was removed"
                );
                if let Members::Group(group) = set {
                    let subject = Subject {
                        connection_id,
                        uid: member.uid.as_deref(),
                    };
                    Box::pin(self.announce(endpoint, group, PresenceChange::Leave, subject)).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(gone = connection_id, ?set, error = %e, "410, but removing a stray member item failed; the TTL will")
            }
        }
    }

    /// Ends each of `gone` (410s met while announcing), a few at a time, after the announce that
    /// met them rather than inside it: no prune announces into the middle of another announce.
    pub(crate) async fn end_all_gone(&self, endpoint: &str, gone: Vec<(String, Members<'_>)>) {
        stream::iter(gone)
            .for_each_concurrent(
                self.config.push_concurrency.max(1),
                |(id, via)| async move {
                    Box::pin(self.prune_via(endpoint, &id, Some(via))).await;
                },
            )
            .await;
    }
}
