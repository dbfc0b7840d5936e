// parseCrl and issueCrl: the cases mutation testing (StrykerJS, `pnpm run mutation pki/crl`) found
// untested. RFC 5280 §5.1 (CertificateList, TBSCertList), §5.2.1 (authorityKeyIdentifier), §5.2.3
// (cRLNumber), §5.2.4 (deltaCRLIndicator), §5.2.5 (issuingDistributionPoint), §5.3.1 (reasonCode),
// §5.3.2 (invalidityDate); X.690 §11 (DER).
//
// Every structural guard of parseCrl surfaces as ERR_CRL_MALFORMED, so, as in the certificate
// parser's negative tests, each case checks the byte offset and the message that tell one guard
// from another, and is built so that without its guard the CRL would parse (or fail elsewhere).
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ByteReader, createKeySigner, isSmkiError, p1363ToDer, readTlv, tlvReader, toHex, type Signer, type SmkiError } from '@smki/core';
import { issueCrl, MAX_CRL_BYTES, parseCrl, type CrlReason, type SmkiCrl } from '../src/crl.js';
import { buildCertificate, ECDSA_WITH_SHA256, rfc5280Time, type ExtensionTemplate } from '../src/internal/build.js';
import { keyIdMethod2 } from '../src/internal/keyid.js';
import { derSequence, derTlv } from '../src/internal/name.js';
import { createHierarchy, issueOrganisationCertificate, type SmkiHierarchy } from '../src/issue.js';
import { parseCertificate } from '../src/parse.js';
import type { SmkiCertificate } from '../src/types.js';
import { bitString, bool, ctx, extension, int, keyUsageValue, nul, octets, oid, seq, time, tlv } from './_x509-builder.js';

const T0 = new Date('2024-01-01T00:00:00Z');
const THIS_UPDATE = new Date('2024-06-01T00:00:00Z');
const NEXT_UPDATE = new Date('2024-06-08T00:00:00Z');
const ECDSA = '1.2.840.10045.4.3.2';
const OID_CRL_NUMBER = '2.5.29.20';
const OID_REASON = '2.5.29.21';
const OID_INVALIDITY = '2.5.29.24';
const OID_DELTA = '2.5.29.27';
const OID_IDP = '2.5.29.28';
const OID_AKI = '2.5.29.35';
const OID_SKI = '2.5.29.14';
const OID_KEY_USAGE = '2.5.29.15';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';

let h: SmkiHierarchy;
let leaf: SmkiCertificate;

const newSigner = (): Signer => createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

/** A CRL from DER parts of its tbsCertList, signed by the organisation CA. */
async function handCrl(parts: readonly Uint8Array[], o: { readonly alg?: Uint8Array; readonly tbsAlg?: Uint8Array; readonly unusedBits?: number } = {}): Promise<Uint8Array> {
  const tbs = seq(...parts);
  const sig = p1363ToDer(await h.organisationCa.signer.sign(tbs));
  return seq(tbs, o.alg ?? seq(oid(ECDSA)), bitString(sig, o.unusedBits ?? 0));
}

/** version v2, ecdsa-with-SHA256, the OCA's name, thisUpdate, nextUpdate. */
const head = (): Uint8Array[] => [int(1), seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE), time(NEXT_UPDATE)];
const crlExtensions = (...exts: Uint8Array[]): Uint8Array => ctx(0, false, seq(...exts));
const crlNumberExt = (n = 1): Uint8Array => extension(OID_CRL_NUMBER, false, int(n));
const entry = (serial: number, ...extensions: Uint8Array[]): Uint8Array =>
  seq(int(serial), time(THIS_UPDATE), ...(extensions.length > 0 ? [seq(...extensions)] : []));
const reasonExt = (value: number): Uint8Array => extension(OID_REASON, false, tlv(0x0a, Uint8Array.of(value)));
const idpExt = (...fields: Uint8Array[]): Uint8Array => extension(OID_IDP, true, seq(...fields));
const TRUE_ = Uint8Array.of(0xff);

/** Offset of the tbsCertList: after the outer SEQUENCE's tag and length octets. */
const tbsStart = (der: Uint8Array): number => ((der[1] as number) < 0x80 ? 2 : 2 + ((der[1] as number) & 0x7f));

/** Where `needle` first occurs in `der` at or after `from`. */
function find(der: Uint8Array, needle: Uint8Array, from = 0): number {
  const i = Buffer.from(der).indexOf(Buffer.from(needle), from);
  if (i < 0) throw new Error('needle not found');
  return i;
}

