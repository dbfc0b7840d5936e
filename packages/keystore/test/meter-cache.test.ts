// The meter cache's storage (src/internal/db/meter-cache.ts) against a plain Map: any sequence of
// sets, lookups, deletions and clears answers as the Map does (so no lookup finds another meter's
// content, and no deletion loses a meter that stays), through table growth, long probe runs and
// the limit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MeterCache, type MeterContent } from '../src/internal/db/meter-cache.js';

const ORGS = ['90B3D51F30010000', '90B3D51F30020000'];
const contents: MeterContent[] = [
  { portfolio_id: 'north', inst_signing: 'K1', inst_key_agreement: null, inst_prepayment: null },
  { portfolio_id: 'north', inst_signing: 'K2', inst_key_agreement: 'KA1', inst_prepayment: null },
  { portfolio_id: 'south', inst_signing: null, inst_key_agreement: null, inst_prepayment: null },
  // An empty key id is another content than none.
  { portfolio_id: 'south', inst_signing: '', inst_key_agreement: null, inst_prepayment: null },
];
/** Meters in a few dense runs of EUIs (neighbouring keys, long probe runs) and a few far apart. */
const eui = (i: number): string => (i < 4000 ? `00DB${(0x1234560000 + i).toString(16).toUpperCase().padStart(12, '0')}` : `${(i * 0x9e3779b1 >>> 0).toString(16).toUpperCase().padStart(8, '0')}0000${i.toString(16).toUpperCase().padStart(4, '0')}`);

type Op = { op: 'set'; org: number; m: number; c: number } | { op: 'del'; org: number; m: number } | { op: 'clear' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ op: fc.constant('set' as const), org: fc.nat(1), m: fc.nat(5000), c: fc.nat(3) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('del' as const), org: fc.nat(1), m: fc.nat(5000) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

function check(cache: MeterCache, model: Map<string, MeterContent>): void {
  expect(cache.size).toBe(model.size);
  for (const org of ORGS) {
    for (let m = 0; m <= 5000; m += 7) {
      const want = model.get(`${org}/${eui(m)}`);
      const got = cache.get(org, eui(m));
      if (want === undefined) expect(got).toBeUndefined();
      else expect(got).toEqual(want);
    }
  }
  for (const [k, v] of model) {
    const [org, e] = k.split('/') as [string, string];
    expect(cache.get(org, e)).toEqual(v);
  }
}

describe('MeterCache', () => {
  it('answers as a Map would, through growth, probe runs and deletions', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 3000 }), (ops) => {
        const cache = new MeterCache(1_000_000);
        const model = new Map<string, MeterContent>();
        for (const o of ops) {
          if (o.op === 'set') {
            cache.set(ORGS[o.org] as string, eui(o.m), contents[o.c] as MeterContent);
            model.set(`${ORGS[o.org]}/${eui(o.m)}`, contents[o.c] as MeterContent);
          } else if (o.op === 'del') {
            cache.delete(ORGS[o.org] as string, eui(o.m));
            model.delete(`${ORGS[o.org]}/${eui(o.m)}`);
          } else {
            cache.clear();
            model.clear();
          }
        }
        check(cache, model);
      }),
      { seed: 2104, numRuns: 60 },
    );
  });

  it('keeps every meter of a dense run while a third of them are deleted in random order', () => {
    const cache = new MeterCache(1_000_000);
    const model = new Map<string, MeterContent>();
    for (let m = 0; m < 5000; m++) {
      cache.set(ORGS[0] as string, eui(m), contents[m % 3] as MeterContent);
      model.set(`${ORGS[0]}/${eui(m)}`, contents[m % 3] as MeterContent);
    }
    const order = fc.sample(fc.shuffledSubarray([...Array(5000).keys()], { minLength: 1700, maxLength: 1700 }), { seed: 7, numRuns: 1 })[0] as number[];
    for (const m of order) {
      cache.delete(ORGS[0] as string, eui(m));
      model.delete(`${ORGS[0]}/${eui(m)}`);
    }
    check(cache, model);
  });

  it('finds only canonical EUI-64s, and starts again empty beyond its limit', () => {
    const cache = new MeterCache(3);
    const c = contents[0] as MeterContent;
    cache.set(ORGS[0] as string, '00db1234567890a0', c);
    cache.set(ORGS[0] as string, '00DB1234567890A', c);
    expect(cache.size).toBe(0);
    cache.set(ORGS[0] as string, '00DB1234567890A0', c);
    expect(cache.get(ORGS[0] as string, '00db1234567890a0')).toBeUndefined();
    expect(cache.get(ORGS[1] as string, '00DB1234567890A0')).toBeUndefined();
    expect(cache.get(ORGS[0] as string, '00DB1234567890A0')).toEqual(c);
    for (let m = 0; m < 3; m++) cache.set(ORGS[1] as string, eui(m), c);
    // The fourth meter found the cache full: it holds that one alone.
    expect(cache.size).toBe(1);
    expect(cache.get(ORGS[0] as string, '00DB1234567890A0')).toBeUndefined();
    expect(cache.get(ORGS[1] as string, eui(2))).toEqual(c);
    // Setting a kept meter again never counts twice.
    cache.set(ORGS[1] as string, eui(2), contents[1] as MeterContent);
    expect(cache.size).toBe(1);
    expect(cache.get(ORGS[1] as string, eui(2))).toEqual(contents[1]);
    // A cache of 0 keeps nothing.
    const none = new MeterCache(0);
    none.set(ORGS[0] as string, eui(1), c);
    expect(none.size).toBe(0);
    expect(none.get(ORGS[0] as string, eui(1))).toBeUndefined();
  });
});
