import { ByteReader } from './bytes.js';
import { SmkiError } from './errors.js';

/** One DER tag-length-value, located in its input. */
export interface Tlv {
  /** The identifier octet (single-octet tags only; high tag numbers are rejected). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first value octet. */
  readonly valueStart: number;
  /** Offset just past the last value octet. */
  readonly end: number;
}

/** Deepest DER nesting any toolkit parser follows. */
export const MAX_DER_DEPTH = 32;

/**
 * Read one DER TLV at the reader's offset and move past it. Definite, minimal lengths only; at
 * most 4 length octets; the value must fit in the reader's bounds.
 * @throws SmkiError `ERR_DER_INVALID`, `ERR_BYTES_TRUNCATED`
 * @see X.690 §8.1, §10.1
 */
export function readTlv(reader: ByteReader, expectedTag?: number): Tlv {
  const start = reader.offset;
  const tag = reader.u8('DER tag');
  if ((tag & 0x1f) === 0x1f) throw new SmkiError('ERR_DER_INVALID', `high tag number at offset ${start}`, { offset: start });
  if (expectedTag !== undefined && tag !== expectedTag) {
    throw new SmkiError('ERR_DER_INVALID', `expected tag 0x${expectedTag.toString(16)} at offset ${start}, found 0x${tag.toString(16)}`, {
      offset: start,
      detail: 'unexpected tag',
    });
  }
  const lenOffset = reader.offset;
  const first = reader.u8('DER length');
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new SmkiError('ERR_DER_INVALID', `indefinite length at offset ${lenOffset}`, { offset: lenOffset });
    if (n > 4) throw new SmkiError('ERR_DER_INVALID', `length of ${n} octets at offset ${lenOffset}`, { offset: lenOffset });
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + reader.u8('DER length');
    const minimal = length >= 0x80 && (n === 1 || length >= 2 ** (8 * (n - 1)));
    if (!minimal) throw new SmkiError('ERR_DER_INVALID', `non-minimal length at offset ${lenOffset}`, { offset: lenOffset });
  }
  const valueStart = reader.offset;
  if (length > reader.end - valueStart) {
    throw new SmkiError('ERR_BYTES_TRUNCATED', `DER value at offset ${valueStart} claims ${length} bytes`, {
      offset: valueStart,
      needed: length,
      available: reader.end - valueStart,
    });
  }
  reader.offset = valueStart + length;
  return { tag, start, valueStart, end: valueStart + length };
}

/** A reader over the value of a constructed TLV. */
export function tlvReader(bytes: Uint8Array, tlv: Tlv): ByteReader {
  return new ByteReader(bytes, tlv.valueStart, tlv.end);
}

/** The whole encoding (tag, length and value) of a TLV, as a view. */
export function tlvBytes(bytes: Uint8Array, tlv: Tlv): Uint8Array {
  return bytes.subarray(tlv.start, tlv.end);
}

/** The value octets of a TLV, as a view. */
export function tlvValue(bytes: Uint8Array, tlv: Tlv): Uint8Array {
  return bytes.subarray(tlv.valueStart, tlv.end);
}

/**
 * Check that `bytes` is exactly one well-formed DER TLV tree: every constructed value parses as
 * a sequence of TLVs to its end, nesting at most `maxDepth`, at most `maxElements` TLVs in all,
 * and nothing follows the outer TLV. Iterative (no recursion on the input).
 * @throws SmkiError `ERR_DER_INVALID` (also for more than `maxElements` TLVs),
 *   `ERR_DER_DEPTH_EXCEEDED`, `ERR_DER_TRAILING_DATA`, `ERR_BYTES_TRUNCATED`
 */
export function checkDerStructure(bytes: Uint8Array, maxDepth = MAX_DER_DEPTH, maxElements = Number.POSITIVE_INFINITY): Tlv {
  const top = new ByteReader(bytes);
  const outer = readTlv(top);
  if (!top.done) throw new SmkiError('ERR_DER_TRAILING_DATA', `${top.remaining} bytes after the DER object`, { offset: top.offset });
  const stack: ByteReader[] = [];
  if (outer.tag & 0x20) stack.push(tlvReader(bytes, outer));
  let elements = 1;
  while (stack.length > 0) {
    const r = stack[stack.length - 1] as ByteReader;
    if (r.done) {
      stack.pop();
      continue;
    }
    const t = readTlv(r);
    if (++elements > maxElements) {
      throw new SmkiError('ERR_DER_INVALID', `more than ${maxElements} DER elements`, { offset: t.start, detail: 'too many elements' });
    }
    if (t.tag & 0x20) {
      if (stack.length >= maxDepth) {
        throw new SmkiError('ERR_DER_DEPTH_EXCEEDED', `DER nested deeper than ${maxDepth}`, { offset: t.start, maxDepth });
      }
      stack.push(tlvReader(bytes, t));
    }
  }
  return outer;
}
