// The checks a use batch runs inside its transaction, before its records are written: the rules
// alone, over a transaction and the row key, so that the main thread (in-process batches) and the
// use worker (its own connection) run the very same code.
import { SmkiError } from '@smki/core';
import { parseAccessPolicy, parseOperatorInfo } from '../../access.js';
import type { AuditEvent } from '../../audit.js';
import type { KeyPurpose } from '../../types.js';
import { fail } from '../rules.js';
import type { Row, SqlTx } from './driver.js';
import { checkRow, CURRENT_COLUMN, INSTALLED_COLUMN } from './schema.js';

/** What the checks need besides the transaction. */
export interface UseCheckContext {
  /** The row MAC key. */
  readonly rowKey: Buffer;
  readonly storeId: string;
  /** A table's name as the database spells it. */
  readonly table: (name: string) => string;
  /**
   * Key rows that verified, by key id, kept from batch to batch: a row read again with every column
   * and its MAC the same is the row that verified, and is not checked again (a batch reads every
   * key its uses name; there are few keys and many batches).
   */
  readonly verifiedKeys?: Map<string, Row>;
  /**
   * PostgreSQL: the meter epoch (see POSTGRES_SCHEMA) is read first, locked for share (a change
   * that writes meters' rows locks it for update first, so none commits while the batch is under
   * way, and the meters' rows need no locks of their own), and must not be below `seen`, the highest
   * this process read (else `ERR_KEYSTORE_ROW_TAMPERED`); `seen` is raised to it. Absent on SQLite,
   * whose write transaction already excludes every other writer.
   */
  readonly meterEpoch?: { seen: number };
}

/** Whether two rows hold the same values in the same columns. */
function sameRow(a: Row, b: Row): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** What a use batch's checks found. */
export interface UseCheckResult {
  /** For each use, in order: the error that withholds its signature, or undefined. */
  readonly refused: readonly (SmkiError | undefined)[];
  /** The key rows read (verified and usable), by key id: what the hot path may choose keys from. */
  readonly keys: ReadonlyMap<string, Row>;
  /** Keys read and found unusable (or missing, or tampered). */
  readonly unusable: readonly string[];
  /** Whether the store is under access control, as this transaction read it. */
  readonly controlled: boolean;
  /** Each organisation's whole-estate portfolios, as read (only organisations whose rows all verified). */
  readonly estates: ReadonlyMap<string, readonly Row[]>;
}

const IN_CHUNK = 500;
/** Most verified key rows a context keeps. */
const MAX_VERIFIED_KEYS = 10_000;

const current = (p: Row, purpose: KeyPurpose): string | undefined => (p[CURRENT_COLUMN[purpose]] as string | null) ?? undefined;
const installed = (d: Row, purpose: KeyPurpose): string | undefined => {
  const c = INSTALLED_COLUMN[purpose];
  return c === undefined ? undefined : ((d[c] as string | null) ?? undefined);
};

function usable(key: Row): void {
  const id = key['key_id'] as string;
  if (key['state'] === 'revoked') fail('ERR_KEY_REVOKED', `key ${id} is revoked`, id);
  if (key['state'] === 'retired') fail('ERR_KEY_RETIRED', `key ${id} is retired`, id);
  if (key['state'] !== 'active') fail('ERR_KEY_NOT_ACTIVE', `key ${id} is ${String(key['state'])}`, id);
}

/** The access policy row: absent, or present and authentic (a deleted row the trail says existed is refused). */
async function accessControlled(t: SqlTx, c: UseCheckContext): Promise<boolean> {
  // The row, and whether the trail's index or the meta row says it was ever written, in one read.
  const r = await t.get(
    `SELECT a.*, (SELECT s.seq FROM ${c.table('audit_subjects')} s WHERE s.subject = 'access:1' LIMIT 1) AS written_at, (SELECT m.access_seq FROM ${c.table('meta')} m WHERE m.id = 1) AS ceremony FROM (SELECT 1 AS one) x LEFT JOIN ${c.table('access')} a ON a.id = 1`,
  );
  if (!r || r['id'] === null || r['id'] === undefined) {
    // Gone, or never there: the trail's index and the meta row (which remembers the ceremony) say
    // which; either one saying it was there refuses. Deleting the row must not lift access control.
    if (r && ((r['written_at'] !== null && r['written_at'] !== undefined) || Number(r['ceremony'] ?? 0) > 0)) {
      fail('ERR_KEYSTORE_ROW_TAMPERED', 'the trail initialised access control and its policy row is gone', 'access:1');
    }
    return false;
  }
  checkRow(c.rowKey, c.storeId, 'access', r, 'the policy');
  parseAccessPolicy(JSON.parse(String(r['policy'])));
  return true;
}

