/**
 * The SMKI certificate profile linter: every rule of docs/domain.md §2 and the RFC 5280 §4 rules the
 * profile relies on, each with its own `ERR_PROFILE_*` code.
 *
 * Lint reads the facts {@link parseCertificate} recorded (it never parses again), so a path
 * validator can lint every certificate of a path cheaply; results are cached per (certificate,
 * environment, expected kind) and frozen.
 *
 * Severities: every profile break is an `error`, except two tolerated quirks that docs/domain.md §2 and
 * RFC 5280 allow: an explicit NULL in the ecdsa-with-SHA256 parameters (docs/domain.md §2: tolerate when
 * parsing, never emit) and an authorityKeyIdentifier on the self-signed root that names the
 * root's own key (RFC 5280 §4.2.1.1 lets a self-signed certificate carry one; SMKI roots are
 * observed without). A root AKI that names another key is an error
 * (`ERR_PROFILE_AKI_ROOT_MISMATCH`): the certificate then contradicts its own signature.
 * @module
 */
import { equalBytes, isRemotePartyRole, SmkiError, toHex, verifyDer, type Finding, type KeyUsageName, type SmkiErrorCode } from '@smki/core';
import { OID, TEST_ENVIRONMENT, type SmkiEnvironment } from './environment.js';
import { KNOWN_EXTENSIONS } from './internal/extensions.js';
import { keyIdMethod2 } from './internal/keyid.js';
import { toCertificate } from './parse.js';
import type { CertificateInput, CertificateKind, RawExtension, SmkiCertificate } from './types.js';

/**
 * Options of {@link lintCertificate} and {@link certificateProfile}.
 * @see docs/domain.md §2 (production policy OIDs are per-environment configuration)
 */
export interface LintOptions {
  /**
   * The environment whose policy OIDs and hwTypes are allowed. Default: {@link TEST_ENVIRONMENT}.
   * Treated as immutable (results are cached per environment object; `defineEnvironment`
   * freezes what it returns).
   */
  readonly environment?: SmkiEnvironment;
  /**
   * Lint as this kind even if the certificate's content classifies it otherwise (path validation
   * knows the level of each certificate: the anchor is the root, the next one an issuing CA).
   * Default: the certificate's own {@link SmkiCertificate.kind}.
   */
  readonly expectedKind?: CertificateKind;
}

/**
 * The SMKI profile a certificate is linted against: the kind refined by the PKI it belongs to.
 * An issuing CA is an organisation CA (OCA) when its first recognised policy OID is an
 * organisation policy, a device CA (DCA) when it is a device policy, and plain `issuingCa` when
 * it carries no policy the environment knows (lint then checks no role).
 * @see docs/domain.md §2 (OCA: OU 07 and the organisation policy; DCA: the device policy)
 */
export type SmkiProfile = 'root' | 'organisationCa' | 'deviceCa' | 'issuingCa' | 'organisation' | 'device' | 'unknown';


/** policyConstraints (RFC 5280 §4.2.1.11). */
const POLICY_CONSTRAINTS_OID = '2.5.29.36';

// Keyed by OIDs read from certificates: Maps, so no key (`__proto__`, `constructor`, …) can reach
// an inherited property.

/** Extensions an end-entity certificate must not carry (docs/domain.md §2). */
const FORBIDDEN_ON_END_ENTITY: ReadonlyMap<string, string> = new Map([
  [OID.extKeyUsage, 'extendedKeyUsage'],
  [OID.cRLDistributionPoints, 'cRLDistributionPoints'],
  [OID.authorityInfoAccess, 'authorityInfoAccess'],
]);

const EXTENSION_NAMES: ReadonlyMap<string, string> = new Map([
  [OID.keyUsage, 'keyUsage'],
  [OID.basicConstraints, 'basicConstraints'],
  [OID.certificatePolicies, 'certificatePolicies'],
  [OID.subjectKeyIdentifier, 'subjectKeyIdentifier'],
  [OID.authorityKeyIdentifier, 'authorityKeyIdentifier'],
  [OID.subjectAltName, 'subjectAltName'],
  [POLICY_CONSTRAINTS_OID, 'policyConstraints'],
  ...FORBIDDEN_ON_END_ENTITY,
]);

/** The kinds `expectedKind` may name (strings only, so `has` is false for any other value). */
const CERTIFICATE_KINDS: ReadonlySet<unknown> = new Set<CertificateKind>(['root', 'issuingCa', 'organisation', 'device', 'unknown']);

const ROLE_HEX = /^[0-9A-F]{2}$/;
/** UTCTime covers 1950–2049 (RFC 5280 §4.1.2.5). */
const UTC_TIME_FIRST_YEAR = 1950;
const GENERALIZED_TIME_FIRST_YEAR = 2050;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_UTF8_STRING = 0x0c;
const TAG_BIT_STRING = 0x03;
const DEVICE_NOT_AFTER = '99991231235959Z';

function extensionName(oid: string): string {
  return EXTENSION_NAMES.get(oid) ?? oid;
}

/** Results per certificate, environment and the kind linted as (`expectedKind`, or the certificate's own). */
const cache = new WeakMap<SmkiCertificate, WeakMap<SmkiEnvironment, Map<string, readonly Finding[]>>>();

