// The client: one logical connection made of WebSocket connections that API Gateway ends (after
// 2 hours, after 10 minutes idle, or when the network drops). It renews a connection before its
// 2 hours are up (the new one open before the old one closes), pings before the idle limit and
// whenever a connection looks dead, reconnects with full-jitter backoff after a drop (slower once
// handshakes keep failing, never once the token is refused for good), rejoins its groups under the
// service's rate limit, and recovers what it missed from each group's history, delivering every
// group message once and in order. Every call settles: by its answer, its timeout, or `close()`.

import { backoffDelay } from "./backoff.js";
import { bound, Pending } from "./calls.js";
import { Emitter } from "./emitter.js";
import {
  isGroupMessage,
  parseFrame,
  type Ack,
  type Frame,
  type GroupMessage,
  type Joined,
  type Peer,
  type PresenceCount,
  type PresenceEvent,
  type PresenceOverflow,
  type Target,
  type Whoami,
} from "./frames.js";
import { Groups } from "./groups.js";
import { Link, RequestError } from "./link.js";
import {
  resolveOptions,
  type CallOptions,
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type JoinOptions,
  type ResolvedOptions,
  type SendOptions,
  type StateReason,
} from "./options.js";
import { CopyPairing } from "./pairing.js";
import { Timers } from "./timers.js";
import { ConnectFailure, fetchToken, tokenExpiry } from "./token.js";
import { defaultEventTarget, listenToPage, pageHidden, type PageEvent } from "./wake.js";

export type { CallOptions, ClientEvents, ClientOptions, ConnectionState, JoinOptions, SendOptions, StateReason };

/** How long a replaced connection stays open, so that what was pushed to it still arrives. */
const DRAIN_MS = 1_000;
/** How many `excludeSelf` sends are remembered until their ack. */
const SELF_EXCLUDED_KEPT = 1_000;

interface PendingSend {
  frame: Record<string, unknown>;
  /** The connection it was written on; `null` while it waits for one. */
  link: Link | null;
  pending: Pending<Ack>;
  excludeSelf: boolean;
  cancelAck: (() => void) | null;
}

interface LinkWaiter {
  go: (link: Link) => void;
  fail: (error: RequestError) => void;
}

export class Client extends Emitter<ClientEvents> {
  private readonly options: ResolvedOptions;
  /** Every timer of the client: `close()` aborts them all. */
  private readonly timers = new Timers();
  private readonly groups: Groups;
  private readonly sends = new Map<string, PendingSend>();
  /** Ids of sends waiting for a connection, in order. */
  private readonly outbox = new Set<string>();
  /** Other calls waiting for a connection. */
  private readonly waitingForLink = new Set<LinkWaiter>();
  /** Ids of `excludeSelf` sends whose ack has not come yet. */
  private readonly selfExcluded = new Set<string>();
  private primary: Link | null = null;
  private next: Link | null = null;
  /** Replaced connections, open a moment longer. */
  private readonly retiring = new Set<Link>();
  /** While two connections are open: frames without an offset one has handed on, awaiting their copy on the other. */
  private readonly pairing = new CopyPairing<Link>();
  private attempt = 0;
  private handshakeFailures = 0;
  private cancelRetry: (() => void) | null = null;
  private cancelRenew: (() => void) | null = null;
  private renewAt = Infinity;
  private closed = false;
  private stopped = false;
  /** A renewal's token was refused for good: stop once the connection in use ends. */
  private halted: ConnectFailure | null = null;
  /** A connection is being prepared (its token fetched): no second one starts meanwhile. */
  private opening = false;
  /** Bumped to forget a token being fetched. */
  private attemptId = 0;
  private sequence = 0;
  private readonly idPrefix = Math.random().toString(36).slice(2, 10);
  private currentState: ConnectionState = "connecting";
  private readonly unlisten: () => void;

  /** Throws a `TypeError` when `url` is not a ws:// or wss:// URL, or when there is no WebSocket. */
  constructor(private readonly config: ClientOptions) {
    super();
    this.options = resolveOptions(config);
    this.groups = new Groups({
      options: this.options,
      timers: this.timers,
      emit: (type, event) => this.emit(type, event),
      primary: () => (this.primary?.open ? this.primary : null),
      closed: () => this.closed,
    });
    const target = config.networkEventTarget === undefined ? defaultEventTarget() : config.networkEventTarget;
    this.unlisten = listenToPage(target, (type) => this.onPageEvent(type));
    this.setState("connecting");
    this.openLink();
  }

