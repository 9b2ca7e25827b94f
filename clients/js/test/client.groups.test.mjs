// The client's groups against a fake service: the order of joins and leaves, rejoining under the
// rate limit, recoveries that cannot succeed, and frames that reach both connections of a renewal.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { advance, FakeService, clientOptions as options, flush, restoreClock, until, useFakeClock } from "./support/fake-service.mjs";

beforeEach(useFakeClock);
afterEach(() => {
  restoreClock();
  mock.restoreAll();
});

const groupCommands = (socket, group) =>
  socket.sent.map((s) => s.frame).filter((f) => f.group === group && (f.action === "join" || f.action === "leave")).map((f) => f.action);

test("leave then join without awaiting ends joined on the server", async () => {
  const service = new FakeService();
  const client = new Client(options(service));
  await client.join("room");
  // React StrictMode: effect, cleanup, effect.
  const left = client.leave("room");
  const joined = client.join("room");
  await Promise.all([left, joined]);
  assert.deepEqual(groupCommands(service.last, "room"), ["join", "leave", "join"]);
  assert.equal(service.isMember(service.last, "room"), true);
  // And it stays joined across a reconnect.
  service.last.drop();
  await until(() => client.state === "open" && service.sockets.length === 2);
  assert.equal(service.isMember(service.last, "room"), true);
  client.close();
});

test("join then leave without awaiting ends left on the server (the last call wins)", async () => {
  const service = new FakeService();
  const client = new Client(options(service));
  await client.opened();
  const joined = client.join("room");
  const left = client.leave("room");
  await assert.rejects(joined, { code: "closed" });
  await left;
  assert.deepEqual(groupCommands(service.last, "room"), ["join", "leave"]);
  assert.equal(service.isMember(service.last, "room"), false);
  service.last.drop();
  await until(() => client.state === "open" && service.sockets.length === 2);
  assert.deepEqual(groupCommands(service.last, "room"), []);
  client.close();
});

test("a leave while offline resolves at once and the next connection does not rejoin the group", async () => {
  let opening = true;
  const service = new FakeService({ handshake: (socket) => opening && queueMicrotask(() => socket.open()) });
  const client = new Client(options(service));
  await client.join("a");
  await client.join("b");
  opening = false;
  service.last.drop();
  await flush();
  let resolved = false;
  const left = client.leave("a").then(() => (resolved = true));
  const joined = client.join("c");
  await flush();
  assert.equal(resolved, true, "resolved without a connection");
  await left;
  await until(() => service.sockets.length === 2);
  service.last.open();
  await joined;
  assert.deepEqual(service.last.commands("join").map((f) => f.group).sort(), ["b", "c"]);
  client.close();
});

test("rejoining 300 groups stays under 100 frames per 10 s", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { callTimeoutMs: 300_000 }));
  const delivered = new Map();
  client.on("message", (m) => delivered.set(m.group, (delivered.get(m.group) ?? 0) + 1));
  const groups = Array.from({ length: 300 }, (_, i) => `g${i}`);
  const joins = Promise.all(groups.map((g) => client.join(g)));
  await until(() => client.state === "open");
  await until(() => service.last.commands("join").length === 300, 120_000, 50);
  await joins;
  // Away while a message goes to every group: the next connection rejoins 300 groups and asks
  // each one's history.
  service.last.drop();
  for (const g of groups) service.publish(g, "missed");
  await until(() => groups.every((g) => delivered.get(g) === 1), 300_000, 50);
  assert.equal(client.state, "open");
  const second = service.last;
  assert.equal(second.commands("join").length, 300);
  assert.equal(second.commands("history").length, 300);
  for (const socket of service.sockets) {
    const times = socket.sent.map((s) => s.at);
    for (let i = 0; i < times.length; i++) {
      const inWindow = times.filter((t) => t > times[i] - 10_000 && t <= times[i]).length;
      assert.ok(inWindow <= 100, `${socket.id}: ${inWindow} frames in the 10 s up to frame ${i}`);
    }
  }
  client.close();
});

