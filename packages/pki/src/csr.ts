/**
 * PKCS#10 certification requests (RFC 2986) for SMKI end-entity keys: make one with a
 * {@link Signer} (the key may live in an HSM), and parse one with its proof of possession checked.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { Attribute, Extension, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import {
  ByteReader,
  checkDerStructure,
  eui64FromBytes,
  isSmkiError,
  KEY_USAGE_NAMES,
  p1363ToDer,
  parseEui64,
  publicKeyToRaw,
  readTlv,
  roleFromOu,
  roleToOu,
  SmkiError,
  tlvReader,
  toPublicKey,
  verifyDer,
  type EndEntityKeyUsage,
  type Eui64,
  type KeyUsageName,
  type RemotePartyRoleCode,
  type Signer,
} from '@smki/core';
import { OID } from './environment.js';
import { ECDSA_WITH_SHA256, encodeAlgorithm, keyUsageValue } from './internal/build.js';
import { readAlgorithmId, readBitString, readBoolean, readOid, readSmallInteger } from './internal/der-read.js';
import { commonNameAttribute, derSequence, derTlv, encodeName, entityIdAttribute, organizationalUnitAttribute, readName, type NameAttributeTemplate } from './internal/name.js';
import { pemToDer } from './internal/pem.js';
import type { DistinguishedName, RawExtension } from './types.js';

/** Largest CSR accepted, in bytes (an SMKI CSR is under 1 KiB). */
export const MAX_CSR_BYTES = 16 * 1024;

/** PKCS#9 extensionRequest attribute (RFC 2985 §5.4.2). */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** What {@link createCsr} puts in the request. */
export interface CreateCsrOptions {
  /** Signs the request (proof of possession); its public key is the one requested. */
  readonly signer: Signer;
  /**
   * Subject attributes, written in the organisation profile's order and encodings: CN
   * (UTF8String), OU = role as two upper-case hex digits (PrintableString), x500UniqueIdentifier
   * (64-bit BIT STRING). Omit for a device request (empty subject).
   */
  readonly subject?: {
    /** Remote Party Role. */
    readonly role?: number;
    /** EUI-64 of the entity, in any accepted spelling. */
    readonly entityId?: string;
    /** Common name. */
    readonly commonName?: string;
  };
  /** Requested key usage, sent as a critical keyUsage in an extensionRequest attribute. */
  readonly keyUsage?: EndEntityKeyUsage;
}

/**
 * Make a DER PKCS#10 request signed with ecdsa-with-SHA256 (parameters absent) by `signer`.
 *
 * @throws SmkiError `ERR_KEY_INVALID` / `ERR_KEY_CURVE_UNSUPPORTED` (the signer's key is not a
 *   P-256 point), `ERR_ROLE_UNKNOWN`, `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT`,
 *   `ERR_SIGNATURE_ENCODING` (the signer did not return 64 bytes)
 * @see RFC 2986 §4; docs/domain.md §2 (organisation subject)
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeySigner } from '@smki/core';
 * import { createCsr, parseCsr } from '@smki/pki';
 * const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const der = await createCsr({
 *   signer: createKeySigner(privateKey),
 *   subject: { role: 2, entityId: '90-B3-D5-1F-30-01-00-00', commonName: 'Supplier A' },
 *   keyUsage: 'digitalSignature',
 * });
 * console.log(parseCsr(der).requestedKeyUsage); // ['digitalSignature']
 * ```
 */