  /** The connection's state now. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** Resolves once a connection is open (at once when one is). */
  opened(options: CallOptions = {}): Promise<void> {
    return this.call("open", options, async () => undefined);
  }

  /**
   * Joins a group, now and after every reconnect, and resolves with the first answer. Group
   * messages then arrive once each and in order, whatever happens to the connection. Joins and
   * leaves of a group go out in the order they were called, so the last call wins. A join whose
   * promise times out stays in effect (the group is joined once a connection opens): `leave()`
   * gives it up.
   */
  join(group: string, options: JoinOptions = {}): Promise<Joined> {
    if (this.closed) return Promise.reject(closedError("join"));
    const pending = this.groups.want(group, options.presence ?? false);
    bound(pending, this.timers, "join", options.timeoutMs ?? this.options.callTimeoutMs, options.signal, (ms) =>
      this.primary?.open
        ? `no answer to join within ${ms} ms`
        : `no connection within ${ms} ms (the group is joined once one opens; leave() gives it up)`,
    );
    if (this.stopped) pending.reject(this.stoppedError("join"));
    for (const link of this.openLinks()) void this.groups.joinOn(link, group);
    return pending.promise;
  }

  /**
   * Leaves a group: no more messages, no rejoin. Sent at once on the open connection, so it goes
   * out before any later `join`; without a connection it resolves at once (the next one will not
   * join the group). A join not answered yet rejects with `closed`.
   */
  leave(group: string, options: CallOptions = {}): Promise<void> {
    this.groups.forget(group);
    const links = this.openLinks();
    if (this.closed || links.length === 0) return Promise.resolve();
    const pending = new Pending<void>();
    bound(pending, this.timers, "leave", options.timeoutMs ?? this.options.callTimeoutMs, options.signal, (ms) => `no answer to leave within ${ms} ms`);
    void Promise.all(links.map((link) => this.groups.leaveOn(link, group))).then((failures) => {
      // A connection that dropped left the group with it.
      const failure = failures.find((f) => f !== null && f.code !== "connection_lost" && f.code !== "closed");
      if (failure === undefined) pending.resolve();
      else pending.reject(failure);
    });
    return pending.promise;
  }

  /**
   * Sends `data` to `to` and resolves with the ack: `delivered` (how many connections it
   * reached) and, for a message that took a place in a group's stream, its `group`, `epoch` and
   * `offset`. Sent as soon as a connection is open. Rejects when the connection drops before the
   * ack (`connection_lost`) or no ack comes in time (`timeout`): the message may or may not have
   * gone out, and is not sent again. With `excludeSelf`, the client will not deliver the message
   * to itself later either (history would otherwise bring it back).
   */
  send(to: Target, data: unknown, options: SendOptions = {}): Promise<Ack> {
    const refused = this.refusal("send");
    if (refused !== null) return Promise.reject(refused);
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
    const primary = this.primary?.open ? this.primary : null;
    if (primary === null && this.queued >= this.options.maxQueuedCalls) return Promise.reject(queueFull("send", this.options.maxQueuedCalls));
    const pending = new Pending<Ack>();
    const record: PendingSend = { frame, link: null, pending, excludeSelf: options.excludeSelf === true, cancelAck: null };
    this.sends.set(id, record);
    pending.onSettle(() => {
      this.sends.delete(id);
      this.outbox.delete(id);
      record.cancelAck?.();
    });
    bound(pending, this.timers, "send", options.timeoutMs ?? this.options.callTimeoutMs, options.signal, (ms) =>
      record.link === null
        ? `no connection within ${ms} ms: the message was not sent`
        : `no ack within ${ms} ms: the message may or may not have been sent`,
    );
    if (!pending.settled) {
      if (primary !== null) this.writeSend(primary, id);
      else this.outbox.add(id);
    }
    return pending.promise;
  }

  /** Who this connection is now (its id changes with every reconnect). */
  whoami(options: CallOptions = {}): Promise<Whoami> {
    return this.call("whoami", options, (link, signal) =>
      link.request({ action: "whoami" }, (f): f is Whoami => f.type === "whoami", signal),
    );
  }

  /** How many connections and which uids are in a group (or everywhere). */
  presence(group?: string, options: CallOptions = {}): Promise<PresenceCount> {
    const command = group === undefined ? { action: "presence" } : { action: "presence", group };
    return this.call("presence", options, (link, signal) =>
      link.request(command, (f): f is PresenceCount => f.type === "presence" && "connections" in f && f.group === group, signal),
    );
  }

