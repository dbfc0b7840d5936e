import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectAlternativeName } from '@peculiar/asn1-x509';
import { ByteReader, checkDerStructure, MAX_DER_DEPTH, readTlv, tlvReader, toHex } from '@smki/core';
import { OID } from '../environment.js';
import type { HardwareModuleName } from '../types.js';
import { HardwareModuleNameAsn } from './asn1.js';
import { readOid } from './der-read.js';

/**
 * Most DER elements in a subjectAltName handed to the asn1-schema decoders (SMKI ones hold one
 * name). Those decoders take tens of microseconds per element, so without this bound a
 * 32 KiB certificate with thousands of policies or names would take over 50 ms to parse.
 */
export const MAX_EXTENSION_TLVS = 256;

/** What the parser keeps of a subjectAltName. */
export interface DecodedSan {
  /** How many GeneralNames it holds, and how many of them are hardwareModuleNames. */
  readonly summary: { readonly names: number; readonly hardwareModuleNames: number };
  /** The first hardwareModuleName. */
  readonly hardwareModuleName?: HardwareModuleName;
}

function buf(v: Uint8Array): ArrayBuffer {
  return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer;
}

/**
 * The subjectAltName of an SMKI device certificate, read directly: exactly one GeneralName, an
 * otherName (`[0]`, RFC 5280 §4.2.1.6) of type id-on-hardwareModuleName whose value (`[0]`
 * EXPLICIT) is `SEQUENCE { hwType OID, hwSerialNum OCTET STRING }` (RFC 4108 §5), all in DER.
 * Anything else, including anything this reader refuses, is `undefined` and goes to the general
 * decoder: this path only takes the one shape real device certificates have, and decides it as
 * the general decoder does (a property test checks the two agree). It exists because that
 * decoder costs more than the rest of a certificate's parse, and a validator parses a device's
 * certificate for nearly every command it counter-signs.
 */
export function decodeSanFast(value: Uint8Array): DecodedSan | undefined {
  try {
    const top = new ByteReader(value);
    const names = readTlv(top, 0x30);
    if (!top.done) return undefined;
    const r = tlvReader(value, names);
    const otherName = readTlv(r, 0xa0);
    if (!r.done) return undefined;
    const o = tlvReader(value, otherName);
    if (readOid(o) !== OID.hardwareModuleName) return undefined;
    const explicit = readTlv(o, 0xa0);
    if (!o.done) return undefined;
    const e = tlvReader(value, explicit);
    const hmn = readTlv(e, 0x30);
    if (!e.done) return undefined;
    const h = tlvReader(value, hmn);
    const hwType = readOid(h);
    const serial = readTlv(h, 0x04);
    if (!h.done) return undefined;
    return {
      summary: { names: 1, hardwareModuleNames: 1 },
      hardwareModuleName: { hwType, hwSerialNum: toHex(value.subarray(serial.valueStart, serial.end)) },
    };
  } catch {
    return undefined;
  }
}

/**
 * Any subjectAltName, through asn1-schema (bounded first).
 * @throws whatever the decoders throw for a value that does not decode
 */
export function decodeSanGeneral(value: Uint8Array): DecodedSan {
  checkDerStructure(value, MAX_DER_DEPTH, MAX_EXTENSION_TLVS); // bounds the asn1-schema decoder's work
  const san = AsnConvert.parse(buf(value), SubjectAlternativeName);
  let hmn = 0;
  let first: HardwareModuleName | undefined;
  for (const gn of san) {
    if (gn.otherName?.typeId === OID.hardwareModuleName) {
      hmn++;
      const h = AsnConvert.parse(gn.otherName.value, HardwareModuleNameAsn);
      first ??= { hwType: h.hwType, hwSerialNum: toHex(new Uint8Array(h.hwSerialNum)) };
    }
  }
  return { summary: { names: san.length, hardwareModuleNames: hmn }, ...(first ? { hardwareModuleName: first } : {}) };
}

/** A subjectAltName: the device-certificate shape directly, anything else through asn1-schema. */
export function decodeSubjectAltName(value: Uint8Array): DecodedSan {
  return decodeSanFast(value) ?? decodeSanGeneral(value);
}
