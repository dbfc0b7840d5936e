// The registry figure both benchmarks print (store and validator): load `devices` records into a
// registry in batches of 10,000, then time 20,000 single lookups of random registered devices.
import { performance } from 'node:perf_hooks';
import type { Eui64 } from '@smki/core';
import type { DeviceRecord, DeviceRegistry } from '../src/index.js';

export interface RegistryFigures {
  readonly devices: number;
  readonly loadSeconds: number;
  readonly loadPerSecond: number;
  readonly lookupP50Ms: number;
  readonly lookupP99Ms: number;
  readonly rssMiB: number;
}

export async function measureRegistry(registry: DeviceRegistry, devices: number, record: (i: number) => DeviceRecord, eui: (i: number) => Eui64): Promise<RegistryFigures> {
  const t0 = performance.now();
  for (let i = 0; i < devices; i += 10_000) {
    await registry.put(Array.from({ length: Math.min(10_000, devices - i) }, (_, k) => record(i + k)));
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  const times: number[] = [];
  let x = 12345;
  for (let k = 0; k < 20_000; k++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const s = performance.now();
    const r = await registry.device(eui(x % devices));
    times.push(performance.now() - s);
    if (!r) throw new Error('bench: a registered device was not found');
  }
  times.sort((a, b) => a - b);
  return {
    devices: await registry.count(),
    loadSeconds: +loadSeconds.toFixed(2),
    loadPerSecond: Math.round(devices / loadSeconds),
    lookupP50Ms: +(times[Math.floor(times.length / 2)] ?? 0).toFixed(4),
    lookupP99Ms: +(times[Math.floor(times.length * 0.99)] ?? 0).toFixed(4),
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
}
