// The page's and the network's comings and goings: `online` and `offline`, and the page shown
// again (`visibilitychange` to visible, `pageshow` from the back-forward cache). The client uses
// them to check its connection, or to reconnect, at once instead of at its next timer.

/** Something that dispatches `online`, `offline`, `visibilitychange` and `pageshow` (a browser's `window`). */
export interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

export type PageEvent = "online" | "offline" | "visibilitychange" | "pageshow";

const pageEvents: PageEvent[] = ["online", "offline", "visibilitychange", "pageshow"];

/** A browser's `window` (where `visibilitychange` arrives too: it bubbles from `document`); `null` elsewhere. */
export function defaultEventTarget(): EventTargetLike | null {
  const window = (globalThis as { window?: Partial<EventTargetLike> }).window;
  return typeof window?.addEventListener === "function" && typeof window.removeEventListener === "function"
    ? (window as EventTargetLike)
    : null;
}

/** Whether the page is hidden now (never where there is no `document`). */
export function pageHidden(): boolean {
  return (globalThis as { document?: { visibilityState?: string } }).document?.visibilityState === "hidden";
}

/** Listens to `target`'s page events; returns the function that stops listening. */
export function listenToPage(target: EventTargetLike | null, onEvent: (type: PageEvent) => void): () => void {
  if (target === null) return () => undefined;
  const listeners = pageEvents.map((type) => [type, () => onEvent(type)] as const);
  for (const [type, listener] of listeners) target.addEventListener(type, listener);
  return () => {
    for (const [type, listener] of listeners) target.removeEventListener(type, listener);
  };
}
