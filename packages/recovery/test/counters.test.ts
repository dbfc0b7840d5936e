// Originator counters under a race: two RecoveryPlans instances (two services), and two real
// processes, on one plan database, SQLite and PostgreSQL, building batches for two plans of the
// same originator at once.
// docs/domain.md §6 (anti-replay: an originator's counters strictly increase): no counter is handed out twice, every one
// consumed is in the hash-chained history, and a counter source that offers both the same counter
// gets it used once and refused once (ERR_RECOVERY_COUNTER_REUSED), never used twice.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSmkiError, toHex } from '@smki/core';
import { FileKeyBackend, KeyStore } from '@smki/keystore';
import { RecoveryPlans } from '../src/index.js';
import { certify, closeLater, deviceTrust, NORTH, PASS, pki, SOUTH, supplierStore, SUPPLIER, tempDir } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind } from './_databases.js';

const databases = planDatabases('smki-recovery-counters-');
const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_build-child.ts');

/** Run the builder child; its stdout's last line parsed. */
function builder(args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, env: { ...process.env, SMKI_TEST_ROOT: toHex(pki().root.certificate.der) } });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() as string) as string[]) : reject(new Error(`builder exited ${code}: ${err}`))));
  });
}

describe.each(DATABASES)('two services racing for counters on one plan database, %s', (kind: DatabaseKind) => {
  async function twoServices(counters: () => { startCounter: bigint } | { nextCounter: () => bigint }) {
    const { store } = await supplierStore();
    const where = databases.fresh(kind);
    const a = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...where, keystore: store, counters: counters() });
    closeLater(() => a.close());
    const b = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...where, keystore: store, counters: counters() });
    closeLater(() => b.close());
    const started = [];
    for (const portfolioId of ['north', 'south']) {
      const { plan, csrs } = await a.planRotation({ organisation: SUPPLIER, portfolioId });
      await a.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
      started.push(plan.planId);
    }
    return { a, b, north: started[0]!, south: started[1]! };
  }

  it('batches of two plans built by both services at once: every counter handed out once, all in the history', async () => {
    const { a, b, north, south } = await twoServices(() => ({ startCounter: 1_000n }));
    const built: bigint[] = [];
    // Both services often pick the same meters: a meter keeps the first command kept for it, the
    // other is dropped (its counter stays spent). Until nothing is pending.
    for (let round = 0; round < 40 && (round === 0 || (await a.status(north)).counts.pending + (await a.status(south)).counts.pending > 0); round++) {
      const batches = await Promise.all([a.buildBatch(north, { limit: 2 }), b.buildBatch(north, { limit: 2 }), a.buildBatch(south, { limit: 1 }), b.buildBatch(south, { limit: 1 })]);
      for (const batch of batches) built.push(...batch.map((c) => c.counter));
    }
    const used = await a.countersUsed(SUPPLIER);
    expect(new Set(used).size).toBe(used.length);
    expect(new Set(built).size).toBe(built.length);
    for (const c of built) expect(used).toContain(c);
    expect(used.length).toBeGreaterThanOrEqual(NORTH.length + SOUTH.length);
    expect((await b.status(north)).counts.built + (await b.status(south)).counts.built).toBe(2 * (NORTH.length + SOUTH.length));
    expect(await b.verifyPlanHistory()).toMatchObject({ ok: true, problems: [] });
  });

  it('a source that offers both services the same counter: it is used once, the other batch is refused', async () => {
    const { a, b, north, south } = await twoServices(() => ({ nextCounter: () => 77n }));
    const [x, y] = await Promise.allSettled([a.buildBatch(north, { limit: 1 }), b.buildBatch(south, { limit: 1 })]);
    const done = [x, y].filter((r) => r.status === 'fulfilled');
    const refused = [x, y].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(done).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(isSmkiError(refused[0]!.reason) && refused[0]!.reason.code).toBe('ERR_RECOVERY_COUNTER_REUSED');
    expect(await a.countersUsed(SUPPLIER)).toEqual([77n]);
    expect((await a.verifyPlanHistory()).ok).toBe(true);
  });

  it('two processes building the same plans at once: every counter kept once, none handed out twice', async () => {
    const base = tempDir();
    const dirs = { store: join(base, 'store'), keys: join(base, 'keys') };
    for (const d of Object.values(dirs)) mkdirSync(d);
    const where = databases.fresh(kind);
    const planIds: string[] = [];
    {
      const keys = await FileKeyBackend.open({ directory: dirs.keys, passphrase: PASS });
      const { store } = await supplierStore({ directory: dirs.store, backend: keys });
      const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...where, keystore: store, counters: { startCounter: 1n } });
      for (const portfolioId of ['north', 'south']) {
        const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId });
        await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
        planIds.push(plan.planId);
      }
      await plans.close();
      await store.close();
      await keys.close();
    }
    const [x, y] = await Promise.all([builder([dirs.store, dirs.keys, JSON.stringify(where), ...planIds]), builder([dirs.store, dirs.keys, JSON.stringify(where), ...[...planIds].reverse()])]);
    const kept = [...x!, ...y!].map(BigInt);
    expect(kept).toHaveLength(NORTH.length + SOUTH.length); // one command per meter, whichever process kept it
    expect(new Set(kept).size).toBe(kept.length);

    const keys = await FileKeyBackend.open({ directory: dirs.keys, passphrase: PASS });
    closeLater(() => keys.close());
    const store = await KeyStore.open({ directory: dirs.store, backend: keys, passphrase: PASS });
    closeLater(() => store.close());
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...where, keystore: store, counters: { startCounter: 1n } });
    closeLater(() => plans.close());
    const used = await plans.countersUsed(SUPPLIER);
    expect(new Set(used).size).toBe(used.length);
    for (const c of kept) expect(used).toContain(c);
    for (const id of planIds) expect((await plans.status(id)).counts.pending).toBe(0);
    expect(await plans.verifyPlanHistory()).toMatchObject({ ok: true, problems: [] });
  }, 120_000);
});
