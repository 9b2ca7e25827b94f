// What a client can be told, its defaults, and what it tells the app (events and states).

import { defaultBackoff, type BackoffOptions } from "./backoff.js";
import type { ErrorFrame, Message, Peer, PresenceEvent } from "./frames.js";
import type { RequestError, WebSocketConstructor } from "./link.js";
import { defaultRateLimit, type RateLimit } from "./pacing.js";
import type { EventTargetLike } from "./wake.js";

export interface ClientOptions {
  /** The API's WebSocket URL: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  url: string;
  /**
   * A token, or a function returning a fresh one for each connection (tokens expire). A string
   * JWT whose `exp` has passed stops the client (`stopped`, `token_expired`); a function that
   * throws `UnauthorizedError` stops it too (`unauthorized`).
   */
  token?: string | (() => string | Promise<string>);
  /** More query parameters for each connection (`{uid: "alice"}` on a local stack without a secret). */
  params?: Record<string, string>;
  /** A WebSocket implementation; the global `WebSocket` by default (browsers, Node ≥ 22 or 20 with `--experimental-websocket`). */
  WebSocket?: WebSocketConstructor;
  /**
   * Ping after this long without sending, or without receiving, anything. API Gateway closes a
   * connection after 10 min without traffic; the service answers pings from API Gateway itself,
   * so an idle connection costs two messages per ping and no Lambda. Default 8 min: checked every
   * 30 s, the ping leaves within 8½ min of silence, and within about 9 min where a hidden browser
   * tab runs timers once a minute.
   */
  heartbeatMs?: number;
  /** How long API Gateway lets a connection live. Default 2 h. */
  maxConnectionMs?: number;
  /** Open the next connection this long before the limit. Default 5 min. */
  renewBeforeMs?: number;
  /** Reconnection delays (full jitter). Default: base 500 ms, max 30 s. */
  backoff?: Partial<BackoffOptions>;
  /** How long to wait for an answer once a frame is sent (acks, joins, history, pongs) or for a socket to open. Default 10 s. */
  requestTimeoutMs?: number;
  /** How long a group message may wait for one sent before it, before history is asked. Default 1 s. */
  gapWaitMs?: number;
  /**
   * How long a missing group message is waited for while the group's history says it is not lost
   * (`recovered: true` without it: a send still under way, which the service allows about 35 s,
   * 3 × its DynamoDB timeout plus a margin). History is asked again after `gapWaitMs`, then twice
   * as long each time; once this has passed since the stream last moved, the message is given up
   * (`recovery` with `recovered: false`). Default 40 s.
   */
  inFlightWindowMs?: number;
  /**
   * The largest frame to send, in UTF-8 bytes: the service refuses a message over its
   * `MAX_MESSAGE_BYTES` (32 000 by default, so that each copy of the message costs one 32 KB
   * message of API Gateway's), and API Gateway closes the connection on a frame over 32 KiB.
   * Default 32 000.
   */
  maxMessageBytes?: number;
  /** How long a call (`send`, `join`, `leave`, `whoami`, `presence`, `opened`) may take in all, waiting for a connection included. Default 30 s; `Infinity` for none. */
  callTimeoutMs?: number;
  /** How many calls may wait for a connection; one more is refused with `queue_full`. Default 100. */
  maxQueuedCalls?: number;
  /** How long the token function may take. Default: `requestTimeoutMs`. */
  tokenTimeoutMs?: number;
  /** How long a link suspected dead (a request unanswered, the page back, `offline`) has to answer a ping. Default 5 s (at most `requestTimeoutMs`). */
  probeTimeoutMs?: number;
  /** After this many connection attempts in a row that never opened, the client is `suspended`. Default 10. */
  maxHandshakeFailures?: number;
  /** While `suspended`, an attempt every half of this to all of it. Default: twice `backoff.maxMs` (60 s). */
  suspendedRetryMs?: number;
  /**
   * The service's rate limit per connection (`RATE_LIMIT` per `RATE_WINDOW_SECONDS`): joins, leaves
   * and history requests keep under 90 % of it, and always have 10 % to themselves (none waits more
   * than a window). Default 100 frames per 10 s.
   */
  rateLimit?: Partial<RateLimit>;
  /** The most messages one group may hold back while one before them is missing; past it, the gap is given up. Default 1 000. */
  maxHeldMessages?: number;
  /**
   * Where `online`, `offline`, `visibilitychange` and `pageshow` come from, to reconnect at once
   * when the network or the page comes back. Default: `window` where there is one (nothing in
   * Node); `null` to listen to nothing. React Native and the like can pass their own target and
   * dispatch these events on it.
   */
  networkEventTarget?: EventTargetLike | null;
}

