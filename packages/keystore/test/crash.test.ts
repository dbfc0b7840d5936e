// Durability and faults: a process killed at any point while generating, rotating, moving or
// revoking leaves the store in the old state or the new one, never half-way. A child process is
// killed (SIGKILL) after every write, fsync and rename of the key file, the audit log and the
// metadata, and between them; the parent then reopens the store and checks it.
//
// A kill leaves every write whole in the page cache; what it cannot show is a write that reached
// the disk only in part (a power cut before the fdatasync), nor whether the fsyncs happen at all
// (durability-strace.test.ts watches those). The audit log writes each batch in one call, fault
// hook or not, so the torn final line of such a power cut is made here: after a kill at
// audit:after-write the test cuts the log inside its last line, and the reopen must remove the
// torn bytes (the recovery rule), say so in its store.opened record, and survive a kill of its own.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileKeyBackend } from '../src/backends/file.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_crash-child.ts');
const PASS = 'crash-test passphrase';
const SUPPLIER = '90B3D51F30010000';
const M1 = '00DB1234567890A1';
const M2 = '00DB1234567890A2';
const work = mkdtempSync(join(tmpdir(), 'smki-crash-'));
const base = join(work, 'base');
afterAll(() => rmSync(work, { recursive: true, force: true }));

function child(dir: string, phase: string, op: string, point: string, nth = 1, env: NodeJS.ProcessEnv = process.env): { status: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, dir, phase, op, point, String(nth)], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env });
  return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout };
}

/** The fault points one run passes (`phase` op or reopen, from `from`), in order, with their occurrence numbers. */
function pointsOf(op: string, phase = 'op', from = base, tag = `record-${op}`): [string, number][] {
  const dir = join(work, tag);
  cpSync(from, dir, { recursive: true });
  const r = child(dir, phase, op, 'record');
  expect(r.status, r.stderr).toBe(0);
  const seen = new Map<string, number>();
  return (JSON.parse(readFileSync(join(dir, 'points.json'), 'utf8')) as string[]).map((p) => {
    const n = (seen.get(p) ?? 0) + 1;
    seen.set(p, n);
    return [p, n];
  });
}

beforeAll(() => {
  const r = child(base, 'setup', '-', '-');
  expect(r.status, r.stderr).toBe(0);
}, 180_000);

async function reopen(dir: string) {
  const backend = await FileKeyBackend.open({ directory: dir, passphrase: PASS });
  const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS });
  return { backend, store };
}

type Check = (store: KeyStore, backend: FileKeyBackend) => Promise<'old' | 'new'>;

/** Reopen a store left by a killed child, check it holds the old or the new state of `op`, use it, close it and verify its trail. */
async function reopenAndCheck(dir: string, op: string, label: string): Promise<'old' | 'new'> {
  const { backend, store } = await reopen(dir);
  let outcome: 'old' | 'new';
  try {
    outcome = await CHECKS[op]!(store, backend);
    // still usable: M1 is signed for, and the trail verifies
    expect(await store.signFor(M1, new Uint8Array([1, 2, 3])), label).toHaveLength(64);
  } finally {
    await store.close();
    await backend.close();
  }
  const verdict = await KeyStore.verifyAuditTrail(dir, PASS);
  expect(verdict.findings, label).toEqual([]);
  expect(verdict.ok, label).toBe(true);
  return outcome;
}

