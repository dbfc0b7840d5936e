/**
 * `smki duis …`: DUIS XML signatures (@smki/duis, docs/domain.md §8) from the command line.
 * User side: `sign` a service Request with the supplier's XML-signing key (role 135, from the key
 * store, audited), and `precommand`: verify the DCC's signed `sr:PreCommand` Response, sign the
 * GBCS pre-command with the key the meter trusts and send it back as a signed
 * `sr:SignedPreCommand` Request. Either side: `verify` a Request or a Response against the state
 * directory's certificates and CRLs, with the DCC side's anti-replay of request ids. DCC side:
 * `validate`, the whole decision on a signed pre-command Request (the validator's DUIS entry). Lab only:
 * `respond`, the lab's DCC simulator (not a DCC), and `provision` for a directory made before.
 *
 * Batches: several files (each one document), or `-` for standard input with one compact document
 * per line. Each document gets its own outcome (one JSON line with `--json`); the exit status is
 * the table's: 0 when every document was done, 1 when any was refused.
 * @module
 * @internal
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Option } from 'commander';
import { isSmkiError, SmkiError } from '@smki/core';
import { buildArmSupply, buildDisableSupply, buildEnableSupply } from '@smki/gbcs';
import { claimRequestId, DuisTrust, preCommandFromResponse, signedPreCommandFromRequest, signedPreCommandRequest, signRequest, signResponse, verifyDuis, type VerifiedDuis } from '@smki/duis';
import type { XmlSigner } from '@smki/keystore';
import { choice, example, type Ctx, type Outcome, type Register } from '../program.js';
import { toJson } from '../io.js';
import { exitForCode, hintOf, withHint } from '../exit.js';
import { beginWrite, readInput, writeFileAtomic, type PendingFile } from '../files.js';
import { eui, type State } from '../state.js';
import { DEFAULT_PARTIES, provisionDuis, XML_PORTFOLIO } from './init.js';
import { Actor, type OperatorFlags } from '../access.js';
import { validatorOptions } from './command.js';
import { Validator } from '@smki/validator';

/** One input document: a whole file, or one line of standard input. */
interface Doc {
  /** The file as given (`-` for standard input). */
  readonly file: string;
  /** The line of standard input (from 1). */
  readonly line?: number;
  /** The file name its output gets in an output directory. */
  readonly name: string;
  /** Its bytes (a file) or text (a line). */
  readonly data: Uint8Array | string;
}

/** What one document's work produced. */
interface Done {
  /** The document written out (sign, precommand, respond). */
  readonly xml?: string;
  /** Its fields for the JSON line. */
  readonly fields: Record<string, unknown>;
  /** Its readable line. */
  readonly text: string;
}

const where = (d: Doc): string => (d.line !== undefined ? `-:${d.line}` : d.file);

/** Read the documents: each file is one; `-` is standard input, one compact document per non-empty line. */
async function readDocuments(ctx: Ctx, files: readonly string[]): Promise<Doc[]> {
  if (files.filter((f) => f === '-').length > 1) throw new SmkiError('ERR_CLI_USAGE', 'standard input (-) can be read once', {});
  const docs: Doc[] = [];
  for (const file of files) {
    const buf = await readInput(ctx.io, file);
    if (file !== '-') {
      docs.push({ file, name: basename(file), data: new Uint8Array(buf) });
      continue;
    }
    const lines = buf.toString('utf8').split('\n');
    lines.forEach((l, i) => {
      const text = l.trim();
      if (text !== '') docs.push({ file, line: i + 1, name: `stdin-${i + 1}.xml`, data: text });
    });
  }
  if (docs.length === 0) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'no document in the input', { detail: files.join(' ').slice(0, 200) });
  return docs;
}

/** Where produced documents go: standard output, one file (one document per line), or a directory (one file each). */
interface Sink {
  readonly kind: 'stdout' | 'file' | 'dir';
  put(doc: Doc, xml: string | undefined): void;
  /** Write what was produced (a file is replaced atomically; nothing when no document was produced). */
  finish(): void;
  abandon(): void;
}

