// Property-based check of the commit rules (docs/store.md, "One commit, one transaction"):
// random sequences of commits over a few originators, devices, counters, anomaly windows and
// sequence claims (docs/store.md, "Sequences": owners that are also originators, floors near
// 2^64) give the same outcomes and the same final state on memory, SQLite and PostgreSQL as a
// reference model written independently here (fast-check, fixed seed). Every commit carries a decision log
// advance (docs/store.md, "The decision log's head") built from its outcomes: build sees exactly
// the outcomes commit returns, and the store keeps the last intent.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { Eui64 } from '@smki/core';
import { MemoryStateStore, PostgresStateStore, SqliteStateStore } from '@smki/store';
import type { CommitEntry, CommitOutcome, LogHead, LogIntent, StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-store-prop-');

const USERS = ['90B3D51F30010000', '90B3D51F30020000'] as Eui64[];
const DEVICES = ['00DB1234567890A0', '00DB1234567890A1'] as Eui64[];
/** Sequence owners: the two originators (their series are shared with their counters) and a DCO. */
const OWNERS = [...USERS, '90B3D51F300D0000'] as Eui64[];
const MAX = (1n << 64n) - 1n;
let n = 0;


/** An entry as generated: indices into the small worlds above. */
interface Gen {
  readonly user: number;
  readonly device: number;
  readonly value: number;
  readonly window: number | null;
  readonly limit: number;
  /** Release the k-th quarantine id seen so far (if any). */
  readonly release: number | null;
  /** With a release: claim the held command's own (originator, device, counter), or the generated ones. */
  readonly own: boolean;
  /** A sequence claim (dropped where it would be refused: with a release, or on the counter's own pair). */
  readonly seq: { readonly owner: number; readonly device: number; readonly floor: bigint } | null;
}

/** A quarantined command as the test saw it. */
interface Held {
  readonly id: string;
  readonly user: Eui64;
  readonly device: Eui64;
  readonly value: bigint;
}

const genEntry = fc.record({
  user: fc.integer({ min: 0, max: 1 }),
  device: fc.integer({ min: 0, max: 1 }),
  value: fc.integer({ min: 0, max: 12 }),
  window: fc.option(fc.integer({ min: 0, max: 1 }), { nil: null }),
  limit: fc.integer({ min: 0, max: 3 }),
  release: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null }),
  own: fc.boolean(),
  seq: fc.option(
    fc.record({
      owner: fc.integer({ min: 0, max: 2 }),
      device: fc.integer({ min: 0, max: 1 }),
      // Mostly small floors (below, at and above the series), rarely the last values of u64.
      floor: fc.oneof({ arbitrary: fc.bigInt({ min: 0n, max: 14n }), weight: 8 }, { arbitrary: fc.constantFrom(MAX - 1n, MAX), weight: 1 }),
    }),
    { nil: null },
  ),
});
const genRun = fc.array(fc.array(genEntry, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 });

function toEntry(g: Gen, ids: Held[]): CommitEntry {
  const h = g.release !== null && g.release < ids.length ? ids[g.release] : undefined;
  const user = h && g.own ? h.user : USERS[g.user]!;
  const device = h && g.own ? h.device : DEVICES[g.device]!;
  const value = h && g.own ? h.value : BigInt(g.value);
  const owner = g.seq && OWNERS[g.seq.owner]!;
  const seqDevice = g.seq && DEVICES[g.seq.device]!;
  const sequence = g.seq && h === undefined && !(owner === user && seqDevice === device) ? { owner: owner!, device: seqDevice!, floor: g.seq.floor } : undefined;
  return {
    ...(sequence ? { sequence } : {}),
    counter: { originator: user, device, value },
    ...(g.window !== null
      ? {
          anomaly: { user, messageCode: 0x50, windowMs: 1000, windowStart: g.window * 1000, limit: g.limit },
          ...(h === undefined ? { quarantine: { at: 0, user, device, messageCode: 0x50, counter: value, command: Uint8Array.of(g.value) } } : {}),
        }
      : {}),
    ...(h !== undefined ? { release: h.id } : {}),
  };
}

