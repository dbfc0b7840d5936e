/**
 * The encrypted-file key backend: each P-256 private key in its own file
 * `<directory>/keys/<handle>.p8`, standard encrypted PKCS#8 in PEM (`ENCRYPTED PRIVATE KEY`),
 * PBES2 with scrypt (N = 2^15, r = 7, p = 1) or PBKDF2-HMAC-SHA256 (600,000 iterations) and
 * AES-256-CBC, so that `openssl pkey -in <file> -passin pass:…` reads it.
 *
 * Security posture:
 * - No private key is ever written unencrypted, logged or put in an error. Key files are created
 *   mode 0600 in a directory created mode 0700, written atomically (temporary file, fsync,
 *   rename, fsync of the directory) and never overwritten.
 * - One passphrase per store (an option, or the environment variable `SMKI_KEYSTORE_PASSPHRASE`).
 *   It stays in this process's memory while the backend is open, to encrypt new keys.
 * - Each key is decrypted once, on first use, and kept as a `KeyObject` until {@link
 *   FileKeyBackend.close}; signing then costs what raw `node:crypto` costs.
 * - A damaged key file affects only its own key: the others keep working.
 * - A hostile key file cannot make the backend hang or exhaust memory: KDF parameters are
 *   bounded before the KDF runs (see `parseEncryptedPrivateKeyInfo`).
 *
 * Concurrency: one process at a time (the `KeyStore` holds the directory lock; this backend
 * takes none). Within a process several backends may share a directory: writes are synchronous
 * between their checks and their rename, so they do not interleave.
 *
 * @see RFC 5958 §3, RFC 8018 §6.2, RFC 7914 §7, RFC 7468 §11
 * @module
 */
import { generateKeyPair, KeyObject } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { deriveP256SharedSecret, publicKeyToRaw, SmkiError, toPrivateKey } from '@smki/core';
import type { GeneratedKey, KeyBackend, KeySpec } from '../backend.js';
import { signOffThread } from '../internal/sign.js';
import { atomicWriteFile, fsyncDirectory, readFileBounded, removeStaleTemporaries, type FaultHook } from '../internal/fsutil.js';
import {
  checkEncryptOptions,
  decryptPrivateKey,
  encryptPrivateKey,
  fromEncryptedPem,
  MAX_KEY_FILE_BYTES,
  toEncryptedPem,
  type Pkcs8EncryptOptions,
} from '../internal/pkcs8.js';

/** The environment variable {@link FileKeyBackend.open} reads the passphrase from when no option gives one. */
export const KEYSTORE_PASSPHRASE_ENV = 'SMKI_KEYSTORE_PASSPHRASE';

/** Name of the passphrase canary, beside `keys/` in the backend's directory. */
export const PASSPHRASE_CHECK_FILE = 'passphrase-check.p8';

/**
 * What a handle (and so a key id given to {@link FileKeyBackend.generateKey}) may look like: 1 to
 * 128 of `A–Z a–z 0–9 . _ -`, not starting with a dot. No separators, so no path traversal; no
 * leading dot, so never `.`, `..` or a hidden temporary file.
 */
export const FILE_HANDLE_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

const KEY_FILE_SUFFIX = '.p8';
/** Most key files tried at open when the canary is missing or damaged. */
const MAX_FALLBACK_WRONG = 3;

