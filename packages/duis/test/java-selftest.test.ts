// The Java reference implementation of the DUIS XML signature profile (test/java/DuisXmlSig.java)
// checked on its own, before the interoperability tests trust it: it signs and verifies a small
// Request, survives pretty-printing, refuses tampering, a moved xmlns:ds declaration, another
// certificate and a DOCTYPE; and node:crypto, with canonical forms written out by hand for this
// fixed document, agrees with its DigestValue and SignatureValue.
import { execFileSync } from 'node:child_process';
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileJava, runJava } from './_java.js';

const SR = 'http://www.dccinterface.co.uk/ServiceUserGateway';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REQUEST =
  `<sr:Request xmlns:sr="${SR}" schemaVersion="5.4"><sr:Header>` +
  '<sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000</sr:RequestID>' +
  '<sr:CommandVariant>4</sr:CommandVariant><sr:ServiceReference>7.2</sr:ServiceReference>' +
  '<sr:ServiceReferenceVariant>7.2</sr:ServiceReferenceVariant></sr:Header>' +
  '<sr:Body><sr:DisableSupply/></sr:Body></sr:Request>';
/** The same Request with an (unused) xmlns:ds declared on the root (first: the Java output keeps
 * the attributes in the parser's order, which is by name). */
const REQUEST_DS_ON_ROOT = REQUEST.replace(`xmlns:sr="${SR}"`, `xmlns:ds="${DS}" xmlns:sr="${SR}"`);
const SERIAL = 0x0123456789abcdef0123n;
const ISSUER = 'CN=Z1,OU=07,O=SMKI Test'; // RFC 2253: the last RDN first, no space after a comma

let classDir: string;
let dir: string;
const file = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A P-256 key (PKCS#8 PEM) and a self-signed certificate for it. */
function keyAndCert(name: string, subject: string, serial: bigint): void {
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(`${name}.key.pem`));
  openssl('req', '-new', '-x509', '-key', file(`${name}.key.pem`), '-subj', subject, '-days', '30', '-set_serial', `0x${serial.toString(16)}`, '-out', file(`${name}.cert.pem`));
}

function java(args: string[], input?: string) {
  return runJava(classDir, args, input);
}

/** Signs `xml` with the Java program (the key and certificate `name`); expects success. */
function sign(xml: string, name = 'signer', command = 'sign'): string {
  const r = java([command, '-', file(`${name}.key.pem`), file(`${name}.cert.pem`)], xml);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

function verify(xml: string, name = 'signer') {
  return java(['verify', '-', file(`${name}.cert.pem`)], xml);
}

function expectValid(xml: string, name = 'signer'): void {
  const r = verify(xml, name);
  expect(r.stdout + r.stderr).toBe('VALID\n');
  expect(r.status).toBe(0);
}

function expectInvalid(xml: string, reason: RegExp, name = 'signer'): void {
  const r = verify(xml, name);
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^INVALID .+\n$/);
  expect(r.stdout).toMatch(reason);
  expect(r.status).toBe(1);
}

/** Indents a document without mixed content: every tag on its own line, text kept inline. */
function prettyPrint(xml: string, indent = '  ', eol = '\n'): string {
  const tokens = xml.match(/<[^>]+>|[^<]+/g) ?? [];
  let out = '';
  let depth = 0;
  let afterText = false;
  for (const t of tokens) {
    if (!t.startsWith('<')) {
      out += t;
      afterText = true;
      continue;
    }
    if (t.startsWith('</')) {
      depth--;
      if (!afterText) out += eol + indent.repeat(depth);
      out += t;
    } else {
      if (out !== '') out += eol + indent.repeat(depth);
      out += t;
      if (!t.endsWith('/>')) depth++;
    }
    afterText = false;
  }
  return `${out}${eol}`;
}

function digestValue(xml: string): string {
  return /<ds:DigestValue>([^<]*)<\/ds:DigestValue>/.exec(xml)?.[1] ?? '';
}

