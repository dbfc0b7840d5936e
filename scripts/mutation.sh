#!/usr/bin/env bash
# Mutation testing (StrykerJS) of the security-critical modules, one module per run so each score
# is its own. Not in CI: a full run takes hours on two cores.
#
#   pnpm run mutation                    # every module below
#   pnpm run mutation pki/parse gbcs/mac # some of them
#
# Reports: .tmp/mutation/<package>-<module>.json and .html; the last line of each run prints the
# score. Environment: SMKI_MUTATION_CONCURRENCY (default 2); SMKI_MUTATION_TIMEOUT_MS (default 60000,
# added to three times a mutant's measured test time before it counts as timed out); SMKI_MUTATION_INCREMENTAL=1 re-tests
# only the mutants whose code or covering tests changed since the module's last report (Stryker's
# incremental mode, seeded from that report): quick while killing survivors, but an approximation,
# so the scores a README quotes come from a full run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODULES=(
  pki/parse pki/path pki/crl pki/lint
  keystore/store keystore/audit keystore/backends/memory keystore/backends/file keystore/backends/pkcs11
  gbcs/codec gbcs/signature gbcs/mac gbcs/crypto
  store/internal/apply store/internal/check store/internal/log store/memory store/sqlite store/postgres
  duis/verify duis/sign duis/trust duis/internal/profile duis/internal/xml duis/internal/document
  validator/validator validator/internal/log validator/internal/trust
)
[ "$#" -gt 0 ] && MODULES=("$@")

mkdir -p .tmp/mutation
for m in "${MODULES[@]}"; do
  pkg="${m%%/*}"
  file="packages/${pkg}/src/${m#*/}.ts"
  [ -f "$file" ] || { echo "no such module: $m ($file)" >&2; exit 2; }
  report=".tmp/mutation/${m//\//-}.json"
  echo "== mutation: $file (tests of packages/$pkg)" >&2
  extra=()
  if [ "${SMKI_MUTATION_INCREMENTAL:-0}" = 1 ] && [ -f "$report" ]; then
    incremental="${report%.json}.incremental.json"
    cp "$report" "$incremental"
    extra=(--incremental --incrementalFile "$incremental")
  fi
  SMKI_MUTATION_PACKAGE="$pkg" SMKI_MUTATION_REPORT="$report" \
    pnpm exec stryker run stryker.config.mjs --mutate "$file" "${extra[@]}"
  node -e '
    const r = require(process.argv[1]); let k = 0, s = 0, t = 0, nc = 0, to = 0;
    for (const f of Object.values(r.files)) for (const m of f.mutants) {
      if (m.status === "Killed") k++; else if (m.status === "Timeout") to++;
      else if (m.status === "Survived") s++; else if (m.status === "NoCoverage") nc++;
      if (m.status !== "CompileError" && m.status !== "RuntimeError" && m.status !== "Ignored") t++;
    }
    console.log(JSON.stringify({ module: process.argv[2], killed: k, timeout: to, survived: s, noCoverage: nc, total: t, score: t ? +((100 * (k + to)) / t).toFixed(2) : null }));
  ' "$PWD/$report" "$m" | tee -a .tmp/mutation/scores.jsonl
done
