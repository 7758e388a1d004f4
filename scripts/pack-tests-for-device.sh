#!/usr/bin/env bash
# Packs the test binary (Swift Testing, debug build) with the Swift runtime and
# system libraries it links into .device/tests/, so that the parity tests can run
# on a GPU host that has no Swift toolchain. Run from the project root after
# ../shared/gpu/pack-for-device (which makes .device/). On the host:
#   source .device/env.sh
#   LD_LIBRARY_PATH=$PWD/.device/tests/lib:$LD_LIBRARY_PATH ATTRIB_SOURCE_ROOT=$PWD \
#     .device/tests/AttribPackageTests.xctest --testing-library swift-testing
# (Benchmarks/gpu_host.sh does this.) ATTRIB_SOURCE_ROOT tells the tests where
# Tests/Fixtures and Models/ are, since the build's source path is not there.
set -euo pipefail
swift build --build-tests
bin="$(swift build --show-bin-path)/AttribPackageTests.xctest"
rm -rf .device/tests && mkdir -p .device/tests/lib
cp "$bin" .device/tests/ && strip --strip-debug .device/tests/AttribPackageTests.xctest
# Every shared library outside glibc and the C++ runtime, which the host has in a
# version at least as new (libmvec is glibc's too: it reads ld.so's private data).
ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libmvec.so*|libpthread*|libdl.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*) ;;
    *) cp -L "$lib" .device/tests/lib/ ;;
  esac
done
# Libraries the attrib binary's pack already carries (OpenBLAS, OpenCL, …) become links to
# its copies (unpacked first by env.sh): the tree that travels stays under the 64 MiB limit.
for lib in .device/tests/lib/*; do
  name=$(basename "$lib")
  if [ -e ".device/lib/$name.xz" ] && xz -dc ".device/lib/$name.xz" | cmp -s - "$lib"; then
    rm "$lib" && ln -s "../../lib/$name" "$lib"
  fi
done
find .device/tests/lib -type f -exec xz -T0 -6 {} +
xz -T0 -6 .device/tests/AttribPackageTests.xctest
# The host's env.sh unpacks .device/*.xz and .device/lib/*.xz; these are one folder down.
cat >> .device/env.sh <<'SH'
for f in "$dev_dir"/tests/*.xz "$dev_dir"/tests/lib/*.xz; do if [ -e "$f" ]; then xz -d -f "$f"; fi; done
if [ -e "$dev_dir/tests/AttribPackageTests.xctest" ]; then chmod +x "$dev_dir/tests/AttribPackageTests.xctest"; fi
SH
du -sh .device/tests
