// The organisation's DUIS XML signing key in the public KeyStore (docs/domain.md §8: a User signs
// its DUIS Requests, W3C XML Signature ECDSA P-256/SHA-256, with an organisation certificate of
// Remote Party Role 135, OU 87, digitalSignature only, its own entity id). It is an organisation
// key, not a meter's trust anchor (docs/domain.md §2): no meter installs it, no rotation or move
// updates a meter for it, and it exposes no meter. On the memory, encrypted-file and PKCS#11
// (SoftHSM2) backends.
import { generateKeyPairSync, verify } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RemotePartyRole } from '@smki/core';
import { issueOrganisationCertificate, parseCertificate, parseCsr, type SmkiCertificate } from '@smki/pki';
import { FileKeyBackend, KeyStore, MemoryKeyBackend, Pkcs11KeyBackend, type AuditRecord, type KeyBackend, type XmlSigningKeyHandle } from '../src/index.js';
import { createSoftHsm, type SoftHsm } from './_softhsm.js';
import {
  allTrusting,
  auditorTrail,
  expectCode,
  issue,
  M1,
  M2,
  M3,
  message,
  openPublic,
  PASS,
  pki,
  publicTempDir,
  supplierEstate,
  SUPPLIER,
  verifies,
} from './_public-fixtures.js';

const XML = RemotePartyRole.XmlSigning135;
const REQUEST_ID = '90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:1000';

let hsm: SoftHsm | undefined;
beforeAll(() => {
  hsm = createSoftHsm();
});
afterAll(() => hsm?.cleanup());

let tokens = 0;
const backends: Record<string, (dir: string) => Promise<KeyBackend>> = {
  memory: async () => new MemoryKeyBackend(),
  file: (dir) => FileKeyBackend.open({ directory: join(dir, 'keys'), passphrase: PASS }),
  // A token per store: key ids repeat from one test to the next, and a token refuses a second key under one id.
  pkcs11: () => {
    const tokenLabel = `smki-pub-xml-${++tokens}`;
    hsm!.addToken(tokenLabel);
    return Pkcs11KeyBackend.open({ module: hsm!.module, tokenLabel, pin: hsm!.pin });
  },
};

/** A store over a fresh backend of `kind` (closed with its backend after the test). */
async function openOn(kind: string): Promise<{ store: KeyStore; dir: string }> {
  const dir = publicTempDir();
  const backend = await backends[kind]!(dir);
  return openPublic({ dir, backend, closeBackend: true });
}

/** An XML signing certificate (role 135, the supplier, digitalSignature) for a key's CSR, from the test organisation CA. */
async function xmlCertificate(store: KeyStore, keyId: string, entityId = SUPPLIER): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({ issuer: pki().organisationCa, role: XML, entityId, keyUsage: 'digitalSignature', csr: await store.createCsr(keyId) });
}

/**
 * A certificate for a key's public key with what the test says (role 135, the supplier and
 * digitalSignature unless told otherwise): the CA checks a CSR's subject against the request, so
 * a certificate that names something else than the key's CSR is issued from the bare key.
 */
async function certificateFor(store: KeyStore, keyId: string, options: { role?: number; entityId?: string; keyUsage?: 'digitalSignature' | 'keyAgreement' } = {}): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({
    issuer: pki().organisationCa,
    role: options.role ?? XML,
    entityId: options.entityId ?? SUPPLIER,
    keyUsage: options.keyUsage ?? 'digitalSignature',
    publicKey: Buffer.from((await store.key(keyId)).publicKey, 'hex'),
  });
}

/** A supplier estate (north: M1, M2; south: M3) with an XML signing key in a portfolio of its own. */
async function estateWithXmlKey(store: KeyStore) {
  const estate = await supplierEstate(store);
  await store.createPortfolio(SUPPLIER, { id: 'org' });
  const xml = await issue(store, SUPPLIER, 'org', 'xmlSigning', XML);
  return { ...estate, xml };
}

const xmlUses = (records: readonly AuditRecord[]) => records.filter((r) => r.type === 'key.used' && r.operation === 'xml-sign');

