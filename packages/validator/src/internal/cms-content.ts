/**
 * The DCO envelope's eContent, `DcoCountersignedCommand`: encoded with asn1js, read back by a
 * strict DER reader (asn1js accepts BER and non-minimal integers; the verifier must not).
 *
 * ```asn1
 * DcoCountersignedCommand ::= SEQUENCE {
 *   version            INTEGER (1),
 *   command            OCTET STRING (SIZE (1..65536)),
 *   messageCode        INTEGER (0..65535),
 *   originator         OCTET STRING (SIZE (8)),
 *   device             OCTET STRING (SIZE (8)),
 *   originatorCounter  INTEGER (0..18446744073709551615),
 *   outcome            ENUMERATED { accepted (0), anomaly (1) },
 *   envelopeCounter    INTEGER (0..18446744073709551615),
 *   rule               UTF8String (SIZE (1..256)) OPTIONAL
 * }
 * ```
 * @module
 */
import * as asn1js from 'asn1js';
import { ByteReader, eui64FromBytes, eui64ToBytes, isSmkiError, readTlv, SmkiError, type Eui64, type Tlv } from '@smki/core';

/** The most command bytes an envelope carries (a GBCS message is at most 64 KiB). */
export const MAX_COMMAND_BYTES = 64 * 1024;
/** The most UTF-8 bytes of the anomaly rule name. */
export const MAX_RULE_BYTES = 256;
/** 2^64 - 1: the largest counter. */
export const MAX_COUNTER = (1n << 64n) - 1n;

/** The decoded eContent. */
export interface DcoContent {
  /** The GBCS command bytes as the DCO received them. */
  readonly command: Uint8Array;
  /** The GBCS message code. */
  readonly messageCode: number;
  /** The command's originator (the User). */
  readonly originator: Eui64;
  /** The device the command is for. */
  readonly device: Eui64;
  /** The command's originator counter. */
  readonly originatorCounter: bigint;
  /** The DCO's verdict. */
  readonly outcome: 'accepted' | 'anomaly';
  /** The DCO's own envelope counter for (DCO, device). */
  readonly envelopeCounter: bigint;
  /** The anomaly rule that fired, if any. */
  readonly rule?: string;
}

const OUTCOMES = ['accepted', 'anomaly'] as const;

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** The DER of a DcoCountersignedCommand. Inputs are checked by the caller. */
export function encodeDcoContent(c: DcoContent): Uint8Array {
  const fields: asn1js.AsnType[] = [
    asn1js.Integer.fromBigInt(1n),
    new asn1js.OctetString({ valueHex: toArrayBuffer(c.command) }),
    asn1js.Integer.fromBigInt(BigInt(c.messageCode)),
    new asn1js.OctetString({ valueHex: toArrayBuffer(eui64ToBytes(c.originator)) }),
    new asn1js.OctetString({ valueHex: toArrayBuffer(eui64ToBytes(c.device)) }),
    asn1js.Integer.fromBigInt(c.originatorCounter),
    new asn1js.Enumerated({ value: OUTCOMES.indexOf(c.outcome) }),
    asn1js.Integer.fromBigInt(c.envelopeCounter),
  ];
  if (c.rule !== undefined) fields.push(new asn1js.Utf8String({ value: c.rule }));
  return new Uint8Array(new asn1js.Sequence({ value: fields }).toBER(false));
}

function bad(detail: string, offset: number, cause?: unknown): SmkiError<'ERR_DCO_MALFORMED'> {
  return new SmkiError('ERR_DCO_MALFORMED', `the eContent is not a DcoCountersignedCommand: ${detail} at offset ${offset}`, { offset, detail: `eContent: ${detail}` }, cause === undefined ? undefined : { cause });
}

