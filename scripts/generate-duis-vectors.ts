/**
 * Writes the DUIS XML-signature test vectors under test-vectors/duis/ from fixed seeds
 * (W3C XML Signature Syntax and Processing, Canonical XML 1.0, Exclusive XML Canonicalization 1.0,
 * RFC 4051 §3.3; docs/domain.md §8):
 *
 * - requests.json   verifyDuis(…, { expect: 'request' }): signed Requests for the critical services
 *                   (7.1, 7.2, 7.3, 11.3, 6.15.1) and non-critical ones (4.1.1, 6.11), the signed
 *                   pre-command, and serialisations that must still verify (pretty-printed, base64
 *                   wrapped with CR LF, xmlns:ds on the root, …); then one case per rule of the
 *                   profile, each breaking exactly that rule and expecting exactly its code, and
 *                   signature-wrapping attempts.
 * - responses.json  verifyDuis(…, { expect: 'response' }): the DCC's signed PreCommand Responses
 *                   and the rules that are particular to Responses (signer role 137, the DCC's id,
 *                   the document kind).
 * - replay.json     verifyDuis(…, { expect: 'request', replay }): sequences verified in order
 *                   against one fresh MemoryStateStore, each step with its own expected result.
 *
 * Each file embeds what a verifier needs offline: the trusted certificates (DER hex, named), the
 * organisation CRL and the ARL, the certificates used but deliberately not trusted, and `now`.
 *
 * The documents and signatures are built here, independently of @smki/duis: the canonical forms
 * are written out by hand (the documents are compact and already canonical), the digest is SHA-256
 * over them and SignedInfo is signed in its exclusive canonical form with RFC 6979 ECDSA
 * (scripts/vectors/deterministic.ts). For every compact valid Request the generator also checks
 * that signRequest produces the very same bytes. Keys, serials and times are fixed, so a re-run
 * reproduces every file byte for byte.
 *
 * Before writing, every case is run through verifyDuis and the generator refuses to write when
 * one does not behave as declared, except the cases listed in DISAGREEMENTS (the code recorded is
 * the one the profile calls for; the harness fails them until the verifier is fixed). `--check`
 * compares with the files instead of writing (exit 1 on a difference);
 * packages/duis/test/vectors.test.ts runs it and runs every case.
 */
import { createHash, createHmac, createPublicKey } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { p256 } from '@noble/curves/nist.js';
import { p1363ToDer, toHex, type Signer } from '../packages/core/src/index.js';
import {
  createHierarchy,
  issueCaCertificate,
  issueCrl,
  issueOrganisationCertificate,
  type CertificateAuthority,
  type SmkiCertificate,
  type SmkiCrl,
} from '../packages/pki/src/index.js';
import { buildActivateFirmware, buildArmSupply, buildDisableSupply, buildEnableSupply, signPreCommand } from '../packages/gbcs/src/index.js';
import { MemoryStateStore } from '../packages/store/src/index.js';
import { DuisTrust, signRequest, signResponse, verifyDuis, type VerifiedDuis, type VerifyDuisOptions } from '../packages/duis/src/index.js';
import { seededPrivateKey, seededRandom, seededSecret, seededSigner, type SMode } from './vectors/deterministic.js';
import { writeOrCheck } from './vectors/output.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'test-vectors', 'duis');
const GENERATOR = 'scripts/generate-duis-vectors.ts';
const check = process.argv.includes('--check');

/**
 * Cases where verifyDuis, today, does not give what the profile calls for. The vector records the
 * profile's answer; the harness fails these until the verifier is fixed. Keep this list empty
 * when it is.
 */
const DISAGREEMENTS: ReadonlySet<string> = new Set([]);

// ---- fixed times and parties
const HIERARCHY_FROM = new Date('2015-01-01T00:00:00Z');
const ISSUED = new Date('2025-01-01T00:00:00Z');
const EXPIRED_FROM = new Date('2015-06-01T00:00:00Z'); // ten years: until 2025-06-01
const FUTURE_FROM = new Date('2026-09-01T00:00:00Z');
const NOW = new Date('2026-06-01T12:00:00Z');
const NOW_MS = BigInt(NOW.getTime());
const USER = '90B3D51F30010000';
const OTHER_USER = '90B3D51F30020000';
const DCC = '90B3D51F30000002';
const DEVICE = '00DB1234567890A0';
const OTHER_DEVICE = '00DB1234567890A1';
const C = NOW_MS - 60_000n; // the counter of most requests: a minute before now

// ---- the PKI: keys from labels, serials from a seeded source
const label = (l: string) => `duis/${l}`;
const common = (l: string, notBefore: Date = ISSUED) => ({ notBefore, now: () => notBefore, random: seededRandom(label(l)) });
const pub = (l: string) => createPublicKey(seededPrivateKey(label(l)));
const signer = (l: string, mode: SMode = 'natural'): Signer => seededSigner(label(l), mode);

const hierarchy = await createHierarchy({
  signers: { root: signer('root'), organisationCa: signer('organisation-ca'), deviceCa: signer('device-ca') },
  ...common('hierarchy', HIERARCHY_FROM),
});
const orgCa: CertificateAuthority = { certificate: hierarchy.organisationCa.certificate, signer: signer('organisation-ca') };
const org = (l: string, role: number, entityId: string, o: { keyUsage?: 'digitalSignature' | 'keyAgreement'; from?: Date; issuer?: CertificateAuthority } = {}) =>
  issueOrganisationCertificate({ issuer: o.issuer ?? orgCa, role, entityId, keyUsage: o.keyUsage ?? 'digitalSignature', publicKey: pub(l), ...common(l, o.from) });

// A second organisation CA under the same root, which the verifier is not given.
const missingCaCert = await issueCaCertificate({ issuer: hierarchy.root, kind: 'organisationCa', publicKey: pub('missing-ca'), ...common('missing-ca', HIERARCHY_FROM) });
const missingCa: CertificateAuthority = { certificate: missingCaCert, signer: signer('missing-ca') };

/** Every certificate by name, and the labels of the keys that sign with them. */
const certs = {
  user: await org('user-xml', 135, USER),
  dcc: await org('dcc-xml', 137, DCC),
  userSupplier: await org('user-supplier-ds', 2, USER),
  userKeyAgreement: await org('user-xml-ka', 135, USER, { keyUsage: 'keyAgreement' }),
  otherUser: await org('other-user-xml', 135, OTHER_USER),
  expired: await org('user-xml-expired', 135, USER, { from: EXPIRED_FROM }),
  notYetValid: await org('user-xml-not-yet-valid', 135, USER, { from: FUTURE_FROM }),
  revoked: await org('user-xml-revoked', 135, USER),
  orphan: await org('user-xml-orphan', 135, USER, { issuer: missingCa }),
  untrusted: await org('user-xml-untrusted', 135, USER),
};
type CertName = keyof typeof certs;
const KEY_LABEL: Record<CertName, string> = {
  user: 'user-xml',
  dcc: 'dcc-xml',
  userSupplier: 'user-supplier-ds',
  userKeyAgreement: 'user-xml-ka',
  otherUser: 'other-user-xml',
  expired: 'user-xml-expired',
  notYetValid: 'user-xml-not-yet-valid',
  revoked: 'user-xml-revoked',
  orphan: 'user-xml-orphan',
  untrusted: 'user-xml-untrusted',
};
const TRUSTED: readonly CertName[] = ['user', 'dcc', 'userSupplier', 'userKeyAgreement', 'otherUser', 'expired', 'notYetValid', 'revoked', 'orphan'];
const CERT_COMMENT: Record<CertName, string> = {
  user: "the User's XML-signing certificate: organisation, role 135 (OU 87), digitalSignature, entity 90B3D51F30010000",
  dcc: "the DCC's response-signing certificate: organisation, role 137 (OU 89), digitalSignature, entity 90B3D51F30000002",
  userSupplier: "the same User's supplier digital-signing certificate (role 2), not an XML-signing one",
  userKeyAgreement: "the same User's role-135 certificate with keyAgreement instead of digitalSignature",
  otherUser: "another User's XML-signing certificate (role 135, entity 90B3D51F30020000)",
  expired: "the User's XML-signing certificate issued 2015-06-01, expired 2025-06-01",
  notYetValid: "the User's XML-signing certificate valid from 2026-09-01",
  revoked: "the User's XML-signing certificate listed on the organisation CRL",
  orphan: "the User's XML-signing certificate issued by an organisation CA the verifier does not hold (same name CN=Z1,OU=07, another key)",
  untrusted: "the User's XML-signing certificate the verifier is not given at all",
};

const THIS_UPDATE = new Date(NOW.getTime() - 3600_000);
const NEXT_UPDATE = new Date(NOW.getTime() + 7 * 24 * 3600_000);
const crls: SmkiCrl[] = [
  await issueCrl({ issuer: orgCa, crlNumber: 1n, kind: 'crl', thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE, revoked: [{ serialNumber: certs.revoked.serialNumber, revocationDate: THIS_UPDATE }] }),
  await issueCrl({ issuer: { certificate: hierarchy.root.certificate, signer: signer('root') }, crlNumber: 1n, kind: 'arl', thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE }),
];

