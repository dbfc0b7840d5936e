// Child process for processes.test.ts: a validator over a real state store (SQLite file or
// PostgreSQL schema), validating the signed commands of a file in order and printing one JSON
// line per decision as soon as validate() has returned (so the parent knows which commands were
// accepted, durably, when it kills this process).
// Usage: node --import tsx _validator-child.ts <worldFile> <sqlite:PATH|postgres:SCHEMA> <logDir> <logId> <commandsFile> [startFile]
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeyAgreement, fromHex } from '@smki/core';
import { MemoryDeviceRegistry, MemoryFirmwareAllowlist, PostgresStateStore, SqliteStateStore, type StateStore } from '@smki/store';
import { Validator } from '../src/index.js';
import { deviceRecord, type ValidatorVectorWorld } from '../../../scripts/vectors/validator-world.js';

const [worldFile, where, logDir, logId, commandsFile, startFile] = process.argv.slice(2) as [string, string, string, string, string, string?];
const world = JSON.parse(readFileSync(worldFile, 'utf8')) as ValidatorVectorWorld;
const store: StateStore = where.startsWith('sqlite:')
  ? await SqliteStateStore.open({ path: where.slice(7), busyTimeoutMs: 60_000 })
  : await PostgresStateStore.open({ schema: where.slice(9), statementTimeoutMs: 60_000 });
const registry = new MemoryDeviceRegistry();
await registry.put(world.devices.map(deviceRecord));
const out = (x: unknown): void => {
  process.stdout.write(`${JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}\n`);
};
let validator: Validator;
try {
  validator = await Validator.open({
    store,
    registry,
    firmware: new MemoryFirmwareAllowlist(),
    trust: { certificates: world.certificates.map(fromHex), crls: (world.crls['current'] ?? []).map(fromHex) },
    acb: { keyId: world.acbKeyId, keyAgreement: createKeyAgreement(createPrivateKey({ key: Buffer.from(fromHex(world.acbPrivateKey)), format: 'der', type: 'pkcs8' })) },
    log: { dir: logDir, id: logId, key: new Uint8Array(32).fill(0x5a) },
    now: () => new Date(world.now),
  });
} catch (e) {
  out({ open: 'refused', code: (e as { code?: string }).code });
  await store.close();
  process.exit(0);
}
out({ open: 'ok' });
const commands = readFileSync(commandsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { command: string; sender: string });
if (startFile) while (!existsSync(startFile)) await sleep(2);
for (const c of commands) {
  const d = await validator.validate(fromHex(c.command), { sender: c.sender });
  out({ outcome: d.outcome, code: d.outcome === 'accepted' ? null : d.code, device: d.device, counter: d.counter });
}
await validator.close();
await store.close();
out({ done: true });
