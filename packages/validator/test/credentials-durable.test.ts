// Durable CS02b answers (docs/validator.md, CS02b; docs/domain.md §9): an accepted CS02b command
// is pending in the state store from the commit that accepted it, so a validator opened afresh
// over the same SQLite file or PostgreSQL schema (a restart, another process) applies the
// device's answer; an answer is applied once; an unknown, refused or quarantined command leaves
// nothing pending; a crash between the registry's move and the removal of the pending command
// is repaired by applying the same answer again. Real stores (a PostgreSQL server for this file).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SmkiError, isSmkiError } from '@smki/core';
import {
  MemoryFirmwareAllowlist,
  PostgresDeviceRegistry,
  PostgresStateStore,
  SqliteDeviceRegistry,
  SqliteStateStore,
  type DeviceRegistry,
  type StateStore,
} from '@smki/store';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { Validator } from '../src/index.js';
import { RECOVERY, cs02bFixture, type Cs02bFixture } from './_cs02b.js';
import { SUPPLIER, openValidator, tempDir, type Stores } from './_world.js';

const { pg, dir: work } = postgresForThisFile('smki-validator-cs02b-');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').toUpperCase();

let f: Cs02bFixture;
beforeAll(async () => {
  f = await cs02bFixture();
});

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? e.code : e),
  );
}

let k = 0;
interface Place {
  /** Open the state store and registry (a new connection each time). */
  open(): Promise<Stores>;
}
const PLACES: [string, () => Place][] = [
  [
    'SQLite',
    () => {
      const path = join(work, `s${++k}.db`);
      return {
        open: async () => ({ store: await SqliteStateStore.open({ path }), registry: await SqliteDeviceRegistry.open({ path }), firmware: new MemoryFirmwareAllowlist() }),
      };
    },
  ],
  [
    'PostgreSQL',
    () => {
      const schema = `cs${++k}`;
      return {
        open: async () => ({
          store: await PostgresStateStore.open({ ...connectionOf(pg), schema }),
          registry: await PostgresDeviceRegistry.open({ ...connectionOf(pg), schema }),
          firmware: new MemoryFirmwareAllowlist(),
        }),
      };
    },
  ],
];

async function closeAll(v: Validator, s: Stores): Promise<void> {
  await v.close();
  await Promise.all([s.store.close(), s.registry.close(), s.firmware.close()]);
}

const open = (s: Stores, dir: string, extra: Parameters<typeof openValidator>[2] = {}) =>
  openValidator(f.world, s, { dir, trust: { certificates: f.certificates, crls: f.world.crls }, ...extra });

async function dsCell(r: DeviceRegistry): Promise<string | undefined> {
  return (await r.device(f.world.meters[0]!.eui))?.cells.find((c) => c.role === 2 && c.keyUsage === 'digitalSignature')?.ski;
}

