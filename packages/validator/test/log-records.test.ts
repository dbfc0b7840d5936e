// What the decision log says of each decision (docs/validator.md "The commit and the decision
// log"): every record's fields, for every kind of decision, read back from the verified file. An
// auditor reads these records, so a record that named the wrong signer, dropped the operator of
// a release or the limit of a quarantine would mislead exactly the person the log is for.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEui64 } from '@smki/core';
import { verifyAuditLog } from '@smki/keystore';
import { buildGeneralSigning, createCatalogue } from '@smki/gbcs';
import { issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { DECISION_LOG_SCHEMA, type Decision, type Validator } from '../src/index.js';
import { LOG_KEY, SUPPLIER, buildWorld, disconnect, keyPair, memoryStores, openValidator, tempDir, type KeyPair, type World } from './_world.js';
import { expectRejectedAt } from './_expect.js';

let world: World;
beforeAll(async () => {
  world = await buildWorld({ meters: 4 });
});
const NOW = () => BigInt(world.now.getTime());
const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').toUpperCase();

/** The log's records (after it verifies), without the chain fields. */
async function records(v: Validator): Promise<Record<string, unknown>[]> {
  const path = v.logHead().path;
  await v.close();
  const verified = await verifyAuditLog(path, { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
  expect(verified.ok).toBe(true);
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { seq: _s, at, prev: _p, mac: _m, ...r } = JSON.parse(l) as Record<string, unknown>;
      // Stamped by the validator's clock (options.now), not the machine's.
      expect(at).toBe(world.now.toISOString());
      return r;
    });
}

describe('decision log records', () => {
  it('a rejection after the command parsed: the decision and its record carry originator, device, message code and counter', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir() });
    const m = world.meters[2]!;
    const c = NOW() + 7n;
    const bytes = await disconnect(world, m, c, world.portfolios[(m.portfolio + 1) % world.portfolios.length]!.signer);
    const d = await v.validate(bytes, { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_PORTFOLIO_MISMATCH');
    expect(d).toMatchObject({ originator: SUPPLIER, device: m.eui, messageCode: 0x0050, counter: c });
    expect(await records(v)).toEqual([
      { type: 'command.rejected', sender: SUPPLIER, code: 'ERR_COMMAND_PORTFOLIO_MISMATCH', step: 'signature', originator: SUPPLIER, device: m.eui, messageCode: 0x0050, counter: String(c), commandHash: hash(bytes) },
    ]);
  });

  it('accepted (critical and not), replayed, quarantined, released, a failed release, a sender that is no EUI-64', async () => {
    const catalogue = createCatalogue([
      { code: 0x0400, useCase: 'XR01', name: 'a read (test entry)', duisService: '4.x', deviceType: 'any', eligibleRoles: ['IS', 'GS'], critical: false, acbOriginated: false },
    ]);
    const v = await openValidator(world, await memoryStores(world), {
      dir: tempDir(),
      catalogue,
      anomalyThreshold: (_u, code) => (code === 0x0050 ? { limit: 1, windowMs: 3600_000 } : undefined),
    });
    const [m0, m1] = world.meters as [World['meters'][0], World['meters'][0]];
    const c = NOW();
    const signerOf = (m: typeof m0) => world.portfolios[m.portfolio]!.certificate.serialNumber;
    const facts = (m: typeof m0, counter: bigint, code: number) => ({ originator: SUPPLIER, device: m.eui, messageCode: code, counter: String(counter) });

    const d1 = await disconnect(world, m0, c);
    expect((await v.validate(d1, { sender: SUPPLIER })).outcome).toBe('accepted');
    const replayed = await v.validate(d1, { sender: SUPPLIER });
    expectRejectedAt(replayed, 'ERR_COMMAND_REPLAYED');
    expect((replayed as { message: string }).message).toBe(`counter ${c} is not greater than ${c}, the last accepted`);
    const read = buildGeneralSigning({ cra: 'command', originatorCounter: c + 1n, originator: SUPPLIER, recipient: m0.eui, messageCode: 0x0400, payload: Uint8Array.of(0x01, 0x09, 0x00), signatureField: 'empty' });
    const readDecision = await v.validate(read, { sender: SUPPLIER });
    expect(readDecision).toMatchObject({ outcome: 'accepted', critical: false });
    expect(readDecision).not.toHaveProperty('signerSerial');
    const d2 = await disconnect(world, m1, c);
    const q = (await v.validate(d2, { sender: SUPPLIER })) as Extract<Decision, { outcome: 'quarantined' }>;
    expect(q).toMatchObject({ outcome: 'quarantined', count: 1, limit: 1, step: 'anomaly' });
    const released = await v.release(q.quarantineId, 'alice');
    expect(released).toMatchObject({ outcome: 'accepted', released: q.quarantineId, signerSerial: signerOf(m1) });
    expect(released).not.toHaveProperty('dco');
    const again = await v.release(q.quarantineId, 'bob');
    expectRejectedAt(again, 'ERR_QUARANTINE_NOT_HELD');
    expect(again).toMatchObject({ originator: SUPPLIER, device: m1.eui, messageCode: 0x0050, counter: c });
    expectRejectedAt(await v.validate(d1, { sender: 'not a sender' }), 'ERR_COMMAND_SENDER_MISMATCH');

    expect(await records(v)).toEqual([
      { type: 'command.accepted', sender: SUPPLIER, ...facts(m0, c, 0x0050), role: 2, critical: 'critical', signerSerial: signerOf(m0), commandHash: hash(d1) },
      { type: 'command.rejected', sender: SUPPLIER, code: 'ERR_COMMAND_REPLAYED', step: 'replay', ...facts(m0, c, 0x0050), commandHash: hash(d1) },
      { type: 'command.accepted', sender: SUPPLIER, ...facts(m0, c + 1n, 0x0400), role: 2, critical: 'non-critical', commandHash: hash(read) },
      { type: 'command.quarantined', sender: SUPPLIER, ...facts(m1, c, 0x0050), quarantineId: q.quarantineId, count: 1, limit: 1, commandHash: hash(d2) },
      { type: 'command.accepted', sender: SUPPLIER, ...facts(m1, c, 0x0050), role: 2, critical: 'critical', signerSerial: signerOf(m1), commandHash: hash(d2), released: q.quarantineId, operator: 'alice' },
      // A release of a record no longer held is refused before its command is checked again: the
      // record names the command's sender and facts, its hash, the quarantine record and the operator.
      { type: 'command.rejected', sender: SUPPLIER, code: 'ERR_QUARANTINE_NOT_HELD', step: 'anomaly', ...facts(m1, c, 0x0050), commandHash: hash(d2), released: q.quarantineId, operator: 'bob' },
      { type: 'command.rejected', sender: '0000000000000000', code: 'ERR_COMMAND_SENDER_MISMATCH', step: 'parse', commandHash: hash(d1) },
    ]);
  });

  it('DCO mode: command.countersigned with the envelope counter, and the anomaly flag', async () => {
    const DCO = parseEui64('90B3D51F300D0000');
    const dcoKey: KeyPair = keyPair();
    const dcoCert: SmkiCertificate = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 127, entityId: DCO, keyUsage: 'digitalSignature', publicKey: dcoKey.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
    const v = await openValidator(world, await memoryStores(world), {
      dir: tempDir(),
      acb: undefined as never,
      dco: { signer: dcoKey.signer, certificate: dcoCert },
      anomalyThreshold: () => ({ limit: 1, windowMs: 60_000 }),
    });
    const [m0, m1] = world.meters as [World['meters'][0], World['meters'][0]];
    const c = NOW();
    const a = (await v.validate(await disconnect(world, m0, c), { sender: SUPPLIER })) as Extract<Decision, { outcome: 'accepted' }>;
    const b = (await v.validate(await disconnect(world, m1, c), { sender: SUPPLIER })) as Extract<Decision, { outcome: 'accepted' }>;
    expect(a.dco).toEqual({ envelopeCounter: NOW(), anomaly: false });
    expect(b.dco).toEqual({ envelopeCounter: NOW(), anomaly: true });
    const r = await records(v);
    expect(r.map((x) => [x['type'], x['envelopeCounter'], x['anomaly'], x['critical']])).toEqual([
      ['command.countersigned', String(NOW()), 'none', 'critical'],
      ['command.countersigned', String(NOW()), 'anomaly', 'critical'],
    ]);
    expect(r[0]).toHaveProperty('signerSerial', world.portfolios[m0.portfolio]!.certificate.serialNumber);
  });

  it('a release whose record is discarded while it runs: ERR_QUARANTINE_NOT_HELD from the commit, with the command\'s facts', async () => {
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { dir: tempDir(), anomalyThreshold: () => ({ limit: 0, windowMs: 60_000 }) });
    const m = world.meters[2]!;
    const d = await disconnect(world, m, NOW());
    const q = (await v.validate(d, { sender: SUPPLIER })) as Extract<Decision, { outcome: 'quarantined' }>;
    expect(q).toMatchObject({ outcome: 'quarantined', count: 0, limit: 0 });
    const pending = v.release(q.quarantineId, 'carol');
    expect(await stores.store.discardQuarantine(q.quarantineId)).toBe(true);
    const r = await pending;
    expectRejectedAt(r, 'ERR_QUARANTINE_NOT_HELD');
    expect(r).toMatchObject({ device: m.eui, originator: SUPPLIER, counter: NOW() });
    expect((r as { message: string }).message).toContain(q.quarantineId);
    const log = await records(v);
    expect(log[1]).toEqual({
      type: 'command.rejected',
      sender: SUPPLIER,
      code: 'ERR_QUARANTINE_NOT_HELD',
      step: 'anomaly',
      originator: SUPPLIER,
      device: m.eui,
      messageCode: 0x0050,
      counter: String(NOW()),
      commandHash: hash(d),
      released: q.quarantineId,
      operator: 'carol',
    });
  });

  it('DCO mode: a device whose envelope counters are used up is refused (ERR_COMMAND_COUNTER_SIGN_FAILED), logged as such', async () => {
    const DCO = parseEui64('90B3D51F300D0000');
    const dcoKey: KeyPair = keyPair();
    const dcoCert: SmkiCertificate = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 127, entityId: DCO, keyUsage: 'digitalSignature', publicKey: dcoKey.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
    const stores = await memoryStores(world);
    const m = world.meters[3]!;
    await stores.store.commit([{ counter: { originator: DCO, device: m.eui, value: (1n << 64n) - 1n } }]);
    const v = await openValidator(world, stores, { dir: tempDir(), acb: undefined as never, dco: { signer: dcoKey.signer, certificate: dcoCert } });
    const r = await v.validate(await disconnect(world, m, NOW()), { sender: SUPPLIER });
    expectRejectedAt(r, 'ERR_COMMAND_COUNTER_SIGN_FAILED');
    expect((r as { message: string }).message).toMatch(/exhausted/);
    expect(await stores.store.lastCounter(SUPPLIER, m.eui)).toBeUndefined();
    expect((await records(v)).map((x) => [x['type'], x['code'], x['step']])).toEqual([['command.rejected', 'ERR_COMMAND_COUNTER_SIGN_FAILED', 'counter-sign']]);
  });

  it('a discard is logged with the record and the operator', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir(), anomalyThreshold: () => ({ limit: 0, windowMs: 60_000 }) });
    const q = (await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })) as Extract<Decision, { outcome: 'quarantined' }>;
    expect(await v.discard(q.quarantineId, 'erin')).toBe(true);
    expect((await records(v))[1]).toEqual({ type: 'quarantine.discarded', quarantineId: q.quarantineId, operator: 'erin' });
  });
});
