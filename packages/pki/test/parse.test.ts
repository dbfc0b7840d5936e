// parseCertificate against OpenSSL: every field of the typed view is compared with what
// `openssl x509` prints for the same bytes. RFC 5280 §4.1 (fields), §4.2 (extensions), docs/domain.md §2
// (SMKI profile and the quirks real certificates have: explicit NULL, no SKI, decimal role),
// RFC 7468 (PEM armour).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmkiError, type SmkiErrorCode } from '@smki/core';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate } from '../src/issue.js';
import { certificateToPem, isParsedCertificate, parseCertificate, parseCertificateBundle, toCertificate } from '../src/parse.js';
import type { DistinguishedName, SmkiCertificate } from '../src/types.js';
import {
  akiExt,
  bcExt,
  buildCertificate,
  buildDeviceCertificate,
  buildHierarchy,
  buildOrganisationCertificate,
  keyId,
  kuExt,
  name,
  oid,
  newKeyPair,
  OIDS,
  policiesExt,
  seq,
  extension,
  set,
  tlv,
} from './_x509-builder.js';

const OPENSSL = '/usr/bin/openssl';
let dir: string;

function ossl(args: readonly string[]): string {
  return execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

function expectCode(e: unknown, code: SmkiErrorCode): SmkiError {
  if (!(e instanceof SmkiError)) throw new Error(`expected SmkiError ${code}, got ${String(e)}`);
  expect(e.code).toBe(code);
  return e;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

function writeKey(file: string): { publicKey: KeyObject; privateKey: KeyObject } {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(join(dir, file), kp.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return kp;
}

/** `40:AB:…` spelling of the SMKI method-2 key id of `key`, for openssl's subjectKeyIdentifier. */
const skiColon = (key: KeyObject): string => hex(keyId(key)).replace(/(..)(?!$)/g, '$1:');

function reqConfig(file: string, mask: 'pkix' | 'utf8only', dn: readonly [string, string][]): void {
  writeFileSync(
    join(dir, file),
    `[req]\ndistinguished_name = dn\nstring_mask = ${mask}\nprompt = no\n[dn]\n${dn.map(([k, v]) => `${k} = ${v}`).join('\n')}\n`,
  );
}

// ---------------------------------------------------------------------------------------------
// Comparison with `openssl x509`

const SHORT_NAMES: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.11': 'OU', '2.5.4.45': 'x500UniqueIdentifier', '2.5.4.10': 'O', '2.5.4.6': 'C' };
const STRING_TYPES: Record<number, string> = { 12: 'UTF8STRING', 19: 'PRINTABLESTRING', 3: 'BIT STRING' };

/** The name as `-nameopt sep_comma_plus_space,sname,show_type,dump_nostr,dump_der` prints it. */
function opensslName(n: DistinguishedName): string {
  return n.attributes
    .map((a) => {
      const type = STRING_TYPES[a.tag] ?? `tag${a.tag}`;
      const value = a.tag === 3 ? `#03${(a.value.length / 2 + 1).toString(16).padStart(2, '0').toUpperCase()}00${a.value}` : a.value;
      return `${SHORT_NAMES[a.oid] ?? a.oid}=${type}:${value}`;
    })
    .join(', ');
}

const EXT_NAMES: Record<string, string> = {
  'X509v3 Subject Key Identifier': OIDS.ski,
  'X509v3 Authority Key Identifier': OIDS.aki,
  'X509v3 Key Usage': OIDS.keyUsage,
  'X509v3 Basic Constraints': OIDS.basicConstraints,
  'X509v3 Certificate Policies': OIDS.policies,
  'X509v3 Subject Alternative Name': OIDS.san,
};

const KU_NAMES: Record<string, string> = {
  'Digital Signature': 'digitalSignature',
  'Non Repudiation': 'nonRepudiation',
  'Key Encipherment': 'keyEncipherment',
  'Data Encipherment': 'dataEncipherment',
  'Key Agreement': 'keyAgreement',
  'Certificate Sign': 'keyCertSign',
  'CRL Sign': 'cRLSign',
};

function fields(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

/** Compare every field of `cert` with openssl's reading of the same DER. */
function expectMatchesOpenssl(cert: SmkiCertificate, label: string): void {
  const file = `${label}.der`;
  writeFileSync(join(dir, file), cert.der);

  // serial, names, dates, fingerprint
  const f = fields(
    ossl(['x509', '-inform', 'DER', '-in', file, '-noout', '-serial', '-subject', '-issuer', '-dates', '-dateopt', 'iso_8601', '-fingerprint', '-sha256',
      '-nameopt', 'sep_comma_plus_space,sname,show_type,dump_nostr,dump_der,utf8']),
  );
  expect(BigInt(`0x${f.get('serial')}`)).toBe(BigInt(`0x${cert.serialNumber}`));
  expect(cert.serialNumber).toBe(hex(cert.details.serialBytes));
  expect(f.get('subject')).toBe(opensslName(cert.subject));
  expect(f.get('issuer')).toBe(opensslName(cert.issuer));
  expect(new Date((f.get('notBefore') as string).replace(' ', 'T')).getTime()).toBe(cert.notBefore.getTime());
  expect(new Date((f.get('notAfter') as string).replace(' ', 'T')).getTime()).toBe(cert.notAfter.getTime());
  expect(f.get('sha256 Fingerprint')?.replace(/:/g, '')).toBe(cert.fingerprint);

  // -text: version, algorithms, extensions in order with critical flags, signature value
  const text = ossl(['x509', '-inform', 'DER', '-in', file, '-noout', '-text']);
  expect(text).toMatch(new RegExp(`Version: ${cert.details.version + 1} \\(0x${cert.details.version}\\)`));
  const algs = [...text.matchAll(/Signature Algorithm: (\S+)/g)].map((m) => m[1]);
  expect(algs).toEqual(['ecdsa-with-SHA256', 'ecdsa-with-SHA256']);
  expect(cert.signatureAlgorithm).toBe(OIDS.ecdsaSha256);
  expect(cert.details.tbsSignatureAlgorithm).toBe(OIDS.ecdsaSha256);
  const sigHex = (text.split('Signature Value:')[1] ?? '').replace(/[\s:]/g, '').toUpperCase();
  expect(sigHex).toBe(hex(cert.signature));
  expect(text).toContain('ASN1 OID: prime256v1');
  expect(cert.details.publicKeyAlgorithm).toBe(OIDS.ecPublicKey);
  expect(cert.details.publicKeyCurve).toBe(OIDS.p256);

  const extBlock = text.includes('X509v3 extensions:') ? (text.split('X509v3 extensions:')[1] as string).split('    Signature Algorithm:')[0] as string : '';
  const exts: { oid: string; critical: boolean; lines: string[] }[] = [];
  for (const line of extBlock.split('\n')) {
    const head = /^ {12}(\S.*?):( critical)?\s*$/.exec(line);
    if (head) exts.push({ oid: EXT_NAMES[head[1] as string] ?? (head[1] as string), critical: head[2] !== undefined, lines: [] });
    else if (line.trim() !== '') exts[exts.length - 1]?.lines.push(line.trim());
  }
  expect(exts.map((e) => [e.oid, e.critical])).toEqual(cert.extensions.map((e) => [e.oid, e.critical]));
  for (const e of exts) {
    const value = e.lines.join(' ');
    switch (e.oid) {
      case OIDS.ski:
        expect(value.replace(/:/g, '')).toBe(cert.subjectKeyId);
        break;
      case OIDS.aki:
        expect(value.replace(/^keyid:/, '').replace(/:/g, '')).toBe(cert.authorityKeyId);
        break;
      case OIDS.keyUsage:
        expect(value.split(', ').map((n) => KU_NAMES[n])).toEqual(cert.keyUsage);
        break;
      case OIDS.basicConstraints: {
        const bc = cert.basicConstraints;
        expect(value).toBe(`CA:${bc?.ca ? 'TRUE' : 'FALSE'}${bc?.pathLength !== undefined ? `, pathlen:${bc.pathLength}` : ''}`);
        break;
      }
      case OIDS.policies:
        expect(e.lines.map((l) => l.replace(/^Policy: /, ''))).toEqual(cert.policies);
        break;
      case OIDS.san:
        expect(value).toContain(`othername: ${OIDS.hmn}::`);
        expect(cert.details.subjectAltName).toEqual({ names: 1, hardwareModuleNames: 1 });
        break;
      default:
        throw new Error(`extension ${e.oid} not compared`);
    }
  }
  if (!exts.some((e) => e.oid === OIDS.ski)) expect(cert.subjectKeyId).toBeUndefined();
  if (!exts.some((e) => e.oid === OIDS.aki)) expect(cert.authorityKeyId).toBeUndefined();

  // Public key: the SPKI DER and the KeyObject.
  const spkiPem = ossl(['x509', '-inform', 'DER', '-in', file, '-noout', '-pubkey']);
  const spki = Buffer.from(spkiPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
  expect(hex(cert.details.spkiDer)).toBe(hex(spki));
  expect(cert.publicKey).toBeDefined();
  expect(hex(cert.publicKey?.export({ format: 'der', type: 'spki' }) as Buffer)).toBe(hex(spki));
  expect(hex(cert.publicKeyBytes)).toBe(hex(spki.subarray(spki.length - 65)));

  // Structure: tbsCertificate bytes, and NULL algorithm parameters where openssl sees them.
  const asn = ossl(['asn1parse', '-inform', 'DER', '-in', file]).split('\n');
  const tbsLine = /^\s*(\d+):d=1\s+hl=(\d+)\s+l=\s*(\d+)\s+cons: SEQUENCE/.exec(asn[1] as string);
  expect(tbsLine).not.toBeNull();
  const [tOff, tHl, tLen] = [Number(tbsLine?.[1]), Number(tbsLine?.[2]), Number(tbsLine?.[3])];
  expect(hex(cert.tbsDer)).toBe(hex(cert.der.subarray(tOff, tOff + tHl + tLen)));
  const nulls = asn.filter((l) => /prim: NULL/.test(l)).length;
  expect(nulls).toBe(cert.details.signatureAlgorithmParams === 'null' ? 2 : 0);
  const times = asn.filter((l) => /prim: (UTCTIME|GENERALIZEDTIME)/.test(l));
  expect(times.map((l) => (/UTCTIME/.test(l) && !/GENERALIZEDTIME/.test(l) ? 23 : 24))).toEqual([cert.details.notBeforeTag, cert.details.notAfterTag]);
  expect(times[1]).toContain(`:${cert.details.notAfterText}`);
}

// ---------------------------------------------------------------------------------------------
// Fixtures

interface Fixture {
  readonly label: string;
  readonly pem: string;
  readonly der: Uint8Array;
}

const openssl: Record<string, Fixture> = {};

function fromPemFile(label: string, file: string): Fixture {
  const pem = readFileSync(join(dir, file), 'utf8');
  const der = new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64'));
  const f = { label, pem, der };
  openssl[label] = f;
  return f;
}

const SUPPLIER = '90B3D51F30010000';
const DEVICE = '00DB1234567890A0';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'smki-parse-'));

  // Root: self-signed, PrintableString names (string_mask pkix), method-2 SKI, no AKI.
  const rootKey = writeKey('root.key');
  reqConfig('root.cnf', 'pkix', [['OU', '00'], ['CN', 'ZA']]);
  ossl(['req', '-x509', '-new', '-config', 'root.cnf', '-key', 'root.key', '-sha256', '-set_serial', '0x3A0102030405060708090A0B0C0D0E0F', '-days', '10950',
    '-addext', `subjectKeyIdentifier=${skiColon(rootKey.publicKey)}`,
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', `certificatePolicies=critical,${OIDS.orgPolicy}`,
    '-out', 'root.pem']);
  fromPemFile('openssl root', 'root.pem');

  const issue = (label: string, csrCnf: string, key: string, ca: string, caKey: string, serial: string, ext: string): void => {
    ossl(['req', '-new', '-utf8', '-config', csrCnf, '-key', key, '-out', `${label}.csr`]);
    writeFileSync(join(dir, `${label}.ext`), `[ext]\n${ext}\n`);
    ossl(['x509', '-req', '-in', `${label}.csr`, '-CA', ca, '-CAkey', caKey, '-sha256', '-set_serial', serial, '-days', '3650', '-extfile', `${label}.ext`, '-extensions', 'ext', '-out', `${label}.pem`]);
    fromPemFile(`openssl ${label}`, `${label}.pem`);
  };

  const ocaKey = writeKey('oca.key');
  reqConfig('oca.cnf', 'pkix', [['OU', '07'], ['CN', 'Z1']]);
  issue('oca', 'oca.cnf', 'oca.key', 'root.pem', 'root.key', '0x1101020304050607080910111213141F', [
    `subjectKeyIdentifier = ${skiColon(ocaKey.publicKey)}`,
    'authorityKeyIdentifier = keyid:always',
    'keyUsage = critical, keyCertSign, cRLSign',
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    `certificatePolicies = critical, ${OIDS.orgPolicy}`,
  ].join('\n'));

  const dcaKey = writeKey('dca.key');
  reqConfig('dca.cnf', 'pkix', [['CN', 'E357']]);
  issue('dca', 'dca.cnf', 'dca.key', 'root.pem', 'root.key', '0x2201020304050607080910111213141F', [
    `subjectKeyIdentifier = ${skiColon(dcaKey.publicKey)}`,
    'authorityKeyIdentifier = keyid:always',
    'keyUsage = critical, keyCertSign, cRLSign',
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    `certificatePolicies = critical, ${OIDS.devicePolicy}`,
  ].join('\n'));

  // Organisation certificate with UTF8String names. OpenSSL writes x500UniqueIdentifier as a
  // string, not the BIT STRING the profile wants: the certificate parses without an entityId.
  const orgKey = writeKey('org.key');
  reqConfig('org.cnf', 'utf8only', [['CN', 'Supplier Ltd – Ünïcode'], ['OU', '02'], ['x500UniqueIdentifier', SUPPLIER]]);
  issue('org', 'org.cnf', 'org.key', 'oca.pem', 'oca.key', '0x3301020304050607080910111213141F', [
    `subjectKeyIdentifier = ${skiColon(orgKey.publicKey)}`,
    'authorityKeyIdentifier = keyid:always',
    'keyUsage = critical, digitalSignature',
    `certificatePolicies = critical, ${OIDS.orgPolicy}`,
  ].join('\n'));

  // Organisation certificate with a decimal role OU and no subjectKeyIdentifier.
  writeKey('org2.key');
  reqConfig('org2.cnf', 'utf8only', [['OU', '2']]);
  issue('org-decimal-no-ski', 'org2.cnf', 'org2.key', 'oca.pem', 'oca.key', '0x4401020304050607080910111213141F', [
    'subjectKeyIdentifier = none',
    'authorityKeyIdentifier = keyid:always',
    'keyUsage = critical, keyAgreement',
    `certificatePolicies = critical, ${OIDS.orgPolicy}`,
  ].join('\n'));

  // Device certificate via `openssl ca`: empty subject, notAfter 99991231235959Z, critical SAN
  // with hardwareModuleName, a serial whose top bit is set (DER keeps a 00 octet).
  const devKey = writeKey('dev.key');
  writeFileSync(join(dir, 'dev.cnf'), '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n');
  ossl(['req', '-new', '-config', 'dev.cnf', '-key', 'dev.key', '-subj', '/', '-out', 'dev.csr']);
  mkdirSync(join(dir, 'ca'));
  writeFileSync(join(dir, 'ca', 'index.txt'), '');
  writeFileSync(join(dir, 'ca', 'serial'), '8A0102030405060708090A0B0C0D0E0F\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]', 'default_ca = CA_default', '[CA_default]', 'dir = ./ca', 'database = $dir/index.txt', 'new_certs_dir = $dir', 'serial = $dir/serial',
      'default_md = sha256', 'policy = policy_any', 'unique_subject = no', 'email_in_dn = no', 'copy_extensions = none', '[policy_any]',
      '[ext]', `subjectAltName = critical, otherName:${OIDS.hmn};SEQUENCE:hmn`, 'keyUsage = critical, keyAgreement',
      `certificatePolicies = critical, ${OIDS.devicePolicy}`, `subjectKeyIdentifier = ${skiColon(devKey.publicKey)}`, 'authorityKeyIdentifier = keyid:always',
      '[hmn]', `hwType = OID:${OIDS.hwType}`, `hwSerialNum = FORMAT:HEX,OCTETSTRING:${DEVICE}`, '',
    ].join('\n'),
  );
  ossl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'dca.pem', '-keyfile', 'dca.key', '-in', 'dev.csr', '-startdate', '20240101000000Z', '-enddate', '99991231235959Z',
    '-extensions', 'ext', '-notext', '-out', 'dev.pem']);
  fromPemFile('openssl device', 'dev.pem');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('parseCertificate on certificates made by openssl (RFC 5280 §4.1)', () => {
  const labels = ['openssl root', 'openssl oca', 'openssl dca', 'openssl org', 'openssl org-decimal-no-ski', 'openssl device'];

  it.each(labels)('%s: PEM and DER give the same certificate, and every field matches openssl x509', (label) => {
    const f = openssl[label] as Fixture;
    const fromPem = parseCertificate(f.pem);
    const fromDer = parseCertificate(f.der);
    expect(fromPem.fingerprint).toBe(fromDer.fingerprint);
    expect(hex(fromPem.der)).toBe(hex(f.der));
    expectMatchesOpenssl(fromDer, label.replace(/ /g, '-'));
  });

  it('reads what each certificate is (docs/domain.md §2)', () => {
    const c = (l: string): SmkiCertificate => parseCertificate((openssl[l] as Fixture).der);
    const root = c('openssl root');
    expect([root.kind, root.role, root.subject.text, root.details.roleSpelling]).toEqual(['root', 0, 'OU=00, CN=ZA', 'canonical']);
    expect(root.subject.attributes.map((a) => a.tag)).toEqual([19, 19]);
    expect(root.authorityKeyId).toBeUndefined();
    expect(root.subjectKeyId).toMatch(/^4[0-9A-F]{15}$/);
    expect(root.basicConstraints).toEqual({ ca: true });
    expect(root.serialNumber).toBe('3A0102030405060708090A0B0C0D0E0F');

    const oca = c('openssl oca');
    expect([oca.kind, oca.role, oca.commonName, oca.basicConstraints]).toEqual(['issuingCa', 7, 'Z1', { ca: true, pathLength: 0 }]);
    expect(oca.authorityKeyId).toBe(root.subjectKeyId);
    expect(hex(oca.issuer.der)).toBe(hex(root.subject.der));

    const dca = c('openssl dca');
    expect([dca.kind, dca.role, dca.subject.text, dca.policies]).toEqual(['issuingCa', undefined, 'CN=E357', [OIDS.devicePolicy]]);

    const org = c('openssl org');
    expect([org.kind, org.role, org.commonName, org.keyUsage]).toEqual(['organisation', 2, 'Supplier Ltd – Ünïcode', ['digitalSignature']]);
    expect(org.subject.attributes.map((a) => [a.type, a.tag])).toEqual([['CN', 12], ['OU', 12], ['x500UniqueIdentifier', 12]]);
    expect(org.entityId).toBeUndefined(); // a string, not a 64-bit BIT STRING
    expect(org.basicConstraints).toBeUndefined();

    const dec = c('openssl org-decimal-no-ski');
    expect([dec.kind, dec.role, dec.details.ou, dec.details.roleSpelling, dec.subjectKeyId]).toEqual(['organisation', 2, '2', 'lenient', undefined]);
    expect(dec.keyUsage).toEqual(['keyAgreement']);

    const dev = c('openssl device');
    expect([dev.kind, dev.entityId, dev.subject.text, dev.subject.attributes.length]).toEqual(['device', DEVICE, '', 0]);
    expect(dev.hardwareModuleName).toEqual({ hwType: OIDS.hwType, hwSerialNum: DEVICE });
    expect(dev.serialNumber).toBe('008A0102030405060708090A0B0C0D0E0F');
    expect([dev.details.notAfterTag, dev.details.notAfterText]).toEqual([24, '99991231235959Z']);
    expect(dev.notAfter.toISOString()).toBe('9999-12-31T23:59:59.000Z');
    expect(dev.extensions.find((e) => e.oid === OIDS.san)?.critical).toBe(true);
  });

  it('parses a bundle of PEM blocks in order (openssl root, OCA, DCA)', () => {
    const bundle = ['openssl root', 'openssl oca', 'openssl dca'].map((l) => (openssl[l] as Fixture).pem).join('some text\n');
    const certs = parseCertificateBundle(bundle);
    expect(certs.map((c) => c.subject.text)).toEqual(['OU=00, CN=ZA', 'OU=07, CN=Z1', 'CN=E357']);
    expect(parseCertificateBundle('no blocks here')).toEqual([]);
  });
});

