import { ByteReader, concatBytes, eui64FromBytes, parseEui64, SmkiError, type Eui64 } from '@smki/core';

/**
 * GBCS general-signing APDUs and general-ciphering frames (docs/domain.md §3): parse, keeping the raw
 * bytes and the offsets of what is signed and what is MAC'd, and build from fields. Parsing is
 * strict and bounded; building the fields of a parsed message reproduces its bytes exactly.
 * @module
 */

/** The CRA flag: what the message is. */
export type Cra = 'command' | 'response' | 'alert';

/** Which frame the message came in. */
export type Frame = 'signed' | 'ciphered';

/** How the signature field ends a general-signing APDU. */
export type SignatureField = 'absent' | 'empty' | 'present';

/** A byte range `[start, end)` in {@link GbcsMessage.bytes}. */
export interface ByteRange {
  /** First offset. */
  readonly start: number;
  /** Offset just past the last byte. */
  readonly end: number;
}

/** The fields of a GBCS message, as a builder takes them and a parser returns them. */
export interface GbcsFields {
  /** Command, response or alert. */
  readonly cra: Cra;
  /** The originator counter (unsigned 64-bit). */
  readonly originatorCounter: bigint;
  /** The originator's system title (EUI-64). */
  readonly originator: Eui64 | string;
  /** The recipient's system title (EUI-64). */
  readonly recipient: Eui64 | string;
  /** The 12-byte COSEM date-time, when present. */
  readonly dateTime?: Uint8Array;
  /** The GBCS message code (two bytes). */
  readonly messageCode: number;
  /** Supplementary remote party id (EUI-64). */
  readonly supplementaryRemotePartyId?: Eui64 | string;
  /** Supplementary remote party counter. */
  readonly supplementaryRemotePartyCounter?: bigint;
  /** Supplementary originator counter. */
  readonly supplementaryOriginatorCounter?: bigint;
  /** A key-agreement certificate carried in other-information (from its offset 18). */
  readonly keyAgreementCertificate?: Uint8Array;
  /** The content (DLMS, GBZ or DER payload). */
  readonly payload: Uint8Array;
  /** How the signature field is written (default: `present` with a signature, else `absent`). */
  readonly signatureField?: SignatureField;
  /** The 64-byte `r ‖ s` signature, when present. */
  readonly signature?: Uint8Array | null;
}

/** A parsed GBCS message: its fields, its bytes, and where the signed and MAC'd parts are. */
export interface GbcsMessage {
  /** `signed` (a bare general-signing APDU) or `ciphered` (a general-ciphering frame with a MAC). */
  readonly frame: Frame;
  /** Command, response or alert. */
  readonly cra: Cra;
  /** The originator counter. */
  readonly originatorCounter: bigint;
  /** The originator's system title. */
  readonly originator: Eui64;
  /** The recipient's system title. */
  readonly recipient: Eui64;
  /** The 12-byte COSEM date-time, when present. */
  readonly dateTime?: Uint8Array;
  /** The message code. */
  readonly messageCode: number;
  /** Supplementary remote party id. */
  readonly supplementaryRemotePartyId?: Eui64;
  /** Supplementary remote party counter. */
  readonly supplementaryRemotePartyCounter?: bigint;
  /** Supplementary originator counter. */
  readonly supplementaryOriginatorCounter?: bigint;
  /** The key-agreement certificate carried in other-information, when present (DER). */
  readonly keyAgreementCertificate?: Uint8Array;
  /** The content. */
  readonly payload: Uint8Array;
  /** How the signature field was written. */
  readonly signatureField: SignatureField;
  /** The 64-byte signature, or null when absent or empty. */
  readonly signature: Uint8Array | null;
  /** The 12-byte MAC of a general-ciphering frame. */
  readonly mac?: Uint8Array;
  /** The whole input (owned: a copy of what was parsed). */
  readonly bytes: Uint8Array;
  /** Where the general-signing APDU (DF … signature field) is in `bytes`. */
  readonly apduRange: ByteRange;
  /** What the User's signature covers: after the DF tag up to the last content byte (docs/domain.md §4). */
  readonly signedRange: ByteRange;
}

