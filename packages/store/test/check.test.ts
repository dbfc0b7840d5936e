// The argument and stored-value checks every backend shares (docs/store.md "Inputs"), at their
// edges: each bound accepted at its value and refused one past it, each refusal naming the field,
// values that only look right when coerced (objects whose toString spells an EUI-64 or a UUID,
// one-element arrays) refused, and stored counts and counters read back only in their own form.
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import { checkEntries, countFrom, counterFromHex, eui64, int, quarantineId } from '../src/internal/check.js';

const USER = parseEui64('90B3D51F30010000');
const METER = parseEui64('00DB1234567890A0');
const OTHER = parseEui64('00DB1234567890A1');
const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

function refused(f: () => unknown, code: string, detail?: string): void {
  try {
    f();
  } catch (e) {
    expect(isSmkiError(e) && e.code).toBe(code);
    if (detail !== undefined) expect((e as { context: { detail?: string } }).context.detail).toBe(detail);
    return;
  }
  throw new Error('expected a refusal');
}

const counter = { originator: USER, device: METER, value: 7n };
const anomaly = { user: USER, messageCode: 0x00ab, windowMs: 60_000, windowStart: 0, limit: 3 };
const quarantine = { at: 1, user: USER, device: METER, messageCode: 0x00ab, counter: 7n, command: new Uint8Array(4) };
const entry = (extra: Record<string, unknown>) => checkEntries([{ counter, anomaly, quarantine, ...extra }]);

describe('argument checks', () => {
  it('an EUI-64 or a quarantine id is a string: an object that spells one is refused', () => {
    refused(() => eui64({ toString: () => USER }, 'x'), 'ERR_INVALID_ARGUMENT', 'x');
    refused(() => quarantineId({ toString: () => UUID }, 'y'), 'ERR_INVALID_ARGUMENT', 'y');
    expect(eui64(USER, 'x')).toBe(USER);
    expect(quarantineId(UUID, 'y')).toBe(UUID);
  });

  it('a quarantine id is exactly a UUID: nothing before or after it', () => {
    refused(() => quarantineId(`x${UUID}`, 'r'), 'ERR_INVALID_ARGUMENT');
    refused(() => quarantineId(`${UUID}x`, 'r'), 'ERR_INVALID_ARGUMENT');
  });

  it('an integer is a safe integer number within its bounds, both included', () => {
    expect(int(0, 'n', 0, 5)).toBe(0);
    expect(int(5, 'n', 0, 5)).toBe(5);
    for (const bad of [6, -1, 1.5, '3', 3n, Number.NaN]) refused(() => int(bad, 'n', 0, 5), 'ERR_INVALID_ARGUMENT', 'n');
  });

  it('the bounds of a commit: message code 0xFFFF, a 31-day window, limit 2^31 - 1, a 64 KiB command, 10,000 entries', () => {
    const windowMs = 31 * 24 * 3600 * 1000;
    expect(entry({ anomaly: { ...anomaly, messageCode: 0xffff }, quarantine: { ...quarantine, messageCode: 0xffff } })[0]?.anomaly?.messageCode).toBe(0xffff);
    expect(entry({ anomaly: { ...anomaly, windowMs } })[0]?.anomaly?.windowMs).toBe(windowMs);
    refused(() => entry({ anomaly: { ...anomaly, windowMs: windowMs + 1 } }), 'ERR_INVALID_ARGUMENT', 'entries[0].anomaly.windowMs');
    expect(entry({ anomaly: { ...anomaly, limit: 2 ** 31 - 1 } })[0]?.anomaly?.limit).toBe(2 ** 31 - 1);
    refused(() => entry({ anomaly: { ...anomaly, limit: 2 ** 31 } }), 'ERR_INVALID_ARGUMENT', 'entries[0].anomaly.limit');
    expect(entry({ quarantine: { ...quarantine, command: new Uint8Array(64 * 1024) } })[0]?.quarantine?.command).toHaveLength(64 * 1024);
    refused(() => entry({ quarantine: { ...quarantine, command: new Uint8Array(64 * 1024 + 1) } }), 'ERR_INVALID_ARGUMENT', 'entries[0].quarantine.command');
    const many = Array.from({ length: 10_000 }, (_, i) => ({ counter: { ...counter, value: BigInt(i) } }));
    expect(checkEntries(many)).toHaveLength(10_000);
    refused(() => checkEntries([...many, { counter }]), 'ERR_INVALID_ARGUMENT', 'entries');
  });

  it.each([
    ['anomaly.user', { anomaly: { ...anomaly, user: 'nope' } }],
    ['anomaly.windowStart', { anomaly: { ...anomaly, windowStart: -1 } }],
    ['quarantine.at', { quarantine: { ...quarantine, at: -1 } }],
    ['quarantine.user', { quarantine: { ...quarantine, user: 'nope' } }],
    ['quarantine.device', { quarantine: { ...quarantine, device: 'nope' } }],
    ['quarantine.messageCode', { quarantine: { ...quarantine, messageCode: 0x10000 } }],
    ['quarantine.counter', { quarantine: { ...quarantine, counter: -1n } }],
  ])('a bad %s is refused naming it', (field, extra) => {
    refused(() => entry(extra), 'ERR_INVALID_ARGUMENT', `entries[0].${field}`);
  });

  it("a quarantine record must be the entry's own command: another user, another device, another counter", () => {
    refused(() => entry({ quarantine: { ...quarantine, user: OTHER }, anomaly: { ...anomaly, user: OTHER } }), 'ERR_INVALID_ARGUMENT', 'entries[0].quarantine');
    refused(() => entry({ quarantine: { ...quarantine, device: OTHER } }), 'ERR_INVALID_ARGUMENT', 'entries[0].quarantine');
    refused(() => entry({ quarantine: { ...quarantine, counter: 8n } }), 'ERR_INVALID_ARGUMENT', 'entries[0].quarantine');
  });

  it('a checked entry holds exactly the fields given: no key for what was absent', () => {
    expect(Object.keys(checkEntries([{ counter }])[0] as object)).toEqual(['counter']);
    expect(Object.keys(entry({})[0] as object).sort()).toEqual(['anomaly', 'counter', 'quarantine']);
  });
});

describe('stored values read back', () => {
  it('a counter is exactly 16 upper-case hex digits', () => {
    expect(counterFromHex('00000000000000FF', 'c')).toBe(255n);
    for (const bad of ['0000000000000000F', 'X00000000000000FF', '00000000000000FFX', '00000000000000ff', 255n]) refused(() => counterFromHex(bad, 'c'), 'ERR_STORE_CORRUPT', 'c');
  });

  it('a count is a non-negative safe integer, given as a number, a bigint (PostgreSQL) or decimal text', () => {
    expect(countFrom(5, 'w')).toBe(5);
    expect(countFrom(5n, 'w')).toBe(5);
    expect(countFrom('12', 'w')).toBe(12);
    for (const bad of [null, true, [7], '12x', 'x12', '1234567890123456', -1, 1.5, '']) refused(() => countFrom(bad, 'w'), 'ERR_STORE_CORRUPT', 'w');
  });
});
