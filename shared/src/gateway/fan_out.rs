//! The fan-out: a target's recipients read page by page, pushed with bounded concurrency, the
//! gone ones pruned; and presence counts.

use std::collections::HashSet;
use std::future::ready;
use std::pin::Pin;

use futures_util::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};

use crate::error::Error;
use crate::gateway::rate_limit::{self};
use crate::gateway::target::Target;
use crate::push::{Delivery, Push, PushError, PushFailure};
use crate::spread::Spreader;
use crate::store::{now_millis, Member, Members, Store, StoreError};

use super::*;

impl<S: Store, P: Push> Gateway<S, P> {
    /// Pushes one frame to one connection; a connection found gone has its records removed.
    pub async fn push_to(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &str,
    ) -> Result<Delivery, PushError> {
        self.push_via(endpoint, connection_id, None, data).await
    }

    /// [`Gateway::push_to`] a recipient that the set `via` named.
    async fn push_via(
        &self,
        endpoint: &str,
        connection_id: &str,
        via: Option<Members<'_>>,
        data: &str,
    ) -> Result<Delivery, PushError> {
        let delivery = self.push.post(endpoint, connection_id, data).await?;
        if delivery == Delivery::Gone {
            self.prune_via(endpoint, connection_id, via).await;
        }
        Ok(delivery)
    }

    /// Ends a connection API Gateway says is gone (see [`crate::gateway::ended`]) — unless it was recorded
    /// within the connect grace: API Gateway also answers 410 to a push that reaches a connection
    /// whose handshake has not completed, and removing a new connection's records would leave it
    /// open but unreachable (protocol: "State and lifetime").
    pub async fn prune(&self, endpoint: &str, connection_id: &str) {
        self.prune_via(endpoint, connection_id, None).await;
    }

