// docs/conventions.md, Errors: one error class with stable string codes, a typed context per code and
// `cause`; callers switch on `code`, never on message text.
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64, SmkiError } from '@smki/core';
import { thrownBy } from './_helpers.js';

describe('SmkiError', () => {
  it('is an Error with name, code, message and context', () => {
    const e = new SmkiError('ERR_DER_INVALID', 'bad tag', { offset: 3 });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(SmkiError);
    expect(e.name).toBe('SmkiError');
    expect(e.code).toBe('ERR_DER_INVALID');
    expect(e.message).toBe('bad tag');
    expect(e.context).toEqual({ offset: 3 });
    expect(e.stack).toContain('SmkiError');
  });

  it('carries a cause when given one, and has no cause property otherwise', () => {
    const root = new TypeError('underlying');
    const withCause = new SmkiError('ERR_KEY_INVALID', 'not a key', {}, { cause: root });
    expect(withCause.cause).toBe(root);
    const without = new SmkiError('ERR_KEY_INVALID', 'not a key', {});
    expect('cause' in without).toBe(false);
    const undefinedCause = new SmkiError('ERR_KEY_INVALID', 'not a key', {}, { cause: undefined });
    expect('cause' in undefinedCause).toBe(false);
  });

  it('keeps the code when thrown by the library (callers switch on code)', () => {
    const e = thrownBy(() => parseEui64('nope'));
    expect(isSmkiError(e)).toBe(true);
    expect(isSmkiError(e, 'ERR_EUI64_INVALID')).toBe(true);
    if (isSmkiError(e, 'ERR_EUI64_INVALID')) expect(e.context.input).toBe('nope');
  });
});

describe('isSmkiError', () => {
  const e = new SmkiError('ERR_HEX_INVALID', 'x', {});
  it('matches the class, and the code when one is given', () => {
    expect(isSmkiError(e)).toBe(true);
    expect(isSmkiError(e, 'ERR_HEX_INVALID')).toBe(true);
  });

  it.each([
    ['another code', e, 'ERR_BASE64_INVALID'],
    ['a plain Error', new Error('ERR_HEX_INVALID'), undefined],
    ['a look-alike object', { name: 'SmkiError', code: 'ERR_HEX_INVALID', message: 'x', context: {} }, undefined],
    ['an Error with a code property', Object.assign(new Error('x'), { code: 'ERR_HEX_INVALID' }), 'ERR_HEX_INVALID'],
    ['a string', 'ERR_HEX_INVALID', undefined],
    ['null', null, undefined],
    ['undefined', undefined, undefined],
  ] as const)('rejects %s', (_name, value, code) => {
    expect(isSmkiError(value, code as never)).toBe(false);
  });
});
