// docs/domain.md §2 (SMKI certificate profiles); RFC 5280 §4.1, §4.2.1; RFC 4108 §5 (hardwareModuleName).
// Every issued field is checked by decoding the DER here, independently of parse.ts, with
// OpenSSL as a second opinion.
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { Attribute, Extension, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import {
  ByteReader,
  createKeySigner,
  p1363ToDer,
  parseEui64,
  readTlv,
  SmkiError,
  type SmkiErrorCode,
  type Signer,
} from '@smki/core';
import { createCsr } from '../src/csr.js';
import { defineEnvironment, TEST_ENVIRONMENT } from '../src/environment.js';
import {
  createHierarchy,
  issueCaCertificate,
  issueDeviceCertificate,
  issueOrganisationCertificate,
  issueRootCertificate,
  type SmkiHierarchy,
} from '../src/issue.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  ECDSA_WITH_SHA256,
  encodeTime,
  hardwareModuleNameSanValue,
  keyUsageValue,
  rfc5280Time,
  type CertificateTemplate,
} from '../src/internal/build.js';
import { entityIdAttribute } from '../src/internal/name.js';
import { lintCertificate } from '../src/lint.js';
import { parseCertificate } from '../src/parse.js';

// ---------------------------------------------------------------------------------------------
// An independent DER walker (core's readTlv only), so the checks do not go through parse.ts.

interface Node {
  tag: number;
  /** Whole TLV. */
  der: Uint8Array;
  /** Value octets. */
  value: Uint8Array;
  children: Node[];
}

