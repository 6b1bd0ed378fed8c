#!/usr/bin/env bash
# The catalog sync at scale (issue 15, Show): a throwaway PostgreSQL server (bench/pg_server.sh)
# holding TABLES tables of COLUMNS columns each (default 10,000 x 20), the real connreg binary on
# a fresh SQLite store, and, in one run:
#   - the first sync's wall time and the store's size after it (the SQLite file and its WAL);
#   - a second sync of the unchanged warehouse (a diff that writes nothing);
#   - GET one connection's p50/p99 idle, and while the first sync runs (wrk, one thread);
#   - a paths page of 50 and a columns page at that size, against the same on a catalog of 100
#     tables (in the same server, another connection).
#
#   bash bench/catalog_sync.sh          # knobs: TABLES, COLUMNS, CONNREG_BIN, DURATION
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${TABLES:-10000}
COLUMNS=${COLUMNS:-20}
export CONNREG_BIN=${CONNREG_BIN:-$PWD/build/connreg}
[[ -x "$CONNREG_BIN" ]] || { echo "no connreg binary at $CONNREG_BIN (set CONNREG_BIN)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found" >&2; exit 1; }

source bench/pg_server.sh
psql_pg -c "CREATE DATABASE wh" >/dev/null
# One transaction per 500 tables: a single one would run out of lock slots.
seed() {  # seed SCHEMA COUNT
  local schema=$1 count=$2 from
  psql_pg -d wh -c "CREATE SCHEMA $schema" >/dev/null
  for ((from = 1; from <= count; from += 500)); do
    psql_pg -d wh -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
DECLARE cols text;
BEGIN
  SELECT string_agg(format('c%s %s', g, (ARRAY['int','text','numeric(12,2)','timestamptz','boolean'])[1 + g % 5]), ', ')
    INTO cols FROM generate_series(1, $COLUMNS) g;
  FOR i IN $from..LEAST($from + 499, $count) LOOP
    EXECUTE format('CREATE TABLE $schema.t%s (%s)', i, cols);
  END LOOP;
END \$\$;
SQL
  done
}
start=$SECONDS
seed big "$TABLES"
seed small 100
echo "seeded $TABLES + 100 tables of $COLUMNS columns in $((SECONDS - start)) s"
PG_PORT=$PORT python3 bench/catalog_sync.py