test("a recovery refused for good is final and reported", async () => {
  const service = new FakeService({
    answer: (_socket, frame) =>
      frame.action === "history" ? { type: "error", code: "unknown_action", message: "no history here", action: "history" } : undefined,
  });
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const delivered = [];
  const recoveries = [];
  client.on("message", (m) => delivered.push(m.offset));
  client.on("recovery", (r) => recoveries.push(r));
  await client.join("g");
  service.publish("g", 1);
  service.group("g").offset += 1; // offset 2 never reaches this client
  service.publish("g", 3);
  await advance(1_000);
  assert.deepEqual(delivered, [1, 3]);
  assert.equal(recoveries.length, 1);
  assert.equal(recoveries[0].recovered, false);
  assert.equal(recoveries[0].final, true);
  assert.equal(recoveries[0].error.code, "unknown_action");
  // Later gaps are passed over without asking again.
  service.group("g").offset += 1;
  service.publish("g", 5);
  await advance(60_000, 100);
  assert.deepEqual(delivered, [1, 3, 5]);
  assert.equal(service.last.commands("history").length, 1);
  assert.deepEqual(recoveries.slice(1), [{ group: "g", recovered: false, reason: "gap" }]);
  client.close();
});

test("the live messages held behind a gap are bounded", async () => {
  const service = new FakeService({ answer: (_socket, frame) => (frame.action === "history" ? null : undefined) });
  const client = new Client(options(service, { maxHeldMessages: 5, gapWaitMs: 60_000 }));
  const delivered = [];
  const recoveries = [];
  client.on("message", (m) => delivered.push(m.offset));
  client.on("recovery", (r) => recoveries.push(r));
  await client.join("g");
  service.group("g").offset += 1; // offset 1 is missing
  for (let n = 2; n <= 7; n++) service.publish("g", n);
  await flush();
  assert.deepEqual(delivered, [2, 3, 4, 5, 6, 7]);
  assert.deepEqual(recoveries, [{ group: "g", recovered: false, reason: "gap" }]);
  client.close();
});

test("a rejoin refused for good emits left", async () => {
  let refuse = false;
  const service = new FakeService({
    answer: (_socket, frame) =>
      refuse && frame.action === "join" && frame.group === "vip" ? { type: "error", code: "forbidden", message: "revoked", action: "join" } : undefined,
  });
  const client = new Client(options(service));
  const left = [];
  client.on("left", (event) => left.push(event));
  await client.join("vip");
  await client.join("lobby");
  refuse = true;
  service.last.drop();
  await until(() => client.state === "open" && service.sockets.length === 2);
  assert.equal(left.length, 1);
  assert.equal(left[0].group, "vip");
  assert.equal(left[0].reason, "refused");
  assert.equal(left[0].error.code, "forbidden");
  assert.equal(service.isMember(service.last, "lobby"), true);
  // Not rejoined again.
  service.last.drop();
  await until(() => client.state === "open" && service.sockets.length === 3);
  assert.deepEqual(service.last.commands("join").map((f) => f.group), ["lobby"]);
  client.close();
});