describe('parseCertificate on certificates made by createHierarchy and the issue functions', () => {
  it('matches openssl for the root, both CAs, an organisation and a device certificate', async () => {
    const h = await createHierarchy({ now: () => new Date(Date.UTC(2025, 0, 1)) });
    const org = await issueOrganisationCertificate({
      issuer: h.organisationCa,
      role: 2,
      entityId: '90-b3-d5-1f-30-01-00-00',
      keyUsage: 'digitalSignature',
      commonName: 'Supplier Ltd',
      publicKey: newKeyPair().publicKey,
      now: () => new Date(Date.UTC(2025, 5, 1)),
    });
    const dev = await issueDeviceCertificate({
      issuer: h.deviceCa,
      entityId: DEVICE,
      keyUsage: 'keyAgreement',
      publicKey: newKeyPair().publicKey,
      now: () => new Date(Date.UTC(2025, 5, 1)),
    });
    const all: [string, SmkiCertificate][] = [
      ['hier-root', h.root.certificate],
      ['hier-oca', h.organisationCa.certificate],
      ['hier-dca', h.deviceCa.certificate],
      ['hier-org', org],
      ['hier-device', dev],
    ];
    for (const [label, cert] of all) {
      const again = parseCertificate(cert.der);
      expect(again.fingerprint).toBe(cert.fingerprint);
      expect(parseCertificate(certificateToPem(cert)).fingerprint).toBe(cert.fingerprint);
      expectMatchesOpenssl(again, label);
    }
    expect(h.root.certificate.kind).toBe('root');
    expect(h.organisationCa.certificate.kind).toBe('issuingCa');
    expect(h.deviceCa.certificate.kind).toBe('issuingCa');
    expect([org.kind, org.role, org.entityId, org.keyUsage, org.details.roleSpelling]).toEqual(['organisation', 2, SUPPLIER, ['digitalSignature'], 'canonical']);
    expect(org.subject.attributes.find((a) => a.type === 'x500UniqueIdentifier')).toMatchObject({ tag: 3, bitLength: 64, value: SUPPLIER });
    expect([dev.kind, dev.entityId, dev.keyUsage, dev.details.notAfterText]).toEqual(['device', DEVICE, ['keyAgreement'], '99991231235959Z']);
    expect(org.authorityKeyId).toBe(h.organisationCa.certificate.subjectKeyId);
  });
});

