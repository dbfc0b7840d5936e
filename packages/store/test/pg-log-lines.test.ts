// PostgreSQL keeps the decision log's records themselves (keepLogLines): every line a commit
// carries goes into log_lines in the same transaction as the counters, numbered after the head
// before it; a refused commit keeps none; the lines read back in order, and a damaged table is
// named rather than read around. Against a real PostgreSQL server started for this file.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64, type SmkiErrorCode } from '@smki/core';
import { PostgresStateStore } from '@smki/store';
import type { CommitEntry, LogAppend, LogHead, LogIntent } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg } = postgresForThisFile('smki-store-loglines-');

const A = parseEui64('90B3D51F30010000');
const D1 = parseEui64('00DB1234567890A0');
const EMPTY: LogHead = { count: 0, lastHash: '0'.repeat(64), bytes: 0 };
const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex').toUpperCase();

function advance(before: LogHead, lines: readonly string[]): LogIntent {
  let bytes = before.bytes;
  for (const l of lines) bytes += Buffer.byteLength(l, 'utf8') + 1;
  return { before, after: { count: before.count + lines.length, lastHash: lines.length > 0 ? sha(lines.at(-1)!) : before.lastHash, bytes }, lines };
}
const append = (expected: LogHead | undefined, lines: readonly string[], id = 'validator-1'): LogAppend => ({ id, expected, build: () => advance(expected ?? EMPTY, lines) });
const c = (value: bigint): CommitEntry => ({ counter: { originator: A, device: D1, value } });

let n = 0;
async function open(keepLogLines: boolean | undefined) {
  const schema = `loglines_${++n}`;
  return { schema, store: await PostgresStateStore.open({ ...connectionOf(pg), schema, ...(keepLogLines === undefined ? {} : { keepLogLines }) }) };
}

async function expectCode(p: Promise<unknown>, code: SmkiErrorCode): Promise<unknown> {
  const e = await p.then(
    () => 'resolved',
    (x: unknown) => x,
  );
  expect(isSmkiError(e) ? e.code : e).toBe(code);
  return e;
}

