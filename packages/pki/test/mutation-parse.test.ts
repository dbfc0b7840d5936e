// parseCertificate: the cases mutation testing (StrykerJS, `pnpm run mutation pki/parse`) found
// untested. Each case changes one field of an otherwise ordinary certificate and checks the parsed
// view (RFC 5280 §4.1 fields, §4.1.2.8 unique identifiers, §4.2 extensions; RFC 5480 §2.1.1
// subjectPublicKeyInfo; RFC 4108 §5 hardwareModuleName; X.520 x500UniqueIdentifier) or the exact
// error (ERR_CERT_MALFORMED with its offset and context).
import { sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSmkiError, type SmkiError } from '@smki/core';
import { MAX_CERTIFICATE_BYTES, parseCertificate, toCertificate } from '../src/parse.js';
import type { SmkiCertificate } from '../src/types.js';
import {
  akiExt,
  bcExt,
  bitString,
  ctx,
  extension,
  hmnSanExt,
  int,
  keyId,
  kuExt,
  name,
  newKeyPair,
  octets,
  oid,
  OIDS,
  policiesExt,
  rawPoint,
  seq,
  set,
  skiExt,
  time,
  tlv,
  utf8,
  type KuName,
} from './_x509-builder.js';

const ISSUER_KEY = newKeyPair();
const SUBJECT_KEY = newKeyPair();
const ISSUER = name([{ type: 'OU', value: '07', encoding: 'printable' }, { type: 'CN', value: 'Z1', encoding: 'printable' }]);
const EUI_UID = '90B3D51F30010000';
const EUI_HMN = '00DB1234567890A0';
const P256_SPKI = (point: Uint8Array = rawPoint(SUBJECT_KEY.publicKey), unused = 0): Uint8Array =>
  seq(seq(oid(OIDS.ecPublicKey), oid(OIDS.p256)), bitString(point, unused));
const ALG = seq(oid(OIDS.ecdsaSha256));
const SERIAL = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x11 : i));

interface Parts {
  readonly subject?: Uint8Array;
  readonly spki?: Uint8Array;
  /** TLVs between subjectPublicKeyInfo and extensions (issuerUniqueID, subjectUniqueID). */
  readonly uniqueIds?: readonly Uint8Array[];
  readonly extensions?: readonly Uint8Array[];
  /** The signature BIT STRING's unused-bits octet. */
  readonly signatureUnusedBits?: number;
}

/** A v3 certificate under ISSUER, signed with ISSUER_KEY. */
function cert(p: Parts = {}): Uint8Array {
  const tbs = seq(
    ctx(0, false, int(2)),
    int(SERIAL),
    ALG,
    ISSUER,
    seq(time(new Date(Date.UTC(2024, 0, 1))), time(new Date(Date.UTC(2034, 0, 1)))),
    p.subject ?? seq(),
    p.spki ?? P256_SPKI(),
    ...(p.uniqueIds ?? []),
    ...(p.extensions !== undefined && p.extensions.length > 0 ? [ctx(3, false, seq(...p.extensions))] : []),
  );
  return seq(tbs, ALG, bitString(sign('sha256', tbs, ISSUER_KEY.privateKey), p.signatureUnusedBits ?? 0));
}

const orgSubject = (ou = '02'): Uint8Array => name([{ type: 'CN', value: 'Supplier' }, { type: 'OU', value: ou }, { type: 'UID', eui: EUI_UID }]);
const eeExtensions = (usage: KuName = 'digitalSignature'): Uint8Array[] => [
  skiExt(keyId(SUBJECT_KEY.publicKey)),
  akiExt(keyId(ISSUER_KEY.publicKey)),
  kuExt([usage]),
  policiesExt([OIDS.orgPolicy]),
];
/** A subjectAltName of the given GeneralNames. */
const sanExt = (...names: Uint8Array[]): Uint8Array => extension(OIDS.san, true, seq(...names));
/** GeneralName otherName hardwareModuleName (RFC 4108 §5). */
const hmnName = (serialHex: string): Uint8Array => ctx(0, false, oid(OIDS.hmn), ctx(0, false, seq(oid(OIDS.hwType), octets(Buffer.from(serialHex, 'hex')))));
const dnsName = (s: string): Uint8Array => tlv(0x82, Buffer.from(s, 'latin1'));

