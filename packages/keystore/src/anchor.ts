/**
 * Audit checkpoints and the anchors that keep them: the head of the key store's audit trail
 * (record count and hash of the last record), signed with the store's audit key and written at a
 * bounded interval to a second place the operator chooses, so that cutting records off the end
 * of the trail, or putting back an older copy of the whole database, is detected when the trail
 * is checked against the latest checkpoint.
 *
 * - {@link AuditCheckpoint} / {@link SignedAuditCheckpoint}: the format;
 *   {@link signAuditCheckpoint}, {@link verifyAuditCheckpoint}: its ECDSA P-256 signature over
 *   {@link auditCheckpointMessage}.
 * - {@link AuditAnchor}: where checkpoints go, forward only. {@link DirectoryAnchor} (one
 *   append-only JSON-lines file per store, in a directory on another volume) and
 *   {@link PostgresAnchor} (one table in a PostgreSQL database).
 * - {@link AuditCheckpointer}: writes the head at an interval and at close, and tells the store
 *   when its anchor has been out of reach for too long ({@link AuditCheckpointer.assertHealthy}),
 *   so the store can fail closed.
 * - {@link checkTrailAgainstCheckpoint}: the check itself.
 *
 * Security: an anchor is only as independent as the place it lives. Someone who can rewrite both
 * the trail's database and the anchor can roll both back together; put the anchor where the
 * database's administrators cannot write (another host, another volume, other credentials).
 * Anchors do not verify signatures (they hold no public key): whoever reads a checkpoint back
 * verifies it with the audit public key ({@link verifyAuditCheckpoint}).
 * @see docs/keystore-estate.md §3 (the audit anchor)
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, constants as fsc } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isP256Point, isSmkiError, publicKeyFromRaw, SmkiError, verifyP1363, type Signer } from '@smki/core';
import { PostgresConnection, postgresError, type PostgresSchemaSpec, type PostgresStateStoreOptions } from '@smki/store';
import { fsyncDirectory } from './internal/fsutil.js';

// ---------------------------------------------------------------------------------------------
// The format

/**
 * The head of an audit trail at one moment, as the store's audit key signs it.
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export interface AuditCheckpoint {
  /** Format version: 1. */
  readonly v: 1;
  /** The store's id: 32 lower-case hex digits. */
  readonly storeId: string;
  /** The number of records in the trail (a safe integer, 0 or more). */
  readonly seq: number;
  /** SHA-256 of the last record's line, 64 upper-case hex digits; 64 zeros when `seq` is 0. */
  readonly hash: string;
  /** When the checkpoint was made: ISO 8601, UTC, with milliseconds (`2025-01-31T12:00:00.000Z`). */
  readonly at: string;
}

/**
 * An {@link AuditCheckpoint} with its signature.
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export interface SignedAuditCheckpoint extends AuditCheckpoint {
  /**
   * ECDSA P-256/SHA-256 under the store's audit key over {@link auditCheckpointMessage}: 128
   * upper-case hex digits, `r ‖ s` (IEEE P1363).
   */
  readonly signature: string;
}

/** The head of an audit trail: its record count and the hash of its last record's line. */
export interface AuditTrailHead {
  /** The number of records (a safe integer, 0 or more). */
  readonly seq: number;
  /** SHA-256 of the last record's line, 64 upper-case hex digits; 64 zeros when `seq` is 0. */
  readonly hash: string;
}

/** What {@link checkTrailAgainstCheckpoint} needs of a trail. */
export interface AuditTrailView {
  /** The trail's head now. */
  readonly head: AuditTrailHead;
  /** The hash of record `seq`'s line (64 upper-case hex digits), or undefined when the trail has no such record. */
  hashAt(seq: number): Promise<string | undefined>;
}

/** The domain-separation prefix of {@link auditCheckpointMessage}. */
export const AUDIT_CHECKPOINT_CONTEXT = 'smki-keystore audit checkpoint v1\n';

/**
 * The longest line a {@link DirectoryAnchor} reads as a checkpoint (1 KiB; a checkpoint's line is
 * under 330 bytes). Longer lines are skipped as damage, and never held in memory whole.
 */
export const MAX_AUDIT_CHECKPOINT_LINE_BYTES = 1024;

const STORE_ID = /^[0-9a-f]{32}$/;
const HASH = /^[0-9A-F]{64}$/;
const SIGNATURE = /^[0-9A-F]{128}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ZERO_HASH = '0'.repeat(64);
const CHECKPOINT_KEYS = ['v', 'storeId', 'seq', 'hash', 'at'] as const;
const SIGNED_KEYS = [...CHECKPOINT_KEYS, 'signature'] as const;

function invalidCheckpoint(detail: string, message = `the audit checkpoint ${detail}`): SmkiError {
  return new SmkiError('ERR_AUDIT_CHECKPOINT_INVALID', message, { detail });
}

function invalidArgument(detail: string, message: string): SmkiError {
  return new SmkiError('ERR_INVALID_ARGUMENT', `${detail} ${message}`, { detail });
}

function checkStoreId(storeId: unknown, field = 'storeId'): string {
  if (typeof storeId !== 'string' || !STORE_ID.test(storeId)) throw invalidArgument(field, 'is not 32 lower-case hex digits');
  return storeId;
}

/** Whether `at` is an ISO 8601 UTC time with milliseconds that names a real instant, spelled as toISOString spells it. */
function isIsoTime(at: unknown): at is string {
  if (typeof at !== 'string' || !ISO.test(at)) return false;
  const t = Date.parse(at);
  return Number.isFinite(t) && new Date(t).toISOString() === at;
}

/** Why `seq` and `hash` are not a trail head, or undefined when they are. */
function headProblem(seq: unknown, hash: unknown): string | undefined {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return 'seq is not a safe integer of 0 or more';
  if (typeof hash !== 'string' || !HASH.test(hash)) return 'hash is not 64 upper-case hex digits';
  if ((seq === 0) !== (hash === ZERO_HASH)) return 'hash must be 64 zeros exactly when seq is 0';
  return undefined;
}

/**
 * The fields of a checkpoint (`signed`: with its signature), checked: a plain object with exactly
 * these keys and values of the right form; the problem as text otherwise.
 */
