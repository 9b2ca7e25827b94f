// GroupStream: the ordering and de-duplication of one group's messages, without sockets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GroupStream } from "../dist/stream.js";

const message = (offset, epoch = "E") => ({
  type: "message", from: { connectionId: "c", uid: null }, to: { group: "g" }, data: offset, group: "g", epoch, offset,
});
const offsets = (outcome) => outcome.deliver.map((m) => m.offset);
const page = (messages, { epoch = "E", offset = 0, recovered = true, more = false } = {}) => ({
  type: "history", group: "g", epoch, offset, recovered, messages, more,
});

test("messages before the join's answer wait, and those at or before its position are dropped", () => {
  const stream = new GroupStream();
  assert.deepEqual(offsets(stream.accept(message(5))), []);
  assert.deepEqual(offsets(stream.accept(message(6))), []);
  assert.deepEqual(offsets(stream.start({ epoch: "E", offset: 5 })), [6]);
});

test("a group without a stream yet starts at its first message, whatever its epoch", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "", offset: 0 });
  assert.deepEqual(offsets(stream.accept(message(1, "NEW"))), [1]);
  assert.deepEqual(stream.position, { epoch: "NEW", offset: 1 });
});

test("a message delivered twice (two connections during a renewal) is delivered once", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 0 });
  assert.deepEqual(offsets(stream.accept(message(1))), [1]);
  assert.deepEqual(offsets(stream.accept(message(1))), []);
});

test("an early message waits for the one before it, then both go in order", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 0 });
  const early = stream.accept(message(2));
  assert.deepEqual(offsets(early), []);
  assert.equal(early.gap, true);
  const filled = stream.accept(message(1));
  assert.deepEqual(offsets(filled), [1, 2]);
  assert.equal(filled.gap, false);
});

test("history fills a gap, skipping what was delivered and delivering what waited after it", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 0 });
  stream.accept(message(1));
  stream.accept(message(4));
  const outcome = stream.applyHistory(page([message(1), message(2), message(3), message(4)], { offset: 4 }));
  assert.deepEqual(offsets(outcome), [2, 3, 4]);
  assert.equal(outcome.gap, false);
  assert.equal(outcome.reset, false);
});

test("history from another epoch says the stream was reset", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "OLD", offset: 7 });
  const outcome = stream.applyHistory(page([message(1, "NEW"), message(2, "NEW")], { epoch: "NEW", offset: 2, recovered: false }));
  assert.equal(outcome.reset, true);
  assert.deepEqual(offsets(outcome), [1, 2]);
});

test("what history cannot fill is skipped: what waits goes out in order", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 3 });
  stream.applyHistory(page([message(10), message(9)], { offset: 10, recovered: false }));
  assert.equal(stream.waiting, true);
  assert.deepEqual(stream.skipGap().map((m) => m.offset), [9, 10]);
  assert.deepEqual(stream.position, { epoch: "E", offset: 10 });
  assert.deepEqual(offsets(stream.accept(message(11))), [11]);
});

test("since names the epoch seen when the stream started without one", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "", offset: 0 });
  assert.equal(stream.since(), null);
  assert.deepEqual(stream.since("E"), { epoch: "E", offset: 0 });
});

test("skipping a gap across a new epoch delivers the old stream's waiting messages first", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "OLD", offset: 1 });
  stream.accept(message(1, "NEW"));
  stream.accept(message(3, "OLD"));
  assert.deepEqual(stream.skipGap().map((m) => `${m.epoch}:${m.offset}`), ["OLD:3", "NEW:1"]);
  assert.deepEqual(stream.position, { epoch: "NEW", offset: 1 });
});

test("a skipped place is passed over, and neither history nor a live copy brings it back", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 0 });
  assert.deepEqual(offsets(stream.accept(message(1))), [1]);
  // This client's own excludeSelf message took offset 3; offset 2 is on its way.
  const skipped = stream.skip({ epoch: "E", offset: 3 });
  assert.deepEqual(offsets(skipped), []);
  assert.equal(skipped.gap, true);
  assert.deepEqual(offsets(stream.applyHistory(page([message(2), message(3), message(4)], { offset: 4 }))), [2, 4]);
  assert.deepEqual(offsets(stream.accept(message(3))), []);
  assert.deepEqual(stream.position, { epoch: "E", offset: 4 });
});

test("a skip right after the position moves it on at once", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 5 });
  stream.accept(message(7));
  assert.deepEqual(offsets(stream.skip({ epoch: "E", offset: 6 })), [7]);
  assert.equal(stream.waiting, false);
});

test("many messages held behind a gap drain in linear time", () => {
  const stream = new GroupStream();
  stream.start({ epoch: "E", offset: 0 });
  const count = 50_000;
  const started = performance.now();
  for (let n = count; n >= 2; n--) stream.accept(message(n));
  assert.equal(stream.held, count - 1);
  assert.equal(stream.accept(message(1)).deliver.length, count);
  assert.ok(performance.now() - started < 2_000, `took ${performance.now() - started} ms`);
});
