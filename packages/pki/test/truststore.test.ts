// TrustStore: look-ups by entity (docs/domain.md §2: one certificate per party, key usage and
// generation), by key identifier and by subject name (RFC 5280 §4.2.1.1, §4.2.1.2, §6.1 path
// building), by issuer and serial (RFC 5280 §4.1.2.2, §5.3); directory loading that fails closed
// (docs/conventions.md "Errors", "Inputs").
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmkiError, type SmkiErrorCode } from '@smki/core';
import { certificateToPem, parseCertificate } from '../src/parse.js';
import { TrustStore } from '../src/truststore.js';
import type { SmkiCertificate } from '../src/types.js';
import {
  buildCertificate,
  buildDeviceCertificate,
  buildHierarchy,
  buildOrganisationCertificate,
  akiExt,
  bcExt,
  keyId,
  kuExt,
  newKeyPair,
  OIDS,
  policiesExt,
  skiExt,
} from './_x509-builder.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

function expectCode(e: unknown, code: SmkiErrorCode): SmkiError {
  expect(e).toBeInstanceOf(SmkiError);
  expect((e as SmkiError).code).toBe(code);
  return e as SmkiError;
}

const utc = (y: number, m = 1, d = 1): Date => new Date(Date.UTC(y, m - 1, d));
const SUPPLIER = '90B3D51F30010000';
const NETWORK = '90B3D51F30020000';
const DEVICE = '00DB1234567890A0';

const pki = buildHierarchy(utc(2020));
const root = parseCertificate(pki.root.der);
const oca = parseCertificate(pki.oca.der);
const dca = parseCertificate(pki.dca.der);

// Three generations of the supplier's DS certificate, added out of order; one KA; the same EUI
// under another role; a decimal-role ('2') generation.
const supplierDs2024 = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'digitalSignature', notBefore: utc(2024) }));
const supplierDs2026 = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'digitalSignature', notBefore: utc(2026) }));
const supplierDs2025 = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '2', keyUsage: 'digitalSignature', notBefore: utc(2025) }));
const supplierKa = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'keyAgreement', notBefore: utc(2024) }));
const sameEuiOtherRole = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '03', keyUsage: 'digitalSignature', notBefore: utc(2024) }));
const networkDs = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'digitalSignature', notBefore: utc(2024) }));
const deviceKa = parseCertificate(buildDeviceCertificate({ issuer: pki.dca, eui: DEVICE, keyUsage: 'keyAgreement', notBefore: utc(2023) }));
const deviceDs = parseCertificate(buildDeviceCertificate({ issuer: pki.dca, eui: DEVICE, keyUsage: 'digitalSignature', notBefore: utc(2023) }));

const everything: SmkiCertificate[] = [root, oca, dca, supplierDs2024, supplierKa, supplierDs2026, supplierDs2025, sameEuiOtherRole, networkDs, deviceKa, deviceDs];