/** The audit log's records (every line must be a complete JSON record). */
function auditRecords(dir: string): Record<string, unknown>[] {
  const text = readFileSync(join(dir, 'audit.log'), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Cut the log inside its last line, as a power cut leaves a batch that reached the disk in part:
 * `at` 'first' keeps one byte of the line, 'half' half of it, 'all-but-newline' all but its `\n`.
 * @returns the torn bytes left (what the recovery rule must remove)
 */
function tearLastLine(dir: string, at: 'first' | 'half' | 'all-but-newline'): number {
  const path = join(dir, 'audit.log');
  const bytes = readFileSync(path);
  expect(bytes.at(-1)).toBe(0x0a);
  const last = bytes.lastIndexOf(0x0a, bytes.length - 2) + 1;
  const keep = at === 'first' ? 1 : at === 'half' ? (bytes.length - last) >> 1 : bytes.length - last - 1;
  truncateSync(path, last + keep);
  return keep;
}

const CHECKS: Record<string, Check> = {
  async generate(store, backend) {
    const keys = store.keys(SUPPLIER).filter((k) => k.portfolioId === 'south' && k.purpose === 'keyAgreement');
    if (keys.length === 0) {
      // old state: at most an orphan key file the metadata never referenced
      expect(store.orphanHandles().length).toBeLessThanOrEqual(1);
      return 'old';
    }
    expect(keys).toHaveLength(1);
    expect(keys[0]!.state).toBe('pending');
    expect(Buffer.from(await backend.publicKey(keys[0]!.handle)).toString('hex').toUpperCase()).toBe(keys[0]!.publicKey);
    expect(store.orphanHandles()).toEqual([]);
    return 'new';
  },
  async rotate(store) {
    const current = store.portfolio(SUPPLIER, 'north').current.signing;
    const g2 = store.key(`${SUPPLIER}.north.DS.g2`);
    if (current === `${SUPPLIER}.north.DS.g1`) {
      expect(g2.state).toBe('pending');
      return 'old';
    }
    expect(current).toBe(g2.keyId);
    expect(g2.state).toBe('active');
    return 'new';
  },
  async move(store) {
    const p = store.device(SUPPLIER, M2).portfolioId;
    expect(['north', 'south']).toContain(p);
    expect((store.portfolio(SUPPLIER, 'north').devices as readonly string[]).includes(M2)).toBe(p === 'north');
    return p === 'north' ? 'old' : 'new';
  },
  async revoke(store) {
    const k = store.key(`${SUPPLIER}.south.DS.g1`);
    const current = store.portfolio(SUPPLIER, 'south').current.signing;
    if (k.state === 'active') {
      expect(current).toBe(k.keyId);
      return 'old';
    }
    expect(k.state).toBe('revoked');
    expect(current).toBeUndefined();
    return 'new';
  },
};

describe.each(Object.keys(CHECKS))('killed during %s', (op) => {
  let points: [string, number][] = [];

  it('leaves the old state or the new one at every fault point, and the store keeps working', async () => {
    points = pointsOf(op);
    expect(points.length).toBeGreaterThanOrEqual(6); // audit, metadata (and key file) write/fsync/rename points
    expect(points.map(([p]) => p)).not.toContain('audit:partial-write'); // one write call per batch, as in production
    const outcomes: string[] = [];
    for (const [point, nth] of points) {
      const dir = join(work, `${op}-${point.replace(/[^a-z0-9-]/gi, '_')}-${nth}`);
      cpSync(base, dir, { recursive: true });
      const r = child(dir, 'op', op, point, nth);
      expect(r.signal, `${point}#${nth}: ${r.stderr}`).toBe('SIGKILL');
      outcomes.push(`${point}#${nth}:${await reopenAndCheck(dir, op, `${point}#${nth}`)}`);
    }
    // the kill points cover both sides: some crashes leave the old state, the last ones the new
    expect(outcomes.some((o) => o.endsWith(':old'))).toBe(true);
    expect(outcomes.some((o) => o.endsWith(':new'))).toBe(true);
  }, 600_000);

  it('a batch that reached the disk in part (torn final audit line) is cut off on reopen, and the trail says how many bytes', async () => {
    if (points.length === 0) points = pointsOf(op);
    const writes = points.filter(([p]) => p === 'audit:after-write');
    expect(writes.length, 'the operation writes the audit log').toBeGreaterThan(0);
    for (const [point, nth] of writes) {
      const killed = join(work, `${op}-torn-${nth}`);
      cpSync(base, killed, { recursive: true });
      const r = child(killed, 'op', op, point, nth);
      expect(r.signal, `${point}#${nth}: ${r.stderr}`).toBe('SIGKILL');
      for (const at of ['first', 'half', 'all-but-newline'] as const) {
        const dir = join(work, `${op}-torn-${nth}-${at}`);
        cpSync(killed, dir, { recursive: true });
        const torn = tearLastLine(dir, at);
        const label = `${point}#${nth}, torn (${at}, ${torn} bytes)`;
        await reopenAndCheck(dir, op, label);
        // the reopen removed the torn bytes and recorded it (AuditLog.open, the recovery rule)
        const opened = auditRecords(dir).filter((x) => x.type === 'store.opened');
        expect(opened.at(-1)?.tornBytesRemoved, label).toBe(torn);
      }
    }
  }, 600_000);
});

// A kill during that recovery (before or after the truncation, or while the store.opened record
// or the metadata is written): the next open still recovers, the trail verifies. The torn line is
// the last record whatever the operation, so one operation (generate: key file, audit log and
// metadata) stands for all.
describe('killed while reopening a store whose audit log ends in a torn line', () => {
  it('every fault point of the reopen leaves a store that opens in the old or the new state', async () => {
    const op = 'generate';
    const killed = join(work, 'reopen-torn-base');
    cpSync(base, killed, { recursive: true });
    const r0 = child(killed, 'op', op, 'audit:after-write', 1);
    expect(r0.signal, r0.stderr).toBe('SIGKILL');
    const torn = tearLastLine(killed, 'half');
    const points = pointsOf('-', 'reopen', killed, 'record-reopen');
    const names = points.map(([p]) => p);
    expect(names).toContain('audit:recover-before-truncate');
    expect(names).toContain('audit:recover-after-truncate');
    const truncatedAt = names.indexOf('audit:recover-after-truncate');
    for (const [i, [point, nth]] of points.entries()) {
      const dir = join(work, `reopen-${point.replace(/[^a-z0-9-]/gi, '_')}-${nth}`);
      cpSync(killed, dir, { recursive: true });
      const r = child(dir, 'reopen', '-', point, nth);
      expect(r.signal, `${point}#${nth}: ${r.stderr}`).toBe('SIGKILL');
      await reopenAndCheck(dir, op, `reopen killed at ${point}#${nth}`);
      const removed = auditRecords(dir)
        .filter((x) => x.type === 'store.opened')
        .map((x) => x.tornBytesRemoved);
      // Killed before the truncation: the next open finds the torn line and reports it.
      if (i < truncatedAt) expect(removed.at(-1), `${point}#${nth}`).toBe(torn);
    }
  }, 600_000);
});

// The HSM: the key pair is made on the token, then recorded in the audit log and the metadata. A
// kill between token object and metadata leaves an unreferenced token key (reported, never used)
// and the old state. Each run gets a copy of the token directory, named by its own softhsm2.conf.
describe('HSM (SoftHSM2): killed during generate', () => {
  const hsmBase = join(work, 'hsm-base');
  const token = `crash-${randomBytes(3).toString('hex')}`;
  const pin = randomBytes(8).toString('hex');
  const envFor = (dir: string): NodeJS.ProcessEnv => {
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`, { mode: 0o600 });
    return { ...process.env, SOFTHSM2_CONF: conf, SMKI_CRASH_BACKEND: 'pkcs11', SMKI_CRASH_TOKEN: token, SMKI_CRASH_PIN: pin };
  };

  beforeAll(() => {
    mkdirSync(join(hsmBase, 'tokens'), { recursive: true, mode: 0o700 });
    const env = envFor(hsmBase);
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', token, '--so-pin', randomBytes(8).toString('hex'), '--pin', pin], { env, stdio: 'pipe' });
    const r = child(hsmBase, 'setup', '-', '-', 1, env);
    expect(r.status, r.stderr).toBe(0);
  }, 180_000);

  it('leaves the old state (at most an orphan token key) or the new one at every fault point', () => {
    const rec = join(work, 'hsm-record');
    cpSync(hsmBase, rec, { recursive: true });
    const r0 = child(rec, 'op', 'generate', 'record', 1, envFor(rec));
    expect(r0.status, r0.stderr).toBe(0);
    const seen = new Map<string, number>();
    const points = (JSON.parse(readFileSync(join(rec, 'points.json'), 'utf8')) as string[]).map((p) => {
      const n = (seen.get(p) ?? 0) + 1;
      seen.set(p, n);
      return [p, n] as const;
    });
    expect(points.map(([p]) => p)).toContain('pkcs11:after-generate');
    const outcomes: string[] = [];
    for (const [point, nth] of points) {
      const dir = join(work, `hsm-${point.replace(/[^a-z0-9-]/gi, '_')}-${nth}`);
      cpSync(hsmBase, dir, { recursive: true });
      const env = envFor(dir);
      const r = child(dir, 'op', 'generate', point, nth, env);
      expect(r.signal, `${point}#${nth}: ${r.stderr}`).toBe('SIGKILL');
      const c = child(dir, 'check', '-', '-', 1, env);
      expect(c.status, `${point}#${nth}: ${c.stderr}`).toBe(0);
      const [state, audit] = c.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit).toEqual({ auditOk: true, findings: 0 });
      expect(state!.signature).toBe(64);
      if ((state!.keys as string[]).length === 0) {
        expect(state!.orphans as number).toBeLessThanOrEqual(2); // the pair's private and public objects
        outcomes.push('old');
      } else {
        expect(state).toMatchObject({ keys: ['pending'], publicKeysMatch: [true], orphans: 0 });
        outcomes.push('new');
      }
    }
    expect(outcomes).toContain('old');
    expect(outcomes).toContain('new');
  }, 600_000);
});
