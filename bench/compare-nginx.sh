#!/usr/bin/env bash
# Benchmark (not a test): the gateway against nginx's proxy_cache, both in front of the same
# simulated VSPC (1,000 generated tenants, HTTPS), driven by wrk on 127.0.0.1.
#
#   bash bench/compare-nginx.sh            # prints the table; --write appends it to docs/benchmarks.md
#
# Scenarios, each at 64 and 256 connections, alternating gateway and nginx runs (medians):
#   hit   GET one tenant, answered from the cache
#   list  GET a page of 500 tenants, answered from the cache
#   miss  GET random tenants of the 1,000 with `Cache-Control: no-cache` (an administrator's
#         bypass on the gateway, proxy_cache_bypass on nginx): every request goes upstream
#   pass  GET one tenant through pass-through (`/v1/upstreams/vspc-main/api/infrastructure/sites/
#         tenants/{uid}`: VSPC's own body, secrets removed, on the gateway; the same upstream path
#         proxied on nginx), answered from the cache
# The gateway authenticates every request (API key, SHA-256 lookup) and checks roles; nginx checks
# nothing. Both write no access log (gateway log.level warning, nginx access_log off).
#
# The gateway's upstream concurrency is raised from its default of 4 to nginx's 64 keep-alive
# connections, so that misses compare like with like.
#
# Environment: WRK_THREADS (default 1: with two on a 2-core machine the load generator takes a
# core, both servers are starved to the same ceiling, and every ratio drifts towards 1.0),
# DURATION (default 10s per run), ROUNDS (default 3), CONNS (default "64 256"),
# SCENARIOS (default "hit list miss"), GW_THREADS (gateway event loops, default one per core),
# NG_WORKERS (nginx worker_processes, default auto: one per core),
# SHARED_SESSION (default 0: each server in a session of its own, see bench/lib.sh; 1: both in
# the script's session, with wrk),
# GW_HOTPATH (default true; false measures the router alone),
# TLS (default 0; 1: both terminate HTTPS with the same certificate, ECDSA P-256, keep-alive),
# ACCESS_LOG (default 0; 1: one access line per request on both, the gateway's at log.level info
# to its log file, nginx's access_log to a file).
# Each run also reads the CPU time (user + system, from /proc) the gateway process and all nginx
# processes used, and reports CPU µs per request.
# Needs nginx and wrk (Debian packages; installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"64 256"}
SCENARIOS=${SCENARIOS:-"hit list miss"}
WRK_THREADS=${WRK_THREADS:-1}
WRITE=${1:-}
source bench/lib.sh

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nginx wrk
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

build_release

# 1. The simulator: VSPC only, 1,000 generated tenants, day-long tokens.
start_sim --generate 1000 --token-lifetime 86400
TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=500&offset=0" >"$OUT/p1.json"
curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=500&offset=500" >"$OUT/p2.json"
curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=500&offset=1000" >"$OUT/p3.json"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ids = [t["instanceUid"] for p in ("p1", "p2", "p3") for t in json.load(open(f"{out}/{p}.json"))["data"]]
assert len(ids) >= 1000, len(ids)
open(f"{out}/ids.txt", "w").write("\n".join(ids) + "\n")
PY
TENANT=$(sed -n 1p "$OUT/ids.txt")
echo "simulator on $SIM_PORT with $(wc -l <"$OUT/ids.txt") tenants" >&2

# 2. The gateway: one caller (PortalAdministrator), long TTL, log level warning (info with
# ACCESS_LOG=1: an access line per request). With TLS=1 both front ends get the same certificate.
TLS=${TLS:-0}
ACCESS_LOG=${ACCESS_LOG:-0}
SCHEME=http
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$OUT/front.key" -out "$OUT/front.crt" \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -days 2 2>/dev/null
  SCHEME=https
  export GW_TLS="{ certificateFile: $OUT/front.crt, keyFile: $OUT/front.key }"
fi
[ "$ACCESS_LOG" = 1 ] && export GW_LOG_LEVEL=info
new_key
GW_PORT=$(free_port)
gateway_yaml "    maxConnections: 64
    maxConcurrentRequests: 64       # default 4 protects a real Veeam server; here, as many as nginx may open
    maxQueuedRequests: 10000" >"$OUT/gateway.yaml"
start_gateway "$OUT/gateway.yaml"

