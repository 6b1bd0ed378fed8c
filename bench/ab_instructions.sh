#!/usr/bin/env bash
# A/B of two connreg binaries by the instructions the server executes per request (callgrind),
# which, unlike requests/s on a shared machine, does not move with what else runs. For each
# binary and each store (SQLite, a throwaway PostgreSQL: bench/pg_server.sh), the server runs
# under callgrind with one I/O and one store thread; after a warm-up, the counters are zeroed,
# N/5 creates, N GETs of one connection and N/10 pages of 50 run on one keep-alive connection,
# each dumped on its own. Prints instructions per request of each binary and B/A. Time spent
# waiting (fsync, the network) does not count: this is CPU work only.
#
#   A_BIN=/path/old/connreg B_BIN=build/connreg [N=1000] bash bench/ab_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A_BIN:?set A_BIN to the baseline binary}" "${B_BIN:?set B_BIN to the binary under test}"
A_BIN=$(realpath "$A_BIN") B_BIN=$(realpath "$B_BIN")
N=${N:-1000}
command -v valgrind callgrind_control >/dev/null || { echo "needs valgrind" >&2; exit 1; }
source bench/pg_server.sh
T=$(mktemp -d /tmp/connreg-ab-cg.XXXXXX)
SERVER_PID=""
cleanup_all() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
  pg_cleanup
  rm -rf "$T"
}
trap cleanup_all EXIT

measure() {  # measure LABEL BIN DATABASE_URL: prints "LABEL scenario requests instructions"
  local label=$1 dir=$T/$1 port=""
  mkdir -p "$dir"
  (cd "$dir" && CONNREG_MASTER_KEY=$(head -c 32 /dev/urandom | base64) exec valgrind \
    --tool=callgrind --callgrind-out-file="$dir/cg.%p" "$2" serve --database "$3" \
    --listen 127.0.0.1:0 --threads 1 --db-threads 1 >stdout 2>stderr) &
  SERVER_PID=$!
  for _ in $(seq 600); do
    port=$(jq -R -r 'fromjson? | select(.event == "listening") | .port' "$dir/stdout" 2>/dev/null |
      head -n1 || true)
    [[ -n "$port" && -f "$dir/bootstrap-credentials.json" ]] && break
    sleep 0.2
  done
  [[ -n "$port" ]] || { echo "$label: the server did not start" >&2; exit 1; }
  python3 - "$port" "$dir" "$N" "$SERVER_PID" <<'EOF'
import http.client, json, subprocess, sys, urllib.parse
port, d, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
creds = json.load(open(d + "/bootstrap-credentials.json"))
c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
c.request("POST", "/v2/auth/token", urllib.parse.urlencode({
    "grant_type": "client_credentials", "client_id": creds["clientId"],
    "client_secret": creds["clientSecret"]}),
    {"Content-Type": "application/x-www-form-urlencoded"})
auth = {"Authorization": "Bearer " + json.loads(c.getresponse().read())["access_token"]}
made = [0]
def create():
    made[0] += 1
    body = {"name": f"bench-{made[0]:06}", "details": {"type": "postgres", "host": "db.internal",
            "database": "analytics", "user": "sigma", "password": "secret"}}
    c.request("POST", "/v2/connections", json.dumps(body),
              dict(auth, **{"Content-Type": "application/json"}))
    r = c.getresponse(); r.read(); assert r.status == 201, r.status
def get(path):
    def run():
        c.request("GET", path, headers=auth); r = c.getresponse(); r.read()
        assert r.status == 200, r.status
    return run
for _ in range(60): create()
c.request("GET", "/v2/connections?limit=1", headers=auth)
one = json.loads(c.getresponse().read())["entries"][0]["connectionId"]
for name, request, count in (("create", create, n // 5),
                             ("get-one", get(f"/v2/connections/{one}"), n),
                             ("list-50", get("/v2/connections?limit=50"), n // 10)):
    for _ in range(50): request()
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    for _ in range(count): request()
    subprocess.run(["callgrind_control", "-d", name, pid], check=True, capture_output=True)
    print(name, count)
EOF
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  for f in "$dir"/cg.*.*; do
    echo "$label $(grep -m1 '^desc: Trigger' "$f" | awk '{print $NF}') $(grep -m1 '^summary:' "$f" | awk '{print $2}')"
  done >"$dir/result"
}

psql_pg -c "CREATE DATABASE connreg_cg_a"
psql_pg -c "CREATE DATABASE connreg_cg_b"
measure A-sqlite "$A_BIN" "sqlite:$T/A-sqlite/connreg.db" >/dev/null
measure B-sqlite "$B_BIN" "sqlite:$T/B-sqlite/connreg.db" >/dev/null
measure A-postgres "$A_BIN" "$(pg_url connreg_cg_a)" >/dev/null
measure B-postgres "$B_BIN" "$(pg_url connreg_cg_b)" >/dev/null
python3 - "$N" "$T"/*/result <<'EOF'
import sys
n = int(sys.argv[1])
counts = {"create": n // 5, "get-one": n, "list-50": n // 10}
per = {}
for line in (l for path in sys.argv[2:] for l in open(path)):
    label, scenario, total = line.split()
    binary, backend = label.split("-")
    per[(backend, scenario, binary)] = int(total) / counts[scenario]
print("%-9s %-9s %12s %12s %6s" % ("backend", "scenario", "A instr/req", "B instr/req", "B/A"))
for backend in ("sqlite", "postgres"):
    for scenario in ("create", "get-one", "list-50"):
        a, b = per[(backend, scenario, "A")], per[(backend, scenario, "B")]
        print("%-9s %-9s %12.0f %12.0f %6.3f" % (backend, scenario, a, b, b / a))
EOF
