// Push to a uid and to a group, and read the group's presence, through the server API's function
// URL, with nothing but Node's standard library (Node 18 or later: fetch and crypto).
//
//   GATEWAY_URL=https://<id>.lambda-url.<region>.on.aws/ GATEWAY_SECRET=<the ApiSecret> \
//     node notify.mjs alice room-1
import { createHmac, randomUUID } from "node:crypto";

/** Runs the calls in one signed request; their results, in order. */
export async function call(...calls) {
  // A nonce: two identical requests in one second would otherwise look like a replay.
  const body = JSON.stringify({ nonce: randomUUID(), calls });
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac("sha256", process.env.GATEWAY_SECRET).update(`${t}.${body}`).digest("hex");
  const response = await fetch(process.env.GATEWAY_URL, {
    method: "POST",
    headers: { "content-type": "application/json", "x-gateway-signature": `t=${t},v1=${v1}` },
    body,
  });
  if (!response.ok) {
    throw new Error(`the server API refused the request (${response.status}): ${await response.text()}`);
  }
  return (await response.json()).results;
}

const [uid, group] = process.argv.slice(2);
const results = await call(
  { call: "send", to: { uid }, data: { type: "notice", text: "your order shipped" } },
  { call: "send", to: { group }, data: "the room hears this" },
  { call: "presence", group },
);
console.log(JSON.stringify(results));
