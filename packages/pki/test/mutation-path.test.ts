// buildPaths, validatePath and createPathValidator: the cases mutation testing (StrykerJS, `pnpm run
// mutation pki/path`) found untested. RFC 5280 §6.1 (basic path validation: §6.1.3 (a) signature,
// validity, name chaining; §6.1.4 (k)–(o) CA, pathLenConstraint, keyCertSign, critical
// extensions), §6.3 (CRL processing), §5.2.1, §5.2.3, §5.2.5, §5.3.1; RFC 4158 (path building);
// the SMKI hierarchy as docs/domain.md §2 describes it (root → OCA/DCA → leaf, policies per
// environment). Each case changes one thing and checks the verdict, the code and the index — and,
// where a finding is all an auditor gets, that its message says which certificate, CRL or key.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, isSmkiError, p1363ToDer, parseEui64, SmkiError, type KeyUsageName, type Signer } from '@smki/core';
import { issueCrl, parseCrl, type SmkiCrl } from '../src/crl.js';
import { defineEnvironment, OID, TEST_ENVIRONMENT, type SmkiEnvironment } from '../src/environment.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  ECDSA_WITH_SHA256,
  encodeTbsCertificate,
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
import { commonNameAttribute, entityIdAttribute, organizationalUnitAttribute, type NameAttributeTemplate } from '../src/internal/name.js';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, type CertificateAuthority, type SmkiHierarchy } from '../src/issue.js';
import { parseCertificate } from '../src/parse.js';
import { buildPaths, createPathValidator, validatePath, type PathFinding, type PathValidationResult } from '../src/path.js';
import type { SmkiCertificate } from '../src/types.js';
import { bitString, ctx, extension as rawExtension, int, nul, oid, seq, time, tlv } from './_x509-builder.js';

const T0 = new Date('2024-01-01T00:00:00Z');
const AT = new Date('2024-06-02T00:00:00Z');
const THIS_UPDATE = new Date('2024-06-01T00:00:00Z');
const NEXT_UPDATE = new Date('2024-06-08T00:00:00Z');
const window = { thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE };

let h: SmkiHierarchy;
let root: SmkiCertificate;
let oca: SmkiCertificate;
let dca: SmkiCertificate;
let orgLeaf: SmkiCertificate;
let deviceLeaf: SmkiCertificate;
let crl: SmkiCrl;
let arl: SmkiCrl;

const newSigner = (): Signer => createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

function serial(): Uint8Array {
  const s = new Uint8Array(randomBytes(16));
  s[0] = ((s[0] as number) & 0x7f) | 0x10;
  return s;
}

let euiCounter = 0x300;
const nextEui = (): string => `90B3D51F3${(euiCounter++).toString(16).toUpperCase().padStart(7, '0')}`;

interface TemplateOptions {
  readonly policies?: readonly string[];
  readonly keyUsage?: readonly KeyUsageName[];
  /** The AKI key id (null: no AKI). */
  readonly aki?: Uint8Array | null;
  readonly extra?: readonly ExtensionTemplate[];
  readonly signatureAlgorithm?: AlgorithmTemplate;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly ski?: boolean;
}

const akiOf = (issuer: SmkiCertificate, o: TemplateOptions): ExtensionTemplate[] =>
  o.aki === null ? [] : [extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(o.aki ?? keyIdMethod2(issuer.publicKeyBytes)))];
const skiOf = (point: Uint8Array, o: TemplateOptions): ExtensionTemplate[] =>
  o.ski === false ? [] : [extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(point)))];

function orgTemplate(issuer: SmkiCertificate, point: Uint8Array, o: TemplateOptions = {}): CertificateTemplate {
  const alg = o.signatureAlgorithm ?? ECDSA_WITH_SHA256;
  const nb = o.notBefore ?? T0;
  return {
    serialNumber: serial(),
    tbsSignatureAlgorithm: alg,
    signatureAlgorithm: alg,
    issuer: { der: issuer.subject.der },
    notBefore: rfc5280Time(nb),
    notAfter: rfc5280Time(o.notAfter ?? new Date(Date.UTC(nb.getUTCFullYear() + 10, 0, 1))),
    subject: { attributes: [organizationalUnitAttribute('02'), entityIdAttribute(parseEui64(nextEui()))] },
    subjectPublicKey: { point },
    extensions: [
      extension(OID.keyUsage, true, keyUsageValue(o.keyUsage ?? ['digitalSignature'])),
      extension(OID.certificatePolicies, true, certificatePoliciesValue(o.policies ?? TEST_ENVIRONMENT.organisationPolicies)),
      ...skiOf(point, o),
      ...akiOf(issuer, o),
      ...(o.extra ?? []),
    ],
  };
}

function deviceTemplate(issuer: SmkiCertificate, point: Uint8Array, o: TemplateOptions = {}): CertificateTemplate {
  return {
    serialNumber: serial(),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { der: issuer.subject.der },
    notBefore: rfc5280Time(o.notBefore ?? T0),
    notAfter: { date: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)), encoding: 'generalized' },
    subject: { attributes: [] },
    subjectPublicKey: { point },
    extensions: [
      extension(OID.keyUsage, true, keyUsageValue(o.keyUsage ?? ['keyAgreement'])),
      extension(OID.certificatePolicies, true, certificatePoliciesValue(o.policies ?? TEST_ENVIRONMENT.devicePolicies)),
      extension(OID.subjectAltName, true, hardwareModuleNameSanValue(TEST_ENVIRONMENT.defaultHwType, Buffer.from(nextEui(), 'hex'))),
      ...skiOf(point, o),
      ...akiOf(issuer, o),
    ],
  };
}

function caTemplate(
  issuer: SmkiCertificate,
  point: Uint8Array,
  subject: readonly NameAttributeTemplate[],
  o: TemplateOptions & { readonly basicConstraints?: { ca: boolean; pathLength?: number } | null; readonly issuerName?: readonly NameAttributeTemplate[] } = {},
): CertificateTemplate {
  const bc = o.basicConstraints === undefined ? { ca: true, pathLength: 0 } : o.basicConstraints;
  return {
    serialNumber: serial(),
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: o.issuerName ? { attributes: o.issuerName } : { der: issuer.subject.der },
    notBefore: rfc5280Time(o.notBefore ?? T0),
    notAfter: rfc5280Time(o.notAfter ?? new Date(Date.UTC(2044, 0, 1))),
    subject: { attributes: subject },
    subjectPublicKey: { point },
    extensions: [
      ...(bc === null ? [] : [extension(OID.basicConstraints, true, basicConstraintsValue(bc.ca, bc.pathLength))]),
      extension(OID.keyUsage, true, keyUsageValue(o.keyUsage ?? ['keyCertSign', 'cRLSign'])),
      extension(OID.certificatePolicies, true, certificatePoliciesValue(o.policies ?? TEST_ENVIRONMENT.organisationPolicies)),
      ...skiOf(point, o),
      ...akiOf(issuer, o),
      ...(o.extra ?? []),
    ],
  };
}

const ocaName = (cn: string): NameAttributeTemplate[] => [organizationalUnitAttribute('07'), commonNameAttribute(cn, 'printable')];
const ROOT_NAME: NameAttributeTemplate[] = [organizationalUnitAttribute('00'), commonNameAttribute('ZA', 'printable')];

async function make(template: CertificateTemplate, signer: Signer): Promise<SmkiCertificate> {
  return parseCertificate(await buildCertificate(template, signer));
}

async function orgUnder(ca: CertificateAuthority, notBefore = T0): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({ issuer: ca, role: 2, entityId: nextEui(), keyUsage: 'digitalSignature', publicKey: newSigner().publicKey, notBefore });
}

/** A v2 CRL by hand: the issuer's name and AKI (unless `aki` is null), the given extensions and entries. */
async function handCrl(
  issuer: CertificateAuthority,
  o: {
    readonly entries?: readonly Uint8Array[];
    readonly extensions?: readonly Uint8Array[];
    readonly aki?: Uint8Array | null;
    readonly nextUpdate?: Date | null;
    readonly number?: number | null;
  } = {},
): Promise<SmkiCrl> {
  const c = issuer.certificate;
  const exts = [
    ...(o.aki === null ? [] : [rawExtension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(o.aki ?? keyIdMethod2(c.publicKeyBytes)))]),
    ...(o.number === null ? [] : [rawExtension(OID.cRLNumber, false, int(o.number ?? 1))]),
    ...(o.extensions ?? []),
  ];
  const tbs = seq(
    int(1),
    seq(oid(OID.ecdsaWithSha256)),
    c.subject.der,
    time(THIS_UPDATE),
    ...(o.nextUpdate === null ? [] : [time(o.nextUpdate ?? NEXT_UPDATE)]),
    ...(o.entries && o.entries.length > 0 ? [seq(...o.entries)] : []),
    ...(exts.length > 0 ? [ctx(0, false, seq(...exts))] : []),
  );
  return parseCrl(seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(p1363ToDer(await issuer.signer.sign(tbs)))));
}

const revokedEntry = (cert: SmkiCertificate, reason?: number): Uint8Array =>
  seq(tlv(0x02, cert.details.serialBytes), time(THIS_UPDATE), ...(reason === undefined ? [] : [seq(rawExtension(OID.reasonCode, false, tlv(0x0a, Uint8Array.of(reason))))]));

const errors = (r: { readonly findings: readonly PathFinding[] }): string[] => r.findings.filter((f) => f.severity === 'error').map((f) => f.code);
const warnings = (r: { readonly findings: readonly PathFinding[] }): string[] => r.findings.filter((f) => f.severity === 'warning').map((f) => f.code);
const only = (r: PathValidationResult, code: string): PathFinding[] => r.findings.filter((f) => f.code === code);
const one = (r: PathValidationResult, code: string): PathFinding => {
  const fs = only(r, code);
  expect(fs, `${code} in ${JSON.stringify(r.findings.map((f) => f.code))}`).toHaveLength(1);
  return fs[0] as PathFinding;
};
const orgPath = (extra: Partial<Parameters<typeof validatePath>[1]> = {}): Parameters<typeof validatePath>[1] => ({ anchors: [root], intermediates: [oca], at: AT, ...extra });

