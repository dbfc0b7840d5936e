// lintCertificate and certificateProfile: the cases mutation testing (StrykerJS, `pnpm run mutation
// pki/lint`) found untested. RFC 5280 §4.1 (fields), §4.2 (each extension at most once; critical
// extensions), §4.2.1.1–§4.2.1.9; RFC 4108 §5; the SMKI certificate profile as docs/domain.md §2
// describes it. Each case breaks one rule (or makes one rule fail unexpectedly) and expects its code.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkDerStructure,
  createKeySigner,
  eui64ToBytes,
  isSmkiError,
  p1363ToDer,
  parseEui64,
  publicKeyToRaw,
  readTlv,
  tlvBytes,
  tlvReader,
  toHex,
  type Finding,
  type KeyUsageName,
  type Signer,
  type SmkiError,
} from '@smki/core';
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
import { derOid, derSequence, derTlv } from '../src/internal/name.js';
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

async function makeSignedBy(signer: Signer, kind: Kind, ...edits: Edit[]): Promise<SmkiCertificate> {
  const { t } = template(kind);
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

// ---------------------------------------------------------------------------------------------
// Every finding's message names the field it is about and says what is wrong (the profile rule
// and, where there is one, the value found). A finding is all an auditor sees of a refusal.

const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
const ed25519 = generateKeyPairSync('ed25519').publicKey;
const spkiOf = (k: ReturnType<typeof generateKeyPairSync>['publicKey']): Uint8Array => new Uint8Array(k.export({ type: 'spki', format: 'der' }));
const withSpki = (spki: Uint8Array): Edit => (t) => ({ ...t, subjectPublicKey: { spki } });
const withPoint = (point: Uint8Array): Edit => (t) => ({ ...t, subjectPublicKey: { point } });
const rawExt = (oid: string, critical: boolean, value: Uint8Array): ExtensionTemplate => ({ oid, critical, value });
const alg = (oid: string, params: 'absent' | 'null' = 'absent') => ({ oid, params }) as const;
const uid = (bytes: Uint8Array, bitLength: number): NameAttributeTemplate => ({ oid: OID.x500UniqueIdentifier, value: { encoding: 'bitstring', bytes, bitLength } });

/** Key identifiers (method 2) of the test keys, as messages spell them. */
const KID = { ee: toHex(keyIdMethod2(keys.ee.point)), other: toHex(keyIdMethod2(keys.other.point)), root: toHex(keyIdMethod2(keys.root.point)) };

interface MessageCase {
  readonly id: string;
  readonly kind: Kind;
  readonly edits: readonly Edit[];
  readonly options?: Parameters<typeof lintCertificate>[1];
  readonly signer?: Signer;
}

const MESSAGE_CASES: readonly MessageCase[] = [
  { id: 'unknown kind', kind: 'org', edits: [withSubject([commonNameAttribute('nobody')])] },
  { id: 'v1', kind: 'org', edits: [(t) => ({ ...t, version: 0 })] },
  { id: 'Ed25519', kind: 'org', edits: [withSpki(spkiOf(ed25519)), setExt(OID.subjectKeyIdentifier)] },
  { id: 'P-384', kind: 'org', edits: [withSpki(spkiOf(p384)), setExt(OID.subjectKeyIdentifier)] },
  { id: 'no named curve', kind: 'org', edits: [withSpki(derSequence(derSequence(derTlv(0x06, Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01))), derTlv(0x03, Uint8Array.of(0), keys.ee.point))), setExt(OID.subjectKeyIdentifier)] },
  { id: 'off-curve point', kind: 'org', edits: [withPoint(Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1))), setExt(OID.subjectKeyIdentifier)] },
  { id: 'compressed point (02)', kind: 'org', edits: [withPoint(Uint8Array.of(2, ...keys.ee.point.subarray(1, 33))), setExt(OID.subjectKeyIdentifier)] },
  { id: 'compressed point (03)', kind: 'org', edits: [withPoint(Uint8Array.of(3, ...keys.ee.point.subarray(1, 33))), setExt(OID.subjectKeyIdentifier)] },
  { id: '33 octets starting 04', kind: 'org', edits: [withPoint(Uint8Array.of(4, ...keys.ee.point.subarray(1, 33))), setExt(OID.subjectKeyIdentifier)] },
  { id: '65 octets starting 02', kind: 'org', edits: [withPoint(Uint8Array.of(2, ...keys.ee.point.subarray(1))), setExt(OID.subjectKeyIdentifier)] },
  { id: 'ecdsa-with-SHA384', kind: 'org', edits: [(t) => ({ ...t, signatureAlgorithm: alg('1.2.840.10045.4.3.3'), tbsSignatureAlgorithm: alg('1.2.840.10045.4.3.3') })] },
  { id: 'NULL parameters', kind: 'org', edits: [(t) => ({ ...t, signatureAlgorithm: alg(OID.ecdsaWithSha256, 'null'), tbsSignatureAlgorithm: alg(OID.ecdsaWithSha256, 'null') })] },
  { id: 'tbs NULL only', kind: 'org', edits: [(t) => ({ ...t, tbsSignatureAlgorithm: alg(OID.ecdsaWithSha256, 'null') })] },
  { id: 'serial of 3 octets', kind: 'org', edits: [(t) => ({ ...t, serialNumber: Uint8Array.of(1, 2, 3) })] },
  { id: 'negative serial', kind: 'org', edits: [(t) => ({ ...t, serialNumber: Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x91 : i)) })] },
  { id: 'zero serial', kind: 'org', edits: [(t) => ({ ...t, serialNumber: Uint8Array.of(0) })] },
  { id: 'validity order', kind: 'org', edits: [(t) => ({ ...t, notBefore: utc('2035-01-01T00:00:00Z') })] },
  { id: 'GeneralizedTime before 2050', kind: 'org', edits: [(t) => ({ ...t, notBefore: gen('2024-01-01T00:00:00Z'), notAfter: gen('2049-12-31T23:59:59Z') })] },
  { id: 'GeneralizedTime before 1950 is right', kind: 'org', edits: [(t) => ({ ...t, notBefore: gen('1949-12-31T23:59:59Z') })] },
  { id: 'duplicate and malformed extensions', kind: 'org', edits: [addExt(ski(keys.ee.point), rawExt('1.2.3.4', false, Uint8Array.of(5, 0)), rawExt('1.2.3.4', false, Uint8Array.of(5, 0))), setExt(OID.keyUsage, rawExt(OID.keyUsage, true, Uint8Array.of(0x03, 0x05, 0x00)))] },
  { id: 'forbidden and unknown critical extensions', kind: 'org', edits: [addExt(rawExt(OID.extKeyUsage, false, Uint8Array.of(0x30, 0)), rawExt(OID.cRLDistributionPoints, false, Uint8Array.of(0x30, 0)), rawExt(OID.authorityInfoAccess, false, Uint8Array.of(0x30, 0)), rawExt('1.2.3.9', true, Uint8Array.of(5, 0)))] },
  { id: 'forbidden on an end entity only', kind: 'oca', edits: [addExt(rawExt(OID.extKeyUsage, false, Uint8Array.of(0x30, 0)), rawExt(OID.cRLDistributionPoints, true, Uint8Array.of(0x30, 0)))] },
  { id: 'keyUsage absent', kind: 'org', edits: [setExt(OID.keyUsage)] },
  { id: 'keyUsage not critical, no bits', kind: 'device', edits: [setExt(OID.keyUsage, ku([], false))] },
  { id: 'CA keyUsage', kind: 'oca', edits: [setExt(OID.keyUsage, ku(['keyCertSign', 'cRLSign', 'digitalSignature']))] },
  { id: 'CA keyUsage of two other bits', kind: 'root', edits: [setExt(OID.keyUsage, ku(['keyCertSign', 'digitalSignature']))] },
  { id: 'end-entity keyUsage', kind: 'org', edits: [setExt(OID.keyUsage, ku(['digitalSignature', 'keyAgreement', 'nonRepudiation', 'keyCertSign']))], options: { expectedKind: 'organisation' } },
  { id: 'policies absent', kind: 'org', edits: [setExt(OID.certificatePolicies)] },
  { id: 'policies empty', kind: 'org', edits: [setExt(OID.certificatePolicies, cp([], false))] },
  { id: 'policies repeated and foreign (organisation)', kind: 'org', edits: [setExt(OID.certificatePolicies, cp([ORG_POLICY, '1.2.3.4', ORG_POLICY, '1.2.3.4', '1.2.3.5']))] },
  { id: 'policies of a device', kind: 'device', edits: [setExt(OID.certificatePolicies, cp([ORG_POLICY, DEVICE_POLICY]))] },
  { id: 'policies of the root', kind: 'root', edits: [setExt(OID.certificatePolicies, cp(['1.2.3.4']))] },
  { id: 'policies of the root (rootPolicies)', kind: 'root', edits: [], options: { environment: defineEnvironment({ name: 'roots', rootPolicies: ['1.2.3.7'] }) } },
  { id: 'policies of a plain issuing CA', kind: 'oca', edits: [setExt(OID.certificatePolicies, cp(['1.2.3.4']))] },
  { id: 'policyConstraints not critical', kind: 'oca', edits: [addExt(rawExt('2.5.29.36', false, Uint8Array.of(0x30, 0x03, 0x80, 0x01, 0x00)))] },
  { id: 'SKI absent', kind: 'org', edits: [setExt(OID.subjectKeyIdentifier)] },
  { id: 'SKI critical, 4 octets', kind: 'org', edits: [setExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, true, subjectKeyIdentifierValue(Uint8Array.of(1, 2, 3, 4))))] },
  { id: 'SKI of another key', kind: 'org', edits: [setExt(OID.subjectKeyIdentifier, ski(keys.other.point))] },
  { id: 'AKI absent', kind: 'org', edits: [setExt(OID.authorityKeyIdentifier)] },
  { id: 'AKI critical, 4 octets', kind: 'org', edits: [setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, true, authorityKeyIdentifierValue(Uint8Array.of(1, 2, 3, 4))))] },
  { id: 'AKI on the root naming another key', kind: 'root', edits: [addExt(aki(keys.other.point))] },
  { id: 'AKI without keyIdentifier, with issuer and serial', kind: 'org', edits: [setExt(OID.authorityKeyIdentifier, rawExt(OID.authorityKeyIdentifier, false, derSequence(derTlv(0xa1, derTlv(0x82, Uint8Array.of(0x61))), derTlv(0x82, Uint8Array.of(1)))))] },
  { id: 'basicConstraints absent on a CA', kind: 'oca', edits: [setExt(OID.basicConstraints)], options: { expectedKind: 'issuingCa' } },
  { id: 'basicConstraints not critical, cA FALSE', kind: 'dca', edits: [setExt(OID.basicConstraints, bc(false, undefined, false))], options: { expectedKind: 'issuingCa' } },
  { id: 'pathLenConstraint absent', kind: 'oca', edits: [setExt(OID.basicConstraints, bc(true))] },
  { id: 'pathLenConstraint 1', kind: 'oca', edits: [setExt(OID.basicConstraints, bc(true, 1))] },
  { id: 'end entity cA', kind: 'device', edits: [addExt(bc(true))], options: { expectedKind: 'device' } },
  { id: 'root not self-issued, no OU', kind: 'oca', edits: [withSubject([commonNameAttribute('Z1', 'printable')])], options: { expectedKind: 'root' } },
  { id: 'root with two OUs', kind: 'root', edits: [(t) => ({ ...t, issuer: { attributes: [organizationalUnitAttribute('00'), organizationalUnitAttribute('01')] }, subject: { attributes: [organizationalUnitAttribute('00'), organizationalUnitAttribute('01')] } })] },
  { id: 'OCA OU 02', kind: 'oca', edits: [withSubject([organizationalUnitAttribute('02'), commonNameAttribute('Z1', 'printable')])] },
  { id: 'OCA without OU', kind: 'oca', edits: [withSubject([commonNameAttribute('Z1', 'printable')])] },
  { id: 'organisation subject: O, CN twice, printable CN', kind: 'org', edits: [withSubject([commonNameAttribute('A', 'printable'), commonNameAttribute('B'), organizationalUnitAttribute('02'), entityIdAttribute(ORG_EUI), { oid: '2.5.4.10', value: { encoding: 'printable', value: 'Org' } }])] },
  { id: 'organisation without UID', kind: 'org', edits: [withSubject([organizationalUnitAttribute('02')])] },
  { id: 'organisation without OU', kind: 'org', edits: [withSubject([entityIdAttribute(ORG_EUI)])] },
  { id: 'root signed by another key', kind: 'root', edits: [], signer: keys.other.signer },
  { id: 'organisation role decimal', kind: 'org', edits: [withSubject([organizationalUnitAttribute('2'), entityIdAttribute(ORG_EUI)])] },
  { id: 'organisation role not a role', kind: 'org', edits: [withSubject([organizationalUnitAttribute('zz'), entityIdAttribute(ORG_EUI)])] },
  { id: 'organisation role unknown', kind: 'org', edits: [withSubject([organizationalUnitAttribute('09'), entityIdAttribute(ORG_EUI)])] },
  { id: 'organisation uid of 63 bits', kind: 'org', edits: [withSubject([organizationalUnitAttribute('02'), uid(eui64ToBytes(ORG_EUI), 63)])] },
  { id: 'organisation uid as OCTET STRING', kind: 'org', edits: [withSubject([organizationalUnitAttribute('02'), { oid: OID.x500UniqueIdentifier, value: { encoding: 'raw', der: Uint8Array.of(0x04, 0x08, ...eui64ToBytes(ORG_EUI)) } }])] },
  { id: 'device subject, UTCTime notAfter', kind: 'device', edits: [withSubject([commonNameAttribute('meter')]), (t) => ({ ...t, notAfter: utc('2049-12-31T23:59:59Z') })] },
  { id: 'device notAfter GeneralizedTime one second early', kind: 'device', edits: [(t) => ({ ...t, notAfter: gen('9999-12-31T23:59:58Z') })] },
  { id: 'device SAN absent', kind: 'device', edits: [setExt(OID.subjectAltName)] },
  { id: 'device SAN not critical, other hwType, 7-octet serial', kind: 'device', edits: [setExt(OID.subjectAltName, extension(OID.subjectAltName, false, hardwareModuleNameSanValue('1.2.3.4', new Uint8Array(7).fill(1))))] },
  { id: 'device SAN of a dNSName', kind: 'device', edits: [setExt(OID.subjectAltName, rawExt(OID.subjectAltName, true, derSequence(derTlv(0x82, Uint8Array.of(0x61)))))] },
];

