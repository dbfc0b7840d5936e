/**
 * Fuzz targets of @smki/keystore: encrypted PKCS#8 key files (RFC 5958 §3, PBES2 of RFC 8018
 * §6.2 with scrypt of RFC 7914 §7 or PBKDF2, RFC 7468 §11 armour), read structurally, decrypted,
 * and loaded through the file backend; the audit log (verified, and opened with its
 * crash-recovery rule); and a database trail's record.
 * @module
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEui64, SmkiError } from '@smki/core';
import { AUDIT_LOG_FILE, AuditLog, deriveAuditKey, FileKeyBackend, verifyAuditLog, type AuditEvent, type AuditHead, type AuditRecord, type AuditVerification } from '@smki/keystore';
import { encodeTrailLine, parseTrailLine, trailLineHash } from '../../../packages/keystore/src/audit.js';
import {
  DEFAULT_PKCS8_DECRYPT_LIMITS,
  decryptPrivateKey,
  encryptPrivateKey,
  fromEncryptedPem,
  MIN_PBKDF2_ITERATIONS,
  MIN_SCRYPT_N,
  parseEncryptedPrivateKeyInfo,
  toEncryptedPem,
  type Pbes2Parameters,
} from '../../../packages/keystore/src/internal/pkcs8.js';
import { seededPrivateKey, seededRandom } from '../../vectors/deterministic.js';
import type { Instance, Target } from '../harness.js';
import type { Seed } from '../mutate.js';
import { asText, textAndArmoured, textBytes } from './seeds.js';

/** Passphrase of the fuzz key files (test material). */
export const FUZZ_PASSPHRASE = 'fuzz: correct horse battery staple';

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

function rawPublic(key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  return Uint8Array.from(Buffer.concat([Buffer.of(4), Buffer.from(jwk.x as string, 'base64url'), Buffer.from(jwk.y as string, 'base64url')]));
}

interface KeyFileSeeds {
  /** DER of scrypt files (cheap enough to decrypt in a test). */
  readonly scrypt: readonly Seed[];
  /** DER of a PBKDF2 file (parsed, not decrypted: 600,000 iterations each). */
  readonly pbkdf2: readonly Seed[];
  /** Public keys of the seeds' private keys. */
  readonly publicKeys: readonly Uint8Array[];
}

let keyFiles: Promise<KeyFileSeeds> | undefined;

/** Key files of seeded P-256 keys, encrypted with seeded salts and IVs (byte-identical on every run). */
export function keyFileSeeds(): Promise<KeyFileSeeds> {
  keyFiles ??= (async () => {
    const labels = ['supplier-ds', 'supplier-ka'];
    const scrypt: Seed[] = [];
    for (const label of labels) {
      const der = await encryptPrivateKey(seededPrivateKey(label), FUZZ_PASSPHRASE, { random: seededRandom(`fuzz-pkcs8/${label}`) });
      scrypt.push({ name: `scrypt-${label}`, bytes: der });
    }
    const pbkdf2 = [
      { name: 'pbkdf2-supplier-ds', bytes: await encryptPrivateKey(seededPrivateKey('supplier-ds'), FUZZ_PASSPHRASE, { kdf: 'pbkdf2', random: seededRandom('fuzz-pkcs8/pbkdf2') }) },
    ];
    return { scrypt, pbkdf2, publicKeys: labels.map((l) => rawPublic(seededPrivateKey(l))) };
  })();
  return keyFiles;
}

