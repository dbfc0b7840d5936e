/**
 * Writes the PKI test vectors under test-vectors/pki/ from fixed seeds. Re-running it reproduces
 * every file byte for byte (keys are derived from labels, ECDSA is RFC 6979 deterministic, serial
 * numbers come from a seeded stream, and every time is fixed). `pnpm run vectors` runs it;
 * `pnpm run vectors -- --check` compares instead of writing (the test suite does this).
 *
 * Every negative case is a conformant certificate with exactly one field changed and re-signed by
 * the right issuer, so it breaks exactly one rule; the generator checks, before writing, that the
 * library reports exactly the expected code for it, and refuses to write a vector that does not.
 */
import { createHash } from 'node:crypto';
import { writeOrCheck } from './vectors/output.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { p256, p384 } from '@noble/curves/nist.js';
import { fromHex, toHex, type KeyUsageName } from '../packages/core/src/index.js';
import {
  certificateToPem,
  createHierarchy,
  crlToPem,
  defineEnvironment,
  issueCrl,
  issueDeviceCertificate,
  issueOrganisationCertificate,
  lintCertificate,
  parseCertificate,
  TEST_ENVIRONMENT,
  validatePath,
  type CertificateAuthority,
  type SmkiCertificate,
  type SmkiEnvironment,
} from '../packages/pki/src/index.js';
import { OID } from '../packages/pki/src/environment.js';
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  buildCertificate,
  certificatePoliciesValue,
  extension,
  hardwareModuleNameSanValue,
  keyUsageValue,
  subjectKeyIdentifierValue,
  type CertificateTemplate,
  type ExtensionTemplate,
  type NameAttributeTemplate,
} from '../packages/pki/src/internal/build.js';
import { derOid, derSequence, derTlv } from '../packages/pki/src/internal/name.js';
import { keyIdMethod2 } from '../packages/pki/src/internal/keyid.js';
import { seededPrivateKey, seededRandom, seededSecret, seededSigner } from './vectors/deterministic.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'test-vectors', 'pki');
const GENERATOR = 'scripts/generate-vectors.ts';
const NOT_BEFORE = new Date('2025-01-01T00:00:00Z');
const AT = new Date('2026-06-01T00:00:00Z');
const SUPPLIER_EUI = '90B3D51F30010000';
const NETWORK_EUI = '90B3D51F30020000';
const ACB_EUI = '90B3D51F30000004';
const DEVICE_EUI = '00DB1234567890A0';
const GAS_EUI = '00DB1234567890B1';

// ------------------------------------------------------------------------------------------------
// templates

/** The template that rebuilds `cert` exactly (checked below: same signer, same bytes). */
function templateOf(cert: SmkiCertificate): CertificateTemplate {
  const d = cert.details;
  return {
    version: d.version,
    serialNumber: d.serialBytes,
    tbsSignatureAlgorithm: { oid: d.tbsSignatureAlgorithm, params: 'absent' },
    signatureAlgorithm: { oid: cert.signatureAlgorithm, params: d.signatureAlgorithmParams === 'null' ? 'null' : 'absent' },
    issuer: { der: cert.issuer.der },
    notBefore: { date: cert.notBefore, encoding: d.notBeforeTag === 0x17 ? 'utc' : 'generalized' },
    notAfter: { date: cert.notAfter, encoding: d.notAfterTag === 0x17 ? 'utc' : 'generalized' },
    subject: { der: cert.subject.der },
    subjectPublicKey: { spki: d.spkiDer },
    extensions: cert.extensions.map((e) => ({ oid: e.oid, critical: e.critical, value: e.value })),
  };
}

type Edit = (t: CertificateTemplate) => CertificateTemplate;

const setExt = (oid: string, ext: ExtensionTemplate | null): Edit => (t) => ({
  ...t,
  extensions: ext === null ? t.extensions.filter((e) => e.oid !== oid) : t.extensions.map((e) => (e.oid === oid ? ext : e)),
});
const addExt = (ext: ExtensionTemplate): Edit => (t) => ({ ...t, extensions: [...t.extensions, ext] });
const critical = (oid: string, c: boolean): Edit => (t) => ({ ...t, extensions: t.extensions.map((e) => (e.oid === oid ? { ...e, critical: c } : e)) });
const withSubject = (attributes: NameAttributeTemplate[]): Edit => (t) => ({ ...t, subject: { attributes } });
const withKey = (point: Uint8Array | { spki: Uint8Array }, skiOf?: Uint8Array): Edit => (t) => {
  const key = point instanceof Uint8Array ? { point } : point;
  const next: CertificateTemplate = { ...t, subjectPublicKey: key };
  return skiOf ? setExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdMethod2(skiOf))))(next) : next;
};

const printable = (oid: string, value: string): NameAttributeTemplate => ({ oid, value: { encoding: 'printable', value } });
const utf8 = (oid: string, value: string): NameAttributeTemplate => ({ oid, value: { encoding: 'utf8', value } });
const uid = (hex: string, bitLength = 64): NameAttributeTemplate => ({
  oid: OID.x500UniqueIdentifier,
  value: { encoding: 'bitstring', bytes: fromHex(hex), bitLength },
});
const ou = (v: string) => utf8(OID.organizationalUnitName, v);
const cn = (v: string) => utf8(OID.commonName, v);

function orgSubject(role = '02', eui = SUPPLIER_EUI, extra: NameAttributeTemplate[] = []): NameAttributeTemplate[] {
  return [cn('Supplier A'), ou(role), uid(eui), ...extra];
}

// ------------------------------------------------------------------------------------------------
// the hierarchy

const signers = { root: seededSigner('root'), organisationCa: seededSigner('organisation-ca'), deviceCa: seededSigner('device-ca') };
const hierarchy = await createHierarchy({ signers, notBefore: NOT_BEFORE, random: seededRandom('hierarchy') });
const { root, organisationCa: oca, deviceCa: dca } = hierarchy;

const leafKey = (label: string): Uint8Array => p256.getPublicKey(seededSecret(label), false);
const common = (label: string) => ({ notBefore: NOT_BEFORE, random: seededRandom(label) });

const supplierDs = await issueOrganisationCertificate({
  issuer: oca, role: 2, entityId: SUPPLIER_EUI, keyUsage: 'digitalSignature', commonName: 'Supplier A',
  publicKey: leafKey('supplier-ds'), ...common('supplier-ds'),
});
const supplierKa = await issueOrganisationCertificate({
  issuer: oca, role: 2, entityId: SUPPLIER_EUI, keyUsage: 'keyAgreement', commonName: 'Supplier A',
  publicKey: leafKey('supplier-ka'), ...common('supplier-ka'),
});
const networkDs = await issueOrganisationCertificate({
  issuer: oca, role: 3, entityId: NETWORK_EUI, keyUsage: 'digitalSignature', publicKey: leafKey('network-ds'), ...common('network-ds'),
});
const acbKa = await issueOrganisationCertificate({
  issuer: oca, role: 4, entityId: ACB_EUI, keyUsage: 'keyAgreement', commonName: 'DCC ACB', publicKey: leafKey('acb-ka'), ...common('acb-ka'),
});
const deviceDs = await issueDeviceCertificate({
  issuer: dca, entityId: DEVICE_EUI, keyUsage: 'digitalSignature', publicKey: leafKey('esme-ds'), ...common('esme-ds'),
});
const deviceKa = await issueDeviceCertificate({
  issuer: dca, entityId: DEVICE_EUI, keyUsage: 'keyAgreement', publicKey: leafKey('esme-ka'), ...common('esme-ka'),
});
const gasKa = await issueDeviceCertificate({
  issuer: dca, entityId: GAS_EUI, keyUsage: 'keyAgreement', publicKey: leafKey('gsme-ka'), ...common('gsme-ka'),
});

