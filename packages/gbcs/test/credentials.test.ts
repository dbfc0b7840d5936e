// docs/domain.md §9 (CS02b Update Security Credentials: payload, modes and who signs, response,
// alert 0x00CB; CS02c / CS02d / CS02e) and §10 (the rules the toolkit applies when it builds and
// reads them). Real certificates from @smki/pki; every negative case breaks exactly one rule.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, fromHex, isSmkiError, toHex, type Eui64 } from '@smki/core';
import { createCsr, createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, type SmkiCertificate, type SmkiHierarchy } from '@smki/pki';
import {
  buildGeneralSigning,
  buildIssueCredentials,
  buildProvideDeviceCertificate,
  buildUpdateDeviceCertificate,
  buildUpdateSecurityCredentials,
  checkUpdateSecurityCredentials,
  CREDENTIALS_ALERT_CODES,
  CREDENTIALS_MODES,
  CREDENTIALS_STATUS,
  decodeCredentialsAlert,
  decodeIssueCredentials,
  decodeIssueCredentialsResponse,
  decodeProvideDeviceCertificate,
  decodeProvideDeviceCertificateResponse,
  decodeUpdateDeviceCertificate,
  decodeUpdateDeviceCertificateResponse,
  decodeUpdateSecurityCredentials,
  decodeUpdateSecurityCredentialsCommand,
  decodeUpdateSecurityCredentialsResponse,
  encodeCredentialsAlert,
  encodeIssueCredentialsResponse,
  encodeProvideDeviceCertificateResponse,
  encodeUpdateDeviceCertificateResponse,
  encodeUpdateSecurityCredentialsPayload,
  encodeUpdateSecurityCredentialsResponse,
  ISSUE_CREDENTIALS_ERRORS,
  PROVIDE_DEVICE_CERTIFICATE_ERRORS,
  parseMessage,
  signPreCommand,
  UPDATE_DEVICE_CERTIFICATE_STATUS,
  type CredentialsAlert,
  type CredentialsExecutionOutcome,
  type TrustAnchorCell,
  type UpdateSecurityCredentialsOptions,
  type UpdateSecurityCredentialsPayload,
} from '../src/index.js';

const SUPPLIER = '90B3D51F30010000';
const NETWORK = '90B3D51F30020000';
const ACB = '90B3D51F30000004';
const WAN = '90B3D51F30060000';
const TRANS_COS = '90B3D51F30050000';
const RECOVERY = '90B3D51F30000001';
const METER = '00DB1234567890A0';
const OTHER_METER = '00DB1234567890A1';

const DS = (role: number): TrustAnchorCell => ({ role, keyUsage: 'digitalSignature', cellUsage: 'management' });
const KA = (role: number): TrustAnchorCell => ({ role, keyUsage: 'keyAgreement', cellUsage: 'management' });
const PREPAY: TrustAnchorCell = { role: 2, keyUsage: 'keyAgreement', cellUsage: 'prepayment' };

/** A DER TLV from hex parts (short lengths only): for hand-made inputs whose lengths must be right. */
function T(tag: number, ...parts: string[]): string {
  const v = parts.join('');
  if (v.length / 2 > 0x7f) throw new Error('T: short lengths only');
  return tag.toString(16).padStart(2, '0').toUpperCase() + (v.length / 2).toString(16).padStart(2, '0').toUpperCase() + v;
}

/** The code of what `f` throws (`undefined` when it does not throw); anything but a SmkiError is rethrown. */
function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
}
function offsetOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    if (isSmkiError(e)) return (e.context as { offset?: number }).offset;
    throw e;
  }
  return undefined;
}

let h: SmkiHierarchy;
const certs: Record<string, SmkiCertificate> = {};
let signerKeys: Record<string, KeyObject> = {};
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function org(name: string, role: number, entityId: string, keyUsage: 'digitalSignature' | 'keyAgreement'): Promise<void> {
  const k = p256();
  signerKeys[name] = k.privateKey;
  certs[name] = await issueOrganisationCertificate({ issuer: h.organisationCa, role, entityId, keyUsage, publicKey: k.publicKey });
}

beforeAll(async () => {
  h = await createHierarchy();
  signerKeys = {};
  await org('supplierDs', 2, SUPPLIER, 'digitalSignature');
  await org('supplierKa', 2, SUPPLIER, 'keyAgreement');
  await org('supplierPrepayKa', 2, SUPPLIER, 'keyAgreement');
  await org('supplierDs2', 2, '90B3D51F30010001', 'digitalSignature');
  await org('networkDs', 3, NETWORK, 'digitalSignature');
  await org('networkKa', 3, NETWORK, 'keyAgreement');
  await org('acbDs', 4, ACB, 'digitalSignature');
  await org('acbKa', 4, ACB, 'keyAgreement');
  await org('transCosDs', 5, TRANS_COS, 'digitalSignature');
  await org('transCosKa', 5, TRANS_COS, 'keyAgreement');
  await org('wanDs', 6, WAN, 'digitalSignature');
  await org('wanKa', 6, WAN, 'keyAgreement');
  await org('recoveryDs', 1, RECOVERY, 'digitalSignature');
  certs.meterDs = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: METER, keyUsage: 'digitalSignature', publicKey: p256().publicKey });
  certs.meterKa = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: METER, keyUsage: 'keyAgreement', publicKey: p256().publicKey });
  certs.otherMeterKa = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: OTHER_METER, keyUsage: 'keyAgreement', publicKey: p256().publicKey });
}, 60_000);

const c = (name: string) => certs[name] as SmkiCertificate;

