#!/usr/bin/env bash
# Benchmark (not a test): where a cache miss's wall-clock time goes, from the kernel's own record.
# With one connection (wrk -t1 -c1), `perf record` takes the scheduler's switches and every
# read/write-like system call of the machine for RECORD seconds in the middle of each run, and
# bench/miss-timeline.py splits each request at its system calls: the client's write, the
# gateway's event loop reading it, the upstream request leaving, the simulator's answer, the
# watcher's and the loop's wake-ups, the answer read, the response written, the client's read;
# and, after the upstream send, how long the loop stays on its CPU and whether the simulator
# was woken on that same CPU (then it waits for the loop to sleep). Figures: docs/benchmarks.md.
# Run for both products, a gateway miss (`Cache-Control: no-cache` as an administrator) and the
# same upstream request sent straight to the simulator, in the same sitting.
#
#   bash bench/miss-timeline.sh
#
# Environment: DURATION (default 4s per run), RECORD (default 1, seconds recorded), GATEWAY_BIN,
# BENCH_SKIP_BUILD (see lib.sh). Needs perf with tracepoints (linux-perf) and root.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-4s}
RECORD=${RECORD:-1}
source bench/lib.sh
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }

start_miss_setup

# Thread ids of a process, comma-separated; with a second argument, only those whose name starts
# with it, or (prefix "!") does not.
threads() {
  local pid=$1 want=${2:-} out="" t name
  for t in /proc/"$pid"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null || true)
    case "$want" in
      "") ;;
      !*) [[ "$name" == ${want#!}* ]] && continue ;;
      *) [[ "$name" == $want* ]] || continue ;;
    esac
    out+="${out:+,}${t##*/}"
  done
  echo "$out"
}

one() {   # one MODE URL SCRIPT
  local mode=$1 url=$2 script=$3 wrk_pid
  wrk -t1 -c1 -d"$DURATION" --latency -s "$script" "$url" >"$OUT/wrk.txt" 2>&1 &
  wrk_pid=$!
  sleep 1
  local client; client=$(threads "$wrk_pid")
  perf record -q -a -e sched:sched_switch,raw_syscalls:sys_enter,raw_syscalls:sys_exit \
    -o "$OUT/perf.data" -- sleep "$RECORD" >/dev/null 2>&1
  wait "$wrk_pid"
  perf script -i "$OUT/perf.data" -F tid,cpu,time,event,trace >"$OUT/dump.txt" 2>/dev/null
  [ -n "${BENCH_KEEP:-}" ] && cp "$OUT/dump.txt" "$OUT/dump-$mode-$(date +%s).txt"
  [ -n "${BENCH_KEEP:-}" ] && echo "tids: client $client loop $(threads "$GW_PID" NIO-) other $(threads "$GW_PID" "!NIO-") sim $(threads "$SIM_PID")"
  python3 bench/miss-timeline.py "$OUT/dump.txt" "$mode" "$client" \
    "$(threads "$GW_PID" NIO-)" "$(threads "$GW_PID" '!NIO-')" "$(threads "$SIM_PID")"
  grep -E "^\s+50%" "$OUT/wrk.txt" | sed 's/^/  wrk p50 (whole run, perf recording part of it):/'
}

for product in vspc vb365; do
  if [ "$product" = vspc ]; then
    direct="$SIM/api/v3/infrastructure/sites/tenants/$VSPC_TENANT"; script="$OUT/vspc.lua"; path="/v1/tenants/vspc-main.$VSPC_TENANT"
  else
    direct="$VB365_SIM/v5/Organization"; script="$OUT/vb365.lua"; path="/v1/tenants/vb365-main.$VB365_ORG"
  fi
  echo "== $product"
  one direct "$direct" "$script"
  one gateway "$GW_URL$path" "$OUT/gw.lua"
done
