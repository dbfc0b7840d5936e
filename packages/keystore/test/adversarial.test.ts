// Defects an adversarial review of the key store demonstrated, each with the concrete input that
// reproduced it: an older metadata file put back resurrecting a revoked key, a use context
// overriding the key of keyAgreementWith, a whole-estate declaration overriding the keys meters
// trust, and ids that reach Object.prototype. Each test failed before its fix.
import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryKeyBackend, type KeyAgreementKeyHandle, type KeyPurpose } from '../src/index.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';
import { MetadataFileStore } from '../src/internal/metadata.js';
import {
  auditRecords,
  expectCode,
  issue,
  M1,
  M2,
  M3,
  message,
  openStore,
  OTHER_SUPPLIER,
  PASS,
  supplierEstate,
  SUPPLIER,
  tempDir,
  verifies,
} from './_store-fixtures.js';

const read = (dir: string, f: string) => readFileSync(join(dir, f));

describe('an older store.json put back (a backup restore) never brings a key back', () => {
  it('a revocation beyond the old head is applied again on open; the trail flags the stale metadata first', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    const { north } = await supplierEstate(store);
    await store.close();
    const saved = read(dir, 'store.json');

    const { store: s2 } = await openStore(dir, backend);
    await s2.revoke(north.ds.handle.keyId, 'keyCompromise');
    await s2.close();
    writeFileSync(join(dir, 'store.json'), saved); // authentic, MAC passes, but older than the log

    const verdict = await KeyStore.verifyAuditTrail(dir, PASS);
    expect(verdict.ok).toBe(false);
    expect(verdict.findings.map((f) => f.code)).toEqual(['ERR_KEYSTORE_METADATA_ROLLBACK']);
    expect(verdict.findings[0]!.message).toContain('key.revoked');

    const { store: s3 } = await openStore(dir, backend);
    expect(s3.key(north.ds.handle.keyId).state).toBe('revoked');
    expect(s3.portfolio(SUPPLIER, 'north').current.signing).toBeUndefined();
    await expectCode(s3.signFor(M1, message), 'ERR_KEY_REVOKED');
    await s3.close();
    const opened = auditRecords(dir).filter((r) => r.type === 'store.opened').at(-1)!;
    expect(opened.reappliedRecords).toBe(1);
    // applied and saved: the metadata now carries the head past the revocation
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).findings).toEqual([]);
  });

  it('a retirement beyond the old head is applied again too', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    const { north } = await supplierEstate(store);
    const g2 = await issueRotated(store);
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    await store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
    await store.close();
    const saved = read(dir, 'store.json');
    const { store: s2 } = await openStore(dir, backend);
    await s2.retire(north.ds.handle.keyId);
    await s2.close();
    writeFileSync(join(dir, 'store.json'), saved);
    const { store: s3 } = await openStore(dir, backend);
    expect(s3.key(north.ds.handle.keyId).state).toBe('retired');
    expect(s3.key(g2).state).toBe('active');
  });

  it.each([
    ['a rotation', async (s: KeyStore) => void (await issueRotated(s))],
    ['a move', async (s: KeyStore) => void (await s.moveDevice(SUPPLIER, M2, 'south'))],
    ['a credential update', async (s: KeyStore) => {
      await issueRotated(s);
      await s.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    }],
    ['a new organisation', async (s: KeyStore) => void (await s.addOrganisation({ entityId: OTHER_SUPPLIER, role: 2 }))],
  ])('any other lifecycle record beyond the head (%s) refuses to open with ERR_KEYSTORE_METADATA_ROLLBACK and changes nothing', async (_, change) => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await supplierEstate(store);
    await store.close();
    const saved = read(dir, 'store.json');
    const { store: s2 } = await openStore(dir, backend);
    await change(s2);
    await s2.close();
    writeFileSync(join(dir, 'store.json'), saved);
    const log = read(dir, 'audit.log');
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: PASS }), 'ERR_KEYSTORE_METADATA_ROLLBACK');
    expect(read(dir, 'audit.log').equals(log)).toBe(true);
    expect(read(dir, 'store.json').equals(saved)).toBe(true);
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).findings.map((f) => f.code)).toContain('ERR_KEYSTORE_METADATA_ROLLBACK');
    // the lock was released: the right metadata opens
  });

  it('a revocation beyond the head of a key the old metadata does not know refuses to open', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await supplierEstate(store);
    await store.close();
    const saved = read(dir, 'store.json');
    const { store: s2 } = await openStore(dir, backend);
    const k = await s2.generateKey(SUPPLIER, 'north', 'signing');
    await s2.revoke(k.keyId);
    await s2.close();
    writeFileSync(join(dir, 'store.json'), saved);
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: PASS }), 'ERR_KEYSTORE_METADATA_ROLLBACK');
  });

  it('use records and store.opened beyond the head are not a rollback (they are written after the head)', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await supplierEstate(store);
    await store.close();
    const saved = read(dir, 'store.json');
    const { store: s2 } = await openStore(dir, backend);
    await s2.signFor(M1, message);
    await s2.close();
    writeFileSync(join(dir, 'store.json'), saved);
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).findings).toEqual([]);
    const { store: s3 } = await openStore(dir, backend);
    expect(await s3.signFor(M1, message)).toHaveLength(64);
  });

  it('a crash after the metadata write and before the log write: the next open writes the committed records', async () => {
    const backend = new MemoryKeyBackend();
    const dir = tempDir();
    let crash = false;
    const { store } = await openStore(dir, backend, { fault: (point: string) => {
      if (crash && point === 'store:after-metadata') throw new Error('simulated crash');
    } });
    const { north } = await supplierEstate(store);
    await store.flush();
    crash = true;
    await expect(store.revoke(north.ds.handle.keyId)).rejects.toThrow('simulated crash');
    // What a crash leaves on disk: the new metadata, the log without the record.
    const copy = tempDir();
    copyFileSync(join(dir, 'store.json'), join(copy, 'store.json'));
    copyFileSync(join(dir, 'audit.log'), join(copy, 'audit.log'));
    expect(auditRecords(copy).some((r) => r.type === 'key.revoked')).toBe(false);
    const verdict = await KeyStore.verifyAuditTrail(copy, PASS);
    expect(verdict.findings).toEqual([]);
    expect(verdict.intentLinesMissing).toBe(1);

    const { store: again } = await openStore(copy, backend);
    expect(again.key(north.ds.handle.keyId).state).toBe('revoked');
    await again.close();
    const recs = auditRecords(copy);
    expect(recs.filter((r) => r.type === 'key.revoked')).toHaveLength(1);
    expect(recs.filter((r) => r.type === 'store.opened').at(-1)!.completedRecords).toBe(1);
    expect((await KeyStore.verifyAuditTrail(copy, PASS)).findings).toEqual([]);
  });

  it('a log cut back before the committed records (not a crash: records missing before them) is refused', async () => {
    const backend = new MemoryKeyBackend();
    const dir = tempDir();
    let crash = false;
    const { store } = await openStore(dir, backend, { fault: (point: string) => {
      if (crash && point === 'store:after-metadata') throw new Error('simulated crash');
    } });
    const { north } = await supplierEstate(store);
    await store.flush();
    crash = true;
    await expect(store.revoke(north.ds.handle.keyId)).rejects.toThrow('simulated crash');
    const copy = tempDir();
    copyFileSync(join(dir, 'store.json'), join(copy, 'store.json'));
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8').split('\n').filter(Boolean);
    writeFileSync(join(copy, 'audit.log'), `${lines.slice(0, -1).join('\n')}\n`); // one more record gone
    await expectCode(KeyStore.open({ directory: copy, backend, passphrase: PASS }), 'ERR_AUDIT_TRUNCATED');
    expect((await KeyStore.verifyAuditTrail(copy, PASS)).ok).toBe(false);
  });
});

