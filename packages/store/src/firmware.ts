import { SmkiError } from '@smki/core';
import { invalid } from './internal/check.js';

/**
 * What the allowlist says of a firmware image for a device model.
 * - `approved`: on the list (the DCC's Central Products List, here kept by the operator).
 * - `revoked`: was approved, then withdrawn (a vulnerability was announced). Final: a revoked
 *   image is never approved again by {@link FirmwareAllowlist.approve}.
 * - `unknown`: never approved for this model.
 */
export type FirmwareStatus = 'approved' | 'revoked' | 'unknown';

/** One image of the allowlist. */
export interface FirmwareImage {
  /** The device model (as in {@link DeviceRecord.model}). */
  readonly model: string;
  /** The manufacturer image hash the activation command names: 64 upper-case hex digits (32 octets). */
  readonly imageHash: string;
  /** `approved` or `revoked`. */
  readonly state: 'approved' | 'revoked';
  /** When it was approved (milliseconds since the epoch); absent for an image revoked before any approval. */
  readonly approvedAt?: number;
  /** When it was revoked, if it was. */
  readonly revokedAt?: number;
  /** Why it was revoked (at most 256 characters), if given. */
  readonly reason?: string;
}

/** The most images one call approves. */
export const MAX_FIRMWARE_BATCH = 10_000;

/**
 * The firmware images each device model may activate (GBCS CS06 names the image by its 32-byte
 * hash), updated at run time and shared by every validator process. Implementations:
 * {@link MemoryFirmwareAllowlist}, {@link SqliteFirmwareAllowlist}, {@link PostgresFirmwareAllowlist}.
 *
 * Security: revocation is final. Once a vulnerability is announced for an image, approving it
 * again (say, by replaying an old approval script) leaves it revoked; a new image is a new hash.
 * A stored entry out of shape is `ERR_STORE_CORRUPT`, never an approval.
 * @see docs/store.md
 */
export interface FirmwareAllowlist {
  /** Which implementation this is. */
  readonly backend: 'memory' | 'sqlite' | 'postgres';
  /**
   * What the list says of `imageHash` for `model`.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   */
  status(model: string, imageHash: Uint8Array | string): Promise<FirmwareStatus>;
  /**
   * Approve images (at most {@link MAX_FIRMWARE_BATCH}), all in one transaction. Returns, per
   * image, `approved` (newly), `already` (was approved) or `revoked` (left revoked).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`
   */
  approve(images: readonly { readonly model: string; readonly imageHash: Uint8Array | string }[], at: number): Promise<('approved' | 'already' | 'revoked')[]>;
  /**
   * Revoke an image for a model (recorded even if it was never approved, so that it never can be).
   * Returns `false` if it was revoked already.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`
   */
  revoke(model: string, imageHash: Uint8Array | string, at: number, reason?: string): Promise<boolean>;
  /**
   * The images of a model (or of every model), sorted by model and hash, at most `limit` (default 10000).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   */
  list(model?: string, limit?: number): Promise<FirmwareImage[]>;
  /** Close; later calls throw `ERR_STORE_CLOSED`. Idempotent. */
  close(): Promise<void>;
}

const MODEL = /^[A-Za-z0-9._:-]{1,64}$/;
const HASH = /^[0-9A-F]{64}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function checkModel(v: unknown, field: string): string {
  if (typeof v !== 'string' || !MODEL.test(v)) throw invalid(field, 'is not 1 to 64 characters of [A-Za-z0-9._:-]');
  return v;
}

/** A 32-byte image hash, as bytes or 64 hex digits (either case), to upper-case hex. */
export function checkImageHash(v: unknown, field: string): string {
  if (v instanceof Uint8Array && v.length === 32) return Buffer.from(v).toString('hex').toUpperCase();
  if (typeof v === 'string' && /^[0-9A-Fa-f]{64}$/.test(v)) return v.toUpperCase();
  throw invalid(field, 'is not a 32-byte image hash (bytes or 64 hex digits)');
}

