// The memory key backend against the KeyBackend contract, one refusal per case with its exact code
// (found by mutation testing: each case fails with the guard it checks removed). ECDSA P-256 per
// FIPS 186-5 §6.4 (r ‖ s per IEEE P1363), ECDH per NIST SP 800-56A Rev. 3 §5.7.1.2.
import { diffieHellman, generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSmkiError, publicKeyFromRaw, publicKeyToRaw, type SmkiErrorCode } from '@smki/core';
import { MemoryKeyBackend } from '../src/index.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';
import { PASS, tempDir } from './_store-fixtures.js';

async function failure(p: Promise<unknown>, code: SmkiErrorCode): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    expect(e.code).toBe(code);
    return e.context as Record<string, unknown>;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const peerPoint = publicKeyToRaw(peer.publicKey);
const msg = new TextEncoder().encode('a GBCS command');

describe('MemoryKeyBackend', () => {
  it('generates P-256 keys under handles that start with the key id; sign, derive and publicKey use them', async () => {
    const b = new MemoryKeyBackend();
    expect(b.kind).toBe('memory');
    const k1 = await b.generateKey({ keyId: 'K1', label: 'l' });
    const k2 = await b.generateKey({ keyId: 'K1', label: 'l' }); // same key id: still two keys
    expect(k1.handle.startsWith('K1.')).toBe(true);
    expect(k1.handle).not.toBe(k2.handle);
    expect((await b.listHandles()).sort()).toEqual([k1.handle, k2.handle].sort());
    expect(await b.publicKey(k1.handle)).toEqual(k1.publicKey);
    const sig = await b.sign(k1.handle, msg);
    expect(sig).toHaveLength(64);
    const pub = publicKeyFromRaw(k1.publicKey);
    expect(verify('sha256', msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    const z = await b.deriveSharedSecret(k1.handle, peerPoint);
    expect(Buffer.from(z)).toEqual(diffieHellman({ privateKey: peer.privateKey, publicKey: pub }));
  });

  it('signs many messages concurrently (on the thread pool): each signature verifies over its own message and is a plain 64-byte array of its own', async () => {
    const b = new MemoryKeyBackend();
    const k = await b.generateKey({ keyId: 'K1', label: 'l' });
    const pub = publicKeyFromRaw(k.publicKey);
    const messages = Array.from({ length: 200 }, (_, i) => new TextEncoder().encode(`command ${i}`));
    const sigs = await Promise.all(messages.map((m) => b.sign(k.handle, m)));
    sigs.forEach((sig, i) => {
      expect(sig.constructor).toBe(Uint8Array);
      expect(sig.buffer.byteLength).toBe(64); // never a view of a shared pool
      expect(verify('sha256', messages[i] as Uint8Array, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      expect(verify('sha256', messages[(i + 1) % 200] as Uint8Array, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
    });
  });

  it('an unknown handle is ERR_KEY_NOT_FOUND (with the handle) for sign, derive and publicKey', async () => {
    const b = new MemoryKeyBackend();
    await b.generateKey({ keyId: 'K1', label: 'l' });
    expect((await failure(b.sign('K9.00000000', msg), 'ERR_KEY_NOT_FOUND')).detail).toBe('K9.00000000');
    await failure(b.deriveSharedSecret('K9.00000000', peerPoint), 'ERR_KEY_NOT_FOUND');
    await failure(b.publicKey('K9.00000000'), 'ERR_KEY_NOT_FOUND');
  });

  it('destroyKey forgets the key: no longer listed, used or read', async () => {
    const b = new MemoryKeyBackend();
    const { handle } = await b.generateKey({ keyId: 'K1', label: 'l' });
    const other = await b.generateKey({ keyId: 'K2', label: 'l' });
    await b.destroyKey(handle);
    expect(await b.listHandles()).toEqual([other.handle]);
    await failure(b.sign(handle, msg), 'ERR_KEY_NOT_FOUND');
    await failure(b.publicKey(handle), 'ERR_KEY_NOT_FOUND');
    expect(await b.sign(other.handle, msg)).toHaveLength(64);
  });

  it('close forgets every key and refuses every later use with ERR_KEYSTORE_CLOSED', async () => {
    const b = new MemoryKeyBackend();
    const { handle } = await b.generateKey({ keyId: 'K1', label: 'l' });
    await b.close();
    expect(await b.listHandles()).toEqual([]);
    await failure(b.sign(handle, msg), 'ERR_KEYSTORE_CLOSED');
    await failure(b.deriveSharedSecret(handle, peerPoint), 'ERR_KEYSTORE_CLOSED');
    await failure(b.publicKey(handle), 'ERR_KEYSTORE_CLOSED');
    await failure(b.generateKey({ keyId: 'K2', label: 'l' }), 'ERR_KEYSTORE_CLOSED');
  });

  it('a key store over it lists the keys its metadata does not know as orphans', async () => {
    const b = new MemoryKeyBackend();
    const { handle } = await b.generateKey({ keyId: 'left-by-a-crash', label: 'l' });
    const store = await KeyStore.open({ directory: tempDir(), backend: b, passphrase: PASS, auditGroupCommitMs: 5 });
    try {
      expect(store.orphanHandles()).toEqual([handle]);
    } finally {
      await store.close();
    }
  });
});
