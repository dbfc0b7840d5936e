// docs/threat-model.md cites, for each attack, the check that stops it (its SmkiError code,
// docs/conventions.md "Errors") and the test that proves it. This test keeps the page from
// drifting: every cited test file exists and has a test of exactly the quoted name, every cited
// code is a key of SMKI_ERROR_CODES, and every row of a threat table cites at least one test.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { SMKI_ERROR_CODES } from '@smki/core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PAGE = 'docs/threat-model.md';

/** A test the page cites: the file (relative to the root) and the name as given to `it(…)`. */
interface TestRef {
  readonly file: string;
  readonly name: string;
}

/** One row of a threat table: where it is, and what its Code and Test cells cite. */
interface ThreatRow {
  readonly line: number;
  readonly attack: string;
  readonly codes: readonly string[];
  readonly tests: readonly TestRef[];
}

/** The cells of a Markdown table row (`| a | b |`), trimmed. Cells hold no `|` of their own. */
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

/**
 * The rows of every table whose header has the columns Attack, Code and Test. A Test cell cites
 * tests as `` `path/to/file.test.ts` › `test name` ``, several separated by `<br>`; a Code cell
 * names codes as `` `ERR_…` `` (or `—` for none).
 */
export function threatRows(markdown: string): ThreatRow[] {
  const lines = markdown.split('\n');
  const rows: ThreatRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i] as string;
    if (!header.startsWith('|') || !/^\|[\s:|-]+\|$/.test((lines[i + 1] ?? '').trim())) continue;
    const names = cells(header).map((c) => c.toLowerCase());
    const at = { attack: names.indexOf('attack'), code: names.indexOf('code'), test: names.indexOf('test') };
    if (at.attack < 0 || at.code < 0 || at.test < 0) continue;
    for (i += 2; i < lines.length && (lines[i] as string).startsWith('|'); i++) {
      const c = cells(lines[i] as string);
      rows.push({
        line: i + 1,
        attack: c[at.attack] ?? '',
        codes: [...(c[at.code] ?? '').matchAll(/`(ERR_[A-Z0-9_]+)`/g)].map((m) => m[1] as string),
        tests: [...(c[at.test] ?? '').matchAll(/`([^`]+\.test\.ts)`\s*›\s*`([^`]+)`/g)].map((m) => ({ file: m[1] as string, name: m[2] as string })),
      });
    }
  }
  return rows;
}

/**
 * The names of the tests a file declares: the first argument of `it(…)` / `test(…)`, and the
 * name template of `it.each(…)(…)` / `test.each(…)(…)`, as string values (escapes resolved), read
 * with the TypeScript parser. Skipped, todo and `.only` tests are not counted.
 */
export function declaredTests(source: string): Set<string> {
  const file = ts.createSourceFile('t.ts', source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const names = new Set<string>();
  const isTestFn = (e: ts.Expression): boolean => ts.isIdentifier(e) && (e.text === 'it' || e.text === 'test');
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const direct = isTestFn(callee);
      const each = ts.isCallExpression(callee) && ts.isPropertyAccessExpression(callee.expression) && isTestFn(callee.expression.expression) && callee.expression.name.text === 'each';
      const first = node.arguments[0];
      if ((direct || each) && first && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first))) names.add(first.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return names;
}

