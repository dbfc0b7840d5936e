/**
 * Certificate revocation lists (RFC 5280 §5): issue them with a CA's {@link Signer}, and parse
 * them once into an immutable typed view that path validation uses without parsing again.
 *
 * SMKI's CRL and ARL formats and intervals are not public (docs/domain.md §2), so the toolkit emits
 * plain RFC 5280 v2 CRLs: issuer name copied byte for byte from the issuer certificate's
 * subject, ecdsa-with-SHA256 without parameters, cRLNumber, authorityKeyIdentifier
 * `[0] keyIdentifier` (the issuer's subjectKeyIdentifier), thisUpdate/nextUpdate as UTCTime
 * through 2049 and GeneralizedTime from 2050, and optionally an issuingDistributionPoint that
 * limits the scope to end-entity certificates (an organisation CRL) or to CA certificates (an
 * authority revocation list, ARL).
 *
 * Encoding: the envelope (CertificateList, TBSCertList, revoked entries) is written by hand with
 * the builders the certificate issuer uses, so that the issuer Name is spliced in verbatim
 * (RFC 5280 §5.1.2.3 and §7.1 compare names by their DER; a re-encoding through a schema library
 * could change string tags); extension values (authorityKeyIdentifier, CRLReason,
 * IssuingDistributionPoint) are encoded with `@peculiar/asn1-x509`. Parsing is a bounded DER walk
 * (no schema library), so every failure carries a byte offset.
 * @module
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, CRLReason, CRLReasons, IssuingDistributionPoint, KeyIdentifier } from '@peculiar/asn1-x509';
import {
  ByteReader,
  checkDerStructure,
  equalBytes,
  fromHex,
  isSmkiError,
  p1363ToDer,
  readTlv,
  SmkiError,
  tlvReader,
  toHex,
  verifyDer,
  type Signer,
  type Tlv,
} from '@smki/core';
import { OID } from './environment.js';
import { encodeAlgorithm, encodeExtension, encodeTime, ECDSA_WITH_SHA256, rfc5280Time, type ExtensionTemplate } from './internal/build.js';
import { decodeTime, readAlgorithmId, readBitString, readBoolean, readIntegerBytes, readOid } from './internal/der-read.js';
import { keyIdMethod2 } from './internal/keyid.js';
import { derSequence, derTlv, readName } from './internal/name.js';
import { derToPem, pemToDer } from './internal/pem.js';
import { isParsedCertificate, toCertificate } from './parse.js';
import type { CertificateInput, DistinguishedName, RawExtension, SmkiCertificate } from './types.js';

/** Largest CRL accepted by {@link parseCrl}, in bytes (1 MiB, roughly 30 000 entries). */
export const MAX_CRL_BYTES = 1024 * 1024;

/** Default lifetime of an issued CRL when `nextUpdate` is not given, in hours. */
export const DEFAULT_CRL_VALIDITY_HOURS = 24;

/** Object identifiers of the CRL and CRL entry extensions (RFC 5280 §5.2, §5.3). */
const CRL_OID = {
  cRLNumber: OID.cRLNumber,
  reasonCode: OID.reasonCode,
  issuingDistributionPoint: OID.issuingDistributionPoint,
  authorityKeyIdentifier: OID.authorityKeyIdentifier,
  issuerAltName: '2.5.29.18',
  deltaCRLIndicator: '2.5.29.27',
  invalidityDate: '2.5.29.24',
  certificateIssuer: '2.5.29.29',
  freshestCRL: '2.5.29.46',
} as const;

/**
 * CRLReason (RFC 5280 §5.3.1), by name. Value 7 is unused; `removeFromCRL` only appears in delta
 * CRLs, which the toolkit neither issues nor uses.
 */
export type CrlReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'removeFromCRL'
  | 'privilegeWithdrawn'
  | 'aACompromise';

const REASON_NAMES: readonly (CrlReason | undefined)[] = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  undefined,
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
];

/**
 * Which certificates a CRL speaks for, from its issuingDistributionPoint (RFC 5280 §5.2.5):
 * - `all`: no issuingDistributionPoint, a complete CRL for every certificate of the issuer;
 * - `userCertificates`: onlyContainsUserCerts (an organisation CRL);
 * - `caCertificates`: onlyContainsCACerts (an authority revocation list);
 * - `unsupported`: partitioned or indirect (a distributionPoint name, onlySomeReasons,
 *   indirectCRL, onlyContainsAttributeCerts) or a delta CRL. Path validation never relies on
 *   such a CRL to say a certificate is not revoked.
 */
export type CrlScope = 'all' | 'userCertificates' | 'caCertificates' | 'unsupported';

/** One revoked certificate in a CRL. */
export interface CrlEntry {
  /** Serial number as upper-case hex of its DER content octets (as {@link SmkiCertificate.serialNumber}). */
  readonly serialNumber: string;
  /** When the CA processed the revocation. */
  readonly revocationDate: Date;
  /** The reasonCode entry extension, if present. */
  readonly reason?: CrlReason;
  /** The invalidityDate entry extension, if present. */
  readonly invalidityDate?: Date;
  /** All entry extensions, in order. */
  readonly extensions: readonly RawExtension[];
}

