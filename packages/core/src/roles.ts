import { SmkiError } from './errors.js';

/**
 * Remote Party Role codes, as carried in the OU of organisation certificates (two upper-case hex
 * digits) and in GBCS.
 * @see docs/domain.md §2 (Remote Party Role codes)
 */
export const RemotePartyRole = {
  /** 0: the SMKI root. */
  Root: 0,
  /** 1: recovery. */
  Recovery: 1,
  /** 2: supplier (import or gas supplier). */
  Supplier: 2,
  /** 3: network operator (electricity distributor or gas transporter). */
  NetworkOperator: 3,
  /** 4: the Access Control Broker (the DCC). */
  AccessControlBroker: 4,
  /** 5: transitional change of supplier. */
  TransitionalChangeOfSupplier: 5,
  /** 6: WAN provider. */
  WanProvider: 6,
  /** 7: issuing authority (the organisation CA). */
  IssuingAuthority: 7,
  /** 8: load controller. */
  LoadController: 8,
  /** 127: other. */
  Other: 127,
  /** 135: DUIS XML signing. */
  XmlSigning135: 135,
  /** 137: DUIS XML signing. */
  XmlSigning137: 137,
} as const;

/** A Remote Party Role code. */
export type RemotePartyRoleCode = (typeof RemotePartyRole)[keyof typeof RemotePartyRole];

const NAMES: Readonly<Record<number, string>> = {
  0: 'root',
  1: 'recovery',
  2: 'supplier',
  3: 'networkOperator',
  4: 'accessControlBroker',
  5: 'transitionalChangeOfSupplier',
  6: 'wanProvider',
  7: 'issuingAuthority',
  8: 'loadController',
  127: 'other',
  135: 'xmlSigning135',
  137: 'xmlSigning137',
};

/** Whether `code` is a known Remote Party Role. */
export function isRemotePartyRole(code: unknown): code is RemotePartyRoleCode {
  return typeof code === 'number' && Object.hasOwn(NAMES, code);
}

/**
 * The name of a Remote Party Role code (`2` → `'supplier'`).
 * @throws SmkiError `ERR_ROLE_UNKNOWN`
 */
export function roleName(code: number): string {
  if (!isRemotePartyRole(code)) throw new SmkiError('ERR_ROLE_UNKNOWN', `unknown Remote Party Role ${code}`, { role: code });
  return NAMES[code] as string;
}

/**
 * The OU spelling of a role: exactly two upper-case hex digits (`2` → `'02'`, `127` → `'7F'`).
 * @throws SmkiError `ERR_ROLE_UNKNOWN`
 */
export function roleToOu(code: number): string {
  roleName(code);
  return code.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * Parse a role from its OU spelling: exactly two upper-case hex digits. Use
 * {@link parseRoleLenient} for the decimal spellings found on some real certificates.
 * @throws SmkiError `ERR_ROLE_UNKNOWN`
 */
export function roleFromOu(ou: string): RemotePartyRoleCode {
  if (!/^[0-9A-F]{2}$/.test(ou)) throw new SmkiError('ERR_ROLE_UNKNOWN', `role OU must be two upper-case hex digits`, { role: ou });
  const code = parseInt(ou, 16);
  if (!isRemotePartyRole(code)) throw new SmkiError('ERR_ROLE_UNKNOWN', `unknown Remote Party Role ${ou}`, { role: ou });
  return code;
}

/** A role read by {@link parseRoleLenient}. */
export interface LenientRole {
  /** The role code. */
  readonly role: RemotePartyRoleCode;
  /** Whether the OU used the profile's spelling (two upper-case hex digits). */
  readonly canonical: boolean;
}

/**
 * Read a role from an OU as real certificates write it: the profile's two hex digits, or a
 * decimal number of one to three digits (a quirk seen in the wild). Returns `undefined` when
 * neither reading gives a known role. Lint reports which spelling was used.
 */
export function parseRoleLenient(ou: string): LenientRole | undefined {
  if (/^[0-9A-F]{2}$/.test(ou)) {
    const code = parseInt(ou, 16);
    if (isRemotePartyRole(code)) return { role: code, canonical: true };
  }
  if (/^[0-9A-Fa-f]{2}$/.test(ou)) {
    const code = parseInt(ou, 16);
    if (isRemotePartyRole(code)) return { role: code, canonical: false };
  }
  if (/^[0-9]{1,3}$/.test(ou)) {
    const code = parseInt(ou, 10);
    if (isRemotePartyRole(code)) return { role: code, canonical: false };
  }
  return undefined;
}

/**
 * RFC 5280 §4.2.1.3 key usage names, in bit order (bit 0 first).
 */
export const KEY_USAGE_NAMES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;

/** An RFC 5280 key usage name. */
export type KeyUsageName = (typeof KEY_USAGE_NAMES)[number];

/** The two key usages an SMKI end-entity (organisation or device) certificate may have. */
export type EndEntityKeyUsage = 'digitalSignature' | 'keyAgreement';
