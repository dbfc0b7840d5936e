/**
 * Fuzz targets of @smki/gbcs: general-signing APDUs and general-ciphering frames (docs/domain.md §3),
 * the payload decoders (docs/domain.md §5: ECS42/43/44 DLMS ACTION, CS06 DER), sensitive payloads
 * (docs/domain.md §4, AES-128-GCM of NIST SP 800-38D), and the two checks that read a whole message: the
 * User signature and the ACB MAC (docs/domain.md §4).
 * @module
 */
import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { fromHex } from '@smki/core';
import {
  buildMessage,
  decodeActivateFirmware,
  decodeSupplyPayload,
  decryptPayload,
  encodeActivateFirmwarePayload,
  encodeSupplyPayload,
  parseMessage,
  signedBytes,
  verifyMac,
  verifySignature,
  type ActivateFirmwarePayload,
  type DecodedSupplyPayload,
  type GbcsMessage,
} from '@smki/gbcs';
import type { Instance, Target } from '../harness.js';
import type { Seed } from '../mutate.js';
import { vectorFile } from './seeds.js';

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

interface VectorFile {
  readonly keys?: Record<string, { readonly privateKey?: string; readonly publicKey: string }>;
  readonly cases: readonly { readonly id: string; readonly result: string; readonly input: Record<string, string>; readonly plaintext?: string }[];
}

/** Offsets of the length and tag fields of a GBCS message (docs/domain.md §3), for the byte edits to aim at. */
export function gbcsHints(bytes: Uint8Array): number[] {
  const m = parseMessage(bytes);
  const a = m.apduRange.start;
  const oiAt = a + 30 + (m.dateTime ? 12 : 0);
  const first = bytes[oiAt] as number;
  const oiSize = first < 0x80 ? 1 : 1 + (first - 0x80);
  let len = first;
  if (first >= 0x80) {
    len = 0;
    for (let i = 1; i < oiSize; i++) len = len * 256 + (bytes[oiAt + i] as number);
  }
  const contentAt = oiAt + oiSize + len;
  const hints = [a, a + 1, a + 2, a + 3, a + 10, a + 11, a + 20, a + 29, oiAt, oiAt + oiSize, oiAt + oiSize + 2, oiAt + oiSize + 10, oiAt + oiSize + 18, contentAt, m.signedRange.end];
  if (m.frame === 'ciphered') hints.push(0, 6, 7, 8, a - 5, a - 1, m.apduRange.end, bytes.length);
  return hints.filter((h) => h >= 0 && h <= bytes.length);
}

function messageSeed(name: string, hex: string): Seed {
  const bytes = fromHex(hex);
  return { name, bytes, hints: gbcsHints(bytes) };
}

/** Every valid message of the GBCS vector files: pre-commands, signed pre-commands, responses, DD frames. */
export async function messageSeeds(): Promise<Seed[]> {
  const out: Seed[] = [];
  const seen = new Set<string>();
  const add = (name: string, hex: string | undefined) => {
    if (!hex || seen.has(hex)) return;
    seen.add(hex);
    out.push(messageSeed(name, hex));
  };
  for (const file of ['messages', 'signatures', 'payloads'] as const) {
    for (const c of vectorFile<VectorFile>('gbcs', file).cases) if (c.result === 'valid') add(c.id, c.input['message']);
  }
  for (const c of vectorFile<VectorFile>('gbcs', 'macs').cases) if (c.result === 'valid' && c.input['kind'] === 'frame') add(c.id, c.input['frame']);
  return out;
}

/** parseMessage, and buildMessage of what it read gives the bytes back. */
export const messageTarget: Target = {
  name: 'gbcs.message',
  about: 'parseMessage: general-signing APDU (DF) and general-ciphering frame (DD), docs/domain.md §3',
  der: false,
  codes: ['ERR_GBCS_MALFORMED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return {
      seeds: await messageSeeds(),
      run: (input) => parseMessage(input),
      check(input, _s, r) {
        const m = r as GbcsMessage;
        if (!equal(m.bytes, input)) throw new Error('bytes is not the input');
        const { start, end } = m.signedRange;
        if (!(m.apduRange.start < start && start <= end && end <= m.apduRange.end && m.apduRange.end <= input.length)) throw new Error('ranges out of order or out of bounds');
        const rebuilt = buildMessage({ ...m, ...(m.mac ? { mac: m.mac } : {}) });
        if (!equal(rebuilt, input)) throw new Error('buildMessage(parseMessage(bytes)) is not bytes');
      },
    };
  },
};