function checkpointFields(value: unknown, signed: boolean): SignedAuditCheckpoint | string {
  if (typeof value !== 'object' || value === null) return 'is not an object';
  // (an array, a Date, a class instance: not a plain object)
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return 'is not a plain object';
  const want: readonly string[] = signed ? SIGNED_KEYS : CHECKPOINT_KEYS;
  const keys = Object.keys(value);
  if (keys.length !== want.length || !want.every((k) => Object.hasOwn(value, k))) return `does not have exactly the fields ${want.join(', ')}`;
  const o = value as Record<string, unknown>;
  if (o['v'] !== 1) return 'is not version 1';
  if (typeof o['storeId'] !== 'string' || !STORE_ID.test(o['storeId'])) return 'storeId is not 32 lower-case hex digits';
  const head = headProblem(o['seq'], o['hash']);
  if (head !== undefined) return head;
  if (!isIsoTime(o['at'])) return 'at is not an ISO 8601 UTC time with milliseconds';
  if (signed && (typeof o['signature'] !== 'string' || !SIGNATURE.test(o['signature']))) return 'signature is not 128 upper-case hex digits';
  return {
    v: 1,
    storeId: o['storeId'] as string,
    seq: o['seq'] as number,
    hash: o['hash'] as string,
    at: o['at'] as string,
    signature: signed ? (o['signature'] as string) : '',
  };
}

function checkedCheckpoint(value: unknown, signed: boolean): SignedAuditCheckpoint {
  const c = checkpointFields(value, signed);
  if (typeof c === 'string') throw invalidCheckpoint(c);
  return c;
}

function canonicalJson(c: AuditCheckpoint): string {
  return JSON.stringify({ v: c.v, storeId: c.storeId, seq: c.seq, hash: c.hash, at: c.at });
}

function canonicalSignedJson(c: SignedAuditCheckpoint): string {
  return JSON.stringify({ v: c.v, storeId: c.storeId, seq: c.seq, hash: c.hash, at: c.at, signature: c.signature });
}

function freezeSigned(c: SignedAuditCheckpoint): SignedAuditCheckpoint {
  return Object.freeze({ v: 1, storeId: c.storeId, seq: c.seq, hash: c.hash, at: c.at, signature: c.signature });
}

/**
 * The bytes a checkpoint's signature covers: {@link AUDIT_CHECKPOINT_CONTEXT}
 * (`smki-keystore audit checkpoint v1` and a line feed) followed by one JSON text of the fields in
 * this order, with no white space: `{"v":1,"storeId":"…","seq":N,"hash":"…","at":"…"}` (UTF-8;
 * every field is ASCII). An auditor can rebuild them with any JSON library that keeps key order.
 * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID` for a value that is not a well-formed
 *   checkpoint (a `signature` field is refused too: the message is of the unsigned fields)
 * @see RFC 8259 (JSON); docs/keystore-estate.md §3 (the audit anchor)
 */
export function auditCheckpointMessage(checkpoint: AuditCheckpoint): Uint8Array {
  const c = checkedCheckpoint(checkpoint, false);
  return new Uint8Array(Buffer.from(AUDIT_CHECKPOINT_CONTEXT + canonicalJson(c), 'utf8'));
}

/**
 * Sign a checkpoint with the store's audit key. The signer's signature is verified under its own
 * public key before it is returned, so a faulty signer (an HSM returning garbage) cannot put a
 * checkpoint into an anchor that would later fail verification.
 * @param checkpoint - exactly the fields of {@link AuditCheckpoint}
 * @param signer - the audit key (ECDSA P-256, 64-byte `r ‖ s` signatures)
 * @returns a new, frozen {@link SignedAuditCheckpoint}
 * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID` for a malformed checkpoint or a signature that
 *   does not verify under the signer's public key; `ERR_INVALID_ARGUMENT` for a signer without a
 *   P-256 public key or a `sign` function; whatever the signer throws
 * @see FIPS 186-5 §6.4 (ECDSA); docs/keystore-estate.md §3 (the audit anchor)
 */
export async function signAuditCheckpoint(checkpoint: AuditCheckpoint, signer: Signer): Promise<SignedAuditCheckpoint> {
  const c = checkedCheckpoint(checkpoint, false);
  const publicKey = checkSigner(signer, 'signer');
  const message = Buffer.from(AUDIT_CHECKPOINT_CONTEXT + canonicalJson(c), 'utf8');
  const signature = await signer.sign(new Uint8Array(message));
  if (!(signature instanceof Uint8Array) || signature.length !== 64 || !verifyP1363(publicKeyFromRaw(publicKey), message, signature)) {
    throw invalidCheckpoint('signature', 'the signer returned a signature that does not verify under its public key');
  }
  return freezeSigned({ ...c, signature: Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('hex').toUpperCase() });
}

function checkSigner(signer: unknown, field: string): Uint8Array {
  const s = signer as Partial<Signer> | null;
  if (typeof s !== 'object' || s === null || typeof s.sign !== 'function') throw invalidArgument(field, 'is not a Signer');
  if (!(s.publicKey instanceof Uint8Array) || !isP256Point(s.publicKey)) throw invalidArgument(`${field}.publicKey`, 'is not a 65-byte uncompressed P-256 point');
  return s.publicKey;
}

/**
 * Verify a checkpoint read back from an anchor (or anywhere): its form, its store, and its
 * signature under the store's audit public key. Fails closed: anything other than a checkpoint of
 * exactly this form, of this store, signed by this key, is refused.
 * @param value - the checkpoint as read (e.g. `JSON.parse` of an anchor's line): a plain object
 *   with exactly the fields of {@link SignedAuditCheckpoint}
 * @param publicKey - the audit public key, a 65-byte uncompressed P-256 point
 * @param storeId - the store the checkpoint must name
 * @returns the checkpoint (a new, frozen object)
 * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID` for a malformed value (a missing, extra or
 *   ill-formed field), another store's checkpoint, or a signature that does not verify;
 *   `ERR_INVALID_ARGUMENT` for a public key that is not a P-256 point or a malformed store id
 * @see FIPS 186-5 §6.4.2 (ECDSA verification); docs/keystore-estate.md §3 (the audit anchor)
 */
export function verifyAuditCheckpoint(value: unknown, publicKey: Uint8Array, storeId: string): SignedAuditCheckpoint {
  if (!(publicKey instanceof Uint8Array) || !isP256Point(publicKey)) throw invalidArgument('publicKey', 'is not a 65-byte uncompressed P-256 point');
  checkStoreId(storeId);
  const c = checkedCheckpoint(value, true);
  if (c.storeId !== storeId) throw invalidCheckpoint('storeId', 'the audit checkpoint is of another store');
  const message = Buffer.from(AUDIT_CHECKPOINT_CONTEXT + canonicalJson(c), 'utf8');
  if (!verifyP1363(publicKeyFromRaw(publicKey), message, Buffer.from(c.signature, 'hex'))) {
    throw invalidCheckpoint('signature', 'the audit checkpoint signature does not verify under the audit public key');
  }
  return freezeSigned(c);
}

