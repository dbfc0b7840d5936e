// Decision vectors: test-vectors/validator/decisions.json, written by
// scripts/generate-validator-vectors.ts from fixed seeds (docs/validator.md: every rule of the
// decision broken alone, with its code; GBCS 5.4a, 6.2.4; RFC 5280 §6.1). Each case runs on a
// fresh validator; an accepted frame must equal the vector's byte for byte, and its ACB MAC must
// verify under the meter's own key with the simulated meter's independent node:crypto code.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromHex } from '@smki/core';
import { simulatorCrypto } from '../packages/gbcs/test/_device-simulator.js';
import { DOCUMENTED_STEP } from '../packages/validator/test/_expect.js';
import { runVectorCase, type ValidatorVectorCase, type ValidatorVectorWorld } from '../scripts/vectors/validator-world.js';

const ROOT = join(import.meta.dirname, '..');
const GENERATOR = 'scripts/generate-validator-vectors.ts';
const file = JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'validator', 'decisions.json'), 'utf8')) as {
  source: string;
  generator: string;
  world: ValidatorVectorWorld;
  cases: ValidatorVectorCase[];
};
const tmp = mkdtempSync(join(tmpdir(), 'smki-validator-vectors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const pkcs8 = (hex: string) => createPrivateKey({ key: Buffer.from(fromHex(hex)), format: 'der', type: 'pkcs8' });
const acbPublic = createPublicKey(pkcs8(file.world.acbPrivateKey));
const meterKey = new Map<string, ReturnType<typeof pkcs8>>(file.world.devices.map((d, i) => [d.device as string, pkcs8(file.world.meterKeys[i] as string)]));

describe('validator decision vectors', () => {
  it('has a case for every decision code, and more rejections than acceptances', () => {
    const codes = new Set(file.cases.flatMap((c) => [c.errorCode, ...(c.errorCodes ?? [])]).filter(Boolean));
    for (const code of [
      'ERR_COMMAND_SIGNATURE_INVALID', 'ERR_COMMAND_PORTFOLIO_MISMATCH', 'ERR_COMMAND_SIGNER_REVOKED', 'ERR_COMMAND_SIGNER_EXPIRED',
      'ERR_COMMAND_REVOCATION_UNKNOWN', 'ERR_COMMAND_SIGNER_UNKNOWN', 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE', 'ERR_COMMAND_NO_TRUST_ANCHOR',
      'ERR_COMMAND_ROLE_NOT_ELIGIBLE', 'ERR_COMMAND_NOT_RESPONSIBLE', 'ERR_COMMAND_ORIGINATOR_UNKNOWN', 'ERR_COMMAND_SENDER_MISMATCH',
      'ERR_COMMAND_UNKNOWN_MESSAGE_CODE', 'ERR_COMMAND_SIGNATURE_MISSING', 'ERR_COMMAND_REPLAYED', 'ERR_COMMAND_COUNTER_AHEAD',
      'ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH', 'ERR_COMMAND_UNKNOWN_DEVICE', 'ERR_COMMAND_NOT_A_COMMAND', 'ERR_FIRMWARE_NOT_APPROVED',
      'ERR_COMMAND_QUARANTINED', 'ERR_GBCS_MALFORMED', 'ERR_COMMAND_TOO_LARGE', 'ERR_COMMAND_DEVICE_KEY_UNUSABLE',
      'ERR_COMMAND_PAYLOAD_MALFORMED', 'ERR_COMMAND_SIGNER_PATH_INVALID',
    ]) {
      expect(codes, code).toContain(code);
    }
    const invalid = file.cases.filter((c) => c.result === 'invalid').length;
    expect(invalid).toBeGreaterThan(file.cases.length - invalid);
    expect(file.generator).toBe(GENERATOR);
  });

  it.each(file.cases.map((c) => [c.id, c] as const))('%s', async (id, c) => {
    const got = await runVectorCase(file.world, c, join(tmp, id));
    expect(got.problems).toEqual([]);
    if (c.frame !== undefined) {
      expect(got.frame).toBe(c.frame);
      const device = (got.decisions[0] as { device: string }).device;
      expect(simulatorCrypto.frameMacVerifies(fromHex(c.frame), meterKey.get(device)!, acbPublic)).toBe(true);
    }
    for (const d of got.decisions) {
      if (d.outcome === 'accepted') expect(simulatorCrypto.frameMacVerifies(d.frame, meterKey.get(d.device)!, acbPublic)).toBe(true);
      // A rejection names the step docs/validator.md's table gives its code.
      if (d.outcome === 'rejected') expect(d.step, d.code).toBe(DOCUMENTED_STEP.get(d.code));
    }
  });
});

describe('generator', () => {
  it('reproduces the validator vectors byte for byte from their seeds', () => {
    const out = execFileSync(join(ROOT, 'node_modules', '.bin', 'tsx'), [GENERATOR, '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/^checked 1 file/m);
  }, 180_000);
});