/** Supply-command payloads (ECS42/43/44, docs/domain.md §5) with several counters. */
function supplySeeds(): Seed[] {
  const out: Seed[] = [];
  for (const uc of ['ECS42', 'ECS43', 'ECS44'] as const) {
    for (const counter of [0n, 1000n, 0xffffffn, (1n << 64n) - 1n]) out.push({ name: `${uc}-${counter}`, bytes: encodeSupplyPayload(uc, counter), hints: [0, 1, 2, 5, 6, 7, 8, 17, 18, 19, 20, 21] });
  }
  return out;
}

/** decodeSupplyPayload, and encodeSupplyPayload of what it read gives the bytes back. */
export const supplyTarget: Target = {
  name: 'gbcs.payload.supply',
  about: 'decodeSupplyPayload: the 21-byte DLMS ACTION on the script table of ECS42/43/44 (docs/domain.md §5)',
  der: false,
  codes: ['ERR_GBCS_MALFORMED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return {
      seeds: supplySeeds(),
      run: (input) => decodeSupplyPayload(input),
      check(input, _s, r) {
        const d = r as DecodedSupplyPayload;
        if (!equal(encodeSupplyPayload(d.useCase, BigInt(d.invokeCounter)), input)) throw new Error('encodeSupplyPayload(decodeSupplyPayload(p)) is not p');
      },
    };
  },
};

/** CS06 payloads (docs/domain.md §5) with and without an execution time. */
function cs06Seeds(): Seed[] {
  const hash = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const fields: ActivateFirmwarePayload[] = [
    { imageHash: hash, counter: 1000n },
    { imageHash: hash, counter: 0n },
    { imageHash: new Uint8Array(32).fill(0xff), counter: (1n << 64n) - 1n, executionTime: new Date('2030-01-01T02:00:00Z') },
    { imageHash: hash, counter: 0x80n, executionTime: new Date('1999-12-31T23:59:59Z') },
  ];
  return fields.map((f, i) => ({ name: `cs06-${i}`, bytes: encodeActivateFirmwarePayload(f) }));
}

/** decodeActivateFirmware, and the payload encoder gives the bytes back. */
export const cs06Target: Target = {
  name: 'gbcs.payload.cs06',
  about: 'decodeActivateFirmware: DER SEQUENCE { OCTET STRING (32), INTEGER, GeneralizedTime OPTIONAL } (docs/domain.md §5, X.690 §10)',
  der: true,
  codes: ['ERR_GBCS_MALFORMED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return {
      seeds: cs06Seeds(),
      run: (input) => decodeActivateFirmware(input),
      check(input, _s, r) {
        if (!equal(encodeActivateFirmwarePayload(r as ActivateFirmwarePayload), input)) throw new Error('encodeActivateFirmwarePayload(decodeActivateFirmware(p)) is not p');
      },
    };
  },
};

interface PayloadSeed extends Seed {
  readonly message: Uint8Array;
  readonly keys: { readonly privateKey: string; readonly publicKey: string };
  readonly plaintext: Uint8Array;
}

/** decryptPayload over mutated payload data: only the data as encrypted decrypts, to the plaintext encrypted. */
export const sensitivePayloadTarget: Target = {
  name: 'gbcs.payload.sensitive',
  about: 'decryptPayload: 31 ‖ invocation counter ‖ AES-128-GCM ciphertext ‖ 12-byte tag (docs/domain.md §4, NIST SP 800-38D §7.2)',
  der: false,
  codes: ['ERR_GBCS_MALFORMED', 'ERR_GBCS_DECRYPT_FAILED'],
  // The tag failure carries node's "unable to authenticate data" as its cause.
  foreignCause: (w) => w.code === 'ERR_GBCS_DECRYPT_FAILED',
  mutantsMayParse: false,
  async setup(): Promise<Instance> {
    const file = vectorFile<VectorFile>('gbcs', 'payloads');
    const keys = file.keys ?? {};
    const seeds: PayloadSeed[] = file.cases
      .filter((c) => c.result === 'valid')
      .map((c) => ({
        name: c.id,
        bytes: fromHex(c.input['data'] as string),
        hints: [0, 1, 4, 5],
        message: fromHex(c.input['message'] as string),
        keys: { privateKey: keys[c.input['privateKey'] as string]?.privateKey as string, publicKey: keys[c.input['publicKey'] as string]?.publicKey as string },
        plaintext: fromHex(c.plaintext as string),
      }));
    return {
      seeds,
      run: (input, seed) => {
        const s = seed as PayloadSeed;
        return decryptPayload(s.message, input, s.keys);
      },
      check(input, seed, r) {
        const s = seed as PayloadSeed;
        if (!equal(input, s.bytes) || !equal(r as Uint8Array, s.plaintext)) throw new Error('a changed sensitive payload authenticated');
      },
    };
  },
};

