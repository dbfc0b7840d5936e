/**
 * GBCS cryptography at the byte level: the NIST SP 800-56A one-step KDF with the GBCS OtherInfo,
 * the 12-byte AES-128-GCM MAC that the Access Control Broker (and a device, on responses) puts on
 * a general-signing APDU, and the encrypted "sensitive payload" octet strings of responses and
 * alerts. Nothing here parses or builds a GBCS frame: the codec hands over the raw APDU bytes,
 * titles and counters, so these functions stay independent of it.
 *
 * Security posture: tags are compared in constant time; every authorisation check fails closed;
 * no error carries key material, shared secrets or plaintext. Shared secrets (Z) are zeroed after
 * use (best effort: JavaScript cannot promise that no copy survives).
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, diffieHellman, timingSafeEqual } from 'node:crypto';
import {
  ByteReader,
  SmkiError,
  concatBytes,
  eui64ToBytes,
  parseEui64,
  toPrivateKey,
  type Eui64,
  type KeyAgreement,
  type PrivateKeyInput,
  type PublicKeyInput,
} from '@smki/core';
import type { SmkiCertificate } from '@smki/pki';
import { publicKeyFor } from './internal/keys.js';

// ---------------------------------------------------------------------------------------------
// inputs

/**
 * The purpose a derived key serves; it is the `mode` octet of the OtherInfo (docs/domain.md §4):
 * `command` 01, `response` 02, `alert` 03, `payload` 04 (sensitive-payload encryption).
 * The first three equal the CRA flag of the APDU they protect.
 * @see docs/domain.md §4 (ACB MAC step 2)
 */
export type KdfMode = 'command' | 'response' | 'alert' | 'payload';

/** The OtherInfo `mode` octet as a number: 1 command, 2 response, 3 alert, 4 payload encryption. */
export type KdfModeCode = 1 | 2 | 3 | 4;

/**
 * The OtherInfo `mode` octet of each {@link KdfMode}.
 * @see docs/domain.md §4 (ACB MAC step 2)
 */
export const KDF_MODES: Readonly<Record<KdfMode, KdfModeCode>> = Object.freeze({ command: 1, response: 2, alert: 3, payload: 4 });

/**
 * A GBCS system title (an EUI-64): an `Eui64` (`@smki/core`), any spelling `parseEui64` accepts, or its
 * 8 bytes as they appear on the wire.
 */
export type SystemTitleInput = Eui64 | string | Uint8Array;

/**
 * The peer's public key for ECDH: a `KeyObject`, PEM (one block labelled `PUBLIC KEY` or
 * `CERTIFICATE`, nothing else), DER (SPKI or a certificate), the raw 65-byte uncompressed point,
 * or a certificate from `@smki/pki`'s `parseCertificate`. A certificate must carry the
 * keyAgreement key usage. Keys are P-256 by the named-curve OID with uncompressed points only
 * (RFC 5480 §2.1.1).
 */
export type PeerPublicKeyInput = PublicKeyInput | SmkiCertificate;

/** The fields of the GBCS KDF OtherInfo (docs/domain.md §4). */
export interface OtherInfoFields {
  /**
   * The originator's system title: the one in the APDU header, i.e. the User's for a command —
   * never the ACB's, even though the ACB's key agreement key makes the MAC.
   */
  readonly originator: SystemTitleInput;
  /** What the key protects: a {@link KdfMode} or its octet 1–4. */
  readonly mode: KdfMode | KdfModeCode;
  /**
   * The originator counter (or, for mode `payload`, the supplementary originator counter when the
   * APDU has one): an unsigned 64-bit bigint.
   */
  readonly counter: bigint;
  /**
   * The recipient's system title (for mode `payload`, the supplementary remote party id when
   * the APDU has one).
   */
  readonly recipient: SystemTitleInput;
}

/** Options of {@link deriveKey}: the local private key, the peer's public key and the OtherInfo fields. */
export interface DeriveKeyOptions extends OtherInfoFields {
  /** The local key-agreement private key (`KeyObject`, PEM, PKCS#8 or SEC1 DER). */
  readonly privateKey: PrivateKeyInput;
  /** The peer's key-agreement public key (see {@link PeerPublicKeyInput}). */
  readonly publicKey: PeerPublicKeyInput;
}

