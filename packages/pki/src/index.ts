/**
 * SMKI certificate hierarchies for GB smart metering: issue root, organisation CA, device CA,
 * organisation and device certificates that follow the SMKI/GBCS profiles; parse them once into
 * typed views that keep their `KeyObject`s; lint them against the profile; build and validate
 * certification paths (RFC 5280 §6.1 and the SMKI rules); issue and check CRLs and authority
 * revocation lists; and look certificates up in a trust store by entity, SKI or issuer and serial.
 *
 * Security posture: everything that authorises fails closed. A path is valid only when every
 * check passed; parsing is bounded and every failure is a `SmkiError` with a stable code.
 * @packageDocumentation
 */
export { OID, TEST_ENVIRONMENT, defineEnvironment } from './environment.js';
export type { CaNameAttribute, CaProfile, SmkiEnvironment } from './environment.js';
export type {
  AuthorityKeyIdFields,
  BasicConstraints,
  CertificateDetails,
  ExtensionError,
  SubjectAltNameSummary,
  CertificateInput,
  CertificateKind,
  DistinguishedName,
  HardwareModuleName,
  NameAttribute,
  RawExtension,
  SmkiCertificate,
} from './types.js';
export {
  MAX_CERTIFICATE_BYTES,
  parseCertificate,
  parseCertificateBundle,
  certificateToPem,
  toCertificate,
  isParsedCertificate,
} from './parse.js';
export {
  createHierarchy,
  issueRootCertificate,
  issueCaCertificate,
  issueOrganisationCertificate,
  issueDeviceCertificate,
} from './issue.js';
export type {
  CertificateAuthority,
  IssueCommonOptions,
  IssueRootOptions,
  IssuingCaKind,
  IssueCaOptions,
  CreateHierarchyOptions,
  SmkiHierarchy,
  SubjectKeyOptions,
  IssueOrganisationOptions,
  IssueDeviceOptions,
} from './issue.js';
export { MAX_CSR_BYTES, createCsr, parseCsr } from './csr.js';
export type { CreateCsrOptions, ParsedCsr } from './csr.js';
export { lintCertificate, certificateProfile } from './lint.js';
export type { LintOptions, SmkiProfile } from './lint.js';
export { MAX_CRL_BYTES, DEFAULT_CRL_VALIDITY_HOURS, issueCrl, parseCrl, isParsedCrl, crlToPem } from './crl.js';
export type {
  CrlReason,
  CrlScope,
  CrlEntry,
  UnknownCriticalCrlExtension,
  CrlDetails,
  SmkiCrl,
  CrlInput,
  RevokedCertificateInput,
  IssueCrlOptions,
} from './crl.js';
export { DEFAULT_MAX_PATH_DEPTH, buildPaths, createPathValidator, validatePath } from './path.js';
export type {
  PathBuildOptions,
  PathCandidate,
  PathFinding,
  PathValidationResult,
  PathValidateOptions,
  PathValidatorOptions,
  PathValidationOptions,
  PathValidator,
} from './path.js';
export { DEFAULT_TRUST_STORE_MAX_FILE_BYTES, DEFAULT_TRUST_STORE_MAX_FILES, TrustStore } from './truststore.js';
export type { TrustStoreLoadOptions, TrustStoreLoadError, TrustStoreLoadResult } from './truststore.js';
