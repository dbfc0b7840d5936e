// Type-level: the organisation's DUIS XML signing key (Remote Party Role 135, docs/domain.md §2) is
// a purpose of its own. Its handle is neither a signing handle for meters nor a key-agreement
// handle, and the reverse: passing one where the other is wanted is a compile error (the store
// refuses it again at run time). Run in vitest's typecheck mode.
import { describe, expectTypeOf, test } from 'vitest';
import type { Signer } from '@smki/core';
import type { KeyAgreementKeyHandle, KeyStore, SigningKeyHandle, XmlSigner, XmlSigningKeyHandle } from '@smki/keystore';

declare const store: KeyStore;
declare const xml: XmlSigningKeyHandle;
declare const ds: SigningKeyHandle;
const data = new Uint8Array(1);

describe('an xmlSigning handle is a type of its own', () => {
  test('generateKey with xmlSigning returns an XmlSigningKeyHandle', () => {
    expectTypeOf(store.generateKey('90B3D51F30010000', 'p', 'xmlSigning')).resolves.toEqualTypeOf<XmlSigningKeyHandle>();
  });

  test('an xmlSigning handle is not a SigningKeyHandle, and a SigningKeyHandle is not an xmlSigning handle', () => {
    expectTypeOf<XmlSigningKeyHandle>().not.toExtend<SigningKeyHandle>();
    expectTypeOf<SigningKeyHandle>().not.toExtend<XmlSigningKeyHandle>();
    // @ts-expect-error an xmlSigning handle never signs for a meter
    void store.signWith(xml, '00DB1234567890A0', data);
    // @ts-expect-error a meter signing handle is not an xmlSigning handle
    const asXml: XmlSigningKeyHandle = ds;
    void asXml;
  });

  test('an xmlSigning handle is not a key-agreement handle', () => {
    expectTypeOf<XmlSigningKeyHandle>().not.toExtend<KeyAgreementKeyHandle>();
    // @ts-expect-error an xmlSigning handle never agrees a key
    void store.keyAgreementWith(xml, '00DB1234567890A0');
  });

  test('xmlSigning is not a key-agreement purpose', () => {
    // @ts-expect-error keyAgreementFor takes only key-agreement purposes
    void store.keyAgreementFor('00DB1234567890A0', { purpose: 'xmlSigning' });
  });

  test('the XML signer is a core Signer with its key id and certificate', () => {
    expectTypeOf(store.xmlSigner('90B3D51F30010000')).resolves.toEqualTypeOf<XmlSigner>();
    expectTypeOf<XmlSigner>().toExtend<Signer>();
    expectTypeOf<XmlSigner['certificate']>().toEqualTypeOf<Uint8Array>();
    expectTypeOf<XmlSigner['keyId']>().toEqualTypeOf<string>();
  });
});
