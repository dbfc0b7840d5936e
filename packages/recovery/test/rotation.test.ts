// A rotation of the north portfolio's keys end to end: CS02b mode 2, supplier by supplier, signed
// with the key each meter still trusts (docs/domain.md §9), device responses verified before they
// count, the old keys retired once every meter confirmed; the south portfolio untouched
// (docs/key-segregation.md); a restart in the middle resumes without reusing a counter.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeUpdateSecurityCredentialsCommand, parseMessage, verifySignature } from '@smki/gbcs';
import { createHierarchy, issueDeviceCertificate } from '@smki/pki';
import { RecoveryPlans } from '../src/index.js';
import { certify, closeLater, deviceCert, deviceTrust, deviceKey, expectCode, meterResponse, NORTH, pki, SOUTH, southSnapshot, supplierStore, SUPPLIER } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind, type PlanWhere } from './_databases.js';

const databases = planDatabases('smki-recovery-rotation-');

describe.each(DATABASES)('rotation (CS02b mode 2) of a 20-meter portfolio, plans in %s', (kind: DatabaseKind) => {
  async function openPlans(keystore: Awaited<ReturnType<typeof supplierStore>>['store'], where: PlanWhere = databases.fresh(kind), start = 5000n) {
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...where, keystore, counters: { startCounter: start } });
    closeLater(() => plans.close());
    return { plans, path: where };
  }

  it('rotates north end to end: 20 commands signed with the old DS key, 20 verified responses, old keys retired, south untouched', async () => {
    const { store, north, northKeys } = await supplierStore();
    const south = await southSnapshot(store);
    const { plans } = await openPlans(store);
    const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    expect(plan.route).toBe('rotation');
    expect(plan.originator).toBe(SUPPLIER);
    expect(plan.oldKeys).toEqual({ signing: northKeys.signing, keyAgreement: northKeys.keyAgreement });
    await expectCode(plans.buildBatch(plan.planId), 'ERR_RECOVERY_PLAN_STATE'); // certificates not attached yet
    expect((await plans.status(plan.planId)).counts).toEqual({ pending: 0, built: 0, replaced: 0, failed: 0, escalated: 0 }); // and no meter listed

    const newDs = await certify(csrs.signing!, 'signing');
    const newKa = await certify(csrs.keyAgreement!, 'keyAgreement');
    await plans.attachCertificates(plan.planId, { certificates: { signing: newDs, keyAgreement: newKa }, certificationPath: [pki().organisationCa.certificate] });
    expect((await store.portfolio(SUPPLIER, 'north')).current).toMatchObject({ signing: plan.newKeys.signing, keyAgreement: plan.newKeys.keyAgreement });

    const first = await plans.buildBatch(plan.planId, { limit: 8 });
    const rest = await plans.buildBatch(plan.planId, { limit: 100 });
    expect(await plans.buildBatch(plan.planId)).toEqual([]);
    const all = [...first, ...rest];
    expect(all.map((c) => c.device)).toEqual(NORTH);
    expect(all.map((c) => c.counter)).toEqual(NORTH.map((_, i) => 5000n + BigInt(i)));
    for (const c of all) {
      const { payload, message } = decodeUpdateSecurityCredentialsCommand(c.command);
      expect(payload.mode).toBe(2);
      expect(message.originator).toBe(SUPPLIER);
      expect(message.recipient).toBe(c.device);
      expect(payload.replacements.map((r) => r.certificate)).toEqual([newDs.der, newKa.der]);
      // The meter still trusts the old DS key: that key authorises its replacement.
      expect(verifySignature(c.command, north.signing.publicKey!)).toBe(true);
      expect(verifySignature(c.command, newDs.publicKey!)).toBe(false);
    }
    expect((await plans.status(plan.planId)).counts).toEqual({ pending: 0, built: 40, replaced: 0, failed: 0, escalated: 0 });
    expect((await plans.status(plan.planId)).remaining).toEqual({ signing: 20, keyAgreement: 20 });

    const oldCerts = { digitalSignature: north.signing, keyAgreement: north.keyAgreement };
    for (const [i, c] of all.entries()) {
      const r = await plans.recordResponse(plan.planId, meterResponse(c.command, { oldCerts }), { deviceCertificate: deviceCert(c.device) });
      expect(r.outcomes.map((o) => o.state)).toEqual(['replaced', 'replaced']);
      expect(r.planState).toBe(i === all.length - 1 ? 'complete' : 'in-progress');
      if (i === 9) expect((await plans.status(plan.planId)).remaining).toEqual({ signing: 10, keyAgreement: 10 });
    }
    const done = await plans.status(plan.planId);
    expect(done.counts).toEqual({ pending: 0, built: 0, replaced: 40, failed: 0, escalated: 0 });
    expect(done.remaining).toEqual({ signing: 0, keyAgreement: 0 });
    expect(done.plan.state).toBe('complete');
    await expectCode(plans.buildBatch(plan.planId), 'ERR_RECOVERY_PLAN_STATE'); // a complete plan builds nothing
    expect((await store.key(northKeys.signing!)).state).toBe('retired');
    expect((await store.key(northKeys.keyAgreement!)).state).toBe('retired');
    for (const d of NORTH) expect((await store.device(SUPPLIER, d)).installed).toMatchObject({ signing: plan.newKeys.signing, keyAgreement: plan.newKeys.keyAgreement });
    expect(await southSnapshot(store)).toBe(south);
    for (const d of SOUTH) expect(await plans.commands(plan.planId, d)).toEqual([]);
    const history = await plans.verifyPlanHistory();
    expect(history).toMatchObject({ ok: true, problems: [] });
    expect(history.events).toBeGreaterThan(40);
  });

  it('a response whose device signature fails, or that is signed by another meter, changes nothing; the true one then counts', async () => {
    const { store, north } = await supplierStore();
    const { plans } = await openPlans(store);
    const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    const [c] = await plans.buildBatch(plan.planId, { limit: 1 });
    const oldCerts = { digitalSignature: north.signing, keyAgreement: north.keyAgreement };
    const good = meterResponse(c!.command, { oldCerts });
    const before = [await plans.status(plan.planId), (await store.device(SUPPLIER, c!.device)).installed, (await plans.verifyPlanHistory()).head];

    // One bit of the payload changed: the signature no longer verifies.
    const forged = good.slice();
    const m = parseMessage(good);
    forged[m.signedRange.end - 3]! ^= 0x01;
    await expectCode(plans.recordResponse(plan.planId, forged, { deviceCertificate: deviceCert(c!.device) }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // Signed by another meter's key, checked with this meter's certificate.
    const otherKey = meterResponse(c!.command, { oldCerts, signWith: deviceKey(NORTH[5]!) });
    await expectCode(plans.recordResponse(plan.planId, otherKey, { deviceCertificate: deviceCert(c!.device) }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // Another meter's certificate for this meter's response.
    await expectCode(plans.recordResponse(plan.planId, good, { deviceCertificate: deviceCert(NORTH[5]!) }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // A certificate that carries this meter's key but names another meter.
    const renamed = await issueDeviceCertificate({ issuer: pki().deviceCa, publicKey: deviceCert(c!.device).publicKey!, entityId: NORTH[5]!, keyUsage: 'digitalSignature' });
    await expectCode(plans.recordResponse(plan.planId, good, { deviceCertificate: renamed }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // The supplier's own certificate is not a device's.
    await expectCode(plans.recordResponse(plan.planId, good, { deviceCertificate: north.signing }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // A response signed by a key the attacker holds, with a certificate for this meter that the
    // attacker's own hierarchy issued: the signature verifies, the certificate does not chain.
    const rogue = await createHierarchy();
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rogueCert = await issueDeviceCertificate({ issuer: rogue.deviceCa, publicKey: attacker.publicKey, entityId: c!.device, keyUsage: 'digitalSignature' });
    const byAttacker = meterResponse(c!.command, { oldCerts, signWith: attacker.privateKey });
    await expectCode(plans.recordResponse(plan.planId, byAttacker, { deviceCertificate: rogueCert }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    expect([await plans.status(plan.planId), (await store.device(SUPPLIER, c!.device)).installed, (await plans.verifyPlanHistory()).head]).toEqual(before);

    await plans.recordResponse(plan.planId, good, { deviceCertificate: deviceCert(c!.device) });
    expect((await plans.status(plan.planId)).counts.replaced).toBe(2);
    // The same response again answers nothing that awaits an answer.
    await expectCode(plans.recordResponse(plan.planId, good, { deviceCertificate: deviceCert(c!.device) }), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
  });

  it('a restart in the middle (database closed and reopened) resumes where it stopped and never reuses a counter', async () => {
    const { store, north } = await supplierStore();
    const { plans, path } = await openPlans(store, undefined, 100n);
    const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    const a = await plans.buildBatch(plan.planId, { limit: 7 });
    const oldCerts = { digitalSignature: north.signing, keyAgreement: north.keyAgreement };
    await plans.recordResponse(plan.planId, meterResponse(a[0]!.command, { oldCerts }), { deviceCertificate: deviceCert(a[0]!.device) });
    await plans.close();

    // Reopened with the same starting counter: it continues above the last one it used.
    const again = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...path, keystore: store, counters: { startCounter: 100n } });
    closeLater(() => again.close());
    expect((await again.status(plan.planId)).counts).toEqual({ pending: 26, built: 12, replaced: 2, failed: 0, escalated: 0 });
    const b = await again.buildBatch(plan.planId, { limit: 100 });
    expect(b.map((c) => c.device)).toEqual(NORTH.slice(7));
    const used = [...a, ...b].map((c) => c.counter);
    expect(new Set(used).size).toBe(used.length);
    expect(b[0]!.counter).toBe(a[a.length - 1]!.counter + 1n);
    expect(await again.countersUsed(SUPPLIER)).toEqual(used);
    // A source that hands out a counter already used is refused, and nothing is built.
    await again.close();
    const stale = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...path, keystore: store, counters: { nextCounter: () => used[used.length - 1]! } }); // exactly the last one used
    closeLater(() => stale.close());
    expect((await stale.verifyPlanHistory()).ok).toBe(true);
    // Everything is built now; retrying a failed meter needs a fresh counter.
    const f = b[0]!;
    await stale.recordResponse(plan.planId, meterResponse(f.command, { oldCerts, status: (cell) => (cell.keyUsage === 'keyAgreement' ? 17 : 0) }), { deviceCertificate: deviceCert(f.device) });
    await stale.retry(plan.planId, f.device);
    const headBefore = (await stale.verifyPlanHistory()).head;
    await expectCode(stale.buildBatch(plan.planId), 'ERR_RECOVERY_COUNTER_REUSED');
    expect((await stale.verifyPlanHistory()).head).toBe(headBefore);
    expect((await stale.status(plan.planId)).counts.pending).toBe(1);
    expect(await stale.countersUsed(SUPPLIER)).toEqual(used);
  });

  it('two builders on one plan (two processes, one database) give each meter one command, each counter once', async () => {
    const { store } = await supplierStore();
    const { plans, path } = await openPlans(store);
    const other = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...path, keystore: store, counters: { startCounter: 5000n } });
    closeLater(() => other.close());
    const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    const [x, y] = await Promise.all([plans.buildBatch(plan.planId, { limit: 20 }), other.buildBatch(plan.planId, { limit: 20 })]);
    const devices = [...x!, ...y!].map((c) => c.device).sort();
    expect(devices).toEqual(NORTH);
    const counters = await plans.countersUsed(SUPPLIER);
    expect(new Set(counters).size).toBe(counters.length);
    expect((await plans.status(plan.planId)).counts.built).toBe(40);
    for (const d of NORTH) expect(await plans.commands(plan.planId, d)).toHaveLength(1);
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  });
});
