// Refusals, each with its stable code: a command that is not the plan's (checkRecoveryCommand:
// mode, originator, meter, another party's cell, another supplier's or another certificate —
// docs/domain.md §9 mode 8 may replace any cell but the root, so the plan must narrow it to the
// named supplier's), a response that does not fit its command, a plan in the wrong state, a
// failed meter retried with a new counter or escalated, and a plan history that was tampered with.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { buildUpdateSecurityCredentials, CREDENTIALS_STATUS, decodeUpdateSecurityCredentialsCommand, type UpdateSecurityCredentialsOptions } from '@smki/gbcs';
import { issueOrganisationCertificate } from '@smki/pki';
import type { SmkiError } from '@smki/core';
import { checkRecoveryCommand, RecoveryPlans, type RecoveryCommandExpectation } from '../src/index.js';
import { certify, closeLater, deviceCert, deviceTrust, expectCode, meterResponse, NORTH, pki, RECOVERY, supplierStore, SUPPLIER, tempDir } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind, type PlanWhere } from './_databases.js';

const databases = planDatabases('smki-recovery-refusals-');

const OTHER_SUPPLIER = '90B3D51F30020000';
const NETWORK = '90B3D51F30030000';
const DS = (role: number) => ({ role, keyUsage: 'digitalSignature' as const });
const KA = (role: number) => ({ role, keyUsage: 'keyAgreement' as const });

async function orgCert(entityId: string, role: number, keyUsage: 'digitalSignature' | 'keyAgreement') {
  return issueOrganisationCertificate({ issuer: pki().organisationCa, role, entityId, keyUsage, publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey });
}

describe('checkRecoveryCommand: only the plan\'s command is ever signed', () => {
  it('passes the plan\'s own mode 8 command and refuses every departure from it with ERR_RECOVERY_COMMAND_REFUSED', async () => {
    const ds = await orgCert(SUPPLIER, 2, 'digitalSignature');
    const ka = await orgCert(SUPPLIER, 2, 'keyAgreement');
    const otherDs = await orgCert(OTHER_SUPPLIER, 2, 'digitalSignature');
    const sameSupplierOtherDs = await orgCert(SUPPLIER, 2, 'digitalSignature');
    const networkKa = await orgCert(NETWORK, 3, 'keyAgreement');
    const base: UpdateSecurityCredentialsOptions = {
      originator: RECOVERY,
      recipient: NORTH[0]!,
      counter: 77n,
      mode: 8,
      authorisingCell: DS(1),
      replacements: [
        { certificate: ds, cell: DS(2) },
        { certificate: ka, cell: KA(2) },
      ],
      certificationPath: [pki().organisationCa.certificate],
      otherRoleFloors: [2, 3, 4, 5].map((role) => ({ role, floor: 0n })),
    };
    const expected: RecoveryCommandExpectation = { mode: 8 as const, originator: RECOVERY, recipient: NORTH[0]!, organisation: SUPPLIER, certificates: { signing: ds.der, keyAgreement: ka.der } };
    expect(checkRecoveryCommand(buildUpdateSecurityCredentials(base), expected).payload.mode).toBe(8);

    const refused = (options: Partial<UpdateSecurityCredentialsOptions>, exp = expected, from = base) => expectCode(() => checkRecoveryCommand(buildUpdateSecurityCredentials({ ...from, ...options }), exp), 'ERR_RECOVERY_COMMAND_REFUSED');
    // Another mode (mode 2 by the supplier, from the supplier).
    const { otherRoleFloors: _floors, ...noFloors } = base;
    await refused({ mode: 2, originator: SUPPLIER, authorisingCell: DS(2), authorisingFloor: 0n }, expected, noFloors);
    await refused({ mode: 2, originator: SUPPLIER, authorisingCell: DS(2) }, { ...expected, originator: SUPPLIER }, noFloors);
    // Another originator, another meter.
    await refused({}, { ...expected, originator: '90B3D51F30000002' });
    await refused({ recipient: NORTH[1]! });
    // Another party's cell: the network operator's KA (mode 8 may, the plan may not); the refusal names the cell.
    const cellRefusal = (() => {
      try {
        checkRecoveryCommand(buildUpdateSecurityCredentials({ ...base, replacements: [{ certificate: ds, cell: DS(2) }, { certificate: ka, cell: KA(2) }, { certificate: networkKa, cell: KA(3) }] }), expected);
      } catch (e) {
        return e as SmkiError;
      }
      return undefined;
    })();
    expect({ code: cellRefusal?.code, detail: (cellRefusal?.context as { detail?: string } | undefined)?.detail }).toEqual({ code: 'ERR_RECOVERY_COMMAND_REFUSED', detail: '3/keyAgreement' });
    // The supplier's prepayment cell is not in the plan.
    await refused({ replacements: [{ certificate: ds, cell: DS(2) }, { certificate: ka, cell: { ...KA(2), cellUsage: 'prepayment' } }] });
    // Another supplier's certificate in the supplier's cell.
    await refused({ replacements: [{ certificate: otherDs, cell: DS(2) }, { certificate: ka, cell: KA(2) }] });
    // A plan whose "new" certificates are another supplier's: refused though they are the plan's.
    await refused({ replacements: [{ certificate: otherDs, cell: DS(2) }, { certificate: ka, cell: KA(2) }] }, { ...expected, certificates: { signing: otherDs.der, keyAgreement: ka.der } });
    // The supplier's, but not the plan's new certificate.
    await refused({ replacements: [{ certificate: sameSupplierOtherDs, cell: DS(2) }, { certificate: ka, cell: KA(2) }] });
    // A cell the plan replaces left out; a cell the plan does not replace put in.
    await refused({ replacements: [{ certificate: ds, cell: DS(2) }] });
    await refused({}, { ...expected, certificates: { signing: ds.der } });
    // Not a CS02b command at all.
    await expectCode(() => checkRecoveryCommand(new Uint8Array([0xdf, 0x09, 0x00]), expected), 'ERR_RECOVERY_COMMAND_REFUSED');
  });
});

