// docs/conventions.md, "Docs": doc comments, tests and vectors cite a public clause (GBCS, RFC,
// SEC) or a section of the project's own docs/domain.md, never a file outside the repository and
// never an issue number. This test reads every file the repository holds (tracked, or new and not
// ignored) and fails, naming file and line, on a citation that breaks that rule, on a
// `docs/domain.md §N` whose section does not exist, and on a relative Markdown link (CommonMark
// 0.31 §6.3 inline links, §4.7 link reference definitions) whose target is not in the repository.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Top-level directories whose files are checked, plus the root README. */
const SCANNED_DIRS = ['packages/', 'test/', 'scripts/', 'examples/', 'docs/', 'test-vectors/'];

/** Paths that are generated and not committed, but that the READMEs may link to (see .gitignore). */
const GENERATED = ['docs/api'];

// ---- the patterns ---------------------------------------------------------------------------

// Each pattern is written so that this file does not match it: the literal forms it catches are
// spelled in pieces below.

/**
 * A mention of a specification file outside the repository: the name SPEC (any case) followed by
 * `.md`, or by a section sign.
 */
export const SPEC_FILE = new RegExp(String.raw`\bSPEC(?:\.md\b|\s*§)`, 'i');

/**
 * An issue-tracker citation in prose: the word "issue" or "issues" (any case), then a number,
 * with a `#` or whitespace between (the forms are listed in the first tests below). The word
 * must stand alone: "issued", "issuer", "issuance" and identifiers such as `ERR_ISSUE_` do not
 * match, nor does the word glued to a number or followed by anything but a number.
 */
