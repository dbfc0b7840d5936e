// Originator counters under a race: two RecoveryPlans instances (two services) on one plan
// database, SQLite and PostgreSQL, building batches for two plans of the same originator at once.
// GBCS 4.3.1.3 (originator counters strictly increase): no counter is handed out twice, every one
// consumed is in the hash-chained history, and a counter source that offers both the same counter
// gets it used once and refused once (ERR_RECOVERY_COUNTER_REUSED), never used twice.
import { describe, expect, it } from 'vitest';
import { isSmkiError } from '@smki/core';
import { RecoveryPlans } from '../src/index.js';
import { certify, closeLater, deviceTrust, NORTH, pki, SOUTH, supplierStore, SUPPLIER } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind } from './_databases.js';

const databases = planDatabases('smki-recovery-counters-');

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
});