describe('TrustStore: add, addAll, get, size, iteration', () => {
  it('parses once and is idempotent by fingerprint, whatever the input form', () => {
    const store = new TrustStore();
    const a = store.add(pki.root.der);
    expect(a.fingerprint).toBe(root.fingerprint);
    expect(store.add(certificateToPem(root))).toBe(a);
    expect(store.add(root)).toBe(a);
    expect(store.add(a)).toBe(a);
    expect(store.size).toBe(1);
  });

  it('returns the parsed view it was given (no second parse)', () => {
    const store = new TrustStore();
    expect(store.add(oca)).toBe(oca);
  });

  it('refuses a look-alike object that parseCertificate did not make', () => {
    const store = new TrustStore();
    const fake = { ...root, fingerprint: 'AA'.repeat(32) };
    expectCode(thrown(() => store.add(fake as SmkiCertificate)), 'ERR_INVALID_ARGUMENT');
    expectCode(thrown(() => store.add(42 as unknown as string)), 'ERR_INVALID_ARGUMENT');
    expect(store.size).toBe(0);
  });

  it('refuses garbage with the parse error and stays unchanged', () => {
    const store = new TrustStore([root]);
    expectCode(thrown(() => store.add(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))), 'ERR_CERT_MALFORMED');
    expectCode(thrown(() => store.add('-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n')), 'ERR_PEM_INVALID');
    expect(store.size).toBe(1);
  });

  it('addAll is all or none and returns the stored views in input order', () => {
    const store = new TrustStore([root]);
    expectCode(thrown(() => store.addAll([oca.der, new Uint8Array([1, 2, 3]), dca.der])), 'ERR_CERT_MALFORMED');
    expect(store.size).toBe(1);
    const out = store.addAll([oca.der, root.der, dca, oca]);
    expect(out.map((c) => c.fingerprint)).toEqual([oca.fingerprint, root.fingerprint, dca.fingerprint, oca.fingerprint]);
    expect(out[1]).toBe(store.get(root.fingerprint));
    expect(Object.isFrozen(out)).toBe(true);
    expect(store.size).toBe(3);
  });

  it('addAll refuses a non-iterable and a bare string', () => {
    const store = new TrustStore();
    expectCode(thrown(() => store.addAll(null as unknown as [])), 'ERR_INVALID_ARGUMENT');
    expectCode(thrown(() => store.addAll(certificateToPem(root) as unknown as [])), 'ERR_INVALID_ARGUMENT');
    expectCode(thrown(() => store.addAll({} as unknown as [])), 'ERR_INVALID_ARGUMENT');
  });

  it('get and has take the fingerprint in either case; malformed hex is an error', () => {
    const store = new TrustStore(everything);
    expect(store.get(networkDs.fingerprint)).toBe(networkDs);
    expect(store.get(networkDs.fingerprint.toLowerCase())).toBe(networkDs);
    expect(store.has(deviceKa.fingerprint.toLowerCase())).toBe(true);
    expect(store.get('00'.repeat(32))).toBeUndefined();
    expect(store.has('00'.repeat(32))).toBe(false);
    expectCode(thrown(() => store.get('xyz')), 'ERR_HEX_INVALID');
    expectCode(thrown(() => store.get(undefined as unknown as string)), 'ERR_HEX_INVALID');
  });

  it('iterates in insertion order', () => {
    const store = new TrustStore(everything);
    expect(store.size).toBe(everything.length);
    expect([...store]).toEqual(everything);
    expect([...store.values()]).toEqual(everything);
  });
});

