import { createHash, randomBytes } from 'node:crypto';
import { fromHex, isSmkiError, parseEui64, SmkiError, toHex, type Eui64, type Finding, type Signer } from '@smki/core';
import {
  buildUpdateSecurityCredentials,
  CREDENTIALS_ALERT_CODES,
  CREDENTIALS_ALERT_MESSAGE_CODE,
  decodeCredentialsAlert,
  decodeUpdateSecurityCredentialsCommand,
  decodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signedBytes,
  signPreCommand,
  UPDATE_SECURITY_CREDENTIALS_BASE_CODE,
  verifySignature,
  type CredentialsExecutionOutcome,
  type GbcsMessage,
  type TrustAnchorCell,
} from '@smki/gbcs';
import { createOperatorRequest, messageListDigest, type ExecutePayload, type KeyHandle, type KeyStore, type Operation } from '@smki/keystore';
import { createPathValidator, parseCertificate, type CertificateInput, type PathValidator, type PathValidatorOptions, type SmkiCertificate } from '@smki/pki';
import type { PostgresStateStoreOptions } from '@smki/store';
import { checkRecoveryCommand, type RecoveryPurpose } from './check.js';
import { appendEvents, counterText, eventHash, GENESIS, openPlanDb, type PlanDb, type Tx } from './internal/db.js';

/** How a plan re-keys its meters: `rotation` (CS02b mode 2, the old key authorises its successor) or `compromise` (mode 8, the Recovery party authorises). */
export type RecoveryRoute = 'rotation' | 'compromise';

/**
 * A plan's state: `declared` (written, its keys not yet all revoked or generated: a crash or a
 * refusal interrupted it, {@link RecoveryPlans.resume} finishes it), new certificates awaited,
 * meters being re-keyed, or done (every meter replaced).
 */
export type PlanState = 'declared' | 'awaiting-certificates' | 'in-progress' | 'complete';

/**
 * The state of one meter and purpose: `pending` (no command yet, or a retry), `built` (a signed
 * command kept, its counter consumed), `replaced` (the meter confirmed), `failed` (the meter
 * refused the cell, with its status), `escalated` (given up on: for people to handle).
 */
export type ItemState = 'pending' | 'built' | 'replaced' | 'failed' | 'escalated';

/** Counters from a function (e.g. milliseconds since the epoch, as the DCC's tools use). */
export interface NextCounterSource {
  /** The next counter of an originator; the plan refuses one not above the last it used (`ERR_RECOVERY_COUNTER_REUSED`). */
  readonly nextCounter: (originator: Eui64) => bigint | Promise<bigint>;
}

/** Counters counted up by the plan database itself. */
export interface StartCounterSource {
  /** The first counter; the plan then counts up from the last one it used for the originator. */
  readonly startCounter: bigint;
}

/** Where the plan takes its originator counters from. */
export type CounterSource = NextCounterSource | StartCounterSource;

/** A named point in a plan's first step, for crash tests ({@link RecoveryPlansOptions.fault}). */
export type RecoveryFaultPoint = 'plan.declared' | 'plan.revoked' | 'plan.generated';

/** A proposal of a key store operation the plan needs, as the approvers see it. */
export interface OperationProposal {
  /** The plan that needs it. */
  readonly planId: string;
  /** The key store's id. */
  readonly storeId: string;
  /** The proposal to approve. */
  readonly proposalId: string;
  /** The hash the approvals sign. */
  readonly operationHash: string;
  /** The operation (e.g. `key.revoke` of the stolen key, `key.generate` of its replacement). */
  readonly operation: Operation;
}

/**
 * How the plan changes a key store under access control (docs/keystore-estate.md §2): each
 * change (revoke, generate, CSR, attach, rotate, retire, a meter's credentials updated) is sent
 * as a request signed by this operator; an operation the store's policy puts under dual control
 * is proposed, `approve` obtains the other operators' signed approvals (the plan never holds
 * their keys), and it runs only when the key store finds the quorum met.
 */
export interface KeyStoreOperator {
  /** The operator (its grants must cover the operations: custodian, device manager). */
  readonly operatorId: string;
  /** That operator's request-signing key. */
  readonly operatorSigner: Signer;
  /** Obtains the approvals of a proposal; without it, an operation that needs approvals is refused (`ERR_APPROVAL_REQUIRED`). */
  readonly approve?: (proposal: OperationProposal) => Promise<readonly unknown[]>;
}

/** Options of {@link RecoveryPlans.open}. */
export interface RecoveryPlansOptions {
  /** The plan database as a SQLite file (created with its tables if missing); or give `postgres`. */
  readonly path?: string;
  /**
   * The plan database in PostgreSQL (several services sharing one plan store): where to connect,
   * as for @smki/store's PostgreSQL stores (the password only from PGPASSWORD, a service file or
   * a password file); the schema defaults to `smki_recovery`. The same tables and guarantees as
   * SQLite: every writer of every process serialises on the schema's advisory lock.
   */
  readonly postgres?: PostgresStateStoreOptions;
  /** The supplier's key store (its keys are revoked, generated, rotated and retired through it). */
  readonly keystore: KeyStore;
  /** When the key store is under access control: the operator the plan's changes are signed as (see {@link KeyStoreOperator}). */
  readonly operator?: KeyStoreOperator;
  /** For crash tests: called at each named point of a plan's first step, after what precedes it is durable. */
  readonly fault?: (point: RecoveryFaultPoint) => void;
  /** Where the originator counters of the commands come from. */
  readonly counters: CounterSource;
  /**
   * What a meter's DS certificate must validate to before its response is believed: the SMKI root
   * as anchor, the device CA as intermediate, and CRLs if you have them. A response verified with
   * a certificate that does not chain there changes nothing (`ERR_RECOVERY_RESPONSE_SIGNATURE`).
   */
  readonly deviceTrust: PathValidatorOptions;
  /** Clock (default `() => new Date()`). */
  readonly now?: () => Date;
}

/** A recovery plan as stored. */
export interface RecoveryPlan {
  /** Its id (32 upper-case hex digits). */
  readonly planId: string;
  /** Rotation or compromise. */
  readonly route: RecoveryRoute;
  /** The supplier (EUI-64). */
  readonly organisation: Eui64;
  /** The portfolio whose meters are re-keyed. */
  readonly portfolioId: string;
  /** The commands' originator: the supplier (rotation) or the Recovery party (compromise). */
  readonly originator: Eui64;
  /** The named backend holding the new keys (compromise). */
  readonly backend?: string;
  /** The purposes re-keyed. */
  readonly purposes: readonly RecoveryPurpose[];
  /** The keys replaced, per purpose. */
  readonly oldKeys: Readonly<Partial<Record<RecoveryPurpose, string>>>;
  /** Their replacements, per purpose. */
  readonly newKeys: Readonly<Partial<Record<RecoveryPurpose, string>>>;
  /** Where it stands. */
  readonly state: PlanState;
  /** When it was made (ISO 8601). */
  readonly createdAt: string;
  /** When it last changed (ISO 8601). */
  readonly updatedAt: string;
}

/** What {@link RecoveryPlans.planRotation} and {@link RecoveryPlans.planCompromise} return: the plan and the CSRs of its new keys for the CA. */
export interface PlannedRecovery {
  /** The plan. */
  readonly plan: RecoveryPlan;
  /** A PKCS#10 request (DER) per new key. */
  readonly csrs: Readonly<Partial<Record<RecoveryPurpose, Uint8Array>>>;
}

/** Options of {@link RecoveryPlans.planRotation}. */
export interface RotationPlanOptions {
  /** The supplier (EUI-64). */
  readonly organisation: string;
  /** The portfolio. */
  readonly portfolioId: string;
  /** What to rotate (default both). */
  readonly purposes?: readonly RecoveryPurpose[];
}

/** Options of {@link RecoveryPlans.planCompromise}. */
export interface CompromisePlanOptions extends RotationPlanOptions {
  /** The Recovery party's EUI-64 (Remote Party Role 1): the commands' originator. */
  readonly recoveryParty: string;
  /** The key store's further backend, by name, to make the replacements in (never beside the stolen key). */
  readonly backend: string;
}

/** The new certificates of a plan, issued by the CA from its CSRs. */
export interface PlanCertificates {
  /** Per purpose, the certificate (DER, PEM or parsed). */
  readonly certificates: Readonly<Partial<Record<RecoveryPurpose, CertificateInput>>>;
  /** The issuing CA certificate(s), sent in each command's certification path. */
  readonly certificationPath: readonly CertificateInput[];
}

/** A session-like signer for a rotation under access control (`session.signFor`). */
export interface MeterSigner {
  /** Sign `data` for `device` with the key the meter trusts. */
  signFor(device: string, data: Uint8Array, use?: { readonly messageCode?: number; readonly counter?: bigint }): Promise<Uint8Array>;
}

/** One command of a batch as the approvers see it, unsigned. */
export interface ProposedCommand {
  /** The meter. */
  readonly device: Eui64;
  /** Its originator counter. */
  readonly counter: bigint;
  /** The unsigned CS02b pre-command; the session signs exactly its signed bytes. */
  readonly command: Uint8Array;
}

/** A command the plan kept for a meter. */
export interface KeptCommand {
  /** Its originator counter. */
  readonly counter: bigint;
  /** The signed command. */
  readonly command: Uint8Array;
}

/** What a response said about one purpose of a meter. */
export interface CellResult {
  /** The purpose (the supplier's DS or KA cell). */
  readonly purpose: RecoveryPurpose;
  /** Its new state. */
  readonly state: 'replaced' | 'failed';
  /** The device's status for the cell (0 success; docs/domain.md §9). */
  readonly status: number;
}

/** What a Recovery party's approvers are shown: the proposal and the exact commands it covers. */
export interface BatchProposal {
  /** The Recovery store's id. */
  readonly storeId: string;
  /** The proposal to approve. */
  readonly proposalId: string;
  /** The hash the approvals sign. */
  readonly operationHash: string;
  /** The `session.sign` operation, bound to the messages. */
  readonly operation: Operation;
  /** The commands, unsigned, exactly as they will be signed. */
  readonly commands: readonly ProposedCommand[];
}

