// docs/conventions.md, Shape: each package is ESM ("type": "module") with an exports map in which
// each condition carries its own types (import → .d.ts + .js, require → .d.cts + .cjs, as tsup
// emits them), "sideEffects" that tells the truth, and no work at import time (no globals, no
// registries, no polyfills). Node.js "Packages" docs (conditional exports, self-reference);
// TypeScript handbook "Modules — Reference" (types condition first, .d.cts for require).
//
// Builds every workspace package with its own `build` script (tsup) into its dist/, then checks
// the published shape from the outside: the files the exports map names, loading through Node's
// own resolver (require and import, in a fresh process), and type-checking a consumer against the
// emitted declarations with moduleResolution NodeNext.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD_TIMEOUT = 300_000;

interface Conditions {
  readonly types?: string;
  readonly default?: string;
}
interface PackageJson {
  readonly name: string;
  readonly type?: string;
  readonly main?: string;
  readonly module?: string;
  readonly types?: string;
  readonly sideEffects?: boolean | string[];
  readonly files?: string[];
  readonly scripts?: Record<string, string>;
  readonly dependencies?: Record<string, string>;
  readonly exports?: Record<string, string | { import?: Conditions; require?: Conditions }>;
}
interface Pkg {
  readonly dir: string;
  readonly short: string;
  readonly json: PackageJson;
}

/** Workspace packages, dependencies first. */
function workspacePackages(): Pkg[] {
  const all: Pkg[] = readdirSync(join(ROOT, 'packages'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(ROOT, 'packages', d.name, 'package.json')))
    .map((d) => {
      const dir = join(ROOT, 'packages', d.name);
      return { dir, short: d.name, json: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson };
    });
  const names = new Set(all.map((p) => p.json.name));
  const done = new Set<string>();
  const out: Pkg[] = [];
  while (out.length < all.length) {
    const next = all.find(
      (p) => !done.has(p.json.name) && Object.keys(p.json.dependencies ?? {}).every((d) => !names.has(d) || done.has(d)),
    );
    if (!next) throw new Error('dependency cycle between workspace packages');
    done.add(next.json.name);
    out.push(next);
  }
  return out;
}

const PACKAGES = workspacePackages();

/** A symbol each package must export, checked through every entry (ESM, CJS, types). */
const KNOWN_EXPORT: Record<string, string> = {
  '@smki/core': 'parseEui64',
  '@smki/pki': 'parseCertificate',
  '@smki/store': 'MemoryStateStore',
  '@smki/duis': 'verifyDuis',
  '@smki/validator': 'Validator',
  '@smki/recovery': 'RecoveryPlans',
};

// Runs in a fresh Node process inside the package directory, so that `@smki/x` resolves by
// package self-reference through the exports map, exactly as for a consumer.
const PROBE = String.raw`
import { createRequire } from 'node:module';
import { join } from 'node:path';
const name = process.env.PKG_NAME;
const snap = () => ({
  globals: Object.getOwnPropertyNames(globalThis).concat(Object.getOwnPropertySymbols(globalThis).map(String)),
  reflect: Object.getOwnPropertyNames(Reflect),
  objectProto: Object.getOwnPropertyNames(Object.prototype),
  arrayProto: Object.getOwnPropertyNames(Array.prototype),
  promiseProto: Object.getOwnPropertyNames(Promise.prototype),
  uint8Proto: Object.getOwnPropertyNames(Uint8Array.prototype),
  listeners: process.listenerCount('exit') + process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection'),
});
const diff = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k,
  Array.isArray(a[k]) ? b[k].filter((x) => !a[k].includes(x)) : b[k] - a[k]]));
const before = snap();
const esm = await import(name);
const afterEsm = snap();
const require = createRequire(join(process.cwd(), 'package.json'));
const cjs = require(name);
const afterCjs = snap();
const known = process.env.PKG_KNOWN;
let sample = null;
if (name === '@smki/core') {
  sample = [esm.parseEui64('00-db-12-34-56-78-90-a0'), cjs.parseEui64('00 DB 12 34 56 78 90 A0')];
}
console.log(JSON.stringify({
  esmUrl: import.meta.resolve(name),
  cjsPath: require.resolve(name),
  esmKeys: Object.keys(esm).filter((k) => k !== 'default').sort(),
  cjsKeys: Object.keys(cjs).filter((k) => k !== '__esModule').sort(),
  esmKnown: known ? typeof esm[known] : null,
  cjsKnown: known ? typeof cjs[known] : null,
  sideEffectsEsm: diff(before, afterEsm),
  sideEffectsCjs: diff(afterEsm, afterCjs),
  sample,
}));
`;

interface ProbeResult {
  esmUrl: string;
  cjsPath: string;
  esmKeys: string[];
  cjsKeys: string[];
  esmKnown: string | null;
  cjsKnown: string | null;
  sideEffectsEsm: Record<string, string[] | number>;
  sideEffectsCjs: Record<string, string[] | number>;
  sample: string[] | null;
}

function noSideEffects(d: Record<string, string[] | number>): Record<string, string[] | number> {
  return Object.fromEntries(Object.keys(d).map((k) => [k, Array.isArray(d[k]) ? [] : 0]));
}

