#!/usr/bin/env node
/**
 * The `smki` executable.
 * @module
 * @internal
 */
import { runSmki } from './internal/cli.js';

// No top-level await: the package also builds as CommonJS.
void runSmki(process.argv.slice(2)).then((status) => {
  // Let stdout drain, then leave with the status even if a library left a handle open.
  process.stdout.write('', () => process.exit(status));
});
