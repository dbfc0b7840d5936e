// docs/domain.md §2 (EUI-64 entity ids), docs/conventions.md (Signer and KeyAgreement): type-level guarantees.
// These run in vitest's typecheck mode; a @ts-expect-error that stops erroring fails the test.
import { describe, expectTypeOf, test } from 'vitest';
import type { KeyObject } from 'node:crypto';
import { parseEui64, eui64FromBytes } from '@smki/core';
import type { Eui64, KeyAgreement, Signer, SmkiError, SmkiErrorContext } from '@smki/core';

describe('Eui64 is a branded string', () => {
  test('a plain string is not an Eui64', () => {
    expectTypeOf<string>().not.toEqualTypeOf<Eui64>();
    expectTypeOf<string>().not.toExtend<Eui64>();
    // @ts-expect-error a string literal is not an Eui64 until parsed
    const bad: Eui64 = '00DB1234567890A0';
    void bad;
  });

  test('the parser and eui64FromBytes are the ways to get one', () => {
    expectTypeOf(parseEui64).returns.toEqualTypeOf<Eui64>();
    expectTypeOf(eui64FromBytes).returns.toEqualTypeOf<Eui64>();
    expectTypeOf(parseEui64).parameter(0).toEqualTypeOf<string>();
  });

  test('an Eui64 is still usable as a string', () => {
    expectTypeOf<Eui64>().toExtend<string>();
  });
});

describe('a key-agreement key is not a signing key', () => {
  test('KeyAgreement is not assignable to Signer', () => {
    expectTypeOf<KeyAgreement>().not.toExtend<Signer>();
    const wantsSigner = (s: Signer): Signer => s;
    const ka = {} as KeyAgreement;
    // @ts-expect-error a KeyAgreement has no sign()
    wantsSigner(ka);
  });

  test('Signer is not assignable to KeyAgreement', () => {
    expectTypeOf<Signer>().not.toExtend<KeyAgreement>();
    const wantsKa = (k: KeyAgreement): KeyAgreement => k;
    const s = {} as Signer;
    // @ts-expect-error a Signer has no deriveSharedSecret()
    wantsKa(s);
  });

  test('the interface shapes', () => {
    expectTypeOf<Signer['sign']>().returns.toEqualTypeOf<Promise<Uint8Array>>();
    expectTypeOf<KeyAgreement['deriveSharedSecret']>().parameter(0).toEqualTypeOf<Uint8Array | KeyObject>();
  });
});

describe('error context is typed per code', () => {
  test('ERR_EUI64_INVALID carries the input; ERR_BYTES_TRUNCATED the offset', () => {
    expectTypeOf<SmkiErrorContext<'ERR_EUI64_INVALID'>>().toEqualTypeOf<{ readonly input: string }>();
    expectTypeOf<SmkiError<'ERR_BYTES_TRUNCATED'>['context']['offset']>().toEqualTypeOf<number>();
    // @ts-expect-error not a code
    type Nope = SmkiErrorContext<'ERR_NOT_A_CODE'>;
  });
});