/** Type-check a consumer of `pkg` under NodeNext resolution, from ESM (.mts) and CJS (.cts). */
function typecheckConsumer(pkg: Pkg): string[] {
  const dir = join(ROOT, '.tmp', 'packaging', pkg.short);
  rmSync(dir, { recursive: true, force: true });
  const scopeDir = join(dir, 'node_modules', dirname(pkg.json.name));
  mkdirSync(scopeDir, { recursive: true });
  symlinkSync(pkg.dir, join(dir, 'node_modules', pkg.json.name), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const known = KNOWN_EXPORT[pkg.json.name];
  const use = known ? `export const known: unknown = m.${known};\n` : '';
  const core = pkg.json.name === '@smki/core' ? `export const e: m.Eui64 = m.parseEui64('00DB1234567890A0');\n` : '';
  writeFileSync(join(dir, 'esm.mts'), `import * as m from '${pkg.json.name}';\n${use}${core}`);
  writeFileSync(join(dir, 'cjs.cts'), `import m = require('${pkg.json.name}');\n${use}${core}`);
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    typeRoots: [join(ROOT, 'node_modules', '@types')],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    exactOptionalPropertyTypes: true,
  };
  const program = ts.createProgram([join(dir, 'esm.mts'), join(dir, 'cjs.cts')], options);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => !d.file || !d.file.fileName.includes('/node_modules/@types/'))
    .map((d) => {
      const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : '';
      return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
    });
}

describe.each(PACKAGES)('package $json.name', (pkg) => {
  const json = pkg.json;
  const root = json.exports?.['.'];
  const abs = (p: string | undefined) => join(pkg.dir, p ?? '<missing>');

  it('declares an ESM package with a truthful sideEffects field', () => {
    expect(json.type).toBe('module');
    expect(json.sideEffects, 'sideEffects must be declared (false, or the files that have them)').toBeDefined();
    expect(json.files).toContain('dist');
    expect(json.scripts?.build).toBeTruthy();
    expect(json.exports?.['./package.json']).toBe('./package.json');
  });

  it('has an exports map whose conditions carry their own types (types first)', () => {
    expect(typeof root).toBe('object');
    const map = root as { import?: Conditions; require?: Conditions };
    expect(Object.keys(map)).toEqual(['import', 'require']);
    expect(Object.keys(map.import ?? {})).toEqual(['types', 'default']);
    expect(Object.keys(map.require ?? {})).toEqual(['types', 'default']);
    expect(map.import?.types).toMatch(/^\.\/dist\/.+\.d\.ts$/);
    expect(map.import?.default).toMatch(/^\.\/dist\/.+\.js$/);
    expect(map.require?.types).toMatch(/^\.\/dist\/.+\.d\.cts$/);
    expect(map.require?.default).toMatch(/^\.\/dist\/.+\.cjs$/);
    // Legacy fields for old resolvers agree with the map.
    expect(json.types).toBe(map.import?.types);
    expect(json.module).toBe(map.import?.default);
    expect(json.main).toBe(map.require?.default);
  });

  describe('after a build', () => {
    let buildError: string | undefined;
    beforeAll(() => {
      const r = spawnSync('pnpm', ['run', 'build'], { cwd: pkg.dir, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
      if (r.status !== 0) buildError = `pnpm run build failed in ${pkg.dir} (exit ${r.status}):\n${r.stdout}\n${r.stderr}`;
    }, BUILD_TIMEOUT);

    it('builds with its build script', () => {
      expect(buildError).toBeUndefined();
    });

    it('emits every file the exports map names, with source maps', () => {
      const map = root as { import: Conditions; require: Conditions };
      for (const f of [map.import.types, map.import.default, map.require.types, map.require.default]) {
        expect(existsSync(abs(f)), `${f} missing`).toBe(true);
      }
      expect(existsSync(abs(`${map.import.default}.map`))).toBe(true);
      expect(existsSync(abs(`${map.require.default}.map`))).toBe(true);
    });

    it('declarations name the known export in both flavours', () => {
      const known = KNOWN_EXPORT[json.name];
      const map = root as { import: Conditions; require: Conditions };
      const dts = readFileSync(abs(map.import.types), 'utf8');
      const dcts = readFileSync(abs(map.require.types), 'utf8');
      if (known) {
        expect(dts).toContain(known);
        expect(dcts).toContain(known);
      }
    });

    it(
      'loads through Node with require() and import(), with the same exports and no side effects',
      () => {
        const run = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], {
          cwd: pkg.dir,
          encoding: 'utf8',
          env: { ...process.env, PKG_NAME: json.name, PKG_KNOWN: KNOWN_EXPORT[json.name] ?? '' },
        });
        expect(run.status, `loading ${json.name} failed:\n${run.stderr.split('\n').slice(0, 8).join('\n')}`).toBe(0);
        const r = JSON.parse(run.stdout.trim().split('\n').pop() as string) as ProbeResult;
        const map = root as { import: Conditions; require: Conditions };
        expect(fileURLToPath(r.esmUrl)).toBe(abs(map.import.default));
        expect(r.cjsPath).toBe(abs(map.require.default));
        expect(r.esmKeys.length).toBeGreaterThan(0);
        expect(r.cjsKeys).toEqual(r.esmKeys);
        if (KNOWN_EXPORT[json.name]) {
          expect(r.esmKnown).toBe('function');
          expect(r.cjsKnown).toBe('function');
        }
        if (json.name === '@smki/core') expect(r.sample).toEqual(['00DB1234567890A0', '00DB1234567890A0']);
        // No new globals, no patched built-in prototypes or Reflect, no process listeners.
        if (json.sideEffects === false) {
          expect(r.sideEffectsEsm).toEqual(noSideEffects(r.sideEffectsEsm));
          expect(r.sideEffectsCjs).toEqual(noSideEffects(r.sideEffectsCjs));
        }
      },
      BUILD_TIMEOUT,
    );

    it(
      'type-checks a consumer under NodeNext from both .mts and .cts',
      () => {
        expect(typecheckConsumer(pkg)).toEqual([]);
      },
      BUILD_TIMEOUT,
    );
  });
});
