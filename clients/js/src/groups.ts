// The groups a client is in: what the app asked for (joined or left: the last call wins), the
// joins and leaves on each connection, and, for groups followed with `presence: true`, their
// members. Each group's stream (ordering, gaps, recovery from history) is a `GroupRecovery`
// (recovery.ts). The client hands this frames and connections; it never opens one.

import { backoffDelay } from "./backoff.js";
import { asRequestError, Pending } from "./calls.js";
import type { Ack, Frame, Joined, GroupMessage, Left, Peer, Position, PresenceEvent, PresenceOverflow } from "./frames.js";
import { RequestError, type FailureCode, type Link } from "./link.js";
import type { ClientEvents, ResolvedOptions } from "./options.js";
import { Roster } from "./presence.js";
import { GroupRecovery } from "./recovery.js";
import type { Timers } from "./timers.js";

export interface GroupsContext {
  options: ResolvedOptions;
  timers: Timers;
  emit: <K extends keyof ClientEvents>(type: K, event: ClientEvents[K]) => void;
  /** The connection in use, when it is open. */
  primary: () => Link | null;
  closed: () => boolean;
}

interface GroupState {
  presence: boolean;
  roster: Roster | null;
  recovery: GroupRecovery;
  /** The app's join calls waiting for an answer. */
  joined: Set<Pending<Joined>>;
  /** The connections a join of the group was answered on (a join retried there stops). */
  answeredOn: WeakSet<Link>;
  /** Why the last join failed for now: named when the app's join times out. */
  lastFailure: RequestError | null;
}

/** Failures of the connection, not of the request. */
const OF_THE_LINK: ReadonlySet<FailureCode> = new Set(["connection_lost", "timeout", "closed", "aborted"]);

const isJoined = (group: string) => (f: Frame): f is Joined => f.type === "joined" && f.group === group;
const isLeft = (group: string) => (f: Frame): f is Left => f.type === "left" && f.group === group;

export class Groups {
  private readonly groups = new Map<string, GroupState>();
  /** This client's `excludeSelf` sends to each group awaiting their ack: settle when it comes (or they fail). */
  private readonly ownSends = new Map<string, Set<Promise<void>>>();

  constructor(private readonly context: GroupsContext) {}

  /** The groups to be in. */
  names(): string[] {
    return [...this.groups.keys()];
  }

  /** The app joins `group`: the promise of the answer (the caller bounds it in time). */
  want(group: string, presence: boolean): Pending<Joined> {
    let state = this.groups.get(group);
    if (state === undefined) {
      state = {
        presence,
        roster: null,
        recovery: new GroupRecovery(group, { ...this.context, ownSends: (g) => this.ownSendsSettled(g) }),
        joined: new Set(),
        answeredOn: new WeakSet(),
        lastFailure: null,
      };
      this.groups.set(group, state);
    }
    state.presence = presence;
    if (presence) state.roster ??= new Roster();
    else state.roster = null;
    const pending = new Pending<Joined>();
    const joined = state.joined;
    joined.add(pending);
    pending.onSettle(() => joined.delete(pending));
    return pending;
  }

  /** The app leaves `group`: no rejoin; a join not answered yet rejects. */
  forget(group: string): void {
    const state = this.groups.get(group);
    if (state === undefined) return;
    this.groups.delete(group);
    this.drop(state, new RequestError("closed", `left ${group} before the join was answered`, "join"));
  }

  /** Rejects every join waiting for its answer (the groups stay). */
  failJoins(error: RequestError): void {
    for (const state of this.groups.values()) {
      for (const pending of [...state.joined]) pending.reject(error);
    }
  }

  /** Why the last join of `group` failed for now, if it did. */
  lastFailure(group: string): RequestError | null {
    return this.groups.get(group)?.lastFailure ?? null;
  }

  members(group: string): Peer[] | null {
    const roster = this.groups.get(group)?.roster;
    return roster?.hasList ? roster.members : null;
  }

