/**
 * An in-memory store of parsed certificates (trust anchors, issuing CAs and end-entity
 * certificates) with constant-time look-ups by entity, key identifier, issuer and serial, and
 * subject name.
 * @module
 */
import { constants, type Dirent } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  isSmkiError,
  parseEui64,
  SmkiError,
  toHex,
  type EndEntityKeyUsage,
} from '@smki/core';
import { parseCertificate, toCertificate } from './parse.js';
import { pemBlocks } from './internal/pem.js';
import type { CertificateInput, DistinguishedName, SmkiCertificate } from './types.js';

/** Default largest trust store file read by {@link TrustStore.loadDirectory}, in bytes (1 MiB). */
export const DEFAULT_TRUST_STORE_MAX_FILE_BYTES = 1024 * 1024;

/** Default most files read by one {@link TrustStore.loadDirectory} call. */
export const DEFAULT_TRUST_STORE_MAX_FILES = 10_000;

const CERTIFICATE_FILE_EXTENSIONS: readonly string[] = Object.freeze(['.pem', '.crt', '.cer', '.der']);
const MAX_DIRECTORY_DEPTH = 16;
const EMPTY: readonly SmkiCertificate[] = Object.freeze([]);

/**
 * Options of {@link TrustStore.loadDirectory}.
 * @see docs/conventions.md (Inputs: every parse of outside bytes is bounded)
 */
export interface TrustStoreLoadOptions {
  /**
   * What a file that cannot be read or parsed does: `'throw'` (the default: fail closed, nothing
   * from the directory is added) raises `ERR_TRUST_STORE_LOAD`; `'collect'` skips the file and
   * reports it in {@link TrustStoreLoadResult.errors}.
   */
  readonly onError?: 'throw' | 'collect';
  /** Largest file read, in bytes; a larger file is an error (default {@link DEFAULT_TRUST_STORE_MAX_FILE_BYTES}). */
  readonly maxFileBytes?: number;
  /** Most certificate files read; more is an error for the whole call (default {@link DEFAULT_TRUST_STORE_MAX_FILES}). */
  readonly maxFiles?: number;
  /** Whether to descend into subdirectories (default false). Symbolic links to directories are followed only when this is true, and each directory is read once. */
  readonly recursive?: boolean;
}

/** One file that {@link TrustStore.loadDirectory} could not use (with `onError: 'collect'`). */
export interface TrustStoreLoadError {
  /** The file's path. */
  readonly path: string;
  /**
   * `ERR_TRUST_STORE_LOAD` (context `{ path, detail }`), with the underlying error as `cause`:
   * the parse error, a read error, or `ERR_TRUST_STORE_SERIAL_CONFLICT`.
   */
  readonly error: SmkiError;
}

/** What {@link TrustStore.loadDirectory} read. */
export interface TrustStoreLoadResult {
  /** Every certificate the directory held, as stored (already-present ones included), in file order. */
  readonly certificates: readonly SmkiCertificate[];
  /** Paths of the files that were read successfully, in order. */
  readonly files: readonly string[];
  /** Files that were skipped (only with `onError: 'collect'`; empty otherwise). */
  readonly errors: readonly TrustStoreLoadError[];
}

function invalid(message: string, detail: string): SmkiError {
  return new SmkiError('ERR_INVALID_ARGUMENT', message, { detail });
}

/** Canonical upper-case hex of a hex string in either case. */
function canonicalHex(hex: unknown, what: string): string {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(hex)) {
    throw new SmkiError('ERR_HEX_INVALID', `${what} must be an even-length hexadecimal string`, {
      detail: typeof hex === 'string' ? `length ${hex.length}` : typeof hex,
    });
  }
  return hex.toUpperCase();
}

/** The minimal two's-complement spelling of a non-negative serial given in hex (adds or drops `00`). */
function minimalPositiveSerial(hex: string): string {
  let s = hex;
  while (s.length > 2 && s.startsWith('00')) s = s.slice(2);
  if (s.length > 0 && parseInt(s[0] as string, 16) >= 8) s = `00${s}`;
  return s;
}

