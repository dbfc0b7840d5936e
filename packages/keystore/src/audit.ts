/**
 * The key store's audit trail: an append-only, hash-chained, HMAC-authenticated log of every
 * lifecycle change and every use of a key. The same log serves other packages with a record
 * schema of their own ({@link defineAuditSchema}); the key store's is {@link KEYSTORE_AUDIT_SCHEMA}.
 *
 * File format: `<dir>/audit.log` (or the file named by {@link AuditLogOptions.file}), one JSON
 * object per line (JSONL, UTF-8, `\n` after every record). Each record is, in this exact key
 * order and with no white space:
 *
 * ```text
 * {"seq":N,"at":"<ISO time>","type":"<event type>",<event fields in schema order>,"prev":"<64 hex>","mac":"<64 hex>"}
 * ```
 *
 * - `seq` numbers the records from 1; in an intact log, record `seq` is on line `seq`.
 * - `prev` is SHA-256 of the previous record's line bytes (without its `\n`), upper-case hex;
 *   64 zeros for the first record.
 * - `mac` is HMAC-SHA256, under the audit key, of the record's canonical bytes: the line up to
 *   (not including) `,"mac":`, followed by `}`. It therefore covers `seq`, `at`, `type`, every
 *   event field and `prev`. A record must be in exactly this canonical form (the verifier
 *   re-serialises it and compares), so the bytes on disk are determined by what the MAC covers.
 * - `bigint` counters are written as decimal strings; every other field is an id, an EUI-64, a
 *   serial or fingerprint in upper-case hex, a purpose, a role code or a count (the field kinds
 *   of {@link AuditFieldKind}; which fields a type has, and in which order, is the schema's).
 *
 * The authenticated head ({@link AuditHead}: record count, hash of the last line, byte length)
 * is kept by the store inside its HMAC-authenticated metadata, so cutting records off the end is
 * detected as well as editing, deleting, inserting or reordering them.
 * @module
 */
