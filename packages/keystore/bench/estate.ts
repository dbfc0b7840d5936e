/**
 * The key store at estate scale, on SQLite and on a private PostgreSQL server (started here, as
 * the tests start theirs): a supplier with 50 portfolios and BENCH_ESTATE meters (default
 * 1,000,000). JSON lines:
 *
 * - `keystore.estate.import`: meters assigned per second (bulk assignments of 100,000 in one
 *   transaction each), and the resident memory after;
 * - `keystore.estate.open`: milliseconds to open the store with the estate in it;
 * - `keystore.estate.prewarm`: milliseconds to read every meter's row once (`prewarm`: into the
 *   meter cache, each row checked against its MAC), which the signFor lines below are measured
 *   after;
 * - `keystore.estate.signFor`: signatures per second through the store (meter's key looked up,
 *   signed, use record durable before the signature is returned), one line per number of
 *   concurrent callers (BENCH_CALLERS, default 64 and 256: each caller a loop that calls again as
 *   soon as its signature is back), with `ratio` to raw node:crypto ECDSA sign measured by the
 *   same number of caller loops in alternating rounds in the same process, and p50/p99 latency;
 *   `ratioThreadPool` is the ratio to raw sign on libuv's thread pool (the memory backend signs
 *   there, so the store's signatures use both cores where raw sign on one thread uses one);
 * - `keystore.estate.move`: 100,000 meters moved in one transaction (meters per second);
 * - `keystore.estate.exposure`: the exposure report over the estate, in milliseconds.
 *
 * BENCH_DATABASES picks the databases (default `sqlite,postgres`). BENCH_USE_WORKER sets the
 * drivers' `useWorker` (`1`: use batches in the use worker, `0`: on the main thread; default each
 * driver's own: the main thread on both). Never fails on speed.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from '../src/internal/db/driver.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from '../src/internal/db/schema.js';
import { MemoryKeyBackend } from '../src/index.js';
import { startPostgres } from '../../store/test/_postgres.js';
import { byCallers } from './callers.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '1.5');
const ESTATE = Number(process.env.BENCH_ESTATE ?? '1000000');
const PORTFOLIOS = 50;
const BULK = 100_000;
const SUPPLIER = '90B3D51F30010000';
const PASS = 'bench passphrase';
const CALLERS = (process.env.BENCH_CALLERS ?? '64,256').split(',').map(Number);
const DATABASES = (process.env.BENCH_DATABASES ?? 'sqlite,postgres').split(',');
const USE_WORKER = process.env.BENCH_USE_WORKER === undefined ? undefined : process.env.BENCH_USE_WORKER !== '0';
const workerOption = USE_WORKER === undefined ? {} : { useWorker: USE_WORKER };
const message = new Uint8Array(120).fill(0x5a);
const meter = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;
const mib = () => Math.round(process.memoryUsage().rss / (1 << 20));

function line(bench: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench, ...fields }));
}

const raw = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const rawSign = () => sign('sha256', message, { key: raw, dsaEncoding: 'ieee-p1363' });
/** Raw sign on libuv's thread pool, as the memory and file backends sign: the same parallelism as the store's signatures. */
const rawSignPool = () =>
  new Promise<Buffer>((resolve, reject) => sign('sha256', message, { key: raw, dsaEncoding: 'ieee-p1363' }, (e, s) => (e ? reject(e) : resolve(s))));

