// Failing closed on the real stores: a PostgreSQL server stopped mid-run makes every call fail
// with ERR_STORE_UNAVAILABLE and apply nothing, and service resumes by itself when it returns; a
// SQLite file held by another writer past the busy timeout does the same; a damaged or edited
// value is ERR_STORE_CORRUPT, never a counter the caller would act on; a store written by another
// schema version is refused; the PostgreSQL password comes only from the environment or a
// password file.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { PostgresDeviceRegistry, PostgresFirmwareAllowlist, PostgresStateStore, SqliteStateStore } from '@smki/store';
import type { CommitEntry, DeviceRecord } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir: work } = postgresForThisFile('smki-store-faults-');

const A = parseEui64('90B3D51F30010000');
const D = parseEui64('00DB1234567890A0');
let n = 0;


const c = (value: bigint): CommitEntry => ({ counter: { originator: A, device: D, value } });
const openPg = (schema = `f${++n}`, extra: object = {}) =>
  PostgresStateStore.open({ ...connectionOf(pg), schema, connectTimeoutMs: 2000, ...extra });

async function detailOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? [e.code, (e.context as { detail?: unknown }).detail] : e),
  );
}

async function codeOf(p: Promise<unknown>): Promise<SmkiErrorCode | unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? e.code : e),
  );
}

