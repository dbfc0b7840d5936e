/**
 * Verifying DUIS documents under the profile, the way a trusted system must.
 * @module
 */
import type { XElement as Element, XNode } from './internal/tree.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { SmkiError, RemotePartyRole, verifyP1363 } from '@smki/core';
import type { Eui64, SmkiErrorCode } from '@smki/core';
import type { SmkiCertificate } from '@smki/pki';
import type { StateStore } from '@smki/store';
import type { RequestId } from './message.js';
import { DEFAULT_MAX_DUIS_BYTES } from './sign.js';
import type { DuisTrust } from './trust.js';
import { readShape } from './internal/document.js';
import type { DuisKind } from './internal/document.js';
import { readSignature } from './internal/profile.js';
import { DS_NS, XMLNS_NS, c14n, documentText, excC14n, parseXml, rootDeclares } from './internal/xml.js';

/** Anti-replay for Requests: the state store and the freshness window. */
export interface DuisReplayOptions {
  /**
   * The verifier's own state store (not the GBCS validator's: request ids and GBCS counters are
   * separate series). Per (originator, target) it holds the last request id accepted, encoded so
   * that the key is (originator, target, counter, body kind): a service request with counter `c`
   * is accepted only if `c` is greater than every id accepted before; the signed pre-command that
   * answers it (same id, body `SignedPreCommand`) only if that request is the last one accepted
   * for (originator, target), and only once.
   */
  readonly store: StateStore;
  /** Oldest counter accepted, in milliseconds before `now` (default one hour). */
  readonly maxAgeMs?: number;
  /** Newest counter accepted, in milliseconds after `now` (default five minutes). */
  readonly maxFutureMs?: number;
}

/** Options of {@link verifyDuis}. */
export interface VerifyDuisOptions {
  /** The kind expected: a DCC verifies `request`s, a User `response`s. Required, so a document never picks its own rules. */
  readonly expect: DuisKind;
  /** The time to judge validity, revocation and freshness at (default now). */
  readonly now?: Date;
  /** For Responses: the DCC's entity id; when given, the certificate must be this entity's. */
  readonly dcc?: Eui64;
  /** Anti-replay and freshness of Requests (state changes only when everything else passed). */
  readonly replay?: DuisReplayOptions;
  /** The largest document accepted, in bytes (default 1 MiB). */
  readonly maxBytes?: number;
}

/** A document that verified: only what was signed. */
export interface VerifiedDuis {
  /** Request or Response. */
  readonly kind: DuisKind;
  /**
   * The document exactly as digested: inclusive Canonical XML 1.0 of the document without its
   * signature and without white space between elements, as UTF-8. Process this, not the input.
   */
  readonly document: Uint8Array;
  /** The same, as text. */
  readonly xml: string;
  /** The request id's text. */
  readonly requestIdText: string;
  /** The request id's originator. */
  readonly originator: Eui64;
  /** The request id's target. */
  readonly target: Eui64;
  /** The request id's counter. */
  readonly counter: bigint;
  /** `sr:ServiceReference`, if the header has one. */
  readonly serviceReference?: string;
  /** `sr:ServiceReferenceVariant`, if the header has one. */
  readonly serviceReferenceVariant?: string;
  /** `sr:CommandVariant`, if the header has one. */
  readonly commandVariant?: string;
  /** The local name of the body's element (`DisableSupply`, `PreCommand`, `SignedPreCommand`, …). */
  readonly body: string;
  /** The certificate that verified the signature. */
  readonly certificate: SmkiCertificate;
  /** Tolerated quirks worth reporting (e.g. a DCC certificate whose OU spells its role in decimal). */
  readonly warnings: readonly string[];
}

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail: detail.slice(0, 200) });
}

const HOUR = 3_600_000;

/** Whether `el` is `ancestor` or inside it. */
function within(el: Element, ancestor: Element): boolean {
  for (let n: XNode | null = el; n !== null; n = n.parentNode) if (n === ancestor) return true;
  return false;
}

