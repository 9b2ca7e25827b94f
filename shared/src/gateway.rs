//! The service's state of the world, reachable from any handler or backend: sends to clients,
//! uids, groups and everyone, and presence — GatewayWorker's calls, answered from DynamoDB.
//!
//! A send resolves its recipients as a stream of pages (never the whole set in memory first),
//! drops duplicates and exclusions, and pushes with bounded concurrency. A push answered 410
//! removes that connection's records and counts as not delivered.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::ready;
use std::pin::Pin;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::auth::Verifier;
use crate::config::Config;
use crate::ended::{self, Cause};
use crate::error::Error;
use crate::frames::PresenceChange;
use crate::lambda::on_open::Opener;
use crate::payload::Payload;
use crate::presence_events::Subject;
use crate::push::{Delivery, ManagementApi, Push, PushError};
use crate::rate_limit::{self, RateLimiter};
use crate::session::{self, Session};
use crate::store::dynamodb::DynamoStore;
use crate::store::{ConnectionRecord, Joining, Member, Members, Store, StoreError};
use crate::target::Target;

/// The store, the push client and the settings, built once per process. The functions run on
/// DynamoDB and the management API (the defaults); the parameters are the seams a benchmark or
/// a backend wraps.
pub struct Gateway<S = DynamoStore, P = ManagementApi> {
    pub config: Config,
    pub store: S,
    pub push: P,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) limiter: RateLimiter,
    /// What asks for `on_open` (the `$connect` function's, with `ON_OPEN_FUNCTION`).
    pub(crate) opener: Option<Opener>,
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

/// Read-merge-write rounds of one session update before giving up to others changing it.
const SESSION_ATTEMPTS: u32 = 16;

/// A connection to push to, and which of the target's sets named it (none for a connection id):
/// an index rather than the set itself, so that the fan-out's items borrow nothing and the
/// compiler can prove the fan-out `Send` inside an application's generic hook
/// (rust-lang/rust#100013).
type Recipient = (String, Option<usize>);

enum Outcome {
    Push(Result<Delivery, PushError>),
    Store(StoreError),
}

