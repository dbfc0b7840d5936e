// Private keys segregated per device portfolio (docs/domain.md §1 key segregation, §2 a meter
// trusts one supplier DS certificate per cell). Store model, lifecycle, refusals, durability.
import { generateKeyPairSync, diffieHellman } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueOrganisationCertificate } from '@smki/pki';
import { MemoryKeyBackend, type KeyAgreementKeyHandle, type SigningKeyHandle } from '../src/index.js';
import { JsonKeyStore as KeyStore, MAX_ASSIGN_BATCH } from '../src/store.js';
import { ACB, expectCode, issue, M1, M2, M3, message, openStore, PASS, pki as hierarchy, supplierEstate, SUPPLIER, tempDir, verifies } from './_store-fixtures.js';

describe('segregation: each meter is signed for with the key of the certificate it trusts', () => {
  it('signs for north meters with the north key and for the south meter with the south key', async () => {
    const { store } = await openStore();
    const { north, south } = await supplierEstate(store);
    expect(verifies(north.ds.cert.der, await store.signFor(M1, message))).toBe(true);
    expect(verifies(north.ds.cert.der, await store.signFor(M2, message))).toBe(true);
    const s3 = await store.signFor(M3, message);
    expect(verifies(south.ds.cert.der, s3)).toBe(true);
    expect(verifies(north.ds.cert.der, s3)).toBe(false);
  });

  it('portfolios of an organisation: only its own, sorted by id, with their keys and meters', async () => {
    const { store } = await openStore();
    await supplierEstate(store);
    await store.addOrganisation({ entityId: ACB, role: 4 });
    await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
    await store.createPortfolio(SUPPLIER, { id: 'aaa-empty' });
    const list = store.portfolios(SUPPLIER);
    expect(list.map((p) => p.id)).toEqual(['aaa-empty', 'north', 'south']);
    expect(list.map((p) => p.devices.length)).toEqual([0, 2, 1]);
    expect(list[1]).toEqual(store.portfolio(SUPPLIER, 'north'));
    expect(store.portfolios(ACB).map((p) => p.id)).toEqual(['estate']);
    await expectCode(() => store.portfolios('90B3D51F3001FFFF'), 'ERR_ORGANISATION_NOT_FOUND');
  });

  it('assignDevices assigns all or none: each device takes the current keys of its portfolio; a refusal anywhere leaves every device unassigned', async () => {
    const { store, dir } = await openStore();
    const { north, south } = await supplierEstate(store, { maxDevicesPerKey: 4 });
    const A = '00DB1234567890B1';
    const B = '00DB1234567890B2';
    const C = '00DB1234567890B3';
    const before = (await KeyStore.verifyAuditTrail(dir, PASS)).count;
    // One already assigned (M3 in south), one named twice, a missing portfolio, over the cap: none applied.
    await expectCode(store.assignDevices(SUPPLIER, [{ device: A, portfolioId: 'north' }, { device: M3, portfolioId: 'north' }]), 'ERR_DEVICE_ALREADY_ASSIGNED');
    await expectCode(store.assignDevices(SUPPLIER, [{ device: A, portfolioId: 'north' }, { device: A, portfolioId: 'south' }]), 'ERR_DEVICE_ALREADY_ASSIGNED');
    await expectCode(store.assignDevices(SUPPLIER, [{ device: A, portfolioId: 'north' }, { device: B, portfolioId: 'west' }]), 'ERR_PORTFOLIO_NOT_FOUND');
    await expectCode(store.assignDevices(SUPPLIER, [{ device: A, portfolioId: 'north' }, { device: B, portfolioId: 'north' }, { device: C, portfolioId: 'north' }]), 'ERR_PORTFOLIO_DEVICE_CAP');
    await expectCode(store.assignDevices(SUPPLIER, []), 'ERR_INVALID_ARGUMENT');
    const none = await store.assignDevices(SUPPLIER, []).catch((e: unknown) => e);
    expect((none as { context: { detail?: string } }).context.detail).toBe('0');
    expect((none as Error).message).toMatch(/assign 1 to 10000 devices at once/);
    await expectCode(store.assignDevices(SUPPLIER, Array.from({ length: MAX_ASSIGN_BATCH + 1 }, () => ({ device: A, portfolioId: 'north' }))), 'ERR_INVALID_ARGUMENT');
    for (const d of [A, B, C]) await expectCode(() => store.device(SUPPLIER, d), 'ERR_DEVICE_UNKNOWN');
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).count).toBe(before);
    const done = await store.assignDevices(SUPPLIER, [{ device: A, portfolioId: 'north' }, { device: B, portfolioId: 'south' }]);
    expect(done.map((d) => [d.device, d.portfolioId, d.installed.signing])).toEqual([
      [A, 'north', north.ds.handle.keyId],
      [B, 'south', south.ds.handle.keyId],
    ]);
    expect(verifies(north.ds.cert.der, await store.signFor(A, message))).toBe(true);
    expect(verifies(south.ds.cert.der, await store.signFor(B, message))).toBe(true);
    const trail = await KeyStore.verifyAuditTrail(dir, PASS);
    expect(trail.ok).toBe(true);
    expect(trail.count).toBeGreaterThanOrEqual(before + 2);
    // One device is a batch too.
    expect((await store.assignDevices(SUPPLIER, [{ device: C, portfolioId: 'south' }])).map((d) => d.portfolioId)).toEqual(['south']);
  });

  it('assignDevices takes exactly MAX_ASSIGN_BATCH devices in one call', async () => {
    const { store } = await openStore();
    await supplierEstate(store);
    const many = Array.from({ length: MAX_ASSIGN_BATCH }, (_, i) => ({ device: `00DC${i.toString(16).toUpperCase().padStart(12, '0')}`, portfolioId: 'north' }));
    const done = await store.assignDevices(SUPPLIER, many);
    expect(done).toHaveLength(MAX_ASSIGN_BATCH);
    expect(store.portfolio(SUPPLIER, 'north').devices).toHaveLength(MAX_ASSIGN_BATCH + 2);
  }, 60_000);

  it('key agreement for a meter uses its portfolio KA key: ECDH matches the peer side', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const z = await store.keyAgreementFor(M1).deriveSharedSecret(peer.publicKey);
    const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: north.ka.cert.publicKey! });
    expect(Buffer.from(z).equals(expected)).toBe(true);
  });

  it('refuses, each with its own code: unknown device, another portfolio, wrong purpose', async () => {
    const { store } = await openStore();
    const { north, south } = await supplierEstate(store);
    await expectCode(store.signFor('00DB123456789999', message), 'ERR_DEVICE_UNKNOWN');
    await expectCode(store.signWith(south.ds.handle as SigningKeyHandle, M1, message), 'ERR_KEY_PORTFOLIO_MISMATCH');
    await expectCode(store.signWith(north.ka.handle as unknown as SigningKeyHandle, M1, message), 'ERR_KEY_NOT_FOR_SIGNING');
    await expectCode(() => store.keyAgreementWith(north.ds.handle as unknown as KeyAgreementKeyHandle, M1), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    await expectCode(() => store.keyAgreementWith(south.ka.handle as KeyAgreementKeyHandle, M1), 'ERR_KEY_PORTFOLIO_MISMATCH');
    expect(verifies(north.ds.cert.der, await store.signWith(north.ds.handle as SigningKeyHandle, M1, message))).toBe(true);
  });

  it('a key-agreement key signs only its own CSR', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const ka = await store.generateKey(SUPPLIER, 'north', 'keyAgreement');
    const csr = await store.createCsr(ka.keyId); // the proof of possession: allowed
    const cert = await issueOrganisationCertificate({ issuer: hierarchy().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'keyAgreement', csr });
    await store.attachCertificate(ka.keyId, cert);
    await expectCode(store.createCsr(ka.keyId), 'ERR_KEY_STATE_TRANSITION'); // no second signature once active
    await store.assignDevice(SUPPLIER, M1, 'north');
    await expectCode(store.signWith(ka as unknown as SigningKeyHandle, M1, message), 'ERR_KEY_NOT_FOR_SIGNING');
    await expectCode(store.signFor(M1, message), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE'); // north has no DS key at all
  });
});