/** A valid command of each mode 2–8 (docs/domain.md §9 "modes and who signs"). */
function modeOptions(mode: number, counter = 5000n): UpdateSecurityCredentialsOptions {
  const base = { recipient: METER, counter, certificationPath: [h.organisationCa.certificate.der] };
  switch (mode) {
    case 2:
      return {
        ...base, mode, originator: SUPPLIER, authorisingCell: DS(2),
        replacements: [{ certificate: c('supplierDs2').der, cell: DS(2) }, { certificate: c('supplierKa').der, cell: KA(2) }, { certificate: c('supplierPrepayKa').der, cell: PREPAY }],
        authorisingFloor: 0n, authorisingUsageFloors: [{ usage: 0, floor: 0n }],
      };
    case 3:
      return { ...base, mode, originator: NETWORK, authorisingCell: DS(3), replacements: [{ certificate: c('networkKa').der, cell: KA(3) }] };
    case 4:
      return { ...base, mode, originator: ACB, replacements: [{ certificate: c('acbKa').der, cell: KA(4) }] };
    case 5:
      return { ...base, mode, originator: WAN, authorisingCell: DS(6), replacements: [{ certificate: c('wanDs').der, cell: DS(6) }] };
    case 6:
      return { ...base, mode, originator: TRANS_COS, authorisingCell: DS(5), replacements: [{ certificate: c('transCosKa').der, cell: KA(5) }] };
    case 7:
      return {
        ...base, mode, originator: TRANS_COS, authorisingCell: DS(5),
        replacements: [{ certificate: c('supplierDs').der, cell: DS(2) }, { certificate: c('supplierKa').der, cell: KA(2) }],
        otherRoleFloors: [{ role: 2, floor: 0n }],
      };
    case 8:
      return {
        ...base, mode, originator: RECOVERY, authorisingCell: DS(1),
        replacements: [{ certificate: c('supplierDs2').der, cell: DS(2) }, { certificate: c('networkDs').der, cell: DS(3) }, { certificate: c('wanKa').der, cell: KA(6) }],
        otherRoleFloors: [2, 3, 4, 5].map((role) => ({ role, floor: 0n, usageFloors: role === 2 ? [{ usage: 0, floor: 0n }] : [] })),
      };
    default:
      throw new Error(`no sample for mode ${mode}`);
  }
}

/** What the decoder must give back for the options (the builder's defaults applied). */
function expected(o: UpdateSecurityCredentialsOptions): UpdateSecurityCredentialsPayload {
  return {
    mode: o.mode,
    ...(o.symmetricKey !== undefined ? { symmetricKey: o.symmetricKey } : {}),
    ...(o.disapplyTimeChecks !== undefined ? { disapplyTimeChecks: o.disapplyTimeChecks } : o.executionTime === undefined ? { disapplyTimeChecks: true } : {}),
    ...(o.authorisingCell !== undefined ? { authorisingCell: o.authorisingCell } : {}),
    sequenceNumber: o.counter,
    ...(o.authorisingFloor !== undefined ? { authorisingFloor: o.authorisingFloor } : {}),
    ...(o.authorisingUsageFloors !== undefined ? { authorisingUsageFloors: o.authorisingUsageFloors } : {}),
    ...(o.otherRoleFloors !== undefined ? { otherRoleFloors: o.otherRoleFloors } : {}),
    replacements: o.replacements.map((r) => ({ certificate: r.certificate as Uint8Array, cell: r.cell })),
    certificationPath: o.certificationPath as Uint8Array[],
    ...(o.executionTime !== undefined ? { executionTime: o.executionTime } : {}),
  };
}

const MODES = [2, 3, 4, 5, 6, 7, 8] as const;

describe('CS02b round trips, modes 2-8 (docs/domain.md §9)', () => {
  it.each(MODES)('mode %i: build -> parseMessage -> decode gives the fields back, code 0x0100 + mode', (mode) => {
    const o = modeOptions(mode);
    const pre = buildUpdateSecurityCredentials(o);
    const m = parseMessage(pre);
    expect(m.cra).toBe('command');
    expect(m.messageCode).toBe(0x0100 + mode);
    expect(m.originatorCounter).toBe(5000n);
    expect(m.signatureField).toBe('empty');
    const d = decodeUpdateSecurityCredentialsCommand(m);
    expect(d.entry.mode).toBe(mode);
    expect(d.payload).toEqual(expected(o));
    expect(decodeUpdateSecurityCredentials(m.payload)).toEqual(expected(o));
    // immediate: [1] = 1 (disapply), and [3] the header counter
    expect(d.payload.disapplyTimeChecks).toBe(true);
    expect(d.payload.sequenceNumber).toBe(m.originatorCounter);
  });

  it.each(MODES)('mode %i future-dated: [1] omitted, the execution time kept', (mode) => {
    const o = { ...modeOptions(mode, 77n), executionTime: new Date('2031-02-03T04:05:06Z') };
    const d = decodeUpdateSecurityCredentialsCommand(buildUpdateSecurityCredentials(o));
    expect(d.payload.disapplyTimeChecks).toBeUndefined();
    expect(d.payload.executionTime).toEqual(new Date('2031-02-03T04:05:06Z'));
    expect(d.payload).toEqual(expected(o));
  });

  it('every optional control field: [0] key, [1] = 0 (apply), [4], [5], [6] with nested usage floors', () => {
    const o: UpdateSecurityCredentialsOptions = {
      ...modeOptions(2, (1n << 64n) - 1n),
      symmetricKey: fromHex('000102030405060708090A0B0C0D0E0F'),
      disapplyTimeChecks: false,
      authorisingFloor: 123456789012345678n,
      authorisingUsageFloors: [{ usage: 0, floor: 1n }, { usage: 3, floor: 0x80n }],
      otherRoleFloors: [{ role: 5, floor: 9n, usageFloors: [{ usage: 0, floor: 2n }] }, { role: 3, floor: 0n }],
      executionTime: new Date('9999-12-31T23:59:59Z'),
      dateTime: fromHex('07E90601070C000000000000'),
      signatureField: 'absent',
    };
    const pre = buildUpdateSecurityCredentials(o);
    const m = parseMessage(pre);
    expect(m.signatureField).toBe('absent');
    expect(decodeUpdateSecurityCredentialsCommand(m).payload).toEqual(expected(o));
  });

  it('the minimal form: no optional field at all except [3]', () => {
    const p: UpdateSecurityCredentialsPayload = { mode: 4, sequenceNumber: 0n, replacements: [], certificationPath: [] };
    const der = encodeUpdateSecurityCredentialsPayload(p);
    // SEQUENCE { SEQUENCE { INTEGER 4, [3] 0 }, SEQUENCE {}, SEQUENCE {} }
    expect(toHex(der)).toBe(T(0x30, T(0x30, '020104', '830100'), '3000', '3000'));
    expect(toHex(der)).toBe('300C3006020104830100' + '3000' + '3000');
    expect(decodeUpdateSecurityCredentials(der)).toEqual(p);
  });

  it('the key usages and cell usage are written exactly as docs/domain.md §9 gives them', () => {
    const der = encodeUpdateSecurityCredentialsPayload({ mode: 2, authorisingCell: DS(2), sequenceNumber: 1n, replacements: [], certificationPath: [] });
    expect(toHex(der)).toContain('A207020102030207' + '80'); // [2] { 2, DS }
    const ka = encodeUpdateSecurityCredentialsPayload({ mode: 2, authorisingCell: PREPAY, sequenceNumber: 1n, replacements: [], certificationPath: [] });
    expect(toHex(ka)).toContain('A20A020102030203080201' + '01'); // [2] { 2, KA, 1 }
    const root = encodeUpdateSecurityCredentialsPayload({ mode: 8, authorisingCell: { role: 0, keyUsage: 'keyCertSign' }, sequenceNumber: 1n, replacements: [], certificationPath: [] });
    expect(toHex(root)).toContain('A20702010003020204');
  });

  it('a signed mode 2 command is read and its signature verifies; mode 4 stays unsigned', async () => {
    const pre = buildUpdateSecurityCredentials({ ...modeOptions(2), signerCertificate: c('supplierDs') });
    const signed = await signPreCommand(pre, signerKeys.supplierDs as KeyObject);
    const d = decodeUpdateSecurityCredentialsCommand(signed, { signerCertificate: c('supplierDs') });
    expect(d.message.signature).not.toBeNull();
    expect(d.entry.userSignature).toBe(true);
    const acb = decodeUpdateSecurityCredentialsCommand(buildUpdateSecurityCredentials(modeOptions(4)));
    expect(acb.entry.userSignature).toBe(false);
    expect(acb.payload.authorisingCell).toBeUndefined();
  });

  it('certificates may be given parsed or as PEM-free DER alike', () => {
    const o = modeOptions(3);
    const parsed = buildUpdateSecurityCredentials({ ...o, replacements: [{ certificate: c('networkKa'), cell: KA(3) }], certificationPath: [h.organisationCa.certificate] });
    expect(toHex(parsed)).toBe(toHex(buildUpdateSecurityCredentials(o)));
  });
});

