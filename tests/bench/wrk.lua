-- wrk script for the benchmark: prints one "BENCHJSON {...}" line at the end.
-- With BENCH_RANGE_SIZE set, every request asks for a random range of
-- BENCH_RANGE_LEN bytes (default 1 MiB) of an object of that size.
-- With BENCH_KEYS=N and BENCH_KEY_FORMAT (a format with one %d, e.g.
-- "/set/1K/k%05d/1K"), every request asks for one of N keys at random.
local size = tonumber(os.getenv("BENCH_RANGE_SIZE") or "")
local len = tonumber(os.getenv("BENCH_RANGE_LEN") or "1048576")
local keys = tonumber(os.getenv("BENCH_KEYS") or "")
local key_format = os.getenv("BENCH_KEY_FORMAT")

if size or keys then
   local next_id = 0

   function setup(thread)
      next_id = next_id + 1
      thread:set("thread_id", next_id)
   end

   function init(args)
      math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
   end
end

if keys then
   function request()
      return wrk.format(nil, string.format(key_format,
         math.random(0, keys - 1)))
   end
elseif size then
   function request()
      local off = math.random(0, size - len)
      return wrk.format(nil, nil,
         { ["Range"] = string.format("bytes=%d-%d", off, off + len - 1) })
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format('BENCHJSON {"requests":%d,"bytes":%d,' ..
      '"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
      '"err_timeout":%d}\n',
      summary.requests, summary.bytes, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
