/**
 * Output of `smki`: one JSON document (or JSON lines) with `--json`, readable lines and tables
 * otherwise; colours only on a terminal; a progress bar on stderr only when stderr is a terminal.
 * @module
 * @internal
 */
import { SingleBar } from 'cli-progress';

/** An output stream and whether it is a terminal. */
export interface CliOutput extends NodeJS.WritableStream {
  /** True when the stream is a terminal (colours, progress bars). */
  isTTY?: boolean;
}

/** Where a run reads and writes: the process's streams, or a test's. */
export interface CliIo {
  /** Standard output. */
  readonly stdout: CliOutput;
  /** Standard error. */
  readonly stderr: CliOutput;
  /** Standard input (batches read `-` from it). */
  readonly stdin: NodeJS.ReadableStream;
  /** The environment (secrets, libpq variables, `NO_COLOR`). */
  readonly env: NodeJS.ProcessEnv;
  /** The working directory relative paths are resolved against. */
  readonly cwd: string;
}

/** The process's own streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}

/** Colours (ANSI SGR) when on; plain text when off. */
export interface Paint {
  readonly on: boolean;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

/** Colours only when the stream is a terminal and neither `NO_COLOR` is set nor `--no-color` given. */
export function paintFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, allowed = true): Paint {
  const on = allowed && stream.isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb';
  const sgr = (a: number, b: number) => (s: string) => (on ? `\x1b[${a}m${s}\x1b[${b}m` : s);
  return { on, green: sgr(32, 39), red: sgr(31, 39), yellow: sgr(33, 39), bold: sgr(1, 22), dim: sgr(2, 22) };
}

/** JSON with bigints as decimal strings and byte arrays as hex. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Uint8Array) return Buffer.from(v).toString('hex').toUpperCase();
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    },
    indent,
  );
}

/** A plain-text table: a header row, a rule, and rows, columns padded; numbers right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number | bigint)[])[]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-GB') : String(c))));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || typeof r[i] === 'bigint'));
  const width = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]) => r.map((c, i) => (numeric[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd();
  return [fmt(headers), width.map((w) => '-'.repeat(w)).join('  '), ...cells.map(fmt)].join('\n');
}

/** A progress bar on stderr with rate and estimate, only when stderr is a terminal; otherwise silent. */
export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

/** Start a progress bar of `total` steps, labelled; a no-op unless stderr is a terminal and not `--json`. */
export function progress(io: CliIo, label: string, total: number, enabled = true): Progress {
  if (!enabled || io.stderr.isTTY !== true || total <= 0) return { tick() {}, stop() {} };
  const bar = new SingleBar(
    {
      stream: io.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate}/s | eta {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      fps: 10,
      noTTYOutput: false,
    },
  );
  const start = Date.now();
  let done = 0;
  let shown = 0;
  bar.start(total, 0, { rate: '0' });
  const show = () => {
    shown = Date.now();
    const secs = (shown - start) / 1000;
    bar.update(done, { rate: secs > 0 ? Math.round(done / secs).toLocaleString('en-GB') : '-' });
  };
  return {
    // Work often finishes in bursts (a batch of decisions at once): the bar is updated at most
    // every 100 ms, so that each point of its estimate buffer spans time, and at the end.
    tick(n = 1) {
      done += n;
      if (done >= total || Date.now() - shown >= 100) show();
    },
    stop() {
      if (done > 0) show();
      bar.stop();
    },
  };
}
