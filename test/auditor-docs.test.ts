// docs/auditors-guide.md and docs/controls.md give auditors `smki` command lines to run. This test
// keeps them runnable: every `smki …` line quoted in a code span or a code block must name a real
// command path, and every option it uses must be one that path's `--help` lists (or one of the
// root program's, allowed everywhere). The program runs in this process through `run` from
// @smki/cli, with a capturing io, on `<command path> --help`. Every ERR_ code the pages name
// must be a key of SMKI_ERROR_CODES (docs/conventions.md, "Errors").
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run, type CliIo } from '@smki/cli';
import { SMKI_ERROR_CODES } from '@smki/core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PAGES = ['docs/auditors-guide.md', 'docs/controls.md'] as const;

/** Options of the root program, allowed on every command line. */
const ROOT_OPTIONS = new Set(['--json', '--dir', '-d', '--passphrase-file', '--pin-file', '--no-color', '--help', '-h']);
/** Root options that take a value (the next word, unless written `--opt=value`). */
const ROOT_WITH_VALUE = new Set(['--dir', '-d', '--passphrase-file', '--pin-file']);

/** A `smki` command line quoted on a page: where, as written, and its words after `smki`. */
export interface DocCommand {
  readonly line: number;
  readonly text: string;
  readonly argv: readonly string[];
}

/** Shell-like words: single and double quotes group (and are removed); an unquoted `#` starts a comment. */
function words(text: string): { word: string; quoted: boolean }[] {
  const out: { word: string; quoted: boolean }[] = [];
  let cur = '';
  let quoted = false;
  let open = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      cur += text.slice(i + 1, end === -1 ? text.length : end);
      i = end === -1 ? text.length : end;
      quoted = true;
      open = true;
    } else if (/\s/.test(c)) {
      if (open) out.push({ word: cur, quoted });
      cur = '';
      quoted = false;
      open = false;
    } else if (c === '#' && !open) {
      break;
    } else {
      cur += c;
      open = true;
    }
  }
  if (open) out.push({ word: cur, quoted });
  return out;
}

/** The `smki` commands of one shell line: segments split at `&&`, `||`, `;` and `|`, env assignments skipped. */
function commandsIn(text: string): string[][] {
  const found: string[][] = [];
  let seg: { word: string; quoted: boolean }[] = [];
  const flush = () => {
    let i = 0;
    while (i < seg.length && !seg[i]!.quoted && /^[A-Za-z_][A-Za-z0-9_]*=/.test(seg[i]!.word)) i++;
    if (seg[i]?.word === 'smki' && !seg[i]!.quoted) found.push(seg.slice(i + 1).map((w) => w.word));
    seg = [];
  };
  for (const w of words(text.replace(/^\s*\$\s+/, ''))) {
    if (!w.quoted && ['&&', '||', ';', '|'].includes(w.word)) flush();
    else seg.push(w);
  }
  flush();
  return found;
}

/** Every `smki …` command line in code blocks and code spans of a Markdown page. */
export function docCommands(markdown: string): DocCommand[] {
  const lines = markdown.split('\n');
  const out: DocCommand[] = [];
  let fence: string | undefined;
  const prose: string[] = [];
  lines.forEach((l, i) => {
    const f = /^\s*(`{3,}|~{3,})/.exec(l);
    if (fence !== undefined) {
      if (f && f[1]!.startsWith(fence)) fence = undefined;
      else for (const argv of commandsIn(l)) out.push({ line: i + 1, text: l.trim(), argv });
      prose.push('');
    } else if (f) {
      fence = f[1] as string;
      prose.push('');
    } else prose.push(l);
  });
  // Code spans (CommonMark §6.1) in the prose; a span may run over a line break.
  const text = prose.join('\n');
  for (const m of text.matchAll(/(?<!`)`([^`]+)`(?!`)/g)) {
    const span = (m[1] as string).replace(/\s+/g, ' ').trim();
    if (!/^smki\s\S/.test(span)) continue;
    const line = text.slice(0, m.index).split('\n').length;
    for (const argv of commandsIn(span)) out.push({ line, text: span, argv });
  }
  return out.sort((a, b) => a.line - b.line);
}

/** A capturing io: what smki writes to stdout and stderr. */
function captureIo(): { io: CliIo; out: () => string } {
  let text = '';
  const sink = {
    write(chunk: unknown, ...rest: unknown[]): boolean {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
      return true;
    },
    isTTY: false,
  } as unknown as NodeJS.WritableStream & { isTTY?: boolean };
  return { io: { stdout: sink, stderr: sink, stdin: Readable.from([]), env: { NO_COLOR: '1' }, cwd: tmpdir() }, out: () => text };
}

const helpCache = new Map<string, { status: number; text: string }>();

/** `smki <path> --help`, in this process. */
async function help(path: readonly string[]): Promise<{ status: number; text: string }> {
  const key = path.join(' ');
  let h = helpCache.get(key);
  if (h === undefined) {
    const { io, out } = captureIo();
    const status = await run([...path, '--help'], io);
    h = { status, text: out() };
    helpCache.set(key, h);
  }
  return h;
}

/** The lines of one section of commander's help (`Options:`, `Commands:`), up to the blank line after it. */
function section(helpText: string, name: string): string[] {
  const lines = helpText.split('\n');
  const at = lines.indexOf(`${name}:`);
  if (at < 0) return [];
  const end = lines.findIndex((l, i) => i > at && l.trim() === '');
  return lines.slice(at + 1, end < 0 ? undefined : end);
}

/** Subcommand names a help text lists (entries are indented two spaces; wrapped text more). */
function subcommands(helpText: string): Set<string> {
  return new Set(section(helpText, 'Commands').flatMap((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1] ?? []));
}

