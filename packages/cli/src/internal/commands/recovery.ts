/**
 * `smki recovery …`: re-key a portfolio's meters after its keys are rotated or stolen, with a
 * durable plan (@smki/recovery) in `state/recovery.db` (GBCS CS02b, docs/domain.md §9–§10).
 *
 * - `plan`: a rotation generates the new keys; a compromise revokes the stolen keys at once
 *   (keyCompromise; their certificates go on a new CRL) and makes the replacements in a further
 *   backend of the key store, by name. The state directory's organisation CA certifies the new
 *   keys (as `smki key generate --certify` does) and the certificates are attached.
 * - `party init` / `party show`: the Recovery party (Remote Party Role 1), whose key sits in
 *   every meter's recovery cell: its own key store (its own directory, passphrase and operators,
 *   signing under dual control), its DS key and a role 1 certificate from the test organisation
 *   CA (../recovery-party.ts).
 * - `build`: the next batch of commands, one JSON line per meter. A rotation is signed through
 *   the key store with the key each meter still trusts (mode 2). A compromise is signed by the
 *   Recovery party (mode 8): one of its operators (`--operator`, `--operator-key`) proposes a
 *   signing session bound to exactly the batch's commands, other operators approve it
 *   (`--approver ID:KEY-FILE`, each checking the proposal first; never the proposer), and only
 *   then does its store sign. Without the approvals its store refuses (`ERR_PROPOSAL_QUORUM_NOT_MET`).
 * - `record`: device responses, each believed only once its signature verifies with the meter's
 *   DS certificate from the device registry, that certificate chaining to this directory's root
 *   through its device CA; a refused one changes nothing.
 * - `status`: meter-purposes per state; how many meters still trust each old key.
 *
 * The plans act on the key store directly: a store under access control (`smki operator init`)
 * is refused up front (`ERR_OPERATOR_REQUIRED`), as the plan cannot sign operator requests yet.
 * @module
 * @internal
 */
import { resolve } from 'node:path';
import { createKeySigner, fromHex, SmkiError, toHex, type Eui64 } from '@smki/core';
import type { OperatorInfo } from '@smki/keystore';
import { parseMessage } from '@smki/gbcs';
import { parseCertificate } from '@smki/pki';
import type { KeyStore } from '@smki/keystore';
import { RecoveryPlans, type BuildBatchOptions, type CellResult, type PlannedRecovery, type PlanStatus, type RecoveryPlan, type RecoveryPurpose } from '@smki/recovery';
import { choice, example, intOption, type Ctx, type Register } from '../program.js';
import { table } from '../io.js';
import { beginWrite, readInput, type PendingFile } from '../files.js';
import { withHint } from '../exit.js';
import { eui, type State } from '../state.js';
import { issueKeyCertificate, revokeCertificate, trustingPage } from './keys.js';
import { grantText, operatorOf, parseGrant, readOperatorKey, readPublicKeyFile, type Operator, type OperatorFlags } from '../access.js';
import { assignToRecovery, createRecoveryParty, openRecoveryParty, partyDir, recoveryPassphrase, recoverySigning, RECOVERY_PASSPHRASE_ENV, RECOVERY_PORTFOLIO } from '../recovery-party.js';

/** The Recovery party's EUI-64 of a test state directory unless `--entity` names another. */
export const DEFAULT_RECOVERY_PARTY = '90B3D51F30000001';

/** The plan database's file, under state/. */
export const RECOVERY_DB = 'recovery.db';

/** Meters one call of the plan builds (the progress bar moves between calls). */
const CHUNK = 500;
/** Meters listed in text output. */
const SHOWN = 20;
/** Most meters listed per old key in `plan --json`. */
const LISTED = 100_000;

/** Refuse a key store under access control: the plan acts on it directly. */
async function refuseUnderAccessControl(ks: KeyStore): Promise<void> {
  if (await ks.accessControlled()) {
    throw withHint(
      new SmkiError('ERR_OPERATOR_REQUIRED', 'smki recovery acts on the key store directly, and this key store is under access control', {}),
      'smki recovery cannot act as an operator yet: run the recovery with @smki/recovery and a signing session, or on a store not under access control',
    );
  }
}