/** Options of {@link FileKeyBackend.open}. */
export interface FileKeyBackendOptions {
  /** The backend's directory; created mode 0700 if missing. Keys go in its `keys/` folder. */
  readonly directory: string;
  /**
   * The store's passphrase (default: the environment variable `SMKI_KEYSTORE_PASSPHRASE`). Must
   * be non-empty; used as UTF-8 bytes, not normalised.
   */
  readonly passphrase?: string;
  /** KDF for new key files (default `scrypt`). Existing files are read whatever their KDF. */
  readonly kdf?: 'scrypt' | 'pbkdf2';
  /**
   * scrypt N for new key files, a power of two in [2^15, 2^20] (default 2^15). Above 2^15,
   * `openssl pkey` cannot read the files (OpenSSL caps scrypt memory at 32 MiB when it reads
   * PKCS#8).
   */
  readonly scryptN?: number;
  /** PBKDF2 iterations for new key files when `kdf` is `pbkdf2` (default 600,000). */
  readonly pbkdf2Iterations?: number;
  /** Fault-injection hook for crash tests (points `keyfile:*` and `passphrase-check:*`). Never set in production. */
  readonly fault?: FaultHook;
  /** Where the default passphrase is read from (default `process.env`; tests inject one). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

function fail(code: 'ERR_INVALID_ARGUMENT' | 'ERR_KEY_NOT_FOUND' | 'ERR_KEYSTORE_CLOSED', message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail });
}

/**
 * Check a handle against {@link FILE_HANDLE_PATTERN}.
 * @throws SmkiError `ERR_INVALID_ARGUMENT`
 */
function checkHandle(handle: unknown): string {
  if (typeof handle !== 'string' || !FILE_HANDLE_PATTERN.test(handle)) {
    // The rejected value is not echoed in full: it is caller input of unknown size.
    fail('ERR_INVALID_ARGUMENT', 'a file key handle is 1 to 128 of A-Z a-z 0-9 . _ - and does not start with a dot', typeof handle === 'string' ? handle.slice(0, 64) : typeof handle);
  }
  return handle;
}

function isErrno(e: unknown, code: string): boolean {
  // Stryker disable next-line OptionalChaining: equivalent; only node:fs and process.kill errors reach it, always Error objects
  return (e as NodeJS.ErrnoException | undefined)?.code === code;
}

function generateP256(): Promise<KeyObject> {
  return new Promise((resolvePromise, reject) => {
    generateKeyPair('ec', { namedCurve: 'P-256' }, (err, _publicKey, privateKey) => (err ? reject(err) : resolvePromise(privateKey)));
  });
}

/** Read a key file (or the canary) as DER: not found, damaged, or the bytes. */
function readKeyFile(path: string, name: string): Uint8Array {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) fail('ERR_KEY_NOT_FOUND', `no key file ${name}`, name);
    throw e;
  }
  if (!st.isFile()) throw new SmkiError('ERR_KEY_FILE_CORRUPT', `${name} is not a regular file`, { detail: name });
  let bytes: Uint8Array;
  try {
    bytes = readFileBounded(path, MAX_KEY_FILE_BYTES);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) fail('ERR_KEY_NOT_FOUND', `no key file ${name}`, name);
    if (e instanceof SmkiError && e.code === 'ERR_INVALID_ARGUMENT') {
      throw new SmkiError('ERR_KEY_FILE_CORRUPT', `${name} is over ${MAX_KEY_FILE_BYTES} bytes or not a regular file`, { detail: name }, { cause: e });
    }
    throw e;
  }
  try {
    return fromEncryptedPem(bytes);
  } catch (e) {
    throw withName(e, name);
  }
}

/** The same error with the file's name in its message and detail (ERR_KEY_FILE_CORRUPT only). */
function withName(e: unknown, name: string): unknown {
  if (e instanceof SmkiError && e.code === 'ERR_KEY_FILE_CORRUPT') {
    const ctx = e.context as { offset?: number; detail?: string };
    return new SmkiError(
      'ERR_KEY_FILE_CORRUPT',
      `${name}: ${e.message}`,
      { ...(ctx.offset !== undefined ? { offset: ctx.offset } : {}), detail: `${name}: ${ctx.detail ?? 'damaged'}` },
      { cause: e },
    );
  }
  return e;
}

