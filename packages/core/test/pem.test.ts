// RFC 7468 (textual encodings: §2–§3 the armour, §5 CERTIFICATE, §10 PRIVATE KEY, §11 ENCRYPTED
// PRIVATE KEY, §13 PUBLIC KEY); RFC 5915 §3 and SEC 1 C.4 (EC PRIVATE KEY). A PEM block is read
// only under the label it carries: a certificate under any label is never a public key to core,
// so a relabelled certificate cannot lend its key without its key-usage check.
import { createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, derToPem, pemBlocks, pemToDer, publicKeyToRaw, toHex, toPrivateKey, toPublicKey } from '@smki/core';
import { expectSmkiError, expectSmkiRejection } from './_helpers.js';

const hierarchy = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'test-vectors', 'pki', 'hierarchy.json'), 'utf8')) as {
  organisations: { name: string; keyUsage: string; certificate: string; privateKey: string }[];
};
const org = (name: string) => hierarchy.organisations.find((o) => o.name === name)!;
/** A keyAgreement-only and a digitalSignature-only certificate (the SMKI profile: exactly one). */
const kaCert = org('supplier-ka');
const dsCert = org('supplier-ds');
const relabel = (pem: string, label: string) => pem.replace(/CERTIFICATE/g, label);

const alice = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spkiPem = alice.publicKey.export({ format: 'pem', type: 'spki' }) as string;
const pkcs8Pem = alice.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const sec1Pem = alice.privateKey.export({ format: 'pem', type: 'sec1' }) as string;

describe('the attack: a certificate relabelled so node would read its key (RFC 7468 5.1 legacy labels)', () => {
  const labels = ['X509 CERTIFICATE', 'TRUSTED CERTIFICATE', 'CERTIFICATE'];

  // node:crypto's createPublicKey (OpenSSL 3 decoders) takes the key out of these two without any
  // key-usage check: the reason core never hands it text.
  it.each(['X509 CERTIFICATE', 'CERTIFICATE'])('node itself reads a key out of "%s"', (label) => {
    expect(createPublicKey(relabel(kaCert.certificate, label)).asymmetricKeyType).toBe('ec');
  });

  it.each(labels)('toPublicKey refuses a keyAgreement-only certificate labelled "%s" → ERR_PEM_INVALID', (label) => {
    const e = expectSmkiError(() => toPublicKey(relabel(kaCert.certificate, label)), 'ERR_PEM_INVALID');
    expect(e.context).toMatchObject({ detail: expect.stringContaining(`label ${label}`) });
  });

  it.each(labels)('createKeyAgreement(...).deriveSharedSecret cannot be given one either (%s)', async (label) => {
    const ka = createKeyAgreement(alice.privateKey);
    // The interface takes bytes or a KeyObject; a JavaScript caller handing it text meets the same reader.
    await expectSmkiRejection(() => ka.deriveSharedSecret(relabel(dsCert.certificate, label) as never), 'ERR_PEM_INVALID');
  });

  it('"X.509 CERTIFICATE" (a label with a dot) is refused as damaged armour, never skipped', () => {
    expectSmkiError(() => toPublicKey(relabel(kaCert.certificate, 'X.509 CERTIFICATE')), 'ERR_PEM_INVALID');
  });

  it('a certificate cannot ride along beside a public key: two blocks are refused', () => {
    expectSmkiError(() => toPublicKey(`${spkiPem}${kaCert.certificate}`), 'ERR_PEM_INVALID');
    expectSmkiError(() => toPublicKey(`${relabel(kaCert.certificate, 'X509 CERTIFICATE')}${spkiPem}`), 'ERR_PEM_INVALID');
  });
});

describe('toPublicKey takes PEM labelled PUBLIC KEY only (RFC 7468 13)', () => {
  it('PUBLIC KEY, with text around it and CRLF line ends', () => {
    const raw = toHex(publicKeyToRaw(alice.publicKey));
    expect(toHex(publicKeyToRaw(toPublicKey(spkiPem)))).toBe(raw);
    expect(toHex(publicKeyToRaw(toPublicKey(`key of alice:\n${spkiPem.replace(/\n/g, '\r\n')}\n`)))).toBe(raw);
  });

  it.each([
    ['PRIVATE KEY (PKCS#8)', pkcs8Pem],
    ['EC PRIVATE KEY (SEC 1)', sec1Pem],
    ['ENCRYPTED PRIVATE KEY', alice.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }) as string],
    ['RSA PUBLIC KEY', spkiPem.replace(/PUBLIC KEY/g, 'RSA PUBLIC KEY')],
    ['EC PUBLIC KEY', spkiPem.replace(/PUBLIC KEY/g, 'EC PUBLIC KEY')],
    ['CERTIFICATE', kaCert.certificate],
    ['X509 CRL', spkiPem.replace(/PUBLIC KEY/g, 'X509 CRL')],
    ['public key (lower case)', spkiPem.replace(/PUBLIC KEY/g, 'public key')],
  ])('%s → ERR_PEM_INVALID', (_name, text) => {
    expectSmkiError(() => toPublicKey(text), 'ERR_PEM_INVALID');
  });

  it('text with no PEM block at all is not a key → ERR_KEY_INVALID', () => {
    expectSmkiError(() => toPublicKey('not a key'), 'ERR_KEY_INVALID');
    expectSmkiError(() => toPublicKey(''), 'ERR_KEY_INVALID');
  });
});

