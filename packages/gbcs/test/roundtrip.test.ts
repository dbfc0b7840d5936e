// docs/domain.md §3-§6: the whole round trip, device side included. The library builds a pre-command,
// signs it as the supplier (docs/domain.md §4 User signature) and adds the ACB MAC (docs/domain.md §4 steps 1-3); a
// simulated meter (test/_device-simulator.ts: its own keys, plain node:crypto, no import from
// src/) checks the frame as a device does (MAC, signature of critical commands per docs/domain.md §5,
// strictly increasing counter per docs/domain.md §6) and answers; the library then verifies the meter's
// signed response, its response MAC (mode 02) and decrypts its sensitive payload (mode 04).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, createKeyAgreement, isSmkiError, type KeyAgreement } from '@smki/core';
import { certificateToPem, createHierarchy, issueDeviceCertificate, issueOrganisationCertificate } from '@smki/pki';
import { KeyStore, MemoryKeyBackend } from '@smki/keystore';
import {
  buildMessage,
  decryptPayload,
  parseMessage,
  signPreCommand,
  verifyMac,
  verifyMacAsync,
  verifySignature,
  wrapWithMac,
  wrapWithMacAsync,
  type GbcsMessage,
} from '../src/index.js';
import { buildActivateFirmware, buildDisableSupply, buildEnableSupply, encodeSupplyPayload } from '../src/commands.js';
import { SimulatedMeter, simPublicKeyFromPoint, type MeterResult, type RejectReason } from './_device-simulator.js';

const SUPPLIER = '90B3D51F30010000';
const ACB = '90B3D51F30000004';
const METER = '00DB1234567890A0';
/** docs/domain.md §5: codes critical when a supplier sends them (the ones this test uses and a few more). */
const CRITICAL = [0x0050, 0x0081, 0x004f, 0x0051, 0x0085, 0x0012, 0x0062, 0x000a, 0x000b, 0x000c];
/** A read: not in docs/domain.md §5's table of critical commands, so the meter wants only the ACB MAC. */
const READ_CODE = 0x0015;

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const supplierDs = p256();
const supplierKa = p256();
const acbKa = p256();

function newMeter(options: { acbKaPublicKey?: KeyObject; responseSupplementary?: ConstructorParameters<typeof SimulatedMeter>[0]['responseSupplementary'] } = {}): SimulatedMeter {
  return new SimulatedMeter({
    eui64: METER,
    supplier: { entityId: SUPPLIER, dsPublicKey: supplierDs.publicKey, kaPublicKey: supplierKa.publicKey },
    acb: { entityId: ACB, kaPublicKey: options.acbKaPublicKey ?? acbKa.publicKey },
    criticalCodes: CRITICAL,
    ...(options.responseSupplementary ? { responseSupplementary: options.responseSupplementary } : {}),
  });
}

let counter = 1_700_000_000_000n; // DCC tools use milliseconds since the epoch (docs/domain.md §6)
const next = () => ++counter;

/** The ECS43 remote disconnect pre-command (docs/domain.md §5), unsigned. */
const disconnect = (c: bigint) => buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: METER, counter: c });

/** A signed, ACB-MAC'd ECS43 frame, as the DCC sends it to the meter. */
async function disconnectFrame(meter: SimulatedMeter, c = next(), signer: KeyObject = supplierDs.privateKey, acb: KeyObject = acbKa.privateKey): Promise<Uint8Array> {
  const signed = await signPreCommand(disconnect(c), signer);
  return wrapWithMac(signed, { privateKey: acb, publicKey: meter.kaPublicKey });
}

/** A non-critical read from the supplier, unsigned (empty signature field), ACB-MAC'd. */
function readFrame(meter: SimulatedMeter, c = next(), originator = SUPPLIER): Uint8Array {
  const apdu = buildMessage({
    cra: 'command',
    originatorCounter: c,
    originator,
    recipient: METER,
    messageCode: READ_CODE,
    payload: Uint8Array.of(0xd9, 0x20, Number((c >> 16n) & 0xffn), Number((c >> 8n) & 0xffn), Number(c & 0xffn), 0x00, 0x01, 0x01),
    signatureField: 'empty',
  });
  return wrapWithMac(apdu, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey });
}

