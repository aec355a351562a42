#!/usr/bin/env bash
# Soak (not a test): the release gateway under mixed load for DURATION (default 10m), bounded.
#   load    wrk, 32 connections, both products: 55% hits on 20 hot VSPC tenants, 27% random
#           tenants of 1,003 (misses and evictions: the cache is bounded at 1.5 MiB, smaller than
#           the tenants plus the 1 MB list), 9% VB365 organizations (the three accounts, each
#           read with its own), 9% list pages of 100 (VB365 and VSPC together)
#   faults  on both products the simulator answers 3% server errors, 2% malformed JSON, 2%
#           resets; tokens live 60 s (the gateway refreshes them); every minute the gateway's
#           tokens are revoked (re-login on 401); from 40% to 50% of the run every upstream
#           request fails (stale-if-error)
#   prints  every 30 s: RSS, cache bytes against the bound, list renderings, logins, refreshes;
#           at the end: answers by status, errors (5xx, socket errors), RSS first/last/max.
#
#   bash bench/soak.sh                 # DURATION=10m by default; --write appends to docs/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10m}
WRITE=${1:-}
SECONDS_TOTAL=$(python3 -c "import sys,re; m=re.fullmatch(r'(\d+)(s|m)', sys.argv[1]); print(int(m.group(1))*(60 if m.group(2)=='m' else 1))" "$DURATION")
source bench/lib.sh
build_release

start_sim --generate 1000 --token-lifetime 60 --error-rate 0.03 --malformed-rate 0.02 --reset-rate 0.02
new_key
GW_PORT=$(free_port)
MAX_BYTES=$((1536 * 1024))
gateway_yaml "    maxConcurrentRequests: 16
    maxQueuedRequests: 1000
$(vb365_upstream)" "{ maxBytes: 1536KiB, maxEntryShare: 0.7, ttl: 5s, staleWhileRevalidate: 5s, staleIfError: 2m }" >"$OUT/gateway.yaml"
start_gateway "$OUT/gateway.yaml"

# Tenant ids from the simulator itself (faults off while reading them).
curl -s -X PUT --cacert "$OUT/ca.pem" "$SIM/_sim/faults/vspc" -H 'Content-Type: application/json' -d '{}' >/dev/null
TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
for offset in 0 500 1000; do
  curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=500&offset=$offset" |
    python3 -c "import json,sys; print('\n'.join('vspc-main.' + t['instanceUid'] for t in json.load(sys.stdin)['data']))" >>"$OUT/ids.txt"
done
for product in vspc vb365; do
  curl -s -X PUT --cacert "$OUT/ca.pem" "$SIM/_sim/faults/$product" -H 'Content-Type: application/json' -d '{"errorRate":0.03,"malformedRate":0.02,"resetRate":0.02}' >/dev/null
done
python3 - "$OUT" "$KEY" <<'PY'
import sys
out, key = sys.argv[1], sys.argv[2]
ids = [l.strip() for l in open(f"{out}/ids.txt") if l.strip()]
table = ",".join(f'"{i}"' for i in ids)
open(f"{out}/soak.lua", "w").write(f'''
local ids = {{{table}}}
local orgs = {{"vb365-main.cbc52c37-df7f-4b03-98f3-036e7d4b3127", "vb365-main.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11", "vb365-main.9a7c1e40-2f6b-4d8e-b3a5-0c4d2e6f8a19"}}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) s2 = 0; s3 = 0; s4 = 0; s5 = 0; math.randomseed(os.time() + math.random(1000)) end
function request()
  local r = math.random(100)
  local path
  if r <= 55 then path = "/v1/tenants/" .. ids[math.random(20)]
  elseif r <= 82 then path = "/v1/tenants/" .. ids[math.random(#ids)]
  elseif r <= 91 then path = "/v1/tenants/" .. orgs[math.random(3)]
  else path = "/v1/tenants?limit=100&offset=" .. (math.random(10) - 1) * 100 end
  return wrk.format("GET", path, {{["X-API-Key"] = "{key}"}})
end
function response(status, headers, body)
  if status < 300 then s2 = s2 + 1 elseif status < 400 then s3 = s3 + 1 elseif status < 500 then s4 = s4 + 1 else s5 = s5 + 1 end
end
function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("s2"); b = b + t:get("s3"); c = c + t:get("s4"); d = d + t:get("s5") end
  io.write(string.format("STATUS 2xx=%d 3xx=%d 4xx=%d 5xx=%d\\n", a, b, c, d))
end
''')
PY

