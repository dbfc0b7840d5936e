// The key store over a database: the same rules on SQLite and on a real PostgreSQL server,
// authenticated rows (tampering and rollback refused), one transaction per change with its audit
// records, use records durable before a signature leaves, the trail verified with the audit
// public key only.
import { verify } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import { issueOrganisationCertificate, toCertificate, type CertificateInput } from '@smki/pki';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from '../src/internal/db/driver.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from '../src/internal/db/schema.js';
import { verifyTrail } from '../src/internal/db/trail.js';
import { MemoryKeyBackend, type KeyPurpose } from '../src/index.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { expectCode, message, PASS, pki, SUPPLIER, tempDir, usage } from './_store-fixtures.js';

const { pg } = postgresForThisFile('smki-ks-db-');
let schemas = 0;

interface Db {
  readonly kind: 'sqlite' | 'postgres';
  /** A new, empty database; `open` opens a driver on it (another one = another process's view). */
  fresh(): { open(): Promise<SqlDriver>; sql(statement: string): unknown; backend: MemoryKeyBackend };
}

const databases: Db[] = [
  {
    kind: 'sqlite',
    fresh() {
      const path = join(tempDir(), 'keystore.db');
      return {
        backend: new MemoryKeyBackend(),
        open: async () => SqliteDriver.open(path, SQLITE_SCHEMA),
        sql: (statement: string) => {
          const db = new Database(path);
          try {
            return /^\s*select/i.test(statement) ? db.prepare(statement).all() : db.exec(statement);
          } finally {
            db.close();
          }
        },
      };
    },
  },
  {
    kind: 'postgres',
    fresh() {
      const schema = `ks_${++schemas}`;
      return {
        backend: new MemoryKeyBackend(),
        open: async () => PostgresDriver.open({ ...connectionOf(pg), schema }, POSTGRES_SCHEMA),
        sql: (statement: string) => pg.psql(`SET search_path TO ${schema}; ${statement}`),
      };
    },
  },
];

const open = async (driver: SqlDriver, backend = new MemoryKeyBackend()) => DbKeyStore.open({ driver, backend, passphrase: PASS });

async function issue(store: DbKeyStore, org: string, portfolio: string, purpose: KeyPurpose) {
  const handle = await store.generateKey(org, portfolio, purpose);
  const csr = await store.createCsr(handle.keyId);
  const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: org, keyUsage: usage(purpose), csr });
  await store.attachCertificate(handle.keyId, cert);
  return { handle, cert };
}

const eui = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;

/** A supplier with portfolios north and south, a DS key each, and `n` meters in each. */
async function estate(store: DbKeyStore, n = 3) {
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  await store.createPortfolio(SUPPLIER, { id: 'south' });
  const north = await issue(store, SUPPLIER, 'north', 'signing');
  const south = await issue(store, SUPPLIER, 'south', 'signing');
  await store.assignDevices(SUPPLIER, [
    ...Array.from({ length: n }, (_, i) => ({ device: eui(i + 1), portfolioId: 'north' })),
    ...Array.from({ length: n }, (_, i) => ({ device: eui(1000 + i), portfolioId: 'south' })),
  ]);
  return { north, south };
}

const verifiesWith = (cert: CertificateInput, sig: Uint8Array) => verify('sha256', message, { key: toCertificate(cert).publicKey!, dsaEncoding: 'ieee-p1363' }, sig);

