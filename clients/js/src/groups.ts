// The groups a client is in: what the app asked for (joined or left: the last call wins), each
// group's stream (ordering, gaps, recovery from history) and, for groups followed with
// `presence: true`, its members. The client hands it frames and connections; it never opens one.

import { backoffDelay } from "./backoff.js";
import { asRequestError, Pending } from "./calls.js";
import type { Ack, Frame, GroupMessage, History, Joined, Left, Peer, Position, PresenceEvent, PresenceOverflow } from "./frames.js";
import { RequestError, type FailureCode, type Link } from "./link.js";
import type { ClientEvents, ResolvedOptions } from "./options.js";
import { Roster } from "./presence.js";
import { GroupStream } from "./stream.js";
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
  stream: GroupStream;
  recovering: boolean;
  /** A recovery was asked for while one ran: run one more after it. */
  again: "reconnect" | "gap" | null;
  /** Recoveries cut short in a row (for their backoff). */
  failures: number;
  /** The service refused history for good: gaps are passed over without asking. */
  historyOff: boolean;
  cancelGap: (() => void) | null;
  /** The app's join calls waiting for an answer. */
  joined: Set<Pending<Joined>>;
}

/** Failures that say the request will never succeed as it is. */
const FOR_GOOD: ReadonlySet<FailureCode> = new Set(["forbidden", "bad_request", "unknown_action", "too_large"]);
/** Failures of the connection, not of the request. */
const OF_THE_LINK: ReadonlySet<FailureCode> = new Set(["connection_lost", "timeout", "closed", "aborted"]);

const isJoined = (group: string) => (f: Frame): f is Joined => f.type === "joined" && f.group === group;
const isLeft = (group: string) => (f: Frame): f is Left => f.type === "left" && f.group === group;
const isHistory = (group: string) => (f: Frame): f is History => f.type === "history" && f.group === group;

export class Groups {
  private readonly groups = new Map<string, GroupState>();

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
        stream: new GroupStream(),
        recovering: false,
        again: null,
        failures: 0,
        historyOff: false,
        cancelGap: null,
        joined: new Set(),
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

  members(group: string): Peer[] | null {
    const roster = this.groups.get(group)?.roster;
    return roster?.hasList ? roster.members : null;
  }

  /**
   * Joins `group` on `link`; resolves with the failure, or `null` (joined, or no longer wanted):
   * never rejects. A join the service refuses for good (`forbidden`, `bad_request`) forgets the
   * group (with a `left` event when it had been joined before); one refused for now
   * (`rate_limited`, `internal`) is tried again after a pause; a dropped link leaves it to the next
   * connection.
   */
  async joinOn(link: Link, group: string): Promise<RequestError | null> {
    try {
      return await this.joinOnce(link, group);
    } catch (error) {
      return asRequestError(error, "join");
    }
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
    const outcome = state.stream.accept(message);
    this.deliver(outcome.deliver);
    if (state.stream.held <= this.context.options.maxHeldMessages) {
      if (outcome.gap) this.awaitGap(message.group, state);
    } else if (state.stream.started) {
      this.giveUpGap(message.group, state, "gap");
    } else {
      // No join has answered yet: where the stream starts is unknown, so what came early is
      // forgotten; history has what follows the join's position.
      state.stream.forgetEarly();
    }
    return true;
  }