/** A critical extension the toolkit does not process (the CRL must not be relied on). */
export interface UnknownCriticalCrlExtension {
  /** The extension OID. */
  readonly oid: string;
  /** For a CRL entry extension: the entry's serial number. */
  readonly serialNumber?: string;
}

/** Lower-level facts read from the CRL DER. */
export interface CrlDetails {
  /** The version INTEGER as encoded (1 = v2), or 0 when the field is absent (v1). */
  readonly version: number;
  /** tbsCertList.signature algorithm OID. */
  readonly tbsSignatureAlgorithm: string;
  /** Whether the outer signatureAlgorithm parameters are absent, an explicit NULL, or other. */
  readonly signatureAlgorithmParams: 'absent' | 'null' | 'other';
  /** Whether the inner and outer algorithm identifiers are equal (OID and parameters). */
  readonly signatureAlgorithmsMatch: boolean;
  /** ASN.1 tag of thisUpdate (23 UTCTime, 24 GeneralizedTime). */
  readonly thisUpdateTag: number;
  /** ASN.1 tag of nextUpdate, when present. */
  readonly nextUpdateTag?: number;
  /** Why the scope is `unsupported`, when it is. */
  readonly scopeDetail?: string;
}

/**
 * A CRL parsed once: what path validation needs, immutable. `revoked` looks up a serial number
 * (upper-case hex, as in {@link SmkiCertificate.serialNumber}) in O(1).
 */
export interface SmkiCrl {
  /** The whole CertificateList DER. */
  readonly der: Uint8Array;
  /** The tbsCertList DER exactly as signed. */
  readonly tbsDer: Uint8Array;
  /** The CRL issuer name (compare with a certificate's issuer by `der`, RFC 5280 §7.1). */
  readonly issuer: DistinguishedName;
  /** thisUpdate. */
  readonly thisUpdate: Date;
  /** nextUpdate, if present (RFC 5280 §5.1.2.5 requires it of conforming issuers). */
  readonly nextUpdate?: Date;
  /**
   * The cRLNumber extension. Absent only in a CRL that does not conform (RFC 5280 §5.2.3:
   * conforming issuers include it); path validation never relies on such a CRL to say a
   * certificate is not revoked (`ERR_CRL_NUMBER_MISSING`), nor on one whose cRLNumber is marked
   * critical (`ERR_CRL_NUMBER_CRITICAL`; see `extensions` for the flag).
   */
  readonly crlNumber?: bigint;
  /** The authorityKeyIdentifier keyIdentifier, as upper-case hex. */
  readonly authorityKeyId?: string;
  /** Revoked certificates by serial number (upper-case hex of the DER content octets). */
  readonly revoked: ReadonlyMap<string, CrlEntry>;
  /** The scope from the issuingDistributionPoint extension. */
  readonly scope: CrlScope;
  /** CRL extensions, in order. */
  readonly extensions: readonly RawExtension[];
  /** Critical CRL or entry extensions the toolkit does not process; non-empty makes the CRL unusable. */
  readonly unknownCriticalExtensions: readonly UnknownCriticalCrlExtension[];
  /** The outer signatureAlgorithm OID. */
  readonly signatureAlgorithm: string;
  /** The signature BIT STRING content (a DER ECDSA-Sig-Value for SMKI). */
  readonly signature: Uint8Array;
  /** Upper-case hex SHA-256 of `der`. */
  readonly fingerprint: string;
  /** Encoding facts. */
  readonly details: CrlDetails;
}

/** A CRL as accepted by toolkit functions: PEM (`X509 CRL`), DER, or a view from {@link parseCrl}. */
export type CrlInput = string | Uint8Array | SmkiCrl;

/** One certificate to list in a CRL. */
export interface RevokedCertificateInput {
  /** The certificate, or its serial number as hex (either case; normalised to DER content octets). */
  readonly serialNumber: string | SmkiCertificate;
  /** When the revocation was processed. Whole seconds are kept (fractions are dropped). */
  readonly revocationDate: Date;
  /** The reasonCode. `unspecified` is written as no reasonCode (RFC 5280 §5.3.1 SHOULD). */
  readonly reason?: Exclude<CrlReason, 'removeFromCRL'>;
}

/** What {@link issueCrl} needs. */
export interface IssueCrlOptions {
  /** The issuing CA: its certificate and a signer over its private key. */
  readonly issuer: {
    /** The CA certificate (PEM, DER or parsed); must be a CA with cRLSign. */
    readonly certificate: CertificateInput;
    /** Signs with the private key of `certificate` (in memory or an HSM). */
    readonly signer: Signer;
  };
  /** The certificates to list (default none). */
  readonly revoked?: readonly RevokedCertificateInput[];
  /** thisUpdate (default `now()`), truncated to whole seconds. */
  readonly thisUpdate?: Date;
  /** nextUpdate (default thisUpdate + `validityHours`), truncated to whole seconds. */
  readonly nextUpdate?: Date;
  /** Lifetime when `nextUpdate` is not given, in hours (default {@link DEFAULT_CRL_VALIDITY_HOURS}). */
  readonly validityHours?: number;
  /** The cRLNumber: monotonically increasing per issuer, 0 ≤ n < 2^159 (20 octets). */
  readonly crlNumber: bigint;
  /**
   * Mark the scope with a critical issuingDistributionPoint: `crl` (onlyContainsUserCerts, the
   * organisation CRL) or `arl` (onlyContainsCACerts, the authority revocation list). Omitted: no
   * issuingDistributionPoint, a complete CRL for every certificate of the issuer.
   */
  readonly kind?: 'crl' | 'arl';
  /** Clock for the default thisUpdate (default `() => new Date()`). */
  readonly now?: () => Date;
}

