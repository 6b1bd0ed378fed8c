#!/usr/bin/env bash
# Starts and stops throwaway PostgreSQL and MariaDB servers for the probe tests
# (tests/unit/probe_servers_test.cc) and the catalog tests (tests/unit/catalog_servers_test.cc).
#
#   scripts/test-databases.sh start DIR   # prints `export CONNREG_TEST_...=...` lines
#   scripts/test-databases.sh stop DIR
#
# Both servers listen on 127.0.0.1 only, on free ports, without TLS (the tests check that a
# connection requiring TLS fails against them), with password authentication over TCP. A second
# pair, the TLS servers, serves TLS with a certificate made at start for the name `localhost`
# (not for 127.0.0.1), signed by a throwaway CA: DIR/tls/ca.pem is that CA, DIR/tls/wrong-ca.pem
# another one, so that tests can verify the server right and wrong, by CA and by name. The TLS
# servers hold the same databases, roles (same passwords) and catalog seed. The credentials are random per start; `start` prints them and also writes them to DIR/env as
# KEY=VALUE lines, which the tests read when CONNREG_TEST_DB_ENV names that file (the CTest
# fixture does this).
#
# Roles, the same on both servers:
#   connreg_writer  owns the database connreg_probe (PostgreSQL: and its schema probe_w;
#                   MariaDB: every privilege on connreg_probe and probe_w).
#   connreg_reader  may connect and read (MariaDB: global SELECT, so that an unknown database
#                   answers "unknown database" rather than "access denied"), may create nothing.
#
# The catalog seed (for the catalog tests, tests/unit/catalog_servers_test.cc and the e2e catalog
# tests), on all four servers, from scripts/catalog-seed/postgres.sql and mysql.sql (which see):
#   PostgreSQL, database connreg_probe, owned by connreg_writer:
#     cat_sales (comment 'Sales data'): tables customers (comment 'People who buy'; id bigint NOT
#       NULL, name character varying(80) NOT NULL, email text 'Where receipts go', created_at
#       timestamp with time zone NOT NULL) and orders ('One row per order'; id, customer_id,
#       amount numeric(12,2) NOT NULL 'In euros', placed_on date; a dropped column), view
#       order_totals ('Spend per customer'), materialized view daily_orders, partitioned table
#       events (its partition events_2024 is not listed), procedure refresh_totals ('Refreshes
#       daily_orders'); a function order_count and a sequence invoice_numbers, not listed.
#     cat_types: table all_types, one column per type family: c_smallint, c_integer (NOT NULL),
#       c_bigint, c_numeric numeric(12,2), c_real, c_double, c_varchar character varying(40),
#       c_char character(3), c_text, c_uuid, c_enum cat_types.mood, c_boolean, c_timestamp,
#       c_timestamptz, c_date, c_time, c_bytea, c_json, c_jsonb ('Anything at all'),
#       c_int_array integer[], c_text_array text[], c_point point.
#     cat_empty: no objects.  "Cat Mixed": table "Order Lines" ("Line No" integer NOT NULL,
#       "SKU" text).  cat_hidden: table secret_plans; connreg_reader has no USAGE on it.
#     connreg_reader has USAGE and SELECT on the others.
#   MariaDB: databases cat_sales (customers, orders, view order_totals, procedure
#     refresh_totals 'Recomputes totals', function order_count not listed; same columns and
#     comments, amount decimal(12,2)), cat_types (all_types: c_tinyint .. c_point, MariaDB's
#     types, json printed as longtext, boolean as tinyint(1)), cat_empty, `Cat Mixed`
#     (`Order Lines`); connreg_reader reads them through its global SELECT.
#
# PostgreSQL refuses to run as root, so its cluster lives in a mktemp directory owned by the
# `postgres` OS user (DIR may sit where that user cannot reach); DIR/pg.path (DIR/pg-tls.path) records where.
set -euo pipefail

SEED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/catalog-seed" && pwd)
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

