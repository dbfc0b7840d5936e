import type { Eui64, KeyAgreement, Signer, SmkiErrorCode } from '@smki/core';
import type { CertificateInput, CrlInput, SmkiCertificate, SmkiEnvironment, TrustStore } from '@smki/pki';
import type { DeviceRegistry, FirmwareAllowlist, StateStore } from '@smki/store';
import type { Catalogue } from '@smki/gbcs';
import type { DuisReplayOptions, DuisTrust, VerifiedDuis } from '@smki/duis';

/** What the caller knows of a submission from its transport. */
export interface CommandContext {
  /**
   * The User the caller authenticated on its transport (e.g. by the TLS client certificate or the
   * DUIS signature of the request): the command's GBCS originator must be this entity.
   */
  readonly sender: Eui64 | string;
}

/** One command of a {@link Validator.validateBatch} call. */
export interface BatchCommand extends CommandContext {
  /** The signed pre-command as received. */
  readonly bytes: Uint8Array;
}

/**
 * The steps of the decision, in order. A rejection names the step whose rule decided.
 * @see docs/validator.md
 */
export type DecisionStep =
  | 'duis'
  | 'parse'
  | 'classify'
  | 'signer'
  | 'path'
  | 'signature'
  | 'credentials'
  | 'replay'
  | 'firmware'
  | 'anomaly'
  | 'counter-sign'
  | 'commit';

/** The fields of a command the decision read, once it parsed. */
export interface CommandFacts {
  /** The GBCS originator (the User). */
  readonly originator: Eui64;
  /** The device (the GBCS recipient). */
  readonly device: Eui64;
  /** The message code. */
  readonly messageCode: number;
  /** The originator counter. */
  readonly counter: bigint;
}

/** The command may go to the device: here is the MAC'd general-ciphering frame (or, in DCO mode, the envelope). */
export interface AcceptedDecision extends CommandFacts {
  /** Accepted. */
  readonly outcome: 'accepted';
  /**
   * The general-ciphering frame with the ACB MAC; in DCO mode ({@link ValidatorOptions.dco}),
   * the CMS envelope for the SMETS1 adapter. Released only after the commit was durable.
   */
  readonly frame: Uint8Array;
  /** In DCO mode: the envelope's own counter, and whether an anomaly threshold was crossed (detected, not quarantined). */
  readonly dco?: {
    /** The envelope counter (strictly increasing per DCO and device). */
    readonly envelopeCounter: bigint;
    /** Whether the command crossed its anomaly threshold. */
    readonly anomaly: boolean;
  };
  /** Whether the command was critical for its originator's role (and its User signature was checked). */
  readonly critical: boolean;
  /** The Remote Party Role the originator acted in (2 supplier, 3 network operator). */
  readonly role: number;
  /** The signer's certificate serial number (critical commands). */
  readonly signerSerial?: string;
  /** The quarantine record this acceptance released, for an operator's release. */
  readonly released?: string;
}

/** The command must not go to the device. Nothing changed but the decision log. */
export interface RejectedDecision extends Partial<CommandFacts> {
  /** Rejected. */
  readonly outcome: 'rejected';
  /** The stable code of the rule that decided. */
  readonly code: SmkiErrorCode;
  /** The step of that rule. */
  readonly step: DecisionStep;
  /** What was wrong, for people (never secret material). */
  readonly message: string;
}

/** The command crossed an anomaly threshold and is held until an operator releases or discards it. */
export interface QuarantinedDecision extends CommandFacts {
  /** Quarantined. */
  readonly outcome: 'quarantined';
  /** Always `ERR_COMMAND_QUARANTINED`. */
  readonly code: 'ERR_COMMAND_QUARANTINED';
  /** Always `anomaly`. */
  readonly step: 'anomaly';
  /** The id of the quarantine record (for {@link Validator.release} and {@link Validator.discard}). */
  readonly quarantineId: string;
  /** Commands already accepted in the window. */
  readonly count: number;
  /** The threshold of the window. */
  readonly limit: number;
}

/** The result of validating one command. */
export type Decision = AcceptedDecision | RejectedDecision | QuarantinedDecision;

/**
 * The DUIS entry ({@link Validator.validateDuisRequest}): what signed pre-command Requests are
 * verified against, and the anti-replay of their request ids.
 * @see docs/domain.md §8
 */
export interface ValidatorDuisOptions {
  /**
   * The Users' XML-signing certificates (role 135), their CAs and CRLs. Replace it with
   * {@link Validator.updateDuisTrust} when a CRL or a certificate changes.
   */
  readonly trust: DuisTrust;
  /**
   * Anti-replay of request ids (recommended). Its `store` must be a state store of its own, never
   * {@link ValidatorOptions.store}: request ids and GBCS originator counters are separate series
   * kept under the same (originator, device) key, so one store would refuse every command.
   */
  readonly replay?: DuisReplayOptions;
  /** The largest document accepted, in bytes (default @smki/duis's, 1 MiB). */
  readonly maxBytes?: number;
}

