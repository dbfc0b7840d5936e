// A simulated smart meter for round-trip tests (the device side): docs/domain.md §3 (frames),
// §4 (KDF, MAC, signatures, sensitive payloads), §5 (critical commands), §6 (anti-replay), §9
// (CS02b Update Security Credentials: trust-anchor cells, the chain of a replacement to the root
// cell, per-cell outcomes, the future-dated alert 0x00CB).
//
// Independence: this file imports nothing from packages/gbcs/src nor from @smki/*. It slices
// frames by hand and does its cryptography with plain node:crypto and its own keys, so a mistake
// in the library under test cannot be repeated here and cancel out. Keep it that way: if the
// simulator needs a helper, write it below.
import {
  createCipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';

/** Why the meter refused a frame. */
export type RejectReason =
  | 'malformed' // not a general-ciphering frame around a general-signing APDU (docs/domain.md §3)
  | 'not-a-command' // CRA flag is not 01
  | 'wrong-recipient' // the recipient system title is not this meter's
  | 'unknown-originator' // neither the installed supplier nor the ACB
  | 'mac-invalid' // the ACB MAC does not verify (docs/domain.md §4)
  | 'signature-missing' // a critical command without the User's signature (docs/domain.md §4, §5)
  | 'signature-invalid' // the User's signature does not verify under the installed supplier DS key
  | 'counter-replayed' // originator counter not above the floor (docs/domain.md §6)
  // CS02b (docs/domain.md §9): the whole command is refused and nothing changes.
  | 'credentials-malformed' // the CS02b payload is not the §9 DER layout
  | 'credentials-mode' // mode not 2-8, or not the message code's mode
  | 'credentials-authorising-cell' // control [2] is not the mode's authorising DS cell (or present in mode 4)
  | 'credentials-originator' // the originator is not the party in the mode's authorising cell
  | 'credentials-signature-unexpected' // mode 4 (ACB by ACB) carries a User signature
  | 'credentials-sequence' // control [3] is not the header's originator counter
  | 'credentials-cell-not-allowed'; // a target cell the device does not have, the mode may not replace, or named twice

/** What {@link SimulatedMeter.receive} returns. */
export interface MeterResult {
  readonly accepted: boolean;
  readonly reason?: RejectReason;
  readonly detail?: string;
  /**
   * The meter's answer: a bare device-signed general-signing APDU for a critical command, a
   * general-ciphering frame with the device MAC (mode 02) otherwise.
   */
  readonly response?: Uint8Array;
  /** The plaintext the meter put in the response's sensitive payload. */
  readonly sensitivePlaintext?: Uint8Array;
  /** The sensitive payload (`31 ‖ 00000000 ‖ ciphertext ‖ tag`) as it is in the response content. */
  readonly sensitivePayload?: Uint8Array;
  /** CS02b: the command is future-dated and waits for {@link SimulatedMeter.runScheduled}. */
  readonly scheduled?: boolean;
}

/** A trust-anchor cell (docs/domain.md §9): role, key usage, cell usage (absent: management). */
export interface SimCell {
  readonly role: number;
  readonly keyUsage: 'digitalSignature' | 'keyAgreement' | 'keyCertSign';
  readonly cellUsage?: 'management' | 'prepayment';
}

/** A cell and the certificate (X.509 DER) it holds. */
export interface SimCellContent {
  readonly cell: SimCell;
  readonly certificate: Uint8Array;
}

/** A key pair (P-256). */
export interface SimKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** The supplier the meter trusts: its entity id and the DS and KA keys of its installed certificates. */
export interface SupplierAnchor {
  readonly entityId: string;
  readonly dsPublicKey: KeyObject;
  readonly kaPublicKey: KeyObject;
}

/** The Access Control Broker the meter trusts: its KA key (and its entity id, for ACB-originated commands). */
export interface AcbAnchor {
  readonly entityId: string;
  readonly kaPublicKey: KeyObject;
}

/** Supplementary fields the meter puts in the other-information of its responses. */
export interface ResponseSupplementary {
  readonly remotePartyId: string;
  readonly remotePartyCounter: bigint;
  readonly originatorCounter: bigint;
}

export interface SimulatedMeterOptions {
  /** The meter's EUI-64 (16 hex digits). Default 00DB1234567890A0. */
  readonly eui64?: string;
  /** The supplier's keys when its cells hold no certificate (a certificate in a cell wins). */
  readonly supplier?: SupplierAnchor;
  /** The ACB's KA key when its KA cell holds no certificate (a certificate in the cell wins). */
  readonly acb?: AcbAnchor;
  /**
   * Trust-anchor cells and their certificates (docs/domain.md §9): the supplier's DS, KA and
   * prepayment KA, the network operator's, the ACB's, the WAN provider's, the transitional change
   * of supplier's, the recovery party's and the root's (keyCertSign). Set with {@link SimulatedMeter.setCell}.
   */
  readonly cells?: readonly SimCellContent[];
  /**
   * How the CS02b response and alert write the lengths of their SEQUENCEs: `device` (default) in
   * the long form `82 hh ll` even when short, as devices do (docs/domain.md §9); `minimal` DER.
   */
  readonly credentialsLengths?: 'device' | 'minimal';
  /** Message codes that are critical when the supplier sends them (e.g. 0x0050). */
  readonly criticalCodes: Iterable<number>;
  /** The meter's own keys; generated when absent. */
  readonly ds?: SimKeyPair;
  readonly ka?: SimKeyPair;
  /** Put these supplementary fields in each response's other-information (length 26). */
  readonly responseSupplementary?: ResponseSupplementary;
  /** What the meter reports, encrypted, in each response (default: a fixed reading). */
  readonly responsePlaintext?: (messageCode: number, counter: bigint) => Uint8Array;
}

const FRAME_PREFIX = Buffer.from('DD000000000000', 'hex');
const SECURITY_HEADER = Buffer.from('1100000000', 'hex');
const MAC_AAD_PREFIX = Buffer.from('110000000000', 'hex');
const OTHER_INFO_ALG_ID = Buffer.from('60857406080300', 'hex');
const MAC_LENGTH = 12;

const MODE_COMMAND = 1;
const MODE_RESPONSE = 2;
const MODE_PAYLOAD = 4;

function hexTitle(s: string): Buffer {
  const clean = s.replace(/[-: ]/g, '');
  if (!/^[0-9A-Fa-f]{16}$/.test(clean)) throw new Error(`simulator: not an EUI-64: ${s}`);
  return Buffer.from(clean, 'hex');
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

/** GBCS length: one byte below 0x80, else 0x81/0x82/0x83 and 1–3 bytes. */
function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  if (n < 0x100) return Buffer.of(0x81, n);
  if (n < 0x10000) return Buffer.of(0x82, n >> 8, n & 0xff);
  return Buffer.of(0x83, n >> 16, (n >> 8) & 0xff, n & 0xff);
}

class Malformed extends Error {}

function decodeLength(b: Buffer, at: number): { value: number; next: number } {
  const first = b[at];
  if (first === undefined) throw new Malformed(`length missing at ${at}`);
  if (first < 0x80) return { value: first, next: at + 1 };
  const n = first - 0x80;
  if (n < 1 || n > 3) throw new Malformed(`length form ${first.toString(16)} at ${at}`);
  if (at + 1 + n > b.length) throw new Malformed(`length truncated at ${at}`);
  let v = 0;
  for (let i = 1; i <= n; i++) v = v * 256 + (b[at + i] as number);
  return { value: v, next: at + 1 + n };
}

/** The fields of a general-signing APDU, as offsets into it. */
interface Apdu {
  cra: number;
  counter: bigint;
  originator: Buffer;
  recipient: Buffer;
  messageCode: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the last content byte: the signature covers apdu[1, contentEnd). */
  contentEnd: number;
  signature: Buffer | null;
}

function sliceApdu(apdu: Buffer): Apdu {
  let p = 0;
  const need = (n: number) => {
    if (p + n > apdu.length) throw new Malformed(`APDU truncated at ${p}`);
  };
  need(3);
  if (apdu[0] !== 0xdf) throw new Malformed('APDU does not start DF');
  if (apdu[1] !== 0x09) throw new Malformed('transaction-id length is not 9');
  const cra = apdu[2] as number;
  p = 3;
  need(8);
  const counter = apdu.readBigUInt64BE(p);
  p += 8;
  need(9);
  if (apdu[p] !== 8) throw new Malformed('originator length');
  const originator = apdu.subarray(p + 1, p + 9);
  p += 9;
  need(9);
  if (apdu[p] !== 8) throw new Malformed('recipient length');
  const recipient = apdu.subarray(p + 1, p + 9);
  p += 9;
  need(1);
  if (apdu[p] === 0x0c) {
    need(13);
    p += 13;
  } else if (apdu[p] === 0) p += 1;
  else throw new Malformed('date-time');
  const oi = decodeLength(apdu, p);
  p = oi.next;
  need(oi.value);
  if (oi.value < 2) throw new Malformed('other-information shorter than a message code');
  const messageCode = apdu.readUInt16BE(p);
  p += oi.value;
  const content = decodeLength(apdu, p);
  p = content.next;
  need(content.value);
  const contentStart = p;
  p += content.value;
  const contentEnd = p;
  let signature: Buffer | null = null;
  if (p < apdu.length) {
    const sl = apdu[p] as number;
    if (sl === 0x40) {
      p += 1;
      need(64);
      signature = apdu.subarray(p, p + 64);
      p += 64;
    } else if (sl === 0) p += 1;
    else throw new Malformed('signature length');
  }
  if (p !== apdu.length) throw new Malformed('bytes after the APDU');
  return { cra, counter, originator, recipient, messageCode, contentStart, contentEnd, signature };
}

/** docs/domain.md §4: K = first 16 bytes of SHA-256(00000001 ‖ Z ‖ OtherInfo). */
function gbcsKey(privateKey: KeyObject, publicKey: KeyObject, originator: Buffer, mode: number, counter: bigint, recipient: Buffer): Buffer {
  const z = diffieHellman({ privateKey, publicKey });
  const otherInfo = Buffer.concat([OTHER_INFO_ALG_ID, originator, Buffer.of(0x09, mode), u64(counter), recipient]);
  const k = createHash('sha256').update(Buffer.of(0, 0, 0, 1)).update(z).update(otherInfo).digest().subarray(0, 16);
  z.fill(0);
  return Buffer.from(k);
}

/** AES-128-GCM with IV = originator ‖ 00000000: returns ciphertext and the 12-byte tag. */
function gcm(key: Buffer, originator: Buffer, aad: Buffer, plaintext: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const c = createCipheriv('aes-128-gcm', key, Buffer.concat([originator, Buffer.alloc(4)]));
  c.setAAD(aad);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return { ciphertext, tag: c.getAuthTag().subarray(0, MAC_LENGTH) };
}

function apduMac(key: Buffer, originator: Buffer, apdu: Buffer): Buffer {
  return gcm(key, originator, Buffer.concat([MAC_AAD_PREFIX, apdu]), Buffer.alloc(0)).tag;
}

function generateP256(): SimKeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** A 65-byte uncompressed point as a public KeyObject (for keys that live elsewhere, e.g. a key store). */
export function simPublicKeyFromPoint(point: Uint8Array): KeyObject {
  if (point.length !== 65 || point[0] !== 0x04) throw new Error('simulator: not an uncompressed P-256 point');
  const b = Buffer.from(point);
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b.subarray(1, 33).toString('base64url'), y: b.subarray(33).toString('base64url') }, format: 'jwk' });
}

