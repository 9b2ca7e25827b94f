// Every timer and sleep of a client, owned by one AbortController: `close()` aborts it, and
// nothing the client scheduled runs or keeps a process alive afterwards. A link passes its own
// signal too, so that its timers end with it.

export class Timers {
  private readonly controller = new AbortController();
  private readonly live = new Set<() => void>();

  /** Aborted once the client is closed. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** How many timers are scheduled now (for tests). */
  get size(): number {
    return this.live.size;
  }

  /** Runs `fn` after `ms` unless cancelled, or unless the client or `signal` is aborted first. */
  after(ms: number, fn: () => void, signal?: AbortSignal): () => void {
    return this.schedule(false, ms, fn, signal);
  }

  /** Runs `fn` every `ms` until cancelled, or until the client or `signal` is aborted. */
  every(ms: number, fn: () => void, signal?: AbortSignal): () => void {
    return this.schedule(true, ms, fn, signal);
  }

  /** Resolves after `ms`; rejects with `abortError()` when the client or `signal` is aborted first. */
  sleep(ms: number, signal?: AbortSignal, abortError: () => Error = () => new Error("aborted")): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.signal.aborted || signal?.aborted) {
        reject(abortError());
        return;
      }
      const onAbort = () => {
        cancel();
        this.signal.removeEventListener("abort", onAbort);
        signal?.removeEventListener("abort", onAbort);
        reject(abortError());
      };
      const cancel = this.after(
        ms,
        () => {
          this.signal.removeEventListener("abort", onAbort);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        signal,
      );
      this.signal.addEventListener("abort", onAbort, { once: true });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Cancels everything, for good. */
  abort(): void {
    this.controller.abort();
    for (const cancel of [...this.live]) cancel();
  }

  private schedule(repeat: boolean, ms: number, fn: () => void, signal?: AbortSignal): () => void {
    if (this.signal.aborted || signal?.aborted) return () => undefined;
    let handle: ReturnType<typeof setTimeout> | undefined;
    const cancel = () => {
      if (!this.live.delete(cancel)) return;
      if (repeat) clearInterval(handle);
      else clearTimeout(handle);
      signal?.removeEventListener("abort", cancel);
    };
    const delay = Math.max(0, ms);
    handle = repeat
      ? setInterval(fn, delay)
      : setTimeout(() => {
          cancel();
          fn();
        }, delay);
    this.live.add(cancel);
    signal?.addEventListener("abort", cancel, { once: true });
    return cancel;
  }
}
