/**
 * Access control at the command line: the operator a command acts as (`--operator ID
 * --operator-key FILE`), its signed requests to the key store (counter: the operator's last
 * accepted one plus one, read from the store), dual control (`--propose` opens a proposal,
 * `--proposal ID` executes an approved one), signed requests written to a file instead of run
 * (`--request-out FILE`, run later by `smki request submit`), and signing sessions.
 *
 * A store that is not under access control takes every change directly, as before; once it is
 * (`smki operator init`), the store refuses a change that carries no signed request
 * (`ERR_OPERATOR_REQUIRED`), and nothing here works around that.
 * @module
 * @internal
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createKeySigner, parseEui64, SmkiError, type Eui64, type Signer } from '@smki/core';
import {
  createOperatorRequest,
  OPERATOR_ROLES,
  type ExecutePayload,
  type KeyStore,
  type Operation,
  type OperatorGrant,
  type OperatorRequest,
  type OperatorRole,
  type Proposal,
  type SigningSession,
  type UseContext,
  type XmlSigner,
} from '@smki/keystore';
import { intOption, type Ctx, type Outcome } from './program.js';
import { writeFileAtomic } from './files.js';
import { operatorPassphrase } from './secrets.js';
import type { CliIo } from './io.js';

/** The format tag of a signed request file (`--request-out`, `smki request submit`). */
export const REQUEST_FILE_FORMAT = 'smki-operator-request/1';

/** Most bytes of a key or request file read here. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** The options of a command that acts as an operator. */
export interface OperatorFlags {
  readonly operator?: string;
  readonly operatorKey?: string;
  readonly operatorPassphraseFile?: string;
  readonly propose?: boolean;
  readonly proposal?: string;
  readonly requestOut?: string;
  readonly ttlHours?: number;
}

/** An operator this process acts as: its id and its signer (the private key from its file). */
export interface Operator {
  readonly operatorId: string;
  readonly signer: Signer;
}

/**
 * Add the operator options to a state-changing command: `--operator`, `--operator-key`,
 * `--operator-passphrase-file`, and (for a change the policy may put under dual control)
 * `--propose`, `--proposal`, `--ttl-hours`, `--request-out`.
 */
export function operatorOptions(cmd: Command, options: { readonly dual?: boolean } = {}): Command {
  cmd
    .option('--operator <id>', 'act as this operator (required once the key store is under access control: smki operator init)')
    .option('--operator-key <file>', "the operator's private key (PKCS#8 PEM from smki operator key; passphrase from $SMKI_OPERATOR_PASSPHRASE or --operator-passphrase-file)")
    .option('--operator-passphrase-file <file>', "read the operator key's passphrase from this file");
  if (options.dual !== false) {
    cmd
      .option('--propose', 'open a proposal of this change instead of running it (dual control: others approve with smki approve)')
      .option('--proposal <id>', 'run this change as the execution of an approved proposal')
      .option('--ttl-hours <n>', 'with --propose: the proposal expires after this many hours (default 24)', intOption('--ttl-hours', 1, 30 * 24))
      .option('--request-out <file>', 'sign the request and write it to this file instead of running it (run it with smki request submit)');
  }
  return cmd;
}

/** Read a private key file (PKCS#8 PEM, encrypted or not): an ECDSA P-256 key, or a refusal. */
export function readOperatorKey(io: CliIo, file: string, passphraseFile?: string): KeyObject {
  const path = resolve(io.cwd, file);
  let pem: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_FILE_BYTES) throw new Error('too large');
    pem = buf.toString('utf8');
  } catch {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the operator key file cannot be read', { detail: file });
  }
  const encrypted = pem.includes('ENCRYPTED PRIVATE KEY');
  const pass = encrypted ? operatorPassphrase(io, passphraseFile) : undefined;
  if (encrypted && pass === undefined) {
    throw new SmkiError('ERR_CLI_SECRET_MISSING', 'the operator key is encrypted: set SMKI_OPERATOR_PASSPHRASE or give --operator-passphrase-file', { detail: file });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pass === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase: pass });
  } catch {
    throw new SmkiError(encrypted ? 'ERR_CLI_SECRET_MISSING' : 'ERR_CLI_INPUT_INVALID', encrypted ? 'the passphrase does not open the operator key' : 'the operator key file is not a PKCS#8 PEM private key', { detail: file });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'an operator key is an ECDSA P-256 key', { detail: file });
  }
  return key;
}