export async function createCsr(options: CreateCsrOptions): Promise<Uint8Array> {
  const { signer } = options;
  if (typeof signer !== 'object' || signer === null || typeof signer.sign !== 'function') {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'createCsr needs a Signer', {});
  }
  const key = toPublicKey(signer.publicKey);
  const attrs: NameAttributeTemplate[] = [];
  const s = options.subject ?? {};
  if (s.commonName !== undefined) {
    if (typeof s.commonName !== 'string' || s.commonName.length === 0 || s.commonName.length > 64) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'commonName must be 1 to 64 characters', {});
    }
    attrs.push(commonNameAttribute(s.commonName));
  }
  if (s.role !== undefined) attrs.push(organizationalUnitAttribute(roleToOu(s.role)));
  if (s.entityId !== undefined) attrs.push(entityIdAttribute(parseEui64(s.entityId)));
  if (options.keyUsage !== undefined && options.keyUsage !== 'digitalSignature' && options.keyUsage !== 'keyAgreement') {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'keyUsage must be digitalSignature or keyAgreement', { detail: String(options.keyUsage) });
  }

  const nameDer = encodeName({ attributes: attrs });
  const spkiDer = new Uint8Array(key.export({ format: 'der', type: 'spki' }));
  const attributes = new Attributes([]);
  if (options.keyUsage !== undefined) {
    const extensions = new Extensions([
      new Extension({ extnID: OID.keyUsage, critical: true, extnValue: new OctetString(keyUsageValue([options.keyUsage])) }),
    ]);
    attributes.push(new Attribute({ type: EXTENSION_REQUEST, values: [AsnConvert.serialize(extensions)] }));
  }
  const cri = new CertificationRequestInfo({
    version: 0,
    subject: AsnConvert.parse(nameDer, Name),
    subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    attributes,
  });
  const criDer = new Uint8Array(AsnConvert.serialize(cri));
  // Guard: the subject must be exactly the DER encodeName made (string types and BIT STRING kept).
  const check = tlvReader(criDer, readTlv(new ByteReader(criDer), 0x30));
  readTlv(check, 0x02);
  const subjectTlv = readTlv(check, 0x30);
  if (Buffer.compare(criDer.subarray(subjectTlv.start, subjectTlv.end), nameDer) !== 0) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'subject did not survive encoding unchanged', {});
  }
  const signature = await signer.sign(criDer);
  return derSequence(criDer, encodeAlgorithm(ECDSA_WITH_SHA256), derTlv(0x03, Uint8Array.of(0), p1363ToDer(signature)));
}

/** A PKCS#10 request, parsed and with its proof of possession verified. */
export interface ParsedCsr {
  /** The request DER. */
  readonly der: Uint8Array;
  /** The requested subject (attributes in order, display text, exact DER). */
  readonly subject: DistinguishedName;
  /** The requested key: 65-byte uncompressed P-256 point. */
  readonly publicKeyBytes: Uint8Array;
  /** The requested key as a `KeyObject`. */
  readonly publicKey: KeyObject;
  /** Every extension in the extensionRequest attribute, in order. */
  readonly requestedExtensions: readonly RawExtension[];
  /** keyUsage bits requested, if a keyUsage extension was requested. */
  readonly requestedKeyUsage?: readonly KeyUsageName[];
  /** basicConstraints cA requested, if a basicConstraints extension was requested. */
  readonly requestedCa?: boolean;
  /** EUI-64 from a 64-bit x500UniqueIdentifier in the subject. */
  readonly entityId?: Eui64;
  /** Remote Party Role from a two-hex-digit OU in the subject. */
  readonly role?: RemotePartyRoleCode;
  /** Common name from the subject. */
  readonly commonName?: string;
  /** OIDs of request attributes other than extensionRequest (e.g. challengePassword), in order. */
  readonly attributes: readonly string[];
}

function malformed(message: string, offset?: number, cause?: unknown): SmkiError {
  return new SmkiError('ERR_CSR_MALFORMED', message, offset === undefined ? {} : { offset }, cause === undefined ? undefined : { cause });
}

function decodeKeyUsage(value: Uint8Array): KeyUsageName[] {
  const r = new ByteReader(value);
  const bs = readBitString(r);
  if (!r.done) throw malformed('bytes after keyUsage', r.offset);
  const names: KeyUsageName[] = [];
  const totalBits = bs.data.length * 8 - bs.unusedBits;
  for (let i = 0; i < totalBits; i++) {
    if (((bs.data[i >> 3] as number) >> (7 - (i & 7))) & 1) {
      const name = KEY_USAGE_NAMES[i];
      if (name === undefined) throw malformed(`keyUsage bit ${i} is not an RFC 5280 key usage`);
      names.push(name);
    }
  }
  return names;
}

