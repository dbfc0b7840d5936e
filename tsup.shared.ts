import type { Options } from 'tsup';

/**
 * The one build configuration of every package (ESM and CJS, .d.ts for each, Node 20).
 *
 * `entry`: the entry points (default `src/index.ts`; a worker-thread module is an entry of its own).
 *
 * `bundleAsn1`: bundle the @peculiar/asn1-* schemas (their ES2015 builds, with tslib's ESM build)
 * rather than import them at run time. Loaded through Node's CommonJS path, tslib's CommonJS build
 * assigns its helpers (`__extends`, `__decorate`, …) to globalThis, so importing the package would
 * change the global object; bundled, nothing outside the module changes (test/packaging.test.ts
 * checks). They are MIT-licensed; esbuild keeps their legal comments.
 */
export function packageBuild(options: { bundleAsn1?: boolean; external?: string[]; entry?: string[] } = {}): Options {
  return {
    entry: options.entry ?? ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    treeshake: false,
    ...(options.external ? { external: options.external } : {}),
    ...(options.bundleAsn1
      ? {
          noExternal: [/^@peculiar\//, 'asn1js', 'pvtsutils', 'pvutils', 'tslib'],
          esbuildOptions(o) {
            o.mainFields = ['module', 'main'];
            o.conditions = ['module'];
            o.legalComments = 'eof';
          },
        }
      : {}),
  };
}