function thrown(fn: () => unknown): SmkiError {
  try {
    fn();
  } catch (e) {
    expect(isSmkiError(e), String(e)).toBe(true);
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}

/** ERR_CRL_MALFORMED from parseCrl at `offset`, with a message matching `message`. */
function expectMalformed(der: Uint8Array, offset: number | undefined, message: RegExp): SmkiError {
  const e = thrown(() => parseCrl(der));
  expect(e.code).toBe('ERR_CRL_MALFORMED');
  expect((e.context as { offset?: number }).offset).toBe(offset);
  expect(e.message).toMatch(message);
  return e;
}

beforeAll(async () => {
  h = await createHierarchy({ notBefore: T0 });
  leaf = await issueOrganisationCertificate({ issuer: h.organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey: newSigner().publicKey, notBefore: T0 });
});

describe('parseCrl: one structural guard each (RFC 5280 §5.1; X.690 DER)', () => {
  it('the control: the hand-made CRL parses', async () => {
    const crl = parseCrl(await handCrl([...head(), seq(entry(5, reasonExt(1))), crlExtensions(crlNumberExt(3))]));
    expect(crl.crlNumber).toBe(3n);
    expect(crl.revoked.get('05')?.reason).toBe('keyCompromise');
  });

  it('a top-level element that is not a SEQUENCE is refused at offset 0', async () => {
    const der = await handCrl([...head(), crlExtensions(crlNumberExt())]);
    der[0] = 0x31;
    expectMalformed(der, 0, /CertificateList is not a SEQUENCE/);
  });

  it('a signature BIT STRING with unused bits', async () => {
    const der = await handCrl([...head(), crlExtensions(crlNumberExt())], { unusedBits: 1 });
    const tbsLen = seq(...head(), crlExtensions(crlNumberExt())).length;
    const sigAt = tbsStart(der) + tbsLen + seq(oid(ECDSA)).length; // outer header | tbs | alg | BIT STRING
    expect(der[sigAt]).toBe(0x03);
    expectMalformed(der, sigAt, /unused bits/);
  });

  it('an element after signatureValue', async () => {
    const good = await handCrl([...head(), crlExtensions(crlNumberExt())]);
    const body = good.subarray(tbsStart(good));
    const der = seq(body, nul());
    expectMalformed(der, der.length - 2, /extra bytes in CertificateList/);
  });

  it('a version other than v2 when present: an explicit v1 (0)', async () => {
    const der = await handCrl([int(0), ...head().slice(1), crlExtensions(crlNumberExt())]);
    expectMalformed(der, tbsStart(der) + 2, /version must be v2/);
  });

  it('a version INTEGER of two octets', async () => {
    const der = await handCrl([tlv(0x02, Uint8Array.of(0x01, 0x00)), ...head().slice(1), crlExtensions(crlNumberExt())]);
    expectMalformed(der, find(der, Uint8Array.of(0x02, 0x02, 0x01, 0x00)), /version must be v2/);
  });

  it('an empty Extensions SEQUENCE (SIZE (1..MAX))', async () => {
    const der = await handCrl([...head(), ctx(0, false, seq())]);
    expectMalformed(der, find(der, Uint8Array.of(0xa0, 0x02, 0x30, 0x00)) + 2, /empty Extensions/);
  });

  it('an empty entry Extensions SEQUENCE', async () => {
    const der = await handCrl([...head(), seq(seq(int(5), time(THIS_UPDATE), seq())), crlExtensions(crlNumberExt())]);
    const entryAt = find(der, int(5));
    expectMalformed(der, entryAt + int(5).length + time(THIS_UPDATE).length, /empty Extensions/);
  });

  it('critical FALSE written out', async () => {
    const ext = seq(oid('1.2.3.4'), bool(false), octets(nul()));
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(), ext)]);
    expectMalformed(der, find(der, ext), /critical FALSE/);
  });

  it('an extra field inside an Extension', async () => {
    const ext = seq(oid('1.2.3.4'), octets(nul()), nul());
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(), ext)]);
    expectMalformed(der, find(der, ext) + ext.length - 2, /extra fields in Extension/);
  });

  it('the same extension twice, at the second one', async () => {
    const second = crlNumberExt(2);
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(1), second)]);
    expectMalformed(der, find(der, second), /appears twice/);
  });

  it('a serial listed twice, at the second entry', async () => {
    const second = entry(5, reasonExt(1));
    const der = await handCrl([...head(), seq(entry(5), second), crlExtensions(crlNumberExt())]);
    expectMalformed(der, find(der, second), /listed twice/);
  });

  it('an extra field in a revoked entry', async () => {
    const e = seq(int(5), time(THIS_UPDATE), seq(reasonExt(1)), nul());
    const der = await handCrl([...head(), seq(e), crlExtensions(crlNumberExt())]);
    expectMalformed(der, find(der, e) + e.length - 2, /extra bytes in revoked entry/);
  });

  it('an extra field after the crlExtensions SEQUENCE inside [0]', async () => {
    const der = await handCrl([...head(), ctx(0, false, seq(crlNumberExt()), nul())]);
    expectMalformed(der, find(der, crlNumberExt()) + crlNumberExt().length, /extra bytes in crlExtensions/);
  });

  it('an extra field after crlExtensions in tbsCertList', async () => {
    const der = await handCrl([...head(), crlExtensions(crlNumberExt()), nul()]);
    expectMalformed(der, find(der, crlNumberExt()) + crlNumberExt().length, /extra bytes in tbsCertList/);
  });

  it('entry extensions in a v1 CRL (RFC 5280 §5.1.2.1: v2 when extensions are present)', async () => {
    const der = await handCrl([seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE), time(NEXT_UPDATE), seq(entry(5, reasonExt(1)))]);
    expectMalformed(der, tbsStart(der), /must be v2/);
  });

  it('a cRLNumber with bytes after the INTEGER', async () => {
    const der = await handCrl([...head(), crlExtensions(extension(OID_CRL_NUMBER, false, new Uint8Array([...int(1), 0x05, 0x00])))]);
    expectMalformed(der, find(der, int(1), find(der, oid(OID_CRL_NUMBER))) + 3, /extra bytes in cRLNumber/);
  });

  it('a cRLNumber of 21 octets', async () => {
    const big = tlv(0x02, Uint8Array.of(0x01, ...new Uint8Array(20)));
    const der = await handCrl([...head(), crlExtensions(extension(OID_CRL_NUMBER, false, big))]);
    expectMalformed(der, find(der, big), /longer than 20 octets/);
  });

  it('a reasonCode of two octets, of 7 (unused) and of 11', async () => {
    for (const value of [Uint8Array.of(0, 1), Uint8Array.of(7), Uint8Array.of(11)]) {
      const r = tlv(0x0a, value);
      const der = await handCrl([...head(), seq(entry(5, extension(OID_REASON, false, r))), crlExtensions(crlNumberExt())]);
      expectMalformed(der, find(der, r, find(der, oid(OID_REASON))), /not a CRLReason/);
    }
  });

  it('an invalidityDate as UTCTime (RFC 5280 §5.3.2: GeneralizedTime)', async () => {
    const t = time(new Date('2024-05-01T00:00:00Z'));
    expect(t[0]).toBe(0x17);
    const der = await handCrl([...head(), seq(entry(6, extension(OID_INVALIDITY, false, t))), crlExtensions(crlNumberExt())]);
    const e = expectMalformed(der, find(der, t, find(der, oid(OID_INVALIDITY))), /not a CRL/);
    expect((e.cause as SmkiError).code).toBe('ERR_DER_INVALID');
  });

  it('an authorityKeyIdentifier with a field other than [0], [1] or [2]', async () => {
    const bad = tlv(0x83, Uint8Array.of(1));
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(), extension(OID_AKI, false, seq(ctx(0, true, Uint8Array.of(1, 2)), bad)))]);
    expectMalformed(der, find(der, bad, find(der, oid(OID_AKI))), /unexpected field in authorityKeyIdentifier/);
  });

  it('an authorityKeyIdentifier with bytes after its SEQUENCE', async () => {
    const value = new Uint8Array([...seq(ctx(0, true, Uint8Array.of(1, 2))), 0x05, 0x00]);
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(), extension(OID_AKI, false, value))]);
    expectMalformed(der, find(der, value) + value.length - 2, /extra bytes in authorityKeyIdentifier/);
  });

  it('a reasonCode, and an invalidityDate, with bytes after the value: refused there, naming the extension', async () => {
    const reason = new Uint8Array([...tlv(0x0a, Uint8Array.of(1)), 0x05, 0x00]);
    const withReason = await handCrl([...head(), seq(entry(5, extension(OID_REASON, false, reason))), crlExtensions(crlNumberExt())]);
    expectMalformed(withReason, find(withReason, reason) + reason.length - 2, /^extra bytes in reasonCode$/);
    const date = new Uint8Array([...time('20240501000000Z'), 0x05, 0x00]);
    const withDate = await handCrl([...head(), seq(entry(6, extension(OID_INVALIDITY, false, date))), crlExtensions(crlNumberExt())]);
    expectMalformed(withDate, find(withDate, date) + date.length - 2, /^extra bytes in invalidityDate$/);
  });
});

