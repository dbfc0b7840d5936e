import { createECDH, createPrivateKey, createPublicKey, KeyObject, sign as nodeSign, verify as nodeVerify, type ECDH } from 'node:crypto';
import { ByteReader } from './bytes.js';
import { readTlv } from './der.js';
import { SmkiError } from './errors.js';
import { pemBlocks, type PemBlock } from './pem.js';

/**
 * Makes ECDSA P-256/SHA-256 signatures with a private key that may live anywhere (memory, an
 * encrypted file, an HSM). The toolkit never needs the key itself, only this.
 * @see docs/conventions.md (Signer and KeyAgreement)
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
 * @see docs/domain.md §4 (ACB MAC step 1)
 */
export interface KeyAgreement {
  /** The local public key: 65-byte uncompressed P-256 point. */
  readonly publicKey: Uint8Array;
  /** The 32-byte x-coordinate of the ECDH shared point with `peerPublicKey` (Z). */
  deriveSharedSecret(peerPublicKey: Uint8Array | KeyObject): Promise<Uint8Array>;
}

/**
 * A private key as the toolkit accepts it: a `KeyObject`, PEM text (`PRIVATE KEY`, i.e. PKCS#8,
 * or `EC PRIVATE KEY`, i.e. SEC 1), or PKCS#8/SEC 1 DER bytes. Always P-256 with the named-curve
 * OID.
 */
export type PrivateKeyInput = KeyObject | string | Uint8Array;

/**
 * A public key as the toolkit accepts it: a `KeyObject`, PEM text labelled `PUBLIC KEY`, SPKI
 * DER, or the raw 65-byte uncompressed point. Always P-256 with the named-curve OID and an
 * uncompressed point.
 */
export type PublicKeyInput = KeyObject | string | Uint8Array;

/** SPKI DER prefix for an uncompressed P-256 point (id-ecPublicKey, prime256v1, BIT STRING). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 65;
/** Value octets of id-ecPublicKey (1.2.840.10045.2.1) and prime256v1 (1.2.840.10045.3.1.7). */
const OID_EC_PUBLIC_KEY = Buffer.from('2a8648ce3d0201', 'hex');
const OID_P256 = Buffer.from('2a8648ce3d030107', 'hex');
/** DER of the namedCurve prime256v1, the only `EC PARAMETERS` block accepted beside a key. */
const P256_EC_PARAMETERS = Buffer.from('06082a8648ce3d030107', 'hex');

/**
 * Public keys already known to be P-256 with the named-curve OID and an uncompressed point: made
 * here from checked bytes, or checked once (by their exported SPKI) when they came from
 * elsewhere. Keyed by the object, so the hot path (a `KeyObject` passed on every call) costs one
 * lookup and no DER.
 */
const checkedPublic = new WeakSet<KeyObject>();
/** Private keys checked the same way (by the SPKI of their public half), with that public half. */
const checkedPrivate = new WeakMap<KeyObject, KeyObject>();

function bytesEqual(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array): boolean {
  if (aEnd - aStart !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[aStart + i] !== b[i]) return false;
  return true;
}

/**
 * The 65-byte point of a P-256 SubjectPublicKeyInfo in its one accepted encoding: DER,
 * id-ecPublicKey, namedCurve prime256v1, an uncompressed point. Anything else is refused with
 * the reason: explicit curve parameters (specifiedCurve) or implicitCurve, or another named curve,
 * are `ERR_KEY_CURVE_UNSUPPORTED` (RFC 5480 §2.1.1: "implicitCurve and specifiedCurve MUST NOT
 * be used"); a compressed or hybrid point, BER, or another algorithm is `ERR_KEY_INVALID`.
 * The point is not checked to be on the curve here (publicKeyFromRaw does that).
 */
