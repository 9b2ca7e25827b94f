// The client's connections against a fake service: refused handshakes and tokens, dead links,
// the page and the network coming back, and nothing left running after close().
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Client, UnauthorizedError } from "../dist/index.js";
import { advance, FakeService, clientOptions as options, flush, jwt, restoreClock, until, useFakeClock } from "./support/fake-service.mjs";

beforeEach(useFakeClock);
afterEach(() => {
  restoreClock();
  mock.restoreAll();
});

const refuse = (socket) => queueMicrotask(() => socket.drop(1006));

test("a handshake refused N times enters suspended with handshake_failed", async () => {
  let refusing = true;
  const service = new FakeService({ handshake: (socket) => (refusing ? refuse(socket) : queueMicrotask(() => socket.open())) });
  const states = [];
  const client = new Client(options(service, { maxHandshakeFailures: 3, suspendedRetryMs: 60_000 }));
  client.on("state", (s) => states.push(s));
  const queued = client.send({ all: true }, "queued");
  const queuedFailure = queued.catch((e) => e.code);
  await until(() => client.state === "suspended", 5_000);
  assert.deepEqual(states.map((s) => s.state), ["reconnecting", "reconnecting", "suspended"]);
  const suspended = states.at(-1);
  assert.equal(suspended.reason, "handshake_failed");
  assert.match(suspended.detail, /closed \(1006\)/);
  assert.ok(suspended.delayMs >= 30_000 && suspended.delayMs < 60_000, `delay ${suspended.delayMs}`);
  assert.equal(service.sockets.length, 3);
  // What waited fails, and calls fail at once while suspended.
  assert.equal(await queuedFailure, "offline");
  await assert.rejects(client.whoami(), { code: "offline" });
  // It keeps trying, slowly.
  await advance(29_000, 100);
  assert.equal(service.sockets.length, 3);
  refusing = false;
  await until(() => client.state === "open", 31_000, 100);
  assert.equal(service.sockets.length, 4);
  await client.whoami();
  client.close();
});

test("a token function that throws UnauthorizedError stops the client with unauthorized", async () => {
  const service = new FakeService();
  let token = () => {
    throw new UnauthorizedError("logged out");
  };
  const states = [];
  const client = new Client(options(service, { token: () => token() }));
  client.on("state", (s) => states.push(s));
  await until(() => client.state === "stopped");
  assert.deepEqual(states.at(-1), { state: "stopped", reason: "unauthorized", detail: "logged out" });
  await advance(600_000, 1_000);
  assert.equal(service.sockets.length, 0, "no attempt after a refusal for good");
  await assert.rejects(client.send({ all: true }, 1), { code: "stopped" });
  // The app logs in again and asks for a reconnect.
  token = () => "fresh";
  client.reconnect();
  await until(() => client.state === "open");
  assert.match(service.last.url, /token=fresh/);
  client.close();
});

test("an expired string token stops the client with token_expired", async () => {
  const service = new FakeService();
  const expired = jwt({ sub: "alice", exp: Math.floor(Date.now() / 1000) - 60 });
  const client = new Client(options(service, { token: expired }));
  const states = [];
  client.on("state", (s) => states.push(s));
  await until(() => client.state === "stopped");
  assert.equal(states.at(-1).reason, "token_expired");
  await advance(120_000, 1_000);
  assert.equal(service.sockets.length, 0);
  client.close();
  // A token that is still valid connects.
  const valid = new Client(options(service, { token: jwt({ sub: "alice", exp: Math.floor(Date.now() / 1000) + 600 }) }));
  await until(() => valid.state === "open");
  valid.close();
});

test("a hanging token function times out and reconnection continues", async () => {
  const service = new FakeService();
  let calls = 0;
  const token = () => {
    calls += 1;
    return calls === 1 ? new Promise(() => undefined) : Promise.resolve(`t${calls}`);
  };
  const states = [];
  const client = new Client(options(service, { token, tokenTimeoutMs: 2_000 }));
  client.on("state", (s) => states.push(s));
  await until(() => client.state === "open", 5_000);
  assert.equal(states[0].state, "reconnecting");
  assert.equal(states[0].reason, "token_timeout");
  assert.match(service.last.url, /token=t2/);
  client.close();
});