# 3. nginx: proxy_cache with lock and use_stale, keep-alive HTTPS to the simulator, verified.
NG_PORT=$(free_port)
mkdir -p "$OUT/nginx-cache" "$OUT/nginx-tmp"
chmod 755 "$OUT"; chmod 777 "$OUT/nginx-cache" "$OUT/nginx-tmp"   # workers run as an unprivileged user when started as root
cat >"$OUT/nginx.conf" <<NGINX
worker_processes ${NG_WORKERS:-auto};
$( [ -z "$SESSION" ] && echo "daemon off;" )
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 4096; }
http {
  $( [ "$ACCESS_LOG" = 1 ] && echo "access_log $OUT/nginx-access.log;" || echo "access_log off;" )
  client_body_temp_path $OUT/nginx-tmp; proxy_temp_path $OUT/nginx-tmp; fastcgi_temp_path $OUT/nginx-tmp;
  uwsgi_temp_path $OUT/nginx-tmp; scgi_temp_path $OUT/nginx-tmp;
  proxy_cache_path $OUT/nginx-cache levels=1:2 keys_zone=veeam:16m max_size=256m inactive=60m use_temp_path=off;
  upstream vspc { server 127.0.0.1:$SIM_PORT; keepalive 64; }
  server {
    $( [ "$TLS" = 1 ] && echo "listen 127.0.0.1:$NG_PORT ssl; ssl_certificate $OUT/front.crt; ssl_certificate_key $OUT/front.key; keepalive_requests 1000000;" || echo "listen 127.0.0.1:$NG_PORT; keepalive_requests 1000000;" )
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Authorization "Bearer $TOKEN";
    proxy_ssl_trusted_certificate $OUT/ca.pem;
    proxy_ssl_verify on;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
    proxy_ssl_session_reuse on;
    proxy_cache veeam;
    proxy_cache_key \$uri\$is_args\$args;
    proxy_cache_valid 200 10m;
    proxy_cache_lock on;
    proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
    proxy_cache_background_update on;
    proxy_ignore_headers Cache-Control Expires Set-Cookie;
    proxy_cache_bypass \$http_cache_control;
    location ~ ^/v1/tenants/vspc-main\\.([0-9a-f-]+)\$ { proxy_pass https://vspc/api/v3/infrastructure/sites/tenants/\$1; }
    location = /v1/tenants { proxy_pass https://vspc/api/v3/infrastructure/sites/tenants\$is_args\$args; }
    location ~ ^/v1/upstreams/vspc-main/api/(.+)\$ { proxy_pass https://vspc/api/v3/\$1\$is_args\$args; }
  }
}
NGINX
if [ -n "$SESSION" ]; then
  "$NGINX" -c "$OUT/nginx.conf" -p "$OUT" -e "$OUT/nginx-error.log"   # daemonizes into its own session
else
  "$NGINX" -c "$OUT/nginx.conf" -p "$OUT" -e "$OUT/nginx-error.log" &   # daemon off: stays in the script's session
  PIDS+=("$!")
fi
NG_URL="$SCHEME://127.0.0.1:$NG_PORT"
wait_for "$NG_URL/v1/tenants?limit=1"

# Both must answer the same tenant before anything is measured.
for url in "$GW_URL/v1/tenants/vspc-main.$TENANT" "$NG_URL/v1/tenants/vspc-main.$TENANT"; do
  code=$(curl -s -k -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$url")
  [ "$code" = 200 ] || { echo "$url answered $code" >&2; tail -n 5 "$OUT/nginx-error.log" "$OUT/gateway.log" >&2; exit 1; }
done

# What each sends for a hit (the client reads it all): head and body bytes.
for url in "$GW_URL/v1/tenants/vspc-main.$TENANT" "$NG_URL/v1/tenants/vspc-main.$TENANT"; do
  curl -s -k -o /dev/null -w "hit answer from $url: head %{size_header} B, body %{size_download} B\n" -H "X-API-Key: $KEY" "$url" >&2
done
[ -n "${SHOW_HEADS:-}" ] && for url in "$GW_URL" "$NG_URL"; do curl -s -k -D - -o /dev/null -H "X-API-Key: $KEY" "$url/v1/tenants/vspc-main.$TENANT" >&2; done

# wrk Lua: random tenants with no-cache (misses), or one fixed request.
python3 - "$OUT" "$KEY" <<'PY'
import sys
out, key = sys.argv[1], sys.argv[2]
ids = [l.strip() for l in open(f"{out}/ids.txt") if l.strip()][:1000]
table = ",".join(f'"{i}"' for i in ids)
open(f"{out}/miss.lua", "w").write(f'''
local ids = {{{table}}}
math.randomseed(os.time())
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/v1/tenants/vspc-main." .. id, {{["X-API-Key"] = "{key}", ["Cache-Control"] = "no-cache"}})
end
''')
open(f"{out}/auth.lua", "w").write(f'wrk.headers["X-API-Key"] = "{key}"\n')
PY

# CPU time (user + system, clock ticks) of processes: the gateway, or nginx's master and workers.
cpu_ticks() { local pid; for pid in "$@"; do cat "/proc/$pid/stat" 2>/dev/null || true; done | awk '{s += $14 + $15} END {print s + 0}'; }
# User and system time apart: "user system" (clock ticks).
cpu_split() { local pid; for pid in "$@"; do cat "/proc/$pid/stat" 2>/dev/null || true; done | awk '{u += $14; s += $15} END {print u + 0, s + 0}'; }
nginx_pids() { local master; master=$(cat "$OUT/nginx.pid"); echo "$master" $(pgrep -P "$master"); }
TICK=$(getconf CLK_TCK)
# CPU time (user + system, µs) a shell's finished children used, from the second line of `times`
# saved to a file (`times` must run in that shell, not in a pipe or a command substitution).
children_cpu_us() { tail -n 1 "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] } printf "%d", t * 1e6 }'; }
# DETAIL=1: per run, the user/system split of the servers' CPU per request; with perf, the system
# calls (read, write/writev, epoll_wait) and context switches per request, for the per-hit budget
# (the counter costs the servers CPU, so ratios are read without it: DETAIL_SYSCALLS=0 leaves it
# out); and the machine's idle, soft-interrupt and stolen shares during the run.
DETAIL=${DETAIL:-0}
: >"$OUT/details.txt"

# One wrk run: prints "req/s p50_ms p99_ms errors cpu_us_per_request" (the CPU of the processes
# named after the script).
run() {
  local url=$1 conns=$2 script=$3; shift 3
  local before after split_before split_after perf_pid=""
  before=$(cpu_ticks "$@")
  split_before=$(cpu_split "$@")
  if [ "$DETAIL" = 1 ] && [ "${DETAIL_SYSCALLS:-1}" = 1 ] && command -v perf >/dev/null; then
    local secs=${DURATION%s}
    perf stat -x, -e syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,context-switches,cpu-migrations \
      -p "$(echo "$@" | tr ' ' ',')" -o "$OUT/perf-stat.txt" -- sleep "$((secs - 1))" 2>/dev/null &
    perf_pid=$!
  fi
  local load_before load_after stat_before stat_after
  stat_before=$(head -n 1 /proc/stat)
  times >"$OUT/times.txt"
  load_before=$(children_cpu_us "$OUT/times.txt")
  wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency -s "$script" "$url" >"$OUT/wrk.txt" 2>&1 || true
  times >"$OUT/times.txt"
  load_after=$(children_cpu_us "$OUT/times.txt")
  after=$(cpu_ticks "$@")
  split_after=$(cpu_split "$@")
  stat_after=$(head -n 1 /proc/stat)
  [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null || true
  if [ "$DETAIL" = 1 ]; then
    python3 - "$OUT/wrk.txt" "$split_before" "$split_after" "$TICK" "$OUT/perf-stat.txt" "$url" "${DURATION%s}" "$((load_after - load_before))" "$stat_before" "$stat_after" >>"$OUT/details.txt" <<'PY'
import re, sys, os
text = open(sys.argv[1]).read()
ub, sb = map(int, sys.argv[2].split()); ua, sa = map(int, sys.argv[3].split()); hz = int(sys.argv[4])
count = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
line = f"{sys.argv[6]}: user {(ua-ub)/hz*1e6/count:.1f} µs, system {(sa-sb)/hz*1e6/count:.1f} µs per request; wrk {int(sys.argv[8])/count:.1f} µs per request"
# The whole machine over the run (/proc/stat's first line): the share of both cores idle, in soft
# interrupts and stolen by the hypervisor.
cpu_before = [int(x) for x in sys.argv[9].split()[1:]]; cpu_after = [int(x) for x in sys.argv[10].split()[1:]]
delta = [a - b for a, b in zip(cpu_after, cpu_before)]
total = sum(delta[:8]) or 1
line += f"; machine: idle {delta[3] / total:.1%}, softirq {delta[6] / total:.1%}, steal {delta[7] / total:.1%}"
if os.path.exists(sys.argv[5]):
    calls = {}
    for row in open(sys.argv[5]):
        parts = row.strip().split(",")
        if len(parts) > 2 and parts[0].isdigit():
            calls[parts[2].split("sys_enter_")[-1]] = int(parts[0])
    seconds = int(sys.argv[7]) - 1
    served = rps * seconds
    line += "; per request: " + ", ".join(f"{k} {v / served:.2f}" for k, v in calls.items() if v)
    os.remove(sys.argv[5])
print(line)
PY
  fi
  wrk_summary "$OUT/wrk.txt" "$((after - before))"
}
median() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

# Warm both caches (the tenant and the list page) before the hit runs.
for url in "$GW_URL" "$NG_URL"; do
  for _ in 1 2 3; do
    curl -s -k -o /dev/null -H "X-API-Key: $KEY" "$url/v1/tenants/vspc-main.$TENANT"
    curl -s -k -o /dev/null -H "X-API-Key: $KEY" "$url/v1/tenants?limit=500"
    curl -s -k -o /dev/null -H "X-API-Key: $KEY" "$url/v1/upstreams/vspc-main/api/infrastructure/sites/tenants/$TENANT"
  done
done

TABLE="| scenario | conns | gateway req/s | nginx req/s | ratio | gateway p50 / p99 ms | nginx p50 / p99 ms | p99 ratio | CPU µs/req gw / nginx | errors gw / nginx |
|---|---|---|---|---|---|---|---|---|---|"
for scenario in $SCENARIOS; do
  case $scenario in
    hit) path="/v1/tenants/vspc-main.$TENANT"; script="$OUT/auth.lua" ;;
    list) path="/v1/tenants?limit=500"; script="$OUT/auth.lua" ;;
    miss) path="/"; script="$OUT/miss.lua" ;;
    pass) path="/v1/upstreams/vspc-main/api/infrastructure/sites/tenants/$TENANT"; script="$OUT/auth.lua" ;;
  esac
  for conns in $CONNS; do
    gr=(); g50=(); g99=(); ge=0; gc=(); nr=(); n50=(); n99=(); ne=0; nc=()
    for _ in $(seq 1 "$ROUNDS"); do
      read -r a b c d e < <(run "$GW_URL$path" "$conns" "$script" "$GW_PID"); gr+=("$a"); g50+=("$b"); g99+=("$c"); ge=$((ge + d)); gc+=("$e")
      read -r a b c d e < <(run "$NG_URL$path" "$conns" "$script" $(nginx_pids)); nr+=("$a"); n50+=("$b"); n99+=("$c"); ne=$((ne + d)); nc+=("$e")
    done
    GR=$(median "${gr[@]}"); NR=$(median "${nr[@]}"); G99=$(median "${g99[@]}"); N99=$(median "${n99[@]}")
    RATIO=$(python3 -c "print(f'{$GR/$NR:.2f}' if $NR else 'n/a')")
    P99R=$(python3 -c "print(f'{$G99/$N99:.2f}' if $N99 else 'n/a')")
    LINE="| $scenario | $conns | ${GR%.*} | ${NR%.*} | $RATIO | $(median "${g50[@]}") / $G99 | $(median "${n50[@]}") / $N99 | $P99R | $(median "${gc[@]}") / $(median "${nc[@]}") | $ge / $ne |"
    echo "$LINE" >&2
    TABLE+="
$LINE"
  done
done

RSS=$(ps -o rss= -p "$GW_PID" | tr -d ' ')
HEADER="### Gateway vs nginx proxy_cache ($(date -u +%Y-%m-%d), $(nproc) cores, wrk -t$WRK_THREADS, $DURATION per run, median of $ROUNDS alternated runs; gateway threads ${GW_THREADS:-per core}, nginx workers ${NG_WORKERS:-auto}, $( [ -n "$SESSION" ] && echo "each server in its own session" || echo "both servers in wrk's session" ), hot path ${GW_HOTPATH:-true}, front end $SCHEME, access log $( [ "$ACCESS_LOG" = 1 ] && echo on || echo off ) on both; $GATEWAY_KIND)"
NOTE="Both in front of the same simulated VSPC (1,000 generated tenants, HTTPS with a verified CA, keep-alive). The gateway authenticates every request (API key) and checks roles; nginx checks nothing. Gateway RSS after the runs: $((RSS / 1024)) MiB. \`list\` is a page of 500 tenants; \`miss\` sends \`Cache-Control: no-cache\` for random tenants (every request goes upstream)."
[ -s "$OUT/details.txt" ] && { echo; cat "$OUT/details.txt"; } >&2
echo
echo "$HEADER"
echo
echo "$NOTE"
echo
echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
