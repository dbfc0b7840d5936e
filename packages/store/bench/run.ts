// State store and registry benchmarks: `pnpm -C packages/store run bench` (never run by the test
// command). One JSON line per figure. Commit throughput is measured per entry (one anti-replay
// counter and one anomaly count each) in batches, against the memory store in the same process
// as the baseline; the registry line loads devices into SQLite and times single lookups.
//
//   SMKI_BENCH_DEVICES   devices loaded into the registry (default 1000000)
//   SMKI_BENCH_ENTRIES   entries committed per store (default 20000)
//   SMKI_BENCH_BATCH     entries per commit (default 256)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseEui64 } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { MemoryStateStore, PostgresStateStore, SqliteDeviceRegistry, SqliteStateStore } from '../src/index.js';
import type { CommitEntry, DeviceRecord, StateStore } from '../src/index.js';
import { startPostgres } from '../test/_postgres.js';
import { measureRegistry } from './registry.js';

const DEVICES = Number(process.env['SMKI_BENCH_DEVICES'] ?? 1_000_000);
const ENTRIES = Number(process.env['SMKI_BENCH_ENTRIES'] ?? 20_000);
const BATCH = Number(process.env['SMKI_BENCH_BATCH'] ?? 256);
const USER = parseEui64('90B3D51F30010000');
const eui = (n: number): Eui64 => parseEui64(`00DB${n.toString(16).toUpperCase().padStart(12, '0')}`);
const dir = mkdtempSync(join(tmpdir(), 'smki-store-bench-'));
const print = (x: object): void => console.log(JSON.stringify(x));

function entries(): CommitEntry[] {
  const now = 1_700_000_000_000;
  return Array.from({ length: ENTRIES }, (_, i) => {
    const device = eui(i % 1000);
    const value = BigInt(now + i);
    return {
      counter: { originator: USER, device, value },
      anomaly: { user: USER, messageCode: 0x50, windowMs: 3_600_000, windowStart: Math.floor(now / 3_600_000) * 3_600_000, limit: 1_000_000 },
      quarantine: { at: now, user: USER, device, messageCode: 0x50, counter: value, command: new Uint8Array(120) },
    };
  });
}

async function commitRate(store: StateStore): Promise<{ perSecond: number; p50Ms: number; p99Ms: number }> {
  const all = entries();
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < all.length; i += BATCH) {
    const s = performance.now();
    const out = await store.commit(all.slice(i, i + BATCH));
    times.push(performance.now() - s);
    if (out.some((o) => o.status !== 'committed')) throw new Error('bench: an entry was not committed');
  }
  const secs = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  return { perSecond: Math.round(all.length / secs), p50Ms: +times[Math.floor(times.length / 2)]!.toFixed(3), p99Ms: +times[Math.floor(times.length * 0.99)]!.toFixed(3) };
}

const pg = await startPostgres();
try {
  process.env['PGPASSFILE'] = pg.passfile;
  const base = await commitRate(new MemoryStateStore());
  print({ name: 'store.commit.memory', ...base, baselinePerSecond: base.perSecond, ratio: 1, batch: BATCH });
  for (const [name, open] of [
    ['store.commit.sqlite', () => SqliteStateStore.open({ path: join(dir, 'state.db') })],
    ['store.commit.postgres', () => PostgresStateStore.open({ host: pg.host, port: pg.port, user: pg.user, database: pg.database })],
  ] as const) {
    const store = await open();
    const r = await commitRate(store);
    await store.close();
    print({ name, ...r, baselinePerSecond: base.perSecond, ratio: +(r.perSecond / base.perSecond).toFixed(3), batch: BATCH });
  }

  // Registry: load DEVICES meters (5 cells, two ~420-byte certificates each), then time lookups.
  const path = join(dir, 'registry.db');
  const registry = await SqliteDeviceRegistry.open({ path });
  const cert = new Uint8Array(420).fill(0x30);
  const record = (i: number): DeviceRecord => ({
    device: eui(i),
    type: 'ESME',
    fuel: 'electricity',
    model: 'ABCD:0102',
    supplier: USER,
    cells: [
      { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: `A1B2C3D4${(i % 4).toString(16).toUpperCase().padStart(8, '0')}`, entity: USER },
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: '1111222233334444', entity: USER },
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'prepayment', ski: '5555666677778888' },
      { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: '99990000AAAABBBB' },
      { role: 0, keyUsage: 'keyCertSign', cellUsage: 'management', ski: 'CCCCDDDDEEEEFFFF' },
    ],
    keyAgreementCertificate: cert,
    digitalSignatureCertificate: cert,
  });
  const figures = await measureRegistry(registry, DEVICES, record, eui);
  print({ name: 'store.registry.sqlite', ...figures, fileMiB: Math.round(statSync(path).size / 2 ** 20) });
  await registry.close();
} finally {
  pg.destroy();
  rmSync(dir, { recursive: true, force: true });
}
