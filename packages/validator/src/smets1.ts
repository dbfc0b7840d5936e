/**
 * The SMETS1 Dual Control Organisation (DCO) envelope: a critical command the DCO has checked,
 * with the DCO's verdict and its own counter, counter-signed as CMS SignedData (RFC 5652) with
 * ECDSA P-256/SHA-256 (RFC 5753), for the SMETS1 adapter to check before it acts.
 *
 * The public format of the DCC's SMETS1 envelope is not published; this is the toolkit's own
 * standard envelope. Its eContentType, {@link DCO_CONTENT_TYPE_OID}, lies under the RFC 5612
 * documentation enterprise number and is to be replaced if the DCC publishes one.
 * @module
 */
import { createHash } from 'node:crypto';
import {
  checkDerStructure,
  equalBytes,
  isSmkiError,
  MAX_DER_DEPTH,
  p1363ToDer,
  parseEui64,
  SmkiError,
  toHex,
  verifyDer,
  verifyP1363,
  type Eui64,
  type Signer,
} from '@smki/core';
import { parseCertificate, toCertificate, type PathValidator, type SmkiCertificate } from '@smki/pki';
import type { StateStore } from '@smki/store';
import {
  CMS_OID,
  decodeAlgorithmProtection,
  decodeOctetString,
  decodeOid,
  decodeSignedData,
  decodeSigningTime,
  encodeOctetString,
  encodeOid,
  encodeSignedData,
  encodeSigningTime,
  type AlgorithmView,
  type AttributeView,
} from './internal/cms.js';
import { decodeDcoContent, encodeDcoContent, MAX_COMMAND_BYTES, MAX_COUNTER, MAX_RULE_BYTES, type DcoContent } from './internal/cms-content.js';

/**
 * The eContentType of the DCO envelope: `DcoCountersignedCommand`.
 *
 * This OID is the toolkit's own, not the DCC's: it lies under 1.3.6.1.4.1.32473, the enterprise
 * number RFC 5612 sets aside for documentation, in an arc the toolkit uses for its own formats
 * (`.1` toolkit, `.1.1` content types, `.1.1.1` this one). No real organisation holds that
 * number, so the OID cannot collide with a deployed one. Replace it if the DCC publishes an
 * identifier for its SMETS1 envelope.
 * @see RFC 5652 §5.2 (eContentType); RFC 5612 (the documentation enterprise number)
 */
export const DCO_CONTENT_TYPE_OID = '1.3.6.1.4.1.32473.1.1.1';

/** The most GBCS command bytes an envelope carries: 64 KiB, the GBCS message bound. */
export const MAX_DCO_COMMAND_BYTES = MAX_COMMAND_BYTES;

/** The most UTF-8 bytes of the `rule` that names the anomaly rule in a decision. */
export const MAX_DCO_RULE_BYTES = MAX_RULE_BYTES;

/**
 * The largest envelope {@link verifyDcoEnvelope} reads: the largest command plus 8 KiB for the
 * CMS wrapping, the decision and the DCO certificate (an SMKI certificate is under 1 KiB).
 * Anything longer is refused before it is parsed.
 */
export const MAX_DCO_ENVELOPE_BYTES = MAX_COMMAND_BYTES + 8 * 1024;

/** The oldest signing time {@link verifyDcoEnvelope} accepts by default: 5 minutes. */
export const DEFAULT_DCO_MAX_AGE_MS = 5 * 60 * 1000;

/** How far ahead of the verifier's clock a signing time may be by default: 30 seconds. */
export const DEFAULT_DCO_MAX_SKEW_MS = 30 * 1000;

/** The most DER elements an envelope may hold (its certificate is about 60). */
const MAX_DER_ELEMENTS = 1024;

/** The DCO's verdict on a command: it passed every check, or it passed but an anomaly rule fired. */
export type DcoOutcome = 'accepted' | 'anomaly';

/** What the DCO decided about one GBCS command, as carried in the envelope. */
export interface DcoDecision {
  /** `accepted`, or `anomaly` (a threshold was crossed; the DCO detects but does not quarantine). */
  readonly outcome: DcoOutcome;
  /** The GBCS message code (0..0xFFFF). */
  readonly messageCode: number;
  /** The command's originator (the User's EUI-64). */
  readonly originator: Eui64;
  /** The device the command is for. */
  readonly device: Eui64;
  /** The command's originator counter (0..2^64 - 1), as the DCO checked it. */
  readonly originatorCounter: bigint;
  /** The anomaly rule that fired, 1 to {@link MAX_DCO_RULE_BYTES} UTF-8 bytes (usually with `anomaly`). */
  readonly rule?: string;
}

