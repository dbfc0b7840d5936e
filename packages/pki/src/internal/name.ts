/**
 * Distinguished names, built attribute by attribute with an explicit string encoding (so a
 * test-vector generator can break exactly one rule), and decoded back into the toolkit's
 * {@link DistinguishedName} view. Also the few DER writing primitives the builders share.
 *
 * ```asn1
 * Name ::= CHOICE { rdnSequence RDNSequence }
 * RDNSequence ::= SEQUENCE OF RelativeDistinguishedName
 * RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
 * AttributeTypeAndValue ::= SEQUENCE { type AttributeType, value AttributeValue }
 * ```
 * SMKI names carry one attribute per RDN, so no SET OF sorting is ever needed.
 * @module
 */
import { ByteReader, checkDerStructure, concatBytes, eui64ToBytes, readTlv, SmkiError, tlvReader, toHex, type Eui64 } from '@smki/core';
import { OID } from '../environment.js';
import type { DistinguishedName, NameAttribute } from '../types.js';
import { readBitString, readOid } from './der-read.js';

// ---------------------------------------------------------------------------------------------
// DER writing primitives (X.690 §8, §10: definite minimal lengths)

/** The DER length octets for `n`. */
export function derLength(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'DER length must be a non-negative integer', { detail: String(n) });
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One DER TLV: `tag ‖ length ‖ contents`. */
export function derTlv(tag: number, ...contents: readonly Uint8Array[]): Uint8Array {
  const body = concatBytes(...contents);
  return concatBytes(Uint8Array.of(tag), derLength(body.length), body);
}

/** A SEQUENCE of already-encoded elements. */
export function derSequence(...elements: readonly Uint8Array[]): Uint8Array {
  return derTlv(0x30, ...elements);
}

/** A non-negative INTEGER from a small JavaScript number (minimal two's complement). */
export function derSmallInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'expected a non-negative integer', { detail: String(n) });
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return derTlv(0x02, Uint8Array.from(bytes));
}

const OID_TEXT = /^[0-2](?:\.(?:0|[1-9][0-9]*))+$/;

/** Whether `oid` is a dotted OBJECT IDENTIFIER this module can encode. */
export function isOid(oid: unknown): oid is string {
  if (typeof oid !== 'string' || oid.length > 200 || !OID_TEXT.test(oid)) return false;
  const arcs = oid.split('.');
  const first = Number(arcs[0]);
  const second = BigInt(arcs[1] as string);
  return first === 2 || second < 40n;
}

/**
 * The DER of an OBJECT IDENTIFIER (tag, length, base-128 arcs).
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for text that is not a dotted OID
 */
export function derOid(oid: string): Uint8Array {
  if (!isOid(oid)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'not a dotted OBJECT IDENTIFIER', { detail: String(oid).slice(0, 64) });
  const arcs = oid.split('.').map((a) => BigInt(a));
  const out: number[] = [];
  const push = (arc: bigint): void => {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  };
  push((arcs[0] as bigint) * 40n + (arcs[1] as bigint));
  for (const arc of arcs.slice(2)) push(arc);
  return derTlv(0x06, Uint8Array.from(out));
}

// ---------------------------------------------------------------------------------------------
// Name templates

/**
 * How one attribute value is encoded. `printable` and `utf8` are DirectoryString choices;
 * `bitstring` is for x500UniqueIdentifier (`bitLength` bits of `bytes`, the unused-bits octet is
 * `bytes.length * 8 - bitLength`, written as given); `raw` is one DER TLV used verbatim.
 */
export type AttributeValueTemplate =
  | { readonly encoding: 'printable'; readonly value: string }
  | { readonly encoding: 'utf8'; readonly value: string }
  | { readonly encoding: 'bitstring'; readonly bytes: Uint8Array; readonly bitLength: number }
  | { readonly encoding: 'raw'; readonly der: Uint8Array };

