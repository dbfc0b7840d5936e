import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SmkiError, eui64ToBytes, isP256Point, parseEui64 } from '@smki/core';
import type { Eui64, KeyAgreement, SmkiErrorCode } from '@smki/core';
import {
  ACTIVATE_FIRMWARE_MESSAGE_CODE,
  CREDENTIALS_ALERT_CODES,
  CREDENTIALS_ALERT_MESSAGE_CODE,
  CREDENTIALS_MODES,
  CREDENTIALS_STATUS,
  MAX_MESSAGE_BYTES,
  UPDATE_SECURITY_CREDENTIALS_BASE_CODE,
  apduBytes,
  buildGeneralCiphering,
  computeMacBytes,
  createCatalogue,
  decodeActivateFirmware,
  decodeCredentialsAlert,
  decodeDlmsInvokeCounter,
  decodeUpdateSecurityCredentialsCommand,
  decodeUpdateSecurityCredentialsResponse,
  kdf,
  macAad,
  otherInfo,
  parseMessage,
  verifySignature,
} from '@smki/gbcs';
import type { Catalogue, CredentialsExecutionOutcome, CredentialsModeEntry, DecodedUpdateSecurityCredentialsCommand, DeviceFuel, GbcsMessage } from '@smki/gbcs';
import { OID, isParsedCertificate, parseCertificate } from '@smki/pki';
import type { SmkiCertificate } from '@smki/pki';
import { MAX_ANOMALY_LIMIT, MAX_COMMIT_ENTRIES } from '@smki/store';
import type { CellReplacement, CommitEntry, CommitOutcome, DeviceRecord, QuarantineRecord, StateStore } from '@smki/store';
import type { DuisTrust } from '@smki/duis';
import { DuisRefusal, checkDuisRequest } from './internal/duis.js';
import type { DuisChecked } from './internal/duis.js';
import { DecisionCommitter } from './internal/log.js';
import type { DecisionRecord, PendingDecision } from './internal/log.js';
import { Lru } from './internal/lru.js';
import { MAX_PORTFOLIO_LOOKUP, TrustState } from './internal/trust.js';
import { buildDcoEnvelope } from './smets1.js';
import type {
  AcceptedDecision,
  AnomalyThreshold,
  BatchCommand,
  CommandContext,
  CredentialsCellResult,
  CredentialsResponseResult,
  CrlStatus,
  Decision,
  DecisionStep,
  DuisDecision,
  QuarantinedDecision,
  RejectedDecision,
  ValidatorDuisOptions,
  ValidatorEvent,
  ValidatorOptions,
  ValidatorStats,
  ValidatorTrust,
} from './types.js';

const SUPPLIER = 2;
const NETWORK_OPERATOR = 3;
const USER_ROLES = [SUPPLIER, NETWORK_OPERATOR] as const;
/** The Remote Party Roles that authorise a CS02b mode a User sends (docs/domain.md §10): recovery, supplier, network operator, transitional change of supplier, WAN provider. */
const CREDENTIALS_ROLES = [1, 2, 3, 5, 6] as const;
const CS02B_FIRST = UPDATE_SECURITY_CREDENTIALS_BASE_CODE;
const CS02B_LAST = UPDATE_SECURITY_CREDENTIALS_BASE_CODE + 9;
/** The most accepted CS02b commands whose decoded form is cached (the store keeps every one pending). */
const MAX_PENDING_CREDENTIALS = 100_000;
const DLMS_ACCESS_REQUEST = 0xd9;
const DEFAULT_CLOCK_WINDOW_MS = 300_000;
const DEFAULT_CRL_WARNING_MS = 6 * 3600_000;
const DEFAULT_CACHE_SIZE = 100_000;
const DEFAULT_Z_TTL_MS = 3600_000;
const LOG_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
/** Most commands in one {@link Validator.validateBatch} call. */
export const MAX_BATCH = MAX_COMMIT_ENTRIES;

/** A rule broke: carried to the boundary of the decision, never out of it. */
class Reject {
  constructor(
    readonly code: SmkiErrorCode,
    readonly step: DecisionStep,
    readonly message: string,
  ) {}
}

const reject = (code: SmkiErrorCode, step: DecisionStep, message: string): never => {
  throw new Reject(code, step, message);
};

/** What steps 1–9 established for a command that passed them. */
interface Checked {
  readonly message: GbcsMessage;
  readonly sender: Eui64;
  readonly device: DeviceRecord;
  readonly role: number;
  readonly critical: boolean;
  readonly signerSerial?: string;
  readonly frame: Uint8Array;
  readonly threshold?: AnomalyThreshold;
  /** DCO mode: the command crossed its threshold (detected, not held). */
  readonly anomaly: boolean;
  readonly now: number;
  readonly commandHash: string;
  /** A CS02b command: what it replaces, remembered on acceptance for the device's answer. */
  readonly credentials?: PassedCredentials;
}

/** What the device's answer to an accepted CS02b command is checked against (kept in the store as the command itself). */
interface PassedCredentials {
  readonly command: DecodedUpdateSecurityCredentialsCommand;
  /** The replacement certificates' SKIs and entities, in the command's order. */
  readonly targets: readonly { readonly ski: string; readonly entity: Eui64 | undefined }[];
}

/** A device's key-agreement key as the ECDH takes it: the certificate's checked point (no KeyObject: making one costs more than the ECDH). */
interface DeviceKey {
  readonly der: Uint8Array;
  readonly point: Uint8Array;
  readonly ski: string;
  /** The device's system title as bytes (the KDF's recipient). */
  readonly title: Uint8Array;
}

interface Release {
  readonly id: string;
  readonly operator: string;
}

/**
 * The DCC-side decision on a User's signed pre-command: verify it, check role, portfolio,
 * revocation, replay, firmware and anomalies, and counter-sign it with the ACB MAC.
 *
 * The steps, each with its own code (a rejection changes no state; every decision is logged):
 * 1. parse (bounded), a CRA command for a device in the registry, originator = the authenticated sender;
 * 2. the originator's role from its organisation signing certificate, classified with the catalogue
 *    (message code, role, device fuel); the originator must be the device's responsible party for
 *    that role; a critical command must carry a User signature (a non-critical one skips 3–5);
 * 3. the signer: the certificate in **this device's** trust-anchor cell for the role;
 * 4. that certificate's path, revocation required (verdicts cached);
 * 5. the ECDSA signature over the bytes as received (high-S accepted); if it fails but another of
 *    the originator's signing certificates verifies it: `ERR_COMMAND_PORTFOLIO_MISMATCH`;
 * 5a. CS02b (0x0100–0x0109) only: its role is its mode's authorising role (step 2), it is always
 *    critical, and after the signature its payload keeps its mode's rules ([3] = the counter,
 *    target cells, certificates fit their cells) and every replacement certificate validates to
 *    the root with revocation; {@link Validator.recordCredentialsResponse} later moves the
 *    device's cells on its verified answer;
 * 6. anti-replay: counter not too far ahead of the clock; a payload's own counter equal to the
 *    header's (the strictly-greater check is part of the commit);
 * 7. firmware: a CS06 activation's image must be approved for the device's model;
 * 8. anomaly thresholds per (User, message code, window): over it, quarantine;
 * 9. the ACB MAC and the general-ciphering frame;
 * 10. one atomic commit of the counter, the anomaly count and the decision record; the frame is
 *     returned only after it is durable.
 *
 * A signed pre-command that arrives as a signed DUIS Request goes through
 * {@link Validator.validateDuisRequest}: the XML signature and its binding to the GBCS command
 * first, then these steps.
 *
 * @see docs/validator.md
 */
export class Validator {
  readonly #o: ValidatorOptions;
  readonly #store: StateStore;
  readonly #catalogue: Catalogue;
  readonly #committer: DecisionCommitter;
  readonly #now: () => Date;
  readonly #clockWindow: bigint | undefined;
  readonly #crlWarningMs: number;
  readonly #cacheSize: number;
  readonly #deviceKeys: Lru<Eui64, DeviceKey>;
  readonly #titles = new Map<Eui64, Uint8Array>();
  /** A cache of the pending CS02b commands this validator accepted, decoded, by the SHA-256 of the command as received; the store's pending commands are the truth. */
  readonly #passedCredentials = new Lru<string, PassedCredentials>(MAX_PENDING_CREDENTIALS);
  readonly #zCache: Lru<string, Uint8Array> | undefined;
  readonly #zTtl: number;
  #trust: TrustState;
  #duis: ValidatorDuisOptions | undefined;
  #closed = false;
  /** Calls made and not yet answered (close waits for them). */
  readonly #inflight = new Set<Promise<unknown>>();
  #accepted = 0;
  #quarantined = 0;
  readonly #rejected = new Map<string, number>();
  #warnedUntil = -Infinity;

