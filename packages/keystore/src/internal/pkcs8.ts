/**
 * Password-based encryption of private keys as standard encrypted PKCS#8: an
 * `EncryptedPrivateKeyInfo` (RFC 5958 §3) whose algorithm is PBES2 (RFC 8018 §6.2) with the
 * scrypt (RFC 7914 §7) or PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) key derivation function and
 * AES-256-CBC (RFC 8018 §B.2.5, NIST SP 800-38A). `openssl pkey -passin` reads what this writes,
 * and what `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes with strong enough parameters decrypts
 * here.
 *
 * Why not `KeyObject.export({ cipher, passphrase })`: Node derives the key with PBKDF2-HMAC-SHA256
 * and only 2,048 iterations, which a GPU tries at billions of guesses a day. The structure is
 * built here instead (schemas from `@peculiar/asn1-pkcs8`/`-x509`/`-schema`), with scrypt
 * N ≥ 2^15 (r = 7, p = 1: see {@link SCRYPT_BLOCK_SIZE} for why not 8) or PBKDF2 with
 * ≥ 600,000 iterations.
 *
 * Reading is the reverse, by a strict, bounded DER parser (core's `readTlv`: definite minimal
 * lengths, no read past the end, an offset in every error) that checks every algorithm and every
 * KDF parameter against {@link Pkcs8DecryptLimits} BEFORE the KDF runs: a hostile file asking for
 * scrypt N = 2^30 or 10^9 PBKDF2 iterations is refused in microseconds, never run.
 *
 * Security notes:
 * - The KDF runs on libuv's thread pool (`crypto.scrypt`/`crypto.pbkdf2` with callbacks), so the
 *   ~100 ms it costs does not block the event loop.
 * - No error or log produced here contains the passphrase, the derived key, the plaintext
 *   PKCS#8, or any byte of the ciphertext; causes are attached only where they are the parser's
 *   own structural errors. Intermediate buffers (passphrase bytes, derived key, plaintext) are
 *   zeroed after use, best effort (a `KeyObject`'s own copy lives in OpenSSL's memory).
 * - AES-CBC has no integrity check. A wrong passphrase usually fails the padding check and
 *   sometimes (about 1 in 256) decrypts to garbage that then fails to parse as PKCS#8: both are
 *   `ERR_KEYSTORE_WRONG_PASSPHRASE`. A damaged salt, IV or ciphertext is mostly
 *   indistinguishable from a wrong passphrase and is reported the same way; damage anywhere else
 *   (lengths, tags, OIDs, parameters) is `ERR_KEY_FILE_CORRUPT` with the byte offset. A damaged
 *   ciphertext block inside the private scalar still parses, as a different scalar beside the
 *   original public key: an EC key is therefore checked by signing and verifying once (a
 *   pairwise consistency test) before it is returned, and fails as `ERR_KEY_FILE_CORRUPT`.
 * - The passphrase is used as its UTF-8 bytes, without Unicode normalisation (as OpenSSL does).
 *
 * @see RFC 5958 §3 (EncryptedPrivateKeyInfo)
 * @see RFC 8018 §5.2 (PBKDF2), §6.2 (PBES2), Appendix A.2, A.4, B.1.2, B.2.5
 * @see RFC 7914 §7 (scrypt-params)
 * @module
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, KeyObject, pbkdf2, randomBytes, scrypt, sign, verify } from 'node:crypto';
import { AsnConvert, AsnProp, AsnPropTypes, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { EncryptedData, EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { ByteReader, derToPem, pemToDer, readTlv, SmkiError, tlvReader, type Tlv } from '@smki/core';

// ---------------------------------------------------------------------------------------------
// Object identifiers

/** Object identifiers used by PBES2 key files. */
export const PKCS8_OID = {
  /** id-PBES2 (RFC 8018 Appendix A.4). */
  pbes2: '1.2.840.113549.1.5.13',
  /** id-PBKDF2 (RFC 8018 Appendix A.2). */
  pbkdf2: '1.2.840.113549.1.5.12',
  /** hmacWithSHA256 (RFC 8018 Appendix B.1.2). */
  hmacWithSHA256: '1.2.840.113549.2.9',
  /** id-scrypt (RFC 7914 §7). */
  scrypt: '1.3.6.1.4.1.11591.4.11',
  /** aes256-CBC-PAD (RFC 8018 Appendix B.2.5; NIST CSOR). */
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/** DER of an OBJECT IDENTIFIER's value octets, for exact comparison while parsing. */
function oidValue(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [(arcs[0] as number) * 40 + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const tmp: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift((v & 0x7f) | 0x80);
    out.push(...tmp);
  }
  return new Uint8Array(out);
}

const OID_BYTES = {
  pbes2: oidValue(PKCS8_OID.pbes2),
  pbkdf2: oidValue(PKCS8_OID.pbkdf2),
  hmacWithSHA256: oidValue(PKCS8_OID.hmacWithSHA256),
  scrypt: oidValue(PKCS8_OID.scrypt),
  aes256Cbc: oidValue(PKCS8_OID.aes256Cbc),
};

/** Dotted text of an OID's value octets (for error detail only); bounded. */
function oidText(v: Uint8Array): string {
  if (v.length === 0 || v.length > 64) return `(${v.length}-byte OID)`;
  const arcs: number[] = [];
  let acc = 0;
  for (const b of v) {
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER) return '(unreadable OID)';
    if (!(b & 0x80)) {
      arcs.push(acc);
      acc = 0;
    }
  }
  if (arcs.length === 0) return '(unreadable OID)';
  const first = arcs[0] as number;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

// ---------------------------------------------------------------------------------------------
// ASN.1 schemas (used to build; parsing is the strict reader below)

/**
 * RFC 7914 §7:
 * ```asn1
 * scrypt-params ::= SEQUENCE {
 *   salt OCTET STRING,
 *   costParameter INTEGER (1..MAX),
 *   blockSize INTEGER (1..MAX),
 *   parallelizationParameter INTEGER (1..MAX),
 *   keyLength INTEGER (1..MAX) OPTIONAL }
 * ```
 */
class ScryptParamsAsn {
  @AsnProp({ type: AsnPropTypes.OctetString })
  salt: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Integer })
  costParameter = 0;

  @AsnProp({ type: AsnPropTypes.Integer })
  blockSize = 0;

  @AsnProp({ type: AsnPropTypes.Integer })
  parallelizationParameter = 0;

  @AsnProp({ type: AsnPropTypes.Integer, optional: true })
  keyLength?: number;

  constructor(params: Partial<ScryptParamsAsn> = {}) {
    Object.assign(this, params);
  }
}

