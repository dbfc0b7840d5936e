// The StateStore contract (docs/store.md), run against every implementation: memory, SQLite and a
// real PostgreSQL server started for this file. Anti-replay per GBCS 4.3.1.5 (strictly increasing
// originator counters), anomaly thresholds per User and message code, quarantine.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { MemoryStateStore, PostgresStateStore, SqliteStateStore } from '@smki/store';
import type { CommitEntry, StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-store-contract-');

const A = parseEui64('90B3D51F30010000');
const B = parseEui64('90B3D51F30020000');
const D1 = parseEui64('00DB1234567890A0');
const D2 = parseEui64('00DB1234567890A1');
const WINDOW = { user: A, messageCode: 0x0050, windowMs: 60_000, windowStart: 1_700_000_040_000 };

let n = 0;


type Factory = () => Promise<StateStore>;
const BACKENDS: [string, Factory][] = [
  ['memory', async () => new MemoryStateStore()],
  ['sqlite', async () => SqliteStateStore.open({ path: join(dir, `s${++n}.db`) })],
  [
    'postgres',
    async () => PostgresStateStore.open({ ...connectionOf(pg), schema: `t${++n}` }),
  ],
];

async function expectCode(p: Promise<unknown>, code: SmkiErrorCode): Promise<unknown> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(isSmkiError(e) ? e.code : e).toBe(code);
  return e;
}

function held(value: bigint, device = D1, command = Uint8Array.of(0xdf, 1, 2, 3)): CommitEntry {
  return {
    counter: { originator: A, device, value },
    anomaly: { ...WINDOW, limit: 2 },
    quarantine: { at: 1_700_000_050_000, user: A, device, messageCode: 0x0050, counter: value, command },
  };
}

