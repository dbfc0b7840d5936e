// Encrypted files (the default backend). Keys in <dir>/keys/<handle>.p8, standard
// encrypted PKCS#8 (RFC 5958 §3, PBES2 RFC 8018 §6.2, scrypt RFC 7914 §7) that `openssl pkey
// -passin` reads; mode 0600 in a 0700 directory; written atomically, never overwritten; one
// passphrase per store, checked at open; a damaged file affects only its own key; each key
// decrypted once and cached, so signing costs what raw node:crypto costs.
import { spawnSync } from 'node:child_process';
import { createPublicKey, diffieHellman, generateKeyPairSync, verify } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSmkiError, publicKeyFromRaw, publicKeyToRaw, SmkiError, type SmkiErrorCode } from '@smki/core';
import type { GeneratedKey } from '../src/backend.js';
import { FileKeyBackend, PASSPHRASE_CHECK_FILE, type FileKeyBackendOptions } from '../src/backends/file.js';
import { decryptPrivateKey, fromEncryptedPem, parseEncryptedPrivateKeyInfo, toEncryptedPem } from '../src/internal/pkcs8.js';

// Count decryptions (each key is decrypted once for the life of the store).
vi.mock('../src/internal/pkcs8.js', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../src/internal/pkcs8.js')>();
  return { ...mod, decryptPrivateKey: vi.fn(mod.decryptPrivateKey) };
});
const decryptions = () => vi.mocked(decryptPrivateKey).mock.calls.length;

const PASS = 'file backend test passphrase: zebra-quartz-71';
const MSG = new TextEncoder().encode('GBCS command to sign');

const dirs: string[] = [];
const backends: FileKeyBackend[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-filekeys-'));
  dirs.push(d);
  return join(d, 'store'); // not yet there: open creates it
}

async function open(directory: string, extra: Partial<FileKeyBackendOptions> = {}): Promise<FileKeyBackend> {
  const b = await FileKeyBackend.open({ directory, passphrase: PASS, ...extra });
  backends.push(b);
  return b;
}

const keyFile = (dir: string, handle: string) => join(dir, 'keys', `${handle}.p8`);
const mode = (p: string) => statSync(p).mode & 0o777;

function errorText(e: unknown, depth = 0): string {
  if (depth > 8 || e === undefined || e === null) return '';
  if (typeof e !== 'object') return String(e);
  const err = e as { name?: unknown; message?: unknown; stack?: unknown; context?: unknown; cause?: unknown };
  return [String(err.name), String(err.message), String(err.stack), JSON.stringify(err.context ?? null), errorText(err.cause, depth + 1)].join('\n');
}

async function failure(p: Promise<unknown> | (() => unknown), codes: SmkiErrorCode[], secrets: string[] = [PASS]): Promise<SmkiError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(isSmkiError(e), `expected a SmkiError, got ${String(e)}`).toBe(true);
    expect(codes).toContain((e as SmkiError).code);
    const text = errorText(e).toLowerCase();
    for (const s of secrets) expect(text.includes(s.toLowerCase()), 'error text contains a secret').toBe(false);
    return e as SmkiError;
  }
  throw new Error(`expected ${codes.join(' or ')}, nothing was thrown`);
}

function verifies(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return signature.length === 64 && verify('sha256', message, { key: publicKeyFromRaw(publicKey), dsaEncoding: 'ieee-p1363' }, signature);
}

