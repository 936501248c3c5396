"""The coordinator's own CPU per second of a run, at several open-model rates.

nginx serves a 2-byte body on 127.0.0.1; ``perftui quick URL --rate R --workers 1 --headless``
runs for ``--seconds``; the coordinator process (the CLI's own pid; its worker is a separate
process) is sampled with psutil over the steady middle of the run, skipping start-up and the end.
Its per-second work — merging the worker's snapshots, the session tick, the journal and its
checkpoints, the generator's process sampling, headless progress lines — should not depend much
on the rate. CPU time, not wall time, so other work on the machine moves it less.

    python bench/coordinator_cpu.py [--rates 200,2000,10000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nginx_peer import NginxPeer  # noqa: E402


def one(url: str, rate: int, seconds: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "perftui", "quick", url, "--rate", str(rate), "--workers", "1",
               "--headless", "--duration", f"{seconds}s", "--sessions-dir", d, "--out", f"{d}/o.json"]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        ps = psutil.Process(p.pid)
        skip = min(6.0, seconds / 4)
        time.sleep(skip)
        c0, t0 = ps.cpu_times(), time.monotonic()
        time.sleep(seconds - 2 * skip)
        c1, t1 = ps.cpu_times(), time.monotonic()
        p.wait()
        ms = 1000 * ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0)
        return ms, rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="200,2000,10000")
    ap.add_argument("--seconds", type=int, default=30)
    a = ap.parse_args()
    print("| rate (/s) | coordinator CPU (ms per second of run) | µs per request |")
    print("|---|---|---|")
    with NginxPeer() as ng:
        for r in (int(x) for x in a.rates.split(",")):
            ms, rate = one(ng.url("/small.txt"), r, a.seconds)
            print(f"| {rate:,} | {ms:.1f} | {1000 * ms / rate:.2f} |", flush=True)


if __name__ == "__main__":
    main()
