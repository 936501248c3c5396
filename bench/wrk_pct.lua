-- Prints wrk's latency percentiles (ms) as one JSON line, with its whole latency histogram
-- ("hist": [[microseconds, count], ...]) so that runs can be pooled: used by bench/tail.py.
done = function(summary, latency, requests)
  local hist = {}
  for i = 1, #latency do
    local value, count = latency(i)
    hist[#hist + 1] = string.format("[%d,%d]", value, count)
  end
  io.write(string.format('{"p50": %.3f, "p90": %.3f, "p99": %.3f, "p999": %.3f, "max": %.3f, "requests": %d, "hist": [%s]}\n',
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, summary.requests, table.concat(hist, ",")))
end