// Self-check: the template of a certificate rebuilds it byte for byte.
for (const [cert, signer] of [[supplierDs, oca.signer], [deviceDs, dca.signer], [root.certificate, root.signer]] as const) {
  const again = await buildCertificate(templateOf(cert), signer);
  if (toHex(again) !== toHex(cert.der)) throw new Error(`template round trip failed for ${cert.subject.text}`);
}

/** Rebuild `base` with edits, signed by `signer`. */
async function variant(base: SmkiCertificate, signer: CertificateAuthority['signer'], ...edits: Edit[]): Promise<SmkiCertificate> {
  let t = templateOf(base);
  for (const e of edits) t = e(t);
  return parseCertificate(await buildCertificate(t, signer));
}

// ------------------------------------------------------------------------------------------------
// certificate (lint) cases

interface EnvOverride {
  organisationPolicies?: string[];
  devicePolicies?: string[];
  deviceHwTypes?: string[];
}
interface CertCase {
  id: string;
  comment: string;
  clause: string;
  input: { certificate: string; expectedKind?: string; environment?: EnvOverride };
  result: 'valid' | 'invalid';
  errorCode?: string;
  warnings?: string[];
}

const envFrom = (o?: EnvOverride): SmkiEnvironment => (o ? defineEnvironment({ ...TEST_ENVIRONMENT, ...o, name: 'vector' }) : TEST_ENVIRONMENT);
const certCases: CertCase[] = [];
const problems: string[] = [];

function addCert(c: Omit<CertCase, 'input'> & { cert: SmkiCertificate; expectedKind?: string; environment?: EnvOverride }): void {
  const input: CertCase['input'] = { certificate: certificateToPem(c.cert) };
  if (c.expectedKind) input.expectedKind = c.expectedKind;
  if (c.environment) input.environment = c.environment;
  const findings = lintCertificate(c.cert, {
    environment: envFrom(c.environment),
    ...(c.expectedKind ? { expectedKind: c.expectedKind as never } : {}),
  });
  const errors = [...new Set(findings.filter((f) => f.severity === 'error').map((f) => f.code))];
  const warnings = [...new Set(findings.filter((f) => f.severity === 'warning').map((f) => f.code))];
  const want = c.result === 'valid' ? [] : [c.errorCode];
  if (JSON.stringify(errors) !== JSON.stringify(want)) problems.push(`cert ${c.id}: expected ${JSON.stringify(want)}, lint gave ${JSON.stringify(errors)}`);
  if (JSON.stringify(warnings) !== JSON.stringify(c.warnings ?? [])) problems.push(`cert ${c.id}: expected warnings ${JSON.stringify(c.warnings ?? [])}, lint gave ${JSON.stringify(warnings)}`);
  const out: CertCase = { id: c.id, comment: c.comment, clause: c.clause, input, result: c.result };
  if (c.errorCode) out.errorCode = c.errorCode;
  if (c.warnings) out.warnings = c.warnings;
  certCases.push(out);
}

const S = { oca: oca.signer, dca: dca.signer, root: root.signer };
const p384Spki = (() => {
  const n = p384.Point.Fn.ORDER;
  const h = BigInt(`0x${createHash('sha384').update('smki-test-vectors/v1/key/p384').digest('hex')}`);
  const d = Uint8Array.from(Buffer.from(((h % (n - 1n)) + 1n).toString(16).padStart(96, '0'), 'hex'));
  const point = p384.getPublicKey(d, false);
  return { bits: point, spki: derSequence(derSequence(derOid(OID.ecPublicKey), derOid('1.3.132.0.34')), derTlv(0x03, Uint8Array.of(0), point)) };
})();
const ed25519Spki = { bits: seededSecret('ed25519'), spki: derSequence(derSequence(derOid('1.3.101.112')), derTlv(0x03, Uint8Array.of(0), seededSecret('ed25519'))) };
const offCurve = Uint8Array.from([4, ...seededSecret('off-curve-x'), ...seededSecret('off-curve-y')]);
const compressed = p256.getPublicKey(seededSecret('compressed'), true);

// valid
addCert({ id: 'root-valid', comment: 'the test root: self-signed, OU=00, CA, keyCertSign|cRLSign', clause: 'docs/domain.md §2 Root', cert: root.certificate, result: 'valid' });
addCert({ id: 'oca-valid', comment: 'organisation CA: OU=07, pathLen 0, organisation policy', clause: 'docs/domain.md §2 OCA', cert: oca.certificate, result: 'valid' });
addCert({ id: 'dca-valid', comment: 'device CA: CN only, pathLen 0, device policy', clause: 'docs/domain.md §2 DCA', cert: dca.certificate, result: 'valid' });
addCert({ id: 'org-supplier-ds-valid', comment: 'supplier digital-signing certificate', clause: 'docs/domain.md §2 Organisation certificate', cert: supplierDs, result: 'valid' });
addCert({ id: 'org-supplier-ka-valid', comment: 'supplier key-agreement certificate', clause: 'docs/domain.md §2 Organisation certificate', cert: supplierKa, result: 'valid' });
addCert({ id: 'org-network-ds-valid', comment: 'network operator DS certificate without CN', clause: 'docs/domain.md §2 Organisation certificate', cert: networkDs, result: 'valid' });
addCert({ id: 'org-acb-ka-valid', comment: 'access control broker KA certificate (role 04)', clause: 'docs/domain.md §2 Organisation certificate', cert: acbKa, result: 'valid' });
addCert({ id: 'device-ds-valid', comment: 'ESME digital-signing device certificate', clause: 'docs/domain.md §2 Device certificate', cert: deviceDs, result: 'valid' });
addCert({ id: 'device-ka-valid', comment: 'ESME key-agreement device certificate', clause: 'docs/domain.md §2 Device certificate', cert: deviceKa, result: 'valid' });
addCert({ id: 'org-high-s-valid', comment: 'signature with s > n/2 (about half of real ones): never rejected', clause: 'docs/domain.md §4 (never reject high-S)', cert: await variant(supplierDs, seededSigner('organisation-ca', 'high')), result: 'valid' });
addCert({ id: 'org-low-s-valid', comment: 'signature with s < n/2', clause: 'docs/domain.md §4', cert: await variant(supplierDs, seededSigner('organisation-ca', 'low')), result: 'valid' });
addCert({
  id: 'org-null-params-quirk', comment: 'explicit NULL in ecdsa-with-SHA256 parameters: tolerated when parsing, reported as a warning',
  clause: 'docs/domain.md §2 (tolerate an explicit NULL)', result: 'valid', warnings: ['ERR_PROFILE_SIGNATURE_ALGORITHM_PARAMS'],
  cert: await variant(supplierDs, S.oca, (t) => ({ ...t, signatureAlgorithm: { oid: OID.ecdsaWithSha256, params: 'null' }, tbsSignatureAlgorithm: { oid: OID.ecdsaWithSha256, params: 'null' } })),
});
addCert({
  id: 'root-aki-warning', comment: 'an AKI on the self-signed root: allowed by RFC 5280, not SMKI practice (warning)',
  clause: 'docs/domain.md §2 (AKI omitted only on the root)', result: 'valid', warnings: ['ERR_PROFILE_AKI_ON_ROOT'],
  cert: await variant(root.certificate, S.root, addExt(extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(root.certificate.subjectKeyId ?? ''))))),
});

