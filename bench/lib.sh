# Shared by the bench/ scripts: release binaries, the simulator and the gateway as processes on
# loopback, cleaned up on exit. Source it after `set -euo pipefail` and `cd` to the repository.
OUT=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT

# Release binaries as they ship: scripts/build-release.sh (the Dockerfile's and CI's) links the
# Swift runtime statically, which makes every call into it (reference counting, exclusivity
# checks, its thread-local storage) a direct call rather than one through the dynamic linker's
# tables; a gateway linked against the shared runtime spends measurably more per hit. Both
# products are built with that one configuration (the two configurations share the build
# folder, and switching between them rebuilds everything). BENCH_SKIP_BUILD=1 measures what is
# built, whichever it is: the kind is printed, and scripts put it in their headers.
# RELEASE: the `swift build` options of that configuration, for every bench script.
RELEASE=(-c release --static-swift-stdlib)
build_release() {
  if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    echo "building release binaries (Swift runtime linked statically, as shipped)…" >&2
    swift build "${RELEASE[@]}" --product veeam-sim >/dev/null
    swift build "${RELEASE[@]}" --product veeam-gateway >/dev/null
  fi
  BIN=$(swift build "${RELEASE[@]}" --show-bin-path)
  GATEWAY_KIND=$(runtime_kind "${GATEWAY_BIN:-$BIN/veeam-gateway}")
  echo "gateway binary: ${GATEWAY_BIN:-$BIN/veeam-gateway}, $GATEWAY_KIND" >&2
}

# runtime_kind BINARY: how BINARY links the Swift runtime, for a benchmark's header.
runtime_kind() {
  if ldd "$1" 2>/dev/null | grep -q 'libswiftCore'; then echo "Swift runtime shared (not as shipped)"; else echo "Swift runtime static (as shipped)"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 200); do curl -s -k -o /dev/null "$1" && return 0; sleep 0.05; done; echo "not up: $1" >&2; exit 1; }

# start_sim [veeam-sim options…]: both products on free ports; sets SIM_PORT and SIM (VSPC's
# base URL), VB365_SIM (VB365's) and SIM_PID.
start_sim() {
  rm -f "$OUT/ports.json"
  "$BIN/veeam-sim" --vb365-port 0 --vspc-port 0 --write-ca "$OUT/ca.pem" --write-ports "$OUT/ports.json" --log-level error "$@" \
    >>"$OUT/sim.log" 2>&1 &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  for _ in $(seq 1 200); do [ -s "$OUT/ports.json" ] && break; sleep 0.05; done
  SIM_PORT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vspc'])" "$OUT/ports.json")
  SIM="https://127.0.0.1:$SIM_PORT"
  VB365_SIM="https://127.0.0.1:$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vb365'])" "$OUT/ports.json")"
}

# vb365_upstream: the simulator's VB365 as vb365-main with its three organization accounts (each
# its own, seed 000), passwords in files; YAML lines for gateway_yaml's first argument.
vb365_upstream() {
  printf 'Abc-Org-Pass-1' >"$OUT/abc.pw"; printf 'Contoso-Org-Pass-2' >"$OUT/contoso.pw"; printf 'Fabrikam-Org-Pass-3' >"$OUT/fabrikam.pw"
  cat <<YAML
  - name: vb365-main
    product: vb365
    baseURL: $VB365_SIM
    tls: { caFile: $OUT/ca.pem }
    timeouts: { connect: 2s, total: 10s }
    organizations:
      - { username: backup-admin@abc.onmicrosoft.com, password: { file: $OUT/abc.pw } }
      - { username: svc-backup@contoso.local, password: { file: $OUT/contoso.pw } }
      - { username: backup@fabrikam-hybrid.onmicrosoft.com, password: { file: $OUT/fabrikam.pw } }
YAML
}

