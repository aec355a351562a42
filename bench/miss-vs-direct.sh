#!/usr/bin/env bash
# Benchmark (not a test): what the gateway adds to a cache miss. One connection (wrk -t1 -c1), so
# the figure is latency, not throughput: a miss through the gateway (`Cache-Control: no-cache` from
# an administrator: authentication, the cache's fill, a token, one upstream call over kept-alive
# HTTPS, normalization, the answer) against the same upstream request sent straight to the
# simulator over a kept-alive HTTPS connection with a token. Both products: a VSPC CloudTenant
# (gateway account) and a VB365 Organization (read with that organization's own account).
# A third reference, run in the same rounds: nginx as a plain reverse proxy of the same request
# (one worker, no cache, kept-alive verified HTTPS to the simulator, the token set by nginx), so
# the gateway's added time can be read against what a proxy that does nothing but relay adds on
# the same machine at the same moment.
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
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nginx wrk
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

start_miss_setup

# nginx: a reverse proxy and nothing else (one worker, as one connection uses one event loop).
NG_PORT=$(free_port)
mkdir -p "$OUT/nginx-tmp"; chmod 755 "$OUT"; chmod 777 "$OUT/nginx-tmp"
cat >"$OUT/nginx.conf" <<NGINX
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx-tmp; proxy_temp_path $OUT/nginx-tmp; fastcgi_temp_path $OUT/nginx-tmp;
  uwsgi_temp_path $OUT/nginx-tmp; scgi_temp_path $OUT/nginx-tmp;
  upstream vspc { server ${SIM#https://}; keepalive 8; }
  upstream vb365 { server ${VB365_SIM#https://}; keepalive 8; }
  server {
    listen 127.0.0.1:$NG_PORT; keepalive_requests 1000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_ssl_trusted_certificate $OUT/ca.pem;
    proxy_ssl_verify on;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
    proxy_ssl_session_reuse on;
    location = /vspc { proxy_set_header Authorization "Bearer $VSPC_TOKEN"; proxy_pass https://vspc/api/v3/infrastructure/sites/tenants/$VSPC_TENANT; }
    location = /vb365 { proxy_set_header Authorization "Bearer $VB365_TOKEN"; proxy_pass https://vb365/v5/Organization; }
  }
}
NGINX
"$NGINX" -c "$OUT/nginx.conf" -p "$OUT" -e "$OUT/nginx-error.log"
NG_URL="http://127.0.0.1:$NG_PORT"
wait_for "$NG_URL/vspc"
NG_PIDS() { local master; master=$(cat "$OUT/nginx.pid"); echo "$master" $(pgrep -P "$master"); }   # master and worker
for path in /vspc /vb365; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$NG_URL$path")
  [ "$code" = 200 ] || { echo "nginx $path answered $code" >&2; tail -n 5 "$OUT/nginx-error.log" >&2; exit 1; }
done
: >"$OUT/none.lua"

# One run: "req/s p50_ms p99_ms errors cpu_us_per_request" (CPU of the processes given).
ticks() { local t=0 pid; for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$t"; }
run() {
  local url=$1 script=$2 before after
  shift 2
  before=$(ticks "$@")
  wrk -t1 -c1 -d"$DURATION" --latency -s "$script" "$url" >"$OUT/wrk.txt" 2>&1 || true
  after=$(ticks "$@")
  wrk_summary "$OUT/wrk.txt" "$((after - before))"
}
median() { python3 -c "import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]), 3))" "$@"; }

TABLE="| product | direct p50 / p99 ms | nginx proxy p50 / p99 ms | gateway miss p50 / p99 ms | nginx added p50 ms | gateway added p50 ms | gateway added p50 per round, min–max ms | gateway added / nginx added | CPU µs per request, gateway / nginx | non-2xx gw / nginx / direct |
|---|---|---|---|---|---|---|---|---|---|"
for product in vspc vb365; do
  if [ "$product" = vspc ]; then
    direct="$SIM/api/v3/infrastructure/sites/tenants/$VSPC_TENANT"; script="$OUT/vspc.lua"; path="/v1/tenants/vspc-main.$VSPC_TENANT"
  else
    direct="$VB365_SIM/v5/Organization"; script="$OUT/vb365.lua"; path="/v1/tenants/vb365-main.$VB365_ORG"
  fi
  d50=(); d99=(); n50=(); n99=(); nc=(); g50=(); g99=(); gc=(); gb=0; nb=0; db=0
  for _ in $(seq 1 "$ROUNDS"); do
    read -r _ a b e _ < <(run "$direct" "$script" "$SIM_PID"); d50+=("$a"); d99+=("$b"); db=$((db + e))
    # shellcheck disable=SC2046
    read -r _ a b e c < <(run "$NG_URL/$product" "$OUT/none.lua" $(NG_PIDS)); n50+=("$a"); n99+=("$b"); nb=$((nb + e)); nc+=("$c")
    read -r _ a b e c < <(run "$GW_URL$path" "$OUT/gw.lua" "$GW_PID"); g50+=("$a"); g99+=("$b"); gb=$((gb + e)); gc+=("$c")
  done
  D50=$(median "${d50[@]}"); N50=$(median "${n50[@]}"); G50=$(median "${g50[@]}")
  ADDED=$(python3 -c "print(f'{$G50 - $D50:.3f}')")
  NADDED=$(python3 -c "print(f'{$N50 - $D50:.3f}')")
  RATIO=$(python3 -c "a, n = $G50 - $D50, $N50 - $D50; print(f'{a / n:.2f}×' if n > 0 else '-')")
  # Each round's own difference (its direct run next to its gateway run): how far the machine moved.
  SPREAD=$(python3 -c "import sys; n=len(sys.argv)//2; a=[float(g)-float(d) for d,g in zip(sys.argv[1:n+1], sys.argv[n+1:])]; print(f'{min(a):.3f}–{max(a):.3f}')" "${d50[@]}" "${g50[@]}")
  LINE="| $product | $D50 / $(median "${d99[@]}") | $N50 / $(median "${n99[@]}") | $G50 / $(median "${g99[@]}") | $NADDED | $ADDED | $SPREAD | $RATIO | $(median "${gc[@]}") / $(median "${nc[@]}") | $gb / $nb / $db |"
  echo "$LINE" >&2
  TABLE+="
$LINE"
done
HEADER="### Miss path: gateway vs direct ($(date -u +%Y-%m-%d), $(nproc) cores, wrk -t1 -c1, $DURATION per run, median of $ROUNDS alternated runs; $GATEWAY_KIND)"
NOTE="Direct: the upstream request with a token over kept-alive HTTPS to the simulator. nginx: a plain reverse proxy of that request (one worker, no cache, kept-alive verified HTTPS upstream). Gateway: \`Cache-Control: no-cache\` as an administrator, so every request is authenticated, fills the cache and makes that same upstream call."
echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
