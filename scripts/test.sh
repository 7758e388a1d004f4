#!/usr/bin/env bash
# Installs what is missing, then runs the whole test suite (Swift Testing).
# Parity tests run on every OpenCL device found (PoCL on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift test "$@"
