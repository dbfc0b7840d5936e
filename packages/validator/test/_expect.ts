// Assertions shared by the validator's tests (not a test file).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Decision } from '../src/index.js';

/**
 * The step of each rejection code, as docs/validator.md's table of the decision states it: the
 * tests hold every rejection to its documented step, so the table and the code cannot drift.
 */
export const DOCUMENTED_STEP: ReadonlyMap<string, string> = (() => {
  const text = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'validator.md'), 'utf8');
  const map = new Map<string, string>();
  for (const row of text.matchAll(/^\| ([a-z-]+) \| [^|]+ \| ([^|]+) \|$/gm)) {
    // Every code the row's code cell names (one row gives the store's three failures).
    for (const code of (row[2] as string).matchAll(/`(ERR_[A-Z0-9_]+)`/g)) map.set(code[1] as string, row[1] as string);
  }
  return map;
})();

/** A rejection with this code, at its documented step. */
export function expectRejectedAt(d: Decision, code: string): void {
  expect(d.outcome, JSON.stringify(d, (_k, x) => (typeof x === 'bigint' ? x.toString() : x))).toBe('rejected');
  const r = d as { code: string; step: string };
  expect(r.code).toBe(code);
  const step = DOCUMENTED_STEP.get(code);
  expect(step, `${code} is not in docs/validator.md's table`).toBeDefined();
  expect(r.step, code).toBe(step);
}
