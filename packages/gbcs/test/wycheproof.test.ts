// Project Wycheproof P-256 vectors against gbcs's public verification and key-derivation surfaces
// (test-vectors/wycheproof/, unmodified; decisions on "acceptable" cases in core's _wycheproof.ts).
// GBCS User signatures are ECDSA P-256/SHA-256 with r ‖ s (FIPS 186-5 §6.4.2, IEEE 1363); the ACB
// MAC key comes from ECDH P-256 (SEC 1 v2 §3.3.1) and the NIST SP 800-56A §5.8.2.1 one-step KDF.
//
// Which surface runs the ECDSA vectors: verifySignature(message, key), the one public gbcs
// verifier. It verifies the signature over signedBytes(message) (the APDU bytes after DF up to the
// last content byte). A Wycheproof message is fixed and is not a GBCS APDU, so each case is given
// as a GbcsMessage whose signed range is exactly the vector's msg and whose signature field is the
// vector's sig (a parsed real APDU with only those three fields replaced); everything from the key
// input (SPKI DER, PUBLIC KEY PEM, raw point, KeyObject) to the verdict is verifySignature's own
// code. The DER-signature file does not apply: GBCS carries r ‖ s only.
//
// Which surfaces run the ECDH vectors: deriveKey (private key given), and deriveKeyAsync (private
// key behind core's KeyAgreement), with the peer key as the vector gives it (SPKI DER, also as
// PUBLIC KEY PEM; or the raw point). The derived key must equal kdf(Z, OtherInfo) with the
// vector's Z; a refused case must be refused with a key code.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, derToPem, isSmkiError, toHex, type SmkiErrorCode } from '@smki/core';
import { buildMessage, parseMessage, signedBytes, type GbcsMessage } from '../src/codec.js';
import { deriveKey, deriveKeyAsync, kdf, otherInfo } from '../src/crypto.js';
import { signPreCommand, verifySignature, type VerificationKeyInput } from '../src/signature.js';
import { cases, decide, ECDH_REFUSAL_CODES, ecdhPoint, ecdhSpki, ecdsaP1363, hex, privateKeyOf, sec1Der, type EcdhCase, type EcdsaGroup } from '../../core/test/_wycheproof.js';

/** A real parsed APDU, to be given the vector's signed bytes and signature. */
const TEMPLATE_FIELDS = { cra: 'command', originatorCounter: 1n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x0050, payload: new Uint8Array([0xd9]) } as const;
const template = parseMessage(buildMessage({ ...TEMPLATE_FIELDS, signatureField: 'empty' }));

/** A GbcsMessage whose signed range is `msg` and whose signature field is `sig`. */
function messageOf(msg: Uint8Array, sig: Uint8Array): GbcsMessage {
  const bytes = new Uint8Array([0xdf, ...msg]);
  return { ...template, bytes, apduRange: { start: 0, end: bytes.length }, signedRange: { start: 1, end: 1 + msg.length }, signatureField: 'present', signature: sig };
}

describe('ECDSA r ‖ s: verifySignature (ecdsa_secp256r1_sha256_p1363_test.json)', () => {
  const file = ecdsaP1363();
  /** The group's key in each form verifySignature accepts. */
  const forms = (g: EcdsaGroup): [string, VerificationKeyInput][] => [
    ['SPKI DER', hex(g.publicKeyDer)],
    ['PUBLIC KEY PEM', g.publicKeyPem],
    ['raw point', hex(g.publicKey.uncompressed)],
    ['KeyObject', createPublicKey(g.publicKeyPem)],
  ];
  const keys = new Map(file.testGroups.map((g) => [g, forms(g)]));

  it.each(cases(file))('%s', (_name, g, t) => {
    // No acceptable cases in this file. High-S (tcId 1, "signature malleability") is valid and
    // verifies: about half of real GBCS signatures are high-S.
    const m = messageOf(hex(t.msg), hex(t.sig));
    for (const [form, key] of keys.get(g)!) {
      expect([form, verifySignature(m, key)]).toEqual([form, t.result === 'valid']);
    }
  });

  it('the harness itself: a real signed APDU, rebuilt the way the vectors are, verifies the same', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const real = parseMessage(await signPreCommand(buildMessage({ ...TEMPLATE_FIELDS, signatureField: 'empty' }), privateKey));
    expect(verifySignature(real, publicKey)).toBe(true);
    expect(verifySignature(messageOf(signedBytes(real), real.signature!), publicKey)).toBe(true);
    expect(verifySignature(messageOf(signedBytes(real).subarray(1), real.signature!), publicKey)).toBe(false);
  });
});

const FIELDS = { originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 7n, mode: 'command' } as const;

/** deriveKey and deriveKeyAsync on one case and one peer-key form: the key, or the refusal's code. */
async function derive(t: EcdhCase, peer: Uint8Array | string): Promise<{ sync: string; async: string }> {
  const run = async (f: () => Uint8Array | Promise<Uint8Array>): Promise<string> => {
    try {
      return toHex(await f());
    } catch (e) {
      if (isSmkiError(e)) return e.code;
      throw e;
    }
  };
  return {
    sync: await run(() => deriveKey({ privateKey: sec1Der(t.private), publicKey: peer, ...FIELDS })),
    async: await run(() => deriveKeyAsync({ keyAgreement: createKeyAgreement(privateKeyOf(t.private)), publicKey: peer, ...FIELDS })),
  };
}

function expectDecided(t: EcdhCase, out: { sync: string; async: string }, extra: readonly SmkiErrorCode[] = []): void {
  const d = decide(t, [...ECDH_REFUSAL_CODES, ...extra]);
  if (d.accept) {
    const want = toHex(kdf(hex(t.shared), otherInfo(FIELDS)));
    expect(out).toEqual({ sync: want, async: want });
  } else {
    // The vector's result, or this project's decision for an acceptable case: refused, with a key code.
    expect([...d.codes, ...extra]).toContain(out.sync);
    expect(out.async).toBe(out.sync);
  }
}

describe('ECDH, peer key as SPKI DER and PEM: deriveKey, deriveKeyAsync (ecdh_secp256r1_test.json)', () => {
  const file = ecdhSpki();
  // DER bytes that do not start like an SPKI (a SEQUENCE whose first field is not a SEQUENCE
  // starting with an OID) go to the certificate parser, since a gbcs key input may be a
  // certificate: a re-encoded SPKI (InvalidAsn) can be refused there, as ERR_CERT_MALFORMED.
  // Under the PUBLIC KEY label there is no such guess: only the key codes.
  it.each(cases(file).map(([n, , t]) => [n, t] as const))('%s', async (_name, t) => {
    const der = hex(t.public);
    expectDecided(t, await derive(t, der), ['ERR_CERT_MALFORMED']);
    if (der.length > 0) expectDecided(t, await derive(t, derToPem(der, 'PUBLIC KEY')));
  });
});

describe('ECDH, peer key as a raw point: deriveKey, deriveKeyAsync (ecdh_secp256r1_ecpoint_test.json)', () => {
  const file = ecdhPoint();

  it.each(cases(file).map(([n, , t]) => [n, t] as const))('%s', async (_name, t) => {
    expectDecided(t, await derive(t, hex(t.public)));
  });
});