import { createHash, createHmac, hash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { open as openFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isRemotePartyRole, SmkiError, type Eui64, type RemotePartyRoleCode } from '@smki/core';
import { fsyncDirectory } from './internal/fsutil.js';
import { KEY_PURPOSES, type KeyPurpose } from './types.js';

// ---------------------------------------------------------------------------------------------
// Events

/**
 * One audited event: a lifecycle change of the store or a use of a key. A discriminated union on
 * `type`; each member carries identifiers, EUI-64s, serials, fingerprints, purposes and counts
 * only.
 *
 * Security: audit records never carry key material. This is enforced by construction (these
 * types) and at run time: {@link AuditLog.append} refuses an event with a field its type does not
 * list (e.g. `privateKey`), an identifier outside `[A-Za-z0-9._:@/+-]{1,128}`, or text over 128
 * characters.
 */
export type AuditEvent =
  | {
      /** An organisation was added to the store. */
      readonly type: 'organisation.created';
      /** Its EUI-64 entity id. */
      readonly entityId: Eui64;
      /** Its Remote Party Role code. */
      readonly role: RemotePartyRoleCode;
    }
  | {
      /** A portfolio was created. */
      readonly type: 'portfolio.created';
      /** The owning organisation. */
      readonly organisation: Eui64;
      /** The portfolio id. */
      readonly portfolioId: string;
      /** Its display name (at most 128 characters). */
      readonly name: string;
      /** Purposes for which its key serves the whole estate. */
      readonly wholeEstate: readonly KeyPurpose[];
    }
  | {
      /** A key pair was generated. */
      readonly type: 'key.generated';
      /** The key id. */
      readonly keyId: string;
      /** The owning organisation. */
      readonly organisation: Eui64;
      /** Its portfolio. */
      readonly portfolioId: string;
      /** Its purpose. */
      readonly purpose: KeyPurpose;
      /** Generation within (portfolio, purpose), from 1. */
      readonly generation: number;
      /** The backend kind holding it (`memory`, `file`, `pkcs11`). */
      readonly backend: string;
    }
  | {
      /** A certification request was made (signed) for a key. */
      readonly type: 'key.csr';
      /** The key id. */
      readonly keyId: string;
    }
  | {
      /** A certificate was attached to a key (it became active). */
      readonly type: 'certificate.attached';
      /** The key id. */
      readonly keyId: string;
      /** The certificate's serial number, upper-case hex. */
      readonly serialNumber: string;
      /** The certificate's fingerprint (SHA-256 of its DER), upper-case hex. */
      readonly fingerprint: string;
    }
  | {
      /** A portfolio's current key for a purpose was replaced. */
      readonly type: 'key.rotated';
      /** The owning organisation (portfolio ids are unique per organisation only). */
      readonly organisation: Eui64;
      /** The portfolio. */
      readonly portfolioId: string;
      /** The purpose. */
      readonly purpose: KeyPurpose;
      /** The key that was current, if there was one. */
      readonly fromKeyId?: string;
      /** The key that is current now. */
      readonly toKeyId: string;
      /** How many devices' credentials must be updated to the new key. */
      readonly devicesToUpdate: number;
    }
  | {
      /** A key was retired. */
      readonly type: 'key.retired';
      /** The key id. */
      readonly keyId: string;
    }
  | {
      /** A key was revoked. */
      readonly type: 'key.revoked';
      /** The key id. */
      readonly keyId: string;
      /** Why (at most 128 characters), e.g. `keyCompromise`. */
      readonly reason?: string;
    }
  | {
      /** A device was assigned to a portfolio. */
      readonly type: 'device.assigned';
      /** The owning organisation. */
      readonly organisation: Eui64;
      /** The device. */
      readonly device: Eui64;
      /** The portfolio. */
      readonly portfolioId: string;
    }
  | {
      /** A device was moved between two portfolios of one organisation. */
      readonly type: 'device.moved';
      /** The owning organisation (portfolio ids are unique per organisation only). */
      readonly organisation: Eui64;
      /** The device. */
      readonly device: Eui64;
      /** The portfolio it left. */
      readonly fromPortfolioId: string;
      /** The portfolio it joined. */
      readonly toPortfolioId: string;
    }
  | {
      /** A device's trust anchor for a purpose now is a key's certificate. */
      readonly type: 'device.credentials-updated';
      /** The device. */
      readonly device: Eui64;
      /** The purpose. */
      readonly purpose: KeyPurpose;
      /** The key whose certificate the device trusts now. */
      readonly keyId: string;
    }
  | {
      /** A key was used for a device (a signature or a key agreement). */
      readonly type: 'key.used';
      /** Which operation. */
      readonly operation: 'sign' | 'keyAgreement';
      /** The key id. */
      readonly keyId: string;
      /** The key's portfolio. */
      readonly portfolioId: string;
      /** The device the operation was for. */
      readonly device: Eui64;
      /** GBCS message code (0..0xFFFF), where known. */
      readonly messageCode?: number;
      /** Originator counter of the command (0 ≤ counter < 2^64), written as a decimal string. */
      readonly counter?: bigint;
      /** Never set for a use for a device (only an `xml-sign` record carries a request id). */
      readonly requestId?: undefined;
      /** The operator whose signing session made the signature (a store under access control). */
      readonly operatorId?: string;
    }
  | {
      /**
       * An organisation's DUIS XML signing key signed (operation `xml-sign`): a use of an
       * organisation key, for no device. Written with the fields of `key.used` in the same order.
       */
      readonly type: 'key.used';
      /** The operation: a DUIS XML signature. */
      readonly operation: 'xml-sign';
      /** The key id. */
      readonly keyId: string;
      /** The key's portfolio. */
      readonly portfolioId: string;
      /** Never set: no meter is involved. */
      readonly device?: undefined;
      /** Never set. */
      readonly messageCode?: undefined;
      /** Never set. */
      readonly counter?: undefined;
      /** The DUIS RequestID of the signed request, where given (an identifier, at most 128 characters). */
      readonly requestId?: string;
      /** The operator whose signing session made the signature (a store under access control). */
      readonly operatorId?: string;
    }
  | {
      /** The store was opened. */
      readonly type: 'store.opened';
      /** Records found beyond the stored head and adopted by the crash-recovery rule. */
      readonly recoveredRecords?: number;
      /** Bytes of a torn final line removed by the crash-recovery rule. */
      readonly tornBytesRemoved?: number;
      /**
       * Revocations and retirements found in the log beyond the metadata's head and applied again
       * on open (the metadata was older than the log, e.g. restored from a backup).
       */
      readonly reappliedRecords?: number;
      /** Lifecycle records the metadata had committed that were written to the log on open (a crash came between the two writes). */
      readonly completedRecords?: number;
    }
  | {
      /** A store with its metadata in a database was created: the first record of its trail. */
      readonly type: 'store.created';
      /** The store id (32 lower-case hex digits), bound into every row MAC and audit seal. */
      readonly storeId: string;
      /** The database: `sqlite` or `postgres`. */
      readonly database: string;
    }
  | {
      /**
       * The store began checkpointing its audit head to an anchor (the first time it opened with
       * one): from then on an anchor with no checkpoint of this store refuses it (an empty mount
       * point looks like a new anchor).
       */
      readonly type: 'audit.anchored';
      /** `directory` or `postgres`. */
      readonly anchor: string;
    }
  | {
      /** The store's access control was set up: its first operators and its policy (the initialisation ceremony). */
      readonly type: 'access.initialised';
      /** How many operators the ceremony set. */
      readonly operators: number;
      /** SHA-256 of the policy's canonical JSON (upper-case hex). */
      readonly policySha256: string;
    }
  | {
      /** An operator was added (by the ceremony, or by an authorised request). */
      readonly type: 'operator.added';
      /** Its id. */
      readonly operatorId: string;
      /** Its public key (the 65-byte point, upper-case hex): what its requests and approvals verify under. */
      readonly publicKey: string;
      /** SHA-256 of its grants' canonical JSON. */
      readonly grantsSha256: string;
    }
  | {
      /** An operator was removed: nothing it signs is accepted any more. */
      readonly type: 'operator.removed';
      /** Its id. */
      readonly operatorId: string;
    }
  | {
      /** The access policy was replaced. */
      readonly type: 'policy.set';
      /** SHA-256 of the new policy's canonical JSON. */
      readonly policySha256: string;
    }
  | {
      /**
       * A signed operator request was verified, authorised and executed: the records after it in
       * the same batch are its effect. The request itself (with its signature) is kept beside the
       * trail; `requestSha256` binds it here.
       */
      readonly type: 'operator.authorised';
      /** The operator. */
      readonly operatorId: string;
      /** Its counter (consumed). */
      readonly counter: bigint;
      /** The operation's name. */
      readonly operation: string;
      /** SHA-256 of the operation's canonical JSON. */
      readonly operationHash: string;
      /** SHA-256 of the whole signed request's canonical JSON. */
      readonly requestSha256: string;
      /** The proposal it executes, when the policy asked for approvals. */
      readonly proposalId?: string;
    }
  | {
      /** A request was refused: its code, and what could be read of it. */
      readonly type: 'operator.refused';
      /** The refusal's code. */
      readonly code: string;
      /** The operator it named, when it named one in the form of an id. */
      readonly operatorId?: string;
      /** The operation's name, when it was one. */
      readonly operation?: string;
    }
  | {
      /** An operation was proposed for approval. */
      readonly type: 'proposal.created';
      /** Its id. */
      readonly proposalId: string;
      /** The proposing operator (never counts towards the quorum). */
      readonly proposer: string;
      /** The operation's name. */
      readonly operation: string;
      /** SHA-256 of the operation's canonical JSON. */
      readonly operationHash: string;
      /** When it expires (ISO). */
      readonly expiresAt: string;
      /** SHA-256 of the proposer's signed request. */
      readonly requestSha256: string;
    }
  | {
      /** An operator approved a proposal; the signed approval is kept beside the trail, bound by its hash. */
      readonly type: 'proposal.approved';
      /** The proposal. */
      readonly proposalId: string;
      /** The approver. */
      readonly approverId: string;
      /** SHA-256 of the signed approval's canonical JSON. */
      readonly approvalSha256: string;
    }
  | {
      /** A proposal's operation was executed once its quorum was met: it is closed. */
      readonly type: 'proposal.executed';
      /** The proposal. */
      readonly proposalId: string;
      /** How many distinct approvals it had. */
      readonly approvals: number;
    }
  | {
      /**
       * A store of an earlier release (JSON metadata, file audit log) was migrated into this one:
       * the head of the old log, verified before the migration, binds the old trail to this one.
       */
      readonly type: 'store.migrated';
      /** Records in the old log. */
      readonly fromRecords: number;
      /** SHA-256 of the old log's last line (upper-case hex). */
      readonly fromHash: string;
      /** Organisations, portfolios, keys and devices migrated, in total. */
      readonly rows: number;
    };

/**
 * What every audit event is: an object whose `type` names its record type in the log's schema
 * (see {@link AuditSchema}), with the fields the schema lists for that type.
 */
export interface AuditEventBase {
  /** The record type: one of the schema's type names. */
  readonly type: string;
}

/** The `type` of an {@link AuditEvent}. */
export type AuditEventType = AuditEvent['type'];

/**
 * A record as stored: the event plus its place in the chain. Every field is covered by `mac`.
 * `E` is the event type of the log's schema (the key store's {@link AuditEvent} by default).
 */
export type AuditRecord<E extends AuditEventBase = AuditEvent> = E & {
  /** Record number, from 1. */
  readonly seq: number;
  /** When it was appended (ISO 8601, UTC, milliseconds). */
  readonly at: string;
  /** SHA-256 of the previous record's line (upper-case hex; 64 zeros for the first). */
  readonly prev: string;
  /** HMAC-SHA256 of the canonical bytes under the audit key (upper-case hex). */
  readonly mac: string;
};

/**
 * The authenticated head of the log: what the store keeps in its HMAC-authenticated metadata
 * (a plain JSON-serialisable object). With it, {@link AuditLog.open} and {@link verifyAuditLog}
 * detect records cut off the end, and a log replaced by another one.
 */
export interface AuditHead {
  /** Number of records (the `seq` of the last one; 0 for an empty log). */
  readonly count: number;
  /** SHA-256 of the last record's line, upper-case hex (64 zeros for an empty log). */
  readonly lastHash: string;
  /** Byte length of the log up to and including the last record's `\n`. */
  readonly bytes: number;
}

/** One problem {@link verifyAuditLog} found, and where. */
export interface AuditFinding {
  /**
   * `ERR_AUDIT_TAMPERED` (edited, forged, deleted, reordered, replaced), `ERR_AUDIT_TRUNCATED` (cut
   * off, torn) or, when the verifier is told which record types may lie beyond the head,
   * `ERR_KEYSTORE_METADATA_ROLLBACK` (a lifecycle record beyond the head: the metadata that
   * carries the head is older than the log). Checked against an audit anchor:
   * `ERR_AUDIT_CHECKPOINT_INVALID` (its checkpoint does not verify) or `ERR_AUDIT_ANCHOR_UNAVAILABLE`
   * (it cannot be read, or holds nothing for a trail that says it was anchored).
   */
  readonly code: 'ERR_AUDIT_TAMPERED' | 'ERR_AUDIT_TRUNCATED' | 'ERR_KEYSTORE_METADATA_ROLLBACK' | 'ERR_AUDIT_CHECKPOINT_INVALID' | 'ERR_AUDIT_ANCHOR_UNAVAILABLE';
  /** What is wrong. */
  readonly message: string;
  /** Line number (from 1) where it was found, where there is one. */
  readonly line?: number;
  /** The record's `seq` (as claimed by the line, if it could be read). */
  readonly seq?: number;
  /** Byte offset of the line in the file. */
  readonly offset?: number;
}

/** The result of {@link verifyAuditLog}. */
export interface AuditVerification {
  /** Whether the log verifies: no findings. */
  readonly ok: boolean;
  /** Number of complete (newline-terminated) lines read. */
  readonly count: number;
  /** The head of the log as verified (present only when `ok`). */
  readonly head?: AuditHead;
  /** What is wrong, in file order; the first one is where the log stops verifying. */
  readonly findings: readonly AuditFinding[];
  /** Findings left out after the first {@link MAX_FINDINGS} (a log of garbage has one per line). */
  readonly omittedFindings: number;
  /**
   * Lines the metadata committed to (its {@link AuditIntent}) that are not in the log yet: a crash
   * came between the two writes, and the next open writes them. 0 when there is no intent.
   */
  readonly intentLinesMissing?: number;
}

/** What {@link AuditLog.open} repaired or adopted under the crash-recovery rule. */
export interface AuditRecovery<E extends AuditEventBase = AuditEvent> {
  /** Bytes of a torn (not newline-terminated) final line that were removed; 0 if none. */
  readonly tornBytesRemoved: number;
  /** Complete, valid records found beyond the given head and adopted. */
  readonly recordsBeyondHead: number;
  /**
   * The lifecycle records among them (every type but the schema's {@link AuditSchema.useTypes}:
   * for the key store, every type but `key.used`), at most 1000, for the store to reconcile its
   * metadata with: their events may or may not have taken effect.
   */
  readonly lifecycleBeyondHead: readonly AuditRecord<E>[];
  /** Lines of the {@link AuditIntent} that were missing from the log and were written on open. */
  readonly intentLinesWritten: number;
}

/**
 * Records a writer committed to before writing them: the exact lines (each without its `\n`) and
 * the head they follow. A store that saves its new state and the records describing it in one
 * atomic metadata write, before appending them (see {@link AuditLog.stage}), passes the intent
 * back on open: if a crash came between the two writes, the log ends at `before` (or part-way
 * through the lines) and {@link AuditLog.open} writes the missing lines, so the log always
 * catches up with the metadata and a lifecycle record is never found beyond the saved head after
 * a crash.
 */
export interface AuditIntent {
  /** The head of the log before the lines. */
  readonly before: AuditHead;
  /** The committed lines, in order, without their `\n`. */
  readonly lines: readonly string[];
}

/** What {@link AuditLog.stage} computed: the lines to save with the state, and the heads around them. */
export interface AuditStaged extends AuditIntent {
  /** The head of the log once the lines are written (save it with the state). */
  readonly after: AuditHead;
}

/** Options of {@link AuditLog.open}; `E` is the event type of {@link AuditLogOptions.schema}. */
export interface AuditLogOptions<E extends AuditEventBase = AuditEvent> {
  /**
   * The 32-byte audit key. The key store derives it from its secret with {@link deriveAuditKey};
   * a log of another package uses a key of its own (32 bytes from its own secret or KDF), never
   * the key store's: the schema is not covered by the MAC, so separate keys are what keep one
   * package's records from being passed off as another's.
   */
  readonly key: Uint8Array;
  /**
   * The record schema: which event types the log holds, their fields in canonical order, and
   * which types are use records (default {@link KEYSTORE_AUDIT_SCHEMA}). Open a log with the
   * schema it was written with: a record the schema does not describe exactly is tampering.
   */
  readonly schema?: AuditSchema<E>;
  /**
   * The log's file name inside `dir` (default {@link AUDIT_LOG_FILE}): a plain name of 1 to 255
   * characters from `[A-Za-z0-9._-]`, not `.` or `..` (no path separators).
   */
  readonly file?: string;
  /**
   * The authenticated head the store kept in its metadata. Absent only for a store that has
   * never written one: then any well-formed chain is accepted and truncation cannot be detected.
   */
  readonly head?: AuditHead;
  /** How long use (non-durable) records may wait in memory before they are written and synced, in ms (default 50, 0..10000). */
  readonly groupCommitMs?: number;
  /**
   * `full` (default): verify every record on open. `tail`: check the record the head names and
   * verify only the records after it, in time independent of the log's length; edits before the
   * head are then found only by {@link verifyAuditLog}.
   */
  readonly verifyOnOpen?: 'full' | 'tail';
  /**
   * Lines the caller's metadata committed to after `before` (see {@link AuditIntent}); `head` is
   * then the head after them. Missing lines are written on open; any other disagreement refuses.
   */
  readonly intent?: AuditIntent;
  /** Fault-injection hook (tests only): called at `audit:before-write`, `audit:after-write`, `audit:after-fsync`, `audit:recover-before-truncate`, `audit:recover-after-truncate`. */
  readonly fault?: (point: string) => void;
  /** Clock (default `() => new Date()`). */
  readonly now?: () => Date;
}

/** File name of the log inside the store directory. */
export const AUDIT_LOG_FILE = 'audit.log';

/** Longest line the verifier reads (64 KiB); a longer one is a finding, never a big allocation. */
export const MAX_AUDIT_LINE_BYTES = 64 * 1024;

/** Most findings {@link verifyAuditLog} reports; the rest are counted in `omittedFindings`. */
export const MAX_FINDINGS = 1000;

const ZERO_HASH = '0'.repeat(64);
const HKDF_INFO = 'smki-keystore audit v1';
/** `,"mac":"` + 64 hex + `"}` */
const MAC_TAIL_BYTES = 74;
const MAX_PENDING_BYTES = 1 << 20;
const MAX_LIFECYCLE_BEYOND_HEAD = 1000;

// ---------------------------------------------------------------------------------------------
// Key derivation

/**
 * Derive the audit log's HMAC key from the store's secret: HKDF-SHA256 (RFC 5869), empty salt,
 * info `smki-keystore audit v1`, 32 bytes. The store and any verifier derive it the same way; it
 * is independent of every other key derived from the secret (different info).
 *
 * Security: anyone holding this key (or the store secret) can write records that verify,
 * including rewriting the whole log; give auditors the key only where that is acceptable.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` if `secret` is not a Uint8Array of at least 32 bytes
 * @see RFC 5869
 */
export function deriveAuditKey(secret: Uint8Array): Uint8Array {
  if (!(secret instanceof Uint8Array) || secret.length < 32) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'the store secret must be at least 32 bytes', {});
  }
  return new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), HKDF_INFO, 32));
}

// ---------------------------------------------------------------------------------------------
// Schema and canonical serialisation