function spkiPoint(der: Uint8Array): Uint8Array {
  if (der.length === P256_SPKI_LENGTH && bytesEqual(der, 0, P256_SPKI_PREFIX.length, P256_SPKI_PREFIX)) {
    return der.subarray(P256_SPKI_PREFIX.length);
  }
  const bad = (detail: string, offset?: number): never => {
    throw new SmkiError('ERR_KEY_INVALID', `not a P-256 SubjectPublicKeyInfo: ${detail}`, { detail, ...(offset !== undefined ? { offset } : {}) });
  };
  let params: { tag: number; start: number; valueStart: number; end: number };
  let bits: { valueStart: number; end: number; start: number };
  try {
    const top = new ByteReader(der);
    const spki = readTlv(top, 0x30);
    if (!top.done) bad('bytes after the SubjectPublicKeyInfo', top.offset);
    const r = new ByteReader(der, spki.valueStart, spki.end);
    const alg = readTlv(r, 0x30);
    bits = readTlv(r, 0x03);
    if (!r.done) bad('fields after subjectPublicKey', r.offset);
    const ar = new ByteReader(der, alg.valueStart, alg.end);
    const oid = readTlv(ar, 0x06);
    if (!bytesEqual(der, oid.valueStart, oid.end, OID_EC_PUBLIC_KEY)) bad('the algorithm is not id-ecPublicKey', oid.start);
    if (ar.done) bad('id-ecPublicKey without ECParameters', ar.offset);
    params = readTlv(ar);
    if (!ar.done) bad('fields after ECParameters', ar.offset);
  } catch (cause) {
    if (cause instanceof SmkiError && cause.code === 'ERR_KEY_INVALID') throw cause;
    throw new SmkiError('ERR_KEY_INVALID', 'not a DER SubjectPublicKeyInfo', {}, { cause });
  }
  // RFC 5480 §2.1.1: ECParameters ::= CHOICE { namedCurve OBJECT IDENTIFIER, implicitCurve NULL, specifiedCurve SpecifiedECDomain }
  const unsupported = (detail: string): never => {
    throw new SmkiError('ERR_KEY_CURVE_UNSUPPORTED', `the key is not on the named curve P-256: ${detail}`, { detail, offset: params.start });
  };
  if (params.tag === 0x30) unsupported('explicit curve parameters (specifiedCurve); RFC 5480 2.1.1 allows the named curve only');
  if (params.tag === 0x05) unsupported('implicitCurve (NULL); RFC 5480 2.1.1 allows the named curve only');
  if (params.tag !== 0x06) bad('ECParameters is not a named curve', params.start);
  if (!bytesEqual(der, params.valueStart, params.end, OID_P256)) unsupported('another named curve');
  // SEC 1 §2.3.3: 04 ‖ X ‖ Y (uncompressed), 02/03 ‖ X (compressed), 06/07 ‖ X ‖ Y (hybrid).
  const n = bits.end - bits.valueStart;
  const first = der[bits.valueStart + 1];
  if (n === 34 && (first === 0x02 || first === 0x03)) bad('a compressed point; the SMKI profile uses uncompressed points only', bits.start);
  if (n !== 66 || der[bits.valueStart] !== 0 || first !== 0x04) bad('the subjectPublicKey is not a 65-byte uncompressed point', bits.start);
  return bad('not in DER', 0);
}

function assertEcP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec') throw new SmkiError('ERR_KEY_INVALID', `${what} is not an EC key`, { detail: String(key.asymmetricKeyType) });
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== 'prime256v1') throw new SmkiError('ERR_KEY_CURVE_UNSUPPORTED', `${what} is not on P-256`, { detail: String(curve) });
}

/** Check a public `KeyObject` made elsewhere, once: P-256, named curve, uncompressed (its exported SPKI). */
function checkForeignPublic(key: KeyObject, what: string): KeyObject {
  assertEcP256(key, what);
  spkiPoint(new Uint8Array(key.export({ format: 'der', type: 'spki' })));
  checkedPublic.add(key);
  return key;
}

/** Check a private `KeyObject` once (by the SPKI of its public half); return that public half. */
function checkPrivate(key: KeyObject): KeyObject {
  const known = checkedPrivate.get(key);
  if (known !== undefined) return known;
  if (key.type !== 'private') throw new SmkiError('ERR_KEY_INVALID', 'expected a private key', { detail: key.type });
  assertEcP256(key, 'private key');
  const pub = checkForeignPublic(createPublicKey(key), 'private key');
  checkedPrivate.set(key, pub);
  return pub;
}

