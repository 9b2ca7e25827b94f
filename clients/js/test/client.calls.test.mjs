// The client's calls against a fake service: every promise settles (answer, timeout, abort,
// close), nothing is left unhandled, and the offline queue is bounded.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { advance, FakeService, clientOptions as options, flush, restoreClock, until, useFakeClock, watchUnhandled } from "./support/fake-service.mjs";

beforeEach(useFakeClock);
afterEach(restoreClock);

test("an invalid url is refused by the constructor", () => {
  const service = new FakeService();
  assert.throws(() => new Client(options(service, { url: "not a url" })), TypeError);
  assert.throws(() => new Client(options(service, { url: "ftp://host/" })), TypeError);
  assert.throws(() => new Client(options(service, { url: "wss://host/#part" })), TypeError);
  assert.throws(() => new Client(options(service, { url: undefined })), TypeError);
  assert.equal(service.sockets.length, 0);
  const client = new Client(options(service, { url: "https://host/prod" }));
  client.close();
  assert.equal(service.sockets.length, 0, "no socket before the token is had");
});

test("a WebSocket constructor that throws goes through the failure path and is retried", async () => {
  const service = new FakeService({
    handshake: (socket, index) => {
      if (index === 0) throw new SyntaxError("the port is blocked");
      queueMicrotask(() => socket.open());
    },
  });
  const states = [];
  const client = new Client(options(service));
  client.on("state", (s) => states.push(s));
  await until(() => client.state === "open", 5_000);
  assert.equal(states[0].state, "reconnecting");
  assert.equal(states[0].reason, "socket_error");
  assert.match(states[0].detail, /the port is blocked/);
  client.close();
});

test("a refused join leaves no unhandled rejection", async () => {
  const unhandled = watchUnhandled();
  try {
    const service = new FakeService({
      answer: (socket, frame, svc) => {
        if (frame.action === "join" && frame.group === "vip") return { type: "error", code: "forbidden", message: "not for you", action: "join" };
        if (frame.action === "join" && frame.group === "slow" && socket === svc.sockets[0]) return null;
        return undefined;
      },
    });
    const client = new Client(options(service));
    await until(() => client.state === "open");
    await assert.rejects(client.join("vip"), { code: "forbidden" });
    // A join cut short by the connection dropping is joined again on the next one.
    const slow = client.join("slow", { timeoutMs: 60_000 });
    slow.catch(() => undefined);
    await advance(10);
    service.last.drop();
    await until(() => client.state === "open" && service.sockets.length === 2);
    await advance(100);
    assert.equal(service.sockets[1].commands("join").filter((f) => f.group === "slow").length, 1);
    client.close();
    await flush();
    await flush();
    assert.deepEqual(unhandled.seen, []);
  } finally {
    unhandled.stop();
  }
});

test("a call made offline times out", async () => {
  // The socket never opens (and each attempt gives up after requestTimeoutMs).
  const service = new FakeService({ handshake: () => undefined });
  const client = new Client(options(service, { callTimeoutMs: 3_000, requestTimeoutMs: 60_000 }));
  const send = assert.rejects(client.send({ all: true }, "hi", { timeoutMs: 1_000 }), (error) => {
    assert.equal(error.code, "timeout");
    assert.match(error.message, /no connection within 1000 ms: the message was not sent/);
    return true;
  });
  const whoami = assert.rejects(client.whoami(), { code: "timeout", action: "whoami" });
  const opened = assert.rejects(client.opened(), { code: "timeout" });
  const join = assert.rejects(client.join("g"), { code: "timeout" });
  await advance(1_000);
  await send;
  const at = Date.now();
  await advance(2_000);
  await Promise.all([whoami, opened, join]);
  assert.equal(Date.now() - at, 2_000);
  // The join's intent stays: the group is joined once a connection opens.
  service.last.open();
  await until(() => client.state === "open");
  assert.deepEqual(service.last.commands("join").map((f) => f.group), ["g"]);
  client.close();
});

test("the offline queue is bounded", async () => {
  const service = new FakeService({ handshake: () => undefined });
  const client = new Client(options(service, { maxQueuedCalls: 3, requestTimeoutMs: 60_000 }));
  const queued = [client.send({ all: true }, 1), client.send({ all: true }, 2), client.whoami()];
  const settled = queued.map((p) => p.then(() => "resolved", (e) => e.code));
  await assert.rejects(client.send({ all: true }, 4), { code: "queue_full" });
  await assert.rejects(client.presence("g"), { code: "queue_full" });
  client.close();
  assert.deepEqual(await Promise.all(settled), ["closed", "closed", "closed"]);
});

test("an aborted call rejects with aborted and frees its place in the queue", async () => {
  const service = new FakeService({ handshake: () => undefined });
  const client = new Client(options(service, { maxQueuedCalls: 1, requestTimeoutMs: 60_000 }));
  const controller = new AbortController();
  const first = client.send({ all: true }, 1, { signal: controller.signal });
  controller.abort();
  await assert.rejects(first, { code: "aborted" });
  const second = client.send({ all: true }, 2);
  service.last.open();
  const ack = await second;
  assert.equal(ack.delivered, 0);
  assert.deepEqual(service.last.commands("send").map((f) => f.data), [2]);
  client.close();
});

