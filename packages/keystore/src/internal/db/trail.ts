// The audit trail of a store whose metadata is in a database: records in the same database,
// written in the transaction of the change they describe (lifecycle) or group-committed (uses).
// Each record's line carries `prev` (SHA-256 of the previous line), as in the file log; each
// batch of records is sealed once, by an HMAC under the audit MAC key and an ECDSA P-256
// signature under the audit key, over the store id, the batch number, its sequence range and the
// hash of its last line.
import { createHmac, sign as nodeSign, timingSafeEqual, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { publicKeyFromRaw, SmkiError } from '@smki/core';
import { encodeTrailLine, parseTrailLine, trailLineHash, type AuditEvent, type AuditFinding, type AuditRecord } from '../../audit.js';
import type { SqlDriver, SqlTx } from './driver.js';

export const ZERO_HASH = '0'.repeat(64);
/** Most use records one batch holds. */
const MAX_BATCH = 4096;
/** Most records appended in one statement on PostgreSQL (3 parameters each). */
const PG_ONE_STATEMENT = 4096;
/** Uses that send a batch to the committer at once (fewer wait for the next turn of the event loop). */
const SEND_AT = 64;
const PAGE = 5000;
const MAX_FINDINGS = 1000;

/** The keys a trail is sealed and checked with. */
export interface TrailKeys {
  readonly storeId: string;
  /** HMAC key of the batch seals (derived from the passphrase). */
  readonly macKey: Buffer;
  /** The audit key (ECDSA P-256), private part; undefined for a verifier. */
  readonly signingKey?: KeyObject;
  /** Its public key, 65-byte point. */
  readonly publicKey: Uint8Array;
}

/** The head of a database trail. */
export interface TrailHead {
  /** Records in the trail (the last seq). */
  readonly seq: number;
  /** SHA-256 of the last record's line (64 zeros when empty). */
  readonly hash: string;
  /** Batches in the trail (the last batch number). */
  readonly batch: number;
}

/** A record to append, with the rows it writes (`table:key`): the index the rollback check on open reads. */
export interface TrailEntry {
  readonly event: AuditEvent;
  readonly subjects: readonly string[];
}

/** The bytes a batch seal covers. */
export function sealInput(storeId: string, batch: number, firstSeq: number, lastSeq: number, lastHash: string, at: string): Buffer {
  return Buffer.from(`smki-keystore audit batch v1\n${storeId}\n${batch}\n${firstSeq}\n${lastSeq}\n${lastHash}\n${at}`);
}

interface PendingUse {
  readonly event: AuditEvent;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Checks run inside a use batch's transaction, before its records are written: for each use (in
 * order), the error when its key is no longer usable or its meter no longer trusts that key
 * (another process revoked it, or recorded the meter's new credentials, since it was read).
 */
export type UseValidator = (t: SqlTx, uses: readonly AuditEvent[]) => Promise<readonly (SmkiError | undefined)[]>;

/**
 * Commits use batches somewhere else than this trail's connection (the use worker: a thread with
 * a connection of its own to the same database), with the same checks and the same records.
 */
export interface UseCommitter {
  /**
   * Check `uses` and append those that pass as one sealed batch dated `at`, in one transaction;
   * resolves once it committed (durably), with each use's refusal in order.
   * @throws SmkiError when the batch did not commit (nothing of it was recorded, or it is unknown
   *   whether it was: either way no use of it may be acted on)
   */
  commit(uses: readonly AuditEvent[], at: string): Promise<readonly (SmkiError | undefined)[]>;
  /** Finish the batches under way and let go of the connection. */
  close(): Promise<void>;
}

export class DbTrail {
  readonly #db: SqlDriver;
  readonly #keys: TrailKeys;
  readonly #now: () => Date;
  readonly #validate: UseValidator;
  #pending: PendingUse[] = [];
  #running = false;
  #idle: Promise<void> = Promise.resolve();
  readonly #fault: ((point: string) => void) | undefined;
  readonly #committer: UseCommitter | undefined;

  /**
   * @param committer where use batches commit; by default in a transaction on `db`, checked by
   *   `validate` (then unused otherwise)
   */
  constructor(db: SqlDriver, keys: TrailKeys, now: () => Date, validate: UseValidator, fault?: (point: string) => void, committer?: UseCommitter) {
    this.#db = db;
    this.#fault = fault;
    this.#committer = committer;
    this.#keys = keys;
    this.#now = now;
    this.#validate = validate;
  }

  /** The head as committed (reader: the last committed state). */
  async head(): Promise<TrailHead> {
    const r = await this.#db.get(`SELECT seq, hash, batch FROM ${this.#db.table('audit_head')} WHERE id = 1`);
    if (!r) throw new SmkiError('ERR_KEYSTORE_CORRUPT', 'the audit trail has no head row', {});
    return { seq: r['seq'] as number, hash: r['hash'] as string, batch: r['batch'] as number };
  }

  /** Create the head of an empty trail (inside the transaction creating the store). */
  static async create(t: SqlTx, table: (n: string) => string): Promise<void> {
    await t.run(`INSERT INTO ${table('audit_head')} (id, seq, hash, batch) VALUES (1, 0, ?, 0)`, [ZERO_HASH]);
  }

  /**
   * Append `entries` as one sealed batch inside the write transaction `t`, after the head it locks.
   * @returns the seq of each entry, in order
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for an event of the wrong shape (the transaction then rolls back)
   */
  async appendInTx(t: SqlTx, entries: readonly TrailEntry[]): Promise<number[]> {
    if (entries.length === 0) return [];
    const db = this.#db;
    const h = await t.get(`SELECT seq, hash, batch FROM ${db.table('audit_head')} WHERE id = 1${t.forUpdate}`);
    if (!h) throw new SmkiError('ERR_KEYSTORE_CORRUPT', 'the audit trail has no head row', {});
    let seq = h['seq'] as number;
    let prev = h['hash'] as string;
    const batch = (h['batch'] as number) + 1;
    const first = seq + 1;
    const at = this.#now().toISOString();
    const records: (string | number)[][] = [];
    const subjects: (string | number)[][] = [];
    const seqs: number[] = [];
    for (const e of entries) {
      seq++;
      const line = encodeTrailLine(seq, at, e.event, prev);
      prev = trailLineHash(line);
      records.push([seq, batch, line]);
      for (const s of e.subjects) subjects.push([s, seq]);
      seqs.push(seq);
    }
    const { mac, signature } = this.#seal(batch, first, seq, prev, at);
    const sealRow = [batch, first, seq, prev, at, mac, signature];
    const headRow = [seq, prev, batch];
    if (db.kind === 'postgres' && subjects.length === 0 && records.length <= PG_ONE_STATEMENT) {
      // One round trip on PostgreSQL: the records, the seal and the head in one statement (its
      // data-modifying WITH clauses all run, in the one transaction).
      await t.run(
        `WITH r AS (INSERT INTO ${db.table('audit_records')} (seq, batch, line) VALUES ${records.map(() => '(?, ?, ?)').join(', ')}), ` +
          `b AS (INSERT INTO ${db.table('audit_batches')} (batch, first_seq, last_seq, last_hash, at, mac, signature) VALUES (?, ?, ?, ?, ?, ?, ?)) ` +
          `UPDATE ${db.table('audit_head')} SET seq = ?, hash = ?, batch = ? WHERE id = 1`,
        [...records.flat(), ...sealRow, ...headRow],
      );
      return seqs;
    }
    await t.insertMany(db.table('audit_records'), ['seq', 'batch', 'line'], records);
    if (subjects.length > 0) await t.insertMany(db.table('audit_subjects'), ['subject', 'seq'], subjects);
    await t.run(`INSERT INTO ${db.table('audit_batches')} (batch, first_seq, last_seq, last_hash, at, mac, signature) VALUES (?, ?, ?, ?, ?, ?, ?)`, sealRow);
    await t.run(`UPDATE ${db.table('audit_head')} SET seq = ?, hash = ?, batch = ? WHERE id = 1`, headRow);
    return seqs;
  }

  #seal(batch: number, first: number, last: number, hash: string, at: string): { mac: string; signature: string } {
    const key = this.#keys.signingKey;
    if (!key) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'this trail is opened for verification only', {});
    const input = sealInput(this.#keys.storeId, batch, first, last, hash, at);
    return {
      mac: createHmac('sha256', this.#keys.macKey).update(input).digest('hex').toUpperCase(),
      signature: nodeSign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }).toString('hex').toUpperCase(),
    };
  }

  /**
   * Record a use of a key: resolves once its record is committed and durable (group commit: the
   * records that arrive while a batch commits go into the next one). Rejects, and nothing is
   * recorded, when the batch finds the key no longer usable (`validate`) or the write fails.
   */
  recordUse(event: AuditEvent & { readonly keyId: string }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ event, resolve, reject });
      if (this.#committer !== undefined) {
        this.#schedule();
        return;
      }
      if (!this.#running) {
        this.#running = true;
        let done!: () => void;
        this.#idle = new Promise<void>((r) => (done = r));
        // Next turn of the event loop: every caller of this turn joins the first batch.
        setImmediate(() => {
          this.#drain().finally(done);
        });
      }
    });
  }

  // With a committer (the use worker), batches go out as they fill, without waiting for the one
  // under way: the worker commits while this thread goes on signing, and joins the batches that
  // queued meanwhile into one transaction.
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();

  #schedule(): void {
    if (this.#pending.length >= SEND_AT) this.#send();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      // Next turn of the event loop: every caller of this turn joins the batch.
      setImmediate(() => {
        this.#scheduled = false;
        this.#send();
      });
    }
  }

  #send(): void {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      const p: Promise<void> = this.#commitUses(batch)
        .catch((e: unknown) => {
          for (const u of batch) u.reject(e);
        })
        .finally(() => this.#inFlight.delete(p));
      this.#inFlight.add(p);
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, MAX_BATCH);
        try {
          await this.#commitUses(batch);
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #commitUses(batch: readonly PendingUse[]): Promise<void> {
    const events = batch.map((p) => p.event);
    const refused = this.#committer === undefined ? await this.commitBatch(events) : await this.#committer.commit(events, this.#now().toISOString());
    this.#fault?.('db:use-after-commit');
    batch.forEach((p, i) => {
      const e = refused[i];
      if (e) p.reject(e);
      else p.resolve();
    });
  }

  /**
   * One use batch in one transaction on this trail's connection: `validate` decides each use, the
   * uses it passes are appended as one sealed batch, and the transaction commits (durably) before
   * this resolves with the refusals, in order.
   * @throws SmkiError when the batch did not commit (it rolled back, or the commit failed)
   */
  async commitBatch(events: readonly AuditEvent[]): Promise<readonly (SmkiError | undefined)[]> {
    let refused: readonly (SmkiError | undefined)[] = [];
    await this.#db.tx(async (t) => {
      refused = await this.#validate(t, events);
      if (refused.length !== events.length) throw new SmkiError('ERR_KEYSTORE_CORRUPT', 'the use checks did not decide every use', {});
      await this.appendInTx(
        t,
        events.filter((_, i) => refused[i] === undefined).map((event) => ({ event, subjects: [] })),
      );
      this.#fault?.('db:use-before-commit');
    });
    return refused;
  }

  /** Wait until every use recorded so far is committed (or refused). */
  async flush(): Promise<void> {
    while (this.#running) await this.#idle;
    while (this.#pending.length > 0 || this.#inFlight.size > 0) {
      this.#send();
      await Promise.all([...this.#inFlight]);
    }
  }

  /** Wait for the uses under way, then stop the committer (the use worker), if any. */
  async close(): Promise<void> {
    await this.flush();
    await this.#committer?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Verification (public key only)

/** What a verification of the trail found (`KeyStore.verifyAuditTrail`, `KeyStore.verifyStore`). */
export interface TrailVerification {
  /** True when there is no finding. */
  readonly ok: boolean;
  /** Records read. */
  readonly count: number;
  /** Batches read. */
  readonly batches: number;
  /** The head as verified (when ok). */
  readonly head?: TrailHead;
  /** What is wrong, in trail order (at most {@link MAX_FINDINGS}). */
  readonly findings: readonly AuditFinding[];
}

/**
 * Verify a database trail with the audit public key only: every batch's signature (and its HMAC
 * when `macKey` is given), the chain of lines, contiguous sequence and batch numbers, every line
 * in canonical form, and the head row at the end of the last batch. Reads in pages.
 */
export async function verifyTrail(
  db: SqlDriver,
  keys: { storeId: string; publicKey: Uint8Array; macKey?: Buffer },
  onRecord?: (record: AuditRecord) => void,
): Promise<TrailVerification> {
  const findings: AuditFinding[] = [];
  const add = (f: AuditFinding): void => {
    if (findings.length < MAX_FINDINGS) findings.push(f);
  };
  const pub = publicKeyFromRaw(keys.publicKey);
  let prevHash = ZERO_HASH;
  let seq = 0;
  let batches = 0;
  let lastBatch: { batch: number; last: number; hash: string } = { batch: 0, last: 0, hash: ZERO_HASH };
  // Batches in pages, then each batch's records.
  for (let after = 0; ; ) {
    const bs = await db.all(`SELECT batch, first_seq, last_seq, last_hash, at, mac, signature FROM ${db.table('audit_batches')} WHERE batch > ? ORDER BY batch LIMIT ${PAGE}`, [after]);
    if (bs.length === 0) break;
    for (const b of bs) {
      const n = b['batch'] as number;
      const first = b['first_seq'] as number;
      const last = b['last_seq'] as number;
      const lastHash = b['last_hash'] as string;
      const at = b['at'] as string;
      batches++;
      if (n !== lastBatch.batch + 1) add({ code: 'ERR_AUDIT_TAMPERED', message: `batch ${n} follows batch ${lastBatch.batch}: a batch is missing or inserted`, seq: first });
      if (first !== seq + 1 || last < first) add({ code: 'ERR_AUDIT_TAMPERED', message: `batch ${n} covers records ${first}..${last} after record ${seq}`, seq: first });
      const input = sealInput(keys.storeId, n, first, last, lastHash, at);
      const sig = typeof b['signature'] === 'string' && /^[0-9A-F]{128}$/.test(b['signature']) ? Buffer.from(b['signature'], 'hex') : undefined;
      if (!sig || !nodeVerify('sha256', input, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)) {
        add({ code: 'ERR_AUDIT_TAMPERED', message: `batch ${n}: its seal's signature does not verify under the audit public key`, seq: first });
      }
      if (keys.macKey) {
        const mac = createHmac('sha256', keys.macKey).update(input).digest();
        const given = typeof b['mac'] === 'string' && /^[0-9A-F]{64}$/.test(b['mac']) ? Buffer.from(b['mac'], 'hex') : Buffer.alloc(32);
        if (!timingSafeEqual(mac, given)) add({ code: 'ERR_AUDIT_TAMPERED', message: `batch ${n}: its seal's MAC does not verify`, seq: first });
      }
      // The batch's records, in pages.
      let expected = first;
      for (let from = first; from <= last; from += PAGE) {
        const rs = await db.all(`SELECT seq, batch, line FROM ${db.table('audit_records')} WHERE seq >= ? AND seq <= ? ORDER BY seq`, [from, Math.min(last, from + PAGE - 1)]);
        for (const r of rs) {
          const s = r['seq'] as number;
          if (s !== expected) {
            add({ code: s > expected ? 'ERR_AUDIT_TRUNCATED' : 'ERR_AUDIT_TAMPERED', message: `record ${expected} is missing`, seq: expected });
            expected = s;
          }
          expected++;
          if (r['batch'] !== n) add({ code: 'ERR_AUDIT_TAMPERED', message: `record ${s} names batch ${String(r['batch'])}, not ${n}`, seq: s });
          const line = r['line'] as string;
          const p = parseTrailLine(line);
          if (!p.ok) {
            add({ code: 'ERR_AUDIT_TAMPERED', message: `record ${s}: ${p.message}`, seq: s });
            prevHash = trailLineHash(line);
            continue;
          }
          if (p.record.seq !== s) add({ code: 'ERR_AUDIT_TAMPERED', message: `record ${s} says it is record ${p.record.seq}`, seq: s });
          if (p.record.prev !== prevHash) add({ code: 'ERR_AUDIT_TAMPERED', message: `record ${s} does not chain to record ${s - 1}: a record was edited, removed or reordered`, seq: s });
          prevHash = p.hash;
          onRecord?.(p.record);
        }
      }
      if (expected !== last + 1) add({ code: 'ERR_AUDIT_TRUNCATED', message: `batch ${n} ends at record ${expected - 1}, its seal says ${last}`, seq: expected });
      if (prevHash !== lastHash) add({ code: 'ERR_AUDIT_TAMPERED', message: `batch ${n}: its last record's hash is not the one sealed`, seq: last });
      seq = last;
      lastBatch = { batch: n, last, hash: lastHash };
      after = n;
    }
  }
  const extra = await db.get(`SELECT count(*) AS n FROM ${db.table('audit_records')} WHERE seq > ?`, [seq]);
  if (extra && Number(extra['n']) > 0) add({ code: 'ERR_AUDIT_TAMPERED', message: `${String(extra['n'])} record(s) lie beyond the last sealed batch`, seq: seq + 1 });
  const h = await db.get(`SELECT seq, hash, batch FROM ${db.table('audit_head')} WHERE id = 1`);
  if (!h || h['seq'] !== lastBatch.last || h['hash'] !== lastBatch.hash || h['batch'] !== lastBatch.batch) {
    add({ code: h && (h['seq'] as number) > lastBatch.last ? 'ERR_AUDIT_TRUNCATED' : 'ERR_AUDIT_TAMPERED', message: 'the trail head is not the end of the last sealed batch', seq: lastBatch.last });
  }
  const ok = findings.length === 0;
  return {
    ok,
    count: seq,
    batches,
    ...(ok ? { head: { seq: lastBatch.last, hash: lastBatch.hash, batch: lastBatch.batch } } : {}),
    findings,
  };
}
