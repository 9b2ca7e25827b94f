// The client library's scenarios against the real local stack, written once and run as they are
// in Node (client.node.test.mjs) and in Chromium (client.browser.test.mjs). Each one throws when
// the library breaks its promise, and returns what it saw.
//
// Each takes `connect` (the library's), `url` (the gateway), `relayUrl` (the gateway through a
// relay the test can cut: `globalThis.cutNetwork()` / `globalThis.restoreNetwork()`), `options`
// (the client's limits, matching the stack's) and `suffix` (fresh group names for each run).

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function until(condition, what, ms = 90_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** What a client delivers: each group's messages, its recoveries, how often it (re)opened. */
function watch(client, groups) {
  const seen = { messages: Object.fromEntries(groups.map((g) => [g, []])), recoveries: [], opens: 0, drops: 0 };
  client.on("message", (m) => seen.messages[m.group]?.push({ epoch: m.epoch, offset: m.offset, n: m.data?.n }));
  client.on("recovery", (r) => seen.recoveries.push(r));
  client.on("state", ({ state }) => {
    if (state === "open") seen.opens += 1;
    if (state === "reconnecting") seen.drops += 1;
  });
  return seen;
}

/** The group's last offset, as a fresh join tells it. */
async function topOf(connect, url, group) {
  const probe = connect({ url, params: { uid: "probe" } });
  try {
    const joined = await probe.join(group);
    return joined.offset ?? 0;
  } finally {
    probe.close();
  }
}

function describe(messages) {
  return messages.map((m) => m.offset).join(",");
}

/** Offsets `expected`, in that order, each once, all of one epoch. */
function checkDelivered(group, messages, expected) {
  const offsets = messages.map((m) => m.offset);
  check(
    offsets.length === expected.length && offsets.every((o, i) => o === expected[i]),
    `${group}: delivered offsets ${describe(messages)}, expected ${expected.join(",")}`,
  );
  check(new Set(messages.map((m) => m.epoch)).size <= 1, `${group}: more than one epoch`);
}

const range = (from, to) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

async function sendNumbered(sender, group, from, to) {
  for (let n = from; n <= to; n++) await sender.send({ group }, { n });
}

/**
 * A minute (or `seconds`) of churn: connections live a few seconds and go idle sooner; one client
 * sends to two groups all along while another stays in both. The member receives every message
 * sent to them, in order, exactly once, and nothing it had to recover was lost.
 */
export async function churn({ connect, url, options, suffix, seconds = 60, everyMs = 200 }) {
  const groups = [`churn-a-${suffix}`, `churn-b-${suffix}`];
  const member = connect({ url, params: { uid: "member" }, ...options });
  const seen = watch(member, groups);
  await member.join(groups[0], { presence: true });
  await member.join(groups[1]);
  const sender = connect({ url, params: { uid: "sender" }, ...options });
  const acked = Object.fromEntries(groups.map((g) => [g, []]));
  let unsure = 0;
  const end = Date.now() + seconds * 1000;
  for (let n = 1; Date.now() < end; n++) {
    const group = groups[n % 2];
    try {
      await sender.send({ group }, { n });
      acked[group].push(n);
    } catch {
      // Dropped before its ack: sent or not, the stream's offsets say what was.
      unsure += 1;
    }
    await sleep(everyMs);
  }
  const result = { opens: seen.opens, drops: seen.drops, unsure, delivered: {} };
  for (const group of groups) {
    const top = await topOf(connect, url, group);
    const messages = seen.messages[group];
    await until(() => (messages.at(-1)?.offset ?? 0) >= top, `${group} to reach offset ${top} (at ${messages.at(-1)?.offset})`);
    checkDelivered(group, messages, range(1, top));
    const numbers = new Set(messages.map((m) => m.n));
    const missing = acked[group].filter((n) => !numbers.has(n));
    check(missing.length === 0, `${group}: acked messages never delivered: ${missing.join(",")}`);
    result.delivered[group] = messages.length;
  }
  const lost = seen.recoveries.filter((r) => !r.recovered);
  check(lost.length === 0, `recoveries that lost messages: ${JSON.stringify(lost)}`);
  // Each connection lives a few seconds: a minute is a dozen connections, at the very least.
  check(seen.opens >= seconds / 10, `only ${seen.opens} connections in ${seconds} s: no churn happened`);
  member.close();
  sender.close();
  return result;
}

/** Cut off, then back with `back` messages sent meanwhile; returns what the member saw. */
async function cutOff({ connect, url, relayUrl, options, suffix }, name, missed) {
  const group = `${name}-${suffix}`;
  const member = connect({ url: relayUrl, params: { uid: "member" }, ...options });
  const seen = watch(member, [group]);
  await member.join(group);
  const sender = connect({ url, params: { uid: "sender" }, ...options });
  await sendNumbered(sender, group, 1, 3);
  await until(() => seen.messages[group].length === 3, "the first 3 messages");
  await globalThis.cutNetwork();
  await until(() => member.state === "reconnecting", "the member to notice it was cut off");
  const recoveriesBefore = seen.recoveries.length;
  await sendNumbered(sender, group, 4, 3 + missed);
  await globalThis.restoreNetwork();
  await until(
    () => seen.recoveries.slice(recoveriesBefore).some((r) => r.reason === "reconnect"),
    "the member to recover after coming back",
  );
  const top = 3 + missed;
  await until(() => (seen.messages[group].at(-1)?.offset ?? 0) >= top, `offset ${top}`);
  const recoveries = seen.recoveries.slice(recoveriesBefore);
  member.close();
  sender.close();
  return { group, messages: seen.messages[group], recoveries, top };
}

/** Back within the window: `recovered: true`, and every message in order, once. */
export async function backWithinTheWindow(args) {
  const { group, messages, recoveries, top } = await cutOff(args, "within", 5);
  check(recoveries.every((r) => r.recovered), `a recovery said recovered: false: ${JSON.stringify(recoveries)}`);
  checkDelivered(group, messages, range(1, top));
  check(messages.every((m, i) => m.n === i + 1), `${group}: data out of order: ${messages.map((m) => m.n)}`);
  return { recoveries };
}

/** Back after more than the window was sent: `recovered: false`, and the kept ones in order. */
export async function backAfterTheWindow(args) {
  const historySize = args.historySize;
  const { group, messages, recoveries, top } = await cutOff(args, "beyond", historySize + 5);
  check(recoveries.some((r) => !r.recovered), `no recovery said recovered: false: ${JSON.stringify(recoveries)}`);
  checkDelivered(group, messages, [1, 2, 3, ...range(top - historySize + 1, top)]);
  return { recoveries };
}
