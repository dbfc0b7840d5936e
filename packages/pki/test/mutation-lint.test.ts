// lintCertificate and certificateProfile: the cases mutation testing (StrykerJS, `pnpm run mutation
// pki/lint`) found untested. RFC 5280 §4.1 (fields), §4.2 (each extension at most once; critical
// extensions), §4.2.1.1–§4.2.1.9; RFC 4108 §5; the SMKI certificate profile as docs/domain.md §2
// describes it. Each case breaks one rule (or makes one rule fail unexpectedly) and expects its code.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeySigner, eui64ToBytes, isSmkiError, parseEui64, publicKeyToRaw, type Finding, type KeyUsageName, type Signer, type SmkiError } from '@smki/core';
import { defineEnvironment, OID, TEST_ENVIRONMENT, type SmkiEnvironment } from '../src/environment.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  ECDSA_WITH_SHA256,
  extension,
  hardwareModuleNameSanValue,
  keyUsageValue,
  subjectKeyIdentifierValue,
  type CertificateTemplate,
  type ExtensionTemplate,
  type NameAttributeTemplate,
} from '../src/internal/build.js';
import { keyIdMethod2 } from '../src/internal/keyid.js';
import { commonNameAttribute, encodeName, entityIdAttribute, organizationalUnitAttribute } from '../src/internal/name.js';
import { certificateProfile, lintCertificate } from '../src/lint.js';
import { parseCertificate } from '../src/parse.js';
import type { SmkiCertificate } from '../src/types.js';

const ORG_POLICY = TEST_ENVIRONMENT.organisationPolicies[0] as string;
const DEVICE_POLICY = TEST_ENVIRONMENT.devicePolicies[0] as string;
const HW_TYPE = TEST_ENVIRONMENT.defaultHwType;

interface KeyPair {
  readonly point: Uint8Array;
  readonly signer: Signer;
}
function p256(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { point: publicKeyToRaw(publicKey), signer: createKeySigner(privateKey) };
}
const keys = { root: p256(), ca: p256(), ee: p256(), other: p256() };

const ROOT_NAME = { attributes: [organizationalUnitAttribute('00'), commonNameAttribute('ZA', 'printable')] };
const OCA_NAME = { attributes: [organizationalUnitAttribute('07'), commonNameAttribute('Z1', 'printable')] };
const ORG_EUI = parseEui64('90B3D51F30010000');
const DEVICE_EUI = parseEui64('00DB1234567890A0');
const orgSubject = (): NameAttributeTemplate[] => [commonNameAttribute('Supplier A'), organizationalUnitAttribute('02'), entityIdAttribute(ORG_EUI)];

const utc = (iso: string) => ({ date: new Date(iso), encoding: 'utc' }) as const;
const gen = (iso: string) => ({ date: new Date(iso), encoding: 'generalized' }) as const;
const SERIAL = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x11 : (i * 37) & 0xff));

const ku = (names: readonly KeyUsageName[], critical = true) => extension(OID.keyUsage, critical, keyUsageValue(names));
const bc = (ca: boolean, pathLength?: number, critical = true) => extension(OID.basicConstraints, critical, basicConstraintsValue(ca, pathLength));
const cp = (oids: readonly string[], critical = true) => extension(OID.certificatePolicies, critical, certificatePoliciesValue(oids));
const ski = (point: Uint8Array, critical = false) => extension(OID.subjectKeyIdentifier, critical, subjectKeyIdentifierValue(keyIdMethod2(point)));
const aki = (point: Uint8Array, critical = false) => extension(OID.authorityKeyIdentifier, critical, authorityKeyIdentifierValue(keyIdMethod2(point)));
const san = (hwType = HW_TYPE, critical = true) => extension(OID.subjectAltName, critical, hardwareModuleNameSanValue(hwType, eui64ToBytes(DEVICE_EUI)));

type Kind = 'root' | 'oca' | 'dca' | 'org' | 'device';

