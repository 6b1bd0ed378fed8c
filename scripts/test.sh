#!/usr/bin/env bash
# The full test command: installs what is missing, checks the format, builds, runs clang-tidy on
# src/, and runs every test through ctest
# (GoogleTest unit tests, the throwaway PostgreSQL and MariaDB servers, the end-to-end suite
# against the real binary on both store backends, the browser test), then
#   - the sanitizer builds (scripts/sanitize.sh: the whole suite under ASan+UBSan, the
#     concurrency tests under TSan), and
#   - a short run of every libFuzzer target (fuzz/run.sh) from its seed corpus.
# Any failure, sanitizer report or fuzz crash fails the command.
#
#   bash scripts/test.sh [ctest arguments]
#
# The main build is Release (-O3), what the README tells users to build, so a warning or a failure
# that only -O3 shows fails here too.
#
# Environment: BUILD_DIR (build), BUILD_TYPE (Release), CTEST_JOBS (2),
# SANITIZE (all | asan | tsan | none; default all), FUZZ_SECONDS (per target, default 5; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage prints the clock and the seconds since the start, so CI logs show which one grows.
START=$SECONDS
stage() { echo; echo "==== $* ($(date +%T), +$((SECONDS - START)) s)"; }

bash scripts/install-deps.sh
stage "format: clang-format --dry-run -Werror"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z '*.cc' '*.h'
else  # a source tarball: every C++ file outside the build trees
  find . \( -name 'build*' -o -name node_modules \) -prune -o \( -name '*.cc' -o -name '*.h' \) -print0
fi | xargs -0 -r clang-format --dry-run -Werror
stage "build: ${BUILD_TYPE:-Release}"
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# src/ only (the tests and fuzz targets are not held to it), every core, with the flags of the
# build above (compile_commands.json); .clang-tidy says which checks and why. GCC-only warning
# options in those flags are not clang-tidy's business.
stage "lint: clang-tidy (src/)"
run-clang-tidy -quiet -p "$BUILD_DIR" -j"$(nproc)" -extra-arg=-Wno-unknown-warning-option \
  "$PWD/src/" >"$BUILD_DIR/clang-tidy.log" 2>&1 || { cat "$BUILD_DIR/clang-tidy.log"; exit 1; }
stage "ctest"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"${CTEST_JOBS:-2}" "$@"

if [ "${SANITIZE:-all}" != none ]; then
  stage "sanitizers: ${SANITIZE:-all}"
  bash scripts/sanitize.sh "${SANITIZE:-all}"
fi
if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  stage "fuzz: ${FUZZ_SECONDS:-5} s per target"
  bash fuzz/run.sh "${FUZZ_SECONDS:-5}"
fi
stage "all tests passed"
