/**
 * The audit report's data (`smki audit report`): printed as tables, as one JSON document with
 * `--json`, or as one self-contained HTML page with `--html FILE`. All three show the same data.
 * @module
 * @internal
 */

/** How one log verified. */
export interface LogVerificationSummary {
  /** Where the log is (a path, or a description). */
  readonly source: string;
  /** Records read. */
  readonly records: number;
  /** True when the chain and every MAC verify. */
  readonly ok: boolean;
  /** What failed (empty when ok). */
  readonly findings: readonly { readonly code: string; readonly message: string; readonly line?: number }[];
}

/** Signatures made with one key for one message code within the range (keystore trail). */
export interface KeyUseRow {
  readonly organisation: string;
  readonly portfolio: string;
  readonly keyId: string;
  /** GBCS message code, as 4 hex digits, or `other` for uses recorded without one. */
  readonly messageCode: string;
  readonly uses: number;
}

/** Decisions of one outcome and code within the range (decision log). */
export interface DecisionCountRow {
  /** `accepted`, `rejected`, `quarantined`, `discarded`, … (the decision log's record types, without `command.`). */
  readonly outcome: string;
  /** The rejection code (`ERR_…`), or `-` for an accepted or quarantined command. */
  readonly code: string;
  readonly count: number;
}

/** Decisions in one time bucket, by outcome. */
export interface TimelineBucket {
  /** Start of the bucket, ISO 8601. */
  readonly start: string;
  readonly accepted: number;
  readonly rejected: number;
  readonly quarantined: number;
}

/** Meters a key is trusted by (or due to be), from the keystore. */
export interface ExposureRow {
  readonly organisation: string;
  readonly portfolio: string;
  readonly keyId: string;
  /** The key's state: `pending`, `active`, `retired`, `revoked`, … */
  readonly state: string;
  readonly meters: number;
}

/**
 * A command both logs speak of (same device, originator counter and message code), where they
 * disagree: the decision log accepted a command whose signature the keystore never made, the key
 * the keystore used is not the certificate the validator checked, or their times are too far apart.
 */
export interface CrossCheckDisagreement {
  readonly device: string;
  readonly counter: string;
  readonly messageCode: string;
  /** One line on what the keystore trail says (`signed with key …`, `no signature`). */
  readonly keystore: string;
  /** One line on what the decision log says (`accepted, signer serial …`). */
  readonly decisionLog: string;
  /** One line on why this is flagged. */
  readonly issue: string;
}

/** The cross-check of the keystore trail against the decision log. */
export interface CrossCheck {
  /** Commands both logs record, consistently. */
  readonly matched: number;
  /** Signatures the keystore made that the decision log never saw (not yet sent, or sent elsewhere). */
  readonly keystoreOnly: number;
  /** Decisions on commands the keystore did not sign (other parties', or signed outside this keystore). */
  readonly decisionLogOnly: number;
  readonly disagreements: readonly CrossCheckDisagreement[];
}

/** Everything `smki audit report` shows. */
export interface AuditReport {
  /** When the report was made, ISO 8601. */
  readonly generatedAt: string;
  /** The time range the counts cover (ISO 8601; absent end: open). */
  readonly range: { readonly from?: string; readonly to?: string };
  readonly keystoreTrail: LogVerificationSummary;
  readonly decisionLog: LogVerificationSummary;
  readonly keyUse: readonly KeyUseRow[];
  readonly decisions: readonly DecisionCountRow[];
  /** Decisions over time; `bucketMs` wide buckets from the range's start (or the first record). */
  readonly timeline: { readonly bucketMs: number; readonly buckets: readonly TimelineBucket[] };
  readonly exposure: readonly ExposureRow[];
  readonly crossCheck: CrossCheck;
}
