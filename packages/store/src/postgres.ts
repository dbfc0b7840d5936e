import type { Pool, PoolClient, PoolConfig } from 'pg';
import { SmkiError, isSmkiError } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { applyEntries, counterKey, windowKey } from './internal/apply.js';
import {
  checkEntries,
  checkWindow,
  closedError,
  counterFromHex,
  counterToHex,
  countFrom,
  epochMs,
  eui64,
  int,
  invalid,
  quarantineId,
} from './internal/check.js';
import { quarantineFromRow, type QuarantineRow } from './internal/rows.js';
import type { AnomalyWindow, CommitEntry, CommitOutcome, QuarantineRecord, StateStore } from './types.js';

const SCHEMA_VERSION = 1;

/** The pgpass module (node-postgres's own password-file reader): a matching password or undefined. */
type PgPass = (info: { host: string; port: number; database: string; user: string }, cb: (password: string | undefined) => void) => void;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const HOST = /^[A-Za-z0-9._:/-]{1,255}$/;
const NAME = /^[A-Za-z0-9._-]{1,63}$/;

/**
 * Options of {@link PostgresStateStore.open}. Where to connect comes from here or from the
 * libpq environment (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`); the password only from the
 * environment (`PGPASSWORD`) or a password file (`PGPASSFILE`, else `~/.pgpass`), never from code
 * or a command-line flag, so it is in no process listing, shell history or source file.
 */
export interface PostgresStateStoreOptions {
  /** Host name, address or Unix socket directory (default: `PGHOST`, else localhost). */
  readonly host?: string;
  /** Port (default: `PGPORT`, else 5432). */
  readonly port?: number;
  /** Database (default: `PGDATABASE`, else the user name). */
  readonly database?: string;
  /** User (default: `PGUSER`, else the operating-system user). */
  readonly user?: string;
  /** The PostgreSQL schema holding the tables (default `smki`); created if missing. */
  readonly schema?: string;
  /** Most connections in the pool (default 4). */
  readonly maxConnections?: number;
  /** How long to wait for a connection before `ERR_STORE_UNAVAILABLE` (ms, default 5000). */
  readonly connectTimeoutMs?: number;
  /** How long one statement may take before `ERR_STORE_UNAVAILABLE` (ms, default 10000). */
  readonly statementTimeoutMs?: number;
}

/**
 * The {@link StateStore} for several processes on several machines: PostgreSQL (node-postgres).
 *
 * Each commit is one transaction that first takes a transaction-scoped advisory lock of the
 * schema, so commits from every process are serialised and each reads the state every earlier
 * commit left: a counter is accepted once however many processes race for it. The transaction
 * is durable when the server acknowledges COMMIT (keep `synchronous_commit` on, the default).
 * If the server stops, every call fails with `ERR_STORE_UNAVAILABLE` and nothing is applied;
 * when it returns, the pool reconnects by itself.
 *
 * A commit whose COMMIT was sent but whose answer was lost may have been applied: the store
 * reports `ERR_STORE_UNAVAILABLE`, so the caller rejects the commands (fail closed): a counter may
 * then have advanced for a command that never went out, never the other way round.
 *
 * @see docs/store.md
 */
export class PostgresStateStore implements StateStore {
  /** Always `postgres`. */
  readonly backend = 'postgres' as const;
  #pool: Pool | undefined;
  readonly #schema: string;
  readonly #lockKey: string;

  private constructor(pool: Pool, schema: string) {
    this.#pool = pool;
    this.#schema = schema;
    this.#lockKey = lockKeyOf(schema);
  }

  /**
   * Connect, and create the schema and its tables if missing.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (an option is malformed, or a password is given),
   *   `ERR_STORE_UNAVAILABLE` (cannot connect, or the pg module is not installed),
   *   `ERR_STORE_SCHEMA` (tables written by another schema version)
   */
  static async open(options: PostgresStateStoreOptions = {}): Promise<PostgresStateStore> {
    if (typeof options !== 'object' || options === null) throw invalid('options', 'is not an object');
    for (const forbidden of ['password', 'connectionString']) {
      if (forbidden in options) {
        throw invalid(`options.${forbidden}`, 'is not accepted: the password comes from PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass)');
      }
    }
    const schema = options.schema ?? 'smki';
    if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) throw invalid('options.schema', 'is not a lower-case SQL identifier');
    const config: PoolConfig = {
      max: int(options.maxConnections ?? 4, 'options.maxConnections', 1, 1000),
      connectionTimeoutMillis: int(options.connectTimeoutMs ?? 5000, 'options.connectTimeoutMs', 1, 600_000),
      statement_timeout: int(options.statementTimeoutMs ?? 10_000, 'options.statementTimeoutMs', 1, 600_000),
      query_timeout: int(options.statementTimeoutMs ?? 10_000, 'options.statementTimeoutMs', 1, 600_000) + 1000,
      application_name: 'smki-store',
    };
    if (options.host !== undefined) config.host = text(options.host, 'options.host', HOST);
    if (options.port !== undefined) config.port = int(options.port, 'options.port', 1, 65535);
    if (options.database !== undefined) config.database = text(options.database, 'options.database', NAME);
    if (options.user !== undefined) config.user = text(options.user, 'options.user', NAME);