function thrown(fn: () => unknown): SmkiError {
  try {
    fn();
  } catch (e) {
    expect(isSmkiError(e), String(e)).toBe(true);
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}

beforeAll(async () => {
  h = await createHierarchy({ notBefore: T0 });
  root = h.root.certificate;
  oca = h.organisationCa.certificate;
  dca = h.deviceCa.certificate;
  orgLeaf = await orgUnder(h.organisationCa);
  deviceLeaf = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: nextEui(), keyUsage: 'keyAgreement', publicKey: newSigner().publicKey, notBefore: T0 });
  crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 10n, kind: 'crl', ...window });
  arl = await issueCrl({ issuer: h.root, crlNumber: 3n, kind: 'arl', ...window });
});

// ---------------------------------------------------------------------------------------------

describe('options (createPathValidator, buildPaths, validate)', () => {
  it('maxDepth: 2 and 8 are accepted, 1, 9 and 2.5 refused with the value as detail', () => {
    expect(buildPaths(orgLeaf, { anchors: [oca], maxDepth: 2 })).toEqual([[orgLeaf, oca]]);
    expect(buildPaths(orgLeaf, { anchors: [root], intermediates: [oca], maxDepth: 8 })).toEqual([[orgLeaf, oca, root]]);
    for (const maxDepth of [1, 9, 2.5, Number.NaN]) {
      const e = thrown(() => buildPaths(orgLeaf, { anchors: [root], maxDepth }));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.context).toEqual({ detail: String(maxDepth) });
    }
  });

  it('crlGraceSeconds: negative, NaN, Infinity and text are refused with the value as detail; 0 is accepted', () => {
    for (const g of [-1, Number.NaN, Number.POSITIVE_INFINITY, '60']) {
      const e = thrown(() => createPathValidator({ anchors: [root], crlGraceSeconds: g as number }));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.context).toEqual({ detail: String(g) });
    }
    expect(createPathValidator({ anchors: [root], crlGraceSeconds: 0 }).anchors).toEqual([root]);
  });

  it('an environment must be an object with policy lists', () => {
    for (const environment of ['test', { ...TEST_ENVIRONMENT, organisationPolicies: 'x' }]) {
      expect(thrown(() => createPathValidator({ anchors: [root], environment: environment as unknown as SmkiEnvironment })).code).toBe('ERR_INVALID_ARGUMENT');
    }
  });

  it('anchors, intermediates and crls must be arrays; options objects', () => {
    expect(thrown(() => createPathValidator({ anchors: root as never })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => createPathValidator({ anchors: [root], intermediates: oca as never })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => createPathValidator({ anchors: [root], crls: crl as never })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => buildPaths(orgLeaf, null as never)).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => buildPaths(orgLeaf, { anchors: [root], at: new Date(Number.NaN) })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => buildPaths(orgLeaf, { anchors: [root], at: '2024-06-02' as never })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => validatePath(orgLeaf, null as never)).code).toBe('ERR_INVALID_ARGUMENT');
    const v = createPathValidator({ anchors: [root], intermediates: [oca] });
    expect(thrown(() => v.validate(orgLeaf, null as never)).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => v.validate(orgLeaf, 'x' as never)).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => v.validate(orgLeaf, { at: 'x' as never })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(thrown(() => v.buildPaths(orgLeaf, { at: new Date(Number.NaN) })).code).toBe('ERR_INVALID_ARGUMENT');
    expect(v.buildPaths(orgLeaf)).toEqual([[orgLeaf, oca, root]]);
  });

  it('the validator keeps its inputs: intermediates that are anchors are left out, the environment is the one given', () => {
    const env = defineEnvironment({ name: 'kept' });
    const v = createPathValidator({ anchors: [root, oca], intermediates: [oca, dca], crls: [crl], environment: env });
    expect(v.anchors).toEqual([root, oca]);
    expect(v.intermediates).toEqual([dca]);
    expect(v.crls).toEqual([crl]);
    expect(v.environment).toBe(env);
    expect(Object.isFrozen(v)).toBe(true);
    expect(createPathValidator({ anchors: [root] }).environment).toBe(TEST_ENVIRONMENT);
  });

  it('the environment’s crlGraceSeconds applies when the option is not given; the option wins', async () => {
    const late = new Date(NEXT_UPDATE.getTime() + 1800_000);
    const env = defineEnvironment({ name: 'grace', crlGraceSeconds: 3600 });
    expect(validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: late, environment: env, requireRevocation: true })).valid).toBe(true);
    const r = validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: late, environment: env, crlGraceSeconds: 0, requireRevocation: true }));
    expect(errors(r).sort()).toEqual(['ERR_CRL_EXPIRED', 'ERR_CRL_EXPIRED', 'ERR_CRL_MISSING', 'ERR_CRL_MISSING']);
    const [leafExpired] = only(r, 'ERR_CRL_EXPIRED');
    expect(leafExpired?.message).toBe(`CRL #10 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): past its nextUpdate 2024-06-08T00:00:00.000Z; validation time ${late.toISOString()}`);
    const beyond = new Date(NEXT_UPDATE.getTime() + 3601_000);
    const r2 = validatePath(orgLeaf, orgPath({ crls: [crl, arl], at: beyond, environment: env }));
    expect(only(r2, 'ERR_CRL_EXPIRED')[0]?.message).toBe(`CRL #10 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): past its nextUpdate 2024-06-08T00:00:00.000Z + 3600 s grace; validation time ${beyond.toISOString()}`);
  });
});

