/**
 * The one place the validator touches PKI.js: building and reading CMS SignedData (RFC 5652 §5)
 * for the SMETS1 DCO envelope. Everything here turns PKI.js objects into plain views (OIDs as
 * strings, fields as byte views into the input) so that the policy in `smets1.ts` never handles a
 * PKI.js object.
 *
 * PKI.js installs its WebCrypto engine in a process-wide global when it is first imported, so it
 * is loaded lazily, on the first envelope built or read: importing `@smki/validator` does no work.
 * PKI.js's engine is never used: signing goes through the toolkit's `Signer` and verification
 * through node:crypto.
 *
 * PKI.js reads BER leniently; callers check the input is DER (`checkDerStructure`) first.
 * @module
 */
import * as asn1js from 'asn1js';
import { ByteReader, readTlv, SmkiError } from '@smki/core';
import type * as PkijsModule from 'pkijs';

type Pkijs = typeof PkijsModule;
let pkijsModule: Promise<Pkijs> | undefined;

/** PKI.js, imported once on first use. */
export function loadPkijs(): Promise<Pkijs> {
  pkijsModule ??= import('pkijs');
  return pkijsModule;
}

/** Object identifiers of RFC 5652, RFC 5754, RFC 5758 and RFC 6211 that the envelope uses. */
export const CMS_OID = {
  /** id-data (RFC 5652 §4). */
  data: '1.2.840.113549.1.7.1',
  /** id-signedData (RFC 5652 §5.1). */
  signedData: '1.2.840.113549.1.7.2',
  /** id-contentType (RFC 5652 §11.1). */
  contentType: '1.2.840.113549.1.9.3',
  /** id-messageDigest (RFC 5652 §11.2). */
  messageDigest: '1.2.840.113549.1.9.4',
  /** id-signingTime (RFC 5652 §11.3). */
  signingTime: '1.2.840.113549.1.9.5',
  /** id-aa-CMSAlgorithmProtection (RFC 6211 §2). */
  cmsAlgorithmProtection: '1.2.840.113549.1.9.52',
  /** id-sha256 (RFC 5754 §2.2). */
  sha256: '2.16.840.1.101.3.4.2.1',
  /** ecdsa-with-SHA256 (RFC 5758 §3.2, RFC 5753 §2.1.1). */
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
} as const;

/** An AlgorithmIdentifier as read: its OID and what its parameters field holds. */
export interface AlgorithmView {
  /** The algorithm OID. */
  readonly oid: string;
  /** `absent`, an explicit `null` (ASN.1 NULL), or anything `other`. */
  readonly params: 'absent' | 'null' | 'other';
}

/** One signed attribute: its type and the DER of each of its values, in order. */
export interface AttributeView {
  /** attrType. */
  readonly type: string;
  /** Each AttributeValue's DER (tag, length and value). */
  readonly values: readonly Uint8Array[];
}

/** One SignerInfo as read (RFC 5652 §5.3). */
export interface SignerInfoView {
  /** CMSVersion. */
  readonly version: number;
  /** issuerAndSerialNumber: the issuer Name's DER and the serial's content octets; undefined for subjectKeyIdentifier. */
  readonly sid: { readonly issuer: Uint8Array; readonly serialNumber: Uint8Array } | undefined;
  /** digestAlgorithm. */
  readonly digestAlgorithm: AlgorithmView;
  /** signedAttrs: the DER the signature covers (with the SET OF tag, RFC 5652 §5.4) and the attributes. */
  readonly signedAttributes: { readonly der: Uint8Array; readonly attributes: readonly AttributeView[] } | undefined;
  /** signatureAlgorithm. */
  readonly signatureAlgorithm: AlgorithmView;
  /** The signature octets; undefined if the OCTET STRING is not primitive. */
  readonly signature: Uint8Array | undefined;
  /** Whether unsignedAttrs is present. */
  readonly unsignedAttributes: boolean;
}

/** A ContentInfo holding SignedData, as read (RFC 5652 §3, §5.1). */
export interface SignedDataView {
  /** ContentInfo contentType. */
  readonly contentType: string;
  /** SignedData CMSVersion. */
  readonly version: number;
  /** digestAlgorithms. */
  readonly digestAlgorithms: readonly AlgorithmView[];
  /** encapContentInfo eContentType. */
  readonly eContentType: string;
  /** The eContent octets when present as one primitive OCTET STRING. */
  readonly eContent: Uint8Array | undefined;
  /** How eContent is present: absent (detached), a primitive OCTET STRING, or anything else. */
  readonly eContentForm: 'absent' | 'primitive' | 'other';
  /** certificates: the DER of each entry that is an X.509 Certificate, undefined for other choices; undefined if the field is absent. */
  readonly certificates: readonly (Uint8Array | undefined)[] | undefined;
  /** Whether crls (RevocationInfoChoices) is present. */
  readonly crls: boolean;
  /** signerInfos. */
  readonly signerInfos: readonly SignerInfoView[];
  /**
   * Whether PKI.js, re-encoding what it read, gives back exactly the input. PKI.js's schema
   * matching skips elements it does not expect (a field after the last one it knows, say); this
   * is how such input is caught.
   */
  readonly reencodes: boolean;
}