export const ISSUE_NUMBER = /\bissues?(?:\s*#\s*|\s+)\d+\b/i;

/**
 * A citation of docs/domain.md by section: `domain.md`, an optional `)` (a Markdown link's end),
 * `,` or `(`, then one or more `§N` joined by `,`, `;`, `–`/`-`, "and", "or" or "to". Between
 * `domain.md` and the first `§` the citation may wrap onto the next line of a comment (`*`,
 * `//`, `#`). Capture 1 is the run of section numbers.
 */
export const DOMAIN_CITATION = new RegExp(
  String.raw`domain\.md\)?[,(]?(?:[\s*/#]*?)((?:§{1,2}\s*\d+(?:\.\d+)*)(?:\s*(?:[,;–-]|\band\b|\bor\b|\bto\b)\s*§{1,2}\s*\d+(?:\.\d+)*)*)`,
  'g',
);

/** Section numbers cited by one DOMAIN_CITATION match (`§3–§5` gives 3, 4, 5). */
export function citedSections(run: string): number[] {
  const out: number[] = [];
  const parts = [...run.matchAll(/(§{1,2}\s*(\d+)(?:\.\d+)*)(\s*[–-]\s*)?/g)];
  parts.forEach((m, i) => {
    const n = Number(m[2]);
    out.push(n);
    const next = parts[i + 1];
    if (m[3] && next) for (let k = n + 1; k < Number(next[2]); k++) out.push(k);
  });
  return out;
}

/** `## N.` headings of docs/domain.md: the sections that may be cited. */
export function domainSections(markdown: string): Set<number> {
  return new Set([...markdown.matchAll(/^##\s+(\d+)\.\s/gm)].map((m) => Number(m[1])));
}

// ---- the files ------------------------------------------------------------------------------

function git(args: string[]): string[] {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\n')
    .filter(Boolean);
}

/** Tracked files, plus untracked files that are not ignored (new work not committed yet). */
const ALL_FILES = [...new Set([...git(['ls-files']), ...git(['ls-files', '--others', '--exclude-standard'])])].sort();

function isBinary(buf: Buffer): boolean {
  return buf.subarray(0, 8192).includes(0);
}

interface TextFile {
  readonly path: string;
  readonly text: string;
}

const SCANNED: TextFile[] = ALL_FILES.filter(
  (f) =>
    (f === 'README.md' || SCANNED_DIRS.some((d) => f.startsWith(d))) &&
    !/(^|\/)(node_modules|dist)\//.test(f) &&
    !f.endsWith('pnpm-lock.yaml'),
).flatMap((path) => {
  let buf: Buffer;
  try {
    if (!statSync(join(ROOT, path)).isFile()) return [];
    buf = readFileSync(join(ROOT, path));
  } catch {
    return []; // listed by git but deleted in the working tree
  }
  return isBinary(buf) ? [] : [{ path, text: buf.toString('utf8') }];
});

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** `file:line: the line` for every line of every scanned file that matches `re`. */
function linesMatching(re: RegExp): string[] {
  const out: string[] = [];
  for (const f of SCANNED) {
    f.text.split('\n').forEach((line, i) => {
      if (re.test(line)) out.push(`${f.path}:${i + 1}: ${line.trim().slice(0, 160)}`);
    });
  }
  return out;
}

// ---- the checks -----------------------------------------------------------------------------

describe('the patterns (so that the scans below can fail, and only where they should)', () => {
  const word = 'iss' + 'ue';
  const spec = 'SP' + 'EC';

  it.each([`${word} 3`, `${word} #3`, `(${word} 8)`, `I${word.slice(1)} 12`, `see ${word}  # 41`, `${word}s 4 and 5`, `${word.toUpperCase()}\t7`])(
    'an issue number: %j matches',
    (s) => {
      expect(ISSUE_NUMBER.test(s)).toBe(true);
    },
  );

  it.each([
    `${word}d 3`,
    `${word}r 3`,
    `the ${word}r #3`,
    `${word}s a certificate`,
    `${word} the certificate`,
    `${word}s 3a`,
    `ERR_${word.toUpperCase()}_CSR_KEY_USAGE`,
    `const ${word}3 = 1`,
    `${word}(3)`,
    `re${word} 3`,
    `${word.slice(0, -1)}ance 2`,
  ])('not an issue number: %j does not match', (s) => {
    expect(ISSUE_NUMBER.test(s)).toBe(false);
  });

  it.each([`${spec}.md`, `see ${spec.toLowerCase()}.md`, `${spec} §4`, `(${spec}§2.1)`])('a spec file: %j matches', (s) => {
    expect(SPEC_FILE.test(s)).toBe(true);
  });

  it.each(['the GBCS specification §4', 'spec.mdx', `${spec}S`, `${spec}IFIC §4`])('not a spec file: %j does not match', (s) => {
    expect(SPEC_FILE.test(s)).toBe(false);
  });

  it('domain citations: every section number is read, across lists, ranges and a wrapped comment', () => {
    // The samples name the file in pieces, so that this file's own scan does not read them.
    const d = 'domain' + '.md';
    const runs = (s: string) => [...s.matchAll(DOMAIN_CITATION)].map((m) => citedSections(m[1]!));
    expect(runs(`see docs/${d} §4`)).toEqual([[4]]);
    expect(runs(`(docs/${d} §2, §5; RFC 5280 §5)`)).toEqual([[2, 5]]);
    expect(runs(`[${d}](${d}) §3–§7`)).toEqual([[3, 4, 5, 6, 7]]);
    expect(runs(`docs/${d} §§2 and 9.1`)).toEqual([[2]]);
    expect(runs(`docs/${d}, §12.3`)).toEqual([[12]]);
    expect(runs(` * docs/${d}\n * §8 says`)).toEqual([[8]]);
    expect(runs(`docs/${d} §N (a placeholder)`)).toEqual([]);
    expect(runs(`docs/${d} does not say`)).toEqual([]);
  });

  it('the sections of docs/domain.md are its `## N.` headings', () => {
    expect([...domainSections('# T\n## 1. A\ntext ## 7. not a heading\n### 2. sub\n## 3. C\n')]).toEqual([1, 3]);
  });
});

describe('references in the repository (docs/conventions.md, "Docs")', () => {
  it('scans the files git knows of under packages/, test/, scripts/, examples/, docs/, test-vectors/ and README.md', () => {
    const paths = SCANNED.map((f) => f.path);
    for (const p of ['README.md', 'docs/domain.md', 'packages/core/src/errors.ts', 'test/references.test.ts']) expect(paths).toContain(p);
    expect(paths.some((p) => p.startsWith('test-vectors/'))).toBe(true);
    expect(paths.some((p) => p.includes('node_modules/') || p.includes('/dist/'))).toBe(false);
  });

  it('no file cites a specification file outside the repository', () => {
    const found = linesMatching(SPEC_FILE);
    expect(found, `cite docs/domain.md §N or a public clause instead:\n${found.join('\n')}`).toEqual([]);
  });

  it('no file cites an issue number', () => {
    const found = linesMatching(ISSUE_NUMBER);
    expect(found, `cite docs/domain.md §N or a public clause instead:\n${found.join('\n')}`).toEqual([]);
  });

  it('every docs/domain.md §N cited exists as a `## N.` heading of docs/domain.md', () => {
    const sections = domainSections(readFileSync(join(ROOT, 'docs/domain.md'), 'utf8'));
    expect(sections.size).toBeGreaterThan(0);
    const bad: string[] = [];
    let citations = 0;
    for (const f of SCANNED) {
      for (const m of f.text.matchAll(DOMAIN_CITATION)) {
        for (const n of citedSections(m[1]!)) {
          citations++;
          if (!sections.has(n)) bad.push(`${f.path}:${lineOf(f.text, m.index! + m[0].indexOf('§'))}: docs/domain.md §${n} (sections: ${[...sections].join(', ')})`);
        }
      }
    }
    expect(citations, 'the scan found no domain citations at all: the pattern is broken').toBeGreaterThan(100);
    expect(bad, bad.join('\n')).toEqual([]);
  });
});

// ---- relative Markdown links ----------------------------------------------------------------

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to `-`, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of stripFences(markdown).split('\n')) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = h[1]!
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The text with fenced code blocks blanked (line numbers kept). */
function stripFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (block) => block.replace(/[^\n]/g, ' '));
}

/** The text with fenced code blocks and inline code spans blanked (line numbers kept). */
function stripCode(markdown: string): string {
  return stripFences(markdown).replace(/`[^`\n]*`/g, (span) => ' '.repeat(span.length));
}

/** Inline links and link reference definitions: target and line. */
export function markdownLinks(markdown: string): { target: string; line: number }[] {
  const text = stripCode(markdown);
  const out: { target: string; line: number }[] = [];
  for (const m of text.matchAll(/\]\(\s*(?:<([^>\n]*)>|([^)\s]+))(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
    out.push({ target: (m[1] ?? m[2])!, line: lineOf(text, m.index!) });
  }
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) out.push({ target: m[1]!, line: lineOf(text, m.index!) });
  return out;
}

const MARKDOWN_WITH_LINKS = SCANNED.filter((f) => /^(README\.md|docs\/[^/]+\.md|packages\/[^/]+\/README\.md)$/.test(f.path));

const REPO_FILES = new Set(ALL_FILES);
const REPO_DIRS = new Set(ALL_FILES.flatMap((f) => f.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));

describe('relative Markdown links in README.md, docs/*.md and packages/*/README.md point into the repository', () => {
  it('the link reader finds inline and reference links, not code', () => {
    const sample = ['[a](x.md#y) and [b](<../c d.md>)', '`[not](code.md)`', '```md', '[not](fenced.md)', '```', '[ref]: refs/file.md "t"'].join('\n');
    expect(markdownLinks(sample)).toEqual([
      { target: 'x.md#y', line: 1 },
      { target: '../c d.md', line: 1 },
      { target: 'refs/file.md', line: 6 },
    ]);
    expect([...headingAnchors('# The `ACB` MAC\n## Throughput, batches and the worker pool\n## A\n## A\n')]).toEqual([
      'the-acb-mac',
      'throughput-batches-and-the-worker-pool',
      'a',
      'a-1',
    ]);
  });

  it('there are documents to check', () => {
    expect(MARKDOWN_WITH_LINKS.map((f) => f.path)).toEqual(expect.arrayContaining(['README.md', 'docs/README.md', 'docs/domain.md']));
  });

  it.each(MARKDOWN_WITH_LINKS.map((f) => [f.path, f] as const))('%s', (_path, f) => {
    const broken: string[] = [];
    for (const { target, line } of markdownLinks(f.text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
      const [pathPart, fragment] = target.split('#', 2) as [string, string | undefined];
      const decoded = decodeURIComponent(pathPart);
      const rel = decoded === '' ? f.path : posix.normalize(posix.join(posix.dirname(f.path), decoded)).replace(/\/$/, '');
      const generated = GENERATED.some((g) => rel === g || rel.startsWith(`${g}/`));
      if (rel.startsWith('../')) broken.push(`${f.path}:${line}: ${target} (outside the repository)`);
      else if (!generated && !REPO_FILES.has(rel) && !REPO_DIRS.has(rel)) broken.push(`${f.path}:${line}: ${target} (no such file in the repository)`);
      else if (fragment && rel.endsWith('.md') && REPO_FILES.has(rel)) {
        const anchors = headingAnchors(readFileSync(join(ROOT, rel), 'utf8'));
        if (!anchors.has(fragment)) broken.push(`${f.path}:${line}: ${target} (no heading #${fragment} in ${rel})`);
      }
    }
    expect(broken, broken.join('\n')).toEqual([]);
  });
});