/**
 * The kind of an audit record field: which values it takes, and how it is written.
 *
 * - `eui64`: a canonical EUI-64 (16 upper-case hex digits), a JSON string;
 * - `role`: a Remote Party Role code, a number;
 * - `id`: an identifier, `[A-Za-z0-9._:@/+-]{1,128}`, a string;
 * - `text`: at most 128 characters, no control characters, a JSON string;
 * - `purpose`: a key purpose; `purposes`: a list of distinct key purposes;
 * - `uint`: a non-negative safe integer; `messageCode`: an integer 0..0xFFFF (GBCS message code);
 * - `hex`: 1 to 128 upper-case hex digits, a string;
 * - `operation`: `sign`, `keyAgreement` or `xml-sign`;
 * - `counter`: a `bigint` 0 ≤ n < 2^64, written as a decimal string;
 * - `point`: an uncompressed P-256 public key, 130 upper-case hex digits starting `04`, a string.
 *
 * Every kind is bounded, so every record is (see {@link defineAuditSchema}).
 */
export type AuditFieldKind = 'eui64' | 'role' | 'id' | 'text' | 'purpose' | 'purposes' | 'uint' | 'hex' | 'operation' | 'messageCode' | 'counter' | 'point';

/**
 * One field of an audit record type. `N` is the set of names it may have: the properties of the
 * event it describes, so that the compiler catches a misspelt field.
 */
export interface AuditFieldSpec<N extends string = string> {
  /**
   * The field's name: `[A-Za-z][A-Za-z0-9_]{0,63}`, not `seq`, `at`, `type`, `prev` or `mac`,
   * and no property of `Object.prototype` (`constructor`, `toString`, …).
   */
  readonly name: N;
  /** What it holds. */
  readonly kind: AuditFieldKind;
  /** Set when the field may be absent; an absent field is left out of the record. */
  readonly optional?: true;
}

/**
 * A record schema: the event types a log holds, each with its fields in canonical (written)
 * order, and which of them are use records. `E` is the union of events, discriminated on `type`.
 * Make one with {@link defineAuditSchema}; the key store's is {@link KEYSTORE_AUDIT_SCHEMA}.
 */
export interface AuditSchema<E extends AuditEventBase = AuditEvent> {
  /** For every event type, its fields in canonical order (at most 12); each name is one of that event's properties. */
  readonly types: { readonly [T in E['type']]: readonly AuditFieldSpec<Exclude<keyof Extract<E, Record<'type', T>>, 'type'> & string>[] };
  /**
   * Types that may lie beyond the saved head without being reported (like the key store's
   * `key.used`): records of use, not of state, which a writer appends after it last saved the
   * head. Records of every other type found there on open are handed over in
   * {@link AuditRecovery.lifecycleBeyondHead}.
   */
  readonly useTypes: readonly E['type'][];
}

const TYPE_NAME = /^[a-z][a-z0-9.-]{0,63}$/;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const FILE_NAME = /^[A-Za-z0-9._-]{1,255}$/;
const RESERVED_FIELDS = ['seq', 'at', 'type', 'prev', 'mac'];
const KINDS: readonly AuditFieldKind[] = ['eui64', 'role', 'id', 'text', 'purpose', 'purposes', 'uint', 'hex', 'operation', 'messageCode', 'counter', 'point'];
const MAX_FIELDS = 12;

/** A schema as the log uses it: checked, copied, looked up without prototypes. */
interface Compiled {
  readonly types: ReadonlyMap<string, readonly AuditFieldSpec[]>;
  readonly use: ReadonlySet<string>;
}

function badSchema(message: string, detail: string): never {
  throw invalid(`audit schema: ${message}`, detail);
}

/** Check a schema (from any caller: it may not have been made by defineAuditSchema) and copy it. */
function compileSchema(schema: unknown): Compiled {
  const s = schema as { readonly types?: unknown; readonly useTypes?: unknown } | null | undefined;
  const given = s?.types;
  // (An object `types` means `s` is an object too.)
  if (typeof given !== 'object' || given === null || !Array.isArray(s!.useTypes)) badSchema('not a schema { types, useTypes }', 'schema');
  const types = new Map<string, readonly AuditFieldSpec[]>();
  for (const [type, list] of Object.entries(given)) {
    const where = `types.${type.slice(0, 64)}`;
    if (!TYPE_NAME.test(type)) badSchema('a type name is [a-z][a-z0-9.-]{0,63}', where);
    if (!Array.isArray(list) || list.length > MAX_FIELDS) badSchema(`a type has a list of at most ${MAX_FIELDS} fields`, where);
    const fields: AuditFieldSpec[] = [];
    for (const spec of list as unknown[]) {
      const { name, kind, optional } = (spec ?? {}) as { name?: unknown; kind?: unknown; optional?: unknown };
      if (typeof name !== 'string' || !FIELD_NAME.test(name) || RESERVED_FIELDS.includes(name) || name in Object.prototype) {
        badSchema('a field name is [A-Za-z][A-Za-z0-9_]{0,63}, not seq, at, type, prev or mac, nor a property of Object.prototype', `${where}[${fields.length}]`);
      }
      if (fields.some((x) => x.name === name)) badSchema('a field name is repeated', `${where}.${name}`);
      if (!KINDS.includes(kind as AuditFieldKind)) badSchema('unknown field kind', `${where}.${name}`);
      if (optional !== undefined && optional !== true) badSchema('optional is true or absent', `${where}.${name}`);
      fields.push(Object.freeze(optional ? { name, kind: kind as AuditFieldKind, optional } : { name, kind: kind as AuditFieldKind }));
    }
    types.set(type, Object.freeze(fields));
  }
  if (types.size === 0) badSchema('no types', 'types');
  const use = new Set<string>();
  for (const t of s!.useTypes as unknown[]) {
    if (!types.has(t as string)) badSchema('a use type is not one of the types', 'useTypes');
    use.add(t as string);
  }
  return { types, use };
}

/**
 * Check a record schema and return a frozen copy of it, for {@link AuditLog.open} and
 * {@link verifyAuditLog}. This is how a package other than the key store gets the same log
 * (chain, MACs, head, group commit, staged appends, crash recovery) for records of its own.
 *
 * Rules: at least one type; type names `[a-z][a-z0-9.-]{0,63}`; per type at most 12 fields, each
 * named `[A-Za-z][A-Za-z0-9_]{0,63}` (not `seq`, `at`, `type`, `prev` or `mac`, no property of
 * `Object.prototype`, no name twice), of a known {@link AuditFieldKind}, with `optional` absent
 * or `true`; every use type one of the types.
 *
 * Bound: every kind is bounded (the longest value is a `text` of 128 lone surrogates, 770 bytes
 * as JSON), so the longest record of any schema is 10,333 bytes (12 such fields with
 * 64-character names, a 64-character type, a 16-digit `seq`), far under the verifier's line
 * limit {@link MAX_AUDIT_LINE_BYTES}: the writer needs no length check. A record of
 * {@link KEYSTORE_AUDIT_SCHEMA} is under 2 KiB.
 *
 * Compatibility: a schema may grow (a new type, a new optional field) and the records written
 * before still verify; a record that carries a field the schema no longer lists, or lists with
 * another kind, does not.
 *
 * Security: the schema decides what a record may carry: give no field a kind that could hold a
 * secret (a `hex` of 128 digits holds a private key). The schema is not covered by the MAC, so a
 * log verifies under any schema that describes each of its records exactly: give each log a key
 * of its own.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` naming the type or field that breaks a rule
 * @example
 * ```ts
 * import { AuditLog, defineAuditSchema, verifyAuditLog } from '@smki/keystore';
 * import type { Eui64 } from '@smki/core';
 * type Decision =
 *   | { readonly type: 'command.accepted'; readonly device: Eui64; readonly messageCode: number; readonly counter: bigint }
 *   | { readonly type: 'command.refused'; readonly device: Eui64; readonly reason: string };
 * const schema = defineAuditSchema<Decision>({
 *   types: {
 *     'command.accepted': [{ name: 'device', kind: 'eui64' }, { name: 'messageCode', kind: 'messageCode' }, { name: 'counter', kind: 'counter' }],
 *     'command.refused': [{ name: 'device', kind: 'eui64' }, { name: 'reason', kind: 'text' }],
 *   },
 *   useTypes: ['command.accepted', 'command.refused'],
 * });
 * const key = new Uint8Array(32).fill(9); // the validator's own 32-byte key, not the key store's
 * const log = await AuditLog.open('/var/lib/smki/validator', { key, schema, file: 'decisions.log' });
 * await log.append({ type: 'command.refused', device: '00DB1234567890A0' as Eui64, reason: 'ERR_COMMAND_REPLAYED' }, { durable: true });
 * const head = await log.flush();
 * await log.close();
 * console.log((await verifyAuditLog(log.path, { key, head, schema })).ok); // true
 * ```
 */
export function defineAuditSchema<E extends AuditEventBase>(schema: AuditSchema<E>): AuditSchema<E> {
  const c = compileSchema(schema);
  return Object.freeze({ types: Object.freeze(Object.fromEntries(c.types)), useTypes: Object.freeze([...c.use]) }) as unknown as AuditSchema<E>;
}

/** A field of the key store's schema, frozen. */
const f = <N extends string>(name: N, kind: AuditFieldKind, optional?: true): AuditFieldSpec<N> => Object.freeze(optional ? { name, kind, optional } : { name, kind });
/** A frozen field list. */
const fields = <N extends string>(...specs: AuditFieldSpec<N>[]): readonly AuditFieldSpec<N>[] => Object.freeze(specs);

// Frozen by hand, not by defineAuditSchema: nothing is checked at import time. Each open and
// verify checks the schema it uses, this one included.
/**
 * The key store's record schema: the types of {@link AuditEvent} with their fields in canonical
 * order; `key.used` is its one use type (a record of it may lie beyond the saved head, written by
 * group commit after the metadata). The default of {@link AuditLogOptions.schema}.
 */