/** How the Recovery party signs a compromise batch: its own key store, under dual control. */
export interface RecoverySigning {
  /** The Recovery party's key store (its own directory and operators, under access control). */
  readonly store: KeyStore;
  /** Its portfolio whose DS key the meters hold in their recovery cell. */
  readonly portfolioId: string;
  /** The operator that proposes and opens the signing session. */
  readonly operatorId: string;
  /** That operator's request-signing key. */
  readonly operatorSigner: Signer;
  /** The Recovery party's DS certificate: each signature is checked against it before it is kept. */
  readonly certificate: CertificateInput;
  /** Obtains the other operators' approvals of the proposal (the plan never holds their keys). */
  readonly approve: (proposal: BatchProposal) => Promise<readonly unknown[]>;
}

/** Options of {@link RecoveryPlans.buildBatch}. */
export interface BuildBatchOptions {
  /** At most this many meters (default 100). */
  readonly limit?: number;
  /** Rotation: sign through this (e.g. a signing session) instead of the key store itself. */
  readonly signer?: MeterSigner;
  /** Compromise: the Recovery party's signing (required). */
  readonly recovery?: RecoverySigning;
  /**
   * Future-dated commands: the meters replace their cells at this time (whole seconds), not at
   * once. Each answers at once with `SEQUENCE { NULL }` (no outcome; the items stay `built`, the
   * plan records that they are scheduled) and later with the alert 0x00CB
   * ({@link RecoveryPlans.recordAlert}).
   */
  readonly executionTime?: Date;
}

/** One command a batch built. */
export interface BuiltCommand {
  /** The meter. */
  readonly device: Eui64;
  /** The originator counter it consumed. */
  readonly counter: bigint;
  /** The purposes it replaces. */
  readonly purposes: readonly RecoveryPurpose[];
  /** The signed CS02b command (for the DCC, which MACs it). */
  readonly command: Uint8Array;
}

/** What {@link RecoveryPlans.recordResponse} and {@link RecoveryPlans.recordAlert} recorded. */
export interface RecordedResponse {
  /** The meter. */
  readonly device: Eui64;
  /** Per purpose, its new state and the device's status (empty when `scheduled`). */
  readonly outcomes: readonly CellResult[];
  /** The response to a future-dated command said it is scheduled (no outcome yet; the items stay `built` until the alert 0x00CB). */
  readonly scheduled?: boolean;
  /** The plan's state afterwards. */
  readonly planState: PlanState;
}

/** Where a plan stands. */
export interface PlanStatus {
  /** The plan. */
  readonly plan: RecoveryPlan;
  /** Meter-purposes per state. */
  readonly counts: Readonly<Record<ItemState, number>>;
  /** Per purpose, the meters that still trust the old key (the key store's exposure report). */
  readonly remaining: Readonly<Partial<Record<RecoveryPurpose, number>>>;
}

/** What {@link RecoveryPlans.verifyPlanHistory} found. */
export interface PlanHistoryVerification {
  /** Whether the chain verifies and every row agrees with it. */
  readonly ok: boolean;
  /** How many events the chain holds. */
  readonly events: number;
  /** The chain's head hash (upper-case hex). */
  readonly head: string;
  /** What does not verify, each with the code `ERR_RECOVERY_HISTORY_BROKEN` (empty when ok). */
  readonly problems: readonly Finding[];
}

interface PlanRow {
  plan_id: string;
  route: string;
  organisation: string;
  portfolio_id: string;
  originator: string;
  backend: string | null;
  purposes: string;
  old_signing: string | null;
  old_key_agreement: string | null;
  new_signing: string | null;
  new_key_agreement: string | null;
  certification_path: string | null;
  state: string;
  enumerated: number;
  created_at: string;
  updated_at: string;
}

interface ItemRow {
  device: string;
  purpose: string;
  state: string;
  attempt: number;
  counter: string | null;
  status: number | null;
}

const PURPOSES: readonly RecoveryPurpose[] = ['signing', 'keyAgreement'];
const OLD_COL = { signing: 'old_signing', keyAgreement: 'old_key_agreement' } as const;
const NEW_COL = { signing: 'new_signing', keyAgreement: 'new_key_agreement' } as const;
const CELL: Record<RecoveryPurpose, TrustAnchorCell> = { signing: { role: 2, keyUsage: 'digitalSignature' }, keyAgreement: { role: 2, keyUsage: 'keyAgreement' } };
const MAX_COUNTER = (1n << 64n) - 1n;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

const fail = (code: 'ERR_INVALID_ARGUMENT' | 'ERR_RECOVERY_PLAN_NOT_FOUND' | 'ERR_RECOVERY_PLAN_STATE' | 'ERR_RECOVERY_COUNTER_REUSED' | 'ERR_RECOVERY_RESPONSE_SIGNATURE' | 'ERR_RECOVERY_RESPONSE_UNMATCHED' | 'ERR_RECOVERY_RESPONSE_OUTCOME', message: string, detail?: string): never => {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail });
};

function purposesOf(given: readonly RecoveryPurpose[] | undefined): RecoveryPurpose[] {
  const list = given ?? PURPOSES;
  if (!Array.isArray(list) || list.length === 0 || list.some((p) => !PURPOSES.includes(p)) || new Set(list).size !== list.length) {
    fail('ERR_INVALID_ARGUMENT', 'purposes must be signing and/or keyAgreement, each once');
  }
  return PURPOSES.filter((p) => list.includes(p));
}

