// OpenSSL as a second opinion on the path vectors (RFC 5280 §6.1 and §6.3): for every case in
// test-vectors/pki/paths.json whose rule OpenSSL also checks, `openssl verify` with -attime,
// -policy/-explicit_policy and -crl_check_all must reach the same verdict as validatePath.
// Rules that are SMKI-only (profiles, the two PKIs, environment policy sets) OpenSSL does not
// know; those cases are listed and checked to be ones OpenSSL accepts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCertificate, TEST_ENVIRONMENT, validatePath } from '@smki/pki';

const ROOT = join(import.meta.dirname, '..');
interface PathVector {
  id: string;
  input: { leaf: string; intermediates: string[]; anchors: string[]; crls?: string[]; at: string; requireRevocation?: boolean; environment?: { organisationPolicies?: string[] } };
  result: 'valid' | 'invalid';
}
const { cases } = JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'pki', 'paths.json'), 'utf8')) as { cases: PathVector[] };

/** Cases whose broken rule is SMKI-only: OpenSSL (knowing only RFC 5280) accepts the path. */
// (device-under-oca is not here: OpenSSL refuses it too, by policy processing, since the OCA carries
// only the organisation policy.)
const SMKI_ONLY = new Set(['leaf-profile-violation']);

const dir = mkdtempSync(join(tmpdir(), 'smki-openssl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function opensslVerify(c: PathVector): { ok: boolean; output: string } {
  const w = (name: string, text: string) => {
    const p = join(dir, `${c.id}-${name}`);
    writeFileSync(p, text);
    return p;
  };
  const leaf = parseCertificate(c.input.leaf);
  const policy = leaf.kind === 'device' ? TEST_ENVIRONMENT.devicePolicies[0] : (c.input.environment?.organisationPolicies ?? TEST_ENVIRONMENT.organisationPolicies)[0];
  const args = ['verify', '-x509_strict', '-partial_chain', '-attime', String(Math.floor(Date.parse(c.input.at) / 1000)), '-policy', policy as string, '-explicit_policy'];
  args.push('-CAfile', w('anchors.pem', c.input.anchors.join('') || '\n'));
  if (c.input.intermediates.length > 0) args.push('-untrusted', w('untrusted.pem', c.input.intermediates.join('')));
  if (c.input.crls?.length || c.input.requireRevocation) {
    args.push('-crl_check_all');
    if (c.input.crls?.length) args.push('-CRLfile', w('crls.pem', c.input.crls.join('')));
  }
  args.push(w('leaf.pem', c.input.leaf));
  try {
    return { ok: true, output: execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('openssl verify agrees with validatePath on test-vectors/pki/paths.json', () => {
  it.each(cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const ours = validatePath(c.input.leaf, {
      intermediates: c.input.intermediates,
      anchors: c.input.anchors,
      at: new Date(c.input.at),
      ...(c.input.crls ? { crls: c.input.crls } : {}),
      ...(c.input.requireRevocation ? { requireRevocation: true } : {}),
    });
    const theirs = opensslVerify(c);
    if (c.input.environment) {
      // The environment changes the allowed policy: OpenSSL is asked for that policy, and refuses.
      expect(theirs.ok, theirs.output).toBe(false);
      return;
    }
    if (SMKI_ONLY.has(c.id)) {
      expect(ours.valid).toBe(false);
      expect(theirs.ok, `OpenSSL should accept (SMKI-only rule): ${theirs.output}`).toBe(true);
      return;
    }
    expect(theirs.ok, theirs.output).toBe(ours.valid);
  });

  it('lists SMKI-only cases that exist', () => {
    for (const id of SMKI_ONLY) expect(cases.some((c) => c.id === id)).toBe(true);
  });
});
