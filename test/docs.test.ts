// docs/conventions.md, Docs: every public symbol has TSDoc; typedoc is configured once at the root with
// validation.notDocumented on and warnings as errors; `@example` code is compiled by a test so
// it cannot rot. TSDoc spec (@example block tag); typedoc "packages" entry point strategy.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TYPEDOC = join(ROOT, 'node_modules', '.bin', 'typedoc');
const TYPEDOC_TIMEOUT = 300_000;

/** Workspace package directories (relative to the root) that have a src/ directory. */
const PACKAGE_DIRS = readdirSync(join(ROOT, 'packages'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(ROOT, 'packages', d.name, 'src')))
  .map((d) => `packages/${d.name}`);

const outDirs: string[] = [];
afterAll(() => {
  for (const d of outDirs) rmSync(d, { recursive: true, force: true });
});

// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Run typedoc from the root with the root typedoc.json plus `args`; output to a temp dir. */
function typedoc(args: string[]): { status: number | null; problems: string[]; output: string } {
  const out = mkdtempSync(join(tmpdir(), 'smki-typedoc-'));
  outDirs.push(out);
  const r = spawnSync(TYPEDOC, [...args, '--out', out], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const output = stripAnsi(`${r.stdout ?? ''}\n${r.stderr ?? ''}${r.error ? `\n${String(r.error)}` : ''}`);
  const problems = output.split('\n').filter((l) => /\[(warning|error)\]/.test(l));
  return { status: r.status, problems, output };
}

describe('typedoc (root typedoc.json: notDocumented on, warnings are errors)', () => {
  it('the root config is the packages strategy over every workspace package', () => {
    // typedoc.json may hold comments; typescript's reader accepts them, as typedoc's does.
    const { config, error } = ts.readConfigFile(join(ROOT, 'typedoc.json'), ts.sys.readFile);
    expect(error).toBeUndefined();
    expect(config.entryPointStrategy).toBe('packages');
    expect([...config.entryPoints].sort()).toEqual([...PACKAGE_DIRS].sort());
    expect(config.out).toBe('docs/api');
    expect(config.treatWarningsAsErrors).toBe(true);
    expect(config.excludePrivate).toBe(true);
    expect(config.excludeInternal).toBe(true);
    expect(config.validation?.notDocumented).toBe(true);
    expect(config.packageOptions?.entryPoints).toEqual(['src/index.ts']);
    expect(config.packageOptions?.validation?.notDocumented).toBe(true);
  });

  it('`pnpm run docs` runs typedoc', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.docs).toMatch(/(^|&&\s*)typedoc(\s|$)/);
  });

  it.each(PACKAGE_DIRS)(
    '%s: typedoc exits 0 with no warnings',
    (dir) => {
      const r = typedoc(['--entryPoints', dir]);
      expect(r.problems, r.problems.length ? r.problems.join('\n') : r.output).toEqual([]);
      expect(r.status, r.output).toBe(0);
    },
    TYPEDOC_TIMEOUT,
  );

  it(
    'all packages together (the published site): exits 0 with no warnings',
    () => {
      const r = typedoc([]);
      expect(r.problems, r.problems.length ? r.problems.join('\n') : r.output).toEqual([]);
      expect(r.status, r.output).toBe(0);
    },
    TYPEDOC_TIMEOUT,
  );
});

// ---- @example blocks compile ----------------------------------------------------------------