metric() { curl -s "$GW_URL/metrics" | awk -v name="$1" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { printf "%d", sum }'; }
wrk -t2 -c32 -d"${SECONDS_TOTAL}s" --timeout 15s --latency -s "$OUT/soak.lua" "$GW_URL" >"$OUT/wrk.txt" 2>&1 &
WRK_PID=$!
SAMPLES="| t (s) | RSS MiB | cache bytes / bound | list renderings bytes | entries | logins | refreshes | phase |
|---|---|---|---|---|---|---|---|"
RSS_ALL=()
t=0
OUTAGE_FROM=$((SECONDS_TOTAL * 4 / 10)); OUTAGE_TO=$((SECONDS_TOTAL * 5 / 10))
phase=normal
while kill -0 "$WRK_PID" 2>/dev/null && [ "$t" -lt "$SECONDS_TOTAL" ]; do
  for _ in $(seq 1 30); do
    sleep 1; t=$((t + 1))
    if [ "$t" -eq "$OUTAGE_FROM" ]; then
      for product in vspc vb365; do curl -s -X PUT --cacert "$OUT/ca.pem" "$SIM/_sim/faults/$product" -H 'Content-Type: application/json' -d '{"errorRate":1}' >/dev/null; done; phase=outage
    elif [ "$t" -eq "$OUTAGE_TO" ]; then
      for product in vspc vb365; do curl -s -X PUT --cacert "$OUT/ca.pem" "$SIM/_sim/faults/$product" -H 'Content-Type: application/json' -d '{"errorRate":0.03,"malformedRate":0.02,"resetRate":0.02}' >/dev/null; done; phase=normal
    fi
    if [ $((t % 60)) -eq 0 ]; then curl -s -X POST --cacert "$OUT/ca.pem" "$SIM/_sim/revoke" >/dev/null; fi  # both products
    [ "$t" -ge "$SECONDS_TOTAL" ] && break
  done
  RSS=$(( $(ps -o rss= -p "$GW_PID" | tr -d ' ') / 1024 ))
  RSS_ALL+=("$RSS")
  LINE="| $t | $RSS | $(metric veeam_gateway_cache_bytes) / $MAX_BYTES | $(metric veeam_gateway_list_renderings_bytes) | $(metric veeam_gateway_cache_entries) | $(metric veeam_gateway_token_logins_total) | $(metric veeam_gateway_token_refreshes_total) | $phase |"
  echo "$LINE" >&2
  SAMPLES+="
$LINE"
done
wait "$WRK_PID" || true
kill -0 "$GW_PID" 2>/dev/null || { echo "the gateway died" >&2; cat "$OUT/gateway.log" >&2; exit 1; }
STATUS=$(grep STATUS "$OUT/wrk.txt" | sed 's/STATUS //')
TOTAL=$(grep -Eo '[0-9]+ requests in' "$OUT/wrk.txt" | grep -Eo '^[0-9]+')
SOCKET=$(grep -Eo 'Socket errors: .*' "$OUT/wrk.txt" || echo "Socket errors: none")
P99=$(grep -E '^\s+99%' "$OUT/wrk.txt" | awk '{print $2}')
SUMMARY="$TOTAL requests; answers $STATUS; $SOCKET; p99 $P99; RSS first/last/max $(printf '%s\n' "${RSS_ALL[@]}" | head -1)/$(printf '%s\n' "${RSS_ALL[@]}" | tail -1)/$(printf '%s\n' "${RSS_ALL[@]}" | sort -n | tail -1) MiB; the gateway process was alive at the end."
HEADER="### Soak ($(date -u +%Y-%m-%d), $(nproc) cores, release build, $DURATION, wrk -c32)"
echo; echo "$HEADER"; echo; echo "$SUMMARY"; echo; echo "$SAMPLES"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$SUMMARY"; echo; echo "$SAMPLES"; } >>docs/benchmarks.md
fi