/** The sensitive payload in the simulator's response content: DA 20 ctr(3) 00 01 00 09 len value. */
function sensitiveOf(m: GbcsMessage): Uint8Array {
  const c = m.payload;
  expect(c[0]).toBe(0xda);
  expect(c[8]).toBe(0x09);
  const len = c[9] as number;
  expect(len).toBeLessThan(0x80);
  expect(c.length).toBe(10 + len);
  return c.slice(10, 10 + len);
}

function accepted(r: MeterResult): asserts r is MeterResult & { response: Uint8Array; sensitivePlaintext: Uint8Array; sensitivePayload: Uint8Array } {
  expect({ accepted: r.accepted, reason: r.reason, detail: r.detail }).toEqual({ accepted: true, reason: undefined, detail: undefined });
  expect(r.response).toBeInstanceOf(Uint8Array);
}

function expectCode(f: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(isSmkiError(thrown) ? thrown.code : thrown).toBe(code);
}

/** The value `f` returns, or the code of the SmkiError it throws. */
function outcomeOf(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
}

const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const out = bytes.slice();
  out[bit >> 3] = (out[bit >> 3] as number) ^ (0x80 >> (bit & 7));
  return out;
};

/** Check a device-signed response to a critical command with the library, end to end. */
function checkSignedResponse(meter: SimulatedMeter, r: MeterResult & { response: Uint8Array; sensitivePlaintext: Uint8Array }, code: number, c: bigint): void {
  const m = parseMessage(r.response);
  expect(m.frame).toBe('signed');
  expect(m.cra).toBe('response');
  expect(m.originator).toBe(METER);
  expect(m.recipient).toBe(SUPPLIER);
  expect(m.messageCode).toBe(code);
  expect(m.originatorCounter).toBe(c);
  expect(m.signatureField).toBe('present');
  // the device DS key verifies it; the supplier's and the meter's KA keys do not
  expect(verifySignature(m, meter.dsPublicKey)).toBe(true);
  expect(verifySignature(m, supplierDs.publicKey)).toBe(false);
  // mode 04: supplier KA private × device KA public
  expect(decryptPayload(m, sensitiveOf(m), { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey })).toEqual(r.sensitivePlaintext);
}

