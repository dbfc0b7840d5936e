/// <reference path="../pgpass.d.ts" />
// One PostgreSQL connection pool per store object, shared code of PostgresStateStore and
// PostgresDeviceRegistry: options, the password (environment or password file only), the
// schema and its tables (created once, under an advisory lock), transactions, error mapping.
import type { Pool, PoolClient, PoolConfig } from 'pg';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SmkiError, isSmkiError } from '@smki/core';
import { closedError, int, invalid } from './check.js';

/**
 * The schema version this release reads and writes. 2 added `pending_commands`; a schema of
 * version 1 is upgraded in place when a store opens it (the table is created and the version set
 * to 2 in one transaction, under the schema's advisory lock). An earlier release refuses a schema
 * of version 2 (`ERR_STORE_SCHEMA`).
 */
export const SCHEMA_VERSION = 2;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const HOST = /^[A-Za-z0-9._:/-]{1,255}$/;
const NAME = /^[A-Za-z0-9._-]{1,63}$/;

/**
 * Options of `PostgresStateStore.open` and `PostgresDeviceRegistry.open`. Where to
 * connect comes from here, a connection service file, or the libpq environment (`PGHOST`,
 * `PGPORT`, `PGDATABASE`, `PGUSER`); the password only from the service file, the environment
 * (`PGPASSWORD`) or a password file (`PGPASSFILE`, else `~/.pgpass`), never from code or a
 * command-line flag, so it is in no process listing, shell history or source file.
 */
export interface PostgresStateStoreOptions {
  /**
   * A section of the connection service file (`PGSERVICEFILE`, else `~/.pg_service.conf`) giving
   * host, port, dbname, user and optionally password (default: `PGSERVICE`). The options below
   * override it.
   */
  readonly service?: string;
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
  /**
   * {@link PostgresStateStore} only: also keep every decision-log line a commit carries in the
   * `log_lines` table, in the same transaction as the counters (default false), so that the
   * log's records themselves live in PostgreSQL (read with `PostgresStateStore.logLines`), not
   * only its head. Costs one more insert per commit.
   */
  readonly keepLogLines?: boolean;
  /** Most connections in the pool (default 4). */
  readonly maxConnections?: number;
  /** How long to wait for a connection before `ERR_STORE_UNAVAILABLE` (ms, default 5000). */
  readonly connectTimeoutMs?: number;
  /** How long one statement may take before `ERR_STORE_UNAVAILABLE` (ms, default 10000). */
  readonly statementTimeoutMs?: number;
}

/** The pgpass module (node-postgres's own password-file reader): a matching password or undefined. */
type PgPass = (info: { host: string; port: number; database: string; user: string }, cb: (password: string | undefined) => void) => void;

/**
 * The tables a connection creates in its schema, and their version: @smki/store's own by
 * default; another package (the key store) passes its own. `ddl` gets the validated schema name
 * and returns `CREATE … IF NOT EXISTS` statements; the `schema_version` table is created for it.
 */
export interface SchemaSpec {
  /** The statements creating the tables, for the (validated) schema name. */
  readonly ddl: (schema: string) => string[];
  /** The version this release reads and writes. */
  readonly version: number;
  /** The schema when the options name none. */
  readonly defaultSchema: string;
  /** The connection's `application_name`. */
  readonly applicationName: string;
  /**
   * Earlier versions that `ddl` upgrades by itself: their tables are a subset of this version's,
   * unchanged, so creating the missing ones is the whole migration. A schema of one of them is
   * upgraded when opened (in the same transaction); any other version is refused (`ERR_STORE_SCHEMA`).
   */
  readonly upgradesFrom?: readonly number[];
}

