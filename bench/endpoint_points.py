"""What the per-endpoint timeline figures (``perftui.session.endpoint_points``) cost the session
record: the same scripted seconds fed to a record with and without them, interleaved, CPU time
per simulated second, minimum of 9 rounds each.

    python bench/endpoint_points.py [ENDPOINTS ...]     # default: 3 20

Each simulated second: 4 snapshots from one worker, every endpoint 50 requests per snapshot with
log-normal latencies (median ~8 ms). "without" replaces the per-endpoint accumulator with no-ops,
so the difference is the feature alone (one histogram add per endpoint delta, a percentile walk
per endpoint and second).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perftui.session import SessionRecord  # noqa: E402
from perftui.worker.messages import Snapshot  # noqa: E402
from perftui.worker.stats import EndpointRecorder  # noqa: E402


def seconds(endpoints: int, count: int = 20) -> list[list[list]]:
    rng = random.Random(1)
    out = []
    for _ in range(count):
        second = []
        for _ in range(4):
            deltas = []
            for i in range(endpoints):
                r = EndpointRecorder(f"GET /e{i}")
                for _ in range(50):
                    r.response(200, int(rng.lognormvariate(9, 1)), 900, 100, None)
                deltas.append(r.take_delta())
            second.append(deltas)
        out.append(second)
    return out


def feed(data, with_points: bool) -> float:
    s = SessionRecord(plan_name="p", plan_file=None, plan_dict={}, target="x", workers=1, phases=[])
    if not with_points:
        s.endpoint_points.add = lambda *a: None
        s.endpoint_points.close = dict
    s.mark_started()
    t0 = time.process_time()
    for sec, group in enumerate(data, 1):
        for k, deltas in enumerate(group):
            s.ingest(Snapshot(worker=0, seq=k, t=s.started_mono + sec - 1 + 0.2 * k, interval=0.25, endpoints=deltas))
        s.tick(s.started_mono + sec, "x", 0, 0)
    return (time.process_time() - t0) / len(data) * 1e3


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [3, 20]:
        data = seconds(n)
        with_, without = [], []
        for _ in range(9):
            with_.append(feed(data, True))
            without.append(feed(data, False))
        print(f"{n:>3} endpoints: {min(with_):5.1f} ms CPU per second with per-endpoint points, "
              f"{min(without):5.1f} without")


if __name__ == "__main__":
    main()