/** Open the state directory's plan database with its key store and device trust. */
export async function openPlans(state: State, ks: KeyStore): Promise<RecoveryPlans> {
  const [root, , deviceCa] = state.caCertificates();
  // Counters from the clock in milliseconds, as `smki command build` takes them; the plan counts
  // up from the last it used when that is ahead of the clock.
  return RecoveryPlans.open({
    path: state.path('state', RECOVERY_DB),
    keystore: ks,
    counters: { startCounter: BigInt(Date.now()) },
    deviceTrust: { anchors: [root!], intermediates: [deviceCa!] },
  });
}

/** Run `f` with the plans open (closed after, whatever happens). */
async function withPlans<T>(ctx: Ctx, f: (plans: RecoveryPlans, state: State, ks: KeyStore) => Promise<T>): Promise<T> {
  const state = ctx.state();
  const ks = await state.keystore();
  await refuseUnderAccessControl(ks);
  const plans = await openPlans(state, ks);
  try {
    return await f(plans, state, ks);
  } finally {
    await plans.close();
  }
}

function planJson(p: RecoveryPlan): Record<string, unknown> {
  return { planId: p.planId, route: p.route, state: p.state, organisation: p.organisation, portfolioId: p.portfolioId, originator: p.originator, backend: p.backend, purposes: p.purposes, oldKeys: p.oldKeys, newKeys: p.newKeys, createdAt: p.createdAt, updatedAt: p.updatedAt };
}

function statusJson(s: PlanStatus): Record<string, unknown> {
  return { plan: planJson(s.plan), counts: s.counts, remaining: s.remaining };
}

function statusText(ctx: Ctx, s: PlanStatus): string {
  const c = s.counts;
  return [
    `plan ${s.plan.planId} (${s.plan.route}, portfolio ${s.plan.portfolioId}) is ${s.plan.state}`,
    table(['pending', 'built', 'replaced', 'failed', 'escalated'], [[c.pending, c.built, c.replaced, c.failed, c.escalated]]),
    table(
      ['purpose', 'old key', 'meters still trusting it', 'new key'],
      s.plan.purposes.map((p) => [p, s.plan.oldKeys[p] ?? '-', s.remaining[p] ?? 0, s.plan.newKeys[p] ?? '-']),
    ),
    ...(s.plan.state === 'complete' ? [`${ctx.paint.green('✔')} every meter confirmed${s.plan.route === 'rotation' ? '; the old keys are retired' : ''}`] : []),
    ...(s.plan.state === 'declared' || s.plan.state === 'awaiting-certificates' ? [`${ctx.paint.yellow('!')} its first step did not finish: smki recovery resume ${s.plan.planId}`] : []),
  ].join('\n');
}

/** One response line: hex, or a JSON line `{ device, response }`. */
function parseResponseLine(line: string, n: number): { device?: string; response: Uint8Array } {
  const t = line.trim();
  if (t.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      throw new SmkiError('ERR_CLI_INPUT_INVALID', `line ${n}: not JSON`, { detail: `line ${n}` });
    }
    const o = v as { device?: unknown; response?: unknown };
    if (typeof o !== 'object' || o === null || typeof o.response !== 'string') throw new SmkiError('ERR_CLI_INPUT_INVALID', `line ${n}: a JSON line is { "device": "<EUI-64>", "response": "<hex>" }`, { detail: `line ${n}` });
    return { ...(typeof o.device === 'string' ? { device: o.device } : {}), response: hexOf(o.response, n) };
  }
  return { response: hexOf(t, n) };
}

function hexOf(s: string, n: number): Uint8Array {
  if (!/^(?:[0-9A-Fa-f]{2})+$/.test(s)) throw new SmkiError('ERR_CLI_INPUT_INVALID', `line ${n}: not hex`, { detail: `line ${n}` });
  return fromHex(s);
}

interface RecordOutcome {
  readonly line: number;
  readonly device?: string;
  readonly ok: boolean;
  readonly outcomes?: readonly CellResult[];
  readonly error?: { readonly code: string; readonly message: string };
}

/** `ID:PUBLIC-KEY-FILE:GRANT[,GRANT…]` of `party init --member`; a grant's default organisation is the Recovery party. */
function partyMember(ctx: Ctx, spec: string, party: Eui64): OperatorInfo {
  const first = spec.indexOf(':');
  const last = spec.lastIndexOf(':');
  if (first <= 0 || last <= first + 1 || last === spec.length - 1) {
    throw new SmkiError('ERR_CLI_USAGE', '--member is ID:PUBLIC-KEY-FILE:GRANT[,GRANT…], e.g. officer-a:a.pub.pem:signer@recovery,deviceManager', { detail: spec.slice(0, 120) });
  }
  return { operatorId: spec.slice(0, first), publicKey: readPublicKeyFile(ctx.io, spec.slice(first + 1, last)), grants: spec.slice(last + 1).split(',').map((g) => parseGrant(g, party)) };
}

