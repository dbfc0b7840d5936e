// Run only by the mutation runs (vitest.mutation.config.ts). A mutant in code that runs when a
// module loads (a table, a schema) can make the module throw on import; every test file of the
// package then fails to load and reports no test, and StrykerJS's vitest runner counts a mutant
// that no test failed as survived. This test imports the package under test inside a test, so
// such a mutant fails a test and is counted as killed.
import { expect, it } from 'vitest';

const LOADERS: Record<string, () => Promise<Record<string, unknown>>> = {
  core: () => import('@smki/core'),
  pki: () => import('@smki/pki'),
  store: () => import('@smki/store'),
  keystore: () => import('@smki/keystore'),
  gbcs: () => import('@smki/gbcs'),
  duis: () => import('@smki/duis'),
  validator: () => import('@smki/validator'),
};

const pkg = process.env['SMKI_MUTATION_PACKAGE'] ?? '';

it(`the package under test (${pkg}) loads`, async () => {
  const load = LOADERS[pkg];
  expect(load, `no loader for package ${pkg}`).toBeTypeOf('function');
  expect(Object.keys(await (load as () => Promise<Record<string, unknown>>)()).length).toBeGreaterThan(0);
});