/** A DER INTEGER that must be non-negative, minimal and at most `max`. */
function readUnsigned(r: ByteReader, bytes: Uint8Array, what: string, max: bigint, tag = 0x02): bigint {
  const at = r.offset;
  if (r.done) throw bad(`${what} is missing`, at);
  const t = readTlv(r);
  if (t.tag !== tag) throw bad(`${what} is not ${tag === 0x02 ? 'an INTEGER' : 'an ENUMERATED'}`, at);
  const v = bytes.subarray(t.valueStart, t.end);
  if (v.length === 0) throw bad(`${what} has no content octets`, at);
  if ((v[0] as number) & 0x80) throw bad(`${what} is negative`, at);
  if (v.length > 1 && v[0] === 0 && !((v[1] as number) & 0x80)) throw bad(`${what} is not minimally encoded`, at);
  // At most 9 octets can hold 2^64 - 1 (a leading 00); anything longer is out of range without a loop over it.
  if (v.length > 9) throw bad(`${what} is out of range`, at);
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  if (n > max) throw bad(`${what} is out of range`, at);
  return n;
}

function readOctets(r: ByteReader, bytes: Uint8Array, what: string, min: number, max: number): Uint8Array {
  const at = r.offset;
  if (r.done) throw bad(`${what} is missing`, at);
  const t: Tlv = readTlv(r);
  if (t.tag !== 0x04) throw bad(`${what} is not a primitive OCTET STRING`, at);
  const n = t.end - t.valueStart;
  if (n < min || n > max) throw bad(`${what} is ${n} octets, not ${min === max ? min : `${min} to ${max}`}`, at);
  return bytes.slice(t.valueStart, t.end);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Read a DcoCountersignedCommand, DER only: one SEQUENCE and nothing after it, version 1, every
 * length and range as the ASN.1 above says, minimal INTEGERs, primitive strings, valid UTF-8.
 * Offsets in errors are into `bytes`.
 * @throws SmkiError `ERR_DCO_MALFORMED`
 */
export function decodeDcoContent(bytes: Uint8Array): DcoContent {
  try {
    const top = new ByteReader(bytes);
    const seq = readTlv(top);
    if (seq.tag !== 0x30) throw bad('not a SEQUENCE', 0);
    if (!top.done) throw bad('bytes after the SEQUENCE', top.offset);
    const r = new ByteReader(bytes, seq.valueStart, seq.end);
    const versionAt = r.offset;
    const version = readUnsigned(r, bytes, 'version', MAX_COUNTER);
    if (version !== 1n) throw bad(`version ${version} is not 1`, versionAt);
    const command = readOctets(r, bytes, 'command', 1, MAX_COMMAND_BYTES);
    const messageCode = Number(readUnsigned(r, bytes, 'messageCode', 0xffffn));
    const originator = eui64FromBytes(readOctets(r, bytes, 'originator', 8, 8));
    const device = eui64FromBytes(readOctets(r, bytes, 'device', 8, 8));
    const originatorCounter = readUnsigned(r, bytes, 'originatorCounter', MAX_COUNTER);
    const outcomeAt = r.offset;
    const outcome = OUTCOMES[Number(readUnsigned(r, bytes, 'outcome', 0xffn, 0x0a))];
    if (outcome === undefined) throw bad('outcome is not accepted (0) or anomaly (1)', outcomeAt);
    const envelopeCounter = readUnsigned(r, bytes, 'envelopeCounter', MAX_COUNTER);
    let rule: string | undefined;
    if (!r.done) {
      const at = r.offset;
      const t = readTlv(r);
      if (t.tag !== 0x0c) throw bad('the field after envelopeCounter is not a UTF8String rule', at);
      const n = t.end - t.valueStart;
      if (n < 1 || n > MAX_RULE_BYTES) throw bad(`rule is ${n} octets, not 1 to ${MAX_RULE_BYTES}`, at);
      try {
        rule = UTF8.decode(bytes.subarray(t.valueStart, t.end));
      } catch (cause) {
        throw bad('rule is not valid UTF-8', at, cause);
      }
      if (!r.done) throw bad('fields after rule', r.offset);
    }
    return { command, messageCode, originator, device, originatorCounter, outcome, envelopeCounter, ...(rule !== undefined ? { rule } : {}) };
  } catch (e) {
    if (isSmkiError(e, 'ERR_DCO_MALFORMED')) throw e;
    const offset = isSmkiError(e) && typeof (e.context as { offset?: unknown }).offset === 'number' ? ((e.context as { offset: number }).offset) : 0;
    throw bad(isSmkiError(e) ? e.message : 'unreadable', offset, e);
  }
}
