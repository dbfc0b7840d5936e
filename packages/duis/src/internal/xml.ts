/**
 * The one module that touches the XML libraries: `saxes` parses (strict, namespace-aware XML 1.0)
 * into the small tree of `tree.ts`; `xmldsigjs` canonicalises (W3C Canonical XML 1.0 and
 * Exclusive XML Canonicalization 1.0). Both are loaded on first use, never at import time. Only
 * xmldsigjs's canonicaliser is used, which needs no crypto engine: no process-wide state
 * (`Application.setEngine`, xml-core's node dependencies) is ever set. Digests and signatures are
 * computed with node:crypto and the caller's `Signer`.
 * @internal
 */
import { SmkiError } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { ELEMENT_NODE, TEXT_NODE, attribute, documentNode, element, text as textNode } from './tree.js';
import type { XAttr, XChildNode, XDocument, XElement, XNode, XParent } from './tree.js';

type Saxes = typeof import('saxes');
type XmlDsig = typeof import('xmldsigjs');

/** The loaded libraries. */
export interface XmlLibs {
  readonly saxes: Saxes;
  readonly dsig: XmlDsig;
}

let loading: Promise<XmlLibs> | undefined;

/** Load the XML libraries (once per process; every later call returns the same promise). */
export function xmlLibs(): Promise<XmlLibs> {
  loading ??= Promise.all([import('saxes'), import('xmldsigjs')]).then(([saxes, dsig]) => ({ saxes, dsig }));
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
  readonly doc: XDocument;
  readonly root: XElement;
}

/**
 * Parse a document under the profile's rules, fail closed:
 * - no DOCTYPE and no entity declaration (refused before parsing: XXE, entity expansion);
 * - well formed, namespace-well-formed XML 1.0 (the parser's first error refuses), UTF-8;
 * - no comment, no processing instruction (the XML declaration excepted), no CDATA section
 *   (refused by their text, before parsing);
 * - at most {@link MAX_XML_DEPTH} nested elements; no text beside child elements but white space;
 * - white-space-only text between elements is removed (as a schema-validating parser ignores it);
 *   white space that is an element's whole value is kept.
 */
export async function parseXml(text: string): Promise<ParsedXml> {
  refuseMarkup(text);
  const { saxes } = await xmlLibs();
  // One parser, reused: saxes resets itself at the end of each document, and a parser whose
  // handlers never change keeps its objects' shapes stable (a new parser with new handlers per
  // document costs several times as much). The parse below is synchronous, so no other document
  // can start on it meanwhile; after a refusal mid-document it is dropped and a new one is made.
  const state: BuildState = { doc: documentNode(), stack: [], text: '' };
  const parser = (shared ??= newParser(saxes));
  current = state;
  try {
    parser.write(text).close();
  } catch (e) {
    shared = undefined;
    throw e;
  } finally {
    current = undefined;
  }
  const root = state.doc.documentElement;
  if (root === null) return fail('ERR_DUIS_MALFORMED', 'the document has no root element');
  return { doc: state.doc, root };
}

/**
 * Refuse the markup the profile does not allow, by its text: a `<` never appears raw in character
 * data or an attribute value, so a DOCTYPE, an entity declaration, a comment, a processing
 * instruction or a CDATA section can only be written with these openings. (Checked here rather
 * than by parser events: every extra handler on the parser slows all of its parsing.)
 */
function refuseMarkup(text: string): void {
  if (/<!DOCTYPE/i.test(text)) fail('ERR_DUIS_DOCTYPE', 'the document has a DOCTYPE declaration (refused: external entities, entity expansion)');
  if (/<!ENTITY/i.test(text)) fail('ERR_DUIS_DOCTYPE', 'the document declares an entity (refused: external entities, entity expansion)');
  if (text.includes('<!--')) fail('ERR_DUIS_COMMENT', 'the document has a comment');
  // The XML declaration, first in the document (after a byte order mark), is the one `<?` allowed.
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const declaration = /^<\?xml[ \t\r\n]/.test(text.slice(start, start + 6)) ? text.indexOf('?>', start) : -1;
  const pi = text.indexOf('<?', declaration < 0 ? 0 : declaration + 2);
  if (pi >= 0) {
    const target = /^<\?([^ \t\r\n?]{0,40})/.exec(text.slice(pi, pi + 44))?.[1] ?? '';
    fail('ERR_DUIS_PROCESSING_INSTRUCTION', `the document has a processing instruction <?${target}?>`);
  }
  if (text.includes('<![CDATA[')) fail('ERR_DUIS_MALFORMED', 'the document has a CDATA section');
}

/** What the parser's handlers build, for the document being parsed. */
interface BuildState {
  readonly doc: XDocument;
  readonly stack: XElement[];
  text: string;
}

let shared: import('saxes').SaxesParser<{ xmlns: true; position: true }> | undefined;
let current: BuildState | undefined;

function building(): BuildState {
  if (current === undefined) throw new Error('the parser ran outside parseXml');
  return current;
}

function flushText(state: BuildState): void {
  const top = state.stack[state.stack.length - 1];
  if (state.text !== '' && top !== undefined) top.appendChild(textNode(state.text));
  state.text = '';
}

