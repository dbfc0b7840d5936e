// docs/conventions.md, Inputs: identifiers are canonical upper-case hex; every parse of outside bytes is
// bounded and a read past the end is a SmkiError ERR_BYTES_TRUNCATED with the offset, never a
// RangeError. RFC 4648 §4 (base64 alphabet and padding).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ByteReader,
  concatBytes,
  constantTimeEqual,
  equalBytes,
  fromBase64,
  fromHex,
  SmkiError,
  toBase64,
  toHex,
} from '@smki/core';
import { expectSmkiError, h } from './_helpers.js';

describe('toHex / fromHex', () => {
  it('toHex is upper case', () => {
    expect(toHex(h('00ab10ff'))).toBe('00AB10FF');
    expect(toHex(new Uint8Array(0))).toBe('');
  });

  it('toHex reads only the view, not the whole backing buffer', () => {
    const backing = h('AABBCCDDEE');
    expect(toHex(backing.subarray(1, 3))).toBe('BBCC');
  });

  it('fromHex accepts either case and the empty string', () => {
    expect(Array.from(fromHex('00aBfF'))).toEqual([0x00, 0xab, 0xff]);
    expect(fromHex('')).toHaveLength(0);
  });

  it('fromHex returns a plain Uint8Array, not a Buffer', () => {
    const b = fromHex('0102');
    expect(b).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(b)).toBe(false);
  });

  it('round-trips random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        expect(Array.from(fromHex(toHex(bytes)))).toEqual(Array.from(bytes));
      }),
    );
  });

  // Buffer.from(s, 'hex') silently stops at the first bad character; fromHex must not.
  it.each([
    ['odd length', 'ABC'],
    ['one digit', 'A'],
    ['0x prefix', '0x00'],
    ['spaces between bytes', '00 01'],
    ['leading space', ' 0001'],
    ['trailing newline', '0001\n'],
    ['colons', '00:01'],
    ['hyphens', '00-01'],
    ['non-hex letter after valid bytes', '0001zz'],
    ['non-hex letter first', 'zz0001'],
    ['full-width digits', '\uff10\uff11'],
    ['a sign', '+1'],
  ])('fromHex rejects %s with ERR_HEX_INVALID', (_name, input) => {
    expectSmkiError(() => fromHex(input), 'ERR_HEX_INVALID');
  });

  it.each([
    ['a number', 1],
    ['null', null],
    ['undefined', undefined],
    ['a Uint8Array', new Uint8Array(2)],
    ['an array', ['00']],
  ])('fromHex rejects a non-string (%s) with ERR_HEX_INVALID', (_name, input) => {
    expectSmkiError(() => fromHex(input as unknown as string), 'ERR_HEX_INVALID');
  });
});

describe('toBase64 / fromBase64 (RFC 4648 §4)', () => {
  it('toBase64 is standard base64 with padding', () => {
    expect(toBase64(h('fbff'))).toBe('+/8=');
    expect(toBase64(h('00'))).toBe('AA==');
    expect(toBase64(new Uint8Array(0))).toBe('');
  });

  it('toBase64 reads only the view', () => {
    expect(toBase64(h('00fbff00').subarray(1, 3))).toBe('+/8=');
  });

  it.each([
    ['padded', 'AAEC', [0, 1, 2]],
    ['one pad', 'AAE=', [0, 1]],
    ['two pads', 'AA==', [0]],
    ['unpadded', 'AA', [0]],
    ['line-wrapped (PEM body)', 'AA\nEC\r\nAw==', [0, 1, 2, 3]],
    ['empty', '', []],
    ['+ and /', '+/8=', [0xfb, 0xff]],
  ])('fromBase64 accepts %s', (_name, input, expected) => {
    expect(Array.from(fromBase64(input))).toEqual(expected);
  });

  it('round-trips random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        expect(Array.from(fromBase64(toBase64(bytes)))).toEqual(Array.from(bytes));
      }),
    );
  });

  it.each([
    ['base64url -', 'AA-_'],
    ['base64url _', '__8='],
    ['padding in the middle', 'AA==AA=='],
    ['three pads', 'A==='],
    ['a length of 1 mod 4', 'A'],
    ['a length of 5', 'AAAAA'],
    ['1 mod 4 once padding is dropped', 'AAAAA==='],
    ['percent sign', 'AA%3D'],
    ['a dot', 'AA.A'],
    ['a data: URL', 'data:;base64,AA=='],
    ['non-ASCII letters', '\u00c0AAA'],
    ['a PEM armour line', '-----BEGIN CERTIFICATE-----'],
  ])('fromBase64 rejects %s with ERR_BASE64_INVALID', (_name, input) => {
    expectSmkiError(() => fromBase64(input), 'ERR_BASE64_INVALID');
  });

  it('fromBase64 rejects padding with no data ("=") with ERR_BASE64_INVALID', () => {
    expectSmkiError(() => fromBase64('='), 'ERR_BASE64_INVALID');
  });

  it.each([
    ['a number', 0],
    ['null', null],
    ['a Uint8Array', new Uint8Array(3)],
  ])('fromBase64 rejects a non-string (%s) with ERR_BASE64_INVALID', (_name, input) => {
    expectSmkiError(() => fromBase64(input as unknown as string), 'ERR_BASE64_INVALID');
  });
});

