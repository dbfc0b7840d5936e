// Durability that a kill cannot see. POSIX.1-2017 fsync() and rename(): data written to a file is
// on stable storage only once fsync (or fdatasync) of that file returned, and a rename (or a file
// created) in a directory survives a power cut only once the directory itself was fsynced. A
// SIGKILLed process leaves its writes in the page cache, so the crash tests (crash.test.ts) cannot
// tell whether an fsync happened; this test watches the system calls instead. It runs generate, rotate,
// move, revoke (encrypted-file backend: key files are written too) and an audit commit (a sign
// and `flush()`) under `strace -f -y` and checks, step by step:
//   - per file written atomically (the metadata `store.json`, a key file): write(s) to a temporary
//     file -> fsync/fdatasync of that same fd -> rename onto the final name -> fsync of the
//     directory -> only then what depends on it (the metadata names the key file) and the step's end;
//   - the audit log: the record's append write (one write call) -> fdatasync of the log, before
//     the operation's promise resolves; a use record (group-committed, so not written when `sign`
//     returns) is written and synced before `flush()` resolves.
// Each assertion names the source statement it protects (see PROTECTS); removing that statement
// makes the assertion fail.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_strace-child.ts');
const work = mkdtempSync(join(tmpdir(), 'smki-strace-'));
const store = join(work, 'store');
const keysDir = join(store, 'keys');
const metadataPath = join(store, 'store.json');
const auditPath = join(store, 'audit.log');
const markerPath = join(work, 'markers');
const tracePath = join(work, 'trace.txt');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * The statements these assertions protect: file, the line that opens the function, and the
 * statement in it (located at run time, so the failure message gives the line number).
 */
const PROTECTS = {
  fileFsync: ['packages/keystore/src/internal/fsutil.ts', 'export function atomicWriteFile(', 'fsyncSync(fd);'],
  dirFsync: ['packages/keystore/src/internal/fsutil.ts', 'export function atomicWriteFile(', 'fsyncDirectory(dir);'],
  auditSync: ['packages/keystore/src/audit.ts', 'async #writePending(', 'await this.#fh.datasync();'],
} as const;

function protects(what: keyof typeof PROTECTS): string {
  const [file, fn, statement] = PROTECTS[what];
  let where: string = file;
  try {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    const from = lines.findIndex((l) => l.includes(fn));
    // (a statement commented out is still found: that is when the message is read)
    const i = from < 0 ? -1 : lines.findIndex((l, j) => j > from && l.trim().replace(/^\/\/\s*/, '') === statement);
    if (i >= 0) where = `${file}:${i + 1}`;
  } catch {
    /* the message names the file without a line */
  }
  return `protects ${where} (${fn.replace(/^export |\($/g, '')}: \`${statement}\`)`;
}

// ---- strace output ----------------------------------------------------------------------------

/** One system call, joined from its `<unfinished ...>` and `<... resumed>` halves where strace split it. */
interface Call {
  readonly pid: number;
  readonly name: string;
  /** The argument text between the parentheses. */
  readonly args: string;
  /** The return value text (after `= `). */
  readonly ret: string;
  /**
   * Index of the line where the call was entered, and of the line where it returned. strace
   * prints a return while the thread is stopped at the system call's exit, before it runs on, so
   * a call whose `end` is below another's `start` had returned before that one was entered, even
   * on another thread (the thread pool's writes and syncs against the main thread's markers).
   */
  readonly start: number;
  readonly end: number;
}

/**
 * Parse `strace -f -y` output. Lines are `<pid> <call>` (the pid may be absent when one process
 * was traced); a call interrupted by another thread's is printed as `name(args <unfinished ...>`
 * and completed later, on another line, as `<... name resumed>rest) = ret`. Signals (`---`) and
 * exits (`+++`) are skipped.
 */
