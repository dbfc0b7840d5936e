/**
 * The one error class of the toolkit and its stable codes.
 *
 * A code, once released, is never renamed or reused: callers switch on `code`, never on the
 * message text. `test/error-codes.test.ts` compares the list with a committed snapshot.
 * @module
 */

/**
 * Every error and finding code of the toolkit, with a one-line meaning.
 *
 * Codes are grouped by prefix: `ERR_EUI64_`, `ERR_BYTES_`, `ERR_DER_` (primitives),
 * `ERR_PEM_`, `ERR_CERT_`, `ERR_CSR_`, `ERR_CRL_` (parsing), `ERR_ISSUE_` (a CA refusing a
 * request), `ERR_PROFILE_` (SMKI/GBCS profile rules, docs/domain.md §2), `ERR_CHAIN_` (RFC 5280 §6.1 path
 * validation), `ERR_REVOKED`/`ERR_CRL_` (revocation), `ERR_TRUST_STORE_`.
 */
export const SMKI_ERROR_CODES = {
  // ---- primitives (core)
  /** An argument has the wrong type, shape or range. */
  ERR_INVALID_ARGUMENT: 'An argument has the wrong type, shape or range',
  /** Not an EUI-64 in an accepted spelling. */
  ERR_EUI64_INVALID: 'Not an EUI-64 in an accepted spelling',
  /** Not an even-length hexadecimal string. */
  ERR_HEX_INVALID: 'Not an even-length hexadecimal string',
  /** Not a base64 string. */
  ERR_BASE64_INVALID: 'Not a base64 string',
  /** Not a known Remote Party Role code. */
  ERR_ROLE_UNKNOWN: 'Not a known Remote Party Role code',
  /** Input ends before a field that must be there. */
  ERR_BYTES_TRUNCATED: 'Input ends before a field that must be there',
  /** Not valid DER (tag, length or nesting). */
  ERR_DER_INVALID: 'Not valid DER (tag, length or nesting)',
  /** DER nesting deeper than the parser allows. */
  ERR_DER_DEPTH_EXCEEDED: 'DER nesting deeper than the parser allows',
  /** Bytes after the end of a DER object. */
  ERR_DER_TRAILING_DATA: 'Bytes after the end of a DER object',
  /** Not a usable key for this operation. */
  ERR_KEY_INVALID: 'Not a usable key for this operation',
  /** Key is not on NIST P-256, or gives P-256 by explicit parameters instead of its OID (RFC 5480 2.1.1). */
  ERR_KEY_CURVE_UNSUPPORTED: 'Key is not on NIST P-256, or gives it by explicit parameters instead of its OID',
  /** The private key is encrypted (PKCS#8 EncryptedPrivateKeyInfo); decrypt it first. */
  ERR_KEY_ENCRYPTED: 'The private key is encrypted (PKCS#8 EncryptedPrivateKeyInfo); decrypt it first',
  /** A signature is not 64 bytes r||s or valid DER ECDSA-Sig-Value. */
  ERR_SIGNATURE_ENCODING: 'A signature is not 64 bytes r||s or valid DER ECDSA-Sig-Value',
  // ---- parsing (pki)
  /** PEM armour is missing, mismatched or has junk inside. */
  ERR_PEM_INVALID: 'PEM armour is missing, mismatched or has junk inside',
  /** Bytes do not decode as an X.509 certificate. */
  ERR_CERT_MALFORMED: 'Bytes do not decode as an X.509 certificate',
  /** Bytes do not decode as a PKCS#10 certification request. */
  ERR_CSR_MALFORMED: 'Bytes do not decode as a PKCS#10 certification request',
  /** The CSR proof-of-possession signature does not verify. */
  ERR_CSR_SIGNATURE_INVALID: 'The CSR proof-of-possession signature does not verify',
  /** Bytes do not decode as an X.509 CRL. */
  ERR_CRL_MALFORMED: 'Bytes do not decode as an X.509 CRL',
  // ---- issuance (pki CA API)
  /** An issuance request is incomplete or out of range. */
  ERR_ISSUE_INVALID_REQUEST: 'An issuance request is incomplete or out of range',
  /** The CSR asks for key usages the profile does not give. */
  ERR_ISSUE_CSR_KEY_USAGE: 'The CSR asks for key usages the profile does not give',
  /** The CSR asks for a CA certificate. */
  ERR_ISSUE_CSR_CA_REQUESTED: 'The CSR asks for a CA certificate',
  /** The CSR names another entity (EUI-64) than the request. */
  ERR_ISSUE_CSR_ENTITY_MISMATCH: 'The CSR names another entity (EUI-64) than the request',
  /** The CSR names another Remote Party Role than the request. */
  ERR_ISSUE_CSR_ROLE_MISMATCH: 'The CSR names another Remote Party Role than the request',
  /** The CSR asks for an extension or attribute the profile does not allow. */
  ERR_ISSUE_CSR_EXTENSION_REFUSED: 'The CSR asks for an extension or attribute the profile does not allow',
  /** The CSR subject asks for a common name or attribute the request does not give. */
  ERR_ISSUE_CSR_SUBJECT_MISMATCH: 'The CSR subject asks for a common name or attribute the request does not give',
  /** The issuing certificate is not a CA that may sign this kind. */
  ERR_ISSUE_ISSUER_NOT_CA: 'The issuing certificate is not a CA that may sign this kind',
  /** The signer's public key is not the issuing certificate's. */
  ERR_ISSUE_ISSUER_KEY_MISMATCH: "The signer's public key is not the issuing certificate's",
  // ---- profile rules (docs/domain.md §2, RFC 5280 §4)
  /** Certificate is not X.509 v3. */
  ERR_PROFILE_VERSION: 'Certificate is not X.509 v3',
  /** Subject public key is not id-ecPublicKey. */
  ERR_PROFILE_KEY_ALGORITHM: 'Subject public key is not id-ecPublicKey',
  /** Subject public key is not on NIST P-256. */
  ERR_PROFILE_KEY_CURVE: 'Subject public key is not on NIST P-256',
  /** Subject public key is not a valid uncompressed P-256 point. */
  ERR_PROFILE_KEY_POINT: 'Subject public key is not a valid uncompressed P-256 point',
  /** Signature algorithm is not ecdsa-with-SHA256. */
  ERR_PROFILE_SIGNATURE_ALGORITHM: 'Signature algorithm is not ecdsa-with-SHA256',
  /** ecdsa-with-SHA256 carries parameters (an explicit NULL). */
  ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS: 'ecdsa-with-SHA256 carries parameters (an explicit NULL)',
  /** tbsCertificate.signature differs from signatureAlgorithm. */
  ERR_PROFILE_SIGNATURE_ALGORITHM_MISMATCH: 'tbsCertificate.signature differs from signatureAlgorithm',
  /** Serial number is not 16 octets. */
  ERR_PROFILE_SERIAL_LENGTH: 'Serial number is not 16 octets',
  /** Serial number is zero or negative. */
  ERR_PROFILE_SERIAL_NOT_POSITIVE: 'Serial number is zero or negative',
  /** notBefore is after notAfter. */
  ERR_PROFILE_VALIDITY_ORDER: 'notBefore is after notAfter',
  /** A date before 2050 is not UTCTime, or one from 2050 is not GeneralizedTime. */
  ERR_PROFILE_VALIDITY_ENCODING: 'A date before 2050 is not UTCTime, or one from 2050 is not GeneralizedTime',
  /** An extension appears more than once. */
  ERR_PROFILE_EXTENSION_DUPLICATE: 'An extension appears more than once',
  /** An extension the profile forbids here is present. */
  ERR_PROFILE_EXTENSION_FORBIDDEN: 'An extension the profile forbids here is present',
  /** A critical extension is not one the profile knows. */
  ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL: 'A critical extension is not one the profile knows',
  /** A known extension does not decode as its ASN.1 type. */
  ERR_PROFILE_EXTENSION_MALFORMED: 'A known extension does not decode as its ASN.1 type',
  /** A policy OID appears more than once in certificatePolicies. */
  ERR_PROFILE_POLICY_DUPLICATE: 'A policy OID appears more than once in certificatePolicies',
  /** basicConstraints of a CA certificate does not assert cA TRUE. */
  ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CA: 'basicConstraints of a CA certificate does not assert cA TRUE',
  /** keyUsage is absent. */
  ERR_PROFILE_KEY_USAGE_MISSING: 'keyUsage is absent',
  /** keyUsage is not critical. */
  ERR_PROFILE_KEY_USAGE_NOT_CRITICAL: 'keyUsage is not critical',
  /** keyUsage bits are not those of this certificate kind. */
  ERR_PROFILE_KEY_USAGE_INVALID: 'keyUsage bits are not those of this certificate kind',
  /** An end-entity certificate does not have exactly one of digitalSignature and keyAgreement. */
  ERR_PROFILE_KEY_USAGE_NOT_SINGLE: 'An end-entity certificate does not have exactly one of digitalSignature and keyAgreement',
  /** certificatePolicies is absent or empty. */
  ERR_PROFILE_POLICIES_MISSING: 'certificatePolicies is absent or empty',
  /** certificatePolicies is not critical. */
  ERR_PROFILE_POLICIES_NOT_CRITICAL: 'certificatePolicies is not critical',
  /** A policy OID is not one the environment allows for this kind. */
  ERR_PROFILE_POLICY_NOT_ALLOWED: 'A policy OID is not one the environment allows for this kind',
  /** A device certificate does not carry exactly one policy OID. */
  ERR_PROFILE_POLICY_COUNT: 'A device certificate does not carry exactly one policy OID',
  /** subjectKeyIdentifier is absent. */
  ERR_PROFILE_SKI_MISSING: 'subjectKeyIdentifier is absent',
  /** subjectKeyIdentifier is critical. */
  ERR_PROFILE_SKI_CRITICAL: 'subjectKeyIdentifier is critical',
  /** subjectKeyIdentifier is not 8 octets. */
  ERR_PROFILE_SKI_LENGTH: 'subjectKeyIdentifier is not 8 octets',
  /** subjectKeyIdentifier is not RFC 5280 4.2.1.2 method 2 of the key. */
  ERR_PROFILE_SKI_METHOD: 'subjectKeyIdentifier is not RFC 5280 4.2.1.2 method 2 of the key',
  /** authorityKeyIdentifier is absent on a certificate that is not self-signed. */
  ERR_PROFILE_AKI_MISSING: 'authorityKeyIdentifier is absent on a certificate that is not self-signed',
  /** authorityKeyIdentifier is critical. */
  ERR_PROFILE_AKI_CRITICAL: 'authorityKeyIdentifier is critical',
  /** authorityKeyIdentifier is not [0] keyIdentifier only. */
  ERR_PROFILE_AKI_FORM: 'authorityKeyIdentifier is not [0] keyIdentifier only',
  /** The self-signed root carries an authorityKeyIdentifier. */
  ERR_PROFILE_AKI_ON_ROOT: 'The self-signed root carries an authorityKeyIdentifier',
  /** The self-signed root's authorityKeyIdentifier names a key other than its own (RFC 5280 4.2.1.1). */
  ERR_PROFILE_AKI_ROOT_MISMATCH: "The self-signed root's authorityKeyIdentifier names a key other than its own",
  /** A CA certificate has no basicConstraints. */
  ERR_PROFILE_BASIC_CONSTRAINTS_MISSING: 'A CA certificate has no basicConstraints',
  /** basicConstraints of a CA is not critical. */
  ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CRITICAL: 'basicConstraints of a CA is not critical',
  /** An issuing CA does not have pathLenConstraint 0. */
  ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH: 'An issuing CA does not have pathLenConstraint 0',
  /** An end-entity certificate asserts cA TRUE. */
  ERR_PROFILE_END_ENTITY_IS_CA: 'An end-entity certificate asserts cA TRUE',
  /** keyUsage asserts keyCertSign on a certificate that is not a CA (RFC 5280 4.2.1.3: keyCertSign only with cA TRUE). */
  ERR_PROFILE_KEY_CERT_SIGN_NOT_CA: 'keyUsage asserts keyCertSign on a certificate without basicConstraints cA TRUE',
  /** policyConstraints is present and not critical (RFC 5280 4.2.1.11: conforming CAs MUST mark it critical). */
  ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL: 'policyConstraints is not critical',
  /** The certificate matches no SMKI certificate kind. */
  ERR_PROFILE_UNKNOWN_KIND: 'The certificate matches no SMKI certificate kind',
  /** The root is not self-issued and self-signed. */
  ERR_PROFILE_ROOT_NOT_SELF_SIGNED: 'The root is not self-issued and self-signed',
  /** The root subject OU is not 00. */
  ERR_PROFILE_ROOT_ROLE: 'The root subject OU is not 00',
  /** The organisation CA subject OU is not 07. */
  ERR_PROFILE_OCA_ROLE: 'The organisation CA subject OU is not 07',
  /** The organisation subject has no OU (Remote Party Role). */
  ERR_PROFILE_ORG_ROLE_MISSING: 'The organisation subject has no OU (Remote Party Role)',
  /** The organisation OU is not exactly two upper-case hex digits. */
  ERR_PROFILE_ORG_ROLE_FORMAT: 'The organisation OU is not exactly two upper-case hex digits',
  /** The organisation OU is not a known Remote Party Role. */
  ERR_PROFILE_ORG_ROLE_UNKNOWN: 'The organisation OU is not a known Remote Party Role',
  /** The organisation subject has no x500UniqueIdentifier. */
  ERR_PROFILE_ORG_ENTITY_ID_MISSING: 'The organisation subject has no x500UniqueIdentifier',
  /** x500UniqueIdentifier is not a BIT STRING of exactly 64 bits. */
  ERR_PROFILE_ORG_ENTITY_ID_FORMAT: 'x500UniqueIdentifier is not a BIT STRING of exactly 64 bits',
  /** The organisation CN is not a UTF8String. */
  ERR_PROFILE_ORG_CN_ENCODING: 'The organisation CN is not a UTF8String',
  /** The organisation subject has an attribute the profile does not allow. */
  ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE: 'The organisation subject has an attribute the profile does not allow',
  /** A device certificate subject is not empty. */
  ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY: 'A device certificate subject is not empty',
  /** A device certificate notAfter is not GeneralizedTime 99991231235959Z. */
  ERR_PROFILE_DEVICE_NOT_AFTER: 'A device certificate notAfter is not GeneralizedTime 99991231235959Z',
  /** A device certificate has no subjectAltName. */
  ERR_PROFILE_DEVICE_SAN_MISSING: 'A device certificate has no subjectAltName',
  /** A device certificate subjectAltName is not critical. */
  ERR_PROFILE_DEVICE_SAN_NOT_CRITICAL: 'A device certificate subjectAltName is not critical',
  /** subjectAltName is not exactly one otherName hardwareModuleName. */
  ERR_PROFILE_DEVICE_SAN_FORM: 'subjectAltName is not exactly one otherName hardwareModuleName',
  /** hwSerialNum is not an 8-octet EUI-64. */
  ERR_PROFILE_DEVICE_HW_SERIAL: 'hwSerialNum is not an 8-octet EUI-64',
  /** hwType is not an OID the environment allows. */
  ERR_PROFILE_DEVICE_HW_TYPE: 'hwType is not an OID the environment allows',
  // ---- path validation (RFC 5280 §6.1 and SMKI rules)
  /** No trust anchor was given. */
  ERR_CHAIN_NO_ANCHORS: 'No trust anchor was given',
  /** No candidate issuer leads to a trust anchor. */
  ERR_CHAIN_ISSUER_NOT_FOUND: 'No candidate issuer leads to a trust anchor',
  /** The path is longer than the SMKI hierarchy allows. */
  ERR_CHAIN_TOO_LONG: 'The path is longer than the SMKI hierarchy allows',
  /** A certificate's signature does not verify under its issuer's key. */
  ERR_CHAIN_SIGNATURE_INVALID: "A certificate's signature does not verify under its issuer's key",
  /** A certificate is not yet valid at the validation time. */
  ERR_CHAIN_NOT_YET_VALID: 'A certificate is not yet valid at the validation time',
  /** A certificate has expired at the validation time. */
  ERR_CHAIN_EXPIRED: 'A certificate has expired at the validation time',
  /** Issuer name does not equal the issuer certificate subject (DER). */
  ERR_CHAIN_NAME_MISMATCH: 'Issuer name does not equal the issuer certificate subject (DER)',
  /** authorityKeyIdentifier does not equal the issuer subjectKeyIdentifier. */
  ERR_CHAIN_KEY_ID_MISMATCH: 'authorityKeyIdentifier does not equal the issuer subjectKeyIdentifier',
  /** An issuer in the path is not a CA (basicConstraints cA). */
  ERR_CHAIN_ISSUER_NOT_CA: 'An issuer in the path is not a CA (basicConstraints cA)',
  /** A pathLenConstraint is exceeded. */
  ERR_CHAIN_PATH_LENGTH_EXCEEDED: 'A pathLenConstraint is exceeded',
  /** An issuer in the path lacks keyCertSign. */
  ERR_CHAIN_ISSUER_KEY_USAGE: 'An issuer in the path lacks keyCertSign',
  /** A certificate in the path has an unknown critical extension. */
  ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION: 'A certificate in the path has an unknown critical extension',
  /** A certificate in the path carries no policy allowed for the environment. */
  ERR_CHAIN_POLICY_NOT_ALLOWED: 'A certificate in the path carries no policy allowed for the environment',
  /** A certificate in the path breaks the profile of its level. */
  ERR_CHAIN_PROFILE_VIOLATION: 'A certificate in the path breaks the profile of its level',
  /** An organisation CA issued a device certificate or a device CA an organisation one. */
  ERR_CHAIN_PKI_MISMATCH: 'An organisation CA issued a device certificate or a device CA an organisation one',
  // ---- revocation
  /** A certificate in the path is revoked. */
  ERR_REVOKED: 'A certificate in the path is revoked',
  /** Revocation was required and no usable CRL covers a certificate. */
  ERR_CRL_MISSING: 'Revocation was required and no usable CRL covers a certificate',
  /** A CRL is past its nextUpdate (plus grace). */
  ERR_CRL_EXPIRED: 'A CRL is past its nextUpdate (plus grace)',
  /** A CRL thisUpdate is after the validation time. */
  ERR_CRL_NOT_YET_VALID: 'A CRL thisUpdate is after the validation time',
  /** A CRL signature does not verify under the certificate issuer's key. */
  ERR_CRL_SIGNATURE_INVALID: "A CRL signature does not verify under the certificate issuer's key",
  /** A CRL is not issued by the certificate's issuer. */
  ERR_CRL_ISSUER_MISMATCH: "A CRL is not issued by the certificate's issuer",
  /** A CRL or CRL entry has an unknown critical extension. */
  ERR_CRL_UNKNOWN_CRITICAL_EXTENSION: 'A CRL or CRL entry has an unknown critical extension',
  /** The CRL issuer's certificate lacks cRLSign. */
  ERR_CRL_ISSUER_KEY_USAGE: "The CRL issuer's certificate lacks cRLSign",
  /** A CRL has no cRLNumber extension (RFC 5280 5.2.3: conforming CRL issuers include it). */
  ERR_CRL_NUMBER_MISSING: 'A CRL has no cRLNumber extension',
  /** A CRL marks its cRLNumber extension critical (RFC 5280 5.2.3: it is non-critical). */
  ERR_CRL_NUMBER_CRITICAL: 'A CRL marks its cRLNumber extension critical',
  // ---- key store (keystore)
  /** The key store is open in another process. */
  ERR_KEYSTORE_LOCKED: 'The key store is open in another process',
  /** The passphrase does not open this store (metadata MAC or key decryption fails). */
  ERR_KEYSTORE_WRONG_PASSPHRASE: 'The passphrase does not open this store (metadata MAC or key decryption fails)',
  /** Store metadata is damaged or its MAC does not verify. */
  ERR_KEYSTORE_CORRUPT: 'Store metadata is damaged or its MAC does not verify',
  /** The key store has been closed. */
  ERR_KEYSTORE_CLOSED: 'The key store has been closed',
  /** The store's metadata is older than its audit trail: the log records lifecycle changes the metadata does not have (a backup restored over newer state). */
  ERR_KEYSTORE_METADATA_ROLLBACK: 'The store metadata is older than its audit trail (lifecycle records lie beyond the head it names)',
  /** The store keeps its metadata in the JSON file of an earlier release: migrate it to a database first (`KeyStore.migrate`). */
  ERR_KEYSTORE_MIGRATION_REQUIRED: 'The store keeps its metadata in the JSON file of an earlier release: migrate it (KeyStore.migrate)',
  /** A metadata row fails its MAC: it was written outside the store, or belongs to another store. */
  ERR_KEYSTORE_ROW_TAMPERED: 'A metadata row fails its MAC: it was written outside the store, or belongs to another store',
  /** A key file is damaged; only that key is affected. */
  ERR_KEY_FILE_CORRUPT: 'A key file is damaged; only that key is affected',
  /** No key with this id. */
  ERR_KEY_NOT_FOUND: 'No key with this id',
  /** The key is held by a named backend the key store was not opened with; it is never looked for in another. */
  ERR_KEY_BACKEND_UNAVAILABLE: 'The key is held by a named backend the key store was not opened with',
  /** The key is pending: it has no certificate attached yet. */
  ERR_KEY_NOT_ACTIVE: 'The key is pending: it has no certificate attached yet',
  /** The key is retired. */
  ERR_KEY_RETIRED: 'The key is retired',
  /** The key is revoked. */
  ERR_KEY_REVOKED: 'The key is revoked',
  /** A key-agreement key was asked to sign (only its own CSR may be signed). */
  ERR_KEY_NOT_FOR_SIGNING: 'A key-agreement key was asked to sign (only its own CSR may be signed)',
  /** A signing key was asked for key agreement. */
  ERR_KEY_NOT_FOR_KEY_AGREEMENT: 'A signing key was asked for key agreement',
  /** The key belongs to another portfolio than the device's. */
  ERR_KEY_PORTFOLIO_MISMATCH: "The key belongs to another portfolio than the device's",
  /** The key lifecycle does not allow this change. */
  ERR_KEY_STATE_TRANSITION: 'The key lifecycle does not allow this change',
  /** No organisation with this entity id. */
  ERR_ORGANISATION_NOT_FOUND: 'No organisation with this entity id',
  /** An organisation with this entity id exists. */
  ERR_ORGANISATION_EXISTS: 'An organisation with this entity id exists',
  /** No portfolio with this id. */
  ERR_PORTFOLIO_NOT_FOUND: 'No portfolio with this id',
  /** A portfolio with this id exists. */
  ERR_PORTFOLIO_EXISTS: 'A portfolio with this id exists',
  /** Assigning the device would put more devices behind one key than the cap allows. */
  ERR_PORTFOLIO_DEVICE_CAP: 'Assigning the device would put more devices behind one key than the cap allows',
  /** A whole-estate key is declared (or used) for a purpose while devices record their own installed key for it. */
  ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT: 'A whole-estate key would override the keys devices record as installed for this purpose',
  /** The device is in no portfolio of this organisation. */
  ERR_DEVICE_UNKNOWN: 'The device is in no portfolio of this organisation',
  /** The device already belongs to a portfolio of this organisation. */
  ERR_DEVICE_ALREADY_ASSIGNED: 'The device already belongs to a portfolio of this organisation',
  /** The store does not know which certificate this device trusts for this purpose. */
  ERR_DEVICE_NO_INSTALLED_CERTIFICATE: 'The store does not know which certificate this device trusts for this purpose',
  /** The certificate's public key is not the key's. */
  ERR_CERTIFICATE_KEY_MISMATCH: "The certificate's public key is not the key's",
  /** The certificate's entity id is not the organisation's. */
  ERR_CERTIFICATE_ENTITY_MISMATCH: "The certificate's entity id is not the organisation's",
  /** The certificate's role is not the organisation's. */
  ERR_CERTIFICATE_ROLE_MISMATCH: "The certificate's role is not the organisation's",
  /** The certificate's key usage does not match the key's purpose. */
  ERR_CERTIFICATE_PURPOSE_MISMATCH: "The certificate's key usage does not match the key's purpose",
  /** The audit log has an edited, inserted, deleted or reordered record. */
  ERR_AUDIT_TAMPERED: 'The audit log has an edited, inserted, deleted or reordered record',
  /** The audit log ends before the authenticated head says it does. */
  ERR_AUDIT_TRUNCATED: 'The audit log ends before the authenticated head says it does',
  /** Writing or syncing the audit log failed; it accepts no further records until reopened. */
  ERR_AUDIT_WRITE_FAILED: 'Writing or syncing the audit log failed; it accepts no further records until reopened',
  /** An audit checkpoint is malformed, names another store, or its signature does not verify under the audit public key. */
  ERR_AUDIT_CHECKPOINT_INVALID: 'An audit checkpoint is malformed, names another store, or its signature does not verify',
  /** The audit anchor (the second place checkpoints go) cannot be written or read. */
  ERR_AUDIT_ANCHOR_UNAVAILABLE: 'The audit anchor (the second place checkpoints go) cannot be written or read',
  // ---- operators and dual control (keystore)
  /** No operator with this id in the store. */
  ERR_OPERATOR_UNKNOWN: 'No operator with this id in the store',
  /** An operator with this id exists. */
  ERR_OPERATOR_EXISTS: 'An operator with this id exists',
  /** The store is under access control and the call carries no operator request. */
  ERR_OPERATOR_REQUIRED: 'The store is under access control and the call carries no signed operator request',
  /** An operator request is malformed or its signature does not verify under the operator's public key. */
  ERR_OPERATOR_SIGNATURE_INVALID: "An operator request is malformed or its signature does not verify under the operator's key",
  /** An operator request's counter is not above the last one the store accepted from that operator. */
  ERR_OPERATOR_REPLAYED: "An operator request's counter is not above the last one accepted from that operator",
  /** An operator request was issued outside the accepted time window. */
  ERR_OPERATOR_REQUEST_STALE: 'An operator request was issued outside the accepted time window',
  /** The operator's roles do not allow this operation on this organisation or portfolio. */
  ERR_OPERATOR_FORBIDDEN: "The operator's roles do not allow this operation on this organisation or portfolio",
  /** The access policy is malformed. */
  ERR_ACCESS_POLICY_INVALID: 'The access policy is malformed',
  /** The operation needs approvals under the dual-control policy: propose it. */
  ERR_APPROVAL_REQUIRED: 'The operation needs approvals under the dual-control policy: propose it',
  /** An approval is malformed, its signature does not verify, or its approver may not approve this operation. */
  ERR_APPROVAL_INVALID: 'An approval is malformed, its signature does not verify, or its approver may not approve this operation',
  /** An approval comes from the proposer, or from an operator who already approved. */
  ERR_APPROVAL_DUPLICATE: 'An approval comes from the proposer, or from an operator who already approved',
  /** No pending proposal with this id. */
  ERR_PROPOSAL_NOT_FOUND: 'No pending proposal with this id',
  /** The proposal (or an approval of it) has expired. */
  ERR_PROPOSAL_EXPIRED: 'The proposal or an approval of it has expired',
  /** The proposal has fewer valid approvals than the policy requires. */
  ERR_PROPOSAL_QUORUM_NOT_MET: 'The proposal has fewer valid approvals than the policy requires',
  /** The proposal was already executed or withdrawn: approvals are usable once. */
  ERR_PROPOSAL_CLOSED: 'The proposal was already executed or withdrawn: approvals are usable once',
  /** The operation presented is not the one proposed (its hash differs). */
  ERR_OPERATION_MISMATCH: 'The operation presented is not the one proposed (its hash differs)',
  /** The PKCS#11 module or token cannot be reached. */
  ERR_HSM_UNAVAILABLE: 'The PKCS#11 module or token cannot be reached',
  /** The PKCS#11 token refused or failed an operation. */
  ERR_HSM_OPERATION_FAILED: 'The PKCS#11 token refused or failed an operation',
  /** The PKCS#11 token refused the user PIN (wrong, locked or expired). */
  ERR_HSM_LOGIN_FAILED: 'The PKCS#11 token refused the user PIN (wrong, locked or expired)',
  /** The PKCS#11 token already holds a key object with this CKA_ID. */
  ERR_HSM_KEY_EXISTS: 'The PKCS#11 token already holds a key object with this CKA_ID',
  // ---- GBCS messages (gbcs)
  /** Bytes are not a well-formed GBCS general-signing APDU or general-ciphering frame. */
  ERR_GBCS_MALFORMED: 'Bytes are not a well-formed GBCS general-signing APDU or general-ciphering frame',
  /** A field given to a GBCS builder is out of range. */
  ERR_GBCS_INVALID_FIELD: 'A field given to a GBCS builder is out of range',
  /** The input is not an unsigned general-signing pre-command (DF, no signature). */
  ERR_GBCS_NOT_PRE_COMMAND: 'The input is not an unsigned general-signing pre-command (DF, no signature)',
  /** The pre-command already carries a signature. */
  ERR_GBCS_ALREADY_SIGNED: 'The pre-command already carries a signature',
  /** A MAC operation was given a message that is not a general-ciphering frame. */
  ERR_GBCS_NOT_CIPHERED: 'A MAC operation was given a message that is not a general-ciphering frame',
  /** A sensitive payload does not decrypt and authenticate under the derived key. */
  ERR_GBCS_DECRYPT_FAILED: 'A sensitive payload does not decrypt and authenticate under the derived key',
  /** A GBCS MAC (ACB or device) does not verify under the derived key. */
  ERR_GBCS_MAC_INVALID: 'A GBCS MAC (ACB or device) does not verify under the derived key',
  /** A CS02b replacement mode this toolkit does not build or accept (modes 0, 1 and 9: their layout is not public; anything outside 0–9). */
  ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED: 'A CS02b replacement mode this toolkit does not build or accept (0, 1, 9 or outside 0-9)',
  /** A CS02b payload's mode is not the one its message code says (code − 0x100). */
  ERR_GBCS_CREDENTIALS_MODE_MISMATCH: "A CS02b payload's mode is not the one its message code says (code - 0x100)",
  /** The party authorising a CS02b command (authorising cell, signer certificate, User signature) is not the one its mode requires. */
  ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH: 'The party authorising a CS02b command is not the one its mode requires',
  /** A CS02b authorising sequence number ([3]) is not the header's originator counter. */
  ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH: "A CS02b authorising sequence number is not the header's originator counter",
  /** A CS02b command targets a trust-anchor cell that does not exist or that its mode may not replace. */
  ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED: 'A CS02b command targets a trust-anchor cell that does not exist or that its mode may not replace',
  /** A CS02b replacement certificate's Remote Party Role is not its target cell's role. */
  ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE: "A CS02b replacement certificate's Remote Party Role is not its target cell's role",
  /** A CS02b replacement certificate's key usage is not its target cell's (digitalSignature or keyAgreement, exactly one). */
  ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE: "A CS02b replacement certificate's key usage is not its target cell's",
  /** A CS02d certificate is not a device certificate of the target device. */
  ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE: 'A CS02d certificate is not a device certificate of the target device',
  // ---- durable state (store)
  /** The state store cannot be reached, or failed a read or a commit; nothing was changed. */
  ERR_STORE_UNAVAILABLE: 'The state store cannot be reached, or failed a read or a commit; nothing was changed',
  /** The state store holds a value that is not valid (a damaged or edited database). */
  ERR_STORE_CORRUPT: 'The state store holds a value that is not valid (a damaged or edited database)',
  /** The state store was written by a schema version this release does not use. */
  ERR_STORE_SCHEMA: 'The state store was written by a schema version this release does not use',
  /** The state store has been closed. */
  ERR_STORE_CLOSED: 'The state store has been closed',
  /** A commit carried a decision log's head that is not the one the store holds for that log (another writer, or a lost commit): nothing was applied. */
  ERR_STORE_LOG_CONFLICT: "A commit carried a decision log's head that is not the one the store holds for that log; nothing was applied",
  /** A registry cell replacement named an old certificate the device's cell no longer holds (or a device the registry does not hold): nothing was changed. */
  ERR_STORE_CELL_CONFLICT: "A registry cell replacement named an old certificate the device's cell no longer holds, or an unknown device; nothing was changed",
  // ---- decisions (validator)
  /** A submitted command is larger than a GBCS message may be. */
  ERR_COMMAND_TOO_LARGE: 'A submitted command is larger than a GBCS message may be',
  /** The submitted message is not an unsent pre-command: a response, an alert or an already MAC'd frame. */
  ERR_COMMAND_NOT_A_COMMAND: "The submitted message is not an unsent pre-command: a response, an alert or an already MAC'd frame",
  /** The command's recipient is not a device in the registry. */
  ERR_COMMAND_UNKNOWN_DEVICE: "The command's recipient is not a device in the registry",
  /** The command's GBCS originator is not the sender authenticated on the transport. */
  ERR_COMMAND_SENDER_MISMATCH: "The command's GBCS originator is not the sender authenticated on the transport",
  /** The command's message code is not in the catalogue. */
  ERR_COMMAND_UNKNOWN_MESSAGE_CODE: "The command's message code is not in the catalogue",
  /** No organisation signing certificate of the originator, as supplier or network operator, is in the trust store. */
  ERR_COMMAND_ORIGINATOR_UNKNOWN: 'No organisation signing certificate of the originator, as supplier or network operator, is in the trust store',
  /** The originator's role may not send this message code to this device. */
  ERR_COMMAND_ROLE_NOT_ELIGIBLE: "The originator's role may not send this message code to this device",
  /** The originator is not the device's responsible supplier or network operator for the role it acts in. */
  ERR_COMMAND_NOT_RESPONSIBLE: "The originator is not the device's responsible supplier or network operator for the role it acts in",
  /** A critical command carries no User signature. */
  ERR_COMMAND_SIGNATURE_MISSING: 'A critical command carries no User signature',
  /** The device has no trust-anchor cell for the originator's role. */
  ERR_COMMAND_NO_TRUST_ANCHOR: "The device has no trust-anchor cell for the originator's role",
  /** The certificate the device's cell names is not in the trust store. */
  ERR_COMMAND_SIGNER_UNKNOWN: "The certificate the device's cell names is not in the trust store",
  /** The certificate the device's cell names is not the originator's signing certificate for its role. */
  ERR_COMMAND_SIGNER_WRONG_CERTIFICATE: "The certificate the device's cell names is not the originator's signing certificate for its role",
  /** The signer's certificate, or a CA above it, is revoked. */
  ERR_COMMAND_SIGNER_REVOKED: "The signer's certificate, or a CA above it, is revoked",
  /** The signer's certificate, or a CA above it, is outside its validity period. */
  ERR_COMMAND_SIGNER_EXPIRED: "The signer's certificate, or a CA above it, is outside its validity period",
  /** No current CRL or ARL covers the signer's path, so its revocation status is unknown. */
  ERR_COMMAND_REVOCATION_UNKNOWN: "No current CRL or ARL covers the signer's path, so its revocation status is unknown",
  /** The signer's certificate has no valid certification path. */
  ERR_COMMAND_SIGNER_PATH_INVALID: "The signer's certificate has no valid certification path",
  /** The User signature does not verify. */
  ERR_COMMAND_SIGNATURE_INVALID: 'The User signature does not verify',
  /** The command is signed with another of the originator's keys than the one this device trusts (key segregation). */
  ERR_COMMAND_PORTFOLIO_MISMATCH: "The command is signed with another of the originator's keys than the one this device trusts (key segregation)",
  /** The originator counter is not greater than the last one accepted for this originator and device. */
  ERR_COMMAND_REPLAYED: 'The originator counter is not greater than the last one accepted for this originator and device',
  /** The originator counter, milliseconds since the epoch, is further ahead of the clock than allowed. */
  ERR_COMMAND_COUNTER_AHEAD: 'The originator counter, milliseconds since the epoch, is further ahead of the clock than allowed',
  /** The payload's own counter disagrees with the originator counter in the header. */
  ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH: "The payload's own counter disagrees with the originator counter in the header",
  /** The command's payload does not decode as its message code requires. */
  ERR_COMMAND_PAYLOAD_MALFORMED: "The command's payload does not decode as its message code requires",
  /** The firmware image is not approved, or is revoked, for the device's model. */
  ERR_FIRMWARE_NOT_APPROVED: "The firmware image is not approved, or is revoked, for the device's model",
  /** The command would cross an anomaly detection threshold and is held in quarantine. */
  ERR_COMMAND_QUARANTINED: 'The command would cross an anomaly detection threshold and is held in quarantine',
  /** The device's key-agreement certificate is missing from the registry or is not usable. */
  ERR_COMMAND_DEVICE_KEY_UNUSABLE: "The device's key-agreement certificate is missing from the registry or is not usable",
  /** The Access Control Broker's key agreement failed, so no MAC was made. */
  ERR_COMMAND_COUNTER_SIGN_FAILED: "The Access Control Broker's key agreement failed, so no MAC was made",
  /** A CS02b command's originator does not act in its mode's authorising role (a supplier sending a mode 8 recovery command), or the mode is the ACB's own (mode 4), which no User sends. */
  ERR_COMMAND_CREDENTIALS_WRONG_ROLE: "A CS02b command's originator does not act in the role that authorises its mode, or the mode is the ACB's own",
  /** A CS02b command breaks a rule of its mode that has no code of its own (no replacement, a field out of range). */
  ERR_COMMAND_CREDENTIALS_INVALID: 'A CS02b command breaks a rule of its mode that has no code of its own',
  /** A CS02b replacement certificate has no valid certification path to the root, revocation checked (unknown CA, expired, no current CRL). */
  ERR_COMMAND_CREDENTIALS_CERTIFICATE_UNTRUSTED: 'A CS02b replacement certificate has no valid certification path to the root with revocation checked',
  /** A CS02b replacement certificate, or a CA above it, is revoked. */
  ERR_COMMAND_CREDENTIALS_CERTIFICATE_REVOKED: 'A CS02b replacement certificate, or a CA above it, is revoked',
  /** A CS02b replacement certificate does not parse, is not an organisation certificate, or (where a party replaces its own cells) is another entity's. */
  ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY: "A CS02b replacement certificate is not an organisation certificate of the party whose cells its mode replaces",
  /** A CS02b response or alert 0x00CB is not signed by the device's digital-signing key, or the registry holds no such certificate for the device. */
  ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID: "A CS02b response or alert is not signed by the device's digital-signing key held in the registry",
  /** A CS02b response or alert answers no CS02b command this validator accepted. */
  ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND: 'A CS02b response or alert answers no CS02b command this validator accepted',
  /** A CS02b response or alert does not match its command (device, message code, sequence number, mode, cells, new key ids). */
  ERR_CREDENTIALS_RESPONSE_MISMATCH: 'A CS02b response or alert does not match its command (device, code, sequence number, mode or cells)',
  /** The quarantine record is unknown, or was already released or discarded. */
  ERR_QUARANTINE_NOT_HELD: 'The quarantine record is unknown, or was already released or discarded',
  /** The state store is behind the decision log (restored from an older copy): the validator refuses to start. */
  ERR_VALIDATOR_STATE_BEHIND: 'The state store is behind the decision log (restored from an older copy): the validator refuses to start',
  /** The validator has been closed. */
  ERR_VALIDATOR_CLOSED: 'The validator has been closed',
  // ---- trust store
  /** A trust store file could not be read or parsed. */
  ERR_TRUST_STORE_LOAD: 'A trust store file could not be read or parsed',
  /** A different certificate with the same issuer and serial number is already in the trust store. */
  ERR_TRUST_STORE_SERIAL_CONFLICT: 'A different certificate with the same issuer and serial number is already in the trust store',
  // ---- SMETS1 DCO envelope (validator): CMS SignedData, RFC 5652
  /** Bytes are not a DER CMS SignedData DCO envelope: over the size bound, not DER, a CMS field outside the envelope's profile, or an eContent that is not a DcoCountersignedCommand. */
  ERR_DCO_MALFORMED: 'Bytes are not a DER CMS SignedData DCO envelope of the expected shape',
  /** The DCO envelope does not carry exactly one SignerInfo. */
  ERR_DCO_SIGNER_COUNT: 'The DCO envelope does not carry exactly one SignerInfo',
  /** The DCO envelope names a digest other than SHA-256 or a signature other than ecdsa-with-SHA256 (RFC 5753), or its RFC 6211 algorithm protection disagrees. */
  ERR_DCO_ALGORITHM_UNSUPPORTED: 'The DCO envelope uses a digest or signature algorithm other than SHA-256 / ecdsa-with-SHA256',
  /** A required signed attribute (content-type, message-digest, signing-time) is missing, repeated, multi-valued or badly encoded, or an attribute is not allowed. */
  ERR_DCO_SIGNED_ATTRIBUTES: 'A required signed attribute of the DCO envelope is missing, repeated or badly encoded, or one is not allowed',
  /** The eContentType is not the DCO content type, or the content-type attribute differs from it. */
  ERR_DCO_CONTENT_TYPE: 'The DCO envelope eContentType is not the DCO content type, or the content-type attribute differs from it',
  /** The message-digest attribute is not the SHA-256 of the eContent. */
  ERR_DCO_DIGEST_MISMATCH: 'The DCO envelope message-digest attribute is not the SHA-256 of its eContent',
  /** The DCO envelope signature does not verify under the DCO certificate's key. */
  ERR_DCO_SIGNATURE_INVALID: "The DCO envelope signature does not verify under the DCO certificate's key",
  /** The envelope's signer is not a DCO certificate the adapter trusts. */
  ERR_DCO_SIGNER_UNKNOWN: 'The DCO envelope signer is not a DCO certificate the adapter trusts',
  /** The DCO certificate cannot sign envelopes: no digitalSignature, no entity EUI-64, no P-256 key, or outside its validity. */
  ERR_DCO_SIGNER_UNUSABLE: 'The DCO certificate cannot sign envelopes (key usage, entity id, key or validity)',
  /** The DCO certificate's certification path does not validate. */
  ERR_DCO_SIGNER_PATH_INVALID: "The DCO certificate's certification path does not validate",
  /** The DCO envelope signing time is older than the allowed age or further in the future than the allowed skew. */
  ERR_DCO_STALE: 'The DCO envelope signing time is too old or too far in the future',
  /** The DCO envelope counter is not greater than the last one accepted for (DCO, device). */
  ERR_DCO_REPLAYED: 'The DCO envelope counter is not greater than the last one accepted for this DCO and device',
  // ---- command line (cli)
  /** The command line does not parse: an unknown command or option, a missing or malformed argument. */
  ERR_CLI_USAGE: 'The command line does not parse: an unknown command or option, a missing or malformed argument',
  /** A secret (passphrase, PIN) is not in its environment variable or file, or the file cannot be read. */
  ERR_CLI_SECRET_MISSING: 'A secret (passphrase, PIN) is not in its environment variable or file',
  /** The directory is not an initialised state directory, or its configuration is damaged. */
  ERR_CLI_STATE_INVALID: 'The directory is not an initialised state directory, or its configuration is damaged',
  /** `smki init` refuses a directory that is not empty. */
  ERR_CLI_STATE_EXISTS: 'The directory to initialise is not empty',
  /** An input file or line is not what the command reads (encoding, CSV column, size). */
  ERR_CLI_INPUT_INVALID: 'An input file or line is not what the command reads (encoding, CSV column, size)',
  /** The named certificate, key, portfolio or device is not in the state directory. */
  ERR_CLI_NOT_FOUND: 'The named certificate, key, portfolio or device is not in the state directory',
  /** A file could not be written (a directory in the way, a missing folder, no permission, a full disk); nothing was replaced. */
  ERR_CLI_WRITE_FAILED: 'A file could not be written (a directory in the way, a missing folder, no permission, a full disk); nothing was replaced',
  // ---- DUIS XML signatures (duis)
  /** A DUIS document is over the size bound. */
  ERR_DUIS_TOO_LARGE: 'A DUIS document is over the size bound',
  /** A DUIS document has a DOCTYPE or entity declaration (refused: external entities, entity expansion). */
  ERR_DUIS_DOCTYPE: 'A DUIS document has a DOCTYPE or entity declaration (refused: external entities, entity expansion)',
  /** A DUIS document is not well-formed UTF-8 XML, nests too deep, has a CDATA section or text beside child elements. */
  ERR_DUIS_MALFORMED: 'A DUIS document is not well-formed UTF-8 XML, nests too deep, has a CDATA section or text beside child elements',
  /** A DUIS document has a comment. */
  ERR_DUIS_COMMENT: 'A DUIS document has a comment',
  /** A DUIS document has a processing instruction (other than the XML declaration). */
  ERR_DUIS_PROCESSING_INSTRUCTION: 'A DUIS document has a processing instruction (other than the XML declaration)',
  /** The document is not a DUIS Request or Response, or not the kind expected. */
  ERR_DUIS_DOCUMENT_KIND: 'The document is not a DUIS Request or Response, or not the kind expected',
  /** The DUIS document's elements are not where the schema puts them (root, header, body, request id, payload). */
  ERR_DUIS_STRUCTURE: "The DUIS document's elements are not where the schema puts them (root, header, body, request id, payload)",
  /** A DUIS request id is not originator:target:counter (hyphenated EUI-64s, a decimal counter under 2^64). */
  ERR_DUIS_REQUEST_ID_INVALID: 'A DUIS request id is not originator:target:counter (hyphenated EUI-64s, a decimal counter under 2^64)',
  /** A DUIS document does not have exactly one ds:Signature. */
  ERR_DUIS_SIGNATURE_COUNT: 'A DUIS document does not have exactly one ds:Signature',
  /** The ds:Signature is not the last child of the root. */
  ERR_DUIS_SIGNATURE_PLACEMENT: 'The ds:Signature is not the last child of the root',
  /** The ds:Signature's elements, attributes or base64 values are not the profile's (e.g. a DER signature value). */
  ERR_DUIS_SIGNATURE_STRUCTURE: "The ds:Signature's elements, attributes or base64 values are not the profile's (e.g. a DER signature value)",
  /** The SignedInfo has more than one Reference. */
  ERR_DUIS_REFERENCE_COUNT: 'The SignedInfo has more than one Reference',
  /** The Reference URI is not "" (the whole document). */
  ERR_DUIS_REFERENCE_URI: 'The Reference URI is not "" (the whole document)',
  /** The Reference's transforms are not exactly the enveloped-signature transform. */
  ERR_DUIS_TRANSFORMS: "The Reference's transforms are not exactly the enveloped-signature transform",
  /** A canonicalization, signature or digest algorithm is not the profile's. */
  ERR_DUIS_ALGORITHM: "A canonicalization, signature or digest algorithm is not the profile's",
  /** KeyInfo is not exactly an X509IssuerSerial with an issuer name and a decimal serial. */
  ERR_DUIS_KEY_INFO: 'KeyInfo is not exactly an X509IssuerSerial with an issuer name and a decimal serial',
  /** No trusted certificate has the issuer and serial that KeyInfo names. */
  ERR_DUIS_CERTIFICATE_NOT_FOUND: 'No trusted certificate has the issuer and serial that KeyInfo names',
  /** The signer's certificate is not valid at the time. */
  ERR_DUIS_CERTIFICATE_EXPIRED: "The signer's certificate is not valid at the time",
  /** The signer's certificate (or a CA above it) is revoked. */
  ERR_DUIS_CERTIFICATE_REVOKED: "The signer's certificate (or a CA above it) is revoked",
  /** The signer's certificate has no valid path to a trusted root with revocation checked. */
  ERR_DUIS_CERTIFICATE_PATH_INVALID: "The signer's certificate has no valid path to a trusted root with revocation checked",
  /** The signer's certificate is not an XML-signing one for the direction (role 135 for a Request, 137 for a Response). */
  ERR_DUIS_SIGNER_ROLE: "The signer's certificate is not an XML-signing one for the direction (role 135 for a Request, 137 for a Response)",
  /** The signer's certificate is not the request id's originator (or, for a Response, not the DCC's). */
  ERR_DUIS_SIGNER_NOT_ORIGINATOR: "The signer's certificate is not the request id's originator (or, for a Response, not the DCC's)",
  /** The signer's public key is not the certificate's. */
  ERR_DUIS_SIGNER_KEY_MISMATCH: "The signer's public key is not the certificate's",
  /** The document is not what was signed: its digest differs from the Reference's. */
  ERR_DUIS_DIGEST_MISMATCH: "The document is not what was signed: its digest differs from the Reference's",
  /** The XML signature does not verify with the certificate's key. */
  ERR_DUIS_SIGNATURE_INVALID: "The XML signature does not verify with the certificate's key",
  /** A request id's counter is outside the freshness window (milliseconds since the epoch). */
  ERR_DUIS_STALE: "A request id's counter is outside the freshness window (milliseconds since the epoch)",
  /** A request id was accepted before, or is not newer than the last one accepted for its originator and target. */
  ERR_DUIS_REPLAYED: 'A request id was accepted before, or is not newer than the last one accepted for its originator and target',
  /** A signed pre-command does not answer the last service request accepted for its originator and target. */
  ERR_DUIS_PRECOMMAND_UNEXPECTED: 'A signed pre-command does not answer the last service request accepted for its originator and target',
  /** The GBCS command's originator or recipient is not the DUIS request id's. */
  ERR_DUIS_GBCS_MISMATCH: "The GBCS command's originator or recipient is not the DUIS request id's",
  // ---- credential recovery (recovery)
  /** No recovery plan has this id in the plan database. */
  ERR_RECOVERY_PLAN_NOT_FOUND: 'No recovery plan has this id in the plan database',
  /** The recovery plan is not in a state that allows this step (its new certificates not attached yet, already complete, a meter not failed). */
  ERR_RECOVERY_PLAN_STATE: 'The recovery plan is not in a state that allows this step (new certificates not attached yet, already complete, a meter not failed)',
  /** A counter source gave a counter its originator has already used, or one not above the last it used: nothing was built. */
  ERR_RECOVERY_COUNTER_REUSED: 'A counter source gave a counter its originator has already used, or one not above the last it used',
  /** A command the plan built is not one the plan allows (mode, originator, meter, a cell other than the named supplier's, a certificate of another entity): refused before anyone signs it. */
  ERR_RECOVERY_COMMAND_REFUSED: "A command the plan built is not one the plan allows (mode, originator, meter, a cell other than the named supplier's, a certificate of another entity)",
  /** A device's response does not verify with the device certificate given, or that certificate is not the responding device's: nothing changed. */
  ERR_RECOVERY_RESPONSE_SIGNATURE: "A device's response does not verify with the device certificate given, or the certificate is not the responding device's",
  /** A response answers no command of the plan that awaits an answer (device, counter, message code, recipient): nothing changed. */
  ERR_RECOVERY_RESPONSE_UNMATCHED: 'A response answers no command of the plan that awaits an answer (device, counter, message code, recipient)',
  /** A response's outcome does not fit its command (no outcome, another counter or mode, cells missing or extra, a success naming another new key): nothing changed. */
  ERR_RECOVERY_RESPONSE_OUTCOME: "A response's outcome does not fit its command (no outcome, another counter or mode, cells missing or extra, a success naming another new key)",
  /** The plan database's hash-chained history does not verify, or a row disagrees with it. */
  ERR_RECOVERY_HISTORY_BROKEN: "The plan database's hash-chained history does not verify, or a row disagrees with it",
} as const satisfies Record<string, string>;