function nameKey(name: Uint8Array | string | DistinguishedName): string {
  if (name instanceof Uint8Array) return toHex(name);
  if (typeof name === 'string') return canonicalHex(name, 'issuer name');
  if (typeof name === 'object' && name !== null && (name as { der?: unknown }).der instanceof Uint8Array) {
    return toHex((name as DistinguishedName).der);
  }
  throw invalid('a name must be DER bytes, DER hex or a DistinguishedName', typeof name);
}

function checkKeyUsage(keyUsage: unknown): EndEntityKeyUsage {
  if (keyUsage !== 'digitalSignature' && keyUsage !== 'keyAgreement') {
    throw invalid("keyUsage must be 'digitalSignature' or 'keyAgreement'", String(keyUsage).slice(0, 40));
  }
  return keyUsage;
}

function entityKey(entityId: string, role: number | 'device', keyUsage: EndEntityKeyUsage): string {
  return `${entityId}|${role}|${keyUsage}`;
}

/** Newest notBefore first; ties broken by fingerprint so the order never depends on insertion. */
function newestFirst(a: SmkiCertificate, b: SmkiCertificate): number {
  const d = b.notBefore.getTime() - a.notBefore.getTime();
  if (d !== 0) return d;
  return a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0;
}

/**
 * The certificates under one key. Adding is amortised O(1) (or a binary-search insert when
 * sorted); readers get a frozen snapshot, made once per change, that later additions never alter.
 * (Every device certificate has the same empty subject, so a bucket may grow large.)
 */
class Bucket {
  readonly #items: SmkiCertificate[] = [];
  #view: readonly SmkiCertificate[] | undefined;

  add(cert: SmkiCertificate, order?: (a: SmkiCertificate, b: SmkiCertificate) => number): void {
    if (order) {
      let lo = 0;
      let hi = this.#items.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (order(this.#items[mid] as SmkiCertificate, cert) <= 0) lo = mid + 1;
        else hi = mid;
      }
      this.#items.splice(lo, 0, cert);
    } else {
      this.#items.push(cert);
    }
    this.#view = undefined;
  }

  view(): readonly SmkiCertificate[] {
    return (this.#view ??= Object.freeze(this.#items.slice()));
  }
}

function addTo(map: Map<string, Bucket>, key: string, cert: SmkiCertificate, order?: (a: SmkiCertificate, b: SmkiCertificate) => number): void {
  let bucket = map.get(key);
  if (!bucket) map.set(key, (bucket = new Bucket()));
  bucket.add(cert, order);
}

function loadError(path: string, detail: string, cause?: unknown): SmkiError {
  return new SmkiError('ERR_TRUST_STORE_LOAD', `trust store file ${path}: ${detail}`, { path, detail }, cause === undefined ? undefined : { cause });
}

function describe(e: unknown): string {
  if (isSmkiError(e)) return `${e.code}: ${e.message}`.slice(0, 300);
  if (e instanceof Error) return e.message.slice(0, 300);
  return 'unreadable';
}

/** The (issuer name DER, serial) key RFC 5280 §4.1.2.2 makes unique. */
function issuerSerialKey(cert: SmkiCertificate): string {
  return `${toHex(cert.issuer.der)}|${cert.serialNumber}`;
}

/** Certificates checked and waiting to be added (see `TrustStore#stage`). */
interface Staging {
  readonly byFingerprint: Map<string, SmkiCertificate>;
  readonly bySerial: Map<string, SmkiCertificate>;
}

function newStaging(): Staging {
  return { byFingerprint: new Map(), bySerial: new Map() };
}

/** Read at most `max` bytes of a file; a file over `max` bytes is refused without reading it all. */
async function readBounded(path: string, max: number): Promise<Uint8Array> {
  // O_NONBLOCK: a FIFO swapped in after listing must not hang the load (it is refused below).
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw loadError(path, 'not a regular file');
    if (info.size > max) throw loadError(path, `file of ${info.size} bytes is over the ${max}-byte limit`);
    // Room for one byte more than stat() reported, to notice a file that grew since.
    const buffer = new Uint8Array(info.size + 1);
    let n = 0;
    while (n < buffer.length) {
      const { bytesRead } = await handle.read(buffer, n, buffer.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > info.size) throw loadError(path, 'file changed while it was read');
    return buffer.subarray(0, n);
  } finally {
    await handle.close();
  }
}

