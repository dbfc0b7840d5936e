// verifyDuis and signRequest under the DUIS signature profile: W3C XML Signature (enveloped,
// URI=""), Canonical XML 1.0, Exclusive XML Canonicalization 1.0, RFC 4051 §3.3; RFC 5280 §6.1
// for the signer's path; docs/domain.md §8.
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner } from '@smki/core';
import { issueCrl } from '@smki/pki';
import { DuisTrust, formatRequestId, parseRequestId, signRequest, signResponse, verifyDuis } from '../src/index.js';
import { DCC, DEVICE, REQUEST_ID, USER, fixture, request, response, codeOf, signedFixture } from './_fixture.js';
import type { Fixture } from './_fixture.js';

let f: Fixture;
let signed: string;
beforeAll(async () => {
  ({ f, signed } = await signedFixture());
});
const code = codeOf;

const verify = (xml: string, expect: 'request' | 'response' = 'request', extra: object = {}) => verifyDuis(xml, f.trust, { expect, ...extra });

describe('a signed request verifies and returns only what was signed', () => {
  it('returns the canonical document and its fields', async () => {
    const v = await verify(signed);
    expect(v.kind).toBe('request');
    expect(v.originator).toBe(USER);
    expect(v.target).toBe(DEVICE);
    expect(v.counter).toBe(1_700_000_000_000n);
    expect(v.requestIdText).toBe(REQUEST_ID);
    expect(v.serviceReference).toBe('7.2');
    expect(v.commandVariant).toBe('4');
    expect(v.body).toBe('DisableSupply');
    expect(v.certificate.fingerprint).toBe(f.user.certificate.fingerprint);
    expect(v.xml).not.toContain('Signature');
    expect(v.xml).toContain('<sr:DisableSupply></sr:DisableSupply>');
    expect(Buffer.from(v.document).toString('utf8')).toBe(v.xml);
  });

  it('white space between elements does not count, the document as verified has none', async () => {
    const pretty = `<?xml version="1.0" encoding="UTF-8"?>\n${signed.replace(/^<\?xml[^>]*>/, '').replace(/>(<[^/])/g, '>\n\t$1').replace(/(<\/[^>]+>)(<\/)/g, '$1\r\n$2')}\n`;
    const v = await verify(pretty);
    expect(v.xml).toBe((await verify(signed)).xml);
  });

  it('white space inside a value does count', async () => {
    expect(await code(verify(signed.replace('<sr:CommandVariant>4<', '<sr:CommandVariant> 4<')))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });

  it('accepts bytes, and base64 wrapped with CR LF and spaces', async () => {
    const sv = /<ds:SignatureValue>([^<]+)</.exec(signed)![1]!;
    const wrapped = signed.replace(sv, `${sv.slice(0, 40)}&#13;\n  ${sv.slice(40)}`);
    expect((await verify(wrapped)).body).toBe('DisableSupply');
    expect((await verifyDuis(new TextEncoder().encode(signed), f.trust, { expect: 'request' })).body).toBe('DisableSupply');
  });

  it('a request whose root declares xmlns:ds signs and verifies, and the declaration is digested', async () => {
    const s = (await signRequest(request('<sr:DisableSupply/>', { rootNs: ' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"' }), f.user.signer, f.user.certificate)).xml;
    expect(s).toContain('<ds:Signature>');
    await verify(s);
    const moved = s.replace(' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"', '').replace('<ds:Signature>', '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">');
    expect(await code(verify(moved))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });
});

describe('signature wrapping fails', () => {
  const body = '<sr:Body><sr:DisableSupply></sr:DisableSupply></sr:Body>';
  it('a second, unsigned copy of the body', async () => {
    const x = signed.replace('</sr:Body>', `</sr:Body><sr:Body><sr:EnableSupply></sr:EnableSupply></sr:Body>`);
    expect(await code(verify(x))).toBe('ERR_DUIS_STRUCTURE');
  });
  it('the signed body moved under a wrapper and a new body put in its place', async () => {
    const x = signed.replace('<sr:Body><sr:DisableSupply></sr:DisableSupply></sr:Body>', `<sr:Body><sr:EnableSupply></sr:EnableSupply></sr:Body>`).replace('<ds:KeyInfo>', `<ds:KeyInfo>${body}`);
    expect(await code(verify(x))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    const y = signed.replace('<sr:DisableSupply></sr:DisableSupply>', '<sr:EnableSupply></sr:EnableSupply>');
    expect(await code(verify(y))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });
  it('the signature moved into the header', async () => {
    const sig = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0];
    const x = signed.replace(sig, '').replace('</sr:Header>', `${sig}</sr:Header>`);
    expect(await code(verify(x))).toBe('ERR_DUIS_SIGNATURE_PLACEMENT');
  });
  it('the signature moved before the body', async () => {
    const sig = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0];
    const x = signed.replace(sig, '').replace('<sr:Body>', `${sig}<sr:Body>`);
    expect(await code(verify(x))).toBe('ERR_DUIS_SIGNATURE_PLACEMENT');
  });
  it('a duplicate header', async () => {
    const x = signed.replace('<sr:Body>', `<sr:Header><sr:RequestID>${formatRequestId({ ...parseRequestId(REQUEST_ID), counter: 1n })}</sr:RequestID></sr:Header><sr:Body>`);
    expect(await code(verify(x))).toBe('ERR_DUIS_STRUCTURE');
  });
  it('a second request id in the header', async () => {
    const x = signed.replace('</sr:Header>', `<sr:RequestID>${REQUEST_ID}</sr:RequestID></sr:Header>`);
    expect(await code(verify(x))).toBe('ERR_DUIS_STRUCTURE');
  });
  it('text changed inside a signed value', async () => {
    const x = signed.replace(':1700000000000<', ':1700000000001<');
    expect(await code(verify(x))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });
  it('an entity reference spelled differently is the same text, and verifies', async () => {
    const x = signed.replace('<sr:ServiceReference>7.2<', '<sr:ServiceReference>&#55;.2<');
    expect((await verify(x)).serviceReference).toBe('7.2');
  });
  it('an attribute added to the root', async () => {
    expect(await code(verify(signed.replace('schemaVersion="5.4"', 'schemaVersion="5.4" extra="1"')))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });
  it('the target changed to another meter', async () => {
    expect(await code(verify(signed.replace('00-DB-12-34-56-78-90-A0', '00-DB-12-34-56-78-90-A1')))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });
});

describe('the input is refused before anything is trusted', () => {
  it('an external entity', async () => {
    const x = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${signed.replace(/^<\?xml[^>]*>/, '').replace('7.2<', '&x;<')}`;
    expect(await code(verify(x))).toBe('ERR_DUIS_DOCTYPE');
  });
  it('entity expansion', async () => {
    const lol = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>';
    expect(await code(verify(lol + signed.replace(/^<\?xml[^>]*>/, '').replace('7.2<', '&c;<')))).toBe('ERR_DUIS_DOCTYPE');
  });
  it('an undeclared entity', async () => {
    expect(await code(verify(signed.replace('7.2<', '&x;<')))).toBe('ERR_DUIS_MALFORMED');
  });
  it('a comment, before the root or inside it', async () => {
    expect(await code(verify(signed.replace('<sr:Body>', '<!-- c --><sr:Body>')))).toBe('ERR_DUIS_COMMENT');
    expect(await code(verify(signed.replace(/^(<\?xml[^>]*>)/, '$1<!-- c -->')))).toBe('ERR_DUIS_COMMENT');
  });
  it('a processing instruction, and a second XML declaration', async () => {
    expect(await code(verify(signed.replace('<sr:Body>', '<?pi x?><sr:Body>')))).toBe('ERR_DUIS_PROCESSING_INSTRUCTION');
    expect(await code(verify(signed.replace('<sr:Body>', '<?xml version="1.0"?><sr:Body>')))).not.toBe('accepted');
  });
  it('a CDATA section', async () => {
    expect(await code(verify(signed.replace('>7.2<', '><![CDATA[7.2]]><')))).toBe('ERR_DUIS_MALFORMED');
  });
  it('another encoding declared, and bytes that are not UTF-8', async () => {
    expect(await code(verify(signed.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')))).toBe('ERR_DUIS_MALFORMED');
    const bytes = new TextEncoder().encode(signed);
    const bad = new Uint8Array([...bytes.subarray(0, 60), 0xff, ...bytes.subarray(60)]);
    expect(await code(verifyDuis(bad, f.trust, { expect: 'request' }))).toBe('ERR_DUIS_MALFORMED');
  });
  it('a document over the size bound, as text and as bytes', async () => {
    const limit = signed.length - 1;
    expect(await code(verify(signed, 'request', { maxBytes: limit }))).toBe('ERR_DUIS_TOO_LARGE');
    expect(await code(verifyDuis(new TextEncoder().encode(signed), f.trust, { expect: 'request', maxBytes: limit }))).toBe('ERR_DUIS_TOO_LARGE');
    expect((await verify(signed, 'request', { maxBytes: signed.length })).body).toBe('DisableSupply');
    expect(await code(verify('é'.repeat(600_000)))).toBe('ERR_DUIS_TOO_LARGE');
  });
  it('deep nesting, text beside elements, not well formed', async () => {
    const deep = `${'<sr:A>'.repeat(40)}${'</sr:A>'.repeat(40)}`;
    expect(await code(verify(signed.replace('<sr:DisableSupply></sr:DisableSupply>', deep)))).toBe('ERR_DUIS_MALFORMED');
    expect(await code(verify(signed.replace('<sr:Body>', 'x<sr:Body>')))).toBe('ERR_DUIS_MALFORMED');
    expect(await code(verify(signed.replace('</sr:Body>', '')))).toBe('ERR_DUIS_MALFORMED');
    expect(await code(verify(signed.replace('sr:Body>', 'sr:Body a="1" a="2">')))).toBe('ERR_DUIS_MALFORMED');
  });
  it('inputs up to 64 KiB, long text or many elements, are decided', async () => {
    const big = signed.replace('<sr:DisableSupply></sr:DisableSupply>', `<sr:X>${'A'.repeat(64 * 1024 - signed.length - 20)}</sr:X>`);
    expect(await code(verify(big))).toBe('ERR_DUIS_DIGEST_MISMATCH');
    const many = signed.replace('<sr:DisableSupply></sr:DisableSupply>', `<sr:X>${'<sr:Y/>'.repeat(9000)}</sr:X>`);
    expect(await code(verify(many))).toBe('ERR_DUIS_DIGEST_MISMATCH');
  });
  it('the expected kind is required and enforced', async () => {
    expect(await code(verifyDuis(signed, f.trust, {} as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(verify(signed, 'response'))).toBe('ERR_DUIS_DOCUMENT_KIND');
    expect(await code(verify(signed.replace(/sr:Request/g, 'sr:Order')))).toBe('ERR_DUIS_DOCUMENT_KIND');
  });
});

describe('KeyInfo is only a lookup key', () => {
  it('a certificate with the same serial under another issuer name is not found', async () => {
    const x = signed.replace(/<ds:X509IssuerName>[^<]*</, '<ds:X509IssuerName>CN=Other,OU=07<');
    expect(await code(verify(x))).toBe('ERR_DUIS_CERTIFICATE_NOT_FOUND');
  });
  it('the issuer with spaces after the commas is not the profile and is not found', async () => {
    const x = signed.replace(/(<ds:X509IssuerName>[^<]*)</, (_m, name: string) => `${name.replace(/,/g, ', ')}<`);
    expect(x).toContain(', ');
    expect(await code(verify(x))).toBe('ERR_DUIS_CERTIFICATE_NOT_FOUND');
  });
  it('KeyInfo naming another trusted certificate does not make its signature valid', async () => {
    const other = await f.party(135, USER);
    const trust = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, f.user.certificate, other.certificate], crls: f.crls });
    const serial = BigInt(`0x${other.certificate.serialNumber}`).toString(10);
    const x = signed.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${serial}<`);
    expect(await code(verifyDuis(x, trust, { expect: 'request' }))).toBe('ERR_DUIS_SIGNATURE_INVALID');
  });
  it('a certificate that is not in the trust store is not found, even if the document could carry it', async () => {
    const outsider = await f.party(135, USER);
    const s = (await signRequest(request(), outsider.signer, outsider.certificate)).xml;
    expect(await code(verify(s))).toBe('ERR_DUIS_CERTIFICATE_NOT_FOUND');
  });
});

describe('the signer must be right for the direction', () => {
  it('a request signed by a certificate of another entity than the originator', async () => {
    const other = await f.party(135, '90B3D51F30020000');
    const trust = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, other.certificate], crls: f.crls });
    const s = (await signRequest(request('<sr:DisableSupply/>', { requestId: REQUEST_ID.replace('30-01-00-00', '30-02-00-00') }), other.signer, other.certificate)).xml;
    const forged = s.replace('90-B3-D5-1F-30-02-00-00', '90-B3-D5-1F-30-01-00-00');
    expect(await code(verifyDuis(forged, trust, { expect: 'request' }))).toBe('ERR_DUIS_SIGNER_NOT_ORIGINATOR');
  });
  it('a request signed with a supplier command-signing certificate, role 2', async () => {
    const supplier = await f.party(2, USER);
    const trust = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, supplier.certificate], crls: f.crls });
    await expect(signRequest(request(), supplier.signer, supplier.certificate)).rejects.toMatchObject({ code: 'ERR_DUIS_SIGNER_ROLE' });
    const s = (await signResponse(response(), f.dcc.signer, f.dcc.certificate)).xml;
    expect(s).toContain('sr:Response');
    const asSupplier = signed.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${BigInt(`0x${supplier.certificate.serialNumber}`).toString(10)}<`);
    expect(await code(verifyDuis(asSupplier, trust, { expect: 'request' }))).toBe('ERR_DUIS_SIGNER_ROLE');
  });
  it('a response must be the DCC role 137, and the DCC entity when given', async () => {
    const r = (await signResponse(response(), f.dcc.signer, f.dcc.certificate)).xml;
    expect((await verify(r, 'response', { dcc: DCC })).body).toBe('PreCommand');
    expect(await code(verify(r, 'response', { dcc: '90B3D51F300000FF' }))).toBe('ERR_DUIS_SIGNER_NOT_ORIGINATOR');
    const userSigned = r.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${BigInt(`0x${f.user.certificate.serialNumber}`).toString(10)}<`);
    expect(await code(verify(userSigned, 'response'))).toBe('ERR_DUIS_SIGNER_ROLE');
  });
  it('a certificate outside its validity, revoked, or without a path', async () => {
    expect(await code(verify(signed, 'request', { now: new Date(f.user.certificate.notBefore.getTime() - 1000) }))).toBe('ERR_DUIS_CERTIFICATE_EXPIRED');
    const crl = await issueCrl({ issuer: f.hierarchy.organisationCa, crlNumber: 2n, kind: 'crl', revoked: [{ serialNumber: f.user.certificate.serialNumber, revocationDate: new Date() }] });
    const revoked = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, f.user.certificate], crls: [crl, f.crls[1]!] });
    expect(await code(verifyDuis(signed, revoked, { expect: 'request' }))).toBe('ERR_DUIS_CERTIFICATE_REVOKED');
    const noCa = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.user.certificate], crls: f.crls });
    expect(await code(verifyDuis(signed, noCa, { expect: 'request' }))).toBe('ERR_DUIS_CERTIFICATE_PATH_INVALID');
    const noCrl = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, f.user.certificate], crls: [] });
    expect(await code(verifyDuis(signed, noCrl, { expect: 'request' }))).toBe('ERR_DUIS_CERTIFICATE_PATH_INVALID');
  });
});

