// docs/domain.md §2 (x500UniqueIdentifier and hwSerialNum carry an 8-octet EUI-64 entity id);
// docs/conventions.md, Inputs: one parser accepts the usual spellings and rejects everything else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eui64FromBytes, eui64ToBytes, isEui64, parseEui64, SmkiError } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { expectSmkiError, h } from './_helpers.js';

const CANONICAL = '00DB1234567890A0';

describe('parseEui64 accepts the usual spellings (docs/domain.md §2)', () => {
  it.each([
    ['compact upper case', '00DB1234567890A0'],
    ['compact lower case', '00db1234567890a0'],
    ['compact mixed case', '00Db1234567890a0'],
    ['hyphens', '00-DB-12-34-56-78-90-A0'],
    ['hyphens, lower case', '00-db-12-34-56-78-90-a0'],
    ['colons', '00:DB:12:34:56:78:90:A0'],
    ['single spaces', '00 DB 12 34 56 78 90 A0'],
  ])('%s: %s', (_name, input) => {
    expect(parseEui64(input)).toBe(CANONICAL);
    expect(isEui64(input)).toBe(true);
  });

  it('returns the canonical form, which parses to itself', () => {
    const e = parseEui64('ff-ff-ff-ff-ff-ff-ff-ff');
    expect(e).toBe('FFFFFFFFFFFFFFFF');
    expect(parseEui64(e)).toBe(e);
  });

  it('accepts all-zero and all-one identifiers', () => {
    expect(parseEui64('0000000000000000')).toBe('0000000000000000');
    expect(parseEui64('FFFFFFFFFFFFFFFF')).toBe('FFFFFFFFFFFFFFFF');
  });
});

describe('parseEui64 rejects every other spelling with ERR_EUI64_INVALID (docs/domain.md §2)', () => {
  it.each([
    ['empty', ''],
    ['15 digits', '00DB1234567890A'],
    ['17 digits', '00DB1234567890A01'],
    ['32 digits', '00DB1234567890A000DB1234567890A0'],
    ['0x prefix', '0x00DB1234567890A0'],
    ['0X prefix', '0X00DB1234567890A0'],
    ['0x prefix, 14 digits', '0xDB1234567890A0'],
    ['leading space', ' 00DB1234567890A0'],
    ['trailing space', '00DB1234567890A0 '],
    ['trailing newline', '00DB1234567890A0\n'],
    ['leading tab', '\t00DB1234567890A0'],
    ['non-breaking space inside', '00\u00a0DB\u00a012\u00a034\u00a056\u00a078\u00a090\u00a0A0'],
    ['mixed separators - and :', '00-DB:12-34-56-78-90-A0'],
    ['mixed separators - and space', '00-DB-12-34 56-78-90-A0'],
    ['mixed separators : and space', '00:DB:12:34:56:78:90 A0'],
    ['double spaces', '00  DB  12  34  56  78  90  A0'],
    ['tabs', '00\tDB\t12\t34\t56\t78\t90\tA0'],
    ['dots', '00.DB.12.34.56.78.90.A0'],
    ['underscores', '00_DB_12_34_56_78_90_A0'],
    ['trailing separator', '00-DB-12-34-56-78-90-A0-'],
    ['leading separator', '-00-DB-12-34-56-78-90-A0'],
    ['groups of four', '00DB-1234-5678-90A0'],
    ['Cisco dotted quads', '00DB.1234.5678.90A0'],
    ['one group of one digit', '0-DB-12-34-56-78-90-A0'],
    ['seven groups', '00-DB-12-34-56-78-90'],
    ['nine groups', '00-DB-12-34-56-78-90-A0-00'],
    ['partly separated', '00-DB-12-34567890A0'],
    ['non-hex letter G', '00DB1234567890G0'],
    ['non-hex letter in separated form', '00-DB-12-34-56-78-90-AZ'],
    ['full-width digits', '\uff10\uff10DB1234567890A0'],
    ['Arabic-Indic digits', '\u0660\u0660DB1234567890A0'],
    ['minus sign', '-0DB1234567890A0'],
    ['plus sign', '+0DB1234567890A0'],
    ['decimal number text', '61810436113653920'],
    ['braces', '{00DB1234567890A0}'],
    ['a 48-bit MAC address', '00-DB-12-34-56-78'],
    ['quoted', '"00DB1234567890A0"'],
    ['very long input', 'A'.repeat(100_000)],
  ])('%s', (_name, input) => {
    const e = expectSmkiError(() => parseEui64(input), 'ERR_EUI64_INVALID');
    expect(isEui64(input)).toBe(false);
    // The context shows (at most 64 characters of) what was given, for the caller's log.
    const ctx = e.context as { input: string };
    expect(typeof ctx.input).toBe('string');
    expect(ctx.input.length).toBeLessThanOrEqual(64);
  });

  it.each([
    ['a number', 0x00db1234567890a0],
    ['a bigint', 0x00db1234567890a0n],
    ['null', null],
    ['undefined', undefined],
    ['an object', { toString: () => CANONICAL }],
    ['a String object', new String(CANONICAL)],
    ['an array of bytes', [0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0]],
    ['a Uint8Array', h(CANONICAL)],
    ['a boolean', true],
    ['a symbol', Symbol('eui')],
  ])('non-string input: %s', (_name, input) => {
    const e = expectSmkiError(() => parseEui64(input as unknown as string), 'ERR_EUI64_INVALID');
    // The input is described by its type, never coerced (no toString() call).
    expect((e.context as { input: string }).input).toBe(typeof input);
    expect(isEui64(input)).toBe(false);
  });

  it('does not call toString() on an object input', () => {
    let called = false;
    const sneaky = {
      toString() {
        called = true;
        return CANONICAL;
      },
    };
    expect(() => parseEui64(sneaky as unknown as string)).toThrow(SmkiError);
    expect(called).toBe(false);
  });

  it('rejects 64 KiB inputs, even ones that start with a valid spelling, and echoes at most 64 characters (bounded parse)', () => {
    // Refused by length before any pattern runs. How fast is for benchmarks, not for this test.
    for (const big of ['00-'.repeat(22_000), `${CANONICAL}${' '.repeat(65_536)}`, CANONICAL.repeat(4096)]) {
      expect(isEui64(big)).toBe(false);
      const e = expectSmkiError(() => parseEui64(big), 'ERR_EUI64_INVALID');
      expect((e.context as { input: string }).input.length).toBeLessThanOrEqual(64);
    }
  });
});