/**
 * RFC 8018 Appendix A.2 (salt as its `specified` alternative; `prf` always present, since its
 * DEFAULT is hmacWithSHA1):
 * ```asn1
 * PBKDF2-params ::= SEQUENCE {
 *   salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier {{PBKDF2-SaltSources}} },
 *   iterationCount INTEGER (1..MAX),
 *   keyLength INTEGER (1..MAX) OPTIONAL,
 *   prf AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }
 * ```
 */
class Pbkdf2ParamsAsn {
  @AsnProp({ type: AsnPropTypes.OctetString })
  salt: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Integer })
  iterationCount = 0;

  @AsnProp({ type: AsnPropTypes.Integer, optional: true })
  keyLength?: number;

  @AsnProp({ type: AlgorithmIdentifier })
  prf: AlgorithmIdentifier = new AlgorithmIdentifier();

  constructor(params: Partial<Pbkdf2ParamsAsn> = {}) {
    Object.assign(this, params);
  }
}

/**
 * RFC 8018 Appendix A.4:
 * ```asn1
 * PBES2-params ::= SEQUENCE {
 *   keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},
 *   encryptionScheme AlgorithmIdentifier {{PBES2-Encs}} }
 * ```
 */
class Pbes2ParamsAsn {
  @AsnProp({ type: AlgorithmIdentifier })
  keyDerivationFunc: AlgorithmIdentifier = new AlgorithmIdentifier();

  @AsnProp({ type: AlgorithmIdentifier })
  encryptionScheme: AlgorithmIdentifier = new AlgorithmIdentifier();

  constructor(params: Partial<Pbes2ParamsAsn> = {}) {
    Object.assign(this, params);
  }
}

// ---------------------------------------------------------------------------------------------
// Options and limits

/** The smallest scrypt cost N written or accepted (2^15). */
export const MIN_SCRYPT_N = 2 ** 15;
/** The largest scrypt cost N written or accepted (2^20). */
export const MAX_SCRYPT_N = 2 ** 20;
/** The smallest PBKDF2 iteration count written or accepted (600,000, OWASP 2023 for HMAC-SHA256). */
export const MIN_PBKDF2_ITERATIONS = 600_000;
/** The largest PBKDF2 iteration count accepted (10,000,000). */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;

/** Options of {@link encryptPrivateKey}. */
export interface Pkcs8EncryptOptions {
  /** Key derivation function (default `scrypt`). */
  readonly kdf?: 'scrypt' | 'pbkdf2';
  /**
   * scrypt cost N, a power of two in [2^15, 2^20] (default 2^15); r = 7 ({@link SCRYPT_BLOCK_SIZE}),
   * p = 1. Above 2^15 the file needs more than the 32 MiB of scrypt memory OpenSSL allows when it
   * reads PKCS#8, so `openssl pkey` cannot read it (node and this module can).
   */
  readonly scryptN?: number;
  /** PBKDF2-HMAC-SHA256 iterations in [600,000, 10,000,000] (default 600,000). */
  readonly pbkdf2Iterations?: number;
  /** Source of the 16-byte salt and the 16-byte IV (default `crypto.randomBytes`; tests inject one). */
  readonly random?: (n: number) => Uint8Array;
}

/**
 * Bounds {@link decryptPrivateKey} checks before running a KDF. Each may be lowered, never
 * raised above its default (which is also the hard ceiling).
 */
