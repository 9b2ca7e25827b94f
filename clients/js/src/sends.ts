// The app's sends: each is written once, on the connection in use or, without one, queued in order
// until one opens; it settles by its ack, its error frame, its timeouts, the connection's loss or
// `close()`. Queued sends are flushed in order under the service's rate limit, after what the
// rejoin wrote (a send made meanwhile goes behind them). An `excludeSelf` send to a group holds the
// group's history answers until its ack, which names its offset, so the client passes over its own
// message instead of receiving it back (groups.ts, recovery.ts).

import { bound, Pending } from "./calls.js";
import type { Ack, ErrorFrame, Target } from "./frames.js";
import type { Groups } from "./groups.js";
import { RequestError, type Link } from "./link.js";
import type { ResolvedOptions, SendOptions } from "./options.js";
import type { Timers } from "./timers.js";

/** How many `excludeSelf` sends are remembered until their ack (one may come after its timeout). */
const SELF_EXCLUDED_KEPT = 1_000;

interface PendingSend {
  frame: Record<string, unknown>;
  /** The connection it was written on; `null` while it waits for one. */
  link: Link | null;
  pending: Pending<Ack>;
  excludeSelf: boolean;
  cancelAck: (() => void) | null;
}

export interface SendsContext {
  options: ResolvedOptions;
  timers: Timers;
  groups: Groups;
  /** The connection in use, when it is open. */
  primary: () => Link | null;
  /** No ack in time on `link`: is it still alive? */
  probe: (link: Link) => void;
}

export class Sends {
  private readonly records = new Map<string, PendingSend>();
  /** Ids of sends waiting to be written, in order. */
  private readonly outbox = new Set<string>();
  /** Ids of `excludeSelf` sends whose ack has not come yet. */
  private readonly selfExcluded = new Set<string>();
  private cancelFlush: (() => void) | null = null;
  private sequence = 0;
  private readonly idPrefix = Math.random().toString(36).slice(2, 10);

  constructor(private readonly context: SendsContext) {}

  /** How many sends wait to be written. */
  get queued(): number {
    return this.outbox.size;
  }

  /**
   * Sends `data` to `to` (see `Client.send`). `queueFull`: whether no more calls may wait for a
   * connection (asked only when there is none).
   */
  send(to: Target, data: unknown, options: SendOptions, queueFull: () => RequestError | null): Promise<Ack> {
    const id = `${this.idPrefix}-${++this.sequence}`;
    const frame: Record<string, unknown> = { action: "send", to, data, id };
    if (options.exclude !== undefined) frame.exclude = options.exclude;
    if (options.excludeSelf) frame.excludeSelf = true;
    const { maxMessageBytes, callTimeoutMs } = this.context.options;
    const bytes = new TextEncoder().encode(JSON.stringify(frame)).length;
    if (bytes > maxMessageBytes) {
      return Promise.reject(new RequestError("too_large", `the message is ${bytes} bytes; at most ${maxMessageBytes} go in one frame`, "send"));
    }
    const primary = this.context.primary();
    const full = primary === null ? queueFull() : null;
    if (full !== null) return Promise.reject(full);
    const pending = new Pending<Ack>();
    const record: PendingSend = { frame, link: null, pending, excludeSelf: options.excludeSelf === true, cancelAck: null };
    this.records.set(id, record);
    pending.onSettle(() => {
      this.records.delete(id);
      this.outbox.delete(id);
      record.cancelAck?.();
    });
    bound(pending, this.context.timers, "send", options.timeoutMs ?? callTimeoutMs, options.signal, (ms) => {
      if (record.link !== null) return `no ack within ${ms} ms: the message may or may not have been sent`;
      return this.context.primary() === null
        ? `no connection within ${ms} ms: the message was not sent`
        : `not sent within ${ms} ms: queued sends wait for room under the rate limit`;
    });
    if (pending.settled) return pending.promise;
    if (primary !== null && this.outbox.size === 0) {
      this.write(primary, id);
    } else {
      this.outbox.add(id);
      if (primary !== null) this.flush(primary);
    }
    return pending.promise;
  }