/** The certificates in one file: DER (one certificate) or PEM (one or more CERTIFICATE blocks). */
function parseFile(path: string, bytes: Uint8Array): SmkiCertificate[] {
  if (bytes.length === 0) throw loadError(path, 'empty file');
  const isPemName = extname(path).toLowerCase() === '.pem';
  try {
    if (!isPemName && bytes[0] === 0x30) return [parseCertificate(bytes)];
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    const blocks = pemBlocks(text, ['CERTIFICATE']);
    if (blocks.length === 0) throw new SmkiError('ERR_PEM_INVALID', 'no CERTIFICATE block', {});
    return blocks.map((b) => parseCertificate(b.der));
  } catch (e) {
    throw loadError(path, describe(e), e);
  }
}

/**
 * A set of parsed certificates with constant-time look-ups, for path building (candidate
 * issuers by subject name and key identifier), for finding a party's certificates by EUI-64,
 * Remote Party Role and key usage, and for finding the certificate a CRL entry or a message
 * names by issuer and serial.
 *
 * Every certificate is parsed once, on entry. Adding the same certificate again (same SHA-256
 * fingerprint) is a no-op. Returned arrays are frozen, and certificates are the immutable views
 * from {@link parseCertificate}. Look-ups are single `Map` look-ups (no scans).
 *
 * Security: the store decides nothing. Being in a store does not make a certificate valid or
 * trusted; validate paths with `validatePath` and pass {@link TrustStore.anchors} as anchors only
 * if everything in the store was vetted as a trust anchor.
 *
 * @see docs/domain.md §2 (generations; separate DS and KA certificates per party)
 * @see RFC 5280 §6.1 (path building by issuer name and key identifier)
 * @example
 * ```ts
 * import { createHierarchy, TrustStore } from '@smki/pki';
 * const { root, organisationCa, deviceCa } = await createHierarchy();
 * const store = new TrustStore([root.certificate, organisationCa.certificate, deviceCa.certificate]);
 * console.log(store.size, store.anchors().length, store.intermediates().length); // 3 1 2
 * const issuers = store.findBySubjectName(organisationCa.certificate.issuer.der); // [root]
 * ```
 */
export class TrustStore implements Iterable<SmkiCertificate> {
  readonly #byFingerprint = new Map<string, SmkiCertificate>();
  readonly #byEntity = new Map<string, Bucket>();
  readonly #bySki = new Map<string, Bucket>();
  readonly #bySubject = new Map<string, Bucket>();
  readonly #byIssuerSerial = new Map<string, SmkiCertificate>();
  readonly #anchors = new Bucket();
  readonly #intermediates = new Bucket();

  /**
   * A store holding `certificates` (PEM, DER or parsed views).
   * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_INVALID_ARGUMENT`, `ERR_TRUST_STORE_SERIAL_CONFLICT`
   */
  constructor(certificates?: Iterable<CertificateInput>) {
    if (certificates !== undefined) this.addAll(certificates);
  }

  /**
   * Read every `.pem`, `.crt`, `.cer` and `.der` file of `dir` into a new store. See
   * {@link TrustStore#loadDirectory} for the rules.
   * @throws SmkiError `ERR_TRUST_STORE_LOAD`, `ERR_INVALID_ARGUMENT`
   * @example
   * ```ts
   * import { TrustStore } from '@smki/pki';
   * const { store, errors } = await TrustStore.loadDirectory('/etc/smki/anchors', { onError: 'collect' });
   * for (const { path, error } of errors) console.warn(path, error.code);
   * console.log(store.anchors().length);
   * ```
   */
  static async loadDirectory(
    dir: string,
    options?: TrustStoreLoadOptions,
  ): Promise<
    TrustStoreLoadResult & {
      /** The new store, holding every certificate read. */
      readonly store: TrustStore;
    }
  > {
    const store = new TrustStore();
    const result = await store.loadDirectory(dir, options);
    return Object.freeze({ ...result, store });
  }

  /** How many distinct certificates the store holds. */
  get size(): number {
    return this.#byFingerprint.size;
  }

