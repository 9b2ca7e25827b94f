// One WebSocket connection: its requests, answered one at a time in the order they were made, and
// its heartbeat. A client has one link, and two while it renews one (see client.ts).

import type { ErrorFrame, Frame } from "./frames.js";

/** Why a request failed: an error frame's code, or what happened to the connection. */
export type FailureCode = ErrorFrame["code"] | "connection_lost" | "timeout" | "closed";

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
}

export type WebSocketConstructor = new (url: string) => SocketLike;

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
  private lastSent = Date.now();
  private queue: Promise<unknown> = Promise.resolve();
  private waiting: Waiting | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;

  constructor(
    url: string,
    WebSocketImpl: WebSocketConstructor,
    private readonly requestTimeoutMs: number,
  ) {
    this.socket = new WebSocketImpl(url);
  }

  get open(): boolean {
    return this.openedAt !== null && !this.ended;
  }

  /** Sends a frame now (sends are not queued behind requests: they carry their own ids). */
  write(frame: unknown): void {
    if (!this.open) throw new RequestError("connection_lost", "the connection is not open");
    this.socket.send(JSON.stringify(frame));
    this.lastSent = Date.now();
  }

  /**
   * Sends a command and resolves with the first frame `matches` accepts, or rejects on an error
   * frame for the same action. One request is out at a time: errors name their action, not the
   * request, so that is how an error finds its request.
   */
  request<T extends Frame>(
    command: { action: string } & Record<string, unknown>,
    matches: (frame: Frame) => frame is T,
  ): Promise<T> {
    const run = () =>
      new Promise<T>((resolve, reject) => {
        if (!this.open) {
          reject(new RequestError("connection_lost", "the connection closed", command.action));
          return;
        }
        const timer = setTimeout(() => {
          this.waiting = null;
          reject(new RequestError("timeout", `no answer to ${command.action}`, command.action));
        }, this.requestTimeoutMs);
        this.waiting = {
          action: command.action,
          matches,
          resolve: (frame) => {
            clearTimeout(timer);
            resolve(frame as T);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        this.write(command);
      });
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
   * Pings whenever nothing was sent for `everyMs` (API Gateway closes connections after 10
   * minutes without traffic); a ping left unanswered ends the link with `onDead`.
   */
  startHeartbeat(everyMs: number, onDead: () => void): void {
    this.heartbeat = setInterval(
      () => {
        if (this.ended || Date.now() - this.lastSent < everyMs) return;
        this.request({ action: "ping" }, (f): f is Frame => f.type === "pong").catch(
          (error: RequestError) => {
            if (error.code === "timeout") onDead();
          },
        );
      },
      Math.max(50, Math.floor(everyMs / 4)),
    );
  }

  /** Ends the link: fails what waits, stops the heartbeat, closes the socket. */
  end(code = 1000, reason = ""): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(new RequestError("connection_lost", "the connection closed", waiting.action));
    if (this.ended) return;
    this.ended = true;
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closed.
    }
  }
}