/** Largest message accepted (a GBCS message fits easily; firmware images do not travel this way). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

const CRA_BYTE: Readonly<Record<Cra, number>> = { command: 1, response: 2, alert: 3 };
const CRA_NAME: readonly (Cra | undefined)[] = [undefined, 'command', 'response', 'alert'];
const CIPHERING_PREFIX = [0xdd, 0, 0, 0, 0, 0, 0] as const;
const SECURITY_HEADER = [0x11, 0, 0, 0, 0] as const;
const MAC_BYTES = 12;
const U64_MAX = (1n << 64n) - 1n;

/** Throw `ERR_GBCS_MALFORMED` at `offset`; `message` is text for people, not behaviour. */
function fail(offset: number, message: string): never {
  throw new SmkiError('ERR_GBCS_MALFORMED', `${message} at offset ${offset}`, { offset });
}

/** Read a GBCS length: one byte below 0x80, else 0x81/0x82/0x83 and 1–3 big-endian bytes (minimal). */
function readLength(r: ByteReader, what: string): number {
  const at = r.offset;
  const first = r.u8(what);
  if (first < 0x80) return first;
  const n = first - 0x80; // 80 (n = 0) reads nothing, so v = 0 and it is refused as non-minimal below
  if (n > 3) fail(at, `${what}: length form 0x${first.toString(16)}`);
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + r.u8(what);
  // minimal: 81 says 80–FF, 82 says 0100–FFFF, 83 says 010000–FFFFFF
  if (v < 0x80 || v < 2 ** (8 * (n - 1))) fail(at, `${what}: non-minimal length`);
  return v;
}

/**
 * Write a GBCS length (minimal form). A field of 64 KiB or more is refused here: no message that
 * holds it fits in {@link MAX_MESSAGE_BYTES}, so the three-byte form (83) is never written.
 */
function lengthBytes(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(0x81, n);
  if (n < 0x10000) return Uint8Array.of(0x82, n >> 8, n & 0xff);
  throw new SmkiError('ERR_GBCS_INVALID_FIELD', `a field of ${n} bytes cannot fit in a ${MAX_MESSAGE_BYTES}-byte message`, { detail: String(n) });
}

interface ParsedApdu {
  cra: Cra;
  originatorCounter: bigint;
  originator: Eui64;
  recipient: Eui64;
  dateTime?: Uint8Array;
  messageCode: number;
  supplementaryRemotePartyId?: Eui64;
  supplementaryRemotePartyCounter?: bigint;
  supplementaryOriginatorCounter?: bigint;
  keyAgreementCertificate?: Uint8Array;
  payload: Uint8Array;
  signatureField: SignatureField;
  signature: Uint8Array | null;
  signedRange: ByteRange;
}

