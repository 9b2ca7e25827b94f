import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../dist/backoff.js";

test("the delay's cap doubles with each attempt, up to the maximum", () => {
  const options = { baseMs: 100, maxMs: 1_000 };
  const almostOne = () => 0.999999;
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, options, almostOne)), [99, 199, 399, 799, 999, 999]);
});

test("the delay is anywhere from zero to the cap (full jitter)", () => {
  assert.equal(backoffDelay(5, { baseMs: 100, maxMs: 1_000 }, () => 0), 0);
  assert.equal(backoffDelay(2, { baseMs: 100, maxMs: 1_000 }, () => 0.5), 200);
});
