// docs/domain.md §9 (CS02b Update Security Credentials: payload, modes and who signs, response,
// alert 0x00CB, device long-form lengths) and §10 (how the toolkit builds and reads it), end to end:
// real SMKI certificates from @smki/pki, real ECDSA P-256; the library builds each command
// (buildUpdateSecurityCredentials), the authorising party signs it (signPreCommand, docs/domain.md §4
// User signature) and the ACB MACs it (wrapWithMac, docs/domain.md §4); an independent simulated meter
// (test/_device-simulator.ts: its own DER and X.509 reader, plain node:crypto, nothing from src/)
// checks it, chains each new certificate through the certification path to its root cell, swaps the
// cells and answers; the library then verifies the device signature and decodes the response or
// the alert. Afterwards the meter trusts the new keys and refuses the old ones.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, isSmkiError, p1363ToDer, toHex } from '@smki/core';
import { createHierarchy, issueOrganisationCertificate, type SmkiCertificate, type SmkiHierarchy } from '@smki/pki';
import {
  buildGeneralSigning,
  buildUpdateSecurityCredentials,
  CREDENTIALS_ALERT_CODES,
  CREDENTIALS_STATUS,
  decodeCredentialsAlert,
  decodeUpdateSecurityCredentialsCommand,
  decodeUpdateSecurityCredentialsResponse,
  decryptPayload,
  encodeUpdateSecurityCredentialsPayload,
  parseMessage,
  signPreCommand,
  verifySignature,
  wrapWithMac,
  type CellOutcome,
  type GbcsMessage,
  type TrustAnchorCell,
  type UpdateSecurityCredentialsOptions,
  type UpdateSecurityCredentialsPayload,
} from '../src/index.js';
import { buildDisableSupply } from '../src/commands.js';
import { SimulatedMeter, type MeterResult, type SimCellContent } from './_device-simulator.js';

const SUPPLIER = '90B3D51F30010000';
const SUPPLIER_B = '90B3D51F30010002'; // the gaining supplier of a change of supplier (mode 7)
const NETWORK = '90B3D51F30020000';
const ACB = '90B3D51F30000004';
const WAN = '90B3D51F30060000';
const TRANS_COS = '90B3D51F30050000';
const RECOVERY = '90B3D51F30000001';
const METER = '00DB1234567890A0';
const ZERO_ID = '0000000000000000';

const DS = (role: number): TrustAnchorCell => ({ role, keyUsage: 'digitalSignature', cellUsage: 'management' });
const KA = (role: number): TrustAnchorCell => ({ role, keyUsage: 'keyAgreement', cellUsage: 'management' });
const PREPAY: TrustAnchorCell = { role: 2, keyUsage: 'keyAgreement', cellUsage: 'prepayment' };
const ROOT_CELL: TrustAnchorCell = { role: 0, keyUsage: 'keyCertSign', cellUsage: 'management' };

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

interface Party {
  readonly cert: SmkiCertificate;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

let h: SmkiHierarchy;
/** A second hierarchy: its organisation CA does not chain to the meter's root. */
let foreign: SmkiHierarchy;
const P: Record<string, Party> = {};

async function party(name: string, role: number, entityId: string, keyUsage: 'digitalSignature' | 'keyAgreement', hierarchy: SmkiHierarchy = h): Promise<void> {
  const k = p256();
  const cert = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role, entityId, keyUsage, publicKey: k.publicKey });
  P[name] = { cert, privateKey: k.privateKey, publicKey: k.publicKey };
}
const p = (name: string): Party => {
  const x = P[name];
  if (x === undefined) throw new Error(`no party ${name}`);
  return x;
};

beforeAll(async () => {
  h = await createHierarchy();
  foreign = await createHierarchy();
  // What the meter trusts on the day it is installed.
  await party('supplierDs', 2, SUPPLIER, 'digitalSignature');
  await party('supplierKa', 2, SUPPLIER, 'keyAgreement');
  await party('supplierPrepay', 2, SUPPLIER, 'keyAgreement');
  await party('networkDs', 3, NETWORK, 'digitalSignature');
  await party('networkKa', 3, NETWORK, 'keyAgreement');
  await party('acbDs', 4, ACB, 'digitalSignature');
  await party('acbKa', 4, ACB, 'keyAgreement');
  await party('wanDs', 6, WAN, 'digitalSignature');
  await party('wanKa', 6, WAN, 'keyAgreement');
  await party('transCosDs', 5, TRANS_COS, 'digitalSignature');
  await party('transCosKa', 5, TRANS_COS, 'keyAgreement');
  await party('recoveryDs', 1, RECOVERY, 'digitalSignature');
  await party('recoveryKa', 1, RECOVERY, 'keyAgreement');
  // Replacements.
  await party('supplierDs2', 2, SUPPLIER, 'digitalSignature');
  await party('supplierKa2', 2, SUPPLIER, 'keyAgreement');
  await party('supplierPrepay2', 2, SUPPLIER, 'keyAgreement');
  await party('supplierBDs', 2, SUPPLIER_B, 'digitalSignature');
  await party('supplierBKa', 2, SUPPLIER_B, 'keyAgreement');
  await party('supplierBPrepay', 2, SUPPLIER_B, 'keyAgreement');
  await party('networkKa2', 3, NETWORK, 'keyAgreement');
  await party('acbKa2', 4, ACB, 'keyAgreement');
  await party('wanDs2', 6, WAN, 'digitalSignature');
  await party('transCosKa2', 5, TRANS_COS, 'keyAgreement');
  // A supplier DS certificate from a CA the meter's root never signed.
  await party('supplierDsForeign', 2, SUPPLIER, 'digitalSignature', foreign);
}, 60_000);

