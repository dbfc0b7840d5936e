// docs/domain.md §4 (the GBCS cryptography); NIST SP 800-56A Rev. 3 §5.8.2.1 (one-step KDF and its
// OtherInfo), NIST SP 800-38D §7.1–7.2 (GCM, 96-bit tags). Cases that pin down the byte-level
// crypto module one rule at a time: each refusal with its code and its whole context (offset,
// detail), numeric KDF modes, and the key-agreement guards. Written where mutation testing
// (StrykerJS) showed that no other test told the rules apart.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, fromHex, type KeyAgreement, type SmkiError } from '@smki/core';
import {
  assertMacBytes,
  computeMacBytes,
  decryptSensitivePayload,
  deriveKey,
  deriveKeyAsync,
  encryptSensitivePayload,
  gcmIv,
  gcmTag,
  kdf,
  macAad,
  otherInfo,
  type OtherInfoFields,
} from '../src/crypto.js';

const ORIG = '90B3D51F30010000';
const RECIP = '00DB1234567890A0';
const FIELDS: OtherInfoFields = { originator: ORIG, recipient: RECIP, counter: 1000n, mode: 'command' };
const KEY = fromHex('000102030405060708090A0B0C0D0E0F');
const IV = fromHex('90B3D51F3001000000000000');
const Z = fromHex('ED342441DF01551A6BEAFF3B54ADC981F4C6A7E71DFF4C3E1CC80B3C9F4E5AC0');
const acb = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** The SmkiError a call throws (fails the test if it returns or throws something else). */
function thrown(f: () => unknown): SmkiError {
  try {
    f();
  } catch (e) {
    expect(e, String(e)).toHaveProperty('code');
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}
async function rejected(f: () => Promise<unknown>): Promise<SmkiError> {
  try {
    await f();
  } catch (e) {
    expect(e, String(e)).toHaveProperty('code');
    return e as SmkiError;
  }
  throw new Error('expected a rejection');
}
/** Expect exactly this code and this context. */
function refuses(f: () => unknown, code: string, context: object): void {
  const e = thrown(f);
  expect({ code: e.code, context: e.context }).toEqual({ code, context });
}

describe('OtherInfo (SP 800-56A §5.8.2.1): each field refused with its own detail', () => {
  it.each([
    ['originator of 7 bytes', { originator: new Uint8Array(7) }, 'originator: 7 bytes'],
    ['recipient of 9 bytes', { recipient: new Uint8Array(9) }, 'recipient: 9 bytes'],
    ['originator not a string or bytes', { originator: 42 }, 'originator: number'],
    ['recipient not a string or bytes', { recipient: null }, 'recipient: object'],
    ['mode 5', { mode: 5 }, 'mode: 5'],
    ['mode 0', { mode: 0 }, 'mode: 0'],
    ['an inherited property name as mode', { mode: 'toString' }, 'mode: toString'],
    // Object.hasOwn would turn these into the key 'command': only a real string names a mode
    ['an array holding a mode name', { mode: ['command'] }, 'mode: command'],
    ['an object whose toString is a mode name', { mode: { toString: () => 'alert' } }, 'mode: alert'],
    ['a long mode, cut to 32 characters in the detail', { mode: 'x'.repeat(40) }, `mode: ${'x'.repeat(32)}`],
    ['counter as a number', { counter: 1000 }, 'counter: number'],
    ['counter below 0', { counter: -1n }, 'counter: -1'],
    ['counter of 2^64', { counter: 1n << 64n }, 'counter: 18446744073709551616'],
  ])('%s → ERR_GBCS_INVALID_FIELD', (_name, patch, detail) => {
    refuses(() => otherInfo({ ...FIELDS, ...(patch as object) } as OtherInfoFields), 'ERR_GBCS_INVALID_FIELD', { detail });
  });

  it('numeric modes 1–4 are the same octet as their names, at offset 16', () => {
    const names = ['command', 'response', 'alert', 'payload'] as const;
    names.forEach((name, i) => {
      const n = (i + 1) as 1 | 2 | 3 | 4;
      const byNumber = otherInfo({ ...FIELDS, mode: n });
      expect(byNumber[16]).toBe(n);
      expect(Buffer.from(byNumber).equals(Buffer.from(otherInfo({ ...FIELDS, mode: name })))).toBe(true);
    });
  });

  it('the counter bounds are inclusive: 0 and 2^64 − 1 are written big-endian', () => {
    expect(Buffer.from(otherInfo({ ...FIELDS, counter: 0n }).subarray(17, 25)).toString('hex')).toBe('0000000000000000');
    expect(Buffer.from(otherInfo({ ...FIELDS, counter: (1n << 64n) - 1n }).subarray(17, 25)).toString('hex')).toBe('ffffffffffffffff');
  });
});

describe('kdf: inputs are bytes, Z is 32 bytes', () => {
  const info = otherInfo(FIELDS);
  it.each([
    ['Z null', () => kdf(null as never, info), { detail: 'Z: null' }],
    ['Z a string', () => kdf('00'.repeat(32) as never, info), { detail: 'Z: string' }],
    ['OtherInfo a string (hashing it would be accepted by node)', () => kdf(Z, 'info' as never), { detail: 'OtherInfo: string' }],
    ['Z of 31 bytes', () => kdf(Z.subarray(1), info), { detail: 'length 31' }],
    ['Z of 33 bytes', () => kdf(new Uint8Array(33), info), { detail: 'length 33' }],
  ])('%s → ERR_INVALID_ARGUMENT', (_name, f, context) => {
    refuses(f, 'ERR_INVALID_ARGUMENT', context);
  });
});

describe('AES-128-GCM tag: key, IV, AAD and plaintext checked with their details', () => {
  const aad = Uint8Array.of(1, 2, 3);
  it.each([
    ['a 15-byte key', () => gcmTag(KEY.subarray(1), IV, aad), 'ERR_KEY_INVALID', { detail: 'length 15' }],
    ['a key as text', () => gcmTag('k'.repeat(16) as never, IV, aad), 'ERR_KEY_INVALID', { detail: 'string' }],
    ['an IV as a 12-character string (node would take it)', () => gcmTag(KEY, 'i'.repeat(12) as never, aad), 'ERR_INVALID_ARGUMENT', { detail: 'IV: string' }],
    ['AAD as a string', () => gcmTag(KEY, IV, 'aad' as never), 'ERR_INVALID_ARGUMENT', { detail: 'AAD: string' }],
    ['plaintext as a string', () => gcmTag(KEY, IV, aad, 'p' as never), 'ERR_INVALID_ARGUMENT', { detail: 'plaintext: string' }],
    ['an 11-byte IV', () => gcmTag(KEY, IV.subarray(1), aad), 'ERR_INVALID_ARGUMENT', { detail: 'length 11' }],
    ['an IV from a 7-byte title', () => gcmIv(new Uint8Array(7)), 'ERR_GBCS_INVALID_FIELD', { detail: 'originator: 7 bytes' }],
  ])('%s', (_name, f, code, context) => {
    refuses(f, code, context);
  });

  it('a non-empty plaintext changes the tag (GCM-AE over it), an empty one is GMAC', () => {
    const gmac = gcmTag(KEY, IV, aad);
    expect(Buffer.from(gcmTag(KEY, IV, aad, new Uint8Array(0))).equals(Buffer.from(gmac))).toBe(true);
    expect(Buffer.from(gcmTag(KEY, IV, aad, Uint8Array.of(0))).equals(Buffer.from(gmac))).toBe(false);
  });
});

describe('macAad: the whole general-signing APDU, which starts DF', () => {
  it('not bytes → ERR_INVALID_ARGUMENT (APDU); empty or not DF → ERR_GBCS_MALFORMED at offset 0', () => {
    refuses(() => macAad('DF09' as never), 'ERR_INVALID_ARGUMENT', { detail: 'APDU: string' });
    refuses(() => macAad(new Uint8Array(0)), 'ERR_GBCS_MALFORMED', { offset: 0 });
    refuses(() => macAad(Uint8Array.of(0xdd, 0x09)), 'ERR_GBCS_MALFORMED', { offset: 0 });
    expect(Buffer.from(macAad(Uint8Array.of(0xdf))).toString('hex')).toBe('110000000000df');
  });

  it('assertMacBytes reports the length of a MAC that is not 12 bytes, or that it is missing', () => {
    const opts = { key: KEY, originator: ORIG, aad: macAad(Uint8Array.of(0xdf)) };
    const mac = computeMacBytes(opts);
    expect(() => assertMacBytes({ ...opts, mac })).not.toThrow();
    refuses(() => assertMacBytes({ ...opts, mac: mac.subarray(1) }), 'ERR_GBCS_MAC_INVALID', { detail: 'MAC length 11' });
    refuses(() => assertMacBytes({ ...opts, mac: undefined as never }), 'ERR_GBCS_MAC_INVALID', { detail: 'MAC missing' });
    const flipped = new Uint8Array(mac);
    flipped[11] = (flipped[11] as number) ^ 1;
    refuses(() => assertMacBytes({ ...opts, mac: flipped }), 'ERR_GBCS_MAC_INVALID', { detail: 'MAC length 12' });
  });
});

describe('deriveKeyAsync: what a KeyAgreement is, and what it must return', () => {
  const base = { ...FIELDS, publicKey: device.publicKey };
  it.each([
    ['null', null, 'object'],
    ['undefined', undefined, 'undefined'],
    ['a string', 'hsm', 'string'],
    ['an object without deriveSharedSecret', {}, 'object'],
    ['an object whose deriveSharedSecret is not a function', { deriveSharedSecret: 'yes' }, 'object'],
    ['a function carrying deriveSharedSecret', Object.assign(() => undefined, { deriveSharedSecret: async () => new Uint8Array(32) }), 'function'],
  ])('%s → ERR_INVALID_ARGUMENT', async (_name, keyAgreement, detail) => {
    const e = await rejected(() => deriveKeyAsync({ ...base, keyAgreement: keyAgreement as never }));
    expect({ code: e.code, context: e.context }).toEqual({ code: 'ERR_INVALID_ARGUMENT', context: { detail } });
  });

  it('a shared secret that is not 32 bytes → ERR_KEY_INVALID with what came back; bytes returned are zeroed', async () => {
    const short = new Uint8Array(31).fill(0xaa);
    const returning = (z: unknown): KeyAgreement => ({ publicKey: new Uint8Array(65), deriveSharedSecret: async () => z as Uint8Array });
    let e = await rejected(() => deriveKeyAsync({ ...base, keyAgreement: returning(short) }));
    expect({ code: e.code, context: e.context }).toEqual({ code: 'ERR_KEY_INVALID', context: { detail: 'length 31' } });
    expect(short.every((b) => b === 0)).toBe(true);
    for (const [z, detail] of [[null, 'object'], ['00'.repeat(32), 'string'], [undefined, 'undefined']] as const) {
      e = await rejected(() => deriveKeyAsync({ ...base, keyAgreement: returning(z) }));
      expect({ code: e.code, context: e.context }).toEqual({ code: 'ERR_KEY_INVALID', context: { detail } });
    }
  });

  it('agrees with deriveKey, and the 32-byte Z it was given is zeroed after', async () => {
    const real = createKeyAgreement(acb.privateKey);
    let seen: Uint8Array | undefined;
    const spy: KeyAgreement = { publicKey: real.publicKey, deriveSharedSecret: async (p) => (seen = await real.deriveSharedSecret(p)) };
    const k = await deriveKeyAsync({ ...base, keyAgreement: spy });
    expect(Buffer.from(k).equals(Buffer.from(deriveKey({ ...base, privateKey: acb.privateKey })))).toBe(true);
    expect(seen?.length).toBe(32);
    expect(seen?.every((b) => b === 0)).toBe(true);
  });
});

describe('sensitive payloads: every refusal with its offset and detail', () => {
  const data = encryptSensitivePayload({ key: KEY, originator: RECIP, plaintext: Uint8Array.of(1, 2, 3) });
  const decrypt = (d: Uint8Array) => () => decryptSensitivePayload({ key: KEY, originator: RECIP, data: d });

  it('round trip, and the layout 31 ‖ 00000000 ‖ ciphertext ‖ tag (12)', () => {
    expect(data.length).toBe(1 + 4 + 3 + 12);
    expect(Buffer.from(data.subarray(0, 5)).toString('hex')).toBe('3100000000');
    expect([...decrypt(data)()]).toEqual([1, 2, 3]);
  });

  it.each([
    ['data as a string', 'ERR_INVALID_ARGUMENT', () => decryptSensitivePayload({ key: KEY, originator: RECIP, data: 'x'.repeat(17) as never }), { detail: 'data: string' }],
    ['16 bytes', 'ERR_GBCS_MALFORMED', decrypt(data.subarray(0, 16)), { offset: 16, detail: 'length 16' }],
    ['no security control 31', 'ERR_GBCS_MALFORMED', decrypt(Uint8Array.from([0x30, ...data.subarray(1)])), { offset: 0 }],
    ['invocation counter 1', 'ERR_GBCS_MALFORMED', decrypt(Uint8Array.from([...data.subarray(0, 4), 1, ...data.subarray(5)])), { offset: 1, detail: 'invocation counter 1' }],
    ['a plaintext as a string (encrypt)', 'ERR_INVALID_ARGUMENT', () => encryptSensitivePayload({ key: KEY, originator: RECIP, plaintext: 'p' as never }), { detail: 'plaintext: string' }],
  ])('%s → %s', (_name, code, f, context) => {
    refuses(f, code, context);
  });

  it('a tag that does not verify → ERR_GBCS_DECRYPT_FAILED at the tag offset, with the GCM failure as cause', () => {
    for (const at of [5, data.length - 1]) {
      const bad = new Uint8Array(data);
      bad[at] = (bad[at] as number) ^ 0x80;
      const e = thrown(decrypt(bad));
      expect({ code: e.code, context: e.context }).toEqual({ code: 'ERR_GBCS_DECRYPT_FAILED', context: { offset: data.length - 12 } });
      expect(e.cause).toBeInstanceOf(Error);
    }
  });
});