  /**
   * Add one certificate. Idempotent: if a certificate with the same fingerprint is already
   * stored, that one is returned and nothing changes.
   * @returns the stored parsed certificate
   * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_INVALID_ARGUMENT`,
   *   `ERR_TRUST_STORE_SERIAL_CONFLICT` (a different certificate with the same issuer and serial
   *   is stored: RFC 5280 §4.1.2.2 makes (issuer, serial) unique, so one of them is not genuine)
   * @example
   * ```ts
   * import { createHierarchy, TrustStore } from '@smki/pki';
   * const { root } = await createHierarchy();
   * const store = new TrustStore();
   * const stored = store.add(root.certificate.der);
   * console.log(store.add(stored) === stored, store.size); // true 1
   * ```
   */
  add(certificate: CertificateInput): SmkiCertificate {
    const cert = toCertificate(certificate);
    return this.#commit([cert])[0] as SmkiCertificate;
  }

  /**
   * Add several certificates, all or none: every input is parsed and checked before any is
   * added, so a bad one leaves the store unchanged.
   * @returns the stored parsed certificates, in input order (frozen)
   * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_INVALID_ARGUMENT`, `ERR_TRUST_STORE_SERIAL_CONFLICT`
   * @example
   * ```ts
   * import { createHierarchy, TrustStore } from '@smki/pki';
   * const { root, organisationCa } = await createHierarchy();
   * const store = new TrustStore();
   * store.addAll([root.certificate, organisationCa.certificate]);
   * ```
   */
  addAll(certificates: Iterable<CertificateInput>): readonly SmkiCertificate[] {
    if (certificates === null || typeof (certificates as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== 'function' || typeof certificates === 'string') {
      throw invalid('addAll expects an iterable of certificates', typeof certificates);
    }
    const parsed = Array.from(certificates, (c) => toCertificate(c));
    return this.#commit(parsed);
  }

  /**
   * Read every `.pem`, `.crt`, `.cer` and `.der` file (by extension, any case) of `dir` into this
   * store. A PEM file may hold several `CERTIFICATE` blocks (other blocks are ignored; a file
   * with none is an error); a `.crt`/`.cer`/`.der` file may be DER or PEM. Files are read in name
   * order; files with other extensions are ignored.
   *
   * Bounded: a file over `maxFileBytes` is refused unread, at most `maxFiles` files are read,
   * and subdirectories are entered only with `recursive: true` (each real directory once).
   *
   * Fails closed: with `onError: 'throw'` (the default) the first bad file raises
   * `ERR_TRUST_STORE_LOAD` and nothing from the directory is added. With `'collect'` bad files are
   * skipped and listed in `errors`, and the rest is added.
   *
   * A file whose certificate has the issuer and serial of a different certificate (in the store
   * or an earlier file) is a bad file too; its error's `cause` is `ERR_TRUST_STORE_SERIAL_CONFLICT`.
   *
   * @throws SmkiError `ERR_TRUST_STORE_LOAD` (context `{ path, detail }`, the underlying error as
   *   `cause`; in either mode when `dir` itself cannot be read or holds more than `maxFiles`
   *   files), `ERR_INVALID_ARGUMENT`
   * @example
   * ```ts
   * import { TrustStore } from '@smki/pki';
   * const store = new TrustStore();
   * const { certificates, files } = await store.loadDirectory('/etc/smki/anchors');
   * console.log(`${certificates.length} certificates from ${files.length} files`);
   * ```
   */
  async loadDirectory(dir: string, options: TrustStoreLoadOptions = {}): Promise<TrustStoreLoadResult> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalid('dir must be a non-empty path', typeof dir);
    const onError = options.onError ?? 'throw';
    if (onError !== 'throw' && onError !== 'collect') throw invalid("onError must be 'throw' or 'collect'", String(onError));
    const maxFileBytes = options.maxFileBytes ?? DEFAULT_TRUST_STORE_MAX_FILE_BYTES;
    const maxFiles = options.maxFiles ?? DEFAULT_TRUST_STORE_MAX_FILES;
    if (!Number.isSafeInteger(maxFileBytes) || maxFileBytes < 1) throw invalid('maxFileBytes must be a positive integer', String(maxFileBytes));
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) throw invalid('maxFiles must be a positive integer', String(maxFiles));