/** A meter with every cell filled (docs/domain.md §9: the supplier's DS, KA and prepayment KA, the others' DS and KA, the root). */
function newMeter(options: { credentialsLengths?: 'device' | 'minimal' } = {}): SimulatedMeter {
  const cells: SimCellContent[] = [
    { cell: ROOT_CELL, certificate: h.root.certificate.der },
    { cell: DS(2), certificate: p('supplierDs').cert.der },
    { cell: KA(2), certificate: p('supplierKa').cert.der },
    { cell: PREPAY, certificate: p('supplierPrepay').cert.der },
    { cell: DS(3), certificate: p('networkDs').cert.der },
    { cell: KA(3), certificate: p('networkKa').cert.der },
    { cell: DS(4), certificate: p('acbDs').cert.der },
    { cell: KA(4), certificate: p('acbKa').cert.der },
    { cell: DS(5), certificate: p('transCosDs').cert.der },
    { cell: KA(5), certificate: p('transCosKa').cert.der },
    { cell: DS(6), certificate: p('wanDs').cert.der },
    { cell: KA(6), certificate: p('wanKa').cert.der },
    { cell: DS(1), certificate: p('recoveryDs').cert.der },
    { cell: KA(1), certificate: p('recoveryKa').cert.der },
  ];
  return new SimulatedMeter({ eui64: METER, cells, criticalCodes: [0x0050], ...options });
}

let counter = 1_700_000_000_000n; // milliseconds since the epoch, as the DCC's tools use (docs/domain.md §6)
const next = () => (counter += 10n);

type Cmd = Omit<UpdateSecurityCredentialsOptions, 'recipient' | 'counter'> & { counter?: bigint };

/** Build (library), sign as the authorising party when a key is given, and MAC as the ACB. */
async function credentialsFrame(meter: SimulatedMeter, cmd: Cmd, signer: KeyObject | undefined, acbKey: KeyObject = p('acbKa').privateKey): Promise<{ frame: Uint8Array; counter: bigint }> {
  const c = cmd.counter ?? next();
  const { counter: _ignored, ...rest } = cmd;
  const pre = buildUpdateSecurityCredentials({ ...rest, recipient: METER, counter: c });
  const apdu = signer === undefined ? pre : await signPreCommand(pre, signer);
  return { frame: wrapWithMac(apdu, { privateKey: acbKey, publicKey: meter.kaPublicKey }), counter: c };
}

/** A hand-made CS02b frame (the library's builder would refuse it): payload fields as given. */
async function rawCredentialsFrame(meter: SimulatedMeter, originator: string, c: bigint, messageCode: number, fields: UpdateSecurityCredentialsPayload, signer: KeyObject | undefined): Promise<Uint8Array> {
  const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator, recipient: METER, messageCode, payload: encodeUpdateSecurityCredentialsPayload(fields), signatureField: 'empty' });
  const apdu = signer === undefined ? pre : await signPreCommand(pre, signer);
  return wrapWithMac(apdu, { privateKey: p('acbKa').privateKey, publicKey: meter.kaPublicKey });
}

/** ECS43 remote disconnect from `originator`, signed with `signer`, MAC'd by the ACB key given. */
async function disconnectFrame(meter: SimulatedMeter, signer: KeyObject, originator = SUPPLIER, acbKey: KeyObject = p('acbKa').privateKey, c = next()): Promise<Uint8Array> {
  const pre = buildDisableSupply({ fuel: 'electricity', originator, recipient: METER, counter: c });
  return wrapWithMac(await signPreCommand(pre, signer), { privateKey: acbKey, publicKey: meter.kaPublicKey });
}

function accepted(r: MeterResult): asserts r is MeterResult & { response: Uint8Array } {
  expect({ accepted: r.accepted, reason: r.reason, detail: r.detail }).toEqual({ accepted: true, reason: undefined, detail: undefined });
  expect(r.response).toBeInstanceOf(Uint8Array);
}

/** The meter's device-signed answer, checked with the library: header, device signature (and no other key), payload. */
function deviceSigned(meter: SimulatedMeter, bytes: Uint8Array, cra: 'response' | 'alert', code: number, to: string, c?: bigint): GbcsMessage {
  const m = parseMessage(bytes);
  expect(m.frame).toBe('signed');
  expect(m.cra).toBe(cra);
  expect(m.messageCode).toBe(code);
  expect(m.originator).toBe(METER);
  expect(m.recipient).toBe(to);
  if (c !== undefined) expect(m.originatorCounter).toBe(c);
  expect(m.signatureField).toBe('present');
  expect(verifySignature(m, meter.dsPublicKey)).toBe(true);
  expect(verifySignature(m, meter.kaPublicKey)).toBe(false);
  expect(verifySignature(m, p('supplierDs').publicKey)).toBe(false);
  return m;
}

const ski = (name: string): string => p(name).cert.subjectKeyId as string;

/** The outcome of a replaced cell: old ids from the certificate it held, new from the new one. */
function replaced(cell: TrustAnchorCell, from: string, to: string): CellOutcome {
  return { cell, status: CREDENTIALS_STATUS.success, oldEntityId: p(from).cert.entityId!, oldKeyId: ski(from), newEntityId: p(to).cert.entityId!, newKeyId: ski(to) };
}
/** The outcome of a cell that kept its certificate. */
function kept(cell: TrustAnchorCell, status: number, holder: string): CellOutcome {
  const e = p(holder).cert.entityId!;
  return { cell, status, oldEntityId: e, oldKeyId: ski(holder), newEntityId: e, newKeyId: ski(holder) };
}

