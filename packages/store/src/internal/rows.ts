// Reading stored rows back: every field is checked, and anything out of shape is corrupt state
// (ERR_STORE_CORRUPT), never a value the validator would act on.
import { SmkiError } from '@smki/core';
import type { Eui64 } from '@smki/core';
import type { PendingCommand, QuarantineRecord } from '../types.js';
import { counterFromHex, countFrom, sha256Hex } from './check.js';

/** A quarantine row as SQLite and PostgreSQL return it. */
export interface QuarantineRow {
  readonly id: unknown;
  readonly at: unknown;
  readonly user: unknown;
  readonly device: unknown;
  readonly message_code: unknown;
  readonly counter: unknown;
  readonly command: unknown;
  readonly state: unknown;
}

const EUI64 = /^[0-9A-F]{16}$/;

function corrupt(id: string, field: string): never {
  throw new SmkiError('ERR_STORE_CORRUPT', `quarantine record ${id}: the stored ${field} is not valid`, { detail: `quarantine.${field}` });
}

export function quarantineFromRow(row: QuarantineRow): QuarantineRecord {
  const id = typeof row.id === 'string' ? row.id : corrupt('?', 'id');
  const eui = (v: unknown, field: string): Eui64 => (typeof v === 'string' && EUI64.test(v) ? (v as Eui64) : corrupt(id, field));
  const state = row.state === 'held' || row.state === 'released' || row.state === 'discarded' ? row.state : corrupt(id, 'state');
  const code = countFrom(row.message_code, `quarantine ${id} message_code`);
  if (code > 0xffff) corrupt(id, 'message_code');
  if (!(row.command instanceof Uint8Array)) corrupt(id, 'command');
  return {
    id,
    at: countFrom(row.at, `quarantine ${id} at`),
    user: eui(row.user, 'user'),
    device: eui(row.device, 'device'),
    messageCode: code,
    counter: counterFromHex(row.counter, `quarantine ${id}`),
    command: Uint8Array.from(row.command),
    state,
  };
}

/** A pending-command row as SQLite and PostgreSQL return it. */
export interface PendingRow {
  readonly key: unknown;
  readonly device: unknown;
  readonly at: unknown;
  readonly command: unknown;
}

/** A pending command read back: the key it was asked by, its command hashing to that key. */
export function pendingFromRow(key: string, row: PendingRow): PendingCommand {
  const bad = (field: string): never => {
    throw new SmkiError('ERR_STORE_CORRUPT', `pending command ${key}: the stored ${field} is not valid`, { detail: `pending_commands.${field}` });
  };
  if (row.key !== key) bad('key');
  const device = typeof row.device === 'string' && EUI64.test(row.device) ? (row.device as Eui64) : bad('device');
  if (!(row.command instanceof Uint8Array) || row.command.length === 0) return bad('command');
  const command = Uint8Array.from(row.command);
  // The command must be the one the key names: a row changed behind the store is never acted on.
  if (sha256Hex(command) !== key) bad('command');
  return { key, device, at: countFrom(row.at, `pending ${key} at`), command };
}
