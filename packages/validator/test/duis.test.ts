// The DCC-side entry for signed pre-commands in DUIS (docs/domain.md §8, the critical-command round
// trip; docs/validator.md, the DUIS entry): a User's signed DUIS Request whose body is
// sr:SignedPreCommand is checked as XML first (W3C XML Signature under the DUIS profile, the
// request id's anti-replay), then bound to the GBCS command it carries (the GBCS header's
// originator and recipient are the request id's, GBCS 4.3; the XML signer is the GBCS originator),
// then decided exactly as validate() decides (GBCS 5.4a: the User signature and the ACB MAC; 6.2.4:
// anti-replay). No GBCS state moves unless the DUIS step passed.
import { createHash, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseEui64, type Eui64, type SmkiErrorCode } from '@smki/core';
import { KeyStore, MemoryKeyBackend, verifyAuditLog } from '@smki/keystore';
import { issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { MemoryStateStore, type StateStore } from '@smki/store';
import { buildDisableSupply, parseMessage, signPreCommand } from '@smki/gbcs';
import {
  DuisTrust,
  formatRequestId,
  preCommandFromResponse,
  signRequest,
  signResponse,
  signedPreCommandRequest,
  verifyDuis,
  type SignedPreCommandRequest,
  type VerifiedDuis,
} from '@smki/duis';
import { SimulatedMeter } from '../../gbcs/test/_device-simulator.js';
import { DECISION_LOG_SCHEMA, type Validator, type ValidatorDuisOptions, type ValidatorOptions } from '../src/index.js';
import { LOG_KEY, OTHER_SUPPLIER, SUPPLIER, buildWorld, keyPair, memoryStores, openValidator, tempDir, type Meter, type Party, type Stores, type World } from './_world.js';
import { expectRejectedAt } from './_expect.js';

// What @smki/duis does, unchanged unless a test of the validator's own checks asks otherwise: those
// tests take away one of duis's checks (as a future change to it might) and expect the validator's
// check of the same rule to refuse the request on its own.
const duisChanged = vi.hoisted(() => ({
  /** Rewrite what verifyDuis returns. */
  verified: undefined as undefined | ((v: VerifiedDuis) => VerifiedDuis),
  /** signedPreCommandFromRequest without its body and binding checks. */
  unchecked: false,
}));
vi.mock('@smki/duis', async (importOriginal) => {
  const real = await importOriginal<typeof import('@smki/duis')>();
  const gbcs = await import('@smki/gbcs');
  return {
    ...real,
    verifyDuis: async (...args: Parameters<typeof real.verifyDuis>) => {
      const v = await real.verifyDuis(...args);
      return duisChanged.verified ? duisChanged.verified(v) : v;
    },
    signedPreCommandFromRequest: async (v: VerifiedDuis) => {
      if (!duisChanged.unchecked) return real.signedPreCommandFromRequest(v);
      const b64 = /<sr:GBCSPayload>([^<]*)<\/sr:GBCSPayload>/.exec(v.xml)?.[1] ?? '';
      const signedPreCommand = new Uint8Array(Buffer.from(b64, 'base64'));
      return { signedPreCommand, message: gbcs.parseMessage(signedPreCommand) };
    },
  };
});
afterEach(() => {
  duisChanged.verified = undefined;
  duisChanged.unchecked = false;
});

const DCC = parseEui64('90B3D51F30000002');
const XML_SIGNING = 135;
const DCC_XML_SIGNING = 137;

let world: World;
/** The supplier's key store: one portfolio, `duis`, whose signing key meters 0 and 1 trust. */
let keystore: KeyStore;
let portfolioCertificate: SmkiCertificate;
/** The supplier's XML-signing key and certificate (role 135), a plain core Signer. */
let userXml: Party;
/** Another User's (role 135). */
let otherXml: Party;
/** The DCC's (role 137), for the pre-command Response. */
let dccXml: Party;
let duisTrust: DuisTrust;
let meters: Meter[];
const NOW = () => BigInt(world.now.getTime());
const hash = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex').toUpperCase();
const HEADER = { commandVariant: '4', serviceReference: '7.2', serviceReferenceVariant: '7.2' } as const;

beforeAll(async () => {
  world = await buildWorld({ meters: 4 });
  const clock = () => new Date(world.now.getTime() - 24 * 3600_000);
  const org = async (entityId: Eui64, role: number): Promise<Party> => {
    const k = keyPair();
    return { ...k, certificate: await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role, entityId, keyUsage: 'digitalSignature', publicKey: k.publicKey, now: clock }) };
  };
  userXml = await org(SUPPLIER, XML_SIGNING);
  otherXml = await org(OTHER_SUPPLIER, XML_SIGNING);
  dccXml = await org(DCC, DCC_XML_SIGNING);
  duisTrust = new DuisTrust({
    certificates: [world.hierarchy.root.certificate, world.hierarchy.organisationCa.certificate, userXml.certificate, otherXml.certificate, dccXml.certificate],
    crls: world.crls,
  });

  // The supplier's portfolio key lives in its key store; its certificate is issued through the
  // store's own CSR by the test organisation CA, and meters 0 and 1 trust it (their supplier cell).
  keystore = await KeyStore.open({ directory: tempDir('smki-duis-ks-'), backend: new MemoryKeyBackend(), passphrase: 'test passphrase, not a real one', now: () => world.now });
  await keystore.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await keystore.createPortfolio(SUPPLIER, { id: 'duis' });
  const handle = await keystore.generateKey(SUPPLIER, 'duis', 'signing');
  portfolioCertificate = await issueOrganisationCertificate({
    issuer: world.hierarchy.organisationCa,
    role: 2,
    entityId: SUPPLIER,
    keyUsage: 'digitalSignature',
    csr: await keystore.createCsr(handle.keyId),
    now: clock,
  });
  await keystore.attachCertificate(handle.keyId, portfolioCertificate);
  meters = world.meters.slice(0, 2).map((m) => ({
    ...m,
    record: { ...m.record, cells: m.record.cells.map((c) => (c.role === 2 ? { ...c, ski: portfolioCertificate.subjectKeyId! } : c)) },
  }));
  for (const m of meters) await keystore.assignDevice(SUPPLIER, m.eui, 'duis');
  return async () => keystore.close();
});