/** Every table of the store, in one schema, one version. */
function ddl(s: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${s}.counters (originator text NOT NULL, device text NOT NULL, counter text COLLATE "C" NOT NULL, PRIMARY KEY (originator, device))`,
    `CREATE TABLE IF NOT EXISTS ${s}.anomaly_windows (user_id text NOT NULL, message_code integer NOT NULL, window_ms bigint NOT NULL, window_start bigint NOT NULL, count bigint NOT NULL, PRIMARY KEY (user_id, message_code, window_ms, window_start))`,
    `CREATE TABLE IF NOT EXISTS ${s}.quarantine (id text PRIMARY KEY, at bigint NOT NULL, user_id text NOT NULL, device text NOT NULL, message_code integer NOT NULL, counter text NOT NULL, command bytea NOT NULL, state text NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS quarantine_held ON ${s}.quarantine (state, at, id)`,
    `CREATE TABLE IF NOT EXISTS ${s}.log_heads (id text COLLATE "C" PRIMARY KEY, before_head text NOT NULL, after_head text NOT NULL, lines bytea NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.log_lines (id text COLLATE "C" NOT NULL, seq bigint NOT NULL, line text NOT NULL, PRIMARY KEY (id, seq))`,
    `CREATE TABLE IF NOT EXISTS ${s}.pending_commands (key text COLLATE "C" PRIMARY KEY, device text NOT NULL, at bigint NOT NULL, command bytea NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS pending_commands_at ON ${s}.pending_commands (at)`,
    `CREATE TABLE IF NOT EXISTS ${s}.devices (device text PRIMARY KEY, record text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.firmware_images (model text COLLATE "C" NOT NULL, image_hash text COLLATE "C" NOT NULL, state text NOT NULL, approved_at bigint, revoked_at bigint, reason text, PRIMARY KEY (model, image_hash))`,
  ];
}

const STORE_SCHEMA: SchemaSpec = { ddl, version: SCHEMA_VERSION, defaultSchema: 'smki', applicationName: 'smki-store', upgradesFrom: [1] };

const SERVICE_KEYS = new Set(['host', 'port', 'dbname', 'user', 'password']);

/**
 * A section of the connection service file (libpq's pg_service.conf format): PGSERVICEFILE, else
 * ~/.pg_service.conf, else PGSYSCONFDIR/pg_service.conf. Only host, port, dbname, user and
 * password are understood; any other keyword is refused rather than ignored.
 */
function readService(name: string): Record<string, string> {
  const files = process.env['PGSERVICEFILE'] !== undefined
    ? [process.env['PGSERVICEFILE']]
    : [join(homedir(), '.pg_service.conf'), join(process.env['PGSYSCONFDIR'] ?? '/etc/postgresql-common', 'pg_service.conf')];
  for (const file of files) {
    let body: string;
    try {
      body = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const out: Record<string, string> = {};
    let inSection = false;
    let found = false;
    for (const [i, raw] of body.split(/\r?\n/).entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const section = /^\[([^\]]+)\]$/.exec(line);
      if (section) {
        inSection = section[1] === name;
        found ||= inSection;
        continue;
      }
      if (!inSection) continue;
      const eq = line.indexOf('=');
      const key = line.slice(0, eq).trim();
      if (eq < 1 || !SERVICE_KEYS.has(key)) throw invalid('options.service', `line ${i + 1} of the service file is not host, port, dbname, user or password = value`);
      out[key] = line.slice(eq + 1).trim();
    }
    if (found) return out;
  }
  throw invalid('options.service', `names no section of a service file (PGSERVICEFILE, ~/.pg_service.conf)`);
}

function text(v: unknown, field: string, re: RegExp): string {
  if (typeof v !== 'string' || !re.test(v)) throw invalid(field, 'is not valid');
  return v;
}

/** A 63-bit advisory lock key per schema (FNV-1a of its name), as a SQL literal. */
function lockKeyOf(schema: string): string {
  let h = 0xcbf29ce484222325n;
  for (const ch of `smki-store:${schema}`) h = ((h ^ BigInt(ch.charCodeAt(0))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return String(h & 0x7fffffffffffffffn);
}

/**
 * A pool of PostgreSQL connections to one schema of tables (the plumbing of the PostgreSQL
 * stores, shared with other packages of the toolkit as `PostgresConnection`): where to connect
 * and the password come as for {@link PostgresStateStoreOptions}; the tables are created under
 * the schema's advisory lock and their version checked.
 */
export class PgConnection {
  #pool: Pool | undefined;
  /** The (validated) schema name, safe to put in SQL. */
  readonly schema: string;
  /** Whether commits keep their decision-log lines in `log_lines`. */
  readonly keepLogLines: boolean;
  readonly #lockKey: string;

  private constructor(pool: Pool, schema: string, keepLogLines: boolean) {
    this.#pool = pool;
    this.schema = schema;
    this.keepLogLines = keepLogLines;
    this.#lockKey = lockKeyOf(schema);
  }

  /**
   * Connect, then create `spec`'s tables (the store's own by default) under the schema's advisory
   * lock and check its schema version. Another package keeps its tables in a schema of its own
   * (`spec.defaultSchema`) with a version of its own.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_SCHEMA`, `ERR_STORE_CORRUPT`
   */
  static async open(options: PostgresStateStoreOptions, spec: SchemaSpec = STORE_SCHEMA): Promise<PgConnection> {
    if (typeof options !== 'object' || options === null) throw invalid('options', 'is not an object');
    for (const forbidden of ['password', 'connectionString']) {
      if (forbidden in options) {
        throw invalid(`options.${forbidden}`, 'is not accepted: the password comes from PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass)');
      }
    }
    const schema = options.schema ?? spec.defaultSchema;
    if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) throw invalid('options.schema', 'is not a lower-case SQL identifier');
    const keepLogLines = options.keepLogLines ?? false;
    if (typeof keepLogLines !== 'boolean') throw invalid('options.keepLogLines', 'is not a boolean');
    const statementMs = int(options.statementTimeoutMs ?? 10_000, 'options.statementTimeoutMs', 1, 600_000);
    const config: PoolConfig = {
      max: int(options.maxConnections ?? 4, 'options.maxConnections', 1, 1000),
      connectionTimeoutMillis: int(options.connectTimeoutMs ?? 5000, 'options.connectTimeoutMs', 1, 600_000),
      statement_timeout: statementMs,
      query_timeout: statementMs + 1000,
      application_name: spec.applicationName,
    };
    // Precedence as in libpq: the options, then the service file's section, then PG* variables
    // (node-postgres reads those itself for what is still unset).
    const serviceName = options.service ?? process.env['PGSERVICE'];
    const service = serviceName === undefined ? {} : readService(text(serviceName, 'options.service', NAME));
    const host = options.host ?? service['host'];
    const port = options.port ?? (service['port'] === undefined ? undefined : Number(service['port']));
    const database = options.database ?? service['dbname'];
    const user = options.user ?? service['user'];
    if (host !== undefined) config.host = text(host, 'options.host', HOST);
    if (port !== undefined) config.port = int(port, 'options.port', 1, 65535);
    if (database !== undefined) config.database = text(database, 'options.database', NAME);
    if (user !== undefined) config.user = text(user, 'options.user', NAME);
    const servicePassword = service['password'];

    let PgPool: typeof Pool;
    let pgpass: PgPass;
    try {
      PgPool = (await import('pg')).default.Pool;
      pgpass = (await import('pgpass')).default as PgPass;
    } catch (e) {
      throw new SmkiError('ERR_STORE_UNAVAILABLE', 'the PostgreSQL store needs the pg and pgpass packages (pnpm add pg pgpass)', { detail: 'pg' }, { cause: e });
    }
    // The password: the service file's, else PGPASSWORD, else the password file (PGPASSFILE,
    // else ~/.pgpass) line that matches where we connect; looked up on each new connection.
    config.password = async () => {
      if (servicePassword !== undefined) return servicePassword;
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
    const conn = new PgConnection(pool, schema, keepLogLines);
    try {
      await conn.tx(async (c) => {
        await conn.lock(c);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)`);
        for (const sql of spec.ddl(schema)) await c.query(sql);
        const r = await c.query(`SELECT version FROM ${schema}.schema_version WHERE id = 1`);
        if (r.rows.length === 0) await c.query(`INSERT INTO ${schema}.schema_version (id, version) VALUES (1, $1)`, [spec.version]);
        else if ((spec.upgradesFrom ?? []).includes(r.rows[0].version)) {
          // The statements above created what the earlier version lacked, in this transaction.
          await c.query(`UPDATE ${schema}.schema_version SET version = $1 WHERE id = 1`, [spec.version]);
        } else if (r.rows[0].version !== spec.version) {
          throw new SmkiError('ERR_STORE_SCHEMA', `the store has schema version ${String(r.rows[0].version)}; this release uses ${spec.version}`, {
            detail: String(r.rows[0].version),
          });
        }
      });
    } catch (e) {
      await pool.end().catch(() => {});
      throw pgError(e, 'open');
    }
    return conn;
  }

  /** The pool. @throws SmkiError `ERR_STORE_CLOSED` */
  pool(): Pool {
    if (this.#pool === undefined) throw closedError();
    return this.#pool;
  }

  /** Take the schema's transaction-scoped advisory lock: commits of every process serialise on it. @throws SmkiError `ERR_STORE_UNAVAILABLE` and the errors of `pg` */
  async lock(c: PoolClient): Promise<void> {
    await c.query(`SELECT pg_advisory_xact_lock(${this.#lockKey})`);
  }

  /** Run `f` in one transaction on one pooled connection; a failed connection is not reused. @throws SmkiError `ERR_STORE_CLOSED`; whatever `f` or `pg` throws */
  async tx<T>(f: (c: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool().connect();
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

  /** One statement outside a transaction; failures mapped to the store's codes. @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED` */
  async query(operationForMessage: string, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    try {
      return (await this.pool().query(sql, params)).rows;
    } catch (e) {
      throw pgError(e, operationForMessage);
    }
  }

  /** End the pool (idempotent). */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }
}

/** SQLSTATEs that mean the data is damaged rather than the server unreachable. */
const CORRUPT_STATES = new Set(['XX001', 'XX002']);

/** Map a PostgreSQL or connection failure to the store's codes (`ERR_STORE_CORRUPT`, `ERR_STORE_UNAVAILABLE`); a SmkiError passes through. */
export function pgError(e: unknown, operationForMessage: string): SmkiError {
  if (isSmkiError(e)) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'unknown';
  if (CORRUPT_STATES.has(code)) {
    return new SmkiError('ERR_STORE_CORRUPT', `PostgreSQL reports the store damaged during ${operationForMessage} (${code})`, { detail: code }, { cause: e });
  }
  return new SmkiError('ERR_STORE_UNAVAILABLE', `the PostgreSQL store failed during ${operationForMessage} (${code}); nothing was changed`, { detail: code }, { cause: e });
}
