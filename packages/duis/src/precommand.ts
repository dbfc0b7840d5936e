/**
 * The critical-command round trip in DUIS: the pre-command out of the DCC's Response, and the
 * User's signed pre-command Request.
 * @module
 */
import type { XElement as Element } from './internal/tree.js';
import { SmkiError, fromBase64 } from '@smki/core';
import type { Eui64, Signer, SmkiErrorCode } from '@smki/core';
import type { CertificateInput } from '@smki/pki';
import { parseMessage, signPreCommand } from '@smki/gbcs';
import type { GbcsMessage } from '@smki/gbcs';
import { formatRequestId } from './message.js';
import { signRequest } from './sign.js';
import type { SignRequestOptions, SignedDuis } from './sign.js';
import type { VerifiedDuis } from './verify.js';
import { escapeText } from './internal/signature.js';
import { SR_NS, childElements, isElement, parseXml, textOf } from './internal/xml.js';

/** The largest GBCS payload taken from a DUIS body (bytes, after base64). */
const MAX_GBCS_BYTES = 64 * 1024;

/** A pre-command taken from a verified `sr:PreCommand` Response. */
export interface PreCommand {
  /** The GBCS pre-command (an unsigned general-signing APDU). */
  readonly preCommand: Uint8Array;
  /** Its parsed view. */
  readonly message: GbcsMessage;
  /** `sr:GBCSVersion` as written. */
  readonly gbcsVersion: string;
  /** The request id it answers. */
  readonly requestIdText: string;
  /** The request id's originator (the User). */
  readonly originator: Eui64;
  /** The request id's target (the device). */
  readonly target: Eui64;
  /** The request id's counter. */
  readonly counter: bigint;
}

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail: detail.slice(0, 200) });
}

function child(el: Element, local: string): Element {
  const found = childElements(el).filter((e) => isElement(e, SR_NS, local));
  if (found.length !== 1) fail('ERR_DUIS_STRUCTURE', `sr:${el.localName} must hold one sr:${local}; it holds ${found.length}`);
  return found[0] as Element;
}

/** The GBCS payload of an element (`sr:GBCSPayload`, base64 with white space allowed). */
function gbcsPayload(el: Element): Uint8Array {
  const text = textOf(child(el, 'GBCSPayload')).replace(/[ \t\r\n]/g, '');
  if (text.length > Math.ceil(MAX_GBCS_BYTES / 3) * 4) fail('ERR_DUIS_STRUCTURE', `the GBCS payload is over ${MAX_GBCS_BYTES} bytes`);
  try {
    return fromBase64(text);
  } catch (e) {
    return fail('ERR_DUIS_STRUCTURE', 'sr:GBCSPayload is not base64', e instanceof Error ? e.message : undefined);
  }
}

/** Parse a verified document's canonical text and return its root's body element. */
async function bodyOf(verified: VerifiedDuis): Promise<Element> {
  const parsed = await parseXml(verified.xml);
  const body = childElements(parsed.root).find((e) => isElement(e, SR_NS, 'Body'));
  const first = body === undefined ? undefined : childElements(body)[0];
  if (first === undefined) fail('ERR_DUIS_STRUCTURE', 'the body is empty');
  return first;
}

/** Check that a GBCS message is for the request id's originator and target. */
function checkBinding(message: GbcsMessage, originator: Eui64, target: Eui64, what: string): void {
  if (message.originator !== originator || message.recipient !== target) {
    fail('ERR_DUIS_GBCS_MISMATCH', `the ${what}'s GBCS header (originator ${message.originator}, recipient ${message.recipient}) is not the request id's (${originator}, ${target})`);
  }
}

/**
 * The GBCS pre-command of a DCC Response with body `sr:PreCommand { sr:GBCSVersion,
 * sr:GBCSPayload }`, taken from the document **as verified** by {@link verifyDuis} (never from
 * unverified input). The GBCS header's originator and recipient must be the request id's.
 * @throws SmkiError `ERR_DUIS_DOCUMENT_KIND` (not a verified Response with a PreCommand body),
 *   `ERR_DUIS_STRUCTURE`, `ERR_DUIS_GBCS_MISMATCH`, `ERR_GBCS_MALFORMED` and the GBCS codec's codes
 * @see docs/domain.md §8 (the round trip), §4 (signing a pre-command)
 * @example
 * ```ts
 * import { DuisTrust, preCommandFromResponse, verifyDuis } from '@smki/duis';
 * declare const trust: DuisTrust, response: string;
 * const verified = await verifyDuis(response, trust, { expect: 'response' });
 * const { preCommand, message } = await preCommandFromResponse(verified);
 * console.log(message.messageCode.toString(16), preCommand.length);
 * ```
 */
