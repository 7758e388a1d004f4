#!/usr/bin/env bash
# Installs the Debian packages Attrib builds and runs against, when missing:
#   ocl-icd-opencl-dev, opencl-headers  the OpenCL ICD loader and headers
#   pocl-opencl-icd                     PoCL, an OpenCL device on the CPU (tests, machines without a GPU)
#   libopenblas-dev                     OpenBLAS, the CPU backend's BLAS
#   libpng-dev                          libpng, for heatmap PNGs and PNG inputs
#   libturbojpeg0-dev                   libjpeg-turbo's TurboJPEG API, for JPEG inputs
#   zlib1g-dev                          zlib, whose crc32 checksums a sweep's finished units (resume, merge)
#   libdnnl-dev                         oneDNN, the CPU backend's Float32 convolutions (channels-last)
# With --tests, also what the tests use:
#   openmpi-bin                         mpirun, for the scale-out tests (several processes, one sweep)
# Needs root or sudo only when something is missing.
set -euo pipefail
packages=(ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libopenblas-dev libpng-dev libturbojpeg0-dev zlib1g-dev libdnnl-dev)
[ "${1:-}" = "--tests" ] && packages+=(openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
  echo "setup: swift is not on PATH; install the Swift 6 toolchain (swift.org) first" >&2
  exit 1
fi
