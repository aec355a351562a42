#!/usr/bin/env bash
# Benchmark (not a test): two gateway binaries side by side on the same simulator, for a
# before/after of a change. Both serve both products (VSPC, and VB365 with its three
# organization accounts); `hit` asks for cache hits of one cloud tenant and the three
# organizations in turn, `list` for a page of the list of both, driven by wrk in alternating
# runs; prints requests/s (median of ROUNDS) and gateway CPU µs per request (utime+stime from
# /proc over each run), and of that the user time alone (what a change to the gateway's own code
# moves; the kernel's share is the network's, and most of the noise).
#
#   bash bench/compare-binaries.sh BEFORE_BINARY AFTER_BINARY
#
# Environment: DURATION (default 10s), ROUNDS (default 4, even), CONNS (default 64), SCENARIOS
# (default "hit list"), WRK_THREADS (default 1: on two cores a second wrk thread takes the
# core the servers need, and every ratio drifts towards 1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?usage: compare-binaries.sh BEFORE_BINARY AFTER_BINARY}
AFTER=${2:?usage: compare-binaries.sh BEFORE_BINARY AFTER_BINARY}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-4}
CONNS=${CONNS:-64}
SCENARIOS=${SCENARIOS:-"hit list"}
WRK_THREADS=${WRK_THREADS:-1}
source bench/lib.sh
command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
BIN=$(swift build "${RELEASE[@]}" --show-bin-path)
[ -x "$BIN/veeam-sim" ] || swift build "${RELEASE[@]}" --product veeam-sim >/dev/null
# Two binaries linked differently differ by that alone (lib.sh, build_release): say so.
echo "before: $BEFORE, $(runtime_kind "$BEFORE"); after: $AFTER, $(runtime_kind "$AFTER")" >&2
[ "$(runtime_kind "$BEFORE")" = "$(runtime_kind "$AFTER")" ] || echo "warning: the two link the Swift runtime differently" >&2

start_sim --generate 1000 --token-lifetime 86400
new_key() { KEY="bench-key-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"; KEY_HASH=$(printf '%s' "$KEY" | "$AFTER" hash-key | tail -1); }
new_key
TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
TENANT=$(curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=1" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['data'][0]['instanceUid'])")

declare -A URL PID
for side in before after; do
  GW_PORT=$(free_port)
  gateway_yaml "$(vb365_upstream)" >"$OUT/gateway-$side.yaml"
  binary=$BEFORE; [ "$side" = after ] && binary=$AFTER
  $SESSION "$binary" serve --config "$OUT/gateway-$side.yaml" >>"$OUT/gateway-$side.log" 2>&1 &
  PID[$side]=$!
  PIDS+=("${PID[$side]}")
  URL[$side]="http://127.0.0.1:$GW_PORT"
  wait_for "${URL[$side]}/healthz"
  # Both products' hits, as the first gateway lists the VB365 organizations.
  [ -n "${HIT_PATHS:-}" ] || two_product_hits "${URL[$side]}" "$TENANT"
  for path in $HIT_PATHS "/v1/tenants?limit=100"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "${URL[$side]}$path")
    [ "$code" = 200 ] || { echo "$side $path answered $code" >&2; tail -5 "$OUT/gateway-$side.log" >&2; exit 1; }
  done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
run() {  # run SIDE PATH [LUA] -> "rps cpu_us_per_request user_us_per_request"
  local side=$1 path=$2 script=${3:-} before after user_before user_after out rps
  before=$(cpu_ticks "${PID[$side]}")
  user_before=$(user_ticks "${PID[$side]}")
  out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" -H "X-API-Key: $KEY" ${script:+-s "$script"} "${URL[$side]}$path")
  after=$(cpu_ticks "${PID[$side]}")
  user_after=$(user_ticks "${PID[$side]}")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  python3 -c "import sys; r,t,d,u,k=float(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]); print(f'{r:.0f} {d/k*1e6/max(t,1):.1f} {u/k*1e6/max(t,1):.2f}')" \
    "$rps" "$total" "$((after - before))" "$((user_after - user_before))" "$TICK"
}
median() { python3 -c "import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:]), 2))" "$@"; }

echo "| scenario | before req/s | after req/s | after/before | before CPU µs/req | after CPU µs/req | before user µs/req | after user µs/req |"
echo "|---|---|---|---|---|---|---|---|"
for scenario in $SCENARIOS; do
  path="/"; script="$OUT/hit.lua"; [ "$scenario" = list ] && { path="/v1/tenants?limit=100"; script=""; }
  declare -A RPS CPU USER
  RPS[before]=""; RPS[after]=""; CPU[before]=""; CPU[after]=""; USER[before]=""; USER[after]=""
  for round in $(seq 1 "$ROUNDS"); do
    # The side that runs first in a round measures faster on this machine (up to 15 %, either
    # binary), so the order alternates from round to round: use an even ROUNDS.
    order="before after"; [ $((round % 2)) -eq 0 ] && order="after before"
    for side in $order; do
      read -r rps cpu user < <(run "$side" "$path" "$script")
      RPS[$side]+=" $rps"; CPU[$side]+=" $cpu"; USER[$side]+=" $user"
    done
  done
  b=$(median ${RPS[before]}); a=$(median ${RPS[after]})
  printf '| %s, %s connections | %.0f | %.0f | %.2f | %s | %s | %s | %s |\n' "$scenario" "$CONNS" "$b" "$a" "$(python3 -c "print($a/$b)")" \
    "$(median ${CPU[before]})" "$(median ${CPU[after]})" "$(median ${USER[before]})" "$(median ${USER[after]})"
done
for side in before after; do
  answered=$(curl -s "${URL[$side]}/metrics" | awk '/^veeam_gateway_hot_path_responses_total/ {sum += $2} END {printf "%d", sum}')
  echo "$side: $answered answers from the hot path" >&2
done
