// Project Wycheproof ECDSA P-256/SHA-256 DER vectors (test-vectors/wycheproof/, unmodified)
// against pki's three signature checks: a certificate's signature in path validation (RFC 5280
// §6.1.3 (a)(1)), a CRL's signature in revocation checking (RFC 5280 §6.3.3 (f)), and a CSR's
// proof of possession in parseCsr (RFC 2986 §3). The signature is an ECDSA-Sig-Value in the
// signatureValue BIT STRING (RFC 5480 §2.2 / RFC 3279 §2.2.3).
//
// How the fixed message is handled: Wycheproof signs a fixed `msg`; pki verifies over the DER of
// the to-be-signed part (tbsCertificate, tbsCertList, certificationRequestInfo). Each case is built
// as a real certificate, CRL or CSR whose signatureValue is the vector's `sig` and whose issuer (or
// requested) key is the vector group's key, and core's verifyDer, as pki calls it, is given the
// vector's `msg` in place of that to-be-signed DER (a vi.mock of @smki/core that substitutes the
// message for exactly these registered DERs and nothing else). Everything else is pki's own code:
// parsing the signatureValue, checking the algorithms, taking the issuer's key, and mapping the
// verdict to ERR_CHAIN_SIGNATURE_INVALID, ERR_CRL_SIGNATURE_INVALID or ERR_CSR_SIGNATURE_INVALID.
// (core's verifyDer itself runs every vector unchanged in packages/core/test/wycheproof.test.ts.)
import { createPublicKey, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isSmkiError } from '@smki/core';
import { parseCertificate, parseCrl, parseCsr, validatePath, type SmkiCertificate } from '../src/index.js';
import { cases, ecdsaDer, hex, type EcdsaGroup } from '../../core/test/_wycheproof.js';
import {
  akiExt,
  bcExt,
  bitString,
  buildCertificate,
  buildHierarchy,
  buildOrganisationCertificate,
  ctx,
  extension,
  int,
  keyId,
  kuExt,
  name,
  newKeyPair,
  OIDS,
  oid,
  policiesExt,
  seq,
  skiExt,
  time,
} from './_x509-builder.js';

