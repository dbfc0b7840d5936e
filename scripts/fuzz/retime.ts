/**
 * Time again the inputs a long fuzz run reported as slow (`slow-*.hex` and `slowest.hex` under
 * <out>/<target>/), on a quiet machine: a long run shares the machine with everything else, so a
 * slow input is believed only when it is slow here too. Prints one JSON line per input with the
 * best of `--rounds` runs (default 20).
 *
 *   pnpm exec tsx scripts/fuzz/retime.ts [--out .tmp/fuzz] [--rounds 20]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { fromHex } from '@smki/core';
import { coreTargets } from './targets/core.js';
import { gbcsTargets } from './targets/gbcs.js';
import { keystoreTargets } from './targets/keystore.js';
import { pkiTargets } from './targets/pki.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const arg = (flag: string, fallback: string) => (process.argv.includes(flag) ? (process.argv[process.argv.indexOf(flag) + 1] as string) : fallback);
const out = resolve(ROOT, arg('--out', '.tmp/fuzz'));
const rounds = Number(arg('--rounds', '20'));

for (const target of [...coreTargets, ...pkiTargets, ...keystoreTargets, ...gbcsTargets]) {
  const dir = join(out, target.name);
  if (!existsSync(dir)) continue;
  const files = readdirSync(dir).filter((f) => f.endsWith('.hex') && (f.startsWith('slow-') || f === 'slowest.hex'));
  if (files.length === 0) continue;
  const inst = await target.setup();
  try {
    for (const f of files) {
      const input = fromHex(readFileSync(join(dir, f), 'utf8').trim());
      let best = Infinity;
      for (let i = 0; i < rounds; i++) {
        // Every seed is tried (the file does not say which one the input came from); the cost is the parse.
        const seed = inst.seeds[i % inst.seeds.length]!;
        const t0 = performance.now();
        try {
          await inst.run(input, seed);
        } catch {
          /* refused: the time is what counts */
        }
        best = Math.min(best, performance.now() - t0);
      }
      console.log(JSON.stringify({ target: target.name, file: f, bytes: input.length, bestMs: +best.toFixed(3), rounds }));
    }
  } finally {
    await inst.close?.();
  }
}