// ---- CS02b: the simulator's own DER reader and writer, and a minimal X.509 reader ----------------
// docs/domain.md §9 (payload, cells, response, alert) and RFC 5280 4.1 (Certificate, TBSCertificate).

/** One TLV: the tag, where it starts, where its value starts and ends. */
interface Tlv {
  tag: number;
  start: number;
  valueStart: number;
  end: number;
}

/** Read one definite-length TLV at `at`, inside [at, limit). Low tag numbers only; lengths up to 3 bytes. */
function readTlv(b: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Malformed(`TLV truncated at ${at}`);
  const tag = b[at] as number;
  if ((tag & 0x1f) === 0x1f) throw new Malformed(`high tag number at ${at}`);
  const first = b[at + 1] as number;
  let len: number;
  let valueStart: number;
  if (first < 0x80) {
    len = first;
    valueStart = at + 2;
  } else {
    const n = first & 0x7f;
    if (n < 1 || n > 3) throw new Malformed(`length form ${first.toString(16)} at ${at + 1}`);
    if (at + 2 + n > limit) throw new Malformed(`length truncated at ${at + 1}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[at + 2 + i] as number);
    valueStart = at + 2 + n;
  }
  if (valueStart + len > limit) throw new Malformed(`value of ${len} bytes past the end at ${at}`);
  return { tag, start: at, valueStart, end: valueStart + len };
}

/** The TLVs directly inside a constructed TLV (at most 64: a device has a handful of cells). */
function childrenOf(b: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.valueStart; p < t.end; ) {
    if (out.length >= 64) throw new Malformed(`more than 64 elements at ${t.start}`);
    const c = readTlv(b, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined) throw new Malformed(`${what} missing`);
  if (t.tag !== tag) throw new Malformed(`${what}: tag ${t.tag.toString(16)}, expected ${tag.toString(16)} at ${t.start}`);
  return t;
}

function valueOf(b: Buffer, t: Tlv): Buffer {
  return b.subarray(t.valueStart, t.end);
}

/** A non-negative INTEGER (any tag: INTEGER, ENUMERATED, an IMPLICIT [n]) below 2^64. */
function uintOf(b: Buffer, t: Tlv, what: string): bigint {
  const v = valueOf(b, t);
  if (v.length === 0 || ((v[0] as number) & 0x80) !== 0) throw new Malformed(`${what}: not a non-negative INTEGER at ${t.start}`);
  if (v.length > 9 || (v.length === 9 && v[0] !== 0)) throw new Malformed(`${what}: above 2^64 at ${t.start}`);
  let x = 0n;
  for (const byte of v) x = (x << 8n) | BigInt(byte);
  return x;
}

const KU_BITS: Readonly<Record<SimCell['keyUsage'], string>> = { digitalSignature: '0780', keyAgreement: '0308', keyCertSign: '0204' };

/** A cell body: INTEGER role, BIT STRING key usage, INTEGER 1 (prepayment) OPTIONAL. */
function cellOf(b: Buffer, t: Tlv, what: string): SimCell {
  const [r, ku, usage, extra] = childrenOf(b, t);
  const role = Number(uintOf(b, expectTag(r, 0x02, `${what} role`), `${what} role`));
  const bits = valueOf(b, expectTag(ku, 0x03, `${what} key usage`)).toString('hex');
  const keyUsage = (Object.keys(KU_BITS) as SimCell['keyUsage'][]).find((k) => KU_BITS[k] === bits);
  if (keyUsage === undefined) throw new Malformed(`${what}: key usage ${bits}`);
  if (extra !== undefined) throw new Malformed(`${what}: too many fields`);
  if (usage === undefined) return { role, keyUsage, cellUsage: 'management' };
  if (uintOf(b, expectTag(usage, 0x02, `${what} cell usage`), `${what} cell usage`) !== 1n) throw new Malformed(`${what}: cell usage not 1`);
  return { role, keyUsage, cellUsage: 'prepayment' };
}

function cellKey(c: SimCell): string {
  return `${c.role}/${c.keyUsage}/${c.cellUsage ?? 'management'}`;
}

/** The floors of control [5] and inside [6]: SEQUENCE OF SEQUENCE { usage, seq }. */
function usageFloorsOf(b: Buffer, t: Tlv): { usage: number; floor: bigint }[] {
  return childrenOf(b, t).map((e) => {
    const [u, f, x] = childrenOf(b, expectTag(e, 0x30, 'usage floor'));
    if (x !== undefined) throw new Malformed('usage floor: too many fields');
    return { usage: Number(uintOf(b, expectTag(u, 0x02, 'usage'), 'usage')), floor: uintOf(b, expectTag(f, 0x02, 'usage floor'), 'usage floor') };
  });
}

/** A CS02b payload as the meter reads it (docs/domain.md §9). */
interface SimCredentialsCommand {
  mode: number;
  authorisingCell: SimCell | undefined;
  sequenceNumber: bigint;
  authorisingFloor: bigint | undefined;
  authorisingUsageFloors: { usage: number; floor: bigint }[];
  otherRoleFloors: { role: number; floor: bigint; usageFloors: { usage: number; floor: bigint }[] }[];
  replacements: { certificate: Buffer; cell: SimCell }[];
  certificationPath: Buffer[];
  executionTime: Date | undefined;
}

function parseCredentialsPayload(p: Buffer): SimCredentialsCommand {
  const top = expectTag(readTlv(p, 0, p.length), 0x30, 'CS02b SEQUENCE');
  if (top.end !== p.length) throw new Malformed('bytes after the CS02b SEQUENCE');
  const [control, reps, path, exec, extra] = childrenOf(p, top);
  if (extra !== undefined) throw new Malformed('CS02b: too many fields');
  const ctl = childrenOf(p, expectTag(control, 0x30, 'control'));
  const mode = Number(uintOf(p, expectTag(ctl[0], 0x02, 'mode'), 'mode'));
  // [0] key, [1] time checks, [2] cell, [3] seq, [4] floor, [5] usage floors, [6] other roles: in order.
  const tagged = new Map<number, Tlv>();
  let last = -1;
  for (const t of ctl.slice(1)) {
    const n = t.tag & 0x1f;
    const want = n === 2 || n === 5 || n === 6 ? 0xa0 | n : 0x80 | n;
    if ((t.tag & 0xc0) !== 0x80 || n > 6 || t.tag !== want || n <= last) throw new Malformed(`control: unexpected tag ${t.tag.toString(16)} at ${t.start}`);
    tagged.set(n, t);
    last = n;
  }
  const seq = tagged.get(3);
  if (seq === undefined) throw new Malformed('control [3] missing');
  const c2 = tagged.get(2);
  const c4 = tagged.get(4);
  const c5 = tagged.get(5);
  const c6 = tagged.get(6);
  const otherRoleFloors = c6
    ? childrenOf(p, c6).map((e) => {
        const [r, f, u, x] = childrenOf(p, expectTag(e, 0x30, 'role floor'));
        if (x !== undefined) throw new Malformed('role floor: too many fields');
        return {
          role: Number(uintOf(p, expectTag(r, 0x02, 'role'), 'role')),
          floor: uintOf(p, expectTag(f, 0x02, 'floor'), 'floor'),
          usageFloors: u === undefined ? [] : usageFloorsOf(p, expectTag(u, 0x30, 'role usage floors')),
        };
      })
    : [];
  const replacements = childrenOf(p, expectTag(reps, 0x30, 'replacements')).map((e) => {
    const [cert, cell, x] = childrenOf(p, expectTag(e, 0x30, 'replacement'));
    if (x !== undefined) throw new Malformed('replacement: too many fields');
    const c = expectTag(cert, 0x30, 'replacement certificate');
    return { certificate: Buffer.from(p.subarray(c.start, c.end)), cell: cellOf(p, expectTag(cell, 0x30, 'target cell'), 'target cell') };
  });
  const certificationPath = childrenOf(p, expectTag(path, 0x30, 'certification path')).map((c) => Buffer.from(p.subarray(expectTag(c, 0x30, 'path certificate').start, c.end)));
  let executionTime: Date | undefined;
  if (exec !== undefined) {
    const s = valueOf(p, expectTag(exec, 0x18, 'execution time')).toString('latin1');
    const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new Malformed(`execution time ${s}`);
    executionTime = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  return {
    mode,
    authorisingCell: c2 ? cellOf(p, c2, 'authorising cell') : undefined,
    sequenceNumber: uintOf(p, seq, 'sequence number'),
    authorisingFloor: c4 ? uintOf(p, c4, 'authorising floor') : undefined,
    authorisingUsageFloors: c5 ? usageFloorsOf(p, c5) : [],
    otherRoleFloors,
    replacements,
    certificationPath,
    executionTime,
  };
}

/** What the meter reads from a certificate (RFC 5280 4.1): just enough to chain it and fill a cell. */
interface SimCertificate {
  der: Buffer;
  tbs: Buffer;
  signature: Buffer; // DER ECDSA-Sig-Value
  issuer: Buffer; // the Name, whole
  subject: Buffer;
  publicKey: KeyObject;
  role: number | undefined; // subject OU, two hex digits (docs/domain.md §2)
  entityId: Buffer; // x500UniqueIdentifier, 8 bytes (zeros when absent, e.g. the root)
  ski: Buffer; // subjectKeyIdentifier, 8 bytes (zeros when absent)
  keyUsageBits: Buffer | undefined; // the keyUsage BIT STRING's value (unused-bits byte first)
  ca: boolean;
}

const OID_ECDSA_SHA256 = '2a8648ce3d040302';
const OID_OU = '55040b';
const OID_UNIQUE_ID = '55042d';
const OID_SKI = '551d0e';
const OID_KU = '551d0f';
const OID_BC = '551d13';

function parseSimCertificate(der: Buffer): SimCertificate {
  const cert = expectTag(readTlv(der, 0, der.length), 0x30, 'Certificate');
  if (cert.end !== der.length) throw new Malformed('bytes after the certificate');
  const [tbs, alg, sig, x] = childrenOf(der, cert);
  if (x !== undefined) throw new Malformed('Certificate: too many fields');
  expectTag(tbs, 0x30, 'tbsCertificate');
  const algOid = childrenOf(der, expectTag(alg, 0x30, 'signatureAlgorithm'))[0];
  if (algOid === undefined || valueOf(der, expectTag(algOid, 0x06, 'algorithm')).toString('hex') !== OID_ECDSA_SHA256) throw new Malformed('not ecdsa-with-SHA256');
  const sigBits = valueOf(der, expectTag(sig, 0x03, 'signatureValue'));
  if (sigBits[0] !== 0) throw new Malformed('signature BIT STRING with unused bits');
  const f = childrenOf(der, tbs!);
  let i = f[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  i += 1; // serialNumber
  const innerAlg = childrenOf(der, expectTag(f[i++], 0x30, 'tbs signature'))[0];
  if (innerAlg === undefined || valueOf(der, innerAlg).toString('hex') !== OID_ECDSA_SHA256) throw new Malformed('tbs signature not ecdsa-with-SHA256');
  const issuer = expectTag(f[i++], 0x30, 'issuer');
  i += 1; // validity
  const subject = expectTag(f[i++], 0x30, 'subject');
  const spki = expectTag(f[i++], 0x30, 'subjectPublicKeyInfo');
  let role: number | undefined;
  let entityId = Buffer.alloc(8);
  for (const rdn of childrenOf(der, subject)) {
    for (const atv of childrenOf(der, expectTag(rdn, 0x31, 'RDN'))) {
      const [oid, value] = childrenOf(der, expectTag(atv, 0x30, 'attribute'));
      const o = valueOf(der, expectTag(oid, 0x06, 'attribute type')).toString('hex');
      if (value === undefined) throw new Malformed('attribute without a value');
      if (o === OID_OU) {
        const s = valueOf(der, value).toString('latin1');
        role = /^[0-9A-F]{2}$/.test(s) ? parseInt(s, 16) : undefined;
      } else if (o === OID_UNIQUE_ID) {
        const v = valueOf(der, expectTag(value, 0x03, 'x500UniqueIdentifier'));
        if (v.length !== 9 || v[0] !== 0) throw new Malformed('x500UniqueIdentifier is not 64 bits');
        entityId = Buffer.from(v.subarray(1));
      }
    }
  }
  let ski = Buffer.alloc(8);
  let keyUsageBits: Buffer | undefined;
  let ca = false;
  const exts = f.slice(i).find((t) => t.tag === 0xa3);
  if (exts) {
    const list = childrenOf(der, exts)[0];
    for (const e of childrenOf(der, expectTag(list, 0x30, 'extensions'))) {
      const parts = childrenOf(der, expectTag(e, 0x30, 'extension'));
      const oid = valueOf(der, expectTag(parts[0], 0x06, 'extnID')).toString('hex');
      const octets = expectTag(parts[parts.length - 1], 0x04, 'extnValue');
      const inner = readTlv(der, octets.valueStart, octets.end);
      if (oid === OID_SKI) ski = Buffer.from(valueOf(der, expectTag(inner, 0x04, 'subjectKeyIdentifier')));
      else if (oid === OID_KU) keyUsageBits = Buffer.from(valueOf(der, expectTag(inner, 0x03, 'keyUsage')));
      else if (oid === OID_BC) {
        const b0 = childrenOf(der, expectTag(inner, 0x30, 'basicConstraints'))[0];
        ca = b0 !== undefined && b0.tag === 0x01 && der[b0.valueStart] === 0xff;
      }
    }
  }
  return {
    der,
    tbs: der.subarray(tbs!.start, tbs!.end),
    signature: sigBits.subarray(1),
    issuer: der.subarray(issuer.start, issuer.end),
    subject: der.subarray(subject.start, subject.end),
    publicKey: createPublicKey({ key: der.subarray(spki.start, spki.end), format: 'der', type: 'spki' }),
    role,
    entityId,
    ski,
    keyUsageBits,
    ca,
  };
}

/** Whether `cert` is signed by `issuer` (ecdsa-with-SHA256 over the TBSCertificate, DER signature). */
function signedBy(cert: SimCertificate, issuer: SimCertificate): boolean {
  if (!cert.issuer.equals(issuer.subject)) return false;
  try {
    return verify('sha256', cert.tbs, { key: issuer.publicKey, dsaEncoding: 'der' }, cert.signature);
  } catch {
    return false;
  }
}


/** DER writing: a TLV; `long` writes a constructed element's length as `82 hh ll` even when short. */
function tlv(tag: number, value: Buffer, long = false): Buffer {
  const len = long && (tag & 0x20) !== 0 ? Buffer.of(0x82, value.length >> 8, value.length & 0xff) : encodeLength(value.length);
  return Buffer.concat([Buffer.of(tag), len, value]);
}

function uint(tag: number, v: bigint): Buffer {
  const bytes: number[] = [];
  let x = v;
  do {
    bytes.unshift(Number(x & 0xffn));
    x >>= 8n;
  } while (x > 0n);
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

function generalizedTime(d: Date): Buffer {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const s = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x18, Buffer.from(s, 'latin1'));
}

function encodeSimCell(c: SimCell, long: boolean): Buffer {
  return tlv(
    0x30,
    Buffer.concat([uint(0x02, BigInt(c.role)), tlv(0x03, Buffer.from(KU_BITS[c.keyUsage], 'hex')), ...((c.cellUsage ?? 'management') === 'prepayment' ? [uint(0x02, 1n)] : [])]),
    long,
  );
}

/** docs/domain.md §9 per-cell statuses the simulator uses. */
export const SIM_CREDENTIALS_STATUS = Object.freeze({ success: 0, badCertificate: 5, noTrustAnchor: 10 });

/** What happened to one requested cell. */
export interface SimCellOutcome {
  readonly cell: SimCell;
  readonly status: number;
  readonly oldEntityId: Buffer;
  readonly oldKeyId: Buffer;
  readonly newEntityId: Buffer;
  readonly newKeyId: Buffer;
}

/** The roles whose DS and KA management cells a device has; the supplier's prepayment KA; the root's keyCertSign. */
function deviceHasCell(c: SimCell): boolean {
  const usage = c.cellUsage ?? 'management';
  if (c.keyUsage === 'keyCertSign') return c.role === 0 && usage === 'management';
  if (usage === 'prepayment') return c.role === 2 && c.keyUsage === 'keyAgreement';
  return c.role >= 1 && c.role <= 6;
}

/**
 * docs/domain.md §9 "modes and who signs": the authorising role of modes 2-8 and which roles' cells
 * each may replace (8: any cell but the root's). The simulator's own table.
 */
const SIM_MODES: Readonly<Record<number, { authorising: number; targets: readonly number[] | 'anyExceptRoot' }>> = {
  2: { authorising: 2, targets: [2] },
  3: { authorising: 3, targets: [3] },
  4: { authorising: 4, targets: [4] },
  5: { authorising: 6, targets: [6] },
  6: { authorising: 5, targets: [5] },
  7: { authorising: 5, targets: [2] },
  8: { authorising: 1, targets: 'anyExceptRoot' },
};

/** A future-dated CS02b command waiting for its time. */
interface PendingCredentials {
  cmd: SimCredentialsCommand;
  authorisingRole: number;
  originator: Buffer;
  at: Date;
}

/**
 * A meter with its own EUI-64, DS and KA keys, trust anchors (cells holding certificates, or the
 * supplier's and ACB's keys given directly) and per-role counter floors. {@link receive} takes a
 * general-ciphering frame as it comes off the WAN, checks it as a meter would and answers it.
 */
export class SimulatedMeter {
  readonly eui64: string;
  readonly ds: SimKeyPair;
  readonly ka: SimKeyPair;
  #supplier: SupplierAnchor | undefined;
  readonly #acb: AcbAnchor | undefined;
  readonly #critical: ReadonlySet<number>;
  /** Counter floors per Remote Party Role and cell usage (`2/management`, `2/prepayment`): docs/domain.md §6, §9. */
  readonly #floors = new Map<string, bigint>();
  readonly #cells = new Map<string, { cell: SimCell; cert: SimCertificate }>();
  readonly #pending: PendingCredentials[] = [];
  readonly #long: boolean;
  #alertCounter = 0n;
  readonly #supplementary: ResponseSupplementary | undefined;
  readonly #plaintext: (messageCode: number, counter: bigint) => Uint8Array;

  constructor(options: SimulatedMeterOptions) {
    this.eui64 = hexTitle(options.eui64 ?? '00DB1234567890A0').toString('hex').toUpperCase();
    this.ds = options.ds ?? generateP256();
    this.ka = options.ka ?? generateP256();
    this.#supplier = options.supplier;
    this.#acb = options.acb;
    this.#critical = new Set(options.criticalCodes);
    this.#supplementary = options.responseSupplementary;
    this.#long = (options.credentialsLengths ?? 'device') === 'device';
    this.#plaintext =
      options.responsePlaintext ??
      ((code, counter) => Buffer.concat([Buffer.from('meter reading for '), Buffer.of(code >> 8, code & 0xff), u64(counter), Buffer.of(0x00, 0x01, 0x86, 0xa0)]));
    for (const c of options.cells ?? []) this.setCell(c.cell, c.certificate);
  }

  get dsPublicKey(): KeyObject {
    return this.ds.publicKey;
  }

  get kaPublicKey(): KeyObject {
    return this.ka.publicKey;
  }

  /** Put a certificate (X.509 DER) in a cell, as an installer or a test does (no chain check). */
  setCell(cell: SimCell, certificate: Uint8Array): void {
    if (!deviceHasCell(cell)) throw new Error(`simulator: a device has no cell ${cellKey(cell)}`);
    const cert = parseSimCertificate(Buffer.from(certificate));
    this.#cells.set(cellKey(cell), { cell: { role: cell.role, keyUsage: cell.keyUsage, cellUsage: cell.cellUsage ?? 'management' }, cert });
  }

  /** The certificate (DER) a cell holds, or undefined. */
  cell(cell: SimCell): Uint8Array | undefined {
    const c = this.#cells.get(cellKey(cell));
    return c === undefined ? undefined : new Uint8Array(c.cert.der);
  }

  /** Every cell that holds a certificate, as (cell, DER). */
  cells(): SimCellContent[] {
    return [...this.#cells.values()].map((c) => ({ cell: c.cell, certificate: new Uint8Array(c.cert.der) }));
  }

  /** The anti-replay floor of an originator's role (undefined before a first accepted command or for an unknown originator). */
  floor(originator: string): bigint | undefined {
    const role = this.#roleOf(hexTitle(originator));
    return role === undefined ? undefined : this.#floors.get(`${role}/management`);
  }

  /** The counter floor of a role and cell usage (docs/domain.md §9 control [4], [5], [6]). */
  roleFloor(role: number, usage: 'management' | 'prepayment' = 'management'): bigint | undefined {
    return this.#floors.get(`${role}/${usage}`);
  }

  /** How many future-dated CS02b commands wait. */
  get pendingCredentials(): number {
    return this.#pending.length;
  }

  /**
   * Change of supplier: install another supplier's keys (its cells are emptied); the supplier's
   * counter floors start afresh (docs/domain.md §6).
   */
  installSupplier(anchor: SupplierAnchor): void {
    for (const k of ['digitalSignature', 'keyAgreement'] as const) this.#cells.delete(cellKey({ role: 2, keyUsage: k }));
    this.#floors.delete('2/management');
    this.#supplier = anchor;
  }

  /** The key a cell trusts: its certificate's, else (supplier DS/KA, ACB KA) the anchor given directly. */
  #cellKey(c: SimCell): KeyObject | undefined {
    const held = this.#cells.get(cellKey(c));
    if (held) return held.cert.publicKey;
    if ((c.cellUsage ?? 'management') !== 'management') return undefined;
    if (c.role === 2 && c.keyUsage === 'digitalSignature') return this.#supplier?.dsPublicKey;
    if (c.role === 2 && c.keyUsage === 'keyAgreement') return this.#supplier?.kaPublicKey;
    if (c.role === 4 && c.keyUsage === 'keyAgreement') return this.#acb?.kaPublicKey;
    return undefined;
  }

  /** The entity id a cell holds: its certificate's, else the anchor's; undefined when empty. */
  #cellEntity(c: SimCell): Buffer | undefined {
    const held = this.#cells.get(cellKey(c));
    if (held) return held.cert.entityId;
    if (this.#cellKey(c) === undefined) return undefined;
    return c.role === 2 ? hexTitle((this.#supplier as SupplierAnchor).entityId) : hexTitle((this.#acb as AcbAnchor).entityId);
  }

  #supplierEntity(): Buffer | undefined {
    return this.#cellEntity({ role: 2, keyUsage: 'digitalSignature' }) ?? this.#cellEntity({ role: 2, keyUsage: 'keyAgreement' });
  }

  #acbEntity(): Buffer | undefined {
    return this.#cellEntity({ role: 4, keyUsage: 'keyAgreement' }) ?? this.#cellEntity({ role: 4, keyUsage: 'digitalSignature' });
  }

  /** The role of an originator: the supplier (2), the ACB (4), else the role of a management cell holding its entity id. */
  #roleOf(originator: Buffer): number | undefined {
    if (this.#supplierEntity()?.equals(originator)) return 2;
    if (this.#acbEntity()?.equals(originator)) return 4;
    for (const { cell, cert } of this.#cells.values()) {
      if ((cell.cellUsage ?? 'management') === 'management' && cell.role !== 0 && cert.entityId.equals(originator)) return cell.role;
    }
    return undefined;
  }

  receive(frame: Uint8Array): MeterResult {
    const f = Buffer.from(frame);
    // docs/domain.md §3: DD 00×6 ‖ len ‖ 11 00 00 00 00 ‖ APDU ‖ MAC(12)
    let apdu: Buffer;
    let mac: Buffer;
    let fields: Apdu;
    try {
      if (f.length < FRAME_PREFIX.length + 1 || !f.subarray(0, FRAME_PREFIX.length).equals(FRAME_PREFIX)) throw new Malformed('not a general-ciphering frame');
      const len = decodeLength(f, FRAME_PREFIX.length);
      if (len.next + len.value !== f.length) throw new Malformed('frame length does not match');
      if (len.value < SECURITY_HEADER.length + MAC_LENGTH + 1) throw new Malformed('frame too short');
      if (!f.subarray(len.next, len.next + SECURITY_HEADER.length).equals(SECURITY_HEADER)) throw new Malformed('security header');
      apdu = f.subarray(len.next + SECURITY_HEADER.length, f.length - MAC_LENGTH);
      mac = f.subarray(f.length - MAC_LENGTH);
      fields = sliceApdu(apdu);
    } catch (e) {
      if (e instanceof Malformed) return { accepted: false, reason: 'malformed', detail: e.message };
      throw e;
    }
    if (fields.cra !== 1) return { accepted: false, reason: 'not-a-command' };
    if (!fields.recipient.equals(hexTitle(this.eui64))) return { accepted: false, reason: 'wrong-recipient' };
    const credentials = fields.messageCode >= 0x0100 && fields.messageCode <= 0x0109;
    const originatorRole = this.#roleOf(fields.originator);
    const fromSupplier = originatorRole === 2;
    const fromAcb = originatorRole === 4;
    if (originatorRole === undefined || (!credentials && !fromSupplier && !fromAcb)) return { accepted: false, reason: 'unknown-originator' };

    // docs/domain.md §4 ACB MAC: device KA private × ACB KA public; OtherInfo with the APDU's originator.
    const acbKa = this.#cellKey({ role: 4, keyUsage: 'keyAgreement' });
    if (acbKa === undefined) return { accepted: false, reason: 'mac-invalid', detail: 'no ACB KA anchor' };
    const k = gbcsKey(this.ka.privateKey, acbKa, fields.originator, MODE_COMMAND, fields.counter, fields.recipient);
    const expected = apduMac(k, fields.originator, apdu);
    if (!timingSafeEqual(expected, mac)) return { accepted: false, reason: 'mac-invalid' };

    if (credentials) return this.#receiveCredentials(apdu, fields, originatorRole);

    // docs/domain.md §4/§5: critical = (code, originator role); the ACB never originates a critical command.
    const critical = fromSupplier && this.#critical.has(fields.messageCode);
    if (critical) {
      if (fields.signature === null) return { accepted: false, reason: 'signature-missing' };
      const key = this.#cellKey({ role: 2, keyUsage: 'digitalSignature' });
      const ok = key !== undefined && verify('sha256', apdu.subarray(1, fields.contentEnd), { key, dsaEncoding: 'ieee-p1363' }, fields.signature);
      if (!ok) return { accepted: false, reason: 'signature-invalid' };
    }

    // docs/domain.md §6: strictly increasing per originator; raise the floor only for an accepted command.
    const refused = this.#checkAndRaiseFloor(originatorRole, fields.counter);
    if (refused) return refused;

    const peerKa = (fromSupplier ? this.#cellKey({ role: 2, keyUsage: 'keyAgreement' }) : acbKa) as KeyObject;
    return { accepted: true, ...this.#respond(fields, peerKa, critical) };
  }

  #checkAndRaiseFloor(role: number, counter: bigint): MeterResult | undefined {
    const floor = this.#floors.get(`${role}/management`);
    if (floor !== undefined && counter <= floor) return { accepted: false, reason: 'counter-replayed', detail: `counter ${counter} <= floor ${floor}` };
    this.#floors.set(`${role}/management`, counter);
    return undefined;
  }

  /**
   * CS02b Update Security Credentials (docs/domain.md §9), after the frame, recipient and ACB MAC
   * checks: the payload (own DER reader), the mode against the message code, the authorising cell
   * [2] and the originator against the mode's authorising role, the User signature under the key
   * of that cell's certificate (mode 4: none, the ACB MAC authorises), [3] = the header's counter,
   * the counter above the role's floor, the target cells. Then the replacement (now, or at its
   * execution time through {@link runScheduled}), answered with a device-signed response.
   */
  #receiveCredentials(apdu: Buffer, fields: Apdu, originatorRole: number): MeterResult {
    let cmd: SimCredentialsCommand;
    try {
      cmd = parseCredentialsPayload(apdu.subarray(fields.contentStart, fields.contentEnd));
    } catch (e) {
      if (e instanceof Malformed) return { accepted: false, reason: 'credentials-malformed', detail: e.message };
      throw e;
    }
    const codeMode = fields.messageCode - 0x0100;
    const mode = SIM_MODES[cmd.mode];
    if (mode === undefined || cmd.mode !== codeMode) return { accepted: false, reason: 'credentials-mode', detail: `payload mode ${cmd.mode}, message code mode ${codeMode}` };
    const authorisingCell: SimCell = { role: mode.authorising, keyUsage: cmd.mode === 4 ? 'keyAgreement' : 'digitalSignature' };
    if (cmd.mode === 4) {
      if (cmd.authorisingCell !== undefined) return { accepted: false, reason: 'credentials-authorising-cell', detail: 'mode 4 has no authorising cell' };
      if (fields.signature !== null) return { accepted: false, reason: 'credentials-signature-unexpected' };
      if (originatorRole !== 4) return { accepted: false, reason: 'credentials-originator' };
    } else {
      const a = cmd.authorisingCell;
      if (a === undefined || cellKey(a) !== cellKey(authorisingCell)) return { accepted: false, reason: 'credentials-authorising-cell', detail: a === undefined ? 'absent' : cellKey(a) };
      // The originator is the party whose certificate is in the authorising cell.
      if (!this.#cellEntity(authorisingCell)?.equals(fields.originator)) return { accepted: false, reason: 'credentials-originator' };
      if (fields.signature === null) return { accepted: false, reason: 'signature-missing' };
      const key = this.#cellKey(authorisingCell);
      const ok = key !== undefined && verify('sha256', apdu.subarray(1, fields.contentEnd), { key, dsaEncoding: 'ieee-p1363' }, fields.signature);
      if (!ok) return { accepted: false, reason: 'signature-invalid' };
    }
    if (cmd.sequenceNumber !== fields.counter) return { accepted: false, reason: 'credentials-sequence', detail: `[3] ${cmd.sequenceNumber}, header ${fields.counter}` };
    const seen = new Set<string>();
    for (const r of cmd.replacements) {
      const key = cellKey(r.cell);
      const allowed = mode.targets === 'anyExceptRoot' ? r.cell.role !== 0 : mode.targets.includes(r.cell.role);
      if (!deviceHasCell(r.cell) || !allowed || seen.has(key)) return { accepted: false, reason: 'credentials-cell-not-allowed', detail: key };
      seen.add(key);
    }
    if (cmd.replacements.length === 0) return { accepted: false, reason: 'credentials-cell-not-allowed', detail: 'no replacement' };
    const refused = this.#checkAndRaiseFloor(mode.authorising, fields.counter);
    if (refused) return refused;

    if (cmd.executionTime !== undefined) {
      this.#pending.push({ cmd, authorisingRole: mode.authorising, originator: Buffer.from(fields.originator), at: cmd.executionTime });
      // docs/domain.md §9: a future-dated command is answered SEQUENCE { NULL } at once.
      const content = tlv(0x30, Buffer.of(0x05, 0x00), this.#long);
      return { accepted: true, scheduled: true, response: this.#deviceSigned(0x02, fields.counter, fields.originator, fields.messageCode, content) };
    }
    const outcome = this.#executeCredentials(cmd, mode.authorising);
    const content = tlv(0x30, Buffer.concat([Buffer.of(0x05, 0x00), outcome.der]), this.#long);
    return { accepted: true, response: this.#deviceSigned(0x02, fields.counter, fields.originator, fields.messageCode, content) };
  }

  /**
   * Execute the future-dated CS02b commands whose time is at or before `now`, in the order received;
   * each yields a device-signed alert 0x00CB (CRA 03) to the command's originator: `SEQUENCE { code
   * (0x8F66 every cell replaced, 0x8F67 otherwise), executionDateTime (now, whole seconds), outcome }`.
   */
  runScheduled(now: Date): Uint8Array[] {
    const alerts: Uint8Array[] = [];
    for (let i = 0; i < this.#pending.length; ) {
      const p = this.#pending[i] as PendingCredentials;
      if (p.at.getTime() > now.getTime()) {
        i++;
        continue;
      }
      this.#pending.splice(i, 1);
      const outcome = this.#executeCredentials(p.cmd, p.authorisingRole);
      const code = outcome.results.every((r) => r.status === SIM_CREDENTIALS_STATUS.success) ? 0x8f66 : 0x8f67;
      const at = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const content = tlv(0x30, Buffer.concat([uint(0x02, BigInt(code)), generalizedTime(at), outcome.der]), this.#long);
      this.#alertCounter += 1n;
      alerts.push(this.#deviceSigned(0x03, this.#alertCounter, p.originator, 0x00cb, content));
    }
    return alerts;
  }

  /**
   * Replace the cells in order (docs/domain.md §9): each new certificate must be ecdsa-with-SHA256,
   * signed by a CA certificate of the certification path (issuer name and signature) that is itself a
   * CA signed by the root cell's certificate, and carry the cell's role (subject OU) and exactly the
   * cell's key usage; otherwise the cell keeps its certificate (status 5; 10 with no root cell). Floors
   * [4], [5], [6] are applied only when every cell was replaced (a partly failed command changes no
   * floor, so it cannot reopen old counters). Returns the outcome's DER and the per-cell results.
   */
  #executeCredentials(cmd: SimCredentialsCommand, authorisingRole: number): { der: Buffer; results: SimCellOutcome[] } {
    const root = this.#cells.get(cellKey({ role: 0, keyUsage: 'keyCertSign' }))?.cert;
    const path: SimCertificate[] = [];
    for (const d of cmd.certificationPath) {
      try {
        path.push(parseSimCertificate(d));
      } catch (e) {
        if (!(e instanceof Malformed)) throw e;
      }
    }
    const results: SimCellOutcome[] = [];
    for (const r of cmd.replacements) {
      const key = cellKey(r.cell);
      const oldEntityId = this.#cellEntity(r.cell) ?? Buffer.alloc(8);
      const oldKeyId = this.#cells.get(key)?.cert.ski ?? Buffer.alloc(8);
      let status: number = SIM_CREDENTIALS_STATUS.badCertificate;
      let cert: SimCertificate | undefined;
      if (root === undefined) status = SIM_CREDENTIALS_STATUS.noTrustAnchor;
      else {
        try {
          cert = parseSimCertificate(r.certificate);
        } catch (e) {
          if (!(e instanceof Malformed)) throw e;
        }
        const chains = cert !== undefined && path.some((ca) => ca.ca && signedBy(ca, root) && signedBy(cert as SimCertificate, ca));
        const fits = cert !== undefined && cert.role === r.cell.role && cert.keyUsageBits?.toString('hex') === KU_BITS[r.cell.keyUsage];
        if (chains && fits) status = SIM_CREDENTIALS_STATUS.success;
      }
      if (status === SIM_CREDENTIALS_STATUS.success && cert !== undefined) {
        this.#cells.set(key, { cell: { ...r.cell, cellUsage: r.cell.cellUsage ?? 'management' }, cert });
        results.push({ cell: r.cell, status, oldEntityId, oldKeyId, newEntityId: cert.entityId, newKeyId: cert.ski });
      } else results.push({ cell: r.cell, status, oldEntityId, oldKeyId, newEntityId: oldEntityId, newKeyId: oldKeyId });
    }
    // Floor changes (their layout is not public, docs/domain.md §10): each written SEQUENCE { role INTEGER,
    // usage INTEGER OPTIONAL (0 prepayment), floor INTEGER }, in the device long form when the meter uses it.
    const floorChanges: Buffer[] = [];
    if (results.every((r) => r.status === SIM_CREDENTIALS_STATUS.success)) {
      const set = (role: number, usage: number | undefined, floor: bigint) => {
        this.#floors.set(`${role}/${usage === 0 ? 'prepayment' : 'management'}`, floor);
        floorChanges.push(tlv(0x30, Buffer.concat([uint(0x02, BigInt(role)), ...(usage === undefined ? [] : [uint(0x02, BigInt(usage))]), uint(0x02, floor)]), this.#long));
      };
      if (cmd.authorisingFloor !== undefined) set(authorisingRole, undefined, cmd.authorisingFloor);
      for (const u of cmd.authorisingUsageFloors) set(authorisingRole, u.usage, u.floor);
      for (const o of cmd.otherRoleFloors) {
        set(o.role, undefined, o.floor);
        for (const u of o.usageFloors) set(o.role, u.usage, u.floor);
      }
    }
    const long = this.#long;
    const der = tlv(
      0x30,
      Buffer.concat([
        uint(0x02, cmd.sequenceNumber),
        uint(0x02, BigInt(cmd.mode)),
        tlv(0x30, Buffer.concat(floorChanges), long),
        tlv(
          0x30,
          Buffer.concat(
            results.map((o) =>
              tlv(0x30, Buffer.concat([encodeSimCell(o.cell, long), uint(0x0a, BigInt(o.status)), tlv(0x04, o.oldEntityId), tlv(0x04, o.oldKeyId), tlv(0x04, o.newEntityId), tlv(0x04, o.newKeyId)]), long),
            ),
          ),
          long,
        ),
      ]),
      long,
    );
    return { der, results };
  }

  /** A general-signing APDU from this meter, signed with its DS key (docs/domain.md §4): no date-time, other-information the code. */
  #deviceSigned(cra: number, counter: bigint, to: Buffer, messageCode: number, content: Buffer): Uint8Array {
    const body = Buffer.concat([
      Buffer.of(0xdf, 0x09, cra),
      u64(counter),
      Buffer.of(8),
      hexTitle(this.eui64),
      Buffer.of(8),
      to,
      Buffer.of(0x00),
      Buffer.of(2, messageCode >> 8, messageCode & 0xff),
      encodeLength(content.length),
      content,
    ]);
    const sig = sign('sha256', body.subarray(1), { key: this.ds.privateKey, dsaEncoding: 'ieee-p1363' });
    return new Uint8Array(Buffer.concat([body, Buffer.of(0x40), sig]));
  }

  /** Build the response: CRA 02, this meter as originator, the command's originator as recipient. */
  #respond(cmd: Apdu, peerKa: KeyObject, critical: boolean): { response: Uint8Array; sensitivePlaintext: Uint8Array; sensitivePayload: Uint8Array } {
    const me = hexTitle(this.eui64);
    const to = cmd.originator;
    const counter = cmd.counter; // the response repeats the command's transaction counter
    const sup = this.#supplementary;
    const otherInfo = Buffer.concat([
      Buffer.of(cmd.messageCode >> 8, cmd.messageCode & 0xff),
      ...(sup ? [hexTitle(sup.remotePartyId), u64(sup.remotePartyCounter), u64(sup.originatorCounter)] : []),
    ]);
    // docs/domain.md §4 sensitive payload: mode 04; counter = supplementary originator counter if present,
    // recipient = supplementary remote party id if present.
    const payloadRecipient = sup ? hexTitle(sup.remotePartyId) : to;
    const payloadCounter = sup ? sup.originatorCounter : counter;
    const pk = gbcsKey(this.ka.privateKey, peerKa, me, MODE_PAYLOAD, payloadCounter, payloadRecipient);
    const plaintext = Buffer.from(this.#plaintext(cmd.messageCode, counter));
    const { ciphertext, tag } = gcm(pk, me, Buffer.of(0x31), plaintext);
    const sensitive = Buffer.concat([Buffer.of(0x31, 0, 0, 0, 0), ciphertext, tag]);
    // Content: DLMS access-response DA ‖ 20 ‖ low 24 bits of the counter ‖ 00 (no date-time) ‖
    // 01 (one result) ‖ 00 (success) ‖ 09 (octet string) ‖ len ‖ sensitive payload.
    const low = Number(counter & 0xffffffn);
    const content = Buffer.concat([Buffer.of(0xda, 0x20, low >> 16, (low >> 8) & 0xff, low & 0xff, 0x00, 0x01, 0x00, 0x09), encodeLength(sensitive.length), sensitive]);
    const body = Buffer.concat([
      Buffer.of(0xdf, 0x09, 0x02),
      u64(counter),
      Buffer.of(8),
      me,
      Buffer.of(8),
      to,
      Buffer.of(0x00),
      encodeLength(otherInfo.length),
      otherInfo,
      encodeLength(content.length),
      content,
    ]);
    let response: Buffer;
    if (critical) {
      // Responses to critical commands are signed with the device DS key (over the bytes after DF).
      const sig = sign('sha256', body.subarray(1), { key: this.ds.privateKey, dsaEncoding: 'ieee-p1363' });
      response = Buffer.concat([body, Buffer.of(0x40), sig]);
    } else {
      // Others carry a device MAC: mode 02, device KA private × recipient KA public.
      const apdu = Buffer.concat([body, Buffer.of(0x00)]);
      const rk = gbcsKey(this.ka.privateKey, peerKa, me, MODE_RESPONSE, counter, to);
      const mac = apduMac(rk, me, apdu);
      const inner = Buffer.concat([SECURITY_HEADER, apdu, mac]);
      response = Buffer.concat([FRAME_PREFIX, encodeLength(inner.length), inner]);
    }
    return { response: new Uint8Array(response), sensitivePlaintext: new Uint8Array(plaintext), sensitivePayload: new Uint8Array(sensitive) };
  }
}

/**
 * Independent helpers for cross-checks in tests (same code the meter uses): the GBCS key and the
 * MAC of an APDU, and whether a frame's MAC verifies for a given device KA private key and
 * originator-side KA public key.
 */
export const simulatorCrypto = Object.freeze({
  key: (privateKey: KeyObject, publicKey: KeyObject, originator: string, mode: number, counter: bigint, recipient: string): Uint8Array =>
    new Uint8Array(gbcsKey(privateKey, publicKey, hexTitle(originator), mode, counter, hexTitle(recipient))),
  mac: (key: Uint8Array, originator: string, apdu: Uint8Array): Uint8Array => new Uint8Array(apduMac(Buffer.from(key), hexTitle(originator), Buffer.from(apdu))),
  /** Check a general-ciphering frame's MAC with the receiver's KA private key and the sender's KA public key. */
  frameMacVerifies(frame: Uint8Array, privateKey: KeyObject, publicKey: KeyObject): boolean | 'malformed' {
    const f = Buffer.from(frame);
    try {
      if (!f.subarray(0, FRAME_PREFIX.length).equals(FRAME_PREFIX)) throw new Malformed('prefix');
      const len = decodeLength(f, FRAME_PREFIX.length);
      if (len.next + len.value !== f.length) throw new Malformed('length');
      if (!f.subarray(len.next, len.next + SECURITY_HEADER.length).equals(SECURITY_HEADER)) throw new Malformed('security header');
      const apdu = f.subarray(len.next + SECURITY_HEADER.length, f.length - MAC_LENGTH);
      const a = sliceApdu(apdu);
      const mode = a.cra;
      const k = gbcsKey(privateKey, publicKey, a.originator, mode, a.counter, a.recipient);
      return timingSafeEqual(apduMac(k, a.originator, apdu), f.subarray(f.length - MAC_LENGTH));
    } catch (e) {
      if (e instanceof Malformed) return 'malformed';
      throw e;
    }
  },
});
