/**
 * Re-key the meters of one portfolio after a supplier's key is rotated or stolen, and track it to
 * the end (GBCS CS02b: mode 2 supplier by supplier, mode 8 by the Recovery party). Key
 * segregation per portfolio (docs/key-segregation.md) means a stolen key endangers one portfolio
 * only: this package re-keys exactly the meters that trust it and never touches the others.
 *
 * Security posture: a durable, hash-chained plan per meter and purpose (SQLite or PostgreSQL),
 * written before any key is revoked or generated; counters consumed before signing and never used
 * twice, across restarts and racing services; every command checked before it is signed; compromise commands
 * signed by the Recovery party's own key store under dual control, bound to the exact bytes; a
 * device response believed only once its signature verifies.
 * @packageDocumentation
 */
export { RecoveryPlans } from './plans.js';
export type {
  RecoveryRoute,
  PlanState,
  ItemState,
  CounterSource,
  NextCounterSource,
  StartCounterSource,
  ProposedCommand,
  KeptCommand,
  CellResult,
  RecoveryPlansOptions,
  RecoveryPlan,
  PlannedRecovery,
  RotationPlanOptions,
  CompromisePlanOptions,
  PlanCertificates,
  MeterSigner,
  BatchProposal,
  RecoverySigning,
  BuildBatchOptions,
  BuiltCommand,
  RecordedResponse,
  PlanStatus,
  PlanHistoryVerification,
  KeyStoreOperator,
  OperationProposal,
  RecoveryFaultPoint,
} from './plans.js';
export { checkRecoveryCommand } from './check.js';
export type { RecoveryPurpose, RecoveryCommandExpectation } from './check.js';