/** The 65-byte uncompressed point of a P-256 public key. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new SmkiError('ERR_CLI_INPUT_INVALID', 'not a P-256 key', {});
  return new Uint8Array(Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]));
}

/** Read an operator's public key file: SPKI PEM (as `smki operator key` writes it), or 130 hex digits of the point. */
export function readPublicKeyFile(io: CliIo, file: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, file), 'utf8').trim();
  } catch {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the public key file cannot be read', { detail: file });
  }
  if (/^(04)?[0-9a-fA-F]{128}$/.test(text)) {
    const hex = text.length === 128 ? `04${text}` : text;
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  try {
    const key = createPublicKey({ key: text, format: 'pem' });
    if (key.asymmetricKeyType !== 'ec') throw new Error('not EC');
    return rawPublicKey(key);
  } catch {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the public key file is neither an SPKI PEM P-256 key nor 130 hex digits of its point', { detail: file });
  }
}

/**
 * A grant from its command-line spelling `ROLE[@SCOPE]`: no scope is every portfolio of the
 * supplier; `*` the whole store; `EUI64` an organisation; `EUI64/PORTFOLIO` one portfolio of it;
 * anything else one portfolio of the supplier.
 */
export function parseGrant(text: string, supplier: Eui64): OperatorGrant {
  const at = text.indexOf('@');
  const role = (at < 0 ? text : text.slice(0, at)).trim();
  if (!(OPERATOR_ROLES as readonly string[]).includes(role)) {
    throw new SmkiError('ERR_CLI_USAGE', `a grant is ROLE[@SCOPE] with ROLE one of ${OPERATOR_ROLES.join(', ')}`, { detail: text.slice(0, 80) });
  }
  const r = role as OperatorRole;
  if (at < 0) return { role: r, organisation: supplier };
  const scope = text.slice(at + 1).trim();
  if (scope === '*') return { role: r, organisation: '*' };
  const slash = scope.indexOf('/');
  const org = (s: string): Eui64 => {
    try {
      return parseEui64(s);
    } catch {
      throw new SmkiError('ERR_CLI_USAGE', `${s} in grant ${text} is not an EUI-64`, { detail: text.slice(0, 80) });
    }
  };
  if (slash >= 0) return { role: r, organisation: org(scope.slice(0, slash)), portfolioId: scope.slice(slash + 1) };
  if (/^[0-9A-Fa-f]{16}$/.test(scope)) return { role: r, organisation: org(scope) };
  if (scope === '') throw new SmkiError('ERR_CLI_USAGE', `grant ${text} has an empty scope`, { detail: text.slice(0, 80) });
  return { role: r, organisation: supplier, portfolioId: scope };
}

/** A grant in its command-line spelling. */
export function grantText(g: OperatorGrant): string {
  return `${g.role}@${g.organisation}${g.portfolioId !== undefined ? `/${g.portfolioId}` : ''}`;
}

/** The operator a command acts as, or none; both options or neither. */
export function operatorOf(io: CliIo, o: OperatorFlags): Operator | undefined {
  const id = o.operator;
  const file = o.operatorKey;
  if (id === undefined && file === undefined) {
    if (o.propose === true || o.proposal !== undefined || o.requestOut !== undefined) {
      throw new SmkiError('ERR_CLI_USAGE', '--propose, --proposal and --request-out act as an operator: give --operator ID --operator-key FILE', {});
    }
    return undefined;
  }
  if (id === undefined || file === undefined) throw new SmkiError('ERR_CLI_USAGE', 'give both --operator ID and --operator-key FILE', {});
  if (o.propose === true && o.proposal !== undefined) throw new SmkiError('ERR_CLI_USAGE', 'give --propose (open a proposal) or --proposal ID (execute one), not both', {});
  return { operatorId: String(id), signer: createKeySigner(readOperatorKey(io, String(file), o.operatorPassphraseFile)) };
}

/** A signed request of `operator` for `operation`: its counter one above the last the store accepted from it. */
export async function signRequest(ks: KeyStore, operator: Operator, operation: Operation): Promise<OperatorRequest> {
  const info = await ks.operator(operator.operatorId);
  if (info.removed) throw new SmkiError('ERR_OPERATOR_UNKNOWN', `operator ${operator.operatorId} was removed`, { detail: operator.operatorId });
  return createOperatorRequest(operator.signer, { storeId: ks.storeId, operatorId: operator.operatorId, counter: info.lastCounter + 1n, issuedAt: new Date(), operation });
}

