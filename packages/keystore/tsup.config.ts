import { defineConfig } from 'tsup';

// The @peculiar/asn1-* schemas and their helpers are bundled (their ES2015 builds, with tslib's
// ESM build) rather than imported at run time: loaded through Node's CommonJS path, tslib's
// CommonJS build assigns its helpers (`__extends`, `__decorate`, …) to globalThis, so importing
// @smki/keystore would change the global object (src/internal/pkcs8.ts uses
// @peculiar/asn1-pkcs8/-x509/-schema). Bundled, nothing outside the module changes
// (test/packaging.test.ts checks). They are MIT-licensed; esbuild keeps their legal comments.
// The same configuration as packages/pki/tsup.config.ts.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  treeshake: false,
  noExternal: [/^@peculiar\//, 'asn1js', 'pvtsutils', 'pvutils', 'tslib'],
  esbuildOptions(options) {
    options.mainFields = ['module', 'main'];
    options.conditions = ['module'];
    options.legalComments = 'eof';
  },
});
