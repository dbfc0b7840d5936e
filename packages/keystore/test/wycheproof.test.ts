// Project Wycheproof ECDH P-256 vectors (test-vectors/wycheproof/, unmodified; the decisions on
// "acceptable" cases are in core's test/_wycheproof.ts) against every key backend's
// deriveSharedSecret: memory, encrypted file, and PKCS#11 on SoftHSM2. SEC 1 v2 §3.3.1 (ECDH, Z is
// the x-coordinate); NIST SP 800-56A Rev. 3 §5.7.1.2; PKCS #11 Current Mechanisms v2.40 §2.3.16
// (CKM_ECDH1_DERIVE, CKD_NULL).
//
// The vectors fix our private scalar, and backends generate their own keys, so each backend gets
// the 34 distinct scalars of the two files by the one way in that it reads keys:
// - memory: keys exist only through generateKey, so node:crypto's generateKeyPairSync is mocked
//   in this file to hand out the vector keys, in order, then the real one again (test-only; no
//   import path is added to the backend);
// - encrypted file: each key is written as the backend writes it (encrypted PKCS#8 PEM, scrypt,
//   `keys/<handle>.p8`) before the backend is opened, so every derivation decrypts its key from
//   disk first;
// - PKCS#11: each key is created on the token as a sensitive, non-extractable EC private key
//   (C_CreateObject with CKA_VALUE) with its public key object, under the backend's label prefix;
//   the backend finds and checks them as it does keys it generated.
//
// The KeyBackend interface takes the peer as a 65-byte point. The point file runs as it is. The
// SPKI file runs through the conversion the KeyStore's KeyAgreement applies before it calls the
// backend (`publicKeyToRaw(toPublicKey(peer))`, store.ts), so a refused SPKI is refused there,
// with core's code, and never reaches a backend.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as GrapheneNs from 'graphene-pk11';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSmkiError, publicKeyToRaw, toHex, toPublicKey, type SmkiErrorCode } from '@smki/core';
import type { KeyBackend } from '../src/backend.js';
import { FileKeyBackend } from '../src/backends/file.js';
import { MemoryKeyBackend } from '../src/backends/memory.js';
import { Pkcs11KeyBackend } from '../src/backends/pkcs11.js';
import { encryptPrivateKey, toEncryptedPem } from '../src/internal/pkcs8.js';
import { cases, decide, distinctPrivates, ecdhPoint, ecdhSpki, hex, privateKeyOf, scalar32, type EcdhCase } from '../../core/test/_wycheproof.js';
import { createSoftHsm, type SoftHsm } from './_softhsm.js';

/** Keys the mocked generateKeyPairSync hands out before it falls back to the real one. */
const queued = vi.hoisted(() => [] as KeyObject[]);
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  const generateKeyPairSync = ((...args: Parameters<typeof real.generateKeyPairSync>) => {
    const privateKey = queued.shift();
    if (privateKey === undefined) return (real.generateKeyPairSync as (...a: unknown[]) => unknown)(...args);
    return { privateKey, publicKey: real.createPublicKey(privateKey) };
  }) as typeof real.generateKeyPairSync;
  return { ...real, default: { ...real, generateKeyPairSync }, generateKeyPairSync };
});

const graphene = createRequire(import.meta.url)('graphene-pk11') as typeof GrapheneNs;
const PASSPHRASE = 'wycheproof keystore test';
const P256_EC_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');

const spkiFile = ecdhSpki();
const pointFile = ecdhPoint();
/** The 34 distinct private scalars (32-byte hex) of both files. */
const scalars = distinctPrivates(spkiFile, pointFile);
const scalarOf = (t: EcdhCase) => Buffer.from(scalar32(t.private)).toString('hex');

/** Each backend under test and, per scalar, the handle of that key in it. */
const backends: { name: string; backend: KeyBackend; handles: Map<string, string> }[] = [];
let hsm: SoftHsm | undefined;
let fileDir: string | undefined;
let rawModule: GrapheneNs.Module | undefined;

async function memoryBackend(): Promise<{ backend: KeyBackend; handles: Map<string, string> }> {
  const backend = new MemoryKeyBackend();
  const handles = new Map<string, string>();
  for (const s of scalars) {
    queued.push(privateKeyOf(s));
    const { handle, publicKey } = await backend.generateKey({ keyId: `wp-${s.slice(0, 16)}`, label: 'wycheproof' });
    expect(toHex(publicKey)).toBe(toHex(publicKeyToRaw(privateKeyOf(s)))); // the mock handed out the vector's key
    handles.set(s, handle);
  }
  expect(queued).toEqual([]);
  return { backend, handles };
}

