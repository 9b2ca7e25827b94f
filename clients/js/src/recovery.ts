// One group's stream as the client keeps it across connections: live messages ordered, missing
// ones waited for and then asked of the group's history, and `recovery` events that say whether
// anything was lost (docs/protocol.md, "Recovery of missed group messages").
//
// What history's answers mean, and what the client does with them:
// - `recovered: true` without an offset that is missing: that message is not lost but "not yet":
//   a send still under way took the offset and has not kept it (the service allows a send about
//   35 s). It arrives live or in a later answer, so the client waits for it, asking again after
//   `gapWaitMs`, then twice as long each time, for `inFlightWindowMs` (40 s) since the stream last
//   moved, holding what came after it (at most `maxHeldMessages`); then it gives it up.
// - `recovered: false`: something is gone (aged out, another epoch, never kept). What lies before
//   the first message history still has is passed over, and what is missing after it is waited
//   for as above; a second `recovered: false` gives up everything missing.
// - `skipped`: sends that failed before keeping: delivered to nobody, passed over.
// A stream's head (a `joined` position, a history's top) counts offsets of sends still under way:
// what lies between the position and the head is missing too, and waited for the same way.
// This client's own `excludeSelf` sends come back through history when their ack (which names
// their offset, sent after the pushes) is slow: while one to the group awaits its ack, history is
// not asked, and an answer that came is not used, until the ack (or the send's failure).

import { backoffDelay } from "./backoff.js";
import { asRequestError } from "./calls.js";
import { monotonicNow } from "./clock.js";
import type { Frame, GroupMessage, History, Position } from "./frames.js";
import { RequestError, type FailureCode, type Link } from "./link.js";
import type { ClientEvents, ResolvedOptions } from "./options.js";
import { GroupStream } from "./stream.js";
import type { Timers } from "./timers.js";

export type RecoveryReason = "reconnect" | "gap";

export interface RecoveryContext {
  options: ResolvedOptions;
  timers: Timers;
  emit: <K extends keyof ClientEvents>(type: K, event: ClientEvents[K]) => void;
  /** The connection in use, when it is open. */
  primary: () => Link | null;
  closed: () => boolean;
  /** Settles once this client's `excludeSelf` sends to the group now awaiting their ack have it, or failed; `null` when none waits. */
  ownSends: (group: string) => Promise<void> | null;
}

/** Failures that say the request will never succeed as it is. */
const FOR_GOOD: ReadonlySet<FailureCode> = new Set(["forbidden", "bad_request", "unknown_action", "too_large"]);

const isHistory = (group: string) => (f: Frame): f is History => f.type === "history" && f.group === group;

export class GroupRecovery {
  readonly stream = new GroupStream();
  /** The group was left: nothing more is delivered or asked. */
  private ended = false;
  private recovering = false;
  /** A recovery was asked for while one ran: run one more after it. */
  private again: RecoveryReason | null = null;
  /** Recoveries cut short in a row (for their backoff). */
  private failures = 0;
  /** The service refused history for good: gaps are passed over without asking. */
  private historyOff = false;
  /** A gap's wait (or its hold for this client's own sends) is under way. */
  private cancelGap: (() => void) | null = null;
  /** The furthest the stream is known to reach (a `joined` position, a history's top). */
  private head: Position | null = null;
  /** Ends a recovery's pause once nothing is missing any more. */
  private wake: (() => void) | null = null;
  /** Held messages were given up while a recovery ran (too many held): it reports a loss. */
  private lossDuring = false;

  constructor(
    private readonly group: string,
    private readonly context: RecoveryContext,
  ) {}

  /** Whether a join has answered (the stream has a starting point). */
  get started(): boolean {
    return this.stream.started;
  }

  /** The group was left: stop waiting, asking and delivering. */
  end(): void {
    this.ended = true;
    this.cancelGap?.();
    this.cancelGap = null;
    this.wake?.();
  }

  /** A message pushed live. */
  accept(message: GroupMessage): void {
    if (this.ended) return;
    const outcome = this.stream.accept(message);
    this.deliver(outcome.deliver);
    if (this.stream.held <= this.context.options.maxHeldMessages) {
      if (outcome.gap) this.awaitGap();
    } else if (this.stream.started) {
      // Too many wait: deliver them, in order, and say so.
      this.deliver(this.stream.skipGap());
      if (this.recovering) this.lossDuring = true;
      else this.context.emit("recovery", { group: this.group, recovered: false, reason: "gap" });
    } else {
      // No join has answered yet: where the stream starts is unknown, so what came early is
      // forgotten; history has what follows the join's position.
      this.stream.forgetEarly();
    }
    this.wakeIfWhole();
  }

