/**
 * The one module that touches the XML libraries: `@xmldom/xmldom` parses, `xmldsigjs`
 * canonicalises (W3C Canonical XML 1.0 and Exclusive XML Canonicalization 1.0). Both are loaded
 * on first use, never at import time. Only xmldsigjs's canonicaliser is used, which needs no
 * crypto engine: no process-wide state (`Application.setEngine`, xml-core's node dependencies)
 * is ever set. Digests and signatures are computed with node:crypto and the caller's `Signer`.
 * @internal
 */
import type { Document, Element, Node } from '@xmldom/xmldom';
import { SmkiError } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';

type XmlDom = typeof import('@xmldom/xmldom');
type XmlDsig = typeof import('xmldsigjs');

/** The loaded libraries. */
export interface XmlLibs {
  readonly dom: XmlDom;
  readonly dsig: XmlDsig;
}

let loading: Promise<XmlLibs> | undefined;

/** Load the XML libraries (once per process; every later call returns the same promise). */
export function xmlLibs(): Promise<XmlLibs> {
  loading ??= Promise.all([import('@xmldom/xmldom'), import('xmldsigjs')]).then(([dom, dsig]) => ({ dom, dsig }));
  return loading;
}

/** The XML Signature namespace. */
export const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
/** The DUIS namespace. */
export const SR_NS = 'http://www.dccinterface.co.uk/ServiceUserGateway';
/** The xmlns namespace. */
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** Most elements nested inside one another in a DUIS document. */
export const MAX_XML_DEPTH = 32;

const ELEMENT = 1;
const TEXT = 3;
const CDATA = 4;
const PI = 7;
const COMMENT = 8;
const DOCTYPE = 10;

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail: detail.slice(0, 200) });
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * The document as text: a string as given, bytes decoded as strict UTF-8 (a leading BOM dropped).
 * Bounded before anything is decoded or parsed.
 */
