#!/usr/bin/env bash
# Benchmark (not a test): requests/s and p50/p99 of the gateway's libcurl client (CurlHTTP)
# against the simulator at 1, 16 and 64 concurrent requests, beside `curl --parallel` fetching
# the same URL with the same token in the same run. Loopback only, bounded in count.
#
#   bash bench/client-vs-curl.sh            # prints a table; --write appends it to docs/benchmarks.md
#
# Environment: REQUESTS (default 4000 per run), ROUNDS (default 3, medians reported), HTTP2=1 to
# let the simulator offer HTTP/2, BENCH_SKIP_BUILD (see lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-4000}
ROUNDS=${ROUNDS:-3}
WRITE=${1:-}
source bench/lib.sh

build_release
[ -n "${BENCH_SKIP_BUILD:-}" ] || swift build "${RELEASE[@]}" --product curl-bench >/dev/null
SIM_FLAGS=()
[ "${HTTP2:-0}" = 1 ] && SIM_FLAGS+=(--http2)
start_sim "${SIM_FLAGS[@]}"
BASE=$VB365_SIM
TOKEN=$(upstream_token "$BASE/v5/Token" backup-admin@abc.onmicrosoft.com Abc-Org-Pass-1)
URL="$BASE/v5/Organization"
HDR="Authorization: Bearer $TOKEN"

# One curl --parallel run: N transfers of URL, C at once; prints rps p50 p99 (ms).
curl_run() {
  local conc=$1 cfg="$OUT/curl.cfg"
  : >"$cfg"
  for _ in $(seq 1 "$REQUESTS"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$URL" >>"$cfg"; done
  local t0 t1
  t0=$(date +%s.%N)
  curl -s --parallel --parallel-max "$conc" --cacert "$OUT/ca.pem" -H "$HDR" -K "$cfg" \
    -w '%{time_total}\n' >"$OUT/times.txt" 2>/dev/null
  t1=$(date +%s.%N)
  python3 - "$t0" "$t1" "$OUT/times.txt" <<'PY'
import sys
t0, t1, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
times = sorted(float(x) * 1000 for x in open(path) if x.strip())
pct = lambda p: times[min(len(times) - 1, int(len(times) * p))]
print(f"{len(times) / (t1 - t0):.1f} {pct(0.5):.3f} {pct(0.99):.3f}")
PY
}

client_run() {
  "$BIN/curl-bench" --url "$URL" --header "$HDR" --ca-file "$OUT/ca.pem" --concurrency "$1" --requests "$REQUESTS" |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"{d['rps']:.1f} {d['p50_ms']:.3f} {d['p99_ms']:.3f}\")"
}

median() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

TABLE="| concurrency | CurlHTTP req/s | curl --parallel req/s | ratio | CurlHTTP p50 / p99 ms | curl p50 / p99 ms |
|---|---|---|---|---|---|"
for conc in 1 16 64; do
  cr=(); cp50=(); cp99=(); ur=(); up50=(); up99=()
  for _ in $(seq 1 "$ROUNDS"); do   # alternate the two so drift hits both alike
    read -r a b c < <(client_run "$conc"); cr+=("$a"); cp50+=("$b"); cp99+=("$c")
    read -r a b c < <(curl_run "$conc"); ur+=("$a"); up50+=("$b"); up99+=("$c")
  done
  R1=$(median "${cr[@]}"); R2=$(median "${ur[@]}")
  RATIO=$(python3 -c "print(f'{$R1/$R2:.2f}')")
  TABLE+="
| $conc | $R1 | $R2 | $RATIO | $(median "${cp50[@]}") / $(median "${cp99[@]}") | $(median "${up50[@]}") / $(median "${up99[@]}") |"
done

HEADER="### CurlHTTP vs curl --parallel ($(date -u +%Y-%m-%d), $(nproc) cores, $REQUESTS requests per run, median of $ROUNDS alternated runs, HTTP/$([ "${HTTP2:-0}" = 1 ] && echo 2 || echo 1.1) over TLS to the simulator's GET /v5/Organization)"
echo "$HEADER"
echo
echo "$TABLE"
if [ "$WRITE" = "--write" ]; then
  { echo; echo "$HEADER"; echo; echo "$TABLE"; } >>docs/benchmarks.md
fi
