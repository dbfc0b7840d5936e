// X.690 8.1.2 (identifier octets: high tag numbers), 8.1.3 (length octets), 10.1 (DER: definite
// form, minimum number of length octets); docs/conventions.md, Inputs (bounded parse, depth limit,
// SmkiError with the offset, under 50 ms for 64 KiB).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ByteReader,
  checkDerStructure,
  MAX_DER_DEPTH,
  readTlv,
  SmkiError,
  tlvBytes,
  tlvReader,
  tlvValue,
} from '@smki/core';
import { expectSmkiError, h } from './_helpers.js';

const read = (hex: string, expectedTag?: number) => readTlv(new ByteReader(h(hex)), expectedTag);

/** DER length octets for n (test-side encoder, minimal). */
function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return [0x80 | out.length, ...out];
}

/** `depth` SEQUENCEs nested inside each other around `inner` (linear time, for deep trees). */
function nested(depth: number, inner: number[] = []): Uint8Array {
  const headers: number[][] = [];
  let len = inner.length;
  for (let i = 0; i < depth; i++) {
    const hdr = [0x30, ...derLength(len)];
    headers.push(hdr);
    len += hdr.length;
  }
  const out = new Uint8Array(len);
  let o = 0;
  for (let i = headers.length - 1; i >= 0; i--) {
    out.set(headers[i] as number[], o);
    o += (headers[i] as number[]).length;
  }
  out.set(inner, o);
  return out;
}

describe('readTlv accepts DER (X.690 10.1)', () => {
  it('short form length', () => {
    const t = read('04 03 AABBCC');
    expect(t).toEqual({ tag: 0x04, start: 0, valueStart: 2, end: 5 });
  });

  it('zero length', () => {
    expect(read('05 00')).toEqual({ tag: 0x05, start: 0, valueStart: 2, end: 2 });
  });

  it('long form, one octet, the smallest value that needs it (128)', () => {
    const t = read('04 81 80' + '00'.repeat(128));
    expect(t.valueStart).toBe(3);
    expect(t.end).toBe(131);
  });

  it('long form, two octets (256)', () => {
    const t = read('04 82 0100' + '00'.repeat(256));
    expect(t.valueStart).toBe(4);
    expect(t.end).toBe(260);
  });

  it('checks the expected tag', () => {
    expect(read('30 00', 0x30).tag).toBe(0x30);
  });

  it('context-specific and constructed tags below 31', () => {
    expect(read('A0 00').tag).toBe(0xa0);
    expect(read('9E 00').tag).toBe(0x9e);
  });

  it('advances the reader to the end of the TLV', () => {
    const r = new ByteReader(h('0201 05 0500'));
    readTlv(r);
    expect(r.offset).toBe(3);
    expect(readTlv(r).tag).toBe(0x05);
    expect(r.done).toBe(true);
  });

  it('tlvBytes / tlvValue / tlvReader give views of the TLV', () => {
    const bytes = h('FF 30 05 0201 07 0500');
    const r = new ByteReader(bytes, 1);
    const t = readTlv(r);
    expect(Array.from(tlvBytes(bytes, t))).toEqual(Array.from(h('30 05 020107 0500')));
    expect(Array.from(tlvValue(bytes, t))).toEqual(Array.from(h('020107 0500')));
    const inner = tlvReader(bytes, t);
    expect(readTlv(inner, 0x02).end).toBe(6);
    expect(readTlv(inner, 0x05).end).toBe(8);
    expect(inner.done).toBe(true);
  });
});

