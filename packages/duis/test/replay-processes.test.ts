// Anti-replay of DUIS request ids and the User's request counter across real processes on one
// SQLite file (docs/domain.md §6, §8): processes racing to verify the same requests accept each at
// most once; processes signing with one request counter never reuse an id, even with the clock
// behind the store. (Apart from replay.test.ts: the code runs in child processes, which mutation
// testing cannot reach.)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEui64 } from '@smki/core';
import { SqliteStateStore } from '@smki/store';
import { formatRequestId, parseRequestId, signRequest, verifyDuis } from '../src/index.js';
import { DEVICE, USER, fixture, request } from './_fixture.js';
import type { Fixture } from './_fixture.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_duis-child.ts');
let f: Fixture;
let dir: string;
let NOW = 0;
beforeAll(async () => {
  f = await fixture();
  dir = mkdtempSync(join(tmpdir(), 'duis-proc-'));
  NOW = Math.max(f.user.certificate.notBefore.getTime(), ...f.crls.map((c) => c.thisUpdate.getTime())) + 1000;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const id = (counter: number | bigint, target = DEVICE) => formatRequestId({ originator: parseEui64(USER), target: parseEui64(target), counter: BigInt(counter) });
const signedAt = async (counter: number) => (await signRequest(request('<sr:DisableSupply/>', { requestId: id(counter) }), f.user.signer, f.user.certificate)).xml;

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
