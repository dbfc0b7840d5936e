import { createHash } from 'node:crypto';

/**
 * RFC 5280 §4.2.1.2 method 2 key identifier: the 4-bit type field 0100 followed by the least
 * significant 60 bits of SHA-1 of the subjectPublicKey BIT STRING value (excluding tag, length and
 * unused-bits octet). SMKI uses it for subjectKeyIdentifier and authorityKeyIdentifier (docs/domain.md §2).
 */
export function keyIdMethod2(publicKeyBytes: Uint8Array): Uint8Array {
  const h = createHash('sha1').update(publicKeyBytes).digest();
  const id = new Uint8Array(h.subarray(12, 20));
  id[0] = 0x40 | ((id[0] as number) & 0x0f);
  return id;
}