function newParser(saxes: Saxes): import('saxes').SaxesParser<{ xmlns: true; position: true }> {
  const parser = new saxes.SaxesParser({ xmlns: true, position: true });
  parser.on('error', (e) => fail('ERR_DUIS_MALFORMED', 'the document is not well-formed XML', e.message));
  parser.on('xmldecl', (decl) => {
    if (decl.encoding !== undefined && decl.encoding.toUpperCase() !== 'UTF-8') fail('ERR_DUIS_MALFORMED', `the document declares the encoding ${decl.encoding}; DUIS documents are UTF-8`);
  });
  parser.on('text', (t) => {
    const state = building();
    if (state.stack.length > 0) state.text += t;
  });
  parser.on('opentag', (tag) => {
    const state = building();
    flushText(state);
    if (state.stack.length >= MAX_XML_DEPTH) fail('ERR_DUIS_MALFORMED', `elements nest deeper than ${MAX_XML_DEPTH}`);
    const attributes: XAttr[] = [];
    for (const name in tag.attributes) {
      const a = tag.attributes[name] as import('saxes').SaxesAttributeNS;
      attributes.push(attribute(a.name, a.local, a.prefix === '' ? null : a.prefix, a.uri === '' ? null : a.uri, a.value));
    }
    const el = element(tag.name, tag.local, tag.prefix === '' ? null : tag.prefix, tag.uri === '' ? null : tag.uri, attributes);
    (state.stack[state.stack.length - 1] ?? state.doc).appendChild(el);
    state.stack.push(el);
  });
  parser.on('closetag', () => {
    const state = building();
    flushText(state);
    stripBetweenElements(state.stack.pop() as XElement);
  });
  return parser;
}

function isWhiteSpace(s: string): boolean {
  return /^[ \t\r\n]*$/.test(s);
}

/** Remove white-space-only text beside child elements; refuse other text there (mixed content). */
function stripBetweenElements(el: XElement): void {
  let hasElement = false;
  for (let n = el.firstChild; n !== null; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) hasElement = true;
  if (!hasElement) return;
  for (let n = el.firstChild; n !== null; ) {
    const next = n.nextSibling;
    if (n.nodeType === TEXT_NODE) {
      if (!isWhiteSpace(n.nodeValue)) fail('ERR_DUIS_MALFORMED', `<${el.nodeName}> has text beside its child elements`, n.nodeValue.trim());
      el.removeChild(n);
    }
    n = next;
  }
}

/** The element children of a node. */
export function childElements(el: XParent): XElement[] {
  const out: XElement[] = [];
  for (let n = el.firstChild; n !== null; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) out.push(n);
  return out;
}

/** Whether a node is the element `{ns}local`. */
export function isElement(n: XNode | null | undefined, ns: string, local: string): n is XElement {
  return n !== null && n !== undefined && n.nodeType === ELEMENT_NODE && n.namespaceURI === ns && n.localName === local;
}

/** The text content of an element that must hold only text (no child element). */
export function textOf(el: XElement): string {
  let s = '';
  for (let n: XChildNode | null = el.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType !== TEXT_NODE) fail('ERR_DUIS_STRUCTURE', `<${el.nodeName}> must hold text only`);
    s += n.nodeValue;
  }
  return s;
}

/** The namespace the root declares for `prefix`, if it declares one. */
export function rootDeclares(root: XElement, prefix: string): string | undefined {
  return root.getAttributeNodeNS(XMLNS_NS, prefix)?.value;
}

type Canonicalizer = new (withComments: boolean, exclusive: boolean) => { Canonicalize(node: never): string };
let canonicalizer: Canonicalizer | undefined;

/**
 * xmldsigjs's canonicaliser, with one shortcut: a string with no character that Canonical XML
 * escapes (`& < > "`, tab, LF, CR) is written as it is, instead of character by character. The
 * output is the same; only the work differs.
 */
async function canonicalizerClass(): Promise<Canonicalizer> {
  if (canonicalizer === undefined) {
    const { dsig } = await xmlLibs();
    const Base = dsig.XmlCanonicalizer;
    const normalize = (Base.prototype as unknown as { NormalizeString(input: string | null, type: number): string }).NormalizeString;
    // An instance property shadows the prototype's method (no subclass: see tree.ts on class cost).
    canonicalizer = function make(withComments: boolean, exclusive: boolean) {
      const c = new Base(withComments, exclusive) as unknown as { NormalizeString(input: string | null, type: number): string; Canonicalize(node: never): string };
      c.NormalizeString = function fast(input, type) {
        if (input !== null && !/[&<>"\t\n\r]/.test(input)) return input;
        return normalize.call(this, input, type);
      };
      return c;
    } as unknown as Canonicalizer;
  }
  return canonicalizer;
}

/** Inclusive Canonical XML 1.0 without comments of a node (a whole document: of its root). */
export async function c14n(node: XNode): Promise<string> {
  const C = await canonicalizerClass();
  return new C(false, false).Canonicalize(node as never);
}

/** Exclusive XML Canonicalization 1.0 without comments of an element (no inclusive prefixes). */
export async function excC14n(node: XElement): Promise<string> {
  const C = await canonicalizerClass();
  return new C(false, true).Canonicalize(node as never);
}

export { XMLNS_NS };
export type { XDocument, XElement } from './tree.js';
