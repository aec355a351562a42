#!/usr/bin/env bash
# Profile (not a test): where a cache hit's CPU goes. One gateway (release build, or
# GATEWAY_BIN) in front of the simulator's VSPC and VB365 (three organization accounts), the
# hits of one cloud tenant and the three organizations warmed; then wrk -t1 -c64 asks for them
# in turn while `perf record -F 999 -g` samples the gateway, and the top symbols (demangled) are
# printed with their share of all samples, the kernel's share, and the gateway's CPU µs per hit;
# then the per-hit budget: the share of samples (inclusive: a function and what it calls) in each
# step of a hit, and what that is of the CPU per hit measured in the same run. ACCESS_LOG=1 runs
# the gateway at log.level info (an access line per hit). ALLOCS=1 then counts the gateway's
# malloc calls per hit (a uprobe on libc's malloc: root only) and lists where they come from.
#
#   bash bench/profile-hit.sh            # DURATION (default 12s), TOP (default 40)
#
# This machine has no hardware counters (cpu-clock samples only), so compare shares within one
# sitting, and CPU µs per hit across binaries with bench/compare-binaries.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-12s}
TOP=${TOP:-40}
source bench/lib.sh
command -v perf >/dev/null || { echo "perf is not installed (linux-perf)" >&2; exit 1; }
build_release
start_sim --token-lifetime 86400
[ "${ACCESS_LOG:-0}" = 1 ] && export GW_LOG_LEVEL=info
new_key
GW_PORT=$(free_port)
gateway_yaml "$(vb365_upstream)" >"$OUT/gateway.yaml"
start_gateway "$OUT/gateway.yaml"
TOKEN=$(upstream_token "$SIM/api/v3/token" gateway-svc Gateway-Svc-Pass-1)
TENANT=$(curl -s --cacert "$OUT/ca.pem" -H "Authorization: Bearer $TOKEN" "$SIM/api/v3/infrastructure/sites/tenants?limit=1" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['data'][0]['instanceUid'])")
two_product_hits "$GW_URL" "$TENANT"
for path in $HIT_PATHS; do
  for _ in 1 2; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$GW_URL$path")
    [ "$code" = 200 ] || { echo "$path answered $code" >&2; exit 1; }
  done
done
ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
before=$(ticks)
perf record -q -F 999 -g -p "$GW_PID" -o "$OUT/perf.data" -- sleep "${DURATION%s}" 2>/dev/null &
PERF=$!
wrk -t1 -c64 -d"$DURATION" -H "X-API-Key: $KEY" -s "$OUT/hit.lua" "$GW_URL/" >"$OUT/wrk.txt"
wait "$PERF" || true
after=$(ticks)
total=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
echo "hits: $total in $DURATION ($rps/s); gateway CPU $(python3 -c "print(f'{($after-$before)/$(getconf CLK_TCK)*1e6/$total:.1f}')") µs per hit"
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null >"$OUT/report.txt" || true
kernel=$(awk '/\[k\]/ {gsub("%","",$1); s += $1} END {printf "%.1f", s}' "$OUT/report.txt")
echo "kernel share of samples: $kernel %"
echo "| share | symbol |"
echo "|---|---|"
grep -E '^\s+[0-9.]+%' "$OUT/report.txt" | head -n "$TOP" | while read -r share kind rest; do
  name=$(echo "$rest" | swift demangle --simplified 2>/dev/null || echo "$rest")
  echo "| $share | ${name:0:150} |"
done || true   # head closes the pipe early: not a failure

# The per-hit budget (docs/benchmarks.md keeps the table): inclusive shares by step.
perf script -i "$OUT/perf.data" 2>/dev/null >"$OUT/script.txt" || true
US_PER_HIT=$(python3 -c "print(($after-$before)/$(getconf CLK_TCK)*1e6/$total)")
python3 - "$OUT/script.txt" "$US_PER_HIT" <<'PY'
import collections, subprocess, sys
steps = [
    ("the hot path's own work (HotPathHandler.process, all below)", ["HotPathHandler.process("]),
    ("  parse the head (RawRequest)", ["RawRequest.headLength", "RawRequest.init", "RawRequest.parseRequestLine", "RawRequest.parseHeader"]),
    ("  admit, all of it (Admission, AccessControl)", ["Admission.decide", "AccessControl.authenticate"]),
    ("    of which the API key (SHA-256, constant-time scan)", ["CallerDirectory.authenticate"]),
    ("    of which the caller's rate", ["RateLimiter.take"]),
    ("  locate, authorize (TenantReads.locate, authorize)", ["TenantReads.locate", "TenantReads.authorize"]),
    ("  cache lookup (freshTenant, ResponseCache, LRU)", ["TenantReads.freshTenant", "ResponseCache.withFreshEntry"]),
    ("  request id", ["RequestIDs."]),
    ("  render (AnswerRendering, HTTP1AnswerWriter)", ["AnswerRendering.write"]),
    ("  record: metrics series", ["GatewayMetrics.request", "GatewayMetrics.hotPathAnswer"]),
    ("    of which the status board", ["StatusBoard."]),
    ("  record: the access line", ["AccessLog.record"]),
    ("socket read, without the handler's work (NIO and the kernel)", ["BaseStreamSocketChannel.readFromSocket"], ["HotPathHandler.process("]),
    ("  of which the read(2) system call", ["ksys_read"]),
    ("socket write: flush and writev/write(2)", ["BaseSocketChannel.flush0", "ksys_write", "do_writev"]),
    ("epoll_wait (waiting and waking)", ["do_epoll_wait"]),
    ("the log writer thread", ["LogSink.writeLoop"]),
]
raw = collections.Counter(); total = 0; cur = []
samples = []
def flush():
    global total
    if cur:
        total += 1
        samples.append(tuple(cur))
