// RFC 5280 §5 (CRL profile): §5.1 fields, §5.2.1 authorityKeyIdentifier, §5.2.3 cRLNumber,
// §5.2.4 deltaCRLIndicator, §5.2.5 issuingDistributionPoint, §5.3.1 reasonCode; docs/domain.md §2
// (SMKI CRL/ARL formats are not public: plain RFC 5280 v2 CRLs). OpenSSL 3.0 is a second opinion.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { createKeySigner, equalBytes, isSmkiError, p1363ToDer, SmkiError, toHex, type Signer } from '@smki/core';
import { crlToPem, DEFAULT_CRL_VALIDITY_HOURS, isParsedCrl, issueCrl, MAX_CRL_BYTES, parseCrl, type SmkiCrl } from '../src/crl.js';
import { createHierarchy, issueOrganisationCertificate, type SmkiHierarchy } from '../src/issue.js';
import { certificateToPem } from '../src/parse.js';
import type { SmkiCertificate } from '../src/types.js';
import { bitString, bool, ctx, extension, int, octets, oid, seq, tlv, time } from './_x509-builder.js';

const T0 = new Date('2024-01-01T00:00:00Z');
const THIS_UPDATE = new Date('2024-06-01T00:00:00Z');
const NEXT_UPDATE = new Date('2024-06-08T00:00:00Z');
const ECDSA = '1.2.840.10045.4.3.2';

let h: SmkiHierarchy;
let leaf: SmkiCertificate;
let leaf2: SmkiCertificate;
let dir: string;

function newKey(): Signer {
  return createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
}

async function org(entityId: string): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({ issuer: h.organisationCa, role: 2, entityId, keyUsage: 'digitalSignature', publicKey: newKey().publicKey, notBefore: T0 });
}

