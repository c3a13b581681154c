-- Shared by get.lua and post.lua (loaded with dofile(os.getenv("WRK_REPORT"))): at the end of a
-- wrk run, write the ids the threads collected, the counts and the latency percentiles to the
-- file named by WRK_OUT, one "key value" per line (read by bench/_load.py).
local M = {}

function M.write(threads, summary, latency)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
    local tids = t:get("ids")
    if tids then
      for _, id in ipairs(tids) do out:write("id ", id, "\n") end
    end
  end
  out:write("requests ", summary.requests, "\n")
  out:write("duration_us ", summary.duration, "\n")
  out:write("bytes ", summary.bytes, "\n")
  out:write("ok ", total_ok, "\n")
  out:write("bad ", total_bad, "\n")
  out:write("socket_errors ", summary.errors.connect + summary.errors.read + summary.errors.write
            + summary.errors.timeout, "\n")
  out:write("p50_us ", latency:percentile(50), "\n")
  out:write("p90_us ", latency:percentile(90), "\n")
  out:write("p99_us ", latency:percentile(99), "\n")
  out:close()
end

return M
