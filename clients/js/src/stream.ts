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

export class GroupStream {
  /** The last message delivered, or where delivering starts. `null` until the first join answers. */
  position: Position | null = null;
  /** Messages that came before the one they follow, by epoch and offset. */
  private early = new Map<string, GroupMessage>();

  /** Whether the stream has a starting point (a join has answered). */
  get started(): boolean {
    return this.position !== null;
  }

  /**
   * Starts the stream where a first join says it stands (`{epoch: "", offset: 0}` when the group
   * has no stream yet: its first message, whatever its epoch, comes next). Messages that arrived
   * before the answer and are not after that point were sent before this client joined.
   */
  start(at: Position): Outcome {
    this.position = { ...at };
    return this.drain();
  }

  /** A message pushed live. */
  accept(message: GroupMessage): Outcome {
    if (this.position === null || !this.follows(message)) {
      if (this.position !== null && this.isOld(message)) return { deliver: [], gap: false };
      this.early.set(key(message), message);
      return { deliver: [], gap: this.position !== null };
    }
    return this.drain(message);
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
    }
    for (const message of page.messages) {
      if (message.epoch === page.epoch && !this.isOld(message)) this.early.set(key(message), message);
    }
    return { ...this.drain(), reset };
  }

  /**
   * History could not fill the gap (those messages are gone): deliver what waits, in order,
   * and go on from the last of it.
   */
  skipGap(): GroupMessage[] {
    const waiting = [...this.early.values()].filter((m) => !this.isOld(m));
    this.early.clear();
    // The current epoch's first, then a newer stream's (its epoch came after: it started afresh).
    const epoch = this.position?.epoch;
    const rank = (m: GroupMessage) => (m.epoch === epoch ? 0 : 1);
    waiting.sort((a, b) => rank(a) - rank(b) || a.offset - b.offset);
    const last = waiting.at(-1);
    if (last !== undefined) this.position = { epoch: last.epoch, offset: last.offset };
    return waiting;
  }

  /** Goes on from `at` when it is ahead: what lies between is gone. */
  skipTo(at: Position): void {
    const position = this.position;
    if (position === null || position.epoch !== at.epoch || position.offset < at.offset) {
      this.position = { ...at };
    }
  }

  /** Whether messages wait behind a missing one. */
  get waiting(): boolean {
    return this.early.size > 0;
  }

  /** `message` is the next one: the next offset of the same epoch, or the first of a new stream. */
  private follows(message: GroupMessage): boolean {
    const at = this.position!;
    if (at.epoch === "" && at.offset === 0) return message.offset === 1;
    return message.epoch === at.epoch && message.offset === at.offset + 1;
  }

  /** `message` is at or before the position: delivered already, or sent before the join. */
  private isOld(message: GroupMessage): boolean {
    const at = this.position;
    return at !== null && message.epoch === at.epoch && message.offset <= at.offset;
  }

  private earliest(): GroupMessage | undefined {
    let first: GroupMessage | undefined;
    for (const message of this.early.values()) {
      if (first === undefined || message.offset < first.offset) first = message;
    }
    return first;
  }

  /** Delivers `next` (when given) and every early message that now follows in turn. */
  private drain(next?: GroupMessage): Outcome {
    const deliver: GroupMessage[] = [];
    let message = next;
    for (;;) {
      if (message !== undefined) {
        this.early.delete(key(message));
        deliver.push(message);
        this.position = { epoch: message.epoch, offset: message.offset };
      }
      for (const [k, m] of this.early) if (this.isOld(m)) this.early.delete(k);
      message = [...this.early.values()].find((m) => this.follows(m));
      if (message === undefined) break;
    }
    return { deliver, gap: this.early.size > 0 };
  }
}

function key(message: GroupMessage): string {
  return `${message.epoch}\u0000${message.offset}`;
}