/** A conformant certificate of each kind, as the profile describes it. */
function template(kind: Kind): { t: CertificateTemplate; signer: Signer } {
  const common = { serialNumber: SERIAL, tbsSignatureAlgorithm: ECDSA_WITH_SHA256, signatureAlgorithm: ECDSA_WITH_SHA256, notBefore: utc('2024-01-01T00:00:00Z') };
  switch (kind) {
    case 'root':
      return {
        signer: keys.root.signer,
        t: { ...common, issuer: ROOT_NAME, subject: ROOT_NAME, notAfter: gen('2054-01-01T00:00:00Z'), subjectPublicKey: { point: keys.root.point }, extensions: [ku(['keyCertSign', 'cRLSign']), bc(true), cp([ORG_POLICY]), ski(keys.root.point)] },
      };
    case 'oca':
    case 'dca':
      return {
        signer: keys.root.signer,
        t: {
          ...common,
          issuer: { der: encodeName(ROOT_NAME) },
          subject: kind === 'oca' ? OCA_NAME : { attributes: [commonNameAttribute('E357', 'printable')] },
          notAfter: utc('2044-01-01T00:00:00Z'),
          subjectPublicKey: { point: keys.ca.point },
          extensions: [ku(['keyCertSign', 'cRLSign']), bc(true, 0), cp([kind === 'oca' ? ORG_POLICY : DEVICE_POLICY]), ski(keys.ca.point), aki(keys.root.point)],
        },
      };
    case 'org':
      return {
        signer: keys.ca.signer,
        t: {
          ...common,
          issuer: { der: encodeName(OCA_NAME) },
          subject: { attributes: orgSubject() },
          notAfter: utc('2034-01-01T00:00:00Z'),
          subjectPublicKey: { point: keys.ee.point },
          extensions: [ku(['digitalSignature']), cp([ORG_POLICY]), ski(keys.ee.point), aki(keys.ca.point)],
        },
      };
    case 'device':
      return {
        signer: keys.ca.signer,
        t: {
          ...common,
          issuer: { der: encodeName({ attributes: [commonNameAttribute('E357', 'printable')] }) },
          subject: { attributes: [] },
          notAfter: gen('9999-12-31T23:59:59Z'),
          subjectPublicKey: { point: keys.ee.point },
          extensions: [ku(['keyAgreement']), cp([DEVICE_POLICY]), san(), ski(keys.ee.point), aki(keys.ca.point)],
        },
      };
  }
}

type Edit = (t: CertificateTemplate) => CertificateTemplate;
const setExt = (oid: string, ext?: ExtensionTemplate): Edit => (t) => ({
  ...t,
  extensions: ext ? t.extensions.map((x) => (x.oid === oid ? ext : x)) : t.extensions.filter((x) => x.oid !== oid),
});
const addExt = (...ext: ExtensionTemplate[]): Edit => (t) => ({ ...t, extensions: [...t.extensions, ...ext] });
const withSubject = (attributes: readonly NameAttributeTemplate[]): Edit => (t) => ({ ...t, subject: { attributes } });

async function make(kind: Kind, ...edits: Edit[]): Promise<SmkiCertificate> {
  const { t, signer } = template(kind);
  return parseCertificate(await buildCertificate(edits.reduce((acc, e) => e(acc), t), signer));
}

const codes = (fs: readonly Finding[]): string[] => fs.map((f) => f.code);

/** An environment (as lint reads it) whose `key` getter throws: a rule that reads it must fail closed. */
function throwingEnvironment(key: keyof SmkiEnvironment): SmkiEnvironment {
  const env = { ...TEST_ENVIRONMENT };
  Object.defineProperty(env, key, {
    get() {
      throw new Error(`${key} unavailable`);
    },
  });
  return env;
}

describe('the first occurrence of an extension is the one judged (RFC 5280 §4.2: at most once)', () => {
  it('keyUsage twice, critical then not: only the duplicate is reported', async () => {
    const cert = await make('org', addExt(ku(['digitalSignature'], false)));
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_EXTENSION_DUPLICATE']);
  });

  it('keyUsage twice, not critical then critical: the first one is not critical', async () => {
    const cert = await make('org', setExt(OID.keyUsage, ku(['digitalSignature'], false)), addExt(ku(['digitalSignature'])));
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_EXTENSION_DUPLICATE', 'ERR_PROFILE_KEY_USAGE_NOT_CRITICAL']);
  });

  it('a duplicated extension is still judged by its content (a duplicate is not an undecodable value)', async () => {
    const cert = await make('org', setExt(OID.subjectKeyIdentifier, ski(keys.other.point)), addExt(ski(keys.other.point)));
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_EXTENSION_DUPLICATE', 'ERR_PROFILE_SKI_METHOD']);
  });
});

