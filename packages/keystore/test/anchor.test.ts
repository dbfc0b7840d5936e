// The audit anchor (docs/keystore-estate.md §3): checkpoints of the audit head, signed with ECDSA
// P-256/SHA-256 (FIPS 186-5 §6.4, r ‖ s as IEEE P1363), written forward only to a directory
// (one append-only JSON-lines file per store) or a PostgreSQL table, by a periodic checkpointer;
// a trail that ends before the latest checkpoint, or differs from it, is refused. Real keys, real
// files, a real PostgreSQL server, real processes.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  closeSync,
  constants as fsc,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it, vi } from 'vitest';
import { createKeySigner, isSmkiError, type Signer, type SmkiErrorCode } from '@smki/core';
import {
  AUDIT_CHECKPOINT_CONTEXT,
  AuditCheckpointer,
  auditCheckpointMessage,
  checkTrailAgainstCheckpoint,
  DirectoryAnchor,
  MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES,
  PostgresAnchor,
  signAuditCheckpoint,
  verifyAuditCheckpoint,
  type AuditAnchor,
  type AuditCheckpoint,
  type AuditTrailHead,
  type SignedAuditCheckpoint,
} from '../src/anchor.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';

const { pg, dir: work } = postgresForThisFile('smki-anchor-');

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_anchor-child.ts');
const ZERO = '0'.repeat(64);
const keyPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KEY_PEM = keyPair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const signer = createKeySigner(keyPair.privateKey);
const otherSigner = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const STORE = randomBytes(16).toString('hex');
const OTHER = randomBytes(16).toString('hex');
const AT = '2025-06-30T12:00:00.000Z';

/** The hash of record `seq` of trail `variant` (the same in every process: see _anchor-child.ts). */
const hashOf = (seq: number, variant = ''): string =>
  seq === 0 ? ZERO : createHash('sha256').update(`record ${seq}${variant}`).digest('hex').toUpperCase();
const checkpoint = (seq: number, o: Partial<AuditCheckpoint> = {}): AuditCheckpoint => ({ v: 1, storeId: STORE, seq, hash: hashOf(seq), at: AT, ...o });
const signed = (seq: number, o: Partial<AuditCheckpoint> = {}, by: Signer = signer): Promise<SignedAuditCheckpoint> => signAuditCheckpoint(checkpoint(seq, o), by);
/** A checkpoint line as an anchor writes it, with a signature that is only well-formed (the anchor does not verify). */
const rawLine = (seq: number, storeId = STORE, variant = ''): string =>
  `${JSON.stringify({ v: 1, storeId, seq, hash: hashOf(seq, variant), at: AT, signature: 'AB'.repeat(64) })}\n`;
const lineOf = (c: SignedAuditCheckpoint): string =>
  `${JSON.stringify({ v: c.v, storeId: c.storeId, seq: c.seq, hash: c.hash, at: c.at, signature: c.signature })}\n`;

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<SmkiErrorCode | string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'resolved';
  } catch (e) {
    return isSmkiError(e) ? e.code : `raw ${String(e)}`;
  }
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

let n = 0;
const newDir = (): string => join(work, `anchor-${++n}`);
const openPg = (schema = `anchor_${++n}`, extra: object = {}): Promise<PostgresAnchor> =>
  PostgresAnchor.open({ ...connectionOf(pg), schema, connectTimeoutMs: 3000, ...extra });

// ---------------------------------------------------------------------------------------------

