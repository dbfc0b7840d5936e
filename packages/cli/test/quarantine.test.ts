// `smki quarantine`: commands held by the anomaly threshold, listed, released (checks run again,
// the frame printed, logged with the operator) or discarded (once).
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initLab, northWithSignedDisconnects, smki } from './_smki.js';

const M1 = '00DB123456789001';
let lab: string;
const run = (args: string[]) => smki(['--dir', lab, ...args]);
const held = () => JSON.parse(run(['quarantine', 'list', '--json']).stdout) as { id: string; counter: string; device: string }[];

beforeAll(() => {
  lab = initLab(['--anomaly-threshold', '0050:1:3600000']);
  northWithSignedDisconnects(lab, M1, 3);
}, 120_000);

describe('smki quarantine', () => {
  it('holds what crosses the threshold (exit 3), lists it, releases one (frame, exit 0) and discards one, once', () => {
    const v = run(['command', 'validate', '--in', join(lab, '..', 'signed.hex')]);
    expect(v.status).toBe(3);
    expect(v.stdout).toMatch(/1 accepted, 0 rejected, 2 quarantined/);
    const list = held();
    expect(list).toHaveLength(2);
    expect(list.every((r) => r.device === M1)).toBe(true);
    const rel = run(['quarantine', 'release', list[0]!.id, '--operator', 'alice', '--json']);
    expect(rel.status, rel.stderr).toBe(0);
    const d = JSON.parse(rel.stdout) as { outcome: string; counter: string; frame: string };
    expect(d.outcome).toBe('accepted');
    expect(d.counter).toBe(list[0]!.counter);
    expect(d.frame).toMatch(/^DD00/);
    expect(held().map((r) => r.id)).toEqual([list[1]!.id]);
    expect(run(['quarantine', 'discard', list[1]!.id, '--operator', 'bob']).status).toBe(0);
    expect(held()).toEqual([]);
    const again = run(['quarantine', 'discard', list[1]!.id, '--operator', 'bob']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('ERR_QUARANTINE_NOT_HELD');
    const rel2 = run(['quarantine', 'release', list[0]!.id, '--operator', 'alice', '--json']);
    expect(rel2.status).toBe(1);
    expect((JSON.parse(rel2.stdout) as { code: string }).code).toBe('ERR_QUARANTINE_NOT_HELD');
    // Both decisions are in the decision log, which verifies.
    expect(run(['audit', 'verify']).status).toBe(0);
    expect(run(['quarantine', 'release', list[0]!.id]).status).toBe(2);
  }, 120_000);
});
