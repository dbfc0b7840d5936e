/**
 * The document tree the verifier and the canonicaliser walk: the small part of the W3C DOM
 * (node types, names, namespaces, attributes, siblings) that Canonical XML needs, built from
 * the events of a strict XML parser. No entity, DTD, comment, processing-instruction or CDATA
 * node ever exists in it: the parser refuses them first.
 *
 * Nodes are plain objects on two shared prototypes, made by factory functions rather than class
 * constructors: a request builds some fifty of them, and under a loader that keeps function names
 * (tsx, esbuild's keepNames) class instances cost over ten times as much to make.
 * @internal
 */

/** Node type numbers, as the DOM numbers them. */
export const ELEMENT_NODE = 1;
export const ATTRIBUTE_NODE = 2;
export const TEXT_NODE = 3;
export const DOCUMENT_NODE = 9;

/** An attribute (or a namespace declaration, `xmlns` / `xmlns:p`). */
export interface XAttr {
  readonly nodeType: typeof ATTRIBUTE_NODE;
  /** Its name as written (`URI`, `xmlns:ds`). */
  readonly nodeName: string;
  /** The same. */
  readonly name: string;
  readonly localName: string;
  readonly prefix: string | null;
  readonly namespaceURI: string | null;
  readonly nodeValue: string;
  /** The same as `nodeValue`. */
  readonly value: string;
}

/** A text node. */
export interface XText {
  readonly nodeType: typeof TEXT_NODE;
  readonly nodeName: '#text';
  nodeValue: string;
  parentNode: XParent | null;
  nextSibling: XChildNode | null;
  previousSibling: XChildNode | null;
}

/** What elements and the document share: children. */
interface XParentMethods {
  firstChild: XChildNode | null;
  lastChild: XChildNode | null;
  /** Append a node (not in the tree yet). */
  appendChild<T extends XChildNode>(node: T): T;
  /** Remove a child. */
  removeChild<T extends XChildNode>(node: T): T;
  /** Every descendant element `{ns}local` (`*` for any local name), in document order. */
  getElementsByTagNameNS(ns: string | null, local: string): XElement[];
}

/** An element. */
export interface XElement extends XParentMethods {
  readonly nodeType: typeof ELEMENT_NODE;
  /** Its qualified name as written (`sr:Header`). */
  readonly nodeName: string;
  /** The same. */
  readonly tagName: string;
  readonly localName: string;
  readonly prefix: string | null;
  readonly namespaceURI: string | null;
  readonly nodeValue: null;
  /** Attributes and namespace declarations, in document order. */
  readonly attributes: readonly XAttr[];
  parentNode: XParent | null;
  nextSibling: XChildNode | null;
  previousSibling: XChildNode | null;
  /** The attribute named `name` as written, if present. */
  getAttributeNode(name: string): XAttr | null;
  /** Its value, or null. */
  getAttribute(name: string): string | null;
  /** The attribute `{ns}local`, if present. */
  getAttributeNodeNS(ns: string | null, local: string): XAttr | null;
}

/** The document. */
export interface XDocument extends XParentMethods {
  readonly nodeType: typeof DOCUMENT_NODE;
  readonly nodeName: '#document';
  readonly nodeValue: null;
  readonly parentNode: null;
  /** The root element. */
  readonly documentElement: XElement | null;
}

/** A node that may be a child. */
export type XChildNode = XElement | XText;
/** A node that may be a parent. */
export type XParent = XElement | XDocument;
/** Any node. */
export type XNode = XChildNode | XDocument;

const PARENT: Omit<XParentMethods, 'firstChild' | 'lastChild'> = {
  appendChild<T extends XChildNode>(this: XParent, node: T): T {
    node.parentNode = this;
    node.previousSibling = this.lastChild;
    node.nextSibling = null;
    if (this.lastChild === null) this.firstChild = node;
    else this.lastChild.nextSibling = node;
    this.lastChild = node;
    return node;
  },
  removeChild<T extends XChildNode>(this: XParent, node: T): T {
    if (node.parentNode !== this) throw new Error('not a child');
    if (node.previousSibling === null) this.firstChild = node.nextSibling;
    else node.previousSibling.nextSibling = node.nextSibling;
    if (node.nextSibling === null) this.lastChild = node.previousSibling;
    else node.nextSibling.previousSibling = node.previousSibling;
    node.parentNode = null;
    node.nextSibling = null;
    node.previousSibling = null;
    return node;
  },
  getElementsByTagNameNS(this: XParent, ns: string | null, local: string): XElement[] {
    const out: XElement[] = [];
    const visit = (p: XParent): void => {
      for (let n = p.firstChild; n !== null; n = n.nextSibling) {
        if (n.nodeType !== ELEMENT_NODE) continue;
        if (n.namespaceURI === ns && (local === '*' || n.localName === local)) out.push(n);
        visit(n);
      }
    };
    visit(this);
    return out;
  },
};

const ELEMENT_PROTO = {
  ...PARENT,
  getAttributeNode(this: XElement, name: string): XAttr | null {
    return this.attributes.find((a) => a.name === name) ?? null;
  },
  getAttribute(this: XElement, name: string): string | null {
    return this.getAttributeNode(name)?.value ?? null;
  },
  getAttributeNodeNS(this: XElement, ns: string | null, local: string): XAttr | null {
    return this.attributes.find((a) => a.namespaceURI === ns && a.localName === local) ?? null;
  },
};

const DOCUMENT_PROTO = {
  ...PARENT,
  get documentElement(): XElement | null {
    for (let n = (this as unknown as XDocument).firstChild; n !== null; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) return n;
    return null;
  },
};

/** A new attribute. */
export function attribute(name: string, localName: string, prefix: string | null, namespaceURI: string | null, value: string): XAttr {
  return { nodeType: ATTRIBUTE_NODE, nodeName: name, name, localName, prefix, namespaceURI, nodeValue: value, value };
}

/** A new text node (not in the tree yet). */
export function text(value: string): XText {
  return { nodeType: TEXT_NODE, nodeName: '#text', nodeValue: value, parentNode: null, nextSibling: null, previousSibling: null };
}

/** A new element (not in the tree yet). */
export function element(name: string, localName: string, prefix: string | null, namespaceURI: string | null, attributes: readonly XAttr[]): XElement {
  const e = Object.create(ELEMENT_PROTO) as { -readonly [K in keyof XElement]: XElement[K] };
  e.nodeType = ELEMENT_NODE;
  e.nodeName = name;
  e.tagName = name;
  e.localName = localName;
  e.prefix = prefix;
  e.namespaceURI = namespaceURI;
  e.nodeValue = null;
  e.attributes = attributes;
  e.parentNode = null;
  e.nextSibling = null;
  e.previousSibling = null;
  e.firstChild = null;
  e.lastChild = null;
  return e;
}

/** A new, empty document. */
export function documentNode(): XDocument {
  const d = Object.create(DOCUMENT_PROTO) as { -readonly [K in keyof XDocument]: XDocument[K] };
  d.nodeType = DOCUMENT_NODE;
  d.nodeName = '#document';
  d.nodeValue = null;
  d.parentNode = null;
  d.firstChild = null;
  d.lastChild = null;
  return d;
}
