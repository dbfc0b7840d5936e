// What crosses between the main thread and the use worker: its start data, the messages each way,
// errors (as stable SmkiErrors), and use events packed into one string (a batch's events are
// mostly short strings; a string crosses threads in one copy, where objects are cloned one by
// one, field by field).
import { isSmkiError } from '@smki/core';
import type { AuditEvent } from '../../audit.js';
import type { DriverSpec, Row } from './driver.js';

/** What the thread is started with. */
export interface UseWorkerData {
  readonly spec: DriverSpec;
  readonly storeId: string;
  readonly rowKey: Uint8Array;
  readonly macKey: Uint8Array;
  /** The audit key, PKCS#8 DER. */
  readonly auditKey: Uint8Array;
  readonly auditPublicKey: Uint8Array;
  /** Whether the main thread has a fault hook (crash tests): then `db:use-before-commit` waits for it. */
  readonly faults: boolean;
  /** One Int32 the fault handshake waits on (0 waiting, 1 go on, 2 the hook threw). */
  readonly faultFlag: SharedArrayBuffer;
}

/** An error as it crosses the thread boundary. */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly context: unknown;
}

/** Messages to the thread. */
export type ToWorker =
  | { readonly type: 'batch'; readonly id: number; readonly at: string; readonly packed: string }
  | { readonly type: 'batch'; readonly id: number; readonly at: string; readonly uses: readonly AuditEvent[] }
  | { readonly type: 'close' };

/**
 * Messages from the thread. `done`: the refusals of the uses of batches `ids` (`sizes` uses each),
 * in order, all committed in one transaction; the key rows it read that changed since the thread
 * last sent them; the keys it found unusable; each organisation's whole-estate portfolios it read
 * (all verified); whether the store is under access control.
 */
export type FromWorker =
  | {
      readonly type: 'done';
      readonly ids: readonly number[];
      readonly sizes: readonly number[];
      readonly refused: readonly (WireError | null)[];
      readonly keys: readonly Row[];
      readonly unusable: readonly string[];
      readonly estates: readonly (readonly [string, readonly Row[]])[];
      readonly controlled: boolean;
    }
  | { readonly type: 'failed'; readonly ids: readonly number[]; readonly error: WireError }
  | { readonly type: 'fault'; readonly point: string }
  | { readonly type: 'closed' };

/** Any error as a stable SmkiError on the wire (an unexpected one as the store being unavailable). */
export function toWire(e: unknown): WireError {
  if (isSmkiError(e)) return { code: e.code, message: e.message, context: e.context };
  return { code: 'ERR_STORE_UNAVAILABLE', message: `the use batch failed: ${e instanceof Error ? e.message : String(e)}; nothing was recorded`, context: { detail: 'use worker' } };
}

const RS = '\x1e';
const US = '\x1f';
/** Anything in a string value that the packing could confuse with its separators. */
const CONTROL = /[\x00-\x1f]/;

/**
 * Events packed as `name US tag value US … RS` per event (tag `s` string, `n` number, `b`
 * bigint); undefined when a value is of another type or a string holds a control character (the
 * batch is then sent as objects).
 */
export function packUses(uses: readonly AuditEvent[]): string | undefined {
  let s = '';
  for (const e of uses) {
    const o = e as unknown as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const v = o[k];
      if (v === undefined) continue;
      if (CONTROL.test(k)) return undefined;
      if (typeof v === 'string') {
        if (CONTROL.test(v)) return undefined;
        s += `${k}${US}s${v}${US}`;
      } else if (typeof v === 'number') s += `${k}${US}n${String(v)}${US}`;
      else if (typeof v === 'bigint') s += `${k}${US}b${v.toString()}${US}`;
      else return undefined;
    }
    s += RS;
  }
  return s;
}

/** The events of {@link packUses}, field by field as they were (order kept). */
export function unpackUses(packed: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  const records = packed.split(RS);
  // The last piece is what follows the last separator: empty.
  for (let r = 0; r < records.length - 1; r++) {
    const f = (records[r] as string).split(US);
    const e: Record<string, unknown> = {};
    for (let i = 0; i + 1 < f.length; i += 2) {
      const v = f[i + 1] as string;
      const x = v.slice(1);
      e[f[i] as string] = v[0] === 's' ? x : v[0] === 'n' ? Number(x) : BigInt(x);
    }
    out.push(e as unknown as AuditEvent);
  }
  return out;
}
