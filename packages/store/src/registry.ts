import { SmkiError, isRemotePartyRole } from '@smki/core';
import type { Eui64, RemotePartyRoleCode } from '@smki/core';
import { eui64, invalid } from './internal/check.js';

/** GBCS device types the registry knows. */
export const DEVICE_TYPES = ['ESME', 'GSME', 'CHF', 'GPF', 'PPMID', 'HCALCS', 'SAPC', 'IHD', 'CAD'] as const;
/** A GBCS device type: electricity or gas meter, comms hub function, gas proxy function, and the rest of the home area network. */
export type DeviceType = (typeof DEVICE_TYPES)[number];
/** The fuel a device meters (it decides which supplier and network operator roles apply). */
export type Fuel = 'electricity' | 'gas' | 'none';
/** The key usage of the certificate a trust-anchor cell holds. */
export type CellKeyUsage = 'digitalSignature' | 'keyAgreement' | 'keyCertSign';
/** What a cell is for: management (the default) or prepayment top-up. */
export type CellUsage = 'management' | 'prepayment';

/** The most trust-anchor cells one device record holds. */
export const MAX_CELLS = 32;
/** The largest device certificate a record holds (DER bytes). */
export const MAX_DEVICE_CERTIFICATE_BYTES = 4096;
/** The most devices one registry call reads, writes or removes. */
export const MAX_REGISTRY_BATCH = 10_000;

/**
 * One trust-anchor cell of a device: which certificate the device trusts for a role, key usage
 * and cell usage, by subject key identifier.
 * @see docs/domain.md §2 (trust anchors and key segregation)
 */
export interface TrustAnchorCell {
  /** The Remote Party Role of the cell. */
  readonly role: RemotePartyRoleCode;
  /** The key usage of the certificate it holds. */
  readonly keyUsage: CellKeyUsage;
  /** Management or prepayment top-up. */
  readonly cellUsage: CellUsage;
  /** The certificate's subjectKeyIdentifier: 16 upper-case hex digits (8 octets). */
  readonly ski: string;
  /** The certificate's entity id (x500UniqueIdentifier), where known. */
  readonly entity?: Eui64;
}

/** What the registry records of one device. */
export interface DeviceRecord {
  /** The device's EUI-64. */
  readonly device: Eui64;
  /** Its GBCS device type. */
  readonly type: DeviceType;
  /** The fuel it meters. */
  readonly fuel: Fuel;
  /** Its model (manufacturer and model identifiers), the key of the firmware allowlist: 1 to 64 characters of `[A-Za-z0-9._:-]`. */
  readonly model?: string;
  /** The responsible supplier's entity id. */
  readonly supplier?: Eui64;
  /** The responsible network operator's entity id. */
  readonly networkOperator?: Eui64;
  /** Its trust-anchor cells, at most one per (role, key usage, cell usage). */
  readonly cells: readonly TrustAnchorCell[];
  /** The device's own key-agreement certificate (DER), whose key the ACB MAC is derived with. */
  readonly keyAgreementCertificate?: Uint8Array;
  /** The device's own digital-signing certificate (DER). */
  readonly digitalSignatureCertificate?: Uint8Array;
}

/**
 * The devices the validator knows, updated at run time and sized for millions of devices.
 * Implementations: {@link MemoryDeviceRegistry}, {@link SqliteDeviceRegistry} and
 * {@link PostgresDeviceRegistry}. Records are checked when written and again when read: a stored
 * record out of shape is `ERR_STORE_CORRUPT`, never a device the validator would act on.
 * @see docs/store.md
 */
