// The FirmwareAllowlist contract (docs/store.md), against memory, SQLite and a real PostgreSQL
// server: GBCS CS06 names the image to activate by its 32-byte hash; an image is activated only if
// approved for the device's model, and a revocation (a vulnerability announced) is final.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isSmkiError } from '@smki/core';
import { MemoryFirmwareAllowlist, PostgresFirmwareAllowlist, SqliteFirmwareAllowlist } from '@smki/store';
import type { FirmwareAllowlist } from '@smki/store';
import { connectionOf, postgresForThisFile } from './_postgres.js';

const { pg, dir } = postgresForThisFile('smki-store-firmware-');
let n = 0;
const paths: string[] = [];
const schemas: string[] = [];
const BACKENDS: [string, () => Promise<FirmwareAllowlist>][] = [
  ['memory', async () => new MemoryFirmwareAllowlist()],
  [
    'sqlite',
    async () => {
      paths.push(join(dir, `f${++n}.db`));
      return SqliteFirmwareAllowlist.open({ path: paths.at(-1)! });
    },
  ],
  [
    'postgres',
    async () => {
      schemas.push(`fw${++n}`);
      return PostgresFirmwareAllowlist.open({ ...connectionOf(pg), schema: schemas.at(-1)! });
    },
  ],
];

const MODEL = 'ABCD:0102';
const H1 = 'A1'.repeat(32);
const H2 = Uint8Array.from({ length: 32 }, (_, i) => i);
const H2HEX = Buffer.from(H2).toString('hex').toUpperCase();

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? [e.code, (e.context as { detail?: string }).detail] : e),
  );
}