  /**
   * Joins `group` on `link` (a rejoin: the client ends the attempt on a failure for now);
   * resolves with the failure, or `null` (joined, or no longer wanted): never rejects. A join the
   * service refuses for good (`forbidden`, `bad_request`) forgets the group (with a `left` event
   * when it had been joined before); one refused for now (`rate_limited`, `internal`) is tried
   * again after a pause, 5 times in all; a dropped link leaves it to the next connection.
   */
  async joinOn(link: Link, group: string): Promise<RequestError | null> {
    try {
      return await this.joinOnce(link, group, false);
    } catch (error) {
      return asRequestError(error, "join");
    }
  }

  /**
   * Joins `group` on `link`, which works (the app's `join()`): like `joinOn`, but a join that fails
   * for now (no answer, `rate_limited`, `internal`) is tried again with backoff for as long as the
   * group is wanted and the link open, or until a late answer comes.
   */
  async keepJoining(link: Link, group: string): Promise<RequestError | null> {
    try {
      return await this.joinOnce(link, group, true);
    } catch (error) {
      return asRequestError(error, "join");
    }
  }

  /**
   * A `joined` frame no request waited for (its join had timed out, or was answered twice): its
   * list is taken (the roster keeps the newest), and, when the group's stream has not started,
   * its position and the app's waiting joins too.
   */
  lateJoined(link: Link, joined: Joined): void {
    const state = this.groups.get(joined.group);
    if (state === undefined) return;
    const withPresence = joined.members !== undefined || joined.presenceLimit !== undefined;
    if (state.recovery.started) {
      if (withPresence && state.presence) this.listed(joined.group, state, joined);
      return;
    }
    this.joinedOn(link, joined.group, state, joined, withPresence);
  }