/** Options of {@link deriveKeyAsync}: a key agreement (say, in an HSM) instead of a private key. */
export interface DeriveKeyAsyncOptions extends OtherInfoFields {
  /** Performs the ECDH; the private key never has to leave it. */
  readonly keyAgreement: KeyAgreement;
  /** The peer's key-agreement public key (see {@link PeerPublicKeyInput}). */
  readonly publicKey: PeerPublicKeyInput;
}

/** Options of {@link computeMacBytes}. */
export interface MacOptions {
  /** The 16-byte key from {@link deriveKey} (mode `command`, `response` or `alert`). */
  readonly key: Uint8Array;
  /** The originator's system title; the IV is this title ‖ 00000000. */
  readonly originator: SystemTitleInput;
  /** The additional authenticated data: {@link macAad} of the signed APDU. */
  readonly aad: Uint8Array;
}

/** Options of {@link verifyMacBytes} and {@link assertMacBytes}. */
export interface VerifyMacOptions extends MacOptions {
  /** The 12-byte MAC as received. */
  readonly mac: Uint8Array;
}

/** Options of {@link decryptSensitivePayload}. */
export interface DecryptSensitivePayloadOptions {
  /** The 16-byte key from {@link deriveKey} with mode `payload`. */
  readonly key: Uint8Array;
  /** The originator's system title (of the response or alert); the IV is this title ‖ 00000000. */
  readonly originator: SystemTitleInput;
  /** The octet string's value: `31 ‖ invocation counter (4) ‖ ciphertext ‖ tag (12)`. */
  readonly data: Uint8Array;
}

/** Options of {@link encryptSensitivePayload}. */
export interface EncryptSensitivePayloadOptions {
  /** The 16-byte key from {@link deriveKey} with mode `payload`. Use it for one plaintext only. */
  readonly key: Uint8Array;
  /** The originator's system title; the IV is this title ‖ 00000000. */
  readonly originator: SystemTitleInput;
  /** The bytes to protect. */
  readonly plaintext: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// constants

/** Length of a derived key (AES-128). */
export const GBCS_KEY_LENGTH = 16;
/** Length of a GBCS MAC or sensitive-payload tag: AES-GCM tags are truncated to 96 bits. */
export const GBCS_TAG_LENGTH = 12;

/** OtherInfo starts with this AlgorithmID (docs/domain.md §4). */
const OTHER_INFO_PREFIX = Uint8Array.of(0x60, 0x85, 0x74, 0x06, 0x08, 0x03, 0x00);
const OTHER_INFO_LENGTH = 33;
/** The MAC's AAD starts with these six octets, then the whole general-signing APDU (docs/domain.md §4 step 3). */
const MAC_AAD_PREFIX = Uint8Array.of(0x11, 0x00, 0x00, 0x00, 0x00, 0x00);
/** Security control byte of a sensitive payload, which is also its whole AAD (docs/domain.md §4). */
const PAYLOAD_SECURITY_CONTROL = 0x31;
const PAYLOAD_AAD = Uint8Array.of(PAYLOAD_SECURITY_CONTROL);
const PAYLOAD_HEADER_LENGTH = 5;
const Z_LENGTH = 32;
const IV_LENGTH = 12;
const MAX_U64 = (1n << 64n) - 1n;
const KDF_COUNTER = Uint8Array.of(0, 0, 0, 1);
const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// helpers

function titleBytes(title: SystemTitleInput, what: string): Uint8Array {
  if (title instanceof Uint8Array) {
    if (title.length !== 8) {
      throw new SmkiError('ERR_GBCS_INVALID_FIELD', `${what} system title must be 8 bytes`, { detail: `${what}: ${title.length} bytes` });
    }
    return title;
  }
  if (typeof title !== 'string') {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', `${what} system title must be an EUI-64`, { detail: `${what}: ${typeof title}` });
  }
  return eui64ToBytes(parseEui64(title));
}

function modeOctet(mode: KdfMode | KdfModeCode): KdfModeCode {
  if (typeof mode === 'string' && Object.hasOwn(KDF_MODES, mode)) return KDF_MODES[mode];
  if (mode === 1 || mode === 2 || mode === 3 || mode === 4) return mode;
  throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'KDF mode must be command, response, alert, payload or 1..4', {
    detail: `mode: ${String(mode).slice(0, 32)}`,
  });
}