describe('the checkpoint and its signature', () => {
  it('signs the context line and the fields in a fixed order, and verifies after a JSON round trip', async () => {
    const cp = await signed(42);
    expect(Object.keys(cp)).toEqual(['v', 'storeId', 'seq', 'hash', 'at', 'signature']);
    expect(cp.signature).toMatch(/^[0-9A-F]{128}$/);
    expect(Object.isFrozen(cp)).toBe(true);
    const message = Buffer.from(auditCheckpointMessage(checkpoint(42))).toString('utf8');
    expect(AUDIT_CHECKPOINT_CONTEXT).toBe('smki-keystore audit checkpoint v1\n');
    expect(message).toBe(`smki-keystore audit checkpoint v1\n{"v":1,"storeId":"${STORE}","seq":42,"hash":"${hashOf(42)}","at":"${AT}"}`);
    // The message does not depend on the order the caller wrote the fields in.
    const shuffled = { at: AT, hash: hashOf(42), seq: 42, storeId: STORE, v: 1 as const };
    expect(auditCheckpointMessage(shuffled)).toEqual(auditCheckpointMessage(checkpoint(42)));
    // An independent verifier: node's ECDSA over exactly those bytes.
    const { verify } = await import('node:crypto');
    expect(verify('sha256', Buffer.from(message), { key: keyPair.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(cp.signature, 'hex'))).toBe(true);
    const back = verifyAuditCheckpoint(JSON.parse(JSON.stringify(cp)), signer.publicKey, STORE);
    expect(back).toEqual(cp);
    expect(Object.isFrozen(back)).toBe(true);
    const empty = await signed(0, { hash: ZERO });
    expect(verifyAuditCheckpoint({ ...empty }, signer.publicKey, STORE)).toEqual(empty);
    // The largest seq there is.
    const max = await signed(Number.MAX_SAFE_INTEGER);
    expect(verifyAuditCheckpoint({ ...max }, signer.publicKey, STORE).seq).toBe(Number.MAX_SAFE_INTEGER);
  });

  const flip = (hex: string, i: number): string => hex.slice(0, i) + (hex[i] === '0' ? '1' : '0') + hex.slice(i + 1);
  it.each<[string, (c: SignedAuditCheckpoint) => Record<string, unknown>]>([
    ['v', (c) => ({ ...c, v: 2 })],
    ['seq + 1', (c) => ({ ...c, seq: c.seq + 1 })],
    ['seq - 1', (c) => ({ ...c, seq: c.seq - 1 })],
    ['hash', (c) => ({ ...c, hash: flip(c.hash, 10) })],
    ['hash of another trail', (c) => ({ ...c, hash: hashOf(c.seq, 'b') })],
    ['at (1 ms later)', (c) => ({ ...c, at: '2025-06-30T12:00:00.001Z' })],
    ['signature r', (c) => ({ ...c, signature: flip(c.signature, 3) })],
    ['signature s', (c) => ({ ...c, signature: flip(c.signature, 127) })],
    ['signature r and s swapped', (c) => ({ ...c, signature: c.signature.slice(64) + c.signature.slice(0, 64) })],
  ])('refuses a checkpoint whose %s was changed (ERR_AUDIT_CHECKPOINT_INVALID)', async (_name, tamper) => {
    const cp = await signed(42);
    expect(await codeOf(() => verifyAuditCheckpoint(tamper(cp), signer.publicKey, STORE))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
  });

  it('refuses another store id: as the expected store, and as the store it claims (the signature covers it)', async () => {
    const cp = await signed(42);
    expect(await codeOf(() => verifyAuditCheckpoint({ ...cp }, signer.publicKey, OTHER))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(() => verifyAuditCheckpoint({ ...cp, storeId: OTHER }, signer.publicKey, OTHER))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    const theirs = await signed(42, { storeId: OTHER });
    expect(await codeOf(() => verifyAuditCheckpoint({ ...theirs }, signer.publicKey, STORE))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(verifyAuditCheckpoint({ ...theirs }, signer.publicKey, OTHER).storeId).toBe(OTHER);
  });

  it('refuses a checkpoint signed by another key (ERR_AUDIT_CHECKPOINT_INVALID)', async () => {
    const cp = await signed(42, {}, otherSigner);
    expect(await codeOf(() => verifyAuditCheckpoint({ ...cp }, signer.publicKey, STORE))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(verifyAuditCheckpoint({ ...cp }, otherSigner.publicKey, STORE)).toEqual(cp);
  });

  class Shaped {
    constructor(c: SignedAuditCheckpoint) {
      Object.assign(this, c);
    }
  }
  it.each<[string, (c: SignedAuditCheckpoint) => unknown]>([
    ['null', () => null],
    ['a string', (c) => JSON.stringify(c)],
    ['an array', (c) => [c]],
    ['an object of another class', (c) => new Shaped(c)],
    ['a missing signature', ({ signature: _s, ...rest }) => rest],
    ['a missing at', ({ at: _a, ...rest }) => rest],
    ['an extra field', (c) => ({ ...c, note: 'x' })],
    ['v as a string', (c) => ({ ...c, v: '1' })],
    ['seq as a string', (c) => ({ ...c, seq: String(c.seq) })],
    ['a negative seq', (c) => ({ ...c, seq: -1 })],
    ['a fractional seq', (c) => ({ ...c, seq: 1.5 })],
    ['a seq past 2^53 - 1', (c) => ({ ...c, seq: 2 ** 53 })],
    ['seq NaN', (c) => ({ ...c, seq: Number.NaN })],
    ['a lower-case hash', (c) => ({ ...c, hash: c.hash.toLowerCase() })],
    ['a hash of 63 digits', (c) => ({ ...c, hash: c.hash.slice(1) })],
    ['seq 0 with a hash that is not zeros', (c) => ({ ...c, seq: 0 })],
    ['seq 1 with the zero hash', (c) => ({ ...c, seq: 1, hash: ZERO })],
    ['an upper-case store id', (c) => ({ ...c, storeId: c.storeId.toUpperCase() })],
    ['a store id of 30 digits', (c) => ({ ...c, storeId: c.storeId.slice(2) })],
    ['at without milliseconds', (c) => ({ ...c, at: '2025-06-30T12:00:00Z' })],
    ['at with an offset', (c) => ({ ...c, at: '2025-06-30T12:00:00.000+01:00' })],
    ['at in month 13', (c) => ({ ...c, at: '2025-13-30T12:00:00.000Z' })],
    ['at on 31 June', (c) => ({ ...c, at: '2025-06-31T12:00:00.000Z' })],
    ['at as a number', (c) => ({ ...c, at: Date.parse(c.at) })],
    ['at past the year 9999', (c) => ({ ...c, at: '+010000-01-01T00:00:00.000Z' })],
    ['a lower-case signature', (c) => ({ ...c, signature: c.signature.toLowerCase() })],
    ['a signature of 126 digits', (c) => ({ ...c, signature: c.signature.slice(2) })],
    ['a DER signature', (c) => ({ ...c, signature: `3044${c.signature}` })],
  ])('refuses %s (ERR_AUDIT_CHECKPOINT_INVALID)', async (_name, make) => {
    const cp = await signed(42);
    expect(await codeOf(() => verifyAuditCheckpoint(make(cp), signer.publicKey, STORE))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
  });

  it.each<[string, Record<string, unknown>]>([
    ['an upper-case store id', { storeId: STORE.toUpperCase() }],
    ['a store id of 34 digits', { storeId: `${STORE}00` }],
    ['v 2', { v: 2 }],
    ['a negative seq', { seq: -1 }],
    ['a fractional seq', { seq: 0.5 }],
    ['a lower-case hash', { hash: hashOf(1).toLowerCase() }],
    ['seq 1 with the zero hash', { hash: ZERO }],
    ['at in month 13', { at: '2025-13-30T12:00:00.000Z' }],
    ['at on 30 February', { at: '2025-02-30T12:00:00.000Z' }],
    ['at at hour 24', { at: '2025-06-30T24:00:00.000Z' }],
    ['at with a time zone name', { at: '2025-06-30T12:00:00.000 UTC' }],
    ['a signature field', { signature: 'AB'.repeat(64) }],
  ])('will not sign or frame a checkpoint with %s (ERR_AUDIT_CHECKPOINT_INVALID)', async (_name, o) => {
    const bad = { ...checkpoint(1), ...o } as AuditCheckpoint;
    expect(await codeOf(signAuditCheckpoint(bad, signer))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(() => auditCheckpointMessage(bad))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
  });

  it('refuses a public key that is not a P-256 point, or a malformed store id, as arguments (ERR_INVALID_ARGUMENT)', async () => {
    const cp = await signed(42);
    const pk = signer.publicKey;
    const offCurve = new Uint8Array(pk);
    offCurve[64] = offCurve[64]! ^ 1;
    for (const key of [pk.subarray(1), Uint8Array.of(0x02, ...pk.subarray(1, 33)), offCurve, 'key' as unknown as Uint8Array]) {
      expect(await codeOf(() => verifyAuditCheckpoint({ ...cp }, key, STORE))).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(await codeOf(() => verifyAuditCheckpoint({ ...cp }, pk, STORE.toUpperCase()))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('refuses to sign a malformed checkpoint, and a signer that is not one or whose signature does not verify', async () => {
    expect(await codeOf(signAuditCheckpoint({ ...checkpoint(1), seq: -1 }, signer))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(signAuditCheckpoint({ ...(await signed(1)) }, signer))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(() => auditCheckpointMessage({ ...checkpoint(1), at: 'now' }))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    const liar: Signer = { publicKey: signer.publicKey, sign: (m) => otherSigner.sign(m) };
    expect(await codeOf(signAuditCheckpoint(checkpoint(1), liar))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    const short: Signer = { publicKey: signer.publicKey, sign: async (m) => (await signer.sign(m)).subarray(1) };
    expect(await codeOf(signAuditCheckpoint(checkpoint(1), short))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(signAuditCheckpoint(checkpoint(1), { publicKey: new Uint8Array(65), sign: signer.sign }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(signAuditCheckpoint(checkpoint(1), { publicKey: signer.publicKey } as Signer))).toBe('ERR_INVALID_ARGUMENT');
  });
});

// ---------------------------------------------------------------------------------------------

describe('checkTrailAgainstCheckpoint', () => {
  const trail = (seq: number, variant = '', missing?: number): { head: AuditTrailHead; hashAt(s: number): Promise<string | undefined> } => ({
    head: { seq, hash: hashOf(seq, variant) },
    hashAt: async (s) => (s < 1 || s > seq || s === missing ? undefined : hashOf(s, variant)),
  });

  it('accepts a trail that reaches the checkpoint with the same record there', async () => {
    await checkTrailAgainstCheckpoint(trail(10), checkpoint(10));
    await checkTrailAgainstCheckpoint(trail(500), checkpoint(10));
    await checkTrailAgainstCheckpoint(trail(500), await signed(10));
    await checkTrailAgainstCheckpoint(trail(0), checkpoint(0));
    await checkTrailAgainstCheckpoint(trail(3, 'b'), checkpoint(0));
  });

  it('refuses a trail that ends before the checkpoint (ERR_AUDIT_TRUNCATED)', async () => {
    expect(await codeOf(checkTrailAgainstCheckpoint(trail(9), checkpoint(10)))).toBe('ERR_AUDIT_TRUNCATED');
    expect(await codeOf(checkTrailAgainstCheckpoint(trail(0), checkpoint(1)))).toBe('ERR_AUDIT_TRUNCATED');
  });

  it('refuses a trail whose record at the checkpoint is another one or missing (ERR_AUDIT_TAMPERED)', async () => {
    // an older copy that has since grown another history: longer than the checkpoint, another record there
    expect(await codeOf(checkTrailAgainstCheckpoint(trail(20, 'b'), checkpoint(10)))).toBe('ERR_AUDIT_TAMPERED');
    // the same length, another last record
    expect(await codeOf(checkTrailAgainstCheckpoint(trail(10, 'b'), checkpoint(10)))).toBe('ERR_AUDIT_TAMPERED');
    expect(await codeOf(checkTrailAgainstCheckpoint(trail(20, '', 10), checkpoint(10)))).toBe('ERR_AUDIT_TAMPERED');
  });

  it('refuses a malformed checkpoint or trail head', async () => {
    expect(await codeOf(checkTrailAgainstCheckpoint(trail(10), { ...checkpoint(10), seq: -1 }))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(checkTrailAgainstCheckpoint({ ...trail(10), head: { seq: 10, hash: 'x' } }, checkpoint(1)))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(checkTrailAgainstCheckpoint({ head: trail(10).head } as never, checkpoint(1)))).toBe('ERR_INVALID_ARGUMENT');
  });
});

// ---------------------------------------------------------------------------------------------

type AnchorKind = { name: 'directory' | 'postgres'; open: () => Promise<AuditAnchor> };
const ANCHORS: AnchorKind[] = [
  { name: 'directory', open: () => DirectoryAnchor.open({ directory: newDir() }) },
  { name: 'postgres', open: () => openPg() },
];

describe.each(ANCHORS)('the $name anchor', ({ name, open }) => {
  it('keeps the highest checkpoint, going forward only, per store', async () => {
    const a = await open();
    expect(a.kind).toBe(name);
    expect(await a.latest(STORE)).toBeUndefined();
    const five = await signed(5);
    expect(await a.write(five)).toBe(true);
    expect(await a.latest(STORE)).toEqual(five);
    // The same head again (another process of the store, another time): nothing stored.
    expect(await a.write(await signed(5, { at: '2025-06-30T12:00:01.000Z' }))).toBe(false);
    expect(await a.write(await signed(3))).toBe(false);
    expect(await a.write(await signed(0, { hash: ZERO }))).toBe(false);
    expect(await a.latest(STORE)).toEqual(five);
    const seven = await signed(7);
    expect(await a.write(seven)).toBe(true);
    expect(await a.write(await signed(6))).toBe(false);
    expect(await a.latest(STORE)).toEqual(seven);
    // What comes back verifies under the audit key.
    expect(verifyAuditCheckpoint({ ...(await a.latest(STORE)) }, signer.publicKey, STORE)).toEqual(seven);
    // Another store's checkpoints are its own.
    expect(await a.latest(OTHER)).toBeUndefined();
    expect(await a.write(await signed(1, { storeId: OTHER }))).toBe(true);
    expect((await a.latest(OTHER))?.seq).toBe(1);
    expect(await a.latest(STORE)).toEqual(seven);
    await a.close();
  });

  it('refuses a fork: the seq of a stored checkpoint with another hash (ERR_AUDIT_CHECKPOINT_INVALID)', async () => {
    const a = await open();
    for (const s of [2, 4, 6, 8]) expect(await a.write(await signed(s))).toBe(true);
    // at the latest
    expect(await codeOf(a.write(await signed(8, { hash: hashOf(8, 'b') })))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    // below it
    expect(await codeOf(a.write(await signed(4, { hash: hashOf(4, 'b') })))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(a.write(await signed(2, { hash: hashOf(2, 'b') })))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    // a seq the anchor never held is no fork, only behind
    expect(await a.write(await signed(5, { hash: hashOf(5, 'b') }))).toBe(false);
    expect((await a.latest(STORE))?.seq).toBe(8);
    // the same hash at another time is no fork either
    expect(await a.write(await signed(4, { at: '2026-01-01T00:00:00.000Z' }))).toBe(false);
    await a.close();
  });

  it('refuses a malformed checkpoint or store id, and every call after close', async () => {
    const a = await open();
    const cp = await signed(1);
    expect(await codeOf(a.write({ ...cp, signature: cp.signature.toLowerCase() }))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(a.write({ ...cp, extra: 1 } as SignedAuditCheckpoint))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(a.write(checkpoint(1) as SignedAuditCheckpoint))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    expect(await codeOf(a.latest(STORE.toUpperCase()))).toBe('ERR_INVALID_ARGUMENT');
    expect(await a.latest(STORE)).toBeUndefined();
    await a.close();
    await a.close();
    expect(await codeOf(a.write(cp))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
  });
});

// ---------------------------------------------------------------------------------------------

describe('DirectoryAnchor', () => {
  it('creates the directory (0700) and one append-only file per store (0600), one canonical line per checkpoint', async () => {
    const dir = join(newDir(), 'a', 'b');
    const a = await DirectoryAnchor.open({ directory: dir });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, '..')).mode & 0o777).toBe(0o700);
    const one = await signed(1);
    const two = await signed(2);
    await a.write(one);
    await a.write(two);
    await a.write(await signed(1, { storeId: OTHER }));
    const file = join(dir, `audit-checkpoints-${STORE}.jsonl`);
    expect(a.fileFor(STORE)).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(lineOf(one) + lineOf(two));
    expect(readFileSync(join(dir, `audit-checkpoints-${OTHER}.jsonl`), 'utf8').split('\n')).toHaveLength(2);
    // no lock left behind
    expect(existsSync(join(dir, `audit-checkpoints-${STORE}.lock`))).toBe(false);
    await a.close();
  });

  it('ignores a torn final line, and starts the next line on a line of its own', async () => {
    const a = await DirectoryAnchor.open({ directory: newDir() });
    const three = await signed(3);
    await a.write(three);
    const file = a.fileFor(STORE);
    // a write cut short: the start of a checkpoint with a higher seq, no newline
    const torn = rawLine(9).slice(0, 150);
    appendFileSync(file, torn);
    expect(await a.latest(STORE)).toEqual(three);
    // a whole line with no newline is torn too: never acknowledged
    writeFileSync(file, lineOf(three) + rawLine(9).trimEnd());
    expect(await a.latest(STORE)).toEqual(three);
    const four = await signed(4);
    expect(await a.write(four)).toBe(true);
    // the torn bytes are closed off as damage, never read as a checkpoint, even a whole one
    expect(readFileSync(file, 'utf8')).toBe(`${lineOf(three)}${rawLine(9).trimEnd()} (torn)\n${lineOf(four)}`);
    expect(await a.latest(STORE)).toEqual(four);
    appendFileSync(file, torn);
    expect(await a.write(await signed(5))).toBe(true);
    expect(readFileSync(file, 'utf8').endsWith(`${torn} (torn)\n${lineOf(await a.latest(STORE) as SignedAuditCheckpoint)}`)).toBe(true);
    expect((await a.latest(STORE))?.seq).toBe(5);
    await a.close();
  });

  it('skips lines that are not exactly a checkpoint of the store', async () => {
    const a = await DirectoryAnchor.open({ directory: newDir() });
    const two = await signed(2);
    await a.write(await signed(1));
    await a.write(two);
    const file = a.fileFor(STORE);
    const spaced = JSON.stringify(JSON.parse(rawLine(50)), null, 1).replace(/\n/g, ' ');
    const reordered = JSON.stringify({ storeId: STORE, v: 1, seq: 51, hash: hashOf(51), at: AT, signature: 'AB'.repeat(64) });
    const overlong = `${rawLine(52).trimEnd().slice(0, -1)},"pad":"${'x'.repeat(2000)}"}`;
    // well-formed checkpoints in another spelling of the same JSON: not the canonical line
    const exponent = rawLine(55).trimEnd().replace('"seq":55,', '"seq":5.5e1,');
    const swapped = JSON.stringify({ v: 1, storeId: STORE, seq: 56, at: AT, hash: hashOf(56), signature: 'AB'.repeat(64) });
    const trailing = `${rawLine(57).trimEnd()} `;
    const escaped = rawLine(58).trimEnd().replace(`"hash":"${hashOf(58).slice(0, 1)}`, `"hash":"\\u00${hashOf(58).charCodeAt(0).toString(16)}`);
    expect(JSON.parse(escaped).hash).toBe(hashOf(58));
    appendFileSync(
      file,
      [
        'not json at all',
        '{"v":1,',
        '',
        spaced,
        reordered,
        overlong,
        rawLine(53, OTHER).trimEnd(), // another store's line in this store's file
        exponent,
        swapped,
        trailing,
        escaped,
        JSON.stringify({ ...JSON.parse(rawLine(54)), seq: -54 }),
        '\u0000\u0001\u00ff',
        'x'.repeat(200_000), // longer than a chunk
        '[]',
        '',
      ].join('\n'),
    );
    expect(await a.latest(STORE)).toEqual(two);
    expect(await a.write(await signed(2))).toBe(false);
    // a higher one is written after the damage, and found
    const three = await signed(3);
    expect(await a.write(three)).toBe(true);
    expect(await a.latest(STORE)).toEqual(three);
    // the fork rule looks past the damage too
    expect(await codeOf(a.write(await signed(1, { hash: hashOf(1, 'b') })))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    await a.close();
  });

  it('takes the highest seq among the last lines, should two writers ever have put them out of order', async () => {
    const a = await DirectoryAnchor.open({ directory: newDir() });
    const file = a.fileFor(STORE);
    writeFileSync(file, rawLine(10) + rawLine(12) + rawLine(11));
    expect((await a.latest(STORE))?.seq).toBe(12);
    expect(await a.write(await signed(12))).toBe(false);
    expect(await a.write(await signed(11))).toBe(false);
    expect(await a.write(await signed(13))).toBe(true);
    await a.close();
  });

  it('finds the latest of 200,000 lines from the end of the file, and the fork rule bisects it', async () => {
    const a = await DirectoryAnchor.open({ directory: newDir() });
    const file = a.fileFor(STORE);
    const parts: string[] = [];
    for (let s = 1; s <= 200_000; s++) {
      if (s % 997 === 0) parts.push('garbage line\n');
      if (s === 123_457) parts.push(`${'#'.repeat(300_000)}\n`); // one long damaged line mid-file
      if (s % 5 !== 0) parts.push(rawLine(s)); // every fifth seq was never checkpointed
    }
    writeFileSync(file, parts.join(''));
    const last = await signed(200_001);
    appendFileSync(file, lineOf(last));
    expect(statSync(file).size).toBeGreaterThan(50_000_000);
    expect(await a.latest(STORE)).toEqual(last);
    expect(verifyAuditCheckpoint({ ...(await a.latest(STORE)) }, signer.publicKey, STORE)).toEqual(last);
    for (const s of [1, 2, 996, 998, 99_999, 123_456, 123_458, 199_999]) {
      expect(await codeOf(a.write(await signed(s, { hash: hashOf(s, 'b') }))), `fork at ${s}`).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
      expect(await a.write(await signed(s)), `same at ${s}`).toBe(false);
    }
    // seqs never checkpointed: behind, no fork
    for (const s of [5, 100_000, 123_455, 200_000]) expect(await a.write(await signed(s, { hash: hashOf(s, 'b') }))).toBe(false);
    const next = await signed(200_002);
    expect(await a.write(next)).toBe(true);
    expect(await a.latest(STORE)).toEqual(next);
    await a.close();
    rmSync(file);
  }, 120_000);

  it('reads only the end of a file that starts with a 1 TiB hole; refuses a file whose last 16 MiB hold no checkpoint', async () => {
    const a = await DirectoryAnchor.open({ directory: newDir() });
    const file = a.fileFor(STORE);
    writeFileSync(file, '');
    truncateSync(file, 2 ** 40); // sparse: reading it whole would take hours
    const nine = await signed(9);
    appendFileSync(file, rawLine(8) + lineOf(nine));
    expect(await a.latest(STORE)).toEqual(nine);
    expect(await a.write(await signed(10))).toBe(true);
    expect((await a.latest(STORE))?.seq).toBe(10);
    // the hole and nothing else: fail closed, quickly
    writeFileSync(file, '');
    truncateSync(file, 2 ** 40);
    expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(await codeOf(a.write(await signed(11)))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    // a damaged end within the limit is only damage: no checkpoint
    writeFileSync(file, 'x'.repeat(MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES - 1));
    expect(await a.latest(STORE)).toBeUndefined();
    // a checkpoint followed by more damage than the limit
    writeFileSync(file, `${rawLine(8)}${'y\n'.repeat(MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES / 2 + 10)}`);
    expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    rmSync(file);
    await a.close();
  }, 60_000);

  it('is written by two processes at once: every line whole and in order, the latest the highest', async () => {
    const dir = newDir();
    const start = (): { ready: Promise<unknown>; go(): void; result: Promise<number[]>; stderr(): string } => {
      const p = spawn(process.execPath, ['--import', 'tsx', CHILD, 'append', dir, STORE, '300'], {
        cwd: ROOT,
        env: { ...process.env, SMKI_ANCHOR_KEY: KEY_PEM },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
      return {
        ready: lines.next(),
        go: () => p.stdin.write('go\n'),
        result: lines.next().then((r) => JSON.parse(r.value as string) as number[]),
        stderr: () => err,
      };
    };
    // each, 300 times, offers the checkpoint above the latest: they race for every seq
    const one = start();
    const two = start();
    await Promise.all([one.ready, two.ready]);
    one.go();
    two.go();
    const [wroteOne, wroteTwo] = await Promise.all([one.result, two.result]).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${one.stderr()}\n${two.stderr()}`);
    });
    expect(wroteOne.length).toBeGreaterThan(0);
    expect(wroteTwo.length).toBeGreaterThan(0);
    const a = await DirectoryAnchor.open({ directory: dir });
    const text = readFileSync(a.fileFor(STORE), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const seqs = text
      .slice(0, -1)
      .split('\n')
      .map((l) => {
        const c = verifyAuditCheckpoint(JSON.parse(l), signer.publicKey, STORE);
        expect(lineOf(c)).toBe(`${l}\n`);
        return c.seq;
      });
    // strictly increasing: no process wrote below what another had written
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    expect(seqs).toEqual([...wroteOne, ...wroteTwo].sort((x, y) => x - y));
    // no seq skipped: every write was of the latest + 1, so 1, 2, 3, …
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs.length).toBeGreaterThanOrEqual(300);
    expect((await a.latest(STORE))?.seq).toBe(seqs.length);
    await a.close();
  }, 120_000);

  it('takes over a lock left by a process that died, or one a minute old; waits for a live one, then fails closed', async () => {
    const dir = newDir();
    const a = await DirectoryAnchor.open({ directory: dir, lockTimeoutMs: 200 });
    const lock = join(dir, `audit-checkpoints-${STORE}.lock`);
    // a process that has exited
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const host = (await import('node:os')).hostname();
    writeFileSync(lock, `${dead}@${host}@0123456789abcdef`);
    expect(await a.write(await signed(1))).toBe(true);
    expect(existsSync(lock)).toBe(false);
    // a live holder (this process, another anchor): refused after lockTimeoutMs
    writeFileSync(lock, `${process.pid}@${host}@0123456789abcdef`);
    const err = await errorOf(a.write(await signed(2)));
    expect(isSmkiError(err) && err.code).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(isSmkiError(err) && err.context).toEqual({ detail: 'locked' });
    // a holder on another host that has not let go for over a minute
    writeFileSync(lock, `1@another-host@0123456789abcdef`);
    expect(await codeOf(a.write(await signed(2)))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(lock, old, old);
    expect(await a.write(await signed(2))).toBe(true);
    // a live holder that lets go in time
    writeFileSync(lock, `${process.pid}@${host}@0123456789abcdef`);
    const b = await DirectoryAnchor.open({ directory: dir, lockTimeoutMs: 5000 });
    const pending = b.write(await signed(3));
    await new Promise((r) => setTimeout(r, 50));
    rmSync(lock);
    expect(await pending).toBe(true);
    await a.close();
    await b.close();
    expect(await codeOf(DirectoryAnchor.open({ directory: dir, lockTimeoutMs: 0 }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(DirectoryAnchor.open({ directory: '' }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('fails closed with ERR_AUDIT_ANCHOR_UNAVAILABLE (and the cause) when the directory or file cannot be used', async () => {
    // a directory that cannot be made: a path through a regular file
    const file = join(newDir(), 'plain');
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'x');
    const e1 = await errorOf(DirectoryAnchor.open({ directory: join(file, 'anchor') }));
    expect(isSmkiError(e1) && e1.code).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(isSmkiError(e1) && (e1.cause as NodeJS.ErrnoException).code).toBe('ENOTDIR');
    expect(await codeOf(DirectoryAnchor.open({ directory: file }))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    // the store's file is not a file
    const a = await DirectoryAnchor.open({ directory: newDir() });
    mkdirSync(a.fileFor(STORE));
    expect(await codeOf(a.write(await signed(1)))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    // a FIFO in its place: refused, not waited on
    const fifo = await DirectoryAnchor.open({ directory: newDir() });
    execFileSync('mkfifo', [fifo.fileFor(STORE)]);
    const reader = openSync(fifo.fileFor(STORE), fsc.O_RDONLY | fsc.O_NONBLOCK);
    try {
      expect(await codeOf(fifo.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
      expect(await codeOf(fifo.write(await signed(1)))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
      // and nothing went into it
      expect(readSync(reader, Buffer.alloc(1000))).toBe(0);
    } finally {
      closeSync(reader);
    }
    await fifo.close();
    // the directory removed under it
    const gone = await DirectoryAnchor.open({ directory: newDir() });
    rmSync(gone.directory, { recursive: true });
    const e2 = await errorOf(gone.write(await signed(1)));
    expect(isSmkiError(e2) && e2.code).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(isSmkiError(e2) && (e2.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    // (no file is no checkpoint; no directory, say an unmounted volume, is no anchor)
    expect(await codeOf(gone.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    await a.close();
    await gone.close();
  });

  it('syncs each line before write resolves, and the directory when it made the file (system calls, POSIX fsync)', () => {
    // One write call per line, then fdatasync of the file, then (first write only) fsync of the
    // directory, all before the write's promise resolves (the child prints after it resolves).
    const base = mkdtempSync(join(tmpdir(), 'smki-anchor-strace-'));
    try {
      const dir = join(base, 'anchor');
      const trace = join(base, 'trace');
      const r = spawnSync('strace', ['-f', '-y', '-qq', '-s', '64', '-e', 'trace=write,fdatasync,fsync', '-o', trace, process.execPath, '--import', 'tsx', CHILD, 'sync', dir, STORE], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, SMKI_ANCHOR_KEY: KEY_PEM },
      });
      expect(r.stdout).toBe('written 1\nwritten 2\n');
      const lines = readFileSync(trace, 'utf8').split('\n');
      const file = `${dir}/audit-checkpoints-${STORE}.jsonl>`;
      /** Index of the line where each matching call starts, and where it returned. */
      const calls = (name: string, fd: string): { start: number; end: number }[] => {
        const out: { start: number; end: number }[] = [];
        lines.forEach((l, i) => {
          const m = /^(\d+)\s+(\w+)\((\d+<[^>]*>)/.exec(l);
          if (!m || m[2] !== name || !`${m[3]}`.endsWith(fd)) return;
          let end = i;
          if (l.includes('<unfinished ...>')) end = lines.findIndex((k, j) => j > i && k.startsWith(`${m[1]} <... ${name} resumed>`));
          out.push({ start: i, end });
        });
        return out;
      };
      const writes = calls('write', file);
      const syncs = calls('fdatasync', file);
      const dirSyncs = calls('fsync', `${dir}>`);
      const marks = [1, 2].map((k) => lines.findIndex((l) => /^\d+\s+write\(1</.test(l) && l.includes(`"written ${k}\\n"`)));
      expect(writes).toHaveLength(2);
      expect(syncs).toHaveLength(2);
      expect(marks.every((m) => m > 0)).toBe(true);
      for (const k of [0, 1]) {
        const after = k === 0 ? -1 : marks[0]!;
        expect(writes[k]!.start).toBeGreaterThan(after);
        expect(syncs[k]!.start).toBeGreaterThan(writes[k]!.end);
        expect(syncs[k]!.end).toBeLessThan(marks[k]!);
      }
      // the directory, once: after the first line is synced, before the first write resolves
      const created = dirSyncs.filter((c) => c.start > syncs[0]!.end && c.end < marks[0]!);
      expect(created.length).toBeGreaterThanOrEqual(1);
      expect(dirSyncs.filter((c) => c.start > marks[0]!)).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 60_000);

  it('fails closed for a user who may not write the directory or read the file', async () => {
    const base = mkdtempSync(join(tmpdir(), 'smki-anchor-perm-'));
    try {
      chmodSync(base, 0o755);
      mkdirSync(join(base, 'ro'), { mode: 0o555 });
      chmodSync(join(base, 'ro'), 0o555);
      mkdirSync(join(base, 'rw'));
      chmodSync(join(base, 'rw'), 0o777);
      const mine = await DirectoryAnchor.open({ directory: join(base, 'rw') });
      await mine.write(await signed(1));
      chmodSync(mine.fileFor(STORE), 0o000);
      await mine.close();
      const root = process.getuid?.() === 0;
      const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, 'refused', base, STORE], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, SMKI_ANCHOR_KEY: KEY_PEM, HOME: base },
        ...(root ? { uid: 65534, gid: 65534 } : {}),
      });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({ open: 'ERR_AUDIT_ANCHOR_UNAVAILABLE', write: 'ERR_AUDIT_ANCHOR_UNAVAILABLE', latest: 'ERR_AUDIT_ANCHOR_UNAVAILABLE' });
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

describe('PostgresAnchor', () => {
  it('keeps its table in the schema smki_anchor by default, one row per checkpoint', async () => {
    const a = await PostgresAnchor.open({ ...connectionOf(pg) });
    const cp = await signed(3);
    expect(await a.write(cp)).toBe(true);
    expect(pg.psql(`SELECT store_id, seq, hash, at, signature FROM smki_anchor.audit_checkpoints WHERE store_id = '${STORE}'`).trim()).toBe(
      [STORE, 3, cp.hash, cp.at, cp.signature].join('|'),
    );
    await a.close();
    const again = await PostgresAnchor.open({ ...connectionOf(pg) });
    expect(await again.latest(STORE)).toEqual(cp);
    await again.close();
  });

  it('takes the password only from the environment or a password file', async () => {
    expect(await codeOf(openPg(undefined, { password: 'x' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(openPg('Not A Schema'))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('refuses a row edited into something that is not a checkpoint (ERR_AUDIT_CHECKPOINT_INVALID)', async () => {
    const schema = `anchor_${++n}`;
    const a = await openPg(schema);
    await a.write(await signed(3));
    pg.psql(`UPDATE ${schema}.audit_checkpoints SET hash = 'nonsense'`);
    expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    pg.psql(`UPDATE ${schema}.audit_checkpoints SET hash = '${hashOf(3)}', seq = 9007199254740993`);
    expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_CHECKPOINT_INVALID');
    await a.close();
  });

  it('applies the forward-only rule across two connections racing, in commit order', async () => {
    const schema = `anchor_${++n}`;
    const [a, b] = [await openPg(schema), await openPg(schema)];
    const ups = await Promise.all(Array.from({ length: 300 }, (_, i) => signed(i + 1)));
    for (let r = 0; r < 150; r++) {
      // b offers the lower seq, a the higher, at the same moment
      const [hi, lo] = await Promise.all([a.write(ups[2 * r + 1]!), b.write(ups[2 * r]!)]);
      expect(hi).toBe(true);
      expect(typeof lo).toBe('boolean');
    }
    // Ordered by the transaction that inserted them (xmin: assigned at the insert, after the
    // per-store lock), the seqs only go up.
    const rows = pg
      .psql(`SELECT seq FROM ${schema}.audit_checkpoints WHERE store_id = '${STORE}' ORDER BY xmin::text::bigint`)
      .trim()
      .split('\n')
      .map(Number);
    for (let i = 1; i < rows.length; i++) expect(rows[i]).toBeGreaterThan(rows[i - 1]!);
    expect((await b.latest(STORE))?.seq).toBe(300);
    await a.close();
    await b.close();
  }, 60_000);

  it('lets exactly one of two racing forks in (ERR_AUDIT_CHECKPOINT_INVALID for the other)', async () => {
    const schema = `anchor_${++n}`;
    const [a, b] = [await openPg(schema), await openPg(schema)];
    for (let s = 1; s <= 60; s++) {
      const [x, y] = await Promise.all([signed(s), signed(s, { hash: hashOf(s, 'b') })]);
      const outcomes = (await Promise.allSettled([a.write(x), b.write(y)])).map((o) =>
        o.status === 'fulfilled' ? o.value : isSmkiError(o.reason) ? o.reason.code : String(o.reason),
      );
      expect(outcomes.sort((p, q) => String(p).localeCompare(String(q)))).toEqual(['ERR_AUDIT_CHECKPOINT_INVALID', true]);
    }
    await a.close();
    await b.close();
  }, 60_000);

  it('fails closed while the server is down (ERR_AUDIT_ANCHOR_UNAVAILABLE, the store error as the cause), and resumes', async () => {
    const a = await openPg();
    expect(await a.write(await signed(1))).toBe(true);
    pg.stop('fast');
    try {
      const e = await errorOf(a.write(await signed(2)));
      expect(isSmkiError(e) && e.code).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
      expect(isSmkiError(e) && isSmkiError(e.cause) && e.cause.code).toBe('ERR_STORE_UNAVAILABLE');
      expect(await codeOf(a.latest(STORE))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
      expect(await codeOf(openPg())).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    } finally {
      pg.start();
    }
    expect(await a.write(await signed(2))).toBe(true);
    expect((await a.latest(STORE))?.seq).toBe(2);
    await a.close();
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

/** A real directory anchor that counts writes and can be switched off. */
function flaky(inner: AuditAnchor): AuditAnchor & { down: boolean; writes: number } {
  const f = {
    kind: inner.kind,
    down: false,
    writes: 0,
    async write(cp: SignedAuditCheckpoint): Promise<boolean> {
      f.writes++;
      if (f.down) throw new AnchorDown();
      return inner.write(cp);
    },
    latest: (s: string) => inner.latest(s),
    close: () => inner.close(),
  };
  return f;
}
/** What an anchor that is down throws. */
class AnchorDown extends Error {
  readonly code = 'EIO';
}

describe('AuditCheckpointer', () => {
  const setup = async (o: { intervalMs?: number; now?: () => Date } = {}) => {
    const anchor = flaky(await DirectoryAnchor.open({ directory: newDir() }));
    const state = { head: { seq: 0, hash: ZERO } as AuditTrailHead, reads: 0 };
    const cpr = new AuditCheckpointer({
      storeId: STORE,
      signer,
      anchor,
      head: async () => {
        state.reads++;
        return state.head;
      },
      ...o,
    });
    const move = (seq: number, variant = ''): void => {
      state.head = { seq, hash: hashOf(seq, variant) };
    };
    return { anchor, state, cpr, move };
  };

  it.each<[string, Record<string, unknown>]>([
    ['a malformed store id', { storeId: 'nope' }],
    ['a signer without a P-256 key', { signer: { publicKey: new Uint8Array(65), sign: signer.sign } }],
    ['no anchor', { anchor: {} }],
    ['no head', { head: 1 }],
    ['an interval under 100 ms', { intervalMs: 99 }],
    ['an interval over an hour', { intervalMs: 3_600_001 }],
    ['a fractional interval', { intervalMs: 150.5 }],
    ['a clock that is not a function', { now: 'now' }],
  ])('refuses %s (ERR_INVALID_ARGUMENT)', async (_name, o) => {
    const anchor = await DirectoryAnchor.open({ directory: newDir() });
    const options = { storeId: STORE, signer, anchor, head: async () => ({ seq: 0, hash: ZERO }), ...o };
    expect(await codeOf(() => new AuditCheckpointer(options as never))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('writes when the head has moved, and only then', async () => {
    const { anchor, cpr, move } = await setup();
    move(5);
    const five = await cpr.checkpointNow();
    expect(five && verifyAuditCheckpoint({ ...five }, signer.publicKey, STORE)).toMatchObject({ seq: 5, hash: hashOf(5) });
    expect(cpr.lastCheckpoint).toEqual(five);
    expect(await anchor.latest(STORE)).toEqual(five);
    expect(await cpr.checkpointNow()).toBeUndefined();
    expect(anchor.writes).toBe(1);
    move(6);
    expect((await cpr.checkpointNow())?.seq).toBe(6);
    expect(anchor.writes).toBe(2);
    // Another process of the store got there first: nothing to write, and no error.
    await anchor.write(await signed(9));
    move(8);
    expect(await cpr.checkpointNow()).toBeUndefined();
    expect(cpr.lastCheckpoint?.seq).toBe(6);
    expect(cpr.lastError).toBeUndefined();
    expect((await anchor.latest(STORE))?.seq).toBe(9);
  });

  it('refuses a head that went back before its last checkpoint, or changed under it', async () => {
    const { cpr, move } = await setup();
    move(5);
    await cpr.checkpointNow();
    move(4);
    expect(await codeOf(cpr.checkpointNow())).toBe('ERR_AUDIT_TRUNCATED');
    expect(cpr.lastError?.code).toBe('ERR_AUDIT_TRUNCATED');
    move(5, 'b');
    expect(await codeOf(cpr.checkpointNow())).toBe('ERR_AUDIT_TAMPERED');
  });

  it('passes on a head it cannot read or that is malformed', async () => {
    const anchor = await DirectoryAnchor.open({ directory: newDir() });
    let head: () => Promise<AuditTrailHead> = async () => {
      throw new Error('database gone');
    };
    const cpr = new AuditCheckpointer({ storeId: STORE, signer, anchor, head: () => head() });
    const e = await errorOf(cpr.checkpointNow());
    expect(isSmkiError(e) && e.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(isSmkiError(e) && (e.cause as Error).message).toBe('database gone');
    head = async () => ({ seq: 1, hash: ZERO });
    expect(await codeOf(cpr.checkpointNow())).toBe('ERR_INVALID_ARGUMENT');
    head = async () => ({ seq: 1, hash: hashOf(1) });
    expect((await cpr.checkpointNow())?.seq).toBe(1);
    expect(cpr.lastError).toBeUndefined();
    // a passing failure is forgotten by the next attempt that succeeds, even one with nothing to write
    head = async () => {
      throw new Error('database gone again');
    };
    await codeOf(cpr.checkpointNow());
    expect(cpr.lastError?.code).toBe('ERR_STORE_UNAVAILABLE');
    head = async () => ({ seq: 1, hash: hashOf(1) });
    expect(await cpr.checkpointNow()).toBeUndefined();
    expect(cpr.lastError).toBeUndefined();
    // a clock past the year 9999 cannot be written as a checkpoint's time
    const late = new AuditCheckpointer({ storeId: STORE, signer, anchor, head: async () => ({ seq: 2, hash: hashOf(2) }), now: () => new Date(253402300800000) });
    expect(await codeOf(late.checkpointNow())).toBe('ERR_INVALID_ARGUMENT');
  });

  it('checkpoints on its timer when the head has moved, not otherwise, and never rejects unhandled', async () => {
    const { anchor, state, cpr, move } = await setup({ intervalMs: 100 });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      move(3);
      cpr.start();
      cpr.start(); // idempotent: one timer
      await vi.waitFor(async () => expect((await anchor.latest(STORE))?.seq).toBe(3), { timeout: 10_000, interval: 20 });
      expect(anchor.writes).toBe(1);
      // three more ticks with the head still: no write
      const reads = state.reads;
      await vi.waitFor(() => expect(state.reads).toBeGreaterThanOrEqual(reads + 3), { timeout: 10_000, interval: 20 });
      expect(anchor.writes).toBe(1);
      move(4);
      await vi.waitFor(async () => expect((await anchor.latest(STORE))?.seq).toBe(4), { timeout: 10_000, interval: 20 });
      expect(anchor.writes).toBe(2);
      // the anchor goes down: each tick fails, into lastError only
      anchor.down = true;
      move(5);
      await vi.waitFor(() => expect(anchor.writes).toBeGreaterThanOrEqual(4), { timeout: 10_000, interval: 20 });
      expect(cpr.lastError?.code).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
      anchor.down = false;
      await vi.waitFor(async () => expect((await anchor.latest(STORE))?.seq).toBe(5), { timeout: 10_000, interval: 20 });
      expect(cpr.lastError).toBeUndefined();
      await cpr.close();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('lets no checkpoints pile up behind a slow anchor', async () => {
    const inner = await DirectoryAnchor.open({ directory: newDir() });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let writes = 0;
    const slow: AuditAnchor = { kind: 'directory', write: async (cp) => (writes++, await gate, inner.write(cp)), latest: (s) => inner.latest(s), close: () => inner.close() };
    let reads = 0;
    const cpr = new AuditCheckpointer({ storeId: STORE, signer, anchor: slow, intervalMs: 100, head: async () => (reads++, { seq: 1, hash: hashOf(1) }) });
    cpr.start();
    await vi.waitFor(() => expect(writes).toBe(1), { timeout: 10_000, interval: 20 });
    // several intervals pass while the first write hangs
    await new Promise((r) => setTimeout(r, 450));
    expect(reads).toBe(1);
    release();
    await vi.waitFor(() => expect(cpr.lastCheckpoint?.seq).toBe(1), { timeout: 10_000, interval: 5 });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    // no backlog of ticks run one after another once the anchor answers
    expect(reads).toBeLessThanOrEqual(2);
    await cpr.close();
  });

  it('writes a final checkpoint at close, stops its timer, and is closed after (idempotent)', async () => {
    const { anchor, state, cpr, move } = await setup({ intervalMs: 100 });
    move(2);
    cpr.start();
    cpr.start(); // one timer, which close stops
    await vi.waitFor(async () => expect((await anchor.latest(STORE))?.seq).toBe(2), { timeout: 10_000, interval: 20 });
    move(3);
    const closing = cpr.close();
    expect(cpr.close()).toBe(closing);
    await closing;
    expect((await anchor.latest(STORE))?.seq).toBe(3);
    expect(cpr.lastCheckpoint?.seq).toBe(3);
    const reads = state.reads;
    move(4);
    await new Promise((r) => setTimeout(r, 350));
    expect(state.reads).toBe(reads);
    expect((await anchor.latest(STORE))?.seq).toBe(3);
    expect(await codeOf(cpr.checkpointNow())).toBe('ERR_KEYSTORE_CLOSED');
    expect(await codeOf(() => cpr.start())).toBe('ERR_KEYSTORE_CLOSED');
    await cpr.close();
  });

  it('rejects close when the final checkpoint cannot be written', async () => {
    const { anchor, cpr, move } = await setup();
    move(2);
    anchor.down = true;
    expect(await codeOf(cpr.close())).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(await codeOf(cpr.close())).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
  });

  it('is unhealthy once the head has moved and no checkpoint has reached the anchor for longer than the lag, and recovers', async () => {
    let t = Date.parse(AT);
    const { anchor, cpr, move } = await setup({ intervalMs: 1000, now: () => new Date(t) });
    cpr.assertHealthy();
    move(1);
    await cpr.checkpointNow();
    anchor.down = true;
    // the head is still: nothing to write, healthy however long
    t += 60_000;
    expect(await cpr.checkpointNow()).toBeUndefined();
    cpr.assertHealthy();
    // the head moves, the anchor is down
    move(2);
    expect(await codeOf(cpr.checkpointNow())).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    cpr.assertHealthy(); // default lag: 2 × 1000 + 5000 ms
    t += 7000;
    expect(await codeOf(cpr.checkpointNow())).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    cpr.assertHealthy();
    t += 1;
    const e = await errorOf(Promise.resolve().then(() => cpr.assertHealthy()));
    expect(isSmkiError(e) && e.code).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(isSmkiError(e) && e.cause).toBe(cpr.lastError);
    expect(await codeOf(() => cpr.assertHealthy(10_000))).toBe('resolved');
    expect(await codeOf(() => cpr.assertHealthy(0))).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    expect(await codeOf(() => cpr.assertHealthy(-1))).toBe('ERR_INVALID_ARGUMENT');
    // the anchor is back: one success, healthy again
    anchor.down = false;
    expect((await cpr.checkpointNow())?.seq).toBe(2);
    cpr.assertHealthy(0);
    // the lag counts from when the moved head was first seen, not from the last success
    t += 3_600_000;
    move(3);
    anchor.down = true;
    await codeOf(cpr.checkpointNow());
    cpr.assertHealthy();
    t += 7001;
    expect(await codeOf(() => cpr.assertHealthy())).toBe('ERR_AUDIT_ANCHOR_UNAVAILABLE');
    anchor.down = false;
    await cpr.close();
    cpr.assertHealthy(0);
  });

  it('does not keep the process alive (its timer is unref’d)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, 'unref', newDir(), STORE], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, SMKI_ANCHOR_KEY: KEY_PEM },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('started\n');
    expect(r.status).toBe(0);
  }, 60_000);
});
