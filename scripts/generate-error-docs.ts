// Write docs/errors.md, the error-code page of the API site, from the code itself so that it
// cannot drift from it:
//
//   pnpm exec tsx scripts/generate-error-docs.ts            # write docs/errors.md
//   pnpm exec tsx scripts/generate-error-docs.ts --check    # exit 1 if docs/errors.md is stale
//
// For every code of SMKI_ERROR_CODES (packages/core/src/errors.ts), in the file's order and under
// its `// ---- group` comments: the code, its one-line meaning (the value; the doc comment as
// well where it says more), and where it is raised: the public functions and methods whose TSDoc
// `@throws` names it (read through each package's src/index.ts with the TypeScript checker), and
// the source files under packages/*/src that create it (a `new SmkiError('CODE', …)`, a call of a
// helper such as `fail('CODE', …)`, a finding or decision `{ code: 'CODE' }`; a code that is only
// tested for, as in `isSmkiError(e, 'CODE')`, `c === 'CODE'` or `expect(outcome, 'CODE')`, is not
// counted).
// test/error-docs.test.ts regenerates the page in memory and compares it with the committed one.
// docs/conventions.md, "Errors" and "Docs".
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const DEFAULT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The page's path, relative to the repository root. */
export const ERROR_DOCS_PATH = 'docs/errors.md';

/** Packages in dependency order (docs/conventions.md, "Shape"); others follow alphabetically. */
const PACKAGE_ORDER = ['core', 'pki', 'store', 'keystore', 'gbcs', 'duis', 'validator', 'cli'];

/** One code of SMKI_ERROR_CODES as errors.ts declares it. */
export interface DeclaredCode {
  readonly code: string;
  /** The value: the one-line meaning. */
  readonly meaning: string;
  /** The text of its TSDoc comment. */
  readonly doc: string;
  /** The `// ---- …` comment it sits under. */
  readonly group: string;
}

/** Where one code is raised. */
export interface CodeSites {
  /** Public API whose `@throws` names the code: `@smki/pki` → `parseCertificate()`. */
  readonly api: Map<string, Set<string>>;
  /** Source files (repository-relative) that create the code. */
  readonly files: Set<string>;
}

/** What the generator found, the page included. */
export interface ErrorDocs {
  readonly codes: readonly DeclaredCode[];
  readonly sites: ReadonlyMap<string, CodeSites>;
  /** `@throws` names that are not codes of SMKI_ERROR_CODES (a typo, or a removed code). */
  readonly unknownThrows: readonly string[];
  /** The Markdown of docs/errors.md. */
  readonly markdown: string;
}

// ---- SMKI_ERROR_CODES, as declared -----------------------------------------------------------

function unwrap(e: ts.Expression): ts.Expression {
  while (ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e)) e = e.expression;
  return e;
}

/** The TSDoc text of a `/** … *\/` comment: the lines without their `*`, joined by spaces. */
function docText(comment: string): string {
  return comment
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, '').trim())
    .filter(Boolean)
    .join(' ');
}

/** Read SMKI_ERROR_CODES from the source of errors.ts: codes, values, doc comments and groups. */
export function declaredCodes(errorsTs: string): DeclaredCode[] {
  const sf = ts.createSourceFile('errors.ts', errorsTs, ts.ScriptTarget.Latest, true);
  let literal: ts.ObjectLiteralExpression | undefined;
  const find = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === 'SMKI_ERROR_CODES' && n.initializer) {
      const init = unwrap(n.initializer);
      if (ts.isObjectLiteralExpression(init)) literal = init;
    }
    if (!literal) ts.forEachChild(n, find);
  };
  find(sf);
  if (!literal) throw new Error('SMKI_ERROR_CODES not found as an object literal in errors.ts');
  const out: DeclaredCode[] = [];
  let group = '';
  for (const p of literal.properties) {
    if (!ts.isPropertyAssignment(p)) throw new Error(`SMKI_ERROR_CODES: not a plain property: ${p.getText(sf)}`);
    const name = ts.isIdentifier(p.name) || ts.isStringLiteral(p.name) ? p.name.text : p.name.getText(sf);
    const value = unwrap(p.initializer);
    if (!ts.isStringLiteral(value) && !ts.isNoSubstitutionTemplateLiteral(value)) throw new Error(`SMKI_ERROR_CODES.${name}: the value is not a string literal`);
    let doc = '';
    for (const r of ts.getLeadingCommentRanges(errorsTs, p.getFullStart()) ?? []) {
      const text = errorsTs.slice(r.pos, r.end);
      const heading = /^\/\/\s*-{2,}\s*(.*?)\s*-*\s*$/.exec(text);
      if (heading) group = heading[1]!;
      else if (text.startsWith('/**')) doc = docText(text);
    }
    out.push({ code: name, meaning: value.text, doc, group });
  }
  return out;
}

