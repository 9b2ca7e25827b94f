// The clock durations are measured with: `performance.now()`, which a change of the system clock
// (NTP, the user, a VM resumed) does not move, where there is one; `Date.now()` elsewhere. Wall
// time (`Date.now()`) stays for what API Gateway measures in wall time: a connection's lifetime.

/** Milliseconds on a clock that only moves forward. */
export function monotonicNow(): number {
  const performance = (globalThis as { performance?: { now?: () => number } }).performance;
  return typeof performance?.now === "function" ? performance.now() : Date.now();
}