describe('quirks of real certificates still parse (docs/domain.md §2)', () => {
  const pki = buildHierarchy(new Date(Date.UTC(2022, 0, 1)));

  it('an explicit NULL in both signature AlgorithmIdentifiers', () => {
    const der = buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)), explicitNullParams: true });
    const c = parseCertificate(der);
    expect(c.details.signatureAlgorithmParams).toBe('null');
    expect(c.details.signatureAlgorithmsMatch).toBe(true);
    expect(c.signatureAlgorithm).toBe(OIDS.ecdsaSha256);
    expect([c.kind, c.role, c.entityId]).toEqual(['organisation', 2, SUPPLIER]);
    expectMatchesOpenssl(c, 'quirk-null');
  });

  it('an explicit NULL in only the outer AlgorithmIdentifier (made by patching bytes)', () => {
    const der = buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'keyAgreement', notBefore: new Date(Date.UTC(2023, 0, 1)) });
    const c = parseCertificate(der);
    // Outer: 30 82 LL LL | tbs | 30 0A 06 08 <ecdsa-with-SHA256> | 03 ... → 30 0C 06 08 … 05 00, outer length + 2.
    const tbsEnd = 4 + c.tbsDer.length;
    const alg = der.subarray(tbsEnd, tbsEnd + 12);
    expect(hex(alg)).toBe('300A06082A8648CE3D040302');
    const patched = Buffer.concat([der.subarray(0, tbsEnd), Buffer.from('300C06082A8648CE3D0403020500', 'hex'), der.subarray(tbsEnd + 12)]);
    patched.writeUInt16BE(der.length - 4 + 2, 2);
    const p = parseCertificate(patched);
    expect(p.details.signatureAlgorithmParams).toBe('null');
    expect(p.details.signatureAlgorithmsMatch).toBe(false);
    expect(hex(p.tbsDer)).toBe(hex(c.tbsDer));
    expect(hex(p.signature)).toBe(hex(c.signature));
  });

  it('no subjectKeyIdentifier', () => {
    const c = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)), ski: false }));
    expect(c.subjectKeyId).toBeUndefined();
    expect(c.authorityKeyId).toBe(parseCertificate(pki.oca.der).subjectKeyId);
    expectMatchesOpenssl(c, 'quirk-no-ski');
  });

  it.each([
    ['2', 2, 'lenient'],
    ['02', 2, 'canonical'],
    ['7f', 127, 'lenient'],
    ['127', 127, 'lenient'],
    ['7F', 127, 'canonical'],
    ['99', undefined, 'invalid'],
    ['supplier', undefined, 'invalid'],
  ] as const)('role OU %j → role %j, roleSpelling %s', (ou, role, spelling) => {
    const c = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou, keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)) }));
    expect(c.role).toBe(role);
    expect(c.details.roleSpelling).toBe(spelling);
    expect(c.details.ou).toBe(ou);
    expect(c.kind).toBe('organisation');
  });

  it('UTF8String and PrintableString names: same text, different tags and DER', () => {
    const utf = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', cn: 'Acme', cnEncoding: 'utf8', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)) }));
    const prn = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', cn: 'Acme', cnEncoding: 'printable', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)) }));
    expect(utf.commonName).toBe('Acme');
    expect(prn.commonName).toBe('Acme');
    expect(utf.subject.text).toBe(prn.subject.text);
    expect(utf.subject.attributes[0]?.tag).toBe(12);
    expect(prn.subject.attributes[0]?.tag).toBe(19);
    expect(hex(utf.subject.der)).not.toBe(hex(prn.subject.der));
    expectMatchesOpenssl(utf, 'quirk-utf8');
    expectMatchesOpenssl(prn, 'quirk-printable');
  });

  it('a device certificate built by hand matches openssl', () => {
    const c = parseCertificate(buildDeviceCertificate({ issuer: pki.dca, eui: DEVICE, keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)) }));
    expect([c.kind, c.entityId]).toEqual(['device', DEVICE]);
    expectMatchesOpenssl(c, 'built-device');
  });

  it('a CA without SKI or policies, and an end entity with both usages, still parse', () => {
    const key = newKeyPair();
    const c = parseCertificate(
      buildCertificate({
        issuer: pki.root.name,
        subject: name([{ type: 'CN', value: 'odd' }]),
        notBefore: new Date(Date.UTC(2023, 0, 1)),
        notAfter: new Date(Date.UTC(2024, 0, 1)),
        publicKey: key.publicKey,
        signingKey: pki.root.key.privateKey,
        extensions: [akiExt(keyId(pki.root.key.publicKey)), kuExt(['digitalSignature', 'keyAgreement']), bcExt(false), policiesExt([])],
      }),
    );
    expect(c.kind).toBe('unknown');
    expect(c.keyUsage).toEqual(['digitalSignature', 'keyAgreement']);
    expect(c.basicConstraints).toEqual({ ca: false });
    expect(c.policies).toEqual([]);
    expect(c.subjectKeyId).toBeUndefined();
  });
});

