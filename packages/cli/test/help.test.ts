// Every command of `smki` explains itself: `--help` exits 0 and shows an example to copy
// (docs/conventions.md, "Docs": an example where it helps), each example uses only options the
// command has and spells key ids as smki makes them; and no option takes a secret on the command
// line (a flag shows in the process list and the shell history: passphrases and PINs come from
// the environment or a file).
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { run } from '../src/index.js';
import { GROUPS } from '../src/internal/cli.js';
import { captureIo } from './_io.js';
import { smki } from './_smki.js';

/** The command tree as the groups register it (actions never run). */
function commandTree(): Command {
  const program = new Command('smki');
  for (const register of GROUPS) register(program, () => async () => {});
  return program;
}

interface Entry {
  readonly path: readonly string[];
  readonly cmd: Command;
}

function walk(cmd: Command, path: readonly string[] = []): Entry[] {
  return [{ path, cmd }, ...cmd.commands.flatMap((c) => walk(c, [...path, c.name()]))];
}

const ROOT = commandTree();
const ENTRIES = walk(ROOT);

async function help(path: readonly string[]): Promise<{ status: number; text: string; err: string }> {
  const { io, stdout, stderr } = captureIo();
  const status = await run([...path, '--help'], io);
  return { status, text: stdout.text, err: stderr.text };
}

/** The long option names shown under "Options:" in a help text. */
function helpOptions(text: string): string[] {
  const section = text.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return [...section.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!);
}

/** The example lines (`$ …`) after "Example:". */
function examples(text: string): string[] {
  const after = text.split(/^Example:$/m)[1] ?? '';
  return [...after.matchAll(/^ {2}\$ (.+)$/gm)].map((m) => m[1]!);
}

/** An option name that would take a secret: passphrase, PIN, password, secret, key pass… (a -file variant is fine). */
export function secretLike(flag: string): boolean {
  const name = flag.replace(/^--?/, '').toLowerCase();
  if (name.endsWith('-file')) return false;
  const words = name.split('-');
  return words.some((w) => /^(passphrase|pin|pins|password|passwd|pass|pwd|secret|secrets)$/.test(w)) || /key-?pass/.test(name);
}

/** Environment assignments before `smki` in an example (`SMKI_HSM_PIN=… smki init`). */
const ENV_PREFIX = /^(?:[A-Z][A-Z0-9_]*=\S+\s+)*/;

/** The global options and whether each takes a value. */
const GLOBAL_OPTIONS: Readonly<Record<string, boolean>> = { '--json': false, '--dir': true, '-d': true, '--passphrase-file': true, '--pin-file': true, '--no-color': false, '--help': false, '-h': false, '--version': false, '-V': false };

/**
 * What is wrong with an example line: each `smki …` in it (shell lists and pipes split, redirections
 * dropped) must name a command of the tree and use only that command's options or the global ones.
 */
function exampleProblems(line: string): string[] {
  const problems: string[] = [];
  for (const part of line.split(/\s(?:&&|\|\||;|\|)\s/)) {
    const words = part.replace(ENV_PREFIX, '').trim().split(/\s+/);
    if (words[0] !== 'smki') continue;
    const rest: string[] = [];
    for (let i = 1; i < words.length; i++) {
      const w = words[i]!;
      if (w.startsWith('>') || w.startsWith('<')) {
        if (w.length === 1) i++;
        continue;
      }
      const name = w.split('=')[0]!;
      if (Object.hasOwn(GLOBAL_OPTIONS, name)) {
        if (GLOBAL_OPTIONS[name] && !w.includes('=')) i++;
        continue;
      }
      rest.push(w);
    }
    let cmd = ROOT;
    for (const w of rest) {
      if (w.startsWith('-')) break;
      const sub = cmd.commands.find((c) => c.name() === w);
      if (!sub) break;
      cmd = sub;
    }
    if (cmd === ROOT && rest.length > 0 && !rest[0]!.startsWith('<')) problems.push(`no command ${rest[0]}`);
    const own = new Set(cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => x !== undefined)));
    for (const w of rest.filter((x) => x.startsWith('-'))) if (!own.has(w.split('=')[0]!)) problems.push(`smki ${cmd.name()} has no option ${w}`);
  }
  return problems;
}

