// DUIS XML-signature vectors: test-vectors/duis/{requests,responses,replay}.json, written by
// scripts/generate-duis-vectors.ts from fixed seeds. W3C XML Signature Syntax and Processing
// (enveloped signature), W3C Canonical XML 1.0, W3C Exclusive XML Canonicalization 1.0,
// RFC 4051 §3.3 (ECDSA-SHA256), RFC 5280 §6.1; docs/domain.md §6 and §8 (the DUIS profile, the
// signer checks, request ids as anti-replay counters). Every case runs through verifyDuis with a
// DuisTrust built from the file's own certificates and CRLs at the file's `now`; the valid
// Requests (and a few broken ones) are also checked by an independent verifier, the JDK's XML
// Signature (test/java/DuisXmlSig.java), in one JVM run.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derToPem, fromHex, isSmkiError, toHex } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { MemoryStateStore } from '@smki/store';
import { DuisTrust, verifyDuis } from '../src/index.js';
import type { VerifiedDuis, VerifyDuisOptions } from '../src/index.js';
import { compileJava, runJava } from './_java.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const GENERATOR = 'scripts/generate-duis-vectors.ts';

interface Expected {
  kind: 'request' | 'response';
  originator: string;
  target: string;
  counter: string;
  requestId: string;
  serviceReference?: string;
  serviceReferenceVariant?: string;
  commandVariant?: string;
  body: string;
  signer: string;
  digest: string;
}
interface Step {
  xml: string;
  result: 'valid' | 'invalid';
  errorCode?: string;
  counter?: string;
  body?: string;
}
interface Case {
  id: string;
  comment: string;
  clause: string;
  input: {
    expect: 'request' | 'response';
    xml?: string;
    maxBytes?: number;
    dcc?: string;
    replay?: { maxAgeMs?: number; maxFutureMs?: number };
    sequence?: Step[];
  };
  result: 'valid' | 'invalid';
  errorCode?: string;
  expected?: Expected;
  jdk?: 'valid' | 'invalid';
}
interface VectorFile {
  source: string;
  generator: string;
  comment: string;
  now: string;
  trust: {
    certificates: Record<string, string>;
    crls: Record<string, string>;
    notTrusted: Record<string, string>;
  };
  cases: Case[];
}

const load = (name: string) => JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'duis', name), 'utf8')) as VectorFile;
const files = { requests: load('requests.json'), responses: load('responses.json'), replay: load('replay.json') };
const allCases = Object.values(files).flatMap((f) => f.cases);

const trustOf = (f: VectorFile) =>
  new DuisTrust({ certificates: Object.values(f.trust.certificates).map((h) => fromHex(h)), crls: Object.values(f.trust.crls).map((h) => fromHex(h)) });

/** The outcome of one verification: the verified document or the error's code. */
async function run(xml: string, trust: DuisTrust, options: VerifyDuisOptions): Promise<{ verified?: VerifiedDuis; code?: string }> {
  try {
    return { verified: await verifyDuis(xml, trust, options) };
  } catch (e) {
    if (!isSmkiError(e)) throw e; // a verifier fails with a SmkiError, never anything else
    return { code: e.code };
  }
}

function checkVerified(f: VectorFile, e: Expected, v: VerifiedDuis): void {
  expect(v.kind).toBe(e.kind);
  expect(v.originator).toBe(e.originator);
  expect(v.target).toBe(e.target);
  expect(v.counter).toBe(BigInt(e.counter));
  expect(v.requestIdText).toBe(e.requestId);
  expect(v.serviceReference).toBe(e.serviceReference);
  expect(v.serviceReferenceVariant).toBe(e.serviceReferenceVariant);
  expect(v.commandVariant).toBe(e.commandVariant);
  expect(v.body).toBe(e.body);
  expect(toHex(v.certificate.der)).toBe(f.trust.certificates[e.signer]);
  // The document as verified is exactly what the reference digested.
  expect(createHash('sha256').update(v.document).digest('base64')).toBe(e.digest);
  expect(Buffer.from(v.document).toString('utf8')).toBe(v.xml);
}

describe.each([
  ['requests', files.requests],
  ['responses', files.responses],
])('DUIS %s vectors', (_name, f) => {
  const trust = trustOf(f);
  const now = new Date(f.now);
  it.each(f.cases.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    const { xml, expect: kind, maxBytes, dcc } = c.input;
    const got = await run(xml as string, trust, { expect: kind, now, ...(maxBytes !== undefined ? { maxBytes } : {}), ...(dcc !== undefined ? { dcc: dcc as Eui64 } : {}) });
    expect(got.code ?? 'valid', c.comment).toBe(c.errorCode ?? 'valid');
    expect(c.result).toBe(c.errorCode === undefined ? 'valid' : 'invalid');
    if (c.result === 'valid') checkVerified(f, c.expected as Expected, got.verified as VerifiedDuis);
  });
});

describe('DUIS replay vectors', () => {
  const f = files.replay;
  const trust = trustOf(f);
  const now = new Date(f.now);
  it.each(f.cases.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    const store = new MemoryStateStore();
    try {
      const sequence = c.input.sequence ?? [];
      expect(sequence.length).toBeGreaterThan(0);
      for (const [i, step] of sequence.entries()) {
        const got = await run(step.xml, trust, { expect: 'request', now, replay: { store, ...c.input.replay } });
        expect(got.code ?? 'valid', `step ${i}`).toBe(step.errorCode ?? 'valid');
        if (step.result === 'valid') {
          expect(got.verified?.counter, `step ${i}`).toBe(BigInt(step.counter as string));
          expect(got.verified?.body, `step ${i}`).toBe(step.body);
        }
      }
      const last = sequence.at(-1) as Step;
      expect([c.result, c.errorCode]).toEqual([last.result, last.errorCode]);
    } finally {
      await store.close();
    }
  });
});