  /** Leaves `group` on `link`; resolves with the failure, or `null`: never rejects. */
  async leaveOn(link: Link, group: string): Promise<RequestError | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        await link.request({ action: "leave", group }, isLeft(group));
        return null;
      } catch (error) {
        const failure = asRequestError(error, "leave");
        const passing = failure.code === "rate_limited" || failure.code === "internal";
        if (!passing || attempt >= 4 || !link.open) return failure;
        // A join called since is the last call: it wins, this leave is not sent again.
        if (this.groups.has(group)) return null;
        try {
          await this.context.timers.sleep(this.retryDelay(failure, attempt), link.signal);
        } catch {
          return failure;
        }
        if (this.groups.has(group)) return null;
      }
    }
  }

  /** A group message: whether it belongs to a group this client is in (then it is ordered and delivered). */
  accept(message: GroupMessage): boolean {
    const state = this.groups.get(message.group);
    if (state === undefined) return false;
    state.recovery.accept(message);
    return true;
  }

  /** The ack of this client's own `excludeSelf` send: its place in the stream is passed over. */
  skipOwn(ack: Ack): void {
    if (typeof ack.group !== "string" || typeof ack.epoch !== "string" || typeof ack.offset !== "number") return;
    this.groups.get(ack.group)?.recovery.skipOwn({ epoch: ack.epoch, offset: ack.offset });
  }

  /**
   * An `excludeSelf` send to `group` was written: until the returned function is called (its ack
   * came, after `skipOwn`, or it failed), the group's history answers wait.
   */
  ownSend(group: string): () => void {
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    let sends = this.ownSends.get(group);
    if (sends === undefined) {
      sends = new Set();
      this.ownSends.set(group, sends);
    }
    sends.add(settled);
    const set = sends;
    return () => {
      done();
      set.delete(settled);
      if (set.size === 0 && this.ownSends.get(group) === set) this.ownSends.delete(group);
    };
  }

  /** A presence event or overflow: applied to the group's roster, reported when it changed it. */
  onPresence(frame: PresenceEvent | PresenceOverflow): void {
    const state = this.groups.get(frame.group);
    if (state === undefined || !state.presence) return;
    const roster = (state.roster ??= new Roster());
    if (frame.event === "overflow") {
      if (roster.overflow()) this.context.emit("members", { group: frame.group, members: null, overflow: true });
      return;
    }
    if ((frame.event === "join" || frame.event === "leave") && typeof frame.connectionId === "string" && roster.apply(frame)) {
      this.context.emit("presence", frame);
    }
  }

  // --- joining ---

  /** Settles once the `excludeSelf` sends to `group` awaiting their ack now have it (or failed); `null` when none. */
  private ownSendsSettled(group: string): Promise<void> | null {
    const sends = this.ownSends.get(group);
    return sends === undefined || sends.size === 0 ? null : Promise.all([...sends]).then(() => undefined);
  }

  private async joinOnce(link: Link, group: string, persist: boolean): Promise<RequestError | null> {
    const state = this.groups.get(group);
    if (state === undefined) return null;
    const stillWanted = () => this.groups.get(group) === state && !state.answeredOn.has(link);
    for (let attempt = 0; ; attempt++) {
      const presence = state.presence;
      const command: Record<string, unknown> & { action: string } = { action: "join", group };
      if (presence) command.presence = true;
      let joined: Joined;
      try {
        // A presence join begins a generation of the roster as it is written (presence.ts).
        joined = await link.request(command, isJoined(group), undefined, () => {
          if (presence) state.roster?.begin();
        });
      } catch (error) {
        const failure = asRequestError(error, "join");
        if (this.groups.get(group) !== state) return null;
        const passing = failure.code === "rate_limited" || failure.code === "internal";
        if (!passing && !OF_THE_LINK.has(failure.code)) {
          this.refused(group, state, failure);
          return failure;
        }
        // A late answer came on this link meanwhile: joined.
        if (state.answeredOn.has(link)) return null;
        state.lastFailure = failure;
        const again = passing ? persist || attempt < 4 : persist && failure.code === "timeout";
        if (!again || !link.open) return failure;
        try {
          await this.context.timers.sleep(this.retryDelay(failure, attempt), link.signal);
        } catch {
          return failure;
        }
        if (!stillWanted()) return null;
        continue;
      }
      if (this.groups.get(group) !== state) return null;
      this.joinedOn(link, group, state, joined, presence);
      return null;
    }
  }

  /** A join of `group` was answered on `link` (`withPresence`: the join asked for presence). */
  private joinedOn(link: Link, group: string, state: GroupState, joined: Joined, withPresence: boolean): void {
    state.answeredOn.add(link);
    state.lastFailure = null;
    // The answer to a join without presence says nothing of the members, even if presence is wanted now.
    if (withPresence && state.presence) this.listed(group, state, joined);
    const asked = state.joined.size > 0;
    for (const pending of [...state.joined]) pending.resolve(joined);
    const at: Position = joined.epoch === undefined ? { epoch: "", offset: 0 } : { epoch: joined.epoch, offset: joined.offset ?? 0 };
    state.recovery.joined(link, at, asked);
  }

  /** A presence join's answer: its list goes to the roster, and the members as they stand are reported. */
  private listed(group: string, state: GroupState, joined: Joined): void {
    const roster = (state.roster ??= new Roster());
    roster.reset(joined);
    const members = roster.members;
    const event: ClientEvents["members"] = { group, members };
    if (joined.presenceLimit !== undefined) event.presenceLimit = joined.presenceLimit;
    // A list, but an overflow came while the join was under way: the group is over the limit.
    else if (members === null) event.overflow = true;
    this.context.emit("members", event);
  }

  /** The service refused to join `group` for good: forget it. */
  private refused(group: string, state: GroupState, failure: RequestError): void {
    if (this.groups.get(group) === state) this.groups.delete(group);
    const wasIn = state.recovery.started;
    this.drop(state, failure);
    if (wasIn) this.context.emit("left", { group, reason: "refused", error: failure });
  }

  private drop(state: GroupState, error: RequestError): void {
    state.recovery.end();
    for (const pending of [...state.joined]) pending.reject(error);
  }

  private retryDelay(failure: RequestError, attempt: number): number {
    const { backoff, rateLimit } = this.context.options;
    // Refused for its rate: the window must turn first.
    return Math.max(backoffDelay(attempt + 1, backoff), failure.code === "rate_limited" ? rateLimit.windowMs / 4 : 0);
  }
}
