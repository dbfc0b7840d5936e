// Durability a kill cannot see (POSIX.1-2017 fsync, fdatasync): a SIGKILLed process leaves its
// writes in the page cache, so processes.test.ts cannot tell whether SQLite synced the commit.
// This test runs one commit under `strace -f -y` and checks that, between entering commit() and
// its return, the write-ahead log was written and then fsynced or fdatasynced (WAL mode with
// synchronous = FULL; with synchronous = NORMAL or OFF the sync is missing and this fails).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_sync-child.ts');
const work = mkdtempSync(join(tmpdir(), 'smki-store-strace-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('a SQLite commit writes the WAL and syncs it before commit() returns', () => {
  const db = join(work, 'state.db');
  const trace = join(work, 'trace.txt');
  const r = spawnSync('strace', ['-f', '-y', '-s', '32', '-e', 'trace=write,pwrite64,fsync,fdatasync', '-o', trace, process.execPath, '--import', 'tsx', CHILD, db], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const lines = readFileSync(trace, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes('MARK-BEFORE'));
  const to = lines.findIndex((l) => l.includes('MARK-AFTER'));
  expect(from).toBeGreaterThanOrEqual(0);
  expect(to).toBeGreaterThan(from);
  const during = lines.slice(from + 1, to);
  const wal = `${db}-wal>`;
  const writes = during.map((l, i) => (/\b(write|pwrite64)\(\d+</.test(l) && l.includes(wal) ? i : -1)).filter((i) => i >= 0);
  const lastWrite = writes.length === 0 ? -1 : writes[writes.length - 1]!;
  const sync = during.findIndex((l, i) => i > lastWrite && /\b(fsync|fdatasync)\(\d+</.test(l) && l.includes(wal) && / = 0$/.test(l));
  expect(lastWrite, during.join('\n')).toBeGreaterThanOrEqual(0);
  expect(sync, `no fsync/fdatasync of the WAL after its last write:\n${during.join('\n')}`).toBeGreaterThan(lastWrite);
});