describe('certificates are attached only where they belong', () => {
  it('refuses a certificate of another key, entity, role or key usage, and changes nothing', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const ds = await store.generateKey(SUPPLIER, 'north', 'signing');
    const pub = Buffer.from(store.key(ds.keyId).publicKey, 'hex');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const base = { issuer: hierarchy().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature' as const };
    await expectCode(store.attachCertificate(ds.keyId, await issueOrganisationCertificate({ ...base, publicKey: other })), 'ERR_CERTIFICATE_KEY_MISMATCH');
    await expectCode(store.attachCertificate(ds.keyId, await issueOrganisationCertificate({ ...base, entityId: '90B3D51F30019999', publicKey: pub })), 'ERR_CERTIFICATE_ENTITY_MISMATCH');
    await expectCode(store.attachCertificate(ds.keyId, await issueOrganisationCertificate({ ...base, role: 3, publicKey: pub })), 'ERR_CERTIFICATE_ROLE_MISMATCH');
    await expectCode(store.attachCertificate(ds.keyId, await issueOrganisationCertificate({ ...base, keyUsage: 'keyAgreement', publicKey: pub })), 'ERR_CERTIFICATE_PURPOSE_MISMATCH');
    expect(store.key(ds.keyId).state).toBe('pending');
    expect(store.key(ds.keyId).certificate).toBeUndefined();
    await store.attachCertificate(ds.keyId, await issueOrganisationCertificate({ ...base, publicKey: pub }));
    expect(store.key(ds.keyId).state).toBe('active');
  });
});