test("a token function that throws is reported and retried", async () => {
  const service = new FakeService();
  let calls = 0;
  const token = () => {
    calls += 1;
    if (calls === 1) throw new Error("the login service is down");
    return "ok";
  };
  const states = [];
  const client = new Client(options(service, { token }));
  client.on("state", (s) => states.push(s));
  await until(() => client.state === "open", 5_000);
  assert.equal(states[0].reason, "token_failed");
  assert.match(states[0].detail, /the login service is down/);
  client.close();
});

test("a silent socket is detected while sending", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { requestTimeoutMs: 2_000, probeTimeoutMs: 1_000 }));
  await until(() => client.state === "open");
  const dead = service.last;
  dead.silent = true;
  const since = Date.now();
  const failures = [];
  // The app keeps sending: the heartbeat (8 min of silence) alone would not notice.
  for (let i = 0; i < 20 && client.state === "open"; i++) {
    client.send({ all: true }, i).catch((e) => failures.push(e.code));
    await advance(200);
  }
  await until(() => client.state !== "open", 10_000);
  const took = Date.now() - since;
  assert.ok(took <= 2_000 + 1_000 + 50, `detected after ${took} ms`);
  assert.ok(dead.commands("ping").length >= 1, "a probe was sent");
  await until(() => client.state === "open");
  assert.ok(failures.length > 0 && failures.every((code) => code === "timeout" || code === "connection_lost"));
  client.close();
});

test("a link that receives nothing is detected by the heartbeat", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { heartbeatMs: 1_000, requestTimeoutMs: 2_000 }));
  await until(() => client.state === "open");
  service.last.silent = true;
  const since = Date.now();
  await until(() => client.state !== "open", 10_000);
  assert.ok(Date.now() - since <= 1_000 + 250 + 2_000 + 50, `detected after ${Date.now() - since} ms`);
  client.close();
});

test("an idle connection pings every 8 minutes, each ping before API Gateway's 10-minute idle limit", async () => {
  const service = new FakeService();
  const client = new Client(options(service));
  await until(() => client.state === "open");
  const socket = service.last;
  // The app's last frame just after a heartbeat check (every 30 s from the open): the latest a
  // ping can follow it.
  await advance(30_010);
  await client.whoami();
  const lastFrame = socket.sent.at(-1).at;
  // Steps of 100 ms of mock time: each frame's time is known within one.
  await advance(17 * 60_000, 100);
  const pings = socket.sent.filter((s) => s.frame.action === "ping").map((s) => s.at);
  assert.equal(pings.length, 2, `pings at ${pings.map((at) => at - lastFrame)} ms after the last frame`);
  const gaps = [pings[0] - lastFrame, pings[1] - pings[0]];
  for (const gap of gaps) {
    assert.ok(gap >= 8 * 60_000, `a ping after ${gap} ms of silence: too soon`);
    // Within a check (30 s) of 8 min; a minute to spare for a hidden tab's throttled timers.
    assert.ok(gap <= 8.5 * 60_000 + 100, `a ping after ${gap} ms of silence: API Gateway closes at 600 000`);
  }
  assert.equal(client.state, "open");
  client.close();
});

test("a shorter heartbeat checks every quarter of it", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { heartbeatMs: 20_000 }));
  await until(() => client.state === "open");
  const socket = service.last;
  const opened = Date.now();
  await advance(50_000, 100);
  const pings = socket.sent.filter((s) => s.frame.action === "ping").map((s) => s.at - opened);
  assert.ok(pings.length >= 1, "an idle link pinged");
  assert.ok(pings[0] >= 20_000 && pings[0] <= 25_000 + 100, `first ping ${pings[0]} ms after the open`);
  client.close();
});

test("online hastens a reconnect", async () => {
  mock.method(Math, "random", () => 0.99);
  const network = new EventTarget();
  const service = new FakeService();
  const client = new Client(options(service, { backoff: { baseMs: 60_000, maxMs: 60_000 }, networkEventTarget: network }));
  await until(() => client.state === "open");
  const states = [];
  client.on("state", (s) => states.push(s));
  service.last.drop();
  await flush();
  assert.equal(states.at(-1).state, "reconnecting");
  assert.ok(states.at(-1).delayMs > 50_000);
  network.dispatchEvent(new Event("online"));
  await advance(10);
  assert.equal(service.sockets.length, 2, "a new attempt at once");
  await until(() => client.state === "open", 100);
  client.close();
});

