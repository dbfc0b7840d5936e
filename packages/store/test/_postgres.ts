// A private PostgreSQL server for one test file: initdb in a temporary directory (as the
// `postgres` user when running as root: initdb refuses root), password authentication
// (scram-sha-256) over loopback TCP only, the password in a pgpass file named by PGPASSFILE, so
// the tests connect exactly as production does (no password in code or flags).
//
// The binaries come from SMKI_PG_BIN, else /usr/lib/postgresql/15/bin (scripts/bootstrap.sh
// installs Debian's postgresql-15 if it is missing).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';

export const PG_BIN = process.env['SMKI_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

export interface PgServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** The pgpass file holding the password (mode 0600). */
  readonly passfile: string;
  /** Environment for a child process that connects (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSFILE). */
  readonly env: Record<string, string>;
  /** Stop the server (`fast`: clean shutdown; `immediate`: like a crash). */
  stop(mode?: 'fast' | 'immediate'): void;
  /** Start it again on the same port and data. */
  start(): void;
  /** Run SQL through psql as the test user; returns stdout. */
  psql(sql: string): string;
  /** Stop the server and delete its files. */
  destroy(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const isRoot = process.getuid?.() === 0;

/** Run a PostgreSQL binary as the server's owner (postgres when we are root). */
function asOwner(bin: string, args: string[], env: Record<string, string> = {}): string {
  const cmd = isRoot ? 'runuser' : join(PG_BIN, bin);
  const argv = isRoot ? ['-u', 'postgres', '--', join(PG_BIN, bin), ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export async function startPostgres(): Promise<PgServer> {
  const dir = mkdtempSync(join(tmpdir(), 'smki-pg-'));
  const data = join(dir, 'data');
  const user = 'smki';
  const database = 'smki';
  const password = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'initpw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  asOwner('initdb', ['-D', data, '-U', user, '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C', '--no-instructions']);
  rmSync(pwfile);
  const port = await freePort();
  const host = '127.0.0.1';
  const log = join(dir, 'server.log');
  const opts = `-c listen_addresses=${host} -p ${port} -k ${dir} -c fsync=on -c synchronous_commit=on -c max_connections=100`;
  const start = (): void => {
    asOwner('pg_ctl', ['-D', data, '-l', log, '-o', opts, '-w', '-t', '60', 'start']);
  };
  const stop = (mode: 'fast' | 'immediate' = 'fast'): void => {
    asOwner('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  start();
  // The pgpass file belongs to the test process's user, mode 0600 (libpq and node-postgres ignore it otherwise).
  const passfile = join(dir, 'pgpass');
  writeFileSync(passfile, `${host}:${port}:*:${user}:${password}\n`, { mode: 0o600 });
  chmodSync(passfile, 0o600);
  const env = { PGHOST: host, PGPORT: String(port), PGUSER: user, PGDATABASE: database, PGPASSFILE: passfile };
  // The database named after the user.
  const psql = (sql: string): string => {
    const r = spawnSync(join(PG_BIN, 'psql'), ['-v', 'ON_ERROR_STOP=1', '-X', '-q', '-t', '-A', '-d', 'postgres', '-c', sql], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
    return r.stdout;
  };
  psql(`CREATE DATABASE ${database}`);
  let running = true;
  return {
    host,
    port,
    user,
    database,
    passfile,
    env,
    stop(mode) {
      stop(mode);
      running = false;
    },
    start() {
      start();
      running = true;
    },
    psql(sql) {
      const r = spawnSync(join(PG_BIN, 'psql'), ['-v', 'ON_ERROR_STOP=1', '-X', '-q', '-t', '-A', '-c', sql], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 60_000,
      });
      if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
      return r.stdout;
    },
    destroy() {
      if (running) {
        try {
          stop('immediate');
        } catch {
          // already down
        }
        running = false;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A private server for the calling test file: started before its tests (PGPASSFILE set to its
 * password file), destroyed after them, with a temporary directory removed likewise. `pg` reads
 * through to the server once it has started.
 */
export function postgresForThisFile(prefix: string): { pg: PgServer; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let server: PgServer | undefined;
  beforeAll(async () => {
    server = await startPostgres();
    process.env['PGPASSFILE'] = server.passfile;
  }, 120_000);
  afterAll(() => {
    server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const pg = new Proxy({} as PgServer, {
    get(_target, key) {
      if (!server) throw new Error('the PostgreSQL server is not started yet');
      const v = (server as unknown as Record<string | symbol, unknown>)[key];
      return typeof v === 'function' ? v.bind(server) : v;
    },
  });
  return { pg, dir };
}

/** Where to connect to `pg` (no password: that comes from PGPASSFILE). */
export function connectionOf(pg: PgServer): { host: string; port: number; user: string; database: string } {
  return { host: pg.host, port: pg.port, user: pg.user, database: pg.database };
}
