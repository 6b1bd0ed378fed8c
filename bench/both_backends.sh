#!/usr/bin/env bash
# Runs bench/http_bench.sh on the embedded SQLite store and on PostgreSQL (a throwaway server on
# loopback, started and removed here), one after the other in one invocation, so the two tables
# (each with its own nginx baseline) come from the same machine state.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDIR=$(mktemp -d /tmp/connreg-bench-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) -eq 0 ]] && chown postgres: "$PGDIR"
cleanup() { as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"; }
trap cleanup EXIT
as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
# PostgreSQL keeps its defaults (fsync on, synchronous_commit on): like SQLite's synchronous=FULL,
# an acknowledged write is on disk.
as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$PGDIR" start >/dev/null
as_pg "$PG_BIN/psql" -X -q -h "$PGDIR" -p "$PORT" -U postgres -c "CREATE DATABASE connreg_bench"

echo "=== SQLite ==="
bash bench/http_bench.sh
echo "=== PostgreSQL ==="
BENCH_AFTER_SEED="$(declare -f as_pg); as_pg $PG_BIN/psql -X -q -h $PGDIR -p $PORT -U postgres \
  -d connreg_bench -c 'VACUUM ANALYZE'" \
  BENCH_DATABASE="postgresql://postgres@127.0.0.1:$PORT/connreg_bench" bash bench/http_bench.sh
