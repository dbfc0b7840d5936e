// Encrypted key files. Standard encrypted PKCS#8 (RFC 5958 §3 EncryptedPrivateKeyInfo) with
// PBES2 (RFC 8018 §6.2): scrypt (RFC 7914 §7) or PBKDF2-HMAC-SHA256 (RFC 8018 §5.2, A.2, B.1.2)
// and AES-256-CBC (RFC 8018 B.2.5). OpenSSL reads what we write and we read what OpenSSL writes;
// hostile KDF parameters are refused before the KDF runs; damage gives ERR_KEY_FILE_CORRUPT or
// ERR_KEYSTORE_WRONG_PASSPHRASE and nothing else; no error carries the passphrase or key bytes.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSmkiError, SmkiError, type SmkiErrorCode } from '@smki/core';
import {
  checkEncryptOptions,
  decryptPrivateKey,
  DEFAULT_PKCS8_DECRYPT_LIMITS,
  encryptPrivateKey,
  encryptPrivateKeyInfo,
  fromEncryptedPem,
  parseEncryptedPrivateKeyInfo,
  PKCS8_OID,
  SCRYPT_BLOCK_SIZE,
  toEncryptedPem,
} from '../src/internal/pkcs8.js';

const PASS = 'Tr0ub4dor&3 correct-horse-battery-staple';
const dir = mkdtempSync(join(tmpdir(), 'smki-pkcs8-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let key: KeyObject;
let scryptDer: Uint8Array;
let pbkdf2Der: Uint8Array;
/** Strings that must never appear in an error: the passphrase and encodings of the private key. */
let secrets: string[];

beforeAll(async () => {
  key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  scryptDer = await encryptPrivateKey(key, PASS);
  pbkdf2Der = await encryptPrivateKey(key, PASS, { kdf: 'pbkdf2' });
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  const d = Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url');
  secrets = [PASS, d.toString('hex'), d.toString('base64'), d.toString('base64url'), pkcs8.toString('hex'), pkcs8.toString('base64').slice(0, 40)];
});

function write(name: string, data: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

function openssl(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sameKey = (a: KeyObject, b: KeyObject) => expect(a.export({ format: 'der', type: 'pkcs8' }).equals(b.export({ format: 'der', type: 'pkcs8' }))).toBe(true);

/** Everything an error shows: message, stack, context, and the same for each cause. */
function errorText(e: unknown, depth = 0): string {
  if (depth > 8 || e === undefined || e === null) return '';
  if (typeof e !== 'object') return String(e);
  const err = e as { name?: unknown; message?: unknown; stack?: unknown; context?: unknown; cause?: unknown };
  let ctx = '';
  try {
    ctx = JSON.stringify(err.context ?? null);
  } catch {
    ctx = '(unserialisable context)';
  }
  return [String(err.name), String(err.message), String(err.stack), ctx, errorText(err.cause, depth + 1)].join('\n');
}

function expectNoSecrets(e: unknown): void {
  const text = errorText(e).toLowerCase();
  for (const s of secrets) expect(text.includes(s.toLowerCase()), `error text contains a secret`).toBe(false);
}

/** Await `p`; it must fail with a SmkiError whose code is one of `codes`, carrying no secret. */
async function failure(p: Promise<unknown> | (() => unknown), codes: SmkiErrorCode[]): Promise<SmkiError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(isSmkiError(e), `expected a SmkiError, got ${String(e)}`).toBe(true);
    expect(codes).toContain((e as SmkiError).code);
    expectNoSecrets(e);
    return e as SmkiError;
  }
  throw new Error(`expected ${codes.join(' or ')}, nothing was thrown`);
}

// ---- a tiny DER builder, for files with chosen (hostile) parameters
const len = (n: number): number[] => (n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]);
const tlv = (tag: number, ...parts: Uint8Array[]): Uint8Array => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag, ...len(body.length)]), body]);
};
const seq = (...parts: Uint8Array[]) => tlv(0x30, ...parts);
const oct = (b: Uint8Array) => tlv(0x04, b);
const nul = () => tlv(0x05);
const int = (n: number | bigint): Uint8Array => {
  let hex = BigInt(n).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return tlv(0x02, Buffer.from(hex, 'hex'));
};
const oid = (dotted: string): Uint8Array => {
  const a = dotted.split('.').map(Number);
  const out = [(a[0] as number) * 40 + (a[1] as number)];
  for (const arc of a.slice(2)) {
    const t = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) t.unshift((v & 0x7f) | 0x80);
    out.push(...t);
  }
  return tlv(0x06, Buffer.from(out));
};
const SALT = new Uint8Array(16).fill(0x5a);
const IV = new Uint8Array(16).fill(0xa5);
const CT = new Uint8Array(144).fill(0x33);
const scryptKdf = (N: number | bigint, r = 8, p = 1, extra: Uint8Array[] = []) => seq(oid(PKCS8_OID.scrypt), seq(oct(SALT), int(N), int(r), int(p), ...extra));
const pbkdf2Kdf = (iterations: number | bigint, prf: Uint8Array | null = seq(oid(PKCS8_OID.hmacWithSHA256), nul()), extra: Uint8Array[] = []) =>
  seq(oid(PKCS8_OID.pbkdf2), seq(oct(SALT), int(iterations), ...extra, ...(prf ? [prf] : [])));