/** What a successful structural read promises: every parameter inside the bounds, views inside the input. */
function checkParameters(p: Pbes2Parameters, der: Uint8Array): void {
  const d = DEFAULT_PKCS8_DECRYPT_LIMITS;
  const k = p.kdf;
  if (k.name === 'scrypt') {
    if (!(k.N >= MIN_SCRYPT_N && k.N <= d.maxScryptN && (k.N & (k.N - 1)) === 0)) throw new Error(`accepted scrypt N=${k.N}`);
    if (!(k.r >= 1 && k.r <= d.maxScryptR && k.p >= 1 && k.p <= d.maxScryptP)) throw new Error(`accepted scrypt r=${k.r} p=${k.p}`);
    if (128 * k.N * k.r > d.maxScryptMemory || k.N * k.r * k.p > d.maxScryptWork) throw new Error('accepted scrypt parameters over the memory or work bound');
  } else if (!(k.iterations >= MIN_PBKDF2_ITERATIONS && k.iterations <= d.maxPbkdf2Iterations)) {
    throw new Error(`accepted ${k.iterations} PBKDF2 iterations`);
  }
  if (k.salt.length < 8 || k.salt.length > 64) throw new Error(`accepted a ${k.salt.length}-byte salt`);
  if (p.iv.length !== 16) throw new Error(`accepted a ${p.iv.length}-byte IV`);
  if (p.ciphertext.length === 0 || p.ciphertext.length % 16 !== 0) throw new Error(`accepted a ${p.ciphertext.length}-byte ciphertext`);
  const within = (v: Uint8Array) => v.buffer === der.buffer && v.byteOffset >= der.byteOffset && v.byteOffset + v.length <= der.byteOffset + der.length;
  if (!within(p.iv) || !within(p.ciphertext) || !within(k.salt)) throw new Error('a parameter is not a view of the input');
}

/** parseEncryptedPrivateKeyInfo: the structural read, before any KDF. */
export const pkcs8Target: Target = {
  name: 'keystore.pkcs8.der',
  about: 'parseEncryptedPrivateKeyInfo: EncryptedPrivateKeyInfo (RFC 5958 §3), PBES2 (RFC 8018 §6.2, A.2, A.4, B.2.5), scrypt-params (RFC 7914 §7)',
  der: true,
  codes: ['ERR_KEY_FILE_CORRUPT'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const k = await keyFileSeeds();
    return {
      seeds: [...k.scrypt, ...k.pbkdf2],
      run: (input) => parseEncryptedPrivateKeyInfo(input),
      check: (input, _s, r) => checkParameters(r as Pbes2Parameters, input),
    };
  },
};

/** fromEncryptedPem then the structural read: the key file as it is on disk. */
export const pkcs8PemTarget: Target = {
  name: 'keystore.pkcs8.pem',
  about: 'fromEncryptedPem + parseEncryptedPrivateKeyInfo: a strict RFC 7468 §3, §11 ENCRYPTED PRIVATE KEY file',
  der: true,
  codes: ['ERR_KEY_FILE_CORRUPT'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const k = await keyFileSeeds();
    const der = [...k.scrypt, ...k.pbkdf2];
    return {
      seeds: textAndArmoured(der.map((s) => ({ name: s.name, bytes: textBytes(toEncryptedPem(s.bytes)) })), der, 'ENCRYPTED PRIVATE KEY'),
      run: (input, seed) => {
        const der = fromEncryptedPem(asText(input, seed));
        return { der, params: parseEncryptedPrivateKeyInfo(der) };
      },
      check(_input, _s, r) {
        const { der, params } = r as { der: Uint8Array; params: Pbes2Parameters };
        if (!equal(fromEncryptedPem(toEncryptedPem(der)), der)) throw new Error('fromEncryptedPem(toEncryptedPem(der)) is not der');
        checkParameters(params, der);
      },
    };
  },
};

/** decryptPrivateKey: structure, KDF, AES-256-CBC, PKCS#8 and the pairwise consistency test. */
export const pkcs8DecryptTarget: Target = {
  name: 'keystore.pkcs8.decrypt',
  about: 'decryptPrivateKey: PBES2 decryption (RFC 8018 §6.2.2) of a scrypt key file; the key must be the one encrypted',
  der: true,
  codes: ['ERR_KEY_FILE_CORRUPT', 'ERR_KEYSTORE_WRONG_PASSPHRASE'],
  fuzzRuns: 3000,
  fuzzRunsNote: 'every input whose structure is intact runs scrypt (N=2^15, r=7: tens of ms), so a million would take days',
  mutantsMayParse: false,
  async setup(): Promise<Instance> {
    const k = await keyFileSeeds();
    return {
      seeds: k.scrypt,
      run: (input) => decryptPrivateKey(input, FUZZ_PASSPHRASE),
      check(_input, _s, r) {
        const pub = rawPublic(r as KeyObject);
        if (!k.publicKeys.some((p) => equal(p, pub))) throw new Error('a mutated file decrypted to a key that was never encrypted');
      },
    };
  },
};