describe('a rule that fails unexpectedly is an error finding of its code (fail closed)', () => {
  it('certificatePolicies: an environment whose organisation policies cannot be read', async () => {
    const cert = await make('org');
    const findings = lintCertificate(cert, { environment: throwingEnvironment('organisationPolicies') });
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ code: 'ERR_PROFILE_POLICY_NOT_ALLOWED', severity: 'error' });
    expect(findings[0]?.message).toBe('certificatePolicies: could not be checked (organisationPolicies unavailable)');
  });

  it('subjectAltName: an environment whose hwTypes cannot be read', async () => {
    const cert = await make('device');
    const findings = lintCertificate(cert, { environment: throwingEnvironment('deviceHwTypes') });
    expect(findings.map((f) => [f.code, f.severity])).toEqual([['ERR_PROFILE_DEVICE_SAN_FORM', 'error']]);
    expect(findings[0]?.message).toBe('subjectAltName: could not be checked (deviceHwTypes unavailable)');
  });

  it('a thrown value that is not an Error, and a long message cut to 120 characters', async () => {
    const env = { ...TEST_ENVIRONMENT };
    Object.defineProperty(env, 'deviceHwTypes', {
      get() {
        throw 'not an Error'; // eslint-disable-line no-throw-literal
      },
    });
    const [f] = lintCertificate(await make('device'), { environment: env });
    expect(f?.message).toBe('subjectAltName: could not be checked (internal error)');
    const long = 'x'.repeat(300);
    const env2 = { ...TEST_ENVIRONMENT };
    Object.defineProperty(env2, 'deviceHwTypes', {
      get() {
        throw new Error(long);
      },
    });
    const [g] = lintCertificate(await make('device'), { environment: env2 });
    expect(g?.message).toBe(`subjectAltName: could not be checked (${'x'.repeat(120)})`);
  });
});

describe('expectedKind and the profile of an issuing CA', () => {
  it('an expectedKind that is not a CertificateKind is refused, with the value (cut to 40 characters) as detail', async () => {
    const cert = await make('org');
    for (const kind of ['issuingCA', 7, null, 'x'.repeat(60)]) {
      let e: unknown;
      try {
        lintCertificate(cert, { expectedKind: kind as never });
      } catch (err) {
        e = err;
      }
      expect(isSmkiError(e, 'ERR_INVALID_ARGUMENT'), String(kind)).toBe(true);
      expect((e as SmkiError).context).toEqual({ detail: String(kind).slice(0, 40) });
    }
  });

  it('every CertificateKind is accepted as expectedKind', async () => {
    const cert = await make('oca');
    for (const kind of ['root', 'issuingCa', 'organisation', 'device', 'unknown'] as const) {
      expect(Array.isArray(lintCertificate(cert, { expectedKind: kind }))).toBe(true);
      expect(typeof certificateProfile(cert, { expectedKind: kind })).toBe('string');
    }
  });

  it('the first policy the environment knows decides: organisation CA, device CA, or plain issuing CA', async () => {
    const both = await make('oca', setExt(OID.certificatePolicies, cp(['1.2.3.4', DEVICE_POLICY, ORG_POLICY])));
    expect(certificateProfile(both)).toBe('deviceCa');
    const orgFirst = await make('oca', setExt(OID.certificatePolicies, cp(['1.2.3.4', ORG_POLICY, DEVICE_POLICY])));
    expect(certificateProfile(orgFirst)).toBe('organisationCa');
    const none = await make('oca', setExt(OID.certificatePolicies, cp(['1.2.3.4'])));
    expect(certificateProfile(none)).toBe('issuingCa');
    // A plain issuing CA has no role rule: OU 02 is no finding of its own.
    const plain = await make('oca', setExt(OID.certificatePolicies, cp(['1.2.3.4'])), withSubject([organizationalUnitAttribute('02')]));
    expect(codes(lintCertificate(plain))).toEqual(['ERR_PROFILE_POLICY_NOT_ALLOWED']);
  });

  it('certificateProfile reads the environment and expectedKind', async () => {
    const cert = await make('oca');
    const prod = defineEnvironment({ name: 'prod', organisationPolicies: ['1.2.3.1'] });
    expect(certificateProfile(cert, { environment: prod })).toBe('issuingCa');
    expect(certificateProfile(cert, { expectedKind: 'root' })).toBe('root');
    expect(certificateProfile(await make('org'), { expectedKind: 'issuingCa' })).toBe('organisationCa');
    expect(certificateProfile(cert.der)).toBe('organisationCa');
  });
});
