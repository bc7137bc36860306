/** A bounded Map that forgets its least recently used entry; `onEvict` releases what the entry holds. */
export class Lru<K, V> {
  #map = new Map<K, V>();
  constructor(
    readonly capacity: number,
    private readonly onEvict: (key: K, value: V) => void = () => {},
  ) {}

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.capacity) {
      const [oldKey, oldValue] = this.#map.entries().next().value as [K, V];
      this.#map.delete(oldKey);
      this.onEvict(oldKey, oldValue);
    }
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  /** Empty the cache without calling `onEvict` (the caller releases everything at once). */
  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}
