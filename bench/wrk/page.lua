-- wrk script: GET one page as a signed-in user (bench/run.py).
--   wrk -t T -c C -d Ds -s bench/wrk/page.lua http://127.0.0.1:PORT/path -- COOKIE XFF UA
-- COOKIE: the "session=..." cookie of an HTTP login ("-" for none); XFF: the client address the proxy would
-- pass (the portal runs with PROXY_FIX_FOR=1, as behind nginx); UA: the User-Agent the login used (flask-login
-- "basic" session protection hashes address + agent).
-- done() prints one line "WRK_JSON {...}": latency percentiles in microseconds, requests, duration, errors.

function init(args)
   if args[1] and args[1] ~= "-" then wrk.headers["Cookie"] = args[1] end
   if args[2] and args[2] ~= "-" then wrk.headers["X-Forwarded-For"] = args[2] end
   if args[3] and args[3] ~= "-" then wrk.headers["User-Agent"] = args[3] end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f, "stdev": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
      latency.max, latency.mean, latency.stdev))
end