/** FileKeyBackend: a mutated key file beside intact ones, read on first use of its handle. */
export const fileBackendTarget: Target = {
  name: 'keystore.file-backend.load',
  about: 'FileKeyBackend first use of a key file (keys/<handle>.p8, RFC 7468 §11 + RFC 5958 §3): the key, or ERR_KEY_FILE_CORRUPT for that key only',
  der: true,
  codes: ['ERR_KEY_FILE_CORRUPT'],
  fuzzRuns: 3000,
  fuzzRunsNote: 'every file whose structure is intact runs scrypt (tens of ms)',
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const k = await keyFileSeeds();
    const dir = mkdtempSync(join(tmpdir(), 'smki-fuzz-keys-'));
    const backend = await FileKeyBackend.open({ directory: dir, passphrase: FUZZ_PASSPHRASE });
    let n = 0;
    return {
      seeds: textAndArmoured(k.scrypt.map((s) => ({ name: s.name, bytes: textBytes(toEncryptedPem(s.bytes)) })), k.scrypt, 'ENCRYPTED PRIVATE KEY'),
      async run(input, seed) {
        const handle = `F${n++}`; // a new handle each time: the backend keeps keys it has read
        const path = join(dir, 'keys', `${handle}.p8`);
        writeFileSync(path, seed.armour !== undefined ? asText(input, seed) : input, { mode: 0o600 });
        try {
          return await backend.publicKey(handle);
        } finally {
          unlinkSync(path);
        }
      },
      check(_input, _s, r) {
        if (!k.publicKeys.some((p) => equal(p, r as Uint8Array))) throw new Error('a mutated key file gave a key that was never encrypted');
      },
      async close() {
        await backend.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Audit log

interface AuditSeed extends Seed {
  readonly key: Uint8Array;
  readonly head: AuditHead;
}

const ORG = parseEui64('90B3D51F30010000');
const DEV = parseEui64('00DB1234567890A0');

function auditEvents(variant: number): AuditEvent[] {
  const events: AuditEvent[] = [
    { type: 'store.opened' },
    { type: 'organisation.created', entityId: ORG, role: 2 },
    { type: 'portfolio.created', organisation: ORG, portfolioId: 'north', name: 'Nörth "estate" \\ 1', wholeEstate: ['keyAgreement'] },
    { type: 'key.generated', keyId: 'K1', organisation: ORG, portfolioId: 'north', purpose: 'signing', generation: 1, backend: 'file' },
    { type: 'key.csr', keyId: 'K1' },
    { type: 'certificate.attached', keyId: 'K1', serialNumber: '0123456789ABCDEF0123456789ABCDEF', fingerprint: 'AB'.repeat(32) },
    { type: 'device.assigned', organisation: ORG, device: DEV, portfolioId: 'north' },
    { type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'north', device: DEV, messageCode: 0x0050, counter: (1n << 64n) - 1n },
    { type: 'key.used', operation: 'keyAgreement', keyId: 'K1', portfolioId: 'north', device: DEV },
    { type: 'key.rotated', organisation: ORG, portfolioId: 'north', purpose: 'signing', fromKeyId: 'K1', toKeyId: 'K2', devicesToUpdate: 1 },
    { type: 'device.moved', organisation: ORG, device: DEV, fromPortfolioId: 'north', toPortfolioId: 'south' },
    { type: 'key.retired', keyId: 'K1' },
    { type: 'key.revoked', keyId: 'K2', reason: 'keyCompromise' },
  ];
  return variant === 0 ? events : events.slice(1).reverse();
}

let auditSeedsMade: Promise<AuditSeed[]> | undefined;

/** Two logs, each under its own key (so that no splice of one into the other can verify), written by AuditLog with a fixed clock. */
export function auditSeeds(): Promise<AuditSeed[]> {
  auditSeedsMade ??= (async () => {
    const out: AuditSeed[] = [];
    for (const variant of [0, 1]) {
      const dir = mkdtempSync(join(tmpdir(), 'smki-fuzz-audit-seed-'));
      try {
        const key = deriveAuditKey(new Uint8Array(32).fill(0x41 + variant));
        let t = Date.parse('2025-01-01T00:00:00.000Z');
        const log = await AuditLog.open(dir, { key, now: () => new Date((t += 1000)) });
        for (const e of auditEvents(variant)) await log.append(e, { durable: e.type !== 'key.used' });
        const head = await log.flush();
        await log.close();
        const bytes = new Uint8Array(readFileSync(join(dir, AUDIT_LOG_FILE)));
        // Hints: line starts and ends, and the JSON punctuation between fields.
        const hints: number[] = [];
        bytes.forEach((b, i) => {
          if (b === 0x0a || b === 0x2c || b === 0x3a || b === 0x7b) hints.push(i, i + 1);
        });
        out.push({ name: `audit-log-${variant}`, bytes, hints, key, head });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return out;
  })();
  return auditSeedsMade;
}

const FINDING_CODES = new Set(['ERR_AUDIT_TAMPERED', 'ERR_AUDIT_TRUNCATED']);

function checkFindings(v: AuditVerification, size: number): void {
  for (const f of v.findings) {
    if (!FINDING_CODES.has(f.code)) throw new Error(`finding with code ${f.code}`);
    if (f.line !== undefined && f.line < 1) throw new Error(`finding at line ${f.line}`);
    if (f.offset !== undefined && (f.offset < 0 || f.offset > size)) throw new Error(`finding at offset ${f.offset} of ${size} bytes`);
  }
  if (v.ok !== (v.findings.length === 0 && v.omittedFindings === 0)) throw new Error('ok disagrees with the findings');
}

/** Where the last complete line of `b` ends (just after its newline), or 0. */
function lastNewline(b: Uint8Array): number {
  return b.lastIndexOf(0x0a) + 1;
}

/** verifyAuditLog over a mutated file: never throws; with the head, ok exactly when the file is the one written. */
export const auditVerifyTarget: Target = {
  name: 'keystore.audit.verify',
  about: 'verifyAuditLog: the hash-chained, HMAC-SHA256 (RFC 2104) audit log, line by line, with and without its authenticated head',
  der: false,
  codes: [],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const seeds = await auditSeeds();
    const dir = mkdtempSync(join(tmpdir(), 'smki-fuzz-audit-'));
    const path = join(dir, AUDIT_LOG_FILE);
    return {
      seeds,
      async run(input, seed) {
        const s = seed as AuditSeed;
        writeFileSync(path, input);
        return { withHead: await verifyAuditLog(path, { key: s.key, head: s.head }), withoutHead: await verifyAuditLog(path, { key: s.key }) };
      },
      check(input, seed, r) {
        const s = seed as AuditSeed;
        const { withHead, withoutHead } = r as { withHead: AuditVerification; withoutHead: AuditVerification };
        checkFindings(withHead, input.length);
        checkFindings(withoutHead, input.length);
        const same = equal(input, s.bytes);
        if (withHead.ok !== same) throw new Error(same ? 'the log as written does not verify' : 'a changed log verifies against its head');
        // Without the head only a cut at a record boundary can pass unnoticed.
        if (withoutHead.ok) {
          const cut = input.length;
          if (!(cut === lastNewline(input) && equal(input, s.bytes.subarray(0, cut)))) throw new Error('a changed log verifies without its head, and it is not a cut at a record boundary');
        }
      },
      async close() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** AuditLog.open over a mutated file: refuses it, or (only for a torn final line after the intact log) repairs it. */
export const auditOpenTarget: Target = {
  name: 'keystore.audit.open',
  about: 'AuditLog.open: verification and the crash-recovery rule (a torn final line is removed; anything else refuses)',
  der: false,
  codes: ['ERR_AUDIT_TAMPERED', 'ERR_AUDIT_TRUNCATED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const seeds = await auditSeeds();
    const root = mkdtempSync(join(tmpdir(), 'smki-fuzz-audit-open-'));
    let n = 0;
    return {
      seeds,
      async run(input, seed) {
        const s = seed as AuditSeed;
        const dir = join(root, String(n++ % 8));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, AUDIT_LOG_FILE), input);
        const log = await AuditLog.open(dir, { key: s.key, head: s.head });
        const out = { recovery: log.recovery, head: log.head(), after: new Uint8Array(readFileSync(join(dir, AUDIT_LOG_FILE))) };
        await log.close();
        return out;
      },
      check(input, seed, r) {
        const s = seed as AuditSeed;
        const { recovery, after } = r as { recovery: AuditLog['recovery']; after: Uint8Array };
        const tail = input.subarray(s.bytes.length);
        const torn = input.length >= s.bytes.length && equal(input.subarray(0, s.bytes.length), s.bytes) && !tail.includes(0x0a);
        if (!torn) throw new Error('opened a log that is neither the one written nor it plus a torn line');
        if (recovery.tornBytesRemoved !== tail.length || recovery.recordsBeyondHead !== 0) throw new Error(`recovery ${JSON.stringify(recovery)} for a ${tail.length}-byte torn line`);
        if (!equal(after, s.bytes)) throw new Error('after the repair the file is not the log as written');
      },
      async close() {
        rmSync(root, { recursive: true, force: true });
      },
    };
  },
};

/**
 * parseTrailLine: one record of a database trail, read back from the table. Accepts exactly the
 * canonical form this release writes (re-encoding a parsed line gives the same text) and refuses
 * anything else with a message, never an exception.
 */
export const trailLineTarget: Target = {
  name: 'keystore.trail.line',
  about: 'parseTrailLine: a key-store database trail record (canonical JSON of the audit schema, hash-chained by SHA-256)',
  der: false,
  codes: ['ERR_AUDIT_TAMPERED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const events: AuditEvent[] = [
      ...auditEvents(0),
      { type: 'store.created', storeId: '00112233445566778899AABBCCDDEEFF'.toLowerCase(), database: 'sqlite' },
      { type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'north', device: DEV, messageCode: 0x0050, counter: 7n, operatorId: 'svc-north' },
      { type: 'operator.added', operatorId: 'alice', publicKey: `04${'AB'.repeat(64)}`, grantsSha256: 'CD'.repeat(32) },
      { type: 'audit.anchored', anchor: 'directory' },
    ];
    let prev = '0'.repeat(64);
    const seeds = events.map((e, i) => {
      const line = encodeTrailLine(i + 1, `2025-01-01T00:00:${String(i).padStart(2, '0')}.000Z`, e, prev);
      prev = trailLineHash(line);
      return { name: `trail-${e.type}`, bytes: textBytes(line) };
    });
    return {
      seeds,
      run: (input) => {
        const p = parseTrailLine(Buffer.from(input).toString('latin1'));
        if (!p.ok) throw new SmkiError('ERR_AUDIT_TAMPERED', p.message, {});
        return p;
      },
      check: (input, _seed, r) => {
        const text = Buffer.from(input).toString('latin1');
        const { record, hash } = r as { record: AuditRecord; hash: string };
        const { seq, at, prev: before, mac: _mac, ...event } = record as AuditRecord & { mac?: string };
        if (encodeTrailLine(seq, at, event as unknown as AuditEvent, before) !== text) throw new Error('a line that is not the canonical form of its record was accepted');
        if (hash !== trailLineHash(text)) throw new Error('the hash returned is not the hash of the line');
      },
    };
  },
};

/** @smki/keystore targets. */
export const keystoreTargets: readonly Target[] = [pkcs8Target, pkcs8PemTarget, pkcs8DecryptTarget, fileBackendTarget, auditVerifyTarget, auditOpenTarget, trailLineTarget];
