// The key store's two databases behind one small interface: SQLite (better-sqlite3, through
// @smki/store's plumbing) and PostgreSQL (node-postgres, likewise). SQL is written once with `?`
// placeholders; the PostgreSQL driver numbers them. Values are strings, numbers (safe integers)
// and null only.
import { resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { SmkiError } from '@smki/core';
import { openSqliteDatabase, PostgresConnection, postgresError, sqliteError, type PostgresStateStoreOptions } from '@smki/store';

/** A value the key store reads or writes. */
export type SqlValue = string | number | null;
/** A row: column name to value. */
export type Row = Record<string, SqlValue>;

/** Reads (outside a transaction: the last committed state). */
export interface SqlReader {
  get(sql: string, params?: readonly SqlValue[]): Promise<Row | undefined>;
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
}

/** Reads and writes inside one transaction. */
export interface SqlTx extends SqlReader {
  /** Run a statement; the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Insert many rows into `table` (`columns` in order), in chunks. */
  insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<void>;
  /** Insert many rows, or replace the rows with the same `key` columns, in chunks. */
  upsertMany(table: string, columns: readonly string[], key: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<void>;
  /** `FOR UPDATE` on PostgreSQL (row locks); empty on SQLite, whose write transaction already excludes every other writer. */
  readonly forUpdate: string;
  /** `FOR SHARE` on PostgreSQL; empty on SQLite. */
  readonly forShare: string;
}

/**
 * How to open another connection to the same database (plain data: it is sent to the use worker,
 * which commits use batches on a connection of its own).
 */
export type DriverSpec =
  | { readonly kind: 'sqlite'; readonly path: string; readonly schema: { readonly sql: string; readonly version: number }; readonly busyTimeoutMs?: number }
  | { readonly kind: 'postgres'; readonly options: PostgresStateStoreOptions };

/** A database the key store keeps its metadata and audit trail in. */
export interface SqlDriver extends SqlReader {
  readonly kind: 'sqlite' | 'postgres';
  /** How another thread opens its own connection to this database; undefined when it cannot (an in-memory database). */
  readonly spec?: DriverSpec | undefined;
  /** A table's name as SQL spells it (schema-qualified on PostgreSQL). */
  table(name: string): string;
  /**
   * Run `f` in one write transaction: committed (and durable) when the promise resolves, rolled
   * back when `f` throws. In one process, transactions run one at a time, in call order.
   */
  tx<T>(f: (t: SqlTx) => Promise<T>): Promise<T>;
  /**
   * Run `f`'s reads on one consistent snapshot: no commit of any process lands between two of them
   * (SQLite: inside this process's write transaction; PostgreSQL: a `REPEATABLE READ READ ONLY`
   * transaction on a connection of its own). For checks that compare one table with another.
   */
  snapshot<T>(f: (q: SqlReader) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const CHUNK = 500;
/** The writer connection's page cache cap, KiB (256 MiB). */
const WRITER_CACHE_KIB = 262_144;
/** Rows one SQLite INSERT statement of a bulk insert carries. */
const ROWS_PER_INSERT = 32;

/** ` ON CONFLICT (key) DO UPDATE SET` every other column (the same in SQLite and PostgreSQL). */
function upsertTail(columns: readonly string[], key: readonly string[]): string {
  return ` ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${columns
    .filter((c) => !key.includes(c))
    .map((c) => `${c} = excluded.${c}`)
    .join(', ')}`;
}

/** Multi-row INSERTs of at most {@link CHUNK} rows each (PostgreSQL). */
async function insertChunks(q: PgQueryable, table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[], tail: string): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const values: SqlValue[] = [];
    const tuples = chunk.map((r) => {
      const start = values.length;
      values.push(...r);
      return `(${r.map((_, j) => `$${start + j + 1}`).join(', ')})`;
    });
    await q.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}${tail}`, values);
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite

/**
 * Run `f` between `begin` and `COMMIT` on connection `c`; rolled back when it throws. Errors as
 * the store's codes (`what` names the operation in their message).
 */
async function within<T>(c: Database.Database, begin: string, what: string, f: () => Promise<T>): Promise<T> {
  try {
    c.exec(begin);
  } catch (e) {
    throw sqliteError(e, what);
  }
  try {
    const out = await f();
    c.exec('COMMIT');
    return out;
  } catch (e) {
    try {
      if (c.inTransaction) c.exec('ROLLBACK');
    } catch {
      // the connection reports the first failure
    }
    throw sqliteError(e, what);
  }
}

/**
 * SQLite: a writer connection (every transaction `BEGIN IMMEDIATE`, so writers of every process
 * serialise on SQLite's write lock; `synchronous = FULL`, so a commit is on disk when it returns)
 * and a reader connection, which sees only committed state even while this process's writer is
 * inside a transaction.
 */
export class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  readonly forUpdate = '';
  readonly #writer: Database.Database;
  readonly #reader: Database.Database;
  readonly #wStmts = new Map<string, Database.Statement>();
  readonly #rStmts = new Map<string, Database.Statement>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly spec: DriverSpec | undefined;

  private constructor(writer: Database.Database, reader: Database.Database, spec: DriverSpec | undefined) {
    this.#writer = writer;
    this.#reader = reader;
    this.spec = spec;
  }

  /**
   * @param options `useWorker: true` commits the store's use batches in the use worker, a thread
   *   with a connection of its own (the driver then offers a `spec` to open it). Off by default:
   *   measured at 1,000,000 meters on 2 cores, the batches on this thread, which read each meter
   *   once on the writer connection (see `readOnWriter`), gave more signatures a second at 64, 256
   *   and 1,024 callers than the worker (docs/keystore-estate.md §5)
   */
  static open(path: string, schema: { sql: string; version: number }, busyTimeoutMs?: number, options: { readonly useWorker?: boolean } = {}): SqliteDriver {
    const opts = { path, ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }) };
    const writer = openSqliteDatabase(opts, schema);
    const open: Database.Database[] = [writer];
    try {
      open.push(openSqliteDatabase(opts, schema));
    } catch (e) {
      for (const d of open) d.close();
      throw e;
    }
    const [, reader] = open as [Database.Database, Database.Database];
    // No memory map for the reads. Measured at 1,000,000 meters under concurrent signFor, reading
    // through a 1 GiB map cost ≈30 µs more CPU a use than reading through the page cache, most of
    // it in the kernel (likely: the file grows with every batch of use records, SQLite maps it
    // again, and the pages the next reads touch fault in anew); docs/keystore-estate.md §5.
    const file = options.useWorker === true && typeof path === 'string' && path !== '' && path !== ':memory:' && !path.startsWith('file:');
    const spec: DriverSpec | undefined = file ? { kind: 'sqlite', path: resolve(path), schema: { sql: schema.sql, version: schema.version }, ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }) } : undefined;
    // A page cache of up to WRITER_CACHE_KIB for the writer connection, whose cache outlives its own
    // commits: the meters' rows a use batch reads stay in memory from one batch to the next (SQLite
    // takes the memory as pages are read, up to the cap). Measured at 1,000,000 meters (154 MB of
    // meter rows), against the default 2 MB: a use's meter read no longer goes to the file.
    writer.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
    return new SqliteDriver(writer, reader, spec);
  }

  #stmt(db: Database.Database, cache: Map<string, Database.Statement>, sql: string): Database.Statement {
    let s = cache.get(sql);
    if (s === undefined) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  }

  table(name: string): string {
    return name;
  }

  #check(): void {
    if (this.#closed) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'the key store database is closed', {});
  }

  async get(sql: string, params: readonly SqlValue[] = []): Promise<Row | undefined> {
    this.#check();
    try {
      return this.#stmt(this.#reader, this.#rStmts, sql).get(...params) as Row | undefined;
    } catch (e) {
      throw sqliteError(e, 'a read');
    }
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    this.#check();
    try {
      return this.#stmt(this.#reader, this.#rStmts, sql).all(...params) as Row[];
    } catch (e) {
      throw sqliteError(e, 'a read');
    }
  }

  /** Iterate a query's rows without holding them all (reader connection). */
  *iterate(sql: string, params: readonly SqlValue[] = []): IterableIterator<Row> {
    this.#check();
    yield* this.#stmt(this.#reader, this.#rStmts, sql).iterate(...params) as IterableIterator<Row>;
  }

  tx<T>(f: (t: SqlTx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.#check();
      const w = this.#writer;
      const stmt = (sql: string) => this.#stmt(w, this.#wStmts, sql);
      const t: SqlTx = {
        forUpdate: '',
        forShare: '',
        get: async (sql, params = []) => stmt(sql).get(...params) as Row | undefined,
        all: async (sql, params = []) => stmt(sql).all(...params) as Row[],
        run: async (sql, params = []) => stmt(sql).run(...params).changes,
        insertMany: async (table, columns, rows) => {
          // Rows in statements of ROWS_PER_INSERT rows each (one statement step per chunk), the rest one by one.
          const tuple = `(${columns.map(() => '?').join(', ')})`;
          let i = 0;
          if (rows.length >= ROWS_PER_INSERT) {
            const many = stmt(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${Array.from({ length: ROWS_PER_INSERT }, () => tuple).join(', ')}`);
            for (; i + ROWS_PER_INSERT <= rows.length; i += ROWS_PER_INSERT) many.run(rows.slice(i, i + ROWS_PER_INSERT).flat());
          }
          const one = stmt(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuple}`);
          for (; i < rows.length; i++) one.run(...(rows[i] as SqlValue[]));
        },
        upsertMany: async (table, columns, key, rows) => {
          const s = stmt(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})${upsertTail(columns, key)}`);
          for (const r of rows) s.run(...r);
        },
      };
      return within(w, 'BEGIN IMMEDIATE', 'a transaction', () => f(t));
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /**
   * Run `f`'s reads in one read transaction on the writer connection, in turn with this driver's
   * transactions. `dataVersion()`, called by `f` after its reads, gives the connection's
   * `data_version` in that transaction: a later transaction of this driver that reads the same
   * `data_version` knows that no other connection committed anything in between (SQLite's `PRAGMA
   * data_version` changes only on another connection's commit). Whatever `f` does with what it
   * read happens before any other transaction of this driver starts. The writer's page cache stays
   * warm across its own commits, where the reading connection's is emptied by each of them.
   */
  readOnWriter<T>(f: (q: SqlReader, dataVersion: () => number) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.#check();
      const w = this.#writer;
      const stmt = (sql: string) => this.#stmt(w, this.#wStmts, sql);
      return within(w, 'BEGIN DEFERRED', 'a read', () =>
        f({ get: async (sql, params = []) => stmt(sql).get(...params) as Row | undefined, all: async (sql, params = []) => stmt(sql).all(...params) as Row[] }, () => Number(w.pragma('data_version', { simple: true }))),
      );
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** The writer connection's `data_version`, as one of this driver's transactions reads it (call it inside one). */
  txDataVersion(): number {
    return this.dataVersion();
  }

  #dataVersion: Database.Statement | undefined;

  /**
   * The writer connection's `data_version` now: unchanged since an earlier reading, no other
   * connection has committed anything in between.
   */
  dataVersion(): number {
    this.#check();
    this.#dataVersion ??= this.#writer.prepare('PRAGMA data_version').pluck();
    return Number(this.#dataVersion.get());
  }

  async snapshot<T>(f: (q: SqlReader) => Promise<T>): Promise<T> {
    // A read transaction on the reader connection (WAL: it waits for no writer and no writer waits
    // for it). Other reads of this driver while `f` runs see the same snapshot: the key store takes
    // one only while it opens, before anything else reads through its driver.
    this.#check();
    return within(this.#reader, 'BEGIN DEFERRED', 'a read', () => f({ get: (sql, params) => this.get(sql, params), all: (sql, params) => this.all(sql, params) }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    this.#writer.close();
    this.#reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** `?` placeholders numbered `$1, $2, …` (the key store's SQL has no `?` in its literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** int8 columns come back from node-postgres as strings: the key store's are safe integers. */
function rowsOf(result: { rows: Record<string, unknown>[]; fields: { name: string; dataTypeID: number }[] }): Row[] {
  const big = result.fields.filter((f) => f.dataTypeID === 20).map((f) => f.name);
  if (big.length === 0) return result.rows as Row[];
  for (const r of result.rows) for (const name of big) if (typeof r[name] === 'string') r[name] = Number(r[name]);
  return result.rows as Row[];
}

type PgQueryable = { query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[]; fields: { name: string; dataTypeID: number }[] }> };

/**
 * PostgreSQL: one pool; reads on any connection, each transaction on one connection (`READ
 * COMMITTED`; the key store takes row locks with `FOR UPDATE` where it decides on what it read).
 */
export class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly #conn: PostgresConnection;
  #queue: Promise<unknown> = Promise.resolve();
  readonly spec: DriverSpec | undefined;

  private constructor(conn: PostgresConnection, spec: DriverSpec | undefined) {
    this.#conn = conn;
    this.spec = spec;
  }

  /**
   * @param extra `useWorker: true` lets the store commit its use batches in the use worker (its own
   *   pools, two transactions at once). Off by default: measured on a 2-core machine with the server
   *   on it, the batches on this thread's pool were faster (the server competes for the same cores)
   */
  static async open(options: PostgresStateStoreOptions, schema: { readonly ddl: (schema: string) => string[]; readonly version: number; readonly upgradesFrom?: readonly number[] }, extra: { readonly useWorker?: boolean } = {}): Promise<PostgresDriver> {
    const { ddl, version, upgradesFrom } = schema;
    const conn = await PostgresConnection.open(options, { ddl, version, ...(upgradesFrom === undefined ? {} : { upgradesFrom }), defaultSchema: 'smki_keystore', applicationName: 'smki-keystore' });
    // Options that are plain data can open another connection in the use worker (with the key
    // store's own tables: `ddl` is not sent, the worker has it); others (a password function) cannot.
    let spec: DriverSpec | undefined;
    try {
      spec = extra.useWorker === true ? { kind: 'postgres', options: structuredClone(options) } : undefined;
    } catch {
      spec = undefined;
    }
    return new PostgresDriver(conn, spec);
  }

  /** The (validated) schema name. */
  get schema(): string {
    return this.#conn.schema;
  }

  table(name: string): string {
    return `${this.#conn.schema}.${name}`;
  }

  async #query(q: PgQueryable, sql: string, params: readonly SqlValue[]): Promise<Row[]> {
    return rowsOf(await q.query(numbered(sql), params as unknown[]));
  }

  async get(sql: string, params: readonly SqlValue[] = []): Promise<Row | undefined> {
    try {
      return (await this.#query(this.#conn.pool() as unknown as PgQueryable, sql, params))[0];
    } catch (e) {
      throw postgresError(e, 'a read');
    }
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    try {
      return await this.#query(this.#conn.pool() as unknown as PgQueryable, sql, params);
    } catch (e) {
      throw postgresError(e, 'a read');
    }
  }

  tx<T>(f: (t: SqlTx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      try {
        return await this.#conn.tx(async (c) => {
          const q = c as unknown as PgQueryable;
          const t: SqlTx = {
            forUpdate: ' FOR UPDATE',
            forShare: ' FOR SHARE',
            get: async (sql, params = []) => (await this.#query(q, sql, params))[0],
            all: async (sql, params = []) => this.#query(q, sql, params),
            run: async (sql, params = []) => ((await q.query(numbered(sql), params as unknown[])) as unknown as { rowCount: number }).rowCount,
            insertMany: async (table, columns, rows) => insertChunks(q, table, columns, rows, ''),
            upsertMany: async (table, columns, key, rows) => insertChunks(q, table, columns, rows, upsertTail(columns, key)),
          };
          return f(t);
        });
      } catch (e) {
        throw postgresError(e, 'a transaction');
      }
    };
    // One transaction at a time in this process, as with SQLite: the key store's decisions are
    // serialised here, and across processes by row locks.
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async snapshot<T>(f: (q: SqlReader) => Promise<T>): Promise<T> {
    try {
      return await this.#conn.tx(async (c) => {
        const q = c as unknown as PgQueryable;
        await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        return f({ get: async (sql, params = []) => (await this.#query(q, sql, params))[0], all: async (sql, params = []) => this.#query(q, sql, params) });
      });
    } catch (e) {
      throw postgresError(e, 'a read');
    }
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#conn.close();
  }
}