describe('CS02b mode table (catalogue)', () => {
  it('authorising roles and User signatures as docs/domain.md §9 gives them; 0, 1, 9 unsupported', () => {
    const t = CREDENTIALS_MODES.map((e) => [e.mode, e.messageCode, e.authorisingRole, e.userSignature, e.supported]);
    expect(t).toEqual([
      [0, 0x100, 2, true, false],
      [1, 0x101, 6, true, false],
      [2, 0x102, 2, true, true],
      [3, 0x103, 3, true, true],
      [4, 0x104, 4, false, true],
      [5, 0x105, 6, true, true],
      [6, 0x106, 5, true, true],
      [7, 0x107, 5, true, true],
      [8, 0x108, 1, true, true],
      [9, 0x109, undefined, true, false],
    ]);
    expect(CREDENTIALS_MODES[7]?.targets).toEqual([2]);
    expect(CREDENTIALS_MODES[8]?.targets).toBe('anyExceptRoot');
    expect(Object.isFrozen(CREDENTIALS_MODES)).toBe(true);
    expect(Object.isFrozen(CREDENTIALS_MODES[2])).toBe(true);
  });
});

describe('CS02b builder refusals (docs/domain.md §10), one rule each', () => {
  it.each([0, 1, 9])('mode %i: layout not public -> ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', (mode) => {
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), mode }))).toBe('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED');
  });
  it.each([-1, 10, 2.5, 256])('mode %s: not a mode -> ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', (mode) => {
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), mode }))).toBe('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED');
  });

  const SIGNER = 'ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH';
  it.each([
    ['mode 2 authorised by the transitional CoS cell', 2, { authorisingCell: DS(5) }],
    ['mode 2 authorised by the supplier KA cell', 2, { authorisingCell: KA(2) }],
    ['mode 2 authorised by the prepayment cell', 2, { authorisingCell: { role: 2, keyUsage: 'digitalSignature', cellUsage: 'prepayment' } }],
    ['mode 3 authorised by the supplier', 3, { authorisingCell: DS(2) }],
    ['mode 4 with an authorising cell', 4, { authorisingCell: DS(4) }],
    ['mode 5 authorised by role 4 (the ACB, not the WAN provider)', 5, { authorisingCell: DS(4) }],
    ['mode 6 authorised by the supplier', 6, { authorisingCell: DS(2) }],
    ['mode 7 authorised by the supplier itself', 7, { authorisingCell: DS(2) }],
    ['mode 8 authorised by the supplier (its own key must not authorise its replacement)', 8, { authorisingCell: DS(2) }],
  ] as const)('%s -> %s', (_what, mode, patch) => {
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(mode), ...patch }))).toBe(SIGNER);
  });
  it.each(MODES.filter((m) => m !== 4))('mode %i without the authorising cell', (mode) => {
    const { authorisingCell: _omit, ...o } = modeOptions(mode);
    expect(codeOf(() => buildUpdateSecurityCredentials(o))).toBe(SIGNER);
  });
  it('a signer certificate of another role, of KA, of another entity, or on mode 4', () => {
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), signerCertificate: c('networkDs') }))).toBe(SIGNER);
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), signerCertificate: c('supplierKa') }))).toBe(SIGNER);
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), signerCertificate: c('supplierDs2') }))).toBe(SIGNER);
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(4), signerCertificate: c('acbDs') }))).toBe(SIGNER);
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(8), signerCertificate: c('recoveryDs') }))).toBeUndefined();
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), signerCertificate: c('supplierDs') }))).toBeUndefined();
  });

  const CELL = 'ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED';
  it.each([
    ['mode 2 replacing a network operator cell', 2, [{ cert: 'networkDs', cell: DS(3) }]],
    ['mode 3 replacing a supplier cell', 3, [{ cert: 'supplierDs', cell: DS(2) }]],
    ['mode 4 replacing a WAN provider cell', 4, [{ cert: 'wanKa', cell: KA(6) }]],
    ['mode 5 replacing an ACB cell', 5, [{ cert: 'acbKa', cell: KA(4) }]],
    ['mode 6 replacing a supplier cell', 6, [{ cert: 'supplierDs', cell: DS(2) }]],
    ['mode 7 replacing its own (transitional CoS) cell', 7, [{ cert: 'transCosKa', cell: KA(5) }]],
    ['mode 8 replacing the root cell', 8, [{ cert: 'supplierDs', cell: { role: 0, keyUsage: 'keyCertSign' } }]],
    ['a prepayment cell of the network operator', 3, [{ cert: 'networkKa', cell: { role: 3, keyUsage: 'keyAgreement', cellUsage: 'prepayment' } }]],
    ['a prepayment DS cell', 2, [{ cert: 'supplierDs', cell: { role: 2, keyUsage: 'digitalSignature', cellUsage: 'prepayment' } }]],
    ['a keyCertSign cell of the supplier', 2, [{ cert: 'supplierDs', cell: { role: 2, keyUsage: 'keyCertSign' } }]],
    ['a cell of role 7 (issuing authority)', 8, [{ cert: 'supplierDs', cell: DS(7) }]],
    ['the same cell twice', 2, [{ cert: 'supplierDs', cell: DS(2) }, { cert: 'supplierDs2', cell: DS(2) }]],
  ] as const)('%s -> ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED', (_what, mode, reps) => {
    const o = { ...modeOptions(mode), replacements: reps.map((r) => ({ certificate: c(r.cert).der, cell: r.cell as TrustAnchorCell })) };
    expect(codeOf(() => buildUpdateSecurityCredentials(o))).toBe(CELL);
  });

  it('a replacement certificate of the wrong role -> ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE', () => {
    const bad = (cert: string, cell: TrustAnchorCell, mode = 2) => buildUpdateSecurityCredentials({ ...modeOptions(mode), replacements: [{ certificate: c(cert).der, cell }] });
    expect(codeOf(() => bad('networkDs', DS(2)))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE');
    expect(codeOf(() => bad('transCosDs', DS(2), 7))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE');
    expect(codeOf(() => bad('acbKa', KA(6), 8))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE');
    expect(codeOf(() => bad('meterKa', KA(2)))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE'); // a device certificate has no role
    expect(codeOf(() => bad('supplierDs', DS(2)))).toBeUndefined();
  });

  it('a replacement certificate of the wrong key usage -> ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE', () => {
    const bad = (cert: string, cell: TrustAnchorCell, mode = 2) => buildUpdateSecurityCredentials({ ...modeOptions(mode), replacements: [{ certificate: c(cert).der, cell }] });
    expect(codeOf(() => bad('supplierKa', DS(2)))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE');
    expect(codeOf(() => bad('supplierDs', KA(2)))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE');
    expect(codeOf(() => bad('supplierDs', PREPAY))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE');
    expect(codeOf(() => bad('networkDs', KA(3), 3))).toBe('ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE');
    expect(codeOf(() => bad('supplierKa', PREPAY))).toBeUndefined();
  });

  it('no replacement, an unparsable certificate, a bad counter or field -> their codes', () => {
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), replacements: [] }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), replacements: [{ certificate: fromHex('3003020101'), cell: DS(2) }] }))).toBe('ERR_CERT_MALFORMED');
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), counter: -1n }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), counter: 1n << 64n }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), executionTime: new Date(1.5) }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), authorisingFloor: -1n }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...modeOptions(2), recipient: 'not an eui' }))).toBe('ERR_GBCS_INVALID_FIELD');
  });
});

