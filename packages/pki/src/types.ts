import type { KeyObject } from 'node:crypto';
import type { Eui64, KeyUsageName, RemotePartyRoleCode } from '@smki/core';

/** What an SMKI certificate is, read from its content (docs/domain.md §2). */
export type CertificateKind = 'root' | 'issuingCa' | 'organisation' | 'device' | 'unknown';

/** One attribute of a distinguished name, in order. */
export interface NameAttribute {
  /** Attribute type OID. */
  readonly oid: string;
  /** Short name where known (`CN`, `OU`, `x500UniqueIdentifier`, …), else the OID. */
  readonly type: string;
  /** The value as text (strings), or upper-case hex (BIT STRING and other binary values). */
  readonly value: string;
  /** The ASN.1 universal tag of the value (12 UTF8String, 19 PrintableString, 3 BIT STRING, …). */
  readonly tag: number;
  /** For a BIT STRING value: its length in bits. */
  readonly bitLength?: number;
}

/** A distinguished name: its attributes in order, an RFC 4514-like text form and its DER. */
export interface DistinguishedName {
  /** Attributes in encoding order (one per RDN in SMKI names). */
  readonly attributes: readonly NameAttribute[];
  /** A readable rendering, e.g. `OU=07, CN=Z1`. For display only: compare by `der`. */
  readonly text: string;
  /** The name's DER exactly as in the certificate (compare names with this, RFC 5280 §7.1). */
  readonly der: Uint8Array;
}

/** One extension as found in the certificate. */
export interface RawExtension {
  /** Extension OID. */
  readonly oid: string;
  /** The critical flag. */
  readonly critical: boolean;
  /** The extnValue octets (the DER of the extension's value). */
  readonly value: Uint8Array;
}

/** basicConstraints as read. */
export interface BasicConstraints {
  /** cA flag. */
  readonly ca: boolean;
  /** pathLenConstraint, if present. */
  readonly pathLength?: number;
}

/** A device's hardwareModuleName (RFC 4108) from its subjectAltName. */
export interface HardwareModuleName {
  /** hwType OID. */
  readonly hwType: string;
  /** hwSerialNum as upper-case hex (an EUI-64 when it is 8 octets). */
  readonly hwSerialNum: string;
}

/**
 * A certificate parsed once, with its public key ready for verification. Every toolkit function
 * that takes a certificate accepts one of these and never parses it again. Immutable.
 */
export interface SmkiCertificate {
  /** The kind, from the content (CA flag, key usage, subject). */
  readonly kind: CertificateKind;
  /** Remote Party Role from the subject OU (roots: 0, organisation CAs: 7), where there is one. */
  readonly role?: RemotePartyRoleCode;
  /** The entity's EUI-64: x500UniqueIdentifier (organisation) or hwSerialNum (device). */
  readonly entityId?: Eui64;
  /** Key usage bits set, as RFC 5280 names in bit order. */
  readonly keyUsage: readonly KeyUsageName[];
  /** Serial number as upper-case hex of its DER content octets (so `00` prefixes are kept). */
  readonly serialNumber: string;
  /** subjectKeyIdentifier as upper-case hex. */
  readonly subjectKeyId?: string;
  /** authorityKeyIdentifier keyIdentifier as upper-case hex. */
  readonly authorityKeyId?: string;
  /** Start of validity. */
  readonly notBefore: Date;
  /** End of validity. */
  readonly notAfter: Date;
  /** certificatePolicies OIDs, in order. */
  readonly policies: readonly string[];
  /** Issuer name. */
  readonly issuer: DistinguishedName;
  /** Subject name. */
  readonly subject: DistinguishedName;
  /** Common name, if the subject has one. */
  readonly commonName?: string;
  /** basicConstraints, if present. */
  readonly basicConstraints?: BasicConstraints;
  /** hardwareModuleName from subjectAltName (device certificates). */
  readonly hardwareModuleName?: HardwareModuleName;
  /** Raw subject public key: the BIT STRING content (65 bytes `04 ‖ X ‖ Y` for SMKI keys). */
  readonly publicKeyBytes: Uint8Array;
  /** The public key as a `KeyObject`, or undefined if it is not a usable P-256 key. */
  readonly publicKey: KeyObject | undefined;
  /** All extensions, in order. */
  readonly extensions: readonly RawExtension[];
  /** The whole certificate DER. */
  readonly der: Uint8Array;
  /** The tbsCertificate DER exactly as signed. */
  readonly tbsDer: Uint8Array;
  /** signatureAlgorithm OID (outer). */
  readonly signatureAlgorithm: string;
  /** The raw signature BIT STRING content (a DER ECDSA-Sig-Value for SMKI). */
  readonly signature: Uint8Array;
  /** Upper-case hex SHA-256 of `der`: a stable identity for caches and logs. */
  readonly fingerprint: string;
  /** Details lint needs and the typed view does not show. */
  readonly details: CertificateDetails;
}