interface Setup {
  readonly v: Validator;
  readonly stores: Stores;
  /** The DUIS anti-replay store (its own, never the GBCS one). */
  readonly duisStore: StateStore;
}

/** A validator with the DUIS entry, its stores, and the meters of the `duis` portfolio registered. */
async function open(extra: Partial<ValidatorOptions> & { replay?: boolean } = {}): Promise<Setup> {
  const { replay = true, ...rest } = extra;
  const stores = await memoryStores(world);
  await stores.registry.put(meters.map((m) => m.record));
  const duisStore = new MemoryStateStore();
  const v = await openValidator(world, stores, {
    dir: tempDir(),
    trust: { certificates: [...world.certificates, portfolioCertificate], crls: world.crls },
    duis: { trust: duisTrust, ...(replay ? { replay: { store: duisStore } } : {}) },
    ...rest,
  });
  return { v, stores, duisStore };
}

function requestIdFor(meter: Meter, counter: bigint, originator: Eui64 = SUPPLIER): string {
  return formatRequestId({ originator, target: meter.eui, counter });
}

function document(kind: 'Request' | 'Response', requestId: string, body: string): string {
  return (
    `<sr:${kind} xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">` +
    `<sr:Header><sr:RequestID>${requestId}</sr:RequestID><sr:CommandVariant>4</sr:CommandVariant>` +
    `<sr:ServiceReference>7.2</sr:ServiceReference><sr:ServiceReferenceVariant>7.2</sr:ServiceReferenceVariant></sr:Header>` +
    `<sr:Body>${body}</sr:Body></sr:${kind}>`
  );
}

/** The User's signed 7.2 Disable Supply service request. */
async function serviceRequest(meter: Meter, requestCounter: bigint): Promise<string> {
  return (await signRequest(document('Request', requestIdFor(meter, requestCounter), '<sr:DisableSupply/>'), userXml.signer, userXml.certificate)).xml;
}

/** The DCC's front end accepts the service request: its request id is claimed in the DUIS store. */
async function acceptServiceRequest(s: Setup, xml: string): Promise<void> {
  await verifyDuis(xml, duisTrust, { expect: 'request', now: world.now, replay: { store: s.duisStore } });
}

/**
 * The round trip of docs/domain.md §8 for a remote disconnect (ECS43, DUIS 7.2): the service
 * request (accepted by the DCC's front end), the DCC's signed Response with the pre-command, and
 * the User's signed pre-command Request: the GBCS pre-command signed through the key store, the
 * Request with the User's XML-signing key (a plain core Signer).
 */
