// The client library in Node (global WebSocket) against the real local stack, its connections
// cut short by the gateway's limits: scenarios.mjs says what each test expects.
import { test, before, after } from "node:test";
import { churningStack, cuttableRelay, freshSuffix, PATIENCE, root, startStack } from "./stack.mjs";
import * as scenarios from "./scenarios.mjs";

let stack;
let relay;
let connect;

before(async () => {
  stack = await startStack(churningStack.env);
  relay = await cuttableRelay(stack.port);
  globalThis.cutNetwork = relay.cut;
  globalThis.restoreNetwork = relay.restore;
  // Built by scripts/dev.sh as the stack started.
  ({ connect } = await import(`${root}/clients/js/dist/index.js`));
}, { timeout: PATIENCE });

after(async () => {
  await relay?.close();
  stack?.stop();
});

const args = () => ({
  connect,
  url: stack.wsUrl,
  relayUrl: relay.wsUrl,
  options: churningStack.options,
  historySize: churningStack.historySize,
  suffix: freshSuffix(),
});

test("a member stays in its groups through a minute of churn and receives every message in order, once", { timeout: PATIENCE }, async () => {
  const seen = await scenarios.churn(args());
  console.log("churn in Node:", JSON.stringify(seen));
});

test("a client cut off and back within the window recovers every message it missed", { timeout: PATIENCE }, async () => {
  await scenarios.backWithinTheWindow(args());
});

test("a client back after the window is told recovered: false and gets what was kept, in order", { timeout: PATIENCE }, async () => {
  await scenarios.backAfterTheWindow(args());
});