    const paths = await this.#listFiles(dir, options.recursive === true, maxFiles);
    const errors: TrustStoreLoadError[] = [];
    const read: { path: string; certs: SmkiCertificate[] }[] = [];
    for (const path of paths) {
      try {
        read.push({ path, certs: parseFile(path, await readBounded(path, maxFileBytes)) });
      } catch (e) {
        const error = isSmkiError(e, 'ERR_TRUST_STORE_LOAD') ? e : loadError(path, describe(e), e);
        if (onError === 'throw') throw error;
        errors.push(Object.freeze({ path, error }));
      }
    }
    // Stage file by file: a file whose certificates conflict with the store or an earlier file
    // (same issuer and serial, another certificate) is an error for that file. Nothing is added
    // before every file has been staged, so throw mode adds all or nothing.
    const staging = newStaging();
    const certificates: SmkiCertificate[] = [];
    const files: string[] = [];
    for (const { path, certs } of read) {
      try {
        certificates.push(...this.#stage(certs, staging));
        files.push(path);
      } catch (e) {
        const error = loadError(path, describe(e), e);
        if (onError === 'throw') throw error;
        errors.push(Object.freeze({ path, error }));
      }
    }
    for (const cert of staging.byFingerprint.values()) this.#insert(cert);
    return Object.freeze({ certificates: Object.freeze(certificates), files: Object.freeze(files), errors: Object.freeze(errors) });
  }

  /**
   * The certificate with this SHA-256 fingerprint (hex, either case), if stored.
   * @throws SmkiError `ERR_HEX_INVALID`
   * @example
   * ```ts
   * import { createHierarchy, TrustStore } from '@smki/pki';
   * const { root } = await createHierarchy();
   * const store = new TrustStore([root.certificate]);
   * store.get(root.certificate.fingerprint.toLowerCase()); // root.certificate
   * ```
   */
  get(fingerprint: string): SmkiCertificate | undefined {
    return this.#byFingerprint.get(canonicalHex(fingerprint, 'fingerprint'));
  }

  /** Whether a certificate with this fingerprint (hex, either case) is stored. @throws SmkiError `ERR_HEX_INVALID` */
  has(fingerprint: string): boolean {
    return this.get(fingerprint) !== undefined;
  }

  /**
   * Every generation of an organisation party's certificate for one Remote Party Role and key
   * usage, newest `notBefore` first (ties by fingerprint). Empty if none.
   * @param entityId - the party's EUI-64 (x500UniqueIdentifier) in any spelling `parseEui64` accepts
   * @param role - the Remote Party Role code (subject OU; decimal OU spellings count too)
   * @param keyUsage - `'digitalSignature'` or `'keyAgreement'`
   * @throws SmkiError `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT`
   * @see docs/domain.md §2 (organisation certificates: one per party, key usage and generation)
   * @example
   * ```ts
   * import { TrustStore } from '@smki/pki';
   * const store = new TrustStore();
   * const [current] = store.findByEntity('90-B3-D5-1F-30-01-00-00', 2, 'digitalSignature');
   * console.log(current?.serialNumber);
   * ```
   */
  findByEntity(entityId: string, role: number, keyUsage: EndEntityKeyUsage): readonly SmkiCertificate[] {
    const eui = parseEui64(entityId);
    if (!Number.isInteger(role)) throw invalid('role must be an integer Remote Party Role code', String(role));
    return this.#byEntity.get(entityKey(eui, role, checkKeyUsage(keyUsage)))?.view() ?? EMPTY;
  }

  /**
   * Every device certificate for a device (hwSerialNum) and key usage, newest `notBefore` first.
   * @param deviceId - the device's EUI-64 in any spelling `parseEui64` accepts
   * @param keyUsage - `'digitalSignature'` or `'keyAgreement'`
   * @throws SmkiError `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT`
   * @see docs/domain.md §2 (device certificates)
   * @example
   * ```ts
   * import { TrustStore } from '@smki/pki';
   * const store = new TrustStore();
   * const [ka] = store.findByDevice('00DB1234567890A0', 'keyAgreement');
   * ```
   */
  findByDevice(deviceId: string, keyUsage: EndEntityKeyUsage): readonly SmkiCertificate[] {
    const eui = parseEui64(deviceId);
    return this.#byEntity.get(entityKey(eui, 'device', checkKeyUsage(keyUsage)))?.view() ?? EMPTY;
  }

