// Lookups keyed by outside strings (error codes, Remote Party Roles, EUI-64 spellings, PEM labels)
// use own properties only: `__proto__`, `constructor`, `toString` and friends find nothing, and
// nothing is written to Object.prototype. (CWE-1321, prototype pollution; ECMA-262 §20.1.2.13
// Object.hasOwn.)
import { afterEach, describe, expect, it } from 'vitest';
import {
  describeCode,
  isRemotePartyRole,
  isSmkiError,
  parseEui64,
  parseRoleLenient,
  pemBlocks,
  roleFromOu,
  roleName,
  roleToOu,
  SmkiError,
  SMKI_ERROR_CODES,
  type SmkiErrorCode,
} from '@smki/core';
import { expectSmkiError } from './_helpers.js';

const INHERITED = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__'] as const;

function assertPrototypeClean(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PRISTINE);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
}
const PRISTINE = Object.getOwnPropertyNames(Object.prototype).sort();

afterEach(assertPrototypeClean);

describe('describeCode: only the toolkit\'s own codes have a message', () => {
  it.each(INHERITED)('%s → ERR_INVALID_ARGUMENT, not an inherited property', (name) => {
    // Before: SMKI_ERROR_CODES['toString'] is Object.prototype.toString, returned as the "message".
    expectSmkiError(() => describeCode(name as SmkiErrorCode), 'ERR_INVALID_ARGUMENT');
  });

  it('a real code still has its message', () => {
    expect(describeCode('ERR_PEM_INVALID')).toBe(SMKI_ERROR_CODES.ERR_PEM_INVALID);
    expectSmkiError(() => describeCode(7 as unknown as SmkiErrorCode), 'ERR_INVALID_ARGUMENT');
  });

  it.each(INHERITED)('isSmkiError(e, %s) is false for every real error', (name) => {
    expect(isSmkiError(new SmkiError('ERR_PEM_INVALID', 'x', {}), name as SmkiErrorCode)).toBe(false);
  });
});

describe('Remote Party Role tables', () => {
  it.each(INHERITED)('%s is no role in any spelling', (name) => {
    expect(isRemotePartyRole(name)).toBe(false);
    expectSmkiError(() => roleName(name as unknown as number), 'ERR_ROLE_UNKNOWN');
    expectSmkiError(() => roleToOu(name as unknown as number), 'ERR_ROLE_UNKNOWN');
    expectSmkiError(() => roleFromOu(name), 'ERR_ROLE_UNKNOWN');
    expect(parseRoleLenient(name)).toBeUndefined();
  });
});

describe('EUI-64 and PEM labels', () => {
  it.each(INHERITED)('%s is no EUI-64 and no PEM label', (name) => {
    expectSmkiError(() => parseEui64(name), 'ERR_EUI64_INVALID');
    const text = `-----BEGIN ${name}-----\nAAAA\n-----END ${name}-----\n`;
    // Not a label the reader takes (lower case, underscores): refused, never looked up.
    expectSmkiError(() => pemBlocks(text), 'ERR_PEM_INVALID');
    expect(pemBlocks('-----BEGIN A-----\nAAAA\n-----END A-----\n', [name])).toEqual([]);
  });
});

describe('objects parsed from JSON with a __proto__ key', () => {
  it('are read as data and change no prototype', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as Record<string, unknown>;
    expect(isRemotePartyRole(hostile)).toBe(false);
    expectSmkiError(() => describeCode(hostile as unknown as SmkiErrorCode), 'ERR_INVALID_ARGUMENT');
    expectSmkiError(() => parseEui64(hostile as unknown as string), 'ERR_EUI64_INVALID');
    const e = new SmkiError('ERR_INVALID_ARGUMENT', 'x', hostile as never);
    expect(Object.getPrototypeOf(e.context)).toBe(Object.prototype);
  });
});