/** One attribute of a name template: its type OID and its encoded value. Each is its own RDN. */
export interface NameAttributeTemplate {
  /** Attribute type OID, e.g. `2.5.4.3` (CN). */
  readonly oid: string;
  /** The value and how it is encoded. */
  readonly value: AttributeValueTemplate;
}

/**
 * A name: a list of attributes (one per RDN, in order; an empty list is the empty SEQUENCE a
 * device certificate has), or the DER of a whole Name copied verbatim (an issuer certificate's
 * subject, so that issuer and subject compare equal byte for byte, RFC 5280 §7.1).
 */
export type NameTemplate = { readonly attributes: readonly NameAttributeTemplate[] } | { readonly der: Uint8Array };

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
// A lone surrogate cannot be encoded as UTF-8.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The DER of one attribute value.
 * @throws SmkiError `ERR_INVALID_ARGUMENT`
 */
export function encodeAttributeValue(v: AttributeValueTemplate): Uint8Array {
  switch (v.encoding) {
    case 'printable':
      if (typeof v.value !== 'string' || !PRINTABLE.test(v.value)) {
        throw new SmkiError('ERR_INVALID_ARGUMENT', 'not a PrintableString', { detail: String(v.value).slice(0, 64) });
      }
      return derTlv(0x13, new Uint8Array(Buffer.from(v.value, 'latin1')));
    case 'utf8':
      if (typeof v.value !== 'string' || LONE_SURROGATE.test(v.value)) {
        throw new SmkiError('ERR_INVALID_ARGUMENT', 'not a well-formed Unicode string', {});
      }
      return derTlv(0x0c, new TextEncoder().encode(v.value));
    case 'bitstring': {
      const unused = v.bytes.length * 8 - v.bitLength;
      if (!Number.isInteger(v.bitLength) || unused < 0 || unused > 7 || (v.bytes.length === 0 && unused !== 0)) {
        throw new SmkiError('ERR_INVALID_ARGUMENT', 'bitLength does not fit the bytes given', { detail: `${v.bitLength} bits in ${v.bytes.length} bytes` });
      }
      return derTlv(0x03, Uint8Array.of(unused), v.bytes);
    }
    case 'raw':
      checkDerStructure(v.der);
      return new Uint8Array(v.der);
    default:
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'unknown attribute encoding', { detail: String((v as { encoding?: unknown }).encoding) });
  }
}

/**
 * The DER of a Name from a template (attribute list, or verbatim DER checked to be one TLV).
 * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_DER_INVALID`
 */
export function encodeName(name: NameTemplate): Uint8Array {
  if ('der' in name) {
    const top = checkDerStructure(name.der);
    if (top.tag !== 0x30) throw new SmkiError('ERR_INVALID_ARGUMENT', 'a Name is a SEQUENCE', { detail: `tag 0x${top.tag.toString(16)}` });
    return new Uint8Array(name.der);
  }
  const rdns = name.attributes.map((a) => derTlv(0x31, derSequence(derOid(a.oid), encodeAttributeValue(a.value))));
  return derSequence(...rdns);
}

/** A CN attribute as UTF8String (the organisation profile, docs/domain.md §2). */
export function commonNameAttribute(value: string, encoding: 'printable' | 'utf8' = 'utf8'): NameAttributeTemplate {
  return { oid: OID.commonName, value: { encoding, value } };
}

/** An OU attribute (roles are written as two upper-case hex digits, docs/domain.md §2). */
export function organizationalUnitAttribute(value: string, encoding: 'printable' | 'utf8' = 'printable'): NameAttributeTemplate {
  return { oid: OID.organizationalUnitName, value: { encoding, value } };
}

/**
 * x500UniqueIdentifier (2.5.4.45) holding an EUI-64: a BIT STRING of exactly 64 bits, unused-bits
 * octet 00 (docs/domain.md §2).
 */
