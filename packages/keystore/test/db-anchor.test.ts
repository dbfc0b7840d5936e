// The database store and its audit anchor: the head checkpointed on open, on an interval and at
// close, signed with the audit key; an older copy of the whole database put back, or its trail
// cut short, is refused on open against the anchor; and the store stops changing and signing
// anything once its anchor has taken no checkpoint for too long (a real PostgreSQL anchor, its
// server stopped), and goes on once the anchor is back.
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueOrganisationCertificate } from '@smki/pki';
import { DirectoryAnchor, PostgresAnchor, verifyAuditCheckpoint } from '../src/anchor.js';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { SqliteDriver } from '../src/internal/db/driver.js';
import { SQLITE_SCHEMA } from '../src/internal/db/schema.js';
import { MemoryKeyBackend } from '../src/index.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { expectCode, message, PASS, pki, SUPPLIER, tempDir } from './_store-fixtures.js';

const { pg } = postgresForThisFile('smki-ks-anchor-db-');
const eui = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;

async function estate(store: DbKeyStore): Promise<void> {
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  const h = await store.generateKey(SUPPLIER, 'north', 'signing');
  await store.attachCertificate(h.keyId, await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(h.keyId) }));
  await store.assignDevices(SUPPLIER, [1, 2, 3].map((i) => ({ device: eui(i), portfolioId: 'north' })));
}

