// Project Wycheproof P-256 vectors (test-vectors/wycheproof/, Apache-2.0, copied unmodified) and
// the one place where this project decides each "acceptable" case. Shared by the Wycheproof
// harnesses of core, gbcs, keystore and pki (not a test file: vitest only runs *.test.ts).
//
// Wycheproof marks a case "acceptable" when an implementation may decide it either way. This
// project decides every such case by its flags, with the reason beside it; a case whose flags are
// not in ACCEPTABLE_DECISIONS fails the harness, so a new upstream flag cannot pass unnoticed.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SmkiErrorCode } from '@smki/core';

const DIR = join(import.meta.dirname, '..', '..', '..', 'test-vectors', 'wycheproof');

/** Wycheproof's result of a case. */
export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

/** One ECDSA case. */
export interface EcdsaCase {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly msg: string;
  readonly sig: string;
  readonly result: WycheproofResult;
}

/** One ECDSA group: a public key and its cases. */
export interface EcdsaGroup {
  readonly publicKey: { readonly uncompressed: string };
  readonly publicKeyDer: string;
  readonly publicKeyPem: string;
  readonly sha: string;
  readonly tests: readonly EcdsaCase[];
}

/** One ECDH case: the peer's public key (SPKI DER or raw point, hex), our private scalar, Z. */
export interface EcdhCase {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly public: string;
  readonly private: string;
  readonly shared: string;
  readonly result: WycheproofResult;
}

interface WycheproofFile<G> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: readonly G[];
}

function load<G>(name: string): WycheproofFile<G> {
  return JSON.parse(readFileSync(join(DIR, name), 'utf8')) as WycheproofFile<G>;
}

/** ECDSA P-256/SHA-256 with r ‖ s signatures. */
export const ecdsaP1363 = (): WycheproofFile<EcdsaGroup> => load('ecdsa_secp256r1_sha256_p1363_test.json');
/** ECDSA P-256/SHA-256 with DER signatures. */
export const ecdsaDer = (): WycheproofFile<EcdsaGroup> => load('ecdsa_secp256r1_sha256_test.json');
/** ECDH P-256, the peer's key as SubjectPublicKeyInfo DER. */
export const ecdhSpki = (): WycheproofFile<{ readonly tests: readonly EcdhCase[] }> => load('ecdh_secp256r1_test.json');
/** ECDH P-256, the peer's key as a raw point. */
export const ecdhPoint = (): WycheproofFile<{ readonly tests: readonly EcdhCase[] }> => load('ecdh_secp256r1_ecpoint_test.json');

/** Every case of a file with its group, for `it.each`. */
export function cases<G extends { readonly tests: readonly CaseBase[] }>(file: WycheproofFile<G>): [string, G, G['tests'][number]][] {
  const out: [string, G, G['tests'][number]][] = [];
  for (const g of file.testGroups) for (const t of g.tests) out.push([label(t), g, t]);
  if (out.length !== file.numberOfTests) throw new Error(`the file says ${file.numberOfTests} tests, found ${out.length}`);
  return out;
}

interface CaseBase {
  readonly tcId: number;
  readonly comment: string;
  readonly result: WycheproofResult;
  readonly flags: readonly string[];
}

function label(t: CaseBase): string {
  return `tcId ${t.tcId} ${t.result} [${t.flags.join(',')}] ${t.comment}`.slice(0, 140);
}

/** How this project decides a case: accepted, or refused with one of these codes. */
export type Decision = { readonly accept: true } | { readonly accept: false; readonly codes: readonly SmkiErrorCode[]; readonly reason: string };

/**
 * The decision for each flag that makes a case "acceptable", and why. A case is decided by the
 * first of its flags found here.
 */