describe('parseCrl: issuingDistributionPoint, strictly (RFC 5280 §5.2.5)', () => {
  const withIdp = async (...fields: Uint8Array[]): Promise<Uint8Array> => handCrl([...head(), crlExtensions(crlNumberExt(), idpExt(...fields))]);
  const idpScope = async (...fields: Uint8Array[]): Promise<SmkiCrl> => parseCrl(await withIdp(...fields));

  it.each([
    ['onlyContainsUserCerts', [tlv(0x81, TRUE_)], 'userCertificates', undefined],
    ['onlyContainsCACerts', [tlv(0x82, TRUE_)], 'caCertificates', undefined],
    ['nothing', [], 'all', undefined],
    ['a distributionPoint', [ctx(0, false, ctx(0, false, tlv(0x86, Buffer.from('http://x'))))], 'unsupported', 'issuingDistributionPoint distributionPoint'],
    ['onlySomeReasons', [tlv(0x83, Uint8Array.of(0x07, 0x80))], 'unsupported', 'issuingDistributionPoint onlySomeReasons'],
    ['indirectCRL', [tlv(0x84, TRUE_)], 'unsupported', 'issuingDistributionPoint indirectCRL'],
    ['onlyContainsAttributeCerts', [tlv(0x85, TRUE_)], 'unsupported', 'issuingDistributionPoint onlyContainsAttributeCerts'],
    ['onlyContainsUserCerts and indirectCRL', [tlv(0x81, TRUE_), tlv(0x84, TRUE_)], 'unsupported', 'issuingDistributionPoint indirectCRL'],
    [
      'every partitioning field',
      [ctx(0, false, ctx(0, false, tlv(0x86, Buffer.from('http://x')))), tlv(0x83, Uint8Array.of(0x07, 0x80)), tlv(0x84, TRUE_), tlv(0x85, TRUE_)],
      'unsupported',
      'issuingDistributionPoint distributionPoint, onlySomeReasons, indirectCRL, onlyContainsAttributeCerts',
    ],
  ] as const)('%s → scope %s', async (_label, fields, scope, detail) => {
    const crl = await idpScope(...fields);
    expect(crl.scope).toBe(scope);
    if (detail === undefined) expect(crl.details).not.toHaveProperty('scopeDetail');
    else expect(crl.details.scopeDetail).toBe(detail);
    expect(crl.unknownCriticalExtensions).toEqual([]);
  });

  it.each([
    ['a universal tag', () => bool(true), /unexpected field in issuingDistributionPoint/],
    ['a private-class tag', () => tlv(0xc1, TRUE_), /unexpected field in issuingDistributionPoint/],
    ['field [6]', () => tlv(0x86, TRUE_), /unexpected field in issuingDistributionPoint/],
    ['a primitive distributionPoint', () => tlv(0x80, Uint8Array.of(1)), /distributionPoint must be constructed/],
    ['a constructed onlySomeReasons', () => tlv(0xa3, bitString(Uint8Array.of(0x80))), /onlySomeReasons must be a primitive BIT STRING/],
    ['a constructed BOOLEAN', () => tlv(0xa1, bool(true)), /bad BOOLEAN/],
    // Right length and value, wrong form: only the tag tells it from onlyContainsUserCerts TRUE.
    ['a constructed [1] holding the one octet FF', () => tlv(0xa1, TRUE_), /bad BOOLEAN/],
    ['a BOOLEAN of two octets', () => tlv(0x81, Uint8Array.of(0xff, 0xff)), /bad BOOLEAN/],
    ['a BOOLEAN of no octets', () => tlv(0x84, new Uint8Array(0)), /bad BOOLEAN/],
    ['a DEFAULT FALSE written out', () => tlv(0x82, Uint8Array.of(0)), /DEFAULT FALSE BOOLEAN must be omitted/],
    ['a TRUE that is not FF', () => tlv(0x85, Uint8Array.of(1)), /DEFAULT FALSE BOOLEAN must be omitted/],
  ])('%s is refused at the field', async (_label, make, message) => {
    const field = make();
    const der = await withIdp(field);
    // The IDP value is SEQUENCE { field }: the field starts two octets into it.
    expectMalformed(der, find(der, seq(field), find(der, oid(OID_IDP))) + 2, message);
  });

  it('fields out of order, or one twice, are refused at the later field', async () => {
    const later = tlv(0x81, TRUE_);
    const swapped = await withIdp(tlv(0x84, TRUE_), later);
    expectMalformed(swapped, find(swapped, later, find(swapped, oid(OID_IDP))), /unexpected field/);
    const twice = await withIdp(tlv(0x82, TRUE_), tlv(0x82, TRUE_));
    const first = find(twice, tlv(0x82, TRUE_), find(twice, oid(OID_IDP)));
    expectMalformed(twice, first + 3, /unexpected field/);
  });

  it('more than one onlyContains… flag is refused at the IDP SEQUENCE, for every pair', async () => {
    for (const pair of [
      [0x81, 0x82],
      [0x81, 0x85],
      [0x82, 0x85],
    ]) {
      const fields = pair.map((t) => tlv(t, TRUE_));
      const der = await withIdp(...fields);
      expectMalformed(der, find(der, seq(...fields), find(der, oid(OID_IDP))), /more than one onlyContains/);
    }
  });

  it('bytes after the IDP SEQUENCE', async () => {
    const value = new Uint8Array([...seq(tlv(0x81, TRUE_)), 0x05, 0x00]);
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(), extension(OID_IDP, true, value))]);
    expectMalformed(der, find(der, value) + value.length - 2, /extra bytes in issuingDistributionPoint/);
  });
});