const parsedCrls = new WeakSet<object>();

// ---------------------------------------------------------------------------------------------
// A read-only serial index

/** A `ReadonlyMap` with no way to change it (a frozen `Map` can still be `set`). */
class SerialIndex implements ReadonlyMap<string, CrlEntry> {
  readonly #map: Map<string, CrlEntry>;

  constructor(map: Map<string, CrlEntry>) {
    this.#map = map;
    Object.freeze(this);
  }

  get size(): number {
    return this.#map.size;
  }

  get(serial: string): CrlEntry | undefined {
    if (typeof serial !== 'string') return undefined;
    return this.#map.get(serial) ?? this.#map.get(serial.toUpperCase());
  }

  has(serial: string): boolean {
    return this.get(serial) !== undefined;
  }

  forEach(fn: (value: CrlEntry, key: string, map: ReadonlyMap<string, CrlEntry>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.#map) fn.call(thisArg, v, k, this);
  }

  entries(): MapIterator<[string, CrlEntry]> {
    return this.#map.entries();
  }

  keys(): MapIterator<string> {
    return this.#map.keys();
  }

  values(): MapIterator<CrlEntry> {
    return this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[string, CrlEntry]> {
    return this.#map.entries();
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

function malformed(message: string, offset?: number): SmkiError<'ERR_CRL_MALFORMED'> {
  return new SmkiError('ERR_CRL_MALFORMED', message, offset === undefined ? {} : { offset });
}

function readExtensions(bytes: Uint8Array, list: Tlv): RawExtension[] {
  const out: RawExtension[] = [];
  const seen = new Set<string>();
  const lr = tlvReader(bytes, list);
  if (lr.done) throw malformed('empty Extensions (SIZE 1..MAX)', list.start);
  while (!lr.done) {
    const e = readTlv(lr, 0x30);
    const xr = tlvReader(bytes, e);
    const oid = readOid(xr);
    let critical = false;
    if (!xr.done && xr.peekU8() === 0x01) {
      critical = readBoolean(xr);
      if (!critical) throw malformed('critical FALSE must be omitted in DER', e.start);
    }
    const value = readTlv(xr, 0x04);
    if (!xr.done) throw malformed('extra fields in Extension', xr.offset);
    if (seen.has(oid)) throw malformed(`extension ${oid} appears twice`, e.start);
    seen.add(oid);
    out.push(Object.freeze({ oid, critical, value: bytes.subarray(value.valueStart, value.end) }));
  }
  return out;
}

/** An extension value as its own reader, with offsets relative to the whole CRL. */
function valueReader(der: Uint8Array, ext: RawExtension): ByteReader {
  // Stryker disable next-line ArithmeticOperator: equivalent; parseCrlDer, the only caller, gets the fresh copy parseCrl makes, whose byteOffset is 0
  const start = ext.value.byteOffset - der.byteOffset;
  return new ByteReader(der, start, start + ext.value.length);
}

function readNonNegativeBigInt(r: ByteReader, maxOctets: number): bigint {
  const { bytes, tlv } = readIntegerBytes(r);
  if ((bytes[0] as number) & 0x80) throw malformed('negative INTEGER', tlv.start);
  const mag = bytes[0] === 0 ? bytes.subarray(1) : bytes;
  if (mag.length > maxOctets) throw malformed(`INTEGER longer than ${maxOctets} octets`, tlv.start);
  return mag.length === 0 ? 0n : BigInt(`0x${toHex(mag)}`);
}

function onlyOne(r: ByteReader, what: string): void {
  if (!r.done) throw malformed(`extra bytes in ${what}`, r.offset);
}

/** RFC 5280 §5.2.1 `[0] keyIdentifier` of an AuthorityKeyIdentifier. */
function decodeAki(der: Uint8Array, ext: RawExtension): string | undefined {
  const r = valueReader(der, ext);
  const seq = readTlv(r, 0x30);
  onlyOne(r, 'authorityKeyIdentifier');
  const sr = tlvReader(der, seq);
  let keyId: string | undefined;
  while (!sr.done) {
    const t = readTlv(sr);
    if (t.tag === 0x80) keyId = toHex(der.subarray(t.valueStart, t.end));
    else if (t.tag !== 0xa1 && t.tag !== 0x82) throw malformed('unexpected field in authorityKeyIdentifier', t.start);
  }
  return keyId;
}

/** RFC 5280 §5.2.5 IssuingDistributionPoint, strictly as DER (DEFAULT FALSE booleans omitted). */
function decodeIdp(der: Uint8Array, ext: RawExtension): { scope: CrlScope; detail?: string } {
  const r = valueReader(der, ext);
  const seq = readTlv(r, 0x30);
  onlyOne(r, 'issuingDistributionPoint');
  const sr = tlvReader(der, seq);
  let last = -1;
  const flags = { user: false, ca: false, attr: false, indirect: false, reasons: false, dp: false };
  while (!sr.done) {
    const t = readTlv(sr);
    const n = t.tag & 0x1f;
    if ((t.tag & 0xc0) !== 0x80 || n > 5 || n <= last) throw malformed('unexpected field in issuingDistributionPoint', t.start);
    last = n;
    if (n === 0) {
      if (t.tag !== 0xa0) throw malformed('distributionPoint must be constructed', t.start);
      flags.dp = true;
    } else if (n === 3) {
      if (t.tag !== 0x83) throw malformed('onlySomeReasons must be a primitive BIT STRING', t.start);
      flags.reasons = true;
    } else {
      if (t.tag !== (0x80 | n) || t.end - t.valueStart !== 1) throw malformed('bad BOOLEAN in issuingDistributionPoint', t.start);
      const v = der[t.valueStart] as number;
      if (v !== 0xff) throw malformed('a DEFAULT FALSE BOOLEAN must be omitted in DER', t.start);
      if (n === 1) flags.user = true;
      else if (n === 2) flags.ca = true;
      else if (n === 4) flags.indirect = true;
      else flags.attr = true;
    }
  }
  if (Number(flags.user) + Number(flags.ca) + Number(flags.attr) > 1) throw malformed('more than one onlyContains… flag set', seq.start);
  const unsupported = [
    flags.dp ? 'distributionPoint' : '',
    flags.reasons ? 'onlySomeReasons' : '',
    flags.indirect ? 'indirectCRL' : '',
    flags.attr ? 'onlyContainsAttributeCerts' : '',
  ].filter((s) => s !== '');
  if (unsupported.length > 0) return { scope: 'unsupported', detail: `issuingDistributionPoint ${unsupported.join(', ')}` };
  if (flags.user) return { scope: 'userCertificates' };
  if (flags.ca) return { scope: 'caCertificates' };
  return { scope: 'all' };
}

function decodeReason(der: Uint8Array, ext: RawExtension): CrlReason {
  const r = valueReader(der, ext);
  const t = readTlv(r, 0x0a);
  onlyOne(r, 'reasonCode');
  const v = der.subarray(t.valueStart, t.end);
  const reason = v.length === 1 ? REASON_NAMES[v[0] as number] : undefined;
  if (reason === undefined) throw malformed('reasonCode is not a CRLReason value', t.start);
  return reason;
}

function decodeInvalidityDate(der: Uint8Array, ext: RawExtension): Date {
  const r = valueReader(der, ext);
  const t = readTlv(r, 0x18);
  onlyOne(r, 'invalidityDate');
  return decodeTime(der, t).date;
}

function readRevoked(der: Uint8Array, list: Tlv, unknownCritical: UnknownCriticalCrlExtension[]): Map<string, CrlEntry> {
  const map = new Map<string, CrlEntry>();
  const lr = tlvReader(der, list);
  while (!lr.done) {
    const e = readTlv(lr, 0x30);
    const er = tlvReader(der, e);
    const serialNumber = toHex(readIntegerBytes(er).bytes);
    const rd = readTlv(er);
    const revocationDate = decodeTime(der, rd).date;
    let extensions: RawExtension[] = [];
    let reason: CrlReason | undefined;
    let invalidityDate: Date | undefined;
    if (!er.done) {
      const x = readTlv(er, 0x30);
      extensions = readExtensions(der, x);
    }
    onlyOne(er, 'revoked entry');
    for (const x of extensions) {
      if (x.oid === CRL_OID.reasonCode) reason = decodeReason(der, x);
      else if (x.oid === CRL_OID.invalidityDate) invalidityDate = decodeInvalidityDate(der, x);
      else if (x.critical) unknownCritical.push(Object.freeze({ oid: x.oid, serialNumber }));
    }
    if (map.has(serialNumber)) throw malformed(`serial ${serialNumber} is listed twice`, e.start);
    map.set(
      serialNumber,
      Object.freeze({
        serialNumber,
        revocationDate,
        ...(reason !== undefined ? { reason } : {}),
        ...(invalidityDate !== undefined ? { invalidityDate } : {}),
        extensions: Object.freeze(extensions),
      }) as CrlEntry,
    );
  }
  return map;
}

/** The CRL in `der` (at most {@link MAX_CRL_BYTES}: {@link parseCrl} checks the size first). */
function parseCrlDer(der: Uint8Array): SmkiCrl {
  const outer = checkDerStructure(der);
  if (outer.tag !== 0x30) throw malformed('CertificateList is not a SEQUENCE', 0);
  const cr = tlvReader(der, outer);
  const tbs = readTlv(cr, 0x30);
  const outerAlg = readAlgorithmId(cr);
  const sig = readBitString(cr);
  onlyOne(cr, 'CertificateList');
  if (sig.unusedBits !== 0) throw malformed('signature BIT STRING has unused bits', sig.tlv.start);

  const r = tlvReader(der, tbs);
  let version = 0;
  if (r.peekU8() === 0x02) {
    const v = readIntegerBytes(r);
    if (v.bytes.length !== 1 || v.bytes[0] !== 1) throw malformed('CRL version must be v2 (1) when present', v.tlv.start);
    version = 1;
  }
  const tbsAlg = readAlgorithmId(r);
  const issuer = readName(r);
  const tu = readTlv(r);
  const thisUpdate = decodeTime(der, tu).date;
  let nextUpdate: Date | undefined;
  let nextUpdateTag: number | undefined;
  if (!r.done && (r.peekU8() === 0x17 || r.peekU8() === 0x18)) {
    const nu = readTlv(r);
    nextUpdate = decodeTime(der, nu).date;
    nextUpdateTag = nu.tag;
  }
  const unknownCritical: UnknownCriticalCrlExtension[] = [];
  let revokedMap = new Map<string, CrlEntry>();
  if (!r.done && r.peekU8() === 0x30) revokedMap = readRevoked(der, readTlv(r, 0x30), unknownCritical);
  let extensions: RawExtension[] = [];
  if (!r.done) {
    const x = readTlv(r, 0xa0);
    const xr = tlvReader(der, x);
    extensions = readExtensions(der, readTlv(xr, 0x30));
    onlyOne(xr, 'crlExtensions');
  }
  onlyOne(r, 'tbsCertList');
  const hasEntryExtensions = [...revokedMap.values()].some((e) => e.extensions.length > 0);
  if (version === 0 && (extensions.length > 0 || hasEntryExtensions)) {
    throw malformed('a CRL with extensions must be v2 (RFC 5280 §5.1.2.1)', tbs.start);
  }

  let crlNumber: bigint | undefined;
  let authorityKeyId: string | undefined;
  let scope: CrlScope = 'all';
  let scopeDetail: string | undefined;
  for (const x of extensions) {
    switch (x.oid) {
      case CRL_OID.cRLNumber: {
        const vr = valueReader(der, x);
        crlNumber = readNonNegativeBigInt(vr, 20);
        onlyOne(vr, 'cRLNumber');
        break;
      }
      case CRL_OID.authorityKeyIdentifier:
        authorityKeyId = decodeAki(der, x);
        break;
      case CRL_OID.issuingDistributionPoint: {
        const idp = decodeIdp(der, x);
        scope = idp.scope;
        scopeDetail = idp.detail;
        break;
      }
      case CRL_OID.deltaCRLIndicator:
        // A delta CRL is not complete: never use it to say "not revoked". It is critical by
        // definition, so it is also listed as an unknown critical extension below.
        scope = 'unsupported';
        scopeDetail = 'delta CRL (deltaCRLIndicator)';
        if (x.critical) unknownCritical.push(Object.freeze({ oid: x.oid }));
        break;
      default:
        if (x.critical) unknownCritical.push(Object.freeze({ oid: x.oid }));
    }
  }

  const details: CrlDetails = {
    version,
    tbsSignatureAlgorithm: tbsAlg.oid,
    signatureAlgorithmParams: outerAlg.params,
    signatureAlgorithmsMatch: tbsAlg.oid === outerAlg.oid && equalBytes(tbsAlg.paramsDer, outerAlg.paramsDer),
    thisUpdateTag: tu.tag,
    ...(nextUpdateTag !== undefined ? { nextUpdateTag } : {}),
    ...(scopeDetail !== undefined ? { scopeDetail } : {}),
  };
  Object.freeze(issuer.attributes);
  for (const a of issuer.attributes) Object.freeze(a);
  const crl: SmkiCrl = {
    der,
    tbsDer: der.subarray(tbs.start, tbs.end),
    issuer: Object.freeze(issuer),
    thisUpdate,
    ...(nextUpdate !== undefined ? { nextUpdate } : {}),
    ...(crlNumber !== undefined ? { crlNumber } : {}),
    ...(authorityKeyId !== undefined ? { authorityKeyId } : {}),
    revoked: new SerialIndex(revokedMap),
    scope,
    extensions: Object.freeze(extensions),
    unknownCriticalExtensions: Object.freeze(unknownCritical),
    signatureAlgorithm: outerAlg.oid,
    signature: sig.data,
    fingerprint: createHash('sha256').update(der).digest('hex').toUpperCase(),
    details: Object.freeze(details),
  };
  Object.freeze(crl);
  parsedCrls.add(crl);
  return crl;
}

/**
 * Parse an X.509 CRL (RFC 5280 §5), PEM (`X509 CRL`) or DER, once, into an immutable typed view.
 * A view made by this function is returned as it is.
 *
 * Bounded: inputs over {@link MAX_CRL_BYTES} are refused, the DER structure is checked first
 * (nesting depth, lengths, nothing trailing), and no read goes past the end; any failure is a
 * `SmkiError` `ERR_CRL_MALFORMED` with the byte offset where one applies (or `ERR_PEM_INVALID`
 * for bad armour), never another exception. Strict where it matters for revocation: v2 whenever
 * extensions are present, no duplicate extension or serial, DER booleans, a valid CRLReason.
 * Critical CRL or entry extensions the toolkit does not process (e.g. certificateIssuer of an
 * indirect CRL, deltaCRLIndicator) are recorded in `unknownCriticalExtensions`, and path
 * validation then refuses to rely on the CRL (`ERR_CRL_UNKNOWN_CRITICAL_EXTENSION`). Likewise a
 * CRL without a cRLNumber, or with one marked critical, parses (the view shows what is there),
 * and path validation refuses to rely on it (`ERR_CRL_NUMBER_MISSING`, `ERR_CRL_NUMBER_CRITICAL`;
 * RFC 5280 §5.2.3): the decision belongs where the CRL is used, so that one non-conforming CRL
 * among many is a finding, not an exception that stops every validation.
 *
 * The signature is not checked here: it needs the issuer's key, which path validation supplies.
 *
 * @throws SmkiError `ERR_CRL_MALFORMED`, `ERR_PEM_INVALID`; `ERR_INVALID_ARGUMENT` for an
 *   object this function did not make
 * @see RFC 5280 §5.1 (fields), §5.2 (CRL extensions), §5.3 (entry extensions); docs/domain.md §2
 * @example
 * ```ts
 * import { createHierarchy, issueCrl, parseCrl } from '@smki/pki';
 * const { organisationCa } = await createHierarchy();
 * const crl = await issueCrl({ issuer: organisationCa, crlNumber: 1n });
 * const again = parseCrl(crl.der);
 * console.log(again.issuer.text, again.crlNumber, again.revoked.size); // 'OU=07, CN=Z1' 1n 0
 * ```
 */
export function parseCrl(input: CrlInput): SmkiCrl {
  if (typeof input === 'object' && input !== null && !(input instanceof Uint8Array)) {
    if (parsedCrls.has(input)) return input;
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'expected PEM, DER or a CRL from parseCrl', { detail: typeof input });
  }
  let der: Uint8Array;
  if (typeof input === 'string') der = pemToDer(input, ['X509 CRL']).der;
  else if (input instanceof Uint8Array) der = input;
  else throw new SmkiError('ERR_CRL_MALFORMED', 'CRL must be PEM text or DER bytes', { detail: typeof input });
  if (der.length > MAX_CRL_BYTES) throw malformed(`CRL over ${MAX_CRL_BYTES} bytes`);
  // Own the bytes: the caller may reuse its buffer.
  const copy = new Uint8Array(der);
  try {
    return parseCrlDer(copy);
  } catch (e) {
    if (isSmkiError(e, 'ERR_CRL_MALFORMED')) throw e;
    const ctx = isSmkiError(e) ? (e.context as { offset?: unknown }) : undefined;
    // Stryker disable next-line ConditionalExpression,OptionalChaining: equivalent; every error parseCrlDer can raise is a SmkiError with a numeric offset (defensive branch)
    const offset = typeof ctx?.offset === 'number' ? ctx.offset : undefined;
    // Stryker disable next-line ConditionalExpression: equivalent, as above
    throw new SmkiError('ERR_CRL_MALFORMED', `not a CRL: ${e instanceof Error ? e.message : 'undecodable'}`, offset !== undefined ? { offset } : {}, {
      cause: e,
    });
  }
}

/** Whether `value` is a CRL view made by {@link parseCrl} (not a look-alike object). */
export function isParsedCrl(value: unknown): value is SmkiCrl {
  return parsedCrls.has(value as object); // a WeakSet holds objects only: false for anything else
}

/**
 * PEM text (`X509 CRL`) of a CRL.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an object {@link parseCrl} did not make
 */
export function crlToPem(crl: SmkiCrl): string {
  if (!isParsedCrl(crl)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'expected a CRL from parseCrl', {});
  return derToPem(crl.der, 'X509 CRL');
}

/**
 * The canonical spelling of a serial number given as hex: upper-case DER INTEGER content octets
 * of the positive integer (leading zero octets removed, one `00` added when the top bit is set).
 */
function normaliseSerialHex(hex: string): string {
  const trimmed = hex.trim();
  const bytes = fromHex(trimmed.length % 2 === 1 ? `0${trimmed}` : trimmed);
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = bytes.subarray(i);
  if (v.length === 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'empty serial number', {});
  if ((v[0] as number) & 0x80) {
    const o = new Uint8Array(v.length + 1);
    o.set(v, 1);
    v = o;
  }
  return toHex(v);
}

// ---------------------------------------------------------------------------------------------
// Issuing

/**
 * The reasons an issued entry may carry. A Map, not an object: the key is the caller's string,
 * and `constructor`, `toString` or `__proto__` must not find an inherited property.
 */
const REASON_CODES: ReadonlyMap<string, CRLReasons> = new Map<Exclude<CrlReason, 'removeFromCRL'>, CRLReasons>([
  ['unspecified', CRLReasons.unspecified],
  ['keyCompromise', CRLReasons.keyCompromise],
  ['cACompromise', CRLReasons.cACompromise],
  ['affiliationChanged', CRLReasons.affiliationChanged],
  ['superseded', CRLReasons.superseded],
  ['cessationOfOperation', CRLReasons.cessationOfOperation],
  ['certificateHold', CRLReasons.certificateHold],
  ['privilegeWithdrawn', CRLReasons.privilegeWithdrawn],
  ['aACompromise', CRLReasons.aACompromise],
]);

const MAX_CRL_NUMBER = 1n << 159n;

function invalidRequest(message: string, detail?: string): SmkiError<'ERR_ISSUE_INVALID_REQUEST'> {
  return new SmkiError('ERR_ISSUE_INVALID_REQUEST', message, detail === undefined ? {} : { detail });
}

function wholeSeconds(d: Date, what: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw invalidRequest(`${what} is not a valid Date`);
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function toBytes(b: ArrayBuffer): Uint8Array {
  return new Uint8Array(b);
}

/** DER INTEGER content octets of a non-negative bigint. */
function bigintContent(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return fromHex(hex);
}

/**
 * Issue a v2 CRL (or ARL) signed by a CA, and return it parsed.
 *
 * What is written (RFC 5280 §5; docs/domain.md §2 leaves the SMKI formats open, so these are the
 * RFC's own rules): version v2; ecdsa-with-SHA256 without parameters, inside and outside; the
 * issuer Name copied byte for byte from the issuer certificate's subject; thisUpdate and
 * nextUpdate as UTCTime through 2049 and GeneralizedTime from 2050; one entry per revoked
 * certificate (serial, revocationDate, a reasonCode unless none or `unspecified`); the
 * extensions authorityKeyIdentifier `[0]` = the issuer's subjectKeyIdentifier (method 2 of its key
 * when it has none), cRLNumber (always, and never critical: RFC 5280 §5.2.3), and for `kind`
 * `crl`/`arl` a critical issuingDistributionPoint
 * with onlyContainsUserCerts/onlyContainsCACerts. The empty revokedCertificates list is omitted.
 *
 * Checks before signing: the issuer is a CA with cRLSign; the signer's public key is the
 * issuer certificate's; times are valid and thisUpdate < nextUpdate; the cRLNumber fits 20
 * octets; no serial twice; a certificate given as an entry was issued by this issuer and is in
 * the CRL's scope (an end-entity certificate in a `crl`, a CA certificate in an `arl`). After
 * signing, the signature is verified with the issuer certificate's key, so a faulty signer
 * (an HSM with the wrong key) cannot produce an unusable CRL unnoticed.
 *
 * @throws SmkiError `ERR_ISSUE_INVALID_REQUEST` (bad times, numbers, serials or entries, or a CRL
 *   over {@link MAX_CRL_BYTES}),
 *   `ERR_ISSUE_ISSUER_NOT_CA` (the issuer is not a CA with cRLSign),
 *   `ERR_ISSUE_ISSUER_KEY_MISMATCH` (the signer's key is not the issuer certificate's),
 *   `ERR_SIGNATURE_ENCODING` (the signer did not return 64 bytes), parse errors of PEM/DER input
 * @see RFC 5280 §5.1, §5.2.1 (AKI), §5.2.3 (cRLNumber), §5.2.5 (issuingDistributionPoint), §5.3.1
 *   (reasonCode); docs/domain.md §2
 * @example
 * ```ts
 * import { createHierarchy, issueCrl, issueOrganisationCertificate } from '@smki/pki';
 * import { generateKeyPairSync } from 'node:crypto';
 * const { root, organisationCa } = await createHierarchy();
 * const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const supplier = await issueOrganisationCertificate({
 *   issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey,
 * });
 * const crl = await issueCrl({
 *   issuer: organisationCa,
 *   revoked: [{ serialNumber: supplier, revocationDate: new Date(), reason: 'keyCompromise' }],
 *   crlNumber: 2n,
 *   kind: 'crl',
 * });
 * const arl = await issueCrl({ issuer: root, crlNumber: 1n, kind: 'arl' });
 * console.log(crl.revoked.has(supplier.serialNumber), arl.scope); // true 'caCertificates'
 * ```
 */
export async function issueCrl(options: IssueCrlOptions): Promise<SmkiCrl> {
  if (typeof options !== 'object' || options === null) throw invalidRequest('options are required');
  const { issuer } = options;
  if (typeof issuer !== 'object' || issuer === null || typeof issuer.signer?.sign !== 'function') {
    throw invalidRequest('issuer must be { certificate, signer }');
  }
  const ca = toCertificate(issuer.certificate);
  if (ca.basicConstraints?.ca !== true || !ca.keyUsage.includes('cRLSign')) {
    throw new SmkiError('ERR_ISSUE_ISSUER_NOT_CA', 'the CRL issuer must be a CA certificate with cRLSign', { detail: ca.subject.text });
  }
  if (!(issuer.signer.publicKey instanceof Uint8Array) || !equalBytes(issuer.signer.publicKey, ca.publicKeyBytes) || ca.publicKey === undefined) {
    throw new SmkiError('ERR_ISSUE_ISSUER_KEY_MISMATCH', "the signer's public key is not the issuer certificate's", { detail: ca.subject.text });
  }
  if (typeof options.crlNumber !== 'bigint' || options.crlNumber < 0n || options.crlNumber >= MAX_CRL_NUMBER) {
    throw invalidRequest('crlNumber must be a bigint with 0 <= n < 2^159', String(options.crlNumber));
  }
  if (options.kind !== undefined && options.kind !== 'crl' && options.kind !== 'arl') throw invalidRequest("kind must be 'crl' or 'arl'", String(options.kind));

  const thisUpdate = wholeSeconds(options.thisUpdate ?? (options.now ?? (() => new Date()))(), 'thisUpdate');
  let nextUpdate: Date;
  if (options.nextUpdate !== undefined) {
    nextUpdate = wholeSeconds(options.nextUpdate, 'nextUpdate');
  } else {
    const hours = options.validityHours ?? DEFAULT_CRL_VALIDITY_HOURS;
    // Number.isFinite is false for anything but a finite number (it does not coerce).
    if (!Number.isFinite(hours) || hours <= 0) throw invalidRequest('validityHours must be a positive number', String(hours));
    nextUpdate = wholeSeconds(new Date(thisUpdate.getTime() + hours * 3_600_000), 'nextUpdate');
  }
  if (nextUpdate.getTime() <= thisUpdate.getTime()) throw invalidRequest('nextUpdate must be after thisUpdate');

  const entries: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const [i, item] of (options.revoked ?? []).entries()) {
    if (typeof item !== 'object' || item === null) throw invalidRequest(`revoked[${i}] must be an object`);
    // Each field is read once: a getter must not pass a check with one value and be written with another.
    const { serialNumber, revocationDate: when, reason } = item;
    let serialHex: string;
    if (typeof serialNumber === 'string') {
      try {
        serialHex = normaliseSerialHex(serialNumber);
      } catch (cause) {
        throw new SmkiError('ERR_ISSUE_INVALID_REQUEST', `revoked[${i}].serialNumber is not hex`, {}, { cause });
      }
    } else {
      if (!isParsedCertificate(serialNumber)) throw invalidRequest(`revoked[${i}].serialNumber must be hex or a parsed certificate`);
      const cert = serialNumber;
      if (!equalBytes(cert.issuer.der, ca.subject.der)) throw invalidRequest(`revoked[${i}] was not issued by this CRL's issuer`, cert.issuer.text);
      const isCa = cert.basicConstraints?.ca === true;
      if (options.kind === 'crl' && isCa) throw invalidRequest(`revoked[${i}] is a CA certificate: list it in an ARL`);
      if (options.kind === 'arl' && !isCa) throw invalidRequest(`revoked[${i}] is not a CA certificate: list it in a CRL`);
      serialHex = cert.serialNumber;
    }
    if (seen.has(serialHex)) throw invalidRequest(`serial ${serialHex} listed twice`);
    seen.add(serialHex);
    const revocationDate = wholeSeconds(when, `revoked[${i}].revocationDate`);
    const entryExtensions: ExtensionTemplate[] = [];
    if (reason !== undefined) {
      // Stryker disable next-line ConditionalExpression: equivalent; REASON_CODES has string keys only, so get of a non-string is undefined as well
      const code = typeof reason === 'string' ? REASON_CODES.get(reason) : undefined;
      if (code === undefined) throw invalidRequest(`revoked[${i}].reason is not a CRLReason this issuer writes`, String(reason).slice(0, 40));
      if (reason !== 'unspecified') {
        entryExtensions.push({ oid: CRL_OID.reasonCode, critical: false, value: toBytes(AsnConvert.serialize(new CRLReason(code))) });
      }
    }
    entries.push(
      derSequence(
        derTlv(0x02, fromHex(serialHex)),
        encodeTime(rfc5280Time(revocationDate)),
        ...(entryExtensions.length > 0 ? [derSequence(...entryExtensions.map(encodeExtension))] : []),
      ),
    );
  }

  const keyId = ca.subjectKeyId !== undefined ? fromHex(ca.subjectKeyId) : keyIdMethod2(ca.publicKeyBytes);
  const crlExtensions: ExtensionTemplate[] = [
    { oid: CRL_OID.authorityKeyIdentifier, critical: false, value: toBytes(AsnConvert.serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) }))) },
    { oid: CRL_OID.cRLNumber, critical: false, value: derTlv(0x02, bigintContent(options.crlNumber)) },
  ];
  if (options.kind !== undefined) {
    const idp = new IssuingDistributionPoint(options.kind === 'arl' ? { onlyContainsCACerts: true } : { onlyContainsUserCerts: true });
    crlExtensions.push({ oid: CRL_OID.issuingDistributionPoint, critical: true, value: toBytes(AsnConvert.serialize(idp)) });
  }

  const alg = encodeAlgorithm(ECDSA_WITH_SHA256);
  const tbs = derSequence(
    derTlv(0x02, Uint8Array.of(1)),
    alg,
    new Uint8Array(ca.subject.der),
    encodeTime(rfc5280Time(thisUpdate)),
    encodeTime(rfc5280Time(nextUpdate)),
    ...(entries.length > 0 ? [derSequence(...entries)] : []),
    derTlv(0xa0, derSequence(...crlExtensions.map(encodeExtension))),
  );
  // Leave room for the signature (at most 80 bytes with its envelope): parseCrl must accept the result.
  if (tbs.length + 128 > MAX_CRL_BYTES) throw invalidRequest(`the CRL would exceed ${MAX_CRL_BYTES} bytes`, `${entries.length} entries`);
  const signature = p1363ToDer(await issuer.signer.sign(tbs));
  if (!verifyDer(ca.publicKey, tbs, signature)) {
    throw new SmkiError('ERR_ISSUE_ISSUER_KEY_MISMATCH', "the signer's signature does not verify with the issuer certificate's key", {
      detail: ca.subject.text,
    });
  }
  return parseCrl(derSequence(tbs, alg, derTlv(0x03, Uint8Array.of(0), signature)));
}
