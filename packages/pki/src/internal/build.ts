/**
 * The low-level certificate builder. A {@link CertificateTemplate} states every field of the
 * certificate explicitly (version, serial octets, both algorithm identifiers and their
 * parameters, names with per-attribute string encodings, time encodings, the key, an ordered
 * extension list), so that the CA API and the test-vector generator share one encoder and a
 * vector can break exactly one rule at a time. Nothing here applies the SMKI profile: that is
 * the job of `issue.ts` (which builds compliant templates) and of lint (which judges them).
 *
 * The outer envelope (Certificate, TBSCertificate, Validity, SubjectPublicKeyInfo) is written by
 * hand so that raw parts (an issuer Name copied from the issuer certificate, an SPKI override,
 * serial octets) are spliced in verbatim; standard extension values are encoded with
 * `@peculiar/asn1-x509`. Output is DER: definite minimal lengths, `critical` omitted when FALSE
 * (X.690 §11.5: a DEFAULT value is never encoded), named bit strings of minimal length.
 * @module
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  CertificatePolicies,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  OtherName,
  PolicyInformation,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { checkDerStructure, KEY_USAGE_NAMES, p1363ToDer, SmkiError, type KeyUsageName, type Signer } from '@smki/core';
import { OID } from '../environment.js';
import { derOid, derSequence, derSmallInteger, derTlv, encodeName, isOid, type NameTemplate } from './name.js';

export type { NameTemplate, NameAttributeTemplate, AttributeValueTemplate } from './name.js';

/** An AlgorithmIdentifier: its OID and whether the parameters are absent or an explicit NULL. */
export interface AlgorithmTemplate {
  /** Algorithm OID. */
  readonly oid: string;
  /** `absent` (what RFC 5758 requires for ECDSA, and what the toolkit emits) or `null`. */
  readonly params: 'absent' | 'null';
}

/** ecdsa-with-SHA256 with absent parameters (RFC 5758 §3.2; docs/domain.md §2). */
export const ECDSA_WITH_SHA256: AlgorithmTemplate = Object.freeze({ oid: OID.ecdsaWithSha256, params: 'absent' });

/** A time and its ASN.1 encoding. */
export interface TimeTemplate {
  /** The instant; must be a whole second. */
  readonly date: Date;
  /** `utc` (UTCTime `YYMMDDHHMMSSZ`, years 1950–2049 only) or `generalized` (`YYYYMMDDHHMMSSZ`). */
  readonly encoding: 'utc' | 'generalized';
}

/** One extension, in the order it is to appear. */
export interface ExtensionTemplate {
  /** extnID. */
  readonly oid: string;
  /** The critical flag (encoded only when TRUE). */
  readonly critical: boolean;
  /** extnValue: the DER of the extension value. */
  readonly value: Uint8Array;
  /**
   * Encode `critical` FALSE explicitly. This is not DER (X.690 §11.5); it exists only so a
   * negative test vector can be made. Never set by the toolkit's CA functions.
   */
  readonly encodeCriticalFalse?: boolean;
}

/**
 * The subject public key: a raw point placed in an id-ecPublicKey/prime256v1 SPKI (written
 * as given, not checked, so a vector can carry a bad point), or a whole SPKI DER used verbatim.
 */
export type PublicKeyTemplate = { readonly point: Uint8Array } | { readonly spki: Uint8Array };

/** Every field of a certificate, stated explicitly. */
export interface CertificateTemplate {
  /** X.509 version number as encoded (default 2 = v3; 0 omits the field, its DEFAULT). */
  readonly version?: number;
  /** The serial number's INTEGER content octets, used verbatim (not checked or normalised). */
  readonly serialNumber: Uint8Array;
  /** tbsCertificate.signature. */
  readonly tbsSignatureAlgorithm: AlgorithmTemplate;
  /** Certificate.signatureAlgorithm (the outer one). */
  readonly signatureAlgorithm: AlgorithmTemplate;
  /** Issuer name (normally the issuer certificate's subject DER, verbatim). */
  readonly issuer: NameTemplate;
  /** notBefore. */
  readonly notBefore: TimeTemplate;
  /** notAfter. */
  readonly notAfter: TimeTemplate;
  /** Subject name (an empty attribute list gives the empty SEQUENCE of a device certificate). */
  readonly subject: NameTemplate;
  /** Subject public key. */
  readonly subjectPublicKey: PublicKeyTemplate;
  /** Extensions in order; an empty list omits the `[3]` field. */
  readonly extensions: readonly ExtensionTemplate[];
}

