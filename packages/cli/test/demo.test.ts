// `smki demo`, the README's first command: every step behaves as described (each refusal with
// its own code, the burst held; the north key declared stolen and north's meters re-keyed by the
// Recovery party with CS02b mode 8, docs/domain.md §9, south untouched), the summary is right,
// output has no colour off a terminal, and a kept state directory verifies afterwards.
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
  recovery: { planId: string; party: string; backend: string; commands: number; sessions: number; applied: number; recorded: number; remainingBefore: number; remainingAfter: number; planState: string; southUntouched: boolean };
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
    // The recovery act: the north key declared stolen, north's meters re-keyed by the Recovery party.
    expect(r.stdout).toMatch(/✔ Recovery party 90B3D51F30000001: its own key store in recovery-party\/ \(its own passphrase; operators recovery-service, duty-officer, admin\), DS certificate [0-9A-F]+ \(role 1\); all 1000 meters hold it in their recovery cell/);
    expect(r.stdout).toMatch(/✔ north's key \S+north\.DS\.g1 revoked at once \(keyCompromise; its certificate on CRL #2\); replacement \S+north\.DS\.g2 made in backend standby .*; 500 meters still trust the stolen key/);
    expect(r.stdout).toContain("✘ the thief's copy of north's key signs a disconnect for a north meter: rejected ERR_COMMAND_SIGNER_REVOKED at path");
    expect(r.stdout).toContain("✘ a disconnect north's key signed before the theft was declared: rejected ERR_COMMAND_SIGNER_REVOKED at path");
    expect(r.stdout).toContain("✘ the mode 8 batch proposed by recovery-service without another operator's approval: the Recovery party's store refuses to sign: ERR_PROPOSAL_QUORUM_NOT_MET");
    expect(r.stdout).toMatch(/✔ 500 mode 8 commands for north's meters signed by the Recovery party in [\d.]+ s: 1 signing session\(s\), each bound to exactly its commands, proposed by recovery-service and approved by duty-officer/);
    expect(r.stdout).toContain('✔ 500 of 500 north meters applied their command');
    expect(r.stdout).toContain("✔ 500 of 500 accepted and counter-signed at the DCC (the signer checked against the Recovery party's role 1 certificate and each meter's recovery cell)");
    expect(r.stdout).toContain('the same frame again is refused (the counter is not above the recovery floor), and by a south meter (the ACB MAC does not verify)');
    expect(r.stdout).toMatch(/✔ 500 responses recorded, each verified with its meter's DS certificate \(chained to the root\): meters still trusting the stolen key 500 → 0; plan complete; its history \(\d+ events\) verifies/);
    expect(r.stdout).toMatch(/✔ south untouched: key \S+south\.DS\.g1, certificate [0-9A-F]+, its 500 meters trusting it and their cells exactly as before/);
    expect(r.stdout).toContain("✘ the stolen key again, now that north's meters trust the new one: rejected ERR_COMMAND_PORTFOLIO_MISMATCH");
    expect(r.stdout).toContain("✔ a north meter's disconnect signed with its new key: accepted");
    expect(r.stdout).toMatch(/✔ the Recovery party's trail \(\d+ records, verified with its own audit public key\): verifies/);
    expect(r.stdout).toMatch(/recovery: 500 of 500 north meters re-keyed from the stolen key through the Recovery party in [\d.]+ s \(plan complete; meters still trusting the stolen key: 0\); south untouched/);
    // No step fell short (a shortfall prints a `!` line and counts as a failure).
    expect(r.stdout).not.toMatch(/^\s+! /m);
    expect(r.stdout).toMatch(/every step behaved as expected/);
    // eslint-disable-next-line no-control-regex
    expect(r.stdout + r.stderr).not.toMatch(/\x1b\[/);
    // The summary table ends the run: accepted first, then one row per code.
    const table = r.stdout.slice(r.stdout.lastIndexOf('outcome'));
    // 1,100 + 20 reconnects + 500 mode 8 commands + one disconnect with north's new key.
    expect(table).toMatch(/accepted\s+-\s+1,621/);
    expect(table).toMatch(/rejected\s+ERR_COMMAND_SIGNER_REVOKED\s+2/);
    expect(table).toMatch(/rejected\s+ERR_COMMAND_PORTFOLIO_MISMATCH\s+2/);
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
    // Revoked: the thief's copy and a command signed before the theft; portfolio mismatch: south's
    // meter with north's key, and the stolen key once north's meters trust the new one.
    for (const code of REFUSALS) expect(codes[code]).toBe(code === 'ERR_COMMAND_SIGNER_REVOKED' || code === 'ERR_COMMAND_PORTFOLIO_MISMATCH' ? 2 : 1);
    expect(codes.ERR_COMMAND_QUARANTINED).toBe(10);
    expect(codes['-']).toBe(66 + 20 + 30 + 1);
    expect(body.recovery).toMatchObject({ party: '90B3D51F30000001', backend: 'standby', commands: 30, sessions: 1, applied: 30, recorded: 30, remainingBefore: 30, remainingAfter: 0, planState: 'complete', southUntouched: true });
    const passphrase = readFileSync(join(dir, 'demo-passphrase'), 'utf8').trim();
    const v = smki(['--dir', dir, 'audit', 'verify', '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: passphrase } });
    expect(v.status, v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { ok: boolean }).ok).toBe(true);
    // The kept directory holds the Recovery party, opened with its own passphrase (never the supplier's), and the completed plan.
    const recoveryPassphrase = readFileSync(join(dir, 'demo-recovery-passphrase'), 'utf8').trim();
    expect(recoveryPassphrase).not.toBe(passphrase);
    const party = smki(['--dir', dir, 'recovery', 'party', 'show', '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: passphrase, SMKI_RECOVERY_PASSPHRASE: recoveryPassphrase } });
    expect(party.status, party.stderr).toBe(0);
    expect(JSON.parse(party.stdout)).toMatchObject({ dir: join(dir, 'recovery-party'), meters: 60, accessControlled: true, party: { entityId: '90B3D51F30000001' } });
    const status = smki(['--dir', dir, 'recovery', 'status', body.recovery.planId, '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: passphrase } });
    expect(JSON.parse(status.stdout)).toMatchObject({ plan: { state: 'complete', route: 'compromise' }, remaining: { signing: 0 } });
    // The kept directory is a usable state directory: its portfolios are listed.
    const p = smki(['--dir', dir, 'portfolio', 'list', '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: passphrase } });
    expect((JSON.parse(p.stdout) as { id: string; devices: number }[]).map((x) => [x.id, x.devices])).toEqual([
      ['north', 30],
      ['south', 30],
    ]);
  }, 180_000);
});