/**
 * The fields of a DUIS Request whose XML signature verified, as a decision on it carries them:
 * those of `VerifiedDuis` (the request id's originator, target and counter, the header's service
 * reference, variant and command variant, the body's element: `SignedPreCommand` for every
 * request that reached the GBCS checks), the request id as written, and the XML signer.
 */
export interface DuisRequestFacts
  extends Pick<VerifiedDuis, 'originator' | 'target' | 'counter' | 'serviceReference' | 'serviceReferenceVariant' | 'commandVariant' | 'body'> {
  /** `sr:RequestID` as written (`originatorEUI:targetEUI:counter`). */
  readonly requestId: string;
  /** The serial number of the XML-signing certificate that verified the signature (upper-case hex). */
  readonly xmlSignerSerial: string;
}

/**
 * The result of {@link Validator.validateDuisRequest}: the GBCS {@link Decision} on the signed
 * pre-command, with the DUIS fields of the Request. A rejection at the `duis` step carries
 * `request` only if the XML signature verified; an accepted or quarantined command always does.
 */
export type DuisDecision =
  | (AcceptedDecision & {
      /** The verified DUIS Request. */
      readonly request: DuisRequestFacts;
    })
  | (QuarantinedDecision & {
      /** The verified DUIS Request. */
      readonly request: DuisRequestFacts;
    })
  | (RejectedDecision & {
      /** The DUIS Request, if its XML signature verified. */
      readonly request?: DuisRequestFacts;
    });

/** An anomaly detection threshold: at most `limit` commands per `windowMs`. */
export interface AnomalyThreshold {
  /** Most commands accepted in one window (0 holds every command back). */
  readonly limit: number;
  /** Window length in milliseconds; windows are aligned to multiples of it since the epoch. */
  readonly windowMs: number;
}

/**
 * The counter-signing key: the Access Control Broker's key-agreement key, behind the core
 * `KeyAgreement` interface so that it may live in an HSM or in the keystore.
 */
export interface AcbKey {
  /** A stable id of the key (the keystore's key id), used to key the shared-secret cache. */
  readonly keyId: string;
  /**
   * The key agreement to use for one command, or a function choosing it per command (answering
   * at once or with a promise). With @smki/keystore:
   * `(device, use) => keyStore.keyAgreementFor(device, { organisation: acb, ...use })`, so that
   * every derivation is checked and audited by the keystore.
   */
  readonly keyAgreement: KeyAgreement | ((device: Eui64, use: { readonly messageCode: number; readonly counter: bigint }) => KeyAgreement | Promise<KeyAgreement>);
}

/**
 * Dual Control Organisation mode (SMETS1): after the same checks, counter-sign the command and the
 * decision in a CMS envelope instead of adding the ACB MAC; anomalies are detected and flagged in
 * the envelope, never quarantined.
 */
export interface DcoModeOptions {
  /** The DCO's signing key (memory, keystore or HSM). */
  readonly signer: Signer;
  /** The DCO's digital-signature organisation certificate (its entity id keys the envelope counters). */
  readonly certificate: SmkiCertificate;
}

/** The certificates and revocation lists the validator trusts. */
export interface ValidatorTrust {
  /**
   * Roots, CAs and the Users' organisation certificates. Copied when given: changing the
   * `TrustStore` afterwards has no effect until {@link Validator.updateTrust}.
   */
  readonly certificates: TrustStore | Iterable<CertificateInput>;
  /** CRLs and ARLs. Revocation is always required: a path without a current CRL is refused. */
  readonly crls: readonly CrlInput[];
  /** Policy OIDs and profiles (default the test environment). */
  readonly environment?: SmkiEnvironment;
  /** Seconds a CRL stays usable after its nextUpdate (default the environment's). */
  readonly crlGraceSeconds?: number;
}

/** The tamper-evident decision log of this validator process. */
export interface DecisionLogOptions {
  /** Directory of the log file (one per validator process; created if missing). */
  readonly dir: string;
  /** The log's id in the state store: one per process, `[A-Za-z0-9._:@-]{1,128}`. */
  readonly id: string;
  /** The 32-byte HMAC key of the log (keep it from the validator's host where auditors need independence). */
  readonly key: Uint8Array;
}

/** Optional cache of ECDH shared secrets (see docs/validator.md for what it trades). */
export interface SharedSecretCacheOptions {
  /** Most entries (default 100,000). */
  readonly maxEntries?: number;
  /** Time to live in milliseconds (default one hour). */
  readonly ttlMs?: number;
}

/** Something the validator tells its operators. */
export type ValidatorEvent =
  | {
      /** A CRL or ARL expires within the warning time: issue a new one before it does. */
      readonly type: 'crl-expiring';
      /** The issuer's name. */
      readonly issuer: string;
      /** Its nextUpdate. */
      readonly nextUpdate: Date;
    }
  | {
      /** A CRL or ARL has expired: every command whose path it covers is refused. */
      readonly type: 'crl-expired';
      /** The issuer's name. */
      readonly issuer: string;
      /** Its nextUpdate. */
      readonly nextUpdate: Date;
    };

