#!/usr/bin/env bash
# Chaos run (a check, not a benchmark): the release gateway in front of the release simulator,
# whose faults change every few seconds, and a real redis-server as the shared tier (killed for
# 3 s of every 12), under ordinary and hostile requests from 24 clients. The gateway serves HTTPS
# with a throwaway self-signed certificate (P-256, for 127.0.0.1 and localhost, made here with
# the openssl CLI) and HTTP/2 beside HTTP/1.1 (ALPN), with a 3 s head deadline and idle timeout:
# about a third of the clients speak HTTP/2 (the `h2` package), the rest HTTP/1.1 keep-alive,
# and two more open connections that stall (mostly HTTP/2). scripts/chaos.py drives it and checks
# every answer, on both protocols alike. The run fails when
#   - the gateway process dies or restarts, or its RSS grows past CHAOS_MAX_RSS_MB (default 512);
#   - an answer's status is not listed in docs/openapi.yaml for its route and method (made-up
#     HTTP/2 methods on our paths must be 405 with Allow, elsewhere 404, as wrong methods are);
#   - an error is not application/problem+json with type, title, status, code (/readyz 503 answers
#     the Readiness object; 304 has no body);
#   - a response body or a gateway log line holds a password, an upstream token, an API key, the
#     token signing key or the front end's private key;
#   - a request gets no answer within 20 s, or a connection fails;
#   - an HTTP/2 connection whose streams stalled (HEADERS without END_STREAM, then nothing; a
#     header block without its CONTINUATION), that opened no stream, or that went silent after a
#     request (not even answering the server's PING), is neither reset nor closed within head
#     deadline + idle timeout + 4 s (and the same for HTTP/1.1's silent, half-head, half-body
#     connections);
#   - /metrics (or the access log) records a method other than the HTTP methods and `other`.
#
#   bash scripts/chaos.sh [SECONDS]                  # default 60
#   CHAOS_SKIP_BUILD=1 CHAOS_BIN=.build/release bash scripts/chaos.sh 30
#
# Environment: CHAOS_BIN (directory holding veeam-sim and veeam-gateway; default the release bin
# path), CHAOS_GATEWAY (the gateway binary, default $CHAOS_BIN/veeam-gateway), CHAOS_SKIP_BUILD=1 (use the binaries as they are), CHAOS_MAX_RSS_MB, CHAOS_THREADS
# (default 24), CHAOS_SEED (random seed, printed by every run), CHAOS_KEEP=1 (keep the work
# directory: config, logs, secrets — for debugging only), CHAOS_VB365_API (the VB365 REST version
# the simulator serves, default v8, found by the gateway's apiVersion auto) and CHAOS_DIALECT (VSPC,
# default 3.6.1): the servers in the field today. CHAOS_TLS=0 runs the old way: plain HTTP/1.1
# only (no certificate, no HTTP/2 clients, no stall checks). CHAOS_REDIS=0 runs without Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
case $DURATION in '' | *[!0-9]*) echo "usage: bash scripts/chaos.sh [SECONDS]" >&2; exit 2 ;; esac
MAX_RSS_MB=${CHAOS_MAX_RSS_MB:-512}

if [ "${CHAOS_SKIP_BUILD:-0}" != 1 ]; then
  echo "building release binaries…" >&2
  swift build -c release --product veeam-sim >/dev/null
  swift build -c release --product veeam-gateway >/dev/null
