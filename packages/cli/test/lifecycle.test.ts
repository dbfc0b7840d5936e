// A key's life from the command line: rotate (the meters keep the old key until their credential
// update is confirmed, and commands signed with it still pass), confirm each update (the key store
// and the DCC's registry move to the new key together; the old key's signatures are then refused
// as another portfolio's), retire the old key once no meter trusts it; and the per-key cap.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initLab, smki } from './_smki.js';

const M1 = '00DB123456789001';
const M2 = '00DB123456789002';
const OLD = '90B3D51F30010000.north.DS.g1';
const NEW = '90B3D51F30010000.north.DS.g2';
let lab: string;
const run = (args: string[]) => smki(['--dir', lab, ...args]);
const ok = (args: string[]) => {
  const r = run(args);
  expect(r.status, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
};
const file = (name: string) => join(lab, '..', name);
/** Build and sign one disconnect for `device`; returns the signed file. */
const signed = (device: string, name: string) => {
  ok(['command', 'build', 'disconnect', '--device', device, '--out', file(`${name}.pre`)]);
  ok(['command', 'sign', '--in', file(`${name}.pre`), '--out', file(name)]);
  return file(name);
};

beforeAll(() => {
  lab = initLab(['--max-devices-per-key', '2']);
  ok(['portfolio', 'create', 'north']);
  ok(['key', 'generate', 'north', '--certify']);
  ok(['device', 'add', M1, '--portfolio', 'north', '--simulate']);
  ok(['device', 'add', M2, '--portfolio', 'north', '--simulate']);
}, 120_000);

describe('key lifecycle', () => {
  it('the per-key cap set at init refuses a third meter on the key (exit 1) and writes nothing', () => {
    const r = run(['device', 'add', '00DB123456789003', '--portfolio', 'north', '--simulate']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_PORTFOLIO_DEVICE_CAP');
    expect(run(['device', 'show', '00DB123456789003']).status).toBe(1);
  });

  it('rotate, confirm, refuse the old key, retire', () => {
    const rot = JSON.parse(ok(['key', 'rotate', 'north', '--json']).stdout) as { keyId: string; updates: { device: string; fromKeyId: string; toKeyId: string }[] };
    expect(rot.keyId).toBe(NEW);
    expect(rot.updates.map((u) => [u.device, u.fromKeyId, u.toKeyId])).toEqual([
      [M1, OLD, NEW],
      [M2, OLD, NEW],
    ]);
    // Until confirmed, the meters trust the old key: the store signs with it and the DCC accepts.
    const before = signed(M1, 'before');
    ok(['command', 'validate', '--in', before]);
    // Retiring the old key is refused while meters trust it.
    expect(run(['key', 'retire', OLD]).status).toBe(1);
    // A command signed with the old key, held back, and M1's update confirmed.
    const held = signed(M1, 'held');
    ok(['device', 'updated', M1]);
    const show = JSON.parse(ok(['device', 'show', M1, '--json']).stdout) as { keystore: { installed: { signing: string } }; registry: { cells: { role: number; ski: string }[] } };
    expect(show.keystore.installed.signing).toBe(NEW);
    const keys = JSON.parse(ok(['key', 'list', '--json']).stdout) as { keyId: string; serialNumber: string }[];
    const newCert = JSON.parse(ok(['cert', 'inspect', keys.find((k) => k.keyId === NEW)!.serialNumber, '--json']).stdout) as { subjectKeyId?: string; ski?: string };
    expect(show.registry.cells.find((c) => c.role === 2)!.ski).toBe(newCert.subjectKeyId ?? newCert.ski);
    // The DCC now refuses the old key's signature for M1 (another key of the same supplier).
    const v = run(['command', 'validate', '--in', held, '--json']);
    expect(v.status).toBe(1);
    expect((JSON.parse(v.stdout.trim()) as { code: string }).code).toBe('ERR_COMMAND_PORTFOLIO_MISMATCH');
    // New commands are signed with the new key and accepted.
    ok(['command', 'validate', '--in', signed(M1, 'after')]);
    // Once M2 is confirmed too, no meter trusts the old key: it retires.
    ok(['device', 'updated', M2]);
    const br = JSON.parse(ok(['portfolio', 'blast-radius', '--json']).stdout) as { keyId: string; meters: number }[];
    expect(br.map((e) => [e.keyId, e.meters])).toEqual([
      [NEW, 2],
      [OLD, 0],
    ]);
    ok(['key', 'retire', OLD]);
    expect((JSON.parse(ok(['key', 'list', '--json']).stdout) as { keyId: string; state: string }[]).map((k) => [k.keyId, k.state])).toEqual([
      ['90B3D51F30010000.duis.XML.g1', 'active'], // the DUIS XML-signing key smki init made
      [OLD, 'retired'],
      [NEW, 'active'],
    ]);
    expect(ok(['audit', 'verify']).stdout).toMatch(/every record of every log verifies/);
  }, 180_000);
});
