#!/usr/bin/env bash
# Peak memory of SmolLM2-135M-Instruct with Float32 and 16-bit weights: one forward of T tokens,
# then one AtP pair at heads (a corrupt forward, a clean forward kept for the backward, the
# backward), as `attrib bench lm --batch 1 --seconds 0` runs them; the process's maximum
# resident set size from /usr/bin/time -v. CPU backend unless ATTRIB_DEVICE says otherwise.
#   Benchmarks/llm_memory.sh        env: TOKENS="512 2048" DTYPES="float32 bf16 f16" ATTRIB=.build/release/attrib
set -euo pipefail
cd "$(dirname "$0")/.."
attrib=${ATTRIB:-.build/release/attrib}
model=$(scripts/fetch_smollm2.sh)
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
printf '%-6s %-8s %14s %16s %14s\n' T weights "forward tok/s" "AtP pair (ms)" "peak RSS (GB)"
for t in ${TOKENS:-512 2048}; do
  for d in ${DTYPES:-float32 bf16 f16}; do
    log=$(mktemp)
    /usr/bin/time -v "$attrib" bench lm --model "$model" --tokens "$t" --batch 1 --seconds 0 --dtype "$d" --json >"$log.out" 2>"$log"
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    python3 - "$log.out" "$t" "$d" "$rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<6} {sys.argv[3]:<8} {r['forwardTokensPerSecond']:14.1f} {r['atpSecondsPerPair'] * 1000:16.1f} {int(sys.argv[4]) / 1e6:14.2f}")
PY
    rm -f "$log" "$log.out"
  done
done
