#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer: the Swift code
# (-sanitize=address,undefined) and the C targets (CVecMath, CBuildInfo: -fsanitize=address,undefined).
# A report from either makes the run fail (halt_on_error). Build output: .build-asan.
#   scripts/sanitize.sh [swift test arguments, e.g. --filter GEMMTests]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/stamp_commit.sh
flags=(--build-path .build-asan -Xswiftc -sanitize=address,undefined -Xcc -fsanitize=address,undefined -Xcc -fno-sanitize-recover=undefined)
swift build --build-tests "${flags[@]}" 2>&1 | tail -n 1
# The CLI tests run the sanitized attrib too.
export ATTRIB_BINARY="$(swift build "${flags[@]}" --show-bin-path)/attrib"
# detect_leaks=0: Swift's runtime keeps metadata caches for the process's life, which LSan
# reports as leaks; the fuzz targets (scripts/fuzz.sh) do check leaks per input.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
swift test --skip-build "${flags[@]}" "$@"