type Neg = [id: string, comment: string, clause: string, code: string, base: SmkiCertificate, signer: CertificateAuthority['signer'], edits: Edit[], extra?: { expectedKind?: string; environment?: EnvOverride }];
const sha384 = { oid: '1.2.840.10045.4.3.3', params: 'absent' } as const;
const ds: KeyUsageName[] = ['digitalSignature'];
const negatives: Neg[] = [
  ['version-v1', 'version field omitted (v1)', 'RFC 5280 4.1.2.1', 'ERR_PROFILE_VERSION', supplierDs, S.oca, [(t) => ({ ...t, version: 0 })]],
  ['serial-15-octets', 'serial number of 15 octets', 'docs/domain.md §2 (16-octet serials)', 'ERR_PROFILE_SERIAL_LENGTH', supplierDs, S.oca, [(t) => ({ ...t, serialNumber: t.serialNumber.subarray(0, 15) })]],
  ['serial-17-octets', 'serial number of 17 octets', 'docs/domain.md §2 (16-octet serials)', 'ERR_PROFILE_SERIAL_LENGTH', supplierDs, S.oca, [(t) => ({ ...t, serialNumber: Uint8Array.from([0x11, ...t.serialNumber]) })]],
  ['serial-negative', '16-octet serial with the top bit set (negative)', 'RFC 5280 4.1.2.2', 'ERR_PROFILE_SERIAL_NOT_POSITIVE', supplierDs, S.oca, [(t) => ({ ...t, serialNumber: Uint8Array.from([0x80 | (t.serialNumber[0] as number), ...t.serialNumber.subarray(1)]) })]],
  ['sig-alg-sha384', 'ecdsa-with-SHA384 in both algorithm fields', 'docs/domain.md §2 (ecdsa-with-SHA256 only)', 'ERR_PROFILE_SIGNATURE_ALGORITHM', supplierDs, S.oca, [(t) => ({ ...t, signatureAlgorithm: sha384, tbsSignatureAlgorithm: sha384 })]],
  ['sig-alg-mismatch', 'tbsCertificate.signature differs from signatureAlgorithm (NULL parameters inside only)', 'RFC 5280 4.1.1.2', 'ERR_PROFILE_SIGNATURE_ALGORITHM_MISMATCH', supplierDs, S.oca, [(t) => ({ ...t, tbsSignatureAlgorithm: { oid: OID.ecdsaWithSha256, params: 'null' } })]],
  ['key-p384', 'subject key on P-384', 'docs/domain.md §2 (P-256 only)', 'ERR_PROFILE_KEY_CURVE', supplierDs, S.oca, [withKey({ spki: p384Spki.spki }, p384Spki.bits)]],
  ['key-ed25519', 'subject key is Ed25519, not id-ecPublicKey', 'docs/domain.md §2 (P-256 only)', 'ERR_PROFILE_KEY_ALGORITHM', supplierDs, S.oca, [withKey({ spki: ed25519Spki.spki }, ed25519Spki.bits)]],
  ['key-off-curve', 'uncompressed point that is not on P-256', 'docs/domain.md §2 (uncompressed points)', 'ERR_PROFILE_KEY_POINT', supplierDs, S.oca, [withKey(offCurve, offCurve)]],
  ['key-compressed', 'compressed P-256 point', 'docs/domain.md §2 (uncompressed points)', 'ERR_PROFILE_KEY_POINT', supplierDs, S.oca, [withKey(compressed, compressed)]],
  ['validity-order', 'notBefore after notAfter', 'RFC 5280 4.1.2.5', 'ERR_PROFILE_VALIDITY_ORDER', supplierDs, S.oca, [(t) => ({ ...t, notBefore: t.notAfter, notAfter: t.notBefore })]],
  ['validity-generalized-2025', 'notBefore 2025 encoded as GeneralizedTime', 'RFC 5280 4.1.2.5', 'ERR_PROFILE_VALIDITY_ENCODING', supplierDs, S.oca, [(t) => ({ ...t, notBefore: { date: t.notBefore.date, encoding: 'generalized' } })]],
  ['ext-duplicate', 'keyUsage twice', 'RFC 5280 4.2', 'ERR_PROFILE_EXTENSION_DUPLICATE', supplierDs, S.oca, [addExt(extension(OID.keyUsage, true, keyUsageValue(ds)))]],
  ['ext-malformed-key-usage', 'keyUsage value that is not a BIT STRING', 'RFC 5280 4.2.1.3', 'ERR_PROFILE_EXTENSION_MALFORMED', supplierDs, S.oca, [setExt(OID.keyUsage, extension(OID.keyUsage, true, Uint8Array.of(0x04, 0x01, 0x80)))]],
  ['ext-eku-on-org', 'extendedKeyUsage on an organisation certificate', 'docs/domain.md §2 (no EKU on end-entity)', 'ERR_PROFILE_EXTENSION_FORBIDDEN', supplierDs, S.oca, [addExt(extension(OID.extKeyUsage, false, derSequence(derOid('1.3.6.1.5.5.7.3.2'))))]],
  ['ext-crldp-on-org', 'cRLDistributionPoints on an organisation certificate', 'docs/domain.md §2 (no CRL DP on end-entity)', 'ERR_PROFILE_EXTENSION_FORBIDDEN', supplierDs, S.oca, [addExt(extension(OID.cRLDistributionPoints, false, derSequence(derSequence(derTlv(0xa0, derTlv(0xa0, derTlv(0x86, new TextEncoder().encode('http://crl.invalid/oca.crl'))))))))]],
  ['ext-aia-on-device', 'authorityInfoAccess on a device certificate', 'docs/domain.md §2 (no AIA on end-entity)', 'ERR_PROFILE_EXTENSION_FORBIDDEN', deviceDs, S.dca, [addExt(extension(OID.authorityInfoAccess, false, derSequence(derSequence(derOid('1.3.6.1.5.5.7.48.2'), derTlv(0x86, new TextEncoder().encode('http://ca.invalid/dca.cer'))))))]],
  ['ext-unknown-critical', 'an unknown extension marked critical', 'RFC 5280 4.2', 'ERR_PROFILE_EXTENSION_UNKNOWN_CRITICAL', supplierDs, S.oca, [addExt(extension('1.2.826.0.1.9999.1', true, Uint8Array.of(0x05, 0x00)))]],
  ['ku-missing', 'no keyUsage', 'docs/domain.md §2 (keyUsage present)', 'ERR_PROFILE_KEY_USAGE_MISSING', supplierDs, S.oca, [setExt(OID.keyUsage, null)]],
  ['ku-not-critical', 'keyUsage not critical', 'docs/domain.md §2 (keyUsage critical)', 'ERR_PROFILE_KEY_USAGE_NOT_CRITICAL', supplierDs, S.oca, [critical(OID.keyUsage, false)]],
  ['ku-ds-and-ka', 'organisation certificate with digitalSignature and keyAgreement', 'docs/domain.md §2 (exactly one key usage)', 'ERR_PROFILE_KEY_USAGE_NOT_SINGLE', supplierDs, S.oca, [setExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(['digitalSignature', 'keyAgreement'])))]],
  ['ku-device-ds-and-ka', 'device certificate with digitalSignature and keyAgreement', 'docs/domain.md §2 (exactly one of DS/KA)', 'ERR_PROFILE_KEY_USAGE_NOT_SINGLE', deviceDs, S.dca, [setExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(['digitalSignature', 'keyAgreement'])))]],
  ['ku-oca-extra-ds', 'organisation CA with digitalSignature besides keyCertSign|cRLSign', 'docs/domain.md §2 OCA', 'ERR_PROFILE_KEY_USAGE_INVALID', oca.certificate, S.root, [setExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(['digitalSignature', 'keyCertSign', 'cRLSign'])))]],
  ['policies-missing', 'no certificatePolicies', 'docs/domain.md §2 (certificatePolicies present)', 'ERR_PROFILE_POLICIES_MISSING', supplierDs, S.oca, [setExt(OID.certificatePolicies, null)]],
  ['policies-not-critical', 'certificatePolicies not critical', 'docs/domain.md §2 (certificatePolicies critical)', 'ERR_PROFILE_POLICIES_NOT_CRITICAL', supplierDs, S.oca, [critical(OID.certificatePolicies, false)]],
  ['policy-device-on-org', 'organisation certificate carrying the device policy', 'docs/domain.md §2 (policy OIDs per environment)', 'ERR_PROFILE_POLICY_NOT_ALLOWED', supplierDs, S.oca, [setExt(OID.certificatePolicies, extension(OID.certificatePolicies, true, certificatePoliciesValue(TEST_ENVIRONMENT.devicePolicies)))]],
  ['policy-duplicate', 'the same policy OID twice', 'RFC 5280 4.2.1.4', 'ERR_PROFILE_POLICY_DUPLICATE', supplierDs, S.oca, [setExt(OID.certificatePolicies, extension(OID.certificatePolicies, true, certificatePoliciesValue([...TEST_ENVIRONMENT.organisationPolicies, ...TEST_ENVIRONMENT.organisationPolicies])))]],
  ['device-two-policies', 'device certificate with two (allowed) device policies', 'docs/domain.md §2 (exactly one policy OID)', 'ERR_PROFILE_POLICY_COUNT', deviceDs, S.dca, [setExt(OID.certificatePolicies, extension(OID.certificatePolicies, true, certificatePoliciesValue([...TEST_ENVIRONMENT.devicePolicies, '1.2.826.0.1.1800000.1.2.1.5'])))], { environment: { devicePolicies: [...TEST_ENVIRONMENT.devicePolicies, '1.2.826.0.1.1800000.1.2.1.5'] } }],
  ['ski-missing', 'no subjectKeyIdentifier', 'docs/domain.md §2 (SKI)', 'ERR_PROFILE_SKI_MISSING', supplierDs, S.oca, [setExt(OID.subjectKeyIdentifier, null)]],
  ['ski-critical', 'subjectKeyIdentifier critical', 'docs/domain.md §2 (SKI non-critical)', 'ERR_PROFILE_SKI_CRITICAL', supplierDs, S.oca, [critical(OID.subjectKeyIdentifier, true)]],
  ['ski-20-octets', 'subjectKeyIdentifier of 20 octets (method 1)', 'docs/domain.md §2 (SKI 8 octets)', 'ERR_PROFILE_SKI_LENGTH', supplierDs, S.oca, [setExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(new Uint8Array(20).fill(0x42))))]],
  ['ski-wrong-method', '8-octet subjectKeyIdentifier not derived by method 2', 'RFC 5280 4.2.1.2 method 2', 'ERR_PROFILE_SKI_METHOD', supplierDs, S.oca, [setExt(OID.subjectKeyIdentifier, extension(OID.subjectKeyIdentifier, false, subjectKeyIdentifierValue(fromHex('4000000000000001'))))]],
  ['aki-missing', 'no authorityKeyIdentifier on an organisation certificate', 'docs/domain.md §2 (AKI)', 'ERR_PROFILE_AKI_MISSING', supplierDs, S.oca, [setExt(OID.authorityKeyIdentifier, null)]],
  ['aki-critical', 'authorityKeyIdentifier critical', 'docs/domain.md §2 (AKI non-critical)', 'ERR_PROFILE_AKI_CRITICAL', supplierDs, S.oca, [critical(OID.authorityKeyIdentifier, true)]],
  ['aki-issuer-serial', 'authorityKeyIdentifier with authorityCertSerialNumber as well', 'docs/domain.md §2 (AKI keyIdentifier only)', 'ERR_PROFILE_AKI_FORM', supplierDs, S.oca, [(t) => setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, derSequence(derTlv(0x80, fromHex(supplierDs.authorityKeyId ?? '')), derTlv(0x82, oca.certificate.details.serialBytes))))(t)]],
  ['oca-bc-missing', 'organisation CA without basicConstraints (linted as an issuing CA)', 'docs/domain.md §2 OCA', 'ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', oca.certificate, S.root, [setExt(OID.basicConstraints, null)], { expectedKind: 'issuingCa' }],
  ['oca-bc-not-critical', 'organisation CA basicConstraints not critical', 'docs/domain.md §2 OCA; RFC 5280 4.2.1.9', 'ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CRITICAL', oca.certificate, S.root, [critical(OID.basicConstraints, false)]],
  ['oca-pathlen-1', 'organisation CA with pathLen 1', 'docs/domain.md §2 (pathLen 0)', 'ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH', oca.certificate, S.root, [setExt(OID.basicConstraints, extension(OID.basicConstraints, true, basicConstraintsValue(true, 1)))]],
  ['dca-pathlen-absent', 'device CA with no pathLenConstraint', 'docs/domain.md §2 (pathLen 0)', 'ERR_PROFILE_BASIC_CONSTRAINTS_PATH_LENGTH', dca.certificate, S.root, [setExt(OID.basicConstraints, extension(OID.basicConstraints, true, basicConstraintsValue(true)))]],
  ['oca-ca-false', 'organisation CA whose basicConstraints says cA FALSE', 'RFC 5280 4.2.1.9', 'ERR_PROFILE_BASIC_CONSTRAINTS_NOT_CA', oca.certificate, S.root, [setExt(OID.basicConstraints, extension(OID.basicConstraints, true, basicConstraintsValue(false)))], { expectedKind: 'issuingCa' }],
  ['org-is-ca', 'organisation certificate asserting cA TRUE', 'RFC 5280 4.2.1.9; docs/domain.md §2', 'ERR_PROFILE_END_ENTITY_IS_CA', supplierDs, S.oca, [addExt(extension(OID.basicConstraints, true, basicConstraintsValue(true, 0)))], { expectedKind: 'organisation' }],
  ['root-ou-01', 'root with OU=01', 'docs/domain.md §2 Root (OU=00)', 'ERR_PROFILE_ROOT_ROLE', root.certificate, S.root, [(t) => ({ ...t, subject: { attributes: [printable(OID.organizationalUnitName, '01'), printable(OID.commonName, 'ZA')] }, issuer: { attributes: [printable(OID.organizationalUnitName, '01'), printable(OID.commonName, 'ZA')] } })]],
  ['root-not-self-signed', 'root-named certificate signed by another key', 'docs/domain.md §2 Root (self-signed)', 'ERR_PROFILE_ROOT_NOT_SELF_SIGNED', root.certificate, S.oca, []],
  ['oca-ou-08', 'organisation CA with OU=08', 'docs/domain.md §2 OCA (OU=07)', 'ERR_PROFILE_OCA_ROLE', oca.certificate, S.root, [withSubject([printable(OID.organizationalUnitName, '08'), printable(OID.commonName, 'Z1')])]],
  ['org-no-ou', 'organisation certificate without OU', 'docs/domain.md §2 (OU = role)', 'ERR_PROFILE_ORG_ROLE_MISSING', supplierDs, S.oca, [withSubject([cn('Supplier A'), uid(SUPPLIER_EUI)])]],
  ['org-role-decimal', "role written in decimal ('2')", 'docs/domain.md §2 (two upper-case hex digits)', 'ERR_PROFILE_ORG_ROLE_FORMAT', supplierDs, S.oca, [withSubject(orgSubject('2'))]],
  ['org-role-lower-hex', "role 127 written '7f'", 'docs/domain.md §2 (two upper-case hex digits)', 'ERR_PROFILE_ORG_ROLE_FORMAT', supplierDs, S.oca, [withSubject(orgSubject('7f'))]],
  ['org-role-unknown', "OU 'FE' is no Remote Party Role", 'docs/domain.md §2 (role codes)', 'ERR_PROFILE_ORG_ROLE_UNKNOWN', supplierDs, S.oca, [withSubject(orgSubject('FE'))]],
  ['org-no-uid', 'organisation certificate without x500UniqueIdentifier', 'docs/domain.md §2 (x500UniqueIdentifier)', 'ERR_PROFILE_ORG_ENTITY_ID_MISSING', supplierDs, S.oca, [withSubject([cn('Supplier A'), ou('02')])]],
  ['org-uid-56-bits', 'x500UniqueIdentifier of 56 bits', 'docs/domain.md §2 (exactly 64 bits)', 'ERR_PROFILE_ORG_ENTITY_ID_FORMAT', supplierDs, S.oca, [withSubject([cn('Supplier A'), ou('02'), uid('90B3D51F300100', 56)])]],
  ['org-uid-utf8', 'x500UniqueIdentifier as a UTF8String', 'docs/domain.md §2 (BIT STRING)', 'ERR_PROFILE_ORG_ENTITY_ID_FORMAT', supplierDs, S.oca, [withSubject([cn('Supplier A'), ou('02'), utf8(OID.x500UniqueIdentifier, SUPPLIER_EUI)])]],
  ['org-cn-printable', 'CN as PrintableString', 'docs/domain.md §2 (CN UTF8String)', 'ERR_PROFILE_ORG_CN_ENCODING', supplierDs, S.oca, [withSubject([printable(OID.commonName, 'Supplier A'), ou('02'), uid(SUPPLIER_EUI)])]],
  ['org-extra-attribute', 'organisation subject with an O attribute', 'docs/domain.md §2 (subject: CN, OU, x500UniqueIdentifier)', 'ERR_PROFILE_ORG_SUBJECT_ATTRIBUTE', supplierDs, S.oca, [withSubject(orgSubject('02', SUPPLIER_EUI, [utf8('2.5.4.10', 'Energy Ltd')]))]],
  ['device-subject-cn', 'device certificate with a CN in the subject', 'docs/domain.md §2 (empty subject)', 'ERR_PROFILE_DEVICE_SUBJECT_NOT_EMPTY', deviceDs, S.dca, [withSubject([utf8(OID.commonName, 'ESME')])]],
  ['device-not-after-2035', 'device certificate expiring in 2035', 'docs/domain.md §2 (notAfter 99991231235959Z)', 'ERR_PROFILE_DEVICE_NOT_AFTER', deviceDs, S.dca, [(t) => ({ ...t, notAfter: { date: new Date('2035-01-01T00:00:00Z'), encoding: 'utc' } })]],
  ['device-san-missing', 'device certificate without subjectAltName', 'docs/domain.md §2 (critical SAN)', 'ERR_PROFILE_DEVICE_SAN_MISSING', deviceDs, S.dca, [setExt(OID.subjectAltName, null)]],
  ['device-san-not-critical', 'device subjectAltName not critical', 'docs/domain.md §2 (critical SAN)', 'ERR_PROFILE_DEVICE_SAN_NOT_CRITICAL', deviceDs, S.dca, [critical(OID.subjectAltName, false)]],
  ['device-san-extra-dns', 'device subjectAltName with a dNSName besides the hardwareModuleName', 'docs/domain.md §2 (one otherName)', 'ERR_PROFILE_DEVICE_SAN_FORM', deviceDs, S.dca, [(t) => {
    const san = hardwareModuleNameSanValue(TEST_ENVIRONMENT.defaultHwType, fromHex(DEVICE_EUI));
    const inner = san.subarray(2);
    return setExt(OID.subjectAltName, extension(OID.subjectAltName, true, derSequence(inner, derTlv(0x82, new TextEncoder().encode('meter.invalid')))))(t);
  }]],
  ['device-hw-serial-7', 'hwSerialNum of 7 octets', 'docs/domain.md §2 (8-octet EUI-64)', 'ERR_PROFILE_DEVICE_HW_SERIAL', deviceDs, S.dca, [setExt(OID.subjectAltName, extension(OID.subjectAltName, true, hardwareModuleNameSanValue(TEST_ENVIRONMENT.defaultHwType, fromHex('DB1234567890A0'))))]],
  ['device-hw-type-other', 'hwType not allowed by the environment', 'docs/domain.md §2 (hwType OID)', 'ERR_PROFILE_DEVICE_HW_TYPE', deviceDs, S.dca, [setExt(OID.subjectAltName, extension(OID.subjectAltName, true, hardwareModuleNameSanValue('1.2.3.4.5', fromHex(DEVICE_EUI))))]],
  ['unknown-kind', 'end-entity with only a CN: neither organisation nor device', 'docs/domain.md §2 (kinds)', 'ERR_PROFILE_UNKNOWN_KIND', supplierDs, S.oca, [withSubject([cn('Someone')])]],
  ['org-keycertsign', 'organisation certificate asserting keyCertSign besides digitalSignature (linted as an organisation certificate)', 'RFC 5280 4.2.1.3 (keyCertSign only with cA TRUE)', 'ERR_PROFILE_KEY_CERT_SIGN_NOT_CA', supplierDs, S.oca, [setExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(['digitalSignature', 'keyCertSign'])))], { expectedKind: 'organisation' }],
  ['oca-policy-constraints-not-critical', 'organisation CA with a non-critical policyConstraints (requireExplicitPolicy 0)', 'RFC 5280 4.2.1.11 (MUST be critical)', 'ERR_PROFILE_POLICY_CONSTRAINTS_NOT_CRITICAL', oca.certificate, S.root, [addExt(extension('2.5.29.36', false, derSequence(derTlv(0x80, Uint8Array.of(0)))))]],
];
for (const [id, comment, clause, code, base, signer, edits, extra] of negatives) {
  addCert({ id, comment, clause, result: 'invalid', errorCode: code, cert: await variant(base, signer, ...edits), ...(extra ?? {}) });
}
addCert({
  id: 'root-aki-other-key', comment: "an AKI on the self-signed root naming another key (the OCA's): the warning for the AKI, an error for the key",
  clause: 'RFC 5280 4.2.1.1 (keyIdentifier of the key that verifies the signature)', result: 'invalid', errorCode: 'ERR_PROFILE_AKI_ROOT_MISMATCH', warnings: ['ERR_PROFILE_AKI_ON_ROOT'],
  cert: await variant(root.certificate, S.root, addExt(extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(oca.certificate.subjectKeyId ?? ''))))),
});

