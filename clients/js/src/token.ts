// Tokens: asking the token function (within a time), telling a refusal for good from a passing
// failure, and reading a JWT's expiry.

import type { StateReason } from "./options.js";
import type { Timers } from "./timers.js";

/**
 * Throw this (or any error whose `name` is `"UnauthorizedError"`) from the token function when
 * the user may no longer connect (logged out, revoked): the client stops retrying, in the state
 * `stopped` with the reason `unauthorized`, until `reconnect()`.
 */
export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
}

/** Whether the token function's error says the user may no longer connect. */
export function isUnauthorized(error: unknown): boolean {
  return error instanceof UnauthorizedError || (error as { name?: unknown } | null)?.name === "UnauthorizedError";
}

/**
 * When a JWT expires, in milliseconds since the epoch: its payload's `exp`, read without checking
 * the signature (the server does that). `null` for a token that is not a JWT or has no `exp`.
 */
export function tokenExpiry(token: string): number | null {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const payload: unknown = JSON.parse(atob(padded));
    const exp = (payload as { exp?: unknown } | null)?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Why a connection could not even be tried. */
export class ConnectFailure {
  constructor(
    readonly reason: StateReason,
    readonly detail: string,
    /** The token is refused for good: stop. */
    readonly final: boolean,
  ) {}
}

/**
 * Calls the token function, bounded by `timeoutMs`; rejects with a `ConnectFailure`
 * (`token_timeout`, `token_failed`, or `unauthorized`, final). A late answer is ignored.
 */
export function fetchToken(tokenFunction: () => string | Promise<string>, timers: Timers, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const cancel = timers.after(timeoutMs, () =>
      reject(new ConnectFailure("token_timeout", `the token function did not answer within ${timeoutMs} ms`, false)),
    );
    let result: Promise<string>;
    try {
      result = Promise.resolve(tokenFunction());
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (token) => {
        cancel();
        if (typeof token === "string") resolve(token);
        else reject(new ConnectFailure("token_failed", `the token function returned ${typeof token}, not a string`, false));
      },
      (error: unknown) => {
        cancel();
        const words = error instanceof Error ? error.message : String(error);
        reject(
          isUnauthorized(error)
            ? new ConnectFailure("unauthorized", words, true)
            : new ConnectFailure("token_failed", `the token function failed: ${words}`, false),
        );
      },
    );
  });
}
