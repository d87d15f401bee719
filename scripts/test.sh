#!/usr/bin/env bash
# Set-up, build and the whole test suite through CTest (what .ci/run runs).
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   also the AddressSanitizer + UBSan build in build-asan/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
BUILD_DIR=$root/build "$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j "$(nproc)"
if [ "${1:-}" = "--sanitize" ]; then
  BUILD_DIR=$root/build-asan BUILD_TYPE=Debug "$root/scripts/build.sh" -DMTLC_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$root/build-asan" --output-on-failure -j "$(nproc)" -LE slow
fi
