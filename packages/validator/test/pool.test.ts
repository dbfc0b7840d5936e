// The worker pool (docs/validator.md, worker pool): several threads, each with its own validator
// and decision log, over one SQLite store; a counter is accepted once whichever worker sees it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { verifyAuditLog } from '@smki/keystore';
import { SqliteDeviceRegistry, SqliteFirmwareAllowlist, SqliteStateStore } from '@smki/store';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA, ValidatorPool } from '../src/index.js';
import type { BenchSetupData } from './_pool-setup.js';
import { LOG_KEY, SUPPLIER, T0, buildWorld, disconnect, tempDir, type World } from './_world.js';

let world: World;
let dir: string;
let data: BenchSetupData;

beforeAll(async () => {
  world = await buildWorld({ meters: 40, portfolios: 2 });
  dir = tempDir('smki-pool-');
  data = {
    statePath: join(dir, 'state.db'),
    registryPath: join(dir, 'registry.db'),
    firmwarePath: join(dir, 'firmware.db'),
    logDir: join(dir, 'logs'),
    certificates: world.certificates.map((c) => c.der),
    crls: world.crls.map((c) => c.der),
    acbPkcs8: world.acb.privateKey.export({ format: 'der', type: 'pkcs8' }),
    logKey: LOG_KEY,
    now: T0.getTime(),
  };
  const registry = await SqliteDeviceRegistry.open({ path: data.registryPath });
  await registry.put(world.meters.map((m) => m.record));
  await registry.close();
  await (await SqliteFirmwareAllowlist.open({ path: data.firmwarePath })).close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ValidatorPool', () => {
  it('spreads a batch over two workers; decisions in order; every copy of a counter after the first is a replay', async () => {
    const pool = await ValidatorPool.open({ setup: new URL('./_pool-setup.ts', import.meta.url), workers: 2, data, chunkSize: 10 });
    expect(pool.workers).toBe(2);
    const c = BigInt(T0.getTime());
    const cmds = await Promise.all(world.meters.map((m) => disconnect(world, m, c)));
    // Each command twice, in different chunks (so in different workers at the same time).
    const batch = [...cmds, ...cmds].map((bytes) => ({ bytes, sender: SUPPLIER }));
    const ds = await pool.validateBatch(batch);
    expect(ds).toHaveLength(80);
    const byDevice = new Map<string, string[]>();
    ds.forEach((d) => byDevice.set(String(d.device), [...(byDevice.get(String(d.device)) ?? []), d.outcome]));
    for (const outcomes of byDevice.values()) expect(outcomes.sort()).toEqual(['accepted', 'rejected']);
    expect(pool.stats()).toEqual({ accepted: 40, quarantined: 0, rejected: { ERR_COMMAND_REPLAYED: 40 } });
    await pool.close();
    // The counters are in the shared store, and each worker's decision log verifies.
    const store = await SqliteStateStore.open({ path: data.statePath });
    expect(await store.lastCounter(SUPPLIER, world.meters[0]!.eui)).toBe(c);
    await store.close();
    let records = 0;
    for (const slot of [0, 1]) {
      const r = await verifyAuditLog(join(data.logDir, `worker-${slot}`, DECISION_LOG_FILE), { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
      expect(r.ok).toBe(true);
      records += r.count;
    }
    expect(records).toBe(80);
  });

  it('decides one device\'s commands in the order given, however many chunks they span', async () => {
    const pool = await ValidatorPool.open({ setup: new URL('./_pool-setup.ts', import.meta.url), workers: 2, data, chunkSize: 2 });
    // Counters above the first test's; 3 meters with 12 increasing counters each, interleaved.
    const base = BigInt(T0.getTime()) + 1000n;
    const meters = world.meters.slice(0, 3);
    const cmds: { bytes: Uint8Array; sender: typeof SUPPLIER; device: string; counter: bigint }[] = [];
    for (let k = 0; k < 12; k++) {
      for (const m of meters) {
        const counter = base + BigInt(k);
        cmds.push({ bytes: await disconnect(world, m, counter), sender: SUPPLIER, device: String(m.eui), counter });
      }
    }
    const ds = await pool.validateBatch(cmds.map(({ bytes, sender }) => ({ bytes, sender })));
    expect(ds.map((d) => d.outcome)).toEqual(cmds.map(() => 'accepted'));
    expect(ds.map((d) => [String(d.device), d.counter])).toEqual(cmds.map((c) => [c.device, c.counter]));
    await pool.close();
  });

  it('refuses bad options', async () => {
    await expect(ValidatorPool.open({ setup: '', workers: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(ValidatorPool.open({ setup: 'x', workers: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(ValidatorPool.open({ setup: 'x', workers: 1, chunkSize: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
