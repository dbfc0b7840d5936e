// RFC 5280 §6.1 (basic path validation), §6.3 (CRL processing), §7.1 (name comparison);
// RFC 4158 (path building); docs/domain.md §2 (SMKI hierarchy: root → OCA/DCA → leaf, P-256,
// ecdsa-with-SHA256, policies per environment, high-S accepted). OpenSSL 3.0 is a second opinion.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, derToP1363, isSmkiError, p1363ToDer, parseEui64, type KeyUsageName, type SmkiError, type Signer } from '@smki/core';
import { crlToPem, issueCrl, parseCrl, type SmkiCrl } from '../src/crl.js';
import { defineEnvironment, OID, TEST_ENVIRONMENT, type SmkiEnvironment } from '../src/environment.js';
import { createHierarchy, issueCaCertificate, issueDeviceCertificate, issueOrganisationCertificate, type CertificateAuthority, type SmkiHierarchy } from '../src/issue.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  ECDSA_WITH_SHA256,
  extension,
  hardwareModuleNameSanValue,
  keyUsageValue,
  rfc5280Time,
  subjectKeyIdentifierValue,
  type AlgorithmTemplate,
  type CertificateTemplate,
  type ExtensionTemplate,
} from '../src/internal/build.js';
import { keyIdMethod2 } from '../src/internal/keyid.js';
import { commonNameAttribute, encodeName, entityIdAttribute, organizationalUnitAttribute, type NameAttributeTemplate } from '../src/internal/name.js';
import { certificateToPem, parseCertificate } from '../src/parse.js';
import { buildPaths, createPathValidator, validatePath, type PathValidationResult } from '../src/path.js';
import type { SmkiCertificate } from '../src/types.js';
import { bitString, oid, seq } from './_x509-builder.js';

const T0 = new Date('2024-01-01T00:00:00Z');
const AT = new Date('2024-06-02T00:00:00Z');
const THIS_UPDATE = new Date('2024-06-01T00:00:00Z');
const NEXT_UPDATE = new Date('2024-06-08T00:00:00Z');
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

let h: SmkiHierarchy;
let root: SmkiCertificate;
let oca: SmkiCertificate;
let dca: SmkiCertificate;
let orgLeaf: SmkiCertificate;
let deviceLeaf: SmkiCertificate;
let dir: string;

const newSigner = (): Signer => createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

