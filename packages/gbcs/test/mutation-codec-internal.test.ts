// docs/domain.md §3 (GBCS message layout) and docs/conventions.md "Inputs" (bad input gets a
// SmkiError with the offset, never another exception type): whatever a reader inside the parser
// throws, parseMessage reports ERR_GBCS_MALFORMED, with the inner offset when the inner error has
// one (else 0) and the inner error as cause. Today the readers only throw ERR_BYTES_TRUNCATED with
// an offset; this file makes the EUI-64 reader throw the other kinds, so the fallback is tested.
// A file of its own because it replaces @smki/core's eui64FromBytes for everything it imports.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SmkiError } from '@smki/core';
import { buildMessage, parseMessage } from '../src/codec.js';

const inject = vi.hoisted(() => ({ error: undefined as unknown }));

vi.mock('@smki/core', async (importOriginal) => {
  const real = await importOriginal<typeof import('@smki/core')>();
  return {
    ...real,
    eui64FromBytes: (bytes: Uint8Array) => {
      if (inject.error !== undefined) throw inject.error;
      return real.eui64FromBytes(bytes);
    },
  };
});

afterEach(() => {
  inject.error = undefined;
});

const bytes = buildMessage({ cra: 'command', originatorCounter: 1n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x50, payload: Uint8Array.of(1) });

function parseError(): SmkiError {
  try {
    parseMessage(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(SmkiError);
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}

describe('parseMessage wraps whatever an inner reader throws', () => {
  it('parses normally when nothing is injected', () => {
    expect(parseMessage(bytes).originator).toBe('90B3D51F30010000');
  });

  it.each<[string, unknown, number]>([
    ['a TypeError', new TypeError('boom'), 0],
    ['a thrown string', 'boom', 0],
    ['a SmkiError without an offset', new SmkiError('ERR_EUI64_INVALID', 'bad', { input: 'x' }), 0],
    ['a SmkiError with a non-numeric offset', new SmkiError('ERR_BYTES_TRUNCATED', 'bad', { offset: '5' as unknown as number, needed: 1, available: 0 }), 0],
    ['a SmkiError with an offset', new SmkiError('ERR_BYTES_TRUNCATED', 'bad', { offset: 17, needed: 1, available: 0 }), 17],
  ])('%s → ERR_GBCS_MALFORMED with the inner offset or 0', (_name, error, offset) => {
    inject.error = error;
    const e = parseError();
    expect({ code: e.code, context: e.context }).toEqual({ code: 'ERR_GBCS_MALFORMED', context: { offset } });
    expect(e.cause).toBe(error);
  });

  it('an ERR_GBCS_MALFORMED from inside passes through as it is', () => {
    const inner = new SmkiError('ERR_GBCS_MALFORMED', 'inner', { offset: 12 });
    inject.error = inner;
    expect(parseError()).toBe(inner);
  });
});
