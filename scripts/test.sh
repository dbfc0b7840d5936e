#!/usr/bin/env bash
# The test command (README, .ci/run): bootstrap, then the whole vitest suite once, unit tests and
# type tests (*.test-d.ts) together, then the verdict as the last line: `N passed, M failed`.
# A skipped, todo or pending test, and a test file that fails to load, count as failed
# (scripts/summary.mjs). Exit status is non-zero when M > 0 or vitest failed.
#
#   bash scripts/test.sh [extra vitest arguments, e.g. a file filter]
set -uo pipefail

# shellcheck source=scripts/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" || {
  echo "bootstrap failed"
  echo "0 passed, 1 failed"
  exit 1
}
cd "$SMKI_ROOT" || exit 1

report="$SMKI_ROOT/.tmp/vitest-report.json"
mkdir -p "$(dirname "$report")"
rm -f "$report"

pnpm exec vitest run --config vitest.config.ts \
  --reporter=default --reporter=json --outputFile.json="$report" "$@"
vitest_status=$?

node scripts/summary.mjs "$report" "$vitest_status"
summary_status=$?

if [ "$vitest_status" -ne 0 ] || [ "$summary_status" -ne 0 ]; then
  exit 1
fi
exit 0
