#!/usr/bin/env bash
# The main job: builds attrib (release) and runs it on every device here.
# Until the example models land, that is the device listing and the GEMM
# benchmark on each device. Extra arguments go to `attrib bench gemm`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product attrib 2>&1 | tail -n 1
attrib=$(swift build -c release --show-bin-path)/attrib
"$attrib" devices
"$attrib" bench gemm --all --sizes "${SIZES:-256,1024,2048}" "$@"
