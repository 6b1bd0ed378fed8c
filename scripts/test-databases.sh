#!/usr/bin/env bash
# Starts and stops throwaway PostgreSQL and MariaDB servers for the probe tests
# (tests/unit/probe_servers_test.cc).
#
#   scripts/test-databases.sh start DIR   # prints `export CONNREG_TEST_...=...` lines
#   scripts/test-databases.sh stop DIR
#
# Both servers listen on 127.0.0.1 only, on free ports, without TLS (the tests check that a
# connection requiring TLS fails against them), with password authentication over TCP. The
# credentials are random per start; `start` prints them and also writes them to DIR/env as
# KEY=VALUE lines, which the tests read when CONNREG_TEST_DB_ENV names that file (the CTest
# fixture does this).
#
# Roles, the same on both servers:
#   connreg_writer  owns the database connreg_probe (PostgreSQL: and its schema probe_w;
#                   MariaDB: every privilege on connreg_probe and probe_w).
#   connreg_reader  may connect and read (MariaDB: global SELECT, so that an unknown database
#                   answers "unknown database" rather than "access denied"), may create nothing.
#
# PostgreSQL refuses to run as root, so its cluster lives in a mktemp directory owned by the
# `postgres` OS user (DIR may sit where that user cannot reach); DIR/pg.path records where.
set -euo pipefail

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

start_postgres() {
  local dir=$1 port=$2 writer_pw=$3 reader_pw=$4
  local pgdir
  pgdir=$(mktemp -d /tmp/connreg-test-pg.XXXXXX)
  echo "$pgdir" >"$dir/pg.path"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pgdir"; fi
  chmod 700 "$pgdir"

  local pwfile="$pgdir/superuser.pw"
  as_postgres bash -c "umask 077; openssl rand -hex 16 >'$pwfile'"
  as_postgres "$PG_BIN/initdb" -D "$pgdir/data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/pg-initdb.log" 2>&1 ||
    die "initdb failed; see $dir/pg-initdb.log"
  as_postgres "$PG_BIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pgdir -c ssl=off -c fsync=off -c max_connections=100" \
    start >"$dir/pg-start.log" 2>&1 || {
    cp "$pgdir/server.log" "$dir/pg-server.log" 2>/dev/null || true
    die "PostgreSQL did not start; see $dir/pg-server.log"
  }

  as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres \
    -d postgres >"$dir/pg-setup.log" 2>&1 <<SQL || die "PostgreSQL setup failed; see $dir/pg-setup.log"
CREATE ROLE connreg_writer LOGIN PASSWORD '$writer_pw';
CREATE ROLE connreg_reader LOGIN PASSWORD '$reader_pw';
CREATE DATABASE connreg_probe OWNER connreg_writer;
\connect connreg_probe
SET ROLE connreg_writer;
CREATE SCHEMA probe_w;
GRANT USAGE ON SCHEMA probe_w TO connreg_reader;
SQL
}

start_mariadb() {
  local dir=$1 port=$2 writer_pw=$3 reader_pw=$4
  mkdir -p "$dir/mysql"
  mariadb-install-db --no-defaults --user=root --datadir="$dir/mysql/data" \
    --auth-root-authentication-method=socket --skip-test-db >"$dir/mysql-install.log" 2>&1 ||
    die "mariadb-install-db failed; see $dir/mysql-install.log"
  setsid mariadbd --no-defaults --user=root --datadir="$dir/mysql/data" --port="$port" \
    --bind-address=127.0.0.1 --socket="$dir/mysql/mysqld.sock" --pid-file="$dir/mysql/mysqld.pid" \
    --log-error="$dir/mysql/error.log" --skip-name-resolve --skip-ssl --innodb-flush-log-at-trx-commit=0 \
    --skip-log-bin >/dev/null 2>&1 &
  wait_for mariadb-admin --no-defaults -S "$dir/mysql/mysqld.sock" -u root ping ||
    die "MariaDB did not start; see $dir/mysql/error.log"

  mariadb --no-defaults -S "$dir/mysql/mysqld.sock" -u root >"$dir/mysql-setup.log" 2>&1 <<SQL ||
CREATE DATABASE connreg_probe;
CREATE DATABASE probe_w;
CREATE USER 'connreg_writer'@'%' IDENTIFIED BY '$writer_pw';
CREATE USER 'connreg_reader'@'%' IDENTIFIED BY '$reader_pw';
GRANT ALL PRIVILEGES ON connreg_probe.* TO 'connreg_writer'@'%';
GRANT ALL PRIVILEGES ON probe_w.* TO 'connreg_writer'@'%';
GRANT SELECT ON *.* TO 'connreg_reader'@'%';
SQL
    die "MariaDB setup failed; see $dir/mysql-setup.log"
}

stop_all() {
  local dir=$1
  if [[ -f "$dir/pg.path" ]]; then
    local pgdir
    pgdir=$(cat "$dir/pg.path")
    if [[ -d "$pgdir/data" ]]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$pgdir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    case "$pgdir" in /tmp/connreg-test-pg.*) rm -rf "$pgdir" ;; esac
    rm -f "$dir/pg.path"
  fi
  if [[ -f "$dir/mysql/mysqld.pid" ]]; then
    local pid
    pid=$(cat "$dir/mysql/mysqld.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir/mysql"
  rm -f "$dir/env"
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
    pg_port=$(free_port)
    mysql_port=$(free_port)
    while [[ "$mysql_port" == "$pg_port" ]]; do mysql_port=$(free_port); done
    pg_writer=$(openssl rand -hex 12)
    pg_reader=$(openssl rand -hex 12)
    my_writer=$(openssl rand -hex 12)
    my_reader=$(openssl rand -hex 12)
    trap 'stop_all "$dir"' ERR
    start_postgres "$dir" "$pg_port" "$pg_writer" "$pg_reader"
    start_mariadb "$dir" "$mysql_port" "$my_writer" "$my_reader"
    trap - ERR
    env_lines="CONNREG_TEST_PG_PORT=$pg_port
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
