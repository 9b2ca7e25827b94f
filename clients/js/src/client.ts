// The client: one logical connection made of WebSocket connections that API Gateway ends (after
// 2 hours, after 10 minutes idle, or when the network drops). It renews a connection before its
// 2 hours are up (the new one open before the old one closes), pings before the idle limit,
// reconnects with full-jitter backoff after a drop, rejoins its groups, and recovers what it
// missed from each group's history, delivering every group message once and in order.

import { backoffDelay, defaultBackoff, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import {
  isGroupMessage,
  parseFrame,
  type Ack,
  type ErrorFrame,
  type Frame,
  type GroupMessage,
  type History,
  type Joined,
  type Left,
  type Message,
  type Peer,
  type PresenceCount,
  type PresenceEvent,
  type Target,
  type Whoami,
} from "./frames.js";
import { Link, RequestError, type WebSocketConstructor } from "./link.js";
import { GroupStream } from "./stream.js";

export interface ClientOptions {
  /** The API's WebSocket URL: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  url: string;
  /** A token, or a function returning a fresh one for each connection (tokens expire). */
  token?: string | (() => string | Promise<string>);
  /** More query parameters for each connection (`{uid: "alice"}` on a local stack without a secret). */
  params?: Record<string, string>;
  /** A WebSocket implementation; the global `WebSocket` by default (browsers, Node ≥ 22 or 20 with `--experimental-websocket`). */
  WebSocket?: WebSocketConstructor;
  /** Ping after this long without sending anything (API Gateway's idle limit is 10 min). Default 4 min. */
  heartbeatMs?: number;
  /** How long API Gateway lets a connection live. Default 2 h. */
  maxConnectionMs?: number;
  /** Open the next connection this long before the limit. Default 5 min. */
  renewBeforeMs?: number;
  /** Reconnection delays (full jitter). Default: base 500 ms, max 30 s. */
  backoff?: Partial<BackoffOptions>;
  /** How long to wait for an answer (acks, joins, history, pongs) or for a socket to open. Default 10 s. */
  requestTimeoutMs?: number;
  /** How long a group message may wait for one sent before it, before history is asked. Default 1 s. */
  gapWaitMs?: number;
  /** The largest frame to send, in UTF-8 bytes: API Gateway closes the connection on a frame over 32 KiB. Default 32 768. */
  maxMessageBytes?: number;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface ClientEvents {
  /** A message: group messages once each and in order, others as they come. */
  message: Message;
  /** Someone joined or left a group joined with `presence: true`. */
  presence: PresenceEvent;
  /** A group's members, each time a join with `presence: true` is answered (also after reconnects). */
  members: { group: string; members: Peer[] | null; presenceLimit?: number };
  /** A group was caught up after a reconnect (`reconnect`) or after a missing message (`gap`). `recovered: false`: some messages could not be had. */
  recovery: { group: string; recovered: boolean; reason: "reconnect" | "gap" };
  /** The connection's state; `delayMs` is the wait before the next attempt. */
  state: { state: ConnectionState; attempt?: number; delayMs?: number; reason?: string };
  /** An error frame no request was waiting for. */
  error: ErrorFrame;
  /** A frame that is not JSON (the built-in protocol's echo). */
  text: string;
}

export interface JoinOptions {
  /** Receive the members now and a presence event for each join and leave. */
  presence?: boolean;
}

export interface SendOptions {
  exclude?: string[];
  excludeSelf?: boolean;
}

interface GroupState {
  presence: boolean;
  stream: GroupStream;
  recovering: boolean;
  /** A recovery was asked for while one ran: run one more after it. */
  again: "reconnect" | "gap" | null;
  /** Recoveries cut short in a row (for their backoff). */
  failures: number;
  gapTimer: ReturnType<typeof setTimeout> | null;
  joined: Array<{ resolve: (joined: Joined) => void; reject: (error: RequestError) => void }>;
}

interface PendingSend {
  frame: Record<string, unknown>;
  link: Link | null;
  timer: ReturnType<typeof setTimeout> | null;
  resolve: (ack: Ack) => void;
  reject: (error: RequestError) => void;
}

const isJoined = (group: string) => (f: Frame): f is Joined => f.type === "joined" && f.group === group;
const isHistory = (group: string) => (f: Frame): f is History => f.type === "history" && f.group === group;

export class Client extends Emitter<ClientEvents> {
  private readonly options: Required<Omit<ClientOptions, "token" | "params" | "backoff">> & {
    backoff: BackoffOptions;
  };
  private readonly groups = new Map<string, GroupState>();
  private readonly sends = new Map<string, PendingSend>();
  private readonly outbox: string[] = [];
  private readonly waitingForLink: Array<{ resolve: (link: Link) => void; reject: (error: RequestError) => void }> = [];
  private primary: Link | null = null;
  private next: Link | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** A connection is being prepared (its token fetched): no second one starts meanwhile. */
  private opening = false;
  private sequence = 0;
  private readonly idPrefix = Math.random().toString(36).slice(2, 10);
  private currentState: ConnectionState = "connecting";

  constructor(private readonly config: ClientOptions) {
    super();
    const WebSocketImpl =
      config.WebSocket ?? ((globalThis as { WebSocket?: WebSocketConstructor }).WebSocket as WebSocketConstructor | undefined);
    if (WebSocketImpl === undefined) {
      throw new Error(
        "no WebSocket: pass options.WebSocket, or run on Node ≥ 22 (Node 20: node --experimental-websocket)",
      );
    }
    this.options = {
      url: config.url,
      WebSocket: WebSocketImpl,
      heartbeatMs: config.heartbeatMs ?? 4 * 60_000,
      maxConnectionMs: config.maxConnectionMs ?? 2 * 3_600_000,
      // Never more than a quarter of the lifetime, so a short lifetime does not renew without pause.
      renewBeforeMs: Math.min(config.renewBeforeMs ?? 5 * 60_000, (config.maxConnectionMs ?? 2 * 3_600_000) / 4),
      backoff: { ...defaultBackoff, ...config.backoff },
      requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
      gapWaitMs: config.gapWaitMs ?? 1_000,
      maxMessageBytes: config.maxMessageBytes ?? 32 * 1024,
    };
    this.setState("connecting");
    void this.openLink();
  }

  /** The connection's state now. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** Resolves once a connection is open (at once when one is). */
  opened(): Promise<void> {
    return this.link().then(() => undefined);
  }

  /**
   * Joins a group, now and after every reconnect, and resolves with the first answer. Group
   * messages then arrive once each and in order, whatever happens to the connection.
   */
  join(group: string, options: JoinOptions = {}): Promise<Joined> {
    if (this.closed) return Promise.reject(closedError("join"));
    let state = this.groups.get(group);
    if (state === undefined) {
      state = { presence: false, stream: new GroupStream(), recovering: false, again: null, failures: 0, gapTimer: null, joined: [] };
      this.groups.set(group, state);
    }
    state.presence = options.presence ?? false;
    const answered = new Promise<Joined>((resolve, reject) => state.joined.push({ resolve, reject }));
    for (const link of [this.primary, this.next]) {
      if (link?.open) void this.joinOn(link, group);
    }
    return answered;
  }

  /** Leaves a group: no more messages, no rejoin. */
  async leave(group: string): Promise<void> {
    const state = this.groups.get(group);
    this.groups.delete(group);
    if (state !== undefined) {
      if (state.gapTimer !== null) clearTimeout(state.gapTimer);
      for (const waiter of state.joined) waiter.reject(new RequestError("closed", `left ${group}`, "join"));
    }
    // Both connections while one renews the other: the new one may have rejoined already.
    const isLeft = (f: Frame): f is Left => f.type === "left" && f.group === group;
    const next = this.next;
    if (next?.open) void next.request({ action: "leave", group }, isLeft).catch(() => undefined);
    const link = await this.link();
    await link.request({ action: "leave", group }, isLeft);
  }

  /**
   * Sends `data` to `to` and resolves with the ack (`delivered`: how many connections it
   * reached). Sent as soon as a connection is open. Rejects when the connection drops before
   * the ack: the message may or may not have gone out, and is not sent again.
   */
  send(to: Target, data: unknown, options: SendOptions = {}): Promise<Ack> {
    if (this.closed) return Promise.reject(closedError("send"));
    const id = `${this.idPrefix}-${++this.sequence}`;
    const frame: Record<string, unknown> = { action: "send", to, data, id };
    if (options.exclude !== undefined) frame.exclude = options.exclude;
    if (options.excludeSelf) frame.excludeSelf = true;
    const bytes = new TextEncoder().encode(JSON.stringify(frame)).length;
    if (bytes > this.options.maxMessageBytes) {
      return Promise.reject(
        new RequestError("too_large", `the message is ${bytes} bytes; at most ${this.options.maxMessageBytes} go in one frame`, "send"),
      );
    }
    return new Promise<Ack>((resolve, reject) => {
      this.sends.set(id, { frame, link: null, timer: null, resolve, reject });
      if (this.primary?.open) this.writeSend(this.primary, id);
      else this.outbox.push(id);
    });
  }

  /** Who this connection is now (its id changes with every reconnect). */
  async whoami(): Promise<Whoami> {
    const link = await this.link();
    return link.request({ action: "whoami" }, (f): f is Whoami => f.type === "whoami");
  }

  /** How many connections and which uids are in a group (or everywhere). */
  async presence(group?: string): Promise<PresenceCount> {
    const link = await this.link();
    const command = group === undefined ? { action: "presence" } : { action: "presence", group };
    return link.request(
      command,
      (f): f is PresenceCount => f.type === "presence" && "connections" in f && f.group === group,
    );
  }

  /** Closes for good: no reconnect; what waits is rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const link of [this.primary, this.next]) link?.end(1000, "closed by the client");
    this.primary = this.next = null;
    for (const [id, pending] of this.sends) {
      if (pending.timer !== null) clearTimeout(pending.timer);
      pending.reject(closedError("send"));
      this.sends.delete(id);
    }
    for (const state of this.groups.values()) {
      if (state.gapTimer !== null) clearTimeout(state.gapTimer);
      for (const waiter of state.joined) waiter.reject(closedError("join"));
      state.joined = [];
    }
    for (const waiter of this.waitingForLink.splice(0)) waiter.reject(closedError("request"));
    this.setState("closed");
  }

  // --- connections ---

  private link(): Promise<Link> {
    if (this.closed) return Promise.reject(closedError("request"));
    if (this.primary?.open) return Promise.resolve(this.primary);
    return new Promise((resolve, reject) => this.waitingForLink.push({ resolve, reject }));
  }

  /** Opens a connection, rejoins every group on it, and then makes it the one in use. */
  private async openLink(): Promise<void> {
    if (this.closed || this.next !== null || this.opening) return;
    this.opening = true;
    let url: string;
    try {
      url = await this.connectionUrl();
    } catch (error) {
      this.failed(`the token function failed: ${String(error)}`);
      return;
    } finally {
      this.opening = false;
    }
    if (this.closed || this.next !== null) return;
    const link = new Link(url, this.options.WebSocket, this.options.requestTimeoutMs);
    this.next = link;
    const openTimer = setTimeout(() => {
      if (link.openedAt === null) this.lost(link, "the connection did not open in time");
    }, this.options.requestTimeoutMs);
    link.socket.addEventListener("open", () => {
      clearTimeout(openTimer);
      link.openedAt = Date.now();
      link.startHeartbeat(this.options.heartbeatMs, () => this.lost(link, "a ping went unanswered"));
      void this.rejoin(link);
    });
    link.socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") this.onFrame(link, event.data);
    });
    link.socket.addEventListener("close", (event) => {
      clearTimeout(openTimer);
      this.lost(link, `closed (${event.code}${event.reason ? `, ${event.reason}` : ""})`);
    });
  }

  private async connectionUrl(): Promise<string> {
    const url = new URL(this.options.url);
    for (const [key, value] of Object.entries(this.config.params ?? {})) url.searchParams.set(key, value);
    const token = typeof this.config.token === "function" ? await this.config.token() : this.config.token;
    if (token !== undefined) url.searchParams.set("token", token);
    return url.toString();
  }

  private async rejoin(link: Link): Promise<void> {
    const joins = [...this.groups.keys()].map((group) => this.joinOn(link, group));
    // Joins are answered in order; the first failure (a dropped link) ends the attempt.
    const settled = await Promise.allSettled(joins);
    if (!link.open || link !== this.next) return;
    const broken = settled.find(
      (s): s is PromiseRejectedResult =>
        s.status === "rejected" &&
        ["connection_lost", "timeout", "rate_limited", "internal"].includes((s.reason as RequestError).code),
    );
    if (broken !== undefined) {
      this.lost(link, `a join failed: ${(broken.reason as RequestError).message}`);
      return;
    }
    this.promote(link);
  }

  /** `link` is ready: it carries the client from now on; the one before it retires. */
  private promote(link: Link): void {
    const old = this.primary;
    this.primary = link;
    this.next = null;
    this.attempt = 0;
    this.setState("open");
    if (old !== null) this.retire(old);
    if (this.timer !== null) clearTimeout(this.timer);
    const renewIn = this.options.maxConnectionMs - this.options.renewBeforeMs - (Date.now() - link.openedAt!);
    this.timer = setTimeout(() => this.renew(link), Math.max(0, renewIn));
    for (const waiter of this.waitingForLink.splice(0)) waiter.resolve(link);
    for (const id of this.outbox.splice(0)) this.writeSend(link, id);
  }

  /** Renews before API Gateway's limit: the next connection opens while this one still works. */
  private renew(link: Link): void {
    if (this.closed || link !== this.primary || this.next !== null) return;
    void this.openLink();
  }

  /** Closes a replaced connection once what was sent on it has been acked (or has waited long enough). */
  private retire(link: Link): void {
    const deadline = Date.now() + this.options.requestTimeoutMs;
    const check = () => {
      const waiting = [...this.sends.values()].some((s) => s.link === link);
      if (waiting && Date.now() < deadline && link.open) setTimeout(check, 50);
      else link.end(1000, "renewed");
    };
    check();
  }

  /** A connection ended (or never opened). */
  private lost(link: Link, reason: string): void {
    if (link.gone) return;
    link.gone = true;
    link.end(4000, "given up");
    for (const [id, pending] of this.sends) {
      if (pending.link !== link) continue;
      if (pending.timer !== null) clearTimeout(pending.timer);
      this.sends.delete(id);
      pending.reject(new RequestError("connection_lost", `the connection ${reason} before the ack`, "send"));
    }
    if (this.closed) return;
    if (link === this.primary) {
      this.primary = null;
      if (this.timer !== null) clearTimeout(this.timer);
      if (this.next === null) this.failed(reason);
      else this.setState("reconnecting", { reason });
    } else if (link === this.next) {
      this.next = null;
      this.failed(reason);
    }
  }

  /** Waits (full-jitter backoff) and tries again. */
  private failed(reason: string): void {
    if (this.closed) return;
    const delayMs = backoffDelay(this.attempt, this.options.backoff);
    this.attempt += 1;
    if (this.primary === null) this.setState("reconnecting", { attempt: this.attempt, delayMs, reason });
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.openLink(), delayMs);
  }

  private setState(state: ConnectionState, detail: Omit<ClientEvents["state"], "state"> = {}): void {
    this.currentState = state;
    this.emit("state", { state, ...detail });
  }

  // --- frames ---

  private onFrame(link: Link, text: string): void {
    const frame = parseFrame(text);
    // Frames that are not about a group come to both connections while one renews the other:
    // only the one in use hands them on.
    const inUse = link === this.primary || (this.primary === null && link === this.next);
    if (frame === null) {
      if (inUse) this.emit("text", text);
      return;
    }
    if (frame.type === "message") {
      const state = isGroupMessage(frame) ? this.groups.get(frame.group) : undefined;
      if (state !== undefined) this.accept(frame as GroupMessage, state);
      else if (inUse) this.emit("message", frame);
      return;
    }
    if (frame.type === "ack") {
      const pending = this.sends.get(frame.id);
      if (pending !== undefined) {
        this.sends.delete(frame.id);
        if (pending.timer !== null) clearTimeout(pending.timer);
        pending.resolve(frame);
      }
      return;
    }
    const sendsOut = [...this.sends.values()].filter((pending) => pending.link === link).length;
    if (link.answer(frame, sendsOut)) return;
    if (frame.type === "presence" && "event" in frame) {
      if (inUse && this.groups.get(frame.group)?.presence) this.emit("presence", frame);
      return;
    }
    if (frame.type === "error" && frame.id !== undefined) {
      // A send refused or failed in part names its id: settle that one (a partial failure after
      // its ack is reported as an event).
      const pending = this.sends.get(frame.id);
      if (pending !== undefined) {
        this.sends.delete(frame.id);
        if (pending.timer !== null) clearTimeout(pending.timer);
        pending.reject(new RequestError(frame.code, frame.message, "send"));
      } else if (inUse) {
        this.emit("error", frame);
      }
      return;
    }
    if (frame.type === "error") {
      // Without an id, errors name their action (or none: too_large, rate_limited). One send alone
      // waiting on this link is the one refused; `internal` can follow an ack (some recipients
      // failed), so it is reported, never pinned on another send.
      const waiting = [...this.sends.entries()].filter(([, s]) => s.link === link);
      const forSend = frame.action === "send" || (frame.action === undefined && !link.busy);
      if (forSend && frame.code !== "internal" && waiting.length === 1) {
        const [id, pending] = waiting[0]!;
        this.sends.delete(id);
        if (pending.timer !== null) clearTimeout(pending.timer);
        pending.reject(new RequestError(frame.code, frame.message, "send"));
      } else if (inUse) {
        this.emit("error", frame);
      }
    }
  }

  private writeSend(link: Link, id: string): void {
    const pending = this.sends.get(id);
    if (pending === undefined) return;
    pending.link = link;
    try {
      link.write(pending.frame);
    } catch {
      pending.link = null;
      this.outbox.push(id);
      return;
    }
    pending.timer = setTimeout(() => {
      this.sends.delete(id);
      pending.reject(new RequestError("timeout", "no ack in time: the message may or may not have been sent", "send"));
    }, this.options.requestTimeoutMs);
  }

  // --- groups ---

  /**
   * Joins `group` on `link`. A join the service refuses for good (`forbidden`, `bad_request`)
   * forgets the group; one refused for now (`rate_limited`, `internal`) is tried again after a
   * pause; a dropped link leaves it to the next connection.
   */
  private async joinOn(link: Link, group: string): Promise<void> {
    const state = this.groups.get(group);
    if (state === undefined) return;
    const command: Record<string, unknown> & { action: string } = { action: "join", group };
    if (state.presence) command.presence = true;
    let joined: Joined | undefined;
    for (let attempt = 0; joined === undefined; attempt++) {
      try {
        joined = await link.request(command, isJoined(group));
      } catch (error) {
        const failure = error as RequestError;
        const passing = failure.code === "rate_limited" || failure.code === "internal";
        if (passing && attempt < 4 && link.open) {
          await sleep(backoffDelay(attempt + 1, this.options.backoff));
          continue;
        }
        if (failure.code !== "connection_lost" && failure.code !== "timeout" && !passing) {
          if (this.groups.get(group) === state) this.groups.delete(group);
          for (const waiter of state.joined.splice(0)) waiter.reject(failure);
        }
        throw failure;
      }
    }
    if (this.groups.get(group) !== state) return;
    if (state.presence) {
      const members = joined.members ?? null;
      this.emit("members", joined.presenceLimit === undefined ? { group, members } : { group, members, presenceLimit: joined.presenceLimit });
    }
    const asked = state.joined.length > 0;
    for (const waiter of state.joined.splice(0)) waiter.resolve(joined);
    const at = joined.epoch === undefined ? { epoch: "", offset: 0 } : { epoch: joined.epoch, offset: joined.offset ?? 0 };
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
      if (!asked) this.emit("recovery", { group, recovered: true, reason: "reconnect" });
      return;
    }
    void this.recover(link, group, state, "reconnect", joined.epoch);
  }

  private accept(message: GroupMessage, state: GroupState): void {
    const outcome = state.stream.accept(message);
    this.deliver(outcome.deliver);
    if (outcome.gap) this.awaitGap(message.group, state);
  }

  /** A message waits behind a missing one: give the missing one a moment, then ask history. */
  private awaitGap(group: string, state: GroupState): void {
    if (this.closed || state.recovering || state.gapTimer !== null) return;
    state.gapTimer = setTimeout(() => {
      state.gapTimer = null;
      if (!state.stream.waiting || this.groups.get(group) !== state) return;
      const link = this.primary;
      if (link?.open) void this.recover(link, group, state, "gap");
      else this.awaitGap(group, state);
    }, this.options.gapWaitMs);
  }

  /**
   * Asks the group's history after what was delivered, page by page. A message still missing
   * after that (not kept yet, or gone) gets one more wait and one more ask; then what waits
   * behind it is delivered and the recovery says `recovered: false`. A recovery asked for while
   * one runs (a renewal's rejoin) runs again after it, on the connection then in use.
   */
  private async recover(
    link: Link,
    group: string,
    state: GroupState,
    reason: "reconnect" | "gap",
    epochSeen?: string,
  ): Promise<void> {
    if (state.recovering) {
      state.again = reason;
      return;
    }
    state.recovering = true;
    let recovered = true;
    let finished = false;
    try {
      for (let attempt = 0; ; attempt++) {
        let top: History | null = null;
        let since = state.stream.since(epochSeen);
        while (since !== null) {
          const page = await link.request({ action: "history", group, since }, isHistory(group));
          if (this.groups.get(group) !== state) return;
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
        if (attempt >= 1) {
          recovered = false;
          this.deliver(state.stream.skipGap());
          if (top !== null && behind) state.stream.skipTo({ epoch: top.epoch, offset: top.offset });
          break;
        }
        await sleep(this.options.gapWaitMs);
        if (!link.open || this.groups.get(group) !== state) return;
      }
      finished = true;
    } catch {
      // The link dropped or did not answer: tried again below, on the connection in use.
    } finally {
      state.recovering = false;
    }
    if (this.groups.get(group) !== state) return;
    if (finished) this.emit("recovery", { group, recovered, reason });
    state.failures = finished ? 0 : state.failures + 1;
    const again = state.again ?? (finished ? null : reason);
    state.again = null;
    if (again !== null) {
      // After a failure (no answer, rate_limited), not at once: backoff, as for connections.
      const delay = finished ? 0 : backoffDelay(state.failures, this.options.backoff);
      setTimeout(() => {
        const current = this.primary;
        if (this.closed || this.groups.get(group) !== state) return;
        if (current?.open) void this.recover(current, group, state, again, epochSeen);
        else if (again === "gap") this.awaitGap(group, state);
        // A reconnect's recovery without a connection happens when the next one rejoins.
      }, delay);
    } else if (state.stream.waiting) {
      this.awaitGap(group, state);
    }
  }

  private deliver(messages: GroupMessage[]): void {
    for (const message of messages) this.emit("message", message);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function closedError(action: string): RequestError {
  return new RequestError("closed", "the client was closed", action);
}

/** Connects, and keeps connecting: see `Client`. */
export function connect(options: ClientOptions): Client {
  return new Client(options);
}