async function signedPreCommand(s: Setup, meter: Meter, counters: { request: bigint; gbcs: bigint }): Promise<SignedPreCommandRequest> {
  await acceptServiceRequest(s, await serviceRequest(meter, counters.request));
  const pre = buildDisableSupply({ fuel: meter.fuel, originator: SUPPLIER, recipient: meter.eui, counter: counters.gbcs });
  const response = document('Response', requestIdFor(meter, counters.request), `<sr:PreCommand><sr:GBCSVersion>3.2</sr:GBCSVersion><sr:GBCSPayload>${Buffer.from(pre).toString('base64')}</sr:GBCSPayload></sr:PreCommand>`);
  const signedResponse = await signResponse(response, dccXml.signer, dccXml.certificate);
  const preCommand = await preCommandFromResponse(await verifyDuis(signedResponse.xml, duisTrust, { expect: 'response', now: world.now, dcc: DCC }));
  return signedPreCommandRequest({ preCommand, keystore, xmlSigner: userXml.signer, xmlCertificate: userXml.certificate, header: HEADER });
}

/** A signed pre-command Request built by hand around GBCS bytes (for what the helpers refuse to build). */
async function wrap(gbcs: Uint8Array, requestId: string): Promise<string> {
  const body = `<sr:SignedPreCommand><sr:GBCSPayload>${Buffer.from(gbcs).toString('base64')}</sr:GBCSPayload></sr:SignedPreCommand>`;
  return (await signRequest(document('Request', requestId, body), userXml.signer, userXml.certificate)).xml;
}

const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';

/**
 * A signed Request's SignedInfo signed again with `to`'s key, and KeyInfo naming `to`'s certificate
 * (same issuer): a signature that verifies, by a User who is not the request's originator.
 */
