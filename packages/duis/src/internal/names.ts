/**
 * RFC 2253 text of an X.509 name and decimal serial numbers, as DUIS KeyInfo writes them.
 * @internal
 */
import type { DistinguishedName, NameAttribute } from '@smki/pki';

/** The short names RFC 2253 §2.3 defines; every other attribute type is written as its OID. */
const KEYWORDS: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.9': 'STREET',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/** String types written as text (RFC 2253 §2.4); any other value is `#` and the hex of its DER. */
const STRING_TAGS = new Set([12, 19, 20, 22, 26, 28, 30]);

function escapeValue(v: string): string {
  let out = v.replace(/[,+"\\<>;]/g, (c) => `\\${c}`);
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

function derLength(n: number): string {
  if (n < 0x80) return n.toString(16).padStart(2, '0');
  const hex = n.toString(16);
  const bytes = hex.length % 2 === 0 ? hex : `0${hex}`;
  return (0x80 + bytes.length / 2).toString(16) + bytes;
}

function attributeText(a: NameAttribute): string {
  const keyword = KEYWORDS[a.oid];
  if (keyword !== undefined && STRING_TAGS.has(a.tag)) return `${keyword}=${escapeValue(a.value)}`;
  // Binary values (and string values under an OID without a keyword): the DER of the value.
  let content = STRING_TAGS.has(a.tag) ? Buffer.from(a.value, 'utf8').toString('hex') : a.value.toLowerCase();
  // A BIT STRING's value is its data; its DER content starts with the count of unused bits.
  if (a.tag === 3) content = ((content.length / 2) * 8 - (a.bitLength ?? (content.length / 2) * 8)).toString(16).padStart(2, '0') + content;
  const der = a.tag.toString(16).padStart(2, '0') + derLength(content.length / 2) + content;
  return `${keyword ?? a.oid}=#${der.toLowerCase()}`;
}

/**
 * The RFC 2253 text of a name with no space after the separators: the RDNs in reverse order of
 * their encoding (`CN=Z1,OU=07` for a name encoded OU then CN).
 */
export function rfc2253(name: DistinguishedName): string {
  return [...name.attributes].reverse().map(attributeText).join(',');
}

/** A serial number (upper-case hex of its DER content octets, two's complement) in decimal. */
export function serialToDecimal(hex: string): string {
  const v = BigInt(`0x${hex.length === 0 ? '0' : hex}`);
  const negative = hex.length > 0 && parseInt(hex[0] as string, 16) >= 8;
  return (negative ? v - (1n << BigInt(hex.length * 4)) : v).toString(10);
}