async function estate(database: string, openDriver: () => Promise<SqlDriver>): Promise<void> {
  const backend = new MemoryKeyBackend();
  let store = await DbKeyStore.open({ driver: await openDriver(), backend, passphrase: PASS });
  const { organisationCa } = await createHierarchy();
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  for (let p = 0; p < PORTFOLIOS; p++) {
    await store.createPortfolio(SUPPLIER, { id: `p${p}` });
    const h = await store.generateKey(SUPPLIER, `p${p}`, 'signing');
    const cert = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(h.keyId) });
    await store.attachCertificate(h.keyId, cert);
  }
  // Import: bulk assignments of 100,000 meters, spread over the portfolios.
  const t0 = performance.now();
  for (let from = 0; from < ESTATE; from += BULK) {
    const n = Math.min(BULK, ESTATE - from);
    await store.assignDevices(SUPPLIER, Array.from({ length: n }, (_, i) => ({ device: meter(from + i + 1), portfolioId: `p${(from + i) % PORTFOLIOS}` })));
  }
  const importS = (performance.now() - t0) / 1000;
  line('keystore.estate.import', { database, meters: ESTATE, portfolios: PORTFOLIOS, metersPerSec: Math.round(ESTATE / importS), seconds: Number(importS.toFixed(1)), rssMiB: mib() });

  await store.close();
  const o0 = performance.now();
  store = await DbKeyStore.open({ driver: await openDriver(), backend, passphrase: PASS });
  line('keystore.estate.open', { database, meters: ESTATE, ms: Math.round(performance.now() - o0), aimMs: 1000, rssMiB: mib() });
  // What a signing service does after opening a large estate: the meters' rows read once into the
  // cache the hot path reads from (SQLite), so that signFor is measured as it runs once warm.
  const w0 = performance.now();
  const warmed = await store.prewarm();
  line('keystore.estate.prewarm', { database, meters: warmed, ms: Math.round(performance.now() - w0), rssMiB: mib() });

  // signFor on random meters from N caller loops, against raw sign (the same N loops) in
  // alternating rounds.
  let counter = 0n;
  let latencies: number[] = [];
  const viaStore = async () => {
    const t = performance.now();
    await store.signFor(meter(1 + Math.floor(Math.random() * ESTATE)), message, { organisation: SUPPLIER, messageCode: 0x0050, counter: counter++ });
    latencies.push(performance.now() - t);
  };
  const timed = byCallers;
  for (const callers of CALLERS) {
    await timed(viaStore, 0.3, callers);
    latencies = [];
    let best = 0;
    let bestRaw = 0;
    let bestPool = 0;
    for (let r = 0; r < 4; r++) {
      bestRaw = Math.max(bestRaw, await timed(rawSign, SECONDS / 2, callers));
      bestPool = Math.max(bestPool, await timed(rawSignPool, SECONDS / 2, callers));
      best = Math.max(best, await timed(viaStore, SECONDS / 2, callers));
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number).toFixed(2));
    line('keystore.estate.signFor', {
      database,
      meters: ESTATE,
      opsPerSec: Math.round(best),
      baseline: 'node:crypto sign',
      baselineOpsPerSec: Math.round(bestRaw),
      ratio: Number((best / bestRaw).toFixed(4)),
      aim: 0.85,
      threadPoolOpsPerSec: Math.round(bestPool),
      ratioThreadPool: Number((best / bestPool).toFixed(4)),
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      callers,
      useWorker: USE_WORKER ?? false,
      rssMiB: mib(),
    });
  }

  // Move 100,000 meters (those of portfolio p0 first, then others) to p1 in one transaction.
  const moving: string[] = [];
  for (let i = 0; moving.length < Math.min(BULK, ESTATE / 2); i++) if (i % PORTFOLIOS !== 1) moving.push(meter(i + 1));
  const m0 = performance.now();
  await store.moveDevices(SUPPLIER, moving, 'p1');
  const moveS = (performance.now() - m0) / 1000;
  line('keystore.estate.move', { database, meters: moving.length, metersPerSec: Math.round(moving.length / moveS), seconds: Number(moveS.toFixed(2)), rssMiB: mib() });

  const e0 = performance.now();
  const report = await store.exposureReport(SUPPLIER);
  line('keystore.estate.exposure', { database, meters: ESTATE, keys: report.length, ms: Math.round(performance.now() - e0), aimMs: 2000, rssMiB: mib() });
  await store.close();
}

const dir = mkdtempSync(join(tmpdir(), 'smki-ks-estate-'));
try {
  if (DATABASES.includes('sqlite')) await estate('sqlite', async () => SqliteDriver.open(join(dir, 'keystore.db'), SQLITE_SCHEMA, undefined, workerOption));
  if (DATABASES.includes('postgres')) {
    const pg = await startPostgres();
    try {
      process.env['PGPASSFILE'] = pg.passfile;
      await estate('postgres', async () => PostgresDriver.open({ host: pg.host, port: pg.port, user: pg.user, database: pg.database, schema: 'bench' }, POSTGRES_SCHEMA, workerOption));
    } finally {
      pg.destroy();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
