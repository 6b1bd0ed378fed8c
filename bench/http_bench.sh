#!/usr/bin/env bash
# HTTP load benchmark of the real connreg binary against nginx serving the same bytes.
# See bench/README.md. Usage: bench/http_bench.sh   (knobs are environment variables below)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

CONNREG_BIN="${CONNREG_BIN:-$REPO_DIR/build/connreg}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
WRK_BIN="${WRK_BIN:-wrk}"
DURATION="${DURATION:-15}"            # seconds per scenario
WRK_THREADS="${WRK_THREADS:-1}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-32}"
WRK_TIMEOUT="${WRK_TIMEOUT:-2s}"      # wrk's own default; a slower answer counts as a timeout
SEED_STEPS="${SEED_STEPS:-1000 100000}"   # organization sizes at which the reads are measured
SEARCH_MATCHES="${SEARCH_MATCHES:-100}"     # connections the search scenario matches, at every size
NGINX_ACCESS_LOG="${NGINX_ACCESS_LOG:-off}"   # off | file
RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
CONNREG_EXTRA_ARGS="${CONNREG_EXTRA_ARGS:-}"   # appended to `connreg serve`
KEEP_TMP="${KEEP_TMP:-0}"             # 1: keep the temp dir (database, logs, wrk output)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

for tool in "$WRK_BIN" curl jq python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x "$CONNREG_BIN" ]] || die "connreg binary not found at $CONNREG_BIN (set CONNREG_BIN)"
[[ -x "$NGINX_BIN" ]] || die "nginx not found at $NGINX_BIN (set NGINX_BIN)"
[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -gt 0 ]] || die "DURATION must be a positive integer"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/connreg-bench.XXXXXX")"
CONNREG_PID=""
NGINX_PID=""

stop_pid() {  # stop_pid PID NAME: SIGTERM, wait up to 10 s, then SIGKILL
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$NGINX_PID" nginx
  stop_pid "$CONNREG_PID" connreg
  if [[ "$KEEP_TMP" == 1 ]]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CLK_TCK="$(getconf CLK_TCK)"

# "PID,CHILD1,CHILD2…" for top -p.
pid_and_children() {
  local kids
  kids="$(cat /proc/"$1"/task/*/children 2>/dev/null | xargs || true)"
  echo "$1${kids:+,${kids// /,}}"
}

# "TID COMM TICKS" per thread of a process and its children, sorted by TID (for join).
thread_ticks() {
  local p t
  for p in $(pid_and_children "$1" | tr ',' ' '); do
    for t in /proc/"$p"/task/*; do
      [[ -r $t/stat ]] || continue
      echo "${t##*/} $(tr -d ' ' <"$t/comm" 2>/dev/null) $(sed 's/^.*) //' "$t/stat" | awk '{print $12 + $13}')"
    done
  done | sort -k1,1
}

# Busy CPU ticks of the whole machine (user, nice, system, irq, softirq, steal).
machine_busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