/** What the checks share while linting one certificate. */
interface Ctx {
  readonly cert: SmkiCertificate;
  readonly env: SmkiEnvironment;
  readonly kind: CertificateKind;
  readonly profile: SmkiProfile;
  /** The first occurrence of each extension, by OID. */
  readonly ext: ReadonlyMap<string, RawExtension>;
  /** Extensions that did not decode (their content rules are skipped, not reported twice). */
  readonly malformed: ReadonlySet<string>;
  readonly out: Finding[];
}

function add(ctx: Ctx, code: SmkiErrorCode, message: string, severity: Finding['severity'] = 'error'): void {
  ctx.out.push(Object.freeze({ code, message, severity }));
}

/** Run one rule group; if it throws (it should not), fail closed with an error finding of its code. */
function guard(ctx: Ctx, code: SmkiErrorCode, field: string, rule: (ctx: Ctx) => void): void {
  try {
    rule(ctx);
  } catch (e) {
    add(ctx, code, `${field}: could not be checked (${e instanceof Error ? e.message.slice(0, 120) : 'internal error'})`);
  }
}

function isEndEntity(kind: CertificateKind): boolean {
  return kind === 'organisation' || kind === 'device';
}

function isCa(kind: CertificateKind): boolean {
  return kind === 'root' || kind === 'issuingCa';
}

function profileFor(cert: SmkiCertificate, kind: CertificateKind, env: SmkiEnvironment): SmkiProfile {
  if (kind !== 'issuingCa') return kind;
  for (const p of cert.policies) {
    if (env.organisationPolicies.includes(p)) return 'organisationCa';
    if (env.devicePolicies.includes(p)) return 'deviceCa';
  }
  return 'issuingCa';
}

/**
 * The profile a certificate is linted against, from its kind (or `options.expectedKind`) and,
 * for an issuing CA, its policy OIDs read against the environment. Path validation uses it to
 * tell an organisation CA from a device CA (`ERR_CHAIN_PKI_MISMATCH`).
 *
 * @param cert - a certificate from {@link parseCertificate} (or PEM/DER, which is parsed)
 * @param options - environment (default {@link TEST_ENVIRONMENT}) and expected kind
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID` when PEM/DER input does not parse;
 *   `ERR_INVALID_ARGUMENT` for an object {@link parseCertificate} did not make, or an
 *   `expectedKind` that is not a {@link CertificateKind}
 * @see docs/domain.md §2 (OCA: the organisation policy OID; DCA: the device policy OID)
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { certificateProfile, parseCertificate } from '@smki/pki';
 * const ca = parseCertificate(readFileSync('oca.pem', 'utf8'));
 * if (certificateProfile(ca) === 'organisationCa') console.log('issues organisation certificates');
 * ```
 */
export function certificateProfile(cert: CertificateInput, options: LintOptions = {}): SmkiProfile {
  const c = toCertificate(cert);
  return profileFor(c, checkExpectedKind(options.expectedKind) ?? c.kind, options.environment ?? TEST_ENVIRONMENT);
}

/** `expectedKind` as given, after checking that it names a {@link CertificateKind}. */
function checkExpectedKind(kind: unknown): CertificateKind | undefined {
  if (kind === undefined) return undefined;
  if (!CERTIFICATE_KINDS.has(kind)) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'expectedKind must be a CertificateKind', { detail: String(kind).slice(0, 40) });
  }
  return kind as CertificateKind;
}

