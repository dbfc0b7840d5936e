// The audit trail: every lifecycle event and every use is appended to a log in
// which each record carries the hash of the one before and an HMAC under a key derived from the
// store's secret; the authenticated head detects truncation; verifyAuditLog detects an edited,
// deleted, inserted, reordered or truncated record and says where; never key material;
// lifecycle events are on disk before the call returns, use records are group-committed.
// Also: "a process killed at any point leaves the store in the old state or the new one" and
// "concurrent use from several async callers is safe".
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isSmkiError, parseEui64, type Eui64 } from '@smki/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AUDIT_LOG_FILE,
  AuditLog,
  deriveAuditKey,
  MAX_AUDIT_LINE_BYTES,
  verifyAuditLog,
  type AuditEvent,
  type AuditHead,
} from '../src/audit.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const KEY = deriveAuditKey(new Uint8Array(32).fill(7));
const OTHER_KEY = deriveAuditKey(new Uint8Array(32).fill(8));
const ORG = parseEui64('90B3D51F30010000');
const DEV = parseEui64('00DB1234567890A0');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-audit-'));
  dirs.push(d);
  return d;
}

const fixedClock = () => {
  let t = Date.parse('2025-01-01T00:00:00.000Z');
  return () => new Date((t += 1000));
};

/** A mix of every event type. */
function sampleEvents(): AuditEvent[] {
  return [
    { type: 'store.opened' },
    { type: 'organisation.created', entityId: ORG, role: 2 },
    { type: 'portfolio.created', organisation: ORG, portfolioId: 'north', name: 'Nörth "estate"', wholeEstate: ['keyAgreement'] },
    { type: 'key.generated', keyId: 'K1', organisation: ORG, portfolioId: 'north', purpose: 'signing', generation: 1, backend: 'file' },
    { type: 'key.csr', keyId: 'K1' },
    { type: 'certificate.attached', keyId: 'K1', serialNumber: '0123456789ABCDEF0123456789ABCDEF', fingerprint: 'AB'.repeat(32) },
    { type: 'device.assigned', organisation: ORG, device: DEV, portfolioId: 'north' },
    { type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'north', device: DEV, messageCode: 0x0050, counter: (1n << 64n) - 1n },
    { type: 'key.used', operation: 'keyAgreement', keyId: 'K1', portfolioId: 'north', device: DEV },
    { type: 'key.rotated', organisation: ORG, portfolioId: 'north', purpose: 'signing', fromKeyId: 'K1', toKeyId: 'K2', devicesToUpdate: 1 },
    { type: 'device.credentials-updated', device: DEV, purpose: 'signing', keyId: 'K2' },
    { type: 'device.moved', organisation: ORG, device: DEV, fromPortfolioId: 'north', toPortfolioId: 'south' },
    { type: 'key.retired', keyId: 'K1' },
    { type: 'key.revoked', keyId: 'K2', reason: 'keyCompromise' },
  ];
}

const used = (i: number): AuditEvent => ({ type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'north', device: DEV, counter: BigInt(i) });

/** A log of the sample events (lifecycle durable, uses not); returns its dir and head. */
async function makeLog(): Promise<{ dir: string; path: string; head: AuditHead; lines: string[] }> {
  const dir = tempDir();
  const log = await AuditLog.open(dir, { key: KEY, now: fixedClock() });
  for (const e of sampleEvents()) await log.append(e, { durable: e.type !== 'key.used' });
  const head = await log.flush();
  await log.close();
  const path = join(dir, AUDIT_LOG_FILE);
  const lines = readFileSync(path, 'utf8').split('\n');
  expect(lines.pop()).toBe('');
  return { dir, path, head, lines };
}

const writeLines = (path: string, lines: string[]) => writeFileSync(path, lines.map((l) => `${l}\n`).join(''));

