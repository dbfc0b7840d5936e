// RFC 7468 §5 (CERTIFICATE; §5.1 legacy labels), §6 (X509 CRL), §7 (CERTIFICATE REQUEST, NEW
// CERTIFICATE REQUEST): pki reads each input only under its own label, through core's PEM reader.
// RFC 5480 §2.1.1: a subject key that gives P-256 by explicit parameters ("specifiedCurve MUST NOT
// be used") is refused wherever pki takes a key: a certificate has no usable key (lint
// ERR_PROFILE_KEY_CURVE, path validation fails), a CSR is refused, an issuance request is refused.
import { createPublicKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SmkiError, type SmkiErrorCode } from '@smki/core';
import {
  certificateToPem,
  createHierarchy,
  crlToPem,
  issueCrl,
  issueOrganisationCertificate,
  lintCertificate,
  parseCertificate,
  parseCertificateBundle,
  parseCrl,
  parseCsr,
  TrustStore,
  validatePath,
} from '../src/index.js';
import { bitString, buildHierarchy, buildOrganisationCertificate, ctx, int, name, OIDS, oid, seq } from './_x509-builder.js';
import { ecdhSpki, hex } from '../../core/test/_wycheproof.js';

function codeOf(f: () => unknown): SmkiErrorCode | 'returned' {
  try {
    f();
  } catch (e) {
    if (e instanceof SmkiError) return e.code;
    throw e;
  }
  return 'returned';
}

const NOT_BEFORE = new Date(Date.UTC(2024, 0, 1));
const AT = new Date(Date.UTC(2025, 0, 1));
const pki = buildHierarchy(NOT_BEFORE);
const leafDer = buildOrganisationCertificate({ issuer: pki.oca, eui: '90B3D51F30010000', ou: '02', keyUsage: 'keyAgreement', notBefore: NOT_BEFORE });
const leafPem = certificateToPem(parseCertificate(leafDer));

describe('certificates are read under CERTIFICATE only', () => {
  it.each(['X509 CERTIFICATE', 'TRUSTED CERTIFICATE', 'X.509 CERTIFICATE', 'CERTIFICATE REQUEST', 'PUBLIC KEY'])(
    'parseCertificate and TrustStore.add refuse a certificate labelled "%s" → ERR_PEM_INVALID',
    (label) => {
      const text = leafPem.replace(/CERTIFICATE/g, label);
      expect(codeOf(() => parseCertificate(text))).toBe('ERR_PEM_INVALID');
      expect(codeOf(() => new TrustStore().add(text))).toBe('ERR_PEM_INVALID');
    },
  );

  it('a bundle skips blocks under other labels (a key file beside the certificates), as OpenSSL does', () => {
    const bundle = `${leafPem.replace(/CERTIFICATE/g, 'X509 CERTIFICATE')}${certificateToPem(parseCertificate(pki.oca.der))}`;
    expect(parseCertificateBundle(bundle).map((c) => c.der)).toEqual([pki.oca.der]);
  });

  it('CRLs under X509 CRL only, CSRs under CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST only', async () => {
    const { organisationCa } = await createHierarchy();
    const crlPem = crlToPem(await issueCrl({ issuer: organisationCa, crlNumber: 1n, kind: 'crl' }));
    expect(parseCrl(crlPem).crlNumber).toBe(1n);
    for (const label of ['CRL', 'X509 CERTIFICATE', 'CERTIFICATE']) expect(codeOf(() => parseCrl(crlPem.replace(/X509 CRL/g, label)))).toBe('ERR_PEM_INVALID');
    expect(codeOf(() => parseCsr(leafPem))).toBe('ERR_PEM_INVALID');
  });
});

/** DER TLV with a definite length. */
function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return new Uint8Array([tag, ...len, ...body]);
}

/** The explicit-parameter AlgorithmIdentifier of Wycheproof ECDH tcId 359 (parameters equal to P-256's, no cofactor). */
const EXPLICIT_ALGORITHM = (() => {
  const spki = hex(ecdhSpki().testGroups[0]!.tests.find((t) => t.tcId === 359)!.public);
  // 30 82 LL LL | 30 81 LL <algorithm> | 03 42 00 <point>
  return spki.subarray(4, 4 + 3 + spki[6]!);
})();

/** The SPKI of `key` with explicit P-256 parameters instead of the named curve. */
function explicitSpki(key: KeyObject): Uint8Array {
  const point = new Uint8Array(key.export({ format: 'der', type: 'spki' }).subarray(-65));
  return tlv(0x30, EXPLICIT_ALGORITHM, tlv(0x03, new Uint8Array([0]), point));
}

describe('RFC 5480 2.1.1: a subject key with explicit curve parameters', () => {
  const subject = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = explicitSpki(subject.publicKey);

  it('node takes such a key for P-256 (why pki must refuse it itself)', () => {
    expect(createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  /** The leaf re-signed by the OCA with its SubjectPublicKeyInfo replaced. */
  function explicitLeaf(): Uint8Array {
    const c = parseCertificate(leafDer);
    const tbs = Buffer.from(c.tbsDer);
    const at = tbs.indexOf(Buffer.from(c.details.spkiDer));
    const header = tbs[1]! & 0x80 ? 2 + (tbs[1]! & 0x7f) : 2;
    const body = Buffer.concat([tbs.subarray(header, at), spki, tbs.subarray(at + c.details.spkiDer.length)]);
    const newTbs = tlv(0x30, body);
    const signature = nodeSign('sha256', newTbs, pki.oca.key.privateKey);
    return seq(newTbs, seq(oid(OIDS.ecdsaSha256)), bitString(signature));
  }

  it('a certificate carrying it parses, but has no usable key: lint says ERR_PROFILE_KEY_CURVE and the path is invalid', () => {
    const der = explicitLeaf();
    const cert = parseCertificate(der);
    expect(cert.publicKey).toBeUndefined();
    expect(cert.details.publicKeyCurve).toBeUndefined();
    expect(lintCertificate(cert).map((f) => f.code)).toContain('ERR_PROFILE_KEY_CURVE');
    const r = validatePath(cert, { anchors: [pki.root.der], intermediates: [pki.oca.der], at: AT });
    expect(r.valid).toBe(false);
    expect(r.findings.filter((f) => f.severity === 'error').map((f) => f.code)).toContain('ERR_PROFILE_KEY_CURVE');
    // The same leaf with its named-curve key is valid: only the key encoding differs.
    expect(validatePath(leafDer, { anchors: [pki.root.der], intermediates: [pki.oca.der], at: AT }).valid).toBe(true);
  });

  it('a CSR for it is refused (ERR_KEY_CURVE_UNSUPPORTED), though its proof of possession verifies', () => {
    const cri = seq(int(0), name([{ type: 'OU', value: '02' }, { type: 'UID', eui: '90B3D51F30010000' }]), spki, ctx(0, false));
    const csr = seq(cri, seq(oid(OIDS.ecdsaSha256)), bitString(nodeSign('sha256', cri, subject.privateKey)));
    expect(codeOf(() => parseCsr(csr))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
  });

  it('an issuance request for it is refused (ERR_KEY_CURVE_UNSUPPORTED), as DER and as a KeyObject node made', async () => {
    const { organisationCa } = await createHierarchy();
    const foreign = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    for (const publicKey of [spki, foreign]) {
      await expect(
        issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey }),
      ).rejects.toMatchObject({ code: 'ERR_KEY_CURVE_UNSUPPORTED' });
    }
  });
});