describe('the database store and its anchor', () => {
  it('checkpoints the head on open and at close, signed with the audit key', async () => {
    const dir = tempDir();
    const anchor = await DirectoryAnchor.open({ directory: join(dir, 'anchor') });
    const backend = new MemoryKeyBackend();
    const store = await DbKeyStore.open({ driver: SqliteDriver.open(join(dir, 'keystore.db'), SQLITE_SCHEMA), backend, passphrase: PASS, anchor });
    const first = await anchor.latest(store.storeId);
    expect(first?.seq).toBe((await store.auditHead()).seq);
    await estate(store);
    await store.signFor(eui(1), message, { organisation: SUPPLIER });
    const head = await store.auditHead();
    const { storeId, auditPublicKey } = store;
    await store.close();
    const last = await anchor.latest(storeId);
    expect(last).toMatchObject({ seq: head.seq, hash: head.hash });
    expect(verifyAuditCheckpoint(last, auditPublicKey, storeId).seq).toBe(head.seq);
    await anchor.close();
  });

  it('refuses an older copy of the whole database put back, against the anchor', async () => {
    const dir = tempDir();
    const anchor = await DirectoryAnchor.open({ directory: join(dir, 'anchor') });
    const backend = new MemoryKeyBackend();
    const path = join(dir, 'keystore.db');
    const open = () => DbKeyStore.open({ driver: SqliteDriver.open(path, SQLITE_SCHEMA), backend, passphrase: PASS, anchor });
    const store = await open();
    await estate(store);
    await store.close();
    copyFileSync(path, join(dir, 'backup.db'));
    expect(existsSync(`${path}-wal`)).toBe(false);
    // Later: the key revoked, and checkpointed at close.
    const again = await open();
    await again.revoke(`${SUPPLIER}.north.DS.g1`, 'keyCompromise');
    await again.close();
    // The backup put back: every row and record authentic, but the trail ends before the anchor's checkpoint.
    copyFileSync(join(dir, 'backup.db'), path);
    await expectCode(open(), 'ERR_AUDIT_TRUNCATED');
    // An empty anchor (another directory, an unmounted volume) is refused too: the trail says it was anchored.
    const empty = await DirectoryAnchor.open({ directory: join(dir, 'empty-anchor') });
    copyFileSync(join(dir, 'backup.db'), path);
    await expectCode(DbKeyStore.open({ driver: SqliteDriver.open(path, SQLITE_SCHEMA), backend, passphrase: PASS, anchor: empty }), 'ERR_AUDIT_ANCHOR_UNAVAILABLE');
    await empty.close();
    // Without the anchor the rollback would go unseen: this is what the anchor is for.
    const blind = await DbKeyStore.open({ driver: SqliteDriver.open(path, SQLITE_SCHEMA), backend, passphrase: PASS });
    expect((await blind.key(`${SUPPLIER}.north.DS.g1`)).state).toBe('active');
    await blind.close();
    await anchor.close();
  });

  it('refuses a trail whose last records were cut off and its head moved back', async () => {
    const dir = tempDir();
    const anchor = await DirectoryAnchor.open({ directory: join(dir, 'anchor') });
    const backend = new MemoryKeyBackend();
    const path = join(dir, 'keystore.db');
    const open = () => DbKeyStore.open({ driver: SqliteDriver.open(path, SQLITE_SCHEMA), backend, passphrase: PASS, anchor });
    const store = await open();
    await estate(store);
    await store.signFor(eui(2), message, { organisation: SUPPLIER, counter: 9n });
    await store.close();
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path);
    const last = db.prepare('SELECT batch, first_seq FROM audit_batches ORDER BY batch DESC LIMIT 1').get() as { batch: number; first_seq: number };
    const before = db.prepare('SELECT last_seq, last_hash FROM audit_batches WHERE batch = ?').get(last.batch - 1) as { last_seq: number; last_hash: string };
    db.prepare('DELETE FROM audit_records WHERE seq >= ?').run(last.first_seq);
    db.prepare('DELETE FROM audit_batches WHERE batch = ?').run(last.batch);
    db.prepare('UPDATE audit_head SET seq = ?, hash = ?, batch = ?').run(before.last_seq, before.last_hash, last.batch - 1);
    db.close();
    await expectCode(open(), 'ERR_AUDIT_TRUNCATED');
    await anchor.close();
  });

  it('stops changing and signing when the anchor is down for too long, and goes on when it is back', async () => {
    const dir = tempDir();
    const anchor = await PostgresAnchor.open({ ...connectionOf(pg), schema: 'anchor_down' });
    let offset = 0;
    const now = () => new Date(Date.now() + offset);
    const backend = new MemoryKeyBackend();
    const store = await DbKeyStore.open({ driver: SqliteDriver.open(join(dir, 'keystore.db'), SQLITE_SCHEMA), backend, passphrase: PASS, anchor, anchorIntervalMs: 100, now });
    await estate(store);
    for (const purpose of ['keyAgreement', 'xmlSigning'] as const) {
      const h = await store.generateKey(SUPPLIER, 'north', purpose);
      const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: purpose === 'xmlSigning' ? 135 : 2, entityId: SUPPLIER, keyUsage: purpose === 'xmlSigning' ? 'digitalSignature' : 'keyAgreement', csr: await store.createCsr(h.keyId) });
      await store.attachCertificate(h.keyId, cert);
    }
    await store.markCredentialsUpdated(SUPPLIER, eui(1), 'keyAgreement');
    await store.signFor(eui(1), message, { organisation: SUPPLIER });
    // Obtained while the anchor is up; used while it is down.
    const agreement = await store.keyAgreementFor(eui(1), { organisation: SUPPLIER });
    const xml = await store.xmlSigner(SUPPLIER);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    pg.stop('immediate');
    try {
      // A change moves the head; the checkpoints fail; after the allowed lag the store refuses.
      await store.signFor(eui(2), message, { organisation: SUPPLIER });
      await new Promise((r) => setTimeout(r, 400));
      offset = 60_000;
      await expectCode(store.signFor(eui(3), message, { organisation: SUPPLIER }), 'ERR_AUDIT_ANCHOR_UNAVAILABLE');
      await expectCode(store.revoke(`${SUPPLIER}.north.DS.g1`), 'ERR_AUDIT_ANCHOR_UNAVAILABLE');
      const before = (await backend.listHandles()).length;
      await expectCode(store.generateKey(SUPPLIER, 'north', 'signing'), 'ERR_AUDIT_ANCHOR_UNAVAILABLE');
      expect((await backend.listHandles()).length).toBe(before); // no orphan
      await expectCode(agreement.deriveSharedSecret(peer), 'ERR_AUDIT_ANCHOR_UNAVAILABLE');
      await expectCode(xml.sign(message), 'ERR_AUDIT_ANCHOR_UNAVAILABLE');
    } finally {
      pg.start();
    }
    // Back: the next checkpoint covers the head, and the store goes on.
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        await store.signFor(eui(3), message, { organisation: SUPPLIER });
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ERR_AUDIT_ANCHOR_UNAVAILABLE' || i === 99) throw e;
      }
    }
    await store.close();
    expect((await anchor.latest(store.storeId))?.seq).toBe((await (await DbKeyStore.open({ driver: SqliteDriver.open(join(dir, 'keystore.db'), SQLITE_SCHEMA), backend: new MemoryKeyBackend(), passphrase: PASS })).auditHead()).seq);
    await anchor.close();
  }, 120_000);
});
