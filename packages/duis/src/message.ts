/**
 * DUIS message fields: the request id and the header, read from a parsed document.
 * @module
 */
import { SmkiError, parseEui64 } from '@smki/core';
import type { Eui64 } from '@smki/core';

/**
 * A DUIS request id: `originator:target:counter`, each EUI-64 as eight hyphenated upper-case
 * hex pairs, the counter an unsigned 64-bit decimal.
 * @see docs/domain.md §8
 */
export interface RequestId {
  /** The business originator (the User's EUI-64). */
  readonly originator: Eui64;
  /** The business target (a device's, or the DCC's, EUI-64). */
  readonly target: Eui64;
  /** The counter (milliseconds since the epoch when the DCC's tool sets it). */
  readonly counter: bigint;
}

/** Most counter: an unsigned 64-bit integer. */
const MAX_COUNTER = (1n << 64n) - 1n;

const PAIRS = '[0-9A-F]{2}(?:-[0-9A-F]{2}){7}';
const REQUEST_ID = new RegExp(`^(${PAIRS}):(${PAIRS}):(0|[1-9][0-9]{0,19})$`);

/**
 * Parse a request id.
 * @throws SmkiError `ERR_DUIS_REQUEST_ID_INVALID` (not the form, or a counter over 2^64 - 1)
 * @see docs/domain.md §8
 * @example
 * ```ts
 * import { parseRequestId } from '@smki/duis';
 * const id = parseRequestId('90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000');
 * console.log(id.originator, id.target, id.counter); // 90B3D51F30010000 00DB1234567890A0 1000n
 * ```
 */
export function parseRequestId(text: string): RequestId {
  const m = typeof text === 'string' ? REQUEST_ID.exec(text) : null;
  if (m === null) {
    throw new SmkiError('ERR_DUIS_REQUEST_ID_INVALID', 'a request id is originator:target:counter, each EUI-64 as eight hyphenated upper-case hex pairs and the counter in decimal', {
      detail: typeof text === 'string' ? text.slice(0, 80) : typeof text,
    });
  }
  const counter = BigInt(m[3] as string);
  if (counter > MAX_COUNTER) throw new SmkiError('ERR_DUIS_REQUEST_ID_INVALID', 'the request id counter is over 2^64 - 1', { detail: m[3] as string });
  return { originator: parseEui64(m[1] as string), target: parseEui64(m[2] as string), counter };
}

/**
 * Write a request id.
 * @throws SmkiError `ERR_EUI64_INVALID`, `ERR_DUIS_REQUEST_ID_INVALID` (a counter that is not a bigint in 0..2^64 - 1)
 * @see docs/domain.md §8
 * @example
 * ```ts
 * import { parseEui64 } from '@smki/core';
 * import { formatRequestId } from '@smki/duis';
 * formatRequestId({ originator: parseEui64('90B3D51F30010000'), target: parseEui64('00DB1234567890A0'), counter: 1000n });
 * // '90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000'
 * ```
 */
export function formatRequestId(id: RequestId): string {
  if (typeof id?.counter !== 'bigint' || id.counter < 0n || id.counter > MAX_COUNTER) {
    throw new SmkiError('ERR_DUIS_REQUEST_ID_INVALID', 'the counter must be a bigint in 0..2^64 - 1', { detail: String(id?.counter) });
  }
  const pairs = (e: string) => parseEui64(e).match(/../g)!.join('-');
  return `${pairs(id.originator)}:${pairs(id.target)}:${id.counter.toString(10)}`;
}