describe('every finding’s message names its field and what is wrong', () => {
  it.each(MESSAGE_CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    const cert = c.signer ? await makeSignedBy(c.signer, c.kind, ...c.edits) : await make(c.kind, ...c.edits);
    const got = lintCertificate(cert, c.options).map((f) => [f.code, f.severity, f.message]);
    expect(got).toEqual(EXPECTED_MESSAGES[c.id]);
  });
});

const EXPECTED_MESSAGES: Readonly<Record<string, readonly (readonly [string, string, string])[]>> = {
  'unknown kind': [
    ['ERR_PROFILE_UNKNOWN_KIND', 'error', 'kind: the certificate matches no SMKI certificate kind (root, issuing CA, organisation, device)'],
  ],
  'v1': [
    ['ERR_PROFILE_VERSION', 'error', 'version: encoded as 0 (v1), not 2 (v3)'],
  ],
  'Ed25519': [
    ['ERR_PROFILE_KEY_ALGORITHM', 'error', 'subjectPublicKeyInfo.algorithm: 1.3.101.112 is not id-ecPublicKey'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'P-384': [
    ['ERR_PROFILE_KEY_CURVE', 'error', 'subjectPublicKeyInfo.algorithm.parameters: 1.3.132.0.34 is not P-256 (1.2.840.10045.3.1.7)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'no named curve': [
    ['ERR_PROFILE_KEY_CURVE', 'error', 'subjectPublicKeyInfo.algorithm.parameters: no named curve is not P-256 (1.2.840.10045.3.1.7)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'off-curve point': [
    ['ERR_PROFILE_KEY_POINT', 'error', 'subjectPublicKey: not a valid uncompressed P-256 point (not on the curve)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'compressed point (02)': [
    ['ERR_PROFILE_KEY_POINT', 'error', 'subjectPublicKey: not a valid uncompressed P-256 point (a compressed point)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'compressed point (03)': [
    ['ERR_PROFILE_KEY_POINT', 'error', 'subjectPublicKey: not a valid uncompressed P-256 point (a compressed point)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  '33 octets starting 04': [
    ['ERR_PROFILE_KEY_POINT', 'error', 'subjectPublicKey: not a valid uncompressed P-256 point (33 octets)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  '65 octets starting 02': [
    ['ERR_PROFILE_KEY_POINT', 'error', 'subjectPublicKey: not a valid uncompressed P-256 point (65 octets)'],
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'ecdsa-with-SHA384': [
    ['ERR_PROFILE_SIGNATURE_ALGORITHM', 'error', 'signatureAlgorithm: 1.2.840.10045.4.3.3 is not ecdsa-with-SHA256 (1.2.840.10045.4.3.2)'],
  ],
  'NULL parameters': [
    ['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', 'warning', 'signatureAlgorithm.parameters: an explicit NULL (RFC 5758 says absent; tolerated)'],
  ],
  'tbs NULL only': [
    ['ERR_PROFILE_SIGNATURE_ALGORITHM_MISMATCH', 'error', 'tbsCertificate.signature: 1.2.840.10045.4.3.2 (with its parameters) differs from signatureAlgorithm 1.2.840.10045.4.3.2'],
  ],
  'serial of 3 octets': [
    ['ERR_PROFILE_SERIAL_LENGTH', 'error', 'serialNumber: 3 octets, not 16'],
  ],
  'negative serial': [
    ['ERR_PROFILE_SERIAL_NOT_POSITIVE', 'error', 'serialNumber: negative, not a positive integer'],
  ],
  'zero serial': [
    ['ERR_PROFILE_SERIAL_LENGTH', 'error', 'serialNumber: 1 octets, not 16'],
    ['ERR_PROFILE_SERIAL_NOT_POSITIVE', 'error', 'serialNumber: zero, not a positive integer'],
  ],
  'validity order': [
    ['ERR_PROFILE_VALIDITY_ORDER', 'error', 'validity: notBefore 2035-01-01T00:00:00.000Z is after notAfter 2034-01-01T00:00:00.000Z'],
  ],
  'GeneralizedTime before 2050': [
    ['ERR_PROFILE_VALIDITY_ENCODING', 'error', 'validity.notBefore: GeneralizedTime for 2024; dates through 2049 must be UTCTime'],
    ['ERR_PROFILE_VALIDITY_ENCODING', 'error', 'validity.notAfter: GeneralizedTime for 2049; dates through 2049 must be UTCTime'],
  ],
  'GeneralizedTime before 1950 is right': [],
  'duplicate and malformed extensions': [
    ['ERR_PROFILE_EXTENSION_MALFORMED', 'error', 'extensions: keyUsage (2.5.29.15) does not decode: DER value at offset 2 claims 5 bytes'],
    ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: subjectKeyIdentifier (2.5.29.14) appears more than once'],
    ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: 1.2.3.4 (1.2.3.4) appears more than once'],
  ],
  'forbidden and unknown critical extensions': [
    ['ERR_PROFILE_EXTENSION_FORBIDDEN', 'error', 'extensions: extendedKeyUsage (2.5.29.37) is not allowed on an end-entity certificate'],
    ['ERR_PROFILE_EXTENSION_FORBIDDEN', 'error', 'extensions: cRLDistributionPoints (2.5.29.31) is not allowed on an end-entity certificate'],
    ['ERR_PROFILE_EXTENSION_FORBIDDEN', 'error', 'extensions: authorityInfoAccess (1.3.6.1.5.5.7.1.1) is not allowed on an end-entity certificate'],
    ['ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL', 'error', 'extensions: 1.2.3.9 (1.2.3.9) is critical and not one the SMKI profile knows'],
  ],
  'forbidden on an end entity only': [
    ['ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL', 'error', 'extensions: cRLDistributionPoints (2.5.29.31) is critical and not one the SMKI profile knows'],
  ],
  'keyUsage absent': [
    ['ERR_PROFILE_KEY_USAGE_MISSING', 'error', 'keyUsage: absent'],
  ],
  'keyUsage not critical, no bits': [
    ['ERR_PROFILE_KEY_USAGE_NOT_CRITICAL', 'error', 'keyUsage: not critical'],
    ['ERR_PROFILE_KEY_USAGE_NOT_SINGLE', 'error', 'keyUsage: no bits, not exactly one of digitalSignature and keyAgreement'],
  ],
  'CA keyUsage': [
    ['ERR_PROFILE_KEY_USAGE_INVALID', 'error', 'keyUsage: digitalSignature|keyCertSign|cRLSign, not exactly keyCertSign|cRLSign for a CA'],
  ],
  'CA keyUsage of two other bits': [
    ['ERR_PROFILE_KEY_USAGE_INVALID', 'error', 'keyUsage: digitalSignature|keyCertSign, not exactly keyCertSign|cRLSign for a CA'],
  ],
  'end-entity keyUsage': [
    ['ERR_PROFILE_KEY_USAGE_NOT_SINGLE', 'error', 'keyUsage: digitalSignature|nonRepudiation|keyAgreement|keyCertSign, not exactly one of digitalSignature and keyAgreement'],
    ['ERR_PROFILE_KEY_USAGE_INVALID', 'error', 'keyUsage: nonRepudiation not allowed on an end-entity certificate'],
    ['ERR_PROFILE_KEY_CERT_SIGN_NOT_CA', 'error', 'keyUsage: keyCertSign asserted without basicConstraints cA TRUE (RFC 5280 §4.2.1.3)'],
  ],
  'policies absent': [
    ['ERR_PROFILE_POLICIES_MISSING', 'error', 'certificatePolicies: absent'],
  ],
  'policies empty': [
    ['ERR_PROFILE_POLICIES_NOT_CRITICAL', 'error', 'certificatePolicies: not critical'],
    ['ERR_PROFILE_POLICIES_MISSING', 'error', 'certificatePolicies: holds no policy OID'],
  ],
  'policies repeated and foreign (organisation)': [
    ['ERR_PROFILE_POLICY_DUPLICATE', 'error', 'certificatePolicies: 1.2.826.0.1.8641679.1.2.1.4, 1.2.3.4 appears more than once'],
    ['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', 'certificatePolicies: 1.2.3.4 is not an organisation policy of environment \'test\''],
    ['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', 'certificatePolicies: 1.2.3.5 is not an organisation policy of environment \'test\''],
  ],
  'policies of a device': [
    ['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', 'certificatePolicies: 1.2.826.0.1.8641679.1.2.1.4 is not a device policy of environment \'test\''],
    ['ERR_PROFILE_POLICY_COUNT', 'error', 'certificatePolicies: 2 policy OIDs, a device certificate has exactly one'],
  ],
  'policies of the root': [
    ['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', 'certificatePolicies: 1.2.3.4 is not an organisation or device policy of environment \'test\''],
  ],
  'policies of the root (rootPolicies)': [
    ['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', 'certificatePolicies: 1.2.826.0.1.8641679.1.2.1.4 is not a root policy of environment \'roots\''],
  ],
  'policies of a plain issuing CA': [
    ['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', 'certificatePolicies: 1.2.3.4 is not an SMKI policy of environment \'test\''],
  ],
  'policyConstraints not critical': [
    ['ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL', 'error', 'policyConstraints: not critical (RFC 5280 §4.2.1.11: MUST be critical)'],
  ],
  'SKI absent': [
    ['ERR_PROFILE_SKI_MISSING', 'error', 'subjectKeyIdentifier: absent'],
  ],
  'SKI critical, 4 octets': [
    ['ERR_PROFILE_SKI_CRITICAL', 'error', 'subjectKeyIdentifier: critical (RFC 5280 §4.2.1.2: MUST be non-critical)'],
    ['ERR_PROFILE_SKI_LENGTH', 'error', 'subjectKeyIdentifier: 4 octets, not 8'],
  ],
  'SKI of another key': [
    ['ERR_PROFILE_SKI_METHOD', 'error', `subjectKeyIdentifier: ${KID.other} is not RFC 5280 §4.2.1.2 method 2 of the subject public key (${KID.ee})`],
  ],
  'AKI absent': [
    ['ERR_PROFILE_AKI_MISSING', 'error', 'authorityKeyIdentifier: absent on a certificate that is not the self-signed root'],
  ],
  'AKI critical, 4 octets': [
    ['ERR_PROFILE_AKI_CRITICAL', 'error', 'authorityKeyIdentifier: critical (RFC 5280 §4.2.1.1: MUST be non-critical)'],
    ['ERR_PROFILE_AKI_FORM', 'error', 'authorityKeyIdentifier: keyIdentifier of 4 octets, not 8; must be [0] keyIdentifier (8 octets) only'],
  ],
  'AKI on the root naming another key': [
    ['ERR_PROFILE_AKI_ON_ROOT', 'warning', 'authorityKeyIdentifier: present on the self-signed root (RFC 5280 allows it; SMKI roots omit it)'],
    ['ERR_PROFILE_AKI_ROOT_MISMATCH', 'error', `authorityKeyIdentifier: ${KID.other} on the self-signed root is not its own key identifier ${KID.root}`],
  ],
  'AKI without keyIdentifier, with issuer and serial': [
    ['ERR_PROFILE_AKI_FORM', 'error', 'authorityKeyIdentifier: no keyIdentifier, authorityCertIssuer present, authorityCertSerialNumber present; must be [0] keyIdentifier (8 octets) only'],
  ],
  'basicConstraints absent on a CA': [
    ['ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', 'error', 'basicConstraints: absent on a CA certificate'],
  ],
  'basicConstraints not critical, cA FALSE': [
    ['ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CRITICAL', 'error', 'basicConstraints: not critical on a CA certificate'],
    ['ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CA', 'error', 'basicConstraints.cA: FALSE on a CA certificate'],
  ],
  'pathLenConstraint absent': [
    ['ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH', 'error', 'basicConstraints.pathLenConstraint: absent, an issuing CA has 0'],
  ],
  'pathLenConstraint 1': [
    ['ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH', 'error', 'basicConstraints.pathLenConstraint: 1, an issuing CA has 0'],
  ],
  'end entity cA': [
    ['ERR_PROFILE_END_ENTITY_IS_CA', 'error', 'basicConstraints.cA: TRUE on an end-entity certificate'],
  ],
  'root not self-issued, no OU': [
    ['ERR_PROFILE_AKI_ON_ROOT', 'warning', 'authorityKeyIdentifier: present on the self-signed root (RFC 5280 allows it; SMKI roots omit it)'],
    ['ERR_PROFILE_ROOT_NOT_SELF_SIGNED', 'error', 'issuer: OU=00, CN=ZA differs from subject CN=Z1; the root is self-issued'],
    ['ERR_PROFILE_ROOT_ROLE', 'error', 'subject OU: absent, the root has exactly OU "00"'],
  ],
  'root with two OUs': [
    ['ERR_PROFILE_ROOT_ROLE', 'error', 'subject OU: "00", "01", the root has exactly OU "00"'],
  ],
  'OCA OU 02': [
    ['ERR_PROFILE_OCA_ROLE', 'error', 'subject OU: "02", an organisation CA has exactly OU "07"'],
  ],
  'OCA without OU': [
    ['ERR_PROFILE_OCA_ROLE', 'error', 'subject OU: absent, an organisation CA has exactly OU "07"'],
  ],
  'organisation subject: O, CN twice, printable CN': [
    ['ERR_PROFILE_ORG_CN_ENCODING', 'error', 'subject CN: ASN.1 tag 19, not UTF8String (12)'],
    ['ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE', 'error', 'subject CN: appears more than once'],
    ['ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE', 'error', 'subject O: not allowed in an organisation subject (CN, OU and x500UniqueIdentifier only)'],
  ],
  'organisation without UID': [
    ['ERR_PROFILE_ORG_ENTITY_ID_MISSING', 'error', 'subject x500UniqueIdentifier: absent (the entity EUI-64)'],
  ],
  'organisation without OU': [
    ['ERR_PROFILE_ORG_ROLE_MISSING', 'error', 'subject OU: absent (the Remote Party Role)'],
  ],
  'root signed by another key': [
    ['ERR_PROFILE_ROOT_NOT_SELF_SIGNED', 'error', 'signatureValue: does not verify under the root\'s own public key'],
  ],
  'organisation role decimal': [
    ['ERR_PROFILE_ORG_ROLE_FORMAT', 'error', 'subject OU: "2" is not exactly two upper-case hex digits (read leniently as role 2)'],
  ],
  'organisation role not a role': [
    ['ERR_PROFILE_ORG_ROLE_FORMAT', 'error', 'subject OU: "zz" is not exactly two upper-case hex digits'],
  ],
  'organisation role unknown': [
    ['ERR_PROFILE_ORG_ROLE_UNKNOWN', 'error', 'subject OU: 09 is not a known Remote Party Role'],
  ],
  'organisation uid of 63 bits': [
    ['ERR_PROFILE_ORG_ENTITY_ID_FORMAT', 'error', 'subject x500UniqueIdentifier: 63 bits, not 64'],
  ],
  'organisation uid as OCTET STRING': [
    ['ERR_PROFILE_ORG_ENTITY_ID_FORMAT', 'error', 'subject x500UniqueIdentifier: ASN.1 tag 4, not BIT STRING'],
  ],
  'device subject, UTCTime notAfter': [
    ['ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY', 'error', 'subject: CN=meter, a device certificate subject is empty'],
    ['ERR_PROFILE_DEVICE_NOT_AFTER', 'error', 'validity.notAfter: UTCTime 491231235959Z, not GeneralizedTime 99991231235959Z'],
  ],
  'device notAfter GeneralizedTime one second early': [
    ['ERR_PROFILE_DEVICE_NOT_AFTER', 'error', 'validity.notAfter: GeneralizedTime 99991231235958Z, not GeneralizedTime 99991231235959Z'],
  ],
  'device SAN absent': [
    ['ERR_PROFILE_DEVICE_SAN_MISSING', 'error', 'subjectAltName: absent'],
  ],
  'device SAN not critical, other hwType, 7-octet serial': [
    ['ERR_PROFILE_DEVICE_SAN_NOT_CRITICAL', 'error', 'subjectAltName: not critical (the subject is empty)'],
    ['ERR_PROFILE_DEVICE_HW_SERIAL', 'error', 'subjectAltName hwSerialNum: 7 octets, not an 8-octet EUI-64'],
    ['ERR_PROFILE_DEVICE_HW_TYPE', 'error', 'subjectAltName hwType: 1.2.3.4 is not allowed in environment \'test\''],
  ],
  'device SAN of a dNSName': [
    ['ERR_PROFILE_DEVICE_SAN_FORM', 'error', 'subjectAltName: 1 general names of which 0 hardwareModuleName, not exactly one otherName hardwareModuleName'],
  ],
};

// ---------------------------------------------------------------------------------------------
// Boundaries and branches the cases above leave open.

/** `der` of a certificate with both AlgorithmIdentifiers replaced by ecdsa-with-SHA256 with `params`, re-signed by `signer`. */
async function withSignatureParams(der: Uint8Array, params: Uint8Array, signer: Signer): Promise<SmkiCertificate> {
  const tbs = readTlv(tlvReader(der, checkDerStructure(der)), 0x30);
  const r = tlvReader(der, tbs);
  const version = readTlv(r, 0xa0);
  const serial = readTlv(r, 0x02);
  readTlv(r, 0x30); // tbsCertificate.signature, replaced
  const alg = derSequence(derOid(OID.ecdsaWithSha256), params);
  const newTbs = derSequence(tlvBytes(der, version), tlvBytes(der, serial), alg, der.subarray(r.offset, tbs.end));
  const signature = p1363ToDer(await signer.sign(newTbs));
  return parseCertificate(derSequence(newTbs, alg, derTlv(0x03, Uint8Array.of(0), signature)));
}

async function makeDer(kind: Kind, ...edits: Edit[]): Promise<Uint8Array> {
  const { t, signer } = template(kind);
  return buildCertificate(edits.reduce((acc, e) => e(acc), t), signer);
}

const lintOf = (cert: SmkiCertificate, options?: Parameters<typeof lintCertificate>[1]) =>
  lintCertificate(cert, options).map((f) => [f.code, f.severity, f.message]);

describe('signatureAlgorithm parameters other than absent or NULL (RFC 5758 §3.2: absent)', () => {
  // The parser reads any parameters (it refuses only a NULL with content), so this is reachable
  // from DER: lint must refuse it, not tolerate it as it tolerates an explicit NULL.
  const PRESENT = 'signatureAlgorithm.parameters: present (RFC 5758 says absent)';

  it('an OID as parameters, in both AlgorithmIdentifiers: an error', async () => {
    const cert = await withSignatureParams(await makeDer('org'), derOid(OID.p256), keys.ca.signer);
    expect(cert.details.signatureAlgorithmParams).toBe('other');
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', 'error', PRESENT]]);
  });

  it('an empty SEQUENCE as parameters on a self-signed root (whose signature still verifies): an error', async () => {
    const cert = await withSignatureParams(await makeDer('root'), derSequence(), keys.root.signer);
    expect(cert.kind).toBe('root');
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', 'error', PRESENT]]);
  });
});

describe('validity (RFC 5280 §4.1.2.5)', () => {
  it('notBefore equal to notAfter is in order (the validity period includes both)', async () => {
    const cert = await make('org', (t) => ({ ...t, notBefore: utc('2034-01-01T00:00:00Z'), notAfter: utc('2034-01-01T00:00:00Z') }));
    expect(lintOf(cert)).toEqual([]);
  });

  it('a GeneralizedTime in 1950, the first UTCTime year, is refused', async () => {
    const cert = await make('org', (t) => ({ ...t, notBefore: gen('1950-01-01T00:00:00Z') }));
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_VALIDITY_ENCODING', 'error', 'validity.notBefore: GeneralizedTime for 1950; dates through 2049 must be UTCTime']]);
    expect(lintOf(await make('org', (t) => ({ ...t, notBefore: utc('1950-01-01T00:00:00Z') })))).toEqual([]);
  });

  it('a GeneralizedTime in 2050, the first year UTCTime cannot hold, is right', async () => {
    const cert = await make('org', (t) => ({ ...t, notAfter: gen('2050-01-01T00:00:00Z') }));
    expect(lintOf(cert)).toEqual([]);
  });
});

describe('extension list (RFC 5280 §4.2)', () => {
  it('an extension three times is one finding, not one per repeat', async () => {
    const cert = await make('org', addExt(ski(keys.ee.point), ski(keys.ee.point)));
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: subjectKeyIdentifier (2.5.29.14) appears more than once']]);
  });

  it('findings name each extension the profile knows', async () => {
    const pc = rawExt('2.5.29.36', true, Uint8Array.of(0x30, 0x03, 0x80, 0x01, 0x00));
    const cert = await make('device', addExt(cp([DEVICE_POLICY]), aki(keys.ca.point), san(), bc(false), bc(false), pc, pc));
    expect(lintOf(cert)).toEqual([
      ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: certificatePolicies (2.5.29.32) appears more than once'],
      ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: authorityKeyIdentifier (2.5.29.35) appears more than once'],
      ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: subjectAltName (2.5.29.17) appears more than once'],
      ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: basicConstraints (2.5.29.19) appears more than once'],
      ['ERR_PROFILE_EXTENSION_DUPLICATE', 'error', 'extensions: policyConstraints (2.5.29.36) appears more than once'],
      ['ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL', 'error', 'extensions: policyConstraints (2.5.29.36) is critical and not one the SMKI profile knows'],
    ]);
  });
});

describe('keyUsage and basicConstraints (RFC 5280 §4.2.1.3, §4.2.1.9)', () => {
  it('every bit an end entity may not have is named', async () => {
    const cert = await make('org', setExt(OID.keyUsage, ku(['digitalSignature', 'nonRepudiation', 'keyEncipherment'])));
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_KEY_USAGE_INVALID', 'error', 'keyUsage: nonRepudiation|keyEncipherment not allowed on an end-entity certificate']]);
  });

  it('keyCertSign with cA TRUE is no finding on a certificate linted as no CA kind', async () => {
    const cert = await make('oca');
    expect(lintOf(cert, { expectedKind: 'unknown' })).toEqual([
      ['ERR_PROFILE_UNKNOWN_KIND', 'error', 'kind: the certificate matches no SMKI certificate kind (root, issuing CA, organisation, device)'],
    ]);
    const notCa = await make('oca', setExt(OID.basicConstraints, bc(false)));
    expect(codes(lintCertificate(notCa, { expectedKind: 'unknown' }))).toEqual(['ERR_PROFILE_UNKNOWN_KIND', 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA']);
  });

  it('a basicConstraints value that does not decode, on a CA: only the malformed-extension finding', async () => {
    const broken = rawExt(OID.basicConstraints, true, Uint8Array.of(0x30, 0x03, 0x01, 0x01));
    for (const kind of ['oca', 'root'] as const) {
      const cert = await make(kind, setExt(OID.basicConstraints, broken));
      const expectedKind = kind === 'oca' ? 'issuingCa' : 'root';
      expect(codes(lintCertificate(cert, { expectedKind })), kind).toEqual(['ERR_PROFILE_EXTENSION_MALFORMED']);
    }
  });
});

describe('results per expected kind', () => {
  it('one certificate linted as several kinds gets each kind’s findings (not the first result again)', async () => {
    const cert = await make('oca');
    expect(codes(lintCertificate(cert))).toEqual([]);
    expect(codes(lintCertificate(cert, { expectedKind: 'unknown' }))).toEqual(['ERR_PROFILE_UNKNOWN_KIND']);
    expect(codes(lintCertificate(cert, { expectedKind: 'root' }))).toEqual(['ERR_PROFILE_AKI_ON_ROOT', 'ERR_PROFILE_ROOT_NOT_SELF_SIGNED', 'ERR_PROFILE_ROOT_ROLE']);
    expect(codes(lintCertificate(cert, { expectedKind: 'issuingCa' }))).toEqual([]);
    expect(codes(lintCertificate(cert, { expectedKind: 'unknown' }))).toEqual(['ERR_PROFILE_UNKNOWN_KIND']);
  });
});

describe('policies of an organisation CA and a device CA (docs/domain.md §2)', () => {
  it('an organisation CA allows organisation policies only', async () => {
    const cert = await make('oca', setExt(OID.certificatePolicies, cp([ORG_POLICY, DEVICE_POLICY])));
    expect(certificateProfile(cert)).toBe('organisationCa');
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', `certificatePolicies: ${DEVICE_POLICY} is not an organisation policy of environment 'test'`]]);
  });

  it('a device CA allows device policies only', async () => {
    const cert = await make('dca', setExt(OID.certificatePolicies, cp([DEVICE_POLICY, ORG_POLICY])));
    expect(certificateProfile(cert)).toBe('deviceCa');
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_POLICY_NOT_ALLOWED', 'error', `certificatePolicies: ${ORG_POLICY} is not a device policy of environment 'test'`]]);
  });
});

describe('the root (docs/domain.md §2; RFC 5280 §4.2.1.1)', () => {
  it('an AKI without keyIdentifier names no key, so it cannot name another one', async () => {
    const noKeyId = rawExt(OID.authorityKeyIdentifier, false, derSequence(derTlv(0xa1, derTlv(0x82, Uint8Array.of(0x61))), derTlv(0x82, Uint8Array.of(1))));
    const cert = await make('root', addExt(noKeyId));
    expect(lintOf(cert)).toEqual([
      ['ERR_PROFILE_AKI_ON_ROOT', 'warning', 'authorityKeyIdentifier: present on the self-signed root (RFC 5280 allows it; SMKI roots omit it)'],
      ['ERR_PROFILE_AKI_FORM', 'error', 'authorityKeyIdentifier: no keyIdentifier, authorityCertIssuer present, authorityCertSerialNumber present; must be [0] keyIdentifier (8 octets) only'],
    ]);
  });

  // The self-signature is verified only with a usable P-256 key under ecdsa-with-SHA256: otherwise
  // the key or algorithm finding already refuses the root (and the signature is not checked twice).
  it('a root whose key is not P-256: the key finding, no signature finding', async () => {
    const cert = await make('root', withSpki(spkiOf(p384)), setExt(OID.subjectKeyIdentifier));
    expect(cert.kind).toBe('root');
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_KEY_CURVE', 'ERR_PROFILE_SKI_MISSING']);
  });

  it('a root whose P-256 point is not on the curve: the key finding, no signature finding', async () => {
    const cert = await make('root', withPoint(Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1))), setExt(OID.subjectKeyIdentifier));
    expect(cert.publicKey).toBeUndefined();
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_KEY_POINT', 'ERR_PROFILE_SKI_MISSING']);
  });

  it('a root under ecdsa-with-SHA384 (signed by another key): the algorithm finding, no signature finding', async () => {
    const sha384 = alg('1.2.840.10045.4.3.3');
    const cert = await makeSignedBy(keys.other.signer, 'root', (t) => ({ ...t, signatureAlgorithm: sha384, tbsSignatureAlgorithm: sha384 }));
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_SIGNATURE_ALGORITHM']);
  });
});

describe('subject and subjectAltName forms', () => {
  it('an organisation CA with OU 07 and a second OU', async () => {
    const cert = await make('oca', withSubject([organizationalUnitAttribute('07'), organizationalUnitAttribute('02'), commonNameAttribute('Z1', 'printable')]));
    expect(lintOf(cert)).toEqual([['ERR_PROFILE_OCA_ROLE', 'error', 'subject OU: "07", "02", an organisation CA has exactly OU "07"']]);
  });

  it('a device SAN of a hardwareModuleName and a dNSName: both counts in the message', async () => {
    const one = hardwareModuleNameSanValue(HW_TYPE, eui64ToBytes(DEVICE_EUI));
    const names = derSequence(tlvBytes(one, readTlv(tlvReader(one, checkDerStructure(one)))), derTlv(0x82, Uint8Array.of(0x61)));
    const cert = await make('device', setExt(OID.subjectAltName, rawExt(OID.subjectAltName, true, names)));
    expect(lintOf(cert)).toEqual([
      ['ERR_PROFILE_DEVICE_SAN_FORM', 'error', 'subjectAltName: 2 general names of which 1 hardwareModuleName, not exactly one otherName hardwareModuleName'],
    ]);
  });
});

describe('a duplicated extension does not switch off the rules of its first occurrence', () => {
  it('keyUsage with two usages, then a duplicate: the first is judged as if alone, plus the duplicate finding', async () => {
    const single = codes(lintCertificate(await make('org', setExt(OID.keyUsage, ku(['digitalSignature', 'keyAgreement'])))));
    expect(single.length).toBeGreaterThan(0);
    const twice = codes(lintCertificate(await make('org', setExt(OID.keyUsage, ku(['digitalSignature', 'keyAgreement'])), addExt(ku(['digitalSignature'])))));
    expect([...twice].sort()).toEqual(['ERR_PROFILE_EXTENSION_DUPLICATE', ...single].sort());
  });
});
