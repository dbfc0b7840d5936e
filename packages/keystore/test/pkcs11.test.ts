// The PKCS#11 key backend against a real SoftHSM2 token (test/_softhsm.ts makes a private one).
// PKCS #11 Current Mechanisms v2.40 §2.3 (CKM_EC_KEY_PAIR_GEN, CKM_ECDSA over a host digest,
// CKM_ECDH1_DERIVE with CKD_NULL); PKCS #11 Base v2.40 §4.9 (CKA_SENSITIVE, CKA_EXTRACTABLE:
// the private value is never readable); docs/domain.md §4 (ECDSA P-256/SHA-256 r‖s, high-S allowed; ECDH Z).
import { execFile } from 'node:child_process';
import { diffieHellman, generateKeyPairSync, randomBytes, verify as nodeVerify } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type * as GrapheneNs from 'graphene-pk11';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFromRaw, SmkiError, type SmkiErrorCode } from '@smki/core';
import { Pkcs11KeyBackend } from '../src/backends/pkcs11.js';
import { createSoftHsm, type SoftHsm } from './_softhsm.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const graphene = createRequire(import.meta.url)('graphene-pk11') as typeof GrapheneNs;
const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but the call resolved');
}

/** The promise rejects with a SmkiError of `code`, never a raw pkcs11js error. */
async function expectCode<C extends SmkiErrorCode>(p: Promise<unknown>, code: C): Promise<SmkiError<C>> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(SmkiError);
  expect((e as SmkiError).code).toBe(code);
  return e as SmkiError<C>;
}

function verifies(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return nodeVerify('sha256', message, { key: publicKeyFromRaw(publicKey), dsaEncoding: 'ieee-p1363' }, signature);
}

function rawPoint(key: ReturnType<typeof generateKeyPairSync>['publicKey']): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'spki' }).subarray(-65));
}

function runChild(env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', join(here, '_pkcs11-child.ts')], {
    cwd: repoRoot,
    env: { ...env, TSX_TSCONFIG_PATH: join(repoRoot, 'tsconfig.json') },
    timeout: 60_000,
  }).then(({ stdout }) => JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
}

let hsm: SoftHsm;
let backend: Pkcs11KeyBackend;
const SPARE_TOKEN = 'smki-spare';
const GONE_TOKEN = 'smki-gone';

/**
 * A raw graphene session on a token, in this process: the library is the same (dlopen), already
 * initialised, and logged in by the backend, so the test can read what is really on the token.
 */
function rawSession(tokenLabel: string, readWrite = false): GrapheneNs.Session {
  const mod = graphene.Module.load(hsm.module);
  mod.initialize({ flags: 2 });
  const slots = mod.getSlots(true);
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    if (slot.getToken().label.trimEnd() === tokenLabel) return slot.open(graphene.SessionFlag.SERIAL_SESSION | (readWrite ? graphene.SessionFlag.RW_SESSION : 0));
  }
  throw new Error(`no token ${tokenLabel}`);
}

beforeAll(async () => {
  hsm = createSoftHsm();
  hsm.addToken(SPARE_TOKEN);
  hsm.addToken(GONE_TOKEN);
  backend = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin });
});

afterAll(async () => {
  await backend?.close();
  hsm?.cleanup();
});

describe('Pkcs11KeyBackend: loading', () => {
  it('importing the backend loads no native addon; open does (optional peer, loaded lazily)', async () => {
    const out = await runChild({
      ...hsm.env,
      SMKI_T_MODE: 'import',
      SMKI_T_MODULE: hsm.module,
      SMKI_T_TOKEN: SPARE_TOKEN,
      SMKI_T_PIN: hsm.pin,
    });
    expect(out).toEqual({ before: false, afterImport: false, afterOpen: true });
  });
});

