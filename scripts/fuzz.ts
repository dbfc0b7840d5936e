/**
 * The long fuzz run (`pnpm run fuzz`), by hand and not in CI: every parser of outside bytes, a
 * million mutated real inputs each by default (the targets and mutations of scripts/fuzz/, the
 * same ones the property tests run a few hundred of). Prints JSON lines:
 *
 * - `{"event":"start",…}` once, with the seed and counts;
 * - `{"event":"progress","target":…,"done":…,"of":…}` now and then;
 * - `{"event":"crash","target":…,"problem":…,"file":…}` for each distinct problem (an exception that
 *   is not the parser's own SmkiError, a SmkiError wrapping one, or a successful parse that breaks
 *   the target's round-trip or authenticity property), the input saved as hex under .tmp/fuzz/;
 * - `{"event":"slow",…}` for an input of at most 64 KiB that took 50 ms or more (best of up to ten
 *   runs; a long run shares the machine, so time such an input again before believing it);
 * - `{"event":"target",…}` per target: inputs, parsed, refused by code, crashes, slowest input
 *   (best of three, ms and bytes; the input is kept as <out>/<target>/slowest.hex);
 * - `{"event":"done",…}` at the end.
 *
 * Options (flags or environment):
 *   --runs N      FUZZ_RUNS     inputs per target (default 1,000,000; lower defaults for targets
 *                               that run a password KDF on every intact input, see --all)
 *   --all                       use --runs (or the million) for those targets too
 *   --seed S      FUZZ_SEED     fast-check seed (default 20250101)
 *   --only a,b    FUZZ_ONLY     targets whose name contains one of these strings
 *   --out DIR     FUZZ_OUT      where crashing inputs go (default .tmp/fuzz)
 *
 *   pnpm run fuzz -- --runs 10000 --only gbcs
 *   nice pnpm run fuzz > .tmp/fuzz/run.jsonl 2>&1 &
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { checkSeeds, runInput, type Instance, type Target } from './fuzz/harness.js';
import { applyPlan, hexOf, mutationPlan, rootCause, type MutationPlan, type Seed } from './fuzz/mutate.js';
import { coreTargets } from './fuzz/targets/core.js';
import { gbcsTargets } from './fuzz/targets/gbcs.js';
import { keystoreTargets } from './fuzz/targets/keystore.js';
import { pkiTargets } from './fuzz/targets/pki.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const LIMIT_MS = 50;
const BOUND_BYTES = 64 * 1024;
const MAX_SAVED_PER_TARGET = 25;

function option(flag: string, env: string): string | undefined {
  const i = process.argv.indexOf(flag);
  if (i >= 0) return process.argv[i + 1];
  return process.env[env];
}

const runsOption = option('--runs', 'FUZZ_RUNS');
const runsGiven = runsOption !== undefined ? Number(runsOption.replace(/_/g, '')) : undefined;
if (runsGiven !== undefined && (!Number.isSafeInteger(runsGiven) || runsGiven < 1)) throw new Error(`--runs must be a positive integer, not ${runsOption}`);
const all = process.argv.includes('--all');
const seed = Number(option('--seed', 'FUZZ_SEED') ?? 20250101);
const only = (option('--only', 'FUZZ_ONLY') ?? '').split(',').filter(Boolean);
const out = resolve(ROOT, option('--out', 'FUZZ_OUT') ?? '.tmp/fuzz');

const line = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const targets = [...coreTargets, ...pkiTargets, ...keystoreTargets, ...gbcsTargets].filter((t) => only.length === 0 || only.some((o) => t.name.includes(o)));
const runsFor = (t: Target): number => (runsGiven !== undefined && (all || t.fuzzRuns === undefined) ? runsGiven : all ? (runsGiven ?? 1_000_000) : (t.fuzzRuns ?? runsGiven ?? 1_000_000));

line({
  event: 'start',
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  seed,
  targets: targets.map((t) => ({ name: t.name, runs: runsFor(t), ...(t.fuzzRunsNote && runsFor(t) !== (runsGiven ?? 1_000_000) ? { note: t.fuzzRunsNote } : {}) })),
});

interface Slowest {
  ms: number;
  bytes: number;
  seed: string;
}

/** Time `run` once (ms), whatever it does. */
async function timeOnce(inst: Instance, input: Uint8Array, s: Seed): Promise<number> {
  const t0 = performance.now();
  try {
    await inst.run(input, s);
  } catch {
    // outcome judged elsewhere
  }
  return performance.now() - t0;
}

let totalInputs = 0;
let totalCrashes = 0;
const summary: Record<string, unknown>[] = [];

