/**
 * The CA side of SMKI: issue the root, the organisation and device CAs, organisation
 * certificates and device certificates exactly to the profile of docs/domain.md §2.
 *
 * The profile decides every field. A CSR is only proof of possession of a key: if it asks for
 * anything the issuance request and the profile do not give (another key usage, a CA flag,
 * another EUI-64 or role, an extension or attribute the profile does not know), it is refused
 * with an `ERR_ISSUE_CSR_*` code rather than silently trimmed.
 * @module
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectAlternativeName } from '@peculiar/asn1-x509';
import {
  createKeySigner,
  eui64ToBytes,
  fromHex,
  isRemotePartyRole,
  parseEui64,
  publicKeyFromRaw,
  publicKeyToRaw,
  roleFromOu,
  roleToOu,
  SmkiError,
  toPublicKey,
  verifyDer,
  type EndEntityKeyUsage,
  type Eui64,
  type KeyUsageName,
  type PublicKeyInput,
  type Signer,
  type SmkiErrorCode,
} from '@smki/core';
import { parseCsr, type ParsedCsr } from './csr.js';
import { OID, TEST_ENVIRONMENT, type CaProfile, type SmkiEnvironment } from './environment.js';
import { HardwareModuleNameAsn } from './internal/asn1.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  ECDSA_WITH_SHA256,
  extension,
  hardwareModuleNameSanValue,
  keyUsageValue,
  rfc5280Time,
  subjectKeyIdentifierValue,
  type CertificateTemplate,
  type ExtensionTemplate,
} from './internal/build.js';
import { keyIdMethod2 } from './internal/keyid.js';
import { commonNameAttribute, entityIdAttribute, isOid, organizationalUnitAttribute, type NameAttributeTemplate } from './internal/name.js';
import { parseCertificate, toCertificate } from './parse.js';
import type { SmkiCertificate } from './types.js';

/** A CA: its certificate and the signer holding its private key (in memory or an HSM). */
export interface CertificateAuthority {
  /** The CA certificate, as returned by `parseCertificate` or an issue function. */
  readonly certificate: SmkiCertificate;
  /** Signs with the private key of `certificate`'s public key. */
  readonly signer: Signer;
}

/** Options every issue function takes: environment, clock and randomness (all injectable). */
export interface IssueCommonOptions {
  /** Policy OIDs, CA names and lifetimes (default {@link TEST_ENVIRONMENT}). */
  readonly environment?: SmkiEnvironment;
  /** The clock (default `() => new Date()`); its value is truncated to whole seconds. */
  readonly now?: () => Date;
  /** Start of validity (default `now()`); truncated to whole seconds. */
  readonly notBefore?: Date;
  /** A CSPRNG returning `n` bytes (default `crypto.randomBytes`); used for serial numbers. */
  readonly random?: (n: number) => Uint8Array;
}

/** Options of {@link issueRootCertificate}. */
export interface IssueRootOptions extends IssueCommonOptions {
  /** The root's own key (the root is self-signed). */
  readonly signer: Signer;
  /**
   * certificatePolicies of the root (default: the environment's `rootPolicies`, or when that is
   * empty every organisation and device policy of the environment).
   */
  readonly policies?: readonly string[];
}

/** Which issuing CA {@link issueCaCertificate} makes. */
export type IssuingCaKind = 'organisationCa' | 'deviceCa';

/** Options of {@link issueCaCertificate}. */
export interface IssueCaOptions extends IssueCommonOptions {
  /** The root that signs. */
  readonly issuer: CertificateAuthority;
  /** `organisationCa` (OCA) or `deviceCa` (DCA). */
  readonly kind: IssuingCaKind;
  /** The new CA's public key: 65-byte point, SPKI DER, PEM or `KeyObject`. */
  readonly publicKey: PublicKeyInput;
  /** certificatePolicies (default: the environment's organisation or device policies). */
  readonly policies?: readonly string[];
}

/** Options of {@link createHierarchy}. */
export interface CreateHierarchyOptions extends IssueCommonOptions {
  /** Keys to use; any not given is generated in memory (node:crypto, P-256). */
  readonly signers?: {
    /** The root's key. */
    readonly root?: Signer;
    /** The organisation CA's key. */
    readonly organisationCa?: Signer;
    /** The device CA's key. */
    readonly deviceCa?: Signer;
  };
  /** certificatePolicies of the root (see {@link IssueRootOptions.policies}). */
  readonly rootPolicies?: readonly string[];
}

