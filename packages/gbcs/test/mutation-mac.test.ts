// docs/domain.md §3 (the GBCS general-ciphering frame) and §4 (the Access Control Broker MAC);
// NIST SP 800-38D §7.2 (tag check). Cases that pin down the MAC module's guards one rule at a
// time, written where mutation testing (StrykerJS) showed that no other test told them apart.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, type SmkiError } from '@smki/core';
import {
  buildMessage,
  computeMac,
  parseMessage,
  verifyMac,
  verifyMacAsync,
  wrapWithMac,
  wrapWithMacAsync,
  type GbcsMessage,
} from '../src/index.js';

const SUPPLIER = '90B3D51F30010000';
const METER = '00DB1234567890A0';
const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const acb = ec();
const meter = ec();
const toAcb = { privateKey: acb.privateKey, publicKey: meter.publicKey };
const toMeter = { privateKey: meter.privateKey, publicKey: acb.publicKey };

const apdu = buildMessage({
  cra: 'command', originatorCounter: 77n, originator: SUPPLIER, recipient: METER, messageCode: 0x0050,
  payload: Uint8Array.of(0xd9, 0x20, 0x00), signatureField: 'empty',
});
const frame = wrapWithMac(apdu, toAcb);

/** The SmkiError a call throws (fails the test if it returns). */
function thrown(f: () => unknown): SmkiError {
  try {
    f();
  } catch (e) {
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}
async function rejected(p: Promise<unknown>): Promise<SmkiError> {
  try {
    await p;
  } catch (e) {
    return e as SmkiError;
  }
  throw new Error('expected a rejection');
}

describe('verifyMac refuses anything that is not a general-ciphering frame with a MAC', () => {
  const parsed = parseMessage(frame);
  // A caller may hand over a message object rather than bytes; each half of the guard stands alone.
  const cipheredWithoutMac = { ...parsed, mac: undefined } as unknown as GbcsMessage;
  const signedWithMac = { ...parsed, frame: 'signed' } as GbcsMessage;

  it('a bare APDU: ERR_GBCS_NOT_CIPHERED at offset 0', async () => {
    for (const e of [thrown(() => verifyMac(apdu, toMeter)), await rejected(verifyMacAsync(apdu, { keyAgreement: createKeyAgreement(meter.privateKey), publicKey: acb.publicKey }))]) {
      expect(e.code).toBe('ERR_GBCS_NOT_CIPHERED');
      expect(e.context).toEqual({ offset: 0 });
    }
  });

  it('a message that says ciphered but carries no MAC is refused, not answered false', async () => {
    expect(thrown(() => verifyMac(cipheredWithoutMac, toMeter)).code).toBe('ERR_GBCS_NOT_CIPHERED');
    const e = await rejected(verifyMacAsync(cipheredWithoutMac, { keyAgreement: createKeyAgreement(meter.privateKey), publicKey: acb.publicKey }));
    expect(e.code).toBe('ERR_GBCS_NOT_CIPHERED');
  });

  it('a message that says signed is refused even with a (valid) MAC attached', async () => {
    expect(verifyMac(parsed, toMeter)).toBe(true);
    expect(thrown(() => verifyMac(signedWithMac, toMeter)).code).toBe('ERR_GBCS_NOT_CIPHERED');
    const e = await rejected(verifyMacAsync(signedWithMac, { keyAgreement: createKeyAgreement(meter.privateKey), publicKey: acb.publicKey }));
    expect(e.code).toBe('ERR_GBCS_NOT_CIPHERED');
  });
});

describe('wrapWithMac takes a general-signing APDU only', () => {
  it('a general-ciphering frame: ERR_GBCS_NOT_PRE_COMMAND at offset 0 (sync and async)', async () => {
    const sync = thrown(() => wrapWithMac(frame, toAcb));
    const asyn = await rejected(wrapWithMacAsync(frame, { keyAgreement: createKeyAgreement(acb.privateKey), publicKey: meter.publicKey }));
    for (const e of [sync, asyn]) {
      expect(e.code).toBe('ERR_GBCS_NOT_PRE_COMMAND');
      expect(e.context).toEqual({ offset: 0 });
    }
  });

  it('keeps the APDU bytes as they are and appends the MAC computed over them', () => {
    const m = parseMessage(frame);
    expect(Buffer.from(m.bytes.subarray(m.apduRange.start, m.apduRange.end)).equals(Buffer.from(apdu))).toBe(true);
    expect(Buffer.from(m.mac as Uint8Array).equals(Buffer.from(computeMac(apdu, toAcb)))).toBe(true);
  });
});