describe.each(databases)('key store over $kind', (db) => {
  it('opens while another connection keeps changing key rows: rows and the trail index read on one snapshot', async () => {
    const d = db.fresh();
    const writer = await open(await d.open(), d.backend);
    await estate(writer, 1);
    let stop = false;
    let changes = 0;
    const churn = (async () => {
      while (!stop) {
        const h = await writer.generateKey(SUPPLIER, 'south', 'keyAgreement');
        await writer.retire(h.keyId);
        changes += 2;
        // SQLite answers without I/O callbacks: let the opener's scrypt and reads take turns.
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      // Each open checks every key row against the trail's index; a commit between the two reads
      // would look like a row put back to an older version.
      for (let i = 0; i < 25 || changes < 40; i++) {
        const reader = await open(await d.open(), d.backend);
        await reader.close();
      }
    } finally {
      stop = true;
      await churn;
    }
    expect(changes).toBeGreaterThanOrEqual(40);
    await writer.close();
  });

  it('creates a store once, reopens it with its id, and refuses a wrong passphrase', async () => {
    const d = db.fresh();
    const a = await open(await d.open(), d.backend);
    const id = a.storeId;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    await a.close();
    const b = await open(await d.open(), d.backend);
    expect(b.storeId).toBe(id);
    await b.close();
    const driver = await d.open();
    await expectCode(DbKeyStore.open({ driver, backend: new MemoryKeyBackend(), passphrase: 'not the passphrase' }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    await driver.close();
  });

  it('signs for a meter with the key its portfolio gave it, and only after the use record committed', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north, south } = await estate(store);
    const sig = await store.signFor(eui(1), message, { messageCode: 0x0050, counter: 7n });
    expect(verifiesWith(north.cert, sig)).toBe(true);
    expect(verifiesWith(south.cert, await store.signFor(eui(1000), message))).toBe(true);
    // The use record is in the trail when signFor resolves (no flush), with its counter.
    const head = await store.auditHead();
    const trail = await store.verifyTrail();
    expect(trail.ok).toBe(true);
    expect(trail.count).toBe(head.seq);
    const records: string[] = [];
    const pub = store.auditPublicKey;
    const v = await verifyTrail(await d.open(), { storeId: store.storeId, publicKey: pub }, (r) => records.push(`${r.type}:${'counter' in r ? String(r.counter) : ''}`));
    expect(v.ok).toBe(true);
    expect(records).toContain('key.used:7');
    await store.close();
  });

  it('assigns a bulk of meters in one transaction, all or none', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 1);
    const before = await store.auditHead();
    const many = Array.from({ length: 2000 }, (_, i) => ({ device: eui(5000 + i), portfolioId: 'north' }));
    // One already assigned: nothing of the batch is assigned, no record written.
    await expectCode(store.assignDevices(SUPPLIER, [...many, { device: eui(1), portfolioId: 'south' }]), 'ERR_DEVICE_ALREADY_ASSIGNED');
    expect((await store.auditHead()).seq).toBe(before.seq);
    await expectCode(store.device(SUPPLIER, eui(5000)), 'ERR_DEVICE_UNKNOWN');
    expect(await store.assignDevices(SUPPLIER, many)).toBe(2000);
    const after = await store.auditHead();
    expect(after.seq - before.seq).toBe(2000);
    expect(after.batch - before.batch).toBe(1);
    expect((await store.portfolio(SUPPLIER, 'north')).deviceCount).toBe(2001);
    await store.close();
  });

  it('rotates, pages through the credential updates, and retires the old key only when no meter trusts it', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north } = await estate(store, 5);
    const g2 = await issue(store, SUPPLIER, 'north', 'signing');
    const r = await store.rotate(g2.handle.keyId);
    expect(r).toEqual({ fromKeyId: north.handle.keyId, toKeyId: g2.handle.keyId, devicesToUpdate: 5 });
    const page1 = await store.credentialUpdates(SUPPLIER, 'north', { limit: 3 });
    expect(page1.updates.map((u) => u.device)).toEqual([eui(1), eui(2), eui(3)]);
    expect(page1.updates[0]).toMatchObject({ fromKeyId: north.handle.keyId, toKeyId: g2.handle.keyId, purpose: 'signing' });
    const page2 = await store.credentialUpdates(SUPPLIER, 'north', { limit: 3, after: page1.next! });
    expect(page2.updates.map((u) => u.device)).toEqual([eui(4), eui(5)]);
    expect(page2.next).toBeUndefined();
    // Meters still trusting g1 are signed for with g1.
    expect(verifiesWith(north.cert, await store.signFor(eui(1), message))).toBe(true);
    await expectCode(store.retire(north.handle.keyId), 'ERR_KEY_STATE_TRANSITION');
    for (let i = 1; i <= 5; i++) await store.markCredentialsUpdated(SUPPLIER, eui(i), 'signing');
    expect(verifiesWith(g2.cert, await store.signFor(eui(1), message))).toBe(true);
    expect((await store.retire(north.handle.keyId)).state).toBe('retired');
    expect((await store.credentialUpdates(SUPPLIER, 'north')).updates).toHaveLength(0);
    await store.close();
  });

  it('moves meters in one transaction; they keep their installed key until updated', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north, south } = await estate(store, 4);
    expect(await store.moveDevices(SUPPLIER, [eui(1), eui(2)], 'south')).toBe(2);
    const dev = await store.device(SUPPLIER, eui(1));
    expect(dev.portfolioId).toBe('south');
    expect(dev.installed.signing).toBe(north.handle.keyId);
    expect(verifiesWith(north.cert, await store.signFor(eui(1), message))).toBe(true);
    const ups = await store.credentialUpdates(SUPPLIER, 'south');
    expect(ups.updates.map((u) => u.device)).toEqual([eui(1), eui(2)]);
    await store.markCredentialsUpdated(SUPPLIER, eui(1), 'signing');
    expect(verifiesWith(south.cert, await store.signFor(eui(1), message))).toBe(true);
    // All or none: one unknown device moves nothing.
    await expectCode(store.moveDevices(SUPPLIER, [eui(3), eui(999)], 'south'), 'ERR_DEVICE_UNKNOWN');
    expect((await store.device(SUPPLIER, eui(3))).portfolioId).toBe('north');
    await store.close();
  });

  it('reports exposure as counts per key, whole-estate keys counting every meter', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north, south } = await estate(store, 3);
    await store.createPortfolio(SUPPLIER, { id: 'acb', wholeEstate: ['keyAgreement'] });
    const ka = await issue(store, SUPPLIER, 'acb', 'keyAgreement');
    await store.moveDevices(SUPPLIER, [eui(1000)], 'north');
    const report = await store.exposureReport(SUPPLIER);
    const byKey = new Map(report.map((e) => [e.keyId, e]));
    expect(byKey.get(north.handle.keyId)?.deviceCount).toBe(3);
    expect(byKey.get(south.handle.keyId)?.deviceCount).toBe(3);
    expect(byKey.get(ka.handle.keyId)).toMatchObject({ wholeEstate: true, deviceCount: 6 });
    expect(report[0]?.deviceCount).toBe(6);
    await store.close();
  });

  it('refuses to sign with a revoked key, and a revocation committed by another process while a signature waits withholds it', async () => {
    const d = db.fresh();
    const a = await open(await d.open(), d.backend);
    const { north } = await estate(a, 2);
    const b = await open(await d.open(), d.backend);
    // a has read the meter's key and is signing when b (another process's view) revokes it: the
    // revocation commits before a's use record, and a's batch, seeing it, withholds the signature.
    let revoked = false;
    const sign = d.backend.sign.bind(d.backend);
    d.backend.sign = async (handle, data) => {
      const sig = await sign(handle, data);
      if (!revoked) {
        revoked = true;
        await b.revoke(north.handle.keyId, 'keyCompromise');
      }
      return sig;
    };
    await expectCode(a.signFor(eui(1), message), 'ERR_KEY_REVOKED');
    expect(revoked).toBe(true);
    await expectCode(a.signFor(eui(2), message), 'ERR_KEY_REVOKED');
    await expectCode(b.signFor(eui(2), message), 'ERR_KEY_REVOKED');
    expect((await a.verifyTrail()).ok).toBe(true);
    await a.close();
    await b.close();
  });

  it('withholds a signature made with the key a meter stopped trusting before its use record committed', async () => {
    const d = db.fresh();
    const a = await open(await d.open(), d.backend);
    const { north } = await estate(a, 2);
    const g2 = await issue(a, SUPPLIER, 'north', 'signing');
    await a.rotate(g2.handle.keyId);
    const b = await open(await d.open(), d.backend);
    let updated = false;
    const sign = d.backend.sign.bind(d.backend);
    d.backend.sign = async (handle, data) => {
      const sig = await sign(handle, data);
      if (!updated) {
        updated = true;
        // Meanwhile another process records that meter 1 now trusts g2.
        await b.markCredentialsUpdated(SUPPLIER, eui(1), 'signing');
      }
      return sig;
    };
    await expectCode(a.signFor(eui(1), message), 'ERR_KEY_STATE_TRANSITION');
    expect(updated).toBe(true);
    // Asked again, the store signs with the key the meter trusts now; meter 2 still gets g1.
    expect(verifiesWith(g2.cert, await a.signFor(eui(1), message))).toBe(true);
    expect(verifiesWith(north.cert, await a.signFor(eui(2), message))).toBe(true);
    await a.close();
    await b.close();
  });

  it('prewarm reads every meter once, a chunk at a time', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 3);
    for (const chunk of [1, 2, 4, 5, 6, 7, 100]) expect(await store.prewarm({ chunk })).toBe(6);
    expect(await store.prewarm()).toBe(6);
    await expectCode(store.prewarm({ chunk: 0 }), 'ERR_INVALID_ARGUMENT');
    await store.signFor(eui(1), message);
    await store.close();
    await expectCode(store.prewarm(), 'ERR_KEYSTORE_CLOSED');
  });

  it('refuses a key row changed in the database while the store is open, after it signed with that key', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 2);
    // The use batches have read and verified north's key row.
    await store.signFor(eui(1), message);
    await store.signFor(eui(2), message);
    // Its certificate column changed behind the store's back: every other column as it was.
    d.sql(`UPDATE keys SET serial_number = 'ff' WHERE key_id LIKE '%north%'`);
    await expectCode(store.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    // South's key is untouched.
    await store.signFor(eui(1000), message);
    await store.close();
  });

  it('withholds a signature when the same store records, while it is being made, that the meter trusts another key', async () => {
    const d = db.fresh();
    const a = await open(await d.open(), d.backend);
    const { north } = await estate(a, 2);
    const g2 = await issue(a, SUPPLIER, 'north', 'signing');
    await a.rotate(g2.handle.keyId);
    let updated = false;
    const sign = d.backend.sign.bind(d.backend);
    d.backend.sign = async (handle, data) => {
      const sig = await sign(handle, data);
      if (!updated) {
        updated = true;
        // This store (its own connection, whose data_version its own commits do not change).
        await a.markCredentialsUpdated(SUPPLIER, eui(1), 'signing');
      }
      return sig;
    };
    await expectCode(a.signFor(eui(1), message), 'ERR_KEY_STATE_TRANSITION');
    expect(updated).toBe(true);
    expect(verifiesWith(g2.cert, await a.signFor(eui(1), message))).toBe(true);
    expect(verifiesWith(north.cert, await a.signFor(eui(2), message))).toBe(true);
    await a.close();
  });

  it('refuses a meter row changed in the database while the store is open, after it signed for that meter', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north } = await estate(store, 2);
    // Meter 1's row was read, checked and kept for the next signatures.
    expect(verifiesWith(north.cert, await store.signFor(eui(1), message))).toBe(true);
    expect(verifiesWith(north.cert, await store.signFor(eui(1), message))).toBe(true);
    // Moved to south by another connection, behind the store's back: the row no longer verifies.
    d.sql(`UPDATE devices SET portfolio_id = 'south' WHERE device = '${eui(1)}'`);
    if (db.kind === 'postgres') {
      // Without moving the meter epoch (as every change of the store does), the write does not
      // reach the rows this store verified and kept: it signs with the authentic row, never the
      // forged one. A store that has not kept it refuses the row.
      expect(verifiesWith(north.cert, await store.signFor(eui(1), message))).toBe(true);
      const other = await open(await d.open(), d.backend);
      await expectCode(other.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
      await other.close();
      // With the epoch moved, the kept rows go, and the forged one is read and refused.
      d.sql('UPDATE meter_epoch SET epoch = epoch + 1');
    }
    await expectCode(store.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    await expectCode(store.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    // Meter 2 is untouched.
    expect(verifiesWith(north.cert, await store.signFor(eui(2), message))).toBe(true);
    await store.close();
  });

  it('signs for a meter without naming its organisation while the store holds one, and refuses once another is added', async () => {
    for (const adder of ['this store', 'another connection'] as const) {
      const d = db.fresh();
      const a = await open(await d.open(), d.backend);
      const { north } = await estate(a, 1);
      expect(verifiesWith(north.cert, await a.signFor(eui(1), message))).toBe(true);
      expect(verifiesWith(north.cert, await a.signFor(eui(1), message))).toBe(true);
      const b = adder === 'this store' ? a : await open(await d.open(), d.backend);
      await b.addOrganisation({ entityId: '90B3D51F30020000', role: 2 });
      await expectCode(a.signFor(eui(1), message), 'ERR_INVALID_ARGUMENT');
      expect(verifiesWith(north.cert, await a.signFor(eui(1), message, { organisation: SUPPLIER }))).toBe(true);
      if (b !== a) await b.close();
      await a.close();
    }
  });

  it('keeps as many meters as meterCache says, none with 0, and refuses a limit that is not a count', async () => {
    const d = db.fresh();
    const first = await open(await d.open(), d.backend);
    const { north, south } = await estate(first, 3);
    await first.close();
    for (const meterCache of [0, 1, 2, 1000]) {
      const store = await DbKeyStore.open({ driver: await d.open(), backend: d.backend, passphrase: PASS, meterCache });
      // Into the meter cache as far as it goes; on SQLite, the rest into the page cache.
      expect(await store.prewarm()).toBe(db.kind === 'sqlite' ? 6 : Math.min(6, meterCache));
      for (let round = 0; round < 2; round++) {
        for (const m of [1, 2, 3]) expect(verifiesWith(north.cert, await store.signFor(eui(m), message))).toBe(true);
        for (const m of [1000, 1001, 1002]) expect(verifiesWith(south.cert, await store.signFor(eui(m), message))).toBe(true);
      }
      // A meter the store moves and updates is signed for with its new key, whatever was kept.
      await store.moveDevices(SUPPLIER, [eui(2)], 'south');
      await store.markCredentialsUpdated(SUPPLIER, eui(2), 'signing');
      expect(verifiesWith(south.cert, await store.signFor(eui(2), message))).toBe(true);
      await store.moveDevices(SUPPLIER, [eui(2)], 'north');
      await store.markCredentialsUpdated(SUPPLIER, eui(2), 'signing');
      expect(verifiesWith(north.cert, await store.signFor(eui(2), message))).toBe(true);
      await store.close();
    }
    for (const meterCache of [-1, 1.5, Number.NaN, '10' as unknown as number]) {
      const driver = await d.open();
      await expectCode(DbKeyStore.open({ driver, backend: d.backend, passphrase: PASS, meterCache }), 'ERR_INVALID_ARGUMENT');
      await driver.close();
    }
  });

  it('refuses a row changed in the database, and a row copied from another store', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 2);
    await store.close();
    // Move meter 1 to south behind the store's back: its row no longer verifies.
    d.sql(`UPDATE devices SET portfolio_id = 'south' WHERE device = '${eui(1)}'`);
    const again = await open(await d.open(), d.backend);
    await expectCode(again.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    await expectCode(again.device(SUPPLIER, eui(1)), 'ERR_KEYSTORE_ROW_TAMPERED');
    // Meter 2 is untouched.
    await again.signFor(eui(2), message);
    await again.close();
    // A key row with a changed handle refuses to open (keys are checked on open).
    d.sql(`UPDATE keys SET handle = handle || 'x' WHERE key_id LIKE '%north%'`);
    await expectCode(open(await d.open(), d.backend), 'ERR_KEYSTORE_ROW_TAMPERED');
    // A device row copied from another store (same passphrase, same organisation): its MAC names
    // the other store's id.
    const e = db.fresh();
    const other = await open(await e.open(), e.backend);
    await estate(other, 3);
    await other.close();
    const copied = e.sql(`SELECT portfolio_id, inst_signing, rev, mac FROM devices WHERE device = '${eui(3)}'`);
    const c = parseDevice(db.kind, copied);
    d.sql(`UPDATE keys SET handle = substr(handle, 1, length(handle) - 1) WHERE key_id LIKE '%north%'`);
    d.sql(`DELETE FROM devices WHERE device = '${eui(1)}'`);
    d.sql(`INSERT INTO devices (organisation, device, portfolio_id, inst_signing, inst_key_agreement, inst_prepayment, rev, mac) VALUES ('${SUPPLIER}', '${eui(3)}', '${c.portfolio}', '${c.key}', NULL, NULL, ${c.rev}, '${c.mac}')`);
    const third = await open(await d.open(), d.backend);
    await expectCode(third.signFor(eui(3), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    await third.close();
  });

  it('catches a key row put back to an older authentic version (an un-revocation) when it opens', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north } = await estate(store, 1);
    const id = north.handle.keyId;
    const before = d.sql(`SELECT state, revoked_at, rev, mac FROM keys WHERE key_id = '${id}'`);
    await store.revoke(id, 'keyCompromise');
    await store.close();
    // Put the pre-revocation row back: its MAC verifies, its rev is older than the trail's record.
    const row = parseRow(db.kind, before);
    d.sql(`UPDATE keys SET state = '${row.state}', revoked_at = NULL, rev = ${row.rev}, mac = '${row.mac}' WHERE key_id = '${id}'`);
    await expectCode(open(await d.open()), 'ERR_KEYSTORE_METADATA_ROLLBACK');
  });

  it('verifies the trail with the public key only, and finds an edited record, a removed one and a foreign key', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 2);
    await store.signFor(eui(1), message, { counter: 1n });
    const keys = { storeId: store.storeId, publicKey: store.auditPublicKey };
    await store.close();
    expect((await verifyTrail(await d.open(), keys)).ok).toBe(true);
    // An edited line (another counter): its hash no longer chains, and its batch's sealed hash differs.
    d.sql(`UPDATE audit_records SET line = replace(line, '"counter":"1"', '"counter":"2"') WHERE line LIKE '%"counter":"1"%'`);
    const edited = await verifyTrail(await d.open(), keys);
    expect(edited.ok).toBe(false);
    expect(edited.findings[0]?.code).toBe('ERR_AUDIT_TAMPERED');
    // A record removed (the edited one put back first: the chain is whole again).
    d.sql(`UPDATE audit_records SET line = replace(line, '"counter":"2"', '"counter":"1"') WHERE line LIKE '%"counter":"2"%'`);
    expect((await verifyTrail(await d.open(), keys)).ok).toBe(true);
    d.sql(`DELETE FROM audit_records WHERE seq = 3`);
    const removed = await verifyTrail(await d.open(), keys);
    expect(removed.ok).toBe(false);
    expect(removed.findings.some((f) => f.seq === 3)).toBe(true);
    // Another store's public key verifies nothing.
    const other = await open(await db.fresh().open());
    const foreign = await verifyTrail(await d.open(), { storeId: store.storeId, publicKey: other.auditPublicKey });
    expect(foreign.findings.some((f) => /signature/.test(f.message))).toBe(true);
    await other.close();
  });

  it('verifies every row against the trail: a meter put back to an older authentic row, and a row deleted, are found', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 3);
    const g2 = await issue(store, SUPPLIER, 'north', 'signing');
    await store.rotate(g2.handle.keyId);
    await store.signFor(eui(1), message);
    expect((await store.verifyStore()).findings).toEqual([]);
    const old = d.sql(`SELECT portfolio_id, inst_signing, rev, mac FROM devices WHERE device = '${eui(2)}'`);
    await store.moveDevices(SUPPLIER, [eui(2)], 'south');
    await store.markCredentialsUpdated(SUPPLIER, eui(2), 'signing');
    const v1 = await store.verifyStore();
    expect(v1.trail.ok).toBe(true);
    expect(v1.findings).toEqual([]);
    // Meter 2 put back in north, trusting g1: an authentic row, older than the trail's last word on it.
    const r = parseDevice(db.kind, old);
    d.sql(`UPDATE devices SET portfolio_id = '${r.portfolio}', inst_signing = '${r.key}', rev = ${r.rev}, mac = '${r.mac}' WHERE device = '${eui(2)}'`);
    d.sql(`DELETE FROM devices WHERE device = '${eui(3)}'`);
    const v2 = await store.verifyStore();
    expect(v2.trail.ok).toBe(true);
    expect(v2.findings.map((f) => `${f.code} ${f.row}`).sort()).toEqual([`ERR_KEYSTORE_METADATA_ROLLBACK devices:${SUPPLIER}/${eui(2)}`, `ERR_KEYSTORE_ROW_TAMPERED devices:${SUPPLIER}/${eui(3)}`]);
    await store.close();
  });

  it('agrees keys with the key-agreement key a meter trusts, and signs DUIS XML with the organisation key', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 1);
    const ka = await issue(store, SUPPLIER, 'north', 'keyAgreement');
    await store.markCredentialsUpdated(SUPPLIER, eui(1), 'keyAgreement');
    const { generateKeyPairSync, diffieHellman, createPublicKey } = await import('node:crypto');
    const { publicKeyToRaw, publicKeyFromRaw } = await import('@smki/core');
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const agreement = await store.keyAgreementFor(eui(1), { organisation: SUPPLIER, messageCode: 0x00ab });
    const z = await agreement.deriveSharedSecret(publicKeyToRaw(peer.publicKey));
    expect(Buffer.from(z)).toEqual(diffieHellman({ privateKey: peer.privateKey, publicKey: publicKeyFromRaw(agreement.publicKey) }));
    expect(toCertificate(ka.cert).publicKeyBytes).toEqual(new Uint8Array(agreement.publicKey));
    // A signing purpose never agrees keys; a meter without a key-agreement key has none.
    await expectCode(store.keyAgreementFor(eui(1), { purpose: 'signing' as never }), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    await expectCode(store.keyAgreementFor(eui(1000), { organisation: SUPPLIER }), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    // The XML signing key: role 135, never a meter's.
    const x = await store.generateKey(SUPPLIER, 'north', 'xmlSigning');
    const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 135, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(x.keyId) });
    await store.attachCertificate(x.keyId, cert);
    const signer = await store.xmlSigner(SUPPLIER, { requestId: '90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000' });
    const sig = await signer.sign(message);
    expect(verify('sha256', message, { key: toCertificate(cert).publicKey!, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    await store.revoke(x.keyId, 'keyCompromise');
    await expectCode(signer.sign(message), 'ERR_KEY_REVOKED');
    void createPublicKey;
    expect((await store.verifyStore()).findings).toEqual([]);
    await store.close();
  });

  it('decides on a kept meter only while it is as fresh as a read: another store moved it and updated its credentials', async () => {
    const d = db.fresh();
    const a = await open(await d.open(), d.backend);
    const { north, south } = await estate(a, 1);
    // Meter 1 kept by a, and a's use batches trusting it.
    for (let i = 0; i < 2; i++) expect(verifiesWith(north.cert, await a.signWith(north.handle as never, eui(1), message))).toBe(true);
    const b = await open(await d.open(), d.backend);
    await b.moveDevices(SUPPLIER, [eui(1)], 'south');
    await b.markCredentialsUpdated(SUPPLIER, eui(1), 'signing');
    await b.close();
    // No use batch of a's has run since: the hot path itself must not decide on the kept row.
    expect(verifiesWith(south.cert, await a.signWith(south.handle as never, eui(1), message))).toBe(true);
    await expectCode(a.signWith(north.handle as never, eui(1), message), 'ERR_KEY_PORTFOLIO_MISMATCH');
    await a.close();
  });

  it('signWith refuses a key of another portfolio and a key the meter does not trust', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north, south } = await estate(store, 1);
    await expectCode(store.signWith(south.handle as never, eui(1), message), 'ERR_KEY_PORTFOLIO_MISMATCH');
    const g2 = await issue(store, SUPPLIER, 'north', 'signing');
    await expectCode(store.signWith(g2.handle as never, eui(1), message), 'ERR_KEY_STATE_TRANSITION');
    expect(verifiesWith(north.cert, await store.signWith(north.handle as never, eui(1), message))).toBe(true);
    await store.close();
  });

  it('keeps the per-key device cap and the whole-estate rules', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await store.addOrganisation({ entityId: SUPPLIER, role: 2, maxDevicesPerKey: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    await issue(store, SUPPLIER, 'north', 'signing');
    await store.assignDevices(SUPPLIER, [{ device: eui(1), portfolioId: 'north' }, { device: eui(2), portfolioId: 'north' }]);
    await expectCode(store.assignDevices(SUPPLIER, [{ device: eui(3), portfolioId: 'north' }]), 'ERR_PORTFOLIO_DEVICE_CAP');
    // A whole-estate key-agreement portfolio cannot be declared while meters record their own (none here: allowed).
    await store.createPortfolio(SUPPLIER, { id: 'acb', wholeEstate: ['keyAgreement'] });
    await expectCode(store.createPortfolio(SUPPLIER, { id: 'acb2', wholeEstate: ['keyAgreement'] }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.createPortfolio(SUPPLIER, { id: 'xml', wholeEstate: ['xmlSigning'] }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.markCredentialsUpdated(SUPPLIER, eui(1), 'keyAgreement'), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
    await store.close();
  });

  it('checks every argument before reading, and fails closed with its own code', async () => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 1);
    await expectCode(store.signFor(eui(1), message, { counter: -1n }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.signFor(eui(1), 'text' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.signFor(eui(77), message), 'ERR_DEVICE_UNKNOWN');
    await expectCode(store.assignDevices(SUPPLIER, []), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.assignDevices(SUPPLIER, [{ device: eui(9), portfolioId: 'north' }, { device: eui(9), portfolioId: 'north' }]), 'ERR_DEVICE_ALREADY_ASSIGNED');
    await expectCode(store.createPortfolio(SUPPLIER, { id: 'bad id' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.key('no such key'), 'ERR_KEY_NOT_FOUND');
    const head = await store.auditHead();
    await expectCode(store.addOrganisation({ entityId: SUPPLIER, role: 2 }), 'ERR_ORGANISATION_EXISTS');
    expect(await store.auditHead()).toEqual(head);
    await store.close();
    await expectCode(store.signFor(eui(1), message), 'ERR_KEYSTORE_CLOSED');
  });
});

/** The device row `sql` returned: portfolio, installed DS key, rev, mac. */
function parseDevice(kind: 'sqlite' | 'postgres', out: unknown): { portfolio: string; key: string; rev: number; mac: string } {
  if (kind === 'sqlite') {
    const r = (out as { portfolio_id: string; inst_signing: string; rev: number; mac: string }[])[0]!;
    return { portfolio: r.portfolio_id, key: r.inst_signing, rev: r.rev, mac: r.mac };
  }
  const [portfolio, key, rev, mac] = String(out).trim().split('|');
  return { portfolio: portfolio!, key: key!, rev: Number(rev), mac: mac! };
}

/** The one row `sql` returned (SQLite: objects; psql: `a|b|c` text). */
function parseRow(kind: 'sqlite' | 'postgres', out: unknown): { state: string; rev: number; mac: string } {
  if (kind === 'sqlite') {
    const r = (out as { state: string; rev: number; mac: string }[])[0]!;
    return r;
  }
  const [state, , rev, mac] = String(out).trim().split('|');
  return { state: state!, rev: Number(rev), mac: mac! };
}

it('the parse helper of the test reads both databases the same way', () => {
  expect(parseRow('postgres', 'active||12|AB\n')).toEqual({ state: 'active', rev: 12, mac: 'AB' });
  expect(isSmkiError(new Error('x'))).toBe(false);
  expect(parseEui64('00db000000000001')).toBe(eui(1));
});

it('refreshes the meters\' statistics on PostgreSQL once one change writes 10,000 meters, so that use batches find meters by index', async () => {
  const d = databases.find((x) => x.kind === 'postgres')!.fresh();
  const store = await open(await d.open(), d.backend);
  await estate(store, 1);
  const analysed = () => String(d.sql(`SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'devices'`)).trim();
  // What a use batch asks for: a few hundred meters by key.
  // What a use batch asks for: a few hundred meters by key; the planner chooses its plan by the
  // rows it expects (one a meter once it knows the table).
  const estimate = () => Number(/rows=(\d+)/.exec(String(d.sql(`EXPLAIN SELECT * FROM devices WHERE organisation = '${SUPPLIER}' AND device IN (${Array.from({ length: 300 }, (_, i) => `'${eui(20_000 + i * 7)}'`).join(', ')})`)))?.[1]);
  await store.assignDevices(SUPPLIER, Array.from({ length: 9_999 }, (_, i) => ({ device: eui(10_000 + i), portfolioId: 'north' })));
  expect(analysed()).toBe('f');
  await store.assignDevices(SUPPLIER, Array.from({ length: 10_000 }, (_, i) => ({ device: eui(20_000 + i), portfolioId: 'south' })));
  expect(analysed()).toBe('t');
  expect(estimate()).toBe(300);
  await store.signFor(eui(20_001), message);
  await store.close();
});

describe('the meter epoch (PostgreSQL)', () => {
  const pgDb = databases.find((x) => x.kind === 'postgres')!;
  const epochOf = (d: ReturnType<Db['fresh']>) => Number(String(d.sql('SELECT epoch FROM meter_epoch WHERE id = 1')).trim());

  it('moves with every change that writes a meter, and another store signs for a meter it kept with the key the meter trusts now', async () => {
    const d = pgDb.fresh();
    const a = await open(await d.open(), d.backend);
    const { north, south } = await estate(a, 2);
    const start = epochOf(d);
    // Kept by a (read, checked, and trusted by its use batches at this epoch).
    for (let i = 0; i < 2; i++) expect(verifiesWith(north.cert, await a.signFor(eui(1), message))).toBe(true);
    const b = await open(await d.open(), d.backend);
    await b.createPortfolio(SUPPLIER, { id: 'east' });
    expect(epochOf(d)).toBe(start); // no meter written
    await b.moveDevices(SUPPLIER, [eui(1)], 'south');
    expect(epochOf(d)).toBe(start + 1);
    await b.markCredentialsUpdated(SUPPLIER, eui(1), 'signing');
    expect(epochOf(d)).toBe(start + 2);
    expect(verifiesWith(south.cert, await a.signFor(eui(1), message))).toBe(true);
    expect(verifiesWith(north.cert, await a.signFor(eui(2), message))).toBe(true);
    // a's own change: the meter it wrote is read again, the others stay kept.
    await a.moveDevices(SUPPLIER, [eui(2)], 'south');
    await a.markCredentialsUpdated(SUPPLIER, eui(2), 'signing');
    expect(epochOf(d)).toBe(start + 4);
    expect(verifiesWith(south.cert, await a.signFor(eui(2), message))).toBe(true);
    // Meter 1 stayed kept through a's own changes: a row forged behind the store's back (the
    // epoch left as it is) does not reach it, where a read would have found the forgery.
    d.sql(`UPDATE devices SET portfolio_id = 'north' WHERE device = '${eui(1)}'`);
    expect(verifiesWith(south.cert, await a.signFor(eui(1), message))).toBe(true);
    await expectCode(b.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    await b.close();
    await a.close();
  });

  it('refuses to sign or change meters when the epoch goes back or its row is gone', async () => {
    const d = pgDb.fresh();
    const store = await open(await d.open(), d.backend);
    await estate(store, 2);
    await store.moveDevices(SUPPLIER, [eui(2)], 'south');
    await store.signFor(eui(1), message);
    const head = await store.auditHead();
    d.sql('UPDATE meter_epoch SET epoch = epoch - 1');
    await expectCode(store.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    await expectCode(store.moveDevices(SUPPLIER, [eui(2)], 'north'), 'ERR_KEYSTORE_ROW_TAMPERED');
    expect(await store.auditHead()).toEqual(head);
    d.sql('UPDATE meter_epoch SET epoch = epoch + 1');
    await store.signFor(eui(1), message);
    d.sql('DELETE FROM meter_epoch');
    await expectCode(store.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    await expectCode(store.moveDevices(SUPPLIER, [eui(2)], 'north'), 'ERR_KEYSTORE_ROW_TAMPERED');
    await store.close();
  });

  it('upgrades a schema of version 1 in place, and an older release refuses version 2', async () => {
    const d = pgDb.fresh();
    const store = await open(await d.open(), d.backend);
    const { north } = await estate(store, 1);
    await store.close();
    // As version 1 left it: no meter epoch.
    d.sql('DROP TABLE meter_epoch; UPDATE schema_version SET version = 1');
    const upgraded = await open(await d.open(), d.backend);
    expect(String(d.sql('SELECT version FROM schema_version')).trim()).toBe('2');
    expect(epochOf(d)).toBe(0);
    expect(verifiesWith(north.cert, await upgraded.signFor(eui(1), message))).toBe(true);
    await upgraded.moveDevices(SUPPLIER, [eui(1)], 'south');
    expect(epochOf(d)).toBe(1);
    await upgraded.close();
    const schema = String(d.sql('SELECT current_schema()')).trim();
    await expectCode(PostgresDriver.open({ ...connectionOf(pg), schema }, { ddl: POSTGRES_SCHEMA.ddl, version: 1 }), 'ERR_STORE_SCHEMA');
  });
});

describe('the meter cache under the store\'s own changes', () => {
  it.each(databases)('a read under way while this store moves a meter never leaves its old row kept ($kind)', async (db) => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north, south } = await estate(store, 8);
    const certOf = { north: north.cert, south: south.cert };
    let where: 'north' | 'south' = 'north';
    for (let round = 0; round < 40; round++) {
      const m = eui(1 + (round % 8));
      // Reads of the meter under way (each signFor reads it, or takes it from the cache) while
      // the change is written and committed.
      const racing = Array.from({ length: 6 }, () => store.signFor(m, message).catch(() => undefined));
      const to: 'north' | 'south' = where === 'north' ? 'south' : 'north';
      await store.moveDevices(SUPPLIER, Array.from({ length: 8 }, (_, i) => eui(1 + i)), to);
      const updating = store.markCredentialsUpdated(SUPPLIER, m, 'signing');
      racing.push(...Array.from({ length: 6 }, () => store.signFor(m, message).catch(() => undefined)));
      await updating;
      for (let i = 1; i <= 8; i++) if (eui(i) !== m) await store.markCredentialsUpdated(SUPPLIER, eui(i), 'signing');
      await Promise.all(racing);
      where = to;
      // Every meter now trusts `where`'s key: a signature by any other is a kept row outliving its change.
      for (let i = 1; i <= 8; i++) expect(verifiesWith(certOf[where], await store.signFor(eui(i), message))).toBe(true);
    }
    await store.close();
  });
});

describe('the meter cache after a change of many meters', () => {
  it.each(databases)('no kept row outlives a move of more meters than the store drops one by one ($kind)', async (db) => {
    const d = db.fresh();
    const store = await open(await d.open(), d.backend);
    const { north, south } = await estate(store, 1);
    const many = Array.from({ length: 10_001 }, (_, i) => eui(100_000 + i));
    await store.assignDevices(SUPPLIER, many.map((device) => ({ device, portfolioId: 'north' })));
    expect(await store.prewarm()).toBe(10_003);
    const probes = [many[0]!, many[5_000]!, many[10_000]!];
    for (const m of probes) expect(verifiesWith(north.cert, await store.signWith(north.handle as never, m, message))).toBe(true);
    await store.moveDevices(SUPPLIER, many, 'south');
    // In south now, still trusting north's key until their credentials are updated: south's key is
    // refused as not yet trusted (a kept row from before the move would say "another portfolio").
    for (const m of probes) {
      await expectCode(store.signWith(south.handle as never, m, message), 'ERR_KEY_STATE_TRANSITION');
      expect(verifiesWith(north.cert, await store.signFor(m, message))).toBe(true);
    }
    await store.close();
  });
});
