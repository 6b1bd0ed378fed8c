#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt, clang++-14 with ASan+UBSan) in build-fuzz/
# and runs each for SECONDS (default 10) from a copy of its seed corpus fuzz/corpus/<target>/.
# Prints, per target: seconds, executions, crashes. Exits non-zero when any target crashed (or
# failed to run); the crashing inputs are left in build-fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: FUZZ_BUILD_DIR (build-fuzz), FUZZ_JOBS (2), FUZZ_KEEP_CORPUS=1 to keep the grown
# corpora between runs (build-fuzz/corpus/<target>/).
# Every crash found becomes a fix and a regression input in fuzz/corpus/<target>/: each run
# starts by executing every seed, so a regression fails the run at once.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-10}
shift || true
ALL_TARGETS=(fuzz_http fuzz_details fuzz_page_token fuzz_credentials fuzz_egress fuzz_json_body
  fuzz_stored_render)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-2}

# clang 14 and its runtime (libFuzzer, sanitizers) from Debian.
need_pkgs=()
command -v clang++-14 >/dev/null 2>&1 || need_pkgs+=(clang-14)
ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
  need_pkgs+=(libclang-rt-14-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "fuzz: installing ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}"
fi

CXX=clang++-14 cmake -S fuzz -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=0
printf '\n%-18s %8s %12s %8s %s\n' target seconds executions crashes note
summary=()
for t in "${TARGETS[@]}"; do
  seeds="fuzz/corpus/$t"
  work="$BUILD/corpus/$t"
  artifacts="$BUILD/artifacts/$t"
  [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  rm -f "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*
  [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  max_len=16384
  [ "$t" = fuzz_http ] && max_len=65536
  log="$BUILD/$t.log"
  start=$(date +%s.%N)
  set +e
  "$BUILD/$t" "$work" -max_total_time="$SECONDS_PER_TARGET" -max_len=$max_len -timeout=25 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  end=$(date +%s.%N)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [ -z "$execs" ] && execs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1)
  [ -z "$execs" ] && execs=$(grep -o '^#[0-9]*' "$log" | tr -d '#' | tail -1)
  crashes=$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
            -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  note=""
  if [ $rc -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    note="FAILED (rc=$rc): see $log"
    [ "$crashes" -ne 0 ] && note="$note; inputs in $artifacts/"
  fi
  line=$(printf '%-18s %8.1f %12s %8s %s' "$t" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" "${execs:-?}" \
         "$crashes" "$note")
  echo "$line"
  summary+=("$line")
done

if [ $failed -ne 0 ]; then
  echo
  echo "fuzz: at least one target crashed; first report:"
  for t in "${TARGETS[@]}"; do
    if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|==ERROR|deadly signal' \
         "$BUILD/$t.log" 2>/dev/null; then
      grep -m1 -B2 -A25 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' \
        "$BUILD/$t.log" || true
      break
    fi
  done
  exit 1
fi
echo "fuzz: no crashes"
