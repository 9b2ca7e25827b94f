// Two people chat through the local gateway's page in headless Chromium: the whole local stack
// (moto, the functions under cargo lambda watch, the local gateway) started by scripts/dev.sh on
// free ports, and the page driven like a person would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = fileURLToPath(new URL("../..", import.meta.url));
const PATIENCE = 120_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `scripts/dev.sh` in a process group of its own; resolves once it says it is ready. */
async function startStack() {
  const [dynamo, invoke, gateway] = [await freePort(), await freePort(), await freePort()];
  const dev = spawn("scripts/dev.sh", {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      DYNAMODB_PORT: String(dynamo),
      INVOKE_PORT: String(invoke),
      GATEWAY_PORT: String(gateway),
      TABLE_NAME: "browser-test",
    },
  });
  let output = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stack was not ready in time:\n${output}`)), PATIENCE);
    const read = (chunk) => {
      output += chunk;
      if (output.includes("[dev]\u001b[0m ready")) {
        clearTimeout(timer);
        resolve();
      }
    };
    dev.stdout.on("data", read);
    dev.stderr.on("data", read);
    dev.on("exit", (code) => reject(new Error(`scripts/dev.sh exited (${code}):\n${output}`)));
  });
  return { url: `http://127.0.0.1:${gateway}/`, stop: () => process.kill(-dev.pid, "SIGTERM") };
}

async function person(browser, url, uid) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill("#uid", uid);
  await page.click("#connect");
  // The page asks whoami once connected; the answer names the uid.
  await page.locator("#log").getByText(`"uid":"${uid}"`).waitFor({ timeout: PATIENCE });
  return page;
}

test("two pages chat with each other through the chat page", { timeout: 4 * PATIENCE }, async () => {
  const stack = await startStack();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const alice = await person(browser, stack.url, "alice");
    const bob = await person(browser, stack.url, "bob");

    await alice.fill("#text", "hello bob");
    await alice.click("#send");
    await bob.locator("#log").getByText('"data":"hello bob"').waitFor({ timeout: PATIENCE });

    await bob.fill("#group", "room-1");
    await bob.click("#join");
    await bob.locator("#log").getByText('{"type":"joined","group":"room-1"}').waitFor({ timeout: PATIENCE });
    await alice.fill("#to-group", "room-1");
    await alice.fill("#text", "just the room");
    await alice.click("#send");
    await bob.locator("#log").getByText('"data":"just the room"').waitFor({ timeout: PATIENCE });

    await bob.click("#presence");
    const presence = bob.locator("#log").getByText('{"type":"presence","group":"room-1","connections":1,"uids":["bob"]}');
    await presence.waitFor({ timeout: PATIENCE });
    assert.equal(await presence.count(), 1);
    // Alice is not in room-1: her group message reached bob only, never her own page (she sees
    // only the line she sent).
    assert.equal(await alice.locator("#log .in", { hasText: "just the room" }).count(), 0);
    assert.equal(await alice.locator("#log .out", { hasText: "just the room" }).count(), 1);
  } finally {
    await browser.close();
    stack.stop();
  }
});