  private constructor(options: ValidatorOptions, trust: TrustState, committer: DecisionCommitter, cacheSize: number) {
    this.#o = options;
    this.#store = options.store;
    this.#catalogue = options.catalogue ?? createCatalogue();
    this.#committer = committer;
    this.#now = options.now ?? (() => new Date());
    this.#clockWindow = options.counterClockWindowMs === false ? undefined : BigInt(options.counterClockWindowMs ?? DEFAULT_CLOCK_WINDOW_MS);
    this.#crlWarningMs = options.crlWarningMs ?? DEFAULT_CRL_WARNING_MS;
    this.#cacheSize = cacheSize;
    this.#trust = trust;
    this.#duis = options.duis;
    this.#deviceKeys = new Lru(cacheSize);
    const z = options.sharedSecretCache;
    this.#zCache = z ? new Lru(z.maxEntries ?? DEFAULT_CACHE_SIZE) : undefined;
    this.#zTtl = z ? (z.ttlMs ?? DEFAULT_Z_TTL_MS) : 0;
  }

  /**
   * Open a validator: checks the options, opens the decision log against the state store and
   * refuses to start when the store is behind the log (restored from an older copy).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`; `ERR_VALIDATOR_STATE_BEHIND` (fail closed until an
   *   operator resolves it); `ERR_AUDIT_TAMPERED` / `ERR_AUDIT_TRUNCATED` (the log does not verify);
   *   `ERR_STORE_UNAVAILABLE`
   */
  static async open(options: ValidatorOptions): Promise<Validator> {
    checkOptions(options);
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    const trust = new TrustState(options.trust, cacheSize);
    const committer = await DecisionCommitter.open(options.store, {
      dir: options.log.dir,
      id: options.log.id,
      key: options.log.key,
      max: MAX_COMMIT_ENTRIES,
      ...(options.now ? { now: options.now } : {}),
    });
    return new Validator(options, trust, committer, cacheSize);
  }

  /**
   * Validate one signed pre-command. Never throws for the command's sake: every outcome is a
   * {@link Decision}; a store failure is a rejection with `ERR_STORE_UNAVAILABLE` (no frame).
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`
   */
  async validate(bytes: Uint8Array, context: CommandContext): Promise<Decision> {
    this.#assertOpen();
    this.#checkCrls();
    return this.#track(this.#validateOne(bytes, context?.sender));
  }

  /**
   * Validate a signed pre-command that arrives as a signed DUIS Request, the User's answer to a
   * pre-command (body `sr:SignedPreCommand`, docs/domain.md §8). Needs {@link ValidatorOptions.duis}.
   *
   * First the DUIS step, each refusal with its code at step `duis`: the XML signature under the
   * profile (`verifyDuis`: the certificate by issuer and serial, its path and revocation, role 135,
   * the request id's originator); the body is `sr:SignedPreCommand` (`ERR_DUIS_DOCUMENT_KIND`);
   * the GBCS header's originator and recipient are the request id's (`ERR_DUIS_GBCS_MISMATCH`);
   * the XML signer's entity is the GBCS originator (`ERR_DUIS_SIGNER_NOT_ORIGINATOR`); then, with
   * `duis.replay`, the request id is claimed in the DUIS store (`ERR_DUIS_STALE`,
   * `ERR_DUIS_REPLAYED`, `ERR_DUIS_PRECOMMAND_UNEXPECTED`). Then exactly the decision of
   * {@link Validator.validate} on the GBCS bytes the document carries, with the XML signer as the
   * authenticated sender.
   *
   * Like {@link Validator.validate}, it never throws for the document's sake: a DUIS refusal is a
   * rejected decision with its `ERR_DUIS_*` code (a GBCS payload that does not parse:
   * `ERR_GBCS_MALFORMED` at `parse`; the DUIS store unreachable: its store code at `commit`),
   * logged as a `command.rejected` record whose `commandHash` is the SHA-256 of the document as
   * received. No GBCS state (counter, anomaly window, quarantine) moves unless the XML signature
   * verified and every DUIS check passed.
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`; `ERR_INVALID_ARGUMENT` (the validator was opened without `duis`)
   * @see docs/domain.md §8, docs/validator.md
   */
  async validateDuisRequest(xml: string | Uint8Array): Promise<DuisDecision> {
    this.#assertOpen();
    const duis = this.#duis;
    if (duis === undefined) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the validator was opened without options.duis: it takes no DUIS requests', { detail: 'duis' });
    this.#checkCrls();
    return this.#track(this.#validateDuis(xml, duis));
  }

  async #validateDuis(input: unknown, duis: ValidatorDuisOptions): Promise<DuisDecision> {
    // A private copy: what is verified, hashed and decided on is one and the same document.
    const doc = typeof input === 'string' ? input : input instanceof Uint8Array ? Uint8Array.from(input) : undefined;
    let checked: DuisChecked;
    try {
      if (doc === undefined) throw new DuisRefusal(new SmkiError('ERR_DUIS_MALFORMED', 'the request is not a string or a Uint8Array', {}), undefined, undefined, undefined);
      checked = await checkDuisRequest(doc, duis, this.#now());
    } catch (e) {
      if (!(e instanceof DuisRefusal)) throw e;
      const raw = typeof doc === 'string' ? new TextEncoder().encode(doc) : (doc ?? EMPTY);
      const code = e.error.code;
      const d = await this.#committer.submitOne(this.#rejection(raw, e.gbcs, code, duisStep(code), e.error.message, undefined, e.sender));
      return { ...(d as RejectedDecision), ...(e.request ? { request: e.request } : {}) };
    }
    // 5. The GBCS decision on the bytes as verified, from the XML signer.
    const d = await this.#validateOne(checked.signedPreCommand, checked.sender);
    return { ...d, request: checked.request } as DuisDecision;
  }

