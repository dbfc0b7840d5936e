import { KeyObject } from 'node:crypto';
import { ByteReader, pemBlocks, readTlv, SmkiError, toPublicKey, type PublicKeyInput } from '@smki/core';
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
  const key = cert.publicKey;
  if (key !== undefined) return key;
  // No usable key: say why, as core does for the same SPKI (explicit curve parameters or another
  // curve are ERR_KEY_CURVE_UNSUPPORTED, RFC 5480 2.1.1; a compressed or off-curve point ERR_KEY_INVALID).
  toPublicKey(cert.details.spkiDer);
  throw new SmkiError('ERR_KEY_INVALID', 'the certificate has no usable P-256 key', { detail: `serial ${cert.serialNumber}` });
}

/** PEM labels a key input may carry here (RFC 7468 §5 and §13); every other label is refused. */
const CERTIFICATE_LABEL = 'CERTIFICATE';
const PUBLIC_KEY_LABEL = 'PUBLIC KEY';

/**
 * The one PEM block of a key input, which must be a `CERTIFICATE` or a `PUBLIC KEY`. Every block
 * in the text counts, whatever its label, so that no other block can ride along; a block under
 * any other label (`X509 CERTIFICATE`, `TRUSTED CERTIFICATE`, a private key, …) is refused rather
 * than handed to a parser that would take the key out of it without the key-usage check.
 */
function pemKeyBlock(text: string): { label: typeof CERTIFICATE_LABEL | typeof PUBLIC_KEY_LABEL; der: Uint8Array } {
  const blocks = pemBlocks(text);
  const block = blocks[0];
  // Text without any PEM block is simply not a key, as core reports it.
  if (block === undefined) throw new SmkiError('ERR_KEY_INVALID', 'not a key: no PEM block (expected a CERTIFICATE or a PUBLIC KEY)', {});
  if (blocks.length > 1) {
    throw new SmkiError('ERR_PEM_INVALID', 'more than one PEM block: expected one CERTIFICATE or one PUBLIC KEY', {
      offset: (blocks[1] as { offset: number }).offset,
      detail: blocks.map((b) => b.label).join(', '),
    });
  }
  if (block.label !== CERTIFICATE_LABEL && block.label !== PUBLIC_KEY_LABEL) {
    throw new SmkiError('ERR_PEM_INVALID', `a PEM block labelled ${block.label} is neither a CERTIFICATE nor a PUBLIC KEY`, {
      offset: block.offset,
      detail: `label ${block.label}`,
    });
  }
  return { label: block.label, der: block.der };
}

/**
 * The P-256 public `KeyObject` of a key or certificate input, for one use. A raw key is taken as
 * the caller vouches for it; a certificate must allow `usage`. PEM text is either one
 * `CERTIFICATE` block (the certificate path, with the key-usage check) or one `PUBLIC KEY` block
 * (a raw key); anything else is refused.
 * @throws SmkiError `ERR_KEY_INVALID`, `ERR_KEY_CURVE_UNSUPPORTED`, `ERR_KEY_NOT_FOR_KEY_AGREEMENT`,
 *   `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`
 */
export function publicKeyFor(input: PublicKeyOrCertificate, usage: 'digitalSignature' | 'keyAgreement'): KeyObject {
  if (input instanceof KeyObject) return toPublicKey(input);
  if (typeof input === 'string') {
    const block = pemKeyBlock(input);
    return block.label === CERTIFICATE_LABEL ? fromCertificate(toCertificate(block.der), usage) : toPublicKey(block.der);
  }
  if (input instanceof Uint8Array) {
    if (input.length === 65 && input[0] === 0x04) return toPublicKey(input);
    return derIsCertificate(input) ? fromCertificate(toCertificate(input), usage) : toPublicKey(input);
  }
  if (isParsedCertificate(input)) return fromCertificate(input, usage);
  throw new SmkiError('ERR_KEY_INVALID', 'unsupported public key input', { detail: input === null ? 'null' : typeof input });
}
