// Project Wycheproof P-256 vectors against core's public verifiers and key agreement
// (test-vectors/wycheproof/, unmodified; see its README.md). Every case runs; every "acceptable"
// case is decided in _wycheproof.ts with its reason.
// FIPS 186-5 §6.4.2 (ECDSA verification), RFC 5480 §2.1.1 and §2.2 (SPKI, ECDSA-Sig-Value),
// SEC 1 v2 §3.3.1 (ECDH primitive), NIST SP 800-56A Rev. 3 §5.7.1.2.
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, isSmkiError, toHex, toPublicKey, verifyDer, verifyP1363 } from '@smki/core';
import { cases, decide, ecdhPoint, ecdhSpki, ecdsaDer, ecdsaP1363, hex, privateKeyOf, sec1Der, type EcdhCase } from './_wycheproof.js';

describe('ECDSA P-256/SHA-256, r ‖ s: verifyP1363 (ecdsa_secp256r1_sha256_p1363_test.json)', () => {
  const file = ecdsaP1363();
  const keys = new Map(file.testGroups.map((g) => [g, toPublicKey(hex(g.publicKeyDer))]));

  it('the file is the P-256/SHA-256 one and has no acceptable case to decide', () => {
    expect(file.testGroups.every((g) => g.sha === 'SHA-256')).toBe(true);
    expect(cases(file).filter(([, , t]) => t.result === 'acceptable')).toEqual([]);
  });

  it.each(cases(file))('%s', (_name, g, t) => {
    const ok = verifyP1363(keys.get(g)!, hex(t.msg), hex(t.sig));
    // No acceptable cases here: valid verifies (high-S included: tcId 1 is Wycheproof's malleated,
    // high-S signature, and real GBCS traffic has them), invalid does not.
    expect(ok).toBe(t.result === 'valid');
  });

  it('the group key works the same as a KeyObject node made from the same SPKI (checked once, then cached)', () => {
    const g = file.testGroups[0]!;
    const t = g.tests.find((c) => c.result === 'valid')!;
    const foreign = createPublicKey({ key: Buffer.from(hex(g.publicKeyDer)), format: 'der', type: 'spki' });
    expect(verifyP1363(foreign, hex(t.msg), hex(t.sig))).toBe(true);
    expect(verifyP1363(foreign, hex(t.msg), hex(t.sig))).toBe(true);
  });
});

describe('ECDSA P-256/SHA-256, DER: verifyDer (ecdsa_secp256r1_sha256_test.json)', () => {
  const file = ecdsaDer();
  const keys = new Map(file.testGroups.map((g) => [g, toPublicKey(g.publicKeyPem)]));

  it('the file has no acceptable case to decide', () => {
    expect(cases(file).filter(([, , t]) => t.result === 'acceptable')).toEqual([]);
  });

  it.each(cases(file))('%s', (_name, g, t) => {
    // Strict DER stays strict: the BerEncodedSignature and InvalidEncoding cases are invalid
    // upstream and refused here; high-S DER signatures are valid and accepted.
    expect(verifyDer(keys.get(g)!, hex(t.msg), hex(t.sig))).toBe(t.result === 'valid');
  });
});

/** Run one ECDH case through createKeyAgreement: Z, or the refusal's code. */
async function agree(t: EcdhCase, peer: Uint8Array): Promise<{ z: string } | { code: string }> {
  try {
    const ka = createKeyAgreement(sec1Der(t.private));
    return { z: toHex(await ka.deriveSharedSecret(peer)) };
  } catch (e) {
    if (isSmkiError(e)) return { code: e.code };
    throw e;
  }
}

function expectDecided(t: EcdhCase, out: { z: string } | { code: string }): void {
  const d = decide(t);
  if (d.accept) expect(out).toEqual({ z: t.shared.toUpperCase() });
  else expect(d.codes).toContain((out as { code?: string }).code);
}

describe('ECDH P-256, peer key as SPKI DER: createKeyAgreement().deriveSharedSecret (ecdh_secp256r1_test.json)', () => {
  const file = ecdhSpki();

  it.each(cases(file).map(([n, , t]) => [n, t] as const))('%s', async (_name, t) => {
    expectDecided(t, await agree(t, hex(t.public)));
  });

  it('the explicit-parameter keys equal to P-256 (tcId 359, 361) are refused, also as a KeyObject node made', async () => {
    for (const id of [359, 361, 360, 362]) {
      const t = file.testGroups[0]!.tests.find((c) => c.tcId === id)!;
      expect(await agree(t, hex(t.public))).toEqual({ code: 'ERR_KEY_CURVE_UNSUPPORTED' });
      const foreign = createPublicKey({ key: Buffer.from(hex(t.public)), format: 'der', type: 'spki' });
      expect(foreign.asymmetricKeyDetails?.namedCurve).toBe('prime256v1'); // node takes it for P-256
      expect(await agree(t, foreign as unknown as Uint8Array)).toEqual({ code: 'ERR_KEY_CURVE_UNSUPPORTED' });
    }
  });

  it('the private key in each accepted form gives the same Z (KeyObject, SEC 1 DER, PEM)', async () => {
    const t = file.testGroups[0]!.tests[0]!;
    const priv = privateKeyOf(t.private);
    for (const form of [priv, sec1Der(t.private), priv.export({ format: 'pem', type: 'pkcs8' }) as string, priv.export({ format: 'pem', type: 'sec1' }) as string]) {
      expect(toHex(await createKeyAgreement(form).deriveSharedSecret(hex(t.public)))).toBe(t.shared.toUpperCase());
    }
  });
});

describe('ECDH P-256, peer key as a raw point: createKeyAgreement().deriveSharedSecret (ecdh_secp256r1_ecpoint_test.json)', () => {
  const file = ecdhPoint();

  it.each(cases(file).map(([n, , t]) => [n, t] as const))('%s', async (_name, t) => {
    expectDecided(t, await agree(t, hex(t.public)));
  });
});