describe('the command tree', () => {
  it('has every group of smki and its subcommands', () => {
    const names = ENTRIES.map((e) => e.path.join(' '));
    for (const n of ['init', 'portfolio create', 'portfolio move', 'portfolio blast-radius', 'key generate', 'key revoke', 'device add', 'device import', 'device show', 'firmware approve', 'firmware revoke', 'command build', 'command sign', 'command validate', 'recovery plan', 'recovery build', 'recovery record', 'recovery status']) {
      expect(names).toContain(n);
    }
    expect(ENTRIES.length).toBeGreaterThan(25);
  });

  it('finds what is wrong with an example (a made-up option or command)', () => {
    expect(exampleProblems('smki key generate north --certify --json')).toEqual([]);
    expect(exampleProblems('SMKI_HSM_PIN=… smki --dir ./lab init ./lab --hsm --hsm-token smki > out.txt')).toEqual([]);
    expect(exampleProblems('smki key generate north --certfy')).toEqual(['smki generate has no option --certfy']);
    expect(exampleProblems('smki init ./lab && smki frobnicate')).toEqual(['no command frobnicate']);
  });

  it('recognises a secret-like option name (and lets the -file variants be)', () => {
    for (const f of ['--passphrase', '--pin', '--hsm-pin', '--password', '--db-password', '--secret', '--key-pass', '--key-passphrase', '--keypass', '--pass']) expect(secretLike(f), f).toBe(true);
    for (const f of ['--passphrase-file', '--pin-file', '--key-passphrase-file', '--key-out', '--pinned', '--pg-schema', '--purpose', '--spin', '--compass']) expect(secretLike(f), f).toBe(false);
  });
});

describe.each(ENTRIES.map((e) => ({ name: ['smki', ...e.path].join(' '), ...e })))('$name --help', ({ path, cmd }) => {
  it('exits 0 with a usage line, the description and an example of this command', async () => {
    const h = await help(path);
    expect(h.status, h.err).toBe(0);
    expect(h.err).toBe('');
    expect(h.text).toMatch(new RegExp(`^Usage: smki${path.map((p) => ` ${p}`).join('')}\\b`, 'm'));
    if (path.length > 0) expect(h.text.replace(/\s+/g, ' ')).toContain(cmd.description().replace(/\s+/g, ' '));
    expect(h.text).toMatch(/^Example:$/m);
    const ex = examples(h.text);
    expect(ex.length, h.text).toBeGreaterThan(0);
    for (const e of ex) expect(e, 'an example runs smki').toMatch(new RegExp(`${ENV_PREFIX.source}smki(\\s|$)`));
    // At least one example runs this very command (the group or program for a group).
    const own = ex.filter((e) => e.replace(ENV_PREFIX, '').startsWith(['smki', ...path].join(' ')));
    expect(own.length, `no example of smki ${path.join(' ')}:\n${ex.join('\n')}`).toBeGreaterThan(0);
  });

  it('has no option named like a secret', async () => {
    const flags = [...cmd.options.map((o) => o.long ?? o.short ?? ''), ...helpOptions((await help(path)).text)];
    expect(flags.length).toBeGreaterThan(0);
    expect(flags.filter(secretLike)).toEqual([]);
  });

  it('uses in its examples only commands that exist, with their own options (or the global ones)', async () => {
    const h = await help(path);
    for (const e of examples(h.text)) expect(exampleProblems(e), e).toEqual([]);
  });

  it('spells key ids in its examples as the key store makes them (<supplier>.<portfolio>.DS|KA|KAP.g<n>)', async () => {
    const h = await help(path);
    for (const e of examples(h.text)) {
      for (const id of e.match(/\b[0-9A-F]{16}\.[\w-]+\.[A-Za-z]{2,3}\.g\d+\b/g) ?? []) expect(id, e).toMatch(/^[0-9A-F]{16}\.[\w-]+\.(DS|KA|KAP)\.g\d+$/);
    }
  });
});

describe('the global options', () => {
  it('take the passphrase and the PIN only from a file (or the environment)', async () => {
    const opts = helpOptions((await help([])).text);
    expect(opts).toEqual(expect.arrayContaining(['--json', '--dir', '--passphrase-file', '--pin-file', '--no-color']));
    expect(opts.filter(secretLike)).toEqual([]);
  });

  it('smki --help as a user runs it: exit 0, every group listed, an example', () => {
    const r = smki(['--help']);
    expect(r.status, r.stderr).toBe(0);
    for (const g of commandTree().commands.map((c) => c.name())) expect(r.stdout).toMatch(new RegExp(`^ {2}${g}\\b`, 'm'));
    expect(r.stdout).toMatch(/^ {2}\$ smki /m);
  });
});