/**
 * Lint a certificate against the SMKI profile of its kind (docs/domain.md §2) and the RFC 5280 §4 rules
 * the profile relies on. Returns one finding per broken rule, each with its own stable
 * `ERR_PROFILE_*` code, a message that names the field, and a severity: `error` for a profile
 * break, `warning` for a tolerated quirk (an explicit NULL in the ecdsa-with-SHA256 parameters,
 * an authorityKeyIdentifier on the self-signed root). A conformant certificate gives `[]`.
 *
 * An authorityKeyIdentifier on the self-signed root stays a warning (`ERR_PROFILE_AKI_ON_ROOT`):
 * RFC 5280 §4.2.1.1 allows it ("where a CA distributes its public key in the form of a
 * self-signed certificate, the authority key identifier MAY be omitted", so it may also be
 * present), it changes nothing a relying party decides (the root is a trust anchor; its AKI is
 * never used to find an issuer), and refusing it would reject conforming roots from other
 * PKIs. The SMKI profile omits it on the root, hence the warning. Only an AKI that names a key
 * other than the root's own is an error (`ERR_PROFILE_AKI_ROOT_MISMATCH`).
 *
 * What is checked, by kind:
 * - all: v3; id-ecPublicKey on P-256 with a valid uncompressed point; ecdsa-with-SHA256 without
 *   parameters, equal in tbsCertificate and outside; serial 16 octets and positive; validity in
 *   order and encoded as RFC 5280 §4.1.2.5 requires; no duplicate, undecodable or unknown
 *   critical extension; keyUsage and certificatePolicies present and critical, policy OIDs allowed
 *   by the environment for the kind, none twice; subjectKeyIdentifier non-critical, 8 octets,
 *   method 2 of the key; authorityKeyIdentifier non-critical, `[0] keyIdentifier` only (8
 *   octets), present on all but the root; keyCertSign only with cA TRUE (RFC 5280 §4.2.1.3,
 *   `ERR_PROFILE_KEY_CERT_SIGN_NOT_CA`, for certificates not linted as a CA); a policyConstraints
 *   extension critical (RFC 5280 §4.2.1.11, `ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL`; the
 *   toolkit does not process it, so a critical one is an unknown critical extension).
 * - root: self-issued and self-signed (signature verified, high-S accepted), OU `00`, critical
 *   basicConstraints cA TRUE, keyUsage exactly keyCertSign|cRLSign; an AKI, if any, names its own
 *   key.
 * - issuing CA: as the root but not self-issued and pathLenConstraint 0; an organisation CA
 *   (organisation policy) has OU `07`; a device CA (device policy) has no role requirement.
 * - organisation: OU of two upper-case hex digits naming a known role, x500UniqueIdentifier of
 *   64 bits, optional UTF8String CN, nothing else; exactly one of digitalSignature/keyAgreement;
 *   no cA, extendedKeyUsage, cRLDistributionPoints or authorityInfoAccess.
 * - device: empty subject; notAfter GeneralizedTime `99991231235959Z`; exactly one policy;
 *   critical subjectAltName of exactly one otherName hardwareModuleName with an 8-octet hwSerialNum
 *   and a hwType the environment allows; key usage and forbidden extensions as organisation.
 * - unknown kind: `ERR_PROFILE_UNKNOWN_KIND` plus the rules for all certificates.
 *
 * A decimal (or lower-case) role such as `OU=2` is an `ERR_PROFILE_ORG_ROLE_FORMAT` error: the
 * profile says two upper-case hex digits, and parsing already reads it leniently for callers
 * that choose to accept it.
 *
 * Cheap: no parsing (a parsed certificate is used as it is), the self-signature is verified only
 * for roots, and results are cached per (certificate, environment, expected kind). Never throws
 * on a parsed certificate: a rule that fails unexpectedly becomes an error finding of its code
 * (fail closed).
 *
 * @param cert - a certificate from {@link parseCertificate}, or PEM/DER (parsed here)
 * @param options - environment (default {@link TEST_ENVIRONMENT}) and the kind to lint as
 * @returns the findings, frozen (an empty frozen array when the certificate is conformant)
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID` when PEM/DER input does not parse;
 *   `ERR_INVALID_ARGUMENT` for an object {@link parseCertificate} did not make, or an
 *   `expectedKind` that is not a {@link CertificateKind}
 * @see docs/domain.md §2; RFC 5280 §4.1 (fields), §4.2 (extensions), §4.2.1.1 (AKI), §4.2.1.3 (keyCertSign), §4.2.1.11
 *   (policyConstraints); RFC 5759; RFC 4108 §5
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { lintCertificate } from '@smki/pki';
 * const findings = lintCertificate(readFileSync('device.pem', 'utf8'));
 * for (const f of findings) console.log(f.severity, f.code, f.message);
 * const conformant = findings.every((f) => f.severity === 'warning');
 * ```
 */
export function lintCertificate(cert: CertificateInput, options: LintOptions = {}): readonly Finding[] {
  const c = toCertificate(cert);
  const env = options.environment ?? TEST_ENVIRONMENT;
  // The findings depend only on the certificate, the environment and this kind.
  const kind = checkExpectedKind(options.expectedKind) ?? c.kind;
  let byEnv = cache.get(c);
  if (byEnv === undefined) {
    byEnv = new WeakMap();
    cache.set(c, byEnv);
  }
  let byKind = byEnv.get(env);
  if (byKind === undefined) {
    byKind = new Map();
    byEnv.set(env, byKind);
  }
  const hit = byKind.get(kind);
  if (hit !== undefined) return hit;
  const findings = Object.freeze(run(c, env, kind));
  byKind.set(kind, findings);
  return findings;
}

function run(cert: SmkiCertificate, env: SmkiEnvironment, kind: CertificateKind): Finding[] {
  const ext = new Map<string, RawExtension>();
  for (const e of cert.extensions) if (!ext.has(e.oid)) ext.set(e.oid, e);
  const malformed = new Set<string>();
  for (const e of cert.details.extensionErrors) if (e.detail !== 'duplicate extension') malformed.add(e.oid);
  const ctx: Ctx = { cert, env, kind, profile: profileFor(cert, kind, env), ext, malformed, out: [] };

  if (kind === 'unknown') {
    add(ctx, 'ERR_PROFILE_UNKNOWN_KIND', 'kind: the certificate matches no SMKI certificate kind (root, issuing CA, organisation, device)');
  }
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_VERSION', 'version', checkVersion);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_KEY_ALGORITHM', 'subjectPublicKeyInfo', checkKey);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_SIGNATURE_ALGORITHM', 'signatureAlgorithm', checkSignatureAlgorithm);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_SERIAL_LENGTH', 'serialNumber', checkSerial);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_VALIDITY_ENCODING', 'validity', checkValidity);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_EXTENSION_MALFORMED', 'extensions', checkExtensionList);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_KEY_USAGE_INVALID', 'keyUsage', checkKeyUsage);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA', 'keyUsage.keyCertSign', checkKeyCertSign);
  guard(ctx, 'ERR_PROFILE_POLICY_NOT_ALLOWED', 'certificatePolicies', checkPolicies);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL', 'policyConstraints', checkPolicyConstraints);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_SKI_METHOD', 'subjectKeyIdentifier', checkSubjectKeyId);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_AKI_FORM', 'authorityKeyIdentifier', checkAuthorityKeyId);
  // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
  guard(ctx, 'ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', 'basicConstraints', checkBasicConstraints);
  switch (ctx.profile) {
    case 'root':
      // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
      guard(ctx, 'ERR_PROFILE_ROOT_NOT_SELF_SIGNED', 'root', checkRoot);
      break;
    case 'organisationCa':
      // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
      guard(ctx, 'ERR_PROFILE_OCA_ROLE', 'subject OU', checkOrganisationCa);
      break;
    case 'organisation':
      // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
      guard(ctx, 'ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE', 'subject', checkOrganisationSubject);
      break;
    case 'device':
      // Stryker disable next-line StringLiteral: equivalent; the code and field are reported only if this rule throws, and it reads only the parsed certificate, which it cannot fail on
      guard(ctx, 'ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY', 'subject', checkDeviceSubject);
      guard(ctx, 'ERR_PROFILE_DEVICE_SAN_FORM', 'subjectAltName', checkDeviceAltName);
      break;
    // A device CA, a plain issuing CA and an unknown kind have no rules of their own.
  }
  return ctx.out;
}