/** The freshness of one CRL or ARL. */
export interface CrlStatus {
  /** The issuer's name. */
  readonly issuer: string;
  /** Its cRLNumber, if any. */
  readonly crlNumber?: bigint;
  /** thisUpdate. */
  readonly thisUpdate: Date;
  /** nextUpdate (a CRL without one is never fresh). */
  readonly nextUpdate?: Date;
  /** `fresh`, `expiring` (within the warning time) or `expired`. */
  readonly state: 'fresh' | 'expiring' | 'expired';
}

/** Options of {@link Validator.open}. */
export interface ValidatorOptions {
  /** Anti-replay counters, anomaly windows and quarantine. */
  readonly store: StateStore;
  /** The devices, their cells and certificates. */
  readonly registry: DeviceRegistry;
  /** Approved firmware images per model. */
  readonly firmware: FirmwareAllowlist;
  /** Certificates and CRLs. */
  readonly trust: ValidatorTrust;
  /** The ACB key that counter-signs (SMETS2). Exactly one of `acb` and `dco`. */
  readonly acb?: AcbKey;
  /** DCO mode (SMETS1): counter-sign in a CMS envelope instead. Exactly one of `acb` and `dco`. */
  readonly dco?: DcoModeOptions;
  /** The decision log. */
  readonly log: DecisionLogOptions;
  /** The DUIS entry for signed pre-command Requests ({@link Validator.validateDuisRequest}); without it that entry is refused. */
  readonly duis?: ValidatorDuisOptions;
  /** The message catalogue (default the toolkit's). */
  readonly catalogue?: Catalogue;
  /**
   * Anomaly thresholds per (User, message code); `undefined` for none. Default: no threshold.
   * Called for every command that reaches the anomaly step.
   */
  readonly anomalyThreshold?: (user: Eui64, messageCode: number) => AnomalyThreshold | undefined;
  /**
   * How far (ms) an originator counter may be ahead of the clock when counters are milliseconds
   * since the epoch (default 300,000 = 5 minutes); `false` when counters are not clock-based.
   */
  readonly counterClockWindowMs?: number | false;
  /** How long before a CRL's nextUpdate the `crl-expiring` event fires (ms, default 6 hours). */
  readonly crlWarningMs?: number;
  /** Receives operator events (CRL freshness). */
  readonly onEvent?: (event: ValidatorEvent) => void;
  /** Cache ECDH shared secrets (off by default). */
  readonly sharedSecretCache?: SharedSecretCacheOptions | false;
  /** Most parsed keys and path verdicts cached (default 100,000 each). */
  readonly cacheSize?: number;
  /** Clock (default `() => new Date()`). */
  readonly now?: () => Date;
}

/**
 * One cell of a CS02b answer as {@link Validator.recordCredentialsResponse} applied it: the cell,
 * the device's status for it, and the certificates (SKIs) before and after.
 * @see docs/domain.md §9 (the response's outcomes)
 */
export interface CredentialsCellResult {
  /** The cell's Remote Party Role. */
  readonly role: number;
  /** The cell's key usage. */
  readonly keyUsage: 'digitalSignature' | 'keyAgreement' | 'keyCertSign';
  /** Management or prepayment top-up. */
  readonly cellUsage: 'management' | 'prepayment';
  /** The device's status for the cell (0 success). */
  readonly status: number;
  /** The SKI the cell named before. */
  readonly oldKeyId: string;
  /** The SKI it names now (the old one when the cell failed). */
  readonly newKeyId: string;
  /** Whether the registry's cell was moved to the new certificate. */
  readonly moved: boolean;
}

/**
 * What {@link Validator.recordCredentialsResponse} did with a device's verified answer to a CS02b
 * command: `applied` (the successful cells moved in the registry, in one transaction; failed cells
 * kept), `scheduled` (a future-dated command's immediate answer: nothing moves until its alert
 * 0x00CB), `failed` (an alert 0x8F67: nothing moves).
 * @see docs/domain.md §9, docs/validator.md
 */
export interface CredentialsResponseResult {
  /** What happened in the registry. */
  readonly state: 'applied' | 'scheduled' | 'failed';
  /** The device. */
  readonly device: Eui64;
  /** The command's originator. */
  readonly originator: Eui64;
  /** The command's message code (0x0102 to 0x0108). */
  readonly messageCode: number;
  /** The command's originator counter ([3], the sequence number the answer repeats). */
  readonly counter: bigint;
  /** Whether the answer was the response (CRA 02) or the alert 0x00CB (CRA 03). */
  readonly answer: 'response' | 'alert';
  /** The cells, in the command's order (empty for `scheduled`). */
  readonly cells: readonly CredentialsCellResult[];
}

/** Counts of decisions since the validator opened, for monitoring. */
export interface ValidatorStats {
  /** Commands accepted. */
  readonly accepted: number;
  /** Commands quarantined. */
  readonly quarantined: number;
  /** Commands rejected, per code. */
  readonly rejected: Readonly<Record<string, number>>;
}
