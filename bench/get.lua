-- wrk script: GET one URL with the headers given by WRK_HEADERS ("Name: value" lines of a file);
-- counts the 200 answers and, at the end, writes the counts and the latency percentiles to the
-- file named by WRK_OUT (bench/wrk_report.lua).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  bad = 0
  for line in io.lines(os.getenv("WRK_HEADERS")) do
    local name, value = string.match(line, "^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  dofile(os.getenv("WRK_REPORT")).write(threads, summary, latency)
end
