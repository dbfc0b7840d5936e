import { createPrivateKey, createPublicKey, diffieHellman, KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { ByteReader } from './bytes.js';
import { readTlv } from './der.js';
import { SmkiError } from './errors.js';

/**
 * Makes ECDSA P-256/SHA-256 signatures with a private key that may live anywhere (memory, an
 * encrypted file, an HSM). The toolkit never needs the key itself, only this.
 * @see CONVENTIONS.md (Signer and KeyAgreement)
 */
export interface Signer {
  /** The signer's public key: 65-byte uncompressed P-256 point (`04 ‖ X ‖ Y`). */
  readonly publicKey: Uint8Array;
  /**
   * ECDSA P-256 over SHA-256 of `message`; returns the 64-byte IEEE P1363 signature `r ‖ s`.
   * High-S values are allowed (about half of real GBCS signatures are high-S).
   */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * Performs ECDH on P-256 with a private key that may live anywhere.
 * @see SPEC.md §4 (ACB MAC step 1)
 */
export interface KeyAgreement {
  /** The local public key: 65-byte uncompressed P-256 point. */
  readonly publicKey: Uint8Array;
  /** The 32-byte x-coordinate of the ECDH shared point with `peerPublicKey` (Z). */
  deriveSharedSecret(peerPublicKey: Uint8Array | KeyObject): Promise<Uint8Array>;
}

/** A private key as the toolkit accepts it: a `KeyObject`, PEM text, or PKCS#8/SEC1 DER bytes. */
export type PrivateKeyInput = KeyObject | string | Uint8Array;

/**
 * A public key as the toolkit accepts it: a `KeyObject`, PEM text, SPKI DER, or the raw
 * 65-byte uncompressed point.
 */
export type PublicKeyInput = KeyObject | string | Uint8Array;

function assertP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec') throw new SmkiError('ERR_KEY_INVALID', `${what} is not an EC key`, { detail: String(key.asymmetricKeyType) });
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== 'prime256v1') throw new SmkiError('ERR_KEY_CURVE_UNSUPPORTED', `${what} is not on P-256`, { detail: String(curve) });
}

/**
 * A P-256 private `KeyObject` from any accepted form.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`
 */
export function toPrivateKey(input: PrivateKeyInput): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) {
    key = input;
  } else {
    try {
      if (typeof input === 'string') key = createPrivateKey(input);
      else if (input instanceof Uint8Array) {
        const buf = Buffer.from(input);
        try {
          key = createPrivateKey({ key: buf, format: 'der', type: 'pkcs8' });
        } catch {
          key = createPrivateKey({ key: buf, format: 'der', type: 'sec1' });
        }
      } else throw new TypeError('unsupported private key input');
    } catch (cause) {
      // The cause is node's parse error; it never contains the key bytes.
      throw new SmkiError('ERR_KEY_INVALID', 'not a private key', {}, { cause });
    }
  }
  if (key.type !== 'private') throw new SmkiError('ERR_KEY_INVALID', 'expected a private key', { detail: key.type });
  assertP256(key, 'private key');
  return key;
}

/**
 * A P-256 public `KeyObject` from any accepted form (a private key gives its public half).
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`
 */
export function toPublicKey(input: PublicKeyInput): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) {
    key = input.type === 'private' ? createPublicKey(input) : input;
  } else {
    try {
      if (typeof input === 'string') key = createPublicKey(input);
      else if (input instanceof Uint8Array) {
        if (input.length === 65 && input[0] === 0x04) key = publicKeyFromRaw(input);
        else key = createPublicKey({ key: Buffer.from(input), format: 'der', type: 'spki' });
      } else throw new TypeError('unsupported public key input');
    } catch (cause) {
      if (cause instanceof SmkiError) throw cause;
      throw new SmkiError('ERR_KEY_INVALID', 'not a public key', {}, { cause });
    }
  }
  if (key.type === 'secret') throw new SmkiError('ERR_KEY_INVALID', 'expected an asymmetric key', {});
  assertP256(key, 'public key');
  return key;
}

/** SPKI DER prefix for an uncompressed P-256 point (id-ecPublicKey, prime256v1, BIT STRING). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/**
 * A public `KeyObject` from a 65-byte uncompressed P-256 point. The point is checked to lie on the
 * curve.
 * @throws SmkiError `ERR_KEY_INVALID`
 */
export function publicKeyFromRaw(point: Uint8Array): KeyObject {
  if (!(point instanceof Uint8Array) || point.length !== 65 || point[0] !== 0x04) {
    throw new SmkiError('ERR_KEY_INVALID', 'expected a 65-byte uncompressed P-256 point', { detail: `length ${point?.length}` });
  }
  try {
    return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, point]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new SmkiError('ERR_KEY_INVALID', 'not a point on P-256', {}, { cause });
  }
}