# new_key: a random API key in KEY and its hash (by `veeam-gateway hash-key`) in KEY_HASH.
new_key() {
  KEY="bench-key-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  KEY_HASH=$(printf '%s' "$KEY" | "$BIN/veeam-gateway" hash-key | tail -1)
}

# gateway_yaml [extra upstream lines] [cache line]: a config with one PortalAdministrator caller
# (KEY) and the simulator's VSPC as vspc-main, printed to stdout; listens on GW_PORT.
gateway_yaml() {
  printf 'Gateway-Svc-Pass-1' >"$OUT/vspc.pw"
  cat <<YAML
listen: { host: 127.0.0.1, port: $GW_PORT, threads: ${GW_THREADS:-0}, hotPath: ${GW_HOTPATH:-true}${GW_TLS:+, tls: $GW_TLS} }
log: { level: ${GW_LOG_LEVEL:-warning} }
limits: { requestsPerSecond: 10000000, burst: 10000000 }
cache: ${2:-"{ maxBytes: 256MiB, ttl: 10m, staleWhileRevalidate: 10m, staleIfError: 10m }"}
callers:
  - id: bench
    keyHash: "$KEY_HASH"
    roles: [PortalAdministrator]
upstreams:
  - name: vspc-main
    product: vspc
    baseURL: $SIM
    tls: { caFile: $OUT/ca.pem }
    timeouts: { connect: 2s, total: ${GW_TOTAL_TIMEOUT:-10s} }
    account: { username: gateway-svc, password: { file: $OUT/vspc.pw } }
${1:-}
YAML
}

# rss PID: a process's resident set, KiB.
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk_run THREADS CONNS SCRIPT URL: one wrk run (DURATION) against the gateway (GW_PID), printed
# as wrk_summary prints it, with the gateway's CPU over the run.
wrk_run() {
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
  wrk -t"$1" -c"$2" -d"$DURATION" --latency -s "$3" "$4" >"$OUT/wrk.txt" 2>&1 || true
  after=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat")
  wrk_summary "$OUT/wrk.txt" "$((after - before))"
}

# start_gateway FILE: runs `veeam-gateway serve` on it; sets GW_URL and GW_PID.
# Servers run each in a session of its own, as a service manager starts them (nginx daemonizes
# into one by itself). With the kernel's autogroup scheduling (/proc/sys/kernel/
# sched_autogroup_enabled) a session is a scheduling group: a server left in the session of
# the script, and so of wrk, shares wrk's group, and its event loops are woken for a request or
# two at a time instead of batching them (docs/benchmarks.md, "The two-loop gap was the
# harness"). A comparison is only fair when both servers are placed alike. SHARED_SESSION=1
# keeps the gateway (and, in compare-nginx.sh, nginx) in the script's session, for a control run.
# `setsid` runs the server in place (same PID, so `$!` is the server's) because a background job
# of a non-interactive shell is not a process-group leader; with job control on (`set -m`) it
# would fork, and `$!` would be the exited wrapper's.
SESSION=setsid
[ "${SHARED_SESSION:-0}" = 1 ] && SESSION=""

start_gateway() {
  $SESSION "${GATEWAY_BIN:-$BIN/veeam-gateway}" serve --config "$1" >>"$OUT/gateway.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  if [ -n "${GW_TLS:-}" ]; then GW_URL="https://127.0.0.1:$GW_PORT"; else GW_URL="http://127.0.0.1:$GW_PORT"; fi
  wait_for "$GW_URL/healthz"
}

# sim_counter FIELD: a VSPC counter of the simulator (logins, resourceRequests, …).
sim_counter() {
  curl -s --cacert "$OUT/ca.pem" "$SIM/_sim/counters" | python3 -c "
import json, sys
c = json.load(sys.stdin)['vspc']
f = sys.argv[1]
print(sum(v for k, v in c['requests'].items() if not k.lower().endswith('/token')) if f == 'resourceRequests' else c[f])" "$1"
}

