// Sequences (docs/store.md, "Sequences"), on every implementation: memory, SQLite and a real
// PostgreSQL server started for this file. A SMETS1 Dual Control Organisation's own counter per
// (DCO, device) is allocated in the commit that accepts the command it counter-signs, if and only
// if that entry commits, from the same strictly increasing series as the anti-replay counters
// (GBCS 4.3.1.5), and never twice however many store objects allocate at once.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { MemoryStateStore, PostgresStateStore, SqliteStateStore } from '@smki/store';
import type { CommitEntry, CommitOutcome, StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-store-seq-');

const A = parseEui64('90B3D51F30010000');
const B = parseEui64('90B3D51F30020000');
const DCO = parseEui64('90B3D51F300D0000');
const D1 = parseEui64('00DB1234567890A0');
const D2 = parseEui64('00DB1234567890A1');
const D3 = parseEui64('00DB1234567890A2');
const WINDOW = { user: A, messageCode: 0x0050, windowMs: 60_000, windowStart: 1_700_000_040_000 };
const MAX = (1n << 64n) - 1n;
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

let n = 0;

/** Opens stores on one place: the same memory store each time, or one SQLite file, or one PostgreSQL schema. */
type Place = () => () => Promise<StateStore>;
const MEMORY: [string, Place] = [
  'memory',
  () => {
    const m = new MemoryStateStore();
    return async () => m;
  },
];
const SQLITE: [string, Place] = [
  'sqlite',
  () => {
    const path = join(dir, `q${++n}.db`);
    return () => SqliteStateStore.open({ path });
  },
];
const POSTGRES: [string, Place] = [
  'postgres',
  () => {
    const schema = `q${++n}`;
    return () => PostgresStateStore.open({ ...connectionOf(pg), schema });
  },
];

/** A command of A for `device` with counter `value`, counter-signed by the DCO with a sequence whose floor is `floor`. */
function signed(value: bigint, floor: bigint, device: Eui64 = D1, owner: Eui64 = DCO): CommitEntry {
  return { counter: { originator: A, device, value }, sequence: { owner, device, floor } };
}

/** Only a sequence claim. */
function seq(floor: bigint, device: Eui64 = D1, owner: Eui64 = DCO): CommitEntry {
  return { sequence: { owner, device, floor } };
}

const committed = (sequence: bigint): CommitOutcome => ({ status: 'committed', sequence });

async function expectInvalid(p: Promise<unknown>, detail: string): Promise<void> {
  const e = await p.then(
    () => 'resolved',
    (x: unknown) => x,
  );
  expect(isSmkiError(e) ? e.code : e, detail).toBe('ERR_INVALID_ARGUMENT');
  expect((e as { context: { detail: string } }).context.detail).toBe(detail);
}

describe.each([MEMORY, SQLITE, POSTGRES])('sequences: %s', (_name, place) => {
  const open = (): Promise<StateStore> => place()();

  it('allocates max(last + 1, floor): the floor first, one more each time, the floor again when it is ahead', async () => {
    const s = await open();
    expect(await s.commit([signed(1n, 100n)])).toEqual([committed(100n)]);
    expect(await s.commit([signed(2n, 0n)])).toEqual([committed(101n)]);
    // A floor equal to last, then equal to last + 1, then ahead, then one behind.
    expect(await s.commit([signed(3n, 101n)])).toEqual([committed(102n)]);
    expect(await s.commit([signed(4n, 103n)])).toEqual([committed(103n)]);
    expect(await s.commit([signed(5n, 1000n)])).toEqual([committed(1000n)]);
    expect(await s.commit([signed(6n, 999n)])).toEqual([committed(1001n)]);
    expect(await s.lastCounter(DCO, D1)).toBe(1001n);
    expect(await s.lastCounter(A, D1)).toBe(6n);
    // An entry may be a sequence claim alone; a floor of 0 with no last allocates 0.
    expect(await s.commit([seq(0n, D2)])).toEqual([committed(0n)]);
    expect(await s.commit([seq(0n, D2)])).toEqual([committed(1n)]);
    // One series per (owner, device): another device, another owner start on their own.
    expect(await s.commit([signed(1n, 7n, D3)])).toEqual([committed(7n)]);
    expect(await s.commit([seq(5n, D1, B)])).toEqual([committed(5n)]);
    expect(await s.lastCounter(DCO, D1)).toBe(1001n);
    expect(await s.lastCounter(DCO, D2)).toBe(1n);
    expect(await s.lastCounter(DCO, D3)).toBe(7n);
    expect(await s.lastCounter(B, D1)).toBe(5n);
    // The outcome carries `sequence` exactly when the entry had a claim.
    const [plain, claimed] = await s.commit([{ counter: { originator: A, device: D1, value: 7n } }, signed(8n, 0n)]);
    expect(plain).toEqual({ status: 'committed' });
    expect(Object.keys(plain!)).toEqual(['status']);
    expect(claimed).toEqual(committed(1002n));
    expect(typeof (claimed as { sequence: unknown }).sequence).toBe('bigint');
    await s.close();
  });

  it('later entries of one commit see earlier allocations: the same pair gets consecutive values', async () => {
    const s = await open();
    const twice = seq(0n);
    expect(await s.commit([signed(1n, 50n), signed(2n, 0n), twice, twice, seq(7n, D2), signed(3n, 60n), signed(4n, 0n)])).toEqual([
      committed(50n),
      committed(51n),
      committed(52n),
      committed(53n),
      committed(7n),
      committed(60n),
      committed(61n),
    ]);
    expect(await s.lastCounter(DCO, D1)).toBe(61n);
    expect(await s.lastCounter(DCO, D2)).toBe(7n);
    expect(await s.lastCounter(A, D1)).toBe(4n);
    await s.close();
  });

  it('allocates nothing for an entry that is replayed, quarantined or not held, and leaves no gap', async () => {
    const s = await open();
    expect(await s.commit([signed(5n, 10n)])).toEqual([committed(10n)]);
    // Replayed: the counter is not greater than the last.
    expect(await s.commit([signed(5n, 20n)])).toEqual([{ status: 'replayed', last: 5n }]);
    expect(await s.lastCounter(DCO, D1)).toBe(10n);
    // Quarantined: the anomaly limit holds the command back.
    const limited = (value: bigint, limit: number, floor = 30n): CommitEntry => ({
      ...signed(value, floor),
      anomaly: { ...WINDOW, limit },
      quarantine: { at: 1_700_000_050_000, user: A, device: D1, messageCode: 0x50, counter: value, command: Uint8Array.of(0xdf) },
    });
    const [q] = await s.commit([limited(6n, 0)]);
    expect(q).toMatchObject({ status: 'quarantined', count: 0 });
    expect('sequence' in q!).toBe(false);
    expect(await s.lastCounter(DCO, D1)).toBe(10n);
    expect(await s.lastCounter(A, D1)).toBe(5n);
    // Not held: a release is refused with a sequence (below), so a release that fails takes no value either.
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 6n }, release: UNKNOWN_ID }, seq(0n)])).toEqual([
      { status: 'not-held' },
      committed(11n),
    ]);
    // In one commit: only the entry that commits allocates, the next value.
    const out = await s.commit([signed(5n, 0n), limited(7n, 0), signed(7n, 0n), signed(7n, 0n), limited(8n, 1, 0n)]);
    expect(out.map((o) => o.status)).toEqual(['replayed', 'quarantined', 'committed', 'replayed', 'committed']);
    expect(out[2]).toEqual(committed(12n));
    expect(out[4]).toEqual(committed(13n));
    expect(out.filter((o) => 'sequence' in o)).toHaveLength(2);
    expect(await s.lastCounter(DCO, D1)).toBe(13n);
    await s.close();
  });

  it('a sequence and a counter claim for the same pair advance one strictly increasing series', async () => {
    const s = await open();
    expect(await s.commit([seq(100n)])).toEqual([committed(100n)]);
    // The owner used as an originator: its counter must pass what the sequence allocated.
    expect(await s.commit([{ counter: { originator: DCO, device: D1, value: 100n } }])).toEqual([{ status: 'replayed', last: 100n }]);
    expect(await s.commit([{ counter: { originator: DCO, device: D1, value: 150n } }])).toEqual([{ status: 'committed' }]);
    expect(await s.commit([seq(0n)])).toEqual([committed(151n)]);
    // Within one commit, both ways round.
    expect(await s.commit([{ counter: { originator: DCO, device: D1, value: 200n } }, seq(0n)])).toEqual([{ status: 'committed' }, committed(201n)]);
    expect(await s.commit([seq(0n), { counter: { originator: DCO, device: D1, value: 202n } }])).toEqual([
      committed(202n),
      { status: 'replayed', last: 202n },
    ]);
    // An entry's counter and its sequence on different pairs: same owner and originator with
    // another device, or the same device with another owner.
    expect(await s.commit([{ counter: { originator: DCO, device: D2, value: 1n }, sequence: { owner: DCO, device: D1, floor: 0n } }])).toEqual([committed(203n)]);
    expect(await s.commit([signed(1n, 0n)])).toEqual([committed(204n)]);
    expect(await s.lastCounter(DCO, D1)).toBe(204n);
    expect(await s.lastCounter(DCO, D2)).toBe(1n);
    await s.close();
  });

  it('is exhausted at 2^64 - 1: the outcome is exhausted and nothing of the entry applies', async () => {
    const s = await open();
    const counted = (value: bigint, floor: bigint): CommitEntry => ({
      ...signed(value, floor),
      anomaly: { ...WINDOW, limit: 10 },
      quarantine: { at: 0, user: A, device: D1, messageCode: 0x50, counter: value, command: new Uint8Array(0) },
    });
    expect(await s.commit([counted(1n, MAX)])).toEqual([committed(MAX)]);
    expect(await s.lastCounter(DCO, D1)).toBe(MAX);
    expect(await s.anomalyCount(WINDOW)).toBe(1);
    // Neither the counter, nor the window, nor a later entry of the same commit sees it applied.
    expect(await s.commit([counted(2n, 0n), counted(2n, MAX), { counter: { originator: A, device: D1, value: 2n } }])).toEqual([
      { status: 'exhausted' },
      { status: 'exhausted' },
      { status: 'committed' },
    ]);
    expect(await s.lastCounter(A, D1)).toBe(2n);
    expect(await s.anomalyCount(WINDOW)).toBe(1);
    expect(await s.lastCounter(DCO, D1)).toBe(MAX);
    // Replay and quarantine are decided first.
    expect(await s.commit([signed(2n, 0n)])).toEqual([{ status: 'replayed', last: 2n }]);
    const [q] = await s.commit([{ ...counted(3n, 0n), anomaly: { ...WINDOW, limit: 1 } }]);
    expect(q?.status).toBe('quarantined');
    // The last value is allocated once, reached by consecutive allocations in one commit too.
    expect(await s.commit([seq(MAX - 1n, D2), seq(0n, D2), seq(0n, D2)])).toEqual([committed(MAX - 1n), committed(MAX), { status: 'exhausted' }]);
    // A counter claim that reached 2^64 - 1 leaves the series no value either.
    expect(await s.commit([{ counter: { originator: DCO, device: D3, value: MAX } }, seq(0n, D3)])).toEqual([{ status: 'committed' }, { status: 'exhausted' }]);
    // Other pairs go on.
    expect(await s.commit([signed(4n, 0n, D2, B)])).toEqual([committed(0n)]);
    await s.close();
  });

  it('refuses every malformed sequence claim before anything is written', async () => {
    const s = await open();
    const good = signed(1n, 5n);
    const bad: [unknown, string][] = [
      [{ sequence: null }, 'entries[1].sequence'],
      [{ sequence: 'DCO' }, 'entries[1].sequence'],
      [{ sequence: [DCO, D1, 0n] }, 'entries[1].sequence'],
      [{ sequence: { device: D1, floor: 0n } }, 'entries[1].sequence.owner'],
      [{ sequence: { owner: DCO.toLowerCase(), device: D1, floor: 0n } }, 'entries[1].sequence.owner'],
      [{ sequence: { owner: '90-B3-D5-1F-30-0D-00-00', device: D1, floor: 0n } }, 'entries[1].sequence.owner'],
      [{ sequence: { owner: `${DCO}00`, device: D1, floor: 0n } }, 'entries[1].sequence.owner'],
      [{ sequence: { owner: DCO, floor: 0n } }, 'entries[1].sequence.device'],
      [{ sequence: { owner: DCO, device: '00 DB 12 34 56 78 90 A0', floor: 0n } }, 'entries[1].sequence.device'],
      [{ sequence: { owner: DCO, device: 0x00db1234567890a0n, floor: 0n } }, 'entries[1].sequence.device'],
      [{ sequence: { owner: DCO, device: D1 } }, 'entries[1].sequence.floor'],
      [{ sequence: { owner: DCO, device: D1, floor: -1n } }, 'entries[1].sequence.floor'],
      [{ sequence: { owner: DCO, device: D1, floor: 1n << 64n } }, 'entries[1].sequence.floor'],
      [{ sequence: { owner: DCO, device: D1, floor: 5 } }, 'entries[1].sequence.floor'],
      [{ sequence: { owner: DCO, device: D1, floor: '5' } }, 'entries[1].sequence.floor'],
      // A release never allocates, whatever the pair.
      [{ counter: { originator: A, device: D1, value: 2n }, release: UNKNOWN_ID, sequence: { owner: DCO, device: D1, floor: 0n } }, 'entries[1].sequence'],
      [{ counter: { originator: A, device: D1, value: 2n }, release: UNKNOWN_ID, sequence: { owner: B, device: D2, floor: 0n } }, 'entries[1].sequence'],
      // The entry's own counter's (originator, device): the two claims would collide.
      [{ counter: { originator: A, device: D1, value: 2n }, sequence: { owner: A, device: D1, floor: 0n } }, 'entries[1].sequence'],
      [{ counter: { originator: DCO, device: D2, value: 2n }, sequence: { owner: DCO, device: D2, floor: 9n } }, 'entries[1].sequence'],
    ];
    for (const [entry, detail] of bad) await expectInvalid(s.commit([good, entry] as CommitEntry[]), detail);
    expect(await s.lastCounter(DCO, D1)).toBeUndefined();
    expect(await s.lastCounter(A, D1)).toBeUndefined();
    expect(await s.lastCounter(DCO, D2)).toBeUndefined();
    // The extremes of floor are accepted.
    expect(await s.commit([good, seq(MAX, D2)])).toEqual([committed(5n), committed(MAX)]);
    await s.close();
  });

  it("a log's build sees the allocated values in the outcomes", async () => {
    const s = await open();
    let seen: readonly CommitOutcome[] = [];
    const out = await s.commit([signed(1n, 40n), signed(1n, 0n), seq(0n)], {
      log: {
        id: 'dco-1',
        expected: undefined,
        build: (o) => {
          seen = o;
          return { before: { count: 0, lastHash: '0'.repeat(64), bytes: 0 }, after: { count: 0, lastHash: '0'.repeat(64), bytes: 0 }, lines: [] };
        },
      },
    });
    expect(out).toEqual([committed(40n), { status: 'replayed', last: 1n }, committed(41n)]);
    expect(seen).toEqual(out);
    await s.close();
  });
});

