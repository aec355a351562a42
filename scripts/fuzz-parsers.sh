#!/usr/bin/env bash
# Fuzzes the hand-written parsers that read untrusted bytes, with libFuzzer and AddressSanitizer:
#
#   FuzzRawRequest      the hot path's HTTP/1 framer (RawRequest.headLength, RawRequest.init?)
#   FuzzConfig          the configuration loader (GatewayConfiguration.parse, what load(path:) runs)
#   FuzzUpstreamBodies  the upstream wire models (JSONDecoder), VeeamTimestamp, VeeamAPIError.from,
#                       token lifetimes, and the tenant JSON built from them
#
# Usage: scripts/fuzz-parsers.sh [SECONDS_PER_TARGET]      (default 20)
#   FUZZ_TARGETS="FuzzConfig"   run only these targets
#   FUZZ_JOBS=N                 libFuzzer -fork=N (default: no fork; one process per target)
#
# Each target starts from a copy of fuzz/corpus/<target>/ (fuzz/make-corpus.py writes it from the
# tests' inputs), so the committed corpus is not changed. It fails (exit 1) on a crash, an
# invariant the target asserts, a sanitizer report (memory error, leak), a slow unit (-timeout=10),
# more than 2 GiB of memory, or a run that overstays its time budget; the input that did it is
# copied to fuzz/crashes/<target>/. It prints each target's exec count.
#
# The fuzz package (fuzz/Package.swift) depends on this one by path and builds in
# fuzz/.build-fuzz (debug: the product's modules are built with testing enabled, which the
# RawRequest target's @testable import needs).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
read -r -a targets <<< "${FUZZ_TARGETS:-FuzzRawRequest FuzzConfig FuzzUpstreamBodies}"
scratch=fuzz/.build-fuzz
swift_flags=(-c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)

# The fuzz package resolves the same dependency versions as the product.
cp Package.resolved fuzz/Package.resolved

work="$(mktemp -d "${TMPDIR:-/tmp}/fuzz-parsers.XXXXXX")"
build_log="$work/build.log"
echo "fuzz-parsers: building the fuzz targets (log: $build_log)"
if ! swift build --package-path fuzz --scratch-path "$scratch" "${swift_flags[@]}" > "$build_log" 2>&1; then
    grep -v "Cannot export local symbol" "$build_log" | tail -40 >&2
    echo "fuzz-parsers: the build failed" >&2
    exit 1
fi
bin="$(swift build --package-path fuzz --scratch-path "$scratch" "${swift_flags[@]}" --show-bin-path)"

# Swift's own crash backtracer would run inside ASan's signal handling (and trip over it): let
# libFuzzer and the sanitizer report crashes.
export SWIFT_BACKTRACE=enable=no

failed=0
for target in "${targets[@]}"; do
    if [ ! -x "$bin/$target" ] || [ ! -d "fuzz/corpus/$target" ]; then
        echo "fuzz-parsers: no target or corpus named $target" >&2
        failed=1
        continue
    fi
    corpus="$work/$target-corpus"
    artifacts="$work/$target-artifacts"
    log="$work/$target.log"
    mkdir -p "$artifacts"
    cp -R "fuzz/corpus/$target" "$corpus"
    fork=()
    [ -n "${FUZZ_JOBS:-}" ] && fork=(-fork="$FUZZ_JOBS")

    start=$(date +%s)
    # libFuzzer stops itself at max_total_time; the outer timeout is for a run that does not.
    timeout --signal=KILL $((seconds + 120)) "$bin/$target" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        "${fork[@]}" -artifact_prefix="$artifacts/" "$corpus" > "$log" 2>&1
    status=$?
    elapsed=$(( $(date +%s) - start ))

    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    if [ -z "$execs" ]; then  # fork mode reports the total on its last status line
        execs="$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')"
    fi
    problems=()
    [ "$status" -ne 0 ] && problems+=("exit status $status")
    grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|invariant violated|Fatal error|deadly signal|SUMMARY: " "$log" \
        && problems+=("a crash or sanitizer report")
    # crash-, leak-, timeout- and oom- inputs fail the run; a slow- unit (over 10 s, which a busy
    # machine can cause without a hang: libFuzzer goes on) is only reported.
    found="$(find "$artifacts" -type f ! -name 'slow-unit-*' | head -20)"
    [ -n "$found" ] && problems+=("inputs saved by libFuzzer")
    slow="$(find "$artifacts" -type f -name 'slow-unit-*' | head -5)"
    [ -n "$slow" ] && echo "fuzz-parsers: $target: slow units (over 10 s; not a failure): $(echo $slow)" >&2
    [ "$elapsed" -gt $((seconds + 60)) ] && problems+=("ran ${elapsed}s on a ${seconds}s budget")

    if [ ${#problems[@]} -eq 0 ]; then
        echo "fuzz-parsers: $target: ok, ${execs:-?} execs in ${elapsed}s"
    else
        failed=1
        echo "fuzz-parsers: $target: FAILED ($(IFS=';'; echo "${problems[*]}")), ${execs:-?} execs in ${elapsed}s; log: $log" >&2
        grep -E -A30 "invariant violated|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Fatal error|deadly signal" "$log" | head -60 >&2
        if [ -n "$found" ]; then
            mkdir -p "fuzz/crashes/$target"
            while IFS= read -r input; do
                cp "$input" "fuzz/crashes/$target/"
                echo "fuzz-parsers: $target: input saved as fuzz/crashes/$target/$(basename "$input")" >&2
            done <<< "$found"
        fi
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "fuzz-parsers: FAILED (logs in $work)" >&2
    exit 1
fi
echo "fuzz-parsers: every target ran ${seconds}s without a finding"
rm -rf "$work"