describe('what each finding says (the message names the certificate, its subject, the CRL or the key)', () => {
  it('validity: the certificate index, its subject (or "empty subject"), the bound and the validation time', () => {
    const early = new Date('2023-12-31T23:59:59Z');
    const r = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], at: early });
    expect(only(r, 'ERR_CHAIN_NOT_YET_VALID').map((f) => f.message)).toEqual([
      'certificate 0 (empty subject) is not valid before 2024-01-01T00:00:00.000Z; validation time 2023-12-31T23:59:59.000Z',
      'certificate 1 (CN=E357) is not valid before 2024-01-01T00:00:00.000Z; validation time 2023-12-31T23:59:59.000Z',
      'certificate 2 (OU=00, CN=ZA) is not valid before 2024-01-01T00:00:00.000Z; validation time 2023-12-31T23:59:59.000Z',
    ]);
    const late = new Date('2060-01-01T00:00:00Z');
    const r2 = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], at: late });
    expect(only(r2, 'ERR_CHAIN_EXPIRED').map((f) => [f.certificateIndex, f.message])).toEqual([
      [1, `certificate 1 (CN=E357) expired at ${dca.notAfter.toISOString()}; validation time 2060-01-01T00:00:00.000Z`],
      [2, `certificate 2 (OU=00, CN=ZA) expired at ${root.notAfter.toISOString()}; validation time 2060-01-01T00:00:00.000Z`],
    ]);
    const r3 = validatePath(orgLeaf, orgPath({ at: new Date('2035-01-01T00:00:00Z') }));
    expect(one(r3, 'ERR_CHAIN_EXPIRED').message).toMatch(/^certificate 0 \(OU=02, x500UniqueIdentifier=#[0-9A-F]+\) expired at /);
  });

  it('an unknown critical extension, a policy not allowed, a lint finding', async () => {
    const leaf = await make(orgTemplate(oca, newSigner().publicKey, { policies: ['1.2.3.4'], extra: [extension('1.2.3.4.5', true, nul())] }), h.organisationCa.signer);
    const r = validatePath(leaf, orgPath());
    expect(one(r, 'ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION').message).toBe('certificate 0 has critical extension 1.2.3.4.5, which path validation does not process');
    expect(one(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED').message).toBe(
      `certificate 0 carries policies [1.2.3.4], none allowed here in environment test ([${TEST_ENVIRONMENT.organisationPolicies.join(', ')}])`,
    );
    expect(one(r, 'ERR_PROFILE_POLICY_NOT_ALLOWED').message).toMatch(/^certificate 0: certificatePolicies: 1\.2\.3\.4 /);
  });

  it('name chaining, key identifiers, CA, keyCertSign and path length name both certificates', async () => {
    const s = newSigner();
    const notCa = await make(caTemplate(root, s.publicKey, ocaName('Z3'), { basicConstraints: null, keyUsage: ['cRLSign'] }), h.root.signer);
    const leaf = await make(orgTemplate(notCa, newSigner().publicKey, { aki: Uint8Array.of(0x40, 1, 2, 3, 4, 5, 6, 7) }), s);
    const r = validatePath(leaf, { anchors: [root], intermediates: [notCa], at: AT });
    expect(one(r, 'ERR_CHAIN_KEY_ID_MISMATCH').message).toBe(`certificate 0 authorityKeyIdentifier 4001020304050607 is not certificate 1 subjectKeyIdentifier ${notCa.subjectKeyId}`);
    expect(one(r, 'ERR_CHAIN_ISSUER_NOT_CA').message).toBe('certificate 1 (OU=07, CN=Z3) issues certificate 0 but is not a CA (basicConstraints cA)');
    expect(one(r, 'ERR_CHAIN_ISSUER_KEY_USAGE').message).toBe('certificate 1 (OU=07, CN=Z3) issues certificate 0 without keyCertSign');
    // pathLenConstraint 0 on the root, with the OCA below it.
    const strictRoot = await make(caTemplate(root, h.root.signer.publicKey, ROOT_NAME, { issuerName: ROOT_NAME, basicConstraints: { ca: true, pathLength: 0 }, aki: null }), h.root.signer);
    const r2 = validatePath(orgLeaf, { anchors: [strictRoot], intermediates: [oca], at: AT });
    expect(one(r2, 'ERR_CHAIN_PATH_LENGTH_EXCEEDED')).toMatchObject({ certificateIndex: 2, message: 'certificate 2 (OU=00, CN=ZA) allows 0 CA certificate(s) below it; the path has 1' });
  });

  it('signature: why it is invalid (no usable key, another algorithm, or it does not verify)', async () => {
    const forged = await make(orgTemplate(oca, newSigner().publicKey), newSigner());
    expect(one(validatePath(forged, orgPath()), 'ERR_CHAIN_SIGNATURE_INVALID').message).toBe('certificate 0 signature is invalid: it does not verify under the key of certificate 1 (OU=07, CN=Z1)');
    const sha384 = await make(orgTemplate(oca, newSigner().publicKey, { signatureAlgorithm: { oid: '1.2.840.10045.4.3.3', params: 'absent' } }), h.organisationCa.signer);
    expect(one(validatePath(sha384, orgPath()), 'ERR_CHAIN_SIGNATURE_INVALID').message).toBe('certificate 0 signature is invalid: algorithm 1.2.840.10045.4.3.3 is not ecdsa-with-SHA256');
    // A CA whose key is not a usable P-256 point: nothing it signed verifies.
    const offCurve = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1));
    const badKeyCa = await make(caTemplate(root, offCurve, ocaName('Z6')), h.root.signer);
    const under = await make(orgTemplate(badKeyCa, newSigner().publicKey), newSigner());
    const r = validatePath(under, { anchors: [root], intermediates: [badKeyCa], at: AT });
    expect(one(r, 'ERR_CHAIN_SIGNATURE_INVALID').message).toBe('certificate 0 signature is invalid: certificate 1 has no usable P-256 key');
  });

  it('leaf kind and PKI: what the leaf is, what it must be issued by, and what its issuer is', async () => {
    expect(one(validatePath(oca, { anchors: [root], at: AT }), 'ERR_CHAIN_PROFILE_VIOLATION').message).toBe(
      'the leaf is of kind issuingCa; an SMKI path ends in an organisation or device certificate',
    );
    const dev = await make(deviceTemplate(oca, newSigner().publicKey), h.organisationCa.signer);
    expect(one(validatePath(dev, orgPath()), 'ERR_CHAIN_PKI_MISMATCH').message).toBe('a device certificate must be issued by a device CA; its issuer OU=07, CN=Z1 is organisationCa');
    const org = await make(orgTemplate(dca, newSigner().publicKey), h.deviceCa.signer);
    expect(one(validatePath(org, { anchors: [root], intermediates: [dca], at: AT }), 'ERR_CHAIN_PKI_MISMATCH').message).toBe(
      'an organisation certificate must be issued by an organisation CA; its issuer CN=E357 is deviceCa',
    );
    const byRoot = await make(orgTemplate(root, newSigner().publicKey), h.root.signer);
    const r = validatePath(byRoot, { anchors: [root], at: AT });
    expect(one(r, 'ERR_CHAIN_PKI_MISMATCH')).toMatchObject({ certificateIndex: 0, message: 'an organisation certificate must be issued by an organisation CA; its issuer OU=00, CN=ZA is root' });
  });

  it('no anchors, no issuer, a path too long', async () => {
    expect(validatePath(orgLeaf, { anchors: [], at: AT }).findings).toEqual([{ code: 'ERR_CHAIN_NO_ANCHORS', message: 'no trust anchor was given', severity: 'error' }]);
    expect(validatePath(orgLeaf, { anchors: [root], at: AT }).findings).toEqual([
      { code: 'ERR_CHAIN_ISSUER_NOT_FOUND', message: 'no certificate named "OU=07, CN=Z1" leads to a trust anchor', severity: 'error', certificateIndex: 0 },
    ]);
    const r = validatePath(orgLeaf, { anchors: [root], intermediates: [oca], at: AT, maxDepth: 2 });
    expect(one(r, 'ERR_CHAIN_TOO_LONG')).toMatchObject({ certificateIndex: 2, message: 'the path has 3 certificates; at most 2 are allowed (leaf, issuing CA, root)' });
  });
});