die() {
  echo "test-databases: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until "$@" succeeds, up to 30 s.
wait_for() {
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The CA, a second CA, and a server certificate for DNS:localhost signed by the first, in DIR/tls.
make_certificates() {
  local tls=$1/tls
  mkdir -p "$tls"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  {
    openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 \
      -subj "/CN=connreg test CA"
    openssl req -x509 "${ec[@]}" -keyout "$tls/wrong-ca.key" -out "$tls/wrong-ca.pem" -days 2 \
      -subj "/CN=connreg wrong CA"
    openssl req "${ec[@]}" -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
      >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -out "$tls/server.pem" -days 2 -extfile "$tls/server.ext"
  } >"$1/tls.log" 2>&1 || die "could not make the test certificates; see $1/tls.log"
  chmod 600 "$tls"/*.key
}

# start_postgres DIR NAME PORT WRITER_PW READER_PW [TLS]: a cluster whose mktemp directory is
# recorded in DIR/NAME.path; with TLS (any value), it serves DIR/tls/server.pem.
start_postgres() {
  local dir=$1 name=$2 port=$3 writer_pw=$4 reader_pw=$5 tls=${6:-}
  local pgdir
  pgdir=$(mktemp -d /tmp/connreg-test-pg.XXXXXX)
  echo "$pgdir" >"$dir/$name.path"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pgdir"; fi
  chmod 700 "$pgdir"
  local ssl="-c ssl=off"
  if [[ -n "$tls" ]]; then
    # The server reads its key as the postgres user, and only from a file that user owns alone.
    cp "$dir/tls/server.pem" "$dir/tls/server.key" "$pgdir/"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pgdir/server.pem" "$pgdir/server.key"; fi
    chmod 600 "$pgdir/server.key"
    ssl="-c ssl=on -c ssl_cert_file=$pgdir/server.pem -c ssl_key_file=$pgdir/server.key"
  fi

  local pwfile="$pgdir/superuser.pw"
  as_postgres bash -c "umask 077; openssl rand -hex 16 >'$pwfile'"
  as_postgres "$PG_BIN/initdb" -D "$pgdir/data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/$name-initdb.log" 2>&1 ||
    die "initdb failed; see $dir/$name-initdb.log"
  as_postgres "$PG_BIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pgdir $ssl -c fsync=off -c max_connections=100" \
    start >"$dir/$name-start.log" 2>&1 || {
    cp "$pgdir/server.log" "$dir/$name-server.log" 2>/dev/null || true
    die "PostgreSQL did not start; see $dir/$name-server.log"
  }

  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres \
    -d postgres >"$dir/$name-setup.log" 2>&1 <<SQL || die "PostgreSQL setup failed; see $dir/$name-setup.log"
CREATE ROLE connreg_writer LOGIN PASSWORD '$writer_pw';
CREATE ROLE connreg_reader LOGIN PASSWORD '$reader_pw';
CREATE DATABASE connreg_probe OWNER connreg_writer;
\connect connreg_probe
SET ROLE connreg_writer;
CREATE SCHEMA probe_w;
GRANT USAGE ON SCHEMA probe_w TO connreg_reader;
SQL
  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres \
    -d connreg_probe <"$SEED_DIR/postgres.sql" >"$dir/$name-seed.log" 2>&1 ||
    die "PostgreSQL catalog seed failed; see $dir/$name-seed.log"
}

# start_mariadb DIR NAME PORT WRITER_PW READER_PW [TLS]: a server in DIR/NAME; with TLS (any
# value), it serves DIR/tls/server.pem.
start_mariadb() {
  local dir=$1 name=$2 port=$3 writer_pw=$4 reader_pw=$5 tls=${6:-}
  local my=$dir/$name
  mkdir -p "$my"
  local ssl=(--skip-ssl)
  if [[ -n "$tls" ]]; then ssl=(--ssl-cert="$dir/tls/server.pem" --ssl-key="$dir/tls/server.key"); fi
  mariadb-install-db --no-defaults --user=root --datadir="$my/data" \
    --auth-root-authentication-method=socket --skip-test-db >"$dir/$name-install.log" 2>&1 ||
    die "mariadb-install-db failed; see $dir/$name-install.log"
  setsid mariadbd --no-defaults --user=root --datadir="$my/data" --port="$port" \
    --bind-address=127.0.0.1 --socket="$my/mysqld.sock" --pid-file="$my/mysqld.pid" \
    --log-error="$my/error.log" --skip-name-resolve "${ssl[@]}" --innodb-flush-log-at-trx-commit=0 \
    --skip-log-bin >/dev/null 2>&1 &
  wait_for mariadb-admin --no-defaults -S "$my/mysqld.sock" -u root ping ||
    die "MariaDB did not start; see $my/error.log"

  mariadb --no-defaults -S "$my/mysqld.sock" -u root >"$dir/$name-setup.log" 2>&1 <<SQL ||
CREATE DATABASE connreg_probe;
CREATE DATABASE probe_w;
CREATE USER 'connreg_writer'@'%' IDENTIFIED BY '$writer_pw';
CREATE USER 'connreg_reader'@'%' IDENTIFIED BY '$reader_pw';
GRANT ALL PRIVILEGES ON connreg_probe.* TO 'connreg_writer'@'%';
GRANT ALL PRIVILEGES ON probe_w.* TO 'connreg_writer'@'%';
GRANT SELECT ON *.* TO 'connreg_reader'@'%';
SQL
    die "MariaDB setup failed; see $dir/$name-setup.log"
  mariadb --no-defaults -S "$my/mysqld.sock" -u root <"$SEED_DIR/mysql.sql" >"$dir/$name-seed.log" 2>&1 ||
    die "MariaDB catalog seed failed; see $dir/$name-seed.log"
}

stop_all() {
  local dir=$1 name
  for name in pg pg-tls; do
    [[ -f "$dir/$name.path" ]] || continue
    local pgdir
    pgdir=$(cat "$dir/$name.path")
    if [[ -d "$pgdir/data" ]]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$pgdir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    case "$pgdir" in /tmp/connreg-test-pg.*) rm -rf "$pgdir" ;; esac
    rm -f "$dir/$name.path"
  done
  for name in mysql mysql-tls; do
    if [[ -f "$dir/$name/mysqld.pid" ]]; then
      local pid
      pid=$(cat "$dir/$name/mysqld.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "${dir:?}/$name"
  done
  rm -rf "$dir/env" "$dir/tls"
}

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 start|stop DIR"

case "$cmd" in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    stop_all "$dir"  # a previous run that was not stopped
    [[ -x "$PG_BIN/initdb" ]] || die "no PostgreSQL server binaries (apt-get install postgresql)"
    command -v mariadbd >/dev/null || die "no MariaDB server (apt-get install mariadb-server)"
    ports=()
    while [[ ${#ports[@]} -lt 4 ]]; do
      p=$(free_port)
      [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
    done
    pg_port=${ports[0]} mysql_port=${ports[1]} pg_tls_port=${ports[2]} mysql_tls_port=${ports[3]}
    pg_writer=$(openssl rand -hex 12)
    pg_reader=$(openssl rand -hex 12)
    my_writer=$(openssl rand -hex 12)
    my_reader=$(openssl rand -hex 12)
    trap 'stop_all "$dir"' ERR
    make_certificates "$dir"
    start_postgres "$dir" pg "$pg_port" "$pg_writer" "$pg_reader"
    start_mariadb "$dir" mysql "$mysql_port" "$my_writer" "$my_reader"
    start_postgres "$dir" pg-tls "$pg_tls_port" "$pg_writer" "$pg_reader" tls
    start_mariadb "$dir" mysql-tls "$mysql_tls_port" "$my_writer" "$my_reader" tls
    trap - ERR
    env_lines="CONNREG_TEST_PG_PORT=$pg_port
CONNREG_TEST_PG_TLS_PORT=$pg_tls_port
CONNREG_TEST_MYSQL_TLS_PORT=$mysql_tls_port
CONNREG_TEST_TLS_DIR=$dir/tls
CONNREG_TEST_PG_WRITER_PASSWORD=$pg_writer
CONNREG_TEST_PG_READER_PASSWORD=$pg_reader
CONNREG_TEST_MYSQL_PORT=$mysql_port
CONNREG_TEST_MYSQL_WRITER_PASSWORD=$my_writer
CONNREG_TEST_MYSQL_READER_PASSWORD=$my_reader"
    (umask 077 && echo "$env_lines" >"$dir/env")
    echo "$env_lines" | sed 's/^/export /'
    ;;
  stop)
    [[ -d "$dir" ]] || exit 0
    dir=$(cd "$dir" && pwd)
    stop_all "$dir"
    ;;
  *)
    die "usage: $0 start|stop DIR"
    ;;
esac
