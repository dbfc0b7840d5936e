// Pending commands (docs/store.md, pending commands): a command kept in the same transaction as
// its counter if and only if its entry commits, found by its SHA-256 (FIPS 180-4) from any
// process and after a restart, removed once; and the schema upgrade that added them (version 1
// files and schemas open and are upgraded in place). Run against memory, SQLite and a real
// PostgreSQL server started for this file.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { MemoryStateStore, PostgresStateStore, SqliteStateStore } from '@smki/store';
import type { CommitEntry, PendingCommandInput, StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-store-pending-');

const A = parseEui64('90B3D51F30010000');
const D1 = parseEui64('00DB1234567890A0');
const D2 = parseEui64('00DB1234567890A1');
const WINDOW = { user: A, messageCode: 0x0108, windowMs: 60_000, windowStart: 1_700_000_040_000 };
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').toUpperCase();

let n = 0;

function pending(command: Uint8Array, device = D1, at = 1_700_000_050_000): PendingCommandInput {
  return { key: sha(command), device, at, command };
}
function entry(value: bigint, command: Uint8Array, device = D1): CommitEntry {
  return { counter: { originator: A, device, value }, pending: pending(command, device) };
}

async function codeOf(p: Promise<unknown>): Promise<SmkiErrorCode | unknown> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  return isSmkiError(e) ? e.code : e;
}

type Opened = { store: StateStore; reopen: () => Promise<StateStore> };
const BACKENDS: [string, () => Promise<Opened>][] = [
  ['memory', async () => ({ store: new MemoryStateStore(), reopen: async () => new MemoryStateStore() })],
  [
    'sqlite',
    async () => {
      const path = join(dir, `p${++n}.db`);
      return { store: await SqliteStateStore.open({ path }), reopen: () => SqliteStateStore.open({ path }) };
    },
  ],
  [
    'postgres',
    async () => {
      const schema = `p${++n}`;
      return { store: await PostgresStateStore.open({ ...connectionOf(pg), schema }), reopen: () => PostgresStateStore.open({ ...connectionOf(pg), schema }) };
    },
  ],
];