describe('FileKeyBackend: files (encrypted files, mode 0600, atomic)', () => {
  it('creates the directory 0700, keys/ 0700, the canary and key files 0600, PEM ENCRYPTED PRIVATE KEY', async () => {
    const dir = tempDir();
    const b = await open(dir);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'keys'))).toBe(0o700);
    expect(mode(join(dir, PASSPHRASE_CHECK_FILE))).toBe(0o600);
    const { handle, publicKey } = await b.generateKey({ keyId: 'K1.north.DS.g1', label: '90B3D51F30010000/north/DS/g1' });
    expect(handle).toBe('K1.north.DS.g1');
    expect(publicKey.length).toBe(65);
    const file = keyFile(dir, handle);
    expect(mode(file)).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----\n')).toBe(true);
    expect(parseEncryptedPrivateKeyInfo(fromEncryptedPem(text)).kdf).toMatchObject({ name: 'scrypt', N: 32768 });
    expect(readdirSync(join(dir, 'keys'))).toEqual([`${handle}.p8`]); // no temporaries left
    expect(await b.listHandles()).toEqual([handle]);
  });

  it.each([['scrypt' as const], ['pbkdf2' as const]])('openssl pkey -passin reads a %s key file and finds its public key', async (kdf) => {
    const dir = tempDir();
    const b = await open(dir, { kdf });
    const { handle, publicKey } = await b.generateKey({ keyId: `K-${kdf}`, label: 'x' });
    const r = spawnSync('openssl', ['pkey', '-in', keyFile(dir, handle), '-passin', 'env:SMKI_TEST_PASS', '-pubout', '-outform', 'DER'], {
      env: { ...process.env, SMKI_TEST_PASS: PASS },
    });
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
    expect(Buffer.from(publicKeyToRaw(createPublicKey({ key: r.stdout, format: 'der', type: 'spki' }))).equals(Buffer.from(publicKey))).toBe(true);
    expect(parseEncryptedPrivateKeyInfo(fromEncryptedPem(readFileSync(keyFile(dir, handle)))).kdf.name).toBe(kdf);
  });

  it('never writes the private key in the clear', async () => {
    const dir = tempDir();
    const b = await open(dir);
    const { handle } = await b.generateKey({ keyId: 'K1', label: 'x' });
    // Decrypt it ourselves, then look for its scalar in every file of the store.
    const key = await decryptPrivateKey(fromEncryptedPem(readFileSync(keyFile(dir, handle))), PASS);
    const d = Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url');
    for (const f of [keyFile(dir, handle), join(dir, PASSPHRASE_CHECK_FILE)]) {
      const bytes = readFileSync(f);
      expect(bytes.includes(d)).toBe(false);
      expect(bytes.toString('latin1').includes(d.toString('base64'))).toBe(false);
    }
  });

  it('passes the fault points of the atomic write through, in order', async () => {
    const dir = tempDir();
    const points: string[] = [];
    const b = await open(dir, { fault: (p) => points.push(p) });
    expect(points).toEqual(['passphrase-check:after-write', 'passphrase-check:after-fsync', 'passphrase-check:after-rename', 'passphrase-check:after-fsync-dir']);
    points.length = 0;
    await b.generateKey({ keyId: 'K1', label: 'x' });
    expect(points).toEqual(['keyfile:after-write', 'keyfile:after-fsync', 'keyfile:after-rename', 'keyfile:after-fsync-dir']);
    points.length = 0;
    await b.destroyKey('K1');
    expect(points).toEqual(['keyfile:after-unlink', 'keyfile:after-fsync-dir']);
  });

  it('a crash before the rename leaves no key file; the next open removes the temporary', async () => {
    const dir = tempDir();
    const b = await open(dir, {
      fault: (p) => {
        if (p === 'keyfile:after-fsync') throw new Error('simulated crash');
      },
    });
    await expect(b.generateKey({ keyId: 'K1', label: 'x' })).rejects.toThrow('simulated crash');
    expect(existsSync(keyFile(dir, 'K1'))).toBe(false);
    // A real crash (kill -9) leaves the temporary behind: make some as atomicWriteFile names them.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number; // a process that has exited
    writeFileSync(join(dir, 'keys', `.K1.p8.${process.pid}.0123456789ab.tmp`), 'partial');
    writeFileSync(join(dir, 'keys', `.K2.p8.${dead}.0123456789ab.tmp`), 'partial');
    // One of a live process (it may be writing, and then holds the store's lock) is left alone.
    const live = `.K3.p8.${process.ppid}.0123456789ab.tmp`;
    writeFileSync(join(dir, 'keys', live), 'partial');
    const b2 = await open(dir);
    expect(readdirSync(join(dir, 'keys'))).toEqual([live]);
    expect(await b2.listHandles()).toEqual([]);
  });
});

