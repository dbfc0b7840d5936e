/**
 * Writes the validator's decision vectors, test-vectors/validator/decisions.json, from fixed
 * seeds (docs/validator.md; docs/domain.md §3–§7):
 *
 * - `world`: an SMKI hierarchy, a supplier with two portfolio signing keys, a second supplier, a
 *   network operator, the ACB's key-agreement key (a test key, published on purpose), four
 *   meters with their key-agreement certificates and trust-anchor cells, the organisation CRL and
 *   the ARL, the firmware allowlist, and the validator's settings (time, clock window).
 * - `cases`: one command each (after `prior` commands that must be accepted), or one batch, with
 *   the expected outcome, code and, for accepted commands, the exact MAC'd frame. Every rule of
 *   the decision has a case that breaks exactly it.
 *
 * Reproducible byte for byte: keys from labels, RFC 6979 signatures, fixed times and serials
 * (scripts/vectors/deterministic.ts); ECDH, the KDF and AES-GCM are deterministic. Before writing,
 * every case is run through the validator (memory stores) and the generator refuses to write when
 * one does not decide as declared. `--check` compares with the file instead of writing (exit 1 on
 * a difference); test/validator-vectors.test.ts runs it and runs every case.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEui64, toHex, type Eui64, type Signer } from '../packages/core/src/index.js';
import {
  createHierarchy,
  issueCrl,
  issueDeviceCertificate,
  issueOrganisationCertificate,
  type SmkiCertificate,
  type SmkiCrl,
} from '../packages/pki/src/index.js';
import {
  buildActivateFirmware,
  buildDisableSupply,
  buildGeneralCiphering,
  buildGeneralSigning,
  encodeSupplyPayload,
  parseMessage,
  signPreCommand,
} from '../packages/gbcs/src/index.js';
import type { DeviceRecord } from '../packages/store/src/index.js';
import { seededPrivateKey, seededRandom, seededSigner } from './vectors/deterministic.js';
import { writeOrCheck } from './vectors/output.js';
import { runVectorCase, type HexDeviceRecord, type ValidatorVectorCase, type ValidatorVectorWorld } from './vectors/validator-world.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'test-vectors', 'validator');
const GENERATOR = 'scripts/generate-validator-vectors.ts';
const check = process.argv.includes('--check');

const NOT_BEFORE = new Date('2025-01-01T00:00:00Z');
const NOW = new Date('2026-06-01T12:00:00Z');
const NOW_MS = BigInt(NOW.getTime());
const SUPPLIER = parseEui64('90B3D51F30010000');
const OTHER_SUPPLIER = parseEui64('90B3D51F30020000');
const NETWORK_OPERATOR = parseEui64('90B3D51F30030000');
const ACB = parseEui64('90B3D51F30000004');
const STRANGER = parseEui64('90B3D51F30090000');
const MODEL = 'ACME-ESME-1';
const IMAGE = createHash('sha256').update('approved image').digest();
const REVOKED_IMAGE = createHash('sha256').update('vulnerable image').digest();
const UNKNOWN_IMAGE = createHash('sha256').update('unknown image').digest();

// ---- the world
const common = (label: string) => ({ notBefore: NOT_BEFORE, now: () => NOT_BEFORE, random: seededRandom(`validator/${label}`) });
const pub = (label: string) => createPublicKey(seededPrivateKey(`validator/${label}`));
const signer = (label: string): Signer => seededSigner(`validator/${label}`);
const hierarchy = await createHierarchy({
  signers: { root: signer('root'), organisationCa: signer('organisation-ca'), deviceCa: signer('device-ca') },
  ...common('hierarchy'),
});
const org = (label: string, role: number, entityId: Eui64, keyUsage: 'digitalSignature' | 'keyAgreement') =>
  issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role, entityId, keyUsage, publicKey: pub(label), ...common(label) });
const portfolioA = await org('supplier-ds-a', 2, SUPPLIER, 'digitalSignature');
const portfolioB = await org('supplier-ds-b', 2, SUPPLIER, 'digitalSignature');
const otherSupplier = await org('other-supplier-ds', 2, OTHER_SUPPLIER, 'digitalSignature');
const networkOperator = await org('network-operator-ds', 3, NETWORK_OPERATOR, 'digitalSignature');
const supplierKa = await org('supplier-ka', 2, SUPPLIER, 'keyAgreement');
const acb = await org('acb-ka', 4, ACB, 'keyAgreement');
const foreignHierarchy = await createHierarchy({
  signers: { root: signer('foreign-root'), organisationCa: signer('foreign-organisation-ca'), deviceCa: signer('foreign-device-ca') },
  ...common('foreign-hierarchy'),
});
const foreignSupplier = await issueOrganisationCertificate({
  issuer: foreignHierarchy.organisationCa,
  role: 2,
  entityId: SUPPLIER,
  keyUsage: 'digitalSignature',
  publicKey: pub('foreign-supplier-ds'),
  ...common('foreign-supplier-ds'),
});
const SIGNERS = { a: signer('supplier-ds-a'), b: signer('supplier-ds-b'), other: signer('other-supplier-ds'), no: signer('network-operator-ds'), foreign: signer('foreign-supplier-ds') };

const meterEui = (n: number) => parseEui64(`00DB12340000000${n}`);
const meters: { eui: Eui64; cert: SmkiCertificate; portfolio: SmkiCertificate }[] = [];
for (let i = 0; i < 4; i++) {
  const eui = meterEui(i);
  const cert = await issueDeviceCertificate({ issuer: hierarchy.deviceCa, entityId: eui, keyUsage: 'keyAgreement', publicKey: pub(`meter-${i}-ka`), ...common(`meter-${i}-ka`) });
  meters.push({ eui, cert, portfolio: i === 2 ? portfolioB : portfolioA });
}
const record = (i: number, patch: Partial<DeviceRecord> = {}): DeviceRecord => {
  const m = meters[i]!;
  return {
    device: m.eui,
    type: 'ESME',
    fuel: 'electricity',
    model: MODEL,
    supplier: SUPPLIER,
    networkOperator: NETWORK_OPERATOR,
    cells: [
      { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: m.portfolio.subjectKeyId!, entity: SUPPLIER },
      { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: networkOperator.subjectKeyId!, entity: NETWORK_OPERATOR },
    ],
    keyAgreementCertificate: m.cert.der,
    ...patch,
  };
};

async function crls(o: { revoked?: SmkiCertificate[]; thisUpdate?: Date; nextUpdate?: Date; number: bigint }): Promise<SmkiCrl[]> {
  const thisUpdate = o.thisUpdate ?? new Date(NOW.getTime() - 3600_000);
  const nextUpdate = o.nextUpdate ?? new Date(NOW.getTime() + 7 * 24 * 3600_000);
  const revoked = (o.revoked ?? []).map((c) => ({ serialNumber: c.serialNumber, revocationDate: thisUpdate }));
  return [
    await issueCrl({ issuer: { certificate: hierarchy.organisationCa.certificate, signer: signer('organisation-ca') }, crlNumber: o.number, kind: 'crl', revoked, thisUpdate, nextUpdate }),
    await issueCrl({ issuer: { certificate: hierarchy.root.certificate, signer: signer('root') }, crlNumber: o.number, kind: 'arl', thisUpdate, nextUpdate }),
  ];
}

const LATER = new Date(portfolioA.notAfter.getTime() + 1000);
const crlSets: Record<string, SmkiCrl[]> = {
  current: await crls({ number: 1n }),
  revokedA: await crls({ revoked: [portfolioA], number: 2n }),
  expired: await crls({ thisUpdate: new Date(NOW.getTime() - 48 * 3600_000), nextUpdate: new Date(NOW.getTime() - 1000), number: 3n }),
  later: await crls({ thisUpdate: new Date(LATER.getTime() - 3600_000), nextUpdate: new Date(LATER.getTime() + 3600_000), number: 4n }),
};

const hexRecord = (r: DeviceRecord): HexDeviceRecord => {
  const { keyAgreementCertificate, digitalSignatureCertificate: _ds, ...rest } = r;
  return { ...rest, ...(keyAgreementCertificate ? { keyAgreementCertificate: toHex(keyAgreementCertificate) } : {}) };
};

const world: ValidatorVectorWorld = {
  now: NOW.toISOString(),
  counterClockWindowMs: 300_000,
  certificates: [hierarchy.root.certificate, hierarchy.organisationCa.certificate, hierarchy.deviceCa.certificate, portfolioA, portfolioB, otherSupplier, networkOperator, supplierKa, acb, foreignSupplier].map((c) => toHex(c.der)),
  crls: Object.fromEntries(Object.entries(crlSets).map(([k, v]) => [k, v.map((c) => toHex(c.der))])),
  acbPrivateKey: toHex(seededPrivateKey('validator/acb-ka').export({ format: 'der', type: 'pkcs8' })),
  acbKeyId: 'acb-ka-1',
  devices: [0, 1, 2, 3].map((i) => hexRecord(i === 3 ? (({ model: _m, ...r }) => r)(record(3)) : record(i))),
  firmware: { model: MODEL, approved: [toHex(IMAGE), toHex(REVOKED_IMAGE)], revoked: [toHex(REVOKED_IMAGE)] },
  meterKeys: [0, 1, 2, 3].map((i) => toHex(seededPrivateKey(`validator/meter-${i}-ka`).export({ format: 'der', type: 'pkcs8' }))),
};

// ---- commands
const hexOf = (b: Uint8Array) => toHex(b);
const disconnect = (meter: number, counter: bigint, s: Signer = meter === 2 ? SIGNERS.b : SIGNERS.a, originator: Eui64 = SUPPLIER) =>
  signPreCommand(buildDisableSupply({ fuel: 'electricity', originator, recipient: meterEui(meter), counter }), s);
const activate = (meter: number, counter: bigint, image: Uint8Array) =>
  signPreCommand(buildActivateFirmware({ originator: SUPPLIER, recipient: meterEui(meter), counter, imageHash: image }), meter === 2 ? SIGNERS.b : SIGNERS.a);
const flip = (b: Uint8Array, at: number) => {
  const c = Uint8Array.from(b);
  c[at] = (c[at] as number) ^ 0x01;
  return c;
};
const C = NOW_MS - 1000n;
const good = await disconnect(0, C);
const goodMsg = parseMessage(good);

type CaseInput = Omit<ValidatorVectorCase, 'frame' | 'result'> & { result?: 'valid' | 'invalid' };
const cases: CaseInput[] = [];
const add = (c: CaseInput) => cases.push(c);
const cmd = (bytes: Uint8Array, sender: string = SUPPLIER) => ({ command: hexOf(bytes), sender });

add({ id: 'accept-disconnect', comment: 'ECS43 signed with the portfolio key meter 0 trusts (GBCS 5.4a)', input: cmd(good), outcome: 'accepted' });
add({ id: 'accept-portfolio-b', comment: 'ECS43 for meter 2 (portfolio B) signed with key B', input: cmd(await disconnect(2, C)), outcome: 'accepted' });
add({ id: 'accept-firmware', comment: 'CS06 activation of an approved image', input: cmd(await activate(0, C, IMAGE)), outcome: 'accepted' });
add({ id: 'accept-high-s', comment: 'a high-S signature is accepted (docs/domain.md §4)', input: cmd(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: meterEui(0), counter: C }), seededSigner('validator/supplier-ds-a', 'high'))), outcome: 'accepted' });
add({ id: 'accept-low-s', comment: 'the same command with a low-S signature is accepted too', input: cmd(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: meterEui(0), counter: C }), seededSigner('validator/supplier-ds-a', 'low'))), outcome: 'accepted' });
add({ id: 'accept-newer-counter', comment: 'after an accepted command, a greater counter passes', input: { ...cmd(await disconnect(0, C + 1n)), prior: [cmd(good)] }, outcome: 'accepted' });
add({ id: 'accept-other-device-same-counter', comment: 'counters are per (originator, device)', input: { ...cmd(await disconnect(1, C)), prior: [cmd(good)] }, outcome: 'accepted' });
add({ id: 'accept-counter-at-window', comment: 'a counter exactly the clock window ahead passes', input: cmd(await disconnect(0, NOW_MS + 300_000n)), outcome: 'accepted' });

add({ id: 'tampered-header', comment: 'one bit of the counter in the header flipped', input: cmd(flip(good, 3)), outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNATURE_INVALID' });
add({ id: 'tampered-payload', comment: "one bit of the payload's script id flipped", input: cmd(flip(good, goodMsg.signedRange.end - 1)), outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNATURE_INVALID' });
add({ id: 'tampered-signature', comment: 'one bit of s flipped', input: cmd(flip(good, good.length - 1)), outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNATURE_INVALID' });
add({ id: 'wrong-portfolio-key', comment: "meter 0 trusts key A; signed with the supplier's key B (key segregation)", input: cmd(await disconnect(0, C, SIGNERS.b)), outcome: 'rejected', errorCode: 'ERR_COMMAND_PORTFOLIO_MISMATCH' });
add({ id: 'foreign-key', comment: 'signed with a key the supplier does not hold', input: cmd(await disconnect(0, C, SIGNERS.other)), outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNATURE_INVALID' });
add({ id: 'revoked-signer', comment: "key A's certificate is on the organisation CRL", input: { ...cmd(good), crls: 'revokedA' }, outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNER_REVOKED' });
add({ id: 'revoked-other-portfolio-unaffected', comment: 'with key A revoked, meter 2 (key B) still accepts', input: { ...cmd(await disconnect(2, C)), crls: 'revokedA' }, outcome: 'accepted' });
add({ id: 'expired-signer', comment: "the validation time is after key A's notAfter (the CRLs are current then)", input: { ...cmd(good), crls: 'later', now: LATER.toISOString() }, outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNER_EXPIRED' });
add({ id: 'expired-crl', comment: 'the CRL and ARL are past their nextUpdate', input: { ...cmd(good), crls: 'expired' }, outcome: 'rejected', errorCode: 'ERR_COMMAND_REVOCATION_UNKNOWN' });
add({ id: 'unknown-signer', comment: "meter 0's supplier cell names a certificate the trust store does not hold", input: { ...cmd(good), devices: [hexRecord(record(0, { cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: '4000000000000001' }] }))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNER_UNKNOWN' });
add({ id: 'cell-wrong-key-usage', comment: "the supplier cell names the supplier's key-agreement certificate", input: { ...cmd(good), devices: [hexRecord(record(0, { cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: supplierKa.subjectKeyId! }] }))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE' });
add({ id: 'cell-wrong-role', comment: "the supplier cell names the network operator's certificate", input: { ...cmd(good), devices: [hexRecord(record(0, { cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: networkOperator.subjectKeyId! }] }))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE' });
add({ id: 'cell-other-entity', comment: "the supplier cell names another supplier's signing certificate (same role and key usage)", input: { ...cmd(good), devices: [hexRecord(record(0, { cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: otherSupplier.subjectKeyId! }] }))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE' });
add({ id: 'no-trust-anchor', comment: 'meter 0 has no supplier signing cell', input: { ...cmd(good), devices: [hexRecord(record(0, { cells: [] }))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_NO_TRUST_ANCHOR' });
add({ id: 'network-operator-disconnect', comment: 'a network operator may not disconnect supply (docs/domain.md §5)', input: cmd(await disconnect(0, C, SIGNERS.no, NETWORK_OPERATOR), NETWORK_OPERATOR), outcome: 'rejected', errorCode: 'ERR_COMMAND_ROLE_NOT_ELIGIBLE' });
add({ id: 'not-responsible-supplier', comment: "another supplier, with its own valid key, for a meter it does not serve", input: cmd(await disconnect(0, C, SIGNERS.other, OTHER_SUPPLIER), OTHER_SUPPLIER), outcome: 'rejected', errorCode: 'ERR_COMMAND_NOT_RESPONSIBLE' });
add({ id: 'unknown-originator', comment: 'an originator with no organisation signing certificate', input: cmd(await disconnect(0, C, SIGNERS.other, STRANGER), STRANGER), outcome: 'rejected', errorCode: 'ERR_COMMAND_ORIGINATOR_UNKNOWN' });
add({ id: 'sender-not-originator', comment: "the transport authenticated another User than the command's originator", input: cmd(good, OTHER_SUPPLIER), outcome: 'rejected', errorCode: 'ERR_COMMAND_SENDER_MISMATCH' });
add({ id: 'sender-not-eui64', comment: 'the call context names no EUI-64', input: cmd(good, 'supplier'), outcome: 'rejected', errorCode: 'ERR_COMMAND_SENDER_MISMATCH' });
add({
  id: 'unknown-message-code',
  comment: 'message code FFF0 is not in the catalogue',
  input: cmd(await signPreCommand(buildGeneralSigning({ cra: 'command', originatorCounter: C, originator: SUPPLIER, recipient: meterEui(0), messageCode: 0xfff0, payload: Uint8Array.of(1), signatureField: 'empty' }), SIGNERS.a)),
  outcome: 'rejected',
  errorCode: 'ERR_COMMAND_UNKNOWN_MESSAGE_CODE',
});
add({ id: 'critical-unsigned', comment: 'an ECS43 pre-command without the User signature', input: cmd(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: meterEui(0), counter: C })), outcome: 'rejected', errorCode: 'ERR_COMMAND_SIGNATURE_MISSING' });
add({ id: 'replay', comment: 'the same command again', input: { ...cmd(good), prior: [cmd(good)] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_REPLAYED' });
add({ id: 'equal-counter', comment: 'another command with the last accepted counter', input: { ...cmd(await activate(0, C, IMAGE)), prior: [cmd(good)] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_REPLAYED' });
add({ id: 'older-counter', comment: 'a counter below the last accepted', input: { ...cmd(await disconnect(0, C - 1n)), prior: [cmd(good)] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_REPLAYED' });
add({ id: 'counter-too-far-ahead', comment: 'a counter one millisecond beyond the clock window', input: cmd(await disconnect(0, NOW_MS + 300_001n)), outcome: 'rejected', errorCode: 'ERR_COMMAND_COUNTER_AHEAD' });
add({
  id: 'dlms-counter-mismatch',
  comment: "the DLMS invoke-id does not repeat the header's counter",
  input: cmd(await signPreCommand(buildGeneralSigning({ cra: 'command', originatorCounter: C, originator: SUPPLIER, recipient: meterEui(0), messageCode: 0x0050, payload: encodeSupplyPayload('ECS43', C + 1n), signatureField: 'empty' }), SIGNERS.a)),
  outcome: 'rejected',
  errorCode: 'ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH',
});
add({
  id: 'cs06-counter-mismatch',
  comment: "the CS06 payload's counter is not the header's",
  input: cmd(await signPreCommand(buildGeneralSigning({ cra: 'command', originatorCounter: C, originator: SUPPLIER, recipient: meterEui(0), messageCode: 0x0012, payload: parseMessage(await activate(0, C + 5n, IMAGE)).payload, signatureField: 'empty' }), SIGNERS.a)),
  outcome: 'rejected',
  errorCode: 'ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH',
});
add({
  id: 'cs06-payload-malformed',
  comment: 'a CS06 payload that is not the activation DER',
  input: cmd(await signPreCommand(buildGeneralSigning({ cra: 'command', originatorCounter: C, originator: SUPPLIER, recipient: meterEui(0), messageCode: 0x0012, payload: Uint8Array.of(0x30, 0x03, 0x04, 0x01, 0x00), signatureField: 'empty' }), SIGNERS.a)),
  outcome: 'rejected',
  errorCode: 'ERR_COMMAND_PAYLOAD_MALFORMED',
});
add({
  id: 'dlms-payload-truncated',
  comment: 'a DLMS payload that ends inside its invoke-id',
  input: cmd(await signPreCommand(buildGeneralSigning({ cra: 'command', originatorCounter: C, originator: SUPPLIER, recipient: meterEui(0), messageCode: 0x0050, payload: Uint8Array.of(0xd9, 0x20, 0x00), signatureField: 'empty' }), SIGNERS.a)),
  outcome: 'rejected',
  errorCode: 'ERR_COMMAND_PAYLOAD_MALFORMED',
});
add({
  id: 'signer-foreign-hierarchy',
  comment: "meter 0's cell names a supplier signing certificate issued under another root (no path to the trusted one)",
  input: { ...cmd(await disconnect(0, C, SIGNERS.foreign)), devices: [hexRecord(record(0, { cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: foreignSupplier.subjectKeyId! }] }))] },
  outcome: 'rejected',
  errorCode: 'ERR_COMMAND_SIGNER_PATH_INVALID',
});
add({ id: 'unknown-device', comment: 'the recipient is not in the registry', input: cmd(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: parseEui64('00DB1234000000FF'), counter: C }), SIGNERS.a)), outcome: 'rejected', errorCode: 'ERR_COMMAND_UNKNOWN_DEVICE' });
/** A response or alert signed with key A over its signed range (docs/domain.md §4), as a command would be. */
async function signedAs(cra: 'response' | 'alert'): Promise<Uint8Array> {
  const fields = { cra, originatorCounter: C, originator: SUPPLIER, recipient: meterEui(0), messageCode: 0x0050, payload: encodeSupplyPayload('ECS43', C) };
  const unsigned = parseMessage(buildGeneralSigning({ ...fields, signatureField: 'absent' }));
  const signature = await SIGNERS.a.sign(unsigned.bytes.subarray(unsigned.signedRange.start, unsigned.signedRange.end));
  return buildGeneralSigning({ ...fields, signature });
}
for (const cra of ['response', 'alert'] as const) {
  add({
    id: `submitted-${cra}`,
    comment: `a ${cra} submitted as a command`,
    input: cmd(await signedAs(cra)),
    outcome: 'rejected',
    errorCode: 'ERR_COMMAND_NOT_A_COMMAND',
  });
}
add({ id: 'submitted-ciphered', comment: 'an already MAC\'d general-ciphering frame', input: cmd(buildGeneralCiphering(good, new Uint8Array(12))), outcome: 'rejected', errorCode: 'ERR_COMMAND_NOT_A_COMMAND' });
add({ id: 'firmware-unknown', comment: 'an image not on the allowlist', input: cmd(await activate(0, C, UNKNOWN_IMAGE)), outcome: 'rejected', errorCode: 'ERR_FIRMWARE_NOT_APPROVED' });
add({ id: 'firmware-revoked', comment: 'an approved image later revoked (a vulnerability announced)', input: cmd(await activate(0, C, REVOKED_IMAGE)), outcome: 'rejected', errorCode: 'ERR_FIRMWARE_NOT_APPROVED' });
add({ id: 'firmware-no-model', comment: 'meter 3 has no model, so no image is approved for it', input: cmd(await activate(3, C, IMAGE)), outcome: 'rejected', errorCode: 'ERR_FIRMWARE_NOT_APPROVED' });
add({ id: 'over-threshold', comment: 'a limit of 1 per hour for (supplier, 0050): the second command is held', input: { ...cmd(await disconnect(1, C)), prior: [cmd(good)], anomaly: { limit: 1, windowMs: 3600_000 } }, outcome: 'quarantined', errorCode: 'ERR_COMMAND_QUARANTINED' });
add({ id: 'threshold-zero', comment: 'a limit of 0 holds every command', input: { ...cmd(good), anomaly: { limit: 0, windowMs: 60_000 } }, outcome: 'quarantined', errorCode: 'ERR_COMMAND_QUARANTINED' });
for (const n of [0, 1, 10, 21, good.length - 1]) {
  add({ id: `truncated-${n}`, comment: `the command cut to ${n} bytes`, input: cmd(good.subarray(0, n)), outcome: 'rejected', errorCode: 'ERR_GBCS_MALFORMED' });
}
add({ id: 'oversized', comment: 'one byte more than 64 KiB', input: { command: `DF${'00'.repeat(64 * 1024)}`, sender: SUPPLIER }, outcome: 'rejected', errorCode: 'ERR_COMMAND_TOO_LARGE' });
add({ id: 'device-key-missing', comment: 'meter 0 has no key-agreement certificate in the registry', input: { ...cmd(good), devices: [hexRecord((({ keyAgreementCertificate: _k, ...r }) => r)(record(0)))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_DEVICE_KEY_UNUSABLE' });
add({ id: 'device-key-other-device', comment: "meter 0's record holds meter 1's key-agreement certificate", input: { ...cmd(good), devices: [hexRecord(record(0, { keyAgreementCertificate: meters[1]!.cert.der }))] }, outcome: 'rejected', errorCode: 'ERR_COMMAND_DEVICE_KEY_UNUSABLE' });
add({
  id: 'duplicate-in-batch',
  comment: 'one batch holding the same command twice and an older counter: accepted once',
  input: { batch: [cmd(good), cmd(good), cmd(await disconnect(0, C - 5n))] },
  outcome: 'accepted',
  outcomes: ['accepted', 'rejected', 'rejected'],
  errorCodes: [null, 'ERR_COMMAND_REPLAYED', 'ERR_COMMAND_REPLAYED'],
});

// ---- run every case, record the frames, and refuse to write a case that does not decide as declared
const tmp = mkdtempSync(join(tmpdir(), 'smki-validator-vectors-'));
const out: ValidatorVectorCase[] = [];
try {
  for (const c of cases) {
    const got = await runVectorCase(world, { ...c, result: 'valid' } as ValidatorVectorCase, join(tmp, c.id));
    const problems = got.problems;
    if (problems.length > 0) throw new Error(`case ${c.id}: ${problems.join('; ')}`);
    out.push({ ...c, result: c.outcome === 'accepted' ? 'valid' : 'invalid', ...(got.frame ? { frame: got.frame } : {}) } as ValidatorVectorCase);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const file = {
  source: 'SMKI toolkit: decisions of @smki/validator on a seeded world (docs/validator.md)',
  generator: GENERATOR,
  world,
  cases: out,
};
const differ = writeOrCheck(OUT, { 'decisions.json': file }, check, ROOT);
if (check) {
  if (differ > 0) process.exit(1);
  console.log(`checked 1 file, ${out.length} cases`);
} else {
  console.log(`wrote ${OUT}/decisions.json: ${out.length} cases`);
}