describe('deriveAuditKey (HKDF-SHA256, RFC 5869, info "smki-keystore audit v1")', () => {
  it('matches HKDF computed by hand (empty salt, one block)', () => {
    const secret = new Uint8Array(32).fill(7);
    const prk = createHmac('sha256', Buffer.alloc(32)).update(secret).digest();
    const okm = createHmac('sha256', prk).update('smki-keystore audit v1').update(Buffer.from([1])).digest();
    expect(Buffer.from(KEY).equals(okm)).toBe(true);
  });
  it('refuses a short secret', () => {
    expect(() => deriveAuditKey(new Uint8Array(16))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('append / verify round trip', () => {
  it('writes one canonical JSON record per line, chained and MACed, and verifies', async () => {
    const { path, head, lines } = await makeLog();
    expect(lines).toHaveLength(sampleEvents().length);
    expect(head.count).toBe(lines.length);
    expect(head.bytes).toBe(statSync(path).size);
    const first = JSON.parse(lines[0]!);
    expect(Object.keys(first)).toEqual(['seq', 'at', 'type', 'prev', 'mac']);
    expect(first).toMatchObject({ seq: 1, at: '2025-01-01T00:00:01.000Z', type: 'store.opened', prev: '0'.repeat(64) });
    // bigint counter as a decimal string; message code as a number
    const use = JSON.parse(lines[7]!);
    expect(use).toMatchObject({ type: 'key.used', messageCode: 80, counter: '18446744073709551615' });
    // prev = SHA-256 of the previous line's bytes
    const { createHash } = await import('node:crypto');
    expect(JSON.parse(lines[1]!).prev).toBe(createHash('sha256').update(lines[0]!).digest('hex').toUpperCase());

    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r).toMatchObject({ ok: true, count: lines.length, findings: [], head });
    const fromLines = await verifyAuditLog(lines, { key: KEY, head });
    expect(fromLines.ok).toBe(true);
  });

  it('reopening continues the chain', async () => {
    const { dir, path, head } = await makeLog();
    const log = await AuditLog.open(dir, { key: KEY, head });
    expect(log.head()).toEqual(head);
    expect(log.recovery).toEqual({ tornBytesRemoved: 0, recordsBeyondHead: 0, lifecycleBeyondHead: [], intentLinesWritten: 0 });
    const rec = await log.append({ type: 'key.csr', keyId: 'K9' }, { durable: true });
    expect(rec.seq).toBe(head.count + 1);
    expect(rec.prev).toBe(head.lastHash);
    const h2 = log.head();
    await log.close();
    expect((await verifyAuditLog(path, { key: KEY, head: h2 })).ok).toBe(true);
  });

  it('a wrong key fails at line 1', async () => {
    const { path, head } = await makeLog();
    const r = await verifyAuditLog(path, { key: OTHER_KEY, head });
    expect(r.ok).toBe(false);
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 1, seq: 1 });
  });
});

describe('never key material: event shapes are checked at run time', () => {
  it('refuses a field its type does not list (privateKey), naming the field but not the value', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY });
    const secret = 'C0FFEE'.repeat(10);
    const bad = { type: 'key.generated', keyId: 'K1', organisation: ORG, portfolioId: 'p', purpose: 'signing', generation: 1, backend: 'file', privateKey: secret };
    const err = await log.append(bad as unknown as AuditEvent, { durable: true }).catch((e: unknown) => e);
    expect(isSmkiError(err, 'ERR_INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toContain('privateKey');
    expect((err as Error).message).not.toContain(secret);
    expect(log.head().count).toBe(0); // nothing written, chain not advanced
    await log.close();
  });

  it.each([
    ['missing field', { type: 'key.csr' }],
    ['unknown type', { type: 'key.exported', keyId: 'K1' }],
    ['non-canonical EUI-64', { type: 'device.assigned', organisation: '90-b3-d5-1f-30-01-00-00', device: DEV, portfolioId: 'p' }],
    ['identifier with a quote', { type: 'key.csr', keyId: 'K"1' }],
    ['identifier over 128 characters', { type: 'key.csr', keyId: 'K'.repeat(129) }],
    ['text over 128 characters', { type: 'key.revoked', keyId: 'K1', reason: 'x'.repeat(129) }],
    ['text with a control character', { type: 'key.revoked', keyId: 'K1', reason: 'a\nb' }],
    ['negative counter', { ...used(0), counter: -1n }],
    ['counter of 2^64', { ...used(0), counter: 1n << 64n }],
    ['counter as a number', { ...used(0), counter: 5 }],
    ['message code over 0xFFFF', { ...used(0), messageCode: 0x10000 }],
    ['unknown purpose', { type: 'device.credentials-updated', device: DEV, purpose: 'encryption', keyId: 'K1' }],
    ['duplicate whole-estate purpose', { type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: ['signing', 'signing'] }],
    ['lower-case serial', { type: 'certificate.attached', keyId: 'K1', serialNumber: 'abcd', fingerprint: 'AB' }],
    ['unknown role', { type: 'organisation.created', entityId: ORG, role: 99 }],
    ['fractional generation', { type: 'key.generated', keyId: 'K1', organisation: ORG, portfolioId: 'p', purpose: 'signing', generation: 1.5, backend: 'file' }],
    ['not an object', null],
  ])('refuses %s with ERR_INVALID_ARGUMENT', async (_name, ev) => {
    const log = await AuditLog.open(tempDir(), { key: KEY });
    await expect(log.append(ev as unknown as AuditEvent, { durable: false })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await log.close();
  });
});

describe('verifyAuditLog finds each kind of tampering, and where', () => {
  it('an edited field: MAC fails at that line only', async () => {
    const { path, head, lines } = await makeLog();
    lines[4] = lines[4]!.replace('"K1"', '"K7"');
    writeLines(path, lines);
    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.ok).toBe(false);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 5, seq: 5 });
    expect(r.findings[0]!.message).toMatch(/MAC/);
  });

  it('an edited seq or prev is caught by the MAC too', async () => {
    const { path, head, lines } = await makeLog();
    lines[2] = lines[2]!.replace('"seq":3', '"seq":33');
    writeLines(path, lines);
    expect((await verifyAuditLog(path, { key: KEY, head })).findings[0]).toMatchObject({ line: 3, seq: 33 });
  });

  it('a non-canonical spelling (white space) of a record is refused', async () => {
    const { path, lines } = await makeLog();
    lines[1] = lines[1]!.replace('{"seq":2', '{ "seq":2');
    writeLines(path, lines);
    expect((await verifyAuditLog(path, { key: KEY })).findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 2 });
  });

  it('a deleted middle record: seq gap at the line after it', async () => {
    const { path, head, lines } = await makeLog();
    lines.splice(5, 1); // seq 6
    writeLines(path, lines);
    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 6, seq: 7 });
    expect(r.findings[0]!.message).toMatch(/expected seq 6, found 7/);
  });

  it('an inserted forged record (no key): MAC fails at the inserted line; the chain goes on after it', async () => {
    const { path, head, lines } = await makeLog();
    const forged = JSON.parse(lines[3]!);
    forged.keyId = 'EVIL';
    lines.splice(4, 0, JSON.stringify(forged));
    writeLines(path, lines);
    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings.filter((x) => x.line !== undefined)).toEqual([expect.objectContaining({ code: 'ERR_AUDIT_TAMPERED', line: 5 })]);
  });

  it('an inserted record MACed with another key, and a repeated genuine record', async () => {
    const { path, lines } = await makeLog();
    lines.splice(6, 0, lines[2]!); // a genuine record again
    writeLines(path, lines);
    const r = await verifyAuditLog(path, { key: KEY });
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 7, seq: 3 });
  });

  it('two records swapped: found at the first of them', async () => {
    const { path, head, lines } = await makeLog();
    [lines[3], lines[4]] = [lines[4]!, lines[3]!];
    writeLines(path, lines);
    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 4, seq: 5 });
    expect(r.findings[1]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 5, seq: 4 });
    expect(r.findings).toHaveLength(2);
  });

  it('records cut off the end: ERR_AUDIT_TRUNCATED with the head; undetectable without it', async () => {
    const { path, head, lines } = await makeLog();
    writeLines(path, lines.slice(0, -2));
    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.ok).toBe(false);
    expect(r.findings).toEqual([expect.objectContaining({ code: 'ERR_AUDIT_TRUNCATED', line: lines.length - 1 })]);
    // Without the authenticated head a cut at a record boundary is a shorter valid log (documented).
    const noHead = await verifyAuditLog(path, { key: KEY });
    expect(noHead).toMatchObject({ ok: true, count: lines.length - 2 });
  });

  it('a log replaced by another valid one (same key) does not match the head', async () => {
    const a = await makeLog();
    const b = await makeLog();
    const r = await verifyAuditLog(b.path, { key: KEY, head: { ...a.head, lastHash: 'AB'.repeat(32) } });
    expect(r.findings).toEqual([expect.objectContaining({ code: 'ERR_AUDIT_TAMPERED', seq: a.head.count })]);
  });

  it('a torn last line (cut mid-record): ERR_AUDIT_TRUNCATED at that line', async () => {
    const { path, head, lines } = await makeLog();
    truncateSync(path, head.bytes - 20);
    const r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TRUNCATED', line: lines.length });
  });

  it('garbage appended: a line that is not a record; an empty line; a line over 64 KiB', async () => {
    const { path, head, lines } = await makeLog();
    appendFileSync(path, 'hello\n');
    let r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings).toEqual([expect.objectContaining({ code: 'ERR_AUDIT_TAMPERED', line: lines.length + 1 })]);

    writeLines(path, [...lines.slice(0, 3), '', ...lines.slice(3)]);
    r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 4, message: 'empty line' });

    writeLines(path, [...lines, 'x'.repeat(MAX_AUDIT_LINE_BYTES + 1), lines[0]!]);
    r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: lines.length + 1 });
    expect(r.findings[0]!.message).toMatch(/over 65536 bytes/);
  });

  it('a missing log file: empty, a finding only if the head says there were records', async () => {
    const dir = tempDir();
    expect(await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY })).toMatchObject({ ok: true, count: 0 });
    const r = await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head: { count: 3, lastHash: 'AB'.repeat(32), bytes: 900 } });
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TRUNCATED' });
  });

  it('streams: a log of 2 MiB+ lines across chunk boundaries verifies', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY });
    for (let i = 0; i < 12_000; i++) await log.append(used(i), { durable: false });
    const head = await log.flush();
    await log.close();
    expect(head.bytes).toBeGreaterThan(2 << 20);
    const r = await verifyAuditLog(log.path, { key: KEY, head }); // records per second: bench/run.ts
    expect(r).toMatchObject({ ok: true, count: 12_000 });
  });
});

