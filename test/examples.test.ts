// The runnable examples under examples/ (README, Layout; docs/conventions.md, Tests): each runs as
// a user runs it, `node --import tsx examples/<name>/main.ts` from the root in a child process,
// against real services (a private PostgreSQL 15 server on loopback, a fresh SoftHSM2 token,
// real ECDSA and ECDH), exits 0, and prints its key claims checked (✔, never ✘). Each example
// also exits non-zero when what it needs is not there. Docs cited by the examples:
// docs/validator.md, docs/store.md, docs/domain.md §1–§5.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11KeyBackend } from '@smki/keystore';
import { startPostgres, type PgServer } from '../packages/store/test/_postgres.js';
import { createSoftHsm, type SoftHsm } from '../packages/keystore/test/_softhsm.js';

const ROOT = resolve(import.meta.dirname, '..');
const RUN_TIMEOUT_MS = 120_000;

/** Children still running; killed (by pid) when the file's tests end. */
const running = new Set<ChildProcess>();

afterAll(async () => {
  for (const child of running) {
    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));
  }
});

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * The environment a user's shell would give the example: this process's, without the connection
 * and key-store settings of the machine (each test adds exactly what its example needs).
 */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') };
  for (const k of Object.keys(env)) {
    if (/^PG/.test(k) || /^SMKI_(HSM|KEYSTORE)_/.test(k)) delete env[k];
  }
  return { ...env, ...extra };
}

/** Run examples/<name>/main.ts as a user does, from the root; kill it if it outlives the timeout. */
function runExample(name: string, extra: Record<string, string>): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', name, 'main.ts')], {
    cwd: ROOT,
    env: baseEnv(extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      done({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The run passed: exit 0, every claim checked and holding, the closing line. */
function expectAllHeld(r: Run): void {
  const output = `exit ${r.code} (${r.signal ?? 'no signal'}) after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  expect(r.code, output).toBe(0);
  expect(r.stdout, output).not.toContain('✘');
  expect(r.stdout.match(/✔/g)?.length ?? 0, output).toBeGreaterThan(5);
  expect(r.stdout.trimEnd().split('\n').at(-1), output).toBe('Done: every claim above holds.');
}

describe('examples/head-end-validator: PostgreSQL stores and a two-worker ValidatorPool', () => {
  let pg: PgServer | undefined;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(() => pg?.destroy());

  it('runs against the server named by the libpq environment (password from PGPASSFILE) and every claim holds', async () => {
    const r = await runExample('head-end-validator', pg!.env);
    expectAllHeld(r);
    expect(r.stdout).toContain(`server: ${pg!.user}@${pg!.host}:${pg!.port}/${pg!.database}; password file: ${pg!.passfile}`);
    expect(r.stdout).toMatch(/✔ 2 workers opened their validators in \d+ ms/);
    expect(r.stdout).toContain('✔ 6 signed pre-commands, each verifies against its portfolio\'s certificate');
    expect(r.stdout).toContain('✔ 00DB1234567890A0: the command and its copy (two chunks, two workers): one accepted, the other rejected ERR_COMMAND_REPLAYED');
    expect(r.stdout).toContain('✔ wrong-key command: rejected ERR_COMMAND_PORTFOLIO_MISMATCH (the meter trusts the south key only)');
    expect(r.stdout).toMatch(/✔ 00DB1234567890A5: ACB MAC verifies for this meter only; signer is the south certificate/);
    expect(r.stdout).toContain('✔ 6 frames released, one per meter');
    expect(r.stdout).toMatch(/✔ rejected ERR_COMMAND_REPLAYED \(step replay\): counter \d+ was already accepted for this meter/);
    expect(r.stdout).toMatch(/✔ worker 0: decision log \d+ records, chain and MACs verify/);
    expect(r.stdout).toMatch(/✔ worker 1: decision log \d+ records, chain and MACs verify/);
    expect(r.stdout).toContain('✔ 9 decision records in all: one per decision');
    // What the example wrote is in this server, in the schema it names.
    const schema = /schema: (smki_example_[0-9a-f]{8})/.exec(r.stdout)?.[1];
    expect(schema).toBeDefined();
    expect(pg!.psql(`SELECT count(*) FROM ${schema}.devices`).trim()).toBe('6');
    expect(pg!.psql(`SELECT count(*) FROM ${schema}.counters`).trim()).toBe('6');
    expect(pg!.psql(`SELECT id FROM ${schema}.log_heads ORDER BY id`).trim().split('\n')).toEqual(['head-end-worker-0', 'head-end-worker-1']);
    // Every connection the example opened was closed (the pool's workers' and its own).
    // (A backend ends just after its client's goodbye: allow it a few seconds.)
    const others = () => pg!.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${pg!.database}' AND pid <> pg_backend_pid()`).trim();
    for (let i = 0; i < 50 && others() !== '0'; i++) await new Promise((done) => setTimeout(done, 100));
    expect(others()).toBe('0');
  }, RUN_TIMEOUT_MS);

  it('exits 1 when the server cannot be reached', async () => {
    const r = await runExample('head-end-validator', { ...pg!.env, PGPORT: '1' });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain('✘ ERR_STORE_UNAVAILABLE');
    expect(r.stdout).toContain('FAILED: 1 claim(s) above do not hold.');
  }, RUN_TIMEOUT_MS);
});

