// `smki` in a terminal and in a pipe (docs/conventions.md, "Docs": output for people and for
// scripts). Under a pseudo-terminal (util-linux `script`), a long `command sign` or `command
// validate` draws a progress bar on stderr (label, bar, percentage, count, rate per second, time
// left) and colours its marks unless NO_COLOR is set; with plain pipes, or with --json, there is no
// bar and no escape code at all, so a script reads clean text or JSON lines.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initLab, smki, smkiArgv, smkiEnv, tempDir, type SmkiResult } from './_smki.js';

const METER = '00DB600000000001';
const COUNT = 3000;
const ESC = '\x1b';
/** Select Graphic Rendition codes that set a colour (foreground 30–39, 90–97). */
const COLOUR = /\x1b\[(?:3\d|9[0-7])m/;

let lab: string;
let dir: string;

/** A shell word. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Run smki under a pseudo-terminal; returns everything the terminal showed (stdout and stderr). */
function inTerminal(args: readonly string[], env: Record<string, string | undefined> = {}): SmkiResult {
  const command = [process.execPath, ...smkiArgv(), ...args].map(q).join(' ');
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd: dir,
    env: smkiEnv({ NO_COLOR: undefined, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40', ...env }),
    input: '',
    encoding: 'utf8',
    timeout: 180_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface BarFrame {
  label: string;
  percent: number;
  value: number;
  total: number;
  rate: number;
  eta: string;
}

/** The progress bar's frames in a terminal's output. */
function frames(out: string): BarFrame[] {
  return [...out.matchAll(/([a-z][a-z ]*?) \[[=-]{10,}\] (\d{1,3})% \| (\d+)\/(\d+) \| ([\d,]+|-)\/s \| eta ([^\s\x1b]+)/g)].map((m) => ({
    label: m[1]!,
    percent: Number(m[2]),
    value: Number(m[3]),
    total: Number(m[4]),
    rate: Number(m[5]!.replace(/,/g, '')),
    eta: m[6]!,
  }));
}

/** Seconds of an eta as cli-progress writes it (`12s`, `3m4s`, `1h2m`). */
function etaSeconds(eta: string): number {
  let s = 0;
  for (const [, n, u] of eta.matchAll(/(\d+)([hms])/g)) s += Number(n) * (u === 'h' ? 3600 : u === 'm' ? 60 : 1);
  return s;
}

describe('the progress bar and colours', () => {
  beforeAll(() => {
    lab = initLab();
    dir = tempDir('smki-tty-');
    for (const args of [['portfolio', 'create', 'north'], ['key', 'generate', 'north', '--certify'], ['device', 'add', METER, '--portfolio', 'north', '--simulate']]) {
      expect(smki([...args, '--dir', lab]).status).toBe(0);
    }
    const b = smki(['command', 'build', 'disconnect', '--device', METER, '--repeat', String(COUNT), '--out', join(dir, 'pre.hex'), '--dir', lab]);
    expect(b.status, b.stderr).toBe(0);
  }, 120_000);

  it('script(1) gives smki a terminal (the test would prove nothing otherwise)', () => {
    const r = spawnSync('script', ['-qfec', `${q(process.execPath)} -e 'process.stdout.write(String(process.stdout.isTTY && process.stderr.isTTY))'`, '/dev/null'], { input: '', encoding: 'utf8' });
    expect(r.stdout).toBe('true');
    const plain = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.stdout.isTTY === true || process.stderr.isTTY === true))'], { encoding: 'utf8' });
    expect(plain.stdout).toBe('false');
  });

  it('command sign in a terminal: the bar with label, percentage, count, rate and eta; a green mark', () => {
    const r = inTerminal(['command', 'sign', '--in', 'pre.hex', '--out', 'signed.hex', '--dir', lab]);
    expect(r.status, r.stdout).toBe(0);
    const f = frames(r.stdout);
    expect(f.length, r.stdout.slice(0, 2000)).toBeGreaterThan(1);
    expect(f.every((x) => x.label === 'signing' && x.total === COUNT)).toBe(true);
    expect(f.at(-1)).toMatchObject({ percent: 100, value: COUNT });
    expect(r.stdout).toMatch(/\d+% \| \d+\/3000 \| [\d,]+\/s \| eta \d/);
    expect(r.stdout).toContain(`${ESC}[32m✔${ESC}[39m signed ${COUNT} command(s)`);
    expect(readFileSync(join(dir, 'signed.hex'), 'utf8').split('\n')).toHaveLength(COUNT + 1);
  });

  it('command validate in a terminal: the bar moves from 0 to 100%, with a rate and an eta', () => {
    const r = inTerminal(['command', 'validate', '--in', 'signed.hex', '--out', 'frames.hex', '--dir', lab]);
    expect(r.status, r.stdout.slice(-2000)).toBe(0);
    const f = frames(r.stdout);
    expect(f.length).toBeGreaterThan(2);
    expect(f.every((x) => x.label === 'validating' && x.total === COUNT)).toBe(true);
    expect(f[0]!.percent).toBe(0);
    expect(f.at(-1)).toMatchObject({ percent: 100, value: COUNT });
    expect(f.some((x) => x.percent > 0 && x.percent < 100 && x.rate > 0)).toBe(true);
    for (let i = 1; i < f.length; i++) expect(f[i]!.value).toBeGreaterThanOrEqual(f[i - 1]!.value);
    expect(r.stdout).toContain(`${COUNT} accepted, 0 rejected, 0 quarantined of ${COUNT}`);
  });

  // The estimate is what a user waits on: while a second and a half's work or more is left at the
  // rate shown, it must not say 0s. (Twice the signed file: 6,000 commands, replays after the run
  // above, which tick the bar as acceptances do, for a few seconds of frames.)
  it("the bar's eta is not 0s while much is left", () => {
    const signed = readFileSync(join(dir, 'signed.hex'), 'utf8');
    writeFileSync(join(dir, 'twice.hex'), signed + signed);
    const r = inTerminal(['command', 'validate', '--in', 'twice.hex', '--dir', lab]);
    expect(r.status).toBe(1);
    const all = frames(r.stdout);
    const checked = all.filter((x) => x.value > 0 && x.rate > 0 && (x.total - x.value) / x.rate >= 1.5);
    expect(checked.filter((x) => x.percent >= 5 && x.percent <= 95).length, r.stdout.slice(0, 3000)).toBeGreaterThan(0);
    for (const x of checked) expect(etaSeconds(x.eta), `${x.value}/${x.total} at ${x.rate}/s: eta ${x.eta}`).toBeGreaterThan(0);
  });

  it('NO_COLOR in a terminal: no colour, the bar still shows', () => {
    const r = inTerminal(['command', 'sign', '--in', 'pre.hex', '--out', 'signed-nc.hex', '--dir', lab], { NO_COLOR: '1' });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(COLOUR);
    expect(r.stdout).toContain(`✔ signed ${COUNT} command(s)`);
    expect(frames(r.stdout).length).toBeGreaterThan(0);
    const nc = inTerminal(['command', 'sign', '--in', 'pre.hex', '--out', 'signed-nc2.hex', '--no-color', '--dir', lab]);
    expect(nc.stdout).not.toMatch(COLOUR);
  });

  it('--json in a terminal: JSON lines only, no bar, no escape code', () => {
    const r = inTerminal(['command', 'validate', '--in', 'signed.hex', '--json', '--dir', lab]);
    expect(r.status).toBe(1); // replays by now
    expect(r.stdout).not.toContain(ESC);
    const lines = r.stdout.split(/\r?\n/).filter((l) => l !== '');
    expect(lines).toHaveLength(COUNT);
    for (const l of lines) expect(JSON.parse(l)).toMatchObject({ outcome: 'rejected', code: 'ERR_COMMAND_REPLAYED' });
  });

  it('plain pipes: no bar and no escape code on stdout or stderr', () => {
    const s = smki(['command', 'sign', '--in', join(dir, 'pre.hex'), '--out', join(dir, 'signed-pipe.hex'), '--dir', lab], { env: { NO_COLOR: undefined, TERM: 'xterm-256color' } });
    expect(s.status).toBe(0);
    const v = smki(['command', 'validate', '--in', join(dir, 'signed-pipe.hex'), '--out', join(dir, 'frames-pipe.hex'), '--dir', lab], { env: { NO_COLOR: undefined, TERM: 'xterm-256color' } });
    expect(v.status, v.stderr).toBe(1); // the counters were accepted in the terminal run
    for (const r of [s, v]) {
      expect(r.stdout + r.stderr).not.toContain(ESC);
      expect(frames(r.stdout + r.stderr)).toEqual([]);
      expect(r.stdout + r.stderr).not.toMatch(/signing \[|validating \[|eta /);
    }
    expect(s.stdout).toBe(`✔ signed ${COUNT} command(s) → ${join(dir, 'signed-pipe.hex')}\n`);
    expect(v.stdout).toContain(`0 accepted, ${COUNT} rejected, 0 quarantined of ${COUNT}`);
  });
});
