// Regenerate packages/core/test/error-codes.snapshot.json from SMKI_ERROR_CODES.
//
//   pnpm exec tsx scripts/snapshot-error-codes.ts
//
// Run it when a code is added on purpose, and commit the snapshot with the code. The test
// (packages/core/test/error-codes.test.ts) refuses a snapshot that drops or renames a code, so
// this script refuses too: codes, once released, are never removed or renamed (docs/conventions.md).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMKI_ERROR_CODES } from '../packages/core/src/errors.js';

const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'core', 'test', 'error-codes.snapshot.json');

const current = Object.keys(SMKI_ERROR_CODES);
if (existsSync(file)) {
  const previous = (JSON.parse(readFileSync(file, 'utf8')) as { codes: string[] }).codes;
  const gone = previous.filter((c) => !current.includes(c));
  if (gone.length > 0 && !process.argv.includes('--allow-removal')) {
    console.error(`refusing: these codes are in the snapshot but no longer in SMKI_ERROR_CODES:\n  ${gone.join('\n  ')}`);
    console.error('Codes are never removed or renamed. (Before a first release only: --allow-removal.)');
    process.exit(1);
  }
  const added = current.filter((c) => !previous.includes(c));
  console.log(added.length ? `added: ${added.join(', ')}` : 'no new codes');
}
const snapshot = {
  comment:
    'Every SmkiError code, in declaration order. Codes are never removed or renamed; add new ones with `pnpm exec tsx scripts/snapshot-error-codes.ts`.',
  codes: current,
};
writeFileSync(file, `${JSON.stringify(snapshot, null, 2)}\n`);
console.log(`wrote ${current.length} codes to ${file}`);