const aesCbc = (iv: Uint8Array = IV) => seq(oid(PKCS8_OID.aes256Cbc), oct(iv));
const epki = (kdf: Uint8Array, enc: Uint8Array = aesCbc(), ct: Uint8Array = CT, alg: string = PKCS8_OID.pbes2) => seq(seq(oid(alg), seq(kdf, enc)), oct(ct));

describe('encryptPrivateKey / decryptPrivateKey (RFC 8018 6.2)', () => {
  it('round-trips with scrypt and with PBKDF2-HMAC-SHA256', async () => {
    sameKey(await decryptPrivateKey(scryptDer, PASS), key);
    sameKey(await decryptPrivateKey(pbkdf2Der, PASS), key);
  });

  it('writes PBES2 / scrypt N=2^15 r=7 p=1 keyLength 32 / aes256-CBC with a 16-byte salt and IV (RFC 7914 7)', () => {
    const s = parseEncryptedPrivateKeyInfo(scryptDer);
    expect(s.kdf).toMatchObject({ name: 'scrypt', N: 32768, r: SCRYPT_BLOCK_SIZE, p: 1 });
    expect(s.kdf.salt.length).toBe(16);
    expect(s.cipher).toBe('aes-256-cbc');
    expect(s.iv.length).toBe(16);
    expect(s.ciphertext.length % 16).toBe(0);
    const p = parseEncryptedPrivateKeyInfo(pbkdf2Der);
    expect(p.kdf).toMatchObject({ name: 'pbkdf2', iterations: 600_000, prf: 'hmacWithSHA256' });
  });

  it('is reproducible byte for byte with injected randomness, and salts/IVs differ otherwise', async () => {
    const random = (n: number) => new Uint8Array(n).fill(7);
    const a = await encryptPrivateKey(key, PASS, { random, kdf: 'pbkdf2' });
    const b = await encryptPrivateKey(key, PASS, { random, kdf: 'pbkdf2' });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const s1 = parseEncryptedPrivateKeyInfo(scryptDer);
    const s2 = parseEncryptedPrivateKeyInfo(pbkdf2Der);
    expect(Buffer.from(s1.kdf.salt).equals(Buffer.from(s2.kdf.salt))).toBe(false);
    expect(Buffer.from(s1.iv).equals(Buffer.from(s2.iv))).toBe(false);
  });

  it('refuses weak or unknown encryption options (N ≥ 2^15, ≥ 600,000 iterations)', async () => {
    for (const o of [{ scryptN: 2 ** 14 }, { scryptN: 2 ** 15 + 1 }, { scryptN: 2 ** 21 }, { pbkdf2Iterations: 2048 }, { pbkdf2Iterations: 1e9 }, { kdf: 'md5' as 'scrypt' }]) {
      await failure(() => checkEncryptOptions(o), ['ERR_INVALID_ARGUMENT']);
      await failure(encryptPrivateKey(key, PASS, o), ['ERR_INVALID_ARGUMENT']);
    }
    await failure(encryptPrivateKey(key, ''), ['ERR_INVALID_ARGUMENT']);
    await failure(encryptPrivateKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, PASS), ['ERR_INVALID_ARGUMENT']);
    await failure(encryptPrivateKey(key, PASS, { random: (n) => new Uint8Array(n - 1) }), ['ERR_INVALID_ARGUMENT']);
  });

  it('a wrong passphrase is ERR_KEYSTORE_WRONG_PASSPHRASE (RFC 8018 6.2.2 step 5: bad padding)', async () => {
    await failure(decryptPrivateKey(scryptDer, `${PASS}x`), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    await failure(decryptPrivateKey(pbkdf2Der, 'wrong'), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    await failure(decryptPrivateKey(scryptDer, ''), ['ERR_INVALID_ARGUMENT']);
  });

  it('a plaintext that passes the padding check but is not PKCS#8 is also a wrong passphrase', async () => {
    // CBC without a MAC: a wrong passphrase passes the padding check about 1 time in 256 and
    // decrypts to garbage. Made here directly: garbage encrypted under the right passphrase.
    const garbage = await encryptPrivateKeyInfo(randomBytes(138), PASS);
    const e = await failure(decryptPrivateKey(garbage, PASS), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
    expect(e.cause).toBeUndefined();
  });

  it('runs the KDF off the event loop', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    try {
      await decryptPrivateKey(scryptDer, PASS);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(5);
  });
});

describe('OpenSSL interoperability (`openssl pkey -passin` reads the files)', () => {
  const publicPem = () => createPublicKey(key).export({ format: 'pem', type: 'spki' }) as string;

  it.each([
    ['scrypt', () => scryptDer],
    ['pbkdf2', () => pbkdf2Der],
  ])('openssl pkey reads our %s file and finds the same key', (name, der) => {
    const file = write(`ours-${name}.p8`, toEncryptedPem(der()));
    const ok = openssl(['pkey', '-in', file, '-passin', `pass:${PASS}`, '-noout']);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const pub = openssl(['pkey', '-in', file, '-passin', `pass:${PASS}`, '-pubout']);
    expect(pub.stdout).toBe(publicPem());
    expect(openssl(['pkey', '-in', file, '-passin', 'pass:wrong', '-noout']).status).not.toBe(0);
  });

  it('openssl asn1parse shows PBES2 / scrypt with N ≥ 32768 / aes-256-cbc (RFC 7914 7)', () => {
    const out = openssl(['asn1parse', '-in', write('ours-scrypt-asn1.p8', toEncryptedPem(scryptDer))]).stdout;
    expect(out).toMatch(/OBJECT\s+:PBES2/);
    expect(out).toMatch(/OBJECT\s+:scrypt/);
    expect(out).toMatch(/OBJECT\s+:aes-256-cbc/);
    // salt, then N, r, p, keyLength as INTEGERs
    const ints = [...out.matchAll(/INTEGER\s+:([0-9A-F]+)/g)].map((m) => parseInt(m[1] as string, 16));
    expect(ints[0]).toBeGreaterThanOrEqual(32768);
    expect(ints.slice(1)).toEqual([SCRYPT_BLOCK_SIZE, 1, 32]);
  });

  it('openssl asn1parse shows PBES2 / PBKDF2 with ≥ 600000 iterations and hmacWithSHA256 / aes-256-cbc (RFC 8018 A.2)', () => {
    const out = openssl(['asn1parse', '-in', write('ours-pbkdf2-asn1.p8', toEncryptedPem(pbkdf2Der))]).stdout;
    expect(out).toMatch(/OBJECT\s+:PBES2/);
    expect(out).toMatch(/OBJECT\s+:PBKDF2/);
    expect(out).toMatch(/OBJECT\s+:hmacWithSHA256/);
    expect(out).toMatch(/OBJECT\s+:aes-256-cbc/);
    const ints = [...out.matchAll(/INTEGER\s+:([0-9A-F]+)/g)].map((m) => parseInt(m[1] as string, 16));
    expect(ints[0]).toBeGreaterThanOrEqual(600_000);
  });

  it.each([
    ['-scrypt N=2^15 r=7', ['-scrypt', '-scrypt_N', '32768', '-scrypt_r', '7', '-scrypt_p', '1']],
    ['-v2prf hmacWithSHA256 -iter 600000', ['-v2prf', 'hmacWithSHA256', '-iter', '600000']],
  ])('a file made by `openssl pkcs8 -topk8 -v2 aes-256-cbc %s` decrypts', async (_name, extra) => {
    const plain = write('plain.pem', key.export({ format: 'pem', type: 'pkcs8' }) as string);
    const out = join(dir, 'openssl.p8');
    execFileSync('openssl', ['pkcs8', '-topk8', '-in', plain, '-v2', 'aes-256-cbc', ...extra, '-passout', `pass:${PASS}`, '-out', out]);
    rmSync(plain);
    const der = fromEncryptedPem(readFileSync(out, 'utf8'));
    sameKey(await decryptPrivateKey(der, PASS), key);
    await failure(decryptPrivateKey(der, 'not it'), ['ERR_KEYSTORE_WRONG_PASSPHRASE']);
  });

  it.each([
    // OpenSSL's defaults are below this store's floor: scrypt N=16384, PBKDF2 2,048 iterations.
    ['openssl -scrypt defaults (N=16384)', ['-v2', 'aes-256-cbc', '-scrypt'], /scrypt N 16384/],
    ['openssl -v2 defaults (PBKDF2, 2048 iterations)', ['-v2', 'aes-256-cbc'], /iteration count 2048/],
    ['PBKDF2 with hmacWithSHA1', ['-v2', 'aes-256-cbc', '-v2prf', 'hmacWithSHA1', '-iter', '600000'], /hmacWithSHA1/],
    ['aes-128-cbc', ['-v2', 'aes-128-cbc', '-v2prf', 'hmacWithSHA256', '-iter', '600000'], /not aes256-CBC/],
    ['PKCS#12 PBE (not PBES2)', ['-v1', 'PBE-SHA1-3DES'], /not PBES2/],
  ])('refuses a file made with %s as ERR_KEY_FILE_CORRUPT, before any KDF', async (_name, args, detail) => {
    const plain = write('plain.pem', key.export({ format: 'pem', type: 'pkcs8' }) as string);
    const out = join(dir, 'weak.p8');
    execFileSync('openssl', ['pkcs8', '-topk8', '-in', plain, ...args, '-passout', `pass:${PASS}`, '-out', out]);
    rmSync(plain);
    const e = await failure(decryptPrivateKey(fromEncryptedPem(readFileSync(out, 'utf8')), PASS), ['ERR_KEY_FILE_CORRUPT']);
    expect(e.message).toMatch(detail);
  });

  it("refuses node's own KeyObject.export({ cipher }) output (2,048 PBKDF2 iterations)", async () => {
    const pem = key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: PASS }) as string;
    const e = await failure(decryptPrivateKey(fromEncryptedPem(pem), PASS), ['ERR_KEY_FILE_CORRUPT']);
    expect(e.message).toMatch(/iteration count 2048/);
    expect(createPrivateKey({ key: pem, passphrase: PASS }).asymmetricKeyType).toBe('ec'); // the file itself is fine
  });
});