describe('parseCrl: what it reads', () => {
  it('every CRLReason by its value (RFC 5280 §5.3.1)', async () => {
    const names: [number, CrlReason][] = [
      [0, 'unspecified'],
      [1, 'keyCompromise'],
      [2, 'cACompromise'],
      [3, 'affiliationChanged'],
      [4, 'superseded'],
      [5, 'cessationOfOperation'],
      [6, 'certificateHold'],
      [8, 'removeFromCRL'],
      [9, 'privilegeWithdrawn'],
      [10, 'aACompromise'],
    ];
    const crl = parseCrl(await handCrl([...head(), seq(...names.map(([v]) => entry(100 + v, reasonExt(v)))), crlExtensions(crlNumberExt())]));
    for (const [v, name] of names) expect(crl.revoked.get(toHex(int(100 + v).subarray(2)))?.reason).toBe(name);
  });

  it('cRLNumber 0, and a 20-octet magnitude whose top bit is set', async () => {
    expect(parseCrl(await handCrl([...head(), crlExtensions(crlNumberExt(0))])).crlNumber).toBe(0n);
    const max = tlv(0x02, Uint8Array.of(0x00, ...new Uint8Array(20).fill(0xff)));
    expect(parseCrl(await handCrl([...head(), crlExtensions(extension(OID_CRL_NUMBER, false, max))])).crlNumber).toBe((1n << 160n) - 1n);
  });

  it('an authorityKeyIdentifier with authorityCertIssuer and serial still gives its keyIdentifier; without one, none', async () => {
    const full = seq(ctx(0, true, Uint8Array.of(0xab, 0xcd)), ctx(1, false, ctx(4, false, h.root.certificate.subject.der)), ctx(2, true, Uint8Array.of(1)));
    const crl = parseCrl(await handCrl([...head(), crlExtensions(crlNumberExt(), extension(OID_AKI, false, full))]));
    expect(crl.authorityKeyId).toBe('ABCD');
    const noKeyId = parseCrl(await handCrl([...head(), crlExtensions(crlNumberExt(), extension(OID_AKI, false, seq(ctx(2, true, Uint8Array.of(1)))))]));
    expect(noKeyId).not.toHaveProperty('authorityKeyId');
  });

  it('a non-critical deltaCRLIndicator still makes the CRL unsupported, but is no unknown critical extension', async () => {
    const crl = parseCrl(await handCrl([...head(), crlExtensions(crlNumberExt(2), extension(OID_DELTA, false, int(1)))]));
    expect(crl.scope).toBe('unsupported');
    expect(crl.details.scopeDetail).toBe('delta CRL (deltaCRLIndicator)');
    expect(crl.unknownCriticalExtensions).toEqual([]);
  });

  it('entry extensions: invalidityDate read, a non-critical unknown one ignored, a critical one recorded with the serial', async () => {
    const crl = parseCrl(
      await handCrl([
        ...head(),
        seq(
          entry(6, extension(OID_INVALIDITY, false, time('20240501000000Z')), extension('1.2.3.4', false, nul())),
          entry(7, extension('1.2.3.5', true, nul())),
        ),
        crlExtensions(crlNumberExt()),
      ]),
    );
    expect(crl.revoked.get('06')?.invalidityDate).toEqual(new Date('2024-05-01T00:00:00Z'));
    expect(crl.revoked.get('06')).not.toHaveProperty('reason');
    expect(crl.revoked.get('07')).not.toHaveProperty('invalidityDate');
    expect(crl.revoked.get('06')?.extensions.map((x) => [x.oid, x.critical])).toEqual([
      [OID_INVALIDITY, false],
      ['1.2.3.4', false],
    ]);
    expect(crl.unknownCriticalExtensions).toEqual([{ oid: '1.2.3.5', serialNumber: '07' }]);
  });

  it('a v1 CRL that ends at thisUpdate, and one that ends at nextUpdate, parse', async () => {
    const short = parseCrl(await handCrl([seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE)]));
    expect(short.details.version).toBe(0);
    expect(short).not.toHaveProperty('nextUpdate');
    expect(short.details).not.toHaveProperty('nextUpdateTag');
    expect(short).not.toHaveProperty('crlNumber');
    expect(short.revoked.size).toBe(0);
    const withNext = parseCrl(await handCrl([seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE), time(NEXT_UPDATE)]));
    expect(withNext.nextUpdate).toEqual(NEXT_UPDATE);
    expect(withNext.details.nextUpdateTag).toBe(0x17);
    expect(withNext.revoked.size).toBe(0);
    expect(withNext.extensions).toEqual([]);
  });

  it('a GeneralizedTime nextUpdate is read as nextUpdate', async () => {
    const crl = parseCrl(await handCrl([int(1), seq(oid(ECDSA)), h.organisationCa.certificate.subject.der, time(THIS_UPDATE), time('20500101000000Z'), crlExtensions(crlNumberExt())]));
    expect(crl.details.nextUpdateTag).toBe(0x18);
    expect(crl.nextUpdate).toEqual(new Date('2050-01-01T00:00:00Z'));
  });

  it('signature algorithms: a NULL parameter only inside, or another OID inside, do not match', async () => {
    const nullInside = parseCrl(await handCrl([int(1), seq(oid(ECDSA), nul()), ...head().slice(2), crlExtensions(crlNumberExt())]));
    expect(nullInside.details.tbsSignatureAlgorithm).toBe(ECDSA);
    expect(nullInside.details.signatureAlgorithmsMatch).toBe(false);
    const otherOid = parseCrl(await handCrl([int(1), seq(oid('1.2.840.10045.4.3.3')), ...head().slice(2), crlExtensions(crlNumberExt())]));
    expect(otherOid.details.signatureAlgorithmsMatch).toBe(false);
    const nullBoth = parseCrl(await handCrl([int(1), seq(oid(ECDSA), nul()), ...head().slice(2), crlExtensions(crlNumberExt())], { alg: seq(oid(ECDSA), nul()) }));
    expect(nullBoth.details.signatureAlgorithmsMatch).toBe(true);
    expect(nullBoth.details.signatureAlgorithmParams).toBe('null');
  });

  it('the issuer name is frozen, down to each attribute', async () => {
    const crl = parseCrl(await handCrl([...head(), crlExtensions(crlNumberExt())]));
    expect(Object.isFrozen(crl.issuer)).toBe(true);
    expect(Object.isFrozen(crl.issuer.attributes)).toBe(true);
    for (const a of crl.issuer.attributes) expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(crl.details)).toBe(true);
    expect(Object.isFrozen(crl.extensions)).toBe(true);
    expect(Object.isFrozen(crl.extensions[0])).toBe(true);
  });
});

