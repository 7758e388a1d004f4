#!/usr/bin/env bash
# AtP*'s GradDrop rules (none, floor, paper, max) against exact activation patching, the
# measurement behind `attrib atp-star --grad-drop`'s default (GradDropRule.swift).
#
# Models:
#   - induction-{2,4,12}l: trained GPT-2-shaped induction models (d = 64, 4 heads); 2 layers is
#     Models/induction-2l, the deeper ones are trained into /tmp by scripts/train_induction.py
#     --layers N (about 3 min per 2 layers on one core; not committed) with their own prompts.json;
#   - gpt2-random-{2,4,12}l: GPT-2-small-shaped (d = 768, 12 heads, vocab 50257) with random
#     weights (transformers' init, torch.manual_seed(0)), 4 pairs of 16 random tokens whose
#     corrupt prompt differs at 3 positions, metric the logit difference of two random tokens.
# Nodes: heads, head-positions and neurons on the induction models; heads on the random ones,
# and neurons on the 2-layer one (exact patching of every neuron of the deeper random models
# is 12k-37k GPT-2-small forwards per pair: hours on 2 cores).
# Usage: Benchmarks/graddrop.sh   (PYTHON=/path/to/python with torch + transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
swift build -c release --product attrib >/dev/null
B=$(swift build -c release --show-bin-path)/attrib
for L in 4 12; do
  [ -f /tmp/induction-${L}l/model.safetensors ] || $PY scripts/train_induction.py --layers $L --out /tmp/induction-${L}l >/dev/null
done
for L in 2 4 12; do
  M=/tmp/gpt2-random-${L}l
  [ -f $M/model.safetensors ] || $PY - "$M" "$L" <<'PY'
import sys, torch
from transformers import DecoderConfig, GPT2LMHeadModel
torch.manual_seed(0)
GPT2LMHeadModel(DecoderConfig(n_layer=int(sys.argv[2]), n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)).save_pretrained(sys.argv[1], safe_serialization=True)
PY
done
$PY - <<'PY'
import json, random
random.seed(0)
ps = []
for i in range(4):
    c = [random.randrange(50257) for _ in range(16)]; k = list(c)
    for p in random.sample(range(16), 3): k[p] = random.randrange(50257)
    ps.append({'clean': c, 'corrupt': k, 'answers': [random.randrange(50257), random.randrange(50257)]})
json.dump(ps, open('/tmp/graddrop-random-pairs.json', 'w'))
PY
run() { echo; $B experiment graddrop --device cpu "$@"; }
for M in Models/induction-2l /tmp/induction-4l /tmp/induction-12l; do
  for g in heads head-positions neurons; do run --model $M --pairs $M/prompts.json --nodes $g; done
done
for L in 2 4 12; do run --model /tmp/gpt2-random-${L}l --pairs /tmp/graddrop-random-pairs.json --nodes heads; done
run --model /tmp/gpt2-random-2l --pairs /tmp/graddrop-random-pairs.json --nodes neurons
