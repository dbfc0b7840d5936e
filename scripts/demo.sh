#!/usr/bin/env bash
# The demo (README): bootstrap, then `smki demo` once (packages/cli, run from its sources):
# a hierarchy, two portfolios of 500 meters, signed critical commands validated and
# counter-signed, the meters' MAC checks, what is refused and why, and the measured rate.
set -euo pipefail
# shellcheck source=scripts/bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$SMKI_ROOT"
exec node --import tsx packages/cli/src/bin.ts demo "$@"