describe('eui64FromBytes / eui64ToBytes (docs/domain.md §2: 8-octet hwSerialNum, x500UniqueIdentifier)', () => {
  it('reads 8 bytes as upper-case hex', () => {
    expect(eui64FromBytes(h(CANONICAL))).toBe(CANONICAL);
  });

  it('respects the byteOffset of a view', () => {
    const backing = h('FFFF' + CANONICAL + 'EEEE');
    expect(eui64FromBytes(backing.subarray(2, 10))).toBe(CANONICAL);
  });

  it('round-trips through eui64ToBytes', () => {
    const e = parseEui64(CANONICAL);
    const bytes = eui64ToBytes(e);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Array.from(bytes)).toEqual(Array.from(h(CANONICAL)));
    expect(eui64FromBytes(bytes)).toBe(e);
  });

  it.each([
    ['0 bytes', new Uint8Array(0)],
    ['7 bytes', new Uint8Array(7)],
    ['9 bytes', new Uint8Array(9)],
    ['16 bytes', new Uint8Array(16)],
  ])('rejects %s with ERR_EUI64_INVALID', (_name, bytes) => {
    expectSmkiError(() => eui64FromBytes(bytes), 'ERR_EUI64_INVALID');
  });

  it.each([
    ['a plain array', [0, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0]],
    ['a hex string', CANONICAL],
    ['an ArrayBuffer', new ArrayBuffer(8)],
    ['null', null],
    ['undefined', undefined],
  ])('rejects non-Uint8Array input (%s) with ERR_EUI64_INVALID, not a TypeError', (_name, input) => {
    expectSmkiError(() => eui64FromBytes(input as unknown as Uint8Array), 'ERR_EUI64_INVALID');
  });

  it('eui64ToBytes re-checks a value that was cast, not parsed', () => {
    expectSmkiError(() => eui64ToBytes('not-an-eui' as Eui64), 'ERR_EUI64_INVALID');
  });
});

describe('EUI-64 bytes ⇄ text (property)', () => {
  it('eui64FromBytes is the upper-case hex of the 8 bytes, and eui64ToBytes gives them back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.nat(8), (bytes, offset) => {
        // Also from a view into a larger buffer.
        const big = new Uint8Array(offset + 16);
        big.set(bytes, offset);
        const view = big.subarray(offset, offset + 8);
        const eui = eui64FromBytes(view);
        expect(eui).toBe(Buffer.from(bytes).toString('hex').toUpperCase());
        expect(eui64ToBytes(eui)).toEqual(bytes);
        expect(eui64ToBytes(eui.toLowerCase() as Eui64)).toEqual(bytes);
      }),
      { numRuns: 500, seed: 64 },
    );
  });
});
