/**
 * Writes the GBCS test vectors under test-vectors/gbcs/ from fixed seeds (docs/domain.md §3–§6):
 *
 * - messages.json   parseMessage: pre-commands, signed pre-commands, MAC'd commands, device
 *                   responses and alerts with their expected fields; malformed inputs, each
 *                   breaking exactly one structural rule, with ERR_GBCS_MALFORMED and the offset.
 * - signatures.json verifySignature: User-signed pre-commands (natural, high-S, low-S) and
 *                   device-signed responses; wrong keys, flipped bits, wrong signed ranges.
 * - macs.json       verifyMac on general-ciphering frames (ACB MAC mode 01, device MAC mode 02,
 *                   alert MAC mode 03), each invalid case making exactly one mistake (a wrong key,
 *                   a flipped bit, or one KDF / IV / AAD rule of docs/domain.md §4 done wrong); plus the
 *                   docs/domain.md §4 known answers (OtherInfo, KDF, GCM tag).
 * - payloads.json   decryptPayload: sensitive payloads of responses and alerts (mode 04), valid
 *                   and broken (ERR_GBCS_DECRYPT_FAILED, ERR_GBCS_MALFORMED with the offset).
 * - credentials.json the credential-replacement commands (docs/domain.md §9, §10): CS02b commands of
 *                   modes 2 to 8, payloads, responses (device long-form lengths included) and
 *                   alerts 0x00CB, CS02c / CS02d / CS02e; cases made by scripts/vectors/gbcs-credentials.ts.
 *
 * Reproducible byte for byte: keys come from labels (scripts/vectors/deterministic.ts, the same
 * labels as the PKI vectors), signatures are RFC 6979 (noble, lowS: false, with explicit high-S
 * and low-S variants), counters, titles and times are fixed; ECDH and AES-GCM are deterministic.
 * No clock, no unseeded randomness.
 *
 * Before writing, every case is run through the library and the generator refuses to write when
 * one does not behave as declared. `--check` compares with the files instead of writing (exit 1 on
 * a difference); test/gbcs-vectors.test.ts runs it.
 */
import { writeOrCheck } from './vectors/output.js';
import { gbcsFields, outcome } from './vectors/gbcs-fields.js';
import { credentialCases } from './vectors/gbcs-credentials.js';
import { createCipheriv, createHash, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { p256 } from '@noble/curves/nist.js';
import { concatBytes, fromHex, toHex, type Signer } from '../packages/core/src/index.js';
import {
  apduBytes,
  buildGeneralCiphering,
  buildMessage,
  decryptPayload,
  deriveKey,
  encryptSensitivePayload,
  gcmIv,
  gcmTag,
  kdf,
  otherInfo,
  parseMessage,
  signedBytes,
  verifyMac,
  verifySignature,
  wrapWithMac,
  type GbcsFields,
  type GbcsMessage,
  type KdfModeCode,
} from '../packages/gbcs/src/index.js';
import { buildActivateFirmware, buildDisableSupply, encodeSupplyPayload } from '../packages/gbcs/src/commands.js';
import { isHighS, seededPrivateKey, seededRandom, seededSecret, seededSigner, type SMode } from './vectors/deterministic.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'test-vectors', 'gbcs');
const GENERATOR = 'scripts/generate-gbcs-vectors.ts';

const SUPPLIER = '90B3D51F30010000';
const ACB = '90B3D51F30000004';
const DEVICE = '00DB1234567890A0';
const GAS = '00DB1234567890B1';
const SUPPLEMENTARY_PARTY = '90B3D51F30050000';
/** A COSEM date-time: 2025-06-01 (Sunday 07) 12:00:00.00, deviation 0, status 00. */
const DATE_TIME = fromHex('07E90601070C000000000000');
const N = p256.Point.Fn.ORDER;

// ------------------------------------------------------------------------------------------------
// keys

const KEY_LABELS = ['supplier-ds', 'supplier-ka', 'acb-ka', 'esme-ds', 'esme-ka', 'gsme-ka', 'impostor-ds', 'impostor-ka'] as const;
type KeyLabel = (typeof KEY_LABELS)[number];
const priv = (l: KeyLabel): KeyObject => seededPrivateKey(l);
const pub = (l: KeyLabel): KeyObject => createPublicKey(priv(l));
const privPem = (l: KeyLabel) => priv(l).export({ format: 'pem', type: 'pkcs8' }).toString();
const pubPem = (l: KeyLabel) => pub(l).export({ format: 'pem', type: 'spki' }).toString();
const keysOf = (labels: readonly KeyLabel[], withPrivate: boolean) =>
  Object.fromEntries(labels.map((l) => [l, withPrivate ? { privateKey: privPem(l), publicKey: pubPem(l) } : { publicKey: pubPem(l) }]));

// ------------------------------------------------------------------------------------------------
// byte helpers

const hex = (u: Uint8Array) => toHex(u);
const u64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
};
function flip(bytes: Uint8Array, byte: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  if (byte < 0 || byte >= out.length) throw new Error(`flip: offset ${byte} outside ${out.length} bytes`);
  out[byte] = (out[byte] as number) ^ mask;
  return out;
}
function setByte(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = bytes.slice();
  out[at] = value;
  return out;
}
/** Replace bytes [start, end) with `insert`. */
function splice(bytes: Uint8Array, start: number, end: number, insert: Uint8Array): Uint8Array {
  return concatBytes(bytes.subarray(0, start), insert, bytes.subarray(end));
}
const b32 = (v: bigint) => fromHex(v.toString(16).padStart(64, '0'));

/** Sign a general-signing APDU (unsigned; a trailing 00 is dropped) with a seeded RFC 6979 signer. */
async function signApdu(apdu: Uint8Array, signer: Signer): Promise<Uint8Array> {
  const m = parseMessage(apdu);
  if (m.frame !== 'signed' || m.signatureField === 'present') throw new Error('signApdu: expected an unsigned APDU');
  const sig = await signer.sign(signedBytes(m));
  return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), sig);
}
/** Replace the signature of a signed APDU. */
function withSignature(apdu: Uint8Array, sig: Uint8Array): Uint8Array {
  const m = parseMessage(apdu);
  return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), sig);
}
const signer = (l: KeyLabel, mode: SMode = 'natural') => seededSigner(l, mode);

// ------------------------------------------------------------------------------------------------
// independent KDF / GCM (for the deliberately wrong MACs; the right ones use the library)

function z(local: KeyLabel, peer: KeyLabel): Uint8Array {
  return new Uint8Array(diffieHellman({ privateKey: priv(local), publicKey: pub(peer) }));
}
interface KdfParts {
  originator: string;
  mode: KdfModeCode;
  counter: bigint;
  recipient: string;
}
function oi(p: KdfParts): Uint8Array {
  return otherInfo({ originator: p.originator, mode: p.mode, counter: p.counter, recipient: p.recipient });
}
function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}
function tag16(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext = new Uint8Array(0)): { ciphertext: Uint8Array; tag: Uint8Array } {
  const c = createCipheriv('aes-128-gcm', key, iv);
  c.setAAD(aad);
  const ciphertext = concatBytes(c.update(plaintext), c.final());
  return { ciphertext, tag: new Uint8Array(c.getAuthTag()) };
}

// ------------------------------------------------------------------------------------------------
// the messages

const C = 1000n; // the counter of docs/domain.md §4's known answer
const ecs43Empty = buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: DEVICE, counter: C });
const ecs43Absent = buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: DEVICE, counter: C + 1n, signatureField: 'absent' });
const gcs32 = buildDisableSupply({ fuel: 'gas', originator: SUPPLIER, recipient: GAS, counter: C + 2n });
const cs06 = buildActivateFirmware({
  originator: SUPPLIER,
  recipient: DEVICE,
  counter: C + 3n,
  imageHash: sha256(new TextEncoder().encode('smki-test-vectors/v1/firmware-image')),
  executionTime: new Date('9999-12-31T23:59:59Z'),
});
const ecs43DateTime = buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: DEVICE, counter: C + 4n, dateTime: DATE_TIME });
const ecs43Fields = (counter: bigint): GbcsFields => ({
  cra: 'command',
  originatorCounter: counter,
  originator: SUPPLIER,
  recipient: DEVICE,
  messageCode: 0x0050,
  payload: encodeSupplyPayload('ECS43', counter),
  signatureField: 'empty',
});
const supId = buildMessage({ ...ecs43Fields(C + 5n), supplementaryRemotePartyId: SUPPLEMENTARY_PARTY });
const supCounter = buildMessage({ ...ecs43Fields(C + 6n), supplementaryRemotePartyId: SUPPLEMENTARY_PARTY, supplementaryRemotePartyCounter: 42n });
const supOrig = buildMessage({
  ...ecs43Fields(C + 7n),
  supplementaryRemotePartyId: SUPPLEMENTARY_PARTY,
  supplementaryRemotePartyCounter: 42n,
  supplementaryOriginatorCounter: 0x0102030405060708n,
});
/** A stand-in DER blob for the key-agreement certificate (the codec carries it, never parses it). */
const kaCertBlob = concatBytes(fromHex('3082012C'), seededRandom('gbcs-ka-certificate')(300));
const withCert = buildMessage({ ...ecs43Fields(C + 8n), supplementaryRemotePartyId: SUPPLEMENTARY_PARTY, supplementaryRemotePartyCounter: 43n, keyAgreementCertificate: kaCertBlob });
const READ_CODE = 0x0015;
const readPayload = (counter: bigint) => concatBytes(Uint8Array.of(0xd9, 0x20), u64(counter).subarray(5), Uint8Array.of(0x00, 0x01, 0x01));
const read = buildMessage({ cra: 'command', originatorCounter: C + 9n, originator: SUPPLIER, recipient: DEVICE, messageCode: READ_CODE, payload: readPayload(C + 9n), signatureField: 'empty' });
const readAbsent = buildMessage({ cra: 'command', originatorCounter: C + 10n, originator: SUPPLIER, recipient: DEVICE, messageCode: READ_CODE, payload: readPayload(C + 10n) });
const longContent = buildMessage({
  cra: 'command',
  originatorCounter: C + 11n,
  originator: SUPPLIER,
  recipient: DEVICE,
  messageCode: READ_CODE,
  payload: concatBytes(Uint8Array.of(0xd9, 0x20), u64(C + 11n).subarray(5), seededRandom('gbcs-long-content')(195)),
  signatureField: 'empty',
});
const acbOriginated = buildMessage({ cra: 'command', originatorCounter: C + 12n, originator: ACB, recipient: DEVICE, messageCode: 0x000f, payload: Uint8Array.of(0x01, 0x09, 0x00, 0x01), signatureField: 'empty' });

