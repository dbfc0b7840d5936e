// The audit log's durable steps in the order they are made, seen in this process (the strace test
// sees them too, but in a child process that mutation testing cannot reach): each write is followed
// by fdatasync before the promise resolves, a new log's directory entry is synced, and every repair
// (torn line cut, committed lines written, failed batch cut back) is synced. POSIX fdatasync/fsync.
// Also what the process is left holding: file handles closed, no group-commit timer left running,
// and a short write (POSIX write(2) may write fewer bytes than asked) continued, not lost.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseEui64 } from '@smki/core';
import { AUDIT_LOG_FILE, AuditLog, deriveAuditKey, verifyAuditLog } from '../src/audit.js';
import { fsyncDirectory } from '../src/internal/fsutil.js';

vi.mock('../src/internal/fsutil.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/internal/fsutil.js')>();
  return { ...real, fsyncDirectory: vi.fn(real.fsyncDirectory) };
});

const KEY = deriveAuditKey(new Uint8Array(32).fill(7));
const DEV = parseEui64('00DB1234567890A0');
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'smki-audit-d-'));
  dirs.push(d);
  return d;
};

/** The write, datasync and truncate calls on every FileHandle, in order. */
const calls: string[] = [];
/** When set, a write of more bytes than this writes only this many (as write(2) may). */
let shortWrites: number | undefined;
let proto: Record<string, (...a: unknown[]) => Promise<unknown>>;
beforeAll(async () => {
  const probe = await open(import.meta.filename ?? new URL(import.meta.url).pathname, 'r');
  proto = Object.getPrototypeOf(probe) as typeof proto;
  await probe.close();
  for (const m of ['write', 'datasync', 'truncate'] as const) {
    const original = proto[m]!;
    vi.spyOn(proto, m).mockImplementation(function (this: FileHandle, ...args: unknown[]) {
      calls.push(m === 'truncate' ? `truncate ${String(args[0])}` : m);
      if (m === 'write' && shortWrites !== undefined) {
        const [buf, off, len, pos] = args as [Buffer, number, number, number | null];
        // only a valid request is shortened: a bad one goes to Node as it is, and is refused there
        if (off + len <= buf.length && len > shortWrites) return original.call(this, buf, off, shortWrites, pos);
      }
      return original.apply(this, args);
    });
  }
});
afterEach(() => {
  calls.length = 0;
  shortWrites = undefined;
  vi.mocked(fsyncDirectory).mockClear();
  vi.useRealTimers();
});
afterAll(() => {
  vi.restoreAllMocks();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('what is synced, and when', () => {
  it('a new log: its directory entry is synced once; an existing log: not again', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY });
    expect(vi.mocked(fsyncDirectory).mock.calls).toEqual([[dir]]);
    await log.close();
    vi.mocked(fsyncDirectory).mockClear();
    await (await AuditLog.open(dir, { key: KEY })).close();
    expect(fsyncDirectory).not.toHaveBeenCalled();
  });

  it('a durable append is written and synced before it resolves; a use record only at the flush', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY, groupCommitMs: 10_000 });
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    expect(calls).toEqual(['write', 'datasync']);
    await log.append({ type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'p', device: DEV }, { durable: false });
    expect(calls).toEqual(['write', 'datasync']);
    await log.flush();
    expect(calls).toEqual(['write', 'datasync', 'write', 'datasync']);
    await log.flush(); // nothing waiting: nothing written
    expect(calls).toHaveLength(4);
    await log.close();
  });

  it('staged lines are written and synced by commitStaged', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY });
    await log.stage([{ type: 'key.csr', keyId: 'K1' }]);
    expect(calls).toEqual([]);
    await log.commitStaged();
    expect(calls).toEqual(['write', 'datasync']);
    await log.close();
  });

  it('a torn line is cut and the cut synced; committed lines are written and synced, on open', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY });
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    const head = log.head();
    const s = await log.stage([{ type: 'key.csr', keyId: 'K2' }]);
    log.abortStaged();
    await log.close();
    appendFileSync(join(dir, AUDIT_LOG_FILE), '{"seq":2,"at"');
    calls.length = 0;
    const again = await AuditLog.open(dir, { key: KEY, head: s.after, intent: s });
    expect(calls).toEqual([`truncate ${head.bytes}`, 'datasync', 'write', 'datasync']);
    await again.close();
  });

  it('a failed write is cut back to the last synced record, and the cut synced', async () => {
    let armed = false;
    const log = await AuditLog.open(tempDir(), {
      key: KEY,
      fault: (p) => {
        if (armed && p === 'audit:after-write') throw new Error('EIO');
      },
    });
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    const good = log.head();
    armed = true;
    calls.length = 0;
    await expect(log.append({ type: 'key.csr', keyId: 'K2' }, { durable: true })).rejects.toMatchObject({ code: 'ERR_AUDIT_WRITE_FAILED' });
    expect(calls).toEqual(['write', `truncate ${good.bytes}`, 'datasync']);
    await log.close();
  });
});

describe('what the process is left holding', () => {
  const use = { type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'p', device: DEV } as const;

  it('one group-commit timer per window, whatever the number of use records; none left after a flush, a durable append or close', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const log = await AuditLog.open(tempDir(), { key: KEY, groupCommitMs: 10_000 });
    for (let i = 0; i < 3; i++) await log.append(use, { durable: false });
    expect(vi.getTimerCount()).toBe(1);
    await log.flush();
    expect(vi.getTimerCount()).toBe(0);
    await log.append(use, { durable: false });
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    expect(vi.getTimerCount()).toBe(0);
    await log.append(use, { durable: false });
    expect(vi.getTimerCount()).toBe(1);
    await log.close(); // a timer left running would keep the process alive for the window
    expect(vi.getTimerCount()).toBe(0);
    expect(calls.filter((c) => c === 'write')).toHaveLength(3);
  });

  it('close closes the log’s file, and verifyAuditLog the file it read', async () => {
    // the handles are seen where they are read: AuditLog.open and verifyAuditLog both read the log
    const seen: FileHandle[] = [];
    const read = proto['read']!;
    const spy = vi.spyOn(proto, 'read').mockImplementation(function (this: FileHandle, ...args: unknown[]) {
      if (!seen.includes(this)) seen.push(this);
      return read.apply(this, args);
    });
    try {
      const log = await AuditLog.open(tempDir(), { key: KEY });
      await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.fd).toBeGreaterThanOrEqual(0);
      await log.close();
      expect(seen[0]!.fd).toBe(-1);
      expect(await verifyAuditLog(log.path, { key: KEY, head: log.head() })).toMatchObject({ ok: true });
      expect(seen).toHaveLength(2);
      expect(seen[1]!.fd).toBe(-1);
    } finally {
      spy.mockRestore();
    }
  });

  it('a short write is continued where it stopped: appends, and the committed lines written on open', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY });
    shortWrites = 40;
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    const s = await log.stage([{ type: 'key.csr', keyId: 'K2' }]);
    log.abortStaged();
    await log.close();
    const appendWrites = calls.filter((c) => c === 'write').length;
    expect(appendWrites).toBeGreaterThan(1);
    const again = await AuditLog.open(dir, { key: KEY, head: s.after, intent: s });
    expect(again.recovery.intentLinesWritten).toBe(1);
    expect(calls.filter((c) => c === 'write').length - appendWrites).toBeGreaterThan(1);
    await again.close();
    expect(await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head: s.after })).toMatchObject({ ok: true, count: 2 });
  });
});
