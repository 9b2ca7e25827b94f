// How long to wait before reconnecting: "full jitter" exponential backoff (a random delay between
// zero and an exponentially growing cap), so that clients dropped together do not come back together.

export interface BackoffOptions {
  /** The cap of the first attempt's delay, in milliseconds. */
  baseMs: number;
  /** The largest delay, in milliseconds. */
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** The delay before attempt `attempt` (0 for the first retry); `random` is in [0, 1). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = defaultBackoff,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
