#!/usr/bin/env bash
# Benchmark (not a test): what tracing costs a cache hit. One release binary, three ways, each
# started in turn in front of the simulator (VSPC, and VB365 with its three organization accounts;
# a cloud tenant and the three organizations warmed, asked for in turn): without a `tracing`
# section, with spans sampled at 1.0, and at 0.01, each exporting over OTLP/HTTP to
# scripts/otlp-receiver.py (a real receiver; at these rates it cannot take every span, and the
# exporter drops what its queue cannot hold, as it would in front of a slow collector). wrk -t1
# -c64, ROUNDS alternated rounds of DURATION; prints requests/s (median) and the gateway's CPU µs
# per hit (utime+stime from /proc, median), and the ratio to tracing off.
#
#   bash bench/tracing.sh        # DURATION (default 8s), ROUNDS (default 3), GATEWAY_BIN
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
source bench/lib.sh
build_release
start_sim --token-lifetime 86400
new_key
python3 scripts/otlp-receiver.py --port-file "$OUT/otlp.port" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/otlp.port" ] && break; sleep 0.05; done
OTLP="http://127.0.0.1:$(cat "$OUT/otlp.port")"
TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
TENANT=$(curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=1" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['data'][0]['instanceUid'])")

# One run of a way: a fresh gateway, the hits warmed, wrk; prints "req/s cpu_us".
run_way() {
  local way=$1
  GW_PORT=$(free_port)
  { gateway_yaml "$(vb365_upstream)"
    case $way in
      on-1.0) echo "tracing: { otlp: { endpoint: \"$OTLP\" }, sampleRatio: 1.0 }" ;;
      on-0.01) echo "tracing: { otlp: { endpoint: \"$OTLP\" }, sampleRatio: 0.01 }" ;;
    esac
  } >"$OUT/gateway-$way.yaml"
  start_gateway "$OUT/gateway-$way.yaml"
  two_product_hits "$GW_URL" "$TENANT"
  for path in $HIT_PATHS; do
    for _ in 1 2; do curl -s -o /dev/null -H "X-API-Key: $KEY" "$GW_URL$path"; done
  done
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
  wrk -t1 -c64 -d"$DURATION" -H "X-API-Key: $KEY" -s "$OUT/hit.lua" "$GW_URL/" >"$OUT/wrk.txt" 2>&1 || true
  after=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
  read -r rps _ _ errors cpu < <(wrk_summary "$OUT/wrk.txt" "$((after - before))")
  [ "$errors" = 0 ] || echo "$way: $errors errors" >&2
  kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
  echo "$rps $cpu"
}
declare -A RPS CPU
for _ in $(seq 1 "$ROUNDS"); do
  for way in off on-1.0 on-0.01; do
    read -r r c < <(run_way "$way")
    RPS[$way]+="$r "; CPU[$way]+="$c "
  done
done
median() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
OFF_CPU=$(median ${CPU[off]})
echo "### Tracing's cost on a hit ($(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c64, $DURATION × $ROUNDS alternated rounds, median)"
echo
echo "| tracing | hits/s | CPU µs per hit | CPU ÷ off |"
echo "|---|---|---|---|"
for way in off on-0.01 on-1.0; do
  cpu=$(median ${CPU[$way]})
  echo "| $way | $(median ${RPS[$way]} | cut -d. -f1) | $cpu | $(python3 -c "print(f'{$cpu/$OFF_CPU:.2f}')") |"
done
