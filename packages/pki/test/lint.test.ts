// docs/domain.md §2 (SMKI certificate profiles: all certificates, root, OCA, DCA, organisation, device);
// RFC 5280 4.1 (fields), 4.2 (extensions); RFC 5758 3.2 (ecdsa-with-SHA256 parameters absent);
// RFC 4108 5 (hardwareModuleName).
//
// A conformant certificate of each kind lints clean; then each case breaks exactly one rule and
// expects exactly that rule's code (and no other finding). Certificates are made with the
// low-level builder (src/internal/build.ts), whose template states every field.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  GeneralName,
  KeyIdentifier,
  OtherName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createKeySigner,
  derToP1363,
  eui64ToBytes,
  isSmkiError,
  parseEui64,
  publicKeyToRaw,
  SMKI_ERROR_CODES,
  SmkiError,
  type Finding,
  type KeyUsageName,
  type Signer,
  type SmkiErrorCode,
} from '@smki/core';
import { defineEnvironment, OID, TEST_ENVIRONMENT } from '../src/environment.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  ECDSA_WITH_SHA256,
  extension,
  hardwareModuleNameDer,
  hardwareModuleNameSanValue,
  keyUsageValue,
  subjectKeyIdentifierValue,
  type CertificateTemplate,
  type ExtensionTemplate,
  type NameAttributeTemplate,
} from '../src/internal/build.js';
import { keyIdMethod2 } from '../src/internal/keyid.js';
import { commonNameAttribute, encodeName, entityIdAttribute, organizationalUnitAttribute } from '../src/internal/name.js';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate } from '../src/issue.js';
import { certificateProfile, lintCertificate, type LintOptions } from '../src/lint.js';
import { certificateToPem, parseCertificate } from '../src/parse.js';
import type { CertificateKind, SmkiCertificate } from '../src/types.js';

// ---------------------------------------------------------------------------------------------
// Fixtures: a test-PKI-shaped hierarchy (docs/domain.md §2 test names and policy OIDs)

const ORG_POLICY = TEST_ENVIRONMENT.organisationPolicies[0] as string;
const DEVICE_POLICY = TEST_ENVIRONMENT.devicePolicies[0] as string;
const HW_TYPE = TEST_ENVIRONMENT.defaultHwType;
const ECDSA_WITH_SHA384 = '1.2.840.10045.4.3.3';

interface KeyPair {
  readonly privateKey: KeyObject;
  readonly point: Uint8Array;
  readonly signer: Signer;
}

function p256(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, point: publicKeyToRaw(publicKey), signer: createKeySigner(privateKey) };
}

const keys = { root: p256(), oca: p256(), dca: p256(), org: p256(), device: p256(), other: p256() };

const printable = (oid: string, value: string): NameAttributeTemplate => ({ oid, value: { encoding: 'printable', value } });
const ROOT_NAME = { attributes: [organizationalUnitAttribute('00'), commonNameAttribute('ZA', 'printable')] };
const OCA_NAME = { attributes: [organizationalUnitAttribute('07'), commonNameAttribute('Z1', 'printable')] };
const DCA_NAME = { attributes: [commonNameAttribute('E357', 'printable')] };
const ORG_EUI = parseEui64('90B3D51F30010000');
const DEVICE_EUI = parseEui64('00DB1234567890A0');
const orgSubject = (role = '02'): NameAttributeTemplate[] => [
  commonNameAttribute('Supplier A'),
  organizationalUnitAttribute(role),
  entityIdAttribute(ORG_EUI),
];

const NB = { date: new Date('2024-01-01T00:00:00Z'), encoding: 'utc' } as const;
const utc = (iso: string) => ({ date: new Date(iso), encoding: 'utc' }) as const;
const gen = (iso: string) => ({ date: new Date(iso), encoding: 'generalized' }) as const;
const DEVICE_NA = gen('9999-12-31T23:59:59Z');

const serial = (first = 0x11, length = 16): Uint8Array => Uint8Array.from({ length }, (_, i) => (i === 0 ? first : (i * 37) & 0xff));

const ku = (names: readonly KeyUsageName[], critical = true) => extension(OID.keyUsage, critical, keyUsageValue(names));
const bc = (ca: boolean, pathLength?: number, critical = true) => extension(OID.basicConstraints, critical, basicConstraintsValue(ca, pathLength));
const cp = (oids: readonly string[], critical = true) => extension(OID.certificatePolicies, critical, certificatePoliciesValue(oids));
const ski = (point: Uint8Array, critical = false) => extension(OID.subjectKeyIdentifier, critical, subjectKeyIdentifierValue(keyIdMethod2(point)));
const aki = (point: Uint8Array, critical = false) => extension(OID.authorityKeyIdentifier, critical, authorityKeyIdentifierValue(keyIdMethod2(point)));
const san = (hwType = HW_TYPE, hwSerial = eui64ToBytes(DEVICE_EUI), critical = true) =>
  extension(OID.subjectAltName, critical, hardwareModuleNameSanValue(hwType, hwSerial));

type Fixture = 'root' | 'oca' | 'dca' | 'org' | 'device';

function base(kind: Fixture): { template: CertificateTemplate; signer: Signer } {
  const common = { serialNumber: serial(), tbsSignatureAlgorithm: ECDSA_WITH_SHA256, signatureAlgorithm: ECDSA_WITH_SHA256, notBefore: NB };
  switch (kind) {
    case 'root':
      return {
        signer: keys.root.signer,
        template: {
          ...common,
          issuer: ROOT_NAME,
          subject: ROOT_NAME,
          notAfter: gen('2054-01-01T00:00:00Z'),
          subjectPublicKey: { point: keys.root.point },
          extensions: [ku(['keyCertSign', 'cRLSign']), bc(true), cp([ORG_POLICY]), ski(keys.root.point)],
        },
      };
    case 'oca':
    case 'dca': {
      const k = kind === 'oca' ? keys.oca : keys.dca;
      return {
        signer: keys.root.signer,
        template: {
          ...common,
          issuer: { der: encodeName(ROOT_NAME) },
          subject: kind === 'oca' ? OCA_NAME : DCA_NAME,
          notAfter: utc('2044-01-01T00:00:00Z'),
          subjectPublicKey: { point: k.point },
          extensions: [
            ku(['keyCertSign', 'cRLSign']),
            bc(true, 0),
            cp([kind === 'oca' ? ORG_POLICY : DEVICE_POLICY]),
            ski(k.point),
            aki(keys.root.point),
          ],
        },
      };
    }
    case 'org':
      return {
        signer: keys.oca.signer,
        template: {
          ...common,
          issuer: { der: encodeName(OCA_NAME) },
          subject: { attributes: orgSubject() },
          notAfter: utc('2034-01-01T00:00:00Z'),
          subjectPublicKey: { point: keys.org.point },
          extensions: [ku(['digitalSignature']), cp([ORG_POLICY]), ski(keys.org.point), aki(keys.oca.point)],
        },
      };
    case 'device':
      return {
        signer: keys.dca.signer,
        template: {
          ...common,
          issuer: { der: encodeName(DCA_NAME) },
          subject: { attributes: [] },
          notAfter: DEVICE_NA,
          subjectPublicKey: { point: keys.device.point },
          extensions: [ku(['keyAgreement']), cp([DEVICE_POLICY]), san(), ski(keys.device.point), aki(keys.dca.point)],
        },
      };
  }
}