export interface DeviceRegistry {
  /** Which implementation this is. */
  readonly backend: 'memory' | 'sqlite' | 'postgres';
  /**
   * The record of one device, or `undefined`.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   */
  device(device: Eui64): Promise<DeviceRecord | undefined>;
  /**
   * The records of several devices (at most {@link MAX_REGISTRY_BATCH}); unknown ones are absent from the map.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   */
  devices(devices: readonly Eui64[]): Promise<Map<Eui64, DeviceRecord>>;
  /**
   * Add or replace records (at most {@link MAX_REGISTRY_BATCH}), all or none, durably.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (checked before anything is written; detail names the field),
   *   `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`
   */
  put(records: readonly DeviceRecord[]): Promise<void>;
  /**
   * Remove devices (at most {@link MAX_REGISTRY_BATCH}); returns how many were there.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`
   */
  remove(devices: readonly Eui64[]): Promise<number>;
  /**
   * Move a device's trust: replace the certificates some of its cells name, all or none, in one
   * durable transaction, each only if the cell still names the certificate the caller expects
   * (`from`, compare-and-set). The DCC side calls it after a device's verified answer to a CS02b
   * Update Security Credentials command says those cells were replaced (docs/domain.md §9).
   * @returns the record as it is now
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (shapes, a cell named twice, more than {@link MAX_CELLS}),
   *   `ERR_STORE_CELL_CONFLICT` (the device is not registered, or a cell does not name `from`:
   *   nothing was changed), `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CORRUPT`, `ERR_STORE_CLOSED`
   * @see docs/domain.md §9 (the response's per-cell outcomes), docs/store.md
   */
  replaceCells(device: Eui64, replacements: readonly CellReplacement[]): Promise<DeviceRecord>;
  /**
   * How many devices are registered.
   * @throws SmkiError `ERR_STORE_UNAVAILABLE`, `ERR_STORE_CLOSED`
   */
  count(): Promise<number>;
  /** Close; later calls throw `ERR_STORE_CLOSED`. Idempotent. */
  close(): Promise<void>;
}

/**
 * One cell of a device moved to a new certificate by {@link DeviceRegistry.replaceCells}.
 * @see docs/domain.md §9
 * @example
 * ```ts
 * import type { CellReplacement } from '@smki/store';
 * const r: CellReplacement = { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', from: '4A1B2C3D4E5F6071', ski: '4B2C3D4E5F607182' };
 * console.log(r.ski);
 * ```
 */
export interface CellReplacement {
  /** The cell's Remote Party Role. */
  readonly role: RemotePartyRoleCode;
  /** The cell's key usage. */
  readonly keyUsage: CellKeyUsage;
  /** The cell's usage. */
  readonly cellUsage: CellUsage;
  /** The SKI the cell must name now (16 upper-case hex digits), or `null`: the record must have no such cell yet. */
  readonly from: string | null;
  /** The new certificate's SKI (16 upper-case hex digits). */
  readonly ski: string;
  /** The new certificate's entity id, where known (absent: the cell keeps no entity). */
  readonly entity?: Eui64;
}

/** Check a list of cell replacements: shapes, and no cell twice. */
export function checkCellReplacements(v: unknown, field: string): CellReplacement[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CELLS) throw invalid(field, `is not a list of 1 to ${MAX_CELLS} cell replacements`);
  const seen = new Set<string>();
  return v.map((r, i) => {
    const f = `${field}[${i}]`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw invalid(f, 'is not an object');
    const o = r as Record<string, unknown>;
    const cell = checkCell({ role: o['role'], keyUsage: o['keyUsage'], cellUsage: o['cellUsage'], ski: o['ski'], entity: o['entity'] }, f);
    const from = o['from'];
    if (from !== null && (typeof from !== 'string' || !SKI.test(from))) throw invalid(`${f}.from`, 'is not 16 upper-case hex digits or null');
    const k = `${cell.role}/${cell.keyUsage}/${cell.cellUsage}`;
    if (seen.has(k)) throw invalid(f, 'repeats a (role, key usage, cell usage) cell');
    seen.add(k);
    return { role: cell.role, keyUsage: cell.keyUsage, cellUsage: cell.cellUsage, from, ski: cell.ski, ...(cell.entity !== undefined ? { entity: cell.entity } : {}) };
  });
}

/**
 * The record with the replacements applied, or `ERR_STORE_CELL_CONFLICT` when a cell does not
 * name its `from` (or the device is unknown). Pure: the backends call it inside their transaction.
 */