describe('TrustStore.findByEntity (docs/domain.md §2: generations per party, role and key usage)', () => {
  const store = new TrustStore(everything);

  it('returns every generation, newest notBefore first, whatever the insertion order', () => {
    const found = store.findByEntity(SUPPLIER, 2, 'digitalSignature');
    expect(found).toEqual([supplierDs2026, supplierDs2025, supplierDs2024]);
    const reversed = new TrustStore([...everything].reverse());
    expect(reversed.findByEntity(SUPPLIER, 2, 'digitalSignature')).toEqual(found);
  });

  it('keeps key usages and roles apart', () => {
    expect(store.findByEntity(SUPPLIER, 2, 'keyAgreement')).toEqual([supplierKa]);
    expect(store.findByEntity(SUPPLIER, 3, 'digitalSignature')).toEqual([sameEuiOtherRole]);
    expect(store.findByEntity(SUPPLIER, 3, 'keyAgreement')).toEqual([]);
    expect(store.findByEntity(NETWORK, 3, 'digitalSignature')).toEqual([networkDs]);
    expect(store.findByEntity(NETWORK, 2, 'digitalSignature')).toEqual([]);
  });

  it('indexes a decimal role OU under its role (lenient spelling)', () => {
    expect(supplierDs2025.details.roleSpelling).toBe('lenient');
    expect(store.findByEntity(SUPPLIER, 2, 'digitalSignature')).toContain(supplierDs2025);
  });

  it.each([
    ['compact upper', '90B3D51F30010000'],
    ['compact lower', '90b3d51f30010000'],
    ['hyphens', '90-B3-D5-1F-30-01-00-00'],
    ['colons lower', '90:b3:d5:1f:30:01:00:00'],
    ['spaces', '90 B3 D5 1F 30 01 00 00'],
  ])('accepts the EUI-64 spelled %s', (_label, spelling) => {
    expect(store.findByEntity(spelling, 2, 'digitalSignature')).toHaveLength(3);
  });

  it('refuses a malformed EUI-64, role or key usage', () => {
    expectCode(thrown(() => store.findByEntity('90B3D51F3001000', 2, 'digitalSignature')), 'ERR_EUI64_INVALID');
    expectCode(thrown(() => store.findByEntity('90-B3:D5-1F-30-01-00-00', 2, 'digitalSignature')), 'ERR_EUI64_INVALID');
    expectCode(thrown(() => store.findByEntity(SUPPLIER, 2.5, 'digitalSignature')), 'ERR_INVALID_ARGUMENT');
    expectCode(thrown(() => store.findByEntity(SUPPLIER, '2' as unknown as number, 'digitalSignature')), 'ERR_INVALID_ARGUMENT');
    expectCode(thrown(() => store.findByEntity(SUPPLIER, 2, 'keyCertSign' as 'digitalSignature')), 'ERR_INVALID_ARGUMENT');
  });

  it('returns frozen arrays that later additions do not change', () => {
    const s = new TrustStore([supplierDs2024]);
    const before = s.findByEntity(SUPPLIER, 2, 'digitalSignature');
    expect(Object.isFrozen(before)).toBe(true);
    expect(() => (before as SmkiCertificate[]).push(networkDs)).toThrow(TypeError);
    s.add(supplierDs2026);
    expect(before).toEqual([supplierDs2024]);
    expect(s.findByEntity(SUPPLIER, 2, 'digitalSignature')).toEqual([supplierDs2026, supplierDs2024]);
    expect(Object.isFrozen(s.findByEntity(NETWORK, 3, 'keyAgreement'))).toBe(true);
  });

  it('does not index CA certificates by entity', () => {
    expect(store.findByEntity(SUPPLIER, 7, 'digitalSignature')).toEqual([]);
  });
});

describe('TrustStore.findByDevice (docs/domain.md §2 device certificates: hwSerialNum)', () => {
  const store = new TrustStore(everything);
  it('finds the device certificates by EUI-64 and key usage', () => {
    expect(store.findByDevice(DEVICE, 'keyAgreement')).toEqual([deviceKa]);
    expect(store.findByDevice('00-db-12-34-56-78-90-a0', 'digitalSignature')).toEqual([deviceDs]);
    expect(store.findByDevice(SUPPLIER, 'digitalSignature')).toEqual([]);
    // A device is not an organisation party.
    expect(store.findByEntity(DEVICE, 0, 'keyAgreement')).toEqual([]);
  });
  it('refuses a malformed EUI-64 or key usage', () => {
    expectCode(thrown(() => store.findByDevice('nope', 'keyAgreement')), 'ERR_EUI64_INVALID');
    expectCode(thrown(() => store.findByDevice(DEVICE, 'both' as 'keyAgreement')), 'ERR_INVALID_ARGUMENT');
  });
});