  /**
   * Certificates whose subjectKeyIdentifier is `ski` (hex, either case). Several may share one
   * (a re-certified key, or a CA re-issued with the same key), so all are returned, in the order
   * they were added.
   * @throws SmkiError `ERR_HEX_INVALID`
   * @see RFC 5280 §4.2.1.2
   * @example
   * ```ts
   * import { createHierarchy, TrustStore } from '@smki/pki';
   * const { root, organisationCa } = await createHierarchy();
   * const store = new TrustStore([root.certificate]);
   * const issuers = store.findBySubjectKeyId(organisationCa.certificate.authorityKeyId ?? ''); // [root]
   * ```
   */
  findBySubjectKeyId(ski: string): readonly SmkiCertificate[] {
    return this.#bySki.get(canonicalHex(ski, 'subject key identifier'))?.view() ?? EMPTY;
  }

  /**
   * The certificate with this issuer name and serial number, if stored.
   * @param issuer - the issuer name's DER (bytes or hex, either case) or a `DistinguishedName`
   * @param serial - the serial as hex of its DER content octets (either case); a positive serial
   *   is also found when given without its leading `00` octet or with extra leading zeros
   * @throws SmkiError `ERR_HEX_INVALID`, `ERR_INVALID_ARGUMENT`
   * @see RFC 5280 §4.1.2.2, §5.3 (CRL entries name certificates by issuer and serial)
   * @example
   * ```ts
   * import { createHierarchy, TrustStore } from '@smki/pki';
   * const { organisationCa } = await createHierarchy();
   * const store = new TrustStore([organisationCa.certificate]);
   * const c = organisationCa.certificate;
   * store.findByIssuerAndSerial(c.issuer.der, c.serialNumber.toLowerCase()); // organisationCa.certificate
   * ```
   */
  findByIssuerAndSerial(issuer: Uint8Array | string | DistinguishedName, serial: string): SmkiCertificate | undefined {
    const name = nameKey(issuer);
    const s = canonicalHex(serial, 'serial number');
    if (s.length === 0) return undefined;
    return this.#byIssuerSerial.get(`${name}|${s}`) ?? this.#byIssuerSerial.get(`${name}|${minimalPositiveSerial(s)}`);
  }

  /**
   * Certificates whose subject name DER equals `name` byte for byte: the candidate issuers of a
   * certificate whose issuer is `name` (RFC 5280 §7.1 name matching, as SMKI names are
   * compared by DER). In the order they were added.
   * @param name - name DER (bytes or hex, either case) or a `DistinguishedName`
   * @throws SmkiError `ERR_HEX_INVALID`, `ERR_INVALID_ARGUMENT`
   * @example
   * ```ts
   * import { createHierarchy, TrustStore } from '@smki/pki';
   * const { root, organisationCa } = await createHierarchy();
   * const store = new TrustStore([root.certificate, organisationCa.certificate]);
   * const candidates = store.findBySubjectName(organisationCa.certificate.issuer); // [root]
   * ```
   */
  findBySubjectName(name: Uint8Array | string | DistinguishedName): readonly SmkiCertificate[] {
    return this.#bySubject.get(nameKey(name))?.view() ?? EMPTY;
  }

  /**
   * The self-signed CA certificates (kind `'root'`), in the order they were added. These are
   * candidates for trust anchors; being in the store does not make them trusted.
   * @example
   * ```ts
   * import { TrustStore } from '@smki/pki';
   * const store = new TrustStore();
   * const anchors = store.anchors();
   * ```
   */
  anchors(): readonly SmkiCertificate[] {
    return this.#anchors.view();
  }

  /**
   * The issuing CA certificates (kind `'issuingCa'`: organisation and device CAs), in the order
   * they were added.
   * @example
   * ```ts
   * import { TrustStore } from '@smki/pki';
   * const store = new TrustStore();
   * const intermediates = store.intermediates();
   * ```
   */
  intermediates(): readonly SmkiCertificate[] {
    return this.#intermediates.view();
  }

  /** Every stored certificate, in the order added. */
  values(): IterableIterator<SmkiCertificate> {
    return this.#byFingerprint.values();
  }

  /** Every stored certificate, in the order added. */
  [Symbol.iterator](): IterableIterator<SmkiCertificate> {
    return this.#byFingerprint.values();
  }

