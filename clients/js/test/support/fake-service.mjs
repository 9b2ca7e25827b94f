// A fake of the service, for the client's unit tests: a WebSocket class to hand the client
// (`options.WebSocket`), the sockets it made, and answers to each command as docs/protocol.md
// says (joins, leaves, group streams and history, acks, presence). Time is node:test's mock clock.
import { mock } from "node:test";

const START = 1_000_000;
let clockNow = null;
let monotonicMock = null;
let wallClockMock = null;

/**
 * Mocks setTimeout, setInterval and Date (setImmediate stays real, to let promises run), and
 * `performance.now()`, the client's monotonic clock, which moves with the mock clock's ticks.
 */
export function useFakeClock() {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: START });
  clockNow = Date.now.bind(Date);
  monotonicMock = mock.method(performance, "now", () => clockNow() - START);
}

export function restoreClock() {
  wallClockMock?.mock.restore();
  monotonicMock?.mock.restore();
  wallClockMock = monotonicMock = clockNow = null;
  mock.timers.reset();
}

/**
 * Sets the wall clock (`Date.now()`) to `ms`, from then on moving with the mock clock's ticks,
 * without moving timers or `performance.now()`: the system clock was changed.
 */
export function setWallClock(ms) {
  const shift = ms - clockNow();
  wallClockMock?.mock.restore();
  wallClockMock = mock.method(Date, "now", () => clockNow() + shift);
}

/** Lets every pending promise continuation run. */
/** A client's options against `service`: its fake sockets, no page events, quick fixed backoff. */
export const clientOptions = (service, more = {}) => ({
  url: "ws://fake.test/",
  WebSocket: service.WebSocket,
  networkEventTarget: null,
  backoff: { baseMs: 100, maxMs: 100 },
  ...more,
});

export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** Moves the mock clock `ms` forward in steps of `step`, letting promises run between steps. */
export async function advance(ms, step = 10) {
  await flush();
  for (let left = ms; left > 0; left -= step) {
    mock.timers.tick(Math.min(step, left));
    await flush();
  }
}

/** Advances until `condition()` holds; fails after `ms`. */
export async function until(condition, ms = 60_000, step = 10) {
  await flush();
  for (let waited = 0; !condition(); waited += step) {
    if (waited > ms) throw new Error(`still not true after ${ms} ms of mock time: ${condition}`);
    mock.timers.tick(step);
    await flush();
  }
}

export class FakeSocket {
  constructor(service, url, index) {
    this.service = service;
    this.url = url;
    this.id = `conn-${index}`;
    this.readyState = 0;
    /** Every frame the client sent, parsed, with the mock time it was sent. */
    this.sent = [];
    /** When set, the socket swallows what the client sends and answers nothing (a dead link). */
    this.silent = false;
    this.listeners = { open: [], message: [], close: [], error: [] };
  }

  addEventListener(type, listener) {
    this.listeners[type]?.push(listener);
  }

  send(text) {
    if (this.readyState !== 1) throw new Error("InvalidStateError: the socket is not open");
    const frame = JSON.parse(text);
    this.sent.push({ at: Date.now(), frame });
    if (!this.silent) this.service.onCommand(this, frame);
  }

  close(code = 1000, reason = "") {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    queueMicrotask(() => this.closed(code, reason));
  }

  /** The frames the client sent, of one action (all without `action`). */
  commands(action) {
    return this.sent.map((s) => s.frame).filter((f) => action === undefined || f.action === action);
  }

  // --- the service's side ---

  open() {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    this.emit("open");
  }