/**
 * Check a trail against a checkpoint (verified first with {@link verifyAuditCheckpoint}): the
 * trail must reach the checkpoint's `seq`, and its record at that `seq` must have the
 * checkpoint's hash. A checkpoint of `seq` 0 holds for every trail.
 * @param trail - the trail's head and a lookup of a record's hash by sequence number (its
 *   errors pass through unchanged)
 * @param checkpoint - the anchor's latest checkpoint
 * @throws SmkiError `ERR_AUDIT_TRUNCATED` when the trail ends before the checkpoint (records were
 *   cut off, or an older copy of the database was put back); `ERR_AUDIT_TAMPERED` when the
 *   trail's record at the checkpoint's `seq` is missing or has another hash (the trail was
 *   rewritten, or is another history); `ERR_AUDIT_CHECKPOINT_INVALID` for a malformed
 *   checkpoint; `ERR_INVALID_ARGUMENT` for a malformed trail head
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export async function checkTrailAgainstCheckpoint(trail: AuditTrailView, checkpoint: AuditCheckpoint): Promise<void> {
  const signed = typeof checkpoint === 'object' && checkpoint !== null && Object.hasOwn(checkpoint, 'signature');
  const c = checkedCheckpoint(checkpoint, signed);
  if (typeof trail !== 'object' || trail === null || typeof trail.hashAt !== 'function') throw invalidArgument('trail', 'is not a trail view');
  const head = trail.head as AuditTrailHead | undefined;
  const problem = headProblem(head?.seq, head?.hash);
  if (problem !== undefined) throw invalidArgument('trail.head', problem);
  const h = head as AuditTrailHead;
  if (h.seq < c.seq) {
    throw new SmkiError('ERR_AUDIT_TRUNCATED', `the audit trail has ${h.seq} record(s); the anchor's checkpoint of ${c.at} says it had ${c.seq}`, { detail: `${h.seq}<${c.seq}` });
  }
  if (c.seq === 0) return;
  const at = h.seq === c.seq ? h.hash : await trail.hashAt(c.seq);
  if (at !== c.hash) {
    throw new SmkiError(
      'ERR_AUDIT_TAMPERED',
      at === undefined
        ? `the audit trail has no record ${c.seq}, which the anchor's checkpoint of ${c.at} names`
        : `record ${c.seq} of the audit trail is not the one the anchor's checkpoint of ${c.at} names`,
      { detail: String(c.seq) },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Anchors

/**
 * A second place audit checkpoints go, forward only. Several processes of one store checkpoint
 * the same trail into one anchor; the anchor keeps the highest.
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export interface AuditAnchor {
  /** Which kind of anchor. */
  readonly kind: 'directory' | 'postgres';
  /**
   * Store a checkpoint durably before resolving. Resolves false, storing nothing, when the
   * anchor already holds a checkpoint of that store with a `seq` at least as high.
   * @returns true when the checkpoint was stored
   * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID` for a malformed checkpoint, or one whose
   *   `seq` the anchor holds with another hash (a fork: two histories of one trail);
   *   `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the anchor cannot be read or written (the cause
   *   attached), or after {@link AuditAnchor.close}
   */
  write(checkpoint: SignedAuditCheckpoint): Promise<boolean>;
  /**
   * The stored checkpoint of `storeId` with the highest `seq`, or undefined when there is none.
   * Not verified: verify it with {@link verifyAuditCheckpoint}.
   * @throws SmkiError `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the anchor cannot be read (the cause
   *   attached), or after {@link AuditAnchor.close}; `ERR_INVALID_ARGUMENT` for a malformed store id
   */
  latest(storeId: string): Promise<SignedAuditCheckpoint | undefined>;
  /** Release the anchor's resources (idempotent); later calls fail with `ERR_AUDIT_ANCHOR_UNAVAILABLE`. */
  close(): Promise<void>;
}

function unavailable(kind: string, operation: string, cause?: unknown, why?: string): SmkiError {
  const code = typeof (cause as { code?: unknown })?.code === 'string' ? (cause as { code: string }).code : undefined;
  const reason = why ?? code ?? 'failed';
  return new SmkiError(
    'ERR_AUDIT_ANCHOR_UNAVAILABLE',
    `the ${kind} audit anchor could not ${operation}: ${reason}`,
    { detail: reason.slice(0, 100) },
    cause === undefined ? undefined : { cause },
  );
}

/** An anchor's own refusals pass through; anything else becomes `ERR_AUDIT_ANCHOR_UNAVAILABLE` with it as the cause. */
function anchorFailure(e: unknown, kind: string, operation: string, mapCause: (e: unknown) => unknown = (x) => x): SmkiError {
  if (isSmkiError(e) && (e.code === 'ERR_AUDIT_CHECKPOINT_INVALID' || e.code === 'ERR_AUDIT_ANCHOR_UNAVAILABLE' || e.code === 'ERR_INVALID_ARGUMENT')) return e;
  const cause = mapCause(e);
  const detail = isSmkiError(cause) ? (cause.context as { detail?: unknown }).detail : undefined;
  return unavailable(kind, operation, cause, isSmkiError(cause) ? `${cause.code}${typeof detail === 'string' ? ` (${detail})` : ''}` : undefined);
}

function forkError(storeId: string, seq: number): SmkiError {
  return new SmkiError(
    'ERR_AUDIT_CHECKPOINT_INVALID',
    `the anchor holds a checkpoint of store ${storeId} at seq ${seq} with another hash: two histories of one audit trail`,
    { detail: `fork at ${seq}` },
  );
}

// ---- the directory anchor: reading lines of a file from either end, in bounded chunks

/** Bytes read at a time. */
const CHUNK = 64 * 1024;
/**
 * How far from the end of a checkpoint file `latest` looks for a checkpoint line before it gives
 * up on the file as damaged (16 MiB: some fifty thousand lines).
 */
export const MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES = 16 * 1024 * 1024;

interface RawLine {
  /** Offset of its first byte. */
  readonly start: number;
  /** Offset of its `\n`. */
  readonly end: number;
  /** Its bytes (without the `\n`), or undefined when it is over the line limit. */
  readonly bytes: Buffer | undefined;
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new SmkiError('ERR_AUDIT_ANCHOR_UNAVAILABLE', 'the checkpoint file shrank while it was read', { detail: 'shrank' });
    off += bytesRead;
  }
}

/**
 * The complete lines of `[0, size)`, last first. Bytes after the last `\n` (a torn final line)
 * are not a line. At most one chunk and one line limit of bytes are held at a time. Before each
 * chunk: stop when all that is left lies at or below `limit.stop`; fail when it lies at or below
 * `limit.fail` (the caller moves both as it goes).
 */
