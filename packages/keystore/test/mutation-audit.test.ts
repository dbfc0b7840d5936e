// The audit trail's rules one case each, written against the mutants the mutation-testing run found
// alive: every field kind at its boundaries, records that carry a valid MAC but break the format
// (only a holder of the key could write them), the chain and head checks, line limits across the
// reader's chunks, the intent, the open options, group commit and staged appends.
// RFC 2104 (HMAC-SHA256 over the canonical bytes), FIPS 180-4 (SHA-256 chain), RFC 8259 (JSON).
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isSmkiError, parseEui64, type SmkiError } from '@smki/core';
import { AUDIT_LOG_FILE, AuditLog, deriveAuditKey, MAX_AUDIT_LINE_BYTES, verifyAuditLog, type AuditEvent, type AuditHead } from '../src/audit.js';

const KEY = deriveAuditKey(new Uint8Array(32).fill(7));
const DEV = parseEui64('00DB1234567890A0');
const ORG = parseEui64('90B3D51F30010000');
const Z = '0'.repeat(64);
const AT = '2025-01-01T00:00:00.000Z';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-audit-m-'));
  dirs.push(d);
  return d;
}

const sha = (line: string) => createHash('sha256').update(line).digest('hex').toUpperCase();
/** A line with a valid MAC over `prefix` (the record without its mac and closing brace): what only a holder of the key can write. */
const forge = (prefix: string, key: Uint8Array = KEY) => `${prefix},"mac":"${createHmac('sha256', key).update(prefix).update('}').digest('hex').toUpperCase()}"}`;
const csr = (seq: number, prev: string, keyId = 'K1') => forge(`{"seq":${seq},"at":"${AT}","type":"key.csr","keyId":"${keyId}","prev":"${prev}"`);
/** A valid chain of n key.csr records. */
function chain(n: number): string[] {
  const out: string[] = [];
  let prev = Z;
  for (let i = 1; i <= n; i++) {
    const l = csr(i, prev, `K${i}`);
    out.push(l);
    prev = sha(l);
  }
  return out;
}
const headOf = (lines: string[]): AuditHead => ({ count: lines.length, lastHash: lines.length ? sha(lines.at(-1)!) : Z, bytes: lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) });
type UseEvent = Extract<AuditEvent, { type: 'key.used'; operation: 'sign' | 'keyAgreement' }>;
const used = (i: number): UseEvent => ({ type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'north', device: DEV, counter: BigInt(i) });

async function refusal(p: Promise<unknown>, code = 'ERR_INVALID_ARGUMENT'): Promise<SmkiError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!isSmkiError(e)) throw new Error(`expected ${code}, got ${String(e)}`);
  expect(e.code).toBe(code);
  return e;
}

async function freshLog(options: Partial<Parameters<typeof AuditLog.open>[1]> = {}) {
  const dir = tempDir();
  return { dir, log: await AuditLog.open(dir, { key: KEY, ...options }) };
}

describe('every field kind at its boundaries (append)', () => {
  const accepted: [string, AuditEvent][] = [
    ['a one-character id', { type: 'key.csr', keyId: 'K' }],
    ['a 128-character id of every allowed character', { type: 'key.csr', keyId: 'Az09._:@/+-'.padEnd(128, 'x') }],
    ['a 128-digit hex serial', { type: 'certificate.attached', keyId: 'K', serialNumber: 'A'.repeat(128), fingerprint: '0' }],
    ['128 characters of text, with the printable neighbours of the control ranges', { type: 'key.revoked', keyId: 'K', reason: ' ~\u00a0\u2027\u202a'.padEnd(128, 'é') }],
    ['every purpose once', { type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: '', wholeEstate: ['signing', 'keyAgreement', 'prepaymentKeyAgreement', 'xmlSigning'] }],
    ['no purpose', { type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: [] }],
    ['a count of 0', { type: 'key.rotated', organisation: ORG, portfolioId: 'p', purpose: 'signing', toKeyId: 'K', devicesToUpdate: 0 }],
    ['the largest safe count', { type: 'store.opened', recoveredRecords: Number.MAX_SAFE_INTEGER }],
    ['message codes 0 and 0xFFFF, counter 0', { ...used(0), messageCode: 0 }],
    ['message code 0xFFFF', { ...used(0), messageCode: 0xffff, counter: 0n }],
    ['key agreement', { ...used(1), operation: 'keyAgreement' }],
    ['an XML signature: no device, a 128-character request id', { type: 'key.used', operation: 'xml-sign', keyId: 'K', portfolioId: 'p', requestId: 'Az09._:@/+-'.padEnd(128, 'x') }],
    ['an optional field given as undefined', { type: 'key.revoked', keyId: 'K', reason: undefined } as unknown as AuditEvent],
  ];
  it.each(accepted)('accepts %s, and the record reads back as written', async (_name, event) => {
    const { log } = await freshLog();
    const rec = await log.append(event, { durable: true });
    const head = log.head();
    await log.close();
    const lines = readFileSync(log.path, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(await verifyAuditLog(log.path, { key: KEY, head })).toMatchObject({ ok: true, count: 1 });
    const onDisk = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toEqual({ ...onDisk, ...('counter' in onDisk ? { counter: BigInt(onDisk.counter as string) } : {}) });
  });

  const refused: [string, unknown, string][] = [
    ['an empty id', { type: 'key.csr', keyId: '' }, 'key.csr.keyId'],
    ['a 129-character id', { type: 'key.csr', keyId: 'K'.repeat(129) }, 'key.csr.keyId'],
    ['an id with a space inside', { type: 'key.csr', keyId: 'K 1' }, 'key.csr.keyId'],
    ['an id with a space before', { type: 'key.csr', keyId: ' K1' }, 'key.csr.keyId'],
    ['an id with a space after', { type: 'key.csr', keyId: 'K1 ' }, 'key.csr.keyId'],
    ['an id that is not a string', { type: 'key.csr', keyId: 7 }, 'key.csr.keyId'],
    ['an EUI-64 of 15 digits', { type: 'organisation.created', entityId: ORG.slice(1), role: 2 }, 'organisation.created.entityId'],
    ['an EUI-64 of 17 digits', { type: 'organisation.created', entityId: `${ORG}0`, role: 2 }, 'organisation.created.entityId'],
    ['an EUI-64 with a junk prefix', { type: 'organisation.created', entityId: `x${ORG}`, role: 2 }, 'organisation.created.entityId'],
    ['an EUI-64 that is not a string', { type: 'organisation.created', entityId: 1, role: 2 }, 'organisation.created.entityId'],
    ['an empty serial', { type: 'certificate.attached', keyId: 'K', serialNumber: '', fingerprint: 'AB' }, 'certificate.attached.serialNumber'],
    ['a 129-digit serial', { type: 'certificate.attached', keyId: 'K', serialNumber: 'A'.repeat(129), fingerprint: 'AB' }, 'certificate.attached.serialNumber'],
    ['a serial with junk before', { type: 'certificate.attached', keyId: 'K', serialNumber: 'xAB', fingerprint: 'AB' }, 'certificate.attached.serialNumber'],
    ['a serial with junk after', { type: 'certificate.attached', keyId: 'K', serialNumber: 'ABx', fingerprint: 'AB' }, 'certificate.attached.serialNumber'],
    ['a serial that is not a string', { type: 'certificate.attached', keyId: 'K', serialNumber: 171, fingerprint: 'AB' }, 'certificate.attached.serialNumber'],
    ['text with U+0000', { type: 'key.revoked', keyId: 'K', reason: 'a\u0000' }, 'key.revoked.reason'],
    ['text with U+001F', { type: 'key.revoked', keyId: 'K', reason: 'a\u001f' }, 'key.revoked.reason'],
    ['text with U+007F', { type: 'key.revoked', keyId: 'K', reason: 'a\u007f' }, 'key.revoked.reason'],
    ['text with U+009F', { type: 'key.revoked', keyId: 'K', reason: 'a\u009f' }, 'key.revoked.reason'],
    ['text with U+2028', { type: 'key.revoked', keyId: 'K', reason: 'a\u2028' }, 'key.revoked.reason'],
    ['text with U+2029', { type: 'key.revoked', keyId: 'K', reason: 'a\u2029' }, 'key.revoked.reason'],
    ['text that is not a string', { type: 'key.revoked', keyId: 'K', reason: 5 }, 'key.revoked.reason'],
    ['a purpose twice', { type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: ['signing', 'keyAgreement', 'prepaymentKeyAgreement', 'signing'] }, 'portfolio.created.wholeEstate'],
    ['purposes as a string', { type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: 'signing' }, 'portfolio.created.wholeEstate'],
    ['an unknown purpose in the list', { type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: ['signing', 'x'] }, 'portfolio.created.wholeEstate'],
    ['a negative count', { type: 'store.opened', recoveredRecords: -1 }, 'store.opened.recoveredRecords'],
    ['a count as a string', { type: 'store.opened', tornBytesRemoved: '1' }, 'store.opened.tornBytesRemoved'],
    ['a count over 2^53', { type: 'store.opened', reappliedRecords: 2 ** 53 }, 'store.opened.reappliedRecords'],
    ['a message code of -1', { ...used(0), messageCode: -1 }, 'key.used.messageCode'],
    ['a fractional message code', { ...used(0), messageCode: 1.5 }, 'key.used.messageCode'],
    ['a message code as a string', { ...used(0), messageCode: '1' }, 'key.used.messageCode'],
    ['an unknown operation', { ...used(0), operation: 'verify' }, 'key.used.operation'],
    ['an unknown purpose', { type: 'device.credentials-updated', device: DEV, purpose: 'x', keyId: 'K' }, 'device.credentials-updated.purpose'],
    ['a role that is not a number', { type: 'organisation.created', entityId: ORG, role: '2' }, 'organisation.created.role'],
    ['a missing field', { type: 'key.csr' }, 'key.csr.keyId'],
    ['a field the type does not list', { type: 'key.csr', keyId: 'K', privateKey: 'C0FFEE' }, 'key.csr.privateKey'],
    ['an unknown type', { type: 'key.exported', keyId: 'K' }, 'key.exported'],
    ['a type from Object.prototype', { type: 'toString' }, 'toString'],
    ['a type that is not a string', { type: 5 }, 'number'],
    ['an array', [], 'object'],
    ['a string', 'key.csr', 'string'],
    ['null', null, 'object'],
  ];
  it.each(refused)('refuses %s, naming where (%s), and writes nothing', async (_name, event, detail) => {
    const { log } = await freshLog();
    const e = await refusal(log.append(event as AuditEvent, { durable: true }));
    expect(e.context).toEqual({ detail });
    const rec = await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    expect(rec.seq).toBe(1);
    await log.close();
  });

  it('a record does not alias the caller’s event or its lists', async () => {
    const { log } = await freshLog();
    const wholeEstate: ('signing' | 'keyAgreement')[] = ['signing'];
    const rec = await log.append({ type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate }, { durable: false });
    wholeEstate.push('keyAgreement');
    expect(rec).toMatchObject({ wholeEstate: ['signing'] });
    await log.close();
  });

  it('a clock outside years 0000..9999 is refused by append and by stage; nothing is written', async () => {
    let at = new Date('+010000-01-01T00:00:00.000Z');
    const { log } = await freshLog({ now: () => at });
    expect((await refusal(log.append({ type: 'key.csr', keyId: 'K' }, { durable: true }))).context).toEqual({ detail: '+010000-01-01T00:00:00.000Z' });
    await refusal(log.stage([{ type: 'key.csr', keyId: 'K' }]));
    at = new Date('-000001-01-01T00:00:00.000Z');
    await refusal(log.append({ type: 'key.csr', keyId: 'K' }, { durable: true }));
    at = new Date(AT);
    expect((await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true })).seq).toBe(1);
    await log.close();
  });
});