function thrown(fn: () => unknown): SmkiError {
  try {
    fn();
  } catch (e) {
    expect(isSmkiError(e), String(e)).toBe(true);
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}

describe('subjectPublicKeyInfo: a KeyObject only for id-ecPublicKey on P-256 with an uncompressed point (RFC 5480 §2.1.1, §2.2)', () => {
  it('the control: an ordinary P-256 key gives a KeyObject', () => {
    const c = parseCertificate(cert());
    expect(c.publicKey?.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(c.details.publicKeyCurve).toBe(OIDS.p256);
  });

  it('another algorithm OID with P-256 parameters and a valid point: no key', () => {
    const spki = seq(seq(oid('1.3.132.1.12'), oid(OIDS.p256)), bitString(rawPoint(SUBJECT_KEY.publicKey)));
    const c = parseCertificate(cert({ spki }));
    expect(c.details.publicKeyAlgorithm).toBe('1.3.132.1.12');
    expect(c.publicKey).toBeUndefined();
  });

  it('another named curve (secp256k1) around a valid P-256 point: no key', () => {
    const spki = seq(seq(oid(OIDS.ecPublicKey), oid('1.3.132.0.10')), bitString(rawPoint(SUBJECT_KEY.publicKey)));
    const c = parseCertificate(cert({ spki }));
    expect(c.details.publicKeyCurve).toBe('1.3.132.0.10');
    expect(c.publicKey).toBeUndefined();
  });

  it('a key BIT STRING with unused bits: no key', () => {
    const c = parseCertificate(cert({ spki: P256_SPKI(rawPoint(SUBJECT_KEY.publicKey), 1) }));
    expect(c.publicKeyBytes).toEqual(rawPoint(SUBJECT_KEY.publicKey));
    expect(c.publicKey).toBeUndefined();
  });

  it('an algorithm without parameters has no publicKeyCurve property at all', () => {
    const spki = seq(seq(oid('1.3.101.112')), bitString(new Uint8Array(32).fill(7)));
    const c = parseCertificate(cert({ spki }));
    expect(c.details).not.toHaveProperty('publicKeyCurve');
    expect(c.publicKey).toBeUndefined();
  });
});

describe('kind: what the content says (root, issuing CA, organisation, device, unknown)', () => {
  it('keyCertSign without cA is unknown, even with a hardwareModuleName or an organisation subject', () => {
    const device = parseCertificate(cert({ extensions: [hmnSanExt(EUI_HMN), kuExt(['keyAgreement', 'keyCertSign'])] }));
    expect(device.kind).toBe('unknown');
    const org = parseCertificate(cert({ subject: orgSubject(), extensions: [kuExt(['digitalSignature', 'keyCertSign'])] }));
    expect(org.kind).toBe('unknown');
  });

  it('a hardwareModuleName makes a device even when the subject is not empty', () => {
    const c = parseCertificate(cert({ subject: name([{ type: 'CN', value: 'meter' }]), extensions: [hmnSanExt(EUI_HMN), kuExt(['keyAgreement'])] }));
    expect(c.kind).toBe('device');
    expect(c.entityId).toBe(EUI_HMN);
  });

  it('an empty subject without a subjectAltName is a device (with no entity id)', () => {
    const c = parseCertificate(cert({ extensions: [kuExt(['keyAgreement'])] }));
    expect(c.kind).toBe('device');
    expect(c).not.toHaveProperty('entityId');
    expect(c).not.toHaveProperty('hardwareModuleName');
  });

  it('a subject with only an OU, or only an x500UniqueIdentifier, is an organisation', () => {
    expect(parseCertificate(cert({ subject: name([{ type: 'OU', value: '02' }]) })).kind).toBe('organisation');
    const uidOnly = parseCertificate(cert({ subject: name([{ type: 'UID', eui: EUI_UID }]) }));
    expect(uidOnly.kind).toBe('organisation');
    expect(uidOnly.entityId).toBe(EUI_UID);
  });

  it('a subject with only a CN is unknown', () => {
    expect(parseCertificate(cert({ subject: name([{ type: 'CN', value: 'nobody' }]) })).kind).toBe('unknown');
  });

  it('a cA certificate whose issuer name differs from its subject is an issuing CA; equal names make a root', () => {
    const ca = parseCertificate(cert({ subject: name([{ type: 'CN', value: 'E357' }]), extensions: [bcExt(true, 0), kuExt(['keyCertSign', 'cRLSign'])] }));
    expect(ca.kind).toBe('issuingCa');
    const root = parseCertificate(cert({ subject: ISSUER, extensions: [bcExt(true), kuExt(['keyCertSign', 'cRLSign'])] }));
    expect(root.kind).toBe('root');
  });
});

describe('entity id: the hardwareModuleName of a device, else the x500UniqueIdentifier of 64 bits', () => {
  it('a CA with both takes the x500UniqueIdentifier (the hwSerialNum counts only for a device)', () => {
    const c = parseCertificate(
      cert({ subject: name([{ type: 'OU', value: '07' }, { type: 'UID', eui: EUI_UID }]), extensions: [bcExt(true, 0), kuExt(['keyCertSign', 'cRLSign']), hmnSanExt(EUI_HMN)] }),
    );
    expect(c.kind).toBe('issuingCa');
    expect(c.hardwareModuleName?.hwSerialNum).toBe(EUI_HMN);
    expect(c.entityId).toBe(EUI_UID);
  });

  it('a device whose hwSerialNum is 7 octets has no entity id', () => {
    const c = parseCertificate(cert({ extensions: [hmnSanExt('00DB1234567890'), kuExt(['keyAgreement'])] }));
    expect(c.kind).toBe('device');
    expect(c.hardwareModuleName?.hwSerialNum).toBe('00DB1234567890');
    expect(c).not.toHaveProperty('entityId');
  });

  it('an x500UniqueIdentifier of 63 bits, or as an OCTET STRING, gives no entity id', () => {
    const bits63 = seq(set(seq(oid(OIDS.uid), bitString(Buffer.from(EUI_UID, 'hex'), 1))), set(seq(oid(OIDS.ou), utf8('02'))));
    const c63 = parseCertificate(cert({ subject: bits63 }));
    expect(c63.kind).toBe('organisation');
    expect(c63.subject.attributes[0]?.bitLength).toBe(63);
    expect(c63).not.toHaveProperty('entityId');
    const asOctets = seq(set(seq(oid(OIDS.uid), octets(Buffer.from(EUI_UID, 'hex')))), set(seq(oid(OIDS.ou), utf8('02'))));
    const co = parseCertificate(cert({ subject: asOctets }));
    expect(co.kind).toBe('organisation');
    expect(co).not.toHaveProperty('entityId');
  });
});

describe('subjectAltName (RFC 5280 §4.2.1.6; RFC 4108 §5)', () => {
  it('other general names beside the hardwareModuleName are counted, not read as one', () => {
    const c = parseCertificate(cert({ extensions: [sanExt(dnsName('meter.invalid'), hmnName(EUI_HMN)), kuExt(['keyAgreement'])] }));
    expect(c.details.extensionErrors).toEqual([]);
    expect(c.details.subjectAltName).toEqual({ names: 2, hardwareModuleNames: 1 });
    expect(c.hardwareModuleName).toEqual({ hwType: OIDS.hwType, hwSerialNum: EUI_HMN });
  });

  it('with two hardwareModuleNames the first one is the certificate’s', () => {
    const c = parseCertificate(cert({ extensions: [sanExt(hmnName(EUI_HMN), hmnName('00DB000000000001')), kuExt(['keyAgreement'])] }));
    expect(c.details.subjectAltName).toEqual({ names: 2, hardwareModuleNames: 2 });
    expect(c.hardwareModuleName?.hwSerialNum).toBe(EUI_HMN);
    expect(c.entityId).toBe(EUI_HMN);
  });

  it('a subjectAltName of only a dNSName: one name, no hardwareModuleName', () => {
    const c = parseCertificate(cert({ extensions: [sanExt(dnsName('meter.invalid')), kuExt(['keyAgreement'])] }));
    expect(c.details.subjectAltName).toEqual({ names: 1, hardwareModuleNames: 0 });
    expect(c).not.toHaveProperty('hardwareModuleName');
    expect(c.details.extensionErrors).toEqual([]);
  });
});

describe('issuerUniqueID and subjectUniqueID (RFC 5280 §4.1.2.8) are skipped', () => {
  it.each([
    ['issuerUniqueID [1] primitive', 0x81],
    ['subjectUniqueID [2] primitive', 0x82],
    ['issuerUniqueID [1] constructed', 0xa1],
    ['subjectUniqueID [2] constructed', 0xa2],
  ])('%s', (_label, tag) => {
    const id = (tag & 0x20) !== 0 ? tlv(tag, bitString(Uint8Array.of(1, 2))) : tlv(tag, Uint8Array.of(0, 1, 2));
    const c = parseCertificate(cert({ subject: orgSubject(), uniqueIds: [id], extensions: eeExtensions() }));
    expect(c.kind).toBe('organisation');
    expect(c.keyUsage).toEqual(['digitalSignature']);
    expect(c.extensions.map((e) => e.oid)).toEqual([OIDS.ski, OIDS.aki, OIDS.keyUsage, OIDS.policies]);
  });

  it('any other context tag there is refused at its offset', () => {
    const der = cert({ subject: orgSubject(), uniqueIds: [tlv(0x84, Uint8Array.of(0))], extensions: eeExtensions() });
    const e = thrown(() => parseCertificate(der));
    expect(e.code).toBe('ERR_CERT_MALFORMED');
    const offset = (e.context as { offset: number }).offset;
    expect(der[offset]).toBe(0x84);
  });
});

describe('the outer structure (RFC 5280 §4.1.1)', () => {
  it('a top-level element that is not a SEQUENCE is refused at offset 0', () => {
    const inner = cert();
    const asSet = new Uint8Array(inner);
    asSet[0] = 0x31;
    const e = thrown(() => parseCertificate(asSet));
    expect(e.code).toBe('ERR_CERT_MALFORMED');
    expect(e.context).toEqual({ offset: 0 });
    expect((e.cause as SmkiError).code).toBe('ERR_DER_INVALID');
  });

  it('a signature BIT STRING with unused bits is refused at the BIT STRING', () => {
    const der = cert({ signatureUnusedBits: 1 });
    const e = thrown(() => parseCertificate(der));
    expect(e.code).toBe('ERR_CERT_MALFORMED');
    const offset = (e.context as { offset: number }).offset;
    expect(der[offset]).toBe(0x03);
    expect(offset).toBeGreaterThan(der.length - 80);
    expect((e.cause as SmkiError).code).toBe('ERR_DER_INVALID');
    expect((e.cause as SmkiError).context).toEqual({ offset });
  });

  it('an extension with critical FALSE written out is refused at the Extension (X.690 §11.5)', () => {
    const ext = seq(oid('1.2.3.4'), tlv(0x01, Uint8Array.of(0)), octets(Uint8Array.of(5, 0)));
    const der = cert({ subject: orgSubject(), extensions: [...eeExtensions(), ext] });
    const e = thrown(() => parseCertificate(der));
    expect(e.code).toBe('ERR_CERT_MALFORMED');
    const offset = Buffer.from(der).indexOf(Buffer.from(ext));
    expect(e.context).toEqual({ offset });
    expect((e.cause as SmkiError).code).toBe('ERR_DER_INVALID');
  });

  it('what is neither text nor bytes is refused with its type as detail, and nothing parsed', () => {
    for (const [input, detail] of [
      [42, 'number'],
      [{}, 'object'],
      [new ArrayBuffer(8), 'object'],
    ] as const) {
      const e = thrown(() => parseCertificate(input as unknown as Uint8Array));
      expect(e.code).toBe('ERR_CERT_MALFORMED');
      expect(e.context).toEqual({ detail });
      expect(e.cause).toBeUndefined();
    }
    const look = thrown(() => toCertificate({ kind: 'root' } as unknown as SmkiCertificate));
    expect(look.code).toBe('ERR_INVALID_ARGUMENT');
    expect(look.context).toEqual({ detail: 'object' });
  });

  it(`exactly ${MAX_CERTIFICATE_BYTES} bytes parses; one byte more is refused by size, with the size as detail`, () => {
    const filler = (n: number): Uint8Array => extension('1.2.3.4', false, new Uint8Array(n));
    const sized = (total: number): Uint8Array => {
      // Grow a non-critical private extension until the certificate has the wanted size (the
      // signature's length varies by a byte or two, so a few rounds may be needed).
      let n = total - 1000;
      for (let round = 0; round < 64; round++) {
        const der = cert({ subject: orgSubject(), extensions: [...eeExtensions(), filler(n)] });
        if (der.length === total) return der;
        n += total - der.length;
      }
      throw new Error(`could not make a certificate of ${total} bytes`);
    };
    const max = sized(MAX_CERTIFICATE_BYTES);
    const c = parseCertificate(max);
    expect(c.der.length).toBe(MAX_CERTIFICATE_BYTES);
    expect(c.kind).toBe('organisation');
    const over = sized(MAX_CERTIFICATE_BYTES + 1);
    const e = thrown(() => parseCertificate(over));
    expect(e.code).toBe('ERR_CERT_MALFORMED');
    expect(e.context).toEqual({ detail: `${MAX_CERTIFICATE_BYTES + 1} bytes` });
    expect(e.cause).toBeUndefined();
  });
});

describe('optional fields are absent, not undefined, when the certificate has none', () => {
  it('a bare certificate (empty subject, no extensions) has none of the optional properties', () => {
    const c = parseCertificate(cert());
    for (const p of ['role', 'entityId', 'subjectKeyId', 'authorityKeyId', 'commonName', 'basicConstraints', 'hardwareModuleName']) {
      expect(c, p).not.toHaveProperty(p);
    }
    for (const p of ['authorityKeyIdFields', 'subjectAltName', 'ou', 'roleSpelling']) {
      expect(c.details, p).not.toHaveProperty(p);
    }
    expect(c.details.extensionErrors).toEqual([]);
    expect(c.keyUsage).toEqual([]);
    expect(c.policies).toEqual([]);
  });

  it('the view’s properties are all enumerable, the key and the dates included', () => {
    const c = parseCertificate(cert({ subject: orgSubject(), extensions: eeExtensions() }));
    expect(Object.keys(c)).toEqual(expect.arrayContaining(['publicKey', 'notBefore', 'notAfter', 'kind', 'der']));
    const copy = { ...c };
    expect(copy.publicKey).toBe(c.publicKey);
    expect(copy.notAfter).toEqual(c.notAfter);
  });

  it('an organisation certificate has each of them', () => {
    const c = parseCertificate(cert({ subject: orgSubject(), extensions: eeExtensions() }));
    expect(c.role).toBe(2);
    expect(c.entityId).toBe(EUI_UID);
    expect(c.commonName).toBe('Supplier');
    expect(c.subjectKeyId).toBe(Buffer.from(keyId(SUBJECT_KEY.publicKey)).toString('hex').toUpperCase());
    expect(c.authorityKeyId).toBe(Buffer.from(keyId(ISSUER_KEY.publicKey)).toString('hex').toUpperCase());
    expect(c.details.authorityKeyIdFields).toEqual({ keyIdentifier: true, issuer: false, serial: false });
    expect(c.details.ou).toBe('02');
    expect(c.details.roleSpelling).toBe('canonical');
  });
});
