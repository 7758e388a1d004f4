#!/bin/bash
# A/B of two attrib binaries on the bundled digits models: IG (m = 64) and SmoothGrad over
# 1,024 inputs (the test inputs repeated), 5 interleaved rounds (A, then B), each run's
# JSON "seconds" printed as "<method> <model> <A|B> <seconds>", then the medians.
# Usage: Benchmarks/ab_binaries.sh OLD/attrib NEW/attrib      (OPENBLAS_NUM_THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2
export OPENBLAS_NUM_THREADS=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -c "
import numpy as np
x=np.load('Models/digits-data/test_inputs.npy').astype(np.float32); t=np.load('Models/digits-data/test_labels.npy').astype(np.int32)
r=-(-1024//len(x)); np.save('$tmp/x.npy', np.concatenate([x]*r)[:1024]); np.save('$tmp/t.npy', np.concatenate([t]*r)[:1024])"
for cfg in "ig digits-mlp" "ig digits-cnn" "smoothgrad digits-mlp" "smoothgrad digits-cnn"; do
  set -- $cfg
  extra=(); [ "$1" = ig ] && extra=(--warmup --steps 64)
  for r in 1 2 3 4 5; do
    for bin in A B; do
      rm -rf "$tmp/out"
      s=$("${!bin}" "$1" --model "Models/$2" --inputs "$tmp/x.npy" --targets "$tmp/t.npy" --device cpu --json --quiet \
            --no-heatmaps --out "$tmp/out" "${extra[@]}" | python3 -c "import json,sys; t=sys.stdin.read(); print(json.loads(t[t.find('{'):])['seconds'])")
      echo "$1 $2 $bin $s"
    done
  done
done | tee "$tmp/log"
python3 - "$tmp/log" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, model, side, s = line.split()
    d[(m, model, side)].append(float(s))
for m, model in sorted({k[:2] for k in d}):
    a, b = statistics.median(d[(m, model, "A")]), statistics.median(d[(m, model, "B")])
    print(f"{m:10s} {model:11s} median A {a:.3f} s  B {b:.3f} s  B/A {b / a:.3f}")
PY
