// KeyInfo names a certificate by its issuer in RFC 2253 form (RFC 2253 §2: RDNs in reverse order,
// §2.3 the short names, §2.4 escaping and #hex for other values) without spaces, and its serial
// in decimal (docs/domain.md §8). The expected strings are what the JDK's
// X500Principal.getName(RFC2253) writes for the same names.
import { describe, expect, it } from 'vitest';
import type { DistinguishedName, NameAttribute } from '@smki/pki';
import { rfc2253, serialToDecimal } from '../src/internal/names.js';

const attr = (oid: string, value: string, tag = 12, bitLength?: number): NameAttribute => ({ oid, type: oid, value, tag, ...(bitLength !== undefined ? { bitLength } : {}) });
const name = (...attributes: NameAttribute[]): DistinguishedName => ({ attributes, text: '', der: new Uint8Array(0) });

describe('rfc2253', () => {
  it('writes the RDNs in reverse order, short names, no spaces', () => {
    expect(rfc2253(name(attr('2.5.4.11', '07'), attr('2.5.4.3', 'Z1')))).toBe('CN=Z1,OU=07');
    expect(rfc2253(name(attr('2.5.4.6', 'GB', 19), attr('2.5.4.10', 'SMKI Test'), attr('2.5.4.3', 'Z1')))).toBe('CN=Z1,O=SMKI Test,C=GB');
  });
  it('escapes the special characters, a leading # or space and a trailing space', () => {
    expect(rfc2253(name(attr('2.5.4.10', 'Acme, Ltd')))).toBe('O=Acme\\, Ltd');
    expect(rfc2253(name(attr('2.5.4.3', 'a+b"c\\d<e>f;g')))).toBe('CN=a\\+b\\"c\\\\d\\<e\\>f\\;g');
    expect(rfc2253(name(attr('2.5.4.3', '#x')))).toBe('CN=\\#x');
    expect(rfc2253(name(attr('2.5.4.3', ' x ')))).toBe('CN=\\ x\\ ');
    expect(rfc2253(name(attr('2.5.4.3', 'Zé 1')))).toBe('CN=Zé 1');
  });
  it('writes other attribute types as the OID and the value s DER in hex', () => {
    expect(rfc2253(name(attr('2.5.4.5', '123', 19)))).toBe('2.5.4.5=#1303313233');
    // x500UniqueIdentifier, a BIT STRING: its DER content is the unused-bits count, then the data.
    expect(rfc2253(name(attr('2.5.4.45', '00DB1234567890A0', 3, 64)))).toBe('2.5.4.45=#03090000db1234567890a0');
    expect(rfc2253(name(attr('2.5.4.45', 'F0', 3, 4)))).toBe('2.5.4.45=#030204f0');
  });
});

describe('serialToDecimal', () => {
  it('reads the DER content octets as a two s complement integer', () => {
    expect(serialToDecimal('01')).toBe('1');
    expect(serialToDecimal('00FF')).toBe('255');
    expect(serialToDecimal('0123456789ABCDEF0123')).toBe(BigInt('0x0123456789ABCDEF0123').toString());
    expect(serialToDecimal('FF')).toBe('-1');
    expect(serialToDecimal('80')).toBe('-128');
  });
});
