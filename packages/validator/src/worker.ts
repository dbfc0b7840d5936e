/**
 * The worker-thread side of {@link ValidatorPool}: each thread claims a slot, builds its own
 * {@link Validator} with the caller's setup module (its own store connections, its own decision
 * log, the shared SQLite file or PostgreSQL database), and validates the chunks it is given.
 * @module
 * @internal
 */
import { pathToFileURL } from 'node:url';
import { workerData } from 'node:worker_threads';
import { SmkiError } from '@smki/core';
import { Validator } from './validator.js';
import type { BatchCommand, CredentialsResponseResult, Decision, ValidatorOptions } from './types.js';

/** What the pool passes to every worker. @internal */
export interface PoolWorkerData {
  readonly setup: string;
  readonly data: unknown;
  /** [slot counter, arrivals at the barrier]. */
  readonly shared: SharedArrayBuffer;
  readonly workers: number;
  readonly barrierMs: number;
}

/** A task of the pool. @internal */
export type PoolTask =
  | { readonly op: 'init'; readonly round: number }
  | { readonly op: 'batch'; readonly commands: readonly BatchCommand[] }
  | { readonly op: 'credentials'; readonly answer: Uint8Array; readonly command: Uint8Array }
  | { readonly op: 'close'; readonly round: number };

/** What a worker's setup module exports as default. */
export type ValidatorSetup = (context: { readonly slot: number; readonly data: unknown }) => Promise<ValidatorOptions> | ValidatorOptions;

const wd = workerData as PoolWorkerData;
const counters = new Int32Array(wd.shared);
let slot = -1;
let validator: Promise<Validator> | undefined;
let owned: ValidatorOptions | undefined;

async function open(): Promise<Validator> {
  slot = Atomics.add(counters, 0, 1);
  const url = wd.setup.startsWith('file:') ? wd.setup : pathToFileURL(wd.setup).href;
  if (/\.[cm]?ts$/.test(new URL(url).pathname)) {
    // A TypeScript setup module (tests, development) loads through tsx's loader, when installed;
    // the specifier is computed so that a bundler leaves it alone.
    const loader = ['tsx', 'esm', 'api'].join('/');
    const { register } = (await import(loader)) as { register: () => unknown };
    register();
  }
  const mod = (await import(url)) as { default?: ValidatorSetup };
  if (typeof mod.default !== 'function') throw new SmkiError('ERR_INVALID_ARGUMENT', 'the pool setup module has no default export function', { detail: wd.setup });
  owned = await mod.default({ slot, data: wd.data });
  return Validator.open(owned);
}

/** Wait until every worker has arrived for this round (so each worker gets exactly one such task). */
function barrier(round: number): void {
  const target = round * wd.workers;
  Atomics.add(counters, 1, 1);
  Atomics.notify(counters, 1);
  const deadline = Date.now() + wd.barrierMs;
  for (;;) {
    const seen = Atomics.load(counters, 1);
    if (seen >= target) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the pool workers did not all start in time', { detail: `${seen} of ${target}` });
    Atomics.wait(counters, 1, seen, left);
  }
}

/**
 * The outcome of a `credentials` task: the result, or the refusal as plain data (an error's own
 * fields, such as a SmkiError's code, do not survive the thread boundary; the pool rebuilds it).
 * @internal
 */
export type PoolCredentialsOutcome =
  | { readonly ok: true; readonly result: CredentialsResponseResult }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly context: unknown };

/** The task handler. @internal */
export default async function task(t: PoolTask): Promise<Decision[] | number | PoolCredentialsOutcome> {
  switch (t.op) {
    case 'init': {
      validator ??= open();
      await validator;
      barrier(t.round);
      return slot;
    }
    case 'batch': {
      validator ??= open();
      return (await validator).validateBatch(t.commands);
    }
    case 'credentials': {
      validator ??= open();
      const v = await validator;
      try {
        return { ok: true, result: await v.recordCredentialsResponse(t.answer, t.command) };
      } catch (e) {
        // By name, not instanceof: a store loaded from its build brings its own copy of the class.
        if (!(e instanceof Error) || e.name !== 'SmkiError' || typeof (e as SmkiError).code !== 'string') throw e;
        const s = e as SmkiError;
        return { ok: false, code: s.code, message: s.message, context: s.context };
      }
    }
    case 'close': {
      if (validator) await (await validator).close();
      validator = undefined;
      // The stores were opened by the setup module for this worker: the worker closes them.
      if (owned) await Promise.all([owned.store.close(), owned.registry.close(), owned.firmware.close()]);
      owned = undefined;
      barrier(t.round);
      return slot;
    }
  }
}
