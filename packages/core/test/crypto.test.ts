// docs/domain.md §4 (ECDSA P-256/SHA-256 user signatures, r‖s; never reject high-S; ECDH Z = x-coordinate);
// docs/domain.md §2 (P-256 only, uncompressed points); RFC 5480 2.2 (ECPoint); SEC 1 v2 3.2.2 (public key
// validation: the point is on the curve); RFC 3279 2.2.3 / X.690 8.3 (ECDSA-Sig-Value, minimal
// positive INTEGERs); IEEE 1363 (r‖s signature form).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createKeyAgreement,
  createKeySigner,
  deriveP256SharedSecret,
  derToP1363,
  fromHex,
  isP256Point,
  p1363ToDer,
  publicKeyFromRaw,
  publicKeyToRaw,
  SmkiError,
  toHex,
  toPrivateKey,
  toPublicKey,
  verifyDer,
  verifyP1363,
} from '@smki/core';
import { expectSmkiError, expectSmkiRejection } from './_helpers.js';

/** The order of the P-256 base point (FIPS 186-4 D.1.2.3). */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = N >> 1n;

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const alice = p256();
const bob = p256();
const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
const ed = generateKeyPairSync('ed25519');
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });

const msg = new TextEncoder().encode('DF 09 remote disconnect');

const toBig = (b: Uint8Array) => BigInt('0x' + (toHex(b) || '0'));
const to32 = (v: bigint) => fromHex(v.toString(16).padStart(64, '0'));
const rOf = (sig: Uint8Array) => toBig(sig.subarray(0, 32));
const sOf = (sig: Uint8Array) => toBig(sig.subarray(32));
const withS = (sig: Uint8Array, s: bigint) => new Uint8Array([...sig.subarray(0, 32), ...to32(s)]);
const withR = (sig: Uint8Array, r: bigint) => new Uint8Array([...to32(r), ...sig.subarray(32)]);

