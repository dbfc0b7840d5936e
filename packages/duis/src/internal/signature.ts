/**
 * The enveloped signature as the profile writes it.
 * @internal
 */
import { ALG } from './profile.js';
import { DS_NS } from './xml.js';

/** Escape text for element content. */
export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

/** The `ds:SignedInfo` of the profile for a digest (base64), declaring `xmlns:ds` when `declare`. */
export function signedInfoXml(digest: string, declare: boolean): string {
  return (
    `<ds:SignedInfo${declare ? ` xmlns:ds="${DS_NS}"` : ''}>` +
    `<ds:CanonicalizationMethod Algorithm="${ALG.excC14n}"/>` +
    `<ds:SignatureMethod Algorithm="${ALG.ecdsaSha256}"/>` +
    `<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="${ALG.enveloped}"/></ds:Transforms>` +
    `<ds:DigestMethod Algorithm="${ALG.sha256}"/><ds:DigestValue>${digest}</ds:DigestValue></ds:Reference>` +
    `</ds:SignedInfo>`
  );
}

/** The whole `ds:Signature`, with `xmlns:ds` on it unless the root declares it. */
export function signatureXml(digest: string, value: string, issuerName: string, serial: string, declare: boolean): string {
  return (
    `<ds:Signature${declare ? ` xmlns:ds="${DS_NS}"` : ''}>` +
    signedInfoXml(digest, false) +
    `<ds:SignatureValue>${value}</ds:SignatureValue>` +
    `<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial>` +
    `<ds:X509IssuerName>${escapeText(issuerName)}</ds:X509IssuerName>` +
    `<ds:X509SerialNumber>${serial}</ds:X509SerialNumber>` +
    `</ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature>`
  );
}