describe('PostgreSQL', () => {
  it('stopped mid-run: every call fails closed, nothing applies, and service resumes by itself', async () => {
    const s = await openPg();
    expect(await s.commit([c(1n)])).toEqual([{ status: 'committed' }]);
    // Commits in flight while the server goes down either commit durably or fail with
    // ERR_STORE_UNAVAILABLE; none is reported committed and then lost.
    const reported: bigint[] = [];
    let firstFailed: bigint | undefined;
    let stop = false;
    const loop = (async () => {
      for (let v = 2n; !stop; v++) {
        try {
          expect(await s.commit([c(v)])).toEqual([{ status: 'committed' }]);
          reported.push(v);
        } catch (e) {
          expect(isSmkiError(e) ? e.code : e).toBe('ERR_STORE_UNAVAILABLE');
          firstFailed ??= v;
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    pg.stop('immediate');
    await new Promise((r) => setTimeout(r, 300));
    expect(await codeOf(s.commit([c(1_000_000n)]))).toBe('ERR_STORE_UNAVAILABLE');
    expect(await codeOf(s.lastCounter(A, D))).toBe('ERR_STORE_UNAVAILABLE');
    stop = true;
    try {
      await loop;
    } finally {
      pg.start();
    }
    // The same store object works again: the pool reconnects.
    const last = await s.lastCounter(A, D);
    expect(reported.length).toBeGreaterThan(0);
    expect(firstFailed).toBeDefined();
    // Every counter reported committed survived. The one commit in flight when the server died
    // may have been applied without its acknowledgement arriving (reported unavailable: the safe
    // direction), so the store holds the last one reported or that one; nothing later.
    expect([reported.at(-1), firstFailed]).toContain(last);
    expect(await s.commit([c(last!)])).toEqual([{ status: 'replayed', last }]);
    expect(await s.commit([c(1_000_000n)])).toEqual([{ status: 'committed' }]);
    await s.close();
  }, 120_000);

  it('cannot open while the server is down (ERR_STORE_UNAVAILABLE)', async () => {
    pg.stop('fast');
    try {
      expect(await codeOf(openPg())).toBe('ERR_STORE_UNAVAILABLE');
    } finally {
      pg.start();
    }
  }, 60_000);

  it('takes the password only from PGPASSWORD or the password file', async () => {
    expect(await codeOf(openPg(undefined, { password: 'x' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(openPg(undefined, { connectionString: 'postgres://smki:x@127.0.0.1/smki' }))).toBe('ERR_INVALID_ARGUMENT');
    const saved = process.env['PGPASSFILE'];
    try {
      const wrong = join(work, 'wrong-pgpass');
      writeFileSync(wrong, `${pg.host}:${pg.port}:*:${pg.user}:not-the-password\n`, { mode: 0o600 });
      process.env['PGPASSFILE'] = wrong;
      expect(await codeOf(openPg())).toBe('ERR_STORE_UNAVAILABLE');
      process.env['PGPASSFILE'] = join(work, 'missing');
      expect(await codeOf(openPg())).toBe('ERR_STORE_UNAVAILABLE');
      // PGPASSWORD is used when set (taken from the real file here).
      process.env['PGPASSWORD'] = readFileSync(saved!, 'utf8').trim().split(':').at(-1)!;
      const s = await openPg();
      expect(await s.commit([c(1n)])).toEqual([{ status: 'committed' }]);
      await s.close();
    } finally {
      process.env['PGPASSFILE'] = saved;
      delete process.env['PGPASSWORD'];
    }
  });

  it('reads where to connect, and the password, from a connection service file', async () => {
    const password = readFileSync(pg.passfile, 'utf8').trim().split(':').at(-1)!;
    const file = join(work, 'pg_service.conf');
    const write = (pw: string, extra = ''): void =>
      writeFileSync(file, `# test services\n[other]\nhost=192.0.2.1\n\n[smki-test]\nhost=${pg.host}\nport=${pg.port}\ndbname=${pg.database}\nuser=${pg.user}\npassword=${pw}\n${extra}`, { mode: 0o600 });
    const saved = { file: process.env['PGSERVICEFILE'], pass: process.env['PGPASSFILE'] };
    process.env['PGSERVICEFILE'] = file;
    delete process.env['PGPASSFILE'];
    try {
      write(password);
      const s = await PostgresStateStore.open({ service: 'smki-test', schema: `f${++n}` });
      expect(await s.commit([c(1n)])).toEqual([{ status: 'committed' }]);
      await s.close();
      // PGSERVICE names the section when the option does not.
      process.env['PGSERVICE'] = 'smki-test';
      const t = await PostgresStateStore.open({ schema: `f${++n}` });
      await t.close();
      delete process.env['PGSERVICE'];
      write('wrong');
      expect(await codeOf(PostgresStateStore.open({ service: 'smki-test', schema: `f${++n}`, connectTimeoutMs: 2000 }))).toBe('ERR_STORE_UNAVAILABLE');
      write(password, 'sslmode=disable\n');
      expect(await codeOf(PostgresStateStore.open({ service: 'smki-test' }))).toBe('ERR_INVALID_ARGUMENT');
      expect(await codeOf(PostgresStateStore.open({ service: 'missing' }))).toBe('ERR_INVALID_ARGUMENT');
    } finally {
      delete process.env['PGSERVICE'];
      if (saved.file === undefined) delete process.env['PGSERVICEFILE'];
      else process.env['PGSERVICEFILE'] = saved.file;
      process.env['PGPASSFILE'] = saved.pass;
    }
  });

  it('reports an edited counter, count or quarantine state as ERR_STORE_CORRUPT', async () => {
    const schema = `f${++n}`;
    const s = await openPg(schema);
    await s.commit([c(5n)]);
    pg.psql(`UPDATE ${schema}.counters SET counter = '5'`);
    // The error names the row: originator/device of a counter, user/code/window of a count.
    expect(await detailOf(s.lastCounter(A, D))).toEqual(['ERR_STORE_CORRUPT', `${A}/${D}`]);
    expect(await detailOf(s.commit([c(6n)]))).toEqual(['ERR_STORE_CORRUPT', `${A}/${D}`]);
    pg.psql(`UPDATE ${schema}.counters SET counter = '000000000000000g'`);
    expect(await codeOf(s.commit([c(6n)]))).toBe('ERR_STORE_CORRUPT');
    pg.psql(`UPDATE ${schema}.counters SET counter = '0000000000000005'`);
    expect(await s.commit([c(6n)])).toEqual([{ status: 'committed' }]);
    expect(await s.lastCounter(A, D)).toBe(6n);
    // An anomaly count and a quarantine state.
    const window = { user: A, messageCode: 0x50, windowMs: 1000, windowStart: 0 };
    const held = (value: bigint): CommitEntry => ({
      counter: { originator: A, device: D, value },
      anomaly: { ...window, limit: 1 },
      quarantine: { at: 0, user: A, device: D, messageCode: 0x50, counter: value, command: Uint8Array.of(1) },
    });
    const [, q] = await s.commit([held(7n), held(8n)]);
    const id = (q as { id: string }).id;
    pg.psql(`UPDATE ${schema}.anomaly_windows SET count = -1`);
    expect(await detailOf(s.anomalyCount(window))).toEqual(['ERR_STORE_CORRUPT', `${A}/80/0`]);
    expect(await codeOf(s.commit([held(9n)]))).toBe('ERR_STORE_CORRUPT');
    pg.psql(`UPDATE ${schema}.anomaly_windows SET count = 1`);
    pg.psql(`UPDATE ${schema}.quarantine SET state = 'approved'`);
    expect(await codeOf(s.quarantineRecord(id))).toBe('ERR_STORE_CORRUPT');
    expect(await codeOf(s.commit([{ counter: { originator: A, device: D, value: 8n }, release: id }]))).toBe('ERR_STORE_CORRUPT');
    expect(await codeOf(s.heldQuarantine())).toBe('resolved');
    pg.psql(`UPDATE ${schema}.quarantine SET state = 'held', user_id = 'someone'`);
    expect(await codeOf(s.heldQuarantine())).toBe('ERR_STORE_CORRUPT');
    expect(await s.lastCounter(A, D)).toBe(7n);
    await s.close();
  });

  it('every operation of the three stores fails closed while the server is down, and works when it is back', async () => {
    const schema = `f${++n}`;
    const conn = { ...connectionOf(pg), schema, connectTimeoutMs: 2000 };
    const s = await PostgresStateStore.open(conn);
    const registry = await PostgresDeviceRegistry.open(conn);
    const firmware = await PostgresFirmwareAllowlist.open(conn);
    const window = { user: A, messageCode: 0x50, windowMs: 1000, windowStart: 0 };
    const record: DeviceRecord = { device: D, type: 'ESME', fuel: 'electricity', supplier: A, cells: [] };
    const HASH = 'AB'.repeat(32);
    const [, held] = await s.commit([
      c(1n),
      { counter: { originator: A, device: D, value: 2n }, anomaly: { ...window, limit: 0 }, quarantine: { at: 0, user: A, device: D, messageCode: 0x50, counter: 2n, command: Uint8Array.of(1) } },
    ]);
    const id = (held as { id: string }).id;
    pg.stop('immediate');
    try {
      const calls: [string, () => Promise<unknown>][] = [
        ['lastCounter', () => s.lastCounter(A, D)],
        ['anomalyCount', () => s.anomalyCount(window)],
        ['commit', () => s.commit([c(3n)])],
        ['logIntent', () => s.logIntent('log-1')],
        ['quarantineRecord', () => s.quarantineRecord(id)],
        ['heldQuarantine', () => s.heldQuarantine()],
        ['discardQuarantine', () => s.discardQuarantine(id)],
        ['pruneAnomalyWindows', () => s.pruneAnomalyWindows(10_000)],
        ['device', () => registry.device(D)],
        ['devices', () => registry.devices([D])],
        ['put', () => registry.put([record])],
        ['remove', () => registry.remove([D])],
        ['count', () => registry.count()],
        ['status', () => firmware.status('M1', HASH)],
        ['approve', () => firmware.approve([{ model: 'M1', imageHash: HASH }], 0)],
        ['revoke', () => firmware.revoke('M1', HASH, 0)],
        ['list', () => firmware.list()],
      ];
      for (const [name, call] of calls) expect([name, await codeOf(call())]).toEqual([name, 'ERR_STORE_UNAVAILABLE']);
      // A call with nothing to do is answered without the server.
      expect(await s.commit([])).toEqual([]);
      expect(await registry.devices([])).toEqual(new Map());
      expect(await registry.put([])).toBeUndefined();
      expect(await registry.remove([])).toBe(0);
      expect(await firmware.approve([], 0)).toEqual([]);
    } finally {
      pg.start();
    }
    // Nothing applied while it was down (the held command never moved the counter); the same objects work again.
    expect(await s.lastCounter(A, D)).toBe(1n);
    expect((await s.quarantineRecord(id))?.state).toBe('held');
    expect(await registry.count()).toBe(0);
    expect(await firmware.list()).toEqual([]);
    await Promise.all([s.close(), registry.close(), firmware.close()]);
  }, 120_000);

  it('refuses a schema written by another version', async () => {
    const schema = `f${++n}`;
    await (await openPg(schema)).close();
    pg.psql(`UPDATE ${schema}.schema_version SET version = 99`);
    expect(await codeOf(openPg(schema))).toBe('ERR_STORE_SCHEMA');
  });

  it('refuses malformed options', async () => {
    for (const o of [{ schema: 'Bad-Name' }, { schema: 'x; DROP TABLE y' }, { port: 0 }, { host: 'a b' }, { maxConnections: 0 }, { user: "o'neil" }]) {
      expect(await codeOf(PostgresStateStore.open(o as never))).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(await codeOf(PostgresStateStore.open(null as never))).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('SQLite', () => {
  it('a file held by another writer past the busy timeout fails closed, then works when released', async () => {
    const path = join(work, `busy${++n}.db`);
    const s = await SqliteStateStore.open({ path, busyTimeoutMs: 100 });
    await s.commit([c(1n)]);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    expect(await codeOf(s.commit([c(2n)]))).toBe('ERR_STORE_UNAVAILABLE');
    other.exec('ROLLBACK');
    other.close();
    expect(await s.lastCounter(A, D)).toBe(1n);
    expect(await s.commit([c(2n)])).toEqual([{ status: 'committed' }]);
    await s.close();
  });

  it('reports an edited value as ERR_STORE_CORRUPT and a damaged file as such', async () => {
    const path = join(work, `corrupt${++n}.db`);
    const s = await SqliteStateStore.open({ path });
    await s.commit([c(5n)]);
    const raw = new Database(path);
    raw.prepare("UPDATE counters SET counter = '5'").run();
    // The error names the row: originator/device of a counter, user/code/window of a count.
    expect(await detailOf(s.lastCounter(A, D))).toEqual(['ERR_STORE_CORRUPT', `${A}/${D}`]);
    expect(await detailOf(s.commit([c(6n)]))).toEqual(['ERR_STORE_CORRUPT', `${A}/${D}`]);
    raw.prepare("UPDATE counters SET counter = X'30303030303030303030303030303035'").run();
    expect(await codeOf(s.lastCounter(A, D))).toBe('ERR_STORE_CORRUPT');
    raw.prepare("UPDATE counters SET counter = '0000000000000005'").run();
    const window = { user: A, messageCode: 0x50, windowMs: 1000, windowStart: 0 };
    await s.commit([
      {
        counter: { originator: A, device: D, value: 6n },
        anomaly: { ...window, limit: 5 },
        quarantine: { at: 0, user: A, device: D, messageCode: 0x50, counter: 6n, command: Uint8Array.of(1) },
      },
    ]);
    raw.prepare('UPDATE anomaly_windows SET count = -1').run();
    expect(await detailOf(s.anomalyCount(window))).toEqual(['ERR_STORE_CORRUPT', `${A}/80/0`]);
    raw.prepare('UPDATE anomaly_windows SET count = 1').run();
    raw.close();
    expect(await s.commit([c(7n)])).toEqual([{ status: 'committed' }]);
    await s.close();
    const junk = join(work, `junk${++n}.db`);
    writeFileSync(junk, Buffer.alloc(8192, 0x41));
    expect(await codeOf(SqliteStateStore.open({ path: junk }))).toBe('ERR_STORE_CORRUPT');
  });

  it('refuses a file written by another schema version, and paths it cannot use', async () => {
    const path = join(work, `schema${++n}.db`);
    await (await SqliteStateStore.open({ path })).close();
    const raw = new Database(path);
    raw.prepare('UPDATE smki_schema SET version = 99').run();
    raw.close();
    expect(await codeOf(SqliteStateStore.open({ path }))).toBe('ERR_STORE_SCHEMA');
    expect(await codeOf(SqliteStateStore.open({ path: join(work, 'no', 'such', 'dir', 'x.db') }))).toBe('ERR_STORE_UNAVAILABLE');
    for (const o of [{ path: '' }, { path: ':memory:' }, { path: 'a\0b' }, { path: 5 }, null, { path, busyTimeoutMs: -1 }]) {
      expect(await codeOf(SqliteStateStore.open(o as never))).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});