/** The meter's cells as hex, for "nothing changed". */
const snapshot = (meter: SimulatedMeter) => meter.cells().map((c) => `${c.cell.role}/${c.cell.keyUsage}/${c.cell.cellUsage}:${toHex(c.certificate)}`).sort();

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
}

/** Mode 2 (supplier by supplier) rotating DS, KA and prepayment KA, with the reference data's floors ([4] = 0, [5] prepayment 0). */
const mode2 = (ds = 'supplierDs2', extra: Partial<Cmd> = {}): Cmd => ({
  mode: 2,
  originator: SUPPLIER,
  authorisingCell: DS(2),
  replacements: [
    { certificate: p(ds).cert.der, cell: DS(2) },
    { certificate: p('supplierKa2').cert.der, cell: KA(2) },
    { certificate: p('supplierPrepay2').cert.der, cell: PREPAY },
  ],
  certificationPath: [h.organisationCa.certificate.der],
  authorisingFloor: 0n,
  authorisingUsageFloors: [{ usage: 0, floor: 0n }],
  ...extra,
});

describe('CS02b mode 2: the supplier rotates its own keys (docs/domain.md §9)', () => {
  it('DS, KA and prepayment KA replaced; the device-signed response lists each cell in order with old and new ids; floors [4], [5] applied', async () => {
    const meter = newMeter();
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)));
    expect(meter.roleFloor(2)).toBeGreaterThan(0n);
    const { frame, counter: c } = await credentialsFrame(meter, mode2(), p('supplierDs').privateKey);
    // the library, reading the command as a validator would, agrees with what it built
    expect(decodeUpdateSecurityCredentialsCommand(parseMessage(frame)).entry.mode).toBe(2);

    const r = meter.receive(frame);
    accepted(r);
    const m = deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER, c);
    // docs/domain.md §9: devices write some lengths in the long form (30 82 00 CA); this meter does
    expect(toHex(m.payload.subarray(0, 2))).toBe('3082');
    expect(m.payload[2]! * 256 + m.payload[3]!).toBe(m.payload.length - 4);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(m.payload);
    expect(outcome).toBeDefined();
    expect(outcome!.sequenceNumber).toBe(c);
    expect(outcome!.mode).toBe(2);
    expect(outcome!.results).toEqual([replaced(DS(2), 'supplierDs', 'supplierDs2'), replaced(KA(2), 'supplierKa', 'supplierKa2'), replaced(PREPAY, 'supplierPrepay', 'supplierPrepay2')]);
    // the floor changes, kept by the library as the device wrote them (long form): role 2 management to 0 ([4]), role 2 prepayment (usage 0) to 0 ([5])
    expect(outcome!.floorChanges.map((f) => toHex(f))).toEqual(['30820006020102020100', '30820009020102020100020100']);
    expect(meter.roleFloor(2)).toBe(0n);
    expect(meter.roleFloor(2, 'prepayment')).toBe(0n);
    expect(toHex(meter.cell(DS(2))!)).toBe(toHex(p('supplierDs2').cert.der));
    expect(toHex(meter.cell(KA(2))!)).toBe(toHex(p('supplierKa2').cert.der));
    expect(toHex(meter.cell(PREPAY)!)).toBe(toHex(p('supplierPrepay2').cert.der));
    expect(toHex(meter.cell(DS(3))!)).toBe(toHex(p('networkDs').cert.der));
  });

  it('afterwards a command signed with the old supplier key is refused and one signed with the new key accepted; its payload is for the new KA key', async () => {
    const meter = newMeter();
    accepted(meter.receive((await credentialsFrame(meter, mode2(), p('supplierDs').privateKey)).frame));
    const old = meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey));
    expect(old.reason).toBe('signature-invalid');
    const c = next();
    const r = meter.receive(await disconnectFrame(meter, p('supplierDs2').privateKey, SUPPLIER, p('acbKa').privateKey, c));
    accepted(r);
    expect(meter.floor(SUPPLIER)).toBe(c);
    const m = deviceSigned(meter, r.response, 'response', 0x0050, SUPPLIER, c);
    // docs/domain.md §4 sensitive payload: DA 20 ctr(3) 00 01 00 09 len value; mode 04 with the supplier's KA key
    const sensitive = m.payload.slice(10);
    expect(decryptPayload(m, sensitive, { privateKey: p('supplierKa2').privateKey, publicKey: meter.kaPublicKey })).toEqual(r.sensitivePlaintext);
    expect(codeOf(() => decryptPayload(m, sensitive, { privateKey: p('supplierKa').privateKey, publicKey: meter.kaPublicKey }))).toBeDefined();
  });

  it('a meter that writes minimal DER lengths is read the same', async () => {
    const meter = newMeter({ credentialsLengths: 'minimal' });
    const { frame, counter: c } = await credentialsFrame(meter, mode2(), p('supplierDs').privateKey);
    const r = meter.receive(frame);
    accepted(r);
    const m = deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER, c);
    expect(m.payload[1]).toBe(0x81); // 30 81 xx: minimal for a length of 128 to 255
    const { outcome } = decodeUpdateSecurityCredentialsResponse(m.payload);
    expect(outcome!.results.map((o) => o.status)).toEqual([0, 0, 0]);
    expect(outcome!.floorChanges.map((f) => toHex(f))).toEqual(['3006020102020100', '3009020102020100020100']);
  });
});

