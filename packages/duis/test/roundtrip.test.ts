// The critical-command round trip in DUIS (docs/domain.md §8, §4, §5): the User signs a 7.2
// Disable Supply service request; the DCC answers with a signed sr:PreCommand Response carrying
// the GBCS pre-command (ECS43, GBCS 4.3); the User verifies the Response, signs the pre-command
// with the key the meter trusts (through the key store, so the portfolio segregation holds),
// wraps it as sr:SignedPreCommand under the same request id and signs the XML with its XML
// signing key (role 135) from the key store; the DCC verifies that Request and takes the
// signed GBCS command out of the document as verified.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import { buildDisableSupply, parseMessage, verifySignature } from '@smki/gbcs';
import { KeyStore, MemoryKeyBackend } from '@smki/keystore';
import { issueOrganisationCertificate } from '@smki/pki';
import type { SmkiCertificate } from '@smki/pki';
import { MemoryStateStore } from '@smki/store';
import { DuisTrust, formatRequestId, preCommandFromResponse, signRequest, signResponse, signedPreCommandFromRequest, signedPreCommandRequest, verifyDuis } from '../src/index.js';
import type { SignedPreCommandRequest } from '../src/index.js';
import { DCC, DEVICE, USER, fixture, request, response } from './_fixture.js';
import type { Fixture } from './_fixture.js';

const OTHER_DEVICE = '00DB1234567890A1';
let f: Fixture;
let dir: string;
let keystore: KeyStore;
let trust: DuisTrust;
let deviceCert: SmkiCertificate;
let southCert: SmkiCertificate;

beforeAll(async () => {
  f = await fixture();
  dir = mkdtempSync(join(tmpdir(), 'duis-rt-'));
  keystore = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: 'test passphrase, not a real one' });
  await keystore.addOrganisation({ entityId: USER, role: 2 });
  const issue = async (portfolio: string, purpose: 'signing' | 'xmlSigning', role: number) => {
    const handle = await keystore.generateKey(USER, portfolio, purpose);
    const csr = await keystore.createCsr(handle.keyId);
    const cert = await issueOrganisationCertificate({ issuer: f.hierarchy.organisationCa, role, entityId: USER, keyUsage: 'digitalSignature', csr });
    await keystore.attachCertificate(handle.keyId, cert);
    return cert;
  };
  await keystore.createPortfolio(USER, { id: 'north' });
  await keystore.createPortfolio(USER, { id: 'south' });
  deviceCert = await issue('north', 'signing', 2);
  southCert = await issue('south', 'signing', 2);
  const xmlCert = await issue('north', 'xmlSigning', 135);
  await keystore.assignDevice(USER, DEVICE, 'north');
  await keystore.assignDevice(USER, OTHER_DEVICE, 'south');
  trust = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, xmlCert, f.dcc.certificate], crls: f.crls });
});
afterAll(async () => {
  await keystore.close();
  rmSync(dir, { recursive: true, force: true });
});

const NOW = () => new Date();

/** The DCC's pre-command Response for a request id. */
async function preCommandResponse(counter: bigint, target = DEVICE, gbcsTarget = target): Promise<string> {
  const pre = buildDisableSupply({ fuel: 'electricity', originator: USER, recipient: gbcsTarget, counter });
  const body = `<sr:PreCommand><sr:GBCSVersion>3.2</sr:GBCSVersion><sr:GBCSPayload>${Buffer.from(pre).toString('base64')}</sr:GBCSPayload></sr:PreCommand>`;
  const requestId = formatRequestId({ originator: parseEui64(USER), target: parseEui64(target), counter });
  return (await signResponse(response(body, { requestId }), f.dcc.signer, f.dcc.certificate)).xml;
}

