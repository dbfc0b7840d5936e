// The encrypted-file backend's rules one case each, written against the mutants the mutation-testing
// run found alive: handles at the edges of their pattern, what is listed, refusals after close
// (also of a generation in flight), a key destroyed while it was being loaded, the passphrase
// confirmed by the keys when there is no canary (at most three wrong ones), which temporaries open
// removes, the options that reach the key files, and the directory syncs.
// RFC 5958 §3 / RFC 8018 §6.2 (the files), RFC 7914 (scrypt), POSIX fsync of a directory.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSmkiError, publicKeyToRaw, SmkiError, type SmkiErrorCode } from '@smki/core';
import { generateKeyPairSync } from 'node:crypto';
import { FileKeyBackend, PASSPHRASE_CHECK_FILE, type FileKeyBackendOptions } from '../src/backends/file.js';
import { fsyncDirectory, readFileBounded, removeStaleTemporaries } from '../src/internal/fsutil.js';
import { decryptPrivateKey, encryptPrivateKey, fromEncryptedPem, MAX_KEY_FILE_BYTES, parseEncryptedPrivateKeyInfo, toEncryptedPem } from '../src/internal/pkcs8.js';

vi.mock('../src/internal/fsutil.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/internal/fsutil.js')>();
  return {
    ...real,
    fsyncDirectory: vi.fn(real.fsyncDirectory),
    readFileBounded: vi.fn(real.readFileBounded),
    removeStaleTemporaries: vi.fn(real.removeStaleTemporaries),
  };
});
vi.mock('../src/internal/pkcs8.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/internal/pkcs8.js')>();
  return { ...real, decryptPrivateKey: vi.fn(real.decryptPrivateKey) };
});
/** An error as node:fs throws it. */
const errno = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const PASS = 'file backend mutation passphrase';
const MSG = new Uint8Array([0xdf, 0x09]);
const roots: string[] = [];
const backends: FileKeyBackend[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  for (const d of roots.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.mocked(fsyncDirectory).mockClear();
  vi.mocked(removeStaleTemporaries).mockClear();
  vi.restoreAllMocks();
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-filekeys-m-'));
  roots.push(d);
  return join(d, 'store');
}
async function open(directory: string, extra: Partial<FileKeyBackendOptions> = {}): Promise<FileKeyBackend> {
  const b = await FileKeyBackend.open({ directory, passphrase: PASS, ...extra });
  backends.push(b);
  return b;
}
async function failure(p: Promise<unknown> | (() => unknown), code: SmkiErrorCode): Promise<SmkiError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}
const keyFile = (dir: string, h: string) => join(dir, 'keys', `${h}.p8`);

/** A store with keys K1 and K2 (made once, copied per case). */
let template: string;
beforeAll(async () => {
  template = join(mkdtempSync(join(tmpdir(), 'smki-filekeys-t-')), 'store');
  const b = await FileKeyBackend.open({ directory: template, passphrase: PASS });
  await b.generateKey({ keyId: 'K1', label: 'x' });
  await b.generateKey({ keyId: 'K2', label: 'x' });
  await b.close();
  return () => rmSync(join(template, '..'), { recursive: true, force: true });
});
function twoKeys(): string {
  const dir = tempDir();
  cpSync(template, dir, { recursive: true });
  return dir;
}

