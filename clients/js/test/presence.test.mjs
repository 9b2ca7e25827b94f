// Presence: the roster's version rule (pure), and the client's members and presence events.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { Roster } from "../dist/presence.js";
import { advance, FakeService, flush, restoreClock, until, useFakeClock } from "./support/fake-service.mjs";

const event = (kind, connectionId, version) => ({ type: "presence", event: kind, group: "g", connectionId, uid: connectionId.toUpperCase(), version });
const joined = (ids, version) => ({ type: "joined", group: "g", members: ids.map((id) => ({ connectionId: id, uid: id.toUpperCase() })), version });
const ids = (roster) => roster.members.map((m) => m.connectionId).sort();

test("a stale presence leave after a newer join is dropped", () => {
  const roster = new Roster();
  roster.reset(joined(["me"], 5));
  assert.equal(roster.apply(event("leave", "x", 6)), false, "x was not there: nothing changes");
  assert.equal(roster.apply(event("join", "x", 8)), true);
  assert.equal(roster.apply(event("leave", "x", 7)), false, "stale");
  assert.deepEqual(ids(roster), ["me", "x"]);
  // A join older than a leave already applied is stale too (the leave is remembered).
  assert.equal(roster.apply(event("leave", "x", 10)), true);
  assert.equal(roster.apply(event("join", "x", 9)), false);
  assert.deepEqual(ids(roster), ["me"]);
  // Events at or before the list's version are in the list already.
  assert.equal(roster.apply(event("join", "y", 5)), false);
  assert.equal(roster.apply(event("leave", "me", 4)), false);
  assert.deepEqual(ids(roster), ["me"]);
});

