import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

// Workspace packages resolve to their sources, so a fresh clone tests without a build step.
// The packaging test (test/packaging.test.ts) builds dist/ and checks the published shape.
export default defineConfig({
  resolve: {
    alias: {
      '@smki/core': src('core'),
      '@smki/pki': src('pki'),
      '@smki/store': src('store'),
      '@smki/keystore': src('keystore'),
      '@smki/gbcs': src('gbcs'),
      '@smki/duis': src('duis'),
      '@smki/validator': src('validator'),
      '@smki/recovery': src('recovery'),
      '@smki/cli': src('cli'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    typecheck: {
      enabled: true,
      include: ['packages/*/test/**/*.test-d.ts'],
      // Only the type tests and what they import: a type error elsewhere (say, a package being
      // edited) is reported by test/typecheck.test.ts as a failed test of that package, instead
      // of as an unattributed "source error" that fails the whole run.
      tsconfig: './tsconfig.test-d.json',
    },
  },
});
