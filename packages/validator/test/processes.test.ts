// The validator's anti-replay across real processes and real stores (GBCS 4.3.1.5, 6.2.4: a
// counter is accepted once): a command reported accepted before `kill -9` still blocks its replay
// after restart; processes racing with the same commands accept each exactly once; a PostgreSQL
// server stopped mid-run makes every command fail closed and service resumes when it returns; a
// state store restored from an older copy is detected at start (docs/validator.md).
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { parseEui64, toHex, type Eui64 } from '@smki/core';
import { buildDisableSupply, signPreCommand } from '@smki/gbcs';
import { verifyAuditLog } from '@smki/keystore';
import { PostgresStateStore, SqliteStateStore, type StateStore } from '@smki/store';
import { connectionOf, postgresForThisFile, PG_BIN } from '../../store/test/_postgres.js';
import { seededSigner } from '../../../scripts/vectors/deterministic.js';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA } from '../src/index.js';

const { pg, dir: work } = postgresForThisFile('smki-validator-proc-');
const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_validator-child.ts');
const VECTORS = JSON.parse(readFileSync(join(ROOT, 'test-vectors', 'validator', 'decisions.json'), 'utf8')) as { world: { now: string } };
const WORLD_FILE = join(work, 'world.json');
writeFileSync(WORLD_FILE, JSON.stringify(VECTORS.world));
const SUPPLIER = parseEui64('90B3D51F30010000');
const METER = parseEui64('00DB123400000000'); // portfolio A
const KEY_A = seededSigner('validator/supplier-ds-a');
const NOW = BigInt(Date.parse(VECTORS.world.now));
const LOG_KEY = new Uint8Array(32).fill(0x5a);