/** SHA-256 of bytes, upper-case hex (a certificate's digest in `key.attach`). */
export function sha256Upper(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').toUpperCase();
}

/** What a change came to: done (its result), proposed, or written to a request file. */
export type ChangeResult<T> =
  | { readonly kind: 'done'; readonly result: T }
  | { readonly kind: 'proposed'; readonly proposal: Proposal }
  | { readonly kind: 'written'; readonly file: string; readonly request: OperatorRequest };

/** A payload as a request file holds it (JSON: the certificate as base64 DER). */
export function payloadToJson(p: ExecutePayload): Record<string, unknown> {
  const { certificate, ...rest } = p;
  return { ...rest, ...(certificate !== undefined ? { certificate: Buffer.from(certificate as Uint8Array).toString('base64') } : {}) };
}

/** A payload from a request file. */
export function payloadFromJson(v: unknown): ExecutePayload {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the request file payload is not an object', {});
  const { certificate, ...rest } = v as Record<string, unknown>;
  return { ...(rest as ExecutePayload), ...(typeof certificate === 'string' ? { certificate: new Uint8Array(Buffer.from(certificate, 'base64')) } : {}) };
}

/**
 * Who changes the key store in one command: no operator (a store without access control), or an
 * operator whose every change is a signed request. The command's main change honours
 * `--propose`, `--proposal` and `--request-out`; its follow-on steps (a certificate attached
 * after a key generated) are executed directly, each with its own counter.
 */
export class Actor {
  readonly ks: KeyStore;
  readonly operator: Operator | undefined;
  readonly #flags: OperatorFlags;
  readonly #io: CliIo;

  constructor(io: CliIo, ks: KeyStore, flags: OperatorFlags) {
    this.#io = io;
    this.ks = ks;
    this.#flags = flags;
    this.operator = operatorOf(io, flags);
  }

