#!/usr/bin/env node
// Turn vitest's JSON report into the one-line verdict `N passed, M failed`.
//
//   node scripts/summary.mjs <report.json> <vitest exit code>
//
// Our rule (docs/conventions.md, Tests): a test that did not pass is a failure. So M counts
//   - every test whose status is not `passed` (failed, skipped, todo, pending, only-filtered),
//   - every test file that failed without a failed test in it (it did not load, a hook threw,
//     a typecheck source error), once per file,
//   - and, if vitest exited non-zero with nothing above to show for it (an unhandled error, a
//     crash, no report at all), one more.
// Type tests (*.test-d.ts, vitest typecheck mode) are ordinary entries of the report and count
// like any other test. The verdict is the last line printed; the exit code is 1 when M > 0.
import { readFileSync } from 'node:fs';

const [reportPath, vitestExit = '0'] = process.argv.slice(2);
const vitestFailed = Number(vitestExit) !== 0;

let passed = 0;
let failed = 0;
const notes = [];

let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (e) {
  notes.push(`no readable vitest JSON report at ${reportPath}: ${e instanceof Error ? e.message : String(e)}`);
}

if (report) {
  for (const file of report.testResults ?? []) {
    let failedHere = 0;
    for (const t of file.assertionResults ?? []) {
      if (t.status === 'passed') {
        passed++;
      } else {
        failed++;
        failedHere++;
        if (t.status !== 'failed') notes.push(`${t.status}: ${t.fullName} (${file.name})`);
      }
    }
    if (file.status === 'failed' && failedHere === 0) {
      failed++;
      const msg = String(file.message || 'file failed').split('\n')[0];
      notes.push(`file failed to run: ${file.name}: ${msg}`);
    }
  }
  if ((report.testResults ?? []).length === 0) notes.push('vitest found no test files');
}

if (vitestFailed && failed === 0) {
  failed = 1;
  notes.push(`vitest exited with code ${vitestExit} without a failed test in its report (unhandled error or crash?)`);
}
if (!report && failed === 0) failed = 1;

for (const n of notes) console.log(`[summary] ${n}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
