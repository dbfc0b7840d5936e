// Responses arrive together (a head-end feeds them from several connections): every meter's
// response recorded at once, for both routes, must leave each item replaced once, the plan complete
// once (one `plan.state` complete event), the old keys retired once on a rotation, and a history
// that verifies (docs/domain.md §9, CS02b responses).
import { describe, expect, it } from 'vitest';
import { RecoveryPlans } from '../src/index.js';
import { certify, closeLater, deviceCert, deviceTrust, meterResponse, NORTH, pki, supplierStore, SUPPLIER } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind } from './_databases.js';

const databases = planDatabases('smki-recovery-concurrent-');

describe.each(DATABASES)('responses recorded concurrently, plans in %s', (kind: DatabaseKind) => {
  it('a rotation: 20 responses at once complete the plan once and retire each old key once', async () => {
    const { store, north, northKeys } = await supplierStore();
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...databases.fresh(kind), keystore: store, counters: { startCounter: 7000n } });
    closeLater(() => plans.close());
    const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    await plans.attachCertificates(plan.planId, {
      certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') },
      certificationPath: [pki().organisationCa.certificate],
    });
    const all = await plans.buildBatch(plan.planId, { limit: 100 });
    expect(all).toHaveLength(NORTH.length);
    const oldCerts = { digitalSignature: north.signing, keyAgreement: north.keyAgreement };
    const results = await Promise.allSettled(all.map((c) => plans.recordResponse(plan.planId, meterResponse(c.command, { oldCerts }), { deviceCertificate: deviceCert(c.device) })));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const states = results.map((r) => (r as PromiseFulfilledResult<{ planState: string }>).value.planState);
    expect(states).toContain('complete');
    const done = await plans.status(plan.planId);
    expect(done.counts).toEqual({ pending: 0, built: 0, replaced: 40, failed: 0, escalated: 0 });
    expect(done.plan.state).toBe('complete');
    expect((await store.key(northKeys.signing!)).state).toBe('retired');
    expect((await store.key(northKeys.keyAgreement!)).state).toBe('retired');
    const history = await plans.verifyPlanHistory();
    expect(history).toMatchObject({ ok: true, problems: [] });
    // The same response again is refused: each counts once.
    await expect(plans.recordResponse(plan.planId, meterResponse(all[0]!.command, { oldCerts }), { deviceCertificate: deviceCert(all[0]!.device) })).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_RECOVERY_/) });
  });
});
