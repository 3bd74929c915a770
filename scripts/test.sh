#!/usr/bin/env bash
# Installs what is missing, builds (Release, with tests) and runs every test suite with ctest,
# then the sanitizer and fuzzing stage (scripts/test-sanitizers.sh: the unit and end-to-end
# suites under ASan and UBSan, the lock annotations checked by clang, and each fuzz target for
# FUZZ_SECONDS).
# Usage: scripts/test.sh [extra ctest arguments, e.g. -L unit or -R Daemon]
# Environment: SANITIZERS=0 skips the sanitizer and fuzzing stage (a quicker run while
# developing); BUILD_DIR (build), JOBS (2), FUZZ_SECONDS (40).
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
CTEST=(ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900)
if [ $# -gt 0 ]; then
  "${CTEST[@]}" "$@"
else
  # The unit tests, JOBS at a time (in-process, nothing they assert depends on speed); then the
  # rest one at a time: they start real daemons and train models on the same cores, and what
  # they assert depends on trainings keeping up with a stream. Both run, whatever the first gives.
  status=0
  "${CTEST[@]}" -L unit -j "$JOBS" || status=1
  "${CTEST[@]}" -LE unit || status=1
  [ "$status" = 0 ] || { echo "test.sh: ctest failed" >&2; exit 1; }
fi

if [ "${SANITIZERS:-1}" != 0 ]; then
  scripts/test-sanitizers.sh
fi