export interface Pkcs8DecryptLimits {
  /** Largest scrypt N (default and ceiling 2^20). The floor is always 2^15. */
  readonly maxScryptN?: number;
  /** Largest scrypt r (default and ceiling 32). */
  readonly maxScryptR?: number;
  /** Largest scrypt p (default and ceiling 16). */
  readonly maxScryptP?: number;
  /** Largest scrypt working memory 128·N·r in bytes (default and ceiling 256 MiB). */
  readonly maxScryptMemory?: number;
  /** Largest scrypt work N·r·p (default and ceiling 2^23, about 32 times N=2^15, r=8, p=1). */
  readonly maxScryptWork?: number;
  /** Largest PBKDF2 iteration count (default and ceiling 10,000,000). The floor is always 600,000. */
  readonly maxPbkdf2Iterations?: number;
}

/** The default (and largest) {@link Pkcs8DecryptLimits}. */
export const DEFAULT_PKCS8_DECRYPT_LIMITS: Required<Pkcs8DecryptLimits> = Object.freeze({
  maxScryptN: MAX_SCRYPT_N,
  maxScryptR: 32,
  maxScryptP: 16,
  maxScryptMemory: 256 * 1024 * 1024,
  maxScryptWork: 2 ** 23,
  maxPbkdf2Iterations: MAX_PBKDF2_ITERATIONS,
});

/** Largest encrypted key file accepted, DER or PEM (64 KiB; a P-256 key file is under 400 bytes). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * scrypt block size r written: 7, not the customary 8. OpenSSL's PKCS#8 reader (`openssl pkey`,
 * `PEM_read_PrivateKey`, 1.1.x and 3.x) runs scrypt with a fixed 32 MiB memory limit that it
 * checks as 128·r·(N + 2) + 128·r·p ≤ 2^25, and N = 2^15, r = 8 needs 3 KiB more than that, so
 * OpenSSL refuses such files ("memory limit exceeded"). r = 7 is the largest that OpenSSL reads
 * at N = 2^15 (28 MiB, 7/8 of the work of r = 8).
 */
export const SCRYPT_BLOCK_SIZE = 7;
const SCRYPT_R = SCRYPT_BLOCK_SIZE;
const SCRYPT_P = 1;
const KEY_LENGTH = 32; // AES-256
const SALT_LENGTH = 16;
const IV_LENGTH = 16;
const MAX_PASSPHRASE_BYTES = 1024;
const MAX_SALT_LENGTH = 64;