# wrk_summary FILE TICKS: "req/s p50_ms p99_ms errors cpu_us_per_request" from wrk --latency output
# in FILE, where TICKS is the CPU time (clock ticks) the measured processes used during the run.
wrk_summary() {
  python3 - "$1" "$2" "$(getconf CLK_TCK)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m: return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if sock: errors += sum(int(x) for x in sock.groups())
total = re.search(r"(\d+) requests in", text)
count = int(total.group(1)) if total else 0
cpu = ticks / hz * 1e6 / count if count else float("nan")
print(f"{float(rps.group(1)) if rps else 0:.0f} {ms('50'):.3f} {ms('99'):.3f} {errors} {cpu:.1f}")
PY
}

# start_miss_setup: for the one-connection miss benchmarks (miss-vs-direct.sh, miss-timeline.sh):
# the simulator, the two seed records (VSPC_TENANT, VB365_ORG), upstream tokens for requests sent
# straight to it (VSPC_TOKEN: the gateway's account; VB365_TOKEN: the organization's own), a
# gateway with both products (KEY, GW_URL, GW_PID), and wrk scripts: $OUT/gw.lua (a no-cache
# miss as an administrator), $OUT/vspc.lua and $OUT/vb365.lua (the tokens).
start_miss_setup() {
  build_release
  start_sim
  VSPC_TENANT=c386d34c-0ab6-4e13-b30a-67fcb05b83e4
  VB365_ORG=cbc52c37-df7f-4b03-98f3-036e7d4b3127
  VSPC_TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
  VB365_TOKEN=$(upstream_token "$VB365_SIM/v5/token" backup-admin@abc.onmicrosoft.com Abc-Org-Pass-1)
  new_key
  GW_PORT=$(free_port)
  gateway_yaml "$(vb365_upstream)" >"$OUT/gateway.yaml"
  start_gateway "$OUT/gateway.yaml"
  local path code
  for path in "/v1/tenants/vspc-main.$VSPC_TENANT" "/v1/tenants/vb365-main.$VB365_ORG"; do
    code=$(curl -s -k -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$GW_URL$path")
    [ "$code" = 200 ] || { echo "$path answered $code" >&2; tail -n 5 "$OUT/gateway.log" >&2; exit 1; }
  done
  printf 'wrk.headers["X-API-Key"] = "%s"\nwrk.headers["Cache-Control"] = "no-cache"\n' "$KEY" >"$OUT/gw.lua"
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$VSPC_TOKEN" >"$OUT/vspc.lua"
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$VB365_TOKEN" >"$OUT/vb365.lua"
}

# upstream_token URL USERNAME PASSWORD: an access token from the simulator's password grant
# (VSPC's /api/v3/token or VB365's /vN/token), for requests sent straight to it.
upstream_token() {
  curl -s --cacert "$OUT/ca.pem" "$1" -d grant_type=password --data-urlencode "username=$2" --data-urlencode "password=$3" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['access_token'])"
}

# two_product_hits GATEWAY_URL TENANT: sets HIT_PATHS to one VSPC cloud tenant (TENANT) and every
# VB365 organization the gateway lists (each read with its own account), and writes
# $OUT/hit.lua, a wrk script asking for them in turn.
two_product_hits() {
  local url=$1 tenant=$2 id
  HIT_PATHS="/v1/tenants/vspc-main.$tenant"
  for id in $(curl -s -H "X-API-Key: $KEY" "$url/v1/tenants?product=vb365" | python3 -c "import json,sys; print(' '.join(t['id'] for t in json.load(sys.stdin)['data']))"); do
    HIT_PATHS+=" /v1/tenants/$id"
  done
  python3 - "$OUT/hit.lua" $HIT_PATHS <<'PY'
import sys
table = ",".join(f'"{p}"' for p in sys.argv[2:])
open(sys.argv[1], "w").write(f"""
local paths = {{{table}}}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
""")
PY
}
