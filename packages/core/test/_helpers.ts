// Shared assertions for the core tests (not a test file: vitest only runs *.test.ts).
import { expect } from 'vitest';
import { SmkiError } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';

/** What `fn` threw; fails the test if it returned. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw, but the call returned');
}

/** What the promise returned by `fn` rejected with; fails the test if it resolved. */
export async function rejectionOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but the call resolved');
}

/**
 * Assert that `fn` throws a SmkiError with `code` (and, if given, a context containing
 * `context`). Never a RangeError or TypeError from the runtime.
 */
export function expectSmkiError(fn: () => unknown, code: SmkiErrorCode, context?: Record<string, unknown>): SmkiError {
  return checkSmkiError(thrownBy(fn), code, context);
}

/** As {@link expectSmkiError}, for a function returning a promise. */
export async function expectSmkiRejection(
  fn: () => Promise<unknown>,
  code: SmkiErrorCode,
  context?: Record<string, unknown>,
): Promise<SmkiError> {
  return checkSmkiError(await rejectionOf(fn), code, context);
}

function checkSmkiError(e: unknown, code: SmkiErrorCode, context?: Record<string, unknown>): SmkiError {
  if (!(e instanceof SmkiError)) {
    throw new Error(`expected SmkiError ${code}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  expect(e.code).toBe(code);
  expect(e.name).toBe('SmkiError');
  if (context) expect(e.context).toMatchObject(context);
  return e;
}

/** Bytes from a hex string with optional spaces (test data only). */
export function h(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
}
