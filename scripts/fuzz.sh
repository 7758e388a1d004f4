#!/usr/bin/env bash
# Builds the libFuzzer targets (one per parser: Fuzz/Targets/*) with AddressSanitizer and runs
# each on its seed corpus for a bounded time. Fails on a crash, a leak or a timeout; libFuzzer
# writes the input that did it as crash-*/leak-*/timeout-* under Fuzz/findings/, and the
# regression test for it goes into Tests/AttribTests/FuzzFindingTests.swift.
#
#   scripts/fuzz.sh [--time SECONDS] [TARGET ...]     (default 30 s each, every target)
#
# Runs from a copy of each seed corpus, so Fuzz/Corpus stays as committed; -seed=1 makes a
# run repeatable. Build output: .build-fuzz (separate from the normal build).
set -euo pipefail
cd "$(dirname "$0")/.."
time=30
if [ "${1:-}" = "--time" ]; then time=$2; shift 2; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzNPY FuzzSafeTensors FuzzSequentialModel FuzzGPT2Model FuzzTokenizer FuzzPairs FuzzONNX FuzzGGUF FuzzHFTokenizer FuzzImage)
scripts/setup.sh >/dev/null
flags=(-c debug --build-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)
for t in "${targets[@]}"; do ATTRIB_FUZZ=1 swift build "${flags[@]}" --product "$t" 2>&1 | tail -n 1; done
bin=$(ATTRIB_FUZZ=1 swift build "${flags[@]}" --show-bin-path)
mkdir -p Fuzz/findings
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
printf '%-22s %12s %10s %s\n' target executions seconds result
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp -r "Fuzz/Corpus/$t/." "$work/$t/" 2>/dev/null || true
  log="$work/$t.log"
  start=$(date +%s)
  if ASAN_OPTIONS=detect_leaks=1 "$bin/$t" -seed=1 -max_total_time="$time" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="Fuzz/findings/$t-" "$work/$t" >"$log" 2>&1; then result=ok; else result=FAILED; status=1; fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$( (grep -Eo "^#[0-9]+" "$log" || true) | tail -n 1 | tr -d "#")
  printf '%-22s %12s %10s %s\n' "$t" "${execs:-?}" "$(( $(date +%s) - start ))" "$result"
  [ "$result" = ok ] || tail -n 40 "$log"
done
exit $status
