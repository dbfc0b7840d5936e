/**
 * SMKI private keys segregated per device portfolio. A supplier splits its meters into
 * portfolios, each with its own signing and key-agreement keys, so that one stolen key endangers
 * one portfolio only (docs/domain.md §1, §2: a meter trusts exactly one supplier DS certificate). Keys
 * live in an encrypted file store, an HSM (PKCS#11) or memory, behind one {@link KeyBackend}
 * interface; every lifecycle change and every use is recorded in a tamper-evident audit trail.
 *
 * An organisation's DUIS XML signing key (Remote Party Role 135) lives in the same store and
 * backends; no meter trusts it, and it signs only through {@link KeyStore.xmlSigner}.
 *
 * Security posture: signing for a meter uses only the key that meter trusts; every refusal has
 * its own code; lifecycle changes are durable before they return and a crash leaves the old state
 * or the new one; no private key is ever written unencrypted, logged, or put in an error.
 * @packageDocumentation
 */
export type { KeyBackend, GeneratedKey, KeySpec } from './backend.js';
export { MemoryKeyBackend } from './backends/memory.js';
export { FileKeyBackend, KEYSTORE_PASSPHRASE_ENV, PASSPHRASE_CHECK_FILE, FILE_HANDLE_PATTERN } from './backends/file.js';
export type { FileKeyBackendOptions } from './backends/file.js';
export { Pkcs11KeyBackend } from './backends/pkcs11.js';
export type { Pkcs11BackendOptions } from './backends/pkcs11.js';
export { KeyStore, KEYSTORE_DATABASE_FILE, MAX_BULK_DEVICES } from './keystore.js';
export type {
  KeyStoreOptions,
  KeyStoreDatabase,
  SqliteKeyStoreDatabase,
  PostgresKeyStoreDatabase,
  DevicePage,
  StoreVerification,
  OperatorState,
  ApprovalProgress,
  ProposalState,
  AuditTrailCheckOptions,
  GenerateKeyOptions,
  RotationSummary,
  PortfolioSummary,
  TrustingDevicesPage,
  CredentialUpdatePage,
  ExecutePayload,
  Assignment,
  ExposureCount,
  RowFinding,
  SigningSession,
  MigrationReport,
  TrailHead,
  TrailVerification,
} from './keystore.js';
export {
  canonicalJson,
  createOperatorRequest,
  verifyOperatorRequest,
  createApproval,
  verifyApproval,
  operationHash,
  deviceListDigest,
  assignmentListDigest,
  parseAccessPolicy,
  policyHash,
  requiredApprovals,
  DEFAULT_ACCESS_POLICY,
  OPERATOR_ROLES,
  OPERATION_ROLE,
  OPERATION_NAMES,
  grantScopes,
  authorise,
  parseOperation,
  parseProposal,
  evaluateQuorum,
  assertQuorum,
  checkOperationMatches,
  permits,
  MAX_CANONICAL_JSON_BYTES,
  MAX_CANONICAL_JSON_DEPTH,
  MAX_OPERATOR_GRANTS,
  MAX_SCOPE_PORTFOLIOS,
  MAX_SCOPES,
  MAX_DEVICE_LIST,
  MAX_POLICY_RULES,
  MAX_REQUIRED_APPROVALS,
  MAX_APPROVALS_PER_PROPOSAL,
  MAX_PROPOSAL_LIFETIME_MS,
  MAX_REQUEST_WINDOW_MS,
  DEFAULT_REQUEST_MAX_AGE_MS,
  DEFAULT_REQUEST_MAX_FUTURE_MS,
  MAX_OPERATOR_COUNTER,
  BACKEND_NAME,
  messageListDigest,
} from './access.js';
export type {
  AccessPolicy,
  AccessRule,
  AccessScope,
  Operation,
  OperationName,
  OperatorGrant,
  OperatorInfo,
  OperatorRequest,
  OperatorRequestFields,
  VerifyOperatorRequestOptions,
  VerifiedOperatorRequest,
  ApprovalFields,
  VerifyApprovalOptions,
  VerifiedApproval,
  QuorumOptions,
  QuorumResult,
  OperatorRole,
  Proposal,
  Approval,
  ListDigest,
  MessageToSign,
} from './access.js';
export {
  DirectoryAnchor,
  PostgresAnchor,
  signAuditCheckpoint,
  verifyAuditCheckpoint,
  auditCheckpointMessage,
  AUDIT_CHECKPOINT_CONTEXT,
  MAX_AUDIT_CHECKPOINT_LINE_BYTES,
  MAX_AUDIT_CHECKPOINT_DAMAGE_BYTES,
} from './anchor.js';
export type { AuditAnchor, AuditCheckpoint, SignedAuditCheckpoint, DirectoryAnchorOptions, PostgresAnchorOptions } from './anchor.js';
export { KEY_PURPOSES } from './types.js';
export type {
  KeyPurpose,
  KeyAgreementPurpose,
  KeyState,
  KeyHandle,
  SigningKeyHandle,
  KeyAgreementKeyHandle,
  XmlSigningKeyHandle,
  XmlSigner,
  XmlSignerOptions,
  XmlSignUse,
  OrganisationInfo,
  PortfolioInfo,
  KeyInfo,
  DeviceInfo,
  CredentialUpdate,
  Exposure,
  UseContext,
} from './types.js';
export type { FaultHook } from './internal/fsutil.js';
export {
  AuditLog,
  verifyAuditLog,
  deriveAuditKey,
  defineAuditSchema,
  KEYSTORE_AUDIT_SCHEMA,
  AUDIT_LOG_FILE,
  MAX_AUDIT_LINE_BYTES,
  MAX_FINDINGS,
} from './audit.js';
export type {
  AuditEvent,
  AuditEventType,
  AuditRecord,
  AuditHead,
  AuditFinding,
  AuditVerification,
  AuditRecovery,
  AuditLogOptions,
  AuditIntent,
  AuditStaged,
  AuditSchema,
  AuditEventBase,
  AuditFieldSpec,
  AuditFieldKind,
} from './audit.js';