describe('AuditLog.open refuses a log that does not verify, and changes nothing', () => {
  it('edited record → ERR_AUDIT_TAMPERED with line and offset', async () => {
    const { dir, path, head, lines } = await makeLog();
    lines[2] = lines[2]!.replace('north', 'south');
    writeLines(path, lines);
    const before = readFileSync(path);
    const err = await AuditLog.open(dir, { key: KEY, head }).catch((e: unknown) => e);
    expect(isSmkiError(err, 'ERR_AUDIT_TAMPERED')).toBe(true);
    expect((err as Error).message).toMatch(/line 3, seq 3/);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('records missing below the head → ERR_AUDIT_TRUNCATED (even with a torn tail, which is then kept)', async () => {
    const { dir, path, head, lines } = await makeLog();
    writeFileSync(path, `${lines.slice(0, -1).join('\n')}\n${lines.at(-1)!.slice(0, 30)}`);
    const before = readFileSync(path);
    await expect(AuditLog.open(dir, { key: KEY, head })).rejects.toMatchObject({ code: 'ERR_AUDIT_TRUNCATED' });
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('an invalid record beyond the head is tampering, not crash debris', async () => {
    const { dir, path, head, lines } = await makeLog();
    appendFileSync(path, `${lines[0]!.replace('store.opened', 'store.opened ')}\n`);
    await expect(AuditLog.open(dir, { key: KEY, head })).rejects.toMatchObject({ code: 'ERR_AUDIT_TAMPERED' });
  });

  it("verifyOnOpen 'tail' checks the head's record and what follows only", async () => {
    const { dir, path, head, lines } = await makeLog();
    const edited = [...lines];
    edited[1] = edited[1]!.replace('"role":2', '"role":3');
    writeLines(path, edited);
    await expect(AuditLog.open(dir, { key: KEY, head })).rejects.toMatchObject({ code: 'ERR_AUDIT_TAMPERED' });
    const log = await AuditLog.open(dir, { key: KEY, head, verifyOnOpen: 'tail' }); // an old edit: for verifyAuditLog
    await log.close();
    writeLines(path, lines.slice(0, -1));
    await expect(AuditLog.open(dir, { key: KEY, head, verifyOnOpen: 'tail' })).rejects.toMatchObject({ code: 'ERR_AUDIT_TRUNCATED' });
    // The last record replaced by a longer genuine one: the line ending at head.bytes is not the head's.
    const longest = lines.slice(0, -1).reduce((a, b) => (b.length > a.length ? b : a));
    expect(longest.length).toBeGreaterThan(lines.at(-1)!.length);
    writeLines(path, [...lines.slice(0, -1), longest]);
    await expect(AuditLog.open(dir, { key: KEY, head, verifyOnOpen: 'tail' })).rejects.toMatchObject({ code: 'ERR_AUDIT_TAMPERED' });
  });

  it('a missing log when the head says it has records → ERR_AUDIT_TRUNCATED, and no file is created', async () => {
    const { dir, path, head } = await makeLog();
    rmSync(path);
    await expect(AuditLog.open(dir, { key: KEY, head })).rejects.toMatchObject({ code: 'ERR_AUDIT_TRUNCATED' });
    expect(() => statSync(path)).toThrow();
  });

  it('bad options → ERR_INVALID_ARGUMENT', async () => {
    const dir = tempDir();
    await expect(AuditLog.open(dir, { key: new Uint8Array(16) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(AuditLog.open(dir, { key: KEY, head: { count: 1, lastHash: 'x', bytes: 1 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(AuditLog.open(dir, { key: KEY, groupCommitMs: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('crash recovery rule (in process)', () => {
  it('a torn final line is removed; complete valid records beyond the head are adopted and reported', async () => {
    const { dir, path, head } = await makeLog();
    // Records written after the head was saved (crash before the metadata write)...
    const log = await AuditLog.open(dir, { key: KEY, head });
    await log.append({ type: 'key.csr', keyId: 'K5' }, { durable: true });
    await log.append(used(1), { durable: true });
    const after = log.head();
    await log.close();
    // ...and half a record (crash during the write).
    const torn = '{"seq":99,"at":"2025';
    appendFileSync(path, torn);
    const re = await AuditLog.open(dir, { key: KEY, head });
    expect(re.recovery.tornBytesRemoved).toBe(torn.length);
    expect(re.recovery.recordsBeyondHead).toBe(2);
    expect(re.recovery.lifecycleBeyondHead).toEqual([expect.objectContaining({ type: 'key.csr', keyId: 'K5', seq: head.count + 1 })]);
    expect(re.head()).toEqual(after);
    expect(statSync(path).size).toBe(after.bytes);
    await re.close();
    expect((await verifyAuditLog(path, { key: KEY, head: after })).ok).toBe(true);
  });
});

describe('group commit: use records reach the disk within the window, in order', () => {
  const recordsOnDisk = (path: string) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { seq: number; type: string });

  it('after the window', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY, groupCommitMs: 40 });
    for (let i = 0; i < 5; i++) await log.append(used(i), { durable: false });
    expect(recordsOnDisk(log.path)).toHaveLength(0);
    expect(log.head().count).toBe(0); // the head counts synced records only
    await new Promise((r) => setTimeout(r, 200));
    expect(recordsOnDisk(log.path).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(log.head().count).toBe(5);
    await log.close();
  });

  it('after flush()', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY, groupCommitMs: 10_000 });
    for (let i = 0; i < 3; i++) await log.append(used(i), { durable: false });
    expect(recordsOnDisk(log.path)).toHaveLength(0);
    const head = await log.flush();
    expect(head.count).toBe(3);
    expect(recordsOnDisk(log.path)).toHaveLength(3);
    await log.close();
  });

  it('a durable append writes the waiting use records first, in call order', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY, groupCommitMs: 10_000 });
    for (let i = 0; i < 3; i++) void log.append(used(i), { durable: false });
    const rec = await log.append({ type: 'key.retired', keyId: 'K1' }, { durable: true });
    expect(rec.seq).toBe(4);
    expect(recordsOnDisk(log.path).map((r) => `${r.seq}:${r.type}`)).toEqual(['1:key.used', '2:key.used', '3:key.used', '4:key.retired']);
    expect(log.head().count).toBe(4);
    await log.close();
  });

  it('close() writes what is waiting and refuses later appends', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY, groupCommitMs: 10_000 });
    void log.append(used(1), { durable: false });
    await log.close();
    expect(recordsOnDisk(log.path)).toHaveLength(1);
    await expect(log.append(used(2), { durable: false })).rejects.toMatchObject({ code: 'ERR_KEYSTORE_CLOSED' });
    await log.close(); // idempotent
  });
});

describe('concurrent async callers get one consistent chain', () => {
  it('500 interleaved durable and non-durable appends', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY, groupCommitMs: 1 });
    const work = Array.from({ length: 500 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i % 7));
      return log.append(i % 10 === 0 ? { type: 'key.csr', keyId: `K${i}` } : used(i), { durable: i % 10 === 0 });
    });
    const recs = await Promise.all(work);
    expect(new Set(recs.map((r) => r.seq)).size).toBe(500);
    const head = await log.flush();
    await log.close();
    expect(head.count).toBe(500);
    const r = await verifyAuditLog(log.path, { key: KEY, head });
    expect(r).toMatchObject({ ok: true, count: 500 });
    // On disk in seq order, and each returned record is the line with its seq.
    const lines = readFileSync(log.path, 'utf8').split('\n').filter(Boolean);
    for (const rec of recs) expect(JSON.parse(lines[rec.seq - 1]!).mac).toBe(rec.mac);
  });
});

describe('a failed write fails closed (ERR_AUDIT_WRITE_FAILED) and leaves the last synced state', () => {
  it.each(['audit:before-write', 'audit:after-write', 'audit:after-fsync'])('I/O error at %s', async (point) => {
    const dir = tempDir();
    let armed = false;
    const log = await AuditLog.open(dir, {
      key: KEY,
      fault: (p) => {
        if (armed && p === point) throw new Error(`injected EIO at ${p}`);
      },
    });
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    const good = log.head();
    armed = true;
    await expect(log.append({ type: 'key.csr', keyId: 'K2' }, { durable: true })).rejects.toMatchObject({ code: 'ERR_AUDIT_WRITE_FAILED' });
    await expect(log.append(used(1), { durable: false })).rejects.toMatchObject({ code: 'ERR_AUDIT_WRITE_FAILED' });
    await expect(log.flush()).rejects.toMatchObject({ code: 'ERR_AUDIT_WRITE_FAILED' });
    expect(log.head()).toEqual(good);
    await log.close();
    expect(statSync(log.path).size).toBe(good.bytes); // truncated back
    const re = await AuditLog.open(dir, { key: KEY, head: good });
    expect(re.head()).toEqual(good);
    await re.close();
  });
});

// ---- a process killed at any point ---------------------------------------------------------

const CHILD = `
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
const { AuditLog } = await import(process.env.AUDIT_MODULE);
const { atomicWriteFile } = await import(process.env.FSUTIL_MODULE);
const [dir, point, nth] = process.argv.slice(2);
let hits = 0;
const fault = (p) => { if (p === point && ++hits === Number(nth)) process.kill(process.pid, 'SIGKILL'); };
const key = Buffer.from(process.env.AUDIT_KEY, 'hex');
const headFile = join(dir, 'head.json');
const head = existsSync(headFile) ? JSON.parse(readFileSync(headFile, 'utf8')) : undefined;
const log = await AuditLog.open(dir, { key, head, fault, groupCommitMs: 2 });
const device = '00DB1234567890A0';
for (let i = 0; i < 5; i++) {
  for (let j = 0; j < 3; j++) await log.append({ type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'north', device, counter: BigInt(i * 10 + j) }, { durable: false });
  if (i % 2 === 1) await new Promise((r) => setTimeout(r, 10)); // let the group-commit timer fire
  const rec = await log.append({ type: 'key.retired', keyId: 'K' + i }, { durable: true });
  writeSync(1, 'acked ' + rec.seq + '\\n');
  atomicWriteFile(headFile, JSON.stringify(log.head()), { fault, faultName: 'meta' }); // the store's metadata
}
await log.close();
writeSync(1, 'done\\n');
`;

function runChild(script: string, dir: string, point: string, nth: number): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir, point, String(nth)], {
      cwd: ROOT,
      env: {
        ...process.env,
        TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'),
        AUDIT_MODULE: pathToFileURL(join(ROOT, 'packages/keystore/src/audit.ts')).href,
        FSUTIL_MODULE: pathToFileURL(join(ROOT, 'packages/keystore/src/internal/fsutil.ts')).href,
        AUDIT_KEY: Buffer.from(KEY).toString('hex'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (_code, signal) => resolveRun({ signal, stdout, stderr }));
  });
}