function u64Bytes(counter: bigint): Uint8Array {
  if (typeof counter !== 'bigint') {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'counter must be a bigint (unsigned 64-bit)', { detail: `counter: ${typeof counter}` });
  }
  if (counter < 0n || counter > MAX_U64) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', 'counter is outside [0, 2^64)', { detail: `counter: ${counter}` });
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, counter);
  return out;
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== GBCS_KEY_LENGTH) {
    // Only the length is reported: never the key.
    throw new SmkiError('ERR_KEY_INVALID', 'expected a 16-byte AES-128 key', {
      detail: key instanceof Uint8Array ? `length ${key.length}` : typeof key,
    });
  }
}

function checkBytes(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array)) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', `${what} must be a Uint8Array`, { detail: `${what}: ${value === null ? 'null' : typeof value}` });
  }
}

// ---------------------------------------------------------------------------------------------
// KDF

/**
 * The GBCS KDF OtherInfo: `60 85 74 06 08 03 00 ‖ originator (8) ‖ 09 ‖ mode ‖ counter (8,
 * big-endian) ‖ recipient (8)`, 33 bytes.
 *
 * The originator is the originator of the APDU — for a command, the User — not the ACB whose key
 * makes the MAC.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (counter not a bigint in [0, 2^64), unknown mode, a
 *   title that is not 8 bytes), `ERR_EUI64_INVALID` (a title string that is not an EUI-64)
 * @see docs/domain.md §4 (ACB MAC step 2); NIST SP 800-56A Rev. 3 §5.8.2.1 (OtherInfo)
 * @example
 * ```ts
 * import { otherInfo } from '@smki/gbcs';
 * const info = otherInfo({ originator: '90B3D51F30010000', mode: 'command', counter: 1000n, recipient: '00DB1234567890A0' });
 * // 6085740608030090B3D51F30010000090100000000000003E800DB1234567890A0
 * ```
 */
export function otherInfo(fields: OtherInfoFields): Uint8Array {
  const originator = titleBytes(fields.originator, 'originator');
  const mode = modeOctet(fields.mode);
  const counter = u64Bytes(fields.counter);
  const recipient = titleBytes(fields.recipient, 'recipient');
  const out = new Uint8Array(OTHER_INFO_LENGTH);
  out.set(OTHER_INFO_PREFIX, 0);
  out.set(originator, 7);
  out[15] = 0x09;
  out[16] = mode;
  out.set(counter, 17);
  out.set(recipient, 25);
  return out;
}

/**
 * The NIST SP 800-56A one-step KDF with SHA-256 as GBCS uses it: the first 16 bytes of
 * `SHA-256(00000001 ‖ Z ‖ OtherInfo)`. Exported for known-answer tests and for callers that
 * already hold Z; most callers want {@link deriveKey}.
 *
 * Security: `z` is a secret; the caller owns it and should zero it after use. The result is a
 * key: keep it out of logs.
 * @param z - the 32-byte ECDH shared secret (the x-coordinate)
 * @param info - the OtherInfo, normally from {@link otherInfo}
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (Z not 32 bytes, OtherInfo not bytes)
 * @see docs/domain.md §4 (ACB MAC step 2); NIST SP 800-56A Rev. 3 §5.8.2.1 (one-step KDF)
 * @example
 * ```ts
 * import { kdf, otherInfo } from '@smki/gbcs';
 * import { fromHex } from '@smki/core';
 * const z = fromHex('ED342441DF01551A6BEAFF3B54ADC981F4C6A7E71DFF4C3E1CC80B3C9F4E5AC0');
 * const k = kdf(z, otherInfo({ originator: '90B3D51F30010000', mode: 'command', counter: 1000n, recipient: '00DB1234567890A0' }));
 * // k = EC1D51BD8F8BF0CDD2314CF396CC12C0
 * ```
 */
export function kdf(z: Uint8Array, info: Uint8Array): Uint8Array {
  checkBytes(z, 'Z');
  checkBytes(info, 'OtherInfo');
  if (z.length !== Z_LENGTH) throw new SmkiError('ERR_INVALID_ARGUMENT', 'Z must be the 32-byte P-256 x-coordinate', { detail: `length ${z.length}` });
  const digest = createHash('sha256').update(KDF_COUNTER).update(z).update(info).digest();
  const key = new Uint8Array(digest.subarray(0, GBCS_KEY_LENGTH));
  digest.fill(0);
  return key;
}