// ---- the public API's @throws ----------------------------------------------------------------

function packagesOf(root: string): string[] {
  const order = (p: string) => (PACKAGE_ORDER.includes(p) ? PACKAGE_ORDER.indexOf(p) : PACKAGE_ORDER.length);
  return readdirSync(join(root, 'packages'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && statSafe(join(root, 'packages', d.name, 'src', 'index.ts'))?.isFile())
    .map((d) => d.name)
    .sort((a, b) => order(a) - order(b) || a.localeCompare(b));
}

function statSafe(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

/** The package (directory name under packages/) a file belongs to, if any. */
function packageOfFile(root: string, file: string): string | undefined {
  const rel = relative(root, file).split(/[\\/]/);
  return rel[0] === 'packages' && rel[2] === 'src' ? rel[1] : undefined;
}

function throwsText(node: ts.Node): string[] {
  return ts
    .getJSDocTags(node)
    .filter((t) => t.tagName.text === 'throws')
    .map((t) => ts.getTextOfJSDocComment(t.comment) ?? '');
}

function isHidden(member: ts.ClassElement | ts.TypeElement): boolean {
  if (member.name && ts.isPrivateIdentifier(member.name)) return true;
  const mods = ts.canHaveModifiers(member) ? (ts.getModifiers(member) ?? []) : [];
  if (mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) return true;
  return ts.getJSDocTags(member).some((t) => t.tagName.text === 'internal');
}

/** Every `(package, API name, @throws text)` of the public surfaces (each package's src/index.ts). */
function publicThrows(root: string, packages: readonly string[]): { pkg: string; name: string; text: string }[] {
  const paths: Record<string, string[]> = {};
  for (const p of packages) paths[`@smki/${p}`] = [join(root, 'packages', p, 'src', 'index.ts')];
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
    baseUrl: root,
    paths,
  };
  const roots = packages.map((p) => join(root, 'packages', p, 'src', 'index.ts'));
  const program = ts.createProgram(roots, options);
  const checker = program.getTypeChecker();
  const out: { pkg: string; name: string; text: string }[] = [];
  const seen = new Set<ts.Node>();
  const add = (pkg: string, name: string, node: ts.Node) => {
    for (const text of throwsText(node)) out.push({ pkg, name, text });
  };
  for (const exporter of packages) {
    const sf = program.getSourceFile(join(root, 'packages', exporter, 'src', 'index.ts'));
    const moduleSymbol = sf && checker.getSymbolAtLocation(sf);
    if (!moduleSymbol) continue;
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const exportName = exported.name;
      for (const decl of symbol.declarations ?? []) {
        // A re-export of another package's symbol is documented there, under its own package.
        if (packageOfFile(root, decl.getSourceFile().fileName) !== exporter || seen.has(decl)) continue;
        const pkg = exporter;
        seen.add(decl);
        if (ts.isClassDeclaration(decl) || ts.isClassExpression(decl)) {
          // Static and instance members are named alike (`Class.member`), as typedoc lists them.
          add(pkg, exportName, decl);
          for (const m of decl.members) {
            if (isHidden(m)) continue;
            if (ts.isConstructorDeclaration(m)) add(pkg, `new ${exportName}()`, m);
            else if (m.name && (ts.isMethodDeclaration(m) || ts.isGetAccessor(m) || ts.isSetAccessor(m) || ts.isPropertyDeclaration(m))) {
              const call = ts.isMethodDeclaration(m) ? '()' : '';
              add(pkg, `${exportName}.${m.name.getText()}${call}`, m);
            }
          }
        } else if (ts.isInterfaceDeclaration(decl)) {
          add(pkg, exportName, decl);
          for (const m of decl.members) {
            if (isHidden(m) || !m.name) continue;
            const call = ts.isMethodSignature(m) ? '()' : '';
            add(pkg, `${exportName}.${m.name.getText()}${call}`, m);
          }
        } else if (ts.isFunctionDeclaration(decl)) {
          add(pkg, `${exportName}()`, decl);
        } else if (ts.isVariableDeclaration(decl)) {
          const init = decl.initializer && unwrap(decl.initializer);
          const callable = init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init));
          add(pkg, callable ? `${exportName}()` : exportName, decl);
        } else {
          add(pkg, exportName, decl);
        }
      }
    }
  }
  return out;
}

