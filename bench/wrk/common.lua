-- Shared by every scenario script: counts responses by status in each wrk thread and, in done(),
-- prints one machine-readable line
--   BENCH_RESULT {"requests":…,"rps":…,"latency_ms":{"p50":…,"p99":…},"non2xx":…,"errors":{…}}
-- that bench/http_bench.sh parses with jq. Load it first with
--   dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
-- A scenario that defines its own response() must call bench_count(status, body) from it.

local threads = {}

-- Runs in the main Lua state once per thread, before the thread starts.
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Per-thread state (each wrk thread has its own Lua state with these globals).
non2xx = 0
statuses = {}
first_bad = nil

function bench_count(status, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == nil then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 400)
    end
  end
end

function response(status, headers, body)
  bench_count(status, body)
end

local function json_string(s)
  if s == nil then return "null" end
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local total_non2xx, by_status, bad = 0, {}, nil
  for _, t in ipairs(threads) do
    total_non2xx = total_non2xx + (t:get("non2xx") or 0)
    for code, n in pairs(t:get("statuses") or {}) do
      by_status[code] = (by_status[code] or 0) + n
    end
    bad = bad or t:get("first_bad")
  end
  local parts = {}
  for code, n in pairs(by_status) do
    table.insert(parts, string.format('"%d":%d', code, n))
  end
  table.sort(parts)

  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(us) return us / 1000.0 end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"latency_ms":{"mean":%.3f,"stdev":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f},' ..
    '"non2xx":%d,"statuses":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_ge_400":%d},' ..
    '"first_bad":%s}\n',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    ms(latency.mean), ms(latency.stdev), ms(latency:percentile(50)), ms(latency:percentile(90)),
    ms(latency:percentile(99)), ms(latency.max),
    total_non2xx, table.concat(parts, ","),
    e.connect, e.read, e.write, e.timeout, e.status,
    json_string(bad)))
end
