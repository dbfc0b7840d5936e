/**
 * `smki command build|sign|validate`: critical commands from pre-command to MAC'd frame.
 * Supplier side: build the unsigned pre-command (GBCS, docs/domain.md §5) and sign it with the key
 * the meter trusts (its portfolio's). DCC side: validate and counter-sign with the ACB MAC, or say
 * which rule refused it. Commands are read and written as hex, base64 (one per line) or binary.
 * @module
 * @internal
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Argument } from 'commander';
import { createKeySigner, SmkiError, type Eui64, type Signer } from '@smki/core';
import { buildActivateFirmware, buildArmSupply, buildDisableSupply, buildEnableSupply, parseMessage, signPreCommand } from '@smki/gbcs';
import { Validator, ValidatorPool, type BatchCommand, type Decision, type ValidatorOptions } from '@smki/validator';
import { Actor, operatorOptions, type OperatorFlags } from '../access.js';
import { choice, example, intOption, type Ctx, type Outcome, type Register } from '../program.js';
import { table, toJson } from '../io.js';
import { hintFor } from '../exit.js';
import { beginWrite, decodeCommands, encodeCommands, readInput, type Encoding } from '../files.js';
import { eui, readEncryptedKey, type State } from '../state.js';
import type { PoolSetupData } from '../../pool-setup.js';

/** The command kinds `smki command build` makes. */
export const BUILD_KINDS = ['disconnect', 'reconnect', 'arm', 'activate-firmware'] as const;
/** Most commands one `build` makes. */
export const MAX_BUILD = 1_000_000;
/** Commands validated per `validateBatch` call (one store commit each) in one process. */
const BATCH = 256;

const FORMATS: readonly Encoding[] = ['hex', 'base64', 'binary'];

/** The network operator's signer (another User of this lab; its key is kept encrypted in parties/). */
export function networkOperatorSigner(state: State): Signer {
  return createKeySigner(readEncryptedKey(state.path('parties', 'network-operator-ds.key.pem'), state.passphrase));
}

/** Which party is the originator. */
function originatorOf(state: State, as: string): Eui64 {
  return as === 'network-operator' ? state.config.parties.networkOperator : state.config.parties.supplier;
}

function readDeviceList(ctx: Ctx, o: Record<string, unknown>): Eui64[] {
  const list: string[] = [...((o.device as string[] | undefined) ?? [])];
  if (o.devices !== undefined) {
    let text: string;
    try {
      text = readFileSync(resolve(ctx.io.cwd, String(o.devices)), 'utf8');
    } catch {
      throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the devices file cannot be read', { detail: String(o.devices) });
    }
    for (const l of text.split('\n')) if (l.trim() !== '' && !l.trim().startsWith('#')) list.push(l.trim());
  }
  if (list.length === 0) throw new SmkiError('ERR_CLI_USAGE', 'name the target meters with --device <eui> or --devices <file>', {});
  return list.map((d) => eui(d, 'a device'));
}

/** Where a command's output goes: standard output, or a file opened now (so a bad path fails before the work). */
interface Output {
  write(data: Buffer): Promise<void>;
  abandon(): void;
}

function openOutput(ctx: Ctx, out: string | undefined): Output {
  if (out === undefined || out === '-') {
    return { write: (data) => new Promise<void>((r) => ctx.io.stdout.write(data, () => r())), abandon() {} };
  }
  const pending = beginWrite(resolve(ctx.io.cwd, out), 0o644);
  return { write: async (data) => pending.commit(data), abandon: () => pending.abandon() };
}

/** Run `work` with the output open; abandon the output if the work fails. */
async function withOutput<T>(ctx: Ctx, out: string | undefined, work: (o: Output) => Promise<T>): Promise<T> {
  const o = openOutput(ctx, out);
  try {
    return await work(o);
  } catch (e) {
    o.abandon();
    throw e;
  }
}

