// A decision log's head and write-ahead intent (types.ts: LogHead, LogIntent, LogAppend), shared by
// every backend: the checks of what a caller gives and of what its build callback returns
// (ERR_INVALID_ARGUMENT), the compare-and-set, the stored form, and reading it back (anything out
// of shape is ERR_STORE_CORRUPT, never a head the validator would trust).
//
// Stored form, one row per log id: `before_head` and `after_head` as canonical JSON text
// ({"count":N,"lastHash":"<64 hex>","bytes":N}, compared byte for byte on reading), and `lines` as
// the exact bytes the lines add to the log file (UTF-8, each line followed by its `\n`).
import { createHash } from 'node:crypto';
import { SmkiError } from '@smki/core';
import type { CommitOutcome, LogHead, LogIntent } from '../types.js';
import { invalid } from './check.js';

/** The longest line of a log intent, in bytes of UTF-8 (without its `\n`). */
export const MAX_LOG_LINE_BYTES = 65_536;
/** The most lines one log intent holds. */
export const MAX_LOG_INTENT_LINES = 100_000;
/** The most bytes of UTF-8 the lines of one log intent hold in all (without their `\n`s): 32 MiB. */
export const MAX_LOG_INTENT_BYTES = 32 * 1024 * 1024;

const LOG_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const HASH = /^[0-9A-F]{64}$/;
const ZERO_HASH = '0'.repeat(64);
// A surrogate code unit that is not half of a pair: such a string has no UTF-8 form.
const LONE_SURROGATE = /\p{Cs}/u;

/** Makes the error for a value out of shape: ERR_INVALID_ARGUMENT going in, ERR_STORE_CORRUPT coming back. */
type Fail = (field: string, message: string) => SmkiError;

/** A log advance as checked before the transaction: read once from the caller's object. */
export interface CheckedLog {
  readonly id: string;
  readonly expected: LogHead | undefined;
  readonly build: (outcomes: readonly CommitOutcome[]) => unknown;
}

/** A log's row as SQLite and PostgreSQL return it. */
export interface LogRow {
  readonly before_head: unknown;
  readonly after_head: unknown;
  readonly lines: unknown;
}

/** A log's row as the backends write it. */
export interface EncodedIntent {
  readonly before_head: string;
  readonly after_head: string;
  readonly lines: Buffer;
}

/**
 * What `build` threw, carried through a backend's transaction and error mapping so that `commit`
 * rethrows it unchanged (see {@link rethrowBuildError}).
 */
class BuildThrew {
  constructor(readonly error: unknown) {}
}

function record(v: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(field, 'is not an object');
  return v as Record<string, unknown>;
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex').toUpperCase();
}

export function logId(v: unknown, field: string): string {
  if (typeof v !== 'string' || !LOG_ID.test(v)) throw invalid(field, 'is not a log id (1 to 128 of A-Z a-z 0-9 . _ : @ -)');
  return v;
}

function checkHead(v: unknown, field: string, fail: Fail): LogHead {
  const o = record(v, field, fail);
  const count = o['count'];
  const lastHash = o['lastHash'];
  const bytes = o['bytes'];
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw fail(`${field}.count`, 'is not a safe integer >= 0');
  if (typeof lastHash !== 'string' || !HASH.test(lastHash)) throw fail(`${field}.lastHash`, 'is not 64 upper-case hex digits');
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) throw fail(`${field}.bytes`, 'is not a safe integer >= 0');
  if ((count === 0) !== (bytes === 0)) throw fail(`${field}.bytes`, 'is 0 for a log with records, or not 0 for an empty log');
  if (count === 0 && lastHash !== ZERO_HASH) throw fail(`${field}.lastHash`, 'is not 64 zeros for an empty log');
  return { count, lastHash, bytes };
}

/**
 * Whether two decision-log heads (or two absences of one) are the same: count, hash of the last
 * line and byte length all equal. The compare-and-set of `commit` uses it; so may a caller that
 * reads the store's `logIntent` to learn whether its commit was applied.
 */
export function sameLogHead(a: LogHead | undefined, b: LogHead | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.count === b.count && a.lastHash === b.lastHash && a.bytes === b.bytes;
}

