// Frames without an offset (messages to a uid, a connection or everyone, the echo) reach every
// connection of this client's uid: during a renewal, both of its connections. Their copies pair
// up: a frame is handed on unless the other connection handed on the same frame within a few
// seconds and that copy has not been paired yet. Two genuinely equal frames come twice on each
// connection, so both are still handed on.

/** How long a frame waits for its copy on the other connection. */
const PAIR_MS = 5_000;
/** Past this many different frames waiting on one connection, the stale ones are dropped. */
const PRUNE_AT = 1_000;

export class CopyPairing<L> {
  private readonly unpaired = new Map<L, Map<string, number[]>>();

  /** Whether `text`, received on `link` while `others` are open too, is the first copy. */
  first(link: L, others: L[], text: string, now: number): boolean {
    if (others.length === 0) return true;
    for (const other of others) {
      const seen = this.unpaired.get(other);
      const times = seen?.get(text);
      if (seen === undefined || times === undefined) continue;
      while (times.length > 0 && times[0]! < now - PAIR_MS) times.shift();
      const paired = times.shift() !== undefined;
      if (times.length === 0) seen.delete(text);
      if (paired) return false;
    }
    let mine = this.unpaired.get(link);
    if (mine === undefined) {
      mine = new Map();
      this.unpaired.set(link, mine);
    }
    if (mine.size > PRUNE_AT) {
      for (const [key, times] of mine) if (times.at(-1)! < now - PAIR_MS) mine.delete(key);
    }
    const times = mine.get(text);
    if (times === undefined) mine.set(text, [now]);
    else times.push(now);
    return true;
  }

  /** `link` ended: its copies wait for nothing. */
  forget(link: L): void {
    this.unpaired.delete(link);
  }

  clear(): void {
    this.unpaired.clear();
  }
}