const ecs43Signed = await signApdu(ecs43Empty, signer('supplier-ds'));
const ecs43SignedHigh = await signApdu(ecs43Empty, signer('supplier-ds', 'high'));
const ecs43SignedLow = await signApdu(ecs43Empty, signer('supplier-ds', 'low'));
if (!isHighS(ecs43SignedHigh.subarray(-64)) || isHighS(ecs43SignedLow.subarray(-64))) throw new Error('high/low-S variants are not high/low');
const ecs43AbsentSigned = await signApdu(ecs43Absent, signer('supplier-ds'));
const gcs32Signed = await signApdu(gcs32, signer('supplier-ds'));
const cs06Signed = await signApdu(cs06, signer('supplier-ds'));
const withCertSigned = await signApdu(withCert, signer('supplier-ds'));
const dateTimeSigned = await signApdu(ecs43DateTime, signer('supplier-ds'));

const acbMac = (apdu: Uint8Array, device: KeyLabel = 'esme-ka', acb: KeyLabel = 'acb-ka') => wrapWithMac(apdu, { privateKey: priv(acb), publicKey: pub(device) });
const ecs43Frame = acbMac(ecs43Signed);
const readFrame = acbMac(read);
const readAbsentFrame = acbMac(readAbsent);
const withCertFrame = acbMac(withCertSigned);
const acbOriginatedFrame = acbMac(acbOriginated);
const longFrame = acbMac(longContent);
const gcs32Frame = acbMac(gcs32Signed, 'gsme-ka');

// Device responses: CRA 02, the device as originator, the supplier as recipient, the command's
// counter and message code; the content is a DLMS access-response carrying a sensitive payload
// (docs/domain.md §4): DA 20 ctr(3) 00 01 00 09 len ‖ 31 ‖ 00000000 ‖ ciphertext ‖ tag.
interface ResponseSpec {
  cra?: 'response' | 'alert';
  counter: bigint;
  messageCode: number;
  plaintext: Uint8Array;
  supplementary?: { id: string; counter: bigint; originatorCounter?: bigint };
  /** Encrypt the sensitive payload with this instead of the right key (a broken case). */
  payloadKey?: Uint8Array;
}
function payloadKey(counter: bigint, recipient: string, local: KeyLabel = 'esme-ka', peer: KeyLabel = 'supplier-ka', mode: KdfModeCode = 4, originator = DEVICE): Uint8Array {
  return deriveKey({ originator, recipient, counter, mode, privateKey: priv(local), publicKey: pub(peer) });
}
function responseParts(s: ResponseSpec): { fields: GbcsFields; sensitive: Uint8Array } {
  const sup = s.supplementary;
  const key = s.payloadKey ?? payloadKey(sup?.originatorCounter ?? s.counter, sup ? sup.id : SUPPLIER);
  const sensitive = encryptSensitivePayload({ key, originator: DEVICE, plaintext: s.plaintext });
  if (sensitive.length >= 0x80) throw new Error('keep sensitive payloads below 128 bytes (one length byte)');
  const content = concatBytes(Uint8Array.of(0xda, 0x20), u64(s.counter).subarray(5), Uint8Array.of(0x00, 0x01, 0x00, 0x09, sensitive.length), sensitive);
  const fields: GbcsFields = {
    cra: s.cra ?? 'response',
    originatorCounter: s.counter,
    originator: DEVICE,
    recipient: SUPPLIER,
    messageCode: s.messageCode,
    ...(sup ? { supplementaryRemotePartyId: sup.id, supplementaryRemotePartyCounter: sup.counter } : {}),
    ...(sup?.originatorCounter !== undefined ? { supplementaryOriginatorCounter: sup.originatorCounter } : {}),
    payload: content,
  };
  return { fields, sensitive };
}
async function signedResponse(s: ResponseSpec, mode: SMode = 'natural'): Promise<{ message: Uint8Array; sensitive: Uint8Array }> {
  const { fields, sensitive } = responseParts(s);
  return { message: await signApdu(buildMessage(fields), signer('esme-ds', mode)), sensitive };
}
function macdResponse(s: ResponseSpec): { message: Uint8Array; sensitive: Uint8Array } {
  const { fields, sensitive } = responseParts(s);
  const apdu = buildMessage({ ...fields, signatureField: 'empty' });
  return { message: wrapWithMac(apdu, { privateKey: priv('esme-ka'), publicKey: pub('supplier-ka') }), sensitive };
}
const text = (s: string) => new TextEncoder().encode(s);
const READING = text('supply disabled; credit 12.34 GBP');
const respSigned = await signedResponse({ counter: C, messageCode: 0x0050, plaintext: READING });
const respSignedHigh = await signedResponse({ counter: C, messageCode: 0x0050, plaintext: READING }, 'high');
const respMacd = macdResponse({ counter: C + 9n, messageCode: READ_CODE, plaintext: text('register 1: 0001234.5 kWh') });
const respSup = macdResponse({ counter: C + 13n, messageCode: READ_CODE, plaintext: text('supplementary'), supplementary: { id: SUPPLEMENTARY_PARTY, counter: 7n, originatorCounter: 0x1122334455667788n } });
const respSupSigned = await signedResponse({ counter: C + 14n, messageCode: 0x0050, plaintext: READING, supplementary: { id: SUPPLEMENTARY_PARTY, counter: 8n, originatorCounter: 0x2000000000000001n } });
const respSupIdOnly = macdResponse({ counter: C + 17n, messageCode: READ_CODE, plaintext: text('supplementary id only'), supplementary: { id: SUPPLEMENTARY_PARTY, counter: 9n } });
const respEmpty = macdResponse({ counter: C + 15n, messageCode: READ_CODE, plaintext: new Uint8Array(0) });
const respLong = macdResponse({ counter: C + 16n, messageCode: READ_CODE, plaintext: seededRandom('gbcs-long-plaintext')(100) });
const alert = macdResponse({ cra: 'alert', counter: 0x0000019000000001n, messageCode: 0x8f84, plaintext: text('supply tamper') });

// ------------------------------------------------------------------------------------------------
// cases

const problems: string[] = [];
interface Base {
  id: string;
  comment: string;
  clause: string;
  result: 'valid' | 'invalid';
  errorCode?: string;
}
const ids = new Set<string>();
function uniqueId(id: string): void {
  if (ids.has(id)) problems.push(`duplicate id ${id}`);
  ids.add(id);
}

// ---- messages.json -------------------------------------------------------------------------------

interface ExpectedFields {
  frame: string;
  cra: string;
  originatorCounter: string;
  originator: string;
  recipient: string;
  dateTime?: string;
  messageCode: string;
  supplementaryRemotePartyId?: string;
  supplementaryRemotePartyCounter?: string;
  supplementaryOriginatorCounter?: string;
  keyAgreementCertificate?: string;
  payload: string;
  signatureField: string;
  signature: string | null;
  mac?: string;
  apduRange: [number, number];
  signedRange: [number, number];
}
function fieldsFor(m: GbcsMessage): ExpectedFields {
  return gbcsFields(m) as unknown as ExpectedFields;
}

interface MessageCase extends Base {
  input: { message: string };
  expected?: ExpectedFields;
  offset?: number;
}
const messageCases: MessageCase[] = [];
/** A valid message; `expect` pins the fields that matter for the case (checked against the parse). */
function validMessage(id: string, comment: string, clause: string, message: Uint8Array, expect: Partial<ExpectedFields>): void {
  uniqueId(`messages/${id}`);
  const r = outcome(() => parseMessage(message));
  if (!r.value) {
    problems.push(`messages ${id}: expected valid, parseMessage threw ${r.code} at ${r.offset}`);
    return;
  }
  const d = fieldsFor(r.value);
  for (const [k, v] of Object.entries(expect)) {
    if (JSON.stringify(d[k as keyof ExpectedFields]) !== JSON.stringify(v)) problems.push(`messages ${id}: ${k} is ${JSON.stringify(d[k as keyof ExpectedFields])}, expected ${JSON.stringify(v)}`);
  }
  const rebuilt = outcome(() => buildMessage(r.value as GbcsMessage));
  if (!rebuilt.value || hex(rebuilt.value) !== hex(message)) problems.push(`messages ${id}: buildMessage(parseMessage(x)) is not x`);
  messageCases.push({ id, comment, clause, input: { message: hex(message) }, result: 'valid', expected: d });
}
function malformedMessage(id: string, comment: string, clause: string, message: Uint8Array, offset: number): void {
  uniqueId(`messages/${id}`);
  const r = outcome(() => parseMessage(message));
  if (r.code !== 'ERR_GBCS_MALFORMED' || r.offset !== offset) {
    problems.push(`messages ${id}: expected ERR_GBCS_MALFORMED at ${offset}, got ${r.value ? 'a parse' : `${r.code} at ${r.offset}`}`);
  }
  messageCases.push({ id, comment, clause, input: { message: hex(message) }, result: 'invalid', errorCode: 'ERR_GBCS_MALFORMED', offset });
}

