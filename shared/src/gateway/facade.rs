//! GatewayWorker's calls on the [`Gateway`]: sends, uids, groups, presence, kicks.

use std::collections::HashSet;

use futures_util::stream::TryStreamExt;

use crate::app::Payload;
use crate::error::Error;
use crate::gateway::ended::{self, Cause};
use crate::gateway::frames::PresenceChange;
use crate::gateway::presence::Subject;
use crate::gateway::rate_limit::{self};
use crate::gateway::target::Target;
use crate::push::Push;
use crate::store::{ConnectionRecord, Joining, Members, Store};

use super::*;

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

    /// closeClient: closes the connection through the management API. Inside a function it is
    /// ended at once (its groups' followers told, the application's `on_close` run once the event
    /// is handled), without waiting for the `$disconnect` API Gateway sends best-effort; from a
    /// backend, which has no application to close it with, that `$disconnect` ends it (see
    /// [`crate::gateway::ended`]).
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