describe('critical command round trip (docs/domain.md §4 User signature + ACB MAC, §5)', () => {
  it('ECS43 remote disconnect: supplier signs, ACB MACs (wrapWithMac), meter accepts, library checks the signed response and its payload', async () => {
    const meter = newMeter();
    const c = next();
    const frame = await disconnectFrame(meter, c);
    const m = parseMessage(frame);
    expect(m.frame).toBe('ciphered');
    expect(m.messageCode).toBe(0x0050);
    expect(m.payload).toEqual(encodeSupplyPayload('ECS43', c));
    // the library agrees with the meter that the MAC verifies (device side of verifyMac)
    expect(verifyMac(m, { privateKey: meter.ka.privateKey, publicKey: acbKa.publicKey })).toBe(true);
    expect(verifySignature(m, supplierDs.publicKey)).toBe(true);

    const r = meter.receive(frame);
    accepted(r);
    checkSignedResponse(meter, r, 0x0050, c);
    expect(meter.floor(SUPPLIER)).toBe(c);
  });

  it.each([
    ['ECS42 enable supply', 0x004f, (c: bigint) => buildEnableSupply({ originator: SUPPLIER, recipient: METER, counter: c })],
    ['GCS32 close gas valve', 0x0081, (c: bigint) => buildDisableSupply({ fuel: 'gas', originator: SUPPLIER, recipient: METER, counter: c, signatureField: 'absent' })],
    ['CS06 activate firmware', 0x0012, (c: bigint) => buildActivateFirmware({ originator: SUPPLIER, recipient: METER, counter: c, imageHash: new Uint8Array(32).fill(0xab), executionTime: new Date('2030-01-01T02:00:00Z') })],
  ] as const)('%s (code %i): accepted only when signed, and answered with a signed response', async (_name, code, build) => {
    const meter = newMeter();
    const c = next();
    const unsigned = build(c);
    // an unsigned critical command with a good MAC is refused
    expect(meter.receive(wrapWithMac(unsigned, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey })).reason).toBe('signature-missing');
    expect(meter.floor(SUPPLIER)).toBeUndefined();
    const r = meter.receive(wrapWithMac(await signPreCommand(unsigned, supplierDs.privateKey), { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey }));
    accepted(r);
    checkSignedResponse(meter, r, code, c);
  });

  it('lengths in 81 and 82 form and counters above 2^63 read the same on both sides', async () => {
    const meter = newMeter();
    const big = (1n << 63n) + 5n;
    const apdu = buildMessage({
      cra: 'command',
      originatorCounter: big,
      originator: SUPPLIER,
      recipient: METER,
      messageCode: 0x0050,
      supplementaryRemotePartyId: '90B3D51F30050000',
      supplementaryRemotePartyCounter: 1n,
      keyAgreementCertificate: concatBytes(Uint8Array.of(0x30, 0x82, 0x01, 0x2c), new Uint8Array(300).fill(0x5a)),
      payload: encodeSupplyPayload('ECS43', big),
      signatureField: 'empty',
    });
    const frame = wrapWithMac(await signPreCommand(apdu, supplierDs.privateKey), { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey });
    expect(frame[7]).toBe(0x82);
    const r = meter.receive(frame);
    accepted(r);
    checkSignedResponse(meter, r, 0x0050, big);
    expect(meter.floor(SUPPLIER)).toBe(big);
    const max = (1n << 64n) - 1n;
    accepted(meter.receive(await disconnectFrame(meter, max)));
    expect(meter.floor(SUPPLIER)).toBe(max);
    expect(meter.receive(await disconnectFrame(meter, big + 1n)).reason).toBe('counter-replayed');
  });

  it("wrapWithMacAsync with core's createKeyAgreement gives the same frame, and the meter accepts it", async () => {
    const meter = newMeter();
    const c = next();
    const signed = await signPreCommand(disconnect(c), supplierDs.privateKey);
    const viaAgreement = await wrapWithMacAsync(signed, { keyAgreement: createKeyAgreement(acbKa.privateKey), publicKey: meter.kaPublicKey });
    expect(viaAgreement).toEqual(wrapWithMac(signed, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey }));
    const r = meter.receive(viaAgreement);
    accepted(r);
    checkSignedResponse(meter, r, 0x0050, c);
  });

  describe("the ACB's key in a key store (whole-estate portfolio, @smki/keystore)", () => {
    let dir: string;
    let store: KeyStore;
    let agreement: KeyAgreement;
    let meter: SimulatedMeter;
    beforeAll(async () => {
      const pki = await createHierarchy();
      dir = mkdtempSync(join(tmpdir(), 'smki-roundtrip-'));
      store = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: 'round-trip test passphrase' });
      await store.addOrganisation({ entityId: ACB, role: 4 });
      await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
      const handle = await store.generateKey(ACB, 'estate', 'keyAgreement');
      const csr = await store.createCsr(handle.keyId);
      const cert = await issueOrganisationCertificate({ issuer: pki.organisationCa, role: 4, entityId: ACB, keyUsage: 'keyAgreement', csr });
      await store.attachCertificate(handle.keyId, cert);
      await store.assignDevice(ACB, METER, 'estate'); // a whole-estate key serves only devices the store knows
      agreement = await store.keyAgreementFor(METER, { organisation: ACB });
      // the meter's ACB anchor is the key store's key (its public point: the private key stays in the store)
      meter = newMeter({ acbKaPublicKey: simPublicKeyFromPoint(agreement.publicKey) });
    });
    afterAll(async () => {
      await store?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('wrapWithMacAsync with KeyStore.keyAgreementFor: the meter accepts the frame', async () => {
      const c = next();
      const signed = await signPreCommand(disconnect(c), supplierDs.privateKey);
      const frame = await wrapWithMacAsync(signed, { keyAgreement: agreement, publicKey: meter.kaPublicKey });
      expect(await verifyMacAsync(frame, { keyAgreement: createKeyAgreement(meter.ka.privateKey), publicKey: simPublicKeyFromPoint(agreement.publicKey) })).toBe(true);
      const r = meter.receive(frame);
      accepted(r);
      checkSignedResponse(meter, r, 0x0050, c);
      // the in-process ACB key is not the one this meter trusts
      expect(meter.receive(await disconnectFrame(meter)).reason).toBe('mac-invalid');
    });
  });
});