function checkSigner(cert: SmkiCertificate, kind: DuisKind, requestId: RequestId, options: VerifyDuisOptions, warnings: string[]): void {
  const signing = cert.kind === 'organisation' && cert.keyUsage.includes('digitalSignature');
  if (kind === 'request') {
    if (!signing || cert.role !== RemotePartyRole.XmlSigning135) {
      fail('ERR_DUIS_SIGNER_ROLE', `a Request must be signed with a User's XML-signing certificate (organisation, role 135, digitalSignature); this one is ${cert.kind}, role ${cert.role ?? '(none)'}`);
    }
    if (cert.entityId !== requestId.originator) fail('ERR_DUIS_SIGNER_NOT_ORIGINATOR', `the certificate's entity ${cert.entityId ?? '(none)'} is not the request's originator ${requestId.originator}`);
    return;
  }
  if (!signing || cert.role !== RemotePartyRole.XmlSigning137) {
    fail('ERR_DUIS_SIGNER_ROLE', `a Response must be signed with the DCC's certificate (organisation, role 137, digitalSignature); this one is ${cert.kind}, role ${cert.role ?? '(none)'}`);
  }
  if (options.dcc !== undefined && cert.entityId !== options.dcc) fail('ERR_DUIS_SIGNER_NOT_ORIGINATOR', `the certificate's entity ${cert.entityId ?? '(none)'} is not the DCC's ${options.dcc}`);
  if (cert.details.roleSpelling === 'lenient') warnings.push(`the DCC certificate's OU spells role 137 as ${JSON.stringify(cert.details.ou)}, not the profile's two hex digits`);
}

async function claim(replay: DuisReplayOptions, kind: string, id: RequestId, now: number): Promise<void> {
  const maxAge = replay.maxAgeMs ?? HOUR;
  const maxFuture = replay.maxFutureMs ?? 5 * 60_000;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0 || !Number.isSafeInteger(maxFuture) || maxFuture < 0) fail('ERR_INVALID_ARGUMENT', 'maxAgeMs and maxFutureMs must be non-negative integers');
  if (id.counter < BigInt(now - maxAge) || id.counter > BigInt(now + maxFuture)) {
    fail('ERR_DUIS_STALE', `the request id counter ${id.counter} is outside [now - ${maxAge} ms, now + ${maxFuture} ms] (milliseconds since the epoch)`, String(id.counter));
  }
  // One series per (originator, target): a request's id c is stored as 2c, the signed pre-command
  // answering it as 2c + 1. Strictly increasing values then give: a request only once and only
  // after every earlier one; its signed pre-command only once, only after it, and only while it
  // is the last request accepted for (originator, target).
  // The window keeps the counter under 2^54 (now and both bounds are safe integers), so 2c + 1
  // stays far inside the store's 64 bits.
  const request = id.counter * 2n;
  if (kind === 'SignedPreCommand') {
    const last = await replay.store.lastCounter(id.originator, id.target);
    if (last === request + 1n) fail('ERR_DUIS_REPLAYED', `the signed pre-command for request ${id.counter} was accepted before`, String(id.counter));
    if (last !== request) {
      fail('ERR_DUIS_PRECOMMAND_UNEXPECTED', `no pre-command is outstanding for request ${id.counter} from ${id.originator} to ${id.target} (its service request is not the last one accepted)`, String(id.counter));
    }
  }
  const value = kind === 'SignedPreCommand' ? request + 1n : request;
  const [outcome] = await replay.store.commit([{ counter: { originator: id.originator, device: id.target, value } }]);
  if (outcome?.status !== 'committed') {
    fail('ERR_DUIS_REPLAYED', `request id ${id.counter} from ${id.originator} to ${id.target} is not newer than the last one accepted`, String(id.counter));
  }
}

/**
 * Claim a verified Request's id in the anti-replay store, for a caller that verified without
 * `replay` so as to run checks of its own first (the validator's DUIS entry does): the same rules
 * as {@link verifyDuis} with `replay`. A Response is refused.
 * @throws SmkiError `ERR_DUIS_STALE`, `ERR_DUIS_REPLAYED`, `ERR_DUIS_PRECOMMAND_UNEXPECTED`,
 *   `ERR_DUIS_DOCUMENT_KIND` (not a Request), `ERR_INVALID_ARGUMENT`, and the store's codes
 * @see docs/domain.md §6, §8
 * @example
 * ```ts
 * import { DuisTrust, claimRequestId, verifyDuis } from '@smki/duis';
 * import type { StateStore } from '@smki/store';
 * declare const trust: DuisTrust, request: string, store: StateStore;
 * const verified = await verifyDuis(request, trust, { expect: 'request' });
 * // … the caller's own checks on the document as verified …
 * await claimRequestId({ store }, verified);
 * ```
 */