/** `ID:KEY-FILE` of `build --approver`: another operator of the Recovery party, its key read here. */
function approverOf(ctx: Ctx, spec: string, passphraseFile: string | undefined): Operator {
  const at = spec.indexOf(':');
  if (at <= 0 || at === spec.length - 1) throw new SmkiError('ERR_CLI_USAGE', '--approver is ID:PRIVATE-KEY-FILE (an operator of the Recovery party other than --operator)', { detail: spec.slice(0, 120) });
  return { operatorId: spec.slice(0, at), signer: createKeySigner(readOperatorKey(ctx.io, spec.slice(at + 1), passphraseFile)) };
}

/** Every meter that trusts one of the plan's old keys (the meters its commands go to). */
async function planMeters(ks: KeyStore, plan: RecoveryPlan): Promise<Set<string>> {
  const all = new Set<string>();
  for (const p of plan.purposes) for (const d of (await trustingPage(ks, plan.oldKeys[p]!, 100_000_000)).devices) all.add(d);
  return all;
}

/**
 * A planned (or resumed) plan's remaining first steps, each safe to repeat: the stolen keys'
 * certificates on the organisation CA's CRL (compromise), the new keys certified and attached;
 * then what the operator sees.
 */
async function finishPlan(ctx: Ctx, plans: RecoveryPlans, st: State, ks: KeyStore, planned: PlannedRecovery, warnings: readonly string[]): Promise<{ json: unknown; text: string }> {
  const { plan, csrs } = planned;
  const route = plan.route;
  let crlNumber: string | undefined;
  if (route === 'compromise') {
    for (const p of plan.purposes) {
      const n = await revokeCertificate(st, await ks.key(plan.oldKeys[p]!), 'keyCompromise');
      crlNumber = n ?? crlNumber;
    }
  }
  const certificates: Partial<Record<RecoveryPurpose, Uint8Array>> = {};
  for (const p of plan.purposes) {
    const cert = await issueKeyCertificate(st, await ks.key(plan.newKeys[p]!), csrs[p]!);
    st.saveCertificate(cert);
    certificates[p] = cert.der;
  }
  const attached = await plans.attachCertificates(plan.planId, { certificates, certificationPath: [st.hierarchy().organisationCa.certificate] });
  const meters: Partial<Record<RecoveryPurpose, { count: number; devices: string[]; next?: string }>> = {};
  const status = await plans.status(plan.planId);
  for (const p of plan.purposes) {
    const page = await trustingPage(ks, plan.oldKeys[p]!, LISTED);
    meters[p] = { count: status.remaining[p] ?? 0, devices: page.devices, ...(page.next !== undefined ? { next: page.next } : {}) };
  }
  const all = [...new Set(Object.values(meters).flatMap((m) => m!.devices))].sort();
  return {
    json: { plan: planJson(attached), meters, ...(crlNumber !== undefined ? { crlNumber } : {}), warnings },
    text: [
      ...warnings.map((w) => `${ctx.paint.yellow('warning')} ${w}`),
      `${ctx.paint.green('✔')} ${route} plan ${plan.planId} for portfolio ${plan.portfolioId} (${attached.state})`,
      ...(route === 'compromise' ? [`  the stolen key(s) are revoked now (keyCompromise)${crlNumber !== undefined ? `; on CRL #${crlNumber}` : ''}; the replacements are in backend ${plan.backend ?? '(default)'}`] : []),
      table(
        ['purpose', 'old key', 'new key', 'meters to re-key'],
        plan.purposes.map((p) => [p, plan.oldKeys[p]!, plan.newKeys[p]!, meters[p]!.count]),
      ),
      `meters: ${all.slice(0, SHOWN).join(' ') || '(none)'}${all.length > SHOWN ? ` … and ${all.length - SHOWN} more (--json lists them)` : ''}`,
      `  next: smki recovery build ${plan.planId} --out batch.jsonl`,
    ].join('\n'),
  };
}

export const register: Register = (program, wrap) => {
  const recovery = program
    .command('recovery')
    .description("re-key a portfolio's meters after its keys are rotated or stolen (CS02b): plan, build, record, status");
  example(recovery, 'smki recovery plan --route rotation --portfolio north', 'smki recovery build <planId> --out batch.jsonl', 'smki recovery record <planId> responses.txt', 'smki recovery status <planId>');

  example(
    recovery
      .command('plan')
      .description('plan the re-keying of a portfolio: new keys made and certified by the organisation CA; a compromise revokes the stolen keys at once')
      .addOption(choice('--route <route>', 'rotation (mode 2, signed with the old key) or compromise (mode 8, from the Recovery party)', ['rotation', 'compromise']).makeOptionMandatory())
      .requiredOption('--portfolio <id>', 'the portfolio whose meters are re-keyed')
      .option('--backend <name>', "compromise: the key store's further backend for the replacements (a file backend in keystore-backends/<name>/, made if missing)")
      .option('--recovery-party <eui>', "compromise: the Recovery party's EUI-64 (Remote Party Role 1), the originator of the mode 8 commands (default: the state directory's, from smki recovery party init)")
      .addOption(choice('--purpose <purpose>', 'what to re-key (default both)', ['signing', 'keyAgreement'])),
    'smki recovery plan --route rotation --portfolio north',
    'smki recovery plan --route compromise --portfolio north --backend standby --recovery-party 90B3D51F30000001',
  ).action(
    wrap(async (ctx, _a, o) => {
      const route = String(o.route) as 'rotation' | 'compromise';
      const portfolioId = String(o.portfolio);
      const backend = o.backend === undefined ? undefined : String(o.backend);
      const purposes = o.purpose === undefined ? undefined : [o.purpose as RecoveryPurpose];
      if (route === 'rotation' && backend !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--backend is for a compromise: a rotation makes its new keys where the old ones are', {});
      if (route === 'rotation' && o.recoveryParty !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--recovery-party is for a compromise: a rotation is signed by the supplier', {});
      if (route === 'compromise' && backend === undefined) {
        throw new SmkiError('ERR_CLI_USAGE', 'a compromise makes the replacements in another backend than the stolen keys: give --backend <name>', {});
      }
      const state = ctx.state();
      // A compromise's originator: --recovery-party, else the state directory's Recovery party (smki recovery party init).
      const partyEui = o.recoveryParty ?? (route === 'compromise' ? state.config.recoveryParty?.entityId : undefined);
      if (route === 'compromise' && partyEui === undefined) {
        throw new SmkiError('ERR_CLI_USAGE', 'a compromise is signed by the Recovery party (mode 8): give --recovery-party <eui>, or make the party first (smki recovery party init)', {});
      }
      const recoveryParty = partyEui === undefined ? undefined : eui(String(partyEui), '--recovery-party');
      const warnings: string[] = [];
      if (backend !== undefined) {
        const known = state.furtherBackendNames().includes(backend);
        state.addFurtherBackend(backend);
        warnings.push(
          `backend ${backend} is a file backend in ${state.path('keystore-backends', backend)}${known ? '' : ' (made now)'}: its own key files, but on this host and under the same passphrase as the stolen keys; in production make the replacements in a separate HSM`,
        );
      }
      return withPlans(ctx, async (plans, st, ks) => {
        const organisation = st.config.parties.supplier;
        // An interrupted plan of this portfolio is finished first: its keys may be revoked already,
        // and its replacements made (a second plan would make another set).
        const unfinished = (await plans.plans()).find((x) => x.portfolioId === portfolioId && x.organisation === organisation && (x.state === 'declared' || x.state === 'awaiting-certificates'));
        if (unfinished !== undefined) {
          throw withHint(
            new SmkiError('ERR_RECOVERY_PLAN_STATE', `plan ${unfinished.planId} of portfolio ${portfolioId} was interrupted before its keys were replaced`, { detail: unfinished.planId }),
            `run \`smki recovery resume ${unfinished.planId}\``,
          );
        }
        // The portfolio and its current keys are checked before anything is revoked.
        const portfolio = await ks.portfolio(organisation, portfolioId);
        const wanted = purposes ?? (['signing', 'keyAgreement'] as const);
        for (const p of wanted) if (portfolio.current[p] === undefined) throw new SmkiError('ERR_CLI_NOT_FOUND', `portfolio ${portfolioId} has no current ${p} key to replace`, { detail: p });
        const planned =
          route === 'rotation'
            ? await plans.planRotation({ organisation, portfolioId, ...(purposes ? { purposes } : {}) })
            : // The stolen keys are revoked first (they never sign again), then the replacements are made.
              await plans.planCompromise({ organisation, portfolioId, recoveryParty: recoveryParty!, backend: backend!, ...(purposes ? { purposes } : {}) });
        return finishPlan(ctx, plans, st, ks, planned, warnings);
      });
    }),
  );

  example(
    recovery.command('list').description("every recovery plan in the state directory, with its state (an interrupted one is 'declared' or 'awaiting-certificates': resume it)"),
    'smki recovery list --json',
  ).action(
    wrap(async (ctx) =>
      withPlans(ctx, async (plans) => {
        const all = await plans.plans();
        return {
          json: { plans: all.map(planJson) },
          text:
            all.length === 0
              ? 'no recovery plans'
              : table(
                  ['plan', 'route', 'portfolio', 'state', 'created'],
                  all.map((p) => [p.planId, p.route, p.portfolioId, p.state, p.createdAt]),
                ),
        };
      }),
    ),
  );

  example(
    recovery
      .command('resume')
      .description("finish a plan whose first step was interrupted (a crash, a refusal): the stolen keys revoked and on the CRL, the replacements made once (never twice), certified and attached; each step safe to repeat")
      .argument('<planId>', 'the plan (smki recovery list shows it)'),
    'smki recovery resume 0F3A…',
  ).action(
    wrap(async (ctx, [planId]) =>
      withPlans(ctx, async (plans, st, ks) => {
        const id = String(planId);
        const plan = await plans.plan(id);
        if (plan.state !== 'declared' && plan.state !== 'awaiting-certificates') {
          throw new SmkiError('ERR_RECOVERY_PLAN_STATE', `plan ${id} is ${plan.state}: its first step is done (smki recovery build ${id} goes on)`, { detail: plan.state });
        }
        return finishPlan(ctx, plans, st, ks, await plans.resume(id), []);
      }),
    ),
  );

  example(
    recovery
      .command('build')
      .description('build and sign the next batch: one JSON line per meter { device, counter, command (hex) }; a compromise is signed by the Recovery party under dual control')
      .argument('<planId>', 'the plan')
      .option('--limit <n>', 'at most this many meters (default 100)', intOption('--limit', 1, 1_000_000), 100)
      .option('--out <file>', 'write the JSON lines here (default: stdout)')
      .option('--operator <id>', "compromise: the Recovery party's operator who proposes each batch's signing session (signer and deviceManager of the party)")
      .option('--operator-key <file>', "compromise: that operator's private key (PKCS#8 PEM from smki operator key)")
      .option('--operator-passphrase-file <file>', 'the passphrase of the operator and approver keys (default: $SMKI_OPERATOR_PASSPHRASE)')
      .option('--approver <id:keyfile...>', "compromise: another operator of the Recovery party who approves each batch after checking it (its private key file); never the proposer")
      .option('--recovery-passphrase-file <file>', `compromise: the Recovery party's passphrase (default: $${RECOVERY_PASSPHRASE_ENV}; never the supplier's)`),
    'smki recovery build 0F3A… --limit 5000 --out batch.jsonl',
    `${RECOVERY_PASSPHRASE_ENV}=… smki recovery build 0F3A… --out batch.jsonl --operator officer-a --operator-key a.key.pem --approver officer-b:b.key.pem`,
  ).action(
    wrap(async (ctx, [planId], o) =>
      withPlans(ctx, async (plans, state, ks) => {
        const id = String(planId);
        const before = await plans.status(id);
        const compromise = before.plan.route === 'compromise';
        if (!compromise && (o.operator !== undefined || o.approver !== undefined || o.recoveryPassphraseFile !== undefined)) {
          throw new SmkiError('ERR_CLI_USAGE', `plan ${id} is a rotation, signed by the supplier with the key each meter trusts: --operator, --approver and --recovery-passphrase-file are for a compromise`, {});
        }
        let signing: BuildBatchOptions['recovery'];
        let closeParty: (() => Promise<void>) | undefined;
        const proposals: { proposalId: string; commands: number }[] = [];
        if (compromise) {
          if (state.config.recoveryParty === undefined) {
            throw withHint(
              new SmkiError('ERR_CLI_STATE_INVALID', `plan ${id} is a compromise: its CS02b mode 8 commands are signed by the Recovery party, and this state directory has no Recovery party key store`, { detail: 'recovery party' }),
              'make the Recovery party first, with its own passphrase and operators, signing under dual control: smki recovery party init --member … (then build with --operator, --operator-key and --approver). The stolen keys stay revoked meanwhile',
            );
          }
          const operator = operatorOf(ctx.io, o as OperatorFlags);
          if (operator === undefined) throw new SmkiError('ERR_CLI_USAGE', "a compromise batch is proposed by an operator of the Recovery party: give --operator ID --operator-key FILE, and --approver ID:KEY-FILE for the others' approvals", {});
          const approvers = ((o.approver as string[] | undefined) ?? []).map((a) => approverOf(ctx, a, o.operatorPassphraseFile as string | undefined));
          const party = await openRecoveryParty(state, recoveryPassphrase(ctx.io, o.recoveryPassphraseFile as string | undefined));
          closeParty = () => party.close();
          try {
            if (party.config.entityId !== before.plan.originator) {
              throw new SmkiError('ERR_CLI_STATE_INVALID', `plan ${id}'s commands are from ${before.plan.originator}, not from this state directory's Recovery party ${party.config.entityId}`, { detail: before.plan.originator });
            }
            signing = recoverySigning(party, operator, approvers, (p) => proposals.push({ proposalId: p.proposalId, commands: p.commands.length }));
            // The party's store records which meters hold its key (its recovery cell): the plan's meters, once.
            await assignToRecovery(party, operator, await planMeters(ks, before.plan));
          } catch (e) {
            await party.close();
            throw e;
          }
        }
        try {
          const limit = o.limit as number;
          // The output file is opened before any counter is consumed: a path that cannot be written fails now.
          const file: PendingFile | undefined = o.out === undefined ? undefined : beginWrite(resolve(ctx.io.cwd, String(o.out)), 0o644);
          const lines: string[] = [];
          try {
            const estimate = before.counts.pending > 0 ? before.counts.pending : Math.max(0, ...Object.values(before.remaining).map((n) => n ?? 0));
            const bar = ctx.progress('building commands', Math.min(limit, estimate));
            try {
              for (let left = limit; left > 0; ) {
                let batch;
                try {
                  batch = await plans.buildBatch(id, { limit: Math.min(CHUNK, left), ...(signing !== undefined ? { recovery: signing } : {}) });
                } catch (e) {
                  if (e instanceof SmkiError && e.code === 'ERR_PROPOSAL_QUORUM_NOT_MET') {
                    throw withHint(e, `the Recovery party's store signs a batch only once other operators approved it: give --approver ID:KEY-FILE (an operator other than ${String(o.operator)}); this batch was not signed and its meters stay pending`);
                  }
                  throw e;
                }
                if (batch.length === 0) break;
                for (const c of batch) lines.push(JSON.stringify({ device: c.device, counter: c.counter.toString(), purposes: c.purposes, command: toHex(c.command) }));
                left -= batch.length;
                bar.tick(batch.length);
              }
            } finally {
              bar.stop();
            }
            file?.commit(lines.length > 0 ? `${lines.join('\n')}\n` : '');
          } catch (e) {
            file?.abandon();
            throw e;
          }
          const after = await plans.status(id);
          const summary = { planId: id, built: lines.length, out: o.out === undefined ? '-' : String(o.out), counts: after.counts, ...(compromise ? { signedBy: before.plan.originator, proposals } : {}) };
          const how = compromise ? `signed by the Recovery party ${before.plan.originator} (${proposals.length} approved session(s): ${proposals.map((p) => p.proposalId).join(', ')})` : '';
          if (file === undefined) {
            for (const l of lines) ctx.line(l);
            if (!ctx.json) ctx.io.stderr.write(`${lines.length} command(s) built for plan ${id}${how ? `, ${how}` : ''}\n`);
            return {};
          }
          return { json: summary, text: `${ctx.paint.green('✔')} ${lines.length} command(s) built for plan ${id} → ${String(o.out)} (pending ${after.counts.pending}, awaiting answers ${after.counts.built})${how ? `\n  ${how}` : ''}` };
        } finally {
          await closeParty?.();
        }
      }),
    ),
  );

  const party = recovery.command('party').description("the Recovery party (Remote Party Role 1): its own key store, passphrase and operators; it signs mode 8 under dual control");
  example(party, 'smki recovery party init --member officer-a:a.pub:signer@recovery,deviceManager --member officer-b:b.pub:signer@recovery --member admin:admin.pub:administrator@*', 'smki recovery party show');

  example(
    party
      .command('init')
      .description("make the Recovery party's key store (its own directory and passphrase, never the supplier's), its DS key with a role 1 certificate from the test organisation CA, its operators, and a policy putting every signing session under dual control")
      .option('--entity <eui>', "the Recovery party's EUI-64", DEFAULT_RECOVERY_PARTY)
      .option('--party-dir <dir>', `its directory (new or empty; default: <state>/recovery-party)`)
      .requiredOption('--member <spec...>', `an operator of the party: ID:PUBLIC-KEY-FILE:GRANT[,GRANT…] (grants as for smki operator init; a scope without an EUI-64 is the party's: signer@${RECOVERY_PORTFOLIO}, deviceManager, administrator@*)`)
      .option('--approvals <n>', "approvals by other operators each signing session needs (default 1)", intOption('--approvals', 1, 5), 1)
      .option('--recovery-passphrase-file <file>', `its passphrase (default: $${RECOVERY_PASSPHRASE_ENV}); refused if it is the supplier's`),
    `${RECOVERY_PASSPHRASE_ENV}=… smki recovery party init --member officer-a:a.pub:signer@recovery,deviceManager --member officer-b:b.pub:signer@recovery --member admin:admin.pub:administrator@*`,
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const entityId = eui(String(o.entity), '--entity');
      const operators = (o.member as string[]).map((m) => partyMember(ctx, m, entityId));
      const pass = recoveryPassphrase(ctx.io, o.recoveryPassphraseFile as string | undefined);
      const made = await createRecoveryParty(state, { ...(o.partyDir !== undefined ? { dir: String(o.partyDir) } : {}), entityId, passphrase: pass, operators, approvals: o.approvals as number });
      const c = made.certificate;
      return {
        json: { dir: made.dir, party: made.config, certificate: { serialNumber: c.serialNumber, subjectKeyId: c.subjectKeyId, role: c.role, notAfter: c.notAfter }, operators: operators.map((x) => ({ operatorId: x.operatorId, grants: x.grants })), policy: made.policy, supplierKeystore: state.path('keystore') },
        text: [
          `${ctx.paint.green('✔')} Recovery party ${entityId}: its own key store in ${made.dir} (its own passphrase; the supplier's keys are in ${state.path('keystore')})`,
          `  DS key ${made.config.keyId}, certificate ${c.serialNumber} (role 1, SKI ${c.subjectKeyId}) → ${made.dir}/recovery-ds.pem`,
          table(['operator', 'grants'], operators.map((x) => [x.operatorId, x.grants.map(grantText).join(' ')])),
          `  every signing session needs ${o.approvals as number} approval(s) by operators other than the proposer`,
          `  next: smki recovery plan --route compromise --portfolio <id> --backend <name>; smki recovery build <planId> --operator ID --operator-key FILE --approver ID:KEY-FILE`,
        ].join('\n'),
      };
    }),
  );

  example(
    party
      .command('show')
      .description("the Recovery party: its directory, key store, DS key and certificate, operators and policy (opened with its own passphrase)")
      .option('--recovery-passphrase-file <file>', `its passphrase (default: $${RECOVERY_PASSPHRASE_ENV})`),
    'smki recovery party show --json',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      if (partyDir(state) === undefined) {
        throw withHint(new SmkiError('ERR_CLI_STATE_INVALID', 'this state directory has no Recovery party key store', { detail: 'recovery party' }), 'make it: smki recovery party init --member …');
      }
      const p = await openRecoveryParty(state, recoveryPassphrase(ctx.io, o.recoveryPassphraseFile as string | undefined));
      try {
        const key = await p.store.key(p.config.keyId);
        const operators = await p.store.operators();
        const meters = (await p.store.exposureReport(p.config.entityId)).find((e) => e.keyId === p.config.keyId)?.deviceCount ?? 0;
        const c = p.certificate;
        return {
          json: {
            dir: p.dir,
            party: p.config,
            key: { keyId: key.keyId, state: key.state, backend: key.backend },
            certificate: { serialNumber: c.serialNumber, subjectKeyId: c.subjectKeyId, role: c.role, entityId: c.entityId, notBefore: c.notBefore, notAfter: c.notAfter },
            meters,
            accessControlled: await p.store.accessControlled(),
            operators: operators.map((x) => ({ operatorId: x.operatorId, grants: x.grants, removed: x.removed })),
            supplierKeystore: state.path('keystore'),
          },
          text: [
            `Recovery party ${p.config.entityId} (Remote Party Role 1)`,
            `  key store ${p.config.storeId} in ${p.dir}/keystore (its own passphrase; the supplier's is ${state.path('keystore')})`,
            `  DS key ${key.keyId} (${key.state}), certificate ${c.serialNumber}, SKI ${c.subjectKeyId}, valid to ${c.notAfter.toISOString()}`,
            `  meters recorded as holding it in their recovery cell: ${meters}`,
            table(['operator', 'grants', 'state'], operators.map((x) => [x.operatorId, x.grants.map(grantText).join(' '), x.removed ? 'removed' : 'active'])),
            `  every signing session needs ${p.config.approvals} approval(s) by operators other than the proposer (the policy of its ceremony)`,
          ].join('\n'),
        };
      } finally {
        await p.close();
      }
    }),
  );

  example(recovery.command('status').description("a plan's meters per state, and how many meters still trust each old key").argument('<planId>', 'the plan'), 'smki recovery status 0F3A… --json').action(
    wrap(async (ctx, [planId]) =>
      withPlans(ctx, async (plans) => {
        const s = await plans.status(String(planId));
        return { json: statusJson(s), text: statusText(ctx, s) };
      }),
    ),
  );

  example(
    recovery
      .command('record')
      .description("record the meters' responses (one hex per line, or JSON lines { device, response }), each verified with the meter's DS certificate from the registry")
      .argument('<planId>', 'the plan')
      .argument('<responses>', 'the responses file (- for stdin)'),
    'smki recovery record 0F3A… responses.txt --json',
  ).action(
    wrap(async (ctx, [planId, file]) =>
      withPlans(ctx, async (plans, state, ks) => {
        const id = String(planId);
        const plan = await plans.plan(id);
        const text = (await readInput(ctx.io, String(file))).toString('utf8');
        const lines = text.split(/\r?\n/).map((l, i) => [i + 1, l] as const).filter(([, l]) => l.trim() !== '');
        const { registry } = await state.stores();
        const results: RecordOutcome[] = [];
        const bar = ctx.progress('recording responses', lines.length);
        try {
          for (const [n, line] of lines) {
            let device: string | undefined;
            try {
              const r = parseResponseLine(line, n);
              device = parseMessage(r.response).originator;
              if (r.device !== undefined && r.device.toUpperCase().replace(/[-\s]/g, '') !== device) {
                throw new SmkiError('ERR_CLI_INPUT_INVALID', `line ${n}: the response is from ${device}, not ${r.device}`, { detail: `line ${n}` });
              }
              const rec = await registry.device(eui(device, 'the responding meter'));
              if (rec?.digitalSignatureCertificate === undefined) {
                throw new SmkiError('ERR_CLI_NOT_FOUND', `${device} has no digital-signature certificate in the device registry: add it (smki device import with ds_certificate)`, { detail: device });
              }
              const recorded = await plans.recordResponse(id, r.response, { deviceCertificate: rec.digitalSignatureCertificate });
              // The DCC's registry follows, as after `smki device updated`: the supplier DS cell now names the new key's certificate.
              if (recorded.outcomes.some((x) => x.purpose === 'signing' && x.state === 'replaced')) {
                const pem = (await ks.key(plan.newKeys.signing!)).certificate;
                const ski = pem === undefined ? undefined : parseCertificate(pem).subjectKeyId;
                if (ski !== undefined) await registry.put([{ ...rec, cells: rec.cells.map((c) => (c.role === 2 && c.keyUsage === 'digitalSignature' ? { ...c, ski } : c)) }]);
              }
              results.push({ line: n, device: recorded.device, ok: true, outcomes: recorded.outcomes });
            } catch (e) {
              if (!(e instanceof SmkiError)) throw e;
              results.push({ line: n, ...(device !== undefined ? { device } : {}), ok: false, error: { code: e.code, message: e.message } });
            }
            bar.tick();
          }
        } finally {
          bar.stop();
        }
        const refused = results.filter((r) => !r.ok).length;
        const after = await plans.status(id);
        return {
          json: { planId: id, recorded: results.length - refused, refused, planState: after.plan.state, results },
          text: [
            ...results.map((r) =>
              r.ok
                ? `${ctx.paint.green('✔')} line ${r.line}: ${r.device!} ${r.outcomes!.map((x) => `${x.purpose} ${x.state}${x.state === 'failed' ? ` (status ${x.status})` : ''}`).join(', ')}`
                : `${ctx.paint.red('✘')} line ${r.line}: ${r.device ?? '-'} refused, nothing changed: ${r.error!.code}: ${r.error!.message}`,
            ),
            `${results.length - refused} recorded, ${refused} refused; plan ${id} is ${after.plan.state}`,
          ].join('\n'),
          exit: refused > 0 ? 'REJECTED' : 'OK',
        };
      }),
    ),
  );
};
