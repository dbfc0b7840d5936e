import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, basename } from 'node:path';
import { hostname } from 'node:os';
import { SmkiError } from '@smki/core';

/**
 * A test's hook into the durable writes: called with the name of each point between two steps
 * (e.g. `keyfile:after-fsync`), so a child process can be killed there. Never set in production.
 */
export type FaultHook = (point: string) => void;

/** Options of {@link atomicWriteFile}. */
export interface AtomicWriteOptions {
  /** File mode (default 0600: key files and metadata are for the owner only). */
  readonly mode?: number;
  /** Fault-injection hook (tests). */
  readonly fault?: FaultHook;
  /** A name for the fault points (default the file's base name). */
  readonly faultName?: string;
  /**
   * Never replace an existing file: the temporary is linked to the target (link(2) fails when the
   * target exists, atomically, whatever other process races for the name) instead of renamed over
   * it; an existing target throws `EEXIST` and nothing changes.
   */
  readonly noOverwrite?: boolean;
}

/** fsync a directory, so a rename or create in it is durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, fsc.O_RDONLY | (fsc.O_DIRECTORY ?? 0));
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write a file so that after a crash at any point it holds either its old content or the new,
 * never a mix: write a temporary file beside it (mode 0600, O_EXCL), fsync it, rename it over the
 * target, fsync the directory. Synchronous on purpose: no other async caller can interleave
 * between the steps.
 */
export function atomicWriteFile(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const fault = options.fault;
  const name = options.faultName ?? basename(path);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, options.mode ?? 0o600);
  try {
    let off = 0;
    while (off < bytes.length) {
      off += writeSync(fd, bytes, off, bytes.length - off);
      if (off < bytes.length) fault?.(`${name}:partial-write`);
    }
    fault?.(`${name}:after-write`);
    fsyncSync(fd);
    fault?.(`${name}:after-fsync`);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  if (options.noOverwrite === true) {
    try {
      linkSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
  } else {
    renameSync(tmp, path);
  }
  fault?.(`${name}:after-rename`);
  fsyncDirectory(dir);
  fault?.(`${name}:after-fsync-dir`);
}

/**
 * Read a whole file, refusing one over `maxBytes` before reading it.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an oversized file; the fs error otherwise
 */
export function readFileBounded(path: string, maxBytes: number): Buffer {
  const st = statSync(path);
  if (!st.isFile()) throw new SmkiError('ERR_INVALID_ARGUMENT', `${basename(path)} is not a regular file`, { detail: path });
  if (st.size > maxBytes) throw new SmkiError('ERR_INVALID_ARGUMENT', `${basename(path)} is over ${maxBytes} bytes`, { detail: path });
  return readFileSync(path);
}

/** Remove temporary files a crash left behind (`.<name>.<pid>.<rand>.tmp`). */
export function removeStaleTemporaries(dir: string, names: readonly string[]): void {
  for (const n of names) if (/^\..+\.\d+\.[0-9a-f]{12}\.tmp$/.test(n)) rmSync(join(dir, n), { force: true });
}

/** An exclusive lock on a store directory, held by this process. */
export interface DirectoryLock {
  /** Release the lock (idempotent). */
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take the store's lock: a `LOCK` file created with O_EXCL holding `pid@host`. One process at a
 * time may open a store; a second gets `ERR_KEYSTORE_LOCKED`. A lock left by a process that is no
 * longer running on this host is taken over (the previous holder crashed); a lock from another
 * host is never taken over (shared file systems: fail closed).
 * @throws SmkiError `ERR_KEYSTORE_LOCKED`
 */
export function lockDirectory(dir: string): DirectoryLock {
  const path = join(dir, 'LOCK');
  const me = `${process.pid}@${hostname()}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      writeSync(fd, me);
      fsyncSync(fd);
      closeSync(fd);
      fsyncDirectory(dir);
      let released = false;
      return {
        release(): void {
          if (released) return;
          released = true;
          try {
            if (readFileSync(path, 'utf8') === me) rmSync(path, { force: true });
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = '';
      try {
        holder = readFileSync(path, 'utf8');
      } catch {
        continue; // removed meanwhile: try again
      }
      const m = /^(\d+)@(.+)$/.exec(holder);
      const stale = m !== null && m[2] === hostname() && Number(m[1]) !== process.pid && !processAlive(Number(m[1]));
      if (stale && attempt === 0) {
        rmSync(path, { force: true });
        continue;
      }
      throw new SmkiError('ERR_KEYSTORE_LOCKED', `the store is in use by ${holder || 'another process'}`, { detail: holder.slice(0, 100) });
    }
  }
  throw new SmkiError('ERR_KEYSTORE_LOCKED', 'could not take the store lock', {});
}
