// Test vectors: test-vectors/gbcs/*.json, written by scripts/generate-gbcs-vectors.ts from fixed
// seeds. docs/domain.md §3 (message layout), §4 (User signature, ACB and device MAC, KDF and GCM known
// answers, sensitive payloads), §5 (critical-command payloads).
import { gbcsFields, outcome } from '../scripts/vectors/gbcs-fields.js';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '@smki/core';
import {
  apduBytes,
  assertMacBytes,
  buildMessage,
  decryptPayload,
  deriveKey,
  gcmTag,
  kdf,
  macAad,
  otherInfo,
  parseMessage,
  signedBytes,
  verifyMac,
  verifySignature,
  type GbcsMessage,
  type KdfModeCode,
} from '@smki/gbcs';
import { simulatorCrypto } from '../packages/gbcs/test/_device-simulator.js';

const ROOT = join(import.meta.dirname, '..');
const GENERATOR = 'scripts/generate-gbcs-vectors.ts';
const load = <T>(name: string) => JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'gbcs', name), 'utf8')) as VectorFile<T>;

interface Base {
  id: string;
  comment: string;
  clause: string;
  result: 'valid' | 'invalid';
  errorCode?: string;
}
interface VectorFile<T> {
  source: string;
  generator: string;
  comment: string;
  keys?: Record<string, { privateKey?: string; publicKey: string }>;
  cases: (Base & T)[];
}
interface MessageCase {
  input: { message: string };
  expected?: Record<string, unknown>;
  offset?: number;
}
interface SignatureCase {
  input: { message: string; publicKey: string };
  highS?: boolean;
}
type MacCase = {
  input:
    | { kind: 'frame'; frame: string; privateKey: string; publicKey: string }
    | { kind: 'otherinfo'; originator: string; mode: number; counter: string; recipient: string; otherInfo: string }
    | { kind: 'kdf'; z: string; otherInfo: string; key: string }
    | { kind: 'gcm'; key: string; iv: string; aad: string; tag: string };
};
interface PayloadCase {
  input: { message: string; data: string; privateKey: string; publicKey: string };
  plaintext?: string;
  offset?: number;
}

const messages = load<MessageCase>('messages.json');
const signatures = load<SignatureCase>('signatures.json');
const macs = load<MacCase>('macs.json');
const payloads = load<PayloadCase>('payloads.json');


const fields = gbcsFields;

function keyOf<T>(file: VectorFile<T>, label: string, which: 'privateKey' | 'publicKey'): string {
  const pem = file.keys?.[label]?.[which];
  if (pem === undefined) throw new Error(`no ${which} for ${label} in the vector file`);
  return pem;
}

describe.each([
  ['messages.json', messages],
  ['signatures.json', signatures],
  ['macs.json', macs],
  ['payloads.json', payloads],
] as const)('test-vectors/gbcs/%s', (_name, file: VectorFile<unknown>) => {
  it('has the fields docs/conventions.md asks of a vector file, unique ids, and more negative cases than positive', () => {
    expect(file.source).toMatch(/^docs\/domain\.md §/);
    expect(file.generator).toBe(GENERATOR);
    expect(new Set(file.cases.map((c) => c.id)).size).toBe(file.cases.length);
    for (const c of file.cases) {
      expect(c.comment, c.id).toBeTypeOf('string');
      expect(c.clause, c.id).toMatch(/docs\/domain\.md|SEC 1|NIST/);
      expect(['valid', 'invalid'], c.id).toContain(c.result);
      if (c.result === 'valid') expect(c.errorCode, c.id).toBeUndefined();
    }
    const negatives = file.cases.filter((c) => c.result === 'invalid').length;
    expect(negatives).toBeGreaterThan(file.cases.length - negatives);
  });
});

describe('test-vectors/gbcs/messages.json (parseMessage, buildMessage)', () => {
  it.each(messages.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const r = outcome(() => parseMessage(fromHex(c.input.message)));
    if (c.result === 'valid') {
      expect(r.code).toBeUndefined();
      const m = r.value as GbcsMessage;
      expect(fields(m)).toEqual(c.expected);
      expect(toHex(buildMessage(m))).toBe(c.input.message);
    } else {
      expect(c.errorCode).toBe('ERR_GBCS_MALFORMED');
      expect({ code: r.code, offset: r.offset }).toEqual({ code: c.errorCode, offset: c.offset });
    }
  });
});

