// A tiny DER and X.509 builder for tests (not a test file: vitest only runs *.test.ts).
// It writes exactly the bytes asked for, including profile quirks the toolkit's issuer never
// emits (explicit NULL parameters, decimal role OUs, missing SKI), so parse and trust store tests
// can make any certificate shape. RFC 5280 §4.1 field order; X.690 DER lengths.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

function len(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | out.length, ...out];
}

/** One TLV with a single-octet tag. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  return new Uint8Array([tag, ...len(body.length), ...body]);
}

export const seq = (...p: Uint8Array[]): Uint8Array => tlv(0x30, ...p);
export const set = (...p: Uint8Array[]): Uint8Array => tlv(0x31, ...p);
export const octets = (b: Uint8Array): Uint8Array => tlv(0x04, b);
export const nul = (): Uint8Array => new Uint8Array([0x05, 0x00]);
export const bool = (v: boolean): Uint8Array => new Uint8Array([0x01, 0x01, v ? 0xff : 0x00]);
export const utf8 = (s: string): Uint8Array => tlv(0x0c, Buffer.from(s, 'utf8'));
export const printable = (s: string): Uint8Array => tlv(0x13, Buffer.from(s, 'latin1'));
export const bitString = (b: Uint8Array, unused = 0): Uint8Array => tlv(0x03, new Uint8Array([unused]), b);
/** Context-specific tag `[n]`, constructed unless `primitive`. */
export const ctx = (n: number, primitive: boolean, ...p: Uint8Array[]): Uint8Array => tlv((primitive ? 0x80 : 0xa0) | n, ...p);

/** INTEGER from its content octets as given (no minimisation) or from a non-negative bigint. */
export function int(v: Uint8Array | bigint | number): Uint8Array {
  if (v instanceof Uint8Array) return tlv(0x02, v);
  let hex = BigInt(v).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return tlv(0x02, Buffer.from(hex, 'hex'));
}

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const first = (arcs[0] as bigint) * 40n + (arcs[1] as bigint);
  const out: number[] = [];
  for (const arc of [first, ...arcs.slice(2)]) {
    const bytes: number[] = [Number(arc & 0x7fn)];
    let a = arc >> 7n;
    while (a > 0n) {
      bytes.unshift(Number(a & 0x7fn) | 0x80);
      a >>= 7n;
    }
    out.push(...bytes);
  }
  return tlv(0x06, new Uint8Array(out));
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** UTCTime for years 1950–2049, GeneralizedTime otherwise; or a literal GeneralizedTime text. */
export function time(t: Date | string): Uint8Array {
  if (typeof t === 'string') return tlv(0x18, Buffer.from(t, 'latin1'));
  const y = t.getUTCFullYear();
  const rest = `${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${pad(y % 100)}${rest}`, 'latin1'));
  return tlv(0x18, Buffer.from(`${pad(y, 4)}${rest}`, 'latin1'));
}

export const OIDS = {
  cn: '2.5.4.3',
  ou: '2.5.4.11',
  uid: '2.5.4.45',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  ski: '2.5.29.14',
  keyUsage: '2.5.29.15',
  san: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  policies: '2.5.29.32',
  aki: '2.5.29.35',
  hmn: '1.3.6.1.5.5.7.8.4',
  orgPolicy: '1.2.826.0.1.8641679.1.2.1.4',
  devicePolicy: '1.2.826.0.1.1800000.1.2.1.4',
  hwType: '1.2.826.0.1.8641679.1.2.2.1',
} as const;

export type NameAttr =
  | { readonly type: 'CN' | 'OU'; readonly value: string; readonly encoding?: 'utf8' | 'printable' }
  | { readonly type: 'UID'; readonly eui: string };

/** A Name: one attribute per RDN, in order. */
export function name(attrs: readonly NameAttr[]): Uint8Array {
  return seq(
    ...attrs.map((a) => {
      if (a.type === 'UID') return set(seq(oid(OIDS.uid), bitString(Buffer.from(a.eui, 'hex'))));
      const v = a.encoding === 'printable' ? printable(a.value) : utf8(a.value);
      return set(seq(oid(a.type === 'CN' ? OIDS.cn : OIDS.ou), v));
    }),
  );
}

export function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

const KU_BITS = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'] as const;
export type KuName = (typeof KU_BITS)[number];

