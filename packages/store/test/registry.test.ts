// The DeviceRegistry contract (docs/store.md), run against memory, SQLite and a real PostgreSQL
// server: records round-trip exactly, batches are all-or-nothing, malformed records are refused
// before anything is written, and a stored record out of shape is ERR_STORE_CORRUPT. Trust-anchor
// cells per GBCS: (role, key usage, cell usage) → certificate by SKI (docs/domain.md §2).
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { Eui64, SmkiErrorCode } from '@smki/core';
import { MemoryDeviceRegistry, PostgresDeviceRegistry, SqliteDeviceRegistry, SqliteStateStore } from '@smki/store';
import type { DeviceRecord, DeviceRegistry } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-registry-');

const SUPPLIER = parseEui64('90B3D51F30010000');
const DNO = parseEui64('90B3D51F30030000');
const eui = (n: number): Eui64 => parseEui64(`00DB1234${n.toString(16).toUpperCase().padStart(8, '0')}`);

let n = 0;
const paths: string[] = [];
const schemas: string[] = [];


const BACKENDS: [string, () => Promise<DeviceRegistry>][] = [
  ['memory', async () => new MemoryDeviceRegistry()],
  [
    'sqlite',
    async () => {
      const path = join(dir, `r${++n}.db`);
      paths.push(path);
      return SqliteDeviceRegistry.open({ path });
    },
  ],
  [
    'postgres',
    async () => {
      const schema = `r${++n}`;
      schemas.push(schema);
      return PostgresDeviceRegistry.open({ ...connectionOf(pg), schema });
    },
  ],
];

function meter(i: number, extra: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    device: eui(i),
    type: 'ESME',
    fuel: 'electricity',
    model: 'ABCD:0102',
    supplier: SUPPLIER,
    networkOperator: DNO,
    cells: [
      { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: 'A1B2C3D4E5F60708', entity: SUPPLIER },
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: '1111222233334444', entity: SUPPLIER },
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'prepayment', ski: '5555666677778888' },
      { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: '99990000AAAABBBB', entity: DNO },
      { role: 0, keyUsage: 'keyCertSign', cellUsage: 'management', ski: 'CCCCDDDDEEEEFFFF' },
    ],
    keyAgreementCertificate: Uint8Array.from({ length: 420 }, (_, k) => (k * 7 + i) & 0xff),
    digitalSignatureCertificate: Uint8Array.from({ length: 410 }, (_, k) => (k * 3 + i) & 0xff),
    ...extra,
  };
}

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? [e.code, (e.context as { detail?: string }).detail] : e),
  );
}