/** What {@link buildDcoEnvelope} counter-signs. */
export interface DcoEnvelopeInput {
  /** The validated GBCS command bytes as received, 1 to {@link MAX_DCO_COMMAND_BYTES} bytes. */
  readonly command: Uint8Array;
  /** The DCO's decision about the command. */
  readonly decision: DcoDecision;
  /** The DCO's own envelope counter (0..2^64 - 1), strictly increasing per (DCO, device). */
  readonly counter: bigint;
  /** The signing time (RFC 5652 §11.3); carried to the whole second. */
  readonly signingTime: Date;
}

/** How {@link buildDcoEnvelope} signs. */
export interface DcoBuildOptions {
  /** The DCO's signing key (in memory, a key store or an HSM): ECDSA P-256/SHA-256, 64-byte r‖s. */
  readonly signer: Signer;
  /** The DCO's digital-signature certificate, whose key is the signer's: parsed, or DER. */
  readonly certificate: SmkiCertificate | Uint8Array;
}

/**
 * How the adapter knows the DCO: its certificate(s), a callback, or both (all given must agree);
 * optionally also a path validator for the certificate's chain and revocation.
 */
export interface DcoTrust {
  /** The DCO certificates the adapter accepts; the envelope's certificate must be one of them, byte for byte. */
  readonly certificates?: readonly SmkiCertificate[];
  /**
   * Decides whether a certificate is the DCO's; anything but `true` refuses it. Its errors
   * propagate. It is called with the certificate the envelope carries before the signature is
   * checked, so it must decide on the certificate alone (its key, entity, serial), never on the
   * envelope's content.
   */
  readonly accept?: (certificate: SmkiCertificate) => boolean | Promise<boolean>;
  /** If given, the certificate's path must also validate (RFC 5280 §6.1, CRLs as configured) at the verifier's clock. */
  readonly pathValidator?: PathValidator;
}

/** How {@link verifyDcoEnvelope} checks an envelope. */
export interface DcoVerifyOptions {
  /** The DCO certificates, or a {@link DcoTrust}. */
  readonly trust: readonly SmkiCertificate[] | DcoTrust;
  /** The adapter's own durable anti-replay state: the envelope counter per (DCO entity, device). */
  readonly store: StateStore;
  /** The clock (default: the system clock). */
  readonly now?: () => Date;
  /** The oldest signing time accepted, in milliseconds before `now` (default {@link DEFAULT_DCO_MAX_AGE_MS}). */
  readonly maxAgeMs?: number;
  /** How far after `now` a signing time may be, in milliseconds (default {@link DEFAULT_DCO_MAX_SKEW_MS}). */
  readonly maxSkewMs?: number;
}

/** An envelope that passed every check, its counter committed. */
export interface DcoVerified {
  /** The GBCS command bytes the DCO checked. */
  readonly command: Uint8Array;
  /** The DCO's decision. */
  readonly decision: DcoDecision;
  /** The envelope counter, now the last accepted for (DCO, device). */
  readonly counter: bigint;
  /** The signing time. */
  readonly signingTime: Date;
  /** The DCO's entity EUI-64 (from its certificate). */
  readonly dco: Eui64;
  /** The DCO certificate that signed. */
  readonly certificate: SmkiCertificate;
}

const OUTCOMES: readonly DcoOutcome[] = ['accepted', 'anomaly'];

function invalid(detail: string): SmkiError<'ERR_INVALID_ARGUMENT'> {
  return new SmkiError('ERR_INVALID_ARGUMENT', `DCO envelope: ${detail}`, { detail });
}

function malformed(detail: string, offset?: number, cause?: unknown): SmkiError<'ERR_DCO_MALFORMED'> {
  return new SmkiError('ERR_DCO_MALFORMED', `not a DCO envelope: ${detail}`, offset === undefined ? { detail } : { offset, detail }, cause === undefined ? undefined : { cause });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function counterInRange(v: unknown, what: string): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > MAX_COUNTER) throw invalid(`${what} must be a bigint from 0 to 2^64 - 1`);
  return v;
}

function checkRule(rule: unknown): string {
  if (typeof rule !== 'string') throw invalid('decision.rule must be a string');
  const bytes = Buffer.from(rule, 'utf8');
  // A lone surrogate does not survive the round trip (it becomes U+FFFD): not well-formed text.
  if (bytes.length < 1 || bytes.length > MAX_RULE_BYTES || bytes.toString('utf8') !== rule) {
    throw invalid(`decision.rule must be well-formed text of 1 to ${MAX_RULE_BYTES} UTF-8 bytes`);
  }
  return rule;
}