function decodeBasicConstraintsCa(value: Uint8Array): boolean {
  const r = new ByteReader(value);
  const seq = readTlv(r, 0x30);
  if (!r.done) throw malformed('bytes after basicConstraints', r.offset);
  const sr = tlvReader(value, seq);
  let ca = false;
  if (!sr.done && sr.peekU8() === 0x01) ca = readBoolean(sr);
  if (!sr.done) readSmallInteger(sr);
  if (!sr.done) throw malformed('extra fields in basicConstraints', sr.offset);
  return ca;
}

function readExtensions(bytes: Uint8Array, valueReader: ByteReader): RawExtension[] {
  const list = readTlv(valueReader, 0x30);
  const lr = tlvReader(bytes, list);
  const out: RawExtension[] = [];
  const seen = new Set<string>();
  while (!lr.done) {
    const e = readTlv(lr, 0x30);
    const xr = tlvReader(bytes, e);
    const oid = readOid(xr);
    let critical = false;
    if (!xr.done && xr.peekU8() === 0x01) critical = readBoolean(xr);
    const v = readTlv(xr, 0x04);
    if (!xr.done) throw malformed('extra fields in a requested Extension', xr.offset);
    if (seen.has(oid)) throw malformed(`extension ${oid} requested twice`, e.start);
    seen.add(oid);
    out.push({ oid, critical, value: bytes.slice(v.valueStart, v.end) });
  }
  return out;
}

interface CsrStructure {
  criDer: Uint8Array;
  /** Whether signatureAlgorithm is ecdsa-with-SHA256 (parameters absent, or the NULL some encoders add). */
  ecdsaWithSha256: boolean;
  signatureAlgorithm: string;
  signature: Uint8Array;
  subject: DistinguishedName;
  spkiDer: Uint8Array;
  extensions: RawExtension[];
  attributes: string[];
}

function readStructure(der: Uint8Array): CsrStructure {
  const outer = checkDerStructure(der);
  if (outer.tag !== 0x30) throw malformed('a CSR is a SEQUENCE', 0);
  const top = tlvReader(der, outer);
  const cri = readTlv(top, 0x30);
  const alg = readAlgorithmId(top);
  const sig = readBitString(top);
  if (!top.done) throw malformed('fields after the signature', top.offset);
  if (sig.unusedBits !== 0) throw malformed('signature BIT STRING has unused bits', sig.tlv.start);

  const r = tlvReader(der, cri);
  const versionAt = r.offset;
  if (readSmallInteger(r) !== 0) throw malformed('CSR version is not v1 (0)', versionAt);
  const subject = readName(r);
  const spki = readTlv(r, 0x30);
  const extensions: RawExtension[] = [];
  const attributes: string[] = [];
  // RFC 2986 makes [0] attributes mandatory; some encoders omit it when empty, so accept both.
  if (!r.done) {
    const attrs = readTlv(r, 0xa0);
    const ar = tlvReader(der, attrs);
    let sawExtensionRequest = false;
    while (!ar.done) {
      const a = readTlv(ar, 0x30);
      const one = tlvReader(der, a);
      const type = readOid(one);
      const values = readTlv(one, 0x31);
      if (!one.done) throw malformed('extra fields in a request attribute', one.offset);
      const vr = tlvReader(der, values);
      if (type === EXTENSION_REQUEST) {
        if (sawExtensionRequest) throw malformed('extensionRequest appears twice', a.start);
        sawExtensionRequest = true;
        extensions.push(...readExtensions(der, vr));
        if (!vr.done) throw malformed('extensionRequest has more than one value', vr.offset);
      } else {
        if (vr.done) throw malformed('a request attribute has no value', values.start);
        attributes.push(type);
      }
    }
  }
  if (!r.done) throw malformed('fields after the request attributes', r.offset);
  return {
    criDer: der.subarray(cri.start, cri.end),
    ecdsaWithSha256: alg.oid === OID.ecdsaWithSha256 && alg.params !== 'other',
    signatureAlgorithm: alg.oid,
    signature: sig.data,
    subject,
    spkiDer: der.subarray(spki.start, spki.end),
    extensions,
    attributes,
  };
}

