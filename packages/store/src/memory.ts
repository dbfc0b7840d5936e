import type { Eui64 } from '@smki/core';
import { applyEntries, counterKey, windowKey } from './internal/apply.js';
import { checkEntries, checkWindow, closedError, epochMs, eui64, int, pendingKey, quarantineId } from './internal/check.js';
import { BuildGuard, checkCommitOptions, checkExpected, encodeIntent, headsFromRow, intentFromRow, logId, rethrowBuildError } from './internal/log.js';
import type { EncodedIntent } from './internal/log.js';
import type { AnomalyWindow, CommitEntry, CommitOptions, CommitOutcome, LogIntent, PendingCommand, QuarantineRecord, StateStore } from './types.js';
import { applyCellReplacements, checkCellReplacements, checkDeviceIds, checkDevices } from './registry.js';
import type { CellReplacement, DeviceRecord, DeviceRegistry } from './registry.js';
import { approvals, checkImageHash, checkImages, checkModel, checkReason, compareImages, firmwareFromRow } from './firmware.js';
import type { FirmwareAllowlist, FirmwareImage, FirmwareRow, FirmwareStatus } from './firmware.js';

/**
 * A {@link StateStore} in process memory: for tests and benchmarks. Nothing survives the
 * process, and nothing is shared with another process, so it gives no protection against
 * replay across a restart: never use it in production.
 *
 * @example
 * ```ts
 * import { parseEui64 } from '@smki/core';
 * import { MemoryStateStore } from '@smki/store';
 * const store = new MemoryStateStore();
 * const originator = parseEui64('90B3D51F30010000');
 * const device = parseEui64('00DB1234567890A0');
 * const [first] = await store.commit([{ counter: { originator, device, value: 1000n } }]);
 * const [again] = await store.commit([{ counter: { originator, device, value: 1000n } }]);
 * console.log(first?.status, again?.status); // committed replayed
 * ```
 */
export class MemoryStateStore implements StateStore {
  /** Always `memory`. */
  readonly backend = 'memory' as const;
  readonly #counters = new Map<string, bigint>();
  readonly #windows = new Map<string, { window: AnomalyWindow; count: number }>();
  readonly #quarantine = new Map<string, QuarantineRecord>();
  readonly #pending = new Map<string, PendingCommand>();
  // Each log's intent in its stored form, read back through the same checks as the durable stores.
  readonly #logs = new Map<string, EncodedIntent>();
  #closed = false;
  readonly #guard = new BuildGuard();

  #open(): void {
    if (this.#closed) throw closedError();
    this.#guard.check();
  }

  /** {@inheritDoc StateStore.lastCounter} */
  async lastCounter(originator: Eui64, device: Eui64): Promise<bigint | undefined> {
    this.#open();
    return this.#counters.get(counterKey(eui64(originator, 'originator'), eui64(device, 'device')));
  }

  /** {@inheritDoc StateStore.anomalyCount} */
  async anomalyCount(window: AnomalyWindow): Promise<number> {
    this.#open();
    return this.#windows.get(windowKey(checkWindow(window, 'window')))?.count ?? 0;
  }

  /** {@inheritDoc StateStore.commit} */
  async commit(entries: readonly CommitEntry[], options?: CommitOptions): Promise<CommitOutcome[]> {
    this.#open();
    const checked = checkEntries(entries);
    const log = checkCommitOptions(options);
    // Nothing is changed until every check has passed and build has returned: a conflict, a
    // build that throws or a malformed intent leaves the state as it was.
    if (log) {
      const row = this.#logs.get(log.id);
      checkExpected(log, row && headsFromRow(log.id, row));
    }
    const { outcomes, writes } = applyEntries(checked, {
      counter: (o, d) => this.#counters.get(counterKey(o, d)),
      anomaly: (w) => this.#windows.get(windowKey(w))?.count ?? 0,
      quarantined: (id) => this.#quarantine.get(id),
    });
    if (log) {
      try {
        this.#logs.set(log.id, encodeIntent(this.#guard.run(log, outcomes)));
      } catch (e) {
        rethrowBuildError(e);
        throw e;
      }
    }
    for (const [k, c] of writes.counters) this.#counters.set(k, c.value);
    for (const [k, a] of writes.anomalies) this.#windows.set(k, { window: a.window, count: a.count });
    for (const q of writes.quarantines) this.#quarantine.set(q.id, { ...q, command: Uint8Array.from(q.command), state: 'held' });
    for (const id of writes.releases) this.#quarantine.set(id, { ...this.#quarantine.get(id)!, state: 'released' });
    for (const [k, p] of writes.pending) this.#pending.set(k, { ...p, command: Uint8Array.from(p.command) });
    return outcomes;
  }

  /** {@inheritDoc StateStore.logIntent} */
  async logIntent(id: string): Promise<LogIntent | undefined> {
    this.#open();
    return this.#intent(logId(id, 'id'));
  }

