import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.js';

// The asn1 schemas are bundled: see tsup.shared.ts.
export default defineConfig(packageBuild({ bundleAsn1: true }));