describe('toPrivateKey takes PRIVATE KEY (RFC 7468 10) and EC PRIVATE KEY (RFC 5915) only', () => {
  const raw = toHex(publicKeyToRaw(alice.publicKey));

  it.each([
    ['PRIVATE KEY', pkcs8Pem],
    ['EC PRIVATE KEY', sec1Pem],
    ['EC PARAMETERS (P-256) then EC PRIVATE KEY, as openssl ecparam -genkey writes it', `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1Pem}`],
  ])('%s', (_name, text) => {
    const k = toPrivateKey(text);
    expect(k).toBeInstanceOf(KeyObject);
    expect(toHex(publicKeyToRaw(k))).toBe(raw);
  });

  it('EC PARAMETERS naming another curve → ERR_KEY_CURVE_UNSUPPORTED', () => {
    const p384 = '-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n';
    expectSmkiError(() => toPrivateKey(`${p384}${sec1Pem}`), 'ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('ENCRYPTED PRIVATE KEY → ERR_KEY_ENCRYPTED, as PEM and as DER (decrypt it first: no passphrase is taken here)', () => {
    const pem = alice.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
    expectSmkiError(() => toPrivateKey(pem), 'ERR_KEY_ENCRYPTED');
    expectSmkiError(() => toPrivateKey(pemToDer(pem, ['ENCRYPTED PRIVATE KEY']).der), 'ERR_KEY_ENCRYPTED');
  });

  it.each([
    ['PUBLIC KEY', spkiPem],
    ['CERTIFICATE', kaCert.certificate],
    ['X509 CERTIFICATE', relabel(kaCert.certificate, 'X509 CERTIFICATE')],
    ['RSA PRIVATE KEY', pkcs8Pem.replace(/PRIVATE KEY/g, 'RSA PRIVATE KEY')],
    ['a PKCS#8 body under EC PRIVATE KEY', pkcs8Pem.replace(/PRIVATE KEY/g, 'EC PRIVATE KEY')],
    ['two keys', `${pkcs8Pem}${sec1Pem}`],
  ])('%s → refused', (name, text) => {
    // A wrong label is ERR_PEM_INVALID; a PKCS#8 body under the SEC 1 label does not decode as SEC 1.
    expectSmkiError(() => toPrivateKey(text), name.startsWith('a PKCS#8') ? 'ERR_KEY_INVALID' : 'ERR_PEM_INVALID');
  });
});

describe('pemBlocks / pemToDer / derToPem (RFC 7468 2, 3)', () => {
  const der = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x07]);
  const pem = derToPem(der, 'PUBLIC KEY');

  it('derToPem writes 64-column lines that read back', () => {
    expect(pem).toBe('-----BEGIN PUBLIC KEY-----\nMAMCAQc=\n-----END PUBLIC KEY-----\n');
    const long = derToPem(new Uint8Array(100), 'X');
    for (const line of long.trim().split('\n')) expect(line.length).toBeLessThanOrEqual(64);
    expect(pemToDer(long, ['X']).der).toEqual(new Uint8Array(100));
  });

  it('with labels: blocks of other labels are skipped; without: every block is returned with its label and offset', () => {
    const text = `intro\n${derToPem(der, 'A')}${pem}`;
    expect(pemBlocks(text, ['PUBLIC KEY']).map((b) => b.label)).toEqual(['PUBLIC KEY']);
    expect(pemBlocks(text).map((b) => [b.label, b.offset])).toEqual([
      ['A', 6],
      ['PUBLIC KEY', 6 + derToPem(der, 'A').length],
    ]);
  });

  it.each([
    ['a mismatched END label', pem.replace('END PUBLIC KEY', 'END CERTIFICATE')],
    ['junk inside', pem.replace('MAMC', 'MA*C')],
    ['an RFC 1421 header inside', pem.replace('-----\n', '-----\nProc-Type: 4,ENCRYPTED\n\n')],
    ['no END line', pem.split('-----END')[0] as string],
    ['an empty block', '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n'],
    ['bad base64', pem.replace('MAMCAQc=', 'MAMCA')],
    ['a label outside A-Z 0-9 space', pem.replace(/PUBLIC KEY/g, 'X.509 KEY')],
    ['a non-string', 7 as unknown as string],
    ['over 1 MiB', `${pem}${' '.repeat(1 << 20)}`],
  ])('every-label reading refuses %s → ERR_PEM_INVALID', (_name, text) => {
    expectSmkiError(() => pemBlocks(text), 'ERR_PEM_INVALID');
  });

  it('reports the character offset of junk', () => {
    expectSmkiError(() => pemBlocks(pem.replace('MAMC', 'MA*C')), 'ERR_PEM_INVALID', { offset: pem.indexOf('MAMC') + 2 });
  });

  describe('strict reading (RFC 7468 3, as the key store reads its files)', () => {
    it('accepts white space around one block', () => {
      expect(pemToDer(`\n  ${pem}\n\n`, ['PUBLIC KEY'], { strict: true }).der).toEqual(der);
    });

    it.each([
      ['text before', `hello\n${pem}`, 0],
      ['text after', `${pem}more`, pem.length],
      ['another block', `${pem}${derToPem(der, 'OTHER')}`, pem.length],
      ['unpadded base64', pem.replace('MAMCAQc=', 'MAMCAQc'), '-----BEGIN PUBLIC KEY-----'.length],
    ])('refuses %s with the offset', (_name, text, offset) => {
      expectSmkiError(() => pemToDer(text, ['PUBLIC KEY'], { strict: true }), 'ERR_PEM_INVALID', { offset });
    });

    it('a lower size limit', () => {
      expectSmkiError(() => pemToDer(pem, ['PUBLIC KEY'], { maxChars: 10 }), 'ERR_PEM_INVALID');
    });
  });

  it('a wrong key type inside a PUBLIC KEY block is a key error, not a PEM error', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
    expectSmkiError(() => toPublicKey(rsa), 'ERR_KEY_INVALID');
  });
});