test("a frame without an offset that reaches both connections of a renewal is delivered once", async () => {
  let holdJoin = null;
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action === "join" && socket.id === "conn-1" && holdJoin === null) {
        holdJoin = () => socket.push(svc.defaultAnswer(socket, frame));
        return null;
      }
      return undefined;
    },
  });
  const client = new Client(options(service, { maxConnectionMs: 40_000, renewBeforeMs: 10_000 }));
  const seen = [];
  client.on("message", (m) => seen.push(m.data));
  await client.join("room");
  await until(() => service.sockets.length === 2 && service.sockets[1].readyState === 1, 40_000, 100);
  const [old, renewed] = service.sockets;
  const toMe = (data) => ({ type: "message", from: { connectionId: "x", uid: "x" }, to: { uid: "me" }, data });
  // Before the new connection is in use: copies on both, in either order.
  old.push(toMe("a"));
  renewed.push(toMe("a"));
  renewed.push(toMe("b"));
  old.push(toMe("b"));
  // The same message twice, genuinely: each connection gets two copies.
  old.push(toMe("twice"));
  old.push(toMe("twice"));
  renewed.push(toMe("twice"));
  renewed.push(toMe("twice"));
  holdJoin();
  await advance(10);
  assert.equal(client.state, "open");
  // The old connection is still open a moment: what reaches it still counts, once.
  assert.equal(old.readyState, 1);
  renewed.push(toMe("c"));
  old.push(toMe("c"));
  old.push(toMe("only the old one"));
  await advance(2_000);
  assert.equal(old.readyState, 3, "the old connection closed after its drain");
  renewed.push(toMe("d"));
  await flush();
  assert.deepEqual(seen, ["a", "b", "twice", "twice", "c", "only the old one", "d"]);
  client.close();
});

test("an offset history reports skipped is passed over and the recovery is whole", async () => {
  // The service's send of offset 1 failed before keeping it: nobody got it, history says so.
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action !== "history") return undefined;
      return { ...svc.defaultAnswer(socket, frame), skipped: [1] };
    },
  });
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const delivered = [];
  const recoveries = [];
  client.on("message", (m) => delivered.push(m.data));
  client.on("recovery", (r) => recoveries.push(r));
  await client.join("room");
  service.group("room").offset += 1;
  service.publish("room", "after the failed one");
  await advance(2_000);
  assert.deepEqual(delivered, ["after the failed one"]);
  assert.deepEqual(recoveries.map((r) => r.recovered), [true]);
  assert.equal(service.last.commands("history").length, 1, "one history answered the gap");
  client.close();
});

test("a history the service says is not whole ends the recovery at once, not after another wait", async () => {
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action !== "history") return undefined;
      return { ...svc.defaultAnswer(socket, frame), recovered: false };
    },
  });
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const recoveries = [];
  client.on("recovery", (r) => recoveries.push(r));
  await client.join("room");
  service.group("room").offset += 1; // aged out before this client could ask
  service.publish("room", "after the lost one");
  await advance(2_000);
  assert.deepEqual(recoveries.map((r) => r.recovered), [false]);
  assert.equal(service.last.commands("history").length, 1, "no second ask for what is gone");
  client.close();
});

/** The promise's outcome once it settles: its value, or its error. */
function outcome(promise) {
  const seen = { settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => Object.assign(seen, { settled: true, value }),
    (error) => Object.assign(seen, { settled: true, error }),
  );
  return seen;
}

test("a join unanswered on a working connection is tried again, and the group then works", async () => {
  let joins = 0;
  const service = new FakeService({ answer: (_socket, frame) => (frame.action === "join" && joins++ === 0 ? null : undefined) });
  const client = new Client(options(service, { requestTimeoutMs: 2_000 }));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.opened();
  const joined = outcome(client.join("room"));
  await until(() => joined.settled, 5_000);
  assert.equal(joined.value?.group, "room", `${joined.error}`);
  assert.equal(service.last.commands("join").length, 2);
  assert.equal(service.sockets.length, 1, "the connection answered a ping: it was kept");
  service.publish("room", "hello");
  await flush();
  assert.deepEqual(delivered, ["hello"]);
  client.close();
});

test("a join refused for now past its retries keeps being tried while the group is wanted", async () => {
  let refusing = true;
  const service = new FakeService({
    answer: (_socket, frame) =>
      refusing && frame.action === "join" ? { type: "error", code: "internal", message: "the store is down", action: "join" } : undefined,
  });
  const client = new Client(options(service));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.opened();
  // The app's promise says why, when its time runs out.
  const joined = outcome(client.join("room", { timeoutMs: 1_000 }));
  await until(() => joined.settled, 1_100);
  assert.equal(joined.error?.code, "timeout");
  assert.match(joined.error.message, /internal: the store is down; still trying/);
  assert.ok(service.last.commands("join").length > 5, `${service.last.commands("join").length} attempts`);
  refusing = false;
  await until(() => service.isMember(service.last, "room"), 5_000);
  service.publish("room", "hello");
  await flush();
  assert.deepEqual(delivered, ["hello"]);
  client.close();
});