const trustFile = {
  comment:
    'Build the verifier from `certificates` (root, organisation CA and the named end-entity certificates) and `crls` (the organisation CRL, which lists `revoked`, and the ARL). `notTrusted` holds certificates the cases use but the verifier is deliberately not given. DER, hex.',
  certificates: {
    root: toHex(hierarchy.root.certificate.der),
    organisationCa: toHex(hierarchy.organisationCa.certificate.der),
    ...Object.fromEntries(TRUSTED.map((n) => [n, toHex(certs[n].der)])),
  } as Record<string, string>,
  certificateComments: Object.fromEntries(TRUSTED.map((n) => [n, CERT_COMMENT[n]])) as Record<string, string>,
  crls: { organisationCrl: toHex(crls[0]!.der), arl: toHex(crls[1]!.der) },
  notTrusted: {
    missingOrganisationCa: toHex(missingCaCert.der),
    untrusted: toHex(certs.untrusted.der),
  },
};

// ---- the XML, written out by hand in canonical form
const SR_NS = 'http://www.dccinterface.co.uk/ServiceUserGateway';
const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
const ALG = {
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  incC14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  ecdsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  ecdsaSha1: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1',
  hmacSha256: 'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
} as const;
const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>';

const pairs = (eui: string) => eui.match(/../g)!.join('-');
const rid = (counter: bigint, target = DEVICE, originator = USER) => `${pairs(originator)}:${pairs(target)}:${counter}`;

interface DocSpec {
  readonly root?: 'Request' | 'Response';
  /** The root declares xmlns:ds too. */
  readonly rootDs?: boolean;
  readonly requestId: string;
  /** Header elements after the RequestID, canonical. */
  readonly header: string;
  /** The body's content, canonical. */
  readonly body: string;
}

/** The document without its signature, in canonical form (inclusive C14N 1.0 of itself). */
function canonicalDoc(d: DocSpec): string {
  const root = d.root ?? 'Request';
  const ns = d.rootDs ? ` xmlns:ds="${DS_NS}" xmlns:sr="${SR_NS}"` : ` xmlns:sr="${SR_NS}"`;
  return `<sr:${root}${ns} schemaVersion="5.4"><sr:Header><sr:RequestID>${d.requestId}</sr:RequestID>${d.header}</sr:Header><sr:Body>${d.body}</sr:Body></sr:${root}>`;
}

const el = (name: string, value: string) => `<sr:${name}>${value}</sr:${name}>`;
const requestHeader = (service: string, commandVariant: string) => el('CommandVariant', commandVariant) + el('ServiceReference', service) + el('ServiceReferenceVariant', service);
const responseHeader = (counter: bigint) => el('ResponseID', rid(counter + 7n)) + el('ResponseCode', 'I0') + el('ResponseDateTime', '2026-06-01T11:59:30.000Z');

interface Reference {
  /** The URI attribute's value; null: no URI attribute. */
  readonly uri?: string | null;
  /** Transform algorithms; null: no ds:Transforms element. */
  readonly transforms?: readonly string[] | null;
  readonly digestMethod?: string;
  /** The DigestValue, base64; default the SHA-256 of the canonical document. */
  readonly digest?: string;
}

interface SignSpec {
  /** Who signs: the certificate named in KeyInfo and the key (default the User). */
  readonly by?: CertName;
  readonly sMode?: SMode;
  readonly canonicalization?: string;
  /** An ec:InclusiveNamespaces PrefixList inside CanonicalizationMethod. */
  readonly inclusivePrefixes?: string;
  /** Text content of CanonicalizationMethod. */
  readonly c14nText?: string;
  readonly signatureMethod?: string;
  readonly references?: readonly Reference[];
  /** The prefix of the signature's elements (default ds). */
  readonly prefix?: string;
  /** Declare the prefix on ds:Signature although the root declares ds. */
  readonly redundantDs?: boolean;
  /** Attributes written on ds:Signature. */
  readonly signatureAttributes?: string;
}

/** RFC 2253 of the issuer as DUIS writes it: the RDNs last to first, no spaces. */
function issuerName(cert: SmkiCertificate): string {
  const short: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.11': 'OU', '2.5.4.10': 'O', '2.5.4.6': 'C' };
  return [...cert.issuer.attributes]
    .reverse()
    .map((a) => `${short[a.oid] ?? a.oid}=${a.value}`)
    .join(',');
}
const serialDecimal = (cert: SmkiCertificate) => BigInt(`0x${cert.serialNumber}`).toString(10);
const issuerSerial = (p: string, issuer: string, serial: string) =>
  `<${p}:X509Data><${p}:X509IssuerSerial><${p}:X509IssuerName>${issuer}</${p}:X509IssuerName><${p}:X509SerialNumber>${serial}</${p}:X509SerialNumber></${p}:X509IssuerSerial></${p}:X509Data>`;

/**
 * ds:SignedInfo: `emit` as written in the document (empty elements self-closed, as signRequest
 * writes them), `exc` its exclusive canonical form, `inc` its inclusive canonical form in context.
 */
function signedInfo(form: 'emit' | 'exc' | 'inc', s: SignSpec, digest: string): string {
  const p = s.prefix ?? 'ds';
  const empty = (name: string, attrs: string) => (form === 'emit' ? `<${p}:${name}${attrs}/>` : `<${p}:${name}${attrs}></${p}:${name}>`);
  const refs = (s.references ?? [{}]).map((r) => {
    const uri = r.uri === null ? '' : ` URI="${r.uri ?? ''}"`;
    const transforms = r.transforms === null ? '' : `<${p}:Transforms>${(r.transforms ?? [ALG.enveloped]).map((t) => empty('Transform', ` Algorithm="${t}"`)).join('')}</${p}:Transforms>`;
    return `<${p}:Reference${uri}>${transforms}${empty('DigestMethod', ` Algorithm="${r.digestMethod ?? ALG.sha256}"`)}<${p}:DigestValue>${r.digest ?? digest}</${p}:DigestValue></${p}:Reference>`;
  });
  // Namespaces rendered on the apex: exclusive C14N the one prefix used; inclusive C14N every one in scope.
  // (With an InclusiveNamespaces PrefixList of sr, exclusive C14N renders xmlns:sr too.)
  const both = p < 'sr' ? ` xmlns:${p}="${DS_NS}" xmlns:sr="${SR_NS}"` : ` xmlns:sr="${SR_NS}" xmlns:${p}="${DS_NS}"`;
  const ns = form === 'emit' ? '' : form === 'exc' && s.inclusivePrefixes === undefined ? ` xmlns:${p}="${DS_NS}"` : both;
  const c14nMethod =
    s.c14nText !== undefined
      ? `<${p}:CanonicalizationMethod Algorithm="${s.canonicalization ?? ALG.excC14n}">${s.c14nText}</${p}:CanonicalizationMethod>`
      : s.inclusivePrefixes === undefined
      ? empty('CanonicalizationMethod', ` Algorithm="${s.canonicalization ?? ALG.excC14n}"`)
      : `<${p}:CanonicalizationMethod Algorithm="${s.canonicalization ?? ALG.excC14n}">` +
        (form === 'emit' ? `<ec:InclusiveNamespaces xmlns:ec="${ALG.excC14n}" PrefixList="${s.inclusivePrefixes}"/>` : `<ec:InclusiveNamespaces xmlns:ec="${ALG.excC14n}" PrefixList="${s.inclusivePrefixes}"></ec:InclusiveNamespaces>`) +
        `</${p}:CanonicalizationMethod>`;
  return (
    `<${p}:SignedInfo${ns}>` +
    c14nMethod +
    empty('SignatureMethod', ` Algorithm="${s.signatureMethod ?? ALG.ecdsaSha256}"`) +
    refs.join('') +
    `</${p}:SignedInfo>`
  );
}

/** The signature value over the canonical SignedInfo, by the method named. */
async function signatureValue(s: SignSpec, canonical: Uint8Array): Promise<Uint8Array> {
  const key = label(KEY_LABEL[s.by ?? 'user']);
  switch (s.signatureMethod ?? ALG.ecdsaSha256) {
    case ALG.ecdsaSha1: {
      const h = createHash('sha1').update(canonical).digest();
      return p256.sign(h, seededSecret(key), { prehash: false, lowS: false });
    }
    case ALG.hmacSha256:
      // The algorithm-confusion attack: an HMAC keyed with the signer's public key.
      return createHmac('sha256', certs[s.by ?? 'user'].publicKeyBytes).update(canonical).digest();
    default:
      return seededSigner(key, s.sMode ?? 'natural').sign(canonical);
  }
}

interface Signed {
  /** The signed document as emitted: XML declaration, compact. */
  readonly xml: string;
  /** The canonical document without its signature (what was digested). */
  readonly canonical: string;
  /** Its SHA-256, base64 (the DigestValue of a profile signature). */
  readonly digest: string;
  readonly signatureValue: string;
}

/** Sign a document: the enveloped signature appended as the root's last child. */
async function sign(d: DocSpec, s: SignSpec = {}): Promise<Signed> {
  const canonical = canonicalDoc(d);
  const digest = createHash('sha256').update(canonical, 'utf8').digest('base64');
  const sha1 = createHash('sha1').update(canonical, 'utf8').digest('base64');
  const spec: SignSpec = { ...s, references: (s.references ?? [{}]).map((r): Reference => (r.digest === undefined && r.digestMethod === ALG.sha1 ? { ...r, digest: sha1 } : r)) };
  const rootDs = d.rootDs ?? false;
  const p = s.prefix ?? 'ds';
  const c14nAlg = s.canonicalization ?? ALG.excC14n;
  const toSign = signedInfo(c14nAlg === ALG.incC14n ? 'inc' : 'exc', spec, digest);
  const raw = await signatureValue(spec, Buffer.from(toSign, 'utf8'));
  const value = Buffer.from(raw).toString('base64');
  const cert = certs[s.by ?? 'user'];
  const keyInfo = issuerSerial(p, issuerName(cert), serialDecimal(cert));
  const declare = !rootDs || s.redundantDs || p !== 'ds' ? ` xmlns:${p}="${DS_NS}"` : '';
  const signature =
    `<${p}:Signature${declare}${s.signatureAttributes ?? ''}>` +
    signedInfo('emit', spec, digest) +
    `<${p}:SignatureValue>${value}</${p}:SignatureValue>` +
    `<${p}:KeyInfo>${keyInfo}</${p}:KeyInfo></${p}:Signature>`;
  const close = `</sr:${d.root ?? 'Request'}>`;
  return { xml: `${XML_DECL}${canonical.slice(0, -close.length)}${signature}${close}`, canonical, digest, signatureValue: value };
}