  #intent(id: string): LogIntent | undefined {
    const row = this.#logs.get(id);
    return row && intentFromRow(id, row);
  }

  /** {@inheritDoc StateStore.quarantineRecord} */
  async quarantineRecord(id: string): Promise<QuarantineRecord | undefined> {
    this.#open();
    const r = this.#quarantine.get(quarantineId(id, 'id'));
    return r && { ...r, command: Uint8Array.from(r.command) };
  }

  /** {@inheritDoc StateStore.heldQuarantine} */
  async heldQuarantine(limit = 1000): Promise<QuarantineRecord[]> {
    this.#open();
    const n = int(limit, 'limit', 1, 100_000);
    return [...this.#quarantine.values()]
      .filter((r) => r.state === 'held')
      .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1))
      .slice(0, n)
      .map((r) => ({ ...r, command: Uint8Array.from(r.command) }));
  }

  /** {@inheritDoc StateStore.discardQuarantine} */
  async discardQuarantine(id: string): Promise<boolean> {
    this.#open();
    const r = this.#quarantine.get(quarantineId(id, 'id'));
    if (r?.state !== 'held') return false;
    this.#quarantine.set(id, { ...r, state: 'discarded' });
    return true;
  }

  /** {@inheritDoc StateStore.pendingCommand} */
  async pendingCommand(key: string): Promise<PendingCommand | undefined> {
    this.#open();
    const p = this.#pending.get(pendingKey(key, 'key'));
    return p && { ...p, command: Uint8Array.from(p.command) };
  }

  /** {@inheritDoc StateStore.removePendingCommand} */
  async removePendingCommand(key: string): Promise<boolean> {
    this.#open();
    return this.#pending.delete(pendingKey(key, 'key'));
  }

  /** {@inheritDoc StateStore.prunePendingCommands} */
  async prunePendingCommands(before: number): Promise<number> {
    this.#open();
    const t = epochMs(before, 'before');
    let n = 0;
    for (const [k, p] of this.#pending) {
      if (p.at < t) {
        this.#pending.delete(k);
        n++;
      }
    }
    return n;
  }

  /** {@inheritDoc StateStore.pruneAnomalyWindows} */
  async pruneAnomalyWindows(before: number): Promise<number> {
    this.#open();
    const t = epochMs(before, 'before');
    let n = 0;
    for (const [k, { window }] of this.#windows) {
      if (window.windowStart + window.windowMs <= t) {
        this.#windows.delete(k);
        n++;
      }
    }
    return n;
  }

  /** {@inheritDoc StateStore.close} */
  async close(): Promise<void> {
    this.#guard.check();
    this.#closed = true;
  }
}

/**
 * A {@link DeviceRegistry} in process memory: for tests and benchmarks. Records are kept in
 * their stored form and checked again when read, as in the durable registries.
 *
 * @example
 * ```ts
 * import { parseEui64 } from '@smki/core';
 * import { MemoryDeviceRegistry } from '@smki/store';
 * const registry = new MemoryDeviceRegistry();
 * const device = parseEui64('00DB1234567890A0');
 * await registry.put([{ device, type: 'ESME', fuel: 'electricity', cells: [] }]);
 * console.log((await registry.device(device))?.type); // ESME
 * ```
 */
/** A checked record with its object parts frozen (byte arrays cannot be; they are copied on the way out). */
function freezeDevice(r: DeviceRecord): DeviceRecord {
  for (const c of r.cells) Object.freeze(c);
  Object.freeze(r.cells);
  return Object.freeze(r);
}

/** What a read hands out: the frozen record with copies of its certificates, so no caller can change the registry's. */
function copyDevice(r: DeviceRecord): DeviceRecord {
  return {
    ...r,
    ...(r.keyAgreementCertificate ? { keyAgreementCertificate: r.keyAgreementCertificate.slice() } : {}),
    ...(r.digitalSignatureCertificate ? { digitalSignatureCertificate: r.digitalSignatureCertificate.slice() } : {}),
  };
}

export class MemoryDeviceRegistry implements DeviceRegistry {
  /** Always `memory`. */
  readonly backend = 'memory' as const;
  /** Checked records, frozen; each read hands out its own copy of the certificate bytes. */
  readonly #records = new Map<string, DeviceRecord>();
  #closed = false;

  #open(): void {
    if (this.#closed) throw closedError();
  }

  /** {@inheritDoc DeviceRegistry.device} */
  async device(device: Eui64): Promise<DeviceRecord | undefined> {
    this.#open();
    const d = eui64(device, 'device');
    const r = this.#records.get(d);
    return r === undefined ? undefined : copyDevice(r);
  }