test("a joined frame that comes after its join timed out is taken", async () => {
  mock.method(Math, "random", () => 0.99);
  let answerLate = null;
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action !== "join" || answerLate !== null) return undefined;
      answerLate = () => socket.push(svc.defaultAnswer(socket, frame));
      return null;
    },
  });
  const client = new Client(options(service, { requestTimeoutMs: 2_000, backoff: { baseMs: 5_000, maxMs: 5_000 } }));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.opened();
  const joined = outcome(client.join("room"));
  // Timed out at 2 s; the next attempt waits its backoff (about 5 s).
  await advance(3_000);
  assert.equal(joined.settled, false);
  answerLate();
  await until(() => joined.settled, 100);
  assert.equal(joined.value?.group, "room", `${joined.error}`);
  await advance(10_000, 100);
  assert.equal(service.last.commands("join").length, 1, "not joined again once the answer came");
  service.publish("room", "hello");
  await flush();
  assert.deepEqual(delivered, ["hello"]);
  client.close();
});

test("join() while suspended fails at once with offline, and the group is joined once a connection opens", async () => {
  let refusing = true;
  const service = new FakeService({ handshake: (socket) => queueMicrotask(() => (refusing ? socket.drop(1006) : socket.open())) });
  const client = new Client(options(service, { maxHandshakeFailures: 2, suspendedRetryMs: 60_000 }));
  const early = outcome(client.join("early"));
  await until(() => client.state === "suspended", 5_000);
  await flush();
  assert.equal(early.error?.code, "offline", "what waited is rejected with offline");
  const now = outcome(client.join("room"));
  await flush();
  assert.equal(now.error?.code, "offline");
  refusing = false;
  client.reconnect();
  await until(() => client.state === "open");
  assert.deepEqual(service.last.commands("join").map((f) => f.group).sort(), ["early", "room"]);
  client.close();
});

test("group messages after leave() reach the app from neither connection of a renewal", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { maxConnectionMs: 40_000, renewBeforeMs: 10_000 }));
  const seen = [];
  client.on("message", (m) => seen.push(m.data));
  await client.join("room");
  await until(() => service.sockets.length === 2 && service.isMember(service.sockets[1], "room"), 40_000, 100);
  await advance(10);
  const [old, renewed] = service.sockets;
  assert.equal(old.readyState, 1, "the old connection drains a moment");
  await client.leave("room");
  assert.equal(old.commands("leave").length, 1, "left on the old connection too");
  assert.equal(renewed.commands("leave").length, 1);
  // Pushed to the old connection before its leave landed.
  old.push({ type: "message", from: { connectionId: "x", uid: "x" }, to: { group: "room" }, data: "late", group: "room", epoch: "E1", offset: 1 });
  await flush();
  assert.deepEqual(seen, []);
  client.close();
});

test("a frame that reaches the next connection as it opens is paired with its copy on the old one", async () => {
  let openNext = null;
  const service = new FakeService({
    handshake: (socket, index) => {
      if (index === 1) openNext = () => socket.open();
      else queueMicrotask(() => socket.open());
    },
  });
  const client = new Client(options(service, { maxConnectionMs: 40_000, renewBeforeMs: 10_000 }));
  const seen = [];
  client.on("message", (m) => seen.push(m.data));
  await client.opened();
  await until(() => openNext !== null, 40_000, 100);
  const [old, renewed] = service.sockets;
  const toMe = (data) => ({ type: "message", from: { connectionId: "x", uid: "x" }, to: { uid: "me" }, data });
  // The next connection exists but is not open yet.
  old.push(toMe("a"));
  openNext();
  renewed.push(toMe("a"));
  await advance(10);
  assert.deepEqual(seen, ["a"]);
  client.close();
});
