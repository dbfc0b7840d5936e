// The SMETS1 DCO envelope: CMS SignedData (RFC 5652 §5) with ECDSA P-256/SHA-256 (RFC 5753 §2.1,
// RFC 5758 §3.2) over the toolkit's DcoCountersignedCommand, built by buildDcoEnvelope and
// checked by verifyDcoEnvelope. Real keys and an SMKI test hierarchy; replay against the memory
// and SQLite state stores; OpenSSL (`openssl cms`) as a second opinion both ways. Every rule of
// the envelope profile has a case that breaks exactly that rule and expects exactly its code.
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteReader,
  createKeySigner,
  derToP1363,
  isSmkiError,
  parseEui64,
  readTlv,
  SmkiError,
  type Eui64,
  type Signer,
  type SmkiErrorCode,
} from '@smki/core';
import {
  certificateToPem,
  createHierarchy,
  createPathValidator,
  issueCrl,
  issueOrganisationCertificate,
  type SmkiCertificate,
  type SmkiHierarchy,
} from '@smki/pki';
import { MemoryStateStore, SqliteStateStore, type StateStore } from '@smki/store';
import {
  buildDcoEnvelope,
  DCO_CONTENT_TYPE_OID,
  DEFAULT_DCO_MAX_AGE_MS,
  DEFAULT_DCO_MAX_SKEW_MS,
  MAX_DCO_COMMAND_BYTES,
  MAX_DCO_ENVELOPE_BYTES,
  MAX_DCO_RULE_BYTES,
  verifyDcoEnvelope,
  type DcoDecision,
  type DcoEnvelopeInput,
  type DcoVerifyOptions,
} from '../src/smets1.js';
import { CMS_OID, decodeSignedData, decodeSigningTime, encodeOctetString, encodeOid, encodeSignedData, encodeSigningTime, type AttributeView } from '../src/internal/cms.js';
import { decodeDcoContent, encodeDcoContent, type DcoContent } from '../src/internal/cms-content.js';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n; // P-256 group order
const OTHER_CONTENT_TYPE = '1.3.6.1.4.1.32473.1.1.2';
const SHA384 = '2.16.840.1.101.3.4.2.2';
const SMIME_CAPABILITIES = '1.2.840.113549.1.9.15';

const DCO_ID = '90B3D51F30000D00';
const OTHER_DCO_ID = '90B3D51F30000D01';
const USER = parseEui64('90B3D51F30010000');
const DEVICE = parseEui64('00DB1234567890A0');
const DEVICE_2 = parseEui64('00DB1234567890A1');
/** A command with a pattern that appears nowhere else in an envelope. */
const COMMAND = new Uint8Array(48).map((_, i) => 0xa0 ^ i);

/** The tests' clock: whole seconds, a day after the hierarchy's notBefore. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const SIGNED = new Date(NOW.getTime() - 1000);
const now = () => NOW;

interface Dco {
  readonly key: KeyObject;
  readonly signer: Signer;
  readonly certificate: SmkiCertificate;
}

let h: SmkiHierarchy;
let other: SmkiHierarchy;
let dco: Dco;
let dco2: Dco;
/** A key-agreement certificate for the DCO's entity: it cannot sign envelopes. */
let dcoKa: Dco;
let dir: string;

async function issueDco(hierarchy: SmkiHierarchy, entityId: string, keyUsage: 'digitalSignature' | 'keyAgreement' = 'digitalSignature'): Promise<Dco> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer = createKeySigner(privateKey);
  const certificate = await issueOrganisationCertificate({
    issuer: hierarchy.organisationCa,
    role: 4,
    entityId,
    keyUsage,
    publicKey: signer.publicKey,
    notBefore: new Date(NOW.getTime() - 86_400_000),
  });
  return { key: privateKey, signer, certificate };
}

