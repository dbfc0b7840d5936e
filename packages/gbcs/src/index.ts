/**
 * GBCS messages as meters and the DCC read and write them: parse and build general-signing APDUs
 * and general-ciphering frames without re-encoding, sign pre-commands as a User, verify User and
 * device signatures, and compute and check the Access Control Broker MAC (docs/domain.md §3–§5).
 *
 * Security posture: parsing is strict and bounded (every failure is `ERR_GBCS_MALFORMED` with the
 * offset); signatures and MACs are checked over the bytes as received, never over a re-encoding;
 * high-S ECDSA signatures are accepted; MACs are compared in constant time.
 * @packageDocumentation
 */
export {
  MAX_MESSAGE_BYTES,
  parseMessage,
  buildMessage,
  buildGeneralSigning,
  buildGeneralCiphering,
  apduBytes,
  signedBytes,
} from './codec.js';
export type { Cra, Frame, SignatureField, ByteRange, GbcsFields, GbcsMessage } from './codec.js';
export { verifySignature, signPreCommand, toVerificationKey } from './signature.js';
export type { VerificationKeyInput } from './signature.js';
export {
  KDF_MODES,
  GBCS_KEY_LENGTH,
  GBCS_TAG_LENGTH,
  otherInfo,
  kdf,
  deriveKey,
  deriveKeyAsync,
  gcmIv,
  gcmTag,
  macAad,
  computeMacBytes,
  verifyMacBytes,
  assertMacBytes,
  decryptSensitivePayload,
  encryptSensitivePayload,
} from './crypto.js';
export type {
  KdfMode,
  KdfModeCode,
  SystemTitleInput,
  PeerPublicKeyInput,
  OtherInfoFields,
  DeriveKeyOptions,
  DeriveKeyAsyncOptions,
  MacOptions,
  VerifyMacOptions,
  DecryptSensitivePayloadOptions,
  EncryptSensitivePayloadOptions,
} from './crypto.js';
export { computeMac, computeMacAsync, verifyMac, verifyMacAsync, wrapWithMac, wrapWithMacAsync, decryptPayload } from './mac.js';
export type { MacKeys, AsyncMacKeys } from './mac.js';
export {
  DUIS_ROLES,
  MESSAGE_CATALOGUE,
  lookupMessageCode,
  duisRoleOnWire,
  duisRoleFor,
  classify,
  isCritical,
  isEligible,
  createCatalogue,
  CREDENTIALS_MODES,
} from './catalogue.js';
export type {
  DuisRole,
  DeviceFuel,
  DeviceType,
  Criticality,
  MessageCodeEntry,
  CriticalityQuery,
  EligibilityQuery,
  DuisRoleWire,
  Catalogue,
  CredentialsModeEntry,
  CredentialsTargets,
} from './catalogue.js';
export {
  SUPPLY_COMMANDS,
  ACTIVATE_FIRMWARE_MESSAGE_CODE,
  buildSupplyCommand,
  buildEnableSupply,
  buildDisableSupply,
  buildArmSupply,
  buildActivateFirmware,
  encodeSupplyPayload,
  encodeActivateFirmwarePayload,
  decodeDlmsInvokeCounter,
  decodeSupplyPayload,
  decodeActivateFirmware,
} from './commands.js';
export type {
  CommandOptions,
  FuelCommandOptions,
  PreCommandEnding,
  SupplyAction,
  SupplyUseCase,
  SupplyCommand,
  ActivateFirmwarePayload,
  ActivateFirmwareOptions,
  DecodedSupplyPayload,
} from './commands.js';
export {
  UPDATE_SECURITY_CREDENTIALS_BASE_CODE,
  CREDENTIALS_STATUS,
  CREDENTIALS_ALERT_CODES,
  CREDENTIALS_ALERT_MESSAGE_CODE,
  ISSUE_CREDENTIALS_MESSAGE_CODE,
  UPDATE_DEVICE_CERTIFICATE_MESSAGE_CODE,
  PROVIDE_DEVICE_CERTIFICATE_MESSAGE_CODE,
  ISSUE_CREDENTIALS_ERRORS,
  UPDATE_DEVICE_CERTIFICATE_STATUS,
  PROVIDE_DEVICE_CERTIFICATE_ERRORS,
  encodeUpdateSecurityCredentialsPayload,
  decodeUpdateSecurityCredentials,
  checkUpdateSecurityCredentials,
  buildUpdateSecurityCredentials,
  decodeUpdateSecurityCredentialsCommand,
  encodeUpdateSecurityCredentialsResponse,
  decodeUpdateSecurityCredentialsResponse,
  encodeCredentialsAlert,
  decodeCredentialsAlert,
  buildIssueCredentials,
  decodeIssueCredentials,
  encodeIssueCredentialsResponse,
  decodeIssueCredentialsResponse,
  buildUpdateDeviceCertificate,
  decodeUpdateDeviceCertificate,
  encodeUpdateDeviceCertificateResponse,
  decodeUpdateDeviceCertificateResponse,
  buildProvideDeviceCertificate,
  decodeProvideDeviceCertificate,
  encodeProvideDeviceCertificateResponse,
  decodeProvideDeviceCertificateResponse,
} from './credentials.js';
export type {
  CellKeyUsage,
  DeviceKeyUsage,
  CellUsage,
  TrustAnchorCell,
  UsageFloor,
  RoleFloor,
  CredentialsReplacement,
  UpdateSecurityCredentialsPayload,
  UpdateSecurityCredentialsContext,
  UpdateSecurityCredentialsOptions,
  DecodedUpdateSecurityCredentialsCommand,
  CellOutcome,
  CredentialsExecutionOutcome,
  UpdateSecurityCredentialsResponse,
  CredentialsAlert,
  DeviceEncodingOptions,
  DeviceKeyCommandOptions,
  IssueCredentialsResponse,
  ProvideDeviceCertificateResponse,
  UpdateDeviceCertificateOptions,
  KeyUsageCommand,
  DeviceCertificateCommand,
} from './credentials.js';