/** A test or production hierarchy: the root and its two issuing CAs. */
export interface SmkiHierarchy {
  /** The self-signed root (OU=00). */
  readonly root: CertificateAuthority;
  /** The organisation CA (OU=07), issuer of organisation certificates. */
  readonly organisationCa: CertificateAuthority;
  /** The device CA, issuer of device certificates. */
  readonly deviceCa: CertificateAuthority;
}

/**
 * Where the subject key of an end-entity certificate comes from: exactly one of a CSR (whose
 * proof of possession is verified and whose requests are checked against the profile) or a
 * public key the caller vouches for.
 */
export interface SubjectKeyOptions {
  /** A PKCS#10 request, PEM or DER. */
  readonly csr?: string | Uint8Array;
  /** The subject key: 65-byte point, SPKI DER, PEM or `KeyObject`. */
  readonly publicKey?: PublicKeyInput;
}

/** Options of {@link issueOrganisationCertificate}. */
export interface IssueOrganisationOptions extends IssueCommonOptions, SubjectKeyOptions {
  /** The organisation CA (kind `issuingCa`, OU 07) and its signer. */
  readonly issuer: CertificateAuthority;
  /** Remote Party Role of the party (docs/domain.md §2), written to the OU as two upper-case hex digits. */
  readonly role: number;
  /** The party's EUI-64 entity id, in any accepted spelling; written to x500UniqueIdentifier. */
  readonly entityId: string;
  /** The one key usage: `digitalSignature` (signing commands) or `keyAgreement`. */
  readonly keyUsage: EndEntityKeyUsage;
  /** An optional common name (UTF8String, 1–64 characters). */
  readonly commonName?: string;
}

/** Options of {@link issueDeviceCertificate}. */
export interface IssueDeviceOptions extends IssueCommonOptions, SubjectKeyOptions {
  /** The device CA (kind `issuingCa` carrying a device policy) and its signer. */
  readonly issuer: CertificateAuthority;
  /** The device's EUI-64, in any accepted spelling; written to hwSerialNum. */
  readonly entityId: string;
  /** The one key usage: `digitalSignature` or `keyAgreement`. */
  readonly keyUsage: EndEntityKeyUsage;
  /** hwType OID (default: the environment's `defaultHwType`). */
  readonly hwType?: string;
  /** The one device policy OID (default: the first device policy the issuing CA carries). */
  readonly policy?: string;
}

// ---------------------------------------------------------------------------------------------
// helpers

const NOT_AFTER_FOREVER = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));
const SERIAL_BYTES = 16;
const MAX_SERIAL_DRAWS = 64;

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail });
}

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

function startOfValidity(o: IssueCommonOptions): Date {
  const d = o.notBefore ?? (o.now ?? (() => new Date()))();
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) fail('ERR_ISSUE_INVALID_REQUEST', 'notBefore / now() is not a valid Date');
  return wholeSeconds(d);
}

/** `years` calendar years after `d` (29 February becomes 28 February in a common year). */
function addYears(d: Date, years: number): Date {
  if (!Number.isInteger(years) || years < 1) fail('ERR_ISSUE_INVALID_REQUEST', 'validity must be a positive whole number of years', String(years));
  const out = new Date(d.getTime());
  out.setUTCFullYear(d.getUTCFullYear() + years);
  if (out.getUTCDate() !== d.getUTCDate()) out.setUTCDate(0);
  if (out.getUTCFullYear() > 9999) return NOT_AFTER_FOREVER;
  return out;
}

/**
 * A 16-octet positive serial: 16 bytes from the CSPRNG, top bit cleared, redrawn while the
 * first byte is zero, so the DER INTEGER is always exactly 16 content octets (docs/domain.md §2).
 */
function serialNumber(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): Uint8Array {
  for (let i = 0; i < MAX_SERIAL_DRAWS; i++) {
    const r = random(SERIAL_BYTES);
    if (!(r instanceof Uint8Array) || r.length !== SERIAL_BYTES) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', `random(${SERIAL_BYTES}) must return ${SERIAL_BYTES} bytes`, { detail: String((r as { length?: unknown })?.length) });
    }
    const s = new Uint8Array(r);
    s[0] = (s[0] as number) & 0x7f;
    if (s[0] !== 0) return s;
  }
  throw new SmkiError('ERR_INVALID_ARGUMENT', `random source gave a zero first byte ${MAX_SERIAL_DRAWS} times`, {});
}

function checkSigner(signer: unknown, what: string): asserts signer is Signer {
  const s = signer as Partial<Signer> | null;
  if (typeof s !== 'object' || s === null || typeof s.sign !== 'function' || !(s.publicKey instanceof Uint8Array)) {
    fail('ERR_INVALID_ARGUMENT', `${what} is not a Signer`);
  }
}

