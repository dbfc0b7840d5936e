// Migration in place of a store with JSON metadata (written by this release's JSON store) into
// SQLite and PostgreSQL: every row carried over and authenticated, the old log's head bound into
// the new trail, a refused source changes nothing, an interrupted migration finishes on a rerun.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSmkiError } from '@smki/core';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from '../src/internal/db/driver.js';
import { migrateJsonStore, MIGRATED_FILE } from '../src/internal/db/migrate.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from '../src/internal/db/schema.js';
import { verifyTrail } from '../src/internal/db/trail.js';
import { MemoryKeyBackend } from '../src/index.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { expectCode, issue, M1, M2, M3, message, PASS, SUPPLIER, supplierEstate, tempDir, verifies } from './_store-fixtures.js';

const { pg } = postgresForThisFile('smki-ks-migrate-');
let schemas = 0;

/** Each test's database: a file in the store directory, or a schema of its own on the server. */
const databases: { kind: string; fresh(): (dir: string) => Promise<SqlDriver> }[] = [
  { kind: 'sqlite', fresh: () => async (dir) => SqliteDriver.open(join(dir, 'keystore.db'), SQLITE_SCHEMA) },
  {
    kind: 'postgres',
    fresh: () => {
      const schema = `mig_${++schemas}`;
      return async () => PostgresDriver.open({ ...connectionOf(pg), schema }, POSTGRES_SCHEMA);
    },
  },
];

/** A JSON store as this release writes it: two portfolios, a rotation under way, a revoked key. */
async function jsonStore(backend: MemoryKeyBackend) {
  const dir = tempDir();
  const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, auditGroupCommitMs: 5 });
  const { north, south } = await supplierEstate(store);
  const g2 = await issue(store, SUPPLIER, 'north', 'signing');
  await store.rotate(g2.handle.keyId);
  await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
  await store.revoke(south.ka.handle.keyId, 'keyCompromise');
  await store.signFor(M2, message, { counter: 5n });
  const before = { keys: store.keys(), m1: store.device(SUPPLIER, M1), m2: store.device(SUPPLIER, M2), m3: store.device(SUPPLIER, M3), portfolios: store.portfolios(SUPPLIER) };
  await store.close();
  return { dir, north, south, g2, before };
}