function resignAs(xml: string, from: Party, to: Party): string {
  const signedInfo = /<ds:SignedInfo>.*<\/ds:SignedInfo>/.exec(xml)?.[0] ?? '';
  // Exclusive C14N of SignedInfo as the profile writes it: the ds namespace on it, empty elements as start-end pairs.
  const canonical = Buffer.from(signedInfo.replace('<ds:SignedInfo>', `<ds:SignedInfo xmlns:ds="${DS_NS}">`).replace(/<(ds:\w+)([^>]*)\/>/g, '<$1$2></$1>'));
  const old = Buffer.from(/<ds:SignatureValue>([^<]*)</.exec(xml)?.[1] ?? '', 'base64');
  // The canonical form above is the one that was signed.
  expect(verify('sha256', canonical, { key: from.publicKey, dsaEncoding: 'ieee-p1363' }, old)).toBe(true);
  const value = sign('sha256', canonical, { key: to.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64');
  expect(from.certificate.issuer).toEqual(to.certificate.issuer);
  return xml
    .replace(/<ds:SignatureValue>[^<]*</, `<ds:SignatureValue>${value}<`)
    .replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${BigInt(`0x${to.certificate.serialNumber}`).toString()}<`);
}

function meterFor(m: Meter): SimulatedMeter {
  return new SimulatedMeter({
    eui64: m.eui,
    supplier: { entityId: SUPPLIER, dsPublicKey: portfolioCertificate.publicKey!, kaPublicKey: world.acb.publicKey },
    acb: { entityId: '90B3D51F30000004', kaPublicKey: world.acb.publicKey },
    criticalCodes: [0x0050],
    ka: { privateKey: m.ka.privateKey, publicKey: m.ka.publicKey },
  });
}

/** The decision log's records (after it verifies), without the chain fields. */
async function records(v: Validator): Promise<Record<string, unknown>[]> {
  const path = v.logHead().path;
  await v.close();
  expect((await verifyAuditLog(path, { key: LOG_KEY, schema: DECISION_LOG_SCHEMA })).ok).toBe(true);
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { seq: _s, at: _a, prev: _p, mac: _m, ...r } = JSON.parse(l) as Record<string, unknown>;
      return r;
    });
}

/**
 * The meter's GBCS state: the last counter accepted (none by default) and the anomaly window's
 * count (one per acceptance where the test set a threshold, none otherwise).
 */
async function expectGbcsState(s: Setup, meter: Meter, counter?: bigint): Promise<void> {
  expect(await s.stores.store.lastCounter(SUPPLIER, meter.eui)).toBe(counter);
  const windowStart = world.now.getTime() - (world.now.getTime() % 60_000);
  expect(await s.stores.store.anomalyCount({ user: SUPPLIER, messageCode: 0x0050, windowMs: 60_000, windowStart })).toBe(counter === undefined ? 0 : 1);
}

const ANOMALY = { anomalyThreshold: () => ({ limit: 10, windowMs: 60_000 }) } as const;

describe('an accepted signed pre-command, docs/domain.md §8 and GBCS 5.4a', () => {
  it('a 7.2 Disable Supply round trip: the XML verifies, the GBCS decision accepts, the meter accepts the ACB MAC', async () => {
    const s = await open(ANOMALY);
    const meter = meters[0]!;
    const c = NOW();
    const signed = await signedPreCommand(s, meter, { request: c, gbcs: c });
    const d = await s.v.validateDuisRequest(signed.xml);
    expect(d.outcome, JSON.stringify(d, (_k, x) => (typeof x === 'bigint' ? String(x) : x))).toBe('accepted');
    if (d.outcome !== 'accepted') return;
    expect(d).toMatchObject({ originator: SUPPLIER, device: meter.eui, messageCode: 0x0050, counter: c, critical: true, role: 2, signerSerial: portfolioCertificate.serialNumber });
    expect(d.request).toEqual({
      requestId: signed.requestIdText,
      originator: SUPPLIER,
      target: meter.eui,
      counter: c,
      serviceReference: '7.2',
      serviceReferenceVariant: '7.2',
      commandVariant: '4',
      body: 'SignedPreCommand',
      xmlSignerSerial: userXml.certificate.serialNumber,
    });
    // GBCS 5.4a: the frame carries the User signature and the ACB MAC, and the meter takes it.
    const result = meterFor(meter).receive(d.frame);
    expect(result.accepted, result.reason).toBe(true);
    expect(parseMessage(d.frame).frame).toBe('ciphered');
    // Both series moved, each in its own store (GBCS 6.2.4; docs/domain.md §8).
    await expectGbcsState(s, meter, c);
    expect(await s.duisStore.lastCounter(SUPPLIER, meter.eui)).toBe(c * 2n + 1n);
    expect(await s.v.validate(signed.signedPreCommand, { sender: SUPPLIER })).toMatchObject({ outcome: 'rejected', code: 'ERR_COMMAND_REPLAYED' });
    const log = await records(s.v);
    expect(log[0]).toEqual({
      type: 'command.accepted',
      sender: SUPPLIER,
      originator: SUPPLIER,
      device: meter.eui,
      messageCode: 0x0050,
      counter: String(c),
      role: 2,
      critical: 'critical',
      signerSerial: portfolioCertificate.serialNumber,
      commandHash: hash(signed.signedPreCommand),
    });
  });

  it('without a DUIS replay store the request is still verified and decided, GBCS anti-replay alone', async () => {
    const s = await open({ replay: false });
    const meter = meters[1]!;
    const signed = await signedPreCommand(s, meter, { request: NOW(), gbcs: NOW() });
    expect((await s.v.validateDuisRequest(new TextEncoder().encode(signed.xml))).outcome).toBe('accepted');
    expect(await s.duisStore.lastCounter(SUPPLIER, meter.eui)).toBe(NOW() * 2n);
    await s.v.close();
  });
});

describe('a DUIS refusal moves no GBCS state, docs/validator.md the DUIS entry', () => {
  it('the XML tampered after signing: ERR_DUIS_DIGEST_MISMATCH, logged; no counter, anomaly count or request id moved; sent again as signed, accepted', async () => {
    const s = await open(ANOMALY);
    const meter = meters[0]!;
    const c = NOW();
    const signed = await signedPreCommand(s, meter, { request: c, gbcs: c });
    const tampered = signed.xml.replace('<sr:ServiceReferenceVariant>7.2<', '<sr:ServiceReferenceVariant>7.3<');
    expect(tampered).not.toBe(signed.xml);
    const d = await s.v.validateDuisRequest(tampered);
    expectRejectedAt(d, 'ERR_DUIS_DIGEST_MISMATCH');
    expect(d.request).toBeUndefined();
    await expectGbcsState(s, meter);
    expect(await s.duisStore.lastCounter(SUPPLIER, meter.eui)).toBe(c * 2n);
    expect(s.v.stats().rejected).toEqual({ ERR_DUIS_DIGEST_MISMATCH: 1 });
    // The same signed pre-command, sent as signed, still goes through.
    const again = await s.v.validateDuisRequest(signed.xml);
    expect(again.outcome).toBe('accepted');
    await expectGbcsState(s, meter, c);
    const log = await records(s.v);
    // Nothing was authenticated: the sender is all zeros, the hash is the document's as received.
    expect(log[0]).toEqual({ type: 'command.rejected', sender: '0000000000000000', code: 'ERR_DUIS_DIGEST_MISMATCH', step: 'duis', commandHash: hash(tampered) });
    expect(log[1]).toMatchObject({ type: 'command.accepted', counter: String(c) });
  });

  it('the Request signed with the XML-signing certificate of another User: ERR_DUIS_SIGNER_NOT_ORIGINATOR', async () => {
    const s = await open(ANOMALY);
    const meter = meters[0]!;
    // No honest signer makes this document (duis's signRequest refuses to): the User's Request,
    // its SignedInfo signed again with the other User's key, KeyInfo naming that User's certificate.
    const signed = await signedPreCommand(s, meter, { request: NOW(), gbcs: NOW() });
    const forged = resignAs(signed.xml, userXml, otherXml);
    expectRejectedAt(await s.v.validateDuisRequest(forged), 'ERR_DUIS_SIGNER_NOT_ORIGINATOR');
    await expectGbcsState(s, meter);
    expect(await s.duisStore.lastCounter(SUPPLIER, meter.eui)).toBe(NOW() * 2n);
    await s.v.close();
  });

  it('a GBCS command whose recipient is not the target of the request id: ERR_DUIS_GBCS_MISMATCH, the counter of neither meter moved', async () => {
    const s = await open(ANOMALY);
    const [a, b] = meters as [Meter, Meter];
    const c = NOW();
    // A pre-command for meter a, signed through the key store, in a Request for meter b.
    const forA = await signedPreCommand(s, a, { request: c, gbcs: c });
    await acceptServiceRequest(s, await serviceRequest(b, c));
    const xml = await wrap(forA.signedPreCommand, requestIdFor(b, c));
    const d = await s.v.validateDuisRequest(xml);
    expectRejectedAt(d, 'ERR_DUIS_GBCS_MISMATCH');
    expect(d.request).toMatchObject({ originator: SUPPLIER, target: b.eui, counter: c });
    await expectGbcsState(s, a);
    await expectGbcsState(s, b);
    expect(await s.duisStore.lastCounter(SUPPLIER, b.eui)).toBe(c * 2n);
    const log = await records(s.v);
    // The XML signature verified: the sender is its signer; the hash is the document's.
    expect(log[0]).toEqual({ type: 'command.rejected', sender: SUPPLIER, code: 'ERR_DUIS_GBCS_MISMATCH', step: 'duis', commandHash: hash(xml) });
  });

  it('a Request whose body is the DisableSupply service request, not a signed pre-command: ERR_DUIS_DOCUMENT_KIND, its request id not used', async () => {
    const s = await open(ANOMALY);
    const meter = meters[0]!;
    const service = await serviceRequest(meter, NOW());
    const d = await s.v.validateDuisRequest(service);
    expectRejectedAt(d, 'ERR_DUIS_DOCUMENT_KIND');
    expect(d.request).toMatchObject({ body: 'DisableSupply', serviceReference: '7.2' });
    await expectGbcsState(s, meter);
    // The request id was not claimed: the DCC's front end still takes the service request.
    expect(await s.duisStore.lastCounter(SUPPLIER, meter.eui)).toBeUndefined();
    await acceptServiceRequest(s, service);
    expect(await s.duisStore.lastCounter(SUPPLIER, meter.eui)).toBe(NOW() * 2n);
    await s.v.close();
  });

  it('a GBCS replay inside fresh XML: the XML verifies, the GBCS decision refuses it ERR_COMMAND_REPLAYED', async () => {
    const s = await open(ANOMALY);
    const meter = meters[0]!;
    const c = NOW();
    const first = await signedPreCommand(s, meter, { request: c, gbcs: c });
    expect((await s.v.validateDuisRequest(first.xml)).outcome).toBe('accepted');
    // A new service request, and the old signed GBCS bytes in a freshly signed Request.
    await acceptServiceRequest(s, await serviceRequest(meter, c + 1n));
    const d = await s.v.validateDuisRequest(await wrap(first.signedPreCommand, requestIdFor(meter, c + 1n)));
    expectRejectedAt(d, 'ERR_COMMAND_REPLAYED');
    expect(d.request).toMatchObject({ counter: c + 1n, body: 'SignedPreCommand' });
    await expectGbcsState(s, meter, c);
    await s.v.close();
  });

  it('the DUIS replay store refuses a request id used before, ERR_DUIS_REPLAYED, even with a newer GBCS counter; a signed pre-command with no service request: ERR_DUIS_PRECOMMAND_UNEXPECTED', async () => {
    const s = await open(ANOMALY);
    const meter = meters[0]!;
    const c = NOW();
    const first = await signedPreCommand(s, meter, { request: c, gbcs: c });
    expect((await s.v.validateDuisRequest(first.xml)).outcome).toBe('accepted');
    expectRejectedAt(await s.v.validateDuisRequest(first.xml), 'ERR_DUIS_REPLAYED');
    // A GBCS command the GBCS checks alone would accept (counter c + 5), under the used request id.
    const newer = await signPreCommand(buildDisableSupply({ fuel: meter.fuel, originator: SUPPLIER, recipient: meter.eui, counter: c + 5n }), {
      publicKey: new Uint8Array(0),
      sign: (data) => keystore.signFor(meter.eui, data, { messageCode: 0x0050, counter: c + 5n }),
    });
    const d = await s.v.validateDuisRequest(await wrap(newer, requestIdFor(meter, c)));
    expectRejectedAt(d, 'ERR_DUIS_REPLAYED');
    expect(d.request).toMatchObject({ counter: c });
    await expectGbcsState(s, meter, c);
    // A request id whose service request the DCC never accepted.
    expectRejectedAt(await s.v.validateDuisRequest(await wrap(newer, requestIdFor(meter, c + 1n))), 'ERR_DUIS_PRECOMMAND_UNEXPECTED');
    await expectGbcsState(s, meter, c);
    expect(await s.v.validate(newer, { sender: SUPPLIER })).toMatchObject({ outcome: 'accepted', counter: c + 5n });
    await s.v.close();
  });
});

describe('the own checks of the validator, if @smki/duis stopped making them', () => {
  it('the binding of the GBCS header to the request id gone from duis: the validator refuses ERR_DUIS_GBCS_MISMATCH itself', async () => {
    const s = await open({ replay: false });
    const [a, b] = meters as [Meter, Meter];
    const forA = await signedPreCommand(s, a, { request: NOW(), gbcs: NOW() });
    duisChanged.unchecked = true;
    const d = await s.v.validateDuisRequest(await wrap(forA.signedPreCommand, requestIdFor(b, NOW())));
    expectRejectedAt(d, 'ERR_DUIS_GBCS_MISMATCH');
    // Refused by the validator after the payload parsed: the decision names the GBCS command too.
    expect(d).toMatchObject({ originator: SUPPLIER, device: a.eui, messageCode: 0x0050, counter: NOW(), request: { target: b.eui } });
    await expectGbcsState(s, a);
    await s.v.close();
  });

  it('the signer-is-originator check gone from duis: the validator refuses ERR_DUIS_SIGNER_NOT_ORIGINATOR itself', async () => {
    const s = await open({ replay: false });
    const meter = meters[0]!;
    const signed = await signedPreCommand(s, meter, { request: NOW(), gbcs: NOW() });
    duisChanged.verified = (v) => ({ ...v, certificate: otherXml.certificate });
    expectRejectedAt(await s.v.validateDuisRequest(signed.xml), 'ERR_DUIS_SIGNER_NOT_ORIGINATOR');
    await expectGbcsState(s, meter);
    await s.v.close();
  });

  it('the body check gone from duis: the validator refuses a body that is not SignedPreCommand, ERR_DUIS_DOCUMENT_KIND, itself', async () => {
    const s = await open({ replay: false });
    const meter = meters[0]!;
    const signed = await signedPreCommand(s, meter, { request: NOW(), gbcs: NOW() });
    duisChanged.unchecked = true;
    duisChanged.verified = (v) => ({ ...v, body: 'DisableSupply' });
    expectRejectedAt(await s.v.validateDuisRequest(signed.xml), 'ERR_DUIS_DOCUMENT_KIND');
    await expectGbcsState(s, meter);
    await s.v.close();
  });
});

describe('the DUIS entry: options and inputs', () => {
  const code = async (p: Promise<unknown> | (() => unknown)): Promise<SmkiErrorCode | undefined> => {
    try {
      await (typeof p === 'function' ? p() : p);
      return undefined;
    } catch (e) {
      return (e as { code?: SmkiErrorCode }).code;
    }
  };

  it('a validator opened without duis refuses the entry with ERR_INVALID_ARGUMENT, a caller error and not a decision', async () => {
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { dir: tempDir() });
    expect(await code(v.validateDuisRequest('<x/>'))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(() => v.updateDuisTrust(duisTrust))).toBe('ERR_INVALID_ARGUMENT');
    await v.close();
    expect(await code(v.validateDuisRequest('<x/>'))).toBe('ERR_VALIDATOR_CLOSED');
  });

  it('the DUIS replay store must be its own, never the GBCS store; the options are checked at open', async () => {
    const stores = await memoryStores(world);
    const opened = (duis: unknown) => code(openValidator(world, stores, { dir: tempDir(), duis: duis as ValidatorDuisOptions }));
    expect(await opened({ trust: duisTrust, replay: { store: stores.store } })).toBe('ERR_INVALID_ARGUMENT');
    expect(await opened({ trust: {} })).toBe('ERR_INVALID_ARGUMENT');
    expect(await opened({ trust: duisTrust, replay: { store: {} } })).toBe('ERR_INVALID_ARGUMENT');
    expect(await opened({ trust: duisTrust, replay: { store: new MemoryStateStore(), maxAgeMs: -1 } })).toBe('ERR_INVALID_ARGUMENT');
    expect(await opened({ trust: duisTrust, maxBytes: 0 })).toBe('ERR_INVALID_ARGUMENT');
    expect(await opened(null)).toBe('ERR_INVALID_ARGUMENT');
  });

  it('input that is not XML text or bytes is a rejection, ERR_DUIS_MALFORMED, logged like any other', async () => {
    const s = await open();
    const d = await s.v.validateDuisRequest(42 as unknown as string);
    expectRejectedAt(d, 'ERR_DUIS_MALFORMED');
    const log = await records(s.v);
    expect(log).toEqual([{ type: 'command.rejected', sender: '0000000000000000', code: 'ERR_DUIS_MALFORMED', step: 'duis', commandHash: hash(new Uint8Array(0)) }]);
  });

  it('a GBCS payload that does not parse is ERR_GBCS_MALFORMED at parse, as validate reports it', async () => {
    const s = await open();
    const meter = meters[0]!;
    await acceptServiceRequest(s, await serviceRequest(meter, NOW()));
    expectRejectedAt(await s.v.validateDuisRequest(await wrap(Uint8Array.of(0xdf, 0x09, 0x01), requestIdFor(meter, NOW()))), 'ERR_GBCS_MALFORMED');
    await expectGbcsState(s, meter);
    await s.v.close();
  });

  it('the DUIS replay store failing is its store code at commit, and no GBCS state moves', async () => {
    const s = await open();
    const meter = meters[0]!;
    const signed = await signedPreCommand(s, meter, { request: NOW(), gbcs: NOW() });
    await s.duisStore.close();
    expectRejectedAt(await s.v.validateDuisRequest(signed.xml), 'ERR_STORE_CLOSED');
    await expectGbcsState(s, meter);
    await s.v.close();
  });

  it('updateDuisTrust replaces the trust: without the XML certificate of the User, ERR_DUIS_CERTIFICATE_NOT_FOUND', async () => {
    const s = await open({ replay: false });
    const meter = meters[0]!;
    const signed = await signedPreCommand(s, meter, { request: NOW(), gbcs: NOW() });
    s.v.updateDuisTrust(new DuisTrust({ certificates: [world.hierarchy.root.certificate, world.hierarchy.organisationCa.certificate], crls: world.crls }));
    expectRejectedAt(await s.v.validateDuisRequest(signed.xml), 'ERR_DUIS_CERTIFICATE_NOT_FOUND');
    expect(await code(() => s.v.updateDuisTrust({} as DuisTrust))).toBe('ERR_INVALID_ARGUMENT');
    s.v.updateDuisTrust(duisTrust);
    expect((await s.v.validateDuisRequest(signed.xml)).outcome).toBe('accepted');
    await s.v.close();
  });
});
