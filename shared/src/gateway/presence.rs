//! Presence events (protocol: "Presence events"): members that joined a group with
//! `"presence":true` are told when another connection joins or leaves it, or ends (`$disconnect`,
//! a 410, a kick).
//!
//! Who follows is a flag on each member's group item, so a join or a leave reads the group's
//! items once (a Query of at most `PRESENCE_LIMIT + 1` of them) to find the followers. A group
//! over the limit sends no events — telling N followers of each of N members' comings and goings
//! is N² pushes — and tells its followers so, once.
//!
//! **Order.** Concurrent joins, leaves and ends of one connection announce from concurrent
//! invocations, and their events reach a follower in any order. Each event therefore says a
//! state with a version, not a change: after its membership write, an announcer takes the
//! group's next version (one atomic `ADD`), then reads the subject's membership, and announces
//! what it read — only if that is the change it made (otherwise a later change announces). The
//! event with the highest version about a connection was read after every other announcer of it
//! had written, so it tells its final state; a follower that keeps, per connection, the event
//! with the highest version (and drops those not above its list's version) holds exactly the
//! group's members once events stop. `presence_order_converges` below checks that by model.
//! Groups whose members follow nobody pay nothing for it: no follower, no version.

use futures_util::stream::{self, StreamExt};

use crate::gateway::frames::{Frame, PresenceChange};
use crate::gateway::Gateway;
use crate::push::{Delivery, Push};
use crate::store::{expiry_from_now, ConnectionRecord, Member, Members, Store, StoreError};

/// A connection that joined or left, as its followers are told.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The connection.
    pub connection_id: &'a str,
    /// Its uid, when it has one.
    pub uid: Option<&'a str>,
}

/// A `joined` frame's member list: the members as of `version` (events up to it are in it), or
/// `None` when the group is over the limit.
#[derive(Debug)]
pub struct MemberList {
    /// The presence version the list is as of.
    pub version: u64,
    /// The members, or `None` past `PRESENCE_LIMIT`.
    pub members: Option<Vec<Member>>,
}

