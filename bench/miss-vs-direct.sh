#!/usr/bin/env bash
# Benchmark (not a test): what the gateway adds to a cache miss. One connection (wrk -t1 -c1), so
# the figure is latency, not throughput: a miss through the gateway (`Cache-Control: no-cache` from
# an administrator: authentication, the cache's fill, a token, one upstream call over kept-alive
# HTTPS, normalization, the answer) against the same upstream request sent straight to the
# simulator over a kept-alive HTTPS connection with a token. Both products: a VSPC CloudTenant
# (gateway account) and a VB365 Organization (read with that organization's own account).
#
#   bash bench/miss-vs-direct.sh            # prints the table; --write appends it to docs/benchmarks.md
#
# Environment: DURATION (default 10s per run), ROUNDS (default 3, alternated), GATEWAY_BIN,
# BENCH_SKIP_BUILD (see lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WRITE=${1:-}
source bench/lib.sh
command -v wrk >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"; $SUDO apt-get install -y -q wrk; }

build_release
start_sim
VSPC_TENANT=c386d34c-0ab6-4e13-b30a-67fcb05b83e4
VB365_ORG=cbc52c37-df7f-4b03-98f3-036e7d4b3127
token() { curl -s --cacert "$OUT/ca.pem" "$1" -d grant_type=password --data-urlencode "username=$2" --data-urlencode "password=$3" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])"; }
VSPC_TOKEN=$(token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
VB365_TOKEN=$(token "$VB365_SIM/v5/token" backup-admin@abc.onmicrosoft.com Abc-Org-Pass-1)

new_key
GW_PORT=$(free_port)
gateway_yaml "$(vb365_upstream)" >"$OUT/gateway.yaml"
start_gateway "$OUT/gateway.yaml"
for path in "/v1/tenants/vspc-main.$VSPC_TENANT" "/v1/tenants/vb365-main.$VB365_ORG"; do
  code=$(curl -s -k -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$GW_URL$path")
  [ "$code" = 200 ] || { echo "$path answered $code" >&2; tail -n 5 "$OUT/gateway.log" >&2; exit 1; }
done

printf 'wrk.headers["X-API-Key"] = "%s"\nwrk.headers["Cache-Control"] = "no-cache"\n' "$KEY" >"$OUT/gw.lua"
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$VSPC_TOKEN" >"$OUT/vspc.lua"
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$VB365_TOKEN" >"$OUT/vb365.lua"

# One run: "req/s p50_ms p99_ms errors cpu_us_per_request" (CPU of the process given).
run() {
  local url=$1 script=$2 pid=$3 before after
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  wrk -t1 -c1 -d"$DURATION" --latency -s "$script" "$url" >"$OUT/wrk.txt" 2>&1 || true
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  wrk_summary "$OUT/wrk.txt" "$((after - before))"
}
median() { python3 -c "import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]), 3))" "$@"; }

TABLE="| product | direct p50 / p99 ms | gateway miss p50 / p99 ms | added p50 ms | added p50 per round, min–max ms | gateway CPU µs per miss | non-2xx gw / direct |
|---|---|---|---|---|---|---|"
for product in vspc vb365; do
  if [ "$product" = vspc ]; then
    direct="$SIM/api/v3/infrastructure/sites/tenants/$VSPC_TENANT"; script="$OUT/vspc.lua"; path="/v1/tenants/vspc-main.$VSPC_TENANT"
  else
    direct="$VB365_SIM/v5/Organization"; script="$OUT/vb365.lua"; path="/v1/tenants/vb365-main.$VB365_ORG"
  fi
  d50=(); d99=(); g50=(); g99=(); gc=(); gb=0; db=0
  for _ in $(seq 1 "$ROUNDS"); do
    read -r _ a b e _ < <(run "$direct" "$script" "$SIM_PID"); d50+=("$a"); d99+=("$b"); db=$((db + e))
    read -r _ a b e c < <(run "$GW_URL$path" "$OUT/gw.lua" "$GW_PID"); g50+=("$a"); g99+=("$b"); gb=$((gb + e)); gc+=("$c")
  done
  D50=$(median "${d50[@]}"); G50=$(median "${g50[@]}")
  ADDED=$(python3 -c "print(f'{$G50 - $D50:.3f}')")
  # Each round's own difference (its direct run next to its gateway run): how far the machine moved.
  SPREAD=$(python3 -c "import sys; n=len(sys.argv)//2; a=[float(g)-float(d) for d,g in zip(sys.argv[1:n+1], sys.argv[n+1:])]; print(f'{min(a):.3f}–{max(a):.3f}')" "${d50[@]}" "${g50[@]}")
  LINE="| $product | $D50 / $(median "${d99[@]}") | $G50 / $(median "${g99[@]}") | $ADDED | $SPREAD | $(median "${gc[@]}") | $gb / $db |"
  echo "$LINE" >&2
  TABLE+="
$LINE"
done
HEADER="### Miss path: gateway vs direct ($(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c1, $DURATION per run, median of $ROUNDS alternated runs)"
NOTE="Direct: the upstream request with a token over kept-alive HTTPS to the simulator. Gateway: \`Cache-Control: no-cache\` as an administrator, so every request is authenticated, fills the cache and makes that same upstream call."
echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
