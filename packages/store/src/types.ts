import type { Eui64 } from '@smki/core';

/**
 * One command's claim on the durable state, applied by {@link StateStore.commit}.
 *
 * Within a commit, entries are applied in order, each all-or-nothing and each seeing the effects
 * of the entries before it (a counter repeated within one commit is accepted once):
 * 1. `release` (if given, with `counter`): the quarantine record must be `held`, and `counter`
 *    must be the held command's own (originator, device, counter); it becomes `released`.
 *    Otherwise the outcome is `not-held` and nothing else of the entry applies.
 * 2. `counter` (if given): the value must be strictly greater than the last one accepted for
 *    (originator, device). Otherwise the outcome is `replayed` and nothing else applies.
 * 3. `anomaly` (if given, and the entry is not a release): accepting one more command in the
 *    window must not take the count above `limit`. Otherwise the outcome is `quarantined`: the
 *    `quarantine` record is stored as `held` under a new id, the counter does not move and the
 *    count stays.
 * 4. Otherwise the counter advances to `value`, the window's count grows by one (a release
 *    counts too, but is not held back by the limit: an operator decided), and the outcome is
 *    `committed`.
 *
 * @see docs/store.md (anti-replay, anomaly windows, quarantine)
 */
export interface CommitEntry {
  /** The anti-replay claim: accept `value` for (originator, device) only if it is greater than the last. */
  readonly counter?: CounterClaim;
  /** The anomaly window this command counts in, and its limit. */
  readonly anomaly?: AnomalyClaim;
  /** What to hold if the anomaly limit is reached. Required with `anomaly` unless `release` is given. */
  readonly quarantine?: QuarantineInput;
  /** The id of a held quarantine record this entry releases (an operator's decision); `counter` must then be the held command's. */
  readonly release?: string;
}

/** An anti-replay claim: the originator counter of a command for a device. */
export interface CounterClaim {
  /** The originator (the User's EUI-64, as in the GBCS header). */
  readonly originator: Eui64;
  /** The device the command is for (the GBCS recipient). */
  readonly device: Eui64;
  /** The originator counter, 0 ≤ value < 2^64. */
  readonly value: bigint;
}

/**
 * A count of accepted commands per (user, message code) in a fixed window of time.
 *
 * Windows are aligned: `windowStart` is a multiple of `windowMs` (milliseconds since the epoch),
 * so every process that counts the same user and code in the same window counts in the same row.
 */
export interface AnomalyWindow {
  /** The User whose commands are counted (its EUI-64). */
  readonly user: Eui64;
  /** The GBCS message code (0..0xFFFF). */
  readonly messageCode: number;
  /** Start of the window, milliseconds since the epoch, a multiple of `windowMs`. */
  readonly windowStart: number;
  /** Length of the window in milliseconds (1 ms to 31 days). */
  readonly windowMs: number;
}

/** An {@link AnomalyWindow} with the most commands it may accept. */
export interface AnomalyClaim extends AnomalyWindow {
  /** The most commands accepted in the window (an integer, 0 to 2^31 - 1). */
  readonly limit: number;
}

/** A command held back because it would have crossed an anomaly threshold. */
export interface QuarantineInput {
  /** When it was quarantined (milliseconds since the epoch). */
  readonly at: number;
  /** The command's originator. */
  readonly user: Eui64;
  /** The device it is for. */
  readonly device: Eui64;
  /** Its GBCS message code. */
  readonly messageCode: number;
  /** Its originator counter. */
  readonly counter: bigint;
  /** The command as received (at most 64 KiB). */
  readonly command: Uint8Array;
}

/** A stored quarantine record. */
export interface QuarantineRecord extends QuarantineInput {
  /** The id the store gave it (a random UUID, lower case). */
  readonly id: string;
  /** `held` until an operator releases or discards it. */
  readonly state: 'held' | 'released' | 'discarded';
}

/** The outcome of one {@link CommitEntry}. */
export type CommitOutcome =
  | {
      /** The counter advanced, the window counted it, and a release (if any) is recorded. */
      readonly status: 'committed';
    }
  | {
      /** The counter is not greater than the last one accepted: nothing applied. */
      readonly status: 'replayed';
      /** The last counter accepted for (originator, device). */
      readonly last: bigint;
    }
  | {
      /** The anomaly limit is reached: the command is held, nothing else applied. */
      readonly status: 'quarantined';
      /** The number of commands already accepted in the window. */
      readonly count: number;
      /** The id of the new quarantine record. */
      readonly id: string;
    }
  | {
      /** The quarantine record to release is unknown or not held: nothing applied. */
      readonly status: 'not-held';
    };

/**
 * The durable state that decides whether a command may pass: anti-replay counters per
 * (originator, device), anomaly counts per (user, message code, window), and quarantined
 * commands. One interface, three implementations: {@link MemoryStateStore} (tests, benchmarks),
 * {@link SqliteStateStore} (the embedded default) and {@link PostgresStateStore} (several
 * processes on several machines).
 *
 * Every method fails closed: a store that cannot be read or written throws
 * `ERR_STORE_UNAVAILABLE` and changes nothing; a value in the store that is not valid throws
 * `ERR_STORE_CORRUPT`.
 *
 * @see docs/store.md
 */
export interface StateStore {
  /** Which implementation this is. */
  readonly backend: 'memory' | 'sqlite' | 'postgres';
  /**
   * The last counter accepted for (originator, device), or `undefined` if none.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  lastCounter(originator: Eui64, device: Eui64): Promise<bigint | undefined>;
  /**
   * The number of commands accepted for (user, message code) in a window.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  anomalyCount(window: AnomalyWindow): Promise<number>;
  /**
   * Apply the entries in one atomic, durable transaction and return one outcome per entry.
   *
   * When it returns, every outcome is durable (SQLite: WAL with synchronous FULL; PostgreSQL:
   * the commit is acknowledged by the server). When it throws, nothing was applied.
   *
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (an entry is malformed; checked before anything is
   *   written), `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   */
  commit(entries: readonly CommitEntry[]): Promise<CommitOutcome[]>;
  /**
   * The quarantine record with this id, or `undefined`.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  quarantineRecord(id: string): Promise<QuarantineRecord | undefined>;
  /**
   * Held quarantine records, oldest first, at most `limit` (default 1000).
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  heldQuarantine(limit?: number): Promise<QuarantineRecord[]>;
  /**
   * Discard a held quarantine record (an operator's decision). Returns whether it was held.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  discardQuarantine(id: string): Promise<boolean>;
  /**
   * Delete anomaly windows that ended before `before` (milliseconds since the epoch); returns how many.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  pruneAnomalyWindows(before: number): Promise<number>;
  /** Close the store; later calls throw `ERR_STORE_CLOSED`. Idempotent. */
  close(): Promise<void>;
}