function policiesOrFail(list: readonly string[] | undefined, what: string): readonly string[] {
  if (list === undefined || list.length === 0) fail('ERR_ISSUE_INVALID_REQUEST', `no ${what} policy OID (certificatePolicies needs at least one, docs/domain.md §2)`);
  for (const p of list) if (!isOid(p)) fail('ERR_ISSUE_INVALID_REQUEST', `not a policy OID: ${String(p).slice(0, 64)}`);
  return [...new Set(list)];
}

function caName(profile: CaProfile): NameAttributeTemplate[] {
  return profile.subject.map((a) => ({
    oid: a.type === 'OU' ? OID.organizationalUnitName : OID.commonName,
    value: { encoding: profile.stringEncoding, value: a.value },
  }));
}

/** The issuer's key identifier for the AKI: its SKI, or method 2 of its key if it has none. */
function issuerKeyId(issuer: SmkiCertificate): Uint8Array {
  return issuer.subjectKeyId !== undefined ? fromHex(issuer.subjectKeyId) : keyIdMethod2(issuer.publicKeyBytes);
}

type IssuerRole = 'root' | 'organisationCa' | 'deviceCa';

/**
 * The issuing CA's certificate, after checking that it is a CA of the wanted kind and that the
 * signer holds its key.
 */
function checkIssuer(ca: CertificateAuthority, want: IssuerRole, env: SmkiEnvironment): SmkiCertificate {
  if (typeof ca !== 'object' || ca === null) fail('ERR_INVALID_ARGUMENT', 'issuer must be a CertificateAuthority');
  const cert = toCertificate(ca.certificate);
  checkSigner(ca.signer, 'issuer.signer');
  const isCa = cert.basicConstraints?.ca === true && cert.keyUsage.includes('keyCertSign');
  let ok: boolean;
  switch (want) {
    case 'root':
      ok = isCa && cert.kind === 'root';
      break;
    case 'organisationCa':
      ok = isCa && cert.kind === 'issuingCa' && cert.role === 7 && cert.details.roleSpelling === 'canonical';
      break;
    case 'deviceCa':
      ok = isCa && cert.kind === 'issuingCa' && cert.policies.some((p) => env.devicePolicies.includes(p));
      break;
  }
  if (!ok) {
    fail('ERR_ISSUE_ISSUER_NOT_CA', `the issuing certificate (${cert.kind}, ${cert.subject.text}) is not the ${want} this certificate needs`, want);
  }
  if (Buffer.compare(Buffer.from(ca.signer.publicKey), Buffer.from(cert.publicKeyBytes)) !== 0) {
    fail('ERR_ISSUE_ISSUER_KEY_MISMATCH', "the issuer's signer does not hold the issuing certificate's key");
  }
  return cert;
}

/** Build, sign, check the signature under the issuing key, and parse. */
async function sign(template: CertificateTemplate, signer: Signer, issuerPublicKey: Uint8Array): Promise<SmkiCertificate> {
  const der = await buildCertificate(template, signer);
  const cert = parseCertificate(der);
  // A signer whose private key does not match its advertised public key (a misconfigured HSM
  // slot) would otherwise produce a certificate no one can validate.
  if (!verifyDer(publicKeyFromRaw(issuerPublicKey), cert.tbsDer, cert.signature)) {
    fail('ERR_ISSUE_ISSUER_KEY_MISMATCH', "the signer's signature does not verify under the issuing certificate's key");
  }
  return cert;
}

function caTemplate(
  o: IssueCommonOptions,
  profile: CaProfile,
  issuerName: CertificateTemplate['issuer'],
  subjectPoint: Uint8Array,
  policies: readonly string[],
  pathLength: number | undefined,
  authorityKeyId: Uint8Array | undefined,
): CertificateTemplate {
  const notBefore = startOfValidity(o);
  const extensions: ExtensionTemplate[] = [
    extension(OID.basicConstraints, true, basicConstraintsValue(true, pathLength)),
    extension(OID.keyUsage, true, keyUsageValue(['keyCertSign', 'cRLSign'])),
    extension(OID.certificatePolicies, true, certificatePoliciesValue(policies)),
    extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(subjectPoint))),
  ];
  if (authorityKeyId !== undefined) extensions.push(extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(authorityKeyId)));
  return {
    version: 2,
    serialNumber: serialNumber(o.random),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: issuerName,
    notBefore: rfc5280Time(notBefore),
    notAfter: rfc5280Time(addYears(notBefore, profile.validityYears)),
    subject: { attributes: caName(profile) },
    subjectPublicKey: { point: subjectPoint },
    extensions,
  };
}