test("an excludeSelf send's offset is not recovered back to the sender", async () => {
  const service = new FakeService();
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.join("room");
  const ack = await client.send({ group: "room" }, "mine", { excludeSelf: true });
  assert.deepEqual({ ...ack, id: undefined }, { type: "ack", id: undefined, delivered: 0, group: "room", epoch: "E1", offset: 1 });
  service.publish("room", "theirs");
  await advance(5_000);
  assert.deepEqual(delivered, ["theirs"]);
  assert.equal(service.last.commands("history").length, 0, "no gap was seen, no history asked");
  client.close();
});

test("an excludeSelf send's place held inside a gap is passed over when a rejoin recovers from before it", async () => {
  const service = new FakeService();
  // The gap is not asked about before the connection drops.
  const client = new Client(options(service, { gapWaitMs: 60_000 }));
  const delivered = [];
  const recoveries = [];
  client.on("message", (m) => delivered.push(m.data));
  client.on("recovery", (r) => recoveries.push(r));
  await client.join("room");
  // Offset 1 does not reach this client.
  service.publish("room", "theirs, missed", { exclude: [service.last] });
  const ack = await client.send({ group: "room" }, "mine", { excludeSelf: true });
  assert.equal(ack.offset, 2);
  assert.deepEqual(delivered, [], "the own place waits behind the missing offset 1");
  service.last.drop();
  service.publish("room", "while away");
  await until(() => client.state === "open" && service.sockets.length === 2);
  await advance(1_000);
  // History from offset 0 answered 1, 2 (the own message) and 3.
  assert.equal(service.last.commands("history").length, 1);
  assert.deepEqual(service.last.commands("history")[0].since, { epoch: "E1", offset: 0 });
  assert.deepEqual(delivered, ["theirs, missed", "while away"]);
  assert.deepEqual(recoveries, [{ group: "room", recovered: true, reason: "reconnect" }]);
  client.close();
});

test("an excludeSelf send whose ack is slower than the gap wait is not recovered back to the sender", async () => {
  let heldAck = null;
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action !== "send") return undefined;
      // Pushed to the others and kept; its ack (sent after the pushes) is slow.
      heldAck = svc.defaultAnswer(socket, frame);
      return null;
    },
  });
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.join("room");
  const sent = client.send({ group: "room" }, "mine", { excludeSelf: true });
  await advance(10);
  // Another member's next message reaches the sender first.
  service.publish("room", "theirs");
  await advance(3_000);
  assert.deepEqual(delivered, [], "offset 2 waits for the ack of offset 1");
  service.last.push(heldAck);
  assert.equal((await sent).offset, 1);
  await advance(2_000);
  assert.deepEqual(delivered, ["theirs"]);
  assert.equal(service.last.commands("history").length, 0, "history was not asked while the ack was out");
  client.close();
});

test("a history answer that holds the sender's own excludeSelf message waits for its ack", async () => {
  let answerHistory = null;
  let heldAck = null;
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action === "history") {
        // Answered later, as the store then stands.
        answerHistory = () => socket.push(svc.defaultAnswer(socket, frame));
        return null;
      }
      if (frame.action === "send") {
        heldAck = svc.defaultAnswer(socket, frame);
        return null;
      }
      return undefined;
    },
  });
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.join("room");
  service.publish("room", "theirs, missed", { exclude: [service.last] });
  service.publish("room", "theirs");
  await advance(600);
  assert.notEqual(answerHistory, null, "the gap asked history");
  // Sent while the history request is out: the answer holds it.
  const sent = client.send({ group: "room" }, "mine", { excludeSelf: true });
  await advance(10);
  answerHistory();
  await advance(1_000);
  assert.deepEqual(delivered, [], "the answer waits for the ack");
  service.last.push(heldAck);
  assert.equal((await sent).offset, 3);
  await advance(10);
  assert.deepEqual(delivered, ["theirs, missed", "theirs"]);
  client.close();
});

test("an excludeSelf send whose ack comes after the next message closes the gap without history", async () => {
  let heldAck = null;
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action !== "send") return undefined;
      heldAck = svc.defaultAnswer(socket, frame);
      return null;
    },
  });
  const client = new Client(options(service, { gapWaitMs: 500 }));
  const delivered = [];
  client.on("message", (m) => delivered.push(m.data));
  await client.join("room");
  const sent = client.send({ group: "room" }, "mine", { excludeSelf: true });
  await advance(10);
  service.publish("room", "theirs");
  await advance(100);
  assert.deepEqual(delivered, [], "offset 2 waits for offset 1");
  service.last.push(heldAck);
  assert.equal((await sent).offset, 1);
  await advance(2_000);
  assert.deepEqual(delivered, ["theirs"]);
  assert.equal(service.last.commands("history").length, 0);
  client.close();
});

test("close() rejects the requests in flight with closed", async () => {
  const service = new FakeService({ answer: (_socket, frame) => (frame.action === "whoami" ? null : undefined) });
  const client = new Client(options(service));
  await client.opened();
  const whoami = client.whoami();
  // Behind the whoami on the connection's queue.
  const presence = client.presence("room");
  await advance(10);
  client.close();
  await assert.rejects(whoami, { code: "closed", action: "whoami" });
  await assert.rejects(presence, { code: "closed", action: "presence" });
});