type Mut = (t: CertificateTemplate) => CertificateTemplate;

/** Replace the extension with this OID (or remove it when `ext` is undefined). */
const setExt =
  (oid: string, ext?: ExtensionTemplate): Mut =>
  (t) => ({ ...t, extensions: ext ? t.extensions.map((x) => (x.oid === oid ? ext : x)) : t.extensions.filter((x) => x.oid !== oid) });
const addExt =
  (ext: ExtensionTemplate): Mut =>
  (t) => ({ ...t, extensions: [...t.extensions, ext] });
const withSubject =
  (attributes: readonly NameAttributeTemplate[]): Mut =>
  (t) => ({ ...t, subject: { attributes } });
const both =
  (...muts: Mut[]): Mut =>
  (t) => muts.reduce((acc, m) => m(acc), t);

async function make(kind: Fixture, mut: Mut = (t) => t, signer?: Signer): Promise<SmkiCertificate> {
  const b = base(kind);
  return parseCertificate(await buildCertificate(mut(b.template), signer ?? b.signer));
}

const codes = (fs: readonly Finding[]): string[] => fs.map((f) => f.code);

/** A key of another algorithm or curve in an SPKI, with a matching method-2 SKI. */
function foreignKey(spki: Uint8Array): Mut {
  const bits = new Uint8Array(AsnConvert.parse(spki, SubjectPublicKeyInfo).subjectPublicKey);
  return both((t) => ({ ...t, subjectPublicKey: { spki } }), setExt(OID.subjectKeyIdentifier, ski(bits)));
}
const spkiOf = (k: KeyObject): Uint8Array => new Uint8Array(k.export({ type: 'spki', format: 'der' }));

const rawExt = (oid: string, critical: boolean, value: Uint8Array): ExtensionTemplate => ({ oid, critical, value });
const ser = (v: object): Uint8Array => new Uint8Array(AsnConvert.serialize(v));
const sanOf = (...names: GeneralName[]) => ser(new SubjectAlternativeName(names));
const hmnName = (hwType = HW_TYPE, hwSerial = eui64ToBytes(DEVICE_EUI)) => {
  const d = hardwareModuleNameDer(hwType, hwSerial);
  return new GeneralName({ otherName: new OtherName({ typeId: OID.hardwareModuleName, value: d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength) as ArrayBuffer }) });
};

// ---------------------------------------------------------------------------------------------

