// Child process for replay.test.ts: opens a SQLite state store and, once the start file exists,
// verifies (with anti-replay) or signs (with the durable request counter) the documents of a
// job file, printing one JSON line per document.
// Usage: node --import tsx _duis-child.ts <job.json> <startFile>
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeySigner, isSmkiError } from '@smki/core';
import { SqliteStateStore } from '@smki/store';
import { DuisTrust, signRequest, verifyDuis } from '../src/index.js';

interface Job {
  readonly mode: 'verify' | 'sign';
  readonly db: string;
  readonly certificates: string[];
  readonly crls: string[];
  readonly documents: string[];
  readonly now: number;
  readonly key?: string;
  readonly certificate?: string;
}
const [jobFile, startFile] = process.argv.slice(2) as [string, string];
const job = JSON.parse(readFileSync(jobFile, 'utf8')) as Job;
const store = await SqliteStateStore.open({ path: job.db, busyTimeoutMs: 60_000 });
const der = (b: string) => new Uint8Array(Buffer.from(b, 'base64'));
const trust = new DuisTrust({ certificates: job.certificates.map(der), crls: job.crls.map(der) });
while (!existsSync(startFile)) await sleep(2);
for (const doc of job.documents) {
  try {
    if (job.mode === 'verify') {
      const v = await verifyDuis(doc, trust, { expect: 'request', now: new Date(job.now), replay: { store } });
      process.stdout.write(`${JSON.stringify({ status: 'accepted', counter: v.counter.toString(), body: v.body })}\n`);
    } else {
      const s = await signRequest(doc, createKeySigner(job.key as string), der(job.certificate as string), { requestCounter: { store, now: () => job.now } });
      process.stdout.write(`${JSON.stringify({ status: 'signed', counter: s.requestId.counter.toString() })}\n`);
    }
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ status: isSmkiError(e) ? e.code : String(e) })}\n`);
  }
}
await store.close();