impl<S: Store, P: Push> Gateway<S, P> {
    /// Tells the followers of each group `record` names that its connection joined (it was
    /// recorded with them) or left (it ended); the groups a few at a time.
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
        stream::iter(&record.groups)
            .for_each_concurrent(self.config.read_concurrency.max(1), |group| async move {
                self.announce(endpoint, group, change, subject).await;
            })
            .await;
    }

    /// After `subject` joined `group` following it: the group's members for its `joined` frame,
    /// read after a new version is taken (so that every event not above that version is already
    /// in the list), and the join told to the other followers from that same read and version
    /// (through `endpoint`; none: not told) — one version and one Query for both, where an
    /// announcement and a list apart take two of each.
    pub async fn list_and_announce_join(
        &self,
        endpoint: Option<&str>,
        group: &str,
        subject: Subject<'_>,
    ) -> Result<MemberList, StoreError> {
        let expiry = expiry_from_now(self.config.connection_ttl);
        let clock = self.store.tick_presence(group, expiry).await?;
        let limit = self.config.presence_limit;
        let members = self
            .store
            .members_up_to(Members::Group(group), limit + 1)
            .await?;
        if members.len() > limit {
            if let Some(endpoint) = endpoint {
                if let Err(e) = self.overflow(endpoint, group, subject).await {
                    tracing::warn!(
                        group,
                        error = %e,
                        "presence overflow not told: the group could not be read",
                    );
                }
            }
            return Ok(MemberList {
                version: clock.version,
                members: None,
            });
        }
        if clock.overflowed {
            // Followed again within the limit: a later overflow is told again. Its followers
            // were told it outgrew the limit, and hear of nothing until they join again.
            self.store.clear_overflow(group).await?;
        } else if let Some(endpoint) = endpoint {
            // Read after the version was taken, as an announcer reads the membership it tells.
            let present = members
                .iter()
                .any(|m| m.connection_id == subject.connection_id);
            let followers: Vec<Member> = members
                .iter()
                .filter(|m| m.presence && m.connection_id != subject.connection_id)
                .cloned()
                .collect();
            if present && !followers.is_empty() {
                let frame = Frame::PresenceEvent {
                    event: PresenceChange::Join,
                    group,
                    connection_id: subject.connection_id,
                    uid: subject.uid,
                    version: clock.version,
                }
                .to_json();
                self.tell(endpoint, group, followers, &frame).await;
            }
        }
        Ok(MemberList {
            version: clock.version,
            members: Some(members),
        })
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
        if let Err(e) = self.try_announce(endpoint, group, change, subject).await {
            tracing::warn!(
                group,
                error = %e,
                "presence event not sent: the group could not be read",
            );
        }
    }

    async fn try_announce(
        &self,
        endpoint: &str,
        group: &str,
        change: PresenceChange,
        subject: Subject<'_>,
    ) -> Result<(), StoreError> {
        let limit = self.config.presence_limit;
        let members = self
            .store
            .members_up_to(Members::Group(group), limit + 1)
            .await?;
        if members.len() > limit {
            return self.overflow(endpoint, group, subject).await;
        }
        let followers: Vec<Member> = members
            .into_iter()
            .filter(|m| m.presence && m.connection_id != subject.connection_id)
            .collect();
        if followers.is_empty() {
            return Ok(());
        }
        let expiry = expiry_from_now(self.config.connection_ttl);
        let clock = self.store.tick_presence(group, expiry).await?;
        if clock.overflowed {
            // Its followers were told it outgrew the limit: no events until a join lists it again.
            return Ok(());
        }
        let version = clock.version;
        let present = self
            .store
            .group_member(group, subject.connection_id)
            .await?
            .is_some();
        if present != (change == PresenceChange::Join) {
            tracing::debug!(
                group,
                subject = subject.connection_id,
                "a later change of this membership announces it"
            );
            return Ok(());
        }
        let frame = Frame::PresenceEvent {
            event: change,
            group,
            connection_id: subject.connection_id,
            uid: subject.uid,
            version,
        }
        .to_json();
        self.tell(endpoint, group, followers, &frame).await;
        Ok(())
    }

    /// The group has grown past the limit: its followers (but the subject, whose own answer says
    /// so) are told once, and hear no more.
    async fn overflow(
        &self,
        endpoint: &str,
        group: &str,
        subject: Subject<'_>,
    ) -> Result<(), StoreError> {
        let expiry = expiry_from_now(self.config.connection_ttl);
        if !self.store.claim_overflow(group, expiry).await? {
            return Ok(());
        }
        // Followers anywhere in the group, however large it has grown: read once per overflow.
        let mut followers = Vec::new();
        let mut members = self.store.members(Members::Group(group));
        while let Some(member) = members.next().await {
            let member = member?;
            if member.presence && member.connection_id != subject.connection_id {
                followers.push(member);
            }
        }
        drop(members);
        tracing::info!(
            group,
            followers = followers.len(),
            limit = self.config.presence_limit,
            "presence limit reached: followers told, no more events"
        );
        let frame = Frame::presence_overflow(group).to_json();
        self.tell(endpoint, group, followers, &frame).await;
        Ok(())
    }

    /// Pushes `frame` to `followers`; those found gone are ended afterwards, not in the middle.
    async fn tell(&self, endpoint: &str, group: &str, followers: Vec<Member>, frame: &str) {
        let outcomes: Vec<(String, Result<Delivery, _>)> = stream::iter(followers)
            .map(|follower| async move {
                let outcome = self
                    .push
                    .post(endpoint, &follower.connection_id, frame)
                    .await;
                (follower.connection_id, outcome)
            })
            .buffer_unordered(self.config.push_concurrency.max(1))
            .collect()
            .await;
        let mut failed = 0;
        let mut gone = Vec::new();
        for (id, outcome) in outcomes {
            match outcome {
                Ok(Delivery::Delivered) => {}
                Ok(Delivery::Gone) => gone.push((id, Members::Group(group))),
                Err(_) => failed += 1,
            }
        }
        if failed > 0 {
            tracing::warn!(group, failed, "some presence events could not be pushed");
        }
        if !gone.is_empty() {
            Box::pin(self.end_all_gone(endpoint, gone)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// One membership change of a connection, as its invocation runs it: write, take a version,
    /// read the membership, announce what was read if it is the change written.
    #[derive(Clone, Copy, Debug)]
    struct Change {
        join: bool,
    }

    /// Steps of the changes in flight, in the order the invocations happen to run them.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        Write(usize),
        Tick(usize),
        Read(usize),
    }

    /// Runs `changes` by `schedule` (each change's steps in its own order), then delivers the
    /// announced events to a follower in `delivery` order; what the follower ends up believing,
    /// and what is true.
    fn run(changes: &[Change], schedule: &[Step], delivery: &[usize]) -> (bool, bool) {
        let mut member = false;
        let mut clock = 0u64;
        let mut versions = vec![0u64; changes.len()];
        let mut events: Vec<Option<(u64, bool)>> = vec![None; changes.len()];
        for step in schedule {
            match *step {
                Step::Write(i) => member = changes[i].join,
                Step::Tick(i) => {
                    clock += 1;
                    versions[i] = clock;
                }
                Step::Read(i) => {
                    if member == changes[i].join {
                        events[i] = Some((versions[i], member));
                    }
                }
            }
        }
        let mut seen: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
        for &i in delivery {
            if let Some((version, present)) = events[i] {
                let entry = seen.entry("x").or_insert((0, false));
                if version > entry.0 {
                    *entry = (version, present);
                }
            }
        }
        (seen.get("x").is_some_and(|e| e.1), member)
    }

    /// Every interleaving of each change's three steps (kept in order within a change).
    fn schedules(n: usize) -> Vec<Vec<Step>> {
        fn go(next: &mut Vec<usize>, n: usize, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
            if path.len() == 3 * n {
                out.push(path.clone());
                return;
            }
            for i in 0..n {
                let step = match next[i] {
                    0 => Step::Write(i),
                    1 => Step::Tick(i),
                    2 => Step::Read(i),
                    _ => continue,
                };
                next[i] += 1;
                path.push(step);
                go(next, n, path, out);
                path.pop();
                next[i] -= 1;
            }
        }
        let mut out = Vec::new();
        go(&mut vec![0; n], n, &mut Vec::new(), &mut out);
        out
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for rest in permutations(n - 1) {
            for at in 0..=rest.len() {
                let mut p = rest.clone();
                p.insert(at, n - 1);
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn presence_order_converges() {
        // join, leave, join of one connection, as a client that toggles quickly sends them; and
        // a join racing a leave.
        for changes in [
            vec![Change { join: true }, Change { join: false }],
            vec![
                Change { join: true },
                Change { join: false },
                Change { join: true },
            ],
        ] {
            for schedule in schedules(changes.len()) {
                for delivery in permutations(changes.len()) {
                    let (believed, truth) = run(&changes, &schedule, &delivery);
                    assert_eq!(
                        believed, truth,
                        "{changes:?} run as {schedule:?}, delivered as {delivery:?}"
                    );
                }
            }
        }
    }
}