  /** One command: {@link Validator.validateBatch} of one, without the arrays. */
  async #validateOne(bytes: Uint8Array, sender: unknown): Promise<Decision> {
    const decision = await this.#committer.submitOne(await this.#check(bytes, sender));
    return this.#o.dco ? ((await this.#envelopes([{ bytes, sender } as BatchCommand], [decision]))[0] as Decision) : decision;
  }

  /**
   * Validate several commands with one store transaction. Decisions come back in order; a
   * counter repeated within the batch is accepted once (the later copies are replays).
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`; `ERR_INVALID_ARGUMENT` (not an array, or more than {@link MAX_BATCH})
   */
  async validateBatch(commands: readonly BatchCommand[]): Promise<Decision[]> {
    this.#assertOpen();
    if (!Array.isArray(commands) || commands.length > MAX_BATCH) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', `validateBatch takes an array of at most ${MAX_BATCH} commands`, { detail: 'commands' });
    }
    this.#checkCrls();
    return this.#track(this.#validateBatch(commands));
  }

  async #validateBatch(commands: readonly BatchCommand[]): Promise<Decision[]> {
    const pending = await Promise.all(commands.map((c) => this.#check(c?.bytes, c?.sender)));
    const decisions = await this.#committer.submit(pending);
    return this.#o.dco ? this.#envelopes(commands, decisions) : decisions;
  }

  /**
   * Record a device's answer to a CS02b Update Security Credentials command this validator
   * accepted, and move the device's trust in the registry (docs/domain.md §9):
   * 1. `command` (the signed pre-command as it was given to {@link Validator.validate}) must be a
   *    CS02b command pending in the state store: accepted by a validator over this store (this
   *    one, another process's, or one before a restart), its answer not yet applied;
   * 2. `answer` is the device's response (CRA 02, the command's message code and counter, from the
   *    device to the command's originator) or its alert 0x00CB (CRA 03) for a future-dated command;
   * 3. its signature verifies under the device's digital-signing certificate held in the registry
   *    (a device certificate of that device, digitalSignature);
   * 4. its outcome repeats the command's sequence number and mode and has one result per
   *    replacement, cell for cell; a successful cell's new key id and entity are the replacement
   *    certificate's;
   * 5. each successful cell moves to the new certificate in one registry transaction
   *    (`replaceCells`, compare-and-set on the old key id the device reports); failed cells keep
   *    theirs. An alert 0x8F67 moves nothing; a future-dated command's bare `SEQUENCE { NULL }`
   *    moves nothing and keeps the command for its alert;
   * 6. the command is removed from the store's pending commands (after the registry moved: a
   *    crash in between leaves it pending, and the same answer applied again finds the cells
   *    already moved and only removes it). Of calls racing with one answer, one returns; the
   *    others are refused (`ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND`).
   *
   * Any refusal changes nothing. After a move, commands signed with the old key for this device
   * are refused (`ERR_COMMAND_PORTFOLIO_MISMATCH` while the old certificate is still one of the
   * entity's, else `ERR_COMMAND_SIGNATURE_INVALID`, or `ERR_COMMAND_SIGNER_UNKNOWN` until the new
   * certificate is in the trust store: add it with {@link Validator.updateTrust}).
   *
   * The accepted commands awaiting an answer are durable: each is written to the state store
   * (`CommitEntry.pending`) in the same commit as its counter and decision record, so an answer is
   * applied after a restart, or by another process over the same store (a `ValidatorPool`'s
   * workers), as by the validator that accepted the command.
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`; `ERR_GBCS_MALFORMED` (the answer or its payload);
   *   `ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND`; `ERR_CREDENTIALS_RESPONSE_MISMATCH`;
   *   `ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID`; `ERR_STORE_CELL_CONFLICT` (the registry's cell
   *   no longer names the old key id: nothing moved); `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`,
   *   `ERR_STORE_CORRUPT` (the pending command kept in the store is damaged)
   * @see docs/domain.md §9 (response, alert 0x00CB), docs/validator.md
   * @example
   * ```ts
   * import type { Validator } from '@smki/validator';
   * declare const validator: Validator, signedCommand: Uint8Array, deviceResponse: Uint8Array;
   * const d = await validator.validate(signedCommand, { sender: '90B3D51F30010000' });
   * if (d.outcome === 'accepted') {
   *   // … d.frame goes to the device, which answers …
   *   const r = await validator.recordCredentialsResponse(deviceResponse, signedCommand);
   *   console.log(r.state, r.cells.filter((c) => c.moved).length);
   * }
   * ```
   */
  async recordCredentialsResponse(answer: Uint8Array, command: Uint8Array): Promise<CredentialsResponseResult> {
    this.#assertOpen();
    return this.#track(this.#recordCredentialsResponse(answer, command));
  }

  async #recordCredentialsResponse(answerBytes: unknown, commandBytes: unknown): Promise<CredentialsResponseResult> {
    const refuse = (code: SmkiErrorCode, message: string): never => {
      throw new SmkiError(code, message, {});
    };
    if (!(answerBytes instanceof Uint8Array) || !(commandBytes instanceof Uint8Array)) return refuse('ERR_INVALID_ARGUMENT', 'the answer and the command are Uint8Arrays');
    const key = sha256(commandBytes);
    // The store is the truth: the command is pending there from the commit that accepted it
    // (whichever process, before or after a restart) until an answer is applied. The cache only
    // spares decoding it again.
    const stored = await this.#store.pendingCommand(key);
    if (stored === undefined) {
      this.#passedCredentials.delete(key);
      return refuse('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND', 'the command is not a CS02b command accepted with this state store whose answer is still to be applied');
    }
    const passed = this.#passedCredentials.get(key, 0) ?? pendingCredentials(stored.command, stored.device);
    const cmd = passed.command.message;
    const answer = parseMessage(answerBytes);
    const kind = answer.cra === 'response' ? 'response' : answer.cra === 'alert' ? 'alert' : undefined;
    if (kind === undefined || answer.frame !== 'signed') return refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `a ${answer.cra} (${answer.frame}) is not a device's signed response or alert`);
    if (answer.originator !== cmd.recipient || answer.recipient !== cmd.originator) {
      refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `the answer is from ${answer.originator} to ${answer.recipient}, not from device ${cmd.recipient} to ${cmd.originator}`);
    }
    if (kind === 'response' && (answer.messageCode !== cmd.messageCode || answer.originatorCounter !== cmd.originatorCounter)) {
      refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `the response is ${hex4(answer.messageCode)} counter ${answer.originatorCounter}, not ${hex4(cmd.messageCode)} counter ${cmd.originatorCounter}`);
    }
    if (kind === 'alert' && answer.messageCode !== CREDENTIALS_ALERT_MESSAGE_CODE) refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `alert ${hex4(answer.messageCode)} is not ${hex4(CREDENTIALS_ALERT_MESSAGE_CODE)}`);

    // The device's own signature, under the digital-signing certificate the registry holds for it.
    const device = await this.#o.registry.device(cmd.recipient);
    const der = device?.digitalSignatureCertificate;
    if (device === undefined || der === undefined) return refuse('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID', `the registry holds no digital-signing certificate of device ${cmd.recipient}`);
    let deviceCert: SmkiCertificate;
    try {
      deviceCert = parseCertificate(der);
    } catch (e) {
      return refuse('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID', `the registry's digital-signing certificate of ${cmd.recipient} does not parse: ${why(e)}`);
    }
    if (deviceCert.kind !== 'device' || deviceCert.entityId !== cmd.recipient || deviceCert.keyUsage.length !== 1 || deviceCert.keyUsage[0] !== 'digitalSignature' || deviceCert.publicKey === undefined) {
      refuse('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID', `the registry's digital-signing certificate of ${cmd.recipient} is not that device's digital-signing certificate`);
    }
    if (!verifySignature(answer, deviceCert.publicKey as KeyObject)) refuse('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID', `the answer's signature does not verify under device ${cmd.recipient}'s key`);

    // What the device did.
    let outcome: CredentialsExecutionOutcome | undefined;
    let failed = false;
    if (kind === 'response') {
      outcome = decodeUpdateSecurityCredentialsResponse(answer.payload).outcome;
    } else {
      const alert = decodeCredentialsAlert(answer.payload);
      outcome = alert.outcome;
      failed = alert.code === CREDENTIALS_ALERT_CODES.failure;
    }
    const facts = { device: cmd.recipient, originator: cmd.originator, messageCode: cmd.messageCode, counter: cmd.originatorCounter, answer: kind } as const;
    const payload = passed.command.payload;
    if (outcome === undefined) {
      // A future-dated command is answered SEQUENCE { NULL } at once; its alert carries the outcome.
      if (payload.executionTime === undefined) refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', 'the response to an immediate CS02b command carries no outcome');
      // Still pending: the alert carries the outcome.
      return { state: 'scheduled', ...facts, cells: [] };
    }
    if (outcome.sequenceNumber !== payload.sequenceNumber || outcome.mode !== payload.mode) {
      refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `the outcome is for sequence ${outcome.sequenceNumber} mode ${outcome.mode}, not ${payload.sequenceNumber} mode ${payload.mode}`);
    }
    if (outcome.results.length !== payload.replacements.length) refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `the outcome has ${outcome.results.length} results for ${payload.replacements.length} replacements`);
    const cells: CredentialsCellResult[] = [];
    const moves: CellReplacement[] = [];
    for (const [i, r] of outcome.results.entries()) {
      const want = payload.replacements[i]!.cell;
      const target = passed.targets[i]!;
      const usage = r.cell.cellUsage ?? 'management';
      if (r.cell.role !== want.role || r.cell.keyUsage !== want.keyUsage || usage !== (want.cellUsage ?? 'management')) {
        refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `result ${i} is for cell role ${r.cell.role} ${r.cell.keyUsage} ${usage}, not the command's role ${want.role} ${want.keyUsage} ${want.cellUsage ?? 'management'}`);
      }
      const success = r.status === CREDENTIALS_STATUS.success;
      if (success && (r.newKeyId !== target.ski || r.newEntityId !== target.entity)) {
        refuse('ERR_CREDENTIALS_RESPONSE_MISMATCH', `result ${i} reports ${r.newEntityId}/${r.newKeyId}, not the replacement certificate ${String(target.entity)}/${target.ski}`);
      }
      const moved = success && !failed;
      if (moved) {
        const current = device.cells.find((c) => c.role === want.role && c.keyUsage === want.keyUsage && c.cellUsage === usage);
        moves.push({ role: want.role as CellReplacement['role'], keyUsage: want.keyUsage, cellUsage: usage, from: current === undefined ? null : r.oldKeyId, ski: target.ski, ...(target.entity ? { entity: target.entity } : {}) });
      }
      cells.push({ role: want.role, keyUsage: want.keyUsage, cellUsage: usage, status: r.status, oldKeyId: r.oldKeyId, newKeyId: moved ? target.ski : r.oldKeyId, moved });
    }
    // One registry transaction; a cell that no longer names the old key id the device reports
    // moves nothing. Then the pending command is removed. The registry and the state store may be
    // different databases, so these are two transactions, in this order: a crash between them
    // leaves the cells moved and the command pending, and the same answer applied again finds
    // every cell already naming its new certificate, moves nothing more and removes the command
    // (idempotent). The other order would lose the command with the cells unmoved.
    const done = moves.every((mv) => device.cells.some((c) => c.role === mv.role && c.keyUsage === mv.keyUsage && c.cellUsage === mv.cellUsage && c.ski === mv.ski && c.entity === mv.entity));
    if (!done) await this.#o.registry.replaceCells(cmd.recipient, moves);
    this.#passedCredentials.delete(key);
    // Of several callers applying one answer at once, one is told it applied it.
    if (!(await this.#store.removePendingCommand(key))) refuse('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND', 'the answer to this command was applied meanwhile (by another call or process)');
    return { state: failed ? 'failed' : 'applied', ...facts, cells };
  }

  /** Count a call in flight until it settles: {@link Validator.close} waits for it. */
  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const done = (): void => void this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * DCO mode: sign the envelope of each accepted command, after its commit (the envelope counter
   * is allocated by it). A signer that fails leaves the command rejected (fail closed), logged.
   */
  async #envelopes(commands: readonly BatchCommand[], decisions: Decision[]): Promise<Decision[]> {
    const dco = this.#o.dco as NonNullable<ValidatorOptions['dco']>;
    return Promise.all(
      decisions.map(async (d, i) => {
        if (d.outcome !== 'accepted' || d.dco === undefined) return d;
        const bytes = commands[i]?.bytes as Uint8Array;
        try {
          const frame = await buildDcoEnvelope(
            {
              command: bytes,
              decision: {
                outcome: d.dco.anomaly ? 'anomaly' : 'accepted',
                messageCode: d.messageCode,
                originator: d.originator,
                device: d.device,
                originatorCounter: d.counter,
                ...(d.dco.anomaly ? { rule: `anomaly threshold of ${hex4(d.messageCode)}` } : {}),
              },
              counter: d.dco.envelopeCounter,
              signingTime: this.#now(),
            },
            { signer: dco.signer, certificate: dco.certificate },
          );
          return { ...d, frame };
        } catch (e) {
          // The counters moved (the commit is durable) but no envelope left: the safe direction.
          this.#accepted--;
          const message = `the DCO envelope could not be signed: ${why(e)}`;
          const m = { outcome: 'rejected', code: 'ERR_COMMAND_COUNTER_SIGN_FAILED', step: 'counter-sign', message } as const;
          const facts = { originator: d.originator, device: d.device, messageCode: d.messageCode, counter: d.counter };
          const [r] = await this.#committer.submit<Decision>([
            {
              record: () => ({ type: 'command.rejected', sender: d.originator, code: m.code, step: m.step, ...facts, commandHash: sha256(bytes) }),
              result: () => this.#count({ ...m, ...facts }),
              failed: () => this.#count({ ...m, ...facts }),
            },
          ]);
          return r as Decision;
        }
      }),
    );
  }

  /**
   * Release a quarantined command (an operator's decision): steps 2–9 run again on the held
   * command, and its commit marks the record released. Logged with the operator.
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`, `ERR_INVALID_ARGUMENT` (also in DCO mode, which quarantines nothing)
   */
  async release(quarantineId: string, operator: string): Promise<Decision> {
    this.#assertOpen();
    checkOperator(operator);
    // A DCO never holds a command back, so it has nothing to release (and a release never allocates an envelope counter).
    if (this.#o.dco) throw new SmkiError('ERR_INVALID_ARGUMENT', 'a validator in DCO mode quarantines nothing and releases nothing', { detail: 'release' });
    return this.#track(this.#release(quarantineId, operator));
  }

  async #release(quarantineId: string, operator: string): Promise<Decision> {
    const record: QuarantineRecord | undefined = await this.#store.quarantineRecord(quarantineId);
    if (record === undefined || record.state !== 'held') {
      // A record no longer held still names its command: the refusal carries that command's facts
      // and its sender (the User it was quarantined for), as a refusal at the commit does.
      let m: GbcsMessage | undefined;
      try {
        m = record && parseMessage(record.command);
      } catch {
        m = undefined;
      }
      const [d] = await this.#committer.submit([
        this.#rejection(record?.command ?? new Uint8Array(0), m, 'ERR_QUARANTINE_NOT_HELD', 'anomaly', `quarantine record ${quarantineId} is not held`, { id: quarantineId, operator }, record?.user),
      ]);
      return d as Decision;
    }
    const [d] = await this.#committer.submit([await this.#check(record.command, record.user, { id: quarantineId, operator })]);
    return d as Decision;
  }

  /**
   * Discard a quarantined command (an operator's decision), logged with the operator.
   * @returns whether it was held
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`, `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`
   */
  async discard(quarantineId: string, operator: string): Promise<boolean> {
    this.#assertOpen();
    checkOperator(operator);
    return this.#track(this.#discard(quarantineId, operator));
  }

  async #discard(quarantineId: string, operator: string): Promise<boolean> {
    const held = await this.#store.discardQuarantine(quarantineId);
    if (!held) return false;
    const [logged] = await this.#committer.submit<true | SmkiError>([
      { record: () => ({ type: 'quarantine.discarded', quarantineId, operator }), result: () => true, failed: (e) => e },
    ]);
    // The record is discarded; if its log record could not be committed, the operator hears of it.
    if (logged instanceof SmkiError) throw logged;
    return true;
  }

  /**
   * Replace the certificates and CRLs (a new CRL, a new User certificate, a revoked CA). Clears
   * the path verdicts and the shared-secret cache.
   * @throws SmkiError as the path validator does for inputs that do not parse
   */
  updateTrust(trust: ValidatorTrust): void {
    this.#assertOpen();
    this.#trust = new TrustState(trust, this.#cacheSize);
    this.#warnedUntil = -Infinity;
    // A trust update may be a revocation: no shared secret outlives it.
    this.#zCache?.clear();
    this.#checkCrls();
  }

  /**
   * Replace the DUIS entry's trust (a new CRL, a new or revoked XML-signing certificate); the
   * anti-replay store stays.
   * @throws SmkiError `ERR_VALIDATOR_CLOSED`; `ERR_INVALID_ARGUMENT` (opened without `duis`, or not a `DuisTrust`)
   */
  updateDuisTrust(trust: DuisTrust): void {
    this.#assertOpen();
    if (this.#duis === undefined) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the validator was opened without options.duis', { detail: 'duis' });
    if (!isDuisTrust(trust)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'trust is not a DuisTrust', { detail: 'duis.trust' });
    this.#duis = { ...this.#duis, trust };
  }

  /**
   * Forget cached shared secrets: all, or those of one ACB key or one device key (call it when
   * either is revoked or replaced).
   */
  purgeSharedSecrets(filter: { readonly acbKeyId?: string; readonly deviceKeySki?: string } = {}): number {
    const z = this.#zCache;
    if (!z) return 0;
    return z.deleteWhere((k) => {
      const [acb, ski] = k.split('|');
      return (filter.acbKeyId === undefined || filter.acbKeyId === acb) && (filter.deviceKeySki === undefined || filter.deviceKeySki === ski);
    });
  }

  /** The freshness of every CRL and ARL the validator holds. */
  crlStatus(): CrlStatus[] {
    return this.#trust.crlStatus(this.#now().getTime(), this.#crlWarningMs);
  }

  /** Decisions since the validator opened, by outcome and code. */
  stats(): ValidatorStats {
    return { accepted: this.#accepted, quarantined: this.#quarantined, rejected: Object.fromEntries(this.#rejected) };
  }

  /** The decision log's file and head (for auditors and tests). */
  logHead(): {
    /** The log file. */
    readonly path: string;
    /** Records written to it (durable). */
    readonly count: number;
  } {
    return { path: this.#committer.log.path, count: this.#committer.log.head().count };
  }

  /**
   * Refuse new calls (`ERR_VALIDATOR_CLOSED`), wait until every call already made is answered (as
   * if close had not been called) and its records are written, then close the decision log. The
   * stores stay open (the caller owns them). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await this.#committer.close();
  }

  // -------------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new SmkiError('ERR_VALIDATOR_CLOSED', 'the validator is closed', {});
  }

  #checkCrls(): void {
    const on = this.#o.onEvent;
    if (!on) return;
    const now = this.#now().getTime();
    if (now < this.#warnedUntil) return;
    let next = Infinity;
    for (const s of this.#trust.crlStatus(now, this.#crlWarningMs)) {
      const at = s.nextUpdate?.getTime() ?? -Infinity;
      if (s.state !== 'fresh') emit(on, { type: s.state === 'expired' ? 'crl-expired' : 'crl-expiring', issuer: s.issuer, nextUpdate: s.nextUpdate ?? new Date(0) });
      else next = Math.min(next, at - this.#crlWarningMs);
    }
    // Re-check once a minute while something is wrong; otherwise when the next one starts to expire.
    this.#warnedUntil = Math.min(next, now + 60_000);
  }

  /** Steps 1–9 of one command, as a pending commit item. */
  async #check(bytes: unknown, senderInput: unknown, release?: Release): Promise<PendingDecision<Decision>> {
    const raw = bytes instanceof Uint8Array ? bytes : new Uint8Array(0);
    let sender: Eui64 | undefined;
    let message: GbcsMessage | undefined;
    try {
      try {
        sender = parseEui64(senderInput as string);
      } catch {
        reject('ERR_COMMAND_SENDER_MISMATCH', 'parse', 'the call context names no valid sender EUI-64');
      }
      if (!(bytes instanceof Uint8Array)) reject('ERR_GBCS_MALFORMED', 'parse', 'the command is not a Uint8Array');
      if (raw.length > MAX_MESSAGE_BYTES) reject('ERR_COMMAND_TOO_LARGE', 'parse', `the command is ${raw.length} bytes, more than ${MAX_MESSAGE_BYTES}`);
      try {
        message = parseMessage(raw);
      } catch (e) {
        reject('ERR_GBCS_MALFORMED', 'parse', e instanceof SmkiError ? e.message : 'the command does not parse');
      }
      const checked = await this.#steps(message as GbcsMessage, sender as Eui64, raw);
      return this.#accept(checked, release);
    } catch (e) {
      if (e instanceof Reject) return this.#rejection(raw, message, e.code, e.step, e.message, release, sender);
      // A store failure (ERR_STORE_UNAVAILABLE, _CORRUPT, _CLOSED) keeps its code at the commit
      // step; anything unexpected fails closed the same way (a non-SmkiError as ERR_INVALID_ARGUMENT).
      const code: SmkiErrorCode = e instanceof SmkiError ? e.code : 'ERR_INVALID_ARGUMENT';
      return this.#rejection(raw, message, code, 'commit', e instanceof Error ? e.message : String(e), release, sender);
    }
  }

  async #steps(m: GbcsMessage, sender: Eui64, raw: Uint8Array): Promise<Checked> {
    // 1. A command, not yet MAC'd, from the authenticated sender, for a registered device.
    if (m.cra !== 'command') reject('ERR_COMMAND_NOT_A_COMMAND', 'parse', `a ${m.cra} is not a command`);
    if (m.frame !== 'signed') reject('ERR_COMMAND_NOT_A_COMMAND', 'parse', 'a general-ciphering frame already carries a MAC');
    if (m.originator !== sender) reject('ERR_COMMAND_SENDER_MISMATCH', 'parse', `originator ${m.originator} is not the authenticated sender ${sender}`);
    const device = await this.#o.registry.device(m.recipient);
    if (device === undefined) return reject('ERR_COMMAND_UNKNOWN_DEVICE', 'parse', `device ${m.recipient} is not in the registry`);

    // 2. Role and classification.
    const trust = this.#trust;
    const entry = this.#catalogue.lookup(m.messageCode);
    if (entry === undefined) reject('ERR_COMMAND_UNKNOWN_MESSAGE_CODE', 'classify', `message code ${hex4(m.messageCode)} is not in the catalogue`);
    // A CS02b command (0x0100-0x0109) takes its role from its mode; every other code from the
    // roles the originator holds. Only CS02b codes take the first branch.
    const cs02b = m.messageCode >= CS02B_FIRST && m.messageCode <= CS02B_LAST;
    const role = cs02b ? this.#credentialsRole(m, device) : this.#userRole(m, device);
    // A CS02b command a User sends is critical whatever its role (the catalogue classifies only
    // supplier and network operator; the ACB's own mode 4 never reaches this point).
    const critical = cs02b || this.#catalogue.classify({ messageCode: m.messageCode, originatorRole: role }) === 'critical';
    if (critical && (m.signatureField !== 'present' || m.signature === null)) {
      reject('ERR_COMMAND_SIGNATURE_MISSING', 'classify', `${hex4(m.messageCode)} is critical for a ${roleName(role)} and carries no User signature`);
    }
    const now = this.#now().getTime();

    // 3–5. Signer, path and signature (critical commands only).
    let signerSerial: string | undefined;
    if (critical) signerSerial = this.#checkSigner(m, device, role, now);

    // 5a. CS02b: the payload, its mode's rules, [3], and every replacement certificate.
    const credentials = cs02b ? this.#checkCredentials(m, device, now) : undefined;

    // 6. Anti-replay before the commit: the clock window and the payload's own counter.
    if (this.#clockWindow !== undefined && m.originatorCounter > BigInt(now) + this.#clockWindow) {
      reject('ERR_COMMAND_COUNTER_AHEAD', 'replay', `counter ${m.originatorCounter} is more than ${this.#clockWindow} ms ahead of the clock`);
    }
    const imageHash = checkPayloadCounter(m);

    // 7. Firmware.
    if (imageHash !== undefined) await this.#checkFirmware(m, device, imageHash);

    // 8. Anomaly threshold (applied in the commit; in DCO mode detected here and never held).
    const threshold = this.#o.anomalyThreshold?.(m.originator, m.messageCode);
    if (threshold !== undefined) checkThreshold(threshold);
    let anomaly = false;
    if (threshold !== undefined && this.#o.dco) {
      const count = await this.#store.anomalyCount({ user: m.originator, messageCode: m.messageCode, windowMs: threshold.windowMs, windowStart: now - (now % threshold.windowMs) });
      anomaly = count >= threshold.limit;
    }

    // 9. Counter-sign (in DCO mode, the envelope is signed after the commit allocates its counter).
    const frame = this.#o.dco ? EMPTY : await this.#counterSign(m, device);
    return {
      message: m,
      sender,
      device,
      role,
      critical,
      ...(signerSerial ? { signerSerial } : {}),
      frame,
      ...(threshold ? { threshold } : {}),
      anomaly,
      now,
      commandHash: sha256(raw),
      ...(credentials ? { credentials } : {}),
    };
  }

  /**
   * Step 2 for CS02b (docs/domain.md §10): the role is the one that authorises the command's mode
   * (`CREDENTIALS_MODES`); the originator must hold a signing certificate in it. A supplier or
   * network operator must also be eligible for the device's fuel and its responsible party in the
   * registry; for the other roles (recovery, transitional change of supplier, WAN provider) the
   * registry names no responsible party, and the device's own cell for the role decides (step 3:
   * its certificate must be the originator's).
   */
  #credentialsRole(m: GbcsMessage, device: DeviceRecord): number {
    const trust = this.#trust;
    const mode = m.messageCode - CS02B_FIRST;
    const entry: CredentialsModeEntry | undefined = CREDENTIALS_MODES[mode];
    if (entry === undefined || !entry.supported || entry.authorisingRole === undefined) {
      return reject('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', 'classify', `CS02b mode ${mode} is not one this toolkit accepts (2 to 8): its layout is not public`);
    }
    if (!entry.userSignature) {
      reject('ERR_COMMAND_CREDENTIALS_WRONG_ROLE', 'classify', `CS02b mode ${mode} (${entry.name}) is the ACB's own, authorised by its MAC alone: no User sends it`);
    }
    const role = entry.authorisingRole;
    if (trust.signingCertificates(m.originator, role).length === 0) {
      const held = CREDENTIALS_ROLES.filter((r) => trust.signingCertificates(m.originator, r).length > 0);
      if (held.length === 0) reject('ERR_COMMAND_ORIGINATOR_UNKNOWN', 'classify', `no signing certificate of ${m.originator} in a role that authorises CS02b`);
      reject('ERR_COMMAND_CREDENTIALS_WRONG_ROLE', 'classify', `CS02b mode ${mode} (${entry.name}) is authorised by the ${roleName(role)}; ${m.originator} signs as ${held.map(roleName).join(' or ')}`);
    }
    if (role === SUPPLIER || role === NETWORK_OPERATOR) {
      const fuel = device.fuel;
      if ((fuel !== 'electricity' && fuel !== 'gas') || !this.#catalogue.isEligible({ messageCode: m.messageCode, originatorRole: role, deviceFuel: fuel as DeviceFuel })) {
        reject('ERR_COMMAND_ROLE_NOT_ELIGIBLE', 'classify', `a ${roleName(role)} may not send ${hex4(m.messageCode)} to a ${device.type} (${fuel})`);
      }
      if ((role === SUPPLIER ? device.supplier : device.networkOperator) !== m.originator) {
        reject('ERR_COMMAND_NOT_RESPONSIBLE', 'classify', `${m.originator} is not the responsible ${roleName(role)} of ${m.recipient}`);
      }
    }
    return role;
  }

  /**
   * Step 5a, CS02b only, after the signature verified: the payload decodes and keeps its mode's
   * rules (`decodeUpdateSecurityCredentialsCommand`: mode = code, the authorising cell, [3] = the
   * header's counter, target cells, each certificate's role and key usage = its cell's); each
   * replacement is an organisation certificate (of the originator, where a party replaces its own
   * cells: modes 2, 3, 5, 6; of the supplier the registry names for the device, where it goes into
   * a supplier cell: modes 7 and 8, and no supplier named is a refusal) whose path to the root
   * validates with revocation, as a signer's does.
   */
  #checkCredentials(m: GbcsMessage, device: DeviceRecord, now: number): PassedCredentials {
    let command: DecodedUpdateSecurityCredentialsCommand;
    try {
      command = decodeUpdateSecurityCredentialsCommand(m);
    } catch (e) {
      if (!(e instanceof SmkiError)) throw e;
      const code: SmkiErrorCode =
        e.code === 'ERR_GBCS_MALFORMED'
          ? 'ERR_COMMAND_PAYLOAD_MALFORMED'
          : e.code.startsWith('ERR_GBCS_CREDENTIALS_')
            ? e.code
            : e.code.startsWith('ERR_CERT_')
              ? 'ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY'
              : 'ERR_COMMAND_CREDENTIALS_INVALID';
      return reject(code, 'credentials', `the CS02b command does not keep its mode's rules: ${e.code} ${e.message}`);
    }
    const entry = command.entry;
    const ownCells = Array.isArray(entry.targets) && entry.targets.length === 1 && entry.targets[0] === entry.authorisingRole;
    const trust = this.#trust;
    const targets = command.payload.replacements.map((r, i) => {
      let cert: SmkiCertificate;
      try {
        cert = parseCertificate(r.certificate);
      } catch (e) {
        return reject('ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY', 'credentials', `replacement ${i} does not parse: ${why(e)}`);
      }
      if (cert.kind !== 'organisation' || cert.entityId === undefined) reject('ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY', 'credentials', `replacement ${i} is not an organisation certificate`);
      if (ownCells && cert.entityId !== m.originator) {
        reject('ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY', 'credentials', `mode ${entry.mode} (${entry.name}) replaces the originator's own cells; replacement ${i} is ${String(cert.entityId)}'s`);
      }
      // A supplier cell takes only the certificate of the supplier the registry names for the
      // device. Mode 2 is the supplier's own (checked above: the originator is that supplier);
      // in modes 7 (change of supplier: the registry names the gaining supplier once the switch is
      // registered) and 8 (recovery) the signer is another party, whose word alone must not hand
      // the device to another organisation. No supplier in the registry: refused (fail closed).
      if (r.cell.role === SUPPLIER && cert.entityId !== device.supplier) {
        reject(
          'ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY',
          'credentials',
          device.supplier === undefined
            ? `replacement ${i} goes into a supplier cell, but the registry names no supplier for device ${m.recipient}`
            : `replacement ${i} goes into a supplier cell and is ${String(cert.entityId)}'s, not the device's supplier ${device.supplier}'s`,
        );
      }
      const v = trust.verdict(cert, now);
      if (!v.ok) {
        reject(v.code === 'ERR_COMMAND_SIGNER_REVOKED' ? 'ERR_COMMAND_CREDENTIALS_CERTIFICATE_REVOKED' : 'ERR_COMMAND_CREDENTIALS_CERTIFICATE_UNTRUSTED', 'credentials', `replacement ${i} (${cert.serialNumber}): ${v.message}`);
      }
      if (cert.subjectKeyId === undefined) reject('ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY', 'credentials', `replacement ${i} has no subject key identifier`);
      return { ski: cert.subjectKeyId as string, entity: cert.entityId };
    });
    return { command, targets };
  }

  /** Step 2 for every code but CS02b: the role the originator acts in (eligible, responsible). */
  #userRole(m: GbcsMessage, device: DeviceRecord): number {
    const trust = this.#trust;
    // The roles the originator holds signing certificates for, those of them eligible for this
    // code on this device, and those of them it is responsible for on it (loops, not filters: this
    // runs for every command).
    const roles: number[] = [];
    const eligible: number[] = [];
    const responsible: number[] = [];
    const fuel = device.fuel;
    for (const r of USER_ROLES) {
      if (trust.signingCertificates(m.originator, r).length === 0) continue;
      roles.push(r);
      if ((fuel !== 'electricity' && fuel !== 'gas') || !this.#catalogue.isEligible({ messageCode: m.messageCode, originatorRole: r, deviceFuel: fuel as DeviceFuel })) continue;
      eligible.push(r);
      if ((r === SUPPLIER ? device.supplier : device.networkOperator) === m.originator) responsible.push(r);
    }
    if (roles.length === 0) reject('ERR_COMMAND_ORIGINATOR_UNKNOWN', 'classify', `no signing certificate of ${m.originator} as supplier or network operator`);
    if (eligible.length === 0) {
      reject('ERR_COMMAND_ROLE_NOT_ELIGIBLE', 'classify', `role ${roles.join('/')} may not send ${hex4(m.messageCode)} to a ${device.type} (${fuel})`);
    }
    if (responsible.length !== 1) {
      reject('ERR_COMMAND_NOT_RESPONSIBLE', 'classify', `${m.originator} is not the responsible ${eligible.map(roleName).join(' or ')} of ${m.recipient}`);
    }
    return responsible[0] as number;
  }

  #checkSigner(m: GbcsMessage, device: DeviceRecord, role: number, now: number): string {
    const trust = this.#trust;
    const cell = device.cells.find((c) => c.role === role && c.keyUsage === 'digitalSignature' && c.cellUsage === 'management');
    if (cell === undefined) return reject('ERR_COMMAND_NO_TRUST_ANCHOR', 'signer', `device ${m.recipient} has no ${roleName(role)} signing cell`);
    const bySki = trust.bySki(cell.ski);
    if (bySki.length === 0) reject('ERR_COMMAND_SIGNER_UNKNOWN', 'signer', `the certificate ${cell.ski} in the device's cell is not in the trust store`);
    const fits = bySki.filter((c) => c.kind === 'organisation' && c.role === role && c.entityId === m.originator && c.keyUsage.length === 1 && c.keyUsage[0] === 'digitalSignature');
    if (fits.length === 0) {
      reject('ERR_COMMAND_SIGNER_WRONG_CERTIFICATE', 'signer', `the certificate ${cell.ski} in the device's cell is not ${m.originator}'s ${roleName(role)} signing certificate`);
    }
    // 4. A valid path with revocation checked: the first certificate with this key that has one.
    let signer: SmkiCertificate | undefined;
    let firstFailure: { code: SmkiErrorCode; message: string } | undefined;
    for (const c of fits) {
      const v = trust.verdict(c, now);
      if (v.ok) {
        signer = c;
        break;
      }
      firstFailure ??= v;
    }
    if (signer === undefined) {
      const f = firstFailure as { code: SmkiErrorCode; message: string };
      return reject(f.code, 'path', f.message);
    }
    // 5. The signature over the bytes as received.
    if (signer.publicKey === undefined || !verifySignature(m, signer.publicKey)) {
      // Each of the entity's other keys once (several certificates may share one), at most a handful.
      const others = new Map<string, SmkiCertificate>();
      for (const c of trust.signingCertificates(m.originator, role)) {
        const ski = c.subjectKeyId ?? c.fingerprint;
        if (ski !== cell.ski && c.publicKey !== undefined && !others.has(ski) && others.size < MAX_PORTFOLIO_LOOKUP) others.set(ski, c);
      }
      const other = [...others.values()].find((c) => verifySignature(m, c.publicKey as KeyObject));
      if (other) {
        reject('ERR_COMMAND_PORTFOLIO_MISMATCH', 'signature', `signed with ${m.originator}'s key ${other.subjectKeyId ?? other.serialNumber}, but device ${m.recipient} trusts ${cell.ski}`);
      }
      reject('ERR_COMMAND_SIGNATURE_INVALID', 'signature', `the User signature does not verify under ${cell.ski}`);
    }
    return signer.serialNumber;
  }

  async #checkFirmware(m: GbcsMessage, device: DeviceRecord, hash: Uint8Array): Promise<void> {
    if (device.model === undefined) reject('ERR_FIRMWARE_NOT_APPROVED', 'firmware', `device ${m.recipient} has no model in the registry, so no image is approved for it`);
    const status = await this.#o.firmware.status(device.model as string, hash);
    if (status !== 'approved') {
      reject('ERR_FIRMWARE_NOT_APPROVED', 'firmware', `image ${Buffer.from(hash).toString('hex').toUpperCase()} is ${status} for model ${device.model as string}`);
    }
  }

  async #counterSign(m: GbcsMessage, device: DeviceRecord): Promise<Uint8Array> {
    const deviceKey = this.#deviceKey(m.recipient, device);
    const acb = this.#o.acb as NonNullable<ValidatorOptions['acb']>;
    let z: Uint8Array | undefined;
    const zKey = this.#zCache ? `${acb.keyId}|${deviceKey.ski}` : '';
    const now = this.#zCache ? this.#now().getTime() : 0;
    if (this.#zCache) z = this.#zCache.get(zKey, now);
    if (z === undefined) {
      try {
        // A per-device function may answer at once or later (a key store reads the meter's row first).
        const agreement: KeyAgreement =
          typeof acb.keyAgreement === 'function' ? await acb.keyAgreement(m.recipient, { messageCode: m.messageCode, counter: m.originatorCounter }) : acb.keyAgreement;
        z = await agreement.deriveSharedSecret(deviceKey.point);
      } catch (e) {
        if (e instanceof SmkiError && (e.code === 'ERR_STORE_UNAVAILABLE' || e.code === 'ERR_STORE_CLOSED')) throw e;
        return reject('ERR_COMMAND_COUNTER_SIGN_FAILED', 'counter-sign', `the ACB key agreement failed: ${why(e)}`);
      }
      this.#zCache?.set(zKey, z, now + this.#zTtl);
    }
    const originator = this.#title(m.originator);
    const key = kdf(z, otherInfo({ originator, mode: 'command', counter: m.originatorCounter, recipient: deviceKey.title }));
    const apdu = apduBytes(m);
    const mac = computeMacBytes({ key, originator, aad: macAad(apdu) });
    return buildGeneralCiphering(apdu, mac);
  }

  /**
   * An originator's system title as bytes, converted once per originator. Only an originator that
   * holds a signing certificate in the trust store gets this far, so the map is as bounded as the
   * trust store.
   */
  #title(eui: Eui64): Uint8Array {
    let t = this.#titles.get(eui);
    if (t === undefined) {
      t = eui64ToBytes(eui);
      this.#titles.set(eui, t);
    }
    return t;
  }

  /** The device's key-agreement public key, parsed once per certificate. */
  #deviceKey(eui: Eui64, device: DeviceRecord): DeviceKey {
    const der = device.keyAgreementCertificate;
    if (der === undefined) return reject('ERR_COMMAND_DEVICE_KEY_UNUSABLE', 'counter-sign', `device ${eui} has no key-agreement certificate in the registry`);
    const cached = this.#deviceKeys.get(eui, 0);
    if (cached !== undefined) {
      if (Buffer.from(cached.der.buffer, cached.der.byteOffset, cached.der.byteLength).equals(der)) return cached;
      // The device's certificate was replaced: forget the shared secrets of its old key.
      this.#zCache?.deleteWhere((k) => k.endsWith(`|${cached.ski}`));
    }
    let cert: SmkiCertificate;
    try {
      cert = parseCertificate(der);
    } catch (e) {
      return reject('ERR_COMMAND_DEVICE_KEY_UNUSABLE', 'counter-sign', `device ${eui}'s key-agreement certificate does not parse: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (cert.kind !== 'device' || cert.entityId !== eui || !cert.keyUsage.includes('keyAgreement')) {
      reject('ERR_COMMAND_DEVICE_KEY_UNUSABLE', 'counter-sign', `the registry's key-agreement certificate of ${eui} is not that device's key-agreement certificate`);
    }
    if (cert.details.publicKeyAlgorithm !== OID.ecPublicKey || cert.details.publicKeyCurve !== OID.p256 || !isP256Point(cert.publicKeyBytes)) {
      reject('ERR_COMMAND_DEVICE_KEY_UNUSABLE', 'counter-sign', `the key-agreement certificate of ${eui} does not carry a P-256 point`);
    }
    const entry: DeviceKey = { der: Uint8Array.from(der), point: Uint8Array.from(cert.publicKeyBytes), ski: cert.subjectKeyId ?? cert.fingerprint, title: eui64ToBytes(eui) };
    this.#deviceKeys.set(eui, entry, Infinity);
    return entry;
  }

  #accept(c: Checked, release?: Release): PendingDecision<Decision> {
    const m = c.message;
    const facts = { originator: m.originator, device: m.recipient, messageCode: m.messageCode, counter: m.originatorCounter };
    const dco = this.#o.dco;
    const anomaly = c.threshold
      ? {
          user: m.originator,
          messageCode: m.messageCode,
          windowMs: c.threshold.windowMs,
          windowStart: c.now - (c.now % c.threshold.windowMs),
          // A DCO counts but never holds a command back.
          limit: dco ? MAX_ANOMALY_LIMIT : c.threshold.limit,
        }
      : undefined;
    const entry: CommitEntry = {
      counter: { originator: m.originator, device: m.recipient, value: m.originatorCounter },
      ...(dco ? { sequence: { owner: dco.certificate.entityId as Eui64, device: m.recipient, floor: BigInt(c.now) } } : {}),
      ...(anomaly ? { anomaly } : {}),
      ...(anomaly && !release ? { quarantine: { at: c.now, user: m.originator, device: m.recipient, messageCode: m.messageCode, counter: m.originatorCounter, command: m.bytes } } : {}),
      ...(release ? { release: release.id } : {}),
      // A CS02b command is kept, in the same transaction as its counter and only if it commits,
      // until the device's answer is applied (recordCredentialsResponse, from any process).
      ...(c.credentials ? { pending: { key: c.commandHash, device: m.recipient, at: c.now, command: m.bytes } } : {}),
    };
    const base = { sender: c.sender, commandHash: c.commandHash };
    const rejected = (code: SmkiErrorCode, step: DecisionStep, message: string): RejectedDecision => ({ outcome: 'rejected', code, step, message, ...facts });
    return {
      entry,
      record: (o): DecisionRecord => {
        if (o?.status === 'committed' && o.sequence !== undefined) {
          return {
            type: 'command.countersigned',
            ...base,
            ...facts,
            role: c.role,
            critical: c.critical ? 'critical' : 'non-critical',
            ...(c.signerSerial ? { signerSerial: c.signerSerial } : {}),
            envelopeCounter: o.sequence,
            anomaly: c.anomaly ? 'anomaly' : 'none',
          };
        }
        if (o?.status === 'committed') {
          return {
            type: 'command.accepted',
            ...base,
            ...facts,
            role: c.role,
            critical: c.critical ? 'critical' : 'non-critical',
            ...(c.signerSerial ? { signerSerial: c.signerSerial } : {}),
            ...(release ? { released: release.id, operator: release.operator } : {}),
          };
        }
        if (o?.status === 'quarantined') {
          return { type: 'command.quarantined', ...base, ...facts, quarantineId: o.id, count: o.count, limit: anomaly?.limit ?? 0 };
        }
        const [code, step] = rejectionOf(o);
        return {
          type: 'command.rejected',
          ...base,
          ...facts,
          code,
          step,
          ...(release ? { released: release.id, operator: release.operator } : {}),
        };
      },
      result: (o): Decision => {
        if (o?.status === 'committed') {
          this.#accepted++;
          // Kept in the store (the commit above); cached here for the device's answer.
          if (c.credentials) this.#passedCredentials.set(c.commandHash, c.credentials, Infinity);
          const d: AcceptedDecision = {
            outcome: 'accepted',
            frame: c.frame,
            ...facts,
            critical: c.critical,
            role: c.role,
            ...(c.signerSerial ? { signerSerial: c.signerSerial } : {}),
            ...(release ? { released: release.id } : {}),
            ...(o.sequence !== undefined ? { dco: { envelopeCounter: o.sequence, anomaly: c.anomaly } } : {}),
          };
          return d;
        }
        if (o?.status === 'quarantined') {
          this.#quarantined++;
          const q: QuarantinedDecision = { outcome: 'quarantined', code: 'ERR_COMMAND_QUARANTINED', step: 'anomaly', ...facts, quarantineId: o.id, count: o.count, limit: anomaly?.limit ?? 0 };
          return q;
        }
        if (o?.status === 'replayed') return this.#count(rejected('ERR_COMMAND_REPLAYED', 'replay', `counter ${m.originatorCounter} is not greater than ${o.last}, the last accepted`));
        if (o?.status === 'exhausted') return this.#count(rejected('ERR_COMMAND_COUNTER_SIGN_FAILED', 'counter-sign', 'the DCO envelope counters of this device are exhausted'));
        return this.#count(rejected('ERR_QUARANTINE_NOT_HELD', 'anomaly', `quarantine record ${release?.id ?? ''} is no longer held`));
      },
      failed: (e) => this.#count(rejected(storeCode(e), 'commit', e.message)),
    };
  }

  #rejection(
    raw: Uint8Array,
    m: GbcsMessage | undefined,
    code: SmkiErrorCode,
    step: DecisionStep,
    message: string,
    release?: Release,
    sender?: Eui64,
  ): PendingDecision<Decision> {
    const facts = m ? { originator: m.originator, device: m.recipient, messageCode: m.messageCode, counter: m.originatorCounter } : {};
    const decision: RejectedDecision = { outcome: 'rejected', code, step, message, ...facts };
    return {
      record: (): DecisionRecord => ({
        type: 'command.rejected',
        // A sender that is not an EUI-64 is recorded as all zeros (the message says why).
        sender: sender ?? ('0000000000000000' as Eui64),
        code,
        step,
        ...facts,
        commandHash: sha256(raw),
        ...(release ? { released: release.id, operator: release.operator } : {}),
      }),
      result: () => this.#count(decision),
      failed: () => this.#count(decision),
    };
  }

  #count(d: RejectedDecision): RejectedDecision {
    this.#rejected.set(d.code, (this.#rejected.get(d.code) ?? 0) + 1);
    return d;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * What {@link Validator.recordCredentialsResponse} needs of a pending CS02b command, derived
 * again from the command as the store kept it (it was checked in full when it was accepted; its
 * replacement certificates are not checked again: the device has acted on them, and the registry
 * must follow). A command that no longer decodes, or not for the device it was kept for, is
 * `ERR_STORE_CORRUPT`.
 */
function pendingCredentials(bytes: Uint8Array, device: Eui64): PassedCredentials {
  try {
    const command = decodeUpdateSecurityCredentialsCommand(parseMessage(bytes));
    if (command.message.recipient !== device) throw new Error(`the command is for ${command.message.recipient}`);
    const targets = command.payload.replacements.map((r) => {
      const cert = parseCertificate(r.certificate);
      if (cert.subjectKeyId === undefined) throw new Error('a replacement has no subject key identifier');
      return { ski: cert.subjectKeyId, entity: cert.entityId };
    });
    return { command, targets };
  } catch (e) {
    throw new SmkiError('ERR_STORE_CORRUPT', `the pending CS02b command kept for device ${device} is not one the validator accepted: ${why(e)}`, { detail: 'pending_commands' }, { cause: e });
  }
}

/** The code and step of a commit outcome that is not a success. */
function rejectionOf(o: CommitOutcome | undefined): [SmkiErrorCode, DecisionStep] {
  if (o?.status === 'replayed') return ['ERR_COMMAND_REPLAYED', 'replay'];
  if (o?.status === 'exhausted') return ['ERR_COMMAND_COUNTER_SIGN_FAILED', 'counter-sign'];
  return ['ERR_QUARANTINE_NOT_HELD', 'anomaly'];
}

function storeCode(e: SmkiError): SmkiErrorCode {
  return e.code;
}

/** The step of a refusal made by the DUIS entry before the GBCS decision. */
function duisStep(code: SmkiErrorCode): DecisionStep {
  if (code === 'ERR_STORE_UNAVAILABLE' || code === 'ERR_STORE_CORRUPT' || code === 'ERR_STORE_CLOSED') return 'commit';
  if (code === 'ERR_GBCS_MALFORMED') return 'parse';
  return 'duis';
}

/** A `DuisTrust` as @smki/duis takes it (looked up by issuer and serial). */
function isDuisTrust(t: unknown): t is DuisTrust {
  return typeof t === 'object' && t !== null && typeof (t as DuisTrust).find === 'function';
}

/** Check the payload's own counter against the header's; returns a CS06 activation's image hash. */
function checkPayloadCounter(m: GbcsMessage): Uint8Array | undefined {
  const p = m.payload;
  if (m.messageCode === ACTIVATE_FIRMWARE_MESSAGE_CODE) {
    let activation: { readonly imageHash: Uint8Array; readonly counter: bigint };
    try {
      activation = decodeActivateFirmware(p);
    } catch (e) {
      return reject('ERR_COMMAND_PAYLOAD_MALFORMED', 'replay', `the activation payload does not decode: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (activation.counter !== m.originatorCounter) {
      reject('ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH', 'replay', `the payload's counter ${activation.counter} is not the header's ${m.originatorCounter}`);
    }
    return activation.imageHash;
  }
  if (p[0] === DLMS_ACCESS_REQUEST) {
    let invoke: number;
    try {
      invoke = decodeDlmsInvokeCounter(p);
    } catch (e) {
      return reject('ERR_COMMAND_PAYLOAD_MALFORMED', 'replay', `the DLMS payload has no invoke-id: ${e instanceof Error ? e.message : String(e)}`);
    }
    const low = Number(m.originatorCounter & 0xffffffn);
    if (invoke !== low) reject('ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH', 'replay', `the DLMS invoke-id counter ${invoke} is not the low 24 bits of ${m.originatorCounter}`);
  }
  return undefined;
}

