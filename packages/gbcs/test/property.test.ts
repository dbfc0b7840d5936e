// Property-based tests of every @smki/gbcs parser of outside bytes (docs/conventions.md "Inputs"):
// mutated real inputs (the messages, frames and payloads of test-vectors/gbcs, and payloads made
// by the project's own encoders) give a successful parse or the parser's own SmkiError — never a
// RangeError or TypeError, bare or wrapped — and a successful parse keeps its promise:
// - parseMessage (docs/domain.md §3, general-signing APDU and general-ciphering frame): buildMessage of
//   what it read gives the bytes back;
// - decodeSupplyPayload and decodeActivateFirmware (docs/domain.md §5): the encoder gives the bytes back;
// - decryptPayload (docs/domain.md §4, AES-128-GCM, NIST SP 800-38D §7.2): only the payload as encrypted
//   decrypts; verifyMac (docs/domain.md §4): true only for the frame as MAC'd; verifySignature
//   (docs/domain.md §4): true only over bytes that were signed.
//
// The targets and mutations are shared with the long run (`pnpm run fuzz`, scripts/fuzz.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSeeds, checkTarget, type Instance } from '../../../scripts/fuzz/harness.js';
import { gbcsTargets } from '../../../scripts/fuzz/targets/gbcs.js';

const SEED = 3;
const RUNS = 300;

describe.each(gbcsTargets.map((t) => [t.name, t] as const))('%s', (_name, target) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await target.setup();
  });
  afterAll(async () => {
    await inst?.close?.();
  });

  it('every seed parses and keeps its promise', async () => {
    await checkSeeds(target, inst);
  });

  it(`mutated seeds: a parse that keeps its promise or ${target.codes.join(' / ')}, nothing else`, async () => {
    const stats = await checkTarget(target, inst, { seed: SEED, numRuns: RUNS });
    expect(stats.rejected.size).toBeGreaterThan(0);
    if (target.mutantsMayParse) expect(stats.parsed).toBeGreaterThan(0);
  });
});
