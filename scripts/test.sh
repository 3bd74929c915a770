#!/usr/bin/env bash
# Installs what is missing, builds (Release, with tests) and runs every test suite with ctest.
# Usage: scripts/test.sh [extra ctest arguments, e.g. -L unit or -R Daemon]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}
GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)
if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then GENERATOR=(); fi
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DHISTGUARD_BUILD_TESTS=ON
cmake --build "$BUILD_DIR" -j "$JOBS"
# One test at a time: the suites start real daemons and train models on the same 2 cores.
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 "$@"