/**
 * PostgreSQL: the meter epoch, read and locked (`lock`: the transaction's `forShare` in a use batch,
 * `forUpdate` in a change), as the transaction's first statement and alone in it: a statement
 * that waited for the lock still reads everything else as of its start (`READ COMMITTED`), before
 * the change it waited for; the statements after it see that change. Refused when the row is gone
 * or the epoch is below `floor.seen` (the highest this process read), which is raised to it.
 * @throws SmkiError `ERR_KEYSTORE_ROW_TAMPERED`
 */
export async function lockMeterEpoch(t: SqlTx, table: (name: string) => string, lock: string, floor: { seen: number }): Promise<number> {
  const r = await t.get(`SELECT epoch FROM ${table('meter_epoch')} WHERE id = 1${lock}`);
  const epoch = r === undefined ? NaN : Number(r['epoch']);
  if (!Number.isSafeInteger(epoch) || epoch < 0) fail('ERR_KEYSTORE_ROW_TAMPERED', 'the meter epoch row is gone or not a count', 'meter_epoch:1');
  if (epoch < floor.seen) fail('ERR_KEYSTORE_ROW_TAMPERED', `the meter epoch went back from ${floor.seen} to ${epoch}: it was written outside the store`, 'meter_epoch:1');
  floor.seen = epoch;
  return epoch;
}

/** Whether an operator is live (its row authentic, not removed), read locked against a concurrent removal. */
async function operatorLive(t: SqlTx, c: UseCheckContext, operatorId: string): Promise<boolean> {
  const r = await t.get(`SELECT * FROM ${c.table('operators')} WHERE operator_id = ?${t.forShare}`, [operatorId]);
  if (!r) return false;
  checkRow(c.rowKey, c.storeId, 'operators', r, operatorId);
  parseOperatorInfo({ operatorId, publicKey: new Uint8Array(Buffer.from(String(r['public_key']), 'hex')), grants: JSON.parse(String(r['grants'])) });
  return r['removed'] !== 1;
}

/**
 * Inside a use batch's transaction: the keys the batch's records used, read again (locked against
 * a concurrent revocation on PostgreSQL) and checked still usable; each meter's row, checked
 * authentic and to trust that key still (a concurrent credential update withholds a signature made
 * with the key the meter no longer trusts), or the organisation's whole-estate portfolio's current
 * key; and, under access control, that each use comes from a session of a live operator.
 * Throws (and the batch rolls back) when a row the decision rests on for every use cannot be read
 * or fails its MAC (the policy row, an operator's row).
 * @param prior given the meter epoch this transaction locked (PostgreSQL; undefined on SQLite),
 *   where to find meters' rows as the caller read them and checked them against their MAC, in a
 *   state no commit has changed since (SQLite: the same `data_version`; PostgreSQL: the same
 *   epoch); or undefined to read every meter here
 */