// ---------------------------------------------------------------------------------------------
// CA certificates

/**
 * Issue the self-signed SMKI root: subject from the environment's root profile (test: `OU=00,
 * CN=ZA`, PrintableString), critical basicConstraints CA:TRUE without pathLenConstraint,
 * critical keyUsage keyCertSign|cRLSign, critical certificatePolicies, an 8-octet method-2
 * subjectKeyIdentifier and no authorityKeyIdentifier.
 *
 * @returns the parsed root certificate (pair it with `options.signer` as a {@link CertificateAuthority})
 * @throws SmkiError `ERR_ISSUE_INVALID_REQUEST` (no policy, bad date), `ERR_INVALID_ARGUMENT`
 *   (not a Signer, a broken random source), `ERR_KEY_INVALID` (the signer's key is not a P-256
 *   point), `ERR_ISSUE_ISSUER_KEY_MISMATCH` (the signer's signature does not verify under its own
 *   public key)
 * @see docs/domain.md §2 (Root); RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.2
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeySigner } from '@smki/core';
 * import { issueRootCertificate } from '@smki/pki';
 * const signer = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
 * const root = await issueRootCertificate({ signer });
 * console.log(root.kind, root.subject.text); // 'root' 'OU=00, CN=ZA'
 * ```
 */
export async function issueRootCertificate(options: IssueRootOptions): Promise<SmkiCertificate> {
  const env = options.environment ?? TEST_ENVIRONMENT;
  checkSigner(options.signer, 'signer');
  const point = publicKeyToRaw(toPublicKey(options.signer.publicKey));
  const policies = policiesOrFail(
    options.policies ?? (env.rootPolicies.length > 0 ? env.rootPolicies : [...env.organisationPolicies, ...env.devicePolicies]),
    'root',
  );
  const name = { attributes: caName(env.root) };
  const template = caTemplate(options, env.root, name, point, policies, undefined, undefined);
  return sign(template, options.signer, point);
}

/**
 * Issue an organisation CA (OCA: test `OU=07, CN=Z1`) or device CA (DCA: test `CN=E357`) under
 * the root: critical basicConstraints CA:TRUE pathLenConstraint 0, critical keyUsage
 * keyCertSign|cRLSign, critical certificatePolicies (the environment's organisation or device
 * policies), method-2 SKI, and AKI = the root's SKI. The issuer name is the root's subject DER,
 * copied byte for byte.
 *
 * @throws SmkiError `ERR_ISSUE_ISSUER_NOT_CA` (the issuer is not the root),
 *   `ERR_ISSUE_ISSUER_KEY_MISMATCH` (the signer does not hold the root's key),
 *   `ERR_ISSUE_INVALID_REQUEST` (unknown kind, no policy, bad date), `ERR_KEY_INVALID` /
 *   `ERR_KEY_CURVE_UNSUPPORTED` (the new CA key), `ERR_INVALID_ARGUMENT`
 * @see docs/domain.md §2 (OCA, DCA); RFC 5280 §4.2.1.1, §4.2.1.9
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeySigner } from '@smki/core';
 * import { issueCaCertificate, issueRootCertificate } from '@smki/pki';
 * const newSigner = () => createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
 * const rootSigner = newSigner();
 * const root = { certificate: await issueRootCertificate({ signer: rootSigner }), signer: rootSigner };
 * const ocaSigner = newSigner();
 * const oca = await issueCaCertificate({ issuer: root, kind: 'organisationCa', publicKey: ocaSigner.publicKey });
 * console.log(oca.subject.text); // 'OU=07, CN=Z1'
 * ```
 */
export async function issueCaCertificate(options: IssueCaOptions): Promise<SmkiCertificate> {
  const env = options.environment ?? TEST_ENVIRONMENT;
  if (options.kind !== 'organisationCa' && options.kind !== 'deviceCa') {
    fail('ERR_ISSUE_INVALID_REQUEST', 'kind must be organisationCa or deviceCa', String(options.kind));
  }
  const issuer = checkIssuer(options.issuer, 'root', env);
  const point = publicKeyToRaw(toPublicKey(options.publicKey));
  const organisation = options.kind === 'organisationCa';
  const profile = organisation ? env.organisationCa : env.deviceCa;
  const policies = policiesOrFail(options.policies ?? (organisation ? env.organisationPolicies : env.devicePolicies), options.kind);
  const template = caTemplate(options, profile, { der: issuer.subject.der }, point, policies, 0, issuerKeyId(issuer));
  return sign(template, options.issuer.signer, issuer.publicKeyBytes);
}

