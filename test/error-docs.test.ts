// docs/conventions.md, "Errors" (one error class with stable string codes; callers switch on
// `code`) and "Docs" (`@throws` with the codes; the API site is for auditors). docs/errors.md, the
// site's error-code page, is generated from the code by scripts/generate-error-docs.ts; this test
// regenerates it in memory and fails when the committed page differs, so the page cannot drift
// from SMKI_ERROR_CODES, from the `@throws` of the public API or from where codes are raised.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMKI_ERROR_CODES } from '@smki/core';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { createsCode, declaredCodes, ERROR_DOCS_PATH, type ErrorDocs, generateErrorDocs } from '../scripts/generate-error-docs.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REGENERATE = 'pnpm exec tsx scripts/generate-error-docs.ts';
const CODES = Object.keys(SMKI_ERROR_CODES) as (keyof typeof SMKI_ERROR_CODES)[];

let docs: ErrorDocs;
let committed: string;
beforeAll(() => {
  docs = generateErrorDocs(ROOT);
  committed = readFileSync(join(ROOT, ERROR_DOCS_PATH), 'utf8');
}, 120_000);

/** The first lines where two texts differ, for a readable failure. */
function firstDifferences(expected: string, actual: string, max = 8): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < max; i++) {
    if (a[i] !== b[i]) out.push(`line ${i + 1}:\n  generated: ${a[i] ?? '(end of file)'}\n  committed: ${b[i] ?? '(end of file)'}`);
  }
  return out.join('\n');
}

describe('docs/errors.md is what scripts/generate-error-docs.ts writes', () => {
  it('the committed page equals the page generated from the code now', () => {
    const same = docs.markdown === committed;
    expect(same, same ? '' : `${ERROR_DOCS_PATH} is out of date; run \`${REGENERATE}\` and commit it.\n${firstDifferences(docs.markdown, committed)}`).toBe(true);
  });

  it('every code of SMKI_ERROR_CODES has its own section on the committed page, with its meaning', () => {
    const headings = [...committed.matchAll(/^### (\S+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual(CODES);
    for (const code of CODES) {
      const section = committed.slice(committed.indexOf(`### ${code}\n`));
      expect(section, code).toContain(`\n\n${SMKI_ERROR_CODES[code]}`);
    }
  });

  it('a code added to SMKI_ERROR_CODES without regenerating makes the pages differ', () => {
    const errorsTs = readFileSync(join(ROOT, 'packages/core/src/errors.ts'), 'utf8');
    const added = errorsTs.replace(
      /export const SMKI_ERROR_CODES = \{\n/,
      (m) => `${m}  /** A code added for this test. */\n  ERR_ADDED_FOR_THE_TEST: 'A code added for this test',\n`,
    );
    expect(added).not.toBe(errorsTs);
    expect(declaredCodes(added).map((c) => c.code)).toEqual(['ERR_ADDED_FOR_THE_TEST', ...CODES]);
    expect(committed).not.toContain('ERR_ADDED_FOR_THE_TEST');
  });
});

describe('the generator reads SMKI_ERROR_CODES as declared', () => {
  it('every code, in order, with its value as the meaning and a doc comment', () => {
    expect(docs.codes.map((c) => c.code)).toEqual(CODES);
    for (const c of docs.codes) {
      expect(c.meaning, c.code).toBe(SMKI_ERROR_CODES[c.code as keyof typeof SMKI_ERROR_CODES]);
      expect(c.doc, `${c.code} has no doc comment`).not.toBe('');
    }
  });

  it("groups codes under errors.ts's `// ----` comments, each group a heading of the page", () => {
    const groups = [...new Set(docs.codes.map((c) => c.group))];
    expect(groups).toEqual(expect.arrayContaining(['primitives (core)', 'parsing (pki)', 'revocation', 'key store (keystore)', 'decisions (validator)']));
    expect(docs.codes.find((c) => c.code === 'ERR_INVALID_ARGUMENT')?.group).toBe('primitives (core)');
    expect(docs.codes.find((c) => c.code === 'ERR_REVOKED')?.group).toBe('revocation');
    for (const g of groups) expect(committed, g).toContain(`\n## ${g.charAt(0).toUpperCase()}${g.slice(1)}\n`);
  });

  it('every code named by a public `@throws` is a code of SMKI_ERROR_CODES', () => {
    expect(docs.unknownThrows, docs.unknownThrows.join('\n')).toEqual([]);
  });
});

describe('"raised by": the public @throws and the source files that create a code', () => {
  it('reads @throws through the public surface, by package (functions, classes and their members)', () => {
    const eui = docs.sites.get('ERR_EUI64_INVALID')!;
    expect([...(eui.api.get('core') ?? [])]).toContain('parseEui64()');
    const truncated = docs.sites.get('ERR_BYTES_TRUNCATED')!;
    expect([...(truncated.api.get('core') ?? [])]).toEqual(expect.arrayContaining(['ByteReader.u8()', 'ByteReader.u16()']));
    // A symbol re-exported by another package is listed only under the package that declares it.
    for (const [, s] of docs.sites) for (const names of s.api.values()) expect([...names].every((n) => n.length > 0)).toBe(true);
  });

  it('finds the files that create a code, and only under packages/*/src', () => {
    expect([...docs.sites.get('ERR_EUI64_INVALID')!.files]).toContain('packages/core/src/eui64.ts');
    expect([...docs.sites.get('ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY')!.files]).toContain('packages/pki/src/lint.ts');
    for (const [code, s] of docs.sites) for (const f of s.files) expect(f, code).toMatch(/^packages\/[^/]+\/src\/.+\.[mc]?ts$/);
    for (const [, s] of docs.sites) expect([...s.files]).not.toContain('packages/core/src/errors.ts');
  });

  it.each([
    ["throw new SmkiError('ERR_X', 'm', {});", true],
    ["fail('ERR_X', 'message');", true],
    ["findings.push({ code: 'ERR_X', message: 'm' });", true],
    ["const code = bad ? 'ERR_X' : 'ERR_Y';", true],
    ["return ['ERR_X', 'replay'];", true],
    ["if (isSmkiError(e, 'ERR_X')) retry();", false],
    ["if (e.code === 'ERR_X') retry();", false],
    ["if ('ERR_X' !== c) retry();", false],
    ["switch (c) { case 'ERR_X': break; }", false],
    ["type T = 'ERR_X' | 'ERR_Y';", false],
    ["function f(code: 'ERR_X'): void {}", false],
    ["if (c.startsWith('ERR_X')) retry();", false],
    ["if (RETRY.has('ERR_X')) retry();", false],
    ["if (!expect(await one(tampered), 'ERR_X', 'a tampered command')) failures++;", false],
  ] as const)('%s → creates the code: %s', (source, expected) => {
    const sf = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, true);
    const found: boolean[] = [];
    const visit = (n: ts.Node): void => {
      if (ts.isStringLiteral(n) && n.text === 'ERR_X') found.push(createsCode(n));
      ts.forEachChild(n, visit);
    };
    visit(sf);
    expect(found).toEqual([expected]);
  });
});

describe('the page is part of the API site', () => {
  it('typedoc.json lists it in projectDocuments', () => {
    const { config, error } = ts.readConfigFile(join(ROOT, 'typedoc.json'), ts.sys.readFile);
    expect(error).toBeUndefined();
    expect(config.projectDocuments).toContain(ERROR_DOCS_PATH);
  });

  it("the site's front page (docs/README.md) links to it", () => {
    expect(readFileSync(join(ROOT, 'docs/README.md'), 'utf8')).toMatch(/\]\(errors\.md\)/);
  });
});