describe.each([SQLITE, POSTGRES])('sequences, durable: %s', (name, place) => {
  it('an allocated value survives closing the store: the next one after reopening is greater', async () => {
    const at = place();
    let s = await at();
    expect(await s.commit([signed(1n, 1_700_000_000_000n), seq(0n, D2)])).toEqual([committed(1_700_000_000_000n), committed(0n)]);
    await s.close();
    s = await at();
    expect(await s.lastCounter(DCO, D1)).toBe(1_700_000_000_000n);
    expect(await s.commit([signed(2n, 0n), seq(0n, D2)])).toEqual([committed(1_700_000_000_001n), committed(1n)]);
    expect(await s.commit([seq(MAX, D3)])).toEqual([committed(MAX)]);
    await s.close();
    s = await at();
    expect(await s.commit([seq(0n, D3), signed(3n, 0n)])).toEqual([{ status: 'exhausted' }, committed(1_700_000_000_002n)]);
    await s.close();
  });

  it('stores the series in the counters table, as 16 upper-case hex digits', async () => {
    const id = ++n;
    const path = join(dir, `raw${id}.db`);
    const s = name === 'sqlite' ? await SqliteStateStore.open({ path }) : await PostgresStateStore.open({ ...connectionOf(pg), schema: `raw${id}` });
    await s.commit([seq(0xabcn), seq(MAX, D2)]);
    await s.close();
    const sql = `SELECT originator, device, counter FROM ${name === 'sqlite' ? '' : `raw${id}.`}counters ORDER BY device`;
    let rows: unknown[];
    if (name === 'sqlite') {
      const db = new Database(path, { readonly: true });
      rows = db.prepare(sql).all();
      db.close();
    } else {
      rows = pg
        .psql(sql)
        .trim()
        .split('\n')
        .map((l) => {
          const [originator, device, counter] = l.split('|');
          return { originator, device, counter };
        });
    }
    expect(rows).toEqual([
      { originator: DCO, device: D1, counter: '0000000000000ABC' },
      { originator: DCO, device: D2, counter: 'FFFFFFFFFFFFFFFF' },
    ]);
  });

  it('two store objects allocating at once never hand out the same value', async () => {
    const at = place();
    const [s1, s2] = [await at(), await at()];
    const ROUNDS = 25;
    const one = async (s: StateStore, originator: Eui64): Promise<bigint[]> => {
      const got: bigint[] = [];
      for (let i = 0n; i < BigInt(ROUNDS); i++) {
        // Each store its own originator's commands, both counter-signed on one (DCO, device).
        const outcomes = await s.commit([{ counter: { originator, device: D1, value: i + 1n }, sequence: { owner: DCO, device: D1, floor: 0n } }, seq(0n)]);
        for (const o of outcomes) {
          expect(o.status).toBe('committed');
          got.push((o as { sequence: bigint }).sequence);
        }
      }
      return got;
    };
    const [v1, v2] = await Promise.all([one(s1, A), one(s2, B)]);
    const all = [...v1, ...v2].sort((a, b) => (a < b ? -1 : 1));
    expect(all).toEqual(Array.from({ length: 4 * ROUNDS }, (_, i) => BigInt(i)));
    for (const mine of [v1, v2]) expect([...mine].sort((a, b) => (a < b ? -1 : 1))).toEqual(mine);
    // The two really took turns: each got values below the other's last.
    expect(v1[0]! < v2.at(-1)! && v2[0]! < v1.at(-1)!).toBe(true);
    expect(await s1.lastCounter(DCO, D1)).toBe(BigInt(4 * ROUNDS - 1));
    await s1.close();
    await s2.close();
  });
});
