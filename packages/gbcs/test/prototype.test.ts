// Every gbcs lookup keyed by an outside string (CRA names, KDF modes, supply use cases, the message
// catalogue by code, DUIS roles, fuels) uses own properties or a Map: `__proto__`, `constructor`,
// `toString` and friends find nothing, and nothing is written to Object.prototype (CWE-1321;
// ECMA-262 §20.1.2.13 Object.hasOwn). GBCS 4.3 (general-signing APDU: CRA flag 1–3), SP 800-56A
// OtherInfo mode 1–4.
import { afterEach, describe, expect, it } from 'vitest';
import { SmkiError, type SmkiErrorCode } from '@smki/core';
import { classify, createCatalogue, duisRoleFor, duisRoleOnWire, isCritical, isEligible, lookupMessageCode, MESSAGE_CATALOGUE, type MessageCodeEntry } from '../src/catalogue.js';
import { buildMessage, buildGeneralSigning } from '../src/codec.js';
import { buildDisableSupply, buildSupplyCommand, encodeSupplyPayload } from '../src/commands.js';
import { otherInfo } from '../src/crypto.js';

const INHERITED = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__lookupGetter__'] as const;
const PRISTINE = Object.getOwnPropertyNames(Object.prototype).sort();

afterEach(() => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PRISTINE);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
});

function codeOf(f: () => unknown): SmkiErrorCode | 'returned' {
  try {
    f();
  } catch (e) {
    if (e instanceof SmkiError) return e.code;
    throw e;
  }
  return 'returned';
}

const FIELDS = { originatorCounter: 1n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x0050, payload: new Uint8Array([0xd9]) } as const;

describe('the CRA flag of a general-signing APDU', () => {
  it.each(INHERITED)('cra %s → ERR_GBCS_INVALID_FIELD (before: an inherited function became the CRA byte)', (name) => {
    expect(codeOf(() => buildGeneralSigning({ ...FIELDS, cra: name as never }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildMessage({ ...FIELDS, cra: name as never }))).toBe('ERR_GBCS_INVALID_FIELD');
  });

  it('a real CRA still builds', () => {
    expect(buildMessage({ ...FIELDS, cra: 'alert' })[0]).toBe(0xdf);
  });
});

describe('KDF modes and supply use cases', () => {
  it.each(INHERITED)('%s is no KDF mode and no supply use case', (name) => {
    expect(codeOf(() => otherInfo({ originator: FIELDS.originator, recipient: FIELDS.recipient, counter: 1n, mode: name as never }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => encodeSupplyPayload(name as never, 1n))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildSupplyCommand(name as never, { originator: FIELDS.originator, recipient: FIELDS.recipient, counter: 1n }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildDisableSupply({ fuel: name as never, originator: FIELDS.originator, recipient: FIELDS.recipient, counter: 1n }))).toBe('ERR_GBCS_INVALID_FIELD');
  });
});

describe('the message catalogue and DUIS roles', () => {
  const catalogue = createCatalogue();

  it.each(INHERITED)('message code %s: not in the catalogue, unknown, critical (fail closed), never eligible', (name) => {
    const code = name as unknown as number;
    expect(lookupMessageCode(code)).toBeUndefined();
    expect(MESSAGE_CATALOGUE.get(code)).toBeUndefined();
    expect(catalogue.lookup(code)).toBeUndefined();
    for (const c of [{ classify, isCritical, isEligible }, catalogue]) {
      expect(c.classify({ messageCode: code, originatorRole: 2 })).toBe('unknown');
      expect(c.isCritical({ messageCode: code, originatorRole: 4 })).toBe(true);
      expect(c.isEligible({ messageCode: code, originatorRole: 2, deviceFuel: 'electricity' })).toBe(false);
    }
  });

  it.each(INHERITED)('%s is no DUIS role, fuel or originator role', (name) => {
    expect(codeOf(() => duisRoleOnWire(name as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(duisRoleFor(2, name as never)).toBeUndefined();
    expect(duisRoleFor(name as never, 'gas')).toBeUndefined();
    expect(isEligible({ messageCode: 0x0050, originatorRole: 2, deviceFuel: name as never })).toBe(false);
    expect(classify({ messageCode: 0x0050, originatorRole: name as never })).toBe('unknown');
  });

  it('a query parsed from JSON with a __proto__ key is read by its own fields only', () => {
    const q = JSON.parse('{"__proto__": {"messageCode": 80, "originatorRole": 2, "deviceFuel": "electricity"}}') as never;
    expect(classify(q)).toBe('unknown');
    expect(isCritical(q)).toBe(true);
    expect(isEligible(q)).toBe(false);
  });

  it('catalogue entries from JSON: a __proto__ key neither pollutes nor passes for a field', () => {
    const entry = JSON.parse(
      '{"code": 1024, "useCase": "XR01", "name": "read", "duisService": "4.x", "deviceType": "any", "eligibleRoles": ["IS"], "critical": false, "acbOriginated": false, "__proto__": {"polluted": true}}',
    ) as MessageCodeEntry;
    const c = createCatalogue([entry]);
    expect(c.classify({ messageCode: 1024, originatorRole: 2 })).toBe('non-critical');
    const missing = JSON.parse('{"__proto__": {"code": 1025, "useCase": "x", "name": "x", "duisService": "x", "deviceType": "any", "eligibleRoles": [], "critical": false, "acbOriginated": false}}') as MessageCodeEntry;
    expect(codeOf(() => createCatalogue([missing]))).toBe('ERR_INVALID_ARGUMENT');
    const badRole = { ...entry, code: 1026, eligibleRoles: ['__proto__'] } as unknown as MessageCodeEntry;
    expect(codeOf(() => createCatalogue([badRole]))).toBe('ERR_INVALID_ARGUMENT');
    const badType = { ...entry, code: 1027, deviceType: 'constructor' } as unknown as MessageCodeEntry;
    expect(codeOf(() => createCatalogue([badType]))).toBe('ERR_INVALID_ARGUMENT');
  });
});
