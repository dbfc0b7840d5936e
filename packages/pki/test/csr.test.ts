// RFC 2986 §4 (PKCS#10 CertificationRequest), RFC 2985 §5.4.2 (extensionRequest), docs/domain.md §2
// (organisation subject, P-256 only). parseCsr must verify proof of possession and turn every
// malformed input into ERR_CSR_MALFORMED, never another exception.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { Attribute, Extension, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { createKeySigner, p1363ToDer, SmkiError, type Signer, type SmkiErrorCode } from '@smki/core';
import { createCsr, MAX_CSR_BYTES, parseCsr } from '../src/csr.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

function newSigner(): Signer & { privateKey: KeyObject; publicKeyObject: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return Object.assign(createKeySigner(privateKey), { privateKey, publicKeyObject: publicKey });
}

function code(fn: () => unknown): SmkiErrorCode | 'returned' | 'foreign exception' {
  try {
    fn();
    return 'returned';
  } catch (e) {
    return e instanceof SmkiError ? e.code : 'foreign exception';
  }
}

async function rejection(p: Promise<unknown>): Promise<SmkiErrorCode | 'resolved' | 'foreign exception'> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    return e instanceof SmkiError ? e.code : 'foreign exception';
  }
}

const pem = (der: Uint8Array, label = 'CERTIFICATE REQUEST'): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g)?.join('\n')}\n-----END ${label}-----\n`;

function derLen(n: number): Buffer {
  return n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
}
const tlv = (tag: number, ...parts: (Uint8Array | Buffer)[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
};

/** Sign raw certificationRequestInfo bytes into a CSR (so any CRI can be tested). */
function signCri(criDer: Uint8Array, key: KeyObject, alg = '300A06082A8648CE3D040302'): Uint8Array {
  const sig = p1363ToDer(new Uint8Array(nodeSign('sha256', criDer, { key, dsaEncoding: 'ieee-p1363' })));
  return new Uint8Array(tlv(0x30, criDer, Buffer.from(alg, 'hex'), tlv(0x03, Buffer.from([0]), sig)));
}

/** A CRI built with asn1-csr from parts. */
function cri(s: { publicKeyObject: KeyObject }, opts: { subject?: Uint8Array; extensions?: { oid: string; critical?: boolean; value: Uint8Array }[]; extraAttributes?: Attribute[]; version?: number } = {}): Uint8Array {
  const attrs = new Attributes([]);
  if (opts.extensions) {
    const exts = new Extensions(opts.extensions.map((e) => new Extension({ extnID: e.oid, critical: e.critical ?? false, extnValue: new OctetString(e.value) })));
    attrs.push(new Attribute({ type: '1.2.840.113549.1.9.14', values: [AsnConvert.serialize(exts)] }));
  }
  attrs.push(...(opts.extraAttributes ?? []));
  return new Uint8Array(
    AsnConvert.serialize(
      new CertificationRequestInfo({
        version: opts.version ?? 0,
        subject: AsnConvert.parse(opts.subject ?? Uint8Array.of(0x30, 0), Name),
        subjectPKInfo: AsnConvert.parse(s.publicKeyObject.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo),
        attributes: attrs,
      }),
    ),
  );
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'smki-csr-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[], input?: Uint8Array | string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
/** `openssl req -verify` on a DER request: exit 0 and "verify OK" (printed on stderr by OpenSSL 3). */
function opensslVerify(path: string, extra: string[] = []): string {
  const r = spawnSync('openssl', ['req', '-inform', 'DER', '-in', path, '-verify', '-noout', ...extra], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(`${r.stdout}${r.stderr}`).toMatch(/verify OK/i);
  return r.stdout;
}
function file(name: string, data: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

describe('createCsr (RFC 2986 §4)', () => {
  it('makes a request OpenSSL verifies (openssl req -verify), with the SMKI organisation subject', async () => {
    const s = newSigner();
    const der = await createCsr({ signer: s, subject: { commonName: 'Supplier Ltd', role: 2, entityId: '90-B3-D5-1F-30-01-00-00' }, keyUsage: 'digitalSignature' });
    const out = opensslVerify(file('org.csr', der), ['-text']);
    expect(out).toMatch(/Subject: CN ?= ?Supplier Ltd, OU ?= ?02, x500UniqueIdentifier ?= ?#03090090B3D51F30010000/);
    expect(out).toMatch(/Requested Extensions:\s+X509v3 Key Usage: critical\s+Digital Signature/);
    expect(out).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
  });

  it('writes exactly the expected CRI: v1, subject encodings, SPKI, extensionRequest, ecdsa-with-SHA256 without parameters', async () => {
    const s = newSigner();
    const der = await createCsr({ signer: s, subject: { role: 127, entityId: '0000000000000001' }, keyUsage: 'keyAgreement' });
    const h = hex(der);
    // subject: OU PrintableString "7F", x500UniqueIdentifier BIT STRING 64 bits (docs/domain.md §2)
    expect(h).toContain('3021310B3009060355040B13023746' + '31123010060355042D0309000000000000000001');
    expect(h).toContain('3059301306072A8648CE3D020106082A8648CE3D030107034200' + hex(s.publicKey));
    // [0] { extensionRequest { SEQUENCE { keyUsage critical 03020308 } } }
    expect(h).toContain('A021301F06092A864886F70D01090E31123010300E0603551D0F0101FF040403020308');
    // CRI begins with version INTEGER 0; the outer signatureAlgorithm has no NULL parameter
    expect(h).toMatch(/^3081..3081..020100/);
    expect(h).toMatch(/300A06082A8648CE3D04030203..00/);
    expect(h).not.toContain('2A8648CE3D0403020500');
    opensslVerify(file('ka.csr', der));
  });

  it('with no subject and no key usage: empty Name and an empty [0] attribute set', async () => {
    const s = newSigner();
    const der = await createCsr({ signer: s });
    expect(hex(der)).toContain('0201003000' + '3059');
    expect(hex(der)).toContain('A000');
    opensslVerify(file('empty.csr', der));
    const c = parseCsr(der);
    expect(c.subject.attributes).toEqual([]);
    expect(c.requestedExtensions).toEqual([]);
    expect(c.requestedKeyUsage).toBeUndefined();
    expect(c.attributes).toEqual([]);
  });

  it('refuses bad subjects, key usages and signers', async () => {
    const s = newSigner();
    expect(await rejection(createCsr({ signer: s, subject: { role: 9 } }))).toBe('ERR_ROLE_UNKNOWN');
    expect(await rejection(createCsr({ signer: s, subject: { entityId: 'zz' } }))).toBe('ERR_EUI64_INVALID');
    expect(await rejection(createCsr({ signer: s, subject: { commonName: '' } }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await rejection(createCsr({ signer: s, keyUsage: 'keyCertSign' as 'keyAgreement' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await rejection(createCsr({ signer: { publicKey: new Uint8Array(65), sign: s.sign } }))).toBe('ERR_KEY_INVALID');
    expect(await rejection(createCsr({ signer: { publicKey: s.publicKey, sign: async () => new Uint8Array(63) } }))).toBe('ERR_SIGNATURE_ENCODING');
    expect(await rejection(createCsr({} as never))).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('parseCsr (RFC 2986 §4; proof of possession)', () => {
  it('returns what the request asks for', async () => {
    const s = newSigner();
    const der = await createCsr({ signer: s, subject: { commonName: 'Énergie', role: 3, entityId: '00DB1234567890A0' }, keyUsage: 'digitalSignature' });
    const c = parseCsr(der);
    expect(hex(c.der)).toBe(hex(der));
    expect(c.subject.attributes.map((a) => [a.type, a.tag, a.value, a.bitLength])).toEqual([
      ['CN', 12, 'Énergie', undefined],
      ['OU', 19, '03', undefined],
      ['x500UniqueIdentifier', 3, '00DB1234567890A0', 64],
    ]);
    expect(c.subject.text).toBe('CN=Énergie, OU=03, x500UniqueIdentifier=#00DB1234567890A0');
    expect(hex(c.publicKeyBytes)).toBe(hex(s.publicKey));
    expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(c.requestedExtensions).toEqual([{ oid: '2.5.29.15', critical: true, value: Uint8Array.of(3, 2, 7, 0x80) }]);
    expect(c.requestedKeyUsage).toEqual(['digitalSignature']);
    expect(c.requestedCa).toBeUndefined();
    expect(c.entityId).toBe('00DB1234567890A0');
    expect(c.role).toBe(3);
    expect(c.commonName).toBe('Énergie');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('accepts PEM labelled CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST, refuses other labels', async () => {
    const der = await createCsr({ signer: newSigner() });
    expect(hex(parseCsr(pem(der)).der)).toBe(hex(der));
    expect(hex(parseCsr(`junk before\n${pem(der, 'NEW CERTIFICATE REQUEST')}`).der)).toBe(hex(der));
    expect(code(() => parseCsr(pem(der, 'CERTIFICATE')))).toBe('ERR_PEM_INVALID');
    expect(code(() => parseCsr('not pem at all'))).toBe('ERR_PEM_INVALID');
  });

  it('parses OpenSSL-made requests, with requested key usages and CA flag', () => {
    const keyPath = file('k.pem', newSigner().privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const req = openssl(['req', '-new', '-key', keyPath, '-subj', '/CN=Meter/OU=02', '-addext', 'keyUsage=critical,digitalSignature,keyAgreement', '-addext', 'basicConstraints=critical,CA:TRUE']);
    const c = parseCsr(req);
    expect(c.requestedKeyUsage).toEqual(['digitalSignature', 'keyAgreement']);
    expect(c.requestedCa).toBe(true);
    expect(c.role).toBe(2);
    expect(c.commonName).toBe('Meter');
    const plain = parseCsr(openssl(['req', '-new', '-key', keyPath, '-subj', '/CN=x', '-addext', 'basicConstraints=CA:FALSE']));
    expect(plain.requestedCa).toBe(false);
  });

  it('reports other request attributes by OID', () => {
    const s = newSigner();
    const pw = new Attribute({ type: '1.2.840.113549.1.9.7', values: [new Uint8Array(Buffer.from('0C0473656372', 'hex')).buffer] });
    const c = parseCsr(signCri(cri(s, { extraAttributes: [pw] }), s.privateKey));
    expect(c.attributes).toEqual(['1.2.840.113549.1.9.7']);
  });

  it('refuses a request whose signature does not verify (ERR_CSR_SIGNATURE_INVALID)', async () => {
    const s = newSigner();
    const der = await createCsr({ signer: s, subject: { commonName: 'Supplier' } });
    // flip the last octet of s: still well-formed DER, no longer a valid signature
    const badSig = new Uint8Array(der);
    badSig[badSig.length - 1] = (badSig[badSig.length - 1] as number) ^ 0x01;
    expect(code(() => parseCsr(badSig))).toBe('ERR_CSR_SIGNATURE_INVALID');
    // change one letter of the signed subject
    const badCri = new Uint8Array(der);
    const at = Buffer.from(badCri).indexOf(Buffer.from('Supplier'));
    badCri[at] = 'T'.charCodeAt(0);
    expect(code(() => parseCsr(badCri))).toBe('ERR_CSR_SIGNATURE_INVALID');
    // signed by another key
    const other = newSigner();
    expect(code(() => parseCsr(signCri(cri(s), other.privateKey)))).toBe('ERR_CSR_SIGNATURE_INVALID');
    // the right key, but not ecdsa-with-SHA256 (ecdsa-with-SHA384 OID)
    expect(code(() => parseCsr(signCri(cri(s), s.privateKey, '300A06082A8648CE3D040303')))).toBe('ERR_CSR_SIGNATURE_INVALID');
  });

  it('refuses non-P-256 keys (ERR_KEY_CURVE_UNSUPPORTED, ERR_KEY_INVALID)', () => {
    const p384 = file('p384.pem', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    expect(code(() => parseCsr(openssl(['req', '-new', '-key', p384, '-subj', '/CN=x'])))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
    const ed = file('ed.pem', generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    expect(code(() => parseCsr(openssl(['req', '-new', '-key', ed, '-subj', '/CN=x'])))).toBe('ERR_KEY_INVALID');
  });

  describe('malformed input is ERR_CSR_MALFORMED, never another exception', () => {
    let good: Uint8Array;
    let s: ReturnType<typeof newSigner>;
    beforeAll(async () => {
      s = newSigner();
      good = await createCsr({ signer: s, subject: { commonName: 'x', role: 2, entityId: '0000000000000001' }, keyUsage: 'keyAgreement' });
    });

    it.each([
      ['empty', () => new Uint8Array(0)],
      ['one byte', () => Uint8Array.of(0x30)],
      ['not a SEQUENCE', () => Uint8Array.of(0x04, 0x00)],
      ['an empty SEQUENCE', () => Uint8Array.of(0x30, 0x00)],
      ['truncated', () => good.subarray(0, good.length - 1)],
      ['trailing data', () => new Uint8Array([...good, 0])],
      ['indefinite length', () => new Uint8Array([0x30, 0x80, ...good.subarray(3), 0, 0])],
      ['over the size bound', () => new Uint8Array(tlv(0x30, tlv(0x04, new Uint8Array(MAX_CSR_BYTES))))],
      ['nested too deep', () => new Uint8Array(Array.from({ length: 40 }).reduce<Buffer>((acc) => tlv(0x30, acc), Buffer.alloc(0)))],
      ['random bytes', () => new Uint8Array(createHash('sha512').update('x').digest())],
    ])('%s', (_name, make) => {
      expect(code(() => parseCsr(make()))).toBe('ERR_CSR_MALFORMED');
    });

    it('wrong input types', () => {
      expect(code(() => parseCsr(42 as never))).toBe('ERR_CSR_MALFORMED');
      expect(code(() => parseCsr(null as never))).toBe('ERR_CSR_MALFORMED');
      expect(code(() => parseCsr('x'.repeat(MAX_CSR_BYTES * 2 + 1)))).toBe('ERR_CSR_MALFORMED');
    });

    it('structurally wrong requests, each properly signed', () => {
      const sign = (c: Uint8Array) => signCri(c, s.privateKey);
      // version 1 (only v1 = 0 exists)
      expect(code(() => parseCsr(sign(cri(s, { version: 1 }))))).toBe('ERR_CSR_MALFORMED');
      // the same extension requested twice
      const ku = Uint8Array.of(3, 2, 7, 0x80);
      expect(code(() => parseCsr(sign(cri(s, { extensions: [{ oid: '2.5.29.15', value: ku }, { oid: '2.5.29.15', value: ku }] }))))).toBe('ERR_CSR_MALFORMED');
      // a keyUsage that is not a BIT STRING, a basicConstraints that is not a SEQUENCE
      expect(code(() => parseCsr(sign(cri(s, { extensions: [{ oid: '2.5.29.15', value: Uint8Array.of(4, 0) }] }))))).toBe('ERR_CSR_MALFORMED');
      expect(code(() => parseCsr(sign(cri(s, { extensions: [{ oid: '2.5.29.19', value: Uint8Array.of(1, 1, 0xff) }] }))))).toBe('ERR_CSR_MALFORMED');
      // a keyUsage bit beyond decipherOnly
      expect(code(() => parseCsr(sign(cri(s, { extensions: [{ oid: '2.5.29.15', value: Uint8Array.of(3, 3, 6, 0, 0x40) }] }))))).toBe('ERR_CSR_MALFORMED');
      // an attribute with no value
      const noValue = new Attribute({ type: '1.2.840.113549.1.9.7', values: [] });
      expect(code(() => parseCsr(sign(cri(s, { extraAttributes: [noValue] }))))).toBe('ERR_CSR_MALFORMED');
      // a certificate is not a request
      const fakeCert = new Uint8Array(tlv(0x30, tlv(0x30, tlv(0xa0, tlv(0x02, Buffer.from([2]))), tlv(0x02, Buffer.from([1]))), Buffer.from('300A06082A8648CE3D040302', 'hex'), tlv(0x03, Buffer.from([0, 1]))));
      expect(code(() => parseCsr(fakeCert))).toBe('ERR_CSR_MALFORMED');
    });

    it('1,000 single-byte mutations of a valid request give a SmkiError of a CSR or key code, never a foreign exception', () => {
      const allowed = new Set<string>(['returned', 'ERR_CSR_MALFORMED', 'ERR_CSR_SIGNATURE_INVALID', 'ERR_KEY_INVALID', 'ERR_KEY_CURVE_UNSUPPORTED']);
      let seed = 0x12345678;
      const rnd = () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed;
      };
      const seen = new Set<string>();
      const started = performance.now();
      for (let i = 0; i < 1000; i++) {
        const m = new Uint8Array(good);
        m[rnd() % m.length] = rnd() & 0xff;
        const c = code(() => parseCsr(m));
        seen.add(c);
        expect(allowed.has(c), `mutation ${i} gave ${c}`).toBe(true);
      }
      expect(seen.has('ERR_CSR_MALFORMED')).toBe(true);
      expect(seen.has('ERR_CSR_SIGNATURE_INVALID')).toBe(true);
      expect(performance.now() - started).toBeLessThan(10_000);
    });

    it('a near-maximum input is refused quickly (docs/conventions.md: bounded parse)', () => {
      const big = new Uint8Array(tlv(0x30, tlv(0x04, new Uint8Array(MAX_CSR_BYTES - 8))));
      expect(big.length).toBeLessThanOrEqual(MAX_CSR_BYTES);
      const t = performance.now();
      expect(code(() => parseCsr(big))).toBe('ERR_CSR_MALFORMED');
      expect(performance.now() - t).toBeLessThan(50);
    });
  });
});
