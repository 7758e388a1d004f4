#!/usr/bin/env bash
# Records the git commit in Sources/CBuildInfo/commit.h (git-ignored) for `attrib --version`.
# Rewrites it, and touches build_info.c so SwiftPM recompiles that one file, only when the
# commit changed: an unchanged stamp costs no rebuild. Outside a git checkout: "unknown".
set -euo pipefail
cd "$(dirname "$0")/.."
c=$(git rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
if [ "$c" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then c="$c-dirty"; fi
line="#define ATTRIB_COMMIT \"$c\""
f=Sources/CBuildInfo/commit.h
if [ ! -f "$f" ] || [ "$(cat "$f")" != "$line" ]; then
  echo "$line" > "$f"
  touch Sources/CBuildInfo/build_info.c
fi
