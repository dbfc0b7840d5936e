// Several processes on one database store (one SQLite file; one PostgreSQL schema) sign, rotate
// and move concurrently. Afterwards: the trail verifies; replayed record by record, every use was
// made with the active key its meter trusted at that point; every signature a process received
// verifies under the key its use record names; and every meter still has a usable key.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicKeyFromRaw } from '@smki/core';
import { FileKeyBackend } from '../src/backends/file.js';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { TrailReplay } from '../src/internal/db/replay.js';
import { verifyTrail } from '../src/internal/db/trail.js';
import { postgresForThisFile } from '../../store/test/_postgres.js';
import { issueInto, meter, openDriver, PASS, SUPPLIER } from './_db-child.js';
import { tempDir } from './_store-fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_db-child.ts');
const { pg } = postgresForThisFile('smki-ks-procs-');
const METERS = 40;

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

describe.each(['sqlite', 'postgres'] as const)('processes racing on one %s store', (kind) => {
  it('sign, rotate and move concurrently and keep every invariant', async () => {
    const dir = tempDir();
    const spec = kind === 'sqlite' ? `sqlite:${join(dir, 'keystore.db')}` : `postgres:procs_${Date.now() % 100000}`;
    const ocaKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const env: NodeJS.ProcessEnv = { ...process.env, ...(kind === 'postgres' ? { ...pg.env, PGPASSFILE: pg.passfile } : {}), SMKI_DB: spec, SMKI_KEYS: join(dir, 'keys'), SMKI_OCA_KEY: ocaKey, SMKI_METERS: String(METERS) };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      // The estate: two portfolios with a DS key each, 40 meters in turn.
      const backend = await FileKeyBackend.open({ directory: join(dir, 'keys'), passphrase: PASS });
      const store = await DbKeyStore.open({ driver: await openDriver(spec), backend, passphrase: PASS });
      await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
      await store.createPortfolio(SUPPLIER, { id: 'north' });
      await store.createPortfolio(SUPPLIER, { id: 'south' });
      await issueInto(store, 'north');
      await issueInto(store, 'south');
      await store.assignDevices(SUPPLIER, Array.from({ length: METERS }, (_, i) => ({ device: meter(i + 1), portfolioId: i % 2 === 0 ? 'north' : 'south' })));
      await store.close();
      await backend.close();

      const out = (name: string) => join(dir, `${name}.json`);
      const results = await Promise.all([
        run(['sign', '250', '1000000'], { ...env, SMKI_OUT: out('s1') }),
        run(['sign', '250', '2000000'], { ...env, SMKI_OUT: out('s2') }),
        run(['rotate', '4'], { ...env, SMKI_OUT: out('r') }),
        run(['move', '12'], { ...env, SMKI_OUT: out('m') }),
      ]);
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const signed = [...JSON.parse(readFileSync(out('s1'), 'utf8')), ...JSON.parse(readFileSync(out('s2'), 'utf8'))] as { device: string; counter: string; signature?: string; error?: string; retries?: number }[];
      // Nothing refused in the end: a rotation or a move never leaves a meter without a usable key
      // (a signature withheld because the meter's key changed meanwhile is asked for again).
      expect(signed.filter((s) => s.error !== undefined)).toEqual([]);
      expect(signed).toHaveLength(500);
      const rotations = JSON.parse(readFileSync(out('r'), 'utf8')) as { retired?: string }[];
      const moves = JSON.parse(readFileSync(out('m'), 'utf8')) as { moved?: number }[];
      expect(moves.length).toBeGreaterThan(0);

      // The trail, verified and replayed.
      const backend2 = await FileKeyBackend.open({ directory: join(dir, 'keys'), passphrase: PASS });
      const after = await DbKeyStore.open({ driver: await openDriver(spec), backend: backend2, passphrase: PASS });
      const replay = new TrailReplay();
      const used = new Map<string, string>();
      const v = await verifyTrail(await openDriver(spec), { storeId: after.storeId, publicKey: after.auditPublicKey }, (r) => {
        replay.apply(r);
        if (r.type === 'key.used' && r.counter !== undefined) used.set(String(r.counter), r.keyId);
      });
      expect(v.findings).toEqual([]);
      expect(replay.findings).toEqual([]);
      expect(replay.uses).toBe(500);
      // Each signature verifies under the key its record names.
      const publicKeys = new Map((await after.keys()).map((k) => [k.keyId, publicKeyFromRaw(Buffer.from(k.publicKey, 'hex'))]));
      for (const s of signed) {
        const keyId = used.get(s.counter) as string;
        expect(keyId).toBeDefined();
        const ok = verify('sha256', new TextEncoder().encode(`command ${s.counter}`), { key: publicKeys.get(keyId)!, dsaEncoding: 'ieee-p1363' }, Buffer.from(s.signature as string, 'hex'));
        expect(ok).toBe(true);
      }
      // Keys were rotated (and some retired) while the signers ran.
      expect((await after.keys()).length).toBe(2 + 4);
      expect(rotations.some((r) => r.retired !== undefined)).toBe(true);
      // Every meter still has a usable key.
      for (let i = 1; i <= METERS; i++) await after.signFor(meter(i), new Uint8Array([1]));
      await after.close();
      await backend2.close();
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  }, 240_000);
});