export function documentText(xml: string | Uint8Array, maxBytes: number): string {
  if (typeof xml === 'string') {
    // Each UTF-16 unit is at least one UTF-8 byte; at most three: bound before encoding anything.
    if (xml.length > maxBytes) fail('ERR_DUIS_TOO_LARGE', `the document is over ${maxBytes} bytes`, String(xml.length));
    if (Buffer.byteLength(xml, 'utf8') > maxBytes) fail('ERR_DUIS_TOO_LARGE', `the document is over ${maxBytes} bytes`);
    return xml;
  }
  if (!(xml instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'the document must be a string or a Uint8Array', typeof xml);
  if (xml.byteLength > maxBytes) fail('ERR_DUIS_TOO_LARGE', `the document is over ${maxBytes} bytes`, String(xml.byteLength));
  try {
    return decoder.decode(xml);
  } catch {
    return fail('ERR_DUIS_MALFORMED', 'the document is not UTF-8');
  }
}

/** A parsed, checked DUIS document with its inter-element white space removed. */
export interface ParsedXml {
  readonly doc: Document;
  readonly root: Element;
}

/**
 * Parse a document under the profile's rules, fail closed:
 * - no DOCTYPE and no entity declaration (refused before parsing: XXE, entity expansion);
 * - well formed (every parser error and warning refuses);
 * - no comment, no processing instruction (the XML declaration excepted), no CDATA section;
 * - at most {@link MAX_XML_DEPTH} nested elements; no text beside child elements but white space;
 * - white-space-only text between elements is removed (as a schema-validating parser ignores it);
 *   white space that is an element's whole value is kept.
 */
export async function parseXml(text: string): Promise<ParsedXml> {
  if (/<!DOCTYPE/i.test(text)) fail('ERR_DUIS_DOCTYPE', 'the document has a DOCTYPE declaration (refused: external entities, entity expansion)');
  if (/<!ENTITY/i.test(text)) fail('ERR_DUIS_DOCTYPE', 'the document declares an entity (refused: external entities, entity expansion)');
  const { dom } = await xmlLibs();
  const problems: string[] = [];
  let doc: Document;
  try {
    doc = new dom.DOMParser({
      onError: (level: string, message: string) => {
        problems.push(`${level}: ${message}`);
      },
    }).parseFromString(text, 'text/xml') as unknown as Document;
  } catch (e) {
    return fail('ERR_DUIS_MALFORMED', 'the document is not well-formed XML', e instanceof Error ? e.message : String(e));
  }
  if (problems.length > 0) fail('ERR_DUIS_MALFORMED', 'the document is not well-formed XML', problems[0]);
  let root: Element | undefined;
  let first = true;
  for (let n = doc.firstChild; n !== null; n = n.nextSibling) {
    checkNode(n, 0);
    if (n.nodeType === PI) {
      // The XML declaration is reported as a processing instruction named xml: allowed first only.
      if (!(first && n.nodeName === 'xml')) fail('ERR_DUIS_PROCESSING_INSTRUCTION', `the document has a processing instruction <?${n.nodeName}?>`);
    } else if (n.nodeType === ELEMENT) {
      if (root !== undefined) fail('ERR_DUIS_MALFORMED', 'the document has more than one root element');
      root = n as Element;
    } else if (n.nodeType === TEXT) {
      if (!isWhiteSpace(n.nodeValue ?? '')) fail('ERR_DUIS_MALFORMED', 'text outside the root element');
    } else if (n.nodeType === DOCTYPE) {
      fail('ERR_DUIS_DOCTYPE', 'the document has a DOCTYPE declaration');
    } else {
      fail('ERR_DUIS_MALFORMED', `a node of type ${n.nodeType} outside the root element`);
    }
    first = false;
  }
  if (root === undefined) fail('ERR_DUIS_MALFORMED', 'the document has no root element');
  // Document-level white space is not part of the canonical form; drop it so the tree is exact.
  for (let n = doc.firstChild; n !== null; ) {
    const next = n.nextSibling;
    if (n.nodeType === TEXT) doc.removeChild(n);
    n = next;
  }
  walk(root, 1);
  return { doc, root };
}

function isWhiteSpace(s: string): boolean {
  return /^[ \t\r\n]*$/.test(s);
}

function checkNode(n: Node, depth: number): void {
  switch (n.nodeType) {
    case COMMENT:
      return fail('ERR_DUIS_COMMENT', 'the document has a comment');
    case CDATA:
      return fail('ERR_DUIS_MALFORMED', 'the document has a CDATA section');
    case DOCTYPE:
      return fail('ERR_DUIS_DOCTYPE', 'the document has a DOCTYPE declaration');
    default:
      if (depth > MAX_XML_DEPTH) fail('ERR_DUIS_MALFORMED', `elements nest deeper than ${MAX_XML_DEPTH}`);
  }
}

/** Check the subtree and remove white-space-only text beside child elements. */
function walk(el: Element, depth: number): void {
  let hasElement = false;
  for (let n = el.firstChild; n !== null; n = n.nextSibling) {
    checkNode(n, depth);
    if (n.nodeType === PI) fail('ERR_DUIS_PROCESSING_INSTRUCTION', `the document has a processing instruction <?${n.nodeName}?>`);
    if (n.nodeType === ELEMENT) hasElement = true;
    else if (n.nodeType !== TEXT) fail('ERR_DUIS_MALFORMED', `a node of type ${n.nodeType} inside <${el.nodeName}>`);
  }
  if (!hasElement) return;
  for (let n = el.firstChild; n !== null; ) {
    const next = n.nextSibling;
    if (n.nodeType === TEXT) {
      if (!isWhiteSpace(n.nodeValue ?? '')) fail('ERR_DUIS_MALFORMED', `<${el.nodeName}> has text beside its child elements`, (n.nodeValue ?? '').trim());
      el.removeChild(n);
    } else {
      walk(n as Element, depth + 1);
    }
    n = next;
  }
}

/** The element children of a node. */
export function childElements(el: Node): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n !== null; n = n.nextSibling) if (n.nodeType === ELEMENT) out.push(n as Element);
  return out;
}

/** Whether an element is `{ns}local`. */
export function isElement(n: Node | null | undefined, ns: string, local: string): n is Element {
  return n !== null && n !== undefined && n.nodeType === ELEMENT && (n as Element).namespaceURI === ns && (n as Element).localName === local;
}

/** The text content of an element that must hold only text (no child element). */
export function textOf(el: Element): string {
  let s = '';
  for (let n = el.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType !== TEXT) fail('ERR_DUIS_MALFORMED', `<${el.nodeName}> must hold text only`);
    s += n.nodeValue ?? '';
  }
  return s;
}

/** Every element `{ns}local` in the document, in document order. */
export function elementsNamed(doc: Document, ns: string, local: string): Element[] {
  return Array.from(doc.getElementsByTagNameNS(ns, local) as unknown as ArrayLike<Element>);
}

/** The namespace the root declares for `prefix`, if it declares one. */
export function rootDeclares(root: Element, prefix: string): string | undefined {
  const a = root.getAttributeNodeNS(XMLNS_NS, prefix);
  return a === null ? undefined : (a.value ?? '');
}

/** Inclusive Canonical XML 1.0 without comments of a node (a whole document: of its root). */
export async function c14n(node: Node): Promise<string> {
  const { dsig } = await xmlLibs();
  return new dsig.XmlCanonicalizer(false, false).Canonicalize(node as never);
}

/** Exclusive XML Canonicalization 1.0 without comments of an element (no inclusive prefixes). */
export async function excC14n(node: Node): Promise<string> {
  const { dsig } = await xmlLibs();
  return new dsig.XmlCanonicalizer(false, true).Canonicalize(node as never);
}

/** XMLNS namespace, for declarations. */
export { XMLNS_NS };
