#!/usr/bin/env bash
# A/B of two connreg binaries in one invocation: bench/http_bench.sh on SQLite and on a throwaway
# PostgreSQL server (as bench/both_backends.sh), each binary on a fresh database every time, in
# the order A B B A per round (AB_ORDER) so that a drift of the machine weighs on both alike.
# Prints, per backend and scenario, the median requests/s, p99 and server CPU per request of each
# binary, and B/A.
#
#   A_BIN=/path/old/connreg B_BIN=build/connreg [ROUNDS=1] [AB_ORDER="A B B A"]
#     [AB_BACKENDS="sqlite postgres"] [DURATION=10] bash bench/ab.sh
#
# Every run's JSON stays in $AB_RESULTS (default bench/results/ab-DATE).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A_BIN:?set A_BIN to the baseline binary}" "${B_BIN:?set B_BIN to the binary under test}"
A_BIN=$(realpath "$A_BIN") B_BIN=$(realpath "$B_BIN")  # connreg starts in a temp directory
ROUNDS=${ROUNDS:-1}
read -r -a AB_ORDER <<<"${AB_ORDER:-A B B A}"
export DURATION=${DURATION:-10}
AB_RESULTS=${AB_RESULTS:-$PWD/bench/results/ab-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$AB_RESULTS"

source bench/pg_server.sh

run=0
FAILED_RUNS=()
# A run whose requests got errors (a baseline too slow for wrk's timeout, say) still counts: its
# table and JSON are kept, and the summary names it.
failed() { FAILED_RUNS+=("run $run ($1): errors, see its table"); }
bench() {  # bench LABEL BIN BACKEND
  local label=$1 bin=$2 backend=$3
  run=$((run + 1))
  local out="$AB_RESULTS/$backend-$label-$run"
  mkdir -p "$out"
  echo "=== run $run: $backend, $label ($bin)" >&2
  if [[ $backend == postgres ]]; then
    local db=connreg_ab_$run
    psql_pg -c "CREATE DATABASE $db"
    BENCH_AFTER_SEED="$(analyze_cmd "$db")" BENCH_DATABASE="$(pg_url "$db")" \
      CONNREG_BIN="$bin" RESULTS_DIR="$out" bash bench/http_bench.sh >"$out/table.txt" || failed $label
    psql_pg -c "DROP DATABASE $db WITH (FORCE)"
  else
    CONNREG_BIN="$bin" RESULTS_DIR="$out" bash bench/http_bench.sh >"$out/table.txt" || failed $label
  fi
  cat "$out/table.txt" >&2
}

for backend in ${AB_BACKENDS:-sqlite postgres}; do
  for ((r = 0; r < ROUNDS; r++)); do
    for label in "${AB_ORDER[@]}"; do
      case $label in
        A) bench A "$A_BIN" "$backend" ;;
        B) bench B "$B_BIN" "$backend" ;;
        *) echo "AB_ORDER holds A and B only, not '$label'" >&2; exit 2 ;;
      esac
    done
  done
done

python3 - "$AB_RESULTS" <<'EOF'
import glob, json, os, statistics, sys
root = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(root, "*", "http-*.json"))):
    backend, label, _ = os.path.basename(os.path.dirname(path)).split("-")
    for s in json.load(open(path))["scenarios"]:
        runs.setdefault((backend, s["name"]), {}).setdefault(label, []).append(s)
med = lambda xs: statistics.median(xs)
print(f"{'backend':9} {'scenario':16} {'A req/s':>9} {'B req/s':>9} {'B/A':>6}"
      f" {'A p99 ms':>9} {'B p99 ms':>9} {'A us/req':>9} {'B us/req':>9} {'B/A':>6}  runs")
for (backend, name), by in sorted(runs.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0][1])):
    a, b = by.get("A", []), by.get("B", [])
    if not a or not b:
        continue
    ra, rb = med([s["rps"] for s in a]), med([s["rps"] for s in b])
    pa, pb = med([s["latency_ms"]["p99"] for s in a]), med([s["latency_ms"]["p99"] for s in b])
    ua = med([s["server_cpu_us_per_request"] for s in a])
    ub = med([s["server_cpu_us_per_request"] for s in b])
    print(f"{backend:9} {name:16} {ra:9.0f} {rb:9.0f} {rb / ra:6.3f} {pa:9.2f} {pb:9.2f}"
          f" {ua:9.1f} {ub:9.1f} {ub / ua:6.3f}  {len(a)}+{len(b)}")
EOF
echo "(runs in $AB_RESULTS)"
for f in "${FAILED_RUNS[@]}"; do echo "FAILED: $f"; done
((${#FAILED_RUNS[@]} == 0))