async function* linesBackward(fh: FileHandle, size: number, limit: { stop: number; fail: number }): AsyncGenerator<RawLine> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let overlong = false;
  /** Offset of the `\n` ending the line being gathered in `carry`, once one has been seen. */
  let lineEnd = -1;
  let end = size;
  while (end > 0) {
    if (end <= limit.stop) return;
    if (end <= limit.fail) {
      throw new SmkiError('ERR_AUDIT_ANCHOR_UNAVAILABLE', `the last ${size - end} bytes of the checkpoint file hold no checkpoint of the store: the file is damaged`, { detail: 'damaged' });
    }
    const start = Math.max(0, end - CHUNK);
    const buf = Buffer.allocUnsafe(end - start);
    await readFully(fh, buf, start);
    let j = buf.length;
    while (j > 0) {
      const i = buf.lastIndexOf(0x0a, j - 1);
      if (i < 0) break;
      if (lineEnd >= 0) {
        const len = j - (i + 1) + carryLen;
        yield { start: start + i + 1, end: lineEnd, bytes: overlong || len > MAX_AUDIT_CHECKPOINT_LINE_BYTES ? undefined : Buffer.concat([buf.subarray(i + 1, j), ...carry]) };
      }
      lineEnd = start + i;
      carry = [];
      carryLen = 0;
      overlong = false;
      j = i;
    }
    if (lineEnd >= 0 && j > 0) {
      carryLen += j;
      if (carryLen > MAX_AUDIT_CHECKPOINT_LINE_BYTES) {
        overlong = true;
        carry = [];
      } else {
        carry.unshift(Buffer.from(buf.subarray(0, j)));
      }
    }
    end = start;
  }
  if (lineEnd >= 0) yield { start: 0, end: lineEnd, bytes: overlong ? undefined : Buffer.concat(carry) };
}

/** The complete lines starting in `[from, to)`, first first; `from` must be a line start and `to` a line start (or the size). */
async function* linesForward(fh: FileHandle, from: number, to: number): AsyncGenerator<RawLine> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let overlong = false;
  let lineStart = from;
  let pos = from;
  while (pos < to) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, to - pos));
    await readFully(fh, buf, pos);
    let j = 0;
    for (;;) {
      const i = buf.indexOf(0x0a, j);
      if (i < 0) break;
      const len = carryLen + (i - j);
      yield { start: lineStart, end: pos + i, bytes: overlong || len > MAX_AUDIT_CHECKPOINT_LINE_BYTES ? undefined : Buffer.concat([...carry, buf.subarray(j, i)]) };
      carry = [];
      carryLen = 0;
      overlong = false;
      j = i + 1;
      lineStart = pos + j;
    }
    if (j < buf.length) {
      carryLen += buf.length - j;
      if (carryLen > MAX_AUDIT_CHECKPOINT_LINE_BYTES) {
        overlong = true;
        carry = [];
      } else {
        carry.push(Buffer.from(buf.subarray(j)));
      }
    }
    pos += buf.length;
  }
}

/** The offset just after the first `\n` at or after `pos` (before `to`), or `to`. */
async function nextLineStart(fh: FileHandle, pos: number, to: number): Promise<number> {
  while (pos < to) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, to - pos));
    await readFully(fh, buf, pos);
    const i = buf.indexOf(0x0a);
    if (i >= 0) return pos + i + 1;
    pos += buf.length;
  }
  return to;
}

/** A line as a checkpoint of `storeId` (its prefix names the store): exactly the canonical form, else undefined (damage, skipped). */
function parseLine(line: RawLine, storeId: string): SignedAuditCheckpoint | undefined {
  if (line.bytes === undefined) return undefined;
  // Most damage (and every other store's line) fails here, without a JSON parse.
  const prefix = `{"v":1,"storeId":"${storeId}","seq":`;
  if (line.bytes.length <= prefix.length || line.bytes.toString('latin1', 0, prefix.length) !== prefix) return undefined;
  const text = line.bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const c = checkpointFields(value, true);
  if (typeof c === 'string' || canonicalSignedJson(c) !== text) return undefined;
  return c;
}

/** What a write puts after a torn final line before its own (see DirectoryAnchor.write). */
const TORN_MARK = ' (torn)';

interface Tail {
  /** The highest checkpoint near the end, if any. */
  readonly latest: SignedAuditCheckpoint | undefined;
  /** Whether the file is empty or ends with `\n` (no torn final line). */
  readonly clean: boolean;
  /** The offset after the last `\n` (where complete lines end). */
  readonly complete: number;
}

/**
 * The end of a checkpoint file: the highest checkpoint among the last valid line and the lines in
 * the 64 KiB before it, found reading backwards; a file whose last
 * {@link MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES} hold no valid line (and that is longer) is refused.
 */
async function readTail(fh: FileHandle, size: number, storeId: string): Promise<Tail> {
  let latest: SignedAuditCheckpoint | undefined;
  let complete = 0;
  let first = true;
  const limit = { stop: -1, fail: size - MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES };
  for await (const line of linesBackward(fh, size, limit)) {
    if (first) complete = line.end + 1;
    first = false;
    const c = parseLine(line, storeId);
    if (c === undefined) continue;
    if (latest === undefined) {
      limit.fail = -1;
      limit.stop = line.start - CHUNK;
    }
    if (latest === undefined || c.seq > latest.seq) latest = c;
  }
  return { latest, clean: size === 0 || complete === size, complete };
}

/**
 * The checkpoint with `seq` in the complete lines `[0, end)`, found by bisection (lines are in
 * `seq` order: every write appends above the highest, under the store's lock), or undefined.
 */
async function findBySeq(fh: FileHandle, end: number, storeId: string, seq: number): Promise<SignedAuditCheckpoint | undefined> {
  let lo = 0;
  let hi = end;
  // Every line that could be `seq` lies within [lo, hi), both line starts.
  while (hi - lo > CHUNK) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const q = await nextLineStart(fh, mid - 1, hi);
    if (q >= hi) break; // one long line from before mid to hi: read what is left in order
    let probe: { line: RawLine; c: SignedAuditCheckpoint } | undefined;
    for await (const line of linesForward(fh, q, hi)) {
      const c = parseLine(line, storeId);
      if (c !== undefined) {
        probe = { line, c };
        break;
      }
    }
    if (probe === undefined) hi = q;
    else if (probe.c.seq === seq) return probe.c;
    else if (probe.c.seq < seq) lo = probe.line.end + 1;
    else hi = probe.line.start;
  }
  for await (const line of linesForward(fh, lo, hi)) {
    const c = parseLine(line, storeId);
    if (c !== undefined && c.seq === seq) return c;
  }
  return undefined;
}

