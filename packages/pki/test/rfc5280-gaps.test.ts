// RFC 5280 rules that path validation and lint enforce beyond the SMKI profile checks:
// §5.2.3 (cRLNumber present and non-critical), §4.2.1.3 (keyCertSign only with cA TRUE),
// §4.2.1.11 (policyConstraints critical), §4.2.1.1 (an AKI on a self-signed root), §6.1 with
// RFC 4158 (which failing candidate path is reported), §4.1.2.5 and §5.1.2.4–5 (validity to the
// whole second); and maps keyed by outside strings (no prototype pollution, no inherited values).
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, fromHex, isSmkiError, p1363ToDer, type SmkiError, type SmkiErrorCode, type Signer } from '@smki/core';
import { issueCrl, parseCrl, type SmkiCrl } from '../src/crl.js';
import { defineEnvironment, OID, TEST_ENVIRONMENT } from '../src/environment.js';
import {
  authorityKeyIdentifierValue,
  buildCertificate,
  ECDSA_WITH_SHA256,
  encodeAlgorithm,
  encodeExtension,
  encodeTime,
  extension,
  keyUsageValue,
  rfc5280Time,
  subjectKeyIdentifierValue,
  type CertificateTemplate,
  type ExtensionTemplate,
} from '../src/internal/build.js';
import { keyIdMethod2 } from '../src/internal/keyid.js';
import { derSequence, derTlv } from '../src/internal/name.js';
import { createHierarchy, issueCaCertificate, issueOrganisationCertificate, type CertificateAuthority, type SmkiHierarchy } from '../src/issue.js';
import { certificateProfile, lintCertificate } from '../src/lint.js';
import { parseCertificate } from '../src/parse.js';
import { buildPaths, validatePath, type PathValidationResult } from '../src/path.js';
import { TrustStore } from '../src/truststore.js';
import type { SmkiCertificate } from '../src/types.js';

const T0 = new Date('2024-01-01T00:00:00Z');
const AT = new Date('2024-06-02T00:00:00Z');
const THIS_UPDATE = new Date('2024-06-01T00:00:00Z');
const NEXT_UPDATE = new Date('2024-06-08T00:00:00Z');
const POLICY_CONSTRAINTS = '2.5.29.36';
const HOSTILE_IDS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'] as const;

let h: SmkiHierarchy;
let root: SmkiCertificate;
let oca: SmkiCertificate;
let leaf: SmkiCertificate;

const newSigner = (): Signer => createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

let euiCounter = 0x200;
const nextEui = (): string => `90B3D51F3${(euiCounter++).toString(16).toUpperCase().padStart(7, '0')}`;

async function orgUnder(ca: CertificateAuthority, notBefore = T0): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({ issuer: ca, role: 2, entityId: nextEui(), keyUsage: 'digitalSignature', publicKey: newSigner().publicKey, notBefore });
}

/** The template that rebuilds `cert` (same fields, same order). */
function templateOf(cert: SmkiCertificate): CertificateTemplate {
  const d = cert.details;
  return {
    version: d.version,
    serialNumber: d.serialBytes,
    tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
    signatureAlgorithm: ECDSA_WITH_SHA256,
    issuer: { der: cert.issuer.der },
    notBefore: { date: cert.notBefore, encoding: d.notBeforeTag === 0x17 ? 'utc' : 'generalized' },
    notAfter: { date: cert.notAfter, encoding: d.notAfterTag === 0x17 ? 'utc' : 'generalized' },
    subject: { der: cert.subject.der },
    subjectPublicKey: { spki: d.spkiDer },
    extensions: cert.extensions.map((e) => ({ oid: e.oid, critical: e.critical, value: e.value })),
  };
}

type Edit = (t: CertificateTemplate) => CertificateTemplate;
const addExt = (e: ExtensionTemplate): Edit => (t) => ({ ...t, extensions: [...t.extensions, e] });
const setExt = (oid: string, e: ExtensionTemplate | null): Edit => (t) => ({
  ...t,
  extensions: e === null ? t.extensions.filter((x) => x.oid !== oid) : t.extensions.map((x) => (x.oid === oid ? e : x)),
});
/** A new subject key (and the SKI that goes with it). */
const withKey = (signer: Signer): Edit => (t) =>
  setExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(signer.publicKey))))({
    ...t,
    subjectPublicKey: { point: signer.publicKey },
    serialNumber: Uint8Array.from(t.serialNumber, (b, i) => (i === 15 ? b ^ (signer.publicKey[1] as number) : b)),
  });
