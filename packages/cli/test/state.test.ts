// The state directory defends what it keeps: the revocation state the next CRL is issued from is
// held against the signed lists (an entry deleted, or an older copy put back, is refused rather
// than quietly un-revoking a certificate), and a decision log is held against the head its state
// store committed (a restored store, a log cut short or rewritten).
import { copyFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initLab, northWithSignedDisconnects, smki, tempDir } from './_smki.js';
import { againstHead } from '../src/internal/commands/audit.js';

const M1 = '00DB123456789001';
let lab: string;
const at = (dir: string) => (args: string[]) => smki(['--dir', dir, ...args]);
const copyOf = (dir: string) => {
  const c = join(tempDir(), 'lab');
  cpSync(dir, c, { recursive: true });
  return c;
};

beforeAll(() => {
  lab = initLab();
  northWithSignedDisconnects(lab, M1, 4);
}, 120_000);

describe('the revocation state is held against the signed lists', () => {
  it('a deleted entry or an older copy of crl/revoked.json is refused (exit 5); the intact one works', () => {
    const dir = copyOf(lab);
    const run = at(dir);
    const before = join(tempDir(), 'revoked-before.json');
    copyFileSync(join(dir, 'crl', 'revoked.json'), before);
    const keyId = '90B3D51F30010000.north.DS.g1';
    expect(run(['key', 'revoke', keyId]).status).toBe(0);
    const after = JSON.parse(readFileSync(join(dir, 'crl', 'revoked.json'), 'utf8')) as { crlNumber: string; entries: unknown[] };
    expect(after.entries).toHaveLength(1);
    expect(run(['crl', 'issue']).status).toBe(0);
    // The entry deleted (the number kept): refused.
    const current = readFileSync(join(dir, 'crl', 'revoked.json'), 'utf8');
    writeFileSync(join(dir, 'crl', 'revoked.json'), JSON.stringify({ ...(JSON.parse(current) as object), entries: [] }));
    const r = run(['crl', 'issue']);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/ERR_CLI_STATE_INVALID: crl\/revoked.json omits serial/);
    // An older copy (before the revocation): refused by its number.
    copyFileSync(before, join(dir, 'crl', 'revoked.json'));
    const o = run(['crl', 'issue']);
    expect(o.status).toBe(5);
    expect(o.stderr).toMatch(/ERR_CLI_STATE_INVALID/);
    // Put back, it works again and the certificate stays revoked.
    writeFileSync(join(dir, 'crl', 'revoked.json'), current);
    expect(run(['crl', 'issue']).status).toBe(0);
    // The signed lists removed with the entry (nothing left to hold the state against): refused too.
    const list = readFileSync(join(dir, 'crl', 'organisation-ca.crl.pem'));
    const latest = readFileSync(join(dir, 'crl', 'revoked.json'), 'utf8');
    rmSync(join(dir, 'crl', 'organisation-ca.crl.pem'));
    writeFileSync(join(dir, 'crl', 'revoked.json'), JSON.stringify({ ...(JSON.parse(latest) as object), entries: [] }));
    const gone = run(['crl', 'issue']);
    expect(gone.status).toBe(5);
    expect(gone.stderr).toMatch(/ERR_CLI_STATE_INVALID: the signed organisation-ca.crl.pem is missing/);
    writeFileSync(join(dir, 'crl', 'organisation-ca.crl.pem'), list);
    writeFileSync(join(dir, 'crl', 'revoked.json'), latest);
    expect(run(['crl', 'issue']).status).toBe(0);
  }, 120_000);
});

describe('a decision log is held against the head its state store committed', () => {
  let used: string;
  beforeAll(() => {
    used = copyOf(lab);
    const run = at(used);
    // Two runs: the store's head after the first, then after the second.
    const half = join(used, '..', 'half.hex');
    writeFileSync(half, readFileSync(join(lab, '..', 'signed.hex'), 'utf8').split('\n').slice(0, 2).join('\n'));
    expect(run(['command', 'validate', '--in', half]).status).toBe(0);
    copyFileSync(join(used, 'state', 'state.db'), join(used, '..', 'state-after-first.db'));
    expect(run(['command', 'validate', '--in', join(lab, '..', 'signed.hex')]).status).toBe(1); // 2 replays, 2 accepted
    expect(run(['audit', 'verify']).status).toBe(0);
  }, 120_000);

  it('a state store restored from before the last run: ERR_VALIDATOR_STATE_BEHIND (exit 1)', () => {
    const dir = copyOf(used);
    for (const ext of ['', '-wal', '-shm']) {
      try {
        copyFileSync(join(used, '..', `state-after-first.db${ext}`), join(dir, 'state', `state.db${ext}`));
      } catch {
        // no WAL file to copy: the database was checkpointed
      }
    }
    const r = at(dir)(['audit', 'verify', '--json']);
    expect(r.status).toBe(1);
    const body = JSON.parse(r.stdout) as { decisionLogs: { ok: boolean; findings: { code: string }[] }[] };
    expect(body.decisionLogs[0]!.ok).toBe(false);
    expect(body.decisionLogs[0]!.findings[0]!.code).toBe('ERR_VALIDATOR_STATE_BEHIND');
  });

  it('a log cut short before the last commit: ERR_AUDIT_TRUNCATED (the chain alone cannot tell)', () => {
    const dir = copyOf(used);
    const file = join(dir, 'log', 'main', 'decisions.log');
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(6);
    // The last commit wrote records 3 to 6 (its lines are also in the store, as after a crash
    // between the two writes); cutting into the first commit's records loses them for good.
    writeFileSync(file, `${lines.slice(0, 1).join('\n')}\n`);
    const r = at(dir)(['audit', 'verify', '--json']);
    expect(r.status).toBe(1);
    const body = JSON.parse(r.stdout) as { decisionLogs: { findings: { code: string }[] }[] };
    expect(body.decisionLogs[0]!.findings[0]!.code).toBe('ERR_AUDIT_TRUNCATED');
  });
});

describe('againstHead: a log held against the store intent at every length', () => {
  const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').toUpperCase();
  const lines = ['l3', 'l4', 'l5', 'l6'];
  const intent = { id: 'main', before: { count: 2, lastHash: sha('l2'), bytes: 6 }, after: { count: 6, lastHash: sha('l6'), bytes: 18 }, lines };
  const v = (records: number) => ({ source: 'log', records, ok: true, findings: [] });
  it.each([
    [2, sha('l2'), true],
    [2, sha('other'), false],
    [4, sha('l4'), true],
    [4, sha('l5'), false],
    [6, sha('l6'), true],
    [6, sha('l5'), false],
  ])('%i records ending in the expected record: %s → ok %s', (records, last, ok) => {
    const r = againstHead(v(records), intent, { count: records, lastHash: last });
    expect(r.ok).toBe(ok);
    if (!ok) expect(r.findings[0]!.code).toBe('ERR_AUDIT_TAMPERED');
  });
  it('fewer than the last commit left, or more than the head: truncated, store behind', () => {
    expect(againstHead(v(1), intent, { count: 1, lastHash: sha('l1') }).findings[0]!.code).toBe('ERR_AUDIT_TRUNCATED');
    expect(againstHead(v(7), intent, { count: 7, lastHash: sha('l7') }).findings[0]!.code).toBe('ERR_VALIDATOR_STATE_BEHIND');
    expect(againstHead(v(3), undefined, { count: 3, lastHash: sha('l3') }).findings[0]!.code).toBe('ERR_VALIDATOR_STATE_BEHIND');
    expect(againstHead(v(0), undefined, undefined).ok).toBe(true);
  });
});