/** The one block of a key's PEM text, which must carry one of `accepted` (EC PARAMETERS aside, for private keys). */
function keyPemBlock(text: string, accepted: readonly string[], what: string): PemBlock {
  const blocks = pemBlocks(text).filter((b) => {
    if (b.label !== 'EC PARAMETERS' || !accepted.includes('EC PRIVATE KEY')) return true;
    // `openssl ecparam -genkey` writes the curve's OID in a block of its own before the key.
    if (!bytesEqual(b.der, 0, b.der.length, P256_EC_PARAMETERS)) {
      throw new SmkiError('ERR_KEY_CURVE_UNSUPPORTED', 'the EC PARAMETERS block is not the named curve P-256', { offset: b.offset });
    }
    return false;
  });
  const block = blocks[0];
  // Text without any PEM block is simply not a key (as for bytes that are not DER).
  if (block === undefined) throw new SmkiError('ERR_KEY_INVALID', `not a ${what}: no PEM block in the text`, { detail: `expected ${accepted.join(' or ')}` });
  if (blocks.length > 1) {
    throw new SmkiError('ERR_PEM_INVALID', `more than one PEM block in the ${what} text`, { offset: (blocks[1] as PemBlock).offset, detail: blocks.map((b) => b.label).join(', ') });
  }
  if (block.label === 'ENCRYPTED PRIVATE KEY' && accepted.includes('PRIVATE KEY')) {
    throw new SmkiError('ERR_KEY_ENCRYPTED', 'the private key is encrypted (ENCRYPTED PRIVATE KEY): decrypt it first', { offset: block.offset });
  }
  if (!accepted.includes(block.label)) {
    // RFC 7468: a block is what its label says. A certificate is not a public key (its key usage
    // would be skipped), whatever spelling its label has.
    throw new SmkiError('ERR_PEM_INVALID', `a PEM block labelled ${block.label} is not a ${what}`, { offset: block.offset, detail: `label ${block.label}; expected ${accepted.join(' or ')}` });
  }
  return block;
}

const PRIVATE_KEY_LABELS = ['PRIVATE KEY', 'EC PRIVATE KEY'] as const;
const PUBLIC_KEY_LABELS = ['PUBLIC KEY'] as const;

/**
 * What private-key DER is, by its first two fields: PKCS#8 PrivateKeyInfo (RFC 5958: version
 * INTEGER, then an AlgorithmIdentifier SEQUENCE), SEC 1 ECPrivateKey (RFC 5915: version INTEGER,
 * then the privateKey OCTET STRING), or an EncryptedPrivateKeyInfo (RFC 5958 §3: a SEQUENCE
 * first). Node's decoder would take a PKCS#8 body under the SEC 1 label; this keeps each label to
 * its own structure.
 */
function privateKeyShape(der: Uint8Array): 'pkcs8' | 'sec1' | 'encrypted' | undefined {
  try {
    const top = readTlv(new ByteReader(der), 0x30);
    const r = new ByteReader(der, top.valueStart, top.end);
    const first = readTlv(r);
    if (first.tag === 0x30) return 'encrypted';
    if (first.tag !== 0x02 || r.done) return undefined;
    const second = r.peekU8();
    return second === 0x30 ? 'pkcs8' : second === 0x04 ? 'sec1' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A P-256 private `KeyObject` from any accepted form: a `KeyObject`; PEM labelled `PRIVATE KEY`
 * (PKCS#8, RFC 5958) or `EC PRIVATE KEY` (SEC 1 / RFC 5915, optionally after an `EC PARAMETERS`
 * block naming P-256); or the DER of either. The key must be on P-256 given by its named-curve
 * OID: explicit curve parameters are refused even when they equal P-256's. A `KeyObject` is
 * checked once and remembered.
 *
 * Security: PEM of any other label is refused, never guessed at. An encrypted key (`ENCRYPTED
 * PRIVATE KEY`, or its DER) is refused with `ERR_KEY_ENCRYPTED`: decrypt it with the key store
 * first; this function takes no passphrase.
 * @throws SmkiError `ERR_KEY_INVALID` (also text without any PEM block),
 *   `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_KEY_ENCRYPTED`, `ERR_PEM_INVALID` (several PEM blocks, one
 *   with another label, or damaged armour)
 * @see RFC 7468 §10 (PRIVATE KEY), §11 (ENCRYPTED PRIVATE KEY); RFC 5915 §3; RFC 5480 §2.1.1
 */
export function toPrivateKey(input: PrivateKeyInput): KeyObject {
  if (input instanceof KeyObject) {
    if (!checkedPrivate.has(input)) checkPrivate(input);
    return input;
  }
  let der: Uint8Array;
  let want: 'pkcs8' | 'sec1' | undefined;
  if (typeof input === 'string') {
    const block = keyPemBlock(input, PRIVATE_KEY_LABELS, 'private key');
    der = block.der;
    want = block.label === 'PRIVATE KEY' ? 'pkcs8' : 'sec1';
  } else if (input instanceof Uint8Array) {
    der = input;
  } else {
    throw new SmkiError('ERR_KEY_INVALID', 'not a private key', { detail: input === null ? 'null' : typeof input });
  }
  const shape = privateKeyShape(der);
  if (shape === 'encrypted' && want !== 'sec1') {
    throw new SmkiError('ERR_KEY_ENCRYPTED', 'the private key is an EncryptedPrivateKeyInfo: decrypt it first', {});
  }
  if (shape === undefined || shape === 'encrypted' || (want !== undefined && shape !== want)) {
    const expected = want === undefined ? 'PKCS#8 or SEC 1' : want === 'pkcs8' ? 'PKCS#8 (PRIVATE KEY)' : 'SEC 1 (EC PRIVATE KEY)';
    throw new SmkiError('ERR_KEY_INVALID', `not a ${expected} private key`, { detail: shape === undefined ? 'unrecognised structure' : `a ${shape} structure` });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: shape });
  } catch (cause) {
    // The cause is node's parse error; it never contains the key bytes.
    throw new SmkiError('ERR_KEY_INVALID', 'not a private key', {}, { cause });
  }
  checkPrivate(key);
  return key;
}

