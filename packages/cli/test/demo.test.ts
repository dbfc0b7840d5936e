// `smki demo`, the README's first command: every step behaves as described (each refusal with
// its own code, the burst held), the summary is right, output has no colour off a terminal, and
// a kept state directory verifies afterwards.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { smki, tempDir } from './_smki.js';

interface DemoJson {
  meters: number;
  commands: number;
  commandsPerSecond: number;
  failures: number;
  outcomes: { outcome: string; code: string; commands: number }[];
  dir?: string;
}

const REFUSALS = [
  'ERR_COMMAND_SIGNATURE_INVALID',
  'ERR_COMMAND_REPLAYED',
  'ERR_COMMAND_PORTFOLIO_MISMATCH',
  'ERR_COMMAND_ROLE_NOT_ELIGIBLE',
  'ERR_COMMAND_UNKNOWN_DEVICE',
  'ERR_FIRMWARE_NOT_APPROVED',
  'ERR_COMMAND_SIGNER_REVOKED',
];

describe('smki demo', () => {
  it('the default demo (two portfolios of 500 meters): every step as described, one line each, no colour off a terminal', () => {
    const started = Date.now();
    const r = smki(['demo'], { env: { SMKI_KEYSTORE_PASSPHRASE: undefined } });
    const seconds = (Date.now() - started) / 1000;
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1000 meters, two portfolios/);
    expect(r.stdout).toMatch(/1100 of 1100 accepted/);
    expect(r.stdout).toMatch(/1100 of 1100 MACs verify on their meter; a frame checked by another meter fails/);
    for (const code of REFUSALS) expect(r.stdout).toContain(code);
    expect(r.stdout).toMatch(/20 accepted, 10 quarantined/);
    expect(r.stdout).toMatch(/[\d,]+ commands\/s validated and counter-signed/);
    expect(r.stdout).toMatch(/every step behaved as expected/);
    // eslint-disable-next-line no-control-regex
    expect(r.stdout + r.stderr).not.toMatch(/\x1b\[/);
    // The summary table ends the run: accepted first, then one row per code.
    const table = r.stdout.slice(r.stdout.lastIndexOf('outcome'));
    expect(table).toMatch(/accepted\s+-\s+1,120/);
    expect(table).toMatch(/quarantined\s+ERR_COMMAND_QUARANTINED\s+10/);
    // Under a minute on the machines CI uses (reported, not asserted as a speed: the bench measures speed).
    console.log(`smki demo: ${seconds.toFixed(1)} s`);
  }, 180_000);

  it('--json: one document with the outcomes by code, no failure, and --keep leaves a state directory that verifies', () => {
    const base = tempDir();
    const dir = join(base, 'state');
    const r = smki(['demo', '--meters', '30', '--keep', dir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as DemoJson;
    expect(body.failures).toBe(0);
    expect(body.meters).toBe(60);
    expect(body.commands).toBe(66);
    expect(body.commandsPerSecond).toBeGreaterThan(0);
    const codes = Object.fromEntries(body.outcomes.map((o) => [o.code, o.commands]));
    for (const code of REFUSALS) expect(codes[code]).toBe(1);
    expect(codes.ERR_COMMAND_QUARANTINED).toBe(10);
    expect(codes['-']).toBe(66 + 20);
    const passphrase = readFileSync(join(dir, 'demo-passphrase'), 'utf8').trim();
    const v = smki(['--dir', dir, 'audit', 'verify', '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: passphrase } });
    expect(v.status, v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { ok: boolean }).ok).toBe(true);
    // The kept directory is a usable state directory: its portfolios are listed.
    const p = smki(['--dir', dir, 'portfolio', 'list', '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: passphrase } });
    expect((JSON.parse(p.stdout) as { id: string; devices: number }[]).map((x) => [x.id, x.devices])).toEqual([
      ['north', 30],
      ['south', 30],
    ]);
  }, 180_000);
});
