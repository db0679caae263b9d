-- Appended to every scenario script. Each wrk thread keeps its own counters
-- (globals of its Lua state); done() adds them up and prints one JSON line
-- that bench/wrk.py parses, so no number is scraped from wrk's text report.

bench_messages = 0    -- messages carried by expected answers
bench_empty = 0       -- answers that carried nothing (an exhausted queue)
bench_unexpected = 0  -- answers with a status the scenario does not expect
bench_deletes = 0     -- follow-up requests sent (consume cycle)
bench_no_content = 0  -- 204 answers (consume cycle)

local bench_threads = {}

function setup(thread)
   table.insert(bench_threads, thread)
end

function done(summary, latency, requests)
   local totals = {messages = 0, empty = 0, unexpected = 0, deletes = 0, no_content = 0}
   for _, thread in ipairs(bench_threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get("bench_" .. name) or 0)
      end
   end
   -- A consume cycle cannot tell an empty claim's 204 from a delete's 204;
   -- the difference is exact up to the deletes still in flight at the end.
   if totals.no_content > totals.deletes then
      totals.empty = totals.empty + totals.no_content - totals.deletes
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,' ..
      '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
      '"latency_us":{"min":%.0f,"mean":%.1f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f},' ..
      '"messages":%.0f,"empty":%.0f,"unexpected":%.0f}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      totals.messages, totals.empty, totals.unexpected))
end