/** A stable error or finding code. */
export type SmkiErrorCode = keyof typeof SMKI_ERROR_CODES;

/** Context carried by most codes: where in the input or the path the problem is. */
export interface LocationContext {
  /** Byte offset in the input where the problem was found. */
  readonly offset?: number;
  /** Index of the certificate in the path (0 = leaf) or in the input list. */
  readonly certificateIndex?: number;
  /** Extra detail, never secret material. */
  readonly detail?: string;
}

/** Codes whose context has a more specific shape than {@link LocationContext}. */
export interface SpecificErrorContexts {
  /** The rejected spelling. */
  ERR_EUI64_INVALID: {
    /** The rejected text (at most 64 characters), or its type. */
    readonly input: string;
  };
  /** The rejected role. */
  ERR_ROLE_UNKNOWN: {
    /** The rejected code or spelling. */
    readonly role: number | string;
  };
  /** Where a read ran out of input. */
  ERR_BYTES_TRUNCATED: {
    /** Offset at which the read started. */
    readonly offset: number;
    /** Bytes the read needed. */
    readonly needed: number;
    /** Bytes that were left. */
    readonly available: number;
  };
  /** Where the DER is wrong. */
  ERR_DER_INVALID: {
    /** Offset of the offending TLV. */
    readonly offset: number;
    /** What is wrong. */
    readonly detail?: string;
  };
  /** Where the DER nests too deep. */
  ERR_DER_DEPTH_EXCEEDED: {
    /** Offset of the TLV that went too deep. */
    readonly offset: number;
    /** The nesting limit. */
    readonly maxDepth: number;
  };
  /** Where trailing bytes start. */
  ERR_DER_TRAILING_DATA: {
    /** Offset of the first byte after the DER object. */
    readonly offset: number;
  };
  /** Which certificate is revoked, and the CRL entry. */
  ERR_REVOKED: {
    /** Index of the revoked certificate in the path (0 = leaf). */
    readonly certificateIndex: number;
    /** Its serial number (upper-case hex). */
    readonly serialNumber: string;
    /** The CRL entry's revocationDate. */
    readonly revocationDate: Date;
    /** The CRL entry's reasonCode, if any. */
    readonly reason?: string;
  };
  /** What is wrong with the DCO envelope, and where. */
  ERR_DCO_MALFORMED: {
    /** Byte offset in the envelope (or, for the eContent, in the eContent) where it was found, when known. */
    readonly offset?: number;
    /** What is wrong. */
    readonly detail: string;
  };
  /** How many SignerInfos the envelope carries. */
  ERR_DCO_SIGNER_COUNT: {
    /** The number of SignerInfos found. */
    readonly signerInfos: number;
  };
  /** Which algorithm field is refused. */
  ERR_DCO_ALGORITHM_UNSUPPORTED: {
    /** The field: SignedData digestAlgorithms, SignerInfo digestAlgorithm or signatureAlgorithm, or the RFC 6211 attribute. */
    readonly field: 'digestAlgorithms' | 'digestAlgorithm' | 'signatureAlgorithm' | 'cmsAlgorithmProtection';
    /** The algorithm OID found (empty when the field is empty or does not decode). */
    readonly oid: string;
    /** What is wrong beyond the OID (parameters, count), if anything. */
    readonly detail?: string;
  };
  /** Which signed attribute is wrong, and how. */
  ERR_DCO_SIGNED_ATTRIBUTES: {
    /** The attribute type OID (empty when the whole signedAttrs field is missing). */
    readonly attribute: string;
    /** What is wrong with it. */
    readonly problem: 'missing' | 'duplicate' | 'not-single-valued' | 'malformed' | 'not-allowed';
  };
  /** The content type found and the one expected. */
  ERR_DCO_CONTENT_TYPE: {
    /** Where the wrong OID is: the eContentType, or the content-type signed attribute. */
    readonly where: 'eContentType' | 'contentTypeAttribute';
    /** The OID found. */
    readonly found: string;
    /** The OID expected. */
    readonly expected: string;
  };
  /** The digest the envelope claims and the one computed. */
  ERR_DCO_DIGEST_MISMATCH: {
    /** The message-digest attribute, upper-case hex. */
    readonly claimed: string;
    /** SHA-256 of the eContent, upper-case hex. */
    readonly computed: string;
  };
  /** The certificate whose key did not verify the signature. */
  ERR_DCO_SIGNATURE_INVALID: {
    /** The DCO certificate's serial number (upper-case hex). */
    readonly serialNumber: string;
    /** Extra detail, e.g. that a signer returned a signature that does not verify. */
    readonly detail?: string;
  };
  /** The signer that is not trusted. */
  ERR_DCO_SIGNER_UNKNOWN: {
    /** The serial number the SignerInfo names, or the embedded certificate's (upper-case hex). */
    readonly serialNumber: string;
    /** Why it is not trusted. */
    readonly detail: string;
  };
  /** Why the DCO certificate cannot sign envelopes. */
  ERR_DCO_SIGNER_UNUSABLE: {
    /** The certificate's serial number (upper-case hex). */
    readonly serialNumber: string;
    /** Why. */
    readonly detail: string;
  };
  /** The path validation findings for the DCO certificate. */
  ERR_DCO_SIGNER_PATH_INVALID: {
    /** The certificate's serial number (upper-case hex). */
    readonly serialNumber: string;
    /** The codes of the error findings of path validation. */
    readonly findings: readonly SmkiErrorCode[];
  };
  /** The signing time, the clock, and the limit it broke. */
  ERR_DCO_STALE: {
    /** The envelope's signing-time attribute. */
    readonly signingTime: Date;
    /** The verifier's clock. */
    readonly now: Date;
    /** `past`: older than `limitMs`; `future`: ahead of the clock by more than `limitMs`. */
    readonly direction: 'past' | 'future';
    /** The limit broken, in milliseconds (maxAgeMs or maxSkewMs). */
    readonly limitMs: number;
  };
  /** The envelope counter and the last one accepted. */
  ERR_DCO_REPLAYED: {
    /** The DCO's entity EUI-64 (upper-case hex), the originator of the counter. */
    readonly dco: string;
    /** The device the command is for (upper-case hex). */
    readonly device: string;
    /** The envelope counter refused. */
    readonly counter: bigint;
    /** The last envelope counter accepted for (DCO, device). */
    readonly last: bigint;
  };
  /** The decision log whose head did not match. */
  ERR_STORE_LOG_CONFLICT: {
    /** The log's id. */
    readonly log: string;
  };
  /** The trust store file that failed. */
  ERR_TRUST_STORE_LOAD: {
    /** The file's path. */
    readonly path: string;
    /** Why it failed. */
    readonly detail?: string;
  };
}