describe('non-critical command round trip (docs/domain.md §4: device MAC, mode 02)', () => {
  it('a supplier read: ACB MAC only; the response is MAC-d by the device and its payload decrypts', () => {
    const meter = newMeter();
    const c = next();
    const r = meter.receive(readFrame(meter, c));
    accepted(r);
    const m = parseMessage(r.response);
    expect(m.frame).toBe('ciphered');
    expect(m.cra).toBe('response');
    expect(m.originator).toBe(METER);
    expect(m.recipient).toBe(SUPPLIER);
    expect(m.messageCode).toBe(READ_CODE);
    expect(m.signature).toBeNull();
    // head-end side: supplier KA private × device KA public, and the device side gives the same
    expect(verifyMac(m, { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey })).toBe(true);
    expect(verifyMac(m, { privateKey: meter.ka.privateKey, publicKey: supplierKa.publicKey })).toBe(true);
    // wrong keys: the ACB's, or the supplier's DS key pair used as KA
    expect(verifyMac(m, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey })).toBe(false);
    expect(verifyMac(m, { privateKey: supplierDs.privateKey, publicKey: meter.kaPublicKey })).toBe(false);
    expect(verifyMac(m, { privateKey: supplierKa.privateKey, publicKey: meter.dsPublicKey })).toBe(false);
    expect(decryptPayload(m, sensitiveOf(m), { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey })).toEqual(r.sensitivePlaintext);
  });

  it('an ACB-originated command (not critical, docs/domain.md §5): the response is MAC-d for the ACB', () => {
    const meter = newMeter();
    const c = next();
    const apdu = buildMessage({ cra: 'command', originatorCounter: c, originator: ACB, recipient: METER, messageCode: 0x000f, payload: Uint8Array.of(0x01, 0x09, 0x00), signatureField: 'empty' });
    const r = meter.receive(wrapWithMac(apdu, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey }));
    accepted(r);
    const m = parseMessage(r.response);
    expect(m.recipient).toBe(ACB);
    expect(verifyMac(m, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey })).toBe(true);
    expect(verifyMac(m, { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey })).toBe(false);
    expect(decryptPayload(m, sensitiveOf(m), { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey })).toEqual(r.sensitivePlaintext);
    expect(meter.floor(ACB)).toBe(c);
    expect(meter.floor(SUPPLIER)).toBeUndefined();
  });

  it('a response with supplementary fields: the payload key uses the supplementary originator counter and remote party id', async () => {
    const sup = { remotePartyId: '90B3D51F30050000', remotePartyCounter: 77n, originatorCounter: 0x0102030405060708n };
    const meter = newMeter({ responseSupplementary: sup });
    for (const frame of [readFrame(meter), await disconnectFrame(meter)]) {
      const r = meter.receive(frame);
      accepted(r);
      const m = parseMessage(r.response);
      expect(m.supplementaryRemotePartyId).toBe(sup.remotePartyId);
      expect(m.supplementaryOriginatorCounter).toBe(sup.originatorCounter);
      expect(m.supplementaryRemotePartyCounter).toBe(sup.remotePartyCounter);
      expect(decryptPayload(m, sensitiveOf(m), { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey })).toEqual(r.sensitivePlaintext);
      if (m.frame === 'ciphered') expect(verifyMac(m, { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey })).toBe(true);
      else expect(verifySignature(m, meter.dsPublicKey)).toBe(true);
    }
  });
});

