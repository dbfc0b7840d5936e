import { mkdir } from 'node:fs/promises';
import { SmkiError } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { AuditLog, defineAuditSchema } from '@smki/keystore';
import type { AuditHead, AuditStaged } from '@smki/keystore';
import { sameLogHead } from '@smki/store';
import type { CommitEntry, CommitOutcome, LogHead, StateStore } from '@smki/store';

/** The fields every command record has. */
interface CommandRecordBase {
  /** The sender the caller authenticated (all zeros when the call named no valid EUI-64). */
  readonly sender: Eui64;
  /** SHA-256 of the command as received, upper-case hex: identifies it without holding it. */
  readonly commandHash: string;
}

/** The fields of a command that parsed, as the records of a change to the store carry them. */
interface CommandRecordFacts extends CommandRecordBase {
  /** The GBCS originator. */
  readonly originator: Eui64;
  /** The device. */
  readonly device: Eui64;
  /** The message code. */
  readonly messageCode: number;
  /** The originator counter. */
  readonly counter: bigint;
}

/** What an accepted command's record says of the check. */
interface AcceptanceFacts extends CommandRecordFacts {
  /** The Remote Party Role the originator acted in. */
  readonly role: number;
  /** Whether the User signature was required and checked. */
  readonly critical: 'critical' | 'non-critical';
  /** The signer's certificate serial (critical commands). */
  readonly signerSerial?: string;
}

/** A command accepted: its counter advanced and its frame released. */
export interface AcceptedRecord extends AcceptanceFacts {
  /** The record type. */
  readonly type: 'command.accepted';
  /** The quarantine record this acceptance released. */
  readonly released?: string;
  /** The operator who released it. */
  readonly operator?: string;
}

/** DCO mode: a command accepted and counter-signed in an envelope for the SMETS1 adapter. */
export interface CountersignedRecord extends AcceptanceFacts {
  /** The record type. */
  readonly type: 'command.countersigned';
  /** The envelope's own counter. */
  readonly envelopeCounter: bigint;
  /** `anomaly` when the command crossed its threshold (detected, not held), else `none`. */
  readonly anomaly: 'anomaly' | 'none';
}

/** A command rejected: nothing changed. */
export interface RejectedRecord extends CommandRecordBase {
  /** The record type. */
  readonly type: 'command.rejected';
  /** The code of the rule that decided. */
  readonly code: string;
  /** The step of that rule. */
  readonly step: string;
  /** The GBCS originator, once the command parsed. */
  readonly originator?: Eui64;
  /** The device, once the command parsed. */
  readonly device?: Eui64;
  /** The message code, once the command parsed. */
  readonly messageCode?: number;
  /** The originator counter, once the command parsed. */
  readonly counter?: bigint;
  /** The quarantine record an operator tried to release. */
  readonly released?: string;
  /** That operator. */
  readonly operator?: string;
}

/** A command held in quarantine: stored, its counter not advanced. */
export interface QuarantinedRecord extends CommandRecordFacts {
  /** The record type. */
  readonly type: 'command.quarantined';
  /** The quarantine record's id. */
  readonly quarantineId: string;
  /** Commands already accepted in the window. */
  readonly count: number;
  /** The window's threshold. */
  readonly limit: number;
}

/** A quarantined command discarded by an operator. */
export interface DiscardedRecord {
  /** The record type. */
  readonly type: 'quarantine.discarded';
  /** The quarantine record's id. */
  readonly quarantineId: string;
  /** The operator. */
  readonly operator: string;
}

/** Records of a commit whose acknowledgement was lost but which the store shows applied (their frames were never released). */
export interface UnacknowledgedRecord {
  /** The record type. */
  readonly type: 'commit.unacknowledged';
  /** The `seq` of the first record of that commit. */
  readonly firstSeq: number;
  /** How many records it had. */
  readonly records: number;
}

/**
 * The records of the decision log. Every field is an identifier, an EUI-64, a code, a count or a
 * hash: never a key, never the command's bytes (its SHA-256 identifies it).
 */
export type DecisionRecord = AcceptedRecord | CountersignedRecord | RejectedRecord | QuarantinedRecord | DiscardedRecord | UnacknowledgedRecord;

const SENDER = { name: 'sender', kind: 'eui64' } as const;
const COMMAND_HASH = { name: 'commandHash', kind: 'hex' } as const;
/** The fields of a parsed command, in the order every record type writes them. */
const FACTS = [
  { name: 'originator', kind: 'eui64' },
  { name: 'device', kind: 'eui64' },
  { name: 'messageCode', kind: 'messageCode' },
  { name: 'counter', kind: 'counter' },
] as const;
/** What an accepted command's records add: the role, whether it was critical, the signer. */
const ACCEPTANCE = [
  SENDER,
  ...FACTS,
  { name: 'role', kind: 'role' },
  { name: 'critical', kind: 'id' },
  { name: 'signerSerial', kind: 'hex', optional: true },
  COMMAND_HASH,
] as const;
const RELEASE = [
  { name: 'released', kind: 'id', optional: true },
  { name: 'operator', kind: 'text', optional: true },
] as const;

