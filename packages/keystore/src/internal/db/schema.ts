// The key store's tables (one schema for SQLite and PostgreSQL) and the authenticated row codec:
// every metadata row carries `rev` (the sequence number of the audit record that last wrote it)
// and `mac`, HMAC-SHA256 under the row key over the store id, the table and the row's columns.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SmkiError } from '@smki/core';
import type { KeyPurpose } from '../../types.js';
import type { Row, SqlValue } from './driver.js';

/** The schema version of the key store's SQLite tables. */
export const KEYSTORE_DB_VERSION = 1;

/** The columns of each authenticated table, in MAC order (`rev` last; `mac` is not in the list). */
export const COLUMNS = {
  meta: ['id', 'store_id', 'format', 'kdf', 'check_value', 'audit_public_key', 'audit_private_key', 'created_at', 'access_seq', 'rev'],
  organisations: ['entity_id', 'role', 'max_devices_per_key', 'rev'],
  portfolios: ['organisation', 'id', 'name', 'whole_estate', 'cur_signing', 'cur_key_agreement', 'cur_prepayment', 'cur_xml', 'rev'],
  keys: [
    'key_id',
    'organisation',
    'portfolio_id',
    'purpose',
    'generation',
    'state',
    'backend',
    'handle',
    'public_key',
    'certificate',
    'serial_number',
    'created_at',
    'revoked_at',
    'rev',
  ],
  devices: ['organisation', 'device', 'portfolio_id', 'inst_signing', 'inst_key_agreement', 'inst_prepayment', 'rev'],
  operators: ['operator_id', 'public_key', 'grants', 'last_counter', 'removed', 'rev'],
  access: ['id', 'policy', 'rev'],
  proposals: ['proposal_id', 'proposal', 'state', 'rev'],
} as const;

/** A table whose rows are authenticated. */
export type AuthTable = keyof typeof COLUMNS;

/** The portfolio column holding the current key of a purpose. */
export const CURRENT_COLUMN: Readonly<Record<KeyPurpose, string>> = {
  signing: 'cur_signing',
  keyAgreement: 'cur_key_agreement',
  prepaymentKeyAgreement: 'cur_prepayment',
  xmlSigning: 'cur_xml',
};

/** The device column holding the installed key of a purpose (none for `xmlSigning`: no meter installs it). */
export const INSTALLED_COLUMN: Readonly<Partial<Record<KeyPurpose, string>>> = {
  signing: 'inst_signing',
  keyAgreement: 'inst_key_agreement',
  prepaymentKeyAgreement: 'inst_prepayment',
};

const SQLITE_TABLES = `
CREATE TABLE IF NOT EXISTS meta (
  id INTEGER PRIMARY KEY CHECK (id = 1), store_id TEXT NOT NULL, format TEXT NOT NULL, kdf TEXT NOT NULL, check_value TEXT NOT NULL,
  audit_public_key TEXT NOT NULL, audit_private_key TEXT NOT NULL, created_at TEXT NOT NULL, access_seq INTEGER NOT NULL, rev INTEGER NOT NULL, mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS organisations (
  entity_id TEXT PRIMARY KEY, role INTEGER NOT NULL, max_devices_per_key INTEGER, rev INTEGER NOT NULL, mac TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS portfolios (
  organisation TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, whole_estate TEXT NOT NULL,
  cur_signing TEXT, cur_key_agreement TEXT, cur_prepayment TEXT, cur_xml TEXT, rev INTEGER NOT NULL, mac TEXT NOT NULL,
  PRIMARY KEY (organisation, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (
  key_id TEXT PRIMARY KEY, organisation TEXT NOT NULL, portfolio_id TEXT NOT NULL, purpose TEXT NOT NULL, generation INTEGER NOT NULL,
  state TEXT NOT NULL, backend TEXT NOT NULL, handle TEXT NOT NULL, public_key TEXT NOT NULL, certificate TEXT, serial_number TEXT,
  created_at TEXT NOT NULL, revoked_at TEXT, rev INTEGER NOT NULL, mac TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_portfolio ON keys (organisation, portfolio_id, purpose, generation);
CREATE TABLE IF NOT EXISTS devices (
  organisation TEXT NOT NULL, device TEXT NOT NULL, portfolio_id TEXT NOT NULL,
  inst_signing TEXT, inst_key_agreement TEXT, inst_prepayment TEXT, rev INTEGER NOT NULL, mac TEXT NOT NULL,
  PRIMARY KEY (organisation, device)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS devices_portfolio ON devices (organisation, portfolio_id, device);
CREATE INDEX IF NOT EXISTS devices_signing ON devices (inst_signing) WHERE inst_signing IS NOT NULL;
CREATE INDEX IF NOT EXISTS devices_key_agreement ON devices (inst_key_agreement) WHERE inst_key_agreement IS NOT NULL;
CREATE INDEX IF NOT EXISTS devices_prepayment ON devices (inst_prepayment) WHERE inst_prepayment IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, batch INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_records (
  seq INTEGER PRIMARY KEY, batch INTEGER NOT NULL, line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_subjects (
  subject TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (subject, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operators (
  operator_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, grants TEXT NOT NULL, last_counter TEXT NOT NULL, removed INTEGER NOT NULL, rev INTEGER NOT NULL, mac TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access (
  id INTEGER PRIMARY KEY CHECK (id = 1), policy TEXT NOT NULL, rev INTEGER NOT NULL, mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals (
  proposal_id TEXT PRIMARY KEY, proposal TEXT NOT NULL, state TEXT NOT NULL, rev INTEGER NOT NULL, mac TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
  proposal_id TEXT NOT NULL, approver_id TEXT NOT NULL, approval TEXT NOT NULL, PRIMARY KEY (proposal_id, approver_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signed_requests (
  seq INTEGER PRIMARY KEY, request TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS migrated_rows (
  tbl TEXT NOT NULL, name TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (tbl, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_batches (
  batch INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, last_hash TEXT NOT NULL,
  at TEXT NOT NULL, mac TEXT NOT NULL, signature TEXT NOT NULL
);
`;