function planOf(r: PlanRow): RecoveryPlan {
  const purposes = JSON.parse(r.purposes) as RecoveryPurpose[];
  const oldKeys: Partial<Record<RecoveryPurpose, string>> = {};
  const newKeys: Partial<Record<RecoveryPurpose, string>> = {};
  for (const p of purposes) {
    const o = r[OLD_COL[p]];
    const n = r[NEW_COL[p]];
    if (o !== null) oldKeys[p] = o;
    if (n !== null) newKeys[p] = n;
  }
  return Object.freeze({
    planId: r.plan_id,
    route: r.route as RecoveryRoute,
    organisation: r.organisation as Eui64,
    portfolioId: r.portfolio_id,
    originator: r.originator as Eui64,
    ...(r.backend !== null ? { backend: r.backend } : {}),
    purposes: Object.freeze(purposes),
    oldKeys: Object.freeze(oldKeys),
    newKeys: Object.freeze(newKeys),
    state: r.state as PlanState,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
}

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').toUpperCase();

/**
 * Recovery plans: re-key the meters of one portfolio after its keys are rotated or stolen, and
 * track it to the end. Segregating a supplier's keys per portfolio pays off on the day a key is
 * stolen: only that portfolio's meters trust it, so only they are re-keyed; every other
 * portfolio's meters, keys and exposure stay as they were.
 *
 * Two routes (docs/domain.md §9): a **rotation** sends CS02b mode 2 (supplier by supplier), signed
 * with the key the meter still trusts, and retires the old key once every meter confirmed; a
 * **compromise** revokes the stolen key at once, makes the replacements in another named backend,
 * and sends mode 8, signed by the Recovery party's own key store through a signing session bound
 * to exactly the batch's commands and approved by its other operators.
 *
 * Security posture: every state change is one transaction (SQLite with WAL and synchronous FULL,
 * or PostgreSQL, where every writer of every process takes the plan schema's advisory lock) with
 * its record in an append-only SHA-256 hash chain ({@link RecoveryPlans.verifyPlanHistory}); a plan
 * is written (`declared`) before any key is revoked or generated, and an interrupted one is
 * finished by {@link RecoveryPlans.resume} without revoking or generating twice; a counter is
 * recorded as consumed before the command that uses it is signed and is never used twice, across
 * restarts and across services racing on one database; on a key store under access control every
 * change is an operator's signed request, and dual control is the store's to enforce (see
 * {@link KeyStoreOperator}); every command is checked before it is signed
 * ({@link checkRecoveryCommand}); a device response is believed only once its signature verifies
 * with the device's certificate, and that certificate validates to `deviceTrust`; one that does
 * not changes nothing.
 *
 * @see docs/domain.md §9–§10 (CS02b), docs/key-segregation.md (portfolios, exposure), docs/keystore-estate.md §2 (dual control, a session bound to messages)
 * @example
 * ```ts
 * import type { KeyStore } from '@smki/keystore';
 * import { RecoveryPlans } from '@smki/recovery';
 * declare const keystore: KeyStore, newDs: Uint8Array, newKa: Uint8Array, organisationCa: Uint8Array, root: Uint8Array, deviceCa: Uint8Array;
 * const plans = await RecoveryPlans.open({ path: '/var/lib/smki/recovery.db', keystore, counters: { nextCounter: () => BigInt(Date.now()) }, deviceTrust: { anchors: [root], intermediates: [deviceCa] } });
 * const { plan, csrs } = await plans.planRotation({ organisation: '90B3D51F30010000', portfolioId: 'north' });
 * // csrs.signing, csrs.keyAgreement go to the CA; its certificates come back:
 * await plans.attachCertificates(plan.planId, { certificates: { signing: newDs, keyAgreement: newKa }, certificationPath: [organisationCa] });
 * const batch = await plans.buildBatch(plan.planId, { limit: 500 });
 * console.log(batch.length, (await plans.status(plan.planId)).counts);
 * await plans.close();
 * ```
 */
export class RecoveryPlans {
  #db: PlanDb | undefined;
  readonly #keystore: KeyStore;
  readonly #counters: CounterSource;
  readonly #now: () => Date;
  readonly #deviceTrust: PathValidator;
  readonly #operator: KeyStoreOperator | undefined;
  readonly #fault: ((point: RecoveryFaultPoint) => void) | undefined;

  private constructor(db: PlanDb, options: RecoveryPlansOptions, deviceTrust: PathValidator) {
    this.#db = db;
    this.#deviceTrust = deviceTrust;
    this.#keystore = options.keystore;
    this.#counters = options.counters;
    this.#now = options.now ?? (() => new Date());
    this.#operator = options.operator;
    this.#fault = options.fault;
  }

  /**
   * Open (or create) the plan database: a SQLite file (`path`) or a PostgreSQL schema
   * (`postgres`, default schema `smki_recovery`), with the same tables and guarantees.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_SCHEMA`
   */
  static async open(options: RecoveryPlansOptions): Promise<RecoveryPlans> {
    if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'options must be an object');
    if ((options.path === undefined) === (options.postgres === undefined)) fail('ERR_INVALID_ARGUMENT', 'give the plan database as exactly one of path (SQLite) or postgres', 'path');
    if (typeof options.keystore !== 'object' || options.keystore === null) fail('ERR_INVALID_ARGUMENT', 'a key store is required', 'keystore');
    const c = options.counters as Partial<{ nextCounter: unknown; startCounter: unknown }> | undefined;
    if (typeof c !== 'object' || c === null || (typeof c.nextCounter !== 'function' && typeof c.startCounter !== 'bigint')) {
      fail('ERR_INVALID_ARGUMENT', 'counters must be { nextCounter } or { startCounter: bigint }', 'counters');
    }
    if (typeof options.deviceTrust !== 'object' || options.deviceTrust === null) fail('ERR_INVALID_ARGUMENT', "deviceTrust (the root and device CA a meter's certificate must chain to) is required", 'deviceTrust');
    const o = options.operator as Partial<KeyStoreOperator> | undefined;
    if (o !== undefined && (typeof o !== 'object' || o === null || typeof o.operatorId !== 'string' || typeof o.operatorSigner?.sign !== 'function' || (o.approve !== undefined && typeof o.approve !== 'function'))) {
      fail('ERR_INVALID_ARGUMENT', 'operator must be { operatorId, operatorSigner, approve? }', 'operator');
    }
    if (options.fault !== undefined && typeof options.fault !== 'function') fail('ERR_INVALID_ARGUMENT', 'fault must be a function', 'fault');
    const deviceTrust = createPathValidator(options.deviceTrust);
    const db = await openPlanDb(options.postgres !== undefined ? { postgres: options.postgres } : { path: options.path as string });
    return new RecoveryPlans(db, options, deviceTrust);
  }

  /** Close the database (the key stores are the caller's). */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    await db?.close();
  }

  get #d(): PlanDb {
    if (this.#db === undefined) fail('ERR_RECOVERY_PLAN_STATE', 'the plan database is closed');
    return this.#db as PlanDb;
  }

  async #row(planId: string, t?: Tx): Promise<PlanRow> {
    const q = 'SELECT * FROM recovery_plans WHERE plan_id = ?';
    const r = t !== undefined ? await t.get<PlanRow>(q, [String(planId)]) : await this.#d.read((x) => x.get<PlanRow>(q, [String(planId)]));
    if (r === undefined) fail('ERR_RECOVERY_PLAN_NOT_FOUND', `no recovery plan ${String(planId).slice(0, 64)}`, String(planId).slice(0, 64));
    return r as PlanRow;
  }

  /**
   * A plan by id.
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`
   */
  async plan(planId: string): Promise<RecoveryPlan> {
    return planOf(await this.#row(planId));
  }

  /** Every plan, oldest first (a `declared` plan too: one whose first step was interrupted, for {@link RecoveryPlans.resume}). */
  async plans(): Promise<RecoveryPlan[]> {
    return (await this.#d.read((t) => t.all<PlanRow>('SELECT * FROM recovery_plans ORDER BY created_at, plan_id'))).map(planOf);
  }

  /**
   * A state-changing call of the key store: directly, or, when the store is under access control,
   * as a request signed by {@link RecoveryPlansOptions.operator}; when the store's policy puts the
   * operation under dual control, as a proposal executed only once the approvals the operator's
   * `approve` obtains meet the quorum (the key store decides; nothing here can lower it).
   */
  async #keyOp<T>(planId: string, operation: Operation, direct: () => Promise<T>, payload: ExecutePayload = {}): Promise<T> {
    const op = this.#operator;
    const store = this.#keystore;
    if (op === undefined || !(await store.accessControlled())) return direct();
    const request = async () =>
      createOperatorRequest(op.operatorSigner, { storeId: store.storeId, operatorId: op.operatorId, counter: (await store.operator(op.operatorId)).lastCounter + 1n, issuedAt: this.#now(), operation });
    try {
      return (await store.execute(await request(), payload)) as T;
    } catch (e) {
      if (!isSmkiError(e) || e.code !== 'ERR_APPROVAL_REQUIRED' || op.approve === undefined) throw e;
    }
    const proposal = await store.propose(await request(), { payload });
    const approvals = await op.approve(Object.freeze({ planId, storeId: store.storeId, proposalId: proposal.proposalId, operationHash: proposal.operationHash, operation }));
    for (const a of approvals) await store.approve(a);
    return (await store.execute(await request(), { ...payload, proposalId: proposal.proposalId })) as T;
  }

  async #currentKeys(organisation: string, portfolioId: string, purposes: RecoveryPurpose[]): Promise<Partial<Record<RecoveryPurpose, string>>> {
    const portfolio = await this.#keystore.portfolio(organisation, portfolioId);
    const old: Partial<Record<RecoveryPurpose, string>> = {};
    for (const p of purposes) {
      const k = portfolio.current[p];
      if (k === undefined) fail('ERR_RECOVERY_PLAN_STATE', `portfolio ${portfolioId} has no current ${p} key to replace`, p);
      old[p] = k as string;
    }
    return old;
  }

  /**
   * Write a plan in state `declared`, before any key is touched: everything needed to finish it
   * (organisation, portfolio, purposes, the old keys, the backend, and per purpose the last key
   * generation that existed, so that a replacement generated before a crash is found again).
   */
  async #declare(route: RecoveryRoute, organisation: Eui64, portfolioId: string, originator: Eui64, backend: string | undefined, purposes: RecoveryPurpose[], old: Partial<Record<RecoveryPurpose, string>>): Promise<string> {
    const keys = await this.#keystore.keys(organisation);
    const after: Partial<Record<RecoveryPurpose, number>> = {};
    for (const p of purposes) after[p] = keys.filter((k) => k.portfolioId === portfolioId && k.purpose === p).reduce((m, k) => Math.max(m, k.generation), 0);
    const planId = randomBytes(16).toString('hex').toUpperCase();
    const at = this.#now().toISOString();
    await this.#d.write(async (t) => {
      const open = await t.get<{ plan_id: string }>("SELECT plan_id FROM recovery_plans WHERE organisation = ? AND portfolio_id = ? AND state = 'declared'", [organisation, portfolioId]);
      if (open !== undefined) fail('ERR_RECOVERY_PLAN_STATE', `plan ${open.plan_id} of portfolio ${portfolioId} is declared and unfinished: resume it`, open.plan_id);
      await t.run(
        `INSERT INTO recovery_plans (plan_id, route, organisation, portfolio_id, originator, backend, purposes, old_signing, old_key_agreement, new_signing, new_key_agreement, certification_path, state, enumerated, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 'declared', 0, ?, ?)`,
        [planId, route, organisation, portfolioId, originator, backend ?? null, JSON.stringify(purposes), old.signing ?? null, old.keyAgreement ?? null, at, at],
      );
      for (const p of purposes) await t.run('INSERT INTO recovery_declared (plan_id, purpose, after_generation) VALUES (?, ?, ?)', [planId, p, after[p] as number]);
      await appendEvents(t, [{ type: 'plan.created', planId, route, organisation, portfolioId, originator, backend: backend ?? null, purposes, oldKeys: old, newKeys: {}, afterGeneration: after, state: 'declared', at }]);
    });
    this.#fault?.('plan.declared');
    return planId;
  }

  /**
   * Finish a declared plan, idempotently: revoke the old keys (compromise; a key already revoked
   * is left so), find or generate each replacement (one generated before a crash is found: a
   * pending key of the portfolio and purpose, of a later generation than the plan recorded, in
   * the plan's backend, no other plan's), record it, and move the plan to
   * `awaiting-certificates`. Then the CSRs of the new keys.
   */
  async #finish(planId: string): Promise<PlannedRecovery> {
    let plan = planOf(await this.#row(planId));
    if (plan.state === 'declared') {
      if (plan.route === 'compromise') {
        const revoked: string[] = [];
        for (const p of plan.purposes) {
          const keyId = plan.oldKeys[p] as string;
          if ((await this.#keystore.key(keyId)).state === 'revoked') continue;
          await this.#keyOp(plan.planId, { op: 'key.revoke', keyId, reason: 'keyCompromise' }, () => this.#keystore.revoke(keyId, 'keyCompromise'));
          revoked.push(keyId);
        }
        if (revoked.length > 0) {
          const at = this.#now().toISOString();
          await this.#d.write(async (t) => {
            await t.run('UPDATE recovery_plans SET updated_at = ? WHERE plan_id = ?', [at, plan.planId]);
            await appendEvents(t, [{ type: 'plan.revoked', planId: plan.planId, keys: revoked, reason: 'keyCompromise', at }]);
          });
        }
        this.#fault?.('plan.revoked');
      }
      const after = new Map((await this.#d.read((t) => t.all<{ purpose: string; after_generation: number }>('SELECT purpose, after_generation FROM recovery_declared WHERE plan_id = ?', [plan.planId]))).map((r) => [r.purpose, Number(r.after_generation)]));
      for (const p of plan.purposes) {
        if (plan.newKeys[p] !== undefined) continue;
        const found = await this.#replacementOf(plan, p, after.get(p) ?? 0);
        let keyId = found;
        if (keyId === undefined) {
          const options = plan.backend === undefined ? {} : { backend: plan.backend };
          const handle = await this.#keyOp<KeyHandle>(plan.planId, { op: 'key.generate', organisation: plan.organisation, portfolioId: plan.portfolioId, purpose: p, ...options }, () => this.#keystore.generateKey(plan.organisation, plan.portfolioId, p, options));
          keyId = handle.keyId;
        }
        this.#fault?.('plan.generated');
        const at = this.#now().toISOString();
        await this.#d.write(async (t) => {
          const n = await t.run(`UPDATE recovery_plans SET ${NEW_COL[p]} = ?, updated_at = ? WHERE plan_id = ? AND state = 'declared' AND ${NEW_COL[p]} IS NULL`, [keyId as string, at, plan.planId]);
          if (n !== 1) fail('ERR_RECOVERY_PLAN_STATE', `plan ${plan.planId} changed while its ${p} key was made`, plan.planId);
          await appendEvents(t, [{ type: 'plan.key', planId: plan.planId, purpose: p, keyId, found: found !== undefined, at }]);
        });
        plan = planOf(await this.#row(plan.planId));
      }
      const at = this.#now().toISOString();
      await this.#d.write(async (t) => {
        const n = await t.run("UPDATE recovery_plans SET state = 'awaiting-certificates', updated_at = ? WHERE plan_id = ? AND state = 'declared'", [at, plan.planId]);
        if (n === 1) await appendEvents(t, [{ type: 'plan.state', planId: plan.planId, state: 'awaiting-certificates', at }]);
      });
      plan = planOf(await this.#row(plan.planId));
    }
    if (plan.state !== 'awaiting-certificates') fail('ERR_RECOVERY_PLAN_STATE', `plan ${plan.planId} is ${plan.state}: its keys were certified already`, plan.state);
    const csrs: Partial<Record<RecoveryPurpose, Uint8Array>> = {};
    for (const p of plan.purposes) {
      const keyId = plan.newKeys[p] as string;
      csrs[p] = await this.#keyOp(plan.planId, { op: 'key.csr', keyId }, () => this.#keystore.createCsr(keyId));
    }
    return Object.freeze({ plan, csrs: Object.freeze(csrs) });
  }

  /** A replacement key for `purpose` generated for the plan before a crash, if any (the earliest). */
  async #replacementOf(plan: RecoveryPlan, purpose: RecoveryPurpose, afterGeneration: number): Promise<string | undefined> {
    const taken = new Set(
      (await this.#d.read((t) => t.all<{ k: string | null }>('SELECT new_signing AS k FROM recovery_plans UNION SELECT new_key_agreement AS k FROM recovery_plans'))).map((r) => r.k).filter((k): k is string => k !== null),
    );
    const candidates = (await this.#keystore.keys(plan.organisation))
      .filter((k) => k.portfolioId === plan.portfolioId && k.purpose === purpose && k.generation > afterGeneration && k.state === 'pending' && k.certificate === undefined && !taken.has(k.keyId))
      .filter((k) => (plan.backend === undefined ? !k.backend.startsWith('@') : k.backend === `@${plan.backend}`))
      .sort((a, b) => a.generation - b.generation);
    return candidates[0]?.keyId;
  }

  /**
   * Plan a rotation of a portfolio's keys: write the plan (`declared`), generate the new key(s)
   * in the key store and return their CSRs for the CA (the plan is then `awaiting-certificates`).
   * Nothing is revoked; meters keep working with the old keys meanwhile. Interrupted after the
   * plan was written, it is finished by {@link RecoveryPlans.resume}.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_RECOVERY_PLAN_STATE` (no current key to
   *   rotate; a declared plan of the portfolio is unfinished), and the key store's
   *   (`ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_OPERATOR_REQUIRED` under access
   *   control without an operator, `ERR_PROPOSAL_QUORUM_NOT_MET`, …)
   * @see docs/domain.md §9 (mode 2), docs/key-segregation.md
   */
  async planRotation(options: RotationPlanOptions): Promise<PlannedRecovery> {
    const purposes = purposesOf(options.purposes);
    const organisation = parseEui64(options.organisation);
    const old = await this.#currentKeys(organisation, options.portfolioId, purposes);
    const planId = await this.#declare('rotation', organisation, options.portfolioId, organisation, undefined, purposes, old);
    return this.#finish(planId);
  }

  /**
   * Plan the recovery of a stolen portfolio key. In this order, each step durable before the
   * next: the plan is written (`declared`, with the old keys and the backend), the old key(s) are
   * revoked at once (`keyCompromise`: they never sign again), the replacements are generated in
   * the named backend and recorded, and the plan becomes `awaiting-certificates`; the CSRs are
   * returned. The commands will be mode 8, from the Recovery party. Interrupted at any point after
   * the plan was written (a crash, a refused approval), the plan stays `declared`, listed by
   * {@link RecoveryPlans.plans}, and {@link RecoveryPlans.resume} finishes it.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_EUI64_INVALID`, `ERR_RECOVERY_PLAN_STATE`, and the
   *   key store's (`ERR_OPERATOR_REQUIRED` under access control without an operator,
   *   `ERR_APPROVAL_REQUIRED`, `ERR_PROPOSAL_QUORUM_NOT_MET` without the approvals, …)
   * @see docs/domain.md §9 (mode 8), docs/key-segregation.md (further backends, by name), docs/keystore-estate.md §2 (dual control)
   */
  async planCompromise(options: CompromisePlanOptions): Promise<PlannedRecovery> {
    const purposes = purposesOf(options.purposes);
    const organisation = parseEui64(options.organisation);
    const recovery = parseEui64(options.recoveryParty);
    if (typeof options.backend !== 'string' || options.backend.length === 0) fail('ERR_INVALID_ARGUMENT', 'a compromise plan names the backend for the replacement keys', 'backend');
    // Checked before anything is written or revoked: a backend the store was not opened with
    // would fail the replacement's generation after the stolen keys were revoked.
    if (!this.#keystore.backendNames().includes(options.backend)) {
      fail('ERR_INVALID_ARGUMENT', `backend ${options.backend} is not one of the key store's further backends (${this.#keystore.backendNames().join(', ') || 'none'}): nothing revoked`, 'backend');
    }
    const old = await this.#currentKeys(organisation, options.portfolioId, purposes);
    const planId = await this.#declare('compromise', organisation, options.portfolioId, recovery, options.backend, purposes, old);
    return this.#finish(planId);
  }

  /**
   * Finish a plan whose first step was interrupted (state `declared`: a crash, or a key store
   * call refused, e.g. approvals not given), idempotently: a key already revoked stays so, a
   * replacement already generated is found and recorded (never generated twice), and the plan
   * becomes `awaiting-certificates`. For a plan already `awaiting-certificates`, nothing changes
   * and its CSRs are made again (for a CA request that was lost).
   * @returns the plan and the CSRs of its new keys
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_RECOVERY_PLAN_STATE` (the plan's
   *   certificates are attached already), and the key store's, as {@link RecoveryPlans.planCompromise}
   */
  async resume(planId: string): Promise<PlannedRecovery> {
    return this.#finish(String(planId));
  }

  /**
   * Attach the CA's certificates to the plan's new keys and make them current (`rotate`): meters
   * assigned from now on trust them; the others are re-keyed by {@link RecoveryPlans.buildBatch}.
   * Safe to call again after a crash (steps already done are skipped).
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_RECOVERY_PLAN_STATE`, `ERR_INVALID_ARGUMENT`,
   *   and the key store's (`ERR_CERTIFICATE_KEY_MISMATCH`, `ERR_CERTIFICATE_ENTITY_MISMATCH`, …)
   */
  async attachCertificates(planId: string, given: PlanCertificates): Promise<RecoveryPlan> {
    const row = await this.#row(planId);
    if (row.state !== 'awaiting-certificates') fail('ERR_RECOVERY_PLAN_STATE', `plan ${planId} is ${row.state}`, row.state);
    const plan = planOf(row);
    if (!Array.isArray(given?.certificationPath) || given.certificationPath.length === 0) fail('ERR_INVALID_ARGUMENT', 'the certification path names the issuing CA', 'certificationPath');
    const path = given.certificationPath.map((c) => toHex(typeof c === 'object' && !(c instanceof Uint8Array) ? c.der : parseCertificate(c).der));
    for (const p of plan.purposes) {
      const cert = given.certificates?.[p];
      if (cert === undefined) fail('ERR_INVALID_ARGUMENT', `no certificate for the new ${p} key`, p);
      const keyId = plan.newKeys[p] as string;
      let info = await this.#keystore.key(keyId);
      if (info.state === 'pending' && info.certificate === undefined) {
        const der = typeof cert === 'object' && !(cert instanceof Uint8Array) ? (cert as SmkiCertificate).der : parseCertificate(cert as string | Uint8Array).der;
        info = await this.#keyOp(plan.planId, { op: 'key.attach', keyId, certificateSha256: sha256Hex(der) }, () => this.#keystore.attachCertificate(keyId, cert as CertificateInput), { certificate: der });
      }
      if (info.state === 'pending') await this.#keyOp(plan.planId, { op: 'key.rotate', keyId }, () => this.#keystore.rotate(keyId));
    }
    const at = this.#now().toISOString();
    await this.#d.write(async (t) => {
      const n = await t.run("UPDATE recovery_plans SET certification_path = ?, state = 'in-progress', updated_at = ? WHERE plan_id = ? AND state = 'awaiting-certificates'", [JSON.stringify(path), at, plan.planId]);
      if (n !== 1) fail('ERR_RECOVERY_PLAN_STATE', `plan ${planId} changed meanwhile`, planId);
      await appendEvents(t, [{ type: 'plan.state', planId: plan.planId, state: 'in-progress', certificationPath: path.map((h) => sha256Hex(fromHex(h))), at }]);
    });
    return planOf(await this.#row(planId));
  }

  /** Page the meters that trust the old keys into the plan, once (one transaction). */
  async #enumerate(plan: RecoveryPlan): Promise<void> {
    const items: [string, RecoveryPurpose][] = [];
    for (const p of plan.purposes) {
      const old = plan.oldKeys[p] as string;
      let after: string | undefined;
      do {
        const page = await this.#keystore.devicesTrusting(old, { limit: 1000, ...(after !== undefined ? { after } : {}) });
        if (page.wholeEstate) fail('ERR_RECOVERY_PLAN_STATE', `key ${old} serves the whole estate: not a portfolio key`, old);
        for (const dev of page.devices) items.push([dev, p]);
        after = page.next;
      } while (after !== undefined);
    }
    items.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1));
    await this.#d.write(async (t) => {
      const again = await t.get<{ enumerated: number }>('SELECT enumerated FROM recovery_plans WHERE plan_id = ?', [plan.planId]);
      if (Number(again?.enumerated) === 1) return;
      for (let i = 0; i < items.length; i += 200) {
        const chunk = items.slice(i, i + 200);
        await t.run(`INSERT INTO recovery_items (plan_id, device, purpose, state, attempt, counter, status) VALUES ${chunk.map(() => "(?, ?, ?, 'pending', 1, NULL, NULL)").join(', ')}`, chunk.flatMap(([dev, p]) => [plan.planId, dev, p]));
      }
      await t.run('UPDATE recovery_plans SET enumerated = 1, updated_at = ? WHERE plan_id = ?', [this.#now().toISOString(), plan.planId]);
      await appendEvents(t, [{ type: 'plan.enumerated', planId: plan.planId, items }]);
    });
  }

  /**
   * Counters for `n` commands of `originator`, recorded as consumed (one write transaction,
   * serialised with every other writer of the database, of any process) before any is used.
   */
  async #reserve(planId: string, originator: Eui64, devices: readonly string[]): Promise<bigint[]> {
    const lastOf = async (t: Tx): Promise<bigint> => {
      const r = await t.get<{ c: string | null }>('SELECT max(counter) AS c FROM recovery_counters WHERE originator = ?', [originator]);
      return r?.c === null || r?.c === undefined ? -1n : BigInt(r.c);
    };
    const source = this.#counters;
    const given: bigint[] = [];
    if ('nextCounter' in source) for (let i = 0; i < devices.length; i++) given.push(await source.nextCounter(originator));
    return this.#d.write(async (t) => {
      let last = await lastOf(t);
      const wanted: bigint[] = [...given];
      if (!('nextCounter' in source)) {
        // Counted up from the last counter used, read inside the transaction that records them.
        let c = last + 1n > source.startCounter ? last + 1n : source.startCounter;
        for (let i = 0; i < devices.length; i++) wanted.push(c++);
      }
      for (const [i, c] of wanted.entries()) {
        if (typeof c !== 'bigint' || c < 0n || c > MAX_COUNTER) fail('ERR_INVALID_ARGUMENT', 'a counter is an unsigned 64-bit bigint', String(c));
        if (c <= last) fail('ERR_RECOVERY_COUNTER_REUSED', `counter ${c} of ${originator} is not above the last it used (${last})`, String(c));
        await t.run('INSERT INTO recovery_counters (originator, counter, plan_id, device) VALUES (?, ?, ?, ?)', [originator, counterText(c), planId, devices[i] as string]);
        last = c;
      }
      await appendEvents(t, [{ type: 'counters.consumed', planId, originator, counters: wanted.map(String), devices }]);
      return wanted;
    });
  }

  /**
   * Build (and sign) the next batch of commands: up to `limit` meters with a pending purpose, one
   * CS02b command each (mode 2 for a rotation, mode 8 for a compromise) replacing the supplier's
   * cells with the plan's new certificates. Each command's counter is recorded as consumed before
   * it is signed; each command is checked ({@link checkRecoveryCommand}) before it is signed; a
   * rotation signs with the key the meter trusts (`signFor`), a compromise through a signing
   * session of the Recovery party's key store bound to exactly these commands and approved by its
   * other operators. Signed commands are kept with their meters in state `built`.
   * @returns the commands (empty when nothing is pending)
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_RECOVERY_PLAN_STATE` (certificates not
   *   attached, plan complete), `ERR_RECOVERY_COUNTER_REUSED`, `ERR_RECOVERY_COMMAND_REFUSED`,
   *   `ERR_INVALID_ARGUMENT` (no `recovery` for a compromise; a limit out of range), and the key
   *   stores' (`ERR_PROPOSAL_QUORUM_NOT_MET` without the approvals, `ERR_OPERATOR_FORBIDDEN`, `ERR_KEY_REVOKED`, …)
   * @see docs/domain.md §9, docs/keystore-estate.md §2 (a session bound to messages)
   */
  async buildBatch(planId: string, options: BuildBatchOptions = {}): Promise<BuiltCommand[]> {
    const row = await this.#row(planId);
    if (row.state !== 'in-progress') fail('ERR_RECOVERY_PLAN_STATE', `plan ${planId} is ${row.state}`, row.state);
    const plan = planOf(row);
    const limit = options.limit ?? DEFAULT_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) fail('ERR_INVALID_ARGUMENT', `limit must be 1 to ${MAX_LIMIT}`, String(limit));
    if (plan.route === 'compromise' && options.recovery === undefined) fail('ERR_INVALID_ARGUMENT', "a compromise plan's commands are signed by the Recovery party: pass recovery", 'recovery');
    if (Number(row.enumerated) !== 1) await this.#enumerate(plan);

    const d = this.#d;
    const rows = await d.read((t) =>
      t.all<{ device: string; purposes: string }>(`SELECT device, ${d.groupConcat('purpose')} AS purposes FROM recovery_items WHERE plan_id = ? AND state = 'pending' GROUP BY device ORDER BY device LIMIT ?`, [plan.planId, limit]),
    );
    if (rows.length === 0) return [];

    const mode = plan.route === 'rotation' ? 2 : 8;
    const messageCode = UPDATE_SECURITY_CREDENTIALS_BASE_CODE + mode;
    const certificates: Partial<Record<RecoveryPurpose, Uint8Array>> = {};
    for (const p of plan.purposes) {
      const pem = (await this.#keystore.key(plan.newKeys[p] as string)).certificate;
      if (pem === undefined) fail('ERR_RECOVERY_PLAN_STATE', `the new ${p} key has no certificate`, p);
      certificates[p] = parseCertificate(pem as string).der;
    }
    const certificationPath = (JSON.parse(row.certification_path ?? '[]') as string[]).map((h) => fromHex(h));
    const recoveryCertificate = plan.route === 'compromise' ? recoveryCertificateOf(plan, options.recovery as RecoverySigning) : undefined;

    const counters = await this.#reserve(plan.planId, plan.originator, rows.map((r) => r.device));
    const pre = rows.map((r, i) => {
      const purposes = PURPOSES.filter((p) => r.purposes.split(',').includes(p));
      const counter = counters[i] as bigint;
      const wanted: Partial<Record<RecoveryPurpose, Uint8Array>> = {};
      for (const p of purposes) wanted[p] = certificates[p] as Uint8Array;
      const command = buildUpdateSecurityCredentials({
        originator: plan.originator,
        recipient: r.device,
        counter,
        mode,
        authorisingCell: { role: mode === 2 ? 2 : 1, keyUsage: 'digitalSignature' },
        replacements: purposes.map((p) => ({ certificate: certificates[p] as Uint8Array, cell: CELL[p] })),
        certificationPath,
        ...(options.executionTime !== undefined ? { executionTime: options.executionTime } : {}),
        ...(mode === 2 ? { authorisingFloor: 0n, authorisingUsageFloors: [{ usage: 0, floor: 0n }] } : { otherRoleFloors: [2, 3, 4, 5].map((role) => ({ role, floor: 0n })) }),
      });
      checkRecoveryCommand(command, { mode, originator: plan.originator, recipient: r.device, organisation: plan.organisation, certificates: wanted });
      return { device: r.device as Eui64, counter, purposes, command };
    });

    const signed: BuiltCommand[] = [];
    let failure: unknown;
    if (plan.route === 'rotation') {
      const signer = options.signer ?? this.#keystore;
      // One parse (and one public key) per key for the batch: the commands are signed at once, so
      // the map holds the lookup under way, not only its result.
      const certs = new Map<string, Promise<SmkiCertificate>>();
      const certificateOf = (keyId: string): Promise<SmkiCertificate> => {
        let c = certs.get(keyId);
        if (c === undefined) {
          c = this.#keystore.key(keyId).then((k) => parseCertificate(k.certificate as string));
          certs.set(keyId, c);
        }
        return c;
      };
      // Every command of the batch is signed at once: the key store makes each use record durable
      // in group commits, so concurrent signatures share their commits.
      const results = await settleInOrder(pre, async (c) => {
        // The meter's DS cell holds the key it trusts now (the old key; the new one once a retry follows a replaced DS cell).
        const trusted = (await this.#keystore.device(plan.organisation, c.device)).installed.signing;
        if (trusted === undefined) fail('ERR_RECOVERY_PLAN_STATE', `meter ${c.device} trusts no signing key of ${plan.organisation}`, c.device);
        const verifyWith = await certificateOf(trusted as string);
        const s: Signer = { publicKey: verifyWith.publicKeyBytes, sign: (data) => signer.signFor(c.device, data, { messageCode, counter: c.counter, ...(options.signer === undefined ? { organisation: plan.organisation } : {}) }) };
        return { ...c, command: checkSigned(await signPreCommand(c.command, s), verifyWith) };
      });
      signed.push(...results.signed);
      failure = results.failure;
    } else {
      try {
        const r = await this.#signAsRecovery(plan, pre, messageCode, options.recovery as RecoverySigning, recoveryCertificate as SmkiCertificate);
        signed.push(...r.signed);
        failure = r.failure;
      } catch (e) {
        failure = e;
      }
    }
    // What was signed is kept (its counter is consumed either way); what was not stays pending.
    // A meter another builder (another process on the same plan) built meanwhile keeps that
    // builder's command: this one is dropped, never returned, so a meter gets one command per attempt.
    const kept: BuiltCommand[] = [];
    if (signed.length > 0) {
      await d.write(async (t) => {
        const events: Record<string, unknown>[] = [];
        for (const c of signed) {
          const purposes: RecoveryPurpose[] = [];
          for (const p of c.purposes) {
            const n = await t.run("UPDATE recovery_items SET state = 'built', counter = ?, status = NULL WHERE plan_id = ? AND device = ? AND purpose = ? AND state = 'pending'", [counterText(c.counter), plan.planId, c.device, p]);
            if (n === 1) purposes.push(p);
          }
          if (purposes.length !== c.purposes.length) {
            if (purposes.length > 0) throw new SmkiError('ERR_RECOVERY_PLAN_STATE', `meter ${c.device} changed while its command was built`, { detail: c.device });
            continue;
          }
          await t.run('INSERT INTO recovery_commands (plan_id, device, counter, command) VALUES (?, ?, ?, ?)', [plan.planId, c.device, counterText(c.counter), c.command]);
          for (const p of purposes) events.push({ type: 'item', planId: plan.planId, device: c.device, purpose: p, state: 'built', counter: String(c.counter), commandSha256: sha256Hex(c.command) });
          kept.push(c);
        }
        await t.run('UPDATE recovery_plans SET updated_at = ? WHERE plan_id = ?', [this.#now().toISOString(), plan.planId]);
        await appendEvents(t, events);
      });
    }
    if (failure !== undefined) throw failure;
    return kept;
  }


  async #signAsRecovery(plan: RecoveryPlan, pre: readonly { device: Eui64; counter: bigint; purposes: RecoveryPurpose[]; command: Uint8Array }[], messageCode: number, r: RecoverySigning, certificate: SmkiCertificate): Promise<{ signed: BuiltCommand[]; failure: unknown }> {
    const store = r.store;
    const messages = pre.map((c) => ({ device: c.device, sha256: sha256Hex(signedBytes(parseMessage(c.command))) }));
    const digest = messageListDigest(messages);
    const operation: Operation = { op: 'session.sign', organisation: plan.originator, portfolioIds: [r.portfolioId], count: digest.count, messagesSha256: digest.listSha256 };
    const request = async () =>
      createOperatorRequest(r.operatorSigner, {
        storeId: store.storeId,
        operatorId: r.operatorId,
        counter: (await store.operator(r.operatorId)).lastCounter + 1n,
        issuedAt: this.#now(),
        operation,
      });
    const payload = { messages };
    const proposal = await store.propose(await request(), { payload });
    const approvals = await r.approve(
      Object.freeze({
        storeId: store.storeId,
        proposalId: proposal.proposalId,
        operationHash: proposal.operationHash,
        operation,
        commands: Object.freeze(pre.map((c) => Object.freeze({ device: c.device, counter: c.counter, command: c.command }))),
      }),
    );
    for (const a of approvals) await store.approve(a);
    const session = (await store.execute(await request(), { ...payload, proposalId: proposal.proposalId })) as { signFor: MeterSigner['signFor'] };
    // Signed at once (the Recovery store group-commits its use records).
    return settleInOrder(pre, async (c) => {
      const s: Signer = { publicKey: certificate.publicKeyBytes, sign: (data) => session.signFor(c.device, data, { messageCode, counter: c.counter }) };
      return { ...c, command: checkSigned(await signPreCommand(c.command, s), certificate) };
    });
  }

  /**
   * Record a meter's response to a command of the plan. The device's DS signature is verified
   * with `deviceCertificate` FIRST (the certificate must be that device's, for digitalSignature,
   * and validate to `deviceTrust`); then the response must answer a command of the plan still
   * awaiting its answer (the meter, the counter, the message code, the plan's originator as
   * recipient), and its per-cell outcome must fit the command. Each purpose becomes `replaced`
   * (the key store records that the meter now trusts the new key: `markCredentialsUpdated`) or
   * `failed` with the device's status. When every meter of a rotation is replaced, the old keys
   * are retired. A response without an outcome (`SEQUENCE { NULL }`) is accepted only for a
   * future-dated command: its items stay `built`, the plan records that it is scheduled, and the
   * alert 0x00CB brings the outcome later ({@link RecoveryPlans.recordAlert}). A response refused
   * changes nothing.
   * @throws SmkiError `ERR_RECOVERY_RESPONSE_SIGNATURE`, `ERR_RECOVERY_RESPONSE_UNMATCHED`,
   *   `ERR_RECOVERY_RESPONSE_OUTCOME` (no outcome for a command that was not future-dated, …),
   *   `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_GBCS_MALFORMED`, `ERR_CERT_MALFORMED`
   * @see docs/domain.md §9 (response: one outcome per requested cell, statuses; future-dated commands)
   */

  /**
   * Record a meter's response to a command of the plan. The device's DS signature is verified
   * with `deviceCertificate` FIRST (the certificate must be that device's, for digitalSignature,
   * and validate to `deviceTrust`); then the response must answer a command of the plan still
   * awaiting its answer (the meter, the counter, the message code, the plan's originator as
   * recipient), and its per-cell outcome must fit the command. Each purpose becomes `replaced`
   * (the key store records that the meter now trusts the new key: `markCredentialsUpdated`) or
   * `failed` with the device's status. When every meter of a rotation is replaced, the old keys
   * are retired. A response without an outcome (`SEQUENCE { NULL }`) is accepted only for a
   * future-dated command: its items stay `built`, the plan records that it is scheduled, and the
   * alert 0x00CB brings the outcome later ({@link RecoveryPlans.recordAlert}). A response refused
   * changes nothing. {@link RecoveryPlans.recordRecoveryResponse} takes responses and alerts alike.
   * @throws SmkiError `ERR_RECOVERY_RESPONSE_SIGNATURE`, `ERR_RECOVERY_RESPONSE_UNMATCHED`,
   *   `ERR_RECOVERY_RESPONSE_OUTCOME` (no outcome for a command that was not future-dated, …),
   *   `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_GBCS_MALFORMED`, `ERR_CERT_MALFORMED`
   * @see docs/domain.md §9 (response: one outcome per requested cell, statuses; future-dated commands)
   */
  async recordResponse(planId: string, response: Uint8Array, options: { readonly deviceCertificate: CertificateInput }): Promise<RecordedResponse> {
    const plan = planOf(await this.#row(planId));
    const m = this.#verifyDevice(response, options);

    const mode = plan.route === 'rotation' ? 2 : 8;
    if (m.cra !== 'response' || m.messageCode !== UPDATE_SECURITY_CREDENTIALS_BASE_CODE + mode || m.recipient !== plan.originator) {
      fail('ERR_RECOVERY_RESPONSE_UNMATCHED', `not a CS02b mode ${mode} response to ${plan.originator}`, `${m.cra}/${m.messageCode}`);
    }
    const items = await this.#awaiting(plan, m.originator, m.originatorCounter);

    let decoded;
    try {
      decoded = decodeUpdateSecurityCredentialsResponse(m.payload);
    } catch (e) {
      throw new SmkiError('ERR_RECOVERY_RESPONSE_OUTCOME', 'the response payload does not decode', { detail: m.originator }, { cause: e });
    }
    const outcome = decoded.outcome;
    if (outcome === undefined) {
      // No outcome: the meter accepted a future-dated command and will say later (alert 0x00CB).
      // Only a command the plan future-dated may be answered so.
      if ((await this.#executionTimeOf(plan, m.originator, m.originatorCounter)) === undefined) {
        fail('ERR_RECOVERY_RESPONSE_OUTCOME', 'the response carries no outcome, and the command was not future-dated', String(m.originatorCounter));
      }
      const at = this.#now().toISOString();
      await this.#d.write(async (t) => {
        await t.run('UPDATE recovery_plans SET updated_at = ? WHERE plan_id = ?', [at, plan.planId]);
        await appendEvents(t, [{ type: 'item.scheduled', planId: plan.planId, device: m.originator, purposes: PURPOSES.filter((p) => items.some((i) => i.purpose === p)), counter: String(m.originatorCounter), responseSha256: sha256Hex(response), at }]);
      });
      return Object.freeze({ device: m.originator, outcomes: Object.freeze([]), scheduled: true, planState: plan.state });
    }
    return this.#apply(plan, m.originator, items, outcome, mode, response, 'response');
  }

  /**
   * Record the alert 0x00CB a meter sends when a future-dated command of the plan was executed:
   * verified FIRST exactly as a response is (the device's DS signature with `deviceCertificate`,
   * which must be that device's and validate to `deviceTrust`); it must be an alert to the plan's
   * originator about a future-dated command of the plan still awaiting its outcome (the outcome's
   * sequence number is that command's counter, its mode the plan's). Code 0x8F66 applies the
   * outcome as a response would (per cell, `replaced` or `failed` with its status); 0x8F67 marks
   * every cell of the command `failed` with the status the alert gives it, and the key store is
   * told nothing. An alert refused changes nothing.
   * @throws SmkiError `ERR_RECOVERY_RESPONSE_SIGNATURE`, `ERR_RECOVERY_RESPONSE_UNMATCHED` (not an
   *   alert 0x00CB to the plan's originator; no future-dated command awaits it),
   *   `ERR_RECOVERY_RESPONSE_OUTCOME`, `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_GBCS_MALFORMED`,
   *   `ERR_CERT_MALFORMED`
   * @see docs/domain.md §9 (future-dated commands, alert 0x00CB: 0x8F66 success, 0x8F67 failure)
   */
  async recordAlert(planId: string, alert: Uint8Array, options: { readonly deviceCertificate: CertificateInput }): Promise<RecordedResponse> {
    const plan = planOf(await this.#row(planId));
    const m = this.#verifyDevice(alert, options);
    if (m.cra !== 'alert' || m.messageCode !== CREDENTIALS_ALERT_MESSAGE_CODE || m.recipient !== plan.originator) {
      fail('ERR_RECOVERY_RESPONSE_UNMATCHED', `not an alert 0x00CB to ${plan.originator}`, `${m.cra}/${m.messageCode}`);
    }
    let decoded;
    try {
      decoded = decodeCredentialsAlert(m.payload);
    } catch (e) {
      throw new SmkiError('ERR_RECOVERY_RESPONSE_OUTCOME', 'the alert payload does not decode', { detail: m.originator }, { cause: e });
    }
    const counter = decoded.outcome.sequenceNumber;
    const items = await this.#awaiting(plan, m.originator, counter);
    if ((await this.#executionTimeOf(plan, m.originator, counter)) === undefined) {
      fail('ERR_RECOVERY_RESPONSE_UNMATCHED', `the command to ${m.originator} with counter ${counter} was not future-dated: its outcome comes in its response`, String(counter));
    }
    const mode = plan.route === 'rotation' ? 2 : 8;
    const failure = decoded.code !== CREDENTIALS_ALERT_CODES.success;
    return this.#apply(plan, m.originator, items, decoded.outcome, mode, alert, failure ? 'alert.failure' : 'alert.success');
  }

  /**
   * Feed back what a meter sent about a command of the plan, whatever it is: a response (CRA
   * `response`) goes to {@link RecoveryPlans.recordResponse}, an alert (CRA `alert`, 0x00CB) to
   * {@link RecoveryPlans.recordAlert}; each verifies the device's signature first and changes
   * nothing when it refuses.
   * @throws SmkiError as {@link RecoveryPlans.recordResponse} and {@link RecoveryPlans.recordAlert}
   * @see docs/domain.md §9
   */
  async recordRecoveryResponse(planId: string, message: Uint8Array, options: { readonly deviceCertificate: CertificateInput }): Promise<RecordedResponse> {
    const m = parseMessage(message);
    return m.cra === 'alert' ? this.recordAlert(planId, message, options) : this.recordResponse(planId, message, options);
  }

  /** Parse a device's message and verify it FIRST: the certificate is the device's DS certificate, validates to the device trust, and verifies the signature. */
  #verifyDevice(bytes: Uint8Array, options: { readonly deviceCertificate: CertificateInput }): GbcsMessage {
    const m = parseMessage(bytes);
    const cert: SmkiCertificate = typeof options?.deviceCertificate === 'object' && !(options.deviceCertificate instanceof Uint8Array) ? options.deviceCertificate : parseCertificate(options?.deviceCertificate as string | Uint8Array);
    if (cert.entityId !== m.originator || !cert.keyUsage.includes('digitalSignature') || cert.publicKey === undefined) {
      fail('ERR_RECOVERY_RESPONSE_SIGNATURE', `the certificate is not the DS certificate of ${m.originator}`, String(cert.entityId));
    }
    // The certificate itself is believed only if it chains to the device trust (a certificate the
    // caller was handed proves nothing on its own).
    const path = this.#deviceTrust.validate(cert, { at: this.#now() });
    if (!path.valid || cert.kind !== 'device') {
      const why = path.findings.find((f) => f.severity === 'error');
      fail('ERR_RECOVERY_RESPONSE_SIGNATURE', `${m.originator}'s certificate does not validate to the device trust${why ? `: ${why.message}` : ''}`, m.originator);
    }
    if (!verifySignature(m, cert.publicKey as NonNullable<SmkiCertificate['publicKey']>)) fail('ERR_RECOVERY_RESPONSE_SIGNATURE', `the message does not verify with ${m.originator}'s certificate`, m.originator);
    return m;
  }

  /** The items of a command of the plan to `device` with `counter` that await their outcome (refused when none). */
  async #awaiting(plan: RecoveryPlan, device: Eui64, counter: bigint): Promise<ItemRow[]> {
    const items = await this.#d.read((t) =>
      t.all<ItemRow>("SELECT device, purpose, state, attempt, counter, status FROM recovery_items WHERE plan_id = ? AND device = ? AND counter = ? AND state = 'built'", [plan.planId, device, counterText(counter)]),
    );
    if (items.length === 0) fail('ERR_RECOVERY_RESPONSE_UNMATCHED', `no command of plan ${plan.planId} to ${device} with counter ${counter} awaits an answer`, String(counter));
    return items;
  }

  /** The execution time of the plan's kept command to `device` with `counter`, or undefined for one executed at once. */
  async #executionTimeOf(plan: RecoveryPlan, device: Eui64, counter: bigint): Promise<Date | undefined> {
    const r = await this.#d.read((t) => t.get<{ command: Uint8Array }>('SELECT command FROM recovery_commands WHERE plan_id = ? AND device = ? AND counter = ?', [plan.planId, device, counterText(counter)]));
    if (r === undefined) return undefined;
    return decodeUpdateSecurityCredentialsCommand(new Uint8Array(r.command)).payload.executionTime;
  }

  /** Apply an execution outcome (from a response or an alert) to a command's built items. */
  async #apply(plan: RecoveryPlan, device: Eui64, items: readonly ItemRow[], o: CredentialsExecutionOutcome, mode: number, bytes: Uint8Array, source: 'response' | 'alert.success' | 'alert.failure'): Promise<RecordedResponse> {
    const counter = BigInt(items[0]?.counter as string);
    if (o.sequenceNumber !== counter || o.mode !== mode) fail('ERR_RECOVERY_RESPONSE_OUTCOME', `the outcome is for counter ${o.sequenceNumber}, mode ${o.mode}`, String(o.sequenceNumber));
    const purposes = items.map((i) => i.purpose as RecoveryPurpose);
    const results: { purpose: RecoveryPurpose; state: 'replaced' | 'failed'; status: number }[] = [];
    for (const [i, r] of o.results.entries()) {
      const p = (PURPOSES as readonly RecoveryPurpose[]).find((x) => CELL[x].role === r.cell.role && CELL[x].keyUsage === r.cell.keyUsage && (r.cell.cellUsage ?? 'management') === 'management');
      if (p === undefined || !purposes.includes(p) || results.some((x) => x.purpose === p)) fail('ERR_RECOVERY_RESPONSE_OUTCOME', `outcome ${i} is for a cell the command did not replace`, `${r.cell.role}/${r.cell.keyUsage}`);
      const purpose = p as RecoveryPurpose;
      // A failure alert fails every cell, whatever status a cell reports: the key store is told
      // nothing, and a retry sends the meter a new command.
      const replaced = r.status === 0 && source !== 'alert.failure';
      if (replaced) {
        const newCert = parseCertificate((await this.#keystore.key(plan.newKeys[purpose] as string)).certificate as string);
        if (r.newEntityId !== plan.organisation || r.newKeyId.toUpperCase() !== String(newCert.subjectKeyId).toUpperCase()) {
          fail('ERR_RECOVERY_RESPONSE_OUTCOME', `outcome ${i} reports success with another key (${r.newKeyId})`, r.newKeyId);
        }
      }
      results.push({ purpose, state: replaced ? 'replaced' : 'failed', status: r.status });
    }
    if (results.length !== purposes.length) fail('ERR_RECOVERY_RESPONSE_OUTCOME', `${results.length} outcome(s) for ${purposes.length} replaced cell(s)`, String(results.length));

    // The key store first (idempotent): a crash before the plan commits leaves the item built, and the same response records it again.
    for (const r of results) {
      if (r.state !== 'replaced') continue;
      await this.#keyOp(plan.planId, { op: 'device.credentialsUpdated', organisation: plan.organisation, device, purpose: r.purpose }, () => this.#keystore.markCredentialsUpdated(plan.organisation, device, r.purpose));
    }
    const at = this.#now().toISOString();
    const digest = source === 'response' ? { responseSha256: sha256Hex(bytes) } : { alertSha256: sha256Hex(bytes), alert: source };
    await this.#d.write(async (t) => {
      for (const r of results) await t.run("UPDATE recovery_items SET state = ?, status = ? WHERE plan_id = ? AND device = ? AND purpose = ? AND state = 'built'", [r.state, r.status, plan.planId, device, r.purpose]);
      await t.run('UPDATE recovery_plans SET updated_at = ? WHERE plan_id = ?', [at, plan.planId]);
      await appendEvents(
        t,
        results.map((r) => ({ type: 'item', planId: plan.planId, device, purpose: r.purpose, state: r.state, status: r.status, counter: String(counter), ...digest })),
      );
    });
    const planState = await this.#completeIfDone(plan);
    return Object.freeze({ device, outcomes: Object.freeze(results.map((r) => Object.freeze(r))), planState });
  }

  /** When every meter-purpose is replaced: retire a rotation's old keys, and mark the plan complete. */
  async #completeIfDone(plan: RecoveryPlan): Promise<PlanState> {
    const open = await this.#d.read((t) => t.get<{ n: number }>("SELECT count(*) AS n FROM recovery_items WHERE plan_id = ? AND state <> 'replaced'", [plan.planId]));
    if (Number(open?.n) > 0) return plan.state;
    if (plan.route === 'rotation') {
      for (const p of plan.purposes) {
        const id = plan.oldKeys[p] as string;
        const info = await this.#keystore.key(id);
        if (info.state !== 'retired') await this.#keyOp(plan.planId, { op: 'key.retire', keyId: id }, () => this.#keystore.retire(id));
      }
    }
    const at = this.#now().toISOString();
    await this.#d.write(async (t) => {
      const n = await t.run("UPDATE recovery_plans SET state = 'complete', updated_at = ? WHERE plan_id = ? AND state <> 'complete'", [at, plan.planId]);
      if (n === 1) await appendEvents(t, [{ type: 'plan.state', planId: plan.planId, state: 'complete', at }]);
    });
    return 'complete';
  }

  /**
   * Send a failed meter again: its failed purposes go back to `pending`, and the next batch builds
   * a new command with a new counter.
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_RECOVERY_PLAN_STATE` (nothing failed for that meter)
   */
  async retry(planId: string, device: string): Promise<void> {
    await this.#move(planId, device, 'failed', 'pending');
  }

  /**
   * Give up on a failed meter: its failed purposes become `escalated` (for people to handle; the
   * plan does not complete while any is).
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`, `ERR_RECOVERY_PLAN_STATE`
   */
  async escalate(planId: string, device: string, reason: string): Promise<void> {
    await this.#move(planId, device, 'failed', 'escalated', String(reason).slice(0, 500));
  }

  async #move(planId: string, device: string, from: ItemState, to: ItemState, reason?: string): Promise<void> {
    const plan = planOf(await this.#row(planId));
    const eui = parseEui64(device);
    await this.#d.write(async (t) => {
      const rows = await t.all<{ purpose: string; attempt: number }>('SELECT purpose, attempt FROM recovery_items WHERE plan_id = ? AND device = ? AND state = ?', [plan.planId, eui, from]);
      if (rows.length === 0) fail('ERR_RECOVERY_PLAN_STATE', `meter ${eui} has nothing ${from} in plan ${plan.planId}`, eui);
      const attempt = to === 'pending' ? 1 : 0;
      await t.run('UPDATE recovery_items SET state = ?, attempt = attempt + ? WHERE plan_id = ? AND device = ? AND state = ?', [to, attempt, plan.planId, eui, from]);
      await t.run('UPDATE recovery_plans SET updated_at = ? WHERE plan_id = ?', [this.#now().toISOString(), plan.planId]);
      await appendEvents(t, rows.map((r) => ({ type: 'item', planId: plan.planId, device: eui, purpose: r.purpose, state: to, attempt: Number(r.attempt) + attempt, ...(reason !== undefined ? { reason } : {}) })));
    });
  }

  /**
   * Where a plan stands: meter-purposes per state, and per purpose how many meters still trust
   * the old key (the key store's exposure report; it falls to zero as meters confirm). A plan
   * `declared` (its first step interrupted) shows so, with no meters yet.
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`
   */
  async status(planId: string): Promise<PlanStatus> {
    const plan = planOf(await this.#row(planId));
    const counts: Record<ItemState, number> = { pending: 0, built: 0, replaced: 0, failed: 0, escalated: 0 };
    const rows = await this.#d.read((t) => t.all<{ state: ItemState; n: number }>('SELECT state, count(*) AS n FROM recovery_items WHERE plan_id = ? GROUP BY state', [plan.planId]));
    for (const r of rows) counts[r.state] = Number(r.n);
    const exposure = await this.#keystore.exposureReport(plan.organisation);
    const remaining: Partial<Record<RecoveryPurpose, number>> = {};
    for (const p of plan.purposes) remaining[p] = exposure.find((e) => e.keyId === plan.oldKeys[p])?.deviceCount ?? 0;
    return Object.freeze({ plan, counts: Object.freeze(counts), remaining: Object.freeze(remaining) });
  }

  /**
   * The commands kept for a meter (oldest counter first), e.g. to send again after a restart.
   * @throws SmkiError `ERR_RECOVERY_PLAN_NOT_FOUND`
   */
  async commands(planId: string, device: string): Promise<KeptCommand[]> {
    const plan = planOf(await this.#row(planId));
    const eui = parseEui64(device);
    const rows = await this.#d.read((t) => t.all<{ counter: string; command: Uint8Array }>('SELECT counter, command FROM recovery_commands WHERE plan_id = ? AND device = ? ORDER BY counter', [plan.planId, eui]));
    return rows.map((r) => Object.freeze({ counter: BigInt(r.counter), command: new Uint8Array(r.command) }));
  }

  /** Every counter the plan database recorded as consumed by `originator`, in order. */
  async countersUsed(originator: string): Promise<bigint[]> {
    const eui = parseEui64(originator);
    const rows = await this.#d.read((t) => t.all<{ counter: string }>('SELECT counter FROM recovery_counters WHERE originator = ? ORDER BY counter', [eui]));
    return rows.map((r) => BigInt(r.counter));
  }

  /**
   * Verify the plan database's history: the SHA-256 chain of `recovery_events` (each record's
   * hash over the previous hash, its number and its event), and every plan's state and new keys,
   * every meter's state and every consumed counter against what the events replay to.
   * @see docs/domain.md §9
   */
  async verifyPlanHistory(): Promise<PlanHistoryVerification> {
    const snapshot = await this.#d.read(async (t) => ({
      events: await t.all<{ seq: number; prev_hash: string; event: string; hash: string }>('SELECT seq, prev_hash, event, hash FROM recovery_events ORDER BY seq'),
      plans: await t.all<{ plan_id: string; state: string; new_signing: string | null; new_key_agreement: string | null }>('SELECT plan_id, state, new_signing, new_key_agreement FROM recovery_plans'),
      items: await t.all<{ plan_id: string; device: string; purpose: string; state: string }>('SELECT plan_id, device, purpose, state FROM recovery_items'),
      counters: await t.all<{ originator: string; counter: string }>('SELECT originator, counter FROM recovery_counters'),
    }));
    const problems: string[] = [];
    let prev: string = GENESIS;
    let n = 0;
    const plans = new Map<string, string>();
    const newKeys = new Map<string, Partial<Record<RecoveryPurpose, string>>>();
    const items = new Map<string, string>();
    const counters = new Set<string>();
    for (const e of snapshot.events) {
      n += 1;
      const seq = Number(e.seq);
      if (seq !== n) problems.push(`event ${seq}: expected number ${n}`);
      if (e.prev_hash !== prev) problems.push(`event ${seq}: does not follow the hash before it`);
      if (eventHash(e.prev_hash, seq, e.event) !== e.hash) problems.push(`event ${seq}: its hash does not match its content`);
      prev = e.hash;
      let ev: Record<string, unknown>;
      try {
        ev = JSON.parse(e.event) as Record<string, unknown>;
      } catch {
        problems.push(`event ${seq}: not JSON`);
        continue;
      }
      const planId = String(ev['planId']);
      if (ev['type'] === 'plan.created') {
        plans.set(planId, String(ev['state']));
        newKeys.set(planId, { ...((ev['newKeys'] ?? {}) as Partial<Record<RecoveryPurpose, string>>) });
      } else if (ev['type'] === 'plan.state') plans.set(planId, String(ev['state']));
      else if (ev['type'] === 'plan.key') newKeys.set(planId, { ...newKeys.get(planId), [String(ev['purpose'])]: String(ev['keyId']) });
      else if (ev['type'] === 'plan.enumerated') for (const [dev, p] of ev['items'] as [string, string][]) items.set(`${planId}/${dev}/${p}`, 'pending');
      else if (ev['type'] === 'item') items.set(`${planId}/${String(ev['device'])}/${String(ev['purpose'])}`, String(ev['state']));
      else if (ev['type'] === 'counters.consumed') for (const c of ev['counters'] as string[]) counters.add(`${String(ev['originator'])}/${counterText(BigInt(c))}`);
    }
    for (const r of snapshot.plans) {
      if (plans.get(r.plan_id) !== r.state) problems.push(`plan ${r.plan_id}: state ${r.state}, its history says ${String(plans.get(r.plan_id))}`);
      const keys = newKeys.get(r.plan_id) ?? {};
      if ((keys.signing ?? null) !== r.new_signing || (keys.keyAgreement ?? null) !== r.new_key_agreement) problems.push(`plan ${r.plan_id}: its new keys are not the ones its history records`);
      plans.delete(r.plan_id);
    }
    for (const id of plans.keys()) problems.push(`plan ${id}: in the history, not in the database`);
    for (const r of snapshot.items) {
      const k = `${r.plan_id}/${r.device}/${r.purpose}`;
      if (items.get(k) !== r.state) problems.push(`${k}: state ${r.state}, its history says ${String(items.get(k))}`);
      items.delete(k);
    }
    for (const k of items.keys()) problems.push(`${k}: in the history, not in the database`);
    for (const r of snapshot.counters) {
      if (!counters.delete(`${r.originator}/${r.counter}`)) problems.push(`counter ${r.originator}/${BigInt(r.counter)}: not in the history`);
    }
    for (const k of counters) problems.push(`counter ${k}: in the history, not in the database`);
    const findings: Finding[] = problems.map((message) => Object.freeze({ code: 'ERR_RECOVERY_HISTORY_BROKEN' as const, message, severity: 'error' as const }));
    return Object.freeze({ ok: findings.length === 0, events: n, head: prev, problems: Object.freeze(findings) });
  }
}