beforeAll(async () => {
  const notBefore = new Date(NOW.getTime() - 2 * 86_400_000);
  h = await createHierarchy({ notBefore });
  other = await createHierarchy({ notBefore });
  dco = await issueDco(h, DCO_ID);
  dco2 = await issueDco(h, OTHER_DCO_ID);
  dcoKa = await issueDco(h, DCO_ID, 'keyAgreement');
  dir = mkdtempSync(join(tmpdir(), 'smki-dco-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type InputOverrides = Omit<Partial<DcoEnvelopeInput>, 'decision'> & { decision?: Partial<DcoDecision> };

function input(overrides: InputOverrides = {}): DcoEnvelopeInput {
  return {
    command: COMMAND,
    counter: 1n,
    signingTime: SIGNED,
    ...overrides,
    decision: { outcome: 'accepted', messageCode: 0x0050, originator: USER, device: DEVICE, originatorCounter: 0x1000n, ...overrides.decision },
  };
}

function build(overrides: InputOverrides = {}, who: Dco = dco): Promise<Uint8Array> {
  return buildDcoEnvelope(input(overrides), { signer: who.signer, certificate: who.certificate });
}

function verify(bytes: Uint8Array, options: Partial<DcoVerifyOptions> = {}): ReturnType<typeof verifyDcoEnvelope> {
  return verifyDcoEnvelope(bytes, { trust: [dco.certificate], store: new MemoryStateStore(), now, ...options });
}

async function codeOf(p: Promise<unknown>): Promise<SmkiErrorCode | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (e instanceof SmkiError) return e.code;
    throw e;
  }
}

async function errorOf<C extends SmkiErrorCode>(p: Promise<unknown>, code: C): Promise<SmkiError<C>> {
  try {
    await p;
  } catch (e) {
    if (isSmkiError(e, code)) return e;
    throw e;
  }
  throw new Error(`expected ${code}, but it resolved`);
}

function content(overrides: Partial<DcoContent> = {}): DcoContent {
  return {
    command: COMMAND,
    messageCode: 0x0050,
    originator: USER,
    device: DEVICE,
    originatorCounter: 0x1000n,
    outcome: 'accepted',
    envelopeCounter: 1n,
    ...overrides,
  };
}

function defaultAttributes(eContent: Uint8Array, signingTime: Date, eContentType: string): AttributeView[] {
  return [
    { type: CMS_OID.contentType, values: [encodeOid(eContentType)] },
    { type: CMS_OID.signingTime, values: [encodeSigningTime(signingTime)] },
    { type: CMS_OID.messageDigest, values: [encodeOctetString(sha256(eContent))] },
  ];
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

interface Craft {
  /** eContent bytes (default: a valid DcoCountersignedCommand). */
  readonly eContent?: Uint8Array;
  readonly eContentType?: string;
  readonly signingTime?: Date;
  /** Rewrite the signed attributes (given the defaults). */
  readonly attributes?: (defaults: AttributeView[]) => AttributeView[];
  /** How many SignerInfos (each the same signer). */
  readonly signerCount?: number;
  /** The certificate named by the SignerInfo (default: the signer's). */
  readonly sidCertificate?: SmkiCertificate;
  /** The certificates field (default: the signer's certificate). */
  readonly certificates?: readonly SmkiCertificate[];
  readonly digestAlgorithms?: readonly string[];
  readonly digestAlgorithm?: string;
  readonly signatureAlgorithm?: string;
  /** Sign with this key instead of the signer's own. */
  readonly signingKey?: KeyObject;
}

/**
 * An envelope made with the same CMS encoder as buildDcoEnvelope but without its checks, so
 * that a test can break exactly one rule and still sign correctly.
 */
async function craft(c: Craft = {}, who: Dco = dco): Promise<Uint8Array> {
  const eContent = c.eContent ?? encodeDcoContent(content());
  const eContentType = c.eContentType ?? DCO_CONTENT_TYPE_OID;
  const attributes = defaultAttributes(eContent, c.signingTime ?? SIGNED, eContentType);
  const key = c.signingKey ?? who.key;
  const signer = {
    certificate: (c.sidCertificate ?? who.certificate).der,
    attributes: c.attributes ? c.attributes(attributes) : attributes,
    sign: async (data: Uint8Array) => new Uint8Array(nodeSign('sha256', data, key)),
    ...(c.digestAlgorithm ? { digestAlgorithm: c.digestAlgorithm } : {}),
    ...(c.signatureAlgorithm ? { signatureAlgorithm: c.signatureAlgorithm } : {}),
  };
  return encodeSignedData({
    eContentType,
    eContent,
    certificates: (c.certificates ?? [who.certificate]).map((x) => x.der),
    signers: Array.from({ length: c.signerCount ?? 1 }, () => signer),
    ...(c.digestAlgorithms ? { digestAlgorithms: c.digestAlgorithms } : {}),
  });
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** The envelope with `extra` appended inside the outer ContentInfo SEQUENCE (lengths fixed). */
function appendInsideContentInfo(env: Uint8Array, extra: number[]): Uint8Array {
  const t = readTlv(new ByteReader(env), 0x30);
  const value = [...env.subarray(t.valueStart, t.end), ...extra];
  return new Uint8Array([0x30, ...derLength(value.length), ...value]);
}

/** Offset of the SignedData version INTEGER's value octet. */
function signedDataVersionOffset(env: Uint8Array): number {
  const top = new ByteReader(env);
  const ci = readTlv(top, 0x30);
  const r = new ByteReader(env, ci.valueStart, ci.end);
  readTlv(r, 0x06);
  const explicit = readTlv(r, 0xa0);
  const sd = readTlv(new ByteReader(env, explicit.valueStart, explicit.end), 0x30);
  const version = readTlv(new ByteReader(env, sd.valueStart, sd.end), 0x02);
  return version.valueStart;
}

/** XOR one byte of `bytes` in place. */
function flip(bytes: Uint8Array, i: number, mask: number): void {
  bytes[i] = (bytes[i] as number) ^ mask;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(Buffer.from(needle));
}

function openssl(args: string[]): { ok: boolean; output: string } {
  try {
    const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true, output: out };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

let fileCount = 0;
function tmp(name: string, data: Uint8Array | string): string {
  const p = join(dir, `${++fileCount}-${name}`);
  writeFileSync(p, data);
  return p;
}

// ---------------------------------------------------------------------------------------------

describe('round trip (RFC 5652 §5, RFC 5753 §2.1)', () => {
  it('verifyDcoEnvelope returns what buildDcoEnvelope signed, and commits the counter', async () => {
    const store = new MemoryStateStore();
    const env = await build({ counter: 7n });
    const v = await verify(env, { store });
    expect(v.command).toEqual(COMMAND);
    expect(v.decision).toEqual({ outcome: 'accepted', messageCode: 0x0050, originator: USER, device: DEVICE, originatorCounter: 0x1000n });
    expect(v.counter).toBe(7n);
    expect(v.signingTime).toEqual(SIGNED);
    expect(v.dco).toBe(DCO_ID);
    expect(v.certificate.der).toEqual(dco.certificate.der);
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBe(7n);
  });

  it('carries an anomaly with its rule, and extreme values of every field', async () => {
    const big = new Uint8Array(MAX_DCO_COMMAND_BYTES).map((_, i) => i & 0xff);
    const rule = 'é'.repeat(MAX_DCO_RULE_BYTES / 2);
    const env = await build({
      command: big,
      counter: (1n << 64n) - 1n,
      decision: { outcome: 'anomaly', rule, messageCode: 0xffff, originatorCounter: (1n << 64n) - 1n },
    });
    expect(env.length).toBeLessThanOrEqual(MAX_DCO_ENVELOPE_BYTES);
    const v = await verify(env);
    expect(v.command).toEqual(big);
    expect(v.decision).toEqual({ outcome: 'anomaly', rule, messageCode: 0xffff, originator: USER, device: DEVICE, originatorCounter: (1n << 64n) - 1n });
    expect(v.counter).toBe((1n << 64n) - 1n);
  });

  it('signing time is carried to the whole second', async () => {
    const env = await build({ signingTime: new Date(SIGNED.getTime() + 999) });
    expect((await verify(env)).signingTime).toEqual(SIGNED);
  });

  it('has the profile: SignedData v3, sha256, the DCO content type, one certificate, one SignerInfo v1 with the three attributes in DER order', async () => {
    const env = await build();
    const sd = await decodeSignedData(env);
    expect(sd.contentType).toBe(CMS_OID.signedData);
    expect(sd.version).toBe(3);
    expect(sd.digestAlgorithms).toEqual([{ oid: CMS_OID.sha256, params: 'absent' }]);
    expect(sd.eContentType).toBe(DCO_CONTENT_TYPE_OID);
    expect(sd.eContentForm).toBe('primitive');
    expect(sd.eContent).toEqual(encodeDcoContent(content()));
    expect(sd.certificates).toEqual([dco.certificate.der]);
    expect(sd.crls).toBe(false);
    expect(sd.reencodes).toBe(true);
    expect(sd.signerInfos).toHaveLength(1);
    const si = sd.signerInfos[0]!;
    expect(si.version).toBe(1);
    expect(si.sid).toEqual({ issuer: dco.certificate.issuer.der, serialNumber: dco.certificate.details.serialBytes });
    expect(si.digestAlgorithm).toEqual({ oid: CMS_OID.sha256, params: 'absent' });
    expect(si.signatureAlgorithm).toEqual({ oid: CMS_OID.ecdsaWithSha256, params: 'absent' });
    expect(si.unsignedAttributes).toBe(false);
    // DER SET OF order (X.690 §11.6): content-type (…9.3) < signing-time (…9.5, 28 bytes) < message-digest (…9.4, 47 bytes)
    expect(si.signedAttributes!.attributes.map((a) => a.type)).toEqual([CMS_OID.contentType, CMS_OID.signingTime, CMS_OID.messageDigest]);
    expect(si.signedAttributes!.der[0]).toBe(0x31);
    // The signature is a DER ECDSA-Sig-Value (RFC 5753 §2.1.1), not raw r‖s.
    expect(derToP1363(si.signature!)).toHaveLength(64);
  });

  it('the eContent is DER a strict reader accepts, at the edges of every range', () => {
    const cases: DcoContent[] = [
      content({ command: new Uint8Array([0]), messageCode: 0, originatorCounter: 0n, envelopeCounter: 0n }),
      content({ messageCode: 0x7f, originatorCounter: 0x7fn, envelopeCounter: 0x80n }),
      content({ messageCode: 0x80, originatorCounter: 0xffn, envelopeCounter: 1n << 63n }),
      content({ messageCode: 0xffff, originatorCounter: (1n << 64n) - 1n, envelopeCounter: (1n << 64n) - 1n, outcome: 'anomaly', rule: 'r' }),
      content({ command: new Uint8Array(MAX_DCO_COMMAND_BYTES), rule: 'x'.repeat(MAX_DCO_RULE_BYTES) }),
    ];
    for (const c of cases) {
      const der = encodeDcoContent(c);
      expect(decodeDcoContent(der)).toEqual(c);
      expect(encodeDcoContent(decodeDcoContent(der))).toEqual(der);
    }
  });

  it('signing-time is UTCTime up to 2049 and GeneralizedTime from 2050 (RFC 5652 §11.3), read back exactly', () => {
    const cases: [string, number, string][] = [
      ['1950-01-01T00:00:00Z', 0x17, '500101000000Z'],
      ['2049-12-31T23:59:59Z', 0x17, '491231235959Z'],
      ['2050-01-01T00:00:00Z', 0x18, '20500101000000Z'],
      ['9999-12-31T23:59:59Z', 0x18, '99991231235959Z'],
    ];
    for (const [iso, tag, text] of cases) {
      const der = encodeSigningTime(new Date(iso));
      expect([der[0], Buffer.from(der.subarray(2)).toString('latin1')]).toEqual([tag, text]);
      expect(decodeSigningTime(der)).toEqual(new Date(iso));
    }
  });

  it('the same envelope under the SQLite store: committed durably, refused after reopening', async () => {
    const path = join(dir, 'adapter.db');
    const env5 = await build({ counter: 5n });
    let store: StateStore = await SqliteStateStore.open({ path });
    try {
      expect((await verify(env5, { store })).counter).toBe(5n);
    } finally {
      await store.close();
    }
    store = await SqliteStateStore.open({ path });
    try {
      const e = await errorOf(verify(env5, { store }), 'ERR_DCO_REPLAYED');
      expect(e.context).toEqual({ dco: DCO_ID, device: DEVICE, counter: 5n, last: 5n });
      expect((await verify(await build({ counter: 6n }), { store })).counter).toBe(6n);
      expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBe(6n);
    } finally {
      await store.close();
    }
  });

  it('an HSM-style Signer (a function over node:crypto, no KeyObject handed over) signs; high-S signatures verify', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const plain = createKeySigner(privateKey);
    let calls = 0;
    const highS: Signer = {
      publicKey: plain.publicKey,
      async sign(message) {
        calls++;
        const sig = new Uint8Array(nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
        const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`);
        const high = s > N / 2n ? s : N - s; // always the high-S twin
        sig.set(Buffer.from(high.toString(16).padStart(64, '0'), 'hex'), 32);
        return sig;
      },
    };
    const certificate = await issueOrganisationCertificate({ issuer: h.organisationCa, role: 4, entityId: '90B3D51F30000D02', keyUsage: 'digitalSignature', publicKey: plain.publicKey, notBefore: new Date(NOW.getTime() - 86_400_000) });
    const env = await buildDcoEnvelope(input(), { signer: highS, certificate });
    expect(calls).toBe(1);
    const sig = derToP1363((await decodeSignedData(env)).signerInfos[0]!.signature!);
    expect(BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`) > N / 2n).toBe(true);
    expect((await verify(env, { trust: [certificate] })).dco).toBe('90B3D51F30000D02');
  });

  it('accepts DER certificate bytes as the build certificate', async () => {
    const env = await buildDcoEnvelope(input(), { signer: dco.signer, certificate: dco.certificate.der });
    expect((await verify(env)).dco).toBe(DCO_ID);
  });
});

describe('trust: pinned certificates, a callback, a path validator (RFC 5280 §6.1)', () => {
  it('a callback that accepts the DCO', async () => {
    const seen: string[] = [];
    const v = await verify(await build(), { trust: { accept: (c) => (seen.push(c.serialNumber), c.entityId === DCO_ID) } });
    expect(v.dco).toBe(DCO_ID);
    expect(seen).toEqual([dco.certificate.serialNumber]);
  });

  it('a callback that refuses: ERR_DCO_SIGNER_UNKNOWN', async () => {
    expect(await codeOf(verify(await build(), { trust: { accept: async () => false } }))).toBe('ERR_DCO_SIGNER_UNKNOWN');
  });

  it('pinned and callback together must both accept', async () => {
    expect(await codeOf(verify(await build(), { trust: { certificates: [dco.certificate], accept: () => false } }))).toBe('ERR_DCO_SIGNER_UNKNOWN');
    expect(await codeOf(verify(await build(), { trust: { certificates: [dco2.certificate], accept: () => true } }))).toBe('ERR_DCO_SIGNER_UNKNOWN');
  });

  it('with a path validator over the right hierarchy', async () => {
    const pathValidator = createPathValidator({ anchors: [h.root.certificate], intermediates: [h.organisationCa.certificate] });
    expect((await verify(await build(), { trust: { certificates: [dco.certificate], pathValidator } })).dco).toBe(DCO_ID);
  });

  it('with a path validator over another hierarchy: ERR_DCO_SIGNER_PATH_INVALID', async () => {
    const pathValidator = createPathValidator({ anchors: [other.root.certificate], intermediates: [other.organisationCa.certificate] });
    const e = await errorOf(verify(await build(), { trust: { certificates: [dco.certificate], pathValidator } }), 'ERR_DCO_SIGNER_PATH_INVALID');
    // Same CA names in both test hierarchies: the issuer is found by name, and its key is not the one.
    expect(e.context.findings.length).toBeGreaterThan(0);
    expect(e.context.findings.every((c) => c.startsWith('ERR_CHAIN_'))).toBe(true);
  });

  it('a revoked DCO certificate (the organisation CA CRL lists it): ERR_DCO_SIGNER_PATH_INVALID with ERR_REVOKED', async () => {
    const window = { thisUpdate: new Date(NOW.getTime() - 3_600_000), nextUpdate: new Date(NOW.getTime() + 3_600_000) };
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl', revoked: [{ serialNumber: dco.certificate, revocationDate: window.thisUpdate }], ...window });
    const arl = await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl', ...window });
    const pathValidator = createPathValidator({ anchors: [h.root.certificate], intermediates: [h.organisationCa.certificate], crls: [crl, arl], requireRevocation: true });
    const store = new MemoryStateStore();
    const e = await errorOf(verify(await build(), { trust: { certificates: [dco.certificate], pathValidator }, store }), 'ERR_DCO_SIGNER_PATH_INVALID');
    expect(e.context.findings).toContain('ERR_REVOKED');
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBeUndefined();
  });
});

describe('OpenSSL agrees (openssl cms, RFC 5652)', () => {
  it('openssl cms -verify -noverify accepts the envelope and outputs exactly the eContent', async () => {
    const env = await build({ decision: { outcome: 'anomaly', rule: 'burst' } });
    const f = tmp('env.der', env);
    const out = join(dir, `${++fileCount}-content`);
    const r = openssl(['cms', '-verify', '-inform', 'DER', '-noverify', '-binary', '-in', f, '-out', out]);
    expect(r.ok, r.output).toBe(true);
    expect(new Uint8Array(readFileSync(out))).toEqual(encodeDcoContent(content({ outcome: 'anomaly', rule: 'burst' })));
  });

  it('openssl cms -verify with the chain (root and organisation CA as CAfile) accepts it; with another hierarchy it refuses', async () => {
    // OpenSSL 3.0's cms -verify takes no -untrusted; -certfile certificates are not used to build the chain.
    const env = tmp('env.der', await build());
    const chain = (hierarchy: SmkiHierarchy) => tmp('chain.pem', certificateToPem(hierarchy.organisationCa.certificate) + certificateToPem(hierarchy.root.certificate));
    const args = (hierarchy: SmkiHierarchy) => ['cms', '-verify', '-inform', 'DER', '-binary', '-in', env, '-out', join(dir, `${++fileCount}-content`), '-CAfile', chain(hierarchy), '-purpose', 'any'];
    const ours = openssl(args(h));
    expect(ours.ok, ours.output).toBe(true);
    const theirs = openssl(args(other));
    expect(theirs.ok, theirs.output).toBe(false);
  });

  it('openssl cms -verify refuses a tampered eContent', async () => {
    const env = await build();
    const i = indexOf(env, COMMAND);
    flip(env, i + 3, 0x01);
    const r = openssl(['cms', '-verify', '-inform', 'DER', '-noverify', '-binary', '-in', tmp('env.der', env), '-out', join(dir, 'x')]);
    expect(r.ok).toBe(false);
  });

  /** SignedData made by `openssl cms -sign` over our eContent with the DCO's key and certificate. */
  function opensslSign(eContent: Uint8Array, extra: string[] = []): Uint8Array {
    const out = join(dir, `${++fileCount}-openssl.der`);
    const r = openssl([
      'cms', '-sign', '-binary', '-md', 'sha256', '-outform', 'DER',
      '-signer', tmp('dco.pem', certificateToPem(dco.certificate)),
      '-inkey', tmp('dco.key', dco.key.export({ format: 'pem', type: 'pkcs8' }) as string),
      '-econtent_type', DCO_CONTENT_TYPE_OID,
      '-in', tmp('content', eContent), '-out', out, ...extra,
    ]);
    expect(r.ok, r.output).toBe(true);
    return new Uint8Array(readFileSync(out));
  }

  it('verifyDcoEnvelope accepts SignedData made by openssl cms -sign -nodetach -nosmimecap over the eContent', async () => {
    const eContent = encodeDcoContent(content({ envelopeCounter: 42n, outcome: 'anomaly', rule: 'threshold' }));
    const env = opensslSign(eContent, ['-nodetach', '-nosmimecap']);
    const v = await verify(env, { now: () => new Date() });
    expect(v.counter).toBe(42n);
    expect(v.decision.rule).toBe('threshold');
    expect(v.command).toEqual(COMMAND);
  });

  it('openssl with its default SMIMECapabilities attribute: ERR_DCO_SIGNED_ATTRIBUTES (not allowed)', async () => {
    const env = opensslSign(encodeDcoContent(content()), ['-nodetach']);
    const e = await errorOf(verify(env, { now: () => new Date() }), 'ERR_DCO_SIGNED_ATTRIBUTES');
    expect(e.context).toEqual({ attribute: SMIME_CAPABILITIES, problem: 'not-allowed' });
  });

  it('openssl -noattr (no signed attributes): ERR_DCO_SIGNED_ATTRIBUTES (missing)', async () => {
    const env = opensslSign(encodeDcoContent(content()), ['-nodetach', '-noattr']);
    const e = await errorOf(verify(env, { now: () => new Date() }), 'ERR_DCO_SIGNED_ATTRIBUTES');
    expect(e.context.problem).toBe('missing');
  });

  it('openssl detached signature (no eContent): ERR_DCO_MALFORMED', async () => {
    const env = opensslSign(encodeDcoContent(content()), ['-nosmimecap']);
    const e = await errorOf(verify(env, { now: () => new Date() }), 'ERR_DCO_MALFORMED');
    expect(e.context.detail).toMatch(/detached/);
  });
});

describe('each rule broken alone gives its own code; nothing is committed', () => {
  /** Verify against a fresh store, expect `code`, and check the counter did not move. */
  async function rejects(env: Uint8Array, code: SmkiErrorCode, options: Partial<DcoVerifyOptions> = {}): Promise<void> {
    const store = new MemoryStateStore();
    expect(await codeOf(verify(env, { store, ...options }))).toBe(code);
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBeUndefined();
  }

  it('the crafted baseline is accepted (so each case below breaks only its rule)', async () => {
    expect((await verify(await craft())).counter).toBe(1n);
  });

  it('a tampered eContent byte: ERR_DCO_DIGEST_MISMATCH', async () => {
    const env = await build();
    flip(env, indexOf(env, COMMAND) + 5, 0x40);
    await rejects(env, 'ERR_DCO_DIGEST_MISMATCH');
  });

  it('a tampered signature byte: ERR_DCO_SIGNATURE_INVALID', async () => {
    const env = await build();
    flip(env, env.length - 1, 0x01); // the last octet of s
    await rejects(env, 'ERR_DCO_SIGNATURE_INVALID');
  });

  it('a tampered signed attribute (the signing time): ERR_DCO_SIGNATURE_INVALID', async () => {
    const env = await build();
    const at = indexOf(env, encodeSigningTime(SIGNED));
    env[at + 13] = env[at + 13] === 0x30 ? 0x31 : 0x30; // the last digit of the seconds
    await rejects(env, 'ERR_DCO_SIGNATURE_INVALID');
  });

  it('signed by another key under the DCO certificate: ERR_DCO_SIGNATURE_INVALID', async () => {
    await rejects(await craft({ signingKey: dco2.key }), 'ERR_DCO_SIGNATURE_INVALID');
  });

  it('signed by another DCO (its own certificate, not the one trusted): ERR_DCO_SIGNER_UNKNOWN', async () => {
    await rejects(await build({}, dco2), 'ERR_DCO_SIGNER_UNKNOWN');
  });

  it('a DCO certificate from another hierarchy with the same entity: ERR_DCO_SIGNER_UNKNOWN', async () => {
    const impostor = await issueDco(other, DCO_ID);
    await rejects(await build({}, impostor), 'ERR_DCO_SIGNER_UNKNOWN');
  });

  it('the SignerInfo names another certificate than the one carried: ERR_DCO_SIGNER_UNKNOWN', async () => {
    await rejects(await craft({ sidCertificate: dco2.certificate }), 'ERR_DCO_SIGNER_UNKNOWN');
  });

  it('the carried certificate is the DCO key-agreement certificate (no digitalSignature): ERR_DCO_SIGNER_UNUSABLE', async () => {
    const env = await craft({}, dcoKa);
    await rejects(env, 'ERR_DCO_SIGNER_UNUSABLE', { trust: [dco.certificate, dcoKa.certificate] });
  });

  it('the DCO certificate has expired, or is not yet valid, at the verifier clock: ERR_DCO_SIGNER_UNUSABLE', async () => {
    const after = new Date(dco.certificate.notAfter.getTime() + 1000);
    await rejects(await craft({ signingTime: after }), 'ERR_DCO_SIGNER_UNUSABLE', { now: () => after });
    const before = new Date(dco.certificate.notBefore.getTime() - 1000);
    await rejects(await craft({ signingTime: before }), 'ERR_DCO_SIGNER_UNUSABLE', { now: () => before });
  });

  it('two SignerInfos, or none: ERR_DCO_SIGNER_COUNT', async () => {
    const e = await errorOf(verify(await craft({ signerCount: 2 })), 'ERR_DCO_SIGNER_COUNT');
    expect(e.context.signerInfos).toBe(2);
    await rejects(await craft({ signerCount: 2 }), 'ERR_DCO_SIGNER_COUNT');
    await rejects(await craft({ signerCount: 0 }), 'ERR_DCO_SIGNER_COUNT');
  });

  it.each([
    ['signing-time', CMS_OID.signingTime],
    ['message-digest', CMS_OID.messageDigest],
    ['content-type', CMS_OID.contentType],
  ])('a missing %s attribute: ERR_DCO_SIGNED_ATTRIBUTES (missing)', async (_name, oid) => {
    const env = await craft({ attributes: (a) => a.filter((x) => x.type !== oid) });
    await rejects(env, 'ERR_DCO_SIGNED_ATTRIBUTES');
    expect((await errorOf(verify(env), 'ERR_DCO_SIGNED_ATTRIBUTES')).context).toEqual({ attribute: oid, problem: 'missing' });
  });

  it('the signing-time attribute twice: ERR_DCO_SIGNED_ATTRIBUTES (duplicate)', async () => {
    const env = await craft({ attributes: (a) => [...a, { type: CMS_OID.signingTime, values: [encodeSigningTime(new Date(SIGNED.getTime() - 1000))] }] });
    await rejects(env, 'ERR_DCO_SIGNED_ATTRIBUTES');
    expect((await errorOf(verify(env), 'ERR_DCO_SIGNED_ATTRIBUTES')).context).toEqual({ attribute: CMS_OID.signingTime, problem: 'duplicate' });
  });

  it('two values in the signing-time attribute: ERR_DCO_SIGNED_ATTRIBUTES (not-single-valued)', async () => {
    const env = await craft({ attributes: (a) => a.map((x) => (x.type === CMS_OID.signingTime ? { ...x, values: [...x.values, encodeSigningTime(SIGNED)] } : x)) });
    expect((await errorOf(verify(env), 'ERR_DCO_SIGNED_ATTRIBUTES')).context).toEqual({ attribute: CMS_OID.signingTime, problem: 'not-single-valued' });
  });

  it.each([
    ['GeneralizedTime for a year UTCTime must carry (RFC 5652 §11.3)', [0x18, 15, ...Buffer.from('20301231235959Z')]],
    ['UTCTime without seconds', [0x17, 11, ...Buffer.from('3012312359Z')]],
    ['UTCTime with an offset instead of Z', [0x17, 17, ...Buffer.from('301231235959+0100')]],
    ['an impossible date', [0x17, 13, ...Buffer.from('300230120000Z')]],
    ['GeneralizedTime with fractional seconds', [0x18, 17, ...Buffer.from('20501231235959.5Z')]],
    ['an OCTET STRING', [0x04, 1, 0]],
  ])('a signing-time that is %s: ERR_DCO_SIGNED_ATTRIBUTES (malformed)', async (_name, value) => {
    const env = await craft({ attributes: (a) => a.map((x) => (x.type === CMS_OID.signingTime ? { ...x, values: [new Uint8Array(value)] } : x)) });
    expect((await errorOf(verify(env), 'ERR_DCO_SIGNED_ATTRIBUTES')).context).toEqual({ attribute: CMS_OID.signingTime, problem: 'malformed' });
  });

  it('a message-digest that is not 32 octets, a content-type that is not an OID: ERR_DCO_SIGNED_ATTRIBUTES (malformed)', async () => {
    const md = await craft({ attributes: (a) => a.map((x) => (x.type === CMS_OID.messageDigest ? { ...x, values: [encodeOctetString(new Uint8Array(31))] } : x)) });
    expect((await errorOf(verify(md), 'ERR_DCO_SIGNED_ATTRIBUTES')).context).toEqual({ attribute: CMS_OID.messageDigest, problem: 'malformed' });
    const ct = await craft({ attributes: (a) => a.map((x) => (x.type === CMS_OID.contentType ? { ...x, values: [encodeOctetString(new Uint8Array(3))] } : x)) });
    expect((await errorOf(verify(ct), 'ERR_DCO_SIGNED_ATTRIBUTES')).context).toEqual({ attribute: CMS_OID.contentType, problem: 'malformed' });
  });

  it('an extra signed attribute: ERR_DCO_SIGNED_ATTRIBUTES (not-allowed)', async () => {
    const env = await craft({ attributes: (a) => [...a, { type: SMIME_CAPABILITIES, values: [new Uint8Array([0x30, 0])] }] });
    await rejects(env, 'ERR_DCO_SIGNED_ATTRIBUTES');
  });

  it('a wrong eContentType (its content-type attribute agreeing): ERR_DCO_CONTENT_TYPE', async () => {
    const env = await craft({ eContentType: OTHER_CONTENT_TYPE });
    await rejects(env, 'ERR_DCO_CONTENT_TYPE');
    expect((await errorOf(verify(env), 'ERR_DCO_CONTENT_TYPE')).context).toEqual({ where: 'eContentType', found: OTHER_CONTENT_TYPE, expected: DCO_CONTENT_TYPE_OID });
  });

  it('a content-type attribute that differs from the eContentType (RFC 5652 §11.1): ERR_DCO_CONTENT_TYPE', async () => {
    const env = await craft({ attributes: (a) => a.map((x) => (x.type === CMS_OID.contentType ? { ...x, values: [encodeOid(OTHER_CONTENT_TYPE)] } : x)) });
    expect((await errorOf(verify(env), 'ERR_DCO_CONTENT_TYPE')).context).toEqual({ where: 'contentTypeAttribute', found: OTHER_CONTENT_TYPE, expected: DCO_CONTENT_TYPE_OID });
  });

  it('a SignerInfo digestAlgorithm other than SHA-256: ERR_DCO_ALGORITHM_UNSUPPORTED', async () => {
    const e = await errorOf(verify(await craft({ digestAlgorithm: SHA384 })), 'ERR_DCO_ALGORITHM_UNSUPPORTED');
    expect(e.context).toMatchObject({ field: 'digestAlgorithm', oid: SHA384 });
  });

  it('digestAlgorithms that is not SHA-256 alone: ERR_DCO_ALGORITHM_UNSUPPORTED', async () => {
    for (const digestAlgorithms of [[CMS_OID.sha256, SHA384], [SHA384], []]) {
      const e = await errorOf(verify(await craft({ digestAlgorithms })), 'ERR_DCO_ALGORITHM_UNSUPPORTED');
      expect(e.context.field).toBe('digestAlgorithms');
    }
  });

  it('a signatureAlgorithm other than ecdsa-with-SHA256 (id-ecPublicKey): ERR_DCO_ALGORITHM_UNSUPPORTED', async () => {
    const e = await errorOf(verify(await craft({ signatureAlgorithm: '1.2.840.10045.2.1' })), 'ERR_DCO_ALGORITHM_UNSUPPORTED');
    expect(e.context).toMatchObject({ field: 'signatureAlgorithm', oid: '1.2.840.10045.2.1' });
  });

  /** CMSAlgorithmProtection ::= SEQUENCE { digestAlgorithm, signatureAlgorithm [1] IMPLICIT } (RFC 6211 §2). */
  function algorithmProtection(digest: string, signature: string): Uint8Array {
    const oid = (o: string) => [...encodeOid(o)];
    const d = [0x30, oid(digest).length, ...oid(digest)];
    const s = [0xa1, oid(signature).length, ...oid(signature)];
    return new Uint8Array([0x30, d.length + s.length, ...d, ...s]);
  }

  it('an RFC 6211 CMSAlgorithmProtection naming the same algorithms is accepted', async () => {
    const env = await craft({ attributes: (a) => [...a, { type: CMS_OID.cmsAlgorithmProtection, values: [algorithmProtection(CMS_OID.sha256, CMS_OID.ecdsaWithSha256)] }] });
    expect((await verify(env)).counter).toBe(1n);
  });

  it('an RFC 6211 CMSAlgorithmProtection naming other algorithms: ERR_DCO_ALGORITHM_UNSUPPORTED', async () => {
    const env = await craft({ attributes: (a) => [...a, { type: CMS_OID.cmsAlgorithmProtection, values: [algorithmProtection(SHA384, CMS_OID.ecdsaWithSha256)] }] });
    expect((await errorOf(verify(env), 'ERR_DCO_ALGORITHM_UNSUPPORTED')).context.field).toBe('cmsAlgorithmProtection');
  });

  it('a signing time older than maxAgeMs: ERR_DCO_STALE (past); exactly maxAgeMs is accepted', async () => {
    const at = new Date(SIGNED.getTime() + DEFAULT_DCO_MAX_AGE_MS);
    expect((await verify(await build(), { now: () => at })).counter).toBe(1n);
    const late = new Date(at.getTime() + 1);
    const e = await errorOf(verify(await build(), { now: () => late }), 'ERR_DCO_STALE');
    expect(e.context).toEqual({ signingTime: SIGNED, now: late, direction: 'past', limitMs: DEFAULT_DCO_MAX_AGE_MS });
    await rejects(await build(), 'ERR_DCO_STALE', { now: () => late });
  });

  it('a signing time further ahead than maxSkewMs: ERR_DCO_STALE (future); exactly maxSkewMs is accepted', async () => {
    const ahead = new Date(NOW.getTime() + DEFAULT_DCO_MAX_SKEW_MS);
    expect((await verify(await build({ signingTime: ahead }))).counter).toBe(1n);
    const tooFar = new Date(ahead.getTime() + 1000);
    const e = await errorOf(verify(await build({ signingTime: tooFar })), 'ERR_DCO_STALE');
    expect(e.context).toEqual({ signingTime: tooFar, now: NOW, direction: 'future', limitMs: DEFAULT_DCO_MAX_SKEW_MS });
    await rejects(await build({ signingTime: tooFar }), 'ERR_DCO_STALE');
  });

  it('maxAgeMs and maxSkewMs can be set', async () => {
    expect(await codeOf(verify(await build(), { maxAgeMs: 999 }))).toBe('ERR_DCO_STALE');
    expect(await codeOf(verify(await build({ signingTime: new Date(NOW.getTime() + 1000) }), { maxSkewMs: 0 }))).toBe('ERR_DCO_STALE');
    expect(await codeOf(verify(await build({ signingTime: NOW }), { maxSkewMs: 0, maxAgeMs: 0 }))).toBe('resolved');
  });
});

describe('anti-replay: the envelope counter per (DCO, device)', () => {
  it('an equal or older counter: ERR_DCO_REPLAYED with the last accepted; a greater one passes', async () => {
    const store = new MemoryStateStore();
    await verify(await build({ counter: 5n }), { store });
    for (const counter of [5n, 4n, 0n]) {
      const e = await errorOf(verify(await build({ counter }), { store }), 'ERR_DCO_REPLAYED');
      expect(e.context).toEqual({ dco: DCO_ID, device: DEVICE, counter, last: 5n });
    }
    expect((await verify(await build({ counter: 6n }), { store })).counter).toBe(6n);
  });

  it('the same envelope twice: ERR_DCO_REPLAYED', async () => {
    const store = new MemoryStateStore();
    const env = await build();
    await verify(env, { store });
    expect(await codeOf(verify(env, { store }))).toBe('ERR_DCO_REPLAYED');
  });

  it('a rejected envelope moves no counter', async () => {
    const store = new MemoryStateStore();
    const dcoId = parseEui64(DCO_ID);
    await verify(await build({ counter: 5n }), { store });
    const badSignature = await build({ counter: 10n });
    flip(badSignature, badSignature.length - 1, 1);
    expect(await codeOf(verify(badSignature, { store }))).toBe('ERR_DCO_SIGNATURE_INVALID');
    expect(await codeOf(verify(await build({ counter: 10n }), { store, now: () => new Date(NOW.getTime() + DEFAULT_DCO_MAX_AGE_MS + 5000) }))).toBe('ERR_DCO_STALE');
    expect(await codeOf(verify(await build({ counter: 10n }, dco2), { store }))).toBe('ERR_DCO_SIGNER_UNKNOWN');
    expect(await codeOf(verify(await craft({ eContent: encodeDcoContent(content({ envelopeCounter: 10n })), eContentType: OTHER_CONTENT_TYPE }), { store }))).toBe('ERR_DCO_CONTENT_TYPE');
    expect(await store.lastCounter(dcoId, DEVICE)).toBe(5n);
    expect((await verify(await build({ counter: 6n }), { store })).counter).toBe(6n);
  });

  it('counters are kept per device and per DCO', async () => {
    const store = new MemoryStateStore();
    const trust = [dco.certificate, dco2.certificate];
    await verify(await build({ counter: 9n }), { store, trust });
    expect((await verify(await build({ counter: 9n, decision: { device: DEVICE_2 } }), { store, trust })).counter).toBe(9n);
    expect((await verify(await build({ counter: 9n }, dco2), { store, trust })).dco).toBe(OTHER_DCO_ID);
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBe(9n);
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE_2)).toBe(9n);
    expect(await store.lastCounter(parseEui64(OTHER_DCO_ID), DEVICE)).toBe(9n);
    // The User's own counter namespace is untouched: the DCO counts under its own EUI-64.
    expect(await store.lastCounter(USER, DEVICE)).toBeUndefined();
  });
});

describe('bounded parsing: malformed, truncated and oversized input (ERR_DCO_MALFORMED)', () => {
  it('every truncation of a valid envelope', async () => {
    const env = await build();
    for (const n of [0, 1, 2, 4, 20, 100, env.length >> 1, env.length - 2, env.length - 1]) {
      expect(await codeOf(verify(env.subarray(0, n)))).toBe('ERR_DCO_MALFORMED');
    }
  });

  it('one byte over MAX_DCO_ENVELOPE_BYTES is refused before parsing', async () => {
    const big = new Uint8Array(MAX_DCO_ENVELOPE_BYTES + 1); // zeros: would be a DER error if it were parsed
    const e = await errorOf(verify(big), 'ERR_DCO_MALFORMED');
    expect(e.context.detail).toMatch(/over the \d+-byte bound/);
    expect(e.cause).toBeUndefined();
  });

  it('a byte after the envelope, BER indefinite length, a non-Uint8Array', async () => {
    const env = await build();
    expect(await codeOf(verify(new Uint8Array([...env, 0])))).toBe('ERR_DCO_MALFORMED');
    const t = readTlv(new ByteReader(env), 0x30);
    const indefinite = new Uint8Array([0x30, 0x80, ...env.subarray(t.valueStart), 0, 0]);
    expect(await codeOf(verify(indefinite))).toBe('ERR_DCO_MALFORMED');
    expect(await codeOf(verify('30' as unknown as Uint8Array))).toBe('ERR_DCO_MALFORMED');
  });

  it('a field PKI.js would skip (an element after the ContentInfo content)', async () => {
    const env = appendInsideContentInfo(await build(), [0x05, 0x00]);
    const e = await errorOf(verify(env), 'ERR_DCO_MALFORMED');
    expect(e.context.detail).toMatch(/re-encode/);
  });

  it('a ContentInfo that is not SignedData, a SignedData version other than 3', async () => {
    const env = await build();
    const data = new Uint8Array(env);
    data.set(encodeOid(CMS_OID.data), 4); // same length as id-signedData
    expect((await errorOf(verify(data), 'ERR_DCO_MALFORMED')).context.detail).toMatch(/not id-signedData/);
    const v1 = new Uint8Array(env);
    v1[signedDataVersionOffset(v1)] = 1;
    expect((await errorOf(verify(v1), 'ERR_DCO_MALFORMED')).context.detail).toMatch(/version 1/);
  });

  it('two certificates, or none', async () => {
    expect(await codeOf(verify(await craft({ certificates: [dco.certificate, dco2.certificate] })))).toBe('ERR_DCO_MALFORMED');
    expect(await codeOf(verify(await craft({ certificates: [] })))).toBe('ERR_DCO_MALFORMED');
  });

  // Built from the fields, so that each case breaks one thing.
  const field = {
    int: (v: number[]) => [0x02, v.length, ...v],
    oct: (v: Uint8Array | number[]) => [0x04, ...derLength(v.length), ...v],
    enm: (v: number) => [0x0a, 1, v],
    utf8: (v: number[]) => [0x0c, v.length, ...v],
  };
  function seq(parts: number[][]): Uint8Array {
    const body = parts.flat();
    return new Uint8Array([0x30, ...derLength(body.length), ...body]);
  }
  const user = [...Buffer.from(USER, 'hex')];
  const device = [...Buffer.from(DEVICE, 'hex')];
  const fieldsOf = (o: Partial<Record<'version' | 'command' | 'messageCode' | 'originator' | 'device' | 'originatorCounter' | 'outcome' | 'envelopeCounter', number[]>> & { tail?: number[][] } = {}) => [
    o.version ?? field.int([1]),
    o.command ?? field.oct([0xdf, 0x09]),
    o.messageCode ?? field.int([0x50]),
    o.originator ?? field.oct(user),
    o.device ?? field.oct(device),
    o.originatorCounter ?? field.int([0x10, 0x00]),
    o.outcome ?? field.enm(0),
    o.envelopeCounter ?? field.int([1]),
    ...(o.tail ?? []),
  ];
  const eContentCases: [string, Uint8Array][] = [
    ['version 2', seq(fieldsOf({ version: field.int([2]) }))],
    ['an empty command', seq(fieldsOf({ command: field.oct([]) }))],
    ['a command of 64 KiB + 1', seq(fieldsOf({ command: field.oct(new Uint8Array(MAX_DCO_COMMAND_BYTES + 1)) }))],
    ['a 7-byte originator', seq(fieldsOf({ originator: field.oct(user.slice(1)) }))],
    ['a 9-byte device', seq(fieldsOf({ device: field.oct([...device, 0]) }))],
    ['a messageCode over 0xFFFF', seq(fieldsOf({ messageCode: field.int([1, 0, 0]) }))],
    ['a negative originatorCounter', seq(fieldsOf({ originatorCounter: field.int([0xff]) }))],
    ['an envelopeCounter of 2^64', seq(fieldsOf({ envelopeCounter: field.int([1, 0, 0, 0, 0, 0, 0, 0, 0]) }))],
    ['a non-minimal INTEGER', seq(fieldsOf({ envelopeCounter: field.int([0, 1]) }))],
    ['an empty INTEGER', seq(fieldsOf({ envelopeCounter: field.int([]) }))],
    ['an outcome of 2', seq(fieldsOf({ outcome: field.enm(2) }))],
    ['an outcome as INTEGER', seq(fieldsOf({ outcome: field.int([0]) }))],
    ['a missing envelopeCounter', seq(fieldsOf().slice(0, 7))],
    ['a rule that is not UTF-8', seq(fieldsOf({ tail: [field.utf8([0xc3, 0x28])] }))],
    ['an empty rule', seq(fieldsOf({ tail: [field.utf8([])] }))],
    ['a rule as PrintableString', seq(fieldsOf({ tail: [[0x13, 1, 0x41]] }))],
    ['a field after rule', seq(fieldsOf({ tail: [field.utf8([0x41]), field.int([0])] }))],
    ['a constructed command OCTET STRING', seq(fieldsOf({ command: [0x24, 4, 0x04, 2, 0xdf, 0x09] }))],
    ['bytes after the SEQUENCE', new Uint8Array([...seq(fieldsOf()), 0])],
    ['a SET instead of a SEQUENCE', (() => { const b = seq(fieldsOf()); b[0] = 0x31; return b; })()],
    ['a truncated SEQUENCE', seq(fieldsOf()).subarray(0, 20)],
  ];

  it('the baseline eContent of the cases below is accepted', async () => {
    const v = await verify(await craft({ eContent: seq(fieldsOf()) }));
    expect(v.command).toEqual(new Uint8Array([0xdf, 0x09]));
    expect(v.decision.originatorCounter).toBe(0x1000n);
  });

  it.each(eContentCases)('an eContent with %s, correctly signed: ERR_DCO_MALFORMED', async (_name, eContent) => {
    const store = new MemoryStateStore();
    const e = await errorOf(verify(await craft({ eContent }), { store }), 'ERR_DCO_MALFORMED');
    expect(e.context.detail).toMatch(/^eContent: /);
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBeUndefined();
  });

  it('deep nesting up to the size bound is refused quickly', async () => {
    const depth = 20_000;
    const nested = new Uint8Array(depth * 2).map((_, i) => (i % 2 === 0 ? 0x30 : 0x80));
    const t0 = performance.now();
    expect(await codeOf(verify(nested))).toBe('ERR_DCO_MALFORMED');
    expect(performance.now() - t0).toBeLessThan(250);
  });

  it('random bytes never throw anything but a SmkiError (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2048 }),
          // plausible starts: a SEQUENCE header, so the walk goes deeper
          fc.uint8Array({ minLength: 2, maxLength: 600 }).map((b) => new Uint8Array([0x30, 0x82, (b.length >> 8) & 0xff, b.length & 0xff, ...b])),
        ),
        async (bytes) => {
          try {
            await verify(bytes);
            expect.unreachable('random bytes verified');
          } catch (e) {
            expect(e).toBeInstanceOf(SmkiError);
            expect((e as SmkiError).code).toMatch(/^ERR_DCO_/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('any one byte changed in a valid envelope is refused with an ERR_DCO_ code, and commits nothing (fast-check)', async () => {
    const env = await build();
    const store = new MemoryStateStore();
    await fc.assert(
      fc.asyncProperty(fc.nat(env.length - 1), fc.integer({ min: 1, max: 255 }), async (i, x) => {
        const bytes = env.slice();
        bytes[i] = (bytes[i] as number) ^ x;
        try {
          await verify(bytes, { store });
          expect.unreachable(`a change at ${i} verified`);
        } catch (e) {
          expect(e).toBeInstanceOf(SmkiError);
          expect((e as SmkiError).code).toMatch(/^ERR_DCO_/);
        }
      }),
      { numRuns: 400 },
    );
    expect(await store.lastCounter(parseEui64(DCO_ID), DEVICE)).toBeUndefined();
  });
});

describe('buildDcoEnvelope refuses what it cannot sign', () => {
  it.each<[string, InputOverrides]>([
    ['an empty command', { command: new Uint8Array() }],
    ['a command over 64 KiB', { command: new Uint8Array(MAX_DCO_COMMAND_BYTES + 1) }],
    ['a messageCode over 0xFFFF', { decision: { messageCode: 0x10000 } }],
    ['a fractional messageCode', { decision: { messageCode: 1.5 } }],
    ['a negative counter', { counter: -1n }],
    ['a counter of 2^64', { counter: 1n << 64n }],
    ['an originatorCounter given as a number', { decision: { originatorCounter: 5 as unknown as bigint } }],
    ['an invalid signing time', { signingTime: new Date(Number.NaN) }],
    ['a signing time before 1950', { signingTime: new Date('1949-12-31T23:59:59Z') }],
    ['an empty rule', { decision: { rule: '' } }],
    ['a rule over 256 UTF-8 bytes', { decision: { rule: 'é'.repeat(129) } }],
    ['a rule with a lone surrogate', { decision: { rule: 'a\ud800' } }],
    ['an unknown outcome', { decision: { outcome: 'rejected' as 'accepted' } }],
  ])('%s: ERR_INVALID_ARGUMENT', async (_name, overrides) => {
    expect(await codeOf(build(overrides))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('an originator that is not an EUI-64: ERR_EUI64_INVALID', async () => {
    expect(await codeOf(build({ decision: { originator: 'nope' as Eui64 } }))).toBe('ERR_EUI64_INVALID');
  });

  it('a key-agreement certificate: ERR_DCO_SIGNER_UNUSABLE', async () => {
    expect(await codeOf(buildDcoEnvelope(input(), { signer: dcoKa.signer, certificate: dcoKa.certificate }))).toBe('ERR_DCO_SIGNER_UNUSABLE');
  });

  it('a signing time outside the certificate validity: ERR_DCO_SIGNER_UNUSABLE', async () => {
    expect(await codeOf(build({ signingTime: new Date(dco.certificate.notAfter.getTime() + 1000) }))).toBe('ERR_DCO_SIGNER_UNUSABLE');
  });

  it("a signer whose key is not the certificate's: ERR_CERTIFICATE_KEY_MISMATCH", async () => {
    expect(await codeOf(buildDcoEnvelope(input(), { signer: dco2.signer, certificate: dco.certificate }))).toBe('ERR_CERTIFICATE_KEY_MISMATCH');
  });

  it('an HSM-style signer that returns 63 bytes: ERR_SIGNATURE_ENCODING', async () => {
    const short: Signer = { publicKey: dco.signer.publicKey, sign: async () => new Uint8Array(63) };
    expect(await codeOf(buildDcoEnvelope(input(), { signer: short, certificate: dco.certificate }))).toBe('ERR_SIGNATURE_ENCODING');
  });

  it('an HSM-style signer that signs with another key: ERR_DCO_SIGNATURE_INVALID (the envelope is never returned)', async () => {
    const wrong: Signer = { publicKey: dco.signer.publicKey, sign: (m) => dco2.signer.sign(m) };
    expect(await codeOf(buildDcoEnvelope(input(), { signer: wrong, certificate: dco.certificate }))).toBe('ERR_DCO_SIGNATURE_INVALID');
  });

  it('an HSM-style signer whose error propagates as it is', async () => {
    const failing: Signer = { publicKey: dco.signer.publicKey, sign: async () => Promise.reject(new SmkiError('ERR_HSM_OPERATION_FAILED', 'token refused', {})) };
    expect(await codeOf(buildDcoEnvelope(input(), { signer: failing, certificate: dco.certificate }))).toBe('ERR_HSM_OPERATION_FAILED');
  });
});

describe('verifyDcoEnvelope options', () => {
  it.each<[string, Partial<DcoVerifyOptions>]>([
    ['an empty certificate list', { trust: [] }],
    ['trust with neither certificates nor accept', { trust: {} }],
    ['a negative maxAgeMs', { maxAgeMs: -1 }],
    ['a NaN maxSkewMs', { maxSkewMs: Number.NaN }],
    ['a clock that returns an invalid date', { now: () => new Date(Number.NaN) }],
    ['a store without commit', { store: {} as StateStore }],
  ])('%s: ERR_INVALID_ARGUMENT', async (_name, options) => {
    expect(await codeOf(verify(await build(), options))).toBe('ERR_INVALID_ARGUMENT');
  });

  it('a look-alike certificate object (not made by parseCertificate): ERR_INVALID_ARGUMENT', async () => {
    const lookAlike = { ...dco.certificate } as SmkiCertificate;
    expect(await codeOf(verify(await build(), { trust: [lookAlike] }))).toBe('ERR_INVALID_ARGUMENT');
  });

  it("the trust callback's own error propagates", async () => {
    await expect(verify(await build(), { trust: { accept: () => { throw new Error('directory down'); } } })).rejects.toThrow('directory down');
  });
});
