// Kill at every step, on both databases: each operation is run once to record the fault points it
// passes (the engine's `db:*` points and the file backend's), then once per point in a child
// killed there with SIGKILL, each time on a fresh copy of the same base state. After each kill the
// store opens, its trail verifies and replays without a finding, and its state is the state
// before the operation or the state after it, never anything else; a key generated but never
// recorded is an orphan.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileKeyBackend } from '../src/backends/file.js';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { TrailReplay } from '../src/internal/db/replay.js';
import { verifyTrail } from '../src/internal/db/trail.js';
import { postgresForThisFile } from '../../store/test/_postgres.js';
import { issueInto, meter, openDriver, PASS, SUPPLIER } from './_db-child.js';
import { tempDir } from './_store-fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_db-child.ts');
const { pg } = postgresForThisFile('smki-ks-dbcrash-');
const OPS = ['generate', 'rotate', 'assign', 'move', 'revoke', 'credentials', 'sign'] as const;
const TABLES = ['schema_version', 'meta', 'organisations', 'portfolios', 'keys', 'devices', 'audit_head', 'audit_records', 'audit_subjects', 'audit_batches', 'migrated_rows', 'operators', 'access', 'proposals', 'approvals', 'signed_requests', 'meter_epoch'];
const bases: string[] = [];
afterAll(() => {
  for (const d of bases) rmSync(d, { recursive: true, force: true });
});
const ocaKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

/** What must be either before or after: keys and their states, current keys, meters and their keys. */
async function snapshot(store: DbKeyStore): Promise<string> {
  const keys = (await store.keys()).map((k) => `${k.keyId}:${k.state}:${k.certificate ? 'cert' : '-'}`);
  const portfolios = (await store.portfolios(SUPPLIER)).map((p) => `${p.id}:${JSON.stringify(p.current)}`);
  const devices: string[] = [];
  for (const p of ['north', 'south']) {
    for (let page = await store.devicesOf(SUPPLIER, p, { limit: 1000 }); ; ) {
      devices.push(...page.devices.map((d) => `${d.device}:${d.portfolioId}:${d.installed.signing ?? '-'}`));
      if (!page.next) break;
      page = await store.devicesOf(SUPPLIER, p, { limit: 1000, after: page.next });
    }
  }
  return JSON.stringify({ keys, portfolios, devices: devices.sort() });
}

interface Place {
  /** The SMKI_DB of this copy. */
  readonly spec: string;
  readonly keys: string;
}

