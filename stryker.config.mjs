// StrykerJS (mutation testing) for the security-critical modules. Run through scripts/mutation.sh,
// which picks the modules and the package whose tests run: `pnpm run mutation [module ...]`.
// Not part of CI (too slow); the scores go in each package's README.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner', './scripts/mutation/ignore-error-messages.mjs'],
  ignorers: ['error-messages'],
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  coverageAnalysis: 'perTest',
  checkers: [],
  concurrency: Number(process.env.SMKI_MUTATION_CONCURRENCY ?? 2),
  // Added to three times a mutant's measured test time before it counts as timed out (killed). A
  // mutant that makes a test wait forever (a lock, a session pool) costs this much; a module whose
  // tests are short can use less (SMKI_MUTATION_TIMEOUT_MS).
  timeoutMS: Number(process.env.SMKI_MUTATION_TIMEOUT_MS ?? 60_000),
  dryRunTimeoutMinutes: 60,
  timeoutFactor: 3,
  reporters: ['clear-text', 'json', 'html', 'progress'],
  jsonReporter: { fileName: process.env.SMKI_MUTATION_REPORT ?? '.tmp/mutation/report.json' },
  htmlReporter: { fileName: (process.env.SMKI_MUTATION_REPORT ?? '.tmp/mutation/report.json').replace(/\.json$/, '.html') },
  tempDirName: '.tmp/stryker-tmp',
  cleanTempDir: 'always',
  ignorePatterns: ['docs/api', '.tmp', 'coverage', 'packages/*/dist'],
  thresholds: { high: 95, low: 90, break: null },
};