async function commandsFile(name: string, from: bigint, count: number, device: Eui64 = METER): Promise<string> {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: device, counter: from + BigInt(i) }), KEY_A);
    lines.push(JSON.stringify({ command: toHex(bytes), sender: SUPPLIER }));
  }
  const path = join(work, `${name}.jsonl`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

interface Line {
  open?: string;
  code?: string | null;
  outcome?: string;
  counter?: string;
  done?: boolean;
}

function start(where: string, logDir: string, logId: string, commands: string, startFile?: string) {
  const p = spawn(process.execPath, ['--import', 'tsx', CHILD, WORLD_FILE, where, logDir, logId, commands, ...(startFile ? [startFile] : [])], {
    cwd: ROOT,
    env: { ...process.env, ...pg.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
  return {
    async next(): Promise<Line> {
      const r = await lines.next();
      if (r.done) throw new Error(`child ended: ${err}`);
      return JSON.parse(r.value) as Line;
    },
    async all(): Promise<Line[]> {
      const out: Line[] = [];
      for await (const l of lines) out.push(JSON.parse(l) as Line);
      return out;
    },
    async kill(): Promise<void> {
      p.kill('SIGKILL');
      await done;
    },
    done,
    stderr: () => err,
  };
}

let k = 0;
const STORES = [
  { name: 'sqlite', where: () => `sqlite:${join(work, `v${++k}.db`)}`, open: (w: string): Promise<StateStore> => SqliteStateStore.open({ path: w.slice(7) }) },
  { name: 'postgres', where: () => `postgres:vproc${++k}`, open: (w: string): Promise<StateStore> => PostgresStateStore.open({ ...connectionOf(pg), schema: w.slice(9) }) },
];

describe.each(STORES)('$name', ({ where: whereOf }) => {
  it('a command reported accepted before kill -9 is refused as a replay after restart; the decision log verifies', async () => {
    for (const after of [1, 9]) {
      const where = whereOf();
      const logDir = join(work, `log-${k}`);
      const cmds = await commandsFile(`kill-${k}`, NOW - 100_000n, 200);
      const c = start(where, logDir, 'v1', cmds);
      expect((await c.next()).open, c.stderr()).toBe('ok');
      let accepted = 0;
      while (accepted < after) {
        const l = await c.next();
        expect(l.outcome).toBe('accepted');
        accepted++;
      }
      await c.kill();
      // The same commands again, in a new process: the first `after` (at least) are replays.
      const again = start(where, logDir, 'v1', cmds);
      const lines = await again.all();
      expect(lines[0]?.open, again.stderr()).toBe('ok');
      const decisions = lines.filter((l) => l.outcome !== undefined);
      for (const d of decisions.slice(0, after)) expect(d.code).toBe('ERR_COMMAND_REPLAYED');
      const verify = await verifyAuditLog(join(logDir, DECISION_LOG_FILE), { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
      expect(verify.ok, JSON.stringify(verify.findings)).toBe(true);
      // Over both runs, the (verified) log accepts each counter at most once, and every command
      // the second run refused as a replay was accepted by the first (none is lost, none doubled).
      const records = readFileSync(join(logDir, DECISION_LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; counter?: string });
      const acceptedCounters = records.filter((r) => r.type === 'command.accepted').map((r) => r.counter);
      expect(new Set(acceptedCounters).size).toBe(acceptedCounters.length);
      expect(acceptedCounters).toHaveLength(200);
    }
  });

  it('four processes racing with the same 50 commands accept each exactly once', async () => {
    const where = whereOf();
    const cmds = await commandsFile(`race-${k}`, NOW - 50_000n, 50);
    const startFile = join(work, `go-${k}`);
    const children = [0, 1, 2, 3].map((i) => start(where, join(work, `race-log-${k}-${i}`), `race-${i}`, cmds, startFile));
    for (const c of children) expect((await c.next()).open, c.stderr()).toBe('ok');
    writeFileSync(startFile, '');
    const results = await Promise.all(children.map((c) => c.all()));
    const accepted = new Map<string, number>();
    for (const lines of results) {
      for (const l of lines) {
        if (l.outcome === 'accepted') accepted.set(l.counter as string, (accepted.get(l.counter as string) ?? 0) + 1);
        else if (l.outcome) expect(l.code).toBe('ERR_COMMAND_REPLAYED');
      }
    }
    expect(accepted.size).toBe(50);
    expect([...accepted.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('a restored copy of the state store', () => {
  it('SQLite: the validator refuses to start (ERR_VALIDATOR_STATE_BEHIND); the right store opens', async () => {
    const where = `sqlite:${join(work, 'restore.db')}`;
    const logDir = join(work, 'restore-log');
    const first = start(where, logDir, 'r1', await commandsFile('restore-1', NOW - 30_000n, 3));
    expect((await first.all()).filter((l) => l.outcome === 'accepted')).toHaveLength(3);
    const backup = join(work, 'restore-backup.db');
    copyFileSync(where.slice(7), backup);
    const second = start(where, logDir, 'r1', await commandsFile('restore-2', NOW - 20_000n, 3));
    expect((await second.all()).filter((l) => l.outcome === 'accepted')).toHaveLength(3);
    const current = join(work, 'restore-current.db');
    copyFileSync(where.slice(7), current);
    copyFileSync(backup, where.slice(7));
    const refused = await start(where, logDir, 'r1', await commandsFile('restore-3', NOW - 20_000n, 1)).all();
    expect(refused[0]).toEqual({ open: 'refused', code: 'ERR_VALIDATOR_STATE_BEHIND' });
    copyFileSync(current, where.slice(7));
    const ok = await start(where, logDir, 'r1', await commandsFile('restore-4', NOW - 20_000n, 1)).all();
    expect(ok[0]?.open).toBe('ok');
    expect(ok[1]?.code).toBe('ERR_COMMAND_REPLAYED');
  });

  it('PostgreSQL: a schema restored from pg_dump is detected', async () => {
    const schema = 'vrestore';
    const where = `postgres:${schema}`;
    const logDir = join(work, 'pg-restore-log');
    const first = start(where, logDir, 'r1', await commandsFile('pgr-1', NOW - 30_000n, 2));
    expect((await first.all()).filter((l) => l.outcome === 'accepted')).toHaveLength(2);
    const conn = connectionOf(pg);
    const env = { ...process.env, ...pg.env };
    const dump = execFileSync(join(PG_BIN, 'pg_dump'), ['-h', conn.host, '-p', String(conn.port), '-U', conn.user, '-n', schema, conn.database], { env });
    const second = start(where, logDir, 'r1', await commandsFile('pgr-2', NOW - 20_000n, 2));
    expect((await second.all()).filter((l) => l.outcome === 'accepted')).toHaveLength(2);
    const psql = (sql: string | Buffer) => execFileSync(join(PG_BIN, 'psql'), ['-q', '-v', 'ON_ERROR_STOP=1', '-h', conn.host, '-p', String(conn.port), '-U', conn.user, conn.database], { env, input: sql });
    psql(`DROP SCHEMA ${schema} CASCADE;`);
    psql(dump);
    const refused = await start(where, logDir, 'r1', await commandsFile('pgr-3', NOW - 10_000n, 1)).all();
    expect(refused[0]).toEqual({ open: 'refused', code: 'ERR_VALIDATOR_STATE_BEHIND' });
  });
});

describe('PostgreSQL stopped mid-run', () => {
  it('every command fails closed with ERR_STORE_UNAVAILABLE and no frame; service resumes when the server returns', async () => {
    const { Validator } = await import('../src/index.js');
    const { createKeyAgreement, fromHex } = await import('@smki/core');
    const { createPrivateKey } = await import('node:crypto');
    const { MemoryDeviceRegistry, MemoryFirmwareAllowlist } = await import('@smki/store');
    const { deviceRecord } = await import('../../../scripts/vectors/validator-world.js');
    const world = VECTORS.world as unknown as import('../../../scripts/vectors/validator-world.js').ValidatorVectorWorld;
    const store = await PostgresStateStore.open({ ...connectionOf(pg), schema: 'vstop', statementTimeoutMs: 5_000 });
    const registry = new MemoryDeviceRegistry();
    await registry.put(world.devices.map(deviceRecord));
    const logDir = join(work, 'stop-log');
    mkdirSync(logDir, { recursive: true });
    const v = await Validator.open({
      store,
      registry,
      firmware: new MemoryFirmwareAllowlist(),
      trust: { certificates: world.certificates.map(fromHex), crls: (world.crls['current'] ?? []).map(fromHex) },
      acb: { keyId: world.acbKeyId, keyAgreement: createKeyAgreement(createPrivateKey({ key: Buffer.from(fromHex(world.acbPrivateKey)), format: 'der', type: 'pkcs8' })) },
      log: { dir: logDir, id: 'stop', key: LOG_KEY },
      now: () => new Date(world.now),
    });
    const cmd = async (c: bigint) => signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: METER, counter: c }), KEY_A);
    expect((await v.validate(await cmd(NOW - 9_000n), { sender: SUPPLIER })).outcome).toBe('accepted');
    pg.stop('immediate');
    try {
      for (let i = 0n; i < 3n; i++) {
        const d = await v.validate(await cmd(NOW - 8_000n + i), { sender: SUPPLIER });
        expect(d.outcome).toBe('rejected');
        expect((d as { code: string }).code).toBe('ERR_STORE_UNAVAILABLE');
        expect('frame' in d).toBe(false);
      }
    } finally {
      pg.start();
    }
    let d = await v.validate(await cmd(NOW - 7_000n), { sender: SUPPLIER });
    for (let tries = 0; d.outcome !== 'accepted' && tries < 50; tries++) {
      await new Promise((r) => setTimeout(r, 200));
      d = await v.validate(await cmd(NOW - 6_000n + BigInt(tries)), { sender: SUPPLIER });
    }
    expect(d.outcome).toBe('accepted');
    await v.close();
    await store.close();
    const verify = await verifyAuditLog(join(logDir, DECISION_LOG_FILE), { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
    expect(verify.ok, JSON.stringify(verify.findings)).toBe(true);
  });
});