describe('concatBytes / equalBytes / constantTimeEqual', () => {
  it('concatBytes joins views in order', () => {
    const a = h('0102030405').subarray(1, 3);
    expect(Array.from(concatBytes(a, h(''), h('ff')))).toEqual([2, 3, 0xff]);
    expect(concatBytes()).toHaveLength(0);
  });

  it('equalBytes compares contents', () => {
    expect(equalBytes(h('0102'), h('0102'))).toBe(true);
    expect(equalBytes(h(''), h(''))).toBe(true);
    expect(equalBytes(h('0102'), h('0103'))).toBe(false);
    expect(equalBytes(h('0102'), h('010200'))).toBe(false);
    expect(equalBytes(h('010200'), h('0102'))).toBe(false);
  });

  it('constantTimeEqual compares contents and never throws on a length mismatch', () => {
    expect(constantTimeEqual(h('0102'), h('0102'))).toBe(true);
    expect(constantTimeEqual(h('0102'), h('0103'))).toBe(false);
    expect(constantTimeEqual(h('0102'), h('01'))).toBe(false);
    expect(constantTimeEqual(h(''), h('00'))).toBe(false);
  });
});

describe('ByteReader: bounded reads (docs/conventions.md, Inputs)', () => {
  it('reads big-endian integers and advances', () => {
    const r = new ByteReader(h('01 0203 04050607 FFFFFFFF 0102030405060708 AA'));
    expect(r.u8()).toBe(1);
    expect(r.u16()).toBe(0x0203);
    expect(r.u32()).toBe(0x04050607);
    expect(r.u32()).toBe(0xffffffff); // unsigned, not -1
    expect(r.u64()).toBe(0x0102030405060708n);
    expect(r.peekU8()).toBe(0xaa);
    expect(r.offset).toBe(19);
    expect(r.remaining).toBe(1);
    expect(r.done).toBe(false);
    r.skip(1);
    expect(r.done).toBe(true);
    expect(r.remaining).toBe(0);
  });

  it('u64 reads the full unsigned 64-bit range', () => {
    expect(new ByteReader(h('FFFFFFFFFFFFFFFF')).u64()).toBe(0xffffffffffffffffn);
  });

  it('bytesView returns a view of exactly n bytes', () => {
    const bytes = h('00112233');
    const r = new ByteReader(bytes);
    r.u8();
    const v = r.bytesView(2);
    expect(Array.from(v)).toEqual([0x11, 0x22]);
    expect(v.buffer).toBe(bytes.buffer);
    expect(r.offset).toBe(3);
    expect(r.bytesView(0)).toHaveLength(0);
  });

  it('honours a start/end window inside a larger buffer', () => {
    const r = new ByteReader(h('AA BB CC DD'), 1, 3);
    expect(r.remaining).toBe(2);
    expect(r.u16()).toBe(0xbbcc);
    const e = expectSmkiError(() => r.u8(), 'ERR_BYTES_TRUNCATED', { offset: 3, needed: 1, available: 0 });
    expect(e).not.toBeInstanceOf(RangeError);
  });

  const truncations: Array<[string, string, (r: ByteReader) => unknown, number]> = [
    ['u8 on empty input', '', (r) => r.u8(), 1],
    ['peekU8 on empty input', '', (r) => r.peekU8(), 1],
    ['u16 with 1 byte', '01', (r) => r.u16(), 2],
    ['u32 with 3 bytes', '010203', (r) => r.u32(), 4],
    ['u64 with 3 bytes', '010203', (r) => r.u64(), 8],
    ['bytesView(5) with 4 bytes', '01020304', (r) => r.bytesView(5), 5],
    ['skip(2) with 1 byte', '01', (r) => r.skip(2), 2],
    ['bytesView(2**32)', '01', (r) => r.bytesView(2 ** 32), 2 ** 32],
    ['bytesView(MAX_SAFE_INTEGER)', '01', (r) => r.bytesView(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
  ];
  it.each(truncations)('%s throws ERR_BYTES_TRUNCATED with offset, needed, available', (_name, hex, read, needed) => {
    const bytes = h(hex);
    const r = new ByteReader(bytes);
    expectSmkiError(() => read(r), 'ERR_BYTES_TRUNCATED', { offset: 0, needed, available: bytes.length });
    expect(r.offset).toBe(0); // nothing consumed by a failed read
  });

  it('reports the offset where the read failed, not the start of the input', () => {
    const r = new ByteReader(h('0102030405'));
    r.u32();
    expectSmkiError(() => r.u16('counter'), 'ERR_BYTES_TRUNCATED', { offset: 4, needed: 2, available: 1 });
  });

  it('names the field in the message', () => {
    const r = new ByteReader(new Uint8Array(0));
    const e = expectSmkiError(() => r.u8('frame type'), 'ERR_BYTES_TRUNCATED');
    expect(e.message).toContain('frame type');
  });

  it('u64 with 4 to 7 bytes left is still ERR_BYTES_TRUNCATED and does not move the offset', () => {
    const r = new ByteReader(h('01020304050607'));
    expectSmkiError(() => r.u64(), 'ERR_BYTES_TRUNCATED');
    expect(r.offset).toBe(0);
  });

  it.each([
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('bytesView(%s) throws ERR_INVALID_ARGUMENT', (_name, n) => {
    const r = new ByteReader(h('0102'));
    expectSmkiError(() => r.bytesView(n), 'ERR_INVALID_ARGUMENT');
    expectSmkiError(() => r.skip(n), 'ERR_INVALID_ARGUMENT');
    expect(r.offset).toBe(0);
  });

  it.each([
    ['a plain array', [1, 2, 3]],
    ['an ArrayBuffer', new ArrayBuffer(3)],
    ['a string', '010203'],
    ['a DataView', new DataView(new ArrayBuffer(3))],
  ])('the constructor rejects %s with ERR_INVALID_ARGUMENT', (_name, input) => {
    expectSmkiError(() => new ByteReader(input as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
  });

  it('the constructor rejects null/undefined with explicit bounds (ERR_INVALID_ARGUMENT)', () => {
    expectSmkiError(() => new ByteReader(null as unknown as Uint8Array, 0, 0), 'ERR_INVALID_ARGUMENT');
    expectSmkiError(() => new ByteReader(undefined as unknown as Uint8Array, 0, 0), 'ERR_INVALID_ARGUMENT');
  });

  it('the constructor rejects null without bounds with ERR_INVALID_ARGUMENT, not a TypeError', () => {
    expectSmkiError(() => new ByteReader(null as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
  });

  it.each([
    ['start < 0', -1, 3],
    ['end > length', 0, 4],
    ['start > end', 2, 1],
    ['start > length', 4, 4],
    ['fractional start', 0.5, 3],
    ['NaN end', 0, Number.NaN],
  ])('the constructor rejects bounds with %s (ERR_INVALID_ARGUMENT)', (_name, start, end) => {
    expectSmkiError(() => new ByteReader(h('010203'), start, end), 'ERR_INVALID_ARGUMENT');
  });

  it('accepts a Buffer (a Uint8Array subclass)', () => {
    expect(new ByteReader(Buffer.from([7])).u8()).toBe(7);
  });

  it('never throws anything but SmkiError for any sequence of reads (property)', () => {
    type Op = { op: 'u8' | 'u16' | 'u32' | 'u64' | 'peekU8' } | { op: 'bytesView' | 'skip'; n: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constantFrom<Op>({ op: 'u8' }, { op: 'u16' }, { op: 'u32' }, { op: 'u64' }, { op: 'peekU8' }),
      fc.record({
        op: fc.constantFrom<'bytesView' | 'skip'>('bytesView', 'skip'),
        n: fc.oneof(fc.integer({ min: -4, max: 40 }), fc.constantFrom(2 ** 31, 2 ** 53, Number.NaN)),
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 32 }), fc.nat(32), fc.array(op, { maxLength: 20 }), (bytes, s, ops) => {
        const start = Math.min(s, bytes.length);
        const r = new ByteReader(bytes, start);
        for (const o of ops) {
          try {
            if (o.op === 'bytesView' || o.op === 'skip') r[o.op](o.n);
            else r[o.op]();
          } catch (e) {
            expect(e).toBeInstanceOf(SmkiError);
            expect(['ERR_BYTES_TRUNCATED', 'ERR_INVALID_ARGUMENT']).toContain((e as SmkiError).code);
          }
          expect(r.offset).toBeGreaterThanOrEqual(start);
          expect(r.offset).toBeLessThanOrEqual(r.end);
        }
      }),
      { numRuns: 500 },
    );
  });
});