/** SPKI DER prefix for an id-ecPublicKey prime256v1 key, up to the BIT STRING's unused-bits octet. */
const P256_SPKI_ALGORITHM = derSequence(derOid(OID.ecPublicKey), derOid(OID.p256));

function invalid(message: string, detail?: string): SmkiError {
  return new SmkiError('ERR_INVALID_ARGUMENT', message, detail === undefined ? {} : { detail });
}

function toBytes(b: ArrayBuffer): Uint8Array {
  return new Uint8Array(b);
}

function asArrayBuffer(v: Uint8Array): ArrayBuffer {
  return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer;
}

/** The DER of an AlgorithmIdentifier. */
export function encodeAlgorithm(alg: AlgorithmTemplate): Uint8Array {
  if (alg.params !== 'absent' && alg.params !== 'null') throw invalid('algorithm params must be absent or null', String(alg.params));
  return alg.params === 'null' ? derSequence(derOid(alg.oid), Uint8Array.of(0x05, 0x00)) : derSequence(derOid(alg.oid));
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/**
 * The DER of a Time (RFC 5280 §4.1.2.5: Zulu, seconds present, no fractions).
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an invalid date, fractions of a second, or a year
 *   the chosen encoding cannot hold
 */
export function encodeTime(t: TimeTemplate): Uint8Array {
  const d = t.date;
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw invalid('not a valid Date');
  if (d.getUTCMilliseconds() !== 0) throw invalid('certificate times are whole seconds', d.toISOString());
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}Z`;
  if (t.encoding === 'utc') {
    if (y < 1950 || y > 2049) throw invalid('UTCTime holds only the years 1950 to 2049', String(y));
    return derTlv(0x17, new Uint8Array(Buffer.from(`${pad(y % 100, 2)}${rest}`, 'latin1')));
  }
  if (t.encoding === 'generalized') {
    if (y < 0 || y > 9999) throw invalid('GeneralizedTime holds only the years 0000 to 9999', String(y));
    return derTlv(0x18, new Uint8Array(Buffer.from(`${pad(y, 4)}${rest}`, 'latin1')));
  }
  throw invalid('time encoding must be utc or generalized', String(t.encoding));
}

/**
 * The time encoding RFC 5280 §4.1.2.5 requires for `date`: UTCTime through 2049, GeneralizedTime
 * from 2050 (so 9999-12-31T23:59:59Z becomes `99991231235959Z`).
 */
export function rfc5280Time(date: Date): TimeTemplate {
  return { date, encoding: date.getUTCFullYear() < 2050 ? 'utc' : 'generalized' };
}

/** The DER of a SubjectPublicKeyInfo from a template. */
export function encodePublicKey(key: PublicKeyTemplate): Uint8Array {
  if ('spki' in key) {
    const top = checkDerStructure(key.spki);
    if (top.tag !== 0x30) throw invalid('an SPKI is a SEQUENCE');
    return new Uint8Array(key.spki);
  }
  if (!(key.point instanceof Uint8Array)) throw invalid('public key point must be bytes');
  return derSequence(P256_SPKI_ALGORITHM, derTlv(0x03, Uint8Array.of(0), key.point));
}

/** The DER of one Extension. */
export function encodeExtension(ext: ExtensionTemplate): Uint8Array {
  if (!(ext.value instanceof Uint8Array)) throw invalid('extension value must be bytes', ext.oid);
  const critical = ext.critical ? [Uint8Array.of(0x01, 0x01, 0xff)] : ext.encodeCriticalFalse ? [Uint8Array.of(0x01, 0x01, 0x00)] : [];
  return derSequence(derOid(ext.oid), ...critical, derTlv(0x04, ext.value));
}

/**
 * The DER of a tbsCertificate from a template.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (a field cannot be encoded), `ERR_DER_INVALID` (a raw
 *   part is not one DER object)
 * @see RFC 5280 §4.1
 */
export function encodeTbsCertificate(t: CertificateTemplate): Uint8Array {
  const version = t.version ?? 2;
  if (!(t.serialNumber instanceof Uint8Array)) throw invalid('serialNumber must be bytes');
  const parts: Uint8Array[] = [];
  if (version !== 0) parts.push(derTlv(0xa0, derSmallInteger(version)));
  parts.push(derTlv(0x02, t.serialNumber));
  parts.push(encodeAlgorithm(t.tbsSignatureAlgorithm));
  parts.push(encodeName(t.issuer));
  parts.push(derSequence(encodeTime(t.notBefore), encodeTime(t.notAfter)));
  parts.push(encodeName(t.subject));
  parts.push(encodePublicKey(t.subjectPublicKey));
  if (t.extensions.length > 0) parts.push(derTlv(0xa3, derSequence(...t.extensions.map(encodeExtension))));
  return derSequence(...parts);
}

/**
 * Build and sign a certificate exactly as the template says. The signer returns 64-byte `r ‖ s`;
 * it is converted to a DER ECDSA-Sig-Value inside the signature BIT STRING (unused bits 0).
 * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_DER_INVALID`, `ERR_SIGNATURE_ENCODING` (the
 *   signer did not return 64 bytes)
 * @see RFC 5280 §4.1.1
 */
export async function buildCertificate(template: CertificateTemplate, signer: Signer): Promise<Uint8Array> {
  const tbs = encodeTbsCertificate(template);
  const signature = p1363ToDer(await signer.sign(tbs));
  return derSequence(tbs, encodeAlgorithm(template.signatureAlgorithm), derTlv(0x03, Uint8Array.of(0), signature));
}

// ---------------------------------------------------------------------------------------------
// Standard extension values (the DER that goes into extnValue)

/**
 * keyUsage (RFC 5280 §4.2.1.3) from RFC 5280 names: a named BIT STRING of minimal length
 * (trailing zero bits dropped, X.690 §11.2.2).
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an unknown name
 */
export function keyUsageValue(names: readonly KeyUsageName[]): Uint8Array {
  let bits = 0;
  for (const n of names) {
    const i = KEY_USAGE_NAMES.indexOf(n);
    if (i < 0) throw invalid('unknown key usage', String(n));
    bits |= 1 << i;
  }
  return toBytes(AsnConvert.serialize(new KeyUsage(bits)));
}

/** basicConstraints (RFC 5280 §4.2.1.9): cA (omitted when FALSE) and an optional pathLenConstraint. */
export function basicConstraintsValue(ca: boolean, pathLength?: number): Uint8Array {
  if (pathLength !== undefined && (!Number.isSafeInteger(pathLength) || pathLength < 0)) throw invalid('pathLength must be a non-negative integer');
  const bc = new BasicConstraints({ cA: ca });
  if (pathLength !== undefined) bc.pathLenConstraint = pathLength;
  return toBytes(AsnConvert.serialize(bc));
}

/** certificatePolicies (RFC 5280 §4.2.1.4): the policy OIDs in order, no qualifiers. */
export function certificatePoliciesValue(oids: readonly string[]): Uint8Array {
  for (const o of oids) if (!isOid(o)) throw invalid('not a policy OID', String(o));
  return toBytes(AsnConvert.serialize(new CertificatePolicies(oids.map((policyIdentifier) => new PolicyInformation({ policyIdentifier })))));
}

/** subjectKeyIdentifier (RFC 5280 §4.2.1.2): an OCTET STRING holding the key identifier. */
export function subjectKeyIdentifierValue(keyId: Uint8Array): Uint8Array {
  return toBytes(AsnConvert.serialize(new SubjectKeyIdentifier(keyId)));
}

/** authorityKeyIdentifier (RFC 5280 §4.2.1.1) with `[0] keyIdentifier` only (docs/domain.md §2). */
export function authorityKeyIdentifierValue(keyId: Uint8Array): Uint8Array {
  return toBytes(AsnConvert.serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) })));
}

/**
 * The DER of an RFC 4108 §5 HardwareModuleName:
 * `SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }`.
 */
export function hardwareModuleNameDer(hwType: string, hwSerialNum: Uint8Array): Uint8Array {
  return derSequence(derOid(hwType), derTlv(0x04, hwSerialNum));
}

/**
 * subjectAltName (RFC 5280 §4.2.1.6) holding exactly one otherName id-on-hardwareModuleName
 * (1.3.6.1.5.5.7.8.4, RFC 4108) with the given hwType and hwSerialNum (docs/domain.md §2: the device's
 * 8-octet EUI-64).
 */
export function hardwareModuleNameSanValue(hwType: string, hwSerialNum: Uint8Array): Uint8Array {
  const otherName = new OtherName({ typeId: OID.hardwareModuleName, value: asArrayBuffer(hardwareModuleNameDer(hwType, hwSerialNum)) });
  return toBytes(AsnConvert.serialize(new SubjectAlternativeName([new GeneralName({ otherName })])));
}

/** An extension template from its parts. */
export function extension(oid: string, critical: boolean, value: Uint8Array): ExtensionTemplate {
  return { oid, critical, value };
}
