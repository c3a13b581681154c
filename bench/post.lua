-- wrk script: POST JSON bodies (one per line of the file in WRK_BODIES), cycled, each with
-- a fresh Idempotency-Key; collects the "id" of every 2xx answer and, at the end, writes
-- the ids, the counts and the latency percentiles to the file named by WRK_OUT.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("WRK_BODIES")) do
    table.insert(bodies, line)
  end
  n = 0
  ok = 0
  bad = 0
  ids = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = bodies[((n - 1 + tid * 7919) % #bodies) + 1]
  wrk.headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", os.time(), tid, n)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    local id = string.match(body, '"id":"([^"]+)"')
    if id then table.insert(ids, id) end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
    local tids = t:get("ids")
    for _, id in ipairs(tids) do out:write("id ", id, "\n") end
  end
  out:write("requests ", summary.requests, "\n")
  out:write("duration_us ", summary.duration, "\n")
  out:write("ok ", total_ok, "\n")
  out:write("bad ", total_bad, "\n")
  out:write("socket_errors ", summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout, "\n")
  out:write("p50_us ", latency:percentile(50), "\n")
  out:write("p90_us ", latency:percentile(90), "\n")
  out:write("p99_us ", latency:percentile(99), "\n")
  out:close()
end