/** Check an intent; returns a fresh copy. The rules are those of LogIntent (types.ts). */
function checkIntent(v: unknown, field: string, fail: Fail): LogIntent {
  const o = record(v, field, fail);
  const before = checkHead(o['before'], `${field}.before`, fail);
  const after = checkHead(o['after'], `${field}.after`, fail);
  const given = o['lines'];
  if (!Array.isArray(given)) throw fail(`${field}.lines`, 'is not an array');
  if (given.length > MAX_LOG_INTENT_LINES) throw fail(`${field}.lines`, `has more than ${MAX_LOG_INTENT_LINES} lines`);
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; i < given.length; i++) {
    const line: unknown = given[i];
    const f = `${field}.lines[${i}]`;
    if (typeof line !== 'string') throw fail(f, 'is not a string');
    if (line.includes('\n') || line.includes('\r')) throw fail(f, 'holds a line break (\\n or \\r)');
    if (LONE_SURROGATE.test(line)) throw fail(f, 'is not well-formed text (a lone surrogate has no UTF-8 form)');
    const n = Buffer.byteLength(line, 'utf8');
    if (n < 1 || n > MAX_LOG_LINE_BYTES) throw fail(f, `is not 1 to ${MAX_LOG_LINE_BYTES} bytes of UTF-8`);
    total += n;
    if (total > MAX_LOG_INTENT_BYTES) throw fail(`${field}.lines`, `hold more than ${MAX_LOG_INTENT_BYTES} bytes of UTF-8 in all`);
    lines.push(line);
  }
  if (after.count < before.count) throw fail(`${field}.after.count`, 'is less than before.count (a log only grows)');
  if (after.count - before.count !== lines.length) throw fail(`${field}.after.count`, 'is not before.count plus the number of lines');
  if (after.bytes - before.bytes !== total + lines.length) {
    throw fail(`${field}.after.bytes`, 'is not before.bytes plus the UTF-8 length of the lines, each with its \\n');
  }
  const last = lines.length === 0 ? before.lastHash : sha256Hex(lines[lines.length - 1]!);
  if (after.lastHash !== last) {
    throw fail(`${field}.after.lastHash`, lines.length === 0 ? 'is not before.lastHash (there are no lines)' : 'is not SHA-256 of the last line');
  }
  return { before, after, lines };
}

/**
 * The log advance of `commit`'s options, checked before anything is written; `undefined` when
 * there is none. Each field of the caller's object is read once.
 */
export function checkCommitOptions(v: unknown): CheckedLog | undefined {
  if (v === undefined) return undefined;
  const o = record(v, 'options', invalid);
  const log = o['log'];
  if (log === undefined) return undefined;
  const l = record(log, 'options.log', invalid);
  const id = logId(l['id'], 'options.log.id');
  const e = l['expected'];
  const expected = e === undefined ? undefined : checkHead(e, 'options.log.expected', invalid);
  const build = l['build'];
  if (typeof build !== 'function') throw invalid('options.log.build', 'is not a function');
  return { id, expected, build: (outcomes) => (build as (x: readonly CommitOutcome[]) => unknown).call(log, outcomes) };
}

/** The compare-and-set: the stored `after` must be `expected` (both absent: no row yet). */
export function checkExpected(log: CheckedLog, stored: { readonly after: LogHead } | undefined): void {
  if (!sameLogHead(stored?.after, log.expected)) {
    throw new SmkiError(
      'ERR_STORE_LOG_CONFLICT',
      log.expected === undefined
        ? `decision log ${log.id}: the store already holds a head for it, and the commit expected none; nothing was applied`
        : `decision log ${log.id}: the store holds another head than the commit expected; nothing was applied`,
      { log: log.id },
    );
  }
}

/**
 * Call `build` with (frozen copies of) the outcomes and check what it returns. What `build`
 * throws is wrapped, for {@link rethrowBuildError}; a malformed result is ERR_INVALID_ARGUMENT.
 */