  /** The ack of this client's own `excludeSelf` send: its place in the stream is passed over. */
  skipOwn(ack: Ack): void {
    if (typeof ack.group !== "string" || typeof ack.epoch !== "string" || typeof ack.offset !== "number") return;
    const state = this.groups.get(ack.group);
    if (state === undefined) return;
    const outcome = state.stream.skip({ epoch: ack.epoch, offset: ack.offset });
    this.deliver(outcome.deliver);
    if (outcome.gap) this.awaitGap(ack.group, state);
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

  private async joinOnce(link: Link, group: string): Promise<RequestError | null> {
    const state = this.groups.get(group);
    if (state === undefined) return null;
    let joined: Joined | undefined;
    for (let attempt = 0; joined === undefined; attempt++) {
      const command: Record<string, unknown> & { action: string } = { action: "join", group };
      if (state.presence) command.presence = true;
      try {
        joined = await link.request(command, isJoined(group));
      } catch (error) {
        const failure = asRequestError(error, "join");
        if (this.groups.get(group) !== state) return null;
        const passing = failure.code === "rate_limited" || failure.code === "internal";
        if (passing && attempt < 4 && link.open) {
          await this.context.timers.sleep(this.retryDelay(failure, attempt), link.signal, () => failure);
          if (this.groups.get(group) !== state) return null;
          continue;
        }
        if (!passing && !OF_THE_LINK.has(failure.code)) this.refused(group, state, failure);
        return failure;
      }
    }
    if (this.groups.get(group) !== state) return null;
    this.joinedOn(link, group, state, joined);
    return null;
  }

  private joinedOn(link: Link, group: string, state: GroupState, joined: Joined): void {
    if (state.presence) {
      const roster = (state.roster ??= new Roster());
      roster.reset(joined);
      const members = roster.members;
      this.context.emit(
        "members",
        joined.presenceLimit === undefined ? { group, members } : { group, members, presenceLimit: joined.presenceLimit },
      );
    }
    const asked = state.joined.size > 0;
    for (const pending of [...state.joined]) pending.resolve(joined);
    const at: Position = joined.epoch === undefined ? { epoch: "", offset: 0 } : { epoch: joined.epoch, offset: joined.offset ?? 0 };
    if (!state.stream.started) {
      const outcome = state.stream.start(at);
      this.deliver(outcome.deliver);
      if (outcome.gap) this.awaitGap(group, state);
      return;
    }
    // Messages after the join's position come live on this link; before it, were they delivered?
    const position = state.stream.position!;
    if (position.epoch === at.epoch && position.offset >= at.offset && !state.stream.waiting) {
      // A join() of a group already joined is not a reconnect: nothing to report.
      if (!asked) this.context.emit("recovery", { group, recovered: true, reason: "reconnect" });
      return;
    }
    void this.recover(link, group, state, "reconnect", at);
  }

  /** The service refused to join `group` for good: forget it. */
  private refused(group: string, state: GroupState, failure: RequestError): void {
    if (this.groups.get(group) === state) this.groups.delete(group);
    const wasIn = state.stream.started;
    this.drop(state, failure);
    if (wasIn) this.context.emit("left", { group, reason: "refused", error: failure });
  }

  private drop(state: GroupState, error: RequestError): void {
    state.cancelGap?.();
    state.cancelGap = null;
    for (const pending of [...state.joined]) pending.reject(error);
  }

  private retryDelay(failure: RequestError, attempt: number): number {
    const { backoff, rateLimit } = this.context.options;
    // Refused for its rate: the window must turn first.
    return Math.max(backoffDelay(attempt + 1, backoff), failure.code === "rate_limited" ? rateLimit.windowMs / 4 : 0);
  }

  // --- gaps and recovery ---

  /** A message waits behind a missing one: give the missing one a moment, then ask history. */
  private awaitGap(group: string, state: GroupState): void {
    if (this.context.closed() || state.recovering || state.cancelGap !== null) return;
    state.cancelGap = this.context.timers.after(this.context.options.gapWaitMs, () => {
      state.cancelGap = null;
      if (!state.stream.waiting || this.groups.get(group) !== state) return;
      if (state.historyOff) {
        this.giveUpGap(group, state, "gap");
        return;
      }
      const link = this.context.primary();
      if (link !== null) void this.recover(link, group, state, "gap");
      else this.awaitGap(group, state);
    });
  }

  /** What is missing will not come: deliver what waits, in order, and say so. */
  private giveUpGap(group: string, state: GroupState, reason: "reconnect" | "gap", at?: Position): void {
    if (at !== undefined) state.stream.skipTo(at);
    this.deliver(state.stream.skipGap());
    this.context.emit("recovery", { group, recovered: false, reason });
  }

  /**
   * Asks the group's history after what was delivered, page by page. A message still missing
   * after that (not kept yet, or gone) gets one more wait and one more ask; then what waits
   * behind it is delivered and the recovery says `recovered: false`. A recovery asked for while
   * one runs (a renewal's rejoin) runs again after it, on the connection then in use. History
   * refused for good (`forbidden`, `bad_request`, `unknown_action`) is final for the group: it is
   * reported (`final: true`) and not asked again. Never rejects.
   */
  private async recover(link: Link, group: string, state: GroupState, reason: "reconnect" | "gap", at?: Position): Promise<void> {
    if (state.recovering) {
      state.again = reason;
      return;
    }
    if (state.historyOff) {
      this.giveUpGap(group, state, reason, at);
      return;
    }
    state.recovering = true;
    let recovered = true;
    // The service said something after the position is no longer had: no use waiting for it.
    let lost = false;
    let finished = false;
    let refused: RequestError | null = null;
    try {
      for (let attempt = 0; ; attempt++) {
        let top: History | null = null;
        let since = state.stream.since(at?.epoch || undefined);
        while (since !== null) {
          const page = await link.request({ action: "history", group, since }, isHistory(group));
          if (this.groups.get(group) !== state) return;
          if (!page.recovered) lost = true;
          // Offsets whose sends failed before keeping them reached nobody: not a gap.
          for (const offset of page.skipped ?? []) {
            this.deliver(state.stream.skip({ epoch: page.epoch, offset }).deliver);
          }
          const outcome = state.stream.applyHistory(page);
          if (outcome.reset) recovered = false;
          this.deliver(outcome.deliver);
          top = page;
          // The next page follows this one, whether or not it joined up with what was delivered.
          const last = page.messages.at(-1);
          since = page.more && last !== undefined ? { epoch: page.epoch, offset: last.offset } : null;
        }
        const position = state.stream.position;
        const behind = top !== null && position !== null && top.epoch === position.epoch && top.offset > position.offset;
        if (!state.stream.waiting && !behind) break;
        if (attempt >= 1 || lost) {
          recovered = false;
          this.deliver(state.stream.skipGap());
          if (top !== null && behind) state.stream.skipTo({ epoch: top.epoch, offset: top.offset });
          break;
        }
        await this.context.timers.sleep(this.context.options.gapWaitMs, link.signal);
        if (!link.open || this.groups.get(group) !== state) return;
      }
      finished = true;
    } catch (error) {
      // The link dropped or did not answer: tried again below, on the connection in use.
      const failure = asRequestError(error, "history");
      if (FOR_GOOD.has(failure.code)) refused = failure;
    } finally {
      state.recovering = false;
    }
    if (this.context.closed() || this.groups.get(group) !== state) return;
    if (refused !== null) {
      state.historyOff = true;
      state.again = null;
      state.failures = 0;
      if (at !== undefined) state.stream.skipTo(at);
      this.deliver(state.stream.skipGap());
      this.context.emit("recovery", { group, recovered: false, reason, final: true, error: refused });
      return;
    }
    if (finished) this.context.emit("recovery", { group, recovered, reason });
    state.failures = finished ? 0 : state.failures + 1;
    const again = state.again ?? (finished ? null : reason);
    state.again = null;
    if (again !== null) {
      // After a failure (no answer, rate_limited), not at once: backoff, as for connections.
      const delay = finished ? 0 : backoffDelay(state.failures, this.context.options.backoff);
      this.context.timers.after(delay, () => {
        if (this.groups.get(group) !== state) return;
        const current = this.context.primary();
        if (current !== null) void this.recover(current, group, state, again, at);
        else if (again === "gap") this.awaitGap(group, state);
        // A reconnect's recovery without a connection happens when the next one rejoins.
      });
    } else if (state.stream.waiting) {
      this.awaitGap(group, state);
    }
  }

  private deliver(messages: GroupMessage[]): void {
    for (const message of messages) this.context.emit("message", message);
  }
}
