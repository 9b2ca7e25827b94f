// One WebSocket connection: its requests, answered one at a time in the order they were made and
// paced under the service's rate limit, its heartbeat, and the proof that it still works (when it
// last received a frame; a probe). A client has one link, and two while it renews one (client.ts).

import { monotonicNow } from "./clock.js";
import type { ErrorFrame, Frame } from "./frames.js";
import { HEARTBEAT_CHECK_MS } from "./options.js";
import { FrameBudget, type RateLimit } from "./pacing.js";
import type { Timers } from "./timers.js";

/**
 * Why a request failed: an error frame's code, or what happened on this side: the connection
 * dropped (`connection_lost`), no answer or no connection in time (`timeout`), `close()`
 * (`closed`), the call's signal (`aborted`), too many calls waiting for a connection
 * (`queue_full`), no connection for a while (`offline`: the client is `suspended`), or the client
 * gave up until `reconnect()` (`stopped`).
 */
export type FailureCode =
  | ErrorFrame["code"]
  | "connection_lost"
  | "timeout"
  | "closed"
  | "aborted"
  | "queue_full"
  | "offline"
  | "stopped";

export class RequestError extends Error {
  override name = "RequestError";
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly action?: string,
  ) {
    super(message);
  }
}

/** What the client needs of a WebSocket: the browser's, Node's global one, or the `ws` package's. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
}

export type WebSocketConstructor = new (url: string) => SocketLike;

export interface LinkOptions {
  WebSocket: WebSocketConstructor;
  requestTimeoutMs: number;
  rateLimit: RateLimit;
  timers: Timers;
  /** A request went unanswered: the client probes the link. */
  onTimeout: () => void;
}

interface Waiting {
  action: string;
  matches: (frame: Frame) => boolean;
  resolve: (frame: Frame) => void;
  reject: (error: RequestError) => void;
}

export class Link {
  readonly socket: SocketLike;
  /** Set once the socket opened. */
  openedAt: number | null = null;
  /** Set once the link is closing or closed; nothing more is sent on it. */
  ended = false;
  /** Set once the client has dealt with the link's end. */
  gone = false;
  /** What the socket's last `error` event said (Node's `ws` names the HTTP status of a refused handshake). */
  lastError: string | null = null;
  lastSent = Date.now();
  /** When the last frame came in: a link that received nothing for long may be dead. */
  lastReceived = Date.now();
  private receivedCount = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting: Waiting | null = null;
  private probing: Promise<boolean> | null = null;
  private probeWaiter: (() => void) | null = null;
  private readonly budget: FrameBudget;
  /** Aborted when the link ends: every timer of the link observes it. */
  private readonly life = new AbortController();

  /** Throws what the WebSocket constructor throws (a bad URL, a blocked port). */
  constructor(
    url: string,
    private readonly options: LinkOptions,
  ) {
    this.budget = new FrameBudget(options.rateLimit);
    this.socket = new options.WebSocket(url);
    this.socket.addEventListener("error", (event) => {
      const e = event as { message?: unknown; error?: { message?: unknown } } | null;
      const message = e?.message ?? e?.error?.message;
      if (typeof message === "string" && message !== "") this.lastError = message;
    });
  }

  get open(): boolean {
    return this.openedAt !== null && !this.ended;
  }

  /** The link's own signal: aborted when it ends. */
  get signal(): AbortSignal {
    return this.life.signal;
  }

  /** A frame came in (call before handling it). */
  received(): void {
    this.lastReceived = Date.now();
    this.receivedCount += 1;
    const waiter = this.probeWaiter;
    this.probeWaiter = null;
    waiter?.();
  }

  /**
   * Sends a frame now (sends are not queued behind requests: they carry their own ids); `request`:
   * it is one of the link's requests (paced, see `pacing.ts`).
   */
  write(frame: unknown, request = false): void {
    if (!this.open) throw new RequestError("connection_lost", "the connection is not open");
    this.socket.send(JSON.stringify(frame));
    this.lastSent = Date.now();
    this.budget.record(monotonicNow(), request);
  }

  /** How long a send taken from a queue should wait for room under the rate limit (0: now). */
  sendWait(): number {
    return this.budget.sendWait(monotonicNow());
  }