export async function claimRequestId(replay: DuisReplayOptions, verified: Pick<VerifiedDuis, 'kind' | 'body' | 'originator' | 'target' | 'counter'>, now: Date = new Date()): Promise<void> {
  if (typeof replay !== 'object' || replay === null || typeof replay.store?.commit !== 'function') fail('ERR_INVALID_ARGUMENT', 'replay.store must be a StateStore');
  if (typeof verified !== 'object' || verified === null || verified.kind !== 'request') fail('ERR_DUIS_DOCUMENT_KIND', 'only a verified Request has a request id to claim');
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) fail('ERR_INVALID_ARGUMENT', 'now must be a valid Date');
  if (typeof verified.counter !== 'bigint' || verified.counter < 0n) fail('ERR_INVALID_ARGUMENT', 'the counter must be a non-negative bigint');
  await claim(replay, verified.body, { originator: verified.originator, target: verified.target, counter: verified.counter }, now.getTime());
}

/**
 * Verify a signed DUIS document: a Request (the DCC's side) or a Response (the User's side).
 *
 * The profile is enforced, each breach with its own code: one `ds:Signature`, the root's last
 * child; exclusive C14N of SignedInfo, ECDSA-SHA256, one Reference with `URI=""`, exactly the
 * enveloped-signature transform, SHA-256; KeyInfo exactly an issuer (RFC 2253) and decimal serial;
 * no DOCTYPE or entity declaration, comment, processing instruction or CDATA section; a size
 * bound. White space between elements does not count (it is removed before digesting), white
 * space inside a value does; CR, LF and spaces inside base64 values are accepted.
 *
 * KeyInfo is only a lookup key: the certificate must be in `trust` by issuer **and** serial, have
 * a valid path with revocation checked, be valid at the time, and be the right signer for the
 * direction (a Request: role 135 and the request id's originator; a Response: the DCC's role 137).
 * With `replay`, a Request's id is checked fresh and claimed once; nothing is claimed unless
 * every other check passed.
 *
 * Returns the document **as verified**: the exact bytes that were digested, and the fields read
 * from them. Process those, never the input.
 *
 * @throws SmkiError `ERR_DUIS_TOO_LARGE`, `ERR_DUIS_DOCTYPE`, `ERR_DUIS_MALFORMED`, `ERR_DUIS_COMMENT`,
 *   `ERR_DUIS_PROCESSING_INSTRUCTION`, `ERR_DUIS_DOCUMENT_KIND`, `ERR_DUIS_STRUCTURE`,
 *   `ERR_DUIS_REQUEST_ID_INVALID`, `ERR_DUIS_SIGNATURE_COUNT`, `ERR_DUIS_SIGNATURE_PLACEMENT`,
 *   `ERR_DUIS_SIGNATURE_STRUCTURE`, `ERR_DUIS_REFERENCE_COUNT`, `ERR_DUIS_REFERENCE_URI`,
 *   `ERR_DUIS_TRANSFORMS`, `ERR_DUIS_ALGORITHM`, `ERR_DUIS_KEY_INFO`, `ERR_DUIS_CERTIFICATE_NOT_FOUND`,
 *   `ERR_DUIS_CERTIFICATE_EXPIRED`, `ERR_DUIS_CERTIFICATE_REVOKED`, `ERR_DUIS_CERTIFICATE_PATH_INVALID`,
 *   `ERR_DUIS_SIGNER_ROLE`, `ERR_DUIS_SIGNER_NOT_ORIGINATOR`, `ERR_DUIS_DIGEST_MISMATCH`,
 *   `ERR_DUIS_SIGNATURE_INVALID`, `ERR_DUIS_STALE`, `ERR_DUIS_REPLAYED`, `ERR_DUIS_PRECOMMAND_UNEXPECTED`,
 *   `ERR_INVALID_ARGUMENT`, `ERR_EUI64_INVALID`
 * @see W3C XML Signature Syntax and Processing, W3C Canonical XML 1.0, W3C Exclusive XML Canonicalization 1.0,
 *   RFC 4051 §3.3, RFC 5280 §6.1, docs/domain.md §8
 * @example
 * ```ts
 * import { DuisTrust, verifyDuis } from '@smki/duis';
 * declare const trust: DuisTrust, signedRequest: string;
 * const verified = await verifyDuis(signedRequest, trust, { expect: 'request' });
 * console.log(verified.originator, verified.target, verified.counter, verified.serviceReference);
 * ```
 */
