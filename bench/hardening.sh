#!/usr/bin/env bash
# The attacks of the HTTP/2 and shared-tier hardening round against the release gateway, measured
# (bench/hardening.py says what each does). The gateway runs with HTTPS and HTTP/2
# (listen.requestHeadTimeout and listen.idleTimeout 3 s), the shared tier on a real redis-server,
# and both products of the simulator (VB365 with its three organization accounts, and VSPC).
# Then the token-lifetime check: both products' token grants say expires_in 9223372036854775807
# and a fresh gateway with the shared tier starts and serves one record of each.
#
#   BENCH_SKIP_BUILD=1 bash bench/hardening.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build_release
python3 -c 'import h2' 2>/dev/null || python3 -m pip install -q h2
command -v redis-server >/dev/null || { echo "needs redis-server" >&2; exit 2; }

start_sim
new_key
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --save '' --appendonly no --daemonize no >"$OUT/redis.log" 2>&1 &
PIDS+=("$!")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$OUT/front.key" -out "$OUT/front.crt" 2>/dev/null
export VGW_BENCH_SHARED_KEY=hardening-bench-shared-key-0123456789abcdef
SHARED="shared: { redis: { url: 'redis://127.0.0.1:$REDIS_PORT', keyPrefix: 'vgw-bench:', encryptionKey: { env: VGW_BENCH_SHARED_KEY } } }"

run_gateway() {
  GW_PORT=$(free_port)
  GW_TLS="{ certificateFile: $OUT/front.crt, keyFile: $OUT/front.key }"
  { gateway_yaml "$(vb365_upstream)" "{ maxBytes: 64MiB }" | sed "s/^listen: { \(.*\) }$/listen: { \1, requestHeadTimeout: 3s, idleTimeout: 3s }/"; echo "$SHARED"; } >"$OUT/gateway.yaml"
  GATEWAY_BIN=${GATEWAY_BIN:-} start_gateway "$OUT/gateway.yaml"
}
run_gateway
curl -s --cacert "$OUT/front.crt" -o /dev/null -w "warm-up list: %{http_code}\n" -H "X-API-Key: $KEY" "$GW_URL/v1/tenants"
for attack in methods stalled pages; do
  requests=3000; [ "$attack" = pages ] && requests=20000
  python3 bench/hardening.py "$attack" --port "$GW_PORT" --ca "$OUT/front.crt" --pid "$GW_PID" --key "$KEY" --requests "$requests"
done
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true

# expires_in of Int64.max from both products, the shared tier on: the gateway starts and serves.
for product in vb365 vspc; do
  curl -s --cacert "$OUT/ca.pem" -X PUT -H 'Content-Type: application/json' -d '{"expiresIn":"9223372036854775807"}' "$SIM/_sim/faults/$product" >/dev/null
done
redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
run_gateway
org=$(curl -s --cacert "$OUT/front.crt" -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$GW_URL/v1/tenants/vb365-main.cbc52c37-df7f-4b03-98f3-036e7d4b3127")
tenant=$(curl -s --cacert "$OUT/front.crt" -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$GW_URL/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4")
ttls=$(for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'vgw-bench:session:*'); do redis-cli -p "$REDIS_PORT" PTTL "$k"; done | sort -n | tr '\n' ' ')
alive=$(kill -0 "$GW_PID" 2>/dev/null && echo yes || echo no)
echo "{\"attack\": \"expires_in Int64.max, shared tier\", \"vb365_org\": $org, \"vspc_tenant\": $tenant, \"gateway_alive\": \"$alive\", \"session_pttl_ms\": \"$ttls\"}"