export function runBuild(log: CheckedLog, outcomes: readonly CommitOutcome[]): LogIntent {
  let result: unknown;
  try {
    result = log.build(Object.freeze(outcomes.map((o) => Object.freeze({ ...o }))));
  } catch (e) {
    throw new BuildThrew(e);
  }
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    // A rejection of an async build must not go unhandled; it is refused either way.
    Promise.resolve(result).catch(() => {});
    throw invalid('options.log.build', 'returned a promise: it must return the intent synchronously');
  }
  const intent = checkIntent(result, 'intent', invalid);
  if (log.expected !== undefined && !sameLogHead(intent.before, log.expected)) throw invalid('intent.before', 'is not options.log.expected');
  return intent;
}

/** If `e` is what `build` threw (wrapped by {@link runBuild}), throw that, unchanged. */
export function rethrowBuildError(e: unknown): void {
  if (e instanceof BuildThrew) throw e.error;
}

function headText(h: LogHead): string {
  return JSON.stringify({ count: h.count, lastHash: h.lastHash, bytes: h.bytes });
}

/** The stored form of an intent (checked already). */
export function encodeIntent(intent: LogIntent): EncodedIntent {
  return {
    before_head: headText(intent.before),
    after_head: headText(intent.after),
    lines: Buffer.from(intent.lines.length === 0 ? '' : `${intent.lines.join('\n')}\n`, 'utf8'),
  };
}

function headFromText(v: unknown, field: string, fail: Fail): LogHead {
  if (typeof v !== 'string') throw fail(field, 'is not text');
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw fail(field, 'is not JSON');
  }
  const h = checkHead(parsed, field, fail);
  if (headText(h) !== v) throw fail(field, 'is not in its canonical form');
  return h;
}

function corruptRow(id: string): Fail {
  return (field, message) => new SmkiError('ERR_STORE_CORRUPT', `decision log ${id}: the stored ${field} ${message}`, { detail: `log ${id} ${field}` });
}

/**
 * The two heads of a stored intent, each checked as on the way in (ERR_STORE_CORRUPT otherwise):
 * what a commit compares its expected head with. The lines are read and checked where they are
 * used, by {@link intentFromRow} (recovery after a crash); a commit replaces them unread.
 */
export function headsFromRow(id: string, row: Pick<LogRow, 'before_head' | 'after_head'>): { readonly before: LogHead; readonly after: LogHead } {
  const corrupt: Fail = corruptRow(id);
  return { before: headFromText(row.before_head, 'before', corrupt), after: headFromText(row.after_head, 'after', corrupt) };
}

/** Read a stored intent back, checked as on the way in; anything else is ERR_STORE_CORRUPT. */
export function intentFromRow(id: string, row: LogRow): LogIntent {
  const corrupt: Fail = corruptRow(id);
  const { before, after } = headsFromRow(id, row);
  if (!(row.lines instanceof Uint8Array)) throw corrupt('lines', 'are not bytes');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(row.lines);
  } catch {
    throw corrupt('lines', 'are not UTF-8');
  }
  if (text !== '' && !text.endsWith('\n')) throw corrupt('lines', 'do not end with a newline');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  return checkIntent({ before, after, lines }, 'intent', corrupt);
}

function buildCalledStore(): SmkiError<'ERR_INVALID_ARGUMENT'> {
  return invalid('options.log.build', 'called the store: build runs inside the commit and must not use the store');
}

/**
 * Keeps a store's own methods from being used by a build that is running inside its commit: a
 * nested commit there would read state the outer one is about to overwrite. The nested call fails,
 * and so does the commit that ran the build (rolled back).
 */
export class BuildGuard {
  #active = false;
  #called = false;

  /** Call first in every store method: refuses while a build runs. */
  check(): void {
    if (this.#active) {
      this.#called = true;
      throw buildCalledStore();
    }
  }

  /** {@link runBuild}, refusing the result if the build called the store. */
  run(log: CheckedLog, outcomes: readonly CommitOutcome[]): LogIntent {
    this.#active = true;
    this.#called = false;
    try {
      const intent = runBuild(log, outcomes);
      if (this.#called) throw buildCalledStore();
      return intent;
    } finally {
      this.#active = false;
    }
  }
}