const E = ecs43Empty; // 56 bytes: DF 09 01 | ctr 3..10 | 08 orig 11..19 | 08 recip 20..28 | 00 @29 | 02 @30 code 31..32 | 15 @33 content 34..54 | 00 @55
if (E.length !== 56) throw new Error(`ECS43 pre-command is ${E.length} bytes, expected 56`);
const S = ecs43Signed; // 120 bytes: as E to 54, 40 @55, r 56..87, s 88..119
const F = ecs43Frame; // 146 bytes: DD 00x6 | 81 89 @7..8 | 11 00 00 00 00 @9..13 | APDU 14..133 | MAC 134..145
if (F.length !== 146 || F[7] !== 0x81) throw new Error('unexpected ECS43 frame layout');
const R = readFrame;
const contentEnd = (m: Uint8Array) => parseMessage(m).signedRange.end;

validMessage('pre-command-ecs43-empty-signature', 'ECS43 remote disconnect pre-command ending with a single 00 (the DLMS empty signature)', 'docs/domain.md §3, §5 (ECS43)', E, {
  frame: 'signed', cra: 'command', originatorCounter: '1000', messageCode: '0050', signatureField: 'empty', signature: null, signedRange: [1, 55], apduRange: [0, 56],
  payload: 'D9200003E8000103000900000A006AFF0101120034',
});
validMessage('pre-command-ecs43-absent-signature', 'ECS43 pre-command ending right after the content (as the DCC test environment sends it)', 'docs/domain.md §3 (accept both endings)', ecs43Absent, { signatureField: 'absent', signedRange: [1, 55] });
validMessage('pre-command-gcs32', 'GCS32 gas valve close pre-command: the 29-byte GBZ template', 'docs/domain.md §5 (GCS32)', gcs32, {
  messageCode: '0081', recipient: GAS, payload: '010901010702001501000B00000000804A371C000000000000000000' + '01',
});
validMessage('pre-command-cs06', 'CS06 activate firmware: DER payload with image hash, counter and the 99991231235959Z cancellation time', 'docs/domain.md §5 (CS06)', cs06, { messageCode: '0012', originatorCounter: '1003' });
validMessage('pre-command-date-time', 'header with a 12-byte COSEM date-time (0C ‖ 12 bytes)', 'docs/domain.md §3 (date-time)', ecs43DateTime, { dateTime: hex(DATE_TIME) });
validMessage('pre-command-supplementary-id', 'other-information of 10 bytes: message code and supplementary remote party id', 'docs/domain.md §3 (other-information)', supId, { supplementaryRemotePartyId: SUPPLEMENTARY_PARTY });
validMessage('pre-command-supplementary-counter', 'other-information of 18 bytes: code, supplementary remote party id and counter', 'docs/domain.md §3 (other-information)', supCounter, { supplementaryRemotePartyCounter: '42' });
validMessage('pre-command-supplementary-originator-counter', 'other-information of 26 bytes: code, id, counter and supplementary originator counter', 'docs/domain.md §3 (other-information)', supOrig, {
  supplementaryOriginatorCounter: '72623859790382856',
});
validMessage('pre-command-key-agreement-certificate', 'other-information above 26 bytes: a key-agreement certificate from offset 18 (82-form lengths)', 'docs/domain.md §3 (other-information)', withCert, {
  keyAgreementCertificate: hex(kaCertBlob),
});
validMessage('pre-command-long-content', 'content of 200 bytes: an 81-form content length', 'docs/domain.md §3 (lengths)', longContent, {});
validMessage('pre-command-counter-max', 'originator counter 2^64 − 1: unsigned 64-bit, never a Number', 'docs/domain.md §3, §6', buildMessage(ecs43Fields((1n << 64n) - 1n)), { originatorCounter: '18446744073709551615' });
validMessage('signed-pre-command-ecs43', 'ECS43 signed by the supplier: the 00 replaced by 40 ‖ r ‖ s', 'docs/domain.md §4 (signing a pre-command)', S, { signatureField: 'present', signedRange: [1, 55], apduRange: [0, 120] });
validMessage('signed-pre-command-from-absent', 'a pre-command without a signature field, signed: 40 ‖ r ‖ s appended', 'docs/domain.md §4 (signing a pre-command)', ecs43AbsentSigned, { signatureField: 'present' });
validMessage('signed-pre-command-cs06', 'CS06 signed by the supplier', 'docs/domain.md §4, §5 (CS06)', cs06Signed, { messageCode: '0012', signatureField: 'present' });
validMessage('macd-command-ecs43', 'signed ECS43 in a general-ciphering frame with the ACB MAC (81-form frame length)', 'docs/domain.md §3 (general-ciphering frame)', F, {
  frame: 'ciphered', apduRange: [14, 134], signedRange: [15, 69], mac: hex(F.subarray(134)),
});
validMessage('macd-command-non-critical', 'an unsigned read with the ACB MAC (one-byte frame length)', 'docs/domain.md §3, §4', R, { frame: 'ciphered', signatureField: 'empty', messageCode: '0015' });
validMessage('macd-command-absent-signature', 'an APDU without a signature field inside a general-ciphering frame', 'docs/domain.md §3', readAbsentFrame, { frame: 'ciphered', signatureField: 'absent' });
validMessage('macd-command-key-agreement-certificate', 'a frame over 255 bytes: 82-form frame length', 'docs/domain.md §3 (lengths)', withCertFrame, { frame: 'ciphered' });
validMessage('macd-command-acb-originated', 'an ACB-originated command (0x000F, not critical from role 4)', 'docs/domain.md §5 (dual codes)', acbOriginatedFrame, { originator: ACB, messageCode: '000F' });
validMessage('device-response-signed', 'device response to ECS43: CRA 02, device → supplier, signed with the device DS key', 'docs/domain.md §4 (responses to critical commands)', respSigned.message, {
  frame: 'signed', cra: 'response', originator: DEVICE, recipient: SUPPLIER, originatorCounter: '1000',
});
validMessage('device-response-macd', 'device response to a read: general-ciphering frame with the device MAC', 'docs/domain.md §4 (device MAC)', respMacd.message, { frame: 'ciphered', cra: 'response' });
validMessage('device-response-supplementary', 'device response with supplementary remote party id and counters', 'docs/domain.md §3, §4', respSup.message, { supplementaryOriginatorCounter: '1234605616436508552' });
validMessage('device-alert-macd', 'device alert: CRA 03', 'docs/domain.md §3 (CRA flag)', alert.message, { cra: 'alert' });