/** A signed document whose root is not a DUIS Request or Response. */
async function signAny(root: string, ns: string = SR_NS): Promise<Signed> {
  const canonical = canonicalDoc(requestDoc(services.disable)).replace(`<sr:Request xmlns:sr="${SR_NS}"`, `<sr:${root} xmlns:sr="${ns}"`).replace('</sr:Request>', `</sr:${root}>`);
  return signCanonical(canonical, `</sr:${root}>`);
}
/** A signed 7.2 request with extra canonical content at the end of its header (signed so). */
async function signWithExtraHeader(extra: string): Promise<Signed> {
  return signCanonical(replaceOnce(canonicalDoc(requestDoc(services.disable)), '</sr:Header>', `${extra}</sr:Header>`), '</sr:Request>');
}
/** Sign an already canonical document text with the User's key (the profile's signature). */
async function signCanonical(canonical: string, close: string): Promise<Signed> {
  const digest = createHash('sha256').update(canonical, 'utf8').digest('base64');
  const raw = await signatureValue({}, Buffer.from(signedInfo('exc', {}, digest), 'utf8'));
  const value = b64(raw);
  const signature = `<ds:Signature xmlns:ds="${DS_NS}">${signedInfo('emit', {}, digest)}<ds:SignatureValue>${value}</ds:SignatureValue><ds:KeyInfo>${issuerSerial('ds', issuerName(certs.user), serialDecimal(certs.user))}</ds:KeyInfo></ds:Signature>`;
  return { xml: `${XML_DECL}${canonical.slice(0, -close.length)}${signature}${close}`, canonical, digest, signatureValue: value };
}
async function signResponseDoc(d: DocSpec, by: CertName = 'dcc'): Promise<Signed> {
  return sign(d, { by });
}

/** Indent a compact document: white space between elements only (never inside a value). */
function pretty(xml: string, nl = '\n', indent = '  '): string {
  const tokens = xml.match(/<[^>]+>|[^<]+/g) ?? [];
  let out = '';
  let depth = 0;
  let prev: 'decl' | 'open' | 'close' | 'text' | undefined;
  for (const t of tokens) {
    if (t.startsWith('<?')) {
      out += t;
      prev = 'decl';
    } else if (t.startsWith('</')) {
      depth--;
      if (prev === 'close') out += nl + indent.repeat(depth);
      out += t;
      prev = 'close';
    } else if (t.startsWith('<')) {
      if (prev !== undefined) out += nl + indent.repeat(depth);
      out += t;
      if (t.endsWith('/>')) prev = 'close';
      else {
        depth++;
        prev = 'open';
      }
    } else {
      out += t;
      prev = 'text';
    }
  }
  return `${out}${nl}`;
}

/** Replace exactly one occurrence (the generator stops if there is not exactly one). */
function replaceOnce(s: string, from: string, to: string): string {
  const at = s.indexOf(from);
  if (at < 0 || s.indexOf(from, at + 1) >= 0) throw new Error(`replaceOnce: ${JSON.stringify(from)} occurs ${at < 0 ? 'nowhere' : 'more than once'}`);
  return s.slice(0, at) + to + s.slice(at + from.length);
}
const between = (s: string, open: string, close: string) => {
  const a = s.indexOf(open);
  const b = s.indexOf(close, a);
  if (a < 0 || b < 0) throw new Error(`between: ${open} … ${close} not found`);
  return s.slice(a, b + close.length);
};
const signatureOf = (xml: string) => between(xml, '<ds:Signature', '</ds:Signature>');

// ---- documents
const gbcsSigner = signer('user-supplier-ds');
const IMAGE = createHash('sha256').update('duis vectors firmware image 4.2.0').digest();
const pre = {
  disable: buildDisableSupply({ fuel: 'electricity', originator: USER, recipient: DEVICE, counter: C }),
  enable: buildEnableSupply({ originator: USER, recipient: DEVICE, counter: C }),
  arm: buildArmSupply({ fuel: 'electricity', originator: USER, recipient: DEVICE, counter: C }),
  firmware: buildActivateFirmware({ originator: USER, recipient: DEVICE, counter: C, imageHash: IMAGE, executionTime: new Date('2026-06-02T02:00:00Z') }),
};
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const preCommandBody = (bytes: Uint8Array) => el('PreCommand', el('GBCSVersion', '3.2') + el('GBCSPayload', b64(bytes)));
const signedPreCommandBody = async (bytes: Uint8Array) => el('SignedPreCommand', el('GBCSPayload', b64(await signPreCommand(bytes, gbcsSigner))));

interface Service {
  readonly id: string;
  readonly service: string;
  readonly commandVariant: string;
  readonly body: string;
  readonly bodyName: string;
  readonly what: string;
}
const services = {
  enable: { id: 'valid-7-1-enable-supply', service: '7.1', commandVariant: '4', body: '<sr:EnableSupply></sr:EnableSupply>', bodyName: 'EnableSupply', what: '7.1 Enable Supply (critical)' },
  disable: { id: 'valid-7-2-disable-supply', service: '7.2', commandVariant: '4', body: '<sr:DisableSupply></sr:DisableSupply>', bodyName: 'DisableSupply', what: '7.2 Disable Supply (critical)' },
  arm: { id: 'valid-7-3-arm-supply', service: '7.3', commandVariant: '4', body: '<sr:ArmSupply></sr:ArmSupply>', bodyName: 'ArmSupply', what: '7.3 Arm Supply (critical)' },
  firmware: {
    id: 'valid-11-3-activate-firmware',
    service: '11.3',
    commandVariant: '4',
    body: el('ActivateFirmware', el('ManufacturerImageHash', toHex(IMAGE)) + el('ExecutionDateTime', '2026-06-02T02:00:00.000Z')),
    bodyName: 'ActivateFirmware',
    what: '11.3 Activate Firmware (critical), a body with values',
  },
  credentials: {
    id: 'valid-6-15-1-update-security-credentials',
    service: '6.15.1',
    commandVariant: '4',
    body: el(
      'UpdateSecurityCredentialsKRP',
      el('AuthorisingRemotePartyTACellIdentifier', 'Supplier') +
        el('ReplacementCertificate', el('SubjectUniqueIdentifier', pairs(USER)) + el('CertificateSerialNumber', serialDecimal(certs.userSupplier)) + el('CertificateUsage', 'DigitalSigning')) +
        el('ExecutionDateTime', '2026-06-01T12:05:00.000Z'),
    ),
    bodyName: 'UpdateSecurityCredentialsKRP',
    what: '6.15.1 Update Security Credentials (critical), a body with nested values',
  },
  read: { id: 'valid-4-1-1-read-registers', service: '4.1.1', commandVariant: '1', body: '<sr:ReadInstantaneousImportRegisters></sr:ReadInstantaneousImportRegisters>', bodyName: 'ReadInstantaneousImportRegisters', what: '4.1.1 Read Instantaneous Import Registers (non-critical)' },
  billing: {
    id: 'valid-6-11-update-billing-calendar',
    service: '6.11',
    commandVariant: '1',
    body: el('UpdateBillingCalendar', el('Periodicity', 'Monthly') + el('StartDateTime', '2026-07-01T00:00:00.000Z')),
    bodyName: 'UpdateBillingCalendar',
    what: '6.11 Update Device Configuration (Billing Calendar) (non-critical), a set with values',
  },
} satisfies Record<string, Service>;

const requestDoc = (s: Service, o: { counter?: bigint; target?: string; originator?: string; rootDs?: boolean; requestId?: string } = {}): DocSpec => ({
  requestId: o.requestId ?? rid(o.counter ?? C, o.target, o.originator),
  header: requestHeader(s.service, s.commandVariant),
  body: s.body,
  ...(o.rootDs ? { rootDs: true } : {}),
});
const preCommandRequestDoc = async (counter: bigint, service: Service = services.disable, bytes: Uint8Array = pre.disable): Promise<DocSpec> => ({
  requestId: rid(counter),
  header: requestHeader(service.service, service.commandVariant),
  body: await signedPreCommandBody(bytes),
});
const responseDoc = (body: string, counter: bigint = C): DocSpec => ({ root: 'Response', requestId: rid(counter), header: responseHeader(counter), body });

// ---- cases
interface Expected {
  readonly kind: 'request' | 'response';
  readonly originator: string;
  readonly target: string;
  readonly counter: string;
  readonly requestId: string;
  readonly serviceReference?: string;
  readonly serviceReferenceVariant?: string;
  readonly commandVariant?: string;
  readonly body: string;
  /** The trusted certificate that verifies it (a name in trust.certificates). */
  readonly signer: string;
  /** SHA-256 of the document as verified, base64: the reference's DigestValue. */
  readonly digest: string;
}
interface Input {
  readonly expect: 'request' | 'response';
  readonly xml: string;
  readonly maxBytes?: number;
  readonly dcc?: string;
}
interface Step {
  readonly xml: string;
  readonly result: 'valid' | 'invalid';
  readonly errorCode?: string;
  readonly counter?: string;
  readonly body?: string;
}
interface Case {
  readonly id: string;
  readonly comment: string;
  readonly clause: string;
  readonly input: Input | { readonly expect: 'request'; readonly replay: { readonly maxAgeMs?: number; readonly maxFutureMs?: number }; readonly sequence: readonly Step[] };
  readonly result: 'valid' | 'invalid';
  readonly errorCode?: string;
  readonly expected?: Expected;
  /** Whether an independent verifier (the JDK's XML Signature with the signer's certificate) must also accept it. */
  readonly jdk?: 'valid' | 'invalid';
}

