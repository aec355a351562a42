#!/usr/bin/env bash
# Generated hostile requests: schemathesis (PyPI) against the demo gateway and docs/openapi.yaml,
# with a valid key, every phase and every check (no 5xx; statuses, bodies and headers as the
# document says; undeclared methods 405; schema-violating requests refused).
#
#   bash scripts/fuzz-api.sh [MAX_EXAMPLES]     # default 120 (≈1,700 cases, about a minute); CI uses 15
# Uses the debug build (`swift build` first). Exits non-zero when schemathesis finds a problem.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES=${1:-120}
python3 -m pip install -q "schemathesis==4.32.5"
ST="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIN=$(swift build --show-bin-path)
LOG=$(mktemp)
"$BIN/veeam-gateway" demo --port "$PORT" >"$LOG" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null || true; wait $DEMO 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" || { cat "$LOG" >&2; exit 1; }
"$ST" run docs/openapi.yaml --url "http://127.0.0.1:$PORT" -H "X-API-Key: demo-portal-admin" \
  --max-examples "$MAX_EXAMPLES" --checks all --seed 1 --no-color
