// The public KeyStore: where it keeps its database (SQLite in the store directory by default,
// PostgreSQL by option), the refusal of a directory an earlier release wrote until it is migrated,
// KeyStore.migrate, the auditor's check with the audit public key alone (records, seals, an edited
// record, another store's key, an anchor), and the reads that page (meters trusting a key,
// credential updates, portfolio counts) and keyAgreementWith.
import { createECDH, generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { publicKeyToRaw } from '@smki/core';
import { issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { DirectoryAnchor, KEYSTORE_DATABASE_FILE, KeyStore, MemoryKeyBackend, type AuditRecord, type KeyHandle, type KeyPurpose, type KeyStoreDatabase } from '../src/index.js';
import { JsonKeyStore } from '../src/store.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { expectCode, message, PASS, pki, SUPPLIER, tempDir, usage, verifies } from './_store-fixtures.js';

const { pg } = postgresForThisFile('smki-ks-public-');
const eui = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;
let schemas = 0;

const databases: { kind: string; database: () => KeyStoreDatabase | undefined }[] = [
  { kind: 'sqlite (default)', database: () => undefined },
  { kind: 'postgres', database: () => ({ kind: 'postgres', ...connectionOf(pg), schema: `pub_${++schemas}` }) },
];

async function certify<P extends KeyPurpose>(store: KeyStore, portfolio: string, purpose: P): Promise<{ handle: KeyHandle<P>; cert: SmkiCertificate }> {
  const handle = (await store.generateKey(SUPPLIER, portfolio, purpose)) as KeyHandle<P>;
  const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: usage(purpose), csr: await store.createCsr(handle.keyId) });
  await store.attachCertificate(handle.keyId, cert);
  return { handle, cert };
}

/** north: 25 meters; south: 5; a DS and a KA key each. */
async function estate(store: KeyStore) {
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  await store.createPortfolio(SUPPLIER, { id: 'south' });
  const north = { ds: await certify(store, 'north', 'signing'), ka: await certify(store, 'north', 'keyAgreement') };
  const south = { ds: await certify(store, 'south', 'signing'), ka: await certify(store, 'south', 'keyAgreement') };
  await store.assignDevices(SUPPLIER, [
    ...Array.from({ length: 25 }, (_, i) => ({ device: eui(i + 1), portfolioId: 'north' })),
    ...Array.from({ length: 5 }, (_, i) => ({ device: eui(i + 101), portfolioId: 'south' })),
  ]);
  return { north, south };
}