describe('revocation (RFC 5280 §6.3.3)', () => {
  const required = (extra: Partial<Parameters<typeof validatePath>[1]> = {}) => orgPath({ requireRevocation: true, ...extra });

  it('a CRL without authorityKeyIdentifier is the issuer’s by name alone (RFC 5280 §5.2.1 makes the AKI a hint)', async () => {
    const noAki = await handCrl(h.organisationCa, { aki: null });
    const r = validatePath(orgLeaf, required({ crls: [noAki, arl] }));
    expect(r.findings).toEqual([]);
    expect(r.revocationChecked).toBe(true);
  });

  it('a CRL with an AKI covers certificates of a CA that has no SKI', async () => {
    const s = newSigner();
    const noSki = await make(caTemplate(root, s.publicKey, ocaName('Z7'), { ski: false }), h.root.signer);
    const leaf = await make(orgTemplate(noSki, newSigner().publicKey), s);
    const caCrl = await handCrl({ certificate: noSki, signer: s });
    const r = validatePath(leaf, { anchors: [root], intermediates: [noSki], crls: [caCrl, arl], at: AT, requireRevocation: true });
    expect(errors(r)).toEqual(['ERR_PROFILE_SKI_MISSING']);
    expect(warnings(r)).toEqual([]);
    expect(r.revocationChecked).toBe(true);
  });

  it('why a certificate is not covered: none given, none usable, or out of scope (each CRL named)', async () => {
    const none = validatePath(orgLeaf, required());
    expect(only(none, 'ERR_CRL_MISSING').map((f) => f.message)).toEqual([
      `certificate 0 (serial ${orgLeaf.serialNumber}) is not covered by a usable CRL: no CRL from its issuer was given`,
      `certificate 1 (serial ${oca.serialNumber}) is not covered by a usable CRL: no CRL from its issuer was given`,
    ]);
    const expired = validatePath(orgLeaf, required({ crls: [crl, arl], at: new Date('2024-07-01T00:00:00Z') }));
    expect(only(expired, 'ERR_CRL_MISSING')[0]?.message).toBe(`certificate 0 (serial ${orgLeaf.serialNumber}) is not covered by a usable CRL: no CRL from its issuer is usable`);
    // An ARL of the OCA covers CA certificates only; the root's organisation CRL end entities only.
    const ocaArl = await issueCrl({ issuer: h.organisationCa, crlNumber: 11n, kind: 'arl', ...window });
    const rootCrl = await issueCrl({ issuer: h.root, crlNumber: 4n, kind: 'crl', ...window });
    const partitioned = await handCrl(h.organisationCa, { number: 12, extensions: [rawExtension(OID.issuingDistributionPoint, true, seq(tlv(0x83, Uint8Array.of(0x07, 0x80))))] });
    const r = validatePath(orgLeaf, required({ crls: [ocaArl, partitioned, rootCrl] }));
    expect(errors(r)).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_MISSING']);
    expect(warnings(r)).toEqual([]);
    expect(only(r, 'ERR_CRL_MISSING').map((f) => f.message)).toEqual([
      `certificate 0 (serial ${orgLeaf.serialNumber}) is not covered by a usable CRL: CRL #12 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z) is partitioned, indirect or a delta CRL; CRL #11 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z) covers only CA certificates`,
      `certificate 1 (serial ${oca.serialNumber}) is not covered by a usable CRL: CRL #4 from OU=00, CN=ZA (thisUpdate 2024-06-01T00:00:00.000Z) covers only end-entity certificates`,
    ]);
    // Without requireRevocation, out-of-scope CRLs are no finding at all.
    expect(validatePath(orgLeaf, orgPath({ crls: [ocaArl, partitioned, rootCrl] })).findings).toEqual([]);
  });

  it('an entry out of the CRL’s scope does not revoke: a leaf listed in an ARL, the OCA in a user-certificates CRL', async () => {
    const ocaArl = await issueCrl({ issuer: h.organisationCa, crlNumber: 13n, kind: 'arl', ...window, revoked: [{ serialNumber: orgLeaf.serialNumber, revocationDate: THIS_UPDATE }] });
    expect(validatePath(orgLeaf, orgPath({ crls: [ocaArl] })).valid).toBe(true);
    const rootCrl = await issueCrl({ issuer: h.root, crlNumber: 5n, kind: 'crl', ...window, revoked: [{ serialNumber: oca.serialNumber, revocationDate: THIS_UPDATE }] });
    expect(validatePath(orgLeaf, orgPath({ crls: [rootCrl] })).valid).toBe(true);
    // A complete CRL (no issuingDistributionPoint) covers both.
    const all = await issueCrl({ issuer: h.root, crlNumber: 6n, ...window, revoked: [{ serialNumber: oca.serialNumber, revocationDate: THIS_UPDATE }] });
    expect(one(validatePath(orgLeaf, orgPath({ crls: [all] })), 'ERR_REVOKED').certificateIndex).toBe(1);
  });

  it('removeFromCRL never revokes; other reasons do, and the finding carries them', async () => {
    const removed = await handCrl(h.organisationCa, { entries: [revokedEntry(orgLeaf, 8)] });
    expect(validatePath(orgLeaf, orgPath({ crls: [removed] })).valid).toBe(true);
    const compromised = await handCrl(h.organisationCa, { number: 7, entries: [revokedEntry(orgLeaf, 1)] });
    const f = one(validatePath(orgLeaf, orgPath({ crls: [compromised] })), 'ERR_REVOKED');
    expect(f).toMatchObject({ severity: 'error', certificateIndex: 0 });
    expect(f.message).toBe(`certificate 0 (serial ${orgLeaf.serialNumber}) is revoked since 2024-06-01T00:00:00.000Z (keyCompromise) by CRL #7 from OU=07, CN=Z1`);
    expect(f.context).toEqual({ certificateIndex: 0, serialNumber: orgLeaf.serialNumber, revocationDate: THIS_UPDATE, reason: 'keyCompromise' });
  });

  it('an entry without reasonCode revokes with no reason; an unnumbered CRL is "#?"', async () => {
    const plain = await handCrl(h.organisationCa, { number: null, entries: [revokedEntry(orgLeaf)] });
    const r = validatePath(orgLeaf, orgPath({ crls: [plain] }));
    const f = one(r, 'ERR_REVOKED');
    expect(f.context).toEqual({ certificateIndex: 0, serialNumber: orgLeaf.serialNumber, revocationDate: THIS_UPDATE });
    expect(f.message).toBe(`certificate 0 (serial ${orgLeaf.serialNumber}) is revoked since 2024-06-01T00:00:00.000Z by CRL #? from OU=07, CN=Z1`);
    expect(one(r, 'ERR_CRL_NUMBER_MISSING').message).toBe('CRL #? from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): has no cRLNumber (RFC 5280 5.2.3)');
  });

  it('certificateHold: the newest CRL decides, by cRLNumber, then thisUpdate, also across per-call CRLs', async () => {
    const held = await orgUnder(h.organisationCa);
    const hold = (n: bigint, thisUpdate = THIS_UPDATE) =>
      issueCrl({ issuer: h.organisationCa, crlNumber: n, thisUpdate, nextUpdate: NEXT_UPDATE, revoked: [{ serialNumber: held, revocationDate: THIS_UPDATE, reason: 'certificateHold' }] });
    const clean = (n: bigint, thisUpdate = THIS_UPDATE) => issueCrl({ issuer: h.organisationCa, crlNumber: n, thisUpdate, nextUpdate: NEXT_UPDATE });
    const path = (crls: SmkiCrl[]) => validatePath(held, orgPath({ crls }));
    expect(errors(path([await clean(20n), await hold(21n)]))).toEqual(['ERR_REVOKED']);
    expect(errors(path([await hold(21n), await clean(22n)]))).toEqual([]);
    // Equal numbers: the later thisUpdate is the newer.
    const earlier = new Date('2024-05-31T00:00:00Z');
    expect(errors(path([await clean(30n, earlier), await hold(30n)]))).toEqual(['ERR_REVOKED']);
    expect(errors(path([await hold(30n, earlier), await clean(30n)]))).toEqual([]);
    // A validator's CRLs and a call's CRLs are ordered together.
    const v = createPathValidator({ anchors: [root], intermediates: [oca], crls: [await hold(40n)] });
    expect(errors(v.validate(held, { at: AT, crls: [await clean(41n)] }))).toEqual([]);
    const v2 = createPathValidator({ anchors: [root], intermediates: [oca], crls: [await clean(41n)] });
    expect(errors(v2.validate(held, { at: AT, crls: [await hold(42n)] }))).toEqual(['ERR_REVOKED']);
    // A CRL without a cRLNumber is older than any numbered one.
    const unnumberedHold = await handCrl(h.organisationCa, { number: null, entries: [revokedEntry(held, 6)] });
    const r = path([unnumberedHold, await clean(0n)]);
    expect(errors(r)).toEqual([]);
    expect(only(r, 'ERR_CRL_NUMBER_MISSING').map((f) => f.severity)).toEqual(['warning']);
  });

  it('CRL problems name the CRL: issuer without cRLSign, bad signature, unknown critical extension, critical cRLNumber, not yet valid, no nextUpdate', async () => {
    const s = newSigner();
    const noCrlSign = await make(caTemplate(root, s.publicKey, ocaName('Z5'), { keyUsage: ['keyCertSign'] }), h.root.signer);
    const leaf = await make(orgTemplate(noCrlSign, newSigner().publicKey), s);
    const own = await handCrl({ certificate: noCrlSign, signer: s }, { number: 2 });
    const r1 = validatePath(leaf, { anchors: [noCrlSign], at: AT, crls: [own] });
    expect(one(r1, 'ERR_CRL_ISSUER_KEY_USAGE').message).toBe('CRL #2 from OU=07, CN=Z5 (thisUpdate 2024-06-01T00:00:00.000Z): certificate 1 (OU=07, CN=Z5) lacks cRLSign');

    const forged = await handCrl({ certificate: oca, signer: newSigner() }, { number: 3 });
    expect(one(validatePath(orgLeaf, orgPath({ crls: [forged] })), 'ERR_CRL_SIGNATURE_INVALID').message).toBe(
      'CRL #3 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): signature does not verify under the key of certificate 1',
    );

    const unknown = await handCrl(h.organisationCa, {
      number: 4,
      entries: [seq(int(5), time(THIS_UPDATE), seq(rawExtension('1.2.3.6', true, nul())))],
      extensions: [rawExtension('1.2.3.5', true, nul())],
    });
    expect(one(validatePath(orgLeaf, orgPath({ crls: [unknown] })), 'ERR_CRL_UNKNOWN_CRITICAL_EXTENSION').message).toBe(
      'CRL #4 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): unprocessed critical extension(s) 1.2.3.6 (entry 05), 1.2.3.5',
    );

    const criticalNumber = await handCrl(h.organisationCa, { number: null, extensions: [rawExtension(OID.cRLNumber, true, int(9))] });
    expect(one(validatePath(orgLeaf, orgPath({ crls: [criticalNumber] })), 'ERR_CRL_NUMBER_CRITICAL').message).toBe(
      'CRL #9 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): its cRLNumber is marked critical (RFC 5280 5.2.3: non-critical)',
    );

    const early = new Date('2024-05-31T23:59:59Z');
    expect(one(validatePath(orgLeaf, orgPath({ crls: [crl], at: early })), 'ERR_CRL_NOT_YET_VALID').message).toBe(
      'CRL #10 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): not valid before its thisUpdate; validation time 2024-05-31T23:59:59.000Z',
    );

    const noNext = await handCrl(h.organisationCa, { number: 5, nextUpdate: null });
    const r = validatePath(orgLeaf, orgPath({ crls: [noNext] }));
    expect(errors(r)).toEqual(['ERR_CRL_EXPIRED']);
    expect(one(r, 'ERR_CRL_EXPIRED').message).toBe('CRL #5 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): has no nextUpdate, so its currency cannot be judged');
  });

  it('no CRL from the issuer: a warning naming the issuer and its key, counting CRLs given to the validator and to the call', async () => {
    const dcaCrl = await issueCrl({ issuer: h.deviceCa, crlNumber: 1n, ...window });
    const v = createPathValidator({ anchors: [root], intermediates: [oca] });
    const r = v.validate(orgLeaf, { at: AT, crls: [dcaCrl] });
    expect(r.valid).toBe(true);
    expect(only(r, 'ERR_CRL_ISSUER_MISMATCH').map((f) => [f.certificateIndex, f.severity, f.message])).toEqual([
      [0, 'warning', `none of the 1 CRL(s) given is from the issuer of certificate 0 (OU=07, CN=Z1, key ${oca.subjectKeyId})`],
      [1, 'warning', `none of the 1 CRL(s) given is from the issuer of certificate 1 (OU=00, CN=ZA, key ${root.subjectKeyId})`],
    ]);
    // Without any CRL there is nothing to say; with an unusable CRL from the issuer, that CRL's problem is the finding.
    expect(v.validate(orgLeaf, { at: AT }).findings).toEqual([]);
    const r2 = validatePath(orgLeaf, { anchors: [oca], at: new Date('2024-07-01T00:00:00Z'), crls: [crl, dcaCrl] });
    expect(errors(r2)).toEqual(['ERR_CRL_EXPIRED']);
    expect(warnings(r2)).toEqual([]);
  });

  it('a CRL’s signature is checked against each candidate issuer (no result is reused for another key)', async () => {
    // Two same-named OCAs; the CRL has no AKI, so both could be its issuer by name.
    const impostorSigner = newSigner();
    const impostor = await make(caTemplate(root, impostorSigner.publicKey, ocaName('Z1')), h.root.signer);
    const leafNoAki = await make(orgTemplate(oca, newSigner().publicKey, { aki: null }), h.organisationCa.signer);
    const noAki = await handCrl(h.organisationCa, { aki: null });
    const r = validatePath(leafNoAki, { anchors: [root], intermediates: [impostor, oca], crls: [noAki, arl], at: AT, requireRevocation: true });
    expect(r.candidates).toHaveLength(2);
    const byIssuer = new Map(r.candidates.map((c) => [c.path[1], c]));
    expect(errors(byIssuer.get(impostor) as never)).toEqual(expect.arrayContaining(['ERR_CHAIN_SIGNATURE_INVALID', 'ERR_CRL_SIGNATURE_INVALID']));
    expect(errors(byIssuer.get(oca) as never)).not.toContain('ERR_CRL_SIGNATURE_INVALID');
  });
});

