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
import { Sends } from "./sends.js";
import { Timers } from "./timers.js";
import { ConnectFailure, fetchToken, tokenExpiry } from "./token.js";
import { defaultEventTarget, listenToPage, pageHidden, type PageEvent } from "./wake.js";

export type { CallOptions, ClientEvents, ClientOptions, ConnectionState, JoinOptions, SendOptions, StateReason };

/** How long a replaced connection stays open, so that what was pushed to it still arrives. */
const DRAIN_MS = 1_000;

interface LinkWaiter {
  go: (link: Link) => void;
  fail: (error: RequestError) => void;
}

export class Client extends Emitter<ClientEvents> {
  private readonly options: ResolvedOptions;
  /** Every timer of the client: `close()` aborts them all. */
  private readonly timers = new Timers();
  private readonly groups: Groups;
  private readonly sends: Sends;
  /** Calls other than sends, joins and leaves, until they settle: each rejects itself with `closed`. */
  private readonly calls = new Set<() => void>();
  /** Those of them waiting for a connection. */
  private readonly waitingForLink = new Set<LinkWaiter>();
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
    this.sends = new Sends({
      options: this.options,
      timers: this.timers,
      groups: this.groups,
      primary: () => (this.primary?.open ? this.primary : null),
      probe: (link) => this.probe(link),
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
   * leaves of a group go out in the order they were called, so the last call wins. A join that
   * fails for now (no answer, `rate_limited`, `internal`) is tried again while the group is wanted
   * and the connection open. A join whose promise times out, or fails at once (`stopped`,
   * `offline`), stays in effect (the group is joined once a connection opens): `leave()` gives it up.
   */
  join(group: string, options: JoinOptions = {}): Promise<Joined> {
    if (this.closed) return Promise.reject(closedError("join"));
    const pending = this.groups.want(group, options.presence ?? false);
    bound(pending, this.timers, "join", options.timeoutMs ?? this.options.callTimeoutMs, options.signal, (ms) => {
      if (!this.primary?.open) return `no connection within ${ms} ms (the group is joined once one opens; leave() gives it up)`;
      const failure = this.groups.lastFailure(group);
      return `no answer to join within ${ms} ms${failure === null ? "" : ` (the last attempt: ${failure.code}: ${failure.message}; still trying)`}`;
    });
    // Stopped or suspended: fails at once, and the group is joined once a connection opens.
    const refused = this.refusal("join");
    if (refused !== null) pending.reject(refused);
    for (const link of this.openLinks()) void this.groups.keepJoining(link, group);
    return pending.promise;
  }

  /**
   * Leaves a group: no more messages, no rejoin. Sent at once on the open connection (and on a
   * replaced one still open a moment), so it goes out before any later `join`; without a
   * connection it resolves at once (the next one will not join the group). A join not answered yet
   * rejects with `closed`.
   */
  leave(group: string, options: CallOptions = {}): Promise<void> {
    this.groups.forget(group);
    if (this.closed) return Promise.resolve();
    // A replaced connection still open a moment is in the group too: nothing more of it, there either.
    for (const link of this.retiring) if (link.open) void this.groups.leaveOn(link, group);
    const links = this.openLinks();
    if (links.length === 0) return Promise.resolve();
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
    return this.sends.send(to, data, options, () =>
      this.queued >= this.options.maxQueuedCalls ? queueFull("send", this.options.maxQueuedCalls) : null,
    );
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

  /** Closes for good: no reconnect, no timer left; what waits, or awaits its answer, is rejected with `closed`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.attemptId += 1;
    this.unlisten();
    this.timers.abort();
    // Before the connections end, so that what they would reject with rejects with `closed`.
    this.waitingForLink.clear();
    for (const close of [...this.calls]) close();
    this.sends.failAll(closedError("send"));
    this.groups.failJoins(closedError("join"));
    for (const link of [this.primary, this.next, ...this.retiring]) {
      if (link === null) continue;
      link.gone = true;
      link.end(1000, "closed by the client");
    }
    this.primary = this.next = null;
    this.retiring.clear();
    this.pairing.clear();
    this.setState("closed");
  }

  // --- calls ---

  /** How many calls wait for a connection. */
  private get queued(): number {
    return this.sends.queued + this.waitingForLink.size;
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
    const close = () => pending.reject(closedError(action));
    this.calls.add(close);
    pending.onSettle(() => {
      this.calls.delete(close);
      abort.abort();
    });
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
    this.sends.failQueued(sendError);
    for (const waiter of [...this.waitingForLink]) waiter.fail(new RequestError(requestError.code, requestError.message, requestError.action));
    this.waitingForLink.clear();
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
    // After the rejoin's frames: what fits under the rate limit now, the rest as room comes.
    this.sends.flush(link);
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
      const waiting = this.sends.out(link) > 0;
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
    this.sends.lost(link, detail);
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
        // The groups stay: they are joined once a connection opens.
        this.groups.failJoins(new RequestError("offline", error.message, "join"));
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
      // A group message of a group this client left (on its way as it left) is not for the app.
      if (isGroupMessage(frame)) this.groups.accept(frame);
      else if (this.firstCopy(link, text)) this.emit("message", frame);
      return;
    }
    if (frame.type === "ack") {
      this.sends.onAck(frame);
      return;
    }
    if (link.answer(frame, this.sends.out(link))) return;
    if (frame.type === "presence" && "event" in frame) {
      this.groups.onPresence(frame as PresenceEvent | PresenceOverflow);
      return;
    }
    // A join's answer that came after the join timed out.
    if (frame.type === "joined") this.groups.lateJoined(link, frame);
    else if (frame.type === "error") this.onError(link, frame);
  }

  private onError(link: Link, frame: Extract<Frame, { type: "error" }>): void {
    // Errors no request took come to the connection that caused them: only the one in use reports them.
    const inUse = link === this.primary || (this.primary === null && link === this.next);
    if (!this.sends.onError(link, frame) && inUse) this.emit("error", frame);
  }

  /**
   * Whether a frame without an offset is the first copy (the other connection of a renewal may have
   * handed it on). Copies are recorded while another connection exists, open or still opening: a
   * frame can reach the new one as soon as it opens.
   */
  private firstCopy(link: Link, text: string): boolean {
    const others = [this.primary, this.next, ...this.retiring].filter((l): l is Link => l !== null && l !== link && !l.ended);
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
