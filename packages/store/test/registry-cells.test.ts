// DeviceRegistry.replaceCells (docs/store.md; docs/domain.md §9): after a device's verified answer
// to a CS02b Update Security Credentials command, the cells it replaced name the new certificates.
// Run against memory, SQLite and a real PostgreSQL server: compare-and-set per cell, all or none,
// one transaction, durable (the SQLite file is closed and reopened), concurrent moves serialise.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64 } from '@smki/core';
import type { Eui64 } from '@smki/core';
import { MemoryDeviceRegistry, PostgresDeviceRegistry, SqliteDeviceRegistry } from '@smki/store';
import type { CellReplacement, DeviceRecord, DeviceRegistry } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-registry-cells-');

const SUPPLIER = parseEui64('90B3D51F30010000');
const NEW_SUPPLIER = parseEui64('90B3D51F30020000');
const eui = (n: number): Eui64 => parseEui64(`00DB5678${n.toString(16).toUpperCase().padStart(8, '0')}`);

let n = 0;

const BACKENDS: [string, () => Promise<DeviceRegistry>][] = [
  ['memory', async () => new MemoryDeviceRegistry()],
  ['sqlite', async () => SqliteDeviceRegistry.open({ path: join(dir, `c${++n}.db`) })],
  ['postgres', async () => PostgresDeviceRegistry.open({ ...connectionOf(pg), schema: `c${++n}` })],
];

const OLD_DS = 'A1B2C3D4E5F60708';
const OLD_KA = '1111222233334444';
const NEW_DS = '0102030405060708';
const NEW_KA = '0A0B0C0D0E0F1011';

function meter(i: number): DeviceRecord {
  return {
    device: eui(i),
    type: 'ESME',
    fuel: 'electricity',
    supplier: SUPPLIER,
    cells: [
      { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: OLD_DS, entity: SUPPLIER },
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: OLD_KA, entity: SUPPLIER },
      { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: '99990000AAAABBBB' },
    ],
    keyAgreementCertificate: Uint8Array.from({ length: 100 }, (_, k) => (k + i) & 0xff),
  };
}