function generatedSigner(): Signer {
  return createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
}

/**
 * Create a whole SMKI hierarchy: the root, the organisation CA and the device CA, each with its
 * signer. Keys not given in `options.signers` are generated in memory with node:crypto (P-256);
 * for production, pass HSM-backed signers. All three share the clock, notBefore and randomness.
 *
 * @throws SmkiError as {@link issueRootCertificate} and {@link issueCaCertificate}
 * @see docs/domain.md §2 (Two PKIs under one root)
 * @example
 * ```ts
 * import { createHierarchy } from '@smki/pki';
 * const { root, organisationCa, deviceCa } = await createHierarchy();
 * console.log(root.certificate.subject.text, organisationCa.certificate.subject.text, deviceCa.certificate.subject.text);
 * // 'OU=00, CN=ZA' 'OU=07, CN=Z1' 'CN=E357'
 * ```
 */
export async function createHierarchy(options: CreateHierarchyOptions = {}): Promise<SmkiHierarchy> {
  const { signers, rootPolicies, ...common } = options;
  const start = startOfValidity(common);
  const shared: IssueCommonOptions = { ...common, notBefore: start };
  const rootSigner = signers?.root ?? generatedSigner();
  const ocaSigner = signers?.organisationCa ?? generatedSigner();
  const dcaSigner = signers?.deviceCa ?? generatedSigner();
  const rootCert = await issueRootCertificate({ ...shared, signer: rootSigner, ...(rootPolicies !== undefined ? { policies: rootPolicies } : {}) });
  const root: CertificateAuthority = Object.freeze({ certificate: rootCert, signer: rootSigner });
  const oca = await issueCaCertificate({ ...shared, issuer: root, kind: 'organisationCa', publicKey: ocaSigner.publicKey });
  const dca = await issueCaCertificate({ ...shared, issuer: root, kind: 'deviceCa', publicKey: dcaSigner.publicKey });
  return Object.freeze({
    root,
    organisationCa: Object.freeze({ certificate: oca, signer: ocaSigner }),
    deviceCa: Object.freeze({ certificate: dca, signer: dcaSigner }),
  });
}

// ---------------------------------------------------------------------------------------------
// end-entity certificates

function checkKeyUsage(ku: unknown): asserts ku is EndEntityKeyUsage {
  if (ku !== 'digitalSignature' && ku !== 'keyAgreement') {
    fail('ERR_ISSUE_INVALID_REQUEST', 'keyUsage must be digitalSignature or keyAgreement (exactly one, docs/domain.md §2)', String(ku));
  }
}

interface CsrExpectation {
  readonly kind: 'organisation' | 'device';
  readonly entityId: Eui64;
  readonly keyUsage: EndEntityKeyUsage;
  readonly role?: number;
  readonly commonName?: string;
  readonly hwType?: string;
}

function checkCsrSan(value: Uint8Array, want: CsrExpectation): void {
  let names: SubjectAlternativeName;
  try {
    names = AsnConvert.parse(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer, SubjectAlternativeName);
  } catch {
    return fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', 'the requested subjectAltName does not decode', OID.subjectAltName);
  }
  const eui = eui64ToBytes(want.entityId);
  for (const gn of names) {
    if (gn.otherName?.typeId !== OID.hardwareModuleName) {
      fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', 'the requested subjectAltName holds a name other than hardwareModuleName', OID.subjectAltName);
    }
    let hmn: HardwareModuleNameAsn;
    try {
      hmn = AsnConvert.parse(gn.otherName.value, HardwareModuleNameAsn);
    } catch {
      return fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', 'the requested hardwareModuleName does not decode', OID.subjectAltName);
    }
    if (Buffer.compare(Buffer.from(hmn.hwSerialNum), Buffer.from(eui)) !== 0) {
      fail('ERR_ISSUE_CSR_ENTITY_MISMATCH', `the CSR names hwSerialNum ${Buffer.from(hmn.hwSerialNum).toString('hex').toUpperCase()}, not ${want.entityId}`);
    }
    if (hmn.hwType !== want.hwType) {
      fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', `the CSR asks for hwType ${hmn.hwType}, not ${String(want.hwType)}`, OID.subjectAltName);
    }
  }
}

/**
 * Refuse a CSR that asks for more than (or other than) what the request and the profile give.
 * Order: CA flag, key usage, extensions, attributes, then the subject.
 */