const notAfter = (date: Date): Edit => (t) => ({ ...t, notAfter: rfc5280Time(date) });
const notBefore = (date: Date): Edit => (t) => ({ ...t, notBefore: rfc5280Time(date) });
const akiOf = (keyId: Uint8Array): ExtensionTemplate => extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(keyId));
const policyConstraints = (critical: boolean): ExtensionTemplate => extension(POLICY_CONSTRAINTS, critical, derSequence(derTlv(0x80, Uint8Array.of(0))));

/** Rebuild `base` with edits, signed by `signer`. */
async function variant(base: SmkiCertificate, signer: Signer, ...edits: Edit[]): Promise<SmkiCertificate> {
  let t = templateOf(base);
  for (const e of edits) t = e(t);
  return parseCertificate(await buildCertificate(t, signer));
}

const errors = (r: PathValidationResult | { findings: readonly { code: string; severity: string }[] }): string[] =>
  r.findings.filter((f) => f.severity === 'error').map((f) => f.code);
const indexes = (r: PathValidationResult, code: string): (number | undefined)[] => r.findings.filter((f) => f.code === code).map((f) => f.certificateIndex);
const codes = (fs: readonly { code: string }[]): string[] => fs.map((f) => f.code);

function expectThrows(fn: () => unknown, code: SmkiErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isSmkiError(thrown), String(thrown)).toBe(true);
  expect((thrown as SmkiError).code).toBe(code);
}

async function expectRejects(p: Promise<unknown>, code: SmkiErrorCode): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(isSmkiError(thrown), String(thrown)).toBe(true);
  expect((thrown as SmkiError).code).toBe(code);
}

beforeAll(async () => {
  h = await createHierarchy({ notBefore: T0 });
  root = h.root.certificate;
  oca = h.organisationCa.certificate;
  leaf = await orgUnder(h.organisationCa);
});

// ---------------------------------------------------------------------------------------------
// RFC 5280 5.2.3: cRLNumber

/**
 * A v2 CRL made by hand, as issueCrl makes one (issuer name, AKI, times, optional IDP), except
 * for the cRLNumber: `absent`, or present with the given criticality.
 */
async function handMadeCrl(
  ca: CertificateAuthority,
  o: { readonly number: 'absent' | 'critical' | 'non-critical'; readonly kind?: 'crl' | 'arl'; readonly revoked?: readonly SmkiCertificate[] },
): Promise<SmkiCrl> {
  const c = ca.certificate;
  const extensions: ExtensionTemplate[] = [akiOf(fromHex(c.subjectKeyId ?? ''))];
  if (o.number !== 'absent') extensions.push(extension(OID.cRLNumber, o.number === 'critical', derTlv(0x02, Uint8Array.of(7))));
  if (o.kind !== undefined) extensions.push(extension(OID.issuingDistributionPoint, true, derSequence(derTlv(o.kind === 'crl' ? 0x81 : 0x82, Uint8Array.of(0xff)))));
  const entries = (o.revoked ?? []).map((r) => derSequence(derTlv(0x02, r.details.serialBytes), encodeTime(rfc5280Time(THIS_UPDATE))));
  const alg = encodeAlgorithm(ECDSA_WITH_SHA256);
  const tbs = derSequence(
    derTlv(0x02, Uint8Array.of(1)),
    alg,
    c.subject.der,
    encodeTime(rfc5280Time(THIS_UPDATE)),
    encodeTime(rfc5280Time(NEXT_UPDATE)),
    ...(entries.length > 0 ? [derSequence(...entries)] : []),
    derTlv(0xa0, derSequence(...extensions.map(encodeExtension))),
  );
  const signature = p1363ToDer(await ca.signer.sign(tbs));
  return parseCrl(derSequence(tbs, alg, derTlv(0x03, Uint8Array.of(0), signature)));
}