describe('TrustStore.findBySubjectKeyId (RFC 5280 §4.2.1.2)', () => {
  it('finds by SKI in either case and returns every certificate sharing it', () => {
    const key = newKeyPair();
    const a = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2024), publicKey: key.publicKey }));
    const b = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2025), publicKey: key.publicKey }));
    expect(a.subjectKeyId).toBe(b.subjectKeyId);
    const store = new TrustStore([...everything, a, b]);
    const ski = a.subjectKeyId as string;
    expect(store.findBySubjectKeyId(ski)).toEqual([a, b]);
    expect(store.findBySubjectKeyId(ski.toLowerCase())).toEqual([a, b]);
    expect(store.findBySubjectKeyId(oca.subjectKeyId as string)).toEqual([oca]);
    expect(store.findBySubjectKeyId(supplierKa.authorityKeyId as string)).toEqual([oca]);
    expect(store.findBySubjectKeyId('0011223344556677')).toEqual([]);
    expect(Object.isFrozen(store.findBySubjectKeyId('0011223344556677'))).toBe(true);
    expect(Object.isFrozen(store.findBySubjectKeyId(ski))).toBe(true);
  });

  it('does not index a certificate without SKI by key id, but finds it otherwise', () => {
    const noSki = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2024), ski: false }));
    expect(noSki.subjectKeyId).toBeUndefined();
    const store = new TrustStore([noSki]);
    expect(store.findByEntity(NETWORK, 3, 'keyAgreement')).toEqual([noSki]);
    expect(store.findBySubjectKeyId('')).toEqual([]);
  });

  it('refuses malformed hex', () => {
    const store = new TrustStore(everything);
    expectCode(thrown(() => store.findBySubjectKeyId('ABC')), 'ERR_HEX_INVALID');
    expectCode(thrown(() => store.findBySubjectKeyId('0x1122')), 'ERR_HEX_INVALID');
    expectCode(thrown(() => store.findBySubjectKeyId(7 as unknown as string)), 'ERR_HEX_INVALID');
  });
});

describe('TrustStore.findByIssuerAndSerial (RFC 5280 §4.1.2.2, §5.3)', () => {
  const store = new TrustStore(everything);

  it('finds by issuer DER bytes, DER hex in either case, or DistinguishedName', () => {
    const c = supplierKa;
    expect(store.findByIssuerAndSerial(c.issuer.der, c.serialNumber)).toBe(c);
    expect(store.findByIssuerAndSerial(Buffer.from(c.issuer.der).toString('hex'), c.serialNumber.toLowerCase())).toBe(c);
    expect(store.findByIssuerAndSerial(Buffer.from(c.issuer.der).toString('hex').toUpperCase(), c.serialNumber)).toBe(c);
    expect(store.findByIssuerAndSerial(c.issuer, c.serialNumber)).toBe(c);
    expect(store.findByIssuerAndSerial(oca.subject, c.serialNumber)).toBe(c);
  });

  it('does not match another issuer or serial', () => {
    expect(store.findByIssuerAndSerial(dca.subject, supplierKa.serialNumber)).toBeUndefined();
    expect(store.findByIssuerAndSerial(oca.subject, '01')).toBeUndefined();
    expect(store.findByIssuerAndSerial(oca.subject, '')).toBeUndefined();
  });

  it('finds a positive serial spelled with or without its 00 sign octet', () => {
    const high = parseCertificate(
      buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2024), serial: Buffer.from('00F1020304050607080910111213141516', 'hex') }),
    );
    const low = parseCertificate(
      buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2024), serial: Buffer.from('0102', 'hex') }),
    );
    const s = new TrustStore([high, low]);
    expect(high.serialNumber).toBe('00F1020304050607080910111213141516');
    expect(s.findByIssuerAndSerial(oca.subject, '00F1020304050607080910111213141516')).toBe(high);
    expect(s.findByIssuerAndSerial(oca.subject, 'f1020304050607080910111213141516')).toBe(high);
    expect(s.findByIssuerAndSerial(oca.subject, '0000F1020304050607080910111213141516')).toBe(high);
    expect(s.findByIssuerAndSerial(oca.subject, '0102')).toBe(low);
    expect(s.findByIssuerAndSerial(oca.subject, '000102')).toBe(low);
    expect(s.findByIssuerAndSerial(oca.subject, '02')).toBeUndefined();
  });

  it('refuses malformed arguments', () => {
    expectCode(thrown(() => store.findByIssuerAndSerial(oca.subject, '0G')), 'ERR_HEX_INVALID');
    expectCode(thrown(() => store.findByIssuerAndSerial('30 0', '01')), 'ERR_HEX_INVALID');
    expectCode(thrown(() => store.findByIssuerAndSerial(42 as unknown as string, '01')), 'ERR_INVALID_ARGUMENT');
    expectCode(thrown(() => store.findByIssuerAndSerial({ der: 'x' } as unknown as Uint8Array, '01')), 'ERR_INVALID_ARGUMENT');
  });

  it('refuses a different certificate with the same issuer and serial (one of them is not genuine)', () => {
    const serial = Buffer.from('11223344556677889900112233445566', 'hex');
    const first = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2024), serial }));
    const twin = parseCertificate(buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'keyAgreement', notBefore: utc(2024), serial }));
    const s = new TrustStore([first]);
    expectCode(thrown(() => s.add(twin)), 'ERR_TRUST_STORE_SERIAL_CONFLICT');
    expect(s.size).toBe(1);
    expect(s.findByIssuerAndSerial(oca.subject, '11223344556677889900112233445566')).toBe(first);
    expect(s.findByEntity(SUPPLIER, 2, 'keyAgreement')).toEqual([]);
    // Within one batch too, and the batch leaves the store unchanged.
    const t = new TrustStore();
    expectCode(thrown(() => t.addAll([root, first, twin])), 'ERR_TRUST_STORE_SERIAL_CONFLICT');
    expect(t.size).toBe(0);
    // The same serial under another issuer is no conflict.
    const other = parseCertificate(buildOrganisationCertificate({ issuer: pki.dca, eui: SUPPLIER, ou: '02', keyUsage: 'keyAgreement', notBefore: utc(2024), serial }));
    expect(s.add(other)).toBe(other);
  });
});

