import type Database from 'better-sqlite3';
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
  pendingKey,
  quarantineId,
} from './internal/check.js';
import { BuildGuard, checkCommitOptions, checkExpected, encodeIntent, headsFromRow, intentFromRow, logId, rethrowBuildError } from './internal/log.js';
import type { LogRow } from './internal/log.js';
import { pendingFromRow, quarantineFromRow, type PendingRow, type QuarantineRow } from './internal/rows.js';
import { guard, openSqlite, sqliteError } from './internal/sqlite.js';
import type { AnomalyWindow, CommitEntry, CommitOptions, CommitOutcome, LogIntent, PendingCommand, QuarantineRecord, StateStore } from './types.js';
import { applyCellReplacements, checkCellReplacements, checkDeviceIds, checkDevices, decodeDevice, encodeDevice } from './registry.js';
import type { CellReplacement, DeviceRecord, DeviceRegistry } from './registry.js';
import { approvals, checkImageHash, checkImages, checkModel, checkReason, firmwareFromRow } from './firmware.js';
import type { FirmwareAllowlist, FirmwareImage, FirmwareRow, FirmwareStatus } from './firmware.js';

/** Options of {@link SqliteStateStore.open} and {@link SqliteDeviceRegistry.open}. */
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
  readonly #guard = new BuildGuard();

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
    return new SqliteStateStore(openSqlite(options));
  }

  #open(): Db {
    if (this.#db === undefined) throw closedError();
    this.#guard.check();
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
  async commit(entries: readonly CommitEntry[], options?: CommitOptions): Promise<CommitOutcome[]> {
    const db = this.#open();
    const checked = checkEntries(entries);
    const log = checkCommitOptions(options);
    const s = this.#stmt;
    try {
      return db
        .transaction(() => {
          // The log's compare-and-set comes first: a conflict applies nothing.
          if (log) {
            const row = s.logHeads.get(log.id) as Pick<LogRow, 'before_head' | 'after_head'> | undefined;
            checkExpected(log, row && headsFromRow(log.id, row));
          }
          const { outcomes, writes } = applyEntries(checked, {
            counter: (o, d) => {
              const row = s.counter.get(o, d) as { counter: unknown } | undefined;
              return row === undefined ? undefined : counterFromHex(row.counter, `${o}/${d}`);
            },
            anomaly: (w) => this.#count(w),
            quarantined: (id) => {
              const row = s.quarantine.get(id) as QuarantineRow | undefined;
              return row === undefined ? undefined : quarantineFromRow(row);
            },
          });
          // Built before anything is written (the transaction rolls back either way if it fails).
          const intent = log && encodeIntent(this.#guard.run(log, outcomes));
          for (const c of writes.counters.values()) s.putCounter.run(c.originator, c.device, counterToHex(c.value));
          for (const { window: w, count } of writes.anomalies.values()) s.putWindow.run(w.user, w.messageCode, w.windowMs, w.windowStart, count);
          for (const q of writes.quarantines) {
            s.putQuarantine.run(q.id, q.at, q.user, q.device, q.messageCode, counterToHex(q.counter), Buffer.from(q.command));
          }
          for (const id of writes.releases) s.release.run(id);
          for (const p of writes.pending.values()) s.putPending.run(p.key, p.device, p.at, Buffer.from(p.command));
          if (log && intent) s.putLog.run(log.id, intent.before_head, intent.after_head, intent.lines);
          return outcomes;
        })
        .immediate();
    } catch (e) {
      // What build threw leaves unchanged; anything else is mapped to the store's codes.
      rethrowBuildError(e);
      throw sqliteError(e, 'commit');
    }
  }

  #intent(id: string): LogIntent | undefined {
    const row = this.#stmt.log.get(id) as LogRow | undefined;
    return row === undefined ? undefined : intentFromRow(id, row);
  }

  /** {@inheritDoc StateStore.logIntent} */
  async logIntent(id: string): Promise<LogIntent | undefined> {
    this.#open();
    const l = logId(id, 'id');
    return guard('logIntent', () => this.#intent(l));
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

  /** {@inheritDoc StateStore.pendingCommand} */
  async pendingCommand(key: string): Promise<PendingCommand | undefined> {
    this.#open();
    const k = pendingKey(key, 'key');
    return guard('pendingCommand', () => {
      const row = this.#stmt.pending.get(k) as PendingRow | undefined;
      return row === undefined ? undefined : pendingFromRow(k, row);
    });
  }

  /** {@inheritDoc StateStore.removePendingCommand} */
  async removePendingCommand(key: string): Promise<boolean> {
    this.#open();
    const k = pendingKey(key, 'key');
    return guard('removePendingCommand', () => this.#stmt.removePending.run(k).changes === 1);
  }

  /** {@inheritDoc StateStore.prunePendingCommands} */
  async prunePendingCommands(before: number): Promise<number> {
    this.#open();
    const t = epochMs(before, 'before');
    return guard('prunePendingCommands', () => this.#stmt.prunePending.run(t).changes);
  }

  /** {@inheritDoc StateStore.pruneAnomalyWindows} */
  async pruneAnomalyWindows(before: number): Promise<number> {
    this.#open();
    const t = epochMs(before, 'before');
    return guard('pruneAnomalyWindows', () => this.#stmt.prune.run(t).changes);
  }

  /** {@inheritDoc StateStore.close} */
  async close(): Promise<void> {
    this.#guard.check();
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
    quarantine: db.prepare('SELECT id, at, user, device, message_code, counter, command, state FROM quarantine WHERE id = ?'),
    held: db.prepare("SELECT id, at, user, device, message_code, counter, command, state FROM quarantine WHERE state = 'held' ORDER BY at, id LIMIT ?"),
    putQuarantine: db.prepare(
      "INSERT INTO quarantine (id, at, user, device, message_code, counter, command, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'held')",
    ),
    release: db.prepare("UPDATE quarantine SET state = 'released' WHERE id = ? AND state = 'held'"),
    discard: db.prepare("UPDATE quarantine SET state = 'discarded' WHERE id = ? AND state = 'held'"),
    pending: db.prepare('SELECT key, device, at, command FROM pending_commands WHERE key = ?'),
    putPending: db.prepare(
      'INSERT INTO pending_commands (key, device, at, command) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (key) DO UPDATE SET device = excluded.device, at = excluded.at, command = excluded.command',
    ),
    removePending: db.prepare('DELETE FROM pending_commands WHERE key = ?'),
    prunePending: db.prepare('DELETE FROM pending_commands WHERE at < ?'),
    log: db.prepare('SELECT before_head, after_head, lines FROM log_heads WHERE id = ?'),
    logHeads: db.prepare('SELECT before_head, after_head FROM log_heads WHERE id = ?'),
    putLog: db.prepare(
      'INSERT INTO log_heads (id, before_head, after_head, lines) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (id) DO UPDATE SET before_head = excluded.before_head, after_head = excluded.after_head, lines = excluded.lines',
    ),
  };
}


/**
 * The embedded {@link DeviceRegistry}: a table in the same SQLite file as the
 * {@link SqliteStateStore} (or a file of its own), WAL with `synchronous = FULL`. Writes of a
 * batch are one transaction. Lookups are by primary key: a million devices, each with five cells
 * and two 420-byte certificates, is a file of about 2 GiB loaded in about 25 s, and a lookup takes
 * about 20 µs (p99 about 150 µs) on two cores (`pnpm -C packages/store run bench`).
 *
 * @see docs/store.md
 */
export class SqliteDeviceRegistry implements DeviceRegistry {
  /** Always `sqlite`. */
  readonly backend = 'sqlite' as const;
  #db: Db | undefined;
  readonly #get: Database.Statement;
  readonly #put: Database.Statement;
  readonly #del: Database.Statement;
  readonly #count: Database.Statement;

  private constructor(db: Db) {
    this.#db = db;
    this.#get = db.prepare('SELECT record FROM devices WHERE device = ?');
    this.#put = db.prepare('INSERT INTO devices (device, record) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET record = excluded.record');
    this.#del = db.prepare('DELETE FROM devices WHERE device = ?');
    this.#count = db.prepare('SELECT count(*) AS n FROM devices');
  }

  /**
   * Open (or create) the file.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_SCHEMA`
   */
  static async open(options: SqliteStateStoreOptions): Promise<SqliteDeviceRegistry> {
    return new SqliteDeviceRegistry(openSqlite(options));
  }

  #open(): Db {
    if (this.#db === undefined) throw closedError();
    return this.#db;
  }

  #read(d: Eui64): DeviceRecord | undefined {
    const row = this.#get.get(d) as { record: unknown } | undefined;
    return row === undefined ? undefined : decodeDevice(d, row.record);
  }

  /** {@inheritDoc DeviceRegistry.device} */
  async device(device: Eui64): Promise<DeviceRecord | undefined> {
    this.#open();
    const d = eui64(device, 'device');
    return guard('device', () => this.#read(d));
  }

  /** {@inheritDoc DeviceRegistry.devices} */
  async devices(devices: readonly Eui64[]): Promise<Map<Eui64, DeviceRecord>> {
    const db = this.#open();
    const ids = checkDeviceIds(devices, 'devices');
    return guard('devices', () =>
      db.transaction(() => {
        const out = new Map<Eui64, DeviceRecord>();
        for (const d of ids) {
          const r = this.#read(d);
          if (r) out.set(d, r);
        }
        return out;
      })(),
    );
  }

  /** {@inheritDoc DeviceRegistry.put} */
  async put(records: readonly DeviceRecord[]): Promise<void> {
    const db = this.#open();
    const checked = checkDevices(records, 'records');
    guard('put', () =>
      db
        .transaction(() => {
          for (const r of checked) this.#put.run(r.device, encodeDevice(r));
        })
        .immediate(),
    );
  }

  /** {@inheritDoc DeviceRegistry.remove} */
  async remove(devices: readonly Eui64[]): Promise<number> {
    const db = this.#open();
    const ids = checkDeviceIds(devices, 'devices');
    return guard('remove', () =>
      db
        .transaction(() => {
          let n = 0;
          for (const d of ids) n += this.#del.run(d).changes;
          return n;
        })
        .immediate(),
    );
  }

  /** {@inheritDoc DeviceRegistry.replaceCells} */
  async replaceCells(device: Eui64, replacements: readonly CellReplacement[]): Promise<DeviceRecord> {
    const db = this.#open();
    const d = eui64(device, 'device');
    const checked = checkCellReplacements(replacements, 'replacements');
    // Read, compare and write under one write lock (BEGIN IMMEDIATE): no other writer in between.
    return guard('replaceCells', () =>
      db
        .transaction(() => {
          const next = applyCellReplacements(d, this.#read(d), checked);
          this.#put.run(d, encodeDevice(next));
          return next;
        })
        .immediate(),
    );
  }

  /** {@inheritDoc DeviceRegistry.count} */
  async count(): Promise<number> {
    this.#open();
    return guard('count', () => countFrom((this.#count.get() as { n: unknown }).n, 'devices'));
  }

  /** {@inheritDoc DeviceRegistry.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }
}

/**
 * The embedded {@link FirmwareAllowlist}: a table in the same SQLite file as the
 * {@link SqliteStateStore} (or a file of its own), WAL with `synchronous = FULL`.
 * @see docs/store.md
 */
export class SqliteFirmwareAllowlist implements FirmwareAllowlist {
  /** Always `sqlite`. */
  readonly backend = 'sqlite' as const;
  #db: Db | undefined;
  readonly #get: Database.Statement;
  readonly #insert: Database.Statement;
  readonly #revoke: Database.Statement;
  readonly #all: Database.Statement;
  readonly #ofModel: Database.Statement;

  private constructor(db: Db) {
    this.#db = db;
    this.#get = db.prepare('SELECT model, image_hash, state, approved_at, revoked_at, reason FROM firmware_images WHERE model = ? AND image_hash = ?');
    this.#insert = db.prepare("INSERT INTO firmware_images (model, image_hash, state, approved_at) VALUES (?, ?, 'approved', ?)");
    this.#revoke = db.prepare(
      "INSERT INTO firmware_images (model, image_hash, state, revoked_at, reason) VALUES (?, ?, 'revoked', ?, ?) " +
        "ON CONFLICT (model, image_hash) DO UPDATE SET state = 'revoked', revoked_at = excluded.revoked_at, reason = excluded.reason WHERE state <> 'revoked'",
    );
    const cols = 'SELECT model, image_hash, state, approved_at, revoked_at, reason FROM firmware_images';
    this.#all = db.prepare(`${cols} ORDER BY model, image_hash LIMIT ?`);
    this.#ofModel = db.prepare(`${cols} WHERE model = ? ORDER BY model, image_hash LIMIT ?`);
  }

  /**
   * Open (or create) the file.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_SCHEMA`
   */
  static async open(options: SqliteStateStoreOptions): Promise<SqliteFirmwareAllowlist> {
    return new SqliteFirmwareAllowlist(openSqlite(options));
  }

  #open(): Db {
    if (this.#db === undefined) throw closedError();
    return this.#db;
  }

  #state(model: string, imageHash: string): 'approved' | 'revoked' | undefined {
    const row = this.#get.get(model, imageHash) as FirmwareRow | undefined;
    return row && firmwareFromRow(row).state;
  }

  /** {@inheritDoc FirmwareAllowlist.status} */
  async status(model: string, imageHash: Uint8Array | string): Promise<FirmwareStatus> {
    this.#open();
    const m = checkModel(model, 'model');
    const h = checkImageHash(imageHash, 'imageHash');
    return guard('status', () => this.#state(m, h) ?? 'unknown');
  }

  /** {@inheritDoc FirmwareAllowlist.approve} */
  async approve(images: readonly { readonly model: string; readonly imageHash: Uint8Array | string }[], at: number): Promise<('approved' | 'already' | 'revoked')[]> {
    const db = this.#open();
    const list = checkImages(images, 'images');
    const t = epochMs(at, 'at');
    return guard('approve', () =>
      db
        .transaction(() => {
          const { results, insert } = approvals(list, (m, h) => this.#state(m, h));
          for (const { model, imageHash } of insert) this.#insert.run(model, imageHash, t);
          return results;
        })
        .immediate(),
    );
  }

  /** {@inheritDoc FirmwareAllowlist.revoke} */
  async revoke(model: string, imageHash: Uint8Array | string, at: number, reason?: string): Promise<boolean> {
    this.#open();
    const m = checkModel(model, 'model');
    const h = checkImageHash(imageHash, 'imageHash');
    const t = epochMs(at, 'at');
    const why = checkReason(reason, 'reason') ?? null;
    return guard('revoke', () => this.#revoke.run(m, h, t, why).changes === 1);
  }

  /** {@inheritDoc FirmwareAllowlist.list} */
  async list(model?: string, limit = 10_000): Promise<FirmwareImage[]> {
    this.#open();
    const m = model === undefined ? undefined : checkModel(model, 'model');
    const n = int(limit, 'limit', 1, 100_000);
    return guard('list', () => ((m === undefined ? this.#all.all(n) : this.#ofModel.all(m, n)) as FirmwareRow[]).map(firmwareFromRow));
  }

  /** {@inheritDoc FirmwareAllowlist.close} */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }
}