describe('hostile KDF parameters are refused before the KDF runs', () => {
  // Each of these would hang the process, exhaust memory, or weaken the key if the KDF ran.
  const cases: [string, Uint8Array, RegExp][] = [
    ['scrypt N = 2^30', epki(scryptKdf(2 ** 30)), /scrypt N 1073741824/],
    ['scrypt N = 2^62', epki(scryptKdf(2n ** 62n)), /out of range/],
    ['scrypt N = 2^21', epki(scryptKdf(2 ** 21)), /scrypt N/],
    ['scrypt N = 2^14 (too weak)', epki(scryptKdf(2 ** 14)), /scrypt N 16384/],
    ['scrypt N not a power of two', epki(scryptKdf(3 * 2 ** 15)), /scrypt N/],
    ['scrypt N negative', epki(seq(oid(PKCS8_OID.scrypt), seq(oct(SALT), tlv(0x02, Buffer.from([0x80, 0, 0])), int(8), int(1)))), /negative/],
    ['scrypt r = 33', epki(scryptKdf(2 ** 15, 33)), /scrypt r 33/],
    ['scrypt r = 0', epki(scryptKdf(2 ** 15, 0)), /scrypt r 0/],
    ['scrypt p = 17', epki(scryptKdf(2 ** 15, 8, 17)), /scrypt p 17/],
    ['scrypt p = 2^30', epki(scryptKdf(2 ** 15, 8, 2 ** 30)), /scrypt p/],
    ['scrypt N = 2^20, r = 32 (4 GiB)', epki(scryptKdf(2 ** 20, 32)), /memory/],
    ['scrypt N = 2^18, r = 8, p = 16 (work)', epki(scryptKdf(2 ** 18, 8, 16)), /work/],
    ['scrypt keyLength 16', epki(scryptKdf(2 ** 15, 8, 1, [int(16)])), /keyLength 16/],
    ['PBKDF2 10^9 iterations', epki(pbkdf2Kdf(1e9)), /iteration count 1000000000/],
    ['PBKDF2 2^53 iterations', epki(pbkdf2Kdf(2n ** 60n)), /out of range/],
    ['PBKDF2 2048 iterations', epki(pbkdf2Kdf(2048)), /iteration count 2048/],
    ['PBKDF2 with hmacWithSHA1 by default (prf absent)', epki(pbkdf2Kdf(600_000, null)), /hmacWithSHA1/],
    ['PBKDF2 with hmacWithSHA512', epki(pbkdf2Kdf(600_000, seq(oid('1.2.840.113549.2.11'), nul()))), /1\.2\.840\.113549\.2\.11/],
    ['PBKDF2 prf parameters not NULL', epki(pbkdf2Kdf(600_000, seq(oid(PKCS8_OID.hmacWithSHA256), int(1)))), /parameters/],
    ['PBKDF2 keyLength 16', epki(pbkdf2Kdf(600_000, undefined, [int(16)])), /keyLength 16/],
    ['PBKDF2 otherSource salt', epki(seq(oid(PKCS8_OID.pbkdf2), seq(seq(oid('1.2.3.4')), int(600_000)))), /otherSource/],
    ['salt of 4 bytes', epki(seq(oid(PKCS8_OID.scrypt), seq(oct(new Uint8Array(4)), int(2 ** 15), int(8), int(1)))), /salt is 4 bytes/],
    ['unknown KDF', epki(seq(oid('1.3.6.1.4.1.99999.1'), seq())), /1\.3\.6\.1\.4\.1\.99999\.1 is neither/],
    ['aes128-CBC', epki(scryptKdf(2 ** 15), seq(oid('2.16.840.1.101.3.4.1.2'), oct(IV))), /not aes256-CBC/],
    ['aes256-GCM', epki(scryptKdf(2 ** 15), seq(oid('2.16.840.1.101.3.4.1.46'), seq(oct(IV.subarray(0, 12))))), /not aes256-CBC/],
    ['an 8-byte IV', epki(scryptKdf(2 ** 15), aesCbc(IV.subarray(0, 8))), /IV is 8 bytes/],
    ['ciphertext of 15 bytes', epki(scryptKdf(2 ** 15), aesCbc(), CT.subarray(0, 15)), /encryptedData is 15 bytes/],
    ['empty ciphertext', epki(scryptKdf(2 ** 15), aesCbc(), new Uint8Array(0)), /encryptedData is 0 bytes/],
    ['not PBES2', epki(scryptKdf(2 ** 15), aesCbc(), CT, '1.2.840.113549.1.12.1.3'), /not PBES2/],
  ];

  it.each(cases)('%s → ERR_KEY_FILE_CORRUPT in well under 50 ms', async (_name, der, detail) => {
    const t0 = performance.now();
    const e = await failure(decryptPrivateKey(der, PASS), ['ERR_KEY_FILE_CORRUPT']);
    expect(performance.now() - t0).toBeLessThan(50);
    expect(e.message).toMatch(detail);
    expect(e.context).toHaveProperty('offset');
  });

  it('the builder itself makes files the parser accepts (so the cases above break one rule each)', () => {
    expect(parseEncryptedPrivateKeyInfo(epki(scryptKdf(2 ** 15))).kdf).toMatchObject({ name: 'scrypt', N: 32768, r: 8, p: 1 });
    expect(parseEncryptedPrivateKeyInfo(epki(pbkdf2Kdf(600_000))).kdf).toMatchObject({ name: 'pbkdf2', iterations: 600_000 });
    expect(parseEncryptedPrivateKeyInfo(epki(pbkdf2Kdf(600_000, seq(oid(PKCS8_OID.hmacWithSHA256))))).kdf).toMatchObject({ name: 'pbkdf2' });
  });

  it('limits can be lowered, never raised', async () => {
    expect(parseEncryptedPrivateKeyInfo(epki(scryptKdf(2 ** 16))).kdf).toMatchObject({ N: 65536 });
    await failure(() => parseEncryptedPrivateKeyInfo(epki(scryptKdf(2 ** 16)), { maxScryptN: 2 ** 15 }), ['ERR_KEY_FILE_CORRUPT']);
    await failure(() => parseEncryptedPrivateKeyInfo(epki(pbkdf2Kdf(700_000)), { maxPbkdf2Iterations: 600_000 }), ['ERR_KEY_FILE_CORRUPT']);
    await failure(() => parseEncryptedPrivateKeyInfo(scryptDer, { maxScryptN: 2 ** 21 }), ['ERR_INVALID_ARGUMENT']);
    await failure(() => parseEncryptedPrivateKeyInfo(scryptDer, { maxScryptMemory: DEFAULT_PKCS8_DECRYPT_LIMITS.maxScryptMemory + 1 }), ['ERR_INVALID_ARGUMENT']);
  });
});