describe('bounded decoding of names and extensions (docs/conventions.md "Inputs")', () => {
  const pki = buildHierarchy();
  const withSubject = (subject: Uint8Array, extensions: Uint8Array[] = []): Uint8Array => {
    const key = newKeyPair();
    return buildCertificate({
      issuer: pki.oca.name,
      subject,
      notBefore: new Date(Date.UTC(2023, 0, 1)),
      notAfter: new Date(Date.UTC(2033, 0, 1)),
      publicKey: key.publicKey,
      signingKey: pki.oca.key.privateKey,
      extensions,
    });
  };

  it('a UTF8String that is not UTF-8 → ERR_CERT_MALFORMED at its offset, with no TypeError inside', () => {
    const bad = seq(set(seq(oid(OIDS.cn), tlv(0x0c, new Uint8Array([0x41, 0xff, 0x42])))));
    const der = withSubject(bad);
    const e = expectCode(thrown(() => parseCertificate(der)), 'ERR_CERT_MALFORMED');
    const offset = (e.context as { offset?: number }).offset as number;
    expect(der[offset]).toBe(0x0c);
    expect(e.cause).toBeInstanceOf(SmkiError);
    expect((e.cause as SmkiError).cause).toBeUndefined();
  });

  it('policies are decoded by the bounded reader: 2,000 of them parse quickly and completely', () => {
    const many = Array.from({ length: 2000 }, (_, i) => `1.2.3.${i}`);
    const der = withSubject(name([{ type: 'OU', value: '02' }]), [kuExt(['digitalSignature']), policiesExt(many)]);
    let best = Infinity; // the fastest of three runs, so a GC pause or a busy CI core is not read as slow parsing
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      parseCertificate(der);
      best = Math.min(best, performance.now() - t0);
    }
    expect(best).toBeLessThan(50);
    const c = parseCertificate(der);
    expect(c.policies).toEqual(many);
    expect(c.details.extensionErrors).toEqual([]);
  });

  it('a subjectAltName with more than 256 DER elements is not decoded: an extension error, not a slow parse', () => {
    const names = Array.from({ length: 300 }, (_, i) => tlv(0x82, Buffer.from(`m${i}.invalid`)));
    const c = parseCertificate(withSubject(name([]), [kuExt(['keyAgreement']), extension(OIDS.san, true, seq(...names))]));
    expect(c.hardwareModuleName).toBeUndefined();
    expect(c.details.extensionErrors).toEqual([{ oid: OIDS.san, detail: expect.stringMatching(/more than 256 DER elements/) as string }]);
    expect(c.keyUsage).toEqual(['keyAgreement']);
  });
});

