#!/usr/bin/env bash
# AtP / AtP* against exact activation patching. Prints (a) quality on Models/induction-2l
# (Spearman ρ of |score| vs |exact effect| and recall of the true top 10, per granularity) and
# (b) timing on a GPT-2-small-sized model with random weights (12 layers, 12 heads, d = 768,
# vocab 50257) generated into /tmp by transformers (not committed), T = 64 (and 256 with --long);
# exact patching is timed on a subsample of nodes and extrapolated to all of them.
# Usage: Benchmarks/atp.sh [--long]   (PYTHON=/path/to/python with torch + transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product attrib >/dev/null
B=$(swift build -c release --show-bin-path)/attrib
PY=${PYTHON:-/tmp/pywork/venv/bin/python}
P="--device cpu --model Models/induction-2l --pairs Models/induction-2l/prompts.json --compare --top 3"
for g in heads head-positions neurons neuron-positions; do
  for m in "atp" "atp-star --no-grad-drop" "atp-star"; do
    echo "== induction-2l $g: $m"
    $B $m $P --nodes $g --force --out /tmp/atp-bench/$g | grep "vs exact"
  done
done
M=/tmp/gpt2-small-random
if [ ! -f $M/model.safetensors ]; then
  $PY - "$M" <<'PY'
import sys, torch
from transformers import DecoderConfig, GPT2LMHeadModel
torch.manual_seed(0)
GPT2LMHeadModel(DecoderConfig(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)).save_pretrained(sys.argv[1], safe_serialization=True)
PY
fi
lens="64"; [ "${1:-}" = "--long" ] && lens="64 256"
for T in $lens; do
  python3 -c "
import json, random
random.seed(0)
ps=[]
for i in range(2):
    c=[random.randrange(50257) for _ in range($T)]; k=list(c); k[$T//2]=random.randrange(50257)
    ps.append({'clean': c, 'corrupt': k, 'answers': [random.randrange(50257), random.randrange(50257)]})
json.dump(ps, open('/tmp/atp-bench-pairs-$T.json','w'))"
  for g in heads neurons; do
    echo "== GPT-2-small random, T = $T, $g"
    $B atp --device cpu --model $M --pairs /tmp/atp-bench-pairs-$T.json --nodes $g --top 1 --force --out /tmp/atp-bench/s$T-$g-atp | grep "per pair"
    $B atp-star --device cpu --model $M --pairs /tmp/atp-bench-pairs-$T.json --nodes $g --time-exact 48 --top 1 --force --out /tmp/atp-bench/s$T-$g | grep "per pair"
  done
done