export const KEYSTORE_AUDIT_SCHEMA: AuditSchema<AuditEvent> = Object.freeze({
  types: Object.freeze({
    'organisation.created': fields(f('entityId', 'eui64'), f('role', 'role')),
    'portfolio.created': fields(f('organisation', 'eui64'), f('portfolioId', 'id'), f('name', 'text'), f('wholeEstate', 'purposes')),
    'key.generated': fields(
      f('keyId', 'id'),
      f('organisation', 'eui64'),
      f('portfolioId', 'id'),
      f('purpose', 'purpose'),
      f('generation', 'uint'),
      f('backend', 'id'),
    ),
    'key.csr': fields(f('keyId', 'id')),
    'certificate.attached': fields(f('keyId', 'id'), f('serialNumber', 'hex'), f('fingerprint', 'hex')),
    'key.rotated': fields(
      f('organisation', 'eui64'),
      f('portfolioId', 'id'),
      f('purpose', 'purpose'),
      f('fromKeyId', 'id', true),
      f('toKeyId', 'id'),
      f('devicesToUpdate', 'uint'),
    ),
    'key.retired': fields(f('keyId', 'id')),
    'key.revoked': fields(f('keyId', 'id'), f('reason', 'text', true)),
    'device.assigned': fields(f('organisation', 'eui64'), f('device', 'eui64'), f('portfolioId', 'id')),
    'device.moved': fields(f('organisation', 'eui64'), f('device', 'eui64'), f('fromPortfolioId', 'id'), f('toPortfolioId', 'id')),
    'device.credentials-updated': fields(f('device', 'eui64'), f('purpose', 'purpose'), f('keyId', 'id')),
    // `device` is absent only from an `xml-sign` record, and `requestId` only there present: a
    // field made optional and a field added at the end, so every record written before verifies.
    'key.used': fields(
      f('operation', 'operation'),
      f('keyId', 'id'),
      f('portfolioId', 'id'),
      f('device', 'eui64', true),
      f('messageCode', 'messageCode', true),
      f('counter', 'counter', true),
      f('requestId', 'id', true),
      f('operatorId', 'id', true),
    ),
    'store.opened': fields(f('recoveredRecords', 'uint', true), f('tornBytesRemoved', 'uint', true), f('reappliedRecords', 'uint', true), f('completedRecords', 'uint', true)),
    'store.created': fields(f('storeId', 'id'), f('database', 'id')),
    'audit.anchored': fields(f('anchor', 'id')),
    'access.initialised': fields(f('operators', 'uint'), f('policySha256', 'hex')),
    'operator.added': fields(f('operatorId', 'id'), f('publicKey', 'point'), f('grantsSha256', 'hex')),
    'operator.removed': fields(f('operatorId', 'id')),
    'policy.set': fields(f('policySha256', 'hex')),
    'operator.authorised': fields(f('operatorId', 'id'), f('counter', 'counter'), f('operation', 'id'), f('operationHash', 'hex'), f('requestSha256', 'hex'), f('proposalId', 'id', true)),
    'operator.refused': fields(f('code', 'id'), f('operatorId', 'id', true), f('operation', 'id', true)),
    'proposal.created': fields(f('proposalId', 'id'), f('proposer', 'id'), f('operation', 'id'), f('operationHash', 'hex'), f('expiresAt', 'text'), f('requestSha256', 'hex')),
    'proposal.approved': fields(f('proposalId', 'id'), f('approverId', 'id'), f('approvalSha256', 'hex')),
    'proposal.executed': fields(f('proposalId', 'id'), f('approvals', 'uint')),
    'store.migrated': fields(f('fromRecords', 'uint'), f('fromHash', 'hex'), f('rows', 'uint')),
  }),
  useTypes: Object.freeze(['key.used'] as const),
});

/** The schema an option names, checked (the key store's when absent). */
function schemaOf(schema: unknown): Compiled {
  return compileSchema(schema === undefined ? KEYSTORE_AUDIT_SCHEMA : schema);
}

const PURPOSES: readonly KeyPurpose[] = KEY_PURPOSES;
const OPERATIONS: readonly unknown[] = ['sign', 'keyAgreement', 'xml-sign'];
const ID = /^[A-Za-z0-9._:@/+-]{1,128}$/;
const EUI64 = /^[0-9A-F]{16}$/;
const HEX = /^[0-9A-F]{1,128}$/;
const HASH = /^[0-9A-F]{64}$/;
const POINT = /^04[0-9A-F]{128}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const TWO_64 = 1n << 64n;

function invalid(message: string, detail: string): SmkiError<'ERR_INVALID_ARGUMENT'> {
  return new SmkiError('ERR_INVALID_ARGUMENT', message, { detail });
}

function badField(type: string, spec: AuditFieldSpec, message: string): never {
  throw invalid(`audit event ${type}: field ${spec.name} ${message}`, `${type}.${spec.name}`);
}

/** The JSON text of one field value, after checking it against its kind. Never echoes the value. */
function encodeValue(type: string, spec: AuditFieldSpec, v: unknown): string {
  switch (spec.kind) {
    case 'eui64':
      if (typeof v !== 'string' || !EUI64.test(v)) badField(type, spec, 'is not a canonical EUI-64 (16 upper-case hex digits)');
      return `"${v as string}"`;
    case 'role':
      if (!isRemotePartyRole(v)) badField(type, spec, 'is not a Remote Party Role code');
      return String(v);
    case 'id':
      if (typeof v !== 'string' || !ID.test(v)) badField(type, spec, 'is not an identifier ([A-Za-z0-9._:@/+-], 1 to 128 characters)');
      return `"${v as string}"`;
    case 'text':
      if (typeof v !== 'string' || v.length > 128 || CONTROL.test(v)) badField(type, spec, 'is not text of at most 128 characters without control characters');
      return JSON.stringify(v);
    case 'purpose':
      if (!PURPOSES.includes(v as KeyPurpose)) badField(type, spec, 'is not a key purpose');
      return `"${v as string}"`;
    case 'purposes': {
      if (!Array.isArray(v) || v.length > PURPOSES.length) badField(type, spec, 'is not a list of key purposes');
      const a = v as unknown[];
      for (let i = 0; i < a.length; i++) {
        if (!PURPOSES.includes(a[i] as KeyPurpose) || a.indexOf(a[i]) !== i) badField(type, spec, 'is not a list of distinct key purposes');
      }
      return JSON.stringify(a);
    }
    case 'uint':
      // Number.isSafeInteger is false for anything that is not a number.
      if (!Number.isSafeInteger(v) || (v as number) < 0) badField(type, spec, 'is not a non-negative integer');
      return String(v);
    case 'hex':
      if (typeof v !== 'string' || !HEX.test(v)) badField(type, spec, 'is not upper-case hex (1 to 128 digits)');
      return `"${v as string}"`;
    case 'operation':
      if (!OPERATIONS.includes(v)) badField(type, spec, "is not 'sign', 'keyAgreement' or 'xml-sign'");
      return `"${v as string}"`;
    case 'messageCode':
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffff) badField(type, spec, 'is not a message code (0..0xFFFF)');
      return String(v);
    case 'counter':
      if (typeof v !== 'bigint' || v < 0n || v >= TWO_64) badField(type, spec, 'is not a bigint counter (0 <= counter < 2^64)');
      return `"${(v as bigint).toString()}"`;
    case 'point':
      if (typeof v !== 'string' || !POINT.test(v)) badField(type, spec, 'is not an uncompressed P-256 point (130 upper-case hex digits starting 04)');
      return `"${v as string}"`;
  }
}

/**
 * The canonical JSON of a record without its closing brace and mac: `{"seq":..,..,"prev":".."`.
 * Checks the event's shape: its type, every required field, no field its type does not list.
 */
function encodePrefix(seq: number, at: string, event: AuditEventBase, prev: string, types: Compiled['types']): string {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw invalid('an audit event must be an object', typeof event);
  }
  const type = (event as { type?: unknown }).type;
  // A map: a type that is not a string, or a name Object.prototype has, is simply not in it.
  const schema = types.get(type as string);
  if (schema === undefined) {
    throw invalid('unknown audit event type', typeof type === 'string' ? type.slice(0, 64) : typeof type);
  }
  const fields = event as unknown as Record<string, unknown>;
  // Every enumerable key but `type` must be a field of the type (each key looked up: counting
  // them would miss a stray key beside a listed field that is own but not enumerable).
  for (const k of Object.keys(fields)) {
    if (k !== 'type' && !schema.some((s) => s.name === k)) {
      // The name only, never the value: this is where key material would be refused.
      throw invalid(`audit event ${type}: unexpected field ${JSON.stringify(k.slice(0, 64))} (audit records carry ids and counts only, never key material)`, `${type}.${k.slice(0, 64)}`);
    }
  }
  let s = `{"seq":${seq},"at":"${at}","type":"${type}"`;
  for (const spec of schema) {
    const v = fields[spec.name];
    if (v === undefined) {
      if (spec.optional) continue;
      throw invalid(`audit event ${type}: field ${spec.name} is missing`, `${type}.${spec.name}`);
    }
    s += `,"${spec.name}":${encodeValue(type as string, spec, v)}`;
  }
  return `${s},"prev":"${prev}"`;
}

/** The event (with `bigint` counter) from a parsed record; throws on a wrong shape. */
function eventFromJson(obj: Record<string, unknown>, types: Compiled['types']): AuditEventBase {
  const type = obj['type'];
  const schema = types.get(type as string);
  if (schema === undefined) throw new Error('unknown record type');
  const ev: Record<string, unknown> = { type };
  for (const spec of schema) {
    let v = obj[spec.name];
    if (v === undefined) continue; // a missing required field fails in encodePrefix
    if (spec.kind === 'counter') {
      if (typeof v !== 'string' || !DECIMAL.test(v)) throw new Error('counter is not a decimal string');
      v = BigInt(v);
    }
    ev[spec.name] = v;
  }
  return ev as unknown as AuditEventBase;
}

function sha256Hex(...parts: (Uint8Array | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').toUpperCase();
}

function checkKey(key: unknown): Buffer {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'the audit key must be a 32-byte Uint8Array (see deriveAuditKey)', {});
  }
  return Buffer.from(key); // a private copy
}

function checkHead(head: unknown): AuditHead {
  const h = head as AuditHead;
  const ok =
    typeof h === 'object' &&
    h !== null &&
    Number.isSafeInteger(h.count) &&
    h.count >= 0 &&
    typeof h.lastHash === 'string' &&
    HASH.test(h.lastHash) &&
    Number.isSafeInteger(h.bytes) &&
    h.bytes >= 0 &&
    (h.count === 0) === (h.bytes === 0) &&
    (h.count > 0 || h.lastHash === ZERO_HASH);
  if (!ok) throw new SmkiError('ERR_INVALID_ARGUMENT', 'not an audit head { count, lastHash, bytes }', {});
  return { count: h.count, lastHash: h.lastHash, bytes: h.bytes };
}

// ---------------------------------------------------------------------------------------------
// Verification

type LineCheck =
  | { readonly ok: true; readonly seq: number; readonly prev: string; readonly hash: string; readonly record: AuditRecord<AuditEventBase> }
  | { readonly ok: false; readonly seq?: number | undefined; readonly hash: string; readonly message: string };

/** Verify one line on its own: structure, MAC, canonical form. Never throws. */
function checkLine(raw: Buffer, key: Buffer, types: Compiled['types']): LineCheck {
  const hash = sha256Hex(raw);
  const n = raw.length;
  const tail = n - MAC_TAIL_BYTES;
  if (tail < 2 || raw.toString('latin1', tail, tail + 8) !== ',"mac":"' || raw[n - 2] !== 0x22 || raw[n - 1] !== 0x7d) {
    return { ok: false, hash, message: 'not an audit record (no mac field at its end)' };
  }
  const mac = raw.toString('latin1', tail + 8, n - 2);
  let obj: unknown;
  const text = raw.toString('utf8');
  try {
    obj = JSON.parse(text);
  } catch {
    return { ok: false, hash, message: 'not an audit record (not JSON)' };
  }
  // The line ends in "} (checked above) and JSON.parse accepted it: it can only be an object.
  const o = obj as Record<string, unknown>;
  const s = o['seq'];
  const seq = Number.isSafeInteger(s) && (s as number) >= 1 ? (s as number) : undefined;
  if (!HASH.test(mac)) return { ok: false, hash, seq, message: 'the mac field is not 64 upper-case hex digits' };
  const expected = createHmac('sha256', key).update(raw.subarray(0, tail)).update('}').digest();
  if (!timingSafeEqual(expected, Buffer.from(mac, 'hex'))) {
    return { ok: false, hash, seq, message: 'the MAC does not verify: the record was edited, or written without the audit key' };
  }
  // Authentic bytes; now check they are the canonical form of what they say (defence in depth:
  // only a holder of the key, or a bug in the writer, could get here with a non-canonical record).
  const at = o['at'];
  const prev = o['prev'];
  if (seq === undefined || typeof at !== 'string' || !ISO.test(at) || typeof prev !== 'string' || !HASH.test(prev)) {
    return { ok: false, hash, seq, message: 'malformed record (seq, at or prev)' };
  }
  let event: AuditEventBase;
  try {
    event = eventFromJson(o, types);
    if (`${encodePrefix(seq, at, event, prev, types)},"mac":"${mac}"}` !== text) {
      return { ok: false, hash, seq, message: 'the record is not in canonical form' };
    }
  } catch (e) {
    return { ok: false, hash, seq, message: `malformed record: ${(e as Error).message}` };
  }
  return { ok: true, seq, prev, hash, record: { ...event, seq, at, prev, mac } };
}