describe('handles', () => {
  it('1 to 128 of A-Z a-z 0-9 . _ -, not starting with a dot: anything else never reaches the file system', async () => {
    const b = await open(tempDir());
    for (const h of ['a'.repeat(128), '-x', '_', 'x.', 'A.b-c_9']) {
      await failure(b.sign(h, MSG), 'ERR_KEY_NOT_FOUND');
      await failure(b.destroyKey(h), 'ERR_KEY_NOT_FOUND');
    }
    for (const h of ['a'.repeat(129), '.x', 'x/y', 'x y', 'x\\y', '', 'ü']) {
      expect((await failure(b.sign(h, MSG), 'ERR_INVALID_ARGUMENT')).context).toEqual({ detail: h.slice(0, 64) });
      await failure(b.destroyKey(h), 'ERR_INVALID_ARGUMENT');
      await failure(b.publicKey(h), 'ERR_INVALID_ARGUMENT');
    }
    expect((await failure(b.generateKey({ keyId: 5 as unknown as string, label: 'x' }), 'ERR_INVALID_ARGUMENT')).context).toEqual({ detail: 'number' });
    await failure(b.generateKey(undefined as never), 'ERR_INVALID_ARGUMENT');
  });

  it('lists the .p8 files whose names are handles, sorted; a missing keys/ folder lists nothing', async () => {
    const dir = tempDir();
    const b = await open(dir);
    // Node lists a directory sorted by file name (libuv's scandir), but the handles are sorted
    // without the suffix: 'a-b.p8' < 'a.b.p8' < 'a.p8' < 'a_b.p8', while 'a' < 'a-b' < 'a.b' < 'a_b'.
    for (const f of ['a_b.p8', 'a.p8', 'a.b.p8', 'a-b.p8', 'b.p8', '.hidden.p8', 'x.txt', 'bad name.p8', 'c.p8.tmp', 'p8']) {
      writeFileSync(join(dir, 'keys', f), '');
    }
    expect(await b.listHandles()).toEqual(['a', 'a-b', 'a.b', 'a_b', 'b']);
    rmSync(join(dir, 'keys'), { recursive: true });
    expect(await b.listHandles()).toEqual([]);
  });
});