export function applyCellReplacements(device: Eui64, record: DeviceRecord | undefined, replacements: readonly CellReplacement[]): DeviceRecord {
  if (record === undefined) throw new SmkiError('ERR_STORE_CELL_CONFLICT', `device ${device} is not in the registry; nothing was changed`, { detail: `device ${device}` });
  const cells = [...record.cells];
  for (const r of replacements) {
    const i = cells.findIndex((c) => c.role === r.role && c.keyUsage === r.keyUsage && c.cellUsage === r.cellUsage);
    const now = i < 0 ? null : (cells[i] as TrustAnchorCell).ski;
    if (now !== r.from) {
      throw new SmkiError('ERR_STORE_CELL_CONFLICT', `device ${device}'s cell role ${r.role} ${r.keyUsage} ${r.cellUsage} names ${now ?? 'no certificate'}, not ${r.from ?? 'no certificate'}; nothing was changed`, { detail: `device ${device}` });
    }
    const cell: TrustAnchorCell = { role: r.role, keyUsage: r.keyUsage, cellUsage: r.cellUsage, ski: r.ski, ...(r.entity !== undefined ? { entity: r.entity } : {}) };
    if (i < 0) cells.push(cell);
    else cells[i] = cell;
  }
  return checkDevice({ ...record, cells }, 'record');
}

const MODEL = /^[A-Za-z0-9._:-]{1,64}$/;
const SKI = /^[0-9A-F]{16}$/;
const KEY_USAGES: readonly string[] = ['digitalSignature', 'keyAgreement', 'keyCertSign'];
const CELL_USAGES: readonly string[] = ['management', 'prepayment'];
const FUELS: readonly string[] = ['electricity', 'gas', 'none'];

function certificate(v: unknown, field: string): Uint8Array | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array) || v.length === 0 || v.length > MAX_DEVICE_CERTIFICATE_BYTES) {
    throw invalid(field, `is not a Uint8Array of 1 to ${MAX_DEVICE_CERTIFICATE_BYTES} bytes`);
  }
  return Uint8Array.from(v);
}

function checkCell(v: unknown, field: string): TrustAnchorCell {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'is not an object');
  const o = v as Record<string, unknown>;
  if (!isRemotePartyRole(o['role'])) throw invalid(`${field}.role`, 'is not a Remote Party Role code');
  if (typeof o['keyUsage'] !== 'string' || !KEY_USAGES.includes(o['keyUsage'])) throw invalid(`${field}.keyUsage`, 'is not a cell key usage');
  if (typeof o['cellUsage'] !== 'string' || !CELL_USAGES.includes(o['cellUsage'])) throw invalid(`${field}.cellUsage`, "is not 'management' or 'prepayment'");
  if (typeof o['ski'] !== 'string' || !SKI.test(o['ski'])) throw invalid(`${field}.ski`, 'is not 16 upper-case hex digits');
  const entity = o['entity'] === undefined ? undefined : eui64(o['entity'], `${field}.entity`);
  return {
    role: o['role'],
    keyUsage: o['keyUsage'] as CellKeyUsage,
    cellUsage: o['cellUsage'] as CellUsage,
    ski: o['ski'],
    ...(entity !== undefined ? { entity } : {}),
  };
}

