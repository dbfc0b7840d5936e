// scratch: the floor of a minimal synchronous validator (not committed)
import { createCipheriv, createHash, createHmac, diffieHellman, verify, type KeyObject } from 'node:crypto';
import { appendFileSync, fdatasyncSync, openSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Eui64, eui64ToBytes } from '@smki/core';
import { buildActivateFirmware, buildDisableSupply, parseMessage, signPreCommand, kdf, otherInfo, computeMacBytes, macAad, apduBytes, buildGeneralCiphering } from '@smki/gbcs';
import { buildWorld, SUPPLIER, T0 } from '../test/_world.js';
const DEVICES = 1000, COMMANDS = 10000;
const IMAGE = createHash('sha256').update('bench image').digest();
const world = await buildWorld({ meters: DEVICES, portfolios: 4, now: T0 });
const base = BigInt(T0.getTime()) - BigInt(COMMANDS) - 10n;
const commands: Uint8Array[] = [];
for (let i = 0; i < COMMANDS; i++) {
  const meter = world.meters[i % DEVICES]!;
  const counter = base + BigInt(i);
  const pre = i % 4 === 3 ? buildActivateFirmware({ originator: SUPPLIER, recipient: meter.eui, counter, imageHash: IMAGE }) : buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: meter.eui, counter });
  commands.push(await signPreCommand(pre, world.portfolios[meter.portfolio]!.signer));
}
const dsKeys = new Map<Eui64, KeyObject>(world.meters.map((m) => [m.eui, world.portfolios[m.portfolio]!.publicKey]));
const kaKeys = new Map<Eui64, KeyObject>(world.meters.map((m) => [m.eui, m.ka.publicKey]));
const parsed = commands.map((c) => parseMessage(c));
function baseline(): number {
  const t0 = performance.now();
  for (const m of parsed) {
    verify('sha256', m.bytes.subarray(m.signedRange.start, m.signedRange.end), { key: dsKeys.get(m.recipient)!, dsaEncoding: 'ieee-p1363' }, m.signature!);
    const z = diffieHellman({ privateKey: world.acb.privateKey, publicKey: kaKeys.get(m.recipient)! });
    const key = createHash('sha256').update(Buffer.of(0, 0, 0, 1)).update(z).update(m.bytes.subarray(0, 34)).digest().subarray(0, 16);
    const gcm = createCipheriv('aes-128-gcm', key, Buffer.alloc(12), { authTagLength: 12 });
    gcm.setAAD(m.bytes); gcm.final(); gcm.getAuthTag();
  }
  return COMMANDS / ((performance.now() - t0) / 1000);
}
const LOGKEY = Buffer.alloc(32, 1);
const fd = openSync(join(mkdtempSync(join(tmpdir(), 'floor-')), 'log'), 'a');
function minimal(withLog: boolean): number {
  const counters = new Map<string, bigint>();
  const titles = new Map<string, Uint8Array>();
  const t = (e: string) => { let x = titles.get(e); if (!x) titles.set(e, (x = eui64ToBytes(e as Eui64))); return x; };
  let prev = '0'.repeat(64);
  const lines: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < COMMANDS; i++) {
    const raw = commands[i]!;
    const m = parseMessage(raw);
    const k = m.originator + m.recipient;
    const last = counters.get(k);
    if (last !== undefined && m.originatorCounter <= last) throw new Error('replay');
    if (!verify('sha256', m.bytes.subarray(m.signedRange.start, m.signedRange.end), { key: dsKeys.get(m.recipient)!, dsaEncoding: 'ieee-p1363' }, m.signature!)) throw new Error('sig');
    const z = diffieHellman({ privateKey: world.acb.privateKey, publicKey: kaKeys.get(m.recipient)! });
    const o = t(m.originator);
    const key = kdf(z, otherInfo({ originator: o, mode: 'command', counter: m.originatorCounter, recipient: t(m.recipient) }));
    const apdu = apduBytes(m);
    const frame = buildGeneralCiphering(apdu, computeMacBytes({ key, originator: o, aad: macAad(apdu) }));
    counters.set(k, m.originatorCounter);
    if (withLog) {
      const h = createHash('sha256').update(raw).digest('hex').toUpperCase();
      const p = `{"seq":${i},"at":"2026-01-01T00:00:00.000Z","type":"command.accepted","originator":"${m.originator}","device":"${m.recipient}","messageCode":${m.messageCode},"counter":"${m.originatorCounter}","commandHash":"${h}","prev":"${prev}"`;
      const mac = createHmac('sha256', LOGKEY).update(p).update('}').digest('hex').toUpperCase();
      const line = `${p},"mac":"${mac}"}`;
      prev = createHash('sha256').update(line).digest('hex').toUpperCase();
      lines.push(line);
      if (lines.length === 250) { appendFileSync(fd, lines.join('\n') + '\n'); fdatasyncSync(fd); lines.length = 0; }
    }
    if (frame.length === 0) throw new Error('x');
  }
  return COMMANDS / ((performance.now() - t0) / 1000);
}
async function one(raw: Uint8Array, counters: Map<string, bigint>, t: (e: string) => Uint8Array): Promise<Uint8Array> {
  const m = parseMessage(raw);
  const dev = await Promise.resolve(m.recipient);
  const k = m.originator + m.recipient;
  const last = counters.get(k);
  if (last !== undefined && m.originatorCounter <= last) throw new Error('replay');
  if (!verify('sha256', m.bytes.subarray(m.signedRange.start, m.signedRange.end), { key: dsKeys.get(dev)!, dsaEncoding: 'ieee-p1363' }, m.signature!)) throw new Error('sig');
  await (async () => undefined)();
  const z = await (async () => diffieHellman({ privateKey: world.acb.privateKey, publicKey: kaKeys.get(m.recipient)! }))();
  const o = t(m.originator);
  const key = kdf(z, otherInfo({ originator: o, mode: 'command', counter: m.originatorCounter, recipient: t(m.recipient) }));
  const apdu = apduBytes(m);
  const frame = buildGeneralCiphering(apdu, computeMacBytes({ key, originator: o, aad: macAad(apdu) }));
  counters.set(k, m.originatorCounter);
  return frame;
}
async function asyncWindow(): Promise<number> {
  const counters = new Map<string, bigint>();
  const titles = new Map<string, Uint8Array>();
  const t = (e: string) => { let x = titles.get(e); if (!x) titles.set(e, (x = eui64ToBytes(e as Eui64))); return x; };
  const t0 = performance.now();
  const free: (() => void)[] = []; let inFlight = 0; const done: Promise<void>[] = [];
  for (let i = 0; i < COMMANDS; i++) {
    if (inFlight >= 250) await new Promise<void>((r) => free.push(r));
    inFlight++;
    done.push(one(commands[i]!, counters, t).then(() => { inFlight--; free.shift()?.(); }));
  }
  await Promise.all(done);
  return COMMANDS / ((performance.now() - t0) / 1000);
}
baseline(); minimal(true);
for (let r = 0; r < 3; r++) { const b1 = baseline(); const a = await asyncWindow(); const b2 = baseline(); console.log(JSON.stringify({ asyncNoLog: +(a / ((b1 + b2) / 2)).toFixed(3) })); }
for (let r = 0; r < 3; r++) {
  const b1 = baseline(); const a = minimal(false); const b = minimal(true); const b2 = baseline();
  const bb = (b1 + b2) / 2;
  console.log(JSON.stringify({ baseline: Math.round(bb), minimalNoLog: +(a / bb).toFixed(3), minimalWithLog: +(b / bb).toFixed(3) }));
}