    /// The connection ids a target names, each with the index in `sets` of the set that named
    /// it, page by page, possibly with repeats.
    fn recipients<'a>(
        &'a self,
        target: &'a Target,
        sets: &'a [Members<'a>],
    ) -> BoxStream<'a, Result<Recipient, StoreError>> {
        if let Target::Connections(ids) = target {
            return stream::iter(ids.iter().map(|id| Ok((id.clone(), None)))).boxed();
        }
        // Several sets (a list of uids or groups) are read a few at a time, not one after another.
        stream::iter(sets.iter().copied().enumerate())
            .map(|(index, set)| {
                self.store
                    .members(set)
                    .map_ok(move |member| (member.connection_id, Some(index)))
            })
            .flatten_unordered(self.config.read_concurrency.max(1))
            .boxed()
    }

    /// Pushes `data` once to every connection `target` names, except those in `exclude`.
    ///
    /// A failing store read stops the fan-out and is returned; failing pushes are counted in the
    /// report (see [`Report::error`]) so that one bad connection does not cost the others theirs.
    pub async fn send(
        &self,
        endpoint: &str,
        target: &Target,
        exclude: &HashSet<&str>,
        data: &str,
    ) -> Result<Report, Error> {
        self.send_after(endpoint, target, exclude, data, ready(Ok(())))
            .await
    }

    /// [`Gateway::send`], pushing only once `gate` has succeeded (a group message kept for
    /// history), while the recipients' first page is read meanwhile: one round trip, not two.
    pub async fn send_after(
        &self,
        endpoint: &str,
        target: &Target,
        exclude: &HashSet<&str>,
        data: &str,
        gate: impl std::future::Future<Output = Result<(), Error>>,
    ) -> Result<Report, Error> {
        let sets = sets_of(target);
        let sets = &sets;
        let mut recipients = self.recipients(target, sets).peekable();
        // The frame's rate-limit count, the kept message and the first page, at once.
        let (admitted, gate, _) = futures_util::join!(
            rate_limit::admitted(),
            gate,
            Pin::new(&mut recipients).peek()
        );
        admitted?;
        gate?;
        let mut seen: HashSet<String> = HashSet::new();
        let recipients = recipients.filter(move |item| {
            ready(match item {
                Ok((id, _)) => !exclude.contains(id.as_str()) && seen.insert(id.clone()),
                Err(_) => true,
            })
        });
        match &self.spreader {
            Some(spreader) if matches!(target, Target::All | Target::Groups(_)) => {
                self.send_or_spread(spreader, endpoint, sets, data, recipients)
                    .await
            }
            _ => self.push_each(endpoint, sets, data, recipients).await,
        }
    }

    /// Reads every recipient first: up to `SPREAD_ABOVE` of them are pushed here, more are
    /// queued for the fan-out workers (see [`crate::spread`]).
    async fn send_or_spread(
        &self,
        spreader: &Spreader,
        endpoint: &str,
        sets: &[Members<'_>],
        data: &str,
        recipients: impl Stream<Item = Result<Recipient, StoreError>>,
    ) -> Result<Report, Error> {
        let all: Vec<Recipient> = recipients.try_collect().await?;
        if all.len() <= self.config.spread_above {
            return self
                .push_each(endpoint, sets, data, stream::iter(all.into_iter().map(Ok)))
                .await;
        }
        let queued = spreader.enqueue(endpoint, data, sets, all).await?;
        tracing::info!(
            recipients = queued.recipients,
            jobs = queued.jobs,
            "send spread over the fan-out workers"
        );
        // Jobs SQS would not take: their recipients count as failed, as pushes that failed do.
        if let Some(e) = &queued.error {
            tracing::error!(
                error = %e,
                unqueued = queued.unqueued,
                "some of the send's jobs could not be queued: their recipients get nothing"
            );
        }
        Ok(Report {
            queued: queued.recipients,
            failed: queued.unqueued,
            ..Report::default()
        })
    }

    /// Pushes `data` to each recipient with bounded concurrency, counting what came of it; a
    /// failing store read stops it.
    async fn push_each(
        &self,
        endpoint: &str,
        sets: &[Members<'_>],
        data: &str,
        recipients: impl Stream<Item = Result<Recipient, StoreError>>,
    ) -> Result<Report, Error> {
        let Pushed { mut report, retry } = self
            .push_all(endpoint, sets, data, recipients, None)
            .await?;
        for (id, _) in &retry {
            tracing::warn!(recipient = %id, "push failed after retries: throttled (429)");
        }
        report.failed += retry.len();
        Ok(report)
    }

    /// Pushes `data` to each recipient, `PUSH_CONCURRENCY` at a time, pruning the gone ones; a
    /// failing store read stops it. Recipients still throttled after their pushes' retries, and
    /// those not started by `stop_by` (epoch milliseconds), are handed back to the caller
    /// (`retry`), which decides whether a 429 is worth waiting out.
    pub(crate) async fn push_all(
        &self,
        endpoint: &str,
        sets: &[Members<'_>],
        data: &str,
        recipients: impl Stream<Item = Result<Recipient, StoreError>>,
        stop_by: Option<i64>,
    ) -> Result<Pushed, Error> {
        let outcomes = recipients
            .map(|item| async move {
                match item {
                    Ok(recipient) if stop_by.is_some_and(|stop| now_millis() > stop) => {
                        Outcome::Unstarted(recipient)
                    }
                    Ok(recipient) => {
                        let via = recipient.1.and_then(|index| sets.get(index).copied());
                        let pushed = self.push_via(endpoint, &recipient.0, via, data).await;
                        Outcome::Push(recipient, pushed)
                    }
                    Err(e) => Outcome::Store(e),
                }
            })
            .buffer_unordered(self.config.push_concurrency.max(1));
        let mut outcomes = std::pin::pin!(outcomes);
        let mut pushed = Pushed::default();
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Push(_, Ok(Delivery::Delivered)) => pushed.report.delivered += 1,
                Outcome::Push(_, Ok(Delivery::Gone)) => pushed.report.gone += 1,
                Outcome::Push(recipient, Err(e)) if e.failure == PushFailure::Throttled => {
                    pushed.retry.push(recipient);
                }
                Outcome::Push(_, Err(e)) => {
                    tracing::warn!(
                        recipient = %e.connection_id,
                        error = %e.message,
                        "push failed after retries",
                    );
                    pushed.report.failed += 1;
                }
                Outcome::Unstarted(recipient) => pushed.retry.push(recipient),
                Outcome::Store(e) => return Err(e.into()),
            }
        }
        Ok(pushed)
    }

    /// The connections and distinct uids of a set, read consistently: a server's join is in it.
    pub async fn presence(&self, of: Members<'_>) -> Result<Presence, StoreError> {
        tally(self.store.members(of)).await
    }

    /// [`Gateway::presence`] read eventually consistent, for a client's `presence`: half the read
    /// units, and a change of the last second may be missing.
    pub async fn census(&self, of: Members<'_>) -> Result<Presence, StoreError> {
        tally(self.store.census(of)).await
    }
}

/// The connections and distinct uids among `members`.
async fn tally(members: BoxStream<'_, Result<Member, StoreError>>) -> Result<Presence, StoreError> {
    members
        .try_fold(Presence::default(), |mut presence, member| {
            presence.connections += 1;
            presence.uids.extend(member.uid);
            ready(Ok(presence))
        })
        .await
}

/// The sets a target names (none for connection ids).
fn sets_of(target: &Target) -> Vec<Members<'_>> {
    match target {
        Target::Connections(_) => Vec::new(),
        Target::Uids(uids) => uids.iter().map(|u| Members::Uid(u)).collect(),
        Target::Groups(groups) => groups.iter().map(|g| Members::Group(g)).collect(),
        Target::All => vec![Members::All],
    }
}