/**
 * A {@link KeyBackend} keeping each P-256 private key in its own encrypted PKCS#8 file.
 *
 * Layout of `directory`:
 * - `keys/<handle>.p8`: one key per file (PEM `ENCRYPTED PRIVATE KEY`, mode 0600). The handle is
 *   the key id ({@link FILE_HANDLE_PATTERN}).
 * - `passphrase-check.p8`: the passphrase canary, an encrypted throwaway P-256 key written at the
 *   first open with the same KDF and cost as the keys. {@link FileKeyBackend.open} decrypts it
 *   (one KDF, ~100 ms) and so refuses a wrong passphrase at once, before any key is used or a
 *   new key is written under it. It is as costly to attack as any key file, so it gives an
 *   attacker nothing a key file does not. If it is missing (an older or copied store) or
 *   damaged, open confirms the passphrase with the keys themselves instead (at most three that
 *   fail), and writes a missing canary once the passphrase is confirmed; a damaged one is left
 *   for inspection, never overwritten.
 *
 * Public keys are not stored: {@link FileKeyBackend.publicKey} derives the point from the
 * decrypted private key (and caches it). One file per key means the public key can never
 * disagree with the private key, and nothing about a key is readable without the passphrase;
 * the price is one decryption (~100 ms) on the first call for a key.
 *
 * Errors for one key (a damaged file, a file that does not decrypt under the store's verified
 * passphrase) are `ERR_KEY_FILE_CORRUPT` for that handle only. Since open has verified the
 * passphrase, a key file that does not decrypt under it is reported as damaged (or encrypted
 * under another passphrase), not as a wrong passphrase: re-typing the passphrase would not help.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { FileKeyBackend } from '@smki/keystore';
 * const backend = await FileKeyBackend.open({ directory: mkdtempSync(join(tmpdir(), 'keys-')), passphrase: 'from SMKI_KEYSTORE_PASSPHRASE' });
 * const { handle, publicKey } = await backend.generateKey({ keyId: 'K1', label: 'north/DS/g1' });
 * const signature = await backend.sign(handle, new Uint8Array([0xdf, 0x09])); // 64-byte r‖s
 * console.log(publicKey.length, signature.length); // 65 64
 * ```
 */
export class FileKeyBackend implements KeyBackend {
  /** `file`. */
  readonly kind = 'file';
  /** The backend's directory (absolute). */
  readonly directory: string;
  readonly #keysDir: string;
  readonly #passphrase: string;
  readonly #encrypt: Pkcs8EncryptOptions;
  readonly #fault: FaultHook | undefined;
  /** Decrypted keys, by handle (only handles that passed `checkHandle`). */
  readonly #keys = new Map<string, KeyObject>();
  /** First uses in flight: concurrent callers share one decryption. */
  readonly #loading = new Map<string, Promise<KeyObject>>();
  /** Handles being generated (so two concurrent generateKey calls cannot both write one). */
  readonly #pending = new Set<string>();
  #closed = false;

  private constructor(directory: string, passphrase: string, encrypt: Pkcs8EncryptOptions, fault: FaultHook | undefined) {
    this.directory = directory;
    this.#keysDir = join(directory, 'keys');
    this.#passphrase = passphrase;
    this.#encrypt = encrypt;
    this.#fault = fault;
  }

  /**
   * Open (or create) a file backend: create `directory` and `directory/keys` mode 0700 if
   * missing, remove the temporary files a crashed write left in them (those of processes no
   * longer running), and verify the passphrase (see the
   * class notes: the canary `passphrase-check.p8`, written at the first open).
   *
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (no or empty passphrase, bad options),
   *   `ERR_KEYSTORE_WRONG_PASSPHRASE` (the canary, or the keys, do not decrypt under it),
   *   `ERR_KEY_FILE_CORRUPT` (the canary is damaged and no key confirms the passphrase)
   * @see RFC 8018 §6.2
   */
  static async open(options: FileKeyBackendOptions): Promise<FileKeyBackend> {
    const { directory, passphrase, encrypt } = resolveOptions(options);
    mkdirOwnerOnly(directory);
    const keysDir = join(directory, 'keys');
    mkdirOwnerOnly(keysDir);
    removeStaleTemporaries(keysDir, staleTemporaries(readdirSync(keysDir), (n) => n.includes(`${KEY_FILE_SUFFIX}.`)));
    removeStaleTemporaries(directory, staleTemporaries(readdirSync(directory), (n) => n.startsWith(`.${PASSPHRASE_CHECK_FILE}.`)));
    const backend = new FileKeyBackend(directory, passphrase, encrypt, options.fault);
    await backend.#verifyPassphrase(true);
    return backend;
  }

