// RFC 5480 §2.1.1 (ECParameters: "implicitCurve and specifiedCurve MUST NOT be used"; the named
// curve only), §2.2 (the subjectPublicKey is an ECPoint); SEC 1 v2 §2.3.3 (point forms); X.690 §10
// (DER). A key that gives P-256 by explicit parameters is refused even when the parameters are
// P-256's own, in every form core takes: SPKI DER, PEM, and a KeyObject node made elsewhere
// (checked once by its exported SPKI, then remembered).
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createKeyAgreement, createKeySigner, derToPem, publicKeyToRaw, toHex, toPrivateKey, toPublicKey, verifyDer, verifyP1363, p1363ToDer } from '@smki/core';
import { expectSmkiError, expectSmkiRejection } from './_helpers.js';
import { ecdhSpki, hex } from './_wycheproof.js';

const vectors = ecdhSpki().testGroups[0]!.tests;
const byId = (id: number) => vectors.find((t) => t.tcId === id)!;
/** Wycheproof ECDH tcId 359 and 361: explicit parameters equal to P-256's (no cofactor; cofactor n). */
const explicit359 = hex(byId(359).public);
const explicit361 = hex(byId(361).public);
/** tcId 2: a compressed point under the named curve. */
const compressed = hex(byId(2).public);
const named = hex(byId(1).public);

/** DER TLV with a definite length. */
function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return new Uint8Array([tag, ...len, ...body]);
}

/** The AlgorithmIdentifier (id-ecPublicKey with explicit parameters) of an SPKI. */
function algorithmOf(spki: Uint8Array): Uint8Array {
  const outerHeader = spki[1]! & 0x80 ? 2 + (spki[1]! & 0x7f) : 2;
  const a = spki.subarray(outerHeader);
  const algHeader = a[1]! & 0x80 ? 2 + (a[1]! & 0x7f) : 2;
  const algLen = a[1]! & 0x80 ? a.subarray(2, algHeader).reduce((v, b) => v * 256 + b, 0) : a[1]!;
  return a.subarray(0, algHeader + algLen);
}

/** A PKCS#8 private key (scalar 7) with the explicit-parameter AlgorithmIdentifier of `spki`. */
function explicitPkcs8(spki: Uint8Array): Uint8Array {
  const d = new Uint8Array(32);
  d[31] = 7;
  const ecPrivateKey = tlv(0x30, new Uint8Array([0x02, 0x01, 0x01]), tlv(0x04, d));
  return tlv(0x30, new Uint8Array([0x02, 0x01, 0x00]), algorithmOf(spki), tlv(0x04, ecPrivateKey));
}

