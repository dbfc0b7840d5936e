/**
 * The DUIS signature profile: what the one `ds:Signature` must look like, element by element.
 * @internal
 */
import type { XAttr as Attr, XElement as Element } from './tree.js';
import { SmkiError, fromBase64, toBase64 } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { DS_NS, XMLNS_NS, childElements, isElement, textOf } from './xml.js';

/** Algorithm identifiers of the profile. */
export const ALG = {
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  ecdsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
} as const;

/** What the signature says. */
export interface SignatureParts {
  readonly signedInfo: Element;
  readonly digest: Uint8Array;
  readonly signatureValue: Uint8Array;
  readonly issuerName: string;
  readonly serial: string;
}

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail: detail.slice(0, 200) });
}

/** The element's attributes other than namespace declarations. */
function attributes(el: Element): Attr[] {
  return el.attributes.filter((a) => a.namespaceURI !== XMLNS_NS && a.name !== 'xmlns');
}

/** Exactly these child elements in the DS namespace, in order (and no other attribute than `allowed`). */
function expect(el: Element, names: readonly string[], code: SmkiErrorCode = 'ERR_DUIS_SIGNATURE_STRUCTURE'): Element[] {
  const kids = childElements(el);
  if (kids.length !== names.length || kids.some((k, i) => !isElement(k, DS_NS, names[i] as string))) {
    fail(code, `ds:${el.localName} must hold ${names.map((n) => `ds:${n}`).join(', ') || 'nothing'}; it holds ${kids.map((k) => k.nodeName).join(', ') || 'nothing'}`);
  }
  return kids;
}

function onlyAttributes(el: Element, allowed: readonly string[]): void {
  for (const a of attributes(el)) {
    if (!allowed.includes(a.name)) fail('ERR_DUIS_SIGNATURE_STRUCTURE', `ds:${el.localName} has an attribute ${a.name} the profile does not use`);
  }
}

function algorithm(el: Element, expected: string, code: SmkiErrorCode): void {
  onlyAttributes(el, ['Algorithm']);
  const alg = el.getAttribute('Algorithm');
  if (alg !== expected) fail(code, `ds:${el.localName} is ${alg ?? '(none)'}, not ${expected}`, alg ?? '');
  if (el.firstChild !== null) fail(code, `ds:${el.localName} has content (parameters the profile does not use)`);
}

/**
 * Canonical base64 with white space (CR, LF, tab, space) allowed anywhere: the profile's values.
 * Decoded by core's `fromBase64`; then the value must be exactly the standard encoding of its bytes
 * (padding, no stray bits), so that one value has one spelling.
 */
export function base64Value(el: Element, bytes: number): Uint8Array {
  const text = textOf(el).replace(/[ \t\r\n]/g, '');
  let out: Uint8Array;
  try {
    out = fromBase64(text);
  } catch {
    return fail('ERR_DUIS_SIGNATURE_STRUCTURE', `ds:${el.localName} is not base64`);
  }
  if (out.length !== bytes) {
    const der = el.localName === 'SignatureValue' && out[0] === 0x30 ? ' (a DER signature: the profile wants raw r‖s)' : '';
    fail('ERR_DUIS_SIGNATURE_STRUCTURE', `ds:${el.localName} is ${out.length} bytes, not ${bytes}${der}`);
  }
  if (toBase64(out) !== text) fail('ERR_DUIS_SIGNATURE_STRUCTURE', `ds:${el.localName} is not canonical base64`);
  return out;
}

/** Every element of the signature is written with the prefix `ds`, as the profile writes it. */
function checkPrefixes(el: Element): void {
  if (el.prefix !== 'ds') fail('ERR_DUIS_SIGNATURE_STRUCTURE', `the signature's elements are written with the prefix ds; ${el.nodeName} is not`);
  for (const child of childElements(el)) checkPrefixes(child);
}

