import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { deriveP256SharedSecret, publicKeyToRaw, SmkiError } from '@smki/core';
import type { GeneratedKey, KeyBackend, KeySpec } from '../backend.js';
import { signOffThread } from '../internal/sign.js';

/**
 * Keys held in this process's memory only: for tests and short-lived tools. Nothing is written
 * anywhere; the keys are gone when the process ends (a store reopened over a new memory backend
 * finds its keys missing and refuses to use them).
 */
export class MemoryKeyBackend implements KeyBackend {
  /** `memory`. */
  readonly kind = 'memory';
  readonly #keys = new Map<string, { privateKey: KeyObject; publicKey: Uint8Array }>();
  #closed = false;

  #get(handle: string): KeyObject {
    if (this.#closed) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'the memory backend is closed', {});
    const k = this.#keys.get(handle);
    if (!k) throw new SmkiError('ERR_KEY_NOT_FOUND', `no key ${handle} in the memory backend`, { detail: handle });
    return k.privateKey;
  }

  /** Generate a P-256 key in memory. */
  async generateKey(spec: KeySpec): Promise<GeneratedKey> {
    if (this.#closed) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'the memory backend is closed', {});
    const handle = `${spec.keyId}.${randomBytes(4).toString('hex')}`;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = publicKeyToRaw(privateKey);
    this.#keys.set(handle, { privateKey, publicKey });
    return { handle, publicKey };
  }

  /** ECDSA P-256/SHA-256, 64-byte r‖s. */
  async sign(handle: string, message: Uint8Array): Promise<Uint8Array> {
    return signOffThread(this.#get(handle), message);
  }

  /** ECDH: the 32-byte x-coordinate. */
  async deriveSharedSecret(handle: string, peerPublicKey: Uint8Array): Promise<Uint8Array> {
    const key = this.#get(handle);
    // The form here; the point itself is validated as the ECDH decodes it (ERR_KEY_INVALID).
    if (!(peerPublicKey instanceof Uint8Array) || peerPublicKey.length !== 65 || peerPublicKey[0] !== 0x04) throw new SmkiError('ERR_KEY_INVALID', 'expected a 65-byte uncompressed P-256 point', {});
    return deriveP256SharedSecret(key, peerPublicKey);
  }

  /** The 65-byte public point. */
  async publicKey(handle: string): Promise<Uint8Array> {
    this.#get(handle);
    return (this.#keys.get(handle) as { publicKey: Uint8Array }).publicKey;
  }

  /** Every handle held. */
  async listHandles(): Promise<string[]> {
    return [...this.#keys.keys()];
  }

  /** Forget a key. */
  async destroyKey(handle: string): Promise<void> {
    this.#keys.delete(handle);
  }

  /** Forget every key. */
  async close(): Promise<void> {
    this.#keys.clear();
    this.#closed = true;
  }
}
