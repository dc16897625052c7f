-- wrk script of the purge benchmark (purge.py): fills a cache with tiny
-- objects. Thread t asks for PREFIX/t/1/1, PREFIX/t/2/1, ... (the bench
-- origin serves 1-byte objects at names ending in /1) and stops after
-- FILL_PER_THREAD answers; prints one "BENCHJSON {...}" line at the end.
local threads = 0
local prefix = os.getenv("FILL_PREFIX") or "/f"
local per_thread = tonumber(os.getenv("FILL_PER_THREAD") or "1000")

function setup(thread)
   threads = threads + 1
   thread:set("tid", threads)
   thread:set("limit", per_thread)
   thread:set("prefix", prefix)
end

function init(args)
   sent = 0
   got = 0
end

function request()
   sent = sent + 1
   return wrk.format("GET", string.format("%s/%d/%d/1", prefix, tid, sent))
end

function response(status, headers, body)
   got = got + 1
   if got >= limit then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format('BENCHJSON {"requests":%d,"duration_us":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
      '"err_timeout":%d}\n', summary.requests, summary.duration,
      e.connect, e.read, e.write, e.status, e.timeout))
end