describe('a process killed at any point leaves a log that reopens under the recovery rule', () => {
  const scriptDir = tempDir();
  const script = join(scriptDir, 'child.mjs');
  writeFileSync(script, CHILD);

  // `torn`: the batch reached the disk only in part (a power cut before the fdatasync). The log
  // writes a batch in one call, so the test makes the torn line: it cuts the log inside its last
  // line after a kill at audit:after-write.
  const cases: [string, number, '' | 'torn'][] = [
    ['audit:before-write', 1, ''],
    ['audit:after-write', 1, 'torn'],
    ['audit:after-write', 4, 'torn'],
    ['audit:after-write', 2, ''],
    ['audit:after-fsync', 1, ''],
    ['audit:after-fsync', 5, ''],
    ['meta:after-fsync', 2, ''],
    ['meta:after-rename', 3, ''],
  ];

  it('the child runs to the end without a fault', async () => {
    const dir = tempDir();
    const r = await runChild(script, dir, 'none', 1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/done\n$/);
    const head = JSON.parse(readFileSync(join(dir, 'head.json'), 'utf8')) as AuditHead;
    expect((await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head })).ok).toBe(true);
  });

  it.each(cases)('killed at %s (occurrence %d) %s', async (point, nth, torn) => {
    const dir = tempDir();
    // An existing log with a saved head (the store's state before this process).
    const seed = await AuditLog.open(dir, { key: KEY });
    await seed.append({ type: 'store.opened' }, { durable: true });
    await seed.append({ type: 'key.csr', keyId: 'K0' }, { durable: true });
    writeFileSync(join(dir, 'head.json'), JSON.stringify(seed.head()));
    await seed.close();

    const r = await runChild(script, dir, point, nth);
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const acked = [...r.stdout.matchAll(/acked (\d+)/g)].map((m) => Number(m[1]));
    const head = JSON.parse(readFileSync(join(dir, 'head.json'), 'utf8')) as AuditHead;
    if (torn) {
      const bytes = readFileSync(join(dir, AUDIT_LOG_FILE));
      const last = bytes.lastIndexOf(0x0a, bytes.length - 2) + 1;
      truncateSync(join(dir, AUDIT_LOG_FILE), last + ((bytes.length - last) >> 1));
    }
    const sizeBefore = statSync(join(dir, AUDIT_LOG_FILE)).size;

    const log = await AuditLog.open(dir, { key: KEY, head });
    const { recovery } = log;
    const now = log.head();
    await log.close();
    // Old state or new: every acknowledged lifecycle record is there; the head only moved forward.
    expect(now.count).toBeGreaterThanOrEqual(Math.max(head.count, ...acked));
    expect(recovery.recordsBeyondHead).toBe(now.count - head.count);
    expect(now.bytes).toBe(sizeBefore - recovery.tornBytesRemoved);
    if (torn) expect(recovery.tornBytesRemoved).toBeGreaterThan(0);
    else expect(recovery.tornBytesRemoved).toBe(0);
    if (point === 'audit:after-fsync' || point === 'meta:after-fsync') expect(recovery.recordsBeyondHead).toBeGreaterThan(0);
    const v = await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head: now });
    expect(v.ok, JSON.stringify(v.findings)).toBe(true);
    // And the store can go on appending.
    const again = await AuditLog.open(dir, { key: KEY, head: now });
    await again.append({ type: 'store.opened', recoveredRecords: recovery.recordsBeyondHead, tornBytesRemoved: recovery.tornBytesRemoved }, { durable: true });
    await again.close();
  });
});

describe('group commit', () => {
  it('10,000 non-durable appends are all on disk after one flush, in order (rates: bench/run.ts)', async () => {
    const log = await AuditLog.open(tempDir(), { key: KEY });
    const events = Array.from({ length: 10_000 }, (_, i) => ({ ...used(i), messageCode: 0x0050 }) as AuditEvent);
    for (const e of events) await log.append(e, { durable: false });
    const head = await log.flush();
    await log.close();
    expect(head.count).toBe(10_000);
    const r = await verifyAuditLog(log.path, { key: KEY, head });
    expect(r).toMatchObject({ ok: true, count: 10_000 });
  });
});

// Type-level: an event type checks its fields (compile-time part of "never key material").
// @ts-expect-error privateKey is not a field of any audit event
const _typed: AuditEvent = { type: 'key.csr', keyId: 'K1', privateKey: 'x' };
void _typed;
void (DEV satisfies Eui64);