/** The SQLite tables and their version (for @smki/store's `openSqliteDatabase`). */
export const SQLITE_SCHEMA = { sql: SQLITE_TABLES, version: KEYSTORE_DB_VERSION };

/** The PostgreSQL tables in schema `s`. */
export function postgresDdl(s: string): string[] {
  const C = 'COLLATE "C"';
  return [
    `CREATE TABLE IF NOT EXISTS ${s}.meta (id integer PRIMARY KEY CHECK (id = 1), store_id text NOT NULL, format text NOT NULL, kdf text NOT NULL, check_value text NOT NULL, audit_public_key text NOT NULL, audit_private_key text NOT NULL, created_at text NOT NULL, access_seq bigint NOT NULL, rev bigint NOT NULL, mac text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.organisations (entity_id text ${C} PRIMARY KEY, role integer NOT NULL, max_devices_per_key bigint, rev bigint NOT NULL, mac text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.portfolios (organisation text ${C} NOT NULL, id text ${C} NOT NULL, name text NOT NULL, whole_estate text NOT NULL, cur_signing text, cur_key_agreement text, cur_prepayment text, cur_xml text, rev bigint NOT NULL, mac text NOT NULL, PRIMARY KEY (organisation, id))`,
    `CREATE TABLE IF NOT EXISTS ${s}.keys (key_id text ${C} PRIMARY KEY, organisation text ${C} NOT NULL, portfolio_id text ${C} NOT NULL, purpose text NOT NULL, generation integer NOT NULL, state text NOT NULL, backend text NOT NULL, handle text NOT NULL, public_key text NOT NULL, certificate text, serial_number text, created_at text NOT NULL, revoked_at text, rev bigint NOT NULL, mac text NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS keys_portfolio ON ${s}.keys (organisation, portfolio_id, purpose, generation)`,
    `CREATE TABLE IF NOT EXISTS ${s}.devices (organisation text ${C} NOT NULL, device text ${C} NOT NULL, portfolio_id text ${C} NOT NULL, inst_signing text ${C}, inst_key_agreement text ${C}, inst_prepayment text ${C}, rev bigint NOT NULL, mac text NOT NULL, PRIMARY KEY (organisation, device))`,
    `CREATE INDEX IF NOT EXISTS devices_portfolio ON ${s}.devices (organisation, portfolio_id, device)`,
    `CREATE INDEX IF NOT EXISTS devices_signing ON ${s}.devices (inst_signing) WHERE inst_signing IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS devices_key_agreement ON ${s}.devices (inst_key_agreement) WHERE inst_key_agreement IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS devices_prepayment ON ${s}.devices (inst_prepayment) WHERE inst_prepayment IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${s}.audit_head (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, hash text NOT NULL, batch bigint NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.audit_records (seq bigint PRIMARY KEY, batch bigint NOT NULL, line text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.audit_subjects (subject text ${C} NOT NULL, seq bigint NOT NULL, PRIMARY KEY (subject, seq))`,
    `CREATE TABLE IF NOT EXISTS ${s}.operators (operator_id text ${C} PRIMARY KEY, public_key text NOT NULL, grants text NOT NULL, last_counter text NOT NULL, removed integer NOT NULL, rev bigint NOT NULL, mac text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.access (id integer PRIMARY KEY CHECK (id = 1), policy text NOT NULL, rev bigint NOT NULL, mac text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.proposals (proposal_id text ${C} PRIMARY KEY, proposal text NOT NULL, state text NOT NULL, rev bigint NOT NULL, mac text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.approvals (proposal_id text ${C} NOT NULL, approver_id text ${C} NOT NULL, approval text NOT NULL, PRIMARY KEY (proposal_id, approver_id))`,
    `CREATE TABLE IF NOT EXISTS ${s}.signed_requests (seq bigint PRIMARY KEY, request text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.migrated_rows (tbl text ${C} NOT NULL, name text ${C} NOT NULL, row text NOT NULL, PRIMARY KEY (tbl, name))`,
    `CREATE TABLE IF NOT EXISTS ${s}.audit_batches (batch bigint PRIMARY KEY, first_seq bigint NOT NULL, last_seq bigint NOT NULL, last_hash text NOT NULL, at text NOT NULL, mac text NOT NULL, signature text NOT NULL)`,
    // Version 2: the meter epoch, moved by every transaction that writes a meter's row (see
    // POSTGRES_SCHEMA). One row, there from the start (and added to a version 1 schema).
    `CREATE TABLE IF NOT EXISTS ${s}.meter_epoch (id integer PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL)`,
    `INSERT INTO ${s}.meter_epoch (id, epoch) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
  ];
}

/**
 * The PostgreSQL tables, their version and the versions they upgrade in place. Version 2 added
 * `meter_epoch`: a counter every transaction that writes a meter's row moves (after locking it
 * first), and every use batch reads locked for share. A process keeps meters' rows with the epoch
 * they were read at and trusts them in a batch only at the same epoch: an older release, which
 * writes meters without moving it, must not open the store, and is refused by the version.
 */
export const POSTGRES_SCHEMA: { readonly ddl: (schema: string) => string[]; readonly version: number; readonly upgradesFrom: readonly number[] } = {
  ddl: postgresDdl,
  version: 2,
  upgradesFrom: [1],
};

/** The bytes a row's MAC covers. */
function macInput(storeId: string, table: AuthTable, values: readonly SqlValue[]): string {
  return `smki-keystore row v1\n${storeId}\n${table}\n${JSON.stringify(values)}`;
}

/** A row's values in MAC order. */
export function valuesOf(table: AuthTable, row: Row): SqlValue[] {
  return COLUMNS[table].map((c) => {
    const v = row[c];
    return v === undefined ? null : v;
  });
}

/** The MAC of a row (upper-case hex). */
export function rowMac(key: Buffer, storeId: string, table: AuthTable, row: Row): string {
  return createHmac('sha256', key).update(macInput(storeId, table, valuesOf(table, row))).digest('hex').toUpperCase();
}

/**
 * A row read from the database, checked: its MAC must verify under the row key for this store and
 * table. Returns the row (the same object).
 * @throws SmkiError `ERR_KEYSTORE_ROW_TAMPERED`
 */
export function checkRow<R extends Row>(key: Buffer, storeId: string, table: AuthTable, row: R, name: string): R {
  const given = row['mac'];
  const expected = Buffer.from(rowMac(key, storeId, table, row), 'hex');
  const g = typeof given === 'string' && /^[0-9A-F]{64}$/.test(given) ? Buffer.from(given, 'hex') : undefined;
  if (g === undefined || !timingSafeEqual(g, expected)) {
    throw new SmkiError('ERR_KEYSTORE_ROW_TAMPERED', `the ${table} row of ${name} fails its MAC: it was written outside the store, or copied from another store`, { detail: `${table}:${name}` });
  }
  return row;
}

/** The statement that inserts or replaces a whole authenticated row. */
export function upsertSql(tableSql: string, table: AuthTable, key: readonly string[]): string {
  const cols = [...COLUMNS[table], 'mac'];
  const updates = cols.filter((c) => !key.includes(c)).map((c) => `${c} = excluded.${c}`);
  return `INSERT INTO ${tableSql} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
}

/** The primary key columns of each table. */
export const PRIMARY_KEY: Readonly<Record<AuthTable, readonly string[]>> = {
  meta: ['id'],
  organisations: ['entity_id'],
  portfolios: ['organisation', 'id'],
  keys: ['key_id'],
  devices: ['organisation', 'device'],
  operators: ['operator_id'],
  access: ['id'],
  proposals: ['proposal_id'],
};