describe("the head-end uses the device's certificates (docs/domain.md §2 device certificates, §4)", () => {
  it('verifies the signed response with the device DS certificate and decrypts and checks MACs with the device KA certificate', async () => {
    const meter = newMeter();
    const pki = await createHierarchy();
    const dsCert = certificateToPem(await issueDeviceCertificate({ issuer: pki.deviceCa, entityId: METER, keyUsage: 'digitalSignature', publicKey: meter.dsPublicKey }));
    const kaCert = certificateToPem(await issueDeviceCertificate({ issuer: pki.deviceCa, entityId: METER, keyUsage: 'keyAgreement', publicKey: meter.kaPublicKey }));

    const critical = meter.receive(await disconnectFrame(meter));
    accepted(critical);
    const signed = parseMessage(critical.response);
    expect(verifySignature(signed, dsCert)).toBe(true);
    expect(decryptPayload(signed, sensitiveOf(signed), { privateKey: supplierKa.privateKey, publicKey: kaCert })).toEqual(critical.sensitivePlaintext);
    // a key-agreement certificate never verifies a signature; a signing certificate never enters ECDH
    expect(outcomeOf(() => verifySignature(signed, kaCert))).not.toBe(true);
    expectCode(() => decryptPayload(signed, sensitiveOf(signed), { privateKey: supplierKa.privateKey, publicKey: dsCert }), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');

    const plain = meter.receive(readFrame(meter));
    accepted(plain);
    expect(verifyMac(plain.response, { privateKey: supplierKa.privateKey, publicKey: kaCert })).toBe(true);
    expectCode(() => verifyMac(plain.response, { privateKey: supplierKa.privateKey, publicKey: dsCert }), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
  });
});

describe('the meter rejects (docs/domain.md §4, §6)', () => {
  it('a flipped bit anywhere in the frame, and a rejected frame does not move the counter floor', async () => {
    const meter = newMeter();
    const frame = await disconnectFrame(meter);
    const m = parseMessage(frame);
    const seen = new Map<RejectReason | undefined, number>();
    for (let bit = 0; bit < frame.length * 8; bit++) {
      const r = meter.receive(flipBit(frame, bit));
      expect(r.accepted, `bit ${bit}`).toBe(false);
      seen.set(r.reason, (seen.get(r.reason) ?? 0) + 1);
      const byte = bit >> 3;
      // inside the content, the signature and the MAC the structure is unchanged: the MAC must catch it
      if (byte >= m.signedRange.end - m.payload.length && byte !== m.signedRange.end) {
        expect(r.reason, `bit ${bit}`).toBe('mac-invalid');
      }
    }
    expect(seen.get('mac-invalid')).toBeGreaterThan(frame.length * 4);
    expect(seen.get(undefined)).toBeUndefined();
    expect(meter.floor(SUPPLIER)).toBeUndefined();
    accepted(meter.receive(frame));
  });

  it('every single-bit change of the MAC-d APDU and of the MAC is a MAC failure or a structural refusal', async () => {
    const meter = newMeter();
    const frame = readFrame(meter);
    const m = parseMessage(frame);
    for (let byte = m.apduRange.start; byte < frame.length; byte++) {
      for (let b = 0; b < 8; b++) {
        const r = meter.receive(flipBit(frame, byte * 8 + b));
        expect(['mac-invalid', 'malformed', 'not-a-command', 'wrong-recipient', 'unknown-originator']).toContain(r.reason);
      }
    }
    accepted(meter.receive(frame));
  });

  it("a signature made with a key other than the installed supplier's", async () => {
    const meter = newMeter();
    const impostor = p256();
    const r = meter.receive(await disconnectFrame(meter, next(), impostor.privateKey));
    expect(r).toMatchObject({ accepted: false, reason: 'signature-invalid' });
    expect(meter.floor(SUPPLIER)).toBeUndefined();
  });

  it('a replayed counter: the same frame twice, an equal counter, a lower counter', async () => {
    const meter = newMeter();
    const c = next();
    const frame = await disconnectFrame(meter, c);
    accepted(meter.receive(frame));
    expect(meter.receive(frame)).toMatchObject({ accepted: false, reason: 'counter-replayed' });
    expect(meter.receive(readFrame(meter, c))).toMatchObject({ accepted: false, reason: 'counter-replayed' });
    expect(meter.receive(await disconnectFrame(meter, c - 1n))).toMatchObject({ accepted: false, reason: 'counter-replayed' });
    expect(meter.floor(SUPPLIER)).toBe(c);
    accepted(meter.receive(await disconnectFrame(meter, c + 1n)));
    expect(meter.floor(SUPPLIER)).toBe(c + 1n);
    counter = c + 1n;
  });

  it('a change of supplier resets the floor for the new supplier only (docs/domain.md §6)', async () => {
    const meter = newMeter();
    const c = next();
    accepted(meter.receive(await disconnectFrame(meter, c)));
    meter.installSupplier({ entityId: SUPPLIER, dsPublicKey: supplierDs.publicKey, kaPublicKey: supplierKa.publicKey });
    expect(meter.floor(SUPPLIER)).toBeUndefined();
  });

  it('a MAC made with the wrong ACB key, and a frame for another meter', async () => {
    const meter = newMeter();
    const wrongAcb = p256();
    expect(meter.receive(await disconnectFrame(meter, next(), supplierDs.privateKey, wrongAcb.privateKey))).toMatchObject({ accepted: false, reason: 'mac-invalid' });
    // a MAC for this meter's key but with the ACB's KA private key swapped for the supplier's
    expect(meter.receive(await disconnectFrame(meter, next(), supplierDs.privateKey, supplierKa.privateKey))).toMatchObject({ accepted: false, reason: 'mac-invalid' });
    const other = newMeter();
    expect(meter.receive(await disconnectFrame(other))).toMatchObject({ accepted: false, reason: 'mac-invalid' });
    expect(meter.floor(SUPPLIER)).toBeUndefined();
  });

  it('a bare signed pre-command (no ACB MAC) and a response sent to it', async () => {
    const meter = newMeter();
    expect(meter.receive(await signPreCommand(disconnect(next()), supplierDs.privateKey)).reason).toBe('malformed');
    const r = meter.receive(readFrame(meter));
    accepted(r);
    expect(meter.receive(r.response).reason).toBe('not-a-command');
  });
});

describe('the library rejects a tampered response (docs/domain.md §4)', () => {
  it('signed response: any flipped bit in the signed range or the signature fails verifySignature', async () => {
    const meter = newMeter();
    const r = meter.receive(await disconnectFrame(meter));
    accepted(r);
    const m = parseMessage(r.response);
    let checked = 0;
    for (let bit = 8; bit < r.response.length * 8; bit += 3) {
      let t: GbcsMessage;
      try {
        t = parseMessage(flipBit(r.response, bit));
      } catch (e) {
        expect(isSmkiError(e, 'ERR_GBCS_MALFORMED')).toBe(true);
        continue;
      }
      expect(verifySignature(t, meter.dsPublicKey), `bit ${bit}`).toBe(false);
      checked++;
    }
    expect(checked).toBeGreaterThan(r.response.length * 2);
    // a tampered sensitive payload does not decrypt
    const data = sensitiveOf(m);
    for (const at of [0, 5, data.length - 1]) {
      const bad = data.slice();
      bad[at] = (bad[at] as number) ^ 0x01;
      expectCode(() => decryptPayload(m, bad, { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey }), at === 0 ? 'ERR_GBCS_MALFORMED' : 'ERR_GBCS_DECRYPT_FAILED');
    }
    for (let at = 5; at < data.length; at++) {
      const bad = data.slice();
      bad[at] = (bad[at] as number) ^ 0x80;
      expectCode(() => decryptPayload(m, bad, { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey }), 'ERR_GBCS_DECRYPT_FAILED');
    }
    // the wrong keys: the ACB's KA key instead of the supplier's, the device DS key instead of its KA key
    expectCode(() => decryptPayload(m, data, { privateKey: acbKa.privateKey, publicKey: meter.kaPublicKey }), 'ERR_GBCS_DECRYPT_FAILED');
    expectCode(() => decryptPayload(m, data, { privateKey: supplierKa.privateKey, publicKey: meter.dsPublicKey }), 'ERR_GBCS_DECRYPT_FAILED');
    // the payload moved to a message with another counter (the key depends on it)
    const moved = parseMessage(buildMessage({ ...m, originatorCounter: m.originatorCounter + 1n }));
    expectCode(() => decryptPayload(moved, data, { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey }), 'ERR_GBCS_DECRYPT_FAILED');
  });

  it('MAC-d response: any flipped bit in the APDU or the MAC fails verifyMac', () => {
    const meter = newMeter();
    const r = meter.receive(readFrame(meter));
    accepted(r);
    const m = parseMessage(r.response);
    const keys = { privateKey: supplierKa.privateKey, publicKey: meter.kaPublicKey };
    let checked = 0;
    for (let bit = m.apduRange.start * 8; bit < r.response.length * 8; bit++) {
      let t: GbcsMessage;
      try {
        t = parseMessage(flipBit(r.response, bit));
      } catch (e) {
        expect(isSmkiError(e, 'ERR_GBCS_MALFORMED')).toBe(true);
        continue;
      }
      expect(verifyMac(t, keys), `bit ${bit}`).toBe(false);
      checked++;
    }
    expect(checked).toBeGreaterThan((r.response.length - m.apduRange.start) * 6);
    expect(verifyMac(m, keys)).toBe(true);
  });
});
