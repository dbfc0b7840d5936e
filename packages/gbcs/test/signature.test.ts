// docs/domain.md §4 (User signature): ECDSA P-256/SHA-256 over the APDU bytes after the DF tag up to the last
// content byte; signing a pre-command = check it starts with DF and is unsigned, drop a trailing 00,
// append 40 ‖ r ‖ s; high-S is never rejected. The signed bytes are sliced here from the hex by
// hand and checked with node:crypto directly, independently of the codec's ranges.
import { createPublicKey, generateKeyPairSync, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, publicKeyToRaw, SmkiError, type Signer } from '@smki/core';
import { certificateToPem, createHierarchy, issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { buildGeneralCiphering, buildMessage, parseMessage, signedBytes, type GbcsFields } from '../src/codec.js';
import { signPreCommand, verifySignature, type VerificationKeyInput } from '../src/signature.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n; // P-256 group order

const ORIGINATOR = '90B3D51F30010000';
const RECIPIENT = '00DB1234567890A0';
const DISCONNECT = 'D9 20 0003E8 00 01 03 0009 00000A006AFF 01 01 12 0034';
// docs/domain.md §3/§5: remote disconnect pre-command, counter 1000, code 0050, ending 00 (56 bytes; signed part 1..55)
const PRE_00 = hex(`DF 09 01 00000000000003E8 08 ${ORIGINATOR} 08 ${RECIPIENT} 00 02 0050 15 ${DISCONNECT} 00`);
// the same pre-command ending right after the content (55 bytes)
const PRE_ABSENT = PRE_00.subarray(0, 55);
// the bytes a signature covers, sliced from the hex by hand: after DF (2 hex digits) to the content end
const SIGNED_HEX = toHex(PRE_00).slice(2, 110);

function errorOf(f: () => unknown): SmkiError {
  try {
    f();
  } catch (e) {
    if (e instanceof SmkiError) return e;
    throw new Error(`expected a SmkiError, got ${String(e)}`);
  }
  throw new Error('expected a SmkiError, nothing was thrown');
}
async function asyncErrorOf(f: () => Promise<unknown>): Promise<SmkiError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof SmkiError) return e;
    throw new Error(`expected a SmkiError, got ${String(e)}`);
  }
  throw new Error('expected a SmkiError, nothing was thrown');
}
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

const keys = p256();
const other = p256();
let cert: SmkiCertificate;
let otherCert: SmkiCertificate;
let signedFrom00: Uint8Array;

beforeAll(async () => {
  const now = () => new Date('2025-01-01T00:00:00Z');
  const h = await createHierarchy({ now });
  const issue = (publicKey: KeyObject) =>
    issueOrganisationCertificate({ issuer: h.organisationCa, publicKey, role: 2, entityId: ORIGINATOR, keyUsage: 'digitalSignature', now });
  cert = await issue(keys.publicKey);
  otherCert = await issue(other.publicKey);
  signedFrom00 = await signPreCommand(PRE_00, keys.privateKey);
});

