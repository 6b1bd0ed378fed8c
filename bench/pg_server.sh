# Sourced by bench/both_backends.sh and bench/ab.sh: starts a throwaway PostgreSQL server on
# loopback (removed when the sourcing script exits) with its defaults kept (fsync on,
# synchronous_commit on: like SQLite's synchronous=FULL, an acknowledged write is on disk).
# Defines PG_BIN, PGDIR, PORT, as_pg (runs a command as the postgres user when root), psql_pg
# (psql on the server), and pg_url DB / analyze_cmd DB (a url, and the BENCH_AFTER_SEED command
# that analyzes DB as autovacuum would).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDIR=$(mktemp -d /tmp/connreg-bench-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) -eq 0 ]] && chown postgres: "$PGDIR"
pg_cleanup() { as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PGDIR"; }
trap pg_cleanup EXIT
as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$PGDIR" start >/dev/null
psql_pg() { as_pg "$PG_BIN/psql" -X -q -h "$PGDIR" -p "$PORT" -U postgres "$@"; }
pg_url() { echo "postgresql://postgres@127.0.0.1:$PORT/$1"; }
analyze_cmd() {
  echo "$(declare -f as_pg); as_pg $PG_BIN/psql -X -q -h $PGDIR -p $PORT -U postgres -d $1 -c 'VACUUM ANALYZE'"
}
