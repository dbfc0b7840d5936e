// RFC 5280 §4.1 (Certificate, TBSCertificate, Validity, AlgorithmIdentifier, Extension) and
// X.501 (Name: RDNSequence, RelativeDistinguishedName SET SIZE (1..MAX), AttributeTypeAndValue).
//
// The structural guards of parseCertificate and of the name reader, one at a time: each case
// takes a real certificate's DER, adds or changes exactly one element (every enclosing length
// fixed up), and expects exactly that guard: ERR_CERT_MALFORMED whose cause is the reader's
// ERR_DER_INVALID, at the byte offset of the offending element, with the guard's message. The
// offset and message are what tell one guard from another (all of them surface as
// ERR_CERT_MALFORMED), and each case is built so that without its guard the certificate would
// parse (or fail elsewhere), so a guard that is removed makes its case fail.
import { describe, expect, it } from 'vitest';
import { isSmkiError, SmkiError, type SmkiErrorCode } from '@smki/core';
import { decodeName } from '../src/internal/name.js';
import { parseCertificate } from '../src/parse.js';
import { buildCertificate, buildHierarchy, buildOrganisationCertificate, name, newKeyPair, nul, OIDS, oid, seq, set, tlv, utf8 } from './_x509-builder.js';

// ---------------------------------------------------------------------------------------------
// A minimal DER editor over definite-length TLVs (the inputs are DER this file made).

interface Tlv {
  readonly tag: number;
  /** Offset of the tag octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly valueStart: number;
  /** Offset after the last content octet. */
  readonly end: number;
}

function readTlvAt(der: Uint8Array, at: number): Tlv {
  const tag = der[at] as number;
  let len = der[at + 1] as number;
  let valueStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[at + 2 + i] as number);
    valueStart += n;
  }
  return { tag, start: at, valueStart, end: valueStart + len };
}

