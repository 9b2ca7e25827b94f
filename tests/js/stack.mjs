// What the JavaScript tests share: the whole local stack (moto, the functions under cargo lambda
// watch, the local gateway) started by scripts/dev.sh on free ports, a TCP relay that can cut a
// client off the network, and headless Chromium.
import { spawn } from "node:child_process";
import { createServer, connect as tcpConnect } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const PATIENCE = 180_000;

export function freePort() {
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

/**
 * Starts `scripts/dev.sh` in a process group of its own with `env` added (GATEWAY_MAX_LIFETIME,
 * HISTORY_SIZE, …); resolves once it says it is ready.
 */
export async function startStack(env = {}) {
  const [dynamo, invoke, gateway, moto] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const dev = spawn("scripts/dev.sh", {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      DYNAMODB_PORT: String(dynamo),
      INVOKE_PORT: String(invoke),
      GATEWAY_PORT: String(gateway),
      SECRETS_PORT: String(moto),
      TABLE_NAME: "js-tests",
      // The functions as built: an edit elsewhere in the tree must not rebuild them mid-test.
      DEV_IGNORE_CHANGES: "1",
      ...env,
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
  return {
    port: gateway,
    url: `http://127.0.0.1:${gateway}/`,
    wsUrl: `ws://127.0.0.1:${gateway}/`,
    stop: () => process.kill(-dev.pid, "SIGTERM"),
  };
}

/**
 * A TCP relay to `port`: what connects through it can be cut off — every open connection torn
 * down without a close frame, and new ones refused — until `restore()`.
 */
export async function cuttableRelay(port) {
  const sockets = new Set();
  let down = false;
  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(port, "127.0.0.1");
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a);
      a.on("data", (chunk) => b.write(chunk));
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
      a.on("error", () => b.destroy());
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    wsUrl: `ws://127.0.0.1:${server.address().port}/`,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(resolve);
    }),
  };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** The stack the client library's scenarios run on, and the client options that match it. */
export const churningStack = {
  // Connections live 5 s and go idle after 3 s; groups keep 25 messages.
  env: { GATEWAY_MAX_LIFETIME: "5", GATEWAY_IDLE_TIMEOUT: "3", HISTORY_SIZE: "25" },
  historySize: 25,
  options: {
    heartbeatMs: 1_000,
    maxConnectionMs: 5_000,
    renewBeforeMs: 1_500,
    backoff: { baseMs: 100, maxMs: 1_000 },
    requestTimeoutMs: 15_000,
    gapWaitMs: 500,
  },
};

/** Group names no earlier run used, so that each scenario's streams start at offset 1. */
export function freshSuffix() {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}
