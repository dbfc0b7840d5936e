// The use worker: a thread with a connection of its own to the key store's database, in which
// use batches are checked, appended and committed, so that the main thread (which signs) never
// waits on a row read, a record's encoding or a commit's fsync. Started by UseWorker (see
// use-committer.ts) with the store's row and audit keys; it commits one batch at a time, in the
// order they come, each in one transaction of DbTrail.commitBatch (the same code as in-process).
import { createPrivateKey } from 'node:crypto';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { SmkiError } from '@smki/core';
import type { AuditEvent } from '../../audit.js';
import { PostgresDriver, SqliteDriver, type DriverSpec, type SqlDriver } from './driver.js';
import { postgresDdl } from './schema.js';
import { DbTrail } from './trail.js';
import { checkUses, type UseCheckResult } from './uses.js';
import { toWire, unpackUses, type FromWorker, type ToWorker, type UseWorkerData } from './use-wire.js';

/** Most uses one transaction of the worker holds. */
const MAX_USES = 4096;

async function openDriver(spec: DriverSpec): Promise<SqlDriver> {
  if (spec.kind === 'sqlite') return SqliteDriver.open(spec.path, spec.schema, spec.busyTimeoutMs);
  return PostgresDriver.open(spec.options, postgresDdl, spec.version);
}

function main(): void {
  const port = parentPort;
  if (port === null) throw new Error('the use worker runs in a worker thread');
  const data = workerData as UseWorkerData;
  const flag = new Int32Array(data.faultFlag);
  const fault = (point: string): void => {
    // Only the point inside the transaction is the main thread's to act on (it may kill the
    // process there); `db:use-after-commit` is reached on the main thread when the batch is back.
    if (point !== 'db:use-before-commit') return;
    Atomics.store(flag, 0, 0);
    port.postMessage({ type: 'fault', point } satisfies FromWorker);
    while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 100);
    if (Atomics.load(flag, 0) === 2) throw new SmkiError('ERR_STORE_UNAVAILABLE', `the fault hook stopped the use batch at ${point}; nothing was recorded`, { detail: point });
  };
  const checks = { rowKey: Buffer.from(data.rowKey), storeId: data.storeId, table: (n: string) => n };
  let at = '';
  let last: UseCheckResult | undefined;
  const opened = openDriver(data.spec).then((db) => {
    checks.table = (n: string) => db.table(n);
    const trail = new DbTrail(
      db,
      { storeId: data.storeId, macKey: Buffer.from(data.macKey), signingKey: createPrivateKey({ key: Buffer.from(data.auditKey), format: 'der', type: 'pkcs8' }), publicKey: data.auditPublicKey },
      () => new Date(at),
      async (t, uses) => {
        last = await checkUses(t, uses, checks);
        return last.refused;
      },
      data.faults ? fault : undefined,
    );
    return { db, trail };
  });
  // Batches in the order they come; those that queued while a transaction ran go together into
  // the next one (group commit), up to MAX_USES uses.
  const queue: { id: number; at: string; uses: readonly AuditEvent[] }[] = [];
  let closing = false;
  let running = false;
  const take = (m: ToWorker): void => {
    if (m.type === 'close') closing = true;
    else queue.push({ id: m.id, at: m.at, uses: 'packed' in m ? unpackUses(m.packed) : m.uses });
  };
  const run = async (): Promise<void> => {
    running = true;
    try {
      for (;;) {
        for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) take(m.message as ToWorker);
        if (queue.length === 0) break;
        const group: typeof queue = [];
        let n = 0;
        while (queue.length > 0 && (group.length === 0 || n + (queue[0] as (typeof queue)[0]).uses.length <= MAX_USES)) {
          const m = queue.shift() as (typeof queue)[0];
          group.push(m);
          n += m.uses.length;
        }
        await commitGroup(group);
      }
      if (closing) {
        try {
          await (await opened).db.close();
        } finally {
          port.postMessage({ type: 'closed' } satisfies FromWorker);
          port.close();
        }
      }
    } finally {
      running = false;
    }
  };
  // The key rows last sent (by rev and MAC): only those that changed go back.
  const sent = new Map<string, string>();
  const commitGroup = async (group: readonly (typeof queue)[0][]): Promise<void> => {
    const ids = group.map((m) => m.id);
    try {
      const { trail } = await opened;
      at = (group[group.length - 1] as (typeof group)[0]).at;
      last = undefined;
      const refused = await trail.commitBatch(group.flatMap((m) => m.uses));
      const r = last as UseCheckResult | undefined;
      if (r === undefined) throw new SmkiError('ERR_KEYSTORE_CORRUPT', 'the use batch committed without its checks', {});
      port.postMessage({
        type: 'done',
        ids,
        sizes: group.map((m) => m.uses.length),
        refused: refused.map((e) => (e === undefined ? null : toWire(e))),
        keys: [...r.keys.values()].filter((k) => {
          const version = `${String(k['rev'])}/${String(k['mac'])}`;
          if (sent.get(k['key_id'] as string) === version) return false;
          sent.set(k['key_id'] as string, version);
          return true;
        }),
        unusable: r.unusable,
        estates: [...r.estates],
        controlled: r.controlled,
      } satisfies FromWorker);
    } catch (e) {
      port.postMessage({ type: 'failed', ids, error: toWire(e) } satisfies FromWorker);
    }
  };
  port.on('message', (m: ToWorker) => {
    take(m);
    if (!running) void run();
  });
}

main();