describe('test-vectors/gbcs/signatures.json (verifySignature)', () => {
  it.each(signatures.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const key = keyOf(signatures, c.input.publicKey, 'publicKey');
    const r = outcome(() => verifySignature(fromHex(c.input.message), key));
    if (c.errorCode !== undefined) {
      expect(r.code).toBe(c.errorCode);
      return;
    }
    expect(r.code).toBeUndefined();
    expect(r.value).toBe(c.result === 'valid');
    // node:crypto on the range the library reports agrees (high-S included)
    const m = parseMessage(fromHex(c.input.message));
    if (m.signature) {
      expect(verify('sha256', signedBytes(m), { key: createPublicKey(key), dsaEncoding: 'ieee-p1363' }, m.signature)).toBe(c.result === 'valid');
    }
  });

  it('holds high-S and low-S signatures that are both valid', () => {
    const valid = signatures.cases.filter((c) => c.result === 'valid');
    expect(valid.some((c) => c.highS === true)).toBe(true);
    expect(valid.some((c) => c.highS === false)).toBe(true);
  });
});

describe('test-vectors/gbcs/macs.json (verifyMac; docs/domain.md §4 known answers)', () => {
  it.each(macs.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const input = c.input;
    switch (input.kind) {
      case 'frame': {
        const privateKey = keyOf(macs, input.privateKey, 'privateKey');
        const publicKey = keyOf(macs, input.publicKey, 'publicKey');
        const frame = fromHex(input.frame);
        const r = outcome(() => verifyMac(frame, { privateKey, publicKey }));
        if (c.result === 'valid' || c.errorCode === 'ERR_GBCS_MAC_INVALID') {
          expect(r.code).toBeUndefined();
          expect(r.value).toBe(c.result === 'valid');
          // the throwing form over the same derived key gives the declared code
          const m = parseMessage(frame);
          const key = deriveKey({ originator: m.originator, recipient: m.recipient, counter: m.originatorCounter, mode: m.cra, privateKey, publicKey });
          const a = outcome(() => assertMacBytes({ key, originator: m.originator, aad: macAad(apduBytes(m)), mac: m.mac as Uint8Array }));
          expect(a.code).toBe(c.errorCode);
          // and the simulator's independent node:crypto implementation agrees
          expect(simulatorCrypto.frameMacVerifies(frame, createPrivateKey(privateKey), createPublicKey(publicKey))).toBe(c.result === 'valid');
        } else {
          expect(r.code).toBe(c.errorCode);
        }
        break;
      }
      case 'otherinfo':
        expect(toHex(otherInfo({ originator: input.originator, mode: input.mode as KdfModeCode, counter: BigInt(input.counter), recipient: input.recipient })) === input.otherInfo).toBe(c.result === 'valid');
        break;
      case 'kdf':
        expect(toHex(kdf(fromHex(input.z), fromHex(input.otherInfo))) === input.key).toBe(c.result === 'valid');
        break;
      case 'gcm':
        expect(toHex(gcmTag(fromHex(input.key), fromHex(input.iv), fromHex(input.aad))) === input.tag).toBe(c.result === 'valid');
        break;
    }
  });

  it('contains the docs/domain.md §4 known answers as valid cases', () => {
    const byId = new Map(macs.cases.map((c) => [c.id, c]));
    expect(byId.get('kat-kdf')).toMatchObject({ result: 'valid', input: { key: 'EC1D51BD8F8BF0CDD2314CF396CC12C0' } });
    expect(byId.get('kat-gcm')).toMatchObject({ result: 'valid', input: { tag: 'FB3AFED43B78508864F00DA3' } });
    expect(byId.get('kat-otherinfo')).toMatchObject({ result: 'valid', input: { otherInfo: '6085740608030090B3D51F30010000090100000000000003E800DB1234567890A0' } });
  });
});

describe('test-vectors/gbcs/payloads.json (decryptPayload)', () => {
  it.each(payloads.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const keys = { privateKey: keyOf(payloads, c.input.privateKey, 'privateKey'), publicKey: keyOf(payloads, c.input.publicKey, 'publicKey') };
    const r = outcome(() => decryptPayload(fromHex(c.input.message), fromHex(c.input.data), keys));
    if (c.result === 'valid') {
      expect(r.code).toBeUndefined();
      expect(toHex(r.value as Uint8Array)).toBe(c.plaintext);
    } else {
      expect(r.code).toBe(c.errorCode);
      if (c.offset !== undefined) expect(r.offset).toBe(c.offset);
    }
  });
});

describe('generator', () => {
  it('reproduces every GBCS vector file byte for byte from its seeds', () => {
    const out = execFileSync(join(ROOT, 'node_modules', '.bin', 'tsx'), [GENERATOR, '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/^checked 4 files/m);
  }, 120_000);
});
