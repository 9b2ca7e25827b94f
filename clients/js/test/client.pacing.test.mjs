// The rate limit (100 frames per 10 s per connection): the client's own requests are paced but
// never starved, on a clock a changed system clock does not move, and sends queued while offline
// are flushed under the limit after the rejoin.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { FrameBudget } from "../dist/pacing.js";
import { advance, FakeService, clientOptions as options, flush, restoreClock, setWallClock, until, useFakeClock } from "./support/fake-service.mjs";

beforeEach(useFakeClock);
afterEach(restoreClock);

/** The most frames `socket` received in any span of 10 s. */
function busiestWindow(socket) {
  const times = socket.sent.map((s) => s.at);
  let most = 0;
  for (let i = 0; i < times.length; i++) most = Math.max(most, times.filter((t) => t > times[i] - 10_000 && t <= times[i]).length);
  return most;
}

test("a request waits at most one window, and has a tenth of it whatever is sent", () => {
  const budget = new FrameBudget({ frames: 100, windowMs: 10_000 });
  for (let i = 0; i < 100; i++) budget.record(i, false);
  assert.equal(budget.requestWait(100), 0, "no request in the window: the share is free");
  for (let i = 0; i < 10; i++) budget.record(200 + i, true);
  const wait = budget.requestWait(300);
  assert.ok(wait > 0 && wait <= 10_000, `waits ${wait} ms`);
  assert.ok(budget.sendWait(300) > 0, "a queued send waits: 110 frames in the window");
  assert.equal(budget.requestWait(10_201), 0, "the first request left the window");
});

test("an app sending near the rate limit does not starve the client's requests", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { callTimeoutMs: 60_000 }));
  await client.opened();
  // 95 frames per 10 s, all along: more than the 90 % requests used to wait for.
  const pump = setInterval(() => client.send({ all: true }, "tick").catch(() => undefined), 105);
  try {
    await advance(10_000, 50);
    const started = Date.now();
    const done = [];
    client.whoami().then(() => done.push("whoami"));
    client.join("room").then(() => done.push("join"));
    client.presence("room").then(() => done.push("presence"));
    await until(() => done.length === 3, 12_000, 50);
    assert.ok(Date.now() - started <= 10_000, `answered after ${Date.now() - started} ms`);
    let left = false;
    client.leave("room").then(() => (left = true));
    await until(() => left, 12_000, 50);
  } finally {
    clearInterval(pump);
  }
  client.close();
});

test("requests are paced on a clock that a system clock set back does not move", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { callTimeoutMs: 120_000 }));
  await client.opened();
  let answered = 0;
  for (let i = 0; i < 100; i++) client.whoami().then(() => (answered += 1));
  await advance(100);
  assert.equal(answered, 90, "90 in the first window");
  setWallClock(Date.now() - 3_600_000);
  await until(() => answered === 100, 11_000, 50);
  client.close();
});

test("sends queued while offline are flushed under the rate limit after the rejoin", async () => {
  let opening = true;
  const service = new FakeService({ handshake: (socket) => opening && queueMicrotask(() => socket.open()) });
  const client = new Client(options(service, { callTimeoutMs: 120_000 }));
  const groups = Array.from({ length: 80 }, (_, i) => `g${i}`);
  await Promise.all(groups.map((g) => client.join(g)));
  opening = false;
  service.last.drop();
  await flush();
  const outcomes = [];
  for (let i = 0; i < 60; i++) client.send({ all: true }, i).then(() => outcomes.push("acked"), (e) => outcomes.push(e.code));
  await advance(1_000);
  opening = true;
  await until(() => client.state === "open");
  await until(() => outcomes.length === 60, 30_000, 50);
  assert.deepEqual(new Set(outcomes), new Set(["acked"]));
  const socket = service.last;
  assert.equal(socket.commands("join").length, 80);
  assert.deepEqual(socket.commands("send").map((f) => f.data), Array.from({ length: 60 }, (_, i) => i), "in order");
  assert.ok(busiestWindow(socket) <= 100, `${busiestWindow(socket)} frames in 10 s`);
  client.close();
});
