// docs/domain.md §4 (ACB MAC steps 1–2); NIST SP 800-56A Rev. 3 §5.7.1.2 (ECC CDH) and §5.8.2.1:
// the in-process ECDH behind deriveKey, observed through a wrapped node:crypto. Z is zeroed after
// the KDF, and a failure of the crypto backend (say, a FIPS provider refusing the operation) is
// reported as ERR_KEY_INVALID with the backend's error as cause, never as a bare Error.
// A file of its own because it replaces node:crypto's diffieHellman for everything it imports.
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SmkiError } from '@smki/core';
import { deriveKey, kdf, otherInfo } from '../src/crypto.js';

const backend = vi.hoisted(() => ({ fail: false, last: undefined as Buffer | undefined, copy: undefined as Buffer | undefined }));

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  const diffieHellman: typeof real.diffieHellman = (options) => {
    if (backend.fail) throw new Error('backend refused the operation');
    const z = real.diffieHellman(options);
    backend.last = z;
    backend.copy = Buffer.from(z);
    return z;
  };
  return { ...real, default: { ...real, diffieHellman }, diffieHellman };
});

const acb = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const options = { originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 7n, mode: 'command', privateKey: acb.privateKey, publicKey: device.publicKey } as const;

afterEach(() => {
  backend.fail = false;
  backend.last = undefined;
  backend.copy = undefined;
});

describe('deriveKey and its ECDH', () => {
  it('derives K from the Z the backend returned, then zeroes that Z', () => {
    const k = deriveKey(options);
    expect(backend.last).toBeDefined();
    expect(Buffer.from(k).equals(Buffer.from(kdf(backend.copy as Buffer, otherInfo(options))))).toBe(true);
    expect((backend.copy as Buffer).some((b) => b !== 0)).toBe(true);
    expect((backend.last as Buffer).every((b) => b === 0)).toBe(true);
  });

  it('a backend failure is ERR_KEY_INVALID with an empty context and the failure as cause', () => {
    backend.fail = true;
    let e: SmkiError | undefined;
    try {
      deriveKey(options);
    } catch (err) {
      e = err as SmkiError;
    }
    expect({ code: e?.code, context: e?.context }).toEqual({ code: 'ERR_KEY_INVALID', context: {} });
    expect((e?.cause as Error).message).toBe('backend refused the operation');
  });
});
