#!/usr/bin/env bash
# Builds the three functions the way `sam deploy` ships them (cargo-lambda, arm64, release) and
# prints the time taken and each bootstrap's size. Needs the SAM CLI, cargo-lambda and zig
# (cargo-lambda cross-compiles with it): `pip install aws-sam-cli cargo-lambda`.
set -euo pipefail
# From the repository root, as infra/README.md runs it, so `sam deploy` finds .aws-sam/.
cd "$(dirname "$0")/.."
start=$(date +%s)
sam build --beta-features --template-file infra/template.yaml "$@"
echo "sam build took $(( $(date +%s) - start )) s"
for f in .aws-sam/build/*/bootstrap; do
  printf '%-40s %s bytes\n' "$(basename "$(dirname "$f")")" "$(stat -c %s "$f")"
done