# CPU ticks (user+system, all threads) of a process and its direct children (nginx workers).
cpu_ticks() {
  local pid="$1" total=0 p kids
  kids="$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)"
  for p in $pid $kids; do
    [[ -r /proc/$p/stat ]] || continue
    # Fields after "pid (comm) ": state is 1st, utime 12th, stime 13th.
    total=$((total + $(sed 's/^.*) //' /proc/"$p"/stat | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# ---------------------------------------------------------------------------------------------
# 1. connreg on a fresh SQLite database, port chosen by the kernel.
log "temp dir $TMP; connreg $CONNREG_BIN"
START_MODE=flags
# BENCH_DATABASE selects another store (e.g. a postgresql:// url; bench/both_backends.sh sets
# it); the default is a fresh SQLite file. connreg runs in $TMP, where it writes its bootstrap
# credentials for either store.
DB_URL=${BENCH_DATABASE:-sqlite:$TMP/connreg.db}
if [[ -n "${BENCH_DATABASE:-}" && -z "${CONNREG_MASTER_KEY:-}" ]]; then
  export CONNREG_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
fi
start_connreg() {
  if [[ "$START_MODE" == flags ]]; then
    # shellcheck disable=SC2086  # CONNREG_EXTRA_ARGS is a word list on purpose
    (cd "$TMP" && exec "$CONNREG_BIN" serve --database "$DB_URL" --listen 127.0.0.1:0 $CONNREG_EXTRA_ARGS) \
      >"$TMP/connreg.stdout" 2>"$TMP/connreg.stderr" &
  else
    # shellcheck disable=SC2086
    (cd "$TMP" && CONNREG_DATABASE="$DB_URL" CONNREG_LISTEN=127.0.0.1:0 \
      exec "$CONNREG_BIN" serve $CONNREG_EXTRA_ARGS) >"$TMP/connreg.stdout" 2>"$TMP/connreg.stderr" &
  fi
  CONNREG_PID=$!
}
start_connreg
# Fallback: if `serve --database` is rejected as a flag (an option of the top-level command only),
# say so and start again with the equivalent CONNREG_DATABASE / CONNREG_LISTEN variables.
sleep 0.3
if ! kill -0 "$CONNREG_PID" 2>/dev/null && grep -q 'not expected' "$TMP/connreg.stderr"; then
  log "WARNING: '$CONNREG_BIN serve --database … --listen …' was rejected: $(head -n1 "$TMP/connreg.stderr")"
  log "WARNING: retrying with CONNREG_DATABASE / CONNREG_LISTEN in the environment"
  START_MODE="env"
  start_connreg
fi

connreg_died() {
  log "connreg (pid $CONNREG_PID) is not running; last stderr/stdout lines:"
  tail -n 20 "$TMP/connreg.stderr" >&2 || true
  tail -n 20 "$TMP/connreg.stdout" >&2 || true
  die "$1"
}

PORT=""
for ((i = 0; i < 300; i++)); do
  kill -0 "$CONNREG_PID" 2>/dev/null || connreg_died "connreg exited during start-up"
  PORT="$(jq -R -r 'fromjson? | select(type == "object" and .event == "listening") | .port' \
            "$TMP/connreg.stdout" 2>/dev/null | head -n1 || true)"
  [[ -n "$PORT" && -f "$TMP/bootstrap-credentials.json" ]] && break
  sleep 0.1
done
[[ "$PORT" =~ ^[0-9]+$ ]] || connreg_died "no \"event\":\"listening\" line with a port within 30 s"
[[ -s "$TMP/bootstrap-credentials.json" ]] || die "no $TMP/bootstrap-credentials.json"
BASE="http://127.0.0.1:$PORT"
log "connreg pid $CONNREG_PID listening on $BASE"

# ---------------------------------------------------------------------------------------------
# 2. Bearer token.
CLIENT_ID="$(jq -r .clientId "$TMP/bootstrap-credentials.json")"
CLIENT_SECRET="$(jq -r .clientSecret "$TMP/bootstrap-credentials.json")"
TOKEN_STATUS="$(curl -sS -o "$TMP/token.json" -w '%{http_code}' -X POST "$BASE/v2/auth/token" \
  --data-urlencode grant_type=client_credentials \
  --data-urlencode "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET")"
[[ "$TOKEN_STATUS" == 200 ]] || die "POST /v2/auth/token answered $TOKEN_STATUS: $(head -c 400 "$TMP/token.json")"
TOKEN="$(jq -r .access_token "$TMP/token.json")"
[[ -n "$TOKEN" && "$TOKEN" != null ]] || die "no access_token in $(head -c 400 "$TMP/token.json")"
AUTH="Authorization: Bearer $TOKEN"

api_get() {  # api_get PATH OUTFILE -> prints the status code
  curl -sS -o "$2" -w '%{http_code}' -H "$AUTH" "$BASE$1"
}

# ---------------------------------------------------------------------------------------------
# 3. Seed connections with wrk (each run stops itself once enough creates succeeded): first
# SEARCH_MATCHES named needle-00001…, the only names `search=needle` matches, then bench-00001…
# up to the first of SEED_STEPS. The read scenarios run at each step; later steps add bench-…
# names, so the page of 50 and the search return the same objects at every size.
SEED_RATES=()
seed_secs=0
seed_more() {  # seed_more PREFIX COUNT START
  [[ "$2" -gt 0 ]] || return 0
  log "seeding $2 connections ($1-$(($3 + 1))…)"
  local t0; t0=$(date +%s.%N)
  SEED_PREFIX="$1" SEED_START="$3" SEED_COUNT="$2" "$WRK_BIN" -t1 -c"$WRK_CONNECTIONS" -d600s \
    --timeout 10s -s "$BENCH_DIR/wrk/seed.lua" -H "$AUTH" "$BASE/v2/connections" >"$TMP/wrk-seed.out" 2>&1 ||
    { cat "$TMP/wrk-seed.out" >&2; die "wrk seeding failed"; }
  seed_secs=$(echo "$seed_secs + $(date +%s.%N) - $t0" | bc)
  local res; res="$(sed -n 's/^BENCH_RESULT //p' "$TMP/wrk-seed.out" | tail -n1)"
  [[ -n "$res" ]] || { cat "$TMP/wrk-seed.out" >&2; die "no BENCH_RESULT from the seeding run"; }
  kill -0 "$CONNREG_PID" 2>/dev/null || connreg_died "connreg died while seeding"
  if [[ "$(jq .non2xx <<<"$res")" != 0 ]]; then
    die "seeding got non-2xx answers: $(jq -c '{statuses, first_bad}' <<<"$res")"
  fi
  SEED_RATES+=("$(jq -r .rps <<<"$res")")
  log "  $(jq -r .rps <<<"$res") creates/s, $(jq -c .errors <<<"$res")"
}
SEEDED_BENCH=0
seed_to() {  # seed_to TOTAL: bench-… connections until the organization holds TOTAL
  local want=$(($1 - SEARCH_MATCHES - SEEDED_BENCH))
  seed_more bench "$want" "$SEEDED_BENCH"
  ((want > 0)) && SEEDED_BENCH=$((SEEDED_BENCH + want))
  local status
  status="$(api_get '/v2/connections?limit=1' "$TMP/list1.json")"
  [[ "$status" == 200 ]] || die "GET /v2/connections?limit=1 answered $status: $(head -c 400 "$TMP/list1.json")"
  TOTAL="$(jq -r .total "$TMP/list1.json")"
  [[ "$TOTAL" =~ ^[0-9]+$ && "$TOTAL" -ge "$1" ]] || die "after seeding, total is $TOTAL (< $1)"
  # BENCH_AFTER_SEED: a command run once the rows are in (both_backends.sh: ANALYZE on
  # PostgreSQL, which autovacuum would do within a minute; planned on a just-filled table's stale
  # statistics, a page of 50 sorts every row of the organization).
  if [[ -n "${BENCH_AFTER_SEED:-}" ]]; then bash -c "$BENCH_AFTER_SEED"; fi
  log "seeded: total=$TOTAL"
}
read -r -a STEPS <<<"$SEED_STEPS"
((${#STEPS[@]} > 0)) || die "SEED_STEPS is empty"
for n in "${STEPS[@]}"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt "$SEARCH_MATCHES" ]] || die "each of SEED_STEPS must exceed SEARCH_MATCHES ($SEARCH_MATCHES)"
done
# The needles one by one: wrk stops a moment after its target and overshoots by what is in
# flight, and the search must match exactly SEARCH_MATCHES.
log "creating $SEARCH_MATCHES connections needle-00001…"
python3 - "$BASE" "$TOKEN" "$SEARCH_MATCHES" <<'PY' || die "creating the needle connections failed"
import http.client, json, sys, urllib.parse
base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
url = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
for i in range(1, count + 1):
    body = json.dumps({"name": f"needle-{i:05d}", "details": {"type": "postgres", "host": "db.example.com",
                       "database": "analytics", "user": "bench", "password": "s3cret"}})
    conn.request("POST", "/v2/connections", body, {"Authorization": "Bearer " + token,
                                                   "Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read()
    if r.status != 201:
        sys.exit(f"POST needle-{i:05d} answered {r.status}: {text[:400]!r}")
PY
seed_to "${STEPS[0]}"

CONN_ID="$(jq -r '.entries[0].connectionId' "$TMP/list1.json")"
[[ "$CONN_ID" =~ ^[0-9a-f-]{36}$ ]] || die "unexpected connectionId '$CONN_ID'"
ONE_PATH="/v2/connections/$CONN_ID"
LIST_PATH="/v2/connections?limit=50"
SEARCH_PATH="/v2/connections?limit=50&search=needle"

# ---------------------------------------------------------------------------------------------
# 4. The measured scenarios.
SCENARIOS=()   # names, in run order
declare -A RESULT SERVER_CPU SERVER_US_PER_REQ WRK_CPU OTHER_CPU TOP_SNAPSHOT

# run_scenario NAME SERVER_PID SCRIPT URL
run_scenario() {
  local name="$1" spid="$2" script="$3" url="$4" out="$TMP/wrk-$1.out" t0 t1 res cpu_time
  log "scenario $name: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s $url"
  # Around the middle of the run: one 1-s frame of top (the second: top's first frame averages
  # over each task's life), and the CPU use of each thread of the server over 2 s, from /proc
  # (top -H misreports the main thread as the whole process).
  ( sleep "$(( DURATION > 3 ? (DURATION - 2) / 2 : 0 ))"
    top -b -n2 -d1 -w 200 >"$TMP/top-all-$name.txt" 2>&1 &
    thread_ticks "$spid" >"$TMP/threads-a-$name.txt"; sleep 2; thread_ticks "$spid" >"$TMP/threads-b-$name.txt"
    wait
    { awk '/^top - /{n++} n==2' "$TMP/top-all-$name.txt" | head -n 15
      echo "-- CPU % of one core per thread of pid $spid (and children), over 2 s --"
      join "$TMP/threads-a-$name.txt" "$TMP/threads-b-$name.txt" |
        awk -v hz="$CLK_TCK" '{printf "%s %s %.0f%%\n", $1, $2, 100 * ($5 - $3) / hz / 2}' |
        sort -k3 -n -r
    } >"$TMP/top-$name.txt" ) &
  local top_pid=$!
  t0=$(cpu_ticks "$spid")
  local m0 m1; m0=$(machine_busy_ticks)
  local TIMEFORMAT='%U %S'
  cpu_time="$( { time BENCH_RUN_ID="$$-$name" "$WRK_BIN" -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" \
      -d"${DURATION}s" --timeout "$WRK_TIMEOUT" -s "$BENCH_DIR/wrk/$script" -H "$AUTH" "$url" \
      >"$out" 2>&1; } 2>&1 )" || { cat "$out" >&2; die "wrk failed in scenario $name"; }
  t1=$(cpu_ticks "$spid")
  m1=$(machine_busy_ticks)
  wait "$top_pid" 2>/dev/null || true
  kill -0 "$spid" 2>/dev/null || { [[ "$spid" == "$CONNREG_PID" ]] && connreg_died "connreg died during scenario $name"; die "nginx died during scenario $name"; }
  res="$(sed -n 's/^BENCH_RESULT //p' "$out" | tail -n1)"
  if [[ -z "$res" ]] || ! jq -e . >/dev/null <<<"$res"; then
    cat "$out" >&2
    die "no BENCH_RESULT line in scenario $name"
  fi
  SCENARIOS+=("$name")
  RESULT[$name]="$res"
  # CPU use as a percentage of one core over the run's wall time.
  SERVER_CPU[$name]=$(echo "scale=1; 100 * ($t1 - $t0) / $CLK_TCK / $(jq .duration_s <<<"$res")" | bc)
  SERVER_US_PER_REQ[$name]=$(echo "scale=1; 1000000 * ($t1 - $t0) / $CLK_TCK / $(jq .requests <<<"$res")" | bc)
  WRK_CPU[$name]=$(echo "scale=1; 100 * ($(echo "$cpu_time" | tr ' ' '+')) / $(jq .duration_s <<<"$res")" | bc)
  # Everything else on the machine (other processes, the kernel on their behalf), same unit.
  OTHER_CPU[$name]=$(echo "scale=1; x = 100 * ($m1 - $m0) / $CLK_TCK / $(jq .duration_s <<<"$res") - ${SERVER_CPU[$name]} - ${WRK_CPU[$name]}; if (x < 0) x = 0; x" | bc)
  TOP_SNAPSHOT[$name]="$(cat "$TMP/top-$name.txt" 2>/dev/null || true)"
  log "  $(jq -c '{rps, p50: .latency_ms.p50, p99: .latency_ms.p99, non2xx, errors}' <<<"$res") server CPU ${SERVER_CPU[$name]}%, wrk CPU ${WRK_CPU[$name]}%, others ${OTHER_CPU[$name]}%"
}

# The reads at each organization size, then nginx, then the writes.
for i in "${!STEPS[@]}"; do
  ((i == 0)) || seed_to "${STEPS[$i]}"
  run_scenario "get-one@${STEPS[$i]}" "$CONNREG_PID" get.lua "$BASE$ONE_PATH"
  run_scenario "list-50@${STEPS[$i]}" "$CONNREG_PID" get.lua "$BASE$LIST_PATH"
  run_scenario "search@${STEPS[$i]}" "$CONNREG_PID" get.lua "$BASE$SEARCH_PATH"
done
RSS_KIB=$(awk '/^VmRSS:/{print $2}' /proc/"$CONNREG_PID"/status)
HWM_KIB=$(awk '/^VmHWM:/{print $2}' /proc/"$CONNREG_PID"/status)
log "connreg RSS at $TOTAL connections: $((RSS_KIB / 1024)) MiB (peak $((HWM_KIB / 1024)) MiB)"
# ---------------------------------------------------------------------------------------------
# 4d. nginx serving the exact bytes of the GET-one body, of the page of 50 and of the search
# page (as at the last step), on another loopback port.
mkdir -p "$TMP/www" "$TMP/nginx-temp"
chmod 711 "$TMP"   # nginx workers may run as another user (www-data when started as root)
chmod 755 "$TMP/www"
for what in one:"$ONE_PATH" list:"$LIST_PATH" search:"$SEARCH_PATH"; do
  status="$(api_get "${what#*:}" "$TMP/www/${what%%:*}.json")"
  [[ "$status" == 200 ]] || die "GET ${what#*:} answered $status: $(head -c 400 "$TMP/www/${what%%:*}.json")"
  chmod 644 "$TMP/www/${what%%:*}.json"
done
ONE_BYTES=$(stat -c %s "$TMP/www/one.json")
LIST_BYTES=$(stat -c %s "$TMP/www/list.json")
LIST_ENTRIES=$(jq '.entries | length' "$TMP/www/list.json")
SEARCH_BYTES=$(stat -c %s "$TMP/www/search.json")
SEARCH_TOTAL=$(jq '.total' "$TMP/www/search.json")
[[ "$SEARCH_TOTAL" == "$SEARCH_MATCHES" ]] || die "search=needle matched $SEARCH_TOTAL, not $SEARCH_MATCHES"

NGINX_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
case "$NGINX_ACCESS_LOG" in
  off) NGINX_ACCESS_LOG_DIRECTIVE="access_log off;" ;;
  file) NGINX_ACCESS_LOG_DIRECTIVE="access_log $TMP/nginx-access.log;" ;;
  *) die "NGINX_ACCESS_LOG must be file or off" ;;
esac
cat >"$TMP/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
  $NGINX_ACCESS_LOG_DIRECTIVE
  default_type application/json;
  sendfile on;   # as in Debian's stock nginx.conf
  client_body_temp_path $TMP/nginx-temp/body;
  proxy_temp_path $TMP/nginx-temp/proxy;
  fastcgi_temp_path $TMP/nginx-temp/fastcgi;
  uwsgi_temp_path $TMP/nginx-temp/uwsgi;
  scgi_temp_path $TMP/nginx-temp/scgi;
  # Keep-alive as connreg: 75 s idle, no cap on requests per connection.
  keepalive_timeout 75s;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $TMP/www;
    location = $ONE_PATH { try_files /one.json =404; }
    location = /v2/connections { try_files /list.json =404; }
    location = /search { try_files /search.json =404; }
  }
}
EOF
"$NGINX_BIN" -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" \
  >"$TMP/nginx.stdout" 2>&1 &
NGINX_PID=$!
NGINX_BASE="http://127.0.0.1:$NGINX_PORT"
for ((i = 0; i < 100; i++)); do
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx.stdout" "$TMP/nginx-error.log" >&2 || true; die "nginx exited"; }
  curl -s -o /dev/null "$NGINX_BASE$ONE_PATH" && break
  sleep 0.1
done
curl -sS -o "$TMP/nginx-one.json" "$NGINX_BASE$ONE_PATH"
cmp -s "$TMP/nginx-one.json" "$TMP/www/one.json" || die "nginx does not serve the GET-one bytes"
curl -sS -o "$TMP/nginx-list.json" "$NGINX_BASE$LIST_PATH"
cmp -s "$TMP/nginx-list.json" "$TMP/www/list.json" || die "nginx does not serve the page's bytes"
log "nginx pid $NGINX_PID on $NGINX_BASE (access log: $NGINX_ACCESS_LOG); GET-one body $ONE_BYTES bytes"

run_scenario nginx-one "$NGINX_PID" get.lua "$NGINX_BASE$ONE_PATH"
run_scenario nginx-list "$NGINX_PID" get.lua "$NGINX_BASE$LIST_PATH"
run_scenario nginx-search "$NGINX_PID" get.lua "$NGINX_BASE/search"
run_scenario create "$CONNREG_PID" post.lua "$BASE/v2/connections"

# ---------------------------------------------------------------------------------------------
# 5. Report: table on stdout, JSON in bench/results/.
# The nginx scenario serving the same bytes as a connreg scenario, if any.
nginx_twin() {
  case "$1" in
    get-one@*) echo nginx-one ;;
    list-50@*) echo nginx-list ;;
    search@*) echo nginx-search ;;
  esac
}
rps_of() { jq .rps <<<"${RESULT[$1]}"; }
p99_of() { jq .latency_ms.p99 <<<"${RESULT[$1]}"; }
ratio() { echo "scale=3; $1 / $2" | bc | sed 's/^\./0./'; }

