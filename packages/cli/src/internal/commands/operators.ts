/**
 * `smki operator …`, `smki approve`, `smki proposal show` and `smki request submit`: the key
 * store's access control at the command line. Operators hold their own ECDSA P-256 keys (`operator
 * key`); the initialisation ceremony (`operator init`) names the first ones and the dual-control
 * policy; from then on every change of the key store is a request signed by an operator, and an
 * operation the policy puts under dual control is proposed by one operator (`--propose` on the
 * command that makes the change), approved by others (`smki approve`), and executed (the same
 * command with `--proposal ID`).
 * @module
 * @internal
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { SmkiError } from '@smki/core';
import {
  createApproval,
  DEFAULT_ACCESS_POLICY,
  operationHash,
  parseAccessPolicy,
  policyHash,
  type AccessPolicy,
  type KeyInfo,
  type OperatorGrant,
  type OperatorInfo,
  type Proposal,
} from '@smki/keystore';
import { example, intOption, type Ctx, type Register } from '../program.js';
import { table, toJson } from '../io.js';
import { writeFileAtomic } from '../files.js';
import { operatorPassphrase } from '../secrets.js';
import {
  Actor,
  deferredOutcome,
  grantText,
  operatorOf,
  operatorOptions,
  parseGrant,
  rawPublicKey,
  readPublicKeyFile,
  readRequestFile,
  type OperatorFlags,
} from '../access.js';
import type { State } from '../state.js';
import { revokeCertificate } from './keys.js';
import { parseCertificate } from '@smki/pki';

/** Most bytes of a policy file. */
const MAX_POLICY_BYTES = 64 * 1024;

/** Read an access policy (JSON) from a file. */
function readPolicy(ctx: Ctx, file: string): AccessPolicy {
  let value: unknown;
  try {
    const buf = readFileSync(resolve(ctx.io.cwd, file));
    if (buf.length > MAX_POLICY_BYTES) throw new Error('too large');
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', `the policy file cannot be read as JSON (at most ${MAX_POLICY_BYTES} bytes)`, { detail: file });
  }
  return parseAccessPolicy(value);
}

/** `ID:PUBLIC-KEY-FILE:GRANT[,GRANT…]` of `operator init --member`. */
function memberOf(ctx: Ctx, spec: string, supplier: State['config']['parties']['supplier']): OperatorInfo {
  const first = spec.indexOf(':');
  const last = spec.lastIndexOf(':');
  if (first <= 0 || last <= first + 1 || last === spec.length - 1) {
    throw new SmkiError('ERR_CLI_USAGE', '--member is ID:PUBLIC-KEY-FILE:GRANT[,GRANT…], e.g. admin:admin.pub.pem:administrator@*', { detail: spec.slice(0, 120) });
  }
  return {
    operatorId: spec.slice(0, first),
    publicKey: readPublicKeyFile(ctx.io, spec.slice(first + 1, last)),
    grants: spec
      .slice(last + 1)
      .split(',')
      .map((g) => parseGrant(g, supplier)),
  };
}

function policyRows(p: AccessPolicy): (string | number)[][] {
  return p.rules.map((r) => [r.operation, r.approvals, r.minDevices ?? '-']);
}