describe('createKeySigner (docs/domain.md §4: ECDSA P-256/SHA-256, 64-byte r‖s)', () => {
  it('signs so that node:crypto verifies, in P1363 and in DER form', async () => {
    const signer = createKeySigner(alice.privateKey);
    const sig = await signer.sign(msg);
    expect(sig).toBeInstanceOf(Uint8Array);
    expect(sig).toHaveLength(64);
    expect(nodeVerify('sha256', msg, { key: alice.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(nodeVerify('sha256', msg, alice.publicKey, p1363ToDer(sig))).toBe(true);
    expect(verifyP1363(alice.publicKey, msg, sig)).toBe(true);
  });

  it('exposes the 65-byte uncompressed public key', () => {
    const signer = createKeySigner(alice.privateKey);
    expect(signer.publicKey).toHaveLength(65);
    expect(signer.publicKey[0]).toBe(0x04);
    const spki = alice.publicKey.export({ format: 'der', type: 'spki' });
    expect(toHex(signer.publicKey)).toBe(toHex(spki.subarray(spki.length - 65)));
  });

  it('signs SHA-256 of the message (not the message as a digest)', async () => {
    const sig = await createKeySigner(alice.privateKey).sign(msg);
    const digest = createHash('sha256').update(msg).digest();
    // Verifying the digest as if it were the message must fail.
    expect(verifyP1363(alice.publicKey, digest, sig)).toBe(false);
  });

  it.each([
    ['PKCS#8 PEM', () => alice.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string],
    ['SEC1 PEM', () => alice.privateKey.export({ format: 'pem', type: 'sec1' }) as string],
    ['PKCS#8 DER', () => new Uint8Array(alice.privateKey.export({ format: 'der', type: 'pkcs8' }))],
    ['SEC1 DER', () => new Uint8Array(alice.privateKey.export({ format: 'der', type: 'sec1' }))],
  ])('accepts the private key as %s', async (_name, make) => {
    const signer = createKeySigner(make());
    expect(toHex(signer.publicKey)).toBe(toHex(publicKeyToRaw(alice.publicKey)));
    expect(verifyP1363(alice.publicKey, msg, await signer.sign(msg))).toBe(true);
  });

  it('P-384 key → ERR_KEY_CURVE_UNSUPPORTED', () => {
    expectSmkiError(() => createKeySigner(p384.privateKey), 'ERR_KEY_CURVE_UNSUPPORTED');
    expectSmkiError(
      () => createKeySigner(p384.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string),
      'ERR_KEY_CURVE_UNSUPPORTED',
    );
  });

  it('secp256k1 key (same size, wrong curve) → ERR_KEY_CURVE_UNSUPPORTED', () => {
    expectSmkiError(() => createKeySigner(k256.privateKey), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it.each([
    ['an Ed25519 key', () => ed.privateKey],
    ['an RSA key', () => rsa.privateKey],
    ['a public key', () => alice.publicKey],
    ['a secret key', () => createSecretKey(new Uint8Array(32))],
    ['garbage PEM', () => '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
    ['an empty string', () => ''],
    ['garbage bytes', () => new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])],
    ['empty bytes', () => new Uint8Array(0)],
    ['a raw 32-byte scalar', () => new Uint8Array(32).fill(1)],
    ['a number', () => 42 as unknown as string],
    ['null', () => null as unknown as string],
  ])('%s → ERR_KEY_INVALID', (_name, make) => {
    expectSmkiError(() => createKeySigner(make()), 'ERR_KEY_INVALID');
  });

  // RFC 7468: text is read only under the label it carries (see pem.test.ts for every label).
  it.each([
    ['a public key PEM', () => alice.publicKey.export({ format: 'pem', type: 'spki' }) as string],
  ])('%s → ERR_PEM_INVALID', (_name, make) => {
    expectSmkiError(() => createKeySigner(make()), 'ERR_PEM_INVALID');
  });

  it('an error about a key never carries the key material', () => {
    const pem = p384.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const body = pem.split('\n')[1] as string;
    const e = expectSmkiError(() => toPrivateKey(pem), 'ERR_KEY_CURVE_UNSUPPORTED');
    const shown = `${e.message} ${JSON.stringify(e.context)} ${String(e.stack)}`;
    expect(shown).not.toContain(body.slice(0, 16));
  });
});

describe('verifyP1363 (docs/domain.md §4: never reject high-S)', () => {
  it('accepts a high-S signature (s replaced by n − s) and the low-S one', async () => {
    const sig = await createKeySigner(alice.privateKey).sign(msg);
    const flipped = withS(sig, N - sOf(sig));
    const [low, high] = sOf(sig) > HALF_N ? [flipped, sig] : [sig, flipped];
    expect(sOf(high)).toBeGreaterThan(HALF_N);
    expect(sOf(low)).toBeLessThanOrEqual(HALF_N);
    expect(verifyP1363(alice.publicKey, msg, high)).toBe(true);
    expect(verifyP1363(alice.publicKey, msg, low)).toBe(true);
    expect(verifyDer(alice.publicKey, msg, p1363ToDer(high))).toBe(true);
  });

  it('accepts a signature made by node:crypto directly', () => {
    const sig = nodeSign('sha256', msg, { key: bob.privateKey, dsaEncoding: 'ieee-p1363' });
    expect(verifyP1363(bob.publicKey, msg, new Uint8Array(sig))).toBe(true);
  });

  describe('rejects (returns false, never throws)', () => {
    const sig = new Uint8Array(nodeSign('sha256', msg, { key: alice.privateKey, dsaEncoding: 'ieee-p1363' }));
    const flipBit = (b: Uint8Array, i: number) => {
      const c = b.slice();
      c[i] = (c[i] as number) ^ 0x01;
      return c;
    };
    it.each([
      ['a bit flipped in r', () => flipBit(sig, 5)],
      ['a bit flipped in s', () => flipBit(sig, 40)],
      ['the last bit of s flipped', () => flipBit(sig, 63)],
      ['r and s swapped', () => new Uint8Array([...sig.subarray(32), ...sig.subarray(0, 32)])],
      ['r = 0', () => withR(sig, 0n)],
      ['s = 0', () => withS(sig, 0n)],
      ['r = n', () => withR(sig, N)],
      ['s = n', () => withS(sig, N)],
      ['r + n (mod 2^256)', () => withR(sig, (rOf(sig) + N) % 2n ** 256n)],
      ['s = n + s (overflows 32 bytes: truncated)', () => withS(sig, (N + sOf(sig)) % 2n ** 256n)],
      ['all zero', () => new Uint8Array(64)],
      ['all 0xFF', () => new Uint8Array(64).fill(0xff)],
      ['63 bytes', () => sig.subarray(0, 63)],
      ['65 bytes', () => new Uint8Array([...sig, 0])],
      ['empty', () => new Uint8Array(0)],
      ['the DER form', () => p1363ToDer(sig)],
    ])('%s', (_name, make) => {
      expect(verifyP1363(alice.publicKey, msg, make())).toBe(false);
    });

    it('another message', () => {
      expect(verifyP1363(alice.publicKey, new TextEncoder().encode('DF 09 remote connect'), sig)).toBe(false);
    });

    it('another key', () => {
      expect(verifyP1363(bob.publicKey, msg, sig)).toBe(false);
    });

    it('a key on another curve', () => {
      expect(verifyP1363(p384.publicKey, msg, sig)).toBe(false);
    });

    it('a non-Uint8Array signature', () => {
      expect(verifyP1363(alice.publicKey, msg, Array.from(sig) as unknown as Uint8Array)).toBe(false);
      expect(verifyP1363(alice.publicKey, msg, null as unknown as Uint8Array)).toBe(false);
    });
  });
});

describe('p1363ToDer / derToP1363 (RFC 3279 2.2.3, X.690 8.3: minimal positive INTEGERs)', () => {
  it('round-trips against node:crypto DER signatures', () => {
    for (let i = 0; i < 32; i++) {
      const der = new Uint8Array(nodeSign('sha256', msg, alice.privateKey));
      const raw = derToP1363(der);
      expect(raw).toHaveLength(64);
      expect(nodeVerify('sha256', msg, { key: alice.publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
      expect(toHex(p1363ToDer(raw))).toBe(toHex(der));
    }
  });

  it.each([
    ['small r and s', '00'.repeat(31) + '01' + '00'.repeat(31) + '02', '3006020101020102'],
    ['high bit set: a 00 pad', '80' + '00'.repeat(31) + '7F' + '00'.repeat(31), '3045022100' + '80' + '00'.repeat(31) + '0220' + '7F' + '00'.repeat(31)],
    ['leading zero bytes dropped', '0000' + '11'.repeat(30) + '00' + '22'.repeat(31), '3041021E' + '11'.repeat(30) + '021F' + '22'.repeat(31)],
    ['both 33-byte integers (the longest, 70-byte body)', 'FF'.repeat(64), '3046022100' + 'FF'.repeat(32) + '022100' + 'FF'.repeat(32)],
  ])('encodes %s exactly', (_name, raw, der) => {
    expect(toHex(p1363ToDer(fromHex(raw)))).toBe(der.toUpperCase());
    expect(toHex(derToP1363(fromHex(der)))).toBe(raw.toUpperCase());
  });

  it('round-trips random r‖s with non-zero r and s (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (raw) => {
        fc.pre(raw.subarray(0, 32).some((b) => b !== 0) && raw.subarray(32).some((b) => b !== 0));
        expect(toHex(derToP1363(p1363ToDer(raw)))).toBe(toHex(raw));
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    ['63 bytes', 63],
    ['65 bytes', 65],
    ['0 bytes', 0],
    ['72 bytes (a DER signature length)', 72],
  ])('p1363ToDer rejects %s with ERR_SIGNATURE_ENCODING', (_name, n) => {
    expectSmkiError(() => p1363ToDer(new Uint8Array(n)), 'ERR_SIGNATURE_ENCODING');
  });

  it('p1363ToDer rejects a non-Uint8Array with ERR_SIGNATURE_ENCODING', () => {
    expectSmkiError(() => p1363ToDer(new Array(64).fill(1) as unknown as Uint8Array), 'ERR_SIGNATURE_ENCODING');
  });

  const I = (hex: string) => `02${(hex.length / 2).toString(16).padStart(2, '0')}${hex}`;
  const SEQ = (body: string) => `30${(body.length / 2).toString(16).padStart(2, '0')}${body}`;
  const R = '11'.repeat(32);
  const S = '22'.repeat(32);
  it.each([
    ['empty input', ''],
    ['a SET, not a SEQUENCE', '31' + SEQ(I(R) + I(S)).slice(2)],
    ['trailing byte after the SEQUENCE', SEQ(I(R) + I(S)) + '00'],
    ['a third INTEGER', SEQ(I(R) + I(S) + I('01'))],
    ['only r', SEQ(I(R))],
    ['empty SEQUENCE', '3000'],
    ['negative r (top bit set, no 00 pad)', SEQ(I('80' + R.slice(2)) + I(S))],
    ['negative s', SEQ(I(R) + I('FF'))],
    ['non-minimal r (needless 00 pad)', SEQ(I('00' + R) + I(S))],
    ['non-minimal s (00 01)', SEQ(I(R) + I('0001'))],
    ['empty INTEGER', SEQ(I('') + I(S))],
    ['r = 0', SEQ(I('00') + I(S))],
    ['s = 0', SEQ(I(R) + I('00'))],
    ['r of 33 significant bytes', SEQ(I('01' + R) + I(S))],
    ['r of 33 bytes after a 00 pad', SEQ(I('0080' + R) + I(S))],
    ['an OCTET STRING for s', SEQ(I(R) + '0420' + S)],
    ['indefinite length SEQUENCE', '3080' + I(R) + I(S) + '0000'],
    ['non-minimal SEQUENCE length (81 44)', '3081' + '44' + I(R) + I(S)],
    ['SEQUENCE length lies (too long)', '3046' + I(R) + I(S)],
    ['SEQUENCE length lies (too short)', '3043' + I(R) + I(S)],
    ['INTEGER length lies', '3044' + '0221' + R + I(S)],
    ['truncated inside s', SEQ(I(R) + I(S)).slice(0, -2)],
    ['high tag number', '3F44' + I(R) + I(S)],
    ['the raw 64 bytes', R + S],
  ])('derToP1363 rejects %s with ERR_SIGNATURE_ENCODING', (_name, hex) => {
    const e = expectSmkiError(() => derToP1363(fromHex(hex)), 'ERR_SIGNATURE_ENCODING');
    expect(e).toBeInstanceOf(SmkiError);
  });

  it('derToP1363 never throws anything but ERR_SIGNATURE_ENCODING on random input (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          derToP1363(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(SmkiError);
          expect((e as SmkiError).code).toBe('ERR_SIGNATURE_ENCODING');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('verifyDer returns false for non-strict DER that OpenSSL might accept', async () => {
    const raw = await createKeySigner(alice.privateKey).sign(msg);
    const der = p1363ToDer(raw);
    expect(verifyDer(alice.publicKey, msg, der)).toBe(true);
    // Same r and s, BER long-form length for the SEQUENCE.
    const ber = new Uint8Array([0x30, 0x81, ...der.subarray(1)]);
    expect(verifyDer(alice.publicKey, msg, ber)).toBe(false);
    expect(verifyDer(alice.publicKey, msg, new Uint8Array([...der, 0x00]))).toBe(false);
    expect(verifyDer(alice.publicKey, msg, raw)).toBe(false);
  });
});

describe('createKeyAgreement (docs/domain.md §4 ACB MAC step 1: Z = ECDH P-256 x-coordinate)', () => {
  it('matches node diffieHellman, both ways', async () => {
    const a = createKeyAgreement(alice.privateKey);
    const b = createKeyAgreement(bob.privateKey);
    const zAB = await a.deriveSharedSecret(b.publicKey);
    const zBA = await b.deriveSharedSecret(a.publicKey);
    const nodeZ = diffieHellman({ privateKey: alice.privateKey, publicKey: bob.publicKey });
    const nodeZRev = diffieHellman({ privateKey: bob.privateKey, publicKey: alice.publicKey });
    expect(zAB).toHaveLength(32);
    expect(toHex(zAB)).toBe(toHex(nodeZ));
    expect(toHex(zBA)).toBe(toHex(nodeZRev));
    expect(toHex(zAB)).toBe(toHex(zBA));
  });

  it('accepts the peer as raw point, SPKI DER, KeyObject or private KeyObject', async () => {
    const a = createKeyAgreement(alice.privateKey);
    const expected = toHex(diffieHellman({ privateKey: alice.privateKey, publicKey: bob.publicKey }));
    const spki = new Uint8Array(bob.publicKey.export({ format: 'der', type: 'spki' }));
    for (const peer of [publicKeyToRaw(bob.publicKey), spki, bob.publicKey, bob.privateKey]) {
      expect(toHex(await a.deriveSharedSecret(peer))).toBe(expected);
    }
  });

  it('exposes the local public key', () => {
    expect(toHex(createKeyAgreement(alice.privateKey).publicKey)).toBe(toHex(publicKeyToRaw(alice.publicKey)));
  });

  it('a P-384 peer → ERR_KEY_CURVE_UNSUPPORTED', async () => {
    await expectSmkiRejection(() => createKeyAgreement(alice.privateKey).deriveSharedSecret(p384.publicKey), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('an off-curve raw peer point → ERR_KEY_INVALID (no invalid-curve attack)', async () => {
    const raw = publicKeyToRaw(bob.publicKey);
    raw[64] = (raw[64] as number) ^ 0x01;
    await expectSmkiRejection(() => createKeyAgreement(alice.privateKey).deriveSharedSecret(raw), 'ERR_KEY_INVALID');
  });

  it.each([
    ['an Ed25519 peer', () => ed.publicKey],
    ['an empty peer', () => new Uint8Array(0)],
    ['a compressed peer point (33 bytes)', () => compressed(bob.publicKey)],
    ['a 64-byte X‖Y without the 04 prefix', () => publicKeyToRaw(bob.publicKey).subarray(1)],
  ])('%s → ERR_KEY_INVALID', async (_name, make) => {
    await expectSmkiRejection(() => createKeyAgreement(alice.privateKey).deriveSharedSecret(make()), 'ERR_KEY_INVALID');
  });

  it('a P-384 private key → ERR_KEY_CURVE_UNSUPPORTED', () => {
    expectSmkiError(() => createKeyAgreement(p384.privateKey), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('a public key where the private key is wanted → ERR_KEY_INVALID', () => {
    expectSmkiError(() => createKeyAgreement(alice.publicKey), 'ERR_KEY_INVALID');
  });
});

/** P-256's field prime and b (SEC 2 v2 §2.4.2). */
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const modPow = (b: bigint, e: bigint): bigint => {
  let r = 1n;
  for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
};
/** A point on P-256 with a small x (found by trying x = 1, 2, …; p ≡ 3 mod 4, so √a = a^((p+1)/4)). */
function smallXPoint(): { x: bigint; y: bigint } {
  for (let x = 1n; ; x++) {
    const a = (((x * x * x - 3n * x + B) % P) + P) % P;
    const y = modPow(a, (P + 1n) / 4n);
    if ((y * y) % P === a) return { x, y };
  }
}
const point = (x: bigint, y: bigint) => new Uint8Array([0x04, ...to32(x), ...to32(y)]);

describe('isP256Point (SEC 1 v2 §3.2.2.1 public key validation; cofactor 1)', () => {
  const good = publicKeyToRaw(bob.publicKey);
  const { x, y } = smallXPoint();

  it('accepts real public keys and a point found by hand', () => {
    for (let i = 0; i < 20; i++) expect(isP256Point(publicKeyToRaw(p256().publicKey))).toBe(true);
    expect(isP256Point(point(x, y))).toBe(true);
    expect(isP256Point(point(x, P - y))).toBe(true); // its negative
  });

  it.each([
    ['y changed by one', () => point(toBig(good.subarray(1, 33)), toBig(good.subarray(33)) ^ 1n)],
    ['x changed by one', () => point(toBig(good.subarray(1, 33)) ^ 1n, toBig(good.subarray(33)))],
    ['x + p (on the curve modulo p, not a field element)', () => point(x + P, y)],
    ['all zero after 04', () => new Uint8Array([0x04, ...new Uint8Array(64)])],
    ['compressed (33 bytes)', () => compressed(bob.publicKey)],
    ['hybrid prefix 06', () => new Uint8Array([0x06, ...good.subarray(1)])],
    ['64 bytes without the prefix', () => good.subarray(1)],
    ['66 bytes', () => new Uint8Array([...good, 0])],
    ['empty', () => new Uint8Array(0)],
    ['not bytes', () => 'hello' as unknown as Uint8Array],
  ])('refuses %s', (_name, make) => {
    expect(isP256Point(make())).toBe(false);
  });

  it('agrees with node on random points and random 65-byte strings (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.boolean(), (body, real) => {
        const pt = real ? publicKeyToRaw(p256().publicKey) : new Uint8Array([0x04, ...body]);
        let node = true;
        try {
          publicKeyFromRaw(pt);
        } catch {
          node = false;
        }
        expect(isP256Point(pt)).toBe(node);
      }),
      { numRuns: 200 },
    );
  });
});

describe('deriveP256SharedSecret (NIST SP 800-56A §5.7.1.2: Z = x-coordinate of d·Q)', () => {
  const expected = toHex(diffieHellman({ privateKey: alice.privateKey, publicKey: bob.publicKey }));

  it('matches node diffieHellman for every form of the peer and of the private key, and again from its kept context', () => {
    const spki = new Uint8Array(bob.publicKey.export({ format: 'der', type: 'spki' }));
    const pkcs8 = new Uint8Array(alice.privateKey.export({ format: 'der', type: 'pkcs8' }));
    for (const priv of [alice.privateKey, pkcs8, alice.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string]) {
      for (const peer of [publicKeyToRaw(bob.publicKey), spki, bob.publicKey, bob.privateKey]) expect(toHex(deriveP256SharedSecret(priv, peer))).toBe(expected);
    }
    expect(toHex(deriveP256SharedSecret(alice.privateKey, publicKeyToRaw(bob.publicKey)))).toBe(expected);
  });

  it('each private key keeps its own context (two keys, interleaved)', () => {
    const other = p256();
    const peer = publicKeyToRaw(bob.publicKey);
    const z1 = toHex(deriveP256SharedSecret(other.privateKey, peer));
    expect(toHex(deriveP256SharedSecret(alice.privateKey, peer))).toBe(expected);
    expect(z1).toBe(toHex(diffieHellman({ privateKey: other.privateKey, publicKey: bob.publicKey })));
    expect(z1).not.toBe(expected);
  });

  it.each([
    ['an off-curve point', () => { const r = publicKeyToRaw(bob.publicKey); r[64] = (r[64] as number) ^ 1; return r; }],
    ['x + p, on the curve only modulo p', () => { const { x, y } = smallXPoint(); return point(x + P, y); }],
    ['a compressed point', () => compressed(bob.publicKey)],
  ])('%s → ERR_KEY_INVALID', (_name, make) => {
    expectSmkiError(() => deriveP256SharedSecret(alice.privateKey, make()), 'ERR_KEY_INVALID');
  });

  it('a P-384 private key → ERR_KEY_CURVE_UNSUPPORTED', () => {
    expectSmkiError(() => deriveP256SharedSecret(p384.privateKey, publicKeyToRaw(bob.publicKey)), 'ERR_KEY_CURVE_UNSUPPORTED');
  });
});

function compressed(pub: KeyObject): Uint8Array {
  const raw = publicKeyToRaw(pub);
  const prefix = ((raw[64] as number) & 1) === 1 ? 0x03 : 0x02;
  return new Uint8Array([prefix, ...raw.subarray(1, 33)]);
}

describe('toPublicKey / publicKeyFromRaw / publicKeyToRaw (docs/domain.md §2: P-256, uncompressed; SEC 1 3.2.2)', () => {
  const raw = publicKeyToRaw(alice.publicKey);

  it('publicKeyToRaw gives 04 ‖ X ‖ Y, also from a private key', () => {
    expect(raw).toHaveLength(65);
    expect(raw[0]).toBe(0x04);
    expect(toHex(publicKeyToRaw(alice.privateKey))).toBe(toHex(raw));
  });

  it('publicKeyFromRaw round-trips', () => {
    const key = publicKeyFromRaw(raw);
    expect(key.type).toBe('public');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(toHex(publicKeyToRaw(key))).toBe(toHex(raw));
  });

  it.each([
    ['raw point', () => raw],
    ['SPKI DER', () => new Uint8Array(alice.publicKey.export({ format: 'der', type: 'spki' }))],
    ['SPKI PEM', () => alice.publicKey.export({ format: 'pem', type: 'spki' }) as string],
    ['public KeyObject', () => alice.publicKey],
    ['private KeyObject (gives its public half)', () => alice.privateKey],
  ])('toPublicKey accepts %s', (_name, make) => {
    const key = toPublicKey(make());
    expect(key.type).toBe('public');
    expect(toHex(publicKeyToRaw(key))).toBe(toHex(raw));
  });

  it('toPublicKey refuses private key PEM: text is a public key only under the label PUBLIC KEY (RFC 7468 13)', () => {
    expectSmkiError(() => toPublicKey(alice.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), 'ERR_PEM_INVALID');
  });

  it('toPublicKey from a raw 65-byte point rejects an off-curve point with ERR_KEY_INVALID', () => {
    const bad = raw.slice();
    bad[64] = (bad[64] as number) ^ 0x01; // change Y: (X, Y′) is not on the curve
    expectSmkiError(() => toPublicKey(bad), 'ERR_KEY_INVALID');
    expectSmkiError(() => publicKeyFromRaw(bad), 'ERR_KEY_INVALID');
  });

  it.each([
    ['the point (0, 0)', () => new Uint8Array([0x04, ...new Uint8Array(64)])],
    ['X = Y = p − 1 (all FF is beyond p)', () => new Uint8Array([0x04, ...new Uint8Array(64).fill(0xff)])],
    ['X off by one', () => {
      const b = raw.slice();
      b[32] = (b[32] as number) ^ 0x01;
      return b;
    }],
  ])('toPublicKey rejects %s with ERR_KEY_INVALID', (_name, make) => {
    expectSmkiError(() => toPublicKey(make()), 'ERR_KEY_INVALID');
  });

  it.each([
    ['a compressed point (33 bytes)', () => compressed(alice.publicKey)],
    ['a hybrid-form prefix 06', () => new Uint8Array([0x06, ...raw.subarray(1)])],
    ['64 bytes without the prefix', () => raw.subarray(1)],
    ['66 bytes', () => new Uint8Array([...raw, 0])],
    ['empty', () => new Uint8Array(0)],
    ['a single 00 (the point at infinity)', () => new Uint8Array([0])],
    ['an Ed25519 key', () => ed.publicKey],
    ['an RSA key', () => rsa.publicKey],
    ['a secret key', () => createSecretKey(new Uint8Array(16))],
    ['garbage PEM', () => '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'],
    ['a number', () => 7 as unknown as string],
    ['undefined', () => undefined as unknown as string],
  ])('toPublicKey rejects %s with ERR_KEY_INVALID', (_name, make) => {
    expectSmkiError(() => toPublicKey(make()), 'ERR_KEY_INVALID');
  });

  it.each([
    ['a P-384 KeyObject', () => p384.publicKey],
    ['a P-384 SPKI DER', () => new Uint8Array(p384.publicKey.export({ format: 'der', type: 'spki' }))],
    ['a P-384 PEM', () => p384.publicKey.export({ format: 'pem', type: 'spki' }) as string],
    ['a secp256k1 key', () => k256.publicKey],
  ])('toPublicKey rejects %s with ERR_KEY_CURVE_UNSUPPORTED', (_name, make) => {
    expectSmkiError(() => toPublicKey(make()), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it.each([
    ['a P-384 uncompressed point (97 bytes)', () => publicKeyToRawAny(p384.publicKey)],
    ['a secp256k1 point in the P-256 slot (off-curve for P-256)', () => publicKeyToRawAny(k256.publicKey)],
    ['a plain array', () => Array.from(raw) as unknown as Uint8Array],
    ['prefix 02 with 64 bytes', () => new Uint8Array([0x02, ...raw.subarray(1)])],
  ])('publicKeyFromRaw rejects %s with ERR_KEY_INVALID', (_name, make) => {
    expectSmkiError(() => publicKeyFromRaw(make()), 'ERR_KEY_INVALID');
  });

  it('toPrivateKey returns a P-256 private KeyObject and rejects a public one', () => {
    const k = toPrivateKey(alice.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    expect(k).toBeInstanceOf(KeyObject);
    expect(k.type).toBe('private');
    expectSmkiError(() => toPrivateKey(createPublicKey(alice.privateKey)), 'ERR_KEY_INVALID');
    expectSmkiError(() => toPrivateKey(createPrivateKey(p384.privateKey.export({ format: 'pem', type: 'pkcs8' }))), 'ERR_KEY_CURVE_UNSUPPORTED');
  });
});

/** The uncompressed point of any EC public key (test helper, for non-P-256 curves). */
function publicKeyToRawAny(pub: KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  return new Uint8Array([0x04, ...Buffer.from(jwk.x as string, 'base64url'), ...Buffer.from(jwk.y as string, 'base64url')]);
}