function checkInput(input: DcoEnvelopeInput): DcoContent {
  if (!isObject(input)) throw invalid('input must be an object');
  const { command, decision, counter, signingTime } = input;
  if (!(command instanceof Uint8Array) || command.length < 1 || command.length > MAX_COMMAND_BYTES) {
    throw invalid(`command must be 1 to ${MAX_COMMAND_BYTES} bytes`);
  }
  if (!isObject(decision)) throw invalid('decision must be an object');
  if (!OUTCOMES.includes(decision.outcome)) throw invalid("decision.outcome must be 'accepted' or 'anomaly'");
  const { messageCode } = decision;
  if (!Number.isInteger(messageCode) || messageCode < 0 || messageCode > 0xffff) throw invalid('decision.messageCode must be an integer from 0 to 0xFFFF');
  if (!(signingTime instanceof Date) || Number.isNaN(signingTime.getTime())) throw invalid('signingTime must be a valid Date');
  const year = signingTime.getUTCFullYear();
  if (year < 1950 || year > 9999) throw invalid('signingTime must be in the years 1950 to 9999');
  return {
    command: command.slice(),
    messageCode,
    originator: parseEui64(decision.originator),
    device: parseEui64(decision.device),
    originatorCounter: counterInRange(decision.originatorCounter, 'decision.originatorCounter'),
    outcome: decision.outcome,
    envelopeCounter: counterInRange(counter, 'counter'),
    ...(decision.rule !== undefined ? { rule: checkRule(decision.rule) } : {}),
  };
}