  /** Parsed certificates added all or none; duplicates (by fingerprint) are skipped. */
  #commit(certs: readonly SmkiCertificate[]): readonly SmkiCertificate[] {
    const staging = newStaging();
    const out = this.#stage(certs, staging);
    for (const cert of staging.byFingerprint.values()) this.#insert(cert);
    return out;
  }

  /**
   * Check `certs` against the store and what is staged, then stage the new ones (all of them, or
   * none when one conflicts). Returns the stored or staged view of each, in order.
   */
  #stage(certs: readonly SmkiCertificate[], staging: Staging): readonly SmkiCertificate[] {
    const fresh = new Map<string, SmkiCertificate>();
    const freshSerials = new Map<string, SmkiCertificate>();
    const out: SmkiCertificate[] = [];
    for (const cert of certs) {
      const known = this.#byFingerprint.get(cert.fingerprint) ?? staging.byFingerprint.get(cert.fingerprint) ?? fresh.get(cert.fingerprint);
      if (known) {
        out.push(known);
        continue;
      }
      const key = issuerSerialKey(cert);
      const other = this.#byIssuerSerial.get(key) ?? staging.bySerial.get(key) ?? freshSerials.get(key);
      if (other) {
        throw new SmkiError(
          'ERR_TRUST_STORE_SERIAL_CONFLICT',
          `certificate ${cert.fingerprint} has the issuer and serial ${cert.serialNumber} of certificate ${other.fingerprint}`,
          { detail: `issuer ${cert.issuer.text}, serial ${cert.serialNumber}` },
        );
      }
      fresh.set(cert.fingerprint, cert);
      freshSerials.set(key, cert);
      out.push(cert);
    }
    for (const [k, v] of fresh) staging.byFingerprint.set(k, v);
    for (const [k, v] of freshSerials) staging.bySerial.set(k, v);
    return Object.freeze(out);
  }

  #insert(cert: SmkiCertificate): void {
    this.#byFingerprint.set(cert.fingerprint, cert);
    this.#byIssuerSerial.set(issuerSerialKey(cert), cert);
    addTo(this.#bySubject, toHex(cert.subject.der), cert);
    if (cert.subjectKeyId !== undefined) addTo(this.#bySki, cert.subjectKeyId, cert);
    if (cert.entityId !== undefined) {
      const who: number | 'device' | undefined = cert.kind === 'device' ? 'device' : cert.role;
      if (who !== undefined) {
        for (const ku of ['digitalSignature', 'keyAgreement'] as const) {
          if (cert.keyUsage.includes(ku)) addTo(this.#byEntity, entityKey(cert.entityId, who, ku), cert, newestFirst);
        }
      }
    }
    if (cert.kind === 'root') this.#anchors.add(cert);
    else if (cert.kind === 'issuingCa') this.#intermediates.add(cert);
  }

  async #listFiles(dir: string, recursive: boolean, maxFiles: number): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    const walk = async (d: string, depth: number): Promise<void> => {
      let real: string;
      let entries: Dirent[];
      try {
        real = await realpath(d);
        if (seen.has(real)) return;
        seen.add(real);
        entries = await readdir(d, { withFileTypes: true });
      } catch (e) {
        throw loadError(d, `cannot read directory: ${describe(e)}`, e);
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const subdirs: string[] = [];
      for (const entry of entries) {
        const path = join(d, entry.name);
        let isFile = entry.isFile();
        let isDir = entry.isDirectory();
        if (entry.isSymbolicLink()) {
          try {
            const s = await stat(path);
            isFile = s.isFile();
            isDir = s.isDirectory();
          } catch {
            // A dangling link: treated as a file so that a certificate name pointing nowhere is reported.
            isFile = true;
          }
        }
        if (isDir) {
          if (recursive) subdirs.push(path);
          continue;
        }
        if (!isFile || !CERTIFICATE_FILE_EXTENSIONS.includes(extname(entry.name).toLowerCase())) continue;
        if (out.length >= maxFiles) throw loadError(dir, `more than ${maxFiles} certificate files`);
        out.push(path);
      }
      if (depth >= MAX_DIRECTORY_DEPTH) {
        if (subdirs.length > 0) throw loadError(d, `directories nested deeper than ${MAX_DIRECTORY_DEPTH}`);
        return;
      }
      for (const sub of subdirs) await walk(sub, depth + 1);
    };
    await walk(dir, 0);
    return out;
  }
}