describe.each(BACKENDS)('FirmwareAllowlist contract: %s', (_name, open) => {
  it('approves per model, takes the hash as bytes or hex, and lists in order', async () => {
    const f = await open();
    expect(await f.status(MODEL, H1)).toBe('unknown');
    expect(await f.approve([{ model: MODEL, imageHash: H1.toLowerCase() }, { model: MODEL, imageHash: H2 }], 1000)).toEqual(['approved', 'approved']);
    expect(await f.status(MODEL, H1)).toBe('approved');
    expect(await f.status(MODEL, H2HEX)).toBe('approved');
    expect(await f.status(MODEL, Buffer.from(H1, 'hex'))).toBe('approved');
    // Another model does not inherit the approval.
    expect(await f.status('ABCD:0103', H1)).toBe('unknown');
    expect(await f.approve([{ model: MODEL, imageHash: H1 }, { model: 'A', imageHash: H1 }, { model: 'A-B', imageHash: H2 }], 2000)).toEqual([
      'already',
      'approved',
      'approved',
    ]);
    const all = await f.list();
    expect(all.map((i) => `${i.model}/${i.imageHash.slice(0, 4)}`)).toEqual(['A/A1A1', 'A-B/0001', `${MODEL}/0001`, `${MODEL}/A1A1`]);
    expect(all[3]).toEqual({ model: MODEL, imageHash: H1, state: 'approved', approvedAt: 1000 });
    expect((await f.list(MODEL)).map((i) => i.imageHash)).toEqual([H2HEX, H1]);
    expect(await f.list(MODEL, 1)).toHaveLength(1);
    expect(await f.approve([], 0)).toEqual([]);
    await f.close();
  });

  it('a revocation is final: approving the image again leaves it revoked', async () => {
    const f = await open();
    await f.approve([{ model: MODEL, imageHash: H1 }], 1000);
    expect(await f.revoke(MODEL, H1, 5000, 'vulnerability announced')).toBe(true);
    expect(await f.status(MODEL, H1)).toBe('revoked');
    expect(await f.revoke(MODEL, H1, 6000, 'again')).toBe(false);
    expect(await f.approve([{ model: MODEL, imageHash: H1 }, { model: MODEL, imageHash: H2 }], 7000)).toEqual(['revoked', 'approved']);
    expect(await f.status(MODEL, H1)).toBe('revoked');
    expect((await f.list(MODEL)).find((i) => i.imageHash === H1)).toEqual({
      model: MODEL,
      imageHash: H1,
      state: 'revoked',
      approvedAt: 1000,
      revokedAt: 5000,
      reason: 'vulnerability announced',
    });
    // An image revoked before it was ever approved can never be approved.
    const H3 = 'C3'.repeat(32);
    expect(await f.revoke(MODEL, H3, 8000)).toBe(true);
    expect(await f.approve([{ model: MODEL, imageHash: H3 }], 9000)).toEqual(['revoked']);
    expect((await f.list(MODEL)).find((i) => i.imageHash === H3)).toEqual({ model: MODEL, imageHash: H3, state: 'revoked', revokedAt: 8000 });
    await f.close();
  });

  it('refuses malformed input before anything is written, naming the field', async () => {
    const f = await open();
    const good = { model: MODEL, imageHash: H1 };
    for (const [images, detail] of [
      [[good, { model: 'a b', imageHash: H1 }], 'images[1].model'],
      [[good, { model: 'x'.repeat(65), imageHash: H1 }], 'images[1].model'],
      [[good, { model: MODEL, imageHash: 'A1'.repeat(31) }], 'images[1].imageHash'],
      [[good, { model: MODEL, imageHash: new Uint8Array(31) }], 'images[1].imageHash'],
      [[good, { model: MODEL, imageHash: 'G1'.repeat(32) }], 'images[1].imageHash'],
      [[good, { ...good, imageHash: H1.toLowerCase() }], 'images[1]'],
      [[good, null], 'images[1]'],
      [Array.from({ length: 10_001 }, (_, i) => ({ model: MODEL, imageHash: i.toString(16).padStart(64, '0') })), 'images'],
    ] as [unknown, string][]) {
      expect(await codeOf(f.approve(images as never, 1))).toEqual(['ERR_INVALID_ARGUMENT', detail]);
    }
    expect(await codeOf(f.approve([good], -1))).toEqual(['ERR_INVALID_ARGUMENT', 'at']);
    expect(await f.list()).toEqual([]);
    expect(await codeOf(f.revoke(MODEL, H1, 1, 'x'.repeat(257)))).toEqual(['ERR_INVALID_ARGUMENT', 'reason']);
    expect(await codeOf(f.revoke(MODEL, H1, 1, 'line\nbreak'))).toEqual(['ERR_INVALID_ARGUMENT', 'reason']);
    expect(await codeOf(f.status('', H1))).toEqual(['ERR_INVALID_ARGUMENT', 'model']);
    expect(await codeOf(f.status(MODEL, 'zz'))).toEqual(['ERR_INVALID_ARGUMENT', 'imageHash']);
    expect(await codeOf(f.revoke('', H1, 1))).toEqual(['ERR_INVALID_ARGUMENT', 'model']);
    expect(await codeOf(f.revoke(MODEL, 'zz', 1))).toEqual(['ERR_INVALID_ARGUMENT', 'imageHash']);
    expect(await codeOf(f.revoke(MODEL, H1, -1))).toEqual(['ERR_INVALID_ARGUMENT', 'at']);
    expect(await codeOf(f.list(''))).toEqual(['ERR_INVALID_ARGUMENT', 'model']);
    expect(await codeOf(f.list(MODEL, 0))).toEqual(['ERR_INVALID_ARGUMENT', 'limit']);
    expect(await f.list()).toEqual([]);
    await f.close();
  });

  it('refuses every call once closed', async () => {
    const f = await open();
    await f.close();
    await f.close();
    for (const p of [f.status(MODEL, H1), f.approve([{ model: MODEL, imageHash: H1 }], 1), f.revoke(MODEL, H1, 1), f.list()]) {
      expect(((await codeOf(p)) as string[])[0]).toBe('ERR_STORE_CLOSED');
    }
  });
});

describe.each(BACKENDS.filter(([name]) => name !== 'memory'))('FirmwareAllowlist stored entries: %s', (name, open) => {
  it('reports an entry out of shape as ERR_STORE_CORRUPT, never as approved', async () => {
    const f = await open();
    await f.approve([{ model: MODEL, imageHash: H1 }], 1000);
    const edit = (set: string): void => {
      if (name === 'sqlite') {
        const db = new Database(paths.at(-1)!);
        db.exec(`UPDATE firmware_images SET ${set}`);
        db.close();
      } else {
        pg.psql(`UPDATE ${schemas.at(-1)}.firmware_images SET ${set}`);
      }
    };
    for (const set of ["state = 'APPROVED'", 'approved_at = NULL', 'revoked_at = 5', "reason = 'x'", "state = 'revoked'"]) {
      edit(set);
      expect(await codeOf(f.status(MODEL, H1))).toEqual(['ERR_STORE_CORRUPT', `firmware ${MODEL}/${H1}`]);
      expect(((await codeOf(f.list())) as string[])[0]).toBe('ERR_STORE_CORRUPT');
      edit("state = 'approved', approved_at = 1000, revoked_at = NULL, reason = NULL");
    }
    expect(await f.status(MODEL, H1)).toBe('approved');
    await f.close();
  });
});