function openSink(ctx: Ctx, out: string | undefined, docs: readonly Doc[]): Sink {
  const many = docs.length > 1;
  if (out === undefined || out === '-') {
    return {
      kind: 'stdout',
      // With --json the document is in its JSON line; otherwise one line each (empty for a refused one in a batch).
      put: (_d, xml) => {
        if (!ctx.json && (xml !== undefined || many)) ctx.line(xml ?? '');
      },
      finish() {},
      abandon() {},
    };
  }
  const path = resolve(ctx.io.cwd, out);
  if (out.endsWith('/') || (existsSync(path) && statSync(path).isDirectory())) {
    const names = new Set<string>();
    for (const d of docs) {
      if (names.has(d.name)) throw new SmkiError('ERR_CLI_USAGE', `two inputs are named ${d.name}: an output directory holds one file per input name; use --out FILE`, { detail: d.name });
      names.add(d.name);
    }
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    } catch {
      throw new SmkiError('ERR_CLI_WRITE_FAILED', `${path} cannot be made as a directory`, { detail: path });
    }
    return {
      kind: 'dir',
      put: (d, xml) => {
        if (xml !== undefined) writeFileAtomic(join(path, d.name), `${xml}\n`, 0o644);
      },
      finish() {},
      abandon() {},
    };
  }
  const pending: PendingFile = beginWrite(path, 0o644);
  const lines: string[] = [];
  let produced = 0;
  return {
    kind: 'file',
    put: (_d, xml) => {
      lines.push(xml ?? '');
      if (xml !== undefined) produced++;
    },
    finish: () => (produced > 0 ? pending.commit(`${lines.join('\n')}\n`) : pending.abandon()),
    abandon: () => pending.abandon(),
  };
}

/** A refusal of one document (a check failed); anything else (a store, the key store, the state) stops the batch. */
function refusal(e: unknown): SmkiError | undefined {
  return isSmkiError(e) && exitForCode(e.code) === 'REJECTED' ? e : undefined;
}

/**
 * Run `work` on each document in order, one outcome each: a JSON line with `--json`, else a
 * readable line (on standard error when the documents themselves go to standard output). The
 * output is opened before any work; `setup` runs after that (keys, stores) and returns the work.
 */
async function runBatch(
  ctx: Ctx,
  docs: readonly Doc[],
  options: { readonly out?: string | undefined; readonly produces: boolean; readonly label: string; readonly done: string },
  setup: () => Promise<(doc: Doc) => Promise<Done>>,
): Promise<Outcome> {
  const sink = options.produces ? openSink(ctx, options.out, docs) : undefined;
  const status = (s: string) => {
    if (sink?.kind === 'stdout') ctx.io.stderr.write(`${s}\n`);
    else ctx.line(s);
  };
  const p = ctx.paint;
  let ok = 0;
  let refused = 0;
  const bar = ctx.progress(options.label, docs.length);
  try {
    const work = await setup();
    for (const doc of docs) {
      const at = { file: doc.file, ...(doc.line !== undefined ? { line: doc.line } : {}) };
      let r: Done;
      try {
        r = await work(doc);
      } catch (e) {
        const err = refusal(e);
        if (err === undefined) throw e;
        refused++;
        const detail = (err.context as { detail?: unknown } | undefined)?.detail;
        if (ctx.json) ctx.line(toJson({ ...at, ok: false, code: err.code, message: err.message, ...(detail !== undefined ? { detail } : {}), hint: hintOf(err, err.code) }));
        else status(`${p.red('✘')} ${where(doc)}: refused ${err.code}: ${err.message}\n  what to do: ${hintOf(err, err.code)}`);
        sink?.put(doc, undefined);
        bar.tick();
        continue;
      }
      ok++;
      if (ctx.json) ctx.line(toJson({ ...at, ok: true, ...r.fields, ...(sink?.kind === 'stdout' && r.xml !== undefined ? { xml: r.xml } : {}) }));
      sink?.put(doc, r.xml);
      if (!ctx.json) status(`${p.green('✔')} ${where(doc)}: ${r.text}`);
      bar.tick();
    }
  } catch (e) {
    // What was produced before the failure is kept (its request ids or counters are spent).
    if (ok > 0) sink?.finish();
    else sink?.abandon();
    throw e;
  } finally {
    bar.stop();
  }
  sink?.finish();
  if (!ctx.json) status(`${ok} ${options.done}, ${refused} refused of ${docs.length}${sink && sink.kind !== 'stdout' && ok > 0 ? ` → ${String(options.out)}` : ''}`);
  return { exit: refused > 0 ? 'REJECTED' : 'OK' };
}

