// docs/domain.md §4 (the cryptography): the GBCS KDF and OtherInfo, the ACB/device MAC (AES-128-GCM tag
// over the general-signing APDU) and sensitive payloads. NIST SP 800-56A Rev. 3 §5.8.2.1
// (one-step KDF), NIST SP 800-38D (GCM). Known answers are the two in docs/domain.md §4.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyAgreement, fromHex, isSmkiError, publicKeyToRaw, toHex, toPublicKey, type KeyAgreement } from '@smki/core';
import { certificateToPem, createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import {
  GBCS_TAG_LENGTH,
  KDF_MODES,
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
  verifyMacBytes,
  type OtherInfoFields,
} from '../src/crypto.js';

/** Run `fn` and return the SmkiError code it throws (fails the test if it does not throw one). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a SmkiError');
}

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a SmkiError');
}

function errorOf(fn: () => unknown): { code: string; context: Record<string, unknown>; message: string } {
  try {
    fn();
  } catch (e) {
    if (isSmkiError(e)) return { code: e.code, context: e.context as Record<string, unknown>, message: e.message };
    throw e;
  }
  throw new Error('expected a SmkiError');
}

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** Independent AES-128-GCM straight from node:crypto (12-byte tag). */
function nodeGcm(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): { ct: Uint8Array; tag: Uint8Array } {
  const c = createCipheriv('aes-128-gcm', key, iv, { authTagLength: 12 });
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return { ct: new Uint8Array(ct), tag: new Uint8Array(c.getAuthTag()) };
}

/** Independent one-step KDF: SHA-256(00000001 ‖ Z ‖ OtherInfo), first 16 bytes. */
function handKdf(z: Uint8Array, info: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(Buffer.concat([Buffer.from('00000001', 'hex'), z, info])).digest().subarray(0, 16));
}

/** Flip one bit of a copy. */
function flip(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[bit >> 3] = (out[bit >> 3] as number) ^ (0x80 >> (bit & 7));
  return out;
}

/** A general-signing APDU shaped as docs/domain.md §3 says (DF, 09, CRA, counter, titles, ..., 40 ‖ sig). */
function fakeSignedApdu(counter: bigint, originator: string, recipient: string): Uint8Array {
  const c = Buffer.alloc(8);
  c.writeBigUInt64BE(counter);
  const content = fromHex('D9200003E8000103000900000A006AFF0101120034');
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0xdf, 0x09, 0x01]),
      c,
      Buffer.from([0x08]),
      Buffer.from(originator, 'hex'),
      Buffer.from([0x08]),
      Buffer.from(recipient, 'hex'),
      Buffer.from([0x00, 0x02, 0x00, 0x50, content.length]),
      content,
      Buffer.from([0x40]),
      randomBytes(64),
    ]),
  );
}

// docs/domain.md §4 known answers
const KAT = {
  z: 'ED342441DF01551A6BEAFF3B54ADC981F4C6A7E71DFF4C3E1CC80B3C9F4E5AC0',
  otherInfo: '6085740608030090B3D51F30010000090100000000000003E800DB1234567890A0',
  originator: '90B3D51F30010000',
  recipient: '00DB1234567890A0',
  counter: 1000n,
  k: 'EC1D51BD8F8BF0CDD2314CF396CC12C0',
  gcmKey: '000102030405060708090A0B0C0D0E0F',
  gcmIv: '90B3D51F3003000000000000',
  gcmTag: 'FB3AFED43B78508864F00DA3',
} as const;

const USER = '90B3D51F30010000';
const DEVICE = '00DB1234567890A0';

