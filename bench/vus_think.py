"""Closed model at scale: N virtual users with think time on one worker core.

nginx (one worker, pinned to core 0, 4,096 connections at most) serves a 2-byte file; perftui
(``run --headless --workers 1``, pinned to core 1) runs N VUs, each a GET then ``think``. With
more VUs than nginx takes connections, ``defaults.max_connections`` shares a bounded pool among
the VUs (their latency includes any wait for a connection). Reported over the steady seconds:
requests/s against the ideal N / think, worker CPU and RSS, connections, p50/p99, CPU per
request. ``python bench/vus_think.py --vus 10000 --think 1s``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nginx_peer import NginxPeer  # noqa: E402

PLAN = """
name = "vus with think time"
target = "{url}"
[defaults]
max_connections = {conns}
timeout = "30s"
[[phases]]
duration = "{seconds}s"
vus = {vus}
[[scenarios]]
steps = [{{ url = "/small.txt", think = "{think}" }}]
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vus", type=int, default=10_000)
    ap.add_argument("--think", default="1s")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=2000, help="defaults.max_connections")
    args = ap.parse_args()
    with NginxPeer(cpu=0) as nginx, tempfile.TemporaryDirectory() as d:
        plan = Path(d) / "plan.toml"
        plan.write_text(PLAN.format(url=nginx.url(""), conns=args.connections, seconds=args.seconds,
                                    vus=args.vus, think=args.think))
        out = Path(d) / "s.json"
        proc = subprocess.run(["taskset", "-c", "1", sys.executable, "-m", "perftui", "run", str(plan),
                               "--headless", "--workers", "1", "--out", str(out)],
                              capture_output=True, text=True, env=dict(os.environ, CI="true"))
        if not out.exists():
            raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
        doc = json.loads(out.read_text())
    rows = doc["timeline"][len(doc["timeline"]) // 2:-1]
    rps = statistics.median(r["rps"] for r in rows)
    cpu = statistics.median(r["cpu_percent"] for r in rows)
    s = doc["summary"]
    result = {
        "vus": args.vus, "think": args.think, "ideal_rps": None, "rps": rps, "worker_cpu": cpu,
        "cpu_us_per_request": cpu / 100 / rps * 1e6 if rps else None,
        "rss_mb": max(r["rss_mb"] for r in rows), "connections": max(r["open_connections"] for r in rows),
        "vus_seen": max(r["vus"] for r in rows), "errors": s["errors"],
        "p50": s["latency_ms"]["p50"], "p99": s["latency_ms"]["p99"],
        "stalls": sum(r.get("stalls", 0) for r in rows),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