describe('keys', () => {
  it('public keys are copies: changing one returned changes nothing kept', async () => {
    const dir = tempDir();
    const b = await open(dir);
    const g = await b.generateKey({ keyId: 'K1', label: 'x' });
    const kept = Buffer.from(g.publicKey);
    g.publicKey[1]! ^= 0xff;
    const p = await b.publicKey('K1');
    expect(Buffer.from(p)).toEqual(kept);
    p[1]! ^= 0xff;
    expect(Buffer.from(await b.publicKey('K1'))).toEqual(kept);
  });

  it('a public key read from a file is kept; a destroyed key has none', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    const p = await b.publicKey('K1');
    expect(p).toHaveLength(65);
    rmSync(keyFile(dir, 'K1'));
    expect(Buffer.from(await b.publicKey('K1'))).toEqual(Buffer.from(p)); // kept in memory
    await b.destroyKey('K2');
    await failure(b.publicKey('K2'), 'ERR_KEY_NOT_FOUND');
  });

  it('the message and the peer point are checked first, whatever the handle', async () => {
    const b = await open(tempDir());
    expect((await failure(b.sign('nope', 'x' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT')).context).toEqual({ detail: 'string' });
    await failure(b.deriveSharedSecret('nope', new Uint8Array(65)), 'ERR_KEY_INVALID');
    const peer = publicKeyToRaw(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    await failure(b.deriveSharedSecret('nope', peer), 'ERR_KEY_NOT_FOUND');
  });

  it('a key destroyed while it is being loaded is not kept: the next use does not find it', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    const loading = b.sign('K1', MSG).catch((e: unknown) => e);
    await b.destroyKey('K1');
    await loading;
    await failure(b.sign('K1', MSG), 'ERR_KEY_NOT_FOUND');
    await failure(b.publicKey('K1'), 'ERR_KEY_NOT_FOUND');
  });

  it('a damaged key is read again once repaired (failures are not kept); its error names the file', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    const good = readFileSync(keyFile(dir, 'K1'));
    writeFileSync(keyFile(dir, 'K1'), good.subarray(0, 200));
    const e = await failure(b.sign('K1', MSG), 'ERR_KEY_FILE_CORRUPT');
    expect((e.context as { detail: string }).detail).toMatch(/^K1\.p8: /);
    writeFileSync(keyFile(dir, 'K1'), good);
    expect(await b.sign('K1', MSG)).toHaveLength(64);
  });

  it('a failed generation frees its key id; a close during one refuses it and writes nothing', async () => {
    const dir = tempDir();
    let crash = true;
    const b = await open(dir, {
      fault: (p) => {
        if (crash && p === 'keyfile:after-write') throw new Error('disk full');
      },
    });
    await expect(b.generateKey({ keyId: 'K1', label: 'x' })).rejects.toThrow('disk full');
    crash = false;
    await b.generateKey({ keyId: 'K1', label: 'x' });
    const pending = b.generateKey({ keyId: 'K2', label: 'x' });
    await b.close();
    expect((await failure(pending, 'ERR_KEYSTORE_CLOSED')).context).toEqual({});
    expect(existsSync(keyFile(dir, 'K2'))).toBe(false);
    await failure(b.deriveSharedSecret('K1', new Uint8Array(65)), 'ERR_KEYSTORE_CLOSED');
    await failure(b.destroyKey('K1'), 'ERR_KEYSTORE_CLOSED');
    expect(existsSync(keyFile(dir, 'K1'))).toBe(true);
  });
});

describe('the passphrase, without a canary', () => {
  /** `n` keys under another passphrase named A0…, then K2 under ours (sorted after them), and no canary. */
  async function mixed(n: number): Promise<string> {
    const dir = twoKeys();
    rmSync(join(dir, PASSPHRASE_CHECK_FILE));
    rmSync(keyFile(dir, 'K1'));
    const other = tempDir();
    const f = await FileKeyBackend.open({ directory: other, passphrase: 'another passphrase' });
    for (let i = 0; i < n; i++) await f.generateKey({ keyId: `A${i}`, label: 'x' });
    await f.close();
    for (let i = 0; i < n; i++) cpSync(keyFile(other, `A${i}`), keyFile(dir, `A${i}`));
    return dir;
  }

  it('three keys that do not decrypt are enough to refuse, even with a good key after them', async () => {
    const dir = await mixed(3);
    await failure(FileKeyBackend.open({ directory: dir, passphrase: PASS }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(false);
  });

  it('two that do not decrypt, then one that does: the passphrase is confirmed', async () => {
    const dir = await mixed(2);
    const b = await open(dir);
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(true);
    // the key that confirmed it is kept: its file is not read again
    rmSync(keyFile(dir, 'K2'));
    expect(await b.sign('K2', MSG)).toHaveLength(64);
  });

  it('a damaged key is skipped; verifyPassphrase confirms without writing anything', async () => {
    const dir = twoKeys();
    rmSync(join(dir, PASSPHRASE_CHECK_FILE));
    writeFileSync(keyFile(dir, 'K1'), 'garbage');
    await FileKeyBackend.verifyPassphrase({ directory: dir, passphrase: PASS });
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(false);
    await open(dir);
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(true);
    const nothing = tempDir();
    await FileKeyBackend.verifyPassphrase({ directory: nothing, passphrase: PASS });
    expect(existsSync(nothing)).toBe(false);
  });

  it('a damaged canary and no key to confirm: ERR_KEY_FILE_CORRUPT naming the canary, caused by its damage', async () => {
    const dir = tempDir();
    await open(dir);
    writeFileSync(join(dir, PASSPHRASE_CHECK_FILE), 'garbage');
    const e = await failure(FileKeyBackend.open({ directory: dir, passphrase: PASS }), 'ERR_KEY_FILE_CORRUPT');
    expect(e.context).toEqual({ detail: PASSPHRASE_CHECK_FILE });
    expect((e.cause as SmkiError).code).toBe('ERR_KEY_FILE_CORRUPT');
    expect(((e.cause as SmkiError).context as { detail: string }).detail).toMatch(new RegExp(`^${PASSPHRASE_CHECK_FILE.replace('.', '\\.')}: `));
  });
});

describe('open', () => {
  it('removes the temporaries of a crashed write that are its own, of dead processes; leaves the rest', async () => {
    const dir = twoKeys();
    const dead = 4_000_000;
    const remove = [`.K1.p8.${dead}.0123456789ab.tmp`, `.K9.p8.${process.pid}.abcdefabcdef.tmp`];
    const keep = [
      `.K1.p8.1.0123456789ab.tmp`, // pid 1 is alive
      `.K1.p7.${dead}.0123456789ab.tmp`, // not a key file's
      `K1.p8.${dead}.0123456789ab.tmp`, // no leading dot
      `.K1.p8.x${dead}.0123456789ab.tmp`,
      `.K1.p8.${dead}.0123456789a.tmp`,
      `.K1.p8.${dead}.0123456789abc.tmp`,
      `.K1.p8.${dead}.0123456789AB.tmp`,
      `.K1.p8.${dead}.0123456789ab.tmpx`,
      `..${dead}.0123456789ab.tmp`,
    ];
    for (const n of [...remove, ...keep]) writeFileSync(join(dir, 'keys', n), '');
    const topRemove = `.${PASSPHRASE_CHECK_FILE}.${dead}.0123456789ab.tmp`;
    const topKeep = [`.store.json.${dead}.0123456789ab.tmp`, `x.${PASSPHRASE_CHECK_FILE}.${dead}.0123456789ab.tmp`];
    for (const n of [topRemove, ...topKeep]) writeFileSync(join(dir, n), '');
    await open(dir);
    expect(readdirSync(join(dir, 'keys')).filter((n) => n.endsWith('tmp') || n.endsWith('tmpx')).sort()).toEqual([...keep].sort());
    expect(readdirSync(dir).filter((n) => n.includes('.tmp')).sort()).toEqual([...topKeep].sort());
  });

  it('creates the directories, syncing each parent; keys are synced out of keys/ on destroy', async () => {
    const dir = tempDir();
    const b = await open(dir);
    expect(vi.mocked(fsyncDirectory).mock.calls.map(([d]) => relative(join(dir, '..'), d))).toEqual(['', 'store']);
    await b.generateKey({ keyId: 'K1', label: 'x' });
    vi.mocked(fsyncDirectory).mockClear();
    await b.destroyKey('K1');
    expect(vi.mocked(fsyncDirectory).mock.calls).toEqual([[join(dir, 'keys')]]);
    vi.mocked(fsyncDirectory).mockClear();
    await open(dir); // exists: nothing made, nothing synced
    expect(fsyncDirectory).not.toHaveBeenCalled();
  });

  it('options: the directory is made absolute; kdf and its cost reach the files; bad options are refused', async () => {
    const dir = tempDir();
    const b = await open(relative(process.cwd(), dir), { kdf: 'pbkdf2', pbkdf2Iterations: 600_001 });
    expect(b.directory).toBe(dir);
    expect(parseEncryptedPrivateKeyInfo(fromEncryptedPem(readFileSync(join(dir, PASSPHRASE_CHECK_FILE)))).kdf).toMatchObject({ name: 'pbkdf2', iterations: 600_001 });
    const d2 = tempDir();
    await open(d2, { scryptN: 2 ** 16 });
    expect(parseEncryptedPrivateKeyInfo(fromEncryptedPem(readFileSync(join(d2, PASSPHRASE_CHECK_FILE)))).kdf).toMatchObject({ name: 'scrypt', N: 2 ** 16 });
    await failure(FileKeyBackend.open(null as unknown as FileKeyBackendOptions), 'ERR_INVALID_ARGUMENT');
    await failure(FileKeyBackend.open({ directory: '', passphrase: PASS }), 'ERR_INVALID_ARGUMENT');
    await failure(FileKeyBackend.open({ directory: 5 as unknown as string, passphrase: PASS }), 'ERR_INVALID_ARGUMENT');
    await failure(FileKeyBackend.open({ directory: tempDir(), passphrase: 5 as unknown as string }), 'ERR_INVALID_ARGUMENT');
    await failure(FileKeyBackend.open({ directory: tempDir(), passphrase: PASS, pbkdf2Iterations: 1000, kdf: 'pbkdf2' }), 'ERR_INVALID_ARGUMENT');
    await failure(FileKeyBackend.open({ directory: tempDir(), passphrase: PASS, kdf: 'md5' as 'scrypt' }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('the passphrase and the options', () => {
  it('no passphrase, an empty one or a non-string one is refused before anything is created', async () => {
    const cases: Partial<FileKeyBackendOptions>[] = [
      { env: {} },
      { passphrase: '', env: { SMKI_KEYSTORE_PASSPHRASE: PASS } },
      { env: { SMKI_KEYSTORE_PASSPHRASE: '' } },
      { passphrase: 5 as unknown as string },
      { passphrase: [] as unknown as string },
    ];
    for (const c of cases) {
      const directory = tempDir();
      const e = await failure(FileKeyBackend.open({ directory, ...c }), 'ERR_INVALID_ARGUMENT');
      expect(Object.keys(e.context as object)).toEqual([]);
      expect(existsSync(directory)).toBe(false);
      await failure(FileKeyBackend.verifyPassphrase({ directory, ...c }), 'ERR_INVALID_ARGUMENT');
    }
    const b = await open(tempDir(), { passphrase: undefined as unknown as string, env: { SMKI_KEYSTORE_PASSPHRASE: PASS } });
    expect(b.kind).toBe('file');
  });

  it('options must be an object: a function carrying the fields is refused', async () => {
    const directory = tempDir();
    await failure(FileKeyBackend.open(Object.assign(() => undefined, { directory, passphrase: PASS }) as unknown as FileKeyBackendOptions), 'ERR_INVALID_ARGUMENT');
    expect(existsSync(directory)).toBe(false);
  });

  it('a canary under another passphrase: ERR_KEYSTORE_WRONG_PASSPHRASE caused by the decryption failure, nothing written', async () => {
    const dir = twoKeys();
    const canary = readFileSync(join(dir, PASSPHRASE_CHECK_FILE));
    const e = await failure(FileKeyBackend.open({ directory: dir, passphrase: 'another passphrase' }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    expect(e.context).toStrictEqual({});
    expect(isSmkiError(e.cause) && e.cause.code).toBe('ERR_KEYSTORE_WRONG_PASSPHRASE');
    expect(readFileSync(join(dir, PASSPHRASE_CHECK_FILE))).toEqual(canary);
    await failure(FileKeyBackend.verifyPassphrase({ directory: dir, passphrase: 'another passphrase' }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
  });

  it('any other failure to read the canary fails open as it is: no fallback to the keys, the canary is not rewritten', async () => {
    const dir = twoKeys();
    const canary = readFileSync(join(dir, PASSPHRASE_CHECK_FILE));
    vi.mocked(readFileBounded).mockImplementationOnce(() => {
      throw errno('EIO');
    });
    await expect(FileKeyBackend.open({ directory: dir, passphrase: PASS })).rejects.toMatchObject({ code: 'EIO' });
    const other = new SmkiError('ERR_INVALID_ARGUMENT', 'simulated', {});
    vi.mocked(decryptPrivateKey).mockRejectedValueOnce(other);
    await expect(FileKeyBackend.open({ directory: dir, passphrase: PASS })).rejects.toBe(other);
    const lookalike = Object.assign(new Error('not a SmkiError'), { code: 'ERR_KEY_NOT_FOUND' });
    vi.mocked(decryptPrivateKey).mockRejectedValueOnce(lookalike);
    await expect(FileKeyBackend.open({ directory: dir, passphrase: PASS })).rejects.toBe(lookalike);
    expect(readFileSync(join(dir, PASSPHRASE_CHECK_FILE))).toEqual(canary);
  });

  it('without a canary, damaged keys are not wrong passphrases: three of them and a good key confirm it', async () => {
    const dir = twoKeys();
    rmSync(join(dir, PASSPHRASE_CHECK_FILE));
    rmSync(keyFile(dir, 'K1'));
    for (const h of ['A0', 'A1', 'A2']) writeFileSync(keyFile(dir, h), 'garbage');
    await FileKeyBackend.verifyPassphrase({ directory: dir, passphrase: PASS });
    await open(dir);
    expect(existsSync(join(dir, PASSPHRASE_CHECK_FILE))).toBe(true);
  });
});

describe('reading a key file', () => {
  it('a key path that is not a regular file (a symbolic link to a good key, a directory) is damaged, never followed', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    symlinkSync(keyFile(dir, 'K1'), keyFile(dir, 'K3'));
    const e = await failure(b.sign('K3', MSG), 'ERR_KEY_FILE_CORRUPT');
    expect(e.context).toStrictEqual({ detail: 'K3.p8' });
    expect(e.cause).toBeUndefined();
    mkdirSync(keyFile(dir, 'K4'));
    expect((await failure(b.publicKey('K4'), 'ERR_KEY_FILE_CORRUPT')).context).toStrictEqual({ detail: 'K4.p8' });
    // destroying it: the file system's error, not "not found"; the directory stays
    const d = await b.destroyKey('K4').then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isSmkiError(d)).toBe(false);
    expect((d as NodeJS.ErrnoException).code).toMatch(/^E/);
    expect(statSync(keyFile(dir, 'K4')).isDirectory()).toBe(true);
  });

  it('an oversized key file is damaged, caused by the size refusal', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    writeFileSync(keyFile(dir, 'K1'), Buffer.alloc(MAX_KEY_FILE_BYTES + 1, 0x41));
    const e = await failure(b.sign('K1', MSG), 'ERR_KEY_FILE_CORRUPT');
    expect(e.context).toStrictEqual({ detail: 'K1.p8' });
    expect(isSmkiError(e.cause) && e.cause.code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('a file gone between its lstat and its read is not found; other read errors pass through', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    vi.mocked(readFileBounded).mockImplementationOnce(() => {
      throw errno('ENOENT');
    });
    expect((await failure(b.sign('K1', MSG), 'ERR_KEY_NOT_FOUND')).context).toStrictEqual({ detail: 'K1.p8' });
    vi.mocked(readFileBounded).mockImplementationOnce(() => {
      throw errno('EIO');
    });
    await expect(b.sign('K1', MSG)).rejects.toMatchObject({ code: 'EIO' });
    const other = new SmkiError('ERR_KEY_INVALID', 'simulated', {});
    vi.mocked(readFileBounded).mockImplementationOnce(() => {
      throw other;
    });
    await expect(b.sign('K1', MSG)).rejects.toBe(other);
    const lookalike = Object.assign(new Error('not a SmkiError'), { code: 'ERR_INVALID_ARGUMENT' });
    vi.mocked(readFileBounded).mockImplementationOnce(() => {
      throw lookalike;
    });
    await expect(b.sign('K1', MSG)).rejects.toBe(lookalike);
    expect(await b.sign('K1', MSG)).toHaveLength(64);
  });

  it('a keys/ path that is not a directory: the file system error, not "not found" or an empty list', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    rmSync(join(dir, 'keys'), { recursive: true });
    writeFileSync(join(dir, 'keys'), '');
    await expect(b.sign('K1', MSG)).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(b.listHandles()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('damaged DER: ERR_KEY_FILE_CORRUPT with the offset, the detail prefixed by the file name, caused by the parser error', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    writeFileSync(keyFile(dir, 'K1'), toEncryptedPem(new Uint8Array([0x30, 0x05, 0x02, 0x01])));
    const e = await failure(b.sign('K1', MSG), 'ERR_KEY_FILE_CORRUPT');
    const inner = e.cause as SmkiError;
    expect(inner.code).toBe('ERR_KEY_FILE_CORRUPT');
    const ictx = inner.context as { offset: number; detail: string };
    expect(typeof ictx.offset).toBe('number');
    expect(e.context).toStrictEqual({ offset: ictx.offset, detail: `K1.p8: ${ictx.detail}` });
    // an error without offset or detail: none invented, the detail says "damaged"
    const bare = new SmkiError('ERR_KEY_FILE_CORRUPT', 'simulated', {});
    vi.mocked(decryptPrivateKey).mockRejectedValueOnce(bare);
    const e2 = await failure(b.sign('K2', MSG), 'ERR_KEY_FILE_CORRUPT');
    expect(e2.context).toStrictEqual({ detail: 'K2.p8: damaged' });
    expect(e2.cause).toBe(bare);
  });

  it('a key that is not P-256, or under another passphrase: damaged, this key only, with its cause', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    writeFileSync(keyFile(dir, 'K3'), toEncryptedPem(await encryptPrivateKey(p384, PASS)));
    const e = await failure(b.sign('K3', MSG), 'ERR_KEY_FILE_CORRUPT');
    expect(e.context).toStrictEqual({ detail: 'K3.p8: not a P-256 private key' });
    expect(e.cause).toBeDefined();
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    writeFileSync(keyFile(dir, 'K1'), toEncryptedPem(await encryptPrivateKey(p256, 'another passphrase')));
    const w = await failure(b.sign('K1', MSG), 'ERR_KEY_FILE_CORRUPT');
    expect(w.context).toStrictEqual({ detail: 'K1.p8: does not decrypt' });
    expect(isSmkiError(w.cause) && w.cause.code).toBe('ERR_KEYSTORE_WRONG_PASSPHRASE');
    expect(await b.sign('K2', MSG)).toHaveLength(64);
  });
});

describe('cache and concurrency', () => {
  it('a key is decrypted once and kept: its file is not needed again', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    expect(await b.sign('K1', MSG)).toHaveLength(64);
    rmSync(keyFile(dir, 'K1'));
    expect(await b.sign('K1', MSG)).toHaveLength(64);
  });

  it('a stale load failing after a newer one started does not drop the newer one', async () => {
    const dir = twoKeys();
    const b = await open(dir);
    const saved = readFileSync(keyFile(dir, 'K1'));
    const real = await decryptPrivateKey(fromEncryptedPem(saved), PASS);
    const d1 = deferred<never>();
    vi.mocked(decryptPrivateKey).mockReturnValueOnce(d1.promise);
    const first = b.sign('K1', MSG).catch((e: unknown) => e);
    await b.destroyKey('K1');
    writeFileSync(keyFile(dir, 'K1'), saved);
    const d2 = deferred<typeof real>();
    vi.mocked(decryptPrivateKey).mockReturnValueOnce(d2.promise);
    const second = b.sign('K1', MSG);
    d1.reject(new SmkiError('ERR_KEYSTORE_WRONG_PASSPHRASE', 'simulated', {}));
    expect(isSmkiError(await first)).toBe(true);
    const calls = vi.mocked(decryptPrivateKey).mock.calls.length;
    const third = b.sign('K1', MSG); // shares the second load
    d2.resolve(real);
    expect(await second).toHaveLength(64);
    expect(await third).toHaveLength(64);
    expect(vi.mocked(decryptPrivateKey).mock.calls.length).toBe(calls);
    rmSync(keyFile(dir, 'K1'));
    expect(await b.sign('K1', MSG)).toHaveLength(64); // kept
  });

  it('two generations of one key id at once: the second is refused at once, even if the first then fails', async () => {
    const dir = tempDir();
    let crash = true;
    const b = await open(dir, {
      fault: (p) => {
        if (crash && p === 'keyfile:after-write') throw new Error('disk full');
      },
    });
    const g1 = b.generateKey({ keyId: 'K1', label: 'x' });
    const g2 = b.generateKey({ keyId: 'K1', label: 'x' });
    expect((await failure(g2, 'ERR_INVALID_ARGUMENT')).context).toStrictEqual({ detail: 'K1' });
    await expect(g1).rejects.toThrow('disk full');
    crash = false;
    expect(existsSync(keyFile(dir, 'K1'))).toBe(false);
  });

  it('a closed backend refuses a sign before looking at its arguments; its error has no detail', async () => {
    const b = await open(tempDir());
    await b.close();
    const e = await failure(b.sign('K1', 'x' as unknown as Uint8Array), 'ERR_KEYSTORE_CLOSED');
    expect(e.context).toStrictEqual({});
  });
});

describe('open, files and directories', () => {
  it('only our own temporaries are handed for removal: lookalikes, and those of live processes of other users, are not', async () => {
    const dir = twoKeys();
    const dead = 4_000_000;
    const otherUser = 4_000_001;
    const realKill = process.kill.bind(process);
    vi.spyOn(process, 'kill').mockImplementation(((pid: number, sig?: string | number) => {
      if (pid === otherUser) throw errno('EPERM');
      return realKill(pid, sig);
    }) as typeof process.kill);
    const remove = [`.K1.p8.${dead}.0123456789ab.tmp`];
    const keep = [
      `x.K1.p8.${dead}.0123456789ab.tmp`,
      `K1.p8.${dead}.0123456789ab.tmp`,
      `.K1.p8.${dead}.0123456789ab.tmp.bak`,
      `.K1.p8.${dead}.0123456789ab.tmpx`,
      `.K1.p8.${otherUser}.0123456789ab.tmp`,
    ];
    for (const n of [...remove, ...keep]) writeFileSync(join(dir, 'keys', n), '');
    await open(dir);
    const handed = vi.mocked(removeStaleTemporaries).mock.calls.flatMap(([, names]) => [...names]);
    expect(handed.sort()).toEqual(remove);
    expect(readdirSync(join(dir, 'keys')).filter((n) => n.includes('.tmp')).sort()).toEqual([...keep].sort());
  });

  it('missing directories, nested parents included, are created mode 0700', async () => {
    const root = tempDir();
    const dir = join(root, 'a', 'b');
    await open(dir);
    for (const d of [root, join(root, 'a'), dir, join(dir, 'keys')]) expect(statSync(d).mode & 0o777, d).toBe(0o700);
  });
});
