#!/usr/bin/env bash
# Benchmark (not a test): customers over an estate of the size a service provider reaches.
# 10,000 VSPC companies, 20,000 VB365 organizations over 4 VB365 servers (5,000 each, every one
# read with its own account, seed 000) and 30,000 cloud tenants, joined by one gateway:
#
#   bash bench/estate.sh customers            # prints the table; --write appends it to docs/benchmarks.md
#
# Four simulator processes: the first plays VSPC (which manages the 4 VB365 servers) and VB365
# server 0, the others VB365 servers 1-3 (`--vb365-servers 4 --vb365-shard N`). Each VB365
# upstream says which VSPC server it is (`vspcServer`).
#
# Measured: the tenants' lists from empty caches (`GET /v1/tenants?limit=1`: 30,000 tenants in
# pages of 500, 20,000 organization logins and reads), then the join with the lists cached
# (`GET /v1/customers`: VSPC's four collections and the join), RSS before and after each (what a
# customer costs), the whole cold join again after a purge (sessions held), and, with the join
# cached, latency of random pages of 100 customers and of random single customers.
#
# Environment: DURATION (default 10s), BENCH_SKIP_BUILD.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
WRITE=${1:-}
source bench/lib.sh
command -v wrk >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"; $SUDO apt-get install -y -q wrk; }
build_release
ORGS=20000 TENANTS=30000 COMPANIES=10000 SERVERS=4
ESTATE=(--generate "$ORGS" --generate-tenants "$TENANTS" --generate-companies "$COMPANIES" --vb365-servers "$SERVERS" --token-lifetime 86400)
start_sim "${ESTATE[@]}" --vb365-shard 0
VB365_URLS=("$VB365_SIM")
cp "$OUT/ca.pem" "$OUT/ca-0.pem"
for shard in $(seq 1 $((SERVERS - 1))); do
  "$BIN/veeam-sim" --no-vspc --vb365-port 0 --write-ports "$OUT/ports-$shard.json" --log-level error "${ESTATE[@]}" --vb365-shard "$shard" \
    --write-ca "$OUT/ca-$shard.pem" >>"$OUT/sim.log" 2>&1 &
  PIDS+=("$!")
done
for shard in $(seq 1 $((SERVERS - 1))); do
  for _ in $(seq 1 400); do [ -s "$OUT/ports-$shard.json" ] && break; sleep 0.05; done
  VB365_URLS+=("https://127.0.0.1:$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vb365'])" "$OUT/ports-$shard.json")")
done
new_key
GW_PORT=$(free_port)
mkdir -p "$OUT/pw"
{
  GW_TOTAL_TIMEOUT=120s gateway_yaml "" "{ maxBytes: 1GiB, ttl: 10m, staleWhileRevalidate: 10m, staleIfError: 10m, list: { ttl: 10m } }"
  for shard in $(seq 0 $((SERVERS - 1))); do
    uid=$(printf 'b3650000-5e4f-4a3b-9c2d-%012x' $((0x1e0f00000365 + shard)))
    cat <<YAML
  - name: vb365-$shard
    product: vb365
    baseURL: ${VB365_URLS[$shard]}
    tls: { caFile: $OUT/ca-$shard.pem }
    timeouts: { connect: 2s, total: 120s }
    vspcServer: { upstream: vspc-main, serverUid: $uid }
    organizations:
YAML
    for n in $(seq $((shard + 1)) "$SERVERS" "$ORGS"); do
      org=$(printf '%05d' "$n")
      printf 'Org-%s-Pass' "$org" >"$OUT/pw/$org"
      echo "      - { username: backup@org-$org.onmicrosoft.com, password: { file: $OUT/pw/$org } }"
    done
  done
} >"$OUT/gateway.yaml"
start_gateway "$OUT/gateway.yaml"
timed() { curl -s -o "$OUT/answer.json" -w '%{http_code} %{time_total}\n' -H "X-API-Key: $KEY" "$@"; }
sleep 1
RSS0=$(rss "$GW_PID")