describe('docs/domain.md §4 known answers', () => {
  it('otherInfo() builds the documented OtherInfo (originator 90B3D51F30010000, command, counter 1000, recipient 00DB1234567890A0)', () => {
    // docs/domain.md §4 KDF known answer
    const info = otherInfo({ originator: KAT.originator, mode: 'command', counter: KAT.counter, recipient: KAT.recipient });
    expect(toHex(info)).toBe(KAT.otherInfo);
    expect(info.length).toBe(33);
  });

  it('kdf(Z, OtherInfo) gives K', () => {
    // docs/domain.md §4 KDF known answer
    expect(toHex(kdf(fromHex(KAT.z), fromHex(KAT.otherInfo)))).toBe(KAT.k);
  });

  it('kdf agrees with a hand-written SHA-256(00000001 ‖ Z ‖ OtherInfo)', () => {
    // NIST SP 800-56A §5.8.2.1, one-step KDF, one block
    expect(toHex(handKdf(fromHex(KAT.z), fromHex(KAT.otherInfo)))).toBe(KAT.k);
    for (let i = 0; i < 20; i++) {
      const z = new Uint8Array(randomBytes(32));
      const info = new Uint8Array(randomBytes(i * 3));
      expect(toHex(kdf(z, info))).toBe(toHex(handKdf(z, info)));
    }
  });

  it('gcmTag: key 000102…0F, IV 90B3D51F30030000 ‖ 00000000, AAD "helloworld", empty plaintext', () => {
    // docs/domain.md §4 AES-128-GCM known answer
    const aad = new TextEncoder().encode('helloworld');
    expect(toHex(gcmTag(fromHex(KAT.gcmKey), fromHex(KAT.gcmIv), aad))).toBe(KAT.gcmTag);
    expect(toHex(gcmIv('90B3D51F30030000'))).toBe(KAT.gcmIv);
    // The MAC function applies the IV rule (title ‖ 00000000) itself.
    expect(toHex(computeMacBytes({ key: fromHex(KAT.gcmKey), originator: '90B3D51F30030000', aad }))).toBe(KAT.gcmTag);
  });

  it('gcmTag agrees with node:crypto createCipheriv directly (random cases, with and without plaintext)', () => {
    // NIST SP 800-38D §7.1
    for (let i = 0; i < 50; i++) {
      const key = new Uint8Array(randomBytes(16));
      const iv = new Uint8Array(randomBytes(12));
      const aad = new Uint8Array(randomBytes(i * 7));
      const pt = new Uint8Array(randomBytes(i % 3 === 0 ? 0 : i * 5));
      expect(toHex(gcmTag(key, iv, aad, pt))).toBe(toHex(nodeGcm(key, iv, aad, pt).tag));
    }
  });
});

