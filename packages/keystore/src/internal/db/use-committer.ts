// The main thread's side of the use worker (use-worker.ts): use batches go to a worker thread,
// which checks, appends and commits them on a connection of its own, and come back with each
// use's refusal once committed. Fails closed: a batch that fails, or that is under way when the
// thread stops for any reason, rejects with an SmkiError and none of its signatures is returned.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { SmkiError, type SmkiErrorCode } from '@smki/core';
import type { AuditEvent } from '../../audit.js';
import type { DriverSpec } from './driver.js';
import type { UseCommitter } from './trail.js';
import { packUses, type FromWorker, type ToWorker, type UseWorkerData, type WireError } from './use-wire.js';
import type { UseCheckResult } from './uses.js';

/** What {@link UseWorker} starts its thread with, and tells the store. */
export interface UseWorkerOptions {
  readonly spec: DriverSpec;
  readonly storeId: string;
  readonly rowKey: Buffer;
  readonly macKey: Buffer;
  readonly auditKey: KeyObject;
  readonly auditPublicKey: Uint8Array;
  /** The crash tests' fault hook: `db:use-before-commit` is called here while the batch waits, uncommitted. */
  readonly fault?: (point: string) => void;
  /** Each committed batch's checks (what the hot path's caches are refreshed from), with the stamp taken when it was sent. */
  readonly onChecked?: (result: Omit<UseCheckResult, 'refused'>, stamp: number) => void;
  /** A stamp taken as each batch is sent (the store's count of its own changes). */
  readonly stamp?: () => number;
}

interface InFlight {
  readonly stamp: number;
  /** Uses in the batch. */
  readonly size: number;
  readonly resolve: (refused: readonly (SmkiError | undefined)[]) => void;
  readonly reject: (e: unknown) => void;
}

function fromWire(w: WireError): SmkiError {
  return new SmkiError(w.code as SmkiErrorCode, w.message, (w.context ?? {}) as never);
}

function stopped(reason: string, cause?: unknown): SmkiError {
  return new SmkiError('ERR_STORE_UNAVAILABLE', `the use worker stopped (${reason}) with a use batch under way: its signatures are withheld`, { detail: 'use worker' }, cause === undefined ? undefined : { cause });
}

/**
 * Commits use batches in a worker thread with its own connection to the store's database. The
 * thread starts with the first batch, and again after it stopped.
 */
export class UseWorker implements UseCommitter {
  readonly #options: UseWorkerOptions;
  readonly #data: UseWorkerData;
  readonly #flag: Int32Array;
  #worker: Worker | undefined;
  readonly #inFlight = new Map<number, InFlight>();
  #next = 1;
  /** The error the fault hook threw in the batch under way (what its callers get). */
  #faultError: unknown;
  #closed = false;

  constructor(options: UseWorkerOptions) {
    this.#options = options;
    const faultFlag = new SharedArrayBuffer(4);
    this.#flag = new Int32Array(faultFlag);
    this.#data = {
      spec: options.spec,
      storeId: options.storeId,
      rowKey: new Uint8Array(options.rowKey),
      macKey: new Uint8Array(options.macKey),
      auditKey: new Uint8Array(options.auditKey.export({ type: 'pkcs8', format: 'der' })),
      auditPublicKey: new Uint8Array(options.auditPublicKey),
      faults: options.fault !== undefined,
      faultFlag,
    };
  }

  #start(): Worker {
    // Built, the thread is an entry of its own (dist/internal/db/use-worker.js). From the TypeScript
    // sources (tests, benches) it loads through tsx's loader, registered in the thread first (a
    // worker's `--import` does not apply to its entry on Node 20); the tsconfig found from the
    // working directory maps the workspace packages, as for the process itself.
    const w = import.meta.url.endsWith('.ts')
      ? new Worker(
          `require(${JSON.stringify(createRequire(import.meta.url).resolve(['tsx', 'esm', 'api'].join('/')))}).register(); import(${JSON.stringify(new URL('./use-worker.ts', import.meta.url).href)});`,
          { eval: true, workerData: this.#data },
        )
      : new Worker(new URL('./internal/db/use-worker.js', import.meta.url), { workerData: this.#data });
    w.unref();
    w.on('message', (m: FromWorker) => this.#onMessage(m));
    w.on('error', (e) => this.#fail(w, stopped('it threw', e)));
    w.on('exit', (code) => this.#fail(w, stopped(`exit code ${code}`)));
    this.#worker = w;
    return w;
  }

  /** Every batch under way rejected; the next batch starts a new thread. */
  #fail(w: Worker, error: SmkiError): void {
    if (this.#worker !== w) return;
    this.#worker = undefined;
    const all = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const f of all) f.reject(error);
  }

  #onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'fault': {
        // The batch waits, uncommitted, until the hook returns (or kills the process).
        let outcome = 1;
        try {
          this.#options.fault?.(m.point);
        } catch (e) {
          this.#faultError = e;
          outcome = 2;
        }
        Atomics.store(this.#flag, 0, outcome);
        Atomics.notify(this.#flag, 0);
        return;
      }
      case 'done': {
        const fs = m.ids.map((id) => this.#take(id));
        const stamps = fs.map((f) => f?.stamp ?? -1);
        try {
          this.#options.onChecked?.({ keys: new Map(m.keys.map((k) => [k['key_id'] as string, k])), unusable: m.unusable, controlled: m.controlled, estates: new Map(m.estates) }, Math.min(...stamps));
        } catch {
          // the caches only choose keys; the batch's decision stands
        }
        let i = 0;
        fs.forEach((f, j) => {
          const n = m.sizes[j] as number;
          const part = m.refused.slice(i, i + n);
          i += n;
          if (f === undefined) return;
          if (part.length !== f.size) f.reject(new SmkiError('ERR_KEYSTORE_CORRUPT', 'the use worker did not decide every use of a batch', {}));
          else f.resolve(part.map((e) => (e === null ? undefined : fromWire(e))));
        });
        return;
      }
      case 'failed': {
        const faultError = this.#faultError;
        this.#faultError = undefined;
        for (const id of m.ids) this.#take(id)?.reject(faultError ?? fromWire(m.error));
        return;
      }
      case 'closed':
        return;
    }
  }

  #take(id: number): InFlight | undefined {
    const f = this.#inFlight.get(id);
    this.#inFlight.delete(id);
    if (this.#inFlight.size === 0) this.#worker?.unref();
    return f;
  }

  commit(uses: readonly AuditEvent[], at: string): Promise<readonly (SmkiError | undefined)[]> {
    if (this.#closed) return Promise.reject(new SmkiError('ERR_KEYSTORE_CLOSED', 'the key store is closed', {}));
    return new Promise((resolve, reject) => {
      const w = this.#worker ?? this.#start();
      const id = this.#next++;
      this.#inFlight.set(id, { stamp: this.#options.stamp?.() ?? 0, size: uses.length, resolve, reject });
      // While a batch is under way the thread keeps the process alive.
      if (this.#inFlight.size === 1) w.ref();
      try {
        const packed = packUses(uses);
        w.postMessage((packed === undefined ? { type: 'batch', id, at, uses } : { type: 'batch', id, at, packed }) satisfies ToWorker);
      } catch (e) {
        this.#inFlight.delete(id);
        reject(stopped('a batch could not be sent', e));
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#worker;
    if (w === undefined) return;
    w.ref();
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.postMessage({ type: 'close' } satisfies ToWorker);
    // The thread closes its connection and ends; one that does not within 10 s is stopped.
    const timer = setTimeout(() => void w.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