/** Count calls of `export` on public and private KeyObjects (node defines it on the subclasses' prototypes). */
function countExports(): () => number {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = vi.spyOn(Object.getPrototypeOf(pair.publicKey) as KeyObject, 'export');
  const priv = vi.spyOn(Object.getPrototypeOf(pair.privateKey) as KeyObject, 'export');
  return () => pub.mock.calls.length + priv.mock.calls.length;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('explicit curve parameters equal to P-256 (Wycheproof ECDH tcId 359, 361) → ERR_KEY_CURVE_UNSUPPORTED', () => {
  it.each([
    ['tcId 359 (no cofactor)', explicit359],
    ['tcId 361 (cofactor = n)', explicit361],
  ])('%s: node takes it for P-256, core does not', (_name, spki) => {
    const foreign = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    expect(foreign.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expectSmkiError(() => toPublicKey(spki), 'ERR_KEY_CURVE_UNSUPPORTED'); // SPKI DER
    expectSmkiError(() => toPublicKey(derToPem(spki, 'PUBLIC KEY')), 'ERR_KEY_CURVE_UNSUPPORTED'); // PEM
    expectSmkiError(() => toPublicKey(foreign), 'ERR_KEY_CURVE_UNSUPPORTED'); // a KeyObject made elsewhere
    expectSmkiError(() => publicKeyToRaw(foreign), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('key agreement refuses such a peer in every form', async () => {
    const ka = createKeyAgreement(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const foreign = createPublicKey({ key: Buffer.from(explicit359), format: 'der', type: 'spki' });
    await expectSmkiRejection(() => ka.deriveSharedSecret(explicit359), 'ERR_KEY_CURVE_UNSUPPORTED');
    await expectSmkiRejection(() => ka.deriveSharedSecret(foreign), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('a private key with explicit parameters (PKCS#8) is refused too, as DER, PEM and KeyObject', () => {
    const der = explicitPkcs8(explicit359);
    const foreign = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    expect(foreign.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expectSmkiError(() => toPrivateKey(der), 'ERR_KEY_CURVE_UNSUPPORTED');
    expectSmkiError(() => toPrivateKey(derToPem(der, 'PRIVATE KEY')), 'ERR_KEY_CURVE_UNSUPPORTED');
    expectSmkiError(() => toPrivateKey(foreign), 'ERR_KEY_CURVE_UNSUPPORTED');
    expectSmkiError(() => createKeySigner(foreign), 'ERR_KEY_CURVE_UNSUPPORTED');
    expectSmkiError(() => toPublicKey(foreign), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('verifyP1363 and verifyDer never verify under such a key (false, never a throw)', () => {
    const der = explicitPkcs8(explicit359);
    const priv = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    const pub = createPublicKey(priv);
    const msg = new Uint8Array([1, 2, 3]);
    const sig = new Uint8Array(nodeSign('sha256', msg, { key: priv, dsaEncoding: 'ieee-p1363' }));
    expect(verifyP1363(pub, msg, sig)).toBe(false);
    expect(verifyDer(pub, msg, p1363ToDer(sig))).toBe(false);
  });
});

describe('the one SPKI encoding accepted: DER, id-ecPublicKey, namedCurve P-256, uncompressed point', () => {
  it('the named-curve form of the same point is accepted', () => {
    expect(toHex(publicKeyToRaw(toPublicKey(named)))).toBe(toHex(named.subarray(named.length - 65)));
  });

  it('a compressed point (Wycheproof tcId 2) → ERR_KEY_INVALID, as DER and as a KeyObject node made', () => {
    expectSmkiError(() => toPublicKey(compressed), 'ERR_KEY_INVALID');
    const foreign = createPublicKey({ key: Buffer.from(compressed), format: 'der', type: 'spki' });
    // Before, publicKeyToRaw took the last 65 bytes of a 59-byte export: garbage, not a point.
    expectSmkiError(() => publicKeyToRaw(foreign), 'ERR_KEY_INVALID');
  });

  it.each([
    ['implicitCurve (NULL parameters)', tlv(0x30, tlv(0x30, hex('06072a8648ce3d0201'), hex('0500')), hex('034200'), named.subarray(26)), 'ERR_KEY_CURVE_UNSUPPORTED'],
    ['secp256k1 by OID', tlv(0x30, tlv(0x30, hex('06072a8648ce3d0201'), hex('06052b8104000a')), hex('034200'), named.subarray(26)), 'ERR_KEY_CURVE_UNSUPPORTED'],
    ['no parameters', tlv(0x30, tlv(0x30, hex('06072a8648ce3d0201')), hex('034200'), named.subarray(26)), 'ERR_KEY_INVALID'],
    ['a long-form length (BER)', hex(`30815930130607${'2a8648ce3d0201'}06082a8648ce3d030107034200${toHex(named.subarray(26))}`), 'ERR_KEY_INVALID'],
    ['unused bits in the BIT STRING', hex(`3059301306072a8648ce3d020106082a8648ce3d030107034201${toHex(named.subarray(26))}`), 'ERR_KEY_INVALID'],
    ['a trailing byte', new Uint8Array([...named, 0]), 'ERR_KEY_INVALID'],
    ['id-ecDH instead of id-ecPublicKey', tlv(0x30, tlv(0x30, hex('06052b8104010c'), hex('06082a8648ce3d030107')), hex('034200'), named.subarray(26)), 'ERR_KEY_INVALID'],
  ] as const)('%s → %s', (_name, der, code) => {
    expectSmkiError(() => toPublicKey(der as Uint8Array), code);
  });
});

describe('a KeyObject made elsewhere is checked once, then remembered (the hot path does no DER work)', () => {
  it('toPublicKey exports a foreign key once; later calls, and verification, only look it up', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const exports = countExports();
    expect(toPublicKey(publicKey)).toBe(publicKey);
    expect(exports()).toBe(1);
    const msg = new Uint8Array([9]);
    const sig = new Uint8Array(nodeSign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
    for (let i = 0; i < 10; i++) {
      expect(toPublicKey(publicKey)).toBe(publicKey);
      expect(verifyP1363(publicKey, msg, sig)).toBe(true);
    }
    expect(exports()).toBe(1);
  });

  it('a private KeyObject is checked once too (toPrivateKey, and its public half for toPublicKey)', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const exports = countExports();
    const half = toPublicKey(privateKey);
    expect(toPrivateKey(privateKey)).toBe(privateKey);
    for (let i = 0; i < 10; i++) {
      expect(toPrivateKey(privateKey)).toBe(privateKey);
      expect(toPublicKey(privateKey)).toBe(half);
    }
    expect(exports()).toBe(1);
  });

  it('a refused KeyObject is refused every time (no verdict is cached for it)', () => {
    const foreign = createPublicKey({ key: Buffer.from(explicit359), format: 'der', type: 'spki' });
    for (let i = 0; i < 3; i++) expectSmkiError(() => toPublicKey(foreign), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('keys core makes from checked bytes need no export at all', () => {
    const exports = countExports();
    const k = toPublicKey(named);
    toPublicKey(k);
    verifyP1363(k, new Uint8Array(1), new Uint8Array(64));
    expect(exports()).toBe(0);
  });

  it('verifyP1363 / verifyDer under a key on another curve are false (node alone verifies secp256k1 ECDSA with 64-byte r ‖ s)', () => {
    const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const msg = new Uint8Array([1]);
    const sig = new Uint8Array(nodeSign('sha256', msg, { key: k256.privateKey, dsaEncoding: 'ieee-p1363' }));
    expect(sig.length).toBe(64);
    expect(nodeVerify('sha256', msg, { key: k256.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(verifyP1363(k256.publicKey, msg, sig)).toBe(false);
    expect(verifyDer(k256.publicKey, msg, p1363ToDer(sig))).toBe(false);
  });
});
