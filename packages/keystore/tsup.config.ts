import { defineConfig } from 'tsup';

// As in @smki/pki: the @peculiar/asn1-* schemas (PKCS#8 here) and their helpers are bundled (their ES2015 builds, with tslib's
// ESM build) rather than imported at run time: loaded through Node's CommonJS path, tslib's
// CommonJS build assigns its helpers (`__extends`, `__decorate`, …) to globalThis, so importing
// @smki/keystore would change the global object. Bundled, nothing outside the module changes
// (test/packaging.test.ts checks). They are MIT-licensed; esbuild keeps their legal comments.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  treeshake: false,
  // graphene-pk11 stays external: an optional peer, loaded by Pkcs11KeyBackend.open only.
  noExternal: [/^@peculiar\//, 'asn1js', 'pvtsutils', 'pvutils', 'tslib'],
  external: ['graphene-pk11', 'pkcs11js'],
  esbuildOptions(options) {
    options.mainFields = ['module', 'main'];
    options.conditions = ['module'];
    options.legalComments = 'eof';
  },
});