const MAX_WINDOW_MS = 31 * 24 * 3600_000;

function checkThreshold(t: AnomalyThreshold): void {
  // A threshold out of range is a configuration error: the command fails closed, alone.
  const ok =
    typeof t === 'object' &&
    t !== null &&
    Number.isSafeInteger(t.limit) &&
    t.limit >= 0 &&
    t.limit <= 0x7fffffff &&
    Number.isSafeInteger(t.windowMs) &&
    t.windowMs >= 1 &&
    t.windowMs <= MAX_WINDOW_MS;
  if (!ok) reject('ERR_INVALID_ARGUMENT', 'anomaly', 'the anomaly threshold for this User and message code is not { limit: 0..2^31-1, windowMs: 1 ms..31 days }');
}

function emit(on: (e: ValidatorEvent) => void, e: ValidatorEvent): void {
  try {
    on(e);
  } catch {
    // An operator's listener failing must not change a decision.
  }
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').toUpperCase();
}

/** What went wrong, for a message: an SmkiError's code and message, or any other error's message. */
function why(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return e instanceof SmkiError ? `${e.code} ${message}` : message;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

const ROLE_NAMES: Readonly<Record<number, string>> = { 1: 'recovery', 2: 'supplier', 3: 'network operator', 4: 'access control broker', 5: 'transitional change of supplier', 6: 'WAN provider' };

function roleName(r: number): string {
  return ROLE_NAMES[r] ?? `role ${r}`;
}

function checkOperator(operator: unknown): void {
  // eslint-disable-next-line no-control-regex
  if (typeof operator !== 'string' || operator.length === 0 || operator.length > 128 || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(operator)) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'operator must be 1 to 128 characters without control characters', { detail: 'operator' });
  }
}

