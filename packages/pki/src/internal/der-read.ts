import { ByteReader, readTlv, SmkiError, tlvReader, type Tlv } from '@smki/core';

/**
 * Decode an OBJECT IDENTIFIER value (content octets) to dotted form.
 * @throws SmkiError `ERR_DER_INVALID`
 */
export function decodeOid(bytes: Uint8Array, tlv: Tlv): string {
  const v = bytes.subarray(tlv.valueStart, tlv.end);
  if (v.length === 0 || v.length > 64) throw new SmkiError('ERR_DER_INVALID', 'bad OBJECT IDENTIFIER length', { offset: tlv.start });
  const arcs: number[] = [];
  let acc = 0;
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i] as number;
    if (!started && b === 0x80) throw new SmkiError('ERR_DER_INVALID', 'non-minimal OID arc', { offset: tlv.valueStart + i });
    started = true;
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new SmkiError('ERR_DER_INVALID', 'OID arc too large', { offset: tlv.valueStart + i });
    if (!(b & 0x80)) {
      arcs.push(acc);
      acc = 0;
      started = false;
    }
  }
  if (started) throw new SmkiError('ERR_DER_INVALID', 'truncated OID arc', { offset: tlv.end });
  const first = arcs[0] as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** Read an OID TLV. */
export function readOid(reader: ByteReader): string {
  const t = readTlv(reader, 0x06);
  return decodeOid(reader.bytes, t);
}

/** An AlgorithmIdentifier as found. */
export interface AlgorithmId {
  readonly oid: string;
  readonly params: 'absent' | 'null' | 'other';
  /** DER of the parameters (empty if absent). */
  readonly paramsDer: Uint8Array;
  /** For id-ecPublicKey: the named curve OID. */
  readonly namedCurve?: string;
}

/** Read an AlgorithmIdentifier SEQUENCE. */
export function readAlgorithmId(reader: ByteReader): AlgorithmId {
  const seq = readTlv(reader, 0x30);
  const r = tlvReader(reader.bytes, seq);
  const oid = readOid(r);
  if (r.done) return { oid, params: 'absent', paramsDer: new Uint8Array(0) };
  const p = readTlv(r);
  if (!r.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields in AlgorithmIdentifier', { offset: r.offset });
  const paramsDer = reader.bytes.subarray(p.start, p.end);
  if (p.tag === 0x05) {
    if (p.end !== p.valueStart) throw new SmkiError('ERR_DER_INVALID', 'NULL with content', { offset: p.start });
    return { oid, params: 'null', paramsDer };
  }
  if (p.tag === 0x06) return { oid, params: 'other', paramsDer, namedCurve: decodeOid(reader.bytes, p) };
  return { oid, params: 'other', paramsDer };
}

const DIGITS = /^[0-9]+$/;

/**
 * Decode a UTCTime (tag 23, `YYMMDDHHMMSSZ`) or GeneralizedTime (tag 24, `YYYYMMDDHHMMSSZ`) as
 * RFC 5280 §4.1.2.5 requires them: seconds present, Zulu, no fractions.
 * @throws SmkiError `ERR_DER_INVALID`
 */
export function decodeTime(bytes: Uint8Array, tlv: Tlv): { date: Date; text: string } {
  const text = Buffer.from(bytes.subarray(tlv.valueStart, tlv.end)).toString('latin1');
  const bad = (): never => {
    throw new SmkiError('ERR_DER_INVALID', `bad time ${JSON.stringify(text.slice(0, 20))}`, { offset: tlv.start });
  };
  let year: number;
  let rest: string;
  if (tlv.tag === 0x17) {
    if (text.length !== 13 || !text.endsWith('Z') || !DIGITS.test(text.slice(0, 12))) bad();
    const yy = Number(text.slice(0, 2));
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = text.slice(2, 12);
  } else if (tlv.tag === 0x18) {
    if (text.length !== 15 || !text.endsWith('Z') || !DIGITS.test(text.slice(0, 14))) bad();
    year = Number(text.slice(0, 4));
    rest = text.slice(4, 14);
  } else {
    return bad();
  }
  const [mo, d, h, mi, s] = [0, 2, 4, 6, 8].map((i) => Number(rest.slice(i, i + 2))) as [number, number, number, number, number];
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  const date = new Date(ms);
  if (
    year < 1 || date.getUTCFullYear() !== year || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d ||
    date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== s
  ) {
    bad();
  }
  return { date, text };
}

/** Read an INTEGER's content octets (must be non-empty and minimal). */
export function readIntegerBytes(reader: ByteReader): { bytes: Uint8Array; tlv: Tlv } {
  const t = readTlv(reader, 0x02);
  const v = reader.bytes.subarray(t.valueStart, t.end);
  if (v.length === 0) throw new SmkiError('ERR_DER_INVALID', 'empty INTEGER', { offset: t.start });
  if (v.length > 1 && ((v[0] === 0 && !((v[1] as number) & 0x80)) || (v[0] === 0xff && (v[1] as number) & 0x80))) {
    throw new SmkiError('ERR_DER_INVALID', 'non-minimal INTEGER', { offset: t.start });
  }
  return { bytes: v, tlv: t };
}

/** Decode a small non-negative INTEGER (up to 2^31). */
export function readSmallInteger(reader: ByteReader): number {
  const { bytes, tlv } = readIntegerBytes(reader);
  if ((bytes[0] as number) & 0x80 || bytes.length > 4) throw new SmkiError('ERR_DER_INVALID', 'INTEGER out of range', { offset: tlv.start });
  let n = 0;
  for (const b of bytes) n = n * 256 + b;
  return n;
}

/** Read a BIT STRING: unused-bit count and content. */
export function readBitString(reader: ByteReader, tag = 0x03): { unusedBits: number; data: Uint8Array; tlv: Tlv } {
  const t = readTlv(reader, tag);
  if (t.end === t.valueStart) throw new SmkiError('ERR_DER_INVALID', 'empty BIT STRING', { offset: t.start });
  const unusedBits = reader.bytes[t.valueStart] as number;
  const data = reader.bytes.subarray(t.valueStart + 1, t.end);
  if (unusedBits > 7 || (data.length === 0 && unusedBits !== 0)) {
    throw new SmkiError('ERR_DER_INVALID', 'bad BIT STRING unused-bits octet', { offset: t.start });
  }
  return { unusedBits, data, tlv: t };
}

/** Decode a BOOLEAN (DER: 00 or FF). */
export function readBoolean(reader: ByteReader): boolean {
  const t = readTlv(reader, 0x01);
  if (t.end - t.valueStart !== 1) throw new SmkiError('ERR_DER_INVALID', 'BOOLEAN length', { offset: t.start });
  const v = reader.bytes[t.valueStart] as number;
  if (v !== 0 && v !== 0xff) throw new SmkiError('ERR_DER_INVALID', 'BOOLEAN not DER', { offset: t.start });
  return v === 0xff;
}
