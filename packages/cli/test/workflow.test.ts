// The supplier-to-DCC flow of `smki` as a user runs it, one process per step, each checked through
// `--json`: a state directory; two portfolios with certified keys (key segregation, docs/domain.md);
// meters added one by one (simulated) and 2,000 imported from a CSV (a CSV with one bad row changes
// nothing); critical commands built, signed with the key each meter trusts and validated by the
// DCC side (GBCS general-signing pre-commands counter-signed with the ACB MAC: docs/domain.md §4
// and §5), with every frame checked as the meter checks it (its KA private key, the ACB's KA
// certificate); the refusals a DCC must make (unapproved or revoked firmware, a signature by the
// wrong portfolio's key, a revoked signer, a network operator's disconnect); hex, base64 and binary
// files; the blast radius of each key and the credential updates a move needs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyObject } from 'node:crypto';
import { FileKeyBackend, KeyStore } from '@smki/keystore';
import { parseMessage, signPreCommand, verifyMac } from '@smki/gbcs';
import { acbCertificate, euis, importCsv, makeMeters, simulatedMeterKey, type Meter } from './_devices.js';
import { initLab, PASSPHRASE, smki, tempDir, type SmkiResult } from './_smki.js';

const SUPPLIER = '90B3D51F30010000';
const NETWORK_OPERATOR = '90B3D51F30030000';
const MODEL = 'ACME-ESME-1';
const N1 = '00DB100000000001'; // north, simulated, model ACME-ESME-1
const N2 = '00DB100000000002'; // north, simulated (moved to south later)
const S1 = '00DB200000000001'; // south, simulated, model ACME-ESME-1
const IMAGE_A = 'A'.repeat(64);
const IMAGE_B = 'B'.repeat(64);

let lab: string;
let work: string;
let northKey: string;
let southKey: string;
let imported: Meter[];

function run(args: readonly string[], timeoutMs?: number): SmkiResult {
  return smki([...args, '--dir', lab], { ...(timeoutMs ? { timeoutMs } : {}) });
}

/** Run with --json; exit 0; the one JSON document. */
function ok<T = Record<string, unknown>>(args: readonly string[], timeoutMs?: number): T {
  const r = run([...args, '--json'], timeoutMs);
  expect(r.status, `smki ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** Run with --json expecting an error document; returns its code (and checks its exit). */
function refused(args: readonly string[], status = 1): { code: string; message: string; detail?: string } {
  const r = run([...args, '--json']);
  expect(r.status, `smki ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(status);
  const doc = JSON.parse(r.stdout) as { error: { code: string; message: string; detail?: string; exit: number } };
  expect(doc.error.exit).toBe(status);
  return doc.error;
}

interface DecisionLine {
  index: number;
  outcome: 'accepted' | 'rejected' | 'quarantined';
  code?: string;
  step?: string;
  device: string;
  messageCode: string;
  counter: string;
}

/** Build, sign and validate; returns the decisions (JSON lines) and the frames file's lines. */
function flow(
  kind: string,
  devices: readonly string[],
  options: { build?: string[]; sign?: string[]; validate?: string[]; format?: 'hex' | 'base64' | 'binary'; status?: number } = {},
): { decisions: DecisionLine[]; frames: Uint8Array[]; signed: string } {
  const format = options.format ?? 'hex';
  const dir = tempDir('smki-flow-');
  const pre = join(dir, `pre.${format}`);
  const signed = join(dir, `signed.${format}`);
  const frames = join(dir, `frames.${format}`);
  const built = ok<{ commands: number; kind: string }>(['command', 'build', kind, ...devices.flatMap((d) => ['--device', d]), '--format', format, '--out', pre, ...(options.build ?? [])]);
  expect(built).toMatchObject({ kind, commands: devices.length });
  expect(ok<{ signed: number }>(['command', 'sign', '--in', pre, '--format', format, '--out', signed, ...(options.sign ?? [])]).signed).toBe(devices.length);
  const v = run(['command', 'validate', '--in', signed, '--format', format, '--out', frames, '--json', ...(options.validate ?? [])]);
  expect(v.status, v.stdout + v.stderr).toBe(options.status ?? 0);
  const decisions = v.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as DecisionLine);
  expect(decisions).toHaveLength(devices.length);
  return { decisions, frames: readCommands(frames, format), signed };
}