describe.each(BACKENDS)('DeviceRegistry contract: %s', (_name, open) => {
  it('round-trips records exactly, replaces them, and removes them', async () => {
    const r = await open();
    expect(await r.count()).toBe(0);
    expect(await r.device(eui(1))).toBeUndefined();
    const minimal: DeviceRecord = { device: eui(2), type: 'GSME', fuel: 'gas', cells: [] };
    await r.put([meter(1), minimal]);
    expect(await r.device(eui(1))).toEqual(meter(1));
    expect(await r.device(eui(2))).toEqual(minimal);
    expect(await r.count()).toBe(2);
    const many = await r.devices([eui(1), eui(2), eui(3)]);
    expect([...many.keys()].sort()).toEqual([eui(1), eui(2)]);
    expect(many.get(eui(2))).toEqual(minimal);
    // Replace: a change of supplier cell (a CS02b) shows at once.
    const moved = meter(1, { cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: '0102030405060708', entity: SUPPLIER }] });
    await r.put([moved]);
    expect(await r.device(eui(1))).toEqual(moved);
    expect(await r.count()).toBe(2);
    expect(await r.remove([eui(1), eui(3)])).toBe(1);
    expect(await r.device(eui(1))).toBeUndefined();
    expect(await r.count()).toBe(1);
    expect(await r.devices([])).toEqual(new Map());
    await r.put([]);
    expect(await r.remove([])).toBe(0);
    await r.close();
  });

  it('returns copies: changing a given or returned certificate changes nothing stored', async () => {
    const r = await open();
    const rec = meter(1);
    await r.put([rec]);
    (rec.keyAgreementCertificate as Uint8Array)[0] = 0xee;
    const got = await r.device(eui(1));
    expect(got?.keyAgreementCertificate?.[0]).toBe(meter(1).keyAgreementCertificate![0]);
    (got!.keyAgreementCertificate as Uint8Array)[0] = 0xdd;
    (got!.digitalSignatureCertificate as Uint8Array)[0] = 0xdd;
    try {
      (got!.cells[0] as { ski: string }).ski = 'FFFFFFFFFFFFFFFF';
    } catch {
      // a frozen cell (the memory registry's) cannot be changed at all
    }
    const fromBatch = (await r.devices([eui(1)])).get(eui(1));
    (fromBatch!.keyAgreementCertificate as Uint8Array)[1] = 0xdd;
    (fromBatch!.digitalSignatureCertificate as Uint8Array)[1] = 0xdd;
    expect(await r.device(eui(1))).toEqual(meter(1));
    await r.close();
  });

  it('refuses malformed records before anything is written, naming the field', async () => {
    const r = await open();
    const cell = meter(0).cells[0]!;
    const bad: [unknown, string][] = [
      [{ ...meter(9), device: '00db1234567890a0' }, 'records[1].device'],
      [{ ...meter(9), type: 'METER' }, 'records[1].type'],
      [{ ...meter(9), fuel: 'oil' }, 'records[1].fuel'],
      [{ ...meter(9), model: 'a b' }, 'records[1].model'],
      [{ ...meter(9), model: 'x'.repeat(65) }, 'records[1].model'],
      [{ ...meter(9), supplier: 'nope' }, 'records[1].supplier'],
      [{ ...meter(9), networkOperator: 5 }, 'records[1].networkOperator'],
      [{ ...meter(9), cells: 'none' }, 'records[1].cells'],
      [{ ...meter(9), cells: Array.from({ length: 33 }, (_, i) => ({ ...cell, role: 2, ski: i.toString(16).toUpperCase().padStart(16, '0') })) }, 'records[1].cells'],
      [{ ...meter(9), cells: [{ ...cell, role: 99 }] }, 'records[1].cells[0].role'],
      [{ ...meter(9), cells: [{ ...cell, keyUsage: 'dataEncipherment' }] }, 'records[1].cells[0].keyUsage'],
      [{ ...meter(9), cells: [{ ...cell, cellUsage: 'other' }] }, 'records[1].cells[0].cellUsage'],
      [{ ...meter(9), cells: [{ ...cell, ski: 'a1b2c3d4e5f60708' }] }, 'records[1].cells[0].ski'],
      [{ ...meter(9), cells: [{ ...cell, ski: 'A1B2C3D4E5F6070' }] }, 'records[1].cells[0].ski'],
      [{ ...meter(9), cells: [{ ...cell, entity: 'x' }] }, 'records[1].cells[0].entity'],
      [{ ...meter(9), cells: [cell, { ...cell, ski: '0000000000000000' }] }, 'records[1].cells[1]'],
      [{ ...meter(9), cells: [null] }, 'records[1].cells[0]'],
      [{ ...meter(9), keyAgreementCertificate: new Uint8Array(0) }, 'records[1].keyAgreementCertificate'],
      [{ ...meter(9), digitalSignatureCertificate: new Uint8Array(4097) }, 'records[1].digitalSignatureCertificate'],
      [{ ...meter(9), keyAgreementCertificate: 'MIIB' }, 'records[1].keyAgreementCertificate'],
      [meter(1), 'records[1].device'],
      [null, 'records[1]'],
    ];
    for (const [record, detail] of bad) {
      expect(await codeOf(r.put([meter(1), record as DeviceRecord]))).toEqual(['ERR_INVALID_ARGUMENT', detail]);
    }
    expect(await r.count()).toBe(0);
    expect(await codeOf(r.put(Array.from({ length: 10_001 }, (_, i) => meter(i))))).toEqual(['ERR_INVALID_ARGUMENT', 'records']);
    expect(await codeOf(r.device('x' as Eui64))).toEqual(['ERR_INVALID_ARGUMENT', 'device']);
    expect(await codeOf(r.devices([eui(1), 'y' as Eui64]))).toEqual(['ERR_INVALID_ARGUMENT', 'devices[1]']);
    expect(await codeOf(r.remove('z' as never))).toEqual(['ERR_INVALID_ARGUMENT', 'devices']);
    await r.close();
  });

  it('refuses every call once closed', async () => {
    const r = await open();
    await r.close();
    await r.close();
    for (const p of [r.device(eui(1)), r.devices([eui(1)]), r.put([meter(1)]), r.remove([eui(1)]), r.count()]) {
      expect(((await codeOf(p)) as [SmkiErrorCode])[0]).toBe('ERR_STORE_CLOSED');
    }
  });

});

describe.each(BACKENDS.filter(([name]) => name !== 'memory'))('DeviceRegistry stored records: %s', (name, open) => {
  it('reports a stored record out of shape as ERR_STORE_CORRUPT', async () => {
    const r = await open();
    await r.put([meter(1), meter(2)]);
    const edit = (record: string): void => {
      if (name === 'sqlite') {
        const db = new Database(paths.at(-1)!);
        db.prepare('UPDATE devices SET record = ? WHERE device = ?').run(record, eui(1));
        db.close();
      } else {
        pg.psql(`UPDATE ${schemas.at(-1)}.devices SET record = '${record.replace(/'/g, "''")}' WHERE device = '${eui(1)}'`);
      }
    };
    const good = JSON.stringify({ ...meter(1), keyAgreementCertificate: undefined, digitalSignatureCertificate: undefined });
    for (const record of [
      '{',
      '[]',
      good.replace('"ESME"', '"XXXX"'),
      good.replace(eui(1), eui(2)),
      JSON.stringify({ ...JSON.parse(good), keyAgreementCertificate: '!!!' }),
      JSON.stringify({ ...JSON.parse(good), cells: [{ role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: 'short' }] }),
    ]) {
      edit(record);
      expect(await codeOf(r.device(eui(1)))).toEqual(['ERR_STORE_CORRUPT', `device ${eui(1)}`]);
      expect(await codeOf(r.devices([eui(2), eui(1)]))).toEqual(['ERR_STORE_CORRUPT', `device ${eui(1)}`]);
    }
    edit(good);
    expect((await r.device(eui(1)))?.cells).toEqual(meter(1).cells);
    expect(await r.device(eui(2))).toEqual(meter(2));
    await r.close();
  });
});

describe('SQLite: one file for the state store and the registry', () => {
  it('both open the same file, each with its own connection', async () => {
    const path = join(dir, 'shared.db');
    const state = await SqliteStateStore.open({ path });
    const registry = await SqliteDeviceRegistry.open({ path });
    await registry.put([meter(1)]);
    await state.commit([{ counter: { originator: SUPPLIER, device: eui(1), value: 1n } }]);
    expect((await registry.device(eui(1)))?.supplier).toBe(SUPPLIER);
    expect(await state.lastCounter(SUPPLIER, eui(1))).toBe(1n);
    await state.close();
    await registry.close();
  });
});