export function checkReason(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > 256 || CONTROL.test(v)) throw invalid(field, 'is not text of at most 256 characters without control characters');
  return v;
}

/** Check a batch of images: shapes, and no image twice. */
export function checkImages(v: unknown, field: string): { model: string; imageHash: string }[] {
  if (!Array.isArray(v) || v.length > MAX_FIRMWARE_BATCH) throw invalid(field, `is not a list of at most ${MAX_FIRMWARE_BATCH} images`);
  const seen = new Set<string>();
  return v.map((x, i) => {
    if (typeof x !== 'object' || x === null) throw invalid(`${field}[${i}]`, 'is not an object');
    const o = x as Record<string, unknown>;
    const image = { model: checkModel(o['model'], `${field}[${i}].model`), imageHash: checkImageHash(o['imageHash'], `${field}[${i}].imageHash`) };
    const k = `${image.model}/${image.imageHash}`;
    if (seen.has(k)) throw invalid(`${field}[${i}]`, 'appears twice in one call');
    seen.add(k);
    return image;
  });
}

/** Order of {@link FirmwareAllowlist.list}: by model, then hash (byte order, as the databases sort). */
export function compareImages(a: FirmwareImage, b: FirmwareImage): number {
  if (a.model !== b.model) return a.model < b.model ? -1 : 1;
  return a.imageHash < b.imageHash ? -1 : a.imageHash > b.imageHash ? 1 : 0;
}

/** The outcome of approving each image, given what the list holds: the rows to insert go in `insert`. */
export function approvals(
  list: readonly { model: string; imageHash: string }[],
  stateOf: (model: string, imageHash: string) => 'approved' | 'revoked' | undefined,
): { results: ('approved' | 'already' | 'revoked')[]; insert: { model: string; imageHash: string }[] } {
  const insert: { model: string; imageHash: string }[] = [];
  const results = list.map((image) => {
    const state = stateOf(image.model, image.imageHash);
    if (state === 'revoked') return 'revoked' as const;
    if (state === 'approved') return 'already' as const;
    insert.push(image);
    return 'approved' as const;
  });
  return { results, insert };
}

/** A stored row as SQLite and PostgreSQL return it. */
export interface FirmwareRow {
  readonly model: unknown;
  readonly image_hash: unknown;
  readonly state: unknown;
  readonly approved_at: unknown;
  readonly revoked_at: unknown;
  readonly reason: unknown;
}

function corrupt(where: string): never {
  throw new SmkiError('ERR_STORE_CORRUPT', `the stored firmware entry ${where} is not valid`, { detail: `firmware ${where}` });
}

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'string' && /^[0-9]{1,16}$/.test(v) ? Number(v) : typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

/** Read a stored row back; anything out of shape is ERR_STORE_CORRUPT. */
export function firmwareFromRow(row: FirmwareRow): FirmwareImage {
  const where = `${String(row.model)}/${String(row.image_hash)}`.slice(0, 100);
  if (typeof row.model !== 'string' || !MODEL.test(row.model) || typeof row.image_hash !== 'string' || !HASH.test(row.image_hash)) corrupt(where);
  const approvedAt = row.approved_at === null ? undefined : (num(row.approved_at) ?? corrupt(where));
  if (row.state === 'approved') {
    if (approvedAt === undefined || row.revoked_at !== null || row.reason !== null) corrupt(where);
    return { model: row.model, imageHash: row.image_hash, state: 'approved', approvedAt };
  }
  if (row.state !== 'revoked') corrupt(where);
  const revokedAt = num(row.revoked_at) ?? corrupt(where);
  if (row.reason !== null && (typeof row.reason !== 'string' || row.reason.length > 256 || CONTROL.test(row.reason))) corrupt(where);
  return {
    model: row.model,
    imageHash: row.image_hash,
    state: 'revoked',
    ...(approvedAt !== undefined ? { approvedAt } : {}),
    revokedAt,
    ...(row.reason !== null ? { reason: row.reason as string } : {}),
  };
}