// one rule broken per case
malformedMessage('empty', 'no bytes', 'docs/domain.md §3', new Uint8Array(0), 0);
malformedMessage('first-byte-neither-df-nor-dd', 'first byte DE', 'docs/domain.md §3', setByte(E, 0, 0xde), 0);
malformedMessage('transaction-id-length-8', 'transaction-id length 08, not 09', 'docs/domain.md §3 (09)', setByte(E, 1, 0x08), 1);
malformedMessage('cra-00', 'CRA flag 00', 'docs/domain.md §3 (CRA 01/02/03)', setByte(E, 2, 0x00), 2);
malformedMessage('cra-04', 'CRA flag 04', 'docs/domain.md §3 (CRA 01/02/03)', setByte(E, 2, 0x04), 2);
malformedMessage('truncated-in-counter', 'ends inside the originator counter', 'docs/domain.md §3 (lengths checked before reads)', E.subarray(0, 7), 3);
malformedMessage('originator-length-9', 'originator system title length 09', 'docs/domain.md §3 (08 ‖ EUI-64)', setByte(E, 11, 0x09), 11);
malformedMessage('recipient-length-7', 'recipient system title length 07', 'docs/domain.md §3 (08 ‖ EUI-64)', setByte(E, 20, 0x07), 20);
malformedMessage('truncated-in-recipient', 'ends inside the recipient title', 'docs/domain.md §3', E.subarray(0, 25), 21);
malformedMessage('date-time-length-0b', 'date-time length 0B (neither 00 nor 0C)', 'docs/domain.md §3 (date-time)', setByte(E, 29, 0x0b), 29);
malformedMessage('other-information-length-3', 'other-information of 3 bytes (not 2, 10, 18, 26 or above 26)', 'docs/domain.md §3 (other-information)', splice(E, 30, 33, fromHex('03005000')), 30);
malformedMessage('other-information-length-1', 'other-information of 1 byte: no room for the message code', 'docs/domain.md §3 (other-information)', splice(E, 30, 33, fromHex('0100')), 30);
malformedMessage('other-information-length-25', 'other-information of 25 bytes', 'docs/domain.md §3 (other-information)', splice(E, 30, 33, concatBytes(Uint8Array.of(25, 0x00, 0x50), new Uint8Array(23))), 30);
malformedMessage('other-information-non-minimal-length', 'length 81 02 where 02 suffices', 'docs/domain.md §3 (lengths)', splice(E, 30, 31, fromHex('8102')), 30);
malformedMessage('other-information-length-form-84', 'length form 84 (at most 83)', 'docs/domain.md §3 (lengths: 81/82/83)', splice(E, 30, 31, fromHex('8400000002')), 30);
malformedMessage('other-information-length-form-80', 'length form 80 (no length bytes)', 'docs/domain.md §3 (lengths)', splice(E, 30, 31, fromHex('80')), 30);
malformedMessage('other-information-overruns', 'other-information length 7F with 25 bytes left', 'docs/domain.md §3 (lengths checked before reads)', setByte(E, 30, 0x7f), 31);
malformedMessage('content-overruns', 'content length 17 (23) with 22 bytes left', 'docs/domain.md §3 (lengths checked before reads)', setByte(E, 33, 0x17), 34);
malformedMessage('content-non-minimal-length', 'content length 81 15', 'docs/domain.md §3 (lengths)', splice(E, 33, 34, fromHex('8115')), 33);
malformedMessage('signature-length-41', 'signature length 41 (00 or 40 only)', 'docs/domain.md §3 (signature length)', setByte(S, 55, 0x41), 55);
malformedMessage('signature-length-01', 'signature length 01', 'docs/domain.md §3 (signature length)', setByte(E, 55, 0x01), 55);
malformedMessage('signature-truncated', 'signature length 40 with 63 bytes', 'docs/domain.md §3 (64-byte r ‖ s)', S.subarray(0, S.length - 1), 56);
malformedMessage('trailing-byte-after-empty-signature', 'a byte after the 00 signature length', 'docs/domain.md §3', concatBytes(E, Uint8Array.of(0)), 56);
malformedMessage('trailing-byte-after-signature', 'a byte after the 64-byte signature', 'docs/domain.md §3', concatBytes(S, Uint8Array.of(0)), 120);
malformedMessage('ciphering-prefix-nonzero', 'general-ciphering header DD 00 00 01 …', 'docs/domain.md §3 (DD 00 00 00 00 00 00)', setByte(F, 3, 0x01), 3);
malformedMessage('ciphering-truncated-prefix', 'DD alone', 'docs/domain.md §3', Uint8Array.of(0xdd), 1);
malformedMessage('ciphering-length-too-long', 'frame length one more than the bytes that follow', 'docs/domain.md §3 (len counts header, APDU and MAC)', setByte(F, 8, 0x8a), 7);
malformedMessage('ciphering-length-too-short', 'frame length one less than the bytes that follow: a trailing byte', 'docs/domain.md §3 (len counts header, APDU and MAC)', setByte(F, 8, 0x88), 145);
malformedMessage('ciphering-frame-truncated', 'last MAC byte missing, length unchanged', 'docs/domain.md §3', F.subarray(0, F.length - 1), 7);
malformedMessage('ciphering-non-minimal-length', 'one-byte frame length written 81 xx', 'docs/domain.md §3 (lengths)', splice(R, 7, 8, Uint8Array.of(0x81, R[7] as number)), 7);
malformedMessage('ciphering-too-short', 'frame length 05: header only, no APDU, no MAC', 'docs/domain.md §3', fromHex('DD000000000000051100000000'), 7);
malformedMessage('security-header-first-byte', 'security header 10 00 00 00 00', 'docs/domain.md §3 (11 00 00 00 00)', setByte(F, 9, 0x10), 9);
malformedMessage('security-header-nonzero', 'security header 11 00 00 01 00', 'docs/domain.md §3 (11 00 00 00 00)', setByte(F, 12, 0x01), 12);
malformedMessage('ciphering-inner-not-df', 'the inner APDU starts DE', 'docs/domain.md §3 (general-signing APDU inside)', setByte(F, 14, 0xde), 14);
malformedMessage('ciphering-inner-cra-05', 'the inner APDU has CRA flag 05', 'docs/domain.md §3 (CRA flag)', setByte(F, 16, 0x05), 16);
malformedMessage('ciphering-mac-11-bytes', 'an 11-byte MAC (frame length adjusted): the last 12 bytes are taken as the MAC, so the signature runs short', 'docs/domain.md §3 (12-byte MAC)', setByte(F.subarray(0, F.length - 1), 8, 0x88), 70);

// ---- signatures.json -----------------------------------------------------------------------------

interface SignatureCase extends Base {
  input: { message: string; publicKey: KeyLabel };
  highS?: boolean;
}
const signatureCases: SignatureCase[] = [];
function sigCase(id: string, comment: string, clause: string, message: Uint8Array, key: KeyLabel, result: 'valid' | 'invalid', errorCode?: string): void {
  uniqueId(`signatures/${id}`);
  const r = outcome(() => verifySignature(message, pub(key)));
  const got = r.code !== undefined ? `throws ${r.code}` : r.value ? 'valid' : 'invalid';
  const want = errorCode !== undefined ? `throws ${errorCode}` : result;
  if (got !== want) problems.push(`signatures ${id}: expected ${want}, got ${got}`);
  let highS: boolean | undefined;
  try {
    const m = parseMessage(message);
    if (m.signature) highS = isHighS(m.signature);
  } catch {
    /* malformed input: no signature to describe */
  }
  signatureCases.push({ id, comment, clause, input: { message: hex(message), publicKey: key }, result, ...(errorCode ? { errorCode } : {}), ...(highS !== undefined ? { highS } : {}) });
}
const sigOf = (m: Uint8Array) => m.subarray(m.length - 64);
const rOf = (m: Uint8Array) => sigOf(m).subarray(0, 32);
const sOf = (m: Uint8Array) => sigOf(m).subarray(32);
const sigStart = S.length - 64;

sigCase('ecs43-natural', 'ECS43 signed by the supplier DS key, RFC 6979 as it comes', 'docs/domain.md §4 (User signature)', S, 'supplier-ds', 'valid');
sigCase('ecs43-high-s', 'the same signature with s > n/2: never reject high-S', 'docs/domain.md §4 (high-S accepted)', ecs43SignedHigh, 'supplier-ds', 'valid');
sigCase('ecs43-low-s', 'the same signature with s ≤ n/2', 'docs/domain.md §4', ecs43SignedLow, 'supplier-ds', 'valid');
sigCase('ecs43-from-absent-ending', 'signed from a pre-command without a signature field', 'docs/domain.md §3, §4', ecs43AbsentSigned, 'supplier-ds', 'valid');
sigCase('gcs32', 'GCS32 gas valve close, signed', 'docs/domain.md §4, §5', gcs32Signed, 'supplier-ds', 'valid');
sigCase('cs06', 'CS06 activate firmware, signed', 'docs/domain.md §4, §5', cs06Signed, 'supplier-ds', 'valid');
sigCase('date-time', 'a header with a date-time: the signature covers it', 'docs/domain.md §4 (after DF up to the last content byte)', dateTimeSigned, 'supplier-ds', 'valid');
sigCase('key-agreement-certificate', 'other-information carrying a certificate (82-form lengths): covered too', 'docs/domain.md §4', withCertSigned, 'supplier-ds', 'valid');
sigCase('in-ciphered-frame', 'the signed APDU inside the ACB-MACd frame: the signature is over the APDU bytes only', 'docs/domain.md §3, §4', F, 'supplier-ds', 'valid');
sigCase('device-response', 'device response signed with the device DS key', 'docs/domain.md §4 (responses to critical commands)', respSigned.message, 'esme-ds', 'valid');
sigCase('device-response-high-s', 'device response, high-S', 'docs/domain.md §4', respSignedHigh.message, 'esme-ds', 'valid');
sigCase('device-response-supplementary', 'device response with supplementary fields', 'docs/domain.md §4', respSupSigned.message, 'esme-ds', 'valid');

