-- wrk script: GET the paths of WRK_PATHS (separated by "|"), cycled; counts answers by status
-- class (2xx, 503, other 5xx, other) and, at the end, writes the counts and latency percentiles
-- to the file named by WRK_OUT.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for p in string.gmatch(os.getenv("WRK_PATHS"), "[^|]+") do table.insert(paths, p) end
  n = 0
  ok = 0
  s503 = 0
  s5xx = 0
  other = 0
end

function request()
  n = n + 1
  return wrk.format("GET", paths[((n + tid) % #paths) + 1])
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status == 503 then s503 = s503 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  local t_ok, t_503, t_5xx, t_other = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_503 = t_503 + t:get("s503")
    t_5xx = t_5xx + t:get("s5xx")
    t_other = t_other + t:get("other")
  end
  out:write("requests ", summary.requests, "\n")
  out:write("duration_us ", summary.duration, "\n")
  out:write("ok ", t_ok, "\n")
  out:write("s503 ", t_503, "\n")
  out:write("s5xx ", t_5xx, "\n")
  out:write("other ", t_other, "\n")
  out:write("socket_errors ", summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout, "\n")
  out:write("timeouts ", summary.errors.timeout, "\n")
  out:write("p50_us ", latency:percentile(50), "\n")
  out:write("p99_us ", latency:percentile(99), "\n")
  out:close()
end
