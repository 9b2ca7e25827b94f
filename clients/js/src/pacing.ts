// The service refuses a connection's frames past `RATE_LIMIT` (100) per `RATE_WINDOW_SECONDS` (10 s).
// A link counts what it writes, and its requests (joins, history, leaves, whoami, presence) wait
// for room: never more than `frames - reserve` in any span of `windowMs`, so they are never refused
// whatever the server's windows are aligned to, and the reserve is left to the app's sends.

export interface RateLimit {
  /** Frames the server lets through per window. Default 100 (`RATE_LIMIT`). */
  frames: number;
  /** The window, in milliseconds. Default 10 000 (`RATE_WINDOW_SECONDS`). */
  windowMs: number;
}

export const defaultRateLimit: RateLimit = { frames: 100, windowMs: 10_000 };

export class FrameBudget {
  /** When each frame of the last window was written, oldest first. */
  private times: number[] = [];
  private readonly allowed: number;

  constructor(private readonly limit: RateLimit) {
    // A tenth is left to the app's sends (at least one frame).
    this.allowed = Math.max(1, limit.frames - Math.max(1, Math.floor(limit.frames / 10)));
  }

  /** A frame was written at `now`. */
  record(now: number): void {
    this.times.push(now);
    this.trim(now);
  }

  /** How long a request must wait before it may be written (0: now). */
  wait(now: number): number {
    this.trim(now);
    if (this.times.length < this.allowed) return 0;
    // That frame must leave the window first.
    return this.times[this.times.length - this.allowed]! + this.limit.windowMs - now;
  }

  private trim(now: number): void {
    let drop = 0;
    while (drop < this.times.length && this.times[drop]! <= now - this.limit.windowMs) drop++;
    if (drop > 0) this.times.splice(0, drop);
  }
}