function expectCode(fn: () => unknown, code: string): SmkiError {
  try {
    fn();
  } catch (e) {
    expect(isSmkiError(e), String(e)).toBe(true);
    expect((e as SmkiError).code).toBe(code);
    return e as SmkiError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

async function expectCodeAsync(p: Promise<unknown>, code: string): Promise<SmkiError> {
  try {
    await p;
  } catch (e) {
    expect(isSmkiError(e), String(e)).toBe(true);
    expect((e as SmkiError).code).toBe(code);
    return e as SmkiError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** A hand-made CRL: tbsCertList fields given as DER parts, signed with `signer`. */
async function handCrl(parts: Uint8Array[], signer: Signer, alg: Uint8Array = seq(oid(ECDSA))): Promise<Uint8Array> {
  const tbs = seq(...parts);
  const sig = p1363ToDer(await signer.sign(tbs));
  return seq(tbs, alg, bitString(sig));
}

/** The usual tbsCertList head: v2, ecdsa-with-SHA256, the OCA name, thisUpdate, nextUpdate. */
function head(): Uint8Array[] {
  return [int(1), seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE), time(NEXT_UPDATE)];
}

function openssl(args: string[]): { status: number; out: string } {
  const r = spawnSync('/usr/bin/openssl', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  h = await createHierarchy({ notBefore: T0 });
  leaf = await org('90B3D51F30010000');
  leaf2 = await org('90B3D51F30020000');
  dir = mkdtempSync(join(tmpdir(), 'smki-crl-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('issueCrl (RFC 5280 §5.1, §5.2)', () => {
  it('writes a v2 CRL with the issuer name byte for byte, AKI = issuer SKI, cRLNumber and UTCTime', async () => {
    const crl = await issueCrl({
      issuer: h.organisationCa,
      revoked: [
        { serialNumber: leaf, revocationDate: new Date('2024-05-30T12:00:00.750Z'), reason: 'keyCompromise' },
        { serialNumber: leaf2.serialNumber.toLowerCase(), revocationDate: new Date('2024-05-31T00:00:00Z') },
      ],
      thisUpdate: THIS_UPDATE,
      nextUpdate: NEXT_UPDATE,
      crlNumber: 7n,
    });
    expect(isParsedCrl(crl)).toBe(true);
    expect(Object.isFrozen(crl)).toBe(true);
    // RFC 5280 5.1.2.1: v2.
    expect(crl.details.version).toBe(1);
    // RFC 5280 5.1.2.3 and 7.1: the issuer name is the issuer certificate's subject, exactly.
    expect(equalBytes(crl.issuer.der, h.organisationCa.certificate.subject.der)).toBe(true);
    expect(crl.issuer.text).toBe('OU=07, CN=Z1');
    // RFC 5280 5.1.1.2 / RFC 5758 3.2: ecdsa-with-SHA256, parameters absent, inside and out.
    expect(crl.signatureAlgorithm).toBe(ECDSA);
    expect(crl.details.tbsSignatureAlgorithm).toBe(ECDSA);
    expect(crl.details.signatureAlgorithmParams).toBe('absent');
    expect(crl.details.signatureAlgorithmsMatch).toBe(true);
    // RFC 5280 5.1.2.4/5: UTCTime before 2050.
    expect(crl.details.thisUpdateTag).toBe(0x17);
    expect(crl.details.nextUpdateTag).toBe(0x17);
    expect(crl.thisUpdate).toEqual(THIS_UPDATE);
    expect(crl.nextUpdate).toEqual(NEXT_UPDATE);
    // RFC 5280 5.2.1, 5.2.3.
    expect(crl.authorityKeyId).toBe(h.organisationCa.certificate.subjectKeyId);
    expect(crl.crlNumber).toBe(7n);
    expect(crl.scope).toBe('all');
    expect(crl.unknownCriticalExtensions).toEqual([]);
    expect(crl.extensions.map((e) => [e.oid, e.critical])).toEqual([
      ['2.5.29.35', false],
      ['2.5.29.20', false],
    ]);
    // Entries: serial lookup in O(1) by the certificate's own spelling; fractions dropped.
    expect(crl.revoked.size).toBe(2);
    const e1 = crl.revoked.get(leaf.serialNumber);
    expect(e1?.revocationDate).toEqual(new Date('2024-05-30T12:00:00Z'));
    expect(e1?.reason).toBe('keyCompromise');
    expect(crl.revoked.get(leaf2.serialNumber)?.reason).toBeUndefined();
    expect(crl.revoked.has(leaf2.serialNumber.toLowerCase())).toBe(true);
    expect(crl.revoked.get('00')).toBeUndefined();
  });

  it('cross-checks with @peculiar/asn1-x509 CertificateList', async () => {
    const crl = await issueCrl({ issuer: h.root, revoked: [{ serialNumber: h.organisationCa.certificate, revocationDate: THIS_UPDATE, reason: 'cACompromise' }], thisUpdate: THIS_UPDATE, crlNumber: 3n, kind: 'arl' });
    const asn = AsnConvert.parse(crl.der.slice().buffer, CertificateList);
    expect(asn.tbsCertList.version).toBe(1);
    expect(asn.signatureAlgorithm.algorithm).toBe(ECDSA);
    expect(asn.signatureAlgorithm.parameters).toBeUndefined();
    expect(asn.tbsCertList.thisUpdate.getTime()).toEqual(THIS_UPDATE);
    expect(asn.tbsCertList.revokedCertificates?.length).toBe(1);
    expect(toHex(new Uint8Array(asn.tbsCertList.revokedCertificates?.[0]?.userCertificate ?? new ArrayBuffer(0)))).toBe(h.organisationCa.certificate.serialNumber);
    expect(asn.tbsCertList.crlExtensions?.map((e) => e.extnID)).toEqual(['2.5.29.35', '2.5.29.20', '2.5.29.28']);
    expect(asn.tbsCertList.crlExtensions?.[2]?.critical).toBe(true);
  });

  it('defaults: thisUpdate from now(), nextUpdate after the configured hours, no entries', async () => {
    const now = new Date('2024-03-01T10:20:30.999Z');
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, now: () => now });
    expect(crl.thisUpdate).toEqual(new Date('2024-03-01T10:20:30Z'));
    expect(crl.nextUpdate?.getTime()).toBe(crl.thisUpdate.getTime() + DEFAULT_CRL_VALIDITY_HOURS * 3_600_000);
    expect(crl.revoked.size).toBe(0);
    const week = await issueCrl({ issuer: h.organisationCa, crlNumber: 2n, thisUpdate: now, validityHours: 168 });
    expect(week.nextUpdate?.getTime()).toBe(week.thisUpdate.getTime() + 168 * 3_600_000);
  });

  it('marks an organisation CRL onlyContainsUserCerts and an ARL onlyContainsCACerts, critical (RFC 5280 5.2.5)', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl', thisUpdate: THIS_UPDATE });
    const arl = await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl', thisUpdate: THIS_UPDATE });
    expect(crl.scope).toBe('userCertificates');
    expect(arl.scope).toBe('caCertificates');
    expect(crl.extensions.find((e) => e.oid === '2.5.29.28')?.critical).toBe(true);
    expect(toHex(crl.extensions.find((e) => e.oid === '2.5.29.28')?.value ?? new Uint8Array())).toBe('30038101FF');
    expect(toHex(arl.extensions.find((e) => e.oid === '2.5.29.28')?.value ?? new Uint8Array())).toBe('30038201FF');
  });

  it('uses GeneralizedTime from 2050 (RFC 5280 5.1.2.4)', async () => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: new Date('2049-12-31T23:00:00Z'), validityHours: 2 });
    expect(crl.details.thisUpdateTag).toBe(0x17);
    expect(crl.details.nextUpdateTag).toBe(0x18);
    expect(crl.nextUpdate).toEqual(new Date('2050-01-01T01:00:00Z'));
  });

  it('writes no reasonCode for unspecified (RFC 5280 5.3.1) and normalises hex serials to DER content octets', async () => {
    const crl = await issueCrl({
      issuer: h.organisationCa,
      crlNumber: 1n,
      thisUpdate: THIS_UPDATE,
      revoked: [
        { serialNumber: '80ab', revocationDate: THIS_UPDATE, reason: 'unspecified' },
        { serialNumber: '000001', revocationDate: THIS_UPDATE, reason: 'superseded' },
      ],
    });
    expect(crl.revoked.get('0080AB')?.extensions).toEqual([]);
    expect(crl.revoked.get('0080AB')?.reason).toBeUndefined();
    expect(crl.revoked.get('01')?.reason).toBe('superseded');
  });

  it('carries a 20-octet cRLNumber as a bigint', async () => {
    const n = (1n << 159n) - 1n;
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: n, thisUpdate: THIS_UPDATE });
    expect(crl.crlNumber).toBe(n);
    expect(parseCrl(crl.der).crlNumber).toBe(n);
  });

  it('refuses bad requests', async () => {
    const base = { issuer: h.organisationCa, thisUpdate: THIS_UPDATE };
    await expectCodeAsync(issueCrl({ ...base, crlNumber: -1n }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n << 159n }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1 as unknown as bigint }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, nextUpdate: THIS_UPDATE }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, validityHours: 0 }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, thisUpdate: new Date(Number.NaN) }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, kind: 'delta' as 'crl' }), 'ERR_ISSUE_INVALID_REQUEST');
    // Duplicate serial, bad hex, a certificate from another issuer, out of the CRL's scope.
    await expectCodeAsync(
      issueCrl({ ...base, crlNumber: 1n, revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE }, { serialNumber: leaf.serialNumber, revocationDate: THIS_UPDATE }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, revoked: [{ serialNumber: 'xyz', revocationDate: THIS_UPDATE }] }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, revoked: [{ serialNumber: h.deviceCa.certificate, revocationDate: THIS_UPDATE }] }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectCodeAsync(
      issueCrl({ issuer: h.root, thisUpdate: THIS_UPDATE, crlNumber: 1n, kind: 'crl', revoked: [{ serialNumber: h.organisationCa.certificate, revocationDate: THIS_UPDATE }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
    await expectCodeAsync(
      issueCrl({ ...base, crlNumber: 1n, kind: 'arl', revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
    await expectCodeAsync(
      issueCrl({ ...base, crlNumber: 1n, revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE, reason: 'removeFromCRL' as 'keyCompromise' }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
    // A look-alike certificate as an entry.
    await expectCodeAsync(issueCrl({ ...base, crlNumber: 1n, revoked: [{ serialNumber: { ...leaf }, revocationDate: THIS_UPDATE }] }), 'ERR_ISSUE_INVALID_REQUEST');
  });

  it('holds thousands of entries with O(1) lookup, and refuses a CRL over MAX_CRL_BYTES', async () => {
    const serialOf = (i: number): string => (0x10000000000000000000000000000000n + BigInt(i)).toString(16).toUpperCase();
    const many = Array.from({ length: 1500 }, (_, i) => ({ serialNumber: serialOf(i), revocationDate: THIS_UPDATE, reason: 'superseded' as const }));
    const big = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: many });
    expect(big.der.length).toBeGreaterThan(64 * 1024);
    const start = performance.now();
    const again = parseCrl(big.der.slice());
    console.log(`parseCrl: ${big.der.length} bytes, ${again.revoked.size} entries in ${(performance.now() - start).toFixed(1)} ms`);
    expect(again.revoked.size).toBe(1500);
    expect(again.revoked.get(serialOf(1234))?.reason).toBe('superseded');
    const tooMany = Array.from({ length: 33_000 }, (_, i) => ({ serialNumber: serialOf(i), revocationDate: THIS_UPDATE }));
    await expectCodeAsync(issueCrl({ issuer: h.organisationCa, crlNumber: 2n, thisUpdate: THIS_UPDATE, revoked: tooMany }), 'ERR_ISSUE_INVALID_REQUEST');
  });

  it('refuses an issuer that is not a CA with cRLSign, and a signer that does not hold its key', async () => {
    const s = newKey();
    await expectCodeAsync(issueCrl({ issuer: { certificate: leaf, signer: s }, crlNumber: 1n }), 'ERR_ISSUE_ISSUER_NOT_CA');
    await expectCodeAsync(issueCrl({ issuer: { certificate: h.organisationCa.certificate, signer: s }, crlNumber: 1n }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    // A signer that advertises the CA's public key but signs with another key (a misconfigured HSM).
    const liar: Signer = { publicKey: h.organisationCa.signer.publicKey, sign: (m) => s.sign(m) };
    await expectCodeAsync(issueCrl({ issuer: { certificate: h.organisationCa.certificate, signer: liar }, crlNumber: 1n }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    const short: Signer = { publicKey: h.organisationCa.signer.publicKey, sign: async () => new Uint8Array(63) };
    await expectCodeAsync(issueCrl({ issuer: { certificate: h.organisationCa.certificate, signer: short }, crlNumber: 1n }), 'ERR_SIGNATURE_ENCODING');
  });
});

describe('parseCrl (RFC 5280 §5.1)', () => {
  let crl: SmkiCrl;
  beforeAll(async () => {
    crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 9n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE, reason: 'keyCompromise' }], kind: 'crl' });
  });

  it('accepts DER, PEM and its own views; owns its bytes', () => {
    const der = crl.der.slice();
    const fromDer = parseCrl(der);
    der.fill(0);
    expect(fromDer.revoked.get(leaf.serialNumber)?.reason).toBe('keyCompromise');
    const pem = crlToPem(crl);
    expect(pem.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true);
    expect(equalBytes(parseCrl(pem).der, crl.der)).toBe(true);
    expect(parseCrl(crl)).toBe(crl);
    expect(fromDer.fingerprint).toBe(crl.fingerprint);
  });

  it('refuses look-alike objects', () => {
    expectCode(() => parseCrl({ ...crl }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => parseCrl(Object.create(crl) as SmkiCrl), 'ERR_INVALID_ARGUMENT');
    expectCode(() => crlToPem({ ...crl }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => parseCrl(42 as unknown as Uint8Array), 'ERR_CRL_MALFORMED');
    expect(isParsedCrl({ ...crl })).toBe(false);
  });

  it('is immutable: no way to add or change a revocation', () => {
    expect(Object.isFrozen(crl)).toBe(true);
    expect(Object.isFrozen(crl.revoked)).toBe(true);
    expect((crl.revoked as unknown as { set?: unknown }).set).toBeUndefined();
    expect((crl.revoked as unknown as { delete?: unknown }).delete).toBeUndefined();
    const e = crl.revoked.get(leaf.serialNumber);
    expect(Object.isFrozen(e)).toBe(true);
    expect([...crl.revoked.keys()]).toEqual([leaf.serialNumber]);
    expect([...crl.revoked].length).toBe(1);
    let seen = 0;
    crl.revoked.forEach(() => seen++);
    expect(seen).toBe(1);
  });

  it('reports malformed input as ERR_CRL_MALFORMED with an offset, never another exception', () => {
    // Truncated.
    const cut = expectCode(() => parseCrl(crl.der.subarray(0, crl.der.length - 5)), 'ERR_CRL_MALFORMED');
    expect(typeof (cut.context as { offset?: number }).offset).toBe('number');
    // Trailing data.
    const trailing = expectCode(() => parseCrl(new Uint8Array([...crl.der, 0])), 'ERR_CRL_MALFORMED');
    expect((trailing.context as { offset?: number }).offset).toBe(crl.der.length);
    // Not a SEQUENCE; empty; too big.
    expectCode(() => parseCrl(Uint8Array.of(0x04, 0x00)), 'ERR_CRL_MALFORMED');
    expectCode(() => parseCrl(new Uint8Array(0)), 'ERR_CRL_MALFORMED');
    expectCode(() => parseCrl(new Uint8Array(MAX_CRL_BYTES + 1)), 'ERR_CRL_MALFORMED');
    // A certificate is not a CRL.
    expectCode(() => parseCrl(leaf.der), 'ERR_CRL_MALFORMED');
    // PEM with the wrong label.
    expectCode(() => parseCrl(certificateToPem(leaf)), 'ERR_PEM_INVALID');
  });

  it('survives random mutations: parses or throws ERR_CRL_MALFORMED only', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (flips, cutAt) => {
        const bytes = crl.der.slice();
        for (const [pos, v] of flips) bytes[pos % bytes.length] = v;
        for (const input of [bytes, bytes.subarray(0, cutAt % bytes.length)]) {
          try {
            parseCrl(input);
          } catch (e) {
            if (!isSmkiError(e, 'ERR_CRL_MALFORMED')) throw e;
          }
        }
      }),
      { numRuns: 500, seed: 5280 },
    );
  });

  it('refuses arbitrary bytes quickly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        try {
          parseCrl(bytes);
        } catch (e) {
          if (!isSmkiError(e, 'ERR_CRL_MALFORMED')) throw e;
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('refuses structural breaks (RFC 5280 5.1.2.1, X.690 DER)', async () => {
    const s = h.organisationCa.signer;
    // Version 3 (value 2) is not a CRL version.
    expectCode(() => parseCrl(new Uint8Array()), 'ERR_CRL_MALFORMED');
    const v3 = await handCrl([int(2), ...head().slice(1)], s);
    expectCode(() => parseCrl(v3), 'ERR_CRL_MALFORMED');
    // Extensions in a v1 CRL.
    const v1ext = await handCrl([...head().slice(1), ctx(0, false, seq(extension('2.5.29.20', false, int(1))))], s);
    expectCode(() => parseCrl(v1ext), 'ERR_CRL_MALFORMED');
    // The same extension twice.
    const dup = await handCrl([...head(), ctx(0, false, seq(extension('2.5.29.20', false, int(1)), extension('2.5.29.20', false, int(2))))], s);
    expectCode(() => parseCrl(dup), 'ERR_CRL_MALFORMED');
    // critical FALSE written out.
    const falseCrit = await handCrl([...head(), ctx(0, false, seq(seq(oid('2.5.29.20'), bool(false), octets(int(1)))))], s);
    expectCode(() => parseCrl(falseCrit), 'ERR_CRL_MALFORMED');
    // A negative cRLNumber; a reasonCode of 7 (unused); a serial listed twice.
    const neg = await handCrl([...head(), ctx(0, false, seq(extension('2.5.29.20', false, tlv(0x02, Uint8Array.of(0xff)))))], s);
    expectCode(() => parseCrl(neg), 'ERR_CRL_MALFORMED');
    const entry = (serial: number, reason?: number): Uint8Array =>
      seq(int(serial), time(THIS_UPDATE), ...(reason !== undefined ? [seq(extension('2.5.29.21', false, tlv(0x0a, Uint8Array.of(reason))))] : []));
    const r7 = await handCrl([...head(), seq(entry(5, 7))], s);
    expectCode(() => parseCrl(r7), 'ERR_CRL_MALFORMED');
    const twice = await handCrl([...head(), seq(entry(5), entry(5))], s);
    expectCode(() => parseCrl(twice), 'ERR_CRL_MALFORMED');
    // Both onlyContainsUserCerts and onlyContainsCACerts.
    const both = await handCrl([...head(), ctx(0, false, seq(extension('2.5.29.28', true, seq(tlv(0x81, Uint8Array.of(0xff)), tlv(0x82, Uint8Array.of(0xff))))))], s);
    expectCode(() => parseCrl(both), 'ERR_CRL_MALFORMED');
    // A v1 CRL without extensions and without nextUpdate still parses.
    const v1 = parseCrl(await handCrl([seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE), seq(entry(5))], s));
    expect(v1.details.version).toBe(0);
    expect(v1.nextUpdate).toBeUndefined();
    expect(v1.revoked.get('05')?.revocationDate).toEqual(THIS_UPDATE);
  });

  it('records unknown critical CRL and entry extensions (RFC 5280 5.2, 5.3)', async () => {
    const s = h.organisationCa.signer;
    const crlExt = parseCrl(await handCrl([...head(), ctx(0, false, seq(extension('2.5.29.20', false, int(1)), extension('1.2.3.4', true, octets(Uint8Array.of(1)))))], s));
    expect(crlExt.unknownCriticalExtensions).toEqual([{ oid: '1.2.3.4' }]);
    const nonCritical = parseCrl(await handCrl([...head(), ctx(0, false, seq(extension('1.2.3.4', false, octets(Uint8Array.of(1)))))], s));
    expect(nonCritical.unknownCriticalExtensions).toEqual([]);
    // certificateIssuer (indirect CRLs) is critical and not processed.
    const entryExt = parseCrl(
      await handCrl([...head(), seq(seq(int(5), time(THIS_UPDATE), seq(extension('2.5.29.29', true, seq(ctx(4, false, h.root.certificate.subject.der)))))), ctx(0, false, seq(extension('2.5.29.20', false, int(1))))], s),
    );
    expect(entryExt.unknownCriticalExtensions).toEqual([{ oid: '2.5.29.29', serialNumber: '05' }]);
    // A delta CRL is never complete.
    const delta = parseCrl(await handCrl([...head(), ctx(0, false, seq(extension('2.5.29.20', false, int(2)), extension('2.5.29.27', true, int(1))))], s));
    expect(delta.scope).toBe('unsupported');
    expect(delta.unknownCriticalExtensions).toEqual([{ oid: '2.5.29.27' }]);
    // Partitioned scopes are recorded as unsupported.
    const reasons = parseCrl(await handCrl([...head(), ctx(0, false, seq(extension('2.5.29.28', true, seq(tlv(0x83, Uint8Array.of(0x07, 0x80))))))], s));
    expect(reasons.scope).toBe('unsupported');
    expect(reasons.details.scopeDetail).toContain('onlySomeReasons');
    // invalidityDate is read.
    const inv = parseCrl(
      await handCrl([...head(), seq(seq(int(6), time(THIS_UPDATE), seq(extension('2.5.29.24', false, time('20240501000000Z'))))), ctx(0, false, seq(extension('2.5.29.20', false, int(1))))], s),
    );
    expect(inv.revoked.get('06')?.invalidityDate).toEqual(new Date('2024-05-01T00:00:00Z'));
  });
});

describe('OpenSSL agrees (openssl crl, openssl verify -crl_check)', () => {
  const at = Math.floor(new Date('2024-06-02T00:00:00Z').getTime() / 1000).toString();

  it('openssl crl -text reads what issueCrl wrote and verifies its signature', async () => {
    const crl = await issueCrl({
      issuer: h.organisationCa,
      crlNumber: 4660n,
      thisUpdate: THIS_UPDATE,
      nextUpdate: NEXT_UPDATE,
      kind: 'crl',
      revoked: [{ serialNumber: leaf, revocationDate: new Date('2024-05-30T00:00:00Z'), reason: 'keyCompromise' }],
    });
    writeFileSync(join(dir, 'crl.der'), crl.der);
    writeFileSync(join(dir, 'oca.pem'), certificateToPem(h.organisationCa.certificate));
    const text = openssl(['crl', '-inform', 'der', '-in', join(dir, 'crl.der'), '-text', '-noout']);
    expect(text.status).toBe(0);
    expect(text.out).toContain('Version 2 (0x1)');
    expect(text.out).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text.out).toContain('Issuer: OU = 07, CN = Z1');
    expect(text.out).toContain('Last Update: Jun  1 00:00:00 2024 GMT');
    expect(text.out).toContain('Next Update: Jun  8 00:00:00 2024 GMT');
    expect(text.out).toMatch(/X509v3 CRL Number: \n\s+4660/);
    expect(text.out).toMatch(/X509v3 Issuing Distribution Point: critical\n\s+Only User Certificates/);
    const aki = (h.organisationCa.certificate.subjectKeyId as string).match(/../g)?.join(':');
    expect(text.out).toContain(aki);
    expect(text.out).toContain(`Serial Number: ${leaf.serialNumber}`);
    expect(text.out).toContain('Key Compromise');
    const verify = openssl(['crl', '-inform', 'der', '-in', join(dir, 'crl.der'), '-CAfile', join(dir, 'oca.pem'), '-noout']);
    expect(verify.out).toContain('verify OK');
  });

  it('openssl verify -crl_check_all: revoked leaf, revoked OCA by the ARL, and a clean path', async () => {
    const w = (name: string, text: string): string => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const root = w('root.pem', certificateToPem(h.root.certificate));
    const oca = w('oca.pem', certificateToPem(h.organisationCa.certificate));
    const leafPem = w('leaf.pem', certificateToPem(leaf));
    const leaf2Pem = w('leaf2.pem', certificateToPem(leaf2));
    const times = { thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE };
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 2n, ...times, kind: 'crl', revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE }] });
    const arl = await issueCrl({ issuer: h.root, crlNumber: 1n, ...times, kind: 'arl' });
    const arlRevoking = await issueCrl({ issuer: h.root, crlNumber: 2n, ...times, kind: 'arl', revoked: [{ serialNumber: h.organisationCa.certificate, revocationDate: THIS_UPDATE, reason: 'cACompromise' }] });
    const crls = w('crls.pem', crlToPem(crl) + crlToPem(arl));
    const crls2 = w('crls2.pem', crlToPem(crl) + crlToPem(arlRevoking));
    const verify = (file: string, crlFile: string): { status: number; out: string } =>
      openssl(['verify', '-crl_check_all', '-CAfile', root, '-untrusted', oca, '-CRLfile', crlFile, '-attime', at, file]);
    const clean = verify(leaf2Pem, crls);
    expect(clean.status, clean.out).toBe(0);
    expect(clean.out).toContain(': OK');
    const revoked = verify(leafPem, crls);
    expect(revoked.status).not.toBe(0);
    expect(revoked.out).toContain('error 23 at 0 depth lookup: certificate revoked');
    const ocaRevoked = verify(leaf2Pem, crls2);
    expect(ocaRevoked.status).not.toBe(0);
    expect(ocaRevoked.out).toContain('error 23 at 1 depth lookup: certificate revoked');
    // -crl_check alone (leaf only) with the organisation CRL.
    const leafOnly = openssl(['verify', '-crl_check', '-CAfile', root, '-untrusted', oca, '-CRLfile', w('crl-only.pem', crlToPem(crl)), '-attime', at, leaf2Pem]);
    expect(leafOnly.status, leafOnly.out).toBe(0);
  });
});