    let PgPool: typeof Pool;
    let pgpass: PgPass;
    try {
      PgPool = (await import('pg')).default.Pool;
      pgpass = (await import('pgpass')).default as PgPass;
    } catch (e) {
      throw new SmkiError('ERR_STORE_UNAVAILABLE', 'the PostgreSQL state store needs the pg and pgpass packages (pnpm add pg pgpass)', { detail: 'pg' }, { cause: e });
    }
    // The password: PGPASSWORD, else the password file (PGPASSFILE, else ~/.pgpass) line that
    // matches where we connect; looked up on each new connection.
    config.password = async () => {
      const env = process.env['PGPASSWORD'];
      if (env !== undefined && env !== '') return env;
      const found = await new Promise<string | undefined>((resolve) =>
        pgpass(
          {
            host: config.host ?? process.env['PGHOST'] ?? 'localhost',
            port: config.port ?? Number(process.env['PGPORT'] ?? 5432),
            database: config.database ?? process.env['PGDATABASE'] ?? config.user ?? process.env['PGUSER'] ?? '',
            user: config.user ?? process.env['PGUSER'] ?? '',
          },
          resolve,
        ),
      );
      return found ?? '';
    };
    const pool = new PgPool(config);
    // An idle connection whose server went away emits 'error'; without a listener that would end
    // the process. The pool drops the connection and opens a new one on the next call.
    pool.on('error', () => {});
    const store = new PostgresStateStore(pool, schema);
    try {
      await store.#migrate();
    } catch (e) {
      await pool.end().catch(() => {});
      throw storeError(e, 'open');
    }
    return store;
  }

  async #migrate(): Promise<void> {
    const s = this.#schema;
    await this.#tx(async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)`);
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${s}.counters (originator text NOT NULL, device text NOT NULL, counter text COLLATE "C" NOT NULL, PRIMARY KEY (originator, device))`,
      );
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${s}.anomaly_windows (user_id text NOT NULL, message_code integer NOT NULL, window_ms bigint NOT NULL, window_start bigint NOT NULL, count bigint NOT NULL, PRIMARY KEY (user_id, message_code, window_ms, window_start))`,
      );
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${s}.quarantine (id text PRIMARY KEY, at bigint NOT NULL, user_id text NOT NULL, device text NOT NULL, message_code integer NOT NULL, counter text NOT NULL, command bytea NOT NULL, state text NOT NULL)`,
      );
      await c.query(`CREATE INDEX IF NOT EXISTS quarantine_held ON ${s}.quarantine (state, at, id)`);
      const r = await c.query(`SELECT version FROM ${s}.schema_version WHERE id = 1`);
      if (r.rows.length === 0) await c.query(`INSERT INTO ${s}.schema_version (id, version) VALUES (1, $1)`, [SCHEMA_VERSION]);
      else if (r.rows[0].version !== SCHEMA_VERSION) {
        throw new SmkiError('ERR_STORE_SCHEMA', `the store has schema version ${String(r.rows[0].version)}; this release uses ${SCHEMA_VERSION}`, {
          detail: String(r.rows[0].version),
        });
      }
    });
  }

  #open(): Pool {
    if (this.#pool === undefined) throw closedError();
    return this.#pool;
  }

  /** Run `f` in one transaction on one pooled connection; a failed connection is not reused. */
  async #tx<T>(f: (c: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#open().connect();
    let broken: Error | undefined;
    // A connection that dies while checked out emits 'error' on its client; unheard, that would
    // end the process. The query in progress fails too, and the client is not reused.
    const onError = (e: Error): void => {
      broken = e;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const out = await f(client);
      await client.query('COMMIT');
      return out;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch (r) {
        broken = r as Error;
      }
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async #query(op: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    try {
      return (await this.#open().query(sql, params)).rows;
    } catch (e) {
      throw storeError(e, op);
    }
  }

  /** {@inheritDoc StateStore.lastCounter} */
  async lastCounter(originator: Eui64, device: Eui64): Promise<bigint | undefined> {
    this.#open();
    const o = eui64(originator, 'originator');
    const d = eui64(device, 'device');
    const rows = await this.#query('lastCounter', `SELECT counter FROM ${this.#schema}.counters WHERE originator = $1 AND device = $2`, [o, d]);
    return rows.length === 0 ? undefined : counterFromHex(rows[0]!['counter'], `${o}/${d}`);
  }

  /** {@inheritDoc StateStore.anomalyCount} */
  async anomalyCount(window: AnomalyWindow): Promise<number> {
    this.#open();
    const w = checkWindow(window, 'window');
    const rows = await this.#query(
      'anomalyCount',
      `SELECT count FROM ${this.#schema}.anomaly_windows WHERE user_id = $1 AND message_code = $2 AND window_ms = $3 AND window_start = $4`,
      [w.user, w.messageCode, w.windowMs, w.windowStart],
    );
    return rows.length === 0 ? 0 : countFrom(rows[0]!['count'], `${w.user}/${w.messageCode}/${w.windowStart}`);
  }

  /** {@inheritDoc StateStore.commit} */
  async commit(entries: readonly CommitEntry[]): Promise<CommitOutcome[]> {
    this.#open();
    const checked = checkEntries(entries);
    if (checked.length === 0) return [];
    const s = this.#schema;
    try {
      return await this.#tx(async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
        // Read everything the entries touch in three statements, then decide in memory.
        const counters = new Map<string, bigint>();
        const keys = unique(checked.flatMap((e) => (e.counter ? [[e.counter.originator, e.counter.device] as const] : [])), ([o, d]) => counterKey(o, d));
        if (keys.length > 0) {
          const r = await c.query(
            `SELECT c.originator, c.device, c.counter FROM ${s}.counters c JOIN unnest($1::text[], $2::text[]) AS k(o, d) ON c.originator = k.o AND c.device = k.d`,
            [keys.map((k) => k[0]), keys.map((k) => k[1])],
          );
          for (const row of r.rows) {
            const k = counterKey(String(row.originator), String(row.device));
            counters.set(k, counterFromHex(row.counter, k));
          }
        }
        const windows = new Map<string, number>();
        const ws = unique(checked.flatMap((e) => (e.anomaly ? [e.anomaly] : [])), windowKey);
        if (ws.length > 0) {
          const r = await c.query(
            `SELECT a.user_id, a.message_code, a.window_ms, a.window_start, a.count FROM ${s}.anomaly_windows a ` +
              `JOIN unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[]) AS k(u, m, l, t) ` +
              `ON a.user_id = k.u AND a.message_code = k.m AND a.window_ms = k.l AND a.window_start = k.t`,
            [ws.map((w) => w.user), ws.map((w) => w.messageCode), ws.map((w) => w.windowMs), ws.map((w) => w.windowStart)],
          );
          for (const row of r.rows) {
            const k = windowKey({ user: row.user_id, messageCode: row.message_code, windowMs: Number(row.window_ms), windowStart: Number(row.window_start) });
            windows.set(k, countFrom(row.count, k));
          }
        }
        const states = new Map<string, QuarantineRecord['state']>();
        const ids = [...new Set(checked.flatMap((e) => (e.release !== undefined ? [e.release] : [])))];
        if (ids.length > 0) {
          const r = await c.query(`SELECT id, state FROM ${s}.quarantine WHERE id = ANY($1::text[])`, [ids]);
          for (const row of r.rows) {
            if (row.state !== 'held' && row.state !== 'released' && row.state !== 'discarded') {
              throw new SmkiError('ERR_STORE_CORRUPT', `quarantine record ${String(row.id)} has an unknown state`, { detail: String(row.id) });
            }
            states.set(String(row.id), row.state);
          }
        }
        const { outcomes, writes } = applyEntries(checked, {
          counter: (o, d) => counters.get(counterKey(o, d)),
          anomaly: (w) => windows.get(windowKey(w)) ?? 0,
          quarantineState: (id) => states.get(id),
        });
        const cw = [...writes.counters.values()];
        if (cw.length > 0) {
          await c.query(
            `INSERT INTO ${s}.counters (originator, device, counter) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ` +
              `ON CONFLICT (originator, device) DO UPDATE SET counter = EXCLUDED.counter`,
            [cw.map((x) => x.originator), cw.map((x) => x.device), cw.map((x) => counterToHex(x.value))],
          );
        }
        const aw = [...writes.anomalies.values()];
        if (aw.length > 0) {
          await c.query(
            `INSERT INTO ${s}.anomaly_windows (user_id, message_code, window_ms, window_start, count) ` +
              `SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bigint[]) ` +
              `ON CONFLICT (user_id, message_code, window_ms, window_start) DO UPDATE SET count = EXCLUDED.count`,
            [aw.map((x) => x.window.user), aw.map((x) => x.window.messageCode), aw.map((x) => x.window.windowMs), aw.map((x) => x.window.windowStart), aw.map((x) => x.count)],
          );
        }
        const qw = writes.quarantines;
        if (qw.length > 0) {
          await c.query(
            `INSERT INTO ${s}.quarantine (id, at, user_id, device, message_code, counter, command, state) ` +
              `SELECT k.id, k.at, k.u, k.d, k.m, k.c, decode(k.b, 'hex'), 'held' FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::integer[], $6::text[], $7::text[]) AS k(id, at, u, d, m, c, b)`,
            [
              qw.map((q) => q.id),
              qw.map((q) => q.at),
              qw.map((q) => q.user),
              qw.map((q) => q.device),
              qw.map((q) => q.messageCode),
              qw.map((q) => counterToHex(q.counter)),
              qw.map((q) => Buffer.from(q.command).toString('hex')),
            ],
          );
        }
        if (writes.releases.length > 0) {
          await c.query(`UPDATE ${s}.quarantine SET state = 'released' WHERE id = ANY($1::text[]) AND state = 'held'`, [writes.releases]);
        }
        return outcomes;
      });
    } catch (e) {
      throw storeError(e, 'commit');
    }
  }

  /** {@inheritDoc StateStore.quarantineRecord} */
  async quarantineRecord(id: string): Promise<QuarantineRecord | undefined> {
    this.#open();
    const q = quarantineId(id, 'id');
    const rows = await this.#query(
      'quarantineRecord',
      `SELECT id, at, user_id AS user, device, message_code, counter, command, state FROM ${this.#schema}.quarantine WHERE id = $1`,
      [q],
    );
    return rows.length === 0 ? undefined : quarantineFromRow(rows[0] as unknown as QuarantineRow);
  }

  /** {@inheritDoc StateStore.heldQuarantine} */
  async heldQuarantine(limit = 1000): Promise<QuarantineRecord[]> {
    this.#open();
    const n = int(limit, 'limit', 1, 100_000);
    const rows = await this.#query(
      'heldQuarantine',
      `SELECT id, at, user_id AS user, device, message_code, counter, command, state FROM ${this.#schema}.quarantine WHERE state = 'held' ORDER BY at, id LIMIT $1`,
      [n],
    );
    return rows.map((r) => quarantineFromRow(r as unknown as QuarantineRow));
  }

  /** {@inheritDoc StateStore.discardQuarantine} */
  async discardQuarantine(id: string): Promise<boolean> {
    this.#open();
    const q = quarantineId(id, 'id');
    try {
      return await this.#tx(async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
        const r = await c.query(`UPDATE ${this.#schema}.quarantine SET state = 'discarded' WHERE id = $1 AND state = 'held'`, [q]);
        return r.rowCount === 1;
      });
    } catch (e) {
      throw storeError(e, 'discardQuarantine');
    }
  }

  /** {@inheritDoc StateStore.pruneAnomalyWindows} */
  async pruneAnomalyWindows(before: number): Promise<number> {
    this.#open();
    const t = epochMs(before, 'before');
    try {
      return await this.#tx(async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
        const r = await c.query(`DELETE FROM ${this.#schema}.anomaly_windows WHERE window_start + window_ms <= $1`, [t]);
        return r.rowCount ?? 0;
      });
    } catch (e) {
      throw storeError(e, 'pruneAnomalyWindows');
    }
  }

  /** {@inheritDoc StateStore.close} */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }
}