/** Parse one general-signing APDU occupying exactly `r`'s remaining bytes. */
function parseApdu(r: ByteReader): ParsedApdu {
  const bytes = r.bytes;
  const start = r.offset;
  if (r.u8('general-signing tag') !== 0xdf) fail(start, 'not a general-signing APDU (DF)');
  const tidAt = r.offset;
  if (r.u8('transaction-id length') !== 0x09) fail(tidAt, 'transaction-id length is not 9');
  const craAt = r.offset;
  const cra = CRA_NAME[r.u8('CRA flag')];
  if (cra === undefined) fail(craAt, 'CRA flag is not 01, 02 or 03');
  const originatorCounter = r.u64('originator counter');
  const oAt = r.offset;
  if (r.u8('originator length') !== 8) fail(oAt, 'originator system title length is not 8');
  const originator = eui64FromBytes(r.bytesView(8, 'originator'));
  const rAt = r.offset;
  if (r.u8('recipient length') !== 8) fail(rAt, 'recipient system title length is not 8');
  const recipient = eui64FromBytes(r.bytesView(8, 'recipient'));
  const dAt = r.offset;
  const dLen = r.u8('date-time');
  let dateTime: Uint8Array | undefined;
  if (dLen === 0x0c) dateTime = r.bytesView(12, 'date-time');
  else if (dLen !== 0) fail(dAt, 'date-time length is neither 00 nor 0C');

  const oiAt = r.offset;
  const oiLen = readLength(r, 'other-information');
  const oiStart = r.offset;
  r.require(oiLen, 'other-information');
  // the code alone (2), with one, two or three 8-byte fields (10, 18, 26), or with a certificate (27 and above)
  if (oiLen < 27 && oiLen % 8 !== 2) fail(oiAt, `other-information length ${oiLen} is not 2, 10, 18, 26 or above 26`);
  const oi = new ByteReader(bytes, oiStart, oiStart + oiLen);
  const messageCode = oi.u16('message code');
  let supplementaryRemotePartyId: Eui64 | undefined;
  let supplementaryRemotePartyCounter: bigint | undefined;
  let supplementaryOriginatorCounter: bigint | undefined;
  let keyAgreementCertificate: Uint8Array | undefined;
  if (oiLen >= 10) supplementaryRemotePartyId = eui64FromBytes(oi.bytesView(8));
  if (oiLen >= 18) supplementaryRemotePartyCounter = oi.u64();
  if (oiLen > 26) keyAgreementCertificate = oi.bytesView(oi.remaining);
  else if (oiLen === 26) supplementaryOriginatorCounter = oi.u64();
  r.offset = oiStart + oiLen;

  const cLen = readLength(r, 'content');
  const payloadStart = r.offset;
  r.require(cLen, 'content');
  const payload = bytes.subarray(payloadStart, payloadStart + cLen); // views into the owned copy
  r.offset = payloadStart + cLen;
  const signedRange = Object.freeze({ start: start + 1, end: r.offset });

  let signatureField: SignatureField = 'absent';
  let signature: Uint8Array | null = null;
  if (!r.done) {
    const sAt = r.offset;
    const sLen = r.u8('signature length');
    if (sLen === 0) signatureField = 'empty';
    else if (sLen === 0x40) {
      signature = r.bytesView(64, 'signature');
      signatureField = 'present';
    } else fail(sAt, 'signature length is neither 00 nor 40');
  }
  if (!r.done) fail(r.offset, `${r.remaining} byte(s) after the general-signing APDU`);
  return {
    cra,
    originatorCounter,
    originator,
    recipient,
    ...(dateTime ? { dateTime } : {}),
    messageCode,
    ...(supplementaryRemotePartyId !== undefined ? { supplementaryRemotePartyId } : {}),
    ...(supplementaryRemotePartyCounter !== undefined ? { supplementaryRemotePartyCounter } : {}),
    ...(supplementaryOriginatorCounter !== undefined ? { supplementaryOriginatorCounter } : {}),
    ...(keyAgreementCertificate ? { keyAgreementCertificate } : {}),
    payload,
    signatureField,
    signature,
    signedRange,
  };
}

/**
 * Parse a GBCS message: a general-signing APDU (`DF …`, a pre-command, a signed pre-command or a
 * device-signed response) or a general-ciphering frame (`DD …`, with the ACB's or a device's MAC).
 * Strict: every length is checked before it is used, non-minimal lengths and trailing bytes are
 * malformed, and nothing is re-encoded: the result keeps the bytes and the offsets of the signed
 * range and of the APDU that the MAC covers.
 *
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset) for anything that is not a complete,
 *   well-formed message
 * @see docs/domain.md §3
 * @example
 * ```ts
 * import { buildMessage, parseMessage } from '@smki/gbcs';
 * const bytes = buildMessage({
 *   cra: 'command', originatorCounter: 1000n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0',
 *   messageCode: 0x0050, payload: new Uint8Array([0xd9]),
 * });
 * const m = parseMessage(bytes);
 * console.log(m.frame, m.messageCode.toString(16), m.originatorCounter); // 'signed' '50' 1000n
 * ```
 */