function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<number, { name: string; head: string; start: number }>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(?:\[pid\s+)?(\d+)\]?\s+(.*)$/.exec(lines[i]!) ?? (lines[i] ? [lines[i]!, '0', lines[i]!] : undefined);
    if (!m) continue;
    const pid = Number(m[1]);
    const body = m[2]!;
    if (body.startsWith('+++') || body.startsWith('---')) continue;
    let full: string;
    let start = i;
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(body);
    if (resumed) {
      const p = pending.get(pid);
      if (!p || p.name !== resumed[1]) throw new Error(`strace line ${i + 1}: ${resumed[1]} resumed without its start: ${body}`);
      pending.delete(pid);
      full = p.head + resumed[2]!;
      start = p.start;
    } else if (body.endsWith('<unfinished ...>')) {
      const head = body.slice(0, -'<unfinished ...>'.length).trimEnd();
      const name = /^(\w+)\(/.exec(head)?.[1];
      if (!name) throw new Error(`strace line ${i + 1}: cannot read ${body}`);
      pending.set(pid, { name, head, start: i });
      continue;
    } else {
      full = body;
    }
    const c = /^(\w+)\((.*)\)\s+=\s+(.*)$/s.exec(full);
    if (!c) {
      if (/^\w+\(/.test(full) && /= \?$/.test(full)) continue; // a call the process did not return from (exit)
      throw new Error(`strace line ${i + 1}: cannot read ${full}`);
    }
    calls.push({ pid, name: c[1]!, args: c[2]!, ret: c[3]!, start, end: i });
  }
  return calls;
}

/** Undo strace's C-style string escapes. */
function unescape(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', v: '\v', f: '\f' } as Record<string, string>)[e] ?? e;
  });
}

/** The quoted strings among a call's arguments, unescaped. */
function strings(args: string): string[] {
  return [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unescape(m[1]!));
}

/** The `index`th fd-valued argument (0 = the first; `AT_FDCWD` counts) as `-y` prints it: number and path. */
function fdArg(call: Call, index = 0): { fd: number; path: string } | undefined {
  const parts = call.args.split(/,\s*(?=(?:-?\d+|AT_FDCWD)<)/);
  const m = /^(-?\d+|AT_FDCWD)<((?:[^>\\]|\\.)*)>/.exec(parts[index]?.trim() ?? '');
  return m ? { fd: m[1] === 'AT_FDCWD' ? -100 : Number(m[1]), path: unescape(m[2]!) } : undefined;
}

const WRITES = new Set(['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2']);
const SYNCS = new Set(['fsync', 'fdatasync']);
// A key file is published by link(2), which fails when the name exists (never replaced); the
// metadata by rename(2), which replaces it. Both are the step that makes the file visible.
const RENAMES = new Set(['rename', 'renameat', 'renameat2', 'link', 'linkat']);
const OPENS = new Set(['openat', 'open', 'creat']);

/** A rename's source and target, resolved against the directory fds `-y` names. */
function renamePaths(c: Call): { from: string; to: string } {
  const [a, b] = strings(c.args) as [string, string];
  if (c.name === 'rename' || c.name === 'link') return { from: resolve(a), to: resolve(b) };
  const d1 = fdArg(c, 0)?.path ?? '/';
  const d2 = fdArg(c, 1)?.path ?? '/';
  return { from: resolve(d1, a), to: resolve(d2, b) };
}

function openPath(c: Call): string {
  const [p] = strings(c.args) as [string];
  return c.name === 'openat' ? resolve(fdArg(c, 0)?.path ?? '/', p) : resolve(p);
}

function retFd(c: Call): number {
  return Number(/^(-?\d+)/.exec(c.ret)?.[1] ?? -1);
}

const onFile = (c: Call, path: string, fd?: number): boolean => {
  const a = fdArg(c);
  return a !== undefined && a.path === path && (fd === undefined || a.fd === fd);
};

