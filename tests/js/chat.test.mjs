// Two people chat through the local gateway's page (which runs on the client library) in headless
// Chromium, the page driven like a person would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launchChromium, PATIENCE, startStack } from "./stack.mjs";

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
  const browser = await launchChromium();
  try {
    const alice = await person(browser, stack.url, "alice");
    const bob = await person(browser, stack.url, "bob");

    await alice.fill("#text", "hello bob");
    await alice.click("#send");
    await bob.locator("#log").getByText('"data":"hello bob"').waitFor({ timeout: PATIENCE });
    await alice.locator("#log").getByText("delivered to 2").waitFor({ timeout: PATIENCE });

    // Bob follows room-1 (the page joins with presence): he is told when alice comes and goes.
    await bob.fill("#group", "room-1");
    await bob.click("#join");
    await bob.locator("#log").getByText('"type":"joined","group":"room-1"').waitFor({ timeout: PATIENCE });
    await bob.locator("#log").getByText("room-1 members: bob").waitFor({ timeout: PATIENCE });
    await alice.fill("#group", "room-1");
    await alice.click("#join");
    await bob.locator("#log").getByText('"event":"join","group":"room-1"').waitFor({ timeout: PATIENCE });
    await alice.click("#leave");
    await bob.locator("#log").getByText('"event":"leave","group":"room-1"').waitFor({ timeout: PATIENCE });

    await alice.fill("#to-group", "room-1");
    await alice.fill("#text", "just the room");
    await alice.click("#send");
    await bob.locator("#log").getByText('"data":"just the room"').waitFor({ timeout: PATIENCE });

    await bob.click("#presence");
    const presence = bob.locator("#log").getByText('{"type":"presence","group":"room-1","connections":1,"uids":["bob"]}');
    await presence.waitFor({ timeout: PATIENCE });
    assert.equal(await presence.count(), 1);
    // Alice left room-1: her group message reached bob only, never her own page (she sees only
    // the line she sent).
    await alice.locator("#log").getByText("delivered to 1").waitFor({ timeout: PATIENCE });
    assert.equal(await alice.locator("#log .in", { hasText: "just the room" }).count(), 0);
    assert.equal(await alice.locator("#log .out", { hasText: "just the room" }).count(), 1);
  } finally {
    await browser.close();
    stack.stop();
  }
});
