/**
 * Per-environment configuration: the policy OIDs, names and limits that differ between the DCC's
 * test PKI and production. Production values are not public (docs/domain.md §2), so nothing here is
 * hard-coded into the rules: every rule reads its environment.
 * @module
 */
import { SmkiError } from '@smki/core';

/** Object identifiers used by the SMKI profiles. */
export const OID = {
  /** id-ecPublicKey (RFC 5480). */
  ecPublicKey: '1.2.840.10045.2.1',
  /** prime256v1 / secp256r1 / NIST P-256 (RFC 5480). */
  p256: '1.2.840.10045.3.1.7',
  /** ecdsa-with-SHA256 (RFC 5758). */
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  /** id-on-hardwareModuleName (RFC 4108). */
  hardwareModuleName: '1.3.6.1.5.5.7.8.4',
  /** x500UniqueIdentifier attribute (X.520). */
  x500UniqueIdentifier: '2.5.4.45',
  /** commonName attribute. */
  commonName: '2.5.4.3',
  /** organizationalUnitName attribute. */
  organizationalUnitName: '2.5.4.11',
  /** subjectKeyIdentifier extension. */
  subjectKeyIdentifier: '2.5.29.14',
  /** keyUsage extension. */
  keyUsage: '2.5.29.15',
  /** subjectAltName extension. */
  subjectAltName: '2.5.29.17',
  /** basicConstraints extension. */
  basicConstraints: '2.5.29.19',
  /** cRLNumber CRL extension. */
  cRLNumber: '2.5.29.20',
  /** reasonCode CRL entry extension. */
  reasonCode: '2.5.29.21',
  /** issuingDistributionPoint CRL extension. */
  issuingDistributionPoint: '2.5.29.28',
  /** cRLDistributionPoints extension. */
  cRLDistributionPoints: '2.5.29.31',
  /** certificatePolicies extension. */
  certificatePolicies: '2.5.29.32',
  /** authorityKeyIdentifier extension. */
  authorityKeyIdentifier: '2.5.29.35',
  /** extKeyUsage extension. */
  extKeyUsage: '2.5.29.37',
  /** authorityInfoAccess extension. */
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

/** One attribute of a CA's subject name. */
export interface CaNameAttribute {
  /** `OU` (organizationalUnitName) or `CN` (commonName). */
  readonly type: 'OU' | 'CN';
  /** The value. */
  readonly value: string;
}

/** The naming and lifetime of one CA level (root, organisation CA or device CA). */
export interface CaProfile {
  /** Subject attributes in order, e.g. `[{ type: 'OU', value: '00' }, { type: 'CN', value: 'ZA' }]`. */
  readonly subject: readonly CaNameAttribute[];
  /** How the subject strings are encoded (the test PKI uses PrintableString). */
  readonly stringEncoding: 'printable' | 'utf8';
  /** Validity in whole years from `notBefore`. */
  readonly validityYears: number;
}

/**
 * Everything that differs between SMKI environments. Build one with {@link defineEnvironment};
 * {@link TEST_ENVIRONMENT} carries the test PKI's values from docs/domain.md §2.
 */
export interface SmkiEnvironment {
  /** A name shown in findings and logs, e.g. `'test'`. */
  readonly name: string;
  /** Policy OIDs allowed on organisation certificates and organisation CAs. */
  readonly organisationPolicies: readonly string[];
  /** Policy OIDs allowed on device certificates and device CAs. */
  readonly devicePolicies: readonly string[];
  /** Policy OIDs allowed on the root (empty: any of the above). */
  readonly rootPolicies: readonly string[];
  /** hwType OIDs allowed in device certificates (empty: any OID). */
  readonly deviceHwTypes: readonly string[];
  /** The default hwType for issued device certificates. */
  readonly defaultHwType: string;
  /** Root CA profile. */
  readonly root: CaProfile;
  /** Organisation CA profile. */
  readonly organisationCa: CaProfile;
  /** Device CA profile. */
  readonly deviceCa: CaProfile;
  /** Validity of organisation certificates in whole years. */
  readonly organisationValidityYears: number;
  /** How long after nextUpdate a CRL is still accepted, in seconds (0: none). */
  readonly crlGraceSeconds: number;
}

/** The DCC test PKI values (docs/domain.md §2). */
export const TEST_ENVIRONMENT: SmkiEnvironment = Object.freeze({
  name: 'test',
  organisationPolicies: Object.freeze(['1.2.826.0.1.8641679.1.2.1.4']),
  devicePolicies: Object.freeze(['1.2.826.0.1.1800000.1.2.1.4']),
  rootPolicies: Object.freeze([]),
  deviceHwTypes: Object.freeze(['1.2.826.0.1.8641679.1.2.2.1']),
  defaultHwType: '1.2.826.0.1.8641679.1.2.2.1',
  root: Object.freeze({ subject: Object.freeze([{ type: 'OU', value: '00' }, { type: 'CN', value: 'ZA' }] as const), stringEncoding: 'printable', validityYears: 30 }),
  organisationCa: Object.freeze({ subject: Object.freeze([{ type: 'OU', value: '07' }, { type: 'CN', value: 'Z1' }] as const), stringEncoding: 'printable', validityYears: 20 }),
  deviceCa: Object.freeze({ subject: Object.freeze([{ type: 'CN', value: 'E357' }] as const), stringEncoding: 'printable', validityYears: 20 }),
  organisationValidityYears: 10,
  crlGraceSeconds: 0,
}) as SmkiEnvironment;

/** The settings of an {@link SmkiEnvironment}, the only keys {@link defineEnvironment} accepts. */
const ENVIRONMENT_KEYS: readonly (keyof SmkiEnvironment)[] = [
  'name',
  'organisationPolicies',
  'devicePolicies',
  'rootPolicies',
  'deviceHwTypes',
  'defaultHwType',
  'root',
  'organisationCa',
  'deviceCa',
  'organisationValidityYears',
  'crlGraceSeconds',
];

/**
 * An environment from the test defaults and the given overrides (e.g. production policy OIDs).
 *
 * Only the overrides' own properties are read (nothing inherited), and a key that is not an
 * {@link SmkiEnvironment} setting is refused: a misspelt setting in a configuration file (or a
 * `__proto__` key from `JSON.parse`) would otherwise leave a test default in force silently.
 * An override of `undefined` keeps the default. Lists are copied and frozen.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (not an object, no string `name`, an unknown key)
 * @example
 * ```ts
 * import { defineEnvironment } from '@smki/pki';
 * const prod = defineEnvironment({ name: 'production', organisationPolicies: ['1.2.3.4'], devicePolicies: ['1.2.3.5'] });
 * ```
 */
export function defineEnvironment(overrides: Partial<SmkiEnvironment> & { readonly name: string }): SmkiEnvironment {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'environment overrides must be an object', { detail: typeof overrides });
  }
  for (const key of Object.keys(overrides)) {
    if (!(ENVIRONMENT_KEYS as readonly string[]).includes(key)) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', 'not an SmkiEnvironment setting', { detail: key.slice(0, 40) });
    }
  }
  if (typeof overrides.name !== 'string') throw new SmkiError('ERR_INVALID_ARGUMENT', 'an environment needs a name', { detail: typeof overrides.name });
  const out: Record<string, unknown> = {};
  for (const key of ENVIRONMENT_KEYS) {
    const given: unknown = Object.hasOwn(overrides, key) ? overrides[key] : undefined;
    const value: unknown = given === undefined ? TEST_ENVIRONMENT[key] : given;
    out[key] = Array.isArray(value) ? Object.freeze([...(value as unknown[])]) : value;
  }
  return Object.freeze(out) as unknown as SmkiEnvironment;
}
