/**
 * Durable security state shared by the SMKI toolkit's packages: anti-replay counters per
 * (originator, device) and the sequences allocated with them, anomaly counts per (user, message
 * code, window), quarantined commands and the head of each decision log (committed with them) behind the {@link StateStore} interface,
 * and the devices the validator knows behind the {@link DeviceRegistry} interface, and the
 * firmware images each model may activate behind the {@link FirmwareAllowlist} interface, each with three implementations: memory (tests), SQLite
 * (the embedded default) and PostgreSQL (several processes on several machines).
 *
 * Security posture: a commit is atomic and durable before it returns, a counter is accepted once
 * however many processes race for it, and every failure is an `SmkiError` that changed nothing
 * (`ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`): callers that authorise fail closed on it.
 * @packageDocumentation
 */
export { MemoryStateStore, MemoryDeviceRegistry, MemoryFirmwareAllowlist } from './memory.js';
export { SqliteStateStore, SqliteDeviceRegistry, SqliteFirmwareAllowlist } from './sqlite.js';
export type { SqliteStateStoreOptions } from './sqlite.js';
export { PostgresStateStore, PostgresDeviceRegistry, PostgresFirmwareAllowlist } from './postgres.js';
export type { PostgresStateStoreOptions, SchemaSpec as PostgresSchemaSpec } from './internal/pg.js';
export { PgConnection as PostgresConnection, pgError as postgresError } from './internal/pg.js';
export { openSqlite as openSqliteDatabase, sqliteError } from './internal/sqlite.js';
export type { SqliteOptions, SqliteSchemaSpec } from './internal/sqlite.js';
export { MAX_COMMIT_ENTRIES, MAX_QUARANTINE_COMMAND_BYTES, MAX_WINDOW_MS, MAX_ANOMALY_LIMIT } from './internal/check.js';
export { MAX_LOG_LINE_BYTES, MAX_LOG_INTENT_LINES, MAX_LOG_INTENT_BYTES, sameLogHead } from './internal/log.js';
export type {
  StateStore,
  CommitEntry,
  CommitOutcome,
  CounterClaim,
  SequenceClaim,
  AnomalyWindow,
  AnomalyClaim,
  QuarantineInput,
  QuarantineRecord,
  PendingCommand,
  PendingCommandInput,
  CommitOptions,
  LogHead,
  LogIntent,
  LogAppend,
} from './types.js';
export { DEVICE_TYPES, MAX_CELLS, MAX_DEVICE_CERTIFICATE_BYTES, MAX_REGISTRY_BATCH } from './registry.js';
export type { DeviceRegistry, DeviceRecord, DeviceType, Fuel, TrustAnchorCell, CellKeyUsage, CellUsage, CellReplacement } from './registry.js';
export { MAX_FIRMWARE_BATCH } from './firmware.js';
export type { FirmwareAllowlist, FirmwareImage, FirmwareStatus } from './firmware.js';
