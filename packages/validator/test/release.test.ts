// Quarantine release re-runs the decision (docs/validator.md, anomaly detection and quarantine):
// a held command whose signer was revoked meanwhile, or whose counter was overtaken, is refused
// on release and stays as it was; releases and discards are logged with the operator.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { verifyAuditLog } from '@smki/keystore';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA, type Decision } from '../src/index.js';
import { LOG_KEY, SUPPLIER, buildWorld, disconnect, memoryStores, openValidator, tempDir, type World } from './_world.js';

let world: World;
beforeAll(async () => {
  world = await buildWorld({ meters: 3 });
});

const held = (d: Decision) => {
  expect(d.outcome).toBe('quarantined');
  return d as Extract<Decision, { outcome: 'quarantined' }>;
};

describe('release', () => {
  it('re-checks the path: a signer revoked since the quarantine is refused, and the record stays held', async () => {
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { anomalyThreshold: () => ({ limit: 0, windowMs: 60_000 }) });
    const q = held(await v.validate(await disconnect(world, world.meters[0]!, BigInt(world.now.getTime())), { sender: SUPPLIER }));
    v.updateTrust({ certificates: world.certificates, crls: await world.crlsWith({ revoked: [world.portfolios[0]!.certificate], crlNumber: 9n }) });
    const r = await v.release(q.quarantineId, 'alice');
    expect((r as { code: string }).code).toBe('ERR_COMMAND_SIGNER_REVOKED');
    expect((await stores.store.quarantineRecord(q.quarantineId))?.state).toBe('held');
    expect(await stores.store.lastCounter(SUPPLIER, world.meters[0]!.eui)).toBeUndefined();
    await v.close();
  });

  it('a held command overtaken by a later accepted counter is refused as a replay on release', async () => {
    const stores = await memoryStores(world);
    let limit = 0;
    const v = await openValidator(world, stores, { anomalyThreshold: () => ({ limit, windowMs: 60_000 }) });
    const c = BigInt(world.now.getTime());
    const q = held(await v.validate(await disconnect(world, world.meters[1]!, c - 5n), { sender: SUPPLIER }));
    limit = 10;
    expect((await v.validate(await disconnect(world, world.meters[1]!, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    const r = await v.release(q.quarantineId, 'alice');
    expect((r as { code: string }).code).toBe('ERR_COMMAND_REPLAYED');
    expect((await stores.store.quarantineRecord(q.quarantineId))?.state).toBe('held');
    await v.close();
  });

  it('logs releases and discards with the operator', async () => {
    const dir = tempDir();
    const v = await openValidator(world, await memoryStores(world), { dir, anomalyThreshold: () => ({ limit: 0, windowMs: 60_000 }) });
    const c = BigInt(world.now.getTime());
    const a = held(await v.validate(await disconnect(world, world.meters[0]!, c), { sender: SUPPLIER }));
    const b = held(await v.validate(await disconnect(world, world.meters[1]!, c), { sender: SUPPLIER }));
    expect((await v.release(a.quarantineId, 'alice')).outcome).toBe('accepted');
    expect(await v.discard(b.quarantineId, 'bob')).toBe(true);
    await expect(v.release(a.quarantineId, 'x\u0000')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await v.close();
    const lines = (await import('node:fs')).readFileSync(join(dir, DECISION_LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l['type'])).toEqual(['command.quarantined', 'command.quarantined', 'command.accepted', 'quarantine.discarded']);
    expect(lines[2]).toMatchObject({ released: a.quarantineId, operator: 'alice' });
    expect(lines[3]).toMatchObject({ quarantineId: b.quarantineId, operator: 'bob' });
    expect((await verifyAuditLog(join(dir, DECISION_LOG_FILE), { key: LOG_KEY, schema: DECISION_LOG_SCHEMA })).ok).toBe(true);
  });
});
