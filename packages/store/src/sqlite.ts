import Database from 'better-sqlite3';
import { SmkiError, isSmkiError } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { applyEntries } from './internal/apply.js';
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

/** The schema version this release reads and writes. */
const SCHEMA_VERSION = 1;

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
`;

/** Options of {@link SqliteStateStore.open}. */
export interface SqliteStateStoreOptions {
  /** The database file; created (with its tables) if missing. */
  readonly path: string;
  /**
   * How long a write waits for another process's transaction before the store reports
   * `ERR_STORE_UNAVAILABLE` (milliseconds, default 5000).
   */
  readonly busyTimeoutMs?: number;
}

type Db = Database.Database;

/**
 * The embedded {@link StateStore}: one SQLite file (better-sqlite3) in WAL mode with
 * `synchronous = FULL`, so a commit is in the write-ahead log and fsynced before
 * {@link SqliteStateStore.commit} returns, and survives a crash of the process or the machine.
 * Several processes (and worker threads) may open the same file: each commit is one
 * `BEGIN IMMEDIATE` transaction, so commits are serialised by SQLite's write lock and a
 * counter is accepted once however many processes race for it.
 *
 * Calls are synchronous underneath (better-sqlite3): a commit blocks the event loop for the
 * time of its fsync. Use worker threads to spread load over cores.
 *
 * @see docs/store.md
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { parseEui64 } from '@smki/core';
 * import { SqliteStateStore } from '@smki/store';
 * const store = await SqliteStateStore.open({ path: join(mkdtempSync(join(tmpdir(), 'state-')), 'state.db') });
 * const originator = parseEui64('90B3D51F30010000');
 * const device = parseEui64('00DB1234567890A0');
 * await store.commit([{ counter: { originator, device, value: 1000n } }]);
 * console.log(await store.lastCounter(originator, device)); // 1000n
 * await store.close();
 * ```
 */
export class SqliteStateStore implements StateStore {
  /** Always `sqlite`. */
  readonly backend = 'sqlite' as const;
  #db: Db | undefined;
  readonly #stmt: ReturnType<typeof prepare>;

  private constructor(db: Db) {
    this.#db = db;
    this.#stmt = prepare(db);
  }

