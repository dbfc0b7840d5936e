// The group commit and the decision log when the store's answer is lost or wrong, in process
// (the process tests do the same by killing processes and stopping PostgreSQL): a commit applied
// but not acknowledged, one not applied, the store's head moved by someone else, a validator
// closed with an outcome still unknown, the log file missing its last lines after a crash, and a
// store older than the log (docs/validator.md "The commit and the decision log").
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SmkiError } from '@smki/core';
import { verifyAuditLog } from '@smki/keystore';
import { MemoryStateStore, type CommitEntry, type CommitOutcome, type LogAppend, type StateStore } from '@smki/store';
import { DECISION_LOG_SCHEMA, type Decision, type Validator } from '../src/index.js';
import { DecisionCommitter, type PendingDecision } from '../src/internal/log.js';
import { LOG_KEY, SUPPLIER, buildWorld, disconnect, memoryStores, openValidator, tempDir, type World } from './_world.js';
import { expectRejectedAt } from './_expect.js';

let world: World;
beforeAll(async () => {
  world = await buildWorld({ meters: 4 });
});
const NOW = () => BigInt(world.now.getTime());

type Mode = 'ok' | 'lost-ack' | 'lost-before' | 'not-applied' | 'corrupt-after-build' | 'driver-bug' | 'intent-fails';
/**
 * A memory store whose next commit (or intent read) fails the way `mode` says:
 * - `lost-ack`: applied, then the answer is lost (ERR_STORE_UNAVAILABLE);
 * - `lost-before`: the connection is lost before the transaction starts (build is never called);
 * - `not-applied`: the transaction ran (build was called) and was rolled back, then the answer is
 *   lost (ERR_STORE_UNAVAILABLE), e.g. the connection dropped during COMMIT;
 * - `corrupt-after-build`: the transaction ran and was rolled back with ERR_STORE_CORRUPT;
 * - `driver-bug`: the call throws something that is not an SmkiError (a TypeError) before anything;
 * - `intent-fails`: every intent read fails (ERR_STORE_UNAVAILABLE) until the mode changes.
 */
function flaky(): { store: StateStore; inner: MemoryStateStore; next: (m: Mode) => void } {
  const inner = new MemoryStateStore();
  let mode: Mode = 'ok';
  const gone = () => new SmkiError('ERR_STORE_UNAVAILABLE', 'connection lost', {});
  const store = new Proxy(inner, {
    get: (t, k) => {
      const real = (Reflect.get(t, k) as (...a: unknown[]) => Promise<unknown>).bind(t);
      if (k === 'commit' && mode !== 'ok' && mode !== 'intent-fails') {
        const m = mode;
        return async (entries: CommitEntry[], options: { log: LogAppend }) => {
          mode = 'ok';
          if (m === 'driver-bug') throw new TypeError('a driver bug');
          if (m === 'lost-ack') await real(entries, options);
          if (m === 'not-applied' || m === 'corrupt-after-build') {
            const rollback = new Error('rolled back');
            const log = options.log;
            const build = (o: readonly CommitOutcome[]): never => {
              log.build(o);
              throw rollback;
            };
            await real(entries, { ...options, log: { ...log, build } }).catch((e: unknown) => {
              if (e !== rollback) throw e;
            });
            if (m === 'corrupt-after-build') throw new SmkiError('ERR_STORE_CORRUPT', 'a row failed its check', {});
          }
          throw gone();
        };
      }
      if (k === 'logIntent' && mode === 'intent-fails') return async () => Promise.reject(gone());
      return real;
    },
  }) as StateStore;
  return { store, inner, next: (m) => (mode = m) };
}

/** A validator over a {@link flaky} store, with its own log directory. */
async function flakyValidator(): Promise<{ f: ReturnType<typeof flaky>; v: Validator }> {
  const f = flaky();
  return { f, v: await openValidator(world, { ...(await memoryStores(world)), store: f.store }, { dir: tempDir() }) };
}

