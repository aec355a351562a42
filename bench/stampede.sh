#!/usr/bin/env bash
# Stampede figures (not a test; the same properties are asserted in EndToEndTests): with the
# release gateway and simulator as processes on loopback,
#   1. 1,000 concurrent cold requests for one tenant → upstream requests the simulator counted
#   2. a fresh gateway (no upstream token yet), 500 concurrent callers for 500 different tenants
#      → password-grant logins the simulator counted
#   3. the same after the simulator revoked the gateway's tokens (every caller meets a 401)
# Targets: 1 upstream request, 1 login. The simulator adds LATENCY_MS (default 300) to every
# request so that all callers arrive while the first fetch (or login) is still running.
#
#   bash bench/stampede.sh            # prints the figures; --write appends them to docs/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")/.."
WRITE=${1:-}
LATENCY_MS=${LATENCY_MS:-300}
ulimit -n 65536 2>/dev/null || true
source bench/lib.sh
build_release

start_sim --generate 1000 --latency-ms "$LATENCY_MS"
TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
for offset in 0 500; do
  curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=500&offset=$offset" |
    python3 -c "import json,sys; print('\n'.join(t['instanceUid'] for t in json.load(sys.stdin)['data']))" >>"$OUT/ids.txt"
done
new_key
GW_PORT=$(free_port)
gateway_yaml "    maxConnections: 64
    maxConcurrentRequests: 64
    maxQueuedRequests: 10000" >"$OUT/gateway.yaml"

# Opens every connection first, then sends every request at once; prints status counts.
cat >"$OUT/burst.py" <<'PY'
import asyncio, collections, sys
port, key, paths = int(sys.argv[1]), sys.argv[2], [l.strip() for l in open(sys.argv[3]) if l.strip()]
async def main():
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in paths]
    async def one(connection, path):
        reader, writer = connection
        writer.write(f"GET {path} HTTP/1.1\r\nHost: gateway\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        return int(data.split(b" ", 2)[1]) if data else 0
    statuses = await asyncio.gather(*(one(c, p) for c, p in zip(connections, paths)))
    print(" ".join(f"{k}×{v}" for k, v in sorted(collections.Counter(statuses).items())))
asyncio.run(main())
PY

# 1. One key, 1,000 callers, cold cache.
start_gateway "$OUT/gateway.yaml"
TENANT=$(sed -n 1p "$OUT/ids.txt")
for _ in $(seq 1 1000); do echo "/v1/tenants/vspc-main.$TENANT"; done >"$OUT/one-key.txt"
curl -s -X POST --cacert "$OUT/ca.pem" "$SIM/_sim/counters/reset" >/dev/null
S1=$(python3 "$OUT/burst.py" "$GW_PORT" "$KEY" "$OUT/one-key.txt")
R1=$(sim_counter resourceRequests)
L1=$(sim_counter logins)
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true

# 2. A fresh gateway: no token yet (its start-up readiness check logs in too, concurrently with
#    the burst, and counts); 500 callers, 500 different tenants.
curl -s -X POST --cacert "$OUT/ca.pem" "$SIM/_sim/counters/reset" >/dev/null
start_gateway "$OUT/gateway.yaml"
head -500 "$OUT/ids.txt" | sed 's|^|/v1/tenants/vspc-main.|' >"$OUT/many-keys.txt"
S2=$(python3 "$OUT/burst.py" "$GW_PORT" "$KEY" "$OUT/many-keys.txt")
R2=$(sim_counter resourceRequests)
L2=$(sim_counter logins)

# 3. The same gateway after its access and refresh tokens are revoked: 500 callers, 500 other
#    tenants; every first upstream answer is a 401 and the broker must log in again.
curl -s -X POST --cacert "$OUT/ca.pem" "$SIM/_sim/revoke?product=vspc&user=gateway-svc" >/dev/null
curl -s -X POST --cacert "$OUT/ca.pem" "$SIM/_sim/counters/reset" >/dev/null
sed -n 501,1000p "$OUT/ids.txt" | sed 's|^|/v1/tenants/vspc-main.|' >"$OUT/other-keys.txt"
S3=$(python3 "$OUT/burst.py" "$GW_PORT" "$KEY" "$OUT/other-keys.txt")
R3=$(sim_counter resourceRequests)
L3=$(sim_counter logins)
U3=$(sim_counter unauthorized)

HEADER="### Stampedes ($(date -u +%Y-%m-%d), $(nproc) cores, release build, simulator latency ${LATENCY_MS} ms)"
TABLE="| burst | answers | upstream requests counted | logins counted | target |
|---|---|---|---|---|
| 1,000 concurrent cold requests, one tenant | $S1 | $R1 | $L1 | 1 request |
| fresh gateway (no upstream token), 500 concurrent callers, 500 tenants | $S2 | $R2 | $L2 | 1 login |
| tokens revoked at the simulator, 500 concurrent callers, 500 other tenants | $S3 | $R3 (of which 401: $U3) | $L3 | 1 login |"
echo "$HEADER"; echo; echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