  /**
   * Check a passphrase against a file backend's directory without opening it or writing
   * anything: by the canary, or (if it is missing or damaged) by the key files. Resolves when the
   * passphrase opens the store, or when the store has nothing encrypted yet to check it against.
   *
   * @throws SmkiError `ERR_KEYSTORE_WRONG_PASSPHRASE`, `ERR_KEY_FILE_CORRUPT` (damaged canary and
   *   no key confirms), `ERR_INVALID_ARGUMENT`
   */
  static async verifyPassphrase(options: Pick<FileKeyBackendOptions, 'directory' | 'passphrase' | 'env'>): Promise<void> {
    const { directory, passphrase } = resolveOptions(options);
    // A throwaway backend, never returned; closed at once so that the key which confirmed the
    // passphrase does not stay decrypted in memory until it is collected.
    const backend = new FileKeyBackend(directory, passphrase, {}, undefined);
    await backend
      .#verifyPassphrase(false)
      // Stryker disable next-line ArrowFunction: equivalent in-process; closing only drops the decrypted key sooner (memory hygiene)
      .finally(() => backend.close());
  }

  // -------------------------------------------------------------------------------------------
  // KeyBackend

  /**
   * Generate a P-256 key, encrypt it, write `keys/<keyId>.p8` atomically (mode 0600) and keep the
   * key decrypted in memory. Durable when the promise resolves. Never overwrites: a key id whose
   * file exists is refused. The label is not stored.
   *
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (a key id outside {@link FILE_HANDLE_PATTERN}, or
   *   one whose file exists), `ERR_KEYSTORE_CLOSED`
   */
  async generateKey(spec: KeySpec): Promise<GeneratedKey> {
    this.#assertOpen();
    const handle = checkHandle(spec?.keyId);
    const path = this.#path(handle);
    const refuseExisting = (): void => {
      if (existsSync(path)) fail('ERR_INVALID_ARGUMENT', `a key file for ${handle} exists; it is never overwritten`, handle);
    };
    if (this.#pending.has(handle)) fail('ERR_INVALID_ARGUMENT', `a key ${handle} is being generated`, handle);
    refuseExisting();
    this.#pending.add(handle);
    try {
      const privateKey = await generateP256();
      const der = await encryptPrivateKey(privateKey, this.#passphrase, this.#encrypt);
      this.#assertOpen();
      // Checked again after the awaits; from here to the rename nothing else runs (synchronous).
      refuseExisting();
      try {
        // Linked, never renamed over: another process (a database store is shared) racing for the
        // same key id cannot replace the file of a key it did not make.
        atomicWriteFile(path, toEncryptedPem(der), { mode: 0o600, noOverwrite: true, ...(this.#fault ? { fault: this.#fault } : {}), faultName: 'keyfile' });
      } catch (e) {
        if ((e as { code?: unknown }).code === 'EEXIST') fail('ERR_INVALID_ARGUMENT', `a key file for ${handle} exists; it is never overwritten`, handle);
        throw e;
      }
      this.#keys.set(handle, privateKey);
      return { handle, publicKey: publicKeyToRaw(privateKey) };
    } finally {
      this.#pending.delete(handle);
    }
  }

  /**
   * ECDSA P-256 over SHA-256 of `message`: 64-byte `r ‖ s` (IEEE P1363). The first use of a key
   * decrypts it (concurrent first uses share one decryption); later uses are one
   * `crypto.sign` call on libuv's thread pool, so that concurrent callers sign on every core.
   *
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_FILE_CORRUPT` (this key only),
   *   `ERR_INVALID_ARGUMENT`, `ERR_KEYSTORE_CLOSED`
   * @see FIPS 186-5 §6.4 (ECDSA)
   */
  async sign(handle: string, message: Uint8Array): Promise<Uint8Array> {
    this.#assertOpen();
    if (!(message instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'the message must be a Uint8Array', typeof message);
    const key = this.#keys.get(handle) ?? (await this.#key(handle));
    return signOffThread(key, message);
  }

  /**
   * ECDH on P-256 with `peerPublicKey` (65-byte uncompressed point, checked to be on the curve):
   * the 32-byte x-coordinate Z.
   *
   * @throws SmkiError `ERR_KEY_INVALID` (peer point), `ERR_KEY_NOT_FOUND`,
   *   `ERR_KEY_FILE_CORRUPT`, `ERR_INVALID_ARGUMENT`, `ERR_KEYSTORE_CLOSED`
   * @see NIST SP 800-56A Rev. 3 §5.7.1.2
   */
  async deriveSharedSecret(handle: string, peerPublicKey: Uint8Array): Promise<Uint8Array> {
    this.#assertOpen();
    // The form here; the point itself is validated as the ECDH decodes it (ERR_KEY_INVALID).
    if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== 65 || peerPublicKey[0] !== 0x04) throw new SmkiError('ERR_KEY_INVALID', 'expected a 65-byte uncompressed P-256 point', {});
    const key = this.#keys.get(handle) ?? (await this.#key(handle));
    return deriveP256SharedSecret(key, peerPublicKey);
  }

  /**
   * The 65-byte uncompressed public point of a key, derived from the private key (decrypting it
   * on first use). A fresh copy each call.
   *
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_FILE_CORRUPT`, `ERR_INVALID_ARGUMENT`,
   *   `ERR_KEYSTORE_CLOSED`
   */
  async publicKey(handle: string): Promise<Uint8Array> {
    this.#assertOpen();
    return publicKeyToRaw(this.#keys.get(handle) ?? (await this.#key(handle)));
  }

  /**
   * Every handle with a key file (`keys/*.p8`), sorted. Lists files without decrypting them: a
   * damaged file is listed too.
   * @throws SmkiError `ERR_KEYSTORE_CLOSED`
   */
  async listHandles(): Promise<string[]> {
    this.#assertOpen();
    return this.#listSync();
  }

  /**
   * Delete a key's file (unlink, then fsync the directory) and forget the decrypted key. Nothing
   * is overwritten: on a copy-on-write or journalled file system old blocks may survive, which
   * is why they hold only ciphertext.
   *
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_INVALID_ARGUMENT`, `ERR_KEYSTORE_CLOSED`
   */
  async destroyKey(handle: string): Promise<void> {
    this.#assertOpen();
    const path = this.#path(checkHandle(handle));
    this.#forget(handle);
    try {
      unlinkSync(path);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) fail('ERR_KEY_NOT_FOUND', `no key file for ${handle}`, handle);
      throw e;
    }
    this.#fault?.('keyfile:after-unlink');
    fsyncDirectory(this.#keysDir);
    this.#fault?.('keyfile:after-fsync-dir');
  }

  /**
   * Forget every decrypted key and refuse further use. Idempotent. (A `KeyObject`'s memory is
   * OpenSSL's; it is released when garbage-collected, not zeroed by this call.)
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#keys.clear();
    this.#loading.clear();
  }

  // -------------------------------------------------------------------------------------------
  // internals

  #assertOpen(): void {
    if (this.#closed) fail('ERR_KEYSTORE_CLOSED', 'the file key backend is closed');
  }

  #path(handle: string): string {
    return join(this.#keysDir, `${handle}${KEY_FILE_SUFFIX}`);
  }

  #forget(handle: string): void {
    this.#keys.delete(handle);
    this.#loading.delete(handle);
  }

  #listSync(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.#keysDir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
    return names
      .filter((n) => n.endsWith(KEY_FILE_SUFFIX))
      .map((n) => n.slice(0, -KEY_FILE_SUFFIX.length))
      .filter((h) => FILE_HANDLE_PATTERN.test(h))
      .sort();
  }

  /** The decrypted key of `handle`, not cached (callers look in `#keys` first): decrypted once, concurrent callers share it. */
  #key(handle: string): Promise<KeyObject> {
    this.#assertOpen();
    checkHandle(handle);
    let p = this.#loading.get(handle);
    if (p === undefined) {
      const load = this.#decrypt(handle).then(
        (key) => {
          // Cache only if nothing (destroyKey, close) happened meanwhile.
          // Stryker disable next-line BlockStatement: equivalent; the settled load left in #loading would serve later calls the same key until destroyKey or close drops both
          if (this.#loading.get(handle) === load) {
            this.#loading.delete(handle);
            this.#keys.set(handle, key);
          }
          return key;
        },
        (e: unknown) => {
          if (this.#loading.get(handle) === load) this.#loading.delete(handle); // failures are not cached: a repaired file is read again
          throw remapWrongPassphrase(e, handle);
        },
      );
      p = load;
      this.#loading.set(handle, p);
    }
    return p;
  }

  /** Read and decrypt one key file; errors raw (WRONG_PASSPHRASE not yet remapped). */
  async #decrypt(handle: string): Promise<KeyObject> {
    const name = `${handle}${KEY_FILE_SUFFIX}`;
    const der = readKeyFile(this.#path(handle), name);
    let key: KeyObject;
    try {
      key = await decryptPrivateKey(der, this.#passphrase);
    } catch (e) {
      throw withName(e, name);
    }
    try {
      return toPrivateKey(key);
    } catch (e) {
      throw new SmkiError('ERR_KEY_FILE_CORRUPT', `${name} does not hold a P-256 private key`, { detail: `${name}: not a P-256 private key` }, { cause: e });
    }
  }

  /**
   * Verify the passphrase at open (see the class notes). `write`: create the canary when the
   * passphrase is confirmed (or there is nothing to check it against) and it is missing.
   */
  async #verifyPassphrase(write: boolean): Promise<void> {
    const canaryPath = join(this.directory, PASSPHRASE_CHECK_FILE);
    let canaryDamage: SmkiError | undefined;
    let canaryExists = false;
    try {
      const der = readKeyFile(canaryPath, PASSPHRASE_CHECK_FILE);
      await decryptPrivateKey(der, this.#passphrase);
      return;
    } catch (e) {
      if (e instanceof SmkiError && e.code === 'ERR_KEYSTORE_WRONG_PASSPHRASE') throw storeWrongPassphrase(e);
      if (e instanceof SmkiError && e.code === 'ERR_KEY_FILE_CORRUPT') {
        canaryExists = true;
        canaryDamage = withName(e, PASSPHRASE_CHECK_FILE) as SmkiError;
      } else if (!(e instanceof SmkiError && e.code === 'ERR_KEY_NOT_FOUND')) throw e;
    }

    // No canary, or a damaged one: confirm the passphrase with the keys themselves.
    let wrong: SmkiError | undefined;
    let wrongCount = 0;
    let confirmed = false;
    for (const handle of this.#listSync()) {
      try {
        const key = await this.#decrypt(handle);
        this.#keys.set(handle, key); // kept by open (verifyPassphrase closes its backend, which drops it)
        confirmed = true;
        break;
      } catch (e) {
        if (e instanceof SmkiError && e.code === 'ERR_KEYSTORE_WRONG_PASSPHRASE') {
          wrong = e;
          if (++wrongCount >= MAX_FALLBACK_WRONG) break;
        }
        // ERR_KEY_FILE_CORRUPT and the like: that key is damaged; try the next one.
      }
    }
    if (!confirmed && wrong) throw storeWrongPassphrase(wrong);
    if (!confirmed && canaryDamage) {
      throw new SmkiError(
        'ERR_KEY_FILE_CORRUPT',
        `${PASSPHRASE_CHECK_FILE} is damaged and no key file confirms the passphrase; remove it to have the next open write a new one`,
        { detail: PASSPHRASE_CHECK_FILE },
        { cause: canaryDamage },
      );
    }
    if (write && !canaryExists) {
      const der = await encryptPrivateKey(await generateP256(), this.#passphrase, this.#encrypt);
      atomicWriteFile(canaryPath, toEncryptedPem(der), { mode: 0o600, ...(this.#fault ? { fault: this.#fault } : {}), faultName: 'passphrase-check' });
    }
  }
}

function storeWrongPassphrase(cause: SmkiError): SmkiError<'ERR_KEYSTORE_WRONG_PASSPHRASE'> {
  return new SmkiError('ERR_KEYSTORE_WRONG_PASSPHRASE', 'the passphrase does not open this key store', {}, { cause });
}

/** After open verified the passphrase, a key that does not decrypt is damaged (or foreign). */
function remapWrongPassphrase(e: unknown, handle: string): unknown {
  if (e instanceof SmkiError && e.code === 'ERR_KEYSTORE_WRONG_PASSPHRASE') {
    const name = `${handle}${KEY_FILE_SUFFIX}`;
    return new SmkiError(
      'ERR_KEY_FILE_CORRUPT',
      `${name} does not decrypt under the store's passphrase: it is damaged, or was encrypted under another passphrase`,
      { detail: `${name}: does not decrypt` },
      { cause: e },
    );
  }
  return e;
}

function resolveOptions(options: Partial<FileKeyBackendOptions>): { directory: string; passphrase: string; encrypt: Pkcs8EncryptOptions } {
  if (options === null || typeof options !== 'object') fail('ERR_INVALID_ARGUMENT', 'options are required');
  if (typeof options.directory !== 'string' || options.directory.length === 0) fail('ERR_INVALID_ARGUMENT', 'options.directory must be a non-empty path');
  const env = options.env ?? process.env;
  const passphrase = options.passphrase ?? env[KEYSTORE_PASSPHRASE_ENV];
  if (typeof passphrase !== 'string' || passphrase.length === 0) fail('ERR_INVALID_ARGUMENT', `a file key backend needs a non-empty passphrase (option, or ${KEYSTORE_PASSPHRASE_ENV})`);
  // Checked and copied (defaults filled in): later changes to the caller's object change nothing.
  const encrypt: Pkcs8EncryptOptions = checkEncryptOptions(options);
  return { directory: resolve(options.directory), passphrase, encrypt };
}

/**
 * The temporary files (`.<name>.<pid>.<rand>.tmp`, as atomicWriteFile names them) among `names`
 * that are ours to remove: those of this process (atomicWriteFile is synchronous, so none of ours
 * is in flight while open runs) and those of processes no longer running. A backend is opened
 * before the `KeyStore` takes the directory lock, so a temporary of a live process (one
 * still writing, which then holds the lock) is left alone.
 */
function staleTemporaries(names: readonly string[], ours: (name: string) => boolean): string[] {
  return names.filter((n) => {
    const m = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/.exec(n);
    if (!m || !ours(n)) return false;
    const pid = Number(m[1]);
    if (pid === process.pid) return true;
    try {
      process.kill(pid, 0);
      return false; // alive
    } catch (e) {
      return !isErrno(e, 'EPERM'); // EPERM: alive, another user's
    }
  });
}

/** mkdir mode 0700 (whatever the umask) and make the new entry durable; an existing directory is left as it is. */
function mkdirOwnerOnly(dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  fsyncDirectory(dirname(dir));
}