/** Options of one call. */
export interface CallOptions {
  /** Settle within this long, waiting for a connection included (`timeout`). Default: `callTimeoutMs`. */
  timeoutMs?: number;
  /** Give up when aborted (`aborted`); a frame already sent is not taken back. */
  signal?: AbortSignal;
}

export interface JoinOptions extends CallOptions {
  /** Receive the members now and a presence event for each join and leave. */
  presence?: boolean;
}

export interface SendOptions extends CallOptions {
  exclude?: string[];
  excludeSelf?: boolean;
}

/**
 * - `connecting`: the first connection is being made;
 * - `open`: a connection is in use;
 * - `reconnecting`: the connection dropped, another is tried after `delayMs`;
 * - `suspended`: `maxHandshakeFailures` attempts in a row never opened: retrying slowly, and calls fail at once with `offline`;
 * - `stopped`: the token is refused for good (`unauthorized`, `token_expired`): no more attempts until `reconnect()`;
 * - `closed`: `close()` was called.
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "suspended" | "stopped" | "closed";

/** Why the state changed (the event's `detail` says it in words). */
export type StateReason =
  /** The connection closed (`detail`: its code and reason). */
  | "closed"
  /** The socket did not open within `requestTimeoutMs`. */
  | "open_timeout"
  /** The WebSocket constructor threw. */
  | "socket_error"
  /** A probe went unanswered: the connection was dead. */
  | "ping_timeout"
  /** Rejoining the groups failed for now (no answer, `rate_limited`, `internal`). */
  | "join_failed"
  /** The token function threw or gave no string. */
  | "token_failed"
  /** The token function took longer than `tokenTimeoutMs`. */
  | "token_timeout"
  /** The string token's `exp` has passed. */
  | "token_expired"
  /** `maxHandshakeFailures` attempts in a row never opened. */
  | "handshake_failed"
  /** The token function threw `UnauthorizedError`. */
  | "unauthorized"
  /** `reconnect()` was called. */
  | "reconnect";

export interface ClientEvents {
  /** A message: group messages once each and in order, others as they come. */
  message: Message;
  /** Someone joined or left a group joined with `presence: true` (only changes: stale and repeated events are dropped). */
  presence: PresenceEvent;
  /**
   * A group's members, each time a join with `presence: true` is answered (also after reconnects).
   * `members: null`: the group is over the presence limit (`presenceLimit` at join time, or
   * `overflow: true` when it grew past it, also while the join was under way): no list and no
   * events until the next join.
   */
  members: { group: string; members: Peer[] | null; presenceLimit?: number; overflow?: true };
  /**
   * A group was caught up after a reconnect (`reconnect`) or after a missing message (`gap`).
   * `recovered: false`: some messages could not be had. `final: true`: the service refused
   * history for good (`error`: `forbidden`, `bad_request`, `unknown_action`): later gaps of the
   * group are passed over without asking.
   */
  recovery: { group: string; recovered: boolean; reason: "reconnect" | "gap"; final?: true; error?: RequestError };
  /** The service refused to rejoin a group after a reconnect (`forbidden`, `bad_request`): the client left it. */
  left: { group: string; reason: "refused"; error: RequestError };
  /** The connection's state; `delayMs` is the wait before the next attempt. */
  state: { state: ConnectionState; attempt?: number; delayMs?: number; reason?: StateReason; detail?: string };
  /** An error frame no call was waiting for. */
  error: ErrorFrame;
  /** A frame that is not JSON (the built-in protocol's echo). */
  text: string;
}