function childrenOf(der: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.valueStart; at < t.end; ) {
    const c = readTlvAt(der, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** The element at `path` (child indices from the outermost TLV). */
function elementAt(der: Uint8Array, path: readonly number[]): Tlv {
  let t = readTlvAt(der, 0);
  for (const i of path) {
    const c = childrenOf(der, t)[i];
    if (c === undefined) throw new Error(`no child ${i} at ${path.join('.')}`);
    t = c;
  }
  return t;
}

/** Rewrite the children of the element at `path`, re-encoding every enclosing length. */
function editChildren(der: Uint8Array, path: readonly number[], edit: (kids: Uint8Array[]) => Uint8Array[]): Uint8Array {
  const rewrite = (t: Tlv, rest: readonly number[]): Uint8Array => {
    const kids = childrenOf(der, t).map((c) => der.subarray(c.start, c.end));
    if (rest.length === 0) return tlv(t.tag, ...edit(kids));
    const [i, ...more] = rest as [number, ...number[]];
    const target = childrenOf(der, t)[i];
    if (target === undefined) throw new Error(`no child ${i}`);
    kids[i] = rewrite(target, more);
    return tlv(t.tag, ...kids);
  };
  return rewrite(readTlvAt(der, 0), path);
}

/** Insert `element` as child `index` of the element at `path`; returns the DER and the element's offset. */
function insertAt(der: Uint8Array, path: readonly number[], index: number, element: Uint8Array): { der: Uint8Array; offset: number } {
  const out = editChildren(der, path, (kids) => [...kids.slice(0, index), element, ...kids.slice(index)]);
  return { der: out, offset: elementAt(out, [...path, index]).start };
}

/** A copy of the element at `path`. */
const copyOf = (der: Uint8Array, path: readonly number[]): Uint8Array => {
  const t = elementAt(der, path);
  return der.slice(t.start, t.end);
};

// ---------------------------------------------------------------------------------------------
// Expectations

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** ERR_CERT_MALFORMED caused by `cause` (ERR_DER_INVALID unless given) at `offset`, with `message`. */
function expectGuard(der: Uint8Array, offset: number, message: RegExp, cause: SmkiErrorCode = 'ERR_DER_INVALID'): void {
  const e = thrown(() => parseCertificate(der));
  expect(isSmkiError(e), String(e)).toBe(true);
  const err = e as SmkiError;
  expect(err.code).toBe('ERR_CERT_MALFORMED');
  expect((err.context as { offset?: number }).offset).toBe(offset);
  expect(err.message).toMatch(message);
  expect(isSmkiError(err.cause), String(err.cause)).toBe(true);
  expect((err.cause as SmkiError).code).toBe(cause);
}

// TBSCertificate children of a certificate from buildCertificate:
// 0 version [0], 1 serialNumber, 2 signature, 3 issuer, 4 validity, 5 subject,
// 6 subjectPublicKeyInfo, 7 extensions [3].
const TBS = 0;
const SIGNATURE_ALGORITHM = 1;
const TBS_VERSION = 0;
const TBS_SIGNATURE = 2;
const TBS_VALIDITY = 4;
const TBS_SUBJECT = 5;
const TBS_SPKI = 6;
const TBS_EXTENSIONS = 7;

const pki = buildHierarchy(new Date(Date.UTC(2024, 0, 1)));
const notBefore = new Date(Date.UTC(2024, 1, 1));
const orgDer = buildOrganisationCertificate({ issuer: pki.oca, eui: '90B3D51F30010000', ou: '02', keyUsage: 'digitalSignature', notBefore, cn: 'Supplier' });
const orgNullParams = buildOrganisationCertificate({ issuer: pki.oca, eui: '90B3D51F30010000', ou: '02', keyUsage: 'digitalSignature', notBefore, explicitNullParams: true });

/** A certificate under the OCA with the given subject Name DER (and the organisation extensions). */
function withSubject(subject: Uint8Array): Uint8Array {
  const key = newKeyPair();
  return buildCertificate({
    issuer: pki.oca.name,
    subject,
    notBefore,
    notAfter: new Date(Date.UTC(2034, 1, 1)),
    publicKey: key.publicKey,
    signingKey: pki.oca.key.privateKey,
    extensions: [],
  });
}

describe('the inputs are sound: the unedited certificates parse (RFC 5280 4.1)', () => {
  it('the organisation certificate, with and without explicit NULL parameters', () => {
    expect(parseCertificate(orgDer).kind).toBe('organisation');
    expect(parseCertificate(orgNullParams).details.signatureAlgorithmParams).toBe('null');
    expect(elementAt(orgDer, [TBS, TBS_EXTENSIONS]).tag).toBe(0xa3);
    expect(elementAt(orgDer, [TBS, TBS_VALIDITY]).tag).toBe(0x30);
  });

  it('the DER editor re-encodes lengths: a no-op edit gives the same bytes', () => {
    expect(editChildren(orgDer, [TBS, TBS_VALIDITY], (kids) => kids)).toEqual(orgDer);
  });
});

describe('parseCertificate: one extra element, one guard (RFC 5280 4.1)', () => {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
  it('an element after signatureValue, inside the Certificate SEQUENCE', () => {
    const { der, offset } = insertAt(orgDer, [], 3, nul());
    expectGuard(der, offset, /extra fields after signatureValue/);
  });

  // TBSCertificate ::= SEQUENCE { … extensions [3] EXPLICIT Extensions OPTIONAL }: nothing after it.
  it('a second extensions [3] after the extensions, inside TBSCertificate', () => {
    const { der, offset } = insertAt(orgDer, [TBS], TBS_EXTENSIONS + 1, copyOf(orgDer, [TBS, TBS_EXTENSIONS]));
    expectGuard(der, offset, /fields after extensions/);
  });

  // Between subjectPublicKeyInfo and extensions only issuerUniqueID [1] / subjectUniqueID [2] may come.
  it('an element of another tag where extensions may be, inside TBSCertificate', () => {
    const { der, offset } = insertAt(orgDer, [TBS], TBS_EXTENSIONS, nul());
    expectGuard(der, offset, /unexpected field tag 0x5 in tbsCertificate/);
  });

  // Validity ::= SEQUENCE { notBefore Time, notAfter Time }
  it('a third Time in the Validity SEQUENCE', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_VALIDITY], 2, copyOf(orgDer, [TBS, TBS_VALIDITY, 1]));
    expectGuard(der, offset, /extra fields in validity/);
  });

  // AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
  it('an element after the parameters of the subjectPublicKeyInfo AlgorithmIdentifier (id-ecPublicKey, P-256)', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_SPKI, 0], 2, nul());
    expectGuard(der, offset, /extra fields in AlgorithmIdentifier/);
  });

  it('an element after the NULL parameters of tbsCertificate.signature', () => {
    const { der, offset } = insertAt(orgNullParams, [TBS, TBS_SIGNATURE], 2, nul());
    expectGuard(der, offset, /extra fields in AlgorithmIdentifier/);
  });

  it('an element after the NULL parameters of the outer signatureAlgorithm', () => {
    const { der, offset } = insertAt(orgNullParams, [SIGNATURE_ALGORITHM], 2, nul());
    expectGuard(der, offset, /extra fields in AlgorithmIdentifier/);
  });

  // version [0] EXPLICIT Version
  it('an element after the INTEGER inside version [0]', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_VERSION], 1, copyOf(orgDer, [TBS, TBS_VERSION, 0]));
    expectGuard(der, offset, /extra fields in version/);
  });

  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }
  it('an element after subjectPublicKey in SubjectPublicKeyInfo', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_SPKI], 2, nul());
    expectGuard(der, offset, /extra fields in subjectPublicKeyInfo/);
  });

  // extensions [3] EXPLICIT Extensions: exactly one SEQUENCE inside
  it('a second SEQUENCE inside extensions [3]', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_EXTENSIONS], 1, copyOf(orgDer, [TBS, TBS_EXTENSIONS, 0]));
    expectGuard(der, offset, /extra fields after extensions/);
  });

  // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
  it('an element after extnValue in an Extension', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_EXTENSIONS, 0, 0], 2, nul());
    expectGuard(der, offset, /extra fields in Extension/);
  });
});

