// The service refuses a connection's frames past `RATE_LIMIT` (100) per `RATE_WINDOW_SECONDS` (10 s).
// A link counts what it writes, on a monotonic clock, and paces two kinds of frames:
//
// - its requests (joins, history, leaves, whoami, presence) wait until fewer than `frames - share`
//   frames were written in the last `windowMs`, counting the app's sends, so that the last tenth
//   (the share) is left to sends; but requests are guaranteed that share for themselves: fewer
//   than `share` requests in the last window, and a request goes however much the app sends. So a
//   request never waits more than one window, and an app that sends at 90–100 frames per window
//   does not block its own joins, leaves and recoveries (the total may then pass the limit: the
//   service refuses some frames, and requests refused for their rate are tried again);
// - sends queued while there was no connection are flushed in order under the whole limit, after
//   what the rejoin wrote (`sendWait`); sends made on an open connection are never delayed.

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
  /** When each request of the last window was written, oldest first. */
  private requests: number[] = [];
  /** Frames (all kinds) after which requests wait, unless they are under their share. */
  private readonly allowed: number;
  /** Requests per window that go however much was sent. */
  private readonly share: number;

  constructor(private readonly limit: RateLimit) {
    this.share = Math.max(1, Math.floor(limit.frames / 10));
    this.allowed = Math.max(1, limit.frames - this.share);
  }

  /** A frame was written at `now` (a request's, or another: a send, a ping). */
  record(now: number, request = false): void {
    this.times.push(now);
    if (request) this.requests.push(now);
    this.trim(now);
  }

  /** How long a request must wait before it may be written (0: now); never more than one window. */
  requestWait(now: number): number {
    this.trim(now);
    if (this.times.length < this.allowed || this.requests.length < this.share) return 0;
    // Either that frame leaves the window, or that request does.
    const forRoom = this.times[this.times.length - this.allowed]! + this.limit.windowMs - now;
    const forShare = this.requests[this.requests.length - this.share]! + this.limit.windowMs - now;
    return clamp(Math.min(forRoom, forShare), this.limit.windowMs);
  }

  /** How long a queued send must wait for room under the whole limit (0: now); never more than one window. */
  sendWait(now: number): number {
    this.trim(now);
    if (this.times.length < this.limit.frames) return 0;
    return clamp(this.times[this.times.length - this.limit.frames]! + this.limit.windowMs - now, this.limit.windowMs);
  }

  private trim(now: number): void {
    const since = now - this.limit.windowMs;
    let drop = 0;
    while (drop < this.times.length && this.times[drop]! <= since) drop++;
    if (drop > 0) this.times.splice(0, drop);
    drop = 0;
    while (drop < this.requests.length && this.requests[drop]! <= since) drop++;
    if (drop > 0) this.requests.splice(0, drop);
  }
}

function clamp(ms: number, max: number): number {
  return Math.min(max, Math.max(0, ms));
}
