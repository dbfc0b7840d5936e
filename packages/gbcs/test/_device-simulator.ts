// A simulated smart meter for round-trip tests (the device side): docs/domain.md §3 (frames),
// §4 (KDF, MAC, signatures, sensitive payloads), §5 (critical commands), §6 (anti-replay).
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
  | 'counter-replayed'; // originator counter not above the floor (docs/domain.md §6)

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
  readonly supplier: SupplierAnchor;
  readonly acb: AcbAnchor;
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
  return { cra, counter, originator, recipient, messageCode, contentEnd, signature };
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

/**
 * A meter with its own EUI-64, DS and KA keys, trust anchors (the supplier's DS and KA keys, the
 * ACB's KA key) and per-originator counter floors. {@link receive} takes a general-ciphering frame
 * as it comes off the WAN, checks it as a meter would and answers it.
 */
export class SimulatedMeter {
  readonly eui64: string;
  readonly ds: SimKeyPair;
  readonly ka: SimKeyPair;
  #supplier: SupplierAnchor;
  readonly #acb: AcbAnchor;
  readonly #critical: ReadonlySet<number>;
  readonly #floors = new Map<string, bigint>();
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
    this.#plaintext =
      options.responsePlaintext ??
      ((code, counter) => Buffer.concat([Buffer.from('meter reading for '), Buffer.of(code >> 8, code & 0xff), u64(counter), Buffer.of(0x00, 0x01, 0x86, 0xa0)]));
  }

  get dsPublicKey(): KeyObject {
    return this.ds.publicKey;
  }

  get kaPublicKey(): KeyObject {
    return this.ka.publicKey;
  }

  /** The anti-replay floor for an originator (undefined before its first accepted command). */
  floor(originator: string): bigint | undefined {
    return this.#floors.get(hexTitle(originator).toString('hex').toUpperCase());
  }

  /** Change of supplier: install another supplier's keys; its counter floor starts afresh (docs/domain.md §6). */
  installSupplier(anchor: SupplierAnchor): void {
    this.#floors.delete(hexTitle(this.#supplier.entityId).toString('hex').toUpperCase());
    this.#supplier = anchor;
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
    const originatorHex = fields.originator.toString('hex').toUpperCase();
    const fromSupplier = fields.originator.equals(hexTitle(this.#supplier.entityId));
    const fromAcb = fields.originator.equals(hexTitle(this.#acb.entityId));
    if (!fromSupplier && !fromAcb) return { accepted: false, reason: 'unknown-originator' };

    // docs/domain.md §4 ACB MAC: device KA private × ACB KA public; OtherInfo with the APDU's originator.
    const k = gbcsKey(this.ka.privateKey, this.#acb.kaPublicKey, fields.originator, MODE_COMMAND, fields.counter, fields.recipient);
    const expected = apduMac(k, fields.originator, apdu);
    if (!timingSafeEqual(expected, mac)) return { accepted: false, reason: 'mac-invalid' };

    // docs/domain.md §4/§5: critical = (code, originator role); the ACB never originates a critical command.
    const critical = fromSupplier && this.#critical.has(fields.messageCode);
    if (critical) {
      if (fields.signature === null) return { accepted: false, reason: 'signature-missing' };
      const ok = verify('sha256', apdu.subarray(1, fields.contentEnd), { key: this.#supplier.dsPublicKey, dsaEncoding: 'ieee-p1363' }, fields.signature);
      if (!ok) return { accepted: false, reason: 'signature-invalid' };
    }

    // docs/domain.md §6: strictly increasing per originator; raise the floor only for an accepted command.
    const floor = this.#floors.get(originatorHex);
    if (floor !== undefined && fields.counter <= floor) {
      return { accepted: false, reason: 'counter-replayed', detail: `counter ${fields.counter} <= floor ${floor}` };
    }
    this.#floors.set(originatorHex, fields.counter);

    const peerKa = fromSupplier ? this.#supplier.kaPublicKey : this.#acb.kaPublicKey;
    return { accepted: true, ...this.#respond(fields, peerKa, critical) };
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