/** Commands of a file in a format (binary: the whole file, when not empty). */
function readCommands(file: string, format: 'hex' | 'base64' | 'binary'): Uint8Array[] {
  const buf = readFileSync(file);
  if (format === 'binary') return buf.length === 0 ? [] : [new Uint8Array(buf)];
  return buf
    .toString('utf8')
    .split('\n')
    .slice(0, -1)
    .map((l) => new Uint8Array(Buffer.from(l, format)));
}

/** The meter's own check of a frame: the ACB MAC under its KA key, for it, with this counter. */
function meterAccepts(frame: Uint8Array, meter: string, key: KeyObject): boolean {
  const m = parseMessage(frame);
  expect(m.frame).toBe('ciphered');
  expect(m.recipient).toBe(meter);
  return verifyMac(frame, { privateKey: key, publicKey: acbCertificate(lab) });
}

let fresh: Meter[];

const portfolioCounts = () => ok<{ id: string; devices: number }[]>(['portfolio', 'list']).map((p) => [p.id, p.devices]);

/** Import a CSV; refused with ERR_CLI_INPUT_INVALID naming `row`; no row's device exists after. */
function expectRefused(csv: string, row: string): void {
  const counts = portfolioCounts();
  const file = join(work, `bad-${row.replace(/\W/g, '')}-${Math.random().toString(36).slice(2)}.csv`);
  writeFileSync(file, csv);
  const e = refused(['device', 'import', file]);
  expect(e.code).toBe('ERR_CLI_INPUT_INVALID');
  expect(`${e.message} ${e.detail ?? ''}`).toContain(row);
  expect(refused(['device', 'show', fresh[0]!.eui]).code).toBe('ERR_CLI_NOT_FOUND');
  expect(portfolioCounts()).toEqual(counts);
}

