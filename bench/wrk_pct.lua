-- Prints wrk's latency percentiles (ms) as one JSON line: used by bench/tail.py.
done = function(summary, latency, requests)
  io.write(string.format('{"p50": %.3f, "p90": %.3f, "p99": %.3f, "p999": %.3f, "max": %.3f, "requests": %d}\n',
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, summary.requests))
end
