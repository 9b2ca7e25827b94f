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

import type { Joined, Peer, PresenceEvent } from "./frames.js";

interface Entry {
  /** The version this entry is as of; `null` without versions. */
  version: number | null;
  present: boolean;
  uid: string | null;
}

export class Roster {
  /** The version of the list the roster started from; `null` before it, or without versions. */
  private listVersion: number | null = null;
  private listed = false;
  private overflowed = false;
  private entries = new Map<string, Entry>();

  /** Whether a list has arrived (events before it are kept, not reported). */
  get hasList(): boolean {
    return this.listed;
  }

  /** Whether the group is over the presence limit: no list, no events. */
  get isOverflowed(): boolean {
    return this.overflowed;
  }

  /**
   * A `joined` frame: its list replaces the roster. What events already said as of a newer
   * version than the list (they can overtake the `joined` frame) is kept.
   */
  reset(joined: Joined): void {
    const version = typeof joined.version === "number" ? joined.version : null;
    const newer = version === null ? [] : [...this.entries].filter(([, e]) => e.version !== null && e.version > version);
    this.entries = new Map();
    this.listVersion = version;
    this.listed = true;
    this.overflowed = joined.members === undefined;
    for (const member of joined.members ?? []) {
      this.entries.set(member.connectionId, { version, present: true, uid: member.uid });
    }
    for (const [connectionId, entry] of newer) this.entries.set(connectionId, entry);
  }

  /** A join or leave event; whether it changed who is in the group (stale events change nothing). */
  apply(event: PresenceEvent): boolean {
    if (this.overflowed) return false;
    const version = typeof event.version === "number" ? event.version : null;
    const entry = this.entries.get(event.connectionId);
    if (version !== null) {
      if (this.listVersion !== null && version <= this.listVersion) return false;
      if (entry !== undefined && entry.version !== null && version <= entry.version) return false;
    }
    const present = event.event === "join";
    const changed = (entry?.present ?? false) !== present;
    this.entries.set(event.connectionId, {
      version: version ?? entry?.version ?? null,
      present,
      uid: event.uid ?? entry?.uid ?? null,
    });
    return changed && this.listed;
  }

  /** The group went over the limit: no more events until the next `joined` frame. */
  overflow(): boolean {
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