const CL = {
  profile: 'W3C XML Signature (enveloped); docs/domain.md §8',
  c14n: 'W3C Canonical XML 1.0 (reference), Exclusive XML Canonicalization 1.0 (SignedInfo); docs/domain.md §8',
  algorithms: 'W3C XML Signature §6; RFC 4051 §3.3; docs/domain.md §8',
  keyInfo: 'W3C XML Signature §4.4.4 X509Data; RFC 2253; docs/domain.md §8',
  signer: 'RFC 5280 §6.1; docs/domain.md §2, §8',
  document: 'docs/domain.md §8 (DUIS schema 5.4)',
  parsing: 'XML 1.0 §2.8 (DOCTYPE), §2.5, §2.6, §2.7; docs/domain.md §8',
  wrapping: 'W3C XML Signature Best Practices (signature wrapping); docs/domain.md §8',
  replay: 'docs/domain.md §6, §8 (request ids as anti-replay counters)',
};

function expected(kind: 'request' | 'response', d: DocSpec, s: Signed, o: { service?: Service; body: string; signer?: CertName }): Expected {
  const [originator, target, counter] = d.requestId.split(':') as [string, string, string];
  return {
    kind,
    originator: originator.replace(/-/g, ''),
    target: target.replace(/-/g, ''),
    counter,
    requestId: d.requestId,
    ...(o.service ? { serviceReference: o.service.service, serviceReferenceVariant: o.service.service, commandVariant: o.service.commandVariant } : {}),
    body: o.body,
    signer: o.signer ?? (kind === 'request' ? 'user' : 'dcc'),
    digest: s.digest,
  };
}

const requests: Case[] = [];
const responses: Case[] = [];
const replays: Case[] = [];
const req = (id: string, comment: string, clause: string, xml: string, result: 'valid' | 'invalid', more: Partial<Case> & { maxBytes?: number } = {}) => {
  const { maxBytes, ...rest } = more;
  requests.push({ id, comment, clause, input: { expect: 'request', xml, ...(maxBytes !== undefined ? { maxBytes } : {}) }, result, ...rest });
};
const bad = (id: string, comment: string, clause: string, xml: string, errorCode: string, more: Partial<Case> & { maxBytes?: number } = {}) => req(id, comment, clause, xml, 'invalid', { errorCode, ...more });

// ---- valid Requests
const base = await sign(requestDoc(services.disable));
const baseDoc = requestDoc(services.disable);
const compactValid: { id: string; doc: DocSpec; signed: Signed }[] = [];
const byService = {} as Record<keyof typeof services, { doc: DocSpec; signed: Signed }>;
for (const [key, s] of Object.entries(services)) {
  const doc = requestDoc(s);
  const signed = key === 'disable' ? base : await sign(doc);
  byService[key as keyof typeof services] = { doc, signed };
  compactValid.push({ id: s.id, doc, signed });
  req(compactValid.at(-1)!.id, `service ${s.what}, signed by the User (role 135) as signRequest writes it: compact, with the XML declaration`, CL.profile, signed.xml, 'valid', {
    expected: expected('request', doc, signed, { service: s, body: s.bodyName }),
    jdk: 'valid',
  });
}
{
  const doc = await preCommandRequestDoc(C);
  const signed = await sign(doc);
  compactValid.push({ id: 'valid-signed-pre-command', doc, signed });
  req('valid-signed-pre-command', 'the User’s answer to a 7.2 pre-command: sr:SignedPreCommand with the GBCS pre-command signed by the supplier key (base64), under the same request id', 'docs/domain.md §8 (the round trip)', signed.xml, 'valid', {
    expected: expected('request', doc, signed, { service: services.disable, body: 'SignedPreCommand' }),
    jdk: 'valid',
  });
}
{
  const doc = requestDoc(services.disable, { target: DCC });
  const signed = await sign(doc);
  req('valid-target-dcc', 'a request addressed to the DCC itself (target 90B3D51F30000002)', CL.document, signed.xml, 'valid', { expected: expected('request', doc, signed, { service: services.disable, body: 'DisableSupply' }), jdk: 'valid' });
}
const ex = (doc: DocSpec, signed: Signed, s: Service = services.disable) => expected('request', doc, signed, { service: s, body: s.bodyName });
req('valid-pretty-printed', 'the 7.1 request indented after signing (LF and spaces between every element, inside the Signature too): white space between elements is not digested', CL.c14n, pretty(byService.enable.signed.xml), 'valid', {
  expected: ex(byService.enable.doc, byService.enable.signed, services.enable),
  jdk: 'valid',
});
req('valid-pretty-printed-crlf-tabs', 'the 11.3 request indented with CR LF and tabs after signing', CL.c14n, pretty(byService.firmware.signed.xml, '\r\n', '\t'), 'valid', {
  expected: ex(byService.firmware.doc, byService.firmware.signed, services.firmware),
  jdk: 'valid',
});
{
  const v = base.signatureValue;
  const wrapped = replaceOnce(base.xml, `>${v}<`, `>${v.slice(0, 76)}&#13;\n${v.slice(76)}<`);
  req('valid-signature-value-wrapped', 'the SignatureValue base64 wrapped at 76 characters with &#13; and a newline, as the reference tool writes it', CL.profile, wrapped, 'valid', { expected: ex(baseDoc, base), jdk: 'valid' });
}
{
  const doc = requestDoc(services.arm, { rootDs: true });
  const signed = await sign(doc);
  req('valid-root-declares-ds', 'the root declares xmlns:ds (digested, inclusive C14N), so ds:Signature does not', CL.c14n, signed.xml, 'valid', { expected: ex(doc, signed, services.arm), jdk: 'valid' });
}
req('valid-no-xml-declaration', 'the 7.2 request without the XML declaration (not part of the canonical form)', CL.c14n, base.xml.slice(XML_DECL.length), 'valid', { expected: ex(baseDoc, base), jdk: 'valid' });
req(
  'valid-non-canonical-serialisation',
  "the 7.2 request written differently but canonically equal: the root's attributes single-quoted and in another order, the empty body element self-closed, the ServiceReference 7.2 written with character references",
  CL.c14n,
  replaceOnce(
    replaceOnce(replaceOnce(base.xml, `<sr:Request xmlns:sr="${SR_NS}" schemaVersion="5.4">`, `<sr:Request schemaVersion='5.4' xmlns:sr='${SR_NS}'>`), '<sr:DisableSupply></sr:DisableSupply>', '<sr:DisableSupply/>'),
    '<sr:ServiceReference>7.2<',
    '<sr:ServiceReference>&#55;.&#x32;<',
  ),
  'valid',
  { expected: ex(baseDoc, base), jdk: 'valid' },
);
{
  const doc = requestDoc(services.disable);
  const high = await sign(doc, { sMode: 'high' });
  const low = await sign(doc, { sMode: 'low' });
  req('valid-high-s', 'the 7.2 request with s > n/2 (ECDSA signatures are not normalised; docs/domain.md §4)', CL.algorithms, high.xml, 'valid', { expected: ex(doc, high), jdk: 'valid' });
  req('valid-low-s', 'the same request with s < n/2', CL.algorithms, low.xml, 'valid', { expected: ex(doc, low), jdk: 'valid' });
}
req('valid-at-size-bound', 'maxBytes exactly the document’s length in bytes', 'docs/domain.md §8; CONVENTIONS (bounded parsing)', base.xml, 'valid', { maxBytes: Buffer.byteLength(base.xml), expected: ex(baseDoc, base), jdk: 'valid' });

