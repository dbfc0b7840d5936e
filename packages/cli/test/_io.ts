// An in-process `CliIo` for tests that call `run` from the package (help texts, a failing
// stdout): it captures what smki writes, and can make a write throw.
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import type { CliIo } from '../src/index.js';

/** A writable that keeps what is written; `fail(n)` tells whether the n-th write (from 0) throws. */
export interface Captured {
  text: string;
  writes: number;
}

function sink(out: Captured, fail: (n: number) => Error | undefined): NodeJS.WritableStream & { isTTY?: boolean } {
  const write = (chunk: unknown, ...rest: unknown[]): boolean => {
    const e = fail(out.writes++);
    if (e) throw e;
    out.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  };
  return { write, isTTY: false } as unknown as NodeJS.WritableStream & { isTTY?: boolean };
}

/** A capturing io; `stdoutFails(n)` may return an error to throw from the n-th stdout write. */
export function captureIo(
  options: { env?: NodeJS.ProcessEnv; cwd?: string; stdoutFails?: (n: number) => Error | undefined } = {},
): { io: CliIo; stdout: Captured; stderr: Captured } {
  const stdout: Captured = { text: '', writes: 0 };
  const stderr: Captured = { text: '', writes: 0 };
  const io: CliIo = {
    stdout: sink(stdout, options.stdoutFails ?? (() => undefined)),
    stderr: sink(stderr, () => undefined),
    stdin: Readable.from([]),
    env: options.env ?? { NO_COLOR: '1' },
    cwd: options.cwd ?? tmpdir(),
  };
  return { io, stdout, stderr };
}
