"""Open model on one worker core: what an arrival costs and how overload degrades.

nginx (one worker, ``return 200``-like 2-byte file) pinned to core 0; ``perftui quick URL --rate R
--workers 1 --headless`` pinned to core 1 for each asked rate, then the closed model with 64 VUs
to find the core's capacity C, then the open model asked for 2 x C. Reported per rate: the
worker's CPU (median of its per-second figures, from the session timeline), the achieved
completions per second, late starts, dropped arrivals, queued arrivals at the end, p50/p99
latency (from the intended start) and service p99. The machine is shared: figures move between
sittings, read them as "% of a core at the asked rate". ``python bench/open_model.py``.
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


WORKERS = 1
CORES = "1"
MAX_CONNECTIONS = 0  # 0: perftui's default (1,024 per worker in the open model)


def perftui(url: str, seconds: int, *, rate: float | None = None, vus: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.json"
        load = ["--rate", f"{rate:g}"] if rate is not None else ["--vus", str(vus)]
        cmd = ["quick", url, *load, "--duration", f"{seconds}s"]
        if MAX_CONNECTIONS and rate is not None:  # quick has no flag for it: the same run as a plan
            plan = Path(d) / "plan.toml"
            base, _, path = url.partition("://")[2].partition("/")
            plan.write_text(f'target = "http://{base}"\n[defaults]\nmax_connections = {MAX_CONNECTIONS}\n'
                            f'[[phases]]\nduration = "{seconds}s"\narrival_rate = {rate:g}\n'
                            f'[[scenarios]]\n  [[scenarios.steps]]\n  url = "/{path}"\n')
            cmd = ["run", str(plan)]
        proc = subprocess.run(["taskset", "-c", CORES, sys.executable, "-m", "perftui", *cmd,
                               "--workers", str(WORKERS), "--headless", "--out", str(out)],
                              capture_output=True, text=True, env=dict(os.environ, CI="true"))
        if not out.exists():
            raise RuntimeError(f"perftui failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        doc = json.loads(out.read_text())
    rows = [r for r in doc["timeline"] if r.get("phase") != "stopping"][1:-1] or doc["timeline"]
    s = doc["summary"]
    return {
        "asked": rate, "vus": vus,
        "worker_cpu": statistics.median(r["cpu_percent"] for r in rows),
        "achieved": statistics.median(r["rps"] for r in rows),
        "requests": s["requests"], "late": s["late_starts"], "dropped": s["dropped"],
        "queued_end": rows[-1].get("queued", 0), "connections": max(r["open_connections"] for r in rows),
        "stalls": sum(r.get("stalls", 0) for r in rows),
        "p50": s["latency_ms"]["p50"], "p99": s["latency_ms"]["p99"], "svc_p99": s["service_time_ms"]["p99"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rates", default="200,1000,2000,5000,20000")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cores", default="1", help="taskset core list for perftui (nginx is on core 0)")
    ap.add_argument("--max-connections", type=int, default=0,
                    help="defaults.max_connections per worker for the open-model rows (0: perftui's default)")
    ap.add_argument("--no-closed", action="store_true", help="skip the closed-model and 2x overload rows")
    args = ap.parse_args()
    global WORKERS, CORES, MAX_CONNECTIONS
    WORKERS, CORES, MAX_CONNECTIONS = args.workers, args.cores, args.max_connections
    results = []
    with NginxPeer(cpu=0) as nginx:
        url = nginx.url("/small.txt")
        for rate in [float(r) for r in args.rates.split(",")]:
            results.append(perftui(url, args.seconds, rate=rate))
            print(json.dumps(results[-1]), flush=True)
        if args.no_closed:
            return _table(results, args)
        closed = perftui(url, args.seconds, vus=64)
        print(json.dumps(closed), flush=True)
        cap = closed["achieved"]
        over = perftui(url, args.seconds, rate=round(2 * cap, -2))
        over["closed_capacity"] = cap
        print(json.dumps(over), flush=True)
        results += [closed, over]
    return _table(results, args)


def _table(results: list[dict], args) -> int:
    print()
    print(f"{'asked':>10} {'worker CPU':>10} {'achieved':>10} {'late':>8} {'dropped':>9} {'queued':>8} {'conns':>6} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'svc p99':>8}")
    for r in results:
        asked = f"{r['asked']:,.0f}/s" if r["asked"] else f"{r['vus']} VUs"
        print(f"{asked:>10} {r['worker_cpu']:>9.1f}% {r['achieved']:>10,.0f} {r['late']:>8,} {r['dropped']:>9,} "
              f"{r['queued_end']:>8,} {r['connections']:>6,} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['svc_p99']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