/** Check a device record and return a fresh copy holding only its fields. */
export function checkDevice(v: unknown, field: string): DeviceRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'is not an object');
  const o = v as Record<string, unknown>;
  const device = eui64(o['device'], `${field}.device`);
  if (typeof o['type'] !== 'string' || !(DEVICE_TYPES as readonly string[]).includes(o['type'])) throw invalid(`${field}.type`, 'is not a device type');
  if (typeof o['fuel'] !== 'string' || !FUELS.includes(o['fuel'])) throw invalid(`${field}.fuel`, "is not 'electricity', 'gas' or 'none'");
  if (o['model'] !== undefined && (typeof o['model'] !== 'string' || !MODEL.test(o['model']))) {
    throw invalid(`${field}.model`, 'is not 1 to 64 characters of [A-Za-z0-9._:-]');
  }
  const supplier = o['supplier'] === undefined ? undefined : eui64(o['supplier'], `${field}.supplier`);
  const networkOperator = o['networkOperator'] === undefined ? undefined : eui64(o['networkOperator'], `${field}.networkOperator`);
  const rawCells = o['cells'];
  if (!Array.isArray(rawCells) || rawCells.length > MAX_CELLS) throw invalid(`${field}.cells`, `is not a list of at most ${MAX_CELLS} cells`);
  const cells = rawCells.map((c, i) => checkCell(c, `${field}.cells[${i}]`));
  const seen = new Set<string>();
  for (const [i, c] of cells.entries()) {
    const k = `${c.role}/${c.keyUsage}/${c.cellUsage}`;
    if (seen.has(k)) throw invalid(`${field}.cells[${i}]`, 'repeats a (role, key usage, cell usage) cell');
    seen.add(k);
  }
  const ka = certificate(o['keyAgreementCertificate'], `${field}.keyAgreementCertificate`);
  const ds = certificate(o['digitalSignatureCertificate'], `${field}.digitalSignatureCertificate`);
  return {
    device,
    type: o['type'] as DeviceType,
    fuel: o['fuel'] as Fuel,
    ...(o['model'] !== undefined ? { model: o['model'] as string } : {}),
    ...(supplier !== undefined ? { supplier } : {}),
    ...(networkOperator !== undefined ? { networkOperator } : {}),
    cells,
    ...(ka ? { keyAgreementCertificate: ka } : {}),
    ...(ds ? { digitalSignatureCertificate: ds } : {}),
  };
}

/** Check a batch of device ids. */
export function checkDeviceIds(v: unknown, field: string): Eui64[] {
  if (!Array.isArray(v) || v.length > MAX_REGISTRY_BATCH) throw invalid(field, `is not a list of at most ${MAX_REGISTRY_BATCH} EUI-64s`);
  return v.map((d, i) => eui64(d, `${field}[${i}]`));
}

/** Check a batch of records: shapes, and no device twice. */
export function checkDevices(v: unknown, field: string): DeviceRecord[] {
  if (!Array.isArray(v) || v.length > MAX_REGISTRY_BATCH) throw invalid(field, `is not a list of at most ${MAX_REGISTRY_BATCH} device records`);
  const out = v.map((r, i) => checkDevice(r, `${field}[${i}]`));
  const seen = new Set<string>();
  for (const [i, r] of out.entries()) {
    if (seen.has(r.device)) throw invalid(`${field}[${i}].device`, 'appears twice in one call');
    seen.add(r.device);
  }
  return out;
}

/** The stored form of a record: JSON, certificates in base64. */
export function encodeDevice(r: DeviceRecord): string {
  return JSON.stringify({
    ...r,
    ...(r.keyAgreementCertificate ? { keyAgreementCertificate: Buffer.from(r.keyAgreementCertificate).toString('base64') } : {}),
    ...(r.digitalSignatureCertificate ? { digitalSignatureCertificate: Buffer.from(r.digitalSignatureCertificate).toString('base64') } : {}),
  });
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Read a stored record back, checked as on the way in; anything else is ERR_STORE_CORRUPT. */
export function decodeDevice(device: string, stored: unknown): DeviceRecord {
  try {
    if (typeof stored !== 'string') throw new Error('not text');
    const o = JSON.parse(stored) as Record<string, unknown>;
    for (const k of ['keyAgreementCertificate', 'digitalSignatureCertificate']) {
      if (o[k] !== undefined) {
        if (typeof o[k] !== 'string' || !BASE64.test(o[k])) throw new Error(`${k} not base64`);
        o[k] = new Uint8Array(Buffer.from(o[k], 'base64'));
      }
    }
    const r = checkDevice(o, 'record');
    if (r.device !== device) throw new Error('record of another device');
    return r;
  } catch (e) {
    throw new SmkiError('ERR_STORE_CORRUPT', `the stored record of device ${device} is not valid`, { detail: `device ${device}` }, { cause: e });
  }
}