describe('keys and heads are checked', () => {
  it('an audit key of 31 or 33 bytes, or not bytes, is refused; a secret of 31 bytes too', async () => {
    for (const key of [new Uint8Array(31), new Uint8Array(33), 'k'.repeat(32)]) {
      await refusal(verifyAuditLog([], { key: key as Uint8Array }));
      await refusal(AuditLog.open(tempDir(), { key: key as Uint8Array }));
    }
    expect(() => deriveAuditKey(new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => deriveAuditKey('x'.repeat(32) as unknown as Uint8Array)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  const lines = chain(2);
  const good = headOf(lines);
  const heads: [string, unknown][] = [
    ['not an object', 5],
    ['null', null],
    ['a negative count', { ...good, count: -1 }],
    ['a fractional count', { ...good, count: 1.5 }],
    ['a lower-case hash', { ...good, lastHash: good.lastHash.toLowerCase() }],
    ['a short hash', { ...good, lastHash: good.lastHash.slice(1) }],
    ['a long hash', { ...good, lastHash: `${good.lastHash}0` }],
    ['a hash that is not a string', { ...good, lastHash: 1 }],
    ['negative bytes', { ...good, bytes: -1 }],
    ['fractional bytes', { ...good, bytes: 1.5 }],
    ['records but no bytes', { ...good, bytes: 0 }],
    ['bytes but no records', { count: 0, lastHash: Z, bytes: 10 }],
    ['no records but a hash', { count: 0, lastHash: good.lastHash, bytes: 0 }],
  ];
  it.each(heads)('a head with %s is refused', async (_name, head) => {
    await refusal(verifyAuditLog(lines, { key: KEY, head: head as AuditHead }));
  });

  it('the empty head and a good head are accepted', async () => {
    expect(await verifyAuditLog([], { key: KEY, head: { count: 0, lastHash: Z, bytes: 0 } })).toMatchObject({ ok: true, count: 0 });
    expect(await verifyAuditLog(lines, { key: KEY, head: good })).toEqual({ ok: true, count: 2, head: good, findings: [], omittedFindings: 0 });
  });
});

describe('a record with a valid MAC is still refused unless it is a canonical record', () => {
  it('the helper writes records that verify (so each case below breaks one rule)', async () => {
    const lines = chain(3);
    expect(await verifyAuditLog(lines, { key: KEY, head: headOf(lines) })).toMatchObject({ ok: true, count: 3 });
  });

  const p = (body: string, seq: unknown = 1, at: unknown = `"${AT}"`, prev: unknown = `"${Z}"`) => `{"seq":${seq},"at":${at},${body},"prev":${prev}`;
  const cases: [string, string, RegExp, number | undefined][] = [
    ['a lower-case mac', csr(1, Z).replace(/"mac":"([0-9A-F]+)"/, (_m, h: string) => `"mac":"${h.toLowerCase()}"`), /not 64 upper-case hex/, 1],
    ['no mac at its end', `{"seq":1,"at":"${AT}","type":"key.csr","keyId":"K1","prev":"${Z}"}`, /no mac field/, undefined],
    ['a line too short for a mac', `,"mac":"${'A'.repeat(64)}"}`, /no mac field/, undefined],
    ['a mac not closed by "}', `${csr(1, Z).slice(0, -2)}x}`, /no mac field/, undefined],
    ['a mac closed by "x', `${csr(1, Z).slice(0, -1)}x`, /no mac field/, undefined],
    ['not JSON', forge('{"seq":1,'), /not JSON/, undefined],
    ['seq 0', forge(p('"type":"key.csr","keyId":"K1"', 0)), /seq, at or prev/, undefined],
    ['a fractional seq', forge(p('"type":"key.csr","keyId":"K1"', 1.5)), /seq, at or prev/, undefined],
    ['seq as a string', forge(p('"type":"key.csr","keyId":"K1"', '"1"')), /seq, at or prev/, undefined],
    ['a time with junk after it', forge(p('"type":"key.csr","keyId":"K1"', 1, `"${AT}Z"`)), /seq, at or prev/, 1],
    ['a time with junk before it', forge(p('"type":"key.csr","keyId":"K1"', 1, `"1${AT}"`)), /seq, at or prev/, 1],
    ['a time without milliseconds', forge(p('"type":"key.csr","keyId":"K1"', 1, '"2025-01-01T00:00:00Z"')), /seq, at or prev/, 1],
    ['a time as a number', forge(p('"type":"key.csr","keyId":"K1"', 1, 5)), /seq, at or prev/, 1],
    ['a lower-case prev', forge(p('"type":"key.csr","keyId":"K1"', 1, `"${AT}"`, `"${'a'.repeat(64)}"`)), /seq, at or prev/, 1],
    ['a prev as a number', forge(p('"type":"key.csr","keyId":"K1"', 1, `"${AT}"`, 0)), /seq, at or prev/, 1],
    ['an unknown type', forge(p('"type":"key.exported","keyId":"K1"')), /malformed record: /, 1],
    ['a type from Object.prototype', forge(p('"type":"constructor"')), /malformed record: /, 1],
    ['a type that is not a string', forge(p('"type":1')), /malformed record: /, 1],
    ['a missing field', forge(p('"type":"key.csr"')), /malformed record: /, 1],
    ['an extra field', forge(p('"type":"key.csr","keyId":"K1","secret":"00"')), /canonical form/, 1],
    ['fields out of order', forge(p('"type":"key.revoked","reason":"r","keyId":"K1"')), /canonical form/, 1],
    ['a counter as a number', forge(p(`"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":5`)), /malformed record: counter/, 1],
    ['a counter with a leading zero', forge(p(`"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":"05"`)), /malformed record: counter/, 1],
    ['an empty counter', forge(p(`"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":""`)), /malformed record: counter/, 1],
    ['a counter of 21 digits', forge(p(`"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":"${'1'.repeat(21)}"`)), /malformed record: counter/, 1],
    ['a counter with junk after it', forge(p(`"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":"12x"`)), /malformed record: counter/, 1],
    ['a counter of 2^64', forge(p(`"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":"18446744073709551616"`)), /malformed record: /, 1],
    ['a record under another key', csr(1, Z).replace(/"mac":"[0-9A-F]+"/, `"mac":"${'A'.repeat(64)}"`), /MAC does not verify/, 1],
  ];
  it.each(cases)('%s', async (_name, line, message, seq) => {
    const r = await verifyAuditLog([line], { key: KEY });
    expect(r.ok).toBe(false);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]).toEqual({ code: 'ERR_AUDIT_TAMPERED', message: expect.stringMatching(message), line: 1, offset: 0, ...(seq === undefined ? {} : { seq }) });
  });

  it('the largest counter, 20 digits, and counter 0 are canonical', async () => {
    const body = (c: string) => `"type":"key.used","operation":"sign","keyId":"K1","portfolioId":"p","device":"${DEV}","counter":"${c}"`;
    const a = forge(`{"seq":1,"at":"${AT}",${body('18446744073709551615')},"prev":"${Z}"`);
    const b = forge(`{"seq":2,"at":"${AT}",${body('0')},"prev":"${sha(a)}"`);
    expect(await verifyAuditLog([a, b], { key: KEY })).toMatchObject({ ok: true, count: 2 });
  });
});

describe('the chain: where a finding is reported, and what is not one', () => {
  it('a replaced record is one finding; the chain goes on from the record after it', async () => {
    const lines = chain(4);
    lines[1] = 'garbage';
    const r = await verifyAuditLog(lines, { key: KEY });
    expect(r.findings).toEqual([{ code: 'ERR_AUDIT_TAMPERED', message: expect.stringMatching(/no mac field/), line: 2, offset: Buffer.byteLength(lines[0]!) + 1 }]);
    // with the head, the shorter line also moves the head record's end
    const withHead = await verifyAuditLog(lines, { key: KEY, head: headOf(chain(4)) });
    expect(withHead.findings.map((f) => f.message)).toEqual([expect.stringMatching(/no mac field/), expect.stringMatching(/ends at byte/)]);
  });

  it('after a bad line, a record that is neither the next nor the one after the bad lines is a second finding', async () => {
    const lines = chain(5);
    const r = await verifyAuditLog([lines[0]!, 'garbage', lines[3]!, lines[4]!], { key: KEY });
    expect(r.findings.map((f) => [f.line, f.seq])).toEqual([
      [2, undefined],
      [3, 4],
    ]);
    expect(r.findings[1]!.message).toMatch(/after 1 bad line\(s\), expected seq 2 or 3, found 4/);
  });

  it('after a bad line, the next record with the right seq but another prev is a finding (inserted only if it follows the last good one)', async () => {
    const a = chain(3);
    const spliced = csr(2, 'B'.repeat(64), 'X');
    const r = await verifyAuditLog([a[0]!, 'garbage', spliced, a[2]!], { key: KEY });
    expect(r.findings.map((f) => f.line)).toEqual([2, 3, 4]);
  });

  it('a record spliced in with the right seq and another prev: prev is not the hash of the record before it', async () => {
    const a = chain(3);
    const r = await verifyAuditLog([a[0]!, csr(2, 'B'.repeat(64), 'X'), a[2]!], { key: KEY });
    expect(r.findings[0]).toMatchObject({ line: 2, seq: 2, message: expect.stringMatching(/prev is not the hash/) });
  });

  it('the chain never moves backwards: after a repeated record, the next one is checked against the highest', async () => {
    const a = chain(4);
    const r = await verifyAuditLog([a[0]!, a[1]!, a[2]!, a[1]!, a[3]!], { key: KEY });
    expect(r.findings.map((f) => [f.line, f.seq])).toEqual([[4, 2]]);
    expect(r.findings[0]!.message).toMatch(/seq 2 after seq 3/);
  });

  it('lines inserted before the head record: the head names a different end', async () => {
    const a = chain(3);
    const head = headOf(a);
    const r = await verifyAuditLog(a, { key: KEY, head: { ...head, bytes: head.bytes + 1 } });
    expect(r.findings).toEqual([{ code: 'ERR_AUDIT_TAMPERED', message: expect.stringMatching(/ends at byte/), seq: 3 }]);
    expect(r.head).toBeUndefined();
  });

  it('a head record replaced: another hash at the head’s seq', async () => {
    const a = chain(3);
    const r = await verifyAuditLog(a, { key: KEY, head: { ...headOf(a), lastHash: 'C'.repeat(64) } });
    expect(r.findings).toEqual([{ code: 'ERR_AUDIT_TAMPERED', message: expect.stringMatching(/not the one the authenticated head names/), seq: 3 }]);
  });

  it('records cut: the finding is on the line after the last one', async () => {
    const a = chain(3);
    const r = await verifyAuditLog(a.slice(0, 2), { key: KEY, head: headOf(a) });
    expect(r.findings).toEqual([{ code: 'ERR_AUDIT_TRUNCATED', message: expect.stringMatching(/ends at record 2.*says 3/), line: 3 }]);
  });

  it('at most 1000 findings; the rest are counted', async () => {
    const bad = Array.from({ length: 1001 }, () => 'x');
    const r = await verifyAuditLog(bad, { key: KEY });
    expect(r).toMatchObject({ ok: false, count: 1001, omittedFindings: 1 });
    expect(r.findings).toHaveLength(1000);
    const r2 = await verifyAuditLog(bad.slice(1), { key: KEY });
    expect(r2).toMatchObject({ omittedFindings: 0 });
    expect(r2.findings).toHaveLength(1000);
  });

  it('records beyond the head: allowed types pass, others are ERR_KEYSTORE_METADATA_ROLLBACK; any type without the list', async () => {
    const a = chain(3);
    const head = headOf(a.slice(0, 1));
    expect((await verifyAuditLog(a, { key: KEY, head })).ok).toBe(true);
    const r = await verifyAuditLog(a, { key: KEY, head, allowBeyondHead: ['key.used'] });
    expect(r.findings.map((f) => [f.code, f.line, f.seq])).toEqual([
      ['ERR_KEYSTORE_METADATA_ROLLBACK', 2, 2],
      ['ERR_KEYSTORE_METADATA_ROLLBACK', 3, 3],
    ]);
    expect(r.findings[0]!.message).toMatch(/key\.csr/);
    expect((await verifyAuditLog(a, { key: KEY, head, allowBeyondHead: ['key.csr'] })).ok).toBe(true);
  });
});

describe('line limits, also across the reader’s 1 MiB chunks', () => {
  const over = new RegExp(`over ${MAX_AUDIT_LINE_BYTES} bytes`);

  it('a line of exactly 64 KiB is read (and is not a record); one byte more is over the limit: from a file and from lines', async () => {
    const dir = tempDir();
    const path = join(dir, AUDIT_LOG_FILE);
    const exact = 'x'.repeat(MAX_AUDIT_LINE_BYTES);
    writeFileSync(path, `${exact}\n${exact}x\n`);
    for (const source of [path, [exact, `${exact}x`]]) {
      const r = await verifyAuditLog(source, { key: KEY });
      expect(r.findings.map((f) => f.message)).toEqual([expect.stringMatching(/no mac field/), expect.stringMatching(over)]);
      expect(r.findings[1]!.offset).toBe(MAX_AUDIT_LINE_BYTES + 1);
    }
  });

  it('a line that starts in one chunk and ends in the next is read whole; an overlong one across chunks is one finding', async () => {
    const dir = tempDir();
    const path = join(dir, AUDIT_LOG_FILE);
    const [rec] = chain(1);
    const fill = 'y'.repeat((1 << 20) - 100); // line 1 ends 99 bytes before the first chunk's end
    const long = 'z'.repeat((1 << 20) + 10); // line 3 runs over the second chunk boundary
    writeFileSync(path, `${fill}\n${rec}\n${long}\n${rec}\n`);
    const r = await verifyAuditLog(path, { key: KEY });
    expect(r.count).toBe(4);
    expect(r.findings.map((f) => [f.line, f.message.match(over) ? 'over' : f.message])).toEqual([
      [1, 'over'],
      [3, 'over'],
      [4, expect.stringMatching(/after 1 bad line\(s\), expected seq 2 or 3, found 1/)],
    ]);
    expect(r.findings[1]!.offset).toBe(fill.length + 1 + rec!.length + 1);
  });

  it('an unterminated final line: up to 64 KiB a torn write (removed on open), over it tampering (refused)', async () => {
    const a = chain(2);
    const head = headOf(a);
    const dir = tempDir();
    const path = join(dir, AUDIT_LOG_FILE);
    writeFileSync(path, `${a.join('\n')}\n${'t'.repeat(MAX_AUDIT_LINE_BYTES)}`);
    let r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings).toEqual([{ code: 'ERR_AUDIT_TRUNCATED', message: expect.stringMatching(/not newline-terminated/), line: 3, offset: head.bytes }]);
    const log = await AuditLog.open(dir, { key: KEY, head });
    expect(log.recovery.tornBytesRemoved).toBe(MAX_AUDIT_LINE_BYTES);
    await log.close();
    expect(statSync(path).size).toBe(head.bytes);

    appendFileSync(path, 't'.repeat(MAX_AUDIT_LINE_BYTES + 1));
    r = await verifyAuditLog(path, { key: KEY, head });
    expect(r.findings).toEqual([{ code: 'ERR_AUDIT_TAMPERED', message: expect.stringMatching(over), line: 3, offset: head.bytes }]);
    await refusal(AuditLog.open(dir, { key: KEY, head }), 'ERR_AUDIT_TAMPERED');
    expect(statSync(path).size).toBe(head.bytes + MAX_AUDIT_LINE_BYTES + 1);
  });
});

describe('AuditLog.open: options, creation and the recovery it reports', () => {
  it('groupCommitMs from 0 to 10000; anything else refused; verifyOnOpen full or tail only', async () => {
    for (const groupCommitMs of [0, 10_000]) await (await freshLog({ groupCommitMs })).log.close();
    for (const groupCommitMs of [-1, 10_001, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) await refusal(freshLog({ groupCommitMs }));
    await refusal(freshLog({ verifyOnOpen: 'partial' as 'tail' }));
  });

  it('creates the log mode 0600; an existing log is opened as it is', async () => {
    const { dir, log } = await freshLog();
    await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    const head = log.head();
    await log.close();
    expect(statSync(join(dir, AUDIT_LOG_FILE)).mode & 0o777).toBe(0o600);
    const again = await AuditLog.open(dir, { key: KEY, head });
    expect(again.head()).toEqual(head);
    expect(again.path).toBe(join(dir, AUDIT_LOG_FILE));
    await again.close();
  });

  it('a refusal says where: line, seq and byte offset', async () => {
    const dir = tempDir();
    const a = chain(3);
    a[2] = a[2]!.replace('"K3"', '"K4"');
    writeFileSync(join(dir, AUDIT_LOG_FILE), `${a.join('\n')}\n`);
    const e = await refusal(AuditLog.open(dir, { key: KEY }), 'ERR_AUDIT_TAMPERED');
    const offset = Buffer.byteLength(a[0]!) + Buffer.byteLength(a[1]!) + 2;
    expect(e.context).toEqual({ offset, detail: expect.stringMatching(/^audit log: line 3, seq 3: the MAC does not verify/) });
    const cut = await refusal(AuditLog.open(dir, { key: KEY, head: { count: 9, lastHash: 'A'.repeat(64), bytes: 99_999 }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TRUNCATED');
    expect(cut.context).toEqual({ detail: expect.stringMatching(/^audit log: the log has \d+ bytes; the authenticated head says 99999/) });
  });

  it('1001 lifecycle records beyond the head: all adopted and counted, the first 1000 handed over', async () => {
    const { dir, log } = await freshLog();
    await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    const head = log.head();
    for (let i = 0; i < 1001; i++) await log.append({ type: 'key.retired', keyId: `K${i}` }, { durable: false });
    await log.append(used(1), { durable: false });
    await log.close();
    const again = await AuditLog.open(dir, { key: KEY, head });
    expect(again.recovery.recordsBeyondHead).toBe(1002);
    expect(again.recovery.lifecycleBeyondHead).toHaveLength(1000);
    expect(again.recovery.lifecycleBeyondHead[999]).toMatchObject({ type: 'key.retired', keyId: 'K999', seq: 1001 });
    expect(again.head().count).toBe(1003);
    await again.close();
  });

  it('the recovery fault points, in order', async () => {
    const { dir, log } = await freshLog();
    await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    const head = log.head();
    await log.close();
    appendFileSync(join(dir, AUDIT_LOG_FILE), '{"seq":2');
    const points: string[] = [];
    const again = await AuditLog.open(dir, { key: KEY, head, fault: (p) => points.push(p) });
    await again.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    await again.close();
    expect(points).toEqual(['audit:recover-before-truncate', 'audit:recover-after-truncate', 'audit:before-write', 'audit:after-write', 'audit:after-fsync']);
  });

  it("'tail' accepts a log whose head record is its first line, and one longer than the window", async () => {
    const one = chain(1);
    let dir = tempDir();
    writeFileSync(join(dir, AUDIT_LOG_FILE), `${one[0]}\n`);
    await (await AuditLog.open(dir, { key: KEY, head: headOf(one), verifyOnOpen: 'tail' })).close();

    const many = chain(800); // over 64 KiB: the head's line is found inside the window
    expect(headOf(many).bytes).toBeGreaterThan(MAX_AUDIT_LINE_BYTES + 1000);
    dir = tempDir();
    writeFileSync(join(dir, AUDIT_LOG_FILE), `${many.join('\n')}\n`);
    const head = headOf(many.slice(0, 790));
    const log = await AuditLog.open(dir, { key: KEY, head, verifyOnOpen: 'tail' });
    expect(log.recovery.recordsBeyondHead).toBe(10);
    expect(log.recovery.lifecycleBeyondHead.map((r) => r.seq)).toEqual([791, 792, 793, 794, 795, 796, 797, 798, 799, 800]);
    expect(log.head()).toEqual(headOf(many));
    await log.close();
  });

  it("'tail' refuses a head that ends inside a line, that names another record, and a bad record after it", async () => {
    const a = chain(5);
    const dir = tempDir();
    const path = join(dir, AUDIT_LOG_FILE);
    writeFileSync(path, `${a.join('\n')}\n`);
    const head = headOf(a.slice(0, 3));
    await refusal(AuditLog.open(dir, { key: KEY, head: { ...head, bytes: head.bytes - 1 }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
    await refusal(AuditLog.open(dir, { key: KEY, head: { ...head, count: 2 }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
    await refusal(AuditLog.open(dir, { key: KEY, head: { ...head, lastHash: sha(a[1]!) }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
    writeFileSync(path, `${a.slice(0, 3).join('\n')}\n${a[2]!.replace('K3', 'K9')}\n`);
    await refusal(AuditLog.open(dir, { key: KEY, head, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
    // a head that is not at a line's end
    writeFileSync(path, `x${a[0]}\n`);
    await refusal(AuditLog.open(dir, { key: KEY, head: headOf(a.slice(0, 1)), verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
  });
});

describe('the intent: lines the metadata committed to before the log has them', () => {
  async function staged(n: number, committed: number) {
    const { dir, log } = await freshLog({ now: () => new Date(AT) });
    await log.append({ type: 'key.csr', keyId: 'K0' }, { durable: true });
    const s = await log.stage(Array.from({ length: n }, (_, i) => ({ type: 'key.csr' as const, keyId: `S${i}` })));
    const path = join(dir, AUDIT_LOG_FILE);
    // a crash after the metadata write: only `committed` of the lines reached the log
    if (committed > 0) appendFileSync(path, s.lines.slice(0, committed).map((l) => `${l}\n`).join(''));
    log.abortStaged();
    await log.close();
    return { dir, path, intent: { before: s.before, lines: s.lines }, head: s.after };
  }

  it('the missing lines are written on open and counted; the head is the one after them', async () => {
    for (const committed of [0, 1, 2]) {
      const { dir, intent, head } = await staged(3, committed);
      expect(await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head, intent })).toMatchObject({ ok: true, intentLinesMissing: 3 - committed });
      const points: string[] = [];
      const log = await AuditLog.open(dir, { key: KEY, head, intent, fault: (p) => points.push(p) });
      expect(log.recovery).toEqual({ tornBytesRemoved: 0, recordsBeyondHead: 0, lifecycleBeyondHead: [], intentLinesWritten: 3 - committed });
      expect(log.head()).toEqual(head);
      expect(points).toEqual(['audit:intent-before-write', 'audit:intent-after-write']);
      await log.close();
      expect(await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head })).toMatchObject({ ok: true, count: 4 });
    }
  });

  it('a log that has every line: nothing to write, and the intent is not reported', async () => {
    const { dir, intent, head } = await staged(2, 2);
    const v = await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head, intent });
    expect(v).toEqual({ ok: true, count: 3, head, findings: [], omittedFindings: 0 });
    const log = await AuditLog.open(dir, { key: KEY, head, intent });
    expect(log.recovery.intentLinesWritten).toBe(0);
    await log.close();
    const fromLines = await verifyAuditLog(readFileSync(join(dir, AUDIT_LOG_FILE), 'utf8').split('\n').slice(0, -1), { key: KEY, head, intent });
    expect(fromLines.intentLinesMissing).toBeUndefined();
  });

  it('from lines: the missing lines are counted the same way', async () => {
    const { path, intent, head } = await staged(3, 1);
    const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
    expect(await verifyAuditLog(lines, { key: KEY, head, intent })).toMatchObject({ ok: true, intentLinesMissing: 2 });
  });

  it('a missing log and an intent from the empty head: every line is missing', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY });
    const s = await log.stage([{ type: 'key.csr', keyId: 'A' }]);
    log.abortStaged();
    await log.close();
    rmSync(join(dir, AUDIT_LOG_FILE));
    expect(await verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head: s.after, intent: s })).toMatchObject({ ok: true, intentLinesMissing: 1 });
  });

  it('refused: a log that ends before the intent, a different record part-way, lines that do not chain or do not lead to the head', async () => {
    const { dir, path, intent, head } = await staged(3, 1);
    const original = readFileSync(path);
    const cases: [string, () => void, Partial<{ intent: typeof intent; head: AuditHead }>][] = [
      ['a record of the intent replaced in the log', () => writeFileSync(path, original.toString().replace('"S0"', '"X0"')), {}],
      ['the lines out of order', () => writeFileSync(path, original), { intent: { ...intent, lines: [intent.lines[0]!, intent.lines[2]!, intent.lines[1]!] } }],
      ['a line that is not a record', () => writeFileSync(path, original), { intent: { ...intent, lines: [intent.lines[0]!, intent.lines[1]!, 'garbage'] } }],
      ['lines from another chain', () => writeFileSync(path, original), { intent: { ...intent, lines: [intent.lines[0]!, ...chain(2)] } }],
      ['a head past the lines', () => writeFileSync(path, original), { head: { ...head, bytes: head.bytes + 1 } }],
      ['a head with another hash', () => writeFileSync(path, original), { head: { ...head, lastHash: 'D'.repeat(64) } }],
    ];
    for (const [name, prepare, over] of cases) {
      prepare();
      const opts = { key: KEY, head: over.head ?? head, intent: over.intent ?? intent };
      const v = await verifyAuditLog(path, opts);
      expect(v.ok, name).toBe(false);
      expect(v.findings[0]!.code, name).toBe('ERR_AUDIT_TAMPERED');
      await refusal(AuditLog.open(dir, opts), 'ERR_AUDIT_TAMPERED');
      expect(readFileSync(path).length, name).toBeLessThanOrEqual(original.length);
    }
  });

  it('refused before anything is read: an intent that is not one, without a head, or that does not lead to the head', async () => {
    const { dir, intent, head } = await staged(2, 0);
    const bad: unknown[] = [5, null, { before: intent.before }, { before: intent.before, lines: [] }, { before: intent.before, lines: [1, 2] }, { before: { count: -1 }, lines: intent.lines }, { ...intent, lines: intent.lines.slice(1) }];
    for (const i of bad) {
      await refusal(AuditLog.open(dir, { key: KEY, head, intent: i as typeof intent }));
      await refusal(verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, head, intent: i as typeof intent }));
    }
    await refusal(AuditLog.open(dir, { key: KEY, intent }));
    await refusal(verifyAuditLog(join(dir, AUDIT_LOG_FILE), { key: KEY, intent }));
  });

  it('verifyAuditLog rethrows a read error other than a missing file', async () => {
    await expect(verifyAuditLog('/dev/null/audit.log', { key: KEY })).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});

describe('group commit, staging and failure', () => {
  it('use records wait in memory for the window; a 1 MiB backlog is written at once', async () => {
    const { log } = await freshLog({ groupCommitMs: 10_000 });
    await log.append(used(0), { durable: false });
    await new Promise((r) => setTimeout(r, 30));
    expect(statSync(log.path).size).toBe(0);
    let i = 1;
    while (statSync(log.path).size === 0 && i < 6000) {
      await log.append(used(i++), { durable: false });
      await new Promise((r) => setImmediate(r));
    }
    const written = readFileSync(log.path, 'utf8');
    const last = written.split('\n').at(-2)!;
    expect(written.length).toBeGreaterThanOrEqual(1 << 20); // written once the backlog reached 1 MiB...
    expect(written.length - last.length - 1).toBeLessThan(1 << 20); // ...and not before
    await log.close();
  });

  it('a use record reaches the disk within the default window (50 ms)', async () => {
    const { log } = await freshLog();
    await log.append(used(0), { durable: false });
    expect(statSync(log.path).size).toBe(0);
    await new Promise((r) => setTimeout(r, 400));
    expect(statSync(log.path).size).toBeGreaterThan(0);
    await log.close();
  });

  it('stage: refuses no events and a second stage waits; appends wait for the commit; nothing is written before it', async () => {
    const { log } = await freshLog({ groupCommitMs: 10_000 });
    await refusal(log.stage([]));
    await refusal(log.stage('x' as unknown as AuditEvent[]));
    await refusal(log.commitStaged());
    await log.append(used(0), { durable: false });
    const s = await log.stage([{ type: 'key.csr', keyId: 'A' }, { type: 'key.csr', keyId: 'B' }]);
    const firstLen = Buffer.byteLength(readFileSync(log.path, 'utf8'));
    expect(s.before).toEqual({ count: 1, lastHash: sha(readFileSync(log.path, 'utf8').slice(0, -1)), bytes: firstLen });
    expect(s.after).toEqual({ count: 3, lastHash: sha(s.lines[1]!), bytes: firstLen + Buffer.byteLength(s.lines[0]!) + Buffer.byteLength(s.lines[1]!) + 2 });
    expect(s.lines.map((l) => JSON.parse(l).seq)).toEqual([2, 3]);
    let appended = false;
    const waiting = log.append(used(1), { durable: true }).then((r) => ((appended = true), r));
    const second = log.stage([{ type: 'key.csr', keyId: 'C' }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(appended).toBe(false);
    expect(statSync(log.path).size).toBe(firstLen);
    expect(await log.commitStaged()).toEqual(s.after);
    const next = await second; // after the append that waited before it
    expect((await waiting).seq).toBe(4);
    expect(next.before.count).toBe(4);
    log.abortStaged();
    await log.close();
    expect(await verifyAuditLog(log.path, { key: KEY })).toMatchObject({ ok: true, count: 4 });
  });

  it('abortStaged: the chain goes on as if nothing was staged; a refused stage leaves no gate shut', async () => {
    const { log } = await freshLog();
    await log.append({ type: 'key.csr', keyId: 'A' }, { durable: true });
    await log.stage([{ type: 'key.csr', keyId: 'B' }]);
    log.abortStaged();
    await refusal(log.stage([{ type: 'key.csr', keyId: 'bad id' }]));
    const r = await log.append({ type: 'key.csr', keyId: 'C' }, { durable: true });
    expect(r.seq).toBe(2);
    await log.close();
    await refusal(log.stage([{ type: 'key.csr', keyId: 'D' }]), 'ERR_KEYSTORE_CLOSED');
  });

  it('a failed write: the error says why, later stages and appends fail at once, and close still closes', async () => {
    let armed = false;
    const { log } = await freshLog({
      fault: (p) => {
        if (armed && p === 'audit:after-write') throw new Error('injected EIO');
      },
    });
    await log.append({ type: 'key.csr', keyId: 'A' }, { durable: true });
    const good = log.head();
    await log.stage([{ type: 'key.csr', keyId: 'B' }]);
    armed = true;
    const e = await refusal(log.commitStaged(), 'ERR_AUDIT_WRITE_FAILED');
    expect(e.context).toEqual({ detail: 'injected EIO' });
    expect((e as Error & { cause?: Error }).cause?.message).toBe('injected EIO');
    await refusal(log.stage([{ type: 'key.csr', keyId: 'C' }]), 'ERR_AUDIT_WRITE_FAILED');
    await refusal(log.append(used(1), { durable: false }), 'ERR_AUDIT_WRITE_FAILED');
    expect(log.head()).toEqual(good);
    expect(statSync(log.path).size).toBe(good.bytes);
    await log.close();
    await log.close();
    await refusal(log.append(used(1), { durable: false }), 'ERR_KEYSTORE_CLOSED');
  });

  it('a failure that is not an Error is reported too', async () => {
    let armed = false;
    const { log } = await freshLog({
      fault: (p) => {
        if (armed && p === 'audit:before-write') throw 'disk on fire'; // eslint-disable-line no-throw-literal
      },
    });
    armed = true;
    const e = await refusal(log.append({ type: 'key.csr', keyId: 'A' }, { durable: true }), 'ERR_AUDIT_WRITE_FAILED');
    expect(e.context).toEqual({ detail: 'disk on fire' });
    await log.close();
  });
});

describe('schema, head and chain checks at their exact boundaries', () => {
  const p = (body: string, seq: unknown = 1, at: unknown = `"${AT}"`, prev: unknown = `"${Z}"`) => `{"seq":${seq},"at":${at},${body},"prev":${prev}`;
  const only = async (line: string) => {
    const r = await verifyAuditLog([line], { key: KEY });
    expect(r.findings).toHaveLength(1);
    return r.findings[0]!;
  };

  it('a record of an unknown type, a type from Object.prototype, or a type that is not a string (even one that reads as a known type) is an unknown record type', async () => {
    for (const type of ['"key.exported"', '"constructor"', '1', '["key.csr"]']) {
      expect((await only(forge(p(`"type":${type},"keyId":"K1"`)))).message).toBe('malformed record: unknown record type');
    }
  });

  it('append refuses a type that is not a string, even one that reads as a known type', async () => {
    const { log } = await freshLog();
    const e = await refusal(log.append({ type: ['key.csr'], keyId: 'K' } as unknown as AuditEvent, { durable: true }));
    expect(e.message).toMatch(/unknown audit event type/);
    await log.close();
    expect(readFileSync(log.path, 'utf8')).toBe('');
  });

  it('a time or a prev that is a list holding a valid value is malformed, not merely non-canonical', async () => {
    expect((await only(forge(p('"type":"key.csr","keyId":"K1"', 1, `["${AT}"]`)))).message).toBe('malformed record (seq, at or prev)');
    expect((await only(forge(p('"type":"key.csr","keyId":"K1"', 1, `"${AT}"`, `["${Z}"]`)))).message).toBe('malformed record (seq, at or prev)');
  });

  it('a line whose mac field starts at byte 2 is read as JSON (and is not JSON); one byte shorter has no mac field', async () => {
    expect((await only(`{},"mac":"${'A'.repeat(64)}"}`)).message).toBe('not an audit record (not JSON)');
    expect((await only(`{,"mac":"${'A'.repeat(64)}"}`)).message).toBe('not an audit record (no mac field at its end)');
  });

  it('a finding on a line without a seq carries no seq field', async () => {
    const f = await only(forge('{"seq":1,'));
    expect(Object.keys(f)).not.toContain('seq');
  });

  const lines = chain(2);
  const good = headOf(lines);
  const heads: [string, unknown][] = [
    ['a function with the fields of a head', Object.assign(() => undefined, { count: 0, lastHash: Z, bytes: 0 })],
    ['a negative count with the zero hash and bytes', { count: -1, lastHash: Z, bytes: 10 }],
    ['a hash that is a list holding a hash', { ...good, lastHash: [good.lastHash] }],
  ];
  it.each(heads)('a head with %s is refused', async (_name, head) => {
    await refusal(verifyAuditLog(lines, { key: KEY, head: head as AuditHead }));
    await refusal(AuditLog.open(tempDir(), { key: KEY, head: head as AuditHead }));
  });

  it('a gap says how many records are missing', async () => {
    const [a] = chain(1);
    const r = await verifyAuditLog([a!, csr(3, sha(a!))], { key: KEY });
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]!.message).toBe('expected seq 2, found 3: 1 record(s) deleted before this line, or records reordered');
  });

  it('after a bad line, a record that follows the last good one but skips seqs is a finding', async () => {
    const [a] = chain(1);
    const r = await verifyAuditLog([a!, 'garbage', csr(5, sha(a!))], { key: KEY });
    expect(r.findings).toHaveLength(2);
    expect(r.findings[1]).toMatchObject({ line: 3, seq: 5, message: 'after 1 bad line(s), expected seq 2 or 3, found 5' });
  });

  it('a second record with the same seq does not replace the first in the chain', async () => {
    const [a, b, c] = chain(3);
    const other = csr(2, sha(a!), 'KX');
    const r = await verifyAuditLog([a!, b!, other, c!], { key: KEY });
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]).toMatchObject({ line: 3, seq: 2 });
  });

  it('a head with the zero hash whose seq no record has is not met by the start of the log', async () => {
    const line = csr(2, Z);
    const r = await verifyAuditLog([line], { key: KEY, head: { count: 1, lastHash: Z, bytes: 500 } });
    expect(r.findings).toHaveLength(2);
    expect(r.findings[1]).toEqual({ code: 'ERR_AUDIT_TAMPERED', message: 'record 1 is not the one the authenticated head names: the log was rewritten or replaced', seq: 1 });
  });
});

describe("'tail' open, a missing log and the refusal it reports", () => {
  const write = (content: string) => {
    const dir = tempDir();
    writeFileSync(join(dir, AUDIT_LOG_FILE), content);
    return dir;
  };
  const [a, b] = chain(2);
  const full = headOf([a!, b!]);

  it("'tail' refuses a head whose count is not the seq of the record at its end, even when the log ends there", async () => {
    const dir = write(`${a}\n${b}\n`);
    await refusal(AuditLog.open(dir, { key: KEY, head: { ...full, count: 3 }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
  });

  it("'tail' refuses a head whose hash is not that of the record at its end, and says where that record starts", async () => {
    const dir = write(`${a}\n${b}\n`);
    const e = await refusal(AuditLog.open(dir, { key: KEY, head: { ...full, lastHash: 'D'.repeat(64) }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
    expect(e.context).toEqual({ offset: Buffer.byteLength(a!) + 1, detail: 'audit log: seq 2: record 2 is not the one the authenticated head names: the log was rewritten or replaced' });
  });

  it("'tail' refuses a head that ends one byte after a record, where there is no newline", async () => {
    const dir = write(`${a}X`);
    await refusal(AuditLog.open(dir, { key: KEY, head: { count: 1, lastHash: sha(a!), bytes: Buffer.byteLength(a!) + 1 }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
  });

  it("'tail' looks back 64 KiB and one byte for the head's line: the offset of a longer line is where the window starts", async () => {
    const dir = write(`${'x'.repeat(70_000)}\n`);
    const e = await refusal(AuditLog.open(dir, { key: KEY, head: { count: 1, lastHash: 'A'.repeat(64), bytes: 70_001 }, verifyOnOpen: 'tail' }), 'ERR_AUDIT_TAMPERED');
    expect(e.context).toMatchObject({ offset: 70_001 - MAX_AUDIT_LINE_BYTES - 1 });
  });

  it("'tail' with the empty head reads the whole log", async () => {
    const dir = write(`${a}\n${b}\n`);
    const log = await AuditLog.open(dir, { key: KEY, head: { count: 0, lastHash: Z, bytes: 0 }, verifyOnOpen: 'tail' });
    expect(log.head()).toEqual(full);
    expect(log.recovery.recordsBeyondHead).toBe(2);
    await log.close();
  });

  it('a missing log with the empty head is created; with records in the head it is refused, naming the count', async () => {
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY, head: { count: 0, lastHash: Z, bytes: 0 } });
    expect(log.head()).toEqual({ count: 0, lastHash: Z, bytes: 0 });
    await log.close();
    const e = await refusal(AuditLog.open(tempDir(), { key: KEY, head: full }), 'ERR_AUDIT_TRUNCATED');
    expect(e.message).toBe('audit log: the log is missing; the authenticated head says it has 2 record(s)');
  });

  it('open rethrows a read error other than a missing file, even with a head', async () => {
    await expect(AuditLog.open('/dev/null', { key: KEY, head: full })).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('a torn final line is not what a refusal reports when something else is wrong', async () => {
    const dir = write(`${a}\n{"seq":2`);
    const e = await refusal(AuditLog.open(dir, { key: KEY, head: full }), 'ERR_AUDIT_TRUNCATED');
    expect(e.message).toMatch(/the log ends at record 1; the authenticated head says 2: records were cut off the end/);
  });
});

describe('the intent: every line is checked, not only where it leads', () => {
  const EMPTY: AuditHead = { count: 0, lastHash: Z, bytes: 0 };
  /** A log holding `logged`, and an intent from the empty head to the head its `lines` lead to. */
  async function refused(logged: string[], lines: string[], message: string, head: AuditHead = headOf(lines)) {
    const intent = { before: EMPTY, lines };
    const v = await verifyAuditLog(logged, { key: KEY, head, intent });
    expect(v.ok).toBe(false);
    expect(v.findings).toEqual([{ code: 'ERR_AUDIT_TAMPERED', message: `audit log: ${message}` }]);
    const dir = tempDir();
    writeFileSync(join(dir, AUDIT_LOG_FILE), logged.map((l) => `${l}\n`).join(''));
    const e = await refusal(AuditLog.open(dir, { key: KEY, head, intent }), 'ERR_AUDIT_TAMPERED');
    expect(e.message).toBe(`audit log: ${message}`);
  }

  it('a line part-way whose prev is not the hash of the line before, though the lines lead to the head', async () => {
    const a = csr(1, Z, 'K1');
    const x = csr(2, Z, 'K2');
    await refused([], [a, x, csr(3, sha(x), 'K3')], 'line 2 the metadata committed to is not a valid record in this chain');
  });

  it('a line part-way with another seq, though it chains and the lines lead to the head', async () => {
    const a = csr(1, Z, 'K1');
    const x = csr(5, sha(a), 'K2');
    await refused([], [a, x, csr(3, sha(x), 'K3')], 'line 2 the metadata committed to is not a valid record in this chain');
  });

  it('a record in the log of the same length as the intent’s but another one', async () => {
    const a = csr(1, Z, 'K1');
    const other = csr(1, Z, 'X1');
    const b = csr(2, sha(other), 'K2');
    await refused([a], [other, b, csr(3, sha(b), 'K3')], 'record 1 in the log is not the one the metadata committed to');
  });

  it('a log that already has every line but is shorter than the head: it does not end part-way through the lines', async () => {
    const lines = chain(3);
    const head = headOf(lines);
    await refused(lines, lines, 'the log ends at record 3, which is not part-way through the lines the metadata committed to', { ...head, bytes: head.bytes + 1 });
  });

  it('refused even when the log is complete: an intent that is a function, that has no lines, or a line that is not a string', async () => {
    const lines = chain(2);
    const head = headOf(lines);
    const dir = tempDir();
    writeFileSync(join(dir, AUDIT_LOG_FILE), lines.map((l) => `${l}\n`).join(''));
    const bad: unknown[] = [Object.assign(() => undefined, { before: EMPTY, lines }), { before: head, lines: [] }, { before: EMPTY, lines: [lines[0], 7] }];
    for (const intent of bad) {
      await refusal(AuditLog.open(dir, { key: KEY, head, intent: intent as { before: AuditHead; lines: string[] } }));
      await refusal(verifyAuditLog(lines, { key: KEY, head, intent: intent as { before: AuditHead; lines: string[] } }));
    }
  });
});

describe('field checks that do not coerce, and what a refusal names', () => {
  it('an EUI-64 in a list, or purposes as an object with a length, are refused and nothing is written', async () => {
    const { log } = await freshLog();
    const e = await refusal(log.append({ type: 'organisation.created', entityId: [ORG], role: 2 } as unknown as AuditEvent, { durable: true }));
    expect(e.context).toMatchObject({ detail: 'organisation.created.entityId' });
    const p = await refusal(log.append({ type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: { length: 0 } } as unknown as AuditEvent, { durable: true }));
    expect(p.context).toMatchObject({ detail: 'portfolio.created.wholeEstate' });
    await log.close();
    expect(readFileSync(log.path, 'utf8')).toBe('');
  });

  it('a list of more purposes than there are is refused as too long, before its entries are looked at', async () => {
    const { log } = await freshLog();
    const e = await refusal(log.append({ type: 'portfolio.created', organisation: ORG, portfolioId: 'p', name: 'n', wholeEstate: ['signing', 'keyAgreement', 'prepaymentKeyAgreement', 'xmlSigning', 'signing'] }, { durable: true }));
    expect(e.message).toMatch(/is not a list of key purposes/);
    await log.close();
  });

  it('an unknown type or field is named by its first 64 characters only', async () => {
    const { log } = await freshLog();
    const t = await refusal(log.append({ type: 'T'.repeat(100) } as unknown as AuditEvent, { durable: true }));
    expect(t.context).toMatchObject({ detail: 'T'.repeat(64) });
    const f = await refusal(log.append({ type: 'key.csr', keyId: 'K', ['f'.repeat(100)]: 1 } as unknown as AuditEvent, { durable: true }));
    expect(f.context).toMatchObject({ detail: `key.csr.${'f'.repeat(64)}` });
    await log.close();
  });

  it('a refusal with no byte offset carries no offset', async () => {
    const e = await refusal(AuditLog.open(tempDir(), { key: KEY, head: headOf(chain(1)) }), 'ERR_AUDIT_TRUNCATED');
    expect(Object.keys(e.context ?? {})).not.toContain('offset');
  });

  it('lines that hold every intent line are as long as the head: nothing is missing', async () => {
    const lines = chain(2);
    const head = headOf(lines);
    const v = await verifyAuditLog(lines, { key: KEY, head, intent: { before: { count: 0, lastHash: Z, bytes: 0 }, lines } });
    expect(v).toEqual({ ok: true, count: 2, head, findings: [], omittedFindings: 0 });
  });
});

describe('stage and close: what a refusal names, and closing twice', () => {
  it('stage with no events names events; commit with nothing staged names commitStaged', async () => {
    const { log } = await freshLog();
    const a = await refusal(log.stage([]));
    expect(a.context).toMatchObject({ detail: 'events' });
    const b = await refusal(log.commitStaged());
    expect(b.context).toMatchObject({ detail: 'commitStaged' });
    await log.close();
  });

  it('close twice, at once and after, closes once', async () => {
    const { log } = await freshLog();
    await log.append({ type: 'key.csr', keyId: 'K' }, { durable: false });
    await Promise.all([log.close(), log.close()]);
    await log.close();
    expect(readFileSync(log.path, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
  });
});

describe('the reader’s memory: an overlong line is not kept, a line inside a chunk is not copied', () => {
  it('a line over the limit, terminated or not, is never copied as it is read (at most 64 KiB is held)', async () => {
    const dir = tempDir();
    const path = join(dir, AUDIT_LOG_FILE);
    const [rec] = chain(1);
    writeFileSync(path, `${'x'.repeat(3 << 20)}\n${rec}\n${'t'.repeat(3 << 20)}`);
    const from = vi.spyOn(Buffer, 'from');
    let r: Awaited<ReturnType<typeof verifyAuditLog>>;
    let copied: number;
    try {
      r = await verifyAuditLog(path, { key: KEY });
      copied = from.mock.calls.reduce((n, [a]) => n + (a instanceof Uint8Array ? a.length : 0), 0);
    } finally {
      from.mockRestore();
    }
    expect(copied).toBeLessThanOrEqual(MAX_AUDIT_LINE_BYTES);
    // line 2, the record, follows the bad line as an inserted one would: not a finding
    expect(r.findings.map((f) => [f.line, f.code])).toEqual([
      [1, 'ERR_AUDIT_TAMPERED'],
      [3, 'ERR_AUDIT_TAMPERED'],
    ]);
    expect(r.findings[1]!.message).toMatch(/unterminated final line over/);
  });

  it('lines inside one chunk are checked where they lie; only a line across chunks is put together', async () => {
    const dir = tempDir();
    const path = join(dir, AUDIT_LOG_FILE);
    const lines = chain(3);
    writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      expect(await verifyAuditLog(path, { key: KEY, head: headOf(lines) })).toMatchObject({ ok: true, count: 3 });
      expect(concat).not.toHaveBeenCalled();
      // the same records after a filler line that ends 10 bytes before the first chunk does
      writeFileSync(path, `${'y'.repeat((1 << 20) - 11)}\n${lines.map((l) => `${l}\n`).join('')}`);
      const r = await verifyAuditLog(path, { key: KEY });
      expect(r.count).toBe(4);
      expect(concat).toHaveBeenCalledTimes(1);
    } finally {
      concat.mockRestore();
    }
  });
});

describe('verifyAuditLog: an error reading the log is passed on as it is', () => {
  it('a path that cannot be looked up: the error of the look-up (stat), not a later one', async () => {
    await expect(verifyAuditLog('/dev/null/audit.log', { key: KEY })).rejects.toMatchObject({ code: 'ENOTDIR', syscall: 'stat' });
  });

  it('a file that exists but cannot be opened (a socket) is an error, not an empty log', async () => {
    const path = join(tempDir(), AUDIT_LOG_FILE);
    const server = createServer();
    server.listen(path);
    await once(server, 'listening');
    try {
      // open(2) of a socket: ENXIO on Linux, EOPNOTSUPP on macOS
      await expect(verifyAuditLog(path, { key: KEY })).rejects.toMatchObject({ code: expect.stringMatching(/^(ENXIO|EOPNOTSUPP)$/), syscall: 'open' });
    } finally {
      server.close();
    }
  });
});

describe('the writer: records, refusals and failures in detail', () => {
  it('a record has no key for an optional field that was not given, or given as undefined', async () => {
    const { log } = await freshLog();
    const revoked = await log.append({ type: 'key.revoked', keyId: 'K' }, { durable: true });
    expect(Object.keys(revoked)).toEqual(['type', 'keyId', 'seq', 'at', 'prev', 'mac']);
    const use = await log.append({ ...used(1), counter: undefined } as unknown as AuditEvent, { durable: true });
    expect(Object.keys(use)).toEqual(['type', 'operation', 'keyId', 'portfolioId', 'device', 'seq', 'at', 'prev', 'mac']);
    await log.close();
  });

  it('an append without options is a use record: group-committed, not written at once', async () => {
    const { log } = await freshLog({ groupCommitMs: 10_000 });
    const rec = await log.append({ type: 'key.csr', keyId: 'K' }, undefined as unknown as { durable: boolean });
    expect(rec.seq).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(statSync(log.path).size).toBe(0);
    expect((await log.flush()).count).toBe(1);
    await log.close();
  });

  it('a backlog of exactly 1 MiB is written at once; one byte less waits for the window', async () => {
    const now = () => new Date(AT);
    // Line lengths depend on the seq's digits and the key id only: learn the rest from one line.
    const scratch = await freshLog({ now });
    const one = await scratch.log.stage([{ type: 'key.csr', keyId: 'K' }]);
    scratch.log.abortStaged();
    await scratch.log.close();
    const base = Buffer.byteLength(one.lines[0]!) + 1 - 2; // with its newline, without the seq digit and the id
    const total = 1 << 20;
    const n = Math.ceil(total / (base + 128));
    const ids: number[] = Array.from({ length: n }, () => 1);
    let deficit = total - ids.reduce((sum, len, i) => sum + base + String(i + 1).length + len, 0);
    for (let i = 0; deficit > 0; i++) {
      const add = Math.min(127, deficit);
      ids[i]! += add;
      deficit -= add;
    }
    const events = ids.map((len): AuditEvent => ({ type: 'key.csr', keyId: 'K'.repeat(len) }));
    const check = await freshLog({ now });
    expect((await check.log.stage(events)).after.bytes).toBe(total); // the events make exactly 1 MiB
    check.log.abortStaged();
    await check.log.close();

    const points: string[] = [];
    const { log } = await freshLog({ now, groupCommitMs: 10_000, fault: (p) => points.push(p) });
    for (const e of events.slice(0, -1)) await log.append(e, { durable: false });
    await new Promise((r) => setImmediate(r));
    expect(points).toEqual([]);
    await log.append(events.at(-1)!, { durable: false });
    await new Promise((r) => setImmediate(r));
    expect(points[0]).toBe('audit:before-write');
    expect((await log.flush()).bytes).toBe(total);
    await log.close();
  });

  it('the clock’s refusal by stage names the time, like append’s', async () => {
    const { log } = await freshLog({ now: () => new Date('+010000-01-01T00:00:00.000Z') });
    const e = await refusal(log.stage([{ type: 'key.csr', keyId: 'K' }]));
    expect(e.context).toEqual({ detail: '+010000-01-01T00:00:00.000Z' });
    await log.close();
  });

  it('abortStaged with nothing staged does nothing', async () => {
    const { log } = await freshLog();
    expect(() => log.abortStaged()).not.toThrow();
    expect((await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true })).seq).toBe(1);
    await log.close();
  });

  /** A log whose writes fail once armed, with the error `thrown`. */
  async function failing(thrown: unknown) {
    let armed = false;
    const { log } = await freshLog({
      groupCommitMs: 10_000,
      fault: (p) => {
        if (armed && p === 'audit:after-write') throw thrown;
      },
    });
    return { log, arm: () => (armed = true) };
  }

  it('a failed log refuses a stage as failed before looking at its events', async () => {
    const { log, arm } = await failing(new Error('EIO'));
    arm();
    await refusal(log.append({ type: 'key.csr', keyId: 'K' }, { durable: true }), 'ERR_AUDIT_WRITE_FAILED');
    await refusal(log.stage([]), 'ERR_AUDIT_WRITE_FAILED');
    await log.close();
  });

  it('closing again after the final write failed reports the failure again', async () => {
    const { log, arm } = await failing(new Error('EIO'));
    await log.append(used(1), { durable: false });
    arm();
    await refusal(log.close(), 'ERR_AUDIT_WRITE_FAILED');
    await refusal(log.close(), 'ERR_AUDIT_WRITE_FAILED');
  });

  it('a failure thrown as null is reported; a long message is cut to 200 characters', async () => {
    const nothing = await failing(null);
    nothing.arm();
    expect((await refusal(nothing.log.append(used(1), { durable: true }), 'ERR_AUDIT_WRITE_FAILED')).context).toEqual({ detail: 'null' });
    await nothing.log.close();
    const long = await failing(new Error('E'.repeat(300)));
    long.arm();
    expect((await refusal(long.log.append(used(1), { durable: true }), 'ERR_AUDIT_WRITE_FAILED')).context).toEqual({ detail: 'E'.repeat(200) });
    await long.log.close();
  });

  it('the longest record of every type is far under the line limit, so the writer needs no length check', async () => {
    const id = 'I'.repeat(128);
    const hex = 'F'.repeat(128);
    const text = '\ud800'.repeat(128); // 6 bytes each, escaped: the longest text there is
    const big = Number.MAX_SAFE_INTEGER;
    const events: AuditEvent[] = [
      { type: 'organisation.created', entityId: ORG, role: 2 },
      { type: 'portfolio.created', organisation: ORG, portfolioId: id, name: text, wholeEstate: ['signing', 'keyAgreement', 'prepaymentKeyAgreement', 'xmlSigning'] },
      { type: 'key.generated', keyId: id, organisation: ORG, portfolioId: id, purpose: 'prepaymentKeyAgreement', generation: big, backend: id },
      { type: 'key.csr', keyId: id },
      { type: 'certificate.attached', keyId: id, serialNumber: hex, fingerprint: hex },
      { type: 'key.rotated', organisation: ORG, portfolioId: id, purpose: 'prepaymentKeyAgreement', fromKeyId: id, toKeyId: id, devicesToUpdate: big },
      { type: 'key.retired', keyId: id },
      { type: 'key.revoked', keyId: id, reason: text },
      { type: 'device.assigned', organisation: ORG, device: DEV, portfolioId: id },
      { type: 'device.moved', organisation: ORG, device: DEV, fromPortfolioId: id, toPortfolioId: id },
      { type: 'device.credentials-updated', device: DEV, purpose: 'prepaymentKeyAgreement', keyId: id },
      { type: 'key.used', operation: 'keyAgreement', keyId: id, portfolioId: id, device: DEV, messageCode: 0xffff, counter: (1n << 64n) - 1n },
      { type: 'key.used', operation: 'xml-sign', keyId: id, portfolioId: id, requestId: id },
      { type: 'store.opened', recoveredRecords: big, tornBytesRemoved: big, reappliedRecords: big, completedRecords: big },
    ];
    const { log } = await freshLog();
    for (const e of events) await log.append(e, { durable: true });
    const head = log.head();
    await log.close();
    const lines = readFileSync(log.path, 'utf8').split('\n').slice(0, -1);
    expect(lines).toHaveLength(14);
    // even with a 16-digit seq, each is under 2 KiB
    for (const l of lines) expect(Buffer.byteLength(l) + 15).toBeLessThan(2048);
    expect(await verifyAuditLog(log.path, { key: KEY, head })).toMatchObject({ ok: true, count: 14 });
  });
});
