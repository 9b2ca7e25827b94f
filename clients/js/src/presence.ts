// Who is in one group, as a follower (a join with `presence: true`) learns it: a list from the
// `joined` frame, then join and leave events that may arrive in any order. Pure logic, no sockets.
//
// The rule that makes the order irrelevant: each event carries the group's presence `version` as
// of which it holds ("as of V, this connection is a member" / "is not"). An event is applied only
// if V is above the version of the list it started from and above the highest version applied for
// that connection; an older one is stale and dropped. Leaves are remembered (tombstones), so a
// join that arrives after a newer leave is dropped too. Once events stop, the roster holds exactly
// the group's members, whatever the order. Events without a version (an older server) are applied
// as they come.
//
// Generations. The version counter may start again from 1 (the service keeps it in an item that
// expires 3 hours after the group's last presence change), and a client outlives many connections,
// so versions are only compared within a generation: one begins each time a presence join is
// written (`begin`). Its `joined` list replaces everything; what is kept besides is what events
// said since that join was written, as of a version above the list's (those events may have
// overtaken the answer). A list older than the one already taken in the same generation (the two
// connections of a renewal answer in either order) is ignored, and an overflow event that came
// while the join was under way is not undone by its answer.

import type { Joined, Peer, PresenceEvent } from "./frames.js";

interface Entry {
  /** The version this entry is as of; `null` without versions. */
  version: number | null;
  present: boolean;
  uid: string | null;
  /** The generation it was applied in. */
  generation: number;
}

export class Roster {
  /** Bumped each time a presence join is written. */
  private generation = 0;
  /** The generation of the list in use; -1 before one. */
  private listGeneration = -1;
  /** The version of the list the roster started from; `null` before it, or without versions. */
  private listVersion: number | null = null;
  private listed = false;
  private overflowed = false;
  /** The generation in which the last overflow event came. */
  private overflowGeneration = -1;
  private entries = new Map<string, Entry>();
  /**
   * What events said since the presence join was written, until its list comes (then they are in
   * `entries`): the highest version per connection, whatever the entries held before.
   */
  private sinceJoin: Map<string, Entry> | null = new Map();

  /** Whether a list has arrived (events before it are kept, not reported). */
  get hasList(): boolean {
    return this.listed;
  }

  /** Whether the group is over the presence limit: no list, no events. */
  get isOverflowed(): boolean {
    return this.overflowed;
  }

  /** A presence join was written: a new generation begins. */
  begin(): void {
    this.generation += 1;
    this.sinceJoin = new Map();
  }

  /**
   * A `joined` frame with presence: its list replaces the roster, with what events said since its
   * join was written as of a newer version than the list. Whether it was taken (a list older than
   * the one taken in the same generation is not).
   */
  reset(joined: Joined): boolean {
    const version = typeof joined.version === "number" ? joined.version : null;
    const sameGeneration = this.listed && this.listGeneration === this.generation;
    if (sameGeneration && version !== null && this.listVersion !== null && version < this.listVersion) return false;
    const since = this.sinceJoin ?? new Map([...this.entries].filter(([, e]) => e.generation === this.generation));
    const newer = version === null ? [] : [...since].filter(([, e]) => e.version !== null && e.version > version);
    this.entries = new Map();
    this.sinceJoin = null;
    this.listVersion = version;
    this.listGeneration = this.generation;
    this.listed = true;
    this.overflowed = joined.members === undefined || this.overflowGeneration === this.generation;
    if (this.overflowed) return true;
    for (const member of joined.members ?? []) {
      this.entries.set(member.connectionId, { version, present: true, uid: member.uid, generation: this.generation });
    }
    for (const [connectionId, entry] of newer) this.entries.set(connectionId, { ...entry, generation: this.generation });
    return true;
  }

  /** A join or leave event; whether it changed who is in the group (stale events change nothing). */
  apply(event: PresenceEvent): boolean {
    const version = typeof event.version === "number" ? event.version : null;
    const present = event.event === "join";
    if (this.sinceJoin !== null) {
      const seen = this.sinceJoin.get(event.connectionId);
      if (version === null || seen?.version == null || version > seen.version) {
        this.sinceJoin.set(event.connectionId, { version, present, uid: event.uid ?? seen?.uid ?? null, generation: this.generation });
      }
    }
    if (this.overflowed) return false;
    const entry = this.entries.get(event.connectionId);
    if (version !== null) {
      if (this.listVersion !== null && version <= this.listVersion) return false;
      if (entry !== undefined && entry.version !== null && version <= entry.version) return false;
    }
    const changed = (entry?.present ?? false) !== present;
    this.entries.set(event.connectionId, {
      version: version ?? entry?.version ?? null,
      present,
      uid: event.uid ?? entry?.uid ?? null,
      generation: this.generation,
    });
    return changed && this.listed;
  }

  /** The group went over the limit: no more events until the next `joined` frame of a later join. */
  overflow(): boolean {
    this.overflowGeneration = this.generation;
    if (this.overflowed) return false;
    this.overflowed = true;
    this.entries.clear();
    return true;
  }

  /** The members, in the order they came; `null` over the limit. */
  get members(): Peer[] | null {
    if (this.overflowed) return null;
    const members: Peer[] = [];
    for (const [connectionId, entry] of this.entries) {
      if (entry.present) members.push({ connectionId, uid: entry.uid });
    }
    return members;
  }
}