describe.each(BACKENDS)('pending commands: %s', (_name, open) => {
  it('keeps the command of a committed entry, found by its SHA-256, and removes it once', async () => {
    const { store: s } = await open();
    const cmd = Uint8Array.of(0xdf, 0x09, 1, 2, 3);
    expect(await s.pendingCommand(sha(cmd))).toBeUndefined();
    expect(await s.commit([entry(10n, cmd)])).toEqual([{ status: 'committed' }]);
    expect(await s.pendingCommand(sha(cmd))).toEqual({ key: sha(cmd), device: D1, at: 1_700_000_050_000, command: cmd });
    // Removed exactly once.
    expect(await s.removePendingCommand(sha(cmd))).toBe(true);
    expect(await s.removePendingCommand(sha(cmd))).toBe(false);
    expect(await s.pendingCommand(sha(cmd))).toBeUndefined();
    await s.close();
  });

  it('keeps nothing for an entry that is replayed, quarantined or not held, and nothing of a commit refused', async () => {
    const { store: s } = await open();
    const first = Uint8Array.of(1);
    const replayed = Uint8Array.of(2);
    const held = Uint8Array.of(3);
    const late = Uint8Array.of(4);
    await s.commit([entry(10n, first)]);
    const quarantined: CommitEntry = {
      counter: { originator: A, device: D2, value: 20n },
      anomaly: { ...WINDOW, limit: 0 },
      quarantine: { at: 1, user: A, device: D2, messageCode: 0x0108, counter: 20n, command: held },
      pending: pending(held, D2),
    };
    const notHeld: CommitEntry = { counter: { originator: A, device: D2, value: 21n }, release: '00000000-0000-4000-8000-000000000000', pending: pending(late, D2) };
    const outcomes = await s.commit([entry(10n, replayed), quarantined, notHeld]);
    expect(outcomes.map((o) => o.status)).toEqual(['replayed', 'quarantined', 'not-held']);
    for (const c of [replayed, held, late]) expect(await s.pendingCommand(sha(c))).toBeUndefined();
    // The released command is kept when its release commits.
    const id = (outcomes[1] as { id: string }).id;
    expect(await s.commit([{ counter: { originator: A, device: D2, value: 20n }, release: id, pending: pending(held, D2) }])).toEqual([{ status: 'committed' }]);
    expect((await s.pendingCommand(sha(held)))?.device).toBe(D2);
    // A malformed entry refuses the whole commit: the first entry's pending is not kept either.
    const x = Uint8Array.of(5);
    const y = Uint8Array.of(6);
    expect(await codeOf(s.commit([entry(30n, x), { counter: { originator: A, device: D1, value: 31n }, pending: { ...pending(y), key: sha(x) } }]))).toBe('ERR_INVALID_ARGUMENT');
    expect(await s.pendingCommand(sha(x))).toBeUndefined();
    expect(await s.lastCounter(A, D1)).toBe(10n);
    await s.close();
  });

  it('prunes the pending commands kept before a time, and only those', async () => {
    const { store: s } = await open();
    const old = Uint8Array.of(1);
    const edge = Uint8Array.of(2);
    const recent = Uint8Array.of(3);
    await s.commit([
      { counter: { originator: A, device: D1, value: 1n }, pending: pending(old, D1, 1000) },
      { counter: { originator: A, device: D1, value: 2n }, pending: pending(edge, D1, 2000) },
      { counter: { originator: A, device: D1, value: 3n }, pending: pending(recent, D1, 3000) },
    ]);
    expect(await s.prunePendingCommands(2000)).toBe(1);
    expect(await s.pendingCommand(sha(old))).toBeUndefined();
    expect((await s.pendingCommand(sha(edge)))?.at).toBe(2000);
    expect(await s.prunePendingCommands(3001)).toBe(2);
    expect(await s.pendingCommand(sha(recent))).toBeUndefined();
    expect(await s.prunePendingCommands(3001)).toBe(0);
    expect(await codeOf(s.prunePendingCommands(-1))).toBe('ERR_INVALID_ARGUMENT');
    await s.close();
  });

  it('refuses a malformed pending command before anything is written', async () => {
    const { store: s } = await open();
    const cmd = Uint8Array.of(9, 9);
    const bad: Record<string, unknown>[] = [
      { ...pending(cmd), key: sha(cmd).toLowerCase() },
      { ...pending(cmd), key: sha(Uint8Array.of(9)) },
      { ...pending(cmd), command: new Uint8Array(0), key: sha(new Uint8Array(0)) },
      { ...pending(cmd), command: new Uint8Array(64 * 1024 + 1) },
      { ...pending(cmd), device: '00db1234567890a0' },
      { ...pending(cmd), at: -1 },
      { ...pending(cmd), command: [9, 9] },
    ];
    for (const p of bad) expect(await codeOf(s.commit([{ counter: { originator: A, device: D1, value: 1n }, pending: p as never }]))).toBe('ERR_INVALID_ARGUMENT');
    // Another device than the entry's counter's.
    expect(await codeOf(s.commit([{ counter: { originator: A, device: D1, value: 1n }, pending: pending(cmd, D2) }]))).toBe('ERR_INVALID_ARGUMENT');
    expect(await s.lastCounter(A, D1)).toBeUndefined();
    for (const k of ['', 'ab', sha(cmd).toLowerCase(), 5]) {
      expect(await codeOf(s.pendingCommand(k as string))).toBe('ERR_INVALID_ARGUMENT');
      expect(await codeOf(s.removePendingCommand(k as string))).toBe('ERR_INVALID_ARGUMENT');
    }
    await s.close();
    expect(await codeOf(s.pendingCommand(sha(cmd)))).toBe('ERR_STORE_CLOSED');
    expect(await codeOf(s.removePendingCommand(sha(cmd)))).toBe('ERR_STORE_CLOSED');
  });

});

