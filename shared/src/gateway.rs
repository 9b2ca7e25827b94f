//! The service's state of the world, reachable from any handler or backend: sends to clients,
//! uids, groups and everyone, and presence — GatewayWorker's calls, answered from DynamoDB.
//!
//! A send resolves its recipients as a stream of pages (never the whole set in memory first),
//! drops duplicates and exclusions, and pushes with bounded concurrency. A push answered 410
//! removes that connection's records and counts as not delivered.

use std::collections::{BTreeSet, HashSet};
use std::future::ready;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::auth::Verifier;
use crate::config::Config;
use crate::error::Error;
use crate::protocol::Target;
use crate::push::{Delivery, Push, PushError};
use crate::store::{Members, Store, StoreError};

/// The store, the push client and the settings, built once per process.
pub struct Gateway<S, P> {
    pub config: Config,
    pub store: S,
    pub push: P,
    pub(crate) verifier: Option<Verifier>,
}

/// What a fan-out did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Connections the message was pushed to.
    pub delivered: usize,
    /// Recipients that had gone (410) and were removed.
    pub gone: usize,
    /// Pushes that failed after their retries.
    pub failed: usize,
}

impl Report {
    /// The error to report for this fan-out, if any push failed.
    pub fn error(&self) -> Option<Error> {
        (self.failed > 0).then(|| Error::Undelivered {
            failed: self.failed,
            attempted: self.delivered + self.gone + self.failed,
        })
    }
}

/// Who is connected, to a group or at all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Presence {
    pub connections: usize,
    pub uids: BTreeSet<String>,
}

enum Outcome {
    Push(Result<Delivery, PushError>),
    Store(StoreError),
}

impl<S: Store, P: Push> Gateway<S, P> {
    pub fn new(config: Config, store: S, push: P) -> Self {
        let verifier = config.auth_secret.as_deref().map(Verifier::new);
        Gateway {
            config,
            store,
            push,
            verifier,
        }
    }

    /// Where pushes for this event go: the configured endpoint, or the event's own domain and
    /// stage when none is configured.
    pub fn endpoint(
        &self,
        context: &ApiGatewayWebsocketProxyRequestContext,
    ) -> Result<String, Error> {
        if let Some(endpoint) = &self.config.management_endpoint {
            return Ok(endpoint.clone());
        }
        match (&context.domain_name, &context.stage) {
            (Some(domain), Some(stage)) => Ok(format!("https://{domain}/{stage}")),
            _ => Err(Error::NoEndpoint),
        }
    }

    /// Pushes one frame to one connection; a connection found gone has its records removed.
    pub async fn push_to(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &str,
    ) -> Result<Delivery, PushError> {
        let delivery = self.push.post(endpoint, connection_id, data).await?;
        if delivery == Delivery::Gone {
            self.prune(connection_id).await;
        }
        Ok(delivery)
    }

    /// Removes the records of a connection API Gateway says is gone.
    pub async fn prune(&self, connection_id: &str) {
        match self.store.remove_connection(connection_id).await {
            Ok(_) => tracing::info!(
                gone = connection_id,
                "connection gone (410): its records were removed"
            ),
            Err(e) => {
                tracing::warn!(gone = connection_id, error = %e, "connection gone (410), but removing its records failed; the TTL will")
            }
        }
    }

    /// The connection ids a target names, page by page, possibly with repeats.
    fn recipients<'a>(&'a self, target: &'a Target) -> BoxStream<'a, Result<String, StoreError>> {
        let of_sets = |sets: BoxStream<'a, Members<'a>>| {
            sets.flat_map(|set| self.store.members(set))
                .map_ok(|member| member.connection_id)
                .boxed()
        };
        match target {
            Target::Connections(ids) => stream::iter(ids.iter().cloned().map(Ok)).boxed(),
            Target::Uids(uids) => {
                of_sets(stream::iter(uids.iter().map(|u| Members::Uid(u))).boxed())
            }
            Target::Groups(groups) => {
                of_sets(stream::iter(groups.iter().map(|g| Members::Group(g))).boxed())
            }
            Target::All => of_sets(stream::iter([Members::All]).boxed()),
        }
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
        let mut seen: HashSet<String> = HashSet::new();
        let mut outcomes = self
            .recipients(target)
            .filter(|item| {
                ready(match item {
                    Ok(id) => !exclude.contains(id.as_str()) && seen.insert(id.clone()),
                    Err(_) => true,
                })
            })
            .map(|item| async move {
                match item {
                    Ok(id) => Outcome::Push(self.push_to(endpoint, &id, data).await),
                    Err(e) => Outcome::Store(e),
                }
            })
            .buffer_unordered(self.config.push_concurrency.max(1));
        let mut report = Report::default();
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Push(Ok(Delivery::Delivered)) => report.delivered += 1,
                Outcome::Push(Ok(Delivery::Gone)) => report.gone += 1,
                Outcome::Push(Err(e)) => {
                    tracing::warn!(recipient = %e.connection_id, error = %e.message, "push failed after retries");
                    report.failed += 1;
                }
                Outcome::Store(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }

    /// The connections and distinct uids of a set.
    pub async fn presence(&self, of: Members<'_>) -> Result<Presence, StoreError> {
        self.store
            .members(of)
            .try_fold(Presence::default(), |mut presence, member| {
                presence.connections += 1;
                presence.uids.extend(member.uid);
                ready(Ok(presence))
            })
            .await
    }
}
