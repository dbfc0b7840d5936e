import { createHash, type KeyObject } from 'node:crypto';
import {
  checkDerStructure,
  eui64FromBytes,
  isSmkiError,
  parseRoleLenient,
  publicKeyFromRaw,
  readTlv,
  SmkiError,
  tlvReader,
  toHex,
  type Eui64,
  type KeyUsageName,
  type RemotePartyRoleCode,
} from '@smki/core';
import { OID } from './environment.js';
import { decodeTime, readAlgorithmId, readBitString, readBoolean, readIntegerBytes, readOid, readSmallInteger } from './internal/der-read.js';
import { readName } from './internal/name.js';
import { decodeSubjectAltName } from './internal/san.js';
import {
  decodeAuthorityKeyIdentifier,
  decodeBasicConstraints,
  decodeCertificatePolicies,
  decodeKeyUsage,
  decodeSubjectKeyIdentifier,
} from './internal/extensions.js';
import { derToPem, pemBlocks, pemToDer } from './internal/pem.js';
import type {
  BasicConstraints,
  CertificateDetails,
  CertificateInput,
  CertificateKind,
  DistinguishedName,
  HardwareModuleName,
  RawExtension,
  SmkiCertificate,
} from './types.js';

/** Largest certificate accepted, in bytes (SMKI certificates are under 1 KiB). */
export const MAX_CERTIFICATE_BYTES = 32 * 1024;

const parsedCertificates = new WeakSet<object>();

interface DecodedExtensions {
  keyUsage: KeyUsageName[];
  basicConstraints?: BasicConstraints;
  policies: string[];
  subjectKeyId?: string;
  authorityKeyId?: string;
  akiFields?: { keyIdentifier: boolean; issuer: boolean; serial: boolean };
  hardwareModuleName?: HardwareModuleName;
  san?: { names: number; hardwareModuleNames: number };
  errors: { oid: string; detail: string }[];
}


function decodeExtensions(extensions: readonly RawExtension[]): DecodedExtensions {
  const out: DecodedExtensions = { keyUsage: [], policies: [], errors: [] };
  const seen = new Set<string>();
  for (const ext of extensions) {
    if (seen.has(ext.oid)) {
      out.errors.push({ oid: ext.oid, detail: 'duplicate extension' });
      continue;
    }
    seen.add(ext.oid);
    try {
      switch (ext.oid) {
        case OID.keyUsage:
          out.keyUsage = decodeKeyUsage(ext.value);
          break;
        case OID.basicConstraints:
          out.basicConstraints = decodeBasicConstraints(ext.value);
          break;
        case OID.certificatePolicies:
          out.policies = decodeCertificatePolicies(ext.value);
          break;
        case OID.subjectKeyIdentifier:
          out.subjectKeyId = decodeSubjectKeyIdentifier(ext.value);
          break;
        case OID.authorityKeyIdentifier: {
          const aki = decodeAuthorityKeyIdentifier(ext.value);
          // Stryker disable next-line ConditionalExpression: equivalent; an undefined authorityKeyId is left out of the view either way (it is spread in only when defined)
          if (aki.keyId !== undefined) out.authorityKeyId = aki.keyId;
          out.akiFields = aki.fields;
          break;
        }
        case OID.subjectAltName: {
          const san = decodeSubjectAltName(ext.value);
          if (san.hardwareModuleName) out.hardwareModuleName = san.hardwareModuleName;
          out.san = san.summary;
          break;
        }
      }
    } catch (e) {
      // Stryker disable next-line MethodExpression,StringLiteral: equivalent; the decoders throw only Errors, with messages far under 200 characters (the cut and the fallback only bound what an unexpected error could put here)
      out.errors.push({ oid: ext.oid, detail: e instanceof Error ? e.message.slice(0, 200) : 'undecodable' });
    }
  }
  return out;
}

function classify(
  subject: DistinguishedName,
  issuer: DistinguishedName,
  bc: BasicConstraints | undefined,
  keyUsage: readonly KeyUsageName[],
  hmn: HardwareModuleName | undefined,
): CertificateKind {
  if (bc?.ca) {
    return Buffer.compare(subject.der, issuer.der) === 0 ? 'root' : 'issuingCa';
  }
  if (keyUsage.includes('keyCertSign')) return 'unknown';
  if (hmn !== undefined || subject.attributes.length === 0) return 'device';
  if (subject.attributes.some((a) => a.oid === OID.x500UniqueIdentifier || a.oid === OID.organizationalUnitName)) {
    return 'organisation';
  }
  return 'unknown';
}