/** The DCO's entity EUI-64, if `certificate` can sign envelopes (at `at`, if given). */
function usableEntity(certificate: SmkiCertificate, at?: Date): Eui64 {
  const unusable = (detail: string): never => {
    throw new SmkiError('ERR_DCO_SIGNER_UNUSABLE', `the DCO certificate cannot sign envelopes: ${detail}`, { serialNumber: certificate.serialNumber, detail });
  };
  if (!certificate.keyUsage.includes('digitalSignature')) unusable('its keyUsage does not include digitalSignature');
  if (certificate.publicKey === undefined) unusable('it has no usable P-256 public key');
  if (certificate.entityId === undefined) unusable('it names no entity EUI-64 (x500UniqueIdentifier)');
  if (at !== undefined && (at.getTime() < certificate.notBefore.getTime() || at.getTime() > certificate.notAfter.getTime())) {
    unusable(`it is not valid at ${at.toISOString()} (${certificate.notBefore.toISOString()} to ${certificate.notAfter.toISOString()})`);
  }
  return certificate.entityId as Eui64;
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function isSigner(v: unknown): v is Signer {
  return isObject(v) && typeof v.sign === 'function' && v.publicKey instanceof Uint8Array;
}

/** The envelope's checked parts, before time and anti-replay. */
interface Opened {
  readonly content: DcoContent;
  readonly certificate: SmkiCertificate;
  readonly signingTime: Date;
}

function algorithmIs(alg: AlgorithmView, oid: string, params: readonly AlgorithmView['params'][]): boolean {
  return alg.oid === oid && params.includes(alg.params);
}

/** RFC 5754 §2: SHA-256's parameters are absent or NULL; RFC 5758 §3.2: ECDSA's are absent. */
const SHA256_PARAMS = ['absent', 'null'] as const;
const ECDSA_PARAMS = ['absent'] as const;

const ALLOWED_ATTRIBUTES: ReadonlySet<string> = new Set([CMS_OID.contentType, CMS_OID.messageDigest, CMS_OID.signingTime, CMS_OID.cmsAlgorithmProtection]);
const REQUIRED_ATTRIBUTES = [CMS_OID.contentType, CMS_OID.messageDigest, CMS_OID.signingTime] as const;

function attributeError(attribute: string, problem: 'missing' | 'duplicate' | 'not-single-valued' | 'malformed' | 'not-allowed'): SmkiError<'ERR_DCO_SIGNED_ATTRIBUTES'> {
  return new SmkiError('ERR_DCO_SIGNED_ATTRIBUTES', `signed attribute ${attribute || 'signedAttrs'}: ${problem}`, { attribute, problem });
}

/** The one value of each signed attribute, checked present, once, single-valued and allowed (RFC 5652 §5.3, §11). */
function signedAttributeValues(attributes: readonly AttributeView[]): Map<string, Uint8Array> {
  const values = new Map<string, Uint8Array>();
  for (const a of attributes) {
    if (!ALLOWED_ATTRIBUTES.has(a.type)) throw attributeError(a.type, 'not-allowed');
    if (values.has(a.type)) throw attributeError(a.type, 'duplicate');
    const [value] = a.values;
    if (a.values.length !== 1 || value === undefined) throw attributeError(a.type, 'not-single-valued');
    values.set(a.type, value);
  }
  for (const type of REQUIRED_ATTRIBUTES) if (!values.has(type)) throw attributeError(type, 'missing');
  return values;
}

/**
 * Every check of the envelope but the clock and the counter: size, DER, the CMS profile, the
 * signer (through `resolve`), the signed attributes, the content type, the digest, the signature
 * and the eContent.
 */
async function openEnvelope(bytes: Uint8Array, resolve: (certificate: SmkiCertificate) => Promise<void>): Promise<Opened> {
  if (!(bytes instanceof Uint8Array)) throw malformed(`expected a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
  if (bytes.length === 0) throw malformed('empty input', 0);
  if (bytes.length > MAX_DCO_ENVELOPE_BYTES) throw malformed(`${bytes.length} bytes, over the ${MAX_DCO_ENVELOPE_BYTES}-byte bound`);
  try {
    checkDerStructure(bytes, MAX_DER_DEPTH, MAX_DER_ELEMENTS);
  } catch (cause) {
    if (!isSmkiError(cause)) throw cause;
    const offset = (cause.context as { offset?: unknown }).offset;
    throw malformed(`not DER (${cause.message})`, typeof offset === 'number' ? offset : undefined, cause);
  }
  const sd = await decodeSignedData(bytes);
  if (sd.contentType !== CMS_OID.signedData) throw malformed(`the ContentInfo holds ${sd.contentType}, not id-signedData`);
  const [si] = sd.signerInfos;
  if (sd.signerInfos.length !== 1 || si === undefined) {
    throw new SmkiError('ERR_DCO_SIGNER_COUNT', `the envelope has ${sd.signerInfos.length} SignerInfos, not one`, { signerInfos: sd.signerInfos.length });
  }
  // RFC 5652 §5.1: version 3 when eContentType is not id-data and only X.509 certificates are carried.
  if (sd.version !== 3) throw malformed(`SignedData version ${sd.version} is not 3`);
  const [digestAlgorithm] = sd.digestAlgorithms;
  if (sd.digestAlgorithms.length !== 1 || digestAlgorithm === undefined || !algorithmIs(digestAlgorithm, CMS_OID.sha256, SHA256_PARAMS)) {
    throw new SmkiError('ERR_DCO_ALGORITHM_UNSUPPORTED', 'SignedData digestAlgorithms is not SHA-256 alone', {
      field: 'digestAlgorithms',
      oid: digestAlgorithm?.oid ?? '',
      detail: `${sd.digestAlgorithms.length} algorithms`,
    });
  }
  if (sd.eContentForm !== 'primitive' || sd.eContent === undefined) {
    throw malformed(sd.eContentForm === 'absent' ? 'the eContent is detached (absent)' : 'the eContent is not one primitive OCTET STRING');
  }
  if (sd.crls) throw malformed('SignedData carries crls; the envelope carries none');
  const [certificateDer] = sd.certificates ?? [];
  if (sd.certificates?.length !== 1 || certificateDer === undefined) throw malformed('SignedData does not carry exactly one X.509 certificate');
  if (si.version !== 1 || si.sid === undefined) throw malformed('the SignerInfo is not version 1 with issuerAndSerialNumber');
  if (si.unsignedAttributes) throw malformed('the SignerInfo has unsigned attributes');
  if (!algorithmIs(si.digestAlgorithm, CMS_OID.sha256, SHA256_PARAMS)) {
    throw new SmkiError('ERR_DCO_ALGORITHM_UNSUPPORTED', 'the SignerInfo digestAlgorithm is not SHA-256', { field: 'digestAlgorithm', oid: si.digestAlgorithm.oid, detail: `parameters ${si.digestAlgorithm.params}` });
  }
  if (!algorithmIs(si.signatureAlgorithm, CMS_OID.ecdsaWithSha256, ECDSA_PARAMS)) {
    throw new SmkiError('ERR_DCO_ALGORITHM_UNSUPPORTED', 'the SignerInfo signatureAlgorithm is not ecdsa-with-SHA256 without parameters', {
      field: 'signatureAlgorithm',
      oid: si.signatureAlgorithm.oid,
      detail: `parameters ${si.signatureAlgorithm.params}`,
    });
  }
  if (si.signature === undefined) throw malformed('the signature is not a primitive OCTET STRING');
  if (!sd.reencodes) throw malformed('the envelope holds elements outside the CMS schema (it does not re-encode to itself)');

  let certificate: SmkiCertificate;
  try {
    certificate = parseCertificate(certificateDer);
  } catch (cause) {
    throw malformed('the carried certificate does not parse', undefined, cause);
  }
  if (!equalBytes(si.sid.issuer, certificate.issuer.der) || !equalBytes(si.sid.serialNumber, certificate.details.serialBytes)) {
    throw new SmkiError('ERR_DCO_SIGNER_UNKNOWN', 'the SignerInfo names another certificate than the one the envelope carries', {
      serialNumber: toHex(si.sid.serialNumber),
      detail: 'issuerAndSerialNumber does not name the carried certificate',
    });
  }
  await resolve(certificate);

  if (si.signedAttributes === undefined) throw attributeError('', 'missing');
  const values = signedAttributeValues(si.signedAttributes.attributes);
  const contentType = decodeOid(values.get(CMS_OID.contentType) as Uint8Array);
  if (contentType === undefined) throw attributeError(CMS_OID.contentType, 'malformed');
  const messageDigest = decodeOctetString(values.get(CMS_OID.messageDigest) as Uint8Array);
  if (messageDigest === undefined || messageDigest.length !== 32) throw attributeError(CMS_OID.messageDigest, 'malformed');
  const signingTime = decodeSigningTime(values.get(CMS_OID.signingTime) as Uint8Array);
  if (signingTime === undefined) throw attributeError(CMS_OID.signingTime, 'malformed');

  if (sd.eContentType !== DCO_CONTENT_TYPE_OID) {
    throw new SmkiError('ERR_DCO_CONTENT_TYPE', `the eContentType ${sd.eContentType} is not the DCO content type`, { where: 'eContentType', found: sd.eContentType, expected: DCO_CONTENT_TYPE_OID });
  }
  // RFC 5652 §11.1: the content-type attribute must equal the eContentType.
  if (contentType !== sd.eContentType) {
    throw new SmkiError('ERR_DCO_CONTENT_TYPE', `the content-type attribute ${contentType} differs from the eContentType`, { where: 'contentTypeAttribute', found: contentType, expected: DCO_CONTENT_TYPE_OID });
  }
  const protection = values.get(CMS_OID.cmsAlgorithmProtection);
  if (protection !== undefined) {
    // RFC 6211 §2: when present, it must name the SignerInfo's own algorithms.
    const p = await decodeAlgorithmProtection(protection);
    if (p === undefined) throw attributeError(CMS_OID.cmsAlgorithmProtection, 'malformed');
    if (p.fields !== 2 || p.signature === undefined || !algorithmIs(p.digest, CMS_OID.sha256, SHA256_PARAMS) || !algorithmIs(p.signature, CMS_OID.ecdsaWithSha256, ECDSA_PARAMS)) {
      throw new SmkiError('ERR_DCO_ALGORITHM_UNSUPPORTED', 'the CMSAlgorithmProtection attribute does not name SHA-256 and ecdsa-with-SHA256', {
        field: 'cmsAlgorithmProtection',
        oid: p.signature?.oid ?? p.digest.oid,
      });
    }
  }

  // RFC 5652 §5.4: the message-digest attribute is the digest of the eContent octets.
  const computed = sha256(sd.eContent);
  if (!equalBytes(computed, messageDigest)) {
    throw new SmkiError('ERR_DCO_DIGEST_MISMATCH', 'the message-digest attribute is not the SHA-256 of the eContent', { claimed: toHex(messageDigest), computed: toHex(computed) });
  }
  // RFC 5652 §5.4: the signature is over the DER of the signed attributes with the SET OF tag.
  // High-S signatures verify (node:crypto does not normalise S).
  if (!verifyDer(certificate.publicKey as NonNullable<SmkiCertificate['publicKey']>, si.signedAttributes.der, si.signature)) {
    throw new SmkiError('ERR_DCO_SIGNATURE_INVALID', "the envelope signature does not verify under the DCO certificate's key", { serialNumber: certificate.serialNumber });
  }
  return { content: decodeDcoContent(sd.eContent), certificate, signingTime };
}

/**
 * Counter-sign a command the DCO has checked: CMS SignedData (RFC 5652 §5) over a
 * `DcoCountersignedCommand`, signed by the DCO's key through the `Signer` interface (so it may
 * live in an HSM), its raw r‖s put into DER for CMS.
 *
 * The envelope is a DER ContentInfo holding SignedData version 3: digestAlgorithms {sha256};
 * encapContentInfo with eContentType {@link DCO_CONTENT_TYPE_OID} and the eContent below; the DCO
 * certificate; one SignerInfo version 1 with issuerAndSerialNumber, digestAlgorithm sha256,
 * signed attributes content-type, message-digest and signing-time (RFC 5652 §11) in DER order,
 * signatureAlgorithm ecdsa-with-SHA256 without parameters (RFC 5753 §2.1.1, RFC 5758 §3.2).
 *
 * ```text
 * DcoCountersignedCommand ::= SEQUENCE {
 *   version            INTEGER (1),
 *   command            OCTET STRING (SIZE (1..65536)),  -- the GBCS command as received
 *   messageCode        INTEGER (0..65535),
 *   originator         OCTET STRING (SIZE (8)),          -- the User's EUI-64
 *   device             OCTET STRING (SIZE (8)),          -- the device's EUI-64
 *   originatorCounter  INTEGER (0..18446744073709551615),
 *   outcome            ENUMERATED { accepted (0), anomaly (1) },
 *   envelopeCounter    INTEGER (0..18446744073709551615),
 *   rule               UTF8String (SIZE (1..256)) OPTIONAL  -- the anomaly rule that fired
 * }
 * ```
 *
 * Security: the signer's public key must be the certificate's, the certificate must allow
 * digitalSignature, name the DCO's entity EUI-64 and be valid at the signing time; and the
 * finished envelope is read back with the verifier's own checks (structure, digest, signature)
 * before it is returned, so a faulty signer or HSM cannot emit an envelope the adapter would
 * refuse. Strictly increasing counters per (DCO, device) are the caller's to keep.
 *
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (an input out of range or the wrong type),
 *   `ERR_EUI64_INVALID` (originator, device), `ERR_CERT_MALFORMED` (the certificate),
 *   `ERR_DCO_SIGNER_UNUSABLE` (the certificate cannot sign envelopes),
 *   `ERR_CERTIFICATE_KEY_MISMATCH` (the signer's key is not the certificate's),
 *   `ERR_SIGNATURE_ENCODING` (the signer did not return 64 bytes),
 *   `ERR_DCO_SIGNATURE_INVALID` (the signer returned a signature that does not verify);
 *   and whatever the signer throws
 * @see RFC 5652 §5 (SignedData), §11 (signed attributes); RFC 5753 §2.1 (ECDSA in CMS);
 *   RFC 5758 §3.2 (ecdsa-with-SHA256)
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeySigner, parseEui64 } from '@smki/core';
 * import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
 * import { MemoryStateStore } from '@smki/store';
 * import { buildDcoEnvelope, verifyDcoEnvelope } from '@smki/validator';
 *
 * const h = await createHierarchy();
 * const signer = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
 * const certificate = await issueOrganisationCertificate({ issuer: h.organisationCa, role: 4, entityId: '90B3D51F30000D00', keyUsage: 'digitalSignature', publicKey: signer.publicKey });
 * const envelope = await buildDcoEnvelope(
 *   {
 *     command: new Uint8Array([0xdf, 0x09]),
 *     decision: { outcome: 'accepted', messageCode: 0x0050, originator: parseEui64('90B3D51F30010000'), device: parseEui64('00DB1234567890A0'), originatorCounter: 1n },
 *     counter: 1n,
 *     signingTime: new Date(),
 *   },
 *   { signer, certificate },
 * );
 * const verified = await verifyDcoEnvelope(envelope, { trust: [certificate], store: new MemoryStateStore() });
 * console.log(verified.decision.outcome); // 'accepted'
 * ```
 */
export async function buildDcoEnvelope(input: DcoEnvelopeInput, options: DcoBuildOptions): Promise<Uint8Array> {
  const content = checkInput(input);
  if (!isObject(options)) throw invalid('options must be an object');
  const { signer } = options;
  if (!isSigner(signer)) throw invalid('options.signer must be a Signer (publicKey and sign)');
  if (!isParsedOrBytes(options.certificate)) throw invalid('options.certificate must be a parsed certificate or DER bytes');
  const certificate = toCertificate(options.certificate);
  usableEntity(certificate, input.signingTime);
  if (!equalBytes(signer.publicKey, certificate.publicKeyBytes)) {
    throw new SmkiError('ERR_CERTIFICATE_KEY_MISMATCH', "the signer's public key is not the DCO certificate's", { detail: `certificate ${certificate.serialNumber}` });
  }
  const publicKey = certificate.publicKey as NonNullable<SmkiCertificate['publicKey']>;
  const eContent = encodeDcoContent(content);
  const envelope = await encodeSignedData({
    eContentType: DCO_CONTENT_TYPE_OID,
    eContent,
    certificates: [certificate.der],
    signers: [
      {
        certificate: certificate.der,
        attributes: [
          { type: CMS_OID.contentType, values: [encodeOid(DCO_CONTENT_TYPE_OID)] },
          { type: CMS_OID.signingTime, values: [encodeSigningTime(input.signingTime)] },
          { type: CMS_OID.messageDigest, values: [encodeOctetString(sha256(eContent))] },
        ],
        sign: async (signedAttributes) => {
          const signature = await signer.sign(signedAttributes);
          if (!(signature instanceof Uint8Array) || signature.length !== 64) {
            throw new SmkiError('ERR_SIGNATURE_ENCODING', 'the signer did not return 64 bytes r‖s', { detail: `length ${signature instanceof Uint8Array ? signature.length : typeof signature}` });
          }
          if (!verifyP1363(publicKey, signedAttributes, signature)) {
            throw new SmkiError('ERR_DCO_SIGNATURE_INVALID', "the signer returned a signature that does not verify under the DCO certificate's key", {
              serialNumber: certificate.serialNumber,
              detail: 'the signer returned a bad signature',
            });
          }
          return p1363ToDer(signature);
        },
      },
    ],
  });
  // Read it back as the adapter will (everything but trust, clock and counter).
  await openEnvelope(envelope, async (carried) => {
    if (!equalBytes(carried.der, certificate.der)) throw malformed('the built envelope does not carry the certificate as given');
  });
  return envelope;
}

function isParsedOrBytes(v: unknown): v is SmkiCertificate | Uint8Array {
  return v instanceof Uint8Array || isObject(v);
}

interface ResolvedTrust {
  readonly certificates: readonly SmkiCertificate[] | undefined;
  readonly accept: DcoTrust['accept'];
  readonly pathValidator: PathValidator | undefined;
}

function resolveTrust(trust: DcoVerifyOptions['trust']): ResolvedTrust {
  const t: DcoTrust = Array.isArray(trust) ? { certificates: trust as readonly SmkiCertificate[] } : (trust as DcoTrust);
  if (typeof t !== 'object' || t === null) throw invalid('options.trust must be DCO certificates or a DcoTrust');
  let certificates: SmkiCertificate[] | undefined;
  if (t.certificates !== undefined) {
    if (!Array.isArray(t.certificates) || t.certificates.length === 0) throw invalid('trust.certificates must be a non-empty array');
    // toCertificate refuses look-alike objects that parseCertificate did not make.
    certificates = t.certificates.map((c) => {
      if (typeof c !== 'object' || c === null || c instanceof Uint8Array) throw invalid('trust.certificates must hold parsed certificates');
      return toCertificate(c);
    });
  }
  if (t.accept !== undefined && typeof t.accept !== 'function') throw invalid('trust.accept must be a function');
  if (t.pathValidator !== undefined && (typeof t.pathValidator !== 'object' || t.pathValidator === null || typeof t.pathValidator.validate !== 'function')) throw invalid('trust.pathValidator must be a PathValidator');
  if (certificates === undefined && t.accept === undefined) throw invalid('trust must give certificates or an accept callback');
  return { certificates, accept: t.accept, pathValidator: t.pathValidator };
}

function nonNegative(v: unknown, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalid(`${what} must be a finite number of milliseconds, 0 or more`);
  return v;
}

/**
 * Check a DCO envelope as the SMETS1 adapter must before it acts on the command, and commit its
 * counter: every check passes, or nothing changes.
 *
 * In order: the size (at most {@link MAX_DCO_ENVELOPE_BYTES}, checked before any parsing); DER
 * (definite minimal lengths, bounded depth and element count, nothing trailing); a ContentInfo
 * with SignedData (RFC 5652 §5) holding exactly one SignerInfo; version 3, digestAlgorithms
 * {sha256}, an encapsulated eContent, exactly one certificate, no CRLs; the SignerInfo version 1
 * with issuerAndSerialNumber naming that certificate, sha256 and ecdsa-with-SHA256, no unsigned
 * attributes; no element the CMS schema does not name (the envelope must re-encode to itself, byte
 * for byte); the certificate is the DCO's (per `trust`) and can sign (digitalSignature, an entity
 * EUI-64, valid now; its path if a validator is given); the signed attributes content-type,
 * message-digest and signing-time each present exactly once with one well-formed value, and no
 * other but RFC 6211's CMSAlgorithmProtection (which must then name the same algorithms); the
 * eContentType is {@link DCO_CONTENT_TYPE_OID} and equals the content-type attribute; the digest;
 * the signature, with node:crypto against the certificate's key (high-S accepted); the eContent
 * strictly decoded (version 1, lengths, 8-byte EUI-64s, counters 0..2^64-1); the signing time
 * within `maxAgeMs` before and `maxSkewMs` after `now`. Only then is the envelope counter
 * committed to `store` for (DCO entity EUI-64 as originator, device): it must be strictly greater
 * than the last one accepted. A rejected envelope changes no counter.
 *
 * @throws SmkiError `ERR_DCO_MALFORMED`, `ERR_DCO_SIGNER_COUNT`, `ERR_DCO_ALGORITHM_UNSUPPORTED`,
 *   `ERR_DCO_SIGNER_UNKNOWN`, `ERR_DCO_SIGNER_UNUSABLE`, `ERR_DCO_SIGNER_PATH_INVALID`,
 *   `ERR_DCO_SIGNED_ATTRIBUTES`, `ERR_DCO_CONTENT_TYPE`, `ERR_DCO_DIGEST_MISMATCH`,
 *   `ERR_DCO_SIGNATURE_INVALID`, `ERR_DCO_STALE`, `ERR_DCO_REPLAYED`; `ERR_INVALID_ARGUMENT` for
 *   bad options; the store's `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
 *   (nothing committed); and whatever `trust.accept` throws
 * @see RFC 5652 §5.1-§5.6, §11; RFC 5753 §2.1; RFC 5280 §6.1 (with a path validator); RFC 6211
 * @example
 * ```ts
 * import { isSmkiError } from '@smki/core';
 * import type { SmkiCertificate } from '@smki/pki';
 * import { SqliteStateStore } from '@smki/store';
 * import { verifyDcoEnvelope } from '@smki/validator';
 *
 * declare const envelope: Uint8Array;
 * declare const dcoCertificate: SmkiCertificate;
 * const store = await SqliteStateStore.open({ path: 'adapter-state.db' });
 * try {
 *   const { command, decision } = await verifyDcoEnvelope(envelope, { trust: [dcoCertificate], store });
 *   console.log(decision.outcome, command.length);
 * } catch (e) {
 *   if (isSmkiError(e, 'ERR_DCO_REPLAYED')) console.log('replayed; last counter', e.context.last);
 *   else throw e;
 * }
 * ```
 */
export async function verifyDcoEnvelope(bytes: Uint8Array, options: DcoVerifyOptions): Promise<DcoVerified> {
  if (!isObject(options)) throw invalid('options must be an object');
  const trust = resolveTrust(options.trust);
  const { store } = options;
  if (!isObject(store) || typeof store.commit !== 'function') throw invalid('options.store must be a StateStore');
  const clock = options.now ?? (() => new Date());
  if (typeof clock !== 'function') throw invalid('options.now must be a function');
  const maxAgeMs = nonNegative(options.maxAgeMs, DEFAULT_DCO_MAX_AGE_MS, 'options.maxAgeMs');
  const maxSkewMs = nonNegative(options.maxSkewMs, DEFAULT_DCO_MAX_SKEW_MS, 'options.maxSkewMs');
  const now = clock();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw invalid('options.now must return a valid Date');

  let dco: Eui64 | undefined;
  const opened = await openEnvelope(bytes, async (certificate) => {
    const unknown = (detail: string): never => {
      throw new SmkiError('ERR_DCO_SIGNER_UNKNOWN', `the envelope signer is not the DCO: ${detail}`, { serialNumber: certificate.serialNumber, detail });
    };
    if (trust.certificates !== undefined && !trust.certificates.some((c) => equalBytes(c.der, certificate.der))) unknown('not one of the DCO certificates given');
    if (trust.accept !== undefined && (await trust.accept(certificate)) !== true) unknown('the trust callback refused it');
    dco = usableEntity(certificate, now);
    if (trust.pathValidator !== undefined) {
      const result = trust.pathValidator.validate(certificate, { at: now });
      if (!result.valid) {
        const findings = result.findings.filter((f) => f.severity === 'error').map((f) => f.code);
        throw new SmkiError('ERR_DCO_SIGNER_PATH_INVALID', `the DCO certificate's path does not validate: ${findings.join(', ')}`, { serialNumber: certificate.serialNumber, findings });
      }
    }
  });
  const { content, certificate, signingTime } = opened;
  const dcoId = dco as unknown as Eui64;

  const ageMs = now.getTime() - signingTime.getTime();
  if (ageMs > maxAgeMs) {
    throw new SmkiError('ERR_DCO_STALE', `the envelope was signed ${ageMs} ms ago, over ${maxAgeMs} ms`, { signingTime, now, direction: 'past', limitMs: maxAgeMs });
  }
  if (-ageMs > maxSkewMs) {
    throw new SmkiError('ERR_DCO_STALE', `the envelope is signed ${-ageMs} ms in the future, over ${maxSkewMs} ms`, { signingTime, now, direction: 'future', limitMs: maxSkewMs });
  }

  const [outcome] = await store.commit([{ counter: { originator: dcoId, device: content.device, value: content.envelopeCounter } }]);
  if (outcome?.status === 'replayed') {
    throw new SmkiError('ERR_DCO_REPLAYED', `envelope counter ${content.envelopeCounter} is not above ${outcome.last} for DCO ${dcoId} and device ${content.device}`, {
      dco: dcoId,
      device: content.device,
      counter: content.envelopeCounter,
      last: outcome.last,
    });
  }
  if (outcome?.status !== 'committed') {
    // A counter-only entry is committed or replayed; anything else is a store fault. Fail closed.
    throw new SmkiError('ERR_STORE_CORRUPT', `the state store answered ${String(outcome?.status)} to a counter claim`, { detail: String(outcome?.status) });
  }
  return {
    command: content.command,
    decision: {
      outcome: content.outcome,
      messageCode: content.messageCode,
      originator: content.originator,
      device: content.device,
      originatorCounter: content.originatorCounter,
      ...(content.rule !== undefined ? { rule: content.rule } : {}),
    },
    counter: content.envelopeCounter,
    signingTime,
    dco: dcoId,
    certificate,
  };
}
