/**
 * Deterministic keys, signatures and randomness for the test-vector generator. Everything here is
 * derived from fixed labels, so re-running the generator reproduces every file byte for byte.
 *
 * Signatures use RFC 6979 deterministic ECDSA from @noble/curves with `lowS: false` (noble's
 * default normalises to low-S, but half of real GBCS/SMKI signatures are high-S); a signer can be
 * told to force high-S or low-S so the vectors hold both.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import type { Signer } from '@smki/core';

const N = p256.Point.Fn.ORDER;
const HALF_N = N >> 1n;

function toBytes32(v: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from(v.toString(16).padStart(64, '0'), 'hex'));
}

/** A P-256 secret scalar derived from a label: SHA-256 of the label, reduced into [1, n-1]. */
export function seededSecret(label: string): Uint8Array {
  const h = createHash('sha256').update(`smki-test-vectors/v1/key/${label}`).digest();
  const d = (BigInt(`0x${h.toString('hex')}`) % (N - 1n)) + 1n;
  return toBytes32(d);
}

/** The PKCS#8 private KeyObject for a seeded secret (same key, for node:crypto users). */
export function seededPrivateKey(label: string): KeyObject {
  const d = seededSecret(label);
  const pub = p256.getPublicKey(d, false);
  const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64url');
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: b64(d), x: b64(pub.subarray(1, 33)), y: b64(pub.subarray(33)) },
    format: 'jwk',
  });
}

/** How a deterministic signer chooses between s and n − s. */
export type SMode = 'natural' | 'high' | 'low';

/** A core `Signer` over a seeded key, signing with RFC 6979 (deterministic) ECDSA. */
export function seededSigner(label: string, mode: SMode = 'natural'): Signer {
  const secret = seededSecret(label);
  const publicKey = p256.getPublicKey(secret, false);
  return {
    publicKey,
    async sign(message: Uint8Array): Promise<Uint8Array> {
      const sig = p256.sign(message, secret, { lowS: false, prehash: true });
      const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`);
      const wantHigh = mode === 'high' ? true : mode === 'low' ? false : s > HALF_N;
      const s2 = (s > HALF_N) === wantHigh ? s : N - s;
      const out = new Uint8Array(64);
      out.set(sig.subarray(0, 32), 0);
      out.set(toBytes32(s2), 32);
      return out;
    },
  };
}

/** Whether a 64-byte r‖s signature has s > n/2. */
export function isHighS(signature: Uint8Array): boolean {
  return BigInt(`0x${Buffer.from(signature.subarray(32, 64)).toString('hex')}`) > HALF_N;
}

/** A deterministic byte source (SHA-256 in counter mode over a label), for serial numbers. */
export function seededRandom(label: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n: number) => {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const block = createHash('sha256').update(`smki-test-vectors/v1/random/${label}/${counter++}`).digest();
      const take = Math.min(32, n - o);
      out.set(block.subarray(0, take), o);
      o += take;
    }
    return out;
  };
}
