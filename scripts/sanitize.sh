#!/usr/bin/env bash
# The whole test suite under AddressSanitizer, and the C targets (CVecMath, CBuildInfo) also under
# UndefinedBehaviorSanitizer. Swift on Linux has no -sanitize=undefined; its own checks (overflow,
# bounds, unwrapping) trap in this debug build, which is that sanitizer's job for Swift code.
# UBSan in trap mode (-fsanitize-trap=undefined: no runtime to link into a Swift binary) turns
# undefined behaviour in C into a crash of the test run. Build output: .build-asan.
#   scripts/sanitize.sh [swift test arguments, e.g. --filter GEMMTests]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/stamp_commit.sh
flags=(--build-path .build-asan -Xswiftc -sanitize=address -Xcc -fsanitize=address,undefined -Xcc -fsanitize-trap=undefined)
log=$(mktemp)
if ! swift build --build-tests "${flags[@]}" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; exit 1; fi
tail -n 1 "$log"; rm -f "$log"
# The CLI tests run the sanitized attrib too, except under `ulimit -v` (RoughEdgeTests), which
# AddressSanitizer's shadow memory cannot live within: those take the plain build's.
export ATTRIB_BINARY="$(swift build "${flags[@]}" --show-bin-path)/attrib"
swift build --product attrib 2>&1 | tail -n 1
export ATTRIB_ULIMIT_BINARY="$(swift build --show-bin-path)/attrib"
# detect_leaks=0: Swift's runtime keeps metadata caches for the process's life, which LSan
# reports as leaks; the fuzz targets (scripts/fuzz.sh) do check leaks per input.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1
swift test --skip-build "${flags[@]}" "$@"