/** The JSON of a decision (frame as hex). */
export function decisionJson(d: Decision, index: number): Record<string, unknown> {
  const base = { index, outcome: d.outcome, device: d.device, originator: d.originator, messageCode: d.messageCode === undefined ? undefined : d.messageCode.toString(16).toUpperCase().padStart(4, '0'), counter: d.counter };
  if (d.outcome === 'accepted') return { ...base, critical: d.critical, frame: Buffer.from(d.frame).toString('hex').toUpperCase() };
  if (d.outcome === 'quarantined') return { ...base, code: d.code, step: d.step, quarantineId: d.quarantineId, count: d.count, limit: d.limit };
  return { ...base, code: d.code, step: d.step, message: d.message };
}

/** The validator options of the state directory, for a process with its own log `log/<name>`. */
export async function validatorOptions(state: State, logName: string): Promise<ValidatorOptions> {
  const stores = await state.stores();
  const acb = state.acb();
  return {
    ...stores,
    trust: state.trust(),
    acb: { keyId: 'acb-ka', keyAgreement: acb.key },
    log: { dir: state.path('log', logName), id: logName, key: state.logKey() },
    anomalyThreshold: state.anomalyThreshold(),
    counterClockWindowMs: state.config.clockCounters ? 300_000 : false,
  };
}

/** Where the pool's setup module is: next to this bundle in dist/, or the source under tsx. */
function poolSetupModule(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../pool-setup.ts', here) : new URL('./pool-setup.js', here);
}

/** Validate commands, in this process or in `workers` threads; calls `each` in order. */
export async function validateAll(
  state: State,
  commands: readonly BatchCommand[],
  workers: number,
  each: (d: Decision, i: number) => void,
): Promise<void> {
  if (workers <= 1) {
    const validator = await Validator.open(await validatorOptions(state, 'main'));
    try {
      for (let i = 0; i < commands.length; i += BATCH) {
        const ds = await validator.validateBatch(commands.slice(i, i + BATCH));
        ds.forEach((d, j) => each(d, i + j));
      }
    } finally {
      await validator.close();
    }
    return;
  }
  const trust = state.trust();
  const data: PoolSetupData = {
    dir: state.dir,
    config: state.config,
    passphrase: state.passphrase,
    certificates: trust.certificates.map((c) => c.der),
    crls: trust.crls.map((c) => c.der),
    logKey: state.logKey(),
    thresholds: state.config.anomalyThresholds,
  };
  // The pool keeps each device's commands in one lane, in order; windows are taken one after the
  // other (for the progress bar), so the whole input is decided in order per device.
  const pool = await ValidatorPool.open({ setup: poolSetupModule(), workers, data, chunkSize: POOL_CHUNK });
  try {
    const step = POOL_CHUNK * workers;
    for (let i = 0; i < commands.length; i += step) {
      const ds = await pool.validateBatch(commands.slice(i, i + step));
      ds.forEach((d, j) => each(d, i + j));
    }
  } finally {
    await pool.close();
  }
}

/** Commands per pool chunk (one store commit each). */
const POOL_CHUNK = 1024;