describe('damaged files (a corrupted key file gives a clear error)', () => {
  // Positions of the salt, IV and ciphertext values: a change there can only be noticed after the
  // KDF (CBC has no MAC), as a wrong passphrase. Everywhere else the parser must notice.
  function valueRanges(der: Uint8Array): [number, number][] {
    const p = parseEncryptedPrivateKeyInfo(der);
    const at = (v: Uint8Array): [number, number] => [v.byteOffset - der.byteOffset, v.byteOffset - der.byteOffset + v.length];
    return [at(p.kdf.salt), at(p.iv), at(p.ciphertext)];
  }

  it('every truncation is ERR_KEY_FILE_CORRUPT, with an offset', async () => {
    for (const der of [scryptDer, pbkdf2Der]) {
      for (let n = 0; n < der.length; n++) {
        const e = await failure(decryptPrivateKey(der.subarray(0, n), PASS), ['ERR_KEY_FILE_CORRUPT']);
        expect(typeof e.context).toBe('object');
      }
      await failure(decryptPrivateKey(Buffer.concat([der, Buffer.from([0])]), PASS), ['ERR_KEY_FILE_CORRUPT']);
    }
  });

  it('every change to a byte outside salt, IV and ciphertext is refused as CORRUPT or WRONG_PASSPHRASE, never decrypts', async () => {
    const der = scryptDer;
    const ranges = valueRanges(der);
    const inValue = (i: number) => ranges.some(([a, b]) => i >= a && i < b);
    let kdfRuns = 0;
    for (let i = 0; i < der.length; i++) {
      if (inValue(i)) continue;
      for (const mask of [0x01, 0x80, 0xff]) {
        const m = Uint8Array.from(der);
        m[i] = (m[i] as number) ^ mask;
        const e = await failure(decryptPrivateKey(m, PASS), ['ERR_KEY_FILE_CORRUPT', 'ERR_KEYSTORE_WRONG_PASSPHRASE']);
        if (e.code === 'ERR_KEYSTORE_WRONG_PASSPHRASE') kdfRuns++; // e.g. r 7 → 6: a valid, different KDF
      }
    }
    expect(kdfRuns).toBeLessThan(8);
  });

  it('a changed salt, IV or ciphertext byte is refused: WRONG_PASSPHRASE (CBC has no MAC), or CORRUPT by the pairwise check', async () => {
    for (const [a, b] of valueRanges(scryptDer)) {
      for (const i of [a, b - 1]) {
        const m = Uint8Array.from(scryptDer);
        m[i] = (m[i] as number) ^ 0x01;
        await failure(decryptPrivateKey(m, PASS), ['ERR_KEYSTORE_WRONG_PASSPHRASE', 'ERR_KEY_FILE_CORRUPT']);
      }
    }
  });

  it('a changed ciphertext block inside the private scalar is caught by the pairwise consistency check', async () => {
    // node's P-256 PKCS#8 puts the 32-byte scalar at plaintext offsets 36..67, so plaintext block
    // 3 (48..63) lies wholly inside it. Changing ciphertext block 3 garbles plaintext block 3 and
    // flips one bit of block 4 (offset 64, still the scalar): the result parses, as a different
    // scalar beside the original public key. Without the check it would sign with a wrong key.
    const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
    expect(pkcs8.subarray(34, 36).toString('hex')).toBe('0420');
    const { ciphertext } = parseEncryptedPrivateKeyInfo(scryptDer);
    const m = Uint8Array.from(scryptDer);
    const at = ciphertext.byteOffset - scryptDer.byteOffset + 48;
    m[at] = (m[at] as number) ^ 0x01;
    const e = await failure(decryptPrivateKey(m, PASS), ['ERR_KEY_FILE_CORRUPT']);
    expect(e.message).toMatch(/does not match its public key/);
    // The same, made directly: a consistent-looking PKCS#8 whose scalar was changed.
    const bad = Buffer.from(pkcs8);
    bad[50] = (bad[50] as number) ^ 0x40;
    await failure(decryptPrivateKey(await encryptPrivateKeyInfo(bad, PASS), PASS), ['ERR_KEY_FILE_CORRUPT']);
  });

  it('reports structural damage with its byte offset', async () => {
    const m = Uint8Array.from(scryptDer);
    m[1] = 0x85; // outer length: 5 length octets
    expect((await failure(decryptPrivateKey(m, PASS), ['ERR_KEY_FILE_CORRUPT'])).context).toMatchObject({ offset: 1 });
    const t = Buffer.concat([scryptDer, Buffer.from([0x05, 0x00])]);
    expect((await failure(decryptPrivateKey(t, PASS), ['ERR_KEY_FILE_CORRUPT'])).message).toMatch(/unexpected data/);
    await failure(decryptPrivateKey(new Uint8Array(70_000), PASS), ['ERR_KEY_FILE_CORRUPT']);
  });
});

