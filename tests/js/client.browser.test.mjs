// The client library in headless Chromium against the real local stack: the same scenarios as in
// Node (scenarios.mjs), run inside a page of the gateway, which serves the library under /client/.
import { test, before, after } from "node:test";
import { churningStack, cuttableRelay, freshSuffix, launchChromium, PATIENCE, root, startStack } from "./stack.mjs";

let stack;
let relay;
let browser;
let page;

before(async () => {
  stack = await startStack(churningStack.env);
  relay = await cuttableRelay(stack.port);
  browser = await launchChromium();
  page = await browser.newPage();
  page.on("pageerror", (error) => console.error("page error:", error));
  await page.route(`${stack.url}scenarios.mjs`, (route) =>
    route.fulfill({ path: `${root}/tests/js/scenarios.mjs`, contentType: "text/javascript" }));
  await page.exposeFunction("cutNetwork", () => relay.cut());
  await page.exposeFunction("restoreNetwork", () => relay.restore());
  await page.goto(stack.url);
}, { timeout: PATIENCE });

after(async () => {
  await browser?.close();
  await relay?.close();
  stack?.stop();
});

/** Runs a scenario in the page, with the library the page's gateway serves. */
function inChromium(name) {
  const args = {
    url: stack.wsUrl,
    relayUrl: relay.wsUrl,
    options: churningStack.options,
    historySize: churningStack.historySize,
    suffix: freshSuffix(),
  };
  return page.evaluate(async ({ name, args }) => {
    const { connect } = await import("/client/index.js");
    const scenarios = await import("/scenarios.mjs");
    return scenarios[name]({ connect, ...args });
  }, { name, args });
}

test("in Chromium, a member stays in its groups through a minute of churn and receives every message in order, once", { timeout: PATIENCE }, async () => {
  const seen = await inChromium("churn");
  console.log("churn in Chromium:", JSON.stringify(seen));
});

test("in Chromium, a client cut off and back within the window recovers every message it missed", { timeout: PATIENCE }, async () => {
  await inChromium("backWithinTheWindow");
});

test("in Chromium, a client back after the window is told recovered: false and gets what was kept, in order", { timeout: PATIENCE }, async () => {
  await inChromium("backAfterTheWindow");
});