declare -A DESCRIPTION=(
  [nginx-one]="nginx: static copy of the GET-one body ($ONE_BYTES bytes)"
  [nginx-list]="nginx: static copy of the page of 50 ($LIST_BYTES bytes)"
  [nginx-search]="nginx: static copy of the search page ($SEARCH_BYTES bytes)"
  [create]="POST /v2/connections (unique names)"
)
for n in "${STEPS[@]}"; do
  DESCRIPTION[get-one@$n]="GET $ONE_PATH, $n connections"
  DESCRIPTION[list-50@$n]="GET $LIST_PATH ($LIST_ENTRIES entries), $n connections"
  DESCRIPTION[search@$n]="GET $SEARCH_PATH ($SEARCH_MATCHES matches), $n connections"
done

FAILED=0
scenario_json=()
printf '\n%-16s %11s %9s %9s %9s %9s %11s %9s %10s %7s\n' scenario 'requests/s' 'p50 ms' 'p99 ms' 'vs nginx' 'srv CPU%' 'srv us/req' 'wrk CPU%' 'other CPU%' 'errors'
for name in "${SCENARIOS[@]}"; do
  res="${RESULT[$name]}"
  errs=$(jq '.non2xx + .errors.connect + .errors.read + .errors.write + .errors.timeout' <<<"$res")
  ((errs == 0)) || FAILED=1
  twin="$(nginx_twin "$name")"
  vs=null
  [[ -n "$twin" ]] && vs=$(ratio "$(rps_of "$name")" "$(rps_of "$twin")")
  printf '%-16s %11.0f %9.2f %9.2f %9s %9s %11s %9s %10s %7s\n' "$name" \
    "$(jq .rps <<<"$res")" "$(jq .latency_ms.p50 <<<"$res")" "$(jq .latency_ms.p99 <<<"$res")" \
    "${vs/null/-}" "${SERVER_CPU[$name]}" "${SERVER_US_PER_REQ[$name]}" "${WRK_CPU[$name]}" "${OTHER_CPU[$name]}" "$errs"
  scenario_json+=("$(jq -c --arg name "$name" --arg desc "${DESCRIPTION[$name]}" \
    --argjson ratio "$vs" --argjson scpu "${SERVER_CPU[$name]}" --argjson sus "${SERVER_US_PER_REQ[$name]}" --argjson wcpu "${WRK_CPU[$name]}" --argjson ocpu "${OTHER_CPU[$name]}" \
    --arg top "${TOP_SNAPSHOT[$name]}" \
    '{name: $name, description: $desc} + . + {ratio_to_nginx_same_bytes: $ratio,
      server_cpu_pct_of_one_core: $scpu, server_cpu_us_per_request: $sus, wrk_cpu_pct_of_one_core: $wcpu,
      other_cpu_pct_of_one_core: $ocpu, top_midrun: $top}' <<<"$res")")