describe.each(Object.keys(backends))('the XML signing key on the %s backend', (kind) => {
  it('generate, CSR and attach: the CSR names role 135 and digitalSignature, the role 135 certificate is accepted and the key is current', async () => {
    const { store } = await openOn(kind);
    await supplierEstate(store);
    await store.createPortfolio(SUPPLIER, { id: 'org' });
    const h: XmlSigningKeyHandle = await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    expect(h).toEqual({ keyId: `${SUPPLIER}.org.XML.g1`, purpose: 'xmlSigning' });
    expect(await store.key(h.keyId)).toMatchObject({ purpose: 'xmlSigning', state: 'pending', backend: kind });
    const csr = parseCsr(await store.createCsr(h.keyId));
    expect(csr.role).toBe(135);
    expect(csr.subject.text).toMatch(/OU=87/);
    expect(csr.entityId).toBe(SUPPLIER);
    expect(csr.requestedKeyUsage).toEqual(['digitalSignature']);
    const cert = await xmlCertificate(store, h.keyId);
    const info = await store.attachCertificate(h.keyId, cert);
    expect(info).toMatchObject({ state: 'active', serialNumber: parseCertificate(cert.der).serialNumber });
    expect((await store.portfolio(SUPPLIER, 'org')).current).toEqual({ xmlSigning: h.keyId });
  });

  it('the signer signs with the key of the role 135 certificate and node crypto verifies it over the message', async () => {
    const { store } = await openOn(kind);
    const { xml } = await estateWithXmlKey(store);
    const signer = await store.xmlSigner(SUPPLIER);
    expect(signer.keyId).toBe(xml.handle.keyId);
    expect(signer.portfolioId).toBe('org');
    expect(Buffer.from(signer.certificate).equals(Buffer.from(xml.cert.der))).toBe(true);
    expect(Buffer.from(signer.publicKey).toString('hex').toUpperCase()).toBe((await store.key(xml.handle.keyId)).publicKey.toUpperCase());
    const signature = await signer.sign(message);
    expect(signature).toHaveLength(64);
    const key = parseCertificate(signer.certificate).publicKey!;
    expect(verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    expect(verify('sha256', new TextEncoder().encode('another message'), { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(false);
  });

  it('a key revoked after the signer was made is refused at the next sign, and that sign is not recorded', async () => {
    const { store, dir } = await openOn(kind);
    const { xml } = await estateWithXmlKey(store);
    const signer = await store.xmlSigner(SUPPLIER);
    await signer.sign(message);
    await store.revoke(xml.handle.keyId, 'keyCompromise');
    await expectCode(signer.sign(message), 'ERR_KEY_REVOKED');
    // and no new signer is made for the organisation: it has no current XML signing key now
    await expectCode(store.xmlSigner(SUPPLIER), 'ERR_KEY_NOT_FOUND');
    const { verification, records } = await auditorTrail(store, dir);
    expect(verification.ok).toBe(true);
    expect(xmlUses(records)).toHaveLength(1);
  });

  it('never used for a meter: signFor never picks it, signWith and keyAgreementWith refuse its handle, keyAgreementFor refuses the purpose', async () => {
    const { store } = await openOn(kind);
    const { north, xml } = await estateWithXmlKey(store);
    // signFor signs for M1 with the north DS key, never the XML key
    const forMeter = await store.signFor(M1, message);
    expect(verifies(north.ds.cert.der, forMeter)).toBe(true);
    expect(verifies(xml.cert.der, forMeter)).toBe(false);
    const head = await store.auditHead();
    await expectCode(store.signWith(xml.handle as never, M1, message), 'ERR_KEY_NOT_FOR_SIGNING');
    await expect(store.signWith(xml.handle as never, M1, message)).rejects.toThrow(/is an xmlSigning key: it signs DUIS XML \(KeyStore.xmlSigner\), never for a meter/);
    await expectCode(store.keyAgreementWith(xml.handle as never, M1), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    await expectCode(store.keyAgreementFor(M1, { purpose: 'xmlSigning' as never }), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    expect(await store.auditHead()).toEqual(head);
    expect((await store.device(SUPPLIER, M1)).installed).toEqual({ signing: north.ds.handle.keyId, keyAgreement: north.ka.handle.keyId });
  });

  it('rotate yields no credential updates: the new key is current, the old one stays active and signs until it is retired', async () => {
    const { store } = await openOn(kind);
    const { xml } = await estateWithXmlKey(store);
    // devices in the key's own portfolio too: still none to update
    await store.assignDevice(SUPPLIER, '00DB1234567890B1', 'org');
    const old = await store.xmlSigner(SUPPLIER);
    const g2 = await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    const cert2 = await xmlCertificate(store, g2.keyId);
    expect((await store.attachCertificate(g2.keyId, cert2)).state).toBe('pending');
    expect(await store.rotate(g2.keyId)).toEqual({ fromKeyId: xml.handle.keyId, toKeyId: g2.keyId, devicesToUpdate: 0 });
    await expectCode(store.credentialUpdates(SUPPLIER, 'org', { purpose: 'xmlSigning' }), 'ERR_INVALID_ARGUMENT');
    expect((await store.credentialUpdates(SUPPLIER, 'org')).updates).toEqual([]);
    expect((await store.portfolio(SUPPLIER, 'org')).current.xmlSigning).toBe(g2.keyId);
    expect((await store.key(xml.handle.keyId)).state).toBe('active');
    // a signer made before the rotation keeps its key; a new one takes the new key
    expect(verifies(xml.cert.der, await old.sign(message))).toBe(true);
    const now = await store.xmlSigner(SUPPLIER);
    expect(now.keyId).toBe(g2.keyId);
    expect(verifies(cert2.der, await now.sign(message))).toBe(true);
    // current keys are never retired; the old one is, as no meter trusts it
    await expectCode(store.retire(g2.keyId), 'ERR_KEY_STATE_TRANSITION');
    expect((await store.retire(xml.handle.keyId)).state).toBe('retired');
    await expectCode(old.sign(message), 'ERR_KEY_RETIRED');
  });

  it('exposure: an XML signing key exposes 0 meters, in devicesTrusting and in the exposure report', async () => {
    const { store } = await openOn(kind);
    const { xml } = await estateWithXmlKey(store);
    await store.assignDevice(SUPPLIER, '00DB1234567890B1', 'org');
    expect(await store.devicesTrusting(xml.handle.keyId)).toEqual({ wholeEstate: false, devices: [] });
    const report = await store.exposureReport(SUPPLIER);
    expect(report.find((e) => e.keyId === xml.handle.keyId)).toMatchObject({ portfolioId: 'org', purpose: 'xmlSigning', wholeEstate: false, deviceCount: 0 });
    expect(report.at(-1)?.keyId).toBe(xml.handle.keyId);
  });

  it('the audit trail verifies and records each XML signature as key.used xml-sign with its request id and no device', async () => {
    const { store, dir } = await openOn(kind);
    const { xml } = await estateWithXmlKey(store);
    const signer = await store.xmlSigner(SUPPLIER, { requestId: REQUEST_ID });
    await signer.sign(message);
    await signer.sign(message, { requestId: `${REQUEST_ID}1` });
    await signer.sign(message, {});
    const { verification, records } = await auditorTrail(store, dir);
    expect(verification).toMatchObject({ ok: true, findings: [] });
    expect(xmlUses(records).map(({ seq: _s, at: _a, prev: _p, mac: _m, ...rest }) => rest)).toEqual([
      { type: 'key.used', operation: 'xml-sign', keyId: xml.handle.keyId, portfolioId: 'org', requestId: REQUEST_ID },
      { type: 'key.used', operation: 'xml-sign', keyId: xml.handle.keyId, portfolioId: 'org', requestId: `${REQUEST_ID}1` },
      { type: 'key.used', operation: 'xml-sign', keyId: xml.handle.keyId, portfolioId: 'org' },
    ]);
    expect(records.find((r) => r.type === 'key.generated' && r.purpose === 'xmlSigning')).toMatchObject({ keyId: xml.handle.keyId, portfolioId: 'org' });
  });
});

describe('the XML signing certificate: role 135 exactly, the organisation entity id, digitalSignature', () => {
  it('refuses a certificate with the organisation role or role 137 for an xmlSigning key as a role mismatch', async () => {
    const { store } = await openPublic();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'org' });
    const h = await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    const head = await store.auditHead();
    await expectCode(store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { role: 2 })), 'ERR_CERTIFICATE_ROLE_MISMATCH');
    await expectCode(store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { role: RemotePartyRole.XmlSigning137 })), 'ERR_CERTIFICATE_ROLE_MISMATCH');
    const e = await store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { role: 2 })).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/role is 2, not 135/);
    expect((await store.key(h.keyId)).state).toBe('pending');
    expect(await store.auditHead()).toEqual(head);
    await store.attachCertificate(h.keyId, await xmlCertificate(store, h.keyId));
    expect((await store.key(h.keyId)).state).toBe('active');
  });

  it('refuses a role 135 certificate for the other purposes: their role stays the organisation one', async () => {
    const { store } = await openPublic();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    for (const purpose of ['signing', 'keyAgreement', 'prepaymentKeyAgreement'] as const) {
      const h = await store.generateKey(SUPPLIER, 'north', purpose);
      expect(parseCsr(await store.createCsr(h.keyId)).role).toBe(2);
      const usage = purpose === 'signing' ? 'digitalSignature' : 'keyAgreement';
      await expectCode(store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { keyUsage: usage })), 'ERR_CERTIFICATE_ROLE_MISMATCH');
      await store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { role: 2, keyUsage: usage }));
      expect((await store.key(h.keyId)).state).toBe('active');
    }
  });

  it('refuses a role 135 certificate of another entity, or with keyAgreement, for an xmlSigning key', async () => {
    const { store } = await openPublic();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'org' });
    const h = await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    await expectCode(store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { entityId: '90B3D51F30020000' })), 'ERR_CERTIFICATE_ENTITY_MISMATCH');
    await expectCode(store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { keyUsage: 'keyAgreement' })), 'ERR_CERTIFICATE_PURPOSE_MISMATCH');
    expect((await store.key(h.keyId)).state).toBe('pending');
  });
});

