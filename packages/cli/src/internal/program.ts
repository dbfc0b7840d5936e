/**
 * The `smki` program: commander's command tree, the shared options, and one place that turns a
 * result or an error into output and an exit status.
 * @module
 * @internal
 */
import { Command, CommanderError, Option } from 'commander';
import { isSmkiError, SmkiError } from '@smki/core';
import { EXIT_CODES, exitForCode, hintOf, type ExitCodeName } from './exit.js';
import { paintFor, processIo, progress, toJson, type CliIo, type Paint, type Progress } from './io.js';
import { State, type StateOptions } from './state.js';

/** What a command returns: its JSON document, its text, and how it ended. */
export interface Outcome {
  /** The `--json` document (omitted when the command streamed JSON lines itself). */
  readonly json?: unknown;
  /** The readable output (omitted when streamed). */
  readonly text?: string;
  /** The exit status (default `OK`). */
  readonly exit?: ExitCodeName;
}

/** What a command's action gets. */
export interface Ctx {
  readonly io: CliIo;
  /** `--json` given. */
  readonly json: boolean;
  /** Colours for stdout (off unless a terminal). */
  readonly paint: Paint;
  /** The state directory (opened on first use, closed after the command). */
  state(): State;
  /** The options to open or create a state directory (`dir` overrides --dir). */
  stateOptions(dir?: string): StateOptions;
  /** Close this state after the command (one the command created). */
  adopt(state: State): void;
  /** A progress bar on stderr (only on a terminal, never with `--json`). */
  progress(label: string, total: number): Progress;
  /** Write one line to stdout now (batches stream their results). */
  line(s: string): void;
}

/** The global options. */
interface Globals {
  readonly json?: boolean;
  readonly dir?: string;
  readonly passphraseFile?: string;
  readonly pinFile?: string;
  readonly color?: boolean;
}

type Action = (ctx: Ctx, args: readonly unknown[], opts: Record<string, unknown>) => Promise<Outcome>;

/** A command group module adds its commands to the program. */
export type Register = (program: Command, wrap: (action: Action) => (...args: unknown[]) => Promise<void>) => void;

/** Add an example to a command's help (every command has one; a test checks). */
export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

/** Parse an integer option, or a usage error. */
export function intOption(name: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new SmkiError('ERR_CLI_USAGE', `${name} must be a whole number`, { detail: v.slice(0, 32) });
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new SmkiError('ERR_CLI_USAGE', `${name} must be ${min} to ${max}`, { detail: v.slice(0, 32) });
    return n;
  };
}

/** The program's version (the package's). */
const VERSION = '0.1.0';

/** Build the program; each group registers its commands through `wrap`. */
function build(io: CliIo, registers: readonly Register[], finish: (exit: ExitCodeName) => void): Command {
  const program = new Command('smki');
  program
    .description('The SMKI toolkit on the command line: certificates, segregated keys, critical commands, audit')
    .version(VERSION, '-V, --version')
    .option('--json', 'print one JSON document (JSON lines for batches) instead of text')
    .option('-d, --dir <dir>', 'the state directory (default: $SMKI_DIR, else ./smki-state)')
    .option('--passphrase-file <file>', 'read the store passphrase from this file (default: $SMKI_KEYSTORE_PASSPHRASE)')
    .option('--pin-file <file>', 'read the HSM user PIN from this file (default: $SMKI_HSM_PIN)')
    .option('--no-color', 'no colours, even on a terminal (also: NO_COLOR=1)')
    .exitOverride();
  example(program, 'smki demo', 'smki init ./lab && export SMKI_DIR=./lab', 'smki <command> --help');

  const wrap =
    (action: Action) =>
    async (...all: unknown[]): Promise<void> => {
      const cmd = all[all.length - 1] as Command;
      const opts = cmd.opts();
      const args = all.slice(0, -2);
      const g = cmd.optsWithGlobals<Globals>();
      const json = g.json === true;
      let state: State | undefined;
      const ctx: Ctx = {
        io,
        json,
        paint: paintFor(io.stdout, io.env, g.color !== false && !json),
        stateOptions: (dir) => ({ dir: dir ?? g.dir ?? io.env.SMKI_DIR ?? 'smki-state', ...(g.passphraseFile ? { passphraseFile: g.passphraseFile } : {}), ...(g.pinFile ? { pinFile: g.pinFile } : {}) }),
        state() {
          state ??= State.open(io, ctx.stateOptions());
          return state;
        },
        adopt(s) {
          state = s;
        },
        progress: (label, total) => progress(io, label, total, !json),
        line: (s) => void io.stdout.write(`${s}\n`),
      };
      let outcome: Outcome;
      try {
        outcome = await action(ctx, args, opts);
      } finally {
        if (state) await state.close();
      }
      if (json && outcome.json !== undefined) io.stdout.write(`${toJson(outcome.json, 2)}\n`);
      else if (!json && outcome.text !== undefined && outcome.text !== '') io.stdout.write(outcome.text.endsWith('\n') ? outcome.text : `${outcome.text}\n`);
      finish(outcome.exit ?? 'OK');
    };
  for (const r of registers) r(program, wrap);
  // Every command prints usage errors as `smki` does: no process.exit inside commander.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) {
    c.exitOverride();
    // Usage errors are printed by `report` (code and what to do), not by commander.
    c.configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s), outputError: () => {} });
  }
  return program;
}

/** Print an error: its code and one line on what to do (or a JSON document with `--json`). */
function report(io: CliIo, json: boolean, e: unknown): ExitCodeName {
  const code = isSmkiError(e) ? e.code : undefined;
  const exit = exitForCode(code);
  const message = e instanceof Error ? e.message : String(e);
  const detail = isSmkiError(e) ? (e.context as { detail?: unknown } | undefined)?.detail : undefined;
  const hint = hintOf(e, code);
  if (json) {
    io.stdout.write(`${toJson({ error: { code: code ?? 'INTERNAL', message, ...(detail !== undefined ? { detail } : {}), hint, exit: EXIT_CODES[exit] } }, 2)}\n`);
  } else {
    const paint = paintFor(io.stderr, io.env);
    io.stderr.write(`${paint.red('error')} ${code ?? 'INTERNAL'}: ${message}${detail !== undefined ? ` (${detail})` : ''}\n  ${paint.dim('what to do:')} ${hint}\n`);
    if (exit === 'INTERNAL' && e instanceof Error && io.env.SMKI_DEBUG) io.stderr.write(`${e.stack}\n`);
  }
  return exit;
}

/**
 * Run `smki` with these arguments (without `node` and the script) and return its exit status.
 * Nothing calls `process.exit`; output goes to `io`.
 */
export async function run(argv: readonly string[], registers: readonly Register[], io: CliIo = processIo()): Promise<number> {
  let exit: ExitCodeName = 'OK';
  const json = argv.includes('--json');
  const program = build(io, registers, (e) => {
    exit = e;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_CODES[exit];
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT_CODES.OK;
      return EXIT_CODES[report(io, json, new SmkiError('ERR_CLI_USAGE', e.message.replace(/^error: /, ''), {}))];
    }
    return EXIT_CODES[report(io, json, e)];
  }
}

/** An option whose value is one of `choices`. */
export function choice(flags: string, description: string, choices: readonly string[], dflt?: string): Option {
  const o = new Option(flags, description).choices(choices);
  return dflt === undefined ? o : o.default(dflt);
}