export function keyUsageValue(names: readonly KuName[]): Uint8Array {
  let bits = 0;
  for (const n of names) bits |= 0x80 >> KU_BITS.indexOf(n);
  // DER: trailing zero bits are dropped and counted as unused.
  let unused = 0;
  while (unused < 8 && !((bits >> unused) & 1)) unused++;
  return bitString(new Uint8Array([bits]), unused === 8 ? 0 : unused);
}

export const kuExt = (names: readonly KuName[], critical = true): Uint8Array => extension(OIDS.keyUsage, critical, keyUsageValue(names));
export const bcExt = (ca: boolean, pathLen?: number): Uint8Array =>
  extension(OIDS.basicConstraints, true, seq(...(ca ? [bool(true)] : []), ...(pathLen !== undefined ? [int(pathLen)] : [])));
export const policiesExt = (oids: readonly string[]): Uint8Array => extension(OIDS.policies, true, seq(...oids.map((o) => seq(oid(o)))));
export const skiExt = (id: Uint8Array): Uint8Array => extension(OIDS.ski, false, octets(id));
export const akiExt = (id: Uint8Array): Uint8Array => extension(OIDS.aki, false, seq(ctx(0, true, id)));
export const hmnSanExt = (serialHex: string, hwType: string = OIDS.hwType): Uint8Array =>
  extension(OIDS.san, true, seq(ctx(0, false, oid(OIDS.hmn), ctx(0, false, seq(oid(hwType), octets(Buffer.from(serialHex, 'hex')))))));

/** The 65-byte uncompressed point of a P-256 key. */
export function rawPoint(key: KeyObject): Uint8Array {
  const spki = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 65));
}

/** RFC 5280 §4.2.1.2 method 2 (docs/domain.md §2): 0100 then the low 60 bits of SHA-1 of the key bits. */
export function keyId(key: KeyObject): Uint8Array {
  const h = createHash('sha1').update(rawPoint(key)).digest();
  const id = new Uint8Array(h.subarray(12, 20));
  id[0] = 0x40 | ((id[0] as number) & 0x0f);
  return id;
}

export function newKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export interface CertSpec {
  /** Serial content octets (default: 16 random-looking octets from the subject, top bit clear). */
  readonly serial?: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date | string;
  readonly publicKey: KeyObject;
  readonly signingKey: KeyObject;
  readonly extensions: readonly Uint8Array[];
  /** Put an explicit NULL in both signature AlgorithmIdentifiers (a real-world quirk). */
  readonly explicitNullParams?: boolean;
}

let serialCounter = 0x1000;

