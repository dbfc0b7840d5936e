// Test vectors: test-vectors/pki/*.json, written by scripts/generate-vectors.ts from fixed seeds.
// docs/domain.md §2 (profiles), RFC 5280 §4 (certificate), §6.1 (path validation), §6.3 (CRLs).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defineEnvironment,
  lintCertificate,
  parseCertificate,
  TEST_ENVIRONMENT,
  validatePath,
  type CertificateKind,
  type SmkiEnvironment,
} from '@smki/pki';

const ROOT = join(import.meta.dirname, '..');
const load = (name: string) => JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'pki', name), 'utf8'));

interface EnvOverride {
  organisationPolicies?: string[];
  devicePolicies?: string[];
  deviceHwTypes?: string[];
}
const env = (o?: EnvOverride): SmkiEnvironment => (o ? defineEnvironment({ ...TEST_ENVIRONMENT, ...o, name: 'vector' }) : TEST_ENVIRONMENT);
const errorCodes = (fs: readonly { code: string; severity: string }[]) => [...new Set(fs.filter((f) => f.severity === 'error').map((f) => f.code))].sort();
const warningCodes = (fs: readonly { code: string; severity: string }[]) => [...new Set(fs.filter((f) => f.severity === 'warning').map((f) => f.code))].sort();

interface CertVector {
  id: string;
  input: { certificate: string; expectedKind?: CertificateKind; environment?: EnvOverride };
  result: 'valid' | 'invalid';
  errorCode?: string;
  warnings?: string[];
}
interface PathVector {
  id: string;
  input: { leaf: string; intermediates: string[]; anchors: string[]; crls?: string[]; at: string; requireRevocation?: boolean; environment?: EnvOverride };
  result: 'valid' | 'invalid';
  errorCode?: string;
  alsoReported?: string[];
  revocationChecked?: boolean;
}
const certificates = load('certificates.json') as { source: string; generator: string; cases: CertVector[] };
const paths = load('paths.json') as { source: string; generator: string; cases: PathVector[] };

describe('test-vectors/pki/certificates.json (lintCertificate)', () => {
  it('has the fields docs/conventions.md asks of a vector file, and negatives outnumber positives', () => {
    expect(certificates.source).toBeTypeOf('string');
    expect(certificates.generator).toBe('scripts/generate-vectors.ts');
    const neg = certificates.cases.filter((c) => c.result === 'invalid').length;
    expect(neg).toBeGreaterThan(certificates.cases.length - neg);
  });

  it.each(certificates.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const cert = parseCertificate(c.input.certificate);
    const findings = lintCertificate(cert, { environment: env(c.input.environment), ...(c.input.expectedKind ? { expectedKind: c.input.expectedKind } : {}) });
    expect(errorCodes(findings)).toEqual(c.result === 'valid' ? [] : [c.errorCode]);
    expect(warningCodes(findings)).toEqual([...(c.warnings ?? [])].sort());
  });

  it('covers every ERR_PROFILE_ code that a certificate can break with a negative case', async () => {
    const { SMKI_ERROR_CODES } = await import('@smki/core');
    const covered = new Set<string | undefined>(certificates.cases.map((c) => c.errorCode));
    for (const w of certificates.cases.flatMap((c) => c.warnings ?? [])) covered.add(w);
    const missing = Object.keys(SMKI_ERROR_CODES).filter((k) => k.startsWith('ERR_PROFILE_') && !covered.has(k));
    expect(missing).toEqual([]);
  });
});

describe('test-vectors/pki/paths.json (validatePath)', () => {
  it.each(paths.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const r = validatePath(c.input.leaf, {
      intermediates: c.input.intermediates,
      anchors: c.input.anchors,
      at: new Date(c.input.at),
      environment: env(c.input.environment),
      ...(c.input.crls ? { crls: c.input.crls } : {}),
      ...(c.input.requireRevocation ? { requireRevocation: true } : {}),
    });
    expect(r.valid).toBe(c.result === 'valid');
    expect(errorCodes(r.findings)).toEqual(c.result === 'valid' ? [] : [c.errorCode, ...(c.alsoReported ?? [])].sort());
    if (c.revocationChecked !== undefined) expect(r.revocationChecked).toBe(c.revocationChecked);
    if (r.valid) expect(r.path[0]?.der).toEqual(parseCertificate(c.input.leaf).der);
  });
});

describe('generator', () => {
  it('reproduces every vector file byte for byte from its seeds', () => {
    const out = execFileSync(join(ROOT, 'node_modules', '.bin', 'tsx'), ['scripts/generate-vectors.ts', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/^checked 3 files/m);
  }, 120_000);
});
