// The one implementation of the commit rules (types.ts, CommitEntry), shared by every backend:
// a backend supplies reads of its current state inside its transaction, and writes back what
// this returns. Effects of earlier entries in the same commit are seen by later ones.
import { randomUUID } from 'node:crypto';
import type { AnomalyWindow, CommitEntry, CommitOutcome, PendingCommandInput, QuarantineInput, QuarantineRecord } from '../types.js';

/** The last value of a u64 series: a sequence whose last value is this has none left. */
const U64_MAX = (1n << 64n) - 1n;

/** What a backend reads inside its transaction. */
export interface StateReads {
  /** The last value of (originator, device) in the counters table: a counter or a sequence's (owner, device). */
  counter(originator: string, device: string): bigint | undefined;
  anomaly(window: AnomalyWindow): number;
  /** The stored quarantine record's state and the command it holds (whose it is, for which device, which counter). */
  quarantined(id: string): HeldCommand | undefined;
}

/** What a release is checked against: the state of a quarantine record and its command. */
export interface HeldCommand {
  readonly state: QuarantineRecord['state'];
  readonly user: string;
  readonly device: string;
  readonly counter: bigint;
}

/** What the backend writes before it commits. */
export interface StateWrites {
  /** Final counter per (originator, device), sequences' (owner, device) included. */
  readonly counters: Map<string, { readonly originator: string; readonly device: string; readonly value: bigint }>;
  /** Final count per window. */
  readonly anomalies: Map<string, { readonly window: AnomalyWindow; readonly count: number }>;
  /** New held quarantine records. */
  readonly quarantines: (QuarantineInput & { readonly id: string })[];
  /** Quarantine ids that become released. */
  readonly releases: string[];
  /** Pending commands of the entries that committed (by key: a key repeated keeps the last). */
  readonly pending: Map<string, PendingCommandInput>;
}

export function counterKey(originator: string, device: string): string {
  return `${originator}/${device}`;
}

export function windowKey(w: AnomalyWindow): string {
  return `${w.user}/${w.messageCode}/${w.windowMs}/${w.windowStart}`;
}

/** Apply the entries to `reads`, in order; returns the outcomes and the writes. */
export function applyEntries(entries: readonly CommitEntry[], reads: StateReads): { outcomes: CommitOutcome[]; writes: StateWrites } {
  const writes: StateWrites = { counters: new Map(), anomalies: new Map(), quarantines: [], releases: [], pending: new Map() };
  const quarantineStates = new Map<string, HeldCommand>();
  const counterNow = (originator: string, device: string): bigint | undefined => {
    const w = writes.counters.get(counterKey(originator, device));
    return w ? w.value : reads.counter(originator, device);
  };
  const countNow = (window: AnomalyWindow): number => {
    const w = writes.anomalies.get(windowKey(window));
    return w ? w.count : reads.anomaly(window);
  };
  const heldNow = (id: string): HeldCommand | undefined => (quarantineStates.has(id) ? quarantineStates.get(id) : reads.quarantined(id));

  const outcomes: CommitOutcome[] = [];
  for (const e of entries) {
    if (e.release !== undefined) {
      // Only a held record is released, and only by the command it holds: the counter claim must
      // be that command's (originator, device, counter), so a release cannot advance another one.
      const h = heldNow(e.release);
      const c = e.counter!;
      if (h?.state !== 'held' || h.user !== c.originator || h.device !== c.device || h.counter !== c.value) {
        outcomes.push({ status: 'not-held' });
        continue;
      }
    }
    if (e.counter) {
      const last = counterNow(e.counter.originator, e.counter.device);
      if (last !== undefined && e.counter.value <= last) {
        outcomes.push({ status: 'replayed', last });
        continue;
      }
    }
    const count = e.anomaly ? countNow(e.anomaly) : 0;
    if (e.anomaly && e.release === undefined && count >= e.anomaly.limit) {
      const id = randomUUID();
      writes.quarantines.push({ ...e.quarantine!, id });
      quarantineStates.set(id, { state: 'held', user: e.quarantine!.user, device: e.quarantine!.device, counter: e.quarantine!.counter });
      outcomes.push({ status: 'quarantined', count, id });
      continue;
    }
    // The entry commits unless its sequence has no value left; decided before anything of the
    // entry is written. The series is the counters table's: a sequence and a counter claim for
    // the same pair share it (check.ts refuses a sequence on the entry's own counter's pair).
    let allocated: { readonly originator: string; readonly device: string; readonly value: bigint } | undefined;
    if (e.sequence) {
      const { owner, device, floor } = e.sequence;
      const last = counterNow(owner, device);
      if (last === U64_MAX) {
        outcomes.push({ status: 'exhausted' });
        continue;
      }
      // max(last + 1, floor); with no last, floor.
      allocated = { originator: owner, device, value: last === undefined || last < floor ? floor : last + 1n };
    }
    if (e.anomaly) writes.anomalies.set(windowKey(e.anomaly), { window: e.anomaly, count: count + 1 });
    if (e.counter) {
      writes.counters.set(counterKey(e.counter.originator, e.counter.device), {
        originator: e.counter.originator,
        device: e.counter.device,
        value: e.counter.value,
      });
    }
    if (e.release !== undefined) {
      writes.releases.push(e.release);
      quarantineStates.set(e.release, { ...heldNow(e.release)!, state: 'released' });
    }
    if (e.pending) writes.pending.set(e.pending.key, e.pending);
    if (allocated) {
      writes.counters.set(counterKey(allocated.originator, allocated.device), allocated);
      outcomes.push({ status: 'committed', sequence: allocated.value });
    } else {
      outcomes.push({ status: 'committed' });
    }
  }
  return { outcomes, writes };
}

