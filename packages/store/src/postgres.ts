import { SmkiError, type Eui64 } from '@smki/core';
import { applyEntries, counterKey, windowKey } from './internal/apply.js';
import {
  checkEntries,
  checkWindow,
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
import { PgConnection, pgError } from './internal/pg.js';
import type { PostgresStateStoreOptions } from './internal/pg.js';
import { pendingFromRow, quarantineFromRow, type PendingRow, type QuarantineRow } from './internal/rows.js';
import type { AnomalyWindow, CommitEntry, CommitOptions, CommitOutcome, LogIntent, PendingCommand, QuarantineRecord, StateStore } from './types.js';
import { applyCellReplacements, checkCellReplacements, checkDeviceIds, checkDevices, decodeDevice, encodeDevice } from './registry.js';
import type { CellReplacement, DeviceRecord, DeviceRegistry } from './registry.js';
import { approvals, checkImageHash, checkImages, checkModel, checkReason, firmwareFromRow } from './firmware.js';
import type { FirmwareAllowlist, FirmwareImage, FirmwareRow, FirmwareStatus } from './firmware.js';

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
  readonly #conn: PgConnection;
  readonly #guard = new BuildGuard();

  private constructor(conn: PgConnection) {
    this.#conn = conn;
  }

  /** The store is open, and not called from inside a log's build. */
  #ready(): void {
    this.#conn.pool();
    this.#guard.check();
  }

  /**
   * Connect, and create the schema and its tables if missing.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (an option is malformed, or a password is given),
   *   `ERR_STORE_UNAVAILABLE` (cannot connect, or the pg module is not installed),
   *   `ERR_STORE_SCHEMA` (tables written by another schema version)
   */
  static async open(options: PostgresStateStoreOptions = {}): Promise<PostgresStateStore> {
    return new PostgresStateStore(await PgConnection.open(options));
  }

  /** {@inheritDoc StateStore.lastCounter} */
  async lastCounter(originator: Eui64, device: Eui64): Promise<bigint | undefined> {
    this.#ready();
    const o = eui64(originator, 'originator');
    const d = eui64(device, 'device');
    const rows = await this.#conn.query('lastCounter', `SELECT counter FROM ${this.#conn.schema}.counters WHERE originator = $1 AND device = $2`, [o, d]);
    return rows.length === 0 ? undefined : counterFromHex(rows[0]!['counter'], `${o}/${d}`);
  }

  /** {@inheritDoc StateStore.anomalyCount} */
  async anomalyCount(window: AnomalyWindow): Promise<number> {
    this.#ready();
    const w = checkWindow(window, 'window');
    const rows = await this.#conn.query(
      'anomalyCount',
      `SELECT count FROM ${this.#conn.schema}.anomaly_windows WHERE user_id = $1 AND message_code = $2 AND window_ms = $3 AND window_start = $4`,
      [w.user, w.messageCode, w.windowMs, w.windowStart],
    );
    return rows.length === 0 ? 0 : countFrom(rows[0]!['count'], `${w.user}/${w.messageCode}/${w.windowStart}`);
  }

  /** {@inheritDoc StateStore.commit} */
  async commit(entries: readonly CommitEntry[], options?: CommitOptions): Promise<CommitOutcome[]> {
    this.#ready();
    const checked = checkEntries(entries);
    const log = checkCommitOptions(options);
    if (checked.length === 0 && !log) return [];
    const s = this.#conn.schema;
    try {
      return await this.#conn.tx(async (c) => {
        await this.#conn.lock(c);
        // The log's compare-and-set comes first: a conflict applies nothing.
        if (log) {
          const r = await c.query(`SELECT before_head, after_head FROM ${s}.log_heads WHERE id = $1`, [log.id]);
          checkExpected(log, r.rows.length === 0 ? undefined : headsFromRow(log.id, r.rows[0] as Pick<LogRow, 'before_head' | 'after_head'>));
        }
        // Read everything the entries touch in three statements, then decide in memory.
        const counters = new Map<string, bigint>();
        // Counters and sequences share the counters table, so both kinds of pair are read.
        const keys = unique(
          checked.flatMap((e) => [
            ...(e.counter ? [[e.counter.originator, e.counter.device] as const] : []),
            ...(e.sequence ? [[e.sequence.owner, e.sequence.device] as const] : []),
          ]),
          ([o, d]) => counterKey(o, d),
        );
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
        const held = new Map<string, QuarantineRecord>();
        const ids = [...new Set(checked.flatMap((e) => (e.release !== undefined ? [e.release] : [])))];
        if (ids.length > 0) {
          const r = await c.query(
            `SELECT id, at, user_id AS user, device, message_code, counter, command, state FROM ${s}.quarantine WHERE id = ANY($1::text[])`,
            [ids],
          );
          for (const row of r.rows) {
            const q = quarantineFromRow(row as QuarantineRow);
            held.set(q.id, q);
          }
        }
        const { outcomes, writes } = applyEntries(checked, {
          counter: (o, d) => counters.get(counterKey(o, d)),
          anomaly: (w) => windows.get(windowKey(w)) ?? 0,
          quarantined: (id) => held.get(id),
        });
        // Built before anything is written: a build that throws, or returns a malformed intent,
        // rolls back a transaction that changed nothing.
        const raw = log && this.#guard.run(log, outcomes);
        const intent = raw && encodeIntent(raw);
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
        const pw = [...writes.pending.values()];
        if (pw.length > 0) {
          await c.query(
            `INSERT INTO ${s}.pending_commands (key, device, at, command) ` +
              `SELECT k.key, k.d, k.at, decode(k.b, 'hex') FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS k(key, d, at, b) ` +
              `ON CONFLICT (key) DO UPDATE SET device = EXCLUDED.device, at = EXCLUDED.at, command = EXCLUDED.command`,
            [pw.map((p) => p.key), pw.map((p) => p.device), pw.map((p) => p.at), pw.map((p) => Buffer.from(p.command).toString('hex'))],
          );
        }
        if (log && intent) {
          await c.query(
            `INSERT INTO ${s}.log_heads (id, before_head, after_head, lines) VALUES ($1, $2, $3, $4) ` +
              `ON CONFLICT (id) DO UPDATE SET before_head = EXCLUDED.before_head, after_head = EXCLUDED.after_head, lines = EXCLUDED.lines`,
            [log.id, intent.before_head, intent.after_head, intent.lines],
          );
          if (this.#conn.keepLogLines && raw && raw.lines.length > 0) {
            // The records themselves, numbered from the head before them (a number taken twice
            // fails the whole commit: fail closed).
            const first = raw.before.count + 1;
            await c.query(`INSERT INTO ${s}.log_lines (id, seq, line) SELECT $1, s, l FROM unnest($2::bigint[], $3::text[]) AS t(s, l)`, [
              log.id,
              raw.lines.map((_, i) => first + i),
              raw.lines,
            ]);
          }
        }
        return outcomes;
      });
    } catch (e) {
      // What build threw leaves unchanged; anything else is mapped to the store's codes.
      rethrowBuildError(e);
      throw pgError(e, 'commit');
    }
  }

  /**
   * The decision-log lines this store kept for log `id` (when opened with `keepLogLines`), in
   * order, starting after record `after` (0: from the first), at most `limit` (default 100,000).
   * Verify them as a log with `verifyAuditLog(lines, { key, schema })`.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   */
  async logLines(id: string, after = 0, limit = 100_000): Promise<string[]> {
    this.#ready();
    const l = logId(id, 'id');
    if (!Number.isSafeInteger(after) || after < 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'after must be a record number, 0 or more', { detail: String(after) });
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1_000_000) throw new SmkiError('ERR_INVALID_ARGUMENT', 'limit must be 1 to 1,000,000', { detail: String(limit) });
    const rows = await this.#conn.query('logLines', `SELECT seq, line FROM ${this.#conn.schema}.log_lines WHERE id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [l, after, limit]);
    return rows.map((r, i) => {
      const row = r as { seq: unknown; line: unknown };
      // Numbered without a gap from `after`: a missing or extra row is a damaged log, named.
      if (String(row.seq) !== String(after + i + 1) || typeof row.line !== 'string') {
        throw new SmkiError('ERR_STORE_CORRUPT', `log ${l} has no line ${after + i + 1} where one is due`, { detail: `log_lines ${l} ${String(row.seq)}` });
      }
      return row.line;
    });
  }

  /** The ids of every decision log this store holds a head for, sorted. @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED` */
  async logIds(): Promise<string[]> {
    this.#ready();
    const rows = await this.#conn.query('logIds', `SELECT id FROM ${this.#conn.schema}.log_heads ORDER BY id`, []);
    return rows.map((r) => String((r as { id: unknown }).id));
  }

  /** {@inheritDoc StateStore.logIntent} */
  async logIntent(id: string): Promise<LogIntent | undefined> {
    this.#ready();
    const l = logId(id, 'id');
    const rows = await this.#conn.query('logIntent', `SELECT before_head, after_head, lines FROM ${this.#conn.schema}.log_heads WHERE id = $1`, [l]);
    return rows.length === 0 ? undefined : intentFromRow(l, rows[0] as unknown as LogRow);
  }

  /** {@inheritDoc StateStore.quarantineRecord} */
  async quarantineRecord(id: string): Promise<QuarantineRecord | undefined> {
    this.#ready();
    const q = quarantineId(id, 'id');
    const rows = await this.#conn.query(
      'quarantineRecord',
      `SELECT id, at, user_id AS user, device, message_code, counter, command, state FROM ${this.#conn.schema}.quarantine WHERE id = $1`,
      [q],
    );
    return rows.length === 0 ? undefined : quarantineFromRow(rows[0] as unknown as QuarantineRow);
  }

  /** {@inheritDoc StateStore.heldQuarantine} */
  async heldQuarantine(limit = 1000): Promise<QuarantineRecord[]> {
    this.#ready();
    const n = int(limit, 'limit', 1, 100_000);
    const rows = await this.#conn.query(
      'heldQuarantine',
      `SELECT id, at, user_id AS user, device, message_code, counter, command, state FROM ${this.#conn.schema}.quarantine WHERE state = 'held' ORDER BY at, id LIMIT $1`,
      [n],
    );
    return rows.map((r) => quarantineFromRow(r as unknown as QuarantineRow));
  }

  /** {@inheritDoc StateStore.discardQuarantine} */
  async discardQuarantine(id: string): Promise<boolean> {
    this.#ready();
    const q = quarantineId(id, 'id');
    try {
      return await this.#conn.tx(async (c) => {
        await this.#conn.lock(c);
        const r = await c.query(`UPDATE ${this.#conn.schema}.quarantine SET state = 'discarded' WHERE id = $1 AND state = 'held'`, [q]);
        return r.rowCount === 1;
      });
    } catch (e) {
      throw pgError(e, 'discardQuarantine');
    }
  }

  /** {@inheritDoc StateStore.pendingCommand} */
  async pendingCommand(key: string): Promise<PendingCommand | undefined> {
    this.#ready();
    const k = pendingKey(key, 'key');
    const rows = await this.#conn.query('pendingCommand', `SELECT key, device, at, command FROM ${this.#conn.schema}.pending_commands WHERE key = $1`, [k]);
    return rows.length === 0 ? undefined : pendingFromRow(k, rows[0] as unknown as PendingRow);
  }

  /** {@inheritDoc StateStore.removePendingCommand} */
  async removePendingCommand(key: string): Promise<boolean> {
    this.#ready();
    const k = pendingKey(key, 'key');
    const rows = await this.#conn.query('removePendingCommand', `DELETE FROM ${this.#conn.schema}.pending_commands WHERE key = $1 RETURNING key`, [k]);
    return rows.length === 1;
  }

  /** {@inheritDoc StateStore.prunePendingCommands} */
  async prunePendingCommands(before: number): Promise<number> {
    this.#ready();
    const t = epochMs(before, 'before');
    const rows = await this.#conn.query('prunePendingCommands', `DELETE FROM ${this.#conn.schema}.pending_commands WHERE at < $1 RETURNING key`, [t]);
    return rows.length;
  }

  /** {@inheritDoc StateStore.pruneAnomalyWindows} */
  async pruneAnomalyWindows(before: number): Promise<number> {
    this.#ready();
    const t = epochMs(before, 'before');
    try {
      return await this.#conn.tx(async (c) => {
        await this.#conn.lock(c);
        const r = await c.query(`DELETE FROM ${this.#conn.schema}.anomaly_windows WHERE window_start + window_ms <= $1`, [t]);
        return r.rowCount ?? 0;
      });
    } catch (e) {
      throw pgError(e, 'pruneAnomalyWindows');
    }
  }

  /** {@inheritDoc StateStore.close} */
  async close(): Promise<void> {
    this.#guard.check();
    await this.#conn.close();
  }
}