/** What the state directory trusts, for DUIS: the hierarchy, every organisation certificate issued here (XML-signing ones too), the current CRL and ARL. */
function duisTrust(state: State): DuisTrust {
  const t = state.trust();
  return new DuisTrust({ certificates: t.certificates, crls: t.crls });
}

/**
 * The supplier's XML signer (its current xmlSigning key), from the operator's signing session under
 * access control, or what to do when there is none.
 */
async function xmlSignerOf(state: State, actor: Actor, portfolio: string | undefined): Promise<XmlSigner> {
  const supplier = state.config.parties.supplier;
  const portfolioId = portfolio ?? state.config.duis?.xmlPortfolio;
  try {
    return await actor.xmlSigner(supplier, portfolioId);
  } catch (e) {
    if (isSmkiError(e) && (e.code === 'ERR_KEY_NOT_FOUND' || e.code === 'ERR_PORTFOLIO_NOT_FOUND')) {
      throw withHint(
        new SmkiError('ERR_CLI_NOT_FOUND', `the supplier ${supplier} has no usable XML-signing key${portfolioId !== undefined ? ` in portfolio ${portfolioId}` : ''} (${e.code}: ${e.message})`, { detail: portfolioId ?? supplier }),
        state.config.duis === undefined
          ? "run `smki duis provision` (this state directory was made before DUIS), or `smki key generate <portfolio> --purpose xmlSigning --certify`"
          : '`smki key list` shows the XML-signing keys; `smki key generate <portfolio> --purpose xmlSigning --certify` makes one',
      );
    }
    throw e;
  }
}

function atOption(v: unknown): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(String(v));
  if (Number.isNaN(d.getTime())) throw new SmkiError('ERR_CLI_USAGE', '--at is not an ISO 8601 time', { detail: String(v).slice(0, 40) });
  return d;
}

/** The fields of a verified document for its JSON line. */
function verifiedFields(v: VerifiedDuis): Record<string, unknown> {
  return {
    kind: v.kind,
    requestId: v.requestIdText,
    originator: v.originator,
    target: v.target,
    counter: v.counter,
    serviceReference: v.serviceReference,
    body: v.body,
    signer: v.certificate.serialNumber,
    ...(v.warnings.length > 0 ? { warnings: v.warnings } : {}),
  };
}

const hex4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');

/** The services the lab's DCC simulator answers with a pre-command. */
const SIMULATED_SERVICES: Readonly<Record<string, { readonly body: string; readonly what: string }>> = {
  '7.1': { body: 'EnableSupply', what: 'Enable Supply' },
  '7.2': { body: 'DisableSupply', what: 'Disable Supply' },
  '7.3': { body: 'ArmSupply', what: 'Arm Supply' },
};

/** The GBCS version the simulator writes in `sr:GBCSVersion`. */
const SIMULATED_GBCS_VERSION = '3.2';

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const FILES_ARG = '<files...>';
const FILES_HELP = 'files, each one document; or - for standard input, one compact document per line';
const OUT_HELP = 'write the documents here: a file (one per line, empty for a refused one) or a directory (one file each, named as its input); default standard output';