// ---- the source files that create a code ------------------------------------------------------

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts|cts)$/.test(name) && !/\.d\.[mc]?ts$/.test(name)) out.push(p);
  }
  return out;
}

/**
 * Calls whose string arguments test for a code rather than create one: the type guard, string and
 * collection look-ups, and the `expect(outcome, code)` helpers of code that checks an outcome
 * (the command line's demo, for one).
 */
const TESTING_CALLS = new Set(['isSmkiError', 'expect', 'expectCode', 'startsWith', 'endsWith', 'includes', 'has', 'get', 'indexOf']);
const COMPARISONS = new Set([
  ts.SyntaxKind.EqualsEqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsEqualsToken,
  ts.SyntaxKind.EqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsToken,
]);

/** Whether a string literal naming a code creates it here (rather than testing for it, or typing). */
export function createsCode(lit: ts.StringLiteralLike): boolean {
  for (let n: ts.Node = lit; n.parent; n = n.parent) {
    if (ts.isTypeNode(n.parent) && !ts.isExpressionWithTypeArguments(n.parent)) return false;
    if (!ts.isParenthesizedExpression(n.parent)) break;
  }
  const p = lit.parent;
  if (ts.isBinaryExpression(p) && COMPARISONS.has(p.operatorToken.kind)) return false;
  if (ts.isCaseClause(p)) return false;
  if (ts.isCallExpression(p) && p.arguments.includes(lit as ts.Expression)) {
    const callee = ts.isPropertyAccessExpression(p.expression) ? p.expression.name.text : ts.isIdentifier(p.expression) ? p.expression.text : '';
    if (TESTING_CALLS.has(callee)) return false;
  }
  if (ts.isElementAccessExpression(p)) return false;
  if (ts.isImportDeclaration(p) || ts.isExportDeclaration(p) || ts.isExternalModuleReference(p)) return false;
  return true;
}