// ---- one rule broken at a time
const B = base.xml;
const sigB = signatureOf(B);
const withoutSig = B.replace(sigB, '');
bad('no-signature', 'the 7.2 request with its ds:Signature removed: a Request must be signed', CL.profile, withoutSig, 'ERR_DUIS_SIGNATURE_COUNT');
bad('two-signatures', 'the signature twice, both last children of the root', CL.profile, replaceOnce(B, sigB, sigB + sigB), 'ERR_DUIS_SIGNATURE_COUNT');
bad('signature-not-last-child', 'the signature moved to be the root’s first child (before sr:Header)', CL.profile, replaceOnce(withoutSig, '<sr:Header>', `${sigB}<sr:Header>`), 'ERR_DUIS_SIGNATURE_PLACEMENT');
bad('signature-between-header-and-body', 'the signature moved between sr:Header and sr:Body', CL.profile, replaceOnce(withoutSig, '<sr:Body>', `${sigB}<sr:Body>`), 'ERR_DUIS_SIGNATURE_PLACEMENT');
bad('two-references', 'SignedInfo with two References, both URI="" with the right digest (re-signed)', CL.profile, (await sign(baseDoc, { references: [{}, {}] })).xml, 'ERR_DUIS_REFERENCE_COUNT');
bad('reference-uri-fragment', 'Reference URI="#x" (re-signed)', CL.profile, (await sign(baseDoc, { references: [{ uri: '#x' }] })).xml, 'ERR_DUIS_REFERENCE_URI');
bad('reference-uri-missing', 'Reference without a URI attribute (re-signed)', CL.profile, (await sign(baseDoc, { references: [{ uri: null }] })).xml, 'ERR_DUIS_REFERENCE_URI');
bad('transform-c14n-added', 'the enveloped-signature transform followed by an exclusive C14N transform (re-signed; the digest is the same)', CL.profile, (await sign(baseDoc, { references: [{ transforms: [ALG.enveloped, ALG.excC14n] }] })).xml, 'ERR_DUIS_TRANSFORMS');
bad('transform-other', 'one transform, but inclusive C14N instead of enveloped-signature (re-signed)', CL.profile, (await sign(baseDoc, { references: [{ transforms: [ALG.incC14n] }] })).xml, 'ERR_DUIS_TRANSFORMS');
bad('transforms-missing', 'the Reference without ds:Transforms (re-signed)', CL.profile, (await sign(baseDoc, { references: [{ transforms: null }] })).xml, 'ERR_DUIS_TRANSFORMS');
bad('canonicalization-inclusive', 'SignedInfo canonicalized with inclusive C14N 1.0 instead of exclusive (signed over the inclusive form, xmlns:sr included)', CL.algorithms, (await sign(baseDoc, { canonicalization: ALG.incC14n })).xml, 'ERR_DUIS_ALGORITHM');
bad(
  'canonicalization-inclusive-namespaces',
  'exclusive C14N with an ec:InclusiveNamespaces PrefixList="sr" parameter (signed over that form): refused first because ec:InclusiveNamespaces is an element of the signature not prefixed ds; canonicalization-with-content breaks the no-parameter rule alone',
  CL.algorithms,
  (await sign(baseDoc, { inclusivePrefixes: 'sr' })).xml,
  'ERR_DUIS_SIGNATURE_STRUCTURE',
);
bad('canonicalization-with-content', 'ds:CanonicalizationMethod with text content (a parameter the profile does not use; signed over that form)', CL.algorithms, (await sign(baseDoc, { c14nText: 'sr' })).xml, 'ERR_DUIS_ALGORITHM');
bad('signature-method-ecdsa-sha1', 'SignatureMethod ecdsa-sha1, a real ECDSA-SHA1 signature by the User’s key', CL.algorithms, (await sign(baseDoc, { signatureMethod: ALG.ecdsaSha1 })).xml, 'ERR_DUIS_ALGORITHM');
bad('signature-method-hmac-sha256', 'SignatureMethod hmac-sha256 keyed with the certificate’s public key (algorithm confusion)', CL.algorithms, (await sign(baseDoc, { signatureMethod: ALG.hmacSha256 })).xml, 'ERR_DUIS_ALGORITHM');
bad('digest-method-sha1', 'DigestMethod sha1 with the document’s true SHA-1 digest (re-signed)', CL.algorithms, (await sign(baseDoc, { references: [{ digestMethod: ALG.sha1 }] })).xml, 'ERR_DUIS_ALGORITHM');
const afterDecl = (xml: string, insert: string) => replaceOnce(xml, XML_DECL, XML_DECL + insert);
bad(
  'doctype-billion-laughs',
  'an internal subset of nested entities (billion-laughs shape) referenced in a value: refused before parsing',
  CL.parsing,
  replaceOnce(
    afterDecl(B, '<!DOCTYPE sr:Request [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'),
    '<sr:CommandVariant>4<',
    '<sr:CommandVariant>&lol3;<',
  ),
  'ERR_DUIS_DOCTYPE',
);
bad(
  'doctype-external-entity',
  'an external SYSTEM entity (XXE) referenced in a value: refused before parsing, nothing is fetched',
  CL.parsing,
  replaceOnce(afterDecl(B, '<!DOCTYPE sr:Request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'), '<sr:CommandVariant>4<', '<sr:CommandVariant>&xxe;<'),
  'ERR_DUIS_DOCTYPE',
);
bad('doctype-plain', 'a DOCTYPE with no internal subset and no entity', CL.parsing, afterDecl(B, '<!DOCTYPE sr:Request>'), 'ERR_DUIS_DOCTYPE');
bad('comment', 'a comment between the header’s elements', CL.parsing, replaceOnce(B, '<sr:CommandVariant>', '<!-- note --><sr:CommandVariant>'), 'ERR_DUIS_COMMENT');
bad('processing-instruction', 'a processing instruction in the body', CL.parsing, replaceOnce(B, '<sr:DisableSupply>', '<?app hint?><sr:DisableSupply>'), 'ERR_DUIS_PROCESSING_INSTRUCTION');
bad('processing-instruction-before-root', 'a processing instruction after the XML declaration, before the root', CL.parsing, afterDecl(B, '<?xml-stylesheet href="a.xsl"?>'), 'ERR_DUIS_PROCESSING_INSTRUCTION');
bad('cdata', 'the CommandVariant value written as a CDATA section: canonically the same text, so the signature is good (the JDK verifier accepts it), but the profile refuses CDATA', CL.parsing, replaceOnce(B, '<sr:CommandVariant>4<', '<sr:CommandVariant><![CDATA[4]]><'), 'ERR_DUIS_MALFORMED', { jdk: 'valid' });
bad('not-well-formed', 'the 7.2 request cut before its last character', CL.parsing, B.slice(0, -1), 'ERR_DUIS_MALFORMED');
bad('over-size-bound', 'maxBytes one byte under the document’s length', 'docs/domain.md §8; CONVENTIONS (bounded parsing)', B, 'ERR_DUIS_TOO_LARGE', { maxBytes: Buffer.byteLength(B) - 1 });