/** The Recovery party's DS certificate, refused unless it is the plan originator's (role 1, digitalSignature). */
function recoveryCertificateOf(plan: RecoveryPlan, r: RecoverySigning): SmkiCertificate {
  const certificate = parseCertificate(typeof r.certificate === 'object' && !(r.certificate instanceof Uint8Array) ? r.certificate.der : r.certificate);
  if (certificate.role !== 1 || certificate.entityId !== plan.originator || certificate.keyUsage.length !== 1 || certificate.keyUsage[0] !== 'digitalSignature') {
    throw new SmkiError('ERR_RECOVERY_COMMAND_REFUSED', "the Recovery certificate is not the plan originator's DS certificate (role 1)", { detail: String(certificate.entityId) });
  }
  return certificate;
}

/** A signed command is kept only if its signature verifies with the certificate of the key that should have made it (fail closed). */
function checkSigned(command: Uint8Array, certificate: SmkiCertificate): Uint8Array {
  if (certificate.publicKey === undefined || !verifySignature(command, certificate.publicKey)) {
    throw new SmkiError('ERR_RECOVERY_COMMAND_REFUSED', 'the signature on the command does not verify with the authorising certificate', { detail: certificate.serialNumber });
  }
  return command;
}

/**
 * Run `f` on every item at once; what succeeded (in the items' order) and the first failure (in
 * the items' order), if any. Nothing is left running when it returns.
 */
async function settleInOrder<T, R>(items: readonly T[], f: (item: T) => Promise<R>): Promise<{ signed: R[]; failure: unknown }> {
  const settled = await Promise.allSettled(items.map((item) => f(item)));
  const signed: R[] = [];
  let failure: unknown;
  for (const r of settled) {
    if (r.status === 'fulfilled') signed.push(r.value);
    else if (failure === undefined) failure = r.reason;
  }
  return { signed, failure };
}
