// The meter cache's storage: what the hot path needs of each meter's row (its portfolio and the
// keys it has installed), for millions of meters without millions of objects. Per organisation,
// an open-addressing hash table (linear probing, deletion by backward shift) in typed arrays,
// keyed by the 64 bits of the meter's EUI-64, each slot pointing at one of the few distinct row
// contents an estate has (one per portfolio and generation of its keys). About 25 bytes a meter,
// nothing for the garbage collector to trace, a lookup touching a cache line or two.

/** What the store keeps of a meter's row. */
export interface MeterContent {
  readonly portfolio_id: string;
  readonly inst_signing: string | null;
  readonly inst_key_agreement: string | null;
  readonly inst_prepayment: string | null;
}

const EMPTY = 0;
const FIRST_CAPACITY = 1024;
/** Slots filled at most (then the table doubles). */
const LOAD = 0.7;

/** The value of hex digit `c` (0-9, A-F; a lowercase or other character gives -1). */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** The two 32-bit halves of a canonical EUI-64 (16 uppercase hex digits), or undefined. */
function halves(eui: string): [number, number] | undefined {
  if (eui.length !== 16) return undefined;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 8; i++) {
    const a = hexDigit(eui.charCodeAt(i));
    const b = hexDigit(eui.charCodeAt(i + 8));
    if (a < 0 || b < 0) return undefined;
    hi = (hi << 4) | a;
    lo = (lo << 4) | b;
  }
  return [hi >>> 0, lo >>> 0];
}

function slotOf(hi: number, lo: number, mask: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & mask;
}

/** One organisation's meters. */
class Table {
  hi = new Uint32Array(FIRST_CAPACITY);
  lo = new Uint32Array(FIRST_CAPACITY);
  /** Index + 1 into the cache's contents; 0 for an empty slot. */
  val = new Uint32Array(FIRST_CAPACITY);
  size = 0;

  #find(hi: number, lo: number): number {
    const mask = this.val.length - 1;
    for (let i = slotOf(hi, lo, mask); ; i = (i + 1) & mask) {
      if (this.val[i] === EMPTY) return ~i;
      if (this.hi[i] === hi && this.lo[i] === lo) return i;
    }
  }

  get(hi: number, lo: number): number {
    const i = this.#find(hi, lo);
    return i < 0 ? EMPTY : (this.val[i] as number);
  }

  /** @returns whether the meter is new to the table */
  set(hi: number, lo: number, v: number): boolean {
    let i = this.#find(hi, lo);
    if (i >= 0) {
      this.val[i] = v;
      return false;
    }
    if (this.size + 1 > this.val.length * LOAD) {
      this.#grow();
      i = this.#find(hi, lo);
    }
    i = ~i;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.val[i] = v;
    this.size++;
    return true;
  }

  /** @returns whether the meter was in the table */
  delete(hi: number, lo: number): boolean {
    let i = this.#find(hi, lo);
    if (i < 0) return false;
    const mask = this.val.length - 1;
    // Backward shift: move up each following entry whose home slot is not between the gap and it.
    for (let j = (i + 1) & mask; this.val[j] !== EMPTY; j = (j + 1) & mask) {
      const home = slotOf(this.hi[j] as number, this.lo[j] as number, mask);
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (stays) continue;
      this.hi[i] = this.hi[j] as number;
      this.lo[i] = this.lo[j] as number;
      this.val[i] = this.val[j] as number;
      i = j;
    }
    this.val[i] = EMPTY;
    this.size--;
    return true;
  }

  #grow(): void {
    const { hi, lo, val } = this;
    const n = val.length * 2;
    this.hi = new Uint32Array(n);
    this.lo = new Uint32Array(n);
    this.val = new Uint32Array(n);
    const mask = n - 1;
    for (let s = 0; s < val.length; s++) {
      const v = val[s] as number;
      if (v === EMPTY) continue;
      const h = hi[s] as number;
      const l = lo[s] as number;
      let i = slotOf(h, l, mask);
      while (this.val[i] !== EMPTY) i = (i + 1) & mask;
      this.hi[i] = h;
      this.lo[i] = l;
      this.val[i] = v;
    }
  }
}

/**
 * Meters' contents by organisation and EUI-64, at most `max` meters (beyond it, the cache starts
 * again empty). Only canonical EUI-64s (16 uppercase hex digits) are kept or found.
 */
export class MeterCache {
  readonly #max: number;
  readonly #tables = new Map<string, Table>();
  readonly #contents: MeterContent[] = [];
  readonly #index = new Map<string, number>();
  #size = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Meters kept. */
  get size(): number {
    return this.#size;
  }

  get(organisation: string, eui: string): MeterContent | undefined {
    const t = this.#tables.get(organisation);
    if (t === undefined) return undefined;
    const h = halves(eui);
    if (h === undefined) return undefined;
    const v = t.get(h[0], h[1]);
    return v === EMPTY ? undefined : this.#contents[v - 1];
  }

  set(organisation: string, eui: string, content: MeterContent): void {
    if (this.#max === 0) return;
    const h = halves(eui);
    if (h === undefined) return;
    const key = `${content.portfolio_id}\u0000${content.inst_signing ?? ''}\u0000${content.inst_key_agreement ?? ''}\u0000${content.inst_prepayment ?? ''}\u0000${content.inst_signing === null ? 0 : 1}${content.inst_key_agreement === null ? 0 : 1}${content.inst_prepayment === null ? 0 : 1}`;
    let v = this.#index.get(key);
    if (v === undefined) {
      // As many distinct contents as meters at most: an estate has far fewer.
      if (this.#contents.length >= this.#max) this.clear();
      this.#contents.push(Object.freeze({ portfolio_id: content.portfolio_id, inst_signing: content.inst_signing, inst_key_agreement: content.inst_key_agreement, inst_prepayment: content.inst_prepayment }));
      v = this.#contents.length;
      this.#index.set(key, v);
    }
    let t = this.#tables.get(organisation);
    if (t === undefined) this.#tables.set(organisation, (t = new Table()));
    if (this.#size >= this.#max && t.get(h[0], h[1]) === EMPTY) {
      this.clear();
      this.set(organisation, eui, content);
      return;
    }
    if (t.set(h[0], h[1], v)) this.#size++;
  }

  delete(organisation: string, eui: string): void {
    const t = this.#tables.get(organisation);
    const h = halves(eui);
    if (t === undefined || h === undefined) return;
    if (t.delete(h[0], h[1])) this.#size--;
  }

  clear(): void {
    this.#tables.clear();
    this.#contents.length = 0;
    this.#index.clear();
    this.#size = 0;
  }
}
