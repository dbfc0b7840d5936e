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
 * 4. `sequence` (if given): the value to allocate is max(last + 1, `floor`), where last is the
 *    last value allocated or accepted for (owner, device) (none: `floor`). If last is already
 *    2^64 - 1, the outcome is `exhausted` and nothing of the entry applies.
 * 5. Otherwise the counter advances to `value`, the window's count grows by one (a release
 *    counts too, but is not held back by the limit: an operator decided), the sequence's
 *    (owner, device) advances to the allocated value, and the outcome is `committed` (carrying
 *    that value as `sequence`).
 *
 * A sequence is allocated if and only if its entry is `committed`: never for an entry that is
 * `not-held`, `replayed`, `quarantined` or `exhausted`, and never for a release (refused).
 *
 * @see docs/store.md (anti-replay, anomaly windows, quarantine, sequences)
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
  /**
   * A value to allocate from the strictly increasing series of (owner, device), if and only if
   * the entry commits. Not with `release`, and not for the entry's own counter's
   * (originator, device).
   */
  readonly sequence?: SequenceClaim;
  /**
   * A command to keep as pending, if and only if the entry commits (in the same transaction as
   * its counter): for instance a CS02b Update Security Credentials command the validator
   * accepted, until the device's answer is applied ({@link StateStore.pendingCommand},
   * {@link StateStore.removePendingCommand}). Never kept for an entry that is `replayed`,
   * `quarantined`, `not-held` or `exhausted`. Its `device` must be the entry's counter's.
   */
  readonly pending?: PendingCommandInput;
}

/**
 * A command kept by a {@link CommitEntry} that committed, until its owner removes it: what a
 * process needs to act on the device's later answer, whichever process (sharing the store)
 * accepted the command and whether or not it has restarted since.
 *
 * @see docs/store.md (pending commands)
 */
export interface PendingCommandInput {
  /** SHA-256 (FIPS 180-4) of `command`, 64 upper-case hex digits: the key it is found by. */
  readonly key: string;
  /** The device the command is for. */
  readonly device: Eui64;
  /** When it was accepted (milliseconds since the epoch). */
  readonly at: number;
  /** The command as received (1 byte to 64 KiB); its SHA-256 must be `key`. */
  readonly command: Uint8Array;
}

/** A stored pending command (see {@link PendingCommandInput}). */
export type PendingCommand = PendingCommandInput;

/**
 * A claim on a strictly increasing series of unsigned 64-bit values per (owner, device),
 * allocated in the same transaction as the rest of its {@link CommitEntry} and only if the entry
 * commits: for instance a SMETS1 Dual Control Organisation's own counter in the envelope it
 * counter-signs, so that the adapter can refuse a replayed envelope however many DCO processes
 * share the store.
 *
 * The series is kept in the same table as the anti-replay counters: `owner` is a key like an
 * originator, and a sequence and a {@link CounterClaim} for the same pair advance one series
 * (each value is greater than every value allocated or accepted before it).
 *
 * @see docs/store.md (sequences)
 * @example
 * ```ts
 * import { parseEui64 } from '@smki/core';
 * import { MemoryStateStore } from '@smki/store';
 * const store = new MemoryStateStore();
 * const counter = { originator: parseEui64('90B3D51F30010000'), device: parseEui64('00DB1234567890A0'), value: 1000n };
 * const sequence = { owner: parseEui64('90B3D51F300D0000'), device: counter.device, floor: 1_700_000_000_000n };
 * const [o] = await store.commit([{ counter, sequence }]);
 * console.log(o); // { status: 'committed', sequence: 1700000000000n }
 * ```
 */
export interface SequenceClaim {
  /** The entity whose sequence this is (e.g. the DCO's EUI-64). */
  readonly owner: Eui64;
  /** The device it is for. */
  readonly device: Eui64;
  /** The least value to allocate (e.g. the clock in ms): the value is max(last + 1, floor). 0 ≤ floor < 2^64. */
  readonly floor: bigint;
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
      /** The value allocated for the entry's {@link SequenceClaim}; present exactly when the entry had one. */
      readonly sequence?: bigint;
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
    }
  | {
      /** The sequence of (owner, device) has reached 2^64 - 1, so no value is left: nothing applied. */
      readonly status: 'exhausted';
    };

