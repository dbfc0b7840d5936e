#!/usr/bin/env node
/**
 * The `smki` executable.
 * @module
 * @internal
 */
import { runSmki } from './internal/cli.js';

const status = await runSmki(process.argv.slice(2));
// Let stdout drain, then leave with the status even if a library left a handle open.
process.stdout.write('', () => process.exit(status));