describe('the parsed view is immutable and owned, and toCertificate refuses look-alikes', () => {
  const pki = buildHierarchy();

  it('is deeply frozen', () => {
    const c = parseCertificate(pki.oca.der);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.details)).toBe(true);
    expect(Object.isFrozen(c.subject)).toBe(true);
    expect(Object.isFrozen(c.subject.attributes)).toBe(true);
    expect(Object.isFrozen(c.keyUsage)).toBe(true);
    expect(Object.isFrozen(c.extensions)).toBe(true);
    expect(() => {
      (c as { kind: string }).kind = 'root';
    }).toThrow(TypeError);
    expect(() => (c.keyUsage as string[]).push('keyCertSign')).toThrow(TypeError);
    expect(c.kind).toBe('issuingCa');
  });

  it('hands out copies of its dates: changing one changes nothing the next holder sees', () => {
    const c = parseCertificate(pki.oca.der);
    const year = c.notAfter.getUTCFullYear();
    c.notAfter.setUTCFullYear(1990);
    c.notBefore.setUTCFullYear(2999);
    expect(c.notAfter.getUTCFullYear()).toBe(year);
    expect(c.notBefore.getTime()).toBeLessThan(c.notAfter.getTime());
  });

  it('makes its KeyObject once, on first use, and keeps it', () => {
    const c = parseCertificate(pki.oca.der);
    const k = c.publicKey;
    expect(k?.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(c.publicKey).toBe(k);
  });

  it('copies its input: reusing the caller buffer does not change the certificate', () => {
    const buf = new Uint8Array(pki.root.der);
    const c = parseCertificate(buf);
    const before = hex(c.der);
    buf.fill(0);
    expect(hex(c.der)).toBe(before);
    expect(c.fingerprint).toBe(parseCertificate(pki.root.der).fingerprint);
  });

  it('toCertificate returns the same object for a parsed view, parses PEM and DER', () => {
    const c = parseCertificate(pki.root.der);
    expect(toCertificate(c)).toBe(c);
    expect(isParsedCertificate(c)).toBe(true);
    expect(toCertificate(pki.root.der).fingerprint).toBe(c.fingerprint);
    expect(toCertificate(certificateToPem(c)).fingerprint).toBe(c.fingerprint);
  });

  it('toCertificate refuses a look-alike object (a forged publicKey cannot be slipped in)', () => {
    const c = parseCertificate(pki.root.der);
    const other = newKeyPair().publicKey;
    const lookAlikes: unknown[] = [
      { ...c },
      { ...c, publicKey: other },
      Object.create(c),
      structuredClone({ ...c, publicKey: undefined }),
      null,
      undefined,
      42,
      [],
    ];
    for (const l of lookAlikes) {
      expect(isParsedCertificate(l)).toBe(false);
      expectCode(thrown(() => toCertificate(l as SmkiCertificate)), 'ERR_INVALID_ARGUMENT');
    }
  });

  it('parseCertificate refuses what is neither text nor bytes', () => {
    for (const v of [null, undefined, 1, {}, [], new ArrayBuffer(8), Buffer.from('x').buffer]) {
      expectCode(thrown(() => parseCertificate(v as unknown as Uint8Array)), 'ERR_CERT_MALFORMED');
    }
  });

  it('accepts a Buffer and a Uint8Array view into a larger buffer', () => {
    const big = new Uint8Array(pki.root.der.length + 20);
    big.set(pki.root.der, 10);
    expect(parseCertificate(big.subarray(10, 10 + pki.root.der.length)).der).toEqual(pki.root.der);
    expect(parseCertificate(Buffer.from(pki.root.der)).fingerprint).toBe(parseCertificate(pki.root.der).fingerprint);
  });
});

