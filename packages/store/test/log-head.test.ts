// The decision log's head, committed in the same transaction as the state (docs/store.md, "The
// decision log's head"), on every implementation: memory, SQLite and a real PostgreSQL server
// started for this file. The head is the keystore's AuditHead shape: a record count, SHA-256
// (FIPS 180-4) of the last line, and the byte length of the log.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { MAX_LOG_INTENT_BYTES, MAX_LOG_INTENT_LINES, MAX_LOG_LINE_BYTES, MemoryStateStore, PostgresStateStore, SqliteStateStore, sameLogHead } from '@smki/store';
import type { CommitEntry, CommitOutcome, LogAppend, LogHead, LogIntent, StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-store-log-');

const A = parseEui64('90B3D51F30010000');
const D1 = parseEui64('00DB1234567890A0');
const D2 = parseEui64('00DB1234567890A1');
const WINDOW = { user: A, messageCode: 0x0050, windowMs: 60_000, windowStart: 1_700_000_040_000 };
const ZERO = '0'.repeat(64);
const EMPTY: LogHead = { count: 0, lastHash: ZERO, bytes: 0 };
const LOG = 'validator-1';

let n = 0;

const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex').toUpperCase();

/** The intent that appends `lines` to a log whose head is `before`, computed as the keystore's AuditLog does. */
function advance(before: LogHead, lines: readonly string[]): LogIntent {
  let bytes = before.bytes;
  for (const l of lines) bytes += Buffer.byteLength(l, 'utf8') + 1;
  return { before, after: { count: before.count + lines.length, lastHash: lines.length > 0 ? sha(lines.at(-1)!) : before.lastHash, bytes }, lines };
}

/** A log advance that appends `lines` after `expected` (or after an empty log). */
function append(expected: LogHead | undefined, lines: readonly string[], id = LOG): LogAppend {
  return { id, expected, build: () => advance(expected ?? EMPTY, lines) };
}

const c = (value: bigint, device = D1): CommitEntry => ({ counter: { originator: A, device, value } });

function held(value: bigint, device = D1, limit = 2): CommitEntry {
  return {
    counter: { originator: A, device, value },
    anomaly: { ...WINDOW, limit },
    quarantine: { at: 1_700_000_050_000, user: A, device, messageCode: 0x0050, counter: value, command: Uint8Array.of(0xdf, 1) },
  };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
}

async function expectCode(p: Promise<unknown>, code: SmkiErrorCode, detail?: string): Promise<unknown> {
  const e = await failure(p);
  expect(isSmkiError(e) ? e.code : e).toBe(code);
  if (detail !== undefined) expect((e as { context: { detail?: string } }).context.detail).toBe(detail);
  return e;
}

/** Everything a commit could change, to compare before and after a refused one. */
async function state(s: StateStore, id = LOG): Promise<unknown> {
  return {
    d1: await s.lastCounter(A, D1),
    d2: await s.lastCounter(A, D2),
    count: await s.anomalyCount(WINDOW),
    held: (await s.heldQuarantine()).map((q) => q.id),
    log: await s.logIntent(id),
  };
}

/** Opens stores on one place: the same memory store each time, or one SQLite file, or one PostgreSQL schema. */
type Place = () => () => Promise<StateStore>;
const BACKENDS: [string, Place][] = [
  [
    'memory',
    () => {
      const m = new MemoryStateStore();
      return async () => m;
    },
  ],
  [
    'sqlite',
    () => {
      const path = join(dir, `l${++n}.db`);
      return () => SqliteStateStore.open({ path });
    },
  ],
  [
    'postgres',
    () => {
      const schema = `l${++n}`;
      return () => PostgresStateStore.open({ ...connectionOf(pg), schema });
    },
  ],
];

describe('sameLogHead', () => {
  it('is true only for equal count, hash and bytes, or two absent heads', () => {
    const h = advance(EMPTY, ['one']).after;
    expect(sameLogHead(h, { ...h })).toBe(true);
    expect(sameLogHead(undefined, undefined)).toBe(true);
    expect(sameLogHead(h, undefined)).toBe(false);
    expect(sameLogHead(undefined, h)).toBe(false);
    expect(sameLogHead(h, { ...h, count: h.count + 1 })).toBe(false);
    expect(sameLogHead(h, { ...h, lastHash: sha('two') })).toBe(false);
    expect(sameLogHead(h, { ...h, bytes: h.bytes + 1 })).toBe(false);
  });
});

describe.each(BACKENDS)('decision log head: %s', (_name, place) => {
  const open = (): Promise<StateStore> => place()();

  it('stores the intent of a commit with its entries, and each later commit replaces it', async () => {
    const s = await open();
    expect(await s.logIntent(LOG)).toBeUndefined();
    // Lines round-trip exactly: multi-byte UTF-8, a leading BOM, NUL, a line of the largest size.
    const lines = ['{"seq":1,"decision":"accept"}', 'é😀', '\uFEFFbom', 'nul\u0000inside', 'é'.repeat(MAX_LOG_LINE_BYTES / 2)];
    const first = advance(EMPTY, lines);
    expect(await s.commit([c(1n)], { log: append(undefined, lines) })).toEqual([{ status: 'committed' }]);
    expect(await s.logIntent(LOG)).toEqual(first);
    expect(await s.lastCounter(A, D1)).toBe(1n);
    const second = advance(first.after, ['{"seq":6}']);
    expect(await s.commit([c(2n)], { log: append(first.after, ['{"seq":6}']) })).toEqual([{ status: 'committed' }]);
    expect(await s.logIntent(LOG)).toEqual(second);
    // Logs are kept apart by id.
    expect(await s.logIntent('validator-2')).toBeUndefined();
    await s.commit([], { log: append(undefined, ['other'], 'validator-2') });
    expect((await s.logIntent('validator-2'))?.lines).toEqual(['other']);
    expect(await s.logIntent(LOG)).toEqual(second);
    // A commit without a log leaves every log as it is.
    await s.commit([c(3n)]);
    await s.commit([c(4n)], {});
    expect(await s.logIntent(LOG)).toEqual(second);
    await s.close();
  });

  it('commits a log advance with no entries (only rejections to record), and one with no lines', async () => {
    const s = await open();
    expect(await s.commit([], { log: append(undefined, ['{"seq":1,"decision":"reject"}']) })).toEqual([]);
    const one = (await s.logIntent(LOG))!;
    expect(one).toEqual(advance(EMPTY, ['{"seq":1,"decision":"reject"}']));
    expect(await s.lastCounter(A, D1)).toBeUndefined();
    expect(await s.commit([], { log: append(one.after, []) })).toEqual([]);
    expect(await s.logIntent(LOG)).toEqual({ before: one.after, after: one.after, lines: [] });
    // A log whose file already exists may be adopted: with no row yet, `before` is the caller's.
    const adopted = advance({ count: 3, lastHash: sha('third'), bytes: 20 }, ['fourth']);
    await s.commit([], { log: { id: 'adopted', expected: undefined, build: () => adopted } });
    expect(await s.logIntent('adopted')).toEqual(adopted);
    await s.close();
  });

  it('keeps a byte order mark at the start of the first line (the stored bytes are read back as they are)', async () => {
    const s = await open();
    const lines = ['\uFEFFfirst', '\uFEFF'];
    await s.commit([], { log: append(undefined, lines) });
    expect(await s.logIntent(LOG)).toEqual(advance(EMPTY, lines));
    await s.close();
  });

  it('refuses a commit whose expected head is not the stored one (ERR_STORE_LOG_CONFLICT): nothing applied, build not called', async () => {
    const s = await open();
    const [, , q] = await s.commit([held(1n), held(2n), held(3n)], { log: append(undefined, ['a', 'b']) });
    expect(q).toMatchObject({ status: 'quarantined' });
    const stored = (await s.logIntent(LOG))!;
    const before = await state(s);
    let calls = 0;
    const counting = (expected: LogHead | undefined): LogAppend => ({
      id: LOG,
      expected,
      build: () => {
        calls++;
        return advance(expected ?? EMPTY, ['x']);
      },
    });
    const release: CommitEntry = { counter: { originator: A, device: D1, value: 3n }, anomaly: { ...WINDOW, limit: 2 }, release: (q as { id: string }).id };
    const entries = [c(10n, D2), held(4n, D1), release];
    for (const expected of [
      undefined, // a first commit, but the store holds a row: another writer, or a store not seen
      EMPTY,
      stored.before, // a writer that did not see its last commit
      { ...stored.after, bytes: stored.after.bytes + 1 },
      { ...stored.after, count: stored.after.count + 1 },
      { ...stored.after, lastHash: sha('b!') },
    ]) {
      const e = await expectCode(s.commit(entries, { log: counting(expected) }), 'ERR_STORE_LOG_CONFLICT');
      expect((e as { context: { log: string } }).context).toEqual({ log: LOG });
    }
    // Expecting a head where the store holds none is a conflict too.
    for (const expected of [EMPTY, stored.after]) {
      await expectCode(s.commit(entries, { log: { ...counting(expected), id: 'never-written' } }), 'ERR_STORE_LOG_CONFLICT');
    }
    expect(calls).toBe(0);
    expect(await state(s)).toEqual(before);
    expect(await s.logIntent('never-written')).toBeUndefined();
    // The stored head itself is accepted.
    expect((await s.commit(entries, { log: counting(stored.after) })).map((o) => o.status)).toEqual(['committed', 'quarantined', 'committed']);
    expect(calls).toBe(1);
    await s.close();
  });

  it('rolls back when build throws, and rethrows its error unchanged', async () => {
    const s = await open();
    await s.commit([c(1n), held(1n, D2)], { log: append(undefined, ['genesis']) });
    const head = (await s.logIntent(LOG))!.after;
    const before = await state(s);
    const thrown: unknown[] = [new Error('cannot encode the decision'), new TypeError('boom'), 'a string', { code: 'ERR_STORE_UNAVAILABLE' }];
    for (const t of thrown) {
      const e = await failure(
        s.commit([c(2n), c(5n, D2), held(2n, D2)], {
          log: {
            id: LOG,
            expected: head,
            build: () => {
              throw t;
            },
          },
        }),
      );
      expect(e).toBe(t);
    }
    expect(await state(s)).toEqual(before);
    // The store goes on working after a failed build.
    expect(await s.commit([c(2n)], { log: append(head, ['next']) })).toEqual([{ status: 'committed' }]);
    await s.close();
  });

  it('refuses a malformed intent from build (ERR_INVALID_ARGUMENT): rolled back, nothing applied', async () => {
    const s = await open();
    await s.commit([c(1n)], { log: append(undefined, ['one', 'two']) });
    const h = (await s.logIntent(LOG))!.after;
    const g = advance(h, ['three', 'four']);
    const other = advance(advance(h, ['elsewhere']).after, ['x']);
    const bad: [string, () => unknown][] = [
      ['intent', () => null],
      ['intent', () => [g]],
      ['intent.before', () => ({ ...g, before: undefined })],
      ['intent.before.count', () => ({ ...g, before: { ...h, count: -1 } })],
      ['intent.before.count', () => ({ ...g, before: { ...h, count: 1.5 } })],
      ['intent.before.lastHash', () => ({ ...g, before: { ...h, lastHash: h.lastHash.toLowerCase() } })],
      ['intent.before.lastHash', () => ({ ...g, before: { ...h, lastHash: h.lastHash.slice(1) } })],
      ['intent.before.bytes', () => ({ ...g, before: { ...h, bytes: 2 ** 53 } })],
      ['intent.before.bytes', () => ({ ...g, before: { ...h, bytes: 0 } })],
      ['intent.before.bytes', () => ({ ...g, before: { ...EMPTY, bytes: 1 } })],
      ['intent.before.lastHash', () => ({ ...g, before: { ...EMPTY, lastHash: sha('x') } })],
      ['intent.after', () => ({ ...g, after: 'head' })],
      ['intent.after.count', () => ({ ...g, after: { ...g.after, count: String(g.after.count) } })],
      ['intent.before', () => other],
      ['intent.before', () => advance(EMPTY, ['three'])],
      ['intent.lines', () => ({ ...g, lines: 'three\nfour' })],
      ['intent.lines[1]', () => ({ ...g, lines: ['three', 4] })],
      ['intent.lines[0]', () => ({ ...g, lines: ['three\nfour'] })],
      ['intent.lines[0]', () => ({ ...g, lines: ['three\r'] })],
      ['intent.lines[1]', () => ({ ...g, lines: ['three', ''] })],
      ['intent.lines[0]', () => ({ ...g, lines: ['\uD800three'] })],
      ['intent.lines[0]', () => ({ ...g, lines: ['three\uDC00'] })],
      ['intent.lines[0]', () => ({ ...g, lines: ['é'.repeat(MAX_LOG_LINE_BYTES / 2) + 'x'] })],
      ['intent.lines', () => ({ ...g, lines: Array.from({ length: MAX_LOG_INTENT_LINES + 1 }, () => 'x') })],
      ['intent.lines', () => ({ ...g, lines: Array.from({ length: MAX_LOG_INTENT_BYTES / MAX_LOG_LINE_BYTES + 1 }, () => 'x'.repeat(MAX_LOG_LINE_BYTES)) })],
      ['intent.after.count', () => ({ ...g, after: { ...g.after, count: g.after.count + 1 } })],
      ['intent.after.count', () => ({ ...g, after: { ...g.after, count: g.after.count - 1 } })],
      ['intent.after.count', () => ({ before: h, after: { ...h, count: h.count - 1 }, lines: [] })],
      ['intent.after.bytes', () => ({ ...g, after: { ...g.after, bytes: g.after.bytes + 1 } })],
      ['intent.after.bytes', () => ({ ...g, after: { ...g.after, bytes: g.after.bytes - 2 } })], // newlines not counted
      ['intent.after.bytes', () => ({ ...advance(h, ['é']), after: { ...advance(h, ['é']).after, bytes: h.bytes + 2 } })], // UTF-16 length, not UTF-8
      ['intent.after.lastHash', () => ({ ...g, after: { ...g.after, lastHash: sha('three') } })], // the first line's hash, not the last's
      ['intent.after.lastHash', () => ({ ...g, after: { ...g.after, lastHash: sha('four\n') } })],
      ['intent.after.lastHash', () => ({ before: h, after: { ...h, lastHash: sha('x') }, lines: [] })],
      ['options.log.build', () => Promise.resolve(g)],
      ['options.log.build', () => Promise.reject(new Error('async build'))],
    ];
    const before = await state(s);
    for (const [detail, build] of bad) {
      await expectCode(s.commit([c(2n), c(1n, D2), held(5n, D2)], { log: { id: LOG, expected: h, build: build as () => LogIntent } }), 'ERR_INVALID_ARGUMENT', detail);
    }
    expect(await state(s)).toEqual(before);
    expect(await s.commit([c(2n)], { log: { id: LOG, expected: h, build: () => g } })).toEqual([{ status: 'committed' }]);
    expect(await s.logIntent(LOG)).toEqual(g);
    await s.close();
  }, 120_000);

  it('refuses a malformed log advance before anything is read or written', async () => {
    const s = await open();
    let calls = 0;
    const build = (): LogIntent => {
      calls++;
      return advance(EMPTY, ['x']);
    };
    const bad: [unknown, string][] = [
      [null, 'options'],
      ['log', 'options'],
      [{ log: null }, 'options.log'],
      [{ log: { id: 'a b', expected: undefined, build } }, 'options.log.id'],
      [{ log: { id: '', expected: undefined, build } }, 'options.log.id'],
      [{ log: { id: 'x'.repeat(129), expected: undefined, build } }, 'options.log.id'],
      [{ log: { id: 'validator/1', expected: undefined, build } }, 'options.log.id'],
      [{ log: { id: 'é', expected: undefined, build } }, 'options.log.id'],
      [{ log: { id: 5, expected: undefined, build } }, 'options.log.id'],
      [{ log: { id: LOG, expected: null, build } }, 'options.log.expected'],
      [{ log: { id: LOG, expected: { count: -1, lastHash: ZERO, bytes: 0 }, build } }, 'options.log.expected.count'],
      [{ log: { id: LOG, expected: { count: 2 ** 53, lastHash: ZERO, bytes: 1 }, build } }, 'options.log.expected.count'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: 'A'.repeat(63), bytes: 1 }, build } }, 'options.log.expected.lastHash'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: 'g'.repeat(64), bytes: 1 }, build } }, 'options.log.expected.lastHash'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: ZERO, bytes: '1' }, build } }, 'options.log.expected.bytes'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: ZERO, bytes: 0 }, build } }, 'options.log.expected.bytes'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: ZERO, bytes: -1 }, build } }, 'options.log.expected.bytes'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: ['A'.repeat(64)], bytes: 1 }, build } }, 'options.log.expected.lastHash'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: `x${'A'.repeat(64)}`, bytes: 1 }, build } }, 'options.log.expected.lastHash'],
      [{ log: { id: LOG, expected: { count: 1, lastHash: `${'A'.repeat(64)}x`, bytes: 1 }, build } }, 'options.log.expected.lastHash'],
      [{ log: { id: LOG, expected: { count: 0, lastHash: 'A'.repeat(64), bytes: 0 }, build } }, 'options.log.expected.lastHash'],
      [{ log: { id: LOG, expected: undefined, build: 'build' } }, 'options.log.build'],
      [{ log: { id: LOG, expected: undefined } }, 'options.log.build'],
    ];
    for (const [options, detail] of bad) {
      await expectCode(s.commit([c(1n)], options as never), 'ERR_INVALID_ARGUMENT', detail);
    }
    // A malformed entry is refused before the log advance is looked at.
    await expectCode(s.commit([c(-1n)], { log: { id: LOG, expected: undefined, build } }), 'ERR_INVALID_ARGUMENT', 'entries[0].counter.value');
    expect(calls).toBe(0);
    expect(await state(s)).toEqual({ d1: undefined, d2: undefined, count: 0, held: [], log: undefined });
    for (const id of ['a b', '', 'x'.repeat(129), 7]) await expectCode(s.logIntent(id as string), 'ERR_INVALID_ARGUMENT', 'id');
    // Every permitted character, and the longest id.
    for (const id of ['AZaz09._:@-', 'x'.repeat(128)]) {
      await s.commit([], { log: append(undefined, ['x'], id) });
      expect((await s.logIntent(id))?.lines).toEqual(['x']);
    }
    await s.close();
  });

  it('build sees the outcomes of the entries, in order, with the new quarantine id', async () => {
    const s = await open();
    await s.commit([c(5n), held(1n, D2, 1)]);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const entries: CommitEntry[] = [c(5n), c(6n), held(2n, D2, 1), { counter: { originator: A, device: D1, value: 9n }, release: unknown }];
    let seen: readonly CommitOutcome[] | undefined;
    let calls = 0;
    const text = (o: CommitOutcome): string => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const out = await s.commit(entries, {
      log: {
        id: LOG,
        expected: undefined,
        build(outcomes) {
          calls++;
          seen = outcomes;
          return advance(EMPTY, outcomes.map(text));
        },
      },
    });
    expect(calls).toBe(1);
    expect(out.map((o) => o.status)).toEqual(['replayed', 'committed', 'quarantined', 'not-held']);
    expect(seen).toEqual(out);
    expect(out[0]).toEqual({ status: 'replayed', last: 5n });
    expect(Object.isFrozen(seen)).toBe(true);
    expect(Object.isFrozen(seen![0])).toBe(true);
    const id = (out[2] as { id: string }).id;
    expect((await s.quarantineRecord(id))?.state).toBe('held');
    const lines = (await s.logIntent(LOG))!.lines;
    expect(lines).toEqual(out.map(text));
    expect(lines[2]).toContain(id);
    await s.close();
  });

  it('refuses a build that uses the store: the nested call and the commit both fail, nothing applied', async () => {
    const s = await open();
    await s.commit([c(1n)], { log: append(undefined, ['one']) });
    const h = (await s.logIntent(LOG))!.after;
    const before = await state(s);
    const nested: Promise<unknown>[] = [];
    const e = await expectCode(
      s.commit([c(2n)], {
        log: {
          id: LOG,
          expected: h,
          build: () => {
            nested.push(failure(s.commit([c(100n, D2)])), failure(s.lastCounter(A, D1)), failure(s.logIntent(LOG)), failure(s.close()));
            return advance(h, ['two']);
          },
        },
      }),
      'ERR_INVALID_ARGUMENT',
      'options.log.build',
    );
    expect(e).toBeDefined();
    for (const p of nested) {
      const x = await p;
      expect(isSmkiError(x) ? [x.code, x.context] : x).toEqual(['ERR_INVALID_ARGUMENT', { detail: 'options.log.build' }]);
    }
    expect(await state(s)).toEqual(before);
    expect(await s.commit([c(2n)], { log: append(h, ['two']) })).toEqual([{ status: 'committed' }]);
    await s.close();
  });

  it('two stores racing with the same expected head: exactly one wins, the other gets ERR_STORE_LOG_CONFLICT', async () => {
    const at = place();
    const [s1, s2] = [await at(), await at()];
    await s1.commit([], { log: append(undefined, ['genesis']) });
    for (let round = 1n; round <= 12n; round++) {
      const head = (await s1.logIntent(LOG))!.after;
      const was = [await s1.lastCounter(A, D1), await s1.lastCounter(A, D2)];
      const results = await Promise.allSettled([
        s1.commit([c(round, D1)], { log: append(head, [`s1 ${round}`]) }),
        s2.commit([c(round, D2)], { log: append(head, [`s2 ${round}`]) }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled').length).toBe(1);
      const w = results.findIndex((r) => r.status === 'fulfilled');
      const lost = results[1 - w] as PromiseRejectedResult;
      expect(isSmkiError(lost.reason) ? lost.reason.code : lost.reason).toBe('ERR_STORE_LOG_CONFLICT');
      // The winner's intent and counter are stored; the loser's counter did not move.
      expect((await s2.logIntent(LOG))!).toEqual(advance(head, [`s${w + 1} ${round}`]));
      const now = [await s2.lastCounter(A, D1), await s2.lastCounter(A, D2)];
      expect(now[w]).toBe(round);
      expect(now[1 - w]).toBe(was[1 - w]);
    }
    await s1.close();
    await s2.close();
  });
});

describe('decision log head: the exact limits are accepted (memory)', () => {
  it(`${MAX_LOG_INTENT_LINES} lines, and ${MAX_LOG_INTENT_BYTES} bytes`, async () => {
    const s = new MemoryStateStore();
    const many = Array.from({ length: MAX_LOG_INTENT_LINES }, (_, i) => `${i}`);
    await s.commit([], { log: append(undefined, many) });
    expect((await s.logIntent(LOG))?.lines.length).toBe(MAX_LOG_INTENT_LINES);
    const big = Array.from({ length: MAX_LOG_INTENT_BYTES / MAX_LOG_LINE_BYTES }, (_, i) => `${i}`.padEnd(MAX_LOG_LINE_BYTES, 'x'));
    const head = (await s.logIntent(LOG))!.after;
    await s.commit([], { log: append(head, big) });
    expect((await s.logIntent(LOG))?.after.bytes).toBe(head.bytes + MAX_LOG_INTENT_BYTES + big.length);
  });
});

const DURABLE: [string, Place][] = BACKENDS.filter(([name]) => name !== 'memory');

describe.each(DURABLE)('decision log head, durable: %s', (_name, place) => {
  it('survives close and reopen, and the next commit continues from it', async () => {
    const at = place();
    const s = await at();
    await s.commit([c(1n)], { log: append(undefined, ['one', 'two']) });
    const stored = (await s.logIntent(LOG))!;
    await s.close();
    const t = await at();
    expect(await t.logIntent(LOG)).toEqual(stored);
    expect(await t.lastCounter(A, D1)).toBe(1n);
    await expectCode(t.commit([c(2n)], { log: append(stored.before, ['again']) }), 'ERR_STORE_LOG_CONFLICT');
    expect(await t.commit([c(2n)], { log: append(stored.after, ['three']) })).toEqual([{ status: 'committed' }]);
    await t.close();
    const u = await at();
    expect(await u.logIntent(LOG)).toEqual(advance(stored.after, ['three']));
    expect(await u.lastCounter(A, D1)).toBe(2n);
    await u.close();
  });
});

/**
 * Stored rows edited behind the store's back: each is ERR_STORE_CORRUPT for logIntent. A commit
 * carrying the log reads only the heads it compares: a corrupt head is ERR_STORE_CORRUPT there
 * too, an after head that differs from the expected one a conflict, and corrupt lines (needed only
 * to recover after a crash, and already in the log file) are replaced by the commit's own.
 */
const HEAD_JSON = (h: LogHead): string => JSON.stringify({ count: h.count, lastHash: h.lastHash, bytes: h.bytes });
const good = advance(EMPTY, ['one', 'two']);
// [what, column, SQL value for SQLite, for PostgreSQL (the same when null), the field the error names, what a commit does]
type AtCommit = 'corrupt' | 'conflict' | 'replaced';
const CORRUPTIONS: [string, string, string, string | null, string, AtCommit][] = [
  ['before not text', 'before_head', `X'7B7D'`, `'5'`, 'before', 'corrupt'], // bytes in SQLite; PostgreSQL's column holds only text
  ['before not JSON', 'before_head', `'x'`, null, 'before', 'corrupt'],
  ['before not an object', 'before_head', `'[]'`, null, 'before', 'corrupt'],
  ['after with a lower-case hash', 'after_head', `'${HEAD_JSON({ ...good.after, lastHash: good.after.lastHash.toLowerCase() })}'`, null, 'after.lastHash', 'corrupt'],
  ['after not canonical (white space)', 'after_head', `'${HEAD_JSON(good.after).replace(':', ': ')}'`, null, 'after', 'corrupt'],
  ['after not canonical (key order)', 'after_head', `'${JSON.stringify({ lastHash: good.after.lastHash, count: good.after.count, bytes: good.after.bytes })}'`, null, 'after', 'corrupt'],
  ['after with a negative count', 'after_head', `'${HEAD_JSON({ ...good.after, count: -1 })}'`, null, 'after.count', 'corrupt'],
  ['after with an extra field', 'after_head', `'${JSON.stringify({ ...good.after, extra: 1 })}'`, null, 'after', 'corrupt'],
  ['after with bytes beyond the lines', 'after_head', `'${HEAD_JSON({ ...good.after, bytes: good.after.bytes + 1 })}'`, null, 'intent.after.bytes', 'conflict'],
  ['lines not ending with a newline', 'lines', `X'6F6E650A74776F'`, `'\\x6f6e650a74776f'`, 'lines', 'replaced'],
  ['lines not UTF-8', 'lines', `X'6F6E650AFF770A'`, `'\\x6f6e650aff770a'`, 'lines', 'replaced'],
  ['lines with a CR', 'lines', `X'6F6E650A74770D0A'`, `'\\x6f6e650a74770d0a'`, 'intent.lines[1]', 'replaced'],
  ['a line missing', 'lines', `X'74776F0A'`, `'\\x74776f0a'`, 'intent.after.count', 'replaced'],
  ['an empty line', 'lines', `X'6F6E650A0A74776F0A'`, `'\\x6f6e650a0a74776f0a'`, 'intent.lines[1]', 'replaced'],
  ['no lines', 'lines', `X''`, `'\\x'`, 'intent.after.count', 'replaced'],
  ['lines of the wrong hash (same length)', 'lines', `X'6F6E650A74777A0A'`, `'\\x6f6e650a74777a0a'`, 'intent.after.lastHash', 'replaced'],
];

/** A commit that expects the good head, after the row was edited: refused and nothing applied, or applied with its own intent. */
async function expectCommit(s: StateStore, atCommit: AtCommit, field: string): Promise<void> {
  const commit = s.commit([c(2n)], { log: append(good.after, ['three']) });
  if (atCommit === 'replaced') {
    expect(await commit).toEqual([{ status: 'committed' }]);
    expect(await s.logIntent(LOG)).toEqual(advance(good.after, ['three']));
    expect(await s.lastCounter(A, D1)).toBe(2n);
    return;
  }
  if (atCommit === 'corrupt') await expectCode(commit, 'ERR_STORE_CORRUPT', `log ${LOG} ${field}`);
  else await expectCode(commit, 'ERR_STORE_LOG_CONFLICT');
  expect(await s.lastCounter(A, D1)).toBe(1n);
}

describe('decision log head, corrupt rows: SQLite', () => {
  it.each(CORRUPTIONS)('%s', async (_what, column, value, _postgres, field, atCommit) => {
    const path = join(dir, `c${++n}.db`);
    const s = await SqliteStateStore.open({ path });
    await s.commit([c(1n)], { log: append(undefined, good.lines) });
    expect(await s.logIntent(LOG)).toEqual(good);
    const raw = new Database(path);
    raw.prepare(`UPDATE log_heads SET ${column} = ${value}`).run();
    raw.close();
    await expectCode(s.logIntent(LOG), 'ERR_STORE_CORRUPT', `log ${LOG} ${field}`);
    await expectCommit(s, atCommit, field);
    await s.close();
  });

  it('lines stored as text rather than bytes', async () => {
    const path = join(dir, `c${++n}.db`);
    const s = await SqliteStateStore.open({ path });
    await s.commit([], { log: append(undefined, good.lines) });
    const raw = new Database(path);
    raw.prepare(`UPDATE log_heads SET lines = ?`).run('one\ntwo\n');
    raw.close();
    const e = await expectCode(s.logIntent(LOG), 'ERR_STORE_CORRUPT');
    expect((e as { context: { detail: string } }).context.detail).toBe(`log ${LOG} lines`);
    await s.close();
  });
});

describe('decision log head, corrupt rows: PostgreSQL', () => {
  it.each(CORRUPTIONS)('%s', async (_what, column, sqlite, postgres, field, atCommit) => {
    const schema = `c${++n}`;
    const s = await PostgresStateStore.open({ ...connectionOf(pg), schema });
    await s.commit([c(1n)], { log: append(undefined, good.lines) });
    expect(await s.logIntent(LOG)).toEqual(good);
    pg.psql(`UPDATE ${schema}.log_heads SET ${column} = ${postgres ?? sqlite}`);
    await expectCode(s.logIntent(LOG), 'ERR_STORE_CORRUPT', `log ${LOG} ${field}`);
    await expectCommit(s, atCommit, field);
    await s.close();
  });
});
