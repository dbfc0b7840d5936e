import { fromHex, toHex } from './bytes.js';
import { SmkiError } from './errors.js';

declare const eui64Brand: unique symbol;

/**
 * A canonical EUI-64: 16 upper-case hexadecimal characters, e.g. `00DB1234567890A0`.
 * Only {@link parseEui64} and {@link eui64FromBytes} make one.
 */
export type Eui64 = string & {
  /** Type-level brand: a plain string is not an `Eui64`. */
  readonly [eui64Brand]: true;
};

const COMPACT = /^[0-9A-Fa-f]{16}$/;
const SEPARATED = /^[0-9A-Fa-f]{2}([- :])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){6}$/;

/**
 * Parse an EUI-64 in one of the usual spellings to its canonical form.
 *
 * Accepted: 16 hex digits (`00DB1234567890A0`, any case), or eight pairs separated by one kind of
 * separator: `-`, `:` or a single space (`00-DB-12-34-56-78-90-A0`). Nothing else: no surrounding
 * white space, no `0x`, no mixed separators.
 *
 * @throws SmkiError `ERR_EUI64_INVALID`
 * @see docs/domain.md §2 (x500UniqueIdentifier, hwSerialNum)
 * @example
 * ```ts
 * import { parseEui64 } from '@smki/core';
 * parseEui64('00-db-12-34-56-78-90-a0'); // '00DB1234567890A0'
 * ```
 */
export function parseEui64(input: string): Eui64 {
  if (typeof input === 'string' && input.length <= 23) {
    if (COMPACT.test(input)) return input.toUpperCase() as Eui64;
    if (SEPARATED.test(input)) return input.replace(/[- :]/g, '').toUpperCase() as Eui64;
  }
  const shown = typeof input === 'string' ? input.slice(0, 64) : typeof input;
  throw new SmkiError('ERR_EUI64_INVALID', `not an EUI-64: ${JSON.stringify(shown)}`, { input: shown });
}

/** Whether `input` is an EUI-64 in an accepted spelling. */
export function isEui64(input: unknown): boolean {
  try {
    parseEui64(input as string);
    return true;
  } catch {
    return false;
  }
}

/**
 * The EUI-64 held in 8 bytes (as in hwSerialNum, x500UniqueIdentifier and GBCS system titles).
 * @throws SmkiError `ERR_EUI64_INVALID` if `bytes` is not 8 bytes long
 */
export function eui64FromBytes(bytes: Uint8Array): Eui64 {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 8) {
    throw new SmkiError('ERR_EUI64_INVALID', 'an EUI-64 is 8 bytes', { input: `<${bytes?.length ?? 0} bytes>` });
  }
  return toHex(bytes) as Eui64;
}

/** The 8 bytes of an EUI-64. */
export function eui64ToBytes(eui: Eui64): Uint8Array {
  return fromHex(parseEui64(eui));
}