describe('Pkcs11KeyBackend: key generation (PKCS #11 v2.40 §2.3.5, §4.9)', () => {
  it('generates a P-256 key pair on the token: sensitive, never extractable, labelled, CKA_ID = key id', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'gen-1', label: '90B3D51F30010000/north/DS/g1' });
    expect(handle).toBe(Buffer.from('gen-1').toString('hex').toUpperCase());
    expect(publicKey.length).toBe(65);
    expect(publicKeyFromRaw(publicKey).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(await backend.publicKey(handle)).toEqual(publicKey);

    const session = rawSession(hsm.tokenLabel);
    try {
      const privates = session.find({ class: graphene.ObjectClass.PRIVATE_KEY, id: Buffer.from('gen-1') });
      expect(privates.length).toBe(1);
      const a = privates.items(0).getAttribute({
        label: null,
        token: null,
        private: null,
        sensitive: null,
        extractable: null,
        alwaysSensitive: null,
        neverExtractable: null,
        local: null,
        sign: null,
        derive: null,
        keyType: null,
      });
      expect(a).toMatchObject({
        label: 'smki/90B3D51F30010000/north/DS/g1',
        token: true,
        private: true,
        sensitive: true,
        extractable: false,
        alwaysSensitive: true,
        neverExtractable: true,
        local: true,
        sign: true,
        derive: true,
        keyType: graphene.KeyType.EC,
      });
      // The private value cannot be read: CKR_ATTRIBUTE_SENSITIVE.
      expect(() => privates.items(0).getAttribute({ value: null })).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);

      const publics = session.find({ class: graphene.ObjectClass.PUBLIC_KEY, id: Buffer.from('gen-1') });
      expect(publics.length).toBe(1);
      const p = publics.items(0).getAttribute({ label: null, token: null, verify: null, pointEC: null });
      expect(p).toMatchObject({ label: 'smki/90B3D51F30010000/north/DS/g1', token: true, verify: true });
      // CKA_EC_POINT is a DER OCTET STRING around the point; the backend unwraps it.
      expect(Buffer.from(p.pointEC as Buffer).subarray(2)).toEqual(Buffer.from(publicKey));
    } finally {
      session.close();
    }
  });

  it('refuses a second key with the same key id (ERR_HSM_KEY_EXISTS), leaving the first intact', async () => {
    const first = await backend.generateKey({ keyId: 'dup-1', label: 'org/p/DS/g1' });
    const e = await expectCode(backend.generateKey({ keyId: 'dup-1', label: 'org/p/DS/g2' }), 'ERR_HSM_KEY_EXISTS');
    expect(e.context).toEqual({ detail: first.handle });
    expect(await backend.publicKey(first.handle)).toEqual(first.publicKey);
  });

  it('processes racing to generate one key id: never two key pairs behind one handle (ERR_HSM_KEY_EXISTS for the others)', async () => {
    // A database key store shared by several processes can have two of them pick the same key id
    // at once (one commits, the other's row is refused). The token must not keep two pairs under it.
    for (let round = 0; round < 3; round++) {
      const keyId = `race-${round}-${randomBytes(4).toString('hex')}`;
      const start = Date.now() + 6000;
      const outs = await Promise.all(
        Array.from({ length: 6 }, () =>
          runChild({ ...hsm.env, SMKI_T_MODE: 'generate', SMKI_T_MODULE: hsm.module, SMKI_T_TOKEN: hsm.tokenLabel, SMKI_T_PIN: hsm.pin, SMKI_T_KEY_ID: keyId, SMKI_T_START: String(start) }),
        ),
      );
      const made = outs.filter((o) => typeof o.handle === 'string');
      expect(outs.filter((o) => o.handle === undefined).every((o) => o.code === 'ERR_HSM_KEY_EXISTS'), JSON.stringify(outs)).toBe(true);
      expect(made.length, JSON.stringify(outs)).toBeLessThanOrEqual(1);
      // Seen on the token itself: at most one pair under the CKA_ID, and the survivor is the key reported.
      const raw = rawSession(hsm.tokenLabel);
      try {
        expect(raw.find({ id: Buffer.from(keyId) }).length).toBe(made.length * 2);
      } finally {
        raw.close();
      }
      if (made[0]) {
        const message = randomBytes(32);
        const handle = made[0].handle as string;
        expect(verifies(Buffer.from(made[0].publicKey as string, 'hex'), message, await backend.sign(handle, message))).toBe(true);
      }
    }
  }, 120_000);

  it('refuses bad key specs (ERR_INVALID_ARGUMENT)', async () => {
    await expectCode(backend.generateKey({ keyId: '', label: 'x' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(backend.generateKey({ keyId: 'k'.repeat(65), label: 'x' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(backend.generateKey({ keyId: 'ok', label: 'x'.repeat(300) }), 'ERR_INVALID_ARGUMENT');
    await expectCode(backend.generateKey({ keyId: 'ok', label: 5 as unknown as string }), 'ERR_INVALID_ARGUMENT');
  });

  it('is atomic from the caller’s view: a failure after the token made the pair leaves nothing behind', async () => {
    const faulty = await Pkcs11KeyBackend.open({
      module: hsm.module,
      tokenLabel: hsm.tokenLabel,
      pin: hsm.pin,
      fault: (point) => {
        if (point === 'pkcs11:after-generate') throw new Error('injected fault');
      },
    });
    try {
      const e = await expectCode(faulty.generateKey({ keyId: 'atomic-1', label: 'org/p/DS/g1' }), 'ERR_HSM_OPERATION_FAILED');
      expect((e.cause as Error).message).toBe('injected fault');
      const handle = Buffer.from('atomic-1').toString('hex').toUpperCase();
      expect(await backend.listHandles()).not.toContain(handle);
      // The key id is free again.
      const again = await backend.generateKey({ keyId: 'atomic-1', label: 'org/p/DS/g1' });
      expect(again.handle).toBe(handle);
    } finally {
      await faulty.close();
    }
  });
});

describe('Pkcs11KeyBackend: ECDSA (docs/domain.md §4; PKCS #11 Mechanisms v2.40 §2.3.6)', () => {
  it('signs SHA-256 of the message on the token; node:crypto verifies; high-S signatures occur and verify', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'sign-1', label: 'org/p/DS/g1' });
    let highS = 0;
    for (let i = 0; i < 64; i++) {
      const message = randomBytes(1 + i * 7);
      const signature = await backend.sign(handle, message);
      expect(signature.length).toBe(64);
      expect(verifies(publicKey, message, signature)).toBe(true);
      // The signature is over SHA-256(message), not over the message: another message fails.
      expect(verifies(publicKey, Buffer.concat([message, Buffer.from([0])]), signature)).toBe(false);
      if (BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`) > P256_N / 2n) highS++;
    }
    expect(highS).toBeGreaterThan(0); // P(no high-S in 64) = 2^-64
  });

  it('signs an empty message and a 64 KiB one', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'sign-2', label: 'org/p/DS/g1' });
    for (const message of [new Uint8Array(0), randomBytes(65536)]) {
      expect(verifies(publicKey, message, await backend.sign(handle, message))).toBe(true);
    }
  });

  it('rejects a bad handle, an unknown handle and a non-byte message', async () => {
    await expectCode(backend.sign('not hex', new Uint8Array(1)), 'ERR_INVALID_ARGUMENT');
    await expectCode(backend.sign('ABC', new Uint8Array(1)), 'ERR_INVALID_ARGUMENT');
    await expectCode(backend.sign('', new Uint8Array(1)), 'ERR_INVALID_ARGUMENT');
    await expectCode(backend.sign('AA'.repeat(65), new Uint8Array(1)), 'ERR_INVALID_ARGUMENT');
    const e = await expectCode(backend.sign('DEADBEEF', new Uint8Array(1)), 'ERR_KEY_NOT_FOUND');
    expect(e.context).toEqual({ detail: 'DEADBEEF' });
    const { handle } = await backend.generateKey({ keyId: 'sign-3', label: 'org/p/DS/g1' });
    await expectCode(backend.sign(handle, 'text' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
  });

  it('accepts a lower-case handle as the same key', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'sign-4', label: 'org/p/DS/g1' });
    const message = randomBytes(32);
    expect(verifies(publicKey, message, await backend.sign(handle.toLowerCase(), message))).toBe(true);
  });
});

describe('Pkcs11KeyBackend: ECDH (docs/domain.md §4; PKCS #11 Mechanisms v2.40 §2.3.16)', () => {
  it('derives Z on the token equal to node:crypto ECDH with the peer’s private key, and leaves no secret object', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'ka-1', label: 'org/p/KA/g1' });
    for (let i = 0; i < 8; i++) {
      const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const z = await backend.deriveSharedSecret(handle, rawPoint(peer.publicKey));
      const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: publicKeyFromRaw(publicKey) });
      expect(Buffer.from(z)).toEqual(expected);
    }
    const session = rawSession(hsm.tokenLabel);
    try {
      expect(session.find({ class: graphene.ObjectClass.SECRET_KEY }).length).toBe(0);
    } finally {
      session.close();
    }
  });

  it('refuses a peer point that is not on P-256, compressed, or the wrong length (ERR_KEY_INVALID)', async () => {
    const { handle } = await backend.generateKey({ keyId: 'ka-2', label: 'org/p/KA/g1' });
    const good = rawPoint(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const offCurve = new Uint8Array(good);
    offCurve[64] = offCurve[64]! ^ 1;
    const compressed = new Uint8Array(33);
    compressed[0] = 0x02;
    compressed.set(good.subarray(1, 33), 1);
    for (const bad of [offCurve, compressed, good.subarray(0, 64), new Uint8Array(65)]) {
      await expectCode(backend.deriveSharedSecret(handle, bad), 'ERR_KEY_INVALID');
    }
  });
});

describe('Pkcs11KeyBackend: concurrency', () => {
  it('200 concurrent signs and 200 concurrent derives on 3 keys all come out right', async () => {
    const keys = await Promise.all(
      [0, 1, 2].map((i) => backend.generateKey({ keyId: `conc-${i}`, label: `org/p${i}/DS/g1` })),
    );
    const peers = Array.from({ length: 10 }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const jobs: Array<Promise<boolean>> = [];
    for (let i = 0; i < 200; i++) {
      const key = keys[i % 3]!;
      const message = randomBytes(16 + (i % 50));
      jobs.push(backend.sign(key.handle, message).then((sig) => verifies(key.publicKey, message, sig)));
      const peer = peers[i % peers.length]!;
      jobs.push(
        backend
          .deriveSharedSecret(key.handle, rawPoint(peer.publicKey))
          .then((z) => Buffer.from(z).equals(diffieHellman({ privateKey: peer.privateKey, publicKey: publicKeyFromRaw(key.publicKey) }))),
      );
    }
    const results = await Promise.all(jobs);
    expect(results.length).toBe(400);
    expect(results.every(Boolean)).toBe(true);
  });

  it('concurrent generate, list and destroy calls do not interfere', async () => {
    const made = await Promise.all(Array.from({ length: 12 }, (_, i) => backend.generateKey({ keyId: `par-${i}`, label: 'org/par/DS/g1' })));
    const signed = made.map((k) => backend.sign(k.handle, new Uint8Array([1, 2, 3])));
    const listed = backend.listHandles();
    const destroyed = Promise.all(made.slice(0, 6).map((k) => backend.destroyKey(k.handle)));
    await Promise.all([Promise.allSettled(signed), listed, destroyed]);
    const left = await backend.listHandles();
    for (const [i, k] of made.entries()) expect(left.includes(k.handle)).toBe(i >= 6);
  });
});

describe('Pkcs11KeyBackend: listHandles and destroyKey', () => {
  it('lists only keys with its label prefix; destroyKey removes both objects and is idempotent', async () => {
    const other = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin, labelPrefix: 'other/' });
    try {
      const mine = await backend.generateKey({ keyId: 'list-1', label: 'org/p/DS/g1' });
      const theirs = await other.generateKey({ keyId: 'list-2', label: 'org/p/DS/g1' });
      const listed = await backend.listHandles();
      expect(listed).toContain(mine.handle);
      expect(listed).not.toContain(theirs.handle);
      expect([...listed].sort()).toEqual(listed);
      expect(await other.listHandles()).toEqual([theirs.handle]);
      // Segregation: a backend does not use another prefix's key.
      await expectCode(backend.sign(theirs.handle, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND');
      await backend.destroyKey(theirs.handle); // not ours: nothing happens
      expect(await other.listHandles()).toEqual([theirs.handle]);

      await backend.destroyKey(mine.handle);
      expect(await backend.listHandles()).not.toContain(mine.handle);
      await expectCode(backend.sign(mine.handle, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND');
      await expectCode(backend.publicKey(mine.handle), 'ERR_KEY_NOT_FOUND');
      await backend.destroyKey(mine.handle); // idempotent
      const session = rawSession(hsm.tokenLabel);
      try {
        expect(session.find({ id: Buffer.from('list-1') }).length).toBe(0);
      } finally {
        session.close();
      }
      await other.destroyKey(theirs.handle);
      expect(await other.listHandles()).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('a crash between destroying the private and the public object leaves a listed orphan that destroyKey cleans', async () => {
    const { handle } = await backend.generateKey({ keyId: 'orphan-1', label: 'org/p/DS/g1' });
    const faulty = await Pkcs11KeyBackend.open({
      module: hsm.module,
      tokenLabel: hsm.tokenLabel,
      pin: hsm.pin,
      fault: (point) => {
        if (point === 'pkcs11:after-destroy-private') throw new Error('crash');
      },
    });
    try {
      await expectCode(faulty.destroyKey(handle), 'ERR_HSM_OPERATION_FAILED');
    } finally {
      await faulty.close();
    }
    expect(await backend.listHandles()).toContain(handle); // the public half
    await expectCode(backend.sign(handle, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND');
    await backend.destroyKey(handle);
    expect(await backend.listHandles()).not.toContain(handle);
  });

  it('a key destroyed by someone else after it was cached gives ERR_KEY_NOT_FOUND', async () => {
    const { handle } = await backend.generateKey({ keyId: 'stale-1', label: 'org/p/DS/g1' });
    await backend.sign(handle, new Uint8Array(1)); // cached
    const session = rawSession(hsm.tokenLabel, true);
    try {
      expect(session.destroy({ id: Buffer.from('stale-1') })).toBe(2);
    } finally {
      session.close();
    }
    await expectCode(backend.sign(handle, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND');
  });
});

describe('Pkcs11KeyBackend: reopening', () => {
  it('a new open in this process finds the keys by handle', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'reopen-1', label: 'org/p/DS/g1' });
    const second = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin });
    expect(await second.publicKey(handle)).toEqual(publicKey);
    const message = randomBytes(40);
    expect(verifies(publicKey, message, await second.sign(handle, message))).toBe(true);
    await second.close();
    // Closing the second backend neither logged out nor finalised the first one's module.
    expect(verifies(publicKey, message, await backend.sign(handle, message))).toBe(true);
  });

  it('another process finds the keys by handle and signs with them', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'reopen-2', label: 'org/p/DS/g1' });
    const message = randomBytes(24);
    const out = await runChild({
      ...hsm.env,
      SMKI_T_MODE: 'sign',
      SMKI_T_MODULE: hsm.module,
      SMKI_T_TOKEN: hsm.tokenLabel,
      SMKI_T_PIN: hsm.pin,
      SMKI_T_HANDLE: handle,
      SMKI_T_MESSAGE: message.toString('hex'),
    });
    expect(out.handles).toContain(handle);
    expect(out.publicKey).toBe(Buffer.from(publicKey).toString('hex'));
    expect(verifies(publicKey, message, Buffer.from(out.signature as string, 'hex'))).toBe(true);
  });
});

describe('Pkcs11KeyBackend: opening errors', () => {
  it('a wrong PIN gives ERR_HSM_LOGIN_FAILED (CKR_PIN_INCORRECT) and the PIN appears nowhere in the error', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const e = await expectCode(Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: SPARE_TOKEN, pin: wrong }), 'ERR_HSM_LOGIN_FAILED');
    expect(e.context).toEqual({ detail: 'CKR_PIN_INCORRECT' });
    const text = JSON.stringify({ m: e.message, s: e.stack, c: e.context, cm: (e.cause as Error)?.message, cs: (e.cause as Error)?.stack });
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(hsm.pin);
    // The right PIN still works afterwards.
    const ok = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: SPARE_TOKEN, pin: hsm.pin });
    await ok.close();
  });

  it('a wrong PIN on a token this process is logged in to is refused too', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const e = await expectCode(Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: wrong }), 'ERR_HSM_LOGIN_FAILED');
    expect(JSON.stringify({ m: e.message, s: e.stack, c: e.context })).not.toContain(wrong);
    // and the failed open did not log the other backend out
    const { handle } = await backend.generateKey({ keyId: 'after-wrong-pin', label: 'org/p/DS/g1' });
    expect((await backend.sign(handle, new Uint8Array(1))).length).toBe(64);
  });

  it('a token label no slot carries gives ERR_HSM_UNAVAILABLE', async () => {
    const e = await expectCode(Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: 'no-such-token', pin: hsm.pin }), 'ERR_HSM_UNAVAILABLE');
    expect(e.message).toContain('no-such-token');
    expect(e.message).not.toContain(hsm.pin);
  });

  it('a module that does not exist or is not a PKCS#11 library gives ERR_HSM_UNAVAILABLE', async () => {
    await expectCode(Pkcs11KeyBackend.open({ module: '/nonexistent/libpkcs11.so', tokenLabel: 'x', pin: '1234' }), 'ERR_HSM_UNAVAILABLE');
    const e = await expectCode(Pkcs11KeyBackend.open({ module: process.execPath, tokenLabel: 'x', pin: '1234' }), 'ERR_HSM_UNAVAILABLE');
    expect(e.cause).toBeDefined();
  });

  it('bad options give ERR_INVALID_ARGUMENT', async () => {
    const base = { module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin };
    await expectCode(Pkcs11KeyBackend.open({ ...base, module: '' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(Pkcs11KeyBackend.open({ ...base, tokenLabel: '' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(Pkcs11KeyBackend.open({ ...base, tokenLabel: 'x'.repeat(33) }), 'ERR_INVALID_ARGUMENT');
    await expectCode(Pkcs11KeyBackend.open({ ...base, pin: '' }), 'ERR_INVALID_ARGUMENT');
    await expectCode(Pkcs11KeyBackend.open({ ...base, sessions: 0 }), 'ERR_INVALID_ARGUMENT');
    await expectCode(Pkcs11KeyBackend.open({ ...base, sessions: 1.5 }), 'ERR_INVALID_ARGUMENT');
  });

  it('a closed backend refuses every operation with ERR_HSM_UNAVAILABLE; close is idempotent', async () => {
    const b = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: SPARE_TOKEN, pin: hsm.pin, sessions: 1 });
    const { handle } = await b.generateKey({ keyId: 'closed-1', label: 'org/p/DS/g1' });
    // Operations queued behind a busy single session when close() is called are refused; the
    // one running finishes.
    const running = b.sign(handle, new Uint8Array(1));
    const queued = rejection(b.sign(handle, new Uint8Array(2)));
    const closing = b.close();
    expect((await running).length).toBe(64);
    await expectCode(queued.then((e) => Promise.reject(e)), 'ERR_HSM_UNAVAILABLE');
    await closing;
    await b.close();
    await expectCode(b.sign(handle, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE');
    await expectCode(b.publicKey(handle), 'ERR_HSM_UNAVAILABLE');
    await expectCode(b.listHandles(), 'ERR_HSM_UNAVAILABLE');
    await expectCode(b.generateKey({ keyId: 'closed-2', label: 'x' }), 'ERR_HSM_UNAVAILABLE');
  });
});

describe('Pkcs11KeyBackend: a token that is gone', () => {
  it('a deleted token gives ERR_HSM_UNAVAILABLE with the return code, never a raw pkcs11js error', async () => {
    const b = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: GONE_TOKEN, pin: hsm.pin });
    try {
      const { handle } = await b.generateKey({ keyId: 'gone-1', label: 'org/p/DS/g1' });
      await b.sign(handle, new Uint8Array(1));
      // SoftHSM2 keeps each token in a directory of its own; token.object holds the label.
      const target = readdirSync(hsm.tokenDir).find((d) =>
        readFileSync(join(hsm.tokenDir, d, 'token.object')).includes(Buffer.from(GONE_TOKEN)),
      );
      expect(target).toBeDefined();
      rmSync(join(hsm.tokenDir, target!), { recursive: true, force: true });
      // SoftHSM2 notices on its next refresh of the store (about a second): poll until it does.
      let e: unknown;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        e = await rejection(b.sign(handle, new Uint8Array(1))).catch(() => undefined);
        if (e !== undefined) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(e).toBeInstanceOf(SmkiError);
      expect((e as SmkiError).code).toBe('ERR_HSM_UNAVAILABLE');
      expect((e as SmkiError<'ERR_HSM_UNAVAILABLE'>).context.detail).toMatch(/^CKR_[A-Z_]+$/);
      expect((e as SmkiError).message).toContain(GONE_TOKEN);
      expect((e as SmkiError).cause).toBeInstanceOf(Error);
      await expectCode(b.generateKey({ keyId: 'gone-2', label: 'org/p/DS/g1' }), 'ERR_HSM_UNAVAILABLE');
      await expectCode(b.listHandles(), 'ERR_HSM_UNAVAILABLE');
      await expectCode(b.deriveSharedSecret(handle, rawPoint(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)), 'ERR_HSM_UNAVAILABLE');
      await expectCode(b.destroyKey(handle), 'ERR_HSM_UNAVAILABLE');
    } finally {
      await b.close(); // never throws
    }
    // A new open does not find it.
    await expectCode(Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: GONE_TOKEN, pin: hsm.pin }), 'ERR_HSM_UNAVAILABLE');
  });

  // Last: this finalises the library under every backend of this process.
  it('a module finalised underneath gives ERR_HSM_UNAVAILABLE; a new open recovers', async () => {
    const { handle, publicKey } = await backend.generateKey({ keyId: 'final-1', label: 'org/p/DS/g1' });
    await backend.sign(handle, new Uint8Array(1));
    graphene.Module.load(hsm.module).finalize();
    const e = await expectCode(backend.sign(handle, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE');
    // SoftHSM2 answers for the dead session (CKR_SESSION_HANDLE_INVALID) or the library
    // (CKR_CRYPTOKI_NOT_INITIALIZED), depending on the call.
    expect(e.context.detail).toMatch(/^CKR_(SESSION_HANDLE_INVALID|CRYPTOKI_NOT_INITIALIZED)$/);
    expect(e.message).toMatch(/C_SignInit returned CKR_/);
    expect(e.cause).toBeInstanceOf(Error);
    await expectCode(backend.generateKey({ keyId: 'final-2', label: 'x' }), 'ERR_HSM_UNAVAILABLE');
    await expectCode(backend.listHandles(), 'ERR_HSM_UNAVAILABLE');

    const fresh = await Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin });
    try {
      const message = randomBytes(8);
      expect(verifies(publicKey, message, await fresh.sign(handle, message))).toBe(true);
    } finally {
      await backend.close(); // the dead backend closes without throwing, and without finalising the fresh one
      const message = randomBytes(8);
      expect(verifies(publicKey, message, await fresh.sign(handle, message))).toBe(true);
      await fresh.close();
    }
  });
});

