// TEMPORARY (not committed): allocation sampling of the validator hot path.
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createKeyAgreement } from '@smki/core';
import { buildActivateFirmware, buildDisableSupply, signPreCommand } from '@smki/gbcs';
import { MemoryDeviceRegistry, MemoryFirmwareAllowlist, MemoryStateStore } from '@smki/store';
import { Validator } from '../src/index.js';
import { buildWorld, LOG_KEY, MODEL, SUPPLIER, T0 } from '../test/_world.js';
const IMAGE = createHash('sha256').update('bench image').digest();
const world = await buildWorld({ meters: 1000, portfolios: 4, now: T0 });
const N = 10000;
const base = BigInt(T0.getTime()) - BigInt(N) - 10n;
const commands: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  const meter = world.meters[i % 1000]!;
  const pre = i % 4 === 3 ? buildActivateFirmware({ originator: SUPPLIER, recipient: meter.eui, counter: base + BigInt(i), imageHash: IMAGE }) : buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: meter.eui, counter: base + BigInt(i) });
  commands.push(await signPreCommand(pre, world.portfolios[meter.portfolio]!.signer));
}
const stores = { store: new MemoryStateStore(), registry: new MemoryDeviceRegistry(), firmware: new MemoryFirmwareAllowlist() };
await stores.registry.put(world.meters.map((m) => m.record));
await stores.firmware.approve([{ model: MODEL, imageHash: IMAGE }], T0.getTime());
const v = await Validator.open({ ...stores, trust: { certificates: world.certificates, crls: world.crls }, acb: { keyId: 'a', keyAgreement: createKeyAgreement(world.acb.privateKey) }, log: { dir: mkdtempSync(join(tmpdir(), 'probe-')), id: 'p', key: LOG_KEY }, now: () => T0, sharedSecretCache: {} });
const s = new Session(); s.connect();
const mode = process.env.PROBE ?? 'heap';
if (mode === 'heap') await s.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
for (let i = 0; i < N; i += 250) await Promise.all(commands.slice(i, i + 250).map((b) => v.validate(b, { sender: SUPPLIER })));
if (mode === 'heap') {
  const { profile } = await s.post('HeapProfiler.stopSampling');
  writeFileSync('/tmp/alloc.heapprofile', JSON.stringify(profile));
}
await v.close();
