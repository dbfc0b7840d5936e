import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';

// The asn1 schemas (PKCS#8) are bundled: see tsup.shared.ts. graphene-pk11 stays external: an
// optional peer, loaded by Pkcs11KeyBackend.open only. The database store's use worker is loaded
// by file name (dist/internal/db/use-worker.js), so it is an entry of its own.
export default defineConfig(packageBuild({ bundleAsn1: true, external: ['graphene-pk11', 'pkcs11js'], entry: ['src/index.ts', 'src/internal/db/use-worker.ts'] }));