function parseDer(der: Uint8Array): SmkiCertificate {
  if (der.length > MAX_CERTIFICATE_BYTES) {
    throw new SmkiError('ERR_CERT_MALFORMED', `certificate over ${MAX_CERTIFICATE_BYTES} bytes`, { detail: `${der.length} bytes` });
  }
  // Structure first: bounded depth, no trailing bytes, every length consistent.
  const outer = checkDerStructure(der);
  if (outer.tag !== 0x30) throw new SmkiError('ERR_DER_INVALID', 'certificate is not a SEQUENCE', { offset: 0 });
  const cr = tlvReader(der, outer);
  const tbs = readTlv(cr, 0x30);
  const outerAlg = readAlgorithmId(cr);
  const sig = readBitString(cr);
  if (!cr.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields after signatureValue', { offset: cr.offset });
  if (sig.unusedBits !== 0) throw new SmkiError('ERR_DER_INVALID', 'signature BIT STRING has unused bits', { offset: sig.tlv.start });

  const r = tlvReader(der, tbs);
  let version = 0;
  if (r.peekU8() === 0xa0) {
    const v = readTlv(r, 0xa0);
    const vr = tlvReader(der, v);
    version = readSmallInteger(vr);
    if (!vr.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields in version', { offset: vr.offset });
  }
  const serial = readIntegerBytes(r);
  const tbsAlg = readAlgorithmId(r);
  const issuer = readName(r);
  const validity = readTlv(r, 0x30);
  const vr = tlvReader(der, validity);
  const nbT = readTlv(vr);
  const naT = readTlv(vr);
  if (!vr.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields in validity', { offset: vr.offset });
  const notBefore = decodeTime(der, nbT);
  const notAfter = decodeTime(der, naT);
  const subject = readName(r);
  const spki = readTlv(r, 0x30);
  const sr = tlvReader(der, spki);
  const keyAlg = readAlgorithmId(sr);
  const keyBits = readBitString(sr);
  if (!sr.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields in subjectPublicKeyInfo', { offset: sr.offset });

  const extensions: RawExtension[] = [];
  while (!r.done) {
    const t = readTlv(r);
    if (t.tag === 0x81 || t.tag === 0x82 || t.tag === 0xa1 || t.tag === 0xa2) continue; // unique identifiers (lint: v3 SMKI never has them)
    if (t.tag !== 0xa3) throw new SmkiError('ERR_DER_INVALID', `unexpected field tag 0x${t.tag.toString(16)} in tbsCertificate`, { offset: t.start });
    const er = tlvReader(der, t);
    const list = readTlv(er, 0x30);
    if (!er.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields after extensions', { offset: er.offset });
    const lr = tlvReader(der, list);
    while (!lr.done) {
      const e = readTlv(lr, 0x30);
      const xr = tlvReader(der, e);
      const oid = readOid(xr);
      let critical = false;
      if (xr.peekU8() === 0x01) {
        critical = readBoolean(xr);
        if (!critical) throw new SmkiError('ERR_DER_INVALID', 'critical FALSE must be omitted in DER', { offset: e.start });
      }
      const value = readTlv(xr, 0x04);
      if (!xr.done) throw new SmkiError('ERR_DER_INVALID', 'extra fields in Extension', { offset: xr.offset });
      extensions.push({ oid, critical, value: der.subarray(value.valueStart, value.end) });
    }
    if (!r.done) throw new SmkiError('ERR_DER_INVALID', 'fields after extensions', { offset: r.offset });
  }

  const dec = decodeExtensions(extensions);
  // The KeyObject is made on first use and kept (node's key import is most of a parse's cost, and
  // a trust store holds many certificates whose keys are never used).
  // (publicKeyFromRaw checks the point itself: 65 octets, uncompressed, on the curve.)
  const keyUsable = keyAlg.oid === OID.ecPublicKey && keyAlg.namedCurve === OID.p256 && keyBits.unusedBits === 0;
  let publicKey: KeyObject | undefined | null = keyUsable ? null : undefined;
  const getPublicKey = (): KeyObject | undefined => {
    if (publicKey === null) {
      try {
        publicKey = publicKeyFromRaw(keyBits.data);
      } catch {
        publicKey = undefined;
      }
    }
    return publicKey;
  };
  const kind = classify(subject, issuer, dec.basicConstraints, dec.keyUsage, dec.hardwareModuleName);

  const ouAttr = subject.attributes.find((a) => a.oid === OID.organizationalUnitName);
  const roleRead = ouAttr !== undefined ? parseRoleLenient(ouAttr.value) : undefined;
  let entityId: Eui64 | undefined;
  if (kind === 'device' && dec.hardwareModuleName && dec.hardwareModuleName.hwSerialNum.length === 16) {
    entityId = dec.hardwareModuleName.hwSerialNum as Eui64;
  } else {
    const uid = subject.attributes.find((a) => a.oid === OID.x500UniqueIdentifier);
    if (uid?.tag === 3 && uid.bitLength === 64) entityId = eui64FromBytes(Buffer.from(uid.value, 'hex'));
  }
  const cn = subject.attributes.find((a) => a.oid === OID.commonName);
  const role: RemotePartyRoleCode | undefined = roleRead?.role;

  const details: CertificateDetails = {
    version,
    tbsSignatureAlgorithm: tbsAlg.oid,
    signatureAlgorithmParams: outerAlg.params,
    signatureAlgorithmsMatch: tbsAlg.oid === outerAlg.oid && Buffer.compare(tbsAlg.paramsDer, outerAlg.paramsDer) === 0,
    publicKeyAlgorithm: keyAlg.oid,
    ...(keyAlg.namedCurve !== undefined ? { publicKeyCurve: keyAlg.namedCurve } : {}),
    spkiDer: der.subarray(spki.start, spki.end),
    serialBytes: serial.bytes,
    notBeforeTag: nbT.tag,
    notAfterTag: naT.tag,
    notAfterText: notAfter.text,
    ...(dec.akiFields ? { authorityKeyIdFields: dec.akiFields } : {}),
    ...(dec.san ? { subjectAltName: dec.san } : {}),
    ...(ouAttr !== undefined ? { ou: ouAttr.value, roleSpelling: roleRead === undefined ? 'invalid' : roleRead.canonical ? 'canonical' : 'lenient' } : {}),
    extensionErrors: dec.errors,
  } as CertificateDetails;

  const cert: SmkiCertificate = {
    kind,
    ...(role !== undefined ? { role } : {}),
    ...(entityId !== undefined ? { entityId } : {}),
    keyUsage: dec.keyUsage,
    serialNumber: toHex(serial.bytes),
    ...(dec.subjectKeyId !== undefined ? { subjectKeyId: dec.subjectKeyId } : {}),
    ...(dec.authorityKeyId !== undefined ? { authorityKeyId: dec.authorityKeyId } : {}),
    policies: dec.policies,
    issuer,
    subject,
    ...(cn !== undefined ? { commonName: cn.value } : {}),
    ...(dec.basicConstraints !== undefined ? { basicConstraints: dec.basicConstraints } : {}),
    ...(dec.hardwareModuleName !== undefined ? { hardwareModuleName: dec.hardwareModuleName } : {}),
    publicKeyBytes: keyBits.data,
    extensions,
    der,
    tbsDer: der.subarray(tbs.start, tbs.end),
    signatureAlgorithm: outerAlg.oid,
    signature: sig.data,
    fingerprint: createHash('sha256').update(der).digest('hex').toUpperCase(),
    details,
  } as unknown as SmkiCertificate;
  // Accessors: the key is made on first use; the dates are handed out as copies, because a Date
  // cannot be frozen and a caller changing one would change the validity every holder sees.
  const notBeforeMs = notBefore.date.getTime();
  const notAfterMs = notAfter.date.getTime();
  Object.defineProperties(cert, {
    publicKey: { enumerable: true, get: getPublicKey },
    notBefore: { enumerable: true, get: () => new Date(notBeforeMs) },
    notAfter: { enumerable: true, get: () => new Date(notAfterMs) },
  });
  deepFreeze(cert);
  parsedCertificates.add(cert);
  return cert;
}

/**
 * Freeze the view and every object in it. Byte arrays cannot be frozen (they stay owned copies);
 * the key and the dates are accessors, skipped here, that make their values on demand.
 */
function deepFreeze(o: object): void {
  Object.freeze(o);
  if (Array.isArray(o)) {
    for (const v of o as unknown[]) if (v instanceof Object && !(v instanceof Uint8Array)) deepFreeze(v);
    return;
  }
  for (const k of Object.keys(o)) {
    // The descriptor, not o[k]: reading an accessor would make the key.
    const v: unknown = (Object.getOwnPropertyDescriptor(o, k) as PropertyDescriptor).value;
    if (v instanceof Object && !(v instanceof Uint8Array)) deepFreeze(v);
  }
}

/**
 * Parse an X.509 certificate, PEM (`CERTIFICATE`) or DER, once, into the toolkit's typed view
 * with its public key ready as a `KeyObject`. Parsing checks structure only: a certificate that
 * breaks the SMKI profile still parses (real certificates have quirks: an explicit NULL in the
 * signature algorithm, no SKI, a decimal role) and {@link lintCertificate} reports them.
 *
 * Bounded: inputs over {@link MAX_CERTIFICATE_BYTES} are refused, DER nesting is limited, and no
 * read goes past the end. Every failure is a `SmkiError` `ERR_CERT_MALFORMED` (or
 * `ERR_PEM_INVALID` for bad armour) whose context carries the byte offset.
 *
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`
 * @see RFC 5280 §4.1; docs/domain.md §2
 * @example
 * ```ts
 * import { createHierarchy, parseCertificate } from '@smki/pki';
 * const { root } = await createHierarchy();
 * const again = parseCertificate(root.certificate.der);
 * console.log(again.kind, again.subject.text); // 'root' 'OU=00, CN=ZA'
 * ```
 */
export function parseCertificate(input: string | Uint8Array): SmkiCertificate {
  let der: Uint8Array;
  if (typeof input === 'string') {
    der = pemToDer(input, ['CERTIFICATE']).der;
  } else if (input instanceof Uint8Array) {
    der = input;
  } else {
    throw new SmkiError('ERR_CERT_MALFORMED', 'certificate must be PEM text or DER bytes', { detail: typeof input });
  }
  // Own the bytes: the caller may reuse its buffer.
  const copy = new Uint8Array(der);
  try {
    return parseDer(copy);
  } catch (e) {
    if (isSmkiError(e, 'ERR_CERT_MALFORMED')) throw e;
    // Every error the readers raise is a SmkiError with a byte offset; the checks below only keep
    // an unexpected one (a bug) from losing its cause or inventing an offset.
    // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent; no reachable error lacks a numeric offset (defensive branch)
    const offset = isSmkiError(e) && typeof (e.context as { offset?: unknown }).offset === 'number' ? (e.context as { offset: number }).offset : undefined;
    throw new SmkiError(
      'ERR_CERT_MALFORMED',
      `not a certificate: ${e instanceof Error ? e.message : 'undecodable'}`,
      // Stryker disable next-line ConditionalExpression: equivalent, as above
      offset !== undefined ? { offset } : {},
      { cause: e },
    );
  }
}

/** Whether `value` is a certificate view made by {@link parseCertificate} (not a look-alike object). */
export function isParsedCertificate(value: unknown): value is SmkiCertificate {
  return parsedCertificates.has(value as object); // a WeakSet holds objects only: false for anything else
}

/**
 * A parsed certificate from any accepted input: a view made by {@link parseCertificate} is
 * returned as it is (no second parse); PEM or DER is parsed. A look-alike object that
 * {@link parseCertificate} did not make is refused, so a forged `publicKey` cannot be slipped in.
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_INVALID_ARGUMENT`
 */
export function toCertificate(input: CertificateInput): SmkiCertificate {
  if (typeof input === 'string' || input instanceof Uint8Array) return parseCertificate(input);
  if (isParsedCertificate(input)) return input;
  throw new SmkiError('ERR_INVALID_ARGUMENT', 'expected PEM, DER or a certificate from parseCertificate', { detail: typeof input });
}

/**
 * Every certificate in a PEM bundle (several `CERTIFICATE` blocks), in order.
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`
 */
export function parseCertificateBundle(pem: string): SmkiCertificate[] {
  return pemBlocks(pem, ['CERTIFICATE']).map((b) => parseCertificate(b.der));
}

/** PEM text of a certificate. */
export function certificateToPem(cert: SmkiCertificate): string {
  return derToPem(cert.der, 'CERTIFICATE');
}
