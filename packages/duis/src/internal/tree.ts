/**
 * The document tree the verifier and the canonicaliser walk: the small part of the W3C DOM
 * (node types, names, namespaces, attributes, siblings) that Canonical XML needs, built from
 * the events of a strict XML parser. No entity, DTD, comment, processing-instruction or CDATA
 * node ever exists in it: the parser refuses them first.
 * @internal
 */

/** Node type numbers, as the DOM numbers them. */
export const ELEMENT_NODE = 1;
export const ATTRIBUTE_NODE = 2;
export const TEXT_NODE = 3;
export const DOCUMENT_NODE = 9;

/** An attribute (or a namespace declaration, `xmlns` / `xmlns:p`). */
export class XAttr {
  readonly nodeType = ATTRIBUTE_NODE;
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
  constructor(name: string, localName: string, prefix: string | null, namespaceURI: string | null, value: string) {
    this.nodeName = name;
    this.name = name;
    this.localName = localName;
    this.prefix = prefix;
    this.namespaceURI = namespaceURI;
    this.nodeValue = value;
    this.value = value;
  }
}

/** What nodes share: their place among their siblings. */
abstract class XChild {
  parentNode: XParent | null = null;
  nextSibling: XChildNode | null = null;
  previousSibling: XChildNode | null = null;
}

/** A text node. */
export class XText extends XChild {
  readonly nodeType = TEXT_NODE;
  readonly nodeName = '#text';
  nodeValue: string;
  constructor(value: string) {
    super();
    this.nodeValue = value;
  }
}

/** A node that holds children. */
abstract class XParentBase extends XChild {
  firstChild: XChildNode | null = null;
  lastChild: XChildNode | null = null;

  appendChild<T extends XChildNode>(node: T): T {
    node.parentNode = this as unknown as XParent;
    node.previousSibling = this.lastChild;
    node.nextSibling = null;
    if (this.lastChild === null) this.firstChild = node;
    else this.lastChild.nextSibling = node;
    this.lastChild = node;
    return node;
  }

  removeChild<T extends XChildNode>(node: T): T {
    if (node.parentNode !== (this as unknown as XParent)) throw new Error('not a child');
    if (node.previousSibling === null) this.firstChild = node.nextSibling;
    else node.previousSibling.nextSibling = node.nextSibling;
    if (node.nextSibling === null) this.lastChild = node.previousSibling;
    else node.nextSibling.previousSibling = node.previousSibling;
    node.parentNode = null;
    node.nextSibling = null;
    node.previousSibling = null;
    return node;
  }

  /** Every descendant element `{ns}local` (`*` for any local name), in document order. */
  getElementsByTagNameNS(ns: string | null, local: string): XElement[] {
    const out: XElement[] = [];
    const visit = (p: XParentBase): void => {
      for (let n = p.firstChild; n !== null; n = n.nextSibling) {
        if (n.nodeType !== ELEMENT_NODE) continue;
        if (n.namespaceURI === ns && (local === '*' || n.localName === local)) out.push(n);
        visit(n);
      }
    };
    visit(this);
    return out;
  }
}

/** An element. */
export class XElement extends XParentBase {
  readonly nodeType = ELEMENT_NODE;
  /** Its qualified name as written (`sr:Header`). */
  readonly nodeName: string;
  /** The same. */
  readonly tagName: string;
  readonly localName: string;
  readonly prefix: string | null;
  readonly namespaceURI: string | null;
  readonly nodeValue = null;
  /** Attributes and namespace declarations, in document order. */
  readonly attributes: readonly XAttr[];
  constructor(name: string, localName: string, prefix: string | null, namespaceURI: string | null, attributes: readonly XAttr[]) {
    super();
    this.nodeName = name;
    this.tagName = name;
    this.localName = localName;
    this.prefix = prefix;
    this.namespaceURI = namespaceURI;
    this.attributes = attributes;
  }

  /** The attribute named `name` as written (not a namespace declaration), if present. */
  getAttributeNode(name: string): XAttr | null {
    return this.attributes.find((a) => a.name === name) ?? null;
  }

  /** Its value, or null. */
  getAttribute(name: string): string | null {
    return this.getAttributeNode(name)?.value ?? null;
  }

  /** The attribute `{ns}local`, if present. */
  getAttributeNodeNS(ns: string | null, local: string): XAttr | null {
    return this.attributes.find((a) => a.namespaceURI === ns && a.localName === local) ?? null;
  }
}

/** The document. */
export class XDocument extends XParentBase {
  readonly nodeType = DOCUMENT_NODE;
  readonly nodeName = '#document';
  readonly nodeValue = null;

  /** The root element. */
  get documentElement(): XElement | null {
    for (let n = this.firstChild; n !== null; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) return n;
    return null;
  }

  /** A new text node (not yet in the tree). */
  createTextNode(value: string): XText {
    return new XText(value);
  }
}

/** A node that may be a child. */
export type XChildNode = XElement | XText;
/** A node that may be a parent. */
export type XParent = XElement | XDocument;
/** Any node. */
export type XNode = XChildNode | XDocument;
