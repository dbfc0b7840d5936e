/**
 * `pnpm run bench` for @smki/gbcs: GBCS message rates beside the raw node:crypto primitive rates,
 * measured in the same process, so the ratios say what the toolkit costs on top of the
 * cryptography (docs/conventions.md "Tests": benchmarks print numbers, never fail on speed).
 *
 * Prints one JSON line per row: `{"bench", "opsPerSec", "baseline", "ratio"}` (`ratio` is
 * opsPerSec over the baseline's, measured in the same run; a baseline row has `baseline: null`).
 * BENCH_MS sets the time per row (default 700).
 */
import { createCipheriv, diffieHellman, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createKeyAgreement, createKeySigner } from '@smki/core';
import { buildGeneralCiphering, buildMessage, parseMessage, signedBytes } from '../src/codec.js';
import { computeMacBytes, deriveKey, deriveKeyAsync, macAad, verifyMacBytes } from '../src/crypto.js';
import { verifyMac, wrapWithMac } from '../src/mac.js';
import { signPreCommand, verifySignature } from '../src/signature.js';

const MIN_MS = Number(process.env['BENCH_MS'] ?? 700);

/** Operations per second of a synchronous function (after a warm-up). */
function rate(fn: () => unknown): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  let batch = 64;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < MIN_MS) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    t = performance.now();
    if (t - t0 < MIN_MS / 10) batch *= 2;
  }
  return n / ((t - t0) / 1000);
}

