import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';

// bin.ts is the `smki` executable; pool-setup.ts is loaded by file name in the validator's worker threads.
export default defineConfig(packageBuild({ entry: ['src/index.ts', 'src/bin.ts', 'src/pool-setup.ts'] }));
