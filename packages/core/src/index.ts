/**
 * Primitives shared by every SMKI toolkit package: the error class and its stable codes, EUI-64,
 * Remote Party Roles and key usages, hex/base64, a bounds-checked byte reader and DER walker, the
 * one PEM reader of the toolkit (a block is read only under the label it carries), and
 * the `Signer` / `KeyAgreement` interfaces behind which keys may live in memory, a file or an HSM.
 *
 * Security posture: every parser here is bounded (no read past the end, no recursion on input);
 * nothing here logs or puts key material in an error.
 * @packageDocumentation
 */
export { SMKI_ERROR_CODES, SmkiError, isSmkiError, describeCode } from './errors.js';
export type { SmkiErrorCode, SmkiErrorContext, SpecificErrorContexts, LocationContext, Finding } from './errors.js';
export { parseEui64, isEui64, eui64FromBytes, eui64ToBytes } from './eui64.js';
export type { Eui64 } from './eui64.js';
export {
  RemotePartyRole,
  isRemotePartyRole,
  roleName,
  roleToOu,
  roleFromOu,
  parseRoleLenient,
  KEY_USAGE_NAMES,
} from './roles.js';
export type { RemotePartyRoleCode, KeyUsageName, EndEntityKeyUsage, LenientRole } from './roles.js';
export { toHex, fromHex, toBase64, fromBase64, concatBytes, equalBytes, constantTimeEqual, ByteReader } from './bytes.js';
export { readTlv, tlvReader, tlvBytes, tlvValue, checkDerStructure, MAX_DER_DEPTH } from './der.js';
export type { Tlv } from './der.js';
export {
  toPrivateKey,
  toPublicKey,
  publicKeyFromRaw,
  publicKeyToRaw,
  createKeySigner,
  createKeyAgreement,
  deriveP256SharedSecret,
  isP256Point,
  verifyP1363,
  verifyDer,
  p1363ToDer,
  derToP1363,
} from './crypto.js';
export type { Signer, KeyAgreement, PrivateKeyInput, PublicKeyInput } from './crypto.js';
export { pemBlocks, pemToDer, derToPem, MAX_PEM_CHARS } from './pem.js';
export type { PemBlock, PemReadOptions } from './pem.js';