const ds = (from: string | null, ski: string, entity?: Eui64): CellReplacement => ({ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', from, ski, ...(entity ? { entity } : {}) });
const ka = (from: string | null, ski: string): CellReplacement => ({ role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', from, ski, entity: SUPPLIER });

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? e.code : e),
  );
}

describe.each(BACKENDS)('DeviceRegistry.replaceCells: %s', (_name, open) => {
  it('moves the named cells, keeps the others and every other field, and returns the record as stored', async () => {
    const r = await open();
    await r.put([meter(1), meter(2)]);
    const after = await r.replaceCells(eui(1), [ds(OLD_DS, NEW_DS, NEW_SUPPLIER), ka(OLD_KA, NEW_KA)]);
    const want: DeviceRecord = {
      ...meter(1),
      cells: [
        { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: NEW_DS, entity: NEW_SUPPLIER },
        { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: NEW_KA, entity: SUPPLIER },
        { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: '99990000AAAABBBB' },
      ],
    };
    expect(after).toEqual(want);
    expect(await r.device(eui(1))).toEqual(want);
    expect(await r.device(eui(2))).toEqual(meter(2));
    await r.close();
  });

  it('adds a cell the record did not hold when from is null', async () => {
    const r = await open();
    await r.put([meter(1)]);
    const recovery: CellReplacement = { role: 1, keyUsage: 'digitalSignature', cellUsage: 'management', from: null, ski: NEW_DS };
    const after = await r.replaceCells(eui(1), [recovery]);
    expect(after.cells).toContainEqual({ role: 1, keyUsage: 'digitalSignature', cellUsage: 'management', ski: NEW_DS });
    await r.close();
  });

  it('is compare-and-set: one stale cell and nothing moves (ERR_STORE_CELL_CONFLICT)', async () => {
    const r = await open();
    await r.put([meter(1)]);
    expect(await codeOf(r.replaceCells(eui(1), [ds(OLD_DS, NEW_DS), ka('FFFFFFFFFFFFFFFF', NEW_KA)]))).toBe('ERR_STORE_CELL_CONFLICT');
    expect(await r.device(eui(1))).toEqual(meter(1));
    // A cell the record holds is not "absent".
    expect(await codeOf(r.replaceCells(eui(1), [ds(null, NEW_DS)]))).toBe('ERR_STORE_CELL_CONFLICT');
    // A cell the record does not hold has no old certificate.
    expect(await codeOf(r.replaceCells(eui(1), [{ role: 1, keyUsage: 'digitalSignature', cellUsage: 'management', from: OLD_DS, ski: NEW_DS }]))).toBe('ERR_STORE_CELL_CONFLICT');
    expect(await codeOf(r.replaceCells(eui(9), [ds(OLD_DS, NEW_DS)]))).toBe('ERR_STORE_CELL_CONFLICT');
    expect(await r.device(eui(1))).toEqual(meter(1));
    // Applied once; the same move again is stale.
    await r.replaceCells(eui(1), [ds(OLD_DS, NEW_DS)]);
    expect(await codeOf(r.replaceCells(eui(1), [ds(OLD_DS, NEW_DS)]))).toBe('ERR_STORE_CELL_CONFLICT');
    await r.close();
  });

  it('refuses malformed replacements before anything is written (ERR_INVALID_ARGUMENT)', async () => {
    const r = await open();
    await r.put([meter(1)]);
    const bad: unknown[] = [
      [],
      [{ ...ds(OLD_DS, NEW_DS), ski: 'abc' }],
      [{ ...ds(OLD_DS, NEW_DS), from: 'a1b2c3d4e5f60708' }],
      [{ ...ds(OLD_DS, NEW_DS), role: 300 }],
      [{ ...ds(OLD_DS, NEW_DS), keyUsage: 'nonRepudiation' }],
      [ds(OLD_DS, NEW_DS), ds(OLD_DS, NEW_KA)],
      'not a list',
    ];
    for (const b of bad) expect(await codeOf(r.replaceCells(eui(1), b as CellReplacement[]))).toBe('ERR_INVALID_ARGUMENT');
    expect(await codeOf(r.replaceCells('nope' as Eui64, [ds(OLD_DS, NEW_DS)]))).toBe('ERR_INVALID_ARGUMENT');
    expect(await r.device(eui(1))).toEqual(meter(1));
    await r.close();
  });

  it('concurrent moves of the same cell: exactly one wins', async () => {
    const r = await open();
    await r.put([meter(1)]);
    const results = await Promise.all([codeOf(r.replaceCells(eui(1), [ds(OLD_DS, NEW_DS)])), codeOf(r.replaceCells(eui(1), [ds(OLD_DS, NEW_KA)]))]);
    expect(results.filter((x) => x === 'resolved')).toHaveLength(1);
    expect(results.filter((x) => x === 'ERR_STORE_CELL_CONFLICT')).toHaveLength(1);
    await r.close();
  });

  it('refuses calls after close (ERR_STORE_CLOSED)', async () => {
    const r = await open();
    await r.close();
    expect(await codeOf(r.replaceCells(eui(1), [ds(OLD_DS, NEW_DS)]))).toBe('ERR_STORE_CLOSED');
  });
});

describe('durability', () => {
  it('SQLite: the move survives closing and reopening the file', async () => {
    const path = join(dir, 'durable.db');
    const a = await SqliteDeviceRegistry.open({ path });
    await a.put([meter(1)]);
    await a.replaceCells(eui(1), [ds(OLD_DS, NEW_DS)]);
    await a.close();
    const b = await SqliteDeviceRegistry.open({ path });
    expect((await b.device(eui(1)))?.cells[0]?.ski).toBe(NEW_DS);
    await b.close();
  });

  it('PostgreSQL: the move is seen by another connection, and after a server restart', async () => {
    const schema = `durable${++n}`;
    const a = await PostgresDeviceRegistry.open({ ...connectionOf(pg), schema });
    await a.put([meter(1)]);
    await a.replaceCells(eui(1), [ds(OLD_DS, NEW_DS), ka(OLD_KA, NEW_KA)]);
    await a.close();
    pg.stop('immediate');
    pg.start();
    const b = await PostgresDeviceRegistry.open({ ...connectionOf(pg), schema });
    const cells = (await b.device(eui(1)))?.cells;
    expect(cells?.[0]?.ski).toBe(NEW_DS);
    expect(cells?.[1]?.ski).toBe(NEW_KA);
    await b.close();
  });
});
