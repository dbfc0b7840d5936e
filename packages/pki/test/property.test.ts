// Property-based tests of every @smki/pki parser of outside bytes (docs/conventions.md "Inputs"):
// mutated real inputs (the certificates of test-vectors/pki, CRLs and requests made by the
// project's own issuers with deterministic keys) give a successful parse or the parser's own
// SmkiError — never a RangeError, a TypeError or a schema library's error, bare or wrapped — and a
// successful parse round-trips. Certificates: RFC 5280 §4.1; CRLs: RFC 5280 §5.1; requests:
// RFC 2986 §4 (a mutated request that verifies asks for exactly what a seed asked for); PEM:
// RFC 7468 §5–§7; trust-store files: a PEM bundle or one DER certificate.
//
// The targets and mutations are shared with the long run (`pnpm run fuzz`, scripts/fuzz.ts),
// which sends a million inputs to each; here a fixed seed and a few hundred keep CI fast.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSeeds, checkTarget, type Instance } from '../../../scripts/fuzz/harness.js';
import { pkiTargets } from '../../../scripts/fuzz/targets/pki.js';

const SEED = 5280;
const RUNS: Readonly<Record<string, number>> = { 'pki.truststore.file': 150 };
const DEFAULT_RUNS = 300;

describe.each(pkiTargets.map((t) => [t.name, t] as const))('%s', (_name, target) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await target.setup();
  });
  afterAll(async () => {
    await inst?.close?.();
  });

  it('every seed parses and round-trips', async () => {
    await checkSeeds(target, inst);
  });

  it(`mutated seeds: a round-tripping parse or ${target.codes.join(' / ')}, nothing else`, async () => {
    const stats = await checkTarget(target, inst, { seed: SEED, numRuns: RUNS[target.name] ?? DEFAULT_RUNS });
    // Not vacuous: the mutations are refused in the main, and some still parse.
    expect(stats.rejected.size).toBeGreaterThan(0);
    if (target.mutantsMayParse) expect(stats.parsed).toBeGreaterThan(0);
  });
});
