/**
 * The shape of a DUIS document: root, header, body, and the enveloped signature's place.
 * @internal
 */
import type { XElement as Element } from './tree.js';
import { SmkiError } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { parseRequestId } from '../message.js';
import type { RequestId } from '../message.js';
import { DS_NS, SR_NS, childElements, isElement, textOf } from './xml.js';
import type { ParsedXml } from './xml.js';

/** Request or Response. */
export type DuisKind = 'request' | 'response';

/** What a DUIS document says about itself. */
export interface DuisShape {
  readonly kind: DuisKind;
  readonly header: Element;
  readonly body: Element;
  /** The header's one `sr:RequestID` element. */
  readonly requestIdElement: Element;
  /** The request id's text and its parts. */
  readonly requestIdText: string;
  readonly requestId: RequestId;
  readonly serviceReference?: string;
  readonly serviceReferenceVariant?: string;
  readonly commandVariant?: string;
  /** Local name of the body's element (`DisableSupply`, `PreCommand`, `SignedPreCommand`, …); empty for an empty body. */
  readonly bodyName: string;
  /** The root's `ds:Signature` children. */
  readonly signatures: readonly Element[];
}

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail: detail.slice(0, 200) });
}

/** The kind of the document from its root, or a refusal. */
export function documentKind(root: Element): DuisKind {
  if (root.namespaceURI === SR_NS && root.localName === 'Request') return 'request';
  if (root.namespaceURI === SR_NS && root.localName === 'Response') return 'response';
  return fail('ERR_DUIS_DOCUMENT_KIND', `the root is {${root.namespaceURI ?? ''}}${root.nodeName}, not a DUIS Request or Response`);
}

function optionalText(header: Element, local: string): string | undefined {
  const found = childElements(header).filter((e) => isElement(e, SR_NS, local));
  if (found.length > 1) fail('ERR_DUIS_STRUCTURE', `the header has ${found.length} ${local} elements`);
  return found[0] === undefined ? undefined : textOf(found[0]);
}

/**
 * Read the header and body. The root holds exactly `sr:Header`, `sr:Body` and then, where signed,
 * one or more `ds:Signature` (the verifier refuses more than one); nothing else.
 */
export function readShape(parsed: ParsedXml): DuisShape {
  const { root } = parsed;
  const kind = documentKind(root);
  const children = childElements(root);
  const signatures = children.filter((e) => isElement(e, DS_NS, 'Signature'));
  const others: Element[] = children.filter((e) => !isElement(e, DS_NS, 'Signature'));
  const header = others[0];
  const body = others[1];
  if (others.length !== 2 || !isElement(header, SR_NS, 'Header') || !isElement(body, SR_NS, 'Body')) {
    return fail('ERR_DUIS_STRUCTURE', `the root must hold sr:Header then sr:Body (then ds:Signature); it holds ${others.map((e: Element) => String(e.nodeName)).join(', ') || 'nothing'}`);
  }
  const ids = childElements(header).filter((e) => isElement(e, SR_NS, 'RequestID'));
  if (ids.length !== 1) fail('ERR_DUIS_STRUCTURE', `the header must hold one sr:RequestID; it holds ${ids.length}`);
  const requestIdText = textOf(ids[0] as Element);
  const requestId = parseRequestId(requestIdText);
  const bodyChildren = childElements(body);
  if (bodyChildren.length > 1) fail('ERR_DUIS_STRUCTURE', `the body must hold one element; it holds ${bodyChildren.length}`);
  const first = bodyChildren[0];
  if (first !== undefined && first.namespaceURI !== SR_NS) fail('ERR_DUIS_STRUCTURE', `the body's element is not in the DUIS namespace`);
  const serviceReference = optionalText(header, 'ServiceReference');
  const serviceReferenceVariant = optionalText(header, 'ServiceReferenceVariant');
  const commandVariant = optionalText(header, 'CommandVariant');
  return {
    kind,
    header,
    body,
    requestIdElement: ids[0] as Element,
    requestIdText,
    requestId,
    ...(serviceReference !== undefined ? { serviceReference } : {}),
    ...(serviceReferenceVariant !== undefined ? { serviceReferenceVariant } : {}),
    ...(commandVariant !== undefined ? { commandVariant } : {}),
    bodyName: first?.localName ?? '',
    signatures,
  };
}