/**
 * Derive the 16-byte GBCS key for one APDU: Z = ECDH P-256 x-coordinate of `privateKey` and
 * `publicKey`, then K = {@link kdf}(Z, {@link otherInfo}(…)). Both ends derive the same key (ACB
 * private × device public = device private × ACB public).
 *
 * For the ACB MAC on a command: the ACB's KA private key, the device's KA public key, mode
 * `command`, and the User's (the APDU's) originator title and counter. For a device MAC on a
 * response: the device's KA key, the recipient's KA public key, mode `response`.
 *
 * Security: a certificate given as `publicKey` is only checked for the keyAgreement usage; its
 * chain, validity and revocation are the caller's to check (`@smki/pki` validatePath) before the
 * key is trusted. Pass a `KeyObject` for speed: PEM and DER are parsed on every call. Z is zeroed
 * after use.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_KEY_NOT_FOR_KEY_AGREEMENT`
 *   (a certificate without keyAgreement), `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`,
 *   `ERR_GBCS_INVALID_FIELD`, `ERR_EUI64_INVALID`
 * @see docs/domain.md §4 (ACB MAC steps 1–2); NIST SP 800-56A Rev. 3 §5.7.1.2 (ECC CDH) and §5.8.2.1
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { deriveKey } from '@smki/gbcs';
 * const acb = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const fields = { originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 1000n, mode: 'command' } as const;
 * const k = deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...fields });
 * const same = deriveKey({ privateKey: device.privateKey, publicKey: acb.publicKey, ...fields });
 * ```
 */
export function deriveKey(options: DeriveKeyOptions): Uint8Array {
  const info = otherInfo(options);
  const privateKey = toPrivateKey(options.privateKey);
  const publicKey = publicKeyFor(options.publicKey, 'keyAgreement');
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey, publicKey });
  } catch (cause) {
    throw new SmkiError('ERR_KEY_INVALID', 'ECDH failed', {}, { cause });
  }
  try {
    return kdf(z, info);
  } finally {
    z.fill(0);
  }
}

/**
 * {@link deriveKey} with a `KeyAgreement` (`@smki/core`) (for a private key in an HSM or a key store): the
 * peer's public key goes to `keyAgreement.deriveSharedSecret` as a checked P-256 `KeyObject`
 * (the interface allows a point or a `KeyObject`; this saves a re-import for in-process keys).
 *
 * Security: the OtherInfo fields and the peer key are checked before the key agreement is asked,
 * so a bad request never reaches the HSM. The returned Z is zeroed after use.
 * @throws SmkiError as {@link deriveKey}; `ERR_INVALID_ARGUMENT` (not a KeyAgreement);
 *   `ERR_KEY_INVALID` (the key agreement returned something other than 32 bytes); and whatever the
 *   key agreement throws (e.g. `ERR_KEY_NOT_FOR_KEY_AGREEMENT`, `ERR_HSM_OPERATION_FAILED`)
 * @see docs/domain.md §4 (ACB MAC steps 1–2); NIST SP 800-56A Rev. 3 §5.8.2.1
 * @example
 * ```ts
 * import { generateKeyPairSync } from 'node:crypto';
 * import { createKeyAgreement } from '@smki/core';
 * import { deriveKeyAsync } from '@smki/gbcs';
 * const acb = createKeyAgreement(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
 * const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const k = await deriveKeyAsync({
 *   keyAgreement: acb,
 *   publicKey: device.publicKey,
 *   originator: '90B3D51F30010000',
 *   recipient: '00DB1234567890A0',
 *   counter: 1000n,
 *   mode: 'command',
 * });
 * ```
 */