/** What {@link encodeSignedData} needs for one signer. */
export interface SignerSpec {
  /** The signer's certificate DER (its issuer and serialNumber make the SignerIdentifier). */
  readonly certificate: Uint8Array;
  /** The signed attributes; they are put in DER SET OF order. */
  readonly attributes: readonly AttributeView[];
  /** Signs the DER of the signed attributes; returns a DER ECDSA-Sig-Value. */
  readonly sign: (signedAttributes: Uint8Array) => Promise<Uint8Array>;
  /** digestAlgorithm OID (default sha256). */
  readonly digestAlgorithm?: string;
  /** signatureAlgorithm OID (default ecdsa-with-SHA256). */
  readonly signatureAlgorithm?: string;
}

/** What {@link encodeSignedData} builds: a ContentInfo with SignedData, eContent encapsulated. */
export interface SignedDataSpec {
  /** eContentType OID. */
  readonly eContentType: string;
  /** eContent octets. */
  readonly eContent: Uint8Array;
  /** The certificates field, DER each, in order. */
  readonly certificates: readonly Uint8Array[];
  /** The signers, one SignerInfo each. */
  readonly signers: readonly SignerSpec[];
  /** digestAlgorithms (default: sha256 once). */
  readonly digestAlgorithms?: readonly string[];
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** Parse one whole DER/BER element with asn1js; throws if it does not decode or has trailing bytes. */
function asn1(der: Uint8Array): asn1js.AsnType {
  const parsed = asn1js.fromBER(toArrayBuffer(der));
  if (parsed.offset === -1 || parsed.offset !== der.length) throw new Error(parsed.result.error || 'not one whole ASN.1 element');
  return parsed.result;
}

/** The DER of an asn1js element built here. */
function encode(element: asn1js.AsnType): Uint8Array {
  return new Uint8Array(element.toBER(false));
}

/**
 * A ContentInfo with SignedData (RFC 5652 §3, §5), DER-encoded by PKI.js: eContent
 * encapsulated as one primitive OCTET STRING, each SignerInfo identified by issuerAndSerialNumber
 * (version 1), its signed attributes sorted into DER SET OF order and signed as the SET OF (RFC 5652
 * §5.4).
 */
export async function encodeSignedData(spec: SignedDataSpec): Promise<Uint8Array> {
  const p = await loadPkijs();
  const signerInfos: PkijsModule.SignerInfo[] = [];
  for (const s of spec.signers) {
    const cert = p.Certificate.fromBER(toArrayBuffer(s.certificate));
    const attributes = s.attributes
      .map((a) => new p.Attribute({ type: a.type, values: a.values.map((v) => asn1(v)) }))
      .map((a) => ({ a, der: encode(a.toSchema()) }))
      .sort((x, y) => compareBytes(x.der, y.der))
      .map((x) => x.a);
    const signedSet = encode(new asn1js.Set({ value: attributes.map((a) => a.toSchema()) }));
    const signature = await s.sign(signedSet);
    signerInfos.push(
      new p.SignerInfo({
        version: 1,
        sid: new p.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
        digestAlgorithm: new p.AlgorithmIdentifier({ algorithmId: s.digestAlgorithm ?? CMS_OID.sha256 }),
        signedAttrs: new p.SignedAndUnsignedAttributes({ type: 0, attributes }),
        signatureAlgorithm: new p.AlgorithmIdentifier({ algorithmId: s.signatureAlgorithm ?? CMS_OID.ecdsaWithSha256 }),
        signature: new asn1js.OctetString({ valueHex: toArrayBuffer(signature) }),
      }),
    );
  }
  // The eContent is set after construction: the constructor would re-wrap it as a constructed
  // (BER) OCTET STRING in 64 KiB pieces, which is not DER.
  const encap = new p.EncapsulatedContentInfo({ eContentType: spec.eContentType });
  encap.eContent = new asn1js.OctetString({ valueHex: toArrayBuffer(spec.eContent) });
  const signedData = new p.SignedData({
    digestAlgorithms: (spec.digestAlgorithms ?? [CMS_OID.sha256]).map((algorithmId) => new p.AlgorithmIdentifier({ algorithmId })),
    encapContentInfo: encap,
    certificates: spec.certificates.map((c) => p.Certificate.fromBER(toArrayBuffer(c))),
    signerInfos,
  });
  const contentInfo = new p.ContentInfo({ contentType: CMS_OID.signedData, content: signedData.toSchema(true) });
  return encode(contentInfo.toSchema());
}

function algorithmView(alg: PkijsModule.AlgorithmIdentifier): AlgorithmView {
  const oid = alg.algorithmId;
  if (!('algorithmParams' in alg) || alg.algorithmParams === undefined) return { oid, params: 'absent' };
  const params = alg.algorithmParams as asn1js.AsnType & { idBlock?: { tagClass: number; tagNumber: number; isConstructed: boolean } };
  const id = params.idBlock;
  if (params instanceof asn1js.Any) return { oid, params: 'absent' };
  const isNull = id !== undefined && id.tagClass === 1 && id.tagNumber === 5 && !id.isConstructed && params.valueBeforeDecodeView.length === 2;
  return { oid, params: isNull ? 'null' : 'other' };
}

/** The raw TLV an asn1js element was decoded from (a copy). */
function rawOf(element: asn1js.AsnType): Uint8Array {
  return new Uint8Array(element.valueBeforeDecodeView);
}

function isPrimitiveOctetString(element: unknown): element is asn1js.OctetString {
  return element instanceof asn1js.OctetString && !element.idBlock.isConstructed && element.idBlock.tagClass === 1 && element.idBlock.tagNumber === 4;
}

function malformed(detail: string, cause?: unknown): SmkiError<'ERR_DCO_MALFORMED'> {
  return new SmkiError('ERR_DCO_MALFORMED', `not a CMS SignedData DCO envelope: ${detail}`, { detail }, cause === undefined ? undefined : { cause });
}

/**
 * Read a ContentInfo holding SignedData with PKI.js and return a plain view of it. No policy is
 * applied here beyond what the ASN.1 schema requires.
 * @throws SmkiError `ERR_DCO_MALFORMED` (anything PKI.js or asn1js cannot read)
 */
export async function decodeSignedData(der: Uint8Array): Promise<SignedDataView> {
  const p = await loadPkijs();
  try {
    const contentInfo = new p.ContentInfo({ schema: asn1(der) });
    if (contentInfo.contentType !== p.ContentInfo.SIGNED_DATA) {
      // Reported by the caller with the OID; nothing more to read.
      return {
        contentType: contentInfo.contentType,
        version: -1,
        digestAlgorithms: [],
        eContentType: '',
        eContent: undefined,
        eContentForm: 'absent',
        certificates: undefined,
        crls: false,
        signerInfos: [],
        reencodes: false,
      };
    }
    const content = contentInfo.content as asn1js.Sequence;
    const sd = new p.SignedData({ schema: content });
    // The certificates as they are in the input (PKI.js would re-encode them): the [0] IMPLICIT field.
    const certField = content.valueBlock.value.find((e) => e.idBlock.tagClass === 3 && e.idBlock.tagNumber === 0) as asn1js.Constructed | undefined;
    const certificates = certField?.valueBlock.value.map((e) => (e.idBlock.tagClass === 1 && e.idBlock.tagNumber === 16 ? rawOf(e) : undefined));
    // Read before re-encoding: SignedData.toSchema() overwrites version with the one it computes.
    const version = sd.version;
    const reencoded = encode(new p.ContentInfo({ contentType: contentInfo.contentType, content: sd.toSchema() }).toSchema());
    const reencodes = reencoded.length === der.length && reencoded.every((b, i) => b === der[i]);
    const eContent = sd.encapContentInfo.eContent as unknown;
    const eContentForm = eContent === undefined ? 'absent' : isPrimitiveOctetString(eContent) ? 'primitive' : 'other';
    return {
      contentType: contentInfo.contentType,
      version,
      digestAlgorithms: sd.digestAlgorithms.map(algorithmView),
      eContentType: sd.encapContentInfo.eContentType,
      eContent: eContentForm === 'primitive' ? new Uint8Array((eContent as asn1js.OctetString).valueBlock.valueHexView) : undefined,
      eContentForm,
      certificates,
      crls: sd.crls !== undefined,
      signerInfos: sd.signerInfos.map((si): SignerInfoView => {
        const sid = si.sid instanceof p.IssuerAndSerialNumber
          ? { issuer: new Uint8Array(si.sid.issuer.toSchema().toBER(false)), serialNumber: new Uint8Array(si.sid.serialNumber.valueBlock.valueHexView) }
          : undefined;
        const signed = si.signedAttrs;
        return {
          version: si.version,
          sid,
          digestAlgorithm: algorithmView(si.digestAlgorithm),
          signedAttributes:
            signed === undefined
              ? undefined
              : {
                  der: new Uint8Array(signed.encodedValue),
                  attributes: signed.attributes.map((a) => ({ type: a.type, values: (a.values as asn1js.AsnType[]).map(rawOf) })),
                },
          signatureAlgorithm: algorithmView(si.signatureAlgorithm),
          signature: isPrimitiveOctetString(si.signature) ? new Uint8Array(si.signature.valueBlock.valueHexView) : undefined,
          unsignedAttributes: si.unsignedAttrs !== undefined,
        };
      }),
      reencodes,
    };
  } catch (cause) {
    if (cause instanceof SmkiError) throw cause;
    throw malformed(`the ASN.1 is not a ContentInfo with SignedData (${cause instanceof Error ? cause.message.slice(0, 120) : 'unreadable'})`, cause);
  }
}

/** The DER of an OBJECT IDENTIFIER value. */
export function encodeOid(oid: string): Uint8Array {
  return encode(new asn1js.ObjectIdentifier({ value: oid }));
}

/** The DER of an OCTET STRING value. */
export function encodeOctetString(bytes: Uint8Array): Uint8Array {
  return encode(new asn1js.OctetString({ valueHex: toArrayBuffer(bytes) }));
}

/**
 * The DER of a signing-time value (RFC 5652 §11.3): UTCTime from 1950 to 2049, GeneralizedTime
 * otherwise, to the whole second (fractions are dropped).
 */
export function encodeSigningTime(date: Date): Uint8Array {
  const whole = new Date(Math.floor(date.getTime() / 1000) * 1000);
  const year = whole.getUTCFullYear();
  return encode(year >= 1950 && year <= 2049 ? new asn1js.UTCTime({ valueDate: whole }) : new asn1js.GeneralizedTime({ valueDate: whole }));
}

/** The OID a DER OBJECT IDENTIFIER value holds, or undefined if it is not exactly one. */
export function decodeOid(der: Uint8Array): string | undefined {
  try {
    const e = asn1(der);
    return e instanceof asn1js.ObjectIdentifier && !e.idBlock.isConstructed ? e.valueBlock.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** The content octets of a DER primitive OCTET STRING value, or undefined. */
export function decodeOctetString(der: Uint8Array): Uint8Array | undefined {
  try {
    const r = new ByteReader(der);
    const t = readTlv(r, 0x04);
    return r.done ? der.subarray(t.valueStart, t.end) : undefined;
  } catch {
    return undefined;
  }
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/**
 * The time a DER signing-time value holds, or undefined unless it is exactly as RFC 5652 §11.3
 * requires: UTCTime `YYMMDDHHMMSSZ` for 1950 to 2049, GeneralizedTime `YYYYMMDDHHMMSSZ` (no
 * fractions) for other years, and a real date and time.
 */
export function decodeSigningTime(der: Uint8Array): Date | undefined {
  let text: string;
  let tag: number;
  try {
    const r = new ByteReader(der);
    const t = readTlv(r);
    if (!r.done) return undefined;
    tag = t.tag;
    text = Buffer.from(der.subarray(t.valueStart, t.end)).toString('latin1');
  } catch {
    return undefined;
  }
  let year: number;
  let m: RegExpExecArray | null;
  if (tag === 0x17) {
    m = UTC_TIME.exec(text);
    if (m === null) return undefined;
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tag === 0x18) {
    m = GENERALIZED_TIME.exec(text);
    if (m === null) return undefined;
    year = Number(m[1]);
    if (year >= 1950 && year <= 2049) return undefined; // RFC 5652 §11.3: these years MUST be UTCTime
  } else {
    return undefined;
  }
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  // Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear puts them back.
  if (year < 100) d.setUTCFullYear(year);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day || d.getUTCHours() !== hour || d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second) {
    return undefined;
  }
  return d;
}

/**
 * The algorithms a CMSAlgorithmProtection value names (RFC 6211 §2), or undefined if it does not
 * decode. `signature` is undefined when the value names a MAC algorithm instead.
 */
export async function decodeAlgorithmProtection(der: Uint8Array): Promise<{ readonly digest: AlgorithmView; readonly signature: AlgorithmView | undefined; readonly fields: number } | undefined> {
  const p = await loadPkijs();
  try {
    const e = asn1(der);
    if (!(e instanceof asn1js.Sequence)) return undefined;
    const fields = e.valueBlock.value;
    const first = fields[0];
    if (first === undefined) return undefined;
    const digest = algorithmView(new p.AlgorithmIdentifier({ schema: first }));
    const second = fields[1];
    let signature: AlgorithmView | undefined;
    if (second !== undefined && second.idBlock.tagClass === 3 && second.idBlock.tagNumber === 1 && second instanceof asn1js.Constructed) {
      // [1] IMPLICIT SignatureAlgorithmIdentifier: the SEQUENCE's fields under a context tag.
      signature = algorithmView(new p.AlgorithmIdentifier({ schema: new asn1js.Sequence({ value: second.valueBlock.value }) }));
    }
    return { digest, signature, fields: fields.length };
  } catch {
    return undefined;
  }
}