export async function preCommandFromResponse(verified: VerifiedDuis): Promise<PreCommand> {
  if (typeof verified !== 'object' || verified === null || verified.kind !== 'response' || verified.body !== 'PreCommand' || typeof verified.xml !== 'string') {
    fail('ERR_DUIS_DOCUMENT_KIND', 'a pre-command is taken only from a verified Response whose body is sr:PreCommand');
  }
  const pre = await bodyOf(verified);
  if (!isElement(pre, SR_NS, 'PreCommand')) fail('ERR_DUIS_DOCUMENT_KIND', 'the body is not sr:PreCommand');
  const gbcsVersion = textOf(child(pre, 'GBCSVersion'));
  const preCommand = gbcsPayload(pre);
  const message = parseMessage(preCommand);
  checkBinding(message, verified.originator, verified.target, 'pre-command');
  return { preCommand, message, gbcsVersion, requestIdText: verified.requestIdText, originator: verified.originator, target: verified.target, counter: verified.counter };
}

/** What a pre-command signature is for, passed to {@link PreCommandSigner.signFor} (the key store audits it). */
export interface PreCommandUse {
  /** The GBCS message code. */
  readonly messageCode?: number;
  /** The GBCS originator counter. */
  readonly counter?: bigint;
  /** The organisation in the key store, where it holds several. */
  readonly organisation?: string;
}

/** Signs GBCS pre-commands for a device with the key that meter trusts (a `KeyStore` does). */
export interface PreCommandSigner {
  /** Sign `data` for `device` (ECDSA P-256/SHA-256, 64-byte r‖s), with the command's code and counter for the audit. */
  signFor(device: string, data: Uint8Array, use: PreCommandUse): Promise<Uint8Array>;
}

/** Header fields repeated from the service request in a signed pre-command Request. */
export interface SignedPreCommandHeader {
  /** `sr:CommandVariant`. */
  readonly commandVariant?: string;
  /** `sr:ServiceReference`. */
  readonly serviceReference?: string;
  /** `sr:ServiceReferenceVariant`. */
  readonly serviceReferenceVariant?: string;
}

/** The signed GBCS pre-command of a verified `sr:SignedPreCommand` Request. */
export interface SignedPreCommandTaken {
  /** The signed GBCS pre-command, as carried. */
  readonly signedPreCommand: Uint8Array;
  /** Its parsed view. */
  readonly message: GbcsMessage;
}

/** What {@link signedPreCommandRequest} needs. */
export interface SignedPreCommandRequestOptions {
  /** The pre-command, from {@link preCommandFromResponse}. */
  readonly preCommand: PreCommand;
  /** Signs the GBCS pre-command with the device's portfolio key (a `KeyStore` from @smki/keystore). */
  readonly keystore: PreCommandSigner;
  /** The organisation in the key store, where it holds several. */
  readonly organisation?: string;
  /** The User's XML-signing key (role 135): a `Signer`, e.g. the key store's `xmlSigner`. */
  readonly xmlSigner: Signer;
  /** Its certificate. */
  readonly xmlCertificate: CertificateInput;
  /** Header fields to repeat from the service request (written when given). */
  readonly header?: SignedPreCommandHeader;
  /** `schemaVersion` of the Request (default `5.4`). */
  readonly schemaVersion?: string;
  /** The largest document accepted, in bytes. */
  readonly maxBytes?: SignRequestOptions['maxBytes'];
}

/** A signed pre-command Request. */
export interface SignedPreCommandRequest extends SignedDuis {
  /** The signed GBCS pre-command carried in `sr:GBCSPayload`. */
  readonly signedPreCommand: Uint8Array;
}

const TOKEN = /^[0-9A-Za-z.]{1,32}$/;

/**
 * The User's answer to a pre-command: sign the GBCS pre-command with the key the device trusts
 * (through the key store, so the portfolio segregation holds and the use is audited), wrap it as
 * `sr:SignedPreCommand { sr:GBCSPayload }` under the same request id, and sign the Request.
 * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_DUIS_GBCS_MISMATCH`, the key store's codes (e.g.
 *   `ERR_DEVICE_UNKNOWN`, `ERR_KEY_REVOKED`), `ERR_GBCS_ALREADY_SIGNED`, `ERR_GBCS_NOT_PRE_COMMAND`,
 *   and as {@link signRequest}
 * @see docs/domain.md §8 (the round trip)
 * @example
 * ```ts
 * import { preCommandFromResponse, signedPreCommandRequest } from '@smki/duis';
 * import type { KeyStore } from '@smki/keystore';
 * declare const keystore: KeyStore, verifiedResponse: import('@smki/duis').VerifiedDuis;
 * const preCommand = await preCommandFromResponse(verifiedResponse);
 * const xmlSigner = await keystore.xmlSigner('90B3D51F30010000');
 * const request = await signedPreCommandRequest({ preCommand, keystore, xmlSigner, xmlCertificate: xmlSigner.certificate });
 * console.log(request.xml);
 * ```
 */