/**
 * A P-256 public `KeyObject` from any accepted form: a `KeyObject` (a private one gives its public
 * half); PEM labelled `PUBLIC KEY`; SPKI DER; or the raw 65-byte uncompressed point.
 *
 * Strict: the SPKI must be DER of id-ecPublicKey with the namedCurve prime256v1 and an
 * uncompressed point. Explicit curve parameters are refused even when they equal P-256's (RFC
 * 5480 §2.1.1), and so is a compressed point (the SMKI profile uses uncompressed points only).
 * A `KeyObject` made elsewhere is checked once by its exported SPKI and remembered, so passing
 * the same `KeyObject` again costs no DER work.
 *
 * Security: PEM of any other label is refused. In particular a certificate, under any label
 * (`CERTIFICATE`, `X509 CERTIFICATE`, `TRUSTED CERTIFICATE`, …), is not a public key here: a
 * certificate's key may only be used as its key usage allows, which is for the caller that
 * parses the certificate to check.
 * @throws SmkiError `ERR_KEY_INVALID` (also text without any PEM block),
 *   `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_PEM_INVALID` (several PEM blocks, one with another label,
 *   or damaged armour)
 * @see RFC 7468 §13 (PUBLIC KEY); RFC 5480 §2.1.1, §2.2; SEC 1 v2 §2.3.3
 */
export function toPublicKey(input: PublicKeyInput): KeyObject {
  if (input instanceof KeyObject) {
    if (checkedPublic.has(input)) return input;
    if (input.type === 'private') return checkPrivate(input);
    if (input.type !== 'public') throw new SmkiError('ERR_KEY_INVALID', 'expected an asymmetric key', { detail: input.type });
    return checkForeignPublic(input, 'public key');
  }
  if (typeof input === 'string') return publicKeyFromRaw(spkiPoint(keyPemBlock(input, PUBLIC_KEY_LABELS, 'public key').der));
  if (input instanceof Uint8Array) {
    if (input.length === 65 && input[0] === 0x04) return publicKeyFromRaw(input);
    return publicKeyFromRaw(spkiPoint(input));
  }
  throw new SmkiError('ERR_KEY_INVALID', 'not a public key', { detail: input === null ? 'null' : typeof input });
}

/**
 * A public `KeyObject` from a 65-byte uncompressed P-256 point. The point is checked to lie on the
 * curve.
 * @throws SmkiError `ERR_KEY_INVALID`
 * @see SEC 1 v2 §2.3.4 (octet string to point), §3.2.2.1 (public key validation)
 */
export function publicKeyFromRaw(point: Uint8Array): KeyObject {
  if (!(point instanceof Uint8Array) || point.length !== 65 || point[0] !== 0x04) {
    throw new SmkiError('ERR_KEY_INVALID', 'expected a 65-byte uncompressed P-256 point', { detail: `length ${point?.length}` });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, point]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new SmkiError('ERR_KEY_INVALID', 'not a point on P-256', {}, { cause });
  }
  checkedPublic.add(key);
  return key;
}

/**
 * The 65-byte uncompressed point of a P-256 public (or private) key.
 * @throws SmkiError as {@link toPublicKey}
 */
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
      return deriveP256SharedSecret(key, peer);
    },
  };
}