for (const target of targets) {
  try {
    await fuzzTarget(target);
  } catch (e) {
    // A target that cannot start (its seeds do not parse, say) is reported; the others still run.
    totalCrashes++;
    line({ event: 'error', target: target.name, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
}

line({ event: 'done', date: new Date().toISOString(), seed, inputs: totalInputs, crashes: totalCrashes, targets: summary.length });
process.exitCode = totalCrashes > 0 ? 1 : 0;

async function fuzzTarget(target: Target): Promise<void> {
  const runs = runsFor(target);
  const inst = await target.setup();
  await checkSeeds(target, inst);
  // The parse alone is timed (not the round-trip check).
  let lastMs = 0;
  const plainRun = inst.run.bind(inst);
  const timed: Instance = {
    ...inst,
    seeds: inst.seeds,
    run: async (input, s) => {
      const t0 = performance.now();
      try {
        return await plainRun(input, s);
      } finally {
        lastMs = performance.now() - t0;
      }
    },
  };
  const dir = join(out, target.name);
  const seenProblems = new Map<string, number>();
  const refused = new Map<string, number>();
  let parsed = 0;
  let crashes = 0;
  let slowCount = 0;
  const slowest: Slowest = { ms: 0, bytes: 0, seed: '' };
  let slowestInput: Uint8Array | undefined;
  let done = 0;
  const started = performance.now();
  let lastReport = started;

  await fc.assert(
    fc.asyncProperty(mutationPlan({ der: target.der }), async (plan: MutationPlan) => {
      const s = inst.seeds[plan.seed % inst.seeds.length] as Seed;
      const input = applyPlan(inst.seeds, plan);
      const o = await runInput(target, timed, input, s);
      done++;
      if (o.kind === 'parsed') parsed++;
      else if (o.kind === 'rejected') refused.set(o.code, (refused.get(o.code) ?? 0) + 1);
      else {
        crashes++;
        // One file per distinct problem (the message up to the first digit run, which holds offsets).
        const key = o.problem.replace(/\d+/g, 'N').slice(0, 200);
        const n = seenProblems.get(key) ?? 0;
        seenProblems.set(key, n + 1);
        if (n === 0 && seenProblems.size <= MAX_SAVED_PER_TARGET) {
          mkdirSync(dir, { recursive: true });
          const id = createHash('sha256').update(input).digest('hex').slice(0, 16);
          const file = join(dir, `${id}.hex`);
          writeFileSync(file, `${hexOf(input)}\n`);
          const cause = rootCause(o.error);
          writeFileSync(
            join(dir, `${id}.txt`),
            `${target.name}\n${o.problem}\nseed ${s.name}; ${input.length} bytes; fast-check seed ${seed}\nplan ${JSON.stringify(plan, (_k, v) => (v instanceof Uint8Array ? hexOf(v) : v))}\n\n${cause instanceof Error ? cause.stack : String(cause)}\n`,
          );
          line({ event: 'crash', target: target.name, problem: o.problem.slice(0, 500), bytes: input.length, seed: s.name, file: file.replace(ROOT, '') });
        }
      }
      if (lastMs > slowest.ms || (lastMs >= LIMIT_MS && input.length <= BOUND_BYTES)) {
        // Best of three, so that a GC pause or a busy core is not taken for slow parsing; an input
        // still over the bound gets seven more tries (a long run shares the machine).
        let best = Math.min(lastMs, await timeOnce(inst, input, s), await timeOnce(inst, input, s));
        for (let i = 0; i < 7 && best >= LIMIT_MS; i++) best = Math.min(best, await timeOnce(inst, input, s));
        if (best > slowest.ms) {
          Object.assign(slowest, { ms: best, bytes: input.length, seed: s.name });
          slowestInput = input;
        }
        if (best >= LIMIT_MS && input.length <= BOUND_BYTES && target.fuzzRuns === undefined) {
          slowCount++;
          if (slowCount <= 5) {
            mkdirSync(dir, { recursive: true });
            const file = join(dir, `slow-${createHash('sha256').update(input).digest('hex').slice(0, 16)}.hex`);
            writeFileSync(file, `${hexOf(input)}\n`);
            line({ event: 'slow', target: target.name, ms: Number(best.toFixed(2)), bytes: input.length, seed: s.name, file: file.replace(ROOT, '') });
          }
        }
      }
      const now = performance.now();
      if (now - lastReport > 60_000) {
        lastReport = now;
        line({ event: 'progress', target: target.name, done, of: runs, seconds: Math.round((now - started) / 1000) });
      }
    }),
    { seed, numRuns: runs, endOnFailure: true },
  );
  await inst.close?.();
  if (slowestInput) {
    // Kept so that the slowest input can be timed again on a quiet machine.
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'slowest.hex'), `${hexOf(slowestInput)}\n`);
  }
  const record = {
    event: 'target',
    target: target.name,
    inputs: done,
    parsed,
    refused: Object.fromEntries([...refused].sort((a, b) => b[1] - a[1])),
    crashes,
    distinctProblems: seenProblems.size,
    slowest: { ms: Number(slowest.ms.toFixed(3)), bytes: slowest.bytes, seed: slowest.seed },
    over50ms: target.fuzzRuns === undefined ? slowCount : null,
    seconds: Math.round((performance.now() - started) / 1000),
    ...(target.fuzzRunsNote && runs < 1_000_000 ? { note: target.fuzzRunsNote } : {}),
  };
  line(record);
  summary.push(record);
  totalInputs += done;
  totalCrashes += crashes;
}
