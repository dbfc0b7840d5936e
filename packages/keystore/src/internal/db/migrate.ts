// Migration of a store with JSON metadata (store.json + audit.log) into a database, in place:
// the old store is opened with every check it has (its MAC, its log against the head, records
// beyond the head), its state read, and written into the database in one transaction with a
// `store.migrated` record carrying the old log's head; then store.json is renamed, so that
// nothing opens it again. A crash at any point leaves the JSON store (and an empty database) or
// the migrated one; running the migration again finishes it.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { SmkiError } from '@smki/core';
import type { KeyBackend } from '../../backend.js';
import { JsonKeyStore, snapshotForMigration, type LegacySnapshot } from '../../store.js';
import { fsyncDirectory, type FaultHook } from '../fsutil.js';
import { METADATA_FILE } from '../metadata.js';
import { AUDIT_LOG_FILE, trailLineHash } from '../../audit.js';
import type { SqlDriver } from './driver.js';
import { DbKeyStore } from './engine.js';

/** SHA-256 (upper-case hex) of line `n` (from 1) of the old audit log; undefined if it has fewer lines. */
function hashOfLine(directory: string, n: number): string | undefined {
  if (n === 0) return '0'.repeat(64);
  const lines = readFileSync(join(directory, AUDIT_LOG_FILE), 'utf8').split('\n');
  const line = lines[n - 1];
  return line === undefined || line === '' ? undefined : trailLineHash(line);
}

/** Where the JSON metadata goes once migrated. */
export const MIGRATED_FILE = `${METADATA_FILE}.migrated`;

/** What a migration did. */
export interface MigrationReport {
  /** The new store's id. */
  readonly storeId: string;
  /** Organisations, portfolios, keys and devices written. */
  readonly rows: number;
  /** The old log's head (records and the hash of the last line), now bound into the new trail. */
  readonly fromRecords: number;
  /** SHA-256 (upper-case hex) of the old log's last line. */
  readonly fromHash: string;
  /** True when the database already held this migration (a run interrupted after the commit). */
  readonly resumed: boolean;
}

/**
 * Migrate the JSON-metadata store in `directory` into `driver`'s database.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (no JSON store there; the database holds another store),
 *   and every code of opening the JSON store (`ERR_KEYSTORE_WRONG_PASSPHRASE`,
 *   `ERR_KEYSTORE_CORRUPT`, `ERR_AUDIT_TAMPERED`, `ERR_AUDIT_TRUNCATED`, `ERR_KEYSTORE_METADATA_ROLLBACK`, `ERR_KEYSTORE_LOCKED`)
 */
export async function migrateJsonStore(options: { directory: string; backend: KeyBackend; passphrase: string; driver: SqlDriver; fault?: FaultHook }): Promise<MigrationReport> {
  const { directory } = options;
  if (!existsSync(join(directory, METADATA_FILE))) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', `no store with JSON metadata in ${directory} (no ${METADATA_FILE})`, { detail: directory });
  }
  // A migration interrupted after its commit (before the rename) is finished, not done twice.
  const earlier = await DbKeyStore.migrationOf(options.driver);
  if (earlier === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the database already holds a key store that was not migrated from this directory', { detail: directory });
  let snapshot: LegacySnapshot;
  const legacy = await JsonKeyStore.open({ directory, backend: options.backend, passphrase: options.passphrase });
  try {
    await legacy.flush();
    snapshot = snapshotForMigration(legacy);
  } finally {
    // Closing saves the head after the flush: the snapshot's head is the log's.
    await legacy.close();
  }
  let result: Omit<MigrationReport, 'storeId'>;
  if (earlier !== undefined) {
    // The old log must hold, at the migrated head, the very record the new trail names.
    if (hashOfLine(directory, earlier.fromRecords) !== earlier.fromHash) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'the database holds a store migrated from another log than this directory’s', { detail: directory });
    }
    result = { rows: 0, fromRecords: earlier.fromRecords, fromHash: earlier.fromHash, resumed: true };
  } else {
    const imported = await DbKeyStore.importJson(options.driver, options.passphrase, snapshot);
    result = { rows: imported.rows, fromRecords: snapshot.head.count, fromHash: snapshot.head.lastHash, resumed: false };
  }
  options.fault?.('migrate:after-import');
  renameSync(join(directory, METADATA_FILE), join(directory, MIGRATED_FILE));
  fsyncDirectory(directory);
  const meta = await options.driver.get(`SELECT store_id FROM ${options.driver.table('meta')} WHERE id = 1`);
  return Object.freeze({ storeId: String(meta?.['store_id']), ...result });
}
