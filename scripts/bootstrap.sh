# shellcheck shell=bash
# Bring a machine (a fresh clone, CI, a developer laptop) to the point where the demo and the
# tests run: pnpm 10, OpenSSL, the workspace's node_modules. Idempotent: every step checks first.
#
#   source scripts/bootstrap.sh     # from another script (scripts/test.sh, scripts/demo.sh)
#   bash scripts/bootstrap.sh       # on its own
#
# Quiet when things work; when a step fails, its full output is printed and we stop.
# To add a dependency (SoftHSM2, PostgreSQL, ...): write an `ensure_<thing>` function below that
# uses `apt_install` / `quietly`, and call it from `smki_bootstrap`.

SMKI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SMKI_ROOT
# Native addons (if any dependency ever needs one) build against the installed Node headers
# instead of downloading them.
export npm_config_nodedir=/usr

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; return 1; }

# Run a command with its output captured; print the output only if it fails.
quietly() {
  local out status
  out="$(mktemp)"
  if "$@" >"$out" 2>&1; then
    rm -f "$out"
    return 0
  else
    status=$?
  fi
  printf '[bootstrap] command failed (exit %s): %s\n' "$status" "$*" >&2
  cat "$out" >&2
  rm -f "$out"
  return "$status"
}

# Run as root directly, otherwise through sudo (non-interactively) if there is one.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

SMKI_APT_UPDATED="${SMKI_APT_UPDATED:-}"
# apt_install PACKAGE...: install the Debian packages that are not installed yet; runs
# `apt-get update` at most once per bootstrap.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand" || return 1
  if [ -z "$SMKI_APT_UPDATED" ]; then
    log "apt-get update"
    quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get update || return 1
    SMKI_APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

ensure_node() {
  command -v node >/dev/null 2>&1 || die "node not found (Node >= 20.19 is required)" || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    die "Node $(node --version) is too old (>= 20.19 is required)"
}

ensure_pnpm() {
  local v
  v="$(pnpm --version 2>/dev/null || true)"
  case "$v" in
    10.*) return 0 ;;
  esac
  log "installing pnpm 10 (found: ${v:-none})"
  quietly npm install --global pnpm@10 || return 1
  hash -r
  v="$(pnpm --version 2>/dev/null || true)"
  case "$v" in
    10.*) ;;
    *) die "pnpm 10 did not install (pnpm --version: ${v:-none})" || return 1 ;;
  esac
}

ensure_openssl() {
  command -v openssl >/dev/null 2>&1 && return 0
  apt_install openssl || return 1
  command -v openssl >/dev/null 2>&1 || die "openssl still missing after apt-get install"
}

# SoftHSM2: the PKCS#11 token the HSM key backend's tests run against (packages/keystore). The
# tests create their own private token (SOFTHSM2_CONF in a temporary directory), so nothing is
# configured here beyond the package.
SMKI_SOFTHSM_MODULE="${SMKI_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
export SMKI_SOFTHSM_MODULE
ensure_softhsm() {
  [ -f "$SMKI_SOFTHSM_MODULE" ] && command -v softhsm2-util >/dev/null 2>&1 && return 0
  apt_install softhsm2 || return 1
  [ -f "$SMKI_SOFTHSM_MODULE" ] || die "softhsm2 installed but $SMKI_SOFTHSM_MODULE is missing"
}

# strace: the durability test (packages/keystore/test/durability-strace.test.ts) runs the key
# store under `strace -f` to see its writes, fsyncs and renames in order. Tracing needs ptrace:
# root, or CAP_SYS_PTRACE; in a container, a seccomp profile that allows ptrace.
ensure_strace() {
  command -v strace >/dev/null 2>&1 && return 0
  apt_install strace || return 1
  command -v strace >/dev/null 2>&1 || die "strace still missing after apt-get install"
}

# PostgreSQL 15: the server the state store's tests (packages/store) start for themselves, one
# private cluster per test file (initdb in a temporary directory, as the postgres user when run
# as root, loopback only). Only the binaries are needed here; no cluster is configured.
SMKI_PG_BIN="${SMKI_PG_BIN:-/usr/lib/postgresql/15/bin}"
export SMKI_PG_BIN
ensure_postgres() {
  [ -x "$SMKI_PG_BIN/initdb" ] && [ -x "$SMKI_PG_BIN/pg_ctl" ] && [ -x "$SMKI_PG_BIN/psql" ] && return 0
  apt_install postgresql-15 postgresql-client-15 || return 1
  [ -x "$SMKI_PG_BIN/initdb" ] || die "postgresql-15 installed but $SMKI_PG_BIN/initdb is missing"
}

# Chromium: tests render pages the way a reader sees them in headless Chromium, driven by
# puppeteer-core (test/_chromium.ts): the API site's links (test/docs-site.test.ts) and the audit
# report. puppeteer-core downloads no browser, so the Debian package provides it, at
# /usr/bin/chromium (SMKI_CHROMIUM names another one instead).
ensure_chromium() {
  if [ -n "${SMKI_CHROMIUM:-}" ]; then
    [ -x "$SMKI_CHROMIUM" ] || die "SMKI_CHROMIUM=$SMKI_CHROMIUM is not an executable file"
    return
  fi
  [ -x /usr/bin/chromium ] && return 0
  apt_install chromium || return 1
  [ -x /usr/bin/chromium ] || die "chromium installed but /usr/bin/chromium is missing"
}

# A JDK 17: the DUIS XML signature interoperability tests (packages/duis/test/_java.ts) compile
# and run an independent Java implementation of the profile, on the JDK's own XML Signature API.
ensure_java() {
  command -v javac >/dev/null 2>&1 && command -v java >/dev/null 2>&1 && return 0
  apt_install openjdk-17-jdk-headless || return 1
  hash -r
  command -v javac >/dev/null 2>&1 || die "openjdk-17-jdk-headless installed but javac is missing"
}

# A C++ tool chain: better-sqlite3 (the state store's SQLite driver) compiles its native addon
# at install time against the installed Node headers (npm_config_nodedir above).
ensure_build_tools() {
  command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 && return 0
  apt_install g++ make python3
}

ensure_node_modules() {
  if [ -f "$SMKI_ROOT/pnpm-lock.yaml" ]; then
    (cd "$SMKI_ROOT" && quietly pnpm install --frozen-lockfile --config.confirmModulesPurge=false)
  else
    log "pnpm-lock.yaml missing: plain install"
    (cd "$SMKI_ROOT" && quietly pnpm install --config.confirmModulesPurge=false)
  fi
}

smki_bootstrap() {
  ensure_node &&
    ensure_pnpm &&
    ensure_openssl &&
    ensure_softhsm &&
    ensure_strace &&
    ensure_postgres &&
    ensure_chromium &&
    ensure_java &&
    ensure_build_tools &&
    ensure_node_modules
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Executed: run and exit with the result.
  set -euo pipefail
  smki_bootstrap
else
  # Sourced: run, and make the sourcing script fail if we did.
  smki_bootstrap || return 1
fi
