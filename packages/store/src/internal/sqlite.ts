// One SQLite connection per store object, shared code of SqliteStateStore and
// SqliteDeviceRegistry: options, pragmas (WAL, synchronous FULL, busy timeout), every table of
// the store in one schema version, error mapping.
import Database from 'better-sqlite3';
import { SmkiError, isSmkiError } from '@smki/core';
import { int, invalid } from './check.js';

/**
 * The schema version this release reads and writes. 2 added `pending_commands`; a file of
 * version 1 is upgraded in place when opened (the table is created, the version set to 2, in one
 * transaction). An earlier release refuses a file of version 2 (`ERR_STORE_SCHEMA`).
 */
export const SQLITE_SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS smki_schema (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
  originator TEXT NOT NULL,
  device TEXT NOT NULL,
  counter TEXT NOT NULL,
  PRIMARY KEY (originator, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anomaly_windows (
  user TEXT NOT NULL,
  message_code INTEGER NOT NULL,
  window_ms INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (user, message_code, window_ms, window_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  message_code INTEGER NOT NULL,
  counter TEXT NOT NULL,
  command BLOB NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_held ON quarantine (state, at, id);
CREATE TABLE IF NOT EXISTS log_heads (
  id TEXT PRIMARY KEY,
  before_head TEXT NOT NULL,
  after_head TEXT NOT NULL,
  lines BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_commands (
  key TEXT PRIMARY KEY,
  device TEXT NOT NULL,
  at INTEGER NOT NULL,
  command BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_commands_at ON pending_commands (at);
CREATE TABLE IF NOT EXISTS devices (
  device TEXT PRIMARY KEY,
  record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS firmware_images (
  model TEXT NOT NULL,
  image_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  approved_at INTEGER,
  revoked_at INTEGER,
  reason TEXT,
  PRIMARY KEY (model, image_hash)
) WITHOUT ROWID;
`;

/** Options shared by the SQLite classes (see SqliteStateStoreOptions). */
export interface SqliteOptions {
  /** The database file (created if missing). */
  readonly path: string;
  /** How long to wait for another connection's write lock, in ms (default 5000, at most 600000). */
  readonly busyTimeoutMs?: number;
}

/**
 * The tables a database file holds and their version: @smki/store's own by default; another
 * package (the key store) passes its own `CREATE … IF NOT EXISTS` statements. The `smki_schema`
 * table holding the version is created for it.
 */
export interface SqliteSchemaSpec {
  /** The statements creating the tables. */
  readonly sql: string;
  /** The version this release reads and writes. */
  readonly version: number;
  /**
   * Earlier versions that `sql` upgrades by itself: their tables are a subset of this version's,
   * unchanged, so creating the missing ones is the whole migration. A file of one of them is
   * upgraded when opened (tables created and version set in one transaction); any other version
   * is refused (`ERR_STORE_SCHEMA`).
   */
  readonly upgradesFrom?: readonly number[];
}

const STORE_SCHEMA: SqliteSchemaSpec = { sql: SCHEMA, version: SQLITE_SCHEMA_VERSION, upgradesFrom: [1] };

/**
 * Open (or create) the file: WAL, synchronous FULL, the tables, the schema version checked (the
 * plumbing of the SQLite stores, shared with other packages of the toolkit as `openSqliteDatabase`).
 * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_SCHEMA`, `ERR_STORE_CORRUPT`
 */
export function openSqlite(options: SqliteOptions, spec: SqliteSchemaSpec = STORE_SCHEMA): Database.Database {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'is not an object');
  const path = options.path;
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0') || path === ':memory:') {
    throw invalid('options.path', 'is not a file path');
  }
  const busy = int(options.busyTimeoutMs ?? 5000, 'options.busyTimeoutMs', 0, 600_000);
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma(`busy_timeout = ${busy}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new SmkiError('ERR_STORE_UNAVAILABLE', `SQLite refused WAL mode (journal_mode is ${String(mode)})`, { detail: 'journal_mode' });
    db.pragma('synchronous = FULL');
    const d = db;
    d.transaction(() => {
      d.exec('CREATE TABLE IF NOT EXISTS smki_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);');
      d.exec(spec.sql);
      const row = d.prepare('SELECT version FROM smki_schema WHERE id = 1').get() as { version: unknown } | undefined;
      if (row === undefined) d.prepare('INSERT INTO smki_schema (id, version) VALUES (1, ?)').run(spec.version);
      else if (typeof row.version === 'number' && (spec.upgradesFrom ?? []).includes(row.version)) {
        // The statements above created what the earlier version lacked, in this transaction.
        d.prepare('UPDATE smki_schema SET version = ? WHERE id = 1').run(spec.version);
      } else if (row.version !== spec.version) {
        throw new SmkiError('ERR_STORE_SCHEMA', `the store has schema version ${String(row.version)}; this release uses ${spec.version}`, {
          detail: String(row.version),
        });
      }
    }).immediate();
    return db;
  } catch (e) {
    db?.close();
    throw sqliteError(e, 'open');
  }
}

/** Run `f`, mapping any failure to the store's codes. */
export function guard<T>(operationForMessage: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw sqliteError(e, operationForMessage);
  }
}

/** Map an SQLite failure to the store's codes (`ERR_STORE_CORRUPT`, `ERR_STORE_UNAVAILABLE`); a SmkiError passes through. */
export function sqliteError(e: unknown, operationForMessage: string): SmkiError {
  if (isSmkiError(e)) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'unknown';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new SmkiError('ERR_STORE_CORRUPT', `SQLite reports the store damaged during ${operationForMessage} (${code})`, { detail: code }, { cause: e });
  }
  return new SmkiError('ERR_STORE_UNAVAILABLE', `the SQLite store failed during ${operationForMessage} (${code}); nothing was changed`, { detail: code }, { cause: e });
}