describe('PEM (RFC 7468 11)', () => {
  it('writes 64-character lines under ENCRYPTED PRIVATE KEY and reads them back', () => {
    const pem = toEncryptedPem(scryptDer);
    expect(pem.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----\n')).toBe(true);
    expect(pem.endsWith('-----END ENCRYPTED PRIVATE KEY-----\n')).toBe(true);
    for (const line of pem.trim().split('\n').slice(1, -1)) expect(line.length).toBeLessThanOrEqual(64);
    expect(Buffer.from(fromEncryptedPem(pem)).equals(Buffer.from(scryptDer))).toBe(true);
    expect(Buffer.from(fromEncryptedPem(Buffer.from(pem.replace(/\n/g, '\r\n')))).equals(Buffer.from(scryptDer))).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['an unencrypted key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string],
    ['no END line', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n'],
    ['text before', `hello\n${'-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n'}`],
    ['text after', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\nmore'],
    ['a non-base64 character', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMI*B\n-----END ENCRYPTED PRIVATE KEY-----\n'],
    ['bad base64 length', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBx\n-----END ENCRYPTED PRIVATE KEY-----\n'],
    ['an empty body', '-----BEGIN ENCRYPTED PRIVATE KEY-----\n-----END ENCRYPTED PRIVATE KEY-----\n'],
  ])('refuses %s as ERR_KEY_FILE_CORRUPT', async (_name, text) => {
    await failure(() => fromEncryptedPem(text), ['ERR_KEY_FILE_CORRUPT']);
  });

  it('an unencrypted key is never accepted, and its bytes do not leak into the error', async () => {
    const e = await failure(() => fromEncryptedPem(key.export({ format: 'pem', type: 'pkcs8' }) as string), ['ERR_KEY_FILE_CORRUPT']);
    expect(e.message).toMatch(/BEGIN ENCRYPTED PRIVATE KEY/);
  });
});
