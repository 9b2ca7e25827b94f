// A call's promise: settled once, by its answer, its timeout or its signal, whichever comes
// first, with what it left behind (timers, listeners, places in queues) cleaned up as it settles.

import { RequestError } from "./link.js";
import type { Timers } from "./timers.js";

export class Pending<T> {
  readonly promise: Promise<T>;
  settled = false;
  private settleResolve!: (value: T) => void;
  private settleReject!: (error: unknown) => void;
  private cleanups: Array<() => void> = [];

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.settleResolve = resolve;
      this.settleReject = reject;
    });
  }

  resolve(value: T): void {
    if (this.settle()) this.settleResolve(value);
  }

  reject(error: unknown): void {
    if (this.settle()) this.settleReject(error);
  }

  /** Runs `cleanup` once the promise settles (at once if it has). */
  onSettle(cleanup: () => void): void {
    if (this.settled) cleanup();
    else this.cleanups.push(cleanup);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    return true;
  }
}

/**
 * Rejects `pending` with `timeout` after `timeoutMs` (`Infinity` or less than 0: never), and with
 * `aborted` when `signal` aborts. `describe` words the timeout, as it stands when it fires.
 */
export function bound(
  pending: Pick<Pending<never>, "reject" | "onSettle">,
  timers: Timers,
  action: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  describe: (ms: number) => string,
): void {
  if (Number.isFinite(timeoutMs) && timeoutMs >= 0) {
    pending.onSettle(timers.after(timeoutMs, () => pending.reject(new RequestError("timeout", describe(timeoutMs), action))));
  }
  if (signal !== undefined) {
    const onAbort = () => pending.reject(new RequestError("aborted", `${action} was aborted`, action));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    pending.onSettle(() => signal.removeEventListener("abort", onAbort));
  }
}

/** Any error as a `RequestError` (what a request's promise rejects with). */
export function asRequestError(error: unknown, action: string): RequestError {
  return error instanceof RequestError ? error : new RequestError("connection_lost", String(error), action);
}
