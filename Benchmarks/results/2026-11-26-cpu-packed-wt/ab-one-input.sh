#!/bin/bash
# A/B of two attrib binaries on the wide MLP, one input, m = 64: the sweep's rate with --warmup
# (the benchmark's protocol), the rate of a one-shot sweep, and the process's wall time.
# /tmp/attrib-old: release build of 2ddc52e; /tmp/attrib-new: of ca46025. WIDE: the wide MLP
# exported by Benchmarks/ig_throughput.py; X1.npy / T1.npy: its first input and target.
for r in $(seq 1 ${ROUNDS:-10}); do
  for b in old new; do
    w=$( { OPENBLAS_NUM_THREADS=2 /tmp/attrib-$b ig --model WIDE --inputs X1.npy --targets T1.npy --steps 64 --method gauss_legendre --baseline zero --json --out /tmp/ab-$b --warmup --no-heatmaps | tr ',' '\n' | grep inputStepsPerSecond | tr -dc '0-9.'; } )
    t0=$(date +%s.%N)
    o=$( { OPENBLAS_NUM_THREADS=2 /tmp/attrib-$b ig --model WIDE --inputs X1.npy --targets T1.npy --steps 64 --method gauss_legendre --baseline zero --json --out /tmp/ab-$b --no-heatmaps | tr ',' '\n' | grep inputStepsPerSecond | tr -dc '0-9.'; } )
    t1=$(date +%s.%N)
    echo "$r $b warm $w oneshot $o process_s $(echo "$t1 - $t0" | bc)"
  done
done
