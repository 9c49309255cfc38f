#!/usr/bin/env bash
# The web app's CI: installs Debian's chromium if missing, then installs the locked npm packages,
# lints, checks the generated API types against docs/openapi.json, builds, runs the component
# tests and the browser tests. Works from any directory, without a terminal (CI=true, no stdin).
# The browser tests need the local runner: ENTRYGUARD_LOCAL_BIN (default
# $HOME/.cache/entryguard-target/debug/entryguard-local, as ../run-local and ../.ci/test build it).
#
# Usage: web/ci.sh            everything
#        web/ci.sh --static   everything but the browser tests (needs no Rust build)
#        web/ci.sh --e2e      only the browser tests (after --static: installed and built)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mode="${1:-all}"
case "$mode" in
  all | --static | --e2e) ;;
  *)
    echo "usage: $0 [--static | --e2e]" >&2
    exit 2
    ;;
esac

export CI="${CI:-true}"
export DEBIAN_FRONTEND=noninteractive
export npm_config_fund=false
export npm_config_audit=false
export npm_config_update_notifier=false

step() { printf '\n==> web: %s\n' "$*"; }

if [ "$mode" != --e2e ]; then
  step "npm ci"
  npm ci --no-audit --no-fund </dev/null

  step "npm run lint (ESLint: TypeScript and React hooks rules)"
  npm run -s lint </dev/null

  step "API types: src/api/schema.ts against docs/openapi.json"
  npm run -s check:api </dev/null

  step "npm run build"
  npm run build </dev/null

  step "npm test (component tests)"
  npm test </dev/null
fi

if [ "$mode" != --static ]; then
  if [ ! -x /usr/bin/chromium ]; then
    step "installing Debian's chromium"
    sudo_cmd=""
    if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo -n"; fi
    $sudo_cmd apt-get update -qq </dev/null
    $sudo_cmd apt-get install -y -qq chromium </dev/null >/dev/null
  fi

  step "npm run e2e (browser tests, local runner: ${ENTRYGUARD_LOCAL_BIN:-default path})"
  npm run e2e </dev/null
fi