/** Generate, certify and rotate in a second signing key for north; returns its id. */
async function issueRotated(store: KeyStore): Promise<string> {
  const { handle } = await issue(store, SUPPLIER, 'north', 'signing');
  await store.rotate(handle.keyId);
  return handle.keyId;
}

describe('keyAgreementWith takes only the use fields from its use context', () => {
  it.each([
    ['organisation', { organisation: OTHER_SUPPLIER }],
    ['purpose', { purpose: 'prepaymentKeyAgreement' }],
    ['both', { organisation: OTHER_SUPPLIER, purpose: 'prepaymentKeyAgreement', messageCode: 0x0050 }],
  ])('a use context carrying %s (built from request data) cannot switch the key', async (_, use) => {
    const { store, dir } = await openStore();
    const a = await supplierEstate(store);
    await supplierEstate(store, { entityId: OTHER_SUPPLIER }); // the same meters, another supplier's keys
    await issue(store, SUPPLIER, 'north', 'prepaymentKeyAgreement');
    const handle = a.north.ka.handle as KeyAgreementKeyHandle;
    const ka = store.keyAgreementWith(handle, M1, use as never);
    expect(Buffer.from(ka.publicKey).equals(Buffer.from(a.north.ka.cert.publicKeyBytes))).toBe(true);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const z = await ka.deriveSharedSecret(peer.publicKey);
    expect(Buffer.from(z).equals(diffieHellman({ privateKey: peer.privateKey, publicKey: a.north.ka.cert.publicKey! }))).toBe(true);
    await store.flush();
    const used = auditRecords(dir).filter((r) => r.type === 'key.used').at(-1)!;
    expect(used.keyId).toBe(handle.keyId);
  });
});

