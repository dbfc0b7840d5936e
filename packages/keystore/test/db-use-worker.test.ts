// The use worker: use batches of a database store are checked, appended and committed in a worker
// thread on a connection of its own. What must hold there as in-process: a signature leaves only
// once its use record is committed; the batch's checks read the database again inside its
// transaction (a key revoked, or a meter's credentials moved on, by another connection while the
// signature waited withholds it); anything that goes wrong in the batch path (a fault, the thread
// stopping mid-batch) rejects every waiting caller with an SmkiError and no signature; and a store
// whose driver cannot be reopened in another thread commits its batches in-process, the same way.
import { verify } from 'node:crypto';
import { join } from 'node:path';
import type * as WorkerThreads from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { issueOrganisationCertificate, toCertificate, type CertificateInput } from '@smki/pki';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from '../src/internal/db/driver.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from '../src/internal/db/schema.js';
import { verifyTrail } from '../src/internal/db/trail.js';
import { MemoryKeyBackend } from '../src/index.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { expectCode, message, PASS, pki, SUPPLIER, tempDir } from './_store-fixtures.js';

// Every worker thread the store starts, so that a test can stop one mid-batch.
const threads = vi.hoisted(() => [] as WorkerThreads.Worker[]);
vi.mock('node:worker_threads', async (importOriginal) => {
  const original = await importOriginal<typeof WorkerThreads>();
  class Tracked extends original.Worker {
    constructor(...args: ConstructorParameters<typeof original.Worker>) {
      super(...args);
      threads.push(this);
    }
  }
  return { ...original, Worker: Tracked };
});

const { pg } = postgresForThisFile('smki-ks-useworker-');
let schemas = 0;

/** A driver with everything but the means to reopen the database elsewhere: batches commit in-process. */
function inProcess(d: SqlDriver): SqlDriver {
  return { kind: d.kind, table: (n) => d.table(n), get: (s, p) => d.get(s, p), all: (s, p) => d.all(s, p), tx: (f) => d.tx(f), snapshot: (f) => d.snapshot(f), close: () => d.close() };
}

const databases = [
  { kind: 'sqlite', fresh: () => { const path = join(tempDir(), 'keystore.db'); return async () => SqliteDriver.open(path, SQLITE_SCHEMA, undefined, { useWorker: true }) as SqlDriver; } },
  { kind: 'postgres', fresh: () => { const schema = `uw_${++schemas}`; return async () => PostgresDriver.open({ ...connectionOf(pg), schema }, POSTGRES_SCHEMA, { useWorker: true }) as Promise<SqlDriver>; } },
] as const;

const eui = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;

async function estate(store: DbKeyStore, n: number): Promise<{ north: { keyId: string; cert: CertificateInput }; south: { keyId: string; cert: CertificateInput } }> {
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  const out: Record<string, { keyId: string; cert: CertificateInput }> = {};
  for (const p of ['north', 'south']) {
    await store.createPortfolio(SUPPLIER, { id: p });
    const h = await store.generateKey(SUPPLIER, p, 'signing');
    const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(h.keyId) });
    await store.attachCertificate(h.keyId, cert);
    out[p] = { keyId: h.keyId, cert };
  }
  await store.assignDevices(SUPPLIER, Array.from({ length: 2 * n }, (_, i) => ({ device: eui(i + 1), portfolioId: i < n ? 'north' : 'south' })));
  return out as never;
}

const verifiesWith = (cert: CertificateInput, sig: Uint8Array) => verify('sha256', message, { key: toCertificate(cert).publicKey!, dsaEncoding: 'ieee-p1363' }, sig);

/** The uses recorded in the trail, read on a connection of its own. */
async function usesIn(openDriver: () => Promise<SqlDriver>, store: DbKeyStore): Promise<string[]> {
  const driver = await openDriver();
  try {
    const uses: string[] = [];
    const v = await verifyTrail(driver, { storeId: store.storeId, publicKey: store.auditPublicKey }, (r) => {
      if (r.type === 'key.used') uses.push(`${String((r as { device?: string }).device)}:${String((r as { counter?: bigint }).counter)}`);
    });
    expect(v.ok).toBe(true);
    return uses;
  } finally {
    await driver.close();
  }
}