describe('otherInfo (docs/domain.md §4 step 2)', () => {
  const base: OtherInfoFields = { originator: USER, mode: 'command', counter: 1000n, recipient: DEVICE };

  it('named and numeric modes map to 01..04', () => {
    expect(KDF_MODES).toEqual({ command: 1, response: 2, alert: 3, payload: 4 });
    for (const [name, code] of Object.entries(KDF_MODES)) {
      const a = otherInfo({ ...base, mode: name as keyof typeof KDF_MODES });
      const b = otherInfo({ ...base, mode: code });
      expect(a).toEqual(b);
      expect(a[15]).toBe(0x09);
      expect(a[16]).toBe(code);
    }
  });

  it('titles in any EUI-64 spelling or as 8 bytes give the same bytes', () => {
    const want = toHex(otherInfo(base));
    expect(toHex(otherInfo({ ...base, originator: '90-b3-d5-1f-30-01-00-00', recipient: '00 DB 12 34 56 78 90 A0' }))).toBe(want);
    expect(toHex(otherInfo({ ...base, originator: fromHex(USER), recipient: fromHex(DEVICE) }))).toBe(want);
  });

  it('counter is big-endian u64: 0 and 2^64−1 are accepted', () => {
    expect(toHex(otherInfo({ ...base, counter: 0n }).subarray(17, 25))).toBe('0000000000000000');
    expect(toHex(otherInfo({ ...base, counter: (1n << 64n) - 1n }).subarray(17, 25))).toBe('FFFFFFFFFFFFFFFF');
    expect(toHex(otherInfo({ ...base, counter: 0x0102030405060708n }).subarray(17, 25))).toBe('0102030405060708');
  });

  it('refuses counters outside [0, 2^64) and counters that are not bigint', () => {
    // docs/domain.md §6: counters are unsigned 64-bit, bigint never Number
    expect(codeOf(() => otherInfo({ ...base, counter: 1n << 64n }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => otherInfo({ ...base, counter: -1n }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => otherInfo({ ...base, counter: 1000 as unknown as bigint }))).toBe('ERR_GBCS_INVALID_FIELD');
  });

  it('refuses unknown modes and malformed titles', () => {
    for (const mode of [0, 5, 'payloads', 'toString', '__proto__', undefined]) {
      expect(codeOf(() => otherInfo({ ...base, mode: mode as never }))).toBe('ERR_GBCS_INVALID_FIELD');
    }
    expect(codeOf(() => otherInfo({ ...base, originator: new Uint8Array(7) }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => otherInfo({ ...base, recipient: new Uint8Array(9) }))).toBe('ERR_GBCS_INVALID_FIELD');
    expect(codeOf(() => otherInfo({ ...base, originator: 'not an eui' }))).toBe('ERR_EUI64_INVALID');
    expect(codeOf(() => otherInfo({ ...base, recipient: 42 as never }))).toBe('ERR_GBCS_INVALID_FIELD');
  });

  it('kdf refuses a Z that is not 32 bytes, without echoing it', () => {
    const z = new Uint8Array(31).fill(0xab);
    const e = errorOf(() => kdf(z, new Uint8Array(33)));
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(JSON.stringify(e.context) + e.message).not.toMatch(/abab/i);
  });
});

describe('deriveKey (docs/domain.md §4 steps 1–2)', () => {
  let acb: { privateKey: KeyObject; publicKey: KeyObject };
  let device: { privateKey: KeyObject; publicKey: KeyObject };
  let deviceKaCert: SmkiCertificate;
  let deviceDsCert: SmkiCertificate;
  let acbKaCert: SmkiCertificate;
  const fields = { originator: USER, recipient: DEVICE, counter: 1_700_000_000_123n, mode: 'command' } as const;

  beforeAll(async () => {
    acb = p256();
    device = p256();
    const h = await createHierarchy();
    deviceKaCert = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: DEVICE, keyUsage: 'keyAgreement', publicKey: device.publicKey });
    deviceDsCert = await issueDeviceCertificate({ issuer: h.deviceCa, entityId: DEVICE, keyUsage: 'digitalSignature', publicKey: p256().publicKey });
    acbKaCert = await issueOrganisationCertificate({
      issuer: h.organisationCa,
      role: 4,
      entityId: '90B3D51F30040000',
      keyUsage: 'keyAgreement',
      publicKey: acb.publicKey,
    });
  });

  it('is symmetric: ACB private × device public = device private × ACB public', () => {
    const k1 = deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...fields });
    const k2 = deriveKey({ privateKey: device.privateKey, publicKey: acb.publicKey, ...fields });
    expect(k1.length).toBe(16);
    expect(toHex(k1)).toBe(toHex(k2));
  });

  it('equals the hand-written ECDH + SHA-256 concatenation', () => {
    const z = diffieHellman({ privateKey: acb.privateKey, publicKey: device.publicKey });
    const info = Buffer.concat([
      Buffer.from('60857406080300', 'hex'),
      Buffer.from(USER, 'hex'),
      Buffer.from([0x09, 0x01]),
      Buffer.from(fields.counter.toString(16).padStart(16, '0'), 'hex'),
      Buffer.from(DEVICE, 'hex'),
    ]);
    expect(toHex(deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...fields }))).toBe(toHex(handKdf(z, info)));
  });

  it('accepts the keys as KeyObject, PEM, DER (PKCS#8/SEC1, SPKI), raw point and a certificate (parsed, PEM, DER)', () => {
    const want = toHex(deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...fields }));
    const privs = [
      acb.privateKey,
      acb.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
      new Uint8Array(acb.privateKey.export({ format: 'der', type: 'pkcs8' })),
      new Uint8Array(acb.privateKey.export({ format: 'der', type: 'sec1' })),
    ];
    const pubs = [
      device.publicKey,
      device.publicKey.export({ format: 'pem', type: 'spki' }) as string,
      new Uint8Array(device.publicKey.export({ format: 'der', type: 'spki' })),
      publicKeyToRaw(device.publicKey),
      deviceKaCert,
      certificateToPem(deviceKaCert),
      deviceKaCert.der,
    ];
    for (const privateKey of privs) {
      for (const publicKey of pubs) expect(toHex(deriveKey({ privateKey, publicKey, ...fields }))).toBe(want);
    }
    // The device side with the ACB's organisation KA certificate.
    expect(toHex(deriveKey({ privateKey: device.privateKey, publicKey: acbKaCert, ...fields }))).toBe(want);
  });

  it('refuses a digitalSignature certificate for key agreement (fails closed)', () => {
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: deviceDsCert, ...fields }))).toBe('ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: deviceDsCert.der, ...fields }))).toBe('ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: certificateToPem(deviceDsCert), ...fields }))).toBe(
      'ERR_KEY_NOT_FOR_KEY_AGREEMENT',
    );
  });

  it('refuses keys that are not P-256 or not keys, without echoing key material', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    expect(codeOf(() => deriveKey({ privateKey: p384.privateKey, publicKey: device.publicKey, ...fields }))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: p384.publicKey, ...fields }))).toBe('ERR_KEY_CURVE_UNSUPPORTED');
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: new Uint8Array(65).fill(4), ...fields }))).toBe('ERR_KEY_INVALID');
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: new Uint8Array([0x30, 0x03, 0x30, 0x01]), ...fields }))).toBe(
      'ERR_KEY_INVALID',
    );
    expect(codeOf(() => deriveKey({ privateKey: acb.privateKey, publicKey: {} as never, ...fields }))).toBe('ERR_KEY_INVALID');
    const der = new Uint8Array(acb.privateKey.export({ format: 'der', type: 'pkcs8' }));
    const broken = der.slice(0, der.length - 3);
    const e = errorOf(() => deriveKey({ privateKey: broken, publicKey: device.publicKey, ...fields }));
    expect(e.code).toBe('ERR_KEY_INVALID');
    const secretHex = toHex(der.subarray(der.length - 40));
    expect(JSON.stringify(e.context) + e.message).not.toContain(secretHex.slice(0, 16));
  });

  it('every OtherInfo field changes the key', () => {
    const k = toHex(deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...fields }));
    const variants: OtherInfoFields[] = [
      { ...fields, counter: fields.counter + 1n },
      { ...fields, mode: 'response' },
      { ...fields, mode: 'payload' },
      { ...fields, originator: '90B3D51F30040000' }, // the ACB's title is not the originator
      { ...fields, recipient: '00DB1234567890A1' },
    ];
    for (const v of variants) expect(toHex(deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...v }))).not.toBe(k);
  });

  it('deriveKeyAsync with createKeyAgreement equals the sync derivation, for every key form', async () => {
    const want = toHex(deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...fields }));
    const ka = createKeyAgreement(acb.privateKey);
    for (const publicKey of [device.publicKey, publicKeyToRaw(device.publicKey), deviceKaCert, deviceKaCert.der, certificateToPem(deviceKaCert)]) {
      expect(toHex(await deriveKeyAsync({ keyAgreement: ka, publicKey, ...fields }))).toBe(want);
    }
  });

  it('deriveKeyAsync checks its inputs before asking the key agreement, and zeroes Z after', async () => {
    const inner = createKeyAgreement(acb.privateKey);
    const seen: Uint8Array[] = [];
    let calls = 0;
    const spy: KeyAgreement = {
      publicKey: inner.publicKey,
      async deriveSharedSecret(peer) {
        calls++;
        expect(publicKeyToRaw(toPublicKey(peer))).toEqual(publicKeyToRaw(device.publicKey));
        const z = await inner.deriveSharedSecret(peer);
        seen.push(z);
        return z;
      },
    };
    expect(await codeOfAsync(() => deriveKeyAsync({ keyAgreement: spy, publicKey: device.publicKey, ...fields, counter: 1n << 64n }))).toBe(
      'ERR_GBCS_INVALID_FIELD',
    );
    expect(await codeOfAsync(() => deriveKeyAsync({ keyAgreement: spy, publicKey: deviceDsCert, ...fields }))).toBe('ERR_KEY_NOT_FOR_KEY_AGREEMENT');
    expect(calls).toBe(0);
    await deriveKeyAsync({ keyAgreement: spy, publicKey: device.publicKey, ...fields });
    expect(calls).toBe(1);
    expect(seen[0]?.every((b) => b === 0)).toBe(true);

    const short: KeyAgreement = { publicKey: inner.publicKey, deriveSharedSecret: async () => new Uint8Array(31) };
    expect(await codeOfAsync(() => deriveKeyAsync({ keyAgreement: short, publicKey: device.publicKey, ...fields }))).toBe('ERR_KEY_INVALID');
    expect(await codeOfAsync(() => deriveKeyAsync({ keyAgreement: {} as never, publicKey: device.publicKey, ...fields }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});

describe('ACB MAC (docs/domain.md §4 step 3)', () => {
  let acb: { privateKey: KeyObject; publicKey: KeyObject };
  let device: { privateKey: KeyObject; publicKey: KeyObject };
  const counter = 1_700_000_000_456n;
  let apdu: Uint8Array;
  let key: Uint8Array;
  let mac: Uint8Array;

  beforeAll(() => {
    acb = p256();
    device = p256();
    apdu = fakeSignedApdu(counter, USER, DEVICE);
    key = deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, originator: USER, recipient: DEVICE, counter, mode: 'command' });
    mac = computeMacBytes({ key, originator: USER, aad: macAad(apdu) });
  });

  /** What a device does: derive with its own key and check. */
  function deviceVerifies(a: Uint8Array, m: Uint8Array, f: { originator: string; recipient: string; counter: bigint }): boolean {
    const k = deriveKey({ privateKey: device.privateKey, publicKey: acb.publicKey, ...f, mode: 'command' });
    return verifyMacBytes({ key: k, originator: f.originator, aad: macAad(a), mac: m });
  }

  it('macAad is 11 00 00 00 00 00 ‖ the whole APDU including its signature field', () => {
    const aad = macAad(apdu);
    expect(toHex(aad.subarray(0, 6))).toBe('110000000000');
    expect(toHex(aad.subarray(6))).toBe(toHex(apdu));
    expect(aad.length).toBe(apdu.length + 6);
    expect(codeOf(() => macAad(new Uint8Array(0)))).toBe('ERR_GBCS_MALFORMED');
    expect(codeOf(() => macAad(Uint8Array.of(0xdd, 0x00)))).toBe('ERR_GBCS_MALFORMED');
  });

  it('the MAC is 12 bytes and equals GCM with IV = originator ‖ 00000000 computed directly', () => {
    expect(mac.length).toBe(GBCS_TAG_LENGTH);
    const iv = Buffer.concat([Buffer.from(USER, 'hex'), Buffer.alloc(4)]);
    const aad = Buffer.concat([Buffer.from('110000000000', 'hex'), apdu]);
    expect(toHex(mac)).toBe(toHex(nodeGcm(key, iv, aad, new Uint8Array(0)).tag));
  });

  it('the device verifies it', () => {
    expect(deviceVerifies(apdu, mac, { originator: USER, recipient: DEVICE, counter })).toBe(true);
    expect(() => assertMacBytes({ key, originator: USER, aad: macAad(apdu), mac })).not.toThrow();
  });

  it('fails on every single-bit change of the APDU (signature field included)', () => {
    const k = deriveKey({ privateKey: device.privateKey, publicKey: acb.publicKey, originator: USER, recipient: DEVICE, counter, mode: 'command' });
    for (let bit = 0; bit < apdu.length * 8; bit++) {
      const changed = flip(apdu, bit);
      if (bit < 8) {
        // The DF tag itself: macAad refuses the APDU; the tag over those bytes differs anyway.
        expect(codeOf(() => macAad(changed))).toBe('ERR_GBCS_MALFORMED');
        const aad = Uint8Array.from([0x11, 0, 0, 0, 0, 0, ...changed]);
        expect(verifyMacBytes({ key: k, originator: USER, aad, mac })).toBe(false);
      } else {
        expect(verifyMacBytes({ key: k, originator: USER, aad: macAad(changed), mac })).toBe(false);
      }
    }
    // Dropping or adding bytes too.
    expect(verifyMacBytes({ key: k, originator: USER, aad: macAad(apdu.subarray(0, apdu.length - 1)), mac })).toBe(false);
    expect(verifyMacBytes({ key: k, originator: USER, aad: macAad(Uint8Array.from([...apdu, 0])), mac })).toBe(false);
  });

  it('fails on every single-bit change of the counter', () => {
    for (let bit = 0; bit < 64; bit++) {
      expect(deviceVerifies(apdu, mac, { originator: USER, recipient: DEVICE, counter: counter ^ (1n << BigInt(bit)) })).toBe(false);
    }
  });

  it('fails on every single-bit change of the originator or the recipient', () => {
    for (let bit = 0; bit < 64; bit++) {
      const o = toHex(flip(fromHex(USER), bit));
      const r = toHex(flip(fromHex(DEVICE), bit));
      expect(deviceVerifies(apdu, mac, { originator: o, recipient: DEVICE, counter })).toBe(false);
      expect(deviceVerifies(apdu, mac, { originator: USER, recipient: r, counter })).toBe(false);
    }
  });

  it('fails on the wrong mode, the wrong IV, any MAC bit, a MAC of the wrong length', () => {
    const k2 = deriveKey({ privateKey: device.privateKey, publicKey: acb.publicKey, originator: USER, recipient: DEVICE, counter, mode: 'response' });
    expect(verifyMacBytes({ key: k2, originator: USER, aad: macAad(apdu), mac })).toBe(false);
    // The key is right but the IV uses the ACB's title instead of the User's.
    expect(verifyMacBytes({ key, originator: '90B3D51F30040000', aad: macAad(apdu), mac })).toBe(false);
    for (let bit = 0; bit < 96; bit++) expect(verifyMacBytes({ key, originator: USER, aad: macAad(apdu), mac: flip(mac, bit) })).toBe(false);
    expect(verifyMacBytes({ key, originator: USER, aad: macAad(apdu), mac: mac.subarray(0, 11) })).toBe(false);
    expect(verifyMacBytes({ key, originator: USER, aad: macAad(apdu), mac: Uint8Array.from([...mac, 0]) })).toBe(false);
    expect(verifyMacBytes({ key, originator: USER, aad: macAad(apdu), mac: undefined as never })).toBe(false);
    expect(codeOf(() => assertMacBytes({ key, originator: USER, aad: macAad(apdu), mac: flip(mac, 0) }))).toBe('ERR_GBCS_MAC_INVALID');
  });

  it('refuses a key that is not 16 bytes without echoing it', () => {
    const bad = new Uint8Array(24).fill(0xcd);
    const e = errorOf(() => computeMacBytes({ key: bad, originator: USER, aad: macAad(apdu) }));
    expect(e.code).toBe('ERR_KEY_INVALID');
    expect(JSON.stringify(e.context) + e.message).not.toMatch(/cdcd/i);
    expect(codeOf(() => gcmTag(key, new Uint8Array(16), new Uint8Array(0)))).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('sensitive payloads (docs/domain.md §4 last bullet)', () => {
  const ORIGINATOR = DEVICE; // a response or alert comes from the device
  let key: Uint8Array;

  beforeAll(() => {
    const device = p256();
    const user = p256();
    // mode 04; counter = the (supplementary) originator counter, recipient = the (supplementary) remote party
    key = deriveKey({ privateKey: device.privateKey, publicKey: user.publicKey, originator: ORIGINATOR, recipient: USER, counter: 77n, mode: 'payload' });
  });

  it('round-trips, with the layout 31 ‖ 00000000 ‖ ciphertext ‖ tag(12)', () => {
    for (const n of [0, 1, 15, 16, 17, 100, 1000]) {
      const plaintext = new Uint8Array(randomBytes(n));
      const data = encryptSensitivePayload({ key, originator: ORIGINATOR, plaintext });
      expect(data.length).toBe(1 + 4 + n + 12);
      expect(toHex(data.subarray(0, 5))).toBe('3100000000');
      expect(toHex(decryptSensitivePayload({ key, originator: ORIGINATOR, data }))).toBe(toHex(plaintext));
    }
  });

  it('agrees with node:crypto GCM computed directly (AAD = 31, IV = originator ‖ 00000000)', () => {
    const plaintext = new TextEncoder().encode('a secret credit value');
    const iv = Buffer.concat([Buffer.from(ORIGINATOR, 'hex'), Buffer.alloc(4)]);
    const { ct, tag } = nodeGcm(key, iv, Uint8Array.of(0x31), plaintext);
    const data = encryptSensitivePayload({ key, originator: ORIGINATOR, plaintext });
    expect(toHex(data)).toBe(`3100000000${toHex(ct)}${toHex(tag)}`);
    // and decrypting bytes made independently
    const d = createDecipheriv('aes-128-gcm', key, iv, { authTagLength: 12 });
    d.setAAD(Uint8Array.of(0x31));
    d.setAuthTag(tag);
    expect(Buffer.concat([d.update(ct), d.final()]).toString()).toBe('a secret credit value');
    expect(toHex(decryptSensitivePayload({ key, originator: ORIGINATOR, data: fromHex(`3100000000${toHex(ct)}${toHex(tag)}`) }))).toBe(toHex(plaintext));
  });

  it('detects every single-bit change (header: malformed; ciphertext and tag: decrypt failed)', () => {
    const data = encryptSensitivePayload({ key, originator: ORIGINATOR, plaintext: new Uint8Array(randomBytes(24)) });
    for (let bit = 0; bit < data.length * 8; bit++) {
      const code = codeOf(() => decryptSensitivePayload({ key, originator: ORIGINATOR, data: flip(data, bit) }));
      expect(code).toBe(bit < 40 ? 'ERR_GBCS_MALFORMED' : 'ERR_GBCS_DECRYPT_FAILED');
    }
  });

  it('fails with the wrong key or the wrong originator, and says nothing of the plaintext', () => {
    const plaintext = new TextEncoder().encode('TOPSECRET');
    const data = encryptSensitivePayload({ key, originator: ORIGINATOR, plaintext });
    const wrongKey = new Uint8Array(key);
    wrongKey[0] = (wrongKey[0] as number) ^ 1;
    const e = errorOf(() => decryptSensitivePayload({ key: wrongKey, originator: ORIGINATOR, data }));
    expect(e.code).toBe('ERR_GBCS_DECRYPT_FAILED');
    expect(JSON.stringify(e.context) + e.message).not.toMatch(/TOPSECRET|544F50534543524554/i);
    expect(codeOf(() => decryptSensitivePayload({ key, originator: USER, data }))).toBe('ERR_GBCS_DECRYPT_FAILED');
  });

  it('bounded parsing: short, wrong tag byte, non-zero invocation counter → ERR_GBCS_MALFORMED with the offset', () => {
    const data = encryptSensitivePayload({ key, originator: ORIGINATOR, plaintext: new Uint8Array(4) });
    for (let n = 0; n < 17; n++) {
      const e = errorOf(() => decryptSensitivePayload({ key, originator: ORIGINATOR, data: data.subarray(0, n) }));
      expect(e.code).toBe('ERR_GBCS_MALFORMED');
      expect(e.context.offset).toBe(n);
    }
    const wrongTag = new Uint8Array(data);
    wrongTag[0] = 0x30;
    expect(errorOf(() => decryptSensitivePayload({ key, originator: ORIGINATOR, data: wrongTag })).context.offset).toBe(0);
    const counterSet = new Uint8Array(data);
    counterSet[4] = 1;
    const e = errorOf(() => decryptSensitivePayload({ key, originator: ORIGINATOR, data: counterSet }));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect(e.context.offset).toBe(1);
    expect(codeOf(() => decryptSensitivePayload({ key, originator: ORIGINATOR, data: 'x' as never }))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => decryptSensitivePayload({ key: new Uint8Array(32), originator: ORIGINATOR, data }))).toBe('ERR_KEY_INVALID');
  });

  it('a 64 KiB hostile payload is rejected in under 50 ms (docs/conventions.md bound; fastest of three runs)', () => {
    const big = new Uint8Array(randomBytes(64 * 1024));
    big.set([0x31, 0, 0, 0, 0]);
    let fastest = Number.POSITIVE_INFINITY; // a GC pause or a busy CI core is not slow parsing
    for (let run = 0; run < 3; run++) {
      const t = performance.now();
      expect(codeOf(() => decryptSensitivePayload({ key, originator: ORIGINATOR, data: big }))).toBe('ERR_GBCS_DECRYPT_FAILED');
      fastest = Math.min(fastest, performance.now() - t);
    }
    expect(fastest).toBeLessThan(50);
  });
});

// Throughput (deriveKey, deriveKeyAsync, MAC) is measured by bench/run.ts beside raw node:crypto, never asserted here.