describe('rotation and moves: meters keep their installed certificate until updated', () => {
  it('rotation lists the meters to update; signing stays on the old key until each is updated; retire waits', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    const g2 = await store.generateKey(SUPPLIER, 'north', 'signing');
    const cert2 = await issueOrganisationCertificate({ issuer: hierarchy().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(g2.keyId) });
    await store.attachCertificate(g2.keyId, cert2);
    expect(store.key(g2.keyId).state).toBe('pending'); // waits for rotate: north already has a current DS key
    const updates = await store.rotate(g2.keyId);
    expect(updates.map((u) => [u.device, u.fromKeyId, u.toKeyId])).toEqual([
      [M1, north.ds.handle.keyId, g2.keyId],
      [M2, north.ds.handle.keyId, g2.keyId],
    ]);
    expect(verifies(north.ds.cert.der, await store.signFor(M1, message))).toBe(true); // still the old one
    await expectCode(store.retire(north.ds.handle.keyId), 'ERR_KEY_STATE_TRANSITION'); // M1, M2 still trust it
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    expect(verifies(cert2.der, await store.signFor(M1, message))).toBe(true);
    expect(verifies(north.ds.cert.der, await store.signFor(M2, message))).toBe(true);
    await store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
    await store.retire(north.ds.handle.keyId);
    expect(store.key(north.ds.handle.keyId).state).toBe('retired');
    await expectCode(store.signWith(north.ds.handle as SigningKeyHandle, M1, message), 'ERR_KEY_STATE_TRANSITION');
  });

  it('a moved meter is signed for with the key it still trusts, and is counted in that key’s exposure, until updated', async () => {
    const { store } = await openStore();
    const { north, south } = await supplierEstate(store);
    const updates = await store.moveDevice(SUPPLIER, M2, 'south');
    expect(updates.map((u) => [u.purpose, u.fromKeyId, u.toKeyId])).toEqual([
      ['signing', north.ds.handle.keyId, south.ds.handle.keyId],
      ['keyAgreement', north.ka.handle.keyId, south.ka.handle.keyId],
    ]);
    expect(store.device(SUPPLIER, M2).portfolioId).toBe('south');
    expect(verifies(north.ds.cert.der, await store.signFor(M2, message))).toBe(true);
    expect(store.devicesExposedBy(north.ds.handle.keyId).devices).toEqual([M1, M2]);
    await store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
    expect(verifies(south.ds.cert.der, await store.signFor(M2, message))).toBe(true);
    expect(store.devicesExposedBy(north.ds.handle.keyId).devices).toEqual([M1]);
    expect(store.devicesExposedBy(south.ds.handle.keyId).devices).toEqual([M2, M3]);
  });

  it('a revoked key is refused for every meter that trusts it; a retired one too', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    await store.revoke(north.ds.handle.keyId, 'keyCompromise');
    await expectCode(store.signFor(M1, message), 'ERR_KEY_REVOKED');
    await expectCode(store.signFor(M2, message), 'ERR_KEY_REVOKED');
    expect(await store.signFor(M3, message)).toHaveLength(64);
    expect(store.portfolio(SUPPLIER, 'north').current.signing).toBeUndefined();
  });

  it('a meter installed with a pending key is refused with ERR_KEY_NOT_ACTIVE', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const ds = await store.generateKey(SUPPLIER, 'north', 'signing');
    await store.assignDevice(SUPPLIER, M1, 'north', { installed: { signing: ds.keyId } });
    await expectCode(store.signFor(M1, message), 'ERR_KEY_NOT_ACTIVE');
  });
});