done
echo

# The issue-17 table: each read at the first and the last size, their ratio, and the last size
# against nginx serving the same bytes (access log $NGINX_ACCESS_LOG).
FIRST="${STEPS[0]}" LAST="${STEPS[-1]}"
printf '%-10s %18s %18s %12s %10s\n' '' "$FIRST (p99 ms)" "$LAST (p99 ms)" "$LAST/$FIRST" "vs nginx"
for base in get-one list-50 search; do
  f="$base@$FIRST" l="$base@$LAST"
  printf '%-10s %10.0f (%5.1f) %10.0f (%5.1f) %12s %10s\n' "$base" "$(rps_of "$f")" "$(p99_of "$f")" \
    "$(rps_of "$l")" "$(p99_of "$l")" "$(ratio "$(rps_of "$l")" "$(rps_of "$f")")" \
    "$(ratio "$(rps_of "$l")" "$(rps_of "$(nginx_twin "$l")")")"
done
printf '%-10s %10.0f (%5.1f) at %s connections\n' POST "$(rps_of create)" "$(p99_of create)" "$TOTAL"
printf 'RSS at %s connections: %s MiB (peak %s MiB); nginx (no access log: %s): GET-one bytes %.0f/s, page %.0f/s\n\n' \
  "$LAST" "$((RSS_KIB / 1024))" "$((HWM_KIB / 1024))" "$NGINX_ACCESS_LOG" "$(rps_of nginx-one)" "$(rps_of nginx-list)"