describe('parseCrl: inputs and the size bound', () => {
  it('null is neither text, bytes nor a parsed CRL: ERR_CRL_MALFORMED', () => {
    const e = thrown(() => parseCrl(null as unknown as Uint8Array));
    expect(e.code).toBe('ERR_CRL_MALFORMED');
    expect(e.context).toEqual({ detail: 'object' });
  });

  it('a guard of the CRL parser is thrown as it is, not wrapped again', async () => {
    const der = await handCrl([...head(), crlExtensions(crlNumberExt(1), crlNumberExt(2))]);
    const e = expectMalformed(der, find(der, crlNumberExt(2)), /^extension 2\.5\.29\.20 appears twice$/);
    expect(e.cause).toBeUndefined();
  });

  it('a reader error is wrapped with its offset and cause', async () => {
    const der = await handCrl([...head(), crlExtensions(crlNumberExt())]);
    const cut = der.subarray(0, der.length - 1);
    const e = thrown(() => parseCrl(cut));
    expect(e.code).toBe('ERR_CRL_MALFORMED');
    expect(isSmkiError(e.cause)).toBe(true);
    expect(e.context).toEqual({ offset: ((e.cause as SmkiError).context as { offset: number }).offset });
  });

  it(`exactly ${MAX_CRL_BYTES} bytes parses; one more is refused by size, before any structure check`, async () => {
    // A non-critical private CRL extension as filler, grown until the CRL has the wanted size (the
    // signature's length varies by a byte or two). derTlv copies once, so 1 MiB is cheap to build.
    const sized = async (total: number): Promise<Uint8Array> => {
      let n = total - 400;
      for (let round = 0; round < 64; round++) {
        const filler = derSequence(oid('1.2.3.4'), derTlv(0x04, derTlv(0x04, new Uint8Array(n))));
        const tbs = derSequence(...head(), derTlv(0xa0, derSequence(crlNumberExt(), filler)));
        const der = derSequence(tbs, seq(oid(ECDSA)), bitString(p1363ToDer(await h.organisationCa.signer.sign(tbs))));
        if (der.length === total) return der;
        n += total - der.length;
      }
      throw new Error(`could not make a CRL of ${total} bytes`);
    };
    const max = await sized(MAX_CRL_BYTES);
    expect(parseCrl(max).der.length).toBe(MAX_CRL_BYTES);
    const over = await sized(MAX_CRL_BYTES + 1);
    const e = thrown(() => parseCrl(over));
    expect(e.code).toBe('ERR_CRL_MALFORMED');
    expect(e.context).toEqual({});
    expect(e.message).toMatch(/over 1048576 bytes/);
  });

  it('the size refusal carries no offset at all (not an undefined one)', () => {
    const e = thrown(() => parseCrl(new Uint8Array(MAX_CRL_BYTES + 1)));
    expect(e.code).toBe('ERR_CRL_MALFORMED');
    expect(Object.keys(e.context)).toEqual([]);
  });

  it('an object parseCrl did not make: ERR_INVALID_ARGUMENT with its type as detail', async () => {
    const real = parseCrl(await handCrl([...head(), crlExtensions(crlNumberExt())]));
    for (const lookAlike of [{}, { ...real }]) {
      const e = thrown(() => parseCrl(lookAlike as SmkiCrl));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.context).toEqual({ detail: 'object' });
    }
  });
});

describe('the serial index (a read-only map)', () => {
  let crl: SmkiCrl;
  beforeAll(async () => {
    crl = parseCrl(await handCrl([...head(), seq(entry(0x0a), entry(0x0b, reasonExt(4))), crlExtensions(crlNumberExt())]));
  });

  it('looks up either spelling, refuses non-strings, counts and iterates in order', () => {
    expect(crl.revoked.size).toBe(2);
    expect(crl.revoked.get('0A')?.serialNumber).toBe('0A');
    expect(crl.revoked.get('0b')?.reason).toBe('superseded');
    expect(crl.revoked.has('0a')).toBe(true);
    expect(crl.revoked.has('0C')).toBe(false);
    expect(crl.revoked.get(10 as unknown as string)).toBeUndefined();
    expect([...crl.revoked.keys()]).toEqual(['0A', '0B']);
    expect([...crl.revoked.values()].map((e) => e.serialNumber)).toEqual(['0A', '0B']);
    expect([...crl.revoked.entries()].map(([k, e]) => [k, e.serialNumber])).toEqual([
      ['0A', '0A'],
      ['0B', '0B'],
    ]);
    const seen: [string, string, boolean, unknown][] = [];
    const self = { tag: 'this' };
    crl.revoked.forEach(function (this: unknown, v, k, m) {
      seen.push([k, v.serialNumber, m === crl.revoked, this]);
    }, self);
    expect(seen).toEqual([
      ['0A', '0A', true, self],
      ['0B', '0B', true, self],
    ]);
  });
});

