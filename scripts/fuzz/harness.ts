/**
 * One definition of each fuzz target, run two ways: by the property tests
 * (packages/<name>/test/property.test.ts, a fixed seed and a few hundred inputs, in CI) and by the
 * long run (scripts/fuzz.ts, a million inputs per target, by hand). A target says how to make its
 * seeds, how to parse one input, which error codes the parser documents, and what a successful
 * parse must satisfy (a round trip, or an authenticity property).
 * @module
 */
import fc from 'fast-check';
import type { SmkiError } from '@smki/core';
import { applyPlan, hexOf, judgeError, mutationPlan, type MutationPlan, type Seed } from './mutate.js';

/** A target's seeds and functions, made once by {@link Target.setup}. */
export interface Instance {
  /** Valid inputs to mutate. */
  readonly seeds: readonly Seed[];
  /** Parse one input (mutated from `seed`); the result goes to `check`. */
  run(input: Uint8Array, seed: Seed): unknown;
  /** Throws (any Error) when a successful parse breaks the target's round-trip or authenticity property. */
  check?(input: Uint8Array, seed: Seed, result: unknown): void | Promise<void>;
  /** Remove temporary files and close what `setup` opened. */
  close?(): Promise<void>;
}

/** A parser of outside bytes, as a fuzz target. */
export interface Target {
  /** `<package>.<parser>`, e.g. `pki.certificate.der`. */
  readonly name: string;
  /** What is parsed, and the public clause that defines it. */
  readonly about: string;
  /** Whether the seeds are DER (structural edits apply). */
  readonly der: boolean;
  /** The codes the parser documents (`@throws`); another code is reported. */
  readonly codes: readonly string[];
  /** Causes other than SmkiError that a wrapper may carry (say, node's AES-GCM error behind ERR_GBCS_DECRYPT_FAILED). */
  readonly foreignCause?: (wrapper: SmkiError, cause: unknown) => boolean;
  /** Inputs of the long run when no count is given (a million, fewer for targets that run a password KDF). */
  readonly fuzzRuns?: number;
  /** Why `fuzzRuns` is lower than a million, for the report. */
  readonly fuzzRunsNote?: string;
  /** Whether a mutated input is expected to parse now and then (false where only the seed itself may pass: a MAC, a GCM tag). */
  readonly mutantsMayParse?: boolean;
  /** Make the seeds and the parser (once per run). */
  setup(): Promise<Instance>;
}

/** What one input did. */
export type Outcome =
  | { readonly kind: 'parsed' }
  | { readonly kind: 'rejected'; readonly code: string }
  | { readonly kind: 'bug'; readonly problem: string; readonly error?: unknown };

/** Run one input through a target and judge the outcome. */
export async function runInput(target: Target, inst: Instance, input: Uint8Array, seed: Seed): Promise<Outcome> {
  let result: unknown;
  try {
    result = await inst.run(input, seed);
  } catch (e) {
    const problem = judgeError(e, target.codes, target.foreignCause);
    if (problem !== undefined) return { kind: 'bug', problem, error: e };
    return { kind: 'rejected', code: (e as SmkiError).code };
  }
  try {
    await inst.check?.(input, seed, result);
  } catch (e) {
    return { kind: 'bug', problem: `parsed, but ${e instanceof Error ? e.message : String(e)}`, error: e };
  }
  return { kind: 'parsed' };
}

/** Counts of a property run. */
export interface RunStats {
  /** Inputs that parsed (and passed `check`). */
  parsed: number;
  /** Inputs refused, by code. */
  readonly rejected: Map<string, number>;
}

/**
 * The property, for a test: every mutated input parses (and passes `check`) or is refused with
 * one of the target's own `SmkiError`s. Throws fast-check's report, with the failing input in hex,
 * on the first input that does anything else.
 */
export async function checkTarget(target: Target, inst: Instance, options: { readonly seed: number; readonly numRuns: number }): Promise<RunStats> {
  const stats: RunStats = { parsed: 0, rejected: new Map() };
  await fc.assert(
    fc.asyncProperty(mutationPlan({ der: target.der }), async (plan: MutationPlan) => {
      const seed = inst.seeds[plan.seed % inst.seeds.length] as Seed;
      const input = applyPlan(inst.seeds, plan);
      const o = await runInput(target, inst, input, seed);
      if (o.kind === 'bug') {
        const stack = o.error instanceof Error ? `\n${o.error.stack ?? ''}` : '';
        throw new Error(`${target.name}: ${o.problem}\nseed ${seed.name}; input (${input.length} bytes) ${hexOf(input.subarray(0, 4096))}${input.length > 4096 ? '…' : ''}${stack}`);
      }
      if (o.kind === 'parsed') stats.parsed++;
      else stats.rejected.set(o.code, (stats.rejected.get(o.code) ?? 0) + 1);
    }),
    { seed: options.seed, numRuns: options.numRuns, endOnFailure: true, includeErrorInReport: true },
  );
  return stats;
}

/** Every seed parses and passes `check` (otherwise the property would test nothing). */
export async function checkSeeds(target: Target, inst: Instance): Promise<void> {
  for (const seed of inst.seeds) {
    const o = await runInput(target, inst, seed.bytes, seed);
    if (o.kind !== 'parsed') throw new Error(`${target.name}: seed ${seed.name} does not parse: ${o.kind === 'bug' ? o.problem : o.code}`);
  }
}