  /** {@inheritDoc DeviceRegistry.devices} */
  async devices(devices: readonly Eui64[]): Promise<Map<Eui64, DeviceRecord>> {
    this.#open();
    const out = new Map<Eui64, DeviceRecord>();
    for (const d of checkDeviceIds(devices, 'devices')) {
      const r = this.#records.get(d);
      if (r !== undefined) out.set(d, copyDevice(r));
    }
    return out;
  }

  /** {@inheritDoc DeviceRegistry.put} */
  async put(records: readonly DeviceRecord[]): Promise<void> {
    this.#open();
    for (const r of checkDevices(records, 'records')) this.#records.set(r.device, freezeDevice(r));
  }

  /** {@inheritDoc DeviceRegistry.remove} */
  async remove(devices: readonly Eui64[]): Promise<number> {
    this.#open();
    let n = 0;
    for (const d of checkDeviceIds(devices, 'devices')) if (this.#records.delete(d)) n++;
    return n;
  }

  /** {@inheritDoc DeviceRegistry.replaceCells} */
  async replaceCells(device: Eui64, replacements: readonly CellReplacement[]): Promise<DeviceRecord> {
    this.#open();
    const d = eui64(device, 'device');
    const checked = checkCellReplacements(replacements, 'replacements');
    const next = freezeDevice(applyCellReplacements(d, this.#records.get(d), checked));
    this.#records.set(d, next);
    return copyDevice(next);
  }

  /** {@inheritDoc DeviceRegistry.count} */
  async count(): Promise<number> {
    this.#open();
    return this.#records.size;
  }

  /** {@inheritDoc DeviceRegistry.close} */
  async close(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * A {@link FirmwareAllowlist} in process memory: for tests and benchmarks. Entries are kept in
 * their stored form and checked again when read.
 *
 * @example
 * ```ts
 * import { MemoryFirmwareAllowlist } from '@smki/store';
 * const list = new MemoryFirmwareAllowlist();
 * const imageHash = 'AB'.repeat(32);
 * await list.approve([{ model: 'ABCD:0102', imageHash }], Date.now());
 * await list.revoke('ABCD:0102', imageHash, Date.now(), 'vulnerability announced');
 * console.log(await list.status('ABCD:0102', imageHash)); // revoked
 * ```
 */
export class MemoryFirmwareAllowlist implements FirmwareAllowlist {
  /** Always `memory`. */
  readonly backend = 'memory' as const;
  readonly #rows = new Map<string, FirmwareRow>();
  #closed = false;

  #open(): void {
    if (this.#closed) throw closedError();
  }

  /** {@inheritDoc FirmwareAllowlist.status} */
  async status(model: string, imageHash: Uint8Array | string): Promise<FirmwareStatus> {
    this.#open();
    const row = this.#rows.get(`${checkModel(model, 'model')}/${checkImageHash(imageHash, 'imageHash')}`);
    return row === undefined ? 'unknown' : firmwareFromRow(row).state;
  }

  /** {@inheritDoc FirmwareAllowlist.approve} */
  async approve(images: readonly { readonly model: string; readonly imageHash: Uint8Array | string }[], at: number): Promise<('approved' | 'already' | 'revoked')[]> {
    this.#open();
    const list = checkImages(images, 'images');
    const t = epochMs(at, 'at');
    const { results, insert } = approvals(list, (model, imageHash) => {
      const row = this.#rows.get(`${model}/${imageHash}`);
      return row && firmwareFromRow(row).state;
    });
    for (const { model, imageHash } of insert) {
      this.#rows.set(`${model}/${imageHash}`, { model, image_hash: imageHash, state: 'approved', approved_at: t, revoked_at: null, reason: null });
    }
    return results;
  }

  /** {@inheritDoc FirmwareAllowlist.revoke} */
  async revoke(model: string, imageHash: Uint8Array | string, at: number, reason?: string): Promise<boolean> {
    this.#open();
    const k = `${checkModel(model, 'model')}/${checkImageHash(imageHash, 'imageHash')}`;
    const t = epochMs(at, 'at');
    const why = checkReason(reason, 'reason') ?? null;
    const row = this.#rows.get(k);
    if (row && firmwareFromRow(row).state === 'revoked') return false;
    this.#rows.set(k, { model, image_hash: k.slice(k.indexOf('/') + 1), state: 'revoked', approved_at: row?.approved_at ?? null, revoked_at: t, reason: why });
    return true;
  }

  /** {@inheritDoc FirmwareAllowlist.list} */
  async list(model?: string, limit = 10_000): Promise<FirmwareImage[]> {
    this.#open();
    const m = model === undefined ? undefined : checkModel(model, 'model');
    const n = int(limit, 'limit', 1, 100_000);
    return [...this.#rows.values()]
      .filter((r) => m === undefined || r.model === m)
      .map(firmwareFromRow)
      .sort(compareImages)
      .slice(0, n);
  }

  /** {@inheritDoc FirmwareAllowlist.close} */
  async close(): Promise<void> {
    this.#closed = true;
  }
}