for name in "${SCENARIOS[@]}"; do
  res="${RESULT[$name]}"
  if [[ "$(jq '.non2xx + .errors.connect + .errors.read + .errors.write + .errors.timeout' <<<"$res")" != 0 ]]; then
    log "ERRORS in $name: $(jq -c '{statuses, errors, first_bad}' <<<"$res")"
  fi
done

mkdir -p "$RESULTS_DIR"
OUT_FILE="$RESULTS_DIR/http-$(date +%Y%m%d-%H%M%S).json"
connreg_commit="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
connreg_dirty="$(git -C "$REPO_DIR" status --porcelain 2>/dev/null | grep -qv '^??' && echo true || echo false)"
printf '%s\n' "${scenario_json[@]}" | jq -s \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg host "$(hostname)" --arg kernel "$(uname -r)" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --argjson cores "$(nproc)" \
  --arg bin "$CONNREG_BIN" --arg commit "$connreg_commit" --argjson dirty "$connreg_dirty" \
  --arg extra "$CONNREG_EXTRA_ARGS" --arg startmode "$START_MODE" \
  --argjson duration "$DURATION" --argjson threads "$WRK_THREADS" --argjson conns "$WRK_CONNECTIONS" \
  --arg timeout "$WRK_TIMEOUT" --arg wrkv "$("$WRK_BIN" -v 2>&1 | head -n1 | cut -d' ' -f2)" \
  --arg nginxv "$("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///')" --arg alog "$NGINX_ACCESS_LOG" \
  --argjson seeded "$TOTAL" --argjson seedrates "$(printf '%s\n' "${SEED_RATES[@]}" | jq -s .)" \
  --argjson seedsecs "$seed_secs" --argjson rss "$RSS_KIB" --argjson hwm "$HWM_KIB" \
  --argjson failed "$FAILED" \
  '{date: $date,
    machine: {host: $host, kernel: $kernel, cpu: $cpu, cores: $cores},
    connreg: {binary: $bin, tree_head_at_run: $commit, tree_has_uncommitted_changes: $dirty, extra_args: $extra,
              started_with: (if $startmode == "flags" then "serve --database --listen flags"
                              else "CONNREG_DATABASE/CONNREG_LISTEN env (flags were rejected)" end),
              database: (if env.BENCH_DATABASE then "postgresql" else "sqlite (fresh temp file)" end), stdout: "redirected to a file (access log kept)"},
    wrk: {version: $wrkv, threads: $threads, connections: $conns, duration_s: $duration, timeout: $timeout},
    nginx: {version: $nginxv, access_log: $alog, worker_processes: "auto",
            keepalive_timeout_s: 75, keepalive_requests: 1000000000},
    seed: {connections_total: $seeded, creates_per_s_per_run: $seedrates, wall_s: $seedsecs},
    connreg_rss_kib_at_last_size: $rss, connreg_peak_rss_kib: $hwm,
    failed: ($failed == 1),
    scenarios: .}' >"$OUT_FILE"
log "results written to $OUT_FILE"

if ((FAILED)); then
  log "some scenario saw non-2xx answers or socket errors (see above)"
  exit 1
fi
