// docs/domain.md §4 (the User signature of the GBCS general-signing APDU: ECDSA P-256/SHA-256,
// FIPS 186-5 §6.4, raw r‖s as IEEE P1363). Cases that pin down the signature module's guards one
// rule at a time, written where mutation testing (StrykerJS) showed that no other test told them
// apart.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeySigner, publicKeyToRaw, type SmkiError } from '@smki/core';
import { buildMessage, parseMessage, signPreCommand, verifySignature } from '../src/index.js';

const SUPPLIER = '90B3D51F30010000';
const METER = '00DB1234567890A0';
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const fields = {
  cra: 'command', originatorCounter: 9n, originator: SUPPLIER, recipient: METER, messageCode: 0x0050,
  payload: Uint8Array.of(0xd9, 0x20, 0x00, 0x00, 0x09),
} as const;
const PRE = buildMessage({ ...fields, signatureField: 'empty' });

async function rejected(p: () => Promise<unknown>): Promise<SmkiError> {
  try {
    await p();
  } catch (e) {
    return e as SmkiError;
  }
  throw new Error('expected a rejection');
}

describe('verifySignature', () => {
  it('is false for a message without a signature, before the key is even looked at', () => {
    for (const field of ['absent', 'empty'] as const) {
      const unsigned = buildMessage({ ...fields, signatureField: field });
      expect(verifySignature(unsigned, keys.publicKey)).toBe(false);
      // No signature: nothing to verify, so not even a key that would be refused is read.
      expect(verifySignature(unsigned, Uint8Array.of(1, 2, 3))).toBe(false);
    }
  });
});

describe('signPreCommand refusals carry their offsets', () => {
  it('not a general-signing APDU: ERR_GBCS_NOT_PRE_COMMAND at offset 0', async () => {
    for (const input of [new Uint8Array(0), Uint8Array.of(0xdd, 0, 0), 'DF09' as unknown as Uint8Array]) {
      const e = await rejected(() => signPreCommand(input, keys.privateKey));
      expect(e.code).toBe('ERR_GBCS_NOT_PRE_COMMAND');
      expect(e.context).toEqual({ offset: 0 });
    }
  });

  it('a response or an alert: ERR_GBCS_NOT_PRE_COMMAND at offset 2 (the CRA flag)', async () => {
    for (const cra of ['response', 'alert'] as const) {
      const e = await rejected(() => signPreCommand(buildMessage({ ...fields, cra }), keys.privateKey));
      expect(e.code).toBe('ERR_GBCS_NOT_PRE_COMMAND');
      expect(e.context).toEqual({ offset: 2 });
    }
  });

  it('already signed: ERR_GBCS_ALREADY_SIGNED at the end of the signed range', async () => {
    const signed = await signPreCommand(PRE, keys.privateKey);
    const e = await rejected(() => signPreCommand(signed, keys.privateKey));
    expect(e.code).toBe('ERR_GBCS_ALREADY_SIGNED');
    expect(e.context).toEqual({ offset: parseMessage(signed).signedRange.end });
    expect(parseMessage(signed).signedRange.end).toBe(signed.length - 65);
  });
});

describe('what counts as a Signer (an object with sign() and a Uint8Array publicKey); anything else is a key', () => {
  const sign = createKeySigner(keys.privateKey).sign;
  const publicKey = publicKeyToRaw(keys.publicKey);

  it('null is not a key: ERR_KEY_INVALID', async () => {
    expect((await rejected(() => signPreCommand(PRE, null as never))).code).toBe('ERR_KEY_INVALID');
  });

  it('an object with a publicKey but no sign() is not a Signer: ERR_KEY_INVALID', async () => {
    expect((await rejected(() => signPreCommand(PRE, { publicKey } as never))).code).toBe('ERR_KEY_INVALID');
    expect((await rejected(() => signPreCommand(PRE, { publicKey, sign: 'yes' } as never))).code).toBe('ERR_KEY_INVALID');
  });

  it('an object with sign() but no Uint8Array publicKey is not a Signer: ERR_KEY_INVALID', async () => {
    expect((await rejected(() => signPreCommand(PRE, { sign } as never))).code).toBe('ERR_KEY_INVALID');
  });

  it('a function carrying sign and publicKey is not a Signer: ERR_KEY_INVALID', async () => {
    const fn = Object.assign(() => undefined, { sign, publicKey });
    expect((await rejected(() => signPreCommand(PRE, fn as never))).code).toBe('ERR_KEY_INVALID');
  });

  it('a real Signer signs: the empty signature field is dropped and 40 ‖ r ‖ s appended', async () => {
    const out = await signPreCommand(PRE, { sign, publicKey });
    expect(out.length).toBe(PRE.length - 1 + 65);
    expect(Buffer.from(out.subarray(0, PRE.length - 1)).equals(Buffer.from(PRE.subarray(0, -1)))).toBe(true);
    expect(out[PRE.length - 1]).toBe(0x40);
    expect(verifySignature(out, keys.publicKey)).toBe(true);
  });
});
