#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with schemathesis: starts the local runner
# on 127.0.0.1 (a free port, a fresh data directory with the demo organization), signs in as the
# demo admin, and runs every check on every documented operation. Fails on any server error,
# any response that does not match the document, or any other failed check.
#
# Environment: ENTRYGUARD_LOCAL_BIN (default $CARGO_TARGET_DIR/debug/entryguard-local, built if
# missing), SCHEMATHESIS_MAX_EXAMPLES (default 100 per operation), SCHEMATHESIS_SEED (default
# random; a failing run prints its seed).
# The demo admin is given the demo resources first, so session routes get past
# NO_ACCESSIBLE_RESOURCES. The rate limits are raised (--rate-limit-factor), not switched off:
# schemathesis sends thousands of requests a minute with one token from one address, and would
# otherwise test mostly the 429 answers (which stay documented and checked).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/entryguard-target}"
bin="${ENTRYGUARD_LOCAL_BIN:-$CARGO_TARGET_DIR/debug/entryguard-local}"
if [ -z "${ENTRYGUARD_LOCAL_BIN:-}" ]; then
  cargo build --quiet -p entryguard-local
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/entryguard-schemathesis.XXXXXX")
runner_pid=""
cleanup() {
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then
    kill "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A copy: a build in the shared target directory must not swap the binary under the run.
cp "$bin" "$work/entryguard-local"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$work/entryguard-local" --listen "127.0.0.1:$port" --data-dir "$work/data" --web-dir "$work/no-web" \
  --sweep-interval-secs 5 --log-json --rate-limit-factor 1000 >"$work/runner.log" 2>&1 &
runner_pid=$!

# Waits for the runner, then signs in as the demo admin.
token=$(python3 - "$base" "$runner_pid" <<'EOF'
import json, os, sys, time, urllib.request

base, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(base + "/api/health", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the local runner exited before it served /api/health")
    if time.monotonic() > deadline:
        sys.exit("the local runner did not serve /api/health within 60 s")
    time.sleep(0.2)


def call(method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


token = call("POST", "/api/dev/login", {"email": "admin@example.com"})["token"]
# The demo admin reaches no resource; given the demo ones, their session calls get past
# NO_ACCESSIBLE_RESOURCES to the session logic.
me = call("GET", "/api/me", token=token)["user"]["id"]
resources = [r["id"] for r in call("GET", "/api/admin/resources", token=token)]
call("PATCH", f"/api/admin/users/{me}", {"resourceIds": resources}, token=token)
print(token)
EOF
) || { cat "$work/runner.log"; exit 1; }

# positive_data_acceptance is left out: it wants every schema-valid request accepted, but many
# are refused by rules no schema can state (ids that do not exist in the organization, a
# duration the current plan does not offer, an admin without resources starting a session).
args=(
  run "$base/api/openapi.json"
  --header "Authorization: Bearer $token"
  --checks all
  --exclude-checks positive_data_acceptance
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}"
  --request-timeout 10
  --generation-database none
  --no-color
  --report junit --report-dir "$work/report"
)
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then
  args+=(--seed "$SCHEMATHESIS_SEED")
fi
status=0
# From the scratch directory: schemathesis keeps a replay cache (.schemathesis/) in the cwd.
(cd "$work" && schemathesis "${args[@]}") || status=$?

# A panic or an ERROR in the runner's log (a store, queue or audit failure) fails the run even
# if every answer looked fine: the worker and the sweeper run in the background.
failures='panicked|"level":"ERROR"'
if grep -E "$failures" "$work/runner.log" >/dev/null; then
  echo "the local runner logged failures:" >&2
  grep -E "$failures" "$work/runner.log" | head -40 >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "--- local runner log (last 40 lines) ---" >&2
  tail -40 "$work/runner.log" >&2
fi
exit "$status"