describe.each(databases)('KeyStore on $kind', ({ database }) => {
  it('keeps its state in its database across processes of its life: closed and opened again, the same store', async () => {
    const dir = tempDir();
    const db = database();
    const backend = new MemoryKeyBackend();
    const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, ...(db ? { database: db } : {}) });
    const { north } = await estate(store);
    const sig = await store.signFor(eui(3), message, { organisation: SUPPLIER, counter: 1n });
    expect(verifies(north.ds.cert.der, sig)).toBe(true);
    const { storeId } = store;
    await store.close();
    // SQLite by default: one file in the store directory; PostgreSQL: nothing in the directory.
    expect(existsSync(join(dir, KEYSTORE_DATABASE_FILE))).toBe(db === undefined);
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toEqual([]);
    const again = await KeyStore.open({ directory: dir, backend, passphrase: PASS, ...(db ? { database: db } : {}) });
    expect(again.storeId).toBe(storeId);
    expect((await again.portfolios(SUPPLIER)).map((p) => [p.id, p.deviceCount])).toEqual([
      ['north', 25],
      ['south', 5],
    ]);
    // A wrong passphrase opens nothing.
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: `${PASS}!`, ...(db ? { database: db } : {}) }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    await again.close();
  });

  it('pages the meters that trust a key and the credential updates a rotation leaves, and counts exposure', async () => {
    const store = await KeyStore.open({ directory: tempDir(), backend: new MemoryKeyBackend(), passphrase: PASS, ...(database() ? { database: database()! } : {}) });
    const { north, south } = await estate(store);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await store.devicesTrusting(north.ds.handle.keyId, { limit: 10, ...(after ? { after } : {}) });
      expect(page.wholeEstate).toBe(false);
      seen.push(...page.devices);
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => eui(i + 1)));
    expect((await store.devicesTrusting(south.ds.handle.keyId)).devices).toEqual(Array.from({ length: 5 }, (_, i) => eui(i + 101)));
    // A rotation counts the meters due an update; credentialUpdates pages them.
    const g2 = await certify(store, 'north', 'signing');
    const rotation = await store.rotate(g2.handle.keyId);
    expect(rotation).toMatchObject({ fromKeyId: north.ds.handle.keyId, toKeyId: g2.handle.keyId, devicesToUpdate: 25 });
    const first = await store.credentialUpdates(SUPPLIER, 'north', { limit: 20 });
    expect(first.updates).toHaveLength(20);
    expect(first.updates[0]).toEqual({ device: eui(1), purpose: 'signing', fromKeyId: north.ds.handle.keyId, toKeyId: g2.handle.keyId });
    const rest = await store.credentialUpdates(SUPPLIER, 'north', { limit: 20, after: first.next! });
    expect(rest.updates).toHaveLength(5);
    expect(rest.next).toBeUndefined();
    // One meter moved: its one update, from the key it trusts to the new portfolio's.
    expect(await store.moveDevice(SUPPLIER, eui(101), 'north')).toEqual([
      { device: eui(101), purpose: 'signing', fromKeyId: south.ds.handle.keyId, toKeyId: g2.handle.keyId },
      { device: eui(101), purpose: 'keyAgreement', fromKeyId: south.ka.handle.keyId, toKeyId: north.ka.handle.keyId },
    ]);
    const exposure = new Map((await store.exposureReport(SUPPLIER)).map((e) => [e.keyId, e.deviceCount]));
    expect(exposure.get(north.ds.handle.keyId)).toBe(25);
    expect(exposure.get(south.ds.handle.keyId)).toBe(5);
    expect(exposure.get(g2.handle.keyId)).toBe(0);
    await store.close();
  });

  it('keyAgreementWith derives only with the key the meter trusts for that purpose', async () => {
    const store = await KeyStore.open({ directory: tempDir(), backend: new MemoryKeyBackend(), passphrase: PASS, ...(database() ? { database: database()! } : {}) });
    const { north, south } = await estate(store);
    const peer = createECDH('prime256v1');
    peer.generateKeys();
    const agreement = await store.keyAgreementWith(north.ka.handle, eui(1), { messageCode: 0x0050 });
    const z = await agreement.deriveSharedSecret(new Uint8Array(peer.getPublicKey()));
    expect(Buffer.from(z).equals(peer.computeSecret(Buffer.from(agreement.publicKey)))).toBe(true);
    await expectCode(store.keyAgreementWith(south.ka.handle, eui(1)), 'ERR_KEY_PORTFOLIO_MISMATCH');
    await expectCode(store.keyAgreementWith(north.ds.handle as never, eui(1)), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    // A second generation rotated in: the meter trusts the first until its update.
    const g2 = await certify(store, 'north', 'keyAgreement');
    await store.rotate(g2.handle.keyId);
    await expectCode(store.keyAgreementWith(g2.handle, eui(1)), 'ERR_KEY_STATE_TRANSITION');
    await store.markCredentialsUpdated(SUPPLIER, eui(1), 'keyAgreement');
    expect(Buffer.from((await store.keyAgreementWith(g2.handle, eui(1))).publicKey).toString('hex').toUpperCase()).toBe((await store.key(g2.handle.keyId)).publicKey);
    await store.close();
  });

  it('is verified by an auditor with its audit public key alone: every record handed over, another key refused', async () => {
    const dir = tempDir();
    const db = database();
    const store = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS, ...(db ? { database: db } : {}) });
    await estate(store);
    await Promise.all([1, 2, 3].map((i) => store.signFor(eui(i), message, { organisation: SUPPLIER, counter: BigInt(i) })));
    const head = await store.auditHead();
    const { auditPublicKey } = store;
    await store.close();
    const records: AuditRecord[] = [];
    const v = await KeyStore.verifyAuditTrail({ directory: dir, ...(db ? { database: db } : {}), auditPublicKey, onRecord: (r) => records.push(r) });
    expect(v.ok).toBe(true);
    expect(v.head).toEqual(head);
    expect(records).toHaveLength(head.seq);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: head.seq }, (_, i) => i + 1));
    expect(records.filter((r) => r.type === 'key.used')).toHaveLength(3);
    // Another store's audit key: no seal verifies.
    const other = publicKeyToRaw(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const w = await KeyStore.verifyAuditTrail({ directory: dir, ...(db ? { database: db } : {}), auditPublicKey: other });
    expect(w.ok).toBe(false);
    expect(w.findings[0]?.code).toBe('ERR_AUDIT_TAMPERED');
    await expectCode(KeyStore.verifyAuditTrail({ directory: dir, auditPublicKey: new Uint8Array(64) }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('KeyStore on SQLite: what the auditor and the integrator see', () => {
  it('an auditor finds a record edited in the database file, and never creates a database where there is none', async () => {
    const dir = tempDir();
    const store = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS });
    await estate(store);
    await store.signFor(eui(7), message, { organisation: SUPPLIER, counter: 7n });
    const { auditPublicKey } = store;
    await store.close();
    const path = join(dir, KEYSTORE_DATABASE_FILE);
    const raw = new Database(path);
    const row = raw.prepare(`SELECT seq, line FROM audit_records WHERE line LIKE '%"type":"key.used"%'`).get() as { seq: number; line: string };
    raw.prepare('UPDATE audit_records SET line = ? WHERE seq = ?').run(row.line.replace(eui(7), eui(8)), row.seq);
    raw.close();
    const v = await KeyStore.verifyAuditTrail({ directory: dir, auditPublicKey });
    expect(v.ok).toBe(false);
    expect(v.findings.some((f) => f.code === 'ERR_AUDIT_TAMPERED' && f.seq === row.seq)).toBe(true);
    const empty = tempDir();
    await expectCode(KeyStore.verifyAuditTrail({ directory: empty, auditPublicKey }), 'ERR_INVALID_ARGUMENT');
    expect(readdirSync(empty)).toEqual([]);
  });

  it('an auditor holds the trail against the anchor: a trail cut back before its latest checkpoint fails, so does an empty anchor', async () => {
    const dir = tempDir();
    const anchor = await DirectoryAnchor.open({ directory: join(dir, 'anchor') });
    const store = await KeyStore.open({ directory: join(dir, 'store'), backend: new MemoryKeyBackend(), passphrase: PASS, anchor });
    await estate(store);
    await store.signFor(eui(1), message, { organisation: SUPPLIER, counter: 1n });
    const { auditPublicKey } = store;
    const head = await store.auditHead();
    await store.close();
    expect((await KeyStore.verifyAuditTrail({ directory: join(dir, 'store'), auditPublicKey, anchor })).ok).toBe(true);
    // The last batch cut off and the head moved back: seals and chain still verify, the anchor does not agree.
    const raw = new Database(join(dir, 'store', KEYSTORE_DATABASE_FILE));
    const last = raw.prepare('SELECT batch, first_seq FROM audit_batches ORDER BY batch DESC LIMIT 1').get() as { batch: number; first_seq: number };
    const prev = raw.prepare('SELECT last_seq, last_hash FROM audit_batches WHERE batch = ?').get(last.batch - 1) as { last_seq: number; last_hash: string };
    raw.prepare('DELETE FROM audit_records WHERE seq >= ?').run(last.first_seq);
    raw.prepare('DELETE FROM audit_batches WHERE batch = ?').run(last.batch);
    raw.prepare('UPDATE audit_head SET seq = ?, hash = ?, batch = ? WHERE id = 1').run(prev.last_seq, prev.last_hash, last.batch - 1);
    raw.close();
    const alone = await KeyStore.verifyAuditTrail({ directory: join(dir, 'store'), auditPublicKey });
    expect(alone.ok).toBe(true); // what the anchor is for
    expect(alone.count).toBeLessThan(head.seq);
    const cut = await KeyStore.verifyAuditTrail({ directory: join(dir, 'store'), auditPublicKey, anchor });
    expect(cut.ok).toBe(false);
    expect(cut.findings.map((f) => f.code)).toContain('ERR_AUDIT_TRUNCATED');
    const empty = await DirectoryAnchor.open({ directory: join(dir, 'empty') });
    const none = await KeyStore.verifyAuditTrail({ directory: join(dir, 'store'), auditPublicKey, anchor: empty });
    expect(none.findings.map((f) => f.code)).toContain('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    await empty.close();
    await anchor.close();
  });

  it('refuses a directory an earlier release wrote until KeyStore.migrate has moved it into the database; its keys sign on', async () => {
    const dir = tempDir();
    const backend = new MemoryKeyBackend();
    // The store of the earlier release (JSON metadata and audit.log), written by its own code.
    const old = await JsonKeyStore.open({ directory: dir, backend, passphrase: PASS });
    await old.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await old.createPortfolio(SUPPLIER, { id: 'north' });
    const h = await old.generateKey(SUPPLIER, 'north', 'signing');
    const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await old.createCsr(h.keyId) });
    await old.attachCertificate(h.keyId, cert);
    await old.assignDevice(SUPPLIER, eui(1), 'north');
    await old.close();
    await expectCode(KeyStore.open({ directory: dir, backend, passphrase: PASS }), 'ERR_KEYSTORE_MIGRATION_REQUIRED');
    expect(existsSync(join(dir, KEYSTORE_DATABASE_FILE))).toBe(false);
    // A wrong passphrase migrates nothing.
    await expectCode(KeyStore.migrate({ directory: dir, backend, passphrase: `${PASS}!` }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    expect(existsSync(join(dir, 'store.json'))).toBe(true);
    const report = await KeyStore.migrate({ directory: dir, backend, passphrase: PASS });
    expect(report).toMatchObject({ resumed: false, rows: 4 });
    expect(existsSync(join(dir, 'store.json'))).toBe(false);
    await expectCode(KeyStore.migrate({ directory: dir, backend, passphrase: PASS }), 'ERR_INVALID_ARGUMENT');
    const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS });
    expect(store.storeId).toBe(report.storeId);
    expect(verifies(cert.der, await store.signFor(eui(1), message, { organisation: SUPPLIER }))).toBe(true);
    const full = await store.verifyStore();
    expect(full.trail.ok).toBe(true);
    expect(full.findings).toEqual([]);
    await store.close();
  });

  it('takes its passphrase from SMKI_KEYSTORE_PASSPHRASE, and refuses to open without one', async () => {
    const dir = tempDir();
    const saved = process.env.SMKI_KEYSTORE_PASSPHRASE;
    try {
      delete process.env.SMKI_KEYSTORE_PASSPHRASE;
      await expectCode(KeyStore.open({ directory: dir, backend: new MemoryKeyBackend() }), 'ERR_INVALID_ARGUMENT');
      await expectCode(KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: '' }), 'ERR_INVALID_ARGUMENT');
      expect(existsSync(join(dir, KEYSTORE_DATABASE_FILE))).toBe(false);
      process.env.SMKI_KEYSTORE_PASSPHRASE = PASS;
      const store = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend() });
      await store.close();
      await expectCode(KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: 'another one' }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    } finally {
      if (saved === undefined) delete process.env.SMKI_KEYSTORE_PASSPHRASE;
      else process.env.SMKI_KEYSTORE_PASSPHRASE = saved;
    }
    await expectCode(KeyStore.open({ backend: new MemoryKeyBackend(), passphrase: PASS }), 'ERR_INVALID_ARGUMENT');
    for (const scryptN of [2 ** 14, 2 ** 21, 40_000, 1.5]) {
      const fresh = tempDir();
      await expectCode(KeyStore.open({ directory: fresh, backend: new MemoryKeyBackend(), passphrase: PASS, scryptN }), 'ERR_INVALID_ARGUMENT');
      expect(readdirSync(fresh)).toEqual([]);
    }
    await expectCode(KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS, database: { kind: 'mysql' } as never }), 'ERR_INVALID_ARGUMENT');
  });
});