function text(v: unknown, field: string, re: RegExp): string {
  if (typeof v !== 'string' || !re.test(v)) throw invalid(field, 'is not valid');
  return v;
}

function unique<T>(xs: readonly T[], key: (x: T) => string): T[] {
  const m = new Map<string, T>();
  for (const x of xs) if (!m.has(key(x))) m.set(key(x), x);
  return [...m.values()];
}

/** A 63-bit advisory lock key per schema (FNV-1a of its name), as a SQL literal. */
function lockKeyOf(schema: string): string {
  let h = 0xcbf29ce484222325n;
  for (const ch of `smki-store:${schema}`) h = ((h ^ BigInt(ch.charCodeAt(0))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return String(h & 0x7fffffffffffffffn);
}

/** SQLSTATE classes that mean the data is damaged rather than the server unreachable. */
const CORRUPT_STATES = new Set(['XX001', 'XX002']);

function storeError(e: unknown, op: string): SmkiError {
  if (isSmkiError(e)) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'unknown';
  if (CORRUPT_STATES.has(code)) {
    return new SmkiError('ERR_STORE_CORRUPT', `PostgreSQL reports the state store damaged during ${op} (${code})`, { detail: code }, { cause: e });
  }
  return new SmkiError('ERR_STORE_UNAVAILABLE', `the PostgreSQL state store failed during ${op} (${code}); nothing was changed`, { detail: code }, { cause: e });
}
