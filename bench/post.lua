-- wrk script: POST JSON bodies (one per line of the file in WRK_BODIES), cycled, each with
-- a fresh Idempotency-Key; collects the "id" of every 2xx answer and, at the end, writes
-- the ids, the counts and the latency percentiles to the file named by WRK_OUT (bench/wrk_report.lua).
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
  dofile(os.getenv("WRK_REPORT")).write(threads, summary, latency)
end
