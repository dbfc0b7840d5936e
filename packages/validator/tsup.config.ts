import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';

// The worker thread of ValidatorPool is loaded by file name (dist/worker.js), so it is an entry.
export default defineConfig(packageBuild({ entry: ['src/index.ts', 'src/worker.ts'] }));