/** The 65-byte uncompressed point of a P-256 public (or private) key. */
export function publicKeyToRaw(key: KeyObject): Uint8Array {
  const pub = toPublicKey(key);
  const der = pub.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 65));
}

/** A signer over a private key held in this process as a `KeyObject` (or PEM/DER). */
export function createKeySigner(privateKey: PrivateKeyInput): Signer {
  const key = toPrivateKey(privateKey);
  const publicKey = publicKeyToRaw(key);
  return {
    publicKey,
    async sign(message: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(nodeSign('sha256', message, { key, dsaEncoding: 'ieee-p1363' }));
    },
  };
}

/** A key agreement over a private key held in this process as a `KeyObject` (or PEM/DER). */
export function createKeyAgreement(privateKey: PrivateKeyInput): KeyAgreement {
  const key = toPrivateKey(privateKey);
  const publicKey = publicKeyToRaw(key);
  return {
    publicKey,
    async deriveSharedSecret(peer: Uint8Array | KeyObject): Promise<Uint8Array> {
      const peerKey = toPublicKey(peer);
      return new Uint8Array(diffieHellman({ privateKey: key, publicKey: peerKey }));
    },
  };
}

/**
 * Verify an ECDSA P-256/SHA-256 signature given as 64 bytes `r ‖ s`. High-S is accepted. Returns
 * false (never throws) for a signature of the wrong size or one that does not verify.
 */
export function verifyP1363(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  try {
    return nodeVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * Verify an ECDSA P-256/SHA-256 signature given as a DER ECDSA-Sig-Value (as in X.509). High-S is
 * accepted. Returns false for anything that is not a strict DER signature that verifies.
 */
export function verifyDer(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  let raw: Uint8Array;
  try {
    raw = derToP1363(signature);
  } catch {
    return false;
  }
  return verifyP1363(publicKey, message, raw);
}

function intBytes(v: Uint8Array): Uint8Array {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const t = v.subarray(i);
  if ((t[0] as number) & 0x80) {
    const o = new Uint8Array(t.length + 1);
    o.set(t, 1);
    return o;
  }
  return t;
}

function derLen(n: number): number[] {
  return n < 0x80 ? [n] : [0x81, n];
}

/**
 * Convert a 64-byte `r ‖ s` signature to a DER ECDSA-Sig-Value.
 * @throws SmkiError `ERR_SIGNATURE_ENCODING`
 */
export function p1363ToDer(signature: Uint8Array): Uint8Array {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new SmkiError('ERR_SIGNATURE_ENCODING', 'expected 64 bytes r||s', { detail: `length ${signature?.length}` });
  }
  const r = intBytes(signature.subarray(0, 32));
  const s = intBytes(signature.subarray(32));
  const body = [0x02, ...derLen(r.length), ...r, 0x02, ...derLen(s.length), ...s];
  return new Uint8Array([0x30, ...derLen(body.length), ...body]);
}

function readSigInt(reader: ByteReader, bytes: Uint8Array): Uint8Array {
  const t = readTlv(reader, 0x02);
  const v = bytes.subarray(t.valueStart, t.end);
  const bad = (why: string): never => {
    throw new SmkiError('ERR_SIGNATURE_ENCODING', `ECDSA integer ${why}`, { offset: t.start });
  };
  if (v.length === 0) bad('is empty');
  if ((v[0] as number) & 0x80) bad('is negative');
  if (v.length > 1 && v[0] === 0 && !((v[1] as number) & 0x80)) bad('is not minimal');
  const mag = v[0] === 0 ? v.subarray(1) : v;
  if (mag.length > 32) bad('is longer than 32 bytes');
  if (mag.every((b) => b === 0)) bad('is zero');
  const out = new Uint8Array(32);
  out.set(mag, 32 - mag.length);
  return out;
}

/**
 * Convert a DER ECDSA-Sig-Value to 64 bytes `r ‖ s`. Strict DER: minimal positive integers,
 * nothing trailing.
 * @throws SmkiError `ERR_SIGNATURE_ENCODING`
 */
export function derToP1363(der: Uint8Array): Uint8Array {
  try {
    const top = new ByteReader(der);
    const seq = readTlv(top, 0x30);
    if (!top.done) throw new SmkiError('ERR_SIGNATURE_ENCODING', 'bytes after the signature', { offset: top.offset });
    const r = new ByteReader(der, seq.valueStart, seq.end);
    const out = new Uint8Array(64);
    out.set(readSigInt(r, der), 0);
    out.set(readSigInt(r, der), 32);
    if (!r.done) throw new SmkiError('ERR_SIGNATURE_ENCODING', 'extra fields in the signature', { offset: r.offset });
    return out;
  } catch (e) {
    if (e instanceof SmkiError && e.code === 'ERR_SIGNATURE_ENCODING') throw e;
    throw new SmkiError('ERR_SIGNATURE_ENCODING', 'not a DER ECDSA-Sig-Value', {}, { cause: e });
  }
}