// ---- the directory anchor: a lock per store file

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock older than this is taken over whatever its holder (a write holds it for milliseconds). */
const STALE_LOCK_MS = 60_000;

/**
 * Take `path` (O_EXCL create, holding `pid@host@nonce`), waiting up to `timeoutMs`. A lock whose
 * holder is no longer running on this host, or that is older than a minute, is taken over: it is
 * renamed aside and removed only if it still holds what was judged stale.
 */
async function acquireLock(path: string, timeoutMs: number): Promise<() => void> {
  const host = hostname();
  const token = `${process.pid}@${host}@${randomBytes(8).toString('hex')}`;
  const deadline = Date.now() + timeoutMs;
  let wait = 1;
  let holder = '';
  for (;;) {
    try {
      const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        writeSync(fd, token);
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          if (readFileSync(path, 'utf8') === token) rmSync(path, { force: true });
        } catch {
          /* gone already */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let mtime: number;
    try {
      holder = readFileSync(path, 'utf8');
      mtime = statSync(path).mtimeMs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw e;
    }
    const m = /^(\d+)@(.+)@[0-9a-f]{16}$/.exec(holder);
    const deadHolder = m !== null && m[2] === host && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
    if (deadHolder || Date.now() - mtime > STALE_LOCK_MS) {
      takeOver(path, holder);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new SmkiError('ERR_AUDIT_ANCHOR_UNAVAILABLE', `the directory audit anchor stayed locked by ${holder.split('@').slice(0, 2).join('@') || 'another process'} for ${timeoutMs} ms`, {
        detail: 'locked',
      });
    }
    await sleep(wait + Math.random() * wait);
    wait = Math.min(wait * 2, 20);
  }
}

function takeOver(path: string, stale: string): void {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  let moved: string | undefined;
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    /* unreadable: treat as not the one judged stale */
  }
  if (moved !== stale) {
    // Another process took the stale lock over first and this moved its live lock aside: put it
    // back unless a third has taken the name meanwhile.
    try {
      linkSync(aside, path);
    } catch {
      /* the name is taken again */
    }
  }
  rmSync(aside, { force: true });
}

/** Options of {@link DirectoryAnchor.open}. */
export interface DirectoryAnchorOptions {
  /** The anchor's directory (created with mode 0700 when missing), ideally on another volume than the store. */
  readonly directory: string;
  /** How long a write waits for another process's write to the same store's file (ms, 1..600000, default 10000). */
  readonly lockTimeoutMs?: number;
}

