// Argument checks shared by every backend. Each returns a fresh object holding only the fields
// the store uses, so a caller's object (or its getters and prototype) is read once, before
// anything is written.
import { createHash } from 'node:crypto';
import { SmkiError } from '@smki/core';
import type { Eui64 } from '@smki/core';
import type { AnomalyClaim, AnomalyWindow, CommitEntry, CounterClaim, PendingCommandInput, QuarantineInput, SequenceClaim } from '../types.js';

/** The most entries one commit takes. */
export const MAX_COMMIT_ENTRIES = 10_000;
/** The largest command a quarantine record holds. */
export const MAX_QUARANTINE_COMMAND_BYTES = 64 * 1024;
/** The longest anomaly window: 31 days. */
export const MAX_WINDOW_MS = 31 * 24 * 3600 * 1000;
/** The largest anomaly limit. */
export const MAX_ANOMALY_LIMIT = 2 ** 31 - 1;

const EUI64 = /^[0-9A-F]{16}$/;
const PENDING_KEY = /^[0-9A-F]{64}$/;
const QUARANTINE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const U64_END = 1n << 64n;

export function invalid(detail: string, message: string): SmkiError<'ERR_INVALID_ARGUMENT'> {
  return new SmkiError('ERR_INVALID_ARGUMENT', `${detail} ${message}`, { detail });
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'is not an object');
  return v as Record<string, unknown>;
}

export function eui64(v: unknown, field: string): Eui64 {
  if (typeof v !== 'string' || !EUI64.test(v)) throw invalid(field, 'is not a canonical EUI-64 (16 upper-case hex digits)');
  return v as Eui64;
}

export function u64(v: unknown, field: string): bigint {
  if (typeof v !== 'bigint' || v < 0n || v >= U64_END) throw invalid(field, 'is not a bigint counter (0 <= counter < 2^64)');
  return v;
}

export function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(field, `is not an integer from ${min} to ${max}`);
  }
  return v;
}

export function messageCode(v: unknown, field: string): number {
  return int(v, field, 0, 0xffff);
}

export function quarantineId(v: unknown, field: string): string {
  if (typeof v !== 'string' || !QUARANTINE_ID.test(v)) throw invalid(field, 'is not a quarantine id (a UUID the store gave)');
  return v;
}

/** A time in milliseconds since the epoch (0 to 2^53 - 1). */
export function epochMs(v: unknown, field: string): number {
  return int(v, field, 0, Number.MAX_SAFE_INTEGER);
}

export function checkCounterClaim(v: unknown, field: string): CounterClaim {
  const o = record(v, field);
  return { originator: eui64(o['originator'], `${field}.originator`), device: eui64(o['device'], `${field}.device`), value: u64(o['value'], `${field}.value`) };
}

export function checkSequenceClaim(v: unknown, field: string): SequenceClaim {
  const o = record(v, field);
  const owner = eui64(o['owner'], `${field}.owner`);
  const device = eui64(o['device'], `${field}.device`);
  const floor = o['floor'];
  if (typeof floor !== 'bigint' || floor < 0n || floor >= U64_END) throw invalid(`${field}.floor`, 'is not a bigint from 0 to 2^64 - 1');
  return { owner, device, floor };
}

export function checkWindow(v: unknown, field: string): AnomalyWindow {
  const o = record(v, field);
  const user = eui64(o['user'], `${field}.user`);
  const code = messageCode(o['messageCode'], `${field}.messageCode`);
  const windowMs = int(o['windowMs'], `${field}.windowMs`, 1, MAX_WINDOW_MS);
  const windowStart = epochMs(o['windowStart'], `${field}.windowStart`);
  if (windowStart % windowMs !== 0) throw invalid(`${field}.windowStart`, 'is not a multiple of windowMs');
  return { user, messageCode: code, windowStart, windowMs };
}

export function checkAnomalyClaim(v: unknown, field: string): AnomalyClaim {
  const w = checkWindow(v, field);
  const limit = int((v as Record<string, unknown>)['limit'], `${field}.limit`, 0, MAX_ANOMALY_LIMIT);
  return { ...w, limit };
}

export function checkQuarantine(v: unknown, field: string): QuarantineInput {
  const o = record(v, field);
  const command = o['command'];
  if (!(command instanceof Uint8Array) || command.length > MAX_QUARANTINE_COMMAND_BYTES) {
    throw invalid(`${field}.command`, `is not a Uint8Array of at most ${MAX_QUARANTINE_COMMAND_BYTES} bytes`);
  }
  return {
    at: epochMs(o['at'], `${field}.at`),
    user: eui64(o['user'], `${field}.user`),
    device: eui64(o['device'], `${field}.device`),
    messageCode: messageCode(o['messageCode'], `${field}.messageCode`),
    counter: u64(o['counter'], `${field}.counter`),
    command: Uint8Array.from(command),
  };
}

/** The key of a pending command: its SHA-256, 64 upper-case hex digits. */
export function pendingKey(v: unknown, field: string): string {
  if (typeof v !== 'string' || !PENDING_KEY.test(v)) throw invalid(field, 'is not a SHA-256 (64 upper-case hex digits)');
  return v;
}