describe('issueCrl: what it writes and refuses (RFC 5280 §5)', () => {
  it('writes every reason it accepts, and reads each back; unspecified as no reasonCode', async () => {
    const reasons = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'aACompromise'] as const;
    const crl = await issueCrl({
      issuer: h.organisationCa,
      crlNumber: 1n,
      thisUpdate: THIS_UPDATE,
      revoked: reasons.map((reason, i) => ({ serialNumber: (0x10 + i).toString(16), revocationDate: THIS_UPDATE, reason })),
    });
    reasons.forEach((reason, i) => {
      const e = crl.revoked.get((0x10 + i).toString(16).toUpperCase());
      if (reason === 'unspecified') {
        expect(e).not.toHaveProperty('reason');
        expect(e?.extensions).toEqual([]);
      } else {
        expect(e?.reason).toBe(reason);
        expect(e?.extensions.map((x) => [x.oid, x.critical])).toEqual([[OID_REASON, false]]);
      }
    });
  });

  it.each([
    [' 0a ', '0A'],
    ['abc', '0ABC'],
    ['0000ff', '00FF'],
    ['80', '0080'],
    ['00', '00'],
    ['0', '00'],
    ['007f', '7F'],
    ['0000ab0c', '00AB0C'],
  ])('serial %j is written as the DER content octets %s', async (given, written) => {
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: given, revocationDate: THIS_UPDATE }] });
    expect([...crl.revoked.keys()]).toEqual([written]);
  });

  it.each([[''], ['   '], ['0x12'], ['12 34']])('serial %j is refused', async (given) => {
    let e: unknown;
    try {
      await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: given, revocationDate: THIS_UPDATE }] });
    } catch (err) {
      e = err;
    }
    expect(isSmkiError(e, 'ERR_ISSUE_INVALID_REQUEST'), String(e)).toBe(true);
  });

  it('the AKI is the issuer’s SKI, or method 2 of its key when it has none (RFC 5280 §5.2.1, §4.2.1.2)', async () => {
    const ca = h.organisationCa.certificate;
    const own = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE });
    expect(own.authorityKeyId).toBe(ca.subjectKeyId);
    // A CA certificate without an SKI: the same CA re-issued by hand without that extension.
    const signer = newSigner();
    const noSkiCa = await caWithoutSki(signer);
    const crl = await issueCrl({ issuer: { certificate: noSkiCa, signer }, crlNumber: 1n, thisUpdate: THIS_UPDATE });
    expect(noSkiCa.subjectKeyId).toBeUndefined();
    expect(crl.authorityKeyId).toBe(toHex(keyIdMethod2(signer.publicKey)));
  });

  it('refuses options that are not an object, and an issuer without a signer', async () => {
    for (const options of [null, undefined, 'x']) {
      await expectRejects(issueCrl(options as never), 'ERR_ISSUE_INVALID_REQUEST');
    }
    await expectRejects(issueCrl({ issuer: null as never, crlNumber: 1n }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectRejects(issueCrl({ issuer: { certificate: h.organisationCa.certificate } as never, crlNumber: 1n }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectRejects(issueCrl({ issuer: { certificate: h.organisationCa.certificate, signer: { publicKey: 'x', sign: h.organisationCa.signer.sign } } as never, crlNumber: 1n }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
  });

  it('refuses a CA certificate without cRLSign, and an end entity with cRLSign is no CA', async () => {
    await expectRejects(issueCrl({ issuer: { certificate: leaf, signer: newSigner() }, crlNumber: 1n }), 'ERR_ISSUE_ISSUER_NOT_CA');
  });

  it('validityHours: NaN, Infinity, a string and a negative number are refused with the value as detail; 0.5 h is accepted', async () => {
    for (const hours of [Number.NaN, Number.POSITIVE_INFINITY, '24', -1, 0]) {
      const e = await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, validityHours: hours as number }), 'ERR_ISSUE_INVALID_REQUEST');
      expect(e.context).toEqual({ detail: String(hours) });
    }
    const half = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, validityHours: 0.5 });
    expect(half.nextUpdate).toEqual(new Date(THIS_UPDATE.getTime() + 1_800_000));
  });

  it('nextUpdate one second after thisUpdate is accepted; equal is refused', async () => {
    const ok = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, nextUpdate: new Date(THIS_UPDATE.getTime() + 1000) });
    expect(ok.nextUpdate?.getTime()).toBe(THIS_UPDATE.getTime() + 1000);
    await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, nextUpdate: new Date(THIS_UPDATE.getTime() + 999) }), 'ERR_ISSUE_INVALID_REQUEST');
  });

  it('cRLNumber 0 and 2^159 - 1 are accepted', async () => {
    expect((await issueCrl({ issuer: h.organisationCa, crlNumber: 0n, thisUpdate: THIS_UPDATE })).crlNumber).toBe(0n);
    expect((await issueCrl({ issuer: h.organisationCa, crlNumber: (1n << 159n) - 1n, thisUpdate: THIS_UPDATE })).crlNumber).toBe((1n << 159n) - 1n);
  });

  it('an entry that is not an object, or a reason that is not a string, is refused', async () => {
    await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [null as never] }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: ['0A' as never] }), 'ERR_ISSUE_INVALID_REQUEST');
    await expectRejects(
      issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: '0A', revocationDate: THIS_UPDATE, reason: 1 as never }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
    await expectRejects(
      issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: '0A', revocationDate: THIS_UPDATE, reason: 'constructor' as never }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
  });

  it('a certificate entry in a CRL of no kind may be a CA or an end entity; a CA certificate fits an ARL', async () => {
    const all = await issueCrl({ issuer: h.root, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: h.organisationCa.certificate, revocationDate: THIS_UPDATE }] });
    expect(all.revoked.has(h.organisationCa.certificate.serialNumber)).toBe(true);
    const arl = await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl', thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: h.organisationCa.certificate, revocationDate: THIS_UPDATE }] });
    expect(arl.revoked.has(h.organisationCa.certificate.serialNumber)).toBe(true);
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl', thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: leaf, revocationDate: THIS_UPDATE }] });
    expect(crl.revoked.has(leaf.serialNumber)).toBe(true);
  });

  it('a cRLNumber whose first octet has its top bit set gets one leading 00 octet, and only then (X.690 §8.3.2)', async () => {
    const crlNumberValue = (crl: SmkiCrl): string => toHex(crl.extensions.find((x) => x.oid === OID_CRL_NUMBER)?.value ?? new Uint8Array(0));
    for (const [n, value] of [
      [0x7fn, '02017F'],
      [0x80n, '02020080'],
      [0x180n, '02020180'], // the whole value 0x0180 has bit 7 set; its first octet 01 does not
      [0x8000n, '0203008000'],
    ] as const) {
      const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: n, thisUpdate: THIS_UPDATE });
      expect(crlNumberValue(crl)).toBe(value);
      expect(crl.crlNumber).toBe(n);
    }
  });

  it('a function is neither an issuer nor an entry, whatever properties it carries', async () => {
    const fnIssuer = Object.assign(() => undefined, { certificate: h.organisationCa.certificate, signer: h.organisationCa.signer });
    await expectRejects(issueCrl({ issuer: fnIssuer, crlNumber: 1n, thisUpdate: THIS_UPDATE }), 'ERR_ISSUE_INVALID_REQUEST');
    const fnEntry = Object.assign(() => undefined, { serialNumber: '0A', revocationDate: THIS_UPDATE });
    await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [fnEntry] }), 'ERR_ISSUE_INVALID_REQUEST');
    // The control: the same properties in plain objects are accepted.
    const ok = await issueCrl({ issuer: { ...fnIssuer }, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ ...fnEntry }] });
    expect(ok.revoked.has('0A')).toBe(true);
  });

  it('a CA certificate without cRLSign, and an end entity with cRLSign, are refused with the subject as detail (RFC 5280 §4.2.1.3, §4.2.1.9)', async () => {
    const kuTo = (names: Parameters<typeof keyUsageValue>[0]) => (e: ExtensionTemplate): ExtensionTemplate => (e.oid === OID_KEY_USAGE ? { ...e, value: keyUsageValue(names) } : e);
    // The control: the hand-made CA with both is accepted.
    const s0 = newSigner();
    const both = await remadeOca(s0.publicKey, (x) => x, 0x20);
    expect((await issueCrl({ issuer: { certificate: both, signer: s0 }, crlNumber: 1n, thisUpdate: THIS_UPDATE })).revoked.size).toBe(0);
    const s1 = newSigner();
    const noCrlSign = await remadeOca(s1.publicKey, (x) => x.map(kuTo(['keyCertSign'])), 0x21);
    expect(noCrlSign.basicConstraints?.ca).toBe(true);
    expect(noCrlSign.keyUsage).not.toContain('cRLSign');
    const s2 = newSigner();
    const endEntity = await remadeOca(s2.publicKey, (x) => x.filter((e) => e.oid !== OID_BASIC_CONSTRAINTS).map(kuTo(['digitalSignature', 'cRLSign'])), 0x22);
    expect(endEntity.basicConstraints).toBeUndefined();
    expect(endEntity.keyUsage).toContain('cRLSign');
    const s3 = newSigner();
    const notCa = await remadeOca(s3.publicKey, (x) => x.map((e) => (e.oid === OID_BASIC_CONSTRAINTS ? { ...e, value: seq() } : e)), 0x23); // cA FALSE (DEFAULT, omitted)
    expect(notCa.basicConstraints?.ca).toBe(false);
    expect(notCa.keyUsage).toContain('cRLSign');
    for (const [certificate, signer] of [
      [noCrlSign, s1],
      [endEntity, s2],
      [notCa, s3],
    ] as const) {
      const e = await expectRejects(issueCrl({ issuer: { certificate, signer }, crlNumber: 1n, thisUpdate: THIS_UPDATE }), 'ERR_ISSUE_ISSUER_NOT_CA');
      expect(e.context).toEqual({ detail: certificate.subject.text });
    }
  });

  it("a signer whose key is another key's is refused before it is asked to sign, with the subject as detail", async () => {
    const other = newSigner();
    const sign = vi.fn((m: Uint8Array) => other.sign(m));
    const e = await expectRejects(issueCrl({ issuer: { certificate: h.organisationCa.certificate, signer: { publicKey: other.publicKey, sign } }, crlNumber: 1n, thisUpdate: THIS_UPDATE }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    expect(sign).not.toHaveBeenCalled();
    expect(e.context).toEqual({ detail: h.organisationCa.certificate.subject.text });
  });

  it('an issuer certificate whose key is not a usable P-256 point is refused before signing, even by a signer claiming those bytes', async () => {
    const point = Uint8Array.of(0x04, ...new Uint8Array(64).fill(1)); // not on the curve
    const ca = await remadeOca(point, (x) => x, 0x24);
    expect(ca.publicKey).toBeUndefined();
    expect(toHex(ca.publicKeyBytes)).toBe(toHex(point));
    const sign = vi.fn(async () => new Uint8Array(64).fill(1));
    const e = await expectRejects(issueCrl({ issuer: { certificate: ca, signer: { publicKey: point.slice(), sign } }, crlNumber: 1n, thisUpdate: THIS_UPDATE }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    expect(sign).not.toHaveBeenCalled();
    expect(e.context).toEqual({ detail: ca.subject.text });
  });

  it("a signer that claims the CA's key but signs with another is caught after signing, with the subject as detail", async () => {
    const other = newSigner();
    const sign = vi.fn((m: Uint8Array) => other.sign(m));
    const liar: Signer = { publicKey: h.organisationCa.signer.publicKey, sign };
    const e = await expectRejects(issueCrl({ issuer: { certificate: h.organisationCa.certificate, signer: liar }, crlNumber: 1n, thisUpdate: THIS_UPDATE }), 'ERR_ISSUE_ISSUER_KEY_MISMATCH');
    expect(sign).toHaveBeenCalledTimes(1);
    expect(e.context).toEqual({ detail: h.organisationCa.certificate.subject.text });
  });

  it('the AKI is the SKI the issuer certificate carries, even one that is not method 2 of its key (RFC 5280 §5.2.1)', async () => {
    const signer = newSigner();
    const ski = new Uint8Array(20).fill(0x5a);
    const ca = await remadeOca(signer.publicKey, (x) => x.map((e) => (e.oid === OID_SKI ? { ...e, value: octets(ski) } : e)), 0x25);
    expect(ca.subjectKeyId).toBe(toHex(ski));
    expect(toHex(keyIdMethod2(signer.publicKey))).not.toBe(toHex(ski));
    const crl = await issueCrl({ issuer: { certificate: ca, signer }, crlNumber: 1n, thisUpdate: THIS_UPDATE });
    expect(crl.authorityKeyId).toBe(toHex(ski));
  });

  it('no entries: the revokedCertificates field is absent, not an empty SEQUENCE (RFC 5280 §5.1.2.6)', async () => {
    const topTags = (der: Uint8Array): number[] => {
      const r = tlvReader(der, readTlv(new ByteReader(der)));
      const tags: number[] = [];
      while (!r.done) tags.push(readTlv(r).tag);
      return tags;
    };
    const empty = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [] });
    // version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions
    expect(topTags(empty.tbsDer)).toEqual([0x02, 0x30, 0x30, 0x17, 0x17, 0xa0]);
    const one = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: '0A', revocationDate: THIS_UPDATE }] });
    expect(topTags(one.tbsDer)).toEqual([0x02, 0x30, 0x30, 0x17, 0x17, 0x30, 0xa0]);
  });

  it(`the size bound leaves 128 bytes for the signature: a tbsCertList of ${MAX_CRL_BYTES} - 128 bytes is signed, one byte more is refused with the entry count`, async () => {
    // Serials of `octets` octets starting 01 (top bit clear, kept as given). An entry with a
    // 20-octet serial is SEQUENCE { INTEGER (2 + 20), UTCTime (2 + 13) }: 39 bytes; with an
    // n-octet serial (n < 59) it is n + 19 bytes.
    const serial = (i: number, octetCount: number): string => `01${i.toString(16).padStart(2 * octetCount - 2, '0')}`;
    const entries = (count: number, lastOctets: number) =>
      Array.from({ length: count }, (_, i) => ({ serialNumber: serial(i, i === count - 1 ? lastOctets : 20), revocationDate: THIS_UPDATE }));
    const issue = (count: number, lastOctets: number) => issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: entries(count, lastOctets) });
    // Measured with enough entries that the revoked list's and the tbsCertList's lengths already
    // take the same number of octets as at the bound.
    const n0 = 2000;
    const base = (await issue(n0, 20)).tbsDer.length;
    const gap = MAX_CRL_BYTES - 128 - base;
    const k = Math.floor(gap / 39) - 1; // k more 20-octet entries, then one last entry of 39..77 bytes
    const lastOctets = gap - 39 * k - 19;
    const count = n0 + k + 1;
    expect(lastOctets).toBeGreaterThanOrEqual(20);
    expect(lastOctets).toBeLessThan(59);
    const exact = await issue(count, lastOctets);
    expect(exact.tbsDer.length).toBe(MAX_CRL_BYTES - 128);
    expect(exact.revoked.size).toBe(count);
    expect(exact.der.length).toBeLessThanOrEqual(MAX_CRL_BYTES);
    const e = await expectRejects(issue(count, lastOctets + 1), 'ERR_ISSUE_INVALID_REQUEST');
    expect(e.context).toEqual({ detail: `${count} entries` });
  });

  it('a serial that is not hex is refused with the reader error as cause and no detail', async () => {
    for (const [given, causeCode] of [
      ['', 'ERR_INVALID_ARGUMENT'],
      ['xyz', 'ERR_HEX_INVALID'],
    ] as const) {
      const e = await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: given, revocationDate: THIS_UPDATE }] }), 'ERR_ISSUE_INVALID_REQUEST');
      expect(isSmkiError(e.cause, causeCode), String(e.cause)).toBe(true);
      expect(Object.keys(e.context)).toEqual([]);
    }
  });

  it('a refusal without a detail carries no detail key at all', async () => {
    const e = await expectRejects(issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, nextUpdate: THIS_UPDATE }), 'ERR_ISSUE_INVALID_REQUEST');
    expect(Object.keys(e.context)).toEqual([]);
  });

  it('an invalid time is refused naming the field it is in', async () => {
    const base = { issuer: h.organisationCa, crlNumber: 1n } as const;
    const bad = new Date(Number.NaN);
    for (const [options, field] of [
      [{ ...base, thisUpdate: bad }, /^thisUpdate /],
      [{ ...base, now: () => bad }, /^thisUpdate /],
      [{ ...base, thisUpdate: THIS_UPDATE, nextUpdate: bad }, /^nextUpdate /],
      // thisUpdate + 10^12 hours is past the last instant a Date holds
      [{ ...base, thisUpdate: THIS_UPDATE, validityHours: 1e12 }, /^nextUpdate /],
      [{ ...base, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: '0A', revocationDate: THIS_UPDATE }, { serialNumber: '0B', revocationDate: bad }] }, /^revoked\[1\]\.revocationDate /],
    ] as const) {
      const e = await expectRejects(issueCrl(options), 'ERR_ISSUE_INVALID_REQUEST');
      expect(e.message).toMatch(field);
    }
  });

  it('an unknown reason is refused with its first 40 characters as detail', async () => {
    const reason = `${'r'.repeat(40)}${'s'.repeat(20)}`;
    const e = await expectRejects(
      issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [{ serialNumber: '0A', revocationDate: THIS_UPDATE, reason: reason as never }] }),
      'ERR_ISSUE_INVALID_REQUEST',
    );
    expect(e.context).toEqual({ detail: 'r'.repeat(40) });
  });
});