// ---- all certificates ------------------------------------------------------------------------

/** RFC 5280 §4.1.2.1; docs/domain.md §2 (X.509 v3). */
function checkVersion(ctx: Ctx): void {
  const v = ctx.cert.details.version;
  if (v !== 2) add(ctx, 'ERR_PROFILE_VERSION', `version: encoded as ${v} (v${v + 1}), not 2 (v3)`);
}

/** docs/domain.md §2 (P-256 only, uncompressed points); RFC 5480 §2.1.1, §2.2. */
function checkKey(ctx: Ctx): void {
  const d = ctx.cert.details;
  if (d.publicKeyAlgorithm !== OID.ecPublicKey) {
    add(ctx, 'ERR_PROFILE_KEY_ALGORITHM', `subjectPublicKeyInfo.algorithm: ${d.publicKeyAlgorithm} is not id-ecPublicKey`);
    return;
  }
  if (d.publicKeyCurve !== OID.p256) {
    add(ctx, 'ERR_PROFILE_KEY_CURVE', `subjectPublicKeyInfo.algorithm.parameters: ${d.publicKeyCurve ?? 'no named curve'} is not P-256 (${OID.p256})`);
    return;
  }
  if (ctx.cert.publicKey === undefined) {
    const b = ctx.cert.publicKeyBytes;
    const what = b.length === 33 && (b[0] === 2 || b[0] === 3) ? 'a compressed point' : b.length === 65 && b[0] === 4 ? 'not on the curve' : `${b.length} octets`;
    add(ctx, 'ERR_PROFILE_KEY_POINT', `subjectPublicKey: not a valid uncompressed P-256 point (${what})`);
  }
}

/** docs/domain.md §2 (ecdsa-with-SHA256 only, tolerate an explicit NULL); RFC 5758 §3.2; RFC 5280 §4.1.1.2. */
function checkSignatureAlgorithm(ctx: Ctx): void {
  const c = ctx.cert;
  const d = c.details;
  if (c.signatureAlgorithm !== OID.ecdsaWithSha256) {
    add(ctx, 'ERR_PROFILE_SIGNATURE_ALGORITHM', `signatureAlgorithm: ${c.signatureAlgorithm} is not ecdsa-with-SHA256 (${OID.ecdsaWithSha256})`);
  } else if (d.signatureAlgorithmParams === 'null') {
    add(ctx, 'ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', 'signatureAlgorithm.parameters: an explicit NULL (RFC 5758 says absent; tolerated)', 'warning');
  } else if (d.signatureAlgorithmParams === 'other') {
    add(ctx, 'ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', 'signatureAlgorithm.parameters: present (RFC 5758 says absent)');
  }
  if (!d.signatureAlgorithmsMatch) {
    add(ctx, 'ERR_PROFILE_SIGNATURE_ALGORITHM_MISMATCH', `tbsCertificate.signature: ${d.tbsSignatureAlgorithm} (with its parameters) differs from signatureAlgorithm ${c.signatureAlgorithm}`);
  }
}