export async function deriveKeyAsync(options: DeriveKeyAsyncOptions): Promise<Uint8Array> {
  const info = otherInfo(options);
  const agreement = options.keyAgreement;
  if (typeof agreement !== 'object' || agreement === null || typeof agreement.deriveSharedSecret !== 'function') {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'keyAgreement must implement deriveSharedSecret', { detail: typeof agreement });
  }
  const peer = publicKeyFor(options.publicKey, 'keyAgreement');
  const z = await agreement.deriveSharedSecret(peer);
  try {
    if (!(z instanceof Uint8Array) || z.length !== Z_LENGTH) {
      throw new SmkiError('ERR_KEY_INVALID', 'the key agreement did not return a 32-byte shared secret', {
        detail: z instanceof Uint8Array ? `length ${z.length}` : typeof z,
      });
    }
    return kdf(z, info);
  } finally {
    if (z instanceof Uint8Array) z.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// AES-128-GCM, MAC

/**
 * The 12-byte GCM IV of GBCS: the originator's system title ‖ 00000000.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD`, `ERR_EUI64_INVALID`
 * @see docs/domain.md §4 (ACB MAC step 3)
 */
export function gcmIv(originator: SystemTitleInput): Uint8Array {
  const iv = new Uint8Array(IV_LENGTH);
  iv.set(titleBytes(originator, 'originator'), 0);
  return iv;
}

/**
 * The 12-byte (96-bit) AES-128-GCM authentication tag of `plaintext` (empty by default: GMAC)
 * under `key`, `iv` and `aad`. The ciphertext is discarded; use
 * {@link encryptSensitivePayload} to encrypt.
 *
 * Security: GCM is broken if one key ever sees two different messages under one IV. GBCS keys are
 * per message (the counter is in the OtherInfo), so a fixed IV per originator is safe only while
 * each key protects a single message.
 * @throws SmkiError `ERR_KEY_INVALID` (key not 16 bytes), `ERR_INVALID_ARGUMENT` (IV not 12 bytes,
 *   AAD or plaintext not bytes)
 * @see docs/domain.md §4 (ACB MAC step 3, known answer); NIST SP 800-38D §7.1 (GCM-AE), §5.2.1.2 (tag length)
 * @example
 * ```ts
 * import { gcmTag } from '@smki/gbcs';
 * import { fromHex } from '@smki/core';
 * const tag = gcmTag(fromHex('000102030405060708090A0B0C0D0E0F'), fromHex('90B3D51F3003000000000000'), new TextEncoder().encode('helloworld'));
 * // tag = FB3AFED43B78508864F00DA3
 * ```
 */
export function gcmTag(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array = EMPTY): Uint8Array {
  checkKey(key);
  checkBytes(iv, 'IV');
  checkBytes(aad, 'AAD');
  checkBytes(plaintext, 'plaintext');
  if (iv.length !== IV_LENGTH) throw new SmkiError('ERR_INVALID_ARGUMENT', 'the GCM IV must be 12 bytes', { detail: `length ${iv.length}` });
  const cipher = createCipheriv('aes-128-gcm', key, iv, { authTagLength: GBCS_TAG_LENGTH });
  cipher.setAAD(aad);
  // Stryker disable next-line ConditionalExpression,EqualityOperator: GCM over an empty plaintext gives the same tag with or without update(); the test only spares the MAC path a native call
  if (plaintext.length > 0) cipher.update(plaintext).fill(0);
  cipher.final();
  return new Uint8Array(cipher.getAuthTag());
}

/**
 * The additional authenticated data of a GBCS MAC: `11 00 00 00 00 00 ‖ signedApdu`, where
 * `signedApdu` is the whole general-signing APDU (from its DF tag through its signature-length
 * octet and signature, if any) exactly as it travels — pass the raw slice of the frame, never a
 * re-encoding.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (not bytes), `ERR_GBCS_MALFORMED` (empty, or not
 *   starting with the DF tag)
 * @see docs/domain.md §3 (general-ciphering frame), §4 (ACB MAC step 3)
 */
export function macAad(signedApdu: Uint8Array): Uint8Array {
  checkBytes(signedApdu, 'APDU');
  if (signedApdu[0] !== 0xdf) { // an empty APDU has no byte 0 (undefined), so it is refused here too
    throw new SmkiError('ERR_GBCS_MALFORMED', 'the MAC covers a general-signing APDU, which starts with DF', { offset: 0 });
  }
  return concatBytes(MAC_AAD_PREFIX, signedApdu);
}

/**
 * The 12-byte GBCS MAC: the AES-128-GCM tag over an empty plaintext with IV = originator title ‖
 * 00000000 and the given AAD ({@link macAad} of the signed APDU).
 *
 * Security: `key` comes from {@link deriveKey} with the APDU's own counter and mode, so each key
 * MACs one APDU. Computing a MAC is the ACB's authorisation: check the User's signature, the
 * certificate chain, revocation and the counter before calling this.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_INVALID_ARGUMENT`, `ERR_GBCS_INVALID_FIELD`, `ERR_EUI64_INVALID`
 * @see docs/domain.md §4 (ACB MAC step 3); NIST SP 800-38D §7.1 (GMAC is GCM with empty plaintext)
 * @example
 * ```ts
 * import { computeMacBytes, macAad } from '@smki/gbcs';
 * declare const key: Uint8Array; // deriveKey(...) with mode 'command'
 * declare const signedApdu: Uint8Array; // the DF… APDU from the frame
 * const mac = computeMacBytes({ key, originator: '90B3D51F30010000', aad: macAad(signedApdu) });
 * ```
 */
export function computeMacBytes(options: MacOptions): Uint8Array {
  return gcmTag(options.key, gcmIv(options.originator), options.aad);
}

/**
 * Whether `mac` is the GBCS MAC of `aad` under `key` ({@link computeMacBytes}); compares in
 * constant time with `crypto.timingSafeEqual`. A MAC that is not 12 bytes is false. Fails closed:
 * only a matching tag gives `true`.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_INVALID_ARGUMENT`, `ERR_GBCS_INVALID_FIELD`,
 *   `ERR_EUI64_INVALID` (bad inputs other than the MAC itself)
 * @see docs/domain.md §4 (ACB MAC step 3); NIST SP 800-38D §7.2 (tag comparison)
 * @example
 * ```ts
 * import { verifyMacBytes, macAad } from '@smki/gbcs';
 * declare const key: Uint8Array;
 * declare const signedApdu: Uint8Array;
 * declare const mac: Uint8Array; // the last 12 bytes of the frame
 * if (!verifyMacBytes({ key, originator: '90B3D51F30010000', aad: macAad(signedApdu), mac })) throw new Error('bad MAC');
 * ```
 */
export function verifyMacBytes(options: VerifyMacOptions): boolean {
  const expected = computeMacBytes(options);
  const mac = options.mac;
  if (!(mac instanceof Uint8Array) || mac.length !== GBCS_TAG_LENGTH) return false;
  return timingSafeEqual(expected, mac);
}

/**
 * {@link verifyMacBytes}, throwing when the MAC does not verify.
 * @throws SmkiError `ERR_GBCS_MAC_INVALID` (the MAC does not verify or is not 12 bytes), and the
 *   input codes of {@link verifyMacBytes}
 * @see docs/domain.md §4 (ACB MAC step 3)
 */
export function assertMacBytes(options: VerifyMacOptions): void {
  if (!verifyMacBytes(options)) {
    throw new SmkiError('ERR_GBCS_MAC_INVALID', 'the MAC does not verify', {
      detail: options.mac instanceof Uint8Array ? `MAC length ${options.mac.length}` : 'MAC missing',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// sensitive payloads

/**
 * Decrypt and authenticate a GBCS sensitive payload: the octet string value `31 ‖ invocation
 * counter (4 bytes, 0) ‖ ciphertext ‖ tag (12)`, AES-128-GCM with the mode-`payload` key, AAD the
 * single byte 31, IV = originator title ‖ 00000000.
 *
 * The key's OtherInfo uses the supplementary originator counter if the APDU has one (else the
 * originator counter) and the supplementary remote party id if present (else the recipient).
 *
 * Security: no plaintext is returned unless the tag verifies; a non-zero invocation counter is
 * refused (docs/domain.md §4 fixes it at 0 and the IV rule has no room for it).
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset: wrong first byte, non-zero invocation
 *   counter, shorter than 17 bytes), `ERR_GBCS_DECRYPT_FAILED` (the tag does not verify),
 *   `ERR_KEY_INVALID`, `ERR_INVALID_ARGUMENT`, `ERR_GBCS_INVALID_FIELD`, `ERR_EUI64_INVALID`
 * @see docs/domain.md §4 (sensitive payloads); NIST SP 800-38D §7.2 (GCM-AD)
 * @example
 * ```ts
 * import { decryptSensitivePayload } from '@smki/gbcs';
 * declare const key: Uint8Array; // deriveKey(...) with mode 'payload'
 * declare const data: Uint8Array; // the octet string's value, 31 …
 * const plaintext = decryptSensitivePayload({ key, originator: '00DB1234567890A0', data });
 * ```
 */
export function decryptSensitivePayload(options: DecryptSensitivePayloadOptions): Uint8Array {
  checkKey(options.key);
  const iv = gcmIv(options.originator);
  const data = options.data;
  checkBytes(data, 'data');
  const reader = new ByteReader(data);
  if (reader.remaining < PAYLOAD_HEADER_LENGTH + GBCS_TAG_LENGTH) {
    throw new SmkiError('ERR_GBCS_MALFORMED', 'a sensitive payload is at least 17 bytes (31, counter, tag)', {
      offset: data.length,
      detail: `length ${data.length}`,
    });
  }
  // The length is checked above, so the reads below cannot run out: they carry no field names.
  const sc = reader.u8();
  if (sc !== PAYLOAD_SECURITY_CONTROL) {
    throw new SmkiError('ERR_GBCS_MALFORMED', `a sensitive payload starts with 31, not ${sc.toString(16).padStart(2, '0').toUpperCase()}`, { offset: 0 });
  }
  const invocationCounter = reader.u32();
  if (invocationCounter !== 0) {
    throw new SmkiError('ERR_GBCS_MALFORMED', 'the invocation counter of a sensitive payload must be 0', {
      offset: 1,
      detail: `invocation counter ${invocationCounter}`,
    });
  }
  const ciphertext = reader.bytesView(reader.remaining - GBCS_TAG_LENGTH);
  const tag = reader.bytesView(GBCS_TAG_LENGTH);
  // Stryker disable next-line ObjectLiteral: the tag above is always exactly 12 bytes and GCM checks a tag at the length it is given; authTagLength pins that length all the same
  const decipher = createDecipheriv('aes-128-gcm', options.key, iv, { authTagLength: GBCS_TAG_LENGTH });
  decipher.setAAD(PAYLOAD_AAD);
  decipher.setAuthTag(tag);
  const body = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch (cause) {
    body.fill(0); // never release unauthenticated plaintext
    throw new SmkiError('ERR_GBCS_DECRYPT_FAILED', 'the sensitive payload does not authenticate', { offset: data.length - GBCS_TAG_LENGTH }, { cause });
  }
  const out = new Uint8Array(body);
  body.fill(0);
  return out;
}

/**
 * Encrypt a GBCS sensitive payload (what a device does; for simulators and tests): returns the
 * octet string value `31 ‖ 00000000 ‖ ciphertext ‖ tag (12)`, the inverse of
 * {@link decryptSensitivePayload}.
 *
 * Security: the IV is fixed per originator, so a key must encrypt exactly one plaintext. Derive
 * it with mode `payload` and the message's own counter, and never reuse it.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_INVALID_ARGUMENT`, `ERR_GBCS_INVALID_FIELD`, `ERR_EUI64_INVALID`
 * @see docs/domain.md §4 (sensitive payloads); NIST SP 800-38D §7.1 (GCM-AE), §8 (IV uniqueness)
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { encryptSensitivePayload, decryptSensitivePayload } from '@smki/gbcs';
 * const key = new Uint8Array(randomBytes(16));
 * const data = encryptSensitivePayload({ key, originator: '00DB1234567890A0', plaintext: new Uint8Array([1, 2, 3]) });
 * decryptSensitivePayload({ key, originator: '00DB1234567890A0', data }); // Uint8Array [1, 2, 3]
 * ```
 */
export function encryptSensitivePayload(options: EncryptSensitivePayloadOptions): Uint8Array {
  checkKey(options.key);
  const iv = gcmIv(options.originator);
  checkBytes(options.plaintext, 'plaintext');
  const cipher = createCipheriv('aes-128-gcm', options.key, iv, { authTagLength: GBCS_TAG_LENGTH });
  cipher.setAAD(PAYLOAD_AAD);
  const ciphertext = concatBytes(cipher.update(options.plaintext), cipher.final());
  const out = new Uint8Array(PAYLOAD_HEADER_LENGTH + ciphertext.length + GBCS_TAG_LENGTH);
  out[0] = PAYLOAD_SECURITY_CONTROL;
  out.set(ciphertext, PAYLOAD_HEADER_LENGTH);
  out.set(cipher.getAuthTag(), PAYLOAD_HEADER_LENGTH + ciphertext.length);
  return out;
}
