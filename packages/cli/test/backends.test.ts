// The two other back ends of a state directory, run as a user would: the keys on an HSM through
// PKCS#11 (`smki init --hsm`, SoftHSM2 here: the PIN from SMKI_HSM_PIN or --pin-file, never a
// flag), and the counters, registry, firmware allowlist and log heads in PostgreSQL
// (`smki init --postgres`: the connection from the libpq environment, the password from a
// password file), with the validator's worker pool on the shared database.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsm, type SoftHsm } from '../../keystore/test/_softhsm.js';
import { startPostgres, type PgServer } from '../../store/test/_postgres.js';
import { ROOT, smki, smkiAsync, tempDir } from './_smki.js';

const M1 = '00DB123456789001';
const M2 = '00DB123456789002';

/** Set up a portfolio, two meters, then build, sign and validate `repeat` disconnects per meter. */
function flow(run: (args: string[]) => { status: number | null; stdout: string; stderr: string }, lab: string): void {
  for (const args of [
    ['portfolio', 'create', 'north'],
    ['key', 'generate', 'north', '--certify'],
    ['device', 'add', M1, '--portfolio', 'north', '--simulate'],
    ['device', 'add', M2, '--portfolio', 'north', '--simulate'],
    ['command', 'build', 'disconnect', '--device', M1, '--device', M2, '--out', join(lab, '..', 'pre.hex')],
    ['command', 'sign', '--in', join(lab, '..', 'pre.hex'), '--out', join(lab, '..', 'signed.hex')],
  ]) {
    const r = run(args);
    expect(r.status, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  }
}

describe('smki init --hsm (PKCS#11, SoftHSM2)', () => {
  let hsm: SoftHsm;
  let lab: string;
  let env: Record<string, string>;
  beforeAll(() => {
    hsm = createSoftHsm();
    lab = join(tempDir(), 'lab');
    env = { SOFTHSM2_CONF: hsm.conf, SMKI_HSM_PIN: hsm.pin };
  });
  afterAll(() => hsm?.cleanup());
  const run = (args: string[], extra: Record<string, string | undefined> = {}) => smki(['--dir', lab, ...args], { env: { ...env, ...extra } });

  it('keeps the keys on the token: init, generate and certify, sign, validate', () => {
    const init = smki(['init', lab, '--hsm', '--hsm-module', hsm.module, '--hsm-token', hsm.tokenLabel, '--json'], { env });
    expect(init.status, init.stderr).toBe(0);
    expect((JSON.parse(init.stdout) as { config: { keystore: unknown } }).config.keystore).toEqual({ backend: 'pkcs11', module: hsm.module, tokenLabel: hsm.tokenLabel });
    flow(run, lab);
    const keys = JSON.parse(run(['key', 'list', '--json']).stdout) as { backend: string; state: string }[];
    // north's signing key and the supplier's DUIS XML-signing key (made by init): both on the token.
    expect(keys.map((k) => [k.backend, k.state])).toEqual([
      ['pkcs11', 'active'],
      ['pkcs11', 'active'],
    ]);
    // No private key file: the key store directory holds metadata and the trail only.
    const keyFiles = existsSync(join(lab, 'keystore', 'keys')) ? readdirSync(join(lab, 'keystore', 'keys')) : [];
    expect(keyFiles).toEqual([]);
    const v = run(['command', 'validate', '--in', join(lab, '..', 'signed.hex')]);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/2 accepted, 0 rejected/);
  });

  it('reads the PIN from --pin-file as well; a missing PIN or a wrong one is a state error (exit 5) that never shows the PIN', () => {
    const pinFile = join(tempDir(), 'pin');
    writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
    expect(run(['--pin-file', pinFile, 'key', 'list'], { SMKI_HSM_PIN: undefined }).status).toBe(0);
    const none = run(['key', 'list'], { SMKI_HSM_PIN: undefined });
    expect(none.status).toBe(5);
    expect(none.stderr).toContain('ERR_CLI_SECRET_MISSING');
    const wrong = run(['key', 'list'], { SMKI_HSM_PIN: '000000' });
    expect(wrong.status).toBe(5);
    expect(wrong.stderr).toContain('ERR_HSM_LOGIN_FAILED');
    expect(wrong.stderr + wrong.stdout).not.toContain(hsm.pin);
    // No flag takes a PIN.
    expect(run(['--pin', hsm.pin, 'key', 'list']).status).toBe(2);
  });

  it('--hsm without a token label is a usage error and writes nothing', () => {
    const dir = join(tempDir(), 'lab');
    const r = smki(['init', dir, '--hsm'], { env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ERR_CLI_USAGE');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('smki init --postgres (libpq environment, password file)', () => {
  let pg: PgServer;
  let lab: string;
  beforeAll(async () => {
    pg = await startPostgres();
    lab = join(tempDir(), 'lab');
  }, 120_000);
  afterAll(() => pg?.destroy());
  const run = (args: string[]) => smki(['--dir', lab, ...args], { env: pg.env, cwd: ROOT });

  it('puts counters, registry, firmware and the decision logs in PostgreSQL (no SQLite file), and validates through a pool of two workers', async () => {
    const init = smki(['init', lab, '--postgres', '--pg-schema', 'smki_cli'], { env: pg.env });
    expect(init.status, init.stderr).toBe(0);
    expect(existsSync(join(lab, 'state'))).toBe(false);
    flow(run, lab);
    expect(Number(pg.psql('SELECT count(*) FROM smki_cli.devices').trim())).toBe(2);
    // Many commands through the pool (each worker with its own connections and decision log).
    expect(run(['command', 'build', 'disconnect', '--device', M1, '--device', M2, '--repeat', '200', '--out', join(lab, '..', 'batch.hex')]).status).toBe(0);
    expect(run(['command', 'sign', '--in', join(lab, '..', 'batch.hex'), '--out', join(lab, '..', 'batch-signed.hex')]).status).toBe(0);
    const v = await smkiAsync(['--dir', lab, 'command', 'validate', '--in', join(lab, '..', 'batch-signed.hex'), '--workers', '2'], { env: pg.env, cwd: ROOT });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/400 accepted, 0 rejected/);
    // The counters are in the database: the same batch again, from one process, is all replays.
    const again = run(['command', 'validate', '--in', join(lab, '..', 'batch-signed.hex'), '--json']);
    expect(again.status).toBe(1);
    const lines = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as { code: string });
    expect(lines).toHaveLength(400);
    expect(new Set(lines.map((l) => l.code))).toEqual(new Set(['ERR_COMMAND_REPLAYED']));
    // Every decision log (the pool's two and the single process's) is in the database, with the
    // counters, and verifies there; each process's file holds the same records.
    const a = JSON.parse(run(['audit', 'verify', '--json']).stdout) as { ok: boolean; decisionLogs: { source: string; records: number }[] };
    expect(a.ok).toBe(true);
    expect(a.decisionLogs.map((l) => l.source).sort()).toEqual(['main', 'worker-0', 'worker-1'].map((id) => `postgresql smki_cli.log_lines ${id}`));
    expect(a.decisionLogs.reduce((n, l) => n + l.records, 0)).toBe(800);
    expect(Number(pg.psql('SELECT count(*) FROM smki_cli.log_lines').trim())).toBe(800);
    // The report reads the records from the database.
    const report = JSON.parse(run(['audit', 'report', '--json']).stdout) as { decisions: { outcome: string; code: string; count: number }[] };
    expect(report.decisions).toEqual(
      expect.arrayContaining([
        { outcome: 'accepted', code: '-', count: 400 },
        { outcome: 'rejected', code: 'ERR_COMMAND_REPLAYED', count: 400 },
      ]),
    );
    // A process's file changed (the database intact): it no longer matches the database's records.
    const mainFile = join(lab, 'log', 'main', 'decisions.log');
    const original = readFileSync(mainFile, 'utf8');
    writeFileSync(mainFile, original.replace('"counter":"', '"counter":"9'));
    const f = JSON.parse(run(['audit', 'verify', '--json']).stdout) as { ok: boolean; decisionLogs: { source: string; findings: { code: string; message: string }[] }[] };
    expect(f.ok).toBe(false);
    expect(f.decisionLogs.find((l) => l.source.endsWith(' main'))!.findings[0]!.message).toMatch(/differs from the database's records at record 1/);
    writeFileSync(mainFile, original);
    expect(run(['audit', 'verify']).status).toBe(0);
    // A record changed in the database: the chain breaks there (and the file no longer matches).
    pg.psql("UPDATE smki_cli.log_lines SET line = replace(line, '\"counter\":\"', '\"counter\":\"1') WHERE id = 'main' AND seq = 5");
    const t = run(['audit', 'verify', '--json']);
    expect(t.status).toBe(1);
    const tb = JSON.parse(t.stdout) as { decisionLogs: { source: string; ok: boolean; findings: { code: string; line?: number }[] }[] };
    const main = tb.decisionLogs.find((l) => l.source.endsWith(' main'))!;
    expect(main.ok).toBe(false);
    expect(main.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 5 });
  }, 240_000);

  it('with the server stopped, a command that needs the store fails as worth retrying (exit 4) and changes nothing', () => {
    pg.stop('fast');
    try {
      const r = run(['device', 'show', M1]);
      expect(r.status).toBe(4);
      expect(r.stderr).toContain('ERR_STORE_UNAVAILABLE');
    } finally {
      pg.start();
    }
    expect(run(['device', 'show', M1]).status).toBe(0);
  });
});