/**
 * The head of a hash-chained, line-per-record log (the same shape as the keystore's `AuditHead`):
 * what a reader checks the log file against.
 *
 * Well formed: `count` and `bytes` are safe integers ≥ 0, `lastHash` is 64 upper-case hex digits,
 * and an empty log (`count` 0) has `bytes` 0 and a `lastHash` of 64 zeros, while a non-empty log
 * has `bytes` > 0.
 *
 * @see docs/store.md (the decision log's head)
 */
export interface LogHead {
  /** Records in the log (a safe integer ≥ 0). */
  readonly count: number;
  /** SHA-256 (FIPS 180-4) of the last record's line without its `\n`, 64 upper-case hex digits; 64 zeros for an empty log. */
  readonly lastHash: string;
  /** Byte length of the log, up to and including the last record's `\n` (a safe integer ≥ 0). */
  readonly bytes: number;
}

/**
 * What the store keeps per log: the write-ahead intent of the last commit that carried the log.
 * The lines are written to the log file after the commit; a reader that finds the file ending at
 * `before` (or part-way through the lines) writes the rest, and a file whose head lies beyond
 * `after` was not matched by this store (the store was restored from an older backup).
 *
 * Consistent: `after.count - before.count` is the number of lines, `after.bytes - before.bytes`
 * is their UTF-8 length with one `\n` each, and `after.lastHash` is SHA-256 of the last line's
 * UTF-8 bytes (`before.lastHash` when there are no lines).
 *
 * @see docs/store.md (the decision log's head)
 */
export interface LogIntent {
  /** The head of the log before the lines. */
  readonly before: LogHead;
  /** The head of the log once the lines are written. */
  readonly after: LogHead;
  /**
   * The lines, in order, each without its `\n`: each 1 to {@link MAX_LOG_LINE_BYTES} bytes of
   * UTF-8 (well-formed text, no `\n` or `\r`), at most {@link MAX_LOG_INTENT_LINES} lines and
   * {@link MAX_LOG_INTENT_BYTES} bytes in all.
   */
  readonly lines: readonly string[];
}

/**
 * A log advance carried by a {@link StateStore.commit}: the log's new head and the lines that take
 * it there are stored in the same transaction as the entries, replacing the log's previous
 * {@link LogIntent}, so "the state changed" and "the decisions were recorded" are one commit.
 * The caller writes the lines to its log file after the commit returns, and on start compares the
 * file with {@link StateStore.logIntent}.
 *
 * @see docs/store.md (the decision log's head)
 * @example
 * ```ts
 * import { createHash } from 'node:crypto';
 * import { parseEui64 } from '@smki/core';
 * import { MemoryStateStore } from '@smki/store';
 * import type { LogHead, LogIntent } from '@smki/store';
 * const sha256 = (s: string) => createHash('sha256').update(s).digest('hex').toUpperCase();
 * const next = (before: LogHead, lines: string[]): LogIntent => ({
 *   before,
 *   after: { count: before.count + lines.length, lastHash: sha256(lines.at(-1)!), bytes: lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, before.bytes) },
 *   lines,
 * });
 * const store = new MemoryStateStore();
 * const counter = { originator: parseEui64('90B3D51F30010000'), device: parseEui64('00DB1234567890A0'), value: 1000n };
 * const empty: LogHead = { count: 0, lastHash: '0'.repeat(64), bytes: 0 };
 * await store.commit([{ counter }], {
 *   log: { id: 'validator-1', expected: undefined, build: ([o]) => next(empty, [JSON.stringify({ seq: 1, status: o?.status })]) },
 * });
 * const intent = await store.logIntent('validator-1'); // now append intent.lines to the log file
 * console.log(intent?.after.count); // 1
 * ```
 */
