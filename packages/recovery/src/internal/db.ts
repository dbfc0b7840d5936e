// The plan database: its tables (plain SQL that ports to PostgreSQL: TEXT, INTEGER, BLOB/BYTEA,
// counters as 20-digit zero-padded decimal text so that they order as numbers), and the
// append-only, SHA-256 hash-chained history of every state change (recovery_events).
import { createHash } from 'node:crypto';
import { openSqliteDatabase } from '@smki/store';

/** The database handle @smki/store's SQLite helper returns. */
export type Db = ReturnType<typeof openSqliteDatabase>;

/** The schema version this release reads and writes. */
export const PLAN_SCHEMA_VERSION = 1;

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
`;

/** The hash before the first event. */
export const GENESIS = '0'.repeat(64);

/** A counter as stored: 20 decimal digits (2^64 − 1 has 20), so text order is number order. */
export const counterText = (c: bigint): string => c.toString().padStart(20, '0');

/** SHA-256 of `prev ‖ "\n" ‖ seq ‖ "\n" ‖ event`, upper-case hex. */
export function eventHash(prev: string, seq: number, event: string): string {
  return createHash('sha256').update(`${prev}\n${seq}\n${event}`).digest('hex').toUpperCase();
}

/** Append events to the chain (call inside the transaction of the change they record). */
export function appendEvents(db: Db, events: readonly Record<string, unknown>[]): void {
  if (events.length === 0) return;
  const last = db.prepare('SELECT seq, hash FROM recovery_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
  let seq = last?.seq ?? 0;
  let prev = last?.hash ?? GENESIS;
  const insert = db.prepare('INSERT INTO recovery_events (seq, prev_hash, event, hash) VALUES (?, ?, ?, ?)');
  for (const e of events) {
    seq += 1;
    const text = JSON.stringify(e);
    const hash = eventHash(prev, seq, text);
    insert.run(seq, prev, text, hash);
    prev = hash;
  }
}