describe('CS02b read as a validator does (decodeUpdateSecurityCredentialsCommand)', () => {
  /** A command whose payload is written by hand (the builder would refuse it). */
  const raw = (o: { messageCode: number; payload: UpdateSecurityCredentialsPayload; counter?: bigint; signature?: Uint8Array; cra?: 'command' | 'response' }) =>
    buildGeneralSigning({
      cra: o.cra ?? 'command', originatorCounter: o.counter ?? 5000n, originator: SUPPLIER, recipient: METER, messageCode: o.messageCode,
      payload: encodeUpdateSecurityCredentialsPayload(o.payload),
      ...(o.signature ? { signatureField: 'present' as const, signature: o.signature } : { signatureField: 'empty' as const }),
    });
  const good = () => expected(modeOptions(2));

  it('the hand-written command is accepted (the cases below change one thing)', () => {
    expect(decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0102, payload: good() })).entry.mode).toBe(2);
  });
  it('[3] not the header counter -> ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH', () => {
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0102, payload: { ...good(), sequenceNumber: 5001n } })))).toBe('ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH');
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0102, payload: good(), counter: 4999n })))).toBe('ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH');
    expect(codeOf(() => checkUpdateSecurityCredentials(good(), { originatorCounter: 0n }))).toBe('ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH');
    expect(codeOf(() => checkUpdateSecurityCredentials(good(), { originatorCounter: 5000n }))).toBeUndefined();
  });
  it('payload mode not the message code\'s -> ERR_GBCS_CREDENTIALS_MODE_MISMATCH', () => {
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0107, payload: good() })))).toBe('ERR_GBCS_CREDENTIALS_MODE_MISMATCH');
  });
  it('message codes 0x0100, 0x0101, 0x0109 and non-CS02b codes -> ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', () => {
    for (const code of [0x0100, 0x0101, 0x0109, 0x010a, 0x0050, 0x00ff]) {
      expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: code, payload: good() }))), code.toString(16)).toBe('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED');
    }
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0102, payload: good(), cra: 'response' })))).toBe('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED');
  });
  it('a mode 4 command carrying a User signature -> ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', () => {
    const p = expected(modeOptions(4));
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0104, payload: p, signature: new Uint8Array(64).fill(1) })))).toBe('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH');
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0104, payload: p })))).toBeUndefined();
  });
  it('a signer certificate given to the reader is checked', () => {
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(raw({ messageCode: 0x0102, payload: good() }), { signerCertificate: c('supplierDs2') }))).toBe('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH');
  });
  it('a malformed payload -> ERR_GBCS_MALFORMED', () => {
    const bytes = buildGeneralSigning({ cra: 'command', originatorCounter: 1n, originator: SUPPLIER, recipient: METER, messageCode: 0x0102, payload: fromHex('3000'), signatureField: 'empty' });
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(bytes))).toBe('ERR_GBCS_MALFORMED');
  });
});