describe('PEM armour (RFC 7468)', () => {
  const pki = buildHierarchy();
  const pem = certificateToPem(parseCertificate(pki.root.der));
  const body = pem.split('\n').slice(1, -2).join('\n');

  it('accepts CRLF line ends, text around the block, and no line breaks', () => {
    expect(parseCertificate(pem.replace(/\n/g, '\r\n')).der).toEqual(pki.root.der);
    expect(parseCertificate(`Subject: root\nIssuer: root\n${pem}\ntrailing`).der).toEqual(pki.root.der);
    expect(parseCertificate(`-----BEGIN CERTIFICATE-----${body.replace(/\n/g, '')}-----END CERTIFICATE-----`).der).toEqual(pki.root.der);
  });

  it.each([
    ['junk inside the armour', pem.replace(body.slice(0, 8), `${body.slice(0, 4)}*${body.slice(4, 8)}`)],
    ['a dash inside the armour', pem.replace(body.slice(0, 8), `${body.slice(0, 4)}-${body.slice(4, 8)}`)],
    ['an RFC 1421 header inside the armour', pem.replace('-----\n', '-----\nProc-Type: 4,ENCRYPTED\n\n')],
    ['a mismatched END label', pem.replace('END CERTIFICATE', 'END X509 CRL')],
    ['no END line', pem.split('-----END')[0] as string],
    ['two blocks', pem + pem],
    ['no block', 'just some text'],
    ['an empty string', ''],
    ['only another label', pem.replace(/CERTIFICATE/g, 'PUBLIC KEY')],
    ['an empty block', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'],
    ['bad base64 padding', pem.replace(body, `${body.slice(0, 5)}`)],
    ['lower-case label', pem.replace(/CERTIFICATE/g, 'certificate')],
  ])('%s → ERR_PEM_INVALID', (_label, text) => {
    expectCode(thrown(() => parseCertificate(text)), 'ERR_PEM_INVALID');
  });

  it('a bundle with one corrupt or unterminated block fails instead of dropping the block', () => {
    const dashed = pem.replace(body.slice(0, 8), `${body.slice(0, 4)}-${body.slice(4, 8)}`);
    expectCode(thrown(() => parseCertificateBundle(pem + dashed)), 'ERR_PEM_INVALID');
    expectCode(thrown(() => parseCertificateBundle(`-----BEGIN CERTIFICATE-----\nAAAA\n${pem}`)), 'ERR_PEM_INVALID');
    expectCode(thrown(() => parseCertificateBundle(`${pem}-----BEGIN CERTIFICATE-----\nAAAA\n`)), 'ERR_PEM_INVALID');
    // Blocks with other labels are skipped, whatever they hold.
    expect(parseCertificateBundle(`-----BEGIN PRIVATE KEY-----\nProc-Type: 4\n-----END PRIVATE KEY-----\n${pem}`)).toHaveLength(1);
  });

  it('valid armour around bytes that are not a certificate → ERR_CERT_MALFORMED', () => {
    expectCode(thrown(() => parseCertificate('-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n')), 'ERR_CERT_MALFORMED');
    expectCode(thrown(() => parseCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')), 'ERR_CERT_MALFORMED');
  });

  it('refuses PEM text over 1 MiB', () => {
    expectCode(thrown(() => parseCertificate(`${pem}${' '.repeat(1 << 20)}`)), 'ERR_PEM_INVALID');
  });
});

describe('malformed DER reports ERR_CERT_MALFORMED with the offset (docs/conventions.md "Inputs")', () => {
  const pki = buildHierarchy();
  it.each([
    ['empty', new Uint8Array(0)],
    ['not a SEQUENCE', new Uint8Array([0x31, 0x00])],
    ['trailing byte', new Uint8Array([...pki.root.der, 0x00])],
    ['truncated', pki.root.der.subarray(0, pki.root.der.length - 1)],
    ['indefinite length', new Uint8Array([0x30, 0x80, 0x00, 0x00])],
    ['over 32 KiB', new Uint8Array(40_000)],
  ])('%s', (_label, der) => {
    const e = expectCode(thrown(() => parseCertificate(der)), 'ERR_CERT_MALFORMED');
    expect(e.message).toMatch(/certificate/);
  });

  it('carries the offset of the problem', () => {
    // Cut inside the tbsCertificate: the outer SEQUENCE claims more bytes than there are.
    const e = expectCode(thrown(() => parseCertificate(pki.root.der.subarray(0, 40))), 'ERR_CERT_MALFORMED');
    expect(typeof (e.context as { offset?: number }).offset).toBe('number');
  });
});
