// Property-based tests of every @smki/keystore parser of outside bytes (docs/conventions.md "Inputs"):
// mutated real inputs give a successful read or the parser's own SmkiError — never another
// exception, bare or wrapped — and a successful read keeps its promise:
// - encrypted key files (RFC 5958 §3 EncryptedPrivateKeyInfo, RFC 8018 §6.2 PBES2, RFC 7914 §7
//   scrypt, RFC 7468 §11 armour): the structural read accepts only parameters inside the decrypt
//   limits, PEM round-trips, and a mutated file that decrypts (directly or through the file
//   backend) gives a key that was encrypted, never a garbled one;
// - the audit log (HMAC-SHA256, RFC 2104, over a hash chain): verifyAuditLog never throws and,
//   with the authenticated head, verifies exactly the log as written; without it, only a cut at a
//   record boundary passes; AuditLog.open refuses every change except a torn final line, which
//   it removes.
//
// The targets and mutations are shared with the long run (`pnpm run fuzz`, scripts/fuzz.ts). Each
// intact key file costs one scrypt run (tens of ms), so those targets get few inputs here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSeeds, checkTarget, type Instance } from '../../../scripts/fuzz/harness.js';
import { keystoreTargets } from '../../../scripts/fuzz/targets/keystore.js';

const SEED = 8018;
const RUNS: Readonly<Record<string, number>> = {
  'keystore.pkcs8.decrypt': 12,
  'keystore.file-backend.load': 12,
  'keystore.audit.verify': 150,
  'keystore.audit.open': 150,
};
const DEFAULT_RUNS = 300;

describe.each(keystoreTargets.map((t) => [t.name, t] as const))('%s', (_name, target) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await target.setup();
  });
  afterAll(async () => {
    await inst?.close?.();
  });

  it('every seed reads and keeps its promise', async () => {
    await checkSeeds(target, inst);
  });

  it(`mutated seeds: a read that keeps its promise${target.codes.length ? ` or ${target.codes.join(' / ')}` : ''}, nothing else`, async () => {
    const stats = await checkTarget(target, inst, { seed: SEED, numRuns: RUNS[target.name] ?? DEFAULT_RUNS });
    // Not vacuous: most mutations are refused (verifyAuditLog reports findings instead of throwing).
    if (target.codes.length > 0) expect(stats.rejected.size).toBeGreaterThan(0);
    if (target.mutantsMayParse && (RUNS[target.name] ?? DEFAULT_RUNS) >= 100) expect(stats.parsed).toBeGreaterThan(0);
  });
});