describe('blast radius', () => {
  it('reports the devices each key exposes, and enforces the per-key cap at assignment without changing state', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store, { maxDevicesPerKey: 2 });
    await expectCode(store.assignDevice(SUPPLIER, '00DB1234567890A4', 'north'), 'ERR_PORTFOLIO_DEVICE_CAP');
    await expectCode(() => store.device(SUPPLIER, '00DB1234567890A4'), 'ERR_DEVICE_UNKNOWN');
    const report = store.exposureReport(SUPPLIER);
    expect(report[0]).toMatchObject({ keyId: north.ds.handle.keyId, devices: [M1, M2] });
    expect(report.find((e) => e.portfolioId === 'south' && e.purpose === 'signing')?.devices).toEqual([M3]);
    await store.assignDevice(SUPPLIER, '00DB1234567890A4', 'south');
  });

  it('a whole-estate key is explicit, and then serves and exposes every device', async () => {
    const { store } = await openStore();
    await supplierEstate(store);
    await store.addOrganisation({ entityId: ACB, role: 4 });
    await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
    await expectCode(store.createPortfolio(ACB, { id: 'again', wholeEstate: ['keyAgreement'] }), 'ERR_INVALID_ARGUMENT');
    const acb = await issue(store, ACB, 'estate', 'keyAgreement', 4);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // only for a device the organisation knows, whole-estate or not
    await expectCode(() => store.keyAgreementFor('00DB1234567890FF', { organisation: ACB }), 'ERR_DEVICE_UNKNOWN');
    await store.assignDevice(ACB, '00DB1234567890FF', 'estate');
    expect(store.device(ACB, '00DB1234567890FF').installed).toEqual({}); // no per-device key recorded for an estate purpose
    const z = await store.keyAgreementFor('00DB1234567890FF', { organisation: ACB }).deriveSharedSecret(peer.publicKey);
    expect(Buffer.from(z).equals(diffieHellman({ privateKey: peer.privateKey, publicKey: acb.cert.publicKey! }))).toBe(true);
    expect(store.devicesExposedBy(acb.handle.keyId).wholeEstate).toBe(true);
    // without the explicit setting, an unassigned device is refused
    await expectCode(() => store.keyAgreementFor('00DB1234567890FF', { organisation: SUPPLIER }), 'ERR_DEVICE_UNKNOWN');
  });
});

describe('durability and authentication of the store', () => {
  it('reopens with the same state; wrong passphrase, tampered metadata and a second opener are refused', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    const { north } = await supplierEstate(store);
    await store.signFor(M1, message, { messageCode: 0x0050, counter: 1000n });
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: PASS }), 'ERR_KEYSTORE_LOCKED');
    await store.close();
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: 'wrong' }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    const { store: again } = await openStore(dir, backend);
    expect(verifies(north.ds.cert.der, await again.signFor(M1, message))).toBe(true);
    expect(again.portfolio(SUPPLIER, 'north').devices).toEqual([M1, M2]);
    await again.close();

    const meta = join(dir, 'store.json');
    const text = readFileSync(meta, 'utf8');
    expect(text).toContain('north');
    writeFileSync(meta, text.replace('north', 'nörth')); // one character of the authenticated payload
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: PASS }), 'ERR_KEYSTORE_CORRUPT');
    writeFileSync(meta, text);
    await openStore(dir, backend);
  });

  it('bad input changes no state and writes no audit record', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    await store.flush();
    const before = readFileSync(join(dir, 'audit.log'), 'utf8');
    const meta = readFileSync(join(dir, 'store.json'), 'utf8');
    await expectCode(store.assignDevice(SUPPLIER, 'not-an-eui', 'north'), 'ERR_EUI64_INVALID');
    await expectCode(store.assignDevice(SUPPLIER, M1, 'south'), 'ERR_DEVICE_ALREADY_ASSIGNED');
    await expectCode(store.createPortfolio(SUPPLIER, { id: '../etc' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.moveDevice(SUPPLIER, M1, 'nowhere'), 'ERR_PORTFOLIO_NOT_FOUND');
    await expectCode(store.signFor(M1, 'text' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
    await store.flush();
    expect(readFileSync(join(dir, 'audit.log'), 'utf8')).toBe(before);
    expect(readFileSync(join(dir, 'store.json'), 'utf8')).toBe(meta);
  });

  it('audits every lifecycle change and every use, and the trail verifies', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    await store.signFor(M1, message, { messageCode: 0x0050, counter: 1000n });
    await store.close();
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    const types = lines.map((l) => l.type);
    for (const t of ['organisation.created', 'portfolio.created', 'key.generated', 'key.csr', 'certificate.attached', 'device.assigned', 'key.used']) expect(types).toContain(t);
    expect(JSON.stringify(lines)).not.toMatch(/PRIVATE|privateKey|"d":/);
    const verdict = await KeyStore.verifyAuditTrail(dir, PASS);
    expect(verdict).toMatchObject({ ok: true, count: lines.length, findings: [] });
    // one edited record is found, at its line
    const text = readFileSync(join(dir, 'audit.log'), 'utf8').split('\n');
    const at = text.findIndex((l) => l.includes('"portfolioId":"north"'));
    expect(at).toBeGreaterThan(0);
    text[at] = text[at]!.replace('"portfolioId":"north"', '"portfolioId":"south"');
    writeFileSync(join(dir, 'audit.log'), text.join('\n'));
    const tampered = await KeyStore.verifyAuditTrail(dir, PASS);
    expect(tampered.ok).toBe(false);
    expect(tampered.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: at + 1 });
    const used = lines.find((l) => l.type === 'key.used') as unknown as Record<string, unknown>;
    expect(used).toMatchObject({ operation: 'sign', device: M1, portfolioId: 'north', messageCode: 0x0050 });
    expect(String(used.counter)).toBe('1000');
  });
});