describe('CS02b payload decoder: strict DER, one broken rule each -> ERR_GBCS_MALFORMED with the offset', () => {
  let der: Uint8Array;
  beforeAll(() => {
    der = encodeUpdateSecurityCredentialsPayload(expected({ ...modeOptions(2), executionTime: new Date('2030-01-01T00:00:00Z'), disapplyTimeChecks: false }));
  });
  /** der with byte `at` set to `v`. */
  const set = (at: number, v: number) => {
    const out = der.slice();
    out[at] = v;
    return out;
  };
  // Layout: 30 82 LL LL | control 30 20 @4 | 02 01 02 @6 | 81 01 00 @9 | A2 07 (cell) @12, its key usage @17 | 83 02 13 88 @21 | 84 01 00 @25 | A5 08 @28 { 30 06 @30 … }
  it('the layout the offsets below rely on', () => {
    expect(toHex(der.subarray(0, 2))).toBe('3082');
    expect(toHex(der.subarray(4, 38))).toBe('3020' + '020102' + '810100' + 'A20702010203020780' + '83021388' + '840100' + 'A508' + '3006020100020100');
  });
  it.each([
    ['outer tag 31', 0, 0x31, 0],
    ['control tag 31', 4, 0x31, 4],
    ['mode as ENUMERATED', 6, 0x0a, 6],
    ['[1] tagged [7]', 9, 0x87, 9],
    ['[1] = 2', 11, 0x02, 9],
    ['[2] primitive', 12, 0x82, 12],
    ['authorising cell key usage with another bit', 20, 0x81, 17],
    ['[3] tagged as [2] primitive', 21, 0x82, 21],
    ['[5] entry tag 31', 30, 0x31, 30],
  ] as const)('%s', (_what, at, v, offset) => {
    const bad = set(at, v);
    expect(codeOf(() => decodeUpdateSecurityCredentials(bad))).toBe('ERR_GBCS_MALFORMED');
    expect(offsetOf(() => decodeUpdateSecurityCredentials(bad))).toBe(offset);
  });
  it('a non-minimal length in a command (81 1B for the control block) is refused', () => {
    const len = (der[2] as number) * 256 + (der[3] as number) + 1;
    const bad = concatBytes(Uint8Array.of(0x30, 0x82, len >> 8, len & 0xff), Uint8Array.of(0x30, 0x81), der.subarray(5));
    expect(codeOf(() => decodeUpdateSecurityCredentials(bad))).toBe('ERR_GBCS_MALFORMED');
    expect(offsetOf(() => decodeUpdateSecurityCredentials(bad))).toBe(5);
  });
  it('a non-minimal INTEGER (02 02 00 02 for the mode) is refused', () => {
    const p = encodeUpdateSecurityCredentialsPayload({ mode: 4, sequenceNumber: 0n, replacements: [], certificationPath: [] });
    const bad = fromHex(T(0x30, T(0x30, '02020004', '830100'), '3000', '3000'));
    expect(toHex(p)).toBe(T(0x30, T(0x30, '020104', '830100'), '3000', '3000'));
    expect(codeOf(() => decodeUpdateSecurityCredentials(bad))).toBe('ERR_GBCS_MALFORMED');
    expect(offsetOf(() => decodeUpdateSecurityCredentials(bad))).toBe(6);
  });
  it.each([
    // top SEQUENCE 30 LL; control at 2, its content at 4; after a 6-byte control the lists start at 10
    ['[3] missing', T(0x30, T(0x30, '020104'), '3000', '3000'), 7],
    ['[3] negative', T(0x30, T(0x30, '020104', '830180'), '3000', '3000'), 9],
    ['[3] of 2^64', T(0x30, T(0x30, '020104', '8309010000000000000000'), '3000', '3000'), 7],
    ['control fields out of order ([1] after [3])', T(0x30, T(0x30, '020104', '830100', '810101'), '3000', '3000'), 10],
    ['cell usage 0 (management is absent)', T(0x30, T(0x30, '020102', T(0xa2, '020102', '03020780', '020100'), '830100'), '3000', '3000'), 16],
    ['replacements missing', T(0x30, T(0x30, '020104', '830100')), 10],
    ['execution time with fraction', T(0x30, T(0x30, '020104', '830100'), '3000', '3000', T(0x18, '32303330303130313030303030302E355A')), 14],
    ['execution time 30 February', T(0x30, T(0x30, '020104', '830100'), '3000', '3000', T(0x18, '32303330303233303030303030305A')), 14],
    ['execution time as UTCTime', T(0x30, T(0x30, '020104', '830100'), '3000', '3000', T(0x17, '3330303130313030303030305A')), 14],
    ['certificate in the path not a SEQUENCE', T(0x30, T(0x30, '020104', '830100'), '3000', T(0x30, '04020000')), 14],
    ['certificate in the path not well-formed inside', T(0x30, T(0x30, '020104', '830100'), '3000', T(0x30, '30020401')), 18],
    ['replacement without its cell', T(0x30, T(0x30, '020104', '830100'), T(0x30, T(0x30, T(0x30, '0500'))), '3000'), 18],
  ] as const)('%s', (_what, hex, offset) => {
    expect(codeOf(() => decodeUpdateSecurityCredentials(fromHex(hex)))).toBe('ERR_GBCS_MALFORMED');
    expect(offsetOf(() => decodeUpdateSecurityCredentials(fromHex(hex)))).toBe(offset);
  });
  it('trailing bytes after the SEQUENCE, and after the execution time inside it', () => {
    expect(offsetOf(() => decodeUpdateSecurityCredentials(concatBytes(der, Uint8Array.of(0))))).toBe(der.length);
    const inner = fromHex('3011' + '3006020104830100' + '3000' + '3000' + '0500' + '0500');
    expect(codeOf(() => decodeUpdateSecurityCredentials(inner))).toBe('ERR_GBCS_MALFORMED');
  });
  it('truncated at every offset: ERR_GBCS_MALFORMED and no other exception', () => {
    for (let i = 0; i < der.length; i++) {
      let thrown: unknown;
      try {
        decodeUpdateSecurityCredentials(der.subarray(0, i));
      } catch (e) {
        thrown = e;
      }
      expect(isSmkiError(thrown, 'ERR_GBCS_MALFORMED'), `truncated at ${i}`).toBe(true);
    }
  });
  it('not bytes, or too long', () => {
    expect(codeOf(() => decodeUpdateSecurityCredentials('30' as unknown as Uint8Array))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateSecurityCredentials(new Uint8Array(70_000)))).toBe('ERR_GBCS_MALFORMED');
  });
});

