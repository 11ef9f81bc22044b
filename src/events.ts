/**
 * Typed events named `subsystem:action`, emitted through a wrapper that a throwing listener
 * cannot break. The logger is one more listener.
 */
export type EventListener<T> = (payload: T) => void;

export class SafeEmitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<EventListener<never>>>();
  private readonly anyListeners = new Set<(name: keyof Events, payload: unknown) => void>();

  on<K extends keyof Events>(name: K, listener: EventListener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as EventListener<never>);
    return () => set!.delete(listener as EventListener<never>);
  }

  /** Listen to every event (the logger does). */
  onAny(listener: (name: keyof Events, payload: unknown) => void): () => void {
    this.anyListeners.add(listener);
    return () => this.anyListeners.delete(listener);
  }

  /** Resolves with the next `name` event whose payload passes `filter`. */
  next<K extends keyof Events>(name: K, filter: (payload: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(name, (payload) => {
        if (!filter(payload)) return;
        off();
        resolve(payload);
      });
    });
  }

  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as EventListener<Events[K]>)(payload);
      } catch {
        // a listener's bug must never break the worker
      }
    }
    for (const listener of this.anyListeners) {
      try {
        listener(name, payload);
      } catch {
        // same
      }
    }
  }
}
