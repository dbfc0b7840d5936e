/**
 * Files of `smki`: atomic writes (write, fsync, rename, fsync the directory) for state, and the
 * command encodings (hex, base64, binary; one command per line for batches).
 * @module
 * @internal
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fromBase64, fromHex, SmkiError } from '@smki/core';
import type { CliIo } from './io.js';

/** A file being written: a temporary file beside its target, renamed over it on `commit`. */
export interface PendingFile {
  /** Write `data`, fsync, rename over the target, fsync the directory. */
  commit(data: string | Uint8Array): void;
  /** Remove the temporary file (nothing is replaced). */
  abandon(): void;
}

function writeFailed(path: string, e: unknown): SmkiError {
  const errno = (e as NodeJS.ErrnoException)?.code;
  return new SmkiError('ERR_CLI_WRITE_FAILED', `${path} cannot be written${errno ? ` (${errno})` : ''}`, { detail: path });
}

/**
 * Start writing `path`: make its folder (mode 0700) and an exclusive temporary file beside it,
 * so that a path that cannot be written fails now, before any work whose only output it is.
 * @throws SmkiError `ERR_CLI_WRITE_FAILED` (a directory at `path`, no permission, …)
 */
export function beginWrite(path: string, mode = 0o600): PendingFile {
  const dir = dirname(path);
  let fd: number;
  let tmp: string;
  try {
    if (existsSync(path) && statSync(path).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    fd = openSync(tmp, 'wx', mode);
  } catch (e) {
    throw writeFailed(path, e);
  }
  let open = true;
  const abandon = () => {
    if (!open) return;
    open = false;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
  };
  return {
    commit(data) {
      if (!open) throw new SmkiError('ERR_CLI_WRITE_FAILED', `${path} was already written or abandoned`, { detail: path });
      try {
        const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
        fsyncSync(fd);
        closeSync(fd);
        open = false;
        renameSync(tmp, path);
        const dfd = openSync(dir, 'r');
        try {
          fsyncSync(dfd);
        } finally {
          closeSync(dfd);
        }
      } catch (e) {
        abandon();
        rmSync(tmp, { force: true });
        throw writeFailed(path, e);
      }
    },
    abandon,
  };
}

/**
 * Write a file so that a crash leaves the old content or the new, never a torn one.
 * @throws SmkiError `ERR_CLI_WRITE_FAILED` (nothing replaced, no temporary file left)
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  beginWrite(path, mode).commit(data);
}

/** How commands are written in files: hex or base64 text, one per line, or one binary message. */
export type Encoding = 'hex' | 'base64' | 'binary';

/** Most bytes an input file may hold (a batch of 100,000 commands in hex is about 60 MB). */
export const MAX_INPUT_BYTES = 256 * 1024 * 1024;

/** Read stdin to the end (at most {@link MAX_INPUT_BYTES}). */
async function readStdin(io: CliIo): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of io.stdin) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    n += b.length;
    if (n > MAX_INPUT_BYTES) throw new SmkiError('ERR_CLI_INPUT_INVALID', `standard input is over ${MAX_INPUT_BYTES} bytes`, {});
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Read an input file (`-` is standard input). */
export async function readInput(io: CliIo, file: string): Promise<Buffer> {
  if (file === '-') return readStdin(io);
  try {
    const buf = readFileSync(resolve(io.cwd, file));
    if (buf.length > MAX_INPUT_BYTES) throw new SmkiError('ERR_CLI_INPUT_INVALID', `the input file is over ${MAX_INPUT_BYTES} bytes`, { detail: file });
    return buf;
  } catch (e) {
    if (e instanceof SmkiError) throw e;
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the input file cannot be read', { detail: file });
  }
}

/** Decode the commands of an input: one per non-empty line (hex, base64), or the whole file (binary). */
export function decodeCommands(buf: Buffer, encoding: Encoding): Uint8Array[] {
  if (encoding === 'binary') return buf.length === 0 ? [] : [new Uint8Array(buf)];
  const out: Uint8Array[] = [];
  const lines = buf.toString('utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push(encoding === 'hex' ? fromHex(line.replace(/\s+/g, '')) : fromBase64(line));
    } catch (e) {
      if (!(e instanceof SmkiError)) throw e;
      throw new SmkiError('ERR_CLI_INPUT_INVALID', `line ${i + 1} is not ${encoding === 'hex' ? 'hexadecimal' : 'base64'} (${e.code})`, { detail: `line ${i + 1}` });
    }
  }
  return out;
}

/** Encode commands for output: one line each (hex upper case, base64), or the bytes (binary, exactly one). */
export function encodeCommands(commands: readonly (Uint8Array | undefined)[], encoding: Encoding): Buffer {
  if (encoding === 'binary') {
    if (commands.length !== 1 || commands[0] === undefined) {
      throw new SmkiError('ERR_CLI_USAGE', 'binary output holds exactly one command: use --format hex or base64 for batches', { detail: String(commands.length) });
    }
    return Buffer.from(commands[0]);
  }
  const text = commands.map((c) => (c === undefined ? '' : encoding === 'hex' ? Buffer.from(c).toString('hex').toUpperCase() : Buffer.from(c).toString('base64'))).join('\n');
  return Buffer.from(commands.length > 0 ? `${text}\n` : '', 'utf8');
}
