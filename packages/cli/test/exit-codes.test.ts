// The exit statuses of `smki` (docs/conventions.md, "Errors": callers switch on a stable code, so a
// script switches on a stable status): the README's table is exactly EXIT_CODES, and every status
// is produced by a real run of the program as a user runs it (a separate process, its own
// environment), with the code and one line on what to do on stderr, or with `--json` one JSON
// document on stdout whose error.code and error.exit say the same. Only INTERNAL (70), which no
// correct run produces, is provoked in this process (a stdout that throws a plain Error).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMKI_ERROR_CODES } from '@smki/core';
import { EXIT_CODES, run } from '../src/index.js';
import { exitForCode, hintFor } from '../src/internal/exit.js';
import { startPostgres, type PgServer } from '../../store/test/_postgres.js';
import { initLab, smki, tempDir, type SmkiResult } from './_smki.js';
import { captureIo } from './_io.js';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');
const README = join(PKG, 'README.md');
const METER = '00DB123456789001';

/** The `| status | name | meaning |` table under `## Exit statuses`. */
function readmeTable(): { status: number; name: string; meaning: string }[] {
  const text = readFileSync(README, 'utf8');
  const section = text.split(/^## /m).find((s) => s.startsWith('Exit statuses'));
  if (section === undefined) throw new Error('README has no "## Exit statuses" section');
  const lines = section.split('\n').filter((l) => l.startsWith('|'));
  expect(lines[0]!.split('|').map((c) => c.trim())).toEqual(['', 'status', 'name', 'meaning', '']);
  expect(lines[1]).toMatch(/^\|(\s*:?-{3,}:?\s*\|){3}$/);
  return lines.slice(2).map((l) => {
    const cells = l.split('|').slice(1, -1).map((c) => c.trim());
    expect(cells).toHaveLength(3);
    return { status: Number(cells[0]), name: cells[1]!.replace(/`/g, ''), meaning: cells[2]! };
  });
}

/** stderr names the code and says what to do (the hint for that code, exactly). */
function expectTextError(r: SmkiResult, status: number, code: string): void {
  expect(r.status, r.stderr).toBe(status);
  expect(r.stderr).toContain(`error ${code}: `);
  expect(r.stderr).toContain(`what to do: ${hintFor(code)}`);
  expect(r.stdout).toBe('');
}

/** stdout is one JSON document with error.code and error.exit (and stderr stays quiet). */
function expectJsonError(r: SmkiResult, status: number, code: string): void {
  expect(r.status, r.stderr).toBe(status);
  const doc = JSON.parse(r.stdout) as { error: { code: string; exit: number; hint: string; message: string } };
  expect(doc.error.code).toBe(code);
  expect(doc.error.exit).toBe(status);
  expect(doc.error.hint).toBe(hintFor(code));
  expect(doc.error.message.length).toBeGreaterThan(0);
  expect(r.stderr).toBe('');
}

/** JSON lines (one decision per command). */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A lab with portfolio north, its certified key and simulated meters. */
function labWithMeter(initArgs: readonly string[] = [], meters: readonly string[] = [METER]): string {
  const lab = initLab(initArgs);
  for (const args of [['portfolio', 'create', 'north'], ['key', 'generate', 'north', '--certify'], ...meters.map((m) => ['device', 'add', m, '--portfolio', 'north', '--simulate'])]) {
    const r = smki([...args, '--dir', lab]);
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  }
  return lab;
}

/** Build and sign `repeat` disconnects for a meter; returns the signed file. */
function signedDisconnects(lab: string, repeat = 1, meter = METER): string {
  const dir = tempDir();
  const pre = join(dir, 'pre.hex');
  const signed = join(dir, 'signed.hex');
  expect(smki(['command', 'build', 'disconnect', '--device', meter, '--repeat', String(repeat), '--out', pre, '--dir', lab]).status).toBe(0);
  expect(smki(['command', 'sign', '--in', pre, '--out', signed, '--dir', lab]).status).toBe(0);
  return signed;
}

describe('the table in the README is EXIT_CODES', () => {
  it('has every name with its number, and nothing else', () => {
    const rows = readmeTable();
    expect(Object.fromEntries(rows.map((r) => [r.name, r.status]))).toEqual(EXIT_CODES);
    expect(rows).toHaveLength(Object.keys(EXIT_CODES).length);
    for (const r of rows) expect(r.meaning.length, r.name).toBeGreaterThan(20);
  });

  it('has distinct statuses, each a valid exit status, OK 0 and INTERNAL 70 (EX_SOFTWARE)', () => {
    const values = Object.values(EXIT_CODES);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(Number.isInteger(v) && v >= 0 && v <= 125).toBe(true);
    expect(EXIT_CODES.OK).toBe(0);
    expect(EXIT_CODES.INTERNAL).toBe(70);
  });

  it('says how a batch is decided: REJECTED if any rejected, else QUARANTINED if any quarantined, else OK', () => {
    const text = readFileSync(README, 'utf8').replace(/\s+/g, ' ');
    expect(text).toContain('`REJECTED` (1) if any command was rejected, else `QUARANTINED` (3) if any was quarantined, else `OK` (0)');
  });

  it('names only real toolkit codes in the mapping (a misspelt code would fall through to REJECTED)', () => {
    const source = readFileSync(join(PKG, 'src', 'internal', 'exit.ts'), 'utf8');
    const named = [...new Set(source.match(/ERR_[A-Z0-9_]+/g) ?? [])];
    expect(named.length).toBeGreaterThan(20);
    for (const code of named) expect(Object.hasOwn(SMKI_ERROR_CODES, code), code).toBe(true);
  });

  it('maps codes to statuses by class', () => {
    expect(exitForCode(undefined)).toBe('INTERNAL');
    expect(exitForCode('ERR_CLI_USAGE')).toBe('USAGE');
    expect(exitForCode('ERR_COMMAND_QUARANTINED')).toBe('QUARANTINED');
    for (const c of ['ERR_STORE_UNAVAILABLE', 'ERR_HSM_UNAVAILABLE', 'ERR_KEYSTORE_LOCKED']) expect(exitForCode(c), c).toBe('RETRY');
    for (const c of ['ERR_CLI_SECRET_MISSING', 'ERR_KEYSTORE_WRONG_PASSPHRASE', 'ERR_CLI_STATE_INVALID', 'ERR_HSM_LOGIN_FAILED']) expect(exitForCode(c), c).toBe('STATE');
    for (const c of ['ERR_COMMAND_REPLAYED', 'ERR_CLI_INPUT_INVALID', 'ERR_CLI_NOT_FOUND', 'ERR_FIRMWARE_NOT_APPROVED']) expect(exitForCode(c), c).toBe('REJECTED');
  });
});

describe('every status from a real run', () => {
  // A lab, and one that holds a User's second disconnect within an hour (the threshold counts a
  // User's commands of one message code, whichever the meter: its tests run in order).
  let lab: string;
  let held: string;
  let acceptedThenHeld = '';
  beforeAll(() => {
    lab = labWithMeter();
    held = labWithMeter(['--anomaly-threshold', '0050:1:3600000']);
  }, 120_000);

  it('0 OK: smki portfolio list (text and --json)', () => {
    const text = smki(['portfolio', 'list', '--dir', lab]);
    expect(text.status, text.stderr).toBe(EXIT_CODES.OK);
    expect(text.stdout).toMatch(/^north\s/m);
    expect(text.stderr).toBe('');
    const json = smki(['portfolio', 'list', '--json', '--dir', lab]);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: 'duis', devices: 0 }), expect.objectContaining({ id: 'north', devices: 1 })]);
  });

  it('1 REJECTED: a replayed command at validate (one line per command, the code in it)', () => {
    const signed = signedDisconnects(lab);
    const first = smki(['command', 'validate', '--in', signed, '--dir', lab]);
    expect(first.status, first.stderr).toBe(0);
    const again = smki(['command', 'validate', '--in', signed, '--dir', lab]);
    expect(again.status).toBe(EXIT_CODES.REJECTED);
    expect(again.stdout).toMatch(/rejected ERR_COMMAND_REPLAYED at replay/);
    expect(again.stdout).toMatch(/0 accepted, 1 rejected, 0 quarantined of 1/);
    const json = smki(['command', 'validate', '--in', signed, '--json', '--dir', lab]);
    expect(json.status).toBe(1);
    const lines = jsonLines(json.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ index: 0, outcome: 'rejected', code: 'ERR_COMMAND_REPLAYED', step: 'replay', device: METER });
  });

  it('1 REJECTED: an error that refuses the input (a device that does not exist) has its code and what to do', () => {
    const missing = '00DB12345678FFFF';
    expectTextError(smki(['device', 'show', missing, '--dir', lab]), 1, 'ERR_CLI_NOT_FOUND');
    expectJsonError(smki(['device', 'show', missing, '--json', '--dir', lab]), 1, 'ERR_CLI_NOT_FOUND');
  });

  it('2 USAGE: an unknown option, a malformed argument', () => {
    expectTextError(smki(['portfolio', 'list', '--colour', '--dir', lab]), 2, 'ERR_CLI_USAGE');
    expectJsonError(smki(['portfolio', 'list', '--colour', '--json', '--dir', lab]), 2, 'ERR_CLI_USAGE');
    expectTextError(smki(['frobnicate']), 2, 'ERR_CLI_USAGE');
    expectJsonError(smki(['command', 'validate', '--workers', 'two', '--json', '--dir', lab]), 2, 'ERR_CLI_USAGE');
  });

  it('2 USAGE: a secret given as a flag (--passphrase, --pin) is refused before anything happens', () => {
    const fresh = join(tempDir(), 'lab');
    for (const args of [
      ['init', fresh, '--passphrase', 'hunter2-hunter2'],
      ['--passphrase', 'hunter2-hunter2', 'init', fresh],
      ['init', fresh, '--pin', '1234'],
    ]) {
      const r = smki(args, { env: { SMKI_KEYSTORE_PASSPHRASE: undefined } });
      expectTextError(r, 2, 'ERR_CLI_USAGE');
      expect(existsSync(fresh), args.join(' ')).toBe(false);
    }
    expectJsonError(smki(['portfolio', 'list', '--passphrase', 'x', '--json', '--dir', lab]), 2, 'ERR_CLI_USAGE');
  });

  it('3 QUARANTINED: a second disconnect of one meter over a threshold of one per hour (one batch)', () => {
    const signed = signedDisconnects(held, 2);
    acceptedThenHeld = signed;
    const r = smki(['command', 'validate', '--in', signed, '--json', '--dir', held]);
    expect(r.status, r.stderr).toBe(EXIT_CODES.QUARANTINED);
    const lines = jsonLines(r.stdout);
    expect(lines.map((l) => l.outcome)).toEqual(['accepted', 'quarantined']);
    // count: the commands already accepted in the window (one), at the limit of one.
    expect(lines[1]).toMatchObject({ code: 'ERR_COMMAND_QUARANTINED', step: 'anomaly', limit: 1, count: 1, quarantineId: expect.any(String) });
    // Separate runs: the count is durable, so a third disconnect in a new process is held too.
    const third = signedDisconnects(held, 1);
    const t = smki(['command', 'validate', '--in', third, '--dir', held]);
    expect(t.status).toBe(3);
    expect(t.stdout).toMatch(/quarantined ERR_COMMAND_QUARANTINED at /);
    expect(t.stdout).toMatch(/0 accepted, 0 rejected, 1 quarantined of 1/);
  });

  it('1 beats 3 in a batch: one rejected and one quarantined command give REJECTED', () => {
    const mixedLab = labWithMeter(['--anomaly-threshold', '0050:1:3600000']);
    const signed = signedDisconnects(mixedLab, 2);
    // The first line again at the end: a replay of the accepted command.
    const [first, second] = readFileSync(signed, 'utf8').trim().split('\n');
    const mixed = join(tempDir(), 'mixed.hex');
    writeFileSync(mixed, `${first}\n${second}\n${first}\n`);
    const r = smki(['command', 'validate', '--in', mixed, '--json', '--dir', mixedLab]);
    expect(jsonLines(r.stdout).map((l) => l.outcome)).toEqual(['accepted', 'quarantined', 'rejected']);
    expect(r.status).toBe(EXIT_CODES.REJECTED);
  });

  describe('4 RETRY: the PostgreSQL server of a state directory is down', () => {
    let pg: PgServer;
    let pgLab: string;
    beforeAll(async () => {
      pg = await startPostgres();
      pgLab = initLab(['--postgres'], pg.env);
    }, 180_000);
    afterAll(() => pg?.destroy());

    it('is ERR_STORE_UNAVAILABLE while it is down, and the same command succeeds once it is back', () => {
      expect(smki(['firmware', 'list', '--dir', pgLab], { env: pg.env }).status).toBe(0);
      pg.stop('fast');
      expectTextError(smki(['firmware', 'list', '--dir', pgLab], { env: pg.env }), EXIT_CODES.RETRY, 'ERR_STORE_UNAVAILABLE');
      expectJsonError(smki(['firmware', 'list', '--json', '--dir', pgLab], { env: pg.env }), 4, 'ERR_STORE_UNAVAILABLE');
      pg.start();
      const again = smki(['firmware', 'list', '--json', '--dir', pgLab], { env: pg.env });
      expect(again.status, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toEqual([]);
    });
  });

  it('5 STATE: no passphrase', () => {
    const env = { SMKI_KEYSTORE_PASSPHRASE: undefined };
    expectTextError(smki(['portfolio', 'list', '--dir', lab], { env }), EXIT_CODES.STATE, 'ERR_CLI_SECRET_MISSING');
    expectJsonError(smki(['portfolio', 'list', '--json', '--dir', lab], { env }), 5, 'ERR_CLI_SECRET_MISSING');
    // An empty passphrase file is no passphrase either.
    const empty = join(tempDir(), 'pass');
    writeFileSync(empty, '\n');
    expectTextError(smki(['portfolio', 'list', '--passphrase-file', empty, '--dir', lab], { env }), 5, 'ERR_CLI_SECRET_MISSING');
  });

  it('5 STATE: a wrong passphrase', () => {
    const env = { SMKI_KEYSTORE_PASSPHRASE: 'not the passphrase of this lab' };
    expectTextError(smki(['portfolio', 'list', '--dir', lab], { env }), 5, 'ERR_KEYSTORE_WRONG_PASSPHRASE');
    expectJsonError(smki(['portfolio', 'list', '--json', '--dir', lab], { env }), 5, 'ERR_KEYSTORE_WRONG_PASSPHRASE');
  });

  it('5 STATE: a directory that smki init did not make', () => {
    const plain = tempDir();
    mkdirSync(join(plain, 'something'));
    expectTextError(smki(['portfolio', 'list', '--dir', plain]), 5, 'ERR_CLI_STATE_INVALID');
    expectJsonError(smki(['portfolio', 'list', '--json'], { env: { SMKI_DIR: join(plain, 'nowhere') } }), 5, 'ERR_CLI_STATE_INVALID');
  });

  // A refused or held command is a user's problem to act on: the hints for these codes exist in
  // exit.ts (ERR_COMMAND_REPLAYED: "build the command again with a counter above …",
  // ERR_COMMAND_QUARANTINED: "an operator releases or discards …"), but validate never prints them.
  it('validate says what to do about each code that refused or held a command, on stderr', () => {
    // In the lab of the quarantine test above: any disconnect now is over the threshold.
    const q = smki(['command', 'validate', '--in', signedDisconnects(held, 1), '--dir', held]);
    expect(q.status).toBe(3);
    expect(q.stderr).toContain('ERR_COMMAND_QUARANTINED');
    expect(q.stderr).toContain(`what to do: ${hintFor('ERR_COMMAND_QUARANTINED')}`);
    const r = smki(['command', 'validate', '--in', acceptedThenHeld, '--dir', held]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_COMMAND_REPLAYED');
    expect(r.stderr).toContain(`what to do: ${hintFor('ERR_COMMAND_REPLAYED')}`);
  });

  // An output path that cannot be written is the user's to fix, not a defect of smki (INTERNAL);
  // and the atomic write must not leave its temporary file behind.
  it('an --out that is a directory is not INTERNAL, and leaves no temporary file', () => {
    const parent = tempDir();
    const out = join(parent, 'pre.hex');
    mkdirSync(out);
    const r = smki(['command', 'build', 'disconnect', '--device', METER, '--out', out, '--dir', lab]);
    expect(r.status).not.toBe(0);
    expect(r.status, r.stderr).not.toBe(EXIT_CODES.INTERNAL);
    expect(readdirSync(parent)).toEqual(['pre.hex']);
  });

  // The frames are the only output of an accepted command; its counter is spent once accepted.
  // A validate whose --out cannot be written must refuse before it accepts anything, or the
  // commands are lost (a second run refuses them as replays).
  it('a validate whose --out cannot be written accepts nothing', () => {
    const signed = signedDisconnects(lab);
    const parent = tempDir();
    const out = join(parent, 'frames.hex');
    mkdirSync(out);
    const bad = smki(['command', 'validate', '--in', signed, '--out', out, '--dir', lab]);
    expect(bad.status).not.toBe(0);
    const good = smki(['command', 'validate', '--in', signed, '--out', join(parent, 'ok.hex'), '--dir', lab]);
    expect(good.stdout).not.toMatch(/ERR_COMMAND_REPLAYED/);
    expect(good.status, good.stdout).toBe(0);
  });
});

describe('70 INTERNAL (in this process: a correct run never produces it)', () => {
  it('an exception that is not a toolkit error is INTERNAL, reported with what to do', async () => {
    const { io, stderr } = captureIo({ stdoutFails: () => new Error('the output stream broke') });
    expect(await run(['--version'], io)).toBe(EXIT_CODES.INTERNAL);
    expect(stderr.text).toContain('error INTERNAL: the output stream broke');
    expect(stderr.text).toContain(`what to do: ${hintFor(undefined)}`);
    expect(stderr.text).not.toContain('    at '); // no stack without SMKI_DEBUG
  });

  it('with --json it is one JSON document with error.code INTERNAL and error.exit 70', async () => {
    const { io, stdout, stderr } = captureIo({ stdoutFails: (n) => (n === 0 ? new Error('the output stream broke') : undefined) });
    expect(await run(['--version', '--json'], io)).toBe(70);
    const doc = JSON.parse(stdout.text) as { error: { code: string; exit: number; hint: string } };
    expect(doc.error).toMatchObject({ code: 'INTERNAL', exit: 70, hint: hintFor(undefined) });
    expect(stderr.text).toBe('');
  });

  it('SMKI_DEBUG adds the stack for a report', async () => {
    const { io, stderr } = captureIo({ env: { NO_COLOR: '1', SMKI_DEBUG: '1' }, stdoutFails: () => new Error('the output stream broke') });
    expect(await run(['--version'], io)).toBe(70);
    expect(stderr.text).toMatch(/\n\s+at /);
  });
});