fi
BIN=${CHAOS_BIN:-$(swift build -c release --show-bin-path)}
# The gateway under test: CI points this at the shipped binary (dist/veeam-gateway, built by
# scripts/build-release.sh with the static standard library).
GATEWAY=${CHAOS_GATEWAY:-$BIN/veeam-gateway}
[ -x "$BIN/veeam-sim" ] || { echo "no $BIN/veeam-sim (build it, or set CHAOS_BIN)" >&2; exit 2; }
[ -x "$GATEWAY" ] || { echo "no $GATEWAY (build it, or set CHAOS_GATEWAY)" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
TLS=${CHAOS_TLS:-1}
if [ "$TLS" = 1 ]; then
  command -v openssl >/dev/null || { echo "no openssl (needed for the front end's certificate; or CHAOS_TLS=0)" >&2; exit 2; }
  python3 -c 'import h2' 2>/dev/null || python3 -m pip install -q h2
fi

# Everything lives in OUT; both processes are stopped (by their PIDs) and OUT removed on exit.
OUT=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$OUT/redis.pid" ] && kill -9 "$(cat "$OUT/redis.pid")" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "${CHAOS_KEEP:-0}" = 1 ]; then echo "kept $OUT" >&2; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The simulator: both products on free ports, short-lived tokens so the gateway refreshes them.
"$BIN/veeam-sim" --fixtures config/simulator --vb365-port 0 --vspc-port 0 \
  --vb365-api "${CHAOS_VB365_API:-v8}" --dialect "${CHAOS_DIALECT:-3.6.1}" \
  --write-ports "$OUT/ports.json" --write-ca "$OUT/ca.pem" --token-lifetime 20 --log-level warning \
  >"$OUT/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
for _ in $(seq 1 200); do
  [ -s "$OUT/ports.json" ] && break
  kill -0 "$SIM_PID" 2>/dev/null || break
  sleep 0.05
done
[ -s "$OUT/ports.json" ] || { echo "the simulator did not start:" >&2; cat "$OUT/sim.log" >&2; exit 1; }
read -r VB365_PORT VSPC_PORT < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["vb365"], p["vspc"])' "$OUT/ports.json")
GW_PORT=$(free_port)

# The front end's certificate (CHAOS_TLS=1): self-signed, no CA, P-256, for 127.0.0.1 and
# localhost; chaos.py trusts exactly it. Its key is among the secrets searched for.
if [ "$TLS" = 1 ]; then
  mkdir -m 700 "$OUT/front"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=chaos-gateway \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth" \
    -keyout "$OUT/front/key.pem" -out "$OUT/front/cert.pem" 2>"$OUT/openssl.log" \
    || { echo "openssl could not make the front end's certificate:" >&2; cat "$OUT/openssl.log" >&2; exit 1; }
fi
# Short deadlines so that stalled heads, bodies and HTTP/2 streams are met within the run.
HEAD_TIMEOUT=3
IDLE_TIMEOUT=3

# The shared tier (issue 15): a real redis-server, killed and restarted during the run
# (CHAOS_REDIS=0 runs without one). Redis is never a new way to fail: the invariants stay.
REDIS_PORT=""
if [ "${CHAOS_REDIS:-1}" = 1 ]; then
  command -v redis-server >/dev/null || { echo "no redis-server (apt-get install redis-server, or CHAOS_REDIS=0)" >&2; exit 2; }
  REDIS_PORT=$(free_port)
  # The running server's pid is in redis.pid (the flapping loop below restarts it in a subshell).
  start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --protected-mode no >>"$OUT/redis.log" 2>&1 &
    echo $! >"$OUT/redis.pid"
  }
  start_redis
fi

# The gateway's own config (not demo.yaml): random keys (hashed by `veeam-gateway hash-key`), one
# caller per role the policy tells apart plus a scoped app, passwords and the signing key as
# { file: … } references. Also writes callers.json (ids, keys, roles, scopes) and secrets.tsv
# (label TAB value: every simulator password, every key, the signing key, the front end's private
# key) for chaos.py.
python3 - "$OUT" "$GATEWAY" "$GW_PORT" "$VB365_PORT" "$VSPC_PORT" "$REDIS_PORT" "$TLS" "$HEAD_TIMEOUT" "$IDLE_TIMEOUT" <<'PY'
import json, os, secrets, subprocess, sys

out, gateway, gw_port, vb365_port, vspc_port, redis_port, tls, head_timeout, idle_timeout = sys.argv[1:]
vb365 = json.load(open("config/simulator/vb365.json", encoding="utf-8"))
vspc = json.load(open("config/simulator/vspc.json", encoding="utf-8"))
os.makedirs(f"{out}/secrets", mode=0o700)
q = json.dumps  # a JSON string is a valid YAML double-quoted scalar


def secret_file(name, value):
    path = f"{out}/secrets/{name}"
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(value)
    return path


