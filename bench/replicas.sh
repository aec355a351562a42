#!/usr/bin/env bash
# Benchmark (not a test): 1 and 3 replicas behind haproxy (round-robin), without and with the
# shared tier (one redis-server), both products; and what the shared level costs a local miss.
#
#   bash bench/replicas.sh            # prints the tables; --write appends them to docs/benchmarks.md
#
# Part 1, behind haproxy (keep-alive both sides), for each set-up — 1 replica; 3 replicas on their
# own; 3 replicas sharing Redis — on a fresh simulator (1,000 generated VSPC tenants and the three
# VB365 organizations, each read with its own account) and an empty Redis:
#   cold  wrk with random tenants of the 1,003 for DURATION: the first request of a tenant fills it;
#         the simulator counts what reached it (tenant reads, organization reads, logins)
#   hot   the same again: every answer a cache hit
# Part 2, one gateway, one connection (wrk -t1 -c1), median of ROUNDS alternated runs:
#   local hit; local miss answered by the shared level (cache.maxBytes 0: nothing stored locally,
#   so every request asks Redis); `no-cache` miss without and with the shared tier (with it, a
#   miss also claims the key and stores the answer for the other replicas).
#
# Environment: DURATION (default 10s), CONNS (default 64), ROUNDS (default 3), BENCH_SKIP_BUILD.
# Needs haproxy, redis-server and wrk (Debian packages; installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
WRITE=${1:-}
source bench/lib.sh

if ! command -v haproxy >/dev/null || ! command -v wrk >/dev/null || ! command -v redis-server >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q haproxy wrk redis-server
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
build_release
new_key
export VGW_BENCH_SHARED_KEY="bench-shared-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --protected-mode no >"$OUT/redis.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
SHARED="shared: { redis: { url: 'redis://127.0.0.1:$REDIS_PORT', keyPrefix: 'bench:', encryptionKey: { env: VGW_BENCH_SHARED_KEY } } }"

# counters: "vspc_tenant_reads vb365_org_reads logins" of the simulator now.
counters() {
  curl -s --cacert "$OUT/ca.pem" "$SIM/_sim/counters" | python3 -c "
import json, sys
c = json.load(sys.stdin)
vspc = sum(v for k, v in c['vspc']['requests'].items() if '/tenants/' in k)
vb = sum(v for k, v in c['vb365']['requests'].items() if k.endswith('/Organization'))
print(vspc, vb, c['vspc']['logins'] + c['vb365']['logins'])"
}

# replicas N SHARED_LINE: N gateways (ports in GW_PORTS, pids in GW_PIDS) on one config each.
replicas() {
  GW_PORTS=(); GW_PIDS=()
  for i in $(seq 1 "$1"); do
    GW_PORT=$(free_port)
    { gateway_yaml "$(vb365_upstream)"; echo "$2"; } >"$OUT/gateway-$i.yaml"
    start_gateway "$OUT/gateway-$i.yaml"
    GW_PORTS+=("$GW_PORT"); GW_PIDS+=("$GW_PID")
  done
}
stop_replicas() { for pid in "${GW_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }

# haproxy_in_front: round-robin over GW_PORTS on LB_PORT.
haproxy_in_front() {
  LB_PORT=$(free_port)
  {
    printf 'global\n  maxconn 4000\ndefaults\n  mode http\n  option http-keep-alive\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n'
    printf 'frontend fe\n  bind 127.0.0.1:%s\n  default_backend gateways\nbackend gateways\n  balance roundrobin\n  http-reuse always\n' "$LB_PORT"
    local i=0
    for port in "${GW_PORTS[@]}"; do i=$((i + 1)); printf '  server g%s 127.0.0.1:%s\n' "$i" "$port"; done
  } >"$OUT/haproxy.cfg"
  "$HAPROXY" -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
  LB_PID=$!
  PIDS+=("$LB_PID")
  wait_for "http://127.0.0.1:$LB_PORT/healthz"
}

cpu_ticks() { local t=0; for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$t"; }

VB365_ORGS="cbc52c37-df7f-4b03-98f3-036e7d4b3127"
PART1="| set-up | run | req/s | p50 / p99 ms | non-2xx | VSPC tenant reads | VB365 organization reads | logins since start (both products) | gateways' CPU µs per request |
|---|---|---|---|---|---|---|---|---|"
for setup in "1 replica" "3 replicas, each on its own" "3 replicas sharing Redis"; do
  start_sim --generate 1000 --token-lifetime 86400
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  # The tenant ids: VSPC's 1,000 generated (and fixtures), VB365's organizations of the three accounts.
  TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
  for offset in 0 500 1000; do
    curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=500&offset=$offset" >"$OUT/p$offset.json"
  done
  python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ids = ["vspc-main." + t["instanceUid"] for p in ("p0", "p500", "p1000") for t in json.load(open(f"{out}/p{p[1:]}.json"))["data"]]
orgs = ["vb365-main.cbc52c37-df7f-4b03-98f3-036e7d4b3127", "vb365-main.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11", "vb365-main.9a7c1e40-2f6b-4d8e-b3a5-0c4d2e6f8a19"]
open(f"{out}/ids.lua", "w").write("ids = {" + ",".join(f'"{i}"' for i in ids + orgs) + "}\n")
PY
  case "$setup" in
    "1 replica") replicas 1 "" ;;
    "3 replicas, each on its own") replicas 3 "" ;;
    *) replicas 3 "$SHARED" ;;
  esac
  haproxy_in_front
  cat >"$OUT/random.lua" <<LUA
