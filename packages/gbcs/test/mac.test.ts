// docs/domain.md §3 (general-ciphering frame) and §4 (ACB MAC): the library's MAC on parsed messages against
// an independent computation written here with plain node:crypto, and the async (HSM) forms.
import { createCipheriv, createHash, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, isSmkiError } from '@smki/core';
import {
  buildMessage,
  computeMac,
  computeMacAsync,
  parseMessage,
  verifyMac,
  verifyMacAsync,
  wrapWithMac,
  wrapWithMacAsync,
} from '../src/index.js';

const SUPPLIER = '90B3D51F30010000';
const METER = '00DB1234567890A0';
const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const acb = ec();
const meter = ec();
const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));

/** The MAC as docs/domain.md §4 states it, written independently of the library. */
function independentMac(apdu: Uint8Array, priv: KeyObject, pub: KeyObject, counter: bigint, mode: number): Buffer {
  const z = diffieHellman({ privateKey: priv, publicKey: pub });
  const c = Buffer.alloc(8);
  c.writeBigUInt64BE(counter);
  const otherInfo = Buffer.concat([hex('60857406080300'), hex(SUPPLIER), Buffer.of(0x09, mode), c, hex(METER)]);
  const k = createHash('sha256').update(Buffer.of(0, 0, 0, 1)).update(z).update(otherInfo).digest().subarray(0, 16);
  const g = createCipheriv('aes-128-gcm', k, Buffer.concat([hex(SUPPLIER), Buffer.alloc(4)]), { authTagLength: 12 });
  g.setAAD(Buffer.concat([hex('110000000000'), apdu]));
  g.final();
  return g.getAuthTag();
}

const apdu = buildMessage({
  cra: 'command', originatorCounter: 1000n, originator: SUPPLIER, recipient: METER, messageCode: 0x0050,
  payload: hex('D9 20 0003E8 00 01 03 0009 00000A006AFF 01 01 12 0034'), signature: new Uint8Array(64).fill(7),
});

describe('the ACB MAC', () => {
  it('equals the independent computation, and the frame is DD 00×6 ‖ len ‖ 11 00 00 00 00 ‖ APDU ‖ MAC', () => {
    const frame = wrapWithMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey });
    const mac = independentMac(apdu, acb.privateKey, meter.publicKey, 1000n, 1);
    const inner = Buffer.concat([hex('1100000000'), apdu, mac]);
    expect(Buffer.from(frame).equals(Buffer.concat([hex('DD000000000000'), Buffer.of(0x81, inner.length), inner]))).toBe(true);
    expect(Buffer.from(computeMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey })).equals(mac)).toBe(true);
  });

  it('the meter side verifies with its own private key and the ACB public key; any flipped bit fails', () => {
    const frame = wrapWithMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey });
    const device = { privateKey: meter.privateKey, publicKey: acb.publicKey };
    expect(verifyMac(frame, device)).toBe(true);
    const m = parseMessage(frame);
    for (let i = m.apduRange.start; i < frame.length; i += 7) {
      const bad = new Uint8Array(frame);
      bad[i] = (bad[i] as number) ^ 0x01;
      let ok: boolean;
      try {
        ok = verifyMac(bad, device);
      } catch (e) {
        if (!isSmkiError(e, 'ERR_GBCS_MALFORMED')) throw e;
        ok = false;
      }
      expect(ok, `bit flipped at ${i}`).toBe(false);
    }
    expect(verifyMac(frame, { privateKey: ec().privateKey, publicKey: acb.publicKey })).toBe(false);
  });

  it('an HSM-held key (core KeyAgreement) gives the same MAC; async verify agrees', async () => {
    const ka = createKeyAgreement(acb.privateKey);
    const sync = wrapWithMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey });
    const viaKa = await wrapWithMacAsync(apdu, { keyAgreement: ka, publicKey: meter.publicKey });
    expect(Buffer.from(viaKa).equals(Buffer.from(sync))).toBe(true);
    expect(Buffer.from(await computeMacAsync(apdu, { keyAgreement: ka, publicKey: meter.publicKey })).equals(Buffer.from(computeMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey })))).toBe(true);
    expect(await verifyMacAsync(sync, { keyAgreement: createKeyAgreement(meter.privateKey), publicKey: acb.publicKey })).toBe(true);
  });

  it('refuses to verify a frame without a MAC and to wrap a frame twice', () => {
    expect(() => verifyMac(apdu, { privateKey: meter.privateKey, publicKey: acb.publicKey })).toThrow(expect.objectContaining({ code: 'ERR_GBCS_NOT_CIPHERED' }));
    const frame = wrapWithMac(apdu, { privateKey: acb.privateKey, publicKey: meter.publicKey });
    expect(() => wrapWithMac(frame, { privateKey: acb.privateKey, publicKey: meter.publicKey })).toThrow(expect.objectContaining({ code: 'ERR_GBCS_NOT_PRE_COMMAND' }));
  });

  it('uses the CRA of the APDU as the KDF mode (a response MAC is mode 02)', () => {
    const response = buildMessage({ cra: 'response', originatorCounter: 5n, originator: SUPPLIER, recipient: METER, messageCode: 0x0050, payload: new Uint8Array([1]), signatureField: 'empty' });
    const mac = computeMac(response, { privateKey: acb.privateKey, publicKey: meter.publicKey });
    expect(Buffer.from(mac).equals(independentMac(response, acb.privateKey, meter.publicKey, 5n, 2))).toBe(true);
    expect(Buffer.from(mac).equals(independentMac(response, acb.privateKey, meter.publicKey, 5n, 1))).toBe(false);
  });
});