/**
 * The decision log's schema (the keystore's hash-chained, HMAC-authenticated log format with
 * these record types). `command.accepted`, `command.countersigned` and `command.quarantined`
 * change the state store; the
 * others record what changed nothing.
 */
export const DECISION_LOG_SCHEMA = defineAuditSchema<DecisionRecord>({
  types: {
    'command.accepted': [...ACCEPTANCE, ...RELEASE],
    'command.countersigned': [...ACCEPTANCE, { name: 'envelopeCounter', kind: 'counter' }, { name: 'anomaly', kind: 'id' }],
    'command.rejected': [
      SENDER,
      { name: 'code', kind: 'id' },
      { name: 'step', kind: 'id' },
      ...FACTS.map((f) => ({ ...f, optional: true }) as const),
      COMMAND_HASH,
      ...RELEASE,
    ],
    'command.quarantined': [
      SENDER,
      ...FACTS,
      { name: 'quarantineId', kind: 'id' },
      { name: 'count', kind: 'uint' },
      { name: 'limit', kind: 'uint' },
      COMMAND_HASH,
    ],
    'quarantine.discarded': [
      { name: 'quarantineId', kind: 'id' },
      { name: 'operator', kind: 'text' },
    ],
    'commit.unacknowledged': [
      { name: 'firstSeq', kind: 'uint' },
      { name: 'records', kind: 'uint' },
    ],
  },
  useTypes: ['command.rejected', 'quarantine.discarded', 'commit.unacknowledged'],
});

/** File name of the decision log in its directory. */
export const DECISION_LOG_FILE = 'decisions.log';

/** One item of a group commit: an optional store entry and the record that describes its outcome. */
export interface PendingDecision<T> {
  readonly entry?: CommitEntry;
  /** The record for the outcome (undefined outcome: the item had no entry). */
  record(outcome: CommitOutcome | undefined): DecisionRecord;
  /** The caller's result for the outcome, once the commit is durable. */
  result(outcome: CommitOutcome | undefined): T;
  /** The caller's result when the commit failed (nothing applied, or not known to be applied). */
  failed(error: SmkiError): T;
}

/** A queued item and how to answer its caller. */
interface Queued {
  readonly item: PendingDecision<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** Answer one caller; a callback that throws answers that caller alone, never the rest of its group. */
function settle(g: Queued, compute: () => unknown): void {
  try {
    g.resolve(compute());
  } catch (e) {
    g.reject(e);
  }
}

const ZERO_HEAD: AuditHead = Object.freeze({ count: 0, lastHash: '0'.repeat(64), bytes: 0 });

/**
 * The write path of decisions: groups commits (everything queued while one commit runs goes into
 * the next), stages their records in the log, commits the state entries together with the log's
 * intent in one store transaction, then writes the records. A frame is released only after its
 * group's transaction is durable.
 *
 * A commit whose outcome is unknown (the store went away during it) keeps the log's stage open;
 * the next group first reads the store's intent to learn whether it was applied, then writes or
 * drops the staged records and notes the unacknowledged commit in the log.
 */
export class DecisionCommitter {
  readonly #store: StateStore;
  readonly #log: AuditLog<DecisionRecord>;
  readonly #id: string;
  readonly #max: number;
  #expected: LogHead | undefined;
  #queue: Queued[] = [];
  #running: Promise<void> | undefined;
  /** A staged group whose commit's outcome is unknown. */
  #unknown: AuditStaged | undefined;
  #note: DecisionRecord | undefined;
  #fatal: SmkiError | undefined;

  private constructor(store: StateStore, log: AuditLog<DecisionRecord>, id: string, expected: LogHead | undefined, max: number) {
    this.#store = store;
    this.#log = log;
    this.#id = id;
    this.#expected = expected;
    this.#max = max;
  }