export const ACCEPTABLE_DECISIONS: Readonly<Record<string, Decision>> = Object.freeze({
  // SEC 1 §2.3.3 allows compressed points; the SMKI certificate profile and GBCS carry the
  // uncompressed form 04 ‖ X ‖ Y only, so a compressed peer key is refused.
  CompressedPublic: { accept: false, codes: ['ERR_KEY_INVALID'], reason: 'SMKI profile: uncompressed points only' },
  CompressedPoint: { accept: false, codes: ['ERR_KEY_INVALID'], reason: 'SMKI profile: uncompressed points only' },
  // RFC 5480 §2.1.1: "implicitCurve and specifiedCurve MUST NOT be used". Explicit parameters are
  // refused whatever they say (even P-256's own), so none of the modified-parameter cases
  // (UnusedParam: WrongOrder, ModifiedGenerator, ModifiedCofactor, NoCofactor,
  // ModifiedCurveParameter) can reach the arithmetic.
  UnnamedCurve: { accept: false, codes: ['ERR_KEY_CURVE_UNSUPPORTED'], reason: 'RFC 5480 2.1.1: named curve only' },
  // Keys are DER (X.690 §10). A BER length, a leading zero, an indefinite length or any other
  // re-encoding of the SubjectPublicKeyInfo is refused, even where the key inside is fine. Where
  // the change also makes the curve OID another OID, the refusal is the curve's.
  InvalidAsn: { accept: false, codes: ['ERR_KEY_INVALID', 'ERR_KEY_CURVE_UNSUPPORTED'], reason: 'keys are strict DER' },
});

/** Codes an invalid ECDH peer key may be refused with. */
export const ECDH_REFUSAL_CODES: readonly SmkiErrorCode[] = ['ERR_KEY_INVALID', 'ERR_KEY_CURVE_UNSUPPORTED'];

/** What the harness expects for a case: Wycheproof's verdict, or this project's for "acceptable". */
export function decide(t: { readonly result: WycheproofResult; readonly flags: readonly string[] }, refusal: readonly SmkiErrorCode[] = ECDH_REFUSAL_CODES): Decision {
  if (t.result === 'valid') return { accept: true };
  if (t.result === 'invalid') return { accept: false, codes: refusal, reason: 'Wycheproof: invalid' };
  for (const f of t.flags) {
    const d = Object.hasOwn(ACCEPTABLE_DECISIONS, f) ? ACCEPTABLE_DECISIONS[f] : undefined;
    if (d !== undefined) return d;
  }
  throw new Error(`an acceptable case with flags [${t.flags.join(', ')}] has no decision in ACCEPTABLE_DECISIONS: decide it`);
}

/** Bytes of a hex string. */
export const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/**
 * Wycheproof's private scalar (a big-endian integer, possibly with a leading 00 or shorter than 32
 * bytes) as a 32-byte big-endian scalar.
 */
export function scalar32(h: string): Uint8Array {
  let b = Buffer.from(h.length % 2 ? `0${h}` : h, 'hex');
  while (b.length > 32 && b[0] === 0) b = b.subarray(1);
  if (b.length > 32) throw new Error(`private scalar longer than 32 bytes: ${h}`);
  const out = new Uint8Array(32);
  out.set(b, 32 - b.length);
  return out;
}

/** SEC 1 ECPrivateKey DER (RFC 5915) of a scalar, with the named curve P-256 and no public key. */
export function sec1Der(privateHex: string): Uint8Array {
  return new Uint8Array(
    Buffer.concat([Buffer.from('30310201010420', 'hex'), scalar32(privateHex), Buffer.from('a00a06082a8648ce3d030107', 'hex')]),
  );
}

/** A P-256 private KeyObject of a Wycheproof scalar (made by node:crypto, independently of the toolkit). */
export function privateKeyOf(privateHex: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(sec1Der(privateHex)), format: 'der', type: 'sec1' });
}

/** The distinct private scalars of ECDH files, in first-seen order. */
export function distinctPrivates(...files: WycheproofFile<{ readonly tests: readonly EcdhCase[] }>[]): string[] {
  const seen = new Set<string>();
  for (const f of files) for (const g of f.testGroups) for (const t of g.tests) seen.add(Buffer.from(scalar32(t.private)).toString('hex'));
  return [...seen];
}