describe('signRequest', () => {
  it('removes a placeholder signature and leaves exactly one', async () => {
    const again = await signRequest(signed, f.user.signer, f.user.certificate);
    expect(again.xml.match(/<ds:Signature[ >]/g)).toHaveLength(1);
    await verify(again.xml);
  });
  it('refuses what it must not sign, before the key is used', async () => {
    let used = 0;
    const counting = { publicKey: f.user.signer.publicKey, sign: (m: Uint8Array) => (used++, f.user.signer.sign(m)) };
    expect(await code(signRequest(response(), counting, f.user.certificate))).toBe('ERR_DUIS_DOCUMENT_KIND');
    expect(await code(signRequest(request().replace(REQUEST_ID, REQUEST_ID.replace('30-01', '30-02')), counting, f.user.certificate))).toBe('ERR_DUIS_SIGNER_NOT_ORIGINATOR');
    expect(await code(signRequest(request(), createKeySigner(f.dcc.key), f.user.certificate))).toBe('ERR_DUIS_SIGNER_KEY_MISMATCH');
    expect(await code(signRequest(request().replace(REQUEST_ID, 'x:y:1'), counting, f.user.certificate))).toBe('ERR_DUIS_REQUEST_ID_INVALID');
    expect(await code(signRequest(`<!DOCTYPE x>${request()}`, counting, f.user.certificate))).toBe('ERR_DUIS_DOCTYPE');
    expect(await code(signRequest(request().replace('<sr:Body>', '<!--x--><sr:Body>'), counting, f.user.certificate))).toBe('ERR_DUIS_COMMENT');
    expect(await code(signRequest(request('<sr:DisableSupply/>', { rootNs: ' xmlns:ds="urn:other"' }), counting, f.user.certificate))).toBe('ERR_DUIS_STRUCTURE');
    expect(used).toBe(0);
  });
  it('refuses a signer whose output does not verify', async () => {
    const broken = { publicKey: f.user.signer.publicKey, sign: async (m: Uint8Array) => { const s = await f.user.signer.sign(m); s[5]! ^= 1; return s; } };
    expect(await code(signRequest(request(), broken, f.user.certificate))).toBe('ERR_DUIS_SIGNATURE_INVALID');
  });
});

describe('request ids', () => {
  it('parse and format round trip, and refuse other spellings', () => {
    expect(formatRequestId(parseRequestId(REQUEST_ID))).toBe(REQUEST_ID);
    for (const bad of ['90B3D51F30010000:00DB1234567890A0:1', '90-b3-d5-1f-30-01-00-00:00-DB-12-34-56-78-90-A0:1', `${REQUEST_ID.slice(0, -13)}01`, `${REQUEST_ID.slice(0, -13)}18446744073709551616`, `${REQUEST_ID} `, '']) {
      expect(() => parseRequestId(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_DUIS_REQUEST_ID_INVALID' }));
    }
    expect(parseRequestId(`${REQUEST_ID.slice(0, -13)}18446744073709551615`).counter).toBe(2n ** 64n - 1n);
    expect(() => formatRequestId({ ...parseRequestId(REQUEST_ID), counter: -1n })).toThrow(expect.objectContaining({ code: 'ERR_DUIS_REQUEST_ID_INVALID' }));
  });
});