const show = (calls: readonly Call[]): string => calls.map((c) => `${c.start}-${c.end} [${c.pid}] ${c.name}(${c.args.slice(0, 120)}) = ${c.ret}`).join('\n');

// ---- the run ----------------------------------------------------------------------------------

let calls: Call[] = [];
const steps = new Map<string, { begin: number; end: number; calls: Call[] }>();

/** Why the traced run could not be made (no strace, no ptrace, the child failed); every test then fails with it, none is skipped. */
let setupError: unknown;

beforeAll(() => {
  try {
    traceTheChild();
  } catch (e) {
    setupError = e;
  }
}, 240_000);

function traceTheChild(): void {
  const v = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) {
    throw new Error(
      `strace is not installed (${v.error?.message ?? v.stderr}). This test watches the store's system calls and must not be skipped: ` +
        'install it with `bash scripts/bootstrap.sh` (ensure_strace) or `apt-get install strace`.',
    );
  }
  const setup = spawnSync(process.execPath, ['--import', 'tsx', CHILD, store, 'setup'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  expect(setup.status, setup.stderr).toBe(0);
  const traced = ['openat', 'open', 'creat', 'close', ...WRITES, ...SYNCS, 'sync_file_range', 'syncfs', ...RENAMES, 'unlink', 'unlinkat', 'ftruncate', 'io_uring_setup'];
  const r = spawnSync(
    'strace',
    ['-f', '-qq', '-y', '-s', '200', '-o', tracePath, '-e', `trace=${traced.join(',')}`, process.execPath, '--import', 'tsx', CHILD, store, 'trace', markerPath],
    // libuv can submit file I/O through io_uring, which strace cannot see: keep it to system calls.
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, UV_USE_IO_URING: '0' } },
  );
  if (r.error) throw new Error(`could not run strace: ${r.error.message}`);
  if (r.status !== 0 && /ptrace|Operation not permitted/i.test(r.stderr)) {
    throw new Error(
      `strace could not trace the child (${r.stderr.trim()}). ptrace must be allowed: run as root or with CAP_SYS_PTRACE, ` +
        'check kernel.yama.ptrace_scope, and in a container allow ptrace in its seccomp profile.',
    );
  }
  expect(r.status, `the traced child failed:\n${r.stderr}`).toBe(0);
  calls = parseStrace(readFileSync(tracePath, 'utf8'));
  expect(calls.filter((c) => c.name === 'io_uring_setup' && retFd(c) >= 0), 'libuv used io_uring: file I/O is invisible to strace').toEqual([]);
  const markers = calls.filter((c) => WRITES.has(c.name) && onFile(c, markerPath));
  for (const m of markers) {
    const [text] = strings(m.args);
    const mm = /^SMKI-STEP (begin|end) (\w+)\n$/.exec(text ?? '');
    if (!mm) throw new Error(`unexpected marker ${text}`);
    const s = steps.get(mm[2]!) ?? { begin: -1, end: -1, calls: [] };
    if (mm[1] === 'begin') s.begin = m.end;
    else s.end = m.start;
    steps.set(mm[2]!, s);
  }
  for (const s of steps.values()) s.calls = calls.filter((c) => c.start > s.begin && c.end < s.end);
  expect([...steps.keys()]).toEqual(['generate', 'rotate', 'move', 'revoke', 'sign', 'flush']);
}

function step(name: string): { begin: number; end: number; calls: Call[] } {
  if (setupError !== undefined) throw setupError;
  const s = steps.get(name);
  if (!s || s.begin < 0 || s.end < 0) throw new Error(`no markers for step ${name}`);
  return s;
}

/**
 * Check one atomic write whose rename lands on `finalPath` within the step: open of a fresh
 * temporary file (O_CREAT|O_EXCL) -> writes on that fd -> fsync/fdatasync of that fd -> rename ->
 * fsync of the directory, the last ending before `deadline`. Returns the rename and the directory
 * sync, for ordering against what depends on the file.
 */