export interface ResolvedOptions {
  url: string;
  WebSocket: WebSocketConstructor;
  heartbeatMs: number;
  maxConnectionMs: number;
  renewBeforeMs: number;
  backoff: BackoffOptions;
  requestTimeoutMs: number;
  gapWaitMs: number;
  inFlightWindowMs: number;
  maxMessageBytes: number;
  callTimeoutMs: number;
  maxQueuedCalls: number;
  tokenTimeoutMs: number;
  probeTimeoutMs: number;
  maxHandshakeFailures: number;
  suspendedRetryMs: number;
  rateLimit: RateLimit;
  maxHeldMessages: number;
}

/**
 * The heartbeat's default: 8 minutes of silence. A ping leaves within `HEARTBEAT_CHECK_MS` of it
 * (8½ min), and within a minute of it where a browser runs a hidden tab's timers once a minute
 * (Chrome, after 5 minutes hidden; Safari every 40 s or so): before API Gateway's 10-minute idle
 * limit either way.
 */
export const DEFAULT_HEARTBEAT_MS = 8 * 60_000;

/** The heartbeat's check runs every quarter of `heartbeatMs`, and at least this often. */
export const HEARTBEAT_CHECK_MS = 30_000;

/** The options with their defaults; throws a `TypeError` for a bad `url` or no WebSocket. */
export function resolveOptions(config: ClientOptions): ResolvedOptions {
  const WebSocketImpl =
    config.WebSocket ?? ((globalThis as { WebSocket?: WebSocketConstructor }).WebSocket as WebSocketConstructor | undefined);
  if (WebSocketImpl === undefined) {
    throw new TypeError("no WebSocket: pass options.WebSocket, or run on Node ≥ 22 (Node 20: node --experimental-websocket)");
  }
  const maxConnectionMs = config.maxConnectionMs ?? 2 * 3_600_000;
  const requestTimeoutMs = config.requestTimeoutMs ?? 10_000;
  const backoff = { ...defaultBackoff, ...config.backoff };
  return {
    url: checkUrl(config.url),
    WebSocket: WebSocketImpl,
    heartbeatMs: config.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    maxConnectionMs,
    // Never more than a quarter of the lifetime, so a short lifetime does not renew without pause.
    renewBeforeMs: Math.min(config.renewBeforeMs ?? 5 * 60_000, maxConnectionMs / 4),
    backoff,
    requestTimeoutMs,
    gapWaitMs: config.gapWaitMs ?? 1_000,
    inFlightWindowMs: config.inFlightWindowMs ?? 40_000,
    maxMessageBytes: config.maxMessageBytes ?? 32_000,
    callTimeoutMs: config.callTimeoutMs ?? 30_000,
    maxQueuedCalls: config.maxQueuedCalls ?? 100,
    tokenTimeoutMs: config.tokenTimeoutMs ?? requestTimeoutMs,
    probeTimeoutMs: config.probeTimeoutMs ?? Math.min(5_000, requestTimeoutMs),
    maxHandshakeFailures: Math.max(1, config.maxHandshakeFailures ?? 10),
    suspendedRetryMs: config.suspendedRetryMs ?? 2 * backoff.maxMs,
    rateLimit: { ...defaultRateLimit, ...config.rateLimit },
    maxHeldMessages: config.maxHeldMessages ?? 1_000,
  };
}

/** A `ws:` or `wss:` URL without a fragment (`http:`/`https:` are taken as `ws:`/`wss:`). */
function checkUrl(url: unknown): string {
  if (typeof url !== "string") throw new TypeError("options.url is required: the API's wss:// URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`options.url is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(`options.url must be a ws:// or wss:// URL, not ${parsed.protocol}`);
  }
  if (parsed.hash !== "" || url.includes("#")) throw new TypeError("options.url must not have a fragment (#…)");
  return parsed.toString();
}