describe('cRLNumber: present and non-critical, or the CRL is not relied on (RFC 5280 5.2.3)', () => {
  let arl: SmkiCrl;
  beforeAll(async () => {
    arl = await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl', thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE });
  });
  const validate = (crls: readonly SmkiCrl[], requireRevocation = true): PathValidationResult =>
    validatePath(leaf, { anchors: [root], intermediates: [oca], crls, at: AT, requireRevocation });

  it('issueCrl always writes exactly one cRLNumber, never critical, for every kind', async () => {
    for (const kind of [undefined, 'crl', 'arl'] as const) {
      const crl = await issueCrl({ issuer: kind === 'arl' ? h.root : h.organisationCa, crlNumber: 42n, thisUpdate: THIS_UPDATE, ...(kind ? { kind } : {}) });
      const numbers = crl.extensions.filter((x) => x.oid === OID.cRLNumber);
      expect(numbers).toHaveLength(1);
      expect(numbers[0]?.critical).toBe(false);
      expect(crl.crlNumber).toBe(42n);
    }
  });

  it('the hand-made CRL with a non-critical cRLNumber is usable (the control: only the cRLNumber changes below)', async () => {
    const crl = await handMadeCrl(h.organisationCa, { number: 'non-critical', kind: 'crl' });
    const r = validate([crl, arl]);
    expect(r.findings).toEqual([]);
    expect(r.valid).toBe(true);
    expect(r.revocationChecked).toBe(true);
  });

  it('a CRL without cRLNumber parses, and path validation refuses to rely on it: ERR_CRL_NUMBER_MISSING', async () => {
    const crl = await handMadeCrl(h.organisationCa, { number: 'absent', kind: 'crl' });
    expect(crl.crlNumber).toBeUndefined();
    const r = validate([crl, arl]);
    expect(r.valid).toBe(false);
    expect(r.revocationChecked).toBe(false);
    expect(errors(r).sort()).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_NUMBER_MISSING']);
    expect(indexes(r, 'ERR_CRL_NUMBER_MISSING')).toEqual([0]);
    // Fail closed without requireRevocation too: an unusable CRL from the issuer is an error.
    const lax = validate([crl, arl], false);
    expect(lax.valid).toBe(false);
    expect(errors(lax)).toEqual(['ERR_CRL_NUMBER_MISSING']);
  });

  it('a CRL whose cRLNumber is critical: ERR_CRL_NUMBER_CRITICAL', async () => {
    const crl = await handMadeCrl(h.organisationCa, { number: 'critical', kind: 'crl' });
    expect(crl.crlNumber).toBe(7n);
    const r = validate([crl, arl]);
    expect(r.valid).toBe(false);
    expect(errors(r).sort()).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_NUMBER_CRITICAL']);
    expect(indexes(r, 'ERR_CRL_NUMBER_CRITICAL')).toEqual([0]);
    expect(errors(validate([crl, arl], false))).toEqual(['ERR_CRL_NUMBER_CRITICAL']);
  });

  it('the same for an ARL (certificate 1, the OCA)', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl', thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE });
    const noNumber = await handMadeCrl(h.root, { number: 'absent', kind: 'arl' });
    const r = validate([crl, noNumber]);
    expect(errors(r).sort()).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_NUMBER_MISSING']);
    expect(indexes(r, 'ERR_CRL_NUMBER_MISSING')).toEqual([1]);
  });

  it('beside a conforming CRL that covers the certificate, the non-conforming one is only a warning', async () => {
    const good = await issueCrl({ issuer: h.organisationCa, crlNumber: 3n, kind: 'crl', thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE });
    const bad = await handMadeCrl(h.organisationCa, { number: 'absent', kind: 'crl' });
    const r = validate([bad, good, arl]);
    expect(r.valid).toBe(true);
    expect(r.revocationChecked).toBe(true);
    expect(r.findings.map((f) => [f.code, f.severity])).toEqual([['ERR_CRL_NUMBER_MISSING', 'warning']]);
  });

  it('an authentic CRL without cRLNumber that lists the certificate still revokes it (fail closed)', async () => {
    const crl = await handMadeCrl(h.organisationCa, { number: 'absent', kind: 'crl', revoked: [leaf] });
    const r = validate([crl, arl], false);
    expect(r.valid).toBe(false);
    expect(errors(r).sort()).toEqual(['ERR_CRL_NUMBER_MISSING', 'ERR_REVOKED']);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 5280 4.2.1.3: keyCertSign only with cA TRUE

describe('keyCertSign on a certificate that is not a CA (RFC 5280 4.2.1.3)', () => {
  let dsCertSign: SmkiCertificate;
  beforeAll(async () => {
    dsCertSign = await variant(leaf, h.organisationCa.signer, setExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(['digitalSignature', 'keyCertSign']))));
  });

  it('lint: exactly ERR_PROFILE_KEY_CERT_SIGN_NOT_CA when linted as the organisation certificate it claims to be', () => {
    expect(codes(lintCertificate(dsCertSign, { expectedKind: 'organisation' }))).toEqual(['ERR_PROFILE_KEY_CERT_SIGN_NOT_CA']);
  });

  it('lint: as parsed it is an unknown kind, and the rule is still reported', () => {
    expect(dsCertSign.kind).toBe('unknown');
    expect(codes(lintCertificate(dsCertSign))).toEqual(['ERR_PROFILE_UNKNOWN_KIND', 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA']);
  });

  it('lint: also with an explicit basicConstraints cA FALSE', async () => {
    const bcFalse = await variant(dsCertSign, h.organisationCa.signer, addExt(extension(OID.basicConstraints, true, derSequence())));
    expect(bcFalse.basicConstraints).toEqual({ ca: false });
    expect(codes(lintCertificate(bcFalse, { expectedKind: 'organisation' }))).toEqual(['ERR_PROFILE_KEY_CERT_SIGN_NOT_CA']);
  });

  it('lint: a CA with keyCertSign (cA TRUE) is not affected', () => {
    expect(lintCertificate(oca)).toEqual([]);
    expect(lintCertificate(root)).toEqual([]);
  });

  it('path validation: refused, with the code at certificate 0', () => {
    const r = validatePath(dsCertSign, { anchors: [root], intermediates: [oca], at: AT });
    expect(r.valid).toBe(false);
    expect(indexes(r, 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA')).toEqual([0]);
    expect(r.path).toEqual([dsCertSign, oca, root]);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 5280 4.2.1.11: policyConstraints critical

describe('policyConstraints that is not critical (RFC 5280 4.2.1.11)', () => {
  it('lint: exactly ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL on an OCA and on the root', async () => {
    const ocaPc = await variant(oca, h.root.signer, addExt(policyConstraints(false)));
    expect(codes(lintCertificate(ocaPc))).toEqual(['ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL']);
    const rootPc = await variant(root, h.root.signer, addExt(policyConstraints(false)));
    expect(codes(lintCertificate(rootPc))).toEqual(['ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL']);
  });

  it('lint: a critical one is not processed by the toolkit, so it is an unknown critical extension', async () => {
    const ocaPc = await variant(oca, h.root.signer, addExt(policyConstraints(true)));
    expect(codes(lintCertificate(ocaPc))).toEqual(['ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL']);
  });

  it('path validation: an OCA with it is refused at certificate 1, a root anchor with it at certificate 2', async () => {
    const ocaSigner = newSigner();
    const ocaPc = await variant(oca, h.root.signer, withKey(ocaSigner), addExt(policyConstraints(false)));
    const under = await orgUnder({ certificate: ocaPc, signer: ocaSigner });
    const r = validatePath(under, { anchors: [root], intermediates: [ocaPc], at: AT });
    expect(r.valid).toBe(false);
    expect(errors(r)).toEqual(['ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL']);
    expect(indexes(r, 'ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL')).toEqual([1]);

    const rootPc = await variant(root, h.root.signer, addExt(policyConstraints(false)));
    const r2 = validatePath(leaf, { anchors: [rootPc], intermediates: [oca], at: AT });
    expect(errors(r2)).toEqual(['ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL']);
    expect(indexes(r2, 'ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL')).toEqual([2]);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 5280 4.2.1.1: an AKI on the self-signed root

describe('authorityKeyIdentifier on the self-signed root (RFC 5280 4.2.1.1): a warning, kept', () => {
  it('naming its own key: a warning in lint, and a valid path with the warning at the anchor', async () => {
    const rootAki = await variant(root, h.root.signer, addExt(akiOf(fromHex(root.subjectKeyId ?? ''))));
    expect(lintCertificate(rootAki).map((f) => [f.code, f.severity])).toEqual([['ERR_PROFILE_AKI_ON_ROOT', 'warning']]);
    const r = validatePath(leaf, { anchors: [rootAki], intermediates: [oca], at: AT });
    expect(r.valid).toBe(true);
    expect(r.findings.map((f) => [f.code, f.severity, f.certificateIndex])).toEqual([['ERR_PROFILE_AKI_ON_ROOT', 'warning', 2]]);
  });

  it('naming another key: an error (the certificate contradicts its own signature)', async () => {
    const rootOther = await variant(root, h.root.signer, addExt(akiOf(fromHex(oca.subjectKeyId ?? ''))));
    expect(lintCertificate(rootOther).map((f) => [f.code, f.severity])).toEqual([
      ['ERR_PROFILE_AKI_ON_ROOT', 'warning'],
      ['ERR_PROFILE_AKI_ROOT_MISMATCH', 'error'],
    ]);
    const r = validatePath(leaf, { anchors: [rootOther], intermediates: [oca], at: AT });
    expect(r.valid).toBe(false);
    expect(errors(r)).toEqual(['ERR_PROFILE_AKI_ROOT_MISMATCH']);
    expect(indexes(r, 'ERR_PROFILE_AKI_ROOT_MISMATCH')).toEqual([2]);
  });

  it('a root without SKI is compared with method 2 of its own key', async () => {
    const own = await variant(root, h.root.signer, setExt(OID.subjectKeyIdentifier, null), addExt(akiOf(keyIdMethod2(root.publicKeyBytes))));
    expect(codes(lintCertificate(own))).toEqual(['ERR_PROFILE_SKI_MISSING', 'ERR_PROFILE_AKI_ON_ROOT']);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 5280 6.1, RFC 4158: the failing candidate reported

describe('when every candidate path fails, the one whose signatures verify furthest is reported (RFC 5280 6.1; RFC 4158)', () => {
  let realOca: SmkiCertificate;
  let impostor: SmkiCertificate;
  let noAkiLeaf: SmkiCertificate;
  const LATE = new Date('2030-06-01T00:00:00Z');

  beforeAll(async () => {
    // The real issuer: the OCA's name, its own key, expired at LATE.
    const realSigner = newSigner();
    realOca = await variant(oca, h.root.signer, withKey(realSigner), notAfter(new Date('2029-01-01T00:00:00Z')));
    // A leaf it issued, without AKI (so the key identifier does not rank the candidates).
    const issued = await orgUnder({ certificate: realOca, signer: realSigner });
    noAkiLeaf = await variant(issued, realSigner, setExt(OID.authorityKeyIdentifier, null));
    // A same-named CA with another key, trusted as an anchor and valid at LATE.
    impostor = await issueCaCertificate({ issuer: h.root, kind: 'organisationCa', publicKey: newSigner().publicKey, notBefore: T0 });
    expect(impostor.subject.der).toEqual(realOca.subject.der);
  });

  it('the wrong-key issuer is offered first (anchor, in date) and makes a shorter path with fewer errors', () => {
    const paths = buildPaths(noAkiLeaf, { anchors: [root, impostor], intermediates: [realOca], at: LATE });
    expect(paths.map((p) => p.map((c) => c.fingerprint))).toEqual([
      [noAkiLeaf.fingerprint, impostor.fingerprint],
      [noAkiLeaf.fingerprint, realOca.fingerprint, root.fingerprint],
    ]);
  });

  it('reports the path the leaf was issued on, and every candidate with its own findings', () => {
    const r = validatePath(noAkiLeaf, { anchors: [root, impostor], intermediates: [realOca], at: LATE, requireRevocation: true });
    expect(r.valid).toBe(false);
    expect(r.path).toEqual([noAkiLeaf, realOca, root]);
    expect(errors(r).sort()).toEqual(['ERR_CHAIN_EXPIRED', 'ERR_CRL_MISSING', 'ERR_CRL_MISSING', 'ERR_PROFILE_AKI_MISSING']);
    expect(indexes(r, 'ERR_CHAIN_EXPIRED')).toEqual([1]);

    expect(r.candidates).toHaveLength(2);
    const [wrong, right] = r.candidates;
    expect(wrong?.path).toEqual([noAkiLeaf, impostor]);
    expect(wrong?.valid).toBe(false);
    expect(wrong?.verifiedSignatures).toBe(0);
    expect(errors(wrong as { findings: readonly { code: string; severity: string }[] }).sort()).toEqual(['ERR_CHAIN_SIGNATURE_INVALID', 'ERR_CRL_MISSING', 'ERR_PROFILE_AKI_MISSING']);
    expect(right?.path).toEqual(r.path);
    expect(right?.verifiedSignatures).toBe(2);
    expect(right?.findings).toEqual(r.findings);
    expect(right?.revocationChecked).toBe(false);
  });

  it('the same with equal error counts (no revocation required): signatures decide, not the order', () => {
    const r = validatePath(noAkiLeaf, { anchors: [root, impostor], intermediates: [realOca], at: LATE });
    expect(r.candidates.map((c) => errors(c).length)).toEqual([2, 2]);
    expect(r.path).toEqual([noAkiLeaf, realOca, root]);
    expect(errors(r).sort()).toEqual(['ERR_CHAIN_EXPIRED', 'ERR_PROFILE_AKI_MISSING']);
  });

  it('ties: among candidates whose signatures verify equally far, fewer errors, then the one tried first', async () => {
    // Two wrong-key anchors (no signature verifies on either path); the newer is tried first.
    const older = await issueCaCertificate({ issuer: h.root, kind: 'organisationCa', publicKey: newSigner().publicKey, notBefore: T0 });
    const newerSigner = newSigner();
    const newer = await variant(older, h.root.signer, withKey(newerSigner), notBefore(new Date('2024-02-01T00:00:00Z')), addExt(policyConstraints(false)));
    const both = validatePath(noAkiLeaf, { anchors: [newer, older], at: LATE });
    expect(both.candidates.map((c) => c.path[1])).toEqual([newer, older]);
    expect(both.candidates.map((c) => [c.verifiedSignatures, errors(c).length])).toEqual([
      [0, 3],
      [0, 2],
    ]);
    expect(both.path[1]).toBe(older); // fewer errors, though tried second
    const plainNewer = await variant(older, h.root.signer, withKey(newerSigner), notBefore(new Date('2024-02-01T00:00:00Z')));
    const tie = validatePath(noAkiLeaf, { anchors: [plainNewer, older], at: LATE });
    expect(tie.candidates.map((c) => [c.verifiedSignatures, errors(c).length])).toEqual([
      [0, 2],
      [0, 2],
    ]);
    expect(tie.path[1]).toBe(plainNewer); // all equal: the first tried
  });

  it('a valid path ends the search: it is the last candidate; no path at all gives no candidates', () => {
    const r = validatePath(leaf, { anchors: [root, impostor], intermediates: [oca], at: AT });
    expect(r.valid).toBe(true);
    expect(r.candidates.at(-1)?.path).toEqual(r.path);
    expect(r.candidates.at(-1)?.valid).toBe(true);
    expect(r.candidates.at(-1)?.verifiedSignatures).toBe(2);
    expect(validatePath(leaf, { anchors: [root], at: AT }).candidates).toEqual([]);
    expect(validatePath(leaf, { anchors: [], at: AT }).candidates).toEqual([]);
    expect(Object.isFrozen(r.candidates)).toBe(true);
    expect(Object.isFrozen(r.candidates[0])).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 5280 4.1.2.5, 5.1.2.4, 5.1.2.5: times to the whole second

describe('validity is inclusive to the whole encoded second (RFC 5280 4.1.2.5)', () => {
  let late: SmkiCertificate;
  beforeAll(async () => {
    // notBefore one day after the CAs', so that only the leaf's edges are crossed.
    late = await orgUnder(h.organisationCa, new Date('2024-01-02T12:00:00Z'));
  });
  const at = (ms: number): PathValidationResult => validatePath(late, { anchors: [root], intermediates: [oca], at: new Date(ms) });

  it('notAfter: valid through notAfter + 999 ms, expired from notAfter + 1000 ms', () => {
    const end = late.notAfter.getTime();
    expect(late.notAfter.getUTCMilliseconds()).toBe(0);
    expect(at(end).valid).toBe(true);
    expect(at(end + 1).valid).toBe(true);
    expect(at(end + 999).valid).toBe(true);
    const expired = at(end + 1000);
    expect(errors(expired)).toEqual(['ERR_CHAIN_EXPIRED']);
    expect(indexes(expired, 'ERR_CHAIN_EXPIRED')).toEqual([0]);
  });

  it('notBefore: not yet valid at notBefore − 1 ms, valid from notBefore', () => {
    const start = late.notBefore.getTime();
    const early = at(start - 1);
    expect(errors(early)).toEqual(['ERR_CHAIN_NOT_YET_VALID']);
    expect(indexes(early, 'ERR_CHAIN_NOT_YET_VALID')).toEqual([0]);
    expect(at(start).valid).toBe(true);
    expect(at(start + 999).valid).toBe(true);
  });

  it('CRLs the same way: thisUpdate − 1 ms too early, nextUpdate + 999 ms current, + 1000 ms expired', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl', thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE });
    const arl = await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl', thisUpdate: THIS_UPDATE, nextUpdate: new Date('2024-07-01T00:00:00Z') });
    const v = (ms: number): PathValidationResult =>
      validatePath(late, { anchors: [root], intermediates: [oca], crls: [crl, arl], at: new Date(ms), requireRevocation: true });
    const lastCurrent = v(NEXT_UPDATE.getTime() + 999);
    expect(lastCurrent.valid).toBe(true);
    expect(lastCurrent.revocationChecked).toBe(true);
    expect(errors(v(NEXT_UPDATE.getTime() + 1000)).sort()).toEqual(['ERR_CRL_EXPIRED', 'ERR_CRL_MISSING']);
    expect(errors(v(THIS_UPDATE.getTime() - 1)).sort()).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_MISSING', 'ERR_CRL_NOT_YET_VALID', 'ERR_CRL_NOT_YET_VALID']);
    expect(v(THIS_UPDATE.getTime()).valid).toBe(true);
  });

  it('path building ranks candidates valid at `at` by the same rule', async () => {
    // Two certificates of the OCA's key: the OCA, and a newer one that ends at 12:00:00Z. In date,
    // the newer ranks first; out of date, after the OCA.
    const newerShortLived = await variant(oca, h.root.signer, notBefore(new Date('2024-01-01T00:00:01Z')), notAfter(new Date('2024-06-02T12:00:00Z')));
    const order = (ms: number): SmkiCertificate[] =>
      buildPaths(leaf, { anchors: [root], intermediates: [oca, newerShortLived], at: new Date(ms) }).map((p) => p[1] as SmkiCertificate);
    expect(order(Date.parse('2024-06-02T12:00:00.000Z'))).toEqual([newerShortLived, oca]);
    expect(order(Date.parse('2024-06-02T12:00:00.999Z'))).toEqual([newerShortLived, oca]);
    expect(order(Date.parse('2024-06-02T12:00:01.000Z'))).toEqual([oca, newerShortLived]);
    // Not yet valid at 00:00:00.999 on its first day: after the OCA; from 00:00:01.000, first.
    expect(order(Date.parse('2024-01-01T00:00:00.999Z'))).toEqual([oca, newerShortLived]);
    expect(order(Date.parse('2024-01-01T00:00:01.000Z'))).toEqual([newerShortLived, oca]);
  });
});

// ---------------------------------------------------------------------------------------------
// Maps keyed by outside strings

describe('identifiers like __proto__, constructor and toString neither pollute nor find inherited values', () => {
  const prototypeNames = (): string[] => Object.getOwnPropertyNames(Object.prototype).sort();
  let before: string[];
  beforeAll(() => {
    before = prototypeNames();
  });
  const untouched = (): void => {
    expect(prototypeNames()).toEqual(before);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  };

  it('issueCrl: a reason that names an Object.prototype member is refused', async () => {
    for (const reason of HOSTILE_IDS) {
      await expectRejects(
        issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE, reason: reason as 'keyCompromise' }] }),
        'ERR_ISSUE_INVALID_REQUEST',
      );
    }
    untouched();
  });

  it('a CRL’s serial index: such serials are not found', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE }] });
    for (const id of HOSTILE_IDS) {
      expect(crl.revoked.get(id)).toBeUndefined();
      expect(crl.revoked.has(id)).toBe(false);
    }
    expect(crl.revoked.size).toBe(1);
    untouched();
  });

  it('TrustStore look-ups by fingerprint, SKI, subject name, issuer and serial, entity and device', () => {
    const store = new TrustStore([root, oca, leaf]);
    for (const id of HOSTILE_IDS) {
      expectThrows(() => store.get(id), 'ERR_HEX_INVALID');
      expectThrows(() => store.has(id), 'ERR_HEX_INVALID');
      expectThrows(() => store.findBySubjectKeyId(id), 'ERR_HEX_INVALID');
      expectThrows(() => store.findBySubjectName(id), 'ERR_HEX_INVALID');
      expectThrows(() => store.findByIssuerAndSerial(oca.subject.der, id), 'ERR_HEX_INVALID');
      expectThrows(() => store.findByIssuerAndSerial(id, leaf.serialNumber), 'ERR_HEX_INVALID');
      expectThrows(() => store.findByEntity(id, 2, 'digitalSignature'), 'ERR_EUI64_INVALID');
      expectThrows(() => store.findByDevice(id, 'keyAgreement'), 'ERR_EUI64_INVALID');
      expectThrows(() => store.findByEntity(leaf.entityId as string, 2, id as 'digitalSignature'), 'ERR_INVALID_ARGUMENT');
    }
    expect(store.size).toBe(3);
    untouched();
  });

  it('lintCertificate and certificateProfile: an expectedKind that is not a kind is refused', () => {
    for (const id of HOSTILE_IDS) {
      expectThrows(() => lintCertificate(leaf, { expectedKind: id as 'organisation' }), 'ERR_INVALID_ARGUMENT');
      expectThrows(() => certificateProfile(oca, { expectedKind: id as 'issuingCa' }), 'ERR_INVALID_ARGUMENT');
    }
    expect(lintCertificate(leaf, { expectedKind: 'organisation' })).toEqual([]);
    untouched();
  });

  it('defineEnvironment: a __proto__ key (as JSON.parse makes one), a misspelt or inherited setting', () => {
    const fromJson = JSON.parse('{"name":"prod","__proto__":{"organisationPolicies":["1.2.3.4"]}}') as { name: string };
    expect(Object.hasOwn(fromJson, '__proto__')).toBe(true);
    expectThrows(() => defineEnvironment(fromJson), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => defineEnvironment(JSON.parse('{"name":"prod","constructor":{"prototype":{"polluted":1}}}') as { name: string }), 'ERR_INVALID_ARGUMENT');
    expectThrows(() => defineEnvironment({ name: 'prod', organisationPolicy: ['1.2.3.4'] } as unknown as { name: string }), 'ERR_INVALID_ARGUMENT');
    // Inherited settings are not read: only own properties override the defaults.
    const inherited = Object.assign(Object.create({ organisationPolicies: ['9.9.9'] }) as object, { name: 'prod' }) as { name: string };
    expect(defineEnvironment(inherited).organisationPolicies).toEqual(TEST_ENVIRONMENT.organisationPolicies);
    const env = defineEnvironment({ name: 'prod', organisationPolicies: ['1.2.3.4'] });
    expect(env.organisationPolicies).toEqual(['1.2.3.4']);
    expect(Object.isFrozen(env.organisationPolicies)).toBe(true);
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.keys(env).sort()).toEqual(Object.keys(TEST_ENVIRONMENT).sort());
    untouched();
  });
});