impl<S: Store, P: Push> Gateway<S, P> {
    pub fn new(config: Config, store: S, push: P) -> Self {
        // With AUTH_SECRET_ARN, a verifier that refuses every token until the `$connect`
        // function's init reads the keys into it (crate::lambda::init::connect_gateway_from_env).
        let verifier = Verifier::for_config(&config);
        Gateway {
            config,
            store,
            push,
            verifier,
            limiter: RateLimiter::default(),
            opener: None,
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

    /// Ends a connection API Gateway says is gone (see [`crate::ended`]) — unless it was recorded
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
        let mut seen: HashSet<String> = HashSet::new();
        let mut recipients = self.recipients(target, sets).peekable();
        // The frame's rate-limit count, the kept message and the first page, at once.
        let (admitted, gate, _) = futures_util::join!(
            rate_limit::admitted(),
            gate,
            Pin::new(&mut recipients).peek()
        );
        admitted?;
        gate?;
        let mut outcomes = recipients
            .filter(|item| {
                ready(match item {
                    Ok((id, _)) => !exclude.contains(id.as_str()) && seen.insert(id.clone()),
                    Err(_) => true,
                })
            })
            .map(|item| async move {
                match item {
                    Ok((id, via)) => {
                        let via = via.map(|index| sets[index]);
                        Outcome::Push(self.push_via(endpoint, &id, via, data).await)
                    }
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

/// GatewayWorker's `Gateway` API, for the handlers and for any backend (a web app, a cron job, the
/// `gateway-client` CLI). Pushes go to the configured `MANAGEMENT_ENDPOINT`. Each call reads only
/// the items of the connection, uid or group it names; the costs are in `docs/table-design.md`.
impl<S: Store, P: Push> Gateway<S, P> {
    /// The endpoint server-side sends use: the configured one (there is no event to take it from).
    pub fn management_endpoint(&self) -> Result<&str, Error> {
        self.config
            .management_endpoint
            .as_deref()
            .ok_or(Error::NoEndpoint)
    }

    /// Pushes `data` to what `target` names, minus `exclude` (sendToClient, sendToUid,
    /// sendToGroup, sendToAll).
    pub async fn send_to(
        &self,
        target: &Target,
        data: impl Payload,
        exclude: &[String],
    ) -> Result<Report, Error> {
        let data = data.into_text()?;
        for name in target_names(target) {
            check_name(name, matches!(target, Target::Connections(_)))?;
        }
        let exclude: HashSet<&str> = exclude.iter().map(String::as_str).collect();
        self.send(self.management_endpoint()?, target, &exclude, &data)
            .await
    }

    /// sendToClient.
    pub async fn send_to_client(
        &self,
        connection_id: &str,
        data: impl Payload,
    ) -> Result<Report, Error> {
        self.send_to(
            &Target::Connections(vec![connection_id.to_owned()]),
            data,
            &[],
        )
        .await
    }

    /// sendToUid.
    pub async fn send_to_uid(&self, uid: &str, data: impl Payload) -> Result<Report, Error> {
        self.send_to(&Target::Uids(vec![uid.to_owned()]), data, &[])
            .await
    }

    /// sendToGroup, minus the connections in `exclude`.
    pub async fn send_to_group(
        &self,
        group: &str,
        data: impl Payload,
        exclude: &[String],
    ) -> Result<Report, Error> {
        self.send_to(&Target::Groups(vec![group.to_owned()]), data, exclude)
            .await
    }

    /// sendToAll, minus the connections in `exclude`.
    pub async fn send_to_all(
        &self,
        data: impl Payload,
        exclude: &[String],
    ) -> Result<Report, Error> {
        self.send_to(&Target::All, data, exclude).await
    }

    /// The connection's record — its uid, groups, session, and when and from where it
    /// connected — or `None` when it is gone.
    pub async fn connection(&self, connection_id: &str) -> Result<Option<ConnectionRecord>, Error> {
        Ok(self.store.connection(connection_id).await?)
    }

    /// isOnline: whether the connection is recorded.
    pub async fn is_online(&self, connection_id: &str) -> Result<bool, Error> {
        Ok(self.store.connection(connection_id).await?.is_some())
    }

    /// isUidOnline: whether the uid has any connection.
    pub async fn is_uid_online(&self, uid: &str) -> Result<bool, Error> {
        check_name(uid, false)?;
        Ok(self
            .store
            .members(Members::Uid(uid))
            .try_next()
            .await?
            .is_some())
    }

    /// getClientIdByUid: the connections of a uid.
    pub async fn client_ids_by_uid(&self, uid: &str) -> Result<Vec<String>, Error> {
        check_name(uid, false)?;
        self.connection_ids(Members::Uid(uid)).await
    }

    /// getUidByClientId.
    pub async fn uid_by_client_id(&self, connection_id: &str) -> Result<Option<String>, Error> {
        Ok(self
            .store
            .connection(connection_id)
            .await?
            .and_then(|r| r.uid))
    }

    /// bindUid, for a connection that has no uid yet (a uid from a token is never replaced);
    /// `false` when the connection is gone or already bound.
    pub async fn bind_uid(&self, connection_id: &str, uid: &str) -> Result<bool, Error> {
        check_name(uid, false)?;
        rate_limit::admitted().await?;
        match self.store.connection(connection_id).await? {
            Some(record) if record.uid.is_none() => Ok(self.store.bind_uid(&record, uid).await?),
            _ => Ok(false),
        }
    }

    /// unbindUid; `false` when the connection had no uid.
    pub async fn unbind_uid(&self, connection_id: &str) -> Result<bool, Error> {
        let (admitted, record) =
            futures_util::join!(rate_limit::admitted(), self.store.connection(connection_id));
        admitted?;
        match record? {
            Some(record) => Ok(self.store.unbind_uid(&record).await?),
            None => Ok(false),
        }
    }

    /// joinGroup; `false` when the connection is gone. The group's followers are told, through
    /// the configured endpoint.
    pub async fn join_group(&self, connection_id: &str, group: &str) -> Result<bool, Error> {
        let endpoint = self.config.management_endpoint.as_deref();
        self.join_at(endpoint, connection_id, group, false).await
    }

    /// [`Gateway::join_group`], following the group's joins and leaves when `presence`, telling
    /// its followers through `endpoint` (none: not told); `false` when the connection is gone.
    pub async fn join_at(
        &self,
        endpoint: Option<&str>,
        connection_id: &str,
        group: &str,
        presence: bool,
    ) -> Result<bool, Error> {
        let Some(record) = self.join_record(connection_id, group, presence).await? else {
            return Ok(false);
        };
        // Announced even when the record read above already named the group: that read may be
        // stale (a `leave` landing in between), and the announcement reads the membership after
        // its own version, so a repeated join tells followers nothing new but nothing wrong.
        if let Some(endpoint) = endpoint {
            let subject = Subject {
                connection_id,
                uid: record.uid.as_deref(),
            };
            self.announce(endpoint, group, PresenceChange::Join, subject)
                .await;
        }
        Ok(true)
    }

    /// Writes the membership (once the frame's rate-limit count allows it); the connection's
    /// record as read before, `None` when it is gone.
    pub async fn join_record(
        &self,
        connection_id: &str,
        group: &str,
        presence: bool,
    ) -> Result<Option<ConnectionRecord>, Error> {
        check_name(group, false)?;
        let (admitted, record) =
            futures_util::join!(rate_limit::admitted(), self.store.connection(connection_id));
        admitted?;
        let Some(record) = record? else {
            return Ok(None);
        };
        let max_groups = self.config.max_groups;
        match self
            .store
            .join(&record, group, presence, max_groups)
            .await?
        {
            Joining::Joined => Ok(Some(record)),
            Joining::Gone => Ok(None),
            Joining::Full => Err(Error::TooManyGroups(max_groups)),
        }
    }

    /// leaveGroup; leaving a group one is not in is not an error. The group's followers are told,
    /// through the configured endpoint.
    pub async fn leave_group(&self, connection_id: &str, group: &str) -> Result<(), Error> {
        check_name(group, false)?;
        let uid = match &self.config.management_endpoint {
            Some(_) => self.uid_by_client_id(connection_id).await?,
            None => None,
        };
        let endpoint = self.config.management_endpoint.as_deref();
        self.leave_at(endpoint, connection_id, uid.as_deref(), group)
            .await
    }

    /// [`Gateway::leave_group`] by a connection whose uid the caller knows, telling the group's
    /// followers through `endpoint` (none: not told).
    pub async fn leave_at(
        &self,
        endpoint: Option<&str>,
        connection_id: &str,
        uid: Option<&str>,
        group: &str,
    ) -> Result<(), Error> {
        check_name(group, false)?;
        rate_limit::admitted().await?;
        let was_member = self.store.leave(connection_id, group).await?;
        if let (true, Some(endpoint)) = (was_member, endpoint) {
            let subject = Subject { connection_id, uid };
            self.announce(endpoint, group, PresenceChange::Leave, subject)
                .await;
        }
        Ok(())
    }

    /// ungroup: takes every member out of the group; how many there were.
    pub async fn ungroup(&self, group: &str) -> Result<usize, Error> {
        // Gated through the read of its members.
        let members = self.client_ids_by_group(group).await?;
        for connection_id in &members {
            self.store.leave(connection_id, group).await?;
        }
        Ok(members.len())
    }

    /// getClientIdListByGroup.
    pub async fn client_ids_by_group(&self, group: &str) -> Result<Vec<String>, Error> {
        check_name(group, false)?;
        self.connection_ids(Members::Group(group)).await
    }

    /// getUidListByGroup and getClientCountByGroup in one read.
    pub async fn group_presence(&self, group: &str) -> Result<Presence, Error> {
        check_name(group, false)?;
        rate_limit::admitted().await?;
        Ok(self.presence(Members::Group(group)).await?)
    }

    /// getAllClientCount and getAllUidList in one read (the shards of "all", paged).
    pub async fn all_presence(&self) -> Result<Presence, Error> {
        rate_limit::admitted().await?;
        Ok(self.presence(Members::All).await?)
    }

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

    /// closeClient: closes the connection through the management API. Inside a function it is
    /// ended at once (its groups' followers told, the application's `on_close` run once the event
    /// is handled), without waiting for the `$disconnect` API Gateway sends best-effort; from a
    /// backend, which has no application to close it with, that `$disconnect` ends it (see
    /// [`crate::ended`]).
    pub async fn close_client(&self, connection_id: &str) -> Result<(), Error> {
        self.close_at(self.management_endpoint()?, connection_id)
            .await
    }

    /// [`Gateway::close_client`] through `endpoint`.
    pub(crate) async fn close_at(&self, endpoint: &str, connection_id: &str) -> Result<(), Error> {
        rate_limit::admitted().await?;
        self.push.close(endpoint, connection_id).await?;
        if ended::can_close() {
            self.end(Some(endpoint), connection_id, Cause::Kicked).await;
        }
        Ok(())
    }

    /// Closes every connection of a uid; how many there were.
    pub async fn kick_uid(&self, uid: &str) -> Result<usize, Error> {
        let connections = self.client_ids_by_uid(uid).await?;
        for connection_id in &connections {
            self.close_client(connection_id).await?;
        }
        Ok(connections.len())
    }

    async fn connection_ids(&self, of: Members<'_>) -> Result<Vec<String>, Error> {
        rate_limit::admitted().await?;
        Ok(self
            .store
            .members(of)
            .map_ok(|m| m.connection_id)
            .try_collect()
            .await?)
    }
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

fn target_names(target: &Target) -> &[String] {
    match target {
        Target::Connections(names) | Target::Uids(names) | Target::Groups(names) => names,
        Target::All => &[],
    }
}

fn check_name(name: &str, is_connection_id: bool) -> Result<(), Error> {
    let valid = if is_connection_id {
        crate::names::is_valid_connection_id(name)
    } else {
        crate::names::is_valid_name(name)
    };
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}