/** The reference model: plain maps, the rules read straight from the documentation. */
class Model {
  counters = new Map<string, bigint>();
  windows = new Map<string, number>();
  states = new Map<string, { state: 'held' | 'released'; key: string }>();
  apply(e: CommitEntry, newId: () => string): CommitOutcome {
    const claim = `${e.counter!.originator}/${e.counter!.device}/${e.counter!.value}`;
    if (e.release !== undefined) {
      const h = this.states.get(e.release);
      if (h?.state !== 'held' || h.key !== claim) return { status: 'not-held' };
    }
    const ck = `${e.counter!.originator}${e.counter!.device}`;
    const last = this.counters.get(ck);
    if (last !== undefined && e.counter!.value <= last) return { status: 'replayed', last };
    const wk = e.anomaly && `${e.anomaly.user}${e.anomaly.windowStart}`;
    const count = wk === undefined ? 0 : (this.windows.get(wk) ?? 0);
    if (e.anomaly && e.release === undefined && count >= e.anomaly.limit) {
      const id = newId();
      this.states.set(id, { state: 'held', key: claim });
      return { status: 'quarantined', count, id };
    }
    // A sequence: the next value of its pair's series (shared with counters), at least the floor.
    const sk = e.sequence && `${e.sequence.owner}${e.sequence.device}`;
    let next: bigint | undefined;
    if (e.sequence) {
      const prev = this.counters.get(sk!);
      if (prev === MAX) return { status: 'exhausted' };
      next = prev === undefined ? e.sequence.floor : prev + 1n > e.sequence.floor ? prev + 1n : e.sequence.floor;
    }
    if (wk !== undefined) this.windows.set(wk, count + 1);
    this.counters.set(ck, e.counter!.value);
    if (e.release !== undefined) this.states.set(e.release, { state: 'released', key: claim });
    if (next === undefined) return { status: 'committed' };
    this.counters.set(sk!, next);
    return { status: 'committed', sequence: next };
  }
}

/** One log line per outcome, without the (random) quarantine id, so every backend writes the same lines. */
const line = (o: CommitOutcome): string =>
  o.status === 'replayed'
    ? `replayed:${o.last}`
    : o.status === 'quarantined'
      ? `quarantined:${o.count}`
      : o.status === 'committed' && o.sequence !== undefined
        ? `committed:${o.sequence}`
        : o.status;

/** The intent that appends `lines` after `before` (SHA-256 of the last line, UTF-8 lengths with the newlines). */
function advance(before: LogHead, lines: readonly string[]): LogIntent {
  const bytes = lines.reduce((b, l) => b + Buffer.byteLength(l) + 1, before.bytes);
  const lastHash = lines.length === 0 ? before.lastHash : createHash('sha256').update(lines.at(-1)!).digest('hex').toUpperCase();
  return { before, after: { count: before.count + lines.length, lastHash, bytes }, lines };
}

/** What the runs exercised, across every run: the generators must reach each sequence rule. */
const covered = new Set<string>();

async function run(store: StateStore, commits: Gen[][]): Promise<{ outcomes: string[]; final: string[] }> {
  const ids: Held[] = [];
  const model = new Model();
  const outcomes: string[] = [];
  let intent: LogIntent | undefined;
  for (const batch of commits) {
    const entries = batch.map((g) => toEntry(g, ids));
    let seen: readonly CommitOutcome[] | undefined;
    const expected = intent?.after;
    const got = await store.commit(entries, {
      log: {
        id: 'prop',
        expected,
        build: (o) => {
          seen = o;
          intent = advance(expected ?? { count: 0, lastHash: '0'.repeat(64), bytes: 0 }, o.map(line));
          return intent;
        },
      },
    });
    expect(seen).toEqual(got);
    // The model takes each quarantine id from the store's answer (ids are random).
    const want = entries.map((e, i) => model.apply(e, () => (got[i] as { id: string }).id));
    expect(got).toEqual(want);
    for (const [i, o] of got.entries()) {
      const c = entries[i]!.counter!;
      const sq = entries[i]!.sequence;
      if (sq) covered.add(o.status === 'committed' ? (USERS.includes(sq.owner) ? 'allocated (shared with counters)' : 'allocated') : `sequence ${o.status}`);
      if (o.status === 'quarantined') ids.push({ id: o.id, user: c.originator, device: c.device, value: c.value });
      outcomes.push(line(o));
    }
  }
  expect(await store.logIntent('prop')).toEqual(intent);
  const final: string[] = [];
  for (const u of OWNERS) for (const d of DEVICES) final.push(`${u}/${d}=${(await store.lastCounter(u, d)) ?? '-'}`);
  for (const u of USERS) for (const w of [0, 1000]) final.push(`${u}@${w}=${await store.anomalyCount({ user: u, messageCode: 0x50, windowMs: 1000, windowStart: w })}`);
  for (const [i, h] of ids.entries()) final.push(`q${i}=${(await store.quarantineRecord(h.id))?.state}`);
  return { outcomes, final };
}

it('memory, SQLite and PostgreSQL agree with the reference model on random commit sequences', async () => {
  await fc.assert(
    fc.asyncProperty(genRun, async (commits) => {
      const stores: StateStore[] = [
        new MemoryStateStore(),
        await SqliteStateStore.open({ path: join(dir, `p${++n}.db`) }),
        await PostgresStateStore.open({ ...connectionOf(pg), schema: `p${++n}` }),
      ];
      const results = [];
      for (const s of stores) {
        results.push(await run(s, commits));
        await s.close();
      }
      expect(results[1]).toEqual(results[0]);
      expect(results[2]).toEqual(results[0]);
    }),
    { seed: 20261206, numRuns: 60 },
  );
  expect([...covered].sort()).toEqual(['allocated', 'allocated (shared with counters)', 'sequence exhausted', 'sequence quarantined', 'sequence replayed']);
}, 300_000);