export async function signedPreCommandRequest(options: SignedPreCommandRequestOptions): Promise<SignedPreCommandRequest> {
  if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'options are required');
  const { preCommand, keystore } = options;
  if (typeof preCommand !== 'object' || preCommand === null || !(preCommand.preCommand instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'preCommand must come from preCommandFromResponse');
  if (typeof keystore?.signFor !== 'function') fail('ERR_INVALID_ARGUMENT', 'keystore must sign for devices (signFor)');
  const header = options.header ?? {};
  for (const [k, v] of Object.entries(header)) if (v !== undefined && !TOKEN.test(v)) fail('ERR_INVALID_ARGUMENT', `header.${k} must be 1 to 32 letters, digits or dots`, String(v));
  const schemaVersion = options.schemaVersion ?? '5.4';
  if (!TOKEN.test(schemaVersion)) fail('ERR_INVALID_ARGUMENT', 'schemaVersion must be 1 to 32 letters, digits or dots', schemaVersion);
  // Re-read the bytes: the header the key store is told about is the one signed.
  const message = parseMessage(preCommand.preCommand);
  checkBinding(message, preCommand.originator, preCommand.target, 'pre-command');
  const device = message.recipient;
  const use = { messageCode: message.messageCode, counter: message.originatorCounter, ...(options.organisation !== undefined ? { organisation: options.organisation } : {}) };
  const deviceSigner: Signer = {
    publicKey: new Uint8Array(0),
    sign: (data) => keystore.signFor(device, data, use),
  };
  const signedPreCommand = await signPreCommand(preCommand.preCommand, deviceSigner);
  const requestIdText = formatRequestId({ originator: preCommand.originator, target: preCommand.target, counter: preCommand.counter });
  const xml =
    `<sr:Request xmlns:sr="${SR_NS}" schemaVersion="${schemaVersion}"><sr:Header>` +
    `<sr:RequestID>${escapeText(requestIdText)}</sr:RequestID>` +
    (header.commandVariant !== undefined ? `<sr:CommandVariant>${header.commandVariant}</sr:CommandVariant>` : '') +
    (header.serviceReference !== undefined ? `<sr:ServiceReference>${header.serviceReference}</sr:ServiceReference>` : '') +
    (header.serviceReferenceVariant !== undefined ? `<sr:ServiceReferenceVariant>${header.serviceReferenceVariant}</sr:ServiceReferenceVariant>` : '') +
    `</sr:Header><sr:Body><sr:SignedPreCommand><sr:GBCSPayload>${Buffer.from(signedPreCommand).toString('base64')}</sr:GBCSPayload></sr:SignedPreCommand></sr:Body></sr:Request>`;
  const signed = await signRequest(xml, options.xmlSigner, options.xmlCertificate, options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {});
  return { ...signed, signedPreCommand };
}

/**
 * The signed GBCS pre-command of a verified `sr:SignedPreCommand` Request (the DCC's side), from
 * the document as verified. The GBCS header's originator and recipient must be the request id's.
 * @throws SmkiError `ERR_DUIS_DOCUMENT_KIND`, `ERR_DUIS_STRUCTURE`, `ERR_DUIS_GBCS_MISMATCH`, `ERR_GBCS_MALFORMED`
 * @see docs/domain.md §8
 * @example
 * ```ts
 * import { DuisTrust, signedPreCommandFromRequest, verifyDuis } from '@smki/duis';
 * declare const trust: DuisTrust, request: string;
 * const verified = await verifyDuis(request, trust, { expect: 'request' });
 * const { signedPreCommand } = await signedPreCommandFromRequest(verified);
 * ```
 */
export async function signedPreCommandFromRequest(verified: VerifiedDuis): Promise<SignedPreCommandTaken> {
  if (typeof verified !== 'object' || verified === null || verified.kind !== 'request' || verified.body !== 'SignedPreCommand' || typeof verified.xml !== 'string') {
    fail('ERR_DUIS_DOCUMENT_KIND', 'a signed pre-command is taken only from a verified Request whose body is sr:SignedPreCommand');
  }
  const el = await bodyOf(verified);
  if (!isElement(el, SR_NS, 'SignedPreCommand')) fail('ERR_DUIS_DOCUMENT_KIND', 'the body is not sr:SignedPreCommand');
  const signedPreCommand = gbcsPayload(el);
  const message = parseMessage(signedPreCommand);
  checkBinding(message, verified.originator, verified.target, 'signed pre-command');
  return { signedPreCommand, message };
}