  /** Whether the main change will not run now (proposed or written to a file). */
  get deferred(): boolean {
    return this.operator !== undefined && (this.#flags.propose === true || this.#flags.requestOut !== undefined);
  }

  /** The main change of a command. */
  async main<T>(operation: Operation, payload: ExecutePayload, direct: () => Promise<T>): Promise<ChangeResult<T>> {
    const op = this.operator;
    if (op === undefined) return { kind: 'done', result: await direct() };
    const request = await signRequest(this.ks, op, operation);
    const f = this.#flags;
    if (f.requestOut !== undefined) {
      const file = resolve(this.#io.cwd, f.requestOut);
      const doc = { format: REQUEST_FILE_FORMAT, request, payload: payloadToJson(payload), ...(f.propose === true ? { propose: true } : {}), ...(f.proposal !== undefined ? { proposalId: f.proposal } : {}) };
      writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o600);
      return { kind: 'written', file: f.requestOut, request };
    }
    if (f.propose === true) {
      const ttl = (f.ttlHours ?? 24) * 3600_000;
      return { kind: 'proposed', proposal: await this.ks.propose(request, { payload, ttlMs: ttl }) };
    }
    return { kind: 'done', result: (await this.ks.execute(request, { ...payload, ...(f.proposal !== undefined ? { proposalId: f.proposal } : {}) })) as T };
  }

  /** A follow-on change: signed when acting as an operator, never proposed. */
  async step<T>(operation: Operation, payload: ExecutePayload, direct: () => Promise<T>): Promise<T> {
    const op = this.operator;
    if (op === undefined) return direct();
    return (await this.ks.execute(await signRequest(this.ks, op, operation), payload)) as T;
  }

  readonly #sessions = new Map<string, Promise<SigningSession>>();

  /**
   * The operator's signing session for `portfolioIds` of `organisation` (one signed `session.sign`
   * request, opened once per set in this command).
   */
  session(organisation: Eui64, portfolioIds: readonly string[]): Promise<SigningSession> {
    const op = this.operator;
    if (op === undefined) throw new SmkiError('ERR_CLI_USAGE', 'a signing session is opened by an operator: give --operator ID --operator-key FILE', {});
    const ids = [...new Set(portfolioIds)].sort();
    if (ids.length === 0) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'no portfolio to open a signing session for', {});
    const key = `${organisation}/${ids.join(',')}`;
    let s = this.#sessions.get(key);
    if (s === undefined) {
      s = (async () => (await this.ks.execute(await signRequest(this.ks, op, { op: 'session.sign', organisation, portfolioIds: ids }))) as SigningSession)();
      this.#sessions.set(key, s);
      s.catch(() => this.#sessions.delete(key));
    }
    return s;
  }

  /**
   * A signer for meters: the store itself without an operator (a store under access control
   * refuses it), or one session of the operator for the portfolios `portfolioIds` names.
   */
  async signing(organisation: Eui64, portfolioIds: () => Promise<readonly string[]>): Promise<(device: string, data: Uint8Array, use: UseContext) => Promise<Uint8Array>> {
    if (this.operator === undefined) return (device, data, use) => this.ks.signFor(device, data, use);
    const session = await this.session(organisation, await portfolioIds());
    return (device, data, use) => session.signFor(device, data, use);
  }

  /**
   * A signer for any meter of `organisation`: the store itself without an operator, else the
   * operator's session for the meter's portfolio (opened when first needed).
   */
  meterSigner(organisation: Eui64): (device: string, data: Uint8Array, use: UseContext) => Promise<Uint8Array> {
    if (this.operator === undefined) return (device, data, use) => this.ks.signFor(device, data, use);
    return async (device, data, use) => {
      const portfolio = (await this.ks.device(organisation, device)).portfolioId;
      return (await this.session(organisation, [portfolio])).signFor(device, data, use);
    };
  }

  /** The organisation's XML signer: the store's without an operator, else from the operator's session for the XML-signing key's portfolio. */
  async xmlSigner(organisation: Eui64, portfolioId: string | undefined): Promise<XmlSigner> {
    if (this.operator === undefined) return this.ks.xmlSigner(organisation, portfolioId !== undefined ? { portfolioId } : {});
    if (portfolioId === undefined) throw new SmkiError('ERR_CLI_USAGE', "as an operator, name the XML-signing key's portfolio (--portfolio): the session is opened for it", {});
    return (await this.session(organisation, [portfolioId])).xmlSigner({ portfolioId });
  }
}

/** The outcome of a change that was proposed or written instead of run (else undefined). */
export function deferredOutcome(ctx: Ctx, r: ChangeResult<unknown>, what: string): Outcome | undefined {
  if (r.kind === 'proposed') {
    const p = r.proposal;
    return {
      json: { proposed: true, proposal: p },
      text: [
        `${ctx.paint.green('✔')} proposed ${what} (${p.operation.op}): proposal ${p.proposalId}, expires ${p.expiresAt}`,
        `  operation hash ${p.operationHash}`,
        `  approvers: smki approve ${p.proposalId} --operator ID --operator-key FILE`,
        `  then: the same command with --proposal ${p.proposalId} (and --operator, --operator-key)`,
      ].join('\n'),
    };
  }
  if (r.kind === 'written') {
    return {
      json: { written: true, file: r.file, operatorId: r.request.operatorId, counter: r.request.counter, operation: r.request.operation },
      text: `${ctx.paint.green('✔')} signed request for ${what} (${r.request.operation.op}, counter ${r.request.counter}) → ${r.file}\n  run it: smki request submit ${r.file}`,
    };
  }
  return undefined;
}

/** Read a request file (`--request-out`). */
export function readRequestFile(io: CliIo, file: string): { request: unknown; payload: ExecutePayload; propose: boolean; proposalId?: string } {
  const path = resolve(io.cwd, file);
  if (!existsSync(path)) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the request file cannot be read', { detail: file });
  let doc: Record<string, unknown>;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_FILE_BYTES) throw new Error('too large');
    doc = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the request file is not JSON', { detail: file });
  }
  if (typeof doc !== 'object' || doc === null || doc.format !== REQUEST_FILE_FORMAT) throw new SmkiError('ERR_CLI_INPUT_INVALID', `the request file is not of format ${REQUEST_FILE_FORMAT}`, { detail: file });
  return { request: doc.request, payload: payloadFromJson(doc.payload), propose: doc.propose === true, ...(typeof doc.proposalId === 'string' ? { proposalId: doc.proposalId } : {}) };
}