  /** This client's own `excludeSelf` message took `at`: passed over, never delivered. */
  skipOwn(at: Position): void {
    if (this.ended) return;
    const outcome = this.stream.skip(at);
    this.deliver(outcome.deliver);
    if (outcome.gap) this.awaitGap();
    this.wakeIfWhole();
  }

  /** A join was answered on `link`, the stream being at `at`; `asked`: the app's `join()` waited for it. */
  joined(link: Link, at: Position, asked: boolean): void {
    if (this.ended) return;
    if (!this.stream.started) {
      const outcome = this.stream.start(at);
      this.deliver(outcome.deliver);
      if (outcome.gap) this.awaitGap();
      return;
    }
    // Messages after the join's position come live on this link; up to it, were they delivered?
    if (at.epoch !== "") this.noteHead(at);
    const position = this.stream.position!;
    if (position.epoch === at.epoch && position.offset >= at.offset && !this.stream.waiting) {
      // A join() of a group already joined is not a reconnect: nothing to report.
      if (!asked) this.context.emit("recovery", { group: this.group, recovered: true, reason: "reconnect" });
      return;
    }
    void this.recover(link, "reconnect");
  }

  // --- gaps ---

  /** A message waits behind a missing one: give the missing one a moment, then ask history. */
  private awaitGap(): void {
    if (this.ended || this.context.closed() || this.recovering || this.cancelGap !== null) return;
    this.cancelGap = this.context.timers.after(this.context.options.gapWaitMs, () => void this.gapWaited());
  }

  private async gapWaited(): Promise<void> {
    // Still set: no other wait starts while this one holds for this client's own sends.
    this.cancelGap = () => undefined;
    const own = this.context.ownSends(this.group);
    if (own !== null) await own;
    this.cancelGap = null;
    if (this.ended || this.context.closed() || !this.stream.waiting) return;
    if (this.historyOff) {
      this.passOver();
      this.context.emit("recovery", { group: this.group, recovered: false, reason: "gap" });
      return;
    }
    const link = this.context.primary();
    if (link !== null) void this.recover(link, "gap");
    else this.awaitGap();
  }

  // --- recovery ---

  /**
   * Catches the stream up from history (see the top of this file). A recovery asked for while one
   * runs (a renewal's rejoin) runs again after it. One cut short (the link dropped, no answer,
   * `rate_limited`) runs again after a backoff on the connection in use. History refused for good
   * (`forbidden`, `bad_request`, `unknown_action`) is final for the group: reported (`final:
   * true`) and not asked again. Never rejects.
   */
  private async recover(link: Link, reason: RecoveryReason): Promise<void> {
    if (this.ended) return;
    if (this.recovering) {
      if (this.again !== "reconnect") this.again = reason;
      return;
    }
    if (this.historyOff) {
      this.passOver();
      this.context.emit("recovery", { group: this.group, recovered: false, reason });
      return;
    }
    this.recovering = true;
    this.lossDuring = false;
    let recovered = false;
    let finished = false;
    let refused: RequestError | null = null;
    try {
      recovered = await this.catchUp(link);
      finished = true;
    } catch (error) {
      const failure = asRequestError(error, "history");
      if (FOR_GOOD.has(failure.code)) refused = failure;
    } finally {
      this.recovering = false;
      this.wake = null;
    }
    if (this.ended || this.context.closed()) return;
    if (refused !== null) {
      this.historyOff = true;
      this.again = null;
      this.failures = 0;
      this.passOver();
      this.context.emit("recovery", { group: this.group, recovered: false, reason, final: true, error: refused });
      return;
    }
    if (finished) this.context.emit("recovery", { group: this.group, recovered: recovered && !this.lossDuring, reason });
    this.failures = finished ? 0 : this.failures + 1;
    const again = this.again ?? (finished ? null : reason);
    this.again = null;
    if (again !== null) {
      // After a failure (no answer, rate_limited), not at once: backoff, as for connections.
      const delay = finished ? 0 : backoffDelay(this.failures, this.context.options.backoff);
      this.context.timers.after(delay, () => {
        if (this.ended) return;
        const current = this.context.primary();
        if (current !== null) void this.recover(current, again);
        else if (again === "gap") this.awaitGap();
        // A reconnect's recovery without a connection happens when the next one rejoins.
      });
    } else if (this.stream.waiting) {
      this.awaitGap();
    }
  }

