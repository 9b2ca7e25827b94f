// A small typed event emitter: `on` returns the function that removes the listener.

export class Emitter<Events extends object> {
  private listeners = new Map<keyof Events, Set<(event: never) => void>>();

  on<K extends keyof Events>(type: K, listener: (event: Events[K]) => void): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  protected emit<K extends keyof Events>(type: K, event: Events[K]): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        (listener as (event: Events[K]) => void)(event);
      } catch (error) {
        // A listener's mistake must not stop the client: report it where uncaught errors go.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