/** A certificate DER, signed with `signingKey` (ECDSA P-256/SHA-256). */
export function buildCertificate(spec: CertSpec): Uint8Array {
  const alg = spec.explicitNullParams ? seq(oid(OIDS.ecdsaSha256), nul()) : seq(oid(OIDS.ecdsaSha256));
  const serial = spec.serial ?? (() => {
    const s = createHash('sha256').update(`${serialCounter++}`).digest().subarray(0, 16);
    s[0] = (s[0] as number) & 0x7f | 0x10;
    return new Uint8Array(s);
  })();
  const spki = seq(seq(oid(OIDS.ecPublicKey), oid(OIDS.p256)), bitString(rawPoint(spec.publicKey)));
  const tbs = seq(
    ctx(0, false, int(2)),
    int(serial),
    alg,
    spec.issuer,
    seq(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spki,
    ...(spec.extensions.length > 0 ? [ctx(3, false, seq(...spec.extensions))] : []),
  );
  const signature = sign('sha256', tbs, spec.signingKey);
  return seq(tbs, alg, bitString(signature));
}

/** A small test PKI built with {@link buildCertificate}: root, organisation CA and device CA. */
export function buildHierarchy(notBefore = new Date(Date.UTC(2024, 0, 1))): {
  root: { der: Uint8Array; key: { publicKey: KeyObject; privateKey: KeyObject }; name: Uint8Array };
  oca: { der: Uint8Array; key: { publicKey: KeyObject; privateKey: KeyObject }; name: Uint8Array };
  dca: { der: Uint8Array; key: { publicKey: KeyObject; privateKey: KeyObject }; name: Uint8Array };
} {
  const years = (n: number): Date => new Date(Date.UTC(notBefore.getUTCFullYear() + n, notBefore.getUTCMonth(), notBefore.getUTCDate()));
  const rootKey = newKeyPair();
  const rootName = name([{ type: 'OU', value: '00', encoding: 'printable' }, { type: 'CN', value: 'ZA', encoding: 'printable' }]);
  const root = buildCertificate({
    issuer: rootName,
    subject: rootName,
    notBefore,
    notAfter: years(30),
    publicKey: rootKey.publicKey,
    signingKey: rootKey.privateKey,
    extensions: [skiExt(keyId(rootKey.publicKey)), kuExt(['keyCertSign', 'cRLSign']), bcExt(true), policiesExt([OIDS.orgPolicy])],
  });
  const ca = (subject: Uint8Array, policy: string) => {
    const key = newKeyPair();
    const der = buildCertificate({
      issuer: rootName,
      subject,
      notBefore,
      notAfter: years(20),
      publicKey: key.publicKey,
      signingKey: rootKey.privateKey,
      extensions: [skiExt(keyId(key.publicKey)), akiExt(keyId(rootKey.publicKey)), kuExt(['keyCertSign', 'cRLSign']), bcExt(true, 0), policiesExt([policy])],
    });
    return { der, key, name: subject };
  };
  const oca = ca(name([{ type: 'OU', value: '07', encoding: 'printable' }, { type: 'CN', value: 'Z1', encoding: 'printable' }]), OIDS.orgPolicy);
  const dca = ca(name([{ type: 'CN', value: 'E357', encoding: 'printable' }]), OIDS.devicePolicy);
  return { root: { der: root, key: rootKey, name: rootName }, oca, dca };
}

/** An organisation certificate under `issuer` (docs/domain.md §2 profile unless the options say otherwise). */
export function buildOrganisationCertificate(opts: {
  readonly issuer: { readonly key: { readonly publicKey: KeyObject; readonly privateKey: KeyObject }; readonly name: Uint8Array };
  readonly eui: string;
  readonly ou: string;
  readonly keyUsage: KuName;
  readonly notBefore: Date;
  readonly cn?: string;
  readonly serial?: Uint8Array;
  readonly publicKey?: KeyObject;
  readonly ski?: boolean;
  readonly explicitNullParams?: boolean;
  readonly cnEncoding?: 'utf8' | 'printable';
}): Uint8Array {
  const key = opts.publicKey ?? newKeyPair().publicKey;
  const attrs: NameAttr[] = [];
  if (opts.cn !== undefined) attrs.push({ type: 'CN', value: opts.cn, encoding: opts.cnEncoding ?? 'utf8' });
  attrs.push({ type: 'OU', value: opts.ou, encoding: 'utf8' }, { type: 'UID', eui: opts.eui });
  return buildCertificate({
    ...(opts.serial ? { serial: opts.serial } : {}),
    issuer: opts.issuer.name,
    subject: name(attrs),
    notBefore: opts.notBefore,
    notAfter: new Date(opts.notBefore.getTime() + 10 * 365.25 * 86400_000),
    publicKey: key,
    signingKey: opts.issuer.key.privateKey,
    explicitNullParams: opts.explicitNullParams ?? false,
    extensions: [
      ...(opts.ski === false ? [] : [skiExt(keyId(key))]),
      akiExt(keyId(opts.issuer.key.publicKey)),
      kuExt([opts.keyUsage]),
      policiesExt([OIDS.orgPolicy]),
    ],
  });
}

/** A device certificate under `issuer`: empty subject, notAfter 99991231235959Z, critical SAN. */
export function buildDeviceCertificate(opts: {
  readonly issuer: { readonly key: { readonly publicKey: KeyObject; readonly privateKey: KeyObject }; readonly name: Uint8Array };
  readonly eui: string;
  readonly keyUsage: KuName;
  readonly notBefore: Date;
  readonly publicKey?: KeyObject;
}): Uint8Array {
  const key = opts.publicKey ?? newKeyPair().publicKey;
  return buildCertificate({
    issuer: opts.issuer.name,
    subject: seq(),
    notBefore: opts.notBefore,
    notAfter: '99991231235959Z',
    publicKey: key,
    signingKey: opts.issuer.key.privateKey,
    extensions: [hmnSanExt(opts.eui), skiExt(keyId(key)), akiExt(keyId(opts.issuer.key.publicKey)), kuExt([opts.keyUsage]), policiesExt([OIDS.devicePolicy])],
  });
}
