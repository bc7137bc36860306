/** A small typed event emitter: listeners are called in order; a throwing listener cannot break Ominipg. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a listener map must accept listeners of any parameter list
export class TypedEmitter<Events extends { [K in keyof Events]: (...args: any[]) => void }> {
  #listeners = new Map<keyof Events, Set<Events[keyof Events]>>();
  /** once()'s wrappers by the listener they call, so that off(listener) removes them. */
  #onceWrappers = new WeakMap<Events[keyof Events], Events[keyof Events]>();

  on<K extends keyof Events>(event: K, listener: Events[K]): this {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): this {
    const set = this.#listeners.get(event);
    if (set && !set.delete(listener)) {
      const wrapped = this.#onceWrappers.get(listener);
      if (wrapped) set.delete(wrapped);
    }
    return this;
  }

  once<K extends keyof Events>(event: K, listener: Events[K]): this {
    const wrapped = ((...args: Parameters<Events[K]>) => {
      this.#listeners.get(event)?.delete(wrapped);
      listener(...args);
    }) as Events[K];
    this.#onceWrappers.set(listener, wrapped);
    return this.on(event, wrapped);
  }

  listenerCount<K extends keyof Events>(event: K): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        // A listener's bug must not abort a sync or a query; surface it asynchronously instead.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
