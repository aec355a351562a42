#!/usr/bin/env bash
# A generated client, used: openapi-python-client (PyPI, pinned) generates a Python client from
# docs/openapi.yaml, and scripts/generated-client.py drives the demo gateway with it (paging,
# one tenant, If-None-Match → 304, a 403 and a 404 as typed problems, a purge, /v1/status).
# The generator runs with --fail-on-warning, so a construct of the document it cannot read (a
# response or model it would leave out) fails the run; scripts/generated-client-config.yaml
# holds its configuration. The code is generated anew into a temporary directory every run.
#
#   bash scripts/generated-client.sh                       # the release binary, dist/veeam-gateway
#   GATEWAY=.build/release/veeam-gateway bash scripts/generated-client.sh
#
# Exits non-zero when the generator warns or fails, the demo does not come up, or a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
GENERATOR_VERSION=0.29.1
GATEWAY=${GATEWAY:-dist/veeam-gateway}
[ -x "$GATEWAY" ] || { echo "no $GATEWAY (scripts/build-release.sh dist, or set GATEWAY)" >&2; exit 2; }

timeout 300 python3 -m pip install -q "openapi-python-client==$GENERATOR_VERSION"

# Everything lives in WORK; the demo is stopped (by its PID) and WORK removed on exit.
WORK=$(mktemp -d)
DEMO=""
cleanup() {
  if [ -n "$DEMO" ]; then kill "$DEMO" 2>/dev/null || true; wait "$DEMO" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "generating the client (openapi-python-client $GENERATOR_VERSION)"
timeout 180 python3 -m openapi_python_client generate --path docs/openapi.yaml \
  --output-path "$WORK/veeam_gateway_client" --meta none \
  --config scripts/generated-client-config.yaml --fail-on-warning

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The demo is bounded too, should the trap not run.
timeout 600 "$GATEWAY" demo --port "$PORT" \
  >"$WORK/demo.log" 2>&1 &
DEMO=$!
# Serving (/healthz), then ready (/readyz 200: both simulated upstreams reached, tokens had), so
# /v1/status's marks are the probe's and not the start's.
for check in healthz readyz; do
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/$check" && break
    kill -0 "$DEMO" 2>/dev/null || break
    sleep 0.1
  done
  if ! curl -sf -o /dev/null "http://127.0.0.1:$PORT/$check"; then
    echo "the demo did not answer /$check with 200" >&2; cat "$WORK/demo.log" >&2; exit 1
  fi
done

if ! timeout 120 python3 scripts/generated-client.py --url "http://127.0.0.1:$PORT" --package-dir "$WORK"; then
  echo "the generated client's checks failed; the demo's log:" >&2; tail -n 50 "$WORK/demo.log" >&2; exit 1
fi
