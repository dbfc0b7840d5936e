import { KeyObject } from 'node:crypto';
import { ByteReader, readTlv, SmkiError, toPublicKey, type PublicKeyInput } from '@smki/core';
import { isParsedCertificate, toCertificate, type SmkiCertificate } from '@smki/pki';

/** A public key as the GBCS functions accept it: any core public key input, or a certificate (parsed, PEM or DER). */
export type PublicKeyOrCertificate = PublicKeyInput | SmkiCertificate;

/** Whether DER bytes look like a certificate rather than an SPKI: an SPKI's first child starts with an OID. */
function derIsCertificate(der: Uint8Array): boolean {
  try {
    const outer = readTlv(new ByteReader(der), 0x30);
    const first = readTlv(new ByteReader(der, outer.valueStart, outer.end), 0x30);
    return new ByteReader(der, first.valueStart, first.end).peekU8() !== 0x06;
  } catch {
    return false; // not DER of either: toPublicKey reports it as not a key
  }
}

function fromCertificate(cert: SmkiCertificate, usage: 'digitalSignature' | 'keyAgreement'): KeyObject {
  // A certificate is used only for what it allows (fail closed on a DS certificate passed for ECDH
  // or a KA certificate passed to verify). Whose certificate it is, is the caller's check.
  if (!cert.keyUsage.includes(usage)) {
    const code = usage === 'keyAgreement' ? 'ERR_KEY_NOT_FOR_KEY_AGREEMENT' : 'ERR_KEY_INVALID';
    throw new SmkiError(code, `the certificate does not allow ${usage}`, { detail: `serial ${cert.serialNumber}; keyUsage ${cert.keyUsage.join(',')}` });
  }
  if (cert.publicKey === undefined) throw new SmkiError('ERR_KEY_INVALID', 'the certificate has no usable P-256 key', {});
  return cert.publicKey;
}

/**
 * The P-256 public `KeyObject` of a key or certificate input, for one use. A raw key is taken as
 * the caller vouches for it; a certificate must allow `usage`.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_KEY_NOT_FOR_KEY_AGREEMENT`,
 *   `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`
 */
export function publicKeyFor(input: PublicKeyOrCertificate, usage: 'digitalSignature' | 'keyAgreement'): KeyObject {
  if (input instanceof KeyObject) return toPublicKey(input);
  if (typeof input === 'string') {
    return input.includes('-----BEGIN CERTIFICATE-----') ? fromCertificate(toCertificate(input), usage) : toPublicKey(input);
  }
  if (input instanceof Uint8Array) {
    if (input.length === 65 && input[0] === 0x04) return toPublicKey(input);
    return derIsCertificate(input) ? fromCertificate(toCertificate(input), usage) : toPublicKey(input);
  }
  if (isParsedCertificate(input)) return fromCertificate(input, usage);
  throw new SmkiError('ERR_KEY_INVALID', 'unsupported public key input', { detail: input === null ? 'null' : typeof input });
}
