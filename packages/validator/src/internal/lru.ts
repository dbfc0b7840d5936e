/**
 * A bounded map with least-recently-used eviction and an optional time to live: the validator's
 * caches (parsed keys, path verdicts, shared secrets) never grow without bound.
 * @internal
 */
export class Lru<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, { value: V; expires: number }>();

  constructor(max: number) {
    this.#max = max;
  }

  /** The value, if present and not expired at `now` (ms); a hit becomes the most recent. */
  get(key: K, now: number): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    this.#map.delete(key);
    if (e.expires <= now) return undefined;
    this.#map.set(key, e);
    return e.value;
  }

  /** Store a value until `expires` (ms since the epoch; `Infinity` for no expiry). */
  set(key: K, value: V, expires: number): void {
    if (this.#max <= 0) return;
    this.#map.delete(key);
    this.#map.set(key, { value, expires });
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
    }
  }

  /** Remove one entry; whether it was there. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Remove the entries whose key matches. */
  deleteWhere(match: (key: K) => boolean): number {
    let n = 0;
    for (const k of [...this.#map.keys()]) {
      if (match(k)) {
        this.#map.delete(k);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}