interface VerifierStart {
  /** Line number of the first line fed, minus one. */
  readonly line: number;
  /** The last verified record before the first line fed. */
  readonly lastGood: { readonly seq: number; readonly hash: string };
  /** Byte offset of the first line fed. */
  readonly offset: number;
}

/** The chain check over a sequence of lines; shared by {@link verifyAuditLog} and {@link AuditLog.open}. */
class ChainVerifier {
  readonly findings: AuditFinding[] = [];
  omitted = 0;
  /** Complete lines seen (including those before the start). */
  count: number;
  line: number;
  /** Byte offset just after the last complete line. */
  end: number;
  lastGood: { seq: number; hash: string };
  badSince = 0;
  /** A torn final line the recovery rule may remove (not newline-terminated, within the limit). */
  torn: { offset: number; length: number; finding: AuditFinding } | undefined;
  atHead: { hash: string; end: number } | undefined;
  readonly beyondHead: AuditRecord<AuditEventBase>[] = [];
  beyondHeadCount = 0;

  constructor(
    private readonly key: Buffer,
    readonly schema: Compiled,
    private readonly head: AuditHead | undefined,
    start: VerifierStart = { line: 0, lastGood: { seq: 0, hash: ZERO_HASH }, offset: 0 },
    /** When set, a record beyond the head of any other type is an `ERR_KEYSTORE_METADATA_ROLLBACK` finding. */
    private readonly allowBeyondHead?: ReadonlySet<string>,
  ) {
    this.count = start.line;
    this.line = start.line;
    this.end = start.offset;
    this.lastGood = { ...start.lastGood };
    if (head && start.lastGood.seq === head.count) this.atHead = { hash: start.lastGood.hash, end: start.offset };
  }

  add(finding: AuditFinding): void {
    if (this.findings.length < MAX_FINDINGS) this.findings.push(finding);
    else this.omitted++;
  }

  /** A complete line (`raw` null when it is over the limit). */
  onLine(raw: Buffer | null, offset: number, length: number): void {
    this.line++;
    this.count++;
    this.end = offset + length + 1;
    const where = { line: this.line, offset };
    if (raw === null || length === 0) {
      this.add({ code: 'ERR_AUDIT_TAMPERED', message: raw === null ? `line is over ${MAX_AUDIT_LINE_BYTES} bytes` : 'empty line', ...where });
      this.badSince++;
      return;
    }
    const c = checkLine(raw, this.key, this.schema.types);
    if (!c.ok) {
      this.add({ code: 'ERR_AUDIT_TAMPERED', message: c.message, ...where, ...(c.seq === undefined ? {} : { seq: c.seq }) });
      this.badSince++;
      return;
    }
    const expected = this.lastGood.seq + 1;
    let problem: string | undefined;
    if (this.badSince === 0) {
      if (c.seq > expected) {
        problem = `expected seq ${expected}, found ${c.seq}: ${c.seq - expected} record(s) deleted before this line, or records reordered`;
      } else if (c.seq < expected) {
        problem = `seq ${c.seq} after seq ${this.lastGood.seq}: records reordered, or a record repeated`;
      } else if (c.prev !== this.lastGood.hash) {
        problem = 'prev is not the hash of the record before it: a record was replaced or spliced in';
      }
    } else {
      // The bad lines before this one are already reported. They were inserted (this record follows
      // the last good one) or replaced records (this record's seq skips exactly over them).
      const inserted = c.seq === expected && c.prev === this.lastGood.hash;
      const replaced = c.seq === expected + this.badSince;
      if (!inserted && !replaced) problem = `after ${this.badSince} bad line(s), expected seq ${expected} or ${expected + this.badSince}, found ${c.seq}`;
    }
    if (problem !== undefined) this.add({ code: 'ERR_AUDIT_TAMPERED', message: problem, ...where, seq: c.seq });
    this.badSince = 0;
    // Never move backwards: after a record that is out of order, the chain continues from the highest.
    if (c.seq > this.lastGood.seq) this.lastGood = { seq: c.seq, hash: c.hash };
    if (this.head) {
      if (c.seq === this.head.count) this.atHead = { hash: c.hash, end: this.end };
      if (c.seq > this.head.count) {
        this.beyondHeadCount++;
        if (this.allowBeyondHead && !this.allowBeyondHead.has(c.record.type)) {
          this.add({
            code: 'ERR_KEYSTORE_METADATA_ROLLBACK',
            message: `a ${c.record.type} record lies beyond the head the metadata names: the metadata is older than the log (restored from a backup, or rolled back)`,
            ...where,
            seq: c.seq,
          });
        }
        if (!this.schema.use.has(c.record.type) && this.beyondHead.length < MAX_LIFECYCLE_BEYOND_HEAD) this.beyondHead.push(c.record);
      }
    }
  }

  /** Bytes after the last `\n`. */
  onTail(raw: Buffer | null, offset: number, length: number): void {
    const line = this.line + 1;
    if (raw === null) {
      this.add({ code: 'ERR_AUDIT_TAMPERED', message: `unterminated final line over ${MAX_AUDIT_LINE_BYTES} bytes`, line, offset });
    } else {
      const finding: AuditFinding = {
        code: 'ERR_AUDIT_TRUNCATED',
        message: `the final line (${length} bytes) is not newline-terminated: a torn write or a cut`,
        line,
        offset,
      };
      this.add(finding);
      this.torn = { offset, length, finding };
    }
  }

  finish(): AuditVerification {
    const h = this.head;
    // The empty head (count 0) is met by the start of the log: atHead is set in the constructor.
    if (h) {
      if (this.lastGood.seq < h.count) {
        this.add({
          code: 'ERR_AUDIT_TRUNCATED',
          message: `the log ends at record ${this.lastGood.seq}; the authenticated head says ${h.count}: records were cut off the end`,
          line: this.count + 1,
        });
      } else if (!this.atHead || this.atHead.hash !== h.lastHash) {
        this.add({
          code: 'ERR_AUDIT_TAMPERED',
          message: `record ${h.count} is not the one the authenticated head names: the log was rewritten or replaced`,
          seq: h.count,
        });
      } else if (this.atHead.end !== h.bytes) {
        this.add({
          code: 'ERR_AUDIT_TAMPERED',
          message: `record ${h.count} ends at byte ${this.atHead.end}, the authenticated head says ${h.bytes}: lines were deleted or inserted before it`,
          seq: h.count,
        });
      }
    }
    const ok = this.findings.length === 0; // findings are omitted only once MAX_FINDINGS are kept
    return {
      ok,
      count: this.count,
      ...(ok ? { head: { count: this.lastGood.seq, lastHash: this.lastGood.hash, bytes: this.end } } : {}),
      findings: this.findings,
      omittedFindings: this.omitted,
    };
  }
}

/**
 * Read a file from `start` line by line in 1 MiB chunks, never holding more than one line of
 * at most {@link MAX_AUDIT_LINE_BYTES} (a longer one is reported as `null`). `onLine` gets a view
 * that is only valid during the call.
 */
async function scanLines(
  fh: FileHandle,
  start: number,
  onLine: (raw: Buffer | null, offset: number, length: number) => void,
  onTail: (raw: Buffer | null, offset: number, length: number) => void,
): Promise<void> {
  const chunk = Buffer.allocUnsafe(1 << 20);
  let pos = start;
  let lineStart = start;
  let carry: Buffer[] = [];
  let carryLen = 0;
  let overlong = false;
  for (;;) {
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const data = chunk.subarray(0, bytesRead);
    let i = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, i);
      if (nl === -1) {
        const rest = bytesRead - i;
        if (!overlong && carryLen + rest > MAX_AUDIT_LINE_BYTES) {
          overlong = true;
          // Stryker disable next-line ArrayDeclaration: equivalent; carry is not read while overlong is set (the line is reported as null), this only lets go of the bytes copied so far
          carry = [];
        }
        // Copied: the chunk is reused. An empty rest (the chunk ended at a newline) adds nothing.
        if (!overlong) carry.push(Buffer.from(data.subarray(i)));
        carryLen += rest;
        break;
      }
      const total = carryLen + (nl - i);
      let raw: Buffer | null;
      if (overlong || total > MAX_AUDIT_LINE_BYTES) raw = null;
      else if (carryLen === 0) raw = data.subarray(i, nl);
      else raw = Buffer.concat([...carry, data.subarray(i, nl)]);
      onLine(raw, lineStart, total);
      lineStart += total + 1;
      carry = [];
      carryLen = 0;
      overlong = false;
      i = nl + 1;
    }
  }
  if (carryLen > 0) onTail(overlong ? null : Buffer.concat(carry), lineStart, carryLen);
}

/**
 * Verify an audit log, streaming it line by line (a log of any size in bounded memory).
 *
 * Detects, and says where (line number, claimed `seq`, byte offset):
 * - an edited or forged record (its MAC fails) — `ERR_AUDIT_TAMPERED` at that line;
 * - a deleted record (a gap in `seq`), records reordered or repeated, a record spliced in from
 *   elsewhere (its `prev` is not the hash of the line before) — `ERR_AUDIT_TAMPERED`;
 * - a line over 64 KiB, an empty line, a line that is not a record — `ERR_AUDIT_TAMPERED`;
 * - a torn final line (no `\n`) — `ERR_AUDIT_TRUNCATED` ({@link AuditLog.open} removes it);
 * - with `head`: records cut off the end (`ERR_AUDIT_TRUNCATED`), or a log rewritten or replaced
 *   so that record `head.count` is not the one the head names (`ERR_AUDIT_TAMPERED`).
 *
 * Findings after the first may be consequences of it. Records beyond the head are not a finding
 * (use records are written after the store last saved its head).
 *
 * Security: the MAC and chain show that the log was written by a holder of the audit key and
 * not changed since; they do not stop a holder of the key (or the store secret) from rewriting
 * the log. Without `head` a cut at a record boundary cannot be detected; the head itself is only
 * as good as the metadata that carries it (a rollback of the metadata and the log together to an
 * older consistent state is not detected without an anchor outside the store).
 *
 * A record the schema does not describe exactly (a type it lacks, a field it does not list or
 * lists with another kind) is `ERR_AUDIT_TAMPERED`: verify a log with the schema it was written
 * with (for the key store's log, the default).
 *
 * @param source - the log's path, or its lines (each without its `\n`)
 * @param options - the audit key, the log's schema and, if the writer keeps one, its authenticated head
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for a bad key, head or schema; the fs error if the file cannot be read
 * @see RFC 2104 (HMAC), FIPS 180-4 (SHA-256)
 */
