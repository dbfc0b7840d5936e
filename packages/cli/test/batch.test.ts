// A batch of 10,000 critical commands through `smki` as a user runs it (100 meters × 100
// consecutive counters each: GBCS anti-replay, docs/domain.md §5): built, signed, and validated by
// the DCC side in the validator's worker pool (`--workers 2`) and in one process, on two labs.
// Every command is accepted, with a frame line and a JSON line each, in input order; the same file
// validated again is 10,000 replays and exit 1 (REJECTED). The time of each step is printed.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { euis, importCsv, makeMeters } from './_devices.js';
import { initLab, ROOT, smki, tempDir, type SmkiResult } from './_smki.js';

const METERS = 100;
const REPEAT = 100;
const TOTAL = METERS * REPEAT;

function timed(label: string, args: readonly string[], options: { cwd?: string } = {}): SmkiResult {
  const started = process.hrtime.bigint();
  const r = smki(args, { ...options, timeoutMs: 240_000 });
  console.log(`${label}: ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(2)} s`);
  return r;
}

/** A lab with portfolio north and `count` meters imported; returns the lab and the meters file. */
async function labWithMeters(count = METERS): Promise<{ lab: string; list: string; dir: string }> {
  const lab = initLab();
  for (const args of [['portfolio', 'create', 'north'], ['key', 'generate', 'north', '--certify']]) expect(smki([...args, '--dir', lab]).status).toBe(0);
  const dir = tempDir('smki-batch-');
  const meters = await makeMeters(lab, euis('00DB500000000000', count).map((eui) => ({ eui, portfolio: 'north' })));
  writeFileSync(join(dir, 'meters.csv'), importCsv(meters));
  writeFileSync(join(dir, 'meters.txt'), `${meters.map((m) => m.eui).join('\n')}\n`);
  const r = smki(['device', 'import', join(dir, 'meters.csv'), '--json', '--dir', lab]);
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ imported: count });
  return { lab, list: join(dir, 'meters.txt'), dir };
}

function lines(text: string): string[] {
  const l = text.split('\n');
  expect(l.at(-1)).toBe('');
  return l.slice(0, -1);
}

describe.each([
  { workers: 2, name: 'in the worker pool (--workers 2)' },
  { workers: 1, name: 'in one process' },
])('10,000 commands validated $name', ({ workers }) => {
  it('are all accepted, one frame line and one JSON line each, in order; again, all are replays', async () => {
    const { lab, list, dir } = await labWithMeters();
    const pre = join(dir, 'pre.hex');
    const signed = join(dir, 'signed.hex');
    const frames = join(dir, 'frames.hex');
    const tag = `[workers ${workers}]`;

    const b = timed(`${tag} build ${TOTAL}`, ['command', 'build', 'disconnect', '--devices', list, '--repeat', String(REPEAT), '--out', pre, '--json', '--dir', lab]);
    expect(b.status, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({ commands: TOTAL, devices: METERS });
    expect(lines(readFileSync(pre, 'utf8'))).toHaveLength(TOTAL);

    const s = timed(`${tag} sign ${TOTAL}`, ['command', 'sign', '--in', pre, '--out', signed, '--json', '--dir', lab]);
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toEqual({ signed: TOTAL, out: signed });

    // The pool's workers load the sources through tsx from the repository (cwd ROOT).
    const v = timed(`${tag} validate ${TOTAL}`, ['command', 'validate', '--in', signed, '--out', frames, '--workers', String(workers), '--json', '--dir', lab], { cwd: ROOT });
    const decisions = lines(v.stdout).map((l) => JSON.parse(l) as { index: number; outcome: string; code?: string; device: string });
    expect(decisions).toHaveLength(TOTAL);
    expect(decisions.map((d) => d.index)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
    const refusedCodes = new Map<string, number>();
    for (const d of decisions) if (d.outcome !== 'accepted') refusedCodes.set(`${d.outcome} ${d.code}`, (refusedCodes.get(`${d.outcome} ${d.code}`) ?? 0) + 1);
    expect(Object.fromEntries(refusedCodes)).toEqual({});
    expect(v.status, v.stderr).toBe(0);
    // Command i is for meter i mod 100 (the build repeats the list).
    expect(decisions[0]!.device).toBe(decisions[METERS]!.device);
    const frameLines = lines(readFileSync(frames, 'utf8'));
    expect(frameLines).toHaveLength(TOTAL);
    expect(frameLines.every((l) => /^(?:[0-9A-F]{2})+$/.test(l))).toBe(true);

    const again = timed(`${tag} validate ${TOTAL} again`, ['command', 'validate', '--in', signed, '--workers', String(workers), '--json', '--dir', lab], { cwd: ROOT });
    expect(again.status).toBe(1);
    const replays = lines(again.stdout).map((l) => JSON.parse(l) as { outcome: string; code?: string });
    expect(replays).toHaveLength(TOTAL);
    expect(replays.filter((d) => d.outcome === 'rejected' && d.code === 'ERR_COMMAND_REPLAYED')).toHaveLength(TOTAL);
  }, 600_000);
});

// The pool validates each worker's devices in its own lane; the lanes are as uneven as the device
// ids hash. Three meters cannot split evenly over two lanes, yet the JSON lines (and the text)
// still come in input order, as they do from one process.
describe('the worker pool with uneven lanes (3 meters × 1,000 commands, --workers 2)', () => {
  it('streams its JSON lines in input order', async () => {
    const { lab, list, dir } = await labWithMeters(3);
    const pre = join(dir, 'pre.hex');
    const signed = join(dir, 'signed.hex');
    expect(smki(['command', 'build', 'reconnect', '--devices', list, '--repeat', '1000', '--out', pre, '--dir', lab]).status).toBe(0);
    expect(smki(['command', 'sign', '--in', pre, '--out', signed, '--dir', lab]).status).toBe(0);
    const v = timed('[workers 2, uneven] validate 3000', ['command', 'validate', '--in', signed, '--out', join(dir, 'frames.hex'), '--workers', '2', '--json', '--dir', lab], { cwd: ROOT });
    expect(v.status, v.stderr).toBe(0);
    const decisions = lines(v.stdout).map((l) => JSON.parse(l) as { index: number; outcome: string });
    expect(decisions.filter((d) => d.outcome === 'accepted')).toHaveLength(3000);
    const firstOutOfOrder = decisions.findIndex((d, i) => d.index !== i);
    expect(firstOutOfOrder, `line ${firstOutOfOrder} has index ${decisions[firstOutOfOrder]?.index}`).toBe(-1);
  }, 300_000);
});
