// Test helper: a private SoftHSM2 token for the PKCS#11 backend's tests (PKCS #11 v2.40 §5.6
// C_InitToken, done here by softhsm2-util). Not a test file itself (no `.test.ts`).
//
// Each call makes a temporary directory with its own softhsm2.conf and token directory, points
// SOFTHSM2_CONF at it (SoftHSM reads it at C_Initialize, so set it before the first open in the
// process; child processes inherit it), and initialises a token with random PINs. The library
// is never skipped: if SoftHSM2 is missing the helper throws, and the test fails loudly
// (`bash scripts/bootstrap.sh` installs it; scripts/test.sh runs that first).
//
// One set-up per process at a time: SoftHSM reads SOFTHSM2_CONF only when the module is
// initialised, and the module stays initialised while any backend of the process is open. For more
// tokens, call `addToken` on the one set-up.
//
// In a worker thread (vitest's `threads` pool, which StrykerJS imposes), `process.env` is the
// thread's own copy: SoftHSM, reading the process environment, never sees a value set here. There
// the environment must name the file before the process starts (SOFTHSM2_CONF, a path under the
// temporary directory that is missing or was written by this helper), and the helper writes its
// configuration into that file instead.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';

/** Where Debian's softhsm2 package puts the module (override with SMKI_SOFTHSM_MODULE). */
export const SOFTHSM_MODULE = process.env.SMKI_SOFTHSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

/** A private SoftHSM2 set-up with one or more initialised tokens. */
export interface SoftHsm {
  /** Path of the PKCS#11 module. */
  readonly module: string;
  /** Label of the first token. */
  readonly tokenLabel: string;
  /** User PIN of every token made here (random per run). */
  readonly pin: string;
  /** SO PIN of every token made here (random per run). */
  readonly soPin: string;
  /** The private softhsm2.conf. */
  readonly conf: string;
  /** The token directory (delete it to make a token "gone"). */
  readonly tokenDir: string;
  /** Environment for a child process that should see the same tokens. */
  readonly env: NodeJS.ProcessEnv;
  /** Initialise one more token with the same PINs in the same directory. */
  addToken(label: string): void;
  /** Remove the directory and restore SOFTHSM2_CONF. */
  cleanup(): void;
}

const WORKER_CONF_MARK = '# written by the SMKI SoftHSM2 test helper';

/** The configuration file SoftHSM reads in a worker thread: the one the process environment names (see above). */
function workerConf(dir: string): string {
  const conf = process.env.SOFTHSM2_CONF;
  const ok =
    conf !== undefined &&
    resolve(conf).startsWith(`${resolve(tmpdir())}/`) &&
    (!existsSync(conf) || readFileSync(conf, 'utf8').startsWith(WORKER_CONF_MARK));
  if (!ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      'SoftHSM2 in a worker thread (vitest threads pool, StrykerJS): start the process with SOFTHSM2_CONF naming a file under ' +
        `${tmpdir()} that does not exist yet, e.g. SOFTHSM2_CONF=$(mktemp -u -p ${tmpdir()} smki-softhsm2-XXXXXX.conf)`,
    );
  }
  return conf;
}

function softhsmUtil(args: string[], conf: string): void {
  try {
    execFileSync('softhsm2-util', args, { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
    // Never echo the PINs: print the command without its arguments.
    throw new Error(`softhsm2-util ${args[0]} failed: ${err.stderr?.toString() || err.stdout?.toString() || err.message}`);
  }
}

/**
 * Create a private SoftHSM2 configuration and token. Throws (never skips) when SoftHSM2 is not
 * installed.
 */
export function createSoftHsm(tokenLabel = `smki-test-${randomBytes(4).toString('hex')}`): SoftHsm {
  if (!existsSync(SOFTHSM_MODULE)) {
    throw new Error(
      `SoftHSM2 is not installed (${SOFTHSM_MODULE} is missing): run \`bash scripts/bootstrap.sh\` ` +
        '(scripts/test.sh does) or `apt-get install softhsm2`. The PKCS#11 tests are never skipped.',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'smki-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = isMainThread ? join(dir, 'softhsm2.conf') : workerConf(dir);
  writeFileSync(
    conf,
    [WORKER_CONF_MARK, `directories.tokendir = ${tokenDir}`, 'objectstore.backend = file', 'log.level = ERROR', 'slots.removable = false', ''].join('\n'),
    { mode: 0o600 },
  );
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  const previous = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  const addToken = (label: string): void =>
    softhsmUtil(['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], conf);
  try {
    addToken(tokenLabel);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    module: SOFTHSM_MODULE,
    tokenLabel,
    pin,
    soPin,
    conf,
    tokenDir,
    env: { ...process.env, SOFTHSM2_CONF: conf },
    addToken,
    cleanup(): void {
      rmSync(dir, { recursive: true, force: true });
      if (previous === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previous;
    },
  };
}