/** Everything wrong with the page's citations, one line each; empty when the page is right. */
export function citationProblems(markdown: string, root: string): string[] {
  const problems: string[] = [];
  const byFile = new Map<string, Set<string> | undefined>();
  for (const row of threatRows(markdown)) {
    const where = `line ${row.line} (${row.attack.slice(0, 40)})`;
    if (row.tests.length === 0) problems.push(`${where}: cites no test`);
    for (const code of row.codes) if (!Object.hasOwn(SMKI_ERROR_CODES, code)) problems.push(`${where}: ${code} is not a key of SMKI_ERROR_CODES`);
    for (const { file, name } of row.tests) {
      if (!/^(packages\/[a-z]+\/)?test\/[\w./-]+\.test\.ts$/.test(file)) {
        problems.push(`${where}: ${file} is not a test file of the repository`);
        continue;
      }
      if (!byFile.has(file)) {
        const path = join(root, file);
        byFile.set(file, existsSync(path) ? declaredTests(readFileSync(path, 'utf8')) : undefined);
      }
      const declared = byFile.get(file);
      if (declared === undefined) problems.push(`${where}: ${file} does not exist`);
      else if (!declared.has(name)) problems.push(`${where}: ${file} has no test named "${name}"`);
    }
  }
  // Codes cited anywhere on the page, in prose as well as in tables.
  for (const m of markdown.matchAll(/\bERR_[A-Z0-9_]+\b/g)) {
    const line = markdown.slice(0, m.index).split('\n').length;
    if (!Object.hasOwn(SMKI_ERROR_CODES, m[0])) problems.push(`line ${line}: ${m[0]} is not a key of SMKI_ERROR_CODES`);
  }
  return problems;
}

const markdown = readFileSync(join(ROOT, PAGE), 'utf8');

describe(`${PAGE} cites real tests and real codes`, () => {
  it('has threat tables, and every row names a code or says none, and cites a test', () => {
    const rows = threatRows(markdown);
    expect(rows.length).toBeGreaterThanOrEqual(30);
    for (const r of rows) {
      expect(r.tests.length, `line ${r.line}`).toBeGreaterThan(0);
      expect(r.codes.length > 0 || /—/.test(markdown.split('\n')[r.line - 1] ?? ''), `line ${r.line}`).toBe(true);
    }
  });

  it('every cited test file exists and declares a test of exactly the quoted name; every code is in SMKI_ERROR_CODES', () => {
    expect(citationProblems(markdown, ROOT)).toEqual([]);
  });
});

describe('the check itself', () => {
  const good = '`packages/validator/test/validator.test.ts` › `an unknown device: ERR_COMMAND_UNKNOWN_DEVICE`';
  const table = (code: string, test: string): string =>
    ['| Attack | Stopped by | Code | Test |', '| --- | --- | --- | --- |', `| an unknown device | parse | ${code} | ${test} |`].join('\n');

  it('passes a correct row', () => {
    expect(citationProblems(table('`ERR_COMMAND_UNKNOWN_DEVICE`', good), ROOT)).toEqual([]);
  });

  it('fails on a wrong test name, a missing file, an unknown code and a row without a test', () => {
    const wrongName = good.replace('an unknown device', 'an unknown devise');
    expect(citationProblems(table('`ERR_COMMAND_UNKNOWN_DEVICE`', wrongName), ROOT)).toEqual([
      'line 3 (an unknown device): packages/validator/test/validator.test.ts has no test named "an unknown devise: ERR_COMMAND_UNKNOWN_DEVICE"',
    ]);
    const missing = good.replace('validator.test.ts', 'nowhere.test.ts');
    expect(citationProblems(table('`ERR_COMMAND_UNKNOWN_DEVICE`', missing), ROOT)).toEqual(['line 3 (an unknown device): packages/validator/test/nowhere.test.ts does not exist']);
    expect(citationProblems(table('`ERR_COMMAND_UNKNOWN_DEVISE`', good), ROOT)).toEqual([
      'line 3 (an unknown device): ERR_COMMAND_UNKNOWN_DEVISE is not a key of SMKI_ERROR_CODES',
      'line 3: ERR_COMMAND_UNKNOWN_DEVISE is not a key of SMKI_ERROR_CODES',
    ]);
    expect(citationProblems(table('`ERR_COMMAND_UNKNOWN_DEVICE`', 'none'), ROOT)).toEqual(['line 3 (an unknown device): cites no test']);
  });

  it('reads test names as their string values: escaped quotes, either quote, template literals, it.each templates', () => {
    const source = [
      "it('a device\\'s cell', () => {});",
      'it("another role\'s certificate", () => {});',
      'test(`a template`, () => {});',
      "it.each([1, 2])('case %i', () => {});",
      "it.skip('skipped', () => {});",
      "describe('a describe', () => {});",
    ].join('\n');
    expect([...declaredTests(source)].sort()).toEqual(["a device's cell", 'a template', "another role's certificate", 'case %i']);
  });
});