function permutations(items) {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

test("presence converges whatever the order", () => {
  // What happened on the server, one version per change.
  const history = [
    ["join", "a"], // 1
    ["join", "b"], // 2
    ["leave", "a"], // 3  <- the list is taken here: [b]
    ["join", "c"], // 4
    ["leave", "b"], // 5
    ["join", "a2"], // 6
    ["leave", "c"], // 7
  ];
  const listAt = 3;
  const members = new Set();
  const events = history.map(([kind, id], i) => {
    if (kind === "join") members.add(id);
    else members.delete(id);
    return event(kind, id, i + 1);
  });
  const truth = [...members].sort();
  const list = joined(["b"], listAt);
  // Every order of every event (the ones before the list included), with the list arriving at
  // every point among them (events can overtake the joined frame).
  let runs = 0;
  for (const order of permutations(events)) {
    for (let at = 0; at <= order.length; at += 3) {
      const roster = new Roster();
      order.slice(0, at).forEach((e) => roster.apply(e));
      roster.reset(list);
      order.slice(at).forEach((e) => roster.apply(e));
      assert.deepEqual(ids(roster), truth, `order ${order.map((e) => `${e.event}:${e.connectionId}@${e.version}`).join(" ")}, list after ${at}`);
      runs += 1;
    }
  }
  assert.equal(runs, 5040 * 3);
});

test("events without a version are applied as they come", () => {
  const roster = new Roster();
  roster.reset({ type: "joined", group: "g", members: [{ connectionId: "a", uid: null }] });
  const unversioned = (kind, id) => ({ type: "presence", event: kind, group: "g", connectionId: id, uid: null });
  assert.equal(roster.apply(unversioned("join", "b")), true);
  assert.equal(roster.apply(unversioned("join", "b")), false, "a repeat changes nothing");
  assert.equal(roster.apply(unversioned("leave", "a")), true);
  assert.deepEqual(ids(roster), ["b"]);
});

test("a list after the group's presence clock restarted drops the members from before it", () => {
  const roster = new Roster();
  roster.begin();
  roster.reset(joined(["a", "gone"], 500));
  roster.apply(event("join", "also-gone", 501));
  assert.deepEqual(ids(roster), ["a", "also-gone", "gone"]);
  // Hours later, on another connection: the group's counter started again from 1.
  roster.begin();
  roster.reset(joined(["a", "b"], 3));
  assert.deepEqual(ids(roster), ["a", "b"]);
  assert.equal(roster.apply(event("join", "c", 4)), true);
  assert.deepEqual(ids(roster), ["a", "b", "c"]);
});

test("events since the presence join was written are kept at its list, even from a restarted clock", () => {
  const roster = new Roster();
  roster.begin();
  roster.reset(joined(["a"], 500));
  roster.begin();
  // Newer than the list to come, though older than anything the roster held: not reported yet.
  assert.equal(roster.apply(event("join", "c", 4)), false);
  assert.equal(roster.apply(event("leave", "b", 5)), false);
  roster.reset(joined(["a", "b"], 3));
  assert.deepEqual(ids(roster), ["a", "c"]);
});

test("a list older than the one taken in the same generation is ignored", () => {
  const roster = new Roster();
  // A renewal: the join goes out on both connections; the newer list is answered first.
  roster.begin();
  roster.begin();
  assert.equal(roster.reset(joined(["a", "b"], 10)), true);
  roster.apply(event("join", "c", 11));
  assert.equal(roster.reset(joined(["a"], 8)), false);
  assert.deepEqual(ids(roster), ["a", "b", "c"]);
  // A newer one is taken, with what came after it.
  roster.apply(event("join", "d", 13));
  assert.equal(roster.reset(joined(["a", "b", "c"], 12)), true);
  assert.deepEqual(ids(roster), ["a", "b", "c", "d"]);
});

test("an overflow that comes while the presence join is under way is not undone by its list", () => {
  const roster = new Roster();
  roster.begin();
  roster.reset(joined(["a"], 1));
  roster.begin();
  assert.equal(roster.overflow(), true);
  roster.reset(joined(["a", "b"], 5));
  assert.equal(roster.isOverflowed, true);
  assert.equal(roster.members, null);
  // The next join's list is taken.
  roster.begin();
  roster.reset(joined(["a", "b"], 7));
  assert.deepEqual(ids(roster), ["a", "b"]);
});

test.describe("through the client", () => {
  beforeEach(useFakeClock);
  afterEach(restoreClock);

  const setUp = async () => {
    const service = new FakeService();
    const client = new Client({ url: "ws://fake.test/", WebSocket: service.WebSocket, networkEventTarget: null, backoff: { baseMs: 100, maxMs: 100 } });
    const seen = { members: [], presence: [] };
    client.on("members", (m) => seen.members.push(m));
    client.on("presence", (p) => seen.presence.push(`${p.event}:${p.connectionId}`));
    service.group("g").version = 10;
    await client.join("g", { presence: true });
    return { service, client, seen };
  };

  test("only presence changes actually applied reach the app", async () => {
    const { service, client, seen } = await setUp();
    assert.deepEqual(seen.members, [{ group: "g", members: [{ connectionId: "conn-0", uid: null }] }]);
    const socket = service.last;
    socket.push(event("join", "x", 12));
    socket.push(event("leave", "x", 11)); // stale
    socket.push(event("join", "x", 12)); // repeated
    socket.push(event("join", "y", 9)); // before the list
    await advance(10);
    assert.deepEqual(seen.presence, ["join:x"]);
    assert.deepEqual(client.members("g").map((m) => m.connectionId), ["conn-0", "x"]);
    client.close();
  });

  test("overflow stops events and is reported", async () => {
    const { service, client, seen } = await setUp();
    const socket = service.last;
    socket.push({ type: "presence", event: "overflow", group: "g" });
    await advance(10);
    assert.deepEqual(seen.members.at(-1), { group: "g", members: null, overflow: true });
    assert.equal(client.members("g"), null);
    socket.push(event("join", "late", 50));
    socket.push({ type: "presence", event: "overflow", group: "g" });
    await advance(10);
    assert.deepEqual(seen.presence, [], "no events after the overflow");
    assert.equal(seen.members.length, 2, "reported once");
    // The next join (a reconnect) lists the members again.
    socket.drop();
    await until(() => client.state === "open" && service.sockets.length === 2);
    assert.deepEqual(seen.members.at(-1), { group: "g", members: [{ connectionId: "conn-1", uid: null }] });
    client.close();
  });

  /** A client whose joins are answered when the test says. */
  const holdingJoins = async () => {
    const held = [];
    const service = new FakeService({
      answer: (socket, frame, svc) => {
        if (frame.action !== "join") return undefined;
        held.push(() => socket.push(svc.defaultAnswer(socket, frame)));
        return null;
      },
    });
    const client = new Client({ url: "ws://fake.test/", WebSocket: service.WebSocket, networkEventTarget: null });
    const seen = { members: [] };
    client.on("members", (m) => seen.members.push(m));
    await client.opened();
    return { service, client, seen, held };
  };

  test("an overflow while a presence join is under way is not undone by its joined frame", async () => {
    const { service, client, seen, held } = await holdingJoins();
    const joining = client.join("g", { presence: true });
    await flush();
    service.last.push({ type: "presence", event: "overflow", group: "g" });
    held.shift()();
    await joining;
    assert.deepEqual(seen.members, [{ group: "g", members: null, overflow: true }, { group: "g", members: null, overflow: true }]);
    assert.equal(client.members("g"), null);
    client.close();
  });

  test("the answer to a join without presence reports no members, though presence is wanted since", async () => {
    const { client, seen, held } = await holdingJoins();
    const plain = client.join("g");
    await flush();
    const following = client.join("g", { presence: true });
    await flush();
    held.shift()();
    await plain;
    await flush();
    assert.deepEqual(seen.members, [], "no members: null from an answer without a list");
    assert.equal(client.members("g"), null, "no list yet");
    // The first answer settled both calls; the list comes with the second.
    await following;
    held.shift()();
    await flush();
    assert.deepEqual(seen.members, [{ group: "g", members: [{ connectionId: "conn-0", uid: null }] }]);
    client.close();
  });
});