/** Read and check the signature against the profile. */
export function readSignature(sig: Element): SignatureParts {
  checkPrefixes(sig);
  onlyAttributes(sig, []);
  const [signedInfo, signatureValue, keyInfo] = childElements(sig);
  const kids = childElements(sig);
  if (kids.length !== 3 || !isElement(signedInfo, DS_NS, 'SignedInfo') || !isElement(signatureValue, DS_NS, 'SignatureValue') || !isElement(keyInfo, DS_NS, 'KeyInfo')) {
    fail('ERR_DUIS_SIGNATURE_STRUCTURE', `ds:Signature must hold ds:SignedInfo, ds:SignatureValue, ds:KeyInfo; it holds ${kids.map((k) => k.nodeName).join(', ') || 'nothing'}`);
  }
  onlyAttributes(signedInfo, []);
  const si = childElements(signedInfo);
  if (!isElement(si[0], DS_NS, 'CanonicalizationMethod') || !isElement(si[1], DS_NS, 'SignatureMethod') || si.length < 3 || si.slice(2).some((e) => !isElement(e, DS_NS, 'Reference'))) {
    fail('ERR_DUIS_SIGNATURE_STRUCTURE', `ds:SignedInfo must hold ds:CanonicalizationMethod, ds:SignatureMethod, ds:Reference; it holds ${si.map((k) => k.nodeName).join(', ') || 'nothing'}`);
  }
  if (si.length !== 3) fail('ERR_DUIS_REFERENCE_COUNT', `ds:SignedInfo has ${si.length - 2} references; the profile has exactly one`);
  algorithm(si[0] as Element, ALG.excC14n, 'ERR_DUIS_ALGORITHM');
  algorithm(si[1] as Element, ALG.ecdsaSha256, 'ERR_DUIS_ALGORITHM');
  const reference = si[2] as Element;
  onlyAttributes(reference, ['URI']);
  const uri = reference.getAttributeNode('URI');
  if (uri === null || uri.value !== '') fail('ERR_DUIS_REFERENCE_URI', `the reference URI is ${uri === null ? 'missing' : JSON.stringify(uri.value)}, not "" (the whole document)`, uri?.value);
  const rk = childElements(reference);
  if (!isElement(rk[0], DS_NS, 'Transforms')) fail('ERR_DUIS_TRANSFORMS', 'the reference has no ds:Transforms: the profile has exactly the enveloped-signature transform');
  const [, digestMethod, digestValue] = expect(reference, ['Transforms', 'DigestMethod', 'DigestValue']);
  const transforms = rk[0] as Element;
  onlyAttributes(transforms, []);
  const t = childElements(transforms);
  if (t.length !== 1 || !isElement(t[0], DS_NS, 'Transform')) fail('ERR_DUIS_TRANSFORMS', `the reference has ${t.length} transforms; the profile has exactly one, enveloped-signature`);
  algorithm(t[0] as Element, ALG.enveloped, 'ERR_DUIS_TRANSFORMS');
  algorithm(digestMethod as Element, ALG.sha256, 'ERR_DUIS_ALGORITHM');
  onlyAttributes(digestValue as Element, []);
  const digest = base64Value(digestValue as Element, 32);
  onlyAttributes(signatureValue, []);
  const value = base64Value(signatureValue, 64);
  onlyAttributes(keyInfo, []);
  const [x509Data] = expect(keyInfo, ['X509Data'], 'ERR_DUIS_KEY_INFO');
  onlyAttributes(x509Data as Element, []);
  const [issuerSerial] = expect(x509Data as Element, ['X509IssuerSerial'], 'ERR_DUIS_KEY_INFO');
  onlyAttributes(issuerSerial as Element, []);
  const [issuerName, serialNumber] = expect(issuerSerial as Element, ['X509IssuerName', 'X509SerialNumber'], 'ERR_DUIS_KEY_INFO');
  onlyAttributes(issuerName as Element, []);
  onlyAttributes(serialNumber as Element, []);
  const issuer = textOf(issuerName as Element);
  const serial = textOf(serialNumber as Element);
  if (!/^(0|-?[1-9][0-9]{0,59})$/.test(serial)) fail('ERR_DUIS_KEY_INFO', 'ds:X509SerialNumber is not a decimal integer', serial);
  if (issuer.length === 0 || issuer.length > 1024) fail('ERR_DUIS_KEY_INFO', 'ds:X509IssuerName is empty or too long');
  return { signedInfo, digest, signatureValue: value, issuerName: issuer, serial };
}