/** To-be-signed DER (hex) → the Wycheproof message verifyDer is to check instead; or `true`: accepted unchecked. */
const substitute = vi.hoisted(() => new Map<string, Uint8Array | true>());
const calls = vi.hoisted(() => ({ substituted: 0 }));
vi.mock('@smki/core', async (importOriginal) => {
  const real = await importOriginal<typeof import('@smki/core')>();
  return {
    ...real,
    verifyDer: (key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean => {
      const s = substitute.get(Buffer.from(message).toString('hex'));
      if (s === undefined) return real.verifyDer(key, message, signature);
      calls.substituted++;
      return s === true ? true : real.verifyDer(key, s, signature);
    },
  };
});

const file = ecdsaDer();
const NOT_BEFORE = new Date(Date.UTC(2024, 0, 1));
const AT = new Date(Date.UTC(2025, 0, 1));
const ECDSA_SHA256 = seq(oid(OIDS.ecdsaSha256));
const CA_NAME = name([{ type: 'OU', value: '07', encoding: 'printable' }, { type: 'CN', value: 'Z1', encoding: 'printable' }]);
const CRL_NUMBER = '2.5.29.20';

/** Per group: its key, and an organisation CA certificate for that key (issued by a real root). */
const groups = new Map<EcdsaGroup, { key: KeyObject; ca: SmkiCertificate }>();

beforeAll(() => {
  const { root } = buildHierarchy(NOT_BEFORE);
  for (const g of file.testGroups) {
    const key = createPublicKey({ key: Buffer.from(hex(g.publicKeyDer)), format: 'der', type: 'spki' });
    const der = buildCertificate({
      issuer: root.name,
      subject: CA_NAME,
      notBefore: NOT_BEFORE,
      notAfter: new Date(Date.UTC(2040, 0, 1)),
      publicKey: key,
      signingKey: root.key.privateKey,
      extensions: [skiExt(keyId(key)), akiExt(keyId(root.key.publicKey)), kuExt(['keyCertSign', 'cRLSign']), bcExt(true, 0), policiesExt([OIDS.orgPolicy])],
    });
    groups.set(g, { key, ca: parseCertificate(der) });
  }
});

afterAll(() => {
  substitute.clear();
});

/** A serial number unique to a case (16 octets, positive). */
function serialFor(tcId: number, surface: number): Uint8Array {
  const s = new Uint8Array(16);
  s[0] = 0x10 + surface;
  s[14] = tcId >> 8;
  s[15] = tcId & 0xff;
  return s;
}

/** An organisation certificate under the group's CA with `signature` as its signatureValue; returns it and its tbs. */
function leafSignedWith(g: EcdsaGroup, tcId: number, surface: number, signature: Uint8Array): { der: Uint8Array; tbs: Uint8Array } {
  const { key } = groups.get(g)!;
  const template = buildOrganisationCertificate({
    issuer: { key: { publicKey: key, privateKey: newKeyPair().privateKey }, name: CA_NAME },
    eui: '90B3D51F30010000',
    ou: '02',
    keyUsage: 'digitalSignature',
    notBefore: NOT_BEFORE,
    serial: serialFor(tcId, surface),
  });
  const tbs = parseCertificate(template).tbsDer;
  return { der: seq(tbs, ECDSA_SHA256, bitString(signature)), tbs };
}

const errors = (r: ReturnType<typeof validatePath>) => [...new Set(r.findings.filter((f) => f.severity === 'error').map((f) => f.code))].sort();

describe('certificate signatures in validatePath (ecdsa_secp256r1_sha256_test.json)', () => {
  it.each(cases(file))('%s', (_name, g, t) => {
    const { der, tbs } = leafSignedWith(g, t.tcId, 1, hex(t.sig));
    substitute.set(Buffer.from(tbs).toString('hex'), hex(t.msg));
    const before = calls.substituted;
    const r = validatePath(der, { anchors: [groups.get(g)!.ca], at: AT });
    expect(calls.substituted).toBeGreaterThan(before); // the vector really was checked
    // No acceptable cases in this file: valid verifies (high-S included), invalid (BER, malformed
    // integers, wrong values) does not, and is reported as exactly a signature failure.
    if (t.result === 'valid') expect([r.valid, errors(r)]).toEqual([true, []]);
    else expect([r.valid, errors(r)]).toEqual([false, ['ERR_CHAIN_SIGNATURE_INVALID']]);
  });
});

describe('CRL signatures in revocation checking (ecdsa_secp256r1_sha256_test.json)', () => {
  it.each(cases(file))('%s', (_name, g, t) => {
    // The leaf's own signature is not what this case tests: it is accepted unchecked, so that the
    // CRL's is the only signature in question.
    const leaf = leafSignedWith(g, t.tcId, 2, new Uint8Array([0x30, 0x00]));
    substitute.set(Buffer.from(leaf.tbs).toString('hex'), true);
    const tbsCertList = seq(
      int(1),
      ECDSA_SHA256,
      CA_NAME,
      time(NOT_BEFORE),
      time(new Date(Date.UTC(2030, 0, 1))),
      ctx(0, false, seq(akiExt(keyId(groups.get(g)!.key)), extension(CRL_NUMBER, false, int(t.tcId)))),
    );
    substitute.set(Buffer.from(tbsCertList).toString('hex'), hex(t.msg));
    const crl = parseCrl(seq(tbsCertList, ECDSA_SHA256, bitString(hex(t.sig))));
    const before = calls.substituted;
    const r = validatePath(leaf.der, { anchors: [groups.get(g)!.ca], crls: [crl], requireRevocation: true, at: AT });
    expect(calls.substituted).toBeGreaterThan(before + 1);
    if (t.result === 'valid') expect([r.valid, r.revocationChecked, errors(r)]).toEqual([true, true, []]);
    else {
      // The CRL's signature does not verify, so it is not used and the leaf is not covered.
      expect([r.valid, r.revocationChecked]).toEqual([false, false]);
      expect(errors(r)).toEqual(['ERR_CRL_MISSING', 'ERR_CRL_SIGNATURE_INVALID']);
    }
  });
});

describe('CSR proof of possession in parseCsr (ecdsa_secp256r1_sha256_test.json)', () => {
  it.each(cases(file))('%s', (_name, g, t) => {
    // CertificationRequestInfo ::= SEQUENCE { version 0, subject, subjectPKInfo, attributes [0] }
    const cri = seq(int(0), name([{ type: 'CN', value: `tcId ${t.tcId}` }]), hex(g.publicKeyDer), ctx(0, false));
    substitute.set(Buffer.from(cri).toString('hex'), hex(t.msg));
    let outcome: string;
    try {
      const csr = parseCsr(seq(cri, ECDSA_SHA256, bitString(hex(t.sig))));
      outcome = csr.publicKeyBytes.length === 65 ? 'parsed' : 'no key';
    } catch (e) {
      outcome = isSmkiError(e) ? e.code : String(e);
    }
    expect(outcome).toBe(t.result === 'valid' ? 'parsed' : 'ERR_CSR_SIGNATURE_INVALID');
  });
});

it('the harness: without a substitution, pki verifies the real to-be-signed DER (so a vector signature fails there)', () => {
  const g = file.testGroups[0]!;
  const t = g.tests.find((c) => c.result === 'valid')!;
  const { der } = leafSignedWith(g, t.tcId, 3, hex(t.sig));
  expect(errors(validatePath(der, { anchors: [groups.get(g)!.ca], at: AT }))).toEqual(['ERR_CHAIN_SIGNATURE_INVALID']);
});