describe.each(databases)('use batches in the worker thread, on $kind', (db) => {
  it('commits concurrent uses in few batches, each signature returned once its record is in the database', async () => {
    const openDriver = db.fresh();
    const backend = new MemoryKeyBackend();
    const store = await DbKeyStore.open({ driver: await openDriver(), backend, passphrase: PASS });
    const { north, south } = await estate(store, 50);
    const before = threads.length;
    const sigs = await Promise.all(Array.from({ length: 300 }, (_, i) => store.signFor(eui(1 + (i % 100)), message, { counter: BigInt(i) })));
    // The batches went through a worker thread of this store.
    expect(threads.length).toBe(before + 1);
    sigs.forEach((s, i) => expect(verifiesWith(1 + (i % 100) <= 50 ? north.cert : south.cert, s)).toBe(true));
    // Every record is in the database (read on another connection), sealed and chained.
    const uses = await usesIn(openDriver, store);
    expect(uses.length).toBe(300);
    expect(new Set(uses).size).toBe(300);
    const head = await store.auditHead();
    expect(head.batch).toBeLessThan(300);
    await store.close();
  });

  it('withholds a signature whose key another connection revokes, or whose meter another connection moves to a new key, while it waits for its batch', async () => {
    const openDriver = db.fresh();
    const backend = new MemoryKeyBackend();
    const a = await DbKeyStore.open({ driver: await openDriver(), backend, passphrase: PASS });
    const { north } = await estate(a, 3);
    // a new south key, current, that meter 4 (in south) does not trust yet
    const g2 = await a.generateKey(SUPPLIER, 'south', 'signing');
    const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await a.createCsr(g2.keyId) });
    await a.attachCertificate(g2.keyId, cert);
    await a.rotate(g2.keyId);
    const b = await DbKeyStore.open({ driver: await openDriver(), backend, passphrase: PASS });
    expect(verifiesWith(north.cert, await a.signFor(eui(1), message))).toBe(true);
    // Signed with north's key for meter 2 and with south's g1 for meter 4; once both signatures
    // are made, and before either record is sent, another connection revokes north's key and
    // records that meter 4 now trusts g2.
    let signed = 0;
    let changed!: () => void;
    const changes = new Promise<void>((r) => (changed = r));
    const sign = backend.sign.bind(backend);
    backend.sign = async (handle, data) => {
      const sig = await sign(handle, data);
      if (++signed === 2) {
        await b.revoke(north.keyId, 'keyCompromise');
        await b.markCredentialsUpdated(SUPPLIER, eui(4), 'signing');
        changed();
      }
      await changes;
      return sig;
    };
    const results = await Promise.allSettled([a.signFor(eui(2), message, { counter: 1n }), a.signFor(eui(4), message, { counter: 2n })]);
    expect(signed).toBe(2);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'signed'))).toEqual(['ERR_KEY_REVOKED', 'ERR_KEY_STATE_TRANSITION']);
    // Neither use is in the trail; the first one (before the changes) is.
    expect(await usesIn(openDriver, a)).toEqual([`${eui(1)}:undefined`]);
    await a.close();
    await b.close();
  });

  it('rejects every caller of a batch whose thread stops before it commits, records none of it, and starts a new thread for the next batch', async () => {
    const openDriver = db.fresh();
    const backend = new MemoryKeyBackend();
    let stop = false;
    const store = await DbKeyStore.open({
      driver: await openDriver(),
      backend,
      passphrase: PASS,
      fault: (point) => {
        // A batch is written and waits, uncommitted, for this hook: its thread is stopped (once).
        if (point === 'db:use-before-commit' && stop) {
          stop = false;
          void threads[threads.length - 1]!.terminate();
        }
      },
    });
    await estate(store, 10);
    expect((await store.signFor(eui(1), message, { counter: 1n })).length).toBe(64);
    const before = threads.length;
    stop = true;
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.signFor(eui(2 + i), message, { counter: BigInt(10 + i) })));
    expect(stop).toBe(false);
    // The callers of the stopped batch (at least one) got an SmkiError and no signature; those of
    // any other batch got theirs, and only theirs are in the trail.
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.reason).toMatchObject({ name: 'SmkiError', code: 'ERR_STORE_UNAVAILABLE' });
    const signedUses = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`${eui(2 + i)}:${10 + i}`] : []));
    // The next batch goes to a new thread.
    expect((await store.signFor(eui(20), message, { counter: 2n })).length).toBe(64);
    expect(threads.length).toBeGreaterThan(before);
    expect((await usesIn(openDriver, store)).sort()).toEqual([`${eui(1)}:1`, ...signedUses, `${eui(20)}:2`].sort());
    await store.close();
  });

  it('rejects the callers of a batch with the error a fault raised before its commit, and records none of it', async () => {
    const openDriver = db.fresh();
    const backend = new MemoryKeyBackend();
    let failAt = false;
    const store = await DbKeyStore.open({
      driver: await openDriver(),
      backend,
      passphrase: PASS,
      fault: (point) => {
        if (point === 'db:use-before-commit' && failAt) throw Object.assign(new Error('injected'), { code: 'X' });
      },
    });
    await estate(store, 3);
    failAt = true;
    await expect(store.signFor(eui(1), message, { counter: 1n })).rejects.toThrow('injected');
    failAt = false;
    await store.signFor(eui(2), message, { counter: 2n });
    expect(await usesIn(openDriver, store)).toEqual([`${eui(2)}:2`]);
    await store.close();
  });

  it('commits in-process, with the same checks, when the driver cannot be reopened in another thread', async () => {
    const openDriver = db.fresh();
    const backend = new MemoryKeyBackend();
    const before = threads.length;
    const a = await DbKeyStore.open({ driver: inProcess(await openDriver()), backend, passphrase: PASS });
    const { north } = await estate(a, 2);
    const b = await DbKeyStore.open({ driver: await openDriver(), backend, passphrase: PASS });
    expect(verifiesWith(north.cert, await a.signFor(eui(1), message, { counter: 1n }))).toBe(true);
    let revoked = false;
    const sign = backend.sign.bind(backend);
    backend.sign = async (handle, data) => {
      const sig = await sign(handle, data);
      if (!revoked) {
        revoked = true;
        await b.revoke(north.keyId, 'keyCompromise');
      }
      return sig;
    };
    await expectCode(a.signFor(eui(2), message, { counter: 2n }), 'ERR_KEY_REVOKED');
    expect(threads.length).toBe(before);
    expect(await usesIn(openDriver, a)).toEqual([`${eui(1)}:1`]);
    await a.close();
    await b.close();
  });
});

describe('the SQLite driver without the use worker', () => {
  it('commits in-process when the SQLite driver is opened with useWorker: false (the default)', async () => {
    const path = join(tempDir(), 'keystore.db');
    const backend = new MemoryKeyBackend();
    const driver = SqliteDriver.open(path, SQLITE_SCHEMA, undefined, { useWorker: false });
    expect(driver.spec).toBeUndefined();
    const byDefault = SqliteDriver.open(join(tempDir(), 'other.db'), SQLITE_SCHEMA);
    expect(byDefault.spec).toBeUndefined();
    await byDefault.close();
    const before = threads.length;
    const store = await DbKeyStore.open({ driver, backend, passphrase: PASS });
    const { north } = await estate(store, 2);
    expect(verifiesWith(north.cert, await store.signFor(eui(1), message, { counter: 1n }))).toBe(true);
    expect(threads.length).toBe(before);
    expect(await usesIn(async () => SqliteDriver.open(path, SQLITE_SCHEMA), store)).toEqual([`${eui(1)}:1`]);
    await store.close();
  });
});