function checkCsr(csr: ParsedCsr, want: CsrExpectation): void {
  if (csr.requestedCa === true) fail('ERR_ISSUE_CSR_CA_REQUESTED', 'the CSR asks for basicConstraints cA TRUE');
  if (csr.requestedKeyUsage !== undefined) {
    const ku = csr.requestedKeyUsage;
    if (ku.length !== 1 || ku[0] !== want.keyUsage) {
      fail('ERR_ISSUE_CSR_KEY_USAGE', `the CSR asks for keyUsage ${ku.join('|') || '(none)'}, the request gives ${want.keyUsage}`);
    }
  }
  for (const e of csr.requestedExtensions) {
    switch (e.oid) {
      case OID.keyUsage:
      case OID.basicConstraints: // cA FALSE only, checked above
      case OID.subjectKeyIdentifier: // ignored: the CA computes method 2 itself
        break;
      case OID.subjectAltName:
        if (want.kind !== 'device') fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', 'organisation certificates carry no subjectAltName', e.oid);
        checkCsrSan(e.value, want);
        break;
      default:
        fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', `the CSR asks for extension ${e.oid}, which the profile does not give`, e.oid);
    }
  }
  if (csr.attributes.length > 0) {
    fail('ERR_ISSUE_CSR_EXTENSION_REFUSED', `the CSR carries attribute ${csr.attributes[0]}, which the profile does not use`, csr.attributes[0]);
  }
  for (const a of csr.subject.attributes) {
    switch (a.oid) {
      case OID.x500UniqueIdentifier:
        if (!(a.tag === 3 && a.bitLength === 64 && a.value === want.entityId)) {
          fail('ERR_ISSUE_CSR_ENTITY_MISMATCH', `the CSR subject names entity ${a.value}, not ${want.entityId}`);
        }
        break;
      case OID.organizationalUnitName: {
        let role: number | undefined;
        try {
          role = roleFromOu(a.value);
        } catch {
          role = undefined;
        }
        if (want.kind === 'device' || role !== want.role) {
          fail('ERR_ISSUE_CSR_ROLE_MISMATCH', `the CSR subject names role OU=${a.value}, the request gives ${want.kind === 'device' ? 'none (device)' : roleToOu(want.role as number)}`);
        }
        break;
      }
      case OID.commonName:
        if (want.kind === 'organisation' && a.value !== want.commonName) {
          fail('ERR_ISSUE_CSR_SUBJECT_MISMATCH', 'the CSR subject asks for a common name the request does not give');
        }
        break;
      default:
        // A device certificate's subject is empty: anything else in a device CSR subject is
        // ignored. An organisation subject holds only CN, OU and x500UniqueIdentifier.
        if (want.kind === 'organisation') fail('ERR_ISSUE_CSR_SUBJECT_MISMATCH', `the CSR subject has attribute ${a.type}, which the profile does not allow`, a.oid);
    }
  }
}

/** The subject key (65-byte point) from exactly one of `csr` and `publicKey`, the CSR checked. */
function subjectKey(o: SubjectKeyOptions, want: CsrExpectation): Uint8Array {
  const hasCsr = o.csr !== undefined;
  const hasKey = o.publicKey !== undefined;
  if (hasCsr === hasKey) fail('ERR_ISSUE_INVALID_REQUEST', 'give exactly one of csr and publicKey');
  if (hasCsr) {
    const csr = parseCsr(o.csr as string | Uint8Array);
    checkCsr(csr, want);
    return csr.publicKeyBytes;
  }
  return publicKeyToRaw(toPublicKey(o.publicKey as PublicKeyInput));
}

function endEntityExtensions(keyUsage: KeyUsageName, policies: readonly string[], san: Uint8Array | undefined, point: Uint8Array, issuer: SmkiCertificate): ExtensionTemplate[] {
  const out: ExtensionTemplate[] = [
    extension(OID.keyUsage, true, keyUsageValue([keyUsage])),
    extension(OID.certificatePolicies, true, certificatePoliciesValue(policies)),
  ];
  if (san !== undefined) out.push(extension(OID.subjectAltName, true, san));
  out.push(extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(point))));
  out.push(extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(issuerKeyId(issuer))));
  return out;
}

