import { sign as nodeSign, type KeyObject } from 'node:crypto';

/**
 * ECDSA P-256/SHA-256 over `message` (64-byte `r ‖ s`, IEEE P1363) on libuv's thread pool rather
 * than the calling thread: with many concurrent callers the signatures run beside the store's own
 * work (its reads, records and commits) on the other cores. A fresh, plain `Uint8Array`.
 * @see FIPS 186-5 §6.4 (ECDSA)
 */
export function signOffThread(key: KeyObject, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    nodeSign('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, (error, signature) => {
      if (error) reject(error);
      else resolve(new Uint8Array(signature)); // a copy of its own, never a view of a shared pool
    });
  });
}
