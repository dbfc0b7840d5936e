/**
 * PEM for the pki package: the reader and writer of `@smki/core` (one PEM reader for the whole
 * toolkit, so a block is used only under its own label everywhere). pki asks for exactly the
 * labels each input may carry (`CERTIFICATE`, `X509 CRL`, `CERTIFICATE REQUEST` and
 * `NEW CERTIFICATE REQUEST`), skips blocks with other labels and ignores text outside the
 * armour, as OpenSSL does.
 * @see RFC 7468 §5 (CERTIFICATE), §6 (X509 CRL), §7 (CERTIFICATE REQUEST)
 */
export { derToPem, pemBlocks, pemToDer } from '@smki/core';
