import { Piscina } from 'piscina';
import { SmkiError } from '@smki/core';
import type { BatchCommand, CommandContext, Decision, ValidatorStats } from './types.js';
import type { PoolTask, PoolWorkerData } from './worker.js';
import { MAX_BATCH } from './validator.js';

/** Options of {@link ValidatorPool.open}. */
export interface ValidatorPoolOptions {
  /**
   * Path or `file:` URL of the setup module each worker thread imports. Its default export,
   * `({ slot, data }) => ValidatorOptions` (see {@link ValidatorSetup}), builds that worker's
   * validator: its own store connections to the shared SQLite file or PostgreSQL database, its
   * own ACB key agreement (a keystore or HSM session), and its own decision log, whose id and
   * directory must include `slot` (0 … workers-1) so that no two workers share a log.
   */
  readonly setup: string | URL;
  /** Worker threads (1 … 64; default the number of CPUs). */
  readonly workers: number;
  /** Data passed to the setup module (structured-cloneable: no keys, no functions). */
  readonly data?: unknown;
  /** Commands per task (default 256): a worker validates a chunk with one store commit. */
  readonly chunkSize?: number;
  /** How long workers may take to open their validators, in ms (default 60,000). */
  readonly startTimeoutMs?: number;
}

const MAX_WORKERS = 64;

/**
 * A pool of worker threads, each with its own {@link Validator} over one shared store, that
 * spreads batches over the cores (piscina). A batch is cut into chunks; each chunk is one
 * `validateBatch` (one store commit) in one worker; decisions come back in order.
 *
 * A counter repeated in two chunks that run at the same time in two workers is still accepted
 * once: the store's commit decides, whichever worker commits first.
 * @see docs/validator.md (worker pool)
 */
export class ValidatorPool {
  readonly #pool: Piscina;
  readonly #workers: number;
  readonly #chunk: number;
  #round = 1;
  #closed = false;
  #accepted = 0;
  #quarantined = 0;
  readonly #rejected = new Map<string, number>();

  private constructor(pool: Piscina, workers: number, chunk: number) {
    this.#pool = pool;
    this.#workers = workers;
    this.#chunk = chunk;
  }

  /**
   * Start the workers and wait until every one has opened its validator.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`; whatever a worker's setup or `Validator.open` threw
   *   (e.g. `ERR_VALIDATOR_STATE_BEHIND`), after stopping the pool
   */
  static async open(options: ValidatorPoolOptions): Promise<ValidatorPool> {
    if (typeof options !== 'object' || options === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'pool options are required', {});
    const { workers } = options;
    if (!Number.isSafeInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', `workers must be 1 to ${MAX_WORKERS}`, { detail: String(workers) });
    }
    const chunk = options.chunkSize ?? 256;
    if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > MAX_BATCH) throw new SmkiError('ERR_INVALID_ARGUMENT', `chunkSize must be 1 to ${MAX_BATCH}`, { detail: String(chunk) });
    const setup = options.setup instanceof URL ? options.setup.href : options.setup;
    if (typeof setup !== 'string' || setup.length === 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'setup must name a module', { detail: 'setup' });
    const barrierMs = options.startTimeoutMs ?? 60_000;
    const workerData: PoolWorkerData = { setup, data: options.data, shared: new SharedArrayBuffer(8), workers, barrierMs };
    // Running from the TypeScript sources (tests), the worker is loaded through tsx.
    const fromSource = import.meta.url.endsWith('.ts');
    const filename = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url).href;
    const pool = new Piscina({
      filename,
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
      workerData,
      ...(fromSource ? { execArgv: ['--import', 'tsx'] } : {}),
    });
    const self = new ValidatorPool(pool, workers, chunk);
    try {
      await Promise.all(Array.from({ length: workers }, () => pool.run({ op: 'init', round: 1 } satisfies PoolTask)));
    } catch (e) {
      await pool.destroy();
      throw e;
    }
    return self;
  }

  /** Worker threads in the pool. */
  get workers(): number {
    return this.#workers;
  }

  /**
   * Validate commands across the workers; decisions in order.
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`, `ERR_INVALID_ARGUMENT` (not an array)
   */
  async validateBatch(commands: readonly BatchCommand[]): Promise<Decision[]> {
    if (this.#closed) throw new SmkiError('ERR_VALIDATOR_CLOSED', 'the pool is closed', {});
    if (!Array.isArray(commands)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'commands must be an array', { detail: 'commands' });
    const chunks: BatchCommand[][] = [];
    for (let i = 0; i < commands.length; i += this.#chunk) {
      chunks.push(commands.slice(i, i + this.#chunk).map((c) => ({ bytes: c?.bytes, sender: c?.sender }) as BatchCommand));
    }
    const results = await Promise.all(chunks.map((c) => this.#pool.run({ op: 'batch', commands: c } satisfies PoolTask) as Promise<Decision[]>));
    const out = results.flat();
    for (const d of out) {
      if (d.outcome === 'accepted') this.#accepted++;
      else if (d.outcome === 'quarantined') this.#quarantined++;
      else this.#rejected.set(d.code, (this.#rejected.get(d.code) ?? 0) + 1);
    }
    return out;
  }

  /** Validate one command in some worker. @throws SmkiError as {@link ValidatorPool.validateBatch} */
  async validate(bytes: Uint8Array, context: CommandContext): Promise<Decision> {
    const [d] = await this.validateBatch([{ bytes, sender: context?.sender } as BatchCommand]);
    return d as Decision;
  }

  /** Decisions returned by this pool since it opened. */
  stats(): ValidatorStats {
    return { accepted: this.#accepted, quarantined: this.#quarantined, rejected: Object.fromEntries(this.#rejected) };
  }

  /** Close every worker's validator (its decision log), then stop the threads. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#round++;
    try {
      await Promise.all(Array.from({ length: this.#workers }, () => this.#pool.run({ op: 'close', round: this.#round } satisfies PoolTask)));
    } finally {
      await this.#pool.destroy();
    }
  }
}