function unique<T>(xs: readonly T[], key: (x: T) => string): T[] {
  const m = new Map<string, T>();
  for (const x of xs) if (!m.has(key(x))) m.set(key(x), x);
  return [...m.values()];
}

/**
 * The {@link DeviceRegistry} for several processes on several machines: a table in the same
 * PostgreSQL schema as the {@link PostgresStateStore}. A batch write is one transaction; a batch
 * read is one statement.
 *
 * @see docs/store.md
 */
export class PostgresDeviceRegistry implements DeviceRegistry {
  /** Always `postgres`. */
  readonly backend = 'postgres' as const;
  readonly #conn: PgConnection;

  private constructor(conn: PgConnection) {
    this.#conn = conn;
  }

  /**
   * Connect, and create the schema and its tables if missing (options as for {@link PostgresStateStore.open}).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_SCHEMA`
   */
  static async open(options: PostgresStateStoreOptions = {}): Promise<PostgresDeviceRegistry> {
    return new PostgresDeviceRegistry(await PgConnection.open(options));
  }

  /** {@inheritDoc DeviceRegistry.device} */
  async device(device: Eui64): Promise<DeviceRecord | undefined> {
    this.#conn.pool();
    const d = eui64(device, 'device');
    const rows = await this.#conn.query('device', `SELECT record FROM ${this.#conn.schema}.devices WHERE device = $1`, [d]);
    return rows.length === 0 ? undefined : decodeDevice(d, rows[0]!['record']);
  }