export async function verifyAuditLog<E extends AuditEventBase = AuditEvent>(
  source: string | readonly string[],
  options: {
    readonly key: Uint8Array;
    readonly head?: AuditHead;
    /** The lines the metadata committed to before `head` (see {@link AuditIntent}). */
    readonly intent?: AuditIntent;
    /**
     * Record types that may lie beyond `head` (e.g. use records, written after the metadata);
     * any other type beyond it is an `ERR_KEYSTORE_METADATA_ROLLBACK` finding. Default: any type.
     */
    readonly allowBeyondHead?: readonly E['type'][];
    /** The record schema the log was written with (default {@link KEYSTORE_AUDIT_SCHEMA}). */
    readonly schema?: AuditSchema<E>;
  },
): Promise<AuditVerification> {
  const key = checkKey(options.key);
  const schema = schemaOf(options.schema);
  const head = options.head === undefined ? undefined : checkHead(options.head);
  const intent = options.intent === undefined ? undefined : checkIntent(options.intent, head);
  let size: number;
  if (typeof source === 'string') {
    try {
      size = (await stat(source)).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      size = 0;
    }
  } else {
    size = source.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  }
  // A log that lags behind its metadata's intent is checked against the head before the intent.
  const short = intent !== undefined && size < intent.after.bytes;
  const allow = options.allowBeyondHead === undefined ? undefined : new Set<string>(options.allowBeyondHead);
  const v = new ChainVerifier(key, schema, short ? intent.before : head, undefined, short ? undefined : allow);
  const finish = (): AuditVerification => {
    const r = v.finish();
    if (!short || !r.ok) return r;
    try {
      const missing = missingIntentLines(v, key, intent);
      return { ...r, intentLinesMissing: missing.length };
    } catch (e) {
      const f: AuditFinding = { code: 'ERR_AUDIT_TAMPERED', message: (e as Error).message };
      return { ok: false, count: r.count, findings: [f], omittedFindings: 0 };
    }
  };
  if (typeof source === 'string') {
    let fh: FileHandle;
    try {
      fh = await openFile(source, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return finish(); // no log: an empty one (a finding only if the head says otherwise)
    }
    try {
      await scanLines(
        fh,
        0,
        (raw, offset, length) => v.onLine(raw, offset, length),
        (raw, offset, length) => v.onTail(raw, offset, length),
      );
    } finally {
      await fh.close();
    }
  } else {
    let offset = 0;
    for (const l of source) {
      const raw = Buffer.from(l);
      v.onLine(raw.length > MAX_AUDIT_LINE_BYTES ? null : raw, offset, raw.length);
      offset += raw.length + 1;
    }
  }
  return finish();
}

// ---------------------------------------------------------------------------------------------
// The writer

function tamperError(f: AuditFinding): SmkiError<AuditFinding['code']> {
  const where = [f.line === undefined ? '' : `line ${f.line}`, f.seq === undefined ? '' : `seq ${f.seq}`].filter(Boolean).join(', ');
  const message = `audit log: ${where ? `${where}: ` : ''}${f.message}`;
  // Stryker disable next-line MethodExpression: equivalent; every finding's message is made of types, counts, line and byte numbers only, so it never reaches 300 characters
  return new SmkiError(f.code, message, { ...(f.offset === undefined ? {} : { offset: f.offset }), detail: message.slice(0, 300) });
}

/**
 * The store's audit log: appends hash-chained, MAC'd records to `<dir>/audit.log`. `E` is the
 * event type of its record schema: the key store's {@link AuditEvent} by default, or another
 * package's (see {@link defineAuditSchema} and {@link AuditLogOptions.schema}).
 *
 * - **Total order.** Each {@link AuditLog.append} assigns `seq`, `prev` and `mac` synchronously
 *   when it is called, so concurrent async callers get the order of their calls, and a single
 *   writer (a promise chain) appends whole lines with `O_APPEND`: no interleaved partial lines.
 * - **Durability.** A durable append (lifecycle events) resolves only after its line, and every
 *   line before it, is written and `fdatasync`ed. Non-durable appends (uses of keys) are
 *   group-committed: held in memory for at most `groupCommitMs` (default 50 ms; sooner when 1 MiB
 *   is waiting, a durable append comes, or {@link AuditLog.flush} / {@link AuditLog.close} is
 *   called), then written and synced in one go, in order. A crash loses at most the use records of
 *   that window (plus the time of one write and sync); lifecycle records are never lost once
 *   acknowledged.
 * - **Head.** {@link AuditLog.head} is the head of what is on disk. The store saves it in its
 *   authenticated metadata after each durable append (and may after a flush); records written
 *   after the last saved head can be cut off undetected, so save it often enough for your needs.
 * - **Failure.** If a write or sync fails, the log truncates itself back to the last synced record
 *   (best effort) and refuses every further append with `ERR_AUDIT_WRITE_FAILED`: the store then
 *   fails closed instead of using keys without an audit trail. Reopen to recover.
 *
 * **Crash recovery** (on {@link AuditLog.open}, for a process killed at any point):
 * 1. A torn final line (bytes after the last `\n`, at most 64 KiB) is removed: it was never
 *    acknowledged (appends resolve only after the whole line and its `\n` are synced). The file is
 *    truncated and synced; {@link AuditLog.recovery} says how many bytes.
 * 2. Complete, valid records beyond the given head are kept and the head advances over them: they
 *    were synced, but the store died before saving the new head. Their events may or may not have
 *    taken effect; the store reconciles using {@link AuditRecovery.lifecycleBeyondHead}.
 * 3. Anything else refuses to open and changes nothing: fewer records than the head
 *    (`ERR_AUDIT_TRUNCATED`), a record that fails its MAC or chain anywhere, also beyond the head,
 *    or record `head.count` not the one the head names (`ERR_AUDIT_TAMPERED`). A torn line is not
 *    removed in that case.
 *
 * Only one `AuditLog` may be open on a log file at a time (the key store holds its directory lock;
 * another package must hold a lock of its own).
 *
 * @example
 * ```ts
 * import { AuditLog, deriveAuditKey, verifyAuditLog } from '@smki/keystore';
 * import { parseEui64 } from '@smki/core';
 * const key = deriveAuditKey(new Uint8Array(32).fill(1));
 * const log = await AuditLog.open('/var/lib/smki/store', { key });
 * await log.append({ type: 'key.retired', keyId: 'K1' }, { durable: true });
 * await log.append(
 *   { type: 'key.used', operation: 'sign', keyId: 'K2', portfolioId: 'north', device: parseEui64('00DB1234567890A0'), counter: 42n },
 *   { durable: false },
 * );
 * const head = await log.flush(); // save in the store's authenticated metadata
 * await log.close();
 * const result = await verifyAuditLog(log.path, { key, head });
 * console.log(result.ok, result.findings);
 * ```
 */
export class AuditLog<E extends AuditEventBase = AuditEvent> {
  /** The log file's path. */
  readonly path: string;
  /** What opening repaired or adopted under the crash-recovery rule. */
  readonly recovery: AuditRecovery<E>;

  readonly #key: Buffer;
  readonly #schema: Compiled;
  readonly #fh: FileHandle;
  readonly #groupCommitMs: number;
  readonly #fault: ((point: string) => void) | undefined;
  readonly #now: () => Date;
  /** Chain state including records not yet on disk. */
  #count: number;
  #lastHash: string;
  #bytes: number;
  /** Head of what is synced. */
  #durable: AuditHead;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();
  #failed: SmkiError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** While a staged append is open: appends wait for it (see {@link AuditLog.beginStage}). */
  #gate: { promise: Promise<void>; open: () => void } | undefined;
  /** The head the staged lines follow, once {@link AuditLog.beginStage} has flushed. */
  #stageBefore: AuditHead | undefined;
  #staged: { lines: readonly string[]; after: AuditHead } | undefined;

  private constructor(path: string, fh: FileHandle, key: Buffer, schema: Compiled, head: AuditHead, recovery: AuditRecovery<E>, options: AuditLogOptions<E>) {
    this.path = path;
    this.#fh = fh;
    this.#key = key;
    this.#schema = schema;
    this.#count = head.count;
    this.#lastHash = head.lastHash;
    this.#bytes = head.bytes;
    this.#durable = head;
    this.recovery = recovery;
    this.#groupCommitMs = options.groupCommitMs ?? 50;
    this.#fault = options.fault;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Open (or create, mode 0600) a log of another record schema ({@link defineAuditSchema}) in
   * `<dir>/audit.log` (or `<dir>/<file>`), verify it against `head` with that schema, apply the
   * crash-recovery rule (see {@link AuditLog}) and get ready to append.
   *
   * @param dir - the store directory (must exist)
   * @param options - audit key, record schema, file name, authenticated head, group-commit window, verification mode
   * @throws SmkiError `ERR_AUDIT_TAMPERED` or `ERR_AUDIT_TRUNCATED` (with the line and byte offset)
   *   if the log does not verify; `ERR_INVALID_ARGUMENT` for a bad key, head, schema, file name or option
   * @see RFC 2104 (HMAC), FIPS 180-4 (SHA-256)
   */
  static open<E extends AuditEventBase>(dir: string, options: AuditLogOptions<E> & { readonly schema: AuditSchema<E> }): Promise<AuditLog<E>>;
  /**
   * Open (or create, mode 0600) the key store's log `<dir>/audit.log` (or `<dir>/<file>`), verify
   * it against `head`, apply the crash-recovery rule (see {@link AuditLog}) and get ready to append.
   *
   * @param dir - the store directory (must exist)
   * @param options - audit key, record schema, file name, authenticated head, group-commit window, verification mode
   * @throws SmkiError `ERR_AUDIT_TAMPERED` or `ERR_AUDIT_TRUNCATED` (with the line and byte offset)
   *   if the log does not verify; `ERR_INVALID_ARGUMENT` for a bad key, head, schema, file name or option
   * @see RFC 2104 (HMAC), FIPS 180-4 (SHA-256)
   */
  static open(dir: string, options: AuditLogOptions): Promise<AuditLog>;
  static async open<E extends AuditEventBase>(dir: string, options: AuditLogOptions<E>): Promise<AuditLog<E>> {
    const key = checkKey(options.key);
    const schema = schemaOf(options.schema);
    const file = options.file === undefined ? AUDIT_LOG_FILE : options.file;
    if (typeof file !== 'string' || !FILE_NAME.test(file) || file === '.' || file === '..') {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'file must be a plain file name ([A-Za-z0-9._-], 1 to 255 characters, not . or ..)', { detail: 'file' });
    }
    const head = options.head === undefined ? undefined : checkHead(options.head);
    const ms = options.groupCommitMs ?? 50;
    // Number.isFinite is false for anything that is not a number.
    if (!Number.isFinite(ms) || ms < 0 || ms > 10_000) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'groupCommitMs must be between 0 and 10000', {});
    }
    const mode = options.verifyOnOpen ?? 'full';
    if (mode !== 'full' && mode !== 'tail') throw new SmkiError('ERR_INVALID_ARGUMENT', "verifyOnOpen must be 'full' or 'tail'", {});
    const path = join(dir, file);

    let existed = true;
    try {
      await stat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      existed = false;
    }
    if (!existed && head && head.count > 0) {
      // Refuse before creating anything.
      throw tamperError({ code: 'ERR_AUDIT_TRUNCATED', message: `the log is missing; the authenticated head says it has ${head.count} record(s)` });
    }
    // Opened for appending (O_APPEND): every write goes to the end, whatever else happens.
    const fh = await openFile(path, 'a+', 0o600);
    try {
      if (!existed) fsyncDirectory(dir);
      const intent = options.intent === undefined ? undefined : checkIntent(options.intent, head);
      // With an intent, a log shorter than the head is checked against the head before the
      // intent's lines: it must then end part-way through them (a crash between the metadata
      // write and the log write), and the rest is written below.
      const short = intent !== undefined && (await fh.stat()).size < intent.after.bytes;
      const v = await AuditLog.#verifyForOpen(fh, key, schema, short ? intent.before : head, mode);
      const result = v.finish();
      // The recovery rule: the only finding repaired is a torn final line of at most 64 KiB, and
      // only when nothing else is wrong (records beyond the head are adopted, not a finding).
      const torn = v.torn;
      const blocking = result.findings.filter((x) => x !== torn?.finding);
      // (Findings are omitted only once MAX_FINDINGS are kept, so then blocking is not empty either.)
      if (blocking.length > 0) throw tamperError(blocking[0]!);
      let tornBytesRemoved = 0;
      if (torn) {
        options.fault?.('audit:recover-before-truncate');
        await fh.truncate(torn.offset);
        await fh.datasync();
        options.fault?.('audit:recover-after-truncate');
        tornBytesRemoved = torn.length;
      }
      let now: AuditHead = { count: v.lastGood.seq, lastHash: v.lastGood.hash, bytes: v.end };
      let intentLinesWritten = 0;
      if (short) {
        const missing = missingIntentLines(v, key, intent);
        options.fault?.('audit:intent-before-write');
        await writeAllTo(fh, Buffer.from(missing.map((l) => `${l}\n`).join('')));
        await fh.datasync();
        options.fault?.('audit:intent-after-write');
        intentLinesWritten = missing.length;
        now = intent.after;
      }
      const recovery: AuditRecovery<E> = {
        tornBytesRemoved,
        recordsBeyondHead: head && !short ? v.beyondHeadCount : 0,
        lifecycleBeyondHead: head && !short ? (v.beyondHead as unknown as AuditRecord<E>[]) : [],
        intentLinesWritten,
      };
      return new AuditLog<E>(path, fh, key, schema, now, recovery, { ...options, groupCommitMs: ms });
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  static async #verifyForOpen(fh: FileHandle, key: Buffer, schema: Compiled, head: AuditHead | undefined, mode: 'full' | 'tail'): Promise<ChainVerifier> {
    const onLine = (v: ChainVerifier) => (raw: Buffer | null, offset: number, length: number) => v.onLine(raw, offset, length);
    const onTail = (v: ChainVerifier) => (raw: Buffer | null, offset: number, length: number) => v.onTail(raw, offset, length);
    if (mode === 'tail' && head && head.count > 0) {
      const size = (await fh.stat()).size;
      const v = new ChainVerifier(key, schema, head, { line: head.count, lastGood: { seq: head.count, hash: head.lastHash }, offset: head.bytes });
      if (size < head.bytes) {
        v.count = 0;
        v.add({ code: 'ERR_AUDIT_TRUNCATED', message: `the log has ${size} bytes; the authenticated head says ${head.bytes}: records were cut off the end` });
        return v;
      }
      // The line that ends at head.bytes must be record head.count, with hash head.lastHash.
      const from = Math.max(0, head.bytes - MAX_AUDIT_LINE_BYTES - 1);
      const win = Buffer.alloc(head.bytes - from);
      await fh.read(win, 0, win.length, from);
      const nl = win.lastIndexOf(0x0a, win.length - 2);
      const line = win.subarray(nl + 1, win.length - 1);
      // With no newline in a full window (nl -1, from > 0) the line checked is 64 KiB long: never a
      // valid record (every record of every schema is under 11 KiB, see defineAuditSchema), so it
      // is refused like a line that does not verify.
      const c = win[win.length - 1] === 0x0a ? checkLine(line, key, schema.types) : undefined;
      if (!c || !c.ok || c.seq !== head.count || c.hash !== head.lastHash) {
        v.add({ code: 'ERR_AUDIT_TAMPERED', message: `record ${head.count} is not the one the authenticated head names: the log was rewritten or replaced`, seq: head.count, offset: from + nl + 1 });
        return v;
      }
      await scanLines(fh, head.bytes, onLine(v), onTail(v));
      return v;
    }
    const v = new ChainVerifier(key, schema, head);
    await scanLines(fh, 0, onLine(v), onTail(v));
    return v;
  }

  /**
   * Append an event. Its `seq`, time, `prev` and `mac` are fixed when this is called, so the order
   * of records is the order of calls, whatever the interleaving of async callers.
   *
   * `durable: true` (every lifecycle event): resolves once the record, and every record before it,
   * is written and synced; the store then saves {@link AuditLog.head} in its metadata.
   * `durable: false` (uses of keys): resolves at once; the record is group-committed within
   * `groupCommitMs` (see {@link AuditLog}).
   *
   * @returns the record as written
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for an event of the wrong shape (a field its type
   *   does not list, e.g. `privateKey`; a missing field; a value out of range) — nothing is
   *   written; `ERR_AUDIT_WRITE_FAILED` if this or an earlier write failed; `ERR_KEYSTORE_CLOSED`
   *   after {@link AuditLog.close}
   */
  async append(event: E, options: { readonly durable: boolean }): Promise<AuditRecord<E>> {
    while (this.#gate) await this.#gate.promise;
    if (this.#closed) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'the audit log is closed', {});
    if (this.#failed) throw this.#failed;
    const seq = this.#count + 1;
    const at = this.#now().toISOString();
    if (!ISO.test(at)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the clock gave a time outside 0000..9999', { detail: at });
    const prefix = encodePrefix(seq, at, event, this.#lastHash, this.#schema.types);
    const prefixBytes = Buffer.from(prefix);
    const mac = createHmac('sha256', this.#key).update(prefixBytes).update('}').digest('hex').toUpperCase();
    // Every field is bounded (ids, hex and text of at most 128 characters, at most 12 fields), so a
    // record is at most 10,333 bytes (under 2 KiB for the key store's schema), far below the
    // verifier's 64 KiB line limit (see defineAuditSchema).
    const tail = Buffer.from(`,"mac":"${mac}"}\n`);
    const prev = this.#lastHash;
    this.#lastHash = sha256Hex(prefixBytes, tail.subarray(0, tail.length - 1));
    this.#count = seq;
    this.#bytes += prefixBytes.length + tail.length;
    this.#pending.push(prefixBytes, tail);
    this.#pendingBytes += prefixBytes.length + tail.length;
    const record = { ...eventFromRecordFields(event, this.#schema.types), seq, at, prev, mac } as AuditRecord<E>;
    if (options?.durable === true) {
      this.#cancelTimer();
      await this.#flushChain();
    } else if (this.#pendingBytes >= MAX_PENDING_BYTES) {
      this.#cancelTimer();
      this.#flushChain().catch(() => undefined); // the failure is kept in #failed
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flushChain().catch(() => undefined);
      }, this.#groupCommitMs);
    }
    return record;
  }

  /**
   * A staged append in one call: {@link AuditLog.beginStage}, then {@link AuditLog.stageSync}
   * with `events` (and {@link AuditLog.abortStaged} if that refuses them). The caller saves the
   * returned lines and `after` head with its state (atomically), then calls
   * {@link AuditLog.commitStaged}, or {@link AuditLog.abortStaged} if it could not save.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` for no events or an event of the wrong shape (no stage
   *   is left open); `ERR_AUDIT_WRITE_FAILED`; `ERR_KEYSTORE_CLOSED`
   */
  async stage(events: readonly E[]): Promise<AuditStaged> {
    await this.beginStage();
    try {
      return this.stageSync(events);
    } catch (e) {
      this.abortStaged();
      throw e;
    }
  }

  /**
   * Begin a staged append, for a writer that saves its state before the records describing it
   * (write-ahead in its metadata, so that after a crash the log can only lag behind the state,
   * never lead it). Waits for a stage already open to end, makes every record appended so far
   * durable, and holds every later {@link AuditLog.append} and stage until this one ends.
   *
   * The protocol:
   * 1. `const before = await log.beginStage()`: the head the staged lines will follow.
   * 2. `const staged = log.stageSync(events)`, at most once: synchronous, so it can run inside a
   *    database transaction once the transaction knows its outcome (the events), and the lines
   *    go into the same commit as the state.
   * 3. Save `staged.lines` and `staged.after` with the state, atomically; then
   *    {@link AuditLog.commitStaged} writes the lines and ends the stage. If the state could not
   *    be saved (or `stageSync` refused the events, or was never called),
   *    {@link AuditLog.abortStaged} ends the stage with nothing written.
   * 4. On open, pass the saved lines back as {@link AuditLogOptions.intent}: after a crash
   *    between the save and the commit, the log writes them then.
   *
   * Every stage must end in `commitStaged` or `abortStaged`: until then appends wait.
   * @returns the head the staged lines will follow (the head of the log on disk)
   * @throws SmkiError `ERR_AUDIT_WRITE_FAILED` (no stage is left open); `ERR_KEYSTORE_CLOSED`
   */
  async beginStage(): Promise<AuditHead> {
    while (this.#gate) await this.#gate.promise;
    if (this.#closed) throw new SmkiError('ERR_KEYSTORE_CLOSED', 'the audit log is closed', {});
    // (A failed log needs no check of its own here: the flush below throws its failure first.)
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { promise, open };
    try {
      this.#cancelTimer();
      await this.#flushChain();
    } catch (e) {
      this.#openGate();
      throw e;
    }
    this.#stageBefore = this.head();
    return this.head();
  }

  /**
   * Compute the exact lines of `events`, chained after the head {@link AuditLog.beginStage}
   * returned, without writing them: their `seq`, time, `prev` and `mac` are fixed now. Synchronous
   * (no I/O), and at most once per `beginStage`.
   * @returns the lines to save with the state, and the heads before and after them
   * @throws SmkiError `ERR_INVALID_ARGUMENT` when no stage is begun (or `beginStage` has not
   *   resolved yet), when lines are already staged, for no events, or an event of the wrong
   *   shape or a clock outside years 0000..9999; the stage then stays open and unchanged (end it
   *   with {@link AuditLog.abortStaged})
   */
  stageSync(events: readonly E[]): AuditStaged {
    const before = this.#stageBefore;
    if (before === undefined) throw invalid('no stage begun (await beginStage first)', 'stageSync');
    if (this.#staged) throw invalid('lines are already staged in this stage', 'stageSync');
    if (!Array.isArray(events) || events.length === 0) throw invalid('stage needs at least one event', 'events');
    let seq = before.count;
    let prev = before.lastHash;
    let bytes = before.bytes;
    const lines: string[] = [];
    for (const event of events as readonly E[]) {
      seq++;
      const line = this.#encode(seq, event, prev);
      lines.push(line);
      prev = sha256Hex(line);
      bytes += Buffer.byteLength(line) + 1;
    }
    const after: AuditHead = { count: seq, lastHash: prev, bytes };
    // One frozen list, kept and handed out: the caller cannot change what will be written.
    Object.freeze(lines);
    this.#staged = { lines, after };
    return { before, after, lines };
  }

  /**
   * Write and sync the staged lines (after the caller saved them with its state), then end the
   * stage: waiting appends go on.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (nothing staged: no {@link AuditLog.stageSync}; a
   *   stage that is open stays open), `ERR_AUDIT_WRITE_FAILED` (the log then refuses further
   *   records; reopening with the intent writes the lines)
   */
  async commitStaged(): Promise<AuditHead> {
    const staged = this.#staged;
    if (!staged) throw invalid('no staged append to commit', 'commitStaged');
    this.#staged = undefined;
    this.#stageBefore = undefined;
    try {
      // The group's lines as one buffer (one encoding, one write).
      this.#pending.push(Buffer.from(`${staged.lines.join('\n')}\n`));
      this.#pendingBytes += staged.after.bytes - this.#bytes;
      this.#count = staged.after.count;
      this.#lastHash = staged.after.lastHash;
      this.#bytes = staged.after.bytes;
      await this.#flushChain();
      return this.head();
    } finally {
      this.#openGate();
    }
  }

  /**
   * End the stage without writing anything (the caller could not save its state, or
   * {@link AuditLog.stageSync} refused the events, or was never called): the chain continues as
   * before. Does nothing when no stage is open.
   */
  abortStaged(): void {
    this.#staged = undefined;
    this.#stageBefore = undefined;
    this.#openGate();
  }

  #openGate(): void {
    const g = this.#gate;
    this.#gate = undefined;
    g?.open();
  }

  /** One record line (without `\n`), checked against the schema and the clock. */
  #encode(seq: number, event: E, prev: string): string {
    const at = this.#now().toISOString();
    if (!ISO.test(at)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the clock gave a time outside 0000..9999', { detail: at });
    const prefix = encodePrefix(seq, at, event, prev, this.#schema.types);
    // The MAC of the UTF-8 of the prefix and `}`, as append computes it over the bytes.
    const mac = createHmac('sha256', this.#key).update(prefix).update('}').digest('hex').toUpperCase();
    // Bounded like every record (see append).
    return `${prefix},"mac":"${mac}"}`;
  }

  /**
   * Write and sync every record appended so far (ending the group-commit window early).
   * @returns the head of the log on disk, to save in the store's metadata
   * @throws SmkiError `ERR_AUDIT_WRITE_FAILED` if a write or sync failed
   */
  async flush(): Promise<AuditHead> {
    this.#cancelTimer();
    await this.#flushChain();
    return this.head();
  }

  /**
   * The head of the log as synced to disk: records still in the group-commit window are not in
   * it (saving them in the metadata before they are on disk would make a crash look like
   * truncation).
   */
  head(): AuditHead {
    return { ...this.#durable };
  }

  /**
   * Flush and close. Appends after this call are refused; appends made before it are written.
   * Idempotent.
   * @throws SmkiError `ERR_AUDIT_WRITE_FAILED` if the final write or sync failed (the file is closed anyway)
   */
  async close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#cancelTimer();
    this.#closing = (async () => {
      try {
        if (!this.#failed) await this.#flushChain();
      } finally {
        await this.#fh.close();
      }
    })();
    return this.#closing;
  }

  #cancelTimer(): void {
    clearTimeout(this.#timer); // a no-op for undefined
    this.#timer = undefined;
  }

  /** Queue a write of everything pending; resolves when it (and all before it) is synced. */
  #flushChain(): Promise<void> {
    const p = this.#chain.then(() => this.#writePending());
    this.#chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  async #writePending(): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#pending.length === 0) return;
    const buf = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
    const end: AuditHead = { count: this.#count, lastHash: this.#lastHash, bytes: this.#bytes };
    this.#pending = [];
    this.#pendingBytes = 0;
    const fault = this.#fault;
    try {
      fault?.('audit:before-write');
      // One write call for the whole batch, fault hook or not, so the path a crash test kills is
      // the one production takes. A torn final line (a write that reached the disk in part) is
      // made by the tests themselves: they cut the log after a kill at audit:after-write.
      await this.#writeAll(buf);
      fault?.('audit:after-write');
      await this.#fh.datasync();
      fault?.('audit:after-fsync');
    } catch (e) {
      this.#failed = new SmkiError(
        'ERR_AUDIT_WRITE_FAILED',
        'writing the audit log failed; it accepts no further records until reopened',
        { detail: (e as Error)?.message?.slice(0, 200) ?? String(e) },
        { cause: e },
      );
      // Stryker disable next-line ArrayDeclaration: equivalent; a failed log never writes #pending again (every write throws #failed first), this only lets go of the records appended during the failed write
      this.#pending = [];
      try {
        // Best effort: remove whatever part of the batch reached the file.
        await this.#fh.truncate(this.#durable.bytes);
        await this.#fh.datasync();
      } catch {
        /* reopening applies the recovery rule */
      }
      throw this.#failed;
    }
    this.#durable = end;
  }

  async #writeAll(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.#fh.write(buf, off, buf.length - off, null);
      off += bytesWritten;
    }
  }
}

/** A shallow copy of the event's schema fields (so the returned record does not alias the caller's object). */
function eventFromRecordFields(event: AuditEventBase, types: Compiled['types']): AuditEventBase {
  const out: Record<string, unknown> = { type: event.type };
  // The event was encoded: its type is in the schema.
  for (const s of types.get(event.type)!) {
    const v = (event as unknown as Record<string, unknown>)[s.name];
    if (v !== undefined) out[s.name] = Array.isArray(v) ? [...(v as unknown[])] : v;
  }
  return out as unknown as AuditEventBase;
}

const NEWLINE = Buffer.from('\n');

async function writeAllTo(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, null);
    off += bytesWritten;
  }
}

/** The intent, with the head it leads to as `after`. */
function checkIntent(intent: unknown, head: AuditHead | undefined): AuditStaged {
  const i = intent as AuditIntent;
  if (typeof i !== 'object' || i === null || !Array.isArray(i.lines) || i.lines.length === 0 || !i.lines.every((l) => typeof l === 'string')) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'not an audit intent { before, lines }', {});
  }
  if (head === undefined) throw new SmkiError('ERR_INVALID_ARGUMENT', 'an audit intent needs the head after it', {});
  const before = checkHead(i.before);
  if (before.count + i.lines.length !== head.count) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the audit intent does not lead to the head', {});
  return { before, lines: [...i.lines], after: head };
}

/**
 * The intent lines missing from a log that was verified against `intent.before` (without a
 * finding) and ends at `before` plus the first k of them (k < n). Every line is checked (MAC,
 * canonical form, seq, chain) and must lead exactly to `intent.after`; anything else is tampering.
 */
function missingIntentLines(v: ChainVerifier, key: Buffer, intent: AuditStaged): string[] {
  const head = intent.after;
  // The log verified against `before`: it holds every record up to `before` and the k records
  // after it in order, so k >= 0 and they are the records the verifier counted beyond `before`.
  const k = v.lastGood.seq - intent.before.count;
  let prev = intent.before.lastHash;
  let bytes = intent.before.bytes;
  const bad = (message: string): never => {
    throw tamperError({ code: 'ERR_AUDIT_TAMPERED', message });
  };
  if (k >= intent.lines.length) bad(`the log ends at record ${v.lastGood.seq}, which is not part-way through the lines the metadata committed to`);
  for (let i = 0; i < intent.lines.length; i++) {
    const raw = Buffer.from(intent.lines[i]!);
    const c = checkLine(raw, key, v.schema.types);
    if (!c.ok || c.seq !== intent.before.count + i + 1 || c.prev !== prev) bad(`line ${i + 1} the metadata committed to is not a valid record in this chain`);
    prev = (c as { hash: string }).hash;
    bytes += raw.length + 1;
    // The same hash is the same bytes, and the records before it chain to the same `before`: so
    // the log also ends where these lines do (bytes === v.end).
    if (i === k - 1 && prev !== v.lastGood.hash) bad(`record ${v.lastGood.seq} in the log is not the one the metadata committed to`);
  }
  if (prev !== head.lastHash || bytes !== head.bytes) bad('the lines the metadata committed to do not lead to its head');
  return intent.lines.slice(k);
}

// ---------------------------------------------------------------------------------------------
// Lines of a trail kept in a database (internal: the key store's database trail)

/**
 * The line of one record of a trail kept in a database: the canonical JSON of the record with
 * `seq`, `at`, the event's fields in schema order and `prev`, and no `mac` (a database trail seals
 * each batch of records instead). Internal to the key store.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for an event of the wrong shape
 * @internal
 */
export function encodeTrailLine(seq: number, at: string, event: AuditEventBase, prev: string): string {
  if (!ISO.test(at)) throw invalid('the clock gave a time outside 0000..9999', at);
  return `${encodePrefix(seq, at, event, prev, trailTypes())}}`;
}

let trailSchema: Compiled | undefined;
/** The key store's schema, compiled on first use (nothing is checked at import time). */
function trailTypes(): Compiled['types'] {
  trailSchema ??= compileSchema(KEYSTORE_AUDIT_SCHEMA);
  return trailSchema.types;
}

/**
 * A database trail's line, checked to be the canonical form of a record of the key store's
 * schema. Never throws.
 * @internal
 */
export function parseTrailLine(text: string): { readonly ok: true; readonly record: AuditRecord; readonly hash: string } | { readonly ok: false; readonly message: string } {
  let o: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, message: 'not a record' };
    o = v as Record<string, unknown>;
  } catch {
    return { ok: false, message: 'not JSON' };
  }
  const seq = o['seq'];
  const at = o['at'];
  const prev = o['prev'];
  if (!Number.isSafeInteger(seq) || (seq as number) < 1 || typeof at !== 'string' || !ISO.test(at) || typeof prev !== 'string' || !HASH.test(prev)) {
    return { ok: false, message: 'malformed record (seq, at or prev)' };
  }
  try {
    const event = eventFromJson(o, trailTypes());
    if (`${encodePrefix(seq as number, at, event, prev, trailTypes())}}` !== text) return { ok: false, message: 'the record is not in canonical form' };
    return { ok: true, record: { ...(event as AuditEvent), seq: seq as number, at, prev, mac: '' } as AuditRecord, hash: sha256Hex(text) };
  } catch (e) {
    return { ok: false, message: `malformed record: ${(e as Error).message}` };
  }
}

/** SHA-256 of a line, upper-case hex (the chain's hash). @internal */
export function trailLineHash(line: string): string {
  // One call (no Hash object): this runs for every use record.
  return hash('sha256', line, 'hex').toUpperCase();
}