def hash_key(key):
    done = subprocess.run([gateway, "hash-key"], input=key, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


abc_org = vb365["organizations"][0]["organization"]["id"]
callers = [
    {"id": "chaos-portal-admin", "roles": ["PortalAdministrator"], "scopes": []},
    {"id": "chaos-sp-admin", "roles": ["ServiceProviderAdministrator"], "scopes": []},
    {"id": "chaos-sp-global-admin", "roles": ["ServiceProviderGlobalAdministrator"], "scopes": []},
    {"id": "chaos-company-owner", "roles": ["CompanyOwner"], "scopes": []},
    {"id": "chaos-sp-operator", "roles": ["ServiceProviderOperator"], "scopes": []},
    {"id": "chaos-abc-app", "roles": [], "scopes": [f"vb365-chaos.{abc_org}"]},
]
for caller in callers:
    caller["key"] = "ck-" + secrets.token_urlsafe(32)  # never equal to the id
    caller["keyHash"] = hash_key(caller["key"])
signing_key = secrets.token_urlsafe(48)  # 64 characters

lines = [
    "# Written by scripts/chaos.sh for one chaos run.",
    f"listen: {{ host: 127.0.0.1, port: {gw_port}, requestHeadTimeout: {head_timeout}s, idleTimeout: {idle_timeout}s }}",
    "log: { level: info, format: json }",
    "limits: { requestsPerSecond: 2000, burst: 4000, failedAuthPerMinute: 100000 }",
    "cache: { maxBytes: 4MiB, ttl: 2s, staleWhileRevalidate: 2s, staleIfError: 30s }",
    "auth:",
    f"  tokens: {{ signingKey: {{ file: {q(secret_file('signing.key', signing_key))} }}, lifetime: 2m }}",
    "callers:",
]
for c in callers:
    lines.append(f"  - {{ id: {c['id']}, keyHash: {q(c['keyHash'])}, roles: {q(c['roles'])}, scopes: {q(c['scopes'])} }}")
lines += [
    "upstreams:",
    "  - name: vb365-chaos",
    "    product: vb365",
    f"    baseURL: https://127.0.0.1:{vb365_port}",
    f"    tls: {{ caFile: {q(out + '/ca.pem')} }}",
    "    timeouts: { connect: 1s, total: 3s }",
    "    organizations:",
]
for n, org in enumerate(vb365["organizations"]):
    account = org["account"]
    path = secret_file(f"vb365-org-{n}.password", account["password"])
    lines.append(f"      - {{ username: {q(account['username'])}, password: {{ file: {q(path)} }} }}")
svc = next(u for u in vspc["users"] if u["username"] == "gateway-svc")
lines += [
    "  - name: vspc-chaos",
    "    product: vspc",
    f"    baseURL: https://127.0.0.1:{vspc_port}",
    f"    tls: {{ caFile: {q(out + '/ca.pem')} }}",
    "    timeouts: { connect: 1s, total: 3s }",
    f"    account: {{ username: {q(svc['username'])}, password: {{ file: {q(secret_file('vspc.password', svc['password']))} }} }}",
]
shared_key = "sk-" + secrets.token_urlsafe(32)
if redis_port:
    lines += [
        "shared:",
        f"  redis: {{ url: 'redis://127.0.0.1:{redis_port}', keyPrefix: 'chaos:', encryptionKey: {{ file: {q(secret_file('shared.key', shared_key))} }} }}",
    ]
if tls == "1":  # HTTPS, and HTTP/2 through ALPN (listen.tls.http2 is on by default)
    lines[1] = lines[1][:-2] + (f", tls: {{ certificateFile: {q(out + '/front/cert.pem')}, "
                                f"keyFile: {q(out + '/front/key.pem')} }} }}")
with open(f"{out}/gateway.yaml", "w") as f:
    f.write("\n".join(lines) + "\n")

with open(os.open(f"{out}/callers.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
    json.dump([{k: c[k] for k in ("id", "key", "roles", "scopes")} for c in callers], f, indent=2)

# Secrets: label TAB value. The hashedPassword of VSPC tenants must never be returned either.
found = [(f"password of VB365 administrator {a['username']}", a["password"]) for a in vb365.get("administrators", [])]
found += [(f"password of VB365 account {o['account']['username']}", o["account"]["password"]) for o in vb365["organizations"]]
found += [(f"password of VSPC user {u['username']}", u["password"]) for u in vspc["users"]]
found += [(f"VSPC hashedPassword of tenant {t['name']}", t["hashedPassword"]) for t in vspc["tenants"] if t.get("hashedPassword")]
found += [(f"VSPC credentials of tenant {t['name']}", t["credentials"]["password"]) for t in vspc["tenants"] if (t.get("credentials") or {}).get("password")]
found += [(f"VSPC owner password of company {c['name']}", c["ownerCredentials"]["password"]) for c in vspc.get("companies", [])
          if (c.get("ownerCredentials") or {}).get("password")]
found += [(f"API key of {c['id']}", c["key"]) for c in callers]
found += [("token signing key", signing_key)]
if redis_port:
    found += [("shared tier encryption key", shared_key)]
if tls == "1":  # the front end's private key: each base64 line of its PEM
    pem = open(f"{out}/front/key.pem", encoding="ascii").read().splitlines()
    found += [("front-end TLS private key", line) for line in pem if line and not line.startswith("-----")]
with open(os.open(f"{out}/secrets.tsv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
    f.writelines(f"{label}\t{value}\n" for label, value in found)
PY
"$GATEWAY" check-config "$OUT/gateway.yaml" >/dev/null

"$GATEWAY" serve --config "$OUT/gateway.yaml" >"$OUT/gateway.log" 2>&1 &
GW_PID=$!
PIDS=("$GW_PID" "${PIDS[@]}")  # stopped first
if [ "$TLS" = 1 ]; then
  GW_URL="https://127.0.0.1:$GW_PORT"
  CURL_TLS=(--cacert "$OUT/front/cert.pem")
  CHAOS_TLS_ARGS=(--gateway-ca "$OUT/front/cert.pem")
else
  GW_URL="http://127.0.0.1:$GW_PORT"
  CURL_TLS=()
  CHAOS_TLS_ARGS=()
fi
for _ in $(seq 1 300); do
  curl -sf "${CURL_TLS[@]}" -o /dev/null "$GW_URL/healthz" && break
  kill -0 "$GW_PID" 2>/dev/null || break
  sleep 0.05
done
curl -sf "${CURL_TLS[@]}" -o /dev/null "$GW_URL/healthz" || { echo "the gateway did not start:" >&2; tail -n 30 "$OUT/gateway.log" >&2; exit 1; }

echo "chaos: gateway pid $GW_PID on $GW_URL, simulator pid $SIM_PID (VB365 ${CHAOS_VB365_API:-v8} :$VB365_PORT, VSPC ${CHAOS_DIALECT:-3.6.1} :$VSPC_PORT), ${DURATION}s" >&2
if [ -n "$REDIS_PORT" ]; then
  # Redis down for 3 s of every 12 (SIGKILL, as a crash), for the whole run.
  (
    while sleep 9; do
      kill -9 "$(cat "$OUT/redis.pid")" 2>/dev/null || true
      echo "chaos: redis killed" >>"$OUT/redis.log"
      sleep 3
      start_redis
    done
  ) &
  PIDS+=("$!")
  echo "chaos: shared tier on redis :$REDIS_PORT, killed for 3 s of every 12" >&2
fi
STATUS=0
python3 scripts/chaos.py \
  --gateway "$GW_URL" --gateway-pid "$GW_PID" "${CHAOS_TLS_ARGS[@]}" \
  --head-timeout "$HEAD_TIMEOUT" --idle-timeout "$IDLE_TIMEOUT" \
  --vb365 "https://127.0.0.1:$VB365_PORT" --vspc "https://127.0.0.1:$VSPC_PORT" --ca "$OUT/ca.pem" \
  --callers "$OUT/callers.json" --secrets "$OUT/secrets.tsv" --log "$OUT/gateway.log" \
  --openapi docs/openapi.yaml --fixtures config/simulator \
  --duration "$DURATION" --max-rss-mb "$MAX_RSS_MB" --threads "${CHAOS_THREADS:-24}" \
  ${CHAOS_SEED:+--seed "$CHAOS_SEED"} || STATUS=$?

if ! kill -0 "$GW_PID" 2>/dev/null; then
  GW_STATUS=0
  wait "$GW_PID" 2>/dev/null || GW_STATUS=$?
  if [ "$GW_STATUS" -gt 128 ]; then how="killed by signal $((GW_STATUS - 128)) ($(kill -l $((GW_STATUS - 128)) 2>/dev/null || echo ?))"; else how="exit status $GW_STATUS"; fi
  echo "the gateway process is gone ($how); the end of its log:" >&2
  tail -n 30 "$OUT/gateway.log" >&2
fi
exit "$STATUS"