export const register: Register = (program, wrap) => {
  const duis = program.command('duis').description("DUIS XML signatures: sign Requests (the supplier's XML-signing key), verify Requests and Responses, the signed pre-command round trip; and the lab's DCC simulator");
  example(
    duis,
    'smki duis sign disable.xml --counter now --out signed.xml',
    'smki duis respond signed.xml --out response.xml',
    'smki duis precommand response.xml --out spc.xml',
    'smki duis verify spc.xml --expect request --replay --gbcs-out gbcs.hex && smki command validate --in gbcs.hex',
  );

  example(
    duis
      .command('sign')
      .description("User side: sign DUIS Requests with the supplier's XML-signing key (role 135, from the key store; every signature audited)")
      .argument(FILES_ARG, FILES_HELP)
      .addOption(choice('--counter <mode>', "the request id's counter: keep it as written, or set it now from the supplier's durable counter (milliseconds since the epoch, strictly increasing per originator and target; state/duis-user.db)", ['keep', 'now'], 'keep'))
      .option('--portfolio <id>', "the portfolio whose XML-signing key signs (default: the lab's, from smki.json)")
      .option('--out <file|dir>', OUT_HELP)
      .option('--operator <id>', "under access control: sign in this operator's signing session (a signer of the XML-signing key's portfolio)")
      .option('--operator-key <file>', "the operator's private key (PKCS#8 PEM; passphrase from $SMKI_OPERATOR_PASSPHRASE or --operator-passphrase-file)")
      .option('--operator-passphrase-file <file>', "read the operator key's passphrase from this file"),
    'smki duis sign disable.xml --counter now --out signed.xml',
    'smki duis sign a.xml b.xml --counter now --out signed/ --json',
  ).action(
    wrap(async (ctx, [files], o) => {
      const state = ctx.state();
      const docs = await readDocuments(ctx, files as string[]);
      return runBatch(ctx, docs, { out: o.out as string | undefined, produces: true, label: 'signing', done: 'signed' }, async () => {
        const signer = await xmlSignerOf(state, new Actor(ctx.io, await state.keystore(), o as OperatorFlags), o.portfolio as string | undefined);
        const store = o.counter === 'now' ? await state.duisStore('user') : undefined;
        return async (doc) => {
          const s = await signRequest(doc.data, signer, signer.certificate, store !== undefined ? { requestCounter: { store } } : {});
          const id = s.requestId;
          return { xml: s.xml, fields: { requestId: s.requestIdText, originator: id.originator, target: id.target, counter: id.counter }, text: `signed ${s.requestIdText} with ${signer.keyId}` };
        };
      });
    }),
  );

  example(
    duis
      .command('verify')
      .description("verify signed DUIS documents against the state directory's certificates (root, CAs, every organisation certificate issued here) and its current CRL and ARL: a Request (DCC side) or a Response (User side)")
      .argument(FILES_ARG, FILES_HELP)
      .addOption(new Option('--expect <kind>', 'request (the DCC verifies a User\'s Request) or response (a User verifies the DCC\'s Response)').choices(['request', 'response']).makeOptionMandatory())
      .option('--replay', "DCC side: claim each Request's id once in the DUIS anti-replay store (state/duis-dcc.db): a replayed, stale or out-of-turn id is refused")
      .option('--at <time>', 'judge validity, revocation and freshness at this ISO 8601 time (default now)')
      .option('--gbcs-out <file>', 'write the signed GBCS pre-command of each verified sr:SignedPreCommand Request here (hex, one line per document, empty for others), for `smki command validate`'),
    'smki duis verify signed.xml --expect request --replay',
    'smki duis verify response.xml --expect response --json',
    'smki duis verify spc.xml --expect request --replay --gbcs-out gbcs.hex',
  ).action(
    wrap(async (ctx, [files], o) => {
      const state = ctx.state();
      const expect = o.expect as 'request' | 'response';
      if (o.replay === true && expect !== 'request') throw new SmkiError('ERR_CLI_USAGE', '--replay applies to Requests (--expect request): request ids are claimed on the DCC side', {});
      const now = atOption(o.at);
      const docs = await readDocuments(ctx, files as string[]);
      const gbcsOut = o.gbcsOut === undefined ? undefined : beginWrite(resolve(ctx.io.cwd, String(o.gbcsOut)), 0o644);
      const gbcs: string[] = [];
      try {
        const outcome = await runBatch(ctx, docs, { produces: false, label: 'verifying', done: 'verified' }, async () => {
          const trust = duisTrust(state);
          const store = o.replay === true ? await state.duisStore('dcc') : undefined;
          const dcc = state.config.duis?.dcc;
          const base = { expect, ...(now !== undefined ? { now } : {}), ...(expect === 'response' && dcc !== undefined ? { dcc } : {}) };
          return async (doc) => {
            gbcs.push('');
            // Everything is checked first, the GBCS payload's binding too; only then is the id claimed.
            const v = await verifyDuis(doc.data, trust, base);
            let messageCode: number | undefined;
            if (v.body === 'SignedPreCommand' && v.kind === 'request') {
              const spc = await signedPreCommandFromRequest(v);
              messageCode = spc.message.messageCode;
              gbcs[gbcs.length - 1] = Buffer.from(spc.signedPreCommand).toString('hex').toUpperCase();
            } else if (v.body === 'PreCommand' && v.kind === 'response') {
              messageCode = (await preCommandFromResponse(v)).message.messageCode;
            }
            if (store !== undefined) {
              try {
                await claimRequestId({ store }, v, now ?? new Date());
              } catch (e) {
                gbcs[gbcs.length - 1] = '';
                throw e;
              }
            }
            const kind = v.kind === 'request' ? 'Request' : 'Response';
            return {
              fields: { ...verifiedFields(v), ...(messageCode !== undefined ? { messageCode: hex4(messageCode) } : {}), ...(store !== undefined ? { claimed: true } : {}) },
              text: `${kind} ${v.serviceReference ?? '-'} ${v.body || '(empty body)'}, ${v.originator} → ${v.target}, counter ${v.counter}${messageCode !== undefined ? `, GBCS ${hex4(messageCode)}` : ''}; signed with certificate ${v.certificate.serialNumber}${store !== undefined ? '; request id claimed' : ''}${v.warnings.length > 0 ? ` (warning: ${v.warnings.join('; ')})` : ''}`,
            };
          };
        });
        if (gbcsOut !== undefined) {
          if (gbcs.some((g) => g !== '')) gbcsOut.commit(`${gbcs.join('\n')}\n`);
          else gbcsOut.abandon();
        }
        return outcome;
      } catch (e) {
        if (gbcsOut !== undefined) {
          if (gbcs.some((g) => g !== '')) gbcsOut.commit(`${gbcs.join('\n')}\n`);
          else gbcsOut.abandon();
        }
        throw e;
      }
    }),
  );

  example(
    duis
      .command('validate')
      .description("DCC side: the whole decision on signed sr:SignedPreCommand Requests (the validator's DUIS entry): the XML signature under the profile, the GBCS command bound to the request id and its signer, the request id claimed once (state/duis-dcc.db), then every GBCS check and the ACB MAC; MAC'd frames out")
      .argument(FILES_ARG, FILES_HELP)
      .option('--out <file>', "write the MAC'd frames here (hex, one line per document, empty for a refused or held one)"),
    'smki duis validate spc.xml --out frames.hex',
    'smki duis validate spc1.xml spc2.xml --json > decisions.jsonl',
  ).action(
    wrap(async (ctx, [files], o) => {
      const state = ctx.state();
      const docs = await readDocuments(ctx, files as string[]);
      const framesOut = o.out === undefined ? undefined : beginWrite(resolve(ctx.io.cwd, String(o.out)), 0o644);
      const frames: string[] = [];
      let held = 0;
      let validator: Validator | undefined;
      const writeFrames = () => {
        if (framesOut === undefined) return;
        if (frames.some((f) => f !== '')) framesOut.commit(`${frames.join('\n')}\n`);
        else framesOut.abandon();
      };
      try {
        const outcome = await runBatch(ctx, docs, { produces: false, label: 'validating', done: 'decided' }, async () => {
          const options = await validatorOptions(state, 'main');
          const v = await Validator.open({ ...options, duis: { trust: duisTrust(state), replay: { store: await state.duisStore('dcc') } } });
          validator = v;
          return async (doc) => {
            frames.push('');
            const d = await v.validateDuisRequest(doc.data);
            const request = d.request === undefined ? {} : { requestId: d.request.requestId, originator: d.request.originator, target: d.request.target, counter: d.request.counter, serviceReference: d.request.serviceReference };
            if (d.outcome === 'rejected') throw new SmkiError(d.code, `${d.message} (step ${d.step})`, {} as never);
            if (d.outcome === 'quarantined') {
              held++;
              return { fields: { outcome: 'quarantined', code: d.code, quarantineId: d.quarantineId, ...request }, text: `held ${d.code}: quarantine record ${d.quarantineId} (${d.count} of ${d.limit} in the window)` };
            }
            frames[frames.length - 1] = Buffer.from(d.frame).toString('hex').toUpperCase();
            return { fields: { outcome: 'accepted', ...request, frame: frames[frames.length - 1] }, text: `accepted: request ${d.request.requestId}, the MAC'd frame ${frames[frames.length - 1]?.slice(0, 16)}…` };
          };
        });
        writeFrames();
        return held > 0 && outcome.exit === 'OK' ? { exit: 'QUARANTINED' } : outcome;
      } catch (e) {
        writeFrames();
        throw e;
      } finally {
        await validator?.close();
      }
    }),
  );

  example(
    duis
      .command('precommand')
      .description("User side: verify the DCC's signed sr:PreCommand Responses, sign each GBCS pre-command with the key its meter trusts (its portfolio's, from the key store) and send it back as a signed sr:SignedPreCommand Request under the same request id")
      .argument(FILES_ARG, FILES_HELP)
      .option('--portfolio <id>', "the portfolio whose XML-signing key signs the Request (default: the lab's, from smki.json)")
      .option('--out <file|dir>', OUT_HELP)
      .option('--operator <id>', "under access control: sign in this operator's signing sessions (a signer of the XML-signing key's portfolio and of the meters')")
      .option('--operator-key <file>', "the operator's private key (PKCS#8 PEM; passphrase from $SMKI_OPERATOR_PASSPHRASE or --operator-passphrase-file)")
      .option('--operator-passphrase-file <file>', "read the operator key's passphrase from this file"),
    'smki duis precommand response.xml --out spc.xml',
    'smki duis precommand r1.xml r2.xml --out spc/ --json',
  ).action(
    wrap(async (ctx, [files], o) => {
      const state = ctx.state();
      const docs = await readDocuments(ctx, files as string[]);
      return runBatch(ctx, docs, { out: o.out as string | undefined, produces: true, label: 'signing', done: 'signed' }, async () => {
        const ks = await state.keystore();
        // Under access control: the operator's sessions, one for the XML-signing key's portfolio, one per portfolio of the meters signed for.
        const actor = new Actor(ctx.io, ks, o as OperatorFlags);
        const xmlSigner = await xmlSignerOf(state, actor, o.portfolio as string | undefined);
        const meterSigner = actor.meterSigner(state.config.parties.supplier);
        const keystore = { signFor: (device: string, data: Uint8Array, use: { messageCode?: number; counter?: bigint }) => meterSigner(device, data, { ...(use.messageCode !== undefined ? { messageCode: use.messageCode } : {}), ...(use.counter !== undefined ? { counter: use.counter } : {}) }) };
        const trust = duisTrust(state);
        const dcc = state.config.duis?.dcc;
        const supplier = state.config.parties.supplier;
        return async (doc) => {
          const verified = await verifyDuis(doc.data, trust, { expect: 'response', ...(dcc !== undefined ? { dcc } : {}) });
          const preCommand = await preCommandFromResponse(verified);
          const header = {
            ...(verified.commandVariant !== undefined ? { commandVariant: verified.commandVariant } : {}),
            ...(verified.serviceReference !== undefined ? { serviceReference: verified.serviceReference } : {}),
            ...(verified.serviceReferenceVariant !== undefined ? { serviceReferenceVariant: verified.serviceReferenceVariant } : {}),
          };
          const r = await signedPreCommandRequest({ preCommand, keystore, organisation: supplier, xmlSigner, xmlCertificate: xmlSigner.certificate, header });
          return {
            xml: r.xml,
            fields: { requestId: r.requestIdText, originator: r.requestId.originator, target: r.requestId.target, counter: r.requestId.counter, messageCode: hex4(preCommand.message.messageCode) },
            text: `signed pre-command ${hex4(preCommand.message.messageCode)} for ${preCommand.target} under ${r.requestIdText}`,
          };
        };
      });
    }),
  );

  example(
    duis
      .command('respond')
      .description(
        "LAB ONLY: the lab's DCC simulator, not a DCC. Verifies Requests for services 7.1, 7.2 and 7.3 (Enable, Disable, Arm Supply; request ids claimed in state/duis-dcc.db), builds each GBCS pre-command (the device's fuel from the lab's registry) and answers with an sr:PreCommand Response signed with the lab DCC's XML-signing key (role 137)",
      )
      .argument(FILES_ARG, FILES_HELP)
      .option('--out <file|dir>', OUT_HELP),
    'smki duis respond signed.xml --out response.xml',
  ).action(
    wrap(async (ctx, [files], o) => {
      const state = ctx.state();
      const docs = await readDocuments(ctx, files as string[]);
      return runBatch(ctx, docs, { out: o.out as string | undefined, produces: true, label: 'responding', done: 'answered' }, async () => {
        const dcc = state.dccXmlSigning();
        const trust = duisTrust(state);
        const store = await state.duisStore('dcc');
        const { registry } = await state.stores();
        return async (doc) => {
          // Checked without claiming first: a request this simulator cannot answer keeps its id.
          const first = await verifyDuis(doc.data, trust, { expect: 'request' });
          const service = first.serviceReference === undefined ? undefined : SIMULATED_SERVICES[first.serviceReference];
          if (service === undefined) throw new SmkiError('ERR_CLI_INPUT_INVALID', `the lab's DCC simulator answers services 7.1, 7.2 and 7.3 only, not ${first.serviceReference ?? '(no sr:ServiceReference)'}`, { detail: first.serviceReference ?? '' });
          if (first.body !== service.body) throw new SmkiError('ERR_CLI_INPUT_INVALID', `service ${first.serviceReference} (${service.what}) has body sr:${service.body}, not sr:${first.body || '(empty)'}`, { detail: first.body });
          const device = await registry.device(first.target);
          if (!device) throw new SmkiError('ERR_CLI_NOT_FOUND', `device ${first.target} is not in the lab's registry (its fuel decides the command)`, { detail: first.target });
          if (device.fuel === 'none') throw new SmkiError('ERR_CLI_INPUT_INVALID', `device ${first.target} has no fuel: ${service.what} is for a meter`, { detail: first.target });
          if (first.serviceReference === '7.1' && device.fuel === 'gas') throw new SmkiError('ERR_CLI_INPUT_INVALID', `device ${first.target} is a gas meter: its supply is armed (7.3), never enabled remotely`, { detail: first.target });
          // Only a request this simulator answers uses its id.
          await claimRequestId({ store }, first);
          const v = first;
          const base = { originator: v.originator, recipient: v.target, counter: v.counter };
          const fuel = device.fuel === 'gas' ? 'gas' : 'electricity';
          const pre = v.serviceReference === '7.1' ? buildEnableSupply(base) : v.serviceReference === '7.2' ? buildDisableSupply({ ...base, fuel }) : buildArmSupply({ ...base, fuel });
          const header =
            `<sr:RequestID>${escapeXml(v.requestIdText)}</sr:RequestID>` +
            (v.commandVariant !== undefined ? `<sr:CommandVariant>${escapeXml(v.commandVariant)}</sr:CommandVariant>` : '') +
            `<sr:ServiceReference>${escapeXml(v.serviceReference!)}</sr:ServiceReference>` +
            (v.serviceReferenceVariant !== undefined ? `<sr:ServiceReferenceVariant>${escapeXml(v.serviceReferenceVariant)}</sr:ServiceReferenceVariant>` : '');
          const response =
            `<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>${header}</sr:Header>` +
            `<sr:Body><sr:PreCommand><sr:GBCSVersion>${SIMULATED_GBCS_VERSION}</sr:GBCSVersion><sr:GBCSPayload>${Buffer.from(pre).toString('base64')}</sr:GBCSPayload></sr:PreCommand></sr:Body></sr:Response>`;
          const signed = await signResponse(response, dcc.signer, dcc.certificate);
          return {
            xml: signed.xml,
            fields: { requestId: v.requestIdText, originator: v.originator, target: v.target, counter: v.counter, serviceReference: v.serviceReference, preCommand: Buffer.from(pre).toString('hex').toUpperCase() },
            text: `answered ${v.requestIdText} (${v.serviceReference} ${service.what}) with a pre-command signed as the lab DCC ${dcc.entity}`,
          };
        };
      });
    }),
  );

  example(
    duis
      .command('provision')
      .description("add DUIS to a state directory made before it: the supplier's XML-signing key (role 135, in the key store's backend, portfolio duis) and the lab DCC's XML-signing key and certificate (role 137)")
      .option('--dcc <eui>', "the lab DCC's entity (its XML-signing certificate signs Responses)", DEFAULT_PARTIES.dcc),
    'smki duis provision',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const existing = state.config.duis;
      if (existing !== undefined) {
        return { json: { provisioned: false, duis: existing }, text: `${ctx.paint.green('✔')} ${state.dir} already has DUIS (lab DCC ${existing.dcc}, XML-signing key in portfolio ${existing.xmlPortfolio}): nothing to do` };
      }
      const duisConfig = { dcc: eui(String(o.dcc), '--dcc'), xmlPortfolio: XML_PORTFOLIO };
      const rows = await provisionDuis(state, duisConfig);
      // Recorded last: a provisioning that stopped half way is finished by running it again.
      state.writeConfig({ ...state.config, duis: duisConfig });
      return {
        json: { provisioned: true, duis: duisConfig, certificates: rows.map(([what, serial, file]) => ({ what, serial, file })) },
        text: [`${ctx.paint.green('✔')} DUIS added to ${state.dir}`, ...rows.map(([what, serial, file]) => `  ${what}: certificate ${serial} (${file})`)].join('\n'),
      };
    }),
  );
};
