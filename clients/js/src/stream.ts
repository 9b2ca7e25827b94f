// One group's stream as this client has seen it: what it delivered last, and what arrived early.
// Pure logic, no sockets: the client feeds it live messages and history pages, and delivers what
// it returns, so that every message of the group reaches the application once and in order.

import type { GroupMessage, History, Position } from "./frames.js";

/** What to do with what came in. */
export interface Outcome {
  /** To hand to the application now, in this order. */
  deliver: GroupMessage[];
  /** Messages are waiting behind a missing one: wait a moment for it, then ask for history. */
  gap: boolean;
}

/** A place ahead of the position: a message, or `null` for one to pass over (see `skip`). */
interface Early {
  epoch: string;
  offset: number;
  message: GroupMessage | null;
}

export class GroupStream {
  /** The last message delivered, or where delivering starts. `null` until the first join answers. */
  position: Position | null = null;
  /** Messages that came before the one they follow, and places to skip, by epoch and offset. */
  private early = new Map<string, Early>();

  /** Whether the stream has a starting point (a join has answered). */
  get started(): boolean {
    return this.position !== null;
  }

  /** How many places wait ahead of the position. */
  get held(): number {
    return this.early.size;
  }

  /** Whether messages wait behind a missing one. */
  get waiting(): boolean {
    return this.early.size > 0;
  }

  /**
   * Starts the stream where a first join says it stands (`{epoch: "", offset: 0}` when the group
   * has no stream yet: its first message, whatever its epoch, comes next). Messages that arrived
   * before the answer and are not after that point were sent before this client joined.
   */
  start(at: Position): Outcome {
    this.position = { ...at };
    this.purge();
    return this.drain();
  }

  /** A message pushed live. */
  accept(message: GroupMessage): Outcome {
    if (this.isOld(message)) return { deliver: [], gap: false };
    const k = key(message);
    // A place to skip stays skipped; a copy of a message held already changes nothing.
    if (!this.early.has(k)) this.early.set(k, { epoch: message.epoch, offset: message.offset, message });
    return this.drain();
  }

  /**
   * A place this client must not deliver: its own message, sent with `excludeSelf`, as its ack
   * names it. The stream passes over it as if delivered, so no gap is seen there, and neither
   * history nor another connection's copy brings it back.
   */
  skip(at: Position): Outcome {
    if (this.isOld(at)) return { deliver: [], gap: false };
    this.early.set(key(at), { epoch: at.epoch, offset: at.offset, message: null });
    return this.drain();
  }

  /** Where to ask history from: the position, with the epoch filled in when the stream had none. */
  since(epochSeen?: string): Position | null {
    if (this.position === null) return null;
    if (this.position.epoch !== "") return this.position;
    const epoch = epochSeen ?? this.earliest()?.epoch;
    return epoch === undefined ? null : { epoch, offset: 0 };
  }

  /**
   * A page of history: delivers what follows the position, oldest first; what comes after a
   * message still missing waits with the early ones. A page of another epoch (the stream started
   * afresh) moves the stream to it: what came before is lost (`reset`).
   */
  applyHistory(page: History): Outcome & { reset: boolean } {
    let reset = false;
    if (this.position === null || this.position.epoch !== page.epoch) {
      reset = this.position !== null && this.position.epoch !== "";
      this.position = { epoch: page.epoch, offset: 0 };
      this.purge();
    }
    for (const message of page.messages) {
      const k = key(message);
      if (message.epoch === page.epoch && !this.isOld(message) && !this.early.has(k)) {
        this.early.set(k, { epoch: message.epoch, offset: message.offset, message });
      }
    }
    return { ...this.drain(), reset };
  }

  /**
   * History could not fill the gap (those messages are gone): deliver what waits, in order,
   * and go on from the last of it.
   */
  skipGap(): GroupMessage[] {
    const waiting = [...this.early.values()].filter((e) => !this.isOld(e));
    this.early.clear();
    // The current epoch's first, then a newer stream's (its epoch came after: it started afresh).
    const epoch = this.position?.epoch;
    const rank = (e: Early) => (e.epoch === epoch ? 0 : 1);
    waiting.sort((a, b) => rank(a) - rank(b) || a.offset - b.offset);
    const last = waiting.at(-1);
    if (last !== undefined) this.position = { epoch: last.epoch, offset: last.offset };
    return waiting.flatMap((e) => (e.message === null ? [] : [e.message]));
  }

  /** Forgets every message held ahead of the position. */
  forgetEarly(): void {
    this.early.clear();
  }

  /** Goes on from `at` when it is ahead: what lies between is gone. */
  skipTo(at: Position): void {
    const position = this.position;
    if (position === null || position.epoch !== at.epoch || position.offset < at.offset) {
      this.position = { ...at };
      this.purge();
    }
  }

  /** Goes on from `at` when it is ahead (what lies between is gone), and delivers what follows it. */
  passTo(at: Position): Outcome {
    this.skipTo(at);
    return this.drain();
  }

  /** The next place: the next offset of the same epoch, or the first of a new stream. */
  private next(): Early | undefined {
    const at = this.position!;
    if (at.epoch === "" && at.offset === 0) {
      for (const e of this.early.values()) if (e.offset === 1) return e;
      return undefined;
    }
    return this.early.get(`${at.epoch}\u0000${at.offset + 1}`);
  }

  /** `at` is at or before the position: delivered already, or sent before the join. */
  private isOld(at: Position): boolean {
    const position = this.position;
    return position !== null && at.epoch === position.epoch && at.offset <= position.offset;
  }

  private earliest(): Early | undefined {
    let first: Early | undefined;
    for (const e of this.early.values()) {
      if (first === undefined || e.offset < first.offset) first = e;
    }
    return first;
  }

  /** Forgets what is at or before the position. */
  private purge(): void {
    for (const [k, e] of this.early) if (this.isOld(e)) this.early.delete(k);
  }

  /** Delivers every early message that now follows in turn (one map look-up per message). */
  private drain(): Outcome {
    if (this.position === null) return { deliver: [], gap: false };
    const deliver: GroupMessage[] = [];
    let moved = false;
    for (let e = this.next(); e !== undefined; e = this.next()) {
      this.early.delete(key(e));
      if (e.message !== null) deliver.push(e.message);
      this.position = { epoch: e.epoch, offset: e.offset };
      moved = true;
    }
    if (moved && this.early.size > 0) this.purge();
    return { deliver, gap: this.early.size > 0 };
  }
}

function key(at: Position): string {
  return `${at.epoch}\u0000${at.offset}`;
}
