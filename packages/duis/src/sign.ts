/**
 * Signing DUIS documents: the User's Request, and (for the DCC side and for tests) a Response.
 * @module
 */
import type { XElement as Element } from './internal/tree.js';
import { createHash } from 'node:crypto';
import { SmkiError, equalBytes, verifyP1363 } from '@smki/core';
import type { Signer, SmkiErrorCode } from '@smki/core';
import { RemotePartyRole } from '@smki/core';
import { toCertificate } from '@smki/pki';
import type { CertificateInput, SmkiCertificate } from '@smki/pki';
import type { StateStore } from '@smki/store';
import { formatRequestId } from './message.js';
import type { RequestId } from './message.js';
import { readShape } from './internal/document.js';
import type { DuisKind } from './internal/document.js';
import { rfc2253, serialToDecimal } from './internal/names.js';
import { signatureXml, signedInfoXml } from './internal/signature.js';
import { DS_NS, c14n, documentText, excC14n, parseXml, rootDeclares } from './internal/xml.js';
import { text } from './internal/tree.js';

/** The largest document accepted by default (bytes of UTF-8). */
export const DEFAULT_MAX_DUIS_BYTES = 1024 * 1024;

/** Options of {@link signRequest}. */
export interface SignRequestOptions {
  /**
   * Set the request id's counter from a durable store: milliseconds since the epoch, or one more
   * than the last value used for (originator, target) if that is later, so the counter strictly
   * increases across restarts and processes sharing the store. Without it the counter in the
   * document is kept as written.
   */
  readonly requestCounter?: {
    /** The User's own state store (its sequence of (originator, target)). */
    readonly store: StateStore;
    /** The clock in milliseconds since the epoch (default `Date.now`). */
    readonly now?: () => number;
  };
  /** The largest document accepted, in bytes (default {@link DEFAULT_MAX_DUIS_BYTES}). */
  readonly maxBytes?: number;
}

/** A signed document. */
export interface SignedDuis {
  /** The signed document: UTF-8 text with an XML declaration, canonical and without white space between elements. */
  readonly xml: string;
  /** The request id as signed. */
  readonly requestId: RequestId;
  /** Its text. */
  readonly requestIdText: string;
}

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail: detail.slice(0, 200) });
}

/** Check the signer's certificate for the direction before anything is used. */
function checkCertificate(cert: SmkiCertificate, signer: Signer, kind: DuisKind, originator: string): void {
  if (cert.publicKey === undefined || !equalBytes(cert.publicKeyBytes, signer.publicKey)) {
    fail('ERR_DUIS_SIGNER_KEY_MISMATCH', "the signer's public key is not the certificate's");
  }
  if (kind === 'request') {
    if (cert.kind !== 'organisation' || cert.role !== RemotePartyRole.XmlSigning135 || !cert.keyUsage.includes('digitalSignature')) {
      fail('ERR_DUIS_SIGNER_ROLE', `a Request is signed with an organisation certificate of role 135 (XML signing) with digitalSignature; this one is ${cert.kind}, role ${cert.role ?? '(none)'}`);
    }
    if (cert.entityId !== originator) fail('ERR_DUIS_SIGNER_NOT_ORIGINATOR', `the certificate's entity ${cert.entityId ?? '(none)'} is not the request's originator ${originator}`);
  } else if (cert.kind !== 'organisation' || cert.role !== RemotePartyRole.XmlSigning137 || !cert.keyUsage.includes('digitalSignature')) {
    fail('ERR_DUIS_SIGNER_ROLE', `a Response is signed with the DCC's organisation certificate of role 137 with digitalSignature; this one is ${cert.kind}, role ${cert.role ?? '(none)'}`);
  }
}

