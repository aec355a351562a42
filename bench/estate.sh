#!/usr/bin/env bash
# Benchmark (not a test): the size a real estate reaches. Ten upstreams with 100,040 tenants in
# all — eight VSPC upstreams of 12,505 cloud tenants each (one simulator, --generate 12500 plus its
# fixtures) and two VB365 upstreams of 20 organizations each (each read with its own account,
# seed 000) — behind one gateway with its default per-upstream limits (4 concurrent requests).
#
#   bash bench/estate.sh            # prints the table; --write appends it to docs/benchmarks.md
#   bash bench/estate.sh customers  # customers over 10,000 companies: bench/estate-customers.sh
#
# Measured: the cold fill (`GET /v1/tenants?limit=500` with empty caches: every upstream's list
# read at once, VSPC in pages of 500, VB365 one `GET /vN/Organization` per account), RSS before
# and after (what the cache holds per tenant), and list latency for a full page (500) once
# cached: the first page repeated (its rendering kept) and random pages over all 100,040
# (each page rendered once, then kept).
#
# Environment: DURATION (default 10s), BENCH_SKIP_BUILD.
set -euo pipefail
cd "$(dirname "$0")/.."
# `bash bench/estate.sh customers [--write]`: customers over 10,000 companies (estate-customers.sh).
if [ "${1:-}" = customers ]; then shift; exec bash bench/estate-customers.sh "$@"; fi
DURATION=${DURATION:-10s}
WRITE=${1:-}
source bench/lib.sh
command -v wrk >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"; $SUDO apt-get install -y -q wrk; }
build_release
start_sim --generate 12500 --token-lifetime 86400
new_key
GW_PORT=$(free_port)
printf 'Gateway-Svc-Pass-1' >"$OUT/vspc.pw"
{
  cat <<YAML
listen: { host: 127.0.0.1, port: $GW_PORT }
log: { level: warning }
limits: { requestsPerSecond: 10000000, burst: 10000000 }
cache: { maxBytes: 1GiB, ttl: 10m, staleWhileRevalidate: 10m, staleIfError: 10m, list: { ttl: 10m } }
callers:
  - id: bench
    keyHash: "$KEY_HASH"
    roles: [PortalAdministrator]
upstreams:
YAML
  for i in $(seq 1 8); do
    cat <<YAML
  - name: vspc-$i
    product: vspc
    baseURL: $SIM
    tls: { caFile: $OUT/ca.pem }
    timeouts: { connect: 2s, total: 60s }
    account: { username: gateway-svc, password: { file: $OUT/vspc.pw } }
YAML
  done
  for i in 1 2; do
    cat <<YAML
  - name: vb365-$i
    product: vb365
    baseURL: $VB365_SIM
    tls: { caFile: $OUT/ca.pem }
    timeouts: { connect: 2s, total: 60s }
    organizations:
YAML
    for n in $(seq $(((i - 1) * 20 + 1)) $((i * 20))); do
      org=$(printf '%05d' "$n")
      printf 'Org-%s-Pass' "$org" >"$OUT/org-$org.pw"
      echo "      - { username: backup@org-$org.onmicrosoft.com, password: { file: $OUT/org-$org.pw } }"
    done
  done
} >"$OUT/gateway.yaml"
start_gateway "$OUT/gateway.yaml"
sleep 1
RSS0=$(rss "$GW_PID")

curl -s -o "$OUT/cold.json" -w '%{http_code} %{time_total}\n' -H "X-API-Key: $KEY" "$GW_URL/v1/tenants?limit=500" >"$OUT/cold.txt"
read -r CODE COLD <"$OUT/cold.txt"
[ "$CODE" = 200 ] || { echo "cold list answered $CODE" >&2; head -c 400 "$OUT/cold.json" >&2; exit 1; }
python3 - "$OUT/cold.json" >"$OUT/meta.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = [s for s in d["meta"]["sources"] if s["status"] != "ok"]
print(d["meta"]["total"], len(d["meta"]["sources"]), len(bad))
PY
read -r TOTAL SOURCES FAILED <"$OUT/meta.txt"
[ "$FAILED" = 0 ] || { echo "$FAILED sources failed" >&2; exit 1; }
# The same list again: a hit (its rendering was kept). Then RSS with everything held.
curl -s -o /dev/null -H "X-API-Key: $KEY" "$GW_URL/v1/tenants?limit=500"
sleep 1
RSS1=$(rss "$GW_PID")

printf 'wrk.headers["X-API-Key"] = "%s"\n' "$KEY" >"$OUT/first.lua"
cat >"$OUT/random.lua" <<LUA
wrk.headers["X-API-Key"] = "$KEY"
math.randomseed(os.time())
request = function() return wrk.format("GET", "/v1/tenants?limit=500&offset=" .. (500 * math.random(0, $((TOTAL / 500))))) end
LUA
run() { wrk_run 2 16 "$1" "$GW_URL/v1/tenants?limit=500"; }
read -r R1 P50A P99A E1 C1 < <(run "$OUT/first.lua")
read -r R2 P50B P99B E2 C2 < <(run "$OUT/random.lua")
RSS2=$(rss "$GW_PID")
PER=$(python3 -c "print(round(($RSS1 - $RSS0) * 1024 / $TOTAL))")

HEADER="### An estate of 100,000 tenants ($(date -u +%Y-%m-%d), $(nproc) cores, release build)"
NOTE="Ten upstreams behind one gateway: 8 VSPC (12,505 cloud tenants each, pages of 500, read one after the other) and 2 VB365 (20 organizations each, one account per organization), default per-upstream concurrency (4). \`cache.maxBytes: 1GiB\`: a list entry counts 1 KiB per tenant and an entry may take a tenth of the bound, so the default 64 MiB would not keep a 12,505-tenant list (it would be served, not stored). Latency: wrk -t2 -c16, $DURATION per run, pages of 500."
TABLE="| tenants | sources | cold fill (all 10 at once) | RSS before / after / after the runs | RSS per cached tenant | first page p50 / p99 ms (req/s) | random pages p50 / p99 ms (req/s) | CPU µs per request first / random | non-2xx |
|---|---|---|---|---|---|---|---|---|
| $TOTAL | $SOURCES | ${COLD} s | $((RSS0 / 1024)) / $((RSS1 / 1024)) / $((RSS2 / 1024)) MiB | $PER bytes | $P50A / $P99A ($R1) | $P50B / $P99B ($R2) | $C1 / $C2 | $((E1 + E2)) |"
echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