describe('TrustStore.findBySubjectName, anchors, intermediates (RFC 5280 §6.1 path building)', () => {
  it('finds candidate issuers by name DER', () => {
    const store = new TrustStore(everything);
    expect(store.findBySubjectName(oca.issuer.der)).toEqual([root]);
    expect(store.findBySubjectName(supplierKa.issuer)).toEqual([oca]);
    expect(store.findBySubjectName(Buffer.from(deviceKa.issuer.der).toString('hex').toLowerCase())).toEqual([dca]);
    expect(store.findBySubjectName(new Uint8Array([0x30, 0x00]))).toEqual([deviceKa, deviceDs]);
    expect(store.findBySubjectName('3003310130')).toEqual([]);
    expectCode(thrown(() => store.findBySubjectName('zz')), 'ERR_HEX_INVALID');
  });

  it('returns every certificate with a name (a re-keyed CA) and separates roots from issuing CAs', () => {
    // A second root with the same name and a new key (a root rollover).
    const key = newKeyPair();
    const root2 = parseCertificate(
      buildCertificate({
        issuer: pki.root.name,
        subject: pki.root.name,
        notBefore: utc(2030),
        notAfter: utc(2060),
        publicKey: key.publicKey,
        signingKey: key.privateKey,
        extensions: [skiExt(keyId(key.publicKey)), kuExt(['keyCertSign', 'cRLSign']), bcExt(true), policiesExt([OIDS.orgPolicy])],
      }),
    );
    // A cross-certificate: root2's key under root's signature (an issuing CA by kind).
    const cross = parseCertificate(
      buildCertificate({
        issuer: pki.oca.name,
        subject: pki.root.name,
        notBefore: utc(2030),
        notAfter: utc(2040),
        publicKey: key.publicKey,
        signingKey: pki.oca.key.privateKey,
        extensions: [skiExt(keyId(key.publicKey)), akiExt(keyId(pki.oca.key.publicKey)), kuExt(['keyCertSign', 'cRLSign']), bcExt(true, 0), policiesExt([OIDS.orgPolicy])],
      }),
    );
    expect(root2.kind).toBe('root');
    expect(cross.kind).toBe('issuingCa');
    const store = new TrustStore([...everything, root2, cross]);
    expect(store.findBySubjectName(pki.root.name)).toEqual([root, root2, cross]);
    expect(store.findBySubjectKeyId(root2.subjectKeyId as string)).toEqual([root2, cross]);
    expect(store.anchors()).toEqual([root, root2]);
    expect(store.intermediates()).toEqual([oca, dca, cross]);
    expect(Object.isFrozen(store.anchors())).toBe(true);
    expect(Object.isFrozen(store.intermediates())).toBe(true);
    expect(new TrustStore().anchors()).toEqual([]);
  });
});