/** Lower-level facts read from the DER that lint and path validation check. */
export interface CertificateDetails {
  /** X.509 version number as encoded (2 = v3). */
  readonly version: number;
  /** tbsCertificate.signature algorithm OID. */
  readonly tbsSignatureAlgorithm: string;
  /** Whether the outer signatureAlgorithm carried parameters, and whether they were an explicit NULL. */
  readonly signatureAlgorithmParams: 'absent' | 'null' | 'other';
  /** Whether the tbs signature algorithm parameters equal the outer ones byte for byte. */
  readonly signatureAlgorithmsMatch: boolean;
  /** subjectPublicKeyInfo algorithm OID. */
  readonly publicKeyAlgorithm: string;
  /** Named curve OID from the SPKI parameters, if any. */
  readonly publicKeyCurve?: string;
  /** The SPKI DER. */
  readonly spkiDer: Uint8Array;
  /** The serial number DER content octets. */
  readonly serialBytes: Uint8Array;
  /** ASN.1 time tag of notBefore and notAfter (23 UTCTime, 24 GeneralizedTime). */
  readonly notBeforeTag: number;
  /** ASN.1 time tag of notAfter. */
  readonly notAfterTag: number;
  /** notAfter exactly as encoded (e.g. `99991231235959Z`). */
  readonly notAfterText: string;
  /** Which authorityKeyIdentifier fields are present. */
  readonly authorityKeyIdFields?: AuthorityKeyIdFields;
  /** How many general names subjectAltName holds, and how many are hardwareModuleNames. */
  readonly subjectAltName?: SubjectAltNameSummary;
  /** Whether the subject OU used a non-canonical spelling of the role (e.g. decimal). */
  readonly roleSpelling?: 'canonical' | 'lenient' | 'invalid';
  /** The raw OU string, if present. */
  readonly ou?: string;
  /** Errors met while decoding individual extensions (the certificate still parses). */
  readonly extensionErrors: readonly ExtensionError[];
}

/** Which fields an authorityKeyIdentifier carries (SMKI: keyIdentifier only). */
export interface AuthorityKeyIdFields {
  /** `[0] keyIdentifier` is present. */
  readonly keyIdentifier: boolean;
  /** `[1] authorityCertIssuer` is present. */
  readonly issuer: boolean;
  /** `[2] authorityCertSerialNumber` is present. */
  readonly serial: boolean;
}

/** A summary of a subjectAltName. */
export interface SubjectAltNameSummary {
  /** Number of general names. */
  readonly names: number;
  /** Number of otherName id-on-hardwareModuleName entries. */
  readonly hardwareModuleNames: number;
}

/** An extension that could not be decoded, or appeared twice. */
export interface ExtensionError {
  /** The extension's OID. */
  readonly oid: string;
  /** What went wrong (`duplicate extension`, or the decoder's message). */
  readonly detail: string;
}

/** A certificate as accepted by toolkit functions: PEM text, DER bytes, or already parsed. */
export type CertificateInput = string | Uint8Array | SmkiCertificate;
