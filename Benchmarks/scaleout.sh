#!/usr/bin/env bash
# Scale-out on one host (issue 19): one IG sweep run
#   - as one unit in one process (no cut at all: the floor the unit machinery is measured against),
#   - as units in one process (the default), and in 2 and 3 processes under mpirun,
#   - killed (SIGKILL) after half of its units, then --resume'd;
# and a one-device-per-process check that every variant wrote the same attributions (cmp).
# Prints wall seconds, inputs/s, each run's speed against one process, the share of wall time
# outside the ranks' compute (cutting, recording, merging; "overhead"), and the resume's cost.
# Threads: 1 process uses every core (OPENBLAS_NUM_THREADS=$CORES); P processes use CORES/P each
# (at least 1), so every row uses the same cores. On 2 cores, 3 processes oversubscribe.
# Usage: Benchmarks/scaleout.sh [N inputs] [steps]     (defaults 1500, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1500}; STEPS=${2:-64}
CORES=$(nproc)
swift build -c release --product attrib >/dev/null
B=$(swift build -c release --show-bin-path)/attrib
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
ROOT=""; [ "$(id -u)" -eq 0 ] && ROOT="--allow-run-as-root"
# digits-cnn inputs repeated to N rows (the sweep's size; the values do not matter to the speed).
python3 - "$T/x.npy" "$N" <<'PY'
import sys, numpy as np
x = np.load("Models/digits-data/test_inputs.npy"); n = int(sys.argv[2])
np.save(sys.argv[1], np.resize(x, (n,) + x.shape[1:]).astype(np.float32))
PY
ARGS=(ig --model Models/digits-cnn --inputs "$T/x.npy" --steps "$STEPS" --device cpu --quiet --no-heatmaps --json)
now() { date +%s.%N; }
summary() { python3 -c "import json,sys; s=json.load(open('$1/summary.json')); print(s['$2'])"; }
row() {  # name wall out
  python3 - "$@" "$N" "$BASE" <<'PY'
import json, sys
name, wall, out, n, base = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = json.load(open(out + "/summary.json"))
compute = max(r["seconds"] for r in s["ranks"] if r["attempt"] == s["attempts"])
vs = float(base) / wall if base != "-" else 1.0
print(f"{name:<28} {wall:8.2f} {n / wall:10.1f} {vs:9.2f}x {s['units']:6d} {100 * (wall - compute) / wall:9.1f}%")
PY
}
echo "IG on digits-cnn, N = $N inputs, m = $STEPS steps, $CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
printf "%-28s %8s %10s %10s %6s %10s\n" run "wall s" "inputs/s" "vs 1 proc" units overhead
BASE="-"
t0=$(now); OPENBLAS_NUM_THREADS=$CORES $B "${ARGS[@]}" --chunk "$N" --out "$T/whole" >/dev/null; t1=$(now)
WHOLE=$(python3 -c "print($t1 - $t0)"); row "1 process, 1 unit" "$WHOLE" "$T/whole"
t0=$(now); OPENBLAS_NUM_THREADS=$CORES $B "${ARGS[@]}" --out "$T/p1" >/dev/null; t1=$(now)
BASE=$(python3 -c "print($t1 - $t0)"); row "1 process, default units" "$BASE" "$T/p1"
for P in 2 3; do
  th=$(( CORES / P )); [ $th -ge 1 ] || th=1
  t0=$(now); mpirun $ROOT --oversubscribe -n $P -x OPENBLAS_NUM_THREADS=$th $B "${ARGS[@]}" --out "$T/p$P" >/dev/null; t1=$(now)
  row "$P processes (mpirun, $th thr)" "$(python3 -c "print($t1 - $t0)")" "$T/p$P"
done
# Resume: killed after half the units, then resumed.
U=$(summary "$T/p1" units)
t0=$(now); ATTRIB_FAULT_KILL_AFTER_UNITS=$(( U / 2 )) OPENBLAS_NUM_THREADS=$CORES $B "${ARGS[@]}" --out "$T/r" >/dev/null 2>&1 || true; t1=$(now)
t2=$(now); OPENBLAS_NUM_THREADS=$CORES $B "${ARGS[@]}" --out "$T/r" --resume >/dev/null; t3=$(now)
python3 - "$t0" "$t1" "$t2" "$t3" "$BASE" "$U" <<'PY'
import sys
t0, t1, t2, t3, base = map(float, sys.argv[1:6]); u = int(sys.argv[6])
killed, resumed = t1 - t0, t3 - t2
print(f"resume: killed after {u // 2} of {u} units at {killed:.2f} s; --resume ran the rest in {resumed:.2f} s; "
      f"killed + resumed = {killed + resumed:.2f} s against {base:.2f} s uninterrupted "
      f"(cost of the kill and resume: {100 * (killed + resumed - base) / base:+.1f}%)")
PY
for v in p1 p2 p3 r; do
  cmp -s "$T/whole/attributions.npy" "$T/$v/attributions.npy" && echo "attributions of '$v' equal one unit in one process, bitwise" || echo "attributions of '$v' DIFFER from one unit in one process"
done