describe.each(databases)('migrating a JSON store into $kind', (database) => {
  it('carries every row over, authenticated, and binds the old log into the new trail', async () => {
    const db = { driver: database.fresh() };
    const backend = new MemoryKeyBackend();
    const { dir, north, g2, before } = await jsonStore(backend);
    const oldLog = readFileSync(join(dir, 'audit.log'), 'utf8');
    const report = await migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver: await db.driver(dir) });
    expect(report.resumed).toBe(false);
    expect(report.rows).toBe(1 + 2 + 5 + 3);
    expect(existsSync(join(dir, 'store.json'))).toBe(false);
    expect(existsSync(join(dir, MIGRATED_FILE))).toBe(true);
    // The old log stays beside the new trail, with the one record of the migration's opening it.
    const finalLog = readFileSync(join(dir, 'audit.log'), 'utf8');
    expect(finalLog.startsWith(oldLog)).toBe(true);
    const finalLines = finalLog.split('\n').filter(Boolean);
    expect(finalLines).toHaveLength(oldLog.split('\n').filter(Boolean).length + 1);
    expect(report.fromRecords).toBe(finalLines.length);

    const store = await DbKeyStore.open({ driver: await db.driver(dir), backend, passphrase: PASS });
    expect(store.storeId).toBe(report.storeId);
    expect(await store.keys()).toEqual([...before.keys].sort((a, b) => (a.keyId < b.keyId ? -1 : 1)));
    expect(await store.device(SUPPLIER, M1)).toEqual(before.m1);
    expect(await store.device(SUPPLIER, M2)).toEqual(before.m2);
    expect(await store.device(SUPPLIER, M3)).toEqual(before.m3);
    expect((await store.portfolios(SUPPLIER)).map((p) => p.current)).toEqual(before.portfolios.map((p) => p.current));
    // The same keys sign: M1 was updated to g2, M2 still trusts g1.
    expect(verifies(g2.cert.der, await store.signFor(M1, message))).toBe(true);
    expect(verifies(north.ds.cert.der, await store.signFor(M2, message))).toBe(true);
    const records: string[] = [];
    const v = await verifyTrail(await db.driver(dir), { storeId: store.storeId, publicKey: store.auditPublicKey }, (r) =>
      records.push(r.type === 'store.migrated' ? `${r.type}:${r.fromRecords}:${r.fromHash}` : r.type),
    );
    expect(v.ok).toBe(true);
    const lastOld = finalLines[finalLines.length - 1] as string;
    const { createHash } = await import('node:crypto');
    expect(records.slice(0, 2)).toEqual(['store.created', `store.migrated:${report.fromRecords}:${createHash('sha256').update(lastOld).digest('hex').toUpperCase()}`]);
    // Every migrated row agrees with the trail (seeded from the migration, then replayed).
    await store.moveDevices(SUPPLIER, [M3], 'north');
    const checked = await store.verifyStore();
    expect(checked.trail.ok).toBe(true);
    expect(checked.findings.map((f) => `${f.code} ${f.row} ${f.message}`)).toEqual([]);
    await store.close();
    // The JSON store cannot be migrated twice.
    await expectCode(migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver: await db.driver(dir) }), 'ERR_INVALID_ARGUMENT');
  });

  it('refuses a damaged JSON store and writes nothing to the database', async () => {
    const db = { driver: database.fresh() };
    const backend = new MemoryKeyBackend();
    const { dir } = await jsonStore(backend);
    const file = join(dir, 'store.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as { payload: string };
    json.payload = json.payload.replace('"revoked"', '"active"');
    writeFileSync(file, JSON.stringify(json));
    const driver = await db.driver(dir);
    await expectCode(migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver }), 'ERR_KEYSTORE_CORRUPT');
    expect(await DbKeyStore.migrationOf(driver)).toBeUndefined();
    expect(existsSync(file)).toBe(true);
    await expectCode(migrateJsonStore({ directory: dir, backend, passphrase: 'wrong', driver }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    await driver.close();
  });

  it('finishes a migration interrupted between its commit and the rename, without importing twice', async () => {
    const db = { driver: database.fresh() };
    const backend = new MemoryKeyBackend();
    const { dir } = await jsonStore(backend);
    const fault = (point: string) => {
      if (point === 'migrate:after-import') throw new Error('crash');
    };
    await expect(migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver: await db.driver(dir), fault })).rejects.toThrow('crash');
    expect(existsSync(join(dir, 'store.json'))).toBe(true);
    const again = await migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver: await db.driver(dir) });
    expect(again.resumed).toBe(true);
    expect(existsSync(join(dir, 'store.json'))).toBe(false);
    const store = await DbKeyStore.open({ driver: await db.driver(dir), backend, passphrase: PASS });
    expect((await store.keys()).length).toBe(5);
    expect((await store.verifyTrail()).ok).toBe(true);
    await store.close();
  });

  it('refuses to migrate into a database holding another store', async () => {
    const db = { driver: database.fresh() };
    const backend = new MemoryKeyBackend();
    const { dir } = await jsonStore(backend);
    const driver = await db.driver(dir);
    const other = await DbKeyStore.open({ driver, backend, passphrase: PASS });
    await other.close();
    try {
      await migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver: await db.driver(dir) });
      expect.unreachable();
    } catch (e) {
      expect(isSmkiError(e, 'ERR_INVALID_ARGUMENT')).toBe(true);
    }
    expect(existsSync(join(dir, 'store.json'))).toBe(true);
  });
});

it('binds every row to its store: two databases migrated from copies of one JSON store (same passphrase, same KDF) refuse each other’s rows', async () => {
  const { cpSync } = await import('node:fs');
  const { default: Database } = await import('better-sqlite3');
  const backend = new MemoryKeyBackend();
  const { dir } = await jsonStore(backend);
  const copy = tempDir();
  cpSync(dir, copy, { recursive: true });
  const open = (d: string) => SqliteDriver.open(join(d, 'keystore.db'), SQLITE_SCHEMA);
  await migrateJsonStore({ directory: dir, backend, passphrase: PASS, driver: open(dir) });
  await migrateJsonStore({ directory: copy, backend, passphrase: PASS, driver: open(copy) });
  const a = new Database(join(dir, 'keystore.db'));
  const b = new Database(join(copy, 'keystore.db'));
  const rowA = a.prepare('SELECT * FROM devices WHERE device = ?').get(M2) as Record<string, unknown>;
  const rowB = b.prepare('SELECT * FROM devices WHERE device = ?').get(M2) as Record<string, unknown>;
  // Same content, same rev: only the store id in the MAC tells them apart.
  expect({ ...rowA, mac: '' }).toEqual({ ...rowB, mac: '' });
  expect(rowA['mac']).not.toBe(rowB['mac']);
  b.prepare('UPDATE devices SET mac = ? WHERE device = ?').run(rowA['mac'], M2);
  a.close();
  b.close();
  const store = await DbKeyStore.open({ driver: open(copy), backend, passphrase: PASS });
  await expectCode(store.signFor(M2, message), 'ERR_KEYSTORE_ROW_TAMPERED');
  await store.signFor(M1, message);
  await store.close();
});