/**
 * An anchor in a directory: one append-only JSON-lines file per store,
 * `audit-checkpoints-<storeId>.jsonl` (mode 0600), one {@link SignedAuditCheckpoint} per line in
 * the canonical form `{"v":1,"storeId":…,"seq":…,"hash":…,"at":…,"signature":…}`.
 *
 * - **Writes.** A write takes the store file's lock (`audit-checkpoints-<storeId>.lock`, created
 *   with O_EXCL; a lock whose process is gone, or older than a minute, is taken over), reads the
 *   end of the file, and appends its line with one `write` on an `O_APPEND` descriptor, then
 *   `fdatasync` (and `fsync` of the directory when it created the file). The file's lines are
 *   therefore in `seq` order, and lines of several processes never interleave. Bytes after the
 *   last `\n` (a torn write, never acknowledged) are closed with ` (torn)` and a `\n` before the
 *   next line, so they are never read as a checkpoint.
 * - **Reads.** {@link DirectoryAnchor.latest} reads from the end in 64 KiB chunks: the time it
 *   takes does not grow with the file. A torn final line is ignored; lines that are not exactly
 *   a checkpoint of the store (garbage, another store's, over
 *   {@link MAX_AUDIT_CHECKPOINT_LINE_BYTES}) are skipped. Finding an older `seq` for the fork rule
 *   bisects the file.
 *
 * Security: the lock is a file, so on a shared file system a crashed holder on another host
 * blocks writes for up to a minute (fail closed: `ERR_AUDIT_ANCHOR_UNAVAILABLE` after
 * `lockTimeoutMs`). Should two writers ever hold it at once (two processes taking over one stale
 * lock together), lines may land out of order: `latest` takes the highest `seq` among the lines in
 * the 64 KiB before the last valid one, which covers it. A missing directory (a volume that went
 * away) is `ERR_AUDIT_ANCHOR_UNAVAILABLE`, but an empty mount point looks like a new anchor with
 * no checkpoint: the store must remember that it has checkpointed before.
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export class DirectoryAnchor implements AuditAnchor {
  /** `directory`. */
  readonly kind = 'directory' as const;
  /** The anchor's directory (absolute). */
  readonly directory: string;
  readonly #lockTimeoutMs: number;
  #closed = false;
  readonly #inflight = new Set<Promise<unknown>>();

  private constructor(directory: string, lockTimeoutMs: number) {
    this.directory = directory;
    this.#lockTimeoutMs = lockTimeoutMs;
  }

  /**
   * Open (creating the directory, mode 0700, when missing) a directory anchor.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for bad options; `ERR_AUDIT_ANCHOR_UNAVAILABLE` when
   *   the directory cannot be created, is not a directory (mkdir refuses it), or cannot be written
   */
  static async open(options: DirectoryAnchorOptions): Promise<DirectoryAnchor> {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'is not an object');
    const { directory } = options;
    if (typeof directory !== 'string' || directory === '' || directory.includes('\0')) throw invalidArgument('options.directory', 'is not a path');
    const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 1 || lockTimeoutMs > 600_000) throw invalidArgument('options.lockTimeoutMs', 'is not an integer of 1 to 600000');
    const dir = resolve(directory);
    try {
      const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (first !== undefined) {
        // Make each new directory's entry durable, from the one created first down to dir.
        for (let d = dir; ; d = dirname(d)) {
          fsyncDirectory(dirname(d));
          if (d === first) break;
        }
      }
      accessSync(dir, fsc.W_OK | fsc.X_OK);
    } catch (e) {
      throw anchorFailure(e, 'directory', `open ${dir}`);
    }
    return new DirectoryAnchor(dir, lockTimeoutMs);
  }

  /**
   * The file holding `storeId`'s checkpoints.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for a malformed store id
   */
  fileFor(storeId: string): string {
    return join(this.directory, `audit-checkpoints-${checkStoreId(storeId)}.jsonl`);
  }

  /**
   * Append a checkpoint and sync it, unless the file already holds one of this store with a
   * `seq` at least as high (then false, nothing written).
   * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID` for a malformed checkpoint or a fork (the
   *   file holds its `seq` with another hash); `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the file
   *   cannot be locked, read, written or synced (the cause attached), or after close
   */
  write(checkpoint: SignedAuditCheckpoint): Promise<boolean> {
    return this.#track('write a checkpoint', async () => {
      const c = checkedCheckpoint(checkpoint, true);
      const path = this.fileFor(c.storeId);
      const release = await acquireLock(join(this.directory, `audit-checkpoints-${c.storeId}.lock`), this.#lockTimeoutMs);
      try {
        let fh: FileHandle;
        let created = false;
        try {
          fh = await openFile(path, fsc.O_RDWR | fsc.O_APPEND | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NONBLOCK, 0o600);
          created = true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          // (O_NONBLOCK: a FIFO or device put in the file's place must not hang the open)
          fh = await openFile(path, fsc.O_RDWR | fsc.O_APPEND | fsc.O_NONBLOCK);
        }
        try {
          const st = await fh.stat();
          if (!st.isFile()) throw unavailable('directory', 'write a checkpoint', undefined, 'the checkpoint file is not a regular file');
          const tail = await readTail(fh, st.size, c.storeId);
          if (tail.latest !== undefined && tail.latest.seq >= c.seq) {
            const same = tail.latest.seq === c.seq ? tail.latest : await findBySeq(fh, tail.complete, c.storeId, c.seq);
            if (same !== undefined && same.hash !== c.hash) throw forkError(c.storeId, c.seq);
            return false;
          }
          // A torn final line was never acknowledged: it is closed with a mark no checkpoint line
          // ends with, so it stays damage (even a whole checkpoint that lost only its newline).
          const line = Buffer.from(`${tail.clean ? '' : `${TORN_MARK}\n`}${canonicalSignedJson(c)}\n`, 'utf8');
          // One write on an O_APPEND descriptor: the line lands whole at the end, or fails.
          const { bytesWritten } = await fh.write(line, 0, line.length, null);
          if (bytesWritten !== line.length) throw unavailable('directory', 'write a checkpoint', undefined, `short write (${bytesWritten} of ${line.length} bytes)`);
          await fh.datasync();
          if (created) fsyncDirectory(this.directory);
          return true;
        } finally {
          await fh.close();
        }
      } finally {
        release();
      }
    });
  }

  /**
   * The checkpoint of `storeId` with the highest `seq` among the last lines of its file (see
   * {@link DirectoryAnchor}), or undefined when there is none. Not verified.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for a malformed store id;
   *   `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the file cannot be read (a missing file is no
   *   checkpoint; a missing directory is unavailable), or after close
   */
  latest(storeId: string): Promise<SignedAuditCheckpoint | undefined> {
    return this.#track('read the latest checkpoint', async () => {
      const path = this.fileFor(storeId);
      let fh: FileHandle;
      try {
        fh = await openFile(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
      } catch (e) {
        // No file: no checkpoint yet. No directory (a volume that went away): unavailable.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(this.directory)) return undefined;
        throw e;
      }
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw unavailable('directory', 'read the latest checkpoint', undefined, 'the checkpoint file is not a regular file');
        const { latest } = await readTail(fh, st.size, storeId);
        return latest === undefined ? undefined : freezeSigned(latest);
      } finally {
        await fh.close();
      }
    });
  }

  /** Wait for writes in progress, then refuse further calls (idempotent). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inflight]);
  }

  #track<T>(operation: string, f: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable('directory', operation, undefined, 'closed'));
    const p = (async () => {
      try {
        return await f();
      } catch (e) {
        throw anchorFailure(e, 'directory', operation);
      }
    })();
    this.#inflight.add(p);
    const done = (): void => {
      this.#inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }
}

// ---- the PostgreSQL anchor

/**
 * Options of {@link PostgresAnchor.open}: where to connect and the pool's limits, as for
 * `PostgresStateStore.open` of `@smki/store` (the password only from `PGPASSWORD`, the service
 * file or a password file). The schema defaults to `smki_anchor`.
 */
export type PostgresAnchorOptions = Omit<PostgresStateStoreOptions, 'keepLogLines'>;

/** The anchor's table and its version. */
const ANCHOR_SCHEMA: PostgresSchemaSpec = {
  ddl: (s) => [
    `CREATE TABLE IF NOT EXISTS ${s}.audit_checkpoints (store_id text COLLATE "C" NOT NULL, seq bigint NOT NULL CHECK (seq >= 0), hash text NOT NULL, at text NOT NULL, signature text NOT NULL, PRIMARY KEY (store_id, seq))`,
  ],
  version: 1,
  defaultSchema: 'smki_anchor',
  applicationName: 'smki-audit-anchor',
};

/** A 63-bit advisory lock key per (schema, store), as a decimal string. */
function storeLockKey(schema: string, storeId: string): string {
  const d = createHash('sha256').update(`smki-audit-anchor:${schema}:${storeId}`).digest();
  return String(d.readBigUInt64BE(0) & 0x7fffffffffffffffn);
}