function tree(der: Uint8Array, depth = 0): Node {
  const r = new ByteReader(der);
  const t = readTlv(r);
  expect(r.done).toBe(true);
  const value = der.subarray(t.valueStart, t.end);
  const children: Node[] = [];
  if (t.tag & 0x20 && depth < 20) {
    const cr = new ByteReader(der, t.valueStart, t.end);
    while (!cr.done) {
      const c = readTlv(cr);
      children.push(tree(der.subarray(c.start, c.end), depth + 1));
    }
  }
  return { tag: t.tag, der: der.subarray(t.start, t.end), value, children };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
const at = (n: Node, ...path: number[]): Node => path.reduce((x, i) => x.children[i] as Node, n);

interface DecodedExtension {
  oid: string;
  critical: boolean;
  criticalEncoded: boolean;
  value: Uint8Array;
}

const OIDS: Record<string, string> = {
  '0603551D13': 'basicConstraints',
  '0603551D0F': 'keyUsage',
  '0603551D20': 'certificatePolicies',
  '0603551D0E': 'subjectKeyIdentifier',
  '0603551D23': 'authorityKeyIdentifier',
  '0603551D11': 'subjectAltName',
};

/** The certificate split into its RFC 5280 §4.1 fields. */
function decode(der: Uint8Array) {
  const cert = tree(der);
  expect(cert.tag).toBe(0x30);
  expect(cert.children).toHaveLength(3);
  const tbs = at(cert, 0);
  const [version, serial, tbsAlg, issuer, validity, subject, spki, exts] = tbs.children as [Node, Node, Node, Node, Node, Node, Node, Node];
  expect(tbs.children).toHaveLength(8);
  expect(version.tag).toBe(0xa0);
  expect(exts.tag).toBe(0xa3);
  const extensions: DecodedExtension[] = at(exts, 0).children.map((e) => {
    const oid = OIDS[hex(at(e, 0).der)] ?? hex(at(e, 0).der);
    const criticalEncoded = e.children.length === 3;
    const critical = criticalEncoded && hex(at(e, 1).der) === '0101FF';
    const v = e.children[e.children.length - 1] as Node;
    expect(v.tag).toBe(0x04);
    return { oid, critical, criticalEncoded, value: v.value };
  });
  return {
    cert,
    tbs,
    versionDer: hex(version.der),
    serial,
    tbsAlgDer: hex(tbsAlg.der),
    outerAlgDer: hex(at(cert, 1).der),
    signature: at(cert, 2),
    issuerDer: hex(issuer.der),
    subjectDer: hex(subject.der),
    notBefore: at(validity, 0),
    notAfter: at(validity, 1),
    spkiDer: hex(spki.der),
    extensions,
  };
}

const time = (n: Node): { tag: number; text: string } => ({ tag: n.tag, text: Buffer.from(n.value).toString('latin1') });

/** RFC 5280 §4.2.1.2 method 2, computed here independently of internal/keyid.ts. */
function method2(point: Uint8Array): string {
  const d = createHash('sha1').update(point).digest();
  const id = Buffer.from(d.subarray(12));
  id[0] = 0x40 | ((id[0] as number) & 0x0f);
  return id.toString('hex').toUpperCase();
}

const P256_SPKI_PREFIX = '3059301306072A8648CE3D020106082A8648CE3D030107034200';
const ECDSA_SHA256_ALG = '300A06082A8648CE3D040302';
const ORG_POLICY = '060D2A863A0001848FB90F01020104'; // 1.2.826.0.1.8641679.1.2.1.4
const DEVICE_POLICY = '060C2A863A0001EDEE4001020104'; // 1.2.826.0.1.1800000.1.2.1.4
const HW_TYPE = '060D2A863A0001848FB90F01020201'; // 1.2.826.0.1.8641679.1.2.2.1
const ROOT_NAME = '301A310B3009060355040B13023030310B3009060355040313025A41'; // OU=00, CN=ZA (PrintableString)
const OCA_NAME = '301A310B3009060355040B13023037310B3009060355040313025A31'; // OU=07, CN=Z1
const DCA_NAME = '300F310D300B06035504031304453335 37'.replace(/ /g, ''); // CN=E357

const NOW = new Date('2025-03-04T05:06:07.890Z');
const now = () => NOW;

function newSigner(): Signer & { privateKey: KeyObject; publicKeyObject: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return Object.assign(createKeySigner(privateKey), { privateKey, publicKeyObject: publicKey });
}

function verifiesUnder(der: Uint8Array, issuerPoint: Uint8Array): boolean {
  const d = decode(der);
  const key = { key: Buffer.from(P256_SPKI_PREFIX + hex(issuerPoint), 'hex'), format: 'der' as const, type: 'spki' as const };
  expect(d.signature.value[0]).toBe(0); // no unused bits
  return nodeVerify('sha256', d.tbs.der, key, d.signature.value.subarray(1));
}

async function expectCode(p: Promise<unknown>, code: SmkiErrorCode): Promise<SmkiError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof SmkiError)) throw new Error(`expected SmkiError ${code}, got ${String(e)}`);
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, but the call resolved`);
}

let dir: string;
function openssl(args: string[], input?: Uint8Array | string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
function writePem(name: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').match(/.{1,64}/g)?.join('\n');
  const p = join(dir, name);
  writeFileSync(p, `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`);
  return p;
}

let h: SmkiHierarchy;
const signers = { root: newSigner(), organisationCa: newSigner(), deviceCa: newSigner() };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smki-issue-'));
  h = await createHierarchy({ now, signers });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------

describe('root certificate (docs/domain.md §2 Root)', () => {
  it('has every field of the profile', () => {
    const point = signers.root.publicKey;
    const d = decode(h.root.certificate.der);
    expect(d.versionDer).toBe('A003020102'); // RFC 5280 4.1.2.1: v3
    // docs/domain.md §2: 16-octet serial, top bit clear
    expect(d.serial.tag).toBe(0x02);
    expect(d.serial.value).toHaveLength(16);
    expect(d.serial.value[0]).toBeGreaterThanOrEqual(1);
    expect(d.serial.value[0]).toBeLessThanOrEqual(0x7f);
    // docs/domain.md §2: ecdsa-with-SHA256, parameters absent, in both places
    expect(d.tbsAlgDer).toBe(ECDSA_SHA256_ALG);
    expect(d.outerAlgDer).toBe(ECDSA_SHA256_ALG);
    // self-issued: issuer DER = subject DER = OU=00, CN=ZA PrintableString
    expect(d.subjectDer).toBe(ROOT_NAME);
    expect(d.issuerDer).toBe(ROOT_NAME);
    // RFC 5280 4.1.2.5: UTCTime before 2050, GeneralizedTime from 2050; whole seconds
    expect(time(d.notBefore)).toEqual({ tag: 0x17, text: '250304050607Z' });
    expect(time(d.notAfter)).toEqual({ tag: 0x18, text: '20550304050607Z' }); // 30 years
    expect(d.spkiDer).toBe(P256_SPKI_PREFIX + hex(point));
    expect(d.extensions.map((e) => e.oid)).toEqual(['basicConstraints', 'keyUsage', 'certificatePolicies', 'subjectKeyIdentifier']);
    const [bc, ku, cp, ski] = d.extensions as [DecodedExtension, DecodedExtension, DecodedExtension, DecodedExtension];
    // RFC 5280 4.2.1.9: critical, cA TRUE, no pathLenConstraint on the root
    expect([bc.critical, hex(bc.value)]).toEqual([true, '30030101FF']);
    // RFC 5280 4.2.1.3: keyCertSign|cRLSign (bits 5, 6), minimal named bit string
    expect([ku.critical, hex(ku.value)]).toEqual([true, '03020106']);
    // docs/domain.md §2: critical; the root carries every organisation and device policy of the environment
    expect([cp.critical, hex(cp.value)]).toEqual([true, `3021300F${ORG_POLICY}300E${DEVICE_POLICY}`]);
    // RFC 5280 4.2.1.2 method 2, 8 octets, non-critical, and FALSE is not encoded (DER)
    expect([ski.critical, ski.criticalEncoded, hex(ski.value)]).toEqual([false, false, `0408${method2(point)}`]);
    // no AKI on the self-signed root
    expect(verifiesUnder(h.root.certificate.der, point)).toBe(true);
  });

  it('parses back as the root', () => {
    const c = h.root.certificate;
    expect(c.kind).toBe('root');
    expect(c.role).toBe(0);
    expect(c.subjectKeyId).toBe(method2(signers.root.publicKey));
    expect(c.authorityKeyId).toBeUndefined();
    expect(c.basicConstraints).toEqual({ ca: true });
  });

  it('uses the environment rootPolicies, or the policies given', async () => {
    const env = defineEnvironment({ name: 'x', rootPolicies: ['1.2.3.4'] });
    const s = newSigner();
    expect((await issueRootCertificate({ signer: s, environment: env, now })).policies).toEqual(['1.2.3.4']);
    expect((await issueRootCertificate({ signer: s, now, policies: ['1.2.3.5', '1.2.3.5'] })).policies).toEqual(['1.2.3.5']);
    await expectCode(issueRootCertificate({ signer: s, now, policies: [] }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCode(issueRootCertificate({ signer: s, now, policies: ['not.an.oid'] }), 'ERR_ISSUE_INVALID_REQUEST');
  });

  it('refuses a signer whose signatures do not match its public key', async () => {
    const liar: Signer = { publicKey: newSigner().publicKey, sign: newSigner().sign };
    await expectCode(issueRootCertificate({ signer: liar, now }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
  });

  it('OpenSSL reads it and accepts it as a trust anchor', () => {
    const p = writePem('root.pem', h.root.certificate.der);
    const text = openssl(['x509', '-in', p, '-noout', '-text']);
    expect(text).toMatch(/Issuer: OU ?= ?00, CN ?= ?ZA/);
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).not.toMatch(/Authority Key Identifier/);
    expect(openssl(['verify', '-x509_strict', '-CAfile', p, p])).toMatch(/OK/);
  });
});

describe('issuing CA certificates (docs/domain.md §2 OCA, DCA)', () => {
  it.each([
    ['organisationCa', OCA_NAME, ORG_POLICY, '3011300F'] as const,
    ['deviceCa', DCA_NAME, DEVICE_POLICY, '3010300E'] as const,
  ])('%s has every field of the profile', (kind, name, policy, policyPrefix) => {
    const ca = h[kind];
    const point = signers[kind].publicKey;
    const d = decode(ca.certificate.der);
    expect(d.versionDer).toBe('A003020102');
    expect(d.serial.value).toHaveLength(16);
    expect(d.serial.value[0]).toBeGreaterThanOrEqual(1);
    expect(d.serial.value[0]).toBeLessThanOrEqual(0x7f);
    expect(d.tbsAlgDer).toBe(ECDSA_SHA256_ALG);
    expect(d.outerAlgDer).toBe(ECDSA_SHA256_ALG);
    // RFC 5280 7.1: the issuer name is the root's subject, byte for byte
    expect(d.issuerDer).toBe(ROOT_NAME);
    expect(d.subjectDer).toBe(name);
    expect(time(d.notBefore)).toEqual({ tag: 0x17, text: '250304050607Z' });
    expect(time(d.notAfter)).toEqual({ tag: 0x17, text: '450304050607Z' }); // 20 years
    expect(d.spkiDer).toBe(P256_SPKI_PREFIX + hex(point));
    expect(d.extensions.map((e) => e.oid)).toEqual(['basicConstraints', 'keyUsage', 'certificatePolicies', 'subjectKeyIdentifier', 'authorityKeyIdentifier']);
    const [bc, ku, cp, ski, aki] = d.extensions as [DecodedExtension, DecodedExtension, DecodedExtension, DecodedExtension, DecodedExtension];
    // RFC 5280 4.2.1.9: CA:TRUE pathLenConstraint 0, critical
    expect([bc.critical, hex(bc.value)]).toEqual([true, '30060101FF020100']);
    expect([ku.critical, hex(ku.value)]).toEqual([true, '03020106']);
    expect([cp.critical, hex(cp.value)]).toEqual([true, `${policyPrefix}${policy}`]);
    expect([ski.criticalEncoded, hex(ski.value)]).toEqual([false, `0408${method2(point)}`]);
    // RFC 5280 4.2.1.1 / docs/domain.md §2: [0] keyIdentifier only = the root's SKI, non-critical
    expect([aki.criticalEncoded, hex(aki.value)]).toEqual([false, `300A8008${method2(signers.root.publicKey)}`]);
    expect(verifiesUnder(ca.certificate.der, signers.root.publicKey)).toBe(true);
    expect(ca.certificate.kind).toBe('issuingCa');
  });

  it('OpenSSL shows pathlen:0 and verifies them under the root', () => {
    const root = writePem('root.pem', h.root.certificate.der);
    for (const kind of ['organisationCa', 'deviceCa'] as const) {
      const p = writePem(`${kind}.pem`, h[kind].certificate.der);
      expect(openssl(['x509', '-in', p, '-noout', '-text'])).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      expect(openssl(['verify', '-x509_strict', '-CAfile', root, p])).toMatch(/OK/);
    }
  });

  it('refuses an issuer that is not the root', async () => {
    const s = newSigner();
    await expectCode(issueCaCertificate({ issuer: h.organisationCa, kind: 'deviceCa', publicKey: s.publicKey, now }), 'ERR_ISSUE_ISSUER_NOT_CA');
  });

  it('refuses a root signer that does not hold the root key', async () => {
    const s = newSigner();
    await expectCode(
      issueCaCertificate({ issuer: { certificate: h.root.certificate, signer: s }, kind: 'organisationCa', publicKey: s.publicKey, now }),
      'ERR_ISSUE_ISSUER_KEY_MISMATCH',
    );
  });

  it('refuses an unknown kind and a non-P-256 key', async () => {
    const s = newSigner();
    await expectCode(issueCaCertificate({ issuer: h.root, kind: 'subCa' as 'deviceCa', publicKey: s.publicKey, now }), 'ERR_ISSUE_INVALID_REQUEST');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    await expectCode(issueCaCertificate({ issuer: h.root, kind: 'deviceCa', publicKey: p384, now }), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('refuses a look-alike certificate object that parseCertificate did not make', async () => {
    const fake = { ...h.root.certificate };
    await expectCode(issueCaCertificate({ issuer: { certificate: fake, signer: h.root.signer }, kind: 'deviceCa', publicKey: newSigner().publicKey, now }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('organisation certificates (docs/domain.md §2 Organisation certificate)', () => {
  it.each(['digitalSignature', 'keyAgreement'] as const)('%s: every field of the profile', async (keyUsage) => {
    const subjectKey = newSigner();
    const c = await issueOrganisationCertificate({
      issuer: h.organisationCa,
      publicKey: subjectKey.publicKeyObject,
      role: 2,
      entityId: '90-b3-d5-1f-30-01-00-00',
      keyUsage,
      commonName: 'Énergie Ltd',
      now,
    });
    const d = decode(c.der);
    expect(d.versionDer).toBe('A003020102');
    expect(d.serial.value).toHaveLength(16);
    expect(d.tbsAlgDer).toBe(ECDSA_SHA256_ALG);
    expect(d.outerAlgDer).toBe(ECDSA_SHA256_ALG);
    expect(d.issuerDer).toBe(OCA_NAME);
    // docs/domain.md §2: CN UTF8String (0C); OU = role as two upper-case hex digits; x500UniqueIdentifier
    // (2.5.4.45) = BIT STRING of exactly 64 bits (unused-bits octet 00) holding the EUI-64
    const cn = Buffer.from('Énergie Ltd', 'utf8');
    const cnRdn = `31${(cn.length + 9).toString(16).padStart(2, '0')}30${(cn.length + 7).toString(16).padStart(2, '0')}0603550403 0C${cn.length.toString(16).padStart(2, '0')}${cn.toString('hex')}`.replace(/ /g, '');
    const ouRdn = '310B3009060355040B13023032';
    const uidRdn = '31123010060355042D0309' + '0090B3D51F30010000';
    const body = (cnRdn + ouRdn + uidRdn).toUpperCase();
    expect(d.subjectDer).toBe(`30${(body.length / 2).toString(16).toUpperCase()}${body}`);
    // 10 years (test environment), UTCTime
    expect(time(d.notBefore)).toEqual({ tag: 0x17, text: '250304050607Z' });
    expect(time(d.notAfter)).toEqual({ tag: 0x17, text: '350304050607Z' });
    expect(d.spkiDer).toBe(P256_SPKI_PREFIX + hex(subjectKey.publicKey));
    // exactly these four, in this order: no basicConstraints, EKU, CRLDP or AIA
    expect(d.extensions.map((e) => e.oid)).toEqual(['keyUsage', 'certificatePolicies', 'subjectKeyIdentifier', 'authorityKeyIdentifier']);
    const [ku, cp, ski, aki] = d.extensions as [DecodedExtension, DecodedExtension, DecodedExtension, DecodedExtension];
    // RFC 5280 4.2.1.3: exactly one bit, critical
    expect([ku.critical, hex(ku.value)]).toEqual([true, keyUsage === 'digitalSignature' ? '03020780' : '03020308']);
    expect([cp.critical, hex(cp.value)]).toEqual([true, `3011300F${ORG_POLICY}`]);
    expect([ski.criticalEncoded, hex(ski.value)]).toEqual([false, `0408${method2(subjectKey.publicKey)}`]);
    expect([aki.criticalEncoded, hex(aki.value)]).toEqual([false, `300A8008${method2(signers.organisationCa.publicKey)}`]);
    expect(verifiesUnder(c.der, signers.organisationCa.publicKey)).toBe(true);
    // the parsed view
    expect(c.kind).toBe('organisation');
    expect(c.role).toBe(2);
    expect(c.entityId).toBe('90B3D51F30010000');
    expect(c.commonName).toBe('Énergie Ltd');
    expect(c.keyUsage).toEqual([keyUsage]);
    expect(c.authorityKeyId).toBe(h.organisationCa.certificate.subjectKeyId);
  });

  it('omits the CN when none is given, and writes roles 10+ in upper-case hex', async () => {
    const c = await issueOrganisationCertificate({ issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 127, entityId: '0000000000000001', keyUsage: 'keyAgreement', now });
    expect(c.subject.attributes.map((a) => a.type)).toEqual(['OU', 'x500UniqueIdentifier']);
    expect(hex(c.subject.der)).toBe('3021310B3009060355040B13023746' + '31123010060355042D0309000000000000000001');
  });

  it('OpenSSL reads it and verifies the chain', async () => {
    {
      const c = await issueOrganisationCertificate({ issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 3, entityId: '00DB1234567890A0', keyUsage: 'digitalSignature', commonName: 'DNO', now });
      const p = writePem('org.pem', c.der);
      const text = openssl(['x509', '-in', p, '-noout', '-text']);
      expect(text).toMatch(/Subject: CN ?= ?DNO, OU ?= ?03, x500UniqueIdentifier ?= ?/);
      expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
      expect(text).toMatch(/Certificate Policies: critical\s+Policy: 1\.2\.826\.0\.1\.8641679\.1\.2\.1\.4/);
      expect(text).not.toMatch(/Basic Constraints|Extended Key Usage|CRL Distribution|Authority Information Access/);
      const root = writePem('root.pem', h.root.certificate.der);
      const oca = writePem('oca.pem', h.organisationCa.certificate.der);
      expect(openssl(['verify', '-x509_strict', '-attime', String(Math.floor(NOW.getTime() / 1000) + 60), '-CAfile', root, '-untrusted', oca, p])).toMatch(/OK/);
    }
  });

  it('a leap-day notBefore ends on 28 February', async () => {
    const c = await issueOrganisationCertificate({
      issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 2, entityId: '0000000000000001', keyUsage: 'digitalSignature',
      notBefore: new Date('2024-02-29T12:00:00.999Z'),
    });
    expect(c.notBefore.toISOString()).toBe('2024-02-29T12:00:00.000Z');
    expect(c.notAfter.toISOString()).toBe('2034-02-28T12:00:00.000Z');
  });

  it('uses GeneralizedTime for a notAfter from 2050 (RFC 5280 4.1.2.5)', async () => {
    const c = await issueOrganisationCertificate({
      issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 2, entityId: '0000000000000001', keyUsage: 'digitalSignature',
      notBefore: new Date('2045-01-01T00:00:00Z'),
    });
    const d = decode(c.der);
    expect(time(d.notBefore)).toEqual({ tag: 0x17, text: '450101000000Z' });
    expect(time(d.notAfter)).toEqual({ tag: 0x18, text: '20550101000000Z' });
  });

  describe('refusals', () => {
    const base = () => ({ issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature' as const, now });
    it('an issuer that is not the organisation CA', async () => {
      await expectCode(issueOrganisationCertificate({ ...base(), issuer: h.deviceCa }), 'ERR_ISSUE_ISSUER_NOT_CA');
      await expectCode(issueOrganisationCertificate({ ...base(), issuer: h.root }), 'ERR_ISSUE_ISSUER_NOT_CA');
      const org = await issueOrganisationCertificate(base());
      await expectCode(issueOrganisationCertificate({ ...base(), issuer: { certificate: org, signer: newSigner() } }), 'ERR_ISSUE_ISSUER_NOT_CA');
    });
    it('a signer that does not hold the issuer key', async () => {
      await expectCode(issueOrganisationCertificate({ ...base(), issuer: { certificate: h.organisationCa.certificate, signer: h.deviceCa.signer } }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    });
    it('a bad key usage, role, entity id, common name or key source', async () => {
      await expectCode(issueOrganisationCertificate({ ...base(), keyUsage: 'keyCertSign' as 'keyAgreement' }), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), role: 9 }), 'ERR_ROLE_UNKNOWN');
      await expectCode(issueOrganisationCertificate({ ...base(), role: 0 }), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), role: 7 }), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), entityId: '90B3D51F300100' }), 'ERR_EUI64_INVALID');
      await expectCode(issueOrganisationCertificate({ ...base(), commonName: '' }), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), commonName: 'x'.repeat(65) }), 'ERR_ISSUE_INVALID_REQUEST');
      const { publicKey: _pk, ...noKey } = base();
      await expectCode(issueOrganisationCertificate(noKey), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), csr: new Uint8Array([0x30, 0]) }), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), notBefore: new Date(NaN) }), 'ERR_ISSUE_INVALID_REQUEST');
      await expectCode(issueOrganisationCertificate({ ...base(), environment: defineEnvironment({ name: 'np', organisationPolicies: [] }) }), 'ERR_ISSUE_INVALID_REQUEST');
    });
  });
});

describe('device certificates (docs/domain.md §2 Device certificate, GBCS 12)', () => {
  it.each(['digitalSignature', 'keyAgreement'] as const)('%s: every field of the profile', async (keyUsage) => {
    const subjectKey = newSigner();
    const c = await issueDeviceCertificate({ issuer: h.deviceCa, publicKey: subjectKey.publicKey, entityId: '00 db 12 34 56 78 90 a0', keyUsage, now });
    const d = decode(c.der);
    expect(d.versionDer).toBe('A003020102');
    expect(d.serial.value).toHaveLength(16);
    expect(d.tbsAlgDer).toBe(ECDSA_SHA256_ALG);
    expect(d.outerAlgDer).toBe(ECDSA_SHA256_ALG);
    expect(d.issuerDer).toBe(DCA_NAME);
    expect(d.subjectDer).toBe('3000'); // empty subject
    expect(time(d.notBefore)).toEqual({ tag: 0x17, text: '250304050607Z' });
    expect(time(d.notAfter)).toEqual({ tag: 0x18, text: '99991231235959Z' });
    expect(d.spkiDer).toBe(P256_SPKI_PREFIX + hex(subjectKey.publicKey));
    expect(d.extensions.map((e) => e.oid)).toEqual(['keyUsage', 'certificatePolicies', 'subjectAltName', 'subjectKeyIdentifier', 'authorityKeyIdentifier']);
    const [ku, cp, san, ski, aki] = d.extensions as [DecodedExtension, DecodedExtension, DecodedExtension, DecodedExtension, DecodedExtension];
    expect([ku.critical, hex(ku.value)]).toEqual([true, keyUsage === 'digitalSignature' ? '03020780' : '03020308']);
    // exactly one device policy
    expect([cp.critical, hex(cp.value)]).toEqual([true, `3010300E${DEVICE_POLICY}`]);
    // RFC 5280 4.2.1.6 / RFC 4108 §5: critical, one otherName id-on-hardwareModuleName
    // { hwType OID, hwSerialNum OCTET STRING = the 8 EUI-64 octets }
    expect(san.critical).toBe(true);
    const sanTree = tree(san.value);
    expect(sanTree.children).toHaveLength(1);
    const other = at(sanTree, 0);
    expect(other.tag).toBe(0xa0);
    expect(hex(at(other, 0).der)).toBe('06082B06010505070804');
    expect(at(other, 1).tag).toBe(0xa0);
    expect(hex(at(other, 1, 0).der)).toBe(`3019${HW_TYPE}040800DB1234567890A0`);
    expect([ski.criticalEncoded, hex(ski.value)]).toEqual([false, `0408${method2(subjectKey.publicKey)}`]);
    expect([aki.criticalEncoded, hex(aki.value)]).toEqual([false, `300A8008${method2(signers.deviceCa.publicKey)}`]);
    expect(verifiesUnder(c.der, signers.deviceCa.publicKey)).toBe(true);
    expect(c.kind).toBe('device');
    expect(c.entityId).toBe('00DB1234567890A0');
    expect(c.hardwareModuleName).toEqual({ hwType: '1.2.826.0.1.8641679.1.2.2.1', hwSerialNum: '00DB1234567890A0' });
    expect(c.details.notAfterText).toBe('99991231235959Z');
  });

  it('OpenSSL reads the SAN otherName and verifies the chain', async () => {
    const c = await issueDeviceCertificate({ issuer: h.deviceCa, publicKey: newSigner().publicKey, entityId: '00DB1234567890A0', keyUsage: 'keyAgreement', now });
    const p = writePem('dev.pem', c.der);
    const text = openssl(['x509', '-in', p, '-noout', '-text']);
    expect(text).toMatch(/Not After : Dec 31 23:59:59 9999 GMT/);
    expect(text).toMatch(/Subject Alternative Name: critical\s+othername: (1\.3\.6\.1\.5\.5\.7\.8\.4|.*[Hh]ardware)/);
    const parsed = openssl(['asn1parse', '-in', p]);
    expect(parsed).toMatch(/GENERALIZEDTIME\s+:99991231235959Z/);
    const root = writePem('root.pem', h.root.certificate.der);
    const dca = writePem('dca.pem', h.deviceCa.certificate.der);
    expect(openssl(['verify', '-x509_strict', '-attime', String(Math.floor(NOW.getTime() / 1000) + 60), '-CAfile', root, '-untrusted', dca, p])).toMatch(/OK/);
  });

  it('takes the hwType and policy given, if the environment allows them', async () => {
    const env = defineEnvironment({ name: 'x', devicePolicies: ['1.2.3.1', '1.2.3.2'], deviceHwTypes: ['1.2.3.9', '1.2.3.10'], defaultHwType: '1.2.3.9' });
    const hx = await createHierarchy({ now, environment: env });
    const c = await issueDeviceCertificate({ issuer: hx.deviceCa, publicKey: newSigner().publicKey, entityId: '0000000000000002', keyUsage: 'digitalSignature', hwType: '1.2.3.10', policy: '1.2.3.2', environment: env, now });
    expect(c.policies).toEqual(['1.2.3.2']);
    expect(c.hardwareModuleName?.hwType).toBe('1.2.3.10');
    const dflt = await issueDeviceCertificate({ issuer: hx.deviceCa, publicKey: newSigner().publicKey, entityId: '0000000000000002', keyUsage: 'digitalSignature', environment: env, now });
    expect(dflt.policies).toEqual(['1.2.3.1']);
    expect(dflt.hardwareModuleName?.hwType).toBe('1.2.3.9');
    await expectCode(issueDeviceCertificate({ issuer: hx.deviceCa, publicKey: newSigner().publicKey, entityId: '0000000000000002', keyUsage: 'digitalSignature', hwType: '1.2.3.11', environment: env, now }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCode(issueDeviceCertificate({ issuer: hx.deviceCa, publicKey: newSigner().publicKey, entityId: '0000000000000002', keyUsage: 'digitalSignature', policy: '1.2.3.3', environment: env, now }), 'ERR_ISSUE_INVALID_REQUEST');
  });

  it('refuses an issuer that is not the device CA, and a signer without its key', async () => {
    const base = { publicKey: newSigner().publicKey, entityId: '00DB1234567890A0', keyUsage: 'keyAgreement' as const, now };
    await expectCode(issueDeviceCertificate({ ...base, issuer: h.organisationCa }), 'ERR_ISSUE_ISSUER_NOT_CA');
    await expectCode(issueDeviceCertificate({ ...base, issuer: h.root }), 'ERR_ISSUE_ISSUER_NOT_CA');
    await expectCode(issueDeviceCertificate({ ...base, issuer: { certificate: h.deviceCa.certificate, signer: h.organisationCa.signer } }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    await expectCode(issueDeviceCertificate({ ...base, issuer: h.deviceCa, keyUsage: 'nonRepudiation' as 'keyAgreement' }), 'ERR_ISSUE_INVALID_REQUEST');
  });
});

describe('serial numbers (docs/domain.md §2: 16 octets, top bit clear)', () => {
  it('200 issuances from a source whose first bytes are 0x00 and 0x80 are all 16 octets, first byte 01–7F', async () => {
    let k = 0;
    const draws: number[] = [];
    const random = (n: number): Uint8Array => {
      const b = new Uint8Array(createHash('sha256').update(`seed-${k}`).digest().subarray(0, n));
      // Cycle: 0x00 (rejected), 0x80 (masked to 0x00, rejected), then a value with or without the top bit.
      let v = (k * 37) & 0xff;
      if ((v & 0x7f) === 0) v |= 0x01;
      b[0] = k % 3 === 0 ? 0x00 : k % 3 === 1 ? 0x80 : v;
      draws.push(b[0] as number);
      k++;
      return b;
    };
    const serials = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const c = await issueDeviceCertificate({ issuer: h.deviceCa, publicKey: signers.root.publicKey, entityId: '0000000000000003', keyUsage: 'digitalSignature', now, random });
      const d = decode(c.der);
      expect(d.serial.value).toHaveLength(16); // so the DER INTEGER is always 16 content octets
      const first = d.serial.value[0] as number;
      expect(first).toBeGreaterThanOrEqual(0x01);
      expect(first).toBeLessThanOrEqual(0x7f);
      serials.add(hex(d.serial.value));
    }
    expect(serials.size).toBe(200);
    expect(k).toBe(600); // every issuance rejected exactly two draws
    expect(draws.filter((b) => b & 0x80 && b !== 0x80).length).toBeGreaterThan(0); // masking was exercised
  });

  it('refuses a random source that returns the wrong length or only zero first bytes', async () => {
    const base = { issuer: h.deviceCa, publicKey: signers.root.publicKey, entityId: '0000000000000003', keyUsage: 'digitalSignature' as const, now };
    await expectCode(issueDeviceCertificate({ ...base, random: () => new Uint8Array(8) }), 'ERR_INVALID_ARGUMENT');
    await expectCode(issueDeviceCertificate({ ...base, random: (n) => new Uint8Array(n).fill(0x80, 0, 1) }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('issued certificates pass the toolkit lint (docs/domain.md §2)', () => {
  it('root, OCA, DCA, organisation DS/KA and device DS/KA certificates have no findings', async () => {
    const certs = [
      h.root.certificate,
      h.organisationCa.certificate,
      h.deviceCa.certificate,
      await issueOrganisationCertificate({ issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', commonName: 'S', now }),
      await issueOrganisationCertificate({ issuer: h.organisationCa, publicKey: newSigner().publicKey, role: 4, entityId: '90B3D51F30010000', keyUsage: 'keyAgreement', now }),
      await issueDeviceCertificate({ issuer: h.deviceCa, publicKey: newSigner().publicKey, entityId: '00DB1234567890A0', keyUsage: 'digitalSignature', now }),
      await issueDeviceCertificate({ issuer: h.deviceCa, publicKey: newSigner().publicKey, entityId: '00DB1234567890A0', keyUsage: 'keyAgreement', now }),
    ];
    for (const c of certs) expect(lintCertificate(c), c.subject.text).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// CSR-based issuance: the profile decides every field.

interface CsrSpec {
  signer?: Signer & { privateKey: KeyObject; publicKeyObject: KeyObject };
  subject?: Uint8Array;
  extensions?: { oid: string; critical?: boolean; value: Uint8Array }[];
  attributes?: { oid: string; value: Uint8Array }[];
  corruptSignature?: boolean;
}

/** A PKCS#10 request built here with asn1-csr (not createCsr), so any request can be made. */
function makeCsr(spec: CsrSpec): Uint8Array {
  const s = spec.signer ?? newSigner();
  const attrs = new Attributes([]);
  if (spec.extensions) {
    const exts = new Extensions(spec.extensions.map((e) => new Extension({ extnID: e.oid, critical: e.critical ?? false, extnValue: new OctetString(e.value) })));
    attrs.push(new Attribute({ type: '1.2.840.113549.1.9.14', values: [AsnConvert.serialize(exts)] }));
  }
  for (const a of spec.attributes ?? []) attrs.push(new Attribute({ type: a.oid, values: [a.value.buffer.slice(a.value.byteOffset, a.value.byteOffset + a.value.byteLength) as ArrayBuffer] }));
  const cri = new CertificationRequestInfo({
    version: 0,
    subject: AsnConvert.parse(spec.subject ?? Uint8Array.of(0x30, 0), Name),
    subjectPKInfo: AsnConvert.parse(s.publicKeyObject.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo),
    attributes: attrs,
  });
  const criDer = new Uint8Array(AsnConvert.serialize(cri));
  const sig = Buffer.from(p1363ToDer(new Uint8Array(nodeSign('sha256', criDer, { key: s.privateKey, dsaEncoding: 'ieee-p1363' }))));
  if (spec.corruptSignature) sig[sig.length - 1] = (sig[sig.length - 1] as number) ^ 0x01;
  const bits = Buffer.concat([Buffer.from([0x03, sig.length + 1, 0x00]), sig]);
  const body = Buffer.concat([Buffer.from(criDer), Buffer.from(ECDSA_SHA256_ALG, 'hex'), bits]);
  const len = body.length < 0x80 ? Buffer.from([body.length]) : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return new Uint8Array(Buffer.concat([Buffer.from([0x30]), len, body]));
}


/** A Name DER from RDN pieces written here by hand. */
function name(...rdns: string[]): Uint8Array {
  const body = rdns.join('');
  return Buffer.from(`30${(body.length / 2).toString(16).padStart(2, '0')}${body}`, 'hex');
}
const rdnOu = (ou: string) => `310B3009060355040B1302${Buffer.from(ou).toString('hex')}`;
const rdnUid = (eui: string) => `31123010060355042D030900${eui}`;
const rdnCn = (cn: string) => {
  const v = Buffer.from(cn, 'utf8').toString('hex');
  const l = v.length / 2;
  return `31${(l + 9).toString(16).padStart(2, '0')}30${(l + 7).toString(16).padStart(2, '0')}06035504030C${l.toString(16).padStart(2, '0')}${v}`;
};

const KU_DS = keyUsageValue(['digitalSignature']);
const KU_BOTH = keyUsageValue(['digitalSignature', 'keyAgreement']);

describe('issuing from a CSR (proof of possession; refusals)', () => {
  const ENTITY = '90B3D51F30010000';
  const org = (csr: Uint8Array | string, extra: Partial<Parameters<typeof issueOrganisationCertificate>[0]> = {}) =>
    issueOrganisationCertificate({ issuer: h.organisationCa, csr, role: 2, entityId: ENTITY, keyUsage: 'digitalSignature', commonName: 'Supplier', now, ...extra });
  const dev = (csr: Uint8Array, extra: Partial<Parameters<typeof issueDeviceCertificate>[0]> = {}) =>
    issueDeviceCertificate({ issuer: h.deviceCa, csr, entityId: '00DB1234567890A0', keyUsage: 'keyAgreement', now, ...extra });

  it('issues from a createCsr request (proof of possession verified); the key is the CSR key', async () => {
    const s = newSigner();
    const csr = await createCsr({ signer: s, subject: { role: 2, entityId: ENTITY, commonName: 'Supplier' }, keyUsage: 'digitalSignature' });
    const c = await org(csr);
    expect(hex(c.publicKeyBytes)).toBe(hex(s.publicKey));
    expect(c.commonName).toBe('Supplier');
    // a CSR with an empty subject and no extensions is fine too: the profile fills everything
    const bare = newSigner();
    const c2 = await org(makeCsr({ signer: bare }), { commonName: undefined } as never);
    expect(hex(c2.publicKeyBytes)).toBe(hex(bare.publicKey));
  });

  it('issues from an OpenSSL-made PEM request', async () => {
    const s = newSigner();
    const keyPath = join(dir, 'k.pem');
    writeFileSync(keyPath, s.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const pem = openssl(['req', '-new', '-key', keyPath, '-subj', '/CN=Supplier/OU=02', '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'basicConstraints=CA:FALSE']);
    const c = await org(pem);
    expect(hex(c.publicKeyBytes)).toBe(hex(s.publicKey));
    expect(c.role).toBe(2);
  });

  it('refuses a CSR whose signature does not verify (ERR_CSR_SIGNATURE_INVALID)', async () => {
    await expectCode(org(makeCsr({ corruptSignature: true })), 'ERR_CSR_SIGNATURE_INVALID');
    await expectCode(dev(makeCsr({ corruptSignature: true })), 'ERR_CSR_SIGNATURE_INVALID');
  });

  it('refuses two key usages, or another one (ERR_ISSUE_CSR_KEY_USAGE)', async () => {
    await expectCode(org(makeCsr({ extensions: [{ oid: '2.5.29.15', critical: true, value: KU_BOTH }] })), 'ERR_ISSUE_CSR_KEY_USAGE');
    await expectCode(org(makeCsr({ extensions: [{ oid: '2.5.29.15', critical: true, value: keyUsageValue(['keyAgreement']) }] })), 'ERR_ISSUE_CSR_KEY_USAGE');
    await expectCode(dev(makeCsr({ extensions: [{ oid: '2.5.29.15', critical: true, value: KU_DS }] })), 'ERR_ISSUE_CSR_KEY_USAGE');
  });

  it('refuses a CA flag (ERR_ISSUE_CSR_CA_REQUESTED), accepts CA:FALSE', async () => {
    await expectCode(org(makeCsr({ extensions: [{ oid: '2.5.29.19', critical: true, value: basicConstraintsValue(true) }] })), 'ERR_ISSUE_CSR_CA_REQUESTED');
    await expectCode(dev(makeCsr({ extensions: [{ oid: '2.5.29.19', critical: true, value: basicConstraintsValue(true, 0) }] })), 'ERR_ISSUE_CSR_CA_REQUESTED');
    const c = await org(makeCsr({ extensions: [{ oid: '2.5.29.19', value: basicConstraintsValue(false) }] }));
    expect(c.basicConstraints).toBeUndefined();
  });

  it('refuses another EUI-64 in the subject or a device SAN (ERR_ISSUE_CSR_ENTITY_MISMATCH)', async () => {
    await expectCode(org(makeCsr({ subject: name(rdnUid('90B3D51F30010001')) })), 'ERR_ISSUE_CSR_ENTITY_MISMATCH');
    // a 63-bit x500UniqueIdentifier names no entity this request gives
    await expectCode(org(makeCsr({ subject: name('31123010060355042D03090190B3D51F30010000') })), 'ERR_ISSUE_CSR_ENTITY_MISMATCH');
    await expectCode(dev(makeCsr({ subject: name(rdnUid('00DB1234567890A1')) })), 'ERR_ISSUE_CSR_ENTITY_MISMATCH');
    const otherSan = hardwareModuleNameSanValue('1.2.826.0.1.8641679.1.2.2.1', Buffer.from('00DB1234567890A1', 'hex'));
    await expectCode(dev(makeCsr({ extensions: [{ oid: '2.5.29.17', critical: true, value: otherSan }] })), 'ERR_ISSUE_CSR_ENTITY_MISMATCH');
    // the same EUI-64 in the subject and SAN is not a conflict
    const sameSan = hardwareModuleNameSanValue('1.2.826.0.1.8641679.1.2.2.1', Buffer.from('00DB1234567890A0', 'hex'));
    const c = await dev(makeCsr({ subject: name(rdnUid('00DB1234567890A0')), extensions: [{ oid: '2.5.29.17', critical: true, value: sameSan }] }));
    expect(c.subject.der).toEqual(Uint8Array.of(0x30, 0));
    const ok = await org(makeCsr({ subject: name(rdnCn('Supplier'), rdnOu('02'), rdnUid(ENTITY)) }));
    expect(ok.entityId).toBe(ENTITY);
  });

  it('refuses another role (ERR_ISSUE_CSR_ROLE_MISMATCH)', async () => {
    await expectCode(org(makeCsr({ subject: name(rdnOu('03')) })), 'ERR_ISSUE_CSR_ROLE_MISMATCH');
    await expectCode(org(makeCsr({ subject: name(rdnOu('0x')) })), 'ERR_ISSUE_CSR_ROLE_MISMATCH');
    // devices have no role
    await expectCode(dev(makeCsr({ subject: name(rdnOu('02')) })), 'ERR_ISSUE_CSR_ROLE_MISMATCH');
  });

  it('refuses an unknown extension or request attribute (ERR_ISSUE_CSR_EXTENSION_REFUSED)', async () => {
    const eku = Buffer.from('300A06082B06010505070302', 'hex'); // extKeyUsage clientAuth
    await expectCode(org(makeCsr({ extensions: [{ oid: '2.5.29.37', value: eku }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
    await expectCode(org(makeCsr({ extensions: [{ oid: '1.2.3.4.5', value: Uint8Array.of(5, 0) }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
    await expectCode(dev(makeCsr({ extensions: [{ oid: '2.5.29.32', value: certificatePoliciesValue(['1.2.3']) }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
    // organisation certificates have no SAN
    const san = hardwareModuleNameSanValue('1.2.826.0.1.8641679.1.2.2.1', Buffer.from(ENTITY, 'hex'));
    await expectCode(org(makeCsr({ extensions: [{ oid: '2.5.29.17', value: san }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
    // a device SAN with another hwType, or with a DNS name
    const otherType = hardwareModuleNameSanValue('1.2.3.4', Buffer.from('00DB1234567890A0', 'hex'));
    await expectCode(dev(makeCsr({ extensions: [{ oid: '2.5.29.17', value: otherType }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
    const dns = Buffer.from('300D820B6578616D706C652E636F6D', 'hex');
    await expectCode(dev(makeCsr({ extensions: [{ oid: '2.5.29.17', value: dns }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
    // challengePassword attribute
    const pw = Buffer.from('0C0473656372', 'hex');
    await expectCode(org(makeCsr({ attributes: [{ oid: '1.2.840.113549.1.9.7', value: pw }] })), 'ERR_ISSUE_CSR_EXTENSION_REFUSED');
  });

  it('refuses another common name or another subject attribute (ERR_ISSUE_CSR_SUBJECT_MISMATCH)', async () => {
    await expectCode(org(makeCsr({ subject: name(rdnCn('Someone Else')) })), 'ERR_ISSUE_CSR_SUBJECT_MISMATCH');
    await expectCode(org(makeCsr({ subject: name(rdnCn('Supplier')) }), { commonName: undefined } as never), 'ERR_ISSUE_CSR_SUBJECT_MISMATCH');
    const o = '310E300C060355040A0C0541636D6520'; // O="Acme " (UTF8String)
    await expectCode(org(makeCsr({ subject: name(o) })), 'ERR_ISSUE_CSR_SUBJECT_MISMATCH');
    // a device CSR subject's CN or O carries nothing that conflicts: ignored
    const c = await dev(makeCsr({ subject: name(rdnCn('meter'), o) }));
    expect(c.subject.attributes).toHaveLength(0);
  });

  it('refuses a CSR and a public key together, and a malformed CSR', async () => {
    const s = newSigner();
    await expectCode(org(makeCsr({ signer: s }), { publicKey: s.publicKey }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCode(org(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00)), 'ERR_CSR_MALFORMED');
  });
});

// ---------------------------------------------------------------------------------------------
// The low-level builder: every field as the template says (for test-vector generators).

describe('buildCertificate (internal/build.ts)', () => {
  const s = newSigner();
  const base: CertificateTemplate = {
    serialNumber: Uint8Array.of(0x01, 0x02),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { attributes: [{ oid: '2.5.4.3', value: { encoding: 'printable', value: 'I' } }] },
    notBefore: { date: new Date('2025-01-01T00:00:00Z'), encoding: 'utc' },
    notAfter: { date: new Date('9999-12-31T23:59:59Z'), encoding: 'generalized' },
    subject: { attributes: [entityIdAttribute(parseEui64('0102030405060708')), { oid: '2.5.4.11', value: { encoding: 'utf8', value: '02' } }] },
    subjectPublicKey: { point: s.publicKey },
    extensions: [{ oid: '2.5.29.35', critical: false, value: authorityKeyIdentifierValue(Uint8Array.of(1, 2, 3)) }],
  };

  it('encodes exactly the template, and OpenSSL parses it', async () => {
    const der = await buildCertificate(base, s);
    const d = decode(der);
    expect(d.versionDer).toBe('A003020102');
    expect(hex(d.serial.der)).toBe('02020102');
    expect(d.issuerDer).toBe('300C310A30080603550403130149');
    expect(d.subjectDer).toBe('3021' + '31123010060355042D030900' + '0102030405060708' + '310B3009060355040B0C023032');
    expect(time(d.notAfter)).toEqual({ tag: 0x18, text: '99991231235959Z' });
    expect(d.extensions).toEqual([{ oid: 'authorityKeyIdentifier', critical: false, criticalEncoded: false, value: authorityKeyIdentifierValue(Uint8Array.of(1, 2, 3)) }]);
    expect(verifiesUnder(der, s.publicKey)).toBe(true);
    const p = writePem('built.pem', der);
    expect(openssl(['x509', '-in', p, '-noout', '-serial'])).toMatch(/serial=0102/);
    expect(openssl(['asn1parse', '-in', p])).toMatch(/BIT STRING/);
    // it is what parse.ts reads back, too
    expect(parseCertificate(der).entityId).toBe('0102030405060708');
  });

  it('can break one rule at a time: NULL params, v1, raw serial, explicit critical FALSE, raw names, SPKI override', async () => {
    const withNull = decode(await buildCertificate({ ...base, signatureAlgorithm: { oid: ECDSA_WITH_SHA256.oid, params: 'null' } }, s));
    expect(withNull.outerAlgDer).toBe('300C06082A8648CE3D0403020500');
    expect(withNull.tbsAlgDer).toBe(ECDSA_SHA256_ALG);
    const v1 = tree(await buildCertificate({ ...base, version: 0, extensions: [] }, s));
    expect(at(v1, 0, 0).tag).toBe(0x02); // no [0] version, no [3] extensions
    expect(at(v1, 0).children).toHaveLength(6);
    const neg = decode(await buildCertificate({ ...base, serialNumber: Uint8Array.of(0x00, 0x01) }, s));
    expect(hex(neg.serial.der)).toBe('02020001');
    const explicitFalse = decode(await buildCertificate({ ...base, extensions: [{ oid: '2.5.29.14', critical: false, value: Uint8Array.of(4, 0), encodeCriticalFalse: true }] }, s));
    expect(explicitFalse.extensions[0]?.criticalEncoded).toBe(true);
    const rawName = Uint8Array.from(Buffer.from('300B3109300706035504031300', 'hex'));
    const raw = decode(await buildCertificate({ ...base, issuer: { der: rawName }, subject: { attributes: [{ oid: '2.5.4.45', value: { encoding: 'raw', der: Uint8Array.of(0x03, 0x02, 0x07, 0x80) } }] } }, s));
    expect(raw.issuerDer).toBe('300B3109300706035504031300');
    expect(raw.subjectDer).toBe('300D310B300906035504 2D03020780'.replace(/ /g, ''));
    // a compressed point: not what SMKI allows, but the override writes it verbatim
    const spki = Uint8Array.from(Buffer.from('3039301306072A8648CE3D020106082A8648CE3D030107032200' + '02' + '11'.repeat(32), 'hex'));
    const bad = decode(await buildCertificate({ ...base, subjectPublicKey: { spki } }, s));
    expect(bad.spkiDer).toBe(hex(spki));
  });

  it('encodes times exactly and refuses what the encoding cannot hold', () => {
    expect(hex(encodeTime({ date: new Date('2049-12-31T23:59:59Z'), encoding: 'utc' }))).toBe('170D' + Buffer.from('491231235959Z').toString('hex').toUpperCase());
    expect(hex(encodeTime({ date: new Date('1950-01-01T00:00:00Z'), encoding: 'generalized' }))).toBe('180F' + Buffer.from('19500101000000Z').toString('hex').toUpperCase());
    expect(rfc5280Time(new Date('2049-12-31T23:59:59Z')).encoding).toBe('utc');
    expect(rfc5280Time(new Date('2050-01-01T00:00:00Z')).encoding).toBe('generalized');
    for (const bad of [
      { date: new Date('2050-01-01T00:00:00Z'), encoding: 'utc' as const },
      { date: new Date('2025-01-01T00:00:00.5Z'), encoding: 'utc' as const },
      { date: new Date(NaN), encoding: 'generalized' as const },
    ]) {
      expect(() => encodeTime(bad)).toThrow(SmkiError);
    }
  });

  it('writes minimal DER for the standard extension values', () => {
    // RFC 5280 4.2.1.3 / X.690 11.2.2: trailing zero bits removed, unused-bits count set
    expect(hex(keyUsageValue(['digitalSignature']))).toBe('03020780');
    expect(hex(keyUsageValue(['keyAgreement']))).toBe('03020308');
    expect(hex(keyUsageValue(['keyCertSign', 'cRLSign']))).toBe('03020106');
    expect(hex(keyUsageValue(['decipherOnly']))).toBe('0303070080');
    // RFC 5280 4.2.1.9: cA FALSE is the DEFAULT and is not encoded
    expect(hex(basicConstraintsValue(false))).toBe('3000');
    expect(hex(basicConstraintsValue(true))).toBe('30030101FF');
    expect(hex(basicConstraintsValue(true, 0))).toBe('30060101FF020100');
    expect(hex(authorityKeyIdentifierValue(Uint8Array.of(0xaa, 0xbb)))).toBe('30048002AABB');
    expect(() => keyUsageValue(['bogus' as 'digitalSignature'])).toThrow(SmkiError);
    expect(() => certificatePoliciesValue(['1.2.x'])).toThrow(SmkiError);
    // docs/domain.md §2: the test environment names these
    expect(TEST_ENVIRONMENT.defaultHwType).toBe('1.2.826.0.1.8641679.1.2.2.1');
  });
});