/** For each code, the repository-relative source files under packages/*\/src that create it. */
function creatingFiles(root: string, packages: readonly string[], codes: ReadonlySet<string>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const errorsTs = join(root, 'packages', 'core', 'src', 'errors.ts');
  for (const pkg of packages) {
    for (const file of sourceFiles(join(root, 'packages', pkg, 'src'))) {
      if (file === errorsTs) continue;
      const text = readFileSync(file, 'utf8');
      if (!text.includes('ERR_')) continue;
      const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const rel = relative(root, file).split(/[\\/]/).join('/');
      const visit = (n: ts.Node): void => {
        if ((ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) && codes.has(n.text) && createsCode(n)) {
          let set = out.get(n.text);
          if (!set) out.set(n.text, (set = new Set()));
          set.add(rel);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
  }
  return out;
}

// ---- the page ---------------------------------------------------------------------------------

const normalise = (s: string) => s.replace(/\.\s*$/, '').replace(/\s+/g, ' ').trim();

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function sentence(s: string): string {
  return /[.!?)]$/.test(s) ? s : `${s}.`;
}

function render(codes: readonly DeclaredCode[], sites: ReadonlyMap<string, CodeSites>, packages: readonly string[]): string {
  const lines: string[] = [
    '---',
    'title: Error codes',
    '---',
    '',
    '# Error codes',
    '',
    '<!-- Generated by `pnpm exec tsx scripts/generate-error-docs.ts` from packages/core/src/errors.ts and',
    '     packages/*/src. Do not edit: test/error-docs.test.ts fails when this page differs from what',
    '     the script writes. -->',
    '',
    'Every error the toolkit throws is a `SmkiError`, and every finding of a linter or validator and',
    'every refused decision carries a code: all of them are listed here, from `SMKI_ERROR_CODES` in',
    '`@smki/core`, grouped as that list groups them. Callers switch on `code`, never on the message',
    'text; a code, once released, is never renamed or reused. The first line under each code is its',
    'one-line meaning, as `describeCode(code)` returns it; where the code\'s doc comment says more, it',
    'follows.',
    '',
    '**Thrown by** names the public functions and methods (by package) whose doc comment lists the',
    'code under `@throws`. **Raised in** names the source files that create the code: a thrown',
    '`SmkiError`, a finding of a linter or validator, or a refused decision (a code raised only as a',
    'finding or a decision has no `@throws`). The page is generated from the code by',
    '`scripts/generate-error-docs.ts`, and a test fails when it is out of date.',
    '',
  ];
  const groups: { title: string; codes: DeclaredCode[] }[] = [];
  for (const c of codes) {
    const last = groups[groups.length - 1];
    if (last && last.title === c.group) last.codes.push(c);
    else groups.push({ title: c.group, codes: [c] });
  }
  for (const g of groups) {
    lines.push(`## ${capitalise(g.title || 'Codes')}`, '');
    for (const c of g.codes) {
      lines.push(`### ${c.code}`, '', sentence(c.meaning), '');
      if (c.doc && normalise(c.doc) !== normalise(c.meaning)) lines.push(sentence(c.doc), '');
      const s = sites.get(c.code);
      const api: string[] = [];
      for (const pkg of packages) {
        const names = s?.api.get(pkg);
        if (names?.size) api.push(`\`@smki/${pkg}\`: ${[...names].sort().map((n) => `\`${n}\``).join(', ')}`);
      }
      const files = [...(s?.files ?? [])].sort();
      if (api.length) lines.push(`- **Thrown by:** ${api.join('; ')}`);
      if (files.length) lines.push(`- **Raised in:** ${files.map((f) => `\`${f}\``).join(', ')}`);
      if (!api.length && !files.length) lines.push('- Not raised by the code yet.');
      lines.push('');
    }
  }
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}

/** Generate docs/errors.md in memory from the repository at `root`. */
export function generateErrorDocs(root: string = DEFAULT_ROOT): ErrorDocs {
  const codes = declaredCodes(readFileSync(join(root, 'packages', 'core', 'src', 'errors.ts'), 'utf8'));
  const known = new Set(codes.map((c) => c.code));
  const packages = packagesOf(root);
  const sites = new Map<string, CodeSites>(codes.map((c) => [c.code, { api: new Map(), files: new Set() }]));
  const unknown = new Set<string>();
  for (const { pkg, name, text } of publicThrows(root, packages)) {
    for (const m of text.matchAll(/\bERR_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      const s = sites.get(m[0]);
      if (!s) {
        // A prefix such as `ERR_CRL_` (a family) is not a code; anything else is a stale name.
        if (!/_$/.test(text.slice(m.index!, m.index! + m[0].length + 1))) unknown.add(`@smki/${pkg} ${name}: ${m[0]}`);
        continue;
      }
      let set = s.api.get(pkg);
      if (!set) s.api.set(pkg, (set = new Set()));
      set.add(name);
    }
  }
  for (const [code, files] of creatingFiles(root, packages, known)) for (const f of files) sites.get(code)!.files.add(f);
  return { codes, sites, unknownThrows: [...unknown].sort(), markdown: render(codes, sites, packages) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const docs = generateErrorDocs();
  const target = join(DEFAULT_ROOT, ERROR_DOCS_PATH);
  for (const u of docs.unknownThrows) console.warn(`warning: @throws names a code that is not in SMKI_ERROR_CODES: ${u}`);
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      /* missing: stale */
    }
    if (current !== docs.markdown) {
      console.error(`${ERROR_DOCS_PATH} is out of date: run pnpm exec tsx scripts/generate-error-docs.ts`);
      process.exit(1);
    }
    console.log(`${ERROR_DOCS_PATH} is up to date (${docs.codes.length} codes)`);
  } else {
    writeFileSync(target, docs.markdown);
    console.log(`wrote ${ERROR_DOCS_PATH}: ${docs.codes.length} codes`);
  }
}