/**
 * An anchor in a PostgreSQL database: the table `audit_checkpoints (store_id, seq, hash, at,
 * signature)`, primary key `(store_id, seq)`, in its own schema (default `smki_anchor`, created
 * with the table on open).
 *
 * A write is one transaction (with `synchronous_commit` on, whatever the server's default) that
 * takes a transaction-scoped advisory lock per store, so processes racing on one store apply the
 * forward-only and fork rules one at a time; it is committed, and durable, when `write`
 * resolves.
 *
 * Security: use a database (ideally a server) and credentials other than the key store's: an
 * anchor the store's database administrators can rewrite detects nothing they do.
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export class PostgresAnchor implements AuditAnchor {
  /** `postgres`. */
  readonly kind = 'postgres' as const;
  readonly #conn: PostgresConnection;
  #closed = false;

  private constructor(conn: PostgresConnection) {
    this.#conn = conn;
  }

  /**
   * Connect and create the schema and table if missing.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for bad options (a `password` among them);
   *   `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the server cannot be reached or the schema is of
   *   another version (the `@smki/store` error as the cause)
   */
  static async open(options: PostgresAnchorOptions): Promise<PostgresAnchor> {
    try {
      return new PostgresAnchor(await PostgresConnection.open(options, ANCHOR_SCHEMA));
    } catch (e) {
      throw anchorFailure(e, 'postgres', 'open', (x) => postgresError(x, 'open'));
    }
  }

  /**
   * Insert a checkpoint, unless the table holds one of this store with a `seq` at least as high
   * (then false, nothing written).
   * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID` for a malformed checkpoint or a fork (the
   *   table holds its `seq` with another hash); `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the server
   *   fails (the `@smki/store` error as the cause), or after close
   */
  async write(checkpoint: SignedAuditCheckpoint): Promise<boolean> {
    const c = checkedCheckpoint(checkpoint, true);
    const t = `${this.#conn.schema}.audit_checkpoints`;
    try {
      return await this.#conn.tx(async (db) => {
        await db.query('SET LOCAL synchronous_commit = on');
        await db.query('SELECT pg_advisory_xact_lock($1::bigint)', [storeLockKey(this.#conn.schema, c.storeId)]);
        // (Ordered by the column: an output column named seq, as text, would order '9' after '10'.)
        const top = await db.query(`SELECT seq::text AS seq_text, hash FROM ${t} WHERE store_id = $1 ORDER BY seq DESC LIMIT 1`, [c.storeId]);
        const highest = top.rows[0] as { seq_text: string; hash: string } | undefined;
        if (highest !== undefined && BigInt(highest.seq_text) >= BigInt(c.seq)) {
          const same =
            BigInt(highest.seq_text) === BigInt(c.seq)
              ? highest
              : ((await db.query(`SELECT hash FROM ${t} WHERE store_id = $1 AND seq = $2`, [c.storeId, c.seq])).rows[0] as { hash: string } | undefined);
          if (same !== undefined && same.hash !== c.hash) throw forkError(c.storeId, c.seq);
          return false;
        }
        await db.query(`INSERT INTO ${t} (store_id, seq, hash, at, signature) VALUES ($1, $2, $3, $4, $5)`, [c.storeId, c.seq, c.hash, c.at, c.signature]);
        return true;
      });
    } catch (e) {
      throw anchorFailure(e, 'postgres', 'write a checkpoint', (x) => postgresError(x, 'write a checkpoint'));
    }
  }

  /**
   * The checkpoint of `storeId` with the highest `seq`, or undefined when there is none. Not
   * verified.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for a malformed store id;
   *   `ERR_AUDIT_CHECKPOINT_INVALID` when that row is not a well-formed checkpoint (an edited
   *   table); `ERR_AUDIT_ANCHOR_UNAVAILABLE` when the server fails, or after close
   */
  async latest(storeId: string): Promise<SignedAuditCheckpoint | undefined> {
    checkStoreId(storeId);
    let rows: Record<string, unknown>[];
    try {
      rows = await this.#conn.query(
        'read the latest checkpoint',
        `SELECT seq::text AS seq_text, hash, at, signature FROM ${this.#conn.schema}.audit_checkpoints WHERE store_id = $1 ORDER BY seq DESC LIMIT 1`,
        [storeId],
      );
    } catch (e) {
      throw anchorFailure(e, 'postgres', 'read the latest checkpoint');
    }
    const r = rows[0];
    if (r === undefined) return undefined;
    const seq = typeof r['seq_text'] === 'string' && /^\d{1,16}$/.test(r['seq_text']) ? Number(r['seq_text']) : Number.NaN;
    return freezeSigned(checkedCheckpoint({ v: 1, storeId, seq, hash: r['hash'], at: r['at'], signature: r['signature'] }, true));
  }

  /** End the connection pool (idempotent); later calls fail with `ERR_AUDIT_ANCHOR_UNAVAILABLE` (its cause `ERR_STORE_CLOSED`). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The checkpointer

/** Options of {@link AuditCheckpointer}. */
export interface AuditCheckpointerOptions {
  /** The store's id (32 lower-case hex digits). */
  readonly storeId: string;
  /** The store's audit key. */
  readonly signer: Signer;
  /** Where checkpoints go (the checkpointer does not close it). */
  readonly anchor: AuditAnchor;
  /**
   * The trail's head now. Its `SmkiError`s are passed on as they are, anything else as
   * `ERR_STORE_UNAVAILABLE` with it as the cause (and kept as {@link AuditCheckpointer.lastError}).
   */
  readonly head: () => Promise<AuditTrailHead>;
  /** How often to checkpoint (ms, 100..3600000, default 1000). */
  readonly intervalMs?: number;
  /** The clock (tests). */
  readonly now?: () => Date;
}

/**
 * Writes the trail's head to an anchor: every `intervalMs` once {@link AuditCheckpointer.start}ed
 * (only when the head has moved since the last checkpoint that reached the anchor), on demand
 * ({@link AuditCheckpointer.checkpointNow}) and once more at {@link AuditCheckpointer.close}.
 *
 * Security: the store must not run on without its anchor. {@link AuditCheckpointer.assertHealthy}
 * fails once the head has moved and no checkpoint has reached the anchor for longer than the
 * allowed lag; the store calls it before each operation it records and refuses the operation
 * when it throws. Records made after the last checkpoint can be cut off undetected by the anchor:
 * the interval and the lag bound that window.
 * @see docs/keystore-estate.md §3 (the audit anchor)
 */
export class AuditCheckpointer {
  /** The interval between checkpoints (ms). */
  readonly intervalMs: number;
  readonly #storeId: string;
  readonly #signer: Signer;
  readonly #anchor: AuditAnchor;
  readonly #head: () => Promise<AuditTrailHead>;
  readonly #now: () => Date;
  /** The head the anchor is known to hold (written by this checkpointer, or found already held). */
  #covered: AuditTrailHead | undefined;
  /** When a head not yet covered was first seen (ms since the epoch), while there is one. */
  #uncoveredSince: number | undefined;
  #lastCheckpoint: SignedAuditCheckpoint | undefined;
  #lastError: SmkiError | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #busy = 0;
  #closing: Promise<void> | undefined;

