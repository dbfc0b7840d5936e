import { sign as nodeSign, type KeyObject } from 'node:crypto';
import {
  concatBytes,
  SmkiError,
  toPrivateKey,
  verifyP1363,
  type PrivateKeyInput,
  type Signer,
} from '@smki/core';
import type { SmkiCertificate } from '@smki/pki';
import { publicKeyFor } from './internal/keys.js';
import { parseMessage, signedBytes, type GbcsMessage } from './codec.js';

/**
 * A verification key as the GBCS functions accept it: a `KeyObject`, a parsed certificate, PEM
 * text (one block labelled `PUBLIC KEY` or `CERTIFICATE`, nothing else), DER (SPKI or a
 * certificate) or a 65-byte point.
 */
export type VerificationKeyInput = KeyObject | SmkiCertificate | string | Uint8Array;

/**
 * The public `KeyObject` of any accepted verification key input. A certificate must allow
 * digitalSignature; whether it belongs to the message's originator is for the caller (the
 * validator) to check.
 *
 * Security: PEM text is read by its label (RFC 7468): a `CERTIFICATE` block goes through the
 * certificate path and its key-usage check, a `PUBLIC KEY` block is a raw key the caller vouches
 * for, and a block under any other label (`X509 CERTIFICATE`, `TRUSTED CERTIFICATE`, …) is
 * refused, so a relabelled key-agreement certificate cannot verify a signature.
 * @throws SmkiError `ERR_KEY_INVALID` (also a certificate without digitalSignature),
 *   `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`
 * @see RFC 7468 §5, §13; RFC 5280 §4.2.1.3 (keyUsage); RFC 5480 §2.1.1
 */
export function toVerificationKey(key: VerificationKeyInput): KeyObject {
  return publicKeyFor(key, 'digitalSignature');
}

/**
 * Verify the User's (or a device's) ECDSA P-256/SHA-256 signature on a general-signing APDU: over
 * the bytes after the DF tag up to the last content byte, as they are in the message (never
 * re-encoded). High-S signatures are accepted (about half of real ones are). Returns false for a
 * message without a signature.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (bytes that do not parse), and as {@link toVerificationKey}
 * @see docs/domain.md §4 (User signature)
 */
export function verifySignature(message: GbcsMessage | Uint8Array, key: VerificationKeyInput): boolean {
  const m = message instanceof Uint8Array ? parseMessage(message) : message;
  if (m.signature === null) return false;
  return verifyP1363(toVerificationKey(key), signedBytes(m), m.signature);
}

/**
 * Sign a pre-command as the User: check it is an unsigned general-signing APDU, drop a trailing
 * empty signature (00), and append `40 ‖ r ‖ s` over the bytes after DF up to the last content
 * byte. The signer may be core's `Signer` (a key in an HSM or the key store) or a private key.
 * @throws SmkiError `ERR_GBCS_NOT_PRE_COMMAND` (not DF, e.g. a general-ciphering frame),
 *   `ERR_GBCS_ALREADY_SIGNED`, `ERR_GBCS_MALFORMED`
 * @see docs/domain.md §4 (signing a pre-command), §5 (DUIS flow)
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { buildMessage, signPreCommand, verifySignature } from '@smki/gbcs';
 * const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const pre = buildMessage({ cra: 'command', originatorCounter: 1n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x0050, payload: new Uint8Array([0xd9]), signatureField: 'empty' });
 * const signed = await signPreCommand(pre, privateKey);
 * console.log(verifySignature(signed, publicKey)); // true
 * ```
 */
export async function signPreCommand(preCommand: Uint8Array, signer: Signer | PrivateKeyInput): Promise<Uint8Array> {
  if (!(preCommand instanceof Uint8Array) || preCommand[0] !== 0xdf) {
    throw new SmkiError('ERR_GBCS_NOT_PRE_COMMAND', 'a pre-command is a general-signing APDU starting DF', { offset: 0 });
  }
  const m = parseMessage(preCommand);
  if (m.cra !== 'command') throw new SmkiError('ERR_GBCS_NOT_PRE_COMMAND', `a pre-command is a command; this APDU is a ${m.cra}`, { offset: 2 });
  if (m.signatureField === 'present') throw new SmkiError('ERR_GBCS_ALREADY_SIGNED', 'the pre-command already carries a signature', { offset: m.signedRange.end });
  const signature = isSigner(signer)
    ? await signer.sign(signedBytes(m))
    : new Uint8Array(nodeSign('sha256', signedBytes(m), { key: toPrivateKey(signer), dsaEncoding: 'ieee-p1363' }));
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new SmkiError('ERR_SIGNATURE_ENCODING', 'the signer did not return 64 bytes r‖s', {});
  }
  return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), signature);
}

function isSigner(v: unknown): v is Signer {
  return typeof v === 'object' && v !== null && typeof (v as Signer).sign === 'function' && (v as Signer).publicKey instanceof Uint8Array;
}
