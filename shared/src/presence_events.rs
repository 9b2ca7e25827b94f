//! Presence events (protocol: "Presence events"): members that joined a group with
//! `"presence":true` are told when another connection joins or leaves it, or ends (`$disconnect`,
//! or pruned after a 410).
//!
//! Who follows is a flag on each member's group item, so a join or a leave reads the group's
//! items once (a Query of at most `PRESENCE_LIMIT + 1` of them) to find the followers. A group
//! over the limit sends no events: telling N followers of each of N members' comings and goings
//! is N² pushes.

use futures_util::stream::{self, StreamExt};

use crate::gateway::Gateway;
use crate::protocol::{Outgoing, PresenceChange};
use crate::push::Push;
use crate::store::{ConnectionRecord, Member, Store, StoreError};

/// A connection that joined or left, as its followers are told.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub connection_id: &'a str,
    pub uid: Option<&'a str>,
}

impl<S: Store, P: Push> Gateway<S, P> {
    /// Tells the followers of each group `record` names that its connection joined (it was
    /// recorded with them) or left (it ended).
    pub async fn announce_record(
        &self,
        endpoint: &str,
        record: &ConnectionRecord,
        change: PresenceChange,
    ) {
        let subject = Subject {
            connection_id: &record.connection_id,
            uid: record.uid.as_deref(),
        };
        for group in &record.groups {
            self.announce(endpoint, group, change, subject).await;
        }
    }

    /// The group's members, or `None` when there are more than `PRESENCE_LIMIT`.
    pub async fn members_within_limit(
        &self,
        group: &str,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        let limit = self.config.presence_limit;
        let members = self.store.group_members_up_to(group, limit + 1).await?;
        Ok((members.len() <= limit).then_some(members))
    }

    /// Tells `group`'s followers, other than the subject, that it joined or left. Best effort:
    /// what fails is logged, and the caller's own work stands.
    pub async fn announce(
        &self,
        endpoint: &str,
        group: &str,
        change: PresenceChange,
        subject: Subject<'_>,
    ) {
        let members = match self.members_within_limit(group).await {
            Ok(Some(members)) => members,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(group, error = %e, "presence event not sent: the group could not be read");
                return;
            }
        };
        let frame = Outgoing::PresenceEvent {
            event: change,
            group,
            connection_id: subject.connection_id,
            uid: subject.uid,
        }
        .to_json();
        let frame = &frame;
        let followers = members
            .into_iter()
            .filter(|m| m.presence && m.connection_id != subject.connection_id);
        let failed = stream::iter(followers)
            .map(|follower| async move {
                // Boxed: a push found gone prunes, and a prune announces a leave in turn.
                Box::pin(self.push_to_member(endpoint, &follower.connection_id, group, frame))
                    .await
                    .is_err()
            })
            .buffer_unordered(self.config.push_concurrency.max(1))
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await;
        if failed > 0 {
            tracing::warn!(group, failed, "some presence events could not be pushed");
        }
    }
}
