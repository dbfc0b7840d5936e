// The commit rules every backend shares (docs/store.md), at the level of what a commit writes:
// the backends' contract tests see outcomes and stored state; these see the write set itself, so
// a commit that would write something it should not (a release nobody asked for) is caught even
// where a backend would shrug it off.
import { describe, expect, it } from 'vitest';
import { parseEui64 } from '@smki/core';
import { applyEntries, type HeldCommand, type StateReads } from '../src/internal/apply.js';
import type { AnomalyWindow } from '../src/types.js';

const USER = parseEui64('90B3D51F30010000');
const METER = parseEui64('00DB1234567890A0');
const window: AnomalyWindow = { user: USER, messageCode: 0x00ab, windowMs: 60_000, windowStart: 0 };

function reads(state: { counter?: bigint; count?: number; held?: Record<string, HeldCommand> } = {}): StateReads {
  return {
    counter: () => state.counter,
    anomaly: () => state.count ?? 0,
    quarantined: (id) => state.held?.[id],
  };
}

describe('applyEntries: the write set', () => {
  it('a plain commit writes its counter and nothing else: no release, no quarantine, no window', () => {
    const { outcomes, writes } = applyEntries([{ counter: { originator: USER, device: METER, value: 5n } }], reads());
    expect(outcomes).toEqual([{ status: 'committed' }]);
    expect(writes.releases).toEqual([]);
    expect(writes.quarantines).toEqual([]);
    expect([...writes.anomalies]).toEqual([]);
    expect([...writes.counters.values()]).toEqual([{ originator: USER, device: METER, value: 5n }]);
  });

  it('a counted commit writes its window, and still no release', () => {
    const { writes } = applyEntries(
      [{ counter: { originator: USER, device: METER, value: 5n }, anomaly: { ...window, limit: 10 }, quarantine: { at: 0, user: USER, device: METER, messageCode: 0xab, counter: 5n, command: new Uint8Array(1) } }],
      reads({ count: 3 }),
    );
    expect(writes.releases).toEqual([]);
    expect([...writes.anomalies.values()]).toEqual([{ window: { ...window, limit: 10 }, count: 4 }]);
  });

  it('a release writes exactly that release, once; a second release of it in the same commit is not held', () => {
    const held: HeldCommand = { state: 'held', user: USER, device: METER, counter: 9n };
    const e = { release: 'q-1', counter: { originator: USER, device: METER, value: 9n } };
    const { outcomes, writes } = applyEntries([e, e], reads({ held: { 'q-1': held } }));
    expect(outcomes).toEqual([{ status: 'committed' }, { status: 'not-held' }]);
    expect(writes.releases).toEqual(['q-1']);
  });
});