async function fileBackend(): Promise<{ backend: KeyBackend; handles: Map<string, string> }> {
  fileDir = mkdtempSync(join(tmpdir(), 'smki-wycheproof-'));
  const keys = join(fileDir, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  const handles = new Map<string, string>();
  await Promise.all(
    scalars.map(async (s, i) => {
      const handle = `wp-${String(i).padStart(2, '0')}-${s.slice(0, 8)}`;
      const der = await encryptPrivateKey(privateKeyOf(s), PASSPHRASE);
      writeFileSync(join(keys, `${handle}.p8`), toEncryptedPem(der), { mode: 0o600 });
      handles.set(s, handle);
    }),
  );
  const backend = await FileKeyBackend.open({ directory: fileDir, passphrase: PASSPHRASE });
  expect((await backend.listHandles()).length).toBe(scalars.length);
  return { backend, handles };
}

async function pkcs11Backend(): Promise<{ backend: KeyBackend; handles: Map<string, string> }> {
  hsm = createSoftHsm();
  const backend = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin });
  // A raw session in this process: the same library, initialised and logged in by the backend.
  rawModule = graphene.Module.load(hsm.module);
  rawModule.initialize({ flags: 2 });
  const slots = rawModule.getSlots(true);
  let session: GrapheneNs.Session | undefined;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    if (slot.getToken().label.trimEnd() === hsm.tokenLabel) session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
  }
  if (!session) throw new Error('token not found');
  const handles = new Map<string, string>();
  try {
    for (const [i, s] of scalars.entries()) {
      const id = Buffer.from(`wp-${i}`);
      const label = `smki/wycheproof/${i}`;
      const point = publicKeyToRaw(privateKeyOf(s));
      session.create({
        class: graphene.ObjectClass.PRIVATE_KEY,
        keyType: graphene.KeyType.EC,
        token: true,
        private: true,
        sensitive: true,
        extractable: false,
        derive: true,
        sign: true,
        paramsEC: P256_EC_PARAMS,
        value: Buffer.from(s, 'hex'),
        id,
        label,
      });
      session.create({
        class: graphene.ObjectClass.PUBLIC_KEY,
        keyType: graphene.KeyType.EC,
        token: true,
        private: false,
        verify: true,
        paramsEC: P256_EC_PARAMS,
        pointEC: Buffer.concat([Buffer.from([0x04, 0x41]), point]),
        id,
        label,
      });
      const handle = toHex(id);
      expect(toHex(await backend.publicKey(handle))).toBe(toHex(point)); // found, and checked sensitive / non-extractable / P-256
      handles.set(s, handle);
    }
  } finally {
    session.close();
  }
  return { backend, handles };
}

beforeAll(async () => {
  backends.push({ name: 'memory', ...(await memoryBackend()) });
  backends.push({ name: 'file', ...(await fileBackend()) });
  backends.push({ name: 'pkcs11', ...(await pkcs11Backend()) });
}, 120_000);

afterAll(async () => {
  for (const b of backends) await b.backend.close();
  if (fileDir) rmSync(fileDir, { recursive: true, force: true });
  hsm?.cleanup();
});

/** One derivation: Z as hex, or the refusal's code. */
async function z(run: () => Promise<Uint8Array>): Promise<string> {
  try {
    return toHex(await run());
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
}

function expectDecided(t: EcdhCase, got: string, backend: string): void {
  const d = decide(t);
  if (d.accept) expect([backend, got]).toEqual([backend, t.shared.toUpperCase()]);
  else expect(d.codes as readonly string[]).toContain(got as SmkiErrorCode);
}

describe('ECDH, peer key as a raw point: KeyBackend.deriveSharedSecret (ecdh_secp256r1_ecpoint_test.json)', () => {
  it.each(cases(pointFile).map(([n, , t]) => [n, t] as const))('%s', async (_name, t) => {
    for (const { name, backend, handles } of backends) {
      const handle = handles.get(scalarOf(t))!;
      expectDecided(t, await z(() => backend.deriveSharedSecret(handle, hex(t.public))), name);
    }
  });
});

describe('ECDH, peer key as SPKI DER through the key store\'s conversion, then each backend (ecdh_secp256r1_test.json)', () => {
  it.each(cases(spkiFile).map(([n, , t]) => [n, t] as const))('%s', async (_name, t) => {
    for (const { name, backend, handles } of backends) {
      const handle = handles.get(scalarOf(t))!;
      expectDecided(t, await z(async () => backend.deriveSharedSecret(handle, publicKeyToRaw(toPublicKey(hex(t.public))))), name);
    }
  });

  it('a KeyObject node made from an explicit-parameter SPKI (tcId 359, 361) is refused by that conversion too', () => {
    for (const id of [359, 361]) {
      const t = spkiFile.testGroups[0]!.tests.find((c) => c.tcId === id)!;
      const foreign = createPublicKey({ key: Buffer.from(hex(t.public)), format: 'der', type: 'spki' });
      expect(() => publicKeyToRaw(foreign)).toThrow(expect.objectContaining({ code: 'ERR_KEY_CURVE_UNSUPPORTED' }));
    }
  });
});