describe.each(['sqlite', 'postgres'] as const)('a kill at every step, on %s', (kind) => {
  let base: Place;
  let copies = 0;
  const env = () => ({ ...process.env, ...(kind === 'postgres' ? { ...pg.env, PGPASSFILE: pg.passfile } : {}), SMKI_OCA_KEY: ocaKey });

  /** A fresh copy of the base state. */
  function copy(): Place {
    const dir = tempDir();
    cpSync(base.keys, join(dir, 'keys'), { recursive: true });
    if (kind === 'sqlite') {
      cpSync(base.spec.slice('sqlite:'.length), join(dir, 'keystore.db'));
      return { spec: `sqlite:${join(dir, 'keystore.db')}`, keys: join(dir, 'keys') };
    }
    const from = base.spec.slice('postgres:'.length);
    const to = `${from}_c${++copies}`;
    pg.psql(`CREATE SCHEMA ${to}; ${TABLES.map((t) => `CREATE TABLE ${to}.${t} (LIKE ${from}.${t} INCLUDING ALL); INSERT INTO ${to}.${t} SELECT * FROM ${from}.${t};`).join(' ')}`);
    return { spec: `postgres:${to}`, keys: join(dir, 'keys') };
  }

  async function opened(place: Place, run: (s: DbKeyStore, b: FileKeyBackend) => Promise<void>): Promise<void> {
    const saved = { ...process.env };
    Object.assign(process.env, env());
    try {
      const backend = await FileKeyBackend.open({ directory: place.keys, passphrase: PASS });
      const store = await DbKeyStore.open({ driver: await openDriver(place.spec), backend, passphrase: PASS });
      try {
        await run(store, backend);
      } finally {
        await store.close();
        await backend.close();
      }
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  }

  beforeAll(async () => {
    // Not a tempDir(): those go after each test, and the base serves every test of the file.
    const dir = mkdtempSync(join(tmpdir(), 'smki-ks-dbcrash-base-'));
    bases.push(dir);
    mkdirSync(join(dir, 'keys'));
    base = { spec: kind === 'sqlite' ? `sqlite:${join(dir, 'keystore.db')}` : `postgres:crash_${process.pid % 10000}`, keys: join(dir, 'keys') };
    await opened(base, async (store) => {
      await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
      await store.createPortfolio(SUPPLIER, { id: 'north' });
      await store.createPortfolio(SUPPLIER, { id: 'south' });
      await issueInto(store, 'north');
      await issueInto(store, 'south');
      // north g2: pending with its certificate, ready to rotate in.
      await issueInto(store, 'north');
      await store.assignDevices(SUPPLIER, Array.from({ length: 10 }, (_, i) => ({ device: meter(i + 1), portfolioId: i % 2 === 0 ? 'north' : 'south' })));
      // Meter 2 moved to north, still trusting south's key: its credential update is pending.
      await store.moveDevices(SUPPLIER, [meter(2)], 'north');
    });
  }, 120_000);

  for (const op of OPS) {
    it(`${op}: old state or new after a kill at each point`, async () => {
      // The reference run: the points it passes, and the states before and after.
      const ref = copy();
      let before = '';
      await opened(ref, async (s) => {
        before = await snapshot(s);
      });
      const record = join(tempDir(), 'points.json');
      const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, 'op', op], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...env(), SMKI_DB: ref.spec, SMKI_KEYS: ref.keys, SMKI_RECORD: record } });
      expect(r.status, r.stderr).toBe(0);
      let after = '';
      await opened(ref, async (s) => {
        after = await snapshot(s);
      });
      if (op !== 'sign') expect(after).not.toBe(before);
      const points = JSON.parse(readFileSync(record, 'utf8')) as string[];
      expect(points).toContain(op === 'sign' ? 'db:use-before-commit' : 'db:before-commit');
      const outcomes = new Set<string>();
      const counts = new Map<string, number>();
      for (const point of points) {
        const nth = (counts.get(point) ?? 0) + 1;
        counts.set(point, nth);
        const place = copy();
        const k = spawnSync(process.execPath, ['--import', 'tsx', CHILD, 'op', op], {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 120_000,
          env: { ...env(), SMKI_DB: place.spec, SMKI_KEYS: place.keys, SMKI_KILL_AT: point, SMKI_KILL_NTH: String(nth) },
        });
        expect(k.signal, `${point}#${nth}: ${k.stderr}`).toBe('SIGKILL');
        await opened(place, async (s, backend) => {
          const state = await snapshot(s);
          expect([before, after], `${op} killed at ${point}#${nth}`).toContain(state);
          outcomes.add(state === before ? 'old' : 'new');
          const replay = new TrailReplay();
          const v = await verifyTrail(await openDriver(place.spec), { storeId: s.storeId, publicKey: s.auditPublicKey }, (rec) => replay.apply(rec));
          expect(v.findings).toEqual([]);
          expect(replay.findings).toEqual([]);
          // A key made in the backend and never recorded is an orphan, never used.
          const known = new Set((await s.keys()).map((key) => key.handle));
          const handles = await backend.listHandles();
          expect([...s.orphanHandles()].sort()).toEqual(handles.filter((h) => !known.has(h)).sort());
          // The store works after the crash (meter 1 trusts north g1 whatever the operation did).
          await s.signFor(meter(1), new Uint8Array([9]));
          if (op === 'sign') {
            // The signature's record is there only if its batch committed; the state is unchanged.
            expect(state).toBe(before);
          }
        });
      }
      // Both outcomes were reached (a kill before the commit, and after it).
      expect(outcomes).toEqual(new Set(op === 'sign' ? ['old'] : ['old', 'new']));
    }, 300_000);
  }
});
