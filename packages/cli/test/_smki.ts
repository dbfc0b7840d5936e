// Run `smki` as a user would: a separate Node process, from any working directory, with its own
// environment. The sources run through tsx with the repository's tsconfig (so @smki/* resolve to
// the packages' sources, as in every other test); `SMKI_CLI_BIN=dist` runs the built bin instead.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')).href;
const BIN_SRC = join(ROOT, 'packages', 'cli', 'src', 'bin.ts');
const BIN_DIST = join(ROOT, 'packages', 'cli', 'dist', 'bin.js');

/** The node arguments that start smki (before the smki arguments). */
export function smkiArgv(): string[] {
  return process.env.SMKI_CLI_BIN === 'dist' ? [BIN_DIST] : ['--import', TSX, BIN_SRC];
}

/** The environment of a test run: no colour unless asked, the test passphrase, the tsconfig for tsx. */
export function smkiEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'), SMKI_KEYSTORE_PASSPHRASE: PASSPHRASE, NO_COLOR: '1' };
  delete env.SMKI_DIR;
  delete env.FORCE_COLOR;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export const PASSPHRASE = 'test passphrase: correct horse battery staple';

export interface SmkiResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run smki synchronously (most tests). */
export function smki(args: readonly string[], options: { cwd?: string; env?: Record<string, string | undefined>; input?: string | Buffer; timeoutMs?: number } = {}): SmkiResult {
  const r = spawnSync(process.execPath, [...smkiArgv(), ...args], {
    cwd: options.cwd ?? tmpdir(),
    env: smkiEnv(options.env),
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run smki without blocking the test's event loop (for long runs next to a server in this process). */
export function smkiAsync(args: readonly string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<SmkiResult> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [...smkiArgv(), ...args], { cwd: options.cwd ?? tmpdir(), env: smkiEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'smki-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `smki init` into a new directory under a temp dir; returns the state directory. */
export function initLab(extra: readonly string[] = [], env: Record<string, string | undefined> = {}): string {
  const dir = join(tempDir(), 'lab');
  const r = smki(['init', dir, ...extra], { env });
  if (r.status !== 0) throw new Error(`smki init failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return dir;
}

/** Run each step against the state directory `dir`; each must exit 0 (the output shows otherwise). */
export function steps(dir: string, list: readonly (readonly string[])[], env: Record<string, string | undefined> = {}): void {
  for (const args of list) {
    const r = smki(['--dir', dir, ...args], { env });
    if (r.status !== 0) throw new Error(`smki ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }
}

/** One portfolio `north` with a certified key, a simulated meter in it, and `repeat` disconnects for it signed into `<dir>/../signed.hex`. */
export function northWithSignedDisconnects(dir: string, meter: string, repeat: number): string {
  const signed = join(dir, '..', 'signed.hex');
  steps(dir, [
    ['portfolio', 'create', 'north'],
    ['key', 'generate', 'north', '--certify'],
    ['device', 'add', meter, '--portfolio', 'north', '--simulate'],
    ['command', 'build', 'disconnect', '--device', meter, '--repeat', String(repeat), '--out', join(dir, '..', 'pre.hex')],
    ['command', 'sign', '--in', join(dir, '..', 'pre.hex'), '--out', signed],
  ]);
  return signed;
}