async function records(v: Validator): Promise<Record<string, unknown>[]> {
  const path = v.logHead().path;
  await v.close();
  expect((await verifyAuditLog(path, { key: LOG_KEY, schema: DECISION_LOG_SCHEMA })).ok).toBe(true);
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
const kinds = (rs: Record<string, unknown>[]) => rs.map((r) => (r['type'] === 'command.rejected' ? `rejected ${r['code'] as string}` : (r['type'] as string)));

describe('commits whose outcome is unknown', () => {
  it('applied but not acknowledged: the caller hears ERR_STORE_UNAVAILABLE, the next group writes the records and notes the commit; the counter was used', async () => {
    const { f, v } = await flakyValidator();
    const d1 = await disconnect(world, world.meters[0]!, NOW());
    f.next('lost-ack');
    expectRejectedAt(await v.validate(d1, { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    expect((await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    expectRejectedAt(await v.validate(d1, { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    const rs = await records(v);
    expect(kinds(rs)).toEqual(['command.accepted', 'commit.unacknowledged', 'command.accepted', 'rejected ERR_COMMAND_REPLAYED']);
    expect(rs[1]).toMatchObject({ firstSeq: 1, records: 1 });
  });

  it.each(['lost-before', 'not-applied'] as const)(
    'not applied (%s): the caller hears ERR_STORE_UNAVAILABLE, its records are dropped, and the command can be sent again',
    async (mode) => {
      // As the first commit of a fresh store (no head stored yet), and as a later one.
      for (const first of [true, false]) {
        const { f, v } = await flakyValidator();
        if (!first) expect((await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
        const d1 = await disconnect(world, world.meters[0]!, NOW());
        f.next(mode);
        expectRejectedAt(await v.validate(d1, { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
        expect(await f.inner.lastCounter(SUPPLIER, world.meters[0]!.eui)).toBeUndefined();
        expect((await v.validate(d1, { sender: SUPPLIER })).outcome).toBe('accepted');
        expect(kinds(await records(v))).toEqual(first ? ['command.accepted'] : ['command.accepted', 'command.accepted']);
      }
    },
  );

  it('a failure after the transaction ran that is not a lost connection (ERR_STORE_CORRUPT) is not an unknown outcome: the next group does not ask the store', async () => {
    const { f, v } = await flakyValidator();
    f.next('corrupt-after-build');
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_CORRUPT');
    // Were the outcome unknown, this group would read the intent first, and fail with it.
    f.next('intent-fails');
    const d = await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER });
    f.next('ok');
    expect(d.outcome).toBe('accepted');
    expect(kinds(await records(v))).toEqual(['command.accepted']);
  });

  it('a store that throws something other than an SmkiError: ERR_STORE_UNAVAILABLE at the commit step, nothing applied, and the next command goes on', async () => {
    const { f, v } = await flakyValidator();
    f.next('driver-bug');
    const d1 = await disconnect(world, world.meters[0]!, NOW());
    const d = await v.validate(d1, { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_STORE_UNAVAILABLE');
    expect((d as { message: string }).message).toBe('the commit failed');
    expect((await v.validate(d1, { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(kinds(await records(v))).toEqual(['command.accepted']);
  });

  it('a store that cannot say (its intent unreadable) keeps failing closed, then resolves when it answers', async () => {
    const { f, v } = await flakyValidator();
    const d1 = await disconnect(world, world.meters[0]!, NOW());
    f.next('lost-ack');
    expectRejectedAt(await v.validate(d1, { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    f.next('intent-fails');
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    f.next('ok');
    expect((await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(kinds(await records(v))).toEqual(['command.accepted', 'commit.unacknowledged', 'command.accepted']);
  });

  it("the store's head moved under this process meanwhile: ERR_STORE_LOG_CONFLICT, and every later command too", async () => {
    const f = flaky();
    const v = await openValidator(world, { ...(await memoryStores(world)), store: f.store }, { dir: tempDir(), id: 'moved' });
    f.next('not-applied');
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    // Someone else advances the log's head in the store.
    const head = { count: 0, lastHash: '0'.repeat(64), bytes: 0 };
    await f.inner.commit([], { log: { id: 'moved', expected: undefined, build: () => ({ before: head, after: { count: 1, lastHash: createHash('sha256').update('abc').digest('hex').toUpperCase(), bytes: 4 }, lines: ['abc'] }) } });
    for (const i of [1, 2]) {
      const d = await v.validate(await disconnect(world, world.meters[i]!, NOW()), { sender: SUPPLIER });
      expectRejectedAt(d, 'ERR_STORE_LOG_CONFLICT');
    }
    expect(await f.inner.lastCounter(SUPPLIER, world.meters[1]!.eui)).toBeUndefined();
    await v.close();
  });

  it('closed with the outcome unknown: applied, the records are written; not applied, dropped; unreadable, dropped', async () => {
    for (const [mode, expected] of [
      ['lost-ack', ['command.accepted']],
      ['not-applied', []],
    ] as const) {
      const { f, v } = await flakyValidator();
      f.next(mode);
      expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
      expect(kinds(await records(v))).toEqual(expected);
    }
    const { f, v } = await flakyValidator();
    f.next('lost-ack');
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    f.next('intent-fails');
    await v.close();
  });
});

describe('closing', () => {
  it('waits for the calls in flight: each is answered and its records are in the log', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir() });
    const bytes = await Promise.all(world.meters.map((m) => disconnect(world, m, NOW())));
    const calls = bytes.map((b) => v.validate(b, { sender: SUPPLIER }));
    const path = v.logHead().path;
    const closing = v.close();
    // A call made once close has begun is refused, and decides nothing.
    await expect(v.validate(await disconnect(world, world.meters[0]!, NOW() + 1n), { sender: SUPPLIER })).rejects.toMatchObject({ code: 'ERR_VALIDATOR_CLOSED' });
    await closing;
    expect((await Promise.all(calls)).map((d) => d.outcome)).toEqual(bytes.map(() => 'accepted'));
    expect((await verifyAuditLog(path, { key: LOG_KEY, schema: DECISION_LOG_SCHEMA })).ok).toBe(true);
    expect(readFileSync(path, 'utf8').trim().split('\n').length).toBe(bytes.length);
  });
});

describe('the log against the store at open', () => {
  it("a log file missing its last group's lines (a crash between the two writes) gets them back from the store's intent", async () => {
    const dir = tempDir();
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { dir });
    for (const i of [0, 1]) expect((await v.validate(await disconnect(world, world.meters[i]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    const path = v.logHead().path;
    await v.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    writeFileSync(path, `${lines.slice(0, 1).join('\n')}\n`);
    const again = await openValidator(world, stores, { dir });
    expect(again.logHead().count).toBe(2);
    expectRejectedAt(await again.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    expect(kinds(await records(again))).toEqual(['command.accepted', 'command.accepted', 'rejected ERR_COMMAND_REPLAYED']);
  });

  it('a store older than the log: ERR_VALIDATOR_STATE_BEHIND, saying how far behind and how many of those records changed the state', async () => {
    const dir = tempDir();
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { dir });
    expect((await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    await v.close();
    const err = await openValidator(world, { ...stores, store: new MemoryStateStore() }, { dir }).then(
      () => undefined,
      (e: unknown) => e as SmkiError,
    );
    expect(err).toMatchObject({ code: 'ERR_VALIDATOR_STATE_BEHIND', context: { detail: 'store head 0, log head 2' } });
    expect(err?.message).toMatch(/holds 2 record\(s\) beyond the state store's head \(1 of them changed the state\)/);
  });
});

describe('group commit', () => {
  it('a caller that sends its next command as soon as it hears back, after any number of ticks, is always answered', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir() });
    const bytes = await Promise.all(Array.from({ length: 24 }, (_, k) => disconnect(world, world.meters[k % 4]!, NOW() + BigInt(k))));
    const outcomes: string[] = [];
    for (let k = 0; k < bytes.length; k++) {
      outcomes.push((await v.validate(bytes[k]!, { sender: SUPPLIER })).outcome);
      for (let t = 0; t < k; t++) await null;
    }
    expect(outcomes).toEqual(bytes.map(() => 'accepted'));
    expect((await records(v)).length).toBe(bytes.length);
  }, 20_000);

  it('an item queued at any tick after the previous group answers (even as its commit loop ends) is committed, never stranded', async () => {
    const c = await DecisionCommitter.open(new MemoryStateStore(), { dir: tempDir(), id: 'ticks', key: LOG_KEY, max: 256 });
    const item = (n: number): PendingDecision<number> => ({
      record: () => ({ type: 'quarantine.discarded', quarantineId: `q-${n}`, operator: 'tick' }),
      result: () => n,
      failed: (e) => {
        throw e;
      },
    });
    const within = <T>(p: Promise<T>): Promise<T | 'stranded'> => Promise.race([p, new Promise<'stranded'>((r) => setTimeout(() => r('stranded'), 2000))]);
    for (let ticks = 0; ticks < 16; ticks++) {
      let second: Promise<number[]> | undefined;
      await c.submit([item(2 * ticks)]).then(async () => {
        for (let t = 0; t < ticks; t++) await null;
        second = c.submit([item(2 * ticks + 1)]);
      });
      expect(await within(second as Promise<number[]>)).toEqual([2 * ticks + 1]);
    }
    expect(c.log.head().count).toBe(32);
    await c.close();
  });

  it('many calls at once, over many ticks: every one answered, in one log that verifies', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir() });
    const calls: Promise<Decision>[] = [];
    for (let k = 0; k < 40; k++) {
      calls.push(disconnect(world, world.meters[k % 4]!, NOW() + BigInt(k)).then((b) => v.validate(b, { sender: SUPPLIER })));
      if (k % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    const ds = await Promise.all(calls);
    expect(ds.filter((d) => d.outcome === 'accepted').length + ds.filter((d) => d.outcome === 'rejected' && d.code === 'ERR_COMMAND_REPLAYED').length).toBe(40);
    expect(ds.some((d) => d.outcome === 'rejected' && d.code !== 'ERR_COMMAND_REPLAYED')).toBe(false);
    expect((await records(v)).length).toBe(40);
  });
});
