// Test vectors: test-vectors/gbcs/credentials.json, written by scripts/generate-gbcs-vectors.ts
// (cases from scripts/vectors/gbcs-credentials.ts) from fixed seeds. docs/domain.md §9 (CS02b
// payload, modes, response, alert 0x00CB; CS02c/d/e) and §10 (the rules the toolkit applies).
// The generator's --check run (test/gbcs-vectors.test.ts) keeps the file reproducible byte for byte.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromHex } from '@smki/core';
import { CREDENTIAL_DECODERS, jsonify, type CredentialCase } from '../../../scripts/vectors/gbcs-credentials.js';
import { outcome } from '../../../scripts/vectors/gbcs-fields.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const file = JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'gbcs', 'credentials.json'), 'utf8')) as {
  source: string;
  generator: string;
  comment: string;
  cases: CredentialCase[];
};

describe('test-vectors/gbcs/credentials.json', () => {
  it('has the fields docs/conventions.md asks of a vector file, unique ids, and more negative cases than positive', () => {
    expect(file.source).toMatch(/^docs\/domain\.md §9/);
    expect(file.generator).toBe('scripts/generate-gbcs-vectors.ts');
    expect(new Set(file.cases.map((c) => c.id)).size).toBe(file.cases.length);
    for (const c of file.cases) {
      expect(c.clause, c.id).toMatch(/docs\/domain\.md|X\.690/);
      expect(Object.keys(CREDENTIAL_DECODERS), c.id).toContain(c.input.decoder);
      if (c.result === 'valid') expect(c.errorCode, c.id).toBeUndefined();
      else expect(c.errorCode, c.id).toMatch(/^ERR_/);
    }
    const negatives = file.cases.filter((c) => c.result === 'invalid').length;
    expect(negatives).toBeGreaterThan(file.cases.length - negatives);
  });

  it('covers every supported CS02b mode, signed and unsigned, responses with device lengths, the alert and CS02c/d/e', () => {
    const valid = file.cases.filter((c) => c.result === 'valid');
    const modes = new Set(valid.filter((c) => c.input.decoder === 'command').map((c) => (c.expected as { mode: number }).mode));
    expect([...modes].sort()).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(valid.some((c) => c.id === 'mode-2-supplier-by-supplier-signed')).toBe(true);
    expect(valid.some((c) => c.input.decoder === 'response' && /^308200/.test(c.input.data))).toBe(true);
    for (const d of ['alert', 'cs02c-command', 'cs02c-response', 'cs02d-command', 'cs02d-response', 'cs02e-command', 'cs02e-response'] as const) {
      expect(valid.some((c) => c.input.decoder === d), d).toBe(true);
      expect(file.cases.some((c) => c.input.decoder === d && c.result === 'invalid'), d).toBe(true);
    }
  });

  it.each(file.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const decode = CREDENTIAL_DECODERS[c.input.decoder] as (b: Uint8Array) => unknown;
    const r = outcome(() => decode(fromHex(c.input.data)));
    if (c.result === 'valid') {
      expect(r.code).toBeUndefined();
      expect(jsonify(r.value)).toEqual(c.expected);
    } else {
      expect(r.code).toBe(c.errorCode);
      if (c.offset !== undefined) expect(r.offset).toBe(c.offset);
    }
  });
});
