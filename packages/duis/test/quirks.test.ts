// A DCC certificate still in use spells its role in the OU as decimal "137" instead of the
// profile's two hex digits "89" (docs/domain.md §8): a quirk to report, not to trip on. The
// certificate is built byte by byte (the toolkit's CA only issues the profile's spelling).
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeySigner } from '@smki/core';
import { issueCrl, parseCertificate } from '@smki/pki';
import { isSmkiError } from '@smki/core';
import { DuisTrust, signRequest, signResponse, verifyDuis } from '../src/index.js';
import { buildHierarchy, buildOrganisationCertificate } from '../../pki/test/_x509-builder.js';
import { request, response } from './_fixture.js';

describe('the DCC certificate whose OU is 137', () => {
  it('is read as role 137, verifies a Response, and the verification reports the spelling', async () => {
    const h = buildHierarchy();
    const dcc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = buildOrganisationCertificate({ issuer: h.oca, eui: '90B3D51F30000002', ou: '137', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2024, 0, 1)), publicKey: dcc.publicKey });
    const cert = parseCertificate(der);
    expect([cert.role, cert.details.ou, cert.details.roleSpelling]).toEqual([137, '137', 'lenient']);
    const crls = [
      await issueCrl({ issuer: { certificate: h.oca.der, signer: createKeySigner(h.oca.key.privateKey) }, crlNumber: 1n, kind: 'crl' }),
      await issueCrl({ issuer: { certificate: h.root.der, signer: createKeySigner(h.root.key.privateKey) }, crlNumber: 1n, kind: 'arl' }),
    ];
    const trust = new DuisTrust({ certificates: [h.root.der, h.oca.der, der], crls });
    const signed = await signResponse(response(), createKeySigner(dcc.privateKey), der);
    const v = await verifyDuis(signed.xml, trust, { expect: 'response' });
    expect(v.body).toBe('PreCommand');
    expect(v.warnings).toEqual(['the DCC certificate\'s OU spells role 137 as "137", not the profile\'s two hex digits']);
  });

  it('only that: a User certificate spelling role 135 as decimal is refused, and the quirk never waives revocation', async () => {
    const h = buildHierarchy();
    const user = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = buildOrganisationCertificate({ issuer: h.oca, eui: '90B3D51F30010000', ou: '135', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2024, 0, 1)), publicKey: user.publicKey });
    expect(parseCertificate(der).role).toBe(135);
    const crls = [
      await issueCrl({ issuer: { certificate: h.oca.der, signer: createKeySigner(h.oca.key.privateKey) }, crlNumber: 1n, kind: 'crl' }),
      await issueCrl({ issuer: { certificate: h.root.der, signer: createKeySigner(h.root.key.privateKey) }, crlNumber: 1n, kind: 'arl' }),
    ];
    const signed = await signRequest(request(), createKeySigner(user.privateKey), der);
    const refusal = async (xml: string, trust: DuisTrust, expect_: 'request' | 'response') => {
      try {
        await verifyDuis(xml, trust, { expect: expect_ });
        return 'accepted';
      } catch (e) {
        return isSmkiError(e) ? e.code : String(e);
      }
    };
    expect(await refusal(signed.xml, new DuisTrust({ certificates: [h.root.der, h.oca.der, der], crls }), 'request')).toBe('ERR_DUIS_CERTIFICATE_PATH_INVALID');
    const dcc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const dccDer = buildOrganisationCertificate({ issuer: h.oca, eui: '90B3D51F30000002', ou: '137', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2024, 0, 1)), publicKey: dcc.publicKey });
    const r = await signResponse(response(), createKeySigner(dcc.privateKey), dccDer);
    expect(await refusal(r.xml, new DuisTrust({ certificates: [h.root.der, h.oca.der, dccDer], crls: [crls[1]!] }), 'response')).toBe('ERR_DUIS_CERTIFICATE_PATH_INVALID');
    const revoked = await issueCrl({ issuer: { certificate: h.oca.der, signer: createKeySigner(h.oca.key.privateKey) }, crlNumber: 2n, kind: 'crl', revoked: [{ serialNumber: parseCertificate(dccDer).serialNumber, revocationDate: new Date() }] });
    expect(await refusal(r.xml, new DuisTrust({ certificates: [h.root.der, h.oca.der, dccDer], crls: [revoked, crls[1]!] }), 'response')).toBe('ERR_DUIS_CERTIFICATE_REVOKED');
  });
});