function checkAtomicWrite(name: string, finalPath: string, deadline: number): { rename: Call; dirSync: Call; written: number } {
  const s = step(name);
  const renames = s.calls.filter((c) => RENAMES.has(c.name) && renamePaths(c).to === finalPath);
  expect(renames, `${name}: one rename onto ${basename(finalPath)}\n${show(s.calls)}`).toHaveLength(1);
  const rename = renames[0]!;
  expect(rename.ret, `${name}: the rename succeeded`).toMatch(/^0\b/);
  const tmp = renamePaths(rename).from;
  expect(dirname(tmp), `${name}: the temporary file is in the target's directory`).toBe(dirname(finalPath));

  const opens = s.calls.filter((c) => OPENS.has(c.name) && c.end < rename.start && openPath(c) === tmp);
  expect(opens, `${name}: ${basename(tmp)} opened once`).toHaveLength(1);
  const open = opens[0]!;
  expect(open.args, `${name}: the temporary file is created fresh`).toMatch(/O_CREAT/);
  expect(open.args).toMatch(/O_EXCL/);
  const fd = retFd(open);
  expect(fd).toBeGreaterThanOrEqual(0);

  const writes = s.calls.filter((c) => WRITES.has(c.name) && c.start > open.end && onFile(c, tmp, fd));
  expect(writes.length, `${name}: the content is written to ${basename(tmp)}`).toBeGreaterThan(0);
  for (const w of writes) expect(w.end, `${name}: every write to the temporary file ends before the rename`).toBeLessThan(rename.start);
  const lastWrite = Math.max(...writes.map((w) => w.end));
  const written = writes.reduce((n, w) => n + Math.max(0, retFd(w)), 0);

  // The file's own fsync: without it the rename can reach the disk before the data, and a power
  // cut leaves an empty or partial file under the final name.
  const fileSyncs = s.calls.filter((c) => SYNCS.has(c.name) && onFile(c, tmp, fd) && c.start > lastWrite && c.end < rename.start && /^0\b/.test(c.ret));
  expect(fileSyncs.length, `${name}: ${basename(tmp)} is fsynced after its last write and before the rename; ${protects('fileFsync')}\n${show(s.calls)}`).toBeGreaterThan(0);

  // The directory's fsync: without it the rename itself may be lost (the old file comes back).
  const dirSyncs = s.calls.filter((c) => SYNCS.has(c.name) && onFile(c, dirname(finalPath)) && c.start > rename.end && c.end < deadline && /^0\b/.test(c.ret));
  expect(dirSyncs.length, `${name}: ${dirname(finalPath)} is fsynced after the rename of ${basename(finalPath)}, in time; ${protects('dirFsync')}\n${show(s.calls)}`).toBeGreaterThan(0);
  return { rename, dirSync: dirSyncs[0]!, written };
}

/**
 * Check the audit record of a lifecycle step: an append write to audit.log holding `type`, then
 * an fdatasync (or fsync) of the log that ends before `deadline`.
 */
function checkAuditCommit(name: string, type: string, deadline: number, from = step(name).begin): Call {
  const window = calls.filter((c) => c.start > from && c.end < step(name).end);
  const writes = window.filter((c) => WRITES.has(c.name) && onFile(c, auditPath) && (strings(c.args)[0] ?? '').includes(`"type":"${type}"`));
  expect(writes.length, `${name}: the ${type} record is appended to audit.log\n${show(window)}`).toBeGreaterThan(0);
  const w = writes[writes.length - 1]!;
  expect(String(retFd(w)), `${name}: the whole batch in one write call`).toBe(/, (\d+)$/.exec(w.args)?.[1]);
  const syncs = window.filter((c) => SYNCS.has(c.name) && onFile(c, auditPath) && c.start > w.end && c.end < deadline && /^0\b/.test(c.ret));
  expect(syncs.length, `${name}: audit.log is synced after the ${type} record's write and before it is relied on; ${protects('auditSync')}\n${show(window)}`).toBeGreaterThan(0);
  return syncs[0]!;
}