export async function checkUses(t: SqlTx, uses: readonly AuditEvent[], c: UseCheckContext, prior?: (epoch: number | undefined) => ((org: string, device: string) => Row | undefined) | undefined): Promise<UseCheckResult> {
  // The epoch first: the lock order of every transaction that writes meters (see POSTGRES_SCHEMA).
  const epoch = c.meterEpoch === undefined ? undefined : await lockMeterEpoch(t, c.table, t.forShare, c.meterEpoch);
  const kept = prior?.(epoch);
  const keyIds = [...new Set(uses.map((u) => (u as { keyId: string }).keyId))];
  const keys = new Map<string, Row>();
  const keyErrors = new Map<string, SmkiError>();
  for (let i = 0; i < keyIds.length; i += IN_CHUNK) {
    const chunk = keyIds.slice(i, i + IN_CHUNK);
    const rows = await t.all(`SELECT * FROM ${c.table('keys')} WHERE key_id IN (${chunk.map(() => '?').join(', ')})${t.forShare}`, chunk);
    const byId = new Map(rows.map((r) => [r['key_id'] as string, r]));
    for (const id of chunk) {
      try {
        const k = byId.get(id);
        if (!k) fail('ERR_KEY_NOT_FOUND', `no key ${id}`, id);
        const known = c.verifiedKeys?.get(id);
        if (known === undefined || !sameRow(known, k)) {
          c.verifiedKeys?.delete(id);
          checkRow(c.rowKey, c.storeId, 'keys', k, id);
          if (c.verifiedKeys !== undefined && c.verifiedKeys.size < MAX_VERIFIED_KEYS) c.verifiedKeys.set(id, { ...k });
        }
        usable(k);
        keys.set(id, k);
      } catch (e) {
        keyErrors.set(id, e as SmkiError);
      }
    }
  }
  // The meters, by (organisation, device).
  const byOrg = new Map<string, Set<string>>();
  for (const u of uses) {
    const { keyId, device } = u as { keyId: string; device?: string };
    const k = keys.get(keyId);
    if (k === undefined || device === undefined) continue;
    const org = k['organisation'] as string;
    let set = byOrg.get(org);
    if (set === undefined) byOrg.set(org, (set = new Set()));
    set.add(device);
  }
  const devices = new Map<string, Row>();
  // Rows the caller vouches for (read and checked against their MAC in a state no commit has changed since).
  const vouched = new Set<string>();
  for (const [org, set] of byOrg) {
    let list = [...set];
    if (kept !== undefined) {
      list = list.filter((device) => {
        const row = kept(org, device);
        if (row === undefined) return true;
        devices.set(`${org}/${device}`, row);
        vouched.add(`${org}/${device}`);
        return false;
      });
    }
    for (let i = 0; i < list.length; i += IN_CHUNK) {
      const chunk = list.slice(i, i + IN_CHUNK);
      // Locked for share unless the meter epoch is (it stands for every meter's row).
      const rows = await t.all(`SELECT * FROM ${c.table('devices')} WHERE organisation = ? AND device IN (${chunk.map(() => '?').join(', ')})${epoch === undefined ? t.forShare : ''}`, [org, ...chunk]);
      for (const d of rows) devices.set(`${d['organisation'] as string}/${d['device'] as string}`, d);
    }
  }
  // Each organisation's whole-estate portfolios, read once per batch, each row checked once; a use
  // looks through them in order, as the hot path does.
  const estateRows = new Map<string, { row: Row; error: SmkiError | undefined }[]>();
  const wholeEstate = async (org: string, purpose: KeyPurpose): Promise<Row | undefined> => {
    let rows = estateRows.get(org);
    if (rows === undefined) {
      const read = await t.all(`SELECT * FROM ${c.table('portfolios')} WHERE organisation = ? AND whole_estate <> '[]'`, [org]);
      rows = read.map((row) => {
        try {
          checkRow(c.rowKey, c.storeId, 'portfolios', row, `${org}/${row['id'] as string}`);
          return { row, error: undefined };
        } catch (e) {
          return { row, error: e as SmkiError };
        }
      });
      estateRows.set(org, rows);
    }
    for (const { row, error } of rows) {
      if (error) throw error;
      if ((JSON.parse(row['whole_estate'] as string) as KeyPurpose[]).includes(purpose)) return row;
    }
    return undefined;
  };
  // Under access control every use comes from a session of a live operator.
  const controlled = await accessControlled(t, c);
  const sessionOperators = new Map<string, boolean>();
  for (const u of uses) {
    const op = (u as { operatorId?: string }).operatorId;
    if (op !== undefined && !sessionOperators.has(op)) sessionOperators.set(op, await operatorLive(t, c, op));
  }
  const refused: (SmkiError | undefined)[] = [];
  for (const u of uses) {
    const { keyId, device } = u as { keyId: string; device?: string };
    const operatorId = (u as { operatorId?: string }).operatorId;
    try {
      if (controlled && operatorId === undefined) fail('ERR_OPERATOR_REQUIRED', 'this store is under access control: sign through an operator session', keyId);
      if (operatorId !== undefined && sessionOperators.get(operatorId) !== true) fail('ERR_OPERATOR_UNKNOWN', `operator ${operatorId} was removed`, operatorId);
      const keyError = keyErrors.get(keyId);
      if (keyError) throw keyError;
      const k = keys.get(keyId) as Row;
      if (device !== undefined) {
        const org = k['organisation'] as string;
        const d = devices.get(`${org}/${device}`);
        if (!d) fail('ERR_DEVICE_UNKNOWN', `device ${device} left the organisation's portfolios while it was signed for`, device);
        if (!vouched.has(`${org}/${device}`)) checkRow(c.rowKey, c.storeId, 'devices', d, `${org}/${device}`);
        const purpose = k['purpose'] as KeyPurpose;
        const estate = await wholeEstate(org, purpose);
        const trusted = estate ? current(estate, purpose) : installed(d, purpose);
        if (trusted !== keyId) fail('ERR_KEY_STATE_TRANSITION', `device ${device} now trusts key ${trusted ?? '(none)'}, not ${keyId}`, keyId);
      }
      refused.push(undefined);
    } catch (e) {
      refused.push(e as SmkiError);
    }
  }
  const estates = new Map<string, readonly Row[]>();
  for (const [org, rows] of estateRows) if (rows.every((r) => r.error === undefined)) estates.set(org, rows.map((r) => r.row));
  return { refused, keys, unusable: [...keyErrors.keys()], controlled, estates };
}