describe('readTlv rejects what DER forbids (X.690 8.1.2, 8.1.3, 10.1)', () => {
  it.each([
    ['indefinite length (X.690 10.1)', '30 80 0000', 1],
    ['non-minimal long form for 0 (X.690 10.1)', '04 81 00', 1],
    ['non-minimal long form for 127 (X.690 10.1)', '04 81 7F' + '00'.repeat(127), 1],
    ['non-minimal two octets for 128', '04 82 0080' + '00'.repeat(128), 1],
    ['leading zero length octet for 256', '04 83 000100' + '00'.repeat(256), 1],
    ['five length octets (over the 4-octet limit)', '04 85 0000000001 00', 1],
    ['eight length octets', '04 88 0000000000000001 00', 1],
    ['reserved length octet 0xFF (X.690 8.1.3.5 c)', '04 FF', 1],
    ['high tag number form 0x1F', '1F 01 00', 0],
    ['high tag number, constructed context 0xBF', 'BF 81 00 00', 0],
    ['high tag number, application 0x5F', '5F 20 00', 0],
    ['0xFF identifier', 'FF 00', 0],
  ])('%s → ERR_DER_INVALID with the offset', (_name, hex, offset) => {
    const e = expectSmkiError(() => read(hex), 'ERR_DER_INVALID', { offset });
    expect(e).not.toBeInstanceOf(RangeError);
  });

  it('an unexpected tag → ERR_DER_INVALID', () => {
    expectSmkiError(() => read('31 00', 0x30), 'ERR_DER_INVALID', { offset: 0, detail: 'unexpected tag' });
  });

  it.each([
    ['empty input', '', 0, 1, 0],
    ['tag without a length', '30', 1, 1, 0],
    ['long form cut inside the length octets', '04 82 01', 3, 1, 0],
    ['a length that lies by one', '04 03 AABB', 2, 3, 2],
    ['a length of 2^32 − 1 over 2 bytes', '04 84 FFFFFFFF AABB', 6, 0xffffffff, 2],
    ['a length of 2^31 over nothing', '04 84 80000000', 6, 0x80000000, 0],
  ])('%s → ERR_BYTES_TRUNCATED with offset, needed, available', (_name, hex, offset, needed, available) => {
    expectSmkiError(() => read(hex), 'ERR_BYTES_TRUNCATED', { offset, needed, available });
  });

  it('a value may not run past the reader window even if the buffer goes on', () => {
    const bytes = h('04 04 AABB CCDD');
    expectSmkiError(() => readTlv(new ByteReader(bytes, 0, 4)), 'ERR_BYTES_TRUNCATED', { offset: 2, available: 2 });
  });

  it('never throws anything but SmkiError on random input (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), (bytes, tag) => {
        const r = new ByteReader(bytes);
        try {
          const t = readTlv(r, tag);
          expect(t.end).toBeLessThanOrEqual(bytes.length);
          expect(r.offset).toBe(t.end);
        } catch (e) {
          expect(e).toBeInstanceOf(SmkiError);
          expect(['ERR_DER_INVALID', 'ERR_BYTES_TRUNCATED']).toContain((e as SmkiError).code);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('checkDerStructure: one well-formed TLV tree (X.690 10.1; depth limit)', () => {
  it('accepts a small certificate-like tree and returns the outer TLV', () => {
    // SEQUENCE { SEQUENCE { [0] { INTEGER 2 } INTEGER 1 } BIT STRING 00 }
    const bytes = h('30 0E 30 08 A0 03 020102 020101 03 02 0000');
    expect(checkDerStructure(bytes)).toEqual({ tag: 0x30, start: 0, valueStart: 2, end: 16 });
  });

  it('does not descend into primitive values (an OCTET STRING of junk is fine)', () => {
    expect(checkDerStructure(h('30 05 04 03 FF FF FF')).end).toBe(7);
  });

  it('accepts a primitive outer TLV', () => {
    expect(checkDerStructure(h('02 01 05')).tag).toBe(0x02);
  });

  it('trailing bytes → ERR_DER_TRAILING_DATA at the first extra byte', () => {
    expectSmkiError(() => checkDerStructure(h('30 00 00')), 'ERR_DER_TRAILING_DATA', { offset: 2 });
    expectSmkiError(() => checkDerStructure(h('02 01 05 02 01 05')), 'ERR_DER_TRAILING_DATA', { offset: 3 });
  });

  it('a constructed value that is not a sequence of TLVs → error', () => {
    // SEQUENCE whose content is one lone byte.
    expectSmkiError(() => checkDerStructure(h('30 01 05')), 'ERR_BYTES_TRUNCATED', { offset: 3 });
  });

  it('an inner length may not escape its parent', () => {
    // Outer SEQUENCE of 9 bytes; the inner SEQUENCE holds 3 of them: an OCTET STRING that claims
    // 5 bytes. Those bytes exist in the outer value but lie outside the inner one.
    expectSmkiError(() => checkDerStructure(h('30 09 30 03 04 05 00 0500 0500')), 'ERR_BYTES_TRUNCATED', {
      offset: 6,
      available: 1,
    });
  });

  it('indefinite length inside → ERR_DER_INVALID at its offset', () => {
    expectSmkiError(() => checkDerStructure(h('30 04 30 80 0000')), 'ERR_DER_INVALID', { offset: 3 });
  });

  it('non-minimal length inside → ERR_DER_INVALID', () => {
    expectSmkiError(() => checkDerStructure(h('30 04 04 81 01 00')), 'ERR_DER_INVALID', { offset: 3 });
  });

  it('high tag number inside → ERR_DER_INVALID', () => {
    expectSmkiError(() => checkDerStructure(h('30 03 9F 01 00')), 'ERR_DER_INVALID', { offset: 2 });
  });

  it(`nesting of exactly MAX_DER_DEPTH (${MAX_DER_DEPTH}) is accepted`, () => {
    expect(MAX_DER_DEPTH).toBe(32);
    expect(() => checkDerStructure(nested(MAX_DER_DEPTH, [0x05, 0x00]))).not.toThrow();
  });

  it('nesting of MAX_DER_DEPTH + 1 → ERR_DER_DEPTH_EXCEEDED with offset and maxDepth', () => {
    const bytes = nested(MAX_DER_DEPTH + 1);
    const e = expectSmkiError(() => checkDerStructure(bytes), 'ERR_DER_DEPTH_EXCEEDED', { maxDepth: MAX_DER_DEPTH });
    const offset = (e.context as { offset: number }).offset;
    expect(bytes[offset]).toBe(0x30);
  });

  it('a caller-given maxDepth is honoured', () => {
    expect(() => checkDerStructure(nested(3), 3)).not.toThrow();
    expectSmkiError(() => checkDerStructure(nested(4), 3), 'ERR_DER_DEPTH_EXCEEDED', { maxDepth: 3 });
    expectSmkiError(() => checkDerStructure(nested(2), 1), 'ERR_DER_DEPTH_EXCEEDED', { maxDepth: 1 });
  });

  it('deep nesting (10 000 levels) fails with a SmkiError, not a stack overflow', () => {
    const e = expectSmkiError(() => checkDerStructure(nested(10_000)), 'ERR_DER_DEPTH_EXCEEDED');
    expect(e).not.toBeInstanceOf(RangeError);
  });

  it('64 KiB of TLVs is checked in under 50 ms', () => {
    // A SEQUENCE holding 32 764 NULLs: the most TLVs that fit in 64 KiB.
    const inner = new Array(65_528).fill(0).map((_, i) => (i % 2 === 0 ? 0x05 : 0x00));
    const bytes = nested(1, inner);
    expect(bytes.length).toBeLessThanOrEqual(64 * 1024);
    checkDerStructure(bytes); // warm up
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      checkDerStructure(bytes);
      best = Math.min(best, performance.now() - t0);
    }
    expect(best).toBeLessThan(50);
  });

  it('never throws anything but SmkiError on random input (property)', () => {
    const codes = ['ERR_DER_INVALID', 'ERR_DER_DEPTH_EXCEEDED', 'ERR_DER_TRAILING_DATA', 'ERR_BYTES_TRUNCATED'];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 4 }), (bytes, depth) => {
        try {
          checkDerStructure(bytes, depth);
        } catch (e) {
          expect(e).toBeInstanceOf(SmkiError);
          expect(codes).toContain((e as SmkiError).code);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but SmkiError on mutated valid DER (property)', () => {
    const valid = h('30 0E 30 08 A0 03 020102 020101 03 02 0000');
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (i, b) => {
        const bytes = valid.slice();
        bytes[i] = b;
        try {
          checkDerStructure(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(SmkiError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