describe('durable steps in system-call order (strace)', () => {
  it('the trace reads: calls, markers, and split calls joined', () => {
    if (setupError !== undefined) throw setupError;
    expect(calls.length).toBeGreaterThan(50);
    // The parser joins a call split across threads (a synthetic sample in strace's format).
    const sample = parseStrace(
      [
        '101 fdatasync(19</x/audit.log> <unfinished ...>',
        '102 write(19</x/audit.log>, "a\\n", 2 <unfinished ...>',
        '101 <... fdatasync resumed>)            = 0',
        '102 <... write resumed>)                = 2',
        '101 +++ exited with 0 +++',
      ].join('\n'),
    );
    expect(sample.map((c) => [c.pid, c.name, c.start, c.end, c.ret])).toEqual([
      [101, 'fdatasync', 0, 2, '0'],
      [102, 'write', 1, 3, '2'],
    ]);
    expect(fdArg(sample[1]!)).toEqual({ fd: 19, path: '/x/audit.log' });
  });

  it('generate: the key file (temp write -> fsync -> link, never over an existing name -> fsync of keys/) is durable before the metadata naming it is renamed in', () => {
    const s = step('generate');
    const keyRenames = s.calls.filter((c) => RENAMES.has(c.name) && dirname(renamePaths(c).to) === keysDir);
    expect(keyRenames, 'generate: one key file linked into keys/').toHaveLength(1);
    expect(keyRenames[0]!.name, 'generate: a key file is linked (link fails on an existing name), never renamed over one').toMatch(/^link/);
    const keyFile = renamePaths(keyRenames[0]!).to;
    const metadataRename = s.calls.find((c) => RENAMES.has(c.name) && renamePaths(c).to === metadataPath);
    expect(metadataRename, 'generate: the metadata is renamed into place').toBeDefined();
    // A metadata that names a key file a power cut can lose would be a key the store cannot use.
    const key = checkAtomicWrite('generate', keyFile, metadataRename!.start);
    expect(key.written, 'generate: every byte of the key file went through the traced writes').toBe(statSync(keyFile).size);
  });

  it('generate: metadata (temp write -> fsync -> rename -> dir fsync) and audit record (write -> fdatasync), all before the promise resolves', () => {
    const s = step('generate');
    checkAtomicWrite('generate', metadataPath, s.end);
    // The audit record is written and synced before generateKey resolves. (Which of the log and
    // the metadata goes first is the store's recovery protocol, not checked here.)
    checkAuditCommit('generate', 'key.generated', s.end);
  });

  it.each([
    ['rotate', 'key.rotated'],
    ['move', 'device.moved'],
    ['revoke', 'key.revoked'],
  ])('%s: metadata (temp write -> fsync -> rename -> dir fsync) and audit record (write -> fdatasync), all before the promise resolves', (name, type) => {
    const s = step(name);
    const metadata = checkAtomicWrite(name, metadataPath, s.end);
    expect(metadata.dirSync.end).toBeLessThan(s.end);
    checkAuditCommit(name, type, s.end);
    expect(s.calls.filter((c) => RENAMES.has(c.name) && dirname(renamePaths(c).to) === keysDir), `${name}: no key file written`).toEqual([]);
  });

  it('audit commit: a use record is group-committed at sign time and written and synced before flush() resolves', () => {
    const sign = step('sign');
    const flush = step('flush');
    // Group commit: signing returns before the record is on disk (the window is 10 s).
    expect(sign.calls.filter((c) => (WRITES.has(c.name) || SYNCS.has(c.name)) && onFile(c, auditPath)), 'sign: nothing written to audit.log yet').toEqual([]);
    checkAuditCommit('flush', 'key.used', flush.end, sign.begin);
  });
});
