// Child process for processes.test.ts: opens a state store and commits counters, printing one
// JSON line per outcome as soon as the commit has returned (so the parent knows which counters
// were durably accepted when it kills this process).
// Usage: node --import tsx _state-child.ts <sqlite:PATH|postgres:SCHEMA> <mode> ...
//   loop <originator> <device> <from>              commit from, from+1, ... until killed
//   race <startFile> <originator> <device> <from> <count> [batch]
//                                                   wait for startFile, then commit each counter
//                                                   (or, with `batch`, every counter twice in one commit)
//   sequence <startFile> <originator> <owner> <device> <from> <count> [batch]
//                                                   print `ready`, then as race, each entry also
//                                                   claiming a sequence of (owner, device), floor 0
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresStateStore, SqliteStateStore } from '../src/index.js';
import type { StateStore } from '../src/index.js';
import type { Eui64 } from '@smki/core';

const [where, mode, ...args] = process.argv.slice(2) as [string, string, ...string[]];
const store: StateStore = where.startsWith('sqlite:')
  ? await SqliteStateStore.open({ path: where.slice(7), busyTimeoutMs: 60_000 })
  : await PostgresStateStore.open({ schema: where.slice(9), statementTimeoutMs: 60_000 });
const out = (x: unknown): void => {
  process.stdout.write(`${JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
};

if (mode === 'loop') {
  const [originator, device, from] = args as [Eui64, Eui64, string];
  for (let v = BigInt(from); ; v++) {
    const [o] = await store.commit([{ counter: { originator, device, value: v } }]);
    out({ value: v, status: o!.status });
  }
} else if (mode === 'race') {
  const [startFile, originator, device, from, count, batch] = args as [string, Eui64, Eui64, string, string, string?];
  while (!existsSync(startFile)) await sleep(2);
  const results: { value: bigint; status: string }[] = [];
  for (let i = 0n; i < BigInt(count); i++) {
    const value = BigInt(from) + i;
    const entry = { counter: { originator, device, value } };
    const outcomes = await store.commit(batch === 'batch' ? [entry, entry] : [entry]);
    for (const o of outcomes) results.push({ value, status: o.status });
  }
  out(results);
  await store.close();
} else if (mode === 'sequence') {
  const [startFile, originator, owner, device, from, count, batch] = args as [string, Eui64, Eui64, Eui64, string, string, string?];
  out('ready');
  while (!existsSync(startFile)) await sleep(2);
  const results: { value: bigint; status: string; sequence?: bigint }[] = [];
  for (let i = 0n; i < BigInt(count); i++) {
    const value = BigInt(from) + i;
    const entry = { counter: { originator, device, value }, sequence: { owner, device, floor: 0n } };
    const outcomes = await store.commit(batch === 'batch' ? [entry, entry] : [entry]);
    for (const o of outcomes) results.push({ value, ...o });
    // Yield between commits, so that on a loaded machine the processes still take turns.
    await sleep(1);
  }
  out(results);
  await store.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