interface Example {
  /** `packages/core/src/eui64.ts:27`: where the code fence opens. */
  readonly where: string;
  readonly code: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** Every ```ts / ```typescript fence inside an `@example` block of a TSDoc comment. */
export function extractExamples(file: string, text: string): Example[] {
  const examples: Example[] = [];
  const rel = relative(ROOT, file);
  for (const m of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const firstLine = text.slice(0, m.index).split('\n').length;
    const lines = m[0]
      .replace(/^\/\*\*/, '')
      .replace(/\*\/$/, '')
      .split('\n')
      .map((l) => l.replace(/^\s*\* ?/, ''));
    let inExample = false;
    let fence: { start: number; body: string[] } | undefined;
    lines.forEach((line, i) => {
      if (fence) {
        if (/^\s*```\s*$/.test(line)) {
          examples.push({ where: `${rel}:${firstLine + fence.start}`, code: fence.body.join('\n') });
          fence = undefined;
        } else {
          fence.body.push(line);
        }
        return;
      }
      const tag = /^\s*(@\w+)/.exec(line);
      if (tag) inExample = tag[1] === '@example';
      if (inExample && /^\s*```(ts|typescript)\s*$/.test(line)) fence = { start: i, body: [] };
    });
  }
  return examples;
}

const EXAMPLES: Example[] = PACKAGE_DIRS.flatMap((dir) =>
  sourceFiles(join(ROOT, dir, 'src')).flatMap((f) => extractExamples(f, readFileSync(f, 'utf8'))),
);

/** Every ```ts fence in the READMEs (root and packages): they are examples too. */
function readmeExamples(file: string): Example[] {
  const rel = relative(ROOT, file);
  const out: Example[] = [];
  let fence: { start: number; body: string[] } | undefined;
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (fence) {
        if (/^```\s*$/.test(line)) {
          out.push({ where: `${rel}:${fence.start}`, code: fence.body.join('\n') });
          fence = undefined;
        } else fence.body.push(line);
      } else if (/^```(ts|typescript)\s*$/.test(line)) fence = { start: i + 1, body: [] };
    });
  return out;
}

const README_EXAMPLES: Example[] = ['README.md', ...PACKAGE_DIRS.map((d) => `${d}/README.md`)]
  .map((f) => join(ROOT, f))
  .filter((f) => existsSync(f))
  .flatMap(readmeExamples);

const ALL_EXAMPLES = [...EXAMPLES, ...README_EXAMPLES];

let compiled: Map<string, string[]> | undefined;

/** Compile every example once, in one program; diagnostics by example location. */
function compileExamples(): Map<string, string[]> {
  if (compiled) return compiled;
  const dir = join(ROOT, '.tmp', 'examples');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  const files = new Map<string, string>();
  ALL_EXAMPLES.forEach((ex, i) => {
    const name = join(dir, `${String(i).padStart(3, '0')}_${ex.where.replace(/[^A-Za-z0-9]+/g, '_')}.ts`);
    writeFileSync(name, `${ex.code}\nexport {};\n`);
    files.set(name, ex.where);
  });
  const base = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.base.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!base) throw new Error('cannot read tsconfig.base.json');
  const paths: Record<string, string[]> = {};
  for (const d of PACKAGE_DIRS) {
    const name = (JSON.parse(readFileSync(join(ROOT, d, 'package.json'), 'utf8')) as { name: string }).name;
    paths[name] = [join(ROOT, d, 'src', 'index.ts')];
  }
  const options: ts.CompilerOptions = { ...base.options, noEmit: true, declaration: false, sourceMap: false, paths };
  delete options.rootDir;
  delete options.outDir;
  const program = ts.createProgram([...files.keys()], options);
  const result = new Map<string, string[]>();
  for (const where of files.values()) result.set(where, []);
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const [file, where] of files) {
    const sf = program.getSourceFile(file);
    const diags = sf ? [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)] : [];
    result.set(
      where,
      [...global, ...diags].map((d) => {
        const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
        return `example line ${line}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      }),
    );
  }
  compiled = result;
  return result;
}

describe('@example code in TSDoc compiles (packages/*/src)', () => {
  it('the extractor finds fenced ts code inside @example only', () => {
    const sample = [
      '/**',
      ' * Summary.',
      ' * ```ts',
      ' * not an example();',
      ' * ```',
      ' * @example',
      ' * ```ts',
      " * import { x } from 'y';",
      ' * ```',
      ' * @throws nothing',
      ' * ```ts',
      ' * not an example either();',
      ' * ```',
      ' */',
    ].join('\n');
    const found = extractExamples(join(ROOT, 'x.ts'), sample);
    expect(found).toEqual([{ where: 'x.ts:7', code: "import { x } from 'y';" }]);
  });

  it('there are examples to check', () => {
    expect(EXAMPLES.length).toBeGreaterThan(0);
  });

  it.each(EXAMPLES.map((e) => [e.where, e] as const))(
    '%s',
    (_where, ex) => {
      expect(compileExamples().get(ex.where), ex.code).toEqual([]);
    },
    TYPEDOC_TIMEOUT,
  );
});

describe('```ts code in the READMEs compiles', () => {
  it('every package README has an example', () => {
    const withExample = new Set(README_EXAMPLES.map((e) => e.where.replace(/:\d+$/, '')));
    for (const d of PACKAGE_DIRS) expect(withExample.has(`${d}/README.md`), `${d}/README.md has no \`\`\`ts example`).toBe(true);
  });

  it.each(README_EXAMPLES.map((e) => [e.where, e] as const))(
    '%s',
    (_where, ex) => {
      expect(compileExamples().get(ex.where), ex.code).toEqual([]);
    },
    TYPEDOC_TIMEOUT,
  );
});