/** The context type of a code. */
export type SmkiErrorContext<C extends SmkiErrorCode> = C extends keyof SpecificErrorContexts
  ? SpecificErrorContexts[C]
  : LocationContext;

/**
 * The toolkit's error. Every failure the toolkit reports is one of these, with a stable `code`.
 *
 * @example
 * ```ts
 * import { parseEui64, isSmkiError } from '@smki/core';
 * try {
 *   parseEui64('not an eui');
 * } catch (e) {
 *   if (isSmkiError(e, 'ERR_EUI64_INVALID')) console.log(e.context.input);
 * }
 * ```
 */
export class SmkiError<C extends SmkiErrorCode = SmkiErrorCode> extends Error {
  /** The stable code. */
  readonly code: C;
  /** Structured detail for this code; never holds key material. */
  readonly context: SmkiErrorContext<C>;

  /**
   * @param code - the stable code
   * @param message - a human-readable message (may change between releases)
   * @param context - structured detail (never key material)
   * @param options - `cause`, the underlying error where there is one
   */
  constructor(code: C, message: string, context: SmkiErrorContext<C>, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SmkiError';
    this.code = code;
    this.context = context;
  }
}

/**
 * Whether `e` is a {@link SmkiError}, optionally with a given code. Narrows the type.
 */
export function isSmkiError<C extends SmkiErrorCode>(e: unknown, code?: C): e is SmkiError<C> {
  return e instanceof SmkiError && (code === undefined || e.code === code);
}

/** A problem found by a linter or validator; the caller decides at the boundary. */
export interface Finding {
  /** The stable code. */
  readonly code: SmkiErrorCode;
  /** A human-readable explanation. */
  readonly message: string;
  /** `error` breaks the profile; `warning` is a tolerated quirk of real certificates. */
  readonly severity: 'error' | 'warning';
  /** Index of the certificate in the path (0 = leaf), where that applies. */
  readonly certificateIndex?: number;
  /** Byte offset in the input, where that applies. */
  readonly offset?: number;
}

/**
 * The fixed message for a code. Only the toolkit's own codes have one: a string that is not a
 * code (`'toString'`, `'__proto__'`, anything from outside) never finds an inherited property.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for a string that is not a code
 */
export function describeCode(code: SmkiErrorCode): string {
  if (typeof code !== 'string' || !Object.hasOwn(SMKI_ERROR_CODES, code)) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'not a toolkit error code', { detail: typeof code === 'string' ? code.slice(0, 64) : typeof code });
  }
  return SMKI_ERROR_CODES[code];
}