describe('examples/supplier-key-segregation: portfolios on a SoftHSM2 token', () => {
  let hsm: SoftHsm | undefined;
  beforeAll(() => {
    hsm = createSoftHsm();
  });
  afterAll(() => hsm?.cleanup());

  const hsmEnv = (): Record<string, string> => ({ SOFTHSM2_CONF: hsm!.conf, SMKI_HSM_TOKEN: hsm!.tokenLabel, SMKI_HSM_PIN: hsm!.pin });

  it('runs on a fresh token (label and PIN from the environment), every claim holds, and it leaves no key on the token', async () => {
    const r = await runExample('supplier-key-segregation', hsmEnv());
    expectAllHeld(r);
    expect(r.stdout).toContain(`1. Open the token "${hsm!.tokenLabel}" through /usr/lib/softhsm/libsofthsm2.so`);
    expect(r.stdout).toMatch(/✔ 90B3D51F30010000\.north\.DS\.g1: generated on the token \(backend pkcs11\); CSR for entity 90B3D51F30010000, role 2; certificate serial [0-9A-F]+/);
    expect(r.stdout).toContain('✔ ECS43 for A1');
    expect(r.stdout).toContain('✔ north key for B1 (a south meter): refused ERR_KEY_PORTFOLIO_MISMATCH');
    expect(r.stdout).toContain('✔ south key for A1 (a north meter): refused ERR_KEY_PORTFOLIO_MISMATCH');
    expect(r.stdout).toContain('✔ a stolen north key endangers A1 and A2 only; a stolen south key B1 and B2 only');
    expect(r.stdout).toContain('✔ the north key for B2 before its update: refused ERR_KEY_STATE_TRANSITION');
    expect(r.stdout).toContain('✔ assign A3 to north (its key already has 3 meters): refused ERR_PORTFOLIO_DEVICE_CAP');
    expect(r.stdout).toContain('✔ a signature for B1 after the revocation: refused ERR_KEY_REVOKED');
    expect(r.stdout).toContain('stays in the report while B1 still trusts it (B1 is to be re-credentialed)');
    expect(r.stdout).toContain('✔ the whole store: trail replayed');
    expect(r.stdout).toMatch(/✔ audit trail: \d+ records in \d+ sealed batches \(every lifecycle change and every signature\), verified with the audit public key only/);
    expect(r.stdout).toContain('✔ 3 key pairs destroyed');
    expect(r.stdout).not.toContain(hsm!.pin);
    // Seen from outside: no key of any label is left on the token.
    const backend = await Pkcs11KeyBackend.open({ module: hsm!.module, tokenLabel: hsm!.tokenLabel, pin: hsm!.pin, labelPrefix: '' });
    try {
      expect(await backend.listHandles()).toEqual([]);
    } finally {
      await backend.close();
    }
  }, RUN_TIMEOUT_MS);

  it('exits 1 on a wrong PIN (without printing it), 2 without a token configured', async () => {
    const wrong = `${hsm!.pin}0`;
    const r = await runExample('supplier-key-segregation', { ...hsmEnv(), SMKI_HSM_PIN: wrong });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain('✘ ERR_HSM_LOGIN_FAILED');
    expect(r.stdout + r.stderr).not.toContain(wrong);
    const none = await runExample('supplier-key-segregation', { SOFTHSM2_CONF: hsm!.conf });
    expect(none.code, none.stdout + none.stderr).toBe(2);
    expect(none.stderr).toContain('Set SMKI_HSM_TOKEN');
  }, RUN_TIMEOUT_MS);
});

describe('examples/auditor-evidence: the key-store trail and the decision log, audited', () => {
  it('makes its evidence, audits it, every claim holds, and a one-byte edit of either log is detected', async () => {
    const r = await runExample('auditor-evidence', {});
    expectAllHeld(r);
    expect(r.stdout).toMatch(/✔ key-store audit trail: \d+ records in \d+ batches, each sealed with the store's audit key, verify with its public key alone/);
    expect(r.stdout).toContain('✔ decision log: 7 records verify against the head the state store committed');
    // The north portfolio's key uses: three signatures, listed one per line.
    const table = r.stdout.split('\n').filter((l) => /^\s+\d+\s+\S+Z\s+sign\s+90B3D51F30010000\.north\.DS\.g1\s+00DB1234567890C[12]\s+0x0050\s+\d+$/.test(l));
    expect(table).toHaveLength(3);
    expect(r.stdout).toContain('✔ no signature for a meter outside the key\'s portfolio, none with a key the meter did not trust');
    expect(r.stdout).toContain('6 signatures: 5 for a meter of the key\'s own portfolio, 1 for a meter that had just left it and still trusted that key');
    expect(r.stdout).toContain('✔ 6 of 6 accepted commands matched to exactly one signature of the key whose certificate the validator checked');
    expect(r.stdout).toMatch(/✔ trail, record \d+'s device 00DB1234567890C1 → 00DB1234567890C2: ERR_AUDIT_TAMPERED at record \d+/);
    expect(r.stdout).toMatch(/✔ decision log, record 1's counter \d+ → \d+: ERR_AUDIT_TAMPERED at line 1/);
    expect(r.stdout).toContain('✔ decision log with its last record cut off: ERR_AUDIT_TRUNCATED');
  }, RUN_TIMEOUT_MS);
});