  /**
   * Sends a command and resolves with the first frame `matches` accepts, or rejects on an error
   * frame for the same action. One request is out at a time: errors name their action, not the
   * request, so that is how an error finds its request. Each waits for room under the rate limit,
   * one window at most. A request whose `signal` is aborted before it is written is not written;
   * `onWrite` runs once it is written.
   */
  request<T extends Frame>(
    command: { action: string } & Record<string, unknown>,
    matches: (frame: Frame) => frame is T,
    signal?: AbortSignal,
    onWrite?: () => void,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const windowMs = this.options.rateLimit.windowMs;
      const started = monotonicNow();
      for (;;) {
        if (signal?.aborted) throw new RequestError("aborted", `${command.action} was given up`, command.action);
        if (!this.open) throw new RequestError("connection_lost", "the connection closed", command.action);
        const now = monotonicNow();
        const wait = Math.min(this.budget.requestWait(now), started + windowMs - now);
        if (wait <= 0) break;
        await this.options.timers.sleep(wait, this.life.signal, () => new RequestError("connection_lost", "the connection closed", command.action));
      }
      return new Promise<T>((resolve, reject) => {
        const cancel = this.options.timers.after(
          this.options.requestTimeoutMs,
          () => {
            if (this.waiting === waiting) this.waiting = null;
            reject(new RequestError("timeout", `no answer to ${command.action} within ${this.options.requestTimeoutMs} ms`, command.action));
            this.options.onTimeout();
          },
          this.life.signal,
        );
        const waiting: Waiting = {
          action: command.action,
          matches,
          resolve: (frame) => {
            cancel();
            resolve(frame as T);
          },
          reject: (error) => {
            cancel();
            reject(error);
          },
        };
        this.waiting = waiting;
        try {
          this.write(command, true);
        } catch (error) {
          this.waiting = null;
          waiting.reject(error instanceof RequestError ? error : new RequestError("connection_lost", String(error), command.action));
          return;
        }
        onWrite?.();
      });
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Whether a request waits for its answer. */
  get busy(): boolean {
    return this.waiting !== null;
  }

  /**
   * Hands a frame to the request waiting for it; whether it was taken. An error without an
   * action (`rate_limited`, `too_large`) is the waiting request's when no send is out
   * (`sendsOut`), since a send could be the one refused.
   */
  answer(frame: Frame, sendsOut = 0): boolean {
    const waiting = this.waiting;
    if (waiting === null) return false;
    const ours = frame.type === "error" && (frame.action === waiting.action || (frame.action === undefined && sendsOut === 0));
    if (frame.type === "error" && ours) {
      this.waiting = null;
      waiting.reject(new RequestError(frame.code, frame.message, frame.action));
      return true;
    }
    if (!waiting.matches(frame)) return false;
    this.waiting = null;
    waiting.resolve(frame);
    return true;
  }

  /**
   * Whether the link still works: pings at once, outside the request queue and the pacing, and
   * resolves `true` as soon as any frame comes in, `false` after `timeoutMs` without one (or when
   * the link ends). Probes asked while one runs share it.
   */
  probe(timeoutMs: number): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    if (this.probing !== null) return this.probing;
    const before = this.receivedCount;
    let done = false;
    const probing = new Promise<boolean>((resolve) => {
      const settle = (alive: boolean) => {
        if (done) return;
        done = true;
        cancel();
        this.life.signal.removeEventListener("abort", onEnd);
        if (this.probeWaiter === onFrame) this.probeWaiter = null;
        this.probing = null;
        resolve(alive);
      };
      const onFrame = () => settle(true);
      const onEnd = () => settle(false);
      const cancel = this.options.timers.after(timeoutMs, () => settle(this.receivedCount > before), this.life.signal);
      this.life.signal.addEventListener("abort", onEnd, { once: true });
      this.probeWaiter = onFrame;
      try {
        this.write({ action: "ping" });
      } catch {
        settle(false);
      }
    });
    // Set after the executor: `settle` may already have run (a write that throws).
    if (!done) this.probing = probing;
    return probing;
  }

  /**
   * Ticks every quarter of `everyMs`, and at least every `HEARTBEAT_CHECK_MS`: `onTick(stale)`,
   * stale when nothing was sent, or nothing received, for `everyMs` (API Gateway closes connections
   * after 10 minutes without traffic, and a link that receives nothing may be dead): the client
   * then probes it. So the probe leaves at most a tick after `everyMs` of silence.
   */
  startHeartbeat(everyMs: number, onTick: (stale: boolean) => void): void {
    if (this.ended) return;
    this.options.timers.every(
      Math.max(50, Math.min(HEARTBEAT_CHECK_MS, Math.floor(everyMs / 4))),
      () => {
        if (this.ended) return;
        const now = Date.now();
        onTick(now - this.lastSent >= everyMs || now - this.lastReceived >= everyMs);
      },
      this.life.signal,
    );
  }

  /** Ends the link: fails what waits, stops its timers, closes the socket. */
  end(code = 1000, reason = ""): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(new RequestError("connection_lost", "the connection closed", waiting.action));
    if (this.ended) return;
    this.ended = true;
    this.life.abort();
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closed.
    }
  }
}