describe('no meter installs the XML signing key', () => {
  it('a meter assigned to the portfolio of the XML signing key installs nothing, one at a time or in bulk', async () => {
    const { store } = await openPublic();
    const { xml } = await estateWithXmlKey(store);
    expect((await store.assignDevice(SUPPLIER, '00DB1234567890B1', 'org')).installed).toEqual({});
    expect(await store.assignDevices(SUPPLIER, [{ device: '00DB1234567890B2', portfolioId: 'org' }])).toBe(1);
    expect((await store.device(SUPPLIER, '00DB1234567890B2')).installed).toEqual({});
    expect((await store.devicesOf(SUPPLIER, 'org')).devices.map((d) => d.installed)).toEqual([{}, {}]);
    expect(await allTrusting(store, xml.handle.keyId)).toEqual([]);
  });

  it('moveDevice into the portfolio of the XML signing key yields no update for it', async () => {
    const { store } = await openPublic();
    const { north } = await estateWithXmlKey(store);
    expect(await store.moveDevice(SUPPLIER, M1, 'org')).toEqual([]);
    expect((await store.device(SUPPLIER, M1)).installed).toEqual({ signing: north.ds.handle.keyId, keyAgreement: north.ka.handle.keyId });
    // a portfolio with DS and XML keys: the update is for signing only
    const g = await issue(store, SUPPLIER, 'org', 'signing');
    expect((await store.moveDevice(SUPPLIER, M2, 'org')).map((u) => [u.purpose, u.toKeyId])).toEqual([['signing', g.handle.keyId]]);
  });

  it('markCredentialsUpdated refuses the xmlSigning purpose and records nothing', async () => {
    const { store } = await openPublic();
    await estateWithXmlKey(store);
    await store.moveDevice(SUPPLIER, M3, 'org');
    const head = await store.auditHead();
    await expectCode(store.markCredentialsUpdated(SUPPLIER, M3, 'xmlSigning'), 'ERR_INVALID_ARGUMENT');
    expect(await store.auditHead()).toEqual(head);
    expect((await store.device(SUPPLIER, M3)).installed.xmlSigning).toBeUndefined();
  });

  it('a portfolio cannot serve the whole estate with an XML signing key', async () => {
    const { store } = await openPublic();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    const head = await store.auditHead();
    await expectCode(store.createPortfolio(SUPPLIER, { id: 'org', wholeEstate: ['xmlSigning'] }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.portfolio(SUPPLIER, 'org'), 'ERR_PORTFOLIO_NOT_FOUND');
    expect(await store.auditHead()).toEqual(head);
  });

  it('retire of a non-current XML signing key works at once; the current one is refused', async () => {
    const { store } = await openPublic();
    const { xml } = await estateWithXmlKey(store);
    await expectCode(store.retire(xml.handle.keyId), 'ERR_KEY_STATE_TRANSITION');
    const g2 = await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    await store.attachCertificate(g2.keyId, await xmlCertificate(store, g2.keyId));
    await store.rotate(g2.keyId);
    expect((await store.retire(xml.handle.keyId)).state).toBe('retired');
  });
});

describe('which key xmlSigner resolves', () => {
  it('none: an organisation without a current XML signing key is ERR_KEY_NOT_FOUND, a pending one included', async () => {
    const { store } = await openPublic();
    await supplierEstate(store);
    await expectCode(store.xmlSigner(SUPPLIER), 'ERR_KEY_NOT_FOUND');
    await store.createPortfolio(SUPPLIER, { id: 'org' });
    await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    await expectCode(store.xmlSigner(SUPPLIER), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.xmlSigner(SUPPLIER, { portfolioId: 'org' }), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.xmlSigner(SUPPLIER, { portfolioId: 'west' }), 'ERR_PORTFOLIO_NOT_FOUND');
    await expectCode(store.xmlSigner('90B3D51F3001FFFF'), 'ERR_ORGANISATION_NOT_FOUND');
    await expectCode(store.xmlSigner('not an EUI-64'), 'ERR_EUI64_INVALID');
  });

  it('one portfolio with a current key: that key; several: portfolioId is required and chooses', async () => {
    const { store } = await openPublic();
    const { xml } = await estateWithXmlKey(store);
    expect((await store.xmlSigner(SUPPLIER)).keyId).toBe(xml.handle.keyId);
    expect((await store.xmlSigner(SUPPLIER, { portfolioId: 'org' })).keyId).toBe(xml.handle.keyId);
    await expectCode(store.xmlSigner(SUPPLIER, { portfolioId: 'north' }), 'ERR_KEY_NOT_FOUND');
    await expect(store.xmlSigner(SUPPLIER, { portfolioId: 'north' })).rejects.toThrow(`portfolio north of ${SUPPLIER} has no current xmlSigning key`);
    const second = await issue(store, SUPPLIER, 'north', 'xmlSigning', XML);
    await expectCode(store.xmlSigner(SUPPLIER), 'ERR_INVALID_ARGUMENT');
    const refusal = (await store.xmlSigner(SUPPLIER).then(
      () => {
        throw new Error('expected a refusal');
      },
      (x: unknown) => x,
    )) as Error & { context: { detail?: string } };
    expect(refusal.context.detail).toBe('portfolioId');
    expect(refusal.message).toMatch(/north, org/);
    expect((await store.xmlSigner(SUPPLIER, { portfolioId: 'north' })).keyId).toBe(second.handle.keyId);
    expect((await store.xmlSigner(SUPPLIER, { portfolioId: 'org' })).keyId).toBe(xml.handle.keyId);
    expect(verifies(second.cert.der, await (await store.xmlSigner(SUPPLIER, { portfolioId: 'north' })).sign(message))).toBe(true);
    // another organisation's XML key is never resolved for this one
    await store.addOrganisation({ entityId: '90B3D51F30020000', role: 3 });
    await expectCode(store.xmlSigner('90B3D51F30020000'), 'ERR_KEY_NOT_FOUND');
  });

  it('the organisation key of an organisation of another role: the certificate is still role 135', async () => {
    const { store } = await openPublic();
    const DNO = '90B3D51F30030000';
    await store.addOrganisation({ entityId: DNO, role: 3 });
    await store.createPortfolio(DNO, { id: 'org' });
    const h = await store.generateKey(DNO, 'org', 'xmlSigning');
    expect(parseCsr(await store.createCsr(h.keyId)).role).toBe(135);
    await expectCode(store.attachCertificate(h.keyId, await certificateFor(store, h.keyId, { entityId: DNO, role: 3 })), 'ERR_CERTIFICATE_ROLE_MISMATCH');
    await store.attachCertificate(h.keyId, await xmlCertificate(store, h.keyId, DNO));
    expect((await store.xmlSigner(DNO)).keyId).toBe(h.keyId);
  });
});

describe('what a signature is refused for, before the key is used', () => {
  it('a request id that an audit record cannot carry, a message that is not bytes, options that are not an object', async () => {
    const { store, backend } = await openPublic();
    await estateWithXmlKey(store);
    const head = await store.auditHead();
    const signs = vi.spyOn(backend, 'sign');
    for (const requestId of ['', 'x'.repeat(129), 'a b', 'a\nb', 5, null]) {
      await expectCode(store.xmlSigner(SUPPLIER, { requestId: requestId as string }), 'ERR_INVALID_ARGUMENT');
    }
    expect((await store.xmlSigner(SUPPLIER, { requestId: 'x'.repeat(128) })).keyId).toMatch(/XML/);
    const signer = await store.xmlSigner(SUPPLIER);
    for (const use of [{ requestId: 'x'.repeat(129) }, { requestId: '<a/>' }, null, 'id']) {
      await expectCode(signer.sign(message, use as never), 'ERR_INVALID_ARGUMENT');
    }
    await expectCode(signer.sign('not bytes' as never), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.xmlSigner(SUPPLIER, null as never), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.xmlSigner(SUPPLIER, { portfolioId: 7 as never }), 'ERR_INVALID_ARGUMENT');
    await store.flush();
    expect(await store.auditHead()).toEqual(head);
    expect(signs).not.toHaveBeenCalled();
  });

  it('a closed store: no signer is made and a signer made before refuses without using the key', async () => {
    const { store, backend } = await openPublic();
    await estateWithXmlKey(store);
    const signer = await store.xmlSigner(SUPPLIER);
    await store.close();
    const signs = vi.spyOn(backend, 'sign');
    await expectCode(signer.sign(message), 'ERR_KEYSTORE_CLOSED');
    expect(signs).not.toHaveBeenCalled();
    await expectCode(store.xmlSigner(SUPPLIER), 'ERR_KEYSTORE_CLOSED');
  });

  it('revoking a pending successor leaves the current key signing, and the revoked key is never rotated in', async () => {
    const { store } = await openPublic();
    const { xml } = await estateWithXmlKey(store);
    const signer = await store.xmlSigner(SUPPLIER);
    const g2 = await store.generateKey(SUPPLIER, 'org', 'xmlSigning');
    await store.attachCertificate(g2.keyId, await xmlCertificate(store, g2.keyId));
    await store.revoke(g2.keyId);
    // the current key is untouched and still signs
    expect(verifies(xml.cert.der, await signer.sign(message))).toBe(true);
    expect((await store.portfolio(SUPPLIER, 'org')).current.xmlSigning).toBe(xml.handle.keyId);
    await expectCode(store.rotate(g2.keyId), 'ERR_KEY_STATE_TRANSITION');
  });
});

describe('a store of the three meter purposes takes an XML signing key like any key', () => {
  it('reopens with the same state, its trail (use records included) verifies, and the XML key is added to it', async () => {
    const first = await openPublic();
    const { north, south } = await supplierEstate(first.store);
    await first.store.signFor(M1, message, { messageCode: 0x0050, counter: 7n });
    await (await first.store.keyAgreementFor(M3)).deriveSharedSecret(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const keys = await first.store.keys();
    const devices = await Promise.all([M1, M2, M3].map((d) => first.store.device(SUPPLIER, d)));
    const { verification, records } = await auditorTrail(first.store, first.dir);
    expect(verification.ok).toBe(true);
    const uses = records.filter((r) => r.type === 'key.used');
    expect(uses.map(({ seq: _s, at: _a, prev: _p, mac: _m, ...rest }) => rest)).toEqual([
      { type: 'key.used', operation: 'sign', keyId: north.ds.handle.keyId, portfolioId: 'north', device: M1, messageCode: 0x0050, counter: 7n },
      { type: 'key.used', operation: 'keyAgreement', keyId: south.ka.handle.keyId, portfolioId: 'south', device: M3 },
    ]);
    const again = await openPublic({ dir: first.dir, backend: first.backend });
    expect(await again.store.keys()).toEqual(keys);
    expect(await Promise.all([M1, M2, M3].map((d) => again.store.device(SUPPLIER, d)))).toEqual(devices);
    await again.store.createPortfolio(SUPPLIER, { id: 'org' });
    await issue(again.store, SUPPLIER, 'org', 'xmlSigning', XML);
    await (await again.store.xmlSigner(SUPPLIER)).sign(message);
    const { trail, findings } = await again.store.verifyStore();
    expect(trail.ok).toBe(true);
    expect(findings).toEqual([]);
    const after = await auditorTrail(again.store, again.dir);
    expect(after.verification).toMatchObject({ ok: true, findings: [] });
    expect(xmlUses(after.records)).toHaveLength(1);
  });
});