  /** {@inheritDoc DeviceRegistry.devices} */
  async devices(devices: readonly Eui64[]): Promise<Map<Eui64, DeviceRecord>> {
    this.#conn.pool();
    const ids = checkDeviceIds(devices, 'devices');
    const out = new Map<Eui64, DeviceRecord>();
    if (ids.length === 0) return out;
    const rows = await this.#conn.query('devices', `SELECT device, record FROM ${this.#conn.schema}.devices WHERE device = ANY($1::text[])`, [ids]);
    // The WHERE clause answers only devices asked for; each record is checked against its key.
    for (const row of rows) {
      const d = String(row['device']);
      out.set(d as Eui64, decodeDevice(d, row['record']));
    }
    return out;
  }

  /** {@inheritDoc DeviceRegistry.put} */
  async put(records: readonly DeviceRecord[]): Promise<void> {
    this.#conn.pool();
    const checked = checkDevices(records, 'records');
    if (checked.length === 0) return;
    try {
      await this.#conn.tx(async (c) => {
        await c.query(
          `INSERT INTO ${this.#conn.schema}.devices (device, record) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (device) DO UPDATE SET record = EXCLUDED.record`,
          [checked.map((r) => r.device), checked.map(encodeDevice)],
        );
      });
    } catch (e) {
      throw pgError(e, 'put');
    }
  }

  /** {@inheritDoc DeviceRegistry.remove} */
  async remove(devices: readonly Eui64[]): Promise<number> {
    this.#conn.pool();
    const ids = checkDeviceIds(devices, 'devices');
    if (ids.length === 0) return 0;
    const rows = await this.#conn.query('remove', `DELETE FROM ${this.#conn.schema}.devices WHERE device = ANY($1::text[]) RETURNING device`, [ids]);
    return rows.length;
  }

  /** {@inheritDoc DeviceRegistry.replaceCells} */
  async replaceCells(device: Eui64, replacements: readonly CellReplacement[]): Promise<DeviceRecord> {
    this.#conn.pool();
    const d = eui64(device, 'device');
    const checked = checkCellReplacements(replacements, 'replacements');
    try {
      return await this.#conn.tx(async (c) => {
        // The row is locked until the commit: a concurrent replacement waits, then compares with this one's result.
        const rows = (await c.query(`SELECT record FROM ${this.#conn.schema}.devices WHERE device = $1 FOR UPDATE`, [d])).rows as Record<string, unknown>[];
        const next = applyCellReplacements(d, rows.length === 0 ? undefined : decodeDevice(d, rows[0]!['record']), checked);
        await c.query(`UPDATE ${this.#conn.schema}.devices SET record = $2 WHERE device = $1`, [d, encodeDevice(next)]);
        return next;
      });
    } catch (e) {
      throw pgError(e, 'replaceCells');
    }
  }

  /** {@inheritDoc DeviceRegistry.count} */
  async count(): Promise<number> {
    this.#conn.pool();
    const rows = await this.#conn.query('count', `SELECT count(*) AS n FROM ${this.#conn.schema}.devices`, []);
    return countFrom(rows[0]?.['n'], 'devices');
  }

  /** {@inheritDoc DeviceRegistry.close} */
  async close(): Promise<void> {
    await this.#conn.close();
  }
}

