/**
 * `smki`, the SMKI toolkit on the command line: a state directory with a test hierarchy,
 * per-portfolio keys (encrypted files or PKCS#11), a device registry and durable counters
 * (SQLite or PostgreSQL); certificates and CRLs; portfolios, keys and devices; firmware
 * approvals; critical commands built and signed (supplier side) and validated and counter-signed
 * (DCC side); the audit trail and the decision log verified and reported on; and the end-to-end
 * demo. This module exposes the same program for embedding and tests.
 *
 * Security posture: secrets (passphrases, PINs) come from the environment or a file, never from a
 * flag; every failure is reported with its stable code and an exit status from one table.
 * @packageDocumentation
 */
export { EXIT_CODES } from './internal/exit.js';
export type { ExitCodeName } from './internal/exit.js';
export type { CliIo, CliOutput } from './internal/io.js';
import { runSmki } from './internal/cli.js';
import type { CliIo } from './internal/io.js';

/**
 * Run `smki` in this process with `argv` (the arguments after the program name, e.g.
 * `['cert', 'inspect', 'a.pem', '--json']`) and resolve to its exit status (see
 * {@link EXIT_CODES}). Output goes to `io` (default: the process's streams); nothing calls
 * `process.exit`.
 * @example
 * ```ts
 * import { run, EXIT_CODES } from '@smki/cli';
 * const status = await run(['--version']);
 * console.log(status === EXIT_CODES.OK);
 * ```
 */
export function run(argv: readonly string[], io?: CliIo): Promise<number> {
  return runSmki(argv, io);
}