describe('a whole-estate declaration never overrides the keys meters trust', () => {
  it('is refused for a purpose while any device records an installed key for it', async () => {
    const { store, dir } = await openStore();
    const { north } = await supplierEstate(store);
    await store.flush();
    const before = auditRecords(dir).length;
    await expectCode(store.createPortfolio(SUPPLIER, { id: 'estate', wholeEstate: ['signing'] }), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
    await expectCode(() => store.portfolio(SUPPLIER, 'estate'), 'ERR_PORTFOLIO_NOT_FOUND');
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(before);
    // north meters still get north's signature
    expect(verifies(north.ds.cert.der, await store.signFor(M1, message))).toBe(true);
  });

  it('signs only for devices the organisation knows, and never records a per-device key for an estate purpose', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'estate', wholeEstate: ['signing'] });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const estate = await issue(store, SUPPLIER, 'estate', 'signing');
    const north = await issue(store, SUPPLIER, 'north', 'signing');
    // an EUI-64 never assigned to the organisation
    await expectCode(store.signFor('00DB1234567890FF', message), 'ERR_DEVICE_UNKNOWN');
    // a device of another portfolio: no per-device signing key recorded, the estate key serves it
    await store.assignDevice(SUPPLIER, M3, 'north');
    expect(store.device(SUPPLIER, M3).installed.signing).toBeUndefined();
    expect(verifies(estate.cert.der, await store.signFor(M3, message))).toBe(true);
    await expectCode(store.assignDevice(SUPPLIER, M1, 'north', { installed: { signing: north.handle.keyId } }), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
    await expectCode(() => store.device(SUPPLIER, M1), 'ERR_DEVICE_UNKNOWN');
    await expectCode(store.markCredentialsUpdated(SUPPLIER, M3, 'signing'), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
    expect(store.device(SUPPLIER, M3).installed.signing).toBeUndefined();
  });

  it('metadata edited by a passphrase holder to record an installed key beside an estate key is refused at use', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'estate', wholeEstate: ['signing'] });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    await issue(store, SUPPLIER, 'estate', 'signing');
    const north = await issue(store, SUPPLIER, 'north', 'signing');
    await store.assignDevice(SUPPLIER, M1, 'north');
    await store.close();
    const { store: meta, payload } = await MetadataFileStore.open(dir, PASS);
    const state = JSON.parse(payload!) as { devices: Record<string, { installed: Partial<Record<KeyPurpose, string>> }> };
    state.devices[`${SUPPLIER}/${M1}`]!.installed.signing = north.handle.keyId;
    meta.write(JSON.stringify(state));
    const { store: s2 } = await openStore(dir, backend);
    await expectCode(s2.signFor(M1, message), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
  });
});

describe('ids from outside never reach Object.prototype', () => {
  const POISON = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

  it.each(POISON)('key, revoke, retire, rotate, createCsr, attachCertificate, signWith with key id %j: ERR_KEY_NOT_FOUND, nothing written', async (id) => {
    const { store, dir } = await openStore();
    const { north } = await supplierEstate(store);
    await store.flush();
    const before = auditRecords(dir).length;
    await expectCode(() => store.key(id), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.revoke(id), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.retire(id), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.rotate(id), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.createCsr(id), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.attachCertificate(id, north.ds.cert), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.signWith({ keyId: id } as never, M1, message), 'ERR_KEY_NOT_FOUND');
    await expectCode(() => store.devicesExposedBy(id), 'ERR_KEY_NOT_FOUND');
    expect(Object.hasOwn(Object.prototype, 'state')).toBe(false);
    expect(({} as Record<string, unknown>).state).toBeUndefined();
    expect(({} as Record<string, unknown>).revokedAt).toBeUndefined();
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(before);
  });

  it.each(POISON)('portfolio id %j is an ordinary portfolio, never an inherited one', async (id) => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    if (/^[A-Za-z0-9_-]+$/.test(id)) {
      await expectCode(() => store.portfolio(SUPPLIER, id), 'ERR_PORTFOLIO_NOT_FOUND');
      await expectCode(store.generateKey(SUPPLIER, id, 'signing'), 'ERR_PORTFOLIO_NOT_FOUND');
      await store.createPortfolio(SUPPLIER, { id });
      expect(store.portfolio(SUPPLIER, id).id).toBe(id);
      await expectCode(store.createPortfolio(SUPPLIER, { id }), 'ERR_PORTFOLIO_EXISTS');
    }
    expect(Object.hasOwn(Object.prototype, 'organisation')).toBe(false);
  });
});
