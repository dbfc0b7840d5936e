// RFC 7468 §5 (CERTIFICATE; §5.1: "X509 CERTIFICATE" and "X.509 CERTIFICATE" are legacy labels),
// §13 (PUBLIC KEY); RFC 5280 §4.2.1.3 (keyUsage); GBCS: a User signature is made with a
// digitalSignature key, the ACB MAC with keyAgreement keys (the SMKI profile gives each end-entity
// certificate exactly one of the two). A certificate must be used only as its key usage allows,
// whatever its PEM label says: relabelled, a keyAgreement-only certificate used to verify a User
// signature and a digitalSignature-only one to derive a MAC key (node:crypto reads a key out of
// 'X509 CERTIFICATE' without any check).
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ByteReader, createKeyAgreement, readTlv, SmkiError, type SmkiErrorCode } from '@smki/core';
import { certificateToPem, createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { buildMessage } from '../src/codec.js';
import { deriveKey, deriveKeyAsync } from '../src/crypto.js';
import { computeMac, computeMacAsync, verifyMac, wrapWithMac } from '../src/mac.js';
import { signPreCommand, toVerificationKey, verifySignature } from '../src/signature.js';
import { ecdhSpki } from '../../core/test/_wycheproof.js';

const USER = '90B3D51F30010000';
const DEVICE = '00DB1234567890A0';
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const fields = { originator: USER, recipient: DEVICE, counter: 42n, mode: 'command' } as const;

/** The legacy and foreign labels under which node:crypto (or a lax reader) might take the key. */
const RELABELS = ['X509 CERTIFICATE', 'TRUSTED CERTIFICATE', 'X.509 CERTIFICATE', 'CERTIFICATE REQUEST', 'PUBLIC KEY CERTIFICATE'] as const;
const relabel = (cert: SmkiCertificate, label: string) => certificateToPem(cert).replace(/CERTIFICATE/g, label);

function codeOf(f: () => unknown): SmkiErrorCode {
  try {
    f();
  } catch (e) {
    if (e instanceof SmkiError) return e.code;
    throw e;
  }
  throw new Error('expected a SmkiError, nothing was thrown');
}
async function asyncCodeOf(f: () => Promise<unknown>): Promise<SmkiErrorCode> {
  try {
    await f();
  } catch (e) {
    if (e instanceof SmkiError) return e.code;
    throw e;
  }
  throw new Error('expected a SmkiError, nothing was thrown');
}

const user = p256(); // a User whose only certificate for this key is keyAgreement
const acb = p256();
const device = p256();
const deviceDs = p256();
let kaOnly: SmkiCertificate; // the User's key, keyAgreement only
let dsOnly: SmkiCertificate; // the device's DS key, digitalSignature only
let deviceKa: SmkiCertificate;
let signed: Uint8Array;

beforeAll(async () => {
  const h = await createHierarchy();
  kaOnly = await issueOrganisationCertificate({ issuer: h.organisationCa, role: 2, entityId: USER, keyUsage: 'keyAgreement', publicKey: user.publicKey });
  dsOnly = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: DEVICE, keyUsage: 'digitalSignature', publicKey: deviceDs.publicKey });
  deviceKa = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: DEVICE, keyUsage: 'keyAgreement', publicKey: device.publicKey });
  const pre = buildMessage({ cra: 'command', originatorCounter: 42n, originator: USER, recipient: DEVICE, messageCode: 0x0050, payload: new Uint8Array([0xd9]), signatureField: 'empty' });
  signed = await signPreCommand(pre, user.privateKey); // signed with the KA-only key: must never verify through its certificate
});

describe('the attack on User-signature verification: a keyAgreement-only certificate, relabelled', () => {
  it('node:crypto would take its key (the reason gbcs must not hand it PEM text)', () => {
    expect(createPublicKey(relabel(kaOnly, 'X509 CERTIFICATE')).asymmetricKeyType).toBe('ec');
  });

  it('labelled CERTIFICATE it is refused by its key usage (as before)', () => {
    expect(codeOf(() => verifySignature(signed, certificateToPem(kaOnly)))).toBe('ERR_KEY_INVALID');
  });

  it.each(RELABELS)('labelled "%s" it is refused: ERR_PEM_INVALID, never a verified signature', (label) => {
    expect(codeOf(() => verifySignature(signed, relabel(kaOnly, label)))).toBe('ERR_PEM_INVALID');
    expect(codeOf(() => toVerificationKey(relabel(kaOnly, label)))).toBe('ERR_PEM_INVALID');
  });

  it('the same key as a bare PUBLIC KEY verifies: the caller vouches for a raw key', () => {
    expect(verifySignature(signed, user.publicKey.export({ format: 'pem', type: 'spki' }) as string)).toBe(true);
  });
});

