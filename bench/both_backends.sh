#!/usr/bin/env bash
# Runs bench/http_bench.sh on the embedded SQLite store and on PostgreSQL (a throwaway server on
# loopback, started and removed here: bench/pg_server.sh), one after the other in one
# invocation, so the two tables (each with its own nginx baseline) come from the same machine
# state. With the defaults it prints issue 17's table: each read at 1,000 and at 100,000
# connections, against nginx (no access log) serving the same bytes, POST, and the RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/pg_server.sh
psql_pg -c "CREATE DATABASE connreg_bench"

echo "=== SQLite ==="
bash bench/http_bench.sh
echo "=== PostgreSQL ==="
BENCH_AFTER_SEED="$(analyze_cmd connreg_bench)" BENCH_DATABASE="$(pg_url connreg_bench)" \
  bash bench/http_bench.sh