async function rotationInProgress(where: PlanWhere = { path: join(tempDir(), 'plans.db') }) {
  const estate = await supplierStore();
  const path = where;
  const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...where, keystore: estate.store, counters: { startCounter: 1n } });
  closeLater(() => plans.close());
  const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
  await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
  const oldCerts = { digitalSignature: estate.north.signing, keyAgreement: estate.north.keyAgreement };
  return { ...estate, plans, plan, path, oldCerts };
}

describe('plans and responses refused with their codes', () => {
  it('an unknown plan, a second attach, bad options', async () => {
    const { plans, plan } = await rotationInProgress();
    await expectCode(plans.status('00'.repeat(16)), 'ERR_RECOVERY_PLAN_NOT_FOUND');
    await expectCode(plans.buildBatch('nope'), 'ERR_RECOVERY_PLAN_NOT_FOUND');
    await expectCode(plans.attachCertificates(plan.planId, { certificates: {}, certificationPath: [pki().organisationCa.certificate] }), 'ERR_RECOVERY_PLAN_STATE');
    await expectCode(plans.buildBatch(plan.planId, { limit: 0 }), 'ERR_INVALID_ARGUMENT');
    await expectCode(plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north', purposes: ['signing', 'signing'] }), 'ERR_INVALID_ARGUMENT');
    await expectCode(plans.retry(plan.planId, NORTH[0]!), 'ERR_RECOVERY_PLAN_STATE'); // nothing failed
    await expectCode(plans.resume(plan.planId), 'ERR_RECOVERY_PLAN_STATE'); // certified already: nothing to finish
    await expectCode(plans.resume('nope'), 'ERR_RECOVERY_PLAN_NOT_FOUND');
    // The plan database is one of a SQLite file or PostgreSQL, never both or neither; an operator is well formed.
    const { store } = await supplierStore();
    const base = { deviceTrust: deviceTrust(), keystore: store, counters: { startCounter: 1n } };
    await expectCode(RecoveryPlans.open(base), 'ERR_INVALID_ARGUMENT');
    await expectCode(RecoveryPlans.open({ ...base, path: join(tempDir(), 'p.db'), postgres: { host: '127.0.0.1' } }), 'ERR_INVALID_ARGUMENT');
    await expectCode(RecoveryPlans.open({ ...base, path: join(tempDir(), 'p.db'), operator: { operatorId: 'x' } as never }), 'ERR_INVALID_ARGUMENT');
    await expectCode(RecoveryPlans.open({ ...base, postgres: { host: '127.0.0.1', password: 'in code' } as never }), 'ERR_INVALID_ARGUMENT');
  });

  it('a response to another originator, with another counter, or an outcome that does not fit is refused and changes nothing', async () => {
    const { plans, plan, oldCerts, store } = await rotationInProgress();
    const [c] = await plans.buildBatch(plan.planId, { limit: 1 });
    const cert = deviceCert(c!.device);
    const head = (await plans.verifyPlanHistory()).head;
    await expectCode(plans.recordResponse(plan.planId, meterResponse(c!.command, { oldCerts, to: OTHER_SUPPLIER }), { deviceCertificate: cert }), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    await expectCode(plans.recordResponse(plan.planId, meterResponse(c!.command, { oldCerts, counter: c!.counter + 1n }), { deviceCertificate: cert }), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    const { payload } = decodeUpdateSecurityCredentialsCommand(c!.command);
    // Build a response whose success names the old certificate as new (the key the meter should have dropped).
    const oldAsNew = meterResponse(
      // the same command, but the "new" certificates replaced by the old ones, so the meter reports the old SKI
      buildUpdateSecurityCredentials({ originator: SUPPLIER, recipient: c!.device, counter: c!.counter, mode: 2, authorisingCell: DS(2), replacements: [{ certificate: oldCerts.digitalSignature, cell: DS(2) }, { certificate: oldCerts.keyAgreement, cell: KA(2) }], certificationPath: payload.certificationPath }),
      { oldCerts },
    );
    await expectCode(plans.recordResponse(plan.planId, oldAsNew, { deviceCertificate: cert }), 'ERR_RECOVERY_RESPONSE_OUTCOME');
    // An outcome for one cell only.
    const half = meterResponse(
      buildUpdateSecurityCredentials({ originator: SUPPLIER, recipient: c!.device, counter: c!.counter, mode: 2, authorisingCell: DS(2), replacements: [payload.replacements[0]!], certificationPath: payload.certificationPath }),
      { oldCerts },
    );
    await expectCode(plans.recordResponse(plan.planId, half, { deviceCertificate: cert }), 'ERR_RECOVERY_RESPONSE_OUTCOME');
    expect((await plans.verifyPlanHistory()).head).toBe(head);
    expect((await store.device(SUPPLIER, c!.device)).installed.signing).toBe(plan.oldKeys.signing);
    expect((await plans.status(plan.planId)).counts).toMatchObject({ built: 2, replaced: 0 });
  });

  it('a failed cell is recorded with the device status; retry builds a new command with a new counter; escalate keeps the plan from completing', async () => {
    const { plans, plan, oldCerts, store } = await rotationInProgress();
    const batch = await plans.buildBatch(plan.planId, { limit: 100 });
    const [first, second] = batch;
    const r = await plans.recordResponse(plan.planId, meterResponse(first!.command, { oldCerts, status: (cell) => (cell.keyUsage === 'keyAgreement' ? CREDENTIALS_STATUS.insufficientMemory : 0) }), { deviceCertificate: deviceCert(first!.device) });
    expect(r.outcomes).toEqual([
      { purpose: 'signing', state: 'replaced', status: 0 },
      { purpose: 'keyAgreement', state: 'failed', status: CREDENTIALS_STATUS.insufficientMemory },
    ]);
    expect((await store.device(SUPPLIER, first!.device)).installed).toMatchObject({ signing: plan.newKeys.signing, keyAgreement: plan.oldKeys.keyAgreement });
    await plans.retry(plan.planId, first!.device);
    const [again] = await plans.buildBatch(plan.planId);
    expect(again!.device).toBe(first!.device);
    expect(again!.purposes).toEqual(['keyAgreement']);
    expect(again!.counter).toBeGreaterThan(batch[batch.length - 1]!.counter);
    expect((await plans.commands(plan.planId, first!.device)).map((c) => c.counter)).toEqual([first!.counter, again!.counter]);
    await plans.recordResponse(plan.planId, meterResponse(again!.command, { oldCerts }), { deviceCertificate: deviceCert(first!.device) });

    await plans.recordResponse(plan.planId, meterResponse(second!.command, { oldCerts, status: () => CREDENTIALS_STATUS.busy }), { deviceCertificate: deviceCert(second!.device) });
    await plans.escalate(plan.planId, second!.device, 'meter busy three times');
    for (const c of batch.slice(2)) await plans.recordResponse(plan.planId, meterResponse(c.command, { oldCerts }), { deviceCertificate: deviceCert(c.device) });
    const s = await plans.status(plan.planId);
    expect(s.counts).toEqual({ pending: 0, built: 0, replaced: 38, failed: 0, escalated: 2 });
    expect(s.plan.state).toBe('in-progress');
    expect(s.remaining).toEqual({ signing: 1, keyAgreement: 1 });
    expect((await store.key(plan.oldKeys.signing!)).state).toBe('active'); // not retired while a meter trusts it
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  });

});

describe.each(DATABASES)('the plan history, plans in %s', (kind: DatabaseKind) => {
  /** Change the plan database behind the plans' back (the database's own client). */
  const tamper = (where: PlanWhere, sql: string) => {
    if ('path' in where) {
      const db = new Database(where.path);
      db.exec(sql);
      db.close();
    } else databases.pg.psql(`SET search_path TO ${where.postgres.schema}; ${sql}`);
  };

  it('the plan history is a hash chain: an edited event, an edited row or a removed event is found', async () => {
    const { plans, plan, path } = await rotationInProgress(databases.fresh(kind));
    await plans.buildBatch(plan.planId, { limit: 3 });
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
    await plans.close();
    const reopen = async () => {
      const p = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...path, keystore: (await supplierStore()).store, counters: { startCounter: 1n } });
      closeLater(() => p.close());
      const v = await p.verifyPlanHistory();
      await p.close();
      return v;
    };
    // A row changed without its event.
    tamper(path, `UPDATE recovery_items SET state = 'replaced' WHERE device = '${NORTH[0]}' AND purpose = 'signing'`);
    let v = await reopen();
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.code)).toEqual(['ERR_RECOVERY_HISTORY_BROKEN']);
    tamper(path, `UPDATE recovery_items SET state = 'built' WHERE device = '${NORTH[0]}' AND purpose = 'signing'`);
    expect((await reopen()).ok).toBe(true);
    // A plan's new key swapped without its event.
    tamper(path, `UPDATE recovery_plans SET new_signing = old_signing`);
    expect((await reopen()).problems.map((p) => p.message)).toEqual([`plan ${plan.planId}: its new keys are not the ones its history records`]);
    tamper(path, `UPDATE recovery_plans SET new_signing = '${plan.newKeys.signing}'`);
    expect((await reopen()).ok).toBe(true);
    // An event edited in place.
    tamper(path, `UPDATE recovery_events SET event = replace(event, '"built"', '"replaced"') WHERE seq = (SELECT max(seq) FROM recovery_events)`);
    v = await reopen();
    expect(v.ok).toBe(false);
    expect(v.problems.some((p) => p.message.includes('hash does not match'))).toBe(true);
    // The last event removed (its row then has no history).
    tamper(path, 'DELETE FROM recovery_events WHERE seq = (SELECT max(seq) FROM recovery_events)');
    expect((await reopen()).ok).toBe(false);
    // A counter row added without its event.
    tamper(path, `INSERT INTO recovery_counters (originator, counter, plan_id, device) VALUES ('${SUPPLIER}', '00000000000000099999', '${plan.planId}', '${NORTH[0]}')`);
    expect((await reopen()).problems.map((p) => p.message)).toContain(`counter ${SUPPLIER}/99999: not in the history`);
    // A counter row removed: the history says it was consumed.
    const fresh = await rotationInProgress(databases.fresh(kind));
    await fresh.plans.buildBatch(fresh.plan.planId, { limit: 2 });
    await fresh.plans.close();
    tamper(fresh.path, 'DELETE FROM recovery_counters WHERE counter = (SELECT max(counter) FROM recovery_counters)');
    const p2 = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...fresh.path, keystore: fresh.store, counters: { startCounter: 1n } });
    closeLater(() => p2.close());
    expect((await p2.verifyPlanHistory()).problems.map((p) => p.message)).toEqual([expect.stringMatching(/^counter .*: in the history, not in the database$/)]);
  });
});