  /** Writes the queued sends on `link`, in order, as the rate limit leaves room. */
  flush(link: Link): void {
    this.cancelFlush?.();
    this.cancelFlush = null;
    for (const id of [...this.outbox]) {
      if (this.context.primary() !== link) return;
      const wait = link.sendWait();
      if (wait > 0) {
        this.cancelFlush = this.context.timers.after(wait, () => this.flush(link), link.signal);
        return;
      }
      this.outbox.delete(id);
      this.write(link, id);
    }
  }

  /** A send's ack: an `excludeSelf` one's place in its group is passed over first. */
  onAck(ack: Ack): void {
    if (this.selfExcluded.delete(ack.id)) this.context.groups.skipOwn(ack);
    this.records.get(ack.id)?.pending.resolve(ack);
  }

  /**
   * An error frame on `link`: whether it was a send's (then that send rejects). A send refused or
   * failed in part names its id (a partial failure after its ack comes as an event). Without an
   * id, errors name their action (or none: too_large, rate_limited): one send alone waiting on
   * this link is the one refused; `internal` can follow an ack (some recipients failed), so it is
   * never pinned on another send.
   */
  onError(link: Link, frame: ErrorFrame): boolean {
    if (frame.id !== undefined) {
      this.selfExcluded.delete(frame.id);
      const record = this.records.get(frame.id);
      if (record === undefined) return false;
      record.pending.reject(new RequestError(frame.code, frame.message, "send"));
      return true;
    }
    const waiting = [...this.records.values()].filter((s) => s.link === link);
    const forSend = frame.action === "send" || (frame.action === undefined && !link.busy);
    if (forSend && frame.code !== "internal" && waiting.length === 1) {
      waiting[0]!.pending.reject(new RequestError(frame.code, frame.message, "send"));
      return true;
    }
    return false;
  }

  /** How many sends written on `link` await their ack. */
  out(link: Link): number {
    let count = 0;
    for (const record of this.records.values()) if (record.link === link) count += 1;
    return count;
  }

  /** `link` ended: what was written on it and not acked rejects. */
  lost(link: Link, detail: string): void {
    for (const record of [...this.records.values()]) {
      if (record.link === link) {
        record.pending.reject(
          new RequestError("connection_lost", `the connection was lost before the ack (${detail}): the message may or may not have been sent`, "send"),
        );
      }
    }
  }

  /** Rejects the sends waiting to be written. */
  failQueued(error: RequestError): void {
    for (const id of [...this.outbox]) this.records.get(id)?.pending.reject(error);
    this.outbox.clear();
  }

  /** Rejects every send (`close()`). */
  failAll(error: RequestError): void {
    this.cancelFlush?.();
    this.cancelFlush = null;
    for (const record of [...this.records.values()]) record.pending.reject(error);
    this.outbox.clear();
  }

  private write(link: Link, id: string): void {
    const record = this.records.get(id);
    if (record === undefined) return;
    try {
      link.write(record.frame);
    } catch {
      this.outbox.add(id);
      return;
    }
    record.link = link;
    if (record.excludeSelf) {
      this.selfExcluded.add(id);
      if (this.selfExcluded.size > SELF_EXCLUDED_KEPT) this.selfExcluded.delete(this.selfExcluded.values().next().value!);
      // Only a send to exactly one group takes a place in its stream.
      const group = (record.frame.to as { group?: unknown }).group;
      if (typeof group === "string") record.pending.onSettle(this.context.groups.ownSend(group));
    }
    record.cancelAck = this.context.timers.after(this.context.options.requestTimeoutMs, () => {
      record.pending.reject(new RequestError("timeout", "no ack in time: the message may or may not have been sent", "send"));
      this.context.probe(link);
    });
  }
}