/** P-256 field prime p and curve coefficient b (a = -3). @see SEC 2 v2 §2.4.2 */
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

function bigFrom(bytes: Uint8Array, start: number, end: number): bigint {
  return BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('hex')}`);
}

/**
 * Whether `point` is a valid P-256 public key in the profile's one encoding: 65 octets
 * `04 ‖ X ‖ Y`, both coordinates below p, and y² = x³ − 3x + b (mod p). The cofactor of P-256 is
 * 1, so a point on the curve other than infinity (which has no uncompressed encoding) has order n:
 * this is the whole of SEC 1 public key validation for this curve. A few microseconds, with no
 * `KeyObject` made.
 * @see SEC 1 v2 §3.2.2.1 (public key validation); §2.3.4 (octet string to point)
 */
export function isP256Point(point: Uint8Array): boolean {
  if (!(point instanceof Uint8Array) || point.length !== 65 || point[0] !== 0x04) return false;
  const x = bigFrom(point, 1, 33);
  const y = bigFrom(point, 33, 65);
  if (x >= P256_P || y >= P256_P) return false;
  return (y * y - (x * x * x - 3n * x + P256_B)) % P256_P === 0n;
}

/** One ECDH context per private key, made on first use (node's import of a peer's `KeyObject` costs more than the ECDH itself). */
const ecdhContexts = new WeakMap<KeyObject, ECDH>();

/**
 * ECDH on P-256 with a private key held in this process: Z, the 32-byte x-coordinate of the
 * shared point. The peer is a 65-byte uncompressed point (the form certificates and GBCS carry)
 * or anything {@link toPublicKey} takes; a point is validated as OpenSSL decodes it (SEC 1
 * §3.2.2.1), and no `KeyObject` is made for it (making one costs more than the ECDH). The private key's
 * ECDH context is made once and kept as long as the `KeyObject` lives (it holds the same secret
 * the `KeyObject` does, in the same process).
 * @throws SmkiError `ERR_KEY_INVALID` (a peer that is not a P-256 point; a private key as
 *   {@link toPrivateKey}), `ERR_KEY_CURVE_UNSUPPORTED`
 * @see NIST SP 800-56A Rev. 3 §5.7.1.2 (ECC CDH primitive); SEC 1 v2 §3.3.1
 */
export function deriveP256SharedSecret(privateKey: PrivateKeyInput, peer: PublicKeyInput): Uint8Array {
  const key = toPrivateKey(privateKey);
  // Only the uncompressed form goes to OpenSSL as it is (it would take a compressed one too).
  const point = peer instanceof Uint8Array && peer.length === 65 && peer[0] === 0x04 ? peer : publicKeyToRaw(toPublicKey(peer));
  let ecdh = ecdhContexts.get(key);
  if (ecdh === undefined) {
    const d = Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url');
    ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(d);
    d.fill(0);
    ecdhContexts.set(key, ecdh);
  }
  try {
    // OpenSSL decodes the point with full validation (coordinates below p, on the curve): the
    // tests hold it to refusing each kind of bad point, so no check of ours runs twice.
    return new Uint8Array(ecdh.computeSecret(point));
  } catch (cause) {
    throw new SmkiError('ERR_KEY_INVALID', 'the peer key is not a point on P-256', {}, { cause });
  }
}

/**
 * Verify an ECDSA P-256/SHA-256 signature given as 64 bytes `r ‖ s`. High-S is accepted. Returns
 * false (never throws) for a signature of the wrong size, one that does not verify, or a key that
 * {@link toPublicKey} refuses (another curve, explicit curve parameters, a compressed point).
 * @see FIPS 186-5 §6.4.2 (ECDSA verification); IEEE 1363 (r ‖ s)
 */
export function verifyP1363(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  try {
    // A key that is not P-256 (say P-384, which node would happily use) never verifies.
    const key = publicKey instanceof KeyObject && checkedPublic.has(publicKey) ? publicKey : toPublicKey(publicKey);
    return nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * Verify an ECDSA P-256/SHA-256 signature given as a DER ECDSA-Sig-Value (as in X.509). High-S is
 * accepted. Returns false for anything that is not a strict DER signature that verifies (BER
 * lengths, non-minimal or negative integers, trailing bytes), and for a key as
 * {@link verifyP1363} refuses it.
 * @see RFC 5480 §2.2 (ECDSA-Sig-Value); X.690 §10 (DER)
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