function signatureValue(xml: string): string {
  return /<ds:SignatureValue>([^<]*)<\/ds:SignatureValue>/.exec(xml)?.[1] ?? '';
}

/** The exact signed form the Java program writes for REQUEST, with its two values as groups. */
function expectedSigned(dsOnSignature: boolean, request = REQUEST): RegExp {
  const signature =
    `<ds:Signature${dsOnSignature ? ` xmlns:ds="${DS}"` : ''}><ds:SignedInfo>` +
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>' +
    '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>' +
    '<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms>' +
    '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>@@</ds:DigestValue></ds:Reference></ds:SignedInfo>' +
    '<ds:SignatureValue>@@</ds:SignatureValue>' +
    `<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>${ISSUER}</ds:X509IssuerName>` +
    `<ds:X509SerialNumber>${SERIAL.toString(10)}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature>`;
  const text = request.replace('</sr:Request>', `${signature}</sr:Request>`);
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.replace('@@', '([A-Za-z0-9+/]{43}=)').replace('@@', '([A-Za-z0-9+/]{86}==)')}$`);
}

/** Exclusive C14N of the SignedInfo above, by hand: xmlns:ds on SignedInfo, empty elements expanded. */
function canonicalSignedInfo(digest: string): string {
  return (
    `<ds:SignedInfo xmlns:ds="${DS}">` +
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:CanonicalizationMethod>' +
    '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"></ds:SignatureMethod>' +
    '<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform></ds:Transforms>' +
    '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"></ds:DigestMethod>' +
    `<ds:DigestValue>${digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>`
  );
}

beforeAll(async () => {
  classDir = await compileJava();
  dir = mkdtempSync(join(tmpdir(), 'smki-duis-java-selftest-'));
  keyAndCert('signer', '/O=SMKI Test/OU=07/CN=Z1', SERIAL);
  keyAndCert('other', '/O=SMKI Test/OU=07/CN=Z2', 0x42n); // another issuer and serial
  keyAndCert('twin', '/O=SMKI Test/OU=07/CN=Z1', SERIAL); // the same issuer and serial, another key
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('DuisXmlSig sign', () => {
  it('writes the compact signed document in the exact profile form, without an XML declaration', () => {
    const signed = sign(REQUEST);
    expect(signed).toMatch(expectedSigned(true));
    expect(signed.startsWith('<sr:Request ')).toBe(true);
    expect(signed).not.toMatch(/>\s+</);
    expect(signed.endsWith('</sr:Request>')).toBe(true);
  });

  it('declares xmlns:ds on the Signature only when the root does not already', () => {
    const signed = sign(REQUEST_DS_ON_ROOT);
    expect(signed).toMatch(expectedSigned(false, REQUEST_DS_ON_ROOT));
    expect(signed.split('xmlns:ds=').length - 1).toBe(1);
  });

  it('signs the white-space-free form of a pretty-printed input', () => {
    const compact = sign(REQUEST);
    const fromPretty = sign(prettyPrint(REQUEST, '\t', '\r\n'));
    expect(fromPretty).toMatch(expectedSigned(true));
    expect(digestValue(fromPretty)).toBe(digestValue(compact));
  });

  it('replaces an existing Signature when re-signing', () => {
    const resigned = sign(prettyPrint(sign(REQUEST)));
    expect(resigned).toMatch(expectedSigned(true));
    expect(resigned.match(/<ds:Signature[ >]/g)).toHaveLength(1);
  });

  it('sign-pretty writes an indented form that verifies, with the same digest', () => {
    const pretty = sign(REQUEST, 'signer', 'sign-pretty');
    expect(pretty).toContain('\n  <sr:Header>\n    <sr:RequestID>');
    expect(pretty).toContain('\n  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\n    <ds:SignedInfo>');
    expect(pretty.endsWith('</sr:Request>\n')).toBe(true);
    expect(digestValue(pretty)).toBe(digestValue(sign(REQUEST)));
    expectValid(pretty);
  });

  it('refuses a DOCTYPE with exit 2', () => {
    const r = java(['sign', '-', file('signer.key.pem'), file('signer.cert.pem')], `<!DOCTYPE sr:Request>${REQUEST}`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/DOCTYPE/);
  });

  it('refuses a key that is not the certificate key with exit 2', () => {
    const r = java(['sign', '-', file('twin.key.pem'), file('signer.cert.pem')], REQUEST);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/does not verify with the certificate/);
  });
});

describe('node:crypto agrees with the Java signature', () => {
  it('the DigestValue is SHA-256 of the inclusive C14N of the document without its Signature', () => {
    const canonical = REQUEST.replace('<sr:DisableSupply/>', '<sr:DisableSupply></sr:DisableSupply>');
    expect(digestValue(sign(REQUEST))).toBe(createHash('sha256').update(canonical, 'utf8').digest('base64'));
    // A root declaration of xmlns:ds is digested: inclusive C14N renders it, sorted before xmlns:sr.
    const canonicalDs = canonical.replace(`xmlns:sr="${SR}"`, `xmlns:ds="${DS}" xmlns:sr="${SR}"`);
    expect(digestValue(sign(REQUEST_DS_ON_ROOT))).toBe(createHash('sha256').update(canonicalDs, 'utf8').digest('base64'));
  });

  it('the SignatureValue is 64 bytes of r and s, and verifies over the exclusive C14N of SignedInfo', () => {
    const publicKey = new X509Certificate(readFileSync(file('signer.cert.pem'))).publicKey;
    for (const input of [REQUEST, REQUEST_DS_ON_ROOT]) {
      const signed = sign(input);
      const sig = Buffer.from(signatureValue(signed), 'base64');
      expect(sig.length).toBe(64);
      const signedInfo = Buffer.from(canonicalSignedInfo(digestValue(signed)), 'utf8');
      expect(cryptoVerify('sha256', signedInfo, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      const flipped = Buffer.from(sig);
      flipped[63] = (flipped[63] as number) ^ 1;
      expect(cryptoVerify('sha256', signedInfo, { key: publicKey, dsaEncoding: 'ieee-p1363' }, flipped)).toBe(false);
    }
  });
});

describe('DuisXmlSig verify', () => {
  let signed: string;
  beforeAll(() => {
    signed = sign(REQUEST);
  });

  it('accepts the signed document', () => {
    expectValid(signed);
  });

  it('accepts it pretty-printed afterwards, with spaces, tabs or CR LF between the tags', () => {
    expectValid(prettyPrint(signed));
    expectValid(prettyPrint(signed, '\t', '\r\n'));
  });

  it('accepts a SignatureValue whose base64 is wrapped with CR LF and spaces', () => {
    const v = signatureValue(signed);
    const wrapped = signed.replace(v, `\n      ${v.slice(0, 76)}&#13;\n${v.slice(76)}\n    `);
    expectValid(wrapped);
    expectValid(prettyPrint(wrapped));
  });

  it('refuses a changed byte in the RequestID', () => {
    expectInvalid(signed.replace('A0:1000', 'A0:1001'), /digest mismatch/);
    expectInvalid(prettyPrint(signed).replace('A0:1000', 'A1:1000'), /digest mismatch/);
  });

  it('keeps white space that is an element whole value', () => {
    const spaced = sign(REQUEST.replace('<sr:CommandVariant>4</sr:CommandVariant>', '<sr:CommandVariant> </sr:CommandVariant>'));
    expectValid(spaced);
    expectValid(prettyPrint(spaced));
    expectInvalid(spaced.replace('<sr:CommandVariant> </sr:CommandVariant>', '<sr:CommandVariant/>'), /digest mismatch/);
  });

  it('a root that declares xmlns:ds verifies, and moving that declaration is a change', () => {
    const dsOnRoot = sign(REQUEST_DS_ON_ROOT);
    expectValid(dsOnRoot);
    expectValid(prettyPrint(dsOnRoot));
    // The declaration moved from the root to the Signature: the root's inclusive C14N changes.
    const moved = dsOnRoot.replace(` xmlns:ds="${DS}"`, '').replace('<ds:Signature>', `<ds:Signature xmlns:ds="${DS}">`);
    expectInvalid(moved, /digest mismatch/);
    // And the other way: a document signed without it gains it on the root.
    const gained = signed.replace(` xmlns:ds="${DS}"`, '').replace(`xmlns:sr="${SR}"`, `xmlns:ds="${DS}" xmlns:sr="${SR}"`);
    expectInvalid(gained, /digest mismatch/);
  });

  it('refuses another certificate, by KeyInfo or by the signature value', () => {
    expectInvalid(signed, /X509IssuerName does not name the certificate/, 'other');
    expectInvalid(signed, /signature value does not verify/, 'twin');
  });

  it('refuses a DOCTYPE with exit 2', () => {
    const r = verify(`<!DOCTYPE sr:Request [<!ENTITY x "y">]>${signed}`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/DOCTYPE/);
  });

  it('holds the profile beyond the cryptography', () => {
    const sigStart = signed.indexOf('<ds:Signature');
    const signature = signed.slice(sigStart, signed.indexOf('</sr:Request>'));
    // Not the last child element of the root.
    expectInvalid(signed.replace(signature, '').replace('<sr:Header>', `${signature}<sr:Header>`), /not the last child element/);
    // Two signatures.
    expectInvalid(signed.replace(signature, signature + signature), /2 ds:Signature elements/);
    // The issuer name with spaces after the commas (outside SignedInfo: only the profile sees it).
    expectInvalid(signed.replace(ISSUER, 'CN=Z1, OU=07, O=SMKI Test'), /not in RFC 2253 form/);
    // The serial number in hexadecimal.
    expectInvalid(signed.replace(SERIAL.toString(10), SERIAL.toString(16)), /not a decimal number/);
    // xmlns:ds declared on both the root and the Signature.
    expectInvalid(signed.replace(`xmlns:sr="${SR}"`, `xmlns:sr="${SR}" xmlns:ds="${DS}"`), /declares xmlns:ds although the root does/);
    // Another prefix for the signature namespace.
    expectInvalid(signed.replaceAll('ds:', 'dsig:').replace('xmlns:ds=', 'xmlns:dsig='), /not prefixed ds/);
    // No signature, and another root.
    expectInvalid(REQUEST, /no ds:Signature/);
    expectInvalid(signed.replaceAll('sr:Request', 'sr:Other'), /root element/);
  });

  it('verify-batch gives one line per file and the worst exit status', () => {
    const files = { good: signed, pretty: prettyPrint(signed), changed: signed.replace('A0:1000', 'A0:1001') };
    for (const [name, text] of Object.entries(files)) writeFileSync(file(`${name}.xml`), text);
    const names = Object.keys(files).map((n) => file(`${n}.xml`));
    const r = java(['verify-batch', file('signer.cert.pem'), ...names]);
    expect(r.stdout.split('\n')).toEqual([`VALID\t${names[0]}`, `VALID\t${names[1]}`, expect.stringMatching(/^INVALID reference digest mismatch.*\t/), '']);
    expect(r.status).toBe(1);
    writeFileSync(file('doctype.xml'), `<!DOCTYPE x>${signed}`);
    const r2 = java(['verify-batch', file('signer.cert.pem'), names[0] as string, file('doctype.xml')]);
    expect(r2.stdout).toMatch(/^VALID\t.*\nERROR .*DOCTYPE.*\t.*doctype\.xml\n$/);
    expect(r2.status).toBe(2);
  });

  it('exits 2 on usage errors', () => {
    expect(java([]).status).toBe(2);
    expect(java(['verify', '-']).status).toBe(2);
    expect(java(['frobnicate']).status).toBe(2);
  });
});
