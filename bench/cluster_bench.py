"""Through Ray or on this machine: what the cluster path costs per arrival.

A two-node Ray cluster on 127.0.0.1 (``tests/ray_cluster.py``: two ``ray start`` nodes, one CPU
each) and nginx (``/small.txt``) on the same machine. For each asked rate, interleaved:

- local: ``perftui quick URL --rate R --workers 2 --headless`` (two worker processes here);
- ray:   the same with ``--cluster ray://...`` (two workers, one a node, as Ray actors).

Reported per run: the achieved arrivals/s (median of the timeline's ``started_rps``, first and
last second left out), late starts and dropped arrivals, p99 latency, and CPU per request split
into the coordinator, the Ray actors that relay each worker's frames (ray only) and the worker
processes. CPU is each process's user + system time, sampled with psutil every 0.25 s until it
exits (a process's last sample is taken as its total); Ray's own daemons (GCS, raylets, the
client server) are not counted: they are the cluster's, and run whether perftui does or not.

``flock /tmp/perftui-bench.lock python bench/cluster_bench.py [--rates 2000,5000] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nginx_peer import NginxPeer  # noqa: E402
from tests.ray_cluster import new_cluster  # noqa: E402


class CpuSampler(threading.Thread):
    """Keeps the latest user+system CPU seconds of every process in the sets it is told about."""

    def __init__(self, root_pid: int, ray_temp: str | None):
        super().__init__(daemon=True)
        self.root = root_pid
        self.ray_temp = ray_temp
        self.cpu: dict[int, tuple[str, float]] = {}
        self.stop = threading.Event()

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.root)
            procs = [("coordinator", root)] + [("worker", c) for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        if self.ray_temp is not None:
            for p in psutil.process_iter(["cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if cmd.startswith("ray::WorkerHost"):
                    procs.append(("relay", p))
                    procs += [("worker", c) for c in p.children(recursive=True)]
        for role, p in procs:
            try:
                t = p.cpu_times()
                self.cpu[p.pid] = (role, t.user + t.system)
            except psutil.Error:
                pass

    def run(self) -> None:
        while not self.stop.is_set():
            self._sample()
            time.sleep(0.25)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            out[role] = out.get(role, 0.0) + seconds
        return out


def run(url: str, rate: float, seconds: int, cluster: str | None, ray_temp: str | None) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.json"
        cmd = [sys.executable, "-m", "perftui", "quick", url, "--rate", f"{rate:g}", "--duration", f"{seconds}s",
               "--workers", "2", "--headless", "--out", str(out)]
        if cluster:
            cmd += ["--cluster", cluster]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, CI="true", PERFTUI_SESSIONS_DIR=d))
        sampler = CpuSampler(proc.pid, ray_temp)
        sampler.start()
        stdout, stderr = proc.communicate()
        sampler.stop.set()
        sampler.join()
        if not out.exists():
            raise RuntimeError(f"perftui failed: {stdout[-2000:]}{stderr[-2000:]}")
        doc = json.loads(out.read_text())
    rows = doc["timeline"][1:-1] or doc["timeline"]
    s = doc["summary"]
    cpu = sampler.totals()
    requests = max(1, s["requests"])
    return {
        "mode": "ray" if cluster else "local", "asked": rate,
        "arrivals_per_s": statistics.median(r["started_rps"] for r in rows),
        "requests": s["requests"], "late": s["late_starts"], "dropped": s["dropped"],
        "p99_ms": s["latency_ms"]["p99"],
        "cpu_us_per_request": {k: round(v / requests * 1e6, 1) for k, v in sorted(cpu.items())},
        "cpu_us_total": round(sum(cpu.values()) / requests * 1e6, 1),
        "nodes": [(n["node"], n["iterations"]) for n in doc["generator"].get("nodes", [])],
    }


def relay_steady(url: str, cluster: str, seconds: int = 30) -> None:
    """A relay's CPU in steady state: one run at 1,000/s, each relay actor's CPU seconds read 8 s
    in and ``seconds - 3`` s in; the difference over the time between is its cost per second."""
    proc = subprocess.Popen([sys.executable, "-m", "perftui", "quick", url, "--rate", "1000", "--duration",
                             f"{seconds}s", "--headless", "--cluster", cluster], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, CI="true"))
    try:
        def relays() -> dict[int, float]:
            out = {}
            for p in psutil.process_iter(["cmdline"]):
                if " ".join(p.info["cmdline"] or []).startswith("ray::WorkerHost"):
                    t = p.cpu_times()
                    out[p.pid] = t.user + t.system
            return out

        time.sleep(8)
        a, ta = relays(), time.monotonic()
        time.sleep(seconds - 11)
        b, tb = relays(), time.monotonic()
        for pid in a:
            if pid in b:
                print(f"relay {pid}: {a[pid]:.2f} s CPU after start-up, then {(b[pid] - a[pid]) / (tb - ta) * 100:.1f} % "
                      f"of a core ({(b[pid] - a[pid]) / (tb - ta) / 500 * 1e6:.1f} µs per request of its 500/s)")
    finally:
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rates", default="2000,5000")
    ap.add_argument("--sittings", type=int, default=2)
    ap.add_argument("--relay-steady", action="store_true", help="only measure a relay actor's CPU in steady state")
    args = ap.parse_args()
    results = []
    cluster = new_cluster()
    try:
        cluster.start_head("nodeA")
        cluster.add_node("nodeB")
        cluster.wait_nodes(2)
        with NginxPeer() as nginx:
            url = nginx.url("/small.txt")
            if args.relay_steady:
                relay_steady(url, cluster.client_address)
                return 0
            for _ in range(args.sittings):
                for rate in [float(r) for r in args.rates.split(",")]:
                    for mode in ("local", "ray"):
                        r = run(url, rate, args.seconds, cluster.client_address if mode == "ray" else None,
                                str(cluster.temp_dir) if mode == "ray" else None)
                        results.append(r)
                        print(json.dumps(r), flush=True)
    finally:
        cluster.stop()
    print()
    print(f"{'mode':<6} {'asked':>8} {'arrivals/s':>11} {'late':>7} {'dropped':>8} {'p99 ms':>8} "
          f"{'CPU µs/req':>11}  split")
    for r in results:
        split = " ".join(f"{k} {v}" for k, v in r["cpu_us_per_request"].items())
        print(f"{r['mode']:<6} {r['asked']:>8,.0f} {r['arrivals_per_s']:>11,.0f} {r['late']:>7,} {r['dropped']:>8,} "
              f"{r['p99_ms']:>8.2f} {r['cpu_us_total']:>11.1f}  {split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
