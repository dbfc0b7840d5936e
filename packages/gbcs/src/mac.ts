import { SmkiError, type KeyAgreement, type PrivateKeyInput } from '@smki/core';
import { apduBytes, buildGeneralCiphering, parseMessage, type GbcsMessage } from './codec.js';
import {
  computeMacBytes,
  decryptSensitivePayload,
  deriveKey,
  deriveKeyAsync,
  macAad,
  verifyMacBytes,
  type OtherInfoFields,
  type PeerPublicKeyInput,
} from './crypto.js';

/** Keys for a MAC held in this process: the local private key and the peer's public key. */
export interface MacKeys {
  /** The local key-agreement private key (the ACB's to make a MAC, the device's to check one). */
  readonly privateKey: PrivateKeyInput;
  /** The peer's key-agreement public key or certificate. */
  readonly publicKey: PeerPublicKeyInput;
}

/** Keys for a MAC whose private key cannot leave its home (an HSM, the key store). */
export interface AsyncMacKeys {
  /** Performs the ECDH. */
  readonly keyAgreement: KeyAgreement;
  /** The peer's key-agreement public key or certificate. */
  readonly publicKey: PeerPublicKeyInput;
}

function asMessage(m: GbcsMessage | Uint8Array): GbcsMessage {
  return m instanceof Uint8Array ? parseMessage(m) : m;
}

/** The OtherInfo fields of a message's MAC: the APDU's own originator (the User's), counter, recipient and CRA. */
function macFields(m: GbcsMessage): OtherInfoFields {
  return { originator: m.originator, recipient: m.recipient, counter: m.originatorCounter, mode: m.cra };
}

function requireCiphered(m: GbcsMessage): Uint8Array {
  if (m.frame !== 'ciphered' || !m.mac) throw new SmkiError('ERR_GBCS_NOT_CIPHERED', 'the message is not a general-ciphering frame: it carries no MAC', { offset: 0 });
  return m.mac;
}

/**
 * The 12-byte MAC of a message's general-signing APDU (as received, signature field included):
 * K from the KDF over (originator, CRA mode, originator counter, recipient), then the AES-128-GCM
 * tag with IV = originator title ‖ 00000000 and AAD = 11 00 00 00 00 00 ‖ APDU.
 * @throws SmkiError `ERR_GBCS_MALFORMED`, `ERR_KEY_INVALID`
 * @see docs/domain.md §4 (ACB MAC)
 */
export function computeMac(message: GbcsMessage | Uint8Array, keys: MacKeys): Uint8Array {
  const m = asMessage(message);
  const key = deriveKey({ ...macFields(m), privateKey: keys.privateKey, publicKey: keys.publicKey });
  return computeMacBytes({ key, originator: m.originator, aad: macAad(apduBytes(m)) });
}

/** {@link computeMac} with the private key behind a `KeyAgreement` (an HSM). */
export async function computeMacAsync(message: GbcsMessage | Uint8Array, keys: AsyncMacKeys): Promise<Uint8Array> {
  const m = asMessage(message);
  const key = await deriveKeyAsync({ ...macFields(m), keyAgreement: keys.keyAgreement, publicKey: keys.publicKey });
  return computeMacBytes({ key, originator: m.originator, aad: macAad(apduBytes(m)) });
}

/**
 * Check the MAC of a general-ciphering frame, over the APDU bytes as received (constant-time
 * compare). A device checks the ACB's MAC with its own KA private key and the ACB's KA public key;
 * a head-end checks a device's response MAC (mode 02) the other way round.
 * @throws SmkiError `ERR_GBCS_NOT_CIPHERED`, `ERR_GBCS_MALFORMED`, `ERR_KEY_INVALID`
 * @see docs/domain.md §4
 */
export function verifyMac(message: GbcsMessage | Uint8Array, keys: MacKeys): boolean {
  const m = asMessage(message);
  const mac = requireCiphered(m);
  const key = deriveKey({ ...macFields(m), privateKey: keys.privateKey, publicKey: keys.publicKey });
  return verifyMacBytes({ key, originator: m.originator, aad: macAad(apduBytes(m)), mac });
}

/** {@link verifyMac} with the private key behind a `KeyAgreement`. */
export async function verifyMacAsync(message: GbcsMessage | Uint8Array, keys: AsyncMacKeys): Promise<boolean> {
  const m = asMessage(message);
  const mac = requireCiphered(m);
  const key = await deriveKeyAsync({ ...macFields(m), keyAgreement: keys.keyAgreement, publicKey: keys.publicKey });
  return verifyMacBytes({ key, originator: m.originator, aad: macAad(apduBytes(m)), mac });
}

function requireApdu(signedApdu: Uint8Array): GbcsMessage {
  const m = parseMessage(signedApdu);
  if (m.frame !== 'signed') throw new SmkiError('ERR_GBCS_NOT_PRE_COMMAND', 'wrapWithMac takes a general-signing APDU (DF), not a ciphered frame', { offset: 0 });
  return m;
}

/**
 * The ACB's counter-signature: wrap a general-signing APDU (a signed pre-command, or an unsigned
 * non-critical command) in a general-ciphering frame with its MAC. The APDU's bytes are kept as
 * they are; only the frame around them is built.
 * @throws SmkiError `ERR_GBCS_NOT_PRE_COMMAND` (already a DD frame), `ERR_GBCS_MALFORMED`, `ERR_KEY_INVALID`
 * @see docs/domain.md §3 (general-ciphering frame), §4 (ACB MAC)
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { buildMessage, verifyMac, wrapWithMac } from '@smki/gbcs';
 * const acb = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const meter = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const apdu = buildMessage({ cra: 'command', originatorCounter: 7n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x0050, payload: new Uint8Array([0xd9]), signatureField: 'empty' });
 * const frame = wrapWithMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey });
 * console.log(verifyMac(frame, { privateKey: meter.privateKey, publicKey: acb.publicKey })); // true
 * ```
 */
export function wrapWithMac(signedApdu: Uint8Array, keys: MacKeys): Uint8Array {
  const m = requireApdu(signedApdu);
  return buildGeneralCiphering(m.bytes, computeMac(m, keys));
}

/** {@link wrapWithMac} with the ACB's private key behind a `KeyAgreement` (an HSM). */
export async function wrapWithMacAsync(signedApdu: Uint8Array, keys: AsyncMacKeys): Promise<Uint8Array> {
  const m = requireApdu(signedApdu);
  return buildGeneralCiphering(m.bytes, await computeMacAsync(m, keys));
}

/**
 * Decrypt a sensitive payload (`31 ‖ invocation counter ‖ ciphertext ‖ tag`) carried in a
 * response or alert: the mode-04 key uses the supplementary originator counter if present (else
 * the originator counter) and the supplementary remote party id if present (else the recipient).
 * @throws SmkiError `ERR_GBCS_DECRYPT_FAILED`, `ERR_GBCS_MALFORMED`, `ERR_KEY_INVALID`
 * @see docs/domain.md §4 (sensitive payloads)
 */
export function decryptPayload(message: GbcsMessage | Uint8Array, data: Uint8Array, keys: MacKeys): Uint8Array {
  const m = asMessage(message);
  const key = deriveKey({
    originator: m.originator,
    recipient: m.supplementaryRemotePartyId ?? m.recipient,
    counter: m.supplementaryOriginatorCounter ?? m.originatorCounter,
    mode: 'payload',
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
  });
  return decryptSensitivePayload({ key, originator: m.originator, data });
}