describe('the name reader, one rule at a time (X.501 Name; RFC 5280 4.1.2.4, 4.1.2.6)', () => {
  // AttributeTypeAndValue ::= SEQUENCE { type AttributeType, value AttributeValue }
  it('an element after the value of an AttributeTypeAndValue', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_SUBJECT, 0, 0], 2, utf8('extra'));
    expectGuard(der, offset, /extra fields in AttributeTypeAndValue/);
  });

  // RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
  it('an empty RelativeDistinguishedName (SET of no attribute)', () => {
    const { der, offset } = insertAt(orgDer, [TBS, TBS_SUBJECT], 1, set());
    expectGuard(der, offset, /empty RDN/);
  });

  it('65 attributes, one over the reader bound of 64, fail at the 65th', () => {
    const attrs = Array.from({ length: 65 }, (_, i) => ({ type: 'CN' as const, value: `n${i}` }));
    const der = withSubject(name(attrs));
    const subjectPath = [TBS, TBS_SUBJECT];
    expectGuard(der, elementAt(der, [...subjectPath, 64, 0]).start, /too many name attributes/);
    // 64 attributes are read.
    expect(parseCertificate(withSubject(name(attrs.slice(0, 64)))).subject.attributes).toHaveLength(64);
  });

  // DirectoryString BMPString (tag 30): UCS-2, two octets per character.
  it('a BMPString attribute of an even length is decoded as UCS-2', () => {
    const bmp = tlv(0x1e, Uint8Array.of(0x00, 0x5a, 0x00, 0xe9, 0x20, 0xac));
    const c = parseCertificate(withSubject(seq(set(seq(oid(OIDS.cn), bmp)))));
    expect(c.subject.attributes).toEqual([{ oid: OIDS.cn, type: 'CN', tag: 0x1e, value: 'Zé€' }]);
    expect(c.subject.text).toBe('CN=Zé€');
  });

  it('a BMPString attribute of an odd length is not text: kept as upper-case hex, with its tag', () => {
    const bmp = tlv(0x1e, Uint8Array.of(0x00, 0x5a, 0x00));
    const c = parseCertificate(withSubject(seq(set(seq(oid(OIDS.cn), bmp)))));
    expect(c.subject.attributes).toEqual([{ oid: OIDS.cn, type: 'CN', tag: 0x1e, value: '005A00' }]);
  });

  it('decodeName refuses bytes after the Name with ERR_DER_TRAILING_DATA at their offset', () => {
    const n = name([{ type: 'OU', value: '07', encoding: 'printable' }, { type: 'CN', value: 'Z1', encoding: 'printable' }]);
    expect(decodeName(n).text).toBe('OU=07, CN=Z1');
    const e = thrown(() => decodeName(new Uint8Array([...n, 0x05, 0x00])));
    expect(isSmkiError(e, 'ERR_DER_TRAILING_DATA'), String(e)).toBe(true);
    expect(((e as SmkiError).context as { offset?: number }).offset).toBe(n.length);
  });
});