/**
 * Issue an organisation certificate (docs/domain.md §2) under the organisation CA. Subject, in order:
 * optional CN (UTF8String), OU = role as two upper-case hex digits (PrintableString),
 * x500UniqueIdentifier = 64-bit BIT STRING of the EUI-64. Validity: `notBefore` to `notBefore` +
 * the environment's `organisationValidityYears`, UTCTime through 2049 and GeneralizedTime from
 * 2050. Extensions, in order: critical keyUsage with the single bit, critical certificatePolicies
 * (the environment's organisation policies), method-2 SKI, AKI = the issuer's SKI. No
 * basicConstraints (docs/domain.md §2 does not list it; an absent extension means not a CA, RFC 5280
 * §4.2.1.9), no extendedKeyUsage, CRL distribution points or AIA. Serial: 16 random octets, top
 * bit clear.
 *
 * With `csr`, the request's proof of possession is verified and it is refused if it asks for
 * anything else: another or a second key usage, a CA flag, another EUI-64, role or common name, a
 * subject attribute other than CN/OU/x500UniqueIdentifier, or an extension or attribute the
 * profile does not give (keyUsage, basicConstraints cA FALSE and subjectKeyIdentifier may be
 * requested; a requested SKI is ignored).
 *
 * @throws SmkiError `ERR_ISSUE_ISSUER_NOT_CA` (the issuer is not an issuing CA with OU 07),
 *   `ERR_ISSUE_ISSUER_KEY_MISMATCH`, `ERR_ISSUE_INVALID_REQUEST` (key usage, role 0 or 7, common
 *   name, csr and publicKey both or neither, no policy, bad date), `ERR_ROLE_UNKNOWN`,
 *   `ERR_EUI64_INVALID`, `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_CSR_MALFORMED`,
 *   `ERR_PEM_INVALID`, `ERR_CSR_SIGNATURE_INVALID`, `ERR_ISSUE_CSR_KEY_USAGE`,
 *   `ERR_ISSUE_CSR_CA_REQUESTED`, `ERR_ISSUE_CSR_ENTITY_MISMATCH`, `ERR_ISSUE_CSR_ROLE_MISMATCH`,
 *   `ERR_ISSUE_CSR_SUBJECT_MISMATCH`, `ERR_ISSUE_CSR_EXTENSION_REFUSED`
 * @see docs/domain.md §2 (Organisation certificate); RFC 5280 §4.1.2.5, §4.2.1
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeySigner } from '@smki/core';
 * import { createCsr, createHierarchy, issueOrganisationCertificate } from '@smki/pki';
 * const { organisationCa } = await createHierarchy();
 * const signer = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
 * const csr = await createCsr({ signer, subject: { role: 2, entityId: '90B3D51F30010000' }, keyUsage: 'digitalSignature' });
 * const cert = await issueOrganisationCertificate({
 *   issuer: organisationCa, csr, role: 2, entityId: '90-B3-D5-1F-30-01-00-00', keyUsage: 'digitalSignature',
 * });
 * console.log(cert.kind, cert.role, cert.entityId); // 'organisation' 2 '90B3D51F30010000'
 * ```
 */
export async function issueOrganisationCertificate(options: IssueOrganisationOptions): Promise<SmkiCertificate> {
  const env = options.environment ?? TEST_ENVIRONMENT;
  const issuer = checkIssuer(options.issuer, 'organisationCa', env);
  checkKeyUsage(options.keyUsage);
  if (!isRemotePartyRole(options.role)) roleToOu(options.role); // throws ERR_ROLE_UNKNOWN
  if (options.role === 0 || options.role === 7) {
    fail('ERR_ISSUE_INVALID_REQUEST', 'roles 0 (root) and 7 (issuing authority) name CA certificates, not organisation certificates', String(options.role));
  }
  const entityId = parseEui64(options.entityId);
  const cn = options.commonName;
  if (cn !== undefined && (typeof cn !== 'string' || cn.length === 0 || cn.length > 64)) {
    fail('ERR_ISSUE_INVALID_REQUEST', 'commonName must be 1 to 64 characters (RFC 5280 ub-common-name)');
  }
  const point = subjectKey(options, {
    kind: 'organisation',
    entityId,
    keyUsage: options.keyUsage,
    role: options.role,
    ...(cn !== undefined ? { commonName: cn } : {}),
  });
  const policies = policiesOrFail(env.organisationPolicies, 'organisation');
  const subject: NameAttributeTemplate[] = [];
  if (cn !== undefined) subject.push(commonNameAttribute(cn, 'utf8'));
  subject.push(organizationalUnitAttribute(roleToOu(options.role), 'printable'));
  subject.push(entityIdAttribute(entityId));
  const notBefore = startOfValidity(options);
  const template: CertificateTemplate = {
    version: 2,
    serialNumber: serialNumber(options.random),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { der: issuer.subject.der },
    notBefore: rfc5280Time(notBefore),
    notAfter: rfc5280Time(addYears(notBefore, env.organisationValidityYears)),
    subject: { attributes: subject },
    subjectPublicKey: { point },
    extensions: endEntityExtensions(options.keyUsage, policies, undefined, point, issuer),
  };
  return sign(template, options.issuer.signer, issuer.publicKeyBytes);
}

