// `smki recovery list` and `smki recovery resume`: a compromise plan whose first step was
// interrupted (here: after its 'declared' row, and again after the stolen keys were revoked,
// before the replacements exist) is listed, and resumed to the same end as an uninterrupted one:
// the stolen keys revoked and on the CRL, one replacement per purpose in the named backend
// (never two), certified and attached (GBCS CS02b mode 8; docs/domain.md §9).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RecoveryPlans, type RecoveryFaultPoint } from '@smki/recovery';
import { State } from '../src/internal/state.js';
import { initLab, PASSPHRASE, smki, steps } from './_smki.js';

const RECOVERY_PARTY = '90B3D51F30000001';

function json<T = Record<string, unknown>>(dir: string, args: readonly string[], expectStatus = 0): T {
  const r = smki(['--dir', dir, '--json', ...args]);
  expect(r.status, `smki ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(expectStatus);
  return JSON.parse(r.stdout) as T;
}

/** A compromise of north planned in-process with the library, stopped at `point` (as a crash would leave it). */
async function interrupted(dir: string, point: RecoveryFaultPoint | 'certificates'): Promise<void> {
  const io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: { ...process.env, SMKI_KEYSTORE_PASSPHRASE: PASSPHRASE }, cwd: process.cwd() };
  const state = State.open(io, { dir });
  state.addFurtherBackend('standby');
  const ks = await state.keystore();
  const [root, , deviceCa] = state.caCertificates();
  const plans = await RecoveryPlans.open({
    path: state.path('state', 'recovery.db'),
    keystore: ks,
    counters: { startCounter: BigInt(Date.now()) },
    deviceTrust: { anchors: [root!], intermediates: [deviceCa!] },
    fault: (p) => {
      if (p === point) throw new Error(`interrupted at ${p}`);
    },
  });
  try {
    // 'certificates': the library's first step finished, the CLI's (CRL, certificates) did not.
    if (point === 'certificates') {
      await plans.planCompromise({ organisation: state.config.parties.supplier, portfolioId: 'north', recoveryParty: RECOVERY_PARTY as never, backend: 'standby' });
      return;
    }
    await expect(plans.planCompromise({ organisation: state.config.parties.supplier, portfolioId: 'north', recoveryParty: RECOVERY_PARTY as never, backend: 'standby' })).rejects.toThrow(`interrupted at ${point}`);
  } finally {
    await plans.close();
    await state.close();
  }
}

interface Listed {
  plans: { planId: string; route: string; state: string; portfolioId: string }[];
}
interface Planned {
  plan: { planId: string; state: string; oldKeys: Record<string, string>; newKeys: Record<string, string> };
  meters: Record<string, { count: number }>;
}

describe('smki recovery list | resume', () => {
  it.each(['plan.declared', 'plan.revoked', 'certificates'] as const)('a compromise interrupted at %s is listed, refused a second plan, and resumed to one replacement per purpose, certified, the stolen keys on the CRL', async (point) => {
    const dir = initLab();
    steps(dir, [
      ['portfolio', 'create', 'north'],
      ['key', 'generate', 'north', '--certify'],
      ['key', 'generate', 'north', '--purpose', 'keyAgreement', '--certify'],
    ]);
    expect(json<Listed>(dir, ['recovery', 'list']).plans).toEqual([]);
    await interrupted(dir, point);

    const listed = json<Listed>(dir, ['recovery', 'list']).plans;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ route: 'compromise', state: point === 'certificates' ? 'awaiting-certificates' : 'declared', portfolioId: 'north' });
    const planId = listed[0]!.planId;
    const text = smki(['--dir', dir, 'recovery', 'status', planId]);
    expect(text.stdout).toContain(`smki recovery resume ${planId}`);
    // A second plan for the portfolio waits for this one.
    const again = json<{ error: { code: string } }>(dir, ['recovery', 'plan', '--route', 'compromise', '--portfolio', 'north', '--backend', 'standby', '--recovery-party', RECOVERY_PARTY], 1);
    expect(again.error.code).toBe('ERR_RECOVERY_PLAN_STATE');

    const resumed = json<Planned>(dir, ['recovery', 'resume', planId]);
    expect(resumed.plan).toMatchObject({ planId, state: 'in-progress' });
    const keys = json<{ keyId: string; state: string; backend: string; portfolioId: string; purpose: string; serialNumber?: string }[]>(dir, ['key', 'list']).filter((k) => k.portfolioId === 'north');
    for (const purpose of ['signing', 'keyAgreement']) {
      const mine = keys.filter((k) => k.purpose === purpose);
      expect(mine.map((k) => k.state).sort()).toEqual(['active', 'revoked']); // one replacement, never two
      expect(mine.find((k) => k.state === 'active')).toMatchObject({ keyId: resumed.plan.newKeys[purpose], backend: '@standby' });
      expect(mine.find((k) => k.state === 'revoked')!.keyId).toBe(resumed.plan.oldKeys[purpose]);
      const old = mine.find((k) => k.state === 'revoked')!;
      expect(JSON.stringify(json(dir, ['cert', 'verify', old.serialNumber!], 1))).toContain('REVOKED');
    }
    // Done: resuming again is refused, and the plan goes on with build.
    expect(json<{ error: { code: string } }>(dir, ['recovery', 'resume', planId], 1).error.code).toBe('ERR_RECOVERY_PLAN_STATE');
    expect(json<Listed>(dir, ['recovery', 'list']).plans[0]!.state).toBe('in-progress');
  }, 300_000);

  it('resume of an unknown plan is refused', () => {
    const dir = initLab();
    const r = json<{ error: { code: string } }>(dir, ['recovery', 'resume', '0'.repeat(32)], 1);
    expect(r.error.code).toMatch(/^ERR_RECOVERY_PLAN_NOT_FOUND$/);
  });
});