// ------------------------------------------------------------------------------------------------
// path cases

interface PathCase {
  id: string;
  comment: string;
  clause: string;
  input: {
    leaf: string;
    intermediates: string[];
    anchors: string[];
    crls?: string[];
    at: string;
    requireRevocation?: boolean;
    environment?: EnvOverride;
  };
  result: 'valid' | 'invalid';
  errorCode?: string;
  alsoReported?: string[];
  revocationChecked?: boolean;
}
const pathCases: PathCase[] = [];
const pem = (c: SmkiCertificate) => certificateToPem(c);

function addPath(c: {
  id: string; comment: string; clause: string; leaf: SmkiCertificate; intermediates?: SmkiCertificate[]; anchors?: SmkiCertificate[];
  crls?: string[]; at?: Date; requireRevocation?: boolean; environment?: EnvOverride; result: 'valid' | 'invalid'; errorCode?: string; alsoReported?: string[]; revocationChecked?: boolean;
}): void {
  const intermediates = c.intermediates ?? [oca.certificate];
  const anchors = c.anchors ?? [root.certificate];
  const at = c.at ?? AT;
  const r = validatePath(c.leaf, {
    intermediates, anchors, at, environment: envFrom(c.environment),
    ...(c.crls ? { crls: c.crls } : {}), ...(c.requireRevocation ? { requireRevocation: true } : {}),
  });
  const errors = [...new Set(r.findings.filter((f) => f.severity === 'error').map((f) => f.code))].sort();
  const want = c.result === 'valid' ? [] : [c.errorCode, ...(c.alsoReported ?? [])].sort();
  if (r.valid !== (c.result === 'valid') || JSON.stringify(errors) !== JSON.stringify(want)) {
    problems.push(`path ${c.id}: expected ${c.result} ${JSON.stringify(want)}, got valid=${r.valid} ${JSON.stringify(errors)}`);
  }
  if (c.revocationChecked !== undefined && r.revocationChecked !== c.revocationChecked) problems.push(`path ${c.id}: revocationChecked ${r.revocationChecked}`);
  const input: PathCase['input'] = { leaf: pem(c.leaf), intermediates: intermediates.map(pem), anchors: anchors.map(pem), at: at.toISOString() };
  if (c.crls) input.crls = c.crls;
  if (c.requireRevocation) input.requireRevocation = true;
  if (c.environment) input.environment = c.environment;
  const out: PathCase = { id: c.id, comment: c.comment, clause: c.clause, input, result: c.result };
  if (c.errorCode) out.errorCode = c.errorCode;
  if (c.alsoReported) out.alsoReported = c.alsoReported;
  if (c.revocationChecked !== undefined) out.revocationChecked = c.revocationChecked;
  pathCases.push(out);
}

