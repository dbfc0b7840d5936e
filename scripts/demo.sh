#!/usr/bin/env bash
# The demo (README): bootstrap, then run examples/demo.ts once.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SMKI_ROOT"
exec pnpm exec tsx examples/demo.ts "$@"
