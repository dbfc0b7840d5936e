/**
 * The DCC-side hot path for GB smart metering: verify a User's signed pre-command, check the
 * originator's role and responsibility, the device's trust anchor (key segregation per
 * portfolio), the signer's path and revocation, the signature, anti-replay, the firmware
 * allowlist and anomaly thresholds, then counter-sign it with the Access Control Broker's MAC,
 * committing the counter and the decision record atomically before the frame is released.
 *
 * Security posture: everything fails closed. A rejection changes no state but the decision log;
 * an accepted counter is durable before the frame leaves; a store behind its decision log (a
 * restored backup) stops the validator from starting.
 * @packageDocumentation
 */
export { Validator, MAX_BATCH } from './validator.js';
export { ValidatorPool } from './pool.js';
export type { ValidatorPoolOptions } from './pool.js';
export type { ValidatorSetup } from './worker.js';
export { DECISION_LOG_SCHEMA, DECISION_LOG_FILE } from './internal/log.js';
export type { DecisionRecord, AcceptedRecord, CountersignedRecord, RejectedRecord, QuarantinedRecord, DiscardedRecord, UnacknowledgedRecord } from './internal/log.js';
export type {
  CommandContext,
  BatchCommand,
  DecisionStep,
  CommandFacts,
  AcceptedDecision,
  RejectedDecision,
  QuarantinedDecision,
  Decision,
  ValidatorDuisOptions,
  DuisRequestFacts,
  DuisDecision,
  AnomalyThreshold,
  AcbKey,
  DcoModeOptions,
  ValidatorTrust,
  DecisionLogOptions,
  SharedSecretCacheOptions,
  ValidatorEvent,
  CrlStatus,
  ValidatorOptions,
  ValidatorStats,
  CredentialsCellResult,
  CredentialsResponseResult,
} from './types.js';
export {
  buildDcoEnvelope,
  verifyDcoEnvelope,
  DCO_CONTENT_TYPE_OID,
  MAX_DCO_COMMAND_BYTES,
  MAX_DCO_RULE_BYTES,
  MAX_DCO_ENVELOPE_BYTES,
  DEFAULT_DCO_MAX_AGE_MS,
  DEFAULT_DCO_MAX_SKEW_MS,
} from './smets1.js';
export type { DcoOutcome, DcoDecision, DcoEnvelopeInput, DcoBuildOptions, DcoTrust, DcoVerifyOptions, DcoVerified } from './smets1.js';