/** docs/domain.md §2 (16 octets, top bit clear); RFC 5280 §4.1.2.2 (positive, at most 20 octets). */
function checkSerial(ctx: Ctx): void {
  const s = ctx.cert.details.serialBytes;
  if (s.length !== 16) add(ctx, 'ERR_PROFILE_SERIAL_LENGTH', `serialNumber: ${s.length} octets, not 16`);
  const negative = ((s[0] ?? 0) & 0x80) !== 0;
  if (negative || s.every((b) => b === 0)) {
    add(ctx, 'ERR_PROFILE_SERIAL_NOT_POSITIVE', `serialNumber: ${negative ? 'negative' : 'zero'}, not a positive integer`);
  }
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function checkValidity(ctx: Ctx): void {
  const c = ctx.cert;
  const d = c.details;
  if (c.notBefore.getTime() > c.notAfter.getTime()) {
    add(ctx, 'ERR_PROFILE_VALIDITY_ORDER', `validity: notBefore ${c.notBefore.toISOString()} is after notAfter ${c.notAfter.toISOString()}`);
  }
  const times = [
    ['notBefore', c.notBefore, d.notBeforeTag],
    ['notAfter', c.notAfter, d.notAfterTag],
  ] as const;
  for (const [field, date, tag] of times) {
    const year = date.getUTCFullYear();
    // (A UTCTime for 2050 or later cannot occur: its two-digit year reads as 1950–2049.)
    if (tag === TAG_GENERALIZED_TIME && year >= UTC_TIME_FIRST_YEAR && year < GENERALIZED_TIME_FIRST_YEAR) {
      add(ctx, 'ERR_PROFILE_VALIDITY_ENCODING', `validity.${field}: GeneralizedTime for ${year}; dates through 2049 must be UTCTime`);
    }
  }
}

/** RFC 5280 §4.2 (each extension at most once; unknown critical extensions; decodable values); docs/domain.md §2 (forbidden on end entities). */
function checkExtensionList(ctx: Ctx): void {
  const reported = new Set<string>();
  for (const e of ctx.cert.details.extensionErrors) {
    const key = `${e.oid}\u0000${e.detail}`;
    if (reported.has(key)) continue;
    reported.add(key);
    if (e.detail === 'duplicate extension') {
      add(ctx, 'ERR_PROFILE_EXTENSION_DUPLICATE', `extensions: ${extensionName(e.oid)} (${e.oid}) appears more than once`);
    } else {
      add(ctx, 'ERR_PROFILE_EXTENSION_MALFORMED', `extensions: ${extensionName(e.oid)} (${e.oid}) does not decode: ${e.detail}`);
    }
  }
  const endEntity = isEndEntity(ctx.kind);
  for (const e of ctx.ext.values()) {
    const forbidden = FORBIDDEN_ON_END_ENTITY.get(e.oid);
    if (endEntity && forbidden !== undefined) {
      add(ctx, 'ERR_PROFILE_EXTENSION_FORBIDDEN', `extensions: ${forbidden} (${e.oid}) is not allowed on an end-entity certificate`);
    } else if (e.critical && !KNOWN_EXTENSIONS.has(e.oid)) {
      add(ctx, 'ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL', `extensions: ${extensionName(e.oid)} (${e.oid}) is critical and not one the SMKI profile knows`);
    }
  }
}

const CA_KEY_USAGE: readonly KeyUsageName[] = ['keyCertSign', 'cRLSign'];

/** docs/domain.md §2 (keyUsage present, critical; CA keyCertSign|cRLSign; end entity one of DS/KA); RFC 5280 §4.2.1.3. */
function checkKeyUsage(ctx: Ctx): void {
  const e = ctx.ext.get(OID.keyUsage);
  if (e === undefined) {
    add(ctx, 'ERR_PROFILE_KEY_USAGE_MISSING', 'keyUsage: absent');
    return;
  }
  if (!e.critical) add(ctx, 'ERR_PROFILE_KEY_USAGE_NOT_CRITICAL', 'keyUsage: not critical');
  if (ctx.malformed.has(OID.keyUsage)) return;
  const bits = ctx.cert.keyUsage;
  const list = bits.length === 0 ? 'no bits' : bits.join('|');
  if (isCa(ctx.kind)) {
    if (bits.length !== CA_KEY_USAGE.length || !CA_KEY_USAGE.every((b) => bits.includes(b))) {
      add(ctx, 'ERR_PROFILE_KEY_USAGE_INVALID', `keyUsage: ${list}, not exactly keyCertSign|cRLSign for a CA`);
    }
  } else if (isEndEntity(ctx.kind)) {
    const eeBits = bits.filter((b) => b === 'digitalSignature' || b === 'keyAgreement');
    if (eeBits.length !== 1) {
      add(ctx, 'ERR_PROFILE_KEY_USAGE_NOT_SINGLE', `keyUsage: ${list}, not exactly one of digitalSignature and keyAgreement`);
    }
    // keyCertSign has its own rule and code (checkKeyCertSign).
    const others = bits.filter((b) => b !== 'digitalSignature' && b !== 'keyAgreement' && b !== 'keyCertSign');
    if (others.length > 0) {
      add(ctx, 'ERR_PROFILE_KEY_USAGE_INVALID', `keyUsage: ${others.join('|')} not allowed on an end-entity certificate`);
    }
  }
}

/**
 * RFC 5280 §4.2.1.3: "If the keyCertSign bit is asserted, then the cA bit in the basic constraints
 * extension MUST also be asserted." Checked for every certificate not linted as a CA (an end
 * entity, or one that matches no kind); for a CA kind a missing or FALSE cA is already its own
 * finding (`ERR_PROFILE_BASIC_CONSTRAINTS_MISSING` / `_NOT_CA`).
 */
function checkKeyCertSign(ctx: Ctx): void {
  if (isCa(ctx.kind) || ctx.malformed.has(OID.keyUsage)) return;
  if (ctx.cert.keyUsage.includes('keyCertSign') && ctx.cert.basicConstraints?.ca !== true) {
    add(ctx, 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA', 'keyUsage: keyCertSign asserted without basicConstraints cA TRUE (RFC 5280 §4.2.1.3)');
  }
}

/**
 * RFC 5280 §4.2.1.11: "Conforming CAs MUST mark this extension as critical." The toolkit does not
 * process policyConstraints (SMKI certificates do not carry it), so a critical one is an unknown
 * critical extension and a non-critical one breaks this rule: either way it is refused.
 */
function checkPolicyConstraints(ctx: Ctx): void {
  const e = ctx.ext.get(POLICY_CONSTRAINTS_OID);
  if (e !== undefined && !e.critical) {
    add(ctx, 'ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL', 'policyConstraints: not critical (RFC 5280 §4.2.1.11: MUST be critical)');
  }
}

function allowedPolicies(ctx: Ctx): { readonly oids: readonly string[]; readonly what: string } {
  const env = ctx.env;
  switch (ctx.profile) {
    case 'organisation':
    case 'organisationCa':
      return { oids: env.organisationPolicies, what: 'an organisation' };
    case 'device':
    case 'deviceCa':
      return { oids: env.devicePolicies, what: 'a device' };
    case 'root':
      return env.rootPolicies.length > 0
        ? { oids: env.rootPolicies, what: 'a root' }
        : { oids: [...env.organisationPolicies, ...env.devicePolicies], what: 'an organisation or device' };
    default:
      return { oids: [...env.rootPolicies, ...env.organisationPolicies, ...env.devicePolicies], what: 'an SMKI' };
  }
}

/** docs/domain.md §2 (certificatePolicies present, critical, environment OIDs; device: exactly one); RFC 5280 §4.2.1.4 (no OID twice). */
function checkPolicies(ctx: Ctx): void {
  const e = ctx.ext.get(OID.certificatePolicies);
  if (e === undefined) {
    add(ctx, 'ERR_PROFILE_POLICIES_MISSING', 'certificatePolicies: absent');
    return;
  }
  if (!e.critical) add(ctx, 'ERR_PROFILE_POLICIES_NOT_CRITICAL', 'certificatePolicies: not critical');
  if (ctx.malformed.has(OID.certificatePolicies)) return;
  const policies = ctx.cert.policies;
  if (policies.length === 0) {
    add(ctx, 'ERR_PROFILE_POLICIES_MISSING', 'certificatePolicies: holds no policy OID');
    return;
  }
  const distinct = new Set(policies);
  if (distinct.size !== policies.length) {
    const dup = policies.filter((p, i) => policies.indexOf(p) !== i);
    add(ctx, 'ERR_PROFILE_POLICY_DUPLICATE', `certificatePolicies: ${[...new Set(dup)].join(', ')} appears more than once`);
  }
  const allowed = allowedPolicies(ctx);
  for (const p of distinct) {
    if (!allowed.oids.includes(p)) {
      add(ctx, 'ERR_PROFILE_POLICY_NOT_ALLOWED', `certificatePolicies: ${p} is not ${allowed.what} policy of environment '${ctx.env.name}'`);
    }
  }
  if (ctx.kind === 'device' && distinct.size !== 1) {
    add(ctx, 'ERR_PROFILE_POLICY_COUNT', `certificatePolicies: ${distinct.size} policy OIDs, a device certificate has exactly one`);
  }
}

/** docs/domain.md §2 (non-critical, 8 octets, method 2); RFC 5280 §4.2.1.2. */
function checkSubjectKeyId(ctx: Ctx): void {
  const e = ctx.ext.get(OID.subjectKeyIdentifier);
  if (e === undefined) {
    add(ctx, 'ERR_PROFILE_SKI_MISSING', 'subjectKeyIdentifier: absent');
    return;
  }
  if (e.critical) add(ctx, 'ERR_PROFILE_SKI_CRITICAL', 'subjectKeyIdentifier: critical (RFC 5280 §4.2.1.2: MUST be non-critical)');
  const ski = ctx.cert.subjectKeyId;
  // Undefined exactly when the value did not decode (ERR_PROFILE_EXTENSION_MALFORMED already).
  if (ski === undefined) return;
  if (ski.length !== 16) {
    add(ctx, 'ERR_PROFILE_SKI_LENGTH', `subjectKeyIdentifier: ${ski.length / 2} octets, not 8`);
    return;
  }
  const expected = toHex(keyIdMethod2(ctx.cert.publicKeyBytes));
  if (ski !== expected) {
    add(ctx, 'ERR_PROFILE_SKI_METHOD', `subjectKeyIdentifier: ${ski} is not RFC 5280 §4.2.1.2 method 2 of the subject public key (${expected})`);
  }
}

/** docs/domain.md §2 (keyIdentifier only, non-critical, omitted only on the root); RFC 5280 §4.2.1.1. */
function checkAuthorityKeyId(ctx: Ctx): void {
  const e = ctx.ext.get(OID.authorityKeyIdentifier);
  if (e === undefined) {
    if (ctx.kind !== 'root') add(ctx, 'ERR_PROFILE_AKI_MISSING', 'authorityKeyIdentifier: absent on a certificate that is not the self-signed root');
    return;
  }
  if (ctx.kind === 'root') {
    add(ctx, 'ERR_PROFILE_AKI_ON_ROOT', 'authorityKeyIdentifier: present on the self-signed root (RFC 5280 allows it; SMKI roots omit it)', 'warning');
    // RFC 5280 §4.2.1.1: the keyIdentifier identifies the key that verifies the signature, for a
    // self-signed root its own (its SKI, or method 2 of its key when it has none).
    const aki = ctx.cert.authorityKeyId;
    const own = ctx.cert.subjectKeyId ?? toHex(keyIdMethod2(ctx.cert.publicKeyBytes));
    // Only for a self-issued certificate: one that is not is already ERR_PROFILE_ROOT_NOT_SELF_SIGNED.
    const selfIssued = equalBytes(ctx.cert.subject.der, ctx.cert.issuer.der);
    if (aki !== undefined && selfIssued && !ctx.malformed.has(OID.authorityKeyIdentifier) && aki !== own) {
      add(ctx, 'ERR_PROFILE_AKI_ROOT_MISMATCH', `authorityKeyIdentifier: ${aki} on the self-signed root is not its own key identifier ${own}`);
    }
  }
  if (e.critical) add(ctx, 'ERR_PROFILE_AKI_CRITICAL', 'authorityKeyIdentifier: critical (RFC 5280 §4.2.1.1: MUST be non-critical)');
  const fields = ctx.cert.details.authorityKeyIdFields;
  // Undefined exactly when the value did not decode (ERR_PROFILE_EXTENSION_MALFORMED already).
  if (fields === undefined) return;
  const problems: string[] = [];
  if (!fields.keyIdentifier) problems.push('no keyIdentifier');
  if (fields.issuer) problems.push('authorityCertIssuer present');
  if (fields.serial) problems.push('authorityCertSerialNumber present');
  const aki = ctx.cert.authorityKeyId;
  if (aki !== undefined && aki.length !== 16) problems.push(`keyIdentifier of ${aki.length / 2} octets, not 8`);
  if (problems.length > 0) add(ctx, 'ERR_PROFILE_AKI_FORM', `authorityKeyIdentifier: ${problems.join(', ')}; must be [0] keyIdentifier (8 octets) only`);
}

/** docs/domain.md §2 (CAs: critical cA TRUE, issuing CAs pathLen 0); RFC 5280 §4.2.1.9. */
function checkBasicConstraints(ctx: Ctx): void {
  const e = ctx.ext.get(OID.basicConstraints);
  const bc = ctx.cert.basicConstraints;
  if (isCa(ctx.kind)) {
    if (e === undefined) {
      add(ctx, 'ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', 'basicConstraints: absent on a CA certificate');
      return;
    }
    if (!e.critical) add(ctx, 'ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CRITICAL', 'basicConstraints: not critical on a CA certificate');
    // Undefined exactly when the value did not decode (ERR_PROFILE_EXTENSION_MALFORMED already).
    if (bc === undefined) return;
    if (!bc.ca) {
      add(ctx, 'ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CA', 'basicConstraints.cA: FALSE on a CA certificate');
      return;
    }
    if (ctx.kind === 'issuingCa' && bc.pathLength !== 0) {
      add(ctx, 'ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH', `basicConstraints.pathLenConstraint: ${bc.pathLength ?? 'absent'}, an issuing CA has 0`);
    }
  } else if (isEndEntity(ctx.kind) && bc?.ca === true) {
    add(ctx, 'ERR_PROFILE_END_ENTITY_IS_CA', 'basicConstraints.cA: TRUE on an end-entity certificate');
  }
}

// ---- per kind --------------------------------------------------------------------------------

function ouValues(cert: SmkiCertificate): string[] {
  return cert.subject.attributes.filter((a) => a.oid === OID.organizationalUnitName).map((a) => a.value);
}

/** docs/domain.md §2 (root: self-signed, OU = 00); RFC 5280 §6.1 (self-issued: subject equals issuer). */
function checkRoot(ctx: Ctx): void {
  const c = ctx.cert;
  if (!equalBytes(c.subject.der, c.issuer.der)) {
    add(ctx, 'ERR_PROFILE_ROOT_NOT_SELF_SIGNED', `issuer: ${c.issuer.text} differs from subject ${c.subject.text}; the root is self-issued`);
  } else if (c.publicKey !== undefined && c.signatureAlgorithm === OID.ecdsaWithSha256) {
    // Without a usable key or with another algorithm the key or algorithm finding already fails it.
    if (!verifyDer(c.publicKey, c.tbsDer, c.signature)) {
      add(ctx, 'ERR_PROFILE_ROOT_NOT_SELF_SIGNED', 'signatureValue: does not verify under the root\'s own public key');
    }
  }
  const ous = ouValues(c);
  if (ous.length !== 1 || ous[0] !== '00') {
    add(ctx, 'ERR_PROFILE_ROOT_ROLE', `subject OU: ${ous.length === 0 ? 'absent' : ous.map((o) => JSON.stringify(o)).join(', ')}, the root has exactly OU "00"`);
  }
}

/** docs/domain.md §2 (OCA: OU = 07, issuing authority). */
function checkOrganisationCa(ctx: Ctx): void {
  const ous = ouValues(ctx.cert);
  if (ous.length !== 1 || ous[0] !== '07') {
    add(ctx, 'ERR_PROFILE_OCA_ROLE', `subject OU: ${ous.length === 0 ? 'absent' : ous.map((o) => JSON.stringify(o)).join(', ')}, an organisation CA has exactly OU "07"`);
  }
}

/** docs/domain.md §2 (organisation subject: optional UTF8String CN, OU role, x500UniqueIdentifier of 64 bits, nothing else). */
function checkOrganisationSubject(ctx: Ctx): void {
  const attrs = ctx.cert.subject.attributes;
  const seen = new Set<string>();
  let ou: (typeof attrs)[number] | undefined;
  let uid: (typeof attrs)[number] | undefined;
  for (const a of attrs) {
    const known = a.oid === OID.organizationalUnitName || a.oid === OID.x500UniqueIdentifier || a.oid === OID.commonName;
    if (!known) {
      add(ctx, 'ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE', `subject ${a.type}: not allowed in an organisation subject (CN, OU and x500UniqueIdentifier only)`);
      continue;
    }
    if (seen.has(a.oid)) {
      add(ctx, 'ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE', `subject ${a.type}: appears more than once`);
      continue;
    }
    seen.add(a.oid);
    if (a.oid === OID.organizationalUnitName) ou = a;
    else if (a.oid === OID.x500UniqueIdentifier) uid = a;
    else if (a.tag !== TAG_UTF8_STRING) {
      add(ctx, 'ERR_PROFILE_ORG_CN_ENCODING', `subject CN: ASN.1 tag ${a.tag}, not UTF8String (12)`);
    }
  }
  if (ou === undefined) {
    add(ctx, 'ERR_PROFILE_ORG_ROLE_MISSING', 'subject OU: absent (the Remote Party Role)');
  } else if (!ROLE_HEX.test(ou.value)) {
    // Not two upper-case hex digits, so the role was read (if at all) from a lenient spelling.
    const lenient = ctx.cert.role !== undefined ? ` (read leniently as role ${ctx.cert.role})` : '';
    add(ctx, 'ERR_PROFILE_ORG_ROLE_FORMAT', `subject OU: ${JSON.stringify(ou.value)} is not exactly two upper-case hex digits${lenient}`);
  } else if (!isRemotePartyRole(parseInt(ou.value, 16))) {
    add(ctx, 'ERR_PROFILE_ORG_ROLE_UNKNOWN', `subject OU: ${ou.value} is not a known Remote Party Role`);
  }
  if (uid === undefined) {
    add(ctx, 'ERR_PROFILE_ORG_ENTITY_ID_MISSING', 'subject x500UniqueIdentifier: absent (the entity EUI-64)');
  } else if (uid.tag !== TAG_BIT_STRING) {
    add(ctx, 'ERR_PROFILE_ORG_ENTITY_ID_FORMAT', `subject x500UniqueIdentifier: ASN.1 tag ${uid.tag}, not BIT STRING`);
  } else if (uid.bitLength !== 64) {
    // (The parser records the bit length of every BIT STRING value.)
    add(ctx, 'ERR_PROFILE_ORG_ENTITY_ID_FORMAT', `subject x500UniqueIdentifier: ${String(uid.bitLength)} bits, not 64`);
  }
}

/** docs/domain.md §2; GBCS 12 (device: empty subject, notAfter 99991231235959Z). */
function checkDeviceSubject(ctx: Ctx): void {
  const c = ctx.cert;
  if (c.subject.attributes.length !== 0) {
    add(ctx, 'ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY', `subject: ${c.subject.text}, a device certificate subject is empty`);
  }
  const d = c.details;
  // Only a GeneralizedTime has this text: a UTCTime's is 13 characters (RFC 5280 §4.1.2.5.1).
  if (d.notAfterText !== DEVICE_NOT_AFTER) {
    const enc = d.notAfterTag === TAG_UTC_TIME ? 'UTCTime' : 'GeneralizedTime'; // the parser reads no other time type
    add(ctx, 'ERR_PROFILE_DEVICE_NOT_AFTER', `validity.notAfter: ${enc} ${d.notAfterText}, not GeneralizedTime ${DEVICE_NOT_AFTER}`);
  }
}

/** docs/domain.md §2; GBCS 12; RFC 4108 §5 (critical SAN of one hardwareModuleName); RFC 5280 §4.2.1.6. */
function checkDeviceAltName(ctx: Ctx): void {
  const e = ctx.ext.get(OID.subjectAltName);
  if (e === undefined) {
    add(ctx, 'ERR_PROFILE_DEVICE_SAN_MISSING', 'subjectAltName: absent');
    return;
  }
  if (!e.critical) add(ctx, 'ERR_PROFILE_DEVICE_SAN_NOT_CRITICAL', 'subjectAltName: not critical (the subject is empty)');
  const san = ctx.cert.details.subjectAltName;
  // Undefined exactly when the value did not decode (ERR_PROFILE_EXTENSION_MALFORMED already).
  if (san === undefined) return;
  if (san.names !== 1 || san.hardwareModuleNames !== 1) {
    add(
      ctx,
      'ERR_PROFILE_DEVICE_SAN_FORM',
      `subjectAltName: ${san.names} general names of which ${san.hardwareModuleNames} hardwareModuleName, not exactly one otherName hardwareModuleName`,
    );
  }
  const hmn = ctx.cert.hardwareModuleName;
  if (hmn === undefined) return;
  if (hmn.hwSerialNum.length !== 16) {
    add(ctx, 'ERR_PROFILE_DEVICE_HW_SERIAL', `subjectAltName hwSerialNum: ${hmn.hwSerialNum.length / 2} octets, not an 8-octet EUI-64`);
  }
  const types = ctx.env.deviceHwTypes;
  if (types.length > 0 && !types.includes(hmn.hwType)) {
    add(ctx, 'ERR_PROFILE_DEVICE_HW_TYPE', `subjectAltName hwType: ${hmn.hwType} is not allowed in environment '${ctx.env.name}'`);
  }
}