const userIssuer = issuerName(certs.user);
const userSerial = serialDecimal(certs.user);
const keyInfoOf = (xml: string) => between(xml, '<ds:KeyInfo>', '</ds:KeyInfo>');
const withKeyInfo = (inner: string) => replaceOnce(B, keyInfoOf(B), `<ds:KeyInfo>${inner}</ds:KeyInfo>`);
const certB64 = b64(certs.user.der);
bad('key-info-certificate', 'KeyInfo carries the signer’s ds:X509Certificate instead of ds:X509IssuerSerial (KeyInfo is not signed)', CL.keyInfo, withKeyInfo(`<ds:X509Data><ds:X509Certificate>${certB64}</ds:X509Certificate></ds:X509Data>`), 'ERR_DUIS_KEY_INFO');
bad('key-info-serial-and-certificate', 'X509Data with the issuer and serial and also the certificate', CL.keyInfo, withKeyInfo(issuerSerial('ds', userIssuer, userSerial).replace('</ds:X509Data>', `<ds:X509Certificate>${certB64}</ds:X509Certificate></ds:X509Data>`)), 'ERR_DUIS_KEY_INFO');
bad('key-info-key-name', 'KeyInfo with a ds:KeyName instead of X509Data', CL.keyInfo, withKeyInfo(`<ds:KeyName>${userIssuer} ${userSerial}</ds:KeyName>`), 'ERR_DUIS_KEY_INFO');
bad('key-info-key-value', "KeyInfo with the signer's key embedded (ds:KeyValue holding a dsig11:ECKeyValue) instead of X509Data: refused first because dsig11:ECKeyValue is not prefixed ds; a KeyInfo that is not X509IssuerSerial is refused anyway (key-info-key-name)", CL.keyInfo, withKeyInfo(`<ds:KeyValue><dsig11:ECKeyValue xmlns:dsig11="http://www.w3.org/2009/xmldsig11#"><dsig11:NamedCurve URI="urn:oid:1.2.840.10045.3.1.7"></dsig11:NamedCurve><dsig11:PublicKey>${b64(certs.user.publicKeyBytes)}</dsig11:PublicKey></dsig11:ECKeyValue></ds:KeyValue>`), 'ERR_DUIS_SIGNATURE_STRUCTURE');
if (!/[A-F]/.test(certs.user.serialNumber)) throw new Error('the User certificate serial has no hex letter: pick another label');
bad('key-info-serial-hex', `X509SerialNumber written in hex (${certs.user.serialNumber}) instead of decimal`, CL.keyInfo, withKeyInfo(issuerSerial('ds', userIssuer, certs.user.serialNumber)), 'ERR_DUIS_KEY_INFO');
bad('key-info-serial-leading-zero', 'X509SerialNumber in decimal with a leading zero', CL.keyInfo, withKeyInfo(issuerSerial('ds', userIssuer, `0${userSerial}`)), 'ERR_DUIS_KEY_INFO');
bad('key-info-missing', 'ds:Signature without ds:KeyInfo', CL.profile, replaceOnce(B, keyInfoOf(B), ''), 'ERR_DUIS_SIGNATURE_STRUCTURE');
bad('issuer-name-with-spaces', `X509IssuerName "${userIssuer.replace(/,/g, ', ')}": the issuer is matched as written in RFC 2253 form without spaces`, CL.keyInfo, withKeyInfo(issuerSerial('ds', userIssuer.replace(/,/g, ', '), userSerial)), 'ERR_DUIS_CERTIFICATE_NOT_FOUND');
bad('issuer-name-other', `the User certificate's serial with the root's name (${issuerName(hierarchy.root.certificate)}) as issuer: never the serial alone`, CL.keyInfo, withKeyInfo(issuerSerial('ds', issuerName(hierarchy.root.certificate), userSerial)), 'ERR_DUIS_CERTIFICATE_NOT_FOUND');
bad('serial-unknown', 'a serial no trusted certificate has (the User’s plus one)', CL.keyInfo, withKeyInfo(issuerSerial('ds', userIssuer, (BigInt(userSerial) + 1n).toString())), 'ERR_DUIS_CERTIFICATE_NOT_FOUND');
const by = async (n: CertName, doc: DocSpec = baseDoc) => (await sign(doc, { by: n })).xml;
bad('signer-not-trusted', 'signed with a role-135 certificate of the User that the verifier is not given', CL.signer, await by('untrusted'), 'ERR_DUIS_CERTIFICATE_NOT_FOUND');
bad('signer-role-supplier', "signed with the same User's supplier certificate (role 2), not its XML-signing one", CL.signer, await by('userSupplier'), 'ERR_DUIS_SIGNER_ROLE');
bad('signer-role-dcc', "a Request signed with the DCC's response-signing certificate (role 137)", CL.signer, await by('dcc', requestDoc(services.disable, { originator: DCC })), 'ERR_DUIS_SIGNER_ROLE');
bad('signer-key-agreement', 'signed with a role-135 certificate whose key usage is keyAgreement', CL.signer, await by('userKeyAgreement'), 'ERR_DUIS_SIGNER_ROLE');
bad('signer-other-entity', "signed with another User's XML-signing certificate (90B3D51F30020000); the request id's originator is 90B3D51F30010000", CL.signer, await by('otherUser'), 'ERR_DUIS_SIGNER_NOT_ORIGINATOR');
bad('signer-expired', 'signed with a certificate that expired on 2025-06-01', CL.signer, await by('expired'), 'ERR_DUIS_CERTIFICATE_EXPIRED');
bad('signer-not-yet-valid', 'signed with a certificate valid only from 2026-09-01', CL.signer, await by('notYetValid'), 'ERR_DUIS_CERTIFICATE_EXPIRED');
bad('signer-revoked', 'signed with a certificate the organisation CRL lists', CL.signer, await by('revoked'), 'ERR_DUIS_CERTIFICATE_REVOKED');
bad('signer-ca-missing', 'signed with a certificate whose organisation CA the verifier does not hold (no path to the root)', CL.signer, await by('orphan'), 'ERR_DUIS_CERTIFICATE_PATH_INVALID');
{
  const raw = Buffer.from(base.signatureValue, 'base64');
  raw[40] = (raw[40] as number) ^ 0x01;
  bad('signature-bit-flipped', 'one bit of s in the SignatureValue flipped', CL.algorithms, replaceOnce(B, `>${base.signatureValue}<`, `>${raw.toString('base64')}<`), 'ERR_DUIS_SIGNATURE_INVALID', { jdk: 'invalid' });
  const der = b64(p1363ToDer(Buffer.from(base.signatureValue, 'base64')));
  bad('signature-value-der', 'the same signature DER-encoded (the profile has raw r‖s)', CL.algorithms, replaceOnce(B, `>${base.signatureValue}<`, `>${der}<`), 'ERR_DUIS_SIGNATURE_STRUCTURE');
  bad('signature-value-not-base64', 'a SignatureValue with a character outside base64', CL.profile, replaceOnce(B, `>${base.signatureValue}<`, `>${base.signatureValue.slice(0, 10)}*${base.signatureValue.slice(11)}<`), 'ERR_DUIS_SIGNATURE_STRUCTURE');
}
bad('signature-id-attribute', 'an Id attribute on ds:Signature (the profile has none; re-signed, the digest excludes the signature)', CL.profile, (await sign(baseDoc, { signatureAttributes: ' Id="sig-1"' })).xml, 'ERR_DUIS_SIGNATURE_STRUCTURE');
bad('signature-prefix-not-ds', 'the signature’s elements prefixed dsig instead of ds (re-signed over the dsig-prefixed SignedInfo): the profile fixes the prefix ds', CL.profile, (await sign(baseDoc, { prefix: 'dsig' })).xml, 'ERR_DUIS_SIGNATURE_STRUCTURE', { jdk: 'invalid' });
bad('signature-redundant-ds-declaration', 'the root declares xmlns:ds and ds:Signature declares it again: the profile declares it on the Signature only when the root does not', CL.profile, (await sign(requestDoc(services.arm, { rootDs: true }), { redundantDs: true })).xml, 'ERR_DUIS_SIGNATURE_STRUCTURE', { jdk: 'invalid' });
bad('tampered-body', 'after signing, 7.2 DisableSupply changed to 7.1 EnableSupply in the body', CL.c14n, replaceOnce(B, '<sr:DisableSupply></sr:DisableSupply>', '<sr:EnableSupply></sr:EnableSupply>'), 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
{
  const fw = byService.firmware.signed.xml;
  bad('tampered-value', 'after signing, one hex digit of the 11.3 ManufacturerImageHash changed', CL.c14n, replaceOnce(fw, `>${toHex(IMAGE)}<`, `>${toHex(IMAGE).slice(0, -1)}${toHex(IMAGE).endsWith('0') ? '1' : '0'}<`), 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
}
bad('white-space-in-value', 'after signing, a space added inside the ServiceReference value: white space inside a value is digested', CL.c14n, replaceOnce(B, '<sr:ServiceReference>7.2<', '<sr:ServiceReference> 7.2<'), 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
{
  const doc = requestDoc(services.arm, { rootDs: true });
  const signed = await sign(doc);
  const moved = replaceOnce(replaceOnce(signed.xml, ` xmlns:ds="${DS_NS}" xmlns:sr=`, ' xmlns:sr='), '<ds:Signature>', `<ds:Signature xmlns:ds="${DS_NS}">`);
  bad('ds-declaration-moved', 'signed with xmlns:ds on the root, then the declaration moved to ds:Signature: inclusive C14N digests the root’s declarations', CL.c14n, moved, 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
}
bad('prefix-renamed', 'after signing, the DUIS prefix sr renamed to d everywhere (same namespace): inclusive C14N keeps prefixes', CL.c14n, B.replace(/(<\/?)sr:/g, '$1d:').replace('xmlns:sr=', 'xmlns:d='), 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
{
  const doc = requestDoc(services.disable, { requestId: `${pairs(USER).toLowerCase()}:${pairs(DEVICE)}:${C}` });
  bad('request-id-lower-case', 'a request id with lower-case hex (signed so)', CL.document, (await sign(doc)).xml, 'ERR_DUIS_REQUEST_ID_INVALID');
  const doc2 = requestDoc(services.disable, { requestId: `${USER}:${DEVICE}:${C}` });
  bad('request-id-not-hyphenated', 'a request id with the EUI-64s unhyphenated (signed so)', CL.document, (await sign(doc2)).xml, 'ERR_DUIS_REQUEST_ID_INVALID');
  const doc3 = requestDoc(services.disable, { requestId: `${pairs(USER)}:${pairs(DEVICE)}:18446744073709551616` });
  bad('request-id-counter-overflow', 'a request id counter of 2^64 (signed so)', CL.document, (await sign(doc3)).xml, 'ERR_DUIS_REQUEST_ID_INVALID');
}
{
  const signed = await signResponseDoc(responseDoc(preCommandBody(pre.disable)));
  bad('response-not-request', 'a DCC Response given where a Request is expected', CL.document, signed.xml, 'ERR_DUIS_DOCUMENT_KIND');
}
bad('root-not-duis', 'the root is sr:Message (not Request or Response) in the DUIS namespace (signed so)', CL.document, (await signAny('Message')).xml, 'ERR_DUIS_DOCUMENT_KIND');
bad('root-other-namespace', 'the root is Request in another namespace (signed so)', CL.document, (await signAny('Request', 'urn:example:not-duis')).xml, 'ERR_DUIS_DOCUMENT_KIND');

// The document's own structure, each signed so (the signature is right; the shape is not).
const canon = canonicalDoc(baseDoc);
const structure = async (id: string, comment: string, from: string, to: string, errorCode: string) =>
  bad(id, `${comment} (signed so)`, CL.document, (await signCanonical(replaceOnce(canon, from, to), '</sr:Request>')).xml, errorCode);
await structure('header-two-request-ids', 'a header with two sr:RequestID elements', '<sr:CommandVariant>', `<sr:RequestID>${rid(C + 1n)}</sr:RequestID><sr:CommandVariant>`, 'ERR_DUIS_STRUCTURE');
await structure('header-no-request-id', 'a header without sr:RequestID', `<sr:RequestID>${rid(C)}</sr:RequestID>`, '', 'ERR_DUIS_STRUCTURE');
await structure('header-two-service-references', 'a header with two sr:ServiceReference elements', '<sr:ServiceReferenceVariant>', '<sr:ServiceReference>7.1</sr:ServiceReference><sr:ServiceReferenceVariant>', 'ERR_DUIS_STRUCTURE');
await structure('body-two-elements', 'a body holding two service elements (DisableSupply and EnableSupply)', '</sr:Body>', '<sr:EnableSupply></sr:EnableSupply></sr:Body>', 'ERR_DUIS_STRUCTURE');
await structure('body-element-other-namespace', "the body's element in another namespace", '<sr:DisableSupply></sr:DisableSupply>', '<x:DisableSupply xmlns:x="urn:example:other"></x:DisableSupply>', 'ERR_DUIS_STRUCTURE');
await structure('body-missing', 'the root holds sr:Header and no sr:Body', '<sr:Body><sr:DisableSupply></sr:DisableSupply></sr:Body>', '', 'ERR_DUIS_STRUCTURE');
await structure('root-binds-ds-elsewhere', 'the root binds the prefix ds to another namespace (the signature declares its own)', ` xmlns:sr="${SR_NS}"`, ` xmlns:ds="urn:example:other" xmlns:sr="${SR_NS}"`, 'ERR_DUIS_STRUCTURE');
await structure('text-beside-elements', 'text beside the header’s child elements', '<sr:CommandVariant>', 'x<sr:CommandVariant>', 'ERR_DUIS_MALFORMED');
await structure('nesting-too-deep', 'a body nested 40 elements deep', '<sr:DisableSupply></sr:DisableSupply>', `${'<sr:Group>'.repeat(40)}${'</sr:Group>'.repeat(40)}`, 'ERR_DUIS_MALFORMED');

// ---- signature wrapping: each refused; the comment says why
const bodyB = between(B, '<sr:Body>', '</sr:Body>');
const headerB = between(B, '<sr:Header>', '</sr:Header>');
const evilBody = '<sr:Body><sr:EnableSupply></sr:EnableSupply></sr:Body>';
bad('wrap-body-copy-appended', 'an unsigned second sr:Body (EnableSupply) inserted after the signed one, before the signature: the root must hold exactly sr:Header, sr:Body, ds:Signature', CL.wrapping, replaceOnce(B, bodyB, bodyB + evilBody), 'ERR_DUIS_STRUCTURE');
bad('wrap-body-copy-after-signature', 'an unsigned second sr:Body appended after ds:Signature: the root’s children are checked before anything else', CL.wrapping, replaceOnce(B, '</ds:Signature>', `</ds:Signature>${evilBody}`), 'ERR_DUIS_STRUCTURE');
bad('wrap-body-replaced-signed-body-in-header', 'the signed body moved into the header and an unsigned EnableSupply body put in its place', CL.wrapping, replaceOnce(replaceOnce(B, bodyB, evilBody), '</sr:Header>', `${bodyB}</sr:Header>`), 'ERR_DUIS_DIGEST_MISMATCH');
bad('wrap-signature-in-header', 'ds:Signature moved into sr:Header: it must be the root’s last child', CL.wrapping, replaceOnce(replaceOnce(B, sigB, ''), '</sr:Header>', `${sigB}</sr:Header>`), 'ERR_DUIS_SIGNATURE_PLACEMENT');
bad('wrap-body-in-wrapper', 'the signed sr:Body wrapped inside an sr:Wrapper element: the root must hold sr:Header then sr:Body', CL.wrapping, replaceOnce(B, bodyB, `<sr:Wrapper>${bodyB}</sr:Wrapper>`), 'ERR_DUIS_STRUCTURE');
bad('wrap-duplicate-header', 'a second sr:Header (another request id) before the signed one: exactly one header', CL.wrapping, replaceOnce(B, headerB, headerB.replace(String(C), String(C + 1n)) + headerB), 'ERR_DUIS_STRUCTURE');
bad('wrap-text-changed', 'the request id’s counter changed after signing: the whole document is digested', CL.wrapping, replaceOnce(B, `:${C}<`, `:${C + 1n}<`), 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
bad('wrap-root-attribute-added', 'an attribute added to the root after signing: inclusive C14N digests it', CL.wrapping, replaceOnce(B, 'schemaVersion="5.4">', 'schemaVersion="5.4" version="2">'), 'ERR_DUIS_DIGEST_MISMATCH', { jdk: 'invalid' });
bad('wrap-signed-request-in-body', "the whole signed request placed inside another, unsigned request's body: its signature is then not the root's last child", CL.wrapping, replaceOnce(withoutSig, bodyB, `<sr:Body>${B.slice(XML_DECL.length)}</sr:Body>`), 'ERR_DUIS_SIGNATURE_PLACEMENT');
bad('wrap-original-in-ds-object', 'an EnableSupply body signed by nobody, with the original signed body carried in a ds:Object of the signature: ds:Signature holds exactly SignedInfo, SignatureValue, KeyInfo', CL.wrapping, replaceOnce(replaceOnce(B, bodyB, evilBody), '</ds:KeyInfo>', `</ds:KeyInfo><ds:Object>${bodyB}</ds:Object>`), 'ERR_DUIS_SIGNATURE_STRUCTURE');
bad('wrap-comment-splits-value', 'a comment inside a signed value (7.<!---->2): canonical XML without comments gives the same digest, so the signature is good (the JDK verifier accepts it) and a parser that drops comments may read only part of the value; comments are refused', CL.wrapping, replaceOnce(B, '<sr:ServiceReference>7.2<', '<sr:ServiceReference>7.<!---->2<'), 'ERR_DUIS_COMMENT', { jdk: 'valid' });
bad('wrap-ds-element-outside-signature', 'an extra ds:Reference placed in the header: nothing of the signature namespace outside ds:Signature', CL.wrapping, (await signWithExtraHeader(`<ds:Reference xmlns:ds="${DS_NS}" URI=""></ds:Reference>`)).xml, 'ERR_DUIS_STRUCTURE');

// ---- Responses
{
  const add = (id: string, comment: string, clause: string, xml: string, result: 'valid' | 'invalid', more: Partial<Case> & { dcc?: string } = {}) => {
    const { dcc, ...rest } = more;
    responses.push({ id, comment, clause, input: { expect: 'response', xml, ...(dcc ? { dcc } : {}) }, result, ...rest });
  };
  for (const [name, bytes, what] of [
    ['disable', pre.disable, '7.2 Disable Supply (ECS43)'],
    ['enable', pre.enable, '7.1 Enable Supply (ECS42)'],
    ['arm', pre.arm, '7.3 Arm Supply (ECS44)'],
    ['firmware', pre.firmware, '11.3 Activate Firmware (CS06)'],
  ] as const) {
    const doc = responseDoc(preCommandBody(bytes));
    const signed = await signResponseDoc(doc);
    add(`valid-pre-command-${name}`, `the DCC's sr:PreCommand answer to ${what}: GBCSVersion and the GBCS pre-command in base64, signed with the DCC's role-137 certificate`, 'docs/domain.md §8 (the round trip)', signed.xml, 'valid', {
      expected: expected('response', doc, signed, { body: 'PreCommand' }),
      ...(name === 'disable' ? { dcc: DCC } : {}),
    });
  }
  const doc = responseDoc(preCommandBody(pre.disable));
  const signed = await signResponseDoc(doc);
  add('valid-pre-command-pretty-printed', 'the 7.2 PreCommand Response indented after signing', CL.c14n, pretty(signed.xml), 'valid', { expected: expected('response', doc, signed, { body: 'PreCommand' }) });
  const wrappedPayload = (() => {
    const payload = b64(pre.disable);
    return replaceOnce(signed.xml, `>${payload}<`, `>${payload.slice(0, 8)}&#13;\n${payload.slice(8)}<`);
  })();
  add('pre-command-payload-rewrapped', 'after signing, the GBCSPayload base64 broken with CR LF: unlike SignatureValue, a value inside the document is digested as written', CL.c14n, wrappedPayload, 'invalid', { errorCode: 'ERR_DUIS_DIGEST_MISMATCH' });
  add('response-signed-by-user', "a PreCommand Response signed with the User's XML-signing certificate (role 135)", CL.signer, (await signResponseDoc(doc, 'user')).xml, 'invalid', { errorCode: 'ERR_DUIS_SIGNER_ROLE' });
  add('response-signed-by-supplier-key', "a PreCommand Response signed with the User's supplier certificate (role 2)", CL.signer, (await signResponseDoc(doc, 'userSupplier')).xml, 'invalid', { errorCode: 'ERR_DUIS_SIGNER_ROLE' });
  add('response-other-dcc', "the verifier expects the DCC 90B3D51F30000003; the Response is signed by 90B3D51F30000002's certificate", CL.signer, signed.xml, 'invalid', { errorCode: 'ERR_DUIS_SIGNER_NOT_ORIGINATOR', dcc: '90B3D51F30000003' });
  add('response-request-given', 'a signed Request given where a Response is expected', CL.document, base.xml, 'invalid', { errorCode: 'ERR_DUIS_DOCUMENT_KIND' });
  add('response-unsigned', 'the PreCommand Response without its signature: verifyDuis returns only signed documents, and a pre-command the User will sign must come signed by the DCC', CL.profile, signed.xml.replace(signatureOf(signed.xml), ''), 'invalid', { errorCode: 'ERR_DUIS_SIGNATURE_COUNT' });
  add('response-tampered-payload', 'after signing, the GBCSPayload replaced by the 7.1 pre-command', CL.c14n, replaceOnce(signed.xml, `>${b64(pre.disable)}<`, `>${b64(pre.enable)}<`), 'invalid', { errorCode: 'ERR_DUIS_DIGEST_MISMATCH' });
  add('response-body-empty', 'after signing, the PreCommand removed from the body', CL.c14n, replaceOnce(signed.xml, between(signed.xml, '<sr:PreCommand>', '</sr:PreCommand>'), ''), 'invalid', { errorCode: 'ERR_DUIS_DIGEST_MISMATCH' });
}

// ---- replay: sequences on one fresh store
{
  const add = (id: string, comment: string, steps: Step[], replay: { maxAgeMs?: number; maxFutureMs?: number } = {}) => {
    const last = steps.at(-1)!;
    replays.push({ id, comment, clause: CL.replay, input: { expect: 'request', replay, sequence: steps }, result: last.result, ...(last.errorCode ? { errorCode: last.errorCode } : {}) });
  };
  const reqAt = async (counter: bigint, o: { target?: string; service?: Service } = {}) => (await sign(requestDoc(o.service ?? services.disable, { counter, ...(o.target ? { target: o.target } : {}) }))).xml;
  const spcAt = async (counter: bigint) => (await sign(await preCommandRequestDoc(counter))).xml;
  const ok = (xml: string, counter: bigint, body = 'DisableSupply'): Step => ({ xml, result: 'valid', counter: String(counter), body });
  const no = (xml: string, errorCode: string): Step => ({ xml, result: 'invalid', errorCode });
  const r1 = await reqAt(C);
  const r2 = await reqAt(C + 1000n);
  add('replay-same-request-twice', 'the same signed 7.2 request twice: the second is a replay', [ok(r1, C), no(r1, 'ERR_DUIS_REPLAYED')]);
  add('replay-older-after-newer', 'a request with counter c after one with c + 1000 from the same originator to the same device', [ok(r2, C + 1000n), no(r1, 'ERR_DUIS_REPLAYED')]);
  add('replay-equal-counter-other-service', 'a different service request (7.1) with the counter of the last one accepted', [ok(r1, C), no(await reqAt(C, { service: services.enable }), 'ERR_DUIS_REPLAYED')]);
  add('replay-newer-after-older', 'counters strictly increasing: both accepted', [ok(r1, C), ok(r2, C + 1000n)]);
  add('replay-per-target', 'the same counter to another device is another series', [ok(r1, C), ok(await reqAt(C, { target: OTHER_DEVICE }), C)]);
  const s1 = await spcAt(C);
  add('pre-command-after-its-request', 'the 7.2 request, then its signed pre-command (same id): accepted once, then refused as a replay', [ok(r1, C), ok(s1, C, 'SignedPreCommand'), no(s1, 'ERR_DUIS_REPLAYED')]);
  add('pre-command-without-request', 'a signed pre-command whose service request was never accepted', [no(s1, 'ERR_DUIS_PRECOMMAND_UNEXPECTED')]);
  add('pre-command-after-later-request', 'the signed pre-command for c after a later request c + 1000: it no longer answers the last request', [ok(r1, C), ok(r2, C + 1000n), no(s1, 'ERR_DUIS_PRECOMMAND_UNEXPECTED')]);
  add('request-after-its-pre-command', 'the 7.2 request replayed after its signed pre-command', [ok(r1, C), ok(s1, C, 'SignedPreCommand'), no(r1, 'ERR_DUIS_REPLAYED')]);
  add('replay-not-claimed-on-failure', 'a tampered copy is refused without claiming the id; the genuine request then passes', [no(replaceOnce(r1, '<sr:CommandVariant>4<', '<sr:CommandVariant>5<'), 'ERR_DUIS_DIGEST_MISMATCH'), ok(r1, C)]);
  const stale = NOW_MS - 3600_000n - 1n;
  add('stale-counter', 'a counter one millisecond older than the default hour', [no(await reqAt(stale), 'ERR_DUIS_STALE')]);
  add('counter-at-max-age', 'a counter exactly an hour old is still fresh', [ok(await reqAt(NOW_MS - 3600_000n), NOW_MS - 3600_000n)]);
  add('counter-too-far-ahead', 'a counter one millisecond beyond the default five minutes ahead', [no(await reqAt(NOW_MS + 300_001n), 'ERR_DUIS_STALE')]);
  add('counter-at-max-future', 'a counter exactly five minutes ahead is accepted', [ok(await reqAt(NOW_MS + 300_000n), NOW_MS + 300_000n)]);
  add('stale-counter-custom-window', 'maxAgeMs 30000: a counter a minute old is stale', [no(r1, 'ERR_DUIS_STALE')], { maxAgeMs: 30_000 });
}

// ---- check every case against the verifier, then write
const now = NOW;
const trust = new DuisTrust({
  certificates: Object.values(trustFile.certificates).map((h) => Uint8Array.from(Buffer.from(h, 'hex'))),
  crls: Object.values(trustFile.crls).map((h) => Uint8Array.from(Buffer.from(h, 'hex'))),
});

async function outcome(xml: string, options: VerifyDuisOptions): Promise<{ code?: string; v?: VerifiedDuis }> {
  try {
    return { v: await verifyDuis(xml, trust, options) };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? String(e) };
  }
}
function compare(e: Expected, v: VerifiedDuis): string[] {
  const got = {
    kind: v.kind,
    originator: v.originator,
    target: v.target,
    counter: String(v.counter),
    requestId: v.requestIdText,
    ...(v.serviceReference !== undefined ? { serviceReference: v.serviceReference } : {}),
    ...(v.serviceReferenceVariant !== undefined ? { serviceReferenceVariant: v.serviceReferenceVariant } : {}),
    ...(v.commandVariant !== undefined ? { commandVariant: v.commandVariant } : {}),
    body: v.body,
    signer: toHex(v.certificate.der) === trustFile.certificates[e.signer] ? e.signer : '(another certificate)',
    digest: createHash('sha256').update(v.document).digest('base64'),
  };
  return JSON.stringify(got) === JSON.stringify(e) ? [] : [`verified ${JSON.stringify(got)}`];
}

const problems: string[] = [];
for (const c of [...requests, ...responses]) {
  const input = c.input as Input;
  const got = await outcome(input.xml, { expect: input.expect, now, ...(input.maxBytes !== undefined ? { maxBytes: input.maxBytes } : {}), ...(input.dcc ? { dcc: input.dcc as never } : {}) });
  const p: string[] = [];
  if ((got.code === undefined ? 'valid' : 'invalid') !== c.result || got.code !== c.errorCode) p.push(`gives ${got.code ?? 'valid'}, the vector says ${c.errorCode ?? 'valid'}`);
  if (got.v && c.expected) p.push(...compare(c.expected, got.v));
  if (p.length > 0) (DISAGREEMENTS.has(c.id) ? console.warn : (s: string) => problems.push(s))(`case ${c.id}: ${p.join('; ')}${DISAGREEMENTS.has(c.id) ? ' (a known disagreement)' : ''}`);
}
for (const c of replays) {
  const input = c.input as { readonly replay: { readonly maxAgeMs?: number; readonly maxFutureMs?: number }; readonly sequence: readonly Step[] };
  const store = new MemoryStateStore();
  for (const [i, s] of input.sequence.entries()) {
    const got = await outcome(s.xml, { expect: 'request', now, replay: { store, ...input.replay } });
    if (got.code !== s.errorCode || (s.result === 'valid') !== (got.v !== undefined)) problems.push(`case ${c.id} step ${i}: gives ${got.code ?? 'valid'}, the vector says ${s.errorCode ?? 'valid'}`);
    if (got.v && (String(got.v.counter) !== s.counter || got.v.body !== s.body)) problems.push(`case ${c.id} step ${i}: counter ${got.v.counter} body ${got.v.body}`);
  }
  await store.close?.();
}
// The independent construction agrees with signRequest / signResponse byte for byte.
for (const { id, doc, signed } of compactValid) {
  const viaLibrary = await signRequest(canonicalDoc(doc), seededSigner(label(KEY_LABEL.user)), certs.user);
  if (viaLibrary.xml !== signed.xml) problems.push(`case ${id}: signRequest writes other bytes:\n${viaLibrary.xml}\n${signed.xml}`);
}
{
  const doc = responseDoc(preCommandBody(pre.disable));
  const viaLibrary = await signResponse(canonicalDoc(doc), seededSigner(label(KEY_LABEL.dcc)), certs.dcc);
  if (viaLibrary.xml !== (await signResponseDoc(doc)).xml) problems.push('valid-pre-command-disable: signResponse writes other bytes');
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}

const ids = [...requests, ...responses, ...replays].map((c) => c.id);
const dup = ids.find((id, i) => ids.indexOf(id) !== i);
if (dup !== undefined) throw new Error(`duplicate case id ${dup}`);

const header = (what: string, comment: string) => ({
  source: `SMKI toolkit: DUIS XML signatures, ${what} (docs/domain.md §8; W3C XML Signature, Canonical XML 1.0, Exclusive XML Canonicalization 1.0)`,
  generator: GENERATOR,
  comment,
  now: NOW.toISOString(),
  trust: trustFile,
});
const files = {
  'requests.json': {
    ...header(
      'signed Requests',
      "verifyDuis(input.xml, trust, { expect: input.expect, now, maxBytes: input.maxBytes }). Valid cases list what the verifier returns (`expected`: the request id's parts, the header's service fields, the body's element, the certificate, and the SHA-256 of the document as verified, base64). Invalid cases break exactly one rule and give exactly `errorCode`. Service bodies are illustrative: the verifier reads only the body's element name. `jdk`, where given, is what the independent JDK verifier of the profile (packages/duis/test/java/DuisXmlSig.java, with the User's certificate) says: it accepts `cdata` and `wrap-comment-splits-value`, whose signatures are good, because it does not apply the parsing rules that refuse them here.",
    ),
    cases: requests,
  },
  'responses.json': {
    ...header('signed Responses', "verifyDuis(input.xml, trust, { expect: 'response', now, dcc: input.dcc }). The DCC signs with its role-137 certificate."),
    cases: responses,
  },
  'replay.json': {
    ...header(
      'anti-replay of request ids',
      "Each case: one fresh MemoryStateStore; every step verified in order with verifyDuis(step.xml, trust, { expect: 'request', now, replay: { store, ...input.replay } }), each with its own result, code, counter and body. The case's result is its last step's.",
    ),
    cases: replays,
  },
};
const differ = writeOrCheck(OUT, files, check, ROOT);
const count = (cs: Case[]) => `${cs.filter((c) => c.result === 'valid').length} valid, ${cs.filter((c) => c.result === 'invalid').length} invalid`;
const summary = `${Object.keys(files).length} files: requests ${count(requests)}; responses ${count(responses)}; replay ${count(replays)}`;
if (check) {
  if (differ > 0) process.exit(1);
  console.log(`checked ${summary}`);
} else {
  console.log(`wrote ${summary}`);
}