async function sign(kind: DuisKind, xml: string | Uint8Array, signer: Signer, certificate: CertificateInput, options: SignRequestOptions): Promise<SignedDuis> {
  if (typeof signer !== 'object' || signer === null || typeof signer.sign !== 'function' || !(signer.publicKey instanceof Uint8Array)) {
    fail('ERR_INVALID_ARGUMENT', 'signer must be a Signer (publicKey and sign)');
  }
  const cert = toCertificate(certificate);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DUIS_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) fail('ERR_INVALID_ARGUMENT', 'maxBytes must be a positive integer', String(maxBytes));
  const parsed = await parseXml(documentText(xml, maxBytes));
  const shape = readShape(parsed);
  if (shape.kind !== kind) fail('ERR_DUIS_DOCUMENT_KIND', `the document is a ${shape.kind}, not a ${kind}`);
  const declared = rootDeclares(parsed.root, 'ds');
  if (declared !== undefined && declared !== DS_NS) fail('ERR_DUIS_STRUCTURE', `the root binds the prefix ds to ${declared}, not the XML Signature namespace`);
  // A template's placeholder signature (or an old one) goes: the new one is the only one.
  for (const old of shape.signatures) parsed.root.removeChild(old);
  if (parsed.doc.getElementsByTagNameNS(DS_NS, 'Signature').length > 0) fail('ERR_DUIS_STRUCTURE', 'a ds:Signature elsewhere than as a child of the root');
  checkCertificate(cert, signer, kind, shape.requestId.originator);

  let requestId = shape.requestId;
  const counter = options.requestCounter;
  if (counter !== undefined) {
    if (kind !== 'request') fail('ERR_INVALID_ARGUMENT', 'requestCounter applies to Requests only');
    const now = (counter.now ?? Date.now)();
    if (!Number.isSafeInteger(now) || now < 0) fail('ERR_INVALID_ARGUMENT', 'the clock must give milliseconds since the epoch', String(now));
    const [outcome] = await counter.store.commit([{ sequence: { owner: requestId.originator, device: requestId.target, floor: BigInt(now) } }]);
    if (outcome?.status !== 'committed' || outcome.sequence === undefined) {
      fail('ERR_DUIS_REQUEST_ID_INVALID', `no request counter is left for ${requestId.originator} to ${requestId.target}`, outcome?.status);
    }
    requestId = { ...requestId, counter: outcome.sequence };
    const idElement = shape.requestIdElement;
    while (idElement.firstChild) idElement.removeChild(idElement.firstChild);
    idElement.appendChild(text(formatRequestId(requestId)));
  }

  // The reference: inclusive C14N 1.0 of the whole document without the signature (enveloped).
  const body = await c14n(parsed.doc);
  const digest = createHash('sha256').update(body, 'utf8').digest('base64');
  const signedInfo = await parseXml(signedInfoXml(digest, true));
  const canonicalSignedInfo = Buffer.from(await excC14n(signedInfo.root), 'utf8');
  const requestIdText = formatRequestId(requestId);
  // A signer that takes a use context (the key store's xmlSigner) records the request id in its
  // audit trail; core's Signer ignores the second argument.
  const value = await (signer.sign as (message: Uint8Array, use?: { readonly requestId: string }) => Promise<Uint8Array>).call(signer, canonicalSignedInfo, { requestId: requestIdText });
  if (!(value instanceof Uint8Array) || value.length !== 64 || !verifyP1363(cert.publicKey as NonNullable<SmkiCertificate['publicKey']>, canonicalSignedInfo, value)) {
    fail('ERR_DUIS_SIGNATURE_INVALID', 'the signer returned a signature that does not verify with the certificate');
  }
  const signature = signatureXml(digest, Buffer.from(value).toString('base64'), rfc2253(cert.issuer), serialToDecimal(cert.serialNumber), declared === undefined);
  const close = `</${parsed.root.nodeName}>`;
  const out = `<?xml version="1.0" encoding="UTF-8"?>${body.slice(0, body.length - close.length)}${signature}${close}`;
  return { xml: out, requestId, requestIdText };
}