/**
 * The {@link FirmwareAllowlist} for several processes on several machines: a table in the same
 * PostgreSQL schema as the {@link PostgresStateStore}. Approvals and revocations take the schema's
 * advisory lock, so an approval racing a revocation of the same image cannot bring it back.
 * @see docs/store.md
 */
export class PostgresFirmwareAllowlist implements FirmwareAllowlist {
  /** Always `postgres`. */
  readonly backend = 'postgres' as const;
  readonly #conn: PgConnection;

  private constructor(conn: PgConnection) {
    this.#conn = conn;
  }

  /**
   * Connect, and create the schema and its tables if missing (options as for {@link PostgresStateStore.open}).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_SCHEMA`
   */
  static async open(options: PostgresStateStoreOptions = {}): Promise<PostgresFirmwareAllowlist> {
    return new PostgresFirmwareAllowlist(await PgConnection.open(options));
  }

  /** {@inheritDoc FirmwareAllowlist.status} */
  async status(model: string, imageHash: Uint8Array | string): Promise<FirmwareStatus> {
    this.#conn.pool();
    const m = checkModel(model, 'model');
    const h = checkImageHash(imageHash, 'imageHash');
    const rows = await this.#conn.query('status', `SELECT ${FIRMWARE_COLUMNS} FROM ${this.#conn.schema}.firmware_images WHERE model = $1 AND image_hash = $2`, [m, h]);
    return rows.length === 0 ? 'unknown' : firmwareFromRow(rows[0] as unknown as FirmwareRow).state;
  }