/** A signer that always returns the high-S form (s → n − s), as about half of real GBCS signatures are. */
function highSSigner(inner: Signer): Signer {
  return {
    publicKey: inner.publicKey,
    async sign(m: Uint8Array): Promise<Uint8Array> {
      const sig = await inner.sign(m);
      const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`);
      const high = s > P256_N / 2n ? s : P256_N - s;
      const out = new Uint8Array(sig);
      out.set(Buffer.from(high.toString(16).padStart(64, '0'), 'hex'), 32);
      return out;
    },
  };
}

function isHighS(cert: SmkiCertificate): boolean {
  const raw = derToP1363(cert.signature);
  return BigInt(`0x${Buffer.from(raw.subarray(32)).toString('hex')}`) > P256_N / 2n;
}

function serial(): Uint8Array {
  const s = new Uint8Array(randomBytes(16));
  s[0] = ((s[0] as number) & 0x7f) | 0x10;
  return s;
}

let euiCounter = 0x100;
const nextEui = (): string => `90B3D51F3${(euiCounter++).toString(16).toUpperCase().padStart(7, '0')}`;

interface TemplateOptions {
  readonly policies?: readonly string[];
  readonly keyUsage?: readonly KeyUsageName[];
  /** Replace the AKI key id (null: no AKI). */
  readonly aki?: Uint8Array | null;
  /** Replace the issuer name DER. */
  readonly issuerName?: Uint8Array;
  readonly extra?: readonly ExtensionTemplate[];
  readonly signatureAlgorithm?: AlgorithmTemplate;
  readonly notBefore?: Date;
  readonly ski?: boolean;
}

function akiExt(issuer: SmkiCertificate, o: TemplateOptions): ExtensionTemplate[] {
  if (o.aki === null) return [];
  return [extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(o.aki ?? keyIdMethod2(issuer.publicKeyBytes)))];
}

/** An organisation certificate template per docs/domain.md §2, with the given deviations. */
function orgTemplate(issuer: SmkiCertificate, point: Uint8Array, o: TemplateOptions = {}): CertificateTemplate {
  const alg = o.signatureAlgorithm ?? ECDSA_WITH_SHA256;
  const nb = o.notBefore ?? T0;
  return {
    serialNumber: serial(),
    tbsSignatureAlgorithm: alg,
    signatureAlgorithm: alg,
    issuer: { der: o.issuerName ?? issuer.subject.der },
    notBefore: rfc5280Time(nb),
    notAfter: rfc5280Time(new Date(Date.UTC(nb.getUTCFullYear() + 10, nb.getUTCMonth(), nb.getUTCDate()))),
    subject: { attributes: [organizationalUnitAttribute('02'), entityIdAttribute(parseEui64(nextEui()))] },
    subjectPublicKey: { point },
    extensions: [
      extension(OID.keyUsage, true, keyUsageValue(o.keyUsage ?? ['digitalSignature'])),
      extension(OID.certificatePolicies, true, certificatePoliciesValue(o.policies ?? TEST_ENVIRONMENT.organisationPolicies)),
      ...(o.ski === false ? [] : [extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(point)))]),
      ...akiExt(issuer, o),
      ...(o.extra ?? []),
    ],
  };
}

/** A device certificate template per docs/domain.md §2. */
function deviceTemplate(issuer: SmkiCertificate, point: Uint8Array, o: TemplateOptions = {}): CertificateTemplate {
  return {
    serialNumber: serial(),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { der: o.issuerName ?? issuer.subject.der },
    notBefore: rfc5280Time(T0),
    notAfter: { date: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)), encoding: 'generalized' },
    subject: { attributes: [] },
    subjectPublicKey: { point },
    extensions: [
      extension(OID.keyUsage, true, keyUsageValue(o.keyUsage ?? ['digitalSignature'])),
      extension(OID.certificatePolicies, true, certificatePoliciesValue(o.policies ?? TEST_ENVIRONMENT.devicePolicies)),
      extension(OID.subjectAltName, true, hardwareModuleNameSanValue(TEST_ENVIRONMENT.defaultHwType, Buffer.from(nextEui(), 'hex'))),
      extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(point))),
      ...akiExt(issuer, o),
    ],
  };
}

/** An issuing CA template (subject attributes given), with optional basicConstraints. */
function caTemplate(
  issuer: SmkiCertificate,
  point: Uint8Array,
  subject: readonly NameAttributeTemplate[],
  o: TemplateOptions & { readonly basicConstraints?: { ca: boolean; pathLength?: number } | null } = {},
): CertificateTemplate {
  const bc = o.basicConstraints === undefined ? { ca: true, pathLength: 0 } : o.basicConstraints;
  return {
    serialNumber: serial(),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { der: issuer.subject.der },
    notBefore: rfc5280Time(T0),
    notAfter: rfc5280Time(new Date(Date.UTC(2044, 0, 1))),
    subject: { attributes: subject },
    subjectPublicKey: { point },
    extensions: [
      ...(bc === null ? [] : [extension(OID.basicConstraints, true, basicConstraintsValue(bc.ca, bc.pathLength))]),
      extension(OID.keyUsage, true, keyUsageValue(o.keyUsage ?? ['keyCertSign', 'cRLSign'])),
      extension(OID.certificatePolicies, true, certificatePoliciesValue(o.policies ?? TEST_ENVIRONMENT.organisationPolicies)),
      extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(point))),
      ...akiExt(issuer, o),
    ],
  };
}

const ocaName = (cn: string): NameAttributeTemplate[] => [organizationalUnitAttribute('07'), commonNameAttribute(cn, 'printable')];

async function make(template: CertificateTemplate, signer: Signer): Promise<SmkiCertificate> {
  return parseCertificate(await buildCertificate(template, signer));
}

async function orgUnder(ca: CertificateAuthority, notBefore = T0): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({ issuer: ca, role: 2, entityId: nextEui(), keyUsage: 'digitalSignature', publicKey: newSigner().publicKey, notBefore });
}

const codes = (r: PathValidationResult, severity: 'error' | 'warning' = 'error'): string[] => r.findings.filter((f) => f.severity === severity).map((f) => f.code);
const at = (r: PathValidationResult, code: string): (number | undefined)[] => r.findings.filter((f) => f.code === code).map((f) => f.certificateIndex);

function orgPath(extra: Partial<Parameters<typeof validatePath>[1]> = {}): Parameters<typeof validatePath>[1] {
  return { anchors: [root], intermediates: [oca], at: AT, ...extra };
}

function expectThrows(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isSmkiError(thrown), String(thrown)).toBe(true);
  expect((thrown as SmkiError).code).toBe(code);
}

/** Re-sign a CRL's tbsCertList with another key (the result is not a CRL of that CA). */
async function resign(crl: SmkiCrl, signer: Signer): Promise<Uint8Array> {
  return seq(crl.tbsDer, seq(oid(OID.ecdsaWithSha256)), bitString(p1363ToDer(await signer.sign(crl.tbsDer))));
}

const window = { thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE };

beforeAll(async () => {
  h = await createHierarchy({ notBefore: T0 });
  root = h.root.certificate;
  oca = h.organisationCa.certificate;
  dca = h.deviceCa.certificate;
  orgLeaf = await orgUnder(h.organisationCa);
  deviceLeaf = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: nextEui(), keyUsage: 'keyAgreement', publicKey: newSigner().publicKey, notBefore: T0 });
  dir = mkdtempSync(join(tmpdir(), 'smki-path-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('valid paths (RFC 5280 6.1; docs/domain.md §2)', () => {
  it('organisation certificate → OCA → root', () => {
    const r = validatePath(orgLeaf, orgPath());
    expect(r.findings).toEqual([]);
    expect(r.valid).toBe(true);
    expect(r.path).toEqual([orgLeaf, oca, root]);
    expect(r.revocationChecked).toBe(false);
  });

  it('device certificate → DCA → root', () => {
    const r = validatePath(deviceLeaf, { anchors: [root], intermediates: [oca, dca], at: AT });
    expect(r.findings).toEqual([]);
    expect(r.valid).toBe(true);
    expect(r.path).toEqual([deviceLeaf, dca, root]);
  });

  it('trusting the OCA directly gives the path [leaf, OCA]', () => {
    const r = validatePath(orgLeaf, { anchors: [oca], at: AT });
    expect(r.valid).toBe(true);
    expect(r.path).toEqual([orgLeaf, oca]);
  });

  it('accepts PEM and DER inputs as well as parsed views', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl', ...window });
    const r = validatePath(certificateToPem(orgLeaf), {
      anchors: [root.der],
      intermediates: [certificateToPem(oca)],
      crls: [crlToPem(crl), (await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl', ...window })).der],
      at: AT,
    });
    expect(r.valid).toBe(true);
    expect(r.revocationChecked).toBe(true);
    expect(r.path.map((c) => c.fingerprint)).toEqual([orgLeaf.fingerprint, oca.fingerprint, root.fingerprint]);
  });

  it('accepts a high-S signature on a certificate and on a CRL (docs/domain.md §4: never reject high-S)', async () => {
    const ca: CertificateAuthority = { certificate: oca, signer: highSSigner(h.organisationCa.signer) };
    const leaf = await orgUnder(ca);
    expect(isHighS(leaf)).toBe(true);
    const crl = await issueCrl({ issuer: ca, crlNumber: 1n, ...window });
    expect(BigInt(`0x${Buffer.from(derToP1363(crl.signature).subarray(32)).toString('hex')}`) > P256_N / 2n).toBe(true);
    const r = validatePath(leaf, { anchors: [oca], crls: [crl], at: AT });
    expect(r.findings).toEqual([]);
    expect(r.valid).toBe(true);
    expect(r.revocationChecked).toBe(true);
  });

  it('passes lint warnings on as warnings without breaking the path', async () => {
    const signer = newSigner();
    const leaf = await make(orgTemplate(oca, signer.publicKey, { signatureAlgorithm: { oid: OID.ecdsaWithSha256, params: 'null' } }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(true);
    expect(codes(r, 'warning')).toEqual(['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS']);
    expect(at(r, 'ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS')).toEqual([0]);
  });
});

describe('path building (RFC 4158; RFC 5280 4.2.1.1)', () => {
  it('finds the right key among two OCA generations with the same name', async () => {
    const signer2 = newSigner();
    const oca2 = await issueCaCertificate({ issuer: h.root, kind: 'organisationCa', publicKey: signer2.publicKey, notBefore: T0 });
    expect(Buffer.compare(oca2.subject.der, oca.subject.der)).toBe(0);
    const leaf2 = await orgUnder({ certificate: oca2, signer: signer2 });
    for (const intermediates of [[oca, oca2], [oca2, oca]]) {
      const r = validatePath(leaf2, { anchors: [root], intermediates, at: AT });
      expect(r.valid).toBe(true);
      expect(r.path[1]).toBe(oca2);
      const r1 = validatePath(orgLeaf, { anchors: [root], intermediates, at: AT });
      expect(r1.valid).toBe(true);
      expect(r1.path[1]).toBe(oca);
    }
    // Every candidate is built, the AKI = SKI match first.
    const paths = buildPaths(leaf2, { anchors: [root], intermediates: [oca, oca2] });
    expect(paths.map((p) => p[1])).toEqual([oca2, oca]);
    // Both generations trusted directly as anchors.
    const direct = validatePath(leaf2, { anchors: [oca, oca2], at: AT });
    expect(direct.path).toEqual([leaf2, oca2]);
  });

  it('tries every same-named candidate and stays bounded', async () => {
    const impostors = await Promise.all(
      Array.from({ length: 10 }, async () => issueCaCertificate({ issuer: h.root, kind: 'organisationCa', publicKey: newSigner().publicKey, notBefore: T0 })),
    );
    const paths = buildPaths(orgLeaf, { anchors: [root], intermediates: [...impostors, oca] });
    expect(paths.length).toBe(11);
    expect(paths[0]?.[1]).toBe(oca);
    const r = validatePath(orgLeaf, { anchors: [root], intermediates: [...impostors, oca], at: AT });
    expect(r.valid).toBe(true);
  });

  it('never loops on cross-certified CAs', async () => {
    const x = newSigner();
    const y = newSigner();
    const xName = [commonNameAttribute('X', 'printable')];
    const yName = [commonNameAttribute('Y', 'printable')];
    // Self-signed stand-ins give each CA a certificate to name as issuer.
    const xSelf = await make({ ...caTemplate(root, x.publicKey, xName), issuer: { attributes: xName } }, x);
    const ySelf = await make({ ...caTemplate(root, y.publicKey, yName), issuer: { attributes: yName } }, y);
    const xByY = await make(caTemplate(ySelf, x.publicKey, xName), y);
    const yByX = await make(caTemplate(xSelf, y.publicKey, yName), x);
    const leaf = await make(orgTemplate(xByY, newSigner().publicKey), x);
    expect(buildPaths(leaf, { anchors: [root], intermediates: [xByY, yByX], maxDepth: 8 })).toEqual([]);
    const r = validatePath(leaf, { anchors: [root], intermediates: [xByY, yByX], at: AT, maxDepth: 8 });
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_ISSUER_NOT_FOUND');
  });

  it('refuses a bad maxDepth', () => {
    expectThrows(() => buildPaths(orgLeaf, { anchors: [root], maxDepth: 1 }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => validatePath(orgLeaf, { anchors: [root], maxDepth: 99 }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('path checks, one rule broken at a time (RFC 5280 6.1.3, 6.1.4; docs/domain.md §2)', () => {
  it('no anchors → ERR_CHAIN_NO_ANCHORS', () => {
    const r = validatePath(orgLeaf, { anchors: [], at: AT });
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CHAIN_NO_ANCHORS']);
  });

  it('no issuer → ERR_CHAIN_ISSUER_NOT_FOUND', () => {
    const r = validatePath(orgLeaf, { anchors: [root], at: AT });
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CHAIN_ISSUER_NOT_FOUND']);
    expect(r.path).toEqual([orgLeaf]);
  });

  // RFC 5280 6.1.3 (a)(1)
  it('a certificate signed by another key under the issuer name → ERR_CHAIN_SIGNATURE_INVALID', async () => {
    const attacker = newSigner();
    // Claims the OCA (name and AKI) but is signed by the attacker.
    const forged = await make(orgTemplate(oca, newSigner().publicKey), attacker);
    const r = validatePath(forged, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CHAIN_SIGNATURE_INVALID']);
    expect(at(r, 'ERR_CHAIN_SIGNATURE_INVALID')).toEqual([0]);
  });

  it('a same-named issuer with the wrong key is rejected', async () => {
    const impostor = await issueCaCertificate({ issuer: h.root, kind: 'organisationCa', publicKey: newSigner().publicKey, notBefore: T0 });
    const r = validatePath(orgLeaf, { anchors: [root], intermediates: [impostor], at: AT });
    expect(r.valid).toBe(false);
    expect(r.path[1]).toBe(impostor);
    expect(codes(r)).toEqual(expect.arrayContaining(['ERR_CHAIN_SIGNATURE_INVALID', 'ERR_CHAIN_KEY_ID_MISMATCH']));
  });

  it('an algorithm other than ecdsa-with-SHA256 → ERR_CHAIN_SIGNATURE_INVALID', async () => {
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { signatureAlgorithm: { oid: '1.2.840.10045.4.3.3', params: 'absent' } }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_SIGNATURE_INVALID');
    expect(codes(r)).toContain('ERR_PROFILE_SIGNATURE_ALGORITHM');
  });

  // RFC 5280 6.1.3 (a)(2)
  it('validity at `at` for every certificate, anchor included', () => {
    const early = validatePath(orgLeaf, orgPath({ at: new Date('2023-12-31T23:59:59Z') }));
    expect(early.valid).toBe(false);
    expect(codes(early)).toEqual(['ERR_CHAIN_NOT_YET_VALID', 'ERR_CHAIN_NOT_YET_VALID', 'ERR_CHAIN_NOT_YET_VALID']);
    expect(at(early, 'ERR_CHAIN_NOT_YET_VALID')).toEqual([0, 1, 2]);
    const leafExpired = validatePath(orgLeaf, orgPath({ at: new Date('2034-01-01T00:00:01Z') }));
    expect(codes(leafExpired)).toEqual(['ERR_CHAIN_EXPIRED']);
    expect(at(leafExpired, 'ERR_CHAIN_EXPIRED')).toEqual([0]);
    const allExpired = validatePath(orgLeaf, orgPath({ at: new Date('2054-01-01T00:00:01Z') }));
    expect(at(allExpired, 'ERR_CHAIN_EXPIRED')).toEqual([0, 1, 2]);
    // The boundaries themselves are inside the validity period.
    expect(validatePath(orgLeaf, orgPath({ at: T0 })).valid).toBe(true);
    expect(validatePath(orgLeaf, orgPath({ at: orgLeaf.notAfter })).valid).toBe(true);
    expectThrows(() => validatePath(orgLeaf, orgPath({ at: new Date(Number.NaN) })), 'ERR_INVALID_ARGUMENT');
  });

  // RFC 5280 6.1.3 (a)(4), 7.1
  it('issuer name differing from the issuer subject by DER → ERR_CHAIN_NAME_MISMATCH', async () => {
    // "OU=07, CN=Z1" in UTF8String: the same text, other DER, signed by the OCA's key.
    const utf8Name = encodeName({ attributes: [organizationalUnitAttribute('07', 'utf8'), commonNameAttribute('Z1', 'utf8')] });
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { issuerName: utf8Name }), h.organisationCa.signer);
    expect(leaf.issuer.text).toBe(oca.subject.text);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CHAIN_NAME_MISMATCH']);
    expect(r.path).toEqual([leaf, oca, root]);
  });

  // RFC 5280 4.2.1.1
  it('AKI not equal to the issuer SKI → ERR_CHAIN_KEY_ID_MISMATCH', async () => {
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { aki: Uint8Array.from([0x40, 1, 2, 3, 4, 5, 6, 7]) }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CHAIN_KEY_ID_MISMATCH']);
    expect(at(r, 'ERR_CHAIN_KEY_ID_MISMATCH')).toEqual([0]);
  });

  // RFC 5280 6.1.4 (k)
  it('an issuer that is not a CA → ERR_CHAIN_ISSUER_NOT_CA', async () => {
    const s = newSigner();
    const notCa = await make(caTemplate(root, s.publicKey, ocaName('Z3'), { basicConstraints: null }), h.root.signer);
    const leaf = await make(orgTemplate(notCa, newSigner().publicKey), s);
    const r = validatePath(leaf, { anchors: [root], intermediates: [notCa], at: AT });
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_ISSUER_NOT_CA');
    expect(at(r, 'ERR_CHAIN_ISSUER_NOT_CA')).toEqual([1]);
    // An end-entity certificate as issuer.
    const ee = await orgUnder({ certificate: oca, signer: h.organisationCa.signer });
    const underEe = await make(orgTemplate(ee, newSigner().publicKey), h.organisationCa.signer);
    const r2 = validatePath(underEe, { anchors: [ee], at: AT });
    expect(codes(r2)).toEqual(expect.arrayContaining(['ERR_CHAIN_ISSUER_NOT_CA', 'ERR_CHAIN_ISSUER_KEY_USAGE']));
  });

  // RFC 5280 6.1.4 (l), (m)
  it('a leaf under an OCA under an OCA → ERR_CHAIN_PATH_LENGTH_EXCEEDED (and ERR_CHAIN_TOO_LONG under the root)', async () => {
    const s = newSigner();
    const subOca = await make(caTemplate(oca, s.publicKey, ocaName('Z2')), h.organisationCa.signer);
    const leaf = await orgUnder({ certificate: subOca, signer: s });
    const direct = validatePath(leaf, { anchors: [oca], intermediates: [subOca], at: AT });
    expect(direct.valid).toBe(false);
    expect(codes(direct)).toEqual(['ERR_CHAIN_PATH_LENGTH_EXCEEDED']);
    expect(at(direct, 'ERR_CHAIN_PATH_LENGTH_EXCEEDED')).toEqual([2]);
    const fromRoot = validatePath(leaf, { anchors: [root], intermediates: [oca, subOca], at: AT });
    expect(fromRoot.valid).toBe(false);
    expect(codes(fromRoot)).toEqual(['ERR_CHAIN_TOO_LONG', 'ERR_CHAIN_PATH_LENGTH_EXCEEDED']);
    expect(fromRoot.path.length).toBe(4);
    const deeper = validatePath(leaf, { anchors: [root], intermediates: [oca, subOca], at: AT, maxDepth: 4 });
    expect(codes(deeper)).toEqual(['ERR_CHAIN_PATH_LENGTH_EXCEEDED']);
    expect(buildPaths(leaf, { anchors: [root], intermediates: [oca, subOca] })).toEqual([]);
  });

  // RFC 5280 6.1.4 (n)
  it('an issuer without keyCertSign → ERR_CHAIN_ISSUER_KEY_USAGE', async () => {
    const s = newSigner();
    const ca = await make(caTemplate(root, s.publicKey, ocaName('Z4'), { keyUsage: ['cRLSign'] }), h.root.signer);
    const leaf = await make(orgTemplate(ca, newSigner().publicKey), s);
    const r = validatePath(leaf, { anchors: [root], intermediates: [ca], at: AT });
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_ISSUER_KEY_USAGE');
    expect(at(r, 'ERR_CHAIN_ISSUER_KEY_USAGE')).toEqual([1]);
  });

  // RFC 5280 6.1.4 (o)
  it('an unknown critical extension → ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION', async () => {
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { extra: [extension('1.2.3.4.5', true, Uint8Array.of(0x05, 0x00))] }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION');
    expect(at(r, 'ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION')).toEqual([0]);
    // A non-critical unknown extension is fine for path validation.
    const ok = await make(orgTemplate(oca, newSigner().publicKey, { extra: [extension('1.2.3.4.5', false, Uint8Array.of(0x05, 0x00))] }), h.organisationCa.signer);
    expect(codes(validatePath(ok, orgPath()))).not.toContain('ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION');
  });

  // docs/domain.md §2: organisation leaves under an OCA, device leaves under a DCA.
  it('a device certificate under the OCA (and an organisation one under the DCA) → ERR_CHAIN_PKI_MISMATCH', async () => {
    const dev = await make(deviceTemplate(oca, newSigner().publicKey), h.organisationCa.signer);
    const r = validatePath(dev, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CHAIN_PKI_MISMATCH']);
    expect(at(r, 'ERR_CHAIN_PKI_MISMATCH')).toEqual([0]);
    const org = await make(orgTemplate(dca, newSigner().publicKey), h.deviceCa.signer);
    const r2 = validatePath(org, { anchors: [root], intermediates: [dca], at: AT });
    expect(codes(r2)).toContain('ERR_CHAIN_PKI_MISMATCH');
    // Issued by the root directly.
    const byRoot = await make(orgTemplate(root, newSigner().publicKey), h.root.signer);
    expect(codes(validatePath(byRoot, { anchors: [root], at: AT }))).toContain('ERR_CHAIN_PKI_MISMATCH');
  });

  it('a CA as the leaf → ERR_CHAIN_PROFILE_VIOLATION', () => {
    const r = validatePath(oca, { anchors: [root], at: AT });
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_PROFILE_VIOLATION');
  });

  // docs/domain.md §2: policy OIDs per environment.
  it('a policy the environment does not allow → ERR_CHAIN_POLICY_NOT_ALLOWED', async () => {
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { policies: ['1.2.3.4'] }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toContain('ERR_CHAIN_POLICY_NOT_ALLOWED');
    expect(at(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([0]);
    // A device policy on an organisation certificate.
    const wrong = await make(orgTemplate(oca, newSigner().publicKey, { policies: TEST_ENVIRONMENT.devicePolicies }), h.organisationCa.signer);
    expect(at(validatePath(wrong, orgPath()), 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([0]);
    // Another environment allows none of the test PKI's policies.
    const prod = defineEnvironment({ name: 'production', organisationPolicies: ['1.2.3.9'], devicePolicies: ['1.2.3.10'] });
    const r3 = validatePath(orgLeaf, orgPath({ environment: prod }));
    expect(r3.valid).toBe(false);
    expect(at(r3, 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([0, 1, 2]);
  });

  it('lint errors of a level break the path, with certificateIndex', async () => {
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { ski: false }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_PROFILE_SKI_MISSING']);
    expect(at(r, 'ERR_PROFILE_SKI_MISSING')).toEqual([0]);
  });

  it('fails closed when a check throws', () => {
    const broken = Object.freeze({
      ...TEST_ENVIRONMENT,
      name: 'broken',
      get devicePolicies(): readonly string[] {
        throw new Error('boom');
      },
    }) as SmkiEnvironment;
    const r = validatePath(orgLeaf, orgPath({ environment: broken }));
    expect(r.valid).toBe(false);
    expect(r.findings.some((f) => f.severity === 'error' && f.message.includes('boom'))).toBe(true);
  });

  it('refuses look-alike objects', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, ...window });
    expectThrows(() => validatePath({ ...orgLeaf }, orgPath()), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => validatePath(orgLeaf, { anchors: [{ ...root }], at: AT }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => validatePath(orgLeaf, orgPath({ intermediates: [{ ...oca, publicKey: root.publicKey }] })), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => validatePath(orgLeaf, orgPath({ crls: [{ ...crl }] })), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => buildPaths({ ...orgLeaf }, { anchors: [root] }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => validatePath(orgLeaf, { anchors: 'root' as unknown as [] }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => validatePath(new Uint8Array([1, 2, 3]), orgPath()), 'ERR_CERT_MALFORMED');
  });
});

describe('revocation (RFC 5280 6.3)', () => {
  let crl: SmkiCrl;
  let arl: SmkiCrl;
  let revokedLeaf: SmkiCertificate;
  beforeAll(async () => {
    revokedLeaf = await orgUnder(h.organisationCa);
    crl = await issueCrl({
      issuer: h.organisationCa,
      crlNumber: 10n,
      kind: 'crl',
      ...window,
      revoked: [{ serialNumber: revokedLeaf, revocationDate: new Date('2024-05-30T00:00:00Z'), reason: 'keyCompromise' }],
    });
    arl = await issueCrl({ issuer: h.root, crlNumber: 3n, kind: 'arl', ...window });
  });

  it('a clean leaf with the CRL and the ARL: valid and revocationChecked', () => {
    const r = validatePath(orgLeaf, orgPath({ crls: [crl, arl], requireRevocation: true }));
    expect(r.findings).toEqual([]);
    expect(r.valid).toBe(true);
    expect(r.revocationChecked).toBe(true);
  });

  it('a revoked leaf → ERR_REVOKED with serial, date and reason', () => {
    const r = validatePath(revokedLeaf, orgPath({ crls: [crl, arl] }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_REVOKED']);
    const f = r.findings[0];
    expect(f?.certificateIndex).toBe(0);
    expect(f?.context).toEqual({ certificateIndex: 0, serialNumber: revokedLeaf.serialNumber, revocationDate: new Date('2024-05-30T00:00:00Z'), reason: 'keyCompromise' });
    // Revoked whatever the validation time (fail closed), even with a stale CRL.
    expect(codes(validatePath(revokedLeaf, orgPath({ crls: [crl], at: new Date('2025-01-01T00:00:00Z') })))).toContain('ERR_REVOKED');
  });

  it('a revoked OCA via the root ARL → ERR_REVOKED at index 1', async () => {
    const arl2 = await issueCrl({ issuer: h.root, crlNumber: 4n, kind: 'arl', ...window, revoked: [{ serialNumber: oca, revocationDate: THIS_UPDATE, reason: 'cACompromise' }] });
    const r = validatePath(orgLeaf, orgPath({ crls: [crl, arl2] }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_REVOKED']);
    expect(r.findings[0]?.context).toMatchObject({ certificateIndex: 1, serialNumber: oca.serialNumber, reason: 'cACompromise' });
    // The same serial in an organisation CRL (user certificates only) does not touch the OCA.
    const userOnly = await issueCrl({ issuer: h.root, crlNumber: 5n, kind: 'crl', ...window, revoked: [{ serialNumber: oca.serialNumber, revocationDate: THIS_UPDATE }] });
    const r2 = validatePath(orgLeaf, orgPath({ crls: [userOnly] }));
    expect(r2.valid).toBe(true);
    // And an ARL does not cover the leaf.
    const r3 = validatePath(orgLeaf, orgPath({ crls: [arl], requireRevocation: true }));
    expect(codes(r3)).toEqual(['ERR_CRL_MISSING']);
    expect(at(r3, 'ERR_CRL_MISSING')).toEqual([0]);
  });

  it('a CRL past nextUpdate → ERR_CRL_EXPIRED; within the grace period it is usable', () => {
    const late = new Date(NEXT_UPDATE.getTime() + 3_600_000);
    const r = validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: late }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CRL_EXPIRED', 'ERR_CRL_EXPIRED']);
    expect(at(r, 'ERR_CRL_EXPIRED')).toEqual([0, 1]);
    const grace = validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: late, crlGraceSeconds: 7200 }));
    expect(grace.findings).toEqual([]);
    expect(grace.revocationChecked).toBe(true);
    const env = defineEnvironment({ name: 'graceful', crlGraceSeconds: 3600 });
    expect(validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: late, environment: env })).valid).toBe(true);
    expect(validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: new Date(late.getTime() + 1000), environment: env })).valid).toBe(false);
    // nextUpdate itself is still current.
    expect(validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: NEXT_UPDATE })).valid).toBe(true);
  });

  it('a CRL issued after the validation time → ERR_CRL_NOT_YET_VALID', () => {
    const r = validatePath(orgLeaf, orgPath({ crls: [crl], at: new Date('2024-05-01T00:00:00Z') }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CRL_NOT_YET_VALID']);
  });

  it('a stale CRL next to a current one is only a warning', async () => {
    const old = await issueCrl({ issuer: h.organisationCa, crlNumber: 9n, kind: 'crl', thisUpdate: new Date('2024-05-01T00:00:00Z'), nextUpdate: new Date('2024-05-08T00:00:00Z') });
    const r = validatePath(orgLeaf, orgPath({ crls: [old, crl, arl] }));
    expect(r.valid).toBe(true);
    expect(codes(r, 'warning')).toEqual(['ERR_CRL_EXPIRED']);
  });

  it('a CRL signed by the wrong key → ERR_CRL_SIGNATURE_INVALID, and it is unusable', async () => {
    const forged = parseCrl(await resign(crl, newSigner()));
    const r = validatePath(orgLeaf, orgPath({ crls: [forged, arl] }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CRL_SIGNATURE_INVALID']);
    expect(at(r, 'ERR_CRL_SIGNATURE_INVALID')).toEqual([0]);
    expect(r.revocationChecked).toBe(false);
    // A forged CRL cannot revoke either: it is never trusted.
    const forgedRevoking = parseCrl(await resign(crl, newSigner()));
    expect(codes(validatePath(revokedLeaf, orgPath({ crls: [forgedRevoking] })))).not.toContain('ERR_REVOKED');
    // Next to a good CRL the forged one is reported as a warning.
    const r2 = validatePath(orgLeaf, orgPath({ crls: [forged, crl, arl] }));
    expect(r2.valid).toBe(true);
    expect(codes(r2, 'warning')).toEqual(['ERR_CRL_SIGNATURE_INVALID']);
  });

  it('a CRL with an unknown critical extension → ERR_CRL_UNKNOWN_CRITICAL_EXTENSION', async () => {
    const { extension: ext, int, time, ctx } = await import('./_x509-builder.js');
    const tbs = seq(
      int(1),
      seq(oid(OID.ecdsaWithSha256)),
      oca.subject.der,
      time(THIS_UPDATE),
      time(NEXT_UPDATE),
      ctx(0, false, seq(ext(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(keyIdMethod2(oca.publicKeyBytes))), ext('2.5.29.20', false, int(1)), ext('1.2.3.4', true, Uint8Array.of(5, 0)))),
    );
    const der = seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(p1363ToDer(await h.organisationCa.signer.sign(tbs))));
    const r = validatePath(orgLeaf, orgPath({ crls: [der] }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CRL_UNKNOWN_CRITICAL_EXTENSION']);
  });

  it('requireRevocation without CRLs → ERR_CRL_MISSING for the leaf and the OCA', () => {
    const r = validatePath(orgLeaf, orgPath({ requireRevocation: true }));
    expect(r.valid).toBe(false);
    expect(codes(r)).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_MISSING']);
    expect(at(r, 'ERR_CRL_MISSING')).toEqual([0, 1]);
    expect(r.revocationChecked).toBe(false);
    // Trusting the OCA directly: only the leaf needs a CRL.
    const direct = validatePath(orgLeaf, { anchors: [oca], at: AT, crls: [crl], requireRevocation: true });
    expect(direct.valid).toBe(true);
    expect(direct.revocationChecked).toBe(true);
  });

  it('revocationChecked is false without CRLs, or when a level is not covered', () => {
    expect(validatePath(orgLeaf, orgPath()).revocationChecked).toBe(false);
    const partial = validatePath(orgLeaf, orgPath({ crls: [crl] }));
    expect(partial.valid).toBe(true);
    expect(partial.revocationChecked).toBe(false);
    // The root has no CRL among those given: a warning, not an error.
    expect(codes(partial, 'warning')).toEqual(['ERR_CRL_ISSUER_MISMATCH']);
    expect(at(partial, 'ERR_CRL_ISSUER_MISMATCH')).toEqual([1]);
  });

  it('a CRL from another issuer → ERR_CRL_ISSUER_MISMATCH; another key of the same-named CA is another issuer', async () => {
    const dcaCrl = await issueCrl({ issuer: h.deviceCa, crlNumber: 1n, ...window, revoked: [{ serialNumber: orgLeaf.serialNumber, revocationDate: THIS_UPDATE }] });
    const r = validatePath(orgLeaf, { anchors: [oca], at: AT, crls: [dcaCrl] });
    expect(r.valid).toBe(true);
    expect(codes(r, 'warning')).toEqual(['ERR_CRL_ISSUER_MISMATCH']);
    const required = validatePath(orgLeaf, { anchors: [oca], at: AT, crls: [dcaCrl], requireRevocation: true });
    expect(codes(required)).toEqual(['ERR_CRL_MISSING']);
    // A second OCA generation's CRL (same name, other AKI) neither covers nor revokes.
    const signer2 = newSigner();
    const oca2 = await issueCaCertificate({ issuer: h.root, kind: 'organisationCa', publicKey: signer2.publicKey, notBefore: T0 });
    const gen2Crl = await issueCrl({ issuer: { certificate: oca2, signer: signer2 }, crlNumber: 1n, ...window, revoked: [{ serialNumber: orgLeaf.serialNumber, revocationDate: THIS_UPDATE }] });
    const r2 = validatePath(orgLeaf, { anchors: [oca], at: AT, crls: [gen2Crl] });
    expect(r2.valid).toBe(true);
    expect(r2.findings[0]?.message).toContain('name it but another key');
  });

  it('a CRL issuer without cRLSign → ERR_CRL_ISSUER_KEY_USAGE', async () => {
    const s = newSigner();
    const ca = await make(caTemplate(root, s.publicKey, ocaName('Z5'), { keyUsage: ['keyCertSign'] }), h.root.signer);
    const leaf = await make(orgTemplate(ca, newSigner().publicKey), s);
    const { extension: ext, int, time, ctx } = await import('./_x509-builder.js');
    const tbs = seq(int(1), seq(oid(OID.ecdsaWithSha256)), ca.subject.der, time(THIS_UPDATE), time(NEXT_UPDATE), ctx(0, false, seq(ext('2.5.29.20', false, int(1)))));
    const der = seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(p1363ToDer(await s.sign(tbs))));
    const r = validatePath(leaf, { anchors: [ca], at: AT, crls: [der] });
    expect(codes(r)).toContain('ERR_CRL_ISSUER_KEY_USAGE');
  });

  it('certificateHold counts only in the newest CRL', async () => {
    const held = await orgUnder(h.organisationCa);
    const hold = await issueCrl({ issuer: h.organisationCa, crlNumber: 20n, ...window, revoked: [{ serialNumber: held, revocationDate: THIS_UPDATE, reason: 'certificateHold' }] });
    const released = await issueCrl({ issuer: h.organisationCa, crlNumber: 21n, ...window });
    expect(codes(validatePath(held, orgPath({ crls: [hold] })))).toEqual(['ERR_REVOKED']);
    expect(validatePath(held, orgPath({ crls: [hold, released] })).valid).toBe(true);
  });
});

describe('createPathValidator (reuse)', () => {
  it('validates many leaves against pre-built indexes and pre-parsed CRLs', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 30n, kind: 'crl', ...window });
    const arl = await issueCrl({ issuer: h.root, crlNumber: 30n, kind: 'arl', ...window });
    const v = createPathValidator({ anchors: [root.der], intermediates: [certificateToPem(oca), dca], crls: [crl.der, crlToPem(arl)], requireRevocation: true });
    expect(v.crls.length).toBe(2);
    expect(v.anchors[0]?.fingerprint).toBe(root.fingerprint);
    expect(v.validate(orgLeaf, { at: AT }).valid).toBe(true);
    // Device leaf: the DCA has no CRL in this validator.
    expect(codes(v.validate(deviceLeaf, { at: AT }))).toEqual(['ERR_CRL_MISSING']);
    const dcaCrl = await issueCrl({ issuer: h.deviceCa, crlNumber: 1n, kind: 'crl', ...window });
    expect(v.validate(deviceLeaf, { at: AT, crls: [dcaCrl] }).valid).toBe(true);
    expect(v.validate(deviceLeaf, { at: AT, requireRevocation: false }).valid).toBe(true);
    // Per-call intermediates.
    const v2 = createPathValidator({ anchors: [root] });
    expect(v2.validate(orgLeaf, { at: AT }).valid).toBe(false);
    expect(v2.validate(orgLeaf, { at: AT, intermediates: [oca] }).valid).toBe(true);
    expect(v2.buildPaths(orgLeaf, { intermediates: [oca] }).length).toBe(1);

    const leaves = await Promise.all(Array.from({ length: 20 }, () => orgUnder(h.organisationCa)));
    const n = 2000;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const r = v.validate(leaves[i % leaves.length] as SmkiCertificate, { at: AT });
      if (!r.valid) throw new Error('expected valid');
    }
    const ms = performance.now() - start;
    // Printed, never asserted (docs/conventions.md: speed never fails the build).
    console.log(`createPathValidator: ${n} warm validations in ${ms.toFixed(0)} ms (${((n / ms) * 1000).toFixed(0)}/s)`);
  });

  it('refuses bad options', () => {
    expectThrows(() => createPathValidator({ anchors: [root], crlGraceSeconds: -1 }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => createPathValidator(null as unknown as { anchors: [] }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => createPathValidator({ anchors: [root], crls: [new Uint8Array([0x30, 0x00])] }), 'ERR_CRL_MALFORMED');
  });
});

describe('OpenSSL agrees (openssl verify -crl_check_all -attime)', () => {
  function opensslVerify(leaf: SmkiCertificate, crls: readonly SmkiCrl[], when: Date): boolean {
    const w = (name: string, text: string): string => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const args = ['verify', '-crl_check_all', '-CAfile', w('root.pem', certificateToPem(root)), '-untrusted', w('oca.pem', certificateToPem(oca))];
    args.push('-CRLfile', w('crls.pem', crls.map(crlToPem).join('')), '-attime', String(Math.floor(when.getTime() / 1000)), w('leaf.pem', certificateToPem(leaf)));
    const r = spawnSync('/usr/bin/openssl', args, { encoding: 'utf8' });
    if (r.error) throw r.error;
    return r.status === 0 && r.stdout.includes(': OK');
  }

  it('on clean, revoked-leaf, revoked-OCA, expired-CRL and forged-CRL cases', async () => {
    const revokedLeaf = await orgUnder(h.organisationCa);
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 40n, kind: 'crl', ...window, revoked: [{ serialNumber: revokedLeaf, revocationDate: THIS_UPDATE }] });
    const arl = await issueCrl({ issuer: h.root, crlNumber: 40n, kind: 'arl', ...window });
    const arlRevoking = await issueCrl({ issuer: h.root, crlNumber: 41n, kind: 'arl', ...window, revoked: [{ serialNumber: oca, revocationDate: THIS_UPDATE }] });
    const forged = parseCrl(await resign(crl, newSigner()));
    const late = new Date('2024-06-09T00:00:00Z');
    const cases: [string, SmkiCertificate, SmkiCrl[], Date, boolean][] = [
      ['clean', orgLeaf, [crl, arl], AT, true],
      ['revoked leaf', revokedLeaf, [crl, arl], AT, false],
      ['revoked OCA', orgLeaf, [crl, arlRevoking], AT, false],
      ['expired CRL', orgLeaf, [crl, arl], late, false],
      ['forged CRL', orgLeaf, [forged, arl], AT, false],
      ['no ARL', orgLeaf, [crl], AT, false],
    ];
    for (const [name, leaf, crls, when, expected] of cases) {
      const ours = validatePath(leaf, { anchors: [root], intermediates: [oca], crls, at: when, requireRevocation: true });
      expect(ours.valid, `${name}: ${JSON.stringify(ours.findings.map((f) => f.code))}`).toBe(expected);
      expect(opensslVerify(leaf, crls, when), `openssl: ${name}`).toBe(expected);
    }
  });
});
