-- wrk script: the morning clock-in rush (bench/run.py).
--   wrk -t T -c C -d Ds -s bench/wrk/clock.lua http://127.0.0.1:PORT/attendance/clock -- POOL THREADS XFF UA
-- POOL: a file with one signed-in employee per line, "session=...<TAB>csrf-token". Each wrk thread takes every
-- THREADS-th line and walks through its share, one employee per request, so every request is a different
-- employee's punch (the portal treats a second punch of the same kind within 60 s as the same tap). The first
-- pass posts kind=in, the second kind=out (a real clock-out); a third pass would repeat punches less than 60 s
-- old and only count as duplicates: done() reports how many requests were sent after the pool ran out
-- ("beyond_pool"), and bench/run.py compares the punches actually written with the requests.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   xff, ua = args[3], args[4]
   pool = {}
   local i = 0
   for line in io.lines(path) do
      if i % nthreads == tid then
         local cookie, token = line:match("^([^\t]+)\t(.+)$")
         table.insert(pool, {cookie, token})
      end
      i = i + 1
   end
   pool_n = #pool
   idx, pass, beyond_pool, generated = 0, 0, 0, 0
end

function request()
   generated = generated + 1
   idx = idx + 1
   if idx > #pool then
      idx, pass = 1, pass + 1
   end
   if pass >= 2 then beyond_pool = beyond_pool + 1 end
   local who = pool[idx]
   local kind = (pass % 2 == 0) and "in" or "out"
   local headers = {
      ["Cookie"] = who[1],
      ["X-CSRFToken"] = who[2],
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Forwarded-For"] = xff,
      ["User-Agent"] = ua,
   }
   return wrk.format("POST", nil, headers, "kind=" .. kind .. "&csrf_token=" .. who[2])
end

function done(summary, latency, requests)
   local beyond, pool_size, gen = 0, 0, 0
   for _, t in ipairs(threads) do
      beyond = beyond + (t:get("beyond_pool") or 0)
      gen = gen + (t:get("generated") or 0)
      pool_size = pool_size + (t:get("pool_n") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f, "stdev": %.1f}, ' ..
      '"pool": %d, "beyond_pool": %d, "generated": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      latency.max, latency.mean, latency.stdev, pool_size, beyond, gen))
end
