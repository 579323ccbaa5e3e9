-- Shared by the wrk scripts: print one machine-readable line at the end,
--   BENCH {"requests": ..., "duration_us": ..., "p50_us": ..., ...}
-- adding up the counters each script keeps per thread (globals named in
-- `counters`). wrk counts HTTP statuses >= 400 as "status" errors.

local threads = {}
counters = counters or {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local e = summary.errors
   local out = string.format(
      '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
         .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.status, e.timeout)
   for _, name in ipairs(counters) do
      local total = 0
      for _, t in ipairs(threads) do
         total = total + (t:get(name) or 0)
      end
      out = out .. string.format(', "%s": %d', name, total)
   end
   io.write("BENCH " .. out .. "}\n")
end