describe('PostgresStateStore keepLogLines', () => {
  it('keeps every committed line, numbered after the head before it, read back in order, from any record', async () => {
    const { store } = await open(true);
    try {
      const one = advance(EMPTY, ['{"seq":1}', '{"seq":2}']);
      await store.commit([c(1n)], { log: append(undefined, one.lines) });
      await store.commit([c(2n)], { log: append(one.after, ['{"seq":3}']) });
      await store.commit([], { log: append(undefined, ['other'], 'validator-2') });
      expect(await store.logLines('validator-1')).toEqual(['{"seq":1}', '{"seq":2}', '{"seq":3}']);
      expect(await store.logLines('validator-1', 1)).toEqual(['{"seq":2}', '{"seq":3}']);
      expect(await store.logLines('validator-1', 0, 2)).toEqual(['{"seq":1}', '{"seq":2}']);
      expect(await store.logLines('validator-1', 3)).toEqual([]);
      expect(await store.logLines('validator-2')).toEqual(['other']);
      expect(await store.logLines('nobody')).toEqual([]);
      expect(await store.logIds()).toEqual(['validator-1', 'validator-2']);
    } finally {
      await store.close();
    }
  });

  it('a refused commit keeps no line (log conflict, a build that throws), and the counter did not move', async () => {
    const { store } = await open(true);
    try {
      const one = advance(EMPTY, ['{"seq":1}']);
      await store.commit([c(1n)], { log: append(undefined, one.lines) });
      await expectCode(store.commit([c(2n)], { log: append(undefined, ['{"seq":2}']) }), 'ERR_STORE_LOG_CONFLICT');
      await failureOf(store.commit([c(3n)], { log: { id: 'validator-1', expected: one.after, build: () => { throw new Error('no'); } } }));
      expect(await store.logLines('validator-1')).toEqual(['{"seq":1}']);
      // The counter is still 1: commit 2 is accepted now.
      expect(await store.commit([c(2n)], { log: append(one.after, ['{"seq":2}']) })).toEqual([{ status: 'committed' }]);
      expect(await store.logLines('validator-1')).toEqual(['{"seq":1}', '{"seq":2}']);
    } finally {
      await store.close();
    }
  });

  it('off by default: the head is kept, not the lines', async () => {
    for (const keep of [undefined, false]) {
      const { schema, store } = await open(keep);
      try {
        await store.commit([c(1n)], { log: append(undefined, ['{"seq":1}']) });
        expect((await store.logIntent('validator-1'))?.after.count).toBe(1);
        expect(pg.psql(`SELECT count(*) FROM ${schema}.log_lines`).trim()).toBe('0');
        expect(await store.logLines('validator-1')).toEqual([]);
      } finally {
        await store.close();
      }
    }
  });

  it('a line deleted from the table is named (ERR_STORE_CORRUPT), not read around', async () => {
    const { schema, store } = await open(true);
    try {
      await store.commit([c(1n)], { log: append(undefined, ['a', 'b', 'c']) });
      pg.psql(`DELETE FROM ${schema}.log_lines WHERE seq = 2`);
      const e = await expectCode(store.logLines('validator-1'), 'ERR_STORE_CORRUPT');
      expect(String((e as Error).message)).toContain('line 2');
      expect((e as { context: { detail?: string } }).context.detail).toBe('log_lines validator-1 3');
      expect(await store.logLines('validator-1', 2)).toEqual(['c']);
    } finally {
      await store.close();
    }
  });

  it('refuses malformed arguments and options', async () => {
    const { store } = await open(true);
    try {
      await expectCode(store.logLines('bad id!'), 'ERR_INVALID_ARGUMENT');
      await expectCode(store.logLines('validator-1', -1), 'ERR_INVALID_ARGUMENT');
      await expectCode(store.logLines('validator-1', 0.5), 'ERR_INVALID_ARGUMENT');
      await expectCode(store.logLines('validator-1', 0, 0), 'ERR_INVALID_ARGUMENT');
      await expectCode(store.logLines('validator-1', 0, 1_000_001), 'ERR_INVALID_ARGUMENT');
      expect(await store.logLines('validator-1', 0, 1_000_000)).toEqual([]);
      // The detail names the value refused.
      expect(((await expectCode(store.logLines('validator-1', -3), 'ERR_INVALID_ARGUMENT')) as { context: { detail?: string } }).context.detail).toBe('-3');
      expect(((await expectCode(store.logLines('validator-1', 0, 0), 'ERR_INVALID_ARGUMENT')) as { context: { detail?: string } }).context.detail).toBe('0');
      await store.commit([c(1n)], { log: append(undefined, ['x', 'y']) });
      expect(await store.logLines('validator-1', 0, 1)).toEqual(['x']);
    } finally {
      await store.close();
    }
    await expectCode(PostgresStateStore.open({ ...connectionOf(pg), schema: 'loglines_bad', keepLogLines: 'yes' as unknown as boolean }), 'ERR_INVALID_ARGUMENT');
  });

  it('with the server stopped, logLines and logIds fail as unavailable; closed, as closed', async () => {
    const { store } = await open(true);
    pg.stop('fast');
    try {
      await expectCode(store.logLines('validator-1'), 'ERR_STORE_UNAVAILABLE');
      await expectCode(store.logIds(), 'ERR_STORE_UNAVAILABLE');
    } finally {
      pg.start();
    }
    await store.close();
    await expectCode(store.logLines('validator-1'), 'ERR_STORE_CLOSED');
    await expectCode(store.logIds(), 'ERR_STORE_CLOSED');
  });
});

async function failureOf(p: Promise<unknown>): Promise<void> {
  const r = await p.then(
    () => 'resolved',
    () => 'rejected',
  );
  expect(r).toBe('rejected');
}
