import { ByteReader, KEY_USAGE_NAMES, readTlv, SmkiError, tlvReader, toHex, type KeyUsageName } from '@smki/core';
import { OID } from '../environment.js';
import type { AuthorityKeyIdFields, BasicConstraints } from '../types.js';
import { readBitString, readBoolean, readOid, readSmallInteger } from './der-read.js';

// Decoders for the small fixed-shape extensions every SMKI certificate carries. They read with
// core's bounded reader, so they cost microseconds and report offsets; the generic asn1-schema
// decoders (tens of microseconds per element) are kept for subjectAltName and the
// hardwareModuleName inside it. Each decoder consumes the whole extnValue or throws.

function done(r: ByteReader, what: string): void {
  if (!r.done) throw new SmkiError('ERR_DER_INVALID', `bytes after the ${what}`, { offset: r.offset });
}

/** keyUsage (RFC 5280 §4.2.1.3): the names of the bits set, in bit order. */
export function decodeKeyUsage(value: Uint8Array): KeyUsageName[] {
  const r = new ByteReader(value);
  const { unusedBits, data } = readBitString(r);
  done(r, 'keyUsage');
  const bitCount = data.length * 8 - unusedBits;
  const out: KeyUsageName[] = [];
  for (let i = 0; i < KEY_USAGE_NAMES.length && i < bitCount; i++) {
    if (((data[i >> 3] as number) >> (7 - (i & 7))) & 1) out.push(KEY_USAGE_NAMES[i] as KeyUsageName);
  }
  return out;
}

/** basicConstraints (RFC 5280 §4.2.1.9). */
export function decodeBasicConstraints(value: Uint8Array): BasicConstraints {
  const top = new ByteReader(value);
  const seq = readTlv(top, 0x30);
  done(top, 'basicConstraints');
  const r = tlvReader(value, seq);
  let ca = false;
  if (!r.done && r.peekU8() === 0x01) ca = readBoolean(r);
  let pathLength: number | undefined;
  if (!r.done) pathLength = readSmallInteger(r);
  done(r, 'basicConstraints');
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

/** certificatePolicies (RFC 5280 §4.2.1.4): the policy OIDs in order (qualifiers skipped). */
export function decodeCertificatePolicies(value: Uint8Array): string[] {
  const top = new ByteReader(value);
  const seq = readTlv(top, 0x30);
  done(top, 'certificatePolicies');
  const r = tlvReader(value, seq);
  const out: string[] = [];
  while (!r.done) {
    const info = readTlv(r, 0x30);
    const ir = tlvReader(value, info);
    out.push(readOid(ir));
    if (!ir.done) readTlv(ir, 0x30); // policyQualifiers
    done(ir, 'PolicyInformation');
  }
  return out;
}

/** subjectKeyIdentifier (RFC 5280 §4.2.1.2): the key identifier as upper-case hex. */
export function decodeSubjectKeyIdentifier(value: Uint8Array): string {
  const r = new ByteReader(value);
  const t = readTlv(r, 0x04);
  done(r, 'subjectKeyIdentifier');
  return toHex(value.subarray(t.valueStart, t.end));
}

/** authorityKeyIdentifier (RFC 5280 §4.2.1.1): its keyIdentifier and which fields are present. */
export function decodeAuthorityKeyIdentifier(value: Uint8Array): { keyId?: string; fields: AuthorityKeyIdFields } {
  const top = new ByteReader(value);
  const seq = readTlv(top, 0x30);
  done(top, 'authorityKeyIdentifier');
  const r = tlvReader(value, seq);
  let keyId: string | undefined;
  let issuer = false;
  let serial = false;
  if (!r.done && r.peekU8() === 0x80) {
    const t = readTlv(r);
    keyId = toHex(value.subarray(t.valueStart, t.end));
  }
  if (!r.done && r.peekU8() === 0xa1) {
    readTlv(r);
    issuer = true;
  }
  if (!r.done && r.peekU8() === 0x82) {
    readTlv(r);
    serial = true;
  }
  done(r, 'authorityKeyIdentifier');
  return { ...(keyId !== undefined ? { keyId } : {}), fields: { keyIdentifier: keyId !== undefined, issuer, serial } };
}

/**
 * The extensions the SMKI profile knows and a relying party processes; any other critical one
 * makes a certificate unacceptable (RFC 5280 §4.2, §6.1.4 (o)).
 */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.keyUsage,
  OID.basicConstraints,
  OID.certificatePolicies,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
]);