export function entityIdAttribute(eui: Eui64): NameAttributeTemplate {
  return { oid: OID.x500UniqueIdentifier, value: { encoding: 'bitstring', bytes: eui64ToBytes(eui), bitLength: 64 } };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Short names by attribute type OID (a Map: an OID read from the input never reaches an inherited property). */
const ATTRIBUTE_NAMES: ReadonlyMap<string, string> = new Map([
  ['2.5.4.3', 'CN'],
  ['2.5.4.5', 'serialNumber'],
  ['2.5.4.6', 'C'],
  ['2.5.4.7', 'L'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.45', 'x500UniqueIdentifier'],
]);

/** Most attributes a decoded name may have (SMKI names have at most three). */
const MAX_NAME_ATTRIBUTES = 64;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function decodeString(tag: number, v: Uint8Array): string | undefined {
  switch (tag) {
    case 0x0c:
      return utf8Decoder.decode(v);
    case 0x13:
    case 0x16:
    case 0x14:
    case 0x1a:
      return Buffer.from(v).toString('latin1');
    case 0x1e: {
      if (v.length % 2 !== 0) return undefined;
      let s = '';
      for (let i = 0; i < v.length; i += 2) s += String.fromCharCode(((v[i] as number) << 8) | (v[i + 1] as number));
      return s;
    }
    default:
      return undefined;
  }
}

/**
 * Decode the Name TLV at the reader's offset (and move past it) into attributes in order, a
 * display text and the exact DER. Bounded: every length is checked by `readTlv`, at most
 * {@link MAX_NAME_ATTRIBUTES} attributes.
 * @throws SmkiError `ERR_DER_INVALID`, `ERR_BYTES_TRUNCATED`
 */
export function readName(reader: ByteReader): DistinguishedName {
  const bytes = reader.bytes;
  const seq = readTlv(reader, 0x30);
  const r = tlvReader(bytes, seq);
  const attributes: NameAttribute[] = [];
  while (!r.done) {
    const set = readTlv(r, 0x31);
    const sr = tlvReader(bytes, set);
    if (sr.done) throw new SmkiError('ERR_DER_INVALID', 'empty RDN', { offset: set.start });
    while (!sr.done) {
      if (attributes.length >= MAX_NAME_ATTRIBUTES) throw new SmkiError('ERR_DER_INVALID', 'too many name attributes', { offset: sr.offset });
      const atv = readTlv(sr, 0x30);
      const ar = tlvReader(bytes, atv);
      const oid = readOid(ar);
      const valueStart = ar.offset;
      const val = readTlv(ar);
      if (!ar.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields in AttributeTypeAndValue', { offset: ar.offset });
      const type = ATTRIBUTE_NAMES.get(oid) ?? oid;
      const content = bytes.subarray(val.valueStart, val.end);
      if (val.tag === 0x03) {
        const bs = readBitString(new ByteReader(bytes, valueStart, val.end));
        attributes.push({ oid, type, tag: 3, value: toHex(bs.data), bitLength: bs.data.length * 8 - bs.unusedBits });
        continue;
      }
      let text: string | undefined;
      try {
        text = decodeString(val.tag, content);
      } catch {
        // The decoder's TypeError says nothing the offset does not; keep the chain all SmkiError.
        throw new SmkiError('ERR_DER_INVALID', 'attribute string is not valid UTF-8', { offset: val.start });
      }
      attributes.push({ oid, type, tag: val.tag, value: text ?? toHex(content) });
    }
  }
  const text = attributes.map((a) => `${a.type}=${a.tag === 3 ? `#${a.value}` : a.value}`).join(', ');
  return { attributes, text, der: bytes.subarray(seq.start, seq.end) };
}

/**
 * Decode a whole Name DER (nothing may follow it).
 * @throws SmkiError `ERR_DER_INVALID`, `ERR_DER_TRAILING_DATA`, `ERR_BYTES_TRUNCATED`
 */
export function decodeName(der: Uint8Array): DistinguishedName {
  const r = new ByteReader(der);
  const name = readName(r);
  if (!r.done) throw new SmkiError('ERR_DER_TRAILING_DATA', 'bytes after the Name', { offset: r.offset });
  return name;
}