describe('FileKeyBackend: keys (ECDSA P-256, ECDH)', () => {
  it('signs 64-byte r‖s that node:crypto verifies, and derives the ECDH secret the peer derives', async () => {
    const b = await open(tempDir());
    const { handle, publicKey } = await b.generateKey({ keyId: 'K1', label: 'x' });
    const sig = await b.sign(handle, MSG);
    expect(sig).toBeInstanceOf(Uint8Array);
    expect(sig.buffer.byteLength).toBe(64); // its own buffer, never a view of a shared pool
    expect(verifies(publicKey, MSG, sig)).toBe(true);
    expect(verifies(publicKey, new TextEncoder().encode('other'), sig)).toBe(false);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const z = await b.deriveSharedSecret(handle, publicKeyToRaw(peer));
    expect(z.length).toBe(32);
    expect(z.buffer.byteLength).toBe(32);
    expect(Buffer.from(z).equals(diffieHellman({ privateKey: peer, publicKey: publicKeyFromRaw(publicKey) }))).toBe(true);
    expect(Buffer.from(await b.publicKey(handle)).equals(Buffer.from(publicKey))).toBe(true);
    await failure(b.deriveSharedSecret(handle, new Uint8Array(65)), ['ERR_KEY_INVALID']);
    await failure(b.sign(handle, 'text' as unknown as Uint8Array), ['ERR_INVALID_ARGUMENT']);
  });

  it('a second backend on the same directory reads the keys the first wrote', async () => {
    const dir = tempDir();
    const a = await open(dir);
    const k1 = await a.generateKey({ keyId: 'K1', label: 'x' });
    const k2 = await a.generateKey({ keyId: 'K2', label: 'y' });
    const b = await open(dir);
    expect(await b.listHandles()).toEqual(['K1', 'K2']);
    expect(Buffer.from(await b.publicKey('K1')).equals(Buffer.from(k1.publicKey))).toBe(true);
    expect(verifies(k2.publicKey, MSG, await b.sign('K2', MSG))).toBe(true);
  });

  it('decrypts each key once: concurrent first uses share one decryption; later uses none', async () => {
    const dir = tempDir();
    const a = await open(dir);
    const { handle, publicKey } = await a.generateKey({ keyId: 'K1', label: 'x' });
    const before = decryptions();
    await a.sign(handle, MSG); // the generating backend keeps the key: no decryption
    expect(decryptions()).toBe(before);
    const b = await open(dir); // opens by the canary
    const atOpen = decryptions();
    const sigs = await Promise.all([b.sign(handle, MSG), b.sign(handle, MSG), b.publicKey(handle), b.sign(handle, MSG), b.deriveSharedSecret(handle, publicKey)]);
    expect(decryptions() - atOpen).toBe(1);
    for (const s of [sigs[0], sigs[1], sigs[3]]) expect(verifies(publicKey, MSG, s as Uint8Array)).toBe(true);
    for (let i = 0; i < 20; i++) await b.sign(handle, MSG);
    expect(decryptions() - atOpen).toBe(1);
  });

  it('destroyKey unlinks the file and forgets the key; a second destroy is ERR_KEY_NOT_FOUND', async () => {
    const dir = tempDir();
    const b = await open(dir);
    await b.generateKey({ keyId: 'K1', label: 'x' });
    await b.generateKey({ keyId: 'K2', label: 'x' });
    await b.destroyKey('K1');
    expect(existsSync(keyFile(dir, 'K1'))).toBe(false);
    expect(await b.listHandles()).toEqual(['K2']);
    await failure(b.sign('K1', MSG), ['ERR_KEY_NOT_FOUND']);
    await failure(b.publicKey('K1'), ['ERR_KEY_NOT_FOUND']);
    await failure(b.destroyKey('K1'), ['ERR_KEY_NOT_FOUND']);
    await b.sign('K2', MSG);
  });

  it('close forgets the keys and refuses further use', async () => {
    const b = await open(tempDir());
    await b.generateKey({ keyId: 'K1', label: 'x' });
    await b.close();
    await b.close();
    await failure(b.sign('K1', MSG), ['ERR_KEYSTORE_CLOSED']);
    await failure(b.publicKey('K1'), ['ERR_KEYSTORE_CLOSED']);
    await failure(b.listHandles(), ['ERR_KEYSTORE_CLOSED']);
    await failure(b.generateKey({ keyId: 'K2', label: 'x' }), ['ERR_KEYSTORE_CLOSED']);
  });
});