function operationText(op: Proposal['operation']): string {
  return Object.entries(op)
    .filter(([k]) => k !== 'op')
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? grantText(x as OperatorGrant) : String(x))).join(',') : String(v)}`)
    .join(' ');
}

/** The direct path of a change only an administrator's signed request makes: refused, with what to do. */
function administratorsOnly(ks: Awaited<ReturnType<State['keystore']>>, what: string): () => Promise<never> {
  return async () => {
    if (!(await ks.accessControlled())) throw new SmkiError('ERR_CLI_USAGE', `the key store has no operators yet: hold the ceremony first (smki operator init), then ${what} by a signed request`, {});
    throw new SmkiError('ERR_OPERATOR_REQUIRED', `${what} is a signed request of an administrator: give --operator ID --operator-key FILE`, {});
  };
}

/** A result of the key store, for JSON and one line of text (certificates left out). */
function resultJson(v: unknown): unknown {
  if (v === undefined || v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  const { certificate: _c, signFor: _s, ...rest } = v as Record<string, unknown>;
  return rest;
}

export const register: Register = (program, wrap) => {
  const operator = program.command('operator').description("the key store's operators: their keys, the initialisation ceremony, adding and removing them, the policy");
  example(operator, 'smki operator key admin.key.pem', 'smki operator init --member admin:admin.key.pem.pub:administrator@*', 'smki operator list');

  example(
    operator
      .command('key')
      .description("generate an operator's ECDSA P-256 key pair: the private key as PKCS#8 PEM (mode 0600, encrypted with $SMKI_OPERATOR_PASSPHRASE or --operator-passphrase-file), the public key as SPKI PEM")
      .argument('<file>', 'the private key file to write (never overwritten)')
      .option('--public-out <file>', 'the public key file (default: <file>.pub)')
      .option('--operator-passphrase-file <file>', "read the key's passphrase from this file (default: $SMKI_OPERATOR_PASSPHRASE)")
      .option('--plain', 'write the private key unencrypted (mode 0600), when no passphrase is given'),
    'SMKI_OPERATOR_PASSPHRASE=… smki operator key alice.key.pem',
  ).action(
    wrap(async (ctx, [file], o) => {
      const path = resolve(ctx.io.cwd, String(file));
      const pubFile = o.publicOut !== undefined ? String(o.publicOut) : `${String(file)}.pub`;
      const pubPath = resolve(ctx.io.cwd, pubFile);
      for (const p of [path, pubPath]) if (existsSync(p)) throw new SmkiError('ERR_CLI_INPUT_INVALID', `${p} exists: an operator key file is never overwritten`, { detail: p });
      const pass = operatorPassphrase(ctx.io, o.operatorPassphraseFile as string | undefined);
      if (pass === undefined && o.plain !== true) {
        throw new SmkiError('ERR_CLI_SECRET_MISSING', 'no passphrase for the operator key: set SMKI_OPERATOR_PASSPHRASE, give --operator-passphrase-file, or --plain for an unencrypted key', {});
      }
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = pass === undefined ? privateKey.export({ type: 'pkcs8', format: 'pem' }) : privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: pass });
      writeFileAtomic(path, pem as string, 0o600);
      writeFileAtomic(pubPath, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
      const hex = Buffer.from(rawPublicKey(publicKey)).toString('hex').toUpperCase();
      return {
        json: { privateKey: String(file), publicKey: pubFile, publicKeyHex: hex, encrypted: pass !== undefined },
        text: `${ctx.paint.green('✔')} operator key → ${String(file)} (${pass !== undefined ? 'encrypted' : ctx.paint.red('unencrypted')}, mode 0600); public key → ${pubFile}\n  ${hex}`,
      };
    }),
  );

  example(
    operator
      .command('init')
      .description('the initialisation ceremony: the first operators (one an administrator of the whole store) and the dual-control policy, once; from then on every change of the key store is a signed operator request')
      .requiredOption('--member <spec...>', 'an operator: ID:PUBLIC-KEY-FILE:GRANT[,GRANT…]; a grant is ROLE[@SCOPE] (ROLE administrator, custodian, deviceManager, signer, auditor; SCOPE * for the whole store, a portfolio of the supplier, an EUI-64, or EUI-64/portfolio; none: every portfolio of the supplier)')
      .option('--policy <file>', 'the access policy (JSON: {"v":1,"rules":[{"operation":"key.generate","approvals":2}, …]}; default: one approval for operators, the policy, key generation and revocation, and moves of 1000 meters or more)'),
    'smki operator init --member admin:admin.pub:administrator@* --member admin2:admin2.pub:administrator@* --member alice:alice.pub:custodian@north',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const operators = (o.member as string[]).map((m) => memberOf(ctx, m, supplier));
      const policy = o.policy !== undefined ? readPolicy(ctx, String(o.policy)) : DEFAULT_ACCESS_POLICY;
      await ks.initialiseAccess({ operators, policy });
      return {
        json: { accessControlled: true, operators: operators.map((x) => ({ operatorId: x.operatorId, publicKey: x.publicKey, grants: x.grants })), policy, policySha256: policyHash(policy) },
        text: [
          `${ctx.paint.green('✔')} the key store is under access control: ${operators.length} operator(s); every change is now a signed request (--operator ID --operator-key FILE)`,
          table(['operator', 'grants'], operators.map((x) => [x.operatorId, x.grants.map(grantText).join(' ')])),
          '',
          'dual control (approvals by other operators):',
          policy.rules.length === 0 ? '  none' : table(['operation', 'approvals', 'from devices'], policyRows(policy)),
        ].join('\n'),
      };
    }),
  );

  example(
    operatorOptions(
      operator
        .command('add')
        .description('add an operator (a signed request of an administrator; under dual control by default)')
        .argument('<id>', 'the new operator id (1 to 64 of A-Z a-z 0-9 . _ @ -)')
        .requiredOption('--public-key <file>', 'its public key (SPKI PEM from smki operator key, or the hex of the point)')
        .requiredOption('--grant <grant...>', 'ROLE[@SCOPE], as for smki operator init'),
    ),
    'smki operator add bob --public-key bob.key.pem.pub --grant custodian@north --operator admin --operator-key admin.key.pem --propose',
  ).action(
    wrap(async (ctx, [id], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const publicKey = Buffer.from(readPublicKeyFile(ctx.io, String(o.publicKey))).toString('hex').toUpperCase();
      const grants = (o.grant as string[]).map((g) => parseGrant(g, supplier));
      const r = await new Actor(ctx.io, ks, o as OperatorFlags).main({ op: 'operator.add', operatorId: String(id), publicKey, grants }, {}, administratorsOnly(ks, 'add an operator'));
      const d = deferredOutcome(ctx, r, `operator ${String(id)}`);
      if (d) return d;
      return { json: { operatorId: id, grants }, text: `${ctx.paint.green('✔')} operator ${String(id)} added: ${grants.map(grantText).join(' ')}` };
    }),
  );

  example(
    operatorOptions(operator.command('remove').description('remove an operator (a signed request of an administrator; its sessions end)').argument('<id>', 'the operator id')),
    'smki operator remove bob --operator admin --operator-key admin.key.pem --propose',
  ).action(
    wrap(async (ctx, [id], o) => {
      const ks = await ctx.state().keystore();
      const r = await new Actor(ctx.io, ks, o as OperatorFlags).main({ op: 'operator.remove', operatorId: String(id) }, {}, administratorsOnly(ks, 'remove an operator'));
      const d = deferredOutcome(ctx, r, `the removal of operator ${String(id)}`);
      if (d) return d;
      return { json: { operatorId: id, removed: true }, text: `${ctx.paint.green('✔')} operator ${String(id)} removed` };
    }),
  );

  example(operator.command('list').description('the operators: grants, whether removed, the last counter the store accepted from each'), 'smki operator list --json').action(
    wrap(async (ctx) => {
      const ks = await ctx.state().keystore();
      const controlled = await ks.accessControlled();
      const list = await ks.operators();
      return {
        json: { accessControlled: controlled, operators: list.map((x) => ({ operatorId: x.operatorId, publicKey: x.publicKey, grants: x.grants, removed: x.removed, lastCounter: x.lastCounter })) },
        text: !controlled
          ? 'the key store is not under access control (smki operator init holds the ceremony)'
          : table(['operator', 'grants', 'state', 'last counter'], list.map((x) => [x.operatorId, x.grants.map(grantText).join(' '), x.removed ? 'removed' : 'active', x.lastCounter])),
      };
    }),
  );

  example(
    operatorOptions(operator.command('policy').description('replace the dual-control policy (a signed request of an administrator; under dual control by default)').argument('<file>', 'the policy (JSON)')),
    'smki operator policy policy.json --operator admin --operator-key admin.key.pem --propose',
  ).action(
    wrap(async (ctx, [file], o) => {
      const ks = await ctx.state().keystore();
      const policy = readPolicy(ctx, String(file));
      const r = await new Actor(ctx.io, ks, o as OperatorFlags).main({ op: 'policy.set', policySha256: policyHash(policy) }, { policy }, administratorsOnly(ks, 'set the policy'));
      const d = deferredOutcome(ctx, r, 'the access policy');
      if (d) return d;
      return { json: { policy, policySha256: policyHash(policy) }, text: `${ctx.paint.green('✔')} access policy ${policyHash(policy).slice(0, 16)}… set\n${policy.rules.length === 0 ? '  no approvals required' : table(['operation', 'approvals', 'from devices'], policyRows(policy))}` };
    }),
  );

  example(
    operatorOptions(
      program
        .command('approve')
        .description("approve an open proposal as an operator (a signed approval of the proposal's exact operation; the proposer's never counts)")
        .argument('<proposal-id>', 'the proposal (32 hex digits)')
        .option('--expires-in-hours <n>', 'the approval expires after this many hours (default: when the proposal does)', intOption('--expires-in-hours', 1, 30 * 24)),
      { dual: false },
    ),
    'smki approve 5f0c…e1 --operator bob --operator-key bob.key.pem',
  ).action(
    wrap(async (ctx, [id], o) => {
      const ks = await ctx.state().keystore();
      const op = operatorOf(ctx.io, o as OperatorFlags);
      if (op === undefined) throw new SmkiError('ERR_CLI_USAGE', 'an approval is signed by its operator: give --operator ID --operator-key FILE', {});
      const proposal = await ks.proposal(String(id));
      // What is signed is the hash of the operation shown here, computed here.
      const hash = operationHash(proposal.operation);
      if (hash !== proposal.operationHash) throw new SmkiError('ERR_OPERATION_MISMATCH', "the proposal's operation hash is not the hash of its operation", { detail: proposal.proposalId });
      const expires = Date.parse(proposal.expiresAt);
      const expiresAt = new Date(o.expiresInHours !== undefined ? Math.min(expires, Date.now() + (o.expiresInHours as number) * 3600_000) : expires);
      const approval = await createApproval(op.signer, { storeId: ks.storeId, proposalId: proposal.proposalId, operationHash: hash, approverId: op.operatorId, expiresAt });
      const standing = await ks.approve(approval);
      return {
        json: { proposalId: proposal.proposalId, operation: proposal.operation, approverId: op.operatorId, ...standing },
        text: [
          `${ctx.paint.green('✔')} ${op.operatorId} approved ${proposal.proposalId}: ${proposal.operation.op} ${operationText(proposal.operation)}`,
          `  approvals ${standing.approvers.length} of ${standing.required} (${standing.approvers.join(', ')})${standing.met ? `: ready, run the command with --proposal ${proposal.proposalId}` : ''}`,
        ].join('\n'),
      };
    }),
  );

  const proposal = program.command('proposal').description('proposals of operations under dual control');
  example(proposal, 'smki proposal show 5f0c…e1');
  example(proposal.command('show').description('a proposal: its exact operation, proposer, expiry and state').argument('<proposal-id>', 'the proposal id'), 'smki proposal show 5f0c…e1 --json').action(
    wrap(async (ctx, [id]) => {
      const ks = await ctx.state().keystore();
      const p = await ks.proposal(String(id));
      return {
        json: p,
        text: [
          `proposal ${p.proposalId} (${p.state})`,
          `  operation: ${p.operation.op} ${operationText(p.operation)}`,
          `  operation hash: ${p.operationHash}`,
          `  proposed by ${p.proposer} at ${p.createdAt}; expires ${p.expiresAt}`,
        ].join('\n'),
      };
    }),
  );

  const request = program.command('request').description('signed operator requests kept in files (--request-out) and run later');
  example(request, 'smki request submit revoke.json');
  example(
    request
      .command('submit')
      .description('run a signed request file (made with --request-out): its counter is accepted once, so a file run twice is refused (ERR_OPERATOR_REPLAYED)')
      .argument('<file>', 'the request file')
      .option('--propose', 'open a proposal of it (dual control) instead of executing it')
      .option('--proposal <id>', 'execute it as the approved proposal')
      .option('--ttl-hours <n>', 'with --propose: the proposal expires after this many hours (default 24)', intOption('--ttl-hours', 1, 30 * 24)),
    'smki request submit revoke.json',
  ).action(
    wrap(async (ctx, [file], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const doc = readRequestFile(ctx.io, String(file));
      const propose = o.propose === true || (doc.propose && o.proposal === undefined);
      const proposalId = (o.proposal as string | undefined) ?? doc.proposalId;
      const op = (doc.request as { operation?: { op?: unknown; keyId?: unknown; reason?: unknown } } | undefined)?.operation;
      if (propose) {
        const p = await ks.propose(doc.request, { payload: doc.payload, ttlMs: ((o.ttlHours as number | undefined) ?? 24) * 3600_000 });
        return deferredOutcome(ctx, { kind: 'proposed', proposal: p }, String(file))!;
      }
      const result = await ks.execute(doc.request, { ...doc.payload, ...(proposalId !== undefined ? { proposalId } : {}) });
      // What the command that wrote the request does after the change, done here too.
      let crlNumber: string | undefined;
      if (op?.op === 'key.attach' && doc.payload.certificate !== undefined) state.saveCertificate(parseCertificate(doc.payload.certificate as Uint8Array));
      if (op?.op === 'key.revoke' && typeof op.keyId === 'string') crlNumber = await revokeCertificate(state, (await ks.key(op.keyId)) as KeyInfo, typeof op.reason === 'string' ? op.reason : 'keyCompromise');
      return {
        json: { executed: true, operation: op, result: resultJson(result), ...(crlNumber !== undefined ? { crlNumber } : {}) },
        text: `${ctx.paint.green('✔')} ${String(op?.op ?? 'request')} executed${result !== undefined ? `: ${toJson(resultJson(result))}` : ''}${crlNumber !== undefined ? `; CRL #${crlNumber}` : ''}`,
      };
    }),
  );
};
