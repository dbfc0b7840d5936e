// Type-level: "a KA key used to sign or a DS key used for key agreement ... are also compile errors:
// key handles are branded by purpose". These run in vitest's typecheck mode; a @ts-expect-error
// that stops erroring fails the test.
import { describe, expectTypeOf, test } from 'vitest';
import type { KeyAgreement, Signer } from '@smki/core';
import type { KeyAgreementKeyHandle, KeyHandle, KeyStore, SigningKeyHandle } from '@smki/keystore';

declare const store: KeyStore;
declare const ds: SigningKeyHandle;
declare const ka: KeyAgreementKeyHandle;
declare const anyKey: KeyHandle;
const data = new Uint8Array(1);

describe('key handles are branded by purpose', () => {
  test('a key-agreement handle cannot sign', () => {
    // @ts-expect-error a KA handle is not a SigningKeyHandle
    void store.signWith(ka, '00DB1234567890A0', data);
    // @ts-expect-error nor is a handle of unknown purpose
    void store.signWith(anyKey, '00DB1234567890A0', data);
    void store.signWith(ds, '00DB1234567890A0', data);
  });

  test('a signing handle cannot do key agreement', () => {
    // @ts-expect-error a DS handle is not a KeyAgreementKeyHandle
    void store.keyAgreementWith(ds, '00DB1234567890A0');
    void store.keyAgreementWith(ka, '00DB1234567890A0');
  });

  test('a plain object with the right fields is not a handle (only the store makes them)', () => {
    // @ts-expect-error the brand is missing
    const forged: SigningKeyHandle = { keyId: 'x', purpose: 'signing' };
    void forged;
  });

  test('generateKey returns the handle type of the purpose asked for', () => {
    expectTypeOf(store.generateKey('90B3D51F30010000', 'p', 'signing')).resolves.toEqualTypeOf<SigningKeyHandle>();
    expectTypeOf(store.generateKey('90B3D51F30010000', 'p', 'keyAgreement')).resolves.toEqualTypeOf<KeyAgreementKeyHandle>();
    expectTypeOf(store.generateKey('90B3D51F30010000', 'p', 'prepaymentKeyAgreement')).resolves.toEqualTypeOf<KeyAgreementKeyHandle>();
  });

  test('what the store hands out for a meter: a KeyAgreement is not a Signer', () => {
    expectTypeOf(store.keyAgreementFor('00DB1234567890A0')).resolves.toEqualTypeOf<KeyAgreement>();
    expectTypeOf<KeyAgreement>().not.toExtend<Signer>();
  });
});