async function expectRejects(p: Promise<unknown>, code: string): Promise<SmkiError> {
  let e: unknown;
  try {
    await p;
  } catch (err) {
    e = err;
  }
  expect(isSmkiError(e), String(e)).toBe(true);
  expect((e as SmkiError).code).toBe(code);
  return e as SmkiError;
}

/**
 * The organisation CA's certificate re-made by hand for the key `point` (written as given, not
 * checked), signed by the root, with its extensions passed through `edit`; `serial` is the first octet of its serial.
 */
async function remadeOca(point: Uint8Array, edit: (extensions: ExtensionTemplate[]) => ExtensionTemplate[], serial: number): Promise<SmkiCertificate> {
  const oca = h.organisationCa.certificate;
  const der = await buildCertificate(
    {
      serialNumber: Uint8Array.of(serial, ...new Uint8Array(15).fill(3)),
      tbsSignatureAlgorithm: ECDSA_WITH_SHA256,
      signatureAlgorithm: ECDSA_WITH_SHA256,
      issuer: { der: oca.issuer.der },
      notBefore: rfc5280Time(oca.notBefore),
      notAfter: rfc5280Time(oca.notAfter),
      subject: { der: oca.subject.der },
      subjectPublicKey: { point },
      extensions: edit(oca.extensions.map((e) => ({ oid: e.oid, critical: e.critical, value: e.value }))),
    },
    h.root.signer,
  );
  return parseCertificate(der);
}