test("the page shown again probes a stale link and reconnects when it is dead", async () => {
  const page = new EventTarget();
  const service = new FakeService();
  const client = new Client(options(service, { networkEventTarget: page, probeTimeoutMs: 1_000 }));
  await until(() => client.state === "open");
  // A fresh link is not probed.
  page.dispatchEvent(new Event("visibilitychange"));
  await advance(10);
  assert.equal(service.last.commands("ping").length, 0);
  // The laptop slept: the link died without a close.
  service.last.silent = true;
  await advance(30_000, 1_000);
  page.dispatchEvent(new Event("pageshow"));
  await advance(10);
  assert.equal(service.sockets[0].commands("ping").length, 1, "pinged at once");
  await until(() => client.state !== "open", 1_100);
  await until(() => client.state === "open");
  assert.equal(service.sockets.length, 2);
  client.close();
});

test("close() removes its page listeners", () => {
  const added = new Map();
  const target = {
    addEventListener: (type, listener) => added.set(type, listener),
    removeEventListener: (type, listener) => {
      if (added.get(type) === listener) added.delete(type);
    },
  };
  const service = new FakeService();
  const client = new Client(options(service, { networkEventTarget: target }));
  assert.deepEqual([...added.keys()].sort(), ["offline", "online", "pageshow", "visibilitychange"]);
  client.close();
  assert.equal(added.size, 0);
});

test("close() leaves no timer running", async () => {
  // Count the timers the client schedules (the mock clock's functions, wrapped).
  const live = new Set();
  const real = { setTimeout, clearTimeout, setInterval, clearInterval };
  globalThis.setTimeout = (fn, ms, ...args) => {
    const handle = real.setTimeout(
      (...a) => {
        live.delete(handle);
        fn(...a);
      },
      ms,
      ...args,
    );
    live.add(handle);
    return handle;
  };
  globalThis.clearTimeout = (handle) => {
    live.delete(handle);
    real.clearTimeout(handle);
  };
  globalThis.setInterval = (fn, ms, ...args) => {
    const handle = real.setInterval(fn, ms, ...args);
    live.add(handle);
    return handle;
  };
  globalThis.clearInterval = (handle) => {
    live.delete(handle);
    real.clearInterval(handle);
  };
  try {
    // A busy client: a send without ack, a join retried after rate_limited, a history that
    // never answers, a gap waiting, a connection being renewed.
    const service = new FakeService({
      answer: (socket, frame) => {
        if (frame.action === "send") return null;
        if (frame.action === "join" && frame.group === "busy") return { type: "error", code: "rate_limited", message: "slow down" };
        if (frame.action === "history") return null;
        return undefined;
      },
    });
    const client = new Client(options(service, { maxConnectionMs: 8_000, renewBeforeMs: 2_000 }));
    client.on("state", () => undefined);
    await until(() => client.state === "open");
    client.join("busy").catch(() => undefined);
    await client.join("quiet");
    service.publish("quiet", 1);
    service.group("quiet").offset += 1; // a message this client never gets
    service.publish("quiet", 3);
    client.send({ all: true }, "no ack").catch(() => undefined);
    await advance(1_500);
    assert.ok(live.size > 0);
    client.close();
    assert.equal(live.size, 0, `${live.size} timers still scheduled after close()`);
  } finally {
    Object.assign(globalThis, real);
  }
});

test("a Node script exits promptly after close()", () => {
  restoreClock();
  const support = new URL("./support/fake-service.mjs", import.meta.url).href;
  const index = new URL("../dist/index.js", import.meta.url).href;
  const script = `
    import { Client } from ${JSON.stringify(index)};
    import { FakeService } from ${JSON.stringify(support)};
    const service = new FakeService({
      answer: (socket, frame) => (frame.action === "send" || frame.action === "history" ? null : undefined),
    });
    const client = new Client({ url: "ws://fake.test/", WebSocket: service.WebSocket, networkEventTarget: null,
      requestTimeoutMs: 60_000, callTimeoutMs: 120_000, gapWaitMs: 30_000 });
    await client.join("g");
    service.publish("g", 1);
    service.group("g").offset += 1;
    service.publish("g", 3);
    client.send({ all: true }, "no ack").catch(() => {});
    client.whoami().catch(() => {});
    setTimeout(() => { client.close(); console.log("closed"); }, 20);
  `;
  const started = Date.now();
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    encoding: "utf8",
    timeout: 20_000,
  });
  const took = Date.now() - started;
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /closed/);
  assert.ok(took < 5_000, `the script took ${took} ms to exit`);
});