export interface LogAppend {
  /** The log's id: 1 to 128 characters of `A-Z a-z 0-9 . _ : @ -`. */
  readonly id: string;
  /**
   * The `after` head the store must hold for this log now, or `undefined` if the store must
   * hold no intent for it yet (compare-and-set). Anything else refuses the whole commit with
   * `ERR_STORE_LOG_CONFLICT`, checked inside the transaction before any entry is applied.
   */
  readonly expected: LogHead | undefined;
  /**
   * Called once, synchronously, inside the transaction, after every entry's outcome is decided
   * and before anything is visible outside it, with the outcomes (in the order of the entries);
   * returns the intent to store. Its `before` must equal `expected` when `expected` is given.
   *
   * If it throws, the transaction is rolled back and `commit` rethrows that error unchanged. A
   * result that is not a consistent {@link LogIntent} rolls back too, with
   * `ERR_INVALID_ARGUMENT`. It must not call the store (`ERR_INVALID_ARGUMENT` if it does) and
   * must not return a promise.
   */
  build(outcomes: readonly CommitOutcome[]): LogIntent;
}

/** Options of {@link StateStore.commit}. */
export interface CommitOptions {
  /** A decision log advance to store in the same transaction as the entries. */
  readonly log?: LogAppend;
}

/**
 * The durable state that decides whether a command may pass: anti-replay counters per
 * (originator, device), anomaly counts per (user, message code, window), and quarantined
 * commands; and the sequences allocated with them (see {@link SequenceClaim}) and the commands
 * kept pending with them (see {@link CommitEntry.pending}). One interface,
 * three implementations: {@link MemoryStateStore} (tests, benchmarks), {@link SqliteStateStore}
 * (the embedded default) and {@link PostgresStateStore} (several processes on several machines).
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
   * The last counter accepted for (originator, device), or `undefined` if none. For a
   * {@link SequenceClaim}'s (owner, device), the last value allocated or accepted.
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
   * With `options.log`, the same transaction first checks the log's stored head against
   * `log.expected`, then applies the entries, then stores the intent `log.build(outcomes)`
   * returns (see {@link LogAppend}); `entries` may then be empty. Without it, nothing of any log
   * is read or written. The stored heads are checked (`ERR_STORE_CORRUPT`); the previous intent's
   * lines are replaced unread, so write them to the log file (or read them with
   * {@link StateStore.logIntent}) before the next commit.
   *
   * When it returns, every outcome (and the log's intent) is durable (SQLite: WAL with
   * synchronous FULL; PostgreSQL: the commit is acknowledged by the server). When it throws,
   * nothing was applied.
   *
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (an entry or the log advance is malformed, a
   *   sequence is claimed with a release or for the entry's own counter's pair; checked before
   *   anything is written), `ERR_STORE_LOG_CONFLICT` (the log's stored head is not
   *   `log.expected`), `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`; or
   *   whatever `log.build` threw, unchanged
   */
  commit(entries: readonly CommitEntry[], options?: CommitOptions): Promise<CommitOutcome[]>;
  /**
   * The intent stored by the last commit that carried this log, or `undefined` if none did.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  logIntent(id: string): Promise<LogIntent | undefined>;
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
   * The pending command kept under `key` (the SHA-256 of the command, 64 upper-case hex digits) by
   * a committed {@link CommitEntry.pending}, or `undefined` (never kept, or removed since). A row
   * whose command does not hash to its key is `ERR_STORE_CORRUPT`.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  pendingCommand(key: string): Promise<PendingCommand | undefined>;
  /**
   * Remove the pending command kept under `key`, durably; returns whether it was there (of
   * several processes removing the same one, exactly one is told `true`).
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  removePendingCommand(key: string): Promise<boolean>;
  /**
   * Remove the pending commands kept before `before` (milliseconds since the epoch: their `at` is
   * less), e.g. commands whose device never answered; returns how many.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  prunePendingCommands(before: number): Promise<number>;
  /**
   * Delete anomaly windows that ended before `before` (milliseconds since the epoch); returns how many.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  pruneAnomalyWindows(before: number): Promise<number>;
  /** Close the store; later calls throw `ERR_STORE_CLOSED`. Idempotent. */
  close(): Promise<void>;
}