describe('docs/domain.md §4: signPreCommand', () => {
  it.each([
    ['ending 00', PRE_00],
    ['ending after the content', PRE_ABSENT],
  ])('pre-command %s: output = input without the trailing 00 ‖ 40 ‖ r‖s, over exactly the signed bytes', async (_name, pre) => {
    const before = toHex(pre);
    const out = await signPreCommand(pre, keys.privateKey);
    expect(toHex(pre)).toBe(before); // the input is not modified
    expect(out.length).toBe(55 + 1 + 64);
    expect(toHex(out.subarray(0, 55))).toBe(toHex(PRE_00).slice(0, 110));
    expect(out[55]).toBe(0x40);
    const sig = out.subarray(56);
    // independent check: node:crypto over the bytes sliced from the hex by hand
    expect(nodeVerify('sha256', hex(SIGNED_HEX), { key: keys.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    // and the codec agrees on what is signed
    const m = parseMessage(out);
    expect(toHex(signedBytes(m))).toBe(SIGNED_HEX);
    expect(m.signatureField).toBe('present');
    expect(toHex(m.signature as Uint8Array)).toBe(toHex(sig));
    expect(verifySignature(out, keys.publicKey)).toBe(true);
  });

  it('works with a core Signer (createKeySigner), a KeyObject, PEM and PKCS#8 DER', async () => {
    const signer = createKeySigner(keys.privateKey);
    const pem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const der = Uint8Array.from(keys.privateKey.export({ type: 'pkcs8', format: 'der' }));
    for (const s of [signer, keys.privateKey, pem, der]) {
      const out = await signPreCommand(PRE_00, s);
      expect(toHex(out.subarray(0, 56))).toBe(`${toHex(PRE_00).slice(0, 110)}40`);
      expect(verifySignature(out, keys.publicKey)).toBe(true);
      expect(nodeVerify('sha256', hex(SIGNED_HEX), { key: keys.publicKey, dsaEncoding: 'ieee-p1363' }, out.subarray(56))).toBe(true);
    }
  });

  it('hands the Signer exactly the signed bytes and appends what it returns', async () => {
    const seen: string[] = [];
    const fixed = Uint8Array.from({ length: 64 }, (_, i) => i);
    const spy: Signer = {
      publicKey: publicKeyToRaw(keys.publicKey),
      sign: async (message) => {
        seen.push(toHex(message));
        return fixed;
      },
    };
    const out = await signPreCommand(PRE_00, spy);
    expect(seen).toEqual([SIGNED_HEX]);
    expect(toHex(out)).toBe(`${toHex(PRE_00).slice(0, 110)}40${toHex(fixed)}`);
  });

  it('signs a view into a larger buffer, and a Buffer, the same way', async () => {
    const big = new Uint8Array(PRE_00.length + 20).fill(0xee);
    big.set(PRE_00, 7);
    const view = big.subarray(7, 7 + PRE_00.length);
    const out = await signPreCommand(view, createKeySigner(keys.privateKey));
    expect(toHex(out.subarray(0, 56))).toBe(`${toHex(PRE_00).slice(0, 110)}40`);
    expect(verifySignature(out, keys.publicKey)).toBe(true);
    expect(verifySignature(await signPreCommand(Buffer.from(PRE_00), keys.privateKey), keys.publicKey)).toBe(true);
  });

  it('signs a pre-command whose other-information carries a key-agreement certificate (the signed range covers it)', async () => {
    const f: GbcsFields = {
      cra: 'command',
      originatorCounter: 2n ** 64n - 1n,
      originator: ORIGINATOR,
      recipient: RECIPIENT,
      dateTime: new Uint8Array(12).fill(0xff),
      messageCode: 0x0103,
      supplementaryRemotePartyId: RECIPIENT,
      supplementaryRemotePartyCounter: 7n,
      keyAgreementCertificate: cert.der,
      payload: new Uint8Array(300).fill(0x30),
      signatureField: 'empty',
    };
    const pre = buildMessage(f);
    const out = await signPreCommand(pre, keys.privateKey);
    expect(toHex(out.subarray(0, pre.length - 1))).toBe(toHex(pre.subarray(0, pre.length - 1)));
    expect(out[pre.length - 1]).toBe(0x40);
    expect(nodeVerify('sha256', pre.subarray(1, pre.length - 1), { key: keys.publicKey, dsaEncoding: 'ieee-p1363' }, out.subarray(pre.length))).toBe(true);
    expect(verifySignature(out, cert)).toBe(true);
  });

  it('refuses a DD frame with ERR_GBCS_NOT_PRE_COMMAND', async () => {
    const frame = buildGeneralCiphering(PRE_00, new Uint8Array(12));
    expect((await asyncErrorOf(() => signPreCommand(frame, keys.privateKey))).code).toBe('ERR_GBCS_NOT_PRE_COMMAND');
    const signedFrame = buildGeneralCiphering(signedFrom00, new Uint8Array(12));
    expect((await asyncErrorOf(() => signPreCommand(signedFrame, keys.privateKey))).code).toBe('ERR_GBCS_NOT_PRE_COMMAND');
  });

  it('refuses an already signed APDU with ERR_GBCS_ALREADY_SIGNED', async () => {
    const e = await asyncErrorOf(() => signPreCommand(signedFrom00, keys.privateKey));
    expect(e.code).toBe('ERR_GBCS_ALREADY_SIGNED');
    expect((e.context as { offset?: number }).offset).toBe(55);
  });

  it.each<[string, string, unknown]>([
    ['empty input', 'ERR_GBCS_NOT_PRE_COMMAND', new Uint8Array(0)],
    ['a DER certificate', 'ERR_GBCS_NOT_PRE_COMMAND', hex('3082010A')],
    ['random bytes', 'ERR_GBCS_NOT_PRE_COMMAND', Uint8Array.from({ length: 80 }, (_, i) => (i * 97 + 13) & 0xff)],
    ['a string', 'ERR_GBCS_NOT_PRE_COMMAND', 'DF09'],
    ['null', 'ERR_GBCS_NOT_PRE_COMMAND', null],
    ['DF alone', 'ERR_GBCS_MALFORMED', hex('DF')],
    ['DF then garbage', 'ERR_GBCS_MALFORMED', hex('DF 09 04 0000')],
    ['a pre-command cut short', 'ERR_GBCS_MALFORMED', PRE_00.subarray(0, 40)],
    ['a pre-command with a trailing byte', 'ERR_GBCS_MALFORMED', Uint8Array.from([...PRE_00, 0])],
    ['a pre-command with signature length 41', 'ERR_GBCS_MALFORMED', Uint8Array.from([...PRE_ABSENT, 0x41])],
  ])('refuses garbage: %s → %s', async (_name, code, input) => {
    expect((await asyncErrorOf(() => signPreCommand(input as Uint8Array, keys.privateKey))).code).toBe(code);
  });

  it('refuses a signer that does not return 64 bytes (ERR_SIGNATURE_ENCODING), and a non-key (ERR_KEY_INVALID)', async () => {
    const short: Signer = { publicKey: publicKeyToRaw(keys.publicKey), sign: async () => new Uint8Array(63) };
    expect((await asyncErrorOf(() => signPreCommand(PRE_00, short))).code).toBe('ERR_SIGNATURE_ENCODING');
    expect((await asyncErrorOf(() => signPreCommand(PRE_00, 'not a key'))).code).toBe('ERR_KEY_INVALID');
    expect((await asyncErrorOf(() => signPreCommand(PRE_00, keys.publicKey))).code).toBe('ERR_KEY_INVALID');
  });
});

describe('docs/domain.md §4: verifySignature', () => {
  const forms = (): Array<[string, VerificationKeyInput]> => [
    ['KeyObject', keys.publicKey],
    ['PEM public key', keys.publicKey.export({ type: 'spki', format: 'pem' }) as string],
    ['SPKI DER', Uint8Array.from(keys.publicKey.export({ type: 'spki', format: 'der' }))],
    ['raw point', publicKeyToRaw(keys.publicKey)],
    ['PEM certificate', certificateToPem(cert)],
    ['DER certificate', cert.der],
    ['parsed certificate', cert],
  ];

  it('is true with the public key in every accepted form', () => {
    for (const [name, key] of forms()) {
      expect(verifySignature(signedFrom00, key), name).toBe(true);
      expect(verifySignature(parseMessage(signedFrom00), key), name).toBe(true);
    }
  });

  it('is false with another key in every form', () => {
    const others: VerificationKeyInput[] = [
      other.publicKey,
      other.publicKey.export({ type: 'spki', format: 'pem' }) as string,
      Uint8Array.from(other.publicKey.export({ type: 'spki', format: 'der' })),
      publicKeyToRaw(other.publicKey),
      certificateToPem(otherCert),
      otherCert.der,
      otherCert,
    ];
    for (const key of others) expect(verifySignature(signedFrom00, key)).toBe(false);
  });

  it('is false after any single-bit flip in the signed range (or the bytes no longer parse), and after any flip in r‖s', () => {
    const m = parseMessage(signedFrom00);
    expect(m.signedRange).toEqual({ start: 1, end: 55 });
    let refused = 0;
    for (let i = 1; i < 55; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Uint8Array.from(signedFrom00);
        b[i] = (b[i] as number) ^ (1 << bit);
        // over the same ranges with the flipped bytes: must be false
        expect(verifySignature({ ...m, bytes: b }, keys.publicKey)).toBe(false);
        // from the bytes: false, or ERR_GBCS_MALFORMED when the flip breaks the structure; never true
        try {
          expect(verifySignature(b, keys.publicKey)).toBe(false);
        } catch (e) {
          expect(e).toBeInstanceOf(SmkiError);
          expect((e as SmkiError).code).toBe('ERR_GBCS_MALFORMED');
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(0);
    for (let i = 56; i < 120; i += 7) {
      const b = Uint8Array.from(signedFrom00);
      b[i] = (b[i] as number) ^ 0x10;
      expect(verifySignature(b, keys.publicKey)).toBe(false);
    }
  });

  it('is false for an unsigned message (absent, 00, and a DD frame around one)', () => {
    expect(verifySignature(PRE_00, keys.publicKey)).toBe(false);
    expect(verifySignature(PRE_ABSENT, keys.publicKey)).toBe(false);
    expect(verifySignature(buildGeneralCiphering(PRE_00, new Uint8Array(12)), keys.publicKey)).toBe(false);
  });

  it('accepts a high-S signature (s replaced by n − s) and its low-S twin', () => {
    const sig = signedFrom00.subarray(56);
    const s = BigInt(`0x${toHex(sig.subarray(32))}`);
    const flipped = hex((N - s).toString(16).padStart(64, '0'));
    const twin = Uint8Array.from([...signedFrom00.subarray(0, 88), ...flipped]);
    const sTwin = N - s;
    // exactly one of the two is high-S
    expect((s > N / 2n) !== (sTwin > N / 2n)).toBe(true);
    expect(nodeVerify('sha256', hex(SIGNED_HEX), { key: keys.publicKey, dsaEncoding: 'ieee-p1363' }, twin.subarray(56))).toBe(true);
    expect(verifySignature(twin, keys.publicKey)).toBe(true);
    expect(verifySignature(twin, cert)).toBe(true);
    expect(verifySignature(signedFrom00, keys.publicKey)).toBe(true);
  });

  it('verifies the signed APDU inside a DD frame; the MAC is not covered by the signature', () => {
    const frame = buildGeneralCiphering(signedFrom00, new Uint8Array(12).fill(1));
    expect(verifySignature(frame, keys.publicKey)).toBe(true);
    frame[frame.length - 1] = 0xff;
    expect(verifySignature(frame, keys.publicKey)).toBe(true);
    frame[13 + 40] = (frame[13 + 40] as number) ^ 1; // inside the signed content
    expect(verifySignature(frame, keys.publicKey)).toBe(false);
  });

  it('throws ERR_GBCS_MALFORMED for bytes that do not parse', () => {
    expect(errorOf(() => verifySignature(hex('DF09'), keys.publicKey)).code).toBe('ERR_GBCS_MALFORMED');
    expect(errorOf(() => verifySignature(Uint8Array.from([...signedFrom00, 0]), keys.publicKey)).code).toBe('ERR_GBCS_MALFORMED');
  });

  it('refuses keys it cannot use: not a key, a point off the curve, another curve', () => {
    expect(errorOf(() => verifySignature(signedFrom00, 'not a key')).code).toBe('ERR_KEY_INVALID');
    const off = publicKeyToRaw(keys.publicKey);
    off[64] = (off[64] as number) ^ 1;
    expect(errorOf(() => verifySignature(signedFrom00, off)).code).toBe('ERR_KEY_INVALID');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    expect(errorOf(() => verifySignature(signedFrom00, p384)).code).toBe('ERR_KEY_CURVE_UNSUPPORTED');
    // a private key is accepted for its public half
    expect(verifySignature(signedFrom00, createPublicKey(keys.privateKey))).toBe(true);
  });
});

describe('fail closed on the wrong kind of input (docs/domain.md §4, §5)', () => {
  it('refuses to sign a response or an alert as a pre-command', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const cra of ['response', 'alert'] as const) {
      const apdu = buildMessage({ cra, originatorCounter: 1n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x0050, payload: new Uint8Array([1]) });
      await expect(signPreCommand(apdu, privateKey)).rejects.toMatchObject({ code: 'ERR_GBCS_NOT_PRE_COMMAND' });
    }
  });

  it('refuses to verify with a key-agreement certificate', async () => {
    const { organisationCa } = await createHierarchy();
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ka = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'keyAgreement', publicKey: kp.publicKey });
    const pre = buildMessage({ cra: 'command', originatorCounter: 1n, originator: '90B3D51F30010000', recipient: '00DB1234567890A0', messageCode: 0x0050, payload: new Uint8Array([1]) });
    const signed = await signPreCommand(pre, kp.privateKey);
    expect(verifySignature(signed, kp.publicKey)).toBe(true); // the raw key: the caller vouches for it
    expect(() => verifySignature(signed, ka)).toThrow(expect.objectContaining({ code: 'ERR_KEY_INVALID' }));
    expect(() => verifySignature(signed, certificateToPem(ka))).toThrow(expect.objectContaining({ code: 'ERR_KEY_INVALID' }));
    expect(() => verifySignature(signed, ka.der)).toThrow(expect.objectContaining({ code: 'ERR_KEY_INVALID' }));
  });
});