export function parseMessage(input: Uint8Array): GbcsMessage {
  if (!(input instanceof Uint8Array)) throw new SmkiError('ERR_GBCS_MALFORMED', 'a GBCS message is a Uint8Array', { offset: 0, detail: typeof input });
  if (input.length > MAX_MESSAGE_BYTES) fail(0, `message over ${MAX_MESSAGE_BYTES} bytes`);
  const bytes = new Uint8Array(input); // owned: the caller may reuse its buffer
  try {
    if (bytes[0] === 0xdf) {
      const apdu = parseApdu(new ByteReader(bytes));
      return Object.freeze({ frame: 'signed', ...apdu, bytes, apduRange: Object.freeze({ start: 0, end: bytes.length }) }) as GbcsMessage;
    }
    if (bytes[0] === 0xdd) {
      const r = new ByteReader(bytes, 1); // byte 0 is DD
      for (let i = 1; i < CIPHERING_PREFIX.length; i++) {
        if (r.u8('general-ciphering header') !== CIPHERING_PREFIX[i]) fail(i, 'general-ciphering header is not DD 00 00 00 00 00 00');
      }
      const lenAt = r.offset;
      const len = readLength(r, 'ciphered content');
      if (len < r.remaining) fail(r.offset + len, `${r.remaining - len} byte(s) after the general-ciphering frame`);
      if (len > r.remaining) fail(lenAt, `ciphered content length ${len} but ${r.remaining} byte(s) follow`);
      if (len < SECURITY_HEADER.length + 1 + MAC_BYTES) fail(lenAt, 'ciphered content too short');
      const hAt = r.offset;
      for (let i = 0; i < SECURITY_HEADER.length; i++) {
        if (r.u8('security header') !== SECURITY_HEADER[i]) fail(hAt + i, 'security header is not 11 00 00 00 00');
      }
      const apduStart = r.offset;
      const apduEnd = bytes.length - MAC_BYTES;
      const apdu = parseApdu(new ByteReader(bytes, apduStart, apduEnd));
      const mac = bytes.subarray(apduEnd);
      return Object.freeze({ frame: 'ciphered', ...apdu, mac, bytes, apduRange: Object.freeze({ start: apduStart, end: apduEnd }) }) as GbcsMessage;
    }
    return fail(0, bytes.length === 0 ? 'empty input' : `first byte 0x${(bytes[0] as number).toString(16)} is neither DF nor DD`);
  } catch (e) {
    if (e instanceof SmkiError && e.code === 'ERR_GBCS_MALFORMED') throw e;
    const offset = e instanceof SmkiError && typeof (e.context as { offset?: unknown }).offset === 'number' ? (e.context as { offset: number }).offset : 0;
    throw new SmkiError('ERR_GBCS_MALFORMED', `not a GBCS message: ${e instanceof Error ? e.message : 'undecodable'}`, { offset }, { cause: e });
  }
}

function u64Bytes(v: bigint, what: string): Uint8Array {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new SmkiError('ERR_GBCS_INVALID_FIELD', `${what} must be a bigint in [0, 2^64)`, { detail: String(v) });
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v);
  return out;
}

function euiBytes(v: string, what: string): Uint8Array {
  try {
    return Uint8Array.from(Buffer.from(parseEui64(v), 'hex'));
  } catch (cause) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', `${what} is not an EUI-64`, { detail: String(v).slice(0, 32) }, { cause });
  }
}

/**
 * Build a general-signing APDU from its fields (never from kept bytes).
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD`
 * @see docs/domain.md §3
 */
export function buildGeneralSigning(fields: GbcsFields): Uint8Array {
  const f = fields;
  // Own properties only: `cra: 'toString'` (or '__proto__') must not find an inherited value.
  const cra = typeof f.cra === 'string' && Object.hasOwn(CRA_BYTE, f.cra) ? CRA_BYTE[f.cra] : undefined;
  if (cra === undefined) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'cra must be command, response or alert', { detail: String(f.cra) });
  if (!Number.isInteger(f.messageCode) || f.messageCode < 0 || f.messageCode > 0xffff) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'messageCode must be 0..0xFFFF', { detail: String(f.messageCode) });
  }
  if (f.dateTime !== undefined && (!(f.dateTime instanceof Uint8Array) || f.dateTime.length !== 12)) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'dateTime must be 12 bytes', {});
  }
  if (!(f.payload instanceof Uint8Array)) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'payload must be a Uint8Array', {});
  // other-information: code, then the supplementary fields in their fixed order (each needs the one before)
  const oi: Uint8Array[] = [Uint8Array.of(f.messageCode >> 8, f.messageCode & 0xff)];
  const hasId = f.supplementaryRemotePartyId !== undefined;
  const hasCounter = f.supplementaryRemotePartyCounter !== undefined;
  const hasOrig = f.supplementaryOriginatorCounter !== undefined;
  const hasCert = f.keyAgreementCertificate !== undefined;
  if ((hasCounter && !hasId) || (hasOrig && !hasCounter) || (hasCert && !hasCounter) || (hasCert && hasOrig)) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'supplementary fields must come in order: id, counter, then an originator counter or a key-agreement certificate', {});
  }
  if (hasId) oi.push(euiBytes(f.supplementaryRemotePartyId as string, 'supplementaryRemotePartyId'));
  if (hasCounter) oi.push(u64Bytes(f.supplementaryRemotePartyCounter as bigint, 'supplementaryRemotePartyCounter'));
  if (hasOrig) oi.push(u64Bytes(f.supplementaryOriginatorCounter as bigint, 'supplementaryOriginatorCounter'));
  if (hasCert) {
    const cert = f.keyAgreementCertificate as Uint8Array;
    if (!(cert instanceof Uint8Array) || cert.length < 9) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'keyAgreementCertificate must be more than 8 bytes', {});
    oi.push(cert);
  }
  const other = concatBytes(...oi);
  const field = f.signatureField ?? (f.signature ? 'present' : 'absent');
  let tail: Uint8Array;
  if (field === 'present') {
    if (!(f.signature instanceof Uint8Array) || f.signature.length !== 64) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'a present signature is 64 bytes r‖s', {});
    tail = concatBytes(Uint8Array.of(0x40), f.signature);
  } else if (field === 'empty' || field === 'absent') {
    if (f.signature) throw new SmkiError('ERR_GBCS_INVALID_FIELD', `signatureField ${field} with a signature`, {});
    tail = field === 'empty' ? Uint8Array.of(0) : new Uint8Array(0);
  } else {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'signatureField must be absent, empty or present', { detail: String(field) });
  }
  return withinLimit(concatBytes(
    Uint8Array.of(0xdf, 0x09, cra),
    u64Bytes(f.originatorCounter, 'originatorCounter'),
    Uint8Array.of(8),
    euiBytes(f.originator, 'originator'),
    Uint8Array.of(8),
    euiBytes(f.recipient, 'recipient'),
    f.dateTime ? concatBytes(Uint8Array.of(0x0c), f.dateTime) : Uint8Array.of(0),
    lengthBytes(other.length),
    other,
    lengthBytes(f.payload.length),
    f.payload,
    tail,
  ));
}