describe('the round trip', () => {
  it('service request, pre-command, signed pre-command, each verified by the other side', async () => {
    const dccState = new MemoryStateStore();
    const userState = new MemoryStateStore();
    const xmlSigner = await keystore.xmlSigner(USER);
    // 1. The User's service request, its counter from the User's durable store.
    const serviceRequest = await signRequest(request(), xmlSigner, xmlSigner.certificate, { requestCounter: { store: userState } });
    const atDcc = await verifyDuis(serviceRequest.xml, trust, { expect: 'request', now: NOW(), replay: { store: dccState } });
    expect(atDcc.serviceReference).toBe('7.2');
    // 2. The DCC answers with the pre-command for that request id.
    const responseXml = await preCommandResponse(atDcc.counter);
    const verifiedResponse = await verifyDuis(responseXml, trust, { expect: 'response', dcc: parseEui64(DCC) });
    const pre = await preCommandFromResponse(verifiedResponse);
    expect(pre.message.messageCode).toBe(0x0050);
    expect(pre.counter).toBe(serviceRequest.requestId.counter);
    expect(pre.gbcsVersion).toBe('3.2');
    // 3. The User signs the pre-command with the key the meter trusts, and the XML.
    const spc: SignedPreCommandRequest = await signedPreCommandRequest({ preCommand: pre, keystore, xmlSigner, xmlCertificate: xmlSigner.certificate, header: { commandVariant: '4', serviceReference: '7.2', serviceReferenceVariant: '7.2' } });
    expect(spc.requestIdText).toBe(serviceRequest.requestIdText);
    // 4. The DCC verifies the XML, once, and takes the GBCS command out of what was verified.
    const verified = await verifyDuis(spc.xml, trust, { expect: 'request', now: NOW(), replay: { store: dccState } });
    expect(verified.body).toBe('SignedPreCommand');
    const { signedPreCommand, message } = await signedPreCommandFromRequest(verified);
    expect(signedPreCommand).toEqual(spc.signedPreCommand);
    expect(message.recipient).toBe(DEVICE);
    expect(verifySignature(signedPreCommand, deviceCert)).toBe(true);
    expect(verifySignature(signedPreCommand, southCert)).toBe(false);
    await expect(verifyDuis(spc.xml, trust, { expect: 'request', now: NOW(), replay: { store: dccState } })).rejects.toMatchObject({ code: 'ERR_DUIS_REPLAYED' });
  });

  it('a pre-command whose GBCS recipient is not the request id target is refused', async () => {
    const xml = await preCommandResponse(5n, DEVICE, OTHER_DEVICE);
    const verified = await verifyDuis(xml, trust, { expect: 'response' });
    await expect(preCommandFromResponse(verified)).rejects.toMatchObject({ code: 'ERR_DUIS_GBCS_MISMATCH' });
  });

  it('a pre-command is taken only from a verified PreCommand response', async () => {
    const verifiedRequest = await verifyDuis((await signRequest(request(), await keystore.xmlSigner(USER), (await keystore.xmlSigner(USER)).certificate)).xml, trust, { expect: 'request' });
    await expect(preCommandFromResponse(verifiedRequest)).rejects.toMatchObject({ code: 'ERR_DUIS_DOCUMENT_KIND' });
    await expect(preCommandFromResponse({ kind: 'response', body: 'PreCommand' } as never)).rejects.toMatchObject({ code: 'ERR_DUIS_DOCUMENT_KIND' });
    await expect(signedPreCommandFromRequest(verifiedRequest)).rejects.toMatchObject({ code: 'ERR_DUIS_DOCUMENT_KIND' });
  });

  it('the meter of another portfolio is signed with its own key, never north s', async () => {
    const verified = await verifyDuis(await preCommandResponse(7n, OTHER_DEVICE), trust, { expect: 'response' });
    const pre = await preCommandFromResponse(verified);
    const xmlSigner = await keystore.xmlSigner(USER);
    const spc = await signedPreCommandRequest({ preCommand: pre, keystore, xmlSigner, xmlCertificate: xmlSigner.certificate });
    expect(verifySignature(spc.signedPreCommand, southCert)).toBe(true);
    expect(verifySignature(spc.signedPreCommand, deviceCert)).toBe(false);
  });

  it('a meter the key store does not know is refused before anything is signed', async () => {
    const unknown = '00DB1234567890AF';
    const pre = await preCommandFromResponse(await verifyDuis(await preCommandResponse(9n, unknown), trust, { expect: 'response' }));
    const xmlSigner = await keystore.xmlSigner(USER);
    try {
      await signedPreCommandRequest({ preCommand: pre, keystore, xmlSigner, xmlCertificate: xmlSigner.certificate });
      expect.unreachable();
    } catch (e) {
      expect(isSmkiError(e) && e.code).toBe('ERR_DEVICE_UNKNOWN');
    }
    expect(parseMessage(pre.preCommand).recipient).toBe(unknown);
  });

  it('a tampered signed pre-command request is refused by the DCC', async () => {
    const pre = await preCommandFromResponse(await verifyDuis(await preCommandResponse(11n), trust, { expect: 'response' }));
    const xmlSigner = await keystore.xmlSigner(USER);
    const spc = await signedPreCommandRequest({ preCommand: pre, keystore, xmlSigner, xmlCertificate: xmlSigner.certificate });
    const b64 = Buffer.from(spc.signedPreCommand).toString('base64');
    const flipped = Buffer.from(spc.signedPreCommand);
    flipped[flipped.length - 1]! ^= 1;
    await expect(verifyDuis(spc.xml.replace(b64, flipped.toString('base64')), trust, { expect: 'request' })).rejects.toMatchObject({ code: 'ERR_DUIS_DIGEST_MISMATCH' });
  });
});