const crlAt = { thisUpdate: new Date('2026-05-31T00:00:00Z'), nextUpdate: new Date('2026-06-07T00:00:00Z') };
const ocaCrlEmpty = crlToPem(await issueCrl({ issuer: oca, crlNumber: 1n, ...crlAt, kind: 'crl' }));
const dcaCrlEmpty = crlToPem(await issueCrl({ issuer: dca, crlNumber: 1n, ...crlAt, kind: 'crl' }));
const arlEmpty = crlToPem(await issueCrl({ issuer: root, crlNumber: 1n, ...crlAt, kind: 'arl' }));
const ocaCrlRevokingSupplier = crlToPem(await issueCrl({ issuer: oca, crlNumber: 2n, ...crlAt, kind: 'crl', revoked: [{ serialNumber: supplierDs, revocationDate: new Date('2026-05-30T12:00:00Z'), reason: 'keyCompromise' }] }));
const arlRevokingOca = crlToPem(await issueCrl({ issuer: root, crlNumber: 2n, ...crlAt, kind: 'arl', revoked: [{ serialNumber: oca.certificate, revocationDate: new Date('2026-05-30T12:00:00Z'), reason: 'cACompromise' }] }));
const ocaCrlExpired = crlToPem(await issueCrl({ issuer: oca, crlNumber: 3n, thisUpdate: new Date('2026-05-01T00:00:00Z'), nextUpdate: new Date('2026-05-08T00:00:00Z'), kind: 'crl' }));
const ocaCrlFuture = crlToPem(await issueCrl({ issuer: oca, crlNumber: 4n, thisUpdate: new Date('2026-06-02T00:00:00Z'), nextUpdate: new Date('2026-06-09T00:00:00Z'), kind: 'crl' }));
const impostor = seededSigner('impostor');
const impostorOca = await variant(oca.certificate, S.root, withKey(impostor.publicKey)); // keeps the OCA's SKI, so the CRL's AKI names the real OCA
const ocaCrlWrongKey = crlToPem(await issueCrl({ issuer: { certificate: impostorOca, signer: impostor }, crlNumber: 5n, ...crlAt, kind: 'crl' }));