describe.each(BACKENDS)('StateStore contract: %s', (_name, open) => {
  it('accepts a counter once, then only greater ones (strictly increasing)', async () => {
    const s = await open();
    expect(await s.lastCounter(A, D1)).toBeUndefined();
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 1000n } }])).toEqual([{ status: 'committed' }]);
    expect(await s.lastCounter(A, D1)).toBe(1000n);
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 1000n } }])).toEqual([{ status: 'replayed', last: 1000n }]);
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 999n } }])).toEqual([{ status: 'replayed', last: 1000n }]);
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 1001n } }])).toEqual([{ status: 'committed' }]);
    expect(await s.lastCounter(A, D1)).toBe(1001n);
    await s.close();
  });

  it('keeps one counter per (originator, device)', async () => {
    const s = await open();
    await s.commit([{ counter: { originator: A, device: D1, value: 50n } }]);
    expect(await s.commit([{ counter: { originator: A, device: D2, value: 10n } }])).toEqual([{ status: 'committed' }]);
    expect(await s.commit([{ counter: { originator: B, device: D1, value: 10n } }])).toEqual([{ status: 'committed' }]);
    expect(await s.lastCounter(A, D1)).toBe(50n);
    expect(await s.lastCounter(A, D2)).toBe(10n);
    expect(await s.lastCounter(B, D1)).toBe(10n);
    expect(await s.lastCounter(B, D2)).toBeUndefined();
    await s.close();
  });

  it('accepts a counter repeated within one commit once, and later entries see earlier ones', async () => {
    const s = await open();
    const c = (value: bigint): CommitEntry => ({ counter: { originator: A, device: D1, value } });
    expect(await s.commit([c(5n), c(5n), c(4n), c(6n), c(6n)])).toEqual([
      { status: 'committed' },
      { status: 'replayed', last: 5n },
      { status: 'replayed', last: 5n },
      { status: 'committed' },
      { status: 'replayed', last: 6n },
    ]);
    expect(await s.lastCounter(A, D1)).toBe(6n);
    await s.close();
  });

  it('compares counters as unsigned 64-bit numbers, not as text or signed integers', async () => {
    const s = await open();
    const c = (value: bigint, device = D1): CommitEntry => ({ counter: { originator: A, device, value } });
    expect(await s.commit([c(0xffn), c(0x100n)])).toEqual([{ status: 'committed' }, { status: 'committed' }]);
    expect(await s.commit([c(0xffn)])).toEqual([{ status: 'replayed', last: 0x100n }]);
    expect(await s.commit([c(1n << 63n, D2)])).toEqual([{ status: 'committed' }]);
    expect(await s.commit([c((1n << 63n) - 1n, D2)])).toEqual([{ status: 'replayed', last: 1n << 63n }]);
    expect(await s.commit([c((1n << 64n) - 1n, D2)])).toEqual([{ status: 'committed' }]);
    expect(await s.lastCounter(A, D2)).toBe((1n << 64n) - 1n);
    expect(await s.commit([c(0n, parseEui64('00DB1234567890A2'))])).toEqual([{ status: 'committed' }]);
    await s.close();
  });

  it('refuses a malformed commit before anything is written', async () => {
    const s = await open();
    const good: CommitEntry = { counter: { originator: A, device: D1, value: 7n } };
    const bad: [unknown, string][] = [
      [[good, { counter: { originator: A, device: D1, value: 1n << 64n } }], 'entries[1].counter.value'],
      [[good, { counter: { originator: A, device: D1, value: -1n } }], 'entries[1].counter.value'],
      [[good, { counter: { originator: A, device: D1, value: 8 } }], 'entries[1].counter.value'],
      [[good, { counter: { originator: '00db1234567890a0', device: D1, value: 8n } }], 'entries[1].counter.originator'],
      [[good, { counter: { originator: A, device: '00-DB-12-34-56-78-90-A0', value: 8n } }], 'entries[1].counter.device'],
      [[good, null], 'entries[1]'],
      [[good, { counter: null }], 'entries[1].counter'],
      [[good, { anomaly: { ...WINDOW, limit: 1 } }], 'entries[1].quarantine'],
      [[good, { anomaly: { ...WINDOW, windowStart: WINDOW.windowStart + 1, limit: 1 }, quarantine: held(8n).quarantine }], 'entries[1].anomaly.windowStart'],
      [[good, { anomaly: { ...WINDOW, limit: -1 }, quarantine: held(8n).quarantine }], 'entries[1].anomaly.limit'],
      [[good, { anomaly: { ...WINDOW, messageCode: 0x10000, limit: 1 }, quarantine: held(8n).quarantine }], 'entries[1].anomaly.messageCode'],
      [[good, { anomaly: { ...WINDOW, windowMs: 0, windowStart: 0, limit: 1 }, quarantine: held(8n).quarantine }], 'entries[1].anomaly.windowMs'],
      [[good, { ...held(8n), quarantine: { ...held(8n).quarantine!, counter: 9n } }], 'entries[1].quarantine'],
      [[good, { ...held(8n), quarantine: { ...held(8n).quarantine!, command: new Uint8Array(65537) } }], 'entries[1].quarantine.command'],
      [[good, { quarantine: held(8n).quarantine }], 'entries[1].quarantine'],
      [[good, { ...held(8n), anomaly: { ...WINDOW, user: B, limit: 1 }, counter: undefined }], 'entries[1].quarantine'],
      [[good, { ...held(8n), anomaly: { ...WINDOW, messageCode: 0x81, limit: 1 } }], 'entries[1].quarantine'],
      [[good, { release: 'not-an-id' }], 'entries[1].release'],
      [{ length: 1, 0: good }, 'entries'],
      [Array.from({ length: 10_001 }, () => good), 'entries'],
    ];
    for (const [entries, detail] of bad) {
      const e = await expectCode(s.commit(entries as CommitEntry[]), 'ERR_INVALID_ARGUMENT');
      expect((e as { context: { detail: string } }).context.detail).toBe(detail);
    }
    expect(await s.lastCounter(A, D1)).toBeUndefined();
    expect(await s.anomalyCount(WINDOW)).toBe(0);
    expect(await s.heldQuarantine()).toEqual([]);
    // Each refusal names the argument at fault.
    for (const [call, detail] of [
      [() => s.lastCounter('x' as never, D1), 'originator'],
      [() => s.lastCounter(A, 'x' as never), 'device'],
      [() => s.anomalyCount({ ...WINDOW, windowStart: 5 }), 'window.windowStart'],
      [() => s.anomalyCount(5 as never), 'window'],
      [() => s.quarantineRecord('nope'), 'id'],
      [() => s.discardQuarantine('nope'), 'id'],
      [() => s.heldQuarantine(0), 'limit'],
      [() => s.pruneAnomalyWindows(-1), 'before'],
    ] as [() => Promise<unknown>, string][]) {
      const e = await expectCode(call(), 'ERR_INVALID_ARGUMENT');
      expect((e as { context: { detail: string } }).context.detail).toBe(detail);
    }
    expect(await s.commit([])).toEqual([]);
    await s.close();
  });

  it('quarantines the command that would cross the anomaly limit, and keeps it for an operator', async () => {
    const s = await open();
    const cmd = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const out = await s.commit([held(1n), held(2n, D2), held(3n, D1, cmd)]);
    expect(out.slice(0, 2)).toEqual([{ status: 'committed' }, { status: 'committed' }]);
    expect(out[2]).toMatchObject({ status: 'quarantined', count: 2 });
    const id = (out[2] as { id: string }).id;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // Held: the counter did not move and the window did not count it.
    expect(await s.lastCounter(A, D1)).toBe(1n);
    expect(await s.anomalyCount(WINDOW)).toBe(2);
    const rec = await s.quarantineRecord(id);
    expect(rec).toEqual({ id, at: 1_700_000_050_000, user: A, device: D1, messageCode: 0x50, counter: 3n, command: cmd, state: 'held' });
    expect(await s.heldQuarantine()).toEqual([rec]);
    // An id of the right shape that names no record.
    expect(await s.quarantineRecord('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    // Over the limit every further command is held too, each under its own id.
    const more = await s.commit([held(4n), held(5n)]);
    expect(more.map((o) => o.status)).toEqual(['quarantined', 'quarantined']);
    expect(new Set([id, ...more.map((o) => (o as { id: string }).id)]).size).toBe(3);
    expect((await s.heldQuarantine()).length).toBe(3);
    expect((await s.heldQuarantine(1)).length).toBe(1);
    await s.close();
  });

  it('lists held commands oldest first, and by id among those held at the same time', async () => {
    const s = await open();
    const at = (value: bigint, t: number): CommitEntry => ({ ...held(value), quarantine: { ...held(value).quarantine!, at: t } });
    // Two commands fill the window (limit 2); each later one is held, at the time given.
    // Seven held at one time (their ids random, so any order but the right one is all but sure to show).
    const times = [3000, 1000, 2000, 1000, 1000, 1000, 1000, 1000, 1000];
    const out = await s.commit([held(1n), held(2n), ...times.map((t, i) => at(BigInt(i + 3), t))]);
    const ids = out.slice(2).map((o) => (o as { id: string }).id);
    const sameTime = ids.filter((_, i) => times[i] === 1000).sort();
    expect(sameTime.length).toBe(7);
    const listed = (await s.heldQuarantine()).map((r) => r.id);
    expect(listed).toEqual([...sameTime, ids[2], ids[0]]);
    expect((await s.heldQuarantine(2)).map((r) => r.id)).toEqual(sameTime.slice(0, 2));
    await s.close();
  });

  it('releases a held command once (an operator decision: counter advances, counted beyond the limit)', async () => {
    const s = await open();
    const [, , q] = await s.commit([held(1n), held(2n), held(3n)]);
    const id = (q as { id: string }).id;
    const release: CommitEntry = { counter: { originator: A, device: D1, value: 3n }, anomaly: { ...WINDOW, limit: 2 }, release: id };
    expect(await s.commit([release])).toEqual([{ status: 'committed' }]);
    expect(await s.lastCounter(A, D1)).toBe(3n);
    expect(await s.anomalyCount(WINDOW)).toBe(3);
    expect((await s.quarantineRecord(id))?.state).toBe('released');
    expect(await s.heldQuarantine()).toEqual([]);
    // Released is not held: a second release applies nothing.
    expect(await s.commit([release])).toEqual([{ status: 'not-held' }]);
    expect(await s.lastCounter(A, D1)).toBe(3n);
    // An unknown id is not held either; discarding it reports false.
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 9n }, release: unknown }])).toEqual([{ status: 'not-held' }]);
    expect(await s.lastCounter(A, D1)).toBe(3n);
    expect(await s.discardQuarantine(unknown)).toBe(false);
    expect(await s.discardQuarantine(id)).toBe(false);
    await s.close();
  });

  it('a release whose counter was overtaken is a replay and stays held', async () => {
    const s = await open();
    const [, , q] = await s.commit([held(1n), held(2n), held(3n)]);
    const id = (q as { id: string }).id;
    await s.commit([{ counter: { originator: A, device: D1, value: 10n } }]);
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 3n }, release: id }])).toEqual([{ status: 'replayed', last: 10n }]);
    expect((await s.quarantineRecord(id))?.state).toBe('held');
    expect(await s.discardQuarantine(id)).toBe(true);
    expect((await s.quarantineRecord(id))?.state).toBe('discarded');
    expect(await s.commit([{ counter: { originator: A, device: D1, value: 3n }, release: id }])).toEqual([{ status: 'not-held' }]);
    await s.close();
  });

  it('a release must name the held command: another counter, device or originator releases nothing', async () => {
    const s = await open();
    const [, , q] = await s.commit([held(1n), held(2n), held(3n)]);
    const id = (q as { id: string }).id;
    for (const counter of [
      { originator: A, device: D1, value: 4n },
      { originator: A, device: D2, value: 3n },
      { originator: B, device: D1, value: 3n },
    ]) {
      expect(await s.commit([{ counter, release: id }])).toEqual([{ status: 'not-held' }]);
    }
    expect((await s.quarantineRecord(id))?.state).toBe('held');
    expect(await s.lastCounter(A, D1)).toBe(2n);
    expect(await s.lastCounter(A, D2)).toBeUndefined();
    expect(await s.lastCounter(B, D1)).toBeUndefined();
    // A release is a counter claim too: without one it is refused before anything is read.
    const e = await expectCode(s.commit([{ release: id } as CommitEntry]), 'ERR_INVALID_ARGUMENT');
    expect((e as { context: { detail: string } }).context.detail).toBe('entries[0].counter');
    // The held command itself is released, in the same commit that quarantined it too.
    const [, r] = await s.commit([held(5n, D2), { counter: { originator: A, device: D1, value: 3n }, release: id }]);
    expect(r).toEqual({ status: 'committed' });
    expect(await s.lastCounter(A, D1)).toBe(3n);
    await s.close();
  });

  it('checks replay before the anomaly limit, and a limit of 0 holds everything', async () => {
    const s = await open();
    await s.commit([{ counter: { originator: A, device: D1, value: 5n } }]);
    const replay = { ...held(5n), anomaly: { ...WINDOW, limit: 0 } };
    expect(await s.commit([replay])).toEqual([{ status: 'replayed', last: 5n }]);
    expect(await s.heldQuarantine()).toEqual([]);
    const [o] = await s.commit([{ ...held(6n), anomaly: { ...WINDOW, limit: 0 } }]);
    expect(o).toMatchObject({ status: 'quarantined', count: 0 });
    await s.close();
  });

  it('counts each (user, message code, window) on its own, and prunes ended windows', async () => {
    const s = await open();
    const other = { ...WINDOW, windowStart: WINDOW.windowStart + 60_000 };
    const e = (value: bigint, w: typeof WINDOW, code = 0x50, user = A): CommitEntry => ({
      counter: { originator: user, device: D1, value },
      anomaly: { ...w, messageCode: code, user, limit: 1 },
      quarantine: { at: 0, user, device: D1, messageCode: code, counter: value, command: new Uint8Array(0) },
    });
    const out = await s.commit([e(1n, WINDOW), e(2n, other), e(3n, WINDOW, 0x81), e(1n, WINDOW, 0x50, B), e(4n, WINDOW)]);
    expect(out.map((o) => o.status)).toEqual(['committed', 'committed', 'committed', 'committed', 'quarantined']);
    expect(await s.anomalyCount(WINDOW)).toBe(1);
    expect(await s.anomalyCount(other)).toBe(1);
    expect(await s.anomalyCount({ ...WINDOW, messageCode: 0x81 })).toBe(1);
    expect(await s.anomalyCount({ ...WINDOW, user: B })).toBe(1);
    expect(await s.anomalyCount({ ...WINDOW, windowMs: 30_000 })).toBe(0);
    // A window ends at windowStart + windowMs: pruning at that instant removes it, one ms earlier does not.
    expect(await s.pruneAnomalyWindows(WINDOW.windowStart + 60_000 - 1)).toBe(0);
    expect(await s.pruneAnomalyWindows(WINDOW.windowStart + 60_000)).toBe(3);
    expect(await s.anomalyCount(WINDOW)).toBe(0);
    expect(await s.anomalyCount(other)).toBe(1);
    await s.close();
  });

  it('returns copies: changing a returned or given command changes nothing stored', async () => {
    const s = await open();
    const cmd = Uint8Array.of(1, 2, 3);
    const entries = [held(1n), held(2n), held(3n, D1, cmd)];
    const [, , q] = await s.commit(entries);
    cmd[0] = 0xff;
    const id = (q as { id: string }).id;
    const r1 = await s.quarantineRecord(id);
    expect(r1?.command).toEqual(Uint8Array.of(1, 2, 3));
    r1!.command[1] = 0xff;
    expect((await s.quarantineRecord(id))?.command).toEqual(Uint8Array.of(1, 2, 3));
    await s.close();
  });

  it('refuses every call once closed', async () => {
    const s = await open();
    await s.close();
    await s.close();
    await expectCode(s.lastCounter(A, D1), 'ERR_STORE_CLOSED');
    await expectCode(s.commit([{ counter: { originator: A, device: D1, value: 1n } }]), 'ERR_STORE_CLOSED');
    await expectCode(s.anomalyCount(WINDOW), 'ERR_STORE_CLOSED');
    await expectCode(s.heldQuarantine(), 'ERR_STORE_CLOSED');
    await expectCode(s.quarantineRecord('00000000-0000-4000-8000-000000000000'), 'ERR_STORE_CLOSED');
    await expectCode(s.discardQuarantine('00000000-0000-4000-8000-000000000000'), 'ERR_STORE_CLOSED');
    await expectCode(s.pruneAnomalyWindows(0), 'ERR_STORE_CLOSED');
  });
});
