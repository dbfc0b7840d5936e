// Child process for durability-strace.test.ts: one commit to a SQLite state store between two
// markers written to stderr, so the parent's strace shows what happened while commit() ran.
import { writeSync } from 'node:fs';
import { SqliteStateStore } from '../src/index.js';
import type { Eui64 } from '@smki/core';

const store = await SqliteStateStore.open({ path: process.argv[2]! });
const counter = { originator: '90B3D51F30010000' as Eui64, device: '00DB1234567890A0' as Eui64, value: 1n };
writeSync(2, 'MARK-BEFORE\n');
await store.commit([{ counter }]);
writeSync(2, 'MARK-AFTER\n');
await store.close();