  /**
   * The members of a group joined with `presence: true`, as this client knows them now (the
   * `members` event's list with every `presence` event applied); `null` when it does not follow
   * the group, has no list yet, or the group is over the presence limit.
   */
  members(group: string): Peer[] | null {
    return this.groups.members(group);
  }

  /**
   * Tries to connect now: after `stopped` (with a new token behind the token function), while
   * `suspended` or `reconnecting`. Does nothing while a connection is open or being made.
   */
  reconnect(): void {
    if (this.closed) return;
    this.halted = null;
    this.attempt = 0;
    this.handshakeFailures = 0;
    const wasStopped = this.stopped;
    this.stopped = false;
    if (this.primary?.open || this.next !== null || this.opening) return;
    if (wasStopped || this.currentState === "suspended") this.setState("reconnecting", { reason: "reconnect" });
    this.openLink();
  }

  /** Closes for good: no reconnect, no timer left; what waits is rejected with `closed`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.attemptId += 1;
    this.unlisten();
    this.timers.abort();
    for (const link of [this.primary, this.next, ...this.retiring]) {
      if (link === null) continue;
      link.gone = true;
      link.end(1000, "closed by the client");
    }
    this.primary = this.next = null;
    this.retiring.clear();
    this.pairing.clear();
    this.failWaiting(closedError("send"), closedError("request"));
    for (const record of this.sends.values()) record.pending.reject(closedError("send"));
    this.groups.failJoins(closedError("join"));
    this.setState("closed");
  }

  // --- calls ---

  /** How many calls wait for a connection. */
  private get queued(): number {
    return this.outbox.size + this.waitingForLink.size;
  }

  /** Why a call cannot be made now, or `null`. */
  private refusal(action: string): RequestError | null {
    if (this.closed) return closedError(action);
    if (this.stopped) return this.stoppedError(action);
    if (this.currentState === "suspended") {
      return new RequestError("offline", `no connection: ${this.handshakeFailures} attempts in a row failed; retrying slowly`, action);
    }
    return null;
  }

  /** Runs `run` on the connection in use, once there is one, within the call's time. */
  private call<T>(action: string, options: CallOptions, run: (link: Link, signal: AbortSignal) => Promise<T>): Promise<T> {
    const refused = this.refusal(action);
    if (refused !== null) return Promise.reject(refused);
    const primary = this.primary?.open ? this.primary : null;
    if (primary === null && this.queued >= this.options.maxQueuedCalls) return Promise.reject(queueFull(action, this.options.maxQueuedCalls));
    const pending = new Pending<T>();
    const abort = new AbortController();
    pending.onSettle(() => abort.abort());
    bound(pending, this.timers, action, options.timeoutMs ?? this.options.callTimeoutMs, options.signal, (ms) =>
      this.primary?.open ? `no answer to ${action} within ${ms} ms` : `no connection within ${ms} ms`,
    );
    const go = (link: Link) => {
      run(link, abort.signal).then(
        (value) => pending.resolve(value),
        (error: unknown) => pending.reject(error),
      );
    };
    if (pending.settled) return pending.promise;
    if (primary !== null) {
      go(primary);
    } else {
      const waiter: LinkWaiter = { go, fail: (error) => pending.reject(error) };
      this.waitingForLink.add(waiter);
      pending.onSettle(() => this.waitingForLink.delete(waiter));
    }
    return pending.promise;
  }

  /** Rejects what waits for a connection. */
  private failWaiting(sendError: RequestError, requestError: RequestError): void {
    for (const id of [...this.outbox]) this.sends.get(id)?.pending.reject(sendError);
    this.outbox.clear();
    for (const waiter of [...this.waitingForLink]) waiter.fail(new RequestError(requestError.code, requestError.message, requestError.action));
    this.waitingForLink.clear();
  }

