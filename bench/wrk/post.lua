-- POST /v2/connections with a unique name per request ("load-<run>-<thread>-<n>").
-- BENCH_RUN_ID (env) keeps names of separate runs apart; names need not be unique for the
-- server, but unique ones exercise the name index the way real traffic does.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local counter = 0

function init(args)
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"name":"load-%s-%d-%07d","details":{"type":"postgres","host":"db.example.com",' ..
    '"database":"analytics","user":"bench","password":"s3cret"}}',
    run_id, thread_id or 0, counter)
  return wrk.format("POST", "/v2/connections", nil, body)
end
