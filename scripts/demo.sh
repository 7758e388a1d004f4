#!/usr/bin/env bash
# The main job, on the bundled digits models: builds attrib (release), lists the
# devices, and runs Integrated Gradients and SmoothGrad on the held-out digits
# with the MLP and the CNN, writing attributions, deltas, heatmaps and a summary
# per run under out/ (or $OUT_DIR). Extra arguments go to every attribution
# command (e.g. --device opencl, --limit 32).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product attrib 2>&1 | tail -n 1
attrib=$(swift build -c release --show-bin-path)/attrib
out=${OUT_DIR:-out}
data=Models/digits-data/test_inputs.npy
"$attrib" devices
for model in digits-mlp digits-cnn; do
  echo
  "$attrib" ig --model "Models/$model" --inputs "$data" --limit 64 --steps 64 --out "$out/$model/ig" "$@"
  "$attrib" smoothgrad --model "Models/$model" --inputs "$data" --limit 64 --samples 32 --out "$out/$model/smoothgrad" "$@"
done
echo
echo "Outputs are in $out/: attributions.npy, deltas.npy, summary.json and heatmaps/*.png per run."
