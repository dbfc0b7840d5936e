/**
 * Durable security state shared by the SMKI toolkit's packages: anti-replay counters per
 * (originator, device), anomaly counts per (user, message code, window) and quarantined
 * commands, behind one {@link StateStore} interface with three implementations: memory (tests),
 * SQLite (the embedded default) and PostgreSQL (several processes on several machines).
 *
 * Security posture: a commit is atomic and durable before it returns, a counter is accepted once
 * however many processes race for it, and every failure is an `SmkiError` that changed nothing
 * (`ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`): callers that authorise fail closed on it.
 * @packageDocumentation
 */
export { MemoryStateStore } from './memory.js';
export { SqliteStateStore } from './sqlite.js';
export type { SqliteStateStoreOptions } from './sqlite.js';
export { PostgresStateStore } from './postgres.js';
export type { PostgresStateStoreOptions } from './postgres.js';
export { MAX_COMMIT_ENTRIES, MAX_QUARANTINE_COMMAND_BYTES, MAX_WINDOW_MS, MAX_ANOMALY_LIMIT } from './internal/check.js';
export type {
  StateStore,
  CommitEntry,
  CommitOutcome,
  CounterClaim,
  AnomalyWindow,
  AnomalyClaim,
  QuarantineInput,
  QuarantineRecord,
} from './types.js';