/** Builders never make what the parser would refuse: nothing over {@link MAX_MESSAGE_BYTES}. */
function withinLimit(bytes: Uint8Array): Uint8Array {
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', `the message would be ${bytes.length} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`, { detail: String(bytes.length) });
  }
  return bytes;
}

/**
 * Wrap a general-signing APDU and its MAC in a general-ciphering frame:
 * `DD 00 00 00 00 00 00 ‖ len ‖ 11 00 00 00 00 ‖ APDU ‖ MAC`.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD`
 * @see docs/domain.md §3
 */
export function buildGeneralCiphering(apdu: Uint8Array, mac: Uint8Array): Uint8Array {
  if (!(apdu instanceof Uint8Array) || apdu[0] !== 0xdf) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'the inner APDU must be a general-signing APDU (DF)', {});
  if (!(mac instanceof Uint8Array) || mac.length !== MAC_BYTES) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'a MAC is 12 bytes', {});
  // One allocation: prefix ‖ length ‖ (security header ‖ APDU ‖ MAC).
  const innerLength = SECURITY_HEADER.length + apdu.length + MAC_BYTES;
  const length = lengthBytes(innerLength);
  const out = new Uint8Array(CIPHERING_PREFIX.length + length.length + innerLength);
  out.set(CIPHERING_PREFIX, 0);
  out.set(length, CIPHERING_PREFIX.length);
  let at = CIPHERING_PREFIX.length + length.length;
  out.set(SECURITY_HEADER, at);
  at += SECURITY_HEADER.length;
  out.set(apdu, at);
  out.set(mac, at + apdu.length);
  return withinLimit(out);
}

/**
 * Build a message from fields: a general-signing APDU, or with `mac` a general-ciphering frame.
 * `buildMessage(parseMessage(bytes))` gives `bytes` back exactly.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD`
 * @see docs/domain.md §3
 */
export function buildMessage(fields: GbcsFields & { readonly frame?: Frame; readonly mac?: Uint8Array }): Uint8Array {
  const apdu = buildGeneralSigning(fields);
  const frame = fields.frame ?? (fields.mac ? 'ciphered' : 'signed');
  if (frame === 'signed') {
    if (fields.mac) throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'a signed frame has no MAC', {});
    return apdu;
  }
  if (frame !== 'ciphered') throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'frame must be signed or ciphered', { detail: String(frame).slice(0, 32) });
  return buildGeneralCiphering(apdu, fields.mac as Uint8Array); // which refuses a missing MAC or one that is not 12 bytes
}

/** The general-signing APDU of a message (a view of its bytes). */
export function apduBytes(message: GbcsMessage): Uint8Array {
  return message.bytes.subarray(message.apduRange.start, message.apduRange.end);
}

/** The bytes the User's signature covers (a view): after the DF tag up to the last content byte. */
export function signedBytes(message: GbcsMessage): Uint8Array {
  return message.bytes.subarray(message.signedRange.start, message.signedRange.end);
}