/** The organisation CA's certificate re-made for `signer`'s key, signed by the root, without an SKI. */
function caWithoutSki(signer: Signer): Promise<SmkiCertificate> {
  return remadeOca(signer.publicKey, (extensions) => extensions.filter((e) => e.oid !== '2.5.29.14'), 0x12);
}

describe('issueCrl reads each field of an entry once', () => {
  it('a reason getter that answers a known reason first and then another value cannot smuggle it past the check', async () => {
    let reads = 0;
    const entry = {
      serialNumber: '0A',
      revocationDate: THIS_UPDATE,
      get reason() {
        reads++;
        return (reads === 1 ? 'keyCompromise' : 'constructor') as 'keyCompromise';
      },
    };
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [entry] });
    expect(reads).toBe(1);
    expect(crl.revoked.get('0A')?.reason).toBe('keyCompromise');
  });

  it('a serialNumber getter is read once: the serial checked is the serial written', async () => {
    let reads = 0;
    const entry = {
      get serialNumber() {
        reads++;
        return reads === 1 ? '0A' : 'zz';
      },
      revocationDate: THIS_UPDATE,
    };
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, thisUpdate: THIS_UPDATE, revoked: [entry] });
    expect(reads).toBe(1);
    expect(crl.revoked.has('0A')).toBe(true);
  });
});
