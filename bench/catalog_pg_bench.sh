#!/usr/bin/env bash
# The postgres driver's full catalog listing at scale (issue 15, "Show"): a throwaway PostgreSQL
# server (bench/pg_server.sh) with a database of TABLES tables of COLUMNS columns each in SCHEMAS
# schemas, made by one DO block (committing every 500 tables), then micro_bench's BM_CatalogPostgresFullListing (time of a
# full Driver::Introspect, objects and columns reported, the process's peak RSS) and
# /usr/bin/time's maximum resident set size of the whole run.
#
#   bench/catalog_pg_bench.sh                     # 10,000 tables of 20 columns
#   TABLES=1000 bench/catalog_pg_bench.sh         # a quick trial
#
# Needs a Release build of micro_bench: cmake --build build --target micro_bench.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${TABLES:-10000}
COLUMNS=${COLUMNS:-20}
SCHEMAS=${SCHEMAS:-10}
REPETITIONS=${REPETITIONS:-3}
BENCH_BIN=${BENCH_BIN:-build/bench/micro_bench}
[[ -x "$BENCH_BIN" ]] || { echo "no $BENCH_BIN: cmake --build build --target micro_bench" >&2; exit 1; }

source bench/pg_server.sh
psql_pg -d postgres -c "CREATE DATABASE catalog_bench"
started=$(date +%s.%N)
psql_pg -d catalog_bench -v ON_ERROR_STOP=1 <<SQL
DO \$\$
DECLARE
  cols text := (SELECT string_agg(format('c%s %s', i, CASE i % 4 WHEN 0 THEN 'bigint'
                  WHEN 1 THEN 'text' WHEN 2 THEN 'numeric(12,2)' ELSE 'timestamptz' END), ', ')
                FROM generate_series(1, $COLUMNS) AS i);
BEGIN
  FOR s IN 1..$SCHEMAS LOOP
    EXECUTE format('CREATE SCHEMA bench_%s', s);
  END LOOP;
  FOR t IN 1..$TABLES LOOP
    EXECUTE format('CREATE TABLE bench_%s.table_%s (%s)', t % $SCHEMAS + 1, t, cols);
    IF t % 10 = 0 THEN
      EXECUTE format('COMMENT ON TABLE bench_%s.table_%s IS %L', t % $SCHEMAS + 1, t, 'table ' || t);
      EXECUTE format('COMMENT ON COLUMN bench_%s.table_%s.c1 IS %L', t % $SCHEMAS + 1, t, 'first');
    END IF;
    -- Each table takes locks until its transaction ends: commit in batches (max_locks_per_transaction).
    IF t % 500 = 0 THEN COMMIT; END IF;
  END LOOP;
END
\$\$;
VACUUM ANALYZE;
SQL
echo "generated $TABLES tables of $COLUMNS columns in $(echo "$(date +%s.%N) - $started" | bc) s" >&2

CONNREG_BENCH_PG_PORT=$PORT CONNREG_BENCH_PG_DATABASE=catalog_bench CONNREG_BENCH_PG_USER=postgres \
  /usr/bin/time -f "max resident set size of the whole run: %M KiB" \
  "$BENCH_BIN" --benchmark_filter=BM_CatalogPostgresFullListing \
  --benchmark_repetitions="$REPETITIONS" --benchmark_counters_tabular=true