for line in open(sys.argv[1], errors="replace"):
    line = line.rstrip("\n")
    if not line.strip():
        flush(); cur = []; continue
    if line.startswith("\t") or line.startswith(" "):
        parts = line.strip().split(" ", 1)
        if len(parts) == 2: cur.append(parts[1].rsplit(" (", 1)[0].split("+0x")[0])
flush()
names = sorted({f for s in samples for f in s})
demangled = dict(zip(names, subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")))
per_hit = float(sys.argv[2])
print(f"\nper-hit budget ({total} samples; {per_hit:.1f} µs CPU per hit in this run, sampling included)")
print("Inclusive: a step counts what it calls; indented rows are parts of the row above.")
print("| step | share of samples | µs per hit |")
print("|---|---|---|")
def has(sample, patterns):
    return any(any(p in demangled.get(f, f) for p in patterns) for f in sample)
for step in steps:
    title, patterns = step[0], step[1]
    excluded = step[2] if len(step) > 2 else []
    hits = sum(1 for s in samples if has(s, patterns) and not has(s, excluded))
    print(f"| {title} | {100 * hits / max(total, 1):.1f} % | {per_hit * hits / max(total, 1):.2f} |")
PY

# Allocations per hit: every malloc the gateway makes during a second run, through a uprobe
# (exact counts, not samples), and the Swift frames that ask for the most.
if [ "${ALLOCS:-0}" = 1 ]; then
  LIBC=$(ldd "${GATEWAY_BIN:-$BIN/veeam-gateway}" | awk '/libc.so.6/ {print $3}')
  perf probe -q -d probe_libc:malloc 2>/dev/null || true
  perf probe -q -x "$LIBC" malloc
  trap 'perf probe -q -d probe_libc:malloc 2>/dev/null || true; cleanup' EXIT
  perf record -q -e probe_libc:malloc -g -p "$GW_PID" -o "$OUT/malloc.data" -- sleep 5 2>/dev/null &
  PERF=$!
  wrk -t1 -c64 -d5s -H "X-API-Key: $KEY" -s "$OUT/hit.lua" "$GW_URL/" >"$OUT/wrk-allocs.txt"
  wait "$PERF" || true
  hits=$(awk '/requests in/ {print $1}' "$OUT/wrk-allocs.txt")
  perf script -i "$OUT/malloc.data" 2>/dev/null >"$OUT/malloc.txt" || true
  python3 - "$OUT/malloc.txt" "$hits" <<'PY'
import collections, subprocess, sys
sites = collections.Counter(); count = 0; stack = []
def flush():
    global count
    if not stack: return
    count += 1
    # The first frame that is not the allocator, the Swift runtime's allocation entry points or
    # the standard library's string and array growth, with its caller.
    skip = ("malloc", "swift_slowAlloc", "swift_allocObject", "swift_allocBox", "_allocateUninitialized", "operator new",
            "StringStorage", "StringGuts", "_StringObject", "_allocateStringStorage", "String.init", "String.append", "_ContiguousArrayBuffer")
    frames = stack[1:]
    for i, frame in enumerate(frames):
        if not any(s in frame for s in skip):
            sites[frame + (" <- " + frames[i + 1] if i + 1 < len(frames) else "")] += 1
            return
    sites[stack[0]] += 1
for line in open(sys.argv[1], errors="replace"):
    if not line.strip():
        flush(); stack = []; continue
    if line.startswith(("\t", " ")):
        parts = line.strip().split(None, 1)
        if len(parts) == 2: stack.append(parts[1].rsplit(" (", 1)[0].split("+0x")[0])
flush()
hits = int(sys.argv[2])
print(f"\nmallocs: {count} in {hits} hits: {count / max(hits, 1):.2f} per hit")
top = sites.most_common(15)
def demangle(name):
    return " <- ".join(subprocess.run(["swift", "demangle", "--simplified"], input=part, capture_output=True, text=True).stdout.strip() for part in name.split(" <- "))
names = [demangle(n) for n, _ in top]
print("| per hit | first caller past the allocator |")
print("|---|---|")
for (name, n), shown in zip(top, names):
    print(f"| {n / max(hits, 1):.2f} | {shown[:220]} |")
PY
fi