/**
 * Parse a PKCS#10 request (PEM `CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`, or DER) and
 * verify its proof of possession: the ecdsa-with-SHA256 signature over certificationRequestInfo
 * under the requested key. Only P-256 keys are accepted. Bounded: at most {@link MAX_CSR_BYTES},
 * structure checked (nesting depth, lengths, nothing trailing) before any field is read.
 *
 * The result says what the request asks for; it decides nothing. The CA functions compare it with
 * the issuance request and the profile and refuse a request that asks for more.
 *
 * @throws SmkiError `ERR_CSR_MALFORMED` (bytes are not a well-formed request),
 *   `ERR_PEM_INVALID` (bad PEM armour), `ERR_KEY_CURVE_UNSUPPORTED` / `ERR_KEY_INVALID` (the
 *   requested key is not a P-256 key), `ERR_CSR_SIGNATURE_INVALID` (no valid ecdsa-with-SHA256
 *   proof of possession)
 * @see RFC 2986 §4; RFC 2985 §5.4.2 (extensionRequest); docs/domain.md §2
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeySigner } from '@smki/core';
 * import { createCsr, parseCsr } from '@smki/pki';
 * const signer = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
 * const csr = parseCsr(await createCsr({ signer, subject: { role: 2, entityId: '90B3D51F30010000' } }));
 * console.log(csr.role, csr.entityId); // 2 '90B3D51F30010000'
 * ```
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  let der: Uint8Array;
  if (typeof input === 'string') {
    if (input.length > MAX_CSR_BYTES * 2) throw malformed(`PEM CSR over ${MAX_CSR_BYTES * 2} characters`);
    der = pemToDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']).der;
  } else if (input instanceof Uint8Array) {
    der = input;
  } else {
    throw malformed('a CSR must be PEM text or DER bytes');
  }
  if (der.length > MAX_CSR_BYTES) throw malformed(`CSR over ${MAX_CSR_BYTES} bytes`);
  der = new Uint8Array(der);

  let st: CsrStructure;
  let requestedKeyUsage: KeyUsageName[] | undefined;
  let requestedCa: boolean | undefined;
  try {
    st = readStructure(der);
    for (const e of st.extensions) {
      if (e.oid === OID.keyUsage) requestedKeyUsage = decodeKeyUsage(e.value);
      else if (e.oid === OID.basicConstraints) requestedCa = decodeBasicConstraintsCa(e.value);
    }
  } catch (e) {
    if (isSmkiError(e, 'ERR_CSR_MALFORMED')) throw e;
    const offset = isSmkiError(e) ? (e.context as { offset?: unknown }).offset : undefined;
    throw malformed(`not a certification request: ${e instanceof Error ? e.message : 'undecodable'}`, typeof offset === 'number' ? offset : undefined, e);
  }

  const publicKey = toPublicKey(st.spkiDer);
  const publicKeyBytes = publicKeyToRaw(publicKey);
  if (!st.ecdsaWithSha256) {
    throw new SmkiError('ERR_CSR_SIGNATURE_INVALID', 'the request is not signed with ecdsa-with-SHA256', { detail: st.signatureAlgorithm });
  }
  if (!verifyDer(publicKey, st.criDer, st.signature)) {
    throw new SmkiError('ERR_CSR_SIGNATURE_INVALID', 'the proof-of-possession signature does not verify', {});
  }

  let entityId: Eui64 | undefined;
  let role: RemotePartyRoleCode | undefined;
  let commonName: string | undefined;
  for (const a of st.subject.attributes) {
    if (a.oid === OID.x500UniqueIdentifier && a.tag === 3 && a.bitLength === 64 && entityId === undefined) {
      entityId = eui64FromBytes(new Uint8Array(Buffer.from(a.value, 'hex')));
    } else if (a.oid === OID.organizationalUnitName && role === undefined) {
      try {
        role = roleFromOu(a.value);
      } catch {
        role = undefined;
      }
    } else if (a.oid === OID.commonName && commonName === undefined) {
      commonName = a.value;
    }
  }

  return Object.freeze({
    der,
    subject: st.subject,
    publicKeyBytes,
    publicKey,
    requestedExtensions: st.extensions,
    ...(requestedKeyUsage !== undefined ? { requestedKeyUsage } : {}),
    ...(requestedCa !== undefined ? { requestedCa } : {}),
    ...(entityId !== undefined ? { entityId } : {}),
    ...(role !== undefined ? { role } : {}),
    ...(commonName !== undefined ? { commonName } : {}),
    attributes: st.attributes,
  });
}