// A second organisation CA generation: same name, another key.
const oca2Key = seededSigner('organisation-ca-gen2');
const oca2 = await variant(oca.certificate, S.root, withKey(oca2Key.publicKey, oca2Key.publicKey), (t) => ({ ...t, serialNumber: seededRandom('oca-gen2')(16).map((b, i) => (i === 0 ? (b & 0x7f) | 1 : b)) }));
const supplierUnderGen2 = await variant(supplierDs, oca2Key, setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(oca2.subjectKeyId ?? '')))));
// A sub-CA under the OCA (breaks the OCA's pathLen 0) and a leaf under it.
const subCaKey = seededSigner('sub-ca');
const subCa = await variant(oca.certificate, S.oca, withKey(subCaKey.publicKey, subCaKey.publicKey), (t) => ({ ...t, issuer: { der: oca.certificate.subject.der } }), withSubject([printable(OID.organizationalUnitName, '07'), printable(OID.commonName, 'Z9')]),
  setExt(OID.authorityKeyIdentifier, null), addExt(extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(oca.certificate.subjectKeyId ?? '')))));
const leafUnderSubCa = await variant(supplierDs, subCaKey, (t) => ({ ...t, issuer: { der: subCa.subject.der } }), setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(subCa.subjectKeyId ?? '')))));
// An OCA without keyCertSign, and a leaf under it.
const ocaNoCertSign = await variant(oca.certificate, S.root, setExt(OID.keyUsage, extension(OID.keyUsage, true, keyUsageValue(['cRLSign']))));
// A leaf signed by the supplier's own (end-entity) key, named as if the supplier were a CA.
const supplierSigner = seededSigner('supplier-ds');
const leafUnderEe = await variant(networkDs, supplierSigner, (t) => ({ ...t, issuer: { der: supplierDs.subject.der } }), setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(supplierDs.subjectKeyId ?? '')))));
// A device certificate issued by the organisation CA.
const deviceUnderOca = await variant(deviceDs, S.oca, (t) => ({ ...t, issuer: { der: oca.certificate.subject.der } }), setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex(oca.certificate.subjectKeyId ?? '')))));