/** Operations per second of an async function, awaited one at a time. */
async function rateAsync(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < MIN_MS) {
    for (let i = 0; i < 32; i++) await fn();
    n += 32;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

const rates = new Map<string, number>();

/** Print one row as a JSON line; `baseline` names an earlier row (or a rate computed from several). */
function row(bench: string, opsPerSec: number, baseline?: string, extra: Record<string, unknown> = {}): number {
  rates.set(bench, opsPerSec);
  const base = baseline === undefined ? undefined : rates.get(baseline);
  console.log(
    JSON.stringify({ bench, opsPerSec: Math.round(opsPerSec), baseline: baseline ?? null, ratio: base === undefined ? null : Number((opsPerSec / base).toFixed(4)), ...extra }),
  );
  return opsPerSec;
}

// ---------------------------------------------------------------------------------------------
// fixtures: a remote disconnect pre-command (docs/domain.md §5), signed (~120 bytes), and in a DD frame

const user = generateKeyPairSync('ec', { namedCurve: 'P-256' }); // the User's DS key
const acb = generateKeyPairSync('ec', { namedCurve: 'P-256' }); // the ACB's KA key
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' }); // the device's KA key
const fields = {
  cra: 'command',
  originatorCounter: 1000n,
  originator: '90B3D51F30010000',
  recipient: '00DB1234567890A0',
  messageCode: 0x0050,
  payload: Uint8Array.from(Buffer.from('D9200003E8000103000900000A006AFF0101120034', 'hex')),
  signatureField: 'empty',
} as const;
const preCommand = buildMessage(fields);
const signed = await signPreCommand(preCommand, user.privateKey);
const parsedSigned = parseMessage(signed);
const tbs = signedBytes(parsedSigned);
const sig = parsedSigned.signature as Uint8Array;
const aes = new Uint8Array(16).fill(7);
const iv = Uint8Array.from(Buffer.from('90B3D51F30010000' + '00000000', 'hex'));
const aad = macAad(signed);
const frame = buildGeneralCiphering(signed, new Uint8Array(12));
const signer = createKeySigner(user.privateKey);
const kdfFields = { originator: fields.originator, recipient: fields.recipient, counter: fields.originatorCounter, mode: 'command' } as const;

const info = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', msPerRow: MIN_MS, signedBytes: signed.length, frameBytes: frame.length };

// -- raw primitives (node:crypto): the baselines
const VERIFY = 'node:crypto ECDSA P-256 verify';
const SIGN = 'node:crypto ECDSA P-256 sign';
const ECDH = 'node:crypto ECDH P-256';
const GCM = `node:crypto AES-128-GCM tag, ${aad.length}-byte AAD`;
row(VERIFY, rate(() => nodeVerify('sha256', tbs, { key: user.publicKey, dsaEncoding: 'ieee-p1363' }, sig)), undefined, info);
row(SIGN, rate(() => nodeSign('sha256', tbs, { key: user.privateKey, dsaEncoding: 'ieee-p1363' })));
row(ECDH, rate(() => diffieHellman({ privateKey: acb.privateKey, publicKey: device.publicKey })));
row(
  GCM,
  rate(() => {
    const c = createCipheriv('aes-128-gcm', aes, iv, { authTagLength: 12 });
    c.setAAD(aad);
    c.final();
    return c.getAuthTag();
  }),
);
// The primitives a full DD-frame check needs, one after the other.
const BOUND = 'primitive bound: verify + ECDH + AES-GCM';
row(BOUND, 1 / (1 / (rates.get(VERIFY) as number) + 1 / (rates.get(ECDH) as number) + 1 / (rates.get(GCM) as number)));

// -- codec
row(`parseMessage, signed pre-command (${signed.length} B)`, rate(() => parseMessage(signed)), VERIFY);
row(`parseMessage, DD frame (${frame.length} B)`, rate(() => parseMessage(frame)), VERIFY);
row(`parseMessage, unsigned pre-command (${preCommand.length} B)`, rate(() => parseMessage(preCommand)), VERIFY);
row('buildMessage (from fields)', rate(() => buildMessage(fields)), VERIFY);

// -- signatures
row('signPreCommand (private KeyObject)', await rateAsync(() => signPreCommand(preCommand, user.privateKey)), SIGN);
row('signPreCommand (core Signer)', await rateAsync(() => signPreCommand(preCommand, signer)), SIGN);
row('verifySignature (bytes: parse + verify)', rate(() => verifySignature(signed, user.publicKey)), VERIFY);
row('verifySignature (parsed message)', rate(() => verifySignature(parsedSigned, user.publicKey)), VERIFY);

// -- key derivation and MAC
const devicePem = device.publicKey.export({ format: 'pem', type: 'spki' }) as string;
row('deriveKey (ECDH + SHA-256 KDF, peer KeyObject)', rate(() => deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...kdfFields })), ECDH);
row('deriveKey (peer as PEM)', rate(() => deriveKey({ privateKey: acb.privateKey, publicKey: devicePem, ...kdfFields })), ECDH);
const ka = createKeyAgreement(acb.privateKey);
row('deriveKeyAsync (KeyAgreement in process)', await rateAsync(() => deriveKeyAsync({ keyAgreement: ka, publicKey: device.publicKey, ...kdfFields })), ECDH);
const key = deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...kdfFields });
const mac = computeMacBytes({ key, originator: fields.originator, aad });
row('computeMacBytes', rate(() => computeMacBytes({ key, originator: fields.originator, aad })), GCM);
row('verifyMacBytes (given the key)', rate(() => verifyMacBytes({ key, originator: fields.originator, aad, mac })), GCM);
let counter = 0n;
row(
  'deriveKey + computeMacBytes per command',
  rate(() => {
    const k = deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...kdfFields, counter: counter++ });
    return computeMacBytes({ key: k, originator: fields.originator, aad });
  }),
  ECDH,
);

// -- whole messages
const acbKeys = { privateKey: acb.privateKey, publicKey: device.publicKey };
const deviceKeys = { privateKey: device.privateKey, publicKey: acb.publicKey };
const wrapped = wrapWithMac(signed, acbKeys);
if (verifyMac(wrapped, deviceKeys) !== true) throw new Error('bench fixture: wrapWithMac and verifyMac disagree');
row('wrapWithMac (parse + deriveKey + MAC + frame)', rate(() => wrapWithMac(signed, acbKeys)), ECDH);
row('verifyMac (DD frame bytes: parse + deriveKey + MAC)', rate(() => verifyMac(wrapped, deviceKeys)), ECDH);
row('verifySignature + verifyMac (DD frame bytes)', rate(() => verifySignature(wrapped, user.publicKey) && verifyMac(wrapped, deviceKeys)), BOUND);
