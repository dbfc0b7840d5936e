// Child process for anchor.test.ts (docs/keystore-estate.md §3, the audit anchor).
//
// - `append <dir> <storeId> <count>`: prints `ready`, waits for a line on stdin, then <count>
//   times reads the latest checkpoint of a DirectoryAnchor and offers the next one (signed with the
//   key in SMKI_ANCHOR_KEY, PKCS#8 PEM; the hash of record n is SHA-256 of `record n`, so every
//   process agrees on it), and prints the seqs it wrote (JSON).
// - `refused <dir> <storeId>`: run as a user who may not write <dir>/ro nor read the checkpoint
//   file in <dir>/rw; prints the codes of opening the first, and of writing and reading the second.
// - `unref <dir> <storeId>`: starts an AuditCheckpointer (100 ms) and falls off the end: the
//   process must exit by itself (the timer is unref'd).
// - `sync <dir> <storeId>`: (run under strace) opens a DirectoryAnchor on a new directory and
//   writes checkpoints 1 and 2, printing `written <seq>` to stdout after each write resolves.
// Usage: node --import tsx _anchor-child.ts <mode> <dir> <storeId> [count]
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createKeySigner, isSmkiError } from '@smki/core';
import { AuditCheckpointer, DirectoryAnchor, signAuditCheckpoint, type SignedAuditCheckpoint } from '../src/anchor.js';

const [mode, dir, storeId, count] = process.argv.slice(2) as [string, string, string, string?];
const hashOf = (seq: number): string => (seq === 0 ? '0'.repeat(64) : createHash('sha256').update(`record ${seq}`).digest('hex').toUpperCase());
const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? e.code : `raw ${String(e)}`),
  );

if (mode === 'append') {
  // Each attempt offers the checkpoint just above the latest the anchor holds, so however the two
  // processes are scheduled, each writes whenever it gets there first, and the other is refused.
  const signer = createKeySigner(process.env['SMKI_ANCHOR_KEY']!);
  const anchor = await DirectoryAnchor.open({ directory: dir });
  process.stdout.write('ready\n');
  const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  await input.next();
  const wrote: number[] = [];
  for (let i = 0; i < Number(count); i++) {
    const seq = ((await anchor.latest(storeId))?.seq ?? 0) + 1;
    const cp = await signAuditCheckpoint({ v: 1, storeId, seq, hash: hashOf(seq), at: new Date().toISOString() }, signer);
    if (await anchor.write(cp)) wrote.push(seq);
  }
  await anchor.close();
  process.stdout.write(`${JSON.stringify(wrote)}\n`);
  process.exit(0);
} else if (mode === 'refused') {
  const signer = createKeySigner(process.env['SMKI_ANCHOR_KEY']!);
  const cp = await signAuditCheckpoint({ v: 1, storeId, seq: 9, hash: hashOf(9), at: new Date().toISOString() }, signer);
  const open = await codeOf(DirectoryAnchor.open({ directory: join(dir, 'ro') }));
  const rw = await DirectoryAnchor.open({ directory: join(dir, 'rw') });
  const write = await codeOf(rw.write(cp));
  const latest = await codeOf(rw.latest(storeId));
  process.stdout.write(`${JSON.stringify({ open, write, latest })}\n`);
} else if (mode === 'unref') {
  const anchor = await DirectoryAnchor.open({ directory: dir });
  let seq = 0;
  const checkpointer = new AuditCheckpointer({
    storeId,
    signer: createKeySigner(process.env['SMKI_ANCHOR_KEY']!),
    anchor,
    head: async () => ({ seq: ++seq, hash: hashOf(seq) }),
    intervalMs: 100,
  });
  checkpointer.start();
  await checkpointer.checkpointNow();
  process.stdout.write('started\n');
} else if (mode === 'sync') {
  const signer = createKeySigner(process.env['SMKI_ANCHOR_KEY']!);
  const anchor = await DirectoryAnchor.open({ directory: dir });
  for (const seq of [1, 2]) {
    await anchor.write(await signAuditCheckpoint({ v: 1, storeId, seq, hash: hashOf(seq), at: new Date().toISOString() }, signer));
    process.stdout.write(`written ${seq}\n`);
  }
  await anchor.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