describe.each(PLACES)('%s', (_name, placeOf) => {
  it('a validator opened afresh over the same store applies the answer to a command an earlier one accepted, once', async () => {
    const place = placeOf();
    const dir = tempDir();
    const s1 = await place.open();
    await s1.registry.put([f.record()]);
    const v1 = await open(s1, dir);
    const command = await f.cs02b();
    expect((await v1.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    // Pending in the store, written by the commit that accepted it.
    expect((await s1.store.pendingCommand(sha(command)))?.command).toEqual(command);
    await closeAll(v1, s1);

    // A restart: new connections, a new validator (the same decision log, checked against the store).
    const s2 = await place.open();
    const v2 = await open(s2, dir);
    const r = await v2.recordCredentialsResponse(f.response(command), command);
    expect([r.state, r.cells.map((c) => c.moved)]).toEqual(['applied', [true, true]]);
    expect(await dsCell(s2.registry)).toBe(f.newDs.certificate.subjectKeyId);
    expect(await s2.store.pendingCommand(sha(command))).toBeUndefined();
    // Applied twice: the second time refused, nothing moves.
    expect(await codeOf(v2.recordCredentialsResponse(f.response(command), command))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    await closeAll(v2, s2);

    // Nor after another restart.
    const s3 = await place.open();
    const v3 = await open(s3, dir);
    expect(await codeOf(v3.recordCredentialsResponse(f.response(command), command))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    await closeAll(v3, s3);
  });

  it('an unknown, a refused or a quarantined command leaves nothing pending and its answer is refused; a released one is pending', async () => {
    const place = placeOf();
    const s = await place.open();
    await s.registry.put([f.record()]);
    // CS02b from the Recovery party is held back at once (limit 0); everything else passes.
    const v = await open(s, tempDir(), { anomalyThreshold: (user) => (user === RECOVERY ? { windowMs: 3_600_000, limit: 0 } : undefined) });
    const never = await f.cs02b();
    expect(await codeOf(v.recordCredentialsResponse(f.response(never), never))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    const refused = await f.cs02b({ mode: 8 }); // the supplier may not send mode 8
    expect((await v.validate(refused, { sender: SUPPLIER })).outcome).toBe('rejected');
    expect(await s.store.pendingCommand(sha(refused))).toBeUndefined();
    expect(await codeOf(v.recordCredentialsResponse(f.response(refused), refused))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    const held = await f.cs02b({ mode: 8, originator: RECOVERY, signer: f.recovery });
    const d = await v.validate(held, { sender: RECOVERY });
    expect(d.outcome).toBe('quarantined');
    expect(await s.store.pendingCommand(sha(held))).toBeUndefined();
    expect(await codeOf(v.recordCredentialsResponse(f.response(held), held))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    expect(await dsCell(s.registry)).toBe(f.world.portfolios[0]!.certificate.subjectKeyId);
    // An operator releases it: its commit keeps it pending, and the answer applies.
    const released = await v.release(d.outcome === 'quarantined' ? d.quarantineId : '', 'operator-1');
    expect(released.outcome).toBe('accepted');
    expect((await s.store.pendingCommand(sha(held)))?.device).toBe(f.world.meters[0]!.eui);
    expect((await v.recordCredentialsResponse(f.response(held), held)).state).toBe('applied');
    expect(await dsCell(s.registry)).toBe(f.newDs.certificate.subjectKeyId);
    await closeAll(v, s);
  });

  it('a crash after the registry moved and before the pending command was removed: the same answer again completes it, once', async () => {
    const place = placeOf();
    const dir = tempDir();
    const s1 = await place.open();
    await s1.registry.put([f.record()]);
    // The removal fails as if the process died right after the registry's transaction.
    const crashing = new Proxy(s1.store, {
      get: (t, key) =>
        key === 'removePendingCommand'
          ? () => Promise.reject(new SmkiError('ERR_STORE_UNAVAILABLE', 'the process died here', {}))
          : (Reflect.get(t, key) as (...a: unknown[]) => unknown).bind(t),
    }) as StateStore;
    const v1 = await open({ ...s1, store: crashing }, dir);
    const command = await f.cs02b();
    expect((await v1.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(await codeOf(v1.recordCredentialsResponse(f.response(command), command))).toBe('ERR_STORE_UNAVAILABLE');
    // The cells moved, the command is still pending: fail closed, and re-appliable.
    expect(await dsCell(s1.registry)).toBe(f.newDs.certificate.subjectKeyId);
    expect(await s1.store.pendingCommand(sha(command))).toBeDefined();
    await closeAll(v1, s1);

    const s2 = await place.open();
    const v2 = await open(s2, dir);
    const r = await v2.recordCredentialsResponse(f.response(command), command);
    expect([r.state, r.cells.map((c) => [c.moved, c.newKeyId])]).toEqual(['applied', [[true, f.newDs.certificate.subjectKeyId], [true, f.newKa.certificate.subjectKeyId]]]);
    expect(await s2.store.pendingCommand(sha(command))).toBeUndefined();
    expect(await dsCell(s2.registry)).toBe(f.newDs.certificate.subjectKeyId);
    expect(await codeOf(v2.recordCredentialsResponse(f.response(command), command))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    await closeAll(v2, s2);
  });

  it('two validators over the same store applying one answer at once: exactly one applies it', async () => {
    const place = placeOf();
    const a = await place.open();
    const b = await place.open();
    await a.registry.put([f.record()]);
    const va = await open(a, tempDir(), { id: 'validator-a' });
    const vb = await open(b, tempDir(), { id: 'validator-b' });
    const command = await f.cs02b();
    expect((await va.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    const results = await Promise.all([va, vb].map((v) => codeOf(v.recordCredentialsResponse(f.response(command), command))));
    expect(results.filter((x) => x === 'resolved')).toHaveLength(1);
    for (const x of results.filter((y) => y !== 'resolved')) expect(['ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND', 'ERR_STORE_CELL_CONFLICT']).toContain(x);
    expect(await dsCell(a.registry)).toBe(f.newDs.certificate.subjectKeyId);
    expect(await a.store.pendingCommand(sha(command))).toBeUndefined();
    await closeAll(va, a);
    await closeAll(vb, b);
  });

  it('an answer applied by another validator while this one was checking it: this one is refused, not told it applied it', async () => {
    const place = placeOf();
    const a = await place.open();
    const b = await place.open();
    await a.registry.put([f.record()]);
    const va = await open(a, tempDir(), { id: 'validator-a' });
    // b reads the device only once a has applied the answer (b already found the command pending).
    let aDone!: () => void;
    const gate = new Promise<void>((resolve) => (aDone = resolve));
    let reached!: () => void;
    const bReading = new Promise<void>((resolve) => (reached = resolve));
    const slow = new Proxy(b.registry, {
      get: (t, key) =>
        key === 'device'
          ? async (d: never) => {
              reached();
              await gate;
              return t.device(d);
            }
          : (Reflect.get(t, key) as (...x: unknown[]) => unknown).bind(t),
    }) as DeviceRegistry;
    const vb = await open({ ...b, registry: slow }, tempDir(), { id: 'validator-b' });
    const command = await f.cs02b();
    expect((await va.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    const late = codeOf(vb.recordCredentialsResponse(f.response(command), command));
    await bReading;
    expect((await va.recordCredentialsResponse(f.response(command), command)).state).toBe('applied');
    aDone();
    // b finds the cells already moved (nothing to do) and the command no longer pending.
    expect(await late).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    await closeAll(va, a);
    await closeAll(vb, b);
  });

  it('a pending command damaged in the store is refused as ERR_STORE_CORRUPT and moves nothing', async () => {
    const place = placeOf();
    const s = await place.open();
    await s.registry.put([f.record()]);
    const dir = tempDir();
    const v = await open(s, dir);
    const command = await f.cs02b();
    expect((await v.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    await closeAll(v, s);
    // Kept under its key, but for another device than the command's (a row edited behind the store).
    const s2 = await place.open();
    const edited = new Proxy(s2.store, {
      get: (t, key) =>
        key === 'pendingCommand'
          ? async (x: string) => ({ ...(await t.pendingCommand(x))!, device: f.world.meters[1]!.eui })
          : (Reflect.get(t, key) as (...a: unknown[]) => unknown).bind(t),
    }) as StateStore;
    const v2 = await open({ ...s2, store: edited }, dir);
    expect(await codeOf(v2.recordCredentialsResponse(f.response(command), command))).toBe('ERR_STORE_CORRUPT');
    expect(await dsCell(s2.registry)).toBe(f.world.portfolios[0]!.certificate.subjectKeyId);
    await closeAll(v2, s2);
  });
});