addPath({ id: 'org-ds-valid', comment: 'supplier DS ← OCA ← root', clause: 'RFC 5280 6.1; docs/domain.md §2', leaf: supplierDs, result: 'valid', revocationChecked: false });
addPath({ id: 'org-ka-valid', comment: 'supplier KA ← OCA ← root', clause: 'RFC 5280 6.1', leaf: supplierKa, result: 'valid' });
addPath({ id: 'device-ds-valid', comment: 'device DS ← DCA ← root', clause: 'RFC 5280 6.1; docs/domain.md §2', leaf: deviceDs, intermediates: [dca.certificate], result: 'valid' });
addPath({ id: 'device-ka-valid-gas', comment: 'gas meter KA ← DCA ← root', clause: 'RFC 5280 6.1', leaf: gasKa, intermediates: [dca.certificate], result: 'valid' });
addPath({ id: 'oca-as-anchor', comment: 'the caller trusts the OCA directly (a non-self-signed anchor)', clause: 'RFC 5280 6.1.1(d)', leaf: supplierDs, intermediates: [], anchors: [oca.certificate], result: 'valid' });
addPath({ id: 'revocation-checked-valid', comment: 'organisation CRL and ARL present, nothing revoked, revocation required', clause: 'RFC 5280 6.3', leaf: supplierDs, crls: [ocaCrlEmpty, arlEmpty], requireRevocation: true, result: 'valid', revocationChecked: true });
addPath({ id: 'device-revocation-checked-valid', comment: 'device CRL and ARL present, nothing revoked', clause: 'RFC 5280 6.3', leaf: deviceKa, intermediates: [dca.certificate], crls: [dcaCrlEmpty, arlEmpty], requireRevocation: true, result: 'valid', revocationChecked: true });
addPath({ id: 'two-oca-generations', comment: 'two OCAs with the same name and different keys: the builder tries both', clause: 'RFC 5280 6.1 (path building)', leaf: supplierUnderGen2, intermediates: [oca.certificate, oca2], result: 'valid' });
addPath({ id: 'high-s-path', comment: 'every signature in the path high-S', clause: 'docs/domain.md §4 (never reject high-S)', leaf: await variant(supplierDs, seededSigner('organisation-ca', 'high')), intermediates: [await variant(oca.certificate, seededSigner('root', 'high'))], result: 'valid' });
addPath({ id: 'no-anchors', comment: 'no trust anchor given', clause: 'RFC 5280 6.1.1(d)', leaf: supplierDs, anchors: [], result: 'invalid', errorCode: 'ERR_CHAIN_NO_ANCHORS' });
addPath({ id: 'issuer-not-found', comment: 'the OCA is not supplied', clause: 'RFC 5280 6.1 (path building)', leaf: supplierDs, intermediates: [], result: 'invalid', errorCode: 'ERR_CHAIN_ISSUER_NOT_FOUND' });
addPath({ id: 'leaf-expired', comment: 'validated in 2036, after the 10-year organisation certificate', clause: 'RFC 5280 6.1.3(a)(2)', leaf: supplierDs, at: new Date('2036-01-01T00:00:00Z'), result: 'invalid', errorCode: 'ERR_CHAIN_EXPIRED' });
addPath({ id: 'not-yet-valid', comment: 'validated in 2024, before the hierarchy', clause: 'RFC 5280 6.1.3(a)(2)', leaf: supplierDs, at: new Date('2024-06-01T00:00:00Z'), result: 'invalid', errorCode: 'ERR_CHAIN_NOT_YET_VALID' });
addPath({ id: 'signature-wrong-key', comment: 'leaf names the OCA but was signed by another key', clause: 'RFC 5280 6.1.3(a)(1)', leaf: await variant(supplierDs, seededSigner('impostor')), result: 'invalid', errorCode: 'ERR_CHAIN_SIGNATURE_INVALID' });
addPath({ id: 'aki-mismatch', comment: "leaf AKI is not the OCA's SKI", clause: 'RFC 5280 4.2.1.1', leaf: await variant(supplierDs, S.oca, setExt(OID.authorityKeyIdentifier, extension(OID.authorityKeyIdentifier, false, authorityKeyIdentifierValue(fromHex('4000000000000042'))))), result: 'invalid', errorCode: 'ERR_CHAIN_KEY_ID_MISMATCH' });
addPath({ id: 'issuer-not-ca', comment: 'a certificate signed by an organisation (end-entity) key', clause: 'RFC 5280 6.1.4(k)', leaf: leafUnderEe, intermediates: [supplierDs, oca.certificate], result: 'invalid', errorCode: 'ERR_CHAIN_ISSUER_NOT_CA', alsoReported: ['ERR_CHAIN_TOO_LONG', 'ERR_PROFILE_KEY_USAGE_INVALID', 'ERR_PROFILE_BASIC_CONSTRAINTS_MISSING', 'ERR_PROFILE_OCA_ROLE', 'ERR_CHAIN_ISSUER_KEY_USAGE', 'ERR_CHAIN_PATH_LENGTH_EXCEEDED'] });
addPath({ id: 'path-length-exceeded', comment: 'leaf ← sub-CA ← OCA (pathLen 0) ← root', clause: 'RFC 5280 6.1.4(l)', leaf: leafUnderSubCa, intermediates: [subCa, oca.certificate], result: 'invalid', errorCode: 'ERR_CHAIN_PATH_LENGTH_EXCEEDED', alsoReported: ['ERR_CHAIN_TOO_LONG'] });
addPath({ id: 'issuer-without-keycertsign', comment: 'OCA whose keyUsage lacks keyCertSign', clause: 'RFC 5280 6.1.4(n)', leaf: supplierDs, intermediates: [ocaNoCertSign], result: 'invalid', errorCode: 'ERR_CHAIN_ISSUER_KEY_USAGE', alsoReported: ['ERR_PROFILE_KEY_USAGE_INVALID'] });
addPath({ id: 'device-under-oca', comment: 'device certificate issued by the organisation CA', clause: 'docs/domain.md §2 (two PKIs)', leaf: deviceUnderOca, result: 'invalid', errorCode: 'ERR_CHAIN_PKI_MISMATCH' });
addPath({ id: 'policy-not-in-environment', comment: "the environment's organisation policy is another OID", clause: 'docs/domain.md §2 (policy OIDs per environment)', leaf: supplierDs, environment: { organisationPolicies: ['1.2.826.0.1.8641679.1.2.1.99'] }, result: 'invalid', errorCode: 'ERR_CHAIN_POLICY_NOT_ALLOWED', alsoReported: ['ERR_CHAIN_PKI_MISMATCH', 'ERR_PROFILE_POLICY_NOT_ALLOWED'] });
addPath({ id: 'leaf-profile-violation', comment: 'leaf keyUsage not critical: the profile of the leaf level fails the path', clause: 'docs/domain.md §2; RFC 5280 6.1', leaf: await variant(supplierDs, S.oca, critical(OID.keyUsage, false)), result: 'invalid', errorCode: 'ERR_PROFILE_KEY_USAGE_NOT_CRITICAL' });
addPath({ id: 'leaf-revoked', comment: 'the organisation CRL lists the supplier DS certificate', clause: 'RFC 5280 6.3.3', leaf: supplierDs, crls: [ocaCrlRevokingSupplier, arlEmpty], result: 'invalid', errorCode: 'ERR_REVOKED' });
addPath({ id: 'oca-revoked', comment: 'the authority revocation list lists the OCA', clause: 'RFC 5280 6.3.3', leaf: supplierDs, crls: [ocaCrlEmpty, arlRevokingOca], result: 'invalid', errorCode: 'ERR_REVOKED' });
addPath({ id: 'crl-expired', comment: 'organisation CRL past nextUpdate, revocation required', clause: 'RFC 5280 6.3.3(a)(2)', leaf: supplierDs, crls: [ocaCrlExpired, arlEmpty], requireRevocation: true, result: 'invalid', errorCode: 'ERR_CRL_EXPIRED', alsoReported: ['ERR_CRL_MISSING'] });
addPath({ id: 'crl-not-yet-valid', comment: 'organisation CRL thisUpdate after the validation time, revocation required', clause: 'RFC 5280 5.1.2.4', leaf: supplierDs, crls: [ocaCrlFuture, arlEmpty], requireRevocation: true, result: 'invalid', errorCode: 'ERR_CRL_NOT_YET_VALID', alsoReported: ['ERR_CRL_MISSING'] });
addPath({ id: 'crl-wrong-signer', comment: "CRL with the OCA's name signed by another key, revocation required", clause: 'RFC 5280 6.3.3(f)', leaf: supplierDs, crls: [ocaCrlWrongKey, arlEmpty], requireRevocation: true, result: 'invalid', errorCode: 'ERR_CRL_SIGNATURE_INVALID', alsoReported: ['ERR_CRL_MISSING'] });
addPath({ id: 'crl-missing-required', comment: 'revocation required and no CRL given', clause: 'RFC 5280 6.3', leaf: supplierDs, requireRevocation: true, result: 'invalid', errorCode: 'ERR_CRL_MISSING', revocationChecked: false });