describe('the attack on key derivation and the MAC: a digitalSignature-only certificate, relabelled', () => {
  const frameFor = () =>
    wrapWithMac(buildMessage({ cra: 'command', originatorCounter: 42n, originator: USER, recipient: DEVICE, messageCode: 0x0050, payload: new Uint8Array([0xd9]) }), {
      privateKey: acb.privateKey,
      publicKey: deviceKa,
    });

  it('labelled CERTIFICATE it is refused by its key usage (as before)', () => {
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: certificateToPem(dsOnly), ...fields }))).toBe('ERR_KEY_NOT_FOR_KEY_AGREEMENT');
  });

  it.each(RELABELS)('labelled "%s" it is refused by deriveKey, deriveKeyAsync and the MAC functions', async (label) => {
    const pem = relabel(dsOnly, label);
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: pem, ...fields }))).toBe('ERR_PEM_INVALID');
    expect(await asyncCodeOf(() => deriveKeyAsync({ keyAgreement: createKeyAgreement(acb.privateKey), publicKey: pem, ...fields }))).toBe('ERR_PEM_INVALID');
    const frame = frameFor();
    expect(codeOf(() => computeMac(frame, { privateKey: acb.privateKey, publicKey: pem }))).toBe('ERR_PEM_INVALID');
    expect(await asyncCodeOf(() => computeMacAsync(frame, { keyAgreement: createKeyAgreement(acb.privateKey), publicKey: pem }))).toBe('ERR_PEM_INVALID');
    expect(codeOf(() => verifyMac(frame, { privateKey: device.privateKey, publicKey: pem }))).toBe('ERR_PEM_INVALID');
  });

  it('a keyAgreement certificate labelled CERTIFICATE still works', () => {
    const frame = frameFor();
    expect(verifyMac(frame, { privateKey: acb.privateKey, publicKey: certificateToPem(deviceKa) })).toBe(true);
  });
});

describe('PEM text is one CERTIFICATE block or one PUBLIC KEY block, nothing else', () => {
  const pub = device.publicKey.export({ format: 'pem', type: 'spki' }) as string;

  it.each([
    ['a private key (PRIVATE KEY)', () => device.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string],
    ['a private key (EC PRIVATE KEY)', () => device.privateKey.export({ format: 'pem', type: 'sec1' }) as string],
    ['a PUBLIC KEY and a relabelled certificate', () => `${pub}${relabel(dsOnly, 'X509 CERTIFICATE')}`],
    ['a relabelled certificate and a PUBLIC KEY', () => `${relabel(dsOnly, 'X509 CERTIFICATE')}${pub}`],
    ['two certificates', () => `${certificateToPem(deviceKa)}${certificateToPem(deviceKa)}`],
    ['a certificate and a PUBLIC KEY', () => `${certificateToPem(deviceKa)}${pub}`],
    ['a certificate body under PUBLIC KEY', () => certificateToPem(deviceKa).replace(/CERTIFICATE/g, 'PUBLIC KEY')],
  ])('%s → refused', (name, make) => {
    const code = codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: make(), ...fields }));
    // A certificate's DER is not an SPKI: under the PUBLIC KEY label it is a bad key, not a certificate.
    expect(code).toBe(name.startsWith('a certificate body') ? 'ERR_KEY_INVALID' : 'ERR_PEM_INVALID');
  });

  it('text with no PEM block is not a key (ERR_KEY_INVALID, as before)', () => {
    expect(codeOf(() => verifySignature(signed, 'not a key'))).toBe('ERR_KEY_INVALID');
  });
});

/** A copy of a certificate with another SubjectPublicKeyInfo (signature left as it was). */
function withSpki(cert: SmkiCertificate, spki: Uint8Array): Uint8Array {
  const der = cert.der;
  const outer = readTlv(new ByteReader(der), 0x30);
  const r = new ByteReader(der, outer.valueStart, outer.end);
  const tbs = readTlv(r, 0x30);
  const rest = der.subarray(tbs.end, outer.end);
  const tbsValue = der.subarray(tbs.valueStart, tbs.end);
  const at = Buffer.from(tbsValue).indexOf(Buffer.from(cert.details.spkiDer));
  const newTbsValue = Buffer.concat([tbsValue.subarray(0, at), spki, tbsValue.subarray(at + cert.details.spkiDer.length)]);
  const tlv = (tag: number, body: Uint8Array) => {
    const n = body.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return Buffer.concat([Buffer.from([tag, ...len]), body]);
  };
  return new Uint8Array(tlv(0x30, Buffer.concat([tlv(0x30, newTbsValue), rest])));
}

describe('RFC 5480 2.1.1: a certificate whose key gives P-256 by explicit parameters', () => {
  // Wycheproof ECDH tcId 359: explicit parameters equal to P-256's (no cofactor). Node reads it as P-256.
  const explicit = Buffer.from(ecdhSpki().testGroups[0]!.tests.find((t) => t.tcId === 359)!.public, 'hex');
  let der: Uint8Array;

  beforeAll(() => {
    der = withSpki(deviceKa, explicit);
  });

  it('node takes the key for P-256; pki parses the certificate but gives it no key', () => {
    expect(createPublicKey({ key: explicit, format: 'der', type: 'spki' }).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const cert = parseCertificate(der);
    expect(cert.publicKey).toBeUndefined();
  });

  it.each([
    ['parsed', () => parseCertificate(der)],
    ['DER', () => der],
    ['PEM', () => certificateToPem(parseCertificate(der))],
  ] as const)('deriveKey with the %s certificate → ERR_KEY_CURVE_UNSUPPORTED', (_name, make) => {
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: make() as never, ...fields }))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('its bare SPKI, as DER and as PUBLIC KEY PEM → ERR_KEY_CURVE_UNSUPPORTED', () => {
    const pem = `-----BEGIN PUBLIC KEY-----\n${explicit.toString('base64')}\n-----END PUBLIC KEY-----\n`;
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: new Uint8Array(explicit), ...fields }))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: pem, ...fields }))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
    const foreign: KeyObject = createPublicKey({ key: explicit, format: 'der', type: 'spki' });
    expect(codeOf(() => verifySignature(signed, foreign))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
  });
});
