import { defineConfig } from 'vitest/config';
import base from './vitest.config';

// The configuration StrykerJS runs tests with (scripts/mutation.sh): the tests of one package only
// (SMKI_MUTATION_PACKAGE), no type tests (a mutant never changes a type), and none of the
// repository-wide tests (packaging builds dist/, which would carry Stryker's instrumentation).
const pkg = process.env.SMKI_MUTATION_PACKAGE ?? '*';
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    // The validator's decision vectors live at the root (test/validator-vectors.test.ts): they are its tests too.
    // scripts/mutation/imports.test.ts loads the package inside a test, so that a mutant which
    // makes a module throw on import fails a test (see that file).
    include: [`packages/${pkg}/test/**/*.test.ts`, ...(pkg === 'validator' ? ['test/validator-vectors.test.ts'] : []), 'scripts/mutation/imports.test.ts'],
    // Suites that run the code under test only in child processes (crash and strace tests) never
    // see Stryker's active mutant: they cannot kill one, and only slow every run down.
    exclude: [
      '**/node_modules/**',
      'packages/keystore/test/crash.test.ts',
      'packages/keystore/test/durability-strace.test.ts',
      'packages/store/test/processes.test.ts',
      'packages/store/test/durability-strace.test.ts',
      'packages/validator/test/processes.test.ts',
      'packages/validator/test/pool.test.ts',
      'packages/duis/test/replay-processes.test.ts',
      // The JDK verifies what the code under test signed, but a JVM per test makes every mutant
      // run slow; the vectors and the other tests check the same bytes in process.
      'packages/duis/test/interop-java.test.ts',
    ],
    typecheck: { enabled: false },
  },
});