if (problems.length > 0) {
  console.error(`generate-vectors: ${problems.length} case(s) do not behave as declared:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

// ------------------------------------------------------------------------------------------------
// write (or check)

const keyPem = (label: string) => seededPrivateKey(label).export({ format: 'pem', type: 'pkcs8' }).toString();
const files: Record<string, unknown> = {
  'hierarchy.json': {
    source: 'docs/domain.md §2; generated test hierarchy (not the DCC test PKI)',
    generator: GENERATOR,
    comment: 'Keys are derived from the labels with SHA-256 and are public test material: never use them outside tests.',
    notBefore: NOT_BEFORE.toISOString(),
    validationTime: AT.toISOString(),
    root: { certificate: pem(root.certificate), keyLabel: 'root', privateKey: keyPem('root') },
    organisationCa: { certificate: pem(oca.certificate), keyLabel: 'organisation-ca', privateKey: keyPem('organisation-ca') },
    deviceCa: { certificate: pem(dca.certificate), keyLabel: 'device-ca', privateKey: keyPem('device-ca') },
    organisations: [
      { name: 'supplier-ds', role: 2, entityId: SUPPLIER_EUI, keyUsage: 'digitalSignature', certificate: pem(supplierDs), privateKey: keyPem('supplier-ds') },
      { name: 'supplier-ka', role: 2, entityId: SUPPLIER_EUI, keyUsage: 'keyAgreement', certificate: pem(supplierKa), privateKey: keyPem('supplier-ka') },
      { name: 'network-ds', role: 3, entityId: NETWORK_EUI, keyUsage: 'digitalSignature', certificate: pem(networkDs), privateKey: keyPem('network-ds') },
      { name: 'acb-ka', role: 4, entityId: ACB_EUI, keyUsage: 'keyAgreement', certificate: pem(acbKa), privateKey: keyPem('acb-ka') },
    ],
    devices: [
      { name: 'esme-ds', entityId: DEVICE_EUI, keyUsage: 'digitalSignature', certificate: pem(deviceDs), privateKey: keyPem('esme-ds') },
      { name: 'esme-ka', entityId: DEVICE_EUI, keyUsage: 'keyAgreement', certificate: pem(deviceKa), privateKey: keyPem('esme-ka') },
      { name: 'gsme-ka', entityId: GAS_EUI, keyUsage: 'keyAgreement', certificate: pem(gasKa), privateKey: keyPem('gsme-ka') },
    ],
  },
  'certificates.json': {
    source: 'docs/domain.md §2 (SMKI certificate profiles); RFC 5280 §4',
    generator: GENERATOR,
    comment: 'lintCertificate cases: valid means no error finding; invalid means the error findings are exactly errorCode. Negative cases change one field of a conformant certificate and are re-signed by the right issuer.',
    cases: certCases,
  },
  'paths.json': {
    source: 'RFC 5280 §6.1, §6.3; docs/domain.md §2',
    generator: GENERATOR,
    comment: 'validatePath cases at input.at: valid means valid with no error finding; invalid means not valid and the set of error codes is exactly errorCode (the rule the case breaks) plus alsoReported (rules that breaking it breaks too, e.g. an end-entity used as a CA also lacks keyCertSign).',
    cases: pathCases,
  },
};

const check = process.argv.includes('--check');
const differ = writeOrCheck(OUT, files, check, ROOT);
console.log(`${check ? 'checked' : 'wrote'} ${Object.keys(files).length} files: ${certCases.length} certificate cases, ${pathCases.length} path cases`);
if (differ > 0) process.exit(1);
