"""What the judge (windowed thresholds, SUT thresholds, SLOs) costs the coordinator per second.

Feeds a session record synthetic seconds (1,000 requests each, latencies spread over ~600 HDR
buckets, 1 % errors, two endpoints) and times ``tick`` + threshold evaluation, interleaving two
plans in the same run: the peer is the same record with only string thresholds (what the
coordinator did before), the other adds two windowed thresholds (1 min overall, 5 min on an
endpoint), a SUT threshold and two SLOs (availability, and latency on an endpoint).

    flock /tmp/perftui-bench.lock python bench/judge_cpu.py [SECONDS]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from perftui.planload import load_plan
from perftui.run.judge import Judge
from perftui.session import PhaseRecord, SessionRecord
from perftui.worker.messages import EndpointDelta, Snapshot
from perftui.worker.stats import FastHistogram

BASE = """
[[phases]]
duration = "10m"
arrival_rate = 1000
[[scenarios]]
  [[scenarios.steps]]
  name = "a"
  url = "/a"
  [[scenarios.steps]]
  name = "b"
  url = "/b"
[monitor]
process = "target"
"""
PLAIN = 'target = "http://127.0.0.1:9"\nthresholds = ["p95 < 200ms", "error_rate < 1%", "p99{a} < 500ms"]\n'
JUDGED = """target = "http://127.0.0.1:9"
thresholds = ["p95 < 200ms", "error_rate < 1%", "p99{a} < 500ms", "target.cpu < 70%",
  { threshold = "p95 < 200ms", window = "1m" }, { threshold = "p99{b} < 300ms", window = "5m" },
  "slo.avail.burn_rate < 2"]
"""
SLOS = """
[[slos]]
name = "avail"
sli = "availability"
objective = 99.5
[[slos]]
name = "fast"
sli = "latency"
latency = "50ms"
objective = 99
endpoint = "a"
"""


def snapshot(rng: random.Random, t: float) -> Snapshot:
    eps = []
    for name in ("a", "b"):
        h = FastHistogram()
        errors = 0
        for _ in range(500):
            h.record(int(rng.lognormvariate(9.5, 0.8)))
            errors += rng.random() < 0.01
        enc, total = h.take()
        eps.append(EndpointDelta(name=name, requests=500, errors=errors, status={200: 500 - errors, 500: errors},
                                 error_kinds={"http_5xx": errors} if errors else {}, latency=enc, service=b"",
                                 latency_sum=total, service_sum=total, bytes_received=0))
    return Snapshot(worker=0, seq=0, t=t, interval=1.0, endpoints=eps)


def record(plan_text: str, slos: str = "") -> tuple[SessionRecord, Judge]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.toml"
        path.write_text(textwrap.dedent(plan_text + BASE + slos))
        plan = load_plan(path).plan
    s = SessionRecord(plan_name="bench", plan_file=None, plan_dict={}, target="", workers=1,
                      phases=[PhaseRecord(index=0, name="p", kind="open", target="1000/s", planned_s=600)])
    s.mark_started()
    judge = Judge(plan, s, planned_s=600)
    s.add_observer(judge)
    return s, judge


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rng = random.Random(1)
    snaps = [snapshot(rng, 0.0) for _ in range(20)]
    runs = {"string thresholds only": record(PLAIN), "windows + SUT + 2 SLOs": record(JUDGED, SLOS)}
    cost: dict[str, list[float]] = {k: [] for k in runs}
    for i in range(seconds):
        for name, (s, judge) in runs.items():  # interleaved: the same machine noise for both
            snap = snaps[i % len(snaps)]
            snap.t = s.boundary
            s.ingest(snap)
            t0 = time.process_time()
            s.tick(s.boundary, "p", 1000, 0)
            overall = s.summary()
            eps = {e.name: e for e in s.endpoint_summaries()}
            judge.evaluate(overall, eps, {})
            cost[name].append(time.process_time() - t0)
    print(f"{seconds} simulated seconds, 1,000 requests each; CPU per second of the run (tick + thresholds):")
    for name, xs in cost.items():
        print(f"  {name:<24} mean {statistics.fmean(xs) * 1000:6.2f} ms   median {statistics.median(xs) * 1000:6.2f} ms   p90 "
              f"{statistics.quantiles(xs, n=10)[-1] * 1000:6.2f} ms")
    plain, judged = (statistics.fmean(v) for v in cost.values())
    print(f"  the judge adds {(judged - plain) * 1000:.2f} ms of coordinator CPU per second "
          f"({(judged - plain) * 100:.2f} % of a core)")


if __name__ == "__main__":
    main()