describe('CS02b response and alert 0x00CB (docs/domain.md §9)', () => {
  const outcome = (): CredentialsExecutionOutcome => ({
    sequenceNumber: 5000n,
    mode: 2,
    floorChanges: [fromHex('3006020102020100'), fromHex('0500')],
    results: [
      { cell: DS(2), status: CREDENTIALS_STATUS.success, oldEntityId: SUPPLIER as Eui64, oldKeyId: '4A1B2C3D4E5F6071', newEntityId: '90B3D51F30010001' as Eui64, newKeyId: '4B00112233445566' },
      { cell: KA(2), status: CREDENTIALS_STATUS.badCertificate, oldEntityId: SUPPLIER as Eui64, oldKeyId: '4C00000000000001', newEntityId: SUPPLIER as Eui64, newKeyId: '4C00000000000001' },
      { cell: PREPAY, status: CREDENTIALS_STATUS.other, oldEntityId: SUPPLIER as Eui64, oldKeyId: '4D00000000000002', newEntityId: SUPPLIER as Eui64, newKeyId: '4D00000000000002' },
    ],
  });

  it('round trip, minimal and device lengths; device lengths are 82 hh ll on every SEQUENCE', () => {
    for (const lengths of ['minimal', 'device'] as const) {
      const der = encodeUpdateSecurityCredentialsResponse({ outcome: outcome() }, { lengths });
      expect(decodeUpdateSecurityCredentialsResponse(der)).toEqual({ outcome: outcome() });
      if (lengths === 'device') expect(toHex(der.subarray(0, 4))).toMatch(/^308200[0-9A-F]{2}$/);
      else expect(toHex(der.subarray(0, 2))).toBe('3081');
    }
    expect(toHex(encodeUpdateSecurityCredentialsResponse({}))).toBe('30020500');
    expect(decodeUpdateSecurityCredentialsResponse(fromHex('30020500'))).toEqual({});
    expect(decodeUpdateSecurityCredentialsResponse(fromHex('3081020500'))).toEqual({});
    expect(decodeUpdateSecurityCredentialsResponse(fromHex('308300000205' + '00'))).toEqual({});
  });

  it('a failed cell keeps its old ids; the results keep the command order', () => {
    const r = decodeUpdateSecurityCredentialsResponse(encodeUpdateSecurityCredentialsResponse({ outcome: outcome() }, { lengths: 'device' }));
    const [a, b, p] = r.outcome?.results ?? [];
    expect([a?.cell, b?.cell, p?.cell]).toEqual([DS(2), KA(2), PREPAY]);
    expect(b?.status).toBe(5);
    expect(b?.newKeyId).toBe(b?.oldKeyId);
    expect(a?.newEntityId).toBe('90B3D51F30010001');
  });

  it.each([
    ['not a SEQUENCE', '31020500', 0],
    ['NULL missing', '3000', 2],
    ['NULL not empty', '3003050100', 2],
    ['indefinite length', '30800500', 1],
    ['a length of four octets', '3084000000020500', 1],
    ['trailing byte', '3002050000', 4],
    ['length beyond the end', '30030500', 2],
    ['outcome with nothing in it', '300405003000', 6],
  ] as const)('%s -> ERR_GBCS_MALFORMED', (_what, hex, offset) => {
    expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(fromHex(hex)))).toBe('ERR_GBCS_MALFORMED');
    expect(offsetOf(() => decodeUpdateSecurityCredentialsResponse(fromHex(hex)))).toBe(offset);
  });

  it('an id of 7 bytes, a status as INTEGER, a cell usage of 2 -> ERR_GBCS_MALFORMED', () => {
    const resp = (o: { id?: string; status?: string; cell?: string }) =>
      fromHex(T(0x30, '0500', T(0x30, '020101', '020102', '3000', T(0x30, T(0x30, o.cell ?? T(0x30, '020102', '03020780'), o.status ?? '0A0100', T(0x04, o.id ?? '90B3D51F30010000'), T(0x04, '4A1B2C3D4E5F6071'), T(0x04, '90B3D51F30010001'), T(0x04, '4B00112233445566'))))));
    expect(decodeUpdateSecurityCredentialsResponse(resp({})).outcome?.results).toHaveLength(1);
    expect(toHex(resp({}))).toBe(toHex(encodeUpdateSecurityCredentialsResponse({ outcome: { sequenceNumber: 1n, mode: 2, floorChanges: [], results: [{ cell: DS(2), status: 0, oldEntityId: SUPPLIER as Eui64, oldKeyId: '4A1B2C3D4E5F6071', newEntityId: '90B3D51F30010001' as Eui64, newKeyId: '4B00112233445566' }] } })));
    expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(resp({ id: '90B3D51F300100' })))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(resp({ id: '90B3D51F3001000000' })))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(resp({ status: '020100' })))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(resp({ cell: T(0x30, '020102', '03020780', '020102') })))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(resp({ cell: T(0x30, '020102', '03020780', '020101') })))).toBeUndefined();
  });

  it('truncated at every offset (device lengths): ERR_GBCS_MALFORMED only', () => {
    const der = encodeUpdateSecurityCredentialsResponse({ outcome: outcome() }, { lengths: 'device' });
    for (let i = 0; i < der.length; i++) {
      expect(codeOf(() => decodeUpdateSecurityCredentialsResponse(der.subarray(0, i))), `at ${i}`).toBe('ERR_GBCS_MALFORMED');
    }
  });

  const alert = (code: number): CredentialsAlert => ({ code, executionTime: new Date('2031-02-03T04:05:06Z'), outcome: outcome() });
  it('alert round trip: success and failure, minimal and device lengths', () => {
    for (const code of [CREDENTIALS_ALERT_CODES.success, CREDENTIALS_ALERT_CODES.failure]) {
      for (const lengths of ['minimal', 'device'] as const) {
        const der = encodeCredentialsAlert(alert(code), { lengths });
        expect(decodeCredentialsAlert(der)).toEqual(alert(code));
      }
    }
    expect(toHex(encodeCredentialsAlert(alert(0x8f66)).subarray(3, 8))).toBe('0203008F66');
  });
  it('alert negatives: another code, no time, time as UTCTime, trailing, truncated', () => {
    const der = encodeCredentialsAlert(alert(0x8f66), { lengths: 'device' });
    expect(codeOf(() => encodeCredentialsAlert(alert(0x8f68)))).toBe('ERR_GBCS_INVALID_FIELD');
    const other = der.slice();
    other[8] = 0x68;
    expect(codeOf(() => decodeCredentialsAlert(other))).toBe('ERR_GBCS_MALFORMED');
    expect(offsetOf(() => decodeCredentialsAlert(other))).toBe(4);
    const utc = der.slice();
    utc[9] = 0x17;
    expect(offsetOf(() => decodeCredentialsAlert(utc))).toBe(9);
    expect(codeOf(() => decodeCredentialsAlert(concatBytes(der, Uint8Array.of(0))))).toBe('ERR_GBCS_MALFORMED');
    for (let i = 0; i < der.length; i++) expect(codeOf(() => decodeCredentialsAlert(der.subarray(0, i))), `at ${i}`).toBe('ERR_GBCS_MALFORMED');
  });
  it('encoder refusals', () => {
    expect(codeOf(() => encodeUpdateSecurityCredentialsResponse({ outcome: { ...outcome(), floorChanges: [fromHex('3001')] } }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => encodeUpdateSecurityCredentialsResponse({ outcome: { ...outcome(), results: [{ ...outcome().results[0]!, oldKeyId: '4A' }] } }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => encodeUpdateSecurityCredentialsResponse({}, { lengths: 'long' as 'device' }))).toBe('ERR_GBCS_INVALID_FIELD');
  });
});