  private writeSend(link: Link, id: string): void {
    const record = this.sends.get(id);
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
    }
    record.cancelAck = this.timers.after(this.options.requestTimeoutMs, () => {
      record.pending.reject(new RequestError("timeout", "no ack in time: the message may or may not have been sent", "send"));
      this.probe(link);
    });
  }

  private stoppedError(action: string): RequestError {
    const why = this.halted ?? null;
    return new RequestError("stopped", `the client stopped${why ? ` (${why.reason})` : ""}: call reconnect() to try again`, action);
  }

  // --- connections ---

  /** The connections a join or leave goes out on: the one in use, and the one replacing it. */
  private openLinks(): Link[] {
    return [this.primary, this.next].filter((link): link is Link => link?.open === true);
  }

  /** Fetches a token, opens a connection, rejoins every group on it, and then makes it the one in use. */
  private openLink(): void {
    if (this.closed || this.stopped || this.next !== null || this.opening) return;
    this.cancelRetry?.();
    this.cancelRetry = null;
    this.opening = true;
    const attempt = ++this.attemptId;
    this.connectionUrl().then(
      (url) => {
        if (attempt !== this.attemptId) return;
        this.opening = false;
        this.connect(url);
      },
      (error: unknown) => {
        if (attempt !== this.attemptId) return;
        this.opening = false;
        const failure = error instanceof ConnectFailure ? error : new ConnectFailure("token_failed", describe(error), false);
        if (failure.final) this.stop(failure);
        else this.failed(failure.reason, failure.detail, true);
      },
    );
  }

  private async connectionUrl(): Promise<string> {
    const url = new URL(this.options.url);
    for (const [key, value] of Object.entries(this.config.params ?? {})) url.searchParams.set(key, value);
    const token = this.config.token;
    if (typeof token === "string") {
      const expiry = tokenExpiry(token);
      if (expiry !== null && expiry <= Date.now()) {
        throw new ConnectFailure("token_expired", `the token expired at ${new Date(expiry).toISOString()}`, true);
      }
      url.searchParams.set("token", token);
    } else if (typeof token === "function") {
      url.searchParams.set("token", await fetchToken(token, this.timers, this.options.tokenTimeoutMs));
    }
    return url.toString();
  }

  private connect(url: string): void {
    if (this.closed || this.stopped || this.next !== null) return;
    let link: Link;
    try {
      link = new Link(url, {
        WebSocket: this.options.WebSocket,
        requestTimeoutMs: this.options.requestTimeoutMs,
        rateLimit: this.options.rateLimit,
        timers: this.timers,
        onTimeout: () => this.probe(link),
      });
    } catch (error) {
      this.failed("socket_error", `the WebSocket could not be made: ${describe(error)}`, true);
      return;
    }
    this.next = link;
    this.timers.after(
      this.options.requestTimeoutMs,
      () => {
        if (link.openedAt === null) this.lost(link, "open_timeout", `the connection did not open within ${this.options.requestTimeoutMs} ms`);
      },
      link.signal,
    );
    link.socket.addEventListener("open", () => {
      if (link.ended || link.gone || this.closed) return;
      link.openedAt = link.lastReceived = link.lastSent = Date.now();
      this.handshakeFailures = 0;
      link.startHeartbeat(this.options.heartbeatMs, (stale) => this.onTick(link, stale));
      void this.rejoin(link);
    });
    link.socket.addEventListener("message", (event) => {
      if (this.closed) return;
      link.received();
      if (typeof event.data === "string") this.onFrame(link, event.data);
    });
    link.socket.addEventListener("close", (event) => {
      const said = `closed (${event.code}${event.reason ? `, ${event.reason}` : ""})`;
      this.lost(link, "closed", link.lastError === null ? said : `${said}: ${link.lastError}`);
    });
  }

  /** Rejoins every group on a new connection, then promotes it. Never rejects. */
  private async rejoin(link: Link): Promise<void> {
    let failures: Array<RequestError | null>;
    try {
      failures = await Promise.all(this.groups.names().map((group) => this.groups.joinOn(link, group)));
    } catch (error) {
      this.lost(link, "join_failed", describe(error));
      return;
    }
    if (!link.open || link !== this.next || this.closed) return;
    // The joins are answered in order; one that failed for now (a dropped or unanswering link,
    // rate_limited, internal) ends the attempt. One refused for good has left its group.
    const broken = failures.find(
      (f): f is RequestError => f !== null && ["connection_lost", "timeout", "rate_limited", "internal"].includes(f.code),
    );
    if (broken !== undefined) {
      this.lost(link, "join_failed", `a join failed: ${broken.message}`);
      return;
    }
    this.promote(link);
  }

  /** `link` is ready: it carries the client from now on; the one before it retires. */
  private promote(link: Link): void {
    const old = this.primary;
    this.primary = link;
    this.next = null;
    this.halted = null;
    this.attempt = 0;
    this.handshakeFailures = 0;
    if (old !== null) this.retire(old);
    this.renewAt = link.openedAt! + this.options.maxConnectionMs - this.options.renewBeforeMs;
    this.cancelRenew?.();
    this.cancelRenew = this.timers.after(Math.max(0, this.renewAt - Date.now()), () => this.renew(link), link.signal);
    for (const waiter of [...this.waitingForLink]) {
      this.waitingForLink.delete(waiter);
      waiter.go(link);
    }
    for (const id of [...this.outbox]) {
      this.outbox.delete(id);
      this.writeSend(link, id);
    }
    this.setState("open");
  }

  /** Renews before API Gateway's limit: the next connection opens while this one still works. */
  private renew(link: Link): void {
    if (this.closed || this.halted !== null || link !== this.primary || this.next !== null || this.cancelRetry !== null) return;
    this.openLink();
  }

  /**
   * Closes a replaced connection once what was pushed to it has had a moment to arrive, and what
   * was sent on it has been acked (or has waited long enough).
   */
  private retire(link: Link): void {
    this.retiring.add(link);
    const drained = Date.now() + DRAIN_MS;
    const deadline = Date.now() + this.options.requestTimeoutMs;
    const check = () => {
      const now = Date.now();
      const waiting = [...this.sends.values()].some((s) => s.link === link);
      if (link.open && now < deadline && (waiting || now < drained)) {
        this.timers.after(50, check, link.signal);
        return;
      }
      this.retiring.delete(link);
      this.pairing.forget(link);
      link.end(1000, "renewed");
    };
    check();
  }

  /** Every heartbeat tick: probe a connection that looks idle or dead; renew one whose timer ran late (a sleeping machine). */
  private onTick(link: Link, stale: boolean): void {
    if (stale) this.probe(link, this.options.requestTimeoutMs);
    if (link === this.primary && Date.now() >= this.renewAt) this.renew(link);
  }

  /** Pings `link` now; no frame back within the time: it is dead. */
  private probe(link: Link, timeoutMs = this.options.probeTimeoutMs): void {
    if (this.closed || !link.open) return;
    void link.probe(timeoutMs).then((alive) => {
      if (!alive && link.open) this.lost(link, "ping_timeout", `no answer to a ping within ${timeoutMs} ms`);
    });
  }

  /** A connection ended (or never opened). */
  private lost(link: Link, reason: StateReason, detail: string): void {
    if (link.gone) return;
    link.gone = true;
    const neverOpened = link.openedAt === null;
    link.end(4000, "given up");
    this.retiring.delete(link);
    this.pairing.forget(link);
    for (const record of [...this.sends.values()]) {
      if (record.link === link) {
        record.pending.reject(new RequestError("connection_lost", `the connection was lost before the ack (${detail}): the message may or may not have been sent`, "send"));
      }
    }
    if (this.closed) return;
    if (link === this.primary) {
      this.primary = null;
      this.cancelRenew?.();
      this.renewAt = Infinity;
      if (this.halted !== null) this.stop(this.halted);
      else if (this.next === null) this.failed(reason, detail, false);
      else this.setState("reconnecting", { reason, detail });
    } else if (link === this.next) {
      this.next = null;
      this.failed(reason, detail, neverOpened);
    }
  }

  /**
   * Waits and tries again: full-jitter backoff, or, after `maxHandshakeFailures` attempts in a row
   * that never opened, `suspendedRetryMs` (between half of it and all of it) in the state
   * `suspended`, where calls fail at once.
   */
  private failed(reason: StateReason, detail: string, neverOpened: boolean): void {
    if (this.closed || this.stopped) return;
    if (neverOpened) this.handshakeFailures += 1;
    this.cancelRetry?.();
    let delayMs: number;
    if (this.primary === null && this.handshakeFailures >= this.options.maxHandshakeFailures) {
      delayMs = Math.floor(this.options.suspendedRetryMs * (0.5 + Math.random() / 2));
      this.attempt += 1;
      if (this.currentState !== "suspended") {
        const error = new RequestError("offline", `no connection: ${this.handshakeFailures} attempts in a row failed (${detail})`);
        this.failWaiting(error, error);
      }
      this.setState("suspended", { attempt: this.attempt, delayMs, reason: "handshake_failed", detail: `${reason}: ${detail}` });
    } else {
      delayMs = backoffDelay(this.attempt, this.options.backoff);
      this.attempt += 1;
      if (this.primary === null) this.setState("reconnecting", { attempt: this.attempt, delayMs, reason, detail });
    }
    this.cancelRetry = this.timers.after(delayMs, () => {
      this.cancelRetry = null;
      this.openLink();
    });
  }

  /** The token is refused for good: no more attempts until `reconnect()`. */
  private stop(failure: ConnectFailure): void {
    if (this.closed || this.stopped) return;
    if (this.primary?.open) {
      // A renewal: the connection in use works until API Gateway ends it.
      this.halted = failure;
      return;
    }
    this.halted = failure;
    this.stopped = true;
    this.cancelRetry?.();
    this.cancelRetry = null;
    this.attemptId += 1;
    this.opening = false;
    const next = this.next;
    this.next = null;
    if (next !== null) {
      next.gone = true;
      next.end(1000, "stopped");
    }
    this.failWaiting(this.stoppedError("send"), this.stoppedError("request"));
    this.groups.failJoins(this.stoppedError("join"));
    this.setState("stopped", { reason: failure.reason, detail: failure.detail });
  }

  private setState(state: ConnectionState, detail: Omit<ClientEvents["state"], "state"> = {}): void {
    this.currentState = state;
    this.emit("state", { state, ...detail });
  }

  /** The network or the page is back (or the network is gone): check the connection, or reconnect now. */
  private onPageEvent(type: PageEvent): void {
    if (this.closed) return;
    if (type === "visibilitychange" && pageHidden()) return;
    if (type === "offline") {
      for (const link of this.openLinks()) this.probe(link);
      return;
    }
    const primary = this.primary;
    if (primary?.open) {
      if (Date.now() - primary.lastReceived >= this.options.probeTimeoutMs) this.probe(primary);
      return;
    }
    if (this.stopped || this.cancelRetry === null) return;
    // Waiting for the next attempt: make it now.
    this.attempt = 0;
    this.openLink();
  }

  // --- frames ---

  private onFrame(link: Link, text: string): void {
    const frame = parseFrame(text);
    if (frame === null) {
      if (this.firstCopy(link, text)) this.emit("text", text);
      return;
    }
    if (frame.type === "message") {
      if (isGroupMessage(frame) && this.groups.accept(frame as GroupMessage)) return;
      if (this.firstCopy(link, text)) this.emit("message", frame);
      return;
    }
    if (frame.type === "ack") {
      if (this.selfExcluded.delete(frame.id)) this.groups.skipOwn(frame);
      this.sends.get(frame.id)?.pending.resolve(frame);
      return;
    }
    let sendsOut = 0;
    for (const record of this.sends.values()) if (record.link === link) sendsOut += 1;
    if (link.answer(frame, sendsOut)) return;
    if (frame.type === "presence" && "event" in frame) {
      this.groups.onPresence(frame as PresenceEvent | PresenceOverflow);
      return;
    }
    if (frame.type === "error") this.onError(link, frame);
  }

  private onError(link: Link, frame: Extract<Frame, { type: "error" }>): void {
    // Errors no request took come to the connection that caused them: only the one in use reports them.
    const inUse = link === this.primary || (this.primary === null && link === this.next);
    if (frame.id !== undefined) {
      // A send refused or failed in part names its id: settle that one (a partial failure after
      // its ack is reported as an event).
      this.selfExcluded.delete(frame.id);
      const record = this.sends.get(frame.id);
      if (record !== undefined) record.pending.reject(new RequestError(frame.code, frame.message, "send"));
      else if (inUse) this.emit("error", frame);
      return;
    }
    // Without an id, errors name their action (or none: too_large, rate_limited). One send alone
    // waiting on this link is the one refused; `internal` can follow an ack (some recipients
    // failed), so it is reported, never pinned on another send.
    const waiting = [...this.sends.values()].filter((s) => s.link === link);
    const forSend = frame.action === "send" || (frame.action === undefined && !link.busy);
    if (forSend && frame.code !== "internal" && waiting.length === 1) {
      waiting[0]!.pending.reject(new RequestError(frame.code, frame.message, "send"));
    } else if (inUse) {
      this.emit("error", frame);
    }
  }

  /** Whether a frame without an offset is the first copy (the other connection of a renewal may have handed it on). */
  private firstCopy(link: Link, text: string): boolean {
    const others = [this.primary, this.next, ...this.retiring].filter((l): l is Link => l !== null && l !== link && l.open);
    return this.pairing.first(link, others, text, Date.now());
  }
}

function closedError(action: string): RequestError {
  return new RequestError("closed", "the client was closed", action);
}

function queueFull(action: string, max: number): RequestError {
  return new RequestError("queue_full", `${max} calls already wait for a connection`, action);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Connects, and keeps connecting: see `Client`. */
export function connect(options: ClientOptions): Client {
  return new Client(options);
}