dofile("$OUT/ids.lua")
math.randomseed(os.time())
wrk.headers["X-API-Key"] = "$KEY"
request = function() return wrk.format("GET", "/v1/tenants/" .. ids[math.random(#ids)]) end
LUA
  for run in cold hot; do
    read -r v0 o0 l0 < <(counters)
    before=$(cpu_ticks "${GW_PIDS[@]}")
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$OUT/random.lua" "http://127.0.0.1:$LB_PORT" >"$OUT/wrk.txt" 2>&1 || true
    after=$(cpu_ticks "${GW_PIDS[@]}")
    read -r rps p50 p99 errors cpu < <(wrk_summary "$OUT/wrk.txt" "$((after - before))")
    read -r v1 o1 l1 < <(counters)
    LINE="| $setup | $run | $rps | $p50 / $p99 | $errors | $((v1 - v0)) | $((o1 - o0)) | $l1 | $cpu |"
    if [ "$setup" = "3 replicas sharing Redis" ] && [ "$run" = cold ]; then
      KEYS_HELD=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'bench:cache:*' | grep -c '}$' || true)
      USED=$(redis-cli -p "$REDIS_PORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
      REDIS_NOTE="After the cold run Redis held $KEYS_HELD cached values in $((USED / 1024)) KiB (used_memory, sessions and locks included): $((USED / (KEYS_HELD > 0 ? KEYS_HELD : 1))) bytes per value."
    fi
    echo "$LINE" >&2
    PART1+="
$LINE"
  done
  stop_replicas
  kill "$LB_PID" "$SIM_PID" 2>/dev/null || true
  wait "$LB_PID" "$SIM_PID" 2>/dev/null || true
done

# Part 2: one gateway per configuration, straight (no haproxy), one connection.
start_sim --token-lifetime 86400
VSPC_PATH="/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"
VB365_PATH="/v1/tenants/vb365-main.$VB365_ORGS"
replicas 1 ""
PLAIN_PORT=$GW_PORT; PLAIN_PID=$GW_PID
replicas 1 "$SHARED"
SHARED_PORT=$GW_PORT; SHARED_PID=$GW_PID
GW_PORT=$(free_port)
{ gateway_yaml "$(vb365_upstream)" "{ maxBytes: 0, ttl: 10m }"; echo "$SHARED"; } >"$OUT/gateway-nolocal.yaml"
start_gateway "$OUT/gateway-nolocal.yaml"
NOLOCAL_PORT=$GW_PORT; NOLOCAL_PID=$GW_PID
for port in "$PLAIN_PORT" "$SHARED_PORT" "$NOLOCAL_PORT"; do
  for path in "$VSPC_PATH" "$VB365_PATH"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "http://127.0.0.1:$port$path")
    [ "$code" = 200 ] || { echo "$port$path answered $code" >&2; exit 1; }
  done
done
printf 'wrk.headers["X-API-Key"] = "%s"\n' "$KEY" >"$OUT/hit.lua"
printf 'wrk.headers["X-API-Key"] = "%s"\nwrk.headers["Cache-Control"] = "no-cache"\n' "$KEY" >"$OUT/bypass.lua"
run1() {
  local port=$1 path=$2 script=$3 pid=$4 before after
  before=$(cpu_ticks "$pid")
  wrk -t1 -c1 -d"$DURATION" --latency -s "$script" "http://127.0.0.1:$port$path" >"$OUT/wrk1.txt" 2>&1 || true
  after=$(cpu_ticks "$pid")
  wrk_summary "$OUT/wrk1.txt" "$((after - before))"
}
median() { python3 -c "import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]), 3))" "$@"; }
PART2="| product | local hit p50 / p99 ms | local miss, shared hit p50 / p99 ms | no-cache miss p50 / p99 ms | no-cache miss with the shared tier p50 / p99 ms | added by the shared tier to a no-cache miss p50 / p99 ms |
|---|---|---|---|---|---|"
for product in vspc vb365; do
  path=$VSPC_PATH; [ "$product" = vb365 ] && path=$VB365_PATH
  h50=(); h99=(); s50=(); s99=(); m50=(); m99=(); t50=(); t99=()
  for _ in $(seq 1 "$ROUNDS"); do
    read -r _ a b _ _ < <(run1 "$PLAIN_PORT" "$path" "$OUT/hit.lua" "$PLAIN_PID"); h50+=("$a"); h99+=("$b")
    read -r _ a b _ _ < <(run1 "$NOLOCAL_PORT" "$path" "$OUT/hit.lua" "$NOLOCAL_PID"); s50+=("$a"); s99+=("$b")
    read -r _ a b _ _ < <(run1 "$PLAIN_PORT" "$path" "$OUT/bypass.lua" "$PLAIN_PID"); m50+=("$a"); m99+=("$b")
    read -r _ a b _ _ < <(run1 "$SHARED_PORT" "$path" "$OUT/bypass.lua" "$SHARED_PID"); t50+=("$a"); t99+=("$b")
  done
  M50=$(median "${m50[@]}"); M99=$(median "${m99[@]}"); T50=$(median "${t50[@]}"); T99=$(median "${t99[@]}")
  LINE="| $product | $(median "${h50[@]}") / $(median "${h99[@]}") | $(median "${s50[@]}") / $(median "${s99[@]}") | $M50 / $M99 | $T50 / $T99 | $(python3 -c "print(f'{$T50 - $M50:.3f} / {$T99 - $M99:.3f}')") |"
  echo "$LINE" >&2
  PART2+="
$LINE"
done

HEADER="### Replicas behind haproxy, and the shared tier ($(date -u +%Y-%m-%d), $(nproc) cores, release builds, Redis $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p'), haproxy $("$HAPROXY" -v | sed -n '1s/.*version \([0-9.]*\).*/\1/p'))"
NOTE1="Part 1: wrk -t2 -c$CONNS for $DURATION per run through haproxy (round-robin, keep-alive), random tenants of 1,000 VSPC tenants and 3 VB365 organizations; a fresh simulator and an empty Redis per set-up. *cold* starts with empty caches; *hot* follows it. Reads are what reached the simulator during the run; logins are counted from the replicas' start (they log in at start for their readiness probes, before the first run). Everything (wrk, haproxy, the replicas, the simulator, Redis) shares the machine's cores."
NOTE2="Part 2: one gateway straight, wrk -t1 -c1, $DURATION per run, median of $ROUNDS alternated runs. *Local miss, shared hit*: \`cache.maxBytes: 0\` stores nothing locally, so every request asks Redis (one Lua script round trip, AES-GCM open, JSON decode of the tenant). *No-cache miss with the shared tier*: the claim (one script), the upstream read, the store and wake-up (one script)."
NOTE1="$NOTE1 ${REDIS_NOTE:-}"
echo; echo "$HEADER"; echo; echo "$NOTE1"; echo; echo "$PART1"; echo; echo "$NOTE2"; echo; echo "$PART2"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$NOTE1"; echo; echo "$PART1"; echo; echo "$NOTE2"; echo; echo "$PART2"; } >>docs/benchmarks.md
fi