sigCase('wrong-key-impostor', 'signed by another DS key, checked with the supplier DS key', 'docs/domain.md §4', await signApdu(ecs43Empty, signer('impostor-ds')), 'supplier-ds', 'invalid');
sigCase('wrong-key-device-for-user', "the supplier's signature checked with the device DS key", 'docs/domain.md §4', S, 'esme-ds', 'invalid');
sigCase('wrong-key-user-for-device', "the device's response checked with the supplier DS key", 'docs/domain.md §4', respSigned.message, 'supplier-ds', 'invalid');
sigCase('wrong-key-ka-signer', "signed with the supplier's KA key (a key-agreement key never signs)", 'docs/domain.md §2 (one key usage), §4', await signApdu(ecs43Empty, signer('supplier-ka')), 'supplier-ds', 'invalid');
sigCase('wrong-key-ka-verifier', "the supplier's signature checked with its KA key", 'docs/domain.md §2, §4', S, 'supplier-ka', 'invalid');
for (const [where, at] of [
  ['cra', 2], // 01 → 03 (an alert) still parses
  ['counter', 10],
  ['originator', 12],
  ['recipient', 28],
  ['message-code', 32],
  ['content-first', 34],
  ['content-last', 54],
  ['r-first', sigStart],
  ['r-last', sigStart + 31],
  ['s-first', sigStart + 32],
  ['s-last', S.length - 1],
] as const) {
  sigCase(`bit-flipped-${where}`, `one bit flipped in the ${where.replace('-', ' ')} (offset ${at})`, 'docs/domain.md §4', flip(S, at, where === 'cra' ? 0x02 : 0x01), 'supplier-ds', 'invalid');
}
sigCase('bit-flipped-device-response-payload', 'one bit flipped in the sensitive payload of a signed response', 'docs/domain.md §4', flip(respSigned.message, contentEnd(respSigned.message) - 3), 'esme-ds', 'invalid');
{
  const m = parseMessage(ecs43Empty);
  const overDf = await signer('supplier-ds').sign(m.bytes.subarray(0, m.signedRange.end));
  sigCase('range-includes-df', 'signature over the APDU from the DF tag (one byte too early)', 'docs/domain.md §4 (after the DF tag)', withSignature(S, overDf), 'supplier-ds', 'invalid');
  const withZero = await signer('supplier-ds').sign(m.bytes.subarray(1, m.signedRange.end + 1));
  sigCase('range-includes-empty-signature', 'signature over the content and the trailing 00 (one byte too far)', 'docs/domain.md §4 (drop a trailing 00)', withSignature(S, withZero), 'supplier-ds', 'invalid');
  const prehashed = await signer('supplier-ds').sign(sha256(m.bytes.subarray(1, m.signedRange.end)));
  sigCase('range-hashed-twice', 'signature over SHA-256 of the signed bytes (hashed twice)', 'docs/domain.md §4 (ECDSA P-256/SHA-256 over the bytes)', withSignature(S, prehashed), 'supplier-ds', 'invalid');
}
sigCase('r-and-s-swapped', 's ‖ r instead of r ‖ s', 'docs/domain.md §3 (raw r ‖ s)', withSignature(S, concatBytes(sOf(S), rOf(S))), 'supplier-ds', 'invalid');
sigCase('r-zero', 'r = 0', 'SEC 1 4.1.4 (r in [1, n-1])', withSignature(S, concatBytes(new Uint8Array(32), sOf(S))), 'supplier-ds', 'invalid');
sigCase('s-zero', 's = 0', 'SEC 1 4.1.4 (s in [1, n-1])', withSignature(S, concatBytes(rOf(S), new Uint8Array(32))), 'supplier-ds', 'invalid');
sigCase('s-equals-n', 's = n (out of range)', 'SEC 1 4.1.4', withSignature(S, concatBytes(rOf(S), b32(N))), 'supplier-ds', 'invalid');
sigCase('unsigned-empty', 'a pre-command with an empty signature field: nothing to verify', 'docs/domain.md §3', E, 'supplier-ds', 'invalid');
sigCase('unsigned-absent', 'a pre-command without a signature field', 'docs/domain.md §3', ecs43Absent, 'supplier-ds', 'invalid');
sigCase('malformed-message', 'signature length 41: the message does not parse', 'docs/domain.md §3', setByte(S, 55, 0x41), 'supplier-ds', 'invalid', 'ERR_GBCS_MALFORMED');

// ---- macs.json -----------------------------------------------------------------------------------

interface FrameMacCase extends Base {
  input: { kind: 'frame'; frame: string; privateKey: KeyLabel; publicKey: KeyLabel };
}
interface KatCase extends Base {
  input:
    | { kind: 'otherinfo'; originator: string; mode: number; counter: string; recipient: string; otherInfo: string }
    | { kind: 'kdf'; z: string; otherInfo: string; key: string }
    | { kind: 'gcm'; key: string; iv: string; aad: string; tag: string };
}
const macCases: (FrameMacCase | KatCase)[] = [];
function macCase(id: string, comment: string, clause: string, frame: Uint8Array, privateKey: KeyLabel, publicKey: KeyLabel, result: 'valid' | 'invalid', errorCode?: string): void {
  uniqueId(`macs/${id}`);
  const r = outcome(() => verifyMac(frame, { privateKey: priv(privateKey), publicKey: pub(publicKey) }));
  const got = r.code !== undefined ? `throws ${r.code}` : r.value ? 'valid' : 'invalid';
  const want = errorCode !== undefined && errorCode !== 'ERR_GBCS_MAC_INVALID' ? `throws ${errorCode}` : result;
  if (got !== want) problems.push(`macs ${id}: expected ${want}, got ${got}`);
  if (result === 'invalid' && errorCode === undefined) problems.push(`macs ${id}: an invalid case needs its code`);
  macCases.push({ id, comment, clause, input: { kind: 'frame', frame: hex(frame), privateKey, publicKey }, result, ...(errorCode ? { errorCode } : {}) });
}
function katCase(id: string, comment: string, clause: string, input: KatCase['input'], result: 'valid' | 'invalid'): void {
  uniqueId(`macs/${id}`);
  let ok: boolean;
  if (input.kind === 'otherinfo') ok = hex(otherInfo({ originator: input.originator, mode: input.mode as KdfModeCode, counter: BigInt(input.counter), recipient: input.recipient })) === input.otherInfo;
  else if (input.kind === 'kdf') ok = hex(kdf(fromHex(input.z), fromHex(input.otherInfo))) === input.key;
  else ok = hex(gcmTag(fromHex(input.key), fromHex(input.iv), fromHex(input.aad))) === input.tag;
  if (ok !== (result === 'valid')) problems.push(`macs ${id}: expected ${result}, the library says ${ok ? 'valid' : 'invalid'}`);
  macCases.push({ id, comment, clause, input, result });
}
/** Build the frame of `apdu` with a MAC made by an explicit (possibly wrong) procedure. */
function frameWith(apdu: Uint8Array, mac: Uint8Array): Uint8Array {
  return buildGeneralCiphering(apdu, mac);
}
const MAC_INVALID = 'ERR_GBCS_MAC_INVALID';
const fieldsOf = (apdu: Uint8Array): KdfParts => {
  const m = parseMessage(apdu);
  return { originator: m.originator, mode: ({ command: 1, response: 2, alert: 3 } as const)[m.cra], counter: m.originatorCounter, recipient: m.recipient };
};
/** The ACB MAC of `apdu` computed independently (node:crypto), with one step overridable. */
function manualMac(
  apdu: Uint8Array,
  o: { local?: KeyLabel; peer?: KeyLabel; parts?: Partial<KdfParts>; kdf?: (z: Uint8Array, info: Uint8Array) => Uint8Array; iv?: Uint8Array; aad?: Uint8Array; tag?: (t16: Uint8Array) => Uint8Array } = {},
): Uint8Array {
  const parts = { ...fieldsOf(apdu), ...o.parts };
  const zz = z(o.local ?? 'acb-ka', o.peer ?? 'esme-ka');
  const info = oi(parts);
  const key = (o.kdf ?? ((zv, i) => sha256(Uint8Array.of(0, 0, 0, 1), zv, i).subarray(0, 16)))(zz, info);
  const iv = o.iv ?? gcmIv(fieldsOf(apdu).originator);
  const aad = o.aad ?? concatBytes(fromHex('110000000000'), apdu);
  const t = tag16(key, iv, aad).tag;
  return (o.tag ?? ((x) => x.subarray(0, 12)))(t);
}
const Sapdu = apduBytes(parseMessage(F));
// sanity: the manual procedure agrees with the library on the right inputs
if (hex(manualMac(Sapdu)) !== hex(parseMessage(F).mac as Uint8Array)) throw new Error('manual MAC disagrees with wrapWithMac: fix the generator before trusting its negative cases');

macCase('acb-ecs43-device-side', 'the ACB MAC on the signed ECS43, checked as the meter does: device KA private × ACB KA public', 'docs/domain.md §4 (ACB MAC)', F, 'esme-ka', 'acb-ka', 'valid');
macCase('acb-ecs43-acb-side', 'the same frame checked with ACB KA private × device KA public (same Z)', 'docs/domain.md §4 step 1', F, 'acb-ka', 'esme-ka', 'valid');
macCase('acb-non-critical', 'the ACB MAC on an unsigned read (empty signature field inside the AAD)', 'docs/domain.md §4', R, 'esme-ka', 'acb-ka', 'valid');
macCase('acb-absent-signature-field', 'the ACB MAC on an APDU without a signature field', 'docs/domain.md §4 step 3', readAbsentFrame, 'esme-ka', 'acb-ka', 'valid');
macCase('acb-long-frame', 'a frame with 82-form lengths (certificate in other-information)', 'docs/domain.md §3, §4', withCertFrame, 'esme-ka', 'acb-ka', 'valid');
macCase('acb-long-content', 'a frame with an 81-form content length', 'docs/domain.md §3, §4', longFrame, 'esme-ka', 'acb-ka', 'valid');
macCase('acb-originated', 'an ACB-originated command: the OtherInfo originator is the ACB because it is the APDU originator', 'docs/domain.md §4 step 2', acbOriginatedFrame, 'esme-ka', 'acb-ka', 'valid');
macCase('acb-gas-meter', 'GCS32 to the gas meter: its own KA key', 'docs/domain.md §4', gcs32Frame, 'gsme-ka', 'acb-ka', 'valid');
macCase('device-response-mode-02', 'a device response MAC (mode 02): supplier KA private × device KA public', 'docs/domain.md §4 (device MAC)', respMacd.message, 'supplier-ka', 'esme-ka', 'valid');
macCase('device-response-device-side', 'the same response MAC recomputed by the device', 'docs/domain.md §4', respMacd.message, 'esme-ka', 'supplier-ka', 'valid');
macCase('device-alert-mode-03', 'a device alert MAC (mode 03)', 'docs/domain.md §4 (mode 03 alert)', alert.message, 'supplier-ka', 'esme-ka', 'valid');

