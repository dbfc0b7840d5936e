// A crash at each step of a plan's first step, in a real child process killed with SIGKILL, on
// both plan databases: after the plan is written (`declared`), after the stolen keys are revoked,
// after a replacement is generated but before the plan records it. Reopened, the plan is listed
// as `declared`; resume() finishes it: the old keys revoked once, each replacement generated once
// (one made before the crash is found, not made again), the plan awaiting its certificates, its
// history verifying; the CSRs it returns certify and attach. (docs/domain.md §9: a stolen key is
// revoked at once; docs/key-segregation.md: replacements in another backend.)
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toHex } from '@smki/core';
import { FileKeyBackend, KeyStore } from '@smki/keystore';
import { RecoveryPlans, type RecoveryFaultPoint, type RecoveryRoute } from '../src/index.js';
import { certify, closeLater, deviceTrust, expectCode, PASS, pki, RECOVERY, supplierStore, SUPPLIER, tempDir } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind } from './_databases.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_plan-child.ts');
const databases = planDatabases('smki-recovery-crash-');

async function openEstate(dirs: { store: string; keys: string; token: string }) {
  const backend = await FileKeyBackend.open({ directory: dirs.keys, passphrase: PASS });
  const token = await FileKeyBackend.open({ directory: dirs.token, passphrase: PASS });
  const store = await KeyStore.open({ directory: dirs.store, backend, passphrase: PASS, backends: { 'token-b': token } });
  return { store, close: async () => { await store.close(); await token.close(); await backend.close(); } };
}

const CASES: [RecoveryRoute, RecoveryFaultPoint][] = [
  ['compromise', 'plan.declared'],
  ['compromise', 'plan.revoked'],
  ['compromise', 'plan.generated'],
  ['rotation', 'plan.declared'],
  ['rotation', 'plan.generated'],
];

describe.each(DATABASES)('a plan killed in its first step resumes to a correct plan, plans in %s', (kind: DatabaseKind) => {
  it.each(CASES)('%s killed at %s', async (route, point) => {
    const base = tempDir();
    const dirs = { store: join(base, 'store'), keys: join(base, 'keys'), token: join(base, 'token') };
    for (const d of Object.values(dirs)) mkdirSync(d);
    {
      const keys = await FileKeyBackend.open({ directory: dirs.keys, passphrase: PASS });
      const token = await FileKeyBackend.open({ directory: dirs.token, passphrase: PASS });
      const estate = await supplierStore({ directory: dirs.store, backend: keys, backends: { 'token-b': token } });
      await estate.store.close();
      await token.close();
      await keys.close();
    }
    const where = databases.fresh(kind);
    const child = spawnSync(process.execPath, ['--import', 'tsx', CHILD, dirs.store, dirs.keys, dirs.token, JSON.stringify(where), route, point], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, SMKI_TEST_ROOT: toHex(pki().root.certificate.der) },
    });
    expect(child.stderr).not.toMatch(/Error/);
    expect(child.signal).toBe('SIGKILL');
    expect(child.stdout).not.toContain('finished');

    const estate = await openEstate(dirs);
    closeLater(estate.close);
    const { store } = estate;
    const plans = await RecoveryPlans.open({ ...where, keystore: store, counters: { startCounter: 1n }, deviceTrust: deviceTrust() });
    closeLater(() => plans.close());
    const keysOf = async (purpose: string) => (await store.keys(SUPPLIER)).filter((k) => k.portfolioId === 'north' && k.purpose === purpose);
    const [old] = await keysOf('signing');

    // The interrupted plan is there for an operator to see, declared, with what it will replace.
    const listed = await plans.plans();
    expect(listed).toHaveLength(1);
    const declared = listed[0]!;
    expect(declared).toMatchObject({ route, state: 'declared', organisation: SUPPLIER, portfolioId: 'north', purposes: ['signing', 'keyAgreement'], newKeys: {} });
    expect(declared.oldKeys.signing).toBe(old!.keyId);
    expect((await plans.status(declared.planId)).plan.state).toBe('declared');
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
    // Killed after generating: the key is in the store, not yet in the plan.
    if (point === 'plan.generated') expect(await keysOf('signing')).toHaveLength(2);
    // Killed after revoking: the stolen key is revoked already; before it, not yet.
    expect(old!.state).toBe(route === 'compromise' && point !== 'plan.declared' ? 'revoked' : 'active');
    // No second plan of the portfolio while this one is unfinished.
    const again = route === 'compromise' ? plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' }) : plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    await expectCode(again, 'ERR_RECOVERY_PLAN_STATE');

    const { plan, csrs } = await plans.resume(declared.planId);
    expect(plan.state).toBe('awaiting-certificates');
    for (const purpose of ['signing', 'keyAgreement'] as const) {
      const keys = await keysOf(purpose);
      expect(keys.map((k) => k.generation)).toEqual([1, 2]); // one replacement each, never two
      expect(plan.newKeys[purpose]).toBe(keys[1]!.keyId);
      expect(keys[1]!.state).toBe('pending');
      expect(keys[1]!.backend).toBe(route === 'compromise' ? '@token-b' : keys[0]!.backend);
      expect(keys[0]!.state).toBe(route === 'compromise' ? 'revoked' : 'active');
    }
    // Again: nothing changes, the same keys, CSRs made again.
    const twice = await plans.resume(declared.planId);
    expect(twice.plan.newKeys).toEqual(plan.newKeys);
    expect((await keysOf('signing')).length).toBe(2);
    const history = await plans.verifyPlanHistory();
    expect(history).toMatchObject({ ok: true, problems: [] });

    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(twice.csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    expect((await plans.plan(plan.planId)).state).toBe('in-progress');
    await expectCode(plans.resume(plan.planId), 'ERR_RECOVERY_PLAN_STATE');
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  }, 120_000);
});
