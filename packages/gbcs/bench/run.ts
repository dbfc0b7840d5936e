// `pnpm run bench` (from packages/gbcs): GBCS message rates beside the raw node:crypto primitive
// rates, measured in the same process, so the ratios say what the toolkit costs on top of the
// cryptography. Prints numbers; never fails on speed (CONVENTIONS.md "Tests").
import { createCipheriv, diffieHellman, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createKeySigner } from '@smki/core';
import { buildGeneralCiphering, buildMessage, parseMessage, signedBytes } from '../src/codec.js';
import * as gbcsCrypto from '../src/crypto.js';
import * as gbcsMac from '../src/mac.js';
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

const fmt = (r: number): string => Math.round(r).toLocaleString('en-GB').padStart(12);
function row(name: string, r: number, note = ''): number {
  console.log(`${name.padEnd(58)} ${fmt(r)} /s  ${note}`);
  return r;
}
const ratio = (a: number, b: number): string => `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}×`;

// ---------------------------------------------------------------------------------------------
// fixtures: a remote disconnect pre-command (SPEC §5), signed (~120 bytes), and in a DD frame

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
const aad = Uint8Array.from([0x11, 0, 0, 0, 0, 0, ...signed]); // 126 bytes, as the MAC's AAD
const aad150 = new Uint8Array(150).fill(0x5a);
const frame = buildGeneralCiphering(signed, new Uint8Array(12));
const signer = createKeySigner(user.privateKey);

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${MIN_MS} ms per row`);
console.log(`signed pre-command ${signed.length} bytes, DD frame ${frame.length} bytes, signed range ${tbs.length} bytes\n`);

console.log('-- raw primitives (node:crypto) --');
const rVerify = row('ECDSA P-256 verify (node:crypto, p1363)', rate(() => nodeVerify('sha256', tbs, { key: user.publicKey, dsaEncoding: 'ieee-p1363' }, sig)));
const rSign = row('ECDSA P-256 sign (node:crypto, p1363)', rate(() => nodeSign('sha256', tbs, { key: user.privateKey, dsaEncoding: 'ieee-p1363' })));
const rEcdh = row('ECDH P-256 (crypto.diffieHellman)', rate(() => diffieHellman({ privateKey: acb.privateKey, publicKey: device.publicKey })));
const gcm = (a: Uint8Array) => () => {
  const c = createCipheriv('aes-128-gcm', aes, iv, { authTagLength: 12 });
  c.setAAD(a);
  c.final();
  return c.getAuthTag();
};
const rGcm = row('AES-128-GCM tag, 150-byte AAD (createCipheriv)', rate(gcm(aad150)));

console.log('\n-- @smki/gbcs --');
const rParse = row(`parseMessage, signed pre-command (${signed.length} B)`, rate(() => parseMessage(signed)));
const rParseDd = row(`parseMessage, DD frame (${frame.length} B)`, rate(() => parseMessage(frame)));
row(`parseMessage, unsigned pre-command (${preCommand.length} B)`, rate(() => parseMessage(preCommand)));
const rBuild = row('buildMessage (from fields)', rate(() => buildMessage(fields)));
const rSignPre = await rateAsync(() => signPreCommand(preCommand, user.privateKey));
row('signPreCommand (private KeyObject)', rSignPre, `= ${ratio(rSignPre, rSign)} of node sign`);
const rSignSigner = await rateAsync(() => signPreCommand(preCommand, signer));
row('signPreCommand (core Signer)', rSignSigner, `= ${ratio(rSignSigner, rSign)} of node sign`);
const rVerifyBytes = rate(() => verifySignature(signed, user.publicKey));
row('verifySignature (bytes → parse + verify)', rVerifyBytes, `= ${ratio(rVerifyBytes, rVerify)} of node verify`);
const rVerifyParsed = rate(() => verifySignature(parsedSigned, user.publicKey));
row('verifySignature (parsed message)', rVerifyParsed, `= ${ratio(rVerifyParsed, rVerify)} of node verify`);

// MAC: only if the crypto helper module has what the bench needs (it is being written in parallel)
const c = gbcsCrypto as unknown as Record<string, unknown>;
type DeriveKey = (o: { privateKey: unknown; publicKey: unknown; originator: string; recipient: string; counter: bigint; mode: string }) => Uint8Array;
type MacFn = (o: { key: Uint8Array; originator: string; aad: Uint8Array; mac?: Uint8Array }) => unknown;
let rMacVerify: number | undefined;
let rFull: number | undefined;
if (typeof c['deriveKey'] === 'function' && typeof c['computeMacBytes'] === 'function' && typeof c['verifyMacBytes'] === 'function') {
  const deriveKey = c['deriveKey'] as DeriveKey;
  const computeMac = c['computeMacBytes'] as MacFn;
  const verifyMac = c['verifyMacBytes'] as MacFn;
  const macAad = typeof c['macAad'] === 'function' ? (c['macAad'] as (a: Uint8Array) => Uint8Array) : (a: Uint8Array) => Uint8Array.from([0x11, 0, 0, 0, 0, 0, ...a]);
  const kdfFields = { originator: fields.originator, recipient: fields.recipient, counter: fields.originatorCounter, mode: 'command' };
  const key = deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...kdfFields });
  const mac = computeMac({ key, originator: fields.originator, aad: macAad(signed) }) as Uint8Array;
  const macFrame = buildGeneralCiphering(signed, mac);
  const m = parseMessage(macFrame);
  const apdu = macFrame.subarray(m.apduRange.start, m.apduRange.end);
  const rDerive = rate(() => deriveKey({ privateKey: acb.privateKey, publicKey: device.publicKey, ...kdfFields }));
  row('deriveKey (ECDH + SHA-256 KDF)', rDerive, `= ${ratio(rDerive, rEcdh)} of raw ECDH`);
  const rMac = rate(() => computeMac({ key, originator: fields.originator, aad: macAad(apdu) }));
  row(`computeMacBytes (${aad.length}-byte AAD)`, rMac, `= ${ratio(rMac, rGcm)} of raw AES-GCM`);
  rMacVerify = rate(() => verifyMac({ key, originator: fields.originator, aad: macAad(apdu), mac }));
  row('verifyMacBytes (given the key)', rMacVerify, `= ${ratio(rMacVerify, rGcm)} of raw AES-GCM`);
  const ok = verifyMac({ key, originator: fields.originator, aad: macAad(apdu), mac });
  if (ok !== true) console.log('   (warning: the MAC did not verify in the bench fixture)');
  rFull = row(
    'DD frame: parse + verifySignature + deriveKey + verifyMac',
    rate(() => {
      const msg = parseMessage(macFrame);
      const a = msg.bytes.subarray(msg.apduRange.start, msg.apduRange.end);
      const k = deriveKey({ privateKey: device.privateKey, publicKey: acb.publicKey, originator: msg.originator, recipient: msg.recipient, counter: msg.originatorCounter, mode: 'command' });
      return verifySignature(msg, user.publicKey) && verifyMac({ key: k, originator: msg.originator, aad: macAad(a), mac: msg.mac as Uint8Array });
    }),
  );
} else {
  console.log('(src/crypto.ts has no deriveKey/computeMacBytes/verifyMacBytes yet: MAC rows skipped)');
}

// message-level MAC (src/mac.ts), if it is there
const mm = gbcsMac as unknown as Record<string, unknown>;
type Keys = { privateKey: unknown; publicKey: unknown };
let rVerifyMacMsg: number | undefined;
if (typeof mm['wrapWithMac'] === 'function' && typeof mm['verifyMac'] === 'function') {
  const wrapWithMac = mm['wrapWithMac'] as (apdu: Uint8Array, k: Keys) => Uint8Array;
  const verifyMacMsg = mm['verifyMac'] as (m: unknown, k: Keys) => boolean;
  const acbKeys = { privateKey: acb.privateKey, publicKey: device.publicKey };
  const deviceKeys = { privateKey: device.privateKey, publicKey: acb.publicKey };
  const wrapped = wrapWithMac(signed, acbKeys);
  if (verifyMacMsg(wrapped, deviceKeys) !== true) console.log('   (warning: wrapWithMac/verifyMac disagree in the bench fixture)');
  const rWrap = rate(() => wrapWithMac(signed, acbKeys));
  row('wrapWithMac (parse + deriveKey + MAC + frame)', rWrap, `= ${ratio(rWrap, rEcdh)} of raw ECDH`);
  rVerifyMacMsg = rate(() => verifyMacMsg(wrapped, deviceKeys));
  row('verifyMac (DD frame bytes: parse + deriveKey + MAC)', rVerifyMacMsg, `= ${ratio(rVerifyMacMsg, rEcdh)} of raw ECDH`);
  const rBoth = rate(() => verifySignature(wrapped, user.publicKey) && verifyMacMsg(wrapped, deviceKeys));
  row('verifySignature + verifyMac (DD frame bytes)', rBoth, `= ${ratio(rBoth, 1 / (1 / rVerify + 1 / rEcdh + 1 / rGcm))} of the primitive bound`);
}

console.log('\n-- ratios --');
console.log(`parses per ECDSA verify:          ${ratio(rParse, rVerify)} (signed), ${ratio(rParseDd, rVerify)} (DD frame)`);
console.log(`parses per ECDH:                  ${ratio(rParse, rEcdh)}`);
console.log(`parses per AES-GCM tag:           ${ratio(rParse, rGcm)}`);
console.log(`builds per ECDSA verify:          ${ratio(rBuild, rVerify)}`);
console.log(`verifySignature(bytes) / node:    ${ratio(rVerifyBytes, rVerify)}   (parsed message: ${ratio(rVerifyParsed, rVerify)})`);
console.log(`signPreCommand / node sign:       ${ratio(rSignPre, rSign)}   (core Signer: ${ratio(rSignSigner, rSign)})`);
if (rMacVerify !== undefined) console.log(`verifyMacBytes / AES-GCM:         ${ratio(rMacVerify, rGcm)}`);
if (rFull !== undefined) {
  const bound = 1 / (1 / rVerify + 1 / rEcdh + 1 / rGcm);
  console.log(`full DD check / primitive bound:  ${ratio(rFull, bound)}   (primitives alone: ${fmt(bound).trim()}/s)`);
}
if (rVerifyMacMsg !== undefined) console.log(`verifyMac(frame) / raw ECDH:       ${ratio(rVerifyMacMsg, rEcdh)}`);
console.log(`parse share of a verify:          ${((rVerify / rParse) * 100).toFixed(2)}% of the time of one signature check`);
console.log(rParse > 100_000 ? 'parseMessage is well above 100,000/s: parsing does not limit the validator.' : 'parseMessage is BELOW 100,000/s: parsing may limit the validator.');