  /**
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for a malformed store id, a signer without a P-256
   *   public key, an anchor or head that is not one, an interval outside 100..3600000 ms or a
   *   clock that is not a function
   */
  constructor(options: AuditCheckpointerOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'is not an object');
    this.#storeId = checkStoreId(options.storeId, 'options.storeId');
    checkSigner(options.signer, 'options.signer');
    this.#signer = options.signer;
    const a = options.anchor as Partial<AuditAnchor> | null;
    if (typeof a !== 'object' || a === null || typeof a.write !== 'function' || typeof a.latest !== 'function') throw invalidArgument('options.anchor', 'is not an AuditAnchor');
    this.#anchor = options.anchor;
    if (typeof options.head !== 'function') throw invalidArgument('options.head', 'is not a function');
    this.#head = options.head;
    const ms = options.intervalMs ?? 1000;
    if (!Number.isSafeInteger(ms) || ms < 100 || ms > 3_600_000) throw invalidArgument('options.intervalMs', 'is not an integer of 100 to 3600000');
    this.intervalMs = ms;
    const now = options.now ?? (() => new Date());
    if (typeof now !== 'function') throw invalidArgument('options.now', 'is not a function');
    this.#now = now;
  }

  /** The last checkpoint this checkpointer wrote to the anchor, if any. */
  get lastCheckpoint(): SignedAuditCheckpoint | undefined {
    return this.#lastCheckpoint;
  }

  /** The error of the last attempt, while it is the last one (cleared by a success). */
  get lastError(): SmkiError | undefined {
    return this.#lastError;
  }

  /**
   * Start checkpointing every `intervalMs` (idempotent). The timer does not keep the process
   * alive, and its failures are kept in {@link AuditCheckpointer.lastError}, never thrown.
   * @throws SmkiError `ERR_KEYSTORE_CLOSED` after {@link AuditCheckpointer.close}
   */
  start(): void {
    if (this.#closing !== undefined) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'the audit checkpointer is closed', {});
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (this.#busy > 0) return; // the previous one still runs (a slow anchor): no pile-up
      this.#enqueue().catch(() => {});
    }, this.intervalMs);
    this.#timer.unref();
  }

  /**
   * Checkpoint the head now if it has moved since the last checkpoint that reached the anchor.
   * Runs after any checkpoint in progress.
   * @returns the checkpoint written, or undefined when none was needed (the head has not moved,
   *   or the anchor already held one at least as high)
   * @throws SmkiError `ERR_AUDIT_ANCHOR_UNAVAILABLE` and the anchor's other errors (a signer's
   *   error that is not a `SmkiError` too); `ERR_AUDIT_TRUNCATED` / `ERR_AUDIT_TAMPERED` when the
   *   head went back before, or away from, the last checkpoint that reached the anchor;
   *   `ERR_STORE_UNAVAILABLE` when `head` fails; `ERR_INVALID_ARGUMENT` for a malformed head or a
   *   clock past the year 9999; `ERR_KEYSTORE_CLOSED` after {@link AuditCheckpointer.close}
   */
  checkpointNow(): Promise<SignedAuditCheckpoint | undefined> {
    if (this.#closing !== undefined) return Promise.reject(new SmkiError('ERR_KEYSTORE_CLOSED', 'the audit checkpointer is closed', {}));
    return this.#enqueue();
  }

  /**
   * Stop the timer and write a final checkpoint (idempotent: later calls return the same
   * promise). Rejects when the final checkpoint could not be written; the checkpointer is closed
   * either way. The anchor is not closed.
   * @throws SmkiError as {@link AuditCheckpointer.checkpointNow}
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      if (this.#timer !== undefined) clearInterval(this.#timer);
      this.#timer = undefined;
      this.#closing = this.#enqueue().then(() => undefined);
    }
    return this.#closing;
  }

  /**
   * Throw when the head has moved and no checkpoint has reached the anchor for longer than
   * `maxLagMs` since this checkpointer first saw the head uncovered. Synchronous and cheap: the
   * store calls it before each operation it records, and fails closed on it.
   * @param maxLagMs - the allowed lag (ms, default `2 * intervalMs + 5000`)
   * @throws SmkiError `ERR_AUDIT_ANCHOR_UNAVAILABLE` (the last error as the cause);
   *   `ERR_INVALID_ARGUMENT` for a negative or non-finite lag
   */
  assertHealthy(maxLagMs: number = 2 * this.intervalMs + 5000): void {
    if (typeof maxLagMs !== 'number' || !Number.isFinite(maxLagMs) || maxLagMs < 0) throw invalidArgument('maxLagMs', 'is not a finite number of 0 or more');
    if (this.#uncoveredSince === undefined) return;
    const lag = this.#now().getTime() - this.#uncoveredSince;
    if (lag > maxLagMs) {
      throw new SmkiError(
        'ERR_AUDIT_ANCHOR_UNAVAILABLE',
        `no audit checkpoint has reached the ${this.#anchor.kind} anchor for ${lag} ms since the audit head moved (at most ${maxLagMs} allowed)`,
        { detail: 'lag' },
        this.#lastError === undefined ? undefined : { cause: this.#lastError },
      );
    }
  }

  #enqueue(): Promise<SignedAuditCheckpoint | undefined> {
    this.#busy++;
    const run = this.#chain.then(
      () => this.#run(),
      () => this.#run(),
    );
    this.#chain = run.then(
      () => this.#busy--,
      () => this.#busy--,
    );
    return run;
  }

  async #run(): Promise<SignedAuditCheckpoint | undefined> {
    try {
      let head: AuditTrailHead;
      try {
        head = await this.#head();
      } catch (e) {
        throw isSmkiError(e) ? e : new SmkiError('ERR_STORE_UNAVAILABLE', 'the audit trail head could not be read', { detail: 'head' }, { cause: e });
      }
      const problem = headProblem(head?.seq, head?.hash);
      if (problem !== undefined) throw invalidArgument('head', `returned a head whose ${problem}`);
      const covered = this.#covered;
      if (covered !== undefined && covered.seq === head.seq && covered.hash === head.hash) {
        this.#lastError = undefined;
        return undefined;
      }
      const t = this.#now();
      this.#uncoveredSince ??= t.getTime();
      if (covered !== undefined && head.seq < covered.seq) {
        throw new SmkiError('ERR_AUDIT_TRUNCATED', `the audit head went back from ${covered.seq} to ${head.seq} record(s)`, { detail: `${head.seq}<${covered.seq}` });
      }
      if (covered !== undefined && head.seq === covered.seq) {
        throw new SmkiError('ERR_AUDIT_TAMPERED', `record ${head.seq} of the audit trail changed since it was checkpointed`, { detail: String(head.seq) });
      }
      const at = t.toISOString();
      if (!isIsoTime(at)) throw invalidArgument('now', 'gave a time outside 0000..9999');
      const cp = await signAuditCheckpoint({ v: 1, storeId: this.#storeId, seq: head.seq, hash: head.hash, at }, this.#signer);
      const wrote = await this.#anchor.write(cp);
      this.#covered = { seq: head.seq, hash: head.hash };
      this.#uncoveredSince = undefined;
      this.#lastError = undefined;
      if (!wrote) return undefined;
      this.#lastCheckpoint = cp;
      return cp;
    } catch (e) {
      const err = isSmkiError(e) ? e : unavailable(this.#anchor.kind, 'take a checkpoint', e);
      this.#lastError = err;
      throw err;
    }
  }
}
