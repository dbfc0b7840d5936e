// docs/conventions.md, Tests: the test command checks everything a fresh clone has. vitest runs test
// files without type-checking them (and its typecheck mode covers only *.test-d.ts), so this
// type-checks the whole project as `pnpm run typecheck` does (root tsconfig.json: sources, tests,
// benches, scripts, examples), and reports the result per package so that one package in the
// middle of an edit does not hide the state of the others.
import { dirname, join, relative, resolve } from 'node:path';
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const AREAS = [
  ...readdirSync(join(ROOT, 'packages'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(ROOT, 'packages', d.name, 'package.json')))
    .map((d) => `packages/${d.name}`),
  '(root: scripts, examples, test, configs)',
];

let byArea: Map<string, string[]> | undefined;

function diagnosticsByArea(): Map<string, string[]> {
  if (byArea) return byArea;
  const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error('cannot read tsconfig.json');
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const result = new Map<string, string[]>(AREAS.map((a) => [a, []]));
  const rootArea = AREAS[AREAS.length - 1] as string;
  for (const d of [...parsed.errors, ...ts.getPreEmitDiagnostics(program)]) {
    let area = rootArea;
    let where = '';
    if (d.file) {
      const rel = relative(ROOT, d.file.fileName);
      const m = /^packages\/[^/]+/.exec(rel);
      if (m && result.has(m[0])) area = m[0];
      where = `${rel}:${d.start === undefined ? 0 : d.file.getLineAndCharacterOfPosition(d.start).line + 1}: `;
    }
    result.get(area)?.push(`${where}TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  }
  byArea = result;
  return result;
}

describe('tsc --noEmit -p tsconfig.json (the whole project)', () => {
  it.each(AREAS)('%s has no type errors', (area) => {
    const found = diagnosticsByArea().get(area) ?? [];
    expect(found, found.join('\n')).toEqual([]);
  }, 300_000);
});
