#!/usr/bin/env bash
# The shipped binary runs its demo from any directory: `veeam-gateway demo` is started from an
# empty temporary directory (no config/, no repository), and must become ready with both
# simulated upstreams, serve a tenant of each product to the demo's administrator key, and serve
# its resources (the OpenAPI document, the status page and its script). Readiness and resources
# are asked with the binary's own `probe` command, tenants with curl when there is one, so the
# Dockerfile's build stage runs this same script whatever it has installed.
#
#   bash scripts/check-demo-anywhere.sh [BINARY]     # default dist/veeam-gateway
set -euo pipefail
BIN=$(realpath "${1:-dist/veeam-gateway}")
[ -x "$BIN" ] || { echo "no executable at $BIN" >&2; exit 2; }
WORK=$(mktemp -d)
PORT=$(( 20000 + RANDOM % 20000 ))
cleanup() { [ -n "${DEMO:-}" ] && kill "$DEMO" 2>/dev/null && wait "$DEMO" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"
"$BIN" demo --port "$PORT" >"$WORK/demo.log" 2>&1 &
DEMO=$!
probe() { "$BIN" probe "http://127.0.0.1:$PORT$1" --timeout 2 >/dev/null 2>&1; }
for _ in $(seq 1 120); do
  probe /readyz && break
  kill -0 "$DEMO" 2>/dev/null || { echo "the demo stopped:" >&2; cat "$WORK/demo.log" >&2; exit 1; }
  sleep 0.5
done
probe /readyz || { echo "the demo never became ready:" >&2; tail -n 20 "$WORK/demo.log" >&2; exit 1; }
for path in /healthz /openapi.yaml /status.js /status; do
  probe "$path" || { echo "GET $path failed when run from $WORK" >&2; exit 1; }
done
# A tenant of each product, read with the demo's administrator key (when curl is there to send it).
if command -v curl >/dev/null; then
  for id in vb365-demo.cbc52c37-df7f-4b03-98f3-036e7d4b3127 vspc-demo.c386d34c-0ab6-4e13-b30a-67fcb05b83e4; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: demo-portal-admin' "http://127.0.0.1:$PORT/v1/tenants/$id")
    [ "$code" = 200 ] || { echo "GET /v1/tenants/$id answered $code" >&2; tail -n 20 "$WORK/demo.log" >&2; exit 1; }
  done
fi
echo "demo from $WORK (an empty directory): ready, resources served ($BIN)"