describe('concurrency: lifecycle changes and signing interleaved at their await points', () => {
  it('keeps every invariant after each step', async () => {
    const { store } = await openStore();
    const { north, south } = await supplierEstate(store);
    const g2 = await store.generateKey(SUPPLIER, 'north', 'signing');
    const cert2 = await issueOrganisationCertificate({ issuer: hierarchy().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(g2.keyId) });
    await store.attachCertificate(g2.keyId, cert2);
    const trusted = new Map<string, Uint8Array[]>([
      [M1, [north.ds.cert.der, cert2.der]],
      [M2, [north.ds.cert.der, cert2.der, south.ds.cert.der]],
      [M3, [south.ds.cert.der]],
    ]);
    const ops: Promise<unknown>[] = [];
    const signatures: Promise<[string, Uint8Array]>[] = [];
    for (let i = 0; i < 30; i++) {
      for (const m of [M1, M2, M3]) signatures.push(store.signFor(m, message).then((s) => [m, s]));
      if (i === 3) ops.push(store.rotate(g2.keyId));
      if (i === 7) ops.push(store.moveDevice(SUPPLIER, M2, 'south'));
      if (i === 11) ops.push(store.markCredentialsUpdated(SUPPLIER, M1, 'signing'));
      if (i === 15) ops.push(store.markCredentialsUpdated(SUPPLIER, M2, 'signing'));
    }
    await Promise.all(ops);
    for (const [m, sig] of await Promise.all(signatures)) {
      expect(trusted.get(m)!.some((der) => verifies(der, sig)), `signature for ${m}`).toBe(true);
    }
    // final state: every device points at a key of its own portfolio, and each is in one portfolio
    expect(store.device(SUPPLIER, M1).installed.signing).toBe(g2.keyId);
    expect(store.device(SUPPLIER, M2)).toMatchObject({ portfolioId: 'south', installed: { signing: south.ds.handle.keyId } });
    expect(store.portfolio(SUPPLIER, 'north').devices).toEqual([M1]);
    expect(store.portfolio(SUPPLIER, 'south').devices).toEqual([M2, M3]);
  });
});

describe('a CSR is withheld when its key is revoked while it is being signed', () => {
  it('revoke queued before the CSR is recorded wins: ERR_KEY_STATE_TRANSITION, no key.csr record', async () => {
    const { store, dir } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const ds = await store.generateKey(SUPPLIER, 'north', 'signing');
    const csr = store.createCsr(ds.keyId); // checks 'pending' now, signs asynchronously
    const revoked = store.revoke(ds.keyId, 'keyCompromise'); // queued while the CSR is being signed
    await expectCode(csr, 'ERR_KEY_STATE_TRANSITION');
    await revoked;
    await store.flush();
    const types = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    expect(types).toContain('key.revoked');
    expect(types).not.toContain('key.csr');
  });
});

describe('a meter recorded as trusting a retired key is refused with ERR_KEY_RETIRED', () => {
  it('records what the meter trusts, and refuses to sign with the retired key', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    const g2 = await issue(store, SUPPLIER, 'north', 'signing'); // pending, certified
    await store.rotate(g2.handle.keyId);
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    await store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
    await store.retire(north.ds.handle.keyId);
    // a meter found in the field still holding the old certificate
    await store.assignDevice(SUPPLIER, '00DB1234567890A9', 'north', { installed: { signing: north.ds.handle.keyId } });
    await expectCode(store.signFor('00DB1234567890A9', message), 'ERR_KEY_RETIRED');
    expect(await store.signFor(M1, message)).toHaveLength(64);
  });
});
