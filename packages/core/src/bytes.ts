import { timingSafeEqual } from 'node:crypto';
import { SmkiError } from './errors.js';

/** Upper-case hexadecimal of `bytes` (the toolkit's canonical spelling of identifiers). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').toUpperCase();
}

/**
 * Bytes from hexadecimal (either case, even length, no separators or prefix).
 * @throws SmkiError `ERR_HEX_INVALID`
 */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(hex)) {
    throw new SmkiError('ERR_HEX_INVALID', 'expected an even-length hexadecimal string', {
      detail: typeof hex === 'string' ? `length ${hex.length}` : typeof hex,
    });
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Standard base64 (with padding) of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Bytes from standard base64 (white space between groups allowed, padding optional).
 * @throws SmkiError `ERR_BASE64_INVALID`
 */
export function fromBase64(b64: string): Uint8Array {
  if (typeof b64 !== 'string') throw new SmkiError('ERR_BASE64_INVALID', 'expected a string', { detail: typeof b64 });
  const compact = b64.replace(/[\s]/g, '');
  const data = compact.replace(/=+$/, '');
  const padded = data.length !== compact.length;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || data.length % 4 === 1 || (padded && (data.length === 0 || compact.length % 4 !== 0))) {
    throw new SmkiError('ERR_BASE64_INVALID', 'not standard base64', {});
  }
  return new Uint8Array(Buffer.from(compact, 'base64'));
}

/** The concatenation of byte arrays. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whether two byte arrays are equal (not constant-time: for public data). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two byte arrays are equal, in time that does not depend on where they differ (for MACs). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/**
 * A bounds-checked reader over bytes. Every parser in the toolkit reads outside input through
 * one of these: a read past the end throws `ERR_BYTES_TRUNCATED` with the offset, never a
 * `RangeError`, and nothing is read before its length has been checked.
 */
export class ByteReader {
  /** The bytes being read. */
  readonly bytes: Uint8Array;
  /** The next offset to read (absolute, from the start of `bytes`). */
  offset: number;
  /** The offset at which reading must stop. */
  readonly end: number;

  /**
   * @param bytes - the input
   * @param start - first offset to read (default 0)
   * @param end - offset to stop at (default `bytes.length`)
   */
  constructor(bytes: Uint8Array, start = 0, end?: number) {
    if (!(bytes instanceof Uint8Array)) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'expected a Uint8Array', { detail: bytes === null ? 'null' : typeof bytes });
    }
    end ??= bytes.length;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > bytes.length || start > end) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'reader bounds out of range', { detail: `${start}..${end}/${bytes.length}` });
    }
    this.bytes = bytes;
    this.offset = start;
    this.end = end;
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Whether every byte has been read. */
  get done(): boolean {
    return this.offset >= this.end;
  }

  /**
   * Throw `ERR_BYTES_TRUNCATED` unless `n` more bytes are there.
   * @throws SmkiError `ERR_BYTES_TRUNCATED`
   */
  require(n: number, what = 'field'): void {
    if (n > this.end - this.offset) {
      throw new SmkiError('ERR_BYTES_TRUNCATED', `input ends inside ${what} at offset ${this.offset}`, {
        offset: this.offset,
        needed: n,
        available: this.end - this.offset,
      });
    }
  }

  /** The next byte, without consuming it. @throws SmkiError `ERR_BYTES_TRUNCATED` */
  peekU8(what?: string): number {
    this.require(1, what);
    return this.bytes[this.offset] as number;
  }

  /** One byte. @throws SmkiError `ERR_BYTES_TRUNCATED` */
  u8(what?: string): number {
    this.require(1, what);
    return this.bytes[this.offset++] as number;
  }

  /** A big-endian 16-bit unsigned integer. @throws SmkiError `ERR_BYTES_TRUNCATED` */
  u16(what?: string): number {
    this.require(2, what);
    const v = ((this.bytes[this.offset] as number) << 8) | (this.bytes[this.offset + 1] as number);
    this.offset += 2;
    return v;
  }

  /** A big-endian 32-bit unsigned integer. @throws SmkiError `ERR_BYTES_TRUNCATED` */
  u32(what?: string): number {
    this.require(4, what);
    const b = this.bytes;
    const o = this.offset;
    const v = ((b[o] as number) * 0x1000000 + (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number))) >>> 0;
    this.offset += 4;
    return v;
  }

  /** A big-endian unsigned 64-bit integer as a bigint. @throws SmkiError `ERR_BYTES_TRUNCATED` */
  u64(what?: string): bigint {
    this.require(8, what);
    const hi = this.u32(what);
    const lo = this.u32(what);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * The next `n` bytes (a view, not a copy).
   * @throws SmkiError `ERR_BYTES_TRUNCATED`
   */
  bytesView(n: number, what?: string): Uint8Array {
    if (!Number.isInteger(n) || n < 0) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'length must be a non-negative integer', { offset: this.offset });
    }
    this.require(n, what);
    const v = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** Skip `n` bytes. @throws SmkiError `ERR_BYTES_TRUNCATED` */
  skip(n: number, what?: string): void {
    this.bytesView(n, what);
  }
}