/**
 * Issue a device certificate (docs/domain.md §2, GBCS 12) under the device CA: empty subject, notBefore
 * from the clock, notAfter GeneralizedTime `99991231235959Z`, and in order: critical keyUsage
 * with the single bit, critical certificatePolicies with exactly one device policy, critical
 * subjectAltName holding one otherName hardwareModuleName {hwType, hwSerialNum = the 8 EUI-64
 * octets}, method-2 SKI, AKI = the issuer's SKI. No basicConstraints, EKU, CRL distribution
 * points or AIA. Serial: 16 random octets, top bit clear.
 *
 * With `csr`, the proof of possession is verified. The request's subject is ignored unless it
 * conflicts (an x500UniqueIdentifier naming another EUI-64, an OU role); a requested
 * subjectAltName must be hardwareModuleName(s) naming this device and hwType. Other key usages, a
 * CA flag, and extensions or attributes the profile does not give are refused.
 *
 * @throws SmkiError `ERR_ISSUE_ISSUER_NOT_CA` (the issuer is not an issuing CA carrying a device
 *   policy), `ERR_ISSUE_ISSUER_KEY_MISMATCH`, `ERR_ISSUE_INVALID_REQUEST` (key usage, hwType or
 *   policy not allowed by the environment, csr and publicKey both or neither, bad date),
 *   `ERR_EUI64_INVALID`, `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_CSR_MALFORMED`,
 *   `ERR_PEM_INVALID`, `ERR_CSR_SIGNATURE_INVALID`, `ERR_ISSUE_CSR_KEY_USAGE`,
 *   `ERR_ISSUE_CSR_CA_REQUESTED`, `ERR_ISSUE_CSR_ENTITY_MISMATCH`, `ERR_ISSUE_CSR_ROLE_MISMATCH`,
 *   `ERR_ISSUE_CSR_EXTENSION_REFUSED`
 * @see docs/domain.md §2 (Device certificate); RFC 4108 §5; RFC 5280 §4.2.1.6
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createHierarchy, issueDeviceCertificate } from '@smki/pki';
 * const { deviceCa } = await createHierarchy();
 * const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const cert = await issueDeviceCertificate({ issuer: deviceCa, publicKey, entityId: '00-DB-12-34-56-78-90-A0', keyUsage: 'keyAgreement' });
 * console.log(cert.kind, cert.entityId, cert.details.notAfterText); // 'device' '00DB1234567890A0' '99991231235959Z'
 * ```
 */
export async function issueDeviceCertificate(options: IssueDeviceOptions): Promise<SmkiCertificate> {
  const env = options.environment ?? TEST_ENVIRONMENT;
  const issuer = checkIssuer(options.issuer, 'deviceCa', env);
  checkKeyUsage(options.keyUsage);
  const entityId = parseEui64(options.entityId);
  const hwType = options.hwType ?? env.defaultHwType;
  if (!isOid(hwType) || (env.deviceHwTypes.length > 0 && !env.deviceHwTypes.includes(hwType))) {
    fail('ERR_ISSUE_INVALID_REQUEST', 'hwType is not an OID the environment allows', String(hwType).slice(0, 64));
  }
  const policy = options.policy ?? issuer.policies.find((p) => env.devicePolicies.includes(p)) ?? env.devicePolicies[0];
  if (policy === undefined || !isOid(policy) || (env.devicePolicies.length > 0 && !env.devicePolicies.includes(policy))) {
    fail('ERR_ISSUE_INVALID_REQUEST', 'the device policy is not one the environment allows', String(policy).slice(0, 64));
  }
  const point = subjectKey(options, { kind: 'device', entityId, keyUsage: options.keyUsage, hwType });
  const san = hardwareModuleNameSanValue(hwType, eui64ToBytes(entityId));
  const template: CertificateTemplate = {
    version: 2,
    serialNumber: serialNumber(options.random),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { der: issuer.subject.der },
    notBefore: rfc5280Time(startOfValidity(options)),
    notAfter: { date: NOT_AFTER_FOREVER, encoding: 'generalized' },
    subject: { attributes: [] },
    subjectPublicKey: { point },
    extensions: endEntityExtensions(options.keyUsage, [policy], san, point, issuer),
  };
  return sign(template, options.issuer.signer, issuer.publicKeyBytes);
}