describe('CS02b mode 8: the Recovery party replaces a compromised supplier key (docs/domain.md §9)', () => {
  const mode8 = (extra: Partial<Cmd> = {}): Cmd => ({
    mode: 8,
    originator: RECOVERY,
    authorisingCell: DS(1),
    replacements: [
      { certificate: p('supplierDs2').cert.der, cell: DS(2) },
      { certificate: p('supplierKa2').cert.der, cell: KA(2) },
    ],
    certificationPath: [h.organisationCa.certificate.der],
    otherRoleFloors: [2, 3, 4, 5].map((role) => ({ role, floor: 0n })),
    ...extra,
  });

  it("signed with the recovery cell's key: the supplier's cells replaced, roles 2-5 floors reset, the compromised key refused afterwards", async () => {
    const meter = newMeter();
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)));
    const { frame, counter: c } = await credentialsFrame(meter, mode8({ signerCertificate: p('recoveryDs').cert }), p('recoveryDs').privateKey);
    const r = meter.receive(frame);
    accepted(r);
    const m = deviceSigned(meter, r.response, 'response', 0x0108, RECOVERY, c);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(m.payload);
    expect(outcome!.mode).toBe(8);
    expect(outcome!.sequenceNumber).toBe(c);
    expect(outcome!.results).toEqual([replaced(DS(2), 'supplierDs', 'supplierDs2'), replaced(KA(2), 'supplierKa', 'supplierKa2')]);
    expect(outcome!.floorChanges.map((f) => toHex(f))).toEqual([2, 3, 4, 5].map((role) => `3082000602010${role}020100`));
    expect(meter.roleFloor(2)).toBe(0n);
    expect(meter.roleFloor(1)).toBe(c);
    expect(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)).reason).toBe('signature-invalid');
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs2').privateKey)));
  });

  it('mode 8 from the supplier (its own originator id and key) is refused: not the party in the recovery cell; the library refuses the signer too', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...mode8({ originator: SUPPLIER, signerCertificate: p('supplierDs').cert }), recipient: METER, counter: next() }))).toBe('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH');
    const r = meter.receive((await credentialsFrame(meter, mode8({ originator: SUPPLIER }), p('supplierDs').privateKey)).frame);
    expect(r.reason).toBe('credentials-originator');
    expect(snapshot(meter)).toEqual(before);
    expect(meter.roleFloor(1)).toBeUndefined();
  });

  it("mode 8 under the recovery party's id but signed with the (compromised) supplier key is refused: signature-invalid", async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const r = meter.receive((await credentialsFrame(meter, mode8(), p('supplierDs').privateKey)).frame);
    expect(r.reason).toBe('signature-invalid');
    expect(snapshot(meter)).toEqual(before);
    expect(meter.roleFloor(1)).toBeUndefined();
  });

  it('mode 8 cannot replace the root cell: the library refuses to build it, the meter refuses a hand-made one', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const fields: UpdateSecurityCredentialsPayload = { mode: 8, disapplyTimeChecks: true, authorisingCell: DS(1), sequenceNumber: 0n, replacements: [{ certificate: foreign.root.certificate.der, cell: ROOT_CELL }], certificationPath: [] };
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...mode8({ replacements: [{ certificate: foreign.root.certificate.der, cell: ROOT_CELL }] }), recipient: METER, counter: next() }))).toBe('ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED');
    const c = next();
    const r = meter.receive(await rawCredentialsFrame(meter, RECOVERY, c, 0x0108, { ...fields, sequenceNumber: c }, p('recoveryDs').privateKey));
    expect(r.reason).toBe('credentials-cell-not-allowed');
    expect(snapshot(meter)).toEqual(before);
  });
});

describe('CS02b mode 4: the ACB replaces its own KA key, unsigned, the ACB MAC alone authorising it (docs/domain.md §9)', () => {
  const cmd4 = (): Cmd => ({ mode: 4, originator: ACB, replacements: [{ certificate: p('acbKa2').cert.der, cell: KA(4) }], certificationPath: [h.organisationCa.certificate.der] });

  it('accepted with an empty signature field; afterwards only the new ACB KA key MACs commands the meter accepts', async () => {
    const meter = newMeter();
    const { frame, counter: c } = await credentialsFrame(meter, cmd4(), undefined);
    expect(parseMessage(frame).signature).toBeNull();
    const r = meter.receive(frame);
    accepted(r);
    const m = deviceSigned(meter, r.response, 'response', 0x0104, ACB, c);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(m.payload);
    expect(outcome!.results).toEqual([replaced(KA(4), 'acbKa', 'acbKa2')]);
    expect(outcome!.floorChanges).toEqual([]);
    expect(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)).reason).toBe('mac-invalid');
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey, SUPPLIER, p('acbKa2').privateKey)));
  });

  it('a mode 4 command that carries a User signature is refused, and one MACd by another key too', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const signed = await credentialsFrame(meter, cmd4(), p('acbDs').privateKey);
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(parseMessage(signed.frame)))).toBe('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH');
    expect(meter.receive(signed.frame).reason).toBe('credentials-signature-unexpected');
    expect(meter.receive((await credentialsFrame(meter, cmd4(), undefined, p('acbKa2').privateKey)).frame).reason).toBe('mac-invalid');
    expect(snapshot(meter)).toEqual(before);
  });
});