function checkOptions(o: ValidatorOptions): void {
  const bad = (detail: string, message: string): never => {
    throw new SmkiError('ERR_INVALID_ARGUMENT', `validator options: ${detail} ${message}`, { detail });
  };
  if (typeof o !== 'object' || o === null) bad('options', 'are required');
  for (const k of ['store', 'registry', 'firmware'] as const) if (typeof o[k] !== 'object' || o[k] === null) bad(k, 'is required');
  if ((o.acb === undefined) === (o.dco === undefined)) bad('acb/dco', 'exactly one of them is required');
  if (o.acb !== undefined) {
    if (typeof o.acb !== 'object' || o.acb === null || typeof o.acb.keyId !== 'string' || o.acb.keyId.length === 0) bad('acb', 'needs a keyId and a keyAgreement');
    const ka = o.acb.keyAgreement;
    if (typeof ka !== 'function' && (typeof ka !== 'object' || ka === null || typeof ka.deriveSharedSecret !== 'function')) bad('acb.keyAgreement', 'is not a KeyAgreement');
  } else {
    const d = o.dco;
    if (typeof d !== 'object' || d === null || typeof d.signer?.sign !== 'function') bad('dco.signer', 'is not a Signer');
    const cert = (d as NonNullable<ValidatorOptions['dco']>).certificate;
    if (!isParsedCertificate(cert) || cert.kind !== 'organisation' || cert.entityId === undefined || !cert.keyUsage.includes('digitalSignature')) {
      bad('dco.certificate', "is not the DCO's parsed organisation signing certificate");
    }
  }
  if (o.duis !== undefined) {
    const d = o.duis;
    if (typeof d !== 'object' || d === null) bad('duis', 'is not an object');
    if (!isDuisTrust(d.trust)) bad('duis.trust', 'is not a DuisTrust');
    const r = d.replay;
    if (r !== undefined) {
      if (typeof r !== 'object' || r === null || typeof r.store !== 'object' || r.store === null || typeof r.store.commit !== 'function' || typeof r.store.lastCounter !== 'function') {
        bad('duis.replay.store', 'is not a StateStore');
      }
      // One store for both series would hold a request id (2c or 2c + 1) as the GBCS counter of (User, device).
      if (r.store === o.store) bad('duis.replay.store', 'is the GBCS state store: request ids need a store of their own');
      for (const k of ['maxAgeMs', 'maxFutureMs'] as const) {
        const v = r[k];
        if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) bad(`duis.replay.${k}`, 'is not a non-negative integer');
      }
    }
    if (d.maxBytes !== undefined && (!Number.isSafeInteger(d.maxBytes) || d.maxBytes <= 0)) bad('duis.maxBytes', 'is not a positive integer');
  }
  if (typeof o.log !== 'object' || o.log === null) bad('log', 'is required');
  if (typeof o.log.dir !== 'string' || o.log.dir.length === 0) bad('log.dir', 'is required');
  if (typeof o.log.id !== 'string' || !LOG_ID.test(o.log.id)) bad('log.id', 'is not [A-Za-z0-9._:@-]{1,128}');
  if (!(o.log.key instanceof Uint8Array) || o.log.key.length !== 32) bad('log.key', 'is not 32 bytes');
  for (const k of ['anomalyThreshold', 'onEvent', 'now'] as const) if (o[k] !== undefined && typeof o[k] !== 'function') bad(k, 'is not a function');
  const w = o.counterClockWindowMs;
  if (w !== undefined && w !== false && (!Number.isSafeInteger(w) || w < 0)) bad('counterClockWindowMs', 'is not a non-negative integer or false');
  if (o.crlWarningMs !== undefined && (!Number.isSafeInteger(o.crlWarningMs) || o.crlWarningMs < 0)) bad('crlWarningMs', 'is not a non-negative integer');
  if (o.cacheSize !== undefined && (!Number.isSafeInteger(o.cacheSize) || o.cacheSize < 0)) bad('cacheSize', 'is not a non-negative integer');
  const z = o.sharedSecretCache;
  if (z !== undefined && z !== false) {
    if (typeof z !== 'object' || z === null) bad('sharedSecretCache', 'is not an object or false');
    if (z.maxEntries !== undefined && (!Number.isSafeInteger(z.maxEntries) || z.maxEntries < 1)) bad('sharedSecretCache.maxEntries', 'is not a positive integer');
    if (z.ttlMs !== undefined && (!Number.isSafeInteger(z.ttlMs) || z.ttlMs < 1)) bad('sharedSecretCache.ttlMs', 'is not a positive integer');
  }
}
