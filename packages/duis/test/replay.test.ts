// Anti-replay of DUIS request ids (docs/domain.md §6, §8): a request id is a counter per
// (originator, target); the signed pre-command that answers a service request reuses its id and
// is accepted once, only after that request. Durable on SQLite across a restart and exact under
// processes racing on one file; the User's own request counter strictly increases across
// processes and clock steps.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import { MemoryStateStore, SqliteStateStore } from '@smki/store';
import type { StateStore } from '@smki/store';
import { claimRequestId, formatRequestId, parseRequestId, signRequest, verifyDuis } from '../src/index.js';
import { DEVICE, USER, fixture, request } from './_fixture.js';
import type { Fixture } from './_fixture.js';

// The certificates and CRLs are issued when the tests start; the clock of the checks is a second
// after the latest of them (set in beforeAll).
let NOW = 0;
const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_duis-child.ts');
let f: Fixture;
let dir: string;
beforeAll(async () => {
  f = await fixture();
  dir = mkdtempSync(join(tmpdir(), 'duis-replay-'));
  NOW = Math.max(f.user.certificate.notBefore.getTime(), ...f.crls.map((c) => c.thisUpdate.getTime())) + 1000;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const id = (counter: number | bigint, target = DEVICE) => formatRequestId({ originator: parseEui64(USER), target: parseEui64(target), counter: BigInt(counter) });
const signedAt = async (counter: number, body = '<sr:DisableSupply/>', target = DEVICE) => (await signRequest(request(body, { requestId: id(counter, target) }), f.user.signer, f.user.certificate)).xml;
const SPC = '<sr:SignedPreCommand><sr:GBCSPayload>3wk=</sr:GBCSPayload></sr:SignedPreCommand>';

async function outcome(xml: string, store: StateStore, extra: object = {}): Promise<string> {
  try {
    await verifyDuis(xml, f.trust, { expect: 'request', now: new Date(NOW), replay: { store, ...extra } });
    return 'accepted';
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
}

describe('request ids are claimed once, and signed pre-commands only after their request', () => {
  it('the same request twice, then an older one', async () => {
    const store = new MemoryStateStore();
    expect(await outcome(await signedAt(NOW), store)).toBe('accepted');
    expect(await outcome(await signedAt(NOW), store)).toBe('ERR_DUIS_REPLAYED');
    expect(await outcome(await signedAt(NOW - 1), store)).toBe('ERR_DUIS_REPLAYED');
    expect(await outcome(await signedAt(NOW + 1), store)).toBe('accepted');
  });

  it('counters are per originator and target', async () => {
    const store = new MemoryStateStore();
    expect(await outcome(await signedAt(NOW), store)).toBe('accepted');
    expect(await outcome(await signedAt(NOW, '<sr:DisableSupply/>', '00DB1234567890A1'), store)).toBe('accepted');
  });

  it('the signed pre-command with its request id is accepted once, after the request', async () => {
    const store = new MemoryStateStore();
    const spc = await signedAt(NOW, SPC);
    expect(await outcome(spc, store)).toBe('ERR_DUIS_PRECOMMAND_UNEXPECTED');
    expect(await outcome(await signedAt(NOW), store)).toBe('accepted');
    expect(await outcome(spc, store)).toBe('accepted');
    expect(await outcome(spc, store)).toBe('ERR_DUIS_REPLAYED');
    // The service request cannot come again after its pre-command was signed.
    expect(await outcome(await signedAt(NOW), store)).toBe('ERR_DUIS_REPLAYED');
  });

  it('a signed pre-command for an older request, once a newer one was accepted, is refused', async () => {
    const store = new MemoryStateStore();
    expect(await outcome(await signedAt(NOW), store)).toBe('accepted');
    expect(await outcome(await signedAt(NOW + 5), store)).toBe('accepted');
    expect(await outcome(await signedAt(NOW, SPC), store)).toBe('ERR_DUIS_PRECOMMAND_UNEXPECTED');
    expect(await outcome(await signedAt(NOW + 5, SPC), store)).toBe('accepted');
  });

  it('stale and future counters, with the window configurable', async () => {
    const store = new MemoryStateStore();
    expect(await outcome(await signedAt(NOW - 3_600_001), store)).toBe('ERR_DUIS_STALE');
    expect(await outcome(await signedAt(NOW + 300_001), store)).toBe('ERR_DUIS_STALE');
    expect(await outcome(await signedAt(NOW - 3_600_000), store)).toBe('accepted');
    expect(await outcome(await signedAt(NOW - 10), store, { maxAgeMs: 5 })).toBe('ERR_DUIS_STALE');
    expect(await outcome(await signedAt(NOW + 10), store, { maxFutureMs: 5 })).toBe('ERR_DUIS_STALE');
    expect(await outcome(await signedAt(NOW + 300_000), store)).toBe('accepted');
    expect(await store.lastCounter(parseEui64(USER), parseEui64(DEVICE))).toBe(BigInt(NOW + 300_000) * 2n);
  });

  it('a refusal for any other reason claims nothing', async () => {
    const store = new MemoryStateStore();
    const good = await signedAt(NOW);
    expect(await outcome(good.replace('<sr:CommandVariant>4<', '<sr:CommandVariant>5<'), store)).toBe('ERR_DUIS_DIGEST_MISMATCH');
    expect(await outcome(good.replace(/<ds:SignatureValue>./, '<ds:SignatureValue>B'), store)).not.toBe('accepted');
    expect(await store.lastCounter(parseEui64(USER), parseEui64(DEVICE))).toBeUndefined();
    expect(await outcome(good, store)).toBe('accepted');
  });

  it('claimRequestId claims a Request verified without replay, after the caller s own checks', async () => {
    const store = new MemoryStateStore();
    const verified = await verifyDuis(await signedAt(NOW), f.trust, { expect: 'request', now: new Date(NOW) });
    expect(await store.lastCounter(parseEui64(USER), parseEui64(DEVICE))).toBeUndefined();
    await claimRequestId({ store }, verified, new Date(NOW));
    await expect(claimRequestId({ store }, verified, new Date(NOW))).rejects.toMatchObject({ code: 'ERR_DUIS_REPLAYED' });
    await expect(claimRequestId({ store }, { ...verified, kind: 'response' }, new Date(NOW))).rejects.toMatchObject({ code: 'ERR_DUIS_DOCUMENT_KIND' });
    await expect(claimRequestId({ store }, verified, new Date(NOW + 7_200_000))).rejects.toMatchObject({ code: 'ERR_DUIS_STALE' });
    await expect(claimRequestId({} as never, verified)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('survives a restart on SQLite', async () => {
    const path = join(dir, 'restart.db');
    let store = await SqliteStateStore.open({ path });
    expect(await outcome(await signedAt(NOW), store)).toBe('accepted');
    await store.close();
    store = await SqliteStateStore.open({ path });
    expect(await outcome(await signedAt(NOW), store)).toBe('ERR_DUIS_REPLAYED');
    expect(await outcome(await signedAt(NOW, SPC), store)).toBe('accepted');
    await store.close();
  });
});

function runChild(job: object, startFile: string): Promise<{ lines: { status: string; counter?: string }[]; stderr: string }> {
  const jobFile = join(dir, `job-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(jobFile, JSON.stringify(job));
  const p = spawn(process.execPath, ['--import', 'tsx', CHILD, jobFile, startFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) =>
    p.on('exit', () => resolve({ lines: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { status: string; counter?: string }), stderr: err })),
  );
}

describe('real processes on one SQLite file', () => {
  const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
  const common = () => ({
    certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, f.user.certificate].map((c) => b64(c.der)),
    crls: f.crls.map((c) => b64(c.der)),
    now: NOW,
  });

  it('two verifiers racing over the same requests accept each exactly once', async () => {
    const db = join(dir, 'race.db');
    await (await SqliteStateStore.open({ path: db })).close();
    const documents: string[] = [];
    for (let i = 0; i < 20; i++) documents.push(await signedAt(NOW + i));
    const start = join(dir, 'race.start');
    const children = [runChild({ ...common(), mode: 'verify', db, documents }, start), runChild({ ...common(), mode: 'verify', db, documents }, start)];
    writeFileSync(start, '');
    const [a, b] = await Promise.all(children);
    expect(a!.lines, a!.stderr).toHaveLength(20);
    expect(b!.lines, b!.stderr).toHaveLength(20);
    for (let i = 0; i < 20; i++) {
      const statuses = [a!.lines[i]!.status, b!.lines[i]!.status].sort();
      // Each request is accepted by at most one process; a process that lost a race for a later
      // counter may refuse an earlier one it reaches afterwards, so none is accepted twice.
      expect(statuses.filter((s) => s === 'accepted').length).toBeLessThanOrEqual(1);
      expect(statuses.every((s) => s === 'accepted' || s === 'ERR_DUIS_REPLAYED')).toBe(true);
    }
    const accepted = [...a!.lines, ...b!.lines].filter((l) => l.status === 'accepted').map((l) => l.counter);
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(accepted).toContain(String(NOW + 19));
  }, 120_000);

  it('two signers sharing the request counter never sign the same id, even with the clock behind', async () => {
    const db = join(dir, 'sign.db');
    const store = await SqliteStateStore.open({ path: db });
    const first = await signRequest(request(), f.user.signer, f.user.certificate, { requestCounter: { store, now: () => NOW + 1000 } });
    expect(first.requestId.counter).toBe(BigInt(NOW + 1000));
    expect(parseRequestId(/<sr:RequestID>([^<]+)</.exec(first.xml)![1]!).counter).toBe(BigInt(NOW + 1000));
    await verifyDuis(first.xml, f.trust, { expect: 'request', now: new Date(NOW) });
    await store.close();
    const start = join(dir, 'sign.start');
    const job = { ...common(), mode: 'sign', db, documents: Array.from({ length: 15 }, () => request()), key: f.user.key.export({ type: 'pkcs8', format: 'pem' }), certificate: b64(f.user.certificate.der) };
    const children = [runChild(job, start), runChild(job, start)];
    writeFileSync(start, '');
    const [a, b] = await Promise.all(children);
    const counters = [...a!.lines, ...b!.lines].map((l) => {
      expect(l.status, a!.stderr + b!.stderr).toBe('signed');
      return BigInt(l.counter!);
    });
    expect(counters).toHaveLength(30);
    expect(new Set(counters).size).toBe(30);
    // The clock says NOW; the store had NOW + 1000: every id is later than that.
    expect(counters.every((c) => c > BigInt(NOW + 1000))).toBe(true);
    for (const lines of [a!.lines, b!.lines]) {
      const mine = lines.map((l) => BigInt(l.counter!));
      expect(mine).toEqual([...mine].sort((x, y) => (x < y ? -1 : 1)));
    }
  }, 120_000);
});