  /**
   * Open the log against the store's intent: write intent lines missing after a crash, and refuse
   * (`ERR_VALIDATOR_STATE_BEHIND`) when the log holds records beyond the store's head, i.e. the
   * store is older than the log.
   */
  static async open(store: StateStore, options: { dir: string; id: string; key: Uint8Array; max: number; now?: () => Date }): Promise<DecisionCommitter> {
    const intent = await store.logIntent(options.id);
    await mkdir(options.dir, { recursive: true });
    const log = await AuditLog.open<DecisionRecord>(options.dir, {
      key: options.key,
      schema: DECISION_LOG_SCHEMA,
      file: DECISION_LOG_FILE,
      head: intent?.after ?? ZERO_HEAD,
      ...(intent ? { intent: { before: intent.before, lines: intent.lines } } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    const head = log.head();
    if (!sameLogHead(head, intent?.after ?? ZERO_HEAD)) {
      const beyond = log.recovery.recordsBeyondHead;
      const state = log.recovery.lifecycleBeyondHead.length;
      await log.close();
      throw new SmkiError(
        'ERR_VALIDATOR_STATE_BEHIND',
        `the decision log ${options.id} holds ${beyond} record(s) beyond the state store's head (${state} of them changed the state): the store is older than the log`,
        { detail: `store head ${intent?.after.count ?? 0}, log head ${head.count}` },
      );
    }
    return new DecisionCommitter(store, log, options.id, intent?.after, options.max);
  }

  /** The log (read-only use: its head and path). */
  get log(): AuditLog<DecisionRecord> {
    return this.#log;
  }

  /** Queue items; resolves, per item, once its group is durable (or failed). */
  submit<T>(items: readonly PendingDecision<T>[]): Promise<T[]> {
    const promises = items.map((item) => this.#enqueue(item));
    this.#kick();
    return Promise.all(promises);
  }

  /** Queue one item: {@link DecisionCommitter.submit} of one. */
  submitOne<T>(item: PendingDecision<T>): Promise<T> {
    const promise = this.#enqueue(item);
    this.#kick();
    return promise;
  }

  #enqueue<T>(item: PendingDecision<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => this.#queue.push({ item: item as PendingDecision<unknown>, resolve: resolve as (v: unknown) => void, reject }));
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0) {
      const group = this.#queue.splice(0, this.#max);
      await this.#commitGroup(group);
    }
  }

  async #commitGroup(group: Queued[]): Promise<void> {
    const fail = (e: unknown): void => {
      const err = e instanceof SmkiError ? e : new SmkiError('ERR_STORE_UNAVAILABLE', 'the commit failed', { detail: String(e) });
      for (const g of group) settle(g, () => g.item.failed(err));
    };
    if (this.#fatal) return fail(this.#fatal);
    try {
      if (this.#unknown) await this.#resolveUnknown();
      else await this.#log.beginStage();
    } catch (e) {
      return fail(e);
    }
    const withEntry = group.filter((g) => g.item.entry !== undefined);
    const entries = withEntry.map((g) => g.item.entry as CommitEntry);
    const outcomeOf = new Map<(typeof group)[number], CommitOutcome>();
    let staged: AuditStaged | undefined;
    try {
      const note = this.#note;
      await this.#store.commit(entries, {
        log: {
          id: this.#id,
          expected: this.#expected,
          build: (outcomes) => {
            outcomeOf.clear();
            withEntry.forEach((g, i) => outcomeOf.set(g, outcomes[i] as CommitOutcome));
            const records = group.map((g) => g.item.record(outcomeOf.get(g)));
            if (note) records.unshift(note);
            const s = this.#log.stageSync(records);
            staged = s;
            return { before: s.before, after: s.after, lines: s.lines };
          },
        },
      });
    } catch (e) {
      if (staged !== undefined && e instanceof SmkiError && e.code === 'ERR_STORE_UNAVAILABLE') {
        // The transaction may or may not have been applied: keep the stage, learn which later.
        this.#unknown = staged;
      } else {
        this.#log.abortStaged();
        if (e instanceof SmkiError && e.code === 'ERR_STORE_LOG_CONFLICT') this.#fatal = e;
      }
      return fail(e);
    }
    this.#note = undefined;
    this.#expected = (staged as AuditStaged).after;
    try {
      await this.#log.commitStaged();
    } catch (e) {
      // The state and the records are durable in the store (its intent); the file is not. The
      // log refuses further records, so every later command fails closed until a restart
      // writes the intent lines.
      this.#fatal = e instanceof SmkiError ? e : new SmkiError('ERR_AUDIT_WRITE_FAILED', 'the decision log could not be written', { detail: String(e) });
    }
    for (const g of group) settle(g, () => g.item.result(outcomeOf.get(g)));
  }

  /** Learn whether the commit of the staged group was applied, from the store's intent. */
  async #resolveUnknown(): Promise<void> {
    const staged = this.#unknown as AuditStaged;
    const intent = await this.#store.logIntent(this.#id);
    if (sameLogHead(intent?.after, staged.after)) {
      this.#unknown = undefined;
      this.#expected = staged.after;
      await this.#log.commitStaged();
      this.#note = { type: 'commit.unacknowledged', firstSeq: staged.before.count + 1, records: staged.lines.length };
    } else if (sameLogHead(intent?.after, this.#expected)) {
      this.#unknown = undefined;
      this.#log.abortStaged();
    } else {
      this.#fatal = new SmkiError('ERR_STORE_LOG_CONFLICT', `the store's head for decision log ${this.#id} moved under this process`, { log: this.#id });
      throw this.#fatal;
    }
    await this.#log.beginStage();
  }

  /** Wait for queued groups, then close the log. */
  async close(): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#unknown) {
      try {
        const intent = await this.#store.logIntent(this.#id);
        if (sameLogHead(intent?.after, this.#unknown.after)) await this.#log.commitStaged();
        else this.#log.abortStaged();
      } catch {
        this.#log.abortStaged();
      }
      this.#unknown = undefined;
    }
    await this.#log.close();
  }
}