/**
 * Sign a DUIS Request as a User: removes any signature the document carries (templates carry a
 * placeholder), optionally sets the request id's counter from a durable store, digests the
 * document without white space between elements (inclusive Canonical XML 1.0, SHA-256), and
 * appends one `ds:Signature` as the root's last child: exclusive C14N of SignedInfo,
 * ECDSA P-256/SHA-256 through `signer` (raw r‖s, so an HSM or keystore key works), KeyInfo with
 * the issuer in RFC 2253 form without spaces and the serial in decimal. `signer.sign` is called
 * with the canonical SignedInfo and `{ requestId }`: the key store's `xmlSigner` records that id in
 * its audit trail, and a plain `Signer` ignores it.
 *
 * Refused before any key is used or any counter moves: a document that is not a DUIS Request or
 * not well formed under the profile, a certificate that is not the signer's, not role 135 with
 * digitalSignature, or not of the request's originator.
 *
 * @throws SmkiError `ERR_DUIS_TOO_LARGE`, `ERR_DUIS_DOCTYPE`, `ERR_DUIS_MALFORMED`, `ERR_DUIS_COMMENT`,
 *   `ERR_DUIS_PROCESSING_INSTRUCTION`, `ERR_DUIS_DOCUMENT_KIND`, `ERR_DUIS_STRUCTURE`,
 *   `ERR_DUIS_REQUEST_ID_INVALID`, `ERR_DUIS_SIGNER_KEY_MISMATCH`, `ERR_DUIS_SIGNER_ROLE`,
 *   `ERR_DUIS_SIGNER_NOT_ORIGINATOR`, `ERR_DUIS_SIGNATURE_INVALID` (the signer's output does not verify),
 *   `ERR_INVALID_ARGUMENT`, `ERR_EUI64_INVALID`, `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`
 * @see W3C XML Signature Syntax and Processing (enveloped signature), RFC 4051 §3.3 (ECDSA-SHA256), docs/domain.md §8
 * @example
 * ```ts
 * import { createKeySigner } from '@smki/core';
 * import { signRequest } from '@smki/duis';
 * declare const userKey: import('node:crypto').KeyObject, userXmlCertificate: Uint8Array;
 * const request =
 *   '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">' +
 *   '<sr:Header><sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000</sr:RequestID>' +
 *   '<sr:CommandVariant>4</sr:CommandVariant><sr:ServiceReference>7.2</sr:ServiceReference>' +
 *   '<sr:ServiceReferenceVariant>7.2</sr:ServiceReferenceVariant></sr:Header>' +
 *   '<sr:Body><sr:DisableSupply/></sr:Body></sr:Request>';
 * const signed = await signRequest(request, createKeySigner(userKey), userXmlCertificate);
 * console.log(signed.xml.endsWith('</ds:Signature></sr:Request>')); // true
 * ```
 */
export function signRequest(xml: string | Uint8Array, signer: Signer, certificate: CertificateInput, options: SignRequestOptions = {}): Promise<SignedDuis> {
  return sign('request', xml, signer, certificate, options);
}

/**
 * Sign a DUIS Response as the DCC does (role 137), under the same profile. For a DCC-side
 * service, and for testing a User's verification of Responses.
 * @throws SmkiError as {@link signRequest}, with `ERR_DUIS_DOCUMENT_KIND` for a document that is not a Response
 * @see docs/domain.md §8
 * @example
 * ```ts
 * import { createKeySigner } from '@smki/core';
 * import { signResponse } from '@smki/duis';
 * declare const dccKey: import('node:crypto').KeyObject, dccXmlCertificate: Uint8Array, response: string;
 * const signed = await signResponse(response, createKeySigner(dccKey), dccXmlCertificate);
 * ```
 */
export function signResponse(xml: string | Uint8Array, signer: Signer, certificate: CertificateInput, options: Pick<SignRequestOptions, 'maxBytes'> = {}): Promise<SignedDuis> {
  return sign('response', xml, signer, certificate, { ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}) });
}
