// The plan database behind one small interface, on SQLite (better-sqlite3, through @smki/store's
// plumbing) or PostgreSQL (node-postgres, likewise): the same tables (TEXT, INTEGER, BLOB/BYTEA,
// counters as 20-digit zero-padded decimal text so that they order as numbers), SQL written once
// with `?` placeholders, and the append-only, SHA-256 hash-chained history of every state change
// (recovery_events).
//
// Writers serialise: on SQLite every write transaction is `BEGIN IMMEDIATE` (SQLite's write lock
// excludes every other connection, of this process or another); on PostgreSQL every write
// transaction first takes the plan schema's transaction-scoped advisory lock, so writers of every
// process and machine run one at a time. A decision made on what a write transaction read (the
// last counter used, the last event of the chain, a plan's state) therefore holds until it commits.
import { createHash } from 'node:crypto';
import { SmkiError } from '@smki/core';
import { openSqliteDatabase, PostgresConnection, postgresError, sqliteError, type PostgresStateStoreOptions } from '@smki/store';

/** A value the plan database reads or writes. */
export type SqlValue = string | number | null | Uint8Array;
/** A row: column name to value (blobs come back as Uint8Array, integers as numbers). */
export type Row = Record<string, unknown>;

/** Statements inside one transaction. */
export interface Tx {
  get<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Run a statement; how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/** The plan database. */
export interface PlanDb {
  readonly kind: 'sqlite' | 'postgres';
  /** `group_concat(col)` / `string_agg(col, ',')`: the values of a group joined by commas. */
  groupConcat(column: string): string;
  /** Run `f` on one consistent snapshot (no writes). */
  read<T>(f: (t: Tx) => Promise<T>): Promise<T>;
  /** Run `f` in one write transaction, serialised with every other writer: committed (durable) when it resolves, rolled back when `f` throws. */
  write<T>(f: (t: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The schema version this release reads and writes. */
export const PLAN_SCHEMA_VERSION = 1;

// Version 1 as first released, plus recovery_declared (created if missing on open: an older
// database gains the table, nothing else changes).
export const PLAN_SCHEMA = `
CREATE TABLE IF NOT EXISTS recovery_plans (
  plan_id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  organisation TEXT NOT NULL,
  portfolio_id TEXT NOT NULL,
  originator TEXT NOT NULL,
  backend TEXT,
  purposes TEXT NOT NULL,
  old_signing TEXT,
  old_key_agreement TEXT,
  new_signing TEXT,
  new_key_agreement TEXT,
  certification_path TEXT,
  state TEXT NOT NULL,
  enumerated INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recovery_items (
  plan_id TEXT NOT NULL,
  device TEXT NOT NULL,
  purpose TEXT NOT NULL,
  state TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  counter TEXT,
  status INTEGER,
  PRIMARY KEY (plan_id, device, purpose)
);
CREATE INDEX IF NOT EXISTS recovery_items_state ON recovery_items (plan_id, state, device);
CREATE TABLE IF NOT EXISTS recovery_commands (
  plan_id TEXT NOT NULL,
  device TEXT NOT NULL,
  counter TEXT NOT NULL,
  command BLOB NOT NULL,
  PRIMARY KEY (plan_id, device, counter)
);
CREATE TABLE IF NOT EXISTS recovery_counters (
  originator TEXT NOT NULL,
  counter TEXT NOT NULL,
  plan_id TEXT NOT NULL,
  device TEXT NOT NULL,
  PRIMARY KEY (originator, counter)
);
CREATE TABLE IF NOT EXISTS recovery_events (
  seq INTEGER PRIMARY KEY,
  prev_hash TEXT NOT NULL,
  event TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recovery_declared (
  plan_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  after_generation INTEGER NOT NULL,
  PRIMARY KEY (plan_id, purpose)
);
`;

/** The same tables on PostgreSQL, in schema `s` (counters and ids in the "C" collation: byte order). */
function pgDdl(s: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${s}.recovery_plans (plan_id text COLLATE "C" PRIMARY KEY, route text NOT NULL, organisation text NOT NULL, portfolio_id text NOT NULL, originator text NOT NULL, backend text, purposes text NOT NULL, old_signing text, old_key_agreement text, new_signing text, new_key_agreement text, certification_path text, state text NOT NULL, enumerated integer NOT NULL, created_at text COLLATE "C" NOT NULL, updated_at text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.recovery_items (plan_id text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, purpose text COLLATE "C" NOT NULL, state text NOT NULL, attempt integer NOT NULL, counter text COLLATE "C", status integer, PRIMARY KEY (plan_id, device, purpose))`,
    `CREATE INDEX IF NOT EXISTS recovery_items_state ON ${s}.recovery_items (plan_id, state, device)`,
    `CREATE TABLE IF NOT EXISTS ${s}.recovery_commands (plan_id text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, counter text COLLATE "C" NOT NULL, command bytea NOT NULL, PRIMARY KEY (plan_id, device, counter))`,
    `CREATE TABLE IF NOT EXISTS ${s}.recovery_counters (originator text COLLATE "C" NOT NULL, counter text COLLATE "C" NOT NULL, plan_id text NOT NULL, device text NOT NULL, PRIMARY KEY (originator, counter))`,
    `CREATE TABLE IF NOT EXISTS ${s}.recovery_events (seq bigint PRIMARY KEY, prev_hash text NOT NULL, event text NOT NULL, hash text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.recovery_declared (plan_id text COLLATE "C" NOT NULL, purpose text COLLATE "C" NOT NULL, after_generation integer NOT NULL, PRIMARY KEY (plan_id, purpose))`,
  ];
}

const closed = (): never => {
  throw new SmkiError('ERR_RECOVERY_PLAN_STATE', 'the plan database is closed', {});
};

/** Blobs as Uint8Array (better-sqlite3 and node-postgres give Buffers). */
const bytes = (v: SqlValue): unknown => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);

type SqliteDb = ReturnType<typeof openSqliteDatabase>;
type Statement = { get(...p: unknown[]): unknown; all(...p: unknown[]): unknown[]; run(...p: unknown[]): { changes: number } };

/** How long a SQLite transaction waits for another connection's write lock. */
const BUSY_WAIT_MS = 10_000;

/** One SQLite connection; this process's calls one at a time (a transaction's statements are never interleaved with another's). */
class SqlitePlanDb implements PlanDb {
  readonly kind = 'sqlite' as const;
  #db: SqliteDb | undefined;
  readonly #stmts = new Map<string, Statement>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.#db = openSqliteDatabase({ path }, { sql: PLAN_SCHEMA, version: PLAN_SCHEMA_VERSION });
    // A transaction's statements are awaited: another connection of this very process that waited
    // for the write lock inside SQLite (busy_timeout) would block the thread the holder needs to
    // finish. The wait for the lock is here instead, in #begin, between turns of the event loop.
    this.#db.pragma('busy_timeout = 0');
  }

  /** `BEGIN …`, waiting up to {@link BUSY_WAIT_MS} (between turns of the event loop) while another connection holds the write lock. */
  async #begin(d: SqliteDb, begin: string): Promise<void> {
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      try {
        d.exec(begin);
        return;
      } catch (e) {
        if ((e as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw sqliteError(e, 'a transaction');
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  groupConcat(column: string): string {
    return `group_concat(${column})`;
  }

  /** A prepared statement, kept (a batch runs the same few statements thousands of times). */
  #stmt(d: SqliteDb, sql: string): Statement {
    let s = this.#stmts.get(sql);
    if (s === undefined) {
      s = d.prepare(sql) as unknown as Statement;
      if (this.#stmts.size >= 256) this.#stmts.clear();
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #tx(): Tx {
    const d = this.#db ?? closed();
    return {
      get: async (sql, params = []) => this.#stmt(d, sql).get(...params.map(bytes)) as never,
      all: async (sql, params = []) => this.#stmt(d, sql).all(...params.map(bytes)) as never,
      run: async (sql, params = []) => this.#stmt(d, sql).run(...params.map(bytes)).changes,
    };
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  read<T>(f: (t: Tx) => Promise<T>): Promise<T> {
    return this.#transaction('BEGIN', f);
  }

  write<T>(f: (t: Tx) => Promise<T>): Promise<T> {
    return this.#transaction('BEGIN IMMEDIATE', f);
  }

  #transaction<T>(begin: string, f: (t: Tx) => Promise<T>): Promise<T> {
    return this.#serial(async () => {
      const d = this.#db ?? closed();
      await this.#begin(d, begin);
      try {
        const out = await f(this.#tx());
        d.exec('COMMIT');
        return out;
      } catch (e) {
        try {
          if (d.inTransaction) d.exec('ROLLBACK');
        } catch {
          // the first failure is the one reported
        }
        throw sqliteError(e, 'a transaction');
      }
    });
  }

  async close(): Promise<void> {
    await this.#queue;
    this.#db?.close();
    this.#db = undefined;
  }
}

/** `?` placeholders numbered `$1, $2, …` (the plan SQL has no `?` in its literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

type PgResult = { rows: Record<string, unknown>[]; fields: { name: string; dataTypeID: number }[]; rowCount: number | null };
type PgQueryable = { query(sql: string, params?: unknown[]): Promise<PgResult> };

/** int8 (count(*), seq) as numbers, bytea as Uint8Array. */
function rowsOf(r: PgResult): Row[] {
  const big = r.fields.filter((f) => f.dataTypeID === 20).map((f) => f.name);
  for (const row of r.rows) for (const name of big) if (typeof row[name] === 'string') row[name] = Number(row[name]);
  return r.rows;
}

/** A pool; each read and write a transaction on one connection, with the plan schema as search path. */
class PostgresPlanDb implements PlanDb {
  readonly kind = 'postgres' as const;
  readonly #conn: PostgresConnection;

  private constructor(conn: PostgresConnection) {
    this.#conn = conn;
  }

  static async open(options: PostgresStateStoreOptions): Promise<PostgresPlanDb> {
    return new PostgresPlanDb(await PostgresConnection.open(options, { ddl: pgDdl, version: PLAN_SCHEMA_VERSION, defaultSchema: 'smki_recovery', applicationName: 'smki-recovery' }));
  }

  groupConcat(column: string): string {
    return `string_agg(${column}, ',' ORDER BY ${column})`;
  }

  #tx(q: PgQueryable): Tx {
    const query = async (sql: string, params: readonly SqlValue[]) => q.query(numbered(sql), params.map(bytes));
    return {
      get: async (sql, params = []) => rowsOf(await query(sql, params))[0] as never,
      all: async (sql, params = []) => rowsOf(await query(sql, params)) as never,
      run: async (sql, params = []) => (await query(sql, params)).rowCount ?? 0,
    };
  }

  async read<T>(f: (t: Tx) => Promise<T>): Promise<T> {
    try {
      return await this.#conn.tx(async (c) => {
        const q = c as unknown as PgQueryable;
        await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        await q.query(`SET LOCAL search_path TO ${this.#conn.schema}`);
        return f(this.#tx(q));
      });
    } catch (e) {
      throw postgresError(e, 'a read');
    }
  }

  async write<T>(f: (t: Tx) => Promise<T>): Promise<T> {
    try {
      return await this.#conn.tx(async (c) => {
        const q = c as unknown as PgQueryable;
        await q.query(`SET LOCAL search_path TO ${this.#conn.schema}`);
        // Every writer of every process waits here: what this transaction reads it decides on.
        await this.#conn.lock(c);
        return f(this.#tx(q));
      });
    } catch (e) {
      throw postgresError(e, 'a transaction');
    }
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}

/** Open the plan database: a SQLite file, or a PostgreSQL schema (created with its tables if missing). */
export async function openPlanDb(where: { readonly path?: string; readonly postgres?: PostgresStateStoreOptions }): Promise<PlanDb> {
  if (where.postgres !== undefined) return PostgresPlanDb.open(where.postgres);
  return new SqlitePlanDb(where.path as string);
}

/** The hash before the first event. */
export const GENESIS = '0'.repeat(64);

/** A counter as stored: 20 decimal digits (2^64 − 1 has 20), so text order is number order. */
export const counterText = (c: bigint): string => c.toString().padStart(20, '0');

/** SHA-256 of `prev ‖ "\n" ‖ seq ‖ "\n" ‖ event`, upper-case hex. */
export function eventHash(prev: string, seq: number, event: string): string {
  return createHash('sha256').update(`${prev}\n${seq}\n${event}`).digest('hex').toUpperCase();
}

/** Append events to the chain (call inside the write transaction of the change they record). */
export async function appendEvents(t: Tx, events: readonly Record<string, unknown>[]): Promise<void> {
  if (events.length === 0) return;
  const last = await t.get<{ seq: number; hash: string }>('SELECT seq, hash FROM recovery_events ORDER BY seq DESC LIMIT 1');
  let seq = Number(last?.seq ?? 0);
  let prev = last?.hash ?? GENESIS;
  for (const e of events) {
    seq += 1;
    const text = JSON.stringify(e);
    const hash = eventHash(prev, seq, text);
    await t.run('INSERT INTO recovery_events (seq, prev_hash, event, hash) VALUES (?, ?, ?, ?)', [seq, prev, text, hash]);
    prev = hash;
  }
}
