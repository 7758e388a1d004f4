#!/usr/bin/env bash
# Generates Sources/AttribONNX/Generated/onnx.pb.swift, the Swift types of ONNX's protobuf
# schema, once; the file is committed and the build never runs protoc (the plugin takes
# minutes to build). Run it again only to move to another ONNX release.
#
# What it does: takes onnx.proto from the onnx wheel on PyPI (version below), keeps only its
# declarations (comments dropped: the schema's field names and numbers are all the engine
# needs), builds protoc-gen-swift from apple/swift-protobuf at the version Package.swift
# names, and runs Debian's protoc with it (Visibility=Public).
# Needs: protobuf-compiler (apt), pip, git, swift.
set -euo pipefail
ONNX_VERSION=1.23.2
SWIFT_PROTOBUF=1.39.0
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v protoc >/dev/null || { echo "install protoc: apt-get install protobuf-compiler" >&2; exit 1; }
pip download --quiet --no-deps --only-binary=:all: -d "$tmp/wheel" "onnx==$ONNX_VERSION"
python3 - "$tmp" <<'PY'
import glob, re, sys, zipfile
tmp = sys.argv[1]
text = zipfile.ZipFile(glob.glob(tmp + "/wheel/onnx-*.whl")[0]).read("onnx/onnx.proto").decode()
out = []
for line in text.splitlines():
    line = re.sub(r"\s*//.*$", "", line)       # no string in onnx.proto holds "//"
    if line.strip():
        out.append(line.rstrip())
open(tmp + "/onnx.proto", "w").write("\n".join(out) + "\n")
PY
git clone --quiet --depth 1 --branch "$SWIFT_PROTOBUF" https://github.com/apple/swift-protobuf "$tmp/swift-protobuf"
swift build --package-path "$tmp/swift-protobuf" -c release --product protoc-gen-swift >/dev/null
mkdir -p "$root/Sources/AttribONNX/Generated"
(cd "$tmp" && protoc --plugin=protoc-gen-swift="$tmp/swift-protobuf/.build/release/protoc-gen-swift" \
    --swift_out=Visibility=Public:"$root/Sources/AttribONNX/Generated" onnx.proto)
echo "wrote Sources/AttribONNX/Generated/onnx.pb.swift (onnx $ONNX_VERSION, swift-protobuf $SWIFT_PROTOBUF)"