  /** {@inheritDoc FirmwareAllowlist.approve} */
  async approve(images: readonly { readonly model: string; readonly imageHash: Uint8Array | string }[], at: number): Promise<('approved' | 'already' | 'revoked')[]> {
    this.#conn.pool();
    const list = checkImages(images, 'images');
    const t = epochMs(at, 'at');
    if (list.length === 0) return [];
    const s = this.#conn.schema;
    try {
      return await this.#conn.tx(async (c) => {
        await this.#conn.lock(c);
        const r = await c.query(
          `SELECT ${FIRMWARE_COLUMNS} FROM ${s}.firmware_images f JOIN unnest($1::text[], $2::text[]) AS k(m, h) ON f.model = k.m AND f.image_hash = k.h`,
          [list.map((x) => x.model), list.map((x) => x.imageHash)],
        );
        const states = new Map<string, 'approved' | 'revoked'>();
        for (const row of r.rows as FirmwareRow[]) {
          const image = firmwareFromRow(row);
          states.set(`${image.model}/${image.imageHash}`, image.state);
        }
        const { results, insert } = approvals(list, (m, h) => states.get(`${m}/${h}`));
        if (insert.length > 0) {
          await c.query(
            `INSERT INTO ${s}.firmware_images (model, image_hash, state, approved_at) SELECT k.m, k.h, 'approved', $3 FROM unnest($1::text[], $2::text[]) AS k(m, h)`,
            [insert.map((x) => x.model), insert.map((x) => x.imageHash), t],
          );
        }
        return results;
      });
    } catch (e) {
      throw pgError(e, 'approve');
    }
  }

  /** {@inheritDoc FirmwareAllowlist.revoke} */
  async revoke(model: string, imageHash: Uint8Array | string, at: number, reason?: string): Promise<boolean> {
    this.#conn.pool();
    const m = checkModel(model, 'model');
    const h = checkImageHash(imageHash, 'imageHash');
    const t = epochMs(at, 'at');
    const why = checkReason(reason, 'reason') ?? null;
    const s = this.#conn.schema;
    try {
      return await this.#conn.tx(async (c) => {
        await this.#conn.lock(c);
        const r = await c.query(
          `INSERT INTO ${s}.firmware_images AS f (model, image_hash, state, revoked_at, reason) VALUES ($1, $2, 'revoked', $3, $4) ` +
            `ON CONFLICT (model, image_hash) DO UPDATE SET state = 'revoked', revoked_at = EXCLUDED.revoked_at, reason = EXCLUDED.reason WHERE f.state <> 'revoked'`,
          [m, h, t, why],
        );
        return r.rowCount === 1;
      });
    } catch (e) {
      throw pgError(e, 'revoke');
    }
  }

  /** {@inheritDoc FirmwareAllowlist.list} */
  async list(model?: string, limit = 10_000): Promise<FirmwareImage[]> {
    this.#conn.pool();
    const m = model === undefined ? undefined : checkModel(model, 'model');
    const n = int(limit, 'limit', 1, 100_000);
    const s = this.#conn.schema;
    const rows =
      m === undefined
        ? await this.#conn.query('list', `SELECT ${FIRMWARE_COLUMNS} FROM ${s}.firmware_images ORDER BY model, image_hash LIMIT $1`, [n])
        : await this.#conn.query('list', `SELECT ${FIRMWARE_COLUMNS} FROM ${s}.firmware_images WHERE model = $1 ORDER BY model, image_hash LIMIT $2`, [m, n]);
    return rows.map((r) => firmwareFromRow(r as unknown as FirmwareRow));
  }

  /** {@inheritDoc FirmwareAllowlist.close} */
  async close(): Promise<void> {
    await this.#conn.close();
  }
}

const FIRMWARE_COLUMNS = 'model, image_hash, state, approved_at, revoked_at, reason';