  /**
   * Asks history, and again while something is missing that may still come; resolves with whether
   * nothing was lost once nothing is missing (or what is missing was given up). Rejects when no
   * connection answers, or history is refused.
   */
  private async catchUp(first: Link): Promise<boolean> {
    const { gapWaitMs, inFlightWindowMs } = this.context.options;
    let link = first;
    let recovered = true;
    let lostBefore = false;
    // The in-flight window: from when the stream was last seen at this position.
    let stuckAt = "";
    let stuckSince = 0;
    let waitMs = gapWaitMs;
    for (;;) {
      let lost = false;
      let lowest: Position | null = null;
      let since = this.stream.since(this.head?.epoch || undefined);
      while (since !== null) {
        await this.context.ownSends(this.group);
        link = this.usable(link);
        const page = await link.request({ action: "history", group: this.group, since }, isHistory(this.group));
        // Own excludeSelf sends whose ack is still on its way may be in this page: their acks first.
        await this.context.ownSends(this.group);
        if (this.ended) return recovered;
        if (!page.recovered) lost = true;
        // Offsets whose sends failed before keeping them reached nobody: not a gap.
        for (const offset of page.skipped ?? []) this.deliver(this.stream.skip({ epoch: page.epoch, offset }).deliver);
        const outcome = this.stream.applyHistory(page);
        if (outcome.reset) recovered = false;
        for (const message of page.messages) {
          if (message.epoch === page.epoch && (lowest === null || message.offset < lowest.offset)) lowest = message;
        }
        this.deliver(outcome.deliver);
        this.noteHead({ epoch: page.epoch, offset: page.offset });
        // The next page follows this one, whether or not it joined up with what was delivered.
        const last = page.messages.at(-1);
        since = page.more && last !== undefined ? { epoch: page.epoch, offset: last.offset } : null;
      }
      if (lost) recovered = false;
      if (this.whole()) return recovered;
      if (lost) {
        // What lies before the first message history still keeps is gone; after it, a message
        // may still be on its way. Said twice: give up what is missing.
        if (lostBefore || lowest === null) {
          this.passOver();
          return false;
        }
        lostBefore = true;
        this.deliver(this.stream.passTo({ epoch: lowest.epoch, offset: lowest.offset - 1 }).deliver);
        if (this.whole()) return false;
      }
      const position = this.stream.position!;
      const at = `${position.epoch}\u0000${position.offset}`;
      const now = monotonicNow();
      if (at !== stuckAt) {
        stuckAt = at;
        stuckSince = now;
        waitMs = gapWaitMs;
      }
      const left = stuckSince + inFlightWindowMs - now;
      if (left <= 0) {
        this.passOver();
        return false;
      }
      await this.pause(Math.min(waitMs, left));
      waitMs *= 2;
      if (this.ended || this.whole()) return recovered;
      if (this.context.closed()) throw new RequestError("closed", "the client was closed", "history");
    }
  }

  /** The link to ask on: `link` while it is open, else the one in use. */
  private usable(link: Link): Link {
    if (link.open) return link;
    const primary = this.context.primary();
    if (primary === null) throw new RequestError("connection_lost", "no connection to ask history on", "history");
    return primary;
  }

  /** Resolves after `ms`, or once nothing is missing, or once the client is closed. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const closed = this.context.timers.signal;
      if (closed.aborted) {
        resolve();
        return;
      }
      const done = () => {
        cancel();
        closed.removeEventListener("abort", done);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const cancel = this.context.timers.after(ms, done);
      closed.addEventListener("abort", done, { once: true });
      this.wake = done;
    });
  }

  private wakeIfWhole(): void {
    if (this.wake !== null && this.whole()) this.wake();
  }

  /** Nothing is missing: nothing waits behind a gap, and the head has been reached. */
  private whole(): boolean {
    return !this.stream.waiting && !this.behind();
  }

  /** Whether the stream's known head, in the position's epoch, is past the position. */
  private behind(): boolean {
    const position = this.stream.position;
    const head = this.head;
    return position !== null && head !== null && head.epoch === position.epoch && head.offset > position.offset;
  }

  private noteHead(at: Position): void {
    const head = this.head;
    if (head === null || head.epoch !== at.epoch || head.offset < at.offset) this.head = { ...at };
  }

  /** What is missing will not come: deliver what waits, in order, and go on from the head. */
  private passOver(): void {
    this.deliver(this.stream.skipGap());
    if (this.behind()) this.stream.skipTo(this.head!);
  }

  private deliver(messages: GroupMessage[]): void {
    for (const message of messages) this.context.emit("message", message);
  }
}