describe('TrustStore.loadDirectory (docs/conventions.md "Inputs": bounded; "Errors": fail closed)', () => {
  let dir: string;
  const mk = (...parts: string[]): string => join(dir, ...parts);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'smki-truststore-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function fixture(name: string, files: Record<string, string | Uint8Array>): string {
    const d = mk(name);
    mkdirSync(d, { recursive: true });
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(join(d, file, '..'), { recursive: true });
      writeFileSync(join(d, file), content);
    }
    return d;
  }

  const pem = (c: SmkiCertificate): string => certificateToPem(c);
  const good = (): Record<string, string | Uint8Array> => ({
    'root.pem': pem(root),
    'cas.pem': `# the two issuing CAs\n${pem(oca)}\nsome text between blocks\n${pem(dca)}`,
    'supplier.der': supplierKa.der,
    'network.CRT': pem(networkDs),
    'device.cer': deviceKa.der,
    'device-pem.cer': pem(deviceDs),
    'README.txt': 'not a certificate',
    'notes.md': '# ignored',
    'nested/child.pem': pem(supplierDs2024),
  });

  it('reads .pem/.crt/.cer/.der (any case), PEM bundles and DER; ignores other files and subdirectories', async () => {
    const d = fixture('good', good());
    const { store, certificates, files, errors } = await TrustStore.loadDirectory(d);
    expect(errors).toEqual([]);
    expect(files.map((f) => f.slice(d.length + 1)).sort()).toEqual(['cas.pem', 'device-pem.cer', 'device.cer', 'network.CRT', 'root.pem', 'supplier.der']);
    expect(store.size).toBe(7);
    expect(certificates).toHaveLength(7);
    expect(store.anchors()).toEqual([root]);
    expect(store.intermediates().map((c) => c.fingerprint)).toEqual([oca.fingerprint, dca.fingerprint]);
    expect(store.findByIssuerAndSerial(supplierKa.issuer.der, supplierKa.serialNumber)?.fingerprint).toBe(supplierKa.fingerprint);
    expect(store.findByEntity(SUPPLIER, 2, 'digitalSignature')).toEqual([]); // nested/ not read
    expect(Object.isFrozen(certificates) && Object.isFrozen(files) && Object.isFrozen(errors)).toBe(true);
  });

  it('descends into subdirectories only when asked, and survives a symbolic-link loop', async () => {
    const d = fixture('recursive', good());
    symlinkSync(d, join(d, 'nested', 'loop'));
    const { store, errors } = await TrustStore.loadDirectory(d, { recursive: true });
    expect(errors).toEqual([]);
    expect(store.size).toBe(8);
    expect(store.findByEntity(SUPPLIER, 2, 'digitalSignature').map((c) => c.fingerprint)).toEqual([supplierDs2024.fingerprint]);
  });

  it('fails closed by default: one bad file throws ERR_TRUST_STORE_LOAD and adds nothing', async () => {
    const d = fixture('bad-throw', { ...good(), 'zz-junk.pem': '-----BEGIN CERTIFICATE-----\nMII$$\n-----END CERTIFICATE-----\n' });
    const store = new TrustStore([networkDs]);
    const e = expectCode(await rejected(store.loadDirectory(d)), 'ERR_TRUST_STORE_LOAD');
    expect((e.context as { path: string }).path).toBe(join(d, 'zz-junk.pem'));
    expect(e.cause).toBeInstanceOf(SmkiError);
    expect((e.cause as SmkiError).code).toBe('ERR_PEM_INVALID');
    expect(store.size).toBe(1);
    expectCode(await rejected(TrustStore.loadDirectory(d, { onError: 'throw' })), 'ERR_TRUST_STORE_LOAD');
  });

  it("collects per-file errors with onError: 'collect' and loads the rest", async () => {
    const big = new Uint8Array(4096).fill(0x30);
    const d = fixture('bad-collect', {
      ...good(),
      'a-truncated.der': supplierKa.der.subarray(0, 100),
      'b-empty.crt': '',
      'c-key-only.pem': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      'd-mismatch.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n',
      'e-big.der': big,
      'f-text.cer': 'hello',
    });
    const { store, errors, files } = await TrustStore.loadDirectory(d, { onError: 'collect', maxFileBytes: 2048 });
    expect(store.size).toBe(7);
    expect(files).toHaveLength(6);
    const byName = Object.fromEntries(errors.map((x) => [x.path.slice(d.length + 1), x.error]));
    expect(Object.keys(byName).sort()).toEqual(['a-truncated.der', 'b-empty.crt', 'c-key-only.pem', 'd-mismatch.pem', 'e-big.der', 'f-text.cer']);
    for (const [file, error] of Object.entries(byName)) {
      expectCode(error, 'ERR_TRUST_STORE_LOAD');
      expect((error.context as { path: string }).path).toBe(join(d, file));
    }
    expect((byName['a-truncated.der']?.cause as SmkiError).code).toBe('ERR_CERT_MALFORMED');
    expect((byName['d-mismatch.pem']?.cause as SmkiError).code).toBe('ERR_PEM_INVALID');
    expect((byName['e-big.der']?.context as { detail: string }).detail).toMatch(/limit/);
  });

  it('refuses a file over maxFileBytes without parsing it', async () => {
    const d = fixture('too-big', { 'root.pem': pem(root) });
    expectCode(await rejected(TrustStore.loadDirectory(d, { maxFileBytes: 100 })), 'ERR_TRUST_STORE_LOAD');
    const { store } = await TrustStore.loadDirectory(d, { maxFileBytes: pem(root).length });
    expect(store.size).toBe(1);
  });

  it('refuses more than maxFiles certificate files', async () => {
    const d = fixture('many', { 'a.pem': pem(root), 'b.pem': pem(oca), 'c.pem': pem(dca) });
    expectCode(await rejected(TrustStore.loadDirectory(d, { maxFiles: 2 })), 'ERR_TRUST_STORE_LOAD');
    expectCode(await rejected(TrustStore.loadDirectory(d, { maxFiles: 2, onError: 'collect' })), 'ERR_TRUST_STORE_LOAD');
    expect((await TrustStore.loadDirectory(d, { maxFiles: 3 })).store.size).toBe(3);
  });

  it('throws ERR_TRUST_STORE_LOAD for a directory that cannot be read, in either mode', async () => {
    const missing = mk('does-not-exist');
    const e = expectCode(await rejected(TrustStore.loadDirectory(missing)), 'ERR_TRUST_STORE_LOAD');
    expect((e.context as { path: string }).path).toBe(missing);
    expectCode(await rejected(TrustStore.loadDirectory(missing, { onError: 'collect' })), 'ERR_TRUST_STORE_LOAD');
  });

  it('refuses bad options', async () => {
    const d = fixture('opts', { 'root.pem': pem(root) });
    expectCode(await rejected(TrustStore.loadDirectory(d, { onError: 'ignore' as 'collect' })), 'ERR_INVALID_ARGUMENT');
    expectCode(await rejected(TrustStore.loadDirectory(d, { maxFileBytes: 0 })), 'ERR_INVALID_ARGUMENT');
    expectCode(await rejected(TrustStore.loadDirectory(d, { maxFiles: -1 })), 'ERR_INVALID_ARGUMENT');
    expectCode(await rejected(TrustStore.loadDirectory('')), 'ERR_INVALID_ARGUMENT');
  });

  it('is idempotent and reports a serial conflict per file (collect) or for the call (throw)', async () => {
    const serial = Buffer.from('22223344556677889900112233445566', 'hex');
    const first = buildOrganisationCertificate({ issuer: pki.oca, eui: NETWORK, ou: '03', keyUsage: 'keyAgreement', notBefore: utc(2024), serial });
    const twin = buildOrganisationCertificate({ issuer: pki.oca, eui: SUPPLIER, ou: '02', keyUsage: 'keyAgreement', notBefore: utc(2024), serial });
    const d = fixture('conflict', { 'a.der': first, 'b.der': twin, 'c.pem': pem(root) });
    const store = new TrustStore([root]);
    const r = await store.loadDirectory(d, { onError: 'collect' });
    expect(store.size).toBe(2);
    expect(r.errors.map((x) => [x.path.slice(d.length + 1), x.error.code, (x.error.cause as SmkiError).code])).toEqual([
      ['b.der', 'ERR_TRUST_STORE_LOAD', 'ERR_TRUST_STORE_SERIAL_CONFLICT'],
    ]);
    expect(r.files.map((f) => f.slice(d.length + 1))).toEqual(['a.der', 'c.pem']);
    expect(r.certificates.map((c) => c.fingerprint)).toEqual([parseCertificate(first).fingerprint, root.fingerprint]);
    expect(r.certificates[1]).toBe(store.get(root.fingerprint));
    const again = new TrustStore();
    const e = expectCode(await rejected(again.loadDirectory(d)), 'ERR_TRUST_STORE_LOAD');
    expect((e.context as { path: string }).path).toBe(join(d, 'b.der'));
    expect((e.cause as SmkiError).code).toBe('ERR_TRUST_STORE_SERIAL_CONFLICT');
    expect(again.size).toBe(0);
    // A conflict with a certificate already in the store counts too.
    const d2 = fixture('conflict-with-store', { 'twin.der': twin });
    const holder = new TrustStore([first]);
    expectCode(await rejected(holder.loadDirectory(d2)), 'ERR_TRUST_STORE_LOAD');
    expect((await holder.loadDirectory(d2, { onError: 'collect' })).errors).toHaveLength(1);
    expect(holder.size).toBe(1);
  });

  it('reports a dangling symbolic link as a bad file', async () => {
    const d = fixture('dangling', { 'root.pem': pem(root) });
    symlinkSync(join(d, 'missing.pem'), join(d, 'dangling.pem'));
    expectCode(await rejected(TrustStore.loadDirectory(d)), 'ERR_TRUST_STORE_LOAD');
    const { store, errors } = await TrustStore.loadDirectory(d, { onError: 'collect' });
    expect(errors.map((x) => x.path)).toEqual([join(d, 'dangling.pem')]);
    expect(store.size).toBe(1);
  });

  it('skips special files (a FIFO named .pem) instead of blocking on them', async () => {
    const d = fixture('fifo', { 'root.pem': pem(root) });
    execFileSync('mkfifo', [join(d, 'pipe.pem')]);
    symlinkSync(join(d, 'pipe.pem'), join(d, 'link-to-pipe.pem'));
    const { store, errors, files } = await TrustStore.loadDirectory(d);
    expect(errors).toEqual([]);
    expect(files.map((f) => f.slice(d.length + 1))).toEqual(['root.pem']);
    expect(store.size).toBe(1);
  });
});