describe('lintCertificate: conformant certificates (docs/domain.md §2)', () => {
  it.each(['root', 'oca', 'dca', 'org', 'device'] as const)('a conformant %s lints clean', async (kind) => {
    const cert = await make(kind);
    expect(lintCertificate(cert)).toEqual([]);
  });

  it('classifies each fixture as the profile it is linted against', async () => {
    // docs/domain.md §2: OCA carries the organisation policy, DCA the device policy
    expect(certificateProfile(await make('root'))).toBe('root');
    expect(certificateProfile(await make('oca'))).toBe('organisationCa');
    expect(certificateProfile(await make('dca'))).toBe('deviceCa');
    expect(certificateProfile(await make('org'))).toBe('organisation');
    expect(certificateProfile(await make('device'))).toBe('device');
    expect(certificateProfile(await make('oca', setExt(OID.certificatePolicies, cp(['1.2.3.4']))))).toBe('issuingCa');
    expect(certificateProfile(await make('org'), { expectedKind: 'device' })).toBe('device');
  });

  it('accepts a keyAgreement organisation certificate and a digitalSignature device certificate', async () => {
    // docs/domain.md §2: exactly one of digitalSignature / keyAgreement
    expect(lintCertificate(await make('org', setExt(OID.keyUsage, ku(['keyAgreement']))))).toEqual([]);
    expect(lintCertificate(await make('device', setExt(OID.keyUsage, ku(['digitalSignature']))))).toEqual([]);
  });

  it('accepts an organisation subject without CN, and every known role', async () => {
    // docs/domain.md §2: CN optional; OU = Remote Party Role as two upper-case hex digits
    expect(lintCertificate(await make('org', withSubject(orgSubject().slice(1))))).toEqual([]);
    for (const role of ['01', '03', '04', '05', '06', '08', '7F', '87', '89']) {
      expect(lintCertificate(await make('org', withSubject(orgSubject(role)))), role).toEqual([]);
    }
  });

  it('accepts a DCA with an OU (the DCA has no role requirement) and a root without pathLen', async () => {
    expect(lintCertificate(await make('dca', withSubject([organizationalUnitAttribute('07'), commonNameAttribute('E357', 'printable')])))).toEqual([]);
    expect(lintCertificate(await make('root', setExt(OID.basicConstraints, bc(true, 1))))).toEqual([]);
  });

  it('accepts a root whose self-signature is high-S', async () => {
    // docs/domain.md §4: never reject high-S
    const n = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');
    const highS: Signer = {
      publicKey: keys.root.point,
      async sign(m) {
        const sig = await keys.root.signer.sign(m);
        const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`);
        const hs = s > n / 2n ? s : n - s;
        const out = new Uint8Array(64);
        out.set(sig.subarray(0, 32));
        out.set(Buffer.from(hs.toString(16).padStart(64, '0'), 'hex'), 32);
        return out;
      },
    };
    const cert = await make('root', undefined, highS);
    const s = BigInt(`0x${Buffer.from(derToP1363(cert.signature).subarray(32)).toString('hex')}`);
    expect(s > n / 2n).toBe(true);
    expect(lintCertificate(cert)).toEqual([]);
  });

  it('counts the DER content octets: a positive serial whose 16 octets need a 00 sign octet is 17 octets', async () => {
    // docs/domain.md §2 / RFC 5280 4.1.2.2: 16 content octets, top bit clear
    expect(codes(lintCertificate(await make('org', (t) => ({ ...t, serialNumber: Uint8Array.of(0, ...serial(0x91)) }))))).toEqual(['ERR_PROFILE_SERIAL_LENGTH']);
  });
});

describe('lintCertificate: what the issuance code produces (docs/domain.md §2)', () => {
  it('a hierarchy and its organisation and device certificates lint clean', async () => {
    const h = await createHierarchy();
    const org = await issueOrganisationCertificate({ issuer: h.organisationCa, role: 2, entityId: '90-B3-D5-1F-30-01-00-00', keyUsage: 'digitalSignature', commonName: 'Supplier A', publicKey: keys.org.point });
    const dev = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: '00DB1234567890A0', keyUsage: 'keyAgreement', publicKey: keys.device.point });
    for (const c of [h.root.certificate, h.organisationCa.certificate, h.deviceCa.certificate, org, dev]) {
      expect(lintCertificate(c), c.subject.text).toEqual([]);
    }
    expect(certificateProfile(h.organisationCa.certificate)).toBe('organisationCa');
    expect(certificateProfile(h.deviceCa.certificate)).toBe('deviceCa');
  });
});

// ---------------------------------------------------------------------------------------------

interface Case {
  readonly id: string;
  readonly kind: Fixture;
  readonly mut: Mut;
  readonly expected: readonly SmkiErrorCode[];
  readonly options?: LintOptions;
  readonly signer?: Signer;
}

const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
const ed25519 = generateKeyPairSync('ed25519').publicKey;
const offCurve = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1));
const compressed = Uint8Array.of(2, ...keys.org.point.subarray(1, 33));

const CASES: readonly Case[] = [
  // ---- RFC 5280 4.1.2.1; docs/domain.md §2: X.509 v3
  { id: 'version v1 (field omitted)', kind: 'org', mut: (t) => ({ ...t, version: 0 }), expected: ['ERR_PROFILE_VERSION'] },
  { id: 'version v2', kind: 'device', mut: (t) => ({ ...t, version: 1 }), expected: ['ERR_PROFILE_VERSION'] },
  // ---- docs/domain.md §2: id-ecPublicKey, P-256, uncompressed point (RFC 5480)
  { id: 'Ed25519 key', kind: 'org', mut: foreignKey(spkiOf(ed25519)), expected: ['ERR_PROFILE_KEY_ALGORITHM'] },
  { id: 'P-384 key', kind: 'device', mut: foreignKey(spkiOf(p384)), expected: ['ERR_PROFILE_KEY_CURVE'] },
  {
    id: 'point not on the curve',
    kind: 'org',
    mut: both((t) => ({ ...t, subjectPublicKey: { point: offCurve } }), setExt(OID.subjectKeyIdentifier, ski(offCurve))),
    expected: ['ERR_PROFILE_KEY_POINT'],
  },
  {
    id: 'compressed point',
    kind: 'device',
    mut: both((t) => ({ ...t, subjectPublicKey: { point: compressed } }), setExt(OID.subjectKeyIdentifier, ski(compressed))),
    expected: ['ERR_PROFILE_KEY_POINT'],
  },
  // ---- docs/domain.md §2: ecdsa-with-SHA256 only; RFC 5758 3.2: parameters absent; RFC 5280 4.1.1.2: tbs = outer
  {
    id: 'ecdsa-with-SHA384 in both places',
    kind: 'org',
    mut: (t) => ({ ...t, signatureAlgorithm: { oid: ECDSA_WITH_SHA384, params: 'absent' }, tbsSignatureAlgorithm: { oid: ECDSA_WITH_SHA384, params: 'absent' } }),
    expected: ['ERR_PROFILE_SIGNATURE_ALGORITHM'],
  },
  {
    id: 'tbs signature ecdsa-with-SHA384, outer ecdsa-with-SHA256',
    kind: 'org',
    mut: (t) => ({ ...t, tbsSignatureAlgorithm: { oid: ECDSA_WITH_SHA384, params: 'absent' } }),
    expected: ['ERR_PROFILE_SIGNATURE_ALGORITHM_MISMATCH'],
  },
  {
    id: 'explicit NULL only in tbsCertificate.signature',
    kind: 'device',
    mut: (t) => ({ ...t, tbsSignatureAlgorithm: { oid: OID.ecdsaWithSha256, params: 'null' } }),
    expected: ['ERR_PROFILE_SIGNATURE_ALGORITHM_MISMATCH'],
  },
  // ---- docs/domain.md §2: serial 16 octets, top bit clear; RFC 5280 4.1.2.2: positive
  { id: 'serial of 15 octets', kind: 'org', mut: (t) => ({ ...t, serialNumber: serial(0x11, 15) }), expected: ['ERR_PROFILE_SERIAL_LENGTH'] },
  { id: 'serial of 20 octets', kind: 'oca', mut: (t) => ({ ...t, serialNumber: serial(0x11, 20) }), expected: ['ERR_PROFILE_SERIAL_LENGTH'] },
  { id: 'negative serial', kind: 'device', mut: (t) => ({ ...t, serialNumber: serial(0x91) }), expected: ['ERR_PROFILE_SERIAL_NOT_POSITIVE'] },
  // ---- RFC 5280 4.1.2.5: validity
  {
    id: 'notBefore after notAfter',
    kind: 'org',
    mut: (t) => ({ ...t, notBefore: utc('2035-01-01T00:00:00Z') }),
    expected: ['ERR_PROFILE_VALIDITY_ORDER'],
  },
  { id: 'notAfter before 2050 as GeneralizedTime', kind: 'org', mut: (t) => ({ ...t, notAfter: gen('2034-01-01T00:00:00Z') }), expected: ['ERR_PROFILE_VALIDITY_ENCODING'] },
  { id: 'notBefore before 2050 as GeneralizedTime', kind: 'root', mut: (t) => ({ ...t, notBefore: gen('2024-01-01T00:00:00Z') }), expected: ['ERR_PROFILE_VALIDITY_ENCODING'] },
  // ---- RFC 5280 4.2: each extension at most once; unknown critical; values decode
  { id: 'subjectKeyIdentifier twice', kind: 'org', mut: addExt(ski(keys.org.point)), expected: ['ERR_PROFILE_EXTENSION_DUPLICATE'] },
  { id: 'keyUsage twice', kind: 'root', mut: addExt(ku(['keyCertSign', 'cRLSign'])), expected: ['ERR_PROFILE_EXTENSION_DUPLICATE'] },
  {
    id: 'keyUsage value truncated',
    kind: 'org',
    mut: setExt(OID.keyUsage, rawExt(OID.keyUsage, true, Uint8Array.of(0x03, 0x05, 0x00))),
    expected: ['ERR_PROFILE_EXTENSION_MALFORMED'],
  },
  {
    id: 'subjectKeyIdentifier value not an OCTET STRING',
    kind: 'device',
    mut: setExt(OID.subjectKeyIdentifier, rawExt(OID.subjectKeyIdentifier, false, Uint8Array.of(0x02, 0x01, 0x01))),
    expected: ['ERR_PROFILE_EXTENSION_MALFORMED'],
  },
  {
    id: 'authorityKeyIdentifier value truncated',
    kind: 'oca',
    mut: setExt(OID.authorityKeyIdentifier, rawExt(OID.authorityKeyIdentifier, false, Uint8Array.of(0x30, 0x0a, 0x80, 0x08))),
    expected: ['ERR_PROFILE_EXTENSION_MALFORMED'],
  },
  {
    id: 'certificatePolicies value not a SEQUENCE',
    kind: 'org',
    mut: setExt(OID.certificatePolicies, rawExt(OID.certificatePolicies, true, Uint8Array.of(0x05, 0x00))),
    expected: ['ERR_PROFILE_EXTENSION_MALFORMED'],
  },
  { id: 'unknown critical extension (end entity)', kind: 'org', mut: addExt(rawExt('1.2.3.4', true, Uint8Array.of(5, 0))), expected: ['ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL'] },
  {
    id: 'critical nameConstraints on a CA',
    kind: 'oca',
    mut: addExt(rawExt('2.5.29.30', true, Uint8Array.of(0x30, 0x00))),
    expected: ['ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL'],
  },
  // ---- docs/domain.md §2: no extendedKeyUsage, CRL distribution point or AIA on end-entity certificates
  {
    id: 'extendedKeyUsage on an organisation certificate',
    kind: 'org',
    mut: addExt(rawExt(OID.extKeyUsage, false, Uint8Array.of(0x30, 0x0a, 0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 3, 2))),
    expected: ['ERR_PROFILE_EXTENSION_FORBIDDEN'],
  },
  {
    id: 'critical extendedKeyUsage on a device certificate',
    kind: 'device',
    mut: addExt(rawExt(OID.extKeyUsage, true, Uint8Array.of(0x30, 0x0a, 0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 3, 2))),
    expected: ['ERR_PROFILE_EXTENSION_FORBIDDEN'],
  },
  {
    id: 'cRLDistributionPoints on a device certificate',
    kind: 'device',
    mut: addExt(rawExt(OID.cRLDistributionPoints, false, Uint8Array.of(0x30, 0x00))),
    expected: ['ERR_PROFILE_EXTENSION_FORBIDDEN'],
  },
  {
    id: 'authorityInfoAccess on an organisation certificate',
    kind: 'org',
    mut: addExt(rawExt(OID.authorityInfoAccess, false, Uint8Array.of(0x30, 0x00))),
    expected: ['ERR_PROFILE_EXTENSION_FORBIDDEN'],
  },
  // ---- docs/domain.md §2: keyUsage present, critical; RFC 5280 4.2.1.3
  { id: 'keyUsage absent (organisation)', kind: 'org', mut: setExt(OID.keyUsage), expected: ['ERR_PROFILE_KEY_USAGE_MISSING'] },
  { id: 'keyUsage absent (root)', kind: 'root', mut: setExt(OID.keyUsage), expected: ['ERR_PROFILE_KEY_USAGE_MISSING'] },
  { id: 'keyUsage not critical', kind: 'device', mut: setExt(OID.keyUsage, ku(['keyAgreement'], false)), expected: ['ERR_PROFILE_KEY_USAGE_NOT_CRITICAL'] },
  { id: 'CA keyUsage with digitalSignature', kind: 'oca', mut: setExt(OID.keyUsage, ku(['digitalSignature', 'keyCertSign', 'cRLSign'])), expected: ['ERR_PROFILE_KEY_USAGE_INVALID'] },
  { id: 'CA keyUsage without cRLSign', kind: 'root', mut: setExt(OID.keyUsage, ku(['keyCertSign'])), expected: ['ERR_PROFILE_KEY_USAGE_INVALID'] },
  { id: 'end-entity keyUsage with nonRepudiation', kind: 'org', mut: setExt(OID.keyUsage, ku(['digitalSignature', 'nonRepudiation'])), expected: ['ERR_PROFILE_KEY_USAGE_INVALID'] },
  // RFC 5280 4.2.1.3: keyCertSign only with cA TRUE (linted as the organisation certificate it claims to be)
  {
    id: 'organisation certificate asserting keyCertSign',
    kind: 'org',
    mut: setExt(OID.keyUsage, ku(['digitalSignature', 'keyCertSign'])),
    options: { expectedKind: 'organisation' },
    expected: ['ERR_PROFILE_KEY_CERT_SIGN_NOT_CA'],
  },
  // RFC 5280 4.2.1.11: policyConstraints MUST be critical
  {
    id: 'CA with a non-critical policyConstraints',
    kind: 'oca',
    mut: addExt(rawExt('2.5.29.36', false, Uint8Array.of(0x30, 0x03, 0x80, 0x01, 0x00))),
    expected: ['ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL'],
  },
  { id: 'both digitalSignature and keyAgreement', kind: 'org', mut: setExt(OID.keyUsage, ku(['digitalSignature', 'keyAgreement'])), expected: ['ERR_PROFILE_KEY_USAGE_NOT_SINGLE'] },
  { id: 'device keyUsage with neither', kind: 'device', mut: setExt(OID.keyUsage, ku([])), expected: ['ERR_PROFILE_KEY_USAGE_NOT_SINGLE'] },
  // ---- docs/domain.md §2: certificatePolicies present, critical, environment OIDs; device exactly one
  { id: 'certificatePolicies absent', kind: 'org', mut: setExt(OID.certificatePolicies), expected: ['ERR_PROFILE_POLICIES_MISSING'] },
  { id: 'certificatePolicies empty', kind: 'device', mut: setExt(OID.certificatePolicies, cp([])), expected: ['ERR_PROFILE_POLICIES_MISSING'] },
  { id: 'certificatePolicies not critical', kind: 'oca', mut: setExt(OID.certificatePolicies, cp([ORG_POLICY], false)), expected: ['ERR_PROFILE_POLICIES_NOT_CRITICAL'] },
  { id: 'device policy on an organisation certificate', kind: 'org', mut: setExt(OID.certificatePolicies, cp([DEVICE_POLICY])), expected: ['ERR_PROFILE_POLICY_NOT_ALLOWED'] },
  { id: 'organisation policy on a device certificate', kind: 'device', mut: setExt(OID.certificatePolicies, cp([ORG_POLICY])), expected: ['ERR_PROFILE_POLICY_NOT_ALLOWED'] },
  { id: 'unknown policy on the root', kind: 'root', mut: setExt(OID.certificatePolicies, cp(['1.2.3.4'])), expected: ['ERR_PROFILE_POLICY_NOT_ALLOWED'] },
  { id: 'unknown policy on an issuing CA', kind: 'oca', mut: setExt(OID.certificatePolicies, cp(['1.2.3.4'])), expected: ['ERR_PROFILE_POLICY_NOT_ALLOWED'] },
  {
    id: 'an extra unknown policy on an organisation certificate',
    kind: 'org',
    mut: setExt(OID.certificatePolicies, cp([ORG_POLICY, '1.2.3.4'])),
    expected: ['ERR_PROFILE_POLICY_NOT_ALLOWED'],
  },
  { id: 'policy OID twice (RFC 5280 4.2.1.4)', kind: 'org', mut: setExt(OID.certificatePolicies, cp([ORG_POLICY, ORG_POLICY])), expected: ['ERR_PROFILE_POLICY_DUPLICATE'] },
  { id: 'device policy OID twice', kind: 'device', mut: setExt(OID.certificatePolicies, cp([DEVICE_POLICY, DEVICE_POLICY])), expected: ['ERR_PROFILE_POLICY_DUPLICATE'] },
  {
    id: 'device with two allowed policies',
    kind: 'device',
    mut: setExt(OID.certificatePolicies, cp([DEVICE_POLICY, '1.2.3.5'])),
    options: { environment: defineEnvironment({ name: 'two-device-policies', devicePolicies: [DEVICE_POLICY, '1.2.3.5'] }) },
    expected: ['ERR_PROFILE_POLICY_COUNT'],
  },
  // ---- docs/domain.md §2; RFC 5280 4.2.1.2: SKI non-critical, 8 octets, method 2
  { id: 'SKI absent (device)', kind: 'device', mut: setExt(OID.subjectKeyIdentifier), expected: ['ERR_PROFILE_SKI_MISSING'] },
  { id: 'SKI absent (root)', kind: 'root', mut: setExt(OID.subjectKeyIdentifier), expected: ['ERR_PROFILE_SKI_MISSING'] },
  { id: 'SKI critical', kind: 'org', mut: setExt(OID.subjectKeyIdentifier, ski(keys.org.point, true)), expected: ['ERR_PROFILE_SKI_CRITICAL'] },
  {
    id: 'SKI of 20 octets (method 1)',
    kind: 'org',
    mut: setExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(new Uint8Array(20).fill(7)))),
    expected: ['ERR_PROFILE_SKI_LENGTH'],
  },
  { id: 'SKI of another key', kind: 'dca', mut: setExt(OID.subjectKeyIdentifier, ski(keys.other.point)), expected: ['ERR_PROFILE_SKI_METHOD'] },
  // ---- docs/domain.md §2; RFC 5280 4.2.1.1: AKI [0] keyIdentifier only, non-critical, absent only on the root
  { id: 'AKI absent (organisation)', kind: 'org', mut: setExt(OID.authorityKeyIdentifier), expected: ['ERR_PROFILE_AKI_MISSING'] },
  { id: 'AKI absent (issuing CA)', kind: 'dca', mut: setExt(OID.authorityKeyIdentifier), expected: ['ERR_PROFILE_AKI_MISSING'] },
  { id: 'AKI critical', kind: 'device', mut: setExt(OID.authorityKeyIdentifier, aki(keys.dca.point, true)), expected: ['ERR_PROFILE_AKI_CRITICAL'] },
  {
    id: 'AKI with authorityCertIssuer and serial',
    kind: 'org',
    mut: setExt(
      OID.authorityKeyIdentifier,
      rawExt(
        OID.authorityKeyIdentifier,
        false,
        ser(
          new AuthorityKeyIdentifier({
            keyIdentifier: new KeyIdentifier(keyIdMethod2(keys.oca.point)),
            authorityCertIssuer: [new GeneralName({ dNSName: 'oca.example' })],
            authorityCertSerialNumber: Uint8Array.of(1).buffer,
          }),
        ),
      ),
    ),
    expected: ['ERR_PROFILE_AKI_FORM'],
  },
  {
    id: 'AKI without keyIdentifier',
    kind: 'org',
    mut: setExt(
      OID.authorityKeyIdentifier,
      rawExt(OID.authorityKeyIdentifier, false, ser(new AuthorityKeyIdentifier({ authorityCertIssuer: [new GeneralName({ dNSName: 'oca.example' })], authorityCertSerialNumber: Uint8Array.of(1).buffer }))),
    ),
    expected: ['ERR_PROFILE_AKI_FORM'],
  },
  {
    id: 'AKI keyIdentifier of 20 octets',
    kind: 'org',
    mut: setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(new Uint8Array(20).fill(9)))),
    expected: ['ERR_PROFILE_AKI_FORM'],
  },
  // ---- docs/domain.md §2; RFC 5280 4.2.1.9: basicConstraints
  { id: 'CA basicConstraints absent (linted as issuing CA)', kind: 'oca', mut: setExt(OID.basicConstraints), options: { expectedKind: 'issuingCa' }, expected: ['ERR_PROFILE_BASIC_CONSTRAINTS_MISSING'] },
  { id: 'CA basicConstraints not critical', kind: 'oca', mut: setExt(OID.basicConstraints, bc(true, 0, false)), expected: ['ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CRITICAL'] },
  { id: 'root basicConstraints not critical', kind: 'root', mut: setExt(OID.basicConstraints, bc(true, undefined, false)), expected: ['ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CRITICAL'] },
  { id: 'CA basicConstraints cA FALSE (linted as issuing CA)', kind: 'dca', mut: setExt(OID.basicConstraints, bc(false)), options: { expectedKind: 'issuingCa' }, expected: ['ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CA'] },
  { id: 'issuing CA without pathLenConstraint', kind: 'oca', mut: setExt(OID.basicConstraints, bc(true)), expected: ['ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH'] },
  { id: 'issuing CA with pathLenConstraint 1', kind: 'dca', mut: setExt(OID.basicConstraints, bc(true, 1)), expected: ['ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH'] },
  { id: 'end entity asserting cA (linted as organisation)', kind: 'org', mut: addExt(bc(true, undefined, true)), options: { expectedKind: 'organisation' }, expected: ['ERR_PROFILE_END_ENTITY_IS_CA'] },
  { id: 'end entity asserting cA (linted as device)', kind: 'device', mut: addExt(bc(true, undefined, true)), options: { expectedKind: 'device' }, expected: ['ERR_PROFILE_END_ENTITY_IS_CA'] },
  // ---- kind
  { id: 'subject with only a CN (no SMKI kind)', kind: 'org', mut: withSubject([commonNameAttribute('nobody')]), expected: ['ERR_PROFILE_UNKNOWN_KIND'] },
  // ---- docs/domain.md §2: root self-issued and self-signed, OU 00
  { id: 'root signed by another key', kind: 'root', mut: (t) => t, signer: keys.other.signer, expected: ['ERR_PROFILE_ROOT_NOT_SELF_SIGNED'] },
  { id: 'root OU 01', kind: 'root', mut: (t) => ({ ...t, issuer: { attributes: [organizationalUnitAttribute('01')] }, subject: { attributes: [organizationalUnitAttribute('01')] } }), expected: ['ERR_PROFILE_ROOT_ROLE'] },
  { id: 'root without OU', kind: 'root', mut: (t) => ({ ...t, issuer: { attributes: [commonNameAttribute('ZA', 'printable')] }, subject: { attributes: [commonNameAttribute('ZA', 'printable')] } }), expected: ['ERR_PROFILE_ROOT_ROLE'] },
  { id: 'root OU 0 (decimal)', kind: 'root', mut: (t) => ({ ...t, issuer: { attributes: [organizationalUnitAttribute('0')] }, subject: { attributes: [organizationalUnitAttribute('0')] } }), expected: ['ERR_PROFILE_ROOT_ROLE'] },
  // ---- docs/domain.md §2: OCA OU 07
  { id: 'OCA OU 02', kind: 'oca', mut: withSubject([organizationalUnitAttribute('02'), commonNameAttribute('Z1', 'printable')]), expected: ['ERR_PROFILE_OCA_ROLE'] },
  { id: 'OCA without OU', kind: 'oca', mut: withSubject([commonNameAttribute('Z1', 'printable')]), expected: ['ERR_PROFILE_OCA_ROLE'] },
  // ---- docs/domain.md §2: organisation subject
  { id: 'organisation without OU', kind: 'org', mut: withSubject([commonNameAttribute('Supplier A'), entityIdAttribute(ORG_EUI)]), expected: ['ERR_PROFILE_ORG_ROLE_MISSING'] },
  { id: 'organisation role in decimal (2)', kind: 'org', mut: withSubject(orgSubject('2')), expected: ['ERR_PROFILE_ORG_ROLE_FORMAT'] },
  { id: 'organisation role in decimal (127)', kind: 'org', mut: withSubject(orgSubject('127')), expected: ['ERR_PROFILE_ORG_ROLE_FORMAT'] },
  { id: 'organisation role in lower-case hex (7f)', kind: 'org', mut: withSubject(orgSubject('7f')), expected: ['ERR_PROFILE_ORG_ROLE_FORMAT'] },
  { id: 'organisation role unknown (09)', kind: 'org', mut: withSubject(orgSubject('09')), expected: ['ERR_PROFILE_ORG_ROLE_UNKNOWN'] },
  { id: 'organisation without x500UniqueIdentifier', kind: 'org', mut: withSubject(orgSubject().slice(0, 2)), expected: ['ERR_PROFILE_ORG_ENTITY_ID_MISSING'] },
  {
    id: 'x500UniqueIdentifier of 63 bits',
    kind: 'org',
    mut: withSubject([...orgSubject().slice(0, 2), { oid: OID.x500UniqueIdentifier, value: { encoding: 'bitstring', bytes: eui64ToBytes(ORG_EUI), bitLength: 63 } }]),
    expected: ['ERR_PROFILE_ORG_ENTITY_ID_FORMAT'],
  },
  {
    id: 'x500UniqueIdentifier of 72 bits',
    kind: 'org',
    mut: withSubject([...orgSubject().slice(0, 2), { oid: OID.x500UniqueIdentifier, value: { encoding: 'bitstring', bytes: new Uint8Array(9).fill(0x11), bitLength: 72 } }]),
    expected: ['ERR_PROFILE_ORG_ENTITY_ID_FORMAT'],
  },
  {
    id: 'x500UniqueIdentifier as an OCTET STRING',
    kind: 'org',
    mut: withSubject([...orgSubject().slice(0, 2), { oid: OID.x500UniqueIdentifier, value: { encoding: 'raw', der: Uint8Array.of(0x04, 0x08, ...eui64ToBytes(ORG_EUI)) } }]),
    expected: ['ERR_PROFILE_ORG_ENTITY_ID_FORMAT'],
  },
  { id: 'organisation CN as PrintableString', kind: 'org', mut: withSubject([commonNameAttribute('Supplier A', 'printable'), ...orgSubject().slice(1)]), expected: ['ERR_PROFILE_ORG_CN_ENCODING'] },
  { id: 'organisation subject with O', kind: 'org', mut: withSubject([...orgSubject(), printable('2.5.4.10', 'Energy Co')]), expected: ['ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE'] },
  { id: 'organisation subject with two OUs', kind: 'org', mut: withSubject([...orgSubject(), organizationalUnitAttribute('03')]), expected: ['ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE'] },
  // ---- docs/domain.md §2; GBCS 12: device
  { id: 'device subject with a CN', kind: 'device', mut: withSubject([commonNameAttribute('meter')]), expected: ['ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY'] },
  { id: 'device notAfter 2049 as UTCTime', kind: 'device', mut: (t) => ({ ...t, notAfter: utc('2049-12-31T23:59:59Z') }), expected: ['ERR_PROFILE_DEVICE_NOT_AFTER'] },
  { id: 'device notAfter one second early', kind: 'device', mut: (t) => ({ ...t, notAfter: gen('9999-12-31T23:59:58Z') }), expected: ['ERR_PROFILE_DEVICE_NOT_AFTER'] },
  { id: 'device without subjectAltName', kind: 'device', mut: setExt(OID.subjectAltName), expected: ['ERR_PROFILE_DEVICE_SAN_MISSING'] },
  { id: 'device subjectAltName not critical', kind: 'device', mut: setExt(OID.subjectAltName, san(HW_TYPE, eui64ToBytes(DEVICE_EUI), false)), expected: ['ERR_PROFILE_DEVICE_SAN_NOT_CRITICAL'] },
  {
    id: 'device subjectAltName with hardwareModuleName and a dNSName',
    kind: 'device',
    mut: setExt(OID.subjectAltName, rawExt(OID.subjectAltName, true, sanOf(hmnName(), new GeneralName({ dNSName: 'meter.example' })))),
    expected: ['ERR_PROFILE_DEVICE_SAN_FORM'],
  },
  {
    id: 'device subjectAltName with only a dNSName',
    kind: 'device',
    mut: setExt(OID.subjectAltName, rawExt(OID.subjectAltName, true, sanOf(new GeneralName({ dNSName: 'meter.example' })))),
    expected: ['ERR_PROFILE_DEVICE_SAN_FORM'],
  },
  {
    id: 'device subjectAltName with two hardwareModuleNames',
    kind: 'device',
    mut: setExt(OID.subjectAltName, rawExt(OID.subjectAltName, true, sanOf(hmnName(), hmnName()))),
    expected: ['ERR_PROFILE_DEVICE_SAN_FORM'],
  },
  {
    id: 'device subjectAltName value truncated',
    kind: 'device',
    mut: setExt(OID.subjectAltName, rawExt(OID.subjectAltName, true, Uint8Array.of(0x30, 0x10, 0xa0))),
    expected: ['ERR_PROFILE_EXTENSION_MALFORMED'],
  },
  { id: 'hwSerialNum of 7 octets', kind: 'device', mut: setExt(OID.subjectAltName, san(HW_TYPE, new Uint8Array(7).fill(1))), expected: ['ERR_PROFILE_DEVICE_HW_SERIAL'] },
  { id: 'hwType not allowed', kind: 'device', mut: setExt(OID.subjectAltName, san('1.2.3.4')), expected: ['ERR_PROFILE_DEVICE_HW_TYPE'] },
];

describe('lintCertificate: one broken rule, one code', () => {
  it.each(CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    const cert = await make(c.kind, c.mut, c.signer);
    const findings = lintCertificate(cert, c.options);
    expect(codes(findings)).toEqual(c.expected);
    for (const f of findings) expect(f.severity).toBe('error');
  });

  it('covers every ERR_PROFILE_ code with a case (or a dedicated test below)', () => {
    const covered = new Set<string>([
      ...CASES.flatMap((c) => c.expected),
      'ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', // warning: tested below
      'ERR_PROFILE_AKI_ON_ROOT', // warning: tested below
      'ERR_PROFILE_AKI_ROOT_MISMATCH', // an error beside the ERR_PROFILE_AKI_ON_ROOT warning: tested below
    ]);
    const all = Object.keys(SMKI_ERROR_CODES).filter((k) => k.startsWith('ERR_PROFILE_'));
    expect(all.filter((k) => !covered.has(k))).toEqual([]);
  });
});

describe('lintCertificate: tolerated quirks are warnings', () => {
  it('explicit NULL signature parameters (docs/domain.md §2: tolerate, never emit; RFC 5758 3.2)', async () => {
    const nullAlg = { oid: OID.ecdsaWithSha256, params: 'null' } as const;
    const cert = await make('org', (t) => ({ ...t, signatureAlgorithm: nullAlg, tbsSignatureAlgorithm: nullAlg }));
    const findings = lintCertificate(cert);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ code: 'ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', severity: 'warning' });
    expect(findings[0]?.message).toMatch(/signatureAlgorithm\.parameters/);
  });

  it('explicit NULL on a root still verifies its self-signature', async () => {
    const nullAlg = { oid: OID.ecdsaWithSha256, params: 'null' } as const;
    const cert = await make('root', (t) => ({ ...t, signatureAlgorithm: nullAlg, tbsSignatureAlgorithm: nullAlg }));
    expect(lintCertificate(cert).map((f) => [f.code, f.severity])).toEqual([['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS', 'warning']]);
  });

  it('authorityKeyIdentifier on the self-signed root (RFC 5280 4.2.1.1 allows it; docs/domain.md §2: the root has none)', async () => {
    const cert = await make('root', addExt(aki(keys.root.point)));
    const findings = lintCertificate(cert);
    expect(findings.map((f) => [f.code, f.severity])).toEqual([['ERR_PROFILE_AKI_ON_ROOT', 'warning']]);
  });

  it('an AKI on the root naming another key is an error beside the warning (RFC 5280 4.2.1.1)', async () => {
    const cert = await make('root', addExt(aki(keys.other.point)));
    expect(lintCertificate(cert).map((f) => [f.code, f.severity])).toEqual([
      ['ERR_PROFILE_AKI_ON_ROOT', 'warning'],
      ['ERR_PROFILE_AKI_ROOT_MISMATCH', 'error'],
    ]);
  });

  it('a critical AKI on the root is an error as well as the warning', async () => {
    const cert = await make('root', addExt(aki(keys.root.point, true)));
    expect(lintCertificate(cert).map((f) => [f.code, f.severity])).toEqual([
      ['ERR_PROFILE_AKI_ON_ROOT', 'warning'],
      ['ERR_PROFILE_AKI_CRITICAL', 'error'],
    ]);
  });
});

describe('lintCertificate: several breaks, kinds and environments', () => {
  it('a decimal role is read leniently by parse but is a profile error (docs/domain.md §2: two upper-case hex digits)', async () => {
    const cert = await make('org', withSubject(orgSubject('2')));
    expect(cert.role).toBe(2);
    const [f] = lintCertificate(cert);
    expect(f).toMatchObject({ code: 'ERR_PROFILE_ORG_ROLE_FORMAT', severity: 'error' });
    expect(f?.message).toContain('"2"');
  });

  it('a zero serial is both too short and not positive (RFC 5280 4.1.2.2)', async () => {
    const cert = await make('org', (t) => ({ ...t, serialNumber: Uint8Array.of(0) }));
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_SERIAL_LENGTH', 'ERR_PROFILE_SERIAL_NOT_POSITIVE']);
  });

  it('without expectedKind, an OCA with no basicConstraints is an unknown kind that asserts keyCertSign without cA (RFC 5280 4.2.1.3)', async () => {
    const cert = await make('oca', setExt(OID.basicConstraints));
    expect(cert.kind).toBe('unknown');
    expect(codes(lintCertificate(cert))).toEqual(['ERR_PROFILE_UNKNOWN_KIND', 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA']);
  });

  it('expectedKind root on an issuing CA: not self-issued, AKI present, wrong OU', async () => {
    const cert = await make('oca');
    const findings = lintCertificate(cert, { expectedKind: 'root' });
    expect(codes(findings)).toEqual(['ERR_PROFILE_AKI_ON_ROOT', 'ERR_PROFILE_ROOT_NOT_SELF_SIGNED', 'ERR_PROFILE_ROOT_ROLE']);
  });

  it('expectedKind organisation on a device certificate reports the organisation subject rules', async () => {
    const cert = await make('device');
    expect(codes(lintCertificate(cert, { expectedKind: 'organisation' }))).toEqual([
      'ERR_PROFILE_POLICY_NOT_ALLOWED',
      'ERR_PROFILE_ORG_ROLE_MISSING',
      'ERR_PROFILE_ORG_ENTITY_ID_MISSING',
    ]);
  });

  it('expectedKind unknown reports the unknown kind', async () => {
    expect(codes(lintCertificate(await make('org'), { expectedKind: 'unknown' }))).toEqual(['ERR_PROFILE_UNKNOWN_KIND']);
  });

  it('reads the environment: production policy OIDs and hwTypes (docs/domain.md §2: per-environment)', async () => {
    const prod = defineEnvironment({ name: 'production', organisationPolicies: ['1.2.3.1'], devicePolicies: ['1.2.3.2'], deviceHwTypes: ['1.2.3.9'] });
    const device = await make('device');
    const findings = lintCertificate(device, { environment: prod });
    expect(codes(findings)).toEqual(['ERR_PROFILE_POLICY_NOT_ALLOWED', 'ERR_PROFILE_DEVICE_HW_TYPE']);
    expect(findings[0]?.message).toContain("'production'");
    // an empty hwType list allows any OID
    expect(lintCertificate(await make('device', setExt(OID.subjectAltName, san('1.2.3.4'))), { environment: defineEnvironment({ name: 'any-hw', deviceHwTypes: [] }) })).toEqual([]);
    // rootPolicies, when set, replace the union
    const rootOnly = defineEnvironment({ name: 'root-policy', rootPolicies: ['1.2.3.7'] });
    expect(codes(lintCertificate(await make('root'), { environment: rootOnly }))).toEqual(['ERR_PROFILE_POLICY_NOT_ALLOWED']);
    expect(lintCertificate(await make('root', setExt(OID.certificatePolicies, cp(['1.2.3.7']))), { environment: rootOnly })).toEqual([]);
    // the root accepts the device policy too when rootPolicies is empty
    expect(lintCertificate(await make('root', setExt(OID.certificatePolicies, cp([DEVICE_POLICY]))))).toEqual([]);
  });

  it('every finding message names a field', async () => {
    const cert = await make('org', both(setExt(OID.keyUsage, ku(['digitalSignature', 'keyAgreement'], false)), withSubject([printable('2.5.4.10', 'X'), organizationalUnitAttribute('2')]), setExt(OID.subjectKeyIdentifier)));
    const findings = lintCertificate(cert);
    expect(findings.length).toBeGreaterThan(3);
    for (const f of findings) expect(f.message).toMatch(/^(kind|version|subjectPublicKey|signatureAlgorithm|tbsCertificate|serialNumber|validity|extensions|keyUsage|certificatePolicies|subjectKeyIdentifier|authorityKeyIdentifier|basicConstraints|issuer|signatureValue|subject|subjectAltName)\b[^:]*: /);
  });
});

describe('lintCertificate: inputs, caching and robustness', () => {
  it('accepts PEM and DER as well as a parsed certificate', async () => {
    const cert = await make('device', setExt(OID.subjectKeyIdentifier));
    expect(codes(lintCertificate(cert.der))).toEqual(['ERR_PROFILE_SKI_MISSING']);
    expect(codes(lintCertificate(certificateToPem(cert)))).toEqual(['ERR_PROFILE_SKI_MISSING']);
  });

  it('throws the parse error for PEM/DER that does not parse, and refuses look-alike objects', () => {
    let e: unknown;
    try {
      lintCertificate(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01));
    } catch (err) {
      e = err;
    }
    expect(isSmkiError(e, 'ERR_CERT_MALFORMED')).toBe(true);
    expect(() => lintCertificate('-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n')).toThrow(SmkiError);
    try {
      lintCertificate({ kind: 'root' } as unknown as SmkiCertificate);
      e = undefined;
    } catch (err) {
      e = err;
    }
    expect(isSmkiError(e, 'ERR_INVALID_ARGUMENT')).toBe(true);
  });

  it('returns frozen findings, cached per certificate, environment and expected kind', async () => {
    const cert = await make('org', setExt(OID.subjectKeyIdentifier));
    const a = lintCertificate(cert);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a[0])).toBe(true);
    expect(lintCertificate(cert)).toBe(a);
    expect(lintCertificate(cert, { environment: TEST_ENVIRONMENT })).toBe(a);
    const other = defineEnvironment({ name: 'other', organisationPolicies: ['1.2.3.1'] });
    expect(codes(lintCertificate(cert, { environment: other }))).toEqual(['ERR_PROFILE_POLICY_NOT_ALLOWED', 'ERR_PROFILE_SKI_MISSING']);
    expect(lintCertificate(cert)).toBe(a);
    expect(lintCertificate(cert, { expectedKind: 'device' })).not.toBe(a);
    const clean = lintCertificate(await make('org'));
    expect(Object.isFrozen(clean)).toBe(true);
  });

  it('never throws on a certificate that parses, whatever its bytes (property)', async () => {
    const seeds = await Promise.all((['root', 'oca', 'dca', 'org', 'device'] as const).map((k) => make(k)));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (which, flips) => {
        const der = new Uint8Array((seeds[which] as SmkiCertificate).der);
        for (const [pos, val] of flips) der[pos % der.length] = val;
        let cert: SmkiCertificate;
        try {
          cert = parseCertificate(der);
        } catch {
          return true;
        }
        const findings = lintCertificate(cert);
        for (const kind of ['root', 'issuingCa', 'organisation', 'device', 'unknown'] as CertificateKind[]) lintCertificate(cert, { expectedKind: kind });
        return Array.isArray(findings) && findings.every((f) => typeof f.code === 'string' && f.code.startsWith('ERR_PROFILE_'));
      }),
      { seed: 5280, numRuns: 1500 },
    );
  });

  it('lints a conformant path clean, and every repeat is the cached result (how fast: bench/run.ts)', async () => {
    const certs = await Promise.all((['root', 'oca', 'org'] as const).map((k) => make(k)));
    const first = certs.map((c) => lintCertificate(c));
    for (const f of first) expect(f.filter((x) => x.severity === 'error')).toEqual([]);
    for (let i = 0; i < 3; i++) certs.forEach((c, j) => expect(lintCertificate(c)).toBe(first[j]));
  });
});