interface MacSeed extends Seed {
  readonly keys: { readonly privateKey: string; readonly publicKey: string };
}

/** verifyMac over mutated DD frames: true only for the frame as MAC'd. */
export const macTarget: Target = {
  name: 'gbcs.mac',
  about: 'verifyMac: parse a DD frame and check its ACB or device MAC (docs/domain.md §4), false or an error for any change',
  der: false,
  codes: ['ERR_GBCS_MALFORMED', 'ERR_GBCS_NOT_CIPHERED'],
  mutantsMayParse: false,
  async setup(): Promise<Instance> {
    const file = vectorFile<VectorFile>('gbcs', 'macs');
    const keys = file.keys ?? {};
    const seeds: MacSeed[] = file.cases
      .filter((c) => c.result === 'valid' && c.input['kind'] === 'frame')
      .map((c) => ({
        ...messageSeed(c.id, c.input['frame'] as string),
        keys: { privateKey: keys[c.input['privateKey'] as string]?.privateKey as string, publicKey: keys[c.input['publicKey'] as string]?.publicKey as string },
      }));
    const shared = new Map(
      seeds.map((x) => [x, diffieHellman({ privateKey: createPrivateKey(x.keys.privateKey), publicKey: createPublicKey(x.keys.publicKey) }).toString('hex')] as const),
    );
    return {
      seeds,
      run: (input, seed) => verifyMac(input, (seed as MacSeed).keys),
      check(input, seed, r) {
        if (r !== true && r !== false) throw new Error(`verifyMac returned ${String(r)}`);
        // A crossover can transplant another vector's frame whole: a frame MAC'd under the same
        // keys rightly verifies. Any other frame that verifies is a forgery.
        // (ECDH is symmetric: the ACB side and the device side of one pair share the MAC key.)
        const z = shared.get(seed as MacSeed);
        const genuine = (x: MacSeed) => equal(input, x.bytes) && shared.get(x) === z;
        if (r === true && !seeds.some(genuine)) throw new Error('a changed frame passed its MAC check');
        if (r === false && equal(input, seed.bytes)) throw new Error('the frame as MAC\'d failed its MAC check');
      },
    };
  },
};

interface SignatureSeed extends Seed {
  readonly publicKey: string;
}

/** verifySignature over mutated signed messages: true only when the signed bytes and the signature are as signed. */
export const signatureTarget: Target = {
  name: 'gbcs.signature',
  about: 'verifySignature: parse a signed message and check the User or device ECDSA P-256 signature (docs/domain.md §4)',
  der: false,
  codes: ['ERR_GBCS_MALFORMED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const file = vectorFile<VectorFile>('gbcs', 'signatures');
    const keys = file.keys ?? {};
    const seeds: SignatureSeed[] = file.cases
      .filter((c) => c.result === 'valid')
      .map((c) => ({ ...messageSeed(c.id, c.input['message'] as string), publicKey: keys[c.input['publicKey'] as string]?.publicKey as string }));
    const signedParts = seeds.map((s) => {
      const m = parseMessage(s.bytes);
      return { signed: signedBytes(m), signature: m.signature as Uint8Array };
    });
    return {
      seeds,
      run: (input, seed) => ({ ok: verifySignature(input, (seed as SignatureSeed).publicKey), input }),
      check(input, _seed, r) {
        const { ok } = r as { ok: boolean };
        if (!ok) return;
        const m = parseMessage(input);
        if (!signedParts.some((p) => equal(p.signed, signedBytes(m)) && m.signature !== null && equal(p.signature, m.signature))) {
          throw new Error('a signature verified over bytes that were never signed');
        }
      },
    };
  },
};

/** @smki/gbcs targets. */
export const gbcsTargets: readonly Target[] = [messageTarget, supplyTarget, cs06Target, sensitivePayloadTarget, macTarget, signatureTarget];