macCase('wrong-acb-key', 'MAC made with another KA key than the ACB key the meter trusts', 'docs/domain.md §4 step 1', acbMac(ecs43Signed, 'esme-ka', 'impostor-ka'), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('wrong-device-key', "MAC made for the gas meter's KA key, checked by the electricity meter", 'docs/domain.md §4 step 1', acbMac(ecs43Signed, 'gsme-ka'), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('wrong-verifier-peer', "the meter checks with the supplier's KA key instead of the ACB's", 'docs/domain.md §4 step 1', F, 'esme-ka', 'supplier-ka', 'invalid', MAC_INVALID);
macCase('acb-mac-by-supplier-key', "MAC made with the supplier's KA key (the supplier is not the ACB)", 'docs/domain.md §1 (the ACB adds the MAC)', acbMac(ecs43Signed, 'esme-ka', 'supplier-ka'), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-originator-is-acb', "OtherInfo with the ACB's title as originator instead of the User's", 'docs/domain.md §4 step 2 (the originator is the User, not the ACB)', frameWith(Sapdu, manualMac(Sapdu, { parts: { originator: ACB } })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-mode-02-on-command', 'mode 02 (response) in the OtherInfo of a command', 'docs/domain.md §4 step 2 (mode 01 command)', frameWith(Sapdu, manualMac(Sapdu, { parts: { mode: 2 } })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-mode-04-on-command', 'mode 04 (payload) in the OtherInfo of a command', 'docs/domain.md §4 step 2', frameWith(Sapdu, manualMac(Sapdu, { parts: { mode: 4 } })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-counter-off-by-one', 'OtherInfo counter one above the APDU counter', 'docs/domain.md §4 step 2', frameWith(Sapdu, manualMac(Sapdu, { parts: { counter: C + 1n } })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-titles-swapped', 'OtherInfo with originator and recipient swapped', 'docs/domain.md §4 step 2', frameWith(Sapdu, manualMac(Sapdu, { parts: { originator: DEVICE, recipient: SUPPLIER } })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-no-counter-prefix', 'K = SHA-256(Z ‖ OtherInfo) without 00000001', 'docs/domain.md §4 step 2 (NIST SP 800-56A one-step KDF)', frameWith(Sapdu, manualMac(Sapdu, { kdf: (zv, i) => sha256(zv, i).subarray(0, 16) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-last-16-bytes', 'K = the last 16 bytes of the hash', 'docs/domain.md §4 step 2 (first 16 bytes)', frameWith(Sapdu, manualMac(Sapdu, { kdf: (zv, i) => sha256(Uint8Array.of(0, 0, 0, 1), zv, i).subarray(16) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('kdf-z-is-full-point', 'Z taken as the whole shared point x ‖ y instead of its x-coordinate', 'docs/domain.md §4 step 1 (x-coordinate)', frameWith(Sapdu, manualMac(Sapdu, {
  kdf: (_zv, i) => sha256(Uint8Array.of(0, 0, 0, 1), p256.getSharedSecret(seededSecret('acb-ka'), p256.getPublicKey(seededSecret('esme-ka'), false), false).subarray(1), i).subarray(0, 16),
})), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('iv-acb-title', "IV from the ACB's title instead of the originator's", 'docs/domain.md §4 step 3 (IV = originator title ‖ 00000000)', frameWith(Sapdu, manualMac(Sapdu, { iv: gcmIv(ACB) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('iv-recipient-title', "IV from the recipient's title", 'docs/domain.md §4 step 3', frameWith(Sapdu, manualMac(Sapdu, { iv: gcmIv(DEVICE) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('iv-counter-one', 'IV = originator title ‖ 00000001', 'docs/domain.md §4 step 3', frameWith(Sapdu, manualMac(Sapdu, { iv: concatBytes(gcmIv(SUPPLIER).subarray(0, 8), Uint8Array.of(0, 0, 0, 1)) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('aad-five-byte-prefix', 'AAD = 11 00 00 00 00 ‖ APDU (the frame security header, one 00 short)', 'docs/domain.md §4 step 3 (11 00 00 00 00 00)', frameWith(Sapdu, manualMac(Sapdu, { aad: concatBytes(fromHex('1100000000'), Sapdu) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('aad-no-prefix', 'AAD = the APDU alone', 'docs/domain.md §4 step 3', frameWith(Sapdu, manualMac(Sapdu, { aad: Sapdu })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('aad-without-signature', 'AAD stops at the last content byte (signature field left out)', 'docs/domain.md §4 step 3 (including its signature field)', frameWith(Sapdu, manualMac(Sapdu, { aad: concatBytes(fromHex('110000000000'), Sapdu.subarray(0, contentEnd(Sapdu))) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('aad-signed-range-only', 'AAD = prefix ‖ the bytes the User signature covers (no DF, no signature)', 'docs/domain.md §4 step 3 (whole APDU)', frameWith(Sapdu, manualMac(Sapdu, { aad: concatBytes(fromHex('110000000000'), Sapdu.subarray(1, contentEnd(Sapdu))) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('tag-last-12-bytes', 'the last 12 bytes of the 16-byte GCM tag instead of the first 12', 'docs/domain.md §4 step 3 (12-byte tag); NIST SP 800-38D §5.2.1.2 (MSB)', frameWith(Sapdu, manualMac(Sapdu, { tag: (t) => t.subarray(4) })), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
macCase('response-mode-01', 'a device response MAC made with mode 01', 'docs/domain.md §4 (mode 02 response)', (() => {
  const apdu = apduBytes(parseMessage(respMacd.message));
  return frameWith(apdu, manualMac(apdu, { local: 'esme-ka', peer: 'supplier-ka', parts: { mode: 1 } }));
})(), 'supplier-ka', 'esme-ka', 'invalid', MAC_INVALID);
macCase('response-wrong-recipient-key', "a device response MAC checked with the ACB's key instead of the supplier's", 'docs/domain.md §4 (device KA × recipient KA)', respMacd.message, 'acb-ka', 'esme-ka', 'invalid', MAC_INVALID);
for (const [where, at] of [
  ['cra', 16],
  ['counter', 24],
  ['originator', 26],
  ['recipient', 42],
  ['message-code', 46],
  ['content', 60],
  ['signature-length', -1],
  ['signature', 100],
  ['mac-first', 134],
  ['mac-last', 145],
] as const) {
  if (at < 0) continue; // 40 → 41 is structural (messages.json)
  macCase(`bit-flipped-${where}`, `one bit flipped in the ${where.replace('-', ' ')} (frame offset ${at})`, 'docs/domain.md §4 step 3 (AAD = the whole APDU)', flip(F, at, where === 'cra' ? 0x02 : 0x01), 'esme-ka', 'acb-ka', 'invalid', MAC_INVALID);
}
macCase('not-ciphered', 'a bare signed pre-command: no MAC to check', 'docs/domain.md §3', S, 'esme-ka', 'acb-ka', 'invalid', 'ERR_GBCS_NOT_CIPHERED');
macCase('malformed-frame', 'a frame whose length is one too long', 'docs/domain.md §3', setByte(F, 8, 0x8a), 'esme-ka', 'acb-ka', 'invalid', 'ERR_GBCS_MALFORMED');

// docs/domain.md §4 known answers (the reference remote-disconnect command)
const KAT_Z = 'ED342441DF01551A6BEAFF3B54ADC981F4C6A7E71DFF4C3E1CC80B3C9F4E5AC0';
const KAT_OI = '6085740608030090B3D51F30010000090100000000000003E800DB1234567890A0';
const KAT_K = 'EC1D51BD8F8BF0CDD2314CF396CC12C0';
const KAT_GCM = { key: '000102030405060708090A0B0C0D0E0F', iv: '90B3D51F3003000000000000', aad: hex(text('helloworld')) };
katCase('kat-otherinfo', 'docs/domain.md §4 OtherInfo: originator 90B3D51F30010000, command, counter 1000, recipient 00DB1234567890A0', 'docs/domain.md §4 (known answer)', { kind: 'otherinfo', originator: SUPPLIER, mode: 1, counter: '1000', recipient: DEVICE, otherInfo: KAT_OI }, 'valid');
katCase('kat-otherinfo-counter-little-endian', 'the counter written little-endian', 'docs/domain.md §4 step 2 (counter big-endian)', { kind: 'otherinfo', originator: SUPPLIER, mode: 1, counter: '1000', recipient: DEVICE, otherInfo: KAT_OI.replace('00000000000003E8', 'E803000000000000') }, 'invalid');
katCase('kat-otherinfo-acb-originator', "the ACB's title in place of the User's", 'docs/domain.md §4 step 2', { kind: 'otherinfo', originator: SUPPLIER, mode: 1, counter: '1000', recipient: DEVICE, otherInfo: hex(oi({ originator: ACB, mode: 1, counter: 1000n, recipient: DEVICE })) }, 'invalid');
katCase('kat-kdf', 'docs/domain.md §4 KDF: Z and OtherInfo give K', 'docs/domain.md §4 (known answer)', { kind: 'kdf', z: KAT_Z, otherInfo: KAT_OI, key: KAT_K }, 'valid');
katCase('kat-kdf-no-counter-prefix', 'K without the 00000001 prefix', 'docs/domain.md §4 step 2', { kind: 'kdf', z: KAT_Z, otherInfo: KAT_OI, key: hex(sha256(fromHex(KAT_Z), fromHex(KAT_OI)).subarray(0, 16)) }, 'invalid');
katCase('kat-kdf-last-16', 'the last 16 bytes of the hash', 'docs/domain.md §4 step 2', { kind: 'kdf', z: KAT_Z, otherInfo: KAT_OI, key: hex(sha256(fromHex('00000001'), fromHex(KAT_Z), fromHex(KAT_OI)).subarray(16)) }, 'invalid');
katCase('kat-kdf-z-bit-flipped', 'Z with its last bit flipped', 'docs/domain.md §4', { kind: 'kdf', z: hex(flip(fromHex(KAT_Z), 31)), otherInfo: KAT_OI, key: KAT_K }, 'invalid');
katCase('kat-gcm', 'docs/domain.md §4 AES-128-GCM: key 00…0F, IV 90B3D51F30030000 ‖ 00000000, AAD "helloworld", empty plaintext', 'docs/domain.md §4 (known answer)', { kind: 'gcm', ...KAT_GCM, tag: 'FB3AFED43B78508864F00DA3' }, 'valid');
katCase('kat-gcm-last-12', 'the last 12 bytes of the 16-byte tag', 'docs/domain.md §4 step 3', { kind: 'gcm', ...KAT_GCM, tag: hex(tag16(fromHex(KAT_GCM.key), fromHex(KAT_GCM.iv), fromHex(KAT_GCM.aad)).tag.subarray(4)) }, 'invalid');
katCase('kat-gcm-bit-flipped', 'the known tag with one bit flipped', 'docs/domain.md §4', { kind: 'gcm', ...KAT_GCM, tag: hex(flip(fromHex('FB3AFED43B78508864F00DA3'), 11)) }, 'invalid');
if (hex(tag16(fromHex(KAT_GCM.key), fromHex(KAT_GCM.iv), fromHex(KAT_GCM.aad)).tag.subarray(0, 12)) !== 'FB3AFED43B78508864F00DA3') throw new Error('node:crypto disagrees with the docs/domain.md §4 GCM known answer');
if (hex(sha256(fromHex('00000001'), fromHex(KAT_Z), fromHex(KAT_OI)).subarray(0, 16)) !== KAT_K) throw new Error('node:crypto disagrees with the docs/domain.md §4 KDF known answer');

// ---- payloads.json -------------------------------------------------------------------------------

interface PayloadCase extends Base {
  input: { message: string; data: string; privateKey: KeyLabel; publicKey: KeyLabel };
  plaintext?: string;
  offset?: number;
}
const payloadCases: PayloadCase[] = [];
function payloadCase(
  id: string,
  comment: string,
  clause: string,
  message: Uint8Array,
  data: Uint8Array,
  keys: [KeyLabel, KeyLabel],
  expected: { plaintext: Uint8Array } | { errorCode: string; offset?: number },
): void {
  uniqueId(`payloads/${id}`);
  const r = outcome(() => decryptPayload(message, data, { privateKey: priv(keys[0]), publicKey: pub(keys[1]) }));
  if ('plaintext' in expected) {
    if (!r.value || hex(r.value) !== hex(expected.plaintext)) problems.push(`payloads ${id}: expected the plaintext, got ${r.code ?? 'other bytes'}`);
  } else if (r.code !== expected.errorCode || (expected.offset !== undefined && r.offset !== expected.offset)) {
    problems.push(`payloads ${id}: expected ${expected.errorCode}${expected.offset !== undefined ? ` at ${expected.offset}` : ''}, got ${r.code ?? 'a plaintext'}${r.offset !== undefined ? ` at ${r.offset}` : ''}`);
  }
  payloadCases.push({
    id,
    comment,
    clause,
    input: { message: hex(message), data: hex(data), privateKey: keys[0], publicKey: keys[1] },
    result: 'plaintext' in expected ? 'valid' : 'invalid',
    ...('plaintext' in expected ? { plaintext: hex(expected.plaintext) } : { errorCode: expected.errorCode, ...(expected.offset !== undefined ? { offset: expected.offset } : {}) }),
  });
}
const HEAD_END: [KeyLabel, KeyLabel] = ['supplier-ka', 'esme-ka'];
const DECRYPT_FAILED = { errorCode: 'ERR_GBCS_DECRYPT_FAILED' } as const;
/** A response whose sensitive payload was encrypted with `key`: the broken-rule cases. */
const respWithKey = async (key: Uint8Array) => signedResponse({ counter: C, messageCode: 0x0050, plaintext: READING, payloadKey: key });
/** The sensitive payload of the signed ECS43 response re-encrypted by hand with one parameter changed. */
function reencrypt(o: { iv?: Uint8Array; aad?: Uint8Array; tag?: (t: Uint8Array) => Uint8Array }): Uint8Array {
  const key = payloadKey(C, SUPPLIER);
  const { ciphertext, tag } = tag16(key, o.iv ?? gcmIv(DEVICE), o.aad ?? Uint8Array.of(0x31), READING);
  return concatBytes(Uint8Array.of(0x31, 0, 0, 0, 0), ciphertext, (o.tag ?? ((t) => t.subarray(0, 12)))(tag));
}
{
  const good = reencrypt({});
  if (hex(good) !== hex(respSigned.sensitive)) throw new Error('manual sensitive payload disagrees with encryptSensitivePayload');
}

payloadCase('signed-response', 'the sensitive payload of a device-signed response to ECS43, decrypted by the supplier (supplier KA × device KA, mode 04)', 'docs/domain.md §4 (sensitive payloads)', respSigned.message, respSigned.sensitive, HEAD_END, { plaintext: READING });
payloadCase('signed-response-device-side', 'the same payload decrypted with device KA × supplier KA (same key)', 'docs/domain.md §4', respSigned.message, respSigned.sensitive, ['esme-ka', 'supplier-ka'], { plaintext: READING });
payloadCase('macd-response', 'the payload of a MAC-d response to a read', 'docs/domain.md §4', respMacd.message, respMacd.sensitive, HEAD_END, { plaintext: text('register 1: 0001234.5 kWh') });
payloadCase('supplementary-fields', 'a response with supplementary fields: the key takes the supplementary originator counter and remote party id', 'docs/domain.md §4 (counter and recipient rule)', respSup.message, respSup.sensitive, HEAD_END, { plaintext: text('supplementary') });
payloadCase('supplementary-fields-signed', 'the same rule in a signed response', 'docs/domain.md §4', respSupSigned.message, respSupSigned.sensitive, HEAD_END, { plaintext: READING });
payloadCase('supplementary-id-without-originator-counter', 'other-information of 18 bytes: the key takes the supplementary remote party id and the originator counter', 'docs/domain.md §4 (the two rules apply independently)', respSupIdOnly.message, respSupIdOnly.sensitive, HEAD_END, { plaintext: text('supplementary id only') });
payloadCase('empty-plaintext', 'an empty plaintext: 31 ‖ 00000000 ‖ tag, 17 bytes', 'docs/domain.md §4', respEmpty.message, respEmpty.sensitive, HEAD_END, { plaintext: new Uint8Array(0) });
payloadCase('long-plaintext', 'a 100-byte plaintext', 'docs/domain.md §4', respLong.message, respLong.sensitive, HEAD_END, { plaintext: seededRandom('gbcs-long-plaintext')(100) });
payloadCase('alert', 'the payload of a device alert (CRA 03)', 'docs/domain.md §4 (responses and alerts)', alert.message, alert.sensitive, HEAD_END, { plaintext: text('supply tamper') });

payloadCase('ciphertext-bit-flipped', 'one bit flipped in the ciphertext', 'docs/domain.md §4 (GCM)', respSigned.message, flip(respSigned.sensitive, 5), HEAD_END, DECRYPT_FAILED);
payloadCase('tag-bit-flipped', 'one bit flipped in the tag', 'docs/domain.md §4 (GCM)', respSigned.message, flip(respSigned.sensitive, respSigned.sensitive.length - 1), HEAD_END, DECRYPT_FAILED);
payloadCase('wrong-key-impostor', "decrypted with another KA key than the supplier's", 'docs/domain.md §4', respSigned.message, respSigned.sensitive, ['impostor-ka', 'esme-ka'], DECRYPT_FAILED);
payloadCase('wrong-key-acb', "decrypted with the ACB's KA key (the payload is for the supplier)", 'docs/domain.md §4', respSigned.message, respSigned.sensitive, ['acb-ka', 'esme-ka'], DECRYPT_FAILED);
payloadCase('wrong-peer-device-ds', "decrypted against the device's DS key instead of its KA key", 'docs/domain.md §2 (one key usage), §4', respSigned.message, respSigned.sensitive, ['supplier-ka', 'esme-ds'], DECRYPT_FAILED);
payloadCase('moved-to-another-message', 'a valid payload in a response with another counter (the key depends on it)', 'docs/domain.md §4', respMacd.message, respSigned.sensitive, HEAD_END, DECRYPT_FAILED);
{
  const r = await respWithKey(payloadKey(C, SUPPLIER, 'esme-ka', 'supplier-ka', 2));
  payloadCase('key-mode-02', 'encrypted with the mode 02 (response MAC) key instead of mode 04', 'docs/domain.md §4 (mode 04 payload encryption)', r.message, r.sensitive, HEAD_END, DECRYPT_FAILED);
  const r1 = await respWithKey(payloadKey(C, SUPPLIER, 'esme-ka', 'supplier-ka', 1));
  payloadCase('key-mode-01', 'encrypted with a mode 01 key', 'docs/domain.md §4', r1.message, r1.sensitive, HEAD_END, DECRYPT_FAILED);
  const swapped = await respWithKey(payloadKey(C, DEVICE, 'esme-ka', 'supplier-ka', 4, SUPPLIER));
  payloadCase('key-titles-swapped', 'encrypted with originator and recipient swapped in the OtherInfo', 'docs/domain.md §4', swapped.message, swapped.sensitive, HEAD_END, DECRYPT_FAILED);
  const sup = { id: SUPPLEMENTARY_PARTY, counter: 7n, originatorCounter: 0x1122334455667788n };
  const ignoredCounter = macdResponse({ counter: C + 13n, messageCode: READ_CODE, plaintext: text('supplementary'), supplementary: sup, payloadKey: payloadKey(C + 13n, SUPPLEMENTARY_PARTY) });
  payloadCase('supplementary-counter-ignored', 'encrypted with the originator counter although a supplementary originator counter is present', 'docs/domain.md §4 (counter = supplementary originator counter if present)', ignoredCounter.message, ignoredCounter.sensitive, HEAD_END, DECRYPT_FAILED);
  const ignoredId = macdResponse({ counter: C + 13n, messageCode: READ_CODE, plaintext: text('supplementary'), supplementary: sup, payloadKey: payloadKey(sup.originatorCounter, SUPPLIER) });
  payloadCase('supplementary-id-ignored', 'encrypted for the recipient although a supplementary remote party id is present', 'docs/domain.md §4 (recipient = supplementary remote party id if present)', ignoredId.message, ignoredId.sensitive, HEAD_END, DECRYPT_FAILED);
}
payloadCase('aad-empty', 'encrypted with no AAD instead of the single byte 31', 'docs/domain.md §4 (AAD = 31)', respSigned.message, reencrypt({ aad: new Uint8Array(0) }), HEAD_END, DECRYPT_FAILED);
payloadCase('aad-header', 'encrypted with AAD = 31 ‖ 00000000 (the whole header)', 'docs/domain.md §4 (AAD = 31)', respSigned.message, reencrypt({ aad: fromHex('3100000000') }), HEAD_END, DECRYPT_FAILED);
payloadCase('iv-recipient-title', "encrypted with the recipient's title in the IV", 'docs/domain.md §4 (same IV rule: originator title)', respSigned.message, reencrypt({ iv: gcmIv(SUPPLIER) }), HEAD_END, DECRYPT_FAILED);
payloadCase('tag-last-12-bytes', 'the last 12 bytes of the 16-byte tag', 'docs/domain.md §4 (12-byte tag)', respSigned.message, reencrypt({ tag: (t) => t.subarray(4) }), HEAD_END, DECRYPT_FAILED);
payloadCase('tag-16-bytes', 'the full 16-byte tag: the last 12 bytes are taken as the tag', 'docs/domain.md §4 (12-byte tag)', respSigned.message, reencrypt({ tag: (t) => t }), HEAD_END, DECRYPT_FAILED);
payloadCase('security-control-30', 'first byte 30, not 31', 'docs/domain.md §4 (31 ‖ …)', respSigned.message, setByte(respSigned.sensitive, 0, 0x30), HEAD_END, { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });
payloadCase('invocation-counter-1', 'invocation counter 00000001 (docs/domain.md fixes it at 0)', 'docs/domain.md §4 (4-byte invocation counter (0))', respSigned.message, setByte(respSigned.sensitive, 4, 0x01), HEAD_END, { errorCode: 'ERR_GBCS_MALFORMED', offset: 1 });
payloadCase('too-short', '16 bytes: no room for 31, the counter and a 12-byte tag', 'docs/domain.md §4', respEmpty.message, respEmpty.sensitive.subarray(0, 16), HEAD_END, { errorCode: 'ERR_GBCS_MALFORMED', offset: 16 });
payloadCase('empty', 'no bytes', 'docs/domain.md §4', respEmpty.message, new Uint8Array(0), HEAD_END, { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });

// ------------------------------------------------------------------------------------------------

const credentials = await credentialCases();
problems.push(...credentials.problems);

if (problems.length > 0) {
  console.error(`generate-gbcs-vectors: ${problems.length} case(s) do not behave as declared:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

const keyNote = 'Keys are derived from the labels with SHA-256 (scripts/vectors/deterministic.ts; the same labels as test-vectors/pki) and are public test material: never use them outside tests.';
const titles = { supplier: SUPPLIER, acb: ACB, electricityMeter: DEVICE, gasMeter: GAS, supplementaryRemoteParty: SUPPLEMENTARY_PARTY };
const files: Record<string, unknown> = {
  'messages.json': {
    source: 'docs/domain.md §3 (GBCS message layout), §5 (payloads)',
    generator: GENERATOR,
    comment:
      'parseMessage cases. valid: the message parses, `expected` gives its fields (bigints as decimal strings, bytes as upper-case hex, ranges as [start, end) offsets) and buildMessage of the parse gives the bytes back. invalid: exactly one structural rule is broken; parseMessage throws errorCode with context.offset = offset.',
    titles,
    cases: messageCases,
  },
  'signatures.json': {
    source: 'docs/domain.md §4 (User signature; device-signed responses)',
    generator: GENERATOR,
    comment:
      'verifySignature(message, keys[publicKey].publicKey) cases. valid: true; invalid: false, or a throw of errorCode where one is given. Signatures are RFC 6979 with lowS off; highS says which half s is in. The signature covers the bytes after DF up to the last content byte.',
    keyNote,
    keys: keysOf(['supplier-ds', 'supplier-ka', 'esme-ds', 'impostor-ds'], false),
    titles,
    cases: signatureCases,
  },
  'macs.json': {
    source: 'docs/domain.md §4 (ACB MAC, device MAC; known answers)',
    generator: GENERATOR,
    comment:
      "kind frame: verifyMac(frame, { privateKey: keys[privateKey].privateKey, publicKey: keys[publicKey].publicKey }) is true for valid; for invalid it is false (errorCode ERR_GBCS_MAC_INVALID, the code assertMacBytes raises) or it throws errorCode. Each invalid frame makes one mistake: a wrong key, one flipped bit, or one KDF / IV / AAD / tag rule of docs/domain.md §4 done wrong. kind otherinfo / kdf / gcm: the docs/domain.md §4 known answers and common mistakes; valid means the library's otherInfo / kdf / gcmTag gives exactly the value in the case.",
    keyNote,
    keys: keysOf(['supplier-ka', 'acb-ka', 'esme-ka', 'gsme-ka', 'impostor-ka'], true),
    titles,
    cases: macCases,
  },
  'payloads.json': {
    source: 'docs/domain.md §4 (sensitive payloads)',
    generator: GENERATOR,
    comment:
      'decryptPayload(message, data, { privateKey: keys[privateKey].privateKey, publicKey: keys[publicKey].publicKey }) cases. valid: returns plaintext. invalid: throws errorCode (with context.offset = offset where given). data is the octet string value 31 ‖ 00000000 ‖ ciphertext ‖ tag from the message content; each invalid case breaks one rule.',
    keyNote,
    keys: keysOf(['supplier-ka', 'acb-ka', 'esme-ka', 'esme-ds', 'impostor-ka'], true),
    titles,
    cases: payloadCases,
  },
};

const check = process.argv.includes('--check');
const differ = writeOrCheck(OUT, files, check, ROOT);
console.log(
  `${check ? 'checked' : 'wrote'} ${Object.keys(files).length} files: ${messageCases.length} message cases, ${signatureCases.length} signature cases, ${macCases.length} MAC cases, ${payloadCases.length} payload cases`,
);
// credentials.json is reported on a line of its own (the first line keeps its count of the four
// message-layer files).
const credentialFiles: Record<string, unknown> = {
  'credentials.json': {
    source: 'docs/domain.md §9 (CS02b, CS02c/d/e), §10 (how the toolkit builds and reads them)',
    generator: GENERATOR,
    comment:
      'Each case names a decoder of @smki/gbcs (command: decodeUpdateSecurityCredentialsCommand, giving { mode, messageCode, payload }; payload: decodeUpdateSecurityCredentials; response: decodeUpdateSecurityCredentialsResponse; alert: decodeCredentialsAlert; cs02c-/cs02d-/cs02e-command and -response: the CS02c/d/e decoders) and its input as hex. valid: the decoder returns `expected` (bigints as decimal strings, bytes as upper-case hex, times as ISO text). invalid: it throws errorCode (with context.offset = offset where given); each invalid case breaks one rule. Certificates come from a hierarchy made from labelled keys (scripts/vectors/deterministic.ts) and are public test material.',
    titles: credentials.titles,
    cases: credentials.cases,
  },
};
const credentialsDiffer = writeOrCheck(OUT, credentialFiles, check, ROOT);
console.log(`${check ? 'checked' : 'wrote'} credentials.json: ${credentials.cases.length} credential-command cases`);
if (differ + credentialsDiffer > 0) process.exit(1);