describe('CS02b mode 7: the transitional change of supplier installs the gaining supplier (docs/domain.md §9)', () => {
  it("signed by the transitional CoS party; the supplier's cells hold the gaining supplier's certificates, [6] resets the supplier's floor; the old supplier is no longer known", async () => {
    const meter = newMeter();
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)));
    const cmd: Cmd = {
      mode: 7,
      originator: TRANS_COS,
      authorisingCell: DS(5),
      replacements: [
        { certificate: p('supplierBDs').cert.der, cell: DS(2) },
        { certificate: p('supplierBKa').cert.der, cell: KA(2) },
        { certificate: p('supplierBPrepay').cert.der, cell: PREPAY },
      ],
      certificationPath: [h.organisationCa.certificate.der],
      otherRoleFloors: [{ role: 2, floor: 0n, usageFloors: [{ usage: 0, floor: 0n }] }],
    };
    const { frame, counter: c } = await credentialsFrame(meter, cmd, p('transCosDs').privateKey);
    const r = meter.receive(frame);
    accepted(r);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(deviceSigned(meter, r.response, 'response', 0x0107, TRANS_COS, c).payload);
    expect(outcome!.results).toEqual([replaced(DS(2), 'supplierDs', 'supplierBDs'), replaced(KA(2), 'supplierKa', 'supplierBKa'), replaced(PREPAY, 'supplierPrepay', 'supplierBPrepay')]);
    expect(outcome!.floorChanges.map((f) => toHex(f))).toEqual(['30820006020102020100', '30820009020102020100020100']);
    expect(meter.roleFloor(5)).toBe(c);
    expect(meter.roleFloor(2)).toBe(0n);
    expect(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)).reason).toBe('unknown-originator');
    accepted(meter.receive(await disconnectFrame(meter, p('supplierBDs').privateKey, SUPPLIER_B)));
    expect(meter.floor(SUPPLIER_B)).toBe(counter);
  });

  it('mode 7 signed by the supplier it replaces is refused', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const cmd: Cmd = { mode: 7, originator: TRANS_COS, authorisingCell: DS(5), replacements: [{ certificate: p('supplierBDs').cert.der, cell: DS(2) }], certificationPath: [h.organisationCa.certificate.der] };
    expect(meter.receive((await credentialsFrame(meter, cmd, p('supplierDs').privateKey)).frame).reason).toBe('signature-invalid');
    expect(snapshot(meter)).toEqual(before);
  });
});

describe('CS02b modes 3, 5 and 6: each party replaces its own cell (docs/domain.md §9)', () => {
  it.each([
    [3, NETWORK, DS(3), 'networkDs', KA(3), 'networkKa', 'networkKa2', 0x0103],
    [5, WAN, DS(6), 'wanDs', DS(6), 'wanDs', 'wanDs2', 0x0105],
    [6, TRANS_COS, DS(5), 'transCosDs', KA(5), 'transCosKa', 'transCosKa2', 0x0106],
  ] as const)('mode %i from %s: replaced; the authorising key of another mode is refused', async (mode, originator, authorising, signerName, target, from, to, code) => {
    const meter = newMeter();
    const cmd: Cmd = { mode, originator, authorisingCell: authorising, replacements: [{ certificate: p(to).cert.der, cell: target }], certificationPath: [h.organisationCa.certificate.der] };
    // signed by the supplier instead of the mode's party: refused, nothing changes
    const before = snapshot(meter);
    expect(meter.receive((await credentialsFrame(meter, cmd, p('supplierDs').privateKey)).frame).reason).toBe('signature-invalid');
    expect(snapshot(meter)).toEqual(before);
    const { frame, counter: c } = await credentialsFrame(meter, cmd, p(signerName).privateKey);
    const r = meter.receive(frame);
    accepted(r);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(deviceSigned(meter, r.response, 'response', code, originator, c).payload);
    expect(outcome!.mode).toBe(mode);
    expect(outcome!.results).toEqual([replaced(target, from, to)]);
    expect(toHex(meter.cell(target)!)).toBe(toHex(p(to).cert.der));
  });

  it('mode 5 (WAN provider) replaces its DS cell: the next mode 5 command must be signed with the new key', async () => {
    const meter = newMeter();
    const cmd = (cert: string): Cmd => ({ mode: 5, originator: WAN, authorisingCell: DS(6), replacements: [{ certificate: p(cert).cert.der, cell: DS(6) }], certificationPath: [h.organisationCa.certificate.der] });
    accepted(meter.receive((await credentialsFrame(meter, cmd('wanDs2'), p('wanDs').privateKey)).frame));
    expect(meter.receive((await credentialsFrame(meter, cmd('wanDs'), p('wanDs').privateKey)).frame).reason).toBe('signature-invalid');
    accepted(meter.receive((await credentialsFrame(meter, cmd('wanDs'), p('wanDs2').privateKey)).frame));
    expect(toHex(meter.cell(DS(6))!)).toBe(toHex(p('wanDs').cert.der));
  });
});

