// Anti-replay state across real processes (GBCS 4.3.1.5: a counter is accepted once), on the
// real stores: a counter a process reported accepted before it was killed with SIGKILL still
// blocks its replay after a restart, and processes racing for the same (originator, device,
// counter) accept it exactly once (SQLite file and PostgreSQL server); processes allocating a
// sequence of one (owner, device) with the commands they accept never get the same value
// (docs/store.md, "Sequences").
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { parseEui64 } from '@smki/core';
import { PostgresStateStore, SqliteStateStore } from '@smki/store';
import type { StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir: work } = postgresForThisFile('smki-store-proc-');

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_state-child.ts');
const A = parseEui64('90B3D51F30010000');
const D = parseEui64('00DB1234567890A0');
const DCO = parseEui64('90B3D51F300D0000');


interface Child {
  lines: AsyncIterableIterator<string>;
  kill(): Promise<void>;
  done: Promise<number | null>;
  stderr: () => string;
}

function start(where: string, args: string[]): Child {
  const p = spawn(process.execPath, ['--import', 'tsx', CHILD, where, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...pg.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  return {
    lines: createInterface({ input: p.stdout })[Symbol.asyncIterator](),
    async kill() {
      p.kill('SIGKILL');
      await done;
    },
    done,
    stderr: () => err,
  };
}

type Where = { name: string; where: () => string; open: (w: string) => Promise<StateStore> };
let k = 0;
const STORES: Where[] = [
  {
    name: 'sqlite',
    where: () => `sqlite:${join(work, `p${++k}.db`)}`,
    open: (w) => SqliteStateStore.open({ path: w.slice(7) }),
  },
  {
    name: 'postgres',
    where: () => `postgres:proc${++k}`,
    open: (w) => PostgresStateStore.open({ ...connectionOf(pg), schema: w.slice(9) }),
  },
];

describe.each(STORES)('$name', ({ where: whereOf, open }) => {
  it('a counter reported accepted before SIGKILL blocks its replay after restart', async () => {
    for (const after of [1, 7, 40]) {
      const where = whereOf();
      const c = start(where, ['loop', A, D, '1000']);
      const accepted: bigint[] = [];
      for await (const line of c.lines) {
        const r = JSON.parse(line) as { value: string; status: string };
        expect(r.status).toBe('committed');
        accepted.push(BigInt(r.value));
        if (accepted.length === after) break;
      }
      await c.kill();
      expect(accepted.length, c.stderr()).toBe(after);
      const s = await open(where);
      const last = await s.lastCounter(A, D);
      // Every counter the killed process reported is in the store (it may have committed one more).
      expect(last! >= accepted.at(-1)!).toBe(true);
      for (const v of accepted) {
        expect(await s.commit([{ counter: { originator: A, device: D, value: v } }])).toEqual([{ status: 'replayed', last }]);
      }
      expect(await s.commit([{ counter: { originator: A, device: D, value: last! + 1n } }])).toEqual([{ status: 'committed' }]);
      await s.close();
    }
  }, 120_000);

  it('processes racing for the same counters accept each at most once, and the last one exactly once', async () => {
    const where = whereOf();
    // Create the store (its tables) before the race.
    await (await open(where)).close();
    const startFile = join(work, `go-${k}`);
    const N = 4;
    const COUNT = 40;
    const children = Array.from({ length: N }, (_, i) => start(where, ['race', startFile, A, D, '1', String(COUNT), i % 2 === 0 ? 'batch' : 'single']));
    writeFileSync(startFile, '');
    const results: { value: string; status: string }[][] = [];
    for (const c of children) {
      const { value: line } = await c.lines.next();
      expect(line, c.stderr()).toBeTypeOf('string');
      results.push(JSON.parse(line as string));
      expect(await c.done).toBe(0);
    }
    const accepted = results.flat().filter((r) => r.status === 'committed').map((r) => BigInt(r.value));
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(accepted.filter((v) => v === BigInt(COUNT))).toHaveLength(1);
    // Within each process, accepted counters only grow; the store ends at the greatest.
    for (const r of results) {
      const mine = r.filter((x) => x.status === 'committed').map((x) => BigInt(x.value));
      expect([...mine].sort((a, b) => (a < b ? -1 : 1))).toEqual(mine);
    }
    const s = await open(where);
    expect(await s.lastCounter(A, D)).toBe(BigInt(COUNT));
    await s.close();
    // Some racing must actually have happened: more attempts than values were refused.
    expect(results.flat().filter((r) => r.status === 'replayed').length).toBeGreaterThan(0);
  }, 120_000);

  it('processes allocating one sequence with the commands they accept never get the same value, and leave no gap', async () => {
    const where = whereOf();
    await (await open(where)).close();
    const startFile = join(work, `go-${k}`);
    const N = 4;
    const COUNT = 150;
    // Each process its own originator, so every command is accepted once; all counter-sign on one
    // (DCO, device). In batch mode each commit carries its entry twice: the second is a replay
    // and must allocate nothing.
    const originators = Array.from({ length: N }, (_, i) => parseEui64(`90B3D51F3001000${i + 1}`));
    const children = originators.map((o, i) => start(where, ['sequence', startFile, o, DCO, D, '1', String(COUNT), i % 2 === 0 ? 'batch' : 'single']));
    for (const c of children) expect((await c.lines.next()).value, c.stderr()).toBe('"ready"');
    writeFileSync(startFile, '');
    const results: { value: string; status: string; sequence?: string }[][] = [];
    for (const c of children) {
      const { value: line } = await c.lines.next();
      expect(line, c.stderr()).toBeTypeOf('string');
      results.push(JSON.parse(line as string));
      expect(await c.done).toBe(0);
    }
    // A value exactly for each accepted command, and every value once: 0 .. N * COUNT - 1.
    for (const r of results.flat()) expect(r.sequence !== undefined).toBe(r.status === 'committed');
    for (const r of results) expect(r.filter((x) => x.status === 'committed')).toHaveLength(COUNT);
    const values = results.flat().flatMap((r) => (r.sequence === undefined ? [] : [BigInt(r.sequence)]));
    expect(values.sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: N * COUNT }, (_, i) => BigInt(i)));
    // Within each process, values only grow.
    const mine = results.map((r) => r.flatMap((x) => (x.sequence === undefined ? [] : [BigInt(x.sequence)])));
    for (const m of mine) expect([...m].sort((a, b) => (a < b ? -1 : 1))).toEqual(m);
    // Racing actually happened: some two processes took turns.
    expect(mine.some((m1) => mine.some((m2) => m1 !== m2 && m1[0]! < m2.at(-1)! && m2[0]! < m1.at(-1)!))).toBe(true);
    const s = await open(where);
    expect(await s.lastCounter(DCO, D)).toBe(BigInt(N * COUNT - 1));
    for (const o of originators) expect(await s.lastCounter(o, D)).toBe(BigInt(COUNT));
    await s.close();
  }, 120_000);
});
