// The device's answer to a CS02b command through the worker pool and across processes
// (docs/validator.md, worker pool and CS02b; docs/domain.md §9): ValidatorPool.recordCredentialsResponse
// applies an answer whichever worker (or process, or earlier pool) accepted the command, because
// the command is pending in the SQLite store they share; its refusals keep their codes; a process
// killed (SIGKILL) right after it accepted a CS02b command leaves it pending for the next one.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmkiError, isSmkiError, toHex } from '@smki/core';
import { SqliteDeviceRegistry, SqliteFirmwareAllowlist, SqliteStateStore } from '@smki/store';
import { Validator, ValidatorPool } from '../src/index.js';
import setup, { type BenchSetupData } from './_pool-setup.js';
import { cs02bFixture, type Cs02bFixture } from './_cs02b.js';
import { LOG_KEY, SUPPLIER, T0, tempDir } from './_world.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHILD = join(import.meta.dirname, '_cs02b-child.ts');
const SETUP = new URL('./_pool-setup.ts', import.meta.url);

let f: Cs02bFixture;
let dir: string;
let n = 0;

beforeAll(async () => {
  f = await cs02bFixture();
  dir = tempDir('smki-pool-cs02b-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Fresh shared SQLite files holding the fixture's meter. */
async function files(): Promise<BenchSetupData> {
  const d = join(dir, `run${++n}`);
  const data: BenchSetupData = {
    statePath: join(d, 'state.db'),
    registryPath: join(d, 'registry.db'),
    firmwarePath: join(d, 'firmware.db'),
    logDir: join(d, 'logs'),
    certificates: f.certificates.map((c) => c.der),
    crls: f.world.crls.map((c) => c.der),
    acbPkcs8: f.world.acb.privateKey.export({ format: 'der', type: 'pkcs8' }),
    logKey: LOG_KEY,
    now: T0.getTime(),
  };
  const { mkdirSync } = await import('node:fs');
  mkdirSync(d, { recursive: true });
  const registry = await SqliteDeviceRegistry.open({ path: data.registryPath });
  await registry.put([f.record()]);
  await registry.close();
  await (await SqliteFirmwareAllowlist.open({ path: data.firmwarePath })).close();
  return data;
}

async function dsCell(data: BenchSetupData): Promise<string | undefined> {
  const r = await SqliteDeviceRegistry.open({ path: data.registryPath });
  try {
    return (await r.device(f.world.meters[0]!.eui))?.cells.find((c) => c.role === 2 && c.keyUsage === 'digitalSignature')?.ski;
  } finally {
    await r.close();
  }
}

async function refusal(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? [e instanceof SmkiError, e.code] : e),
  );
}

describe('ValidatorPool.recordCredentialsResponse', () => {
  it('applies the answer to a command the pool accepted, once; refusals keep their SmkiError codes', async () => {
    const data = await files();
    const pool = await ValidatorPool.open({ setup: SETUP, workers: 2, data });
    const command = await f.cs02b();
    expect((await pool.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    // Either worker may take the answer: several at once, exactly one applies it.
    const answers = await Promise.all([1, 2, 3, 4].map(() => refusal(pool.recordCredentialsResponse(f.response(command), command))));
    expect(answers.filter((a) => a === 'resolved')).toHaveLength(1);
    for (const a of answers.filter((x) => x !== 'resolved')) expect([[true, 'ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND'], [true, 'ERR_STORE_CELL_CONFLICT']], String(a)).toContainEqual(a);
    expect(await dsCell(data)).toBe(f.newDs.certificate.subjectKeyId);
    // Again: refused, with its code.
    expect(await refusal(pool.recordCredentialsResponse(f.response(command), command))).toEqual([true, 'ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND']);
    // A command never accepted, a forged answer, bad arguments.
    const never = await f.cs02b();
    expect(await refusal(pool.recordCredentialsResponse(f.response(never), never))).toEqual([true, 'ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND']);
    // The supplier now signs with its new key (the meter's DS cell names it).
    const other = await f.cs02b({ signer: f.newDs });
    expect((await pool.validate(other, { sender: SUPPLIER })).outcome).toBe('accepted');
    const forged = f.response(other);
    forged[forged.length - 3] = (forged[forged.length - 3] as number) ^ 1;
    expect(await refusal(pool.recordCredentialsResponse(forged, other))).toEqual([true, 'ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID']);
    expect(await refusal(pool.recordCredentialsResponse('x' as never, other))).toEqual([true, 'ERR_INVALID_ARGUMENT']);
    await pool.close();
    expect(await refusal(pool.recordCredentialsResponse(f.response(other), other))).toEqual([true, 'ERR_VALIDATOR_CLOSED']);
  });

  it('applies the answer to a command another pool, or a validator in this process, accepted over the same store', async () => {
    const data = await files();
    // A first pool accepts the command, then stops.
    const first = await ValidatorPool.open({ setup: SETUP, workers: 2, data });
    const a = await f.cs02b();
    expect((await first.validate(a, { sender: SUPPLIER })).outcome).toBe('accepted');
    await first.close();
    // A validator of this thread (a log of its own) accepts the next one.
    const own = await Validator.open(await setup({ slot: 50, data }));
    const b = await f.cs02b();
    expect((await own.validate(b, { sender: SUPPLIER })).outcome).toBe('accepted');
    await own.close();
    const second = await ValidatorPool.open({ setup: SETUP, workers: 2, data });
    expect((await second.recordCredentialsResponse(f.response(a), a)).state).toBe('applied');
    expect(await dsCell(data)).toBe(f.newDs.certificate.subjectKeyId);
    // b installs the same certificates: its answer finds the cells already naming them, moves
    // nothing more, and is no longer pending.
    expect((await second.recordCredentialsResponse(f.response(b), b)).state).toBe('applied');
    expect(await refusal(second.recordCredentialsResponse(f.response(b), b))).toEqual([true, 'ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND']);
    expect(await dsCell(data)).toBe(f.newDs.certificate.subjectKeyId);
    await second.close();
  });
});

describe('a process killed after it accepted a CS02b command (SIGKILL)', () => {
  it('a validator in another process applies the answer; once', async () => {
    const data = await files();
    const dataFile = join(dir, `data${n}.json`);
    writeFileSync(
      dataFile,
      JSON.stringify({ ...data, certificates: data.certificates.map(toHex), crls: data.crls.map(toHex), acbPkcs8: toHex(data.acbPkcs8), logKey: toHex(data.logKey) }),
    );
    const command = await f.cs02b();
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataFile, '7', toHex(command), SUPPLIER], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    expect(first.done, err).toBe(false);
    expect(JSON.parse(first.value as string)).toEqual({ outcome: 'accepted', code: null });
    child.kill('SIGKILL');
    await exited;
    // The command is pending in the file the killed process committed to.
    const store = await SqliteStateStore.open({ path: data.statePath });
    const { createHash } = await import('node:crypto');
    expect((await store.pendingCommand(createHash('sha256').update(command).digest('hex').toUpperCase()))?.command).toEqual(command);
    await store.close();
    // A validator of this process (its own log) applies the answer.
    const v = await Validator.open(await setup({ slot: 8, data }));
    const r = await v.recordCredentialsResponse(f.response(command), command);
    expect([r.state, r.cells.map((c) => c.moved)]).toEqual(['applied', [true, true]]);
    expect(await refusal(v.recordCredentialsResponse(f.response(command), command))).toEqual([true, 'ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND']);
    await v.close();
    expect(await dsCell(data)).toBe(f.newDs.certificate.subjectKeyId);
  }, 60_000);
});