/** Option flags a help text lists (`-d, --dir <dir>` gives `-d` and `--dir`). */
function options(helpText: string): Set<string> {
  const flags = new Set<string>();
  for (const l of section(helpText, 'Options')) {
    const m = /^ {2}((?:-[A-Za-z], )?--[A-Za-z0-9][\w-]*)/.exec(l);
    if (m) for (const f of (m[1] as string).split(', ')) flags.add(f);
  }
  return flags;
}

/** What is wrong with one quoted command line; empty when it names a real path with real options. */
export async function commandProblems(c: DocCommand): Promise<string[]> {
  const problems: string[] = [];
  const where = `line ${c.line} (${c.text})`;
  const path: string[] = [];
  let h = await help(path);
  if (h.status !== 0) return [`${where}: smki --help exited ${h.status}`];
  let descending = true;
  const used: string[] = [];
  for (let i = 0; i < c.argv.length; i++) {
    const t = c.argv[i] as string;
    if (t.startsWith('-') && t !== '-' && t !== '--') {
      const name = t.split('=')[0] as string;
      used.push(name);
      if (ROOT_WITH_VALUE.has(name) && !t.includes('=')) i++;
      continue;
    }
    if (!descending) continue;
    const subs = subcommands(h.text);
    if (subs.has(t)) {
      path.push(t);
      h = await help(path);
      if (h.status !== 0) {
        problems.push(`${where}: smki ${path.join(' ')} --help exited ${h.status}`);
        return problems;
      }
      continue;
    }
    // A group runs nothing itself: a word after it must be one of its commands (or `…`, "any").
    if (subs.size > 0 && t !== '…') problems.push(`${where}: "${t}" is not a command of smki${path.length > 0 ? ` ${path.join(' ')}` : ''}`);
    descending = false;
  }
  const known = options(h.text);
  for (const o of used) {
    if (!ROOT_OPTIONS.has(o) && !known.has(o)) problems.push(`${where}: smki ${path.join(' ')} has no option ${o}`);
  }
  return problems;
}

/** Every problem of every command line on a page. */
async function pageProblems(markdown: string): Promise<string[]> {
  const all: string[] = [];
  for (const c of docCommands(markdown)) all.push(...(await commandProblems(c)));
  return all;
}

describe.each(PAGES)('%s', (page) => {
  const markdown = readFileSync(join(ROOT, page), 'utf8');

  it('quotes smki command lines, each a real command path with options its --help lists', async () => {
    const commands = docCommands(markdown);
    expect(commands.length).toBeGreaterThanOrEqual(8);
    expect(await pageProblems(markdown)).toEqual([]);
  });

  it('names only error codes that exist', () => {
    const unknown = [...markdown.matchAll(/\bERR_[A-Z0-9_]+\b/g)].map((m) => m[0]).filter((c) => !Object.hasOwn(SMKI_ERROR_CODES, c));
    expect(unknown).toEqual([]);
  });
});

describe('between them, the pages cover every procedure of an audit', () => {
  it('verify, report, blast radius, device trust, keys, certificates, revocations, firmware', async () => {
    const paths = new Set<string>();
    for (const page of PAGES) {
      for (const c of docCommands(readFileSync(join(ROOT, page), 'utf8'))) paths.add(c.argv.filter((w) => !w.startsWith('-')).slice(0, 2).join(' '));
    }
    for (const p of ['audit verify', 'audit report', 'portfolio blast-radius', 'device show', 'key list', 'cert inspect', 'cert verify', 'firmware list', 'key revoke', 'crl revoke']) {
      expect([...paths].some((x) => x.startsWith(p)), p).toBe(true);
    }
  });
});

describe('the check itself', () => {
  const page = (body: string) => ['# A page', '', body, ''].join('\n');

  it('finds command lines in code spans (also across a line break) and code blocks, after env assignments and a prompt, in && chains', () => {
    const md = page(
      [
        'Run `smki audit verify` then `smki',
        'audit report --from 2026-12-01T00:00:00Z`; not `smki.json` nor `pnpm smki demo`.',
        '',
        '```sh',
        '$ SMKI_DIR=/a smki --dir /b key list --json   # a comment --not-an-option',
        'cp -a x y && smki firmware revoke M 9F86 --reason "CVE | one; two"',
        '```',
      ].join('\n'),
    );
    expect(docCommands(md).map((c) => [c.line, c.argv.join(' ')])).toEqual([
      [3, 'audit verify'],
      [3, 'audit report --from 2026-12-01T00:00:00Z'],
      [7, '--dir /b key list --json'],
      [8, 'firmware revoke M 9F86 --reason CVE | one; two'],
    ]);
  });

  it('passes real paths and options, root options anywhere', async () => {
    const md = page('`smki --dir /x audit report --from 2026-12-01 --to 2027-01-01 --html r.html --json` and `smki cert verify 3C3F --no-revocation --at 2030-01-01T00:00:00Z`');
    expect(await pageProblems(md)).toEqual([]);
  });

  it('fails on a made-up option, an option of another command, and a command that does not exist', async () => {
    const md = page(
      [
        '`smki audit report --from 2026-12-01 --frobnicate`',
        '`smki audit verify --html report.html`',
        '`smki audit verfy`',
        '`smki crl list`',
      ].join('\n'),
    );
    expect(await pageProblems(md)).toEqual([
      'line 3 (smki audit report --from 2026-12-01 --frobnicate): smki audit report has no option --frobnicate',
      'line 4 (smki audit verify --html report.html): smki audit verify has no option --html',
      'line 5 (smki audit verfy): "verfy" is not a command of smki audit',
      'line 6 (smki crl list): "list" is not a command of smki crl',
    ]);
  });
});