export async function verifyDuis(xml: string | Uint8Array, trust: DuisTrust, options: VerifyDuisOptions): Promise<VerifiedDuis> {
  if (typeof options !== 'object' || options === null || (options.expect !== 'request' && options.expect !== 'response')) {
    fail('ERR_INVALID_ARGUMENT', "options.expect must be 'request' or 'response'");
  }
  if (typeof trust !== 'object' || trust === null || typeof (trust as DuisTrust).find !== 'function') fail('ERR_INVALID_ARGUMENT', 'trust must be a DuisTrust');
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) fail('ERR_INVALID_ARGUMENT', 'now must be a valid Date');
  const at = now.getTime();
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DUIS_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) fail('ERR_INVALID_ARGUMENT', 'maxBytes must be a positive integer', String(maxBytes));

  const parsed = await parseXml(documentText(xml, maxBytes));
  const shape = readShape(parsed);
  if (shape.kind !== options.expect) fail('ERR_DUIS_DOCUMENT_KIND', `the document is a ${shape.kind}, not a ${options.expect}`);
  const ds = parsed.doc.getElementsByTagNameNS(DS_NS, '*');
  const all = ds.filter((e) => e.localName === 'Signature');
  if (all.length !== 1) fail('ERR_DUIS_SIGNATURE_COUNT', `the document has ${all.length} ds:Signature elements; exactly one is required`, String(all.length));
  const sig = all[0] as Element;
  if (parsed.root.lastChild !== sig) fail('ERR_DUIS_SIGNATURE_PLACEMENT', 'the ds:Signature is not the last child of the root');
  const declared = rootDeclares(parsed.root, 'ds');
  if (declared !== undefined && declared !== DS_NS) fail('ERR_DUIS_STRUCTURE', `the root binds the prefix ds to ${declared}`);
  // xmlns:ds is declared once: on the root, or else on the signature (as the profile writes it).
  const sigDeclares = sig.getAttributeNodeNS(XMLNS_NS, 'ds') !== null;
  if (declared !== undefined && sigDeclares) fail('ERR_DUIS_SIGNATURE_STRUCTURE', 'xmlns:ds is declared on both the root and the signature');
  const parts = readSignature(sig);
  // Nothing else from the signature namespace anywhere outside the signature.
  if (ds.some((e) => !within(e, sig))) fail('ERR_DUIS_STRUCTURE', 'the document has XML Signature elements outside its ds:Signature');

  const cert = trust.find(parts.issuerName, parts.serial);
  if (cert === undefined) fail('ERR_DUIS_CERTIFICATE_NOT_FOUND', `no trusted certificate has issuer ${parts.issuerName} and serial ${parts.serial}`);
  const warnings: string[] = [];
  checkSigner(cert, shape.kind, shape.requestId, options, warnings);
  if (at < cert.notBefore.getTime() || at > cert.notAfter.getTime()) {
    fail('ERR_DUIS_CERTIFICATE_EXPIRED', `the certificate is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not at ${now.toISOString()}`);
  }
  const verdict = trust.verdict(cert, at);
  if (!verdict.ok) fail(verdict.code, `the signer's certificate is refused: ${verdict.message}`);
  if (cert.publicKey === undefined) fail('ERR_DUIS_CERTIFICATE_PATH_INVALID', "the certificate's key is not a usable P-256 key");

  // SignedInfo in its context (exclusive C14N), then the document without the signature.
  const signedInfo = Buffer.from(await excC14n(parts.signedInfo));
  parsed.root.removeChild(sig);
  const text = await c14n(parsed.doc);
  const document = new Uint8Array(Buffer.from(text));
  const digest = createHash('sha256').update(document).digest();
  if (!timingSafeEqual(digest, parts.digest)) fail('ERR_DUIS_DIGEST_MISMATCH', 'the document is not what was signed: its digest differs from the reference');
  if (!verifyP1363(cert.publicKey, signedInfo, parts.signatureValue)) fail('ERR_DUIS_SIGNATURE_INVALID', "the signature does not verify with the certificate's key");

  if (options.replay !== undefined && shape.kind === 'request') await claim(options.replay, shape.bodyName, shape.requestId, at);
  return {
    kind: shape.kind,
    document,
    xml: text,
    requestIdText: shape.requestIdText,
    originator: shape.requestId.originator,
    target: shape.requestId.target,
    counter: shape.requestId.counter,
    ...(shape.serviceReference !== undefined ? { serviceReference: shape.serviceReference } : {}),
    ...(shape.serviceReferenceVariant !== undefined ? { serviceReferenceVariant: shape.serviceReferenceVariant } : {}),
    ...(shape.commandVariant !== undefined ? { commandVariant: shape.commandVariant } : {}),
    body: shape.bodyName,
    certificate: cert,
    warnings: Object.freeze(warnings),
  };
}