describe('DUIS vector files', () => {
  it('name their generator, a clause per case, unique ids, the same trust and time', () => {
    const ids = allCases.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const f of Object.values(files)) {
      expect(f.generator).toBe(GENERATOR);
      expect(f.now).toBe(files.requests.now);
      expect(f.trust).toEqual(files.requests.trust);
    }
    for (const c of allCases) {
      expect(c.clause, c.id).toMatch(/\S/);
      expect(c.comment, c.id).toMatch(/\S/);
      expect(c.id).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('break every verification rule, with more invalid cases than valid ones', () => {
    const codes = new Set(allCases.flatMap((c) => [c.errorCode, ...(c.input.sequence ?? []).map((s) => s.errorCode)]).filter(Boolean));
    for (const code of [
      'ERR_DUIS_TOO_LARGE', 'ERR_DUIS_DOCTYPE', 'ERR_DUIS_MALFORMED', 'ERR_DUIS_COMMENT', 'ERR_DUIS_PROCESSING_INSTRUCTION',
      'ERR_DUIS_DOCUMENT_KIND', 'ERR_DUIS_STRUCTURE', 'ERR_DUIS_REQUEST_ID_INVALID', 'ERR_DUIS_SIGNATURE_COUNT',
      'ERR_DUIS_SIGNATURE_PLACEMENT', 'ERR_DUIS_SIGNATURE_STRUCTURE', 'ERR_DUIS_REFERENCE_COUNT', 'ERR_DUIS_REFERENCE_URI',
      'ERR_DUIS_TRANSFORMS', 'ERR_DUIS_ALGORITHM', 'ERR_DUIS_KEY_INFO', 'ERR_DUIS_CERTIFICATE_NOT_FOUND',
      'ERR_DUIS_CERTIFICATE_EXPIRED', 'ERR_DUIS_CERTIFICATE_REVOKED', 'ERR_DUIS_CERTIFICATE_PATH_INVALID',
      'ERR_DUIS_SIGNER_ROLE', 'ERR_DUIS_SIGNER_NOT_ORIGINATOR', 'ERR_DUIS_DIGEST_MISMATCH', 'ERR_DUIS_SIGNATURE_INVALID',
      'ERR_DUIS_STALE', 'ERR_DUIS_REPLAYED', 'ERR_DUIS_PRECOMMAND_UNEXPECTED',
    ]) {
      expect(codes, code).toContain(code);
    }
    const invalid = allCases.filter((c) => c.result === 'invalid').length;
    expect(invalid).toBeGreaterThan(allCases.length - invalid);
    // The critical services, a read and a set.
    const services = new Set(files.requests.cases.filter((c) => c.result === 'valid').map((c) => c.expected?.serviceReference));
    for (const s of ['7.1', '7.2', '7.3', '11.3', '6.15.1', '4.1.1', '6.11']) expect(services, s).toContain(s);
  });
});

describe('the JDK agrees, an independent XML Signature implementation', () => {
  let classes: string;
  let dir: string;
  beforeAll(async () => {
    classes = await compileJava();
    dir = mkdtempSync(join(tmpdir(), 'smki-duis-vectors-'));
  }, 180_000);
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('verifies every valid Request vector and agrees with every case marked jdk, in one JVM run', () => {
    const f = files.requests;
    const marked = f.cases.filter((c) => c.jdk !== undefined);
    const valid = f.cases.filter((c) => c.result === 'valid');
    // Every valid Request is signed by the User and marked; the broken ones marked include these two.
    expect(valid.every((c) => c.jdk === 'valid' && c.expected?.signer === 'user')).toBe(true);
    for (const id of ['tampered-body', 'signature-bit-flipped']) expect(marked.find((c) => c.id === id)?.jdk, id).toBe('invalid');
    const cert = join(dir, 'user.pem');
    writeFileSync(cert, derToPem(fromHex(f.trust.certificates.user as string), 'CERTIFICATE'));
    const paths = marked.map((c) => {
      const p = join(dir, `${c.id}.xml`);
      writeFileSync(p, c.input.xml as string, 'utf8');
      return p;
    });
    const r = runJava(classes, ['verify-batch', cert, ...paths], undefined, 120_000);
    const lines = r.stdout.split('\n').filter((l) => l.length > 0);
    expect(lines, r.stderr).toHaveLength(marked.length);
    const verdict = new Map(lines.map((l) => {
      const [status, file] = l.split('\t') as [string, string];
      return [file, status] as const;
    }));
    for (const [i, c] of marked.entries()) {
      const status = verdict.get(paths[i] as string) ?? '(none)';
      if (c.jdk === 'valid') expect(status, c.id).toBe('VALID');
      else expect(status, c.id).toMatch(/^INVALID /);
    }
    expect(verdict.get(join(dir, 'tampered-body.xml'))).toMatch(/digest mismatch/);
    expect(verdict.get(join(dir, 'signature-bit-flipped.xml'))).toMatch(/signature value does not verify/);
  }, 180_000);
});

describe('generator', () => {
  it('reproduces the DUIS vectors byte for byte from their seeds', () => {
    const out = execFileSync(join(ROOT, 'node_modules', '.bin', 'tsx'), [GENERATOR, '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/^checked 3 files/m);
  }, 180_000);
});