describe('FileKeyBackend: handles and overwrites', () => {
  let shared: { dir: string; b: FileKeyBackend } | undefined;
  afterAll(async () => {
    await shared?.b.close();
    if (shared) rmSync(join(shared.dir, '..'), { recursive: true, force: true });
  });

  it.each([['../x'], ['a/b'], ['..'], ['.'], ['.hidden'], [''], ['a b'], ['é'], ['K1\u0000'], ['a'.repeat(129)], ['C:\\x']])(
    'refuses the key id %j with ERR_INVALID_ARGUMENT (no path traversal)',
    async (keyId) => {
      if (!shared) {
        const d = join(mkdtempSync(join(tmpdir(), 'smki-filekeys-')), 'store');
        shared = { dir: d, b: await FileKeyBackend.open({ directory: d, passphrase: PASS }) };
      }
      const { dir, b } = shared;
      await failure(b.generateKey({ keyId, label: 'x' }), ['ERR_INVALID_ARGUMENT']);
      await failure(b.sign(keyId, MSG), ['ERR_INVALID_ARGUMENT']);
      await failure(b.destroyKey(keyId), ['ERR_INVALID_ARGUMENT']);
      expect(readdirSync(join(dir, 'keys'))).toEqual([]);
    },
  );

  it('an unknown handle is ERR_KEY_NOT_FOUND', async () => {
    const b = await open(tempDir());
    await failure(b.sign('nope', MSG), ['ERR_KEY_NOT_FOUND']);
    await failure(b.publicKey('nope'), ['ERR_KEY_NOT_FOUND']);
  });

  it('a key file another process writes under the same name after the checks is never replaced: the link refuses', async () => {
    const dir = tempDir();
    // Another process (a database store is shared by several) wins the race for K7 after this
    // backend's last check and before its file is published.
    const planted = 'another process\'s key file';
    const b = await open(dir, {
      fault: (point) => {
        if (point === 'keyfile:after-fsync') writeFileSync(keyFile(dir, 'K7'), planted, { mode: 0o600 });
      },
    });
    await failure(b.generateKey({ keyId: 'K7', label: 'x' }), ['ERR_INVALID_ARGUMENT']);
    expect(readFileSync(keyFile(dir, 'K7'), 'utf8')).toBe(planted);
    // No temporary left behind.
    expect(readdirSync(join(dir, 'keys'))).toEqual(['K7.p8']);
  });

  it('generateKey never overwrites: an existing handle is refused and its file left as it was', async () => {
    const dir = tempDir();
    const b = await open(dir);
    const first = await b.generateKey({ keyId: 'K1', label: 'x' });
    const before = readFileSync(keyFile(dir, 'K1'));
    await failure(b.generateKey({ keyId: 'K1', label: 'x' }), ['ERR_INVALID_ARGUMENT']);
    const other = await open(dir);
    await failure(other.generateKey({ keyId: 'K1', label: 'x' }), ['ERR_INVALID_ARGUMENT']);
    expect(readFileSync(keyFile(dir, 'K1')).equals(before)).toBe(true);
    expect(Buffer.from(await other.publicKey('K1')).equals(Buffer.from(first.publicKey))).toBe(true);
  });

  it('two concurrent generateKey calls for one id: one key, one refusal', async () => {
    const b = await open(tempDir());
    const results = await Promise.allSettled([b.generateKey({ keyId: 'K1', label: 'x' }), b.generateKey({ keyId: 'K1', label: 'x' })]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(isSmkiError(rejected.reason, 'ERR_INVALID_ARGUMENT')).toBe(true);
  });
});

describe('FileKeyBackend: passphrase (one per store, wrong passphrase gives a clear error)', () => {
  it('reads the passphrase from SMKI_KEYSTORE_PASSPHRASE when no option gives one; refuses none or empty', async () => {
    const dir = tempDir();
    const b = await FileKeyBackend.open({ directory: dir, env: { SMKI_KEYSTORE_PASSPHRASE: PASS } });
    backends.push(b);
    await b.generateKey({ keyId: 'K1', label: 'x' });
    expect(await decryptPrivateKey(fromEncryptedPem(readFileSync(keyFile(dir, 'K1'))), PASS)).toBeDefined();
    await failure(FileKeyBackend.open({ directory: tempDir(), env: {} }), ['ERR_INVALID_ARGUMENT']);
    await failure(FileKeyBackend.open({ directory: tempDir(), env: { SMKI_KEYSTORE_PASSPHRASE: '' } }), ['ERR_INVALID_ARGUMENT']);
    await failure(FileKeyBackend.open({ directory: tempDir(), passphrase: '' }), ['ERR_INVALID_ARGUMENT']);
    await failure(FileKeyBackend.open({ directory: tempDir(), passphrase: PASS, scryptN: 2 ** 14 }), ['ERR_INVALID_ARGUMENT']);
  });

  it('a wrong passphrase fails at open, fast (one KDF, by the canary), and writes nothing', async () => {
    const dir = tempDir();
    const a = await open(dir);
    await a.generateKey({ keyId: 'K1', label: 'x' });
    await a.generateKey({ keyId: 'K2', label: 'x' });
    const before = readdirSync(join(dir, 'keys'));
    const n = decryptions();
    await failure(FileKeyBackend.open({ directory: dir, passphrase: 'not the passphrase' }), ['ERR_KEYSTORE_WRONG_PASSPHRASE'], [PASS, 'not the passphrase']);
    expect(decryptions() - n).toBe(1);
    expect(readdirSync(join(dir, 'keys'))).toEqual(before);
    await failure(FileKeyBackend.verifyPassphrase({ directory: dir, passphrase: 'nope' }), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    await FileKeyBackend.verifyPassphrase({ directory: dir, passphrase: PASS });
  });

  it('without a canary, open checks the passphrase against the keys and then writes the canary', async () => {
    const dir = tempDir();
    const a = await open(dir);
    await a.generateKey({ keyId: 'K1', label: 'x' });
    rmSync(join(dir, PASSPHRASE_CHECK_FILE));
    await failure(FileKeyBackend.verifyPassphrase({ directory: dir, passphrase: 'wrong' }), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    await failure(FileKeyBackend.open({ directory: dir, passphrase: 'wrong' }), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(false);
    const n = decryptions();
    const b = await open(dir);
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(true);
    await b.sign('K1', MSG); // decrypted at open, kept
    expect(decryptions() - n).toBe(1);
  });

  it('a damaged canary is never overwritten; a key confirms the passphrase, or open fails as ERR_KEY_FILE_CORRUPT', async () => {
    const dir = tempDir();
    const a = await open(dir);
    await a.generateKey({ keyId: 'K1', label: 'x' });
    const canary = join(dir, PASSPHRASE_CHECK_FILE);
    writeFileSync(canary, 'garbage');
    await open(dir); // K1 confirms it
    await failure(FileKeyBackend.open({ directory: dir, passphrase: 'wrong' }), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    expect(readFileSync(canary, 'utf8')).toBe('garbage');
    const empty = tempDir();
    await open(empty);
    writeFileSync(join(empty, PASSPHRASE_CHECK_FILE), 'garbage');
    await failure(FileKeyBackend.open({ directory: empty, passphrase: PASS }), ['ERR_KEY_FILE_CORRUPT']);
  });
});

describe('FileKeyBackend: damaged key files affect only their own key', () => {
  // One store with keys K1 and K2, made once and copied for each case.
  let template: { dir: string; k2: GeneratedKey; secrets: string[] };
  beforeAll(async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'smki-filekeys-')), 'store');
    const a = await FileKeyBackend.open({ directory: dir, passphrase: PASS });
    await a.generateKey({ keyId: 'K1', label: 'x' });
    const k2 = await a.generateKey({ keyId: 'K2', label: 'x' });
    await a.close();
    const privateD = Buffer.from((await decryptPrivateKey(fromEncryptedPem(readFileSync(keyFile(dir, 'K1'))), PASS)).export({ format: 'jwk' }).d as string, 'base64url');
    template = { dir, k2, secrets: [PASS, privateD.toString('hex'), privateD.toString('base64')] };
  });
  afterAll(() => rmSync(join(template.dir, '..'), { recursive: true, force: true }));

  function twoKeys() {
    const dir = tempDir();
    cpSync(template.dir, dir, { recursive: true });
    return { dir, k2: template.k2, secrets: template.secrets };
  }

  const damage: [string, (text: string, der: Uint8Array) => string | Uint8Array][] = [
    ['truncated', (t) => t.slice(0, 100)],
    ['emptied', () => ''],
    ['not PEM', () => 'hello'],
    ['a DER length changed', (_t, der) => toEncryptedPem(Uint8Array.from(der, (b, i) => (i === 1 ? b ^ 0x01 : b)))],
    ['a ciphertext byte changed', (_t, der) => toEncryptedPem(Uint8Array.from(der, (b, i) => (i === der.length - 20 ? b ^ 0x01 : b)))],
    ['a ciphertext block inside the scalar changed', (_t, der) => toEncryptedPem(Uint8Array.from(der, (b, i) => (i === der.length - 144 + 48 ? b ^ 0x01 : b)))],
    ['hostile scrypt N = 2^22', (_t, der) => toEncryptedPem(Buffer.from(Buffer.from(der).toString('hex').replace('0203008000', '0203400000'), 'hex'))],
    ['over 64 KiB', (t) => t + ' '.repeat(70_000)],
  ];

  it.each(damage)('%s: that key is ERR_KEY_FILE_CORRUPT; the other key works; nothing is overwritten', async (name, mutate) => {
    const { dir, k2, secrets } = twoKeys();
    const file = keyFile(dir, 'K1');
    const text = readFileSync(file, 'utf8');
    const damaged = mutate(text, fromEncryptedPem(text));
    writeFileSync(file, damaged);
    const b = await open(dir); // the canary opens the store
    const e = await failure(b.sign('K1', MSG), ['ERR_KEY_FILE_CORRUPT'], secrets);
    expect(e.message).toMatch(/K1\.p8/);
    // Hostile KDF parameters are refused by the structural read, before any KDF runs (not timed).
    if (name.startsWith('hostile')) expect(e.message).toMatch(/outside the accepted bounds/);
    await failure(b.publicKey('K1'), ['ERR_KEY_FILE_CORRUPT'], secrets);
    expect(verifies(k2.publicKey, MSG, await b.sign('K2', MSG))).toBe(true);
    expect(await b.listHandles()).toEqual(['K1', 'K2']);
    await failure(b.generateKey({ keyId: 'K1', label: 'x' }), ['ERR_INVALID_ARGUMENT']);
    expect(readFileSync(file).equals(Buffer.from(damaged))).toBe(true);
  });

  it('a key file encrypted under another passphrase is ERR_KEY_FILE_CORRUPT for that key (the store passphrase was verified)', async () => {
    const dir = tempDir();
    const a = await open(dir);
    await a.generateKey({ keyId: 'K2', label: 'x' });
    const foreignDir = tempDir();
    const f = await FileKeyBackend.open({ directory: foreignDir, passphrase: 'another store' });
    backends.push(f);
    await f.generateKey({ keyId: 'K1', label: 'x' });
    mkdirSync(join(dir, 'keys'), { recursive: true });
    writeFileSync(keyFile(dir, 'K1'), readFileSync(keyFile(foreignDir, 'K1')));
    const b = await open(dir);
    const e = await failure(b.sign('K1', MSG), ['ERR_KEY_FILE_CORRUPT'], [PASS, 'another store']);
    expect((e.cause as SmkiError).code).toBe('ERR_KEYSTORE_WRONG_PASSPHRASE');
    await b.sign('K2', MSG);
  });

  it('a non-P-256 key file is ERR_KEY_FILE_CORRUPT for that key', async () => {
    const dir = tempDir();
    const b = await open(dir);
    const { encryptPrivateKey } = await import('../src/internal/pkcs8.js');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    writeFileSync(keyFile(dir, 'K9'), toEncryptedPem(await encryptPrivateKey(p384, PASS)));
    const e = await failure(b.sign('K9', MSG), ['ERR_KEY_FILE_CORRUPT']);
    expect(e.message).toMatch(/P-256/);
  });

  it('a directory where a key file should be is ERR_KEY_FILE_CORRUPT', async () => {
    const dir = tempDir();
    const b = await open(dir);
    mkdirSync(keyFile(dir, 'K1'));
    await failure(b.sign('K1', MSG), ['ERR_KEY_FILE_CORRUPT']);
  });
});