  /**
   * Open (or create) the store file.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE` (cannot open or lock the
   *   file), `ERR_STORE_CORRUPT` (not a database, or damaged), `ERR_STORE_SCHEMA` (written by
   *   another schema version)
   */
  static async open(options: SqliteStateStoreOptions): Promise<SqliteStateStore> {
    if (typeof options !== 'object' || options === null) throw invalid('options', 'is not an object');
    const path = options.path;
    if (typeof path !== 'string' || path.length === 0 || path.includes('\0') || path === ':memory:') {
      throw invalid('options.path', 'is not a file path');
    }
    const busy = int(options.busyTimeoutMs ?? 5000, 'options.busyTimeoutMs', 0, 600_000);
    let db: Db | undefined;
    try {
      db = new Database(path);
      db.pragma(`busy_timeout = ${busy}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new SmkiError('ERR_STORE_UNAVAILABLE', `SQLite refused WAL mode (journal_mode is ${String(mode)})`, { detail: 'journal_mode' });
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      const d = db;
      d.transaction(() => {
        d.exec(SCHEMA);
        const row = d.prepare('SELECT version FROM smki_schema WHERE id = 1').get() as { version: unknown } | undefined;
        if (row === undefined) d.prepare('INSERT INTO smki_schema (id, version) VALUES (1, ?)').run(SCHEMA_VERSION);
        else if (row.version !== SCHEMA_VERSION) {
          throw new SmkiError('ERR_STORE_SCHEMA', `the store has schema version ${String(row.version)}; this release uses ${SCHEMA_VERSION}`, {
            detail: String(row.version),
          });
        }
      }).immediate();
      return new SqliteStateStore(db);
    } catch (e) {
      db?.close();
      throw storeError(e, 'open');
    }
  }

  #open(): Db {
    if (this.#db === undefined) throw closedError();
    return this.#db;
  }

  /** {@inheritDoc StateStore.lastCounter} */
  async lastCounter(originator: Eui64, device: Eui64): Promise<bigint | undefined> {
    this.#open();
    const o = eui64(originator, 'originator');
    const d = eui64(device, 'device');
    return guard('lastCounter', () => {
      const row = this.#stmt.counter.get(o, d) as { counter: unknown } | undefined;
      return row === undefined ? undefined : counterFromHex(row.counter, `${o}/${d}`);
    });
  }

  /** {@inheritDoc StateStore.anomalyCount} */
  async anomalyCount(window: AnomalyWindow): Promise<number> {
    this.#open();
    const w = checkWindow(window, 'window');
    return guard('anomalyCount', () => this.#count(w));
  }

  #count(w: AnomalyWindow): number {
    const row = this.#stmt.window.get(w.user, w.messageCode, w.windowMs, w.windowStart) as { count: unknown } | undefined;
    return row === undefined ? 0 : countFrom(row.count, `${w.user}/${w.messageCode}/${w.windowStart}`);
  }

  /** {@inheritDoc StateStore.commit} */
  async commit(entries: readonly CommitEntry[]): Promise<CommitOutcome[]> {
    const db = this.#open();
    const checked = checkEntries(entries);
    const s = this.#stmt;
    return guard('commit', () =>
      db
        .transaction(() => {
          const { outcomes, writes } = applyEntries(checked, {
            counter: (o, d) => {
              const row = s.counter.get(o, d) as { counter: unknown } | undefined;
              return row === undefined ? undefined : counterFromHex(row.counter, `${o}/${d}`);
            },
            anomaly: (w) => this.#count(w),
            quarantineState: (id) => {
              const row = s.quarantineState.get(id) as { state: unknown } | undefined;
              if (row === undefined) return undefined;
              if (row.state !== 'held' && row.state !== 'released' && row.state !== 'discarded') {
                throw new SmkiError('ERR_STORE_CORRUPT', `quarantine record ${id} has an unknown state`, { detail: id });
              }
              return row.state;
            },
          });
          for (const c of writes.counters.values()) s.putCounter.run(c.originator, c.device, counterToHex(c.value));
          for (const { window: w, count } of writes.anomalies.values()) s.putWindow.run(w.user, w.messageCode, w.windowMs, w.windowStart, count);
          for (const q of writes.quarantines) {
            s.putQuarantine.run(q.id, q.at, q.user, q.device, q.messageCode, counterToHex(q.counter), Buffer.from(q.command));
          }
          for (const id of writes.releases) s.release.run(id);
          return outcomes;
        })
        .immediate(),
    );
  }

  /** {@inheritDoc StateStore.quarantineRecord} */
  async quarantineRecord(id: string): Promise<QuarantineRecord | undefined> {
    this.#open();
    const q = quarantineId(id, 'id');
    return guard('quarantineRecord', () => {
      const row = this.#stmt.quarantine.get(q) as QuarantineRow | undefined;
      return row === undefined ? undefined : quarantineFromRow(row);
    });
  }

  /** {@inheritDoc StateStore.heldQuarantine} */
  async heldQuarantine(limit = 1000): Promise<QuarantineRecord[]> {
    this.#open();
    const n = int(limit, 'limit', 1, 100_000);
    return guard('heldQuarantine', () => (this.#stmt.held.all(n) as QuarantineRow[]).map(quarantineFromRow));
  }

  /** {@inheritDoc StateStore.discardQuarantine} */
  async discardQuarantine(id: string): Promise<boolean> {
    this.#open();
    const q = quarantineId(id, 'id');
    return guard('discardQuarantine', () => this.#stmt.discard.run(q).changes === 1);
  }

  /** {@inheritDoc StateStore.pruneAnomalyWindows} */
  async pruneAnomalyWindows(before: number): Promise<number> {
    this.#open();
    const t = epochMs(before, 'before');
    return guard('pruneAnomalyWindows', () => this.#stmt.prune.run(t).changes);
  }

  /** {@inheritDoc StateStore.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }
}

function prepare(db: Db) {
  return {
    counter: db.prepare('SELECT counter FROM counters WHERE originator = ? AND device = ?'),
    putCounter: db.prepare(
      'INSERT INTO counters (originator, device, counter) VALUES (?, ?, ?) ON CONFLICT (originator, device) DO UPDATE SET counter = excluded.counter',
    ),
    window: db.prepare('SELECT count FROM anomaly_windows WHERE user = ? AND message_code = ? AND window_ms = ? AND window_start = ?'),
    putWindow: db.prepare(
      'INSERT INTO anomaly_windows (user, message_code, window_ms, window_start, count) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (user, message_code, window_ms, window_start) DO UPDATE SET count = excluded.count',
    ),
    prune: db.prepare('DELETE FROM anomaly_windows WHERE window_start + window_ms <= ?'),
    quarantineState: db.prepare('SELECT state FROM quarantine WHERE id = ?'),
    quarantine: db.prepare('SELECT id, at, user, device, message_code, counter, command, state FROM quarantine WHERE id = ?'),
    held: db.prepare("SELECT id, at, user, device, message_code, counter, command, state FROM quarantine WHERE state = 'held' ORDER BY at, id LIMIT ?"),
    putQuarantine: db.prepare(
      "INSERT INTO quarantine (id, at, user, device, message_code, counter, command, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'held')",
    ),
    release: db.prepare("UPDATE quarantine SET state = 'released' WHERE id = ? AND state = 'held'"),
    discard: db.prepare("UPDATE quarantine SET state = 'discarded' WHERE id = ? AND state = 'held'"),
  };
}

function guard<T>(op: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw storeError(e, op);
  }
}

/** Map an SQLite failure to the store's codes; a SmkiError passes through. */
function storeError(e: unknown, op: string): SmkiError {
  if (isSmkiError(e)) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'unknown';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new SmkiError('ERR_STORE_CORRUPT', `SQLite reports the state store damaged during ${op} (${code})`, { detail: code }, { cause: e });
  }
  return new SmkiError('ERR_STORE_UNAVAILABLE', `the SQLite state store failed during ${op} (${code}); nothing was changed`, { detail: code }, { cause: e });
}