describe('CS02b future-dated: SEQUENCE { NULL } now, alert 0x00CB when executed (docs/domain.md §9)', () => {
  const AT = new Date('2030-01-01T00:00:00Z');

  it('answered with SEQUENCE { NULL } (device long form), nothing changes until its time; then the alert 0x8F66 with the outcome; the new key takes over', async () => {
    const meter = newMeter();
    const { frame, counter: c } = await credentialsFrame(meter, mode2('supplierDs2', { executionTime: AT }), p('supplierDs').privateKey);
    expect(decodeUpdateSecurityCredentialsCommand(parseMessage(frame)).payload.disapplyTimeChecks).toBeUndefined();
    const before = snapshot(meter);
    const r = meter.receive(frame);
    accepted(r);
    expect(r.scheduled).toBe(true);
    const m = deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER, c);
    expect(toHex(m.payload)).toBe('308200020500');
    expect(decodeUpdateSecurityCredentialsResponse(m.payload)).toEqual({});
    expect(snapshot(meter)).toEqual(before);
    expect(meter.pendingCredentials).toBe(1);
    // before its time: nothing; the old key still works
    expect(meter.runScheduled(new Date(AT.getTime() - 1000))).toEqual([]);
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)));
    expect(snapshot(meter)).toEqual(before);

    const when = new Date(AT.getTime() + 5000);
    const alerts = meter.runScheduled(when);
    expect(alerts).toHaveLength(1);
    expect(meter.pendingCredentials).toBe(0);
    const a = deviceSigned(meter, alerts[0]!, 'alert', 0x00cb, SUPPLIER);
    expect(toHex(a.payload.subarray(0, 2))).toBe('3082');
    const alert = decodeCredentialsAlert(a.payload);
    expect(alert.code).toBe(CREDENTIALS_ALERT_CODES.success);
    expect(alert.executionTime).toEqual(when);
    expect(alert.outcome.sequenceNumber).toBe(c);
    expect(alert.outcome.mode).toBe(2);
    expect(alert.outcome.results).toEqual([replaced(DS(2), 'supplierDs', 'supplierDs2'), replaced(KA(2), 'supplierKa', 'supplierKa2'), replaced(PREPAY, 'supplierPrepay', 'supplierPrepay2')]);
    expect(meter.roleFloor(2)).toBe(0n);
    expect(meter.runScheduled(new Date(AT.getTime() + 60_000))).toEqual([]);
    expect(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)).reason).toBe('signature-invalid');
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs2').privateKey)));
  });

  it('a future-dated replacement whose certificate does not chain: alert 0x8F67, the cell kept, the others replaced', async () => {
    const meter = newMeter();
    const { frame } = await credentialsFrame(meter, mode2('supplierDsForeign', { executionTime: AT }), p('supplierDs').privateKey);
    accepted(meter.receive(frame));
    const [alertBytes, ...more] = meter.runScheduled(AT);
    expect(more).toEqual([]);
    const alert = decodeCredentialsAlert(deviceSigned(meter, alertBytes!, 'alert', 0x00cb, SUPPLIER).payload);
    expect(alert.code).toBe(CREDENTIALS_ALERT_CODES.failure);
    expect(alert.outcome.results).toEqual([kept(DS(2), CREDENTIALS_STATUS.badCertificate, 'supplierDs'), replaced(KA(2), 'supplierKa', 'supplierKa2'), replaced(PREPAY, 'supplierPrepay', 'supplierPrepay2')]);
    expect(alert.outcome.floorChanges).toEqual([]);
    expect(toHex(meter.cell(DS(2))!)).toBe(toHex(p('supplierDs').cert.der));
  });
});

