// docs/domain.md §2 (Remote Party Role codes; organisation OU = exactly two upper-case hex digits);
// RFC 5280 4.2.1.3 (keyUsage bit order).
import { describe, expect, it } from 'vitest';
import {
  isRemotePartyRole,
  KEY_USAGE_NAMES,
  parseRoleLenient,
  RemotePartyRole,
  roleFromOu,
  roleName,
  roleToOu,
} from '@smki/core';
import { expectSmkiError } from './_helpers.js';

// docs/domain.md §2: 0 root, 1 recovery, 2 supplier, 3 network operator, 4 ACB, 5 transitional CoS,
// 6 WAN provider, 7 issuing authority, 8 load controller, 127 other; DUIS XML signing 135, 137.
const TABLE = [
  [0, 'Root', 'root', '00'],
  [1, 'Recovery', 'recovery', '01'],
  [2, 'Supplier', 'supplier', '02'],
  [3, 'NetworkOperator', 'networkOperator', '03'],
  [4, 'AccessControlBroker', 'accessControlBroker', '04'],
  [5, 'TransitionalChangeOfSupplier', 'transitionalChangeOfSupplier', '05'],
  [6, 'WanProvider', 'wanProvider', '06'],
  [7, 'IssuingAuthority', 'issuingAuthority', '07'],
  [8, 'LoadController', 'loadController', '08'],
  [127, 'Other', 'other', '7F'],
  [135, 'XmlSigning135', 'xmlSigning135', '87'],
  [137, 'XmlSigning137', 'xmlSigning137', '89'],
] as const;

describe('Remote Party Role codes (docs/domain.md §2)', () => {
  it('RemotePartyRole holds exactly the docs/domain.md §2 codes', () => {
    expect(Object.keys(RemotePartyRole)).toHaveLength(TABLE.length);
    for (const [code, key] of TABLE) expect(RemotePartyRole[key]).toBe(code);
  });

  it.each(TABLE)('code %i: name, OU spelling and round trip', (code, _key, name, ou) => {
    expect(isRemotePartyRole(code)).toBe(true);
    expect(roleName(code)).toBe(name);
    expect(roleToOu(code)).toBe(ou);
    expect(roleFromOu(ou)).toBe(code);
    expect(parseRoleLenient(ou)).toEqual({ role: code, canonical: true });
  });

  it.each([
    ['9', 9],
    ['10', 10],
    ['126', 126],
    ['128', 128],
    ['136', 136],
    ['255', 255],
    ['258 (0x102, whose low byte is 02)', 258],
    ['-1', -1],
    ['NaN', Number.NaN],
    ['1.5', 1.5],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('isRemotePartyRole rejects %s', (_name, code) => {
    expect(isRemotePartyRole(code)).toBe(false);
  });

  it.each([
    ['the string "2"', '2'],
    ['the string "02"', '02'],
    ['a bigint', 2n],
    ['null', null],
    ['undefined', undefined],
    ['an object', { valueOf: (): number => 2 }],
    ['an inherited property name', 'constructor'],
    ['a Number object', new Number(2)],
  ])('isRemotePartyRole rejects non-numbers: %s', (_name, code) => {
    expect(isRemotePartyRole(code)).toBe(false);
  });

  it.each([9, 10, 126, 128, 136, 138, 255, -1, 1.5, Number.NaN])('roleName(%d) throws ERR_ROLE_UNKNOWN', (code) => {
    expectSmkiError(() => roleName(code), 'ERR_ROLE_UNKNOWN', { role: code });
  });

  it.each([9, 16, 126, 128, 256, -2, 2.5])('roleToOu(%d) throws ERR_ROLE_UNKNOWN', (code) => {
    expectSmkiError(() => roleToOu(code), 'ERR_ROLE_UNKNOWN');
  });

  it('roleName rejects a numeric string rather than coercing it', () => {
    expectSmkiError(() => roleName('2' as unknown as number), 'ERR_ROLE_UNKNOWN');
  });
});

describe('roleFromOu: the profile spelling only (docs/domain.md §2: exactly two upper-case hex digits)', () => {
  it.each([
    ['one digit', '2'],
    ['three digits', '002'],
    ['decimal 127', '127'],
    ['lower-case hex', '7f'],
    ['mixed-case hex', '8a'],
    ['0x prefix', '0x02'],
    ['leading space', ' 02'],
    ['trailing space', '02 '],
    ['trailing newline', '02\n'],
    ['empty', ''],
    ['a known-format but unknown role 09', '09'],
    ['unknown role 10', '10'],
    ['unknown role FF', 'FF'],
    ['unknown role 7E', '7E'],
    ['non-hex', 'ZZ'],
    ['full-width digits', '\uff10\uff12'],
    ['a sign', '+2'],
    ['negative', '-1'],
  ])('rejects %s with ERR_ROLE_UNKNOWN', (_name, ou) => {
    expectSmkiError(() => roleFromOu(ou), 'ERR_ROLE_UNKNOWN', { role: ou });
  });
});

describe('parseRoleLenient: spellings seen in real certificates', () => {
  it.each([
    ['canonical 02', '02', { role: 2, canonical: true }],
    ['canonical 7F', '7F', { role: 127, canonical: true }],
    ['lower-case hex 7f', '7f', { role: 127, canonical: false }],
    ['canonical 89 (137)', '89', { role: 137, canonical: true }],
    ['decimal one digit', '2', { role: 2, canonical: false }],
    ['decimal 127', '127', { role: 127, canonical: false }],
    ['decimal 135', '135', { role: 135, canonical: false }],
    ['decimal 137', '137', { role: 137, canonical: false }],
    ['decimal with leading zero', '007', { role: 7, canonical: false }],
  ])('%s', (_name, ou, expected) => {
    expect(parseRoleLenient(ou)).toEqual(expected);
  });

  it.each([
    ['empty', ''],
    ['unknown hex and decimal 10', '10'],
    ['unknown 12', '12'],
    ['unknown 99', '99'],
    ['four digits', '0002'],
    ['0x prefix', '0x02'],
    ['spaces', ' 2 '],
    ['a word', 'supplier'],
    ['negative', '-2'],
    ['decimal 999', '999'],
    ['non-hex', 'G2'],
  ])('gives undefined for %s', (_name, ou) => {
    expect(parseRoleLenient(ou)).toBeUndefined();
  });
});

describe('KEY_USAGE_NAMES (RFC 5280 4.2.1.3)', () => {
  it('lists the nine keyUsage bits in bit order', () => {
    expect(KEY_USAGE_NAMES).toEqual([
      'digitalSignature',
      'nonRepudiation',
      'keyEncipherment',
      'dataEncipherment',
      'keyAgreement',
      'keyCertSign',
      'cRLSign',
      'encipherOnly',
      'decipherOnly',
    ]);
    expect(KEY_USAGE_NAMES.indexOf('digitalSignature')).toBe(0);
    expect(KEY_USAGE_NAMES.indexOf('keyAgreement')).toBe(4);
    expect(KEY_USAGE_NAMES.indexOf('keyCertSign')).toBe(5);
  });
});
