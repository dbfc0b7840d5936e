// Child process for pool-credentials.test.ts: a validator over the shared SQLite files (built by
// the pool setup module, slot given), validating one CS02b command and printing its decision as
// soon as validate() has returned (the commit is durable by then); then it waits to be killed.
// Usage: node --import tsx _cs02b-child.ts <dataFile> <slot> <commandHex> <sender>
import { readFileSync } from 'node:fs';
import { fromHex } from '@smki/core';
import { Validator } from '../src/index.js';
import setup, { type BenchSetupData } from './_pool-setup.js';

const [dataFile, slot, commandHex, sender] = process.argv.slice(2) as [string, string, string, string];
const raw = JSON.parse(readFileSync(dataFile, 'utf8')) as Record<string, unknown>;
const data: BenchSetupData = {
  ...(raw as unknown as BenchSetupData),
  certificates: (raw['certificates'] as string[]).map(fromHex),
  crls: (raw['crls'] as string[]).map(fromHex),
  acbPkcs8: fromHex(raw['acbPkcs8'] as string),
  logKey: fromHex(raw['logKey'] as string),
};
const validator = await Validator.open(await setup({ slot: Number(slot), data }));
const d = await validator.validate(fromHex(commandHex), { sender });
process.stdout.write(`${JSON.stringify({ outcome: d.outcome, code: d.outcome === 'accepted' ? null : d.code })}\n`);
// Killed here: nothing after the commit runs (no close, no clean shutdown).
setInterval(() => {}, 60_000);
