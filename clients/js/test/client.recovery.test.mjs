// Recovery against a fake service whose sends can be left under way: a missing offset that
// history answers `recovered: true` without is "not yet", and waited for (docs/protocol.md).
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { advance, clientOptions, FakeService, restoreClock, until, useFakeClock } from "./support/fake-service.mjs";

beforeEach(useFakeClock);
afterEach(restoreClock);

const options = (service, more = {}) => clientOptions(service, { gapWaitMs: 500, ...more });

async function member(service, more) {
  const client = new Client(options(service, more));
  const seen = { data: [], recoveries: [] };
  client.on("message", (m) => seen.data.push(m.data));
  client.on("recovery", (r) => seen.recoveries.push(r));
  await client.join("room");
  return { client, seen };
}

const historyAsks = (service) => service.sockets.reduce((n, s) => n + s.commands("history").length, 0);

test("a message still on its way is waited for, and arrives live in order with recovered true", async () => {
  const service = new FakeService();
  const { client, seen } = await member(service);
  service.publish("room", 1);
  const slow = service.inFlight("room", 2);
  service.publish("room", 3);
  service.publish("room", 4);
  // Several asks, each answered recovered: true without offset 2: nothing is given up.
  await advance(5_000);
  assert.deepEqual(seen.data, [1]);
  assert.deepEqual(seen.recoveries, []);
  const asked = historyAsks(service);
  assert.ok(asked >= 2 && asked <= 4, `${asked} history asks in 5 s (waits doubling from 500 ms)`);
  slow.keep();
  slow.push();
  await advance(10);
  assert.deepEqual(seen.data, [1, 2, 3, 4]);
  assert.deepEqual(seen.recoveries, [{ group: "room", recovered: true, reason: "gap" }]);
  await advance(30_000, 100);
  assert.equal(historyAsks(service), asked, "no more asks once the hole is filled");
  client.close();
});

test("a message kept late is found by a later history ask, with waits that double", async () => {
  const service = new FakeService();
  const { client, seen } = await member(service);
  const slow = service.inFlight("room", 1);
  service.publish("room", 2);
  await advance(12_000, 50);
  // Kept, but never pushed to this member: only history brings it.
  slow.keep();
  await until(() => seen.data.length === 2, 30_000, 50);
  assert.deepEqual(seen.data, [1, 2]);
  assert.deepEqual(seen.recoveries, [{ group: "room", recovered: true, reason: "gap" }]);
  // Asked at 0.5, 1, 2, 4, 8 and 16 s after the message that showed the gap.
  assert.equal(historyAsks(service), 6);
  client.close();
});

test("a message still missing when the in-flight window ends is given up, and does not come later", async () => {
  const service = new FakeService();
  const { client, seen } = await member(service, { inFlightWindowMs: 10_000 });
  service.publish("room", 1);
  const slow = service.inFlight("room", 2);
  service.publish("room", 3);
  await advance(9_000, 50);
  assert.deepEqual(seen.data, [1]);
  await advance(3_000, 50);
  assert.deepEqual(seen.data, [1, 3]);
  assert.deepEqual(seen.recoveries, [{ group: "room", recovered: false, reason: "gap" }]);
  slow.keep();
  slow.push();
  service.publish("room", 4);
  await advance(10);
  assert.deepEqual(seen.data, [1, 3, 4], "the order is kept: what was given up stays given up");
  client.close();
});

test("a rejoin whose joined position counts a send still under way waits for that send", async () => {
  const service = new FakeService();
  const { client, seen } = await member(service);
  service.publish("room", 1);
  await advance(10);
  service.last.drop();
  service.publish("room", 2);
  const slow = service.inFlight("room", 3);
  await until(() => client.state === "open" && service.sockets.length === 2);
  // The join said offset 3; history has 2 only, recovered: true.
  await advance(3_000);
  assert.deepEqual(seen.data, [1, 2]);
  assert.deepEqual(seen.recoveries, []);
  // Its fan-out read the members after the rejoin: it comes live.
  slow.keep();
  slow.push();
  await advance(10);
  assert.deepEqual(seen.data, [1, 2, 3]);
  assert.deepEqual(seen.recoveries, [{ group: "room", recovered: true, reason: "reconnect" }]);
  client.close();
});

test("a history that says recovered false passes over what is gone and still waits for a send under way", async () => {
  // Offset 2 aged out; the service says so to any ask from before it.
  const service = new FakeService({
    answer: (socket, frame, svc) => {
      if (frame.action !== "history") return undefined;
      const answer = svc.defaultAnswer(socket, frame);
      return frame.since.offset < 2 ? { ...answer, recovered: false } : answer;
    },
  });
  const { client, seen } = await member(service);
  service.publish("room", 1);
  await advance(10);
  service.last.drop();
  service.publish("room", 2);
  service.group("room").log = service.group("room").log.filter((m) => m.offset !== 2);
  service.publish("room", 3);
  const slow = service.inFlight("room", 4);
  await until(() => client.state === "open" && service.sockets.length === 2);
  await advance(3_000);
  assert.deepEqual(seen.data, [1, 3], "what was kept after the loss is delivered at once");
  assert.deepEqual(seen.recoveries, []);
  slow.keep();
  slow.push();
  await advance(10);
  assert.deepEqual(seen.data, [1, 3, 4]);
  assert.deepEqual(seen.recoveries, [{ group: "room", recovered: false, reason: "reconnect" }]);
  client.close();
});