describe('CS02b per-cell failure: a bad certificate fails its cell only, with its old ids (docs/domain.md §9 status 5)', () => {
  it.each([
    ['its CA is in the path but not signed by the root cell', () => [h.organisationCa.certificate.der, foreign.organisationCa.certificate.der]],
    ['its CA is not in the path', () => [h.organisationCa.certificate.der]],
    ['the path holds only its own CA (so nothing chains)', () => [foreign.organisationCa.certificate.der]],
  ] as const)('a DS certificate from a CA that does not chain to the root (%s)', async (name, path) => {
    const meter = newMeter();
    const { frame, counter: c } = await credentialsFrame(meter, mode2('supplierDsForeign', { certificationPath: path() }), p('supplierDs').privateKey);
    const r = meter.receive(frame);
    accepted(r);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER, c).payload);
    const ok = !name.startsWith('the path holds only');
    expect(outcome!.results).toEqual(
      ok
        ? [kept(DS(2), CREDENTIALS_STATUS.badCertificate, 'supplierDs'), replaced(KA(2), 'supplierKa', 'supplierKa2'), replaced(PREPAY, 'supplierPrepay', 'supplierPrepay2')]
        : [kept(DS(2), 5, 'supplierDs'), kept(KA(2), 5, 'supplierKa'), kept(PREPAY, 5, 'supplierPrepay')],
    );
    // a partly failed command changes no floor (the simulator's rule: a replay cannot reopen counters)
    expect(outcome!.floorChanges).toEqual([]);
    expect(meter.roleFloor(2)).toBe(c);
    expect(toHex(meter.cell(DS(2))!)).toBe(toHex(p('supplierDs').cert.der));
    accepted(meter.receive(await disconnectFrame(meter, p('supplierDs').privateKey)));
  });

  it.each([
    ['a KA certificate in the DS cell (wrong key usage)', 'supplierKa2'],
    ["the network operator's DS certificate in the supplier's DS cell (wrong role)", 'networkDs'],
  ] as const)('%s: the library refuses to build it; a hand-made command gets status 5 for that cell only', async (_name, wrong) => {
    const meter = newMeter();
    const replacements = [
      { certificate: p(wrong).cert.der, cell: DS(2) },
      { certificate: p('supplierKa2').cert.der, cell: KA(2) },
    ];
    const base = { ...mode2(), replacements };
    expect(codeOf(() => buildUpdateSecurityCredentials({ ...base, recipient: METER, counter: next() }))).toMatch(/^ERR_GBCS_CREDENTIALS_CERTIFICATE_(KEY_USAGE|ROLE)$/);
    const c = next();
    const fields: UpdateSecurityCredentialsPayload = { mode: 2, disapplyTimeChecks: true, authorisingCell: DS(2), sequenceNumber: c, replacements, certificationPath: [h.organisationCa.certificate.der] };
    const r = meter.receive(await rawCredentialsFrame(meter, SUPPLIER, c, 0x0102, fields, p('supplierDs').privateKey));
    accepted(r);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER, c).payload);
    expect(outcome!.results).toEqual([kept(DS(2), CREDENTIALS_STATUS.badCertificate, 'supplierDs'), replaced(KA(2), 'supplierKa', 'supplierKa2')]);
    expect(toHex(meter.cell(DS(2))!)).toBe(toHex(p('supplierDs').cert.der));
  });

  it("the path CA's subject does not name the certificate's issuer (same key, another name): status 5 (RFC 5280 6.1.3 name chaining)", async () => {
    // A CA certificate signed by the meter's root key, with the organisation CA's key but the device CA's name.
    const renamed = await createHierarchy({ signers: { root: h.root.signer, deviceCa: h.organisationCa.signer } });
    const meter = newMeter();
    const { frame } = await credentialsFrame(meter, mode2('supplierDs2', { certificationPath: [renamed.deviceCa.certificate.der] }), p('supplierDs').privateKey);
    const r = meter.receive(frame);
    accepted(r);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER).payload);
    expect(outcome!.results).toEqual([kept(DS(2), 5, 'supplierDs'), kept(KA(2), 5, 'supplierKa'), kept(PREPAY, 5, 'supplierPrepay')]);
  });

  it('a path certificate signed by the root that is not a CA (cA FALSE) cannot issue a replacement: status 5; the same with cA TRUE chains', async () => {
    // Hand-made: the organisation CA's TBSCertificate with another key and, in one copy, basicConstraints
    // cA FALSE, re-signed by the root; and supplierDs2's TBSCertificate re-signed by that other key.
    const der = (tag: number, ...parts: Uint8Array[]): Uint8Array => {
      const v = concatBytes(...parts);
      const len = v.length < 0x80 ? [v.length] : v.length < 0x100 ? [0x81, v.length] : [0x82, v.length >> 8, v.length & 0xff];
      return concatBytes(Uint8Array.of(tag, ...len), v);
    };
    const ECDSA_SHA256 = Uint8Array.of(0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02);
    const certificate = (tbs: Uint8Array, derSignature: Uint8Array) => der(0x30, tbs, ECDSA_SHA256, der(0x03, Uint8Array.of(0), derSignature));
    const replaceOnce = (bytes: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array => {
      const hex = toHex(bytes);
      const f = toHex(from);
      expect(hex.split(f).length).toBe(2);
      return Uint8Array.from(Buffer.from(hex.replace(f, toHex(to)), 'hex'));
    };
    const other = p256();
    const otherPoint = new Uint8Array(other.publicKey.export({ format: 'der', type: 'spki' }).subarray(-65));
    const oca = h.organisationCa.certificate;
    const tbsCa = replaceOnce(oca.tbsDer, oca.publicKeyBytes, otherPoint);
    const tbsNotCa = replaceOnce(tbsCa, Uint8Array.of(0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00), Uint8Array.of(0x30, 0x06, 0x01, 0x01, 0x00, 0x02, 0x01, 0x00));
    const byRoot = async (tbs: Uint8Array) => certificate(tbs, p1363ToDer(await h.root.signer.sign(tbs)));
    const leafTbs = p('supplierDs2').cert.tbsDer;
    const leaf = certificate(leafTbs, new Uint8Array(sign('sha256', leafTbs, { key: other.privateKey, dsaEncoding: 'der' })));
    const run = async (pathCert: Uint8Array) => {
      const meter = newMeter();
      const cmd = { ...mode2(), replacements: [{ certificate: leaf, cell: DS(2) }], certificationPath: [pathCert] };
      const r = meter.receive((await credentialsFrame(meter, cmd, p('supplierDs').privateKey)).frame);
      accepted(r);
      return decodeUpdateSecurityCredentialsResponse(deviceSigned(meter, r.response, 'response', 0x0102, SUPPLIER).payload).outcome!.results[0]!.status;
    };
    expect(await run(await byRoot(tbsNotCa))).toBe(CREDENTIALS_STATUS.badCertificate);
    expect(await run(await byRoot(tbsCa))).toBe(CREDENTIALS_STATUS.success);
  });

  it('a meter with no root cell replaces nothing: status 10 (no trust anchor) for every cell', async () => {
    const meter = newMeter();
    const cells = meter.cells().filter((x) => x.cell.role !== 0);
    const bare = new SimulatedMeter({ eui64: METER, cells, criticalCodes: [0x0050], ds: meter.ds, ka: meter.ka });
    const { frame } = await credentialsFrame(bare, mode2(), p('supplierDs').privateKey);
    const r = bare.receive(frame);
    accepted(r);
    const { outcome } = decodeUpdateSecurityCredentialsResponse(deviceSigned(bare, r.response, 'response', 0x0102, SUPPLIER).payload);
    expect(outcome!.results.map((o) => o.status)).toEqual([CREDENTIALS_STATUS.noTrustAnchor, 10, 10]);
  });
});