read -r CODE LISTS < <(timed "$GW_URL/v1/tenants?limit=1")
[ "$CODE" = 200 ] || { echo "the cold list answered $CODE" >&2; head -c 600 "$OUT/answer.json" >&2; exit 1; }
sleep 1
RSS1=$(rss "$GW_PID")
read -r CODE JOIN < <(timed "$GW_URL/v1/customers?limit=100")
[ "$CODE" = 200 ] || { echo "the join answered $CODE" >&2; head -c 600 "$OUT/answer.json" >&2; exit 1; }
python3 - "$OUT/answer.json" >"$OUT/meta.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = [s for s in d["meta"]["sources"] if s["status"] != "ok"]
orgs = sum(len(c["organizations"]) for c in d["data"])
print(d["meta"]["total"], len(bad), orgs)
PY
read -r CUSTOMERS FAILED PAGE_ORGS <"$OUT/meta.txt"
[ "$FAILED" = 0 ] || { echo "$FAILED sources failed" >&2; exit 1; }
curl -s -o "$OUT/drift.json" -H "X-API-Key: $KEY" "$GW_URL/v1/customers/drift"
DRIFT=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['data'][0]; print(d['count'], ' '.join(f'{k}={len(v)}' for k, v in sorted(d['drift'].items())))" "$OUT/drift.json")
sleep 1
RSS2=$(rss "$GW_PID")
PER=$(python3 -c "print(round(($RSS2 - $RSS1) * 1024 / $CUSTOMERS))")

# The whole join again from empty caches, the upstream sessions held.
curl -s -o /dev/null -X DELETE -H "X-API-Key: $KEY" "$GW_URL/v1/cache"
read -r CODE COLD < <(timed "$GW_URL/v1/customers?limit=100")
[ "$CODE" = 200 ] || { echo "the cold join answered $CODE" >&2; exit 1; }

cat >"$OUT/pages.lua" <<LUA
wrk.headers["X-API-Key"] = "$KEY"
math.randomseed(os.time())
request = function() return wrk.format("GET", "/v1/customers?limit=100&offset=" .. (100 * math.random(0, $((CUSTOMERS / 100 - 1))))) end
LUA
cat >"$OUT/one.lua" <<LUA
wrk.headers["X-API-Key"] = "$KEY"
math.randomseed(os.time() + 1)
request = function() return wrk.format("GET", string.format("/v1/customers/vspc-main.20000000-0000-4000-8000-%012d", math.random(1, $COMPANIES))) end
LUA
run() { wrk_run 1 8 "$1" "$GW_URL/v1/customers"; }
read -r R1 P50A P99A E1 C1 < <(run "$OUT/pages.lua")
read -r R2 P50B P99B E2 C2 < <(run "$OUT/one.lua")
RSS3=$(rss "$GW_PID")

HEADER="### Customers over an estate ($(date -u +%Y-%m-%d), $(nproc) cores, release build, $(git rev-parse --short HEAD))"
NOTE="$COMPANIES VSPC companies, $ORGS VB365 organizations over $SERVERS VB365 servers (four simulator processes; each VB365 upstream reads its 5,000 organizations each with its own account) and $TENANTS cloud tenants; one VSPC upstream. Lists: \`GET /v1/tenants?limit=1\` from empty caches. Join: \`GET /v1/customers\` with the lists cached (VSPC's companies, VB365 servers, organizations and mappings in pages of 500, then the join). Cold join: the same after \`DELETE /v1/cache\`, upstream sessions held. RSS per customer: the join's growth over the customers. Latency: wrk -t1 -c8, $DURATION per run: random pages of 100 customers, random single customers."
TABLE="| customers | drift (count, by kind) | lists cold | join (lists cached) | cold join | RSS before / lists / join / after the runs | RSS per customer | page p50 / p99 ms (req/s) | one customer p50 / p99 ms (req/s) | CPU µs per request page / one | non-2xx |
|---|---|---|---|---|---|---|---|---|---|---|
| $CUSTOMERS | $DRIFT | ${LISTS} s | ${JOIN} s | ${COLD} s | $((RSS0 / 1024)) / $((RSS1 / 1024)) / $((RSS2 / 1024)) / $((RSS3 / 1024)) MiB | $PER bytes | $P50A / $P99A ($R1) | $P50B / $P99B ($R2) | $C1 / $C2 | $((E1 + E2)) |"
echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$NOTE"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
