// The validator in Dual Control Organisation mode (SMETS1; docs/validator.md, docs/smets1.md):
// the same checks, then the command and the decision counter-signed in a CMS envelope (RFC 5652)
// whose own counter the store allocates in the same commit; anomalies are flagged, never held; the
// adapter's check (verifyDcoEnvelope) accepts the envelope once.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEui64 } from '@smki/core';
import { issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { verifyAuditLog } from '@smki/keystore';
import { MemoryStateStore } from '@smki/store';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA, verifyDcoEnvelope, type Decision } from '../src/index.js';
import { LOG_KEY, SUPPLIER, buildWorld, disconnect, keyPair, memoryStores, openValidator, tempDir, type KeyPair, type World } from './_world.js';
import { join } from 'node:path';

const DCO = parseEui64('90B3D51F300D0000');
let world: World;
let dcoKey: KeyPair;
let dcoCert: SmkiCertificate;

beforeAll(async () => {
  world = await buildWorld({ meters: 3 });
  dcoKey = keyPair();
  dcoCert = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 127, entityId: DCO, keyUsage: 'digitalSignature', publicKey: dcoKey.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
});

const accepted = (d: Decision) => {
  expect(d.outcome, JSON.stringify(d, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).toBe('accepted');
  return d as Extract<Decision, { outcome: 'accepted' }>;
};

describe('DCO mode', () => {
  it('counter-signs accepted commands in envelopes the adapter accepts once, with increasing envelope counters', async () => {
    const dir = tempDir();
    const v = await openValidator(world, await memoryStores(world), { dir, acb: undefined as never, dco: { signer: dcoKey.signer, certificate: dcoCert } });
    const m = world.meters[0]!;
    const c = BigInt(world.now.getTime());
    const first = await disconnect(world, m, c - 10n);
    const d1 = accepted(await v.validate(first, { sender: SUPPLIER }));
    const d2 = accepted(await v.validate(await disconnect(world, m, c - 5n), { sender: SUPPLIER }));
    expect(d1.dco?.anomaly).toBe(false);
    expect(d2.dco!.envelopeCounter).toBeGreaterThan(d1.dco!.envelopeCounter);
    expect(d1.dco!.envelopeCounter).toBeGreaterThanOrEqual(BigInt(world.now.getTime()));
    const adapter = new MemoryStateStore();
    const now = () => world.now;
    const v1 = await verifyDcoEnvelope(d1.frame, { trust: [dcoCert], store: adapter, now });
    expect(v1.counter).toBe(d1.dco!.envelopeCounter);
    expect(v1.decision.outcome).toBe('accepted');
    expect(v1.decision.originatorCounter).toBe(c - 10n);
    expect(Buffer.from(v1.command).equals(Buffer.from(first))).toBe(true);
    await verifyDcoEnvelope(d2.frame, { trust: [dcoCert], store: adapter, now });
    await expect(verifyDcoEnvelope(d1.frame, { trust: [dcoCert], store: adapter, now })).rejects.toMatchObject({ code: 'ERR_DCO_REPLAYED' });
    // The same checks as SMETS2: a replay and a wrong portfolio key are refused.
    expect((await v.validate(await disconnect(world, m, c - 10n), { sender: SUPPLIER })).outcome).toBe('rejected');
    const wrong = await v.validate(await disconnect(world, m, c, world.portfolios[1]!.signer), { sender: SUPPLIER });
    expect((wrong as { code: string }).code).toBe('ERR_COMMAND_PORTFOLIO_MISMATCH');
    await v.close();
    const log = await verifyAuditLog(join(dir, DECISION_LOG_FILE), { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
    expect(log.ok).toBe(true);
    expect(log.count).toBe(4);
  });

  it('flags an anomaly in the envelope and does not hold the command', async () => {
    const v = await openValidator(world, await memoryStores(world), {
      acb: undefined as never,
      dco: { signer: dcoKey.signer, certificate: dcoCert },
      anomalyThreshold: () => ({ limit: 1, windowMs: 3600_000 }),
    });
    const c = BigInt(world.now.getTime());
    const d1 = accepted(await v.validate(await disconnect(world, world.meters[0]!, c), { sender: SUPPLIER }));
    const d2 = accepted(await v.validate(await disconnect(world, world.meters[1]!, c), { sender: SUPPLIER }));
    expect([d1.dco?.anomaly, d2.dco?.anomaly]).toEqual([false, true]);
    const verified = await verifyDcoEnvelope(d2.frame, { trust: [dcoCert], store: new MemoryStateStore(), now: () => world.now });
    expect(verified.decision.outcome).toBe('anomaly');
    expect(v.stats()).toEqual({ accepted: 2, quarantined: 0, rejected: {} });
    await v.close();
  });

  it('a DCO signer that fails leaves the command rejected (ERR_COMMAND_COUNTER_SIGN_FAILED), logged; the counter stays used', async () => {
    const dir = tempDir();
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { dir, acb: undefined as never, dco: { signer: { publicKey: dcoKey.signer.publicKey, sign: () => Promise.reject(new Error('HSM gone')) }, certificate: dcoCert } });
    const c = BigInt(world.now.getTime());
    const d = await v.validate(await disconnect(world, world.meters[0]!, c), { sender: SUPPLIER });
    expect((d as { code: string }).code).toBe('ERR_COMMAND_COUNTER_SIGN_FAILED');
    expect(await stores.store.lastCounter(SUPPLIER, world.meters[0]!.eui)).toBe(c);
    expect(v.stats()).toEqual({ accepted: 0, quarantined: 0, rejected: { ERR_COMMAND_COUNTER_SIGN_FAILED: 1 } });
    await v.close();
    const log = await verifyAuditLog(join(dir, DECISION_LOG_FILE), { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
    expect(log.ok).toBe(true);
    expect(log.count).toBe(2);
  });

  it('releases nothing: a DCO quarantines nothing, and a release would need an envelope counter it must not allocate', async () => {
    const v = await openValidator(world, await memoryStores(world), { acb: undefined as never, dco: { signer: dcoKey.signer, certificate: dcoCert } });
    await expect(v.release('00000000-0000-4000-8000-000000000000', 'alice')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await v.close();
  });

  it('exactly one of acb and dco', async () => {
    const stores = await memoryStores(world);
    await expect(openValidator(world, stores, { dco: { signer: dcoKey.signer, certificate: dcoCert } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(openValidator(world, stores, { acb: undefined as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(openValidator(world, stores, { acb: undefined as never, dco: { signer: dcoKey.signer, certificate: world.acb.certificate } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