/** SHA-256 of bytes, 64 upper-case hex digits. */
export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').toUpperCase();
}

export function checkPending(v: unknown, field: string): PendingCommandInput {
  const o = record(v, field);
  const command = o['command'];
  if (!(command instanceof Uint8Array) || command.length === 0 || command.length > MAX_QUARANTINE_COMMAND_BYTES) {
    throw invalid(`${field}.command`, `is not a Uint8Array of 1 to ${MAX_QUARANTINE_COMMAND_BYTES} bytes`);
  }
  const key = pendingKey(o['key'], `${field}.key`);
  const copy = Uint8Array.from(command);
  if (sha256Hex(copy) !== key) throw invalid(`${field}.key`, 'is not the SHA-256 of the command');
  return { key, device: eui64(o['device'], `${field}.device`), at: epochMs(o['at'], `${field}.at`), command: copy };
}

/**
 * Check every entry of a commit before anything is written: shapes, ranges, a quarantine record
 * wherever an anomaly limit may hold a command back, no quarantine id twice, a sequence neither
 * with a release nor on the entry's own counter's pair.
 */
export function checkEntries(entries: unknown): CommitEntry[] {
  if (!Array.isArray(entries)) throw invalid('entries', 'is not an array');
  if (entries.length > MAX_COMMIT_ENTRIES) throw invalid('entries', `has more than ${MAX_COMMIT_ENTRIES} entries`);
  const out: CommitEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    const field = `entries[${i}]`;
    const o = record(entries[i], field);
    const counter = o['counter'] === undefined ? undefined : checkCounterClaim(o['counter'], `${field}.counter`);
    const anomaly = o['anomaly'] === undefined ? undefined : checkAnomalyClaim(o['anomaly'], `${field}.anomaly`);
    const quarantine = o['quarantine'] === undefined ? undefined : checkQuarantine(o['quarantine'], `${field}.quarantine`);
    const release = o['release'] === undefined ? undefined : quarantineId(o['release'], `${field}.release`);
    const sequence = o['sequence'] === undefined ? undefined : checkSequenceClaim(o['sequence'], `${field}.sequence`);
    const pending = o['pending'] === undefined ? undefined : checkPending(o['pending'], `${field}.pending`);
    if (pending && counter && pending.device !== counter.device) throw invalid(`${field}.pending.device`, "is not the entry's counter's device");
    if (anomaly && !quarantine && release === undefined) throw invalid(`${field}.quarantine`, 'is required with an anomaly limit');
    if (release !== undefined && !counter) throw invalid(`${field}.counter`, 'is required with a release (the held command advances its counter)');
    if (quarantine) {
      if (!anomaly) throw invalid(`${field}.quarantine`, 'is given without an anomaly limit that could hold the command');
      if (counter && (quarantine.user !== counter.originator || quarantine.device !== counter.device || quarantine.counter !== counter.value)) {
        throw invalid(`${field}.quarantine`, 'names another originator, device or counter than the entry');
      }
      if (quarantine.user !== anomaly.user || quarantine.messageCode !== anomaly.messageCode) {
        throw invalid(`${field}.quarantine`, 'names another user or message code than the anomaly window');
      }
    }
    if (sequence) {
      // A release is an operator's decision on a held command, never a new counter-signature.
      if (release !== undefined) throw invalid(`${field}.sequence`, 'is given with a release (a release never allocates a sequence)');
      // One series per pair: the entry's counter and its sequence would claim the same one.
      if (counter && sequence.owner === counter.originator && sequence.device === counter.device) {
        throw invalid(`${field}.sequence`, "names the entry's own counter's originator and device");
      }
    }
    out.push({
      ...(counter ? { counter } : {}),
      ...(sequence ? { sequence } : {}),
      ...(anomaly ? { anomaly } : {}),
      ...(quarantine ? { quarantine } : {}),
      ...(release !== undefined ? { release } : {}),
      ...(pending ? { pending } : {}),
    });
  }
  return out;
}

/** 16 upper-case hex digits: fixed width, so text order is numeric order. */
export function counterToHex(v: bigint): string {
  return v.toString(16).toUpperCase().padStart(16, '0');
}

const COUNTER_HEX = /^[0-9A-F]{16}$/;

/** Read a counter back; anything but 16 upper-case hex digits is corrupt state. */
export function counterFromHex(v: unknown, where: string): bigint {
  if (typeof v !== 'string' || !COUNTER_HEX.test(v)) {
    throw new SmkiError('ERR_STORE_CORRUPT', `the stored counter ${where} is not 16 upper-case hex digits`, { detail: where });
  }
  return BigInt(`0x${v}`);
}

/** Read a count back; anything but a non-negative safe integer is corrupt state. */
export function countFrom(v: unknown, where: string): number {
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^[0-9]{1,15}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new SmkiError('ERR_STORE_CORRUPT', `the stored count ${where} is not a non-negative integer`, { detail: where });
  }
  return n;
}

export function closedError(): SmkiError<'ERR_STORE_CLOSED'> {
  return new SmkiError('ERR_STORE_CLOSED', 'the state store has been closed', {});
}
