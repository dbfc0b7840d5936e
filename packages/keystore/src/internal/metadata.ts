import { createHmac, hkdfSync, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SmkiError } from '@smki/core';
import { atomicWriteFile, readFileBounded, type FaultHook } from './fsutil.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Uint8Array, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

/** File name of the authenticated metadata. */
export const METADATA_FILE = 'store.json';
const FORMAT = 'smki-keystore/1';
const MAX_METADATA_BYTES = 256 * 1024 * 1024;

/** scrypt parameters of the store secret. */
export interface StoreKdf {
  readonly alg: 'scrypt';
  readonly salt: string;
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The secrets a passphrase opens: one key for the metadata MAC, one for the audit trail. */
export interface StoreSecrets {
  /** HMAC-SHA256 key over the metadata. */
  readonly metadataKey: Buffer;
  /** The input from which the audit key is derived. */
  readonly auditSecret: Buffer;
  /** A value stored in the header that tells a wrong passphrase from a damaged file. */
  readonly check: Buffer;
}

export async function deriveSecrets(passphrase: string, kdf: StoreKdf): Promise<StoreSecrets> {
  if (kdf.alg !== 'scrypt' || kdf.N < 2 ** 15 || kdf.N > 2 ** 20 || kdf.r !== 8 || kdf.p !== 1 || !/^[0-9a-f]{32,128}$/.test(kdf.salt)) {
    throw new SmkiError('ERR_KEYSTORE_CORRUPT', 'metadata KDF parameters are out of bounds', { detail: `${kdf.alg} N=${kdf.N}` });
  }
  const root = await scrypt(passphrase, Buffer.from(kdf.salt, 'hex'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + (1 << 20) });
  const sub = (info: string) => Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), info, 32));
  return {
    metadataKey: sub('smki-keystore metadata v1'),
    auditSecret: sub('smki-keystore audit secret v1'),
    check: sub('smki-keystore passphrase check v1'),
  };
}

/** The JSON envelope of a metadata file. */
export interface MetadataFile {
  readonly format: string;
  readonly kdf: StoreKdf;
  readonly check: string;
  readonly payload: string;
  readonly mac: string;
}

function macOf(key: Buffer, header: { format: string; kdf: StoreKdf; check: string }, payload: string): string {
  return createHmac('sha256', key).update(JSON.stringify([header.format, header.kdf, header.check])).update('\n').update(payload).digest('hex');
}

/**
 * The store's metadata file: a JSON envelope whose payload (the store's state, itself JSON) is
 * authenticated with HMAC-SHA256 under a key derived from the passphrase (scrypt, then HKDF).
 * Written atomically; read and verified before anything is trusted.
 */
export class MetadataFileStore {
  readonly #path: string;
  readonly #kdf: StoreKdf;
  readonly #secrets: StoreSecrets;
  readonly #fault: FaultHook | undefined;

  private constructor(path: string, kdf: StoreKdf, secrets: StoreSecrets, fault: FaultHook | undefined) {
    this.#path = path;
    this.#kdf = kdf;
    this.#secrets = secrets;
    this.#fault = fault;
  }

  /** The scrypt parameters the passphrase is stretched with. */
  get kdf(): StoreKdf {
    return this.#kdf;
  }

  /** The derived secrets (for the audit key). */
  get secrets(): StoreSecrets {
    return this.#secrets;
  }

  /**
   * Open the metadata in `dir`, or create the envelope for a new store. Returns the verified
   * payload (undefined for a new store).
   * @throws SmkiError `ERR_KEYSTORE_WRONG_PASSPHRASE`, `ERR_KEYSTORE_CORRUPT`
   */
  static async open(dir: string, passphrase: string, options: { scryptN?: number; fault?: FaultHook } = {}): Promise<{ store: MetadataFileStore; payload: string | undefined }> {
    const path = join(dir, METADATA_FILE);
    if (!existsSync(path)) {
      const kdf: StoreKdf = { alg: 'scrypt', salt: randomBytes(16).toString('hex'), N: options.scryptN ?? 2 ** 15, r: 8, p: 1 };
      const secrets = await deriveSecrets(passphrase, kdf);
      return { store: new MetadataFileStore(path, kdf, secrets, options.fault), payload: undefined };
    }
    let file: MetadataFile;
    try {
      file = JSON.parse(readFileBounded(path, MAX_METADATA_BYTES).toString('utf8')) as MetadataFile;
      if (file.format !== FORMAT || typeof file.payload !== 'string' || typeof file.mac !== 'string' || typeof file.check !== 'string' || typeof file.kdf !== 'object') {
        throw new Error('not a key store metadata file');
      }
    } catch (cause) {
      throw new SmkiError('ERR_KEYSTORE_CORRUPT', `${METADATA_FILE} is not readable store metadata`, { detail: (cause as Error).message?.slice(0, 200) });
    }
    const secrets = await deriveSecrets(passphrase, file.kdf);
    const check = Buffer.from(file.check, 'hex');
    if (check.length !== 32 || !timingSafeEqual(check, secrets.check)) {
      throw new SmkiError('ERR_KEYSTORE_WRONG_PASSPHRASE', 'the passphrase does not open this key store', {});
    }
    const mac = Buffer.from(macOf(secrets.metadataKey, file, file.payload), 'hex');
    const given = Buffer.from(file.mac, 'hex');
    if (given.length !== mac.length || !timingSafeEqual(given, mac)) {
      throw new SmkiError('ERR_KEYSTORE_CORRUPT', `${METADATA_FILE} fails its MAC: it was changed or damaged`, {});
    }
    return { store: new MetadataFileStore(path, file.kdf, secrets, options.fault), payload: file.payload };
  }

  /** Write a new payload, authenticated, atomically (durable when this returns). */
  write(payload: string): void {
    const header = { format: FORMAT, kdf: this.#kdf, check: this.#secrets.check.toString('hex') };
    const file: MetadataFile = { ...header, payload, mac: macOf(this.#secrets.metadataKey, header, payload) };
    atomicWriteFile(this.#path, JSON.stringify(file), { mode: 0o600, ...(this.#fault ? { fault: this.#fault } : {}), faultName: 'metadata' });
  }
}