/** The parameters of an encrypted key file, as read and checked (no KDF run). */
export interface Pbes2Parameters {
  /** The key derivation function and its parameters. */
  readonly kdf:
    | { readonly name: 'scrypt'; readonly salt: Uint8Array; readonly N: number; readonly r: number; readonly p: number }
    | { readonly name: 'pbkdf2'; readonly salt: Uint8Array; readonly iterations: number; readonly prf: 'hmacWithSHA256' };
  /** The cipher (only AES-256-CBC is accepted). */
  readonly cipher: 'aes-256-cbc';
  /** The 16-byte IV. */
  readonly iv: Uint8Array;
  /** The ciphertext (a view into the input). */
  readonly ciphertext: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function invalidArgument(message: string, detail?: string): SmkiError<'ERR_INVALID_ARGUMENT'> {
  return new SmkiError('ERR_INVALID_ARGUMENT', message, detail === undefined ? {} : { detail });
}

function corrupt(offset: number, detail: string, cause?: unknown): SmkiError<'ERR_KEY_FILE_CORRUPT'> {
  return new SmkiError('ERR_KEY_FILE_CORRUPT', `encrypted key file: ${detail} (offset ${offset})`, { offset, detail }, cause === undefined ? undefined : { cause });
}

function wrongPassphrase(): SmkiError<'ERR_KEYSTORE_WRONG_PASSPHRASE'> {
  // Deliberately no cause: nothing derived from the passphrase or the plaintext goes in an error.
  return new SmkiError('ERR_KEYSTORE_WRONG_PASSPHRASE', 'the passphrase does not decrypt this key (or its salt, IV or ciphertext is damaged)', {});
}

function passphraseBytes(passphrase: string): Buffer {
  if (typeof passphrase !== 'string') throw invalidArgument('the passphrase must be a string', typeof passphrase);
  if (passphrase.length === 0) throw invalidArgument('the passphrase is empty');
  const bytes = Buffer.from(passphrase, 'utf8');
  if (bytes.length > MAX_PASSPHRASE_BYTES) {
    bytes.fill(0);
    throw invalidArgument(`the passphrase is over ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  return bytes;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 1 && (n & (n - 1)) === 0;
}

function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function deriveScrypt(pass: Buffer, salt: Uint8Array, N: number, r: number, p: number): Promise<Buffer> {
  // maxmem: node (OpenSSL) refuses unless 128·r·(N + 2) + 128·r·p fits; the bounds above were
  // checked first, so this only lifts node's 32 MiB default to what these parameters need.
  const maxmem = 2 * 128 * N * r + 128 * r * (p + 2);
  return new Promise((resolve, reject) => {
    scrypt(pass, salt, KEY_LENGTH, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function derivePbkdf2(pass: Buffer, salt: Uint8Array, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(pass, salt, iterations, KEY_LENGTH, 'sha256', (err, key) => (err ? reject(err) : resolve(key)));
  });
}

// ---------------------------------------------------------------------------------------------
// Encrypt

/**
 * Check {@link Pkcs8EncryptOptions} and fill in the defaults (scrypt, N = 2^15, 600,000 PBKDF2
 * iterations), so that a caller can refuse bad options before it needs them.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an unknown KDF or a cost outside the bounds
 */
export function checkEncryptOptions(options: Pkcs8EncryptOptions = {}): { kdf: 'scrypt' | 'pbkdf2'; scryptN: number; pbkdf2Iterations: number } {
  const kdf = options.kdf ?? 'scrypt';
  if (kdf !== 'scrypt' && kdf !== 'pbkdf2') throw invalidArgument('kdf must be scrypt or pbkdf2', String(kdf));
  const scryptN = options.scryptN ?? MIN_SCRYPT_N;
  if (!isPowerOfTwo(scryptN) || scryptN < MIN_SCRYPT_N || scryptN > MAX_SCRYPT_N) {
    throw invalidArgument('scryptN must be a power of two from 2^15 to 2^20', String(scryptN));
  }
  const pbkdf2Iterations = options.pbkdf2Iterations ?? MIN_PBKDF2_ITERATIONS;
  if (!Number.isSafeInteger(pbkdf2Iterations) || pbkdf2Iterations < MIN_PBKDF2_ITERATIONS || pbkdf2Iterations > MAX_PBKDF2_ITERATIONS) {
    throw invalidArgument('pbkdf2Iterations must be an integer from 600,000 to 10,000,000', String(pbkdf2Iterations));
  }
  if (options.random !== undefined && typeof options.random !== 'function') throw invalidArgument('random must be a function');
  return { kdf, scryptN, pbkdf2Iterations };
}

/**
 * Encrypt PKCS#8 `PrivateKeyInfo` bytes under `passphrase` as a DER `EncryptedPrivateKeyInfo`
 * with PBES2. The lower-level half of {@link encryptPrivateKey}; it does not check that
 * `privateKeyInfo` is a key (tests use it to make files whose plaintext is not one).
 *
 * @param privateKeyInfo - the plaintext (RFC 5958 `OneAsymmetricKey`/`PrivateKeyInfo` DER)
 * @param passphrase - non-empty, at most 1,024 UTF-8 bytes
 * @param options - KDF and its cost; randomness
 * @returns DER of `EncryptedPrivateKeyInfo`
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an empty passphrase or a cost outside the bounds
 * @see RFC 8018 §6.2.1 (PBES2 encryption), RFC 7914 §7, RFC 5958 §3
 */
export async function encryptPrivateKeyInfo(privateKeyInfo: Uint8Array, passphrase: string, options: Pkcs8EncryptOptions = {}): Promise<Uint8Array> {
  if (!(privateKeyInfo instanceof Uint8Array) || privateKeyInfo.length === 0) throw invalidArgument('expected PrivateKeyInfo bytes');
  const { kdf, scryptN: N, pbkdf2Iterations: iterations } = checkEncryptOptions(options);
  const random = options.random ?? ((n: number) => randomBytes(n));
  const salt = random(SALT_LENGTH);
  const iv = random(IV_LENGTH);
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_LENGTH || !(iv instanceof Uint8Array) || iv.length !== IV_LENGTH) {
    throw invalidArgument('random(n) must return n bytes');
  }

  const pass = passphraseBytes(passphrase);
  let key: Buffer | undefined;
  let ciphertext: Buffer;
  try {
    key = kdf === 'scrypt' ? await deriveScrypt(pass, salt, N, SCRYPT_R, SCRYPT_P) : await derivePbkdf2(pass, salt, iterations);
    const cipher = createCipheriv('aes-256-cbc', key, iv);
    ciphertext = Buffer.concat([cipher.update(privateKeyInfo), cipher.final()]);
  } finally {
    pass.fill(0);
    key?.fill(0);
  }

  const keyDerivationFunc =
    kdf === 'scrypt'
      ? new AlgorithmIdentifier({
          algorithm: PKCS8_OID.scrypt,
          parameters: AsnConvert.serialize(
            new ScryptParamsAsn({ salt: toArrayBuffer(salt), costParameter: N, blockSize: SCRYPT_R, parallelizationParameter: SCRYPT_P, keyLength: KEY_LENGTH }),
          ),
        })
      : new AlgorithmIdentifier({
          algorithm: PKCS8_OID.pbkdf2,
          parameters: AsnConvert.serialize(
            new Pbkdf2ParamsAsn({
              salt: toArrayBuffer(salt),
              iterationCount: iterations,
              // keyLength omitted, as OpenSSL does: AES-256 fixes it at 32.
              prf: new AlgorithmIdentifier({ algorithm: PKCS8_OID.hmacWithSHA256, parameters: null }),
            }),
          ),
        });
  const encryptionScheme = new AlgorithmIdentifier({
    algorithm: PKCS8_OID.aes256Cbc,
    parameters: AsnConvert.serialize(new OctetString(toArrayBuffer(iv))),
  });
  const info = new EncryptedPrivateKeyInfo({
    encryptionAlgorithm: new AlgorithmIdentifier({
      algorithm: PKCS8_OID.pbes2,
      parameters: AsnConvert.serialize(new Pbes2ParamsAsn({ keyDerivationFunc, encryptionScheme })),
    }),
    encryptedData: new EncryptedData(toArrayBuffer(ciphertext)),
  });
  return new Uint8Array(AsnConvert.serialize(info));
}

/**
 * Encrypt a private key under `passphrase` as a DER `EncryptedPrivateKeyInfo` (PBES2: scrypt
 * N=2^15 r=7 p=1 by default, or PBKDF2-HMAC-SHA256 with 600,000 iterations; AES-256-CBC with a
 * random 16-byte IV; a random 16-byte salt). The KDF runs off the event loop.
 *
 * Security: the plaintext PKCS#8 and the derived key are zeroed after use; nothing secret is put
 * in an error.
 *
 * @param key - a private `KeyObject`
 * @param passphrase - non-empty, at most 1,024 UTF-8 bytes
 * @param options - KDF and its cost; randomness
 * @returns DER of `EncryptedPrivateKeyInfo`
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for a non-private key, an empty passphrase or a cost
 *   outside the bounds
 * @see RFC 5958 §3, RFC 8018 §6.2, RFC 7914 §7
 */
export async function encryptPrivateKey(key: KeyObject, passphrase: string, options: Pkcs8EncryptOptions = {}): Promise<Uint8Array> {
  if (!(key instanceof KeyObject) || key.type !== 'private') throw invalidArgument('expected a private KeyObject');
  const plaintext = key.export({ format: 'der', type: 'pkcs8' });
  try {
    return await encryptPrivateKeyInfo(plaintext, passphrase, options);
  } finally {
    plaintext.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Parse and decrypt

function resolveLimits(limits: Pkcs8DecryptLimits): Required<Pkcs8DecryptLimits> {
  const out = { ...DEFAULT_PKCS8_DECRYPT_LIMITS };
  for (const k of Object.keys(out) as (keyof Pkcs8DecryptLimits)[]) {
    const v = limits[k];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1 || v > DEFAULT_PKCS8_DECRYPT_LIMITS[k]) {
      throw invalidArgument(`limit ${k} must be an integer from 1 to ${DEFAULT_PKCS8_DECRYPT_LIMITS[k]}`, String(v));
    }
    out[k] = v;
  }
  return out;
}

/** Re-throw the DER reader's structural errors as ERR_KEY_FILE_CORRUPT, keeping the offset. */
function structural<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SmkiError && (e.code === 'ERR_DER_INVALID' || e.code === 'ERR_BYTES_TRUNCATED')) {
      const offset = (e.context as { offset?: number }).offset ?? 0;
      throw corrupt(offset, e.code === 'ERR_BYTES_TRUNCATED' ? 'truncated' : 'not valid DER', e);
    }
    throw e;
  }
}

function expectTlv(r: ByteReader, tag: number, what: string): Tlv {
  if (r.done) throw corrupt(r.offset, `${what} is missing`);
  const start = r.offset;
  const t = readTlv(r);
  if (t.tag !== tag) throw corrupt(start, `${what}: expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`);
  return t;
}

function expectEnd(r: ByteReader, what: string): void {
  if (!r.done) throw corrupt(r.offset, `unexpected data after ${what}`);
}

function readOid(r: ByteReader, what: string): Tlv {
  return expectTlv(r, 0x06, what);
}

function oidIs(der: Uint8Array, t: Tlv, expected: Uint8Array): boolean {
  if (t.end - t.valueStart !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (der[t.valueStart + i] !== expected[i]) return false;
  return true;
}

function readUint(der: Uint8Array, r: ByteReader, what: string): { value: number; offset: number } {
  const t = expectTlv(r, 0x02, what);
  const len = t.end - t.valueStart;
  if (len === 0) throw corrupt(t.start, `${what} is empty`);
  const first = der[t.valueStart] as number;
  if (first & 0x80) throw corrupt(t.start, `${what} is negative`);
  if (len > 1 && first === 0 && !((der[t.valueStart + 1] as number) & 0x80)) throw corrupt(t.start, `${what} is not minimally encoded`);
  if (len > 7) throw corrupt(t.start, `${what} is out of range`);
  let v = 0;
  for (let i = t.valueStart; i < t.end; i++) v = v * 256 + (der[i] as number);
  if (!Number.isSafeInteger(v)) throw corrupt(t.start, `${what} is out of range`);
  return { value: v, offset: t.start };
}

function readSalt(der: Uint8Array, r: ByteReader, what: string): Uint8Array {
  const t = expectTlv(r, 0x04, what);
  const len = t.end - t.valueStart;
  if (len < 8 || len > MAX_SALT_LENGTH) throw corrupt(t.start, `${what} is ${len} bytes (accepted: 8 to ${MAX_SALT_LENGTH})`);
  return der.subarray(t.valueStart, t.end);
}

/**
 * Read and check an encrypted key file's structure and parameters, without running the KDF.
 * Strict DER; every algorithm and parameter is checked against `limits`: PBES2 only; scrypt with
 * N a power of two in [2^15, maxScryptN], r ≤ maxScryptR, p ≤ maxScryptP, 128·N·r ≤
 * maxScryptMemory, N·r·p ≤ maxScryptWork; or PBKDF2 with hmacWithSHA256 and 600,000 ≤
 * iterations ≤ maxPbkdf2Iterations; keyLength, if present, 32; AES-256-CBC with a 16-byte IV;
 * a non-empty ciphertext of whole blocks. A file outside these bounds is refused as damaged: the
 * store never writes one, and running its KDF could hang the process or exhaust memory.
 *
 * @param der - DER of `EncryptedPrivateKeyInfo`
 * @param limits - lower bounds than the defaults, if wanted
 * @throws SmkiError `ERR_KEY_FILE_CORRUPT` (with `offset` and `detail`),
 *   `ERR_INVALID_ARGUMENT` for limits above their ceilings
 * @see RFC 5958 §3, RFC 8018 §6.2 and Appendix A.2, A.4, B.2.5, RFC 7914 §7
 */
export function parseEncryptedPrivateKeyInfo(der: Uint8Array, limits: Pkcs8DecryptLimits = {}): Pbes2Parameters {
  const lim = resolveLimits(limits);
  if (!(der instanceof Uint8Array)) throw invalidArgument('expected DER bytes');
  if (der.length === 0) throw corrupt(0, 'empty');
  if (der.length > MAX_KEY_FILE_BYTES) throw corrupt(0, `over ${MAX_KEY_FILE_BYTES} bytes`);
  return structural(() => {
    // RFC 5958 §3: EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData }
    const top = new ByteReader(der);
    const epki = expectTlv(top, 0x30, 'EncryptedPrivateKeyInfo');
    expectEnd(top, 'EncryptedPrivateKeyInfo');
    const er = tlvReader(der, epki);

    const algTlv = expectTlv(er, 0x30, 'encryptionAlgorithm');
    const alg = tlvReader(der, algTlv);
    const algOid = readOid(alg, 'encryptionAlgorithm.algorithm');
    if (!oidIs(der, algOid, OID_BYTES.pbes2)) {
      throw corrupt(algOid.start, `encryption algorithm ${oidText(der.subarray(algOid.valueStart, algOid.end))} is not PBES2`);
    }
    // RFC 8018 A.4: PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }
    const pbes2 = tlvReader(der, expectTlv(alg, 0x30, 'PBES2-params'));
    expectEnd(alg, 'PBES2-params');

    const kdfAlg = tlvReader(der, expectTlv(pbes2, 0x30, 'keyDerivationFunc'));
    const kdfOid = readOid(kdfAlg, 'keyDerivationFunc.algorithm');
    let kdf: Pbes2Parameters['kdf'];
    if (oidIs(der, kdfOid, OID_BYTES.scrypt)) {
      // RFC 7914 §7: scrypt-params ::= SEQUENCE { salt, costParameter, blockSize, parallelizationParameter, keyLength OPTIONAL }
      const pt = expectTlv(kdfAlg, 0x30, 'scrypt-params');
      expectEnd(kdfAlg, 'scrypt-params');
      const p = tlvReader(der, pt);
      const salt = readSalt(der, p, 'scrypt salt');
      const n = readUint(der, p, 'scrypt costParameter');
      const r = readUint(der, p, 'scrypt blockSize');
      const pp = readUint(der, p, 'scrypt parallelizationParameter');
      if (!p.done) {
        const kl = readUint(der, p, 'scrypt keyLength');
        if (kl.value !== KEY_LENGTH) throw corrupt(kl.offset, `scrypt keyLength ${kl.value} is not ${KEY_LENGTH}`);
      }
      expectEnd(p, 'scrypt-params');
      if (!isPowerOfTwo(n.value) || n.value < MIN_SCRYPT_N || n.value > lim.maxScryptN) {
        throw corrupt(n.offset, `scrypt N ${n.value} is outside the accepted bounds (a power of two from ${MIN_SCRYPT_N} to ${lim.maxScryptN})`);
      }
      if (r.value < 1 || r.value > lim.maxScryptR) throw corrupt(r.offset, `scrypt r ${r.value} is outside 1..${lim.maxScryptR}`);
      if (pp.value < 1 || pp.value > lim.maxScryptP) throw corrupt(pp.offset, `scrypt p ${pp.value} is outside 1..${lim.maxScryptP}`);
      if (128 * n.value * r.value > lim.maxScryptMemory) {
        throw corrupt(n.offset, `scrypt N=${n.value} r=${r.value} needs more than ${lim.maxScryptMemory} bytes of memory`);
      }
      if (n.value * r.value * pp.value > lim.maxScryptWork) {
        throw corrupt(n.offset, `scrypt N=${n.value} r=${r.value} p=${pp.value} is more work than ${lim.maxScryptWork}`);
      }
      kdf = { name: 'scrypt', salt, N: n.value, r: r.value, p: pp.value };
    } else if (oidIs(der, kdfOid, OID_BYTES.pbkdf2)) {
      // RFC 8018 A.2: PBKDF2-params ::= SEQUENCE { salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1 }
      const pt = expectTlv(kdfAlg, 0x30, 'PBKDF2-params');
      expectEnd(kdfAlg, 'PBKDF2-params');
      const p = tlvReader(der, pt);
      if (!p.done && der[p.offset] !== 0x04) throw corrupt(p.offset, 'PBKDF2 salt is not `specified` (otherSource is not supported)');
      const salt = readSalt(der, p, 'PBKDF2 salt');
      const it = readUint(der, p, 'PBKDF2 iterationCount');
      if (!p.done && der[p.offset] === 0x02) {
        const kl = readUint(der, p, 'PBKDF2 keyLength');
        if (kl.value !== KEY_LENGTH) throw corrupt(kl.offset, `PBKDF2 keyLength ${kl.value} is not ${KEY_LENGTH}`);
      }
      if (p.done) throw corrupt(p.offset, 'PBKDF2 prf is absent (hmacWithSHA1); only hmacWithSHA256 is accepted');
      const prfTlv = expectTlv(p, 0x30, 'PBKDF2 prf');
      expectEnd(p, 'PBKDF2-params');
      const prf = tlvReader(der, prfTlv);
      const prfOid = readOid(prf, 'PBKDF2 prf.algorithm');
      if (!oidIs(der, prfOid, OID_BYTES.hmacWithSHA256)) {
        throw corrupt(prfOid.start, `PBKDF2 prf ${oidText(der.subarray(prfOid.valueStart, prfOid.end))} is not hmacWithSHA256`);
      }
      if (!prf.done) {
        // RFC 8018 B.1.2: parameters NULL (absent tolerated).
        const nul = expectTlv(prf, 0x05, 'hmacWithSHA256 parameters');
        if (nul.end !== nul.valueStart) throw corrupt(nul.start, 'hmacWithSHA256 parameters are not NULL');
      }
      expectEnd(prf, 'PBKDF2 prf');
      if (it.value < MIN_PBKDF2_ITERATIONS || it.value > lim.maxPbkdf2Iterations) {
        throw corrupt(it.offset, `PBKDF2 iteration count ${it.value} is outside the accepted bounds (${MIN_PBKDF2_ITERATIONS} to ${lim.maxPbkdf2Iterations})`);
      }
      kdf = { name: 'pbkdf2', salt, iterations: it.value, prf: 'hmacWithSHA256' };
    } else {
      throw corrupt(kdfOid.start, `key derivation function ${oidText(der.subarray(kdfOid.valueStart, kdfOid.end))} is neither scrypt nor PBKDF2`);
    }

    const encTlv = expectTlv(pbes2, 0x30, 'encryptionScheme');
    expectEnd(pbes2, 'PBES2-params');
    const enc = tlvReader(der, encTlv);
    const encOid = readOid(enc, 'encryptionScheme.algorithm');
    if (!oidIs(der, encOid, OID_BYTES.aes256Cbc)) {
      throw corrupt(encOid.start, `encryption scheme ${oidText(der.subarray(encOid.valueStart, encOid.end))} is not aes256-CBC`);
    }
    // RFC 8018 B.2.5: the parameters are the 16-octet IV.
    const ivTlv = expectTlv(enc, 0x04, 'aes256-CBC IV');
    expectEnd(enc, 'encryptionScheme');
    if (ivTlv.end - ivTlv.valueStart !== IV_LENGTH) throw corrupt(ivTlv.start, `IV is ${ivTlv.end - ivTlv.valueStart} bytes, not ${IV_LENGTH}`);

    const ctTlv = expectTlv(er, 0x04, 'encryptedData');
    expectEnd(er, 'EncryptedPrivateKeyInfo');
    const ctLen = ctTlv.end - ctTlv.valueStart;
    if (ctLen === 0 || ctLen % 16 !== 0) throw corrupt(ctTlv.start, `encryptedData is ${ctLen} bytes, not a non-zero multiple of 16`);

    return {
      kdf,
      cipher: 'aes-256-cbc',
      iv: der.subarray(ivTlv.valueStart, ivTlv.end),
      ciphertext: der.subarray(ctTlv.valueStart, ctTlv.end),
    };
  });
}

const PCT_MESSAGE = Buffer.from('SMKI keystore pairwise consistency test');

/**
 * Pairwise consistency test (as FIPS 140-3 IG 10.3.A has for generated keys): sign with the
 * private scalar and verify with the public point the PKCS#8 carries. Needed because CBC has no
 * MAC: changing one byte of a ciphertext block that lies wholly inside the private scalar gives
 * a plaintext that still parses, with a garbled scalar beside the original public key. OpenSSL
 * does not recompute the point on load, so without this check the key would report the right
 * public key and sign with the wrong scalar.
 */
function assertPairwiseConsistent(key: KeyObject): void {
  let ok = false;
  try {
    ok = verify('sha256', PCT_MESSAGE, createPublicKey(key), sign('sha256', PCT_MESSAGE, key));
  } catch {
    ok = false;
  }
  if (!ok) throw corrupt(0, 'the decrypted private key does not match its public key (the ciphertext is damaged)');
}

/**
 * Decrypt a DER `EncryptedPrivateKeyInfo` (PBES2 with scrypt or PBKDF2-HMAC-SHA256, and
 * AES-256-CBC) to a private `KeyObject`. The structure and KDF parameters are checked first
 * ({@link parseEncryptedPrivateKeyInfo}); the KDF then runs off the event loop.
 *
 * Security: a wrong passphrase is reported without saying anything about the plaintext (bad
 * padding and an undecodable plaintext give the same error and message). The derived key and the
 * plaintext are zeroed after use. The key may be of any type OpenSSL reads; callers that need
 * P-256 check it.
 *
 * @param der - DER of `EncryptedPrivateKeyInfo`
 * @param passphrase - the passphrase (UTF-8, not normalised)
 * @param limits - lower KDF bounds than the defaults, if wanted
 * @throws SmkiError `ERR_KEYSTORE_WRONG_PASSPHRASE` (wrong passphrase, or a damaged salt, IV or
 *   ciphertext), `ERR_KEY_FILE_CORRUPT` (structure, algorithm or parameters, with `offset`; or an
 *   EC key whose scalar does not match its public point),
 *   `ERR_INVALID_ARGUMENT` (empty passphrase)
 * @see RFC 8018 §6.2.2 (PBES2 decryption), RFC 7914 §7, RFC 5958 §3
 */
export async function decryptPrivateKey(der: Uint8Array, passphrase: string, limits: Pkcs8DecryptLimits = {}): Promise<KeyObject> {
  const params = parseEncryptedPrivateKeyInfo(der, limits);
  const pass = passphraseBytes(passphrase);
  let key: Buffer | undefined;
  let plaintext: Buffer | undefined;
  try {
    try {
      const k = params.kdf;
      key = k.name === 'scrypt' ? await deriveScrypt(pass, k.salt, k.N, k.r, k.p) : await derivePbkdf2(pass, k.salt, k.iterations);
    } catch (cause) {
      // Only reachable if node refuses parameters the checks above accepted; node's error names
      // the parameter, never the passphrase.
      throw corrupt(0, 'the key derivation function refused its parameters', cause);
    }
    const decipher = createDecipheriv('aes-256-cbc', key, params.iv);
    const head = decipher.update(params.ciphertext);
    let tail: Buffer;
    try {
      tail = decipher.final();
    } catch {
      head.fill(0);
      throw wrongPassphrase();
    }
    plaintext = Buffer.concat([head, tail]);
    head.fill(0);
    tail.fill(0);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: plaintext, format: 'der', type: 'pkcs8' });
    } catch {
      // CBC without a MAC: a wrong passphrase passes the padding check about 1 time in 256.
      throw wrongPassphrase();
    }
    if (privateKey.asymmetricKeyType === 'ec') assertPairwiseConsistent(privateKey);
    return privateKey;
  } finally {
    pass.fill(0);
    key?.fill(0);
    plaintext?.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// PEM

const PEM_LABEL = 'ENCRYPTED PRIVATE KEY';

/**
 * PEM text (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, base64 in 64-character lines) of a DER
 * `EncryptedPrivateKeyInfo`, as OpenSSL writes it.
 * @see RFC 7468 §11 (Textual encoding of PKCS #8 encrypted private key info)
 */
export function toEncryptedPem(der: Uint8Array): string {
  return derToPem(der, PEM_LABEL);
}

/**
 * The DER inside PEM text labelled `ENCRYPTED PRIVATE KEY`. Strict: one block, nothing but
 * whitespace around it, only base64 inside, padded to a multiple of four (RFC 7468 §3 "strict"
 * parsers), at most 64 KiB. Read by core's PEM reader (the toolkit's one reader) in its strict
 * mode; its `ERR_PEM_INVALID` is reported here as `ERR_KEY_FILE_CORRUPT` with the same character
 * offset, because a key file that does not read is a damaged key file.
 * @param pem - the text, or its bytes (ASCII)
 * @throws SmkiError `ERR_KEY_FILE_CORRUPT` with the character offset of the problem
 * @see RFC 7468 §3, §11
 */
export function fromEncryptedPem(pem: string | Uint8Array): Uint8Array {
  if (pem instanceof Uint8Array) {
    if (pem.length > MAX_KEY_FILE_BYTES) throw corrupt(0, `over ${MAX_KEY_FILE_BYTES} bytes`);
    pem = Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1');
  }
  if (typeof pem !== 'string') throw invalidArgument('expected PEM text');
  if (pem.length > MAX_KEY_FILE_BYTES) throw corrupt(0, `over ${MAX_KEY_FILE_BYTES} characters`);
  try {
    return pemToDer(pem, [PEM_LABEL], { strict: true, maxChars: MAX_KEY_FILE_BYTES }).der;
  } catch (e) {
    if (e instanceof SmkiError && e.code === 'ERR_PEM_INVALID') {
      const offset = (e.context as { offset?: number }).offset ?? 0;
      // The reader's own message (e.g. no "-----BEGIN ENCRYPTED PRIVATE KEY-----" block): it
      // names labels and offsets, never a byte of the body.
      throw corrupt(offset, e.message, e);
    }
    throw e;
  }
}