describe.each(BACKENDS.filter(([name]) => name !== 'memory'))('pending commands are durable: %s', (_name, open) => {
  it('a pending command outlives the store object: a store opened afresh finds it', async () => {
    const { store: s, reopen } = await open();
    const cmd = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    await s.commit([entry(10n, cmd)]);
    await s.close();
    const again = await reopen();
    expect(await again.pendingCommand(sha(cmd))).toEqual({ key: sha(cmd), device: D1, at: 1_700_000_050_000, command: cmd });
    expect(await again.removePendingCommand(sha(cmd))).toBe(true);
    await again.close();
  });
});

describe('pending commands: stored rows are checked when read', () => {
  it('SQLite: a command that no longer hashes to its key is ERR_STORE_CORRUPT', async () => {
    const path = join(dir, `c${++n}.db`);
    const s = await SqliteStateStore.open({ path });
    const cmd = Uint8Array.of(1, 2, 3);
    await s.commit([entry(1n, cmd)]);
    const raw = new Database(path);
    raw.prepare("UPDATE pending_commands SET command = X'010204'").run();
    expect(await codeOf(s.pendingCommand(sha(cmd)))).toBe('ERR_STORE_CORRUPT');
    raw.prepare("UPDATE pending_commands SET command = X'010203', device = 'nope'").run();
    expect(await codeOf(s.pendingCommand(sha(cmd)))).toBe('ERR_STORE_CORRUPT');
    raw.close();
    await s.close();
  });

  it('PostgreSQL: a command that no longer hashes to its key is ERR_STORE_CORRUPT', async () => {
    const schema = `c${++n}`;
    const s = await PostgresStateStore.open({ ...connectionOf(pg), schema });
    const cmd = Uint8Array.of(1, 2, 3);
    await s.commit([entry(1n, cmd)]);
    pg.psql(`UPDATE ${schema}.pending_commands SET command = '\\x010204'`);
    expect(await codeOf(s.pendingCommand(sha(cmd)))).toBe('ERR_STORE_CORRUPT');
    await s.close();
  });
});

describe('schema version 1 is upgraded in place', () => {
  it('SQLite: a version 1 file (no pending_commands) opens, keeps its counters and is version 2', async () => {
    const path = join(dir, `v1-${++n}.db`);
    const s = await SqliteStateStore.open({ path });
    await s.commit([{ counter: { originator: A, device: D1, value: 7n } }]);
    await s.close();
    // What a release of version 1 left: the same tables but pending_commands, version 1.
    const raw = new Database(path);
    raw.exec('DROP TABLE pending_commands; UPDATE smki_schema SET version = 1;');
    raw.close();
    const again = await SqliteStateStore.open({ path });
    expect(await again.lastCounter(A, D1)).toBe(7n);
    const cmd = Uint8Array.of(7);
    expect(await again.commit([entry(8n, cmd)])).toEqual([{ status: 'committed' }]);
    expect((await again.pendingCommand(sha(cmd)))?.command).toEqual(cmd);
    await again.close();
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT version FROM smki_schema').get()).toEqual({ version: 2 });
    check.close();
  });

  it('PostgreSQL: a version 1 schema (no pending_commands) opens, keeps its counters and is version 2', async () => {
    const schema = `v${++n}`;
    const s = await PostgresStateStore.open({ ...connectionOf(pg), schema });
    await s.commit([{ counter: { originator: A, device: D1, value: 7n } }]);
    await s.close();
    pg.psql(`DROP TABLE ${schema}.pending_commands; UPDATE ${schema}.schema_version SET version = 1`);
    const again = await PostgresStateStore.open({ ...connectionOf(pg), schema });
    expect(await again.lastCounter(A, D1)).toBe(7n);
    const cmd = Uint8Array.of(7);
    expect(await again.commit([entry(8n, cmd)])).toEqual([{ status: 'committed' }]);
    expect((await again.pendingCommand(sha(cmd)))?.command).toEqual(cmd);
    await again.close();
    expect(pg.psql(`SELECT version FROM ${schema}.schema_version`).trim()).toBe('2');
  });
});
