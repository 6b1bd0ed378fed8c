-- Seeds SEED_COUNT (env, default 10000) connections named <SEED_PREFIX>-<n> (SEED_PREFIX, default
-- bench; n from SEED_START + 1, default 1, five digits at least: bench-00001, …) as fast as the
-- server takes them. wrk only knows durations, so once enough 2xx answers have arrived (or on
-- the first non-2xx) the thread stops and SIGINTs wrk (the shell's $PPID), which makes wrk end its
-- run early and call done(). The signal is sent from a background subshell a moment later because
-- system() (behind os.execute) ignores SIGINT in the caller until the command returns.
-- Meant for -t1: names are unique per thread only.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local target = tonumber(os.getenv("SEED_COUNT") or "10000")
local prefix = os.getenv("SEED_PREFIX") or "bench"
local counter = tonumber(os.getenv("SEED_START") or "0")
local created = 0
local stopping = false

function init(args)
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"name":"%s-%05d","details":{"type":"postgres","host":"db.example.com",' ..
    '"database":"analytics","user":"bench","password":"s3cret"}}', prefix, counter)
  return wrk.format("POST", "/v2/connections", nil, body)
end

function response(status, headers, body)
  bench_count(status, body)
  if status >= 200 and status <= 299 then created = created + 1 end
  if not stopping and (created >= target or non2xx > 0) then
    stopping = true
    wrk.thread:stop()
    os.execute("(sleep 0.2; kill -INT $PPID) >/dev/null 2>&1 &")
  end
end