describe('path building order and bounds (RFC 4158)', () => {
  it('issuers: AKI = SKI first, then those without an SKI, mismatching ones last', async () => {
    const noSki = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1'), { ski: false }), h.root.signer);
    const other = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1')), h.root.signer);
    const paths = buildPaths(orgLeaf, { anchors: [root], intermediates: [other, noSki, oca] });
    expect(paths.map((p) => p[1])).toEqual([oca, noSki, other]);
  });

  it('then an anchor before an intermediate, then the newest notBefore, then the order given', async () => {
    const leafNoAki = await make(orgTemplate(oca, newSigner().publicKey, { aki: null }), h.organisationCa.signer);
    const newer = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1'), { notBefore: new Date('2024-02-01T00:00:00Z') }), h.root.signer);
    const older = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1'), { notBefore: new Date('2023-06-01T00:00:00Z') }), h.root.signer);
    expect(buildPaths(leafNoAki, { anchors: [root], intermediates: [older, oca, newer] }).map((p) => p[1])).toEqual([newer, oca, older]);
    // The same-named anchor first (a shorter path), whatever its age.
    expect(buildPaths(leafNoAki, { anchors: [root, older], intermediates: [newer, oca] }).map((p) => p[1])).toEqual([older, newer, oca]);
    // Equal keys keep the order given.
    const twin = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1')), h.root.signer);
    expect(buildPaths(leafNoAki, { anchors: [root], intermediates: [oca, twin] }).map((p) => p[1])).toEqual([oca, twin]);
    expect(buildPaths(leafNoAki, { anchors: [root], intermediates: [twin, oca] }).map((p) => p[1])).toEqual([twin, oca]);
  });

  it('at most 64 candidate paths', async () => {
    const anchors = await Promise.all(Array.from({ length: 70 }, () => make(caTemplate(root, newSigner().publicKey, ocaName('Z1')), h.root.signer)));
    const paths = buildPaths(orgLeaf, { anchors });
    expect(paths).toHaveLength(64);
    expect(paths.map((p) => p[1])).toEqual(anchors.slice(0, 64));
  });

  it('the search is bounded in steps: many same-named CAs that lead nowhere end it quickly', async () => {
    // Twenty CAs named like the OCA and issued under that same name: each is an issuer candidate
    // of every other, and none reaches an anchor.
    const loops = await Promise.all(Array.from({ length: 20 }, () => make(caTemplate(oca, newSigner().publicKey, ocaName('Z1')), newSigner())));
    const t0 = performance.now();
    expect(buildPaths(orgLeaf, { anchors: [root], intermediates: loops, maxDepth: 8 })).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('paths up to maxDepth + 2 are searched, so that a longer one is reported as too long rather than missing', async () => {
    const s = newSigner();
    const subOca = await make(caTemplate(oca, s.publicKey, ocaName('Z2')), h.organisationCa.signer);
    const leaf = await orgUnder({ certificate: subOca, signer: s });
    const r = validatePath(leaf, { anchors: [root], intermediates: [oca, subOca], at: AT, maxDepth: 2 });
    expect(r.path).toEqual([leaf, subOca, oca, root]);
    expect(one(r, 'ERR_CHAIN_TOO_LONG')).toMatchObject({ certificateIndex: 3, message: 'the path has 4 certificates; at most 2 are allowed (leaf, issuing CA, root)' });
  });

  it('a leaf with no issuer by name: its own problems are reported beside ERR_CHAIN_ISSUER_NOT_FOUND', async () => {
    const expiredOrphan = await make(orgTemplate(dca, newSigner().publicKey, { notBefore: new Date('2010-01-01T00:00:00Z'), notAfter: new Date('2011-01-01T00:00:00Z') }), newSigner());
    const r = validatePath(expiredOrphan, { anchors: [root], intermediates: [oca], at: AT });
    expect(r.path).toEqual([expiredOrphan]);
    expect(r.revocationChecked).toBe(false);
    expect(r.candidates).toEqual([]);
    expect(r.findings.map((f) => [f.code, f.certificateIndex])).toEqual([
      ['ERR_CHAIN_ISSUER_NOT_FOUND', 0],
      ['ERR_CHAIN_EXPIRED', 0],
    ]);
  });
});

describe('per-level rules', () => {
  it('policies: the root’s from rootPolicies when the environment sets them, an issuing CA’s from the organisation and device lists', async () => {
    const env = defineEnvironment({ name: 'root-policy', rootPolicies: ['1.2.3.7'] });
    const r = validatePath(orgLeaf, orgPath({ environment: env }));
    expect(only(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED').map((f) => f.certificateIndex)).toEqual([2]);
    const rootOk = await make(caTemplate(root, h.root.signer.publicKey, ROOT_NAME, { issuerName: ROOT_NAME, basicConstraints: { ca: true }, aki: null, policies: ['1.2.3.7'] }), h.root.signer);
    expect(validatePath(orgLeaf, { anchors: [rootOk], intermediates: [oca], at: AT, environment: env }).valid).toBe(true);
    // An issuing CA may not carry the root policy alone.
    const s = newSigner();
    const ocaRootPolicy = await make(caTemplate(rootOk, s.publicKey, ocaName('Z1'), { policies: ['1.2.3.7'] }), h.root.signer);
    const leaf = await orgUnder({ certificate: ocaRootPolicy, signer: s });
    const r2 = validatePath(leaf, { anchors: [rootOk], intermediates: [ocaRootPolicy], at: AT, environment: env });
    expect(only(r2, 'ERR_CHAIN_POLICY_NOT_ALLOWED').map((f) => f.certificateIndex)).toEqual([1]);
  });

  it('policies: a device leaf carries a device policy, a CA as the leaf any SMKI policy', async () => {
    const dev = await make(deviceTemplate(dca, newSigner().publicKey, { policies: TEST_ENVIRONMENT.organisationPolicies }), h.deviceCa.signer);
    const r = validatePath(dev, { anchors: [root], intermediates: [dca], at: AT });
    expect(only(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED').map((f) => f.certificateIndex)).toEqual([0]);
    // The OCA as a leaf: linted as what it is (an issuing CA), only the leaf kind is wrong.
    expect(errors(validatePath(oca, { anchors: [root], at: AT }))).toEqual(['ERR_CHAIN_PROFILE_VIOLATION']);
    expect(errors(validatePath(dca, { anchors: [root], at: AT }))).toEqual(['ERR_CHAIN_PROFILE_VIOLATION']);
  });

  it('an intermediate is linted as an issuing CA even when its content matches no kind', async () => {
    const s = newSigner();
    const noBc = await make(caTemplate(root, s.publicKey, ocaName('Z8'), { basicConstraints: null }), h.root.signer);
    expect(noBc.kind).toBe('unknown');
    const leaf = await make(orgTemplate(noBc, newSigner().publicKey), s);
    const r = validatePath(leaf, { anchors: [root], intermediates: [noBc], at: AT });
    expect(r.findings.filter((f) => f.certificateIndex === 1 && f.severity === 'error').map((f) => f.code)).toEqual(['ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', 'ERR_CHAIN_ISSUER_NOT_CA']);
  });

  it('signature algorithms: NULL parameters on both sides verify (a warning); other parameters, or different ones inside, do not', async () => {
    const nullAlg = { oid: OID.ecdsaWithSha256, params: 'null' } as const;
    const withNull = await make(orgTemplate(oca, newSigner().publicKey, { signatureAlgorithm: nullAlg }), h.organisationCa.signer);
    const r = validatePath(withNull, orgPath());
    expect(r.valid).toBe(true);
    expect(warnings(r)).toEqual(['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS']);
    const insideOnly = await make({ ...orgTemplate(oca, newSigner().publicKey), tbsSignatureAlgorithm: nullAlg }, h.organisationCa.signer);
    expect(errors(validatePath(insideOnly, orgPath()))).toContain('ERR_CHAIN_SIGNATURE_INVALID');
    // An OID as parameters: 'other' (patched into both AlgorithmIdentifiers, signed again).
    const t = orgTemplate(oca, newSigner().publicKey);
    const tbs = encodeTbsCertificate(t);
    const body = Buffer.from(tbs.subarray((tbs[1] as number) & 0x80 ? 2 + ((tbs[1] as number) & 0x7f) : 2));
    const plain = Buffer.from(seq(oid(OID.ecdsaWithSha256)));
    const withOid = seq(oid(OID.ecdsaWithSha256), oid('1.2.3'));
    const algAt = body.indexOf(plain);
    const patchedTbs = seq(Buffer.concat([body.subarray(0, algAt), withOid, body.subarray(algAt + plain.length)]));
    const sig = p1363ToDer(await h.organisationCa.signer.sign(patchedTbs));
    const other = parseCertificate(seq(patchedTbs, withOid, bitString(sig)));
    expect(other.details.signatureAlgorithmParams).toBe('other');
    expect(other.details.signatureAlgorithmsMatch).toBe(true);
    expect(one(validatePath(other, orgPath()), 'ERR_CHAIN_SIGNATURE_INVALID').message).toBe('certificate 0 signature is invalid: algorithm 1.2.840.10045.4.3.2 is not ecdsa-with-SHA256');
  });

  it('a self-issued CA in the path does not count against pathLenConstraint (RFC 5280 §6.1.4 (l))', async () => {
    // A root with pathLenConstraint 1, a self-issued certificate of the root name for a new key
    // (signed by the root's key), an OCA under the new key, and a leaf.
    const rootKey = newSigner();
    const newKey = newSigner();
    const ocaKey = newSigner();
    const anchor = await make(caTemplate(root, rootKey.publicKey, ROOT_NAME, { issuerName: ROOT_NAME, basicConstraints: { ca: true, pathLength: 1 }, aki: null }), rootKey);
    const rollover = await make(caTemplate(anchor, newKey.publicKey, ROOT_NAME, { basicConstraints: { ca: true } }), rootKey);
    const ocaUnderNew = await make(caTemplate(rollover, ocaKey.publicKey, ocaName('Z1')), newKey);
    const leaf = await orgUnder({ certificate: ocaUnderNew, signer: ocaKey });
    const r = validatePath(leaf, { anchors: [anchor], intermediates: [rollover, ocaUnderNew], at: AT, maxDepth: 4 });
    const four = r.candidates.find((c) => c.path.length === 4);
    expect(four?.path).toEqual([leaf, ocaUnderNew, rollover, anchor]);
    expect(four?.verifiedSignatures).toBe(3);
    expect(four?.findings.map((f) => f.code)).not.toContain('ERR_CHAIN_PATH_LENGTH_EXCEEDED');
    // With pathLenConstraint 0 the OCA below is one too many.
    const strict = await make(caTemplate(root, rootKey.publicKey, ROOT_NAME, { issuerName: ROOT_NAME, basicConstraints: { ca: true, pathLength: 0 }, aki: null }), rootKey);
    const r2 = validatePath(leaf, { anchors: [strict], intermediates: [rollover, ocaUnderNew], at: AT, maxDepth: 4 });
    const four2 = r2.candidates.find((c) => c.path.length === 4);
    expect(four2?.findings.filter((f) => f.code === 'ERR_CHAIN_PATH_LENGTH_EXCEEDED').map((f) => [f.certificateIndex, f.message])).toEqual([
      [3, 'certificate 3 (OU=00, CN=ZA) allows 0 CA certificate(s) below it; the path has 1'],
    ]);
  });

  it('each path’s signatures are its own: a leaf signature result is not reused for another certificate under the same issuer', async () => {
    // Two same-named OCAs; the second is not really signed by the root. Revocation is required
    // (no CRLs), so both candidates fail and both are checked.
    const fake = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1')), newSigner());
    const r = validatePath(orgLeaf, { anchors: [root], intermediates: [oca, fake], at: AT, requireRevocation: true });
    expect(r.candidates.map((c) => c.path[1])).toEqual([oca, fake]);
    const second = r.candidates[1];
    expect(second?.findings.filter((f) => f.code === 'ERR_CHAIN_SIGNATURE_INVALID').map((f) => f.certificateIndex)).toEqual([0, 1]);
    expect(second?.verifiedSignatures).toBe(0);
    expect(r.candidates[0]?.verifiedSignatures).toBe(2);
    expect(r.path[1]).toBe(oca);
  });
});

describe('more path cases found by mutation testing', () => {
  it('a CRL whose algorithm is not ecdsa-with-SHA256, or whose issuer has no usable key, is not authentic', async () => {
    const c = oca;
    const tbs = seq(
      int(1),
      seq(oid('1.2.840.10045.4.3.3')),
      c.subject.der,
      time(THIS_UPDATE),
      time(NEXT_UPDATE),
      ctx(0, false, seq(rawExtension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(keyIdMethod2(c.publicKeyBytes))), rawExtension(OID.cRLNumber, false, int(1)))),
    );
    // Signed correctly with SHA-256, but labelled ecdsa-with-SHA384.
    const sha384 = parseCrl(seq(tbs, seq(oid('1.2.840.10045.4.3.3')), bitString(p1363ToDer(await h.organisationCa.signer.sign(tbs)))));
    expect(errors(validatePath(orgLeaf, orgPath({ crls: [sha384] })))).toEqual(['ERR_CRL_SIGNATURE_INVALID']);
    // A CA whose key is not a usable point, with cRLSign: nothing it signed is authentic.
    const offCurve = Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1));
    const badKeyCa = await make(caTemplate(root, offCurve, ocaName('Z6')), h.root.signer);
    const anyKey = newSigner();
    const under = await make(orgTemplate(badKeyCa, newSigner().publicKey), anyKey);
    const itsCrl = await handCrl({ certificate: badKeyCa, signer: anyKey });
    const r = validatePath(under, { anchors: [badKeyCa], at: AT, crls: [itsCrl] });
    expect(errors(r).sort()).toEqual(['ERR_CHAIN_SIGNATURE_INVALID', 'ERR_CRL_SIGNATURE_INVALID', 'ERR_PROFILE_KEY_POINT']);
    // Which of the two: the issuer has no key to check the CRL with.
    expect(one(r, 'ERR_CRL_SIGNATURE_INVALID').message).toBe('CRL #1 from OU=07, CN=Z6 (thisUpdate 2024-06-01T00:00:00.000Z): certificate 1 has no usable P-256 key');
    expect(one(validatePath(orgLeaf, orgPath({ crls: [sha384] })), 'ERR_CRL_SIGNATURE_INVALID').message).toBe(
      'CRL #1 from OU=07, CN=Z1 (thisUpdate 2024-06-01T00:00:00.000Z): signature does not verify under the key of certificate 1',
    );
  });

  it('the key-identifier search is a diagnostic only: never used while a name matches, never for a leaf without an AKI', async () => {
    // A certificate of the OCA's key under another name.
    const renamed = await make(caTemplate(root, h.organisationCa.signer.publicKey, ocaName('Z9')), h.root.signer);
    expect(buildPaths(orgLeaf, { anchors: [root], intermediates: [oca, renamed] })).toEqual([[orgLeaf, oca, root]]);
    const r = validatePath(orgLeaf, { anchors: [root], intermediates: [oca, renamed], at: AT, requireRevocation: true });
    expect(r.candidates.map((c) => c.path)).toEqual([[orgLeaf, oca, root]]);
    // With no issuer by name, the renamed certificate is found by key and reported as a name mismatch.
    const byKey = validatePath(orgLeaf, { anchors: [root], intermediates: [renamed], at: AT });
    expect(byKey.path).toEqual([orgLeaf, renamed, root]);
    expect(one(byKey, 'ERR_CHAIN_NAME_MISMATCH').certificateIndex).toBe(0);
    // A leaf without AKI: a CA without SKI is not "found by key".
    const noSki = await make(caTemplate(root, newSigner().publicKey, ocaName('Z7'), { ski: false }), h.root.signer);
    const leafNoAki = await make(orgTemplate(oca, newSigner().publicKey, { aki: null }), h.organisationCa.signer);
    const none = validatePath(leafNoAki, { anchors: [root], intermediates: [noSki], at: AT });
    expect(none.candidates).toEqual([]);
    expect(errors(none)).toEqual(['ERR_CHAIN_ISSUER_NOT_FOUND', 'ERR_PROFILE_AKI_MISSING']);
  });

  it('no certificate twice: per-call intermediates repeating the validator’s, a leaf that is its own issuer, a cycle back to a CA', async () => {
    const v = createPathValidator({ anchors: [root], intermediates: [oca] });
    expect(v.buildPaths(orgLeaf, { intermediates: [oca] })).toEqual([[orgLeaf, oca, root]]);
    // The root as the leaf: it is not its own issuer.
    const self = validatePath(root, { anchors: [root], at: AT });
    expect(self.path).toEqual([root]);
    expect(self.candidates).toEqual([]);
    // A certificate named like the root, issued under the OCA's name: OCA → it → OCA would be a cycle.
    const back = await make(caTemplate(oca, newSigner().publicKey, ROOT_NAME, { basicConstraints: { ca: true } }), h.organisationCa.signer);
    const paths = buildPaths(orgLeaf, { anchors: [root], intermediates: [oca, back], maxDepth: 8 });
    for (const p of paths) expect(new Set(p.map((c) => c.fingerprint)).size).toBe(p.length);
    expect(paths).toContainEqual([orgLeaf, oca, root]);
  });

  it('one CRL given to the validator and again to the call is checked once', () => {
    const v = createPathValidator({ anchors: [oca], crls: [crl] });
    const r = v.validate(orgLeaf, { at: new Date('2024-07-01T00:00:00Z'), crls: [crl] });
    expect(only(r, 'ERR_CRL_EXPIRED')).toHaveLength(1);
  });

  it('building ranks by validity only at a given time; the validator’s buildPaths takes `at` too', async () => {
    const leafNoAki = await make(orgTemplate(oca, newSigner().publicKey, { aki: null }), h.organisationCa.signer);
    const expired = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1'), { notBefore: new Date('2011-01-01T00:00:00Z'), notAfter: new Date('2012-01-01T00:00:00Z') }), h.root.signer);
    const current = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1'), { notBefore: new Date('2010-01-01T00:00:00Z') }), h.root.signer);
    expect(buildPaths(leafNoAki, { anchors: [root], intermediates: [current, expired] }).map((p) => p[1])).toEqual([expired, current]);
    expect(buildPaths(leafNoAki, { anchors: [root], intermediates: [current, expired], at: AT }).map((p) => p[1])).toEqual([current, expired]);
    const v = createPathValidator({ anchors: [root], intermediates: [current, expired] });
    expect(v.buildPaths(leafNoAki).map((p) => p[1])).toEqual([expired, current]);
    expect(v.buildPaths(leafNoAki, { at: AT }).map((p) => p[1])).toEqual([current, expired]);
  });

  it('without `at`, validation runs at the current time', () => {
    expect(() => validatePath(orgLeaf, { anchors: [root], intermediates: [oca] })).not.toThrow();
    expect(() => createPathValidator({ anchors: [root] }).validate(orgLeaf)).not.toThrow();
  });

  it('a certificate needs one allowed policy, not only allowed ones (the lint reports the others)', async () => {
    const mixed = await make(orgTemplate(oca, newSigner().publicKey, { policies: [...TEST_ENVIRONMENT.organisationPolicies, '1.2.3.4'] }), h.organisationCa.signer);
    const r = validatePath(mixed, orgPath());
    expect(only(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([]);
    expect(one(r, 'ERR_PROFILE_POLICY_NOT_ALLOWED').certificateIndex).toBe(0);
  });

  it('each level is linted and profiled in the validator’s environment', async () => {
    const env = defineEnvironment({ name: 'root-policy', rootPolicies: ['1.2.3.7'] });
    const r = validatePath(orgLeaf, orgPath({ environment: env }));
    expect(r.findings.filter((f) => f.severity === 'error').map((f) => [f.code, f.certificateIndex])).toEqual([
      ['ERR_CHAIN_POLICY_NOT_ALLOWED', 2],
      ...root.policies.map(() => ['ERR_PROFILE_POLICY_NOT_ALLOWED', 2]),
    ]);
    // Policies swapped: the OCA now carries the environment's device policy.
    const swapped = defineEnvironment({ name: 'swapped', organisationPolicies: TEST_ENVIRONMENT.devicePolicies, devicePolicies: TEST_ENVIRONMENT.organisationPolicies });
    const r2 = validatePath(orgLeaf, orgPath({ environment: swapped }));
    expect(one(r2, 'ERR_CHAIN_PKI_MISMATCH').message).toBe('an organisation certificate must be issued by an organisation CA; its issuer OU=07, CN=Z1 is deviceCa');
  });

  it('an issuer with an empty subject is named "(empty)"', async () => {
    const s = newSigner();
    const emptyCa = await make(caTemplate(root, s.publicKey, []), h.root.signer);
    const dev = await make(deviceTemplate(emptyCa, newSigner().publicKey), s);
    const r = validatePath(dev, { anchors: [root], intermediates: [emptyCa], at: AT });
    expect(one(r, 'ERR_CHAIN_PKI_MISMATCH').message).toBe('a device certificate must be issued by a device CA; its issuer (empty) is organisationCa');
  });

  it('the newest CRL that lists a certificate is the one reported', async () => {
    const older = await issueCrl({ issuer: h.organisationCa, crlNumber: 50n, ...window, revoked: [{ serialNumber: orgLeaf, revocationDate: new Date('2024-05-01T00:00:00Z'), reason: 'superseded' }] });
    const newer = await issueCrl({ issuer: h.organisationCa, crlNumber: 51n, ...window, revoked: [{ serialNumber: orgLeaf, revocationDate: new Date('2024-05-20T00:00:00Z'), reason: 'keyCompromise' }] });
    const f = one(validatePath(orgLeaf, orgPath({ crls: [older, newer] })), 'ERR_REVOKED');
    expect(f.context).toStrictEqual({ certificateIndex: 0, serialNumber: orgLeaf.serialNumber, revocationDate: new Date('2024-05-20T00:00:00Z'), reason: 'keyCompromise' });
    expect(f.message).toContain('by CRL #51 from');
  });

  it('findings carry exactly their fields (no index or context where there is none)', async () => {
    const r = validatePath(orgLeaf, { anchors: [], at: AT });
    expect(r.findings).toStrictEqual([{ code: 'ERR_CHAIN_NO_ANCHORS', message: 'no trust anchor was given', severity: 'error' }]);
    expect(r.revocationChecked).toBe(false);
    expect(r.path).toEqual([orgLeaf]);
    const plain = await handCrl(h.organisationCa, { number: 8, entries: [revokedEntry(orgLeaf)] });
    const f = one(validatePath(orgLeaf, orgPath({ crls: [plain] })), 'ERR_REVOKED');
    expect(f.context).toStrictEqual({ certificateIndex: 0, serialNumber: orgLeaf.serialNumber, revocationDate: THIS_UPDATE });
    const expired = one(validatePath(orgLeaf, orgPath({ at: new Date('2035-01-01T00:00:00Z') })), 'ERR_CHAIN_EXPIRED');
    expect(Object.keys(expired).sort()).toEqual(['certificateIndex', 'code', 'message', 'severity']);
  });

  it('a check that fails unexpectedly is an error of its code that says why (fail closed)', async () => {
    const throwing = (thrown: unknown): SmkiEnvironment => {
      const env = { ...TEST_ENVIRONMENT };
      Object.defineProperty(env, 'devicePolicies', {
        get() {
          throw thrown;
        },
      });
      return env;
    };
    const r = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], at: AT, environment: throwing(new Error('boom')) });
    expect(r.valid).toBe(false);
    const msg = (code: string, index: number): string[] => r.findings.filter((f) => f.code === code && f.certificateIndex === index).map((f) => f.message);
    expect(msg('ERR_CHAIN_POLICY_NOT_ALLOWED', 0)).toEqual(['certificatePolicies could not be checked (boom)']);
    expect(msg('ERR_CHAIN_PKI_MISMATCH', 0)).toEqual(['issuing CA could not be checked (boom)']);
    expect(msg('ERR_CHAIN_PROFILE_VIOLATION', 1)).toEqual(['profile could not be checked (boom)']);
    const coded = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], at: AT, environment: throwing(new SmkiError('ERR_INVALID_ARGUMENT', 'no policies', {})) });
    expect(coded.findings.find((f) => f.code === 'ERR_CHAIN_POLICY_NOT_ALLOWED')?.message).toBe('certificatePolicies could not be checked (ERR_INVALID_ARGUMENT: no policies)');
    const odd = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], at: AT, environment: throwing('text') });
    expect(odd.findings.find((f) => f.code === 'ERR_CHAIN_POLICY_NOT_ALLOWED')?.message).toBe('certificatePolicies could not be checked (internal error)');
    const long = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], at: AT, environment: throwing(new Error('y'.repeat(300))) });
    expect(long.findings.find((f) => f.code === 'ERR_CHAIN_POLICY_NOT_ALLOWED')?.message).toBe(`certificatePolicies could not be checked (${'y'.repeat(160)})`);
  });

  it('an issuer without basicConstraints: not a CA, and nothing else about its (absent) path length', async () => {
    const s = newSigner();
    const bare = await make(caTemplate(root, s.publicKey, ocaName('Z3'), { basicConstraints: null }), h.root.signer);
    const leaf = await make(orgTemplate(bare, newSigner().publicKey), s);
    const r = validatePath(leaf, { anchors: [root], intermediates: [bare], at: AT });
    expect(r.findings.filter((f) => f.severity === 'error').map((f) => [f.code, f.certificateIndex])).toEqual([
      ['ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', 1],
      ['ERR_CHAIN_ISSUER_NOT_CA', 1],
    ]);
  });

  it('the signature message for NULL parameters inside only', async () => {
    const nullAlg = { oid: OID.ecdsaWithSha256, params: 'null' } as const;
    const insideOnly = await make({ ...orgTemplate(oca, newSigner().publicKey), tbsSignatureAlgorithm: nullAlg }, h.organisationCa.signer);
    expect(one(validatePath(insideOnly, orgPath()), 'ERR_CHAIN_SIGNATURE_INVALID').message).toBe('certificate 0 signature is invalid: algorithm 1.2.840.10045.4.3.2 is not ecdsa-with-SHA256');
  });

  it('paths up to maxDepth + 2 long are searched, and no longer', async () => {
    const s1 = newSigner();
    const s2 = newSigner();
    const sub1 = await make(caTemplate(oca, s1.publicKey, ocaName('Z2')), h.organisationCa.signer);
    const sub2 = await make(caTemplate(sub1, s2.publicKey, ocaName('Z3')), s1);
    const leaf = await orgUnder({ certificate: sub2, signer: s2 });
    const two = validatePath(leaf, { anchors: [root], intermediates: [oca, sub1, sub2], at: AT, maxDepth: 2 });
    expect(two.path).toEqual([leaf]);
    expect(errors(two)).toEqual(['ERR_CHAIN_ISSUER_NOT_FOUND']);
    const three = validatePath(leaf, { anchors: [root], intermediates: [oca, sub1, sub2], at: AT, maxDepth: 3 });
    expect(three.path).toEqual([leaf, sub2, sub1, oca, root]);
    expect(one(three, 'ERR_CHAIN_TOO_LONG').message).toBe('the path has 5 certificates; at most 3 are allowed (leaf, issuing CA, root)');
  });

  it('when a path within maxDepth exists, longer ones are not candidates', async () => {
    const rootKey = newSigner();
    const newKey = newSigner();
    const ocaKey = newSigner();
    const anchor = await make(caTemplate(root, rootKey.publicKey, ROOT_NAME, { issuerName: ROOT_NAME, basicConstraints: { ca: true }, aki: null }), rootKey);
    const rollover = await make(caTemplate(anchor, newKey.publicKey, ROOT_NAME, { basicConstraints: { ca: true } }), rootKey);
    const ocaUnderNew = await make(caTemplate(rollover, ocaKey.publicKey, ocaName('Z1')), newKey);
    const leaf = await orgUnder({ certificate: ocaUnderNew, signer: ocaKey });
    const r = validatePath(leaf, { anchors: [anchor], intermediates: [rollover, ocaUnderNew], at: AT, maxDepth: 3 });
    expect(r.candidates.map((c) => c.path.length)).toEqual([3]);
    expect(r.path).toEqual([leaf, ocaUnderNew, anchor]);
  });
});