describe('CS02b refusals: the whole command refused, the cells unchanged (docs/domain.md §9, §6)', () => {
  it('[3] not the header counter: the meter refuses it, and so does the library reading it', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const c = next();
    const fields: UpdateSecurityCredentialsPayload = {
      mode: 2, disapplyTimeChecks: true, authorisingCell: DS(2), sequenceNumber: c - 1n,
      replacements: [{ certificate: p('supplierDs2').cert.der, cell: DS(2) }], certificationPath: [h.organisationCa.certificate.der],
    };
    const frame = await rawCredentialsFrame(meter, SUPPLIER, c, 0x0102, fields, p('supplierDs').privateKey);
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(parseMessage(frame)))).toBe('ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH');
    const r = meter.receive(frame);
    expect(r.reason).toBe('credentials-sequence');
    expect(snapshot(meter)).toEqual(before);
    expect(meter.roleFloor(2)).toBeUndefined();
    // the same with [3] right is accepted (the refusal was [3] alone)
    accepted(meter.receive(await rawCredentialsFrame(meter, SUPPLIER, next(), 0x0102, { ...fields, sequenceNumber: counter }, p('supplierDs').privateKey)));
  });

  it('payload mode not the message code mode: refused by both', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const c = next();
    const fields: UpdateSecurityCredentialsPayload = { mode: 2, disapplyTimeChecks: true, authorisingCell: DS(2), sequenceNumber: c, replacements: [{ certificate: p('supplierDs2').cert.der, cell: DS(2) }], certificationPath: [h.organisationCa.certificate.der] };
    const frame = await rawCredentialsFrame(meter, SUPPLIER, c, 0x0103, fields, p('supplierDs').privateKey);
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(parseMessage(frame)))).toBe('ERR_GBCS_CREDENTIALS_MODE_MISMATCH');
    expect(meter.receive(frame).reason).toBe('credentials-mode');
    expect(snapshot(meter)).toEqual(before);
  });

  it('a replayed command (the same frame twice) and a counter below the floor are refused', async () => {
    const meter = newMeter();
    const cmd: Cmd = { mode: 3, originator: NETWORK, authorisingCell: DS(3), replacements: [{ certificate: p('networkKa2').cert.der, cell: KA(3) }], certificationPath: [h.organisationCa.certificate.der] };
    const { frame, counter: c } = await credentialsFrame(meter, cmd, p('networkDs').privateKey);
    accepted(meter.receive(frame));
    const after = snapshot(meter);
    expect(meter.receive(frame).reason).toBe('counter-replayed');
    expect(snapshot(meter)).toEqual(after);
    expect(meter.roleFloor(3)).toBe(c);
    // a fresh command whose counter is below the role's floor
    const back = { ...cmd, replacements: [{ certificate: p('networkKa').cert.der, cell: KA(3) }], counter: c - 5n };
    expect(meter.receive((await credentialsFrame(meter, back, p('networkDs').privateKey)).frame).reason).toBe('counter-replayed');
    expect(snapshot(meter)).toEqual(after);
  });

  it('an authorising cell [2] other than the mode names is refused', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const c = next();
    const fields: UpdateSecurityCredentialsPayload = { mode: 2, disapplyTimeChecks: true, authorisingCell: DS(3), sequenceNumber: c, replacements: [{ certificate: p('supplierDs2').cert.der, cell: DS(2) }], certificationPath: [h.organisationCa.certificate.der] };
    expect(meter.receive(await rawCredentialsFrame(meter, SUPPLIER, c, 0x0102, fields, p('supplierDs').privateKey)).reason).toBe('credentials-authorising-cell');
    expect(snapshot(meter)).toEqual(before);
  });

  it('a mode 2 command that targets the network operator cell is refused whole', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    const c = next();
    const fields: UpdateSecurityCredentialsPayload = {
      mode: 2, disapplyTimeChecks: true, authorisingCell: DS(2), sequenceNumber: c,
      replacements: [{ certificate: p('supplierDs2').cert.der, cell: DS(2) }, { certificate: p('networkKa2').cert.der, cell: KA(3) }],
      certificationPath: [h.organisationCa.certificate.der],
    };
    expect(meter.receive(await rawCredentialsFrame(meter, SUPPLIER, c, 0x0102, fields, p('supplierDs').privateKey)).reason).toBe('credentials-cell-not-allowed');
    expect(snapshot(meter)).toEqual(before);
  });

  it.each([
    ['trailing byte', (d: Uint8Array) => concatBytes(d, Uint8Array.of(0))],
    ['truncated', (d: Uint8Array) => d.subarray(0, d.length - 1)],
    ['control [3] missing', (d: Uint8Array) => {
      const hex = toHex(d);
      const i = hex.indexOf('8306'); // [3] of a 6-byte counter, right after [2]
      expect(i).toBeGreaterThan(0);
      return Uint8Array.from(Buffer.from(hex.slice(0, i) + '8406' + hex.slice(i + 4), 'hex')); // retagged [4]
    }],
  ] as const)('a payload that is not the §9 layout (%s) is refused as malformed; the library agrees', async (_name, mangle) => {
    const meter = newMeter();
    const before = snapshot(meter);
    const c = next();
    const good = encodeUpdateSecurityCredentialsPayload({ mode: 2, disapplyTimeChecks: true, authorisingCell: DS(2), sequenceNumber: c, replacements: [{ certificate: p('supplierDs2').cert.der, cell: DS(2) }], certificationPath: [h.organisationCa.certificate.der] });
    const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: METER, messageCode: 0x0102, payload: mangle(good), signatureField: 'empty' });
    const frame = wrapWithMac(await signPreCommand(pre, p('supplierDs').privateKey), { privateKey: p('acbKa').privateKey, publicKey: meter.kaPublicKey });
    expect(codeOf(() => decodeUpdateSecurityCredentialsCommand(parseMessage(frame)))).toBe('ERR_GBCS_MALFORMED');
    expect(meter.receive(frame).reason).toBe('credentials-malformed');
    expect(snapshot(meter)).toEqual(before);
    expect(meter.roleFloor(2)).toBeUndefined();
  });

  it('unsigned mode 2 is refused (signature-missing), and a flipped bit in the payload breaks the signature', async () => {
    const meter = newMeter();
    const before = snapshot(meter);
    expect(meter.receive((await credentialsFrame(meter, mode2(), undefined)).frame).reason).toBe('signature-missing');
    const c = next();
    const pre = buildUpdateSecurityCredentials({ ...mode2(), recipient: METER, counter: c });
    const signed = await signPreCommand(pre, p('supplierDs').privateKey);
    const m = parseMessage(signed);
    const tampered = signed.slice();
    tampered[m.signedRange.end - 20]! ^= 0x01; // inside the last certificate of the path
    const frame = wrapWithMac(tampered, { privateKey: p('acbKa').privateKey, publicKey: meter.kaPublicKey });
    expect(meter.receive(frame).reason).toBe('signature-invalid');
    expect(snapshot(meter)).toEqual(before);
  });
});