  /** Pushes a frame (an object is sent as JSON). */
  push(frame) {
    if (this.readyState !== 1 || this.silent) return;
    this.emit("message", { data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  /** The connection ends without the client asking (a drop: 1006). */
  drop(code = 1006, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 2;
    this.closed(code, reason);
  }

  closed(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.service.left(this);
    this.emit("close", { code, reason });
  }

  emit(type, event) {
    for (const listener of [...this.listeners[type]]) listener(event);
  }
}

/**
 * The service. `handshake(socket, index)` decides what becomes of each new socket: by default it
 * opens (as a microtask). `answer(socket, frame, service)` may answer a command itself (return a
 * frame, an array of frames, or `null` for no answer); `undefined` falls back to the default.
 */
export class FakeService {
  constructor({ handshake, answer } = {}) {
    this.sockets = [];
    this.handshake = handshake ?? ((socket) => queueMicrotask(() => socket.open()));
    this.answer = answer ?? (() => undefined);
    /** group -> { epoch, offset, log: messages kept, members: Set of sockets, followers: Set, version } */
    this.streams = new Map();
    const service = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url) {
        const index = service.sockets.length;
        super(service, url, index);
        service.sockets.push(this);
        service.handshake(this, index);
      }
    };
  }

  /** The socket made last. */
  get last() {
    return this.sockets.at(-1);
  }

  group(name) {
    let group = this.streams.get(name);
    if (group === undefined) {
      group = { epoch: "E1", offset: 0, log: [], members: new Set(), followers: new Set(), version: 0 };
      this.streams.set(name, group);
    }
    return group;
  }

  /** Whether `socket` is in `group` now (commands applied in the order they came). */
  isMember(socket, group) {
    return this.streams.get(group)?.members.has(socket) ?? false;
  }

  /** Sends a message to a group as another connection would (with a place in its stream). */
  publish(group, data, { from = { connectionId: "other", uid: "other" }, exclude = [] } = {}) {
    const g = this.group(group);
    g.offset += 1;
    const message = { type: "message", from, to: { group }, data, group, epoch: g.epoch, offset: g.offset };
    g.log.push(message);
    for (const member of g.members) if (!exclude.includes(member)) member.push(message);
    return message;
  }

  /**
   * A send by another connection still under way: it took the group's next offset (history's top
   * and a join's position count it) but has kept nothing (history omits it, `recovered: true`) and
   * pushed nothing yet. `keep()` keeps it (history has it from then on), `push()` pushes it to the
   * members then.
   */
  inFlight(group, data, { from = { connectionId: "other", uid: "other" } } = {}) {
    const g = this.group(group);
    g.offset += 1;
    const message = { type: "message", from, to: { group }, data, group, epoch: g.epoch, offset: g.offset };
    return {
      message,
      keep: () => {
        g.log.push(message);
        g.log.sort((a, b) => a.offset - b.offset);
      },
      push: () => {
        for (const member of g.members) member.push(message);
      },
    };
  }

  onCommand(socket, frame) {
    const custom = this.answer(socket, frame, this);
    const replies = custom === undefined ? this.defaultAnswer(socket, frame) : custom;
    if (replies === null || replies === undefined) return;
    queueMicrotask(() => {
      for (const reply of Array.isArray(replies) ? replies : [replies]) socket.push(reply);
    });
  }

  defaultAnswer(socket, frame) {
    switch (frame.action) {
      case "ping":
        return { type: "pong" };
      case "whoami":
        return { type: "whoami", connectionId: socket.id, uid: null, groups: [...this.streams].filter(([, g]) => g.members.has(socket)).map(([n]) => n).sort() };
      case "join": {
        const g = this.group(frame.group);
        g.members.add(socket);
        const joined = { type: "joined", group: frame.group };
        if (g.offset > 0) Object.assign(joined, { epoch: g.epoch, offset: g.offset });
        if (frame.presence) {
          g.followers.add(socket);
          joined.members = [...g.members].map((m) => ({ connectionId: m.id, uid: null }));
          joined.version = g.version;
        }
        return joined;
      }
      case "leave": {
        const g = this.streams.get(frame.group);
        g?.members.delete(socket);
        g?.followers.delete(socket);
        return { type: "left", group: frame.group };
      }
      case "history": {
        const g = this.group(frame.group);
        const since = frame.since ?? { epoch: g.epoch, offset: 0 };
        const messages = since.epoch === g.epoch ? g.log.filter((m) => m.offset > since.offset) : g.log;
        return { type: "history", group: frame.group, epoch: g.epoch, offset: g.offset, recovered: true, messages, more: false };
      }
      case "send": {
        const to = frame.to;
        const ack = { type: "ack", id: frame.id, delivered: 0 };
        if (typeof to.group === "string") {
          const g = this.group(to.group);
          g.offset += 1;
          const message = { type: "message", from: { connectionId: socket.id, uid: null }, to, data: frame.data, group: to.group, epoch: g.epoch, offset: g.offset };
          g.log.push(message);
          for (const member of g.members) {
            if (frame.excludeSelf && member === socket) continue;
            member.push(message);
            ack.delivered += 1;
          }
          Object.assign(ack, { group: to.group, epoch: g.epoch, offset: g.offset });
        }
        return frame.id === undefined ? null : ack;
      }
      case "presence":
        return { type: "presence", ...(frame.group ? { group: frame.group } : {}), connections: 0, uids: [] };
      default:
        return { type: "error", code: "unknown_action", message: `unknown action ${frame.action}`, action: frame.action };
    }
  }

  left(socket) {
    for (const g of this.streams.values()) {
      g.members.delete(socket);
      g.followers.delete(socket);
    }
  }
}

/** Collects unhandled rejections while a test runs. */
export function watchUnhandled() {
  const seen = [];
  const listener = (reason) => seen.push(reason);
  process.on("unhandledRejection", listener);
  return { seen, stop: () => process.off("unhandledRejection", listener) };
}

/** A JWT (unsigned: the client never checks signatures) with these claims. */
export function jwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}