describe('options, indexes, ranking, policies and reports (mutation testing, third pass)', () => {
  const invalid = (fn: () => unknown): unknown => {
    const e = thrown(fn);
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    return e.context;
  };

  it('a list option that is not an array is refused with its type as detail; a missing anchors list too', () => {
    expect(invalid(() => createPathValidator({ anchors: root as never }))).toEqual({ detail: 'object' });
    expect(invalid(() => createPathValidator({} as never))).toEqual({ detail: 'undefined' });
    expect(invalid(() => createPathValidator({ anchors: [root], intermediates: oca as never }))).toEqual({ detail: 'object' });
    expect(invalid(() => buildPaths(orgLeaf, { anchors: 'root' as never }))).toEqual({ detail: 'string' });
    expect(invalid(() => createPathValidator({ anchors: [root], crls: crl as never }))).toEqual({ detail: 'object' });
    expect(invalid(() => createPathValidator({ anchors: [root] }).validate(orgLeaf, { crls: 'crl' as never }))).toEqual({ detail: 'string' });
  });

  it('options that are not an object are refused before anything is read from them', () => {
    for (const o of [undefined, 'x', 42]) {
      expect(invalid(() => createPathValidator(o as never))).toEqual({});
      expect(invalid(() => validatePath(orgLeaf, o as never))).toEqual({});
      expect(invalid(() => buildPaths(orgLeaf, o as never))).toEqual({});
    }
    const v = createPathValidator({ anchors: [root], intermediates: [oca] });
    for (const o of [null, 'x', 42]) expect(invalid(() => v.validate(orgLeaf, o as never))).toEqual({});
  });

  it('an environment must be an object: a function carrying the policy lists is refused', () => {
    const fn = Object.assign(function environment(): void {}, {
      organisationPolicies: TEST_ENVIRONMENT.organisationPolicies,
      devicePolicies: TEST_ENVIRONMENT.devicePolicies,
      rootPolicies: [],
    });
    expect(invalid(() => createPathValidator({ anchors: [root], environment: fn as never }))).toEqual({});
  });

  it('the key-identifier diagnostic finds every certificate of the key, and the name mismatch names both certificates', async () => {
    // Two certificates of the OCA's key under other names: with no issuer by name, both are found by key.
    const z8 = await make(caTemplate(root, h.organisationCa.signer.publicKey, ocaName('Z8')), h.root.signer);
    const z9 = await make(caTemplate(root, h.organisationCa.signer.publicKey, ocaName('Z9')), h.root.signer);
    const r = validatePath(orgLeaf, { anchors: [root], intermediates: [z8, z9], at: AT });
    expect(r.candidates.map((c) => c.path)).toEqual([
      [orgLeaf, z8, root],
      [orgLeaf, z9, root],
    ]);
    // Equally good failing candidates: the one tried first is reported.
    expect(r.path).toEqual([orgLeaf, z8, root]);
    expect(one(r, 'ERR_CHAIN_NAME_MISMATCH').message).toBe('certificate 0 issuer "OU=07, CN=Z1" is not certificate 1 subject "OU=07, CN=Z8"');
    // Found by key both in the validator's intermediates and in the call's: one candidate.
    const v = createPathValidator({ anchors: [root], intermediates: [z8] });
    expect(v.validate(orgLeaf, { at: AT, intermediates: [z8] }).candidates.map((c) => c.path)).toEqual([[orgLeaf, z8, root]]);
  });

  it('a leaf without an AKI: an issuer with an SKI is not ranked below one without (the newer first)', async () => {
    const leafNoAki = await make(orgTemplate(oca, newSigner().publicKey, { aki: null }), h.organisationCa.signer);
    const olderNoSki = await make(caTemplate(root, newSigner().publicKey, ocaName('Z1'), { ski: false, notBefore: new Date('2023-06-01T00:00:00Z') }), h.root.signer);
    expect(buildPaths(leafNoAki, { anchors: [root], intermediates: [olderNoSki, oca] }).map((p) => p[1])).toEqual([oca, olderNoSki]);
  });

  it('policies above the leaf: an issuer shaped like an organisation or device certificate may carry any SMKI policy', async () => {
    const s = newSigner();
    const orgShaped = await make(orgTemplate(oca, s.publicKey, { policies: TEST_ENVIRONMENT.devicePolicies }), h.organisationCa.signer);
    expect(orgShaped.kind).toBe('organisation');
    const r = validatePath(await make(orgTemplate(orgShaped, newSigner().publicKey), s), { anchors: [orgShaped], at: AT });
    expect(errors(r)).toContain('ERR_CHAIN_ISSUER_NOT_CA');
    expect(only(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([]);

    const d = newSigner();
    const deviceShaped = await make(deviceTemplate(dca, d.publicKey, { policies: TEST_ENVIRONMENT.organisationPolicies }), h.deviceCa.signer);
    expect(deviceShaped.kind).toBe('device');
    const r2 = validatePath(await make(orgTemplate(deviceShaped, newSigner().publicKey), d), { anchors: [deviceShaped], at: AT });
    expect(errors(r2)).toContain('ERR_CHAIN_ISSUER_NOT_CA');
    expect(only(r2, 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([]);
  });

  it('policies at the leaf: a self-issued certificate there is held to the leaf rule, not to rootPolicies', () => {
    const env = defineEnvironment({ name: 'root-policy', rootPolicies: ['1.2.3.7'] });
    const r = validatePath(root, { anchors: [root], at: AT, environment: env });
    expect(r.path).toEqual([root]);
    expect(errors(r)).toContain('ERR_CHAIN_PROFILE_VIOLATION');
    expect(only(r, 'ERR_CHAIN_POLICY_NOT_ALLOWED')).toEqual([]);
  });

  it('messages: an expired certificate with an empty subject, several policies, an issuer without SKI', async () => {
    const shortDevice = await make({ ...deviceTemplate(dca, newSigner().publicKey), notAfter: rfc5280Time(new Date('2024-03-01T00:00:00Z')) }, h.deviceCa.signer);
    const r = validatePath(shortDevice, { anchors: [root], intermediates: [dca], at: AT });
    expect(one(r, 'ERR_CHAIN_EXPIRED').message).toBe('certificate 0 (empty subject) expired at 2024-03-01T00:00:00.000Z; validation time 2024-06-02T00:00:00.000Z');

    const env = defineEnvironment({ name: 'two', organisationPolicies: ['1.2.3.8', '1.2.3.9'] });
    const twoPolicies = await make(orgTemplate(oca, newSigner().publicKey, { policies: ['1.2.3.4', '1.2.3.5'] }), h.organisationCa.signer);
    const r2 = validatePath(twoPolicies, orgPath({ environment: env }));
    expect(only(r2, 'ERR_CHAIN_POLICY_NOT_ALLOWED').find((f) => f.certificateIndex === 0)?.message).toBe(
      'certificate 0 carries policies [1.2.3.4, 1.2.3.5], none allowed here in environment two ([1.2.3.8, 1.2.3.9])',
    );

    const s = newSigner();
    const noSki = await make(caTemplate(root, s.publicKey, ocaName('Z7'), { ski: false }), h.root.signer);
    const leaf = await make(orgTemplate(noSki, newSigner().publicKey), s);
    const r3 = validatePath(leaf, { anchors: [root], intermediates: [noSki], crls: [arl], at: AT });
    expect(only(r3, 'ERR_CRL_ISSUER_MISMATCH').map((f) => [f.certificateIndex, f.severity, f.message])).toEqual([
      [0, 'warning', 'none of the 1 CRL(s) given is from the issuer of certificate 0 (OU=07, CN=Z7)'],
    ]);
  });

  it('a revocation listed only in an older CRL still counts: a newer CRL releases only a certificateHold', async () => {
    const leaf = await orgUnder(h.organisationCa);
    const since = new Date('2024-05-01T00:00:00Z');
    const older = await issueCrl({ issuer: h.organisationCa, crlNumber: 60n, ...window, revoked: [{ serialNumber: leaf, revocationDate: since, reason: 'keyCompromise' }] });
    const newer = await issueCrl({ issuer: h.organisationCa, crlNumber: 61n, ...window });
    const r = validatePath(leaf, orgPath({ crls: [newer, older] }));
    expect(errors(r)).toEqual(['ERR_REVOKED']);
    const f = one(r, 'ERR_REVOKED');
    expect(f.context).toStrictEqual({ certificateIndex: 0, serialNumber: leaf.serialNumber, revocationDate: since, reason: 'keyCompromise' });
    expect(f.message).toContain('by CRL #60 from');
  });

  it('the path the leaf was issued on is reported even when a same-named anchor with another key has fewer errors', async () => {
    // The real path: under a root re-issued with pathLenConstraint 0 (one CA too many below it), and
    // no usable CRL for either level (three errors). The other: an anchor named like the OCA with
    // another key, and a CRL of that key covering the leaf (two errors: the leaf's AKI and signature).
    const strictRoot = await make(caTemplate(root, h.root.signer.publicKey, ROOT_NAME, { issuerName: ROOT_NAME, basicConstraints: { ca: true, pathLength: 0 }, aki: null }), h.root.signer);
    const otherSigner = newSigner();
    const other = await make(caTemplate(root, otherSigner.publicKey, ocaName('Z1')), h.root.signer);
    const otherCrl = await handCrl({ certificate: other, signer: otherSigner });
    const r = validatePath(orgLeaf, { anchors: [strictRoot, other], intermediates: [oca], crls: [otherCrl], at: AT, requireRevocation: true });
    expect(r.candidates.map((c) => [c.path, c.verifiedSignatures, errors(c)])).toEqual([
      [[orgLeaf, oca, strictRoot], 2, ['ERR_CHAIN_PATH_LENGTH_EXCEEDED', 'ERR_CRL_MISSING', 'ERR_CRL_MISSING']],
      [[orgLeaf, other], 0, ['ERR_CHAIN_KEY_ID_MISMATCH', 'ERR_CHAIN_SIGNATURE_INVALID']],
    ]);
    expect(r.path).toEqual([orgLeaf, oca, strictRoot]);
    expect(errors(r)).toEqual(['ERR_CHAIN_PATH_LENGTH_EXCEEDED', 'ERR_CRL_MISSING', 'ERR_CRL_MISSING']);
  });

  it('a path whose checks were cut short does not report revocation as checked, even with every CRL at hand', async () => {
    // An Error whose message is not a string makes a per-check guard's own report fail; the path's
    // outer guard catches that, and the levels after it (revocation included) are not checked.
    const odd = Object.assign(new Error('odd'), { message: 5 });
    const env = { ...TEST_ENVIRONMENT };
    Object.defineProperty(env, 'devicePolicies', {
      get() {
        throw odd;
      },
    });
    const dcaCrl = await issueCrl({ issuer: h.deviceCa, crlNumber: 1n, kind: 'crl', ...window });
    const crls = [dcaCrl, arl];
    expect(validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], crls, at: AT, requireRevocation: true }).revocationChecked).toBe(true);
    const r = validatePath(deviceLeaf, { anchors: [root], intermediates: [dca], crls, at: AT, requireRevocation: true, environment: env });
    expect(r.valid).toBe(false);
    expect(r.revocationChecked).toBe(false);
    expect(r.findings.map((f) => [f.code, f.severity, f.certificateIndex])).toEqual([['ERR_CHAIN_PROFILE_VIOLATION', 'error', undefined]]);
    expect(r.findings[0]?.message).toMatch(/^path could not be checked \(/);
  });
});
