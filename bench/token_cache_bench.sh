#!/usr/bin/env bash
# GET one throughput of the token check's two paths (issue 17), in one run:
#  - SQLite, with the token cache, and without it (the same binary on a database whose
#    `-epoch` path is a directory, so the epoch file cannot be made and every request resolves
#    its token in the store, as before the cache); alternated, ROUNDS times each;
#  - PostgreSQL (when BEFORE_BIN is set): BEFORE_BIN (the separate token
#    check) and CONNREG_BIN (one statement), on one throwaway server (bench/pg_server.sh).
# Usage: CONNREG_BIN=build/connreg [BEFORE_BIN=...] bench/token_cache_bench.sh
# Knobs: DURATION (10 s per run), WRK_CONNECTIONS (32), ROUNDS (2).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONNREG_BIN="${CONNREG_BIN:-$BENCH_DIR/../build/connreg}"
DURATION="${DURATION:-10}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-2}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/connreg-token-bench.XXXXXX")"
PID=""
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# serve BIN DIR DATABASE: starts connreg, sets PID and BASE.
serve() {
  (cd "$2" && exec "$1" serve --database "$3" --listen 127.0.0.1:0) >"$2/out" 2>"$2/err" &
  PID=$!
  local port=""
  for ((i = 0; i < 300; i++)); do
    port="$(jq -R -r 'fromjson? | select(.event == "listening") | .port' "$2/out" 2>/dev/null | head -n1)"
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$2/err" >&2; exit 1; }
  BASE="http://127.0.0.1:$port"
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

# get_one DIR CREDENTIALS_DIR: a token and a connection; wrk on GET one; prints requests/s.
get_one() {
  local creds="$2/bootstrap-credentials.json" token id
  token="$(curl -sS -X POST "$BASE/v2/auth/token" --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$(jq -r .clientId "$creds")" \
    --data-urlencode "client_secret=$(jq -r .clientSecret "$creds")" | jq -r .access_token)"
  id="$(curl -sS -H "Authorization: Bearer $token" "$BASE/v2/connections?limit=1" | jq -r '.entries[0].connectionId // empty')"
  if [[ -z "$id" ]]; then
    id="$(curl -sS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d '{"name":"bench","details":{"type":"postgres","host":"db.example.com","database":"d","user":"u","password":"p"}}' \
      "$BASE/v2/connections" | jq -r .connectionId)"
  fi
  [[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$BASE/v2/connections/$id")" == 200 ]] ||
    { echo "GET one failed" >&2; exit 1; }
  wrk -t1 -c"$WRK_CONNECTIONS" -d"${DURATION}s" -H "Authorization: Bearer $token" \
    "$BASE/v2/connections/$id" | awk '/Requests\/sec/ {print $2}'
}

echo "GET one, wrk -t1 -c$WRK_CONNECTIONS -d${DURATION}s, $(date -u +%FT%TZ)"
mkdir -p "$TMP/cache" "$TMP/nocache" && mkdir "$TMP/nocache/connreg.db-epoch"
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in cache nocache; do
    serve "$CONNREG_BIN" "$TMP/$mode" "sqlite:$TMP/$mode/connreg.db"
    if [[ "$mode" == nocache ]]; then grep -q token_cache_off "$TMP/$mode/out" || { echo "cache not off" >&2; exit 1; }; fi
    echo "sqlite $mode round $r: $(get_one "$TMP/$mode" "$TMP/$mode") req/s"
    stop
  done
done

if [[ -n "${BEFORE_BIN:-}" ]]; then
  source "$BENCH_DIR/pg_server.sh"
  trap 'cleanup; pg_cleanup' EXIT
  psql_pg -c "CREATE DATABASE connreg_token_bench" >/dev/null
  export CONNREG_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
  mkdir -p "$TMP/pg"
  for ((r = 1; r <= ROUNDS; r++)); do
    for which in before after; do
      bin="$CONNREG_BIN"; [[ "$which" == before ]] && bin="$BEFORE_BIN"
      serve "$bin" "$TMP/pg" "$(pg_url connreg_token_bench)"
      echo "postgres $which round $r: $(get_one "$TMP/pg" "$TMP/pg") req/s"
      stop
    done
  done
fi
