#!/usr/bin/env bash
# AtP and AtP* against exact patching on SmolLM2-135M-Instruct (Models/smollm2-pairs): heads on
# PAIRS pairs of each set, neurons on NPAIRS pairs with exact patching restricted to the layers
# in LAYERS (every neuron of 30 layers is 46,080 patched forwards per pair). Then prints
# Benchmarks/llm_atp_quality.py's table (Spearman ρ, recall of the true top 10/20, seconds per pair).
#   Benchmarks/llm_quality.sh [OUT_DIR]      env: PAIRS=50 NPAIRS=4 LAYERS=15,28 ATTRIB=.build/release/attrib
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/llm-quality}
attrib=${ATTRIB:-.build/release/attrib}
model=$(scripts/fetch_smollm2.sh)
pairs=${PAIRS:-50}; npairs=${NPAIRS:-4}; layers=${LAYERS:-15,28}
mkdir -p "$out"
for set in ioi induction; do
  p=Models/smollm2-pairs/$set.json
  for m in atp atp-star patch; do
    "$attrib" "$m" --model "$model" --pairs "$p" --limit "$pairs" --nodes heads --top 3 --quiet --force --out "$out/$set-$m-heads"
  done
  # AtP*'s two parts alone: the QK fix, and GradDrop.
  "$attrib" atp-star --no-grad-drop --model "$model" --pairs "$p" --limit "$pairs" --nodes heads --top 3 --quiet --force --out "$out/$set-atp-qk-heads"
  "$attrib" atp-star --no-qk-fix --model "$model" --pairs "$p" --limit "$pairs" --nodes heads --top 3 --quiet --force --out "$out/$set-atp-gd-heads"
  for m in atp atp-star; do
    "$attrib" "$m" --model "$model" --pairs "$p" --limit "$npairs" --nodes neurons --top 3 --quiet --force --out "$out/$set-$m-neurons"
  done
  "$attrib" patch --model "$model" --pairs "$p" --limit "$npairs" --nodes neurons --layers "$layers" --top 3 --quiet --force \
    --out "$out/$set-patch-neurons"
done
python3 Benchmarks/llm_atp_quality.py "$out"
