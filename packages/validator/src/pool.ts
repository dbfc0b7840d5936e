import { Piscina } from 'piscina';
import { SmkiError } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import type { BatchCommand, CommandContext, CredentialsResponseResult, Decision, ValidatorStats } from './types.js';
import type { PoolCredentialsOutcome, PoolTask, PoolWorkerData } from './worker.js';
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
 * spreads batches over the cores (piscina). A batch is split into one lane per worker by target
 * device (a hash of the recipient), each lane cut into chunks taken in order; each chunk is one
 * `validateBatch` (one store commit) in one worker; decisions come back in input order.
 *
 * All of one device's commands are in one lane, so they are decided in the order given: a
 * device's later counter never commits before its earlier one (which would refuse the earlier as
 * a replay). Lanes run side by side; a counter repeated in one lane is accepted once, and the
 * store's commit decides between processes.
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
    const lanes: number[][] = Array.from({ length: this.#workers }, () => []);
    commands.forEach((c, i) => lanes[laneOf(c?.bytes, this.#workers)]!.push(i));
    const results: Decision[] = new Array(commands.length);
    await Promise.all(
      lanes.map(async (lane) => {
        for (let k = 0; k < lane.length; k += this.#chunk) {
          const part = lane.slice(k, k + this.#chunk);
          const chunk = part.map((i) => ({ bytes: commands[i]?.bytes, sender: commands[i]?.sender }) as BatchCommand);
          const ds = (await this.#pool.run({ op: 'batch', commands: chunk } satisfies PoolTask)) as Decision[];
          part.forEach((i, j) => (results[i] = ds[j]!));
        }
      }),
    );
    const out = results;
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

  /**
   * Record a device's answer to a CS02b Update Security Credentials command and move the
   * device's trust in the registry: {@link Validator.recordCredentialsResponse} in one of the
   * workers, with the same checks, result and refusals. Any worker will do: an accepted CS02b
   * command is pending in the store the workers share (written in the commit that accepted it),
   * whichever worker accepted it, and before or after the pool restarted.
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`; `ERR_INVALID_ARGUMENT` (not Uint8Arrays); and every
   *   code of {@link Validator.recordCredentialsResponse}, as the worker's validator threw it
   * @see docs/domain.md §9, docs/validator.md (worker pool)
   */
  async recordCredentialsResponse(answer: Uint8Array, command: Uint8Array): Promise<CredentialsResponseResult> {
    if (this.#closed) throw new SmkiError('ERR_VALIDATOR_CLOSED', 'the pool is closed', {});
    if (!(answer instanceof Uint8Array) || !(command instanceof Uint8Array)) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'the answer and the command are Uint8Arrays', { detail: 'answer' });
    }
    const r = (await this.#pool.run({ op: 'credentials', answer: Uint8Array.from(answer), command: Uint8Array.from(command) } satisfies PoolTask)) as PoolCredentialsOutcome;
    if (r.ok) return r.result;
    // The worker's refusal, rebuilt with its code and context (they do not cross the thread boundary on an Error).
    throw new SmkiError(r.code as SmkiErrorCode, r.message, r.context as never);
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

/**
 * The lane of a command: a hash of its recipient (bytes 21 to 28 of a general-signing APDU,
 * docs/domain.md §3). Anything shorter goes to lane 0 (its worker refuses it).
 */
function laneOf(bytes: unknown, lanes: number): number {
  if (!(bytes instanceof Uint8Array) || bytes.length < 29 || lanes === 1) return 0;
  let h = 0;
  for (let i = 21; i < 29; i++) h = (Math.imul(h, 31) + bytes[i]!) >>> 0;
  return h % lanes;
}