export const register: Register = (program, wrap) => {
  const command = program.command('command').description('critical commands: build and sign (supplier side), validate and counter-sign (DCC side)');
  example(
    command,
    'smki command build disconnect --device 00DB123456789001 --out pre.hex',
    'smki command sign --in pre.hex --out signed.hex',
    'smki command validate --in signed.hex --out frames.hex',
  );

  example(
    command
      .command('build')
      .description('build unsigned pre-commands (one per line; counters from the clock in milliseconds, increasing)')
      .addArgument(new Argument('<kind>', 'disconnect, reconnect, arm or activate-firmware').choices(BUILD_KINDS))
      .option('--device <eui>', 'a target meter (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--devices <file>', 'target meters, one EUI-64 per line')
      .option('--repeat <n>', 'commands per meter (consecutive counters)', intOption('--repeat', 1, MAX_BUILD), 1)
      .option('--counter <n>', 'the first originator counter (default: now, in milliseconds since the epoch)')
      .option('--image-hash <hex>', 'activate-firmware: the manufacturer image hash (64 hex digits)')
      .option('--execution-time <iso>', 'activate-firmware: when to activate (default: at once)')
      .addOption(choice('--as <party>', 'the originator', ['supplier', 'network-operator'], 'supplier'))
      .addOption(choice('--format <format>', 'output encoding', FORMATS, 'hex'))
      .option('--out <file>', 'write here (default: standard output)'),
    'smki command build disconnect --device 00DB123456789001 --out pre.hex',
    'smki command build activate-firmware --devices meters.txt --image-hash 9F86…0A08 --out pre.hex',
  ).action(
    wrap(async (ctx, [kind], o) => {
      return withOutput(ctx, o.out as string | undefined, async (output) => {
        const state = ctx.state();
        const devices = readDeviceList(ctx, o);
        const repeat = o.repeat as number;
        if (devices.length * repeat > MAX_BUILD) throw new SmkiError('ERR_CLI_USAGE', `at most ${MAX_BUILD} commands per build`, {});
        let counter: bigint;
        if (o.counter !== undefined) {
          if (!/^\d{1,20}$/.test(String(o.counter))) throw new SmkiError('ERR_CLI_USAGE', '--counter must be a whole number', { detail: String(o.counter).slice(0, 32) });
          counter = BigInt(String(o.counter));
        } else counter = BigInt(Date.now());
        let imageHash: Uint8Array | undefined;
        if (kind === 'activate-firmware') {
          const h = String(o.imageHash ?? '').replace(/^0x/i, '');
          if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new SmkiError('ERR_CLI_USAGE', 'activate-firmware needs --image-hash <64 hex digits>', {});
          imageHash = new Uint8Array(Buffer.from(h, 'hex'));
        }
        let executionTime: Date | undefined;
        if (o.executionTime !== undefined) {
          executionTime = new Date(String(o.executionTime));
          if (Number.isNaN(executionTime.getTime())) throw new SmkiError('ERR_CLI_USAGE', '--execution-time is not an ISO 8601 time', { detail: String(o.executionTime).slice(0, 40) });
        }
        const originator = originatorOf(state, String(o.as));
        const { registry } = await state.stores();
        const fuels = new Map<Eui64, 'electricity' | 'gas'>();
        const needsFuel = kind === 'disconnect' || kind === 'arm';
        for (const d of devices) {
          if (fuels.has(d)) continue;
          const rec = await registry.device(d);
          if (!rec) throw new SmkiError('ERR_CLI_NOT_FOUND', `device ${d} is not in the registry (its fuel decides the use case)`, { detail: d });
          if (rec.fuel === 'none' && needsFuel) throw new SmkiError('ERR_CLI_INPUT_INVALID', `device ${d} has no fuel: ${String(kind)} is for a meter`, { detail: d });
          fuels.set(d, rec.fuel === 'gas' ? 'gas' : 'electricity');
        }
        const out: Uint8Array[] = [];
        for (let r = 0; r < repeat; r++) {
          for (const d of devices) {
            const base = { originator, recipient: d, counter: counter++ };
            switch (kind) {
              case 'disconnect':
                out.push(buildDisableSupply({ ...base, fuel: fuels.get(d)! }));
                break;
              case 'reconnect':
                out.push(buildEnableSupply(base));
                break;
              case 'arm':
                out.push(buildArmSupply({ ...base, fuel: fuels.get(d)! }));
                break;
              default:
                out.push(buildActivateFirmware({ ...base, imageHash: imageHash!, ...(executionTime ? { executionTime } : {}) }));
            }
          }
        }
        await output.write(encodeCommands(out, o.format as Encoding));
        const summary = { kind, commands: out.length, devices: devices.length, firstCounter: (counter - BigInt(out.length)).toString(), lastCounter: (counter - 1n).toString(), out: o.out ?? '-' };
        if (o.out === undefined) return {};
        return { json: summary, text: `${ctx.paint.green('✔')} ${out.length} ${String(kind)} pre-command(s) for ${devices.length} meter(s), counters ${summary.firstCounter}…${summary.lastCounter} → ${String(o.out)}` };
      });
    }),
  );

  example(
    operatorOptions(
      command
        .command('sign')
        .description("sign pre-commands with the key each target meter trusts (its portfolio's key, from the key store; under access control through the operator's signing session)")
        .option('--in <file>', 'pre-commands (- for standard input)', '-')
        .addOption(choice('--format <format>', 'input and output encoding', FORMATS, 'hex'))
        .addOption(choice('--as <party>', 'the signer', ['supplier', 'network-operator'], 'supplier'))
        .option('--out <file>', 'write here (default: standard output)'),
      { dual: false },
    ),
    'smki command sign --in pre.hex --out signed.hex',
    'smki command sign --in pre.hex --out signed.hex --operator svc-north --operator-key svc-north.key.pem',
  ).action(
    wrap(async (ctx, _a, o) => {
      return withOutput(ctx, o.out as string | undefined, async (output) => {
        const state = ctx.state();
        const commands = decodeCommands(await readInput(ctx.io, String(o.in)), o.format as Encoding);
        if (commands.length === 0) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'no command in the input', { detail: String(o.in) });
        const parsed = commands.map((c, i) => {
          try {
            return parseMessage(c);
          } catch (e) {
            throw new SmkiError('ERR_CLI_INPUT_INVALID', `command ${i + 1} is not a GBCS pre-command (${e instanceof SmkiError ? e.code : 'unreadable'})`, { detail: `command ${i + 1}` });
          }
      });
      const signed: Uint8Array[] = new Array(commands.length);
      const bar = ctx.progress('signing', commands.length);
      try {
        if (o.as === 'network-operator') {
          const signer = networkOperatorSigner(state);
          for (let i = 0; i < commands.length; i++) {
            signed[i] = await signPreCommand(commands[i]!, signer);
            bar.tick();
          }
        } else {
          const ks = await state.keystore();
          const supplier = state.config.parties.supplier;
          // Under access control: one signing session of the operator for the portfolios of the meters signed for.
          const signFor = await new Actor(ctx.io, ks, o as OperatorFlags).signing(supplier, async () => {
            const portfolios = new Set<string>();
            for (const device of new Set(parsed.map((m) => m.recipient))) portfolios.add((await ks.device(supplier, device)).portfolioId);
            return [...portfolios];
          });
          const CHUNK = 64;
          for (let i = 0; i < commands.length; i += CHUNK) {
            await Promise.all(
              commands.slice(i, i + CHUNK).map(async (c, j) => {
                const m = parsed[i + j]!;
                const signer: Signer = { publicKey: new Uint8Array(0), sign: (data) => signFor(m.recipient, data, { messageCode: m.messageCode, counter: m.originatorCounter }) };
                signed[i + j] = await signPreCommand(c, signer);
              }),
            );
            bar.tick(Math.min(CHUNK, commands.length - i));
          }
        }
      } finally {
        bar.stop();
      }
      await output.write(encodeCommands(signed, o.format as Encoding));
      if (o.out === undefined) return {};
      return { json: { signed: signed.length, out: o.out }, text: `${ctx.paint.green('✔')} signed ${signed.length} command(s) → ${String(o.out)}` };
      });
    }),
  );

  example(
    command
      .command('validate')
      .description("DCC side: validate signed pre-commands and counter-sign them (MAC'd frames out), or give each refusal's code and rule")
      .option('--in <file>', 'signed pre-commands (- for standard input)', '-')
      .addOption(choice('--format <format>', 'input and output encoding', FORMATS, 'hex'))
      .option('--sender <eui>', 'the User authenticated on the transport (default: the supplier of the state directory)')
      .option('--out <file>', 'write the frames here, one line per command (empty for a refused one)')
      .option('--workers <n>', 'validate in this many worker threads (default 1: this process)', intOption('--workers', 1, 64), 1),
    'smki command validate --in signed.hex --out frames.hex',
    'smki command validate --in batch.hex --out frames.hex --workers 2 --json > decisions.jsonl',
  ).action(
    wrap(async (ctx, _a, o): Promise<Outcome> => {
      return withOutput(ctx, o.out as string | undefined, async (output) => {
        const state = ctx.state();
        const commands = decodeCommands(await readInput(ctx.io, String(o.in)), o.format as Encoding);
        if (commands.length === 0) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'no command in the input', { detail: String(o.in) });
        const sender = o.sender !== undefined ? eui(String(o.sender), '--sender') : state.config.parties.supplier;
        const batch: BatchCommand[] = commands.map((bytes) => ({ bytes, sender }));
        const frames: (Uint8Array | undefined)[] = new Array(commands.length);
        const counts = new Map<string, number>();
        let accepted = 0;
        let rejected = 0;
        let quarantined = 0;
        const textLines: string[] = [];
        const bar = ctx.progress('validating', commands.length);
        // Binary holds one frame; a batch read as binary is one command anyway. A refused one writes an empty file.
        const writeFrames = () => output.write(o.format === 'binary' ? Buffer.from(frames[0] ?? new Uint8Array(0)) : encodeCommands(frames, o.format as Encoding));
        const started = process.hrtime.bigint();
        try {
          await validateAll(state, batch, o.workers as number, (d, i) => {
            bar.tick();
            if (d.outcome === 'accepted') {
              accepted++;
              frames[i] = d.frame;
            } else {
              if (d.outcome === 'rejected') rejected++;
              else quarantined++;
              counts.set(`${d.outcome} ${d.code}`, (counts.get(`${d.outcome} ${d.code}`) ?? 0) + 1);
            }
            if (ctx.json) ctx.line(toJson({ ...decisionJson(d, i), ...(o.out !== undefined && d.outcome === 'accepted' ? { frame: undefined } : {}) }));
            else if (commands.length <= 50) {
              textLines.push(
                d.outcome === 'accepted'
                  ? `${ctx.paint.green('✔')} ${i + 1}: accepted ${d.device} ${d.messageCode.toString(16).padStart(4, '0')} counter ${d.counter}: ${d.frame.length}-byte MAC'd frame`
                  : `${d.outcome === 'quarantined' ? ctx.paint.yellow('⏸') : ctx.paint.red('✘')} ${i + 1}: ${d.outcome} ${d.code} at ${d.step}${d.outcome === 'rejected' ? `: ${d.message}` : ` (quarantine ${d.quarantineId})`}`,
              );
            }
          });
        } catch (e) {
          // The frames of the commands accepted before the failure are their only output (their
          // counters are spent): keep them, then report the failure.
          if (accepted > 0 && o.out !== undefined) await writeFrames();
          throw e;
        } finally {
          bar.stop();
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (o.out !== undefined) await writeFrames();
        if (!ctx.json) {
          for (const code of new Set([...counts.keys()].map((k) => k.split(' ')[1]!))) ctx.io.stderr.write(`${code}: what to do: ${hintFor(code)}\n`);
        }
        const exit = rejected > 0 ? 'REJECTED' : quarantined > 0 ? 'QUARANTINED' : 'OK';
        const summary = [
          ...textLines,
          `${accepted} accepted, ${rejected} rejected, ${quarantined} quarantined of ${commands.length} in ${seconds.toFixed(2)} s (${Math.round(commands.length / Math.max(seconds, 1e-9)).toLocaleString('en-GB')} commands/s)${o.out !== undefined ? `; frames → ${String(o.out)}` : ''}`,
          ...(counts.size > 0 ? [table(['outcome and code', 'commands'], [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, n]))] : []),
        ];
        // With --json the decisions were streamed as JSON lines; the summary is not repeated.
        return { text: summary.join('\n'), exit };
      });
    }),
  );
};
