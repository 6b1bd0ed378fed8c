#!/usr/bin/env bash
# Bounded soak of the real connreg binary on loopback: a mixed load (reads, lists, page walks,
# searches, creates, PUT replaces, PATCH merges, archives) from CLIENTS keep-alive connections for
# DURATION seconds (bench/soak/load.py), against a fresh SQLite store.
#
# Reports total requests, errors, and the server's RSS (VmRSS of /proc/<pid>/status) after a
# WARMUP and at the end. Fails (exit 1) when any request failed, when RSS grew by more than
# MAX_RSS_GROWTH_PCT between the two, or when the server did not stop cleanly (exit 0 on SIGTERM).
#
#   bench/soak.sh                      # 180 s, 64 clients
#   DURATION=120 bench/soak.sh
#
# Environment: CONNREG_BIN (build/connreg), DURATION (180), WARMUP (60: the SQLite page caches
# and malloc arenas fill in the first ~50 s), CLIENTS (64), MAX_RSS_GROWTH_PCT (10), KEEP_TMP=1
# to keep the store and the server's output.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
CONNREG_BIN="${CONNREG_BIN:-$REPO_DIR/build/connreg}"
DURATION="${DURATION:-180}"
WARMUP="${WARMUP:-60}"
CLIENTS="${CLIENTS:-64}"
MAX_RSS_GROWTH_PCT="${MAX_RSS_GROWTH_PCT:-10}"
PY=/usr/bin/python3

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ -x "$CONNREG_BIN" ]] || { log "connreg binary not found at $CONNREG_BIN (set CONNREG_BIN)"; exit 2; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/connreg-soak.XXXXXX")"
PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

# Loopback only; access log to a file (it is part of the work measured).
env -u CONNREG_DATABASE "$CONNREG_BIN" serve --database "sqlite:$TMP/connreg.db" --listen 127.0.0.1:0 \
  >"$TMP/stdout.log" 2>"$TMP/stderr.log" </dev/null &
PID=$!
PORT=""
for _ in $(seq 1 150); do
  PORT=$(grep -m1 '"event":"listening"' "$TMP/stdout.log" 2>/dev/null |
         $PY -c 'import json,sys; print(json.loads(sys.stdin.readline())["port"])' 2>/dev/null || true)
  [[ -n "$PORT" ]] && break
  kill -0 "$PID" 2>/dev/null || { log "connreg exited at start:"; tail -20 "$TMP/stderr.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$PORT" ]] || { log "connreg did not start listening"; exit 1; }
BASE="http://127.0.0.1:$PORT"
TOKEN=$($PY - "$TMP/bootstrap-credentials.json" "$BASE" <<'PYEOF'
import json, sys, requests
c = json.load(open(sys.argv[1]))
r = requests.post(sys.argv[2] + "/v2/auth/token", data={"grant_type": "client_credentials",
                  "client_id": c["clientId"], "client_secret": c["clientSecret"]}, timeout=10)
r.raise_for_status()
print(r.json()["access_token"])
PYEOF
)
log "connreg pid $PID on $BASE; $CLIENTS clients for ${DURATION}s (RSS baseline after ${WARMUP}s)"

RESULT=$($PY "$BENCH_DIR/soak/load.py" --base "$BASE" --token "$TOKEN" --pid "$PID" \
         --duration "$DURATION" --warmup "$WARMUP" --clients "$CLIENTS")

kill -TERM "$PID"
STOP_RC=0
for _ in $(seq 1 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
  log "connreg did not exit within 15 s of SIGTERM"; STOP_RC=1
else
  wait "$PID" || STOP_RC=$?
fi
PID=""

echo "$RESULT" | $PY "$BENCH_DIR/soak/report.py" "$MAX_RSS_GROWTH_PCT" "$STOP_RC"
