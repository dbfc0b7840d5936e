/**
 * Every command group of `smki`, in the order `--help` lists them.
 * @module
 * @internal
 */
import { run as runProgram, type Register } from './program.js';
import { processIo, type CliIo } from './io.js';
import { register as init } from './commands/init.js';
import { register as cert } from './commands/cert.js';
import { register as keys } from './commands/keys.js';
import { register as devices } from './commands/devices.js';
import { register as command } from './commands/command.js';
import { register as duis } from './commands/duis.js';
import { register as audit } from './commands/audit.js';
import { register as quarantine } from './commands/quarantine.js';
import { register as demo } from './commands/demo.js';
import { register as keystore } from './commands/keystore.js';
import { register as operators } from './commands/operators.js';
import { register as recovery } from './commands/recovery.js';

/** The command groups. */
export const GROUPS: readonly Register[] = [init, cert, keys, devices, command, duis, quarantine, keystore, operators, recovery, audit, demo];

/** Run `smki` with `argv` (the arguments after the program name); resolves to the exit status. */
export function runSmki(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  return runProgram(argv, GROUPS, io);
}
