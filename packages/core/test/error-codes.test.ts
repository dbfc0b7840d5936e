// docs/conventions.md, Errors: a code, once released, is never renamed or reused; a test snapshots the
// list. The snapshot (error-codes.snapshot.json) is committed; regenerate it on purpose with
// `pnpm exec tsx scripts/snapshot-error-codes.ts` when a code is added.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeCode, SMKI_ERROR_CODES } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';

const snapshot = JSON.parse(readFileSync(new URL('./error-codes.snapshot.json', import.meta.url), 'utf8')) as {
  codes: string[];
};
const current = Object.keys(SMKI_ERROR_CODES);
const REGENERATE = 'pnpm exec tsx scripts/snapshot-error-codes.ts';

describe('SMKI_ERROR_CODES against the committed snapshot', () => {
  it('every code in the snapshot still exists (codes are never removed or renamed)', () => {
    const gone = snapshot.codes.filter((c) => !current.includes(c));
    expect(gone, `removed or renamed codes: ${gone.join(', ')}; put them back`).toEqual([]);
  });

  it('the snapshot lists exactly the current codes (additions are deliberate)', () => {
    const added = current.filter((c) => !snapshot.codes.includes(c));
    expect(added, `new codes not in the snapshot: ${added.join(', ')}; run ${REGENERATE} and commit`).toEqual([]);
    expect([...current].sort()).toEqual([...snapshot.codes].sort());
  });

  it('the snapshot has no duplicates', () => {
    expect(new Set(snapshot.codes).size).toBe(snapshot.codes.length);
  });
});

describe('code hygiene', () => {
  it.each(current)('%s is ERR_ + upper-case words and has a one-line meaning', (code) => {
    expect(code).toMatch(/^ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/);
    const meaning = describeCode(code as SmkiErrorCode);
    expect(meaning).toBe(SMKI_ERROR_CODES[code as SmkiErrorCode]);
    expect(meaning.trim().length).toBeGreaterThan(5);
    expect(meaning).not.toMatch(/\n/);
  });

  it('meanings are distinct (no two codes for one condition)', () => {
    const meanings = Object.values(SMKI_ERROR_CODES);
    expect(new Set(meanings).size).toBe(meanings.length);
  });
});
