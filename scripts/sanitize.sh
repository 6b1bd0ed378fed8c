#!/usr/bin/env bash
# Sanitizer runs of the whole project:
#
#  1. ASan + UBSan (-DCONNREG_SANITIZE=ON) in build-asan/: builds everything and runs every test
#     through ctest (the unit tests, the throwaway database servers, and the end-to-end suite,
#     whose CONNREG_BIN is build-asan/connreg). Leak checking is on.
#  2. ThreadSanitizer (-fsanitize=thread) in build-tsan/: builds the unit tests and runs the
#     multi-threaded ones (HTTP server; the token cache racing revocations; the store's
#     concurrency and races on both backends: the query layer's transactions, its
#     per-connection statements, the PostgreSQL pool, its deadlock retry and reconnection,
#     racing migrations and bootstraps; the SQLite writer's group commit; probe engine, HTTP
#     drivers).
#
# Every process writes its sanitizer reports to build-*/sanitizer-logs/ (log_path), so a report
# from a server or CLI process whose exit status nobody checks still fails the run. Exit status:
# non-zero when a test failed or any report was written.
#
#   scripts/sanitize.sh [asan|tsan|all]     (default all; extra ctest arguments via CTEST_ARGS)
#
# Environment: JOBS (build parallelism, default nproc), CTEST_JOBS (2), CONNREG_SHARED (defaults
# to ../shared as in the main build), TSAN_FILTER (gtest filter of the TSan run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHAT=${1:-all}
JOBS=${JOBS:-$(nproc)}
status=0

check_logs() {  # $1: directory of sanitizer logs, $2: label
  local n
  n=$(find "$1" -type f 2>/dev/null | wc -l)
  if [ "$n" -ne 0 ]; then
    echo "sanitize: $2: $n sanitizer report file(s) in $1:"
    for f in $(find "$1" -type f | head -5); do
      echo "---- $f"
      head -60 "$f"
    done
    return 1
  fi
  echo "sanitize: $2: no sanitizer reports"
}

if [ "$WHAT" = asan ] || [ "$WHAT" = all ]; then
  B=$ROOT/build-asan
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONNREG_SANITIZE=ON >/dev/null
  cmake --build "$B" -j"$JOBS"
  LOGS=$B/sanitizer-logs
  rm -rf "$LOGS" && mkdir -p "$LOGS"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$LOGS/asan:log_exe_name=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan:log_exe_name=1"
  export LSAN_OPTIONS="log_path=$LOGS/lsan"
  set +e
  # shellcheck disable=SC2086
  ctest --test-dir "$B" --output-on-failure -j"${CTEST_JOBS:-2}" ${CTEST_ARGS:-}
  rc=$?
  set -e
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  [ $rc -eq 0 ] || { echo "sanitize: asan: ctest failed ($rc)"; status=1; }
  check_logs "$LOGS" asan || status=1
fi

if [ "$WHAT" = tsan ] || [ "$WHAT" = all ]; then
  B=$ROOT/build-tsan
  # -Werror off: GCC warns that TSan does not support std::atomic_thread_fence (used by Asio).
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONNREG_WERROR=OFF \
    "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread" >/dev/null
  cmake --build "$B" -j"$JOBS" --target unit_tests
  LOGS=$B/sanitizer-logs
  rm -rf "$LOGS" && mkdir -p "$LOGS"
  FILTER=${TSAN_FILTER:-"HttpServer*:Store*Contract*Concurrent*:Store*Contract*Race*:PostgresStoreTest.Concurrent*:PostgresStoreTest.ExhaustedPool*:PostgresStoreTest.Deadlocked*:PostgresStoreReconnect*:*StoreMigrations.AppliedOnce*:StoreBootstrapTest*:MasterKeySource.Racing*:ProbeEngine*:ProbeFairPool*:ProbeRegression18*:ProbeHttp*:ProbeSqlServer*:CatalogSync*:SqliteGroupCommit.*:SqliteGroupCommitFullDisk.*:TokenCache*:RevocationEpoch*:ApiBodyCache*"}
  set +e
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$LOGS/tsan:log_exe_name=1" \
    "$B/tests/unit_tests" --gtest_filter="$FILTER"
  rc=$?
  set -e
  [ $rc -eq 0 ] || { echo "sanitize: tsan: unit tests failed ($rc)"; status=1; }
  check_logs "$LOGS" tsan || status=1
fi

exit $status
