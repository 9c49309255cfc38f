#!/usr/bin/env bash
# Builds the three functions the way `sam deploy` ships them (cargo-lambda, release) and prints
# the time taken and each bootstrap's size.
#
#   infra/build.sh                     # arm64, as the template deploys by default
#   ARCH=x86_64 infra/build.sh         # for a toolchain without the aarch64 standard library;
#                                      # deploy with --parameter-overrides Architecture=x86_64
#
# Needs the SAM CLI, cargo-lambda and zig (cargo-lambda links with it). Without them on PATH it
# uses the virtual environments `.ci/install` and this script create under ~/.cache
# (entryguard-sam, entryguard-cargo-lambda). Extra arguments go to `sam build`.
# CARGO_TARGET_DIR is honoured (cargo-lambda puts the bootstraps under it, in lambda/).
set -euo pipefail
# From the repository root, as infra/README.md runs it, so `sam deploy` finds .aws-sam/.
cd "$(dirname "$0")/.."

arch="${ARCH:-arm64}"
case "$arch" in
  arm64) rust_target=aarch64-unknown-linux-gnu ;;
  x86_64) rust_target=x86_64-unknown-linux-gnu ;;
  *) echo "ARCH must be arm64 or x86_64, not $arch" >&2; exit 2 ;;
esac

tools="$HOME/.cache"
if ! command -v sam >/dev/null 2>&1; then
  if [ ! -x "$tools/entryguard-sam/bin/sam" ]; then
    echo "installing the SAM CLI in $tools/entryguard-sam"
    python3 -m venv "$tools/entryguard-sam"
    "$tools/entryguard-sam/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli>=1,<2"
  fi
  PATH="$PATH:$tools/entryguard-sam/bin"
fi
if ! command -v cargo-lambda >/dev/null 2>&1; then
  if [ ! -x "$tools/entryguard-cargo-lambda/bin/cargo-lambda" ]; then
    # The PyPI package brings zig (package ziglang) with it.
    echo "installing cargo-lambda in $tools/entryguard-cargo-lambda"
    python3 -m venv "$tools/entryguard-cargo-lambda"
    "$tools/entryguard-cargo-lambda/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda>=1,<2"
  fi
  # Its python3 is the one with ziglang, which cargo-lambda runs when there is no zig on PATH:
  # first in PATH.
  PATH="$tools/entryguard-cargo-lambda/bin:$PATH"
fi
export PATH SAM_CLI_TELEMETRY=0

# cargo-lambda would otherwise ask rustup to download the standard library for the target; say
# plainly what is missing instead.
if command -v rustup >/dev/null 2>&1 \
  && ! rustup target list --installed | grep -qx "$rust_target"; then
  echo "the Rust standard library for $rust_target is not installed:" >&2
  echo "  rustup target add $rust_target   (or ARCH=x86_64 infra/build.sh on an x86_64 machine)" >&2
  exit 1
fi

start=$(date +%s)
sam build --beta-features --template-file infra/template.yaml \
  --parameter-overrides "Architecture=$arch" "$@"
echo "sam build ($arch) took $(( $(date +%s) - start )) s"
for f in .aws-sam/build/*/bootstrap; do
  printf '%-40s %s bytes\n' "$(basename "$(dirname "$f")")" "$(stat -c %s "$f")"
done
