// Anti-replay of DUIS request ids (docs/domain.md §6, §8): a request id is a counter per
// (originator, target); the signed pre-command that answers a service request reuses its id and
// is accepted once, only after that request. Durable on SQLite across a restart and exact under
// processes racing on one file; the User's own request counter strictly increases across
// processes and clock steps (replay-processes.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
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

  it('the request counter sets the header s own request id, not an element of that name deeper in the header', async () => {
    const store = new MemoryStateStore();
    // The other element comes first in document order.
    const nested = request().replace('<sr:Header>', `<sr:Header><sr:Extra><sr:RequestID>${id(5)}</sr:RequestID></sr:Extra>`);
    const s = await signRequest(nested, f.user.signer, f.user.certificate, { requestCounter: { store, now: () => NOW } });
    expect(s.requestId.counter).toBe(BigInt(NOW));
    const v = await verifyDuis(s.xml, f.trust, { expect: 'request', now: new Date(NOW) });
    expect(v.counter).toBe(BigInt(NOW));
    expect(v.requestIdText).toBe(s.requestIdText);
    expect(s.xml).toContain(`<sr:Extra><sr:RequestID>${id(5)}</sr:RequestID></sr:Extra>`);
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