describe('CS02c / CS02d / CS02e (docs/domain.md §9)', () => {
  const opts = { originator: SUPPLIER, recipient: METER, counter: 6000n };
  it('CS02c: command round trip, both key usages, and its exact bytes', () => {
    for (const keyUsage of ['digitalSignature', 'keyAgreement'] as const) {
      const m = parseMessage(buildIssueCredentials({ ...opts, keyUsage }));
      expect(m.messageCode).toBe(0x000a);
      expect(decodeIssueCredentials(m.payload)).toEqual({ keyUsage });
    }
    expect(toHex(parseMessage(buildIssueCredentials({ ...opts, keyUsage: 'keyAgreement' })).payload)).toBe('300403020308');
    expect(codeOf(() => buildIssueCredentials({ ...opts, keyUsage: 'keyCertSign' as 'keyAgreement' }))).toBe('ERR_GBCS_INVALID_FIELD');
  });
  it('CS02c: response is a request or an error 1-3', async () => {
    const k = p256();
    const { createKeySigner } = await import('@smki/core');
    const csr = await createCsr({ signer: createKeySigner(k.privateKey), keyUsage: 'keyAgreement' });
    expect(decodeIssueCredentialsResponse(encodeIssueCredentialsResponse({ request: csr }))).toEqual({ request: csr });
    for (const error of Object.values(ISSUE_CREDENTIALS_ERRORS)) expect(decodeIssueCredentialsResponse(encodeIssueCredentialsResponse({ error }))).toEqual({ error });
    expect(codeOf(() => decodeIssueCredentialsResponse(fromHex('020100')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeIssueCredentialsResponse(fromHex('020104')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeIssueCredentialsResponse(fromHex('02810102')))).toBeUndefined(); // device long form
    expect(codeOf(() => decodeIssueCredentialsResponse(fromHex('0401')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeIssueCredentialsResponse(concatBytes(csr, Uint8Array.of(0))))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => encodeIssueCredentialsResponse({ error: 0 }))).toBe('ERR_GBCS_INVALID_FIELD');
  });
  it.each([
    ['not a SEQUENCE', '310403020780', 0],
    ['key usage keyCertSign', '300403020204', 2],
    ['key usage both bits', '300403020388', 2],
    ['non-minimal length', '30810403020780', 1],
    ['trailing byte', '30040302078000', 6],
    ['extra element', '3006030207800500', 6],
    ['empty', '', 0],
  ] as const)('CS02c / CS02e command: %s -> ERR_GBCS_MALFORMED', (_what, hex, offset) => {
    for (const decode of [decodeIssueCredentials, decodeProvideDeviceCertificate]) {
      expect(codeOf(() => decode(fromHex(hex)))).toBe('ERR_GBCS_MALFORMED');
      expect(offsetOf(() => decode(fromHex(hex)))).toBe(offset);
    }
  });
  it('CS02d: command round trip with the bare device certificate; refusals', () => {
    const m = parseMessage(buildUpdateDeviceCertificate({ ...opts, certificate: c('meterKa') }));
    expect(m.messageCode).toBe(0x000b);
    expect(toHex(m.payload)).toBe(toHex(c('meterKa').der));
    expect(decodeUpdateDeviceCertificate(m.payload)).toEqual({ certificate: c('meterKa').der });
    expect(codeOf(() => buildUpdateDeviceCertificate({ ...opts, certificate: c('otherMeterKa') }))).toBe('ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE');
    expect(codeOf(() => buildUpdateDeviceCertificate({ ...opts, certificate: c('supplierKa') }))).toBe('ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE');
    expect(codeOf(() => buildUpdateDeviceCertificate({ ...opts, certificate: h.deviceCa.certificate }))).toBe('ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE');
    expect(codeOf(() => buildUpdateDeviceCertificate({ ...opts, certificate: fromHex('3000') }))).toBe('ERR_CERT_MALFORMED');
    const der = c('meterDs').der;
    expect(codeOf(() => decodeUpdateDeviceCertificate(concatBytes(der, Uint8Array.of(0))))).toBe('ERR_GBCS_MALFORMED');
    for (let i = 0; i < der.length; i += 7) expect(codeOf(() => decodeUpdateDeviceCertificate(der.subarray(0, i))), `at ${i}`).toBe('ERR_GBCS_MALFORMED');
  });
  it('CS02d: responses 0-7 round trip; 8, an ENUMERATED, trailing bytes refused', () => {
    for (const s of Object.values(UPDATE_DEVICE_CERTIFICATE_STATUS)) expect(decodeUpdateDeviceCertificateResponse(encodeUpdateDeviceCertificateResponse(s))).toBe(s);
    expect(Object.values(UPDATE_DEVICE_CERTIFICATE_STATUS)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(codeOf(() => decodeUpdateDeviceCertificateResponse(fromHex('020108')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateDeviceCertificateResponse(fromHex('0A0100')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => decodeUpdateDeviceCertificateResponse(fromHex('02010000')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => encodeUpdateDeviceCertificateResponse(8))).toBe('ERR_GBCS_INVALID_FIELD');
  });
  it('CS02e: command and responses', () => {
    const m = parseMessage(buildProvideDeviceCertificate({ ...opts, keyUsage: 'digitalSignature' }));
    expect(m.messageCode).toBe(0x000c);
    expect(decodeProvideDeviceCertificate(m.payload)).toEqual({ keyUsage: 'digitalSignature' });
    const der = c('meterDs').der;
    expect(decodeProvideDeviceCertificateResponse(encodeProvideDeviceCertificateResponse({ certificate: der }))).toEqual({ certificate: der });
    for (const error of Object.values(PROVIDE_DEVICE_CERTIFICATE_ERRORS)) expect(decodeProvideDeviceCertificateResponse(encodeProvideDeviceCertificateResponse({ error }))).toEqual({ error });
    expect(codeOf(() => decodeProvideDeviceCertificateResponse(fromHex('020104')))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => encodeProvideDeviceCertificateResponse({ certificate: fromHex('0400') }))).toBe('ERR_GBCS_INVALID_FIELD');
  });
});

describe('property: decode(encode(x)) = x for CS02b payloads, responses and alerts', () => {
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const cell = fc.record({
    role: fc.integer({ min: 0, max: 255 }),
    keyUsage: fc.constantFrom('digitalSignature' as const, 'keyAgreement' as const, 'keyCertSign' as const),
    cellUsage: fc.constantFrom('management' as const, 'prepayment' as const),
  });
  const usageFloor = fc.record({ usage: fc.integer({ min: 0, max: 255 }), floor: u64 });
  const time = fc.integer({ min: Date.UTC(0, 0, 1) / 1000, max: Date.UTC(9999, 11, 31, 23, 59, 59) / 1000 }).map((s) => new Date(s * 1000));
  const certish = fc.uint8Array({ maxLength: 40 }).map((b) => concatBytes(Uint8Array.of(0x30, b.length + 2, 0x04, b.length), b));
  const payload = fc.record(
    {
      mode: fc.integer({ min: 0, max: 255 }),
      symmetricKey: fc.uint8Array({ maxLength: 32 }),
      disapplyTimeChecks: fc.boolean(),
      authorisingCell: cell,
      sequenceNumber: u64,
      authorisingFloor: u64,
      authorisingUsageFloors: fc.array(usageFloor, { maxLength: 3 }),
      otherRoleFloors: fc.array(fc.record({ role: fc.integer({ min: 0, max: 255 }), floor: u64, usageFloors: fc.array(usageFloor, { maxLength: 2 }) }, { requiredKeys: ['role', 'floor'] }), { maxLength: 3 }),
      replacements: fc.array(fc.record({ certificate: certish, cell }), { maxLength: 3 }),
      certificationPath: fc.array(certish, { maxLength: 2 }),
      executionTime: time,
    },
    { requiredKeys: ['mode', 'sequenceNumber', 'replacements', 'certificationPath'] },
  );
  it('CS02b payload', () => {
    fc.assert(fc.property(payload, (p) => {
      expect(decodeUpdateSecurityCredentials(encodeUpdateSecurityCredentialsPayload(p))).toEqual(p);
    }), { seed: 20261206, numRuns: 300 });
  });
  const hex16 = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => toHex(b));
  const result = fc.record({ cell, status: fc.integer({ min: 0, max: 255 }), oldEntityId: hex16.map((x) => x as Eui64), oldKeyId: hex16, newEntityId: hex16.map((x) => x as Eui64), newKeyId: hex16 });
  const outcomeArb = fc.record({ sequenceNumber: u64, mode: fc.integer({ min: 0, max: 255 }), floorChanges: fc.array(certish, { maxLength: 2 }), results: fc.array(result, { maxLength: 4 }) });
  it('responses and alerts, both length forms', () => {
    fc.assert(fc.property(fc.option(outcomeArb, { nil: undefined }), fc.constantFrom('minimal' as const, 'device' as const), (outcome, lengths) => {
      const r = outcome === undefined ? {} : { outcome };
      expect(decodeUpdateSecurityCredentialsResponse(encodeUpdateSecurityCredentialsResponse(r, { lengths }))).toEqual(r);
    }), { seed: 7, numRuns: 200 });
    fc.assert(fc.property(outcomeArb, time, fc.constantFrom(0x8f66, 0x8f67), (outcome, executionTime, code) => {
      const a = { code, executionTime, outcome };
      expect(decodeCredentialsAlert(encodeCredentialsAlert(a, { lengths: 'device' }))).toEqual(a);
    }), { seed: 8, numRuns: 200 });
  });
  it('mutated payloads give a decode or ERR_GBCS_MALFORMED, nothing else', () => {
    fc.assert(fc.property(payload, fc.nat(), fc.integer({ min: 0, max: 255 }), (p, at, v) => {
      const der = encodeUpdateSecurityCredentialsPayload(p);
      const bad = der.slice();
      bad[at % bad.length] = v;
      try {
        decodeUpdateSecurityCredentials(bad);
      } catch (e) {
        expect(isSmkiError(e, 'ERR_GBCS_MALFORMED')).toBe(true);
      }
    }), { seed: 9, numRuns: 500 });
  });
});
