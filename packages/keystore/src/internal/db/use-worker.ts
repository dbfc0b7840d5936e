// The use worker: a thread with a connection of its own to the key store's database, in which
// use batches are checked, appended and committed, so that the main thread (which signs) never
// waits on a row read, a record's encoding or a commit's fsync. Started by UseWorker (see
// use-committer.ts) with the store's row and audit keys; it commits one batch at a time, in the
// order they come, each in one transaction of DbTrail.commitBatch (the same code as in-process).
import { createPrivateKey } from 'node:crypto';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { SmkiError } from '@smki/core';
import type { AuditEvent } from '../../audit.js';
import { PostgresDriver, SqliteDriver, type DriverSpec, type Row, type SqlDriver } from './driver.js';
import { POSTGRES_SCHEMA } from './schema.js';
import { DbTrail } from './trail.js';
import { checkUses, type UseCheckResult } from './uses.js';
import { toWire, unpackUses, type FromWorker, type ToWorker, type UseWorkerData } from './use-wire.js';

/** Most uses one transaction of the worker holds. */
const MAX_USES = 4096;
/** Transactions the worker has under way at once on PostgreSQL. */
const POSTGRES_LANES = 2;

async function openDriver(spec: DriverSpec): Promise<SqlDriver> {
  if (spec.kind === 'sqlite') return SqliteDriver.open(spec.path, spec.schema, spec.busyTimeoutMs);
  return PostgresDriver.open(spec.options, POSTGRES_SCHEMA);
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
  // A lane: a connection and a trail on it. SQLite has one writer at a time, so one lane; on
  // PostgreSQL a second lane checks the next group while the first one waits for its commit (the
  // head row's lock orders their appends, as between processes).
  const lanes = data.spec.kind === 'postgres' ? POSTGRES_LANES : 1;
  const signingKey = createPrivateKey({ key: Buffer.from(data.auditKey), format: 'der', type: 'pkcs8' });
  const openLane = async () => {
    const db = await openDriver(data.spec);
    const checks = { rowKey: Buffer.from(data.rowKey), storeId: data.storeId, table: (n: string) => db.table(n), verifiedKeys: new Map<string, Row>(), ...(db.kind === 'postgres' ? { meterEpoch: { seen: 0 } } : {}) };
    const lane = { db, at: '', last: undefined as UseCheckResult | undefined, trail: undefined as unknown as DbTrail };
    lane.trail = new DbTrail(
      db,
      { storeId: data.storeId, macKey: Buffer.from(data.macKey), signingKey, publicKey: data.auditPublicKey },
      () => new Date(lane.at),
      async (t, uses) => {
        lane.last = await checkUses(t, uses, checks);
        return lane.last.refused;
      },
      data.faults ? fault : undefined,
    );
    return lane;
  };
  type Lane = Awaited<ReturnType<typeof openLane>>;
  const opened: Promise<Lane>[] = [];
  const free: number[] = [];
  for (let i = 0; i < lanes; i++) free.push(i);
  const lane = (i: number): Promise<Lane> => (opened[i] ??= openLane());
  // Batches in the order they come; those that queued while a transaction ran go together into
  // the next one (group commit), up to MAX_USES uses.
  const queue: { id: number; at: string; uses: readonly AuditEvent[] }[] = [];
  let closing = false;
  const take = (m: ToWorker): void => {
    if (m.type === 'close') closing = true;
    else queue.push({ id: m.id, at: m.at, uses: 'packed' in m ? unpackUses(m.packed) : m.uses });
  };
  const pump = (): void => {
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) take(m.message as ToWorker);
    while (queue.length > 0 && free.length > 0) {
      const i = free.shift() as number;
      const group: typeof queue = [];
      let n = 0;
      while (queue.length > 0 && (group.length === 0 || n + (queue[0] as (typeof queue)[0]).uses.length <= MAX_USES)) {
        const m = queue.shift() as (typeof queue)[0];
        group.push(m);
        n += m.uses.length;
      }
      void commitGroup(i, group).finally(() => {
        free.push(i);
        pump();
      });
    }
    if (closing && queue.length === 0 && free.length === lanes) void close();
  };
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      for (const l of opened) if (l !== undefined) await (await l).db.close();
    } finally {
      port.postMessage({ type: 'closed' } satisfies FromWorker);
      port.close();
    }
  };
  // The rev of each key row last sent: only rows written since go back.
  const sent = new Map<string, number>();
  const commitGroup = async (i: number, group: readonly (typeof queue)[0][]): Promise<void> => {
    const ids = group.map((m) => m.id);
    try {
      const l = await lane(i);
      l.at = (group[group.length - 1] as (typeof group)[0]).at;
      l.last = undefined;
      const refused = await l.trail.commitBatch(group.flatMap((m) => m.uses));
      const r = l.last as UseCheckResult | undefined;
      if (r === undefined) throw new SmkiError('ERR_KEYSTORE_CORRUPT', 'the use batch committed without its checks', {});
      port.postMessage({
        type: 'done',
        ids,
        sizes: group.map((m) => m.uses.length),
        refused: refused.map((e) => (e === undefined ? null : toWire(e))),
        keys: [...r.keys.values()].filter((k) => {
          const rev = Number(k['rev']);
          if ((sent.get(k['key_id'] as string) ?? -1) >= rev) return false;
          sent.set(k['key_id'] as string, rev);
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
    pump();
  });
}

main();