describe('smki from a state directory to MACed frames', () => {
  beforeAll(() => {
    lab = initLab();
    work = tempDir('smki-work-');
  });

  it('creates two portfolios, each with its own certified signing key', () => {
    for (const p of ['north', 'south']) {
      expect(ok(['portfolio', 'create', p])).toMatchObject({ id: p, organisation: SUPPLIER });
      const k = ok<{ keyId: string; state: string; purpose: string; certificateSerial: string }>(['key', 'generate', p, '--certify']);
      expect(k).toMatchObject({ purpose: 'signing', state: 'active', certificateSerial: expect.stringMatching(/^[0-9A-F]+$/) });
      if (p === 'north') northKey = k.keyId;
      else southKey = k.keyId;
    }
    expect(northKey).not.toBe(southKey);
    const list = ok<{ id: string; current: { signing?: string }; devices: number }[]>(['portfolio', 'list']);
    // `smki init` made the portfolio `duis` for the supplier's DUIS XML-signing key (no meter in it).
    expect(list.map((p) => [p.id, p.current.signing, p.devices])).toEqual([
      ['duis', undefined, 0],
      ['north', northKey, 0],
      ['south', southKey, 0],
    ]);
  });

  it('adds simulated meters to each portfolio; each trusts its own portfolio key', () => {
    const keys = ok<{ keyId: string; serialNumber: string }[]>(['key', 'list']);
    for (const [d, p, model] of [
      [N1, 'north', MODEL],
      [N2, 'north', undefined],
      [S1, 'south', MODEL],
    ] as const) {
      const rec = ok<{ device: string; cells: { role: number; ski: string }[] }>(['device', 'add', d, '--portfolio', p, '--simulate', ...(model ? ['--model', model] : [])]);
      expect(rec.device).toBe(d);
      const show = ok<{ registry: { model?: string; supplier: string }; keystore: { portfolio: string; installed: { signing: string } } }>(['device', 'show', d]);
      expect(show.keystore).toEqual({ portfolio: p, installed: expect.objectContaining({ signing: p === 'north' ? northKey : southKey }) });
      expect(show.registry).toMatchObject({ supplier: SUPPLIER, ...(model ? { model } : {}) });
    }
    expect(keys).toHaveLength(3); // north's, south's, and the supplier's DUIS XML-signing key
    // The supplier cells of a north and a south meter name different certificates.
    const ski = (d: string) => ok<{ registry: { cells: { role: number; ski: string }[] } }>(['device', 'show', d]).registry.cells.find((c) => c.role === 2)!.ski;
    expect(ski(N1)).toBe(ski(N2));
    expect(ski(N1)).not.toBe(ski(S1));
  });

  it('imports 2,000 meters from a CSV (certificates from the lab device CA)', async () => {
    imported = await makeMeters(
      lab,
      euis('00DB300000000000', 2000).map((eui, i) => ({ eui, portfolio: i % 2 === 0 ? 'north' : 'south', ...(i < 10 ? { model: MODEL } : {}), ...(i % 7 === 3 ? { fuel: 'gas' as const } : {}) })),
    );
    const csv = join(work, 'meters.csv');
    writeFileSync(csv, importCsv(imported));
    const started = Date.now();
    const r = ok<{ imported: number; portfolios: Record<string, number> }>(['device', 'import', csv], 300_000);
    console.log(`device import of 2,000 rows: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(r).toEqual({ imported: 2000, portfolios: { north: 1000, south: 1000 } });
    const last = imported[1999]!;
    expect(ok<{ registry: { fuel: string }; keystore: { portfolio: string } }>(['device', 'show', last.eui])).toMatchObject({ registry: { fuel: last.fuel }, keystore: { portfolio: 'south' } });
    const counts = ok<{ id: string; devices: number }[]>(['portfolio', 'list']).map((p) => [p.id, p.devices]);
    expect(counts).toEqual([
      ['duis', 0],
      ['north', 1002],
      ['south', 1001],
    ]);
  }, 400_000);

  describe('a CSV with one bad row is refused, naming the row, and changes nothing', () => {
    beforeAll(async () => {
      fresh = await makeMeters(lab, euis('00DB400000000000', 6).map((eui) => ({ eui, portfolio: 'north' })));
    });

    it('a fuel that is not one', () => {
      const lines = importCsv(fresh).split('\n');
      lines[4] = lines[4]!.replace(',electricity,', ',water,');
      expectRefused(lines.join('\n'), 'row 5');
    });

    it("another meter's certificate", () => {
      const lines = importCsv(fresh).split('\n');
      lines[3] = [...lines[3]!.split(',').slice(0, 5), Buffer.from(fresh[0]!.certificate.der).toString('base64')].join(',');
      expectRefused(lines.join('\n'), 'row 4');
    });

    it('a device that is not an EUI-64, and one listed twice', () => {
      const lines = importCsv(fresh).split('\n');
      expectRefused(lines.map((l, i) => (i === 6 ? l.replace(/^00DB/, 'ZZDB') : l)).join('\n'), 'row 7');
      expectRefused([...lines.slice(0, -1), lines[2]!, ''].join('\n'), 'row 8');
    });
  });

  it('disconnect, reconnect and arm: accepted, and each frame passes the meter’s own MAC check', () => {
    const n1 = simulatedMeterKey(lab, N1);
    const s1 = simulatedMeterKey(lab, S1);
    const m0 = imported[0]!; // north, electricity, made outside smki
    const codes = new Set<string>();
    for (const kind of ['disconnect', 'reconnect', 'arm']) {
      const { decisions, frames } = flow(kind, [N1, S1, m0.eui]);
      expect(decisions.map((d) => [d.outcome, d.device])).toEqual([
        ['accepted', N1],
        ['accepted', S1],
        ['accepted', m0.eui],
      ]);
      expect(new Set(decisions.map((d) => d.messageCode)).size).toBe(1);
      codes.add(decisions[0]!.messageCode);
      expect(frames).toHaveLength(3);
      expect(meterAccepts(frames[0]!, N1, n1)).toBe(true);
      expect(meterAccepts(frames[1]!, S1, s1)).toBe(true);
      expect(meterAccepts(frames[2]!, m0.eui, m0.privateKey)).toBe(true);
      // And not under another meter's key.
      expect(verifyMac(frames[0]!, { privateKey: s1, publicKey: acbCertificate(lab) })).toBe(false);
    }
    expect(codes.size).toBe(3);
  });

  it('activate-firmware: an approved image is accepted; an unapproved one and a revoked one are refused', () => {
    expect(ok(['firmware', 'approve', MODEL, IMAGE_A])).toMatchObject({ model: MODEL, imageHash: IMAGE_A, result: expect.any(String) });
    const good = flow('activate-firmware', [N1, S1], { build: ['--image-hash', IMAGE_A] });
    expect(good.decisions.map((d) => d.outcome)).toEqual(['accepted', 'accepted']);
    expect(meterAccepts(good.frames[0]!, N1, simulatedMeterKey(lab, N1))).toBe(true);
    const unapproved = flow('activate-firmware', [N1], { build: ['--image-hash', IMAGE_B], status: 1 });
    expect(unapproved.decisions[0]).toMatchObject({ outcome: 'rejected', code: 'ERR_FIRMWARE_NOT_APPROVED', step: 'firmware' });
    expect(unapproved.frames).toEqual([new Uint8Array(0)]); // an empty line for a refused one
    // A meter without a model has no approved image.
    expect(flow('activate-firmware', [N2], { build: ['--image-hash', IMAGE_A], status: 1 }).decisions[0]!.code).toBe('ERR_FIRMWARE_NOT_APPROVED');
    expect(ok(['firmware', 'revoke', MODEL, IMAGE_A, '--reason', 'withdrawn by the manufacturer'])).toMatchObject({ revoked: true, changed: true });
    const revoked = flow('activate-firmware', [N1], { build: ['--image-hash', IMAGE_A], status: 1 });
    expect(revoked.decisions[0]).toMatchObject({ outcome: 'rejected', code: 'ERR_FIRMWARE_NOT_APPROVED' });
    // Revocation is final: approving the image again is refused.
    expect(refused(['firmware', 'approve', MODEL, IMAGE_A]).code).toBe('ERR_FIRMWARE_NOT_APPROVED');
    const list = ok<{ imageHash: string; state: string }[]>(['firmware', 'list', '--model', MODEL]);
    expect(list).toEqual([expect.objectContaining({ imageHash: IMAGE_A, state: 'revoked' })]);
  });

  it('hex, base64 and binary: the same pre-command in each, and frames that round-trip', () => {
    const counter = String(Date.now());
    const pre = (format: string) => {
      const out = join(work, `same.${format}`);
      ok(['command', 'build', 'reconnect', '--device', N2, '--counter', counter, '--format', format, '--out', out]);
      return out;
    };
    const hex = readCommands(pre('hex'), 'hex');
    expect(readCommands(pre('base64'), 'base64')).toEqual(hex);
    expect(readCommands(pre('binary'), 'binary')).toEqual(hex);
    expect(hex).toHaveLength(1);
    expect(parseMessage(hex[0]!).originatorCounter).toBe(BigInt(counter));
    // Signed and validated in each format (a meter per format: one counter is accepted once).
    for (const [format, meter, key] of [
      ['hex', N2, simulatedMeterKey(lab, N2)],
      ['base64', S1, simulatedMeterKey(lab, S1)],
      ['binary', imported[0]!.eui, imported[0]!.privateKey],
    ] as const) {
      const { decisions, frames } = flow('reconnect', [meter], { format });
      expect(decisions[0]!.outcome, format).toBe('accepted');
      expect(frames, format).toHaveLength(1);
      expect(meterAccepts(frames[0]!, meter, key), format).toBe(true);
    }
    // A binary file holds one command: a batch in binary is a usage error.
    const e = refused(['command', 'build', 'reconnect', '--device', N2, '--device', S1, '--format', 'binary', '--out', join(work, 'two.bin')], 2);
    expect(e.code).toBe('ERR_CLI_USAGE');
  });

  // smki signs each command with the key its meter trusts, so it cannot be asked to sign a south
  // meter's command with north's key. The wrong-key signature is made the way a confused signing
  // system would: the key store (the same one, opened by this test while no smki runs) is asked to
  // sign the bytes of S1's pre-command "for" N1, a north meter, so north's key signs them. The
  // DCC side then sees a valid signature by the supplier's other portfolio key.
  it("a south meter's command signed with north's key is refused ERR_COMMAND_PORTFOLIO_MISMATCH", async () => {
    const preFile = join(work, 'south.hex');
    ok(['command', 'build', 'disconnect', '--device', S1, '--out', preFile]);
    const pre = readCommands(preFile, 'hex')[0]!;
    const m = parseMessage(pre);
    const backend = await FileKeyBackend.open({ directory: join(lab, 'keystore'), passphrase: PASSPHRASE });
    const ks = await KeyStore.open({ directory: join(lab, 'keystore'), backend, passphrase: PASSPHRASE });
    let signed: Uint8Array;
    try {
      signed = await signPreCommand(pre, { publicKey: new Uint8Array(0), sign: (data) => ks.signFor(N1, data, { messageCode: m.messageCode, counter: m.originatorCounter }) });
    } finally {
      await ks.close();
      await backend.close();
    }
    const file = join(work, 'south-signed-by-north.hex');
    writeFileSync(file, `${Buffer.from(signed).toString('hex')}\n`);
    const r = run(['command', 'validate', '--in', file, '--json']);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'rejected', code: 'ERR_COMMAND_PORTFOLIO_MISMATCH', step: 'signature', device: S1 });
  });

  it("a network operator's disconnect is refused ERR_COMMAND_ROLE_NOT_ELIGIBLE", () => {
    const { decisions, frames } = flow('disconnect', [N1], { build: ['--as', 'network-operator'], sign: ['--as', 'network-operator'], validate: ['--sender', NETWORK_OPERATOR], status: 1 });
    expect(decisions[0]).toMatchObject({ outcome: 'rejected', code: 'ERR_COMMAND_ROLE_NOT_ELIGIBLE', originator: NETWORK_OPERATOR });
    expect(frames).toEqual([new Uint8Array(0)]);
    // The supplier's own command sent by the network operator is not the sender's: refused too.
    const spoof = flow('reconnect', [N1], { validate: ['--sender', NETWORK_OPERATOR], status: 1 });
    expect(spoof.decisions[0]!.outcome).toBe('rejected');
  });

  it("portfolio blast-radius counts each key's meters", () => {
    const report = ok<{ keyId: string; portfolioId: string; meters: number; wholeEstate: boolean; devices?: string[] }[]>(['portfolio', 'blast-radius']);
    expect(report.map((e) => [e.keyId, e.portfolioId, e.meters, e.wholeEstate])).toEqual(
      expect.arrayContaining([
        [northKey, 'north', 1002, false],
        [southKey, 'south', 1001, false],
      ]),
    );
    expect(report.every((e) => e.devices === undefined)).toBe(true);
    const north = ok<{ keyId: string; meters: number; devices: string[] }[]>(['portfolio', 'blast-radius', '--key', northKey, '--list']);
    expect(north).toHaveLength(1);
    expect(north[0]!.devices).toHaveLength(1002);
    expect(north[0]!.devices).toEqual(expect.arrayContaining([N1, N2, imported[0]!.eui]));
    expect(north[0]!.devices).not.toContain(S1);
  });

  it('portfolio move lists the credential update; the meter is signed for with the key it still trusts', () => {
    const moved = ok<{ updates: { device: string; purpose: string; fromKeyId: string; toKeyId: string }[] }>(['portfolio', 'move', N2, 'south']);
    expect(moved.updates).toEqual([{ device: N2, purpose: 'signing', fromKeyId: northKey, toKeyId: southKey }]);
    expect(ok<{ keystore: { portfolio: string; installed: { signing: string } } }>(['device', 'show', N2]).keystore).toEqual({ portfolio: 'south', installed: expect.objectContaining({ signing: northKey }) });
    const { decisions } = flow('disconnect', [N2]);
    expect(decisions[0]!.outcome).toBe('accepted');
  });

  it("key revoke: a command north signed before is refused ERR_COMMAND_SIGNER_REVOKED; north's key signs no more", () => {
    const dir = join(work, 'revoke');
    mkdirSync(dir);
    ok(['command', 'build', 'disconnect', '--device', N1, '--out', join(dir, 'pre.hex')]);
    ok(['command', 'sign', '--in', join(dir, 'pre.hex'), '--out', join(dir, 'signed.hex')]);
    const rev = ok<{ keyId: string; state: string; crlNumber: string }>(['key', 'revoke', northKey]);
    expect(rev).toMatchObject({ keyId: northKey, state: 'revoked', crlNumber: '2' });
    const r = run(['command', 'validate', '--in', join(dir, 'signed.hex'), '--json']);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'rejected', code: 'ERR_COMMAND_SIGNER_REVOKED', device: N1 });
    // South is untouched: its meters' commands are still accepted.
    expect(flow('reconnect', [S1]).decisions[0]!.outcome).toBe('accepted');
    // Signing for a north meter now fails in the key store.
    ok(['command', 'build', 'reconnect', '--device', N1, '--out', join(dir, 'pre2.hex')]);
    expect(refused(['command', 'sign', '--in', join(dir, 'pre2.hex'), '--out', join(dir, 'signed2.hex')]).code).toBe('ERR_KEY_REVOKED');
  });

  // A row whose meter is already in the other portfolio is found only while writing: the rows
  // before it must not have been assigned by then ("all rows are checked before any is written").
  it('a CSV whose last row names a meter of the other portfolio changes nothing (run last: it would leave assignments behind)', () => {
    // To south (north's key is revoked by now); the last row's meter is in north.
    const lines = importCsv(fresh.map((m) => ({ ...m, portfolio: 'south' }))).split('\n');
    const taken = imported[0]!;
    expect(taken.portfolio).toBe('north');
    const row = [taken.eui, 'ESME', taken.fuel, '', 'south', Buffer.from(taken.certificate.der).toString('base64')].join(',');
    expectRefused([...lines.slice(0, -1), row, ''].join('\n'), taken.eui);
  });
});
